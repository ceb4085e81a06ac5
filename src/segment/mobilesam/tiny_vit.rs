//! MobileSAM's image encoder: TinyViT-5M at 1024x1024 with SAM's neck, read from the tensor names
//! of `mobile_sam/modeling/tiny_vit_sam.py` (`image_encoder.*`).
//!
//! Shapes through the network (batch 1): patch embedding to `[64, 256, 256]`; stage 0 (MBConv)
//! and a patch merge to `128 @ 128x128`; stages 1-3 (windowed attention + depthwise local conv +
//! MLP) with merges to `160 @ 64x64` and `320 @ 64x64` (the last merge keeps the resolution, as
//! upstream does for 320 channels); the neck maps to the `[256, 64, 64]` image embedding.
//! Between stages tokens are kept as `[b, h, w, c]`.

use super::nn::{Conv, LayerNorm, Linear};
use crate::segment::kernels::{NormAxis, WindowAttentionCpu};
use crate::segment::layers::Target;
use crate::segment::weights::Scope;
use crate::segment::SegmentError;
use candle_core::Tensor;

type Result<T> = std::result::Result<T, SegmentError>;

pub(super) const EMBED_DIMS: [usize; 4] = [64, 128, 160, 320];
const DEPTHS: [usize; 4] = [2, 2, 6, 2];
const NUM_HEADS: [usize; 4] = [2, 4, 5, 10];
const WINDOW_SIZES: [usize; 4] = [7, 7, 14, 7];
const MLP_RATIO: usize = 4;
const MBCONV_EXPAND: usize = 4;
/// `nn.LayerNorm`'s default epsilon (attention and MLP norms).
const LN_EPS: f64 = 1e-5;
/// `LayerNorm2d`'s epsilon (the neck).
const LN2D_EPS: f64 = 1e-6;
/// Channels of the image embedding.
pub(super) const OUT_CHANS: usize = 256;

/// TinyViT's inverted residual block: 1x1 expand, 3x3 depthwise, 1x1 project, shortcut, GELU.
#[derive(Debug)]
struct MbConv {
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
}

impl MbConv {
    fn load(s: &Scope, t: &Target, dim: usize) -> Result<Self> {
        let hidden = dim * MBCONV_EXPAND;
        Ok(Self {
            conv1: Conv::load_bn(&s.pp("conv1"), t, dim, hidden, 1, 1, 1, true)?,
            conv2: Conv::load_bn(&s.pp("conv2"), t, hidden, hidden, 3, 1, hidden, true)?,
            conv3: Conv::load_bn(&s.pp("conv3"), t, hidden, dim, 1, 1, 1, false)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv2.forward(&self.conv1.forward(x)?)?;
        super::nn::gelu(&self.conv3.forward_add(&y, x)?)
    }
}

/// 1x1 conv, GELU, 3x3 depthwise (stride 2, or 1 into 320/448/576 channels), GELU, 1x1 conv.
#[derive(Debug)]
struct PatchMerging {
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
}

impl PatchMerging {
    fn load(s: &Scope, t: &Target, dim: usize, out: usize) -> Result<Self> {
        let stride = if matches!(out, 320 | 448 | 576) { 1 } else { 2 };
        Ok(Self {
            conv1: Conv::load_bn(&s.pp("conv1"), t, dim, out, 1, 1, 1, true)?,
            conv2: Conv::load_bn(&s.pp("conv2"), t, out, out, 3, stride, out, true)?,
            conv3: Conv::load_bn(&s.pp("conv3"), t, out, out, 1, 1, 1, false)?,
        })
    }

    /// NCHW in, `[b, h, w, c]` out.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self
            .conv3
            .forward(&self.conv2.forward(&self.conv1.forward(x)?)?)?;
        Ok(y.permute((0, 2, 3, 1))?.contiguous()?)
    }
}

/// Multi-head self-attention inside one window, with a learned bias per head and per
/// (|dy|, |dx|) offset between the two positions.
#[derive(Debug)]
struct Attention {
    norm: LayerNorm,
    qkv: Linear,
    proj: Linear,
    /// `[heads, n, n]`, the offset biases gathered once at load.
    bias: Tensor,
    /// The whole attention in one kernel (f32 on the CPU).
    fused: Option<WindowAttentionCpu>,
    heads: usize,
    key_dim: usize,
    scale: f64,
}

impl Attention {
    fn load(s: &Scope, t: &Target, dim: usize, heads: usize, window: usize) -> Result<Self> {
        let key_dim = dim / heads;
        let n = window * window;
        // Offsets numbered in order of first appearance, exactly as upstream's dict does.
        let points: Vec<(usize, usize)> = (0..window)
            .flat_map(|y| (0..window).map(move |x| (y, x)))
            .collect();
        let mut ids = std::collections::HashMap::new();
        let mut idxs = Vec::with_capacity(n * n);
        for p1 in &points {
            for p2 in &points {
                let off = (p1.0.abs_diff(p2.0), p1.1.abs_diff(p2.1));
                let next = ids.len();
                idxs.push(*ids.entry(off).or_insert(next));
            }
        }
        let n_off = ids.len();
        let table = s.f32("attention_biases", &[heads, n_off])?;
        let mut bias = Vec::with_capacity(heads * n * n);
        for h in 0..heads {
            bias.extend(idxs.iter().map(|&i| table[h * n_off + i]));
        }
        let scale = (key_dim as f64).powf(-0.5);
        let fused = t
            .native()
            .then(|| WindowAttentionCpu::new(bias.clone(), heads, key_dim, n, scale as f32));
        Ok(Self {
            norm: LayerNorm::load(&s.pp("norm"), t, dim, LN_EPS, NormAxis::Last)?,
            qkv: Linear::load(&s.pp("qkv"), t, dim, 3 * dim)?,
            proj: Linear::load(&s.pp("proj"), t, dim, dim)?,
            bias: t.tensor(bias, &[heads, n, n])?,
            fused,
            heads,
            key_dim,
            scale,
        })
    }

