//! Throughput of the whole pipeline at 1280x720, and what it costs on top of the model.
//!
//! `cargo bench --bench pipeline [-- --frames N] [-- --model FILE]`
//!
//! 1. With the model replaced by a no-op: frames per second through capture (a raw YUYV dump
//!    replayed as fast as possible, through the camera's converter) -> select -> store
//!    decision, with the real selector and store (fsync off). Target: >= 500 frames/s. Capture
//!    runs free and drops the oldest waiting frame when the later stages lag, so on a machine
//!    with fewer free cores than pipeline threads the delivered rate depends on how the threads
//!    share the cores; the process's CPU time per delivered frame is printed too (a figure that
//!    moves far less with the load).
//! 2. With the model: the segmenter's own rate (only `segment` timed, on frames captured
//!    beforehand), against the rate at which the pipeline segments in its steady state when
//!    capture delivers `--capture-fps` frames/s like a camera (default 60: above the model's
//!    own rate, which reached 34 fps on this machine; a camera slower than the model would cap
//!    the pipeline below it and measure the camera). Target: >= 95 %. The two phases alternate
//!    over `--rounds` rounds of `--seconds` each (default 4 x 20 s), because the model's own
//!    rate on a shared machine drifts by more than the 5 % being measured; the pooled ratio and
//!    the rounds' range are printed, with the CPU each pipeline thread used. `--imgsz N` runs
//!    the model at another input size (a slower model: the same stages' work per frame weighs
//!    less against it).
//! 3. An MJPEG camera at 30 fps with the model at `--mjpeg-imgsz` (640 by default: a board
//!    slower than its camera), frames decoded on arrival against decoded when the model takes
//!    them (what the camera source does), alternating over `--mjpeg-rounds` pairs (default 2;
//!    0 skips): the model's rate in the pipeline either way.
//! 4. Peak resident memory of the process (VmHWM) after each part.
//!
//! Not criterion: one long run per case says more about a pipeline than many short ones, and
//! the figures are compared within this one run.

use edgesift::capture::{
    CaptureError, Converter, Delivered, FrameMeta, PixelFormat, RawFrame, Source, SourceConfig,
    SourceKind,
};
use edgesift::config::Config;
use edgesift::pipeline::{self, Control, Queues, RunLimits, Stages, StoreSink};
use edgesift::segment::{
    Architecture, Detections, ModelInfo, ModelOptions, SegmentError, Segmenter, Timings,
    YoloSegmenter,
};
use edgesift::store::Store;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const W: u32 = 1280;
const H: u32 = 720;

/// A segmenter that finds nothing, instantly; the embedding is a constant.
struct NoopSegmenter {
    info: ModelInfo,
    names: Arc<[String]>,
}

impl Segmenter for NoopSegmenter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError> {
        Ok(Detections {
            image_width: image.width(),
            image_height: image.height(),
            instances: Vec::new(),
            embedding: vec![0.1; 64],
            class_names: self.names.clone(),
            timings: Timings::default(),
        })
    }
}

/// A segmenter that counts the frames it segmented, the instances it found and the time its
/// calls took, so that the two phases of the model part can be shown to have segmented the same
/// kind of content (the masks' post-processing costs per instance), and the pipeline's cost
/// split into the model's calls taking longer and the time between them.
struct Counting<S> {
    inner: S,
    seen: Arc<std::sync::Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    frames: u64,
    instances: u64,
    in_calls: Duration,
}

impl<S: Segmenter> Segmenter for Counting<S> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError> {
        let t0 = Instant::now();
        let det = self.inner.segment(image)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.frames += 1;
        seen.instances += det.instances.len() as u64;
        seen.in_calls += t0.elapsed();
        Ok(det)
    }
}

/// Instances per segmented frame, and milliseconds per call.
fn per_frame(seen: &std::sync::Mutex<Seen>) -> (f64, f64) {
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let n = seen.frames.max(1) as f64;
    (
        seen.instances as f64 / n,
        1e3 * seen.in_calls.as_secs_f64() / n,
    )
}

