//! The selection stage as the pipeline's [`Select`].

use super::{Decided, Select};
use crate::capture::Timestamp;
use crate::config::{Config, ConfigError};
use crate::segment::Detections;
use crate::select::{Decision, Selector};

/// The selector as configured by `[select]` (errors name `select.<key>`); what
/// `assemble::build_select` on main calls (the `allow` can go once both are merged).
pub fn build(cfg: &Config) -> Result<Selector, ConfigError> {
    Selector::new(&cfg.select).map_err(|e| e.within("select"))
}

impl Select for Selector {
    fn offer(&mut self, seq: u64, captured: Timestamp, detections: &Detections) -> Vec<Decided> {
        // Selection runs on the monotonic clock only: wall time may jump on a board without RTC.
        Selector::offer(self, seq, captured.monotonic, detections)
            .into_iter()
            .map(decided)
            .collect()
    }

    fn finish(&mut self) -> Vec<Decided> {
        Selector::finish(self).into_iter().map(decided).collect()
    }

    fn reconfigure(&mut self, config: &crate::config::Config) -> Result<(), String> {
        Selector::reconfigure(self, &config.select).map_err(|e| e.within("select").to_string())
    }
}

fn decided(d: Decision) -> Decided {
    Decided {
        seq: d.seq,
        keep: d.keep,
        value: d.value,
        reasons: d.reasons,
        record: d.record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::Timings;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    #[test]
    fn the_selector_drives_through_the_pipeline_trait() {
        let mut cfg = crate::config::Config::default();
        cfg.select.window_ms = 0;
        let mut sel: Box<dyn Select> = Box::new(build(&cfg).unwrap());
        let det = Detections {
            image_width: 64,
            image_height: 36,
            instances: vec![],
            embedding: vec![1.0, 0.0],
            class_names: Arc::from(vec!["car".to_string()]),
            timings: Timings::default(),
        };
        let at = |s: u64| Timestamp {
            monotonic: Duration::from_secs(s),
            // Wall time is ignored: a jump backwards changes nothing.
            wall: SystemTime::UNIX_EPOCH,
        };
        let d = sel.offer(0, at(100), &det);
        assert_eq!(d.len(), 1);
        assert!(d[0].keep, "first frame: novel scene and interval");
        assert!(d[0].reasons.contains(&"interval".to_string()));
        let d = sel.offer(1, at(101), &det);
        assert!(!d[0].keep);
        assert!(sel.finish().is_empty());
        let mut bad = cfg.clone();
        bad.select.budget.full_value = 0.0;
        let e = sel.reconfigure(&bad).unwrap_err();
        assert!(e.starts_with("select.budget.full_value"), "{e}");
        sel.reconfigure(&cfg).unwrap();
        assert_eq!(build(&bad).err().unwrap().key, "select.budget.full_value");
    }
}
