//! Frame selection: which segmented frames are worth keeping for labelling, and why.
//!
//! A [`Selector`] is offered every segmented frame with its capture time and returns
//! [`Decision`]s. Each enabled strategy gives every frame a verdict (wanted or not), a score and
//! a reason tag:
//!
//! | strategy        | reason tag                          | wants a frame when ...                      |
//! |-----------------|-------------------------------------|---------------------------------------------|
//! | `diversity`     | `novel_scene`                       | its embedding is far from every kept frame  |
//! | `classes`       | `rare_class`, `class_of_interest`   | it shows a rare or weighted class           |
//! | `occlusion`     | `occlusion`                         | an object is partly hidden by another       |
//! | `uncertainty`   | `uncertain`                         | the model is unsure of some detections      |
//! | `crowd`         | `crowd`                             | many objects at once                        |
//! | `small_objects` | `small_objects`                     | several tiny objects                        |
//! | `interval`      | `interval`                          | nothing was kept for a while (coverage)     |
//!
//! A frame that no strategy wants is skipped at once. Wanted frames (candidates) wait in a
//! look-back window (`window_ms`); each window is then decided best value first, where a frame's
//! value is the weighted sum of the scores of the strategies that want it. A candidate is kept
//! unless every reason it has is *cooling down* (kept for the same reason less than
//! `budget.cooldown_ms` ago, where reasons about an object follow that object from frame to
//! frame, or no longer novel after a similar frame was kept) or the budget is spent: kept frames
//! per minute and per hour, of which a frame may use a share growing with its value, so that
//! frequent low-value reasons cannot take the room a rare event needs. Every kept frame carries
//! all verdicts in its record.
//!
//! Architecture invariant: pure and deterministic given the detections and the frames' monotonic
//! capture times; no I/O, no wall clock. (The only side effect is a log warning about configured
//! class names the model does not know.)
//!
//! [`bench`](mod@bench) measures selection quality on the synthetic stream against its ground truth.

pub mod bench;
mod budget;
mod classes;
mod config;
mod counts;
mod diversity;
mod occlusion;
#[cfg(test)]
mod testutil;
mod tracks;
mod uncertainty;
mod verdict;

pub use config::{
    BudgetConfig, ClassesConfig, CrowdConfig, DiversityConfig, IntervalConfig, OcclusionConfig,
    SelectConfig, SmallObjectsConfig, UncertaintyConfig, UncertaintyMeasure,
};

use crate::config::ConfigError;
use crate::segment::Detections;
use budget::{Budget, Cooling};
use classes::Classes;
use counts::{Crowd, Interval, SmallObjects};
use diversity::Diversity;
use occlusion::Occlusion;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tracks::Objects;
use uncertainty::Uncertainty;
use verdict::{round, FrameView, Verdict};

/// The verdict on one offered frame.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The frame's sequence number, as offered (decisions may concern frames offered earlier).
    pub seq: u64,
    pub keep: bool,
    /// The frame's value: the weighted scores of the reasons it was kept for (0 when skipped).
    pub value: f32,
    /// Reason tags, e.g. `rare_class`, `occlusion` (empty when skipped).
    pub reasons: Vec<String>,
    /// For candidates: every strategy's verdict, score and figures, the budget's state, and why
    /// a skipped candidate was skipped. `Null` for frames no strategy wanted.
    pub record: Value,
}

/// Counters since the selector was made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelectStats {
    pub offered: u64,
    /// Frames at least one strategy wanted.
    pub candidates: u64,
    pub kept: u64,
    /// Candidates whose every reason was cooling down or no longer novel.
    pub skipped_cooldown: u64,
    /// Candidates refused by the per-minute or per-hour limit.
    pub skipped_budget: u64,
    /// Frames each strategy wanted.
    pub fired: BTreeMap<String, u64>,
    /// Kept frames per reason tag (a frame may count under several).
    pub kept_by_reason: BTreeMap<String, u64>,
}

/// The selection stage: strategies, look-back window and budget.
pub struct Selector {
    cfg: SelectConfig,
    diversity: Diversity,
    classes: Classes,
    occlusion: Occlusion,
    uncertainty: Uncertainty,
    crowd: Crowd,
    small_objects: SmallObjects,
    interval: Interval,
    budget: Budget,
    objects: Objects,
    held: VecDeque<Candidate>,
    /// Bytes of the held candidates' images (RGB at their detections' size).
    held_bytes: u64,
    last_t: Option<Duration>,
    names_checked: Option<Arc<[String]>>,
    stats: SelectStats,
}

