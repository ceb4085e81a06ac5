//! The `[select]` section of the configuration file: one sub-table per strategy plus the budget.
//!
//! Every field has a default, so `[select]` may be left out; `docs/SELECTION.md` shows the whole
//! section with every default.

use crate::config::{check_range, ConfigError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// How frames are selected. Keys are relative to `[select]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectConfig {
    /// Look-back window, milliseconds of capture time: candidate frames are held this long and
    /// each window is decided best-value first, so that when the budget or a cooldown allows
    /// only one frame of a burst, it is the best one (0 decides each frame as it comes). Costs
    /// memory: the pipeline keeps the image of every candidate until it is decided, up to
    /// `window_ms` × frame rate images (2.7 MB each at 1280x720) (0..=60000). Default 2000.
    pub window_ms: u64,
    /// Most candidates held at once (1..=1000): when a burst exceeds it, the oldest window is
    /// decided early. Bounds the memory of the look-back window whatever the frame rate (at
    /// start-up `interval` wants every frame until the first keep; a replay at hundreds of
    /// frames a second would otherwise hold thousands of images). Default 32.
    pub max_held: u64,
    /// Most megabytes (10^6 bytes) of candidate images held at once, counted as RGB at the
    /// frame's size (2.76 MB at 1280x720, 6.2 MB at 1920x1080): like `max_held`, but the same
    /// memory whatever the resolution (1..=100000). Default 64: 23 images at 1280x720, which
    /// keeps the daemon's peak resident memory under 150 MB with the n model however fast it
    /// segments.
    pub max_held_mb: u64,
    pub budget: BudgetConfig,
    pub diversity: DiversityConfig,
    pub classes: ClassesConfig,
    pub occlusion: OcclusionConfig,
    pub uncertainty: UncertaintyConfig,
    pub crowd: CrowdConfig,
    pub small_objects: SmallObjectsConfig,
    pub interval: IntervalConfig,
}

impl Default for SelectConfig {
    fn default() -> Self {
        Self {
            window_ms: 2000,
            max_held: 32,
            max_held_mb: 40,
            budget: BudgetConfig::default(),
            diversity: DiversityConfig::default(),
            classes: ClassesConfig::default(),
            occlusion: OcclusionConfig::default(),
            uncertainty: UncertaintyConfig::default(),
            crowd: CrowdConfig::default(),
            small_objects: SmallObjectsConfig::default(),
            interval: IntervalConfig::default(),
        }
    }
}

/// `[select.budget]`: how many frames may be kept, and how often for the same reason.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Most frames kept in any 60 s of capture time (sliding window; 0 = no limit). Default 20.
    pub max_per_minute: u32,
    /// Most frames kept in any hour of capture time (sliding window; 0 = no limit). Default 600.
    pub max_per_hour: u32,
    /// The lower a frame's value, the smaller the share of each limit it may use: a frame of
    /// value `v` is kept only while fewer than `max × min(1, v / full_value)` frames (at least 1)
    /// are kept within the window, so frequent low-value reasons cannot spend the room a rare
    /// event needs (0.01..=100). Default 1.0 (a rare class or a clear occlusion).
    pub full_value: f32,
    /// After a frame is kept for a reason, further frames for that same reason alone are skipped
    /// for this many milliseconds of capture time, so that one lingering object does not fill
    /// the budget with near-identical frames (0 = off). "The same reason" is the same object for
    /// `rare_class`/`class_of_interest` and `occlusion` (the object the reason is about, followed
    /// from frame to frame by its box), the reason itself for the others. Default 10000.
    pub cooldown_ms: u64,
    /// A reason still cooling down is let through when its score is at least this many times
    /// the best score it was kept with in that cooldown: a clearly better view of the same
    /// object (more of it hidden, a larger crowd) is not a near-duplicate. The record says
    /// `"better_view"` with the score it beat. 0 = off; otherwise 1.1..=100. Default 1.5.
    pub better_view: f32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            max_per_minute: 20,
            max_per_hour: 600,
            full_value: 1.0,
            cooldown_ms: 10_000,
            better_view: 1.5,
        }
    }
}

