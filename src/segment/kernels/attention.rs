//! TinyViT's windowed multi-head attention, from the fused `qkv` projection straight to the
//! heads-interleaved output: `softmax(q k^T * scale + bias) v` per (window, head).
//!
//! Through candle this is three strided copies (q, k, v out of `qkv`), a batched matmul that runs
//! one small GEMM after another for each of ~1,400 (window, head) pairs, a scale, a bias add, a
//! softmax and a transpose back. Here each (window, head) is one rayon task: two single-threaded
//! GEMMs reading `qkv` in place through strides, and the softmax on the scores while they are in
//! cache.

use super::act::exp_f32;
use super::conv::{f32_contiguous, with_scratch, OutPtr};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

#[derive(Debug)]
pub(crate) struct WindowAttentionCpu {
    /// `[heads, n, n]`: the learned offset bias of every (query, key) pair.
    bias: Vec<f32>,
    heads: usize,
    key_dim: usize,
    n: usize,
    scale: f32,
}

impl WindowAttentionCpu {
    pub(crate) fn new(bias: Vec<f32>, heads: usize, key_dim: usize, n: usize, scale: f32) -> Self {
        assert_eq!(bias.len(), heads * n * n, "biases built by the loader");
        Self {
            bias,
            heads,
            key_dim,
            n,
            scale,
        }
    }
}

impl CustomOp1 for WindowAttentionCpu {
    fn name(&self) -> &'static str {
        "edgesift-window-attention"
    }

    /// `qkv` is `[windows, n, heads * 3 * key_dim]`, per head `[q | k | v]`; the output is
    /// `[windows, n, heads * key_dim]`.
    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "qkv")?;
        let (bw, n, c) = layout.shape().dims3()?;
        let (h, kd) = (self.heads, self.key_dim);
        if n != self.n || c != 3 * h * kd {
            candle_core::bail!(
                "edgesift-window-attention: qkv {:?}, expected [_, {}, {}]",
                layout.shape(),
                self.n,
                3 * h * kd
            );
        }
        let dim = h * kd;
        let mut out = vec![0f32; bw * n * dim];
        let out_ptr = OutPtr(out.as_mut_ptr());
        (0..bw * h).into_par_iter().for_each(|t| {
            let (w, head) = (t / h, t % h);
            let base = w * n * c + head * 3 * kd;
            let (q, k, v) = (&x[base..], &x[base + kd..], &x[base + 2 * kd..]);
            with_scratch(n * n, |s| {
                // SAFETY: q and k are n rows of kd values at row stride c inside this window;
                // s is n x n. k is read as k^T (column stride c, row stride 1).
                unsafe {
                    gemm(
                        n,
                        n,
                        kd,
                        s.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        q.as_ptr(),
                        1,
                        c as isize,
                        k.as_ptr(),
                        c as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    )
                };
                let bias = &self.bias[head * n * n..(head + 1) * n * n];
                softmax_rows(s, bias, n, self.scale);
                // SAFETY: rows w*n..(w+1)*n, columns head*kd..(head+1)*kd of the output belong
                // to this task only; v is n rows of kd at row stride c.
                unsafe {
                    gemm(
                        n,
                        kd,
                        n,
                        out_ptr.at(w * n * dim + head * kd),
                        1,
                        dim as isize,
                        false,
                        s.as_ptr(),
                        1,
                        n as isize,
                        v.as_ptr(),
                        1,
                        c as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    )
                };
            });
        });
        Ok((CpuStorage::F32(out), Shape::from((bw, n, dim))))
    }
}

/// `row = softmax(row * scale + bias)` for each row of `n` scores. The maximum and the sum are
/// kept in 8 lanes so that the loops (and `exp`) vectorise; on x86-64 compiled a second time for
/// AVX2 + FMA and chosen at run time. (A single running sum is a sequential dependency the
/// compiler may not reorder: the softmax's `exp` was 13 % of the encoder, scalar.)
fn softmax_rows(s: &mut [f32], bias: &[f32], n: usize, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn avx2(s: &mut [f32], bias: &[f32], n: usize, scale: f32) {
            softmax_rows_generic(s, bias, n, scale)
        }
        // SAFETY: the features were just detected.
        return unsafe { avx2(s, bias, n, scale) };
    }
    softmax_rows_generic(s, bias, n, scale)
}

#[inline(always)]
fn softmax_rows_generic(s: &mut [f32], bias: &[f32], n: usize, scale: f32) {
    const L: usize = 8;
    let larger = |a: f32, b: f32| if b > a { b } else { a };
    for (row, brow) in s.chunks_exact_mut(n).zip(bias.chunks_exact(n)) {
        let mut m = [f32::NEG_INFINITY; L];
        let mut rc = row.chunks_exact_mut(L);
        let mut bc = brow.chunks_exact(L);
        for (r, b) in (&mut rc).zip(&mut bc) {
            for t in 0..L {
                r[t] = r[t] * scale + b[t];
                m[t] = larger(m[t], r[t]);
            }
        }
        for (r, b) in rc.into_remainder().iter_mut().zip(bc.remainder()) {
            *r = *r * scale + b;
            m[0] = larger(m[0], *r);
        }
        let max = m.iter().fold(f32::NEG_INFINITY, |a, &b| larger(a, b));
        let mut sums = [0f32; L];
        let mut rc = row.chunks_exact_mut(L);
        for r in &mut rc {
            for t in 0..L {
                r[t] = exp_f32(r[t] - max);
                sums[t] += r[t];
            }
        }
        for r in rc.into_remainder() {
            *r = exp_f32(*r - max);
            sums[0] += *r;
        }
        let inv = 1.0 / sums.iter().sum::<f32>();
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn matches_candle_ops() {
        let (bw, n, h, kd) = (3usize, 10usize, 2usize, 4usize);
        let c = 3 * h * kd;
        let vals = |len: usize, seed: u32| -> Vec<f32> {
            (0..len)
                .map(|i| {
                    (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0
                })
                .collect()
        };
        let dev = Device::Cpu;
        let qkv = Tensor::from_vec(vals(bw * n * c, 1), (bw, n, c), &dev).unwrap();
        let bias = vals(h * n * n, 7);
        let scale = 0.5f32;
        let got = qkv
            .apply_op1_no_bwd(&WindowAttentionCpu::new(bias.clone(), h, kd, n, scale))
            .unwrap();
        let r = qkv.reshape((bw, n, h, 3 * kd)).unwrap();
        let part = |i: usize| {
            r.narrow(3, i * kd, kd)
                .unwrap()
                .permute((0, 2, 1, 3))
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let b = Tensor::from_vec(bias, (h, n, n), &dev).unwrap();
        let s = ((q.matmul(&k.t().unwrap()).unwrap() * scale as f64).unwrap())
            .broadcast_add(&b)
            .unwrap();
        let s = candle_nn::ops::softmax_last_dim(&s).unwrap();
        let want = s
            .matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((bw, n, h * kd))
            .unwrap();
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
    }
}
