//! MobileSAM: class-agnostic masks from box and point prompts.
//!
//! - [`MobileSam`]: the model (TinyViT-5M image encoder, SAM's prompt encoder and mask decoder),
//!   loaded from `scripts/export_mobilesam.py`'s safetensors, with the official predictor's pre-
//!   and post-processing. Its answers match MobileSAM's Python code on the same weights
//!   (`tests/mobilesam.rs`).
//! - [`MobileSam::embed`] runs the expensive encoder once per image; [`MobileSam::predict`] then
//!   answers any number of [`Prompt`]s on that [`ImageEmbedding`] cheaply.
//! - [`MobileSam::everything`] / [`SamEverything`]: automatic mask generation (a point grid,
//!   IoU and stability filters, NMS) in bounded memory, as a class-agnostic [`super::Segmenter`].
//! - [`Refiner`]: `[refine]`, sharper masks for the frames the selector keeps.
//!
//! CPU f32 runs edgesift's kernels (depthwise convolution, exact GELU, two-pass LayerNorm, fused
//! convolutions); other devices and dtypes run candle's generic ops.

mod decoder;
mod everything;
mod nn;
mod pixels;
mod quantize;
mod refine;
mod tiny_vit;

pub use decoder::PointPrompt;
pub use everything::{nms, AutoMask, EverythingOptions, SamEverything};
pub use pixels::{input_size, logits_at_original, normalise_and_pad, resize_pil_bilinear};
pub(crate) use quantize::int8_tensors;
pub use refine::{RefineConfig, Refined, RefinedInstance, Refiner, DEFAULT_REFINE_MODEL};

use super::layers::Target;
use super::weights::Weights;
use super::SegmentError;
use crate::geometry::{BBox, Mask};
use candle_core::{DType, Device, Tensor};
use decoder::{MaskDecoder, PromptEncoder, IMAGE_SIZE};
use image::RgbImage;
use std::path::{Path, PathBuf};
use tiny_vit::{TinyVit, OUT_CHANS};

/// The `arch` metadata `scripts/export_mobilesam.py` writes.
pub const ARCH: &str = "mobilesam-vit_t";

/// Whether `weights` hold MobileSAM: the `arch` metadata, or (files without it) the first
/// tensor of its image encoder.
pub fn is_mobilesam(weights: &Weights) -> bool {
    match weights.metadata().get("arch") {
        Some(arch) => arch == ARCH,
        None => weights.contains("image_encoder.patch_embed.seq.0.c.weight"),
    }
}
/// Prompts decoded together at most. Each costs tens of MB of temporaries, and batching measured
/// slower per prompt than one at a time on a 2-core CPU (`edgesift bench-sam`).
const MAX_DECODE_BATCH: usize = 1;

/// What a loaded MobileSAM file is.
#[derive(Debug, Clone)]
pub struct MobileSamInfo {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

/// The encoder's output for one image, with the geometry needed to map prompts and masks.
#[derive(Debug, Clone)]
pub struct ImageEmbedding {
    /// `[1, 256, 64, 64]`.
    pub features: Tensor,
    pub orig_width: u32,
    pub orig_height: u32,
    /// The resized image inside the 1024 x 1024 input.
    pub input_width: u32,
    pub input_height: u32,
}

impl ImageEmbedding {
    /// Original pixel coordinates to model-input coordinates (`ResizeLongestSide.apply_coords`).
    pub fn to_input(&self, x: f32, y: f32) -> (f32, f32) {
        let sx = self.input_width as f64 / self.orig_width as f64;
        let sy = self.input_height as f64 / self.orig_height as f64;
        ((x as f64 * sx) as f32, (y as f64 * sy) as f32)
    }
}

/// A prompt in original image pixels: points, a box, or both.
#[derive(Debug, Clone, Default)]
pub struct Prompt {
    pub points: Vec<PointPrompt>,
    pub bbox: Option<BBox>,
}

impl Prompt {
    pub fn from_box(bbox: BBox) -> Self {
        Self {
            points: Vec::new(),
            bbox: Some(bbox),
        }
    }

    pub fn from_point(x: f32, y: f32, foreground: bool) -> Self {
        Self {
            points: vec![PointPrompt { x, y, foreground }],
            bbox: None,
        }
    }