/// `[select.diversity]`: frames whose scene embedding is far from every recently kept frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiversityConfig {
    /// Default true.
    pub enabled: bool,
    /// Multiplies the score into the frame's value. Default 0.5.
    pub weight: f32,
    /// Cosine distance (0..=2) to the nearest kept embedding from which a frame counts as a novel
    /// scene; with `target_ratio` > 0 only the starting point. Default 0.1.
    pub min_distance: f32,
    /// When > 0, the distance threshold adapts so that about this share of the frames offered
    /// counts as novel (0..=1; 0 = fixed `min_distance`). Default 0.005.
    pub target_ratio: f32,
    /// Embeddings of kept frames remembered, oldest forgotten first (1..=100000). Default 512.
    pub bank_size: usize,
    /// Subtract a running mean of all embeddings before comparing, so that features that every
    /// frame shares (pooled activations are mostly positive) do not hide the differences.
    /// Default true.
    pub center: bool,
}

impl Default for DiversityConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 0.5,
            min_distance: 0.1,
            target_ratio: 0.005,
            bank_size: 512,
            center: true,
        }
    }
}

/// `[select.classes]`: classes of interest, and classes that are rare on this stream.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassesConfig {
    /// Default true.
    pub enabled: bool,
    /// Multiplies the score into the frame's value. Default 1.0.
    pub weight: f32,
    /// Weight of each class of interest, by name (0..=100): a class's score is its weight times
    /// its rarity. Default empty (every class weighs `other_weight`).
    pub weights: BTreeMap<String, f32>,
    /// Weight of the classes not in `weights` (0 ignores them). Default 1.0.
    pub other_weight: f32,
    /// Detections below this score are not counted (0..=1). Default 0.4.
    pub min_score: f32,
    /// A class's rarity is `ln(share) / ln(rare_share)` of the share of recent frames showing it,
    /// between 0 (in every frame) and 2: 1 at this share, from which it counts as a rare class
    /// (tag `rare_class`, else `class_of_interest`) (0 < x < 1). Default 0.02.
    pub rare_share: f32,
    /// Half-life of the class frequencies, seconds of capture time (1..=604800). Default 900.
    pub half_life_s: f32,
    /// A frame is kept for its classes when its best class scores at least this (0..=100).
    /// Default 0.6.
    pub threshold: f32,
    /// Multiply each class's score by how under-represented it is among kept frames (up to 2x
    /// for a class not kept yet, 0.5x for one kept three times its fair share). Default false.
    pub balance: bool,
}

impl Default for ClassesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 1.0,
            weights: BTreeMap::new(),
            other_weight: 1.0,
            min_score: 0.4,
            rare_share: 0.02,
            half_life_s: 900.0,
            threshold: 0.6,
            balance: false,
        }
    }
}

/// `[select.occlusion]`: an object partly hidden by another one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OcclusionConfig {
    /// Default true.
    pub enabled: bool,
    /// Multiplies the score into the frame's value. Default 0.8 (below a rare class: in a busy
    /// street partly hidden pedestrians are common, and must not take all the budget).
    pub weight: f32,
    /// `[occluded, occluder]` class-name pairs to look for; empty: any pair. Default: pedestrian,
    /// cyclist or animal behind a car, truck or bus.
    pub pairs: Vec<[String; 2]>,
    /// Detections below this score are not counted (0..=1). Default 0.3.
    pub min_score: f32,
    /// Share of the occluded object's outline that must touch the occluder (or of its mask that
    /// must overlap it) for it to count as partly hidden (0..=1). Default 0.1.
    pub min_contact: f32,
    /// Contact at which the score reaches 1 (above `min_contact`, at most 1): the score is
    /// `0.5` at `min_contact` and rises linearly to 1 here, so that of the frames of one
    /// partly hidden object the one where more of it is hidden ranks first. Default 0.5.
    pub full_contact: f32,
    /// Score factor for an occluded object on the far side of its occluder as seen from the
    /// image centre, the ego path of a forward-looking camera (0..=1; 1: no difference). On the
    /// path side (its centre in the third of the occluder nearest the image centre, or the
    /// occluder spans the centre column) it scores in full: a pedestrian at the road-side edge
    /// of a parked van is about to step into the road; one on the sidewalk behind a parked car
    /// is not. Default 0.5.
    pub far_side_factor: f32,
}

impl Default for OcclusionConfig {
    fn default() -> Self {
        let mut pairs = Vec::new();
        for hidden in ["pedestrian", "cyclist", "animal"] {
            for occluder in ["car", "truck", "bus"] {
                pairs.push([hidden.to_string(), occluder.to_string()]);
            }
        }
        Self {
            enabled: true,
            weight: 0.8,
            pairs,
            min_score: 0.3,
            min_contact: 0.1,
            full_contact: 0.5,
            far_side_factor: 0.5,
        }
    }
}

