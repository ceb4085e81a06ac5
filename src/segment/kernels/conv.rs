//! Convolution as tiled im2col + GEMM with bias and activation fused; see the module above.

use super::act::bias_act;
use super::profile;
use super::sgemm::{self, Epilogue, PackedLhs, Rhs, NR};
use super::winograd::{Tile, Winograd};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::OnceLock;

/// Floats of one im2col tile (`K x columns`); 48 Ki floats = 192 KiB, well inside L2.
const TILE_FLOATS: usize = 48 * 1024;
/// Input floats (`c_in x h x w`) from which a 3x3 stride-1 convolution on a map too small for
/// F(4x4) runs as Winograd F(2x2, 3x3) rather than im2col: below it the 16 small products per
/// block cost more than the MACs they save. Measured per layer shape in docs/PERFORMANCE.md.
const WINOGRAD_MIN_INPUT: usize = 32 * 1024;
/// The smaller map side from which a 3x3 stride-1 convolution runs as Winograd F(4x4, 3x3): it
/// was faster than F(2x2) and im2col on every yolov8n layer from 13x13 up (level with F(2x2)
/// for 256 input channels at 20x20); at 10x10, where a third of the 12x12 outputs computed is
/// cut away, it was not.
const WINOGRAD4_MIN_SIDE: usize = 12;

/// Which Winograd tile (if any) a 3x3 stride-1 convolution with `c_in` input channels uses on an
/// `h x w` map; `None`: im2col.
pub(super) fn winograd_tile(c_in: usize, h: usize, w: usize) -> Option<Tile> {
    if h.min(w) >= WINOGRAD4_MIN_SIDE {
        Some(Tile::F4)
    } else if c_in * h * w >= WINOGRAD_MIN_INPUT {
        Some(Tile::F2)
    } else {
        None
    }
}

/// Columns of one tile of a 1x1 convolution (no patch matrix: the input is the right operand).
const DIRECT_TILE_COLS: usize = 1024;

thread_local! {
    /// Each worker's scratch tile (im2col patches, products before a scatter), grown to the
    /// largest tile seen and then reused: no allocation per call once the first frame has run.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer, `len` floats long and starting on a 32-byte
/// boundary (contents unspecified). `f` must not call `with_scratch` again (it would panic on
/// the double borrow).
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < len + 8 {
            c.resize(len + 8, 0.0);
        }
        let off = c.as_ptr().align_offset(32).min(8);
        f(&mut c[off..off + len])
    })
}

/// A convolution's weights, `[c_out, c_in * k * k]`.
#[derive(Debug)]
enum Weights {
    /// Row-major (PyTorch's layout flattened), for the `gemm` crate.
    Plain(Vec<f32>),
    /// In `sgemm`'s panels, packed at load, where its AVX2 kernel runs.
    Packed(PackedLhs),
}

/// A folded convolution (`weight * x + bias`, then SiLU or nothing), "same" padding `k / 2`.
#[derive(Debug)]
pub(crate) struct ConvCpu {
    weight: Weights,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    silu: bool,
    /// For a 3x3 stride-1 convolution: the same weights transformed for Winograd F(2x2, 3x3)
    /// and F(4x4, 3x3), each built on the first input that uses it (16/9 and 36/9 of the
    /// weights again, so a model run only at small sizes does not carry them).
    winograd: Option<[OnceLock<Winograd>; 2]>,
}

/// A raw output pointer shared by the tiles, each writing its own disjoint block.
#[derive(Clone, Copy)]
pub(super) struct OutPtr(pub(super) *mut f32);
// SAFETY: tiles write disjoint (row range, column range) blocks of the output.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer `offset` floats further. A method, so that closures capture the whole
    /// (`Send`) wrapper rather than its raw-pointer field.
    ///
    /// # Safety
    /// As for `pointer::add`: the result must stay inside the allocation.
    pub(super) unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.add(offset) }
    }
}

impl ConvCpu {
    /// `weight` is `[c_out, c_in, k, k]` flattened, `bias` has `c_out` values.
    pub(crate) fn new(
        weight: Vec<f32>,
        bias: Vec<f32>,
        c_in: usize,
        k: usize,
        stride: usize,
        silu: bool,
    ) -> Self {
        Self::with_kernel(weight, bias, c_in, k, stride, silu, sgemm::available())
    }

