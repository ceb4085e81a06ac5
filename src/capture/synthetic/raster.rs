//! Scanline rasterisation into an RGB frame and an instance-id buffer at once.
//!
//! Everything the generator draws is a polygon (or several, filled with the even-odd rule, so a
//! ring is two contours). A pixel is covered when its centre lies inside, which makes masks exact:
//! the id buffer holds, for every pixel, the instance that painted it last, and because objects
//! are painted far to near, that is the instance a camera would see there.

/// A point in screen pixels (x right, y down; pixel `(i, j)` covers `[i, i+1) x [j, j+1)`).
pub(crate) type Pt = [f32; 2];

const H: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Unit circle, 32 steps, counter-clockwise from +x (no trigonometry at draw time).
pub(crate) const CIRCLE32: [[f32; 2]; 32] = [
    [1.000000, 0.000000],
    [0.980785, 0.195090],
    [0.923880, 0.382683],
    [0.831470, 0.555570],
    [H, H],
    [0.555570, 0.831470],
    [0.382683, 0.923880],
    [0.195090, 0.980785],
    [0.000000, 1.000000],
    [-0.195090, 0.980785],
    [-0.382683, 0.923880],
    [-0.555570, 0.831470],
    [-H, H],
    [-0.831470, 0.555570],
    [-0.923880, 0.382683],
    [-0.980785, 0.195090],
    [-1.000000, 0.000000],
    [-0.980785, -0.195090],
    [-0.923880, -0.382683],
    [-0.831470, -0.555570],
    [-H, -H],
    [-0.555570, -0.831470],
    [-0.382683, -0.923880],
    [-0.195090, -0.980785],
    [0.000000, -1.000000],
    [0.195090, -0.980785],
    [0.382683, -0.923880],
    [0.555570, -0.831470],
    [H, -H],
    [0.831470, -0.555570],
    [0.923880, -0.382683],
    [0.980785, -0.195090],
];

/// A tileable 256x256 value-noise texture (mean about 128), computed once: asphalt grain,
/// foliage, brick, clouds and sensor noise all sample it.
pub(crate) struct Texture {
    data: Vec<u8>,
}

impl Texture {
    pub fn new() -> Self {
        // Octaves of smoothly interpolated lattice noise, periods 64..2 texels, plus white noise.
        let mut acc = vec![0f32; 65536];
        let octaves: [(u32, f32); 6] = [
            (64, 0.30),
            (32, 0.25),
            (16, 0.18),
            (8, 0.12),
            (4, 0.08),
            (2, 0.07),
        ];
        for (o, &(period, weight)) in octaves.iter().enumerate() {
            let cells = 256 / period;
            let lattice = |i: u32, j: u32| -> f32 {
                let h = super::rng::hash2(
                    0x5eed_0000 + o as u64,
                    ((j % cells) * cells + i % cells) as u64,
                );
                (h >> 40) as f32 / (1u64 << 24) as f32
            };
            for y in 0..256u32 {
                for x in 0..256u32 {
                    let (ci, cj) = (x / period, y / period);
                    let fx = (x % period) as f32 / period as f32;
                    let fy = (y % period) as f32 / period as f32;
                    let sx = fx * fx * (3.0 - 2.0 * fx);
                    let sy = fy * fy * (3.0 - 2.0 * fy);
                    let a = lattice(ci, cj) + (lattice(ci + 1, cj) - lattice(ci, cj)) * sx;
                    let b =
                        lattice(ci, cj + 1) + (lattice(ci + 1, cj + 1) - lattice(ci, cj + 1)) * sx;
                    acc[(y * 256 + x) as usize] += weight * (a + (b - a) * sy);
                }
            }
        }
        let mut white = super::rng::Rng::new(0x7e7_0001);
        for v in acc.iter_mut() {
            *v += 0.10 * white.f32();
        }
        let (lo, hi) = acc
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let data = acc
            .iter()
            .map(|&v| ((v - lo) / (hi - lo) * 255.0).round() as u8)
            .collect();
        Texture { data }
    }

    #[inline]
    pub fn at(&self, u: u32, v: u32) -> u8 {
        self.data[(((v & 255) << 8) | (u & 255)) as usize]
    }
}

