//! Integer matrix product for the int8 convolutions: `acc[r, j] = sum_k w[r, k] * a[k, j]` with
//! `w` signed 8-bit (weights, symmetric, in -127..=127), `a` unsigned 8-bit (activations with a
//! zero point) and exact 32-bit accumulation.
//!
//! Both operands are laid out so that four consecutive `k` of one row (weights) or one column
//! (activations) are adjacent: the unit every int8 dot-product instruction consumes
//! (`vpdpbusd`, `sdot`). Weights: blocks of [`MR`] rows, `[k / 4][MR][4]`, `k` padded to a
//! multiple of 4 (zero weights there). Activations: for each group of 4 `k`, [`NR`] columns of
//! 4 bytes, contiguous (128 bytes), found at `base + offset[group]` ([`Offsets`]): the
//! convolutions point straight into their input stored with 4 channels interleaved per pixel
//! (implicit GEMM, no im2col; `kernels::qconv`).
//!
//! The micro-kernel is chosen once, at run time, from what the CPU has ([`Kernel::best`]):
//!
//! | kernel | CPU | instruction |
//! |---|---|---|
//! | `Avx512Vnni` | x86-64 with AVX-512 VNNI (Ice Lake, Zen 4) | `vpdpbusd` (u8 x i8, 4 per i32 lane, no saturation) |
//! | `Avx2` | x86-64 with AVX2 | `vpmovzxbw` + `vpmaddwd` (i16 x i16 pairs; `vpmaddubsw` would saturate at 2 x 255 x 127) |
//! | `NeonDot` | aarch64 with `dotprod` (Cortex-A76, A78: Pi 5, Orin) | `sdot` (i8 x i8; activations shifted by -128) |
//! | `Neon` | any aarch64 (Cortex-A72: Pi 4) | `smull` + `sadalp` (i8 x i8 -> i16 products, pairwise into i32) |
//! | `Scalar` | anything | plain Rust |
//!
//! Every kernel returns exactly the same integers (the unit tests check each one the CPU can run
//! against the scalar one). `sdot` is emitted with inline assembly inside a
//! `#[target_feature(enable = "dotprod")]` function and only called after
//! `is_aarch64_feature_detected!("dotprod")`: a Raspberry Pi 4 takes the plain NEON kernel
//! instead of dying of SIGILL. This file depends on nothing but `std`, so that its tests can be
//! compiled alone for aarch64 and run under qemu with and without `dotprod`
//! (docs/PERFORMANCE.md).

/// Weight rows per packed block (rows of one micro-tile).
pub(crate) const MR: usize = 8;
/// Activation columns per packed block (columns of one micro-tile).
pub(crate) const NR: usize = 32;

/// The micro-kernel implementations; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    #[cfg(target_arch = "aarch64")]
    Neon,
    #[cfg(target_arch = "aarch64")]
    NeonDot,
}

impl Kernel {
    /// Every kernel this CPU can run, best last.
    pub(crate) fn available() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut v = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Kernel::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                v.push(Kernel::Avx512Vnni);
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("neon") {
                v.push(Kernel::Neon);
            }
            if std::arch::is_aarch64_feature_detected!("neon")
                && std::arch::is_aarch64_feature_detected!("dotprod")
            {
                v.push(Kernel::NeonDot);
            }
        }
        v
    }

    /// The fastest kernel this CPU can run (detected once).
    pub(crate) fn best() -> Kernel {
        static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| *Kernel::available().last().unwrap_or(&Kernel::Scalar))
    }

    /// Whether this kernel reads the 16-bit copy of the weights.
    fn wants_wide(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self == Kernel::Avx2 {
            return true;
        }
        false
    }
}

/// Where each group of 4 `k` of a micro-tile's activations starts, relative to the tile's base,
/// and how many bytes past the base the farthest read ends.
#[derive(Debug, Clone)]
pub(crate) struct Offsets {
    offs: Vec<usize>,
    span: usize,
}

impl Offsets {
    /// Arbitrary offsets (bytes); each group reads `NR * 4` bytes from its offset.
    pub(crate) fn new(offs: Vec<usize>) -> Self {
        let span = offs.iter().max().map_or(0, |m| m + NR * 4);
        Self { offs, span }
    }

