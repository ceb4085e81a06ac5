//! From raw network output to instances: confidence filter, class-aware NMS, boxes mapped back
//! through the letterbox, and masks at the original resolution.
//!
//! This mirrors ultralytics' predictor with `retina_masks=True` (`non_max_suppression`,
//! `scale_boxes`, `process_mask_native`, `scale_masks`, `crop_mask`), but evaluates each mask only
//! inside its box: the result is the same as upsampling every mask to the full frame and cropping,
//! at a fraction of the cost.

use super::pre::Letterbox;
use super::Instance;
use crate::geometry::{BBox, Mask, PixelRect};
use rayon::prelude::*;

/// Thresholds of post-processing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostOptions {
    /// Minimum class score of a detection (ultralytics `conf`).
    pub conf: f32,
    /// IoU above which NMS suppresses the lower-scored box of the same class (`iou`).
    pub iou: f32,
    /// Most instances returned per image (`max_det`).
    pub max_det: usize,
    /// Most candidates entering NMS (`max_nms`).
    pub max_nms: usize,
    /// Every class scoring above `conf` makes a candidate of its own, not only the best one
    /// (ultralytics' `multi_label`, which its `val` uses and its predictor does not): what mAP
    /// is quoted with, since low-scored second guesses add recall at the tail of the curve.
    pub multi_label: bool,
}

impl Default for PostOptions {
    fn default() -> Self {
        Self {
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
            max_nms: 30_000,
            multi_label: false,
        }
    }
}

/// The raw outputs of one image, on the host.
#[derive(Debug, Clone, Copy)]
pub struct RawView<'a> {
    /// `[4 + nc + nm, anchors]`, row-major.
    pub pred: &'a [f32],
    pub anchors: usize,
    pub num_classes: usize,
    pub num_masks: usize,
    /// `[nm, proto_h, proto_w]`, row-major.
    pub proto: &'a [f32],
    pub proto_h: usize,
    pub proto_w: usize,
}

/// A detection that survived NMS, still in input (letterboxed) pixels.
#[derive(Debug, Clone)]
struct Candidate {
    anchor: usize,
    class_id: usize,
    score: f32,
    bbox: BBox,
}

/// Runs the whole post-processing for one image.
pub fn postprocess(raw: &RawView, letterbox: &Letterbox, opts: &PostOptions) -> Vec<Instance> {
    let kept = nms(raw, opts);
    let (in_w, in_h) = (letterbox.input_width, letterbox.input_height);
    let (ow, oh) = (letterbox.orig_width, letterbox.orig_height);
    let to_orig = BoxScaler::new(in_w, in_h, ow, oh);
    let planner = MaskPlanner::new(raw.proto_h, raw.proto_w, oh as usize, ow as usize);
    // One task per instance on rayon's pool: a big mask costs milliseconds, and the network's
    // workers are idle while the calling thread post-processes. `collect` keeps NMS's order.
    kept.into_par_iter()
        .filter_map(|c| {
            let bbox = to_orig.apply(&c.bbox);
            let coef_row = 4 + raw.num_classes;
            let coef: Vec<f32> = (0..raw.num_masks)
                .map(|k| raw.pred[(coef_row + k) * raw.anchors + c.anchor])
                .collect();
            let mask = planner.mask(raw, &coef, &bbox);
            // ultralytics drops detections whose mask came out empty.
            if mask.is_empty() {
                return None;
            }
            let class_scores = (0..raw.num_classes)
                .map(|k| raw.pred[(4 + k) * raw.anchors + c.anchor])
                .collect();
            Some(Instance {
                class_id: c.class_id as u32,
                score: c.score,
                bbox,
                mask,
                class_scores,
            })
        })
        .collect()
}