/// How uncertain a detection's class scores are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UncertaintyMeasure {
    /// `1 - p_max`.
    LeastConfidence,
    /// `1 - (p_max - p_second)`: two classes nearly tied.
    Margin,
    /// Entropy of the normalised class scores over its maximum, `ln(classes)`.
    Entropy,
}

/// `[select.uncertainty]`: detections the model is unsure about.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UncertaintyConfig {
    /// Default true.
    pub enabled: bool,
    /// Multiplies the score into the frame's value. Default 0.3.
    pub weight: f32,
    /// `least_confidence`, `margin` or `entropy`. Default `margin`.
    pub measure: UncertaintyMeasure,
    /// Only detections scored within `[min_score, max_score]` count (0..=1). Defaults 0.25, 0.6.
    pub min_score: f32,
    pub max_score: f32,
    /// A detection is uncertain when its measure is at least this (0..=1). Default 0.6.
    pub threshold: f32,
    /// Uncertain detections needed in one frame (1..=1000). Default 2.
    pub min_instances: u32,
}

impl Default for UncertaintyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 0.3,
            measure: UncertaintyMeasure::Margin,
            min_score: 0.25,
            max_score: 0.6,
            threshold: 0.6,
            min_instances: 2,
        }
    }
}

/// `[select.crowd]`: many objects at once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrowdConfig {
    /// Default true.
    pub enabled: bool,
    /// Multiplies the score into the frame's value. Default 0.5.
    pub weight: f32,
    /// Detections needed (1..=10000). Default 8.
    pub min_instances: u32,
    /// Classes counted, by name; empty: all. Default `["pedestrian", "cyclist"]`.
    pub classes: Vec<String>,
    /// Detections below this score are not counted (0..=1). Default 0.3.
    pub min_score: f32,
}

impl Default for CrowdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 0.5,
            min_instances: 8,
            classes: vec!["pedestrian".into(), "cyclist".into()],
            min_score: 0.3,
        }
    }
}

/// `[select.small_objects]`: several objects that take up a tiny part of the picture.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmallObjectsConfig {
    /// Default false (on a road camera distant cars make almost every frame qualify).
    pub enabled: bool,
    /// Multiplies the score into the frame's value. Default 0.3.
    pub weight: f32,
    /// An object is small when its box covers at most this share of the picture (0..=1).
    /// Default 0.001 (about 30x30 pixels at 1280x720).
    pub max_area_fraction: f32,
    /// Small detections needed (1..=10000). Default 4.
    pub min_instances: u32,
    /// Classes counted, by name; empty: all. Default empty.
    pub classes: Vec<String>,
    /// Detections below this score are not counted (0..=1). Default 0.3.
    pub min_score: f32,
}

impl Default for SmallObjectsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            weight: 0.3,
            max_area_fraction: 0.001,
            min_instances: 4,
            classes: Vec::new(),
            min_score: 0.3,
        }
    }
}

/// `[select.interval]`: a coverage baseline, whatever the other strategies say.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntervalConfig {
    /// Default true.
    pub enabled: bool,
    /// Multiplies the score (always 1) into the frame's value; keep it low so that coverage
    /// frames lose to every other reason. Default 0.1.
    pub weight: f32,
    /// A frame is wanted once no frame has been kept for this many milliseconds of capture time
    /// (1000..=86400000). Default 60000.
    pub period_ms: u64,
}

impl Default for IntervalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            weight: 0.1,
            period_ms: 60_000,
        }
    }
}

