//! Letterboxing: the image scaled to fit the network input with its aspect kept, padded with grey.
//!
//! This follows ultralytics' `LetterBox` exactly, rounding included (Python rounds half to even),
//! and resizes with OpenCV's fixed-point bilinear arithmetic (`cv2.resize`, `INTER_LINEAR`, 8-bit),
//! so that the network sees the same input as under ultralytics and its answers can be compared.

use image::RgbImage;
use rayon::prelude::*;

/// Value of the padding, as ultralytics pads.
pub const PAD_VALUE: u8 = 114;

/// How an image of `orig` size maps into the network input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub orig_width: u32,
    pub orig_height: u32,
    /// The scaled image before padding.
    pub scaled_width: u32,
    pub scaled_height: u32,
    /// The network input (scaled image plus padding).
    pub input_width: u32,
    pub input_height: u32,
    pub left: u32,
    pub top: u32,
}

impl Letterbox {
    /// Plans the letterbox of an `orig_width x orig_height` image into `target` (`[height, width]`).
    ///
    /// With `minimal_padding` (ultralytics' `auto`, what its predictor does for PyTorch models)
    /// padding only reaches the next multiple of `stride`; otherwise the input is exactly `target`.
    pub fn plan(
        orig_width: u32,
        orig_height: u32,
        target: [u32; 2],
        minimal_padding: bool,
        stride: u32,
    ) -> Self {
        let (h, w) = (orig_height.max(1) as f64, orig_width.max(1) as f64);
        let (th, tw) = (target[0] as f64, target[1] as f64);
        let r = (th / h).min(tw / w);
        let new_w = ((w * r).round_ties_even() as u32).max(1);
        let new_h = ((h * r).round_ties_even() as u32).max(1);
        let mut dw = target[1].saturating_sub(new_w);
        let mut dh = target[0].saturating_sub(new_h);
        if minimal_padding {
            dw %= stride;
            dh %= stride;
        }
        let (dw, dh) = (dw as f64 / 2.0, dh as f64 / 2.0);
        let top = (dh - 0.1).round_ties_even() as u32;
        let bottom = (dh + 0.1).round_ties_even() as u32;
        let left = (dw - 0.1).round_ties_even() as u32;
        let right = (dw + 0.1).round_ties_even() as u32;
        Self {
            orig_width,
            orig_height,
            scaled_width: new_w,
            scaled_height: new_h,
            input_width: new_w + left + right,
            input_height: new_h + top + bottom,
            left,
            top,
        }
    }

    /// Horizontal and vertical scale from original to input pixels, as ultralytics' `scale_boxes`
    /// derives them (from the rounded scaled size).
    pub fn gains(&self) -> (f64, f64) {
        (
            self.scaled_width as f64 / self.orig_width as f64,
            self.scaled_height as f64 / self.orig_height as f64,
        )
    }

    /// Writes the letterboxed image as planar RGB floats in 0..1 (`[3, H, W]`) into `out`.
    pub fn apply(&self, image: &RgbImage, out: &mut Vec<f32>) {
        let (iw, ih) = (self.input_width as usize, self.input_height as usize);
        let plane = iw * ih;
        out.clear();
        out.resize(3 * plane, PAD_VALUE as f32 / 255.0);
        let mut scaled = Vec::new();
        let src: &[u8] =
            if image.width() == self.scaled_width && image.height() == self.scaled_height {
                image.as_raw()
            } else {
                resize_bilinear_cv2(
                    image.as_raw(),
                    image.width() as usize,
                    image.height() as usize,
                    self.scaled_width as usize,
                    self.scaled_height as usize,
                    &mut scaled,
                );
                &scaled
            };
        let (sw, sh) = (self.scaled_width as usize, self.scaled_height as usize);
        let (top, left) = (self.top as usize, self.left as usize);
        let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
        let (r, gb) = out.split_at_mut(plane);
        let (g, b) = gb.split_at_mut(plane);
        // One task per input row (rayon's pool, as the network): on the calling thread this
        // and the resize were ~2 ms of a 416 frame during which the workers waited.
        r.par_chunks_mut(iw)
            .zip(g.par_chunks_mut(iw))
            .zip(b.par_chunks_mut(iw))
            .enumerate()
            .filter(|(y, _)| (top..top + sh).contains(y))
            .for_each(|(y, ((r, g), b))| {
                let row = &src[(y - top) * sw * 3..(y - top + 1) * sw * 3];
                let (r, g, b) = (&mut r[left..], &mut g[left..], &mut b[left..]);
                for (x, px) in row.chunks_exact(3).enumerate() {
                    r[x] = lut[px[0] as usize];
                    g[x] = lut[px[1] as usize];
                    b[x] = lut[px[2] as usize];
                }
            });
    }

