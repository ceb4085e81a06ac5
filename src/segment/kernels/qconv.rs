//! The int8 convolution: per-output-channel symmetric int8 weights, activations quantized per
//! call (dynamic, per tensor, unsigned 8-bit with a zero point), integer products in
//! [`super::qgemm`], f32 out with bias, SiLU and the residual fused as in [`super::ConvCpu`].
//!
//! For an input `x` with range `[lo, hi]` (widened to contain 0), `s_x = (hi - lo) / 255` and
//! `z = round(-lo / s_x)`, so `x ~ s_x * (q - z)` with `q` in `0..=255` and zero exactly
//! representable (the padding is `q = z`). With weights `w ~ s_w[o] * v`:
//!
//! `y[o, j] = s_x * s_w[o] * (sum_k v[o, k] q[k, j] - z * sum_k v[o, k]) + bias[o]`
//!
//! The integer sum is exact; the correction is applied in i32 before the one conversion to f32.
//!
//! No im2col: the input is quantized once into a padded buffer with 4 channels interleaved per
//! pixel (`[c_in / 4][phase][rows][cols][4]`, padding = `z`), the weights are ordered `(tap,
//! channel group, 4 channels)`, and each micro-tile of 32 consecutive output positions reads,
//! for tap `(ky, kx)` and group `g`, 128 contiguous bytes at a fixed offset from the tile's
//! start (implicit GEMM). Output positions run over the padded width (`v = oy * pw + ox`), so a
//! tile may span rows; the columns that fall in the padding are computed and dropped (2-10 %).
//! A stride-2 convolution first splits the padded input into its 4 phases (even/odd rows x
//! even/odd columns): each tap then reads one phase with stride 1, the same way.
//! Dynamic quantization needs no calibration data and adapts to each frame's range; its cost is
//! one min/max pass and one quantizing pass over each convolution's input (both vectorised and
//! spread over the threads).
//!
//! Where the int8 kernel has no dot-product instruction (AVX2), a 3x3 stride-1 layer of >= 32
//! channels runs as f32 Winograd F(4x4) over its dequantized weights on maps where that applies
//! ([`f32_winograd_wins`]): there it is faster than any int8 product without a dot product.

use super::act::dequant_tile;
use super::conv::{f32_contiguous, winograd_tile, OutPtr};
use super::profile;
use super::qgemm::{interleave4, Kernel, Offsets, PackedWeights, MR, NR};
use super::sgemm;
use super::winograd::{Tile, Winograd};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use rayon::prelude::*;
use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    /// The calling thread's quantized, interleaved input, taken out while in use (so that a
    /// nested call on the same thread would allocate rather than panic) and reused across calls.
    static QINPUT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Symmetric per-row int8 quantization of `w` (`[rows, per_row]`): values in -127..=127 and one
/// scale per row (`w ~ scale * v`; 1 for an all-zero row).
pub(crate) fn quantize_rows(w: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let per_row = w.len() / rows.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for row in w.chunks_exact(per_row.max(1)).take(rows) {
        let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if amax > 0.0 && amax.is_finite() {
            amax / 127.0
        } else {
            1.0
        };
        q.extend(
            row.iter()
                .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(s);
    }
    (q, scales)
}

/// A folded convolution with int8 weights; see the module doc. Same geometry as
/// [`super::ConvCpu`]: odd kernel, "same" padding, stride `s`.
#[derive(Debug)]
pub(crate) struct ConvI8 {
    weight: PackedWeights,
    /// Per output channel: `w ~ scale * v`.
    scale: Vec<f32>,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    silu: bool,
    /// A 3x3 stride-1 layer on a CPU whose int8 kernel has no dot-product instruction: its
    /// weights (row-major, int8) and, built on the first map where Winograd F(4x4) applies,
    /// the same dequantized weights transformed for it; see [`f32_winograd_wins`].
    winograd: Option<(Vec<i8>, OnceLock<Winograd>)>,
}

/// Whether a 3x3 stride-1 int8 layer runs as f32 Winograd F(4x4) where that applies. With
/// AVX2's `vpmaddwd` (16 products per instruction, twice an f32 FMA's 8) the direct int8
/// product does 9 multiplies per output where F(4x4) does 2.25: per layer at 640 the f32
/// Winograd saved 18 ms a frame over 12 yolov8n shapes and lost 0.5 ms over 6 small ones, and
/// 0.7 ms on the 16-channel layers, which stay int8 (docs/PERFORMANCE.md, "int8 against f32,
/// layer by layer"). With a dot-product instruction (VNNI, `sdot`: 4x an
/// FMA's products) the int8 kernel stays; plain NEON (Cortex-A72) is not measured and stays
/// too. `EDGESIFT_INT8_WINOGRAD=off` keeps every int8 layer on the int8 kernel.
fn f32_winograd_wins(kernel: Kernel) -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    let no_dot_product = kernel == Kernel::Avx2;
    #[cfg(not(target_arch = "x86_64"))]
    let no_dot_product = {
        let _ = kernel;
        false
    };
    no_dot_product
        && sgemm::available()
        && !*OFF.get_or_init(|| {
            std::env::var("EDGESIFT_INT8_WINOGRAD").is_ok_and(|v| v == "off" || v == "0")
        })
}

