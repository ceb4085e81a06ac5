//! The layers MobileSAM is built from. Each one is loaded from its PyTorch module's tensors
//! (BatchNorm folded on the host) and runs edgesift's CPU kernels for f32 on the CPU, candle's
//! generic ops elsewhere.

use crate::segment::kernels::{
    ConvAdd, ConvCpu, DepthwiseCpu, GeluCpu, LayerNormCpu, LinearAdd, LinearCpu, NormAxis,
};
use crate::segment::layers::Target;
use crate::segment::weights::Scope;
use crate::segment::SegmentError;
use candle_core::Tensor;

/// `nn.BatchNorm2d`'s default epsilon (TinyViT's `Conv2d_BN`).
const BN_EPS: f64 = 1e-5;

type Result<T> = std::result::Result<T, SegmentError>;

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
        let mut w = s.f32("c.weight", &[c_out, c_in / groups, k, k])?;
        let gamma = s.f32("bn.weight", &[c_out])?;
        let beta = s.f32("bn.bias", &[c_out])?;
        let mean = s.f32("bn.running_mean", &[c_out])?;
        let var = s.f32("bn.running_var", &[c_out])?;
        let per_out = w.len() / c_out;
        let mut bias = Vec::with_capacity(c_out);
        for o in 0..c_out {
            let scale = gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt();
            for v in &mut w[o * per_out..(o + 1) * per_out] {
                *v = (*v as f64 * scale) as f32;
            }
            bias.push((beta[o] as f64 - mean[o] as f64 * scale) as f32);
        }
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
        let w = s.f32("weight", &[c_out, c_in, k, k])?;
        let b = if has_bias {
            s.f32("bias", &[c_out])?
        } else {
            vec![0.0; c_out]
        };
        Self::build(t, w, b, c_in, k, 1, 1, false)
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
            _ => Ok((self.forward(x)? + residual)?),
        }
    }
}

/// `nn.Linear`, applied to the last dimension, optionally followed by exact GELU.
#[derive(Debug)]
pub(super) enum Linear {
    Native(LinearCpu),
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
        let w = s.f32("weight", &[c_out, c_in])?;
        let mut w_t = vec![0f32; w.len()];
        for o in 0..c_out {
            for i in 0..c_in {
                w_t[i * c_out + o] = w[o * c_in + i];
            }
        }
        let bias = s.f32("bias", &[c_out])?;
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
