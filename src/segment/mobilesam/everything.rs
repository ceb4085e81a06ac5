//! "Everything" mode: class-agnostic instances without a detector, as MobileSAM's
//! `SamAutomaticMaskGenerator` makes them (one crop layer): a grid of foreground points, three
//! masks per point, filtered by predicted IoU and stability, then box NMS.
//!
//! Memory stays bounded whatever the grid: points are decoded a few at a time, each mask is
//! brought to the original resolution and thresholded on its own, and candidates are kept as
//! run-length encodings (plus box and scores) until NMS has chosen the survivors.

use super::{MobileSam, Prompt};
use crate::geometry::{BBox, Mask, Rle};
use crate::segment::{
    Architecture, Detections, Instance, ModelInfo, SegmentError, Segmenter, Timings,
};
use image::RgbImage;
use std::sync::Arc;
use std::time::Instant;

/// The generator's settings (upstream's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct EverythingOptions {
    /// The grid has `points_per_side^2` points. Upstream default 32; each point costs one decoder
    /// pass, so 16 (256 points) is the practical choice on a small CPU.
    pub points_per_side: usize,
    /// Masks whose predicted IoU is not above this are dropped (0 disables). Default 0.88.
    pub pred_iou_thresh: f32,
    /// Masks whose stability score is below this are dropped (0 disables). Default 0.95.
    pub stability_score_thresh: f32,
    /// Logit offset of the stability score. Default 1.0.
    pub stability_score_offset: f32,
    /// Box IoU above which the lower-scoring mask is dropped. Default 0.7.
    pub box_nms_thresh: f32,
}

impl Default for EverythingOptions {
    fn default() -> Self {
        Self {
            points_per_side: 32,
            pred_iou_thresh: 0.88,
            stability_score_thresh: 0.95,
            stability_score_offset: 1.0,
            box_nms_thresh: 0.7,
        }
    }
}

/// One automatically found mask.
#[derive(Debug, Clone)]
pub struct AutoMask {
    pub mask: Mask,
    /// Upstream's box: `[x0, y0, x1, y1]` with the last set column and row (inclusive).
    pub box_xyxy: [u32; 4],
    pub predicted_iou: f32,
    pub stability_score: f32,
    /// The grid point that prompted it, in original pixels.
    pub point: (f64, f64),
}

impl AutoMask {
    /// The box in continuous pixel coordinates (pixel `i` covers `[i, i + 1)`).
    pub fn bbox(&self) -> BBox {
        let [x0, y0, x1, y1] = self.box_xyxy;
        BBox::new(x0 as f32, y0 as f32, (x1 + 1) as f32, (y1 + 1) as f32)
    }
}

struct Candidate {
    rle: Rle,
    box_xyxy: [u32; 4],
    iou: f32,
    stability: f32,
    point: (f64, f64),
}

/// `np.linspace(offset, 1 - offset, n)` with `offset = 1 / (2n)`, as `build_point_grid`.
fn grid_1d(n: usize) -> Vec<f64> {
    let offset = 1.0 / (2 * n) as f64;
    if n == 1 {
        return vec![offset];
    }
    let step = (1.0 - 2.0 * offset) / (n - 1) as f64;
    (0..n).map(|i| offset + i as f64 * step).collect()
}

/// Upstream's greedy NMS (torchvision's `nms`): highest score first, drop boxes whose IoU with a
/// kept one exceeds `thresh`. Boxes are `[x0, y0, x1, y1]` with area `(x1 - x0) * (y1 - y0)`.
/// Returns the kept indices, highest score first.
pub fn nms(boxes: &[[u32; 4]], scores: &[f32], thresh: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let area = |b: &[u32; 4]| (b[2] as f32 - b[0] as f32) * (b[3] as f32 - b[1] as f32);
    let mut keep: Vec<usize> = Vec::new();
    let mut dropped = vec![false; boxes.len()];
    for (k, &i) in order.iter().enumerate() {
        if dropped[i] {
            continue;
        }
        keep.push(i);
        let a = &boxes[i];
        for &j in &order[k + 1..] {
            if dropped[j] {
                continue;
            }
            let b = &boxes[j];
            let w = (a[2].min(b[2]) as f32 - a[0].max(b[0]) as f32).max(0.0);
            let h = (a[3].min(b[3]) as f32 - a[1].max(b[1]) as f32).max(0.0);
            let inter = w * h;
            let iou = inter / (area(a) + area(b) - inter);
            if iou > thresh {
                dropped[j] = true;
            }
        }
    }
    keep
}

