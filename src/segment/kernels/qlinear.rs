//! The int8 token-row linear layer (MobileSAM's quantized attention and MLP projections):
//! `y[j, o] = sum_k x[j, k] w[o, k] + bias[o]`, with optional exact GELU and residual, as
//! [`super::LinearCpu`] but with int8 weights (symmetric, per output channel) and activations
//! quantized per call and **per token** (row of `x`: its own unsigned 8-bit scale and zero point).
//!
//! Per-token scales matter for transformers: a few tokens with large activations would otherwise
//! set one scale for all of them and flatten the rest to a handful of levels. For token `j` with
//! range `[lo, hi]` (widened to contain 0), `s_j = (hi - lo) / 255`, `z_j = round(-lo / s_j)`,
//! `x[j, k] ~ s_j (q[j, k] - z_j)`; with `w[o, k] ~ s_o v[o, k]`:
//!
//! `y[j, o] = s_j s_o (sum_k v[o, k] q[j, k] - z_j sum_k v[o, k]) + bias[o]`
//!
//! The integer sum is exact ([`super::qgemm`], the kernel chosen at run time, never an
//! instruction the CPU lacks). Tokens are taken [`NR`] at a time: each tile's tokens are quantized
//! and interleaved into the micro-kernel's layout (`[k / 4][NR][4]`, a few KiB, in cache), then
//! multiplied with every row block of the weights; the tile's output rows (contiguous in `y`)
//! get GELU and the residual while in cache. Tiles are spread over rayon's pool.

use super::conv::f32_contiguous;
use super::gelu::gelu_slice;
use super::qconv::quantize_row;
use super::qgemm::{Kernel, Offsets, PackedWeights, MR, NR};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use rayon::prelude::*;

#[derive(Debug)]
pub(crate) struct LinearI8 {
    weight: PackedWeights,
    /// Per output channel, padded to a multiple of [`MR`] (zeros).
    scale: Vec<f32>,
    bias: Vec<f32>,
    row_sums: Vec<i32>,
    c_in: usize,
    c_out: usize,
    gelu: bool,
}

impl LinearI8 {
    /// `weight` is PyTorch's `[c_out, c_in]` (row-major) in -127..=127 with `w ~ scale[o] * v`.
    pub(crate) fn new(
        weight: &[i8],
        scale: Vec<f32>,
        bias: Vec<f32>,
        c_in: usize,
        gelu: bool,
    ) -> Self {
        let c_out = bias.len();
        assert_eq!(weight.len(), c_out * c_in, "weights built by the loader");
        assert_eq!(scale.len(), c_out, "scales built by the loader");
        let packed = PackedWeights::new(weight, c_out, c_in, Kernel::best());
        let padded = c_out.next_multiple_of(MR);
        let pad_f = |mut v: Vec<f32>| {
            v.resize(padded, 0.0);
            v
        };
        let mut row_sums = packed.row_sums().to_vec();
        row_sums.resize(padded, 0);
        Self {
            weight: packed,
            scale: pad_f(scale),
            bias: pad_f(bias),
            row_sums,
            c_in,
            c_out,
            gelu,
        }
    }

    fn forward(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "input")?;
        let dims = layout.shape().dims();
        let (c_in, c_out) = (self.c_in, self.c_out);
        if dims.last() != Some(&c_in) {
            candle_core::bail!("edgesift-linear-int8: input {dims:?}, the weights take {c_in}");
        }
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = c_out;
        }
        let shape = Shape::from(out_dims);
        let res = match residual {
            Some((s, l)) => {
                if l.shape() != &shape {
                    candle_core::bail!(
                        "edgesift-linear-int8: residual {:?}, output {:?}",
                        l.shape(),
                        shape
                    );
                }
                Some(f32_contiguous(s, l, "residual")?)
            }
            None => None,
        };
        let rows = x.len() / c_in.max(1);
        let mut out = vec![0f32; rows * c_out];
        if rows == 0 || c_out == 0 {
            return Ok((CpuStorage::F32(out), shape));
        }
        let kp = c_in.next_multiple_of(4);
        let offs = Offsets::new((0..kp / 4).map(|g| g * NR * 4).collect());
        let blocks = c_out.div_ceil(MR);
        out.par_chunks_mut(NR * c_out).enumerate().for_each_init(
            || (vec![0u8; kp * NR], vec![0u8; kp]),
            |(packed, qrow), (t, dst)| {
                let j0 = t * NR;
                let n = dst.len() / c_out;
                let mut sx = [0f32; NR];
                let mut zs = [0i32; NR];
                for j in 0..n {
                    let row = &x[(j0 + j) * c_in..(j0 + j + 1) * c_in];
                    let (s, z) = token_range(row);
                    sx[j] = s;
                    zs[j] = z as i32;
                    quantize_row(row, 1.0 / s, z, &mut qrow[..c_in]);
                    for (g, q) in qrow.chunks_exact(4).enumerate() {
                        packed[(g * NR + j) * 4..(g * NR + j) * 4 + 4].copy_from_slice(q);
                    }
                }
                let mut acc = [0i32; MR * NR];
                let mut tile = [[0f32; NR]; MR];
                for rb in 0..blocks {
                    self.weight.micro(rb, packed, &offs, &mut acc);
                    let o0 = rb * MR;
                    let m = (c_out - o0).min(MR);
                    let at = |v: &[f32]| -> [f32; MR] { std::array::from_fn(|r| v[o0 + r]) };
                    let sums: [i32; MR] = std::array::from_fn(|r| self.row_sums[o0 + r]);
                    dequant(
                        &acc,
                        &zs,
                        &sx,
                        &at(&self.scale),
                        &at(&self.bias),
                        &sums,
                        &mut tile,
                    );
                    store_transposed(&tile, n, m, &mut dst[o0..], c_out);
                }
                if self.gelu {
                    gelu_slice(dst);
                }
                if let Some(r) = res {
                    let src = &r[j0 * c_out..j0 * c_out + dst.len()];
                    dst.iter_mut().zip(src).for_each(|(v, s)| *v += s);
                }
            },
        );
        Ok((CpuStorage::F32(out), shape))
    }
}