    fn tokens(&self) -> usize {
        self.points.len() + if self.bbox.is_some() { 2 } else { 1 }
    }
}

/// One predicted mask.
#[derive(Debug, Clone)]
pub struct MaskPrediction {
    /// Binary mask at the original resolution (logit > 0).
    pub mask: Mask,
    /// The model's estimate of the mask's IoU with the object.
    pub iou: f32,
    /// The `[256, 256]` logits in the padded 1024 frame (SAM's `low_res_logits`).
    pub low_res: Vec<f32>,
}

/// The MobileSAM network with the official predictor's pre- and post-processing.
#[derive(Debug)]
pub struct MobileSam {
    encoder: TinyVit,
    prompt: PromptEncoder,
    decoder: MaskDecoder,
    target: Target,
    info: MobileSamInfo,
}

impl MobileSam {
    /// Loads a safetensors file; fails with the offending key on any mismatch.
    pub fn load(path: &Path, device: &Device) -> Result<Self, SegmentError> {
        let weights = Weights::open(path)?;
        let mut me = Self::from_weights(&weights, device)?;
        me.info.sha256 = super::sha256_file(path)?;
        Ok(me)
    }

    /// Builds the model from opened weights (f32 compute).
    pub fn from_weights(weights: &Weights, device: &Device) -> Result<Self, SegmentError> {
        if let Some(arch) = weights.metadata().get("arch") {
            if arch != ARCH {
                return Err(SegmentError::Metadata {
                    key: "arch".into(),
                    reason: format!("is `{arch}`, MobileSAM needs `{ARCH}`"),
                });
            }
        }
        let target = Target {
            device: device.clone(),
            dtype: DType::F32,
        };
        let path = weights.path().to_owned();
        Ok(Self {
            encoder: TinyVit::load(&weights.scope("image_encoder"), &target)?,
            prompt: PromptEncoder::load(&weights.scope("prompt_encoder"), &target)?,
            decoder: MaskDecoder::load(&weights.scope("mask_decoder"), &target)?,
            target,
            info: MobileSamInfo {
                name: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                path,
                sha256: String::new(),
            },
        })
    }

    pub fn info(&self) -> &MobileSamInfo {
        &self.info
    }

    /// The image encoder alone: `[b, 3, 1024, 1024]` normalised pixels to `[b, 256, 64, 64]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor, SegmentError> {
        let x = x.to_device(&self.target.device)?;
        self.encoder.forward(&x)
    }

    /// The model input of an already resized RGB image (`input_size` of the original).
    pub fn input_tensor(&self, resized: &RgbImage) -> Result<Tensor, SegmentError> {
        let (w, h) = (resized.width() as usize, resized.height() as usize);
        if w > IMAGE_SIZE || h > IMAGE_SIZE || w == 0 || h == 0 {
            return Err(SegmentError::BadInput(format!(
                "resized image is {w}x{h}; MobileSAM takes at most {IMAGE_SIZE}x{IMAGE_SIZE}"
            )));
        }
        let data = normalise_and_pad(resized.as_raw(), w, h);
        Ok(Tensor::from_vec(
            data,
            (1, 3, IMAGE_SIZE, IMAGE_SIZE),
            &Device::Cpu,
        )?)
    }

    /// Resizes, normalises and encodes one image (the expensive step, seconds on a small CPU).
    pub fn embed(&self, image: &RgbImage) -> Result<ImageEmbedding, SegmentError> {
        let (ow, oh) = (image.width(), image.height());
        if ow == 0 || oh == 0 {
            return Err(SegmentError::BadInput("empty image".into()));
        }
        let (iw, ih) = input_size(ow, oh);
        let resized = if (iw, ih) == (ow, oh) {
            image.clone()
        } else {
            let raw = resize_pil_bilinear(
                image.as_raw(),
                ow as usize,
                oh as usize,
                iw as usize,
                ih as usize,
            );
            RgbImage::from_raw(iw, ih, raw)
                .ok_or_else(|| SegmentError::BadInput("resize produced a wrong buffer".into()))?
        };
        let features = self.encode(&self.input_tensor(&resized)?)?;
        Ok(ImageEmbedding {
            features,
            orig_width: ow,
            orig_height: oh,
            input_width: iw,
            input_height: ih,
        })
    }

