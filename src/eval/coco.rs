//! pycocotools' `COCOeval`, for the area range "all" and 100 detections per image.

use crate::geometry::Rle;
use std::collections::{BTreeMap, HashMap};

/// What an IoU is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IouType {
    Bbox,
    Segm,
}

/// One labelled object.
#[derive(Debug, Clone)]
pub struct GroundTruth {
    pub image_id: u64,
    pub category_id: u32,
    /// COCO `[x, y, width, height]`.
    pub bbox: [f64; 4],
    pub mask: Option<Rle>,
    pub iscrowd: bool,
}

/// One prediction.
#[derive(Debug, Clone)]
pub struct Detection {
    pub image_id: u64,
    pub category_id: u32,
    pub score: f64,
    /// COCO `[x, y, width, height]`.
    pub bbox: [f64; 4],
    pub mask: Option<Rle>,
}

/// The headline numbers, each in 0..1, or -1 where no category has ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSummary {
    /// AP averaged over IoU 0.50:0.05:0.95 and categories (COCO's AP, "mAP50-95").
    pub map: f64,
    pub map50: f64,
    pub map75: f64,
    /// Recall at IoU 0.50:0.95, 100 detections (COCO's AR@100).
    pub mar100: f64,
    /// AP50-95 of each category that has ground truth.
    pub per_category: BTreeMap<u32, f64>,
}

/// pycocotools' evaluation parameters for the numbers edgesift reports.
const MAX_DETS: usize = 100;
const NUM_IOU: usize = 10;
const NUM_REC: usize = 101;

/// `np.linspace(start, stop, N)` to the bit: `i * ((stop - start) / (N - 1)) + start`, last = stop.
/// Recall values such as 0.07 are compared with `<` against these, so the rounding matters.
fn linspace<const N: usize>(start: f64, stop: f64) -> [f64; N] {
    let step = (stop - start) / (N - 1) as f64;
    std::array::from_fn(|i| {
        if i == N - 1 {
            stop
        } else {
            i as f64 * step + start
        }
    })
}

fn iou_thresholds() -> [f64; NUM_IOU] {
    linspace(0.5, 0.95)
}

fn recall_thresholds() -> [f64; NUM_REC] {
    linspace(0.0, 1.0)
}

/// A dataset's ground truth and a model's detections on it.
#[derive(Debug, Default)]
pub struct CocoEval {
    images: Vec<u64>,
    categories: Vec<u32>,
    gts: Vec<GroundTruth>,
    dts: Vec<Detection>,
}

/// Per (image, category) matching result at every IoU threshold.
struct ImageEval {
    /// Scores of the kept detections, best first.
    scores: Vec<f64>,
    /// `[threshold][detection]`: matched to a ground truth.
    matched: Vec<Vec<bool>>,
    /// `[threshold][detection]`: matched to an ignored (crowd) ground truth.
    ignored: Vec<Vec<bool>>,
    /// Ground truths that count.
    num_gt: usize,
}

impl CocoEval {
    /// An evaluation over `images` and `categories` (pycocotools takes both from the ground-truth
    /// file; images without annotations still count, detections of unlisted categories do not).
    pub fn new(images: Vec<u64>, categories: Vec<u32>) -> Self {
        Self {
            images,
            categories,
            ..Default::default()
        }
    }

    pub fn add_ground_truth(&mut self, g: GroundTruth) {
        self.gts.push(g);
    }

    pub fn add_detection(&mut self, d: Detection) {
        self.dts.push(d);
    }

