//! SPPF's pooling pyramid: a map followed by `n` chained k x k stride-1 max-pools with "same"
//! padding, all concatenated along channels, in one parallel pass.
//!
//! With candle's ops each pool padded its input by two concatenations of -inf tensors, pooled on
//! the calling thread, and the four maps were concatenated once more: 2 % of a frame's CPU at
//! 640, serial. Here each channel plane is pooled separably (rows, then columns, over the window
//! clipped at the border, which is what -inf padding gives) by one task of rayon's pool, and the
//! results go straight into their place in the concatenated output.

use super::cpu_f32::{with_f32, OutPtr, Planes};
use candle_core::Tensor;
use rayon::prelude::*;

/// `cat([x, p(x), p(p(x)), ...], dim 1)` with `n` pools `p` = k x k max-pool, stride 1, padding
/// `k / 2` with -inf. `x` is `[B, C, H, W]`.
pub(crate) fn pool_pyramid(x: &Tensor, k: usize, n: usize) -> candle_core::Result<Tensor> {
    let t0 = super::profile::start();
    let r = pool_pyramid_inner(x, k, n);
    super::profile::record(t0, || {
        ("sppf pools", format!("{n} x {k}x{k} on {:?}", x.dims()), 0)
    });
    r
}

fn pool_pyramid_inner(x: &Tensor, k: usize, n: usize) -> candle_core::Result<Tensor> {
    if k % 2 == 0 {
        candle_core::bail!("edgesift-pool: the window must be odd, got {k}");
    }
    match with_f32(&[x], |p| pyramid_f32(&p[0], k, n)) {
        Some(r) => r,
        None => {
            let mut maps = vec![x.clone()];
            for _ in 0..n {
                let last = maps.last().expect("x at least");
                maps.push(max_pool_same_candle(last, k)?);
            }
            Tensor::cat(&maps, 1)
        }
    }
}

fn pyramid_f32(x: &Planes<'_>, k: usize, n: usize) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = (x.b, x.c, x.h, x.w);
    let hw = h * w;
    let levels = n + 1;
    let mut out = super::output_buffer(b * levels * c * hw);
    let ptr = OutPtr(out.as_mut_ptr());
    (0..b * c).into_par_iter().for_each_init(
        || vec![0f32; hw],
        |rows, task| {
            let (bi, ci) = (task / c, task % c);
            let dst = |level: usize| {
                let at = ((bi * levels + level) * c + ci) * hw;
                // SAFETY: plane (bi, level, ci) is inside the buffer and written by this task
                // alone; nothing reads the buffer until the loop ends.
                unsafe { std::slice::from_raw_parts_mut(ptr.get().add(at), hw) }
            };
            dst(0).copy_from_slice(x.plane(bi, ci));
            for level in 1..levels {
                let src = dst(level - 1);
                max_rows(src, rows, w, k / 2);
                max_cols(rows, dst(level), h, w, k / 2);
            }
        },
    );
    Tensor::from_vec(out, (b, levels * c, h, w), x.device)
}

/// `out[y][x] = max(src[y][x - p ..= x + p])`, the window clipped to the row.
fn max_rows(src: &[f32], out: &mut [f32], w: usize, p: usize) {
    for (s, o) in src.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        for (x, v) in o.iter_mut().enumerate() {
            let win = &s[x.saturating_sub(p)..(x + p + 1).min(w)];
            *v = win
                .iter()
                .fold(f32::NEG_INFINITY, |m, &a| if a > m { a } else { m });
        }
    }
}

/// `out[y][x] = max(src[y - p ..= y + p][x])`, the window clipped to the column.
fn max_cols(src: &[f32], out: &mut [f32], h: usize, w: usize, p: usize) {
    for y in 0..h {
        let o = &mut out[y * w..(y + 1) * w];
        o.fill(f32::NEG_INFINITY);
        for yy in y.saturating_sub(p)..(y + p + 1).min(h) {
            for (v, &a) in o.iter_mut().zip(&src[yy * w..(yy + 1) * w]) {
                if a > *v {
                    *v = a;
                }
            }
        }
    }
}

/// One k x k stride-1 max-pool with -inf "same" padding, from candle's ops (CUDA, f16).
fn max_pool_same_candle(x: &Tensor, k: usize) -> candle_core::Result<Tensor> {
    let p = k / 2;
    let (b, c, h, w) = x.dims4()?;
    let neg = |shape: (usize, usize, usize, usize)| {
        Tensor::full(f32::NEG_INFINITY, shape, x.device())?.to_dtype(x.dtype())
    };
    let rows = neg((b, c, p, w))?;
    let x = Tensor::cat(&[&rows, x, &rows], 2)?;
    let cols = neg((b, c, h + 2 * p, p))?;
    let x = Tensor::cat(&[&cols, &x, &cols], 3)?;
    x.max_pool2d_with_stride(k, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn to_vec(t: &Tensor) -> Vec<f32> {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn matches_candles_padded_max_pool() {
        for (b, c, h, w, k) in [(2, 3, 7, 9, 5), (1, 4, 3, 2, 5), (1, 2, 6, 6, 3)] {
            let n = b * c * h * w;
            let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 - 500.0).collect();
            let x = Tensor::from_vec(v, (b, c, h, w), &Device::Cpu).unwrap();
            let got = pool_pyramid(&x, k, 3).unwrap();
            let p1 = max_pool_same_candle(&x, k).unwrap();
            let p2 = max_pool_same_candle(&p1, k).unwrap();
            let p3 = max_pool_same_candle(&p2, k).unwrap();
            let want = Tensor::cat(&[&x, &p1, &p2, &p3], 1).unwrap();
            assert_eq!(got.dims(), want.dims());
            assert_eq!(to_vec(&got), to_vec(&want), "{b}x{c}x{h}x{w} k {k}");
        }
    }

    #[test]
    fn f16_takes_candles_path_with_the_same_result() {
        let v: Vec<f32> = (0..2 * 5 * 5).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Tensor::from_vec(v, (1, 2, 5, 5), &Device::Cpu).unwrap();
        let want = to_vec(&pool_pyramid(&x, 5, 2).unwrap());
        let half = x.to_dtype(DType::F16).unwrap();
        let got = to_vec(&pool_pyramid(&half, 5, 2).unwrap());
        let tol = want.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-3);
        assert!(tol, "{want:?} vs {got:?}");
        assert!(pool_pyramid(&x, 4, 1).is_err());
    }
}
