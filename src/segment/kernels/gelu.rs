//! Exact GELU, `x * (1 + erf(x / sqrt 2)) / 2` (PyTorch's `nn.GELU()` default, which TinyViT and
//! SAM's decoder use), as a rayon-parallel element-wise op.
//!
//! candle's `gelu` is the tanh approximation (wrong for these weights) and its `gelu_erf` calls
//! libm's scalar `erff` on one thread. Here erf is Abramowitz & Stegun 7.1.26 (absolute error
//! below 1.5e-7, at f32 rounding level), branch-free on `exp_f32`, so the loop vectorises.

use super::act::exp_f32;
use super::conv::f32_contiguous;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

/// Values per rayon task.
const CHUNK: usize = 16 * 1024;

/// `erf(x)`, absolute error < 1.5e-7.
#[inline(always)]
pub(super) fn erf_f32(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = ((((A[4] * t + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let y = 1.0 - poly * exp_f32(-a * a);
    y.copysign(x)
}

#[inline(always)]
pub(super) fn gelu_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `v[i] = gelu(v[i])`; on x86-64 compiled a second time for AVX2 + FMA and chosen at run time
/// (as `act::bias_act`), so the polynomial runs 8 lanes wide.
pub(super) fn gelu_slice(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the features were just detected.
        return unsafe { gelu_slice_avx2(v) };
    }
    gelu_slice_generic(v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_slice_avx2(v: &mut [f32]) {
    gelu_slice_generic(v)
}

#[inline(always)]
fn gelu_slice_generic(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = gelu_f32(*x));
}

/// Element-wise exact GELU.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GeluCpu;

impl CustomOp1 for GeluCpu {
    fn name(&self) -> &'static str {
        "edgesift-gelu-erf"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "input")?;
        let mut out = x.to_vec();
        out.par_chunks_mut(CHUNK).for_each(gelu_slice);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_and_gelu_match_f64_reference() {
        // erf via the f64 series/continued fraction is not in std; compare GELU against candle's
        // libm-based gelu_erf instead, over the range that matters.
        let xs: Vec<f32> = (-2000..2000).map(|i| i as f32 * 0.005).collect();
        let t = candle_core::Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let want = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let got = t
            .apply_op1_no_bwd(&GeluCpu)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            assert!(
                (g - w).abs() <= 3e-7 * x.abs().max(1.0),
                "gelu({x}): {g} vs {w}"
            );
        }
        assert!(erf_f32(0.0).abs() < 1.5e-7);
        assert!((erf_f32(-3.0) + 0.999_977_9).abs() < 2e-7);
    }
}