/// 120 frames of the test photo, panned so that consecutive frames differ, as a YUYV dump.
fn write_dump(dir: &Path) -> PathBuf {
    let photo = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/coffee.png"
    ))
    .expect("tests/data/coffee.png")
    .into_rgb8();
    let big = image::imageops::resize(
        &photo,
        W + 240,
        H + 135,
        image::imageops::FilterType::Triangle,
    );
    let mut out = Vec::with_capacity((W * H * 2) as usize * 120);
    for i in 0..120u32 {
        let (ox, oy) = (i * 2, (i * 9) / 8);
        for y in 0..H {
            for x in (0..W).step_by(2) {
                let p0 = big.get_pixel(x + ox, y + oy).0.map(f32::from);
                let p1 = big.get_pixel(x + 1 + ox, y + oy).0.map(f32::from);
                let luma = |p: [f32; 3]| (16.0 + 0.257 * p[0] + 0.504 * p[1] + 0.098 * p[2]) as u8;
                let u = (128.0 - 0.148 * p0[0] - 0.291 * p0[1] + 0.439 * p0[2]) as u8;
                let v = (128.0 + 0.439 * p0[0] - 0.368 * p0[1] - 0.071 * p0[2]) as u8;
                out.extend_from_slice(&[luma(p0), u, luma(p1), v]);
            }
        }
    }
    let path = dir.join("road.yuyv");
    std::fs::write(&path, out).expect("writing the dump");
    path
}

fn config(dump: &Path, store: &Path) -> Config {
    let mut cfg = Config {
        source: SourceConfig {
            kind: SourceKind::Replay,
            ..Default::default()
        },
        ..Default::default()
    };
    cfg.source.replay.path = dump.to_owned();
    cfg.source.replay.width = W;
    cfg.source.replay.height = H;
    cfg.source.replay.fps = 0.0;
    cfg.source.replay.looping = true;
    cfg.store.dir = store.to_owned();
    cfg.store.fsync = false;
    cfg.store.min_free_bytes = 0;
    cfg
}

/// A camera sending MJPEG at 30 fps: the same JPEGs over and over, paced.
struct JpegCamera {
    frames: Arc<Vec<Vec<u8>>>,
    conv: Converter,
    next: u64,
    due: Option<Instant>,
    /// Hand frames over undecoded (as `V4lSource` does) rather than decode each on arrival.
    defer: bool,
}

impl JpegCamera {
    fn new(frames: Arc<Vec<Vec<u8>>>, defer: bool) -> Self {
        let conv = Converter::new(PixelFormat::Mjpeg, W, H, None, Default::default())
            .expect("an MJPEG converter");
        Self {
            frames,
            conv,
            next: 0,
            due: None,
            defer,
        }
    }

    /// Waits for the next frame's time; its bytes and metadata.
    fn wait(&mut self) -> (&[u8], FrameMeta) {
        let due = *self.due.get_or_insert_with(Instant::now);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        self.due = Some(due + Duration::from_secs_f64(1.0 / 30.0));
        let i = self.next;
        self.next += 1;
        let meta = FrameMeta {
            index: i,
            ..Default::default()
        };
        (&self.frames[i as usize % self.frames.len()], meta)
    }
}

impl Source for JpegCamera {
    fn describe(&self) -> String {
        "bench:mjpeg-camera".into()
    }

    fn next_frame(&mut self, image: &mut RgbImage) -> Result<Option<FrameMeta>, CaptureError> {
        let mut conv = self.conv.clone();
        let (data, meta) = self.wait();
        conv.convert(data, image).expect("the bench's JPEGs decode");
        Ok(Some(meta))
    }

    fn next_pixels(
        &mut self,
        image: &mut RgbImage,
        raw: &mut RawFrame,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        if !self.defer {
            return Ok(self.next_frame(image)?.map(|m| (m, Delivered::Rgb)));
        }
        let conv = self.conv.clone();
        let (data, meta) = self.wait();
        raw.fill(&conv, data).expect("the bench's JPEGs are whole");
        Ok(Some((meta, Delivered::Raw)))
    }
}

fn stages(cfg: &Config, segmenter: Box<dyn Segmenter>) -> Stages {
    stages_from(cfg, cfg.source.open().expect("replay opens"), segmenter)
}

fn stages_from(cfg: &Config, source: Box<dyn Source>, segmenter: Box<dyn Segmenter>) -> Stages {
    let info = segmenter.info().clone();
    Stages {
        source,
        select: pipeline::build_select(cfg).expect("default selection"),
        sink: Box::new(StoreSink::new(
            Store::open(&cfg.store).expect("store"),
            &info,
        )),
        segmenter,
    }
}

struct Run {
    capture_fps: f64,
    segment_fps: f64,
    kept: u64,
    dropped: u64,
    segmented: u64,
    /// CPU seconds (user + system, all threads) the run took.
    cpu_s: f64,
}

