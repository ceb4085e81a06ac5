//! Winograd F(2x2, 3x3) and F(4x4, 3x3) for the 3x3 stride-1 convolutions (Lavin & Gray, 2015):
//! each 2x2 (4x4) block of outputs ("tile") is computed from the 4x4 (6x6) input patch around it
//! as `A^T [(G g G^T) ⊙ (B^T d B)] A`, so the 36 (144) multiplies per input channel and tile of a
//! direct 3x3 become 16 (36): one product per element of the transformed tile, which over all
//! channels is 16 (36) matrix products `M_xi [c_out x tiles] = U_xi [c_out x c_in] x V_xi [c_in x
//! tiles]` (2.25x (4x) fewer MACs than im2col's `[c_out x 9 c_in] x [9 c_in x pixels]`).
//! `conv.rs` chooses the tile per layer and map size.
//!
//! The kernel transform `U = G g G^T` is done once at construction. Tiles are taken in blocks
//! (row-major over the tile grid) sized so that a block's transformed input stays in L2; each
//! block is one rayon task that transforms its input (zero padding 1), runs the products (with
//! `sgemm` on the packed transformed kernels where AVX2 + FMA is there, reading the transformed
//! input in place; with the `gemm` crate elsewhere) and transforms the products back into the
//! output. F(2x2) applies bias, SiLU and the residual to the rows just written (`act.rs`);
//! F(4x4)'s AVX2 output transform applies them before its one store (the generic one, for other
//! CPUs, like F(2x2)). Rows and columns past the output size are computed and dropped.
//!
//! Accuracy: F(2x2)'s transforms only add and halve, so the result differs from the direct sum
//! by rounding alone: against candle's conv2d the largest difference in the tests is ~7e-7 of
//! the output's magnitude (`matches_candle_conv` bounds it at 1e-5). F(4x4)'s have coefficients
//! up to 8 (`A`) and 5 (`B`), and `G`'s thirds are rounded once (the kernel transform runs in
//! f64): ~8e-6 of the output's magnitude (bound 3e-5); against ultralytics the whole network's
//! outputs stay at rel. L2 ~5e-7 (the parity tests).

use super::act::bias_act;
use super::conv::{gemm_tile, with_scratch, OutPtr};
use super::sgemm::{self, PackedLhs, Rhs, NR};
use rayon::prelude::*;

/// Floats of one block's transformed input (`16 x c_in x tiles`): 96 Ki floats = 384 KiB, which
/// with the products (`16 x c_out x tiles`) stays inside a 1 MiB L2.
const BLOCK_FLOATS: usize = 96 * 1024;

/// The output tile of a Winograd convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tile {
    /// F(2x2, 3x3): 4x4 input tiles, 16 products (4 multiplies per output instead of 9).
    F2,
    /// F(4x4, 3x3): 6x6 input tiles, 36 products (2.25 multiplies per output).
    F4,
}

impl Tile {
    /// Outputs per tile side.
    const fn side(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
        }
    }

    /// Transformed elements per tile (products per block).
    const fn products(self) -> usize {
        (self.side() + 2) * (self.side() + 2)
    }
}

/// The transformed kernels of one 3x3 stride-1 convolution.
#[derive(Debug)]
pub(super) struct Winograd {
    u: Transformed,
    c_in: usize,
    c_out: usize,
    tile: Tile,
}

/// `tile.products()` matrices `[c_out, c_in]`: the `xi`-th holds element `xi = n * row + col`
/// of every (output, input) channel pair's `n x n` `G g G^T` (`n` = 4 or 6).
#[derive(Debug)]
enum Transformed {
    /// Row-major, one after the other, for the `gemm` crate.
    Plain(Vec<f32>),
    /// Packed for `sgemm`, where its kernel runs.
    Packed(Vec<PackedLhs>),
}

/// F(4x4, 3x3)'s `G` (6x3), for the interpolation points 0, 1, -1, 2, -2 and infinity (Lavin &
/// Gray's matrices); applied in f64 and rounded once.
const G4: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

