//! `edgesift bench-select`: how many ground-truth events of a synthetic stream the selection
//! catches, against interval and random sampling at the same keep rate.

use anyhow::Context;
use edgesift::capture::synthetic::EventRates;
use edgesift::capture::{EventKind, GroundTruth};
use edgesift::config::Config;
use edgesift::segment::{Detections, ModelOptions, Segmenter, YoloSegmenter};
use edgesift::select::bench::{self, Detector, Score, StreamOptions, TruthDetector};
use edgesift::select::{SelectConfig, SelectStats};
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
    /// Several seeds, e.g. `1-18` or `1,4,7-9`: one stream each (run on all cores with the
    /// truth detector), a line per seed and the table pooled over all their events. One seed's
    /// share moves by an event or two; tune on some seeds and check on others.
    #[arg(long, conflicts_with = "seed", value_parser = parse_seeds)]
    seeds: Option<Seeds>,
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

/// The seeds of `--seeds`, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeds(Vec<u64>);

fn parse_seeds(spec: &str) -> Result<Seeds, String> {
    let mut seeds = Vec::new();
    for part in spec.split(',').map(str::trim) {
        let num = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("`{s}` is not a seed (a whole number)"))
        };
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(format!("`{part}`: the range runs backwards"));
                }
                if hi - lo >= 1000 {
                    return Err(format!("`{part}`: more than 1000 seeds"));
                }
                seeds.extend(lo..=hi);
            }
            None => seeds.push(num(part)?),
        }
    }
    if seeds.is_empty() {
        return Err("no seed given".into());
    }
    Ok(Seeds(seeds))
}

/// One stream's results.
struct SeedRun {
    seed: u64,
    detector: String,
    scores: Vec<Score>,
    stats: SelectStats,
    record_s: f64,
    select_s: f64,
}

pub fn run(a: BenchSelectArgs) -> anyhow::Result<ExitCode> {
    let cfg: SelectConfig = match &a.config {
        Some(p) => Config::load(p)?.select,
        None => SelectConfig::default(),
    };
    cfg.validate().map_err(|e| anyhow::anyhow!("select.{e}"))?;
    match &a.seeds {
        Some(seeds) => run_seeds(&a, &cfg, &seeds.0),
        None => {
            let r = run_seed(
                &a,
                &cfg,
                a.seed,
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
            )?;
            print_one(&a, &r)
        }
    }
}

/// Records one seed's stream and scores the selection on it.
fn run_seed(
    a: &BenchSelectArgs,
    cfg: &SelectConfig,
    seed: u64,
    progress: bool,
) -> anyhow::Result<SeedRun> {
    let opts = StreamOptions {
        frames: a.frames,
        seed,
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
        DetectorArg::Truth => Box::new(TruthDetector::new(seed)),
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
    let started = Instant::now();
    let frames = bench::record_stream(&opts, detector.as_mut(), |done| {
        if progress {
            eprint!("\r{done}/{} frames", opts.frames);
        }
    })
    .map_err(anyhow::Error::msg)?;
    if progress {
        eprintln!();
    }
    let record_s = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mut scores, stats) =
        bench::compare(&frames, cfg, "strategies", seed).map_err(anyhow::Error::msg)?;
    if a.each {
        for (name, alone) in each_alone(cfg) {
            let (keep, _) = bench::select(&frames, &alone).map_err(anyhow::Error::msg)?;
            scores.push(bench::score(&format!("only {name}"), &frames, &keep));
        }
    }
    Ok(SeedRun {
        seed,
        detector: detector.describe(),
        scores,
        stats,
        record_s,
        select_s: t.elapsed().as_secs_f64(),
    })
}

