//! Selection quality on the synthetic road stream, measured against its ground truth (the
//! library half of `edgesift bench-select`).
//!
//! 1. [`record_stream`] renders a synthetic stream and runs a [`Detector`] on every frame,
//!    keeping the detections and the ground-truth events of each frame.
//! 2. [`Selector`] (or a baseline: [`interval_sampling`], [`random_sampling`]) decides which
//!    frames are kept.
//! 3. [`score`] counts, per event kind, the events (one occurrence, one `ActiveEvent::id`, over
//!    all the frames it is active in) of which at least one frame was kept.
//!
//! Detectors: [`TruthDetector`] derives detections from the ground truth with a seeded
//! perturbation (jittered scores, misses, false positives, class confusion) and a colour-layout
//! [`thumbnail_embedding`], so that 20 000 frames take a minute on one core; the real segmenter
//! can be plugged in through the [`Detector`] trait (the CLI does).

use super::{SelectConfig, SelectStats, Selector};
use crate::capture::synthetic::{EventRates, SyntheticConfig, SyntheticSource, CLASS_NAMES};
use crate::capture::{ActiveEvent, EventKind, GroundTruth};
use crate::geometry::{BBox, Mask};
use crate::segment::{Detections, Instance, Timings};
use image::RgbImage;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Which stream to record.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    pub frames: u64,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// Frames per second of capture time: the rate at which the segmenter delivers frames.
    pub fps: f32,
    pub events: EventRates,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            frames: 20_000,
            seed: 1,
            width: 320,
            height: 180,
            fps: 10.0,
            events: bench_event_rates(),
        }
    }
}

/// The generator's default event rates, except rare classes and occlusions 3x as often, so that
/// a 20 000-frame run (33 minutes at 10 fps) holds enough of them to measure a share.
pub fn bench_event_rates() -> EventRates {
    let d = EventRates::default();
    EventRates {
        rare_class_per_hour: d.rare_class_per_hour * 3.0,
        occlusion_per_hour: d.occlusion_per_hour * 3.0,
        ..d
    }
}

/// Turns a rendered frame into detections.
pub trait Detector {
    /// A short description for the report (`truth (seed 1)`, `model edgesift-road-n-seg`).
    fn describe(&self) -> String;
    fn detect(
        &mut self,
        index: u64,
        image: &RgbImage,
        truth: &GroundTruth,
    ) -> Result<Detections, String>;
}

/// One recorded frame.
pub struct BenchFrame {
    /// Capture time (`index / fps`).
    pub t: Duration,
    pub detections: Detections,
    pub events: Vec<ActiveEvent>,
}

/// Renders `opts.frames` frames and runs `detector` on each; `progress` is called with the
/// number of frames done every 1000 frames.
pub fn record_stream(
    opts: &StreamOptions,
    detector: &mut dyn Detector,
    mut progress: impl FnMut(u64),
) -> Result<Vec<BenchFrame>, String> {
    let mut src = SyntheticSource::new(SyntheticConfig {
        seed: opts.seed,
        width: opts.width,
        height: opts.height,
        fps: opts.fps,
        realtime: false,
        max_frames: Some(opts.frames),
        events: opts.events.clone(),
        ..Default::default()
    })
    .map_err(|e| format!("synthetic stream: {e}"))?;
    let mut image = RgbImage::new(opts.width, opts.height);
    let mut out = Vec::with_capacity(opts.frames as usize);
    let mut index = 0u64;
    while let Some(truth) = src.render_next(&mut image) {
        let detections = detector.detect(index, &image, &truth)?;
        out.push(BenchFrame {
            t: Duration::from_secs_f64(index as f64 / opts.fps as f64),
            detections,
            events: truth.events,
        });
        index += 1;
        if index % 1000 == 0 {
            progress(index);
        }
    }
    Ok(out)
}

/// Detections from the ground truth, perturbed like a decent but imperfect model: scores
/// jittered and lower for small or hidden objects, some of those missed, a false positive now
/// and then, and similar classes (car/truck/bus, pedestrian/cyclist, animal/pedestrian) sharing
/// score mass, sometimes enough to swap the label. Deterministic in `(seed, frame, track)`.
pub struct TruthDetector {
    seed: u64,
    class_names: Arc<[String]>,
}

impl TruthDetector {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Detections below this score are dropped, like the model's default `conf`.
const TRUTH_CONF: f32 = 0.25;

impl Detector for TruthDetector {
    fn describe(&self) -> String {
        format!("truth (perturbed, seed {})", self.seed)
    }