impl SelectConfig {
    /// Checks every value; keys are relative to `[select]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("window_ms", self.window_ms, 0, 60_000)?;
        check_range("max_held", self.max_held, 1, 1000)?;
        check_range("max_held_mb", self.max_held_mb, 1, 100_000)?;
        self.budget.validate().map_err(|e| e.within("budget"))?;
        let d = &self.diversity;
        (|| {
            weight(d.weight)?;
            finite_range("min_distance", d.min_distance, 0.0, 2.0)?;
            finite_range("target_ratio", d.target_ratio, 0.0, 1.0)?;
            check_range("bank_size", d.bank_size, 1, 100_000)
        })()
        .map_err(|e| e.within("diversity"))?;
        let c = &self.classes;
        (|| {
            weight(c.weight)?;
            for (name, w) in &c.weights {
                finite_range(&format!("weights.{name}"), *w, 0.0, 100.0)?;
            }
            finite_range("other_weight", c.other_weight, 0.0, 100.0)?;
            finite_range("min_score", c.min_score, 0.0, 1.0)?;
            finite_range("rare_share", c.rare_share, 1e-6, 0.999)?;
            finite_range("half_life_s", c.half_life_s, 1.0, 604_800.0)?;
            finite_range("threshold", c.threshold, 0.0, 100.0)
        })()
        .map_err(|e| e.within("classes"))?;
        let o = &self.occlusion;
        (|| {
            weight(o.weight)?;
            finite_range("min_score", o.min_score, 0.0, 1.0)?;
            finite_range("min_contact", o.min_contact, 0.0, 1.0)?;
            finite_range("full_contact", o.full_contact, 0.0, 1.0)?;
            if o.full_contact <= o.min_contact {
                return Err(ConfigError::new(
                    "full_contact",
                    format!(
                        "must be above min_contact ({}), got {}",
                        o.min_contact, o.full_contact
                    ),
                ));
            }
            finite_range("far_side_factor", o.far_side_factor, 0.0, 1.0)?;
            for (i, [a, b]) in o.pairs.iter().enumerate() {
                if a.is_empty() || b.is_empty() {
                    return Err(ConfigError::new(
                        format!("pairs[{i}]"),
                        "class names must not be empty",
                    ));
                }
            }
            Ok(())
        })()
        .map_err(|e| e.within("occlusion"))?;
        let u = &self.uncertainty;
        (|| {
            weight(u.weight)?;
            finite_range("min_score", u.min_score, 0.0, 1.0)?;
            finite_range("max_score", u.max_score, 0.0, 1.0)?;
            if u.max_score < u.min_score {
                return Err(ConfigError::new(
                    "max_score",
                    format!(
                        "must be at least min_score ({}), got {}",
                        u.min_score, u.max_score
                    ),
                ));
            }
            finite_range("threshold", u.threshold, 0.0, 1.0)?;
            check_range("min_instances", u.min_instances, 1, 1000)
        })()
        .map_err(|e| e.within("uncertainty"))?;
        let k = &self.crowd;
        (|| {
            weight(k.weight)?;
            check_range("min_instances", k.min_instances, 1, 10_000)?;
            finite_range("min_score", k.min_score, 0.0, 1.0)
        })()
        .map_err(|e| e.within("crowd"))?;
        let s = &self.small_objects;
        (|| {
            weight(s.weight)?;
            finite_range("max_area_fraction", s.max_area_fraction, 0.0, 1.0)?;
            check_range("min_instances", s.min_instances, 1, 10_000)?;
            finite_range("min_score", s.min_score, 0.0, 1.0)
        })()
        .map_err(|e| e.within("small_objects"))?;
        let i = &self.interval;
        (|| {
            weight(i.weight)?;
            check_range("period_ms", i.period_ms, 1_000, 86_400_000)
        })()
        .map_err(|e| e.within("interval"))?;
        Ok(())
    }
}

impl BudgetConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_range("max_per_minute", self.max_per_minute, 0, 100_000)?;
        check_range("max_per_hour", self.max_per_hour, 0, 1_000_000)?;
        finite_range("full_value", self.full_value, 0.01, 100.0)?;
        check_range("cooldown_ms", self.cooldown_ms, 0, 86_400_000)?;
        if self.better_view != 0.0 {
            finite_range("better_view", self.better_view, 1.1, 100.0)
                .map_err(|e| ConfigError::new(e.key, format!("{} (or 0: off)", e.problem)))?;
        }
        Ok(())
    }
}

fn weight(w: f32) -> Result<(), ConfigError> {
    finite_range("weight", w, 0.0, 100.0)
}

