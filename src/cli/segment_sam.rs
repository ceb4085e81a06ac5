//! `edgesift segment --backend mobilesam`: masks for box and point prompts on one image.

use anyhow::{bail, Context};
use candle_core::Device;
use edgesift::geometry::BBox;
use edgesift::overlay;
use edgesift::segment::mobilesam::{
    EverythingOptions, MaskPrediction, MobileSam, PointPrompt, Prompt,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// What `segment` hands over for the MobileSAM backend.
pub struct SamArgs<'a> {
    pub model: &'a Path,
    pub image: &'a Path,
    pub boxes: &'a [String],
    pub points: &'a [String],
    pub multimask: bool,
    pub points_per_side: usize,
    pub json: bool,
    pub overlay: Option<&'a PathBuf>,
    pub device: Device,
}

/// `x0,y0,x1,y1` in image pixels.
pub fn parse_box(s: &str) -> Result<BBox, String> {
    let v = numbers(s, 4, "x0,y0,x1,y1")?;
    if !(v[2] > v[0] && v[3] > v[1]) {
        return Err(format!("box `{s}` needs x1 > x0 and y1 > y0"));
    }
    Ok(BBox::new(v[0], v[1], v[2], v[3]))
}

/// `x,y` (foreground) or `x,y,0` (background) in image pixels.
pub fn parse_point(s: &str) -> Result<PointPrompt, String> {
    let parts = s.split(',').count();
    let v = numbers(s, parts.clamp(2, 3), "x,y or x,y,label")?;
    let foreground = match v.get(2) {
        None => true,
        Some(1.0) => true,
        Some(0.0) => false,
        Some(l) => return Err(format!("point label must be 0 or 1, got {l}")),
    };
    Ok(PointPrompt {
        x: v[0],
        y: v[1],
        foreground,
    })
}

