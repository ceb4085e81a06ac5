//! `[refine]`: sharper masks for the frames the selector keeps, by prompting MobileSAM with each
//! detected box. The encoder costs seconds on a small CPU, so this runs on kept frames only,
//! after selection (see `pipeline::RefineSink`), never on every frame.

use super::{MobileSam, Prompt};
use crate::config::{check_range, ConfigError};
use crate::geometry::Mask;
use crate::segment::{Detections, ModelConfig, SegmentError};
use candle_core::Device;
use image::RgbImage;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default MobileSAM weights file name (searched like `model.path`).
pub const DEFAULT_REFINE_MODEL: &str = "mobile_sam.safetensors";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RefineConfig {
    /// Refine the masks of kept frames with MobileSAM. Default false.
    pub enabled: bool,
    /// MobileSAM weights (`scripts/export_mobilesam.py`); relative paths are searched like
    /// `model.path` (beside the config, `models/`, `$EDGESIFT_MODEL_DIR`, the system model
    /// directory). Default `mobile_sam.safetensors`.
    pub model: PathBuf,
    /// Instances refined per frame at most, highest score first (each costs one decoder pass,
    /// tens of milliseconds). Default 32.
    pub max_instances: usize,
    /// Boxes narrower or lower than this many pixels keep their detector mask. Default 8.
    pub min_box_px: u32,
}

impl Default for RefineConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            model: PathBuf::from(DEFAULT_REFINE_MODEL),
            max_instances: 32,
            min_box_px: 8,
        }
    }
}

impl RefineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("max_instances", self.max_instances, 1, 1000)?;
        check_range("min_box_px", self.min_box_px, 0, 4096)?;
        if self.model.as_os_str().is_empty() {
            return Err(ConfigError::new("model", "must name a file"));
        }
        Ok(())
    }

    /// Finds the weights file like `model.path`; the error names `model`.
    pub fn resolve_model(&self, config_dir: Option<&Path>) -> Result<PathBuf, ConfigError> {
        let lookup = ModelConfig {
            path: self.model.clone(),
            ..ModelConfig::default()
        };
        lookup
            .resolve_path(config_dir)
            .map_err(|e| ConfigError::new("model", e.problem))
    }
}

/// One refined instance.
#[derive(Debug, Clone)]
pub struct RefinedInstance {
    /// Index into `Detections::instances`.
    pub index: usize,
    pub mask: Mask,
    /// MobileSAM's estimate of the mask's IoU.
    pub predicted_iou: f32,
}

/// What refining one frame produced.
#[derive(Debug, Clone, Default)]
pub struct Refined {
    pub instances: Vec<RefinedInstance>,
    pub encoder: Duration,
    pub decoder: Duration,
}

impl Refined {
    /// How the masks were made, for the sample's selection record (the masks themselves are
    /// stored by the store, per instance).
    pub fn summary_json(&self, model: &super::MobileSamInfo) -> serde_json::Value {
        serde_json::json!({
            "model": { "name": model.name, "sha256": model.sha256 },
            "encoder_ms": self.encoder.as_secs_f64() * 1e3,
            "decoder_ms": self.decoder.as_secs_f64() * 1e3,
            "instances": self.instances.len(),
        })
    }
}

/// MobileSAM with the `[refine]` settings.
#[derive(Debug)]
pub struct Refiner {
    sam: MobileSam,
    cfg: RefineConfig,
}

impl Refiner {
    pub fn new(sam: MobileSam, cfg: RefineConfig) -> Self {
        Self { sam, cfg }
    }

    /// Loads the model named by `cfg` (on the CPU).
    pub fn load(cfg: &RefineConfig, path: &Path) -> Result<Self, SegmentError> {
        Ok(Self::new(MobileSam::load(path, &Device::Cpu)?, cfg.clone()))
    }

    pub fn model(&self) -> &MobileSam {
        &self.sam
    }

    /// Single-mask predictions for the boxes of the highest-scoring instances.
    pub fn refine(&self, image: &RgbImage, det: &Detections) -> Result<Refined, SegmentError> {
        let mut order: Vec<usize> = (0..det.instances.len())
            .filter(|&i| {
                let b = det.instances[i].bbox;
                let min = self.cfg.min_box_px as f32;
                b.width() >= min && b.height() >= min
            })
            .collect();
        order.sort_by(|&a, &b| det.instances[b].score.total_cmp(&det.instances[a].score));
        order.truncate(self.cfg.max_instances);
        if order.is_empty() {
            return Ok(Refined::default());
        }
        let t0 = Instant::now();
        let emb = self.sam.embed(image)?;
        let t1 = Instant::now();
        let prompts: Vec<Prompt> = order
            .iter()
            .map(|&i| Prompt::from_box(det.instances[i].bbox))
            .collect();
        let preds = self.sam.predict(&emb, &prompts, false)?;
        let t2 = Instant::now();
        let instances = order
            .into_iter()
            .zip(preds)
            .filter_map(|(index, mut p)| {
                let best = p.pop()?;
                Some(RefinedInstance {
                    index,
                    mask: best.mask,
                    predicted_iou: best.iou,
                })
            })
            .collect();
        Ok(Refined {
            instances,
            encoder: t1 - t0,
            decoder: t2 - t1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        RefineConfig::default().validate().unwrap();
        let bad = RefineConfig {
            max_instances: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "max_instances");
        let bad = RefineConfig {
            model: PathBuf::new(),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "model");
        let missing = RefineConfig {
            model: PathBuf::from("/nonexistent/mobile_sam.safetensors"),
            ..Default::default()
        };
        let e = missing.resolve_model(None).unwrap_err();
        assert_eq!(e.key, "model");
        assert!(e.problem.contains("not found"), "{}", e.problem);
    }

    #[test]
    fn parses_from_toml_and_refuses_unknown_keys() {
        let c: RefineConfig =
            toml::from_str("enabled = true\nmodel = \"m.safetensors\"\nmax_instances = 4").unwrap();
        assert!(c.enabled && c.max_instances == 4 && c.min_box_px == 8);
        assert!(toml::from_str::<RefineConfig>("enable = true").is_err());
    }
}
