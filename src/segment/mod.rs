//! Instance segmentation: a picture in, every object with its class, box and pixel mask out.
//!
//! - [`YoloSegmenter`]: YOLOv8-seg on candle, loaded from an ultralytics checkpoint exported to
//!   safetensors (`scripts/export_ultralytics.py`), with ultralytics' letterbox and
//!   post-processing. Its answers match ultralytics' own (see `tests/parity.rs`).
//! - [`Detections`] / [`Instance`]: what every segmenter returns, in original image pixels.
//! - [`Segmenter`]: the trait the pipeline drives, so that backends can be swapped.
//!
//! The network itself ([`YoloV8Seg`]) is usable alone for parity checks: it maps a letterboxed
//! `[1, 3, H, W]` tensor to ultralytics' ONNX-layout outputs.
//!
//! Architecture invariant: no file or network I/O after a model is loaded.

mod config;
mod error;
mod kernels;
mod layers;
pub mod mobilesam;
mod post;
mod pre;
mod quantize;
mod tflite;
mod weights;
mod yolov8_seg;

pub use config::{
    Backend, DeviceChoice, EverythingConfig, ModelConfig, BACKEND_EVERYTHING, BACKEND_TFLITE,
    BACKEND_YOLO, DEFAULT_MODEL, SYSTEM_MODEL_DIR,
};
pub use error::SegmentError;
pub use kernels::profile::{set_layer_profiling, take_layer_times, LayerTime};
pub use post::{postprocess, PostOptions, RawView};
pub use pre::Letterbox;
pub use quantize::{quantize, QuantizeSummary, WeightDtype};
pub use tflite::{TfliteOptions, TfliteSegmenter};
pub use weights::Weights;
pub use yolov8_seg::{Architecture, RawOutput, YoloV8Seg, STRIDES};

use crate::geometry::{BBox, Mask};
use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One object found in a picture.
#[derive(Debug, Clone)]
pub struct Instance {
    pub class_id: u32,
    /// Score of `class_id` (the highest class score).
    pub score: f32,
    /// Box in original image pixels.
    pub bbox: BBox,
    /// Pixel mask at the original resolution, cropped to the box.
    pub mask: Mask,
    /// Sigmoid score of every class, for uncertainty measures (margin, entropy).
    pub class_scores: Vec<f32>,
}

/// Everything a segmenter says about one picture.
#[derive(Debug, Clone)]
pub struct Detections {
    pub image_width: u32,
    pub image_height: u32,
    pub instances: Vec<Instance>,
    /// A description of the whole scene (pooled neck features), for novelty and diversity.
    pub embedding: Vec<f32>,
    pub class_names: Arc<[String]>,
    pub timings: Timings,
}

impl Detections {
    pub fn class_name(&self, class_id: u32) -> &str {
        self.class_names
            .get(class_id as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }
}

/// Where the time of one frame went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

/// What a loaded model is, for logs and for the metadata of every kept sample.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// File stem, e.g. `edgesift-road-n-seg`.
    pub name: String,
    pub path: PathBuf,
    /// sha256 of the weights file, hex.
    pub sha256: String,
    pub class_names: Arc<[String]>,
    /// Input size recorded in the model file (`imgsz` metadata; usually its training size),
    /// `[height, width]`.
    pub trained_imgsz: Option<[u32; 2]>,
    pub architecture: Architecture,
}

/// A segmentation backend as the pipeline sees it.
pub trait Segmenter: Send {
    fn info(&self) -> &ModelInfo;
    fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError>;
}

/// How to run a model.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    pub device: Device,
    /// Compute dtype (f32 unless asked otherwise; f16/bf16 mostly pay off on a GPU).
    pub dtype: DType,
    /// Network input size `[height, width]`; `None` uses the model's `imgsz`, else 640.
    pub imgsz: Option<[u32; 2]>,
    /// Pad only to the next stride multiple (ultralytics' rect inference) rather than to `imgsz`.
    pub minimal_padding: bool,
    pub post: PostOptions,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DType::F32,
            imgsz: None,
            minimal_padding: true,
            post: PostOptions::default(),
        }
    }
}

