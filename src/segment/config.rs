//! `[model]`: which model runs, where, and its thresholds.

use super::{ModelOptions, PostOptions, SegmentError, TfliteOptions};
use crate::config::{check_range, ConfigError};
use candle_core::{DType, Device};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// File name of the model that ships with edgesift (trained on the synthetic road scenes).
pub const DEFAULT_MODEL: &str = "edgesift-road-n-seg.safetensors";

/// Where packages install models.
pub const SYSTEM_MODEL_DIR: &str = "/usr/share/edgesift/models";

/// `backend = "yolo"`: a YOLOv8-seg detector with its own classes.
pub const BACKEND_YOLO: &str = "yolo";
/// `backend = "tflite"`: a YOLOv8-seg `.tflite` file on LiteRT (libLiteRt.so loaded at run time).
pub const BACKEND_TFLITE: &str = "tflite";
/// `backend = "mobilesam-everything"`: MobileSAM's automatic mask generation, class-agnostic.
pub const BACKEND_EVERYTHING: &str = "mobilesam-everything";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// `yolo` (alias `candle`): a YOLOv8-seg detector on edgesift's own candle network, CPU or
    /// CUDA. `tflite`: the same kind of model as a `.tflite` file (scripts/export_tflite.py) on
    /// LiteRT, CPU; loads `libLiteRt.so` at run time; `dtype`, `imgsz` and `square` do not
    /// apply (the model file fixes its input). `mobilesam-everything`: MobileSAM's automatic mask
    /// generation (a grid of point prompts, see `[model.everything]`), class-agnostic: every
    /// instance is labelled `object` (score = MobileSAM's predicted IoU), so selection works
    /// without a trained detector. It needs MobileSAM weights in `path`
    /// (scripts/export_mobilesam.py, or its `edgesift quantize --dtype int8` copy); of the
    /// settings below it uses `device`, `iou` (NMS between the masks' boxes) and `max_det`.
    /// Default: `yolo`.
    pub backend: String,
    /// Weights file (safetensors from scripts/export_ultralytics.py). A relative path is looked up
    /// next to the config file, then in `models/` beside the config directory, then in the
    /// working directory and its `models/`, then in `$EDGESIFT_MODEL_DIR` and
    /// `/usr/share/edgesift/models`.
    /// Default: `edgesift-road-n-seg.safetensors` (the bundled road model).
    pub path: PathBuf,
    /// `auto` (CUDA when this build has it and a GPU answers, else CPU), `cpu`, `cuda`, `cuda:N`.
    /// Default: `auto`.
    pub device: String,
    /// Compute dtype: `f32`, `f16` or `bf16`. Default: `f32` (half precision pays on GPUs).
    pub dtype: String,
    /// Network input size in pixels (multiple of 32). Default: the size recorded in the model file (`imgsz`).
    pub imgsz: Option<u32>,
    /// Pad every frame to `imgsz x imgsz` instead of the next multiple of 32. Default: false.
    pub square: bool,
    /// Minimum class score of a detection, 0..1. Default: 0.25.
    pub conf: f32,
    /// NMS IoU threshold, 0..1. Default: 0.7.
    pub iou: f32,
    /// Most instances per frame. Default: 300.
    pub max_det: usize,
    /// Threads of the tflite backend (LiteRT's CPU accelerator), 0..=64; 0 leaves LiteRT's
    /// default (one). The candle backend uses rayon's pool (`RAYON_NUM_THREADS`). Default: 0.
    pub threads: usize,
    /// `[model.everything]`: the `mobilesam-everything` backend's settings.
    pub everything: EverythingConfig,
}

/// `[model.everything]`: MobileSAM's automatic mask generation (upstream's
/// `SamAutomaticMaskGenerator` names).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EverythingConfig {
    /// The grid has `points_per_side^2` point prompts, each one decoder pass (tens of ms on a
    /// small CPU) after one encoder pass per frame (seconds). Default: 16.
    pub points_per_side: usize,
    /// Masks whose predicted IoU is not above this are dropped, 0..1 (0 keeps all). Default: 0.88.
    pub pred_iou_thresh: f32,
    /// Masks whose stability score (IoU of the mask thresholded at logit -1 and +1) is below
    /// this are dropped, 0..1 (0 keeps all). Default: 0.95.
    pub stability_score_thresh: f32,
}

impl Default for EverythingConfig {
    fn default() -> Self {
        Self {
            points_per_side: 16,
            pred_iou_thresh: 0.88,
            stability_score_thresh: 0.95,
        }
    }
}

