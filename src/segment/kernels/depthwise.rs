//! Depthwise convolution (`groups == channels`, one `k x k` filter per channel), BatchNorm folded,
//! with bias and an optional exact (erf) GELU fused; f32, NCHW, "same" padding `k / 2`.
//!
//! candle runs a grouped convolution as one `conv2d` per group: for TinyViT's 256-channel 3x3
//! layers that is 256 tiny im2col + GEMM calls per layer. A depthwise filter has 9 taps per
//! output value, so a direct loop is memory-bound and far cheaper: each channel plane is one
//! rayon task, and each output row accumulates `tap * shifted input row` slices that the
//! compiler vectorises (stride 1; the two stride-2 layers take a scalar path).

use super::conv::{f32_contiguous, OutPtr};
use super::gelu::gelu_slice;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

#[derive(Debug)]
pub(crate) struct DepthwiseCpu {
    /// `[c, k, k]`, PyTorch's `[c, 1, k, k]` flattened.
    weight: Vec<f32>,
    bias: Vec<f32>,
    k: usize,
    stride: usize,
    pad: usize,
    gelu: bool,
}

impl DepthwiseCpu {
    pub(crate) fn new(
        weight: Vec<f32>,
        bias: Vec<f32>,
        k: usize,
        stride: usize,
        gelu: bool,
    ) -> Self {
        assert_eq!(
            weight.len(),
            bias.len() * k * k,
            "weights built by the loader"
        );
        assert!(
            k % 2 == 1 && stride >= 1,
            "odd kernels with same padding only"
        );
        Self {
            weight,
            bias,
            k,
            stride,
            pad: k / 2,
            gelu,
        }
    }

    fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        let o = |v: usize| (v + 2 * self.pad - self.k) / self.stride + 1;
        (o(h), o(w))
    }

    /// One channel plane: `x` is `[h, w]`, `out` is `[oh, ow]`. On x86-64 the loops are
    /// compiled a second time for AVX2 + FMA and chosen at run time.
    fn plane(&self, c: usize, x: &[f32], h: usize, w: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were just detected.
            unsafe { self.plane_avx2(c, x, h, w, out) };
            if self.gelu {
                gelu_slice(out);
            }
            return;
        }
        self.plane_generic(c, x, h, w, out);
        if self.gelu {
            gelu_slice(out);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn plane_avx2(&self, c: usize, x: &[f32], h: usize, w: usize, out: &mut [f32]) {
        self.plane_generic(c, x, h, w, out)
    }

    #[inline(always)]
    fn plane_generic(&self, c: usize, x: &[f32], h: usize, w: usize, out: &mut [f32]) {
        let (k, s, p) = (self.k, self.stride, self.pad);
        let (oh, ow) = self.out_size(h, w);
        let taps = &self.weight[c * k * k..(c + 1) * k * k];
        for oy in 0..oh {
            let dst = &mut out[oy * ow..(oy + 1) * ow];
            dst.fill(self.bias[c]);
            for ky in 0..k {
                let iy = oy * s + ky;
                if iy < p || iy - p >= h {
                    continue;
                }
                let src = &x[(iy - p) * w..(iy - p + 1) * w];
                for kx in 0..k {
                    let t = taps[ky * k + kx];
                    if s == 1 {
                        // ix = ox + kx - p is inside [0, w) for ox in [lo, hi).
                        let lo = p.saturating_sub(kx).min(ow);
                        let hi = (w + p).saturating_sub(kx).min(ow);
                        if lo >= hi {
                            continue;
                        }
                        let src = &src[lo + kx - p..hi + kx - p];
                        for (d, v) in dst[lo..hi].iter_mut().zip(src) {
                            *d += t * v;
                        }
                    } else {
                        for (ox, d) in dst.iter_mut().enumerate() {
                            let ix = ox * s + kx;
                            if ix >= p && ix - p < w {
                                *d += t * src[ix - p];
                            }
                        }
                    }
                }
            }
        }
    }
}

impl CustomOp1 for DepthwiseCpu {
    fn name(&self) -> &'static str {
        "edgesift-depthwise2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "input")?;
        let (b, c, h, w) = layout.shape().dims4()?;
        if c != self.bias.len() {
            candle_core::bail!(
                "edgesift-depthwise2d: {c} input channels, the weights take {}",
                self.bias.len()
            );
        }
        let (oh, ow) = self.out_size(h, w);
        let mut out = vec![0f32; b * c * oh * ow];
        let out_ptr = OutPtr(out.as_mut_ptr());
        (0..b * c).into_par_iter().for_each(|i| {
            // SAFETY: plane i of the [b * c, oh, ow] output, written by this task only.
            let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.at(i * oh * ow), oh * ow) };
            self.plane(i % c, &x[i * h * w..(i + 1) * h * w], h, w, dst);
        });
        Ok((CpuStorage::F32(out), Shape::from((b, c, oh, ow))))
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

    /// Against candle's grouped conv2d + bias (+ erf GELU), odd sizes, both strides.
    #[test]
    fn matches_candle_grouped_conv() {
        for (i, &(c, k, s, h, w, gelu)) in [
            (5, 3, 1, 9, 13, false),
            (4, 3, 2, 11, 8, true),
            (3, 5, 1, 6, 7, true),
            (2, 3, 1, 1, 2, false),
        ]
        .iter()
        .enumerate()
        {
            let dev = Device::Cpu;
            let wv = values(c * k * k, i as u64 + 1);
            let bv = values(c, i as u64 + 50);
            let x =
                Tensor::from_vec(values(2 * c * h * w, i as u64 + 99), (2, c, h, w), &dev).unwrap();
            let wt = Tensor::from_vec(wv.clone(), (c, 1, k, k), &dev).unwrap();
            let bt = Tensor::from_vec(bv.clone(), (1, c, 1, 1), &dev).unwrap();
            let mut want = x
                .conv2d(&wt, k / 2, s, 1, c)
                .unwrap()
                .broadcast_add(&bt)
                .unwrap();
            if gelu {
                want = want.gelu_erf().unwrap();
            }
            let got = x
                .apply_op1_no_bwd(&DepthwiseCpu::new(wv, bv, k, s, gelu))
                .unwrap();
            assert_eq!(got.dims(), want.dims(), "case {i}");
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "case {i} value {j}: {g} vs {w}"
                );
            }
        }
    }
}