/// YOLOv8-seg with its pre- and post-processing.
pub struct YoloSegmenter {
    net: YoloV8Seg,
    info: ModelInfo,
    opts: ModelOptions,
    imgsz: [u32; 2],
}

impl YoloSegmenter {
    /// Loads a safetensors checkpoint; fails with the offending key on any mismatch.
    pub fn load(path: &Path, opts: ModelOptions) -> Result<Self, SegmentError> {
        let weights = Weights::open(path)?;
        let net = YoloV8Seg::load(&weights, &opts.device, opts.dtype)?;
        let arch = net.architecture().clone();
        let meta = ModelMetadata::parse(weights.metadata(), arch.num_classes)?;
        let imgsz = opts.imgsz.or(meta.imgsz).unwrap_or([640, 640]);
        if imgsz.iter().any(|&v| v == 0 || v % 32 != 0) {
            return Err(SegmentError::BadInput(format!(
                "input size {imgsz:?} must be positive multiples of 32"
            )));
        }
        let info = ModelInfo {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_owned(),
            sha256: sha256_file(path)?,
            class_names: meta.names.into(),
            trained_imgsz: meta.imgsz,
            architecture: arch,
        };
        Ok(Self {
            net,
            info,
            opts,
            imgsz,
        })
    }

    pub fn network(&self) -> &YoloV8Seg {
        &self.net
    }

    /// The network input size in use, `[height, width]`.
    pub fn imgsz(&self) -> [u32; 2] {
        self.imgsz
    }

    pub fn options(&self) -> &ModelOptions {
        &self.opts
    }

    /// Replaces the post-processing thresholds (they do not touch the network).
    pub fn set_post_options(&mut self, post: PostOptions) {
        self.opts.post = post;
    }

    /// The letterbox this segmenter applies to an image of the given size.
    pub fn letterbox_for(&self, width: u32, height: u32) -> Letterbox {
        Letterbox::plan(
            width,
            height,
            self.imgsz,
            self.opts.minimal_padding,
            *STRIDES.last().expect("three strides") as u32,
        )
    }
}

impl Segmenter for YoloSegmenter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError> {
        if image.width() == 0 || image.height() == 0 {
            return Err(SegmentError::BadInput("empty image".into()));
        }
        let t0 = Instant::now();
        let lb = self.letterbox_for(image.width(), image.height());
        let mut input = Vec::new();
        lb.apply(image, &mut input);
        let (h, w) = (lb.input_height as usize, lb.input_width as usize);
        // The tensor takes the buffer: no copy, and nothing held between frames.
        let x = Tensor::from_vec(input, (1, 3, h, w), &Device::Cpu)?;
        let t1 = Instant::now();
        let out = self.net.forward(&x)?;
        let pred = out
            .pred
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let proto_t = out.proto.to_dtype(DType::F32)?;
        let (_, nm, ph, pw) = proto_t.dims4()?;
        let proto = proto_t.flatten_all()?.to_vec1::<f32>()?;
        let embedding = out
            .embedding
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let t2 = Instant::now();
        let arch = &self.info.architecture;
        let raw = RawView {
            pred: &pred,
            anchors: pred.len() / (4 + arch.num_classes + nm),
            num_classes: arch.num_classes,
            num_masks: nm,
            proto: &proto,
            proto_h: ph,
            proto_w: pw,
        };
        let instances = postprocess(&raw, &lb, &self.opts.post);
        let t3 = Instant::now();
        Ok(Detections {
            image_width: image.width(),
            image_height: image.height(),
            instances,
            embedding,
            class_names: self.info.class_names.clone(),
            timings: Timings {
                preprocess: t1 - t0,
                inference: t2 - t1,
                postprocess: t3 - t2,
            },
        })
    }
}

/// The `__metadata__` of an exported checkpoint.
struct ModelMetadata {
    names: Vec<String>,
    imgsz: Option<[u32; 2]>,
}

