//! Winograd F(2x2, 3x3) for the 3x3 stride-1 convolutions (Lavin & Gray, 2015): each 2x2 block
//! of outputs ("tile") is computed from the 4x4 input patch around it as `A^T [(G g G^T) ⊙
//! (B^T d B)] A`, so the 36 multiplies per input channel and tile of a direct 3x3 become 16: one
//! product per element of the transformed 4x4 tile, which over all channels is 16 matrix
//! products `M_xi [c_out x tiles] = U_xi [c_out x c_in] x V_xi [c_in x tiles]` (2.25x fewer MACs
//! than im2col's `[c_out x 9 c_in] x [9 c_in x pixels]`).
//!
//! The kernel transform `U = G g G^T` is done once at construction. Tiles are taken in blocks
//! (row-major over the `ceil(h/2) x ceil(w/2)` tile grid) sized so that a block's transformed
//! input stays in L2; each block is one rayon task that transforms its input (zero padding 1),
//! runs the 16 products (with `sgemm` on the packed transformed kernels where AVX2 + FMA is
//! there, reading the transformed input in place; with the `gemm` crate elsewhere) and transforms the products back into the output,
//! where bias, SiLU and the residual are applied to the rows just written. Rows and columns past
//! an odd output size are computed and dropped.
//!
//! Accuracy: the transforms only add and halve, so the result differs from the direct sum by
//! rounding alone; against candle's conv2d the largest difference in the tests is ~1e-6 of the
//! output's magnitude (`matches_candle_conv` bounds it at 1e-5).

use super::act::bias_act;
use super::conv::{gemm_tile, with_scratch, OutPtr};
use super::sgemm::{self, PackedLhs, Rhs, NR};
use rayon::prelude::*;

/// Floats of one block's transformed input (`16 x c_in x tiles`): 96 Ki floats = 384 KiB, which
/// with the products (`16 x c_out x tiles`) stays inside a 1 MiB L2.
const BLOCK_FLOATS: usize = 96 * 1024;

/// The transformed kernels of one 3x3 stride-1 convolution.
#[derive(Debug)]
pub(super) struct Winograd {
    u: Transformed,
    c_in: usize,
    c_out: usize,
}

/// 16 matrices `[c_out, c_in]`: the `xi`-th holds element `xi = 4 * row + col` of every
/// (output, input) channel pair's 4x4 `G g G^T`.
#[derive(Debug)]
enum Transformed {
    /// Row-major, one after the other, for the `gemm` crate.
    Plain(Vec<f32>),
    /// Packed for `sgemm`, where its kernel runs.
    Packed(Vec<PackedLhs>),
}

impl Winograd {
    /// `weight` is `[c_out, c_in, 3, 3]` flattened; `packed`: multiply with `sgemm` (which must
    /// be available) rather than the `gemm` crate.
    pub(super) fn new(weight: &[f32], c_in: usize, c_out: usize, packed: bool) -> Self {
        assert_eq!(weight.len(), c_out * c_in * 9, "3x3 weights");
        // G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]], applied to three values.
        let g3 = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
        let mut u = vec![0f32; 16 * c_out * c_in];
        for (pair, g) in weight.chunks_exact(9).enumerate() {
            // G g: the columns of g, transformed (4 rows x 3 columns).
            let cols: [[f32; 4]; 3] = std::array::from_fn(|c| g3(g[c], g[3 + c], g[6 + c]));
            for r in 0..4 {
                // (G g) G^T: each row of G g, transformed.
                let row = g3(cols[0][r], cols[1][r], cols[2][r]);
                for (c, &val) in row.iter().enumerate() {
                    u[(4 * r + c) * c_out * c_in + pair] = val;
                }
            }
        }
        let u = if packed {
            let each = c_out * c_in;
            Transformed::Packed(
                u.chunks_exact(each.max(1))
                    .take(16)
                    .map(|m| PackedLhs::new(m, c_out, c_in))
                    .collect(),
            )
        } else {
            Transformed::Plain(u)
        };
        Self { u, c_in, c_out }
    }