    /// [`Self::new`] with the product chosen: `sgemm` (`packed`, which must be available) or
    /// the `gemm` crate.
    fn with_kernel(
        weight: Vec<f32>,
        bias: Vec<f32>,
        c_in: usize,
        k: usize,
        stride: usize,
        silu: bool,
        packed: bool,
    ) -> Self {
        let c_out = bias.len();
        assert_eq!(
            weight.len(),
            c_out * c_in * k * k,
            "weights built by the loader"
        );
        assert!(
            k % 2 == 1 && stride >= 1,
            "odd kernels with same padding only"
        );
        let winograd = (k == 3 && stride == 1).then(Default::default);
        let weight = if packed {
            Weights::Packed(PackedLhs::new(&weight, c_out, c_in * k * k))
        } else {
            Weights::Plain(weight)
        };
        Self {
            weight,
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

    /// The weights as `[c_out, c_in * k * k]`, row-major.
    fn weight_row_major(&self) -> Cow<'_, [f32]> {
        match &self.weight {
            Weights::Plain(w) => Cow::Borrowed(w),
            Weights::Packed(p) => Cow::Owned(p.row_major()),
        }
    }

    fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let o = |v: usize| (v + 2 * self.pad - self.k) / self.stride + 1;
        (o(h), o(w))
    }

    /// One image: `x` is `[c_in, h, w]`, `out` is `[c_out, oh, ow]`, and `residual`, when given,
    /// is added after the activation (`[c_out, oh, ow]` too).
    fn run(&self, x: &[f32], h: usize, w: usize, out: &mut [f32], residual: Option<&[f32]>) {
        let t0 = profile::start();
        let tile = self.winograd.as_ref().and(winograd_tile(self.c_in, h, w));
        self.run_as(tile, x, h, w, out, residual);
        profile::record(t0, || {
            let op = match tile {
                Some(Tile::F4) => "conv f32 winograd-f4",
                Some(Tile::F2) => "conv f32 winograd-f2",
                None if self.k == 1 && self.stride == 1 => "conv f32 1x1",
                None => "conv f32 im2col",
            };
            let (shape, macs) =
                profile::conv_shape(self.c_in, self.c_out, self.k, self.stride, h, w);
            (op, shape, macs)
        });
    }

    /// [`Self::run`] with the Winograd tile (if any) decided.
    fn run_as(
        &self,
        tile: Option<Tile>,
        x: &[f32],
        h: usize,
        w: usize,
        out: &mut [f32],
        residual: Option<&[f32]>,
    ) {
        match (&self.winograd, tile) {
            (Some(wg), Some(tile)) => wg[usize::from(tile == Tile::F4)]
                .get_or_init(|| {
                    let packed = matches!(self.weight, Weights::Packed(_));
                    Winograd::new(
                        &self.weight_row_major(),
                        self.c_in,
                        self.c_out,
                        packed,
                        tile,
                    )
                })
                .run(x, h, w, out, &self.bias, self.silu, residual),
            _ => self.run_im2col(x, h, w, out, residual),
        }
    }

