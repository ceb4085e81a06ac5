//! Smaller, faster model files: `edgesift quantize` rewrites a checkpoint with its convolution
//! weights in half precision or in int8.
//!
//! **f16**: only the 4-D `*.weight` tensors (convolution and transposed-convolution kernels,
//! over 99.5 % of the bytes) change dtype; BatchNorm statistics and biases stay f32, so folding
//! BatchNorm at load loses nothing to f16's range (a running variance above 65504 would overflow
//! it). The result keeps ultralytics' names and loads like any other checkpoint: the network
//! still computes in f32 (the weights are widened at load), so the file and its page-cache
//! footprint halve while the speed is that of f32.
//!
//! **int8**: every `Conv` block (convolution + BatchNorm + SiLU: all the 3x3 and 1x1
//! convolutions of backbone, neck, head branches and Proto) has its BatchNorm folded first, as
//! the f32 loader does, then its weights quantized symmetrically per output channel:
//! `P.conv.weight` becomes int8 `[c_out, c_in, k, k]` in -127..=127 with `P.conv.weight_scale`
//! (f32 `[c_out]`, `w = scale * v`) and `P.conv.bias` (f32, the folded bias); `P.bn.*` is
//! dropped. The last 1x1 convolution of each head branch (box distances, class scores, mask
//! coefficients; 1.5 % of the MACs), the DFL and the Proto's transposed convolution stay f32.
//! Activations are quantized at run time (see `kernels::qconv`). On the CPU in f32 mode these
//! layers run on the int8 kernels; elsewhere they are dequantized at load.
//!
//! **MobileSAM** (detected from the `arch` metadata or its tensor names): f16 as above; int8 for
//! its linear layers and dense convolutions, see `mobilesam::quantize`.
//!
//! Accuracy against the f32 model: `tests/quantize.rs`, `tests/mobilesam.rs`.

use super::kernels::quantize_rows;
use super::layers::fold_bn;
use super::{SegmentError, Weights, YoloV8Seg};
use candle_core::{DType, Device};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The storage dtype of the converted weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDtype {
    F16,
    Int8,
}

impl std::str::FromStr for WeightDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f16" => Ok(Self::F16),
            "int8" => Ok(Self::Int8),
            other => Err(format!(
                "unknown weight dtype `{other}`; expected f16 or int8"
            )),
        }
    }
}

/// What [`quantize`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizeSummary {
    pub tensors: usize,
    /// Tensors whose dtype changed.
    pub converted: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Writes `output`: `input` with its convolution weights stored as `dtype` (see the module doc).