    /// One image: `x` is `[c_in, h, w]`, `out` is `[c_out, h, w]` ("same" padding), then
    /// `act(out + bias) (+ residual)` as in [`bias_act`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        out: &mut [f32],
        bias: &[f32],
        silu: bool,
        residual: Option<&[f32]>,
    ) {
        let (c_in, c_out) = (self.c_in, self.c_out);
        debug_assert_eq!(x.len(), c_in * h * w);
        debug_assert_eq!(out.len(), c_out * h * w);
        debug_assert!(residual.is_none_or(|r| r.len() == out.len()));
        let tw = w.div_ceil(2);
        let n = h.div_ceil(2) * tw;
        let threads = rayon::current_num_threads().max(1);

        // Blocks of tiles as conv.rs sizes its im2col tiles: for the cache, then enough of them
        // for every thread (2 each) while they keep 16 tiles, then split over output channels
        // too. All of equal size: a last block of a few tiles would leave a thread idle.
        let n_blocks = n
            .div_ceil((BLOCK_FLOATS / (16 * c_in)).clamp(16, 512))
            .max((2 * threads).min(n.div_ceil(16)));
        let mut tn = n.div_ceil(n_blocks);
        if matches!(self.u, Transformed::Packed(_)) && tn > NR {
            // Whole panels of `sgemm` (a block of 25 tiles computed 48 columns).
            tn = tn.next_multiple_of(NR);
        }
        let n_blocks = n.div_ceil(tn);
        let m_blocks = if n_blocks < 2 * threads {
            (2 * threads).div_ceil(n_blocks).min(c_out / 16).max(1)
        } else {
            1
        };
        let mb = c_out.div_ceil(m_blocks).next_multiple_of(8);

        let out_ptr = OutPtr(out.as_mut_ptr());
        let residual = residual.map(|r| OutPtr(r.as_ptr().cast_mut()));
        (0..n_blocks * m_blocks).into_par_iter().for_each(|b| {
            let (bi, mi) = (b / m_blocks, b % m_blocks);
            let (t0, m0) = (bi * tn, mi * mb);
            let (t1, m1) = ((t0 + tn).min(n), (m0 + mb).min(c_out));
            if m0 >= m1 {
                return;
            }
            let (cols, rows) = (t1 - t0, m1 - m0);
            // `sgemm` reads the last product's input in whole panels: NR floats of slack.
            let (v_len, m_len) = (16 * c_in * cols + NR, 16 * rows * cols);
            with_scratch(v_len + m_len + 8 * (tw + 1), |s| {
                let (v, s) = s.split_at_mut(v_len);
                let (m, work) = s.split_at_mut(m_len);
                transform_input(x, h, w, c_in, t0, t1, v, work);
                for xi in 0..16 {
                    let dst = m[xi * rows * cols..].as_mut_ptr();
                    let vx = &v[xi * c_in * cols..];
                    match &self.u {
                        // SAFETY: dst is the xi-th [rows, cols] product (row stride cols); m0 is
                        // a multiple of 8; V_xi is [c_in, cols] at row stride cols, with the
                        // slack after it.
                        Transformed::Packed(u) => unsafe {
                            sgemm::gemm_packed(
                                &u[xi],
                                m0,
                                rows,
                                Rhs::rows(vx, cols),
                                cols,
                                dst,
                                cols,
                                None,
                            )
                        },
                        Transformed::Plain(u) => {
                            let u = &u[(xi * c_out + m0) * c_in..];
                            // SAFETY: dst as above, lhs rows m0..m1 of U_xi ([c_out, c_in], row
                            // stride c_in), rhs V_xi ([c_in, cols], row stride cols).
                            unsafe {
                                gemm_tile(
                                    rows,
                                    cols,
                                    c_in,
                                    dst,
                                    cols,
                                    u.as_ptr(),
                                    vx.as_ptr(),
                                    cols,
                                )
                            };
                        }
                    }
                }
                let block = Block { t0, t1, m0, m1 };
                // SAFETY: the block writes output channels m0..m1 of its own tiles only, and
                // reads the residual at the same places.
                unsafe {
                    transform_output(
                        m,
                        h,
                        w,
                        &block,
                        out_ptr,
                        &bias[m0..m1],
                        silu,
                        residual,
                        work,
                    )
                };
            });
        });
    }
}