impl ModelMetadata {
    fn parse(
        meta: &std::collections::HashMap<String, String>,
        nc: usize,
    ) -> Result<Self, SegmentError> {
        let bad = |key: &str, reason: String| SegmentError::Metadata {
            key: key.into(),
            reason,
        };
        if let Some(task) = meta.get("task") {
            if task != "segment" {
                return Err(bad(
                    "task",
                    format!("is `{task}`, edgesift needs `segment`"),
                ));
            }
        }
        if let Some(n) = meta.get("nc") {
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| bad("nc", format!("`{n}` is not a number")))?;
            if n != nc {
                return Err(bad(
                    "nc",
                    format!("says {n} classes but the class head has {nc} outputs"),
                ));
            }
        }
        let names = match meta.get("names") {
            None => (0..nc).map(|i| format!("class{i}")).collect(),
            Some(json) => {
                let map: std::collections::BTreeMap<String, String> = serde_json::from_str(json)
                    .map_err(|e| bad("names", format!("not a JSON object of id -> name: {e}")))?;
                let mut names = vec![None; nc];
                for (k, v) in map {
                    let i: usize = k
                        .parse()
                        .map_err(|_| bad("names", format!("key `{k}` is not a class id")))?;
                    if i >= nc {
                        return Err(bad(
                            "names",
                            format!("class id {i} but the model has {nc} classes"),
                        ));
                    }
                    names[i] = Some(v);
                }
                names
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| n.unwrap_or_else(|| format!("class{i}")))
                    .collect()
            }
        };
        let imgsz = match meta.get("imgsz") {
            None => None,
            Some(s) => Some(parse_imgsz(s).ok_or_else(|| {
                bad(
                    "imgsz",
                    format!("`{s}` is neither a number nor [height, width]"),
                )
            })?),
        };
        Ok(Self { names, imgsz })
    }
}

fn parse_imgsz(s: &str) -> Option<[u32; 2]> {
    match serde_json::from_str::<serde_json::Value>(s).ok()? {
        serde_json::Value::Number(n) => {
            let v = n.as_u64()? as u32;
            Some([v, v])
        }
        serde_json::Value::Array(a) if a.len() == 2 => {
            Some([a[0].as_u64()? as u32, a[1].as_u64()? as u32])
        }
        _ => None,
    }
}

fn sha256_file(path: &Path) -> Result<String, SegmentError> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).map_err(|source| SegmentError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|source| SegmentError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn metadata_names_and_imgsz() {
        let m = ModelMetadata::parse(
            &meta(&[
                ("names", r#"{"0": "car", "1": "truck"}"#),
                ("imgsz", "[320, 480]"),
                ("nc", "2"),
            ]),
            2,
        )
        .unwrap();
        assert_eq!(m.names, vec!["car", "truck"]);
        assert_eq!(m.imgsz, Some([320, 480]));
        let m = ModelMetadata::parse(&meta(&[("imgsz", "640")]), 3).unwrap();
        assert_eq!(m.names, vec!["class0", "class1", "class2"]);
        assert_eq!(m.imgsz, Some([640, 640]));
    }

    #[test]
    fn metadata_errors_name_the_key() {
        let e = ModelMetadata::parse(&meta(&[("task", "detect")]), 2)
            .err()
            .unwrap();
        assert!(e.to_string().contains("`task`"), "{e}");
        let e = ModelMetadata::parse(&meta(&[("nc", "80")]), 2)
            .err()
            .unwrap();
        assert!(e.to_string().contains("`nc`"), "{e}");
        let e = ModelMetadata::parse(&meta(&[("names", "[1,2]")]), 2)
            .err()
            .unwrap();
        assert!(e.to_string().contains("`names`"), "{e}");
        let e = ModelMetadata::parse(&meta(&[("names", r#"{"5": "x"}"#)]), 2)
            .err()
            .unwrap();
        assert!(e.to_string().contains("class id 5"), "{e}");
    }
}