    fn detect(
        &mut self,
        index: u64,
        image: &RgbImage,
        truth: &GroundTruth,
    ) -> Result<Detections, String> {
        let (w, h) = image.dimensions();
        // Object sizes relative to a 320x180 picture, so the perturbation does not depend on the
        // rendering resolution.
        let px_scale = (320.0 * 180.0) / (w as f32 * h as f32).max(1.0);
        let n = CLASS_NAMES.len();
        let mut instances = Vec::with_capacity(truth.instances.len() + 1);
        for ti in &truth.instances {
            let mut r = SplitMix::new(hash(&[self.seed, index, ti.track_id]));
            let area = ti.mask.area() as f32 * px_scale;
            let small = (1.0 - area / 300.0).clamp(0.0, 1.0);
            let hidden = 1.0 - ti.visible_fraction.clamp(0.0, 1.0);
            let score = (0.92 - 0.35 * hidden - 0.3 * small + 0.08 * r.normal()).clamp(0.0, 0.99);
            if score < TRUTH_CONF || r.unit() < 0.02 + 0.25 * small {
                continue;
            }
            let true_class = ti.class_id as usize % n;
            let mut class_scores: Vec<f32> = (0..n).map(|_| 0.002 + 0.02 * r.unit()).collect();
            class_scores[true_class] = score;
            if let Some(alt) = confusable(true_class) {
                // Usually a little doubt; sometimes nearly a tie; rarely the wrong label.
                let u = r.unit();
                let share = if u < 0.03 {
                    1.0 + 0.2 * r.unit()
                } else if u < 0.2 {
                    0.6 + 0.35 * r.unit()
                } else {
                    0.1 * r.unit()
                };
                class_scores[alt] = (score * share).min(0.99);
            }
            let (class_id, &best) = class_scores
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one class");
            instances.push(Instance {
                class_id: class_id as u32,
                score: best,
                bbox: ti.bbox,
                mask: ti.mask.clone(),
                class_scores,
            });
        }
        // A false positive in about one frame in twenty.
        let mut r = SplitMix::new(hash(&[self.seed, index, u64::MAX]));
        if r.unit() < 0.05 {
            let bw = 4.0 + r.unit() * w as f32 * 0.08;
            let bh = 4.0 + r.unit() * h as f32 * 0.12;
            let x = r.unit() * (w as f32 - bw).max(0.0);
            let y = h as f32 * 0.35 + r.unit() * (h as f32 * 0.6 - bh).max(0.0);
            let bbox = BBox::new(x, y, x + bw, y + bh).clip(w as f32, h as f32);
            let class_id = (r.next() % n as u64) as usize;
            let score = 0.25 + 0.2 * r.unit();
            let mut class_scores = vec![0.01; n];
            class_scores[class_id] = score;
            instances.push(Instance {
                class_id: class_id as u32,
                score,
                bbox,
                mask: Mask::from_fn(w, h, bbox.pixel_rect(w, h), |_, _| true),
                class_scores,
            });
        }
        Ok(Detections {
            image_width: w,
            image_height: h,
            instances,
            embedding: thumbnail_embedding(image),
            class_names: self.class_names.clone(),
            timings: Timings::default(),
        })
    }
}

/// Classes a detector confuses with each other (indices into the synthetic classes).
fn confusable(class: usize) -> Option<usize> {
    match CLASS_NAMES.get(class).copied() {
        Some("car") => Some(1),
        Some("truck") => Some(2),
        Some("bus") => Some(1),
        Some("pedestrian") => Some(4),
        Some("cyclist") => Some(3),
        Some("animal") => Some(3),
        _ => None,
    }
}

/// Grid of the colour-layout embedding.
const THUMB_W: u32 = 16;
const THUMB_H: u32 = 9;

/// A cheap scene descriptor: the mean colour of each cell of a 16x9 grid (square-root
/// compressed), minus its own mean, L2-normalised; 432 values. Scenes of different layout,
/// light or palette (snow, tunnel, night, a bus filling the view) land far apart.
pub fn thumbnail_embedding(image: &RgbImage) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let mut sums = vec![0.0f64; (THUMB_W * THUMB_H * 3) as usize];
    let mut counts = vec![0u32; (THUMB_W * THUMB_H) as usize];
    if w == 0 || h == 0 {
        return vec![0.0; sums.len()];
    }
    for (x, y, p) in image.enumerate_pixels() {
        let cell = ((y * THUMB_H / h) * THUMB_W + x * THUMB_W / w) as usize;
        counts[cell] += 1;
        for c in 0..3 {
            sums[cell * 3 + c] += p.0[c] as f64;
        }
    }
    let mut v: Vec<f32> = sums
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let n = counts[i / 3].max(1) as f64;
            ((s / n) / 255.0).sqrt() as f32
        })
        .collect();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    v.iter_mut().for_each(|x| *x -= mean);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 1e-9 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Runs a selector over the recorded frames; returns which frames were kept.
