//! LayerNorm with a two-pass (mean, then centred variance) reduction, over the last dimension
//! (`nn.LayerNorm`) or over the channels of an NCHW tensor (SAM's `LayerNorm2d`).
//!
//! candle-nn's fused `layer_norm` computes the variance as `E[x^2] - mean^2` in f32, which loses
//! digits whenever the mean is large against the spread; TinyViT's residual stream is such a
//! case, and the parity target (relative L2 1e-4) does not survive it.

use super::conv::{f32_contiguous, OutPtr};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

/// Which axis is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NormAxis {
    /// The last dimension (rows are contiguous).
    Last,
    /// Dimension 1 of `[b, c, h, w]` (each pixel across the channel planes).
    Channels,
}

#[derive(Debug)]
pub(crate) struct LayerNormCpu {
    alpha: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
    axis: NormAxis,
}

impl LayerNormCpu {
    pub(crate) fn new(alpha: Vec<f32>, beta: Vec<f32>, eps: f32, axis: NormAxis) -> Self {
        assert_eq!(alpha.len(), beta.len(), "weights built by the loader");
        Self {
            alpha,
            beta,
            eps,
            axis,
        }
    }

    fn rows(&self, x: &[f32], out: &mut [f32]) {
        let n = self.alpha.len();
        out.par_chunks_mut(n * 64)
            .zip(x.par_chunks(n * 64))
            .for_each(|(out, x)| {
                for (dst, src) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                    let mean = src.iter().sum::<f32>() / n as f32;
                    let var = src.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
                    let inv = 1.0 / (var + self.eps).sqrt();
                    for (((d, s), a), b) in dst.iter_mut().zip(src).zip(&self.alpha).zip(&self.beta)
                    {
                        *d = (s - mean) * inv * a + b;
                    }
                }
            });
    }

    /// One image `[c, hw]`: per pixel statistics across the planes, in column blocks.
    fn channels(&self, x: &[f32], hw: usize, out: &mut [f32]) {
        const BLOCK: usize = 1024;
        let c = self.alpha.len();
        let out_ptr = OutPtr(out.as_mut_ptr());
        (0..hw.div_ceil(BLOCK)).into_par_iter().for_each(|blk| {
            let (p0, p1) = (blk * BLOCK, ((blk + 1) * BLOCK).min(hw));
            let len = p1 - p0;
            let mut mean = vec![0f32; len];
            let mut var = vec![0f32; len];
            for ch in 0..c {
                let src = &x[ch * hw + p0..ch * hw + p1];
                mean.iter_mut().zip(src).for_each(|(m, v)| *m += v);
            }
            mean.iter_mut().for_each(|m| *m /= c as f32);
            for ch in 0..c {
                let src = &x[ch * hw + p0..ch * hw + p1];
                for ((s, m), v) in var.iter_mut().zip(&mean).zip(src) {
                    *s += (v - m) * (v - m);
                }
            }
            var.iter_mut()
                .for_each(|s| *s = 1.0 / (*s / c as f32 + self.eps).sqrt());
            for ch in 0..c {
                let src = &x[ch * hw + p0..ch * hw + p1];
                // SAFETY: columns p0..p1 of plane ch, written by this block only.
                let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.at(ch * hw + p0), len) };
                let (a, b) = (self.alpha[ch], self.beta[ch]);
                for (((d, v), m), inv) in dst.iter_mut().zip(src).zip(&mean).zip(&var) {
                    *d = (v - m) * inv * a + b;
                }
            }
        });
    }
}

impl CustomOp1 for LayerNormCpu {
    fn name(&self) -> &'static str {
        "edgesift-layer-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "input")?;
        let dims = layout.shape().dims();
        let n = self.alpha.len();
        let mut out = vec![0f32; x.len()];
        match self.axis {
            NormAxis::Last => {
                if dims.last() != Some(&n) {
                    candle_core::bail!("edgesift-layer-norm: shape {dims:?}, weights for {n}");
                }
                self.rows(x, &mut out);
            }
            NormAxis::Channels => {
                let (b, c, h, w) = layout.shape().dims4()?;
                if c != n {
                    candle_core::bail!("edgesift-layer-norm: {c} channels, weights for {n}");
                }
                let per = c * h * w;
                for (xi, oi) in x.chunks_exact(per).zip(out.chunks_exact_mut(per)).take(b) {
                    self.channels(xi, h * w, oi);
                }
            }
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn both_axes_match_a_f64_reference_with_a_large_mean() {
        let (c, hw) = (6usize, 1500usize);
        let x: Vec<f32> = (0..c * hw)
            .map(|i| 1000.0 + ((i * 7919) % 113) as f32 * 0.01)
            .collect();
        let alpha: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.1).collect();
        let beta: Vec<f32> = (0..c).map(|i| i as f32 * 0.01 - 0.02).collect();
        let reference = |vals: &[f64]| {
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / vals.len() as f64;
            vals.iter()
                .map(|x| (x - m) / (v + 1e-6).sqrt())
                .collect::<Vec<_>>()
        };
        let t = Tensor::from_vec(x.clone(), (1, c, 1, hw), &Device::Cpu).unwrap();
        let op = LayerNormCpu::new(alpha.clone(), beta.clone(), 1e-6, NormAxis::Channels);
        let got = t.apply_op1_no_bwd(&op).unwrap().flatten_all().unwrap();
        let got = got.to_vec1::<f32>().unwrap();
        for p in (0..hw).step_by(97) {
            let col: Vec<f64> = (0..c).map(|ch| x[ch * hw + p] as f64).collect();
            for (ch, want) in reference(&col).into_iter().enumerate() {
                let want = want * alpha[ch] as f64 + beta[ch] as f64;
                let g = got[ch * hw + p] as f64;
                assert!(
                    (g - want).abs() < 2e-3 * want.abs().max(1.0),
                    "{g} vs {want}"
                );
            }
        }
        // The same numbers as rows of the last dimension.
        let t = Tensor::from_vec(x.clone(), (c * hw / c, c), &Device::Cpu).unwrap();
        let op = LayerNormCpu::new(alpha.clone(), beta.clone(), 1e-6, NormAxis::Last);
        let got = t.apply_op1_no_bwd(&op).unwrap().flatten_all().unwrap();
        let got = got.to_vec1::<f32>().unwrap();
        for r in (0..hw).step_by(89) {
            let row: Vec<f64> = x[r * c..(r + 1) * c].iter().map(|&v| v as f64).collect();
            for (ch, want) in reference(&row).into_iter().enumerate() {
                let want = want * alpha[ch] as f64 + beta[ch] as f64;
                let g = got[r * c + ch] as f64;
                assert!(
                    (g - want).abs() < 2e-3 * want.abs().max(1.0),
                    "{g} vs {want}"
                );
            }
        }
    }
}