    pub fn evaluate(&self, iou_type: IouType) -> EvalSummary {
        let mut gt_by: HashMap<(u64, u32), Vec<&GroundTruth>> = HashMap::new();
        for g in &self.gts {
            gt_by
                .entry((g.image_id, g.category_id))
                .or_default()
                .push(g);
        }
        let mut dt_by: HashMap<(u64, u32), Vec<&Detection>> = HashMap::new();
        for d in &self.dts {
            dt_by
                .entry((d.image_id, d.category_id))
                .or_default()
                .push(d);
        }
        let thresholds = iou_thresholds();
        let rec_thrs = recall_thresholds();
        let mut images = self.images.clone();
        images.sort_unstable();
        images.dedup();
        let mut cats = self.categories.clone();
        cats.sort_unstable();
        cats.dedup();

        // precision[t][k] = 101 interpolated precisions, or None without ground truth.
        let mut ap_by_t: Vec<Vec<Option<f64>>> = vec![Vec::new(); NUM_IOU];
        let mut recall_by_t: Vec<Vec<Option<f64>>> = vec![Vec::new(); NUM_IOU];
        let mut per_category = BTreeMap::new();
        for &cat in &cats {
            let evals: Vec<ImageEval> = images
                .iter()
                .map(|&img| {
                    evaluate_image(
                        gt_by.get(&(img, cat)).map_or(&[], Vec::as_slice),
                        dt_by.get(&(img, cat)).map_or(&[], Vec::as_slice),
                        iou_type,
                        &thresholds,
                    )
                })
                .collect();
            let num_gt: usize = evals.iter().map(|e| e.num_gt).sum();
            if num_gt == 0 {
                for t in 0..NUM_IOU {
                    ap_by_t[t].push(None);
                    recall_by_t[t].push(None);
                }
                continue;
            }
            // All detections of the category, best score first (a stable sort, like mergesort).
            let mut order: Vec<(usize, usize)> = evals
                .iter()
                .enumerate()
                .flat_map(|(i, e)| (0..e.scores.len()).map(move |j| (i, j)))
                .collect();
            order.sort_by(|a, b| evals[b.0].scores[b.1].total_cmp(&evals[a.0].scores[a.1]));
            let mut cat_aps = Vec::with_capacity(NUM_IOU);
            for t in 0..NUM_IOU {
                let (mut tp, mut fp) = (0f64, 0f64);
                let mut rc = Vec::with_capacity(order.len());
                let mut pr = Vec::with_capacity(order.len());
                for &(i, j) in &order {
                    let e = &evals[i];
                    if e.ignored[t][j] {
                        rc.push(tp / num_gt as f64);
                        pr.push(tp / (fp + tp + f64::EPSILON));
                        continue;
                    }
                    if e.matched[t][j] {
                        tp += 1.0;
                    } else {
                        fp += 1.0;
                    }
                    rc.push(tp / num_gt as f64);
                    pr.push(tp / (fp + tp + f64::EPSILON));
                }
                recall_by_t[t].push(Some(rc.last().copied().unwrap_or(0.0)));
                // Precision envelope: non-increasing from the right.
                for i in (1..pr.len()).rev() {
                    if pr[i] > pr[i - 1] {
                        pr[i - 1] = pr[i];
                    }
                }
                let mut q = [0f64; NUM_REC];
                for (r, &thr) in rec_thrs.iter().enumerate() {
                    // np.searchsorted(rc, thr, side="left")
                    let idx = rc.partition_point(|&v| v < thr);
                    if idx < pr.len() {
                        q[r] = pr[idx];
                    }
                }
                let ap = q.iter().sum::<f64>() / NUM_REC as f64;
                ap_by_t[t].push(Some(ap));
                cat_aps.push(ap);
            }
            per_category.insert(cat, cat_aps.iter().sum::<f64>() / NUM_IOU as f64);
        }
        let mean = |vals: &mut dyn Iterator<Item = f64>| {
            let (s, n) = vals.fold((0f64, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 {
                -1.0
            } else {
                s / n as f64
            }
        };
        EvalSummary {
            map: mean(&mut ap_by_t.iter().flatten().flatten().copied()),
            map50: mean(&mut ap_by_t[0].iter().flatten().copied()),
            map75: mean(&mut ap_by_t[5].iter().flatten().copied()),
            mar100: mean(&mut recall_by_t.iter().flatten().flatten().copied()),
            per_category,
        }
    }
}

/// pycocotools `evaluateImg` for one image and category, area "all", 100 detections.
fn evaluate_image(
    gts: &[&GroundTruth],
    dts: &[&Detection],
    iou_type: IouType,
    thresholds: &[f64; NUM_IOU],
) -> ImageEval {
    // Ground truths that are not ignored first (stable), as pycocotools orders them.
    let mut g_order: Vec<usize> = (0..gts.len()).collect();
    g_order.sort_by_key(|&i| gts[i].iscrowd);
    let gts: Vec<&GroundTruth> = g_order.iter().map(|&i| gts[i]).collect();
    let mut d_order: Vec<usize> = (0..dts.len()).collect();
    d_order.sort_by(|&a, &b| dts[b].score.total_cmp(&dts[a].score));
    d_order.truncate(MAX_DETS);
    let dts: Vec<&Detection> = d_order.iter().map(|&i| dts[i]).collect();

    let ious: Vec<Vec<f64>> = dts
        .iter()
        .map(|d| gts.iter().map(|g| iou(d, g, iou_type)).collect())
        .collect();
    let mut matched = vec![vec![false; dts.len()]; NUM_IOU];
    let mut ignored = vec![vec![false; dts.len()]; NUM_IOU];
    for (t, &thr) in thresholds.iter().enumerate() {
        let mut gt_taken = vec![false; gts.len()];
        for (di, row) in ious.iter().enumerate() {
            let mut best_iou = thr.min(1.0 - 1e-10);
            let mut m: Option<usize> = None;
            for (gi, g) in gts.iter().enumerate() {
                if gt_taken[gi] && !g.iscrowd {
                    continue;
                }
                // Once matched to a real object, stop before the ignored (crowd) ones.
                if let Some(mi) = m {
                    if !gts[mi].iscrowd && g.iscrowd {
                        break;
                    }
                }
                if row[gi] < best_iou {
                    continue;
                }
                best_iou = row[gi];
                m = Some(gi);
            }
            if let Some(mi) = m {
                ignored[t][di] = gts[mi].iscrowd;
                matched[t][di] = true;
                gt_taken[mi] = true;
            }
        }
    }
    ImageEval {
        scores: dts.iter().map(|d| d.score).collect(),
        matched,
        ignored,
        num_gt: gts.iter().filter(|g| !g.iscrowd).count(),
    }
}

fn iou(d: &Detection, g: &GroundTruth, iou_type: IouType) -> f64 {
    match iou_type {
        IouType::Bbox => box_iou(&d.bbox, &g.bbox, g.iscrowd),
        IouType::Segm => match (&d.mask, &g.mask) {
            (Some(dm), Some(gm)) => {
                let inter = dm.intersection(gm) as f64;
                let union = if g.iscrowd {
                    dm.area() as f64
                } else {
                    (dm.area() + gm.area()) as f64 - inter
                };
                if union > 0.0 {
                    inter / union
                } else {
                    0.0
                }
            }
            _ => 0.0,
        },
    }
}

/// pycocotools `bbIou` (xywh boxes; for a crowd region the union is the detection's area).
fn box_iou(d: &[f64; 4], g: &[f64; 4], crowd: bool) -> f64 {
    let w = (d[0] + d[2]).min(g[0] + g[2]) - d[0].max(g[0]);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d[1] + d[3]).min(g[1] + g[3]) - d[1].max(g[1]);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let da = d[2] * d[3];
    let u = if crowd { da } else { da + g[2] * g[3] - i };
    i / u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(img: u64, cat: u32, b: [f64; 4]) -> GroundTruth {
        GroundTruth {
            image_id: img,
            category_id: cat,
            bbox: b,
            mask: None,
            iscrowd: false,
        }
    }

    fn dt(img: u64, cat: u32, score: f64, b: [f64; 4]) -> Detection {
        Detection {
            image_id: img,
            category_id: cat,
            score,
            bbox: b,
            mask: None,
        }
    }

    #[test]
    fn perfect_detections_score_one() {
        let mut e = CocoEval::new(vec![1, 2], vec![0, 1]);
        for (img, cat, b) in [
            (1, 0, [0.0, 0.0, 10.0, 10.0]),
            (2, 1, [5.0, 5.0, 20.0, 8.0]),
        ] {
            e.add_ground_truth(gt(img, cat, b));
            e.add_detection(dt(img, cat, 0.9, b));
        }
        let s = e.evaluate(IouType::Bbox);
        // Precision is tp / (tp + fp + eps), as in pycocotools, hence not exactly 1.
        for v in [s.map, s.map50, s.map75, s.mar100] {
            assert!((v - 1.0).abs() < 1e-12, "{s:?}");
        }
    }

    /// Worked by hand: one class, two objects, three detections.
    ///
    /// d1 (0.9) overlaps g1 at IoU 81 / 119 = 0.68 (a 10x10 box shifted by one pixel in x and y),
    /// d2 (0.8) is a false positive, d3 (0.7) matches g2 exactly.
    /// At IoU thresholds 0.50..0.65 (4 of 10): ranked TP, FP, TP → recall 0.5 at precision 1,
    /// recall 1.0 at precision 2/3 → interpolated AP = (51 * 1 + 50 * 2/3) / 101.
    /// At 0.70..0.95 (6 of 10): FP, FP, TP → only recall 0.5 at precision 1/3
    /// → AP = 51 * (1/3) / 101.
    #[test]
    fn hand_checked_average_precision() {
        let mut e = CocoEval::new(vec![7], vec![3]);
        e.add_ground_truth(gt(7, 3, [0.0, 0.0, 10.0, 10.0]));
        e.add_ground_truth(gt(7, 3, [50.0, 50.0, 10.0, 10.0]));
        e.add_detection(dt(7, 3, 0.9, [1.0, 1.0, 10.0, 10.0]));
        e.add_detection(dt(7, 3, 0.8, [100.0, 100.0, 5.0, 5.0]));
        e.add_detection(dt(7, 3, 0.7, [50.0, 50.0, 10.0, 10.0]));
        let s = e.evaluate(IouType::Bbox);
        let ap_low = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
        let ap_high = 51.0 / 3.0 / 101.0;
        assert!((s.map50 - ap_low).abs() < 1e-12, "{}", s.map50);
        assert!((s.map75 - ap_high).abs() < 1e-12, "{}", s.map75);
        let expected = (4.0 * ap_low + 6.0 * ap_high) / 10.0;
        assert!((s.map - expected).abs() < 1e-12, "{} vs {expected}", s.map);
        assert_eq!(s.per_category.len(), 1);
    }

    #[test]
    fn categories_without_ground_truth_do_not_count() {
        let mut e = CocoEval::new(vec![1], vec![0, 1]);
        e.add_ground_truth(gt(1, 0, [0.0, 0.0, 10.0, 10.0]));
        e.add_detection(dt(1, 0, 0.9, [0.0, 0.0, 10.0, 10.0]));
        e.add_detection(dt(1, 1, 0.9, [0.0, 0.0, 10.0, 10.0]));
        assert!((e.evaluate(IouType::Bbox).map - 1.0).abs() < 1e-12);
        assert_eq!(
            CocoEval::new(vec![1], vec![0]).evaluate(IouType::Bbox).map,
            -1.0
        );
    }

    #[test]
    fn crowd_regions_absorb_detections_without_counting() {
        let mut e = CocoEval::new(vec![1], vec![0]);
        e.add_ground_truth(gt(1, 0, [0.0, 0.0, 10.0, 10.0]));
        e.add_ground_truth(GroundTruth {
            iscrowd: true,
            ..gt(1, 0, [50.0, 0.0, 50.0, 50.0])
        });
        e.add_detection(dt(1, 0, 0.9, [0.0, 0.0, 10.0, 10.0]));
        // Inside the crowd region: ignored, not a false positive.
        e.add_detection(dt(1, 0, 0.95, [60.0, 10.0, 10.0, 10.0]));
        assert!((e.evaluate(IouType::Bbox).map - 1.0).abs() < 1e-12);
    }

    #[test]
    fn only_the_best_hundred_detections_per_image_count() {
        let mut e = CocoEval::new(vec![1], vec![0]);
        e.add_ground_truth(gt(1, 0, [0.0, 0.0, 10.0, 10.0]));
        for i in 0..100 {
            e.add_detection(dt(1, 0, 0.9, [200.0 + i as f64 * 20.0, 0.0, 10.0, 10.0]));
        }
        e.add_detection(dt(1, 0, 0.1, [0.0, 0.0, 10.0, 10.0]));
        assert_eq!(e.evaluate(IouType::Bbox).map, 0.0);
    }
}