pub fn select(
    frames: &[BenchFrame],
    cfg: &SelectConfig,
) -> Result<(Vec<bool>, SelectStats), String> {
    let mut sel = Selector::new(cfg).map_err(|e| format!("select.{e}"))?;
    let mut keep = vec![false; frames.len()];
    let mut decided = vec![false; frames.len()];
    let mut apply = |ds: Vec<super::Decision>| -> Result<(), String> {
        for d in ds {
            let i = d.seq as usize;
            if i >= frames.len() || decided[i] {
                return Err(format!("frame {} decided twice or never offered", d.seq));
            }
            decided[i] = true;
            keep[i] = d.keep;
        }
        Ok(())
    };
    for (i, f) in frames.iter().enumerate() {
        apply(sel.offer(i as u64, f.t, &f.detections))?;
    }
    apply(sel.finish())?;
    if let Some(i) = decided.iter().position(|d| !d) {
        return Err(format!("frame {i} never decided"));
    }
    Ok((keep, sel.stats().clone()))
}

/// Keeps `kept` frames of `n`, evenly spaced (the first half a period in).
pub fn interval_sampling(n: usize, kept: usize) -> Vec<bool> {
    let mut keep = vec![false; n];
    if kept == 0 || n == 0 {
        return keep;
    }
    let period = n as f64 / kept.min(n) as f64;
    for k in 0..kept.min(n) {
        let i = ((k as f64 + 0.5) * period) as usize;
        keep[i.min(n - 1)] = true;
    }
    keep
}

/// Keeps each frame with probability `rate`, from a seeded generator.
pub fn random_sampling(n: usize, rate: f64, seed: u64) -> Vec<bool> {
    let mut r = SplitMix::new(hash(&[seed, 0x5EED]));
    (0..n).map(|_| (r.unit() as f64) < rate).collect()
}

/// Events of one kind and how many were caught.
#[derive(Debug, Clone, PartialEq)]
pub struct KindScore {
    pub kind: EventKind,
    pub events: usize,
    pub caught: usize,
    /// Mean number of frames an event of this kind is active in.
    pub mean_frames: f64,
}

impl KindScore {
    /// Share of the events caught (0 when there were none).
    pub fn share(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.caught as f64 / self.events as f64
        }
    }
}

/// How one way of selecting did on a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub name: String,
    pub frames: usize,
    pub kept: usize,
    pub kinds: Vec<KindScore>,
}

impl Score {
    pub fn keep_rate(&self) -> f64 {
        self.kept as f64 / self.frames.max(1) as f64
    }

    pub fn kind(&self, kind: EventKind) -> Option<&KindScore> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    pub fn to_json(&self) -> Value {
        let kinds: serde_json::Map<String, Value> = self
            .kinds
            .iter()
            .map(|k| {
                (
                    k.kind.name().to_string(),
                    json!({
                        "events": k.events,
                        "caught": k.caught,
                        "share": k.share(),
                        "mean_frames": k.mean_frames,
                    }),
                )
            })
            .collect();
        json!({
            "name": self.name,
            "frames": self.frames,
            "kept": self.kept,
            "keep_rate": self.keep_rate(),
            "events": kinds,
        })
    }
}

/// Scores `keep` against the events of `frames`.
pub fn score(name: &str, frames: &[BenchFrame], keep: &[bool]) -> Score {
    // (kind, id) -> (frames active, caught)
    let mut events: BTreeMap<(EventKind, u64), (usize, bool)> = BTreeMap::new();
    for (f, &k) in frames.iter().zip(keep) {
        let mut seen = BTreeSet::new();
        for e in &f.events {
            if seen.insert((e.kind, e.id)) {
                let entry = events.entry((e.kind, e.id)).or_default();
                entry.0 += 1;
                entry.1 |= k;
            }
        }
    }
    let kinds = EventKind::ALL
        .iter()
        .map(|&kind| {
            let of_kind: Vec<&(usize, bool)> = events
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|(_, v)| v)
                .collect();
            let n = of_kind.len();
            KindScore {
                kind,
                events: n,
                caught: of_kind.iter().filter(|v| v.1).count(),
                mean_frames: if n == 0 {
                    0.0
                } else {
                    of_kind.iter().map(|v| v.0 as f64).sum::<f64>() / n as f64
                },
            }
        })
        .collect();
    Score {
        name: name.to_string(),
        frames: frames.len(),
        kept: keep.iter().filter(|&&k| k).count(),
        kinds,
    }
}