/// A wanted frame waiting for its window to be decided.
struct Candidate {
    seq: u64,
    t: Duration,
    /// What the pipeline holds for it: the frame as RGB.
    image_bytes: u64,
    verdicts: Vec<Verdict>,
    embedding: Vec<f32>,
    /// Classes shown (for class balance).
    present: Vec<u32>,
}

impl Candidate {
    fn wants(&self, strategy: &str) -> bool {
        self.verdicts
            .iter()
            .any(|v| v.fired && v.strategy == strategy)
    }
}

/// Which of a candidate's reasons still hold when its window is decided.
struct Live {
    value: f32,
    /// Indices into the candidate's verdicts.
    live: Vec<usize>,
    /// `(index, why)` of fired verdicts that no longer count.
    dropped: Vec<(usize, &'static str)>,
    /// `(index, kept score)` of live verdicts let through their cooldown as a better view.
    better: Vec<(usize, f32)>,
}

impl Selector {
    /// A selector with fresh state; fails when the configuration does not validate.
    pub fn new(cfg: &SelectConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            cfg: cfg.clone(),
            diversity: Diversity::new(&cfg.diversity),
            classes: Classes::new(&cfg.classes),
            occlusion: Occlusion::new(&cfg.occlusion),
            uncertainty: Uncertainty::new(&cfg.uncertainty),
            crowd: Crowd::new(&cfg.crowd),
            small_objects: SmallObjects::new(&cfg.small_objects),
            interval: Interval::new(&cfg.interval),
            budget: Budget::new(&cfg.budget),
            objects: Objects::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            last_t: None,
            names_checked: None,
            stats: SelectStats::default(),
        })
    }

    /// Applies new settings (SIGHUP). Learned state stays: class frequencies, the embedding bank
    /// and adaptive threshold, what the budget has counted, cooldowns, and the candidates still
    /// held (decided under the new settings). An invalid configuration changes nothing.
    pub fn reconfigure(&mut self, cfg: &SelectConfig) -> Result<(), ConfigError> {
        cfg.validate()?;
        self.diversity.reconfigure(&cfg.diversity);
        self.classes.reconfigure(&cfg.classes);
        self.occlusion.reconfigure(&cfg.occlusion);
        self.uncertainty.reconfigure(&cfg.uncertainty);
        self.crowd.reconfigure(&cfg.crowd);
        self.small_objects.reconfigure(&cfg.small_objects);
        self.interval.reconfigure(&cfg.interval);
        self.budget.reconfigure(&cfg.budget);
        self.cfg = cfg.clone();
        self.names_checked = None;
        Ok(())
    }

    pub fn config(&self) -> &SelectConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &SelectStats {
        &self.stats
    }

    /// Candidates waiting for their window to be decided.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The diversity strategy's current distance threshold (it adapts with `target_ratio`).
    pub fn diversity_threshold(&self) -> f32 {
        self.diversity.threshold()
    }

    /// Offers a segmented frame captured at `monotonic`; returns the decisions made now, for it
    /// or for frames offered earlier. Capture times that go backwards are treated as equal to the
    /// latest one.
    pub fn offer(&mut self, seq: u64, monotonic: Duration, det: &Detections) -> Vec<Decision> {
        let t = self.last_t.map_or(monotonic, |l| l.max(monotonic));
        self.last_t = Some(t);
        self.check_names(det);
        let frame = FrameView { t, det };
        let mut verdicts = self.evaluate(&frame);
        self.follow(&mut verdicts, det, t);
        self.stats.offered += 1;
        for v in verdicts.iter().filter(|v| v.fired) {
            *self.stats.fired.entry(v.strategy.to_string()).or_default() += 1;
        }
        let mut out = Vec::new();
        if verdicts.iter().any(|v| v.fired) {
            self.stats.candidates += 1;
            let image_bytes = 3 * u64::from(det.image_width) * u64::from(det.image_height);
            self.held_bytes += image_bytes;
            self.held.push_back(Candidate {
                seq,
                t,
                image_bytes,
                present: self.classes.present(&frame),
                embedding: if self.cfg.diversity.enabled {
                    det.embedding.clone()
                } else {
                    Vec::new()
                },
                verdicts,
            });
        } else {
            out.push(Decision {
                seq,
                keep: false,
                value: 0.0,
                reasons: Vec::new(),
                record: Value::Null,
            });
        }
        let window = Duration::from_millis(self.cfg.window_ms);
        while self
            .held
            .front()
            .is_some_and(|c| t.saturating_sub(c.t) >= window)
            || self.held.len() as u64 > self.cfg.max_held
            || self.held_bytes > self.cfg.max_held_mb * 1_000_000
        {
            self.decide_window(&mut out);
        }
        self.budget.prune(t, window);
        out
    }

    /// Follows every detection from frame to frame and narrows the cooldown key of each reason
    /// about an object to that object's track.
    fn follow(&mut self, verdicts: &mut [Verdict], det: &Detections, t: Duration) {
        let boxes: Vec<_> = det.instances.iter().map(|i| (i.bbox, i.class_id)).collect();
        let tracks = self.objects.update(&boxes, t);
        for v in verdicts.iter_mut() {
            let (Some(key), Some(k)) = (&v.key, v.subject) else {
                continue;
            };
            let (Some(&track), Some(inst)) = (tracks.get(k), det.instances.get(k)) else {
                continue;
            };
            let b = inst.bbox;
            let key = format!("{key}#{track}");
            v.key = Some(key);
            v.detail.insert("track".into(), track.into());
            let boxed: Vec<f64> = [b.x1, b.y1, b.x2, b.y2].iter().map(|&x| round(x)).collect();
            v.detail.insert("box".into(), boxed.into());
        }
    }

    /// End of stream: decides every candidate still held.
    pub fn finish(&mut self) -> Vec<Decision> {
        let mut out = Vec::new();
        while !self.held.is_empty() {
            self.decide_window(&mut out);
        }
        out
    }

    fn evaluate(&mut self, frame: &FrameView) -> Vec<Verdict> {
        let c = &self.cfg;
        let mut v = Vec::with_capacity(7);
        if c.diversity.enabled {
            let pending = self
                .held
                .iter()
                .filter(|c| c.wants("diversity"))
                .map(|c| c.embedding.as_slice());
            v.push(self.diversity.evaluate(&frame.det.embedding, pending));
        }
        if c.classes.enabled {
            v.push(self.classes.evaluate(frame));
        }
        if c.occlusion.enabled {
            v.push(self.occlusion.evaluate(frame));
        }
        if c.uncertainty.enabled {
            v.push(self.uncertainty.evaluate(frame));
        }
        if c.crowd.enabled {
            v.push(self.crowd.evaluate(frame));
        }
        if c.small_objects.enabled {
            v.push(self.small_objects.evaluate(frame));
        }
        if c.interval.enabled {
            v.push(self.interval.evaluate(frame));
        }
        v
    }

    /// Decides the window that starts with the oldest held candidate, best value first.
    fn decide_window(&mut self, out: &mut Vec<Decision>) {
        let Some(first) = self.held.pop_front() else {
            return;
        };
        let end = first.t + Duration::from_millis(self.cfg.window_ms);
        let mut batch = vec![first];
        while self.held.front().is_some_and(|c| c.t < end) {
            batch.extend(self.held.pop_front());
        }
        self.held_bytes -= batch.iter().map(|c| c.image_bytes).sum::<u64>();
        let mut order: Vec<(f32, usize)> = batch
            .iter()
            .enumerate()
            .map(|(i, c)| (self.live(c).value, i))
            .collect();
        order.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(batch[a.1].seq.cmp(&batch[b.1].seq))
        });
        let mut decided = Vec::with_capacity(batch.len());
        for (_, i) in order {
            decided.push(self.decide(&batch[i]));
        }
        decided.sort_by_key(|d| d.seq);
        out.extend(decided);
    }

    fn live(&self, c: &Candidate) -> Live {
        let mut l = Live {
            value: 0.0,
            live: Vec::new(),
            dropped: Vec::new(),
            better: Vec::new(),
        };
        for (i, v) in c.verdicts.iter().enumerate() {
            if !v.fired {
                continue;
            }
            if v.strategy == "diversity" && !self.diversity.still_novel(&c.embedding) {
                l.dropped.push((i, "no_longer_novel"));
            } else {
                let cooling = v
                    .key
                    .as_deref()
                    .map_or(Cooling::No, |k| self.budget.cooling(k, c.t, v.score));
                match cooling {
                    Cooling::Yes => {
                        l.dropped.push((i, "cooldown"));
                        continue;
                    }
                    Cooling::BetterView { kept } => l.better.push((i, kept)),
                    Cooling::No => {}
                }
                l.value += v.value();
                l.live.push(i);
            }
        }
        l
    }

    fn decide(&mut self, c: &Candidate) -> Decision {
        let live = self.live(c);
        let reasons: Vec<&'static str> = {
            let mut r: Vec<&'static str> =
                live.live.iter().map(|&i| c.verdicts[i].reason).collect();
            r.dedup();
            r
        };
        let verdict = if reasons.is_empty() {
            Err("cooldown")
        } else {
            self.budget
                .admit(c.t, live.value)
                .map_err(|refusal| refusal.name())
        };
        let keep = verdict.is_ok();
        let record = self.record(c, &live, verdict.err());
        match verdict {
            Ok(()) => {
                self.stats.kept += 1;
                for r in &reasons {
                    *self.stats.kept_by_reason.entry(r.to_string()).or_default() += 1;
                }
                let keys = c
                    .verdicts
                    .iter()
                    .filter(|v| v.fired)
                    .filter_map(|v| v.key.as_deref().map(|k| (k, v.score)));
                self.budget.record(c.t, keys);
                if self.cfg.diversity.enabled {
                    self.diversity.add(&c.embedding);
                }
                self.classes.note_kept(&c.present);
                self.interval.note_kept(c.t);
            }
            Err("cooldown") => self.stats.skipped_cooldown += 1,
            Err(_) => self.stats.skipped_budget += 1,
        }
        Decision {
            seq: c.seq,
            keep,
            value: if keep { live.value } else { 0.0 },
            reasons: if keep {
                reasons.iter().map(|r| r.to_string()).collect()
            } else {
                Vec::new()
            },
            record,
        }
    }

    fn record(&self, c: &Candidate, live: &Live, skipped: Option<&'static str>) -> Value {
        let mut strategies = Map::new();
        for (i, v) in c.verdicts.iter().enumerate() {
            let mut j = v.to_json();
            if let Some((_, why)) = live.dropped.iter().find(|(k, _)| *k == i) {
                j["dropped"] = (*why).into();
            }
            if let Some(&(_, kept)) = live.better.iter().find(|(k, _)| *k == i) {
                j["better_view"] = round(kept).into();
            }
            strategies.insert(v.strategy.to_string(), j);
        }
        let minute = self.budget.kept_near(c.t, Duration::from_secs(60));
        let hour = self.budget.kept_near(c.t, Duration::from_secs(3600));
        let mut r = json!({
            "value": round(live.value),
            "strategies": strategies,
            "budget": {
                "kept_within_minute": minute,
                "kept_within_hour": hour,
                "share": round(self.budget.share(live.value) as f32),
            },
            "capture_ms": c.t.as_millis() as u64,
        });
        if let Some(s) = skipped {
            r["skipped"] = s.into();
        }
        r
    }

    /// Warns once per model about configured class names it does not know (they never match).
    fn check_names(&mut self, det: &Detections) {
        if self
            .names_checked
            .as_ref()
            .is_some_and(|n| Arc::ptr_eq(n, &det.class_names))
        {
            return;
        }
        self.names_checked = Some(det.class_names.clone());
        let c = &self.cfg;
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        if c.classes.enabled {
            wanted.extend(
                c.classes
                    .weights
                    .keys()
                    .map(|n| ("classes.weights", n.as_str())),
            );
        }
        if c.occlusion.enabled {
            for [a, b] in &c.occlusion.pairs {
                wanted.push(("occlusion.pairs", a));
                wanted.push(("occlusion.pairs", b));
            }
        }
        if c.crowd.enabled {
            wanted.extend(
                c.crowd
                    .classes
                    .iter()
                    .map(|n| ("crowd.classes", n.as_str())),
            );
        }
        if c.small_objects.enabled {
            wanted.extend(
                c.small_objects
                    .classes
                    .iter()
                    .map(|n| ("small_objects.classes", n.as_str())),
            );
        }
        let mut warned: Vec<(&str, &str)> = Vec::new();
        for (key, name) in wanted {
            if !det.class_names.iter().any(|n| n == name) && !warned.contains(&(key, name)) {
                warned.push((key, name));
                tracing::warn!(
                    key = format!("select.{key}"),
                    class = name,
                    "the model has no class of this name; it is ignored"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
