//! `edgesift quantize --dtype int8` for MobileSAM: which tensors become int8, and how.
//!
//! - Every `nn.Linear` of the image encoder (attention `qkv`/`proj`, MLP `fc1`/`fc2`) and of the
//!   mask decoder's two-way transformer (`q/k/v/out_proj`, `mlp.lin1/lin2`): `P.weight` becomes
//!   int8 `[out, in]` with `P.weight_scale` (f32 `[out]`, symmetric per output channel, `w = scale
//!   * v`); `P.bias` stays f32. They run on `kernels::LinearI8` (activations quantized per token).
//! - The dense `Conv2d_BN`s of the patch embedding and of stage 0's MBConvs (1x1 expand and
//!   project; a quarter of the encoder's multiply-adds): BatchNorm folded first (as the f32 loader
//!   does), then `P.c.weight` int8 with `P.c.weight_scale` and the folded `P.c.bias`; `P.bn.*` is
//!   dropped. They run on `kernels::ConvI8`, whose activations have one scale per tensor.
//! - Stays f32: the patch mergings' and the neck's convolutions (their input is the transformer's
//!   residual stream, whose few large channels leave one per-tensor scale too coarse for the rest:
//!   quantizing them alone moved the seeded fixture's embedding by 5e-2 relative L2, 4x all the
//!   linear layers together), the depthwise convolutions (memory-bound), LayerNorms, attention
//!   biases, the prompt encoder, the decoder's upscaling, hypernetwork MLPs and IoU head (a few
//!   thousand rows at most, and they shape the output masks directly).
//!
//! Accuracy against the f32 model: `tests/mobilesam.rs`.

use super::nn::fold_bn;
use crate::segment::kernels::quantize_rows;
use crate::segment::{SegmentError, Weights};
use safetensors::tensor::Dtype;

/// One output tensor: name, dtype, shape, little-endian bytes.
pub(crate) type Buffer = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Whether `name` is an `nn.Linear` weight that gets int8 (see the module doc).
fn is_int8_linear(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2
        && name.ends_with(".weight")
        && (name.starts_with("image_encoder.") || name.starts_with("mask_decoder.transformer."))
}

/// The `Conv2d_BN` prefix of a dense (not depthwise) convolution weight with its BatchNorm.
fn dense_conv_bn<'a>(w: &Weights, name: &'a str, shape: &[usize]) -> Option<&'a str> {
    let prefix = name.strip_suffix(".c.weight")?;
    ([
        "image_encoder.patch_embed.",
        "image_encoder.layers.0.blocks.",
    ]
    .iter()
    .any(|p| name.starts_with(p))
        && shape.len() == 4
        && shape[1] > 1
        && w.contains(&format!("{prefix}.bn.weight")))
    .then_some(prefix)
}

fn int8(name: String, shape: Vec<usize>, w: &[f32], out: &mut Vec<Buffer>) {
    let (q, scale) = quantize_rows(w, shape[0]);
    let rows = vec![shape[0]];
    out.push((format!("{name}_scale"), Dtype::F32, rows, f32_bytes(&scale)));
    out.push((name, Dtype::I8, shape, q.iter().map(|&v| v as u8).collect()));
}

/// The tensors of the int8 file (every tensor of `weights`, converted per the module doc) and
/// how many weights became int8.
pub(crate) fn int8_tensors(weights: &Weights) -> Result<(Vec<Buffer>, usize), SegmentError> {
    let mut names: Vec<&str> = weights.names().collect();
    names.sort_unstable();
    // BatchNorms folded into an int8 convolution.
    let mut folded = std::collections::HashSet::new();
    for name in &names {
        if let Some(prefix) = dense_conv_bn(weights, name, weights.shape(name)?) {
            folded.insert(format!("{prefix}.bn."));
        }
    }
    let mut out = Vec::with_capacity(names.len());
    let mut converted = 0;
    for name in names {
        if name
            .rfind(".bn.")
            .is_some_and(|i| folded.contains(&name[..i + 4]))
        {
            continue;
        }
        let shape = weights.shape(name)?.to_vec();
        let values = weights.f32(name, &shape)?;
        if let Some(prefix) = dense_conv_bn(weights, name, &shape) {
            let bn = |t: &str| weights.f32(&format!("{prefix}.bn.{t}"), &shape[..1]);
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
            out.push((
                format!("{prefix}.c.bias"),
                Dtype::F32,
                shape[..1].to_vec(),
                f32_bytes(&bias),
            ));
            int8(name.to_string(), shape, &w, &mut out);
            converted += 1;
        } else if is_int8_linear(name, &shape) {
            if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                return Err(SegmentError::Metadata {
                    key: name.to_string(),
                    reason: format!("holds {bad}"),
                });
            }
            int8(name.to_string(), shape, &values, &mut out);
            converted += 1;
        } else {
            out.push((name.to_string(), Dtype::F32, shape, f32_bytes(&values)));
        }
    }
    Ok((out, converted))
}