impl ConvI8 {
    /// `weight` is `[c_out, c_in, k, k]` flattened, `scale` and `bias` have `c_out` values.
    pub(crate) fn new(
        weight: &[i8],
        scale: Vec<f32>,
        bias: Vec<f32>,
        c_in: usize,
        k: usize,
        stride: usize,
        silu: bool,
    ) -> Self {
        let c_out = bias.len();
        assert_eq!(
            weight.len(),
            c_out * c_in * k * k,
            "weights built by the loader"
        );
        assert_eq!(scale.len(), c_out, "scales built by the loader");
        assert!(
            k % 2 == 1 && stride >= 1,
            "odd kernels with same padding only"
        );
        // K ordered (tap, channel group, 4 channels), channels padded to a multiple of 4.
        let (taps, cg) = (k * k, c_in.div_ceil(4));
        let kk = taps * cg * 4;
        let mut w = vec![0i8; c_out * kk];
        for o in 0..c_out {
            for c in 0..c_in {
                for tap in 0..taps {
                    w[o * kk + (tap * cg + c / 4) * 4 + c % 4] =
                        weight[(o * c_in + c) * taps + tap];
                }
            }
        }
        let packed = PackedWeights::new(&w, c_out, kk, Kernel::best());
        // 16 input channels: the one shape where int8 stayed ahead (3.4 vs 4.1 ms at 160x160).
        let winograd = (k == 3 && stride == 1 && c_in >= 32 && f32_winograd_wins(Kernel::best()))
            .then(|| (weight.to_vec(), OnceLock::new()));
        Self {
            weight: packed,
            scale,
            bias,
            c_in,
            c_out,
            k,
            stride,
            pad: k / 2,
            silu,
            winograd,
        }
    }

    fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let o = |v: usize| (v + 2 * self.pad - self.k) / self.stride + 1;
        (o(h), o(w))
    }

    /// One image, as `ConvCpu::run`.
    fn run(&self, x: &[f32], h: usize, w: usize, out: &mut [f32], residual: Option<&[f32]>) {
        let t0 = profile::start();
        let op = self.run_routed(x, h, w, out, residual);
        profile::record(t0, || {
            let (shape, macs) =
                profile::conv_shape(self.c_in, self.c_out, self.k, self.stride, h, w);
            (op, shape, macs)
        });
    }

    /// [`Self::run`]; returns which way it went.
    fn run_routed(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) -> &'static str {
        if let Some((q, wg)) = &self.winograd {
            if winograd_tile(self.c_in, h, w) == Some(Tile::F4) {
                let wg = wg.get_or_init(|| {
                    let per = self.c_in * 9;
                    let f: Vec<f32> = q
                        .chunks_exact(per)
                        .zip(&self.scale)
                        .flat_map(|(row, &s)| row.iter().map(move |&v| f32::from(v) * s))
                        .collect();
                    Winograd::new(&f, self.c_in, self.c_out, true, Tile::F4)
                });
                wg.run(x, h, w, out, &self.bias, self.silu, residual);
                return "conv int8 as f32 winograd-f4";
            }
        }
        let (oh, ow) = self.out_size(h, w);
        let n = oh * ow;
        debug_assert_eq!(out.len(), self.c_out * n);
        let (s_x, z) = input_range(x);
        let padded = self.c_out.next_multiple_of(MR);
        let pad = |mut v: Vec<f32>| {
            v.resize(padded, 0.0);
            v
        };
        let mut corr: Vec<i32> = self
            .weight
            .row_sums()
            .iter()
            .map(|&s| z as i32 * s)
            .collect();
        corr.resize(padded, 0);
        let ep = Epilogue {
            corr,
            scale: pad(self.scale.iter().map(|&s| s * s_x).collect()),
            bias: pad(self.bias.clone()),
            silu: self.silu,
            out: OutPtr(out.as_mut_ptr()),
            residual: residual.map(|r| OutPtr(r.as_ptr().cast_mut())),
            c_out: self.c_out,
            n,
        };
        let mut xq = QINPUT.take();
        self.run_implicit(x, h, w, s_x, z, &mut xq, &ep);
        QINPUT.set(xq);
        "conv int8"
    }

    /// Row blocks per column tile and the tile width: enough tiles for every thread (2 each),
    /// splitting the output channels too on small maps (as the f32 kernel).
    fn split(&self, cols: usize, mut tn: usize) -> (usize, usize, usize) {
        let threads = rayon::current_num_threads().max(1);
        if cols.div_ceil(tn) < 2 * threads {
            tn = cols.div_ceil(2 * threads).next_multiple_of(NR);
        }
        let tn = tn.min(cols.next_multiple_of(NR));
        let n_tiles = cols.div_ceil(tn);
        let m_blocks = if n_tiles < 2 * threads {
            (2 * threads).div_ceil(n_tiles).min(self.c_out / 16).max(1)
        } else {
            1
        };
        (tn, n_tiles, m_blocks)
    }

    /// Implicit GEMM over the channel-interleaved, phase-split input; see the module doc.
    #[allow(clippy::too_many_arguments)]
    fn run_implicit(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        s_x: f32,
        z: u8,
        xq: &mut Vec<u8>,
        ep: &Epilogue,
    ) {
        let (k, p, s) = (self.k, self.pad, self.stride);
        let (hp, wp) = (h + 2 * p, w + 2 * p);
        // Phase (a, b) holds padded pixels (s * i + a, s * j + b): a stride-s tap becomes a
        // stride-1 shift inside one phase.
        let (ph, pw) = (hp.div_ceil(s), wp.div_ceil(s));
        let cg = self.c_in.div_ceil(4);
        // Pixels per phase plane, with room for the last tile's overhang.
        let plane = ph * pw + NR + k;
        let group = s * s * plane * 4;
        xq.clear();
        xq.resize(cg * group, z);
        let inv = 1.0 / s_x;
        xq.par_chunks_mut(group).enumerate().for_each(|(g, dst)| {
            let mut rows = vec![z; 4 * w];
            let mut dec = vec![z; 4 * pw];
            for y in 0..h {
                for (t, row) in rows.chunks_exact_mut(w).enumerate() {
                    let c = 4 * g + t;
                    if c < self.c_in {
                        quantize_row(&x[(c * h + y) * w..(c * h + y + 1) * w], inv, z, row);
                    }
                }
                let (a, i) = ((y + p) % s, (y + p) / s);
                for b in 0..s {
                    // Columns j of phase (a, b) hold input x = s * j + b - p.
                    let j0 = p.saturating_sub(b).div_ceil(s);
                    let x0 = s * j0 + b - p;
                    if x0 >= w {
                        continue;
                    }
                    let count = (w - x0).div_ceil(s);
                    let src: [&[u8]; 4] = if s == 1 {
                        std::array::from_fn(|t| &rows[t * w..(t + 1) * w])
                    } else {
                        for t in 0..4 {
                            let row = &rows[t * w..(t + 1) * w];
                            for (m, d) in dec[t * pw..t * pw + count].iter_mut().enumerate() {
                                *d = row[x0 + m * s];
                            }
                        }
                        std::array::from_fn(|t| &dec[t * pw..t * pw + count])
                    };
                    let at = ((a * s + b) * plane + i * pw + j0) * 4;
                    interleave4(src, &mut dst[at..at + 4 * count]);
                }
            }
        });
        let mut offs = Vec::with_capacity(k * k * cg);
        for ky in 0..k {
            for kx in 0..k {
                let phase = (ky % s) * s + kx % s;
                for g in 0..cg {
                    offs.push(g * group + (phase * plane + (ky / s) * pw + kx / s) * 4);
                }
            }
        }
        let offs = Offsets::new(offs);

        // Output positions run over the phase width: v = oy * pw + ox.
        let (oh, ow) = self.out_size(h, w);
        let vcols = oh * pw;
        let tn = ((128 * 1024) / (cg * 4)).clamp(NR, 4096) / NR * NR;
        let (tn, n_tiles, m_blocks) = self.split(vcols, tn);
        let mb = self.c_out.div_ceil(m_blocks).next_multiple_of(MR);
        let xq = &xq[..];
        (0..n_tiles * m_blocks).into_par_iter().for_each(|t| {
            let (ti, mi) = (t / m_blocks, t % m_blocks);
            let (v0, m0) = (ti * tn, mi * mb);
            let (v1, m1) = ((v0 + tn).min(vcols), (m0 + mb).min(self.c_out));
            let mut acc = [0i32; MR * NR];
            let mut tile = [[0f32; NR]; MR];
            for rb in m0 / MR..m1.div_ceil(MR) {
                let rows = (m1 - rb * MR).min(MR);
                for b in (v0..v1).step_by(NR) {
                    self.weight.micro(rb, &xq[b * 4..], &offs, &mut acc);
                    ep.tile(rb, &acc, &mut tile);
                    // Runs of valid output positions in b..b + NR: split at row ends, drop the
                    // columns past the output width.
                    let end = (b + NR).min(v1);
                    let mut v = b;
                    while v < end {
                        let (oy, ox) = (v / pw, v % pw);
                        let run_end = end.min((oy + 1) * pw);
                        if ox < ow {
                            let len = (run_end - v).min(ow - ox);
                            ep.store(rb * MR, rows, oy * ow + ox, &tile, v - b, len);
                        }
                        v = run_end;
                    }
                }
            }
        });
    }

    /// Checks the input, allocates the output, runs each image (as `ConvCpu::forward`).
    fn forward(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "input")?;
        let (b, c, h, w) = layout.shape().dims4()?;
        if c != self.c_in {
            candle_core::bail!(
                "edgesift-conv2d-int8: {c} input channels, the weights take {}",
                self.c_in
            );
        }
        let (oh, ow) = self.out_size(h, w);
        let shape = Shape::from((b, self.c_out, oh, ow));
        let res = match residual {
            Some((s, l)) => {
                if l.shape() != &shape {
                    candle_core::bail!(
                        "edgesift-conv2d-int8: residual {:?}, output {:?}",
                        l.shape(),
                        shape
                    );
                }
                Some(f32_contiguous(s, l, "residual")?)
            }
            None => None,
        };
        let (per_in, per_out) = (c * h * w, self.c_out * oh * ow);
        let mut out = super::output_buffer(b * per_out);
        for (i, (xi, oi)) in x
            .chunks_exact(per_in)
            .zip(out.chunks_exact_mut(per_out))
            .enumerate()
        {
            self.run(
                xi,
                h,
                w,
                oi,
                res.map(|r| &r[i * per_out..(i + 1) * per_out]),
            );
        }
        Ok((CpuStorage::F32(out), shape))
    }
}