impl EverythingConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("points_per_side", self.points_per_side, 1, 64)?;
        check_range("pred_iou_thresh", self.pred_iou_thresh, 0.0, 1.0)?;
        check_range(
            "stability_score_thresh",
            self.stability_score_thresh,
            0.0,
            1.0,
        )
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            backend: BACKEND_YOLO.into(),
            path: PathBuf::from(DEFAULT_MODEL),
            device: "auto".into(),
            dtype: "f32".into(),
            imgsz: None,
            square: false,
            conf: 0.25,
            iou: 0.7,
            max_det: 300,
            everything: EverythingConfig::default(),
            threads: 0,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let backend = self.parse_backend()?;
        self.everything
            .validate()
            .map_err(|e| e.within("everything"))?;
        check_range("conf", self.conf, 0.0, 1.0)?;
        check_range("iou", self.iou, 0.0, 1.0)?;
        check_range("max_det", self.max_det, 1, 10_000)?;
        check_range("threads", self.threads, 0, 64)?;
        if let Some(s) = self.imgsz {
            if s == 0 || s % 32 != 0 || s > 4096 {
                return Err(ConfigError::new(
                    "imgsz",
                    format!("must be a multiple of 32 between 32 and 4096, got {s}"),
                ));
            }
        }
        self.parse_dtype()?;
        let device = self.parse_device()?;
        if backend == Backend::Tflite && matches!(device, DeviceChoice::Cuda(_)) {
            return Err(ConfigError::new(
                "device",
                format!(
                    "`{}`: the tflite backend runs on the CPU (use cpu or auto)",
                    self.device
                ),
            ));
        }
        if self.path.as_os_str().is_empty() {
            return Err(ConfigError::new("path", "must name a model file"));
        }
        Ok(())
    }

    pub fn parse_backend(&self) -> Result<Backend, ConfigError> {
        match self.backend.as_str() {
            BACKEND_YOLO | "candle" => Ok(Backend::Yolo),
            BACKEND_TFLITE => Ok(Backend::Tflite),
            BACKEND_EVERYTHING => Ok(Backend::MobilesamEverything),
            other => Err(ConfigError::new(
                "backend",
                format!(
                    "`{other}` is not one of {BACKEND_YOLO} (or candle), {BACKEND_TFLITE}, \
                     {BACKEND_EVERYTHING}"
                ),
            )),
        }
    }

    /// The options of the tflite backend (thresholds only: the model fixes its input).
    pub fn tflite_options(&self) -> TfliteOptions {
        TfliteOptions {
            threads: self.threads,
            post: PostOptions {
                conf: self.conf,
                iou: self.iou,
                max_det: self.max_det,
                ..Default::default()
            },
        }
    }

    pub fn parse_dtype(&self) -> Result<DType, ConfigError> {
        match self.dtype.as_str() {
            "f32" => Ok(DType::F32),
            "f16" => Ok(DType::F16),
            "bf16" => Ok(DType::BF16),
            other => Err(ConfigError::new(
                "dtype",
                format!("`{other}` is not one of f32, f16, bf16"),
            )),
        }
    }

    /// The device to run on. `auto` falls back to the CPU (with a log line) when no GPU is usable.
    pub fn parse_device(&self) -> Result<DeviceChoice, ConfigError> {
        let s = self.device.as_str();
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceChoice::Cuda(n)),
                _ => Err(ConfigError::new(
                    "device",
                    format!("`{s}` is not one of auto, cpu, cuda, cuda:N"),
                )),
            },
        }
    }

    /// Finds the weights file: absolute paths as they are, relative ones along the search path.
    pub fn resolve_path(&self, config_dir: Option<&Path>) -> Result<PathBuf, ConfigError> {
        let candidates = model_search_path(&self.path, config_dir);
        candidates
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| {
                let tried: Vec<String> =
                    candidates.iter().map(|p| p.display().to_string()).collect();
                ConfigError::new(
                    "path",
                    format!("model file not found (looked in: {})", tried.join(", ")),
                )
            })
    }

    /// The options the segmenter runs with, on an already chosen device.
    pub fn options(&self, device: Device) -> Result<ModelOptions, ConfigError> {
        Ok(ModelOptions {
            device,
            dtype: self.parse_dtype()?,
            imgsz: self.imgsz.map(|s| [s, s]),
            minimal_padding: !self.square,
            post: PostOptions {
                conf: self.conf,
                iou: self.iou,
                max_det: self.max_det,
                ..Default::default()
            },
        })
    }
}

/// The `backend` setting, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// YOLOv8-seg on candle.
    Yolo,
    /// YOLOv8-seg on LiteRT.
    Tflite,
    /// MobileSAM's everything mode on candle.
    MobilesamEverything,
}

/// The `device` setting, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

