//! Concatenation along channels, with an optional nearest 2x upsample of a part, written by
//! rayon's pool into one fresh buffer.
//!
//! candle's `Tensor::cat` copies on the calling thread while the pool's workers wait, and the
//! neck's `upsample_nearest2d` before each concatenation wrote a tensor that was copied again
//! at once: together 3-4 % of a frame's CPU at 640, all of it serial.

use super::cpu_f32::{with_f32, Planes};
use candle_core::Tensor;
use rayon::prelude::*;

/// One input of [`concat_channels`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part<'a> {
    /// `[B, C, H, W]`, copied as it is.
    Plain(&'a Tensor),
    /// `[B, C, H/2, W/2]`, each value repeated over a 2x2 block (nearest upsampling).
    Up2(&'a Tensor),
}

impl Part<'_> {
    fn tensor(&self) -> &Tensor {
        match self {
            Part::Plain(t) | Part::Up2(t) => t,
        }
    }

    fn up(&self) -> bool {
        matches!(self, Part::Up2(_))
    }
}

/// `cat([p.upsampled_if_asked() for p in parts], dim 1)`. On the CPU in f32 the copy runs on
/// rayon's pool, one channel plane per task; elsewhere it is candle's `cat` (and
/// `upsample_nearest2d`).
pub(crate) fn concat_channels(parts: &[Part<'_>]) -> candle_core::Result<Tensor> {
    let t0 = super::profile::start();
    let r = concat_channels_inner(parts);
    super::profile::record(t0, || {
        let dims = r.as_ref().map(|t| t.dims().to_vec()).unwrap_or_default();
        ("concat", format!("{} parts -> {dims:?}", parts.len()), 0)
    });
    r
}

fn concat_channels_inner(parts: &[Part<'_>]) -> candle_core::Result<Tensor> {
    let tensors: Vec<&Tensor> = parts.iter().map(Part::tensor).collect();
    let native = with_f32(&tensors, |planes| concat_f32(parts, planes));
    match native {
        Some(r) => r,
        None => {
            let up: Vec<Tensor> = parts
                .iter()
                .map(|p| match p {
                    Part::Plain(t) => Ok((*t).clone()),
                    Part::Up2(t) => {
                        let (_, _, h, w) = t.dims4()?;
                        t.upsample_nearest2d(2 * h, 2 * w)
                    }
                })
                .collect::<candle_core::Result<_>>()?;
            Tensor::cat(&up, 1)
        }
    }
}

fn concat_f32(parts: &[Part<'_>], planes: &[Planes<'_>]) -> candle_core::Result<Tensor> {
    let Some(first) = planes.first() else {
        candle_core::bail!("edgesift-concat: no inputs");
    };
    let b = first.b;
    let scale = |i: usize| if parts[i].up() { 2 } else { 1 };
    let (h, w) = (first.h * scale(0), first.w * scale(0));
    for (i, p) in planes.iter().enumerate() {
        if p.b != b || p.h * scale(i) != h || p.w * scale(i) != w {
            candle_core::bail!(
                "edgesift-concat: part {i} is [{}, {}, {}, {}] (upsampled: {}), the first gives \
                 [{b}, _, {h}, {w}]",
                p.b,
                p.c,
                p.h,
                p.w,
                parts[i].up()
            );
        }
    }
    let c_total: usize = planes.iter().map(|p| p.c).sum();
    // Which part and channel each output channel comes from.
    let sources: Vec<(usize, usize)> = planes
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..p.c).map(move |c| (i, c)))
        .collect();
    let hw = h * w;
    let mut out = super::output_buffer(b * c_total * hw);
    out.par_chunks_mut(hw).enumerate().for_each(|(k, dst)| {
        let (bi, ci) = (k / c_total, k % c_total);
        let (pi, c) = sources[ci];
        let src = planes[pi].plane(bi, c);
        if parts[pi].up() {
            let sw = planes[pi].w;
            for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                let s = &src[(y / 2) * sw..(y / 2 + 1) * sw];
                for (pair, &v) in row.chunks_exact_mut(2).zip(s) {
                    pair[0] = v;
                    pair[1] = v;
                }
            }
        } else {
            dst.copy_from_slice(src);
        }
    });
    Tensor::from_vec(out, (b, c_total, h, w), first.device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn ramp(shape: (usize, usize, usize, usize), k: f32) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n).map(|i| (i as f32 * k).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn same(a: &Tensor, b: &Tensor) {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn matches_candle_cat_and_upsample() {
        let small = ramp((2, 3, 4, 5), 0.3);
        let big = ramp((2, 4, 8, 10), 0.7);
        // A narrowed view (C2f's split) is contiguous with an offset into its storage.
        let wide = ramp((2, 6, 8, 10), 1.1);
        let view = wide.narrow(1, 2, 3).unwrap();
        let got =
            concat_channels(&[Part::Up2(&small), Part::Plain(&big), Part::Plain(&view)]).unwrap();
        let want = Tensor::cat(
            &[
                small.upsample_nearest2d(8, 10).unwrap(),
                big.clone(),
                view.contiguous().unwrap(),
            ],
            1,
        )
        .unwrap();
        same(&got, &want);
    }

    #[test]
    fn other_dtypes_take_candles_path() {
        let a = ramp((1, 2, 3, 3), 0.5).to_dtype(DType::F16).unwrap();
        let b = ramp((1, 1, 3, 3), 0.9).to_dtype(DType::F16).unwrap();
        let got = concat_channels(&[Part::Plain(&a), Part::Plain(&b)]).unwrap();
        same(
            &got.to_dtype(DType::F32).unwrap(),
            &Tensor::cat(&[&a, &b], 1)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap(),
        );
    }

    #[test]
    fn mismatched_sizes_are_an_error() {
        let a = ramp((1, 2, 4, 4), 0.5);
        let b = ramp((1, 2, 3, 4), 0.5);
        assert!(concat_channels(&[Part::Plain(&a), Part::Plain(&b)]).is_err());
        assert!(concat_channels(&[Part::Plain(&a), Part::Up2(&a)]).is_err());
    }
}
