//! The layers MobileSAM is built from. Each one is loaded from its PyTorch module's tensors
//! (BatchNorm folded on the host) and runs edgesift's CPU kernels for f32 on the CPU, candle's
//! generic ops elsewhere.

use crate::segment::kernels::{
    ConvAdd, ConvCpu, ConvI8, ConvI8Add, DepthwiseCpu, GeluCpu, LayerNormCpu, LinearAdd, LinearCpu,
    LinearI8, LinearI8Add, NormAxis,
};
use crate::segment::layers::Target;
use crate::segment::weights::Scope;
use crate::segment::SegmentError;
use candle_core::Tensor;

/// `nn.BatchNorm2d`'s default epsilon (TinyViT's `Conv2d_BN`).
const BN_EPS: f64 = 1e-5;

type Result<T> = std::result::Result<T, SegmentError>;

/// Folds `Conv2d_BN`'s BatchNorm into `w` (`[c_out, ...]`, scaled in place); returns the bias.
pub(super) fn fold_bn(
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

/// The int8 weights `name` (`edgesift quantize --dtype int8`: `name` in -127..=127 and
/// `name_scale` per output channel), or `None` when `name` is stored as floats.
fn int8_weights(s: &Scope, name: &str, shape: &[usize]) -> Result<Option<(Vec<i8>, Vec<f32>)>> {
    if s.dtype(name)? != safetensors::tensor::Dtype::I8 {
        return Ok(None);
    }
    let q = s.i8(name, shape)?;
    let scale = s.f32(&format!("{name}_scale"), &shape[..1])?;
    Ok(Some((q, scale)))
}

/// `v * scale[row]`: int8 weights back to f32 (devices without int8 kernels, depthwise).
fn dequantize(q: &[i8], scale: &[f32]) -> Vec<f32> {
    let per_row = q.len() / scale.len().max(1);
    q.iter()
        .enumerate()
        .map(|(i, &v)| v as f32 * scale[i / per_row.max(1)])
        .collect()
}

/// Exact (erf) GELU.
pub(super) fn gelu(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        Ok(x.contiguous()?.apply_op1_no_bwd(&GeluCpu)?)
    } else {
        Ok(x.gelu_erf()?)
    }
}

/// A 2-D convolution with bias, "same" padding, BatchNorm folded; dense or depthwise.
#[derive(Debug)]
pub(super) struct Conv {
    imp: ConvImpl,
    /// Exact GELU after the bias.
    gelu: bool,
}

#[derive(Debug)]
enum ConvImpl {
    Dense(ConvCpu),
    /// int8 weights (`edgesift quantize --dtype int8`); the activation runs as its own pass.
    Int8(ConvI8),
    Depthwise(DepthwiseCpu),
    Candle {
        weight: Tensor,
        bias: Tensor,
        stride: usize,
        pad: usize,
        groups: usize,
    },
}

