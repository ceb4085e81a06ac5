//! Throughput of the whole pipeline at 1280x720, and what it costs on top of the model.
//!
//! `cargo bench --bench pipeline [-- --frames N] [-- --model FILE]`
//!
//! 1. With the model replaced by a no-op: frames per second through capture (a raw YUYV dump
//!    replayed as fast as possible, through the camera's converter) -> select -> store
//!    decision, with the real selector and store (fsync off). Target: >= 500 frames/s.
//! 2. With the model: the segmenter's own rate on the same frames, called in a loop, against
//!    the rate at which the pipeline segments them. Target: >= 95 % of the model's own rate.
//! 3. Peak resident memory of the process (VmHWM).
//!
//! Not criterion: one long run per case says more about a pipeline than many short ones, and
//! the figures are compared within this one run.

use edgesift::capture::{SourceConfig, SourceKind};
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

fn stages(cfg: &Config, segmenter: Box<dyn Segmenter>) -> Stages {
    let info = segmenter.info().clone();
    Stages {
        source: cfg.source.open().expect("replay opens"),
        select: pipeline::build_select(cfg).expect("default selection"),
        sink: Box::new(StoreSink::new(
            Store::open(&cfg.store).expect("store"),
            &info,
        )),
        segmenter,
    }
}

fn run(cfg: &Config, segmenter: Box<dyn Segmenter>, limits: RunLimits) -> (f64, f64, u64) {
    let control = Control::new();
    let stages = stages(cfg, segmenter);
    let t0 = Instant::now();
    pipeline::run(stages, limits, Queues::default(), control.clone()).expect("pipeline run");
    let secs = t0.elapsed().as_secs_f64();
    let s = control.stats.snapshot();
    (
        s.captured as f64 / secs,
        s.segmented as f64 / secs,
        s.selected_kept,
    )
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
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
    let frames: u64 = arg("--frames").and_then(|s| s.parse().ok()).unwrap_or(3000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dump = write_dump(tmp.path());

    let noop = NoopSegmenter {
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
    };
    let cfg = config(&dump, &tmp.path().join("noop"));
    let (cap_fps, seg_fps, kept) = run(
        &cfg,
        Box::new(noop),
        RunLimits {
            max_frames: Some(frames),
            duration: None,
        },
    );
    println!(
        "no-op model, {W}x{H}, {frames} frames: capture {cap_fps:.0} fps, select+store decision \
         {seg_fps:.0} fps, kept {kept} (target >= 500 fps)"
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
    let load = || YoloSegmenter::load(&model, ModelOptions::default()).expect("model loads");
    // The model alone, on the same frames, after a warm-up.
    let mut seg = load();
    let mut src = cfg.source.open().expect("replay");
    let mut img = RgbImage::new(W, H);
    src.next_frame(&mut img).expect("frame");
    seg.segment(&img).expect("warm-up");
    let n = 20;
    let t0 = Instant::now();
    for _ in 0..n {
        src.next_frame(&mut img).expect("frame");
        seg.segment(&img).expect("segment");
    }
    let alone = n as f64 / t0.elapsed().as_secs_f64();
    // The model in the pipeline: capture runs free and drops what the model cannot take.
    let cfg = config(&dump, &tmp.path().join("model"));
    let (cap_fps, seg_fps, _) = run(
        &cfg,
        Box::new(seg),
        RunLimits {
            max_frames: None,
            duration: Some(Duration::from_secs_f64(n as f64 / alone * 1.5 + 2.0)),
        },
    );
    println!(
        "model {} at {W}x{H}: alone {alone:.2} fps, in the pipeline {seg_fps:.2} fps ({:.0} %, \
         target >= 95 %), capture {cap_fps:.0} fps",
        model.file_name().unwrap_or_default().to_string_lossy(),
        100.0 * seg_fps / alone
    );
    println!("peak RSS {:.0} MiB", peak_rss_mib());
}