/// Confidence filter and class-aware greedy NMS (torchvision semantics: suppress IoU > `iou`).
fn nms(raw: &RawView, opts: &PostOptions) -> Vec<Candidate> {
    let a = raw.anchors;
    // Each anchor's best class score, one class row at a time (contiguous, vectorised): most
    // anchors score below `conf` everywhere and are never visited one by one below.
    let mut best_score = vec![f32::NEG_INFINITY; a];
    for k in 0..raw.num_classes {
        let row = &raw.pred[(4 + k) * a..(5 + k) * a];
        for (m, &s) in best_score.iter_mut().zip(row) {
            *m = if s > *m { s } else { *m };
        }
    }
    let mut cands: Vec<Candidate> = Vec::new();
    for (anchor, &best_score) in best_score.iter().enumerate() {
        if best_score <= opts.conf {
            // No class above `conf` (NaN scores never are): no candidate, multi-label or not.
            continue;
        }
        let v = |row: usize| raw.pred[row * a + anchor];
        let candidate = |class_id: usize, score: f32| Candidate {
            anchor,
            class_id,
            score,
            bbox: BBox::from_cxcywh(v(0), v(1), v(2), v(3)),
        };
        if opts.multi_label {
            for k in 0..raw.num_classes {
                let s = v(4 + k);
                if s > opts.conf {
                    cands.push(candidate(k, s));
                }
            }
            continue;
        }
        let mut best = (0usize, f32::NEG_INFINITY);
        for k in 0..raw.num_classes {
            let s = v(4 + k);
            if s > best.1 {
                best = (k, s);
            }
        }
        if best.1 > opts.conf {
            cands.push(candidate(best.0, best.1));
        }
    }
    // Highest score first; equal scores keep (anchor, class) order so the result is deterministic.
    cands.sort_by(|p, q| {
        q.score
            .total_cmp(&p.score)
            .then(p.anchor.cmp(&q.anchor))
            .then(p.class_id.cmp(&q.class_id))
    });
    cands.truncate(opts.max_nms);
    let mut kept: Vec<Candidate> = Vec::new();
    for c in cands {
        let suppressed = kept
            .iter()
            .any(|k| k.class_id == c.class_id && k.bbox.iou(&c.bbox) > opts.iou);
        if !suppressed {
            kept.push(c);
            if kept.len() == opts.max_det {
                break;
            }
        }
    }
    kept
}

/// ultralytics `scale_boxes` + `clip_boxes`: input pixels to original pixels.
struct BoxScaler {
    pad_x: f32,
    pad_y: f32,
    gain_x: f32,
    gain_y: f32,
    width: f32,
    height: f32,
}

impl BoxScaler {
    fn new(in_w: u32, in_h: u32, orig_w: u32, orig_h: u32) -> Self {
        let gain = (in_h as f64 / orig_h as f64).min(in_w as f64 / orig_w as f64);
        let new_h = ((orig_h as f64 * gain).round_ties_even()).max(1.0);
        let new_w = ((orig_w as f64 * gain).round_ties_even()).max(1.0);
        Self {
            pad_x: ((in_w as f64 - new_w) / 2.0 - 0.1).round_ties_even() as f32,
            pad_y: ((in_h as f64 - new_h) / 2.0 - 0.1).round_ties_even() as f32,
            gain_x: (new_w / orig_w as f64) as f32,
            gain_y: (new_h / orig_h as f64) as f32,
            width: orig_w as f32,
            height: orig_h as f32,
        }
    }

    fn apply(&self, b: &BBox) -> BBox {
        BBox::new(
            (b.x1 - self.pad_x) / self.gain_x,
            (b.y1 - self.pad_y) / self.gain_y,
            (b.x2 - self.pad_x) / self.gain_x,
            (b.y2 - self.pad_y) / self.gain_y,
        )
        .clip(self.width, self.height)
    }
}

/// Bilinear taps of PyTorch's `F.interpolate(mode="bilinear", align_corners=False)` along one
/// axis: output index `i` reads source `i0` and `i0 + step` with weights `w0`, `w1`.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: f32,
    w1: f32,
}

fn tap(scale: f32, i: usize, src_len: usize) -> Tap {
    let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
    let i0 = (src as usize).min(src_len - 1);
    let w1 = (src - i0 as f32).clamp(0.0, 1.0);
    let i1 = if i0 < src_len - 1 { i0 + 1 } else { i0 };
    Tap {
        i0,
        i1,
        w0: 1.0 - w1,
        w1,
    }
}

/// The fixed geometry of `process_mask_native` for one input/original size pair.
struct MaskPlanner {
    mh: usize,
    mw: usize,
    /// Pre-upsampling factor (1, 2 or 4) that makes the letterbox padding whole pixels.
    f: usize,
    /// Crop of the upsampled prototypes that holds the image (rows top..top+ch, cols left..left+cw).
    top: usize,
    left: usize,
    ch: usize,
    cw: usize,
    h: usize,
    w: usize,
}

