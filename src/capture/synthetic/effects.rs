//! What the camera adds on top of the scene: light halos, rain streaks, snowflakes, a cheap
//! zoom blur for forward motion, and sensor noise. None of these touch the id buffer: the ground
//! truth is the geometry, as a labeller would draw it.

use super::raster::Pt;
use super::rng::Rng;
use super::scenery::Glow;

const NOISE_LEN: usize = 1 << 16;

pub(crate) struct Effects {
    /// Gaussian-ish noise, standard deviation 64.
    noise: Vec<i16>,
    /// Halo falloff by squared normalised distance (0..=255 -> 255..0).
    falloff: [u16; 256],
    scratch: Vec<u8>,
    scaled: Vec<i8>,
    scaled_sigma: f32,
}

impl Effects {
    pub fn new() -> Self {
        let mut rng = Rng::new(0xC0FF_EE00);
        // Sum of four uniforms: close enough to a normal distribution for sensor noise.
        let noise = (0..NOISE_LEN + 8192 * 3)
            .map(|_| {
                let s: f32 = (0..4).map(|_| rng.f32()).sum::<f32>() - 2.0;
                (s * 64.0 / 0.577) as i16
            })
            .collect();
        let mut falloff = [0u16; 256];
        for (i, f) in falloff.iter_mut().enumerate() {
            let d = (i as f32 / 255.0).sqrt();
            *f = ((1.0 - d).powi(2) * 256.0) as u16;
        }
        Effects {
            noise,
            falloff,
            scratch: Vec::new(),
            scaled: Vec::new(),
            scaled_sigma: 0.0,
        }
    }

    /// Adds each halo (saturating).
    pub fn glows(&self, rgb: &mut [u8], w: usize, h: usize, glows: &[Glow]) {
        for g in glows {
            let r = g.radius.max(1.5);
            if !(g.at[0].is_finite() && g.at[1].is_finite()) {
                continue;
            }
            let x0 = (g.at[0] - r).floor().max(0.0) as usize;
            let x1 = ((g.at[0] + r).ceil().max(0.0) as usize).min(w);
            let y0 = (g.at[1] - r).floor().max(0.0) as usize;
            let y1 = ((g.at[1] + r).ceil().max(0.0) as usize).min(h);
            let inv = 255.0 / (r * r);
            let k = (g.strength.clamp(0.0, 1.0) * 256.0) as u32;
            for y in y0..y1 {
                let dy = y as f32 + 0.5 - g.at[1];
                for x in x0..x1 {
                    let dx = x as f32 + 0.5 - g.at[0];
                    let d2 = ((dx * dx + dy * dy) * inv) as usize;
                    if d2 > 255 {
                        continue;
                    }
                    let a = (self.falloff[d2] as u32 * k) >> 8;
                    let i = (y * w + x) * 3;
                    for c in 0..3 {
                        let add = (g.color[c] as u32 * a) >> 8;
                        rgb[i + c] = (rgb[i + c] as u32 + add).min(255) as u8;
                    }
                }
            }
        }
    }

    /// Falling rain: short slanted bright streaks.
    pub fn rain(&self, rgb: &mut [u8], w: usize, h: usize, rng: &mut Rng) {
        let n = (w * h) / 2600;
        let slant = rng.range(-0.25, 0.1);
        for _ in 0..n {
            let x = rng.range(0.0, w as f32);
            let y = rng.range(0.0, h as f32);
            let len = rng.range(0.015, 0.05) * h as f32;
            let a = rng.range(0.12, 0.3);
            let steps = len as usize;
            for k in 0..steps {
                let (px, py) = ((x + slant * k as f32) as usize, (y + k as f32) as usize);
                if px >= w || py >= h {
                    break;
                }
                let i = (py * w + px) * 3;
                for c in 0..3 {
                    let v = rgb[i + c] as f32;
                    rgb[i + c] = (v + (215.0 - v) * a) as u8;
                }
            }
        }
    }

    /// Falling snow: small soft white flakes.
    pub fn snowfall(&self, rgb: &mut [u8], w: usize, h: usize, rng: &mut Rng) {
        let n = (w * h) / 1800;
        let scale = (w as f32 / 640.0).max(1.0);
        for _ in 0..n {
            let c: Pt = [rng.range(0.0, w as f32), rng.range(0.0, h as f32)];
            let r = rng.range(0.6, 2.2) * scale;
            let x0 = (c[0] - r).max(0.0) as usize;
            let y0 = (c[1] - r).max(0.0) as usize;
            let x1 = ((c[0] + r) as usize).min(w);
            let y1 = ((c[1] + r) as usize).min(h);
            for y in y0..y1 {
                for x in x0..x1 {
                    let i = (y * w + x) * 3;
                    for k in 0..3 {
                        let v = rgb[i + k] as u32;
                        rgb[i + k] = ((v + 3 * 245) / 4) as u8;
                    }
                }
            }
        }
    }