impl Winograd {
    /// `weight` is `[c_out, c_in, 3, 3]` flattened; `packed`: multiply with `sgemm` (which must
    /// be available) rather than the `gemm` crate.
    pub(super) fn new(weight: &[f32], c_in: usize, c_out: usize, packed: bool, tile: Tile) -> Self {
        assert_eq!(weight.len(), c_out * c_in * 9, "3x3 weights");
        let each = c_out * c_in;
        let mut u = vec![0f32; tile.products() * each];
        match tile {
            Tile::F2 => {
                // G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]], applied to
                // three values.
                let g3 = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
                for (pair, g) in weight.chunks_exact(9).enumerate() {
                    // G g: the columns of g, transformed (4 rows x 3 columns).
                    let cols: [[f32; 4]; 3] = std::array::from_fn(|c| g3(g[c], g[3 + c], g[6 + c]));
                    for r in 0..4 {
                        // (G g) G^T: each row of G g, transformed.
                        let row = g3(cols[0][r], cols[1][r], cols[2][r]);
                        for (c, &val) in row.iter().enumerate() {
                            u[(4 * r + c) * each + pair] = val;
                        }
                    }
                }
            }
            Tile::F4 => {
                for (pair, g) in weight.chunks_exact(9).enumerate() {
                    // G g (6x3), then (G g) G^T (6x6), in f64.
                    let gg: [[f64; 3]; 6] = std::array::from_fn(|r| {
                        std::array::from_fn(|c| {
                            (0..3).map(|k| G4[r][k] * f64::from(g[3 * k + c])).sum()
                        })
                    });
                    for (r, row) in gg.iter().enumerate() {
                        for (c, gc) in G4.iter().enumerate() {
                            let val: f64 = (0..3).map(|k| row[k] * gc[k]).sum();
                            u[(6 * r + c) * each + pair] = val as f32;
                        }
                    }
                }
            }
        }
        let u = if packed {
            Transformed::Packed(
                u.chunks_exact(each.max(1))
                    .take(tile.products())
                    .map(|m| PackedLhs::new(m, c_out, c_in))
                    .collect(),
            )
        } else {
            Transformed::Plain(u)
        };
        Self {
            u,
            c_in,
            c_out,
            tile,
        }
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
        let (side, nx) = (self.tile.side(), self.tile.products());
        let tw = w.div_ceil(side);
        let n = h.div_ceil(side) * tw;
        let threads = rayon::current_num_threads().max(1);

        // Blocks of tiles as conv.rs sizes its im2col tiles: for the cache, then enough of them
        // for every thread (2 each) while they keep 16 tiles, then split over output channels
        // too. All of equal size: a last block of a few tiles would leave a thread idle.
        let n_blocks = n
            .div_ceil((BLOCK_FLOATS / (nx * c_in)).clamp(16, 512))
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
            // Row stride of the transformed input and of the products: F(4x4)'s vector
            // transforms write and read whole groups of 8 tiles.
            let ld = match self.tile {
                Tile::F2 => cols,
                Tile::F4 => cols.next_multiple_of(8),
            };
            // `sgemm` reads the last product's input in whole panels: NR floats of slack.
            let (v_len, m_len) = (nx * c_in * ld + NR, nx * rows * ld);
            let work_len = match self.tile {
                Tile::F2 => 8 * (tw + 1),
                Tile::F4 => 24 * (tw + 1),
            };
            with_scratch(v_len + m_len + work_len, |s| {
                let (v, s) = s.split_at_mut(v_len);
                let (m, work) = s.split_at_mut(m_len);
                match self.tile {
                    Tile::F2 => transform_input(x, h, w, c_in, t0, t1, v, work),
                    Tile::F4 => transform_input4(x, h, w, c_in, t0, t1, v, ld, work),
                }
                for xi in 0..nx {
                    let dst = m[xi * rows * ld..].as_mut_ptr();
                    let vx = &v[xi * c_in * ld..];
                    match &self.u {
                        // SAFETY: dst is the xi-th [rows, cols] product (row stride ld); m0 is
                        // a multiple of 8; V_xi is [c_in, cols] at row stride ld, with the
                        // slack after it.
                        Transformed::Packed(u) => unsafe {
                            sgemm::gemm_packed(
                                &u[xi],
                                m0,
                                rows,
                                Rhs::rows(vx, ld),
                                cols,
                                dst,
                                ld,
                                None,
                            )
                        },
                        Transformed::Plain(u) => {
                            let u = &u[(xi * c_out + m0) * c_in..];
                            // SAFETY: dst as above, lhs rows m0..m1 of U_xi ([c_out, c_in], row
                            // stride c_in), rhs V_xi ([c_in, cols], row stride ld).
                            unsafe {
                                gemm_tile(rows, cols, c_in, dst, ld, u.as_ptr(), vx.as_ptr(), ld)
                            };
                        }
                    }
                }
                let block = Block { t0, t1, m0, m1 };
                let bias = &bias[m0..m1];
                match self.tile {
                    // SAFETY: the block writes output channels m0..m1 of its own tiles only,
                    // and reads the residual at the same places.
                    Tile::F2 => unsafe {
                        transform_output(m, h, w, &block, out_ptr, bias, silu, residual, work)
                    },
                    // SAFETY: as above.
                    Tile::F4 => unsafe {
                        transform_output4(m, ld, h, w, &block, out_ptr, bias, silu, residual, work)
                    },
                }
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

/// F(4x4)'s `V = B^T d B` of tiles `t0..t1` into `v` (`[36][c_in][ld]`, tile `t0 + p` in
/// column `p`; `ld` a multiple of 8 at least `t1 - t0`, the columns past the tiles unspecified), with
/// `B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
/// [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]`. `work` holds at least `24 * (ceil(w / 4) + 1)`
/// floats.
#[allow(clippy::too_many_arguments)]
fn transform_input4(
    x: &[f32],
    h: usize,
    w: usize,
    c_in: usize,
    t0: usize,
    t1: usize,
    v: &mut [f32],
    ld: usize,
    work: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        return unsafe { simd4::input(x, h, w, c_in, t0, t1, v, ld) };
    }
    transform_input4_generic(x, h, w, c_in, t0, t1, v, ld, work)
}

/// `B^T` applied to six values (or `B` to six columns).
#[inline(always)]
fn bt6(d: [f32; 6]) -> [f32; 6] {
    let [d0, d1, d2, d3, d4, d5] = d;
    let (a, b) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
    let (c, e) = (d4 - d2, 2.0 * (d3 - d1));
    [
        4.0 * d0 - 5.0 * d2 + d4,
        a + b,
        a - b,
        c + e,
        c - e,
        4.0 * d1 - 5.0 * d3 + d5,
    ]
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn transform_input4_generic(
    x: &[f32],
    h: usize,
    w: usize,
    c_in: usize,
    t0: usize,
    t1: usize,
    v: &mut [f32],
    ld: usize,
    work: &mut [f32],
) {
    let tw = w.div_ceil(4);
    let plane_len = c_in * ld;
    for (ty, tx0, tx1, p) in tile_rows(t0, t1, tw) {
        let nt = tx1 - tx0;
        let len = nt + 1;
        // Each of the 6 input rows as 4 phases of `len` values: phase k, entry j is padded
        // column 4 (tx0 + j) + k (input column one less), so tile j's 6 columns are phases
        // 0..4 at j and phases 0, 1 at j + 1.
        let work = &mut work[..24 * len];
        for ci in 0..c_in {
            let plane = &x[ci * h * w..(ci + 1) * h * w];
            // The same rows two channels ahead, towards L1 (as in `transform_input`).
            #[cfg(target_arch = "x86_64")]
            if ci + 2 < c_in {
                let (y0, y1) = ((4 * ty).saturating_sub(1), (4 * ty + 5).min(h));
                let lo = (4 * tx0).saturating_sub(1);
                let hi = (4 * tx1 + 1).min(w);
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
            for (r, dst) in work.chunks_exact_mut(4 * len).enumerate() {
                // Input row 4 ty + r - 1.
                let y = (4 * ty + r).wrapping_sub(1);
                if y >= h {
                    dst.fill(0.0);
                } else {
                    split_row4(&plane[y * w..(y + 1) * w], tx0, dst);
                }
            }
            // B^T over the rows, in place (all phases at once: it is element-wise).
            {
                let (r0, rest) = work.split_at_mut(4 * len);
                let (r1, rest) = rest.split_at_mut(4 * len);
                let (r2, rest) = rest.split_at_mut(4 * len);
                let (r3, rest) = rest.split_at_mut(4 * len);
                let (r4, r5) = rest.split_at_mut(4 * len);
                for i in 0..4 * len {
                    let o = bt6([r0[i], r1[i], r2[i], r3[i], r4[i], r5[i]]);
                    (r0[i], r1[i], r2[i], r3[i], r4[i], r5[i]) =
                        (o[0], o[1], o[2], o[3], o[4], o[5]);
                }
            }
            // ... and B over the columns of each transformed row, into the 6 matrices of it.
            for (i, row) in work.chunks_exact(4 * len).enumerate() {
                let (p0, p1, p2, p3) = (
                    &row[..len],
                    &row[len..2 * len],
                    &row[2 * len..3 * len],
                    &row[3 * len..4 * len],
                );
                let start = 6 * i * plane_len + ci * ld + p;
                let mut outs = v[start..].chunks_mut(plane_len);
                let mut next = || &mut outs.next().expect("six matrices")[..nt];
                let (o0, o1, o2, o3, o4, o5) = (next(), next(), next(), next(), next(), next());
                for j in 0..nt {
                    let o = bt6([p0[j], p1[j], p2[j], p3[j], p0[j + 1], p1[j + 1]]);
                    (o0[j], o1[j], o2[j], o3[j], o4[j], o5[j]) =
                        (o[0], o[1], o[2], o[3], o[4], o[5]);
                }
            }
        }
    }
}

/// Splits one input row into the 4 phases (`dst`: 4 runs of `len` values) of tiles `tx0..`:
/// phase `k`, entry `j` = input column `4 (tx0 + j) + k - 1`, zero outside the row.
#[inline(always)]
fn split_row4(src: &[f32], tx0: usize, dst: &mut [f32]) {
    let w = src.len();
    let len = dst.len() / 4;
    let (p0, rest) = dst.split_at_mut(len);
    let (p1, rest) = rest.split_at_mut(len);
    let (p2, p3) = rest.split_at_mut(len);
    let at = |c: usize| {
        if c.wrapping_sub(1) < w {
            src[c - 1]
        } else {
            0.0
        }
    };
    // Entries whose 4 columns are all inside the row: 4 (tx0 + j) >= 1 and
    // 4 (tx0 + j) + 2 < w.
    let lo = usize::from(tx0 == 0).min(len);
    let hi = if w >= 3 {
        ((w - 3) / 4 + 1).saturating_sub(tx0).min(len)
    } else {
        0
    }
    .max(lo);
    for j in (0..lo).chain(hi..len) {
        let c = 4 * (tx0 + j);
        (p0[j], p1[j], p2[j], p3[j]) = (at(c), at(c + 1), at(c + 2), at(c + 3));
    }
    if lo < hi {
        let start = 4 * (tx0 + lo) - 1;
        let src = &src[start..start + 4 * (hi - lo)];
        let (p0, p1, p2, p3) = (
            &mut p0[lo..hi],
            &mut p1[lo..hi],
            &mut p2[lo..hi],
            &mut p3[lo..hi],
        );
        for (j, q) in src.chunks_exact(4).enumerate() {
            (p0[j], p1[j], p2[j], p3[j]) = (q[0], q[1], q[2], q[3]);
        }
    }
}

/// F(4x4)'s `Y = A^T M A` of a block's products `m` (`[36][m1 - m0][ld]`) into the output,
/// with `A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8,
/// 1]]`, then bias, SiLU and the residual over the rows written; as [`transform_output`], with
/// `work` at least `24 * ceil(w / 4)` floats.
///
/// # Safety
/// As for [`transform_output`].
#[allow(clippy::too_many_arguments)]
unsafe fn transform_output4(
    m: &[f32],
    ld: usize,
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
        // SAFETY: the features were just detected; the rest is the caller's.
        return unsafe { simd4::output(m, ld, h, w, block, out, bias, silu, residual) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { transform_output4_generic(m, ld, h, w, block, out, bias, silu, residual, work) }
}

/// `A^T` applied to six values (or `A` to six columns).
#[inline(always)]
fn at6(q: [f32; 6]) -> [f32; 4] {
    let [q0, q1, q2, q3, q4, q5] = q;
    let (a, b, c, d) = (q1 + q2, q1 - q2, q3 + q4, q3 - q4);
    [q0 + a + c, b + 2.0 * d, a + 4.0 * c, b + 8.0 * d + q5]
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn transform_output4_generic(
    m: &[f32],
    ld: usize,
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
    let rows = m1 - m0;
    let tw = w.div_ceil(4);
    for (ty, tx0, tx1, p) in tile_rows(t0, t1, tw) {
        let nt = tx1 - tx0;
        // Output columns 4 tx0 .. min(4 tx1, w) of rows 4 ty .. 4 ty + 4 (those inside).
        let (x0, x1) = (4 * tx0, w.min(4 * tx1));
        let n_rows = (h - 4 * ty).min(4);
        // s[6 a + j]: row a of A^T M, column j, over the run's tiles.
        let s = &mut work[..24 * nt];
        for r in 0..rows {
            let q: [&[f32]; 36] = std::array::from_fn(|xi| &m[(xi * rows + r) * ld + p..][..nt]);
            for j in 0..6 {
                let (q0, q1, q2) = (q[j], q[6 + j], q[12 + j]);
                let (q3, q4, q5) = (q[18 + j], q[24 + j], q[30 + j]);
                let mut outs = s.chunks_exact_mut(nt).skip(j).step_by(6);
                let mut next = || outs.next().expect("four rows");
                let (s0, s1, s2, s3) = (next(), next(), next(), next());
                for t in 0..nt {
                    let o = at6([q0[t], q1[t], q2[t], q3[t], q4[t], q5[t]]);
                    (s0[t], s1[t], s2[t], s3[t]) = (o[0], o[1], o[2], o[3]);
                }
            }
            for a in 0..n_rows {
                let y = 4 * ty + a;
                let sa = &s[6 * a * nt..6 * (a + 1) * nt];
                let c: [&[f32]; 6] = std::array::from_fn(|j| &sa[j * nt..(j + 1) * nt]);
                let off = ((m0 + r) * h + y) * w;
                // SAFETY: row y of channel m0 + r, columns x0..x1: this block's, in bounds.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.at(off + x0), x1 - x0) };
                // ... then A over the columns, written as runs of 4 outputs.
                let full = dst.len() / 4;
                for (t, o) in dst.chunks_exact_mut(4).enumerate().take(full) {
                    let v = at6([c[0][t], c[1][t], c[2][t], c[3][t], c[4][t], c[5][t]]);
                    o.copy_from_slice(&v);
                }
                let rem = dst.len() % 4;
                if rem > 0 {
                    let t = full;
                    let v = at6([c[0][t], c[1][t], c[2][t], c[3][t], c[4][t], c[5][t]]);
                    dst[4 * full..].copy_from_slice(&v[..rem]);
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

/// F(4x4)'s transforms in AVX2 + FMA: 8 tiles per vector (lane `l` = tile `t0 + 8 g + l`, the
/// layout of `V` and `M`), the 6x6 patches of a group gathered and transposed with in-lane
/// shuffles, and bias, SiLU and the residual applied in the output transform before the one
/// store of each output.
#[cfg(target_arch = "x86_64")]
mod simd4 {
    use super::super::sgemm::avx2::silu8;
    use super::{tile_rows, Block, OutPtr};
    use std::arch::x86_64::*;

    /// The 4x4 transpose within each 128-bit half: element `j` of row `i` of a half becomes
    /// element `i` of row `j`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn transpose4(a: __m256, b: __m256, c: __m256, d: __m256) -> [__m256; 4] {
        let (t0, t1) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
        let (t2, t3) = (_mm256_unpacklo_ps(c, d), _mm256_unpackhi_ps(c, d));
        let pd = _mm256_castps_pd;
        let ps = _mm256_castpd_ps;
        [
            ps(_mm256_unpacklo_pd(pd(t0), pd(t2))),
            ps(_mm256_unpackhi_pd(pd(t0), pd(t2))),
            ps(_mm256_unpacklo_pd(pd(t1), pd(t3))),
            ps(_mm256_unpackhi_pd(pd(t1), pd(t3))),
        ]
    }

    /// `B^T` on six vectors (as `super::bt6`).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn bt6(d: [__m256; 6]) -> [__m256; 6] {
        let [d0, d1, d2, d3, d4, d5] = d;
        let (four, five, two) = (
            _mm256_set1_ps(4.0),
            _mm256_set1_ps(5.0),
            _mm256_set1_ps(2.0),
        );
        let a = _mm256_fnmadd_ps(four, d2, d4);
        let b = _mm256_fnmadd_ps(four, d1, d3);
        let c = _mm256_sub_ps(d4, d2);
        let e = _mm256_mul_ps(two, _mm256_sub_ps(d3, d1));
        [
            _mm256_fmadd_ps(four, d0, _mm256_fnmadd_ps(five, d2, d4)),
            _mm256_add_ps(a, b),
            _mm256_sub_ps(a, b),
            _mm256_add_ps(c, e),
            _mm256_sub_ps(c, e),
            _mm256_fmadd_ps(four, d1, _mm256_fnmadd_ps(five, d3, d5)),
        ]
    }

    /// `A^T` on six vectors (as `super::at6`).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn at6(q: [__m256; 6]) -> [__m256; 4] {
        let [q0, q1, q2, q3, q4, q5] = q;
        let (a, b) = (_mm256_add_ps(q1, q2), _mm256_sub_ps(q1, q2));
        let (c, d) = (_mm256_add_ps(q3, q4), _mm256_sub_ps(q3, q4));
        [
            _mm256_add_ps(_mm256_add_ps(q0, a), c),
            _mm256_fmadd_ps(_mm256_set1_ps(2.0), d, b),
            _mm256_fmadd_ps(_mm256_set1_ps(4.0), c, a),
            _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0), d, b), q5),
        ]
    }

    /// A tile's patch in a channel plane: the offset of its top-left input (row 4 ty - 1,
    /// column 4 tx - 1: -1 and less at the borders), its rows inside the map (`rows`, a range of
    /// 0..6), and
    /// for its patch rows of 8 floats the columns inside the map (`lo`, `hi`: masks of columns
    /// 0..4 and 4..8); `inside` when all of it is.
    #[derive(Clone, Copy)]
    struct Patch {
        off: isize,
        rows: (usize, usize),
        lo: __m128i,
        hi: __m128i,
        inside: bool,
    }

    /// `super::transform_input4` (same contract), the patches read straight from `x`: plain
    /// loads inside the map, masked loads (which do not touch the masked addresses) at its
    /// borders.
    ///
    /// # Safety
    /// AVX2 and FMA must be available.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn input(
        x: &[f32],
        h: usize,
        w: usize,
        c_in: usize,
        t0: usize,
        t1: usize,
        v: &mut [f32],
        ld: usize,
    ) {
        let tw = w.div_ceil(4);
        let cols = t1 - t0;
        let groups = cols.div_ceil(8);
        assert!(ld >= 8 * groups && v.len() >= 36 * c_in * ld, "V's layout");
        assert!(x.len() >= c_in * h * w, "the input");
        let mask = |first: isize| {
            // Columns first.. first + 4 inside 0..w.
            let m: [i32; 4] = std::array::from_fn(|c| {
                let col = first + c as isize;
                if (0..w as isize).contains(&col) {
                    -1
                } else {
                    0
                }
            });
            // SAFETY: 4 i32 read from an array of 4.
            unsafe { _mm_loadu_si128(m.as_ptr().cast()) }
        };
        // The lanes past the block repeat the last tile (computed, never stored).
        let mut at: Vec<Patch> = (t0..t1)
            .map(|t| {
                let (ty, tx) = (t / tw, t % tw);
                let (y0, x0) = (4 * ty as isize - 1, 4 * tx as isize - 1);
                let rows = (usize::from(ty == 0), (h + 1 - 4 * ty).min(6));
                Patch {
                    off: y0 * w as isize + x0,
                    rows,
                    lo: mask(x0),
                    hi: mask(x0 + 4),
                    inside: rows == (0, 6) && x0 >= 0 && x0 + 8 <= w as isize,
                }
            })
            .collect();
        let last = *at.last().expect("a tile");
        at.resize(8 * groups, last);
        let zero = _mm_setzero_ps();
        for ci in 0..c_in {
            let plane = x[ci * h * w..].as_ptr();
            // The block's rows two channels ahead, towards L1 (the planes are too far apart for
            // the hardware prefetcher).
            if ci + 2 < c_in {
                for (ty, tx0, tx1, _) in tile_rows(t0, t1, tw) {
                    let (lo, hi) = ((4 * tx0).saturating_sub(1), (4 * tx1 + 3).min(w));
                    for y in (4 * ty).saturating_sub(1)..(4 * ty + 5).min(h) {
                        let row = &x[(ci + 2) * h * w + y * w..][lo..hi];
                        for c in (0..row.len()).step_by(16) {
                            _mm_prefetch::<_MM_HINT_T0>(row[c..].as_ptr().cast());
                        }
                    }
                }
            }
            for g in 0..groups {
                let tiles = &at[8 * g..8 * g + 8];
                let inside = tiles.iter().all(|t| t.inside);
                let mut e = [[_mm256_setzero_ps(); 6]; 6];
                for (r, er) in e.iter_mut().enumerate() {
                    // Columns 0..4 and 4..8 of each tile's patch row r.
                    let (mut c03, mut c47) = ([zero; 8], [zero; 8]);
                    for (l, t) in tiles.iter().enumerate() {
                        let p = plane.wrapping_offset(t.off + (r * w) as isize);
                        // SAFETY: inside the map, 8 floats of the plane's row; at its borders
                        // the masks leave out the columns (and rows) outside it.
                        unsafe {
                            if inside || t.inside {
                                c03[l] = _mm_loadu_ps(p);
                                c47[l] = _mm_loadu_ps(p.add(4));
                            } else if (t.rows.0..t.rows.1).contains(&r) {
                                c03[l] = _mm_maskload_ps(p, t.lo);
                                c47[l] = _mm_maskload_ps(p.wrapping_add(4), t.hi);
                            }
                        }
                    }
                    let pair = |a: __m128, b: __m128| _mm256_set_m128(b, a);
                    let [c0, c1, c2, c3] = transpose4(
                        pair(c03[0], c03[4]),
                        pair(c03[1], c03[5]),
                        pair(c03[2], c03[6]),
                        pair(c03[3], c03[7]),
                    );
                    let (a, b) = (pair(c47[0], c47[4]), pair(c47[1], c47[5]));
                    let (c, d) = (pair(c47[2], c47[6]), pair(c47[3], c47[7]));
                    let (lo_ab, lo_cd) = (_mm256_unpacklo_ps(a, b), _mm256_unpacklo_ps(c, d));
                    let c4 = _mm256_castpd_ps(_mm256_unpacklo_pd(
                        _mm256_castps_pd(lo_ab),
                        _mm256_castps_pd(lo_cd),
                    ));
                    let c5 = _mm256_castpd_ps(_mm256_unpackhi_pd(
                        _mm256_castps_pd(lo_ab),
                        _mm256_castps_pd(lo_cd),
                    ));
                    // B over the row's 6 columns.
                    *er = bt6([c0, c1, c2, c3, c4, c5]);
                }
                // ... and B^T over the rows, stored as V[6 i + k][ci][8 g ..].
                let dst = v[ci * ld + 8 * g..].as_mut_ptr();
                #[allow(clippy::needless_range_loop)] // a column of the 2-D `e`
                for k in 0..6 {
                    let o = bt6([e[0][k], e[1][k], e[2][k], e[3][k], e[4][k], e[5][k]]);
                    for (i, oi) in o.into_iter().enumerate() {
                        // SAFETY: 8 floats of row ci of matrix 6 i + k, inside `v` (asserted).
                        unsafe { _mm256_storeu_ps(dst.add((6 * i + k) * c_in * ld), oi) };
                    }
                }
            }
        }
    }

    /// `super::transform_output4`, with bias, SiLU and the residual applied before the store.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; otherwise as `super::transform_output`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn output(
        m: &[f32],
        ld: usize,
        h: usize,
        w: usize,
        block: &Block,
        out: OutPtr,
        bias: &[f32],
        silu: bool,
        residual: Option<OutPtr>,
    ) {
        let Block { t0, t1, m0, m1 } = *block;
        let (cols, rows) = (t1 - t0, m1 - m0);
        let tw = w.div_ceil(4);
        let groups = cols.div_ceil(8);
        assert!(ld >= 8 * groups && m.len() >= 36 * rows * ld, "M's layout");
        // Per tile: the offset of its first output in a channel plane, and its rows and
        // columns inside the map (0 rows for the lanes past the block).
        let mut at: Vec<(usize, usize, usize)> = (t0..t1)
            .map(|t| {
                let (ty, tx) = (t / tw, t % tw);
                (4 * (ty * w + tx), (h - 4 * ty).min(4), (w - 4 * tx).min(4))
            })
            .collect();
        at.resize(8 * groups, (0, 0, 0));
        for r in 0..rows {
            let plane = (m0 + r) * h * w;
            let b = _mm256_set1_ps(bias[r]);
            for g in 0..groups {
                let tiles = &at[8 * g..8 * g + 8];
                // A^T over the rows: s[a][j], row a of A^T M, column j.
                let mut s = [[_mm256_setzero_ps(); 6]; 4];
                let mr = m[r * ld + 8 * g..].as_ptr();
                #[allow(clippy::needless_range_loop)] // a column of the 2-D `s`
                for j in 0..6 {
                    let mut q = [_mm256_setzero_ps(); 6];
                    for (i, qi) in q.iter_mut().enumerate() {
                        // SAFETY: 8 floats of row r of product 6 i + j, inside `m` (asserted).
                        *qi = unsafe { _mm256_loadu_ps(mr.add((6 * i + j) * rows * ld)) };
                    }
                    let o = at6(q);
                    for (a, oa) in o.into_iter().enumerate() {
                        s[a][j] = oa;
                    }
                }
                for (a, sa) in s.iter().enumerate() {
                    // ... A over the columns: output column k of row a of each tile, then the
                    // bias and SiLU, and per tile its 4 outputs (lanes of the transposes).
                    let mut o = at6(*sa);
                    for v in &mut o {
                        *v = _mm256_add_ps(*v, b);
                        if silu {
                            *v = silu8(*v);
                        }
                    }
                    let tr = transpose4(o[0], o[1], o[2], o[3]);
                    for (l, &(off, vr, vc)) in tiles.iter().enumerate() {
                        if a >= vr {
                            continue;
                        }
                        let val = if l < 4 {
                            _mm256_castps256_ps128(tr[l])
                        } else {
                            _mm256_extractf128_ps::<1>(tr[l - 4])
                        };
                        let at = plane + off + a * w;
                        // SAFETY: outputs (ty, tx)'s row a, columns inside the map: this
                        // block's; the residual has the output's layout.
                        unsafe {
                            if vc == 4 {
                                let val = match residual {
                                    Some(rp) => _mm_add_ps(val, _mm_loadu_ps(rp.at(at))),
                                    None => val,
                                };
                                _mm_storeu_ps(out.at(at), val);
                            } else {
                                let mut buf = [0f32; 4];
                                _mm_storeu_ps(buf.as_mut_ptr(), val);
                                for (k, &bv) in buf.iter().enumerate().take(vc) {
                                    let res = residual.map_or(0.0, |rp| *rp.at(at + k));
                                    *out.at(at + k) = bv + res;
                                }
                            }
                        }
                    }
                }
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
    /// The differences are relative to the case's largest output (2-65 here): at most 7e-7 for
    /// F(2x2) and 8e-6 for F(4x4) in these cases (printed), asserted below 1e-5 and 3e-5.
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
            // Many blocks of F(4x4) tiles, starting mid-row; sides of 2 and 3 past a multiple of 4.
            (24, 20, 46, 43, true, true),
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
            for (packed, tile) in [false, sgemm::available()]
                .into_iter()
                .flat_map(|p| [(p, Tile::F2), (p, Tile::F4)])
            {
                let mut got = vec![f32::NAN; co * h * w];
                Winograd::new(&wv, ci, co, packed, tile).run(&xv, h, w, &mut got, &bv, silu, res);
                let mut worst = 0f32;
                // F(4x4)'s transforms have larger coefficients (up to 8 in A, 5 in B): about 10x
                // the rounding of F(2x2).
                let bound = if tile == Tile::F2 { 1e-5 } else { 3e-5 };
                for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                    let err = (g - w).abs() / scale;
                    assert!(
                        err <= bound,
                        "case {i} {tile:?} packed {packed} value {j}: {g} vs {w} (largest {scale})"
                    );
                    worst = worst.max(err);
                }
                println!(
                    "case {i} {tile:?} packed {packed}: largest output {scale}, worst difference \
                     {worst:.1e} of it"
                );
            }
        }
    }

    /// The kernel transform of a single tap lands where F(2x2, 3x3) and F(4x4, 3x3) put it: a
    /// centre-only kernel is the identity convolution (exactly for F(2x2)).
    #[test]
    fn centre_tap_is_identity() {
        let mut wv = vec![0f32; 9];
        wv[4] = 1.0;
        let xv = values(5 * 3, 11);
        for packed in [false, sgemm::available()] {
            for tile in [Tile::F2, Tile::F4] {
                let mut got = vec![0f32; 5 * 3];
                Winograd::new(&wv, 1, 1, packed, tile).run(
                    &xv,
                    5,
                    3,
                    &mut got,
                    &[0.0],
                    false,
                    None,
                );
                if tile == Tile::F2 {
                    assert_eq!(got, xv);
                } else {
                    // F(4x4)'s kernel transform has thirds (1/36, 1/144, ...), rounded: equal
                    // to within a few ulp.
                    for (g, x) in got.iter().zip(&xv) {
                        assert!((g - x).abs() <= 1e-6, "{g} vs {x}");
                    }
                }
            }
        }
    }

    /// F(4x4)'s AVX2 transforms against the generic ones that other CPUs run, block by block:
    /// blocks that start and end mid-row, span several tile rows, have fewer than 8 tiles,
    /// touch every border, on maps of every size modulo 4. Outputs start as NaN, so a value
    /// written by one and not the other shows.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn f4_vector_transforms_match_the_generic_ones() {
        if !sgemm::available() {
            return;
        }
        // (c_in or c_out, h, w, t0, t1)
        let cases = [
            (3usize, 9usize, 11usize, 0usize, 9usize),
            (5, 13, 14, 2, 13),
            (2, 1, 1, 0, 1),
            (4, 6, 7, 1, 2),
            (7, 23, 18, 7, 30),
            (3, 40, 40, 0, 100),
            (2, 17, 5, 3, 10),
        ];
        for (i, &(c, h, w, t0, t1)) in cases.iter().enumerate() {
            let tw = w.div_ceil(4);
            assert!(t1 <= h.div_ceil(4) * tw);
            let cols = t1 - t0;
            let ld = cols.next_multiple_of(8);
            let work_len = 24 * (tw + 1);
            let x = values(c * h * w, i as u64 + 50);
            let mut want = vec![f32::NAN; 36 * c * ld];
            let mut got = want.clone();
            let mut work = vec![0f32; work_len];
            transform_input4_generic(&x, h, w, c, t0, t1, &mut want, ld, &mut work);
            // SAFETY: this CPU has AVX2 and FMA (checked above).
            unsafe { simd4::input(&x, h, w, c, t0, t1, &mut got, ld) };
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            for xi in 0..36 {
                for ci in 0..c {
                    for p in 0..cols {
                        let at = (xi * c + ci) * ld + p;
                        assert!(
                            (got[at] - want[at]).abs() <= 1e-6 * scale,
                            "input case {i} xi {xi} ci {ci} tile {p}: {} vs {}",
                            got[at],
                            want[at]
                        );
                    }
                }
            }

            // The output transform: channels 1..c + 1 of c + 2, both epilogues.
            let c_out = c + 2;
            let m = values(36 * c * ld, i as u64 + 60);
            let bias = values(c, i as u64 + 70);
            let res = values(c_out * h * w, i as u64 + 80);
            let block = Block {
                t0,
                t1,
                m0: 1,
                m1: 1 + c,
            };
            for (silu, with_res) in [(false, false), (true, true)] {
                let mut want = vec![f32::NAN; c_out * h * w];
                let mut got = want.clone();
                let residual = with_res.then(|| OutPtr(res.as_ptr().cast_mut()));
                let (pw, pg) = (OutPtr(want.as_mut_ptr()), OutPtr(got.as_mut_ptr()));
                // SAFETY: both outputs are [c_out, h, w], the block inside them.
                unsafe {
                    transform_output4_generic(
                        &m, ld, h, w, &block, pw, &bias, silu, residual, &mut work,
                    );
                    simd4::output(&m, ld, h, w, &block, pg, &bias, silu, residual);
                }
                let scale = want
                    .iter()
                    .filter(|v| !v.is_nan())
                    .fold(0f32, |a, v| a.max(v.abs()));
                for (j, (g, wv)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        g.is_nan() == wv.is_nan() && (g.is_nan() || (g - wv).abs() <= 1e-6 * scale),
                        "output case {i} silu {silu} value {j}: {g} vs {wv}"
                    );
                }
                assert!(want.iter().any(|v| !v.is_nan()), "case {i} wrote nothing");
            }
        }
    }
}