    /// A packed activation block (`pack_activations`): group `g` at `g * NR * 4`.
    #[cfg(test)]
    pub(crate) fn packed(kp: usize) -> Self {
        Self::new((0..kp / 4).map(|g| g * NR * 4).collect())
    }
}

/// Weights packed for [`PackedWeights::micro`]: `[row block][k / 4][MR][4]`, rows padded to a multiple of
/// [`MR`] and `k` to a multiple of 4 with zeros.
#[derive(Debug)]
pub(crate) struct PackedWeights {
    rows: usize,
    /// `k` rounded up to a multiple of 4.
    kp: usize,
    /// Empty where `wide` is used instead (the AVX2 kernel), so the weights are held once.
    data: Vec<i8>,
    /// The same values widened to i16, for the AVX2 kernel only (empty otherwise).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    wide: Vec<i16>,
    /// `sum_k w[r, k]` per row (padding rows too, zero), for zero-point corrections.
    row_sums: Vec<i32>,
    kernel: Kernel,
}

impl PackedWeights {
    /// Packs `w` (`[rows, k]`, row-major) for `kernel`.
    pub(crate) fn new(w: &[i8], rows: usize, k: usize, kernel: Kernel) -> Self {
        assert_eq!(w.len(), rows * k, "weights built by the loader");
        let kp = k.next_multiple_of(4);
        let blocks = rows.div_ceil(MR);
        let mut data = vec![0i8; blocks * MR * kp];
        let mut row_sums = vec![0i32; blocks * MR];
        for r in 0..rows {
            let (b, rr) = (r / MR, r % MR);
            for (kk, &v) in w[r * k..(r + 1) * k].iter().enumerate() {
                data[b * MR * kp + (kk / 4) * MR * 4 + rr * 4 + kk % 4] = v;
                row_sums[r] += v as i32;
            }
        }
        let wide = if kernel.wants_wide() {
            std::mem::take(&mut data)
                .iter()
                .map(|&v| v as i16)
                .collect()
        } else {
            Vec::new()
        };
        Self {
            rows,
            kp,
            data,
            wide,
            row_sums,
            kernel,
        }
    }

    /// `sum_k w[r, k]` for each real row.
    pub(crate) fn row_sums(&self) -> &[i32] {
        &self.row_sums[..self.rows]
    }

