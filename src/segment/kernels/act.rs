//! Bias + activation applied in place to rows of an output tile.
//!
//! SiLU needs `exp`; libm's scalar `expf` would cost more than the convolution it follows, so
//! this uses Cephes' single-precision polynomial (relative error about 2e-7 over the clamped
//! range), written branch-free so that it vectorises. On x86-64 the loop is compiled a second
//! time for AVX2 + FMA and chosen at run time.

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
    // SAFETY: forwarded from the caller.
    unsafe { bias_act_generic(ptr, rows, len, stride, bias, silu, residual) }
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
            dequant_tile_generic(acc, corr, scale, bias, silu, out)
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
}