/// `tile[r][j] = (acc[r][j] - z[j] * sums[r]) * (s[j] * scale[r]) + bias[r]`: one micro-tile
/// dequantized channel-major, so that the loops run along the tokens (vectorised; AVX2 chosen at
/// run time on x86-64).
#[allow(clippy::too_many_arguments)]
fn dequant(
    acc: &[i32; MR * NR],
    z: &[i32; NR],
    s: &[f32; NR],
    scale: &[f32; MR],
    bias: &[f32; MR],
    sums: &[i32; MR],
    tile: &mut [[f32; NR]; MR],
) {
    #[inline(always)]
    fn generic(
        acc: &[i32; MR * NR],
        z: &[i32; NR],
        s: &[f32; NR],
        scale: &[f32; MR],
        bias: &[f32; MR],
        sums: &[i32; MR],
        tile: &mut [[f32; NR]; MR],
    ) {
        for (r, row) in tile.iter_mut().enumerate() {
            let (sr, br, cr) = (scale[r], bias[r], sums[r]);
            let a = &acc[r * NR..(r + 1) * NR];
            for j in 0..NR {
                row[j] = (a[j] - z[j] * cr) as f32 * (s[j] * sr) + br;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn avx2(
            acc: &[i32; MR * NR],
            z: &[i32; NR],
            s: &[f32; NR],
            scale: &[f32; MR],
            bias: &[f32; MR],
            sums: &[i32; MR],
            tile: &mut [[f32; NR]; MR],
        ) {
            generic(acc, z, s, scale, bias, sums, tile)
        }
        // SAFETY: the features were just detected.
        return unsafe { avx2(acc, z, s, scale, bias, sums, tile) };
    }
    generic(acc, z, s, scale, bias, sums, tile)
}

/// `dst[j * stride + r] = tile[r][j]` for tokens `j < n` and channels `r < m`: the tile is
/// [channel][token], the output [token][channel]. Full 8x8 blocks go through an AVX transpose
/// when the CPU has it (chosen at run time).
fn store_transposed(tile: &[[f32; NR]; MR], n: usize, m: usize, dst: &mut [f32], stride: usize) {
    #[allow(unused_mut)] // advanced on x86-64 only
    let mut j0 = 0;
    #[cfg(target_arch = "x86_64")]
    if m == MR && MR == 8 && std::arch::is_x86_feature_detected!("avx") {
        while j0 + 8 <= n {
            assert!(dst.len() >= (j0 + 7) * stride + 8);
            // SAFETY: AVX was just detected; reads 8 floats at tile[r][j0..j0 + 8] (j0 + 8 <= n
            // <= NR) and writes 8 floats at dst[(j0 + k) * stride..] (asserted above).
            unsafe { x86_transpose8(tile, j0, dst, stride) };
            j0 += 8;
        }
    }
    for j in j0..n {
        for (r, v) in dst[j * stride..j * stride + m].iter_mut().enumerate() {
            *v = tile[r][j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn x86_transpose8(tile: &[[f32; NR]; MR], j0: usize, dst: &mut [f32], stride: usize) {
    use std::arch::x86_64::*;
    // SAFETY: the caller checked the bounds and AVX.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(tile[i][j0..].as_ptr()));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let cols = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (k, c) in cols.iter().enumerate() {
            _mm256_storeu_ps(dst.as_mut_ptr().add((j0 + k) * stride), *c);
        }
    }
}

/// A token's quantization: its range widened to contain 0 (non-finite values ignored), scale
/// `(hi - lo) / 255` (1 for an all-zero row) and zero point.
fn token_range(row: &[f32]) -> (f32, u8) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(row: &[f32]) -> (f32, u8) {
            token_range_generic(row)
        }
        // SAFETY: AVX2 was just detected.
        return unsafe { avx2(row) };
    }
    token_range_generic(row)
}

#[inline(always)]
fn token_range_generic(row: &[f32]) -> (f32, u8) {
    // Eight running minima and maxima, so that the loop vectorises.
    let (mut lo, mut hi) = ([0f32; 8], [0f32; 8]);
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for t in 0..8 {
            let v = if c[t].is_finite() { c[t] } else { 0.0 };
            lo[t] = if v < lo[t] { v } else { lo[t] };
            hi[t] = if v > hi[t] { v } else { hi[t] };
        }
    }
    for &v in chunks.remainder() {
        let v = if v.is_finite() { v } else { 0.0 };
        lo[0] = lo[0].min(v);
        hi[0] = hi[0].max(v);
    }
    let lo = lo.iter().fold(0f32, |a, &b| a.min(b));
    let hi = hi.iter().fold(0f32, |a, &b| a.max(b));
    let s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    (s, (-lo / s).round().clamp(0.0, 255.0) as u8)
}

impl CustomOp1 for LinearI8 {
    fn name(&self) -> &'static str {
        "edgesift-linear-int8"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward(storage, layout, None)
    }
}