    /// `out[r * NR + j] = sum_k w[block * MR + r, k] * a[k, j]` for one [`MR`] x [`NR`] tile,
    /// where the group of `k` `4g..4g + 4` of column `j` is `a[offs[g] + 4j..][..4]`.
    pub(crate) fn micro(&self, block: usize, a: &[u8], offs: &Offsets, out: &mut [i32; MR * NR]) {
        let kg = self.kp / 4;
        assert!(block < self.rows.div_ceil(MR) && offs.offs.len() == kg && a.len() >= offs.span);
        let w = self
            .data
            .get(block * MR * self.kp..(block + 1) * MR * self.kp)
            .unwrap_or_default();
        let sums = &self.row_sums[block * MR..(block + 1) * MR];
        let (a, o) = (a.as_ptr(), &offs.offs[..]);
        match self.kernel {
            Kernel::Scalar => micro_scalar(w, a, o, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the kernel was chosen after detecting AVX2; every read is inside `a`
            // (offsets + NR * 4 <= span <= a.len(), asserted above) or `w` (kg groups).
            Kernel::Avx2 => unsafe {
                x86::micro_avx2(&self.wide[block * MR * self.kp..], a, o, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, after detecting AVX-512F and VNNI.
            Kernel::Avx512Vnni => unsafe { x86::micro_vnni(w, a, o, out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: as above, after detecting NEON.
            Kernel::Neon => unsafe { arm::micro_neon(w, a, o, sums, out) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: as above, after detecting NEON and dotprod.
            Kernel::NeonDot => unsafe { arm::micro_sdot(w, a, o, sums, out) },
        }
        let _ = sums;
    }
}

/// Interleaves four rows: `dst[4j + t] = rows[t][j]` for `j < dst.len() / 4`.
pub(crate) fn interleave4(rows: [&[u8]; 4], dst: &mut [u8]) {
    let n = dst.len() / 4;
    let rows = rows.map(|r| &r[..n]);
    let mut j = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        while j + 16 <= n {
            // SAFETY: SSE2 is part of x86-64; 16 bytes read from each row at j and 64 written at
            // 4j, all in bounds (j + 16 <= n).
            unsafe {
                let [a, b, c, d] = rows.map(|r| _mm_loadu_si128(r.as_ptr().add(j).cast()));
                let ab_lo = _mm_unpacklo_epi8(a, b);
                let ab_hi = _mm_unpackhi_epi8(a, b);
                let cd_lo = _mm_unpacklo_epi8(c, d);
                let cd_hi = _mm_unpackhi_epi8(c, d);
                let o = dst.as_mut_ptr().add(4 * j);
                _mm_storeu_si128(o.cast(), _mm_unpacklo_epi16(ab_lo, cd_lo));
                _mm_storeu_si128(o.add(16).cast(), _mm_unpackhi_epi16(ab_lo, cd_lo));
                _mm_storeu_si128(o.add(32).cast(), _mm_unpacklo_epi16(ab_hi, cd_hi));
                _mm_storeu_si128(o.add(48).cast(), _mm_unpackhi_epi16(ab_hi, cd_hi));
            }
            j += 16;
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        use std::arch::aarch64::*;
        while j + 16 <= n {
            // SAFETY: NEON is part of aarch64; bounds as above.
            unsafe {
                let [a, b, c, d] = rows.map(|r| vld1q_u8(r.as_ptr().add(j)));
                vst4q_u8(dst.as_mut_ptr().add(4 * j), uint8x16x4_t(a, b, c, d));
            }
            j += 16;
        }
    }
    for (j, d) in dst.chunks_exact_mut(4).enumerate().skip(j) {
        d.copy_from_slice(&[rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
    }
}

/// Packs columns `0..cols` of activations given as rows (`row(k)` is the `k`-th row, at least
/// `cols` bytes) into `out`: `[cols / NR blocks][kp / 4][NR][4]`, padding rows and columns with
/// `fill`. `out` must hold `cols.div_ceil(NR) * NR * kp` bytes. (The convolution reads its
/// input in place instead; this is the tests' reference layout.)
#[cfg(test)]
pub(crate) fn pack_activations<'a>(
    row: impl Fn(usize) -> &'a [u8],
    k: usize,
    cols: usize,
    fill: u8,
    out: &mut [u8],
) {
    let kp = k.next_multiple_of(4);
    let blocks = cols.div_ceil(NR);
    assert!(out.len() >= blocks * NR * kp);
    let pad = [fill; NR];
    let padded_row = |kk: usize| if kk < k { row(kk) } else { &pad[..] };
    for g in 0..kp / 4 {
        let rs = [
            padded_row(4 * g),
            padded_row(4 * g + 1),
            padded_row(4 * g + 2),
            padded_row(4 * g + 3),
        ];
        for b in 0..blocks {
            let dst = &mut out[(b * (kp / 4) + g) * NR * 4..][..NR * 4];
            let j0 = b * NR;
            let n = (cols - j0).min(NR);
            if n == NR && 4 * g + 3 < k {
                interleave4(std::array::from_fn(|t| &rs[t][j0..j0 + NR]), dst);
            } else {
                for (j, d) in dst.chunks_exact_mut(4).enumerate() {
                    for (t, v) in d.iter_mut().enumerate() {
                        *v = if j < n && 4 * g + t < k {
                            rs[t][j0 + j]
                        } else {
                            fill
                        };
                    }
                }
            }
        }
    }
}

fn micro_scalar(w: &[i8], a: *const u8, offs: &[usize], out: &mut [i32; MR * NR]) {
    out.fill(0);
    for (g, &off) in offs.iter().enumerate() {
        let wg = &w[g * MR * 4..(g + 1) * MR * 4];
        // SAFETY: the caller (`micro`) checked that every group's NR * 4 bytes are in bounds.
        let ag = unsafe { std::slice::from_raw_parts(a.add(off), NR * 4) };
        for r in 0..MR {
            let wr = &wg[r * 4..r * 4 + 4];
            for j in 0..NR {
                let aj = &ag[j * 4..j * 4 + 4];
                out[r * NR + j] += (0..4).map(|t| wr[t] as i32 * aj[t] as i32).sum::<i32>();
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// 8 rows x 32 columns in 16 zmm accumulators; per group of 4 `k`: two activation loads,
    /// eight weight broadcasts, sixteen `vpdpbusd`.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub(super) unsafe fn micro_vnni(
        w: &[i8],
        a: *const u8,
        offs: &[usize],
        out: &mut [i32; MR * NR],
    ) {
        // SAFETY: the caller guarantees offs.len() groups of MR*4 weights and NR*4 activations.
        unsafe {
            let mut acc = [[_mm512_setzero_si512(); 2]; MR];
            let mut wp = w.as_ptr();
            for &off in offs {
                let ap = a.add(off);
                let a0 = _mm512_loadu_si512(ap.cast());
                let a1 = _mm512_loadu_si512(ap.add(64).cast());
                for (r, acc) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_epi32(wp.add(4 * r).cast::<i32>().read_unaligned());
                    acc[0] = _mm512_dpbusd_epi32(acc[0], a0, b);
                    acc[1] = _mm512_dpbusd_epi32(acc[1], a1, b);
                }
                wp = wp.add(MR * 4);
            }
            let o = out.as_mut_ptr();
            for (r, acc) in acc.iter().enumerate() {
                _mm512_storeu_si512(o.add(r * NR).cast(), acc[0]);
                _mm512_storeu_si512(o.add(r * NR + 16).cast(), acc[1]);
            }
        }
    }

    /// AVX2 without VNNI: activations widened to i16 (`vpmovzxbw`), weights pre-widened, and
    /// `vpmaddwd` (exact: i16 x i16 pairs into i32). Per 8 columns, 4 rows at a time: 8
    /// accumulators holding two partial sums per column, folded with `vphaddd` at the end.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn micro_avx2(
        w: &[i16],
        a: *const u8,
        offs: &[usize],
        out: &mut [i32; MR * NR],
    ) {
        // SAFETY: as above; `w` is the 16-bit copy, same layout.
        unsafe {
            let o = out.as_mut_ptr();
            for c in 0..NR / 8 {
                for half in 0..2 {
                    let mut acc = [[_mm256_setzero_si256(); 2]; 4];
                    let mut wp = w.as_ptr().add(half * 16);
                    for &off in offs {
                        let ap = a.add(off + c * 32);
                        let lo = _mm256_cvtepu8_epi16(_mm_loadu_si128(ap.cast()));
                        let hi = _mm256_cvtepu8_epi16(_mm_loadu_si128(ap.add(16).cast()));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let b =
                                _mm256_set1_epi64x(wp.add(4 * r).cast::<i64>().read_unaligned());
                            acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(lo, b));
                            acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(hi, b));
                        }
                        wp = wp.add(MR * 4);
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        // [c0 c1 c4 c5 | c2 c3 c6 c7] -> columns in order.
                        let s = _mm256_hadd_epi32(acc[0], acc[1]);
                        let s = _mm256_permute4x64_epi64(s, 0b11_01_10_00);
                        _mm256_storeu_si256(o.add((half * 4 + r) * NR + c * 8).cast(), s);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use super::{MR, NR};
    use std::arch::aarch64::*;

    /// Plain NEON (ARMv8.0, e.g. Cortex-A72): activations shifted to i8 (`a - 128`), `smull` /
    /// `smull2` (i8 x i8 -> i16, at most 128 x 127 in magnitude) and `sadalp` pairwise into i32;
    /// `128 * row_sum` restores the unsigned product.
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn micro_neon(
        w: &[i8],
        a: *const u8,
        offs: &[usize],
        sums: &[i32],
        out: &mut [i32; MR * NR],
    ) {
        // SAFETY: the caller guarantees kg groups of MR*4 weights and NR*4 activations.
        unsafe {
            let flip = vdupq_n_u8(0x80);
            let o = out.as_mut_ptr();
            for c in 0..NR / 4 {
                let mut lo = [vdupq_n_s32(0); MR];
                let mut hi = [vdupq_n_s32(0); MR];
                let mut wp = w.as_ptr();
                for &off in offs {
                    let ap = a.add(off + c * 16);
                    let av = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ap), flip));
                    for r in 0..MR {
                        let b = vreinterpretq_s8_s32(vdupq_n_s32(
                            wp.add(4 * r).cast::<i32>().read_unaligned(),
                        ));
                        lo[r] = vpadalq_s16(lo[r], vmull_s8(vget_low_s8(av), vget_low_s8(b)));
                        hi[r] = vpadalq_s16(hi[r], vmull_high_s8(av, b));
                    }
                    wp = wp.add(MR * 4);
                }
                for r in 0..MR {
                    let s = vaddq_s32(vpaddq_s32(lo[r], hi[r]), vdupq_n_s32(128 * sums[r]));
                    vst1q_s32(o.add(r * NR + c * 4), s);
                }
            }
        }
    }

    /// `sdot` (ARMv8.2 dotprod), by element: 8 rows x 8 columns in 16 accumulators per pass.
    /// Emitted with `asm!` (the `vdotq_laneq_s32` intrinsic is not stable Rust yet); callers
    /// must have detected `dotprod`.
    #[target_feature(enable = "neon,dotprod")]
    pub(super) unsafe fn micro_sdot(
        w: &[i8],
        a: *const u8,
        offs: &[usize],
        sums: &[i32],
        out: &mut [i32; MR * NR],
    ) {
        macro_rules! sdot {
            ($acc:expr, $a:expr, $w:expr, $lane:literal) => {
                std::arch::asm!(
                    "sdot {acc:v}.4s, {a:v}.16b, {w:v}.4b[{lane}]",
                    acc = inout(vreg) $acc,
                    a = in(vreg) $a,
                    w = in(vreg) $w,
                    lane = const $lane,
                    options(pure, nomem, nostack),
                )
            };
        }
        // SAFETY: as above; sdot is available (caller).
        unsafe {
            let flip = vdupq_n_u8(0x80);
            let o = out.as_mut_ptr();
            for c in 0..NR / 8 {
                let mut acc = [[vdupq_n_s32(0); 2]; MR];
                let mut wp = w.as_ptr();
                for &off in offs {
                    let ap = a.add(off + c * 32);
                    let a0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ap), flip));
                    let a1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ap.add(16)), flip));
                    let w0 = vld1q_s8(wp);
                    let w1 = vld1q_s8(wp.add(16));
                    sdot!(acc[0][0], a0, w0, 0);
                    sdot!(acc[0][1], a1, w0, 0);
                    sdot!(acc[1][0], a0, w0, 1);
                    sdot!(acc[1][1], a1, w0, 1);
                    sdot!(acc[2][0], a0, w0, 2);
                    sdot!(acc[2][1], a1, w0, 2);
                    sdot!(acc[3][0], a0, w0, 3);
                    sdot!(acc[3][1], a1, w0, 3);
                    sdot!(acc[4][0], a0, w1, 0);
                    sdot!(acc[4][1], a1, w1, 0);
                    sdot!(acc[5][0], a0, w1, 1);
                    sdot!(acc[5][1], a1, w1, 1);
                    sdot!(acc[6][0], a0, w1, 2);
                    sdot!(acc[6][1], a1, w1, 2);
                    sdot!(acc[7][0], a0, w1, 3);
                    sdot!(acc[7][1], a1, w1, 3);
                    wp = wp.add(MR * 4);
                }
                for (r, acc) in acc.iter().enumerate() {
                    let corr = vdupq_n_s32(128 * sums[r]);
                    vst1q_s32(o.add(r * NR + c * 8), vaddq_s32(acc[0], corr));
                    vst1q_s32(o.add(r * NR + c * 8 + 4), vaddq_s32(acc[1], corr));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 56) as u8
            })
            .collect()
    }

