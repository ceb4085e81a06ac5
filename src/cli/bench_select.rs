//! `edgesift bench-select`: how many ground-truth events of a synthetic stream the selection
//! catches, against interval and random sampling at the same keep rate.

use anyhow::Context;
use edgesift::capture::synthetic::EventRates;
use edgesift::capture::GroundTruth;
use edgesift::config::Config;
use edgesift::segment::{Detections, ModelOptions, Segmenter, YoloSegmenter};
use edgesift::select::bench::{self, Detector, Score, StreamOptions, TruthDetector};
use edgesift::select::SelectConfig;
use image::RgbImage;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct BenchSelectArgs {
    /// Frames of the synthetic stream.
    #[arg(long, default_value_t = 20_000)]
    frames: u64,
    /// Seed of the stream (and of the truth detector's perturbation and random sampling).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Frame width in pixels.
    #[arg(long, default_value_t = 320)]
    width: u32,
    /// Frame height in pixels.
    #[arg(long, default_value_t = 180)]
    height: u32,
    /// Frames per second of capture time: the rate the segmenter delivers frames at.
    #[arg(long, default_value_t = 10.0)]
    fps: f32,
    /// Where detections come from: `truth` (ground truth, perturbed; fast) or `model`.
    #[arg(long, value_enum, default_value = "truth")]
    detector: DetectorArg,
    /// Model weights (safetensors) for `--detector model`.
    #[arg(long)]
    model: Option<PathBuf>,
    /// A config file whose `[select]` section is used (default: the built-in defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Rare-class events per hour (the generator's default is 18).
    #[arg(long, default_value_t = bench::bench_event_rates().rare_class_per_hour)]
    rare_per_hour: f32,
    /// Occlusion events per hour (the generator's default is 36).
    #[arg(long, default_value_t = bench::bench_event_rates().occlusion_per_hour)]
    occlusion_per_hour: f32,
    /// Also run each strategy alone (with the same budget).
    #[arg(long)]
    each: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DetectorArg {
    Truth,
    Model,
}

struct ModelDetector(YoloSegmenter);

impl Detector for ModelDetector {
    fn describe(&self) -> String {
        format!(
            "model {} (sha256 {})",
            self.0.info().name,
            &self.0.info().sha256[..12]
        )
    }

    fn detect(&mut self, _: u64, image: &RgbImage, _: &GroundTruth) -> Result<Detections, String> {
        self.0.segment(image).map_err(|e| e.to_string())
    }
}

pub fn run(a: BenchSelectArgs) -> anyhow::Result<ExitCode> {
    let cfg: SelectConfig = match &a.config {
        Some(p) => Config::load(p)?.select,
        None => SelectConfig::default(),
    };
    cfg.validate().map_err(|e| anyhow::anyhow!("select.{e}"))?;
    let opts = StreamOptions {
        frames: a.frames,
        seed: a.seed,
        width: a.width,
        height: a.height,
        fps: a.fps,
        events: EventRates {
            rare_class_per_hour: a.rare_per_hour,
            occlusion_per_hour: a.occlusion_per_hour,
            ..EventRates::default()
        },
    };
    let mut detector: Box<dyn Detector> = match a.detector {
        DetectorArg::Truth => Box::new(TruthDetector::new(a.seed)),
        DetectorArg::Model => {
            let path = a
                .model
                .as_ref()
                .context("--detector model needs --model FILE")?;
            let seg = YoloSegmenter::load(path, ModelOptions::default())
                .with_context(|| format!("loading model {}", path.display()))?;
            Box::new(ModelDetector(seg))
        }
    };
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = Instant::now();
    let frames = bench::record_stream(&opts, detector.as_mut(), |done| {
        if interactive {
            eprint!("\r{done}/{} frames", opts.frames);
        }
    })
    .map_err(anyhow::Error::msg)?;
    if interactive {
        eprintln!();
    }
    let record_s = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mut scores, stats) =
        bench::compare(&frames, &cfg, "strategies", a.seed).map_err(anyhow::Error::msg)?;
    if a.each {
        for (name, alone) in each_alone(&cfg) {
            let (keep, _) = bench::select(&frames, &alone).map_err(anyhow::Error::msg)?;
            scores.push(bench::score(&format!("only {name}"), &frames, &keep));
        }
    }
    let select_s = t.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let detector_name = detector.describe();
    if a.json {
        let j = serde_json::json!({
            "detector": detector_name,
            "frames": a.frames,
            "seed": a.seed,
            "width": a.width,
            "height": a.height,
            "fps": a.fps,
            "rare_per_hour": a.rare_per_hour,
            "occlusion_per_hour": a.occlusion_per_hour,
            "record_seconds": record_s,
            "select_seconds": select_s,
            "scores": scores.iter().map(Score::to_json).collect::<Vec<_>>(),
            "stats": {
                "candidates": stats.candidates,
                "kept": stats.kept,
                "skipped_cooldown": stats.skipped_cooldown,
                "skipped_budget": stats.skipped_budget,
                "fired": stats.fired,
                "kept_by_reason": stats.kept_by_reason,
            },
        });
        serde_json::to_writer_pretty(&mut out, &j)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} frames {}x{} at {} fps ({:.0} min), seed {}, detector: {}",
            a.frames,
            a.width,
            a.height,
            a.fps,
            a.frames as f64 / a.fps as f64 / 60.0,
            a.seed,
            detector_name
        )?;
        writeln!(
            out,
            "share of events with at least one kept frame (caught/events); interval and random \
             keep as many frames as the strategies"
        )?;
        write!(out, "{}", bench::table(&scores))?;
        let means: Vec<String> = scores[0]
            .kinds
            .iter()
            .map(|k| format!("{} {:.0}", k.kind.name(), k.mean_frames))
            .collect();
        writeln!(out, "mean frames per event: {}", means.join(", "))?;
        writeln!(
            out,
            "strategies: {} candidates, {} kept, {} skipped in cooldown, {} over budget; \
             kept by reason: {:?}",
            stats.candidates,
            stats.kept,
            stats.skipped_cooldown,
            stats.skipped_budget,
            stats.kept_by_reason
        )?;
        writeln!(out, "recording {record_s:.1} s, selection {select_s:.2} s")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The configuration with one strategy on at a time (same budget and window).
fn each_alone(cfg: &SelectConfig) -> Vec<(&'static str, SelectConfig)> {
    let off = |mut c: SelectConfig| {
        c.diversity.enabled = false;
        c.classes.enabled = false;
        c.occlusion.enabled = false;
        c.uncertainty.enabled = false;
        c.crowd.enabled = false;
        c.small_objects.enabled = false;
        c.interval.enabled = false;
        c
    };
    let mut v = Vec::new();
    let mut push = |name, f: fn(&mut SelectConfig)| {
        let mut c = off(cfg.clone());
        f(&mut c);
        v.push((name, c));
    };
    push("diversity", |c| c.diversity.enabled = true);
    push("classes", |c| c.classes.enabled = true);
    push("occlusion", |c| c.occlusion.enabled = true);
    push("uncertainty", |c| c.uncertainty.enabled = true);
    push("crowd", |c| c.crowd.enabled = true);
    push("small_objects", |c| c.small_objects.enabled = true);
    push("interval", |c| c.interval.enabled = true);
    v
}
