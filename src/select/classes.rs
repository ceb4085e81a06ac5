//! `classes`: classes of interest, scored higher the rarer they are on this stream.
//!
//! A class's frequency is its share of the objects that appeared recently: each detection is
//! followed from frame to frame by its box ([`Tracks`]), a new track is one appearance, and the
//! appearances are counted with exponentially decaying weights (half-life `half_life_s` of
//! capture time). Counting objects rather than frames matters: an animal that stays on screen
//! for ten seconds is still one rare animal, while a class that shows up in ones and twos now
//! and then can be rare even though some frame always shows one. It also does not depend on the
//! frame rate.
//! A class's rarity is 1 at or below `rare_share`, 0 for a class in every frame, log-linear in
//! between; its score is `weight × rarity` (× a balance factor when `balance` is on). The frame
//! scores its best class; it is wanted when that reaches `threshold`.

use super::config::ClassesConfig;
use super::tracks::Tracks;
use super::verdict::{round, FrameView, Verdict};
use serde_json::{Map, Value};
use std::time::Duration;

/// Before any history, a class is assumed to make up this share of the objects, with the weight
/// of this many objects (decaying like real counts): a fresh start does not call everything rare.
const PRIOR_OBJECTS: f64 = 20.0;
const PRIOR_SHARE: f64 = 0.2;

pub(crate) struct Classes {
    cfg: ClassesConfig,
    /// Decayed number of appearances of each class id.
    seen: Vec<f64>,
    /// Decayed number of appearances of all classes.
    objects: f64,
    /// Every detection's track, per class.
    tracks: Tracks,
    /// Decayed weight of the prior.
    prior: f64,
    last_t: Option<Duration>,
    /// Kept frames showing each class id, and kept frames (for balance).
    kept: Vec<f64>,
    kept_frames: f64,
}

