//! Strategies that count: `crowd` (many objects at once), `small_objects` (several tiny ones)
//! and `interval` (a coverage baseline: a frame once nothing was kept for a while).

use super::config::{CrowdConfig, IntervalConfig, SmallObjectsConfig};
use super::verdict::{listed, FrameView, Verdict};
use std::time::Duration;

pub(crate) struct Crowd {
    cfg: CrowdConfig,
}

impl Crowd {
    pub fn new(cfg: &CrowdConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    pub fn reconfigure(&mut self, cfg: &CrowdConfig) {
        self.cfg = cfg.clone();
    }

    pub fn evaluate(&self, frame: &FrameView) -> Verdict {
        let mut v = Verdict::new("crowd", "crowd", self.cfg.weight);
        v.key = Some("crowd".into());
        let n = frame
            .det
            .instances
            .iter()
            .filter(|i| i.score >= self.cfg.min_score && listed(&self.cfg.classes, frame.name(i)))
            .count() as u32;
        v.fired = n >= self.cfg.min_instances;
        v.score = (n as f32 / (2 * self.cfg.min_instances) as f32).min(1.0);
        v.with("instances", n)
    }
}

pub(crate) struct SmallObjects {
    cfg: SmallObjectsConfig,
}

impl SmallObjects {
    pub fn new(cfg: &SmallObjectsConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    pub fn reconfigure(&mut self, cfg: &SmallObjectsConfig) {
        self.cfg = cfg.clone();
    }

    pub fn evaluate(&self, frame: &FrameView) -> Verdict {
        let mut v = Verdict::new("small_objects", "small_objects", self.cfg.weight);
        v.key = Some("small_objects".into());
        let d = frame.det;
        let max_area = self.cfg.max_area_fraction * d.image_width as f32 * d.image_height as f32;
        let n = d
            .instances
            .iter()
            .filter(|i| {
                i.score >= self.cfg.min_score
                    && i.bbox.area() <= max_area
                    && listed(&self.cfg.classes, frame.name(i))
            })
            .count() as u32;
        v.fired = n >= self.cfg.min_instances;
        v.score = (n as f32 / (2 * self.cfg.min_instances) as f32).min(1.0);
        v.with("instances", n)
    }
}

pub(crate) struct Interval {
    cfg: IntervalConfig,
    last_kept: Option<Duration>,
}

impl Interval {
    pub fn new(cfg: &IntervalConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            last_kept: None,
        }
    }

    pub fn reconfigure(&mut self, cfg: &IntervalConfig) {
        self.cfg = cfg.clone();
    }

    /// Wanted when nothing has been kept for `period_ms` (or ever).
    pub fn evaluate(&self, frame: &FrameView) -> Verdict {
        let mut v = Verdict::new("interval", "interval", self.cfg.weight);
        v.key = Some("interval".into());
        let since = self.last_kept.map(|l| frame.t.saturating_sub(l));
        v.fired = since.is_none_or(|s| s >= Duration::from_millis(self.cfg.period_ms));
        v.score = 1.0;
        match since {
            Some(s) => v.with("since_kept_ms", s.as_millis() as u64),
            None => v.with("since_kept_ms", serde_json::Value::Null),
        }
    }

    /// Any frame kept, for whatever reason, restarts the period.
    pub fn note_kept(&mut self, t: Duration) {
        self.last_kept = Some(self.last_kept.map_or(t, |l| l.max(t)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::testutil::{det, inst};

    fn view(d: &crate::segment::Detections, t_ms: u64) -> FrameView<'_> {
        FrameView {
            t: Duration::from_millis(t_ms),
            det: d,
        }
    }

    #[test]
    fn crowd_counts_the_configured_classes() {
        let c = Crowd::new(&CrowdConfig::default());
        let mut people: Vec<_> = (0..8)
            .map(|k| {
                inst(
                    3,
                    0.7,
                    [k as f32 * 20.0, 50.0, k as f32 * 20.0 + 10.0, 90.0],
                )
            })
            .collect();
        let v = c.evaluate(&view(&det(people.clone()), 0));
        assert!(v.fired);
        assert_eq!(v.detail["instances"], 8);
        assert!((v.score - 0.5).abs() < 1e-6);
        // Eight cars are traffic, not a crowd (default classes: pedestrian, cyclist).
        let cars: Vec<_> = people
            .iter()
            .map(|i| inst(0, 0.9, [i.bbox.x1, i.bbox.y1, i.bbox.x2, i.bbox.y2]))
            .collect();
        assert!(!c.evaluate(&view(&det(cars.clone()), 0)).fired);
        let all = Crowd::new(&CrowdConfig {
            classes: vec![],
            ..Default::default()
        });
        assert!(all.evaluate(&view(&det(cars), 0)).fired);
        people[0].score = 0.1;
        assert!(!c.evaluate(&view(&det(people), 0)).fired);
    }

    #[test]
    fn small_objects_count_tiny_boxes() {
        let s = SmallObjects::new(&SmallObjectsConfig {
            enabled: true,
            ..Default::default()
        });
        // 640x360 picture: 0.1 % is 230 px².
        let tiny: Vec<_> = (0..4)
            .map(|k| {
                inst(
                    0,
                    0.6,
                    [k as f32 * 30.0, 10.0, k as f32 * 30.0 + 12.0, 22.0],
                )
            })
            .collect();
        assert!(s.evaluate(&view(&det(tiny.clone()), 0)).fired);
        assert!(!s.evaluate(&view(&det(tiny[..3].to_vec()), 0)).fired);
        let big: Vec<_> = (0..4)
            .map(|k| {
                inst(
                    0,
                    0.6,
                    [k as f32 * 30.0, 10.0, k as f32 * 30.0 + 25.0, 40.0],
                )
            })
            .collect();
        assert!(!s.evaluate(&view(&det(big), 0)).fired);
    }

    #[test]
    fn interval_wants_a_frame_once_per_period_after_the_last_kept() {
        let mut i = Interval::new(&IntervalConfig {
            period_ms: 10_000,
            ..Default::default()
        });
        let d = det(vec![]);
        assert!(i.evaluate(&view(&d, 0)).fired, "nothing kept yet");
        i.note_kept(Duration::from_millis(500));
        assert!(!i.evaluate(&view(&d, 10_000)).fired);
        assert!(i.evaluate(&view(&d, 10_500)).fired);
        // A frame kept for another reason restarts the period.
        i.note_kept(Duration::from_millis(8_000));
        assert!(!i.evaluate(&view(&d, 17_000)).fired);
        assert!(i.evaluate(&view(&d, 18_000)).fired);
    }
}
