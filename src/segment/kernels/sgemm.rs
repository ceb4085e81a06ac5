//! An f32 matrix product for the convolutions with the weights packed once, at load, and the
//! epilogue (bias, SiLU, residual) applied on the accumulators before the store.
//!
//! `dst [rows, cols] = W [rows, k] x B [k, cols]`, where `W` (the weights, the same on every
//! call) is held as a [`PackedLhs`]: panels of [`MR`] rows, each `k x MR` with the rows
//! interleaved, so that the micro-kernel reads it front to back. `B` (im2col patches, the input
//! of a 1x1 convolution, Winograd's transformed input) is laid out by its producer in panels of
//! [`NR`] columns, `k x NR` each (see [`pack_rhs`]), so nothing is re-packed inside the product.
//!
//! The AVX2 + FMA micro-kernel computes a 4 x 24 block in 12 ymm accumulators (per k: 3 loads of
//! `B`, 4 broadcasts of `W`, 12 FMAs). 4 rows divide every channel count of the YOLOv8 family
//! (16, 32, 64, 80, 96, ...), where `gemm`'s 6-wide kernel left 16/32/64-row remainders to edge
//! kernels. `k` is cut into blocks of [`KC`] so that a `B` panel block (24 KiB) stays in L1
//! while the weights stream past it; the partial sums of earlier blocks are added from `dst`.
//! Edge blocks (rows past a multiple of 4, columns past a multiple of 24) are computed in full and
//! stored with masks. A scalar kernel with the same contract serves other CPUs and the tests;
//! `ConvCpu` uses this module only where [`available`] says AVX2 + FMA (elsewhere, e.g.
//! aarch64, it keeps the `gemm` crate).

/// Rows of `W` per panel (and of the micro-kernel's block).
pub(super) const MR: usize = 4;
/// Columns of `B` per panel (and of the micro-kernel's block).
pub(super) const NR: usize = 24;
/// `k` per pass over the block: a `B` panel's `KC x NR` floats (24 KiB) stay in L1.
const KC: usize = 256;

/// Whether the fast kernel runs on this CPU (x86-64 with AVX2 and FMA).
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `[rows, k]` matrix in panels of [`MR`] rows: element `(r, kk)` at
/// `((r / MR) * k + kk) * MR + r % MR`; rows past `rows` (up to a multiple of `MR`) are zero.
#[derive(Debug)]
pub(super) struct PackedLhs {
    data: Vec<f32>,
    rows: usize,
    k: usize,
}

impl PackedLhs {
    /// Packs the row-major `[rows, k]` matrix `w`.
    pub(super) fn new(w: &[f32], rows: usize, k: usize) -> Self {
        assert_eq!(w.len(), rows * k, "a [rows, k] matrix");
        let mut data = vec![0f32; rows.next_multiple_of(MR) * k];
        for (r, row) in w.chunks_exact(k.max(1)).enumerate().take(rows) {
            let panel = &mut data[(r / MR) * k * MR..];
            for (kk, &v) in row.iter().enumerate() {
                panel[kk * MR + r % MR] = v;
            }
        }
        Self { data, rows, k }
    }

    /// The matrix back in row-major order (for building another form of the weights).
    pub(super) fn row_major(&self) -> Vec<f32> {
        let k = self.k;
        let mut w = vec![0f32; self.rows * k];
        for (r, row) in w.chunks_exact_mut(k.max(1)).enumerate().take(self.rows) {
            let panel = &self.data[(r / MR) * k * MR..];
            for (kk, v) in row.iter_mut().enumerate() {
                *v = panel[kk * MR + r % MR];
            }
        }
        w
    }
}

/// Floats of `B` in panel layout for `k` rows and `cols` columns.
pub(super) fn packed_rhs_len(k: usize, cols: usize) -> usize {
    cols.div_ceil(NR) * NR * k
}