    /// [`Self::run`] as im2col + GEMM.
    fn run_im2col(&self, x: &[f32], h: usize, w: usize, out: &mut [f32], residual: Option<&[f32]>) {
        let (oh, ow) = self.out_size(h, w);
        let n = oh * ow;
        let kk = self.c_in * self.k * self.k;
        debug_assert_eq!(x.len(), self.c_in * h * w);
        debug_assert_eq!(out.len(), self.c_out * n);
        debug_assert!(residual.is_none_or(|r| r.len() == out.len()));
        let residual = residual.map(|r| OutPtr(r.as_ptr().cast_mut()));
        let direct = self.k == 1 && self.stride == 1;
        let threads = rayon::current_num_threads().max(1);
        let packed = match &self.weight {
            Weights::Packed(p) => Some(p),
            Weights::Plain(_) => None,
        };

        // Column tiles sized for the cache; on small maps, enough tiles to feed every thread
        // (2 each, for balance), then split the output channels too. With `sgemm` the 1x1
        // input is packed per tile as well, so those tiles are sized like the patch tiles, and
        // all are whole panels where the map allows.
        let mut tn = match (direct, packed.is_some()) {
            (true, false) => DIRECT_TILE_COLS,
            (false, false) => (TILE_FLOATS / kk).clamp(64, 4096),
            (_, true) => ((TILE_FLOATS / kk).clamp(NR, 4096) / NR) * NR,
        };
        if n.div_ceil(tn) < 2 * threads {
            tn = if packed.is_some() {
                n.div_ceil(2 * threads).next_multiple_of(NR)
            } else {
                n.div_ceil(2 * threads).next_multiple_of(16).max(32)
            };
        }
        let tn = tn.min(n);
        let n_tiles = n.div_ceil(tn);
        let m_blocks = if n_tiles < 2 * threads {
            (2 * threads).div_ceil(n_tiles).min(self.c_out / 16).max(1)
        } else {
            1
        };
        let mb = self.c_out.div_ceil(m_blocks).next_multiple_of(8);

        let out_ptr = OutPtr(out.as_mut_ptr());
        (0..n_tiles * m_blocks).into_par_iter().for_each(|t| {
            let (ti, mi) = (t / m_blocks, t % m_blocks);
            let (n0, m0) = (ti * tn, mi * mb);
            let (n1, m1) = ((n0 + tn).min(n), (m0 + mb).min(self.c_out));
            if m0 >= m1 {
                return;
            }
            let (cols, rows) = (n1 - n0, m1 - m0);
            // SAFETY: (m0..m1, n0..n1) is inside the [c_out, n] output, and no other tile
            // touches it.
            let dst = unsafe { out_ptr.at(m0 * n + n0) };
            // SAFETY: the same block of the residual, which has the output's layout and is
            // only read.
            let res = residual.map(|r| unsafe { r.at(m0 * n + n0).cast_const() });
            let lhs = match &self.weight {
                Weights::Packed(p) => {
                    // The 1x1 input is packed into panels; the patch tile is gathered row-major
                    // (long runs) and read in place, NR floats of slack after it.
                    let len = if direct {
                        sgemm::packed_rhs_len(kk, cols)
                    } else {
                        kk * cols + NR
                    };
                    with_scratch(len, |col| {
                        let rhs = if direct {
                            sgemm::pack_rhs(&x[n0..], n, kk, cols, col);
                            Rhs::packed(col, kk)
                        } else {
                            self.im2col(x, h, w, ow, n0, n1, col);
                            Rhs::rows(col, cols)
                        };
                        let epi = Epilogue {
                            bias: &self.bias[m0..m1],
                            silu: self.silu,
                            residual: res,
                        };
                        // SAFETY: m0 is a multiple of 8 (so of MR) and m1 <= c_out; `col` holds
                        // the tile's panels; dst and the residual as above, at row stride n.
                        unsafe { sgemm::gemm_packed(p, m0, rows, rhs, cols, dst, n, Some(epi)) };
                    });
                    return;
                }
                Weights::Plain(wt) => wt[m0 * kk..].as_ptr(),
            };
            if direct {
                // SAFETY: lhs is [rows, kk] at row stride kk; rhs is x[.., n0..n1], [kk, cols]
                // at row stride n; dst as above. All in bounds.
                unsafe { gemm_tile(rows, cols, kk, dst, n, lhs, x[n0..].as_ptr(), n) };
            } else {
                with_scratch(kk * cols, |col| {
                    self.im2col(x, h, w, ow, n0, n1, col);
                    // SAFETY: rhs is the [kk, cols] patch tile; the rest as above.
                    unsafe { gemm_tile(rows, cols, kk, dst, n, lhs, col.as_ptr(), cols) };
                });
            }
            // SAFETY: the same block of the output, written by the product just above, and of
            // the residual.
            unsafe { bias_act(dst, rows, cols, n, &self.bias[m0..m1], self.silu, res) };
        });
    }