    /// Every kernel the CPU has, against the plain triple loop on unpacked operands: exact, with
    /// the extreme values (255 x -127, 255 x 127: where `vpmaddubsw` would saturate) included,
    /// and sizes that pad both `k` and the rows.
    #[test]
    fn every_kernel_matches_the_reference() {
        let kernels = Kernel::available();
        eprintln!("kernels on this CPU: {kernels:?}");
        for (case, &(rows, k)) in [(8, 4), (16, 27), (13, 144), (24, 577), (8, 2304)]
            .iter()
            .enumerate()
        {
            let mut w: Vec<i8> = bytes(rows * k, case as u64 + 1)
                .iter()
                .map(|&b| (b as i8).max(-127))
                .collect();
            let mut a = bytes(k * NR, case as u64 + 50);
            // Worst cases for 16-bit intermediates in the first rows / columns.
            for kk in 0..k {
                w[kk] = 127;
                w[k + kk] = -127;
                a[kk * NR] = 255;
                a[kk * NR + 1] = 0;
            }
            let mut want = vec![0i32; rows * NR];
            for r in 0..rows {
                for j in 0..NR {
                    want[r * NR + j] = (0..k)
                        .map(|kk| w[r * k + kk] as i32 * a[kk * NR + j] as i32)
                        .sum();
                }
            }
            let kp = k.next_multiple_of(4);
            let mut packed = vec![0u8; kp * NR];
            pack_activations(|kk| &a[kk * NR..(kk + 1) * NR], k, NR, 7, &mut packed);
            // The same groups scattered (unaligned, in reverse order, with gaps), as the
            // implicit-GEMM offsets address them.
            let kg = kp / 4;
            let offs: Vec<usize> = (0..kg).map(|g| 3 + (kg - 1 - g) * (NR * 4 + 40)).collect();
            let mut scattered = vec![0xAAu8; offs[0] + NR * 4 + 5];
            for (g, &o) in offs.iter().enumerate() {
                scattered[o..o + NR * 4].copy_from_slice(&packed[g * NR * 4..(g + 1) * NR * 4]);
            }
            let offs = Offsets::new(offs);
            for &kernel in &kernels {
                let p = PackedWeights::new(&w, rows, k, kernel);
                assert_eq!(p.row_sums()[0], 127 * k as i32);
                let mut out = [0i32; MR * NR];
                for b in 0..rows.div_ceil(MR) {
                    p.micro(b, &packed, &Offsets::packed(kp), &mut out);
                    let mut out2 = [0i32; MR * NR];
                    p.micro(b, &scattered, &offs, &mut out2);
                    assert_eq!(out, out2, "{kernel:?}: scattered groups");
                    for r in 0..MR.min(rows - b * MR) {
                        for j in 0..NR {
                            assert_eq!(
                                out[r * NR + j],
                                want[(b * MR + r) * NR + j],
                                "{kernel:?} rows {rows} k {k}: ({}, {j})",
                                b * MR + r
                            );
                        }
                    }
                    // Padding rows have zero weights.
                    for r in MR.min(rows - b * MR)..MR {
                        assert!(out[r * NR..(r + 1) * NR].iter().all(|&v| v == 0));
                    }
                }
            }
        }
    }