/// How a filled area is coloured.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Paint {
    Solid([u8; 3]),
    /// `top` at screen row `y0`, `bottom` at `y1`, linear in between (glass, sky, bus flanks).
    VGrad {
        top: [u8; 3],
        bottom: [u8; 3],
        y0: f32,
        y1: f32,
    },
    /// `base` modulated by the noise texture in screen space: `amp` is the swing at full texture
    /// contrast, one texel covers `2^shift` pixels, `off` shifts the pattern per object.
    Tex {
        base: [u8; 3],
        amp: i32,
        shift: u32,
        off: u32,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Edge {
    y0: f32,
    y1: f32,
    x0: f32,
    dxdy: f32,
}

/// Reusable scratch space of the rasteriser.
#[derive(Default)]
pub(crate) struct Scratch {
    edges: Vec<Edge>,
    xs: Vec<f32>,
}

/// An RGB frame plus its id buffer, being painted.
pub(crate) struct Canvas<'a> {
    pub w: usize,
    pub h: usize,
    pub rgb: &'a mut [u8],
    pub ids: &'a mut [u16],
    pub tex: &'a Texture,
    /// Written into the id buffer with every pixel; `None` leaves it alone (background painted
    /// before any instance, where the buffer is still all zero).
    pub id: Option<u16>,
    /// Pixels touched since the last [`Canvas::take_bounds`]: x0, y0, x1, y1 (exclusive).
    bounds: [usize; 4],
    scratch: &'a mut Scratch,
}

impl<'a> Canvas<'a> {
    pub fn new(
        w: usize,
        h: usize,
        rgb: &'a mut [u8],
        ids: &'a mut [u16],
        tex: &'a Texture,
        scratch: &'a mut Scratch,
    ) -> Self {
        debug_assert_eq!(rgb.len(), w * h * 3);
        debug_assert_eq!(ids.len(), w * h);
        Canvas {
            w,
            h,
            rgb,
            ids,
            tex,
            id: None,
            bounds: [usize::MAX, usize::MAX, 0, 0],
            scratch,
        }
    }

    /// The rectangle of pixels painted since the last call (x0, y0, x1, y1), if any.
    pub fn take_bounds(&mut self) -> Option<[usize; 4]> {
        let b = self.bounds;
        self.bounds = [usize::MAX, usize::MAX, 0, 0];
        (b[0] < b[2] && b[1] < b[3]).then_some(b)
    }