/// Dequantization constants of one call and where its outputs go.
struct Epilogue {
    /// `z * sum_k v[o, k]` per output channel, padded to a multiple of `MR` (zeros).
    corr: Vec<i32>,
    /// `s_x * s_w[o]`, padded likewise.
    scale: Vec<f32>,
    /// Padded likewise.
    bias: Vec<f32>,
    silu: bool,
    out: OutPtr,
    residual: Option<OutPtr>,
    /// Output channels.
    c_out: usize,
    /// Output positions per channel.
    n: usize,
}

impl Epilogue {
    /// Dequantizes micro-tile `acc` of row block `rb` (bias and activation applied).
    fn tile(&self, rb: usize, acc: &[i32; MR * NR], out: &mut [[f32; NR]; MR]) {
        let r = rb * MR..(rb + 1) * MR;
        let as_rows: &[[i32; NR]; MR] = as_tile_rows(acc);
        let fixed = |v: &[f32]| -> [f32; MR] { std::array::from_fn(|i| v[i]) };
        let corr: [i32; MR] = std::array::from_fn(|i| self.corr[r.start + i]);
        dequant_tile(
            as_rows,
            &corr,
            &fixed(&self.scale[r.clone()]),
            &fixed(&self.bias[r]),
            self.silu,
            out,
        );
    }

