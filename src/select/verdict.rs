//! What one strategy says about one frame, and the small pieces every strategy shares.

use crate::segment::{Detections, Instance};
use serde_json::{Map, Value};
use std::time::Duration;

/// One strategy's opinion of one frame.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// The strategy's name, also its key in the stored record (`diversity`, `classes`, ...).
    pub strategy: &'static str,
    /// Whether the strategy wants the frame.
    pub fired: bool,
    /// How strongly, about 0..=1 (a class weight above 1 can push `classes` above 1).
    pub score: f32,
    /// The strategy's weight: its share of the frame's value is `weight * score`.
    pub weight: f32,
    /// The short tag recorded when the frame is kept for this strategy (`rare_class`, ...).
    pub reason: &'static str,
    /// What the budget's cooldown counts as "the same reason" (`crowd`, `occlusion`); `None` for
    /// strategies that are their own dedup (diversity).
    pub key: Option<String>,
    /// The object the reason is about, when there is one (an index into the frame's
    /// detections): the key is then narrowed to that object's track (`occlusion#17`), so that
    /// the cooldown holds back this object and not the next of its kind.
    pub subject: Option<usize>,
    /// Strategy-specific figures for the record (`distance`, `class`, `contact`, ...).
    pub detail: Map<String, Value>,
}

impl Verdict {
    pub fn new(strategy: &'static str, reason: &'static str, weight: f32) -> Self {
        Self {
            strategy,
            fired: false,
            score: 0.0,
            weight,
            reason,
            key: None,
            subject: None,
            detail: Map::new(),
        }
    }

    /// This verdict's share of the frame's value.
    pub fn value(&self) -> f32 {
        if self.fired {
            self.weight * self.score
        } else {
            0.0
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_string(), value.into());
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("fired".into(), self.fired.into());
        m.insert("score".into(), round(self.score).into());
        m.insert("reason".into(), self.reason.into());
        for (k, v) in &self.detail {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// A frame as the strategies see it.
pub(crate) struct FrameView<'a> {
    pub t: Duration,
    pub det: &'a Detections,
}

impl FrameView<'_> {
    pub fn name(&self, inst: &Instance) -> &str {
        self.det.class_name(inst.class_id)
    }
}

/// Rounds a figure for the record (4 decimals are plenty and keep the JSON short).
pub(crate) fn round(v: f32) -> f64 {
    if !v.is_finite() {
        return 0.0;
    }
    ((v as f64) * 1e4).round() / 1e4
}

/// Whether `name` is in `list`; an empty list means every class.
pub(crate) fn listed(list: &[String], name: &str) -> bool {
    list.is_empty() || list.iter().any(|n| n == name)
}