impl Classes {
    pub fn new(cfg: &ClassesConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            seen: Vec::new(),
            objects: 0.0,
            tracks: Tracks::default(),
            prior: PRIOR_OBJECTS,
            last_t: None,
            kept: Vec::new(),
            kept_frames: 0.0,
        }
    }

    /// New settings; the learned frequencies stay.
    pub fn reconfigure(&mut self, cfg: &ClassesConfig) {
        self.cfg = cfg.clone();
    }

    /// The classes of `frame` this strategy counts (score at least `min_score`), each once.
    pub fn present(&self, frame: &FrameView) -> Vec<u32> {
        let mut ids: Vec<u32> = frame
            .det
            .instances
            .iter()
            .filter(|i| i.score >= self.cfg.min_score)
            .map(|i| i.class_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Scores the frame against the frequencies so far, then counts it.
    pub fn evaluate(&mut self, frame: &FrameView) -> Verdict {
        let mut v = Verdict::new("classes", "class_of_interest", self.cfg.weight);
        self.decay_to(frame.t);
        let present = self.present(frame);
        let mut scores = Map::new();
        let mut best: Option<(u32, f32, f64, f32)> = None; // id, score, share, rarity
        for &id in &present {
            let name = frame.det.class_name(id);
            let weight = self
                .cfg
                .weights
                .get(name)
                .copied()
                .unwrap_or(self.cfg.other_weight);
            let share = self.share(id);
            let rarity = rarity(share, self.cfg.rare_share);
            let score = weight * rarity * self.balance(id, frame.det.class_names.len());
            scores.insert(name.to_string(), round(score).into());
            if best.is_none_or(|b| score > b.1) {
                best = Some((id, score, share, rarity));
            }
        }
        if let Some((id, score, share, rarity)) = best {
            let name = frame.det.class_name(id);
            v.score = score;
            v.fired = score > 0.0 && score >= self.cfg.threshold;
            v.subject = frame
                .det
                .instances
                .iter()
                .enumerate()
                .filter(|(_, i)| i.class_id == id && i.score >= self.cfg.min_score)
                .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
                .map(|(k, _)| k);
            if rarity >= 1.0 {
                v.reason = "rare_class";
            }
            // One cooldown key per object (the selector appends the subject's track), whether its
            // class is rare now or only weighted, and whatever label it gets in the next frame.
            v.key = Some("classes".into());
            v = v
                .with("class", name)
                .with("share", round(share as f32))
                .with("rarity", round(rarity));
        }
        v = v.with("classes", Value::Object(scores));
        self.count(frame);
        v
    }

    /// Counts a kept frame's classes, for `balance`.
    pub fn note_kept(&mut self, present: &[u32]) {
        self.kept_frames += 1.0;
        for &id in present {
            grow(&mut self.kept, id);
            self.kept[id as usize] += 1.0;
        }
    }

    fn share(&self, id: u32) -> f64 {
        let seen = self.seen.get(id as usize).copied().unwrap_or(0.0);
        (seen + self.prior * PRIOR_SHARE) / (self.objects + self.prior)
    }

    /// Up to 2 for a class never kept, 1 at its fair share of the kept frames, less above it.
    fn balance(&self, id: u32, num_classes: usize) -> f32 {
        if !self.cfg.balance || self.kept_frames < 1.0 {
            return 1.0;
        }
        let fair = 1.0 / num_classes.max(1) as f64;
        let share = self.kept.get(id as usize).copied().unwrap_or(0.0) / self.kept_frames;
        (2.0 / (1.0 + share / fair)) as f32
    }

    fn decay_to(&mut self, t: Duration) {
        if let Some(last) = self.last_t {
            let dt = t.saturating_sub(last).as_secs_f64();
            if dt > 0.0 {
                let k = 0.5f64.powf(dt / self.cfg.half_life_s as f64);
                self.objects *= k;
                self.prior *= k;
                self.seen.iter_mut().for_each(|s| *s *= k);
            }
        }
        self.last_t = Some(self.last_t.map_or(t, |l| l.max(t)));
    }

    /// Counts the objects that appear in this frame (detections that continue no track).
    fn count(&mut self, frame: &FrameView) {
        for i in &frame.det.instances {
            if i.score < self.cfg.min_score {
                continue;
            }
            let name = frame.det.class_name(i.class_id);
            let (_, new) = self.tracks.assign_new(name, &i.bbox, frame.t);
            if new {
                self.objects += 1.0;
                grow(&mut self.seen, i.class_id);
                self.seen[i.class_id as usize] += 1.0;
            }
        }
        self.tracks.prune(frame.t);
    }
}

fn grow(v: &mut Vec<f64>, id: u32) {
    if v.len() <= id as usize {
        v.resize(id as usize + 1, 0.0);
    }
}

/// Most rarity a class can have (at a share of `rare_share²`).
const MAX_RARITY: f64 = 2.0;

/// 1 at `rare_share`, 0 at a share of 1, log-linear, up to [`MAX_RARITY`]: the rarer the higher.
fn rarity(share: f64, rare_share: f32) -> f32 {
    let r = share.max(1e-12).ln() / (rare_share as f64).ln();
    r.clamp(0.0, MAX_RARITY) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::testutil::{det, inst, traffic, traffic_of};

    fn frame(t_ms: u64, d: &crate::segment::Detections) -> FrameView<'_> {
        FrameView {
            t: Duration::from_millis(t_ms),
            det: d,
        }
    }

    #[test]
    fn rarity_is_log_linear_between_rare_and_always() {
        assert_eq!(rarity(0.02, 0.02), 1.0);
        assert!(rarity(0.01, 0.02) > 1.1);
        assert_eq!(rarity(1e-9, 0.02), 2.0);
        assert_eq!(rarity(1.0, 0.02), 0.0);
        assert!((rarity(0.02f64.sqrt(), 0.02) - 0.5).abs() < 1e-5);
    }

    #[test]
    fn a_class_unseen_for_long_is_rare_and_a_common_one_is_not() {
        let mut c = Classes::new(&ClassesConfig::default());
        // Ten minutes of traffic: a new car every 2 s.
        for i in 0..6000 {
            let v = c.evaluate(&frame(i * 100, &det(vec![traffic(i)])));
            assert!(!v.fired, "frame {i}: {v:?}");
        }
        let with_animal = det(vec![traffic(6000), inst(6, 0.8, [20.0, 20.0, 30.0, 30.0])]);
        let v = c.evaluate(&frame(600_000, &with_animal));
        assert!(v.fired);
        assert_eq!(v.reason, "rare_class");
        assert_eq!(v.key.as_deref(), Some("classes"));
        assert_eq!(v.detail["class"], "animal");
        assert!(v.score > 1.0, "{v:?}");
        assert_eq!(v.subject, Some(1));
        // The same animal lingering is still one animal: it stays rare.
        for i in 1..300 {
            let v = c.evaluate(&frame(600_000 + i * 100, &with_animal));
            assert_eq!(v.reason, "rare_class", "frame {i}");
        }
        // A detection below min_score does not count.
        let weak = det(vec![inst(6, 0.2, [20.0, 20.0, 30.0, 30.0])]);
        assert!(!c.evaluate(&frame(700_000, &weak)).fired);
    }

    #[test]
    fn weights_pick_classes_of_interest_and_zero_ignores_the_rest() {
        let mut cfg = ClassesConfig {
            other_weight: 0.0,
            ..Default::default()
        };
        cfg.weights.insert("pedestrian".into(), 3.0);
        let mut c = Classes::new(&cfg);
        // A third of the objects are pedestrians: not rare, but weighted 3.
        for i in 0..6000u64 {
            let class = if (i / 20) % 3 == 0 { 3 } else { 0 };
            let v = c.evaluate(&frame(i * 100, &det(vec![traffic_of(class, i)])));
            if class == 3 && i > 1000 {
                assert!(v.fired, "{v:?}");
                assert_eq!(v.reason, "class_of_interest");
            }
        }
        // The cone is rare, but weighs nothing.
        let cone = det(vec![inst(5, 0.9, [0.0, 0.0, 5.0, 5.0])]);
        assert!(!c.evaluate(&frame(600_000, &cone)).fired);
    }

    #[test]
    fn frequencies_decay_with_capture_time() {
        let mut c = Classes::new(&ClassesConfig {
            half_life_s: 10.0,
            ..Default::default()
        });
        // 100 s of animals, one after the other.
        for i in 0..1000 {
            c.evaluate(&frame(i * 100, &det(vec![traffic_of(6, i)])));
        }
        assert!(c.share(6) > 0.9);
        // After 100 s (10 half-lives) of cars, animals are rare again.
        for i in 1000..2000 {
            c.evaluate(&frame(i * 100, &det(vec![traffic(i)])));
        }
        assert!(c.share(6) < 0.02, "{}", c.share(6));
        let animal = det(vec![inst(6, 0.9, [0.0, 0.0, 5.0, 5.0])]);
        assert!(c.evaluate(&frame(200_000, &animal)).fired);
    }

    #[test]
    fn balance_favours_classes_missing_from_the_kept_set() {
        let mut c = Classes::new(&ClassesConfig {
            balance: true,
            ..Default::default()
        });
        assert_eq!(c.balance(3, 7), 1.0);
        for _ in 0..10 {
            c.note_kept(&[0]);
        }
        assert!((c.balance(3, 7) - 2.0).abs() < 1e-6);
        assert!(c.balance(0, 7) < 0.3);
    }
}