impl Conv {
    /// TinyViT's `Conv2d_BN` (`c`: conv without bias, `bn`: BatchNorm2d), folded. `groups` is 1
    /// (dense) or `c_out` (depthwise, `c_in == c_out`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn load_bn(
        s: &Scope,
        t: &Target,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        groups: usize,
        gelu: bool,
    ) -> Result<Self> {
        let shape = [c_out, c_in / groups, k, k];
        // Quantized files hold the folded bias (`c.bias`) instead of `bn.*`.
        if let Some((q, scale)) = int8_weights(&s.pp("c"), "weight", &shape)? {
            let bias = s.f32("c.bias", &[c_out])?;
            return Self::build_int8(t, q, scale, bias, c_in, k, stride, groups, gelu);
        }
        let mut w = s.f32("c.weight", &shape)?;
        let bias = fold_bn(
            &mut w,
            &s.f32("bn.weight", &[c_out])?,
            &s.f32("bn.bias", &[c_out])?,
            &s.f32("bn.running_mean", &[c_out])?,
            &s.f32("bn.running_var", &[c_out])?,
        );
        Self::build(t, w, bias, c_in, k, stride, groups, gelu)
    }

    /// A plain `nn.Conv2d` (`weight`, and `bias` when `has_bias`), dense.
    pub(super) fn load_plain(
        s: &Scope,
        t: &Target,
        c_in: usize,
        c_out: usize,
        k: usize,
        has_bias: bool,
    ) -> Result<Self> {
        let b = if has_bias {
            s.f32("bias", &[c_out])?
        } else {
            vec![0.0; c_out]
        };
        if let Some((q, scale)) = int8_weights(s, "weight", &[c_out, c_in, k, k])? {
            return Self::build_int8(t, q, scale, b, c_in, k, 1, 1, false);
        }
        let w = s.f32("weight", &[c_out, c_in, k, k])?;
        Self::build(t, w, b, c_in, k, 1, 1, false)
    }

    /// Dense int8 weights on the CPU in f32 run the int8 kernel; anything else is dequantized.
    #[allow(clippy::too_many_arguments)]
    fn build_int8(
        t: &Target,
        q: Vec<i8>,
        scale: Vec<f32>,
        b: Vec<f32>,
        c_in: usize,
        k: usize,
        stride: usize,
        groups: usize,
        gelu: bool,
    ) -> Result<Self> {
        if t.native() && groups == 1 {
            let op = ConvI8::new(&q, scale, b, c_in, k, stride, false);
            return Ok(Self {
                imp: ConvImpl::Int8(op),
                gelu,
            });
        }
        Self::build(t, dequantize(&q, &scale), b, c_in, k, stride, groups, gelu)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        t: &Target,
        w: Vec<f32>,
        b: Vec<f32>,
        c_in: usize,
        k: usize,
        stride: usize,
        groups: usize,
        gelu: bool,
    ) -> Result<Self> {
        let c_out = b.len();
        let imp = if t.native() && groups == 1 {
            ConvImpl::Dense(ConvCpu::new(w, b, c_in, k, stride, false))
        } else if t.native() && groups == c_out && c_in == c_out {
            ConvImpl::Depthwise(DepthwiseCpu::new(w, b, k, stride, gelu))
        } else {
            ConvImpl::Candle {
                weight: t.tensor(w, &[c_out, c_in / groups, k, k])?,
                bias: t.tensor(b, &[1, c_out, 1, 1])?,
                stride,
                pad: k / 2,
                groups,
            }
        };
        Ok(Self { imp, gelu })
    }

    /// `act(conv(x) + bias)`, NCHW.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.imp {
            ConvImpl::Dense(op) => x.contiguous()?.apply_op1_no_bwd(op)?,
            ConvImpl::Int8(op) => x.contiguous()?.apply_op1_no_bwd(op)?,
            // GELU is fused into the depthwise kernel.
            ConvImpl::Depthwise(op) => return Ok(x.contiguous()?.apply_op1_no_bwd(op)?),
            ConvImpl::Candle {
                weight,
                bias,
                stride,
                pad,
                groups,
            } => x
                .conv2d(weight, *pad, *stride, 1, *groups)?
                .broadcast_add(bias)?,
        };
        if self.gelu {
            gelu(&y)
        } else {
            Ok(y)
        }
    }

    /// `conv(x) + bias + residual` (no activation), in one pass on the CPU.
    pub(super) fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        debug_assert!(!self.gelu, "the residual is added before any activation");
        match &self.imp {
            ConvImpl::Dense(op) => Ok(x
                .contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, &ConvAdd(op))?),
            ConvImpl::Int8(op) => Ok(x
                .contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, &ConvI8Add(op))?),
            _ => Ok((self.forward(x)? + residual)?),
        }
    }
}

/// `nn.Linear`, applied to the last dimension, optionally followed by exact GELU.
#[derive(Debug)]
pub(super) enum Linear {
    Native(LinearCpu),
    /// int8 weights (`edgesift quantize --dtype int8`) on the CPU.
    Int8(LinearI8),
    Candle {
        /// `[in, out]`, transposed once at load so the product reads it row-major.
        w_t: Tensor,
        bias: Tensor,
        c_out: usize,
        gelu: bool,
    },
}

impl Linear {
    pub(super) fn load(s: &Scope, t: &Target, c_in: usize, c_out: usize) -> Result<Self> {
        Self::load_act(s, t, c_in, c_out, false)
    }