impl MaskPlanner {
    fn new(mh: usize, mw: usize, h: usize, w: usize) -> Self {
        let py_round = |v: f64| v.round_ties_even() as i64;
        let gain = (4.0 * mh as f64 / h as f64).min(4.0 * mw as f64 / w as f64);
        let pad = (4 * mh as i64 - py_round(h as f64 * gain).max(1))
            | (4 * mw as i64 - py_round(w as f64 * gain).max(1));
        let g = gcd(4, (pad | (pad / 2)).unsigned_abs());
        let f = 4 / g as usize;
        // scale_masks on the f-times upsampled stack.
        let (im1_h, im1_w) = (f * mh, f * mw);
        let gain = (im1_h as f64 / h as f64).min(im1_w as f64 / w as f64);
        let content_h = py_round(h as f64 * gain).max(1) as usize;
        let content_w = py_round(w as f64 * gain).max(1) as usize;
        let pad_h = (im1_h as f64 - content_h as f64) / 2.0;
        let pad_w = (im1_w as f64 - content_w as f64) / 2.0;
        let top = py_round(pad_h - 0.1).max(0) as usize;
        let left = py_round(pad_w - 0.1).max(0) as usize;
        Self {
            mh,
            mw,
            f,
            top,
            left,
            ch: content_h.min(im1_h - top),
            cw: content_w.min(im1_w - left),
            h,
            w,
        }
    }

