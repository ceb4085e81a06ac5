//! CPU kernels for the network's hot layers, used through candle's custom-op interface so that
//! the model code stays ordinary candle tensor code.
//!
//! - [`ConvCpu`]: a 2-D convolution (BatchNorm folded) with bias and SiLU fused, f32, NCHW. A 1x1
//!   stride-1 convolution is one matrix product straight on the input; others gather a tile of
//!   input patches (im2col) at a time, so the patch matrix stays in cache, and multiply it with
//!   `sgemm` (own AVX2 + FMA micro-kernel, weights packed once at load, bias, SiLU and an
//!   optional residual ([`ConvAdd`], the bottleneck shortcut) applied on the accumulators) or,
//!   on CPUs without AVX2 + FMA, with the `gemm` crate (candle's own matrix kernel) followed by
//!   the same epilogue over the output tile while it is in cache; a 3x3 stride-1 convolution on
//!   all but the smallest maps runs as Winograd F(4x4, 3x3) or F(2x2, 3x3) instead (`winograd`:
//!   36 or 16 products with 4x or 2.25x fewer MACs, transforms around them). Tiles are spread
//!   over rayon's pool (`RAYON_NUM_THREADS`).
//! - [`ConvI8`]: the same convolution with int8 weights (per output channel) and activations
//!   quantized per call, multiplied by the integer kernels of `qgemm` (AVX-512 VNNI, AVX2, NEON
//!   with or without `sdot`, scalar; chosen at run time).
//! - [`Upsample2xCpu`]: the Proto's 2x transposed convolution as one product and a scatter.
//! - [`concat_channels`], [`pool_pyramid`], [`decode_f32`]: the network's concatenations (with
//!   the neck's nearest upsample fused in), SPPF's pools and the head's decode, on rayon's pool
//!   instead of candle's serial ops; plain functions over the tensors' CPU storage.
//! - For MobileSAM: [`DepthwiseCpu`] (TinyViT's depthwise convolutions, GELU fused), [`GeluCpu`]
//!   (exact erf GELU), [`LayerNormCpu`] (two-pass, last axis or NCHW channels) and
//!   [`WindowAttentionCpu`] (TinyViT's windowed attention, one task per window and head),
//!   [`LinearCpu`] (token-row products with bias, GELU or a residual fused), and [`LinearI8`],
//!   the same with int8 weights and per-token activation scales (quantized MobileSAM).
//!
//! candle's generic `conv2d` re-lays out its input and kernel on every call and runs bias and
//! activation as separate passes over fresh tensors; see docs/PERFORMANCE.md for the figures.

mod act;
mod attention;
mod concat;
mod conv;
mod cpu_f32;
mod decode;
mod depthwise;
mod gelu;
mod linear;
mod norm;
mod pool;
pub(crate) mod profile;
mod qconv;
mod qgemm;
mod qlinear;
mod sgemm;
mod upsample;
mod winograd;

pub(crate) use attention::WindowAttentionCpu;
pub(crate) use concat::{concat_channels, Part};
pub(crate) use conv::{ConvAdd, ConvCpu};
pub(crate) use decode::{decode_f32, Level};
pub(crate) use depthwise::DepthwiseCpu;
pub(crate) use gelu::GeluCpu;
pub(crate) use linear::{LinearAdd, LinearCpu};
pub(crate) use norm::{LayerNormCpu, NormAxis};
pub(crate) use pool::pool_pyramid;
pub(crate) use qconv::{quantize_rows, ConvI8, ConvI8Add};
pub(crate) use qlinear::{LinearI8, LinearI8Add};
pub(crate) use upsample::Upsample2xCpu;

/// The output buffer of a kernel that writes every element before anything reads it.
///
/// Not zeroed: `vec![0.0; n]` ran a serial memset (and, on fresh pages, the page faults) on the
/// calling thread while the pool's workers waited, 2-3 % of a frame's CPU at 640. Under `cfg(test)`
/// the buffer is filled with NaN instead, so a kernel that leaves an element unwritten fails
/// its comparison with candle's op.
pub(super) fn output_buffer(n: usize) -> Vec<f32> {
    if cfg!(test) {
        return vec![f32::NAN; n];
    }
    let mut v = Vec::with_capacity(n);
    // SAFETY: the capacity is `n`, and every caller (the kernels of this module) overwrites
    // every element before the buffer is read or handed on, which the NaN fill above checks in
    // the tests; f32 has no invalid bit patterns. candle's CPU backend allocates its op outputs
    // the same way (`alloc_uninit`), hence the lint's exception here.
    #[allow(clippy::uninit_vec)]
    unsafe {
        v.set_len(n)
    };
    v
}
