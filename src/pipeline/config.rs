//! `[pipeline]`: queue sizes and shutdown bounds.

use crate::config::{check_range, ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Frames waiting for the model. A waiting frame is a stale frame: when the model is busy the
    /// oldest waiting one is dropped. Default 2.
    pub frame_queue: usize,
    /// Kept frames waiting for the store; when full, selection waits (kept frames are never
    /// dropped). Default 16.
    pub kept_queue: usize,
    /// On SIGTERM, how long frames in flight may take to drain into the store before edgesift
    /// exits anyway, in milliseconds. Keep it below systemd's `TimeoutStopSec`. Default 15000.
    pub drain_timeout_ms: u64,
    /// On a terminal, how often the status line refreshes; otherwise how often a status line is
    /// logged. Milliseconds. Default 1000 on a terminal; logs use 60x this.
    pub status_interval_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            frame_queue: 2,
            kept_queue: 16,
            drain_timeout_ms: 15_000,
            status_interval_ms: 1_000,
        }
    }
}

impl PipelineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("frame_queue", self.frame_queue, 1, 64)?;
        check_range("kept_queue", self.kept_queue, 1, 1024)?;
        check_range("drain_timeout_ms", self.drain_timeout_ms, 100, 600_000)?;
        check_range(
            "status_interval_ms",
            self.status_interval_ms,
            100,
            3_600_000,
        )?;
        Ok(())
    }

    pub fn queues(&self) -> super::Queues {
        super::Queues {
            frames: self.frame_queue,
            segmented: 4,
            kept: self.kept_queue,
        }
    }
}