    /// The mask of one instance with coefficients `coef`, cropped to `bbox` (original pixels).
    fn mask(&self, raw: &RawView, coef: &[f32], bbox: &BBox) -> Mask {
        let (w, h) = (self.w as u32, self.h as u32);
        // crop_mask keeps pixel columns c with x1 <= c < x2 (and rows likewise).
        let c0 = (bbox.x1.ceil().max(0.0) as usize).min(self.w);
        let c1 = (bbox.x2.ceil().max(0.0) as usize).min(self.w);
        let r0 = (bbox.y1.ceil().max(0.0) as usize).min(self.h);
        let r1 = (bbox.y2.ceil().max(0.0) as usize).min(self.h);
        if c0 >= c1 || r0 >= r1 {
            return Mask::empty(w, h);
        }
        // Final resize: crop (ch x cw) -> original (h x w).
        let sx = self.cw as f32 / self.w as f32;
        let sy = self.ch as f32 / self.h as f32;
        let xt: Vec<Tap> = (c0..c1).map(|c| tap(sx, c, self.cw)).collect();
        let yt: Vec<Tap> = (r0..r1).map(|r| tap(sy, r, self.ch)).collect();
        // Region of the upsampled stack those taps read.
        let ux0 = self.left + xt.first().expect("non-empty").i0;
        let ux1 = self.left + xt.last().expect("non-empty").i1 + 1;
        let uy0 = self.top + yt.first().expect("non-empty").i0;
        let uy1 = self.top + yt.last().expect("non-empty").i1 + 1;
        // Upsampling by f: upsampled index u reads prototype taps.
        let inv_f = 1.0 / self.f as f32;
        let ux: Vec<Tap> = (ux0..ux1).map(|u| tap(inv_f, u, self.mw)).collect();
        let uy: Vec<Tap> = (uy0..uy1).map(|u| tap(inv_f, u, self.mh)).collect();
        let (px0, px1) = (ux[0].i0, ux.last().expect("non-empty").i1 + 1);
        let (py0, py1) = (uy[0].i0, uy.last().expect("non-empty").i1 + 1);
        // Mask logits on the prototype grid, only where needed.
        let pw = px1 - px0;
        let mut logits = vec![0f32; (py1 - py0) * pw];
        let plane = self.mh * self.mw;
        for (k, &ck) in coef.iter().enumerate() {
            let p = &raw.proto[k * plane..(k + 1) * plane];
            for (yy, row) in logits.chunks_exact_mut(pw).enumerate() {
                let src = &p[(py0 + yy) * self.mw + px0..][..pw];
                for (l, &v) in row.iter_mut().zip(src) {
                    *l += ck * v;
                }
            }
        }
        // Both bilinear resizes below run separably: the horizontal taps once per source row,
        // then each output row blends two of those rows. That is the arithmetic of blending
        // four neighbours pixel by pixel, in the same order (so the same bits), with the
        // gathers done once per source row instead of once per output pixel.
        // Upsampled values over the region.
        let uw = ux1 - ux0;
        let across = |src: &[f32], taps: &[(usize, usize, f32, f32)], dst: &mut [f32]| {
            for (d, &(i, j, w0, w1)) in dst.iter_mut().zip(taps) {
                *d = w0 * src[i] + w1 * src[j];
            }
        };
        let taps_up: Vec<_> = ux
            .iter()
            .map(|t| (t.i0 - px0, t.i1 - px0, t.w0, t.w1))
            .collect();
        let mut across_up = vec![0f32; (py1 - py0) * uw];
        for (src, dst) in logits.chunks_exact(pw).zip(across_up.chunks_exact_mut(uw)) {
            across(src, &taps_up, dst);
        }
        let mut up = vec![0f32; (uy1 - uy0) * uw];
        for (ty, dst) in uy.iter().zip(up.chunks_exact_mut(uw)) {
            let a = &across_up[(ty.i0 - py0) * uw..][..uw];
            let b = &across_up[(ty.i1 - py0) * uw..][..uw];
            for ((d, &va), &vb) in dst.iter_mut().zip(a).zip(b) {
                *d = ty.w0 * va + ty.w1 * vb;
            }
        }
        // Final bilinear into the box, thresholded at logit 0 (sigmoid 0.5).
        let bw = c1 - c0;
        let taps_box: Vec<_> = xt
            .iter()
            .map(|t| (self.left + t.i0 - ux0, self.left + t.i1 - ux0, t.w0, t.w1))
            .collect();
        // Rows of `up` the box reads: from its first row's upper tap to its last row's lower one.
        let first = self.top + yt[0].i0 - uy0;
        let last = self.top + yt.last().expect("non-empty").i1 - uy0;
        let mut across_box = vec![0f32; (last + 1 - first) * bw];
        for (src, dst) in up[first * uw..(last + 1) * uw]
            .chunks_exact(uw)
            .zip(across_box.chunks_exact_mut(bw))
        {
            across(src, &taps_box, dst);
        }
        let rect = PixelRect::new(c0 as u32, r0 as u32, bw as u32, (r1 - r0) as u32);
        let mut data = vec![0u8; rect.area() as usize];
        for (ty, dst) in yt.iter().zip(data.chunks_exact_mut(bw)) {
            let a = &across_box[(self.top + ty.i0 - uy0 - first) * bw..][..bw];
            let b = &across_box[(self.top + ty.i1 - uy0 - first) * bw..][..bw];
            for ((d, &va), &vb) in dst.iter_mut().zip(a).zip(b) {
                *d = (ty.w0 * va + ty.w1 * vb > 0.0) as u8;
            }
        }
        Mask::new(w, h, rect, data)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw output with the given anchors: (cx, cy, w, h, class scores..., coefficients...).
    fn raw_from(anchors: &[Vec<f32>]) -> Vec<f32> {
        let rows = anchors[0].len();
        let mut pred = vec![0f32; rows * anchors.len()];
        for (a, vals) in anchors.iter().enumerate() {
            for (r, v) in vals.iter().enumerate() {
                pred[r * anchors.len() + a] = *v;
            }
        }
        pred
    }

    fn view<'a>(
        pred: &'a [f32],
        anchors: usize,
        nc: usize,
        proto: &'a [f32],
        ph: usize,
        pw: usize,
    ) -> RawView<'a> {
        RawView {
            pred,
            anchors,
            num_classes: nc,
            num_masks: 1,
            proto,
            proto_h: ph,
            proto_w: pw,
        }
    }

    #[test]
    fn nms_is_class_aware_and_ordered_by_score() {
        // Two overlapping class-0 boxes, one overlapping class-1 box, one below threshold.
        let pred = raw_from(&[
            vec![50.0, 50.0, 40.0, 40.0, 0.9, 0.1, 1.0],
            vec![52.0, 50.0, 40.0, 40.0, 0.8, 0.0, 1.0],
            vec![50.0, 52.0, 40.0, 40.0, 0.1, 0.7, 1.0],
            vec![10.0, 10.0, 5.0, 5.0, 0.2, 0.1, 1.0],
        ]);
        let proto = vec![1.0; 16 * 16];
        let raw = view(&pred, 4, 2, &proto, 16, 16);
        let kept = nms(&raw, &PostOptions::default());
        let got: Vec<(usize, usize)> = kept.iter().map(|c| (c.anchor, c.class_id)).collect();
        assert_eq!(got, vec![(0, 0), (2, 1)]);
        let kept = nms(
            &raw,
            &PostOptions {
                iou: 0.95,
                max_det: 2,
                ..Default::default()
            },
        );
        assert_eq!(
            kept.iter().map(|c| c.anchor).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }

    #[test]
    fn multi_label_makes_a_candidate_per_class_above_conf() {
        // Anchor 0 scores 0.9 car and 0.3 truck: single-label keeps only the car; multi-label
        // also the truck guess on the same box (NMS is per class), ordered by score.
        let pred = raw_from(&[
            vec![50.0, 50.0, 40.0, 40.0, 0.9, 0.3, 1.0],
            vec![10.0, 10.0, 5.0, 5.0, 0.2, 0.6, 1.0],
        ]);
        let proto = vec![1.0; 16 * 16];
        let raw = view(&pred, 2, 2, &proto, 16, 16);
        let pairs = |opts: &PostOptions| -> Vec<(usize, usize)> {
            nms(&raw, opts)
                .iter()
                .map(|c| (c.anchor, c.class_id))
                .collect()
        };
        let single = PostOptions {
            conf: 0.25,
            ..Default::default()
        };
        assert_eq!(pairs(&single), vec![(0, 0), (1, 1)]);
        let multi = PostOptions {
            multi_label: true,
            ..single
        };
        assert_eq!(pairs(&multi), vec![(0, 0), (1, 1), (0, 1)]);
    }

    #[test]
    fn box_and_mask_map_back_through_the_letterbox() {
        // A 128x64 image letterboxed into 64x32 (no padding), protos 16x8 all positive:
        // the mask is exactly the box's pixels in the original image.
        let lb = Letterbox::plan(128, 64, [64, 64], true, 32);
        assert_eq!((lb.input_width, lb.input_height), (64, 32));
        let pred = raw_from(&[vec![20.0, 16.0, 20.0, 10.0, 0.9, 2.0]]);
        let proto = vec![0.5; 8 * 16];
        let raw = view(&pred, 1, 1, &proto, 8, 16);
        let out = postprocess(&raw, &lb, &PostOptions::default());
        assert_eq!(out.len(), 1);
        let i = &out[0];
        assert_eq!(i.bbox, BBox::new(20.0, 22.0, 60.0, 42.0));
        assert_eq!(i.mask.rect(), PixelRect::new(20, 22, 40, 20));
        assert_eq!(i.mask.area(), 800);
        assert_eq!(i.class_scores, vec![0.9]);
    }

    #[test]
    fn negative_logits_give_no_instance() {
        let lb = Letterbox::plan(64, 64, [64, 64], true, 32);
        let pred = raw_from(&[vec![20.0, 20.0, 10.0, 10.0, 0.9, 1.0]]);
        let proto = vec![-1.0; 16 * 16];
        let raw = view(&pred, 1, 1, &proto, 16, 16);
        assert!(postprocess(&raw, &lb, &PostOptions::default()).is_empty());
    }

    #[test]
    fn mask_follows_a_prototype_edge() {
        // Prototype positive on its left half only; the box spans the whole image.
        let (ph, pw) = (16, 16);
        let proto: Vec<f32> = (0..ph * pw)
            .map(|i| if i % pw < 8 { 1.0 } else { -1.0 })
            .collect();
        let lb = Letterbox::plan(64, 64, [64, 64], true, 32);
        let pred = raw_from(&[vec![32.0, 32.0, 64.0, 64.0, 0.9, 1.0]]);
        let raw = view(&pred, 1, 1, &proto, ph, pw);
        let out = postprocess(&raw, &lb, &PostOptions::default());
        let m = &out[0].mask;
        // The logit crosses zero half-way between proto columns 7 and 8, i.e. at x = 32.
        assert!(m.get(31, 10) && !m.get(32, 10));
        assert_eq!(m.area(), 32 * 64);
    }

    #[test]
    fn planner_upsamples_when_padding_is_not_on_whole_prototype_pixels() {
        // 1280x720 at 640 rect: input 640x384, protos 96x160, padding 24 px -> f = 1? 24|12 = 28,
        // gcd(4, 28) = 4 -> f = 1; crop rows 3..93.
        let p = MaskPlanner::new(96, 160, 720, 1280);
        assert_eq!((p.f, p.top, p.ch, p.left, p.cw), (1, 3, 90, 0, 160));
        // 600x400 at 320 rect: input 320x224 (pad 11), protos 56x80: 11|5 = 15 -> f = 4.
        let p = MaskPlanner::new(56, 80, 400, 600);
        assert_eq!(p.f, 4);
    }
    /// The mask by definition: logits on the prototype grid, then for every pixel of the box the
    /// two bilinear resizes through their four neighbours each (the code before stop 18).
    fn mask_per_pixel(planner: &MaskPlanner, raw: &RawView, coef: &[f32], bbox: &BBox) -> Vec<u8> {
        let p = planner;
        let c0 = (bbox.x1.ceil().max(0.0) as usize).min(p.w);
        let c1 = (bbox.x2.ceil().max(0.0) as usize).min(p.w);
        let r0 = (bbox.y1.ceil().max(0.0) as usize).min(p.h);
        let r1 = (bbox.y2.ceil().max(0.0) as usize).min(p.h);
        let plane = p.mh * p.mw;
        let logit = |y: usize, x: usize| -> f32 {
            let mut v = 0f32;
            for (k, &ck) in coef.iter().enumerate() {
                v += ck * raw.proto[k * plane + y * p.mw + x];
            }
            v
        };
        let inv_f = 1.0 / p.f as f32;
        let up = |uy: usize, ux: usize| -> f32 {
            let (ty, tx) = (tap(inv_f, uy, p.mh), tap(inv_f, ux, p.mw));
            ty.w0 * (tx.w0 * logit(ty.i0, tx.i0) + tx.w1 * logit(ty.i0, tx.i1))
                + ty.w1 * (tx.w0 * logit(ty.i1, tx.i0) + tx.w1 * logit(ty.i1, tx.i1))
        };
        let (sx, sy) = (p.cw as f32 / p.w as f32, p.ch as f32 / p.h as f32);
        let mut out = Vec::new();
        for r in r0..r1 {
            let ty = tap(sy, r, p.ch);
            for c in c0..c1 {
                let tx = tap(sx, c, p.cw);
                let (a0, a1) = (p.top + ty.i0, p.top + ty.i1);
                let (b0, b1) = (p.left + tx.i0, p.left + tx.i1);
                let v = ty.w0 * (tx.w0 * up(a0, b0) + tx.w1 * up(a0, b1))
                    + ty.w1 * (tx.w0 * up(a1, b0) + tx.w1 * up(a1, b1));
                out.push((v > 0.0) as u8);
            }
        }
        out
    }

    #[test]
    fn separable_mask_is_the_per_pixel_definition_bit_for_bit() {
        // Random prototypes and coefficients near the threshold, boxes of every size and place,
        // and input/original sizes giving each pre-upsampling factor.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let nm = 4;
        let (mut set, mut total) = (0, 0);
        for (mh, mw, h, w) in [(96, 160, 720, 1280), (80, 80, 480, 640), (60, 80, 437, 611)] {
            let planner = MaskPlanner::new(mh, mw, h, w);
            let proto: Vec<f32> = (0..nm * mh * mw).map(|_| rnd() * 2.0 - 1.0).collect();
            let raw = RawView {
                pred: &[],
                anchors: 0,
                num_classes: 0,
                num_masks: nm,
                proto: &proto,
                proto_h: mh,
                proto_w: mw,
            };
            for _ in 0..12 {
                let coef: Vec<f32> = (0..nm).map(|_| rnd() - 0.5).collect();
                let (x1, y1) = (rnd() * w as f32, rnd() * h as f32);
                let bbox = BBox::new(
                    x1,
                    y1,
                    (x1 + rnd() * w as f32 * 0.6).min(w as f32),
                    (y1 + rnd() * h as f32 * 0.6).min(h as f32),
                );
                let mask = planner.mask(&raw, &coef, &bbox);
                let want = mask_per_pixel(&planner, &raw, &coef, &bbox);
                if want.is_empty() {
                    assert!(mask.is_empty());
                    continue;
                }
                assert_eq!(mask.rect().area() as usize, want.len(), "{bbox:?}");
                let differ = mask
                    .data()
                    .iter()
                    .zip(&want)
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(
                    differ, 0,
                    "{differ} pixels differ in {bbox:?} ({mh}x{mw} -> {h}x{w})"
                );
                set += want.iter().filter(|&&v| v == 1).count();
                total += want.len();
            }
        }
        // The boxes cut through both sides of the threshold, not all of one side.
        assert!(
            set > total / 10 && set < total * 9 / 10,
            "{set} of {total} set"
        );
    }
}