impl MobileSam {
    /// Masks for everything in the image (see the module documentation).
    pub fn everything(
        &self,
        emb: &super::ImageEmbedding,
        opts: &EverythingOptions,
    ) -> Result<Vec<AutoMask>, SegmentError> {
        if opts.points_per_side == 0 {
            return Err(SegmentError::BadInput(
                "points_per_side must be at least 1".into(),
            ));
        }
        let (w, h) = (emb.orig_width as usize, emb.orig_height as usize);
        let g = grid_1d(opts.points_per_side);
        let points: Vec<(f64, f64)> = g
            .iter()
            .flat_map(|&y| g.iter().map(move |&x| (x * w as f64, y * h as f64)))
            .collect();
        let mut candidates = Vec::new();
        for chunk in points.chunks(super::MAX_DECODE_BATCH) {
            let prompts: Vec<_> = chunk
                .iter()
                .map(|&(x, y)| {
                    let p = Prompt::from_point(x as f32, y as f32, true);
                    let mut q = self.to_input(emb, &p);
                    // apply_coords works in f64 from the original coordinates.
                    let sx = emb.input_width as f64 / w as f64;
                    let sy = emb.input_height as f64 / h as f64;
                    q.0[0].x = (x * sx) as f32;
                    q.0[0].y = (y * sy) as f32;
                    q
                })
                .collect();
            let (masks, iou) = self.decode(&emb.features, &prompts)?;
            let masks = masks.to_device(&candle_core::Device::Cpu)?;
            let iou = iou.to_device(&candle_core::Device::Cpu)?.to_vec2::<f32>()?;
            for (j, &point) in chunk.iter().enumerate() {
                // Multimask outputs: tokens 1..4.
                for (m, &q) in iou[j].iter().enumerate().skip(1) {
                    if opts.pred_iou_thresh > 0.0 && q <= opts.pred_iou_thresh {
                        continue;
                    }
                    let low = masks.get(j)?.get(m)?.flatten_all()?.to_vec1::<f32>()?;
                    let logits = super::logits_at_original(
                        &low,
                        (emb.input_width as usize, emb.input_height as usize),
                        (w, h),
                    );
                    let off = opts.stability_score_offset;
                    let inter = logits.iter().filter(|&&v| v > off).count();
                    let union = logits.iter().filter(|&&v| v > -off).count();
                    // An empty union gives NaN, which no threshold keeps (as upstream).
                    let stability = inter as f32 / union as f32;
                    let stable = stability >= opts.stability_score_thresh;
                    if opts.stability_score_thresh > 0.0 && !stable {
                        continue;
                    }
                    let full: Vec<u8> = logits.iter().map(|&v| (v > 0.0) as u8).collect();
                    let mask = Mask::from_full(w as u32, h as u32, &full);
                    let box_xyxy = match mask.tight_rect() {
                        Some(r) => [r.x, r.y, r.right() - 1, r.bottom() - 1],
                        None => [0, 0, 0, 0],
                    };
                    candidates.push(Candidate {
                        rle: mask.to_rle(),
                        box_xyxy,
                        iou: q,
                        stability,
                        point,
                    });
                }
            }
        }
        let boxes: Vec<[u32; 4]> = candidates.iter().map(|c| c.box_xyxy).collect();
        let scores: Vec<f32> = candidates.iter().map(|c| c.iou).collect();
        let keep = nms(&boxes, &scores, opts.box_nms_thresh);
        Ok(keep
            .into_iter()
            .map(|i| {
                let c = &candidates[i];
                AutoMask {
                    mask: c.rle.to_mask(),
                    box_xyxy: c.box_xyxy,
                    predicted_iou: c.iou,
                    stability_score: c.stability,
                    point: c.point,
                }
            })
            .collect())
    }
}