///
/// The input must load as a YOLOv8-seg or MobileSAM model (checked first, so a wrong file fails with the
/// loader's error naming the tensor). The output is written beside its final path and renamed
/// into place, so a crash leaves either the old file or the new one.
pub fn quantize(
    input: &Path,
    output: &Path,
    dtype: WeightDtype,
) -> Result<QuantizeSummary, SegmentError> {
    let weights = Weights::open(input)?;
    let sam = super::mobilesam::is_mobilesam(&weights);
    if sam {
        super::mobilesam::MobileSam::from_weights(&weights, &Device::Cpu)?;
    } else {
        YoloV8Seg::load(&weights, &Device::Cpu, DType::F32)?;
    }

    let mut names: Vec<&str> = weights.names().collect();
    names.sort_unstable();
    if let Some(name) = names
        .iter()
        .find(|n| weights.dtype(n).ok() == Some(Dtype::I8))
    {
        return Err(SegmentError::Metadata {
            key: (*name).to_string(),
            reason: "the model is already int8-quantized; quantize the f32 original".into(),
        });
    }
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(names.len());
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let mut converted = 0;
    if sam && dtype == WeightDtype::Int8 {
        (buffers, converted) = super::mobilesam::int8_tensors(&weights)?;
        names.clear();
    }
    for name in &names {
        let name = *name;
        let shape = weights.shape(name)?.to_vec();
        // A `Conv` block's BatchNorm goes into its int8 weights.
        if dtype == WeightDtype::Int8 {
            if let Some(prefix) = name.strip_suffix(".bn.weight").or_else(|| {
                ["bias", "running_mean", "running_var", "num_batches_tracked"]
                    .iter()
                    .find_map(|t| name.strip_suffix(&format!(".bn.{t}")[..]))
            }) {
                if weights.contains(&format!("{prefix}.conv.weight")) {
                    continue;
                }
            }
        }
        let values = weights.f32(name, &shape)?;
        let is_weight = shape.len() == 4 && name.ends_with(".weight");
        match dtype {
            WeightDtype::F16 if is_weight => {
                converted += 1;
                let mut bytes = Vec::with_capacity(values.len() * 2);
                for v in &values {
                    let h = half::f16::from_f32(*v);
                    if h.is_infinite() && v.is_finite() {
                        return Err(SegmentError::Metadata {
                            key: name.to_string(),
                            reason: format!("value {v} does not fit f16"),
                        });
                    }
                    bytes.extend_from_slice(&h.to_le_bytes());
                }
                buffers.push((name.to_string(), Dtype::F16, shape, bytes));
            }
            WeightDtype::Int8 if is_weight && name.ends_with(".conv.weight") => {
                let prefix = &name[..name.len() - ".conv.weight".len()];
                let bn = |t: &str| weights.f32(&format!("{prefix}.bn.{t}"), &shape[..1]);
                if !weights.contains(&format!("{prefix}.bn.weight")) {
                    buffers.push((name.to_string(), Dtype::F32, shape, f32_bytes(&values)));
                    continue;
                }
                let mut w = values;
                let bias = fold_bn(
                    &mut w,
                    &bn("weight")?,
                    &bn("bias")?,
                    &bn("running_mean")?,
                    &bn("running_var")?,
                );
                if let Some(bad) = w.iter().chain(&bias).find(|v| !v.is_finite()) {
                    return Err(SegmentError::Metadata {
                        key: name.to_string(),
                        reason: format!("folding BatchNorm gives {bad}"),
                    });
                }
                let (q, scale) = quantize_rows(&w, shape[0]);
                converted += 1;
                let c_out = vec![shape[0]];
                buffers.push((
                    name.to_string(),
                    Dtype::I8,
                    shape,
                    q.iter().map(|&v| v as u8).collect(),
                ));
                buffers.push((
                    format!("{prefix}.conv.weight_scale"),
                    Dtype::F32,
                    c_out.clone(),
                    f32_bytes(&scale),
                ));
                buffers.push((
                    format!("{prefix}.conv.bias"),
                    Dtype::F32,
                    c_out,
                    f32_bytes(&bias),
                ));
            }
            // Everything else is stored as f32, whatever it was: exact for f16/bf16 inputs.
            _ => buffers.push((name.to_string(), Dtype::F32, shape, f32_bytes(&values))),
        }
    }
    let views = buffers
        .iter()
        .map(|(name, dt, shape, bytes)| {
            TensorView::new(*dt, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .map_err(|e| SegmentError::Metadata {
                    key: name.clone(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut meta: HashMap<String, String> = weights.metadata().clone();
    meta.insert(
        "quantized".into(),
        match dtype {
            WeightDtype::F16 => "f16 convolution weights (edgesift quantize)".into(),
            WeightDtype::Int8 if sam => "int8 linear and dense convolution weights per output \
                                         channel, BatchNorm folded (edgesift quantize)"
                .into(),
            WeightDtype::Int8 => "int8 convolution weights per output channel, BatchNorm \
                                  folded (edgesift quantize)"
                .into(),
        },
    );
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SegmentError::Io { path, source }
    };
    let tmp = output.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, Some(meta), &tmp).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(source) => SegmentError::Io {
            path: tmp.clone(),
            source,
        },
        other => SegmentError::NotSafetensors {
            path: tmp.clone(),
            reason: other.to_string(),
        },
    })?;
    std::fs::rename(&tmp, output).map_err(io(output))?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).map_err(io(p));
    Ok(QuantizeSummary {
        tensors: buffers.len(),
        converted,
        bytes_in: size(input)?,
        bytes_out: size(output)?,
    })
}