    /// The patch matrix of output pixels `n0..n1` (row-major over the `oh x ow` output):
    /// `col[(ci, ky, kx), j]` = input value under tap (ky, kx) of channel ci for pixel n0 + j,
    /// zero in the padding.
    #[allow(clippy::too_many_arguments)]
    fn im2col(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        ow: usize,
        n0: usize,
        n1: usize,
        col: &mut [f32],
    ) {
        let (k, s, p) = (self.k, self.stride, self.pad);
        let cols = n1 - n0;
        for ci in 0..self.c_in {
            let plane = &x[ci * h * w..(ci + 1) * h * w];
            for ky in 0..k {
                for kx in 0..k {
                    let r = (ci * k + ky) * k + kx;
                    let row = &mut col[r * cols..(r + 1) * cols];
                    let mut idx = n0;
                    while idx < n1 {
                        let (oy, ox0) = (idx / ow, idx % ow);
                        let ox1 = ow.min(ox0 + (n1 - idx));
                        let dst = &mut row[idx - n0..idx - n0 + (ox1 - ox0)];
                        idx += ox1 - ox0;
                        let iy = oy * s + ky;
                        if iy < p || iy - p >= h {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &plane[(iy - p) * w..(iy - p + 1) * w];
                        if s == 1 {
                            // ix = ox + kx - p is inside [0, w) for ox in [lo, hi).
                            let lo = (p.saturating_sub(kx)).clamp(ox0, ox1);
                            let hi = (w + p).saturating_sub(kx).clamp(ox0, ox1);
                            dst[..lo - ox0].fill(0.0);
                            dst[lo - ox0..hi - ox0].copy_from_slice(&src[lo + kx - p..hi + kx - p]);
                            dst[hi - ox0..].fill(0.0);
                        } else {
                            for (d, ox) in dst.iter_mut().zip(ox0..ox1) {
                                let ix = ox * s + kx;
                                *d = if ix >= p && ix - p < w {
                                    src[ix - p]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            }
        }
    }
}

impl ConvCpu {
    /// The op's body for both arities: checks the input, allocates the output, runs each image.
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
                "edgesift-conv2d: {c} input channels, the weights take {}",
                self.c_in
            );
        }
        let (oh, ow) = self.out_size(h, w);
        let shape = Shape::from((b, self.c_out, oh, ow));
        let res = match residual {
            Some((s, l)) => {
                if l.shape() != &shape {
                    candle_core::bail!(
                        "edgesift-conv2d: residual {:?}, output {:?}",
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

/// `dst[rows, cols] (row stride dst_rs) = lhs[rows, kk] (row stride kk) x rhs[kk, cols]
/// (row stride rhs_rs)`, single-threaded (the caller parallelises over tiles).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_tile(
    rows: usize,
    cols: usize,
    kk: usize,
    dst: *mut f32,
    dst_rs: usize,
    lhs: *const f32,
    rhs: *const f32,
    rhs_rs: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm(
            rows,
            cols,
            kk,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs,
            1,
            kk as isize,
            rhs,
            1,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

pub(super) fn f32_contiguous<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!(
            "edgesift kernel: the {what} must be f32, got {:?}",
            storage.dtype()
        );
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("edgesift kernel: the {what} must be contiguous");
    };
    Ok(&data[start..end])
}

impl CustomOp1 for ConvCpu {
    fn name(&self) -> &'static str {
        "edgesift-conv2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward(storage, layout, None)
    }
}

/// The convolution with a residual added after the activation (`act(conv(x)) + r`, the
/// bottleneck shortcut), so the sum costs no separate pass.
pub(crate) struct ConvAdd<'a>(pub(crate) &'a ConvCpu);

impl CustomOp2 for ConvAdd<'_> {
    fn name(&self) -> &'static str {
        "edgesift-conv2d-add"
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

    /// Against candle's own conv2d + bias + SiLU, over the shapes the network uses (odd sizes
    /// too, so tiles end mid-row and the padding is hit on every side).
    #[test]
    fn matches_candle_conv() {
        let cases = [
            // (c_in, c_out, k, stride, h, w, silu)
            (3, 16, 3, 2, 33, 47, true),
            (16, 32, 3, 1, 20, 24, true),
            (32, 48, 1, 1, 17, 9, true),
            (24, 8, 3, 2, 8, 8, false),
            (64, 64, 3, 1, 5, 7, true),
            (8, 144, 1, 1, 40, 40, false),
            // Channel counts that no micro-kernel width divides, 1x1 and 3x3.
            (5, 7, 1, 1, 13, 11, true),
            (9, 13, 3, 2, 15, 17, true),
            // Winograd F(4x4) (the second one too) and F(2x2).
            (40, 24, 3, 1, 30, 29, true),
            (260, 12, 3, 1, 11, 12, true),
        ];
        for (i, &(ci, co, k, s, h, w, silu)) in cases.iter().enumerate() {
            let wv = values(co * ci * k * k, i as u64 + 1);
            let bv = values(co, i as u64 + 100);
            let xv = values(2 * ci * h * w, i as u64 + 200);
            let dev = Device::Cpu;
            let x = Tensor::from_vec(xv, (2, ci, h, w), &dev).unwrap();
            let wt = Tensor::from_vec(wv.clone(), (co, ci, k, k), &dev).unwrap();
            let bt = Tensor::from_vec(bv.clone(), (1, co, 1, 1), &dev).unwrap();
            let mut want = x
                .conv2d(&wt, k / 2, s, 1, 1)
                .unwrap()
                .broadcast_add(&bt)
                .unwrap();
            if silu {
                want = want.silu().unwrap();
            }
            let want_dims = want.dims().to_vec();
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            // Both products: `sgemm` where this CPU has AVX2 + FMA, and the `gemm` crate
            // (the other CPUs' path) always.
            for packed in [false, sgemm::available()] {
                let op = ConvCpu::with_kernel(wv.clone(), bv.clone(), ci, k, s, silu, packed);
                let got = x.apply_op1_no_bwd(&op).unwrap();
                assert_eq!(got.dims(), want_dims, "case {i}");
                let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                // Winograd F(4x4)'s rounding goes with the magnitudes around an output, not
                // with the output itself: bounded relative to the largest output as in
                // `winograd::tests::matches_candle_conv`.
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= (1e-4 * w.abs().max(1.0)).max(3e-5 * scale),
                        "case {i} packed {packed} value {j}: {g} vs {w}"
                    );
                }
            }
        }
    }

    /// The Winograd route through the op: a channel-narrowed input (a view at an offset into a
    /// larger tensor) with a residual, SiLU, odd width.
    #[test]
    fn winograd_route_narrowed_with_residual() {
        let (ci, co, h, w) = (48, 20, 26, 27);
        assert_eq!(winograd_tile(ci, h, w), Some(Tile::F4));
        let dev = Device::Cpu;
        let x = Tensor::from_vec(values(2 * ci * h * w, 21), (1, 2 * ci, h, w), &dev).unwrap();
        let half = x.narrow(1, ci, ci).unwrap();
        let (wv, bv) = (values(co * ci * 9, 22), values(co, 23));
        let op = ConvCpu::new(wv.clone(), bv.clone(), ci, 3, 1, true);
        let r = Tensor::from_vec(values(co * h * w, 24), (1, co, h, w), &dev).unwrap();
        let got = half.apply_op2_no_bwd(&r, &ConvAdd(&op)).unwrap();
        let wt = Tensor::from_vec(wv, (co, ci, 3, 3), &dev).unwrap();
        let bt = Tensor::from_vec(bv, (1, co, 1, 1), &dev).unwrap();
        let want = half.contiguous().unwrap().conv2d(&wt, 1, 1, 1, 1).unwrap();
        let want = (want.broadcast_add(&bt).unwrap().silu().unwrap() + &r).unwrap();
        let scale = want
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let diff = (got - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff <= 1e-5 * scale, "{diff} of {scale}");
    }

    /// Which path yolov8n's 3x3 stride-1 layers take at 640 (maps 160 to 20) and 320 (10x10).
    #[test]
    fn winograd_tile_by_shape() {
        assert_eq!(winograd_tile(16, 160, 160), Some(Tile::F4));
        assert_eq!(winograd_tile(32, 20, 20), Some(Tile::F4));
        assert_eq!(winograd_tile(128, 13, 13), Some(Tile::F4));
        assert_eq!(winograd_tile(256, 20, 20), Some(Tile::F4));
        assert_eq!(winograd_tile(16, 12, 40), Some(Tile::F4));
        assert_eq!(winograd_tile(512, 11, 40), Some(Tile::F2));
        assert_eq!(winograd_tile(256, 10, 10), None);
        assert_eq!(winograd_tile(64, 10, 10), None);
        assert_eq!(winograd_tile(400, 10, 10), Some(Tile::F2));
    }

    #[test]
    fn narrowed_input_and_wrong_channels() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(values(2 * 4 * 6 * 6, 7), (1, 8, 6, 6), &dev).unwrap();
        let half = x.narrow(1, 4, 4).unwrap();
        let wv = values(5 * 4 * 9, 8);
        let op = ConvCpu::new(wv.clone(), vec![0.0; 5], 4, 3, 1, false);
        let got = half.apply_op1_no_bwd(&op).unwrap();
        let wt = Tensor::from_vec(wv, (5, 4, 3, 3), &dev).unwrap();
        let want = half.contiguous().unwrap().conv2d(&wt, 1, 1, 1, 1).unwrap();
        let diff = (got - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "{diff}");
        let err = x.apply_op1_no_bwd(&op).unwrap_err().to_string();
        assert!(err.contains("8 input channels"), "{err}");

        // With a residual: act(conv(x)) + r.
        let r = Tensor::from_vec(values(5 * 36, 9), (1, 5, 6, 6), &dev).unwrap();
        let got = half.apply_op2_no_bwd(&r, &ConvAdd(&op)).unwrap();
        let want = (want + &r).unwrap();
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "{diff}");
        let wrong = Tensor::zeros((1, 5, 6, 5), candle_core::DType::F32, &dev).unwrap();
        let err = half.apply_op2_no_bwd(&wrong, &ConvAdd(&op)).unwrap_err();
        assert!(err.to_string().contains("residual"), "{err}");
    }
}