/// MobileSAM's everything mode as a [`Segmenter`]: every mask is an instance of class `object`
/// (score = predicted IoU), and the scene embedding is the image embedding averaged over the
/// grid (256 values), so selection works without a trained detector.
pub struct SamEverything {
    sam: MobileSam,
    opts: EverythingOptions,
    info: ModelInfo,
    /// Instances kept per frame at most (the highest predicted IoU first).
    max_det: usize,
}

impl SamEverything {
    pub fn new(sam: MobileSam, opts: EverythingOptions) -> Self {
        let i = sam.info();
        let info = ModelInfo {
            name: i.name.clone(),
            path: i.path.clone(),
            sha256: i.sha256.clone(),
            class_names: Arc::from(vec!["object".to_string()]),
            trained_imgsz: Some([1024, 1024]),
            // Not a YOLO network: one class, no detection head.
            architecture: Architecture {
                num_classes: 1,
                num_masks: 0,
                proto_channels: 0,
                reg_max: 0,
                backbone_widths: Vec::new(),
                neck_widths: [0; 3],
                c2f_depths: Vec::new(),
            },
        };
        Self {
            sam,
            opts,
            info,
            max_det: usize::MAX,
        }
    }

    /// The `[model] backend = "mobilesam-everything"` segmenter: the MobileSAM file at `path`
    /// (refusing, with the `arch` key named, a file that is not MobileSAM) on `device`, with
    /// `[model.everything]`, `iou` as the box NMS threshold and `max_det` as the cap.
    pub fn from_config(
        path: &std::path::Path,
        device: &candle_core::Device,
        cfg: &crate::segment::ModelConfig,
    ) -> Result<Self, SegmentError> {
        let weights = crate::segment::Weights::open(path)?;
        if !super::is_mobilesam(&weights) {
            return Err(SegmentError::Metadata {
                key: "arch".into(),
                reason: format!(
                    "{} is not a MobileSAM file (model.backend = \"{}\" needs one, from \
                     scripts/export_mobilesam.py)",
                    path.display(),
                    crate::segment::BACKEND_EVERYTHING
                ),
            });
        }
        drop(weights);
        let sam = MobileSam::load(path, device)?;
        let e = &cfg.everything;
        let opts = EverythingOptions {
            points_per_side: e.points_per_side,
            pred_iou_thresh: e.pred_iou_thresh,
            stability_score_thresh: e.stability_score_thresh,
            box_nms_thresh: cfg.iou,
            ..Default::default()
        };
        let mut me = Self::new(sam, opts);
        me.max_det = cfg.max_det;
        Ok(me)
    }
}

impl Segmenter for SamEverything {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError> {
        let t0 = Instant::now();
        let emb = self.sam.embed(image)?;
        let t1 = Instant::now();
        let masks = self.sam.everything(&emb, &self.opts)?;
        let embedding = emb
            .features
            .mean((2, 3))?
            .flatten_all()?
            .to_device(&candle_core::Device::Cpu)?
            .to_vec1::<f32>()?;
        let t2 = Instant::now();
        let instances = masks
            .into_iter()
            .take(self.max_det)
            .map(|m| Instance {
                class_id: 0,
                score: m.predicted_iou,
                bbox: m.bbox(),
                mask: m.mask,
                class_scores: vec![m.predicted_iou],
            })
            .collect();
        Ok(Detections {
            image_width: image.width(),
            image_height: image.height(),
            instances,
            embedding,
            class_names: self.info.class_names.clone(),
            timings: Timings {
                preprocess: std::time::Duration::ZERO,
                inference: t1 - t0,
                postprocess: t2 - t1,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_upstreams() {
        assert_eq!(grid_1d(1), vec![0.5]);
        let g = grid_1d(4);
        let want = [0.125, 0.375, 0.625, 0.875];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let boxes = [
            [0, 0, 10, 10],
            [1, 1, 10, 10],
            [20, 20, 30, 30],
            [0, 0, 10, 9],
        ];
        let scores = [0.5, 0.9, 0.4, 0.1];
        // 1 beats 0 (IoU 0.81) and 3 (IoU 0.72); 2 is alone.
        assert_eq!(nms(&boxes, &scores, 0.7), vec![1, 2]);
        assert_eq!(nms(&boxes, &scores, 0.9), vec![1, 0, 2, 3]);
        assert!(nms(&[], &[], 0.7).is_empty());
    }
}
