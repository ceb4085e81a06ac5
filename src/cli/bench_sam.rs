//! `edgesift bench-sam`: times MobileSAM's image encoder at 1024 and its decoder (one box prompt,
//! and a batch of boxes) after warm-up. The last line printed is `encoder_median_ms <value>`, for
//! scripts (`scripts/bench_mobilesam_peers.sh` puts it beside onnxruntime's figure for the same
//! weights).

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use edgesift::segment::mobilesam::{MobileSam, PointPrompt};
use std::path::PathBuf;
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
    let t0 = Instant::now();
    let sam = MobileSam::load(&a.model, &Device::Cpu)
        .with_context(|| format!("loading {}", a.model.display()))?;
    let load = t0.elapsed();

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
    let t1 = Instant::now();
    let features = sam.encode(&x)?;
    let first = t1.elapsed();
    let mut enc = Vec::with_capacity(a.iters);
    let cpu0 = super::bench_model::cpu_time();
    for _ in 0..a.iters {
        let t = Instant::now();
        let f = sam.encode(&x)?;
        std::hint::black_box(f.dims());
        enc.push(t.elapsed());
    }
    let cpu = super::bench_model::cpu_time().saturating_sub(cpu0);

    let boxes: Vec<(Vec<PointPrompt>, Option<[f32; 4]>)> = (0..a.batch)
        .map(|i| {
            let o = 40.0 * i as f32;
            (Vec::new(), Some([100.0 + o, 120.0, 500.0 + o, 700.0]))
        })
        .collect();
    sam.decode(&features, &boxes[..1])?;
    let time_decode = |prompts: &[(Vec<PointPrompt>, Option<[f32; 4]>)]| -> anyhow::Result<f64> {
        let mut v = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let (m, _) = sam.decode(&features, prompts)?;
            std::hint::black_box(m.dims());
            v.push(t.elapsed());
        }
        Ok(median(v))
    };
    let dec1 = time_decode(&boxes[..1])?;
    let decb = time_decode(&boxes)?;
    println!(
        "model {}, input 1024x1024, threads {}",
        a.model.display(),
        a.threads
    );
    println!(
        "load_ms {:.1}  first_encoder_ms {:.1}  encoder_min_ms {:.1}  iters {}",
        load.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        enc.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        a.iters
    );
    println!(
        "decoder_ms_1_box {dec1:.1}  decoder_ms_{}_boxes {decb:.1} ({:.1} per box)",
        a.batch,
        decb / a.batch as f64
    );
    // CPU time per run (all threads) moves far less than latency when other processes share
    // the cores.
    println!(
        "encoder_cpu_ms_per_iter {:.1}",
        cpu.as_secs_f64() * 1e3 / a.iters as f64
    );
    println!("encoder_median_ms {:.1}", median(enc));
    Ok(ExitCode::SUCCESS)
}