/// Packs `src` (`k` rows of `cols` values, row `kk` at `src[kk * stride..]`) into `dst` in
/// panel layout. The columns past `cols` in the last panel are left as they are: the kernel
/// computes them but never stores them.
pub(super) fn pack_rhs(src: &[f32], stride: usize, k: usize, cols: usize, dst: &mut [f32]) {
    debug_assert!(dst.len() >= packed_rhs_len(k, cols));
    for kk in 0..k {
        let row = &src[kk * stride..kk * stride + cols];
        for (p, chunk) in row.chunks(NR).enumerate() {
            let at = (p * k + kk) * NR;
            copy_short(&mut dst[at..at + chunk.len()], chunk);
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of the panel layout, in 8-float blocks of
/// fixed size: `copy_from_slice` of a run of variable length is a call to `memmove`, which for
/// runs of at most 24 floats cost more than the copy.
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "same lengths");
    let mut d8 = dst.chunks_exact_mut(8);
    let mut s8 = src.chunks_exact(8);
    for (d, s) in (&mut d8).zip(&mut s8) {
        let block: [f32; 8] = s.try_into().expect("8 floats");
        d.copy_from_slice(&block);
    }
    for (d, s) in d8.into_remainder().iter_mut().zip(s8.remainder()) {
        *d = *s;
    }
}

/// The right operand `B` (`k` rows): panel `p` (columns `p * NR ..`) starts at
/// `data[p * panel]`, its row `kk` at `ldb * kk` further. Packed ([`Rhs::packed`], `ldb = NR`) or
/// read in place from a row-major matrix ([`Rhs::rows`], `panel = NR`).
#[derive(Clone, Copy)]
pub(super) struct Rhs<'a> {
    data: &'a [f32],
    ldb: usize,
    panel: usize,
}

impl<'a> Rhs<'a> {
    /// `data` in panel layout (see [`pack_rhs`]) for `k` rows.
    pub(super) fn packed(data: &'a [f32], k: usize) -> Self {
        Self {
            data,
            ldb: NR,
            panel: k * NR,
        }
    }

    /// A row-major matrix at row stride `ldb`. The kernel reads whole panels: `data` must
    /// extend `NR` floats past the last row's first column of the last panel (the values there
    /// are computed on but never stored).
    pub(super) fn rows(data: &'a [f32], ldb: usize) -> Self {
        Self {
            data,
            ldb,
            panel: NR,
        }
    }

    /// Whether the `k x cols` matrix is inside `data`, full panels read.
    fn holds(&self, k: usize, cols: usize) -> bool {
        k == 0
            || cols == 0
            || (cols - 1) / NR * self.panel + (k - 1) * self.ldb + NR <= self.data.len()
    }
}

/// What is done to each product before it is stored: `act(v + bias[r]) (+ residual)`, the same
/// as `act::bias_act`.
#[derive(Clone, Copy)]
pub(super) struct Epilogue<'a> {
    /// One value per row of the product.
    pub(super) bias: &'a [f32],
    pub(super) silu: bool,
    /// Laid out as the destination (same row stride), only read.
    pub(super) residual: Option<*const f32>,
}