/// One task's tiles (`t0..t1`, row-major over the tile grid) and output channels (`m0..m1`).
struct Block {
    t0: usize,
    t1: usize,
    m0: usize,
    m1: usize,
}

/// The runs of tiles `t0..t1` within one tile row each, as `(ty, tx0, tx1, p)`: tile row `ty`,
/// columns `tx0..tx1`, `p` being the run's offset from `t0`. An iterator rather than a function
/// taking a closure, so that the loop bodies stay inside the callers' `avx2` copies (a closure
/// is compiled without its caller's target features).
fn tile_rows(
    t0: usize,
    t1: usize,
    tw: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut t = t0;
    std::iter::from_fn(move || {
        if t >= t1 {
            return None;
        }
        let (ty, tx0) = (t / tw, t % tw);
        let tx1 = tw.min(tx0 + (t1 - t));
        let run = (ty, tx0, tx1, t - t0);
        t += tx1 - tx0;
        Some(run)
    })
}

/// `V = B^T d B` of tiles `t0..t1` into `v` (`[16][c_in][t1 - t0]`), with
/// `B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`. `work` holds at least
/// `8 * (ceil(w / 2) + 1)` floats.
#[allow(clippy::too_many_arguments)]
fn transform_input(
    x: &[f32],
    h: usize,
    w: usize,
    c_in: usize,
    t0: usize,
    t1: usize,
    v: &mut [f32],
    work: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn avx2(
            x: &[f32],
            h: usize,
            w: usize,
            c_in: usize,
            t0: usize,
            t1: usize,
            v: &mut [f32],
            work: &mut [f32],
        ) {
            transform_input_generic(x, h, w, c_in, t0, t1, v, work)
        }
        // SAFETY: the features were just detected.
        return unsafe { avx2(x, h, w, c_in, t0, t1, v, work) };
    }
    transform_input_generic(x, h, w, c_in, t0, t1, v, work)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn transform_input_generic(
    x: &[f32],
    h: usize,
    w: usize,
    c_in: usize,
    t0: usize,
    t1: usize,
    v: &mut [f32],
    work: &mut [f32],
) {
    let tw = w.div_ceil(2);
    let cols = t1 - t0;
    for (ty, tx0, tx1, p) in tile_rows(t0, t1, tw) {
        let nt = tx1 - tx0;
        // Padded column 2 (tx0 + j) + c (c = 0..4, input column one less) of tile j is
        // `ev[j]`, `od[j]`, `ev[j + 1]`, `od[j + 1]`: each of the 4 input rows split into its
        // even and odd padded columns, nt + 1 of each.
        let (ev, od) = work[..8 * (nt + 1)].split_at_mut(4 * (nt + 1));
        for ci in 0..c_in {
            let plane = &x[ci * h * w..(ci + 1) * h * w];
            // The same rows two channels ahead, towards L1 (the planes are too far apart for
            // the hardware prefetcher).
            #[cfg(target_arch = "x86_64")]
            if ci + 2 < c_in {
                let (y0, y1) = ((2 * ty).saturating_sub(1), (2 * ty + 3).min(h));
                let lo = (2 * tx0).saturating_sub(1);
                let hi = (2 * tx1 + 1).min(w);
                for y in y0..y1 {
                    let row = &x[(ci + 2) * h * w + y * w..][lo..hi];
                    for c in (0..row.len()).step_by(16) {
                        // SAFETY: a prefetch of an address inside `row`; it reads nothing.
                        unsafe {
                            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                                row[c..].as_ptr().cast(),
                            )
                        };
                    }
                }
            }
            for r in 0..4 {
                let e = &mut ev[r * (nt + 1)..(r + 1) * (nt + 1)];
                let o = &mut od[r * (nt + 1)..(r + 1) * (nt + 1)];
                // Input row 2 ty + r - 1.
                let y = (2 * ty + r).wrapping_sub(1);
                if y >= h {
                    e.fill(0.0);
                    o.fill(0.0);
                    continue;
                }
                split_row(&plane[y * w..(y + 1) * w], tx0, e, o);
            }
            // B^T over the rows, in place: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
            for half in [&mut *ev, &mut *od] {
                let (r0, rest) = half.split_at_mut(nt + 1);
                let (r1, rest) = rest.split_at_mut(nt + 1);
                let (r2, r3) = rest.split_at_mut(nt + 1);
                for (((a, b), c), d) in r0.iter_mut().zip(r1).zip(r2).zip(r3) {
                    let (d0, d1, d2, d3) = (*a, *b, *c, *d);
                    *a = d0 - d2;
                    *b = d1 + d2;
                    *c = d2 - d1;
                    *d = d1 - d3;
                }
            }
            // ... and B over the columns: (c0 - c2, c1 + c2, c2 - c1, c1 - c3) for each row.
            for i in 0..4 {
                let e = &ev[i * (nt + 1)..(i + 1) * (nt + 1)];
                let o = &od[i * (nt + 1)..(i + 1) * (nt + 1)];
                let (e0, e1, o0, o1) = (&e[..nt], &e[1..], &o[..nt], &o[1..]);
                let at = |j: usize| (4 * i + j) * c_in * cols + ci * cols + p;
                let dst = &mut v[at(0)..at(0) + nt];
                dst.iter_mut()
                    .zip(e0.iter().zip(e1))
                    .for_each(|(d, (a, c))| *d = a - c);
                let dst = &mut v[at(1)..at(1) + nt];
                dst.iter_mut()
                    .zip(o0.iter().zip(e1))
                    .for_each(|(d, (b, c))| *d = b + c);
                let dst = &mut v[at(2)..at(2) + nt];
                dst.iter_mut()
                    .zip(o0.iter().zip(e1))
                    .for_each(|(d, (b, c))| *d = c - b);
                let dst = &mut v[at(3)..at(3) + nt];
                dst.iter_mut()
                    .zip(o0.iter().zip(o1))
                    .for_each(|(d, (b, e))| *d = b - e);
            }
        }
    }
}