    /// Writes the letterboxed image as interleaved RGB bytes (`[H, W, 3]`, NHWC without the batch)
    /// into `out`: what channels-last runtimes (TFLite) take before their own normalisation.
    pub fn apply_rgb8(&self, image: &RgbImage, out: &mut Vec<u8>) {
        let iw = self.input_width as usize;
        out.clear();
        out.resize(3 * iw * self.input_height as usize, PAD_VALUE);
        let mut scaled = Vec::new();
        let src: &[u8] =
            if image.width() == self.scaled_width && image.height() == self.scaled_height {
                image.as_raw()
            } else {
                resize_bilinear_cv2(
                    image.as_raw(),
                    image.width() as usize,
                    image.height() as usize,
                    self.scaled_width as usize,
                    self.scaled_height as usize,
                    &mut scaled,
                );
                &scaled
            };
        let sw = self.scaled_width as usize;
        for y in 0..self.scaled_height as usize {
            let start = 3 * ((y + self.top as usize) * iw + self.left as usize);
            out[start..start + 3 * sw].copy_from_slice(&src[y * sw * 3..(y + 1) * sw * 3]);
        }
    }
}

/// OpenCV's coefficient scale for 8-bit bilinear resizing (`INTER_RESIZE_COEF_BITS = 11`).
const COEF_SCALE: f32 = 2048.0;

/// One output coordinate's source index and fixed-point weights, as `cv::resize` computes them.
fn linear_taps(src_len: usize, dst_len: usize) -> Vec<(usize, i32, i32)> {
    let scale = src_len as f64 / dst_len as f64;
    (0..dst_len)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= src_len as i64 - 1 {
                s = src_len as i64 - 1;
                frac = 0.0;
            }
            // saturate_cast<short>(float) rounds to nearest, ties to even.
            let a0 = ((1.0 - frac) * COEF_SCALE).round_ties_even() as i32;
            let a1 = (frac * COEF_SCALE).round_ties_even() as i32;
            (s as usize, a0, a1)
        })
        .collect()
}

/// Bilinear resize of packed RGB bytes with OpenCV's 8-bit fixed-point arithmetic: a horizontal
/// pass to 11-bit-scaled integers, then a vertical pass combined and rounded as OpenCV's SIMD
/// path does (`((a >> 4) * b0 >> 16) + ((c >> 4) * b1 >> 16) + 2 >> 2`).
pub(crate) fn resize_bilinear_cv2(
    src: &[u8],
    sw: usize,
    sh: usize,
    dw: usize,
    dh: usize,
    out: &mut Vec<u8>,
) {
    let xt = linear_taps(sw, dw);
    let yt = linear_taps(sh, dh);
    out.clear();
    out.resize(dw * dh * 3, 0);
    if dw == 0 || dh == 0 || sw == 0 || sh == 0 {
        return;
    }
    // Byte offsets of each output column's two source pixels, so that the horizontal pass is
    // one multiply-add per channel with no clamping or index arithmetic inside.
    let taps: Vec<(usize, usize, i32, i32)> = xt
        .iter()
        .map(|&(s, a0, a1)| (s * 3, (s + 1).min(sw - 1) * 3, a0, a1))
        .collect();
    let hpass = |row: usize, buf: &mut Vec<i32>| {
        buf.resize(dw * 3, 0);
        let r = &src[row * sw * 3..(row + 1) * sw * 3];
        for (d, &(o0, o1, a0, a1)) in buf.chunks_exact_mut(3).zip(&taps) {
            let (p, q) = (&r[o0..o0 + 3], &r[o1..o1 + 3]);
            d[0] = p[0] as i32 * a0 + q[0] as i32 * a1;
            d[1] = p[1] as i32 * a0 + q[1] as i32 * a1;
            d[2] = p[2] as i32 * a0 + q[2] as i32 * a1;
        }
    };
    // Blocks of output rows on rayon's pool; within a block, horizontally resized source rows
    // are reused from one output row to the next (each block recomputes its first pair).
    out.par_chunks_mut(ROWS_PER_TASK * dw * 3)
        .enumerate()
        .for_each(|(block, dst_rows)| {
            let (mut row0, mut row1) = (Vec::with_capacity(dw * 3), Vec::with_capacity(dw * 3));
            let mut cached = (usize::MAX, usize::MAX);
            for (i, dst) in dst_rows.chunks_exact_mut(dw * 3).enumerate() {
                let (sy, b0, b1) = yt[block * ROWS_PER_TASK + i];
                let sy1 = (sy + 1).min(sh - 1);
                if cached != (sy, sy1) {
                    if cached.1 == sy {
                        std::mem::swap(&mut row0, &mut row1);
                    } else {
                        hpass(sy, &mut row0);
                    }
                    hpass(sy1, &mut row1);
                    cached = (sy, sy1);
                }
                for ((d, &p), &q) in dst.iter_mut().zip(&row0).zip(&row1) {
                    let v = (((p >> 4) * b0) >> 16) + (((q >> 4) * b1) >> 16);
                    *d = ((v + 2) >> 2).clamp(0, 255) as u8;
                }
            }
        });
}