    /// Paints pixels `x0..x1` of row `y` (already clipped to the frame).
    #[inline]
    pub fn span(&mut self, y: usize, x0: usize, x1: usize, paint: &Paint) {
        if x1 <= x0 {
            return;
        }
        let b = &mut self.bounds;
        b[0] = b[0].min(x0);
        b[1] = b[1].min(y);
        b[2] = b[2].max(x1);
        b[3] = b[3].max(y + 1);
        let row = y * self.w;
        if let Some(id) = self.id {
            self.ids[row + x0..row + x1].fill(id);
        }
        let px = &mut self.rgb[(row + x0) * 3..(row + x1) * 3];
        match *paint {
            Paint::Solid(c) => {
                for p in px.chunks_exact_mut(3) {
                    p.copy_from_slice(&c);
                }
            }
            Paint::VGrad {
                top,
                bottom,
                y0,
                y1,
            } => {
                let t = if y1 > y0 {
                    ((y as f32 + 0.5 - y0) / (y1 - y0)).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let c = lerp3(top, bottom, t);
                for p in px.chunks_exact_mut(3) {
                    p.copy_from_slice(&c);
                }
            }
            Paint::Tex {
                base,
                amp,
                shift,
                off,
            } => {
                let v = ((y as u32) >> shift).wrapping_add(off >> 8);
                if x1 - x0 >= 48 {
                    let mut lut = [[0u8; 3]; 64];
                    for (t, e) in lut.iter_mut().enumerate() {
                        let d = (((t as i32 * 4 + 2) - 128) * amp) >> 7;
                        *e = base.map(|b| (b as i32 + d).clamp(0, 255) as u8);
                    }
                    for (i, p) in px.chunks_exact_mut(3).enumerate() {
                        let u = (((x0 + i) as u32) >> shift).wrapping_add(off);
                        p.copy_from_slice(&lut[(self.tex.at(u, v) >> 2) as usize]);
                    }
                    return;
                }
                for (i, p) in px.chunks_exact_mut(3).enumerate() {
                    let u = (((x0 + i) as u32) >> shift).wrapping_add(off);
                    let d = ((self.tex.at(u, v) as i32 - 128) * amp) >> 7;
                    p[0] = (base[0] as i32 + d).clamp(0, 255) as u8;
                    p[1] = (base[1] as i32 + d).clamp(0, 255) as u8;
                    p[2] = (base[2] as i32 + d).clamp(0, 255) as u8;
                }
            }
        }
    }

    /// Fills one polygon.
    pub fn poly(&mut self, pts: &[Pt], paint: &Paint) {
        self.polys(&[pts], paint);
    }

    /// Fills several contours together with the even-odd rule (a ring is an outer and an inner
    /// contour). Non-finite coordinates make the call a no-op.
    pub fn polys(&mut self, contours: &[&[Pt]], paint: &Paint) {
        let mut edges = std::mem::take(&mut self.scratch.edges);
        let mut xs = std::mem::take(&mut self.scratch.xs);
        edges.clear();
        let (mut ymin, mut ymax) = (f32::MAX, f32::MIN);
        let mut finite = true;
        for c in contours {
            for i in 0..c.len() {
                let a = c[i];
                let b = c[(i + 1) % c.len()];
                if !(a[0].is_finite() && a[1].is_finite()) {
                    finite = false;
                }
                if a[1] == b[1] {
                    continue;
                }
                let (p, q) = if a[1] < b[1] { (a, b) } else { (b, a) };
                edges.push(Edge {
                    y0: p[1],
                    y1: q[1],
                    x0: p[0],
                    dxdy: (q[0] - p[0]) / (q[1] - p[1]),
                });
                ymin = ymin.min(p[1]);
                ymax = ymax.max(q[1]);
            }
        }
        if finite && !edges.is_empty() {
            let r0 = (ymin - 0.5).ceil().max(0.0) as usize;
            let r1 = ((ymax - 0.5).ceil().min(self.h as f32)).max(0.0) as usize;
            let wf = self.w as f32;
            for y in r0..r1 {
                let yc = y as f32 + 0.5;
                xs.clear();
                for e in &edges {
                    if yc >= e.y0 && yc < e.y1 {
                        xs.push(e.x0 + (yc - e.y0) * e.dxdy);
                    }
                }
                xs.sort_unstable_by(|a, b| a.total_cmp(b));
                for pair in xs.chunks_exact(2) {
                    let xa = (pair[0] - 0.5).ceil().clamp(0.0, wf) as usize;
                    let xb = (pair[1] - 0.5).ceil().clamp(0.0, wf) as usize;
                    self.span(y, xa, xb, paint);
                }
            }
        }
        self.scratch.edges = edges;
        self.scratch.xs = xs;
    }

    /// Fills the axis-aligned rectangle `[x0, x1) x [y0, y1)`.
    pub fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, paint: &Paint) {
        self.poly(&[[x0, y0], [x1, y0], [x1, y1], [x0, y1]], paint);
    }

    pub fn ellipse(&mut self, c: Pt, rx: f32, ry: f32, paint: &Paint) {
        let (pts, n) = ellipse(c, rx, ry);
        self.poly(&pts[..n], paint);
    }

    /// A thick segment from `a` (width `wa`) to `b` (width `wb`), at least a pixel wide so that
    /// thin parts far away do not break up into dots.
    pub fn line(&mut self, a: Pt, b: Pt, wa: f32, wb: f32, paint: &Paint) {
        self.poly(&line_quad(a, b, wa.max(1.0), wb.max(1.0)), paint);
    }
}

/// Points of an axis-aligned ellipse, fewer for small ones; returns the array and the count used.
pub(crate) fn ellipse(c: Pt, rx: f32, ry: f32) -> ([Pt; 32], usize) {
    let r = rx.abs().max(ry.abs());
    let step = if r < 4.0 {
        4
    } else if r < 24.0 {
        2
    } else {
        1
    };
    let mut out = [[0f32; 2]; 32];
    let mut n = 0;
    for k in (0..32).step_by(step) {
        out[n] = [c[0] + rx * CIRCLE32[k][0], c[1] + ry * CIRCLE32[k][1]];
        n += 1;
    }
    (out, n)
}

