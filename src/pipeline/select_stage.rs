//! The selection stage as the pipeline drives it.
//!
//! Placeholder until `src/select/` lands: keeps one frame every second of capture time.

use super::{Decided, Select};
use crate::capture::Timestamp;
use crate::config::{Config, ConfigError};
use crate::segment::Detections;
use std::time::Duration;

pub struct IntervalSelect {
    every: Duration,
    last: Option<Duration>,
}

pub fn build(_cfg: &Config) -> Result<IntervalSelect, ConfigError> {
    Ok(IntervalSelect {
        every: Duration::from_secs(1),
        last: None,
    })
}

impl Select for IntervalSelect {
    fn offer(&mut self, seq: u64, captured: Timestamp, _d: &Detections) -> Vec<Decided> {
        let keep = self
            .last
            .is_none_or(|l| captured.monotonic.saturating_sub(l) >= self.every);
        if keep {
            self.last = Some(captured.monotonic);
        }
        vec![Decided {
            seq,
            keep,
            value: 0.0,
            reasons: if keep {
                vec!["interval".into()]
            } else {
                vec![]
            },
            record: serde_json::json!({}),
        }]
    }

    fn finish(&mut self) -> Vec<Decided> {
        Vec::new()
    }
}