    /// The decoder on prompts already in model-input coordinates (`[x0, y0, x1, y1]` boxes),
    /// all with the same number of tokens: all four mask logits `[b, 4, 256, 256]` and IoU
    /// predictions `[b, 4]`.
    pub fn decode(
        &self,
        features: &Tensor,
        prompts: &[(Vec<PointPrompt>, Option<[f32; 4]>)],
    ) -> Result<(Tensor, Tensor), SegmentError> {
        let Some(first) = prompts.first() else {
            return Err(SegmentError::BadInput("no prompt".into()));
        };
        let mut sparse = Vec::new();
        let tokens = first.0.len() + if first.1.is_some() { 2 } else { 1 };
        for (points, bbox) in prompts {
            let v = self.prompt.sparse(points, *bbox);
            if v.len() != tokens * OUT_CHANS {
                return Err(SegmentError::BadInput(
                    "prompts decoded together need the same number of points".into(),
                ));
            }
            sparse.extend(v);
        }
        let sparse = self
            .target
            .tensor(sparse, &[prompts.len(), tokens, OUT_CHANS])?;
        let features = features.to_device(&self.target.device)?;
        self.decoder.forward(&self.prompt, &features, &sparse)
    }

    /// Masks for each prompt (original pixels): the single best-guess mask, or with `multimask`
    /// the three alternatives, as `SamPredictor.predict` returns them.
    pub fn predict(
        &self,
        emb: &ImageEmbedding,
        prompts: &[Prompt],
        multimask: bool,
    ) -> Result<Vec<Vec<MaskPrediction>>, SegmentError> {
        let mut out: Vec<Option<Vec<MaskPrediction>>> = vec![None; prompts.len()];
        // Prompts with equal token counts run together, a bounded batch at a time.
        let mut by_tokens = std::collections::BTreeMap::<usize, Vec<usize>>::new();
        for (i, p) in prompts.iter().enumerate() {
            by_tokens.entry(p.tokens()).or_default().push(i);
        }
        for idxs in by_tokens.values() {
            for chunk in idxs.chunks(MAX_DECODE_BATCH) {
                let batch: Vec<_> = chunk
                    .iter()
                    .map(|&i| self.to_input(emb, &prompts[i]))
                    .collect();
                let (masks, iou) = self.decode(&emb.features, &batch)?;
                let (lo, n) = if multimask { (1, 3) } else { (0, 1) };
                let masks = masks.narrow(1, lo, n)?.to_device(&Device::Cpu)?;
                let iou = iou
                    .narrow(1, lo, n)?
                    .to_device(&Device::Cpu)?
                    .to_vec2::<f32>()?;
                for (j, &i) in chunk.iter().enumerate() {
                    let mut preds = Vec::with_capacity(n);
                    for (m, &q) in iou[j].iter().enumerate() {
                        let low = masks.get(j)?.get(m)?.flatten_all()?.to_vec1::<f32>()?;
                        preds.push(MaskPrediction {
                            mask: self.mask_at_original(emb, &low),
                            iou: q,
                            low_res: low,
                        });
                    }
                    out[i] = Some(preds);
                }
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn to_input(&self, emb: &ImageEmbedding, p: &Prompt) -> (Vec<PointPrompt>, Option<[f32; 4]>) {
        let points = p
            .points
            .iter()
            .map(|q| {
                let (x, y) = emb.to_input(q.x, q.y);
                PointPrompt { x, y, ..*q }
            })
            .collect();
        let bbox = p.bbox.map(|b| {
            let (x0, y0) = emb.to_input(b.x1, b.y1);
            let (x1, y1) = emb.to_input(b.x2, b.y2);
            [x0, y0, x1, y1]
        });
        (points, bbox)
    }

    /// The binary mask (logit > 0) of `[256, 256]` logits at the original resolution.
    pub fn mask_at_original(&self, emb: &ImageEmbedding, low: &[f32]) -> Mask {
        let (w, h) = (emb.orig_width, emb.orig_height);
        let logits = logits_at_original(
            low,
            (emb.input_width as usize, emb.input_height as usize),
            (w as usize, h as usize),
        );
        let full: Vec<u8> = logits.iter().map(|&v| (v > 0.0) as u8).collect();
        Mask::from_full(w, h, &full)
    }
}
