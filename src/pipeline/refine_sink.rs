//! `[refine]` in the pipeline: a [`Sink`] in front of the store that refines the masks of each
//! kept frame with MobileSAM (one encoder pass, one decoder pass per detected box) before the
//! sample is written. Only kept frames pay for it.
//!
//! The refined masks travel in [`KeptSample::refined`]; the store writes them as each instance's
//! `mask_refined` and a refined instance-id PNG (see `store`). The selection record gets a short
//! `refine` entry (model, timings, instances refined) so that the sidecar says how they were
//! made. A failed refinement is logged and the sample is stored with the detector's masks alone.

use super::{KeptSample, Sink, SinkError, SinkReport};
use crate::capture::Frame;
use crate::segment::mobilesam::Refiner;

pub struct RefineSink {
    inner: Box<dyn Sink>,
    refiner: Refiner,
}

impl RefineSink {
    pub fn new(inner: Box<dyn Sink>, refiner: Refiner) -> Self {
        Self { inner, refiner }
    }
}

impl Sink for RefineSink {
    fn write(&mut self, s: &KeptSample) -> Result<SinkReport, SinkError> {
        let refined = match self.refiner.refine(&s.frame.image, &s.detections) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(seq = s.frame.seq, error = %e, "refine failed; storing detector masks only");
                return self.inner.write(s);
            }
        };
        tracing::debug!(
            seq = s.frame.seq,
            instances = refined.instances.len(),
            encoder_ms = refined.encoder.as_millis() as u64,
            decoder_ms = refined.decoder.as_millis() as u64,
            "refined"
        );
        let mut decision = s.decision.clone();
        let doc = refined.summary_json(self.refiner.model().info());
        match &mut decision.record {
            serde_json::Value::Object(map) => {
                map.insert("refine".into(), doc);
            }
            other => {
                let previous = std::mem::take(other);
                *other = serde_json::json!({ "strategies": previous, "refine": doc });
            }
        }
        // The store reads the frame's picture and metadata, not its ground truth.
        let sample = KeptSample {
            frame: Frame {
                seq: s.frame.seq,
                captured: s.frame.captured,
                origin: s.frame.origin.clone(),
                image: s.frame.image.clone(),
                truth: None,
            },
            detections: s.detections.clone(),
            decision,
            refined: refined.instances,
        };
        self.inner.write(&sample)
    }

    fn reconfigure(&mut self, config: &crate::config::Config) -> Result<(), String> {
        self.inner.reconfigure(config)
    }
}
