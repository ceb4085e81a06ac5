//! MobileSAM's pixel-level steps, exactly as its Python predictor does them: the longest-side
//! resize (PIL's bilinear resampling, fixed-point, horizontal pass then vertical), normalisation
//! and zero padding to 1024, and the mask logits' way back to the original image (two bilinear
//! interpolations, `align_corners=False`, as `Sam.postprocess_masks`).

use super::decoder::{IMAGE_SIZE, LOW_RES};

/// ImageNet mean and standard deviation in 0..255 (`Sam.pixel_mean`, `pixel_std`).
const PIXEL_MEAN: [f32; 3] = [123.675, 116.28, 103.53];
const PIXEL_STD: [f32; 3] = [58.395, 57.12, 57.375];
/// PIL's fixed-point precision for 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// `ResizeLongestSide.get_preprocess_shape`: `(width, height)` with the longest side 1024.
pub fn input_size(width: u32, height: u32) -> (u32, u32) {
    let scale = IMAGE_SIZE as f64 / width.max(height).max(1) as f64;
    let w = (width as f64 * scale + 0.5) as u32;
    let h = (height as f64 * scale + 0.5) as u32;
    (w.max(1), h.max(1))
}

/// PIL's per-output-pixel window and fixed-point weights of the bilinear (triangle) filter.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| {
                    let d = ((x as f64 - center + 0.5) / filterscale).abs();
                    if d < 1.0 {
                        1.0 - d
                    } else {
                        0.0
                    }
                })
                .collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let f = v * (1u32 << PRECISION_BITS) as f64;
                    if f < 0.0 {
                        (f - 0.5) as i32
                    } else {
                        (f + 0.5) as i32
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `PIL.Image.resize((new_w, new_h), BILINEAR)` of an RGB buffer, bit-exact.
pub fn resize_pil_bilinear(src: &[u8], w: usize, h: usize, new_w: usize, new_h: usize) -> Vec<u8> {
    debug_assert_eq!(src.len(), w * h * 3);
    let half = 1i64 << (PRECISION_BITS - 1);
    let horizontal = if new_w != w {
        let cx = coefficients(w, new_w);
        let mut out = vec![0u8; new_w * h * 3];
        for y in 0..h {
            let row = &src[y * w * 3..(y + 1) * w * 3];
            for (xx, (xmin, k)) in cx.iter().enumerate() {
                for c in 0..3 {
                    let mut ss = half;
                    for (i, &kv) in k.iter().enumerate() {
                        ss += row[(xmin + i) * 3 + c] as i64 * kv as i64;
                    }
                    out[(y * new_w + xx) * 3 + c] = clip8(ss);
                }
            }
        }
        out
    } else {
        src.to_vec()
    };
    if new_h == h {
        return horizontal;
    }
    let cy = coefficients(h, new_h);
    let mut out = vec![0u8; new_w * new_h * 3];
    for (yy, (ymin, k)) in cy.iter().enumerate() {
        for x in 0..new_w * 3 {
            let mut ss = half;
            for (i, &kv) in k.iter().enumerate() {
                ss += horizontal[(ymin + i) * new_w * 3 + x] as i64 * kv as i64;
            }
            out[yy * new_w * 3 + x] = clip8(ss);
        }
    }
    out
}

/// The model input `[3, 1024, 1024]` (normalised, zero-padded right and bottom) of an RGB
/// buffer that already has the input size.
pub fn normalise_and_pad(rgb: &[u8], w: usize, h: usize) -> Vec<f32> {
    let n = IMAGE_SIZE;
    let mut out = vec![0f32; 3 * n * n];
    for y in 0..h.min(n) {
        for x in 0..w.min(n) {
            for c in 0..3 {
                let v = rgb[(y * w + x) * 3 + c] as f32;
                out[(c * n + y) * n + x] = (v - PIXEL_MEAN[c]) / PIXEL_STD[c];
            }
        }
    }
    out
}

/// Source index pairs and weights of a bilinear resize, PyTorch's `align_corners=False`.
fn taps(in_size: usize, out_size: usize) -> Vec<(usize, usize, f32)> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|o| {
            let src = (scale * (o as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src as usize).min(in_size - 1);
            let i1 = (i0 + 1).min(in_size - 1);
            (i0, i1, src - i0 as f32)
        })
        .collect()
}

/// Bilinear resize of a `[h, w]` plane to `[out_h, out_w]`.
fn bilinear(src: &[f32], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<f32> {
    let tx = taps(w, out_w);
    let ty = taps(h, out_h);
    let mut out = vec![0f32; out_w * out_h];
    for (oy, &(y0, y1, ly)) in ty.iter().enumerate() {
        let (r0, r1) = (&src[y0 * w..(y0 + 1) * w], &src[y1 * w..(y1 + 1) * w]);
        let dst = &mut out[oy * out_w..(oy + 1) * out_w];
        for (d, &(x0, x1, lx)) in dst.iter_mut().zip(&tx) {
            let top = (1.0 - lx) * r0[x0] + lx * r0[x1];
            let bottom = (1.0 - lx) * r1[x0] + lx * r1[x1];
            *d = (1.0 - ly) * top + ly * bottom;
        }
    }
    out
}

/// The logits of one low-resolution mask (`[256, 256]`) at the original image size:
/// upsampled to 1024, cropped to the unpadded input, resized to `orig`.
pub fn logits_at_original(low: &[f32], input: (usize, usize), orig: (usize, usize)) -> Vec<f32> {
    debug_assert_eq!(low.len(), LOW_RES * LOW_RES);
    let up = bilinear(low, LOW_RES, LOW_RES, IMAGE_SIZE, IMAGE_SIZE);
    let (iw, ih) = (input.0.min(IMAGE_SIZE), input.1.min(IMAGE_SIZE));
    let mut crop = Vec::with_capacity(iw * ih);
    for y in 0..ih {
        crop.extend_from_slice(&up[y * IMAGE_SIZE..y * IMAGE_SIZE + iw]);
    }
    if (iw, ih) == orig {
        return crop;
    }
    bilinear(&crop, iw, ih, orig.0, orig.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_rounds_like_upstream() {
        assert_eq!(input_size(600, 400), (1024, 683));
        assert_eq!(input_size(451, 300), (1024, 681));
        assert_eq!(input_size(1024, 768), (1024, 768));
        assert_eq!(input_size(100, 2000), (51, 1024));
    }

    #[test]
    fn resize_is_identity_at_the_same_size_and_keeps_constants() {
        let src: Vec<u8> = (0..5 * 4 * 3).map(|i| (i * 7 % 256) as u8).collect();
        assert_eq!(resize_pil_bilinear(&src, 5, 4, 5, 4), src);
        let flat = vec![77u8; 6 * 3 * 3];
        assert!(resize_pil_bilinear(&flat, 6, 3, 13, 7)
            .iter()
            .all(|&v| v == 77));
        assert!(resize_pil_bilinear(&flat, 6, 3, 2, 1)
            .iter()
            .all(|&v| v == 77));
    }

    #[test]
    fn bilinear_matches_pytorch_on_a_small_case() {
        // torch.nn.functional.interpolate(torch.tensor([[[[0.,1.],[2.,3.]]]]), (4, 4),
        //   mode="bilinear", align_corners=False)[0, 0, 0] == [0, 0.25, 0.75, 1]
        let out = bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 4, 4);
        assert_eq!(&out[..4], &[0.0, 0.25, 0.75, 1.0]);
        assert_eq!(&out[12..], &[2.0, 2.25, 2.75, 3.0]);
    }
}
