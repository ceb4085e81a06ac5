//! The store as the pipeline's [`Sink`].

use super::{KeptSample, Sink, SinkError, SinkReport};
use crate::segment::ModelInfo;
use crate::store::{
    ModelRef, NewSample, RefinedMask, Store, StoreConfig, StoreError, StoredInstance,
};

pub struct StoreSink {
    store: Store,
    model_name: String,
    model_sha256: String,
}

impl StoreSink {
    pub fn new(store: Store, model: &ModelInfo) -> Self {
        Self {
            store,
            model_name: model.name.clone(),
            model_sha256: model.sha256.clone(),
        }
    }

    pub fn into_store(self) -> Store {
        self.store
    }
}

impl Sink for StoreSink {
    fn write(&mut self, s: &KeptSample) -> Result<SinkReport, SinkError> {
        let det = &s.detections;
        let mut refined: Vec<Option<RefinedMask>> = vec![None; det.instances.len()];
        for r in &s.refined {
            if let Some(slot) = refined.get_mut(r.index) {
                *slot = Some(RefinedMask {
                    mask: &r.mask,
                    predicted_iou: r.predicted_iou,
                });
            }
        }
        let instances: Vec<StoredInstance> = det
            .instances
            .iter()
            .zip(refined)
            .map(|(i, refined)| StoredInstance {
                class_id: i.class_id,
                class_name: det.class_name(i.class_id),
                score: i.score,
                bbox: i.bbox,
                mask: &i.mask,
                refined,
            })
            .collect();
        let before = self.store.counters().evicted;
        let sample = NewSample {
            seq: s.frame.seq,
            captured: s.frame.captured,
            origin: &s.frame.origin,
            image: &s.frame.image,
            instances: &instances,
            value: s.decision.value,
            reasons: &s.decision.reasons,
            selection: &s.decision.record,
            model: ModelRef {
                name: &self.model_name,
                sha256: &self.model_sha256,
            },
        };
        match self.store.insert(&sample) {
            Ok(_) => Ok(SinkReport {
                evicted: self.store.counters().evicted - before,
                stored_bytes: self.store.quota_used(),
            }),
            Err(e @ StoreError::DiskFull { .. }) => Err(SinkError(format!(
                "{e} (sample {} dropped; capture goes on)",
                s.frame.seq
            ))),
            Err(e) => Err(SinkError(e.to_string())),
        }
    }

    fn reconfigure(&mut self, cfg: &crate::config::Config) -> Result<(), String> {
        reconfigure_store(&mut self.store, &cfg.store)
    }
}

fn reconfigure_store(store: &mut Store, cfg: &StoreConfig) -> Result<(), String> {
    store.reconfigure(cfg).map_err(|e| e.to_string())
}
