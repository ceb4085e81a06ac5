//! The layers YOLOv8 is built from, with BatchNorm folded into the convolutions at load time.
//!
//! Every convolution of the network goes through [`Conv`], so that how a convolution is computed
//! (candle's own kernel today, a fused, pre-packed one for the speed work) is decided in one place.

use super::kernels::{ConvAdd, ConvCpu, ConvI8, ConvI8Add, Upsample2xCpu};
use super::weights::Scope;
use super::SegmentError;
use candle_core::{DType, Device, Tensor};

/// BatchNorm epsilon of every ultralytics model (`initialize_weights` sets 1e-3).
pub(crate) const BN_EPS: f64 = 1e-3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    None,
    Silu,
}

/// Where tensors go when they are built, and in which dtype.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub device: Device,
    pub dtype: DType,
}

impl Target {
    /// f32 on the CPU: the network's own kernels ([`super::kernels`]) apply.
    pub(crate) fn native(&self) -> bool {
        self.device.is_cpu() && self.dtype == DType::F32
    }

    pub(crate) fn tensor(&self, data: Vec<f32>, shape: &[usize]) -> Result<Tensor, SegmentError> {
        Ok(Tensor::from_vec(data, shape, &Device::Cpu)?
            .to_dtype(self.dtype)?
            .to_device(&self.device)?)
    }
}

/// Folds BatchNorm into the convolution weights `w` (`[c_out, ...]`, scaled in place) and
/// returns the bias: `y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta`.
pub(crate) fn fold_bn(
    w: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
) -> Vec<f32> {
    let c_out = gamma.len();
    let per_out = w.len() / c_out.max(1);
    let mut bias = Vec::with_capacity(c_out);
    for o in 0..c_out {
        let scale = gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt();
        for v in &mut w[o * per_out..(o + 1) * per_out] {
            *v = (*v as f64 * scale) as f32;
        }
        bias.push((beta[o] as f64 - mean[o] as f64 * scale) as f32);
    }
    bias
}

/// A 2-D convolution with bias and optional SiLU, stride 1 or 2, "same" padding (`k / 2`).
#[derive(Debug)]
pub(crate) struct Conv {
    imp: ConvImpl,
    c_out: usize,
}

/// How a [`Conv`] is computed: edgesift's fused CPU kernel for f32 on the CPU, candle's
/// `conv2d` elsewhere (CUDA, half precision).
#[derive(Debug)]
enum ConvImpl {
    Native(ConvCpu),
    /// int8 weights (`edgesift quantize --dtype int8`) on the CPU.
    Int8(ConvI8),
    Candle {
        weight: Tensor,
        bias: Tensor,
        stride: usize,
        padding: usize,
        act: Activation,
    },
}

impl ConvImpl {
    /// `w` is `[c_out, c_in, k, k]` flattened, `b` has `c_out` values.
    #[allow(clippy::too_many_arguments)]
    fn build(
        target: &Target,
        w: Vec<f32>,
        b: Vec<f32>,
        c_out: usize,
        c_in: usize,
        k: usize,
        stride: usize,
        act: Activation,
    ) -> Result<Self, SegmentError> {
        Ok(if target.native() {
            ConvImpl::Native(ConvCpu::new(w, b, c_in, k, stride, act == Activation::Silu))
        } else {
            ConvImpl::Candle {
                weight: target.tensor(w, &[c_out, c_in, k, k])?,
                bias: target.tensor(b, &[1, c_out, 1, 1])?,
                stride,
                padding: k / 2,
                act,
            }
        })
    }
}

impl Conv {
    /// An ultralytics `Conv` block (`conv` without bias, then `bn`, then SiLU), folded.
    ///
    /// The kernel size is fixed by the architecture; the output width is read from the weights.
    pub(crate) fn load_bn(
        s: &Scope,
        target: &Target,
        c_in: usize,
        k: usize,
        stride: usize,
        act: Activation,
    ) -> Result<Self, SegmentError> {
        let key = "conv.weight";
        let c_out = *s
            .shape(key)?
            .first()
            .ok_or_else(|| SegmentError::Architecture(format!("{} is a scalar", s.key(key))))?;
        if s.dtype(key)? == safetensors::Dtype::I8 {
            return Self::load_int8(s, target, c_out, c_in, k, stride, act);
        }
        let mut w = s.f32(key, &[c_out, c_in, k, k])?;
        let gamma = s.f32("bn.weight", &[c_out])?;
        let beta = s.f32("bn.bias", &[c_out])?;
        let mean = s.f32("bn.running_mean", &[c_out])?;
        let var = s.f32("bn.running_var", &[c_out])?;
        let bias = fold_bn(&mut w, &gamma, &beta, &mean, &var);
        Ok(Self {
            imp: ConvImpl::build(target, w, bias, c_out, c_in, k, stride, act)?,
            c_out,
        })
    }

