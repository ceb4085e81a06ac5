//! The segmentation head's decode over its three levels in one parallel pass: DFL (softmax over
//! each side's `reg_max` bins, expectation of the bin index) to boxes in input pixels, class
//! sigmoids, and the mask coefficients, written straight into the `[B, 4 + nc + nm, A]` output.
//!
//! With candle's ops this was three concatenations, a softmax over a non-last axis (strided
//! reductions), a broadcast product, a sum, the anchor arithmetic and two more concatenations,
//! all on the calling thread: 4-5 % of a frame's CPU at 640 while the pool's workers waited.

use super::act::exp_f32;
use super::cpu_f32::{with_f32, OutPtr, Planes};
use candle_core::Tensor;
use rayon::prelude::*;

/// Anchors per DFL task: 16 rows of 1024 values stay in L1.
const CHUNK: usize = 1024;

/// One level of the head: the box branch `[B, 4 * reg_max, H, W]`, the class branch
/// `[B, nc, H, W]` (logits) and the coefficient branch `[B, nm, H, W]`, at `stride` pixels per
/// cell.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Level<'a> {
    pub boxes: &'a Tensor,
    pub classes: &'a Tensor,
    pub coefs: &'a Tensor,
    pub stride: usize,
}

/// `[B, 4 + nc + nm, A]`: box centre x, y, width, height in input pixels, class probabilities,
/// mask coefficients, for the anchors of every level in order (row-major within a level, at
/// cell centres, as ultralytics' `make_anchors`). `None` unless every input is a contiguous f32
/// CPU tensor; the caller then decodes with candle's ops.
pub(crate) fn decode_f32(
    levels: &[Level<'_>],
    reg_max: usize,
) -> Option<candle_core::Result<Tensor>> {
    let tensors: Vec<&Tensor> = levels
        .iter()
        .flat_map(|l| [l.boxes, l.classes, l.coefs])
        .collect();
    let t0 = super::profile::start();
    let r = with_f32(&tensors, |planes| {
        let strides: Vec<usize> = levels.iter().map(|l| l.stride).collect();
        decode(planes, &strides, reg_max)
    });
    super::profile::record(t0, || {
        ("head decode", format!("{} levels", levels.len()), 0)
    });
    r
}

fn decode(planes: &[Planes<'_>], strides: &[usize], reg_max: usize) -> candle_core::Result<Tensor> {
    let levels: Vec<[&Planes<'_>; 3]> = planes
        .chunks_exact(3)
        .map(|p| [&p[0], &p[1], &p[2]])
        .collect();
    let Some(first) = levels.first() else {
        candle_core::bail!("edgesift-decode: no levels");
    };
    let (b, nc, nm) = (first[0].b, first[1].c, first[2].c);
    for (i, [bx, cl, co]) in levels.iter().enumerate() {
        let same_grid = [cl, co]
            .iter()
            .all(|p| p.h == bx.h && p.w == bx.w && p.b == b);
        if bx.c != 4 * reg_max || cl.c != nc || co.c != nm || bx.b != b || !same_grid {
            candle_core::bail!(
                "edgesift-decode: level {i} has boxes {:?}, classes {:?}, coefficients {:?}; \
                 expected [{b}, {}, h, w], [{b}, {nc}, h, w], [{b}, {nm}, h, w]",
                [bx.b, bx.c, bx.h, bx.w],
                [cl.b, cl.c, cl.h, cl.w],
                [co.b, co.c, co.h, co.w],
                4 * reg_max
            );
        }
    }
    // Each level's first anchor in the concatenated order.
    let mut starts = vec![0usize];
    for l in &levels {
        starts.push(starts.last().copied().unwrap_or(0) + l[0].h * l[0].w);
    }
    let a = *starts.last().unwrap_or(&0);

    // Phase 1: the four distances (left, top, right, bottom, in cells) of every anchor.
    let mut dist = super::output_buffer(b * 4 * a);
    let dist_ptr = OutPtr(dist.as_mut_ptr());
    let mut tasks = Vec::new();
    for bi in 0..b {
        for (li, l) in levels.iter().enumerate() {
            let hw = l[0].h * l[0].w;
            for side in 0..4 {
                for c0 in (0..hw).step_by(CHUNK) {
                    tasks.push((bi, li, side, c0, (c0 + CHUNK).min(hw)));
                }
            }
        }
    }
    tasks.into_par_iter().for_each_init(
        || (vec![0f32; CHUNK], vec![0f32; CHUNK], vec![0f32; CHUNK]),
        |(max, den, num), (bi, li, side, c0, c1)| {
            let bx = levels[li][0];
            let n = c1 - c0;
            let bins = |j: usize| &bx.plane(bi, side * reg_max + j)[c0..c1];
            let (max, den, num) = (&mut max[..n], &mut den[..n], &mut num[..n]);
            max.copy_from_slice(bins(0));
            for j in 1..reg_max {
                for (m, &v) in max.iter_mut().zip(bins(j)) {
                    *m = m.max(v);
                }
            }
            den.fill(0.0);
            num.fill(0.0);
            for j in 0..reg_max {
                let k = j as f32;
                for ((d, u), (&v, &m)) in den
                    .iter_mut()
                    .zip(num.iter_mut())
                    .zip(bins(j).iter().zip(&*max))
                {
                    let e = exp_f32(v - m);
                    *d += e;
                    *u += e * k;
                }
            }
            let at = (bi * 4 + side) * a + starts[li] + c0;
            // SAFETY: each task writes its own anchors of its own side and image, inside `dist`;
            // nothing reads `dist` until the loop ends.
            let out = unsafe { std::slice::from_raw_parts_mut(dist_ptr.get().add(at), n) };
            for ((o, &u), &d) in out.iter_mut().zip(&*num).zip(&*den) {
                *o = u / d;
            }
        },
    );

    // Phase 2: every output row, one task each.
    let rows = 4 + nc + nm;
    let mut out = super::output_buffer(b * rows * a);
    out.par_chunks_mut(a).enumerate().for_each(|(k, row)| {
        let (bi, r) = (k / rows, k % rows);
        for (li, l) in levels.iter().enumerate() {
            let (h, w) = (l[0].h, l[0].w);
            let seg = &mut row[starts[li]..starts[li] + h * w];
            if r < 4 {
                let d = |side: usize| &dist[(bi * 4 + side) * a + starts[li]..][..h * w];
                let stride = strides[li] as f32;
                // x uses left/right (sides 0, 2) and the column; y top/bottom and the row.
                let (lo, hi) = if r % 2 == 0 {
                    (d(0), d(2))
                } else {
                    (d(1), d(3))
                };
                for (i, v) in seg.iter_mut().enumerate() {
                    let centre = if r % 2 == 0 {
                        (i % w) as f32
                    } else {
                        (i / w) as f32
                    } + 0.5;
                    let (p0, p1) = (centre - lo[i], centre + hi[i]);
                    *v = if r < 2 { (p0 + p1) * 0.5 } else { p1 - p0 } * stride;
                }
            } else if r < 4 + nc {
                let src = l[1].plane(bi, r - 4);
                for (v, &x) in seg.iter_mut().zip(src) {
                    *v = 1.0 / (1.0 + exp_f32(-x));
                }
            } else {
                seg.copy_from_slice(l[2].plane(bi, r - 4 - nc));
            }
        }
    });
    Tensor::from_vec(out, (b, rows, a), first[0].device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn ramp(shape: (usize, usize, usize, usize), k: f32, scale: f32) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f32> = (0..n).map(|i| (i as f32 * k).sin() * scale).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The decode written with candle's ops, as the head did before this kernel.
    fn reference(levels: &[Level<'_>], reg_max: usize) -> Tensor {
        let b = levels[0].boxes.dim(0).unwrap();
        let (mut bx, mut cl, mut co, mut ax, mut ay, mut st) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for l in levels {
            let (_, _, h, w) = l.boxes.dims4().unwrap();
            bx.push(l.boxes.flatten_from(2).unwrap());
            cl.push(l.classes.flatten_from(2).unwrap());
            co.push(l.coefs.flatten_from(2).unwrap());
            for y in 0..h {
                for x in 0..w {
                    ax.push(x as f32 + 0.5);
                    ay.push(y as f32 + 0.5);
                    st.push(l.stride as f32);
                }
            }
        }
        let a = ax.len();
        let dev = Device::Cpu;
        let boxes = Tensor::cat(&bx, 2).unwrap();
        let bins: Vec<f32> = (0..reg_max).map(|i| i as f32).collect();
        let bins = Tensor::from_vec(bins, (1, 1, reg_max, 1), &dev).unwrap();
        let dist = candle_nn::ops::softmax(&boxes.reshape((b, 4, reg_max, a)).unwrap(), 2)
            .unwrap()
            .broadcast_mul(&bins)
            .unwrap()
            .sum(2)
            .unwrap();
        let axy = Tensor::cat(
            &[
                Tensor::from_vec(ax, (1, 1, a), &dev).unwrap(),
                Tensor::from_vec(ay, (1, 1, a), &dev).unwrap(),
            ],
            1,
        )
        .unwrap();
        let stride = Tensor::from_vec(st, (1, 1, a), &dev).unwrap();
        let x1y1 = axy.broadcast_sub(&dist.narrow(1, 0, 2).unwrap()).unwrap();
        let x2y2 = axy.broadcast_add(&dist.narrow(1, 2, 2).unwrap()).unwrap();
        let centre = ((&x1y1 + &x2y2).unwrap() * 0.5).unwrap();
        let size = (x2y2 - x1y1).unwrap();
        let dbox = Tensor::cat(&[centre, size], 1)
            .unwrap()
            .broadcast_mul(&stride)
            .unwrap();
        let scores = candle_nn::ops::sigmoid(&Tensor::cat(&cl, 2).unwrap()).unwrap();
        Tensor::cat(&[dbox, scores, Tensor::cat(&co, 2).unwrap()], 1).unwrap()
    }

    #[test]
    fn matches_candles_decode() {
        let (b, r, nc, nm) = (2, 16, 3, 5);
        // Level sizes with a remainder chunk (40x30 = 1200 anchors > CHUNK) and tiny ones.
        let grids = [(40, 30, 8), (5, 3, 16), (1, 2, 32)];
        let ts: Vec<[Tensor; 3]> = grids
            .iter()
            .enumerate()
            .map(|(i, &(h, w, _))| {
                let k = 0.1 + i as f32;
                [
                    ramp((b, 4 * r, h, w), 0.37 * k, 6.0),
                    ramp((b, nc, h, w), 0.71 * k, 9.0),
                    ramp((b, nm, h, w), 1.3 * k, 2.0),
                ]
            })
            .collect();
        let levels: Vec<Level<'_>> = ts
            .iter()
            .zip(grids)
            .map(|(t, (_, _, stride))| Level {
                boxes: &t[0],
                classes: &t[1],
                coefs: &t[2],
                stride,
            })
            .collect();
        let got = decode_f32(&levels, r).unwrap().unwrap();
        let want = reference(&levels, r);
        assert_eq!(got.dims(), want.dims());
        let diff = (&got - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_keepdim(D::Minus1)
            .unwrap();
        let worst = diff
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Boxes reach ~1000 px; exp_f32 differs from libm's by ~2e-7 relative.
        assert!(worst < 1e-3, "largest difference {worst}");
        let bad = ramp((b, 4 * r + 1, 40, 30), 0.1, 1.0);
        let mut wrong = levels.clone();
        wrong[0].boxes = &bad;
        assert!(decode_f32(&wrong, r).unwrap().is_err());
    }
}
