//! `nn.Linear` on token rows (`[rows, c_in] x [c_in, c_out] + bias`), with an exact GELU or a
//! residual add fused, f32.
//!
//! candle runs the product, then the bias as a broadcast add, then the activation and the
//! residual as further passes over fresh tensors (each a full write and read of the largest
//! tensors of the network, and a wait on candle's spinning thread barrier). Here row tiles are
//! spread over rayon's pool; each tile's product is finished (bias, GELU, residual) while it is
//! in cache.

use super::conv::{f32_contiguous, OutPtr};
use super::gelu::gelu_slice;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

#[derive(Debug)]
pub(crate) struct LinearCpu {
    /// `[c_in, c_out]`, row-major (PyTorch's weight transposed).
    w_t: Vec<f32>,
    bias: Vec<f32>,
    c_in: usize,
    gelu: bool,
}

impl LinearCpu {
    pub(crate) fn new(w_t: Vec<f32>, bias: Vec<f32>, c_in: usize, gelu: bool) -> Self {
        assert_eq!(w_t.len(), c_in * bias.len(), "weights built by the loader");
        Self {
            w_t,
            bias,
            c_in,
            gelu,
        }
    }

    fn forward(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "input")?;
        let dims = layout.shape().dims();
        let (c_in, c_out) = (self.c_in, self.bias.len());
        if dims.last() != Some(&c_in) {
            candle_core::bail!("edgesift-linear: input {dims:?}, the weights take {c_in}");
        }
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = c_out;
        }
        let shape = Shape::from(out_dims);
        let res = match residual {
            Some((s, l)) => {
                if l.shape() != &shape {
                    candle_core::bail!(
                        "edgesift-linear: residual {:?}, output {:?}",
                        l.shape(),
                        shape
                    );
                }
                Some(f32_contiguous(s, l, "residual")?)
            }
            None => None,
        };
        let rows = x.len() / c_in.max(1);
        let threads = rayon::current_num_threads().max(1);
        let tr = rows.div_ceil(4 * threads).clamp(32, 256).min(rows.max(1));
        let mut out = vec![0f32; rows * c_out];
        let out_ptr = OutPtr(out.as_mut_ptr());
        (0..rows.div_ceil(tr)).into_par_iter().for_each(|t| {
            let (r0, r1) = (t * tr, ((t + 1) * tr).min(rows));
            // SAFETY: rows r0..r1 of the [rows, c_out] output belong to this tile only.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(out_ptr.at(r0 * c_out), (r1 - r0) * c_out)
            };
            // SAFETY: lhs is x[r0..r1] ([r1 - r0, c_in], row stride c_in), rhs is w_t
            // ([c_in, c_out], row stride c_out), dst as above.
            unsafe {
                gemm(
                    r1 - r0,
                    c_out,
                    c_in,
                    dst.as_mut_ptr(),
                    1,
                    c_out as isize,
                    false,
                    x[r0 * c_in..].as_ptr(),
                    1,
                    c_in as isize,
                    self.w_t.as_ptr(),
                    1,
                    c_out as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                )
            };
            for row in dst.chunks_exact_mut(c_out) {
                row.iter_mut().zip(&self.bias).for_each(|(v, b)| *v += b);
            }
            if self.gelu {
                gelu_slice(dst);
            }
            if let Some(r) = res {
                let src = &r[r0 * c_out..r1 * c_out];
                dst.iter_mut().zip(src).for_each(|(v, s)| *v += s);
            }
        });
        Ok((CpuStorage::F32(out), shape))
    }
}

impl CustomOp1 for LinearCpu {
    fn name(&self) -> &'static str {
        "edgesift-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.forward(storage, layout, None)
    }
}

/// `linear(x) + residual` (after the activation, if any), in one pass.
pub(crate) struct LinearAdd<'a>(pub(crate) &'a LinearCpu);

impl CustomOp2 for LinearAdd<'_> {
    fn name(&self) -> &'static str {
        "edgesift-linear-add"
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

    #[test]
    fn matches_candle_with_gelu_and_residual() {
        let (rows, ci, co) = (77usize, 12usize, 9usize);
        let vals = |n: usize, seed: u32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000)
                .map(|v| v as f32 / 500.0 - 1.0)
                .collect()
        };
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vals(rows * ci, 3), (1, rows, ci), &dev).unwrap();
        let w_t = vals(ci * co, 5);
        let b = vals(co, 9);
        let r = Tensor::from_vec(vals(rows * co, 11), (1, rows, co), &dev).unwrap();
        let wt = Tensor::from_vec(w_t.clone(), (ci, co), &dev).unwrap();
        let bt = Tensor::from_vec(b.clone(), co, &dev).unwrap();
        let lin = x
            .reshape((rows, ci))
            .unwrap()
            .matmul(&wt)
            .unwrap()
            .broadcast_add(&bt)
            .unwrap()
            .reshape((1, rows, co))
            .unwrap();
        let max_diff = |a: Tensor, b: Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        let plain = LinearCpu::new(w_t.clone(), b.clone(), ci, false);
        assert!(max_diff(x.apply_op1_no_bwd(&plain).unwrap(), lin.clone()) < 1e-5);
        let with_res = x.apply_op2_no_bwd(&r, &LinearAdd(&plain)).unwrap();
        assert!(max_diff(with_res, (&lin + &r).unwrap()) < 1e-5);
        let g = LinearCpu::new(w_t, b, ci, true);
        let want = lin.gelu_erf().unwrap();
        assert!(max_diff(x.apply_op1_no_bwd(&g).unwrap(), want) < 1e-5);
        let err = r.apply_op1_no_bwd(&g).unwrap_err().to_string();
        assert!(err.contains("weights take 12"), "{err}");
    }
}
