//! Smaller model files: `edgesift quantize` rewrites a checkpoint with its convolution weights in
//! half precision.
//!
//! Only the 4-D `*.weight` tensors (convolution and transposed-convolution kernels, >99.5 % of the
//! bytes) change dtype; BatchNorm statistics and biases stay f32, so folding BatchNorm at load
//! loses nothing to f16's range (a running variance above 65504 would overflow it). The result
//! keeps ultralytics' names and loads like any other checkpoint: the network still computes in
//! f32 (the weights are widened at load), so the file and its page-cache footprint halve while
//! the speed is that of f32. Accuracy against the f32 model: `tests/quantize.rs`.

use super::{SegmentError, Weights, YoloV8Seg};
use candle_core::{DType, Device};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The storage dtype of the converted weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDtype {
    F16,
}

impl std::str::FromStr for WeightDtype {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f16" => Ok(Self::F16),
            "int8" => Err(
                "int8 is not implemented yet (needs int8 kernels with run-time CPU checks); use f16"
                    .into(),
            ),
            other => Err(format!("unknown weight dtype `{other}`; expected f16")),
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
/// The input must load as a YOLOv8-seg model (checked first, so a wrong file fails with the
/// loader's error naming the tensor). The output is written beside its final path and renamed
/// into place, so a crash leaves either the old file or the new one.
pub fn quantize(
    input: &Path,
    output: &Path,
    dtype: WeightDtype,
) -> Result<QuantizeSummary, SegmentError> {
    let weights = Weights::open(input)?;
    YoloV8Seg::load(&weights, &Device::Cpu, DType::F32)?;

    let mut names: Vec<&str> = weights.names().collect();
    names.sort_unstable();
    let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(names.len());
    let mut converted = 0;
    for name in names {
        let shape = weights.shape(name)?.to_vec();
        let values = weights.f32(name, &shape)?;
        let to_half = shape.len() == 4 && name.ends_with(".weight");
        let (dt, bytes) = match (to_half, dtype) {
            (true, WeightDtype::F16) => {
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
                (Dtype::F16, bytes)
            }
            // Everything else is stored as f32, whatever it was: exact for f16/bf16 inputs.
            (false, _) => (
                Dtype::F32,
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        };
        buffers.push((name.to_string(), dt, shape, bytes));
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