/// Output rows per task of [`resize_bilinear_cv2`]: enough to amortise the block's first two
/// horizontal passes, few enough to split a 416-wide letterbox over the cores.
const ROWS_PER_TASK: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_like_ultralytics_rect_inference() {
        // 1280x720 into 640 with minimal padding: 640x360 scaled, padded to 384 rows.
        let lb = Letterbox::plan(1280, 720, [640, 640], true, 32);
        assert_eq!((lb.scaled_width, lb.scaled_height), (640, 360));
        assert_eq!((lb.input_width, lb.input_height), (640, 384));
        assert_eq!((lb.left, lb.top), (0, 12));
        // Square padding instead.
        let lb = Letterbox::plan(1280, 720, [640, 640], false, 32);
        assert_eq!((lb.input_width, lb.input_height, lb.top), (640, 640, 140));
        // Odd padding splits with the extra row at the bottom (round(dh - 0.1), round(dh + 0.1)).
        let lb = Letterbox::plan(600, 400, [320, 320], true, 32);
        assert_eq!((lb.scaled_width, lb.scaled_height), (320, 213));
        assert_eq!((lb.input_height, lb.top), (224, 5));
    }

    #[test]
    fn upscales_small_images() {
        let lb = Letterbox::plan(100, 50, [640, 640], true, 32);
        assert_eq!((lb.scaled_width, lb.scaled_height), (640, 320));
        assert_eq!((lb.input_width, lb.input_height), (640, 320));
    }

    #[test]
    fn apply_pads_with_grey_and_normalises() {
        let img = RgbImage::from_pixel(4, 2, image::Rgb([255, 0, 51]));
        let lb = Letterbox::plan(4, 2, [8, 8], false, 32);
        assert_eq!((lb.input_width, lb.input_height, lb.top), (8, 8, 2));
        let mut out = Vec::new();
        lb.apply(&img, &mut out);
        assert_eq!(out.len(), 3 * 64);
        assert_eq!(out[0], 114.0 / 255.0);
        let centre = 4 * 8 + 3;
        assert_eq!(out[centre], 1.0);
        assert_eq!(out[64 + centre], 0.0);
        assert_eq!(out[128 + centre], 51.0 / 255.0);
    }

    #[test]
    fn rgb8_is_the_planar_input_interleaved() {
        let img = RgbImage::from_fn(7, 3, |x, y| image::Rgb([x as u8 * 30, y as u8 * 50, 200]));
        let lb = Letterbox::plan(7, 3, [16, 16], false, 32);
        let (mut planar, mut hwc) = (Vec::new(), Vec::new());
        lb.apply(&img, &mut planar);
        lb.apply_rgb8(&img, &mut hwc);
        let plane = (lb.input_width * lb.input_height) as usize;
        assert_eq!(hwc.len(), 3 * plane);
        for i in 0..plane {
            for c in 0..3 {
                assert_eq!(
                    hwc[3 * i + c] as f32 / 255.0,
                    planar[c * plane + i],
                    "pixel {i} channel {c}"
                );
            }
        }
    }

    #[test]
    fn resize_of_a_constant_image_is_constant_and_halving_averages_pairs() {
        let src = vec![77u8; 10 * 6 * 3];
        let mut out = Vec::new();
        resize_bilinear_cv2(&src, 10, 6, 7, 3, &mut out);
        assert!(out.iter().all(|&v| v == 77));
        // Exact 2x downscale samples half-way between two pixels: the rounded mean.
        let src: Vec<u8> = (0..4u8).flat_map(|x| [x * 10, x * 10, x * 10]).collect();
        resize_bilinear_cv2(&src, 4, 1, 2, 1, &mut out);
        assert_eq!(out, vec![5, 5, 5, 25, 25, 25]);
    }
}