    /// A `Conv` block as `edgesift quantize --dtype int8` writes it: BatchNorm already folded,
    /// `conv.weight` int8 `[c_out, c_in, k, k]`, `conv.weight_scale` f32 `[c_out]` (per output
    /// channel, `w = scale * v`), `conv.bias` f32 `[c_out]`. Computed by the int8 kernel on the
    /// CPU in f32 mode, dequantized to candle's conv2d elsewhere.
    fn load_int8(
        s: &Scope,
        target: &Target,
        c_out: usize,
        c_in: usize,
        k: usize,
        stride: usize,
        act: Activation,
    ) -> Result<Self, SegmentError> {
        let v = s.i8("conv.weight", &[c_out, c_in, k, k])?;
        let scale = s.f32("conv.weight_scale", &[c_out])?;
        let bias = s.f32("conv.bias", &[c_out])?;
        if let Some(bad) = scale.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
            return Err(SegmentError::Metadata {
                key: s.key("conv.weight_scale"),
                reason: format!("scale {bad} is not a positive finite number"),
            });
        }
        let imp = if target.native() {
            ConvImpl::Int8(ConvI8::new(
                &v,
                scale,
                bias,
                c_in,
                k,
                stride,
                act == Activation::Silu,
            ))
        } else {
            let per_out = c_in * k * k;
            let w = v
                .iter()
                .enumerate()
                .map(|(i, &q)| q as f32 * scale[i / per_out])
                .collect();
            ConvImpl::build(target, w, bias, c_out, c_in, k, stride, act)?
        };
        Ok(Self { imp, c_out })
    }

    /// A plain `nn.Conv2d` with bias (the last layer of each head branch), 1x1.
    pub(crate) fn load_plain(
        s: &Scope,
        target: &Target,
        c_in: usize,
    ) -> Result<Self, SegmentError> {
        let c_out = *s.shape("weight")?.first().ok_or_else(|| {
            SegmentError::Architecture(format!("{} is a scalar", s.key("weight")))
        })?;
        let w = s.f32("weight", &[c_out, c_in, 1, 1])?;
        let b = s.f32("bias", &[c_out])?;
        Ok(Self {
            imp: ConvImpl::build(target, w, b, c_out, c_in, 1, 1, Activation::None)?,
            c_out,
        })
    }

    pub(crate) fn c_out(&self) -> usize {
        self.c_out
    }

    /// `forward(x) + residual`, in one pass on the CPU.
    pub(crate) fn forward_add(
        &self,
        x: &Tensor,
        residual: &Tensor,
    ) -> Result<Tensor, SegmentError> {
        match &self.imp {
            ConvImpl::Native(op) => {
                Ok(contiguous(x)?.apply_op2_no_bwd(&contiguous(residual)?, &ConvAdd(op))?)
            }
            ConvImpl::Int8(op) => {
                Ok(contiguous(x)?.apply_op2_no_bwd(&contiguous(residual)?, &ConvI8Add(op))?)
            }
            ConvImpl::Candle { .. } => Ok((self.forward(x)? + residual)?),
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor, SegmentError> {
        match &self.imp {
            ConvImpl::Native(op) => Ok(contiguous(x)?.apply_op1_no_bwd(op)?),
            ConvImpl::Int8(op) => Ok(contiguous(x)?.apply_op1_no_bwd(op)?),
            ConvImpl::Candle {
                weight,
                bias,
                stride,
                padding,
                act,
            } => {
                let y = x
                    .conv2d(weight, *padding, *stride, 1, 1)?
                    .broadcast_add(bias)?;
                Ok(match act {
                    Activation::None => y,
                    Activation::Silu => y.silu()?,
                })
            }
        }
    }
}

/// `x` itself when contiguous (a cheap handle clone), else a contiguous copy.
fn contiguous(x: &Tensor) -> Result<Tensor, SegmentError> {
    Ok(x.contiguous()?)
}

/// `nn.ConvTranspose2d(c, c, 2, 2, 0, bias=True)`: every input pixel becomes a 2x2 block.
///
/// With kernel = stride = 2 the blocks do not overlap, so the layer is one matrix product
/// (`[4*c_out, c_in] x [c_in, H*W]`) and a reshuffle, instead of candle's per-pixel loop.
#[derive(Debug)]
pub(crate) enum Upsample2x {
    Native(Upsample2xCpu),
    Candle {
        /// Rows ordered (out channel, dy, dx).
        weight: Tensor,
        bias: Tensor,
        c_out: usize,
    },
}

impl Upsample2x {
    pub(crate) fn load(s: &Scope, target: &Target, c_in: usize) -> Result<Self, SegmentError> {
        let c_out = *s.shape("weight")?.get(1).ok_or_else(|| {
            SegmentError::Architecture(format!("{} has fewer than 2 dims", s.key("weight")))
        })?;
        // PyTorch stores transposed-conv weights as [c_in, c_out, kh, kw].
        let w = s.f32("weight", &[c_in, c_out, 2, 2])?;
        let b = s.f32("bias", &[c_out])?;
        let mut rows = vec![0f32; 4 * c_out * c_in];
        for i in 0..c_in {
            for o in 0..c_out {
                for d in 0..4 {
                    rows[(o * 4 + d) * c_in + i] = w[(i * c_out + o) * 4 + d];
                }
            }
        }
        if target.native() {
            return Ok(Self::Native(Upsample2xCpu::new(rows, b, c_in)));
        }
        Ok(Self::Candle {
            weight: target.tensor(rows, &[4 * c_out, c_in])?,
            bias: target.tensor(b, &[1, c_out, 1, 1, 1, 1])?,
            c_out,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor, SegmentError> {
        let (weight, bias, co) = match self {
            Self::Native(op) => return Ok(contiguous(x)?.apply_op1_no_bwd(op)?),
            Self::Candle {
                weight,
                bias,
                c_out,
            } => (weight, bias, *c_out),
        };
        let (b, c_in, h, w) = x.dims4()?;
        // [b, 4co, h*w] -> [b, co, dy, dx, h, w] -> [b, co, h, dy, w, dx] -> [b, co, 2h, 2w]
        let y = weight
            .broadcast_matmul(&x.reshape((b, c_in, h * w))?)?
            .reshape((b, co, 2, 2, h, w))?
            .broadcast_add(bias)?
            .permute((0, 1, 4, 2, 5, 3))?
            .contiguous()?
            .reshape((b, co, 2 * h, 2 * w))?;
        Ok(y)
    }
}