    /// Forward motion blur: each pixel is smeared towards the vanishing point `(vx, vy)` over
    /// `amount` times its distance from it. Two passes of a two-tap average (offsets `amount`
    /// and half of it) make a four-tap box filter along the ray; the passes ping-pong between
    /// the frame and a scratch buffer, so nothing is copied.
    pub fn zoom_blur(&mut self, rgb: &mut [u8], w: usize, h: usize, vx: f32, vy: f32, amount: f32) {
        if amount <= 0.0 {
            return;
        }
        self.scratch.resize(rgb.len(), 0);
        zoom_pass(rgb, &mut self.scratch, w, h, vx, vy, amount * 2.0 / 3.0);
        zoom_pass(&self.scratch, rgb, w, h, vx, vy, amount / 3.0);
    }

    /// Adds sensor noise of standard deviation `sigma` (8-bit levels).
    pub fn noise(&mut self, rgb: &mut [u8], w: usize, sigma: f32, rng: &mut Rng) {
        if sigma <= 0.0 {
            return;
        }
        // The table scaled to this sigma, kept until sigma changes (once per drive).
        if self.scaled_sigma != sigma {
            let k = (sigma * 4.0) as i32; // table values are N(0,1) * 64
            self.scaled = self
                .noise
                .iter()
                .map(|&v| ((v as i32 * k) >> 8).clamp(-127, 127) as i8)
                .collect();
            self.scaled_sigma = sigma;
        }
        let row_len = w * 3;
        for row in rgb.chunks_exact_mut(row_len) {
            let off = rng.below(NOISE_LEN as u32) as usize;
            let n = &self.scaled[off..off + row_len.min(self.scaled.len() - off)];
            for (p, &v) in row.iter_mut().zip(n) {
                *p = p.saturating_add_signed(v);
            }
        }
    }
}

/// `dst = (src + src sampled towards the vanishing point by a share `a` of the distance) / 2`.
fn zoom_pass(src: &[u8], dst: &mut [u8], w: usize, h: usize, vx: f32, vy: f32, a: f32) {
    let k = 1.0 - a;
    let d = (k * 65536.0) as i64;
    let row_len = w * 3;
    for y in 0..h {
        let ys = ((vy + (y as f32 + 0.5 - vy) * k) as usize).min(h - 1);
        // 16.16 fixed point across the row.
        let mut xs = ((vx + (0.5 - vx) * k) * 65536.0) as i64;
        let here = &src[y * row_len..(y + 1) * row_len];
        let there = &src[ys * row_len..(ys + 1) * row_len];
        let out = &mut dst[y * row_len..(y + 1) * row_len];
        for (x, p) in out.chunks_exact_mut(3).enumerate() {
            let j = ((xs >> 16).clamp(0, w as i64 - 1) as usize) * 3;
            let i = x * 3;
            p[0] = ((here[i] as u16 + there[j] as u16 + 1) >> 1) as u8;
            p[1] = ((here[i + 1] as u16 + there[j + 1] as u16 + 1) >> 1) as u8;
            p[2] = ((here[i + 2] as u16 + there[j + 2] as u16 + 1) >> 1) as u8;
            xs += d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_has_the_requested_spread() {
        let mut fx = Effects::new();
        let (w, h) = (64usize, 64usize);
        let mut rgb = vec![128u8; w * h * 3];
        fx.noise(&mut rgb, w, 6.0, &mut Rng::new(1));
        let n = rgb.len() as f64;
        let mean = rgb.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = rgb.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 128.0).abs() < 1.0, "{mean}");
        assert!((var.sqrt() - 6.0).abs() < 1.0, "{}", var.sqrt());
    }

    #[test]
    fn glow_brightens_around_its_centre_only() {
        let fx = Effects::new();
        let (w, h) = (40usize, 40usize);
        let mut rgb = vec![10u8; w * h * 3];
        fx.glows(
            &mut rgb,
            w,
            h,
            &[Glow {
                at: [20.0, 20.0],
                radius: 8.0,
                color: [255, 255, 255],
                strength: 1.0,
            }],
        );
        assert!(rgb[(20 * w + 20) * 3] > 200);
        assert_eq!(rgb[(20 * w + 35) * 3], 10);
    }

    #[test]
    fn zoom_blur_keeps_a_flat_image_flat() {
        let mut fx = Effects::new();
        let (w, h) = (32usize, 24usize);
        let mut rgb = vec![77u8; w * h * 3];
        fx.zoom_blur(&mut rgb, w, h, 16.0, 10.0, 0.05);
        assert!(rgb.iter().all(|&v| v == 77));
    }
}