fn model_search_path(path: &Path, config_dir: Option<&Path>) -> Vec<PathBuf> {
    if path.is_absolute() {
        return vec![path.to_owned()];
    }
    let mut out = Vec::new();
    if let Some(dir) = config_dir {
        out.push(dir.join(path));
        if let Some(parent) = dir.parent() {
            out.push(parent.join("models").join(path));
        }
    }
    out.push(path.to_owned());
    // A checkout of this repository run from its root, with a config from config/examples/.
    out.push(Path::new("models").join(path));
    if let Some(dir) = std::env::var_os("EDGESIFT_MODEL_DIR") {
        out.push(PathBuf::from(dir).join(path));
    }
    out.push(Path::new(SYSTEM_MODEL_DIR).join(path));
    out
}

impl DeviceChoice {
    /// The candle device for this choice. `auto` takes CUDA device 0 when this build has CUDA
    /// and a GPU answers, and the CPU otherwise (saying why in the log); an explicit `cuda`
    /// that cannot be used is an error rather than a silent fallback.
    pub fn open(self) -> Result<Device, SegmentError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => {
                if !candle_core::utils::cuda_is_available() {
                    tracing::info!("model device: cpu (this build has no CUDA support)");
                    return Ok(Device::Cpu);
                }
                match Device::new_cuda(0) {
                    Ok(d) => {
                        tracing::info!("model device: cuda:0");
                        Ok(d)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "no usable GPU; the model runs on the CPU");
                        Ok(Device::Cpu)
                    }
                }
            }
            DeviceChoice::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(SegmentError::BadInput(format!(
                        "model.device = cuda:{n}, but this edgesift build has no CUDA support \
                         (build with --features cuda, or set device = \"cpu\" or \"auto\")"
                    )));
                }
                Device::new_cuda(n).map_err(|e| {
                    SegmentError::BadInput(format!("model.device = cuda:{n} is not usable: {e}"))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_model_paths_are_looked_up_beside_the_config_then_in_models() {
        let p = Path::new("m.safetensors");
        let found = model_search_path(p, Some(Path::new("config/examples")));
        let expect_start = [
            "config/examples/m.safetensors",
            "config/models/m.safetensors",
            "m.safetensors",
            "models/m.safetensors",
        ];
        for (got, want) in found.iter().zip(expect_start) {
            assert_eq!(got, Path::new(want));
        }
        assert_eq!(
            found.last().unwrap(),
            &Path::new(SYSTEM_MODEL_DIR).join("m.safetensors")
        );
        let abs = Path::new("/opt/m.safetensors");
        assert_eq!(model_search_path(abs, None), vec![abs.to_owned()]);
    }

    #[test]
    fn defaults_are_valid() {
        ModelConfig::default().validate().unwrap();
        assert_eq!(
            ModelConfig::default().parse_device().unwrap(),
            DeviceChoice::Auto
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let c = ModelConfig {
            conf: 1.5,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "conf");
        let c = ModelConfig {
            imgsz: Some(100),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "imgsz");
        let c = ModelConfig {
            device: "gpu".into(),
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "device");
        assert!(e.problem.contains("`gpu`"));
        let c = ModelConfig {
            device: "cuda:1".into(),
            ..Default::default()
        };
        assert_eq!(c.parse_device().unwrap(), DeviceChoice::Cuda(1));
        let c = ModelConfig {
            backend: "sam".into(),
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "backend");
        assert!(e.problem.contains("mobilesam-everything"), "{}", e.problem);
        let c = ModelConfig {
            everything: EverythingConfig {
                points_per_side: 0,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "everything.points_per_side");
        let c: ModelConfig = toml::from_str(
            "backend = \"mobilesam-everything\"\n[everything]\npoints_per_side = 4\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.everything.points_per_side, 4);
        assert!(toml::from_str::<ModelConfig>("[everything]\npoints = 4\n").is_err());
        assert!(e.problem.contains("`sam`"), "{}", e.problem);
        let c = ModelConfig {
            backend: "tflite".into(),
            device: "cuda:0".into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "device");
        let c = ModelConfig {
            backend: "tflite".into(),
            ..Default::default()
        };
        assert_eq!(c.parse_backend().unwrap(), Backend::Tflite);
        let c = ModelConfig {
            threads: 65,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "threads");
    }

    #[test]
    fn relative_paths_are_found_beside_the_config_and_in_models() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_dir = dir.path().join("config");
        std::fs::create_dir_all(&cfg_dir).unwrap();
        std::fs::create_dir_all(dir.path().join("models")).unwrap();
        std::fs::write(dir.path().join("models/m.safetensors"), b"x").unwrap();
        let c = ModelConfig {
            path: "m.safetensors".into(),
            ..Default::default()
        };
        assert_eq!(
            c.resolve_path(Some(&cfg_dir)).unwrap(),
            dir.path().join("models/m.safetensors")
        );
        let missing = ModelConfig {
            path: "nope.safetensors".into(),
            ..Default::default()
        };
        let e = missing.resolve_path(Some(&cfg_dir)).unwrap_err();
        assert_eq!(e.key, "path");
        assert!(e.problem.contains("nope.safetensors"));
    }
}