    /// The layer with GELU fused after it.
    pub(super) fn load_act(
        s: &Scope,
        t: &Target,
        c_in: usize,
        c_out: usize,
        gelu: bool,
    ) -> Result<Self> {
        let bias = s.f32("bias", &[c_out])?;
        let w = match int8_weights(s, "weight", &[c_out, c_in])? {
            Some((q, scale)) if t.native() => {
                return Ok(Self::Int8(LinearI8::new(&q, scale, bias, c_in, gelu)))
            }
            Some((q, scale)) => dequantize(&q, &scale),
            None => s.f32("weight", &[c_out, c_in])?,
        };
        let mut w_t = vec![0f32; w.len()];
        for o in 0..c_out {
            for i in 0..c_in {
                w_t[i * c_out + o] = w[o * c_in + i];
            }
        }
        if t.native() {
            return Ok(Self::Native(LinearCpu::new(w_t, bias, c_in, gelu)));
        }
        Ok(Self::Candle {
            w_t: t.tensor(w_t, &[c_in, c_out])?,
            bias: t.tensor(bias, &[c_out])?,
            c_out,
            gelu,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w_t, bias, c_out, act) = match self {
            Self::Native(op) => return Ok(x.contiguous()?.apply_op1_no_bwd(op)?),
            Self::Int8(op) => return Ok(x.contiguous()?.apply_op1_no_bwd(op)?),
            Self::Candle {
                w_t,
                bias,
                c_out,
                gelu,
            } => (w_t, bias, *c_out, *gelu),
        };
        let dims = x.dims().to_vec();
        let c_in = *dims
            .last()
            .ok_or_else(|| SegmentError::BadInput("linear layer applied to a scalar".into()))?;
        let rows = x.elem_count() / c_in.max(1);
        let y = x.reshape((rows, c_in))?.matmul(w_t)?.broadcast_add(bias)?;
        let y = if act { gelu(&y)? } else { y };
        let mut out = dims;
        if let Some(last) = out.last_mut() {
            *last = c_out;
        }
        Ok(y.reshape(out)?)
    }

    /// `forward(x) + residual`, in one pass on the CPU.
    pub(super) fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        match self {
            Self::Native(op) => Ok(x
                .contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, &LinearAdd(op))?),
            Self::Int8(op) => Ok(x
                .contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, &LinearI8Add(op))?),
            Self::Candle { .. } => Ok((self.forward(x)? + residual)?),
        }
    }
}

/// `nn.LayerNorm` over the last dimension, or SAM's `LayerNorm2d` over NCHW channels.
#[derive(Debug)]
pub(super) enum LayerNorm {
    Native(LayerNormCpu),
    Candle {
        alpha: Tensor,
        beta: Tensor,
        eps: f64,
        axis: NormAxis,
    },
}

impl LayerNorm {
    pub(super) fn load(s: &Scope, t: &Target, n: usize, eps: f64, axis: NormAxis) -> Result<Self> {
        let alpha = s.f32("weight", &[n])?;
        let beta = s.f32("bias", &[n])?;
        if t.native() {
            return Ok(Self::Native(LayerNormCpu::new(
                alpha, beta, eps as f32, axis,
            )));
        }
        Ok(Self::Candle {
            alpha: t.tensor(alpha, &[n])?,
            beta: t.tensor(beta, &[n])?,
            eps,
            axis,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Native(op) => Ok(x.contiguous()?.apply_op1_no_bwd(op)?),
            Self::Candle {
                alpha,
                beta,
                eps,
                axis,
            } => {
                let x = match axis {
                    NormAxis::Last => x.clone(),
                    NormAxis::Channels => x.permute((0, 2, 3, 1))?,
                };
                let last = x.rank() - 1;
                let mean = x.mean_keepdim(last)?;
                let centred = x.broadcast_sub(&mean)?;
                let var = centred.sqr()?.mean_keepdim(last)?;
                let y = centred
                    .broadcast_div(&(var + *eps)?.sqrt()?)?
                    .broadcast_mul(alpha)?
                    .broadcast_add(beta)?;
                Ok(match axis {
                    NormAxis::Last => y,
                    NormAxis::Channels => y.permute((0, 3, 1, 2))?.contiguous()?,
                })
            }
        }
    }
}
