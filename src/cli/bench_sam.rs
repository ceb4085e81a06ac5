//! `edgesift bench-sam`: times MobileSAM's image encoder at 1024 and its decoder (one box prompt,
//! and a batch of boxes) after warm-up. With `--int8 Q` (a file from `edgesift quantize --dtype
//! int8`) the quantized model is timed in the same run, its iterations alternating with the f32
//! model's so that both see the same load, and the ratios are printed. The last line printed is
//! `encoder_median_ms <value>` (of `--model`), for scripts (`scripts/bench_mobilesam_peers.sh`
//! puts it beside onnxruntime's figure for the same weights).

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use edgesift::segment::mobilesam::{MobileSam, PointPrompt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchSamArgs {
    /// MobileSAM weights (scripts/export_mobilesam.py).
    #[arg(long)]
    model: PathBuf,
    /// Worker threads (sets RAYON_NUM_THREADS / CANDLE_NUM_THREADS for this process).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed encoder runs (after one untimed run).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Boxes decoded together in the batched decoder timing.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// An int8 copy of the model (`edgesift quantize --dtype int8`) to time side by side.
    #[arg(long)]
    int8: Option<PathBuf>,
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let n = v.len();
    if n % 2 == 1 {
        ms(v[n / 2])
    } else {
        (ms(v[n / 2 - 1]) + ms(v[n / 2])) / 2.0
    }
}

type Prompts = Vec<(Vec<PointPrompt>, Option<[f32; 4]>)>;

/// One model's figures.
struct Timed {
    label: &'static str,
    path: PathBuf,
    sam: MobileSam,
    load: Duration,
    first: Duration,
    enc: Vec<Duration>,
    cpu: Duration,
    features: Option<Tensor>,
    dec1: f64,
    decb: f64,
}

impl Timed {
    fn load(label: &'static str, path: &Path) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let sam = MobileSam::load(path, &Device::Cpu)
            .with_context(|| format!("loading {}", path.display()))?;
        Ok(Self {
            label,
            path: path.to_owned(),
            sam,
            load: t0.elapsed(),
            first: Duration::ZERO,
            enc: Vec::new(),
            cpu: Duration::ZERO,
            features: None,
            dec1: 0.0,
            decb: 0.0,
        })
    }

    fn encode(&mut self, x: &Tensor, timed: bool) -> anyhow::Result<()> {
        let cpu0 = super::bench_model::cpu_time();
        let t = Instant::now();
        let f = self.sam.encode(x)?;
        std::hint::black_box(f.dims());
        let dt = t.elapsed();
        if timed {
            self.enc.push(dt);
            self.cpu += super::bench_model::cpu_time().saturating_sub(cpu0);
        } else {
            self.first = dt;
            self.features = Some(f);
        }
        Ok(())
    }

    fn decode(&mut self, boxes: &Prompts) -> anyhow::Result<()> {
        let features = self.features.clone().context("encode first")?;
        self.sam.decode(&features, &boxes[..1])?;
        let time = |prompts: &[(Vec<PointPrompt>, Option<[f32; 4]>)]| -> anyhow::Result<f64> {
            let mut v = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                let (m, _) = self.sam.decode(&features, prompts)?;
                std::hint::black_box(m.dims());
                v.push(t.elapsed());
            }
            Ok(median(v))
        };
        self.dec1 = time(&boxes[..1])?;
        self.decb = time(boxes)?;
        Ok(())
    }

    fn print(&self, batch: usize) {
        println!("[{}] model {}", self.label, self.path.display());
        println!(
            "[{}] load_ms {:.1}  first_encoder_ms {:.1}  encoder_min_ms {:.1}  encoder_median_ms {:.1}  iters {}",
            self.label,
            self.load.as_secs_f64() * 1e3,
            self.first.as_secs_f64() * 1e3,
            self.enc.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            median(self.enc.clone()),
            self.enc.len()
        );
        println!(
            "[{}] decoder_ms_1_box {:.1}  decoder_ms_{batch}_boxes {:.1} ({:.1} per box)",
            self.label,
            self.dec1,
            self.decb,
            self.decb / batch as f64
        );
        // CPU time per run (all threads) moves far less than latency when other processes share
        // the cores.
        println!(
            "[{}] encoder_cpu_ms_per_iter {:.1}",
            self.label,
            self.cpu.as_secs_f64() * 1e3 / self.enc.len().max(1) as f64
        );
    }
}

pub fn run(a: BenchSamArgs) -> anyhow::Result<ExitCode> {
    if a.threads == 0 || a.iters == 0 || a.batch == 0 {
        bail!("--threads, --iters and --batch must be at least 1");
    }
    std::env::set_var("RAYON_NUM_THREADS", a.threads.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", a.threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build_global()
        .context("starting the thread pool")?;
    let mut models = vec![Timed::load("model", &a.model)?];
    if let Some(q) = &a.int8 {
        models.push(Timed::load("int8", q)?);
    }

    let n = 3 * 1024 * 1024;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let x = Tensor::from_vec(v, (1, 3, 1024, 1024), &Device::Cpu)?;
    for m in &mut models {
        m.encode(&x, false)?;
    }
    // Alternating, so that a change in the machine's load reaches both models alike.
    for _ in 0..a.iters {
        for m in &mut models {
            m.encode(&x, true)?;
        }
    }
    let boxes: Prompts = (0..a.batch)
        .map(|i| {
            let o = 40.0 * i as f32;
            (Vec::new(), Some([100.0 + o, 120.0, 500.0 + o, 700.0]))
        })
        .collect();
    for m in &mut models {
        m.decode(&boxes)?;
    }
    println!("input 1024x1024, threads {}", a.threads);
    for m in &models {
        m.print(a.batch);
    }
    if let [f, q] = &models[..] {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let (fe, qe) = (median(f.enc.clone()), median(q.enc.clone()));
        let (fc, qc) = (f.cpu.as_secs_f64(), q.cpu.as_secs_f64());
        println!(
            "int8/model: encoder_median {:.2}  encoder_cpu {:.2}  decoder_1_box {:.2}  decoder_{}_boxes {:.2}",
            ratio(qe, fe),
            ratio(qc, fc),
            ratio(q.dec1, f.dec1),
            a.batch,
            ratio(q.decb, f.decb)
        );
        if let (Some(a), Some(b)) = (&q.features, &f.features) {
            let d = (a - b)?.sqr()?.sum_all()?.to_scalar::<f32>()?;
            let n = b.sqr()?.sum_all()?.to_scalar::<f32>()?;
            println!(
                "int8 image embedding vs the model's: relative L2 {:.2e}",
                (d / n.max(f32::MIN_POSITIVE)).sqrt()
            );
        }
    }
    println!("encoder_median_ms {:.1}", median(models[0].enc.clone()));
    Ok(ExitCode::SUCCESS)
}