/// Splits one input row into the padded columns of tiles `tx0..`: `e[j]` = input column
/// `2 (tx0 + j) - 1`, `o[j]` = column `2 (tx0 + j)`, zero outside the row.
#[inline(always)]
fn split_row(src: &[f32], tx0: usize, e: &mut [f32], o: &mut [f32]) {
    let w = src.len();
    let len = e.len();
    let mut j = 0;
    if tx0 == 0 {
        (e[0], o[0]) = (0.0, src[0]);
        j = 1;
    }
    // Both columns inside the row while 2 (tx0 + j) < w.
    let inner = len.min(w.div_ceil(2) - tx0);
    if j < inner {
        let start = 2 * (tx0 + j) - 1;
        let src = &src[start..start + 2 * (inner - j)];
        let (e, o) = (&mut e[j..inner], &mut o[j..inner]);
        for k in 0..e.len().min(o.len()).min(src.len() / 2) {
            e[k] = src[2 * k];
            o[k] = src[2 * k + 1];
        }
        j = inner;
    }
    // At most one column pair past the row's end: its even half is the last input column when
    // w is even.
    for jj in j..len {
        let c = 2 * (tx0 + jj);
        e[jj] = if c - 1 < w { src[c - 1] } else { 0.0 };
        o[jj] = 0.0;
    }
}