fn numbers(s: &str, n: usize, form: &str) -> Result<Vec<f32>, String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{s}` is not {form}"))?;
    if v.len() != n || v.iter().any(|x| !x.is_finite()) {
        return Err(format!("`{s}` is not {form}"));
    }
    Ok(v)
}

pub fn run(a: SamArgs) -> anyhow::Result<ExitCode> {
    let boxes = a
        .boxes
        .iter()
        .map(|s| parse_box(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("--boxes")?;
    let points = a
        .points
        .iter()
        .map(|s| parse_point(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("--points")?;
    // One prompt per box; points join a single box, or form one prompt of their own.
    let prompts: Vec<Prompt> = match (boxes.len(), points.is_empty()) {
        (0, true) => return everything(&a),
        (0, false) => vec![Prompt { points, bbox: None }],
        (1, _) => vec![Prompt {
            points,
            bbox: Some(boxes[0]),
        }],
        (_, true) => boxes.into_iter().map(Prompt::from_box).collect(),
        (_, false) => bail!("--points can be combined with one box only"),
    };
    let image = super::segment::load_image(a.image)?;
    let t0 = Instant::now();
    let sam = MobileSam::load(a.model, &a.device)
        .with_context(|| format!("loading MobileSAM {}", a.model.display()))?;
    let t1 = Instant::now();
    let emb = sam
        .embed(&image)
        .with_context(|| format!("encoding {}", a.image.display()))?;
    let t2 = Instant::now();
    let preds = sam
        .predict(&emb, &prompts, a.multimask)
        .with_context(|| format!("decoding prompts on {}", a.image.display()))?;
    let t3 = Instant::now();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let (load_ms, enc_ms, dec_ms) = (ms(t1 - t0), ms(t2 - t1), ms(t3 - t2));

    if let Some(out) = a.overlay {
        let mut canvas = image.clone();
        let mut items = Vec::new();
        for (i, (p, masks)) in prompts.iter().zip(&preds).enumerate() {
            for m in masks {
                let bbox = p
                    .bbox
                    .or_else(|| m.mask.tight_rect().map(|r| r.to_bbox()))
                    .unwrap_or_default();
                items.push(overlay::Item {
                    class_id: i as u32,
                    bbox,
                    mask: Some(&m.mask),
                    label: format!("object {:.2}", m.iou),
                });
            }
        }
        overlay::draw(&mut canvas, &items);
        canvas
            .save(out)
            .with_context(|| format!("writing overlay {}", out.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        let doc = serde_json::json!({
            "image": a.image.display().to_string(),
            "width": emb.orig_width,
            "height": emb.orig_height,
            "model": { "name": sam.info().name, "sha256": sam.info().sha256, "arch": "mobilesam" },
            "timings_ms": { "load": load_ms, "encoder": enc_ms, "decoder": dec_ms },
            "prompts": prompts.iter().zip(&preds).map(|(p, masks)| serde_json::json!({
                "box": p.bbox.map(|b| [b.x1, b.y1, b.x2, b.y2]),
                "points": p.points.iter().map(|q| [q.x, q.y, q.foreground as u8 as f32]).collect::<Vec<_>>(),
                "masks": masks.iter().map(mask_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut stdout, &doc)?;
        writeln!(stdout)?;
    } else {
        writeln!(
            stdout,
            "{} {}x{}: {} prompt{} (MobileSAM {}; load {load_ms:.0} ms, encoder {enc_ms:.0} ms, decoder {dec_ms:.0} ms)",
            a.image.display(),
            emb.orig_width,
            emb.orig_height,
            prompts.len(),
            if prompts.len() == 1 { "" } else { "s" },
            sam.info().name,
        )?;
        for (i, (p, masks)) in prompts.iter().zip(&preds).enumerate() {
            for m in masks {
                let r = m.mask.tight_rect().unwrap_or_default();
                writeln!(
                    stdout,
                    "  prompt {i:<3} box {:<28} points {:<3} mask px {:>9}  bounds [{} {} {} {}]  predicted IoU {:.3}",
                    p.bbox
                        .map(|b| format!("[{:.0} {:.0} {:.0} {:.0}]", b.x1, b.y1, b.x2, b.y2))
                        .unwrap_or_else(|| "-".into()),
                    p.points.len(),
                    m.mask.area(),
                    r.x,
                    r.y,
                    r.right(),
                    r.bottom(),
                    m.iou,
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// No prompts: automatic mask generation over a point grid.
fn everything(a: &SamArgs) -> anyhow::Result<ExitCode> {
    if a.points_per_side == 0 || a.points_per_side > 64 {
        bail!(
            "--points-per-side must be 1..=64, got {}",
            a.points_per_side
        );
    }
    let image = super::segment::load_image(a.image)?;
    let sam = MobileSam::load(a.model, &a.device)
        .with_context(|| format!("loading MobileSAM {}", a.model.display()))?;
    let t0 = Instant::now();
    let emb = sam
        .embed(&image)
        .with_context(|| format!("encoding {}", a.image.display()))?;
    let t1 = Instant::now();
    let opts = EverythingOptions {
        points_per_side: a.points_per_side,
        ..Default::default()
    };
    let masks = sam
        .everything(&emb, &opts)
        .with_context(|| format!("generating masks on {}", a.image.display()))?;
    let t2 = Instant::now();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    if let Some(out) = a.overlay {
        let mut canvas = image.clone();
        let items: Vec<overlay::Item> = masks
            .iter()
            .enumerate()
            .map(|(i, m)| overlay::Item {
                class_id: i as u32,
                bbox: m.bbox(),
                mask: Some(&m.mask),
                label: format!("object {:.2}", m.predicted_iou),
            })
            .collect();
        overlay::draw(&mut canvas, &items);
        canvas
            .save(out)
            .with_context(|| format!("writing overlay {}", out.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if a.json {
        let doc = serde_json::json!({
            "image": a.image.display().to_string(),
            "width": emb.orig_width,
            "height": emb.orig_height,
            "model": { "name": sam.info().name, "sha256": sam.info().sha256, "arch": "mobilesam" },
            "mode": "everything",
            "points_per_side": a.points_per_side,
            "timings_ms": { "encoder": ms(t1 - t0), "masks": ms(t2 - t1) },
            "instances": masks.iter().map(|m| {
                let rle = m.mask.to_rle();
                serde_json::json!({
                    "class_name": "object",
                    "predicted_iou": m.predicted_iou,
                    "stability_score": m.stability_score,
                    "box": m.box_xyxy,
                    "area": m.mask.area(),
                    "mask": { "size": [rle.height, rle.width], "counts": rle.to_compressed() },
                })
            }).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut stdout, &doc)?;
        writeln!(stdout)?;
    } else {
        writeln!(
            stdout,
            "{} {}x{}: {} object{} (MobileSAM {} everything, {}x{} points; encoder {:.0} ms, masks {:.0} ms)",
            a.image.display(),
            emb.orig_width,
            emb.orig_height,
            masks.len(),
            if masks.len() == 1 { "" } else { "s" },
            sam.info().name,
            a.points_per_side,
            a.points_per_side,
            ms(t1 - t0),
            ms(t2 - t1),
        )?;
        for m in &masks {
            let [x0, y0, x1, y1] = m.box_xyxy;
            writeln!(
                stdout,
                "  object  predicted IoU {:.3}  stability {:.3}  box [{x0} {y0} {x1} {y1}]  mask px {}",
                m.predicted_iou,
                m.stability_score,
                m.mask.area()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn mask_json(m: &MaskPrediction) -> serde_json::Value {
    let rle = m.mask.to_rle();
    serde_json::json!({
        "predicted_iou": m.iou,
        "area": m.mask.area(),
        "mask": { "size": [rle.height, rle.width], "counts": rle.to_compressed() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_boxes_and_points() {
        let b = parse_box("10,20,30.5,40").unwrap();
        assert_eq!((b.x1, b.y1, b.x2, b.y2), (10.0, 20.0, 30.5, 40.0));
        assert!(parse_box("10,20,5,40").unwrap_err().contains("x1 > x0"));
        assert!(parse_box("1,2,3").is_err());
        assert!(parse_box("a,b,c,d").is_err());
        let p = parse_point("3,4").unwrap();
        assert!(p.foreground && p.x == 3.0 && p.y == 4.0);
        assert!(!parse_point("3,4,0").unwrap().foreground);
        assert!(parse_point("3,4,2").is_err());
        assert!(parse_point("3").is_err());
        assert!(parse_point("1,2,1,1").is_err());
    }
}