    /// `[windows, n, dim]` -> same.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (bw, n, dim) = x.dims3()?;
        let (h, kd) = (self.heads, self.key_dim);
        let qkv = self.qkv.forward(&self.norm.forward(x)?)?;
        if let Some(op) = &self.fused {
            return self.proj.forward(&qkv.contiguous()?.apply_op1_no_bwd(op)?);
        }
        // Per head, the projection is laid out [q | k | v].
        let qkv = qkv.reshape((bw, n, h, 3 * kd))?;
        let part = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(3, i * kd, kd)?
                .permute((0, 2, 1, 3))?
                .contiguous()?)
        };
        let (q, k, v) = (part(0)?, part(1)?, part(2)?);
        let attn = ((q.matmul(&k.t()?)? * self.scale)?).broadcast_add(&self.bias)?;
        let attn = candle_nn::ops::softmax_last_dim(&attn)?;
        let y = attn.matmul(&v)?.transpose(1, 2)?.reshape((bw, n, dim))?;
        self.proj.forward(&y)
    }
}

#[derive(Debug)]
struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(s: &Scope, t: &Target, dim: usize) -> Result<Self> {
        Ok(Self {
            norm: LayerNorm::load(&s.pp("norm"), t, dim, LN_EPS, NormAxis::Last)?,
            fc1: Linear::load_act(&s.pp("fc1"), t, dim, dim * MLP_RATIO, true)?,
            fc2: Linear::load(&s.pp("fc2"), t, dim * MLP_RATIO, dim)?,
        })
    }

    /// `x + mlp(x)`.
    fn forward_residual(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.fc1.forward(&self.norm.forward(x)?)?;
        self.fc2.forward_add(&y, x)
    }
}

#[derive(Debug)]
struct Block {
    attn: Attention,
    local_conv: Conv,
    mlp: Mlp,
    window: usize,
}

impl Block {
    fn load(s: &Scope, t: &Target, dim: usize, heads: usize, window: usize) -> Result<Self> {
        Ok(Self {
            attn: Attention::load(&s.pp("attn"), t, dim, heads, window)?,
            local_conv: Conv::load_bn(&s.pp("local_conv"), t, dim, dim, 3, 1, dim, false)?,
            mlp: Mlp::load(&s.pp("mlp"), t, dim)?,
            window,
        })
    }