/// Scores of several runs (seeds) added up row by row: the rows of `runs[i]` are matched by
/// name; events, catches, kept and frames are summed, so each share is the share of all the
/// runs' events (not a mean of the runs' shares), and an event kind's mean length is weighted
/// by its events. Rows missing from some run are pooled over the runs that have them.
pub fn pool(runs: &[Vec<Score>]) -> Vec<Score> {
    let mut pooled: Vec<Score> = Vec::new();
    for run in runs {
        for sc in run {
            let Some(p) = pooled.iter_mut().find(|p| p.name == sc.name) else {
                pooled.push(sc.clone());
                continue;
            };
            p.frames += sc.frames;
            p.kept += sc.kept;
            for k in &sc.kinds {
                match p.kinds.iter_mut().find(|pk| pk.kind == k.kind) {
                    Some(pk) => {
                        let events = pk.events + k.events;
                        if events > 0 {
                            pk.mean_frames = (pk.mean_frames * pk.events as f64
                                + k.mean_frames * k.events as f64)
                                / events as f64;
                        }
                        pk.events = events;
                        pk.caught += k.caught;
                    }
                    None => p.kinds.push(k.clone()),
                }
            }
        }
    }
    pooled
}

/// The selector's score and both baselines at the selector's keep rate.
pub fn compare(
    frames: &[BenchFrame],
    cfg: &SelectConfig,
    name: &str,
    seed: u64,
) -> Result<(Vec<Score>, SelectStats), String> {
    let (keep, stats) = select(frames, cfg)?;
    let selected = score(name, frames, &keep);
    let n = frames.len();
    let interval = score("interval", frames, &interval_sampling(n, selected.kept));
    let random = score(
        "random",
        frames,
        &random_sampling(n, selected.keep_rate(), seed),
    );
    Ok((vec![selected, interval, random], stats))
}

/// A plain-text table: one row per score, the share of events caught per kind.
pub fn table(scores: &[Score]) -> String {
    let mut s = format!("{:<22} {:>7} {:>7}", "selection", "kept", "rate");
    for k in EventKind::ALL {
        s += &format!(" {:>14}", k.name());
    }
    s.push('\n');
    for sc in scores {
        s += &format!(
            "{:<22} {:>7} {:>6.2}%",
            sc.name,
            sc.kept,
            100.0 * sc.keep_rate()
        );
        for k in &sc.kinds {
            let cell = format!("{:.0}% ({}/{})", 100.0 * k.share(), k.caught, k.events);
            s += &format!(" {cell:>14}");
        }
        s.push('\n');
    }
    s
}

/// SplitMix64: tiny, seedable, stable forever (the bench's numbers must not move when a crate
/// changes its generator).
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Roughly standard normal (sum of four uniforms, rescaled).
    fn normal(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.unit()).sum();
        (s - 2.0) * 3.0f32.sqrt()
    }
}

