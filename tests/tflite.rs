//! The TFLite backend against the candle path on the same weights. Needs LiteRT's libLiteRt.so
//! at run time (scripts/setup.sh fetches it; scripts/test.sh points LITERT_LIB_DIR at it).
//!
//! Fixtures: `tests/data/tflite/edgesift-road-n-seg-320_{float16,int8}.tflite`, made by
//! `scripts/export_tflite.py models/edgesift-road-n-seg.safetensors tests/data/tflite --imgsz 320
//! --int8` from the bundled road model that the candle side loads here. Frames: the synthetic
//! road-scene source (what the model was trained on), letterboxed square to 320 on both sides.
//!
//! Tolerances:
//! - float16 (float16 weights, float32 compute; the safetensors file stores the same weights in
//!   f16, BatchNorm folded in f32 on both sides and rounded to f16 again by the converter): the
//!   same instances, classes equal, scores within 0.02, boxes within 2 px, mask IoU >= 0.9, and
//!   the embedding within 1% (relative L2). An instance on the edge of a threshold may appear on
//!   one side only: its score within 0.02 of `conf`, or its IoU with a stronger box of its class
//!   within 0.02 of the NMS threshold.
//! - int8 (per-channel int8 weights, int8 activations calibrated on 64 synthetic frames, int8
//!   outputs with one scale for boxes, scores and mask coefficients, one step being ~0.027):
//!   instance agreement, not equality. Of the candle instances scoring >= 0.5, at least 80% have
//!   a TFLite instance of the same class with box IoU >= 0.7, and those matches have a mean mask
//!   IoU >= 0.7; TFLite finds no more than 1.5x as many such instances overall.
use edgesift::capture::synthetic::{SyntheticConfig, SyntheticSource};
use edgesift::segment::{
    Detections, Instance, ModelOptions, PostOptions, Segmenter, TfliteOptions, TfliteSegmenter,
    YoloSegmenter,
};
use image::RgbImage;
use std::path::PathBuf;

use crate::util::data;

const CONF: f32 = 0.25;
const IOU: f32 = 0.7;

fn bundled_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/edgesift-road-n-seg.safetensors")
}

fn post() -> PostOptions {
    PostOptions {
        conf: CONF,
        iou: IOU,
        ..Default::default()
    }
}

fn candle() -> YoloSegmenter {
    YoloSegmenter::load(
        &bundled_model(),
        ModelOptions {
            imgsz: Some([320, 320]),
            minimal_padding: false,
            post: post(),
            ..Default::default()
        },
    )
    .unwrap()
}