    /// Writes columns `j..j + len` of the dequantized tile's first `rows` rows to output
    /// channels `o0..o0 + rows`, positions `pos..pos + len`, adding the residual.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &self,
        o0: usize,
        rows: usize,
        pos: usize,
        tile: &[[f32; NR]; MR],
        j: usize,
        len: usize,
    ) {
        assert!(pos + len <= self.n && o0 + rows <= self.c_out && rows <= MR && j + len <= NR);
        for (r, t) in tile.iter().enumerate().take(rows) {
            let at = (o0 + r) * self.n + pos;
            // SAFETY: in bounds (asserted); each (channel, position) belongs to one tile, so no
            // other thread writes it; the residual has the output's layout and is only read.
            let dst = unsafe { std::slice::from_raw_parts_mut(self.out.at(at), len) };
            let src = &t[j..j + len];
            match self.residual {
                None => dst.copy_from_slice(src),
                Some(res) => {
                    // SAFETY: as above.
                    let res = unsafe { std::slice::from_raw_parts(res.at(at).cast_const(), len) };
                    for ((d, s), x) in dst.iter_mut().zip(src).zip(res) {
                        *d = s + x;
                    }
                }
            }
        }
    }
}

/// `[i32; MR * NR]` viewed as `MR` rows of `NR`.
fn as_tile_rows(acc: &[i32; MR * NR]) -> &[[i32; NR]; MR] {
    // SAFETY: same size and alignment (arrays of i32 have no padding).
    unsafe { &*(acc as *const [i32; MR * NR]).cast::<[[i32; NR]; MR]>() }
}

/// The quantization of `x`: its range widened to contain 0 (non-finite values ignored), scale
/// `(hi - lo) / 255` (1 for an all-zero input) and zero point.
fn input_range(x: &[f32]) -> (f32, u8) {
    const CHUNK: usize = 64 * 1024;
    let (lo, hi) = x
        .par_chunks(CHUNK)
        .map(|c| {
            c.iter().fold((0f32, 0f32), |(lo, hi), &v| {
                let v = if v.is_finite() { v } else { 0.0 };
                (lo.min(v), hi.max(v))
            })
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    let s = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    (s, (-lo / s).round().clamp(0.0, 255.0) as u8)
}

/// `q[i] = clamp(round(x[i] / s) + z)`, `inv = 1 / s`; NaN becomes `z`, infinities clamp.
pub(super) fn quantize_row(x: &[f32], inv: f32, z: u8, q: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(x: &[f32], inv: f32, z: u8, q: &mut [u8]) {
            quantize_row_generic(x, inv, z, q)
        }
        // SAFETY: AVX2 was just detected.
        return unsafe { avx2(x, inv, z, q) };
    }
    quantize_row_generic(x, inv, z, q)
}

#[inline(always)]
fn quantize_row_generic(x: &[f32], inv: f32, z: u8, q: &mut [u8]) {
    let zf = z as f32;
    for (q, &v) in q.iter_mut().zip(x) {
        let v = if v.is_nan() { 0.0 } else { v };
        let t = (v * inv + zf).clamp(0.0, 255.0) + 0.5;
        // SAFETY: t is in [0.5, 255.5], so its truncation fits u32 (and u8).
        *q = unsafe { t.to_int_unchecked::<u32>() } as u8;
    }
}

/// [`quantize_row`] over a whole tensor, spread over the threads.
#[cfg(test)]
fn quantize_plain(x: &[f32], s: f32, z: u8, q: &mut [u8]) {
    const CHUNK: usize = 64 * 1024;
    let inv = 1.0 / s;
    q.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(q, x)| quantize_row(x, inv, z, q));
}

impl CustomOp1 for ConvI8 {
    fn name(&self) -> &'static str {
        "edgesift-conv2d-int8"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward(storage, layout, None)
    }
}

/// [`ConvI8`] with the bottleneck shortcut added after the activation (as `ConvAdd`).
pub(crate) struct ConvI8Add<'a>(pub(crate) &'a ConvI8);