/// `dst[r, j] = epi(sum_kk W[row0 + r, kk] B[kk, j])` for `r < rows`, `j < cols`, with `dst` at
/// row stride `ldc`; every element of that block is written, nothing else.
///
/// # Safety
/// `row0` must be a multiple of [`MR`] and `row0 + rows` at most the packed rows; `dst` (and
/// the epilogue's residual)
/// must address `rows` rows of `cols` floats at stride `ldc` that nothing else accesses during
/// the call; `epi.bias` must hold `rows` values.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_packed(
    lhs: &PackedLhs,
    row0: usize,
    rows: usize,
    rhs: Rhs,
    cols: usize,
    dst: *mut f32,
    ldc: usize,
    epi: Option<Epilogue>,
) {
    assert!(row0 % MR == 0 && row0 + rows <= lhs.rows, "row block");
    assert!(rhs.holds(lhs.k, cols), "rhs panels");
    assert!(epi.is_none_or(|e| e.bias.len() >= rows), "a bias per row");
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the features were just detected; the rest is the caller's.
        return unsafe { gemm_blocks::<true>(lhs, row0, rows, rhs, cols, dst, ldc, epi) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { gemm_blocks::<false>(lhs, row0, rows, rhs, cols, dst, ldc, epi) }
}

/// [`gemm_packed`]'s loops, over the AVX2 kernel (`FAST`) or the scalar one.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn gemm_blocks<const FAST: bool>(
    lhs: &PackedLhs,
    row0: usize,
    rows: usize,
    rhs: Rhs,
    cols: usize,
    dst: *mut f32,
    ldc: usize,
    epi: Option<Epilogue>,
) {
    let k = lhs.k;
    let ldb = rhs.ldb;
    if k == 0 {
        for r in 0..rows {
            for j in 0..cols {
                let mut v = 0.0;
                if let Some(e) = epi {
                    v = e.bias[r];
                    if e.silu {
                        v = super::act::silu_f32(v);
                    }
                    if let Some(res) = e.residual {
                        // SAFETY: the caller's.
                        v += unsafe { *res.add(r * ldc + j) };
                    }
                }
                // SAFETY: the caller's.
                unsafe { *dst.add(r * ldc + j) = v };
            }
        }
        return;
    }
    let mut k0 = 0;
    while k0 < k {
        let kc = KC.min(k - k0);
        let (first, last) = (k0 == 0, k0 + kc == k);
        for (p, c0) in (0..cols).step_by(NR).enumerate() {
            let nc = NR.min(cols - c0);
            let b = rhs.data[p * rhs.panel + k0 * ldb..].as_ptr();
            for r0 in (0..rows).step_by(MR) {
                let nr = MR.min(rows - r0);
                let a = lhs.data[((row0 + r0) / MR * k + k0) * MR..].as_ptr();
                let mut bias = [0f32; MR];
                let tail = epi.filter(|_| last).map(|e| {
                    bias[..nr].copy_from_slice(&e.bias[r0..r0 + nr]);
                    // SAFETY: inside the caller's residual block.
                    let res = e.residual.map(|p| unsafe { p.add(r0 * ldc + c0) });
                    (e.silu, res)
                });
                let block = Block {
                    // SAFETY: inside the caller's block.
                    c: unsafe { dst.add(r0 * ldc + c0) },
                    ldc,
                    nr,
                    nc,
                    first,
                };
                if FAST {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `FAST` is only chosen after detecting the features; `a` and `b`
                    // hold `kc` steps; the block is the caller's.
                    unsafe {
                        avx2::micro(kc, a, b, ldb, &block, tail.map(|(s, r)| (&bias, s, r)))
                    };
                } else {
                    // SAFETY: as above.
                    unsafe {
                        micro_scalar(kc, a, b, ldb, &block, tail.map(|(s, r)| (&bias, s, r)))
                    };
                }
            }
        }
        k0 += kc;
    }
}

/// Where one micro-kernel call stores: `nr` rows of `nc` values at `c` (stride `ldc`); unless
/// `first`, the values there are partial sums to add.
struct Block {
    c: *mut f32,
    ldc: usize,
    nr: usize,
    nc: usize,
    first: bool,
}

/// The epilogue of one block: its `MR` biases, SiLU, the residual at the block's origin.
type Tail<'a> = Option<(&'a [f32; MR], bool, Option<*const f32>)>;