fn tflite(precision: &str) -> TfliteSegmenter {
    let path = data(&format!(
        "tflite/edgesift-road-n-seg-320_{precision}.tflite"
    ));
    TfliteSegmenter::load(
        &path,
        TfliteOptions {
            // Two threads: also exercises the CPU options payload (runtime.rs).
            threads: 2,
            post: post(),
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Synthetic road scenes, 640x360, a few seconds apart.
fn frames(n: usize) -> Vec<RgbImage> {
    let mut src = SyntheticSource::new(SyntheticConfig {
        seed: 11,
        width: 640,
        height: 360,
        realtime: false,
        ..Default::default()
    })
    .unwrap();
    let mut img = RgbImage::new(1, 1);
    let mut out = Vec::new();
    for i in 0..n * 40 {
        src.render_next(&mut img).unwrap();
        if i % 40 == 39 {
            out.push(img.clone());
        }
    }
    out
}

/// Greedy matching by box IoU (same class), best candle score first.
fn matches<'a>(a: &'a [Instance], b: &'a [Instance]) -> Vec<(&'a Instance, Option<&'a Instance>)> {
    let mut used = vec![false; b.len()];
    let mut order: Vec<&Instance> = a.iter().collect();
    order.sort_by(|p, q| q.score.total_cmp(&p.score));
    order
        .into_iter()
        .map(|x| {
            let best = b
                .iter()
                .enumerate()
                .filter(|(j, y)| !used[*j] && y.class_id == x.class_id)
                .map(|(j, y)| (j, x.bbox.iou(&y.bbox)))
                .max_by(|p, q| p.1.total_cmp(&q.1))
                .filter(|(_, iou)| *iou > 0.3);
            if let Some((j, _)) = best {
                used[j] = true;
            }
            (x, best.map(|(j, _)| &b[j]))
        })
        .collect()
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

fn run_both(precision: &str, n: usize) -> Vec<(Detections, Detections)> {
    let (mut c, mut t) = (candle(), tflite(precision));
    assert_eq!(t.imgsz(), [320, 320]);
    assert_eq!(t.info().class_names, c.info().class_names);
    frames(n)
        .iter()
        .map(|f| (c.segment(f).unwrap(), t.segment(f).unwrap()))
        .collect()
}

#[test]
fn float16_model_gives_the_candle_instances() {
    let runs = run_both("float16", 6);
    let mut compared = 0;
    for (k, (c, t)) in runs.iter().enumerate() {
        let e = rel_l2(&t.embedding, &c.embedding);
        assert!(e < 1e-2, "frame {k}: embedding rel L2 {e}");
        for (side, a, b) in [
            ("candle", &c.instances, &t.instances),
            ("tflite", &t.instances, &c.instances),
        ] {
            for (x, y) in matches(a, b) {
                let Some(y) = y else {
                    let near: Vec<_> = b
                        .iter()
                        .filter(|y| x.bbox.iou(&y.bbox) > 0.3)
                        .map(|y| (y.class_id, y.score, x.bbox.iou(&y.bbox)))
                        .collect();
                    // Borderline on either threshold: its score at `conf`, or its IoU with a
                    // stronger box of its class at the NMS threshold (kept on one side only).
                    let nms_edge = a.iter().any(|z| {
                        z.class_id == x.class_id
                            && z.score > x.score
                            && (x.bbox.iou(&z.bbox) - IOU).abs() < 0.02
                    });
                    assert!(
                        x.score < CONF + 0.02 || nms_edge,
                        "frame {k}: {side} instance class {} {:?} {:.3} unmatched; overlapping \
                         on the other side (class, score, IoU): {near:?}; scores {:?}",
                        x.class_id,
                        x.bbox,
                        x.score,
                        x.class_scores
                    );
                    continue;
                };
                compared += 1;
                assert!(
                    (x.score - y.score).abs() < 0.02,
                    "frame {k}: scores {} vs {}",
                    x.score,
                    y.score
                );
                for (p, q) in [
                    (x.bbox.x1, y.bbox.x1),
                    (x.bbox.y1, y.bbox.y1),
                    (x.bbox.x2, y.bbox.x2),
                    (x.bbox.y2, y.bbox.y2),
                ] {
                    assert!(
                        (p - q).abs() < 2.0,
                        "frame {k}: boxes {:?} vs {:?}",
                        x.bbox,
                        y.bbox
                    );
                }
                let m = x.mask.iou(&y.mask);
                assert!(m >= 0.9, "frame {k}: mask IoU {m}");
            }
        }
    }
    eprintln!("float16: {compared} instance pairs compared");
    assert!(compared >= 10, "too few instances to compare ({compared})");
}

#[test]
fn int8_model_agrees_with_candle_on_confident_instances() {
    let runs = run_both("int8", 6);
    let (mut confident, mut found, mut mask_iou, mut t_confident) = (0usize, 0usize, 0f64, 0usize);
    for (c, t) in &runs {
        t_confident += t.instances.iter().filter(|i| i.score >= 0.5).count();
        let strong: Vec<Instance> = c
            .instances
            .iter()
            .filter(|i| i.score >= 0.5)
            .cloned()
            .collect();
        confident += strong.len();
        for (x, y) in matches(&strong, &t.instances) {
            if let Some(y) = y {
                if x.bbox.iou(&y.bbox) >= 0.7 {
                    found += 1;
                    mask_iou += x.mask.iou(&y.mask) as f64;
                }
            }
        }
    }
    let recall = found as f64 / confident.max(1) as f64;
    let mean_mask = mask_iou / found.max(1) as f64;
    eprintln!(
        "int8: {found}/{confident} confident candle instances matched (box IoU >= 0.7), mean \
         mask IoU {mean_mask:.3}; tflite confident instances {t_confident}"
    );
    assert!(confident >= 10, "too few confident instances ({confident})");
    assert!(recall >= 0.8, "recall {recall:.2}");
    assert!(mean_mask >= 0.7, "mean mask IoU {mean_mask:.3}");
    assert!(
        t_confident as f64 <= 1.5 * confident as f64,
        "{t_confident} vs {confident}"
    );
}

#[test]
fn a_missing_or_broken_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.tflite");
    let e = TfliteSegmenter::load(&missing, TfliteOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope.tflite"), "{e}");
    let junk = dir.path().join("junk.tflite");
    std::fs::write(&junk, b"this is not a flatbuffer").unwrap();
    let e = TfliteSegmenter::load(&junk, TfliteOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("junk.tflite"), "{e}");
}