fn hash(parts: &[u64]) -> u64 {
    let mut h = SplitMix::new(0x0DDB_1A5E_5BAD_5EED);
    let mut acc = h.next();
    for &p in parts {
        acc = SplitMix::new(acc ^ p).next();
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(events: &[(EventKind, u64)]) -> BenchFrame {
        BenchFrame {
            t: Duration::ZERO,
            detections: crate::select::testutil::det(vec![]),
            events: events
                .iter()
                .map(|&(kind, id)| ActiveEvent { id, kind })
                .collect(),
        }
    }

    #[test]
    fn an_event_is_caught_when_any_of_its_frames_is_kept() {
        use EventKind::*;
        let frames = vec![
            frame(&[(RareClass, 1)]),
            frame(&[(RareClass, 1), (Occlusion, 2)]),
            frame(&[]),
            frame(&[(RareClass, 3)]),
            frame(&[(RareClass, 1)]),
        ];
        let s = score("x", &frames, &[false, false, false, true, true]);
        let rare = s.kind(RareClass).unwrap();
        assert_eq!((rare.events, rare.caught), (2, 2));
        assert!((rare.mean_frames - 2.0).abs() < 1e-9);
        let occ = s.kind(Occlusion).unwrap();
        assert_eq!((occ.events, occ.caught), (1, 0));
        assert_eq!(s.kept, 2);
        assert!((s.keep_rate() - 0.4).abs() < 1e-9);
        assert!(table(std::slice::from_ref(&s)).contains("rare_class"));
        assert_eq!(s.to_json()["events"]["rare_class"]["caught"], 2);
    }

    #[test]
    fn pooled_scores_add_up_events_not_shares() {
        use EventKind::*;
        let one = vec![
            frame(&[(Occlusion, 1)]),
            frame(&[(Occlusion, 2)]),
            frame(&[(RareClass, 3)]),
            frame(&[]),
        ];
        let two = vec![frame(&[(Occlusion, 1)]), frame(&[(Occlusion, 1)])];
        let a = vec![
            score("strategies", &one, &[true, false, true, false]),
            score("interval", &one, &[false; 4]),
        ];
        let b = vec![score("strategies", &two, &[false, true])];
        let p = pool(&[a, b]);
        assert_eq!(p.len(), 2);
        let s = &p[0];
        assert_eq!((s.name.as_str(), s.frames, s.kept), ("strategies", 6, 3));
        let occ = s.kind(Occlusion).unwrap();
        // 1 of 2 events in the first run, 1 of 1 in the second: 2 of 3, not the mean of 50 %
        // and 100 %; mean length (1 + 1 + 2) / 3 frames.
        assert_eq!((occ.events, occ.caught), (3, 2));
        assert!((occ.mean_frames - 4.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            s.kind(RareClass).map(|k| (k.events, k.caught)),
            Some((1, 1))
        );
        // A row only the first run has is that run's.
        assert_eq!(
            (p[1].name.as_str(), p[1].frames, p[1].kept),
            ("interval", 4, 0)
        );
    }

    #[test]
    fn baselines_keep_the_asked_number_of_frames() {
        let k = interval_sampling(1000, 37);
        assert_eq!(k.iter().filter(|&&x| x).count(), 37);
        let r = random_sampling(100_000, 0.02, 7);
        let n = r.iter().filter(|&&x| x).count();
        assert!((1800..2200).contains(&n), "{n}");
        assert_eq!(r, random_sampling(100_000, 0.02, 7));
    }

    #[test]
    fn thumbnail_embedding_is_normalised_and_tells_scenes_apart() {
        let grey = RgbImage::from_fn(64, 36, |x, _| image::Rgb([(x * 4) as u8, 100, 100]));
        let e = thumbnail_embedding(&grey);
        assert_eq!(e.len(), 432);
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        let snow = RgbImage::from_fn(64, 36, |_, y| image::Rgb([240, 240, (y * 7) as u8]));
        let f = thumbnail_embedding(&snow);
        let cos: f32 = e.iter().zip(&f).map(|(a, b)| a * b).sum();
        assert!(cos < 0.9, "{cos}");
    }

    #[test]
    fn truth_detector_is_deterministic_and_mostly_right() {
        let opts = StreamOptions {
            frames: 60,
            ..Default::default()
        };
        let run = || record_stream(&opts, &mut TruthDetector::new(3), |_| {}).unwrap();
        let (a, b) = (run(), run());
        let (mut truth_n, mut det_n) = (0usize, 0usize);
        for (fa, fb) in a.iter().zip(&b) {
            let sa: Vec<(u32, f32)> = fa
                .detections
                .instances
                .iter()
                .map(|i| (i.class_id, i.score))
                .collect();
            let sb: Vec<(u32, f32)> = fb
                .detections
                .instances
                .iter()
                .map(|i| (i.class_id, i.score))
                .collect();
            assert_eq!(sa, sb);
            assert_eq!(fa.detections.embedding, fb.detections.embedding);
            det_n += sa.len();
            assert!(sa.iter().all(|&(_, s)| (TRUTH_CONF..1.0).contains(&s)));
        }
        let mut src = SyntheticSource::new(SyntheticConfig {
            width: 320,
            height: 180,
            fps: 10.0,
            realtime: false,
            events: bench_event_rates(),
            ..Default::default()
        })
        .unwrap();
        let mut img = RgbImage::new(1, 1);
        for _ in 0..60 {
            truth_n += src.render_next(&mut img).unwrap().instances.len();
        }
        assert!(truth_n > 0);
        // Some misses, some false positives, but the bulk is found.
        assert!(det_n as f64 > 0.5 * truth_n as f64, "{det_n} of {truth_n}");
        assert!(det_n as f64 <= 1.1 * truth_n as f64 + 5.0);
    }
}