/// `Y = A^T M A` of a block's products `m` (`[16][m1 - m0][t1 - t0]`) into the output
/// (`[c_out, h, w]` at `out`), with `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]`, then bias, SiLU and
/// the residual over the rows written. `bias` holds the block's `m1 - m0` values; `work` at
/// least `4 * ceil(w / 2)` floats.
///
/// # Safety
/// `out` (and `residual`) must address a `[c_out, h, w]` tensor whose block (channels m0..m1,
/// the block's tiles) nothing else accesses during the call.
#[allow(clippy::too_many_arguments)]
unsafe fn transform_output(
    m: &[f32],
    h: usize,
    w: usize,
    block: &Block,
    out: OutPtr,
    bias: &[f32],
    silu: bool,
    residual: Option<OutPtr>,
    work: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn avx2(
            m: &[f32],
            h: usize,
            w: usize,
            block: &Block,
            out: OutPtr,
            bias: &[f32],
            silu: bool,
            residual: Option<OutPtr>,
            work: &mut [f32],
        ) {
            // SAFETY: forwarded from the caller.
            unsafe { transform_output_generic(m, h, w, block, out, bias, silu, residual, work) }
        }
        // SAFETY: the features were just detected; the rest is the caller's.
        return unsafe { avx2(m, h, w, block, out, bias, silu, residual, work) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { transform_output_generic(m, h, w, block, out, bias, silu, residual, work) }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn transform_output_generic(
    m: &[f32],
    h: usize,
    w: usize,
    block: &Block,
    out: OutPtr,
    bias: &[f32],
    silu: bool,
    residual: Option<OutPtr>,
    work: &mut [f32],
) {
    let Block { t0, t1, m0, m1 } = *block;
    let (cols, rows) = (t1 - t0, m1 - m0);
    let tw = w.div_ceil(2);
    for (ty, tx0, tx1, p) in tile_rows(t0, t1, tw) {
        let nt = tx1 - tx0;
        // Output columns 2 tx0 .. min(2 tx1, w) of rows 2 ty and 2 ty + 1 (when inside).
        let (x0, x1) = (2 * tx0, w.min(2 * tx1));
        let (s0, rest) = work[..4 * nt].split_at_mut(nt);
        let (s1, rest) = rest.split_at_mut(nt);
        let (s2, s3) = rest.split_at_mut(nt);
        for r in 0..rows {
            let q: [&[f32]; 16] = std::array::from_fn(|xi| &m[(xi * rows + r) * cols + p..][..nt]);
            for a in 0..2 {
                let y = 2 * ty + a;
                if y >= h {
                    break;
                }
                // Row a of A^T M, (q0 + q1 + q2) or (q1 - q2 - q3) over the tile's rows, for
                // each of its 4 columns.
                for (j, s) in [&mut *s0, &mut *s1, &mut *s2, &mut *s3]
                    .into_iter()
                    .enumerate()
                {
                    let s = &mut s[..nt];
                    let (q0, q1, q2, q3) = (q[j], q[4 + j], q[8 + j], q[12 + j]);
                    let (q0, q1, q2, q3) = (&q0[..nt], &q1[..nt], &q2[..nt], &q3[..nt]);
                    if a == 0 {
                        for t in 0..nt {
                            s[t] = q0[t] + q1[t] + q2[t];
                        }
                    } else {
                        for t in 0..nt {
                            s[t] = q1[t] - q2[t] - q3[t];
                        }
                    }
                }
                let off = ((m0 + r) * h + y) * w;
                // SAFETY: row y of channel m0 + r, columns x0..x1: this block's, in bounds.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.at(off + x0), x1 - x0) };
                // ... then the same over the columns, written as output pairs.
                let full = dst.len() / 2;
                let (c0, c1, c2, c3) = (&s0[..full], &s1[..full], &s2[..full], &s3[..full]);
                let pairs = &mut dst[..2 * full];
                for t in 0..full {
                    pairs[2 * t] = c0[t] + c1[t] + c2[t];
                    pairs[2 * t + 1] = c1[t] - c2[t] - c3[t];
                }
                if dst.len() % 2 == 1 {
                    dst[2 * full] = s0[full] + s1[full] + s2[full];
                }
                let res = residual.map(|rp| {
                    // SAFETY: the residual has the output's layout and is only read.
                    unsafe { rp.at(off + x0).cast_const() }
                });
                // SAFETY: the row just written, inside this block.
                unsafe { bias_act(dst.as_mut_ptr(), 1, x1 - x0, 0, &bias[r..r + 1], silu, res) };
            }
        }
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

    /// Against candle's conv2d (+ bias, SiLU, residual) in f32: odd and even sizes (edge tiles
    /// cut in half), channel counts that no vector or micro-kernel width divides, maps small
    /// enough to split over output channels and large enough for blocks that start mid-row.
    /// The differences are relative to the case's largest output (2-65 here): at most 7e-7 in
    /// these cases (printed), asserted below 1e-5.
    #[test]
    fn matches_candle_conv() {
        let cases = [
            // (c_in, c_out, h, w, silu, residual)
            (16, 16, 40, 40, true, false),
            (7, 13, 9, 11, false, false),
            (13, 40, 1, 1, true, true),
            (3, 5, 2, 3, false, true),
            (64, 64, 5, 7, true, true),
            (128, 48, 21, 37, true, false),
            (32, 33, 31, 30, false, true),
            (256, 64, 10, 10, true, false),
        ];
        for (i, &(ci, co, h, w, silu, with_res)) in cases.iter().enumerate() {
            let seed = i as u64 * 10;
            let wv = values(co * ci * 9, seed + 1);
            let bv = values(co, seed + 2);
            let xv = values(ci * h * w, seed + 3);
            let rv = values(co * h * w, seed + 4);
            let dev = Device::Cpu;
            let x = Tensor::from_vec(xv.clone(), (1, ci, h, w), &dev).unwrap();
            let wt = Tensor::from_vec(wv.clone(), (co, ci, 3, 3), &dev).unwrap();
            let bt = Tensor::from_vec(bv.clone(), (1, co, 1, 1), &dev).unwrap();
            let mut want = x
                .conv2d(&wt, 1, 1, 1, 1)
                .unwrap()
                .broadcast_add(&bt)
                .unwrap();
            if silu {
                want = want.silu().unwrap();
            }
            if with_res {
                let rt = Tensor::from_vec(rv.clone(), (1, co, h, w), &dev).unwrap();
                want = (want + rt).unwrap();
            }
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let res = with_res.then_some(&rv[..]);
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            for packed in [false, sgemm::available()] {
                let mut got = vec![f32::NAN; co * h * w];
                Winograd::new(&wv, ci, co, packed).run(&xv, h, w, &mut got, &bv, silu, res);
                let mut worst = 0f32;
                for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                    let err = (g - w).abs() / scale;
                    assert!(
                        err <= 1e-5,
                        "case {i} packed {packed} value {j}: {g} vs {w} (largest {scale})"
                    );
                    worst = worst.max(err);
                }
                println!(
                    "case {i} packed {packed}: largest output {scale}, worst difference \
                     {worst:.1e} of it"
                );
            }
        }
    }

    /// The kernel transform of a single tap lands where F(2x2, 3x3) puts it: a centre-only
    /// kernel is the identity convolution.
    #[test]
    fn centre_tap_is_identity() {
        let mut wv = vec![0f32; 9];
        wv[4] = 1.0;
        let xv = values(5 * 3, 11);
        for packed in [false, sgemm::available()] {
            let mut got = vec![0f32; 5 * 3];
            Winograd::new(&wv, 1, 1, packed).run(&xv, 5, 3, &mut got, &[0.0], false, None);
            assert_eq!(got, xv);
        }
    }
}