/// The quadrilateral of a thick segment.
pub(crate) fn line_quad(a: Pt, b: Pt, wa: f32, wb: f32) -> [Pt; 4] {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = (dx * dx + dy * dy).sqrt();
    let (nx, ny) = if len > 1e-6 {
        (-dy / len, dx / len)
    } else {
        (1.0, 0.0)
    };
    let (ha, hb) = (wa * 0.5, wb * 0.5);
    [
        [a[0] + nx * ha, a[1] + ny * ha],
        [b[0] + nx * hb, b[1] + ny * hb],
        [b[0] - nx * hb, b[1] - ny * hb],
        [a[0] - nx * ha, a[1] - ny * ha],
    ]
}

#[inline]
pub(crate) fn lerp3(a: [u8; 3], b: [u8; 3], t: f32) -> [u8; 3] {
    [
        (a[0] as f32 + (b[0] as f32 - a[0] as f32) * t) as u8,
        (a[1] as f32 + (b[1] as f32 - a[1] as f32) * t) as u8,
        (a[2] as f32 + (b[2] as f32 - a[2] as f32) * t) as u8,
    ]
}

/// `c` scaled by `k` (saturating).
#[inline]
pub(crate) fn scale3(c: [u8; 3], k: f32) -> [u8; 3] {
    [
        (c[0] as f32 * k).min(255.0) as u8,
        (c[1] as f32 * k).min(255.0) as u8,
        (c[2] as f32 * k).min(255.0) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas_run(w: usize, h: usize, f: impl FnOnce(&mut Canvas)) -> (Vec<u8>, Vec<u16>) {
        let tex = Texture::new();
        let mut rgb = vec![0u8; w * h * 3];
        let mut ids = vec![0u16; w * h];
        let mut scratch = Scratch::default();
        let mut c = Canvas::new(w, h, &mut rgb, &mut ids, &tex, &mut scratch);
        f(&mut c);
        (rgb, ids)
    }

    #[test]
    fn rectangle_covers_pixels_whose_centres_are_inside() {
        let (rgb, ids) = canvas_run(10, 8, |c| {
            c.id = Some(3);
            c.rect(1.5, 2.0, 4.6, 5.5, &Paint::Solid([9, 8, 7]));
            assert_eq!(c.take_bounds(), Some([1, 2, 5, 5]));
        });
        for y in 0..8 {
            for x in 0..10 {
                let inside = (1..5).contains(&x) && (2..5).contains(&y);
                assert_eq!(ids[y * 10 + x] == 3, inside, "({x},{y})");
                assert_eq!(rgb[(y * 10 + x) * 3] == 9, inside);
            }
        }
    }

    #[test]
    fn ring_leaves_its_hole_and_clips_to_the_frame() {
        let (_, ids) = canvas_run(40, 40, |c| {
            c.id = Some(1);
            let (o, n) = ellipse([20.0, 20.0], 30.0, 15.0);
            let (i, m) = ellipse([20.0, 20.0], 10.0, 5.0);
            c.polys(&[&o[..n], &i[..m]], &Paint::Solid([1, 1, 1]));
        });
        assert_eq!(ids[20 * 40 + 20], 0, "hole");
        assert_eq!(ids[20 * 40 + 35], 1, "ring");
        assert_eq!(ids[20 * 40], 1, "clipped at the left edge, still drawn");
        assert_eq!(ids[2 * 40 + 20], 0, "outside");
    }

    #[test]
    fn non_finite_polygons_draw_nothing() {
        let (_, ids) = canvas_run(8, 8, |c| {
            c.id = Some(1);
            c.poly(
                &[[0.0, 0.0], [f32::NAN, 4.0], [8.0, 8.0]],
                &Paint::Solid([1; 3]),
            );
            assert_eq!(c.take_bounds(), None);
        });
        assert!(ids.iter().all(|&v| v == 0));
    }

    #[test]
    fn texture_is_centred_and_varied() {
        let t = Texture::new();
        let mean: f64 = (0..65536u32)
            .map(|i| t.at(i & 255, i >> 8) as f64)
            .sum::<f64>()
            / 65536.0;
        assert!((100.0..156.0).contains(&mean), "{mean}");
        assert_ne!(t.at(0, 0), t.at(128, 77));
    }
}