fn print_one(a: &BenchSelectArgs, r: &SeedRun) -> anyhow::Result<ExitCode> {
    let SeedRun {
        seed,
        detector: detector_name,
        scores,
        stats,
        record_s,
        select_s,
    } = r;
    let mut out = std::io::stdout().lock();
    if a.json {
        let j = serde_json::json!({
            "detector": detector_name,
            "frames": a.frames,
            "seed": seed,
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
            seed,
            detector_name
        )?;
        writeln!(
            out,
            "share of events with at least one kept frame (caught/events); interval and random \
             keep as many frames as the strategies"
        )?;
        write!(out, "{}", bench::table(scores))?;
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

/// Runs every seed (on all cores with the truth detector; one at a time with the model, which
/// uses the cores itself), then prints a line per seed and the pooled table.
fn run_seeds(a: &BenchSelectArgs, cfg: &SelectConfig, seeds: &[u64]) -> anyhow::Result<ExitCode> {
    let workers = match a.detector {
        DetectorArg::Truth => std::thread::available_parallelism().map_or(1, |n| n.get()),
        DetectorArg::Model => 1,
    }
    .min(seeds.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                let r = run_seed(a, cfg, seed, false);
                if interactive {
                    eprintln!("seed {seed} done");
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let runs = results
        .into_iter()
        .map(|(_, r)| r)
        .collect::<anyhow::Result<Vec<SeedRun>>>()?;
    let pooled = bench::pool(&runs.iter().map(|r| r.scores.clone()).collect::<Vec<_>>());
    // Seeds whose strategies caught at least 90 % of a kind's events (of the seeds that had
    // such events): the bar, per stream.
    let at_bar: Vec<(EventKind, usize, usize)> = EventKind::ALL
        .iter()
        .map(|&kind| {
            let with: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.scores[0].kind(kind).filter(|k| k.events > 0))
                .map(|k| k.share())
                .collect();
            (kind, with.iter().filter(|&&s| s >= 0.9).count(), with.len())
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let frames_total = a.frames * runs.len() as u64;
    let detector = match a.detector {
        DetectorArg::Truth => "truth (perturbed with each stream's seed)".to_string(),
        DetectorArg::Model => runs[0].detector.clone(),
    };
    if a.json {
        let j = serde_json::json!({
            "detector": detector,
            "frames_per_seed": a.frames,
            "seeds": seeds,
            "width": a.width,
            "height": a.height,
            "fps": a.fps,
            "rare_per_hour": a.rare_per_hour,
            "occlusion_per_hour": a.occlusion_per_hour,
            "per_seed": runs.iter().map(|r| serde_json::json!({
                "seed": r.seed,
                "scores": r.scores.iter().map(Score::to_json).collect::<Vec<_>>(),
                "kept_by_reason": r.stats.kept_by_reason,
            })).collect::<Vec<_>>(),
            "pooled": pooled.iter().map(Score::to_json).collect::<Vec<_>>(),
            "seeds_at_90_percent": at_bar.iter().map(|(k, n, of)| {
                (k.name().to_string(), serde_json::json!({ "seeds": n, "of": of }))
            }).collect::<serde_json::Map<_, _>>(),
        });
        serde_json::to_writer_pretty(&mut out, &j)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{} seeds x {} frames {}x{} at {} fps, detector: {}",
        runs.len(),
        a.frames,
        a.width,
        a.height,
        a.fps,
        detector
    )?;
    for r in &runs {
        let s = &r.scores[0];
        let kinds: Vec<String> = s
            .kinds
            .iter()
            .filter(|k| k.events > 0)
            .map(|k| {
                format!(
                    "{} {:.0}% ({}/{})",
                    k.kind.name(),
                    100.0 * k.share(),
                    k.caught,
                    k.events
                )
            })
            .collect();
        writeln!(
            out,
            "seed {:>4}: kept {:.2}%  {}",
            r.seed,
            100.0 * s.keep_rate(),
            kinds.join("  ")
        )?;
    }
    writeln!(
        out,
        "pooled over {} seeds ({frames_total} frames): share of all their events with at least one \
         kept frame; interval and random keep as many frames as the strategies on each seed",
        runs.len()
    )?;
    write!(out, "{}", bench::table(&pooled))?;
    let bar: Vec<String> = at_bar
        .iter()
        .filter(|(_, _, of)| *of > 0)
        .map(|(k, n, of)| format!("{} {n}/{of}", k.name()))
        .collect();
    writeln!(
        out,
        "seeds with >= 90% caught by the strategies: {}",
        bar.join(", ")
    )?;
    let (rec, sel): (f64, f64) = runs
        .iter()
        .fold((0.0, 0.0), |(a, b), r| (a + r.record_s, b + r.select_s));
    writeln!(
        out,
        "recording {rec:.1} s, selection {sel:.2} s (summed over seeds, {workers} at a time)"
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_lists_and_ranges() {
        assert_eq!(parse_seeds("1-3"), Ok(Seeds(vec![1, 2, 3])));
        assert_eq!(parse_seeds("7, 1,4-5"), Ok(Seeds(vec![7, 1, 4, 5])));
        assert_eq!(parse_seeds("9"), Ok(Seeds(vec![9])));
        for bad in ["", "3-1", "a", "1-x", "0-5000"] {
            let e = parse_seeds(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_seeds("3-1").unwrap_err().contains("backwards"));
    }
}
