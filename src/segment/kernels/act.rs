//! Bias + activation applied in place to rows of an output tile.
//!
//! SiLU needs `exp`; libm's scalar `expf` would cost more than the convolution it follows, so
//! this uses Cephes' single-precision polynomial (relative error about 2e-7 over the clamped
//! range), written branch-free so that it vectorises. On x86-64 with AVX2 + FMA, chosen at run
//! time, the loops use `sgemm::avx2::silu8` instead (FMAs and a reciprocal estimate rather than
//! a division).

/// `row[i] = act(row[i] + bias) (+ residual[i])` for `rows` rows of `len` values, `stride` apart
/// (the residual rows at the same offsets from `residual`).
///
/// # Safety
/// `ptr` must address `rows` rows of `len` writable f32, the `r`-th starting at `ptr + r * stride`,
/// and nothing else may access them during the call; `residual`, when given, must address rows
/// laid out the same way.
pub(super) unsafe fn bias_act(
    ptr: *mut f32,
    rows: usize,
    len: usize,
    stride: usize,
    bias: &[f32],
    silu: bool,
    residual: Option<*const f32>,
) {
    debug_assert!(bias.len() >= rows);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected; the caller guarantees the memory.
        return unsafe { bias_act_avx2(ptr, rows, len, stride, bias, silu, residual) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { bias_act_generic(ptr, rows, len, stride, bias, silu, residual) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bias_act_avx2(
    ptr: *mut f32,
    rows: usize,
    len: usize,
    stride: usize,
    bias: &[f32],
    silu: bool,
    residual: Option<*const f32>,
) {
    use super::sgemm::avx2::silu8;
    use std::arch::x86_64::*;
    if !silu {
        // SAFETY: forwarded from the caller.
        return unsafe { bias_act_generic(ptr, rows, len, stride, bias, silu, residual) };
    }
    let body = len / 8 * 8;
    for (r, &b) in bias.iter().enumerate().take(rows) {
        // SAFETY: the caller guarantees rows of `len` values at `stride` (and the residual's).
        unsafe {
            let row = ptr.add(r * stride);
            let res = residual.map(|p| p.add(r * stride));
            let bv = _mm256_set1_ps(b);
            for j in (0..body).step_by(8) {
                let mut v = silu8(_mm256_add_ps(_mm256_loadu_ps(row.add(j)), bv));
                if let Some(res) = res {
                    v = _mm256_add_ps(v, _mm256_loadu_ps(res.add(j)));
                }
                _mm256_storeu_ps(row.add(j), v);
            }
            for j in body..len {
                let v = silu_f32(*row.add(j) + b);
                *row.add(j) = res.map_or(v, |res| v + *res.add(j));
            }
        }
    }
}

#[inline(always)]
unsafe fn bias_act_generic(
    ptr: *mut f32,
    rows: usize,
    len: usize,
    stride: usize,
    bias: &[f32],
    silu: bool,
    residual: Option<*const f32>,
) {
    for (r, &b) in bias.iter().enumerate().take(rows) {
        // SAFETY: the caller guarantees rows of `len` values at `stride`.
        let row = unsafe { std::slice::from_raw_parts_mut(ptr.add(r * stride), len) };
        match (silu, residual) {
            (true, None) => row.iter_mut().for_each(|v| *v = silu_f32(*v + b)),
            (false, None) => row.iter_mut().for_each(|v| *v += b),
            (_, Some(res)) => {
                // SAFETY: as for the output rows.
                let res = unsafe { std::slice::from_raw_parts(res.add(r * stride), len) };
                if silu {
                    for (v, x) in row.iter_mut().zip(res) {
                        *v = silu_f32(*v + b) + x;
                    }
                } else {
                    for (v, x) in row.iter_mut().zip(res) {
                        *v = *v + b + x;
                    }
                }
            }
        }
    }
}

/// The int8 convolution's epilogue for one micro-tile of `R` rows x `C` columns, in one
/// vectorised pass without remainders: `out[r][j] = act((acc[r][j] - corr[r]) * scale[r] +
/// bias[r])`. The caller copies the valid part out (adding the residual there).
pub(super) fn dequant_tile<const R: usize, const C: usize>(
    acc: &[[i32; C]; R],
    corr: &[i32; R],
    scale: &[f32; R],
    bias: &[f32; R],
    silu: bool,
    out: &mut [[f32; C]; R],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn avx2<const R: usize, const C: usize>(
            acc: &[[i32; C]; R],
            corr: &[i32; R],
            scale: &[f32; R],
            bias: &[f32; R],
            silu: bool,
            out: &mut [[f32; C]; R],
        ) {
            use super::sgemm::avx2::silu8;
            use std::arch::x86_64::*;
            if !silu || C % 8 != 0 {
                return dequant_tile_generic(acc, corr, scale, bias, silu, out);
            }
            for r in 0..R {
                // SAFETY: whole 8-lane groups of rows of C (a multiple of 8) values.
                unsafe {
                    let (c, s, b) = (
                        _mm256_set1_epi32(corr[r]),
                        _mm256_set1_ps(scale[r]),
                        _mm256_set1_ps(bias[r]),
                    );
                    for j in (0..C).step_by(8) {
                        let a = _mm256_loadu_si256(acc[r].as_ptr().add(j).cast());
                        let y = _mm256_cvtepi32_ps(_mm256_sub_epi32(a, c));
                        let v = silu8(_mm256_fmadd_ps(y, s, b));
                        _mm256_storeu_ps(out[r].as_mut_ptr().add(j), v);
                    }
                }
            }
        }
        // SAFETY: the features were just detected.
        return unsafe { avx2(acc, corr, scale, bias, silu, out) };
    }
    dequant_tile_generic(acc, corr, scale, bias, silu, out)
}

#[inline(always)]
fn dequant_tile_generic<const R: usize, const C: usize>(
    acc: &[[i32; C]; R],
    corr: &[i32; R],
    scale: &[f32; R],
    bias: &[f32; R],
    silu: bool,
    out: &mut [[f32; C]; R],
) {
    for r in 0..R {
        let (c, s, b) = (corr[r], scale[r], bias[r]);
        let y = |a: i32| (a - c) as f32 * s + b;
        if silu {
            for (d, &a) in out[r].iter_mut().zip(&acc[r]) {
                *d = silu_f32(y(a));
            }
        } else {
            for (d, &a) in out[r].iter_mut().zip(&acc[r]) {
                *d = y(a);
            }
        }
    }
}

/// `x * sigmoid(x)`.
#[inline(always)]
pub(super) fn silu_f32(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
}

/// `e^x` for x clamped to [-86, 88] (Cephes `expf`: Cody-Waite reduction by ln 2, degree-6
/// polynomial, exponent built from bits). No branches, so the compiler vectorises callers.
#[inline(always)]
pub(super) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to the nearest integer (ties to even) and leaves that integer in
    // the low mantissa bits: no float-to-int conversion, whose saturating semantics would not
    // vectorise.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-86.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // n is in [-124, 127]: 2^(n-1) is a normal number (biased exponent n + 126), and doubling it
    // stays finite.
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits());
    let half = f32::from_bits(n_int.wrapping_add(126) << 23);
    y * half * 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let mut worst = 0f64;
        let mut x = -86.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(-1000.0), exp_f32(-86.0));
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
    }

    #[test]
    fn bias_silu_rows() {
        let mut data = vec![0.5f32, -2.0, 9.0, 1.0, 3.0, -7.0, 0.0, 0.0];
        // Two rows of 3, stride 4: the 4th value of each row is untouched.
        unsafe { bias_act(data.as_mut_ptr(), 2, 3, 4, &[1.0, -1.0], true, None) };
        let silu = |x: f64| x / (1.0 + (-x).exp());
        let want = [
            silu(1.5),
            silu(-1.0),
            silu(10.0),
            1.0,
            silu(2.0),
            silu(-8.0),
            silu(-1.0),
            0.0,
        ];
        for (g, w) in data.iter().zip(want) {
            assert!(
                (*g as f64 - w).abs() < 1e-6 * w.abs().max(1.0),
                "{g} vs {w}"
            );
        }
        let mut data = vec![1.0f32, 2.0];
        unsafe { bias_act(data.as_mut_ptr(), 1, 2, 2, &[0.5], false, None) };
        assert_eq!(data, vec![1.5, 2.5]);
        let res = [10.0f32, 20.0];
        unsafe {
            bias_act(
                data.as_mut_ptr(),
                1,
                2,
                2,
                &[0.5],
                false,
                Some(res.as_ptr()),
            )
        };
        assert_eq!(data, vec![12.0, 23.0]);
    }

    /// The AVX2 SiLU (used by every AVX2 epilogue) against the exact value, over the whole range
    /// that matters and past the clamps.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn silu8_matches_the_exact_value() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        use super::super::sgemm::avx2::silu8;
        use std::arch::x86_64::*;
        let silu = |x: f64| x / (1.0 + (-x).exp());
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 100.0 {
            let mut got = [0f32; 8];
            let xs: [f32; 8] = std::array::from_fn(|i| x + i as f32 * 0.001);
            // SAFETY: the features were detected above.
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), silu8(_mm256_loadu_ps(xs.as_ptr()))) };
            for (g, x) in got.iter().zip(xs) {
                let want = silu(x as f64);
                if want != 0.0 {
                    worst = worst.max(((*g as f64 - want) / want).abs());
                }
            }
            x += 0.0173;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        let extremes = [-1e30f32, -1000.0, -88.0, 0.0, -0.0, 1000.0, 1e30, f32::MAX];
        let mut got = [0f32; 8];
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(got.as_mut_ptr(), silu8(_mm256_loadu_ps(extremes.as_ptr()))) };
        for (g, x) in got.iter().zip(extremes) {
            let want = if x > 0.0 { x } else { 0.0 };
            assert!(
                (*g - want).abs() <= 1e-30 + 1e-6 * want.abs(),
                "silu({x}) = {g}"
            );
        }
        let nan = [f32::NAN; 8];
        // SAFETY: as above.
        unsafe { _mm256_storeu_ps(got.as_mut_ptr(), silu8(_mm256_loadu_ps(nan.as_ptr()))) };
        assert!(got.iter().all(|g| g.is_nan()));
    }

    /// Rows long enough for the vector body and a scalar tail, with a residual, against f64.
    #[test]
    fn bias_silu_residual_rows_body_and_tail() {
        let (rows, len, stride) = (3, 21, 24);
        let data0: Vec<f32> = (0..rows * stride)
            .map(|i| (i as f32 * 0.37).sin() * 9.0)
            .collect();
        let res: Vec<f32> = (0..rows * stride)
            .map(|i| (i as f32 * 0.11).cos())
            .collect();
        let bias = [0.25f32, -1.5, 3.0];
        let mut data = data0.clone();
        // SAFETY: rows of `len` within `stride`, inside both buffers.
        unsafe {
            bias_act(
                data.as_mut_ptr(),
                rows,
                len,
                stride,
                &bias,
                true,
                Some(res.as_ptr()),
            )
        };
        let silu = |x: f64| x / (1.0 + (-x).exp());
        for (r, b) in bias.iter().enumerate() {
            for j in 0..stride {
                let i = r * stride + j;
                if j >= len {
                    assert_eq!(data[i], data0[i], "outside the rows");
                    continue;
                }
                let want = silu(data0[i] as f64 + *b as f64) + res[i] as f64;
                assert!(
                    (data[i] as f64 - want).abs() < 1e-6 * want.abs().max(1.0),
                    "{r},{j}"
                );
            }
        }
    }

    #[test]
    fn dequant_tile_with_silu_matches_f64() {
        let acc: [[i32; 16]; 2] = std::array::from_fn(|r| {
            std::array::from_fn(|j| (r as i32 * 977 + j as i32 * 131) % 2001 - 1000)
        });
        let (corr, scale, bias) = ([7, -3], [0.01f32, 0.004], [0.5f32, -0.25]);
        let mut out = [[0f32; 16]; 2];
        dequant_tile(&acc, &corr, &scale, &bias, true, &mut out);
        let silu = |x: f64| x / (1.0 + (-x).exp());
        for r in 0..2 {
            for j in 0..16 {
                let y = (acc[r][j] - corr[r]) as f64 * scale[r] as f64 + bias[r] as f64;
                let want = silu(y);
                assert!(
                    (out[r][j] as f64 - want).abs() < 1e-6 * want.abs().max(1.0),
                    "{r},{j}"
                );
            }
        }
    }
}