fn run(cfg: &Config, segmenter: Box<dyn Segmenter>, limits: RunLimits) -> Run {
    let control = Control::new();
    let stages = stages(cfg, segmenter);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    pipeline::run(stages, limits, Queues::default(), control.clone()).expect("pipeline run");
    let secs = t0.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds() - c0;
    let s = control.stats.snapshot();
    Run {
        capture_fps: s.captured as f64 / secs,
        segment_fps: s.segmented as f64 / secs,
        kept: s.selected_kept,
        dropped: s.dropped,
        segmented: s.segmented,
        cpu_s,
    }
}

/// What the pipeline did in its steady state: start-up (threads, the first frames, the model's
/// scratch buffers growing) and the drain at the end are outside the window.
struct Steady {
    segmented: u64,
    secs: f64,
    /// CPU time of each named thread (the model's worker threads under "workers") as a share
    /// of the window's wall time, e.g. `segment 0.61, workers 1.20, capture 0.04`.
    cpu_by_thread: String,
}

fn steady_run(cfg: &Config, segmenter: Box<dyn Segmenter>, window_s: f64) -> Steady {
    steady_run_of(stages(cfg, segmenter), window_s)
}

fn steady_run_of(stages: Stages, window_s: f64) -> Steady {
    const WARM_S: f64 = 3.0;
    let control = Control::new();
    let limits = RunLimits {
        max_frames: None,
        duration: Some(Duration::from_secs_f64(WARM_S + window_s + 1.0)),
    };
    std::thread::scope(|scope| {
        let c = control.clone();
        let runner =
            scope.spawn(move || pipeline::run(stages, limits, Queues::default(), c).expect("run"));
        std::thread::sleep(Duration::from_secs_f64(WARM_S));
        let (t0, s0, cpu0) = (Instant::now(), control.stats.snapshot(), thread_cpu());
        std::thread::sleep(Duration::from_secs_f64(window_s));
        let (secs, s1, cpu1) = (
            t0.elapsed().as_secs_f64(),
            control.stats.snapshot(),
            thread_cpu(),
        );
        runner.join().expect("pipeline thread");
        let mut by: Vec<(String, f64)> = cpu1
            .iter()
            .map(|(name, t)| (name.clone(), (t - cpu0.get(name).unwrap_or(&0.0)) / secs))
            .filter(|(_, share)| *share >= 0.005)
            .collect();
        by.sort_by(|a, b| b.1.total_cmp(&a.1));
        Steady {
            segmented: s1.segmented - s0.segmented,
            secs,
            cpu_by_thread: by
                .iter()
                .map(|(n, share)| format!("{n} {share:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    })
}

/// CPU seconds per thread name so far (the pool's threads, which run the model and the stages'
/// heavy work, and the main thread are summed under "workers").
fn thread_cpu() -> std::collections::BTreeMap<String, f64> {
    let main_name = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    let tick = 100.0; // USER_HZ on Linux
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // comm is in parentheses and may hold spaces; the fields after it are space-separated.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let cpu = (u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0)) / tick;
        let name = if comm == main_name.trim() || comm.starts_with("edgesift-pool") {
            "workers"
        } else {
            comm
        };
        *out.entry(name.to_string()).or_insert(0.0) += cpu;
    }
    out
}

/// User + system CPU time of the whole process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: rusage is plain integers (all zeros is a valid value); getrusage fills it through
    // a valid pointer and cannot fail with RUSAGE_SELF.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A segmenter that finds nothing.
fn noop_segmenter() -> NoopSegmenter {
    NoopSegmenter {
        info: ModelInfo {
            name: "noop".into(),
            path: PathBuf::new(),
            sha256: String::new(),
            class_names: Arc::from(Vec::<String>::new()),
            trained_imgsz: None,
            architecture: Architecture {
                num_classes: 0,
                num_masks: 0,
                proto_channels: 0,
                reg_max: 16,
                backbone_widths: Vec::new(),
                neck_widths: [0; 3],
                c2f_depths: Vec::new(),
            },
        },
        names: Arc::from(Vec::<String>::new()),
    }
}

fn rss_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn peak_rss_mib() -> f64 {
    rss_mib("VmHWM:")
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test --benches` asks for the list; this bench has no named cases.
        return;
    }
    // As `edgesift` does for every command: the daemon's malloc settings.
    edgesift::ops::tune_allocator();
    edgesift::pool::start();
    let frames: u64 = arg("--frames").and_then(|s| s.parse().ok()).unwrap_or(3000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dump = write_dump(tmp.path());

    let noop = noop_segmenter();
    println!(
        "RSS after writing the dump {:.0} MiB (peak {:.0} MiB)",
        rss_mib("VmRSS:"),
        peak_rss_mib()
    );
    println!(
        "{} cores, load average {} (the machine is shared: figures move with the load)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    let cfg = config(&dump, &tmp.path().join("noop"));
    let noop_run = run(
        &cfg,
        Box::new(noop),
        RunLimits {
            max_frames: Some(frames),
            duration: None,
        },
    );
    println!(
        "no-op model, {W}x{H}, {frames} frames captured: capture {:.0} fps, through select and \
         store decision {:.0} fps (target >= 500 fps), {} dropped at capture, kept {}; CPU {:.2} \
         ms per captured frame, {:.2} ms per frame through",
        noop_run.capture_fps,
        noop_run.segment_fps,
        noop_run.dropped,
        noop_run.kept,
        1e3 * noop_run.cpu_s / frames as f64,
        1e3 * noop_run.cpu_s / noop_run.segmented.max(1) as f64,
    );
    // The same, with capture paced at the target rate: does everything captured get through?
    let mut paced = config(&dump, &tmp.path().join("paced"));
    paced.source.replay.fps = 500.0;
    let paced_run = run(
        &paced,
        Box::new(noop_segmenter()),
        RunLimits {
            max_frames: Some(frames),
            duration: None,
        },
    );
    println!(
        "no-op model, capture paced at 500 fps: {:.0} fps captured, {:.0} fps through select and \
         store decision, {} dropped at capture; CPU {:.2} ms per frame",
        paced_run.capture_fps,
        paced_run.segment_fps,
        paced_run.dropped,
        1e3 * paced_run.cpu_s / paced_run.segmented.max(1) as f64,
    );
    println!(
        "RSS after the no-op runs {:.0} MiB (peak {:.0} MiB; writing the 221 MB dump counts in the \
         peak)",
        rss_mib("VmRSS:"),
        peak_rss_mib()
    );

    let model = arg("--model").map(PathBuf::from).unwrap_or_else(|| {
        let bundled = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/models/edgesift-road-n-seg.safetensors"
        ));
        if bundled.is_file() {
            bundled
        } else {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/parity/v8n_coffee_320.safetensors"
            ))
        }
    });
    // `--imgsz N`: the model's input size for this part (default: the file's own); a larger one
    // is a slower model, as on a smaller board, with the same work per frame around it.
    let model_imgsz: Option<u32> = arg("--imgsz").and_then(|s| s.parse().ok());
    let load = || {
        let opts = ModelOptions {
            imgsz: model_imgsz.map(|n| [n, n]),
            ..ModelOptions::default()
        };
        YoloSegmenter::load(&model, opts).expect("model loads")
    };
    let rounds: usize = arg("--rounds").and_then(|s| s.parse().ok()).unwrap_or(4);
    let capture_fps: f64 = arg("--capture-fps")
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let phase_s: f64 = arg("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    // The model alone segments every 4th frame of the dump (30 images, converted beforehand):
    // the same pan, so the same kind of content, as the pipeline replays.
    let imgs: Vec<RgbImage> = {
        let mut src = cfg.source.open().expect("replay");
        let mut img = RgbImage::new(W, H);
        let mut imgs = Vec::new();
        for i in 0..120 {
            src.next_frame(&mut img).expect("frame");
            if i % 4 == 0 {
                imgs.push(img.clone());
            }
        }
        imgs
    };
    // Rounds alternate which phase goes first, so that a drift in the machine's load over the
    // run does not favour one side.
    let mut ratios = Vec::new();
    let (mut alone_frames, mut alone_s, mut piped_frames, mut piped_s) = (0u64, 0.0, 0u64, 0.0);
    for round in 0..rounds {
        let (seen_alone, seen_piped) = (Arc::default(), Arc::default());
        let alone = || {
            let mut seg = Counting {
                inner: load(),
                seen: Arc::clone(&seen_alone),
            };
            seg.segment(&imgs[0]).expect("warm-up");
            let (t0, c0, mut n) = (Instant::now(), cpu_seconds(), 0u64);
            while t0.elapsed().as_secs_f64() < phase_s {
                seg.segment(&imgs[n as usize % imgs.len()])
                    .expect("segment");
                n += 1;
            }
            let secs = t0.elapsed().as_secs_f64();
            (n, secs, (cpu_seconds() - c0) / secs)
        };
        let piped = || {
            let mut cfg = config(&dump, &tmp.path().join(format!("model{round}")));
            cfg.source.replay.fps = capture_fps;
            let seg = Counting {
                inner: load(),
                seen: Arc::clone(&seen_piped),
            };
            steady_run(&cfg, Box::new(seg), phase_s)
        };
        let (a, p) = if round % 2 == 0 {
            let a = alone();
            (a, piped())
        } else {
            let p = piped();
            (alone(), p)
        };
        let (fa, fp) = (a.0 as f64 / a.1, p.segmented as f64 / p.secs);
        let (alone_seen, piped_seen) = (per_frame(&seen_alone), per_frame(&seen_piped));
        alone_frames += a.0;
        alone_s += a.1;
        piped_frames += p.segmented;
        piped_s += p.secs;
        ratios.push(fp / fa);
        println!(
            "round {round} (load {}): model alone {fa:.2} fps (CPU {:.2}), in the pipeline {fp:.2} fps \
             ({:.1} %); instances per frame {:.2} alone, {:.2} in the pipeline; ms per model call \
             {:.1} alone, {:.1} in the pipeline (a frame every {:.1}); CPU by thread in the \
             pipeline: {}",
            loadavg(),
            a.2,
            100.0 * fp / fa,
            alone_seen.0,
            piped_seen.0,
            alone_seen.1,
            piped_seen.1,
            1e3 / fp,
            p.cpu_by_thread
        );
    }
    ratios.sort_by(f64::total_cmp);
    let pooled = (piped_frames as f64 / piped_s) / (alone_frames as f64 / alone_s);
    // The rounds' spread says how far the pooled figure can be trusted: on a shared machine
    // one round's ratio moves by several points, and the standard error of their mean shrinks
    // only with the square root of the number of rounds.
    let n = ratios.len() as f64;
    let mean = ratios.iter().sum::<f64>() / n;
    let sd = (ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    println!(
        "model {} (imgsz {}) at {W}x{H}, capture at {capture_fps} fps, {rounds} rounds of {phase_s} s per phase: in the \
         pipeline / alone, pooled {:.1} %, median of rounds {:.1} %, range {:.1}-{:.1} %, mean of \
         rounds {:.1} % +- {:.1} (standard error) (target >= 95 %)",
        model.file_name().unwrap_or_default().to_string_lossy(),
        model_imgsz.map_or("as trained".to_string(), |n| n.to_string()),
        100.0 * pooled,
        100.0 * ratios[ratios.len() / 2],
        100.0 * ratios[0],
        100.0 * ratios[ratios.len() - 1],
        100.0 * mean,
        100.0 * sd / n.sqrt(),
    );

    let mjpeg_rounds: usize = arg("--mjpeg-rounds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    if mjpeg_rounds > 0 {
        let imgsz: u32 = arg("--mjpeg-imgsz")
            .and_then(|s| s.parse().ok())
            .unwrap_or(640);
        let jpegs: Arc<Vec<Vec<u8>>> = Arc::new(
            imgs.iter()
                .map(|img| {
                    let mut out = Vec::new();
                    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
                        .encode_image(img)
                        .expect("encoding a frame");
                    out
                })
                .collect(),
        );
        let load_at = || {
            let opts = ModelOptions {
                imgsz: Some([imgsz, imgsz]),
                ..ModelOptions::default()
            };
            YoloSegmenter::load(&model, opts).expect("model loads")
        };
        let (mut fps_now, mut fps_taken) = (Vec::new(), Vec::new());
        for round in 0..mjpeg_rounds {
            let once = |defer: bool| {
                let cfg = config(&dump, &tmp.path().join(format!("mjpeg{round}{defer}")));
                let source = Box::new(JpegCamera::new(jpegs.clone(), defer));
                let s = steady_run_of(stages_from(&cfg, source, Box::new(load_at())), phase_s);
                s.segmented as f64 / s.secs
            };
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for defer in order {
                let fps = once(defer);
                if defer {
                    fps_taken.push(fps);
                } else {
                    fps_now.push(fps);
                }
            }
        }
        let list = |v: &[f64]| {
            v.iter()
                .map(|f| format!("{f:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!(
            "MJPEG camera {W}x{H} at 30 fps, model at {imgsz}, {mjpeg_rounds} pairs of {phase_s} s: \
             segmented {} fps decoding every frame on arrival, {} fps decoding the frames the \
             model takes ({:+.1} %)",
            list(&fps_now),
            list(&fps_taken),
            100.0 * (mean(&fps_taken) / mean(&fps_now) - 1.0),
        );
    }
    println!("peak RSS at the end {:.0} MiB", peak_rss_mib());
}