impl CustomOp2 for ConvI8Add<'_> {
    fn name(&self) -> &'static str {
        "edgesift-conv2d-int8-add"
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

    /// Against candle's f32 conv2d + bias + SiLU (+ residual) with the same (quantized, then
    /// dequantized) weights: the only difference left is the input's 8-bit rounding, at most
    /// `s_x / 2` per value, so the error is bounded by `s_x / 2 * sum |w|` per output.
    #[test]
    fn matches_candle_conv_within_the_quantization_step() {
        let cases = [
            // (c_in, c_out, k, stride, h, w, silu)
            (3, 16, 3, 2, 33, 47, true),
            (16, 32, 3, 1, 20, 24, true),
            (32, 48, 1, 1, 17, 9, true),
            (24, 8, 3, 2, 8, 8, false),
            (64, 64, 3, 1, 5, 7, true),
            (8, 144, 1, 1, 40, 40, false),
            (5, 13, 3, 1, 9, 11, true),
            // Where the CPU's int8 kernel has no dot product: the f32 Winograd route.
            (32, 40, 3, 1, 14, 18, true),
        ];
        for (i, &(ci, co, k, s, h, w, silu)) in cases.iter().enumerate() {
            for int8_only in [false, true] {
                let wf = values(co * ci * k * k, i as u64 + 1);
                let (wq, ws) = quantize_rows(&wf, co);
                let wd: Vec<f32> = wq
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| v as f32 * ws[j / (ci * k * k)])
                    .collect();
                let bv = values(co, i as u64 + 100);
                // Inputs in [-0.3, 1.7]: a zero point that is not 0.
                let xv: Vec<f32> = values(2 * ci * h * w, i as u64 + 200)
                    .iter()
                    .map(|v| v + 0.7)
                    .collect();
                let s_x = 2.0 / 255.0;
                let dev = Device::Cpu;
                let x = Tensor::from_vec(xv, (2, ci, h, w), &dev).unwrap();
                let wt = Tensor::from_vec(wd.clone(), (co, ci, k, k), &dev).unwrap();
                let bt = Tensor::from_vec(bv.clone(), (1, co, 1, 1), &dev).unwrap();
                let mut want = x
                    .conv2d(&wt, k / 2, s, 1, 1)
                    .unwrap()
                    .broadcast_add(&bt)
                    .unwrap();
                if silu {
                    want = want.silu().unwrap();
                }
                let amax: Vec<f32> = ws.iter().map(|s| s * 127.0).collect();
                let mut op = ConvI8::new(&wq, ws.clone(), bv.clone(), ci, k, s, silu);
                if int8_only {
                    op.winograd = None;
                }
                let got = x.apply_op1_no_bwd(&op).unwrap();
                let routed = op
                    .winograd
                    .as_ref()
                    .is_some_and(|(_, wg)| wg.get().is_some());
                assert_eq!(
                    routed,
                    !int8_only && i == cases.len() - 1 && f32_winograd_wins(Kernel::best()),
                    "case {i}: the f32 Winograd route"
                );
                assert_eq!(got.dims(), want.dims(), "case {i}");
                let (oh, ow) = (got.dims()[2], got.dims()[3]);
                let r =
                    Tensor::from_vec(values(2 * co * oh * ow, 9), (2, co, oh, ow), &dev).unwrap();
                let got_add = x.apply_op2_no_bwd(&r, &ConvI8Add(&op)).unwrap();
                let want_add = (&want + &r).unwrap();
                for (got, want) in [(got, want), (got_add, want_add)] {
                    let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    for (j, (g, wv)) in got.iter().zip(&want).enumerate() {
                        let o = (j / (oh * ow)) % co;
                        let l1: f32 = wd[o * ci * k * k..(o + 1) * ci * k * k]
                            .iter()
                            .map(|v| v.abs())
                            .sum();
                        // Half a step per input value (a whole one where the top clamps), times
                        // the weights, times SiLU's largest slope (1.1).
                        let bound = 1.1 * s_x * (l1 + amax[o]) / 2.0 + 1e-4;
                        assert!(
                            (g - wv).abs() <= bound,
                            "case {i} value {j}: {g} vs {wv} (bound {bound})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn quantizes_rows_symmetrically() {
        let (q, s) = quantize_rows(&[0.5, -1.0, 0.25, 0.0, 0.0, 0.0], 2);
        assert_eq!(q, vec![64, -127, 32, 0, 0, 0]);
        assert_eq!(s, vec![1.0 / 127.0, 1.0]);
    }

    #[test]
    fn input_zero_is_exact_and_nan_is_zero() {
        let x = [-0.3f32, 0.0, 1.7, f32::NAN, f32::INFINITY, 0.9];
        let mut q = [0u8; 6];
        let (s, z) = input_range(&x);
        quantize_plain(&x, s, z, &mut q);
        assert!((s - 2.0 / 255.0).abs() < 1e-6, "{s}");
        assert_eq!(q[1], z);
        assert_eq!(q[3], z);
        assert_eq!((q[0], q[2], q[4]), (0, 255, 255));
        assert!(((q[5] as f32 - z as f32) * s - 0.9).abs() <= s / 2.0);
    }
}