fn finite_range(key: &str, v: f32, lo: f32, hi: f32) -> Result<(), ConfigError> {
    if !v.is_finite() {
        return Err(ConfigError::new(
            key,
            format!("must be a finite number, got {v}"),
        ));
    }
    check_range(key, v, lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_documented_defaults() {
        let c: SelectConfig = toml::from_str("").unwrap();
        assert_eq!(c, SelectConfig::default());
        c.validate().unwrap();
        assert_eq!(c.window_ms, 2000);
        assert_eq!(c.budget.max_per_minute, 20);
        assert_eq!(c.budget.max_per_hour, 600);
        assert_eq!(c.budget.cooldown_ms, 10_000);
        assert_eq!(c.diversity.target_ratio, 0.005);
        assert_eq!(c.occlusion.pairs.len(), 9);
        assert_eq!(c.occlusion.weight, 0.8);
        assert_eq!(c.uncertainty.measure, UncertaintyMeasure::Margin);
        assert!(!c.small_objects.enabled);
        assert_eq!(c.interval.period_ms, 60_000);
    }

    #[test]
    fn the_documented_section_is_the_defaults() {
        // docs/SELECTION.md shows the whole `[select]` section with every default; keep it true.
        let doc = include_str!("../../docs/SELECTION.md");
        let start = doc
            .find("```toml\n[select]")
            .expect("a toml block in SELECTION.md")
            + 8;
        let len = doc[start..].find("```").expect("end of the toml block");
        let cfg = crate::config::Config::parse(&doc[start..start + len]).unwrap();
        assert_eq!(cfg.select, SelectConfig::default());
    }

    #[test]
    fn parses_nested_tables_and_rejects_unknown_keys() {
        let c: SelectConfig = toml::from_str(
            r#"
            window_ms = 500
            [budget]
            max_per_minute = 5
            full_value = 2.0
            [diversity]
            target_ratio = 0.0
            min_distance = 0.3
            [classes]
            weights = { animal = 3.0, pedestrian = 0.5 }
            balance = true
            [occlusion]
            pairs = [["pedestrian", "car"]]
            [uncertainty]
            measure = "entropy"
            [interval]
            enabled = false
            "#,
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.window_ms, 500);
        assert_eq!(c.budget.max_per_minute, 5);
        assert_eq!(c.budget.max_per_hour, 600);
        assert_eq!(c.classes.weights["animal"], 3.0);
        assert_eq!(
            c.occlusion.pairs,
            vec![["pedestrian".to_string(), "car".to_string()]]
        );
        assert_eq!(c.uncertainty.measure, UncertaintyMeasure::Entropy);
        assert!(!c.interval.enabled);
        assert!(toml::from_str::<SelectConfig>("[budget]\nmax_per_minit = 3").is_err());
        assert!(toml::from_str::<SelectConfig>("[uncertainty]\nmeasure = \"guess\"").is_err());
        assert!(toml::from_str::<SelectConfig>("[occlusion]\npairs = [[\"a\"]]").is_err());
    }

    #[test]
    fn validate_names_the_key() {
        let key = |f: &dyn Fn(&mut SelectConfig)| {
            let mut c = SelectConfig::default();
            f(&mut c);
            c.validate().unwrap_err().key
        };
        assert_eq!(key(&|c| c.window_ms = 100_000), "window_ms");
        assert_eq!(key(&|c| c.max_held = 0), "max_held");
        assert_eq!(key(&|c| c.max_held_mb = 0), "max_held_mb");
        assert_eq!(key(&|c| c.budget.full_value = 0.0), "budget.full_value");
        assert_eq!(key(&|c| c.budget.better_view = 1.0), "budget.better_view");
        assert_eq!(
            key(&|c| c.occlusion.full_contact = c.occlusion.min_contact),
            "occlusion.full_contact"
        );
        assert_eq!(
            key(&|c| c.diversity.min_distance = f32::NAN),
            "diversity.min_distance"
        );
        assert_eq!(key(&|c| c.diversity.bank_size = 0), "diversity.bank_size");
        assert_eq!(
            key(&|c| {
                c.classes.weights.insert("deer".into(), -1.0);
            }),
            "classes.weights.deer"
        );
        assert_eq!(key(&|c| c.classes.rare_share = 1.0), "classes.rare_share");
        assert_eq!(
            key(&|c| c.occlusion.pairs = vec![["".into(), "car".into()]]),
            "occlusion.pairs[0]"
        );
        assert_eq!(
            key(&|c| c.uncertainty.max_score = 0.1),
            "uncertainty.max_score"
        );
        assert_eq!(key(&|c| c.crowd.min_instances = 0), "crowd.min_instances");
        assert_eq!(
            key(&|c| c.small_objects.weight = 1000.0),
            "small_objects.weight"
        );
        assert_eq!(key(&|c| c.interval.period_ms = 10), "interval.period_ms");
    }
}
