//! `edgesift bench-model`: times the network alone (no letterbox, no post-processing) on a random
//! input after warm-up. The last line printed is `median_ms <value>`, for scripts
//! (`scripts/bench_peers.sh` puts it next to onnxruntime's figure for the same weights).

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor};
use edgesift::segment::{
    quantize, set_layer_profiling, take_layer_times, LayerTime, Segmenter, TfliteOptions,
    TfliteSegmenter, WeightDtype, Weights, YoloV8Seg,
};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchModelArgs {
    /// Model weights (safetensors exported by scripts/export_ultralytics.py or `edgesift quantize`;
    /// a .tflite file from scripts/export_tflite.py with --backend tflite).
    #[arg(long)]
    model: PathBuf,
    /// `candle` or `tflite` (LiteRT on the CPU, --threads threads; needs libLiteRt.so, see
    /// scripts/tflite.sh; the input size is the model's own, --imgsz and --dtype do not apply).
    #[arg(long, default_value = "candle", value_parser = ["candle", "tflite"])]
    backend: String,
    /// Square input size (multiple of 32).
    #[arg(long, default_value_t = 640)]
    imgsz: u32,
    /// Worker threads (sets RAYON_NUM_THREADS / CANDLE_NUM_THREADS for this process).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timed runs (after the warm-up).
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Compute dtype: f32, f16, bf16, or int8 (the int8 kernels: an f32/f16 model is quantized
    /// first, as `edgesift quantize --dtype int8` would, into a temporary file).
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Also time every convolution (and concatenation, pool, upsampling, decode) of the timed
    /// runs and print them, slowest first, with their share of the median frame (on the CPU; not
    /// with --backend tflite).
    #[arg(long)]
    layers: bool,
}

/// A temporary int8 copy of a model, removed on drop.
struct TempModel(PathBuf);

impl Drop for TempModel {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run(a: BenchModelArgs) -> anyhow::Result<ExitCode> {
    if a.imgsz == 0 || a.imgsz % 32 != 0 {
        bail!("--imgsz must be a positive multiple of 32, got {}", a.imgsz);
    }
    if a.threads == 0 || a.iters == 0 {
        bail!("--threads and --iters must be at least 1");
    }
    let dtype = match a.dtype.as_str() {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        "int8" => DType::F32,
        other => bail!("--dtype must be f32, f16, bf16 or int8, got `{other}`"),
    };
    if a.backend == "tflite" {
        return run_tflite(&a);
    }
    let mut _temp = None;
    let mut model = a.model.clone();
    if a.dtype == "int8" {
        let w = Weights::open(&model).with_context(|| format!("opening {}", model.display()))?;
        let is_int8 = w
            .names()
            .any(|n| w.dtype(n).ok() == Some(safetensors::Dtype::I8));
        if !is_int8 {
            let tmp = std::env::temp_dir().join(format!(
                "edgesift-bench-int8-{}.safetensors",
                std::process::id()
            ));
            quantize(&model, &tmp, WeightDtype::Int8)
                .with_context(|| format!("quantizing {} to int8", model.display()))?;
            eprintln!("quantized {} to int8 in {}", model.display(), tmp.display());
            model = tmp.clone();
            _temp = Some(TempModel(tmp));
        }
    }
    // Before any pool exists: candle and rayon read these once, when their pools start.
    std::env::set_var("RAYON_NUM_THREADS", a.threads.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", a.threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build_global()
        .context("starting the thread pool")?;

    let t0 = Instant::now();
    let weights = Weights::open(&model).with_context(|| format!("opening {}", model.display()))?;
    let net = YoloV8Seg::load(&weights, &Device::Cpu, dtype)
        .with_context(|| format!("loading {}", model.display()))?;
    let load = t0.elapsed();

    let s = a.imgsz as usize;
    let x = Tensor::from_vec(random_input(3 * s * s), (1, 3, s, s), &Device::Cpu)?;
    let t1 = Instant::now();
    forward(&net, &x)?;
    let first = t1.elapsed();
    for _ in 1..a.warmup {
        forward(&net, &x)?;
    }
    let mut times = Vec::with_capacity(a.iters);
    let cpu0 = cpu_time();
    set_layer_profiling(a.layers);
    for _ in 0..a.iters {
        let t = Instant::now();
        forward(&net, &x)?;
        times.push(t.elapsed());
    }
    set_layer_profiling(false);
    let cpu = cpu_time().saturating_sub(cpu0);
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = if times.len() % 2 == 1 {
        ms(times[times.len() / 2])
    } else {
        (ms(times[times.len() / 2 - 1]) + ms(times[times.len() / 2])) / 2.0
    };
    if a.layers {
        print_layers(take_layer_times(), a.iters, median);
    }
    let arch = net.architecture();
    println!(
        "model {} (scale {}, {} classes), input {s}x{s}, dtype {}, threads {}",
        a.model.display(),
        arch.scale().map(String::from).unwrap_or_else(|| "?".into()),
        arch.num_classes,
        a.dtype,
        a.threads
    );
    println!(
        "load_ms {:.1}  first_ms {:.1}  min_ms {:.2}  max_ms {:.2}  iters {}",
        ms(load),
        ms(first),
        ms(times[0]),
        ms(times[times.len() - 1]),
        a.iters
    );
    // CPU time per frame (all threads) moves far less than latency when other processes share
    // the cores; compare versions of edgesift with it, and peers by latency measured together.
    println!("cpu_ms_per_iter {:.1}", ms(cpu) / a.iters as f64);
    println!("median_ms {median:.2}");
    Ok(ExitCode::SUCCESS)
}

/// `--backend tflite`: the LiteRT interpreter alone (input already encoded, outputs left raw).
fn run_tflite(a: &BenchModelArgs) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let opts = TfliteOptions {
        threads: a.threads,
        ..Default::default()
    };
    let mut seg = TfliteSegmenter::load(&a.model, opts)
        .with_context(|| format!("loading {}", a.model.display()))?;
    let load = t0.elapsed();
    let [h, w] = seg.imgsz();
    let rgb: Vec<u8> = random_input(3 * (h * w) as usize)
        .iter()
        .map(|v| (v * 255.0) as u8)
        .collect();
    seg.set_input_rgb(&rgb)?;
    let t1 = Instant::now();
    seg.invoke()?;
    let first = t1.elapsed();
    for _ in 1..a.warmup {
        seg.invoke()?;
    }
    let mut times = Vec::with_capacity(a.iters);
    let cpu0 = cpu_time();
    for _ in 0..a.iters {
        let t = Instant::now();
        seg.invoke()?;
        times.push(t.elapsed());
    }
    let cpu = cpu_time().saturating_sub(cpu0);
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = if times.len() % 2 == 1 {
        ms(times[times.len() / 2])
    } else {
        (ms(times[times.len() / 2 - 1]) + ms(times[times.len() / 2])) / 2.0
    };
    let info = seg.info();
    println!(
        "model {} (tflite, {} classes), input {w}x{h}, threads {}, boxes {}",
        a.model.display(),
        info.architecture.num_classes,
        a.threads,
        if seg.boxes_normalized() {
            "normalized"
        } else {
            "in pixels"
        },
    );
    println!(
        "load_ms {:.1}  first_ms {:.1}  min_ms {:.2}  max_ms {:.2}  iters {}",
        ms(load),
        ms(first),
        ms(times[0]),
        ms(times[times.len() - 1]),
        a.iters
    );
    println!("cpu_ms_per_iter {:.1}", ms(cpu) / a.iters as f64);
    println!("median_ms {median:.2}");
    Ok(ExitCode::SUCCESS)
}

/// `--layers`: the ops of one frame (the same calls in every timed run), each with its median
/// time over the runs, slowest first.
fn print_layers(records: Vec<LayerTime>, iters: usize, median_ms: f64) {
    let per_run = records.len() / iters.max(1);
    if per_run == 0 || records.len() != per_run * iters {
        println!(
            "layers: {} op calls in {iters} runs, not the same each run; not shown",
            records.len()
        );
        return;
    }
    let mut rows: Vec<(f64, usize, &LayerTime)> = (0..per_run)
        .map(|i| {
            let mut t: Vec<f64> = (0..iters)
                .map(|r| records[r * per_run + i].time.as_secs_f64() * 1e3)
                .collect();
            t.sort_by(f64::total_cmp);
            (t[t.len() / 2], i, &records[i])
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.0).sum();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let convs = records[..per_run]
        .iter()
        .filter(|r| r.op.starts_with("conv"))
        .count();
    println!(
        "layers: {per_run} ops a frame ({convs} convolutions), median of {iters} runs, slowest first"
    );
    if convs == 0 {
        println!(
            "layers: with this dtype the convolutions run on candle's conv2d and are not timed \
             one by one (only f32 and int8 use edgesift's kernels)"
        );
    }
    println!("    #  ms      share  GMAC/s  shape                         op");
    for (t, i, r) in &rows {
        let rate = if r.macs > 0 {
            format!("{:.1}", r.macs as f64 / (t * 1e6))
        } else {
            "-".into()
        };
        println!(
            "  {i:>3}  {t:>6.2}  {:>5.1}%  {rate:>6}  {:<28}  {}",
            100.0 * t / median_ms,
            r.shape,
            r.op
        );
    }
    println!(
        "layers_total_ms {total:.2} of median {median_ms:.2} ({:.1} %; the rest: candle's own ops \
         and the threads' hand-offs)",
        100.0 * total / median_ms
    );
}

/// One forward pass, with the outputs read back so that lazy or asynchronous work is finished.
fn forward(net: &YoloV8Seg, x: &Tensor) -> anyhow::Result<()> {
    let out = net.forward(x)?;
    out.pred.device().synchronize()?;
    std::hint::black_box(out.pred.dims());
    Ok(())
}

/// User + system CPU time of the whole process so far.
pub(super) fn cpu_time() -> Duration {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Values in 0..1 from a fixed-seed generator (xorshift): the timing does not depend on them,
/// but every run sees the same input.
fn random_input(n: usize) -> Vec<f32> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}
