//! `edgesift eval`: a model's box and mask mAP on an exported dataset.

use anyhow::Context;
use edgesift::eval::{evaluate_split, DatasetEval};
use edgesift::segment::{ModelOptions, PostOptions, Segmenter, YoloSegmenter};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Model weights (safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Dataset directory as `edgesift synth` / `edgesift export` write it
    /// (`annotations/instances_<split>.json`, `images/<split>/`).
    #[arg(long)]
    dataset: PathBuf,
    /// Which split to score.
    #[arg(long, default_value = "val")]
    split: String,
    /// Minimum class score; mAP is quoted at 0.001, as ultralytics validates.
    #[arg(long, default_value_t = 0.001, value_parser = super::unit_interval)]
    conf: f32,
    /// NMS IoU threshold.
    #[arg(long, default_value_t = 0.7, value_parser = super::unit_interval)]
    iou: f32,
    /// Network input size (multiple of 32); default: the size recorded in the model file.
    #[arg(long)]
    imgsz: Option<u32>,
    /// One class per box, as the daemon predicts; by default every class above `conf` makes a
    /// detection of its own, as ultralytics' `val` scores (its `multi_label`).
    #[arg(long)]
    single_label: bool,
    /// Score only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let opts = ModelOptions {
        imgsz: a.imgsz.map(|s| [s, s]),
        post: PostOptions {
            conf: a.conf,
            iou: a.iou,
            multi_label: !a.single_label,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut seg = YoloSegmenter::load(&a.model, opts)
        .with_context(|| format!("loading model {}", a.model.display()))?;
    let started = std::time::Instant::now();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let r = evaluate_split(&mut seg, &a.dataset, &a.split, a.limit, |done, total| {
        if interactive {
            eprint!("\r{done}/{total} images");
        }
    })?;
    if interactive {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &to_json(&a, &seg, &r, secs))?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &a, &seg, &r, secs)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(a: &EvalArgs, seg: &YoloSegmenter, r: &DatasetEval, secs: f64) -> serde_json::Value {
    let per_category = |s: &edgesift::eval::EvalSummary| {
        r.categories
            .iter()
            .filter_map(|(id, name)| {
                s.per_category
                    .get(id)
                    .map(|ap| (name.clone(), serde_json::json!(ap)))
            })
            .collect::<serde_json::Map<_, _>>()
    };
    serde_json::json!({
        "model": seg.info().name,
        "model_sha256": seg.info().sha256,
        "dataset": a.dataset.display().to_string(),
        "split": a.split,
        "imgsz": seg.imgsz(),
        "conf": a.conf,
        "iou": a.iou,
        "images": r.images,
        "instances": r.instances,
        "detections": r.detections,
        "seconds": secs,
        "box": { "map50_95": r.boxes.map, "map50": r.boxes.map50, "map75": r.boxes.map75,
                 "mar100": r.boxes.mar100, "per_category_map50_95": per_category(&r.boxes) },
        "mask": { "map50_95": r.masks.map, "map50": r.masks.map50, "map75": r.masks.map75,
                  "mar100": r.masks.mar100, "per_category_map50_95": per_category(&r.masks) },
    })
}

fn print_table(
    out: &mut impl Write,
    a: &EvalArgs,
    seg: &YoloSegmenter,
    r: &DatasetEval,
    secs: f64,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} on {} ({}): {} images, {} instances, {} detections, {:.1} s",
        seg.info().name,
        a.dataset.display(),
        a.split,
        r.images,
        r.instances,
        r.detections,
        secs
    )?;
    writeln!(
        out,
        "  {:<16} {:>10} {:>8} {:>10} {:>8}",
        "", "box 50-95", "box 50", "mask 50-95", "mask 50"
    )?;
    writeln!(
        out,
        "  {:<16} {:>10.4} {:>8.4} {:>10.4} {:>8.4}",
        "all", r.boxes.map, r.boxes.map50, r.masks.map, r.masks.map50
    )?;
    for (id, name) in &r.categories {
        let (Some(b), Some(m)) = (r.boxes.per_category.get(id), r.masks.per_category.get(id))
        else {
            continue;
        };
        writeln!(out, "  {name:<16} {b:>10.4} {:>8} {m:>10.4}", "")?;
    }
    Ok(())
}