    /// `[b, h, w, c]` -> same.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, c) = x.dims4()?;
        let ws = self.window;
        let (pad_b, pad_r) = ((ws - h % ws) % ws, (ws - w % ws) % ws);
        // Zero padding joins the attention as keys, as upstream's F.pad does.
        let xp = x.pad_with_zeros(1, 0, pad_b)?.pad_with_zeros(2, 0, pad_r)?;
        let (ph, pw) = (h + pad_b, w + pad_r);
        let (nh, nw) = (ph / ws, pw / ws);
        let windows = xp
            .reshape((b, nh, ws, nw, ws, c))?
            .permute((0, 1, 3, 2, 4, 5))?
            .contiguous()?
            .reshape((b * nh * nw, ws * ws, c))?;
        let y = self
            .attn
            .forward(&windows)?
            .reshape((b, nh, nw, ws, ws, c))?
            .permute((0, 1, 3, 2, 4, 5))?
            .contiguous()?
            .reshape((b, ph, pw, c))?;
        let y = if pad_b > 0 || pad_r > 0 {
            y.narrow(1, 0, h)?.narrow(2, 0, w)?
        } else {
            y
        };
        let x = (x + y)?;
        let conv = self
            .local_conv
            .forward(&x.permute((0, 3, 1, 2))?.contiguous()?)?;
        let x = conv.permute((0, 2, 3, 1))?.contiguous()?;
        self.mlp.forward_residual(&x)
    }
}

/// The image encoder: `[b, 3, 1024, 1024]` normalised pixels to `[b, 256, 64, 64]`.
#[derive(Debug)]
pub(super) struct TinyVit {
    embed: [Conv; 2],
    stage0: Vec<MbConv>,
    merges: Vec<PatchMerging>,
    stages: Vec<Vec<Block>>,
    neck_conv1: Conv,
    neck_norm1: LayerNorm,
    neck_conv2: Conv,
    neck_norm2: LayerNorm,
}

impl TinyVit {
    pub(super) fn load(s: &Scope, t: &Target) -> Result<Self> {
        let d = EMBED_DIMS;
        let pe = s.pp("patch_embed.seq");
        let embed = [
            Conv::load_bn(&pe.pp(0), t, 3, d[0] / 2, 3, 2, 1, true)?,
            Conv::load_bn(&pe.pp(2), t, d[0] / 2, d[0], 3, 2, 1, false)?,
        ];
        let stage0 = (0..DEPTHS[0])
            .map(|i| MbConv::load(&s.pp(format!("layers.0.blocks.{i}")), t, d[0]))
            .collect::<Result<Vec<_>>>()?;
        let merges = (0..3)
            .map(|i| PatchMerging::load(&s.pp(format!("layers.{i}.downsample")), t, d[i], d[i + 1]))
            .collect::<Result<Vec<_>>>()?;
        let stages = (1..4)
            .map(|l| {
                (0..DEPTHS[l])
                    .map(|i| {
                        let bs = s.pp(format!("layers.{l}.blocks.{i}"));
                        Block::load(&bs, t, d[l], NUM_HEADS[l], WINDOW_SIZES[l])
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let neck = s.pp("neck");
        Ok(Self {
            embed,
            stage0,
            merges,
            stages,
            neck_conv1: Conv::load_plain(&neck.pp(0), t, d[3], OUT_CHANS, 1, false)?,
            neck_norm1: LayerNorm::load(&neck.pp(1), t, OUT_CHANS, LN2D_EPS, NormAxis::Channels)?,
            neck_conv2: Conv::load_plain(&neck.pp(2), t, OUT_CHANS, OUT_CHANS, 3, false)?,
            neck_norm2: LayerNorm::load(&neck.pp(3), t, OUT_CHANS, LN2D_EPS, NormAxis::Channels)?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let _span = tracing::trace_span!("tiny_vit").entered();
        let mut x = self.embed[1].forward(&self.embed[0].forward(x)?)?;
        for blk in &self.stage0 {
            x = blk.forward(&x)?;
        }
        let mut x = self.merges[0].forward(&x)?;
        for (i, stage) in self.stages.iter().enumerate() {
            for blk in stage {
                x = blk.forward(&x)?;
            }
            if let Some(merge) = self.merges.get(i + 1) {
                x = merge.forward(&x.permute((0, 3, 1, 2))?.contiguous()?)?;
            }
        }
        let x = x.permute((0, 3, 1, 2))?.contiguous()?;
        let x = self.neck_norm1.forward(&self.neck_conv1.forward(&x)?)?;
        self.neck_norm2.forward(&self.neck_conv2.forward(&x)?)
    }
}