/// `linear(x) + residual` (after the activation, if any), in one pass.
pub(crate) struct LinearI8Add<'a>(pub(crate) &'a LinearI8);

impl CustomOp2 for LinearI8Add<'_> {
    fn name(&self) -> &'static str {
        "edgesift-linear-int8-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.0.forward(s1, l1, Some((s2, l2)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::qconv::quantize_rows;
    use super::*;
    use candle_core::{Device, Tensor};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Against the f32 product with the same (dequantized) weights: the only difference left is
    /// each token's 8-bit rounding, at most half its step per value, so the error of output
    /// `(j, o)` is bounded by `s_j / 2 * sum_k |w[o, k]|` (times GELU's largest slope, 1.13).
    /// Sizes pad `k` to 4, rows to [`MR`] and tokens to [`NR`]; one token is all zeros and one
    /// has a single huge value (its own scale, the others unaffected).
    #[test]
    fn matches_f32_within_each_tokens_step() {
        for (case, &(rows, ci, co, gelu)) in [
            (77usize, 12usize, 9usize, false),
            (40, 64, 256, true),
            (3, 130, 17, false),
            (65, 256, 128, true),
        ]
        .iter()
        .enumerate()
        {
            let dev = Device::Cpu;
            let mut xv: Vec<f32> = values(rows * ci, case as u64 + 1)
                .iter()
                .map(|v| v * 2.0 + 0.3)
                .collect();
            xv[..ci].fill(0.0);
            if rows > 2 {
                xv[ci + 3] = 500.0;
            }
            let wf = values(co * ci, case as u64 + 7);
            let (wq, ws) = quantize_rows(&wf, co);
            let wd: Vec<f32> = wq
                .iter()
                .enumerate()
                .map(|(i, &v)| v as f32 * ws[i / ci])
                .collect();
            let b = values(co, case as u64 + 11);
            let x = Tensor::from_vec(xv.clone(), (1, rows, ci), &dev).unwrap();
            let wt = Tensor::from_vec(wd.clone(), (co, ci), &dev).unwrap();
            let bt = Tensor::from_vec(b.clone(), co, &dev).unwrap();
            let mut want = x
                .reshape((rows, ci))
                .unwrap()
                .matmul(&wt.t().unwrap())
                .unwrap()
                .broadcast_add(&bt)
                .unwrap();
            if gelu {
                want = want.gelu_erf().unwrap();
            }
            let r = Tensor::from_vec(values(rows * co, 5), (1, rows, co), &dev).unwrap();
            let op = LinearI8::new(&wq, ws.clone(), b, ci, gelu);
            let got = x.apply_op1_no_bwd(&op).unwrap();
            assert_eq!(got.dims(), &[1, rows, co]);
            let got_add = x.apply_op2_no_bwd(&r, &LinearI8Add(&op)).unwrap();
            let want = want.reshape((1, rows, co)).unwrap();
            let want_add = (&want + &r).unwrap();
            for (got, want) in [(got, want), (got_add, want_add)] {
                let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for (i, (g, wv)) in got.iter().zip(&want).enumerate() {
                    let (j, o) = (i / co, i % co);
                    let (s, _) = token_range(&xv[j * ci..(j + 1) * ci]);
                    let l1: f32 = wd[o * ci..(o + 1) * ci].iter().map(|v| v.abs()).sum();
                    let bound = 1.13 * s * l1 / 2.0 + 1e-4 * (1.0 + wv.abs());
                    assert!(
                        (g - wv).abs() <= bound,
                        "case {case} ({j}, {o}): {g} vs {wv} (bound {bound})"
                    );
                }
            }
        }
        let op = LinearI8::new(&[1, 2, 3], vec![1.0], vec![0.0], 3, false);
        let bad = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = bad.apply_op1_no_bwd(&op).unwrap_err().to_string();
        assert!(err.contains("weights take 3"), "{err}");
    }
}
