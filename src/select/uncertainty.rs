//! `uncertain`: detections the model is unsure about, the frames active learning asks for.
//!
//! A detection counts when its score lies in `[min_score, max_score]` and its uncertainty, by
//! the configured measure over its class-score vector, reaches `threshold`. The frame is wanted
//! when at least `min_instances` detections count; it scores their mean uncertainty.

use super::config::{UncertaintyConfig, UncertaintyMeasure};
use super::verdict::{round, FrameView, Verdict};
use crate::segment::Instance;

pub(crate) struct Uncertainty {
    cfg: UncertaintyConfig,
}

impl Uncertainty {
    pub fn new(cfg: &UncertaintyConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    pub fn reconfigure(&mut self, cfg: &UncertaintyConfig) {
        self.cfg = cfg.clone();
    }

    pub fn evaluate(&self, frame: &FrameView) -> Verdict {
        let mut v = Verdict::new("uncertainty", "uncertain", self.cfg.weight);
        v.key = Some("uncertain".into());
        let (mut n, mut sum, mut max) = (0u32, 0.0f32, 0.0f32);
        for i in &frame.det.instances {
            if i.score < self.cfg.min_score || i.score > self.cfg.max_score {
                continue;
            }
            let u = measure(self.cfg.measure, i);
            max = max.max(u);
            if u >= self.cfg.threshold {
                n += 1;
                sum += u;
            }
        }
        v.fired = n >= self.cfg.min_instances;
        v.score = if n > 0 { sum / n as f32 } else { max };
        v.with("uncertain_instances", n)
            .with("max_uncertainty", round(max))
    }
}

/// The uncertainty of one detection, 0 (certain) ..= 1.
pub(crate) fn measure(m: UncertaintyMeasure, inst: &Instance) -> f32 {
    let scores: &[f32] = if inst.class_scores.is_empty() {
        std::slice::from_ref(&inst.score)
    } else {
        &inst.class_scores
    };
    let (mut p1, mut p2) = (0.0f32, 0.0f32);
    for &p in scores {
        let p = if p.is_finite() {
            p.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if p > p1 {
            p2 = p1;
            p1 = p;
        } else if p > p2 {
            p2 = p;
        }
    }
    match m {
        UncertaintyMeasure::LeastConfidence => 1.0 - p1,
        UncertaintyMeasure::Margin => 1.0 - (p1 - p2),
        UncertaintyMeasure::Entropy => {
            let total: f32 = scores
                .iter()
                .filter(|p| p.is_finite())
                .map(|p| p.max(0.0))
                .sum();
            if scores.len() < 2 || total <= 0.0 {
                return 1.0 - p1;
            }
            let h: f32 = scores
                .iter()
                .filter(|p| p.is_finite() && **p > 0.0)
                .map(|&p| {
                    let q = p / total;
                    -q * q.ln()
                })
                .sum();
            (h / (scores.len() as f32).ln()).clamp(0.0, 1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::testutil::{det, inst};
    use std::time::Duration;

    fn with_scores(class: u32, score: f32, class_scores: Vec<f32>) -> Instance {
        let mut i = inst(class, score, [0.0, 0.0, 10.0, 10.0]);
        i.class_scores = class_scores;
        i
    }

    #[test]
    fn measures() {
        let tied = with_scores(0, 0.5, vec![0.5, 0.48, 0.0, 0.0]);
        let sure = with_scores(0, 0.95, vec![0.95, 0.02, 0.0, 0.0]);
        use UncertaintyMeasure::*;
        assert!((measure(LeastConfidence, &tied) - 0.5).abs() < 1e-6);
        assert!((measure(Margin, &tied) - 0.98).abs() < 1e-6);
        assert!((measure(Margin, &sure) - 0.07).abs() < 1e-6);
        assert!(measure(Entropy, &tied) > 0.45);
        assert!(measure(Entropy, &sure) < 0.15);
        let uniform = with_scores(0, 0.3, vec![0.3; 4]);
        assert!((measure(Entropy, &uniform) - 1.0).abs() < 1e-5);
        // No class-score vector: the detection score stands in.
        let bare = with_scores(0, 0.4, vec![]);
        assert!((measure(LeastConfidence, &bare) - 0.6).abs() < 1e-6);
    }

    #[test]
    fn fires_on_enough_detections_in_the_band() {
        let u = Uncertainty::new(&UncertaintyConfig::default());
        let eval = |d: &crate::segment::Detections| {
            u.evaluate(&FrameView {
                t: Duration::ZERO,
                det: d,
            })
        };
        let one = det(vec![with_scores(0, 0.4, vec![0.4, 0.35, 0.0])]);
        assert!(!eval(&one).fired, "default needs two");
        let two = det(vec![
            with_scores(0, 0.4, vec![0.4, 0.35, 0.0]),
            with_scores(1, 0.5, vec![0.2, 0.5, 0.0]),
            // Outside the band: ignored however tied.
            with_scores(2, 0.9, vec![0.0, 0.88, 0.9]),
        ]);
        let v = eval(&two);
        assert!(v.fired);
        assert_eq!(v.detail["uncertain_instances"], 2);
        let confident = det(vec![with_scores(0, 0.95, vec![0.95, 0.01, 0.0]); 5]);
        assert!(!eval(&confident).fired);
    }
}
