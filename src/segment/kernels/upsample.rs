//! `ConvTranspose2d` with kernel = stride = 2 (the Proto upsample), bias fused.
//!
//! Every input pixel becomes its own 2x2 output block, so the layer is one matrix product
//! (`[4 * c_out, c_in] x [c_in, pixels]`) followed by a scatter of each product row into its
//! (channel, dy, dx) phase of the output. Tiles of whole input rows are spread over rayon's pool;
//! each product tile lives in the thread's scratch buffer and is scattered (plus bias) while it
//! is in cache.

use super::conv::{f32_contiguous, gemm_tile, with_scratch, OutPtr};
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

/// Floats of one product tile (`4 c_out x pixels`).
const TILE_FLOATS: usize = 48 * 1024;

#[derive(Debug)]
pub(crate) struct Upsample2xCpu {
    /// `[4 * c_out, c_in]`, rows ordered (out channel, dy, dx).
    rows: Vec<f32>,
    bias: Vec<f32>,
    c_in: usize,
    c_out: usize,
}

impl Upsample2xCpu {
    pub(crate) fn new(rows: Vec<f32>, bias: Vec<f32>, c_in: usize) -> Self {
        let c_out = bias.len();
        assert_eq!(rows.len(), 4 * c_out * c_in, "weights built by the loader");
        Self {
            rows,
            bias,
            c_in,
            c_out,
        }
    }

    /// One image: `x` is `[c_in, h, w]`, `out` is `[c_out, 2h, 2w]`.
    fn run(&self, x: &[f32], h: usize, w: usize, out: &mut [f32]) {
        let n = h * w;
        let m = 4 * self.c_out;
        let threads = rayon::current_num_threads().max(1);
        let tile_rows = (TILE_FLOATS / (m * w))
            .max(1)
            .min(h.div_ceil(2 * threads))
            .max(1);
        let tiles = h.div_ceil(tile_rows);
        let out_ptr = OutPtr(out.as_mut_ptr());
        let (ow, plane) = (2 * w, 4 * n);
        (0..tiles).into_par_iter().for_each(|t| {
            let (y0, y1) = (t * tile_rows, ((t + 1) * tile_rows).min(h));
            let cols = (y1 - y0) * w;
            with_scratch(m * cols, |prod| {
                // SAFETY: rows is [m, c_in]; x[.., y0*w..y1*w] is [c_in, cols] at row stride n;
                // prod is [m, cols].
                unsafe {
                    gemm_tile(
                        m,
                        cols,
                        self.c_in,
                        prod.as_mut_ptr(),
                        cols,
                        self.rows.as_ptr(),
                        x[y0 * w..].as_ptr(),
                        n,
                    )
                };
                for co in 0..self.c_out {
                    let b = self.bias[co];
                    for d in 0..4 {
                        let (dy, dx) = (d / 2, d % 2);
                        let src = &prod[(co * 4 + d) * cols..(co * 4 + d + 1) * cols];
                        for y in y0..y1 {
                            let s = &src[(y - y0) * w..(y - y0 + 1) * w];
                            // SAFETY: output row 2y+dy of channel co lies in this tile's rows
                            // (2*y0..2*y1), which no other tile writes.
                            let row = unsafe {
                                std::slice::from_raw_parts_mut(
                                    out_ptr.at(co * plane + (2 * y + dy) * ow),
                                    ow,
                                )
                            };
                            for (xx, v) in s.iter().enumerate() {
                                row[2 * xx + dx] = v + b;
                            }
                        }
                    }
                }
            });
        });
    }
}

impl CustomOp1 for Upsample2xCpu {
    fn name(&self) -> &'static str {
        "edgesift-upsample2x"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_contiguous(storage, layout, "input")?;
        let (b, c, h, w) = layout.shape().dims4()?;
        if c != self.c_in {
            candle_core::bail!(
                "edgesift-upsample2x: {c} input channels, the weights take {}",
                self.c_in
            );
        }
        let (per_in, per_out) = (c * h * w, self.c_out * 4 * h * w);
        let mut out = super::output_buffer(b * per_out);
        let t0 = super::profile::start();
        for (xi, oi) in x.chunks_exact(per_in).zip(out.chunks_exact_mut(per_out)) {
            self.run(xi, h, w, oi);
        }
        super::profile::record(t0, || {
            let shape = format!("{c:>3} -> {:<3} 2x2 x2 {h}x{w}", self.c_out);
            (
                "upsample2x (transposed conv) f32",
                shape,
                (b * c * per_out) as u64,
            )
        });
        Ok((
            CpuStorage::F32(out),
            Shape::from((b, self.c_out, 2 * h, 2 * w)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn matches_candle_conv_transpose() {
        let (ci, co, h, w) = (6, 5, 7, 9);
        let vals = |n: usize, k: f32| (0..n).map(|i| (i as f32 * k).sin()).collect::<Vec<_>>();
        let wv = vals(ci * co * 4, 0.37); // PyTorch layout [c_in, c_out, 2, 2]
        let bv = vals(co, 1.3);
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vals(2 * ci * h * w, 0.11), (2, ci, h, w), &dev).unwrap();
        let wt = Tensor::from_vec(wv.clone(), (ci, co, 2, 2), &dev).unwrap();
        let bt = Tensor::from_vec(bv.clone(), (1, co, 1, 1), &dev).unwrap();
        let want = x
            .conv_transpose2d(&wt, 0, 0, 2, 1)
            .unwrap()
            .broadcast_add(&bt)
            .unwrap();
        let mut rows = vec![0f32; 4 * co * ci];
        for i in 0..ci {
            for o in 0..co {
                for d in 0..4 {
                    rows[(o * 4 + d) * ci + i] = wv[(i * co + o) * 4 + d];
                }
            }
        }
        let got = x
            .apply_op1_no_bwd(&Upsample2xCpu::new(rows, bv, ci))
            .unwrap();
        assert_eq!(got.dims(), want.dims());
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