    #[test]
    fn interleaves_four_rows() {
        let rows: Vec<Vec<u8>> = (0..4)
            .map(|t| (0..37).map(|j| (j * 4 + t) as u8).collect())
            .collect();
        let mut dst = vec![0u8; 37 * 4];
        interleave4([&rows[0], &rows[1], &rows[2], &rows[3]], &mut dst);
        assert_eq!(dst, (0..37 * 4).map(|v| v as u8).collect::<Vec<_>>());
    }

    #[test]
    fn packs_partial_blocks_with_the_fill_value() {
        // 5 rows (k) x 35 columns: two column blocks, the second with 3 real columns.
        let a: Vec<u8> = (0..5 * 35).map(|i| (i % 251) as u8).collect();
        let mut out = vec![0u8; 2 * NR * 8];
        pack_activations(|kk| &a[kk * 35..(kk + 1) * 35], 5, 35, 9, &mut out);
        // Block 0, group 0, column 3, k 0..4.
        assert_eq!(&out[3 * 4..3 * 4 + 4], &[3, 38, 73, 108]);
        // Block 0, group 1 (k 4..8): only k = 4 is real.
        assert_eq!(&out[(NR + 3) * 4..(NR + 3) * 4 + 4], &[143, 9, 9, 9]);
        // Block 1, group 0, column 32 + 2 real, column 32 + 3 padding.
        let b1 = 2 * NR * 4;
        assert_eq!(&out[b1 + 2 * 4..b1 + 2 * 4 + 4], &[34, 69, 104, 139]);
        assert_eq!(&out[b1 + 3 * 4..b1 + 3 * 4 + 4], &[9, 9, 9, 9]);
    }
}