/// The scalar micro-kernel (other CPUs and the tests).
///
/// # Safety
/// `a` holds `kc * MR` floats, `b` `kc` rows of `NR` at stride `ldb`; the block's memory is writable (and the
/// residual's readable) and nobody else's.
unsafe fn micro_scalar(
    kc: usize,
    a: *const f32,
    b: *const f32,
    ldb: usize,
    blk: &Block,
    tail: Tail,
) {
    let mut acc = [[0f32; NR]; MR];
    for kk in 0..kc {
        // SAFETY: the caller's.
        let (av, bv) = unsafe {
            (
                std::slice::from_raw_parts(a.add(kk * MR), MR),
                std::slice::from_raw_parts(b.add(kk * ldb), NR),
            )
        };
        for (row, &x) in acc.iter_mut().zip(av) {
            for (c, &y) in row.iter_mut().zip(bv) {
                *c += x * y;
            }
        }
    }
    for (r, row) in acc.iter().enumerate().take(blk.nr) {
        for (j, &v) in row.iter().enumerate().take(blk.nc) {
            let at = r * blk.ldc + j;
            // SAFETY: inside the block.
            let mut v = if blk.first {
                v
            } else {
                v + unsafe { *blk.c.add(at) }
            };
            if let Some((bias, silu, res)) = tail {
                v += bias[r];
                if silu {
                    v = super::act::silu_f32(v);
                }
                if let Some(res) = res {
                    // SAFETY: the residual block.
                    v += unsafe { *res.add(at) };
                }
            }
            // SAFETY: inside the block.
            unsafe { *blk.c.add(at) = v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use super::{Block, Tail, MR, NR};
    use std::arch::x86_64::*;

    /// `-1` eight times then `0` eight times: the mask of the first `n` lanes starts at `8 - n`.
    static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

    /// The 4 x 24 micro-kernel; see the module's doc.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; otherwise as `micro_scalar`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn micro(
        kc: usize,
        a: *const f32,
        b: *const f32,
        ldb: usize,
        blk: &Block,
        tail: Tail,
    ) {
        const V: usize = NR / 8;
        // The k loop in assembly: written with intrinsics (an array of accumulators or twelve
        // named ones), LLVM rotated the registers through moves every step and kept one
        // accumulator on the stack, since the loop needs all 16 ymm registers (12 accumulators,
        // 3 of `B`, 1 broadcast). That ran at less than half the speed of `gemm`'s kernel.
        let z = _mm256_setzero_ps();
        let (mut c00, mut c01, mut c02, mut c10, mut c11, mut c12) = (z, z, z, z, z, z);
        let (mut c20, mut c21, mut c22, mut c30, mut c31, mut c32) = (z, z, z, z, z, z);
        if kc > 0 {
            // SAFETY: reads `kc * MR` floats from `a` and `kc` rows of `NR` from `b`, which the caller
            // guarantees; writes only the registers named.
            unsafe {
                std::arch::asm!(
                    "2:",
                    "vmovups ymm12, [{b}]",
                    "vmovups ymm13, [{b} + 32]",
                    "vmovups ymm14, [{b} + 64]",
                    "vbroadcastss ymm15, dword ptr [{a}]",
                    "vfmadd231ps ymm0, ymm15, ymm12",
                    "vfmadd231ps ymm1, ymm15, ymm13",
                    "vfmadd231ps ymm2, ymm15, ymm14",
                    "vbroadcastss ymm15, dword ptr [{a} + 4]",
                    "vfmadd231ps ymm3, ymm15, ymm12",
                    "vfmadd231ps ymm4, ymm15, ymm13",
                    "vfmadd231ps ymm5, ymm15, ymm14",
                    "vbroadcastss ymm15, dword ptr [{a} + 8]",
                    "vfmadd231ps ymm6, ymm15, ymm12",
                    "vfmadd231ps ymm7, ymm15, ymm13",
                    "vfmadd231ps ymm8, ymm15, ymm14",
                    "vbroadcastss ymm15, dword ptr [{a} + 12]",
                    "vfmadd231ps ymm9, ymm15, ymm12",
                    "vfmadd231ps ymm10, ymm15, ymm13",
                    "vfmadd231ps ymm11, ymm15, ymm14",
                    "add {a}, 16",
                    "add {b}, {ldb}",
                    "dec {k}",
                    "jnz 2b",
                    a = inout(reg) a => _,
                    b = inout(reg) b => _,
                    ldb = in(reg) ldb * 4,
                    k = inout(reg) kc => _,
                    inout("ymm0") c00,
                    inout("ymm1") c01,
                    inout("ymm2") c02,
                    inout("ymm3") c10,
                    inout("ymm4") c11,
                    inout("ymm5") c12,
                    inout("ymm6") c20,
                    inout("ymm7") c21,
                    inout("ymm8") c22,
                    inout("ymm9") c30,
                    inout("ymm10") c31,
                    inout("ymm11") c32,
                    out("ymm12") _,
                    out("ymm13") _,
                    out("ymm14") _,
                    out("ymm15") _,
                    options(nostack, readonly),
                );
            }
        }
        let acc = [
            [c00, c01, c02],
            [c10, c11, c12],
            [c20, c21, c22],
            [c30, c31, c32],
        ];
        if blk.nr == MR && blk.nc == NR && blk.first && tail.is_none() {
            // The common case of Winograd's products, whose k is small: straight stores.
            for (r, row) in acc.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    // SAFETY: a full block: rows r < MR, columns 8 j + 8 <= NR.
                    unsafe { _mm256_storeu_ps(blk.c.add(r * blk.ldc + 8 * j), v) };
                }
            }
            return;
        }
        // Lanes of each vector that are stored (8 but in the last panel's tail).
        let lanes: [usize; V] = std::array::from_fn(|j| blk.nc.saturating_sub(8 * j).min(8));
        // SAFETY: `lanes[j] <= 8`, so the 8 values read stay inside MASKS.
        let masks: [__m256i; V] = std::array::from_fn(|j| unsafe {
            _mm256_loadu_si256(MASKS.as_ptr().add(8 - lanes[j]).cast())
        });
        for (r, row) in acc.iter().enumerate().take(blk.nr) {
            for (j, &v) in row.iter().enumerate() {
                if lanes[j] == 0 {
                    continue;
                }
                let at = r * blk.ldc + 8 * j;
                let full = lanes[j] == 8;
                // SAFETY: loads and stores of the block's lanes only (masked in the tail).
                unsafe {
                    let mut v = v;
                    if !blk.first {
                        v = _mm256_add_ps(v, load(blk.c.add(at), full, masks[j]));
                    }
                    if let Some((bias, silu, res)) = tail {
                        v = _mm256_add_ps(v, _mm256_set1_ps(bias[r]));
                        if silu {
                            v = silu8(v);
                        }
                        if let Some(res) = res {
                            v = _mm256_add_ps(v, load(res.add(at), full, masks[j]));
                        }
                    }
                    if full {
                        _mm256_storeu_ps(blk.c.add(at), v);
                    } else {
                        _mm256_maskstore_ps(blk.c.add(at), masks[j], v);
                    }
                }
            }
        }
    }

    /// 8 floats at `p`, or the lanes of `mask` (the others zero) unless `full`.
    ///
    /// # Safety
    /// The loaded lanes must be readable.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load(p: *const f32, full: bool, mask: __m256i) -> __m256 {
        // SAFETY: the caller's.
        unsafe {
            if full {
                _mm256_loadu_ps(p)
            } else {
                _mm256_maskload_ps(p, mask)
            }
        }
    }

    /// `x * sigmoid(x)` on 8 lanes: `act::silu_f32`'s Cephes `expf` with FMAs, `2^n` added to
    /// the exponent of the polynomial's result, and `1 / (1 + e^-x)` as a reciprocal estimate
    /// with one Newton step instead of `vdivps`. Relative error within 2.5e-7 of the exact
    /// value for x >= -87 (`act::tests::silu8_matches_the_exact_value`; below, where SiLU is
    /// under 1e-36 in magnitude, the reciprocal underflows to 0), and 1.5x the speed
    /// of the plain translation (0.65 vs 1.05 ns a value on this Zen 3), which every SiLU of the
    /// network (19 M values a frame at 640) went through.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) fn silu8(x: __m256) -> __m256 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        const ROUND: f32 = 12_582_912.0;
        let s = _mm256_set1_ps;
        // e^-x with -x clamped to [-86, 88]: e = n ln2 + r, |r| <= ln2 / 2.
        let e = _mm256_min_ps(
            _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), x), s(-86.0)),
            s(88.0),
        );
        let t = _mm256_fmadd_ps(e, s(LOG2E), s(ROUND));
        let n = _mm256_sub_ps(t, s(ROUND));
        let r = _mm256_fnmadd_ps(n, s(LN2_LO), _mm256_fnmadd_ps(n, s(LN2_HI), e));
        let mut p = s(1.987_569_1e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ] {
            p = _mm256_fmadd_ps(p, r, s(c));
        }
        // y = e^r in [0.7, 1.42]; n in [-125, 127], so y * 2^n is normal and is y with n added
        // to its exponent field. t's low bits hold n (ROUND = 1.5 * 2^23).
        let y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), s(1.0));
        let n_bits = _mm256_slli_epi32::<23>(_mm256_sub_epi32(
            _mm256_castps_si256(t),
            _mm256_set1_epi32(ROUND.to_bits() as i32),
        ));
        let ex = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(y), n_bits));
        // 1 / d, d = 1 + e^-x in [1, 2^127]: the 12-bit estimate and one Newton step.
        let d = _mm256_add_ps(s(1.0), ex);
        let est = _mm256_rcp_ps(d);
        let inv = _mm256_mul_ps(est, _mm256_fnmadd_ps(d, est, s(2.0)));
        _mm256_mul_ps(x, inv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn silu(x: f64) -> f64 {
        x / (1.0 + (-x).exp())
    }

    /// Every edge against a plain f64 sum: rows not a multiple of MR (and a row block starting
    /// at a later panel), columns not a multiple of NR, odd k and k over KC (partial sums added
    /// back), with and without bias/SiLU/residual; the destination's row stride is wider than
    /// the block and the values around the block must stay untouched. Both the AVX2 kernel
    /// (where the CPU has it) and the scalar one.
    #[test]
    fn matches_a_plain_sum_on_every_edge() {
        let cases = [
            // (rows, row0, block rows, cols, k)
            (4, 0, 4, 24, 1),
            (7, 0, 7, 25, 3),
            (13, 4, 9, 23, 17),
            (16, 8, 8, 48, 64),
            (6, 4, 2, 1, 5),
            (33, 0, 33, 71, 300),
            (12, 4, 5, 50, 513),
            (3, 0, 3, 8, 0),
        ];
        let tails = [
            (false, false, false),
            (true, false, false),
            (true, true, false),
        ];
        let tails = tails
            .into_iter()
            .chain([(true, true, true), (true, false, true)]);
        let tails: Vec<_> = tails.collect();
        let kernels: &[bool] = if available() {
            &[true, false]
        } else {
            &[false]
        };
        for (ci, &(rows, row0, brows, cols, k)) in cases.iter().enumerate() {
            let w = values(rows * k, ci as u64 + 1);
            let bmat = values(k * cols, ci as u64 + 50);
            let bias = values(rows, ci as u64 + 90);
            let ldc = cols + 5;
            let res = values(brows * ldc, ci as u64 + 120);
            let lhs = PackedLhs::new(&w, rows, k);
            assert_eq!(lhs.row_major(), w);
            let mut packed = vec![f32::NAN; packed_rhs_len(k, cols)];
            pack_rhs(&bmat, cols, k, cols, &mut packed);
            // The same matrix in place, at a wider row stride and with the panel overhang.
            let ldb = cols + 3;
            let mut inplace = vec![f32::NAN; k * ldb + NR];
            for kk in 0..k {
                inplace[kk * ldb..kk * ldb + cols]
                    .copy_from_slice(&bmat[kk * cols..(kk + 1) * cols]);
            }
            for &(with_bias, with_silu, with_res) in &tails {
                for (&fast, in_place) in kernels.iter().flat_map(|f| [(f, false), (f, true)]) {
                    let rhs = if in_place {
                        Rhs::rows(&inplace, ldb)
                    } else {
                        Rhs::packed(&packed, k)
                    };
                    let mut dst = vec![f32::NAN; brows * ldc];
                    // The columns between the block's rows are not the kernel's.
                    for r in 0..brows {
                        dst[r * ldc + cols..(r + 1) * ldc].fill(7.0);
                    }
                    let epi = with_bias.then(|| Epilogue {
                        bias: &bias[row0..],
                        silu: with_silu,
                        residual: with_res.then_some(res.as_ptr()),
                    });
                    assert!(rhs.holds(k, cols));
                    let args = (&lhs, row0, brows, rhs, cols, dst.as_mut_ptr(), ldc, epi);
                    unsafe {
                        if fast {
                            gemm_blocks::<true>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
                            )
                        } else {
                            gemm_blocks::<false>(
                                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
                            )
                        }
                    };
                    for r in 0..brows {
                        for j in 0..ldc {
                            let got = dst[r * ldc + j];
                            if j >= cols {
                                assert_eq!(got, 7.0, "case {ci} fast {fast}: ({r}, {j}) touched");
                                continue;
                            }
                            let mut want: f64 = (0..k)
                                .map(|kk| {
                                    w[(row0 + r) * k + kk] as f64 * bmat[kk * cols + j] as f64
                                })
                                .sum();
                            let mag: f64 = (0..k)
                                .map(|kk| {
                                    (w[(row0 + r) * k + kk] * bmat[kk * cols + j]).abs() as f64
                                })
                                .sum();
                            if with_bias {
                                want += bias[row0 + r] as f64;
                                if with_silu {
                                    want = silu(want);
                                }
                                if with_res {
                                    want += res[r * ldc + j] as f64;
                                }
                            }
                            let tol = 1e-6 * (mag + 2.0);
                            assert!(
                                (got as f64 - want).abs() <= tol,
                                "case {ci} fast {fast} in place {in_place} tail {with_bias}/{with_silu}/{with_res} \
                                 ({r}, {j}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packs_rhs_panels() {
        // 2 rows of 26 columns at stride 30: panel 0 holds columns 0..24, panel 1 columns 24..26.
        let src: Vec<f32> = (0..60).map(|v| v as f32).collect();
        let mut dst = vec![-1f32; packed_rhs_len(2, 26)];
        assert_eq!(dst.len(), 2 * 2 * NR);
        pack_rhs(&src, 30, 2, 26, &mut dst);
        assert_eq!(dst[..NR], src[..NR]);
        assert_eq!(dst[NR..2 * NR], src[30..30 + NR]);
        assert_eq!(dst[2 * NR..2 * NR + 2], [24.0, 25.0]);
        assert_eq!(dst[3 * NR..3 * NR + 2], [54.0, 55.0]);
        assert_eq!(dst[2 * NR + 2], -1.0);
    }
}
