//! The pinhole camera on the ego vehicle and the road's curvature as seen from it.
//!
//! World coordinates: `x` metres to the right of the road's centre line, `y` metres up from the
//! ground, `s` metres along the road. The camera sits `HEIGHT_M` above the ground at the ego's
//! lateral position and looks along the road; `z` is a distance ahead of it. A gently curving
//! road is approximated by the parabola `x_shift(z) = k z^2 / 2` of constant curvature `k`.

use super::raster::Pt;

/// Height of the camera above the road, metres.
pub(crate) const HEIGHT_M: f32 = 1.45;
/// Nothing nearer than this (metres ahead) is drawn.
pub(crate) const Z_NEAR: f32 = 1.0;
/// Focal length as a share of the frame width (about 69 degrees horizontal field of view).
const FOCAL_PER_WIDTH: f32 = 0.73;
/// Row of the horizon as a share of the frame height (the camera looks slightly down).
const HORIZON_PER_HEIGHT: f32 = 0.44;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Camera {
    pub cx: f32,
    /// Row of the horizon (vanishing point), pixels.
    pub yh: f32,
    /// Focal length, pixels.
    pub f: f32,
    /// Road curvature at the ego, 1/metres (positive: the road bends right).
    pub k: f32,
    /// The ego's lateral position, metres.
    pub x_ego: f32,
}

impl Camera {
    pub fn new(width: u32, height: u32, k: f32, x_ego: f32) -> Self {
        let (w, h) = (width as f32, height as f32);
        Camera {
            cx: w * 0.5,
            yh: (h * HORIZON_PER_HEIGHT).round(),
            f: w * FOCAL_PER_WIDTH,
            k,
            x_ego,
        }
    }

    /// Lateral position relative to the camera axis of world lateral `x` at distance `z`.
    #[inline]
    pub fn rel_x(&self, x: f32, z: f32) -> f32 {
        x + 0.5 * self.k * z * z - self.x_ego
    }

    /// Screen point of world `(x, y)` at distance `z` (which must be positive).
    #[inline]
    pub fn project(&self, x: f32, y: f32, z: f32) -> Pt {
        let inv = self.f / z;
        [
            self.cx + self.rel_x(x, z) * inv,
            self.yh + (HEIGHT_M - y) * inv,
        ]
    }

    /// Pixels per metre at distance `z`.
    #[inline]
    pub fn scale(&self, z: f32) -> f32 {
        self.f / z
    }

    /// Distance of the ground seen at the centre of screen row `y`, `None` above the horizon.
    #[inline]
    pub fn ground_z(&self, y: usize) -> Option<f32> {
        let d = y as f32 + 0.5 - self.yh;
        (d > 0.0).then(|| self.f * HEIGHT_M / d)
    }

    /// Distance at which a horizontal plane `height` metres up (above the camera) is seen at row
    /// `y`, `None` below the horizon.
    #[inline]
    pub fn ceiling_z(&self, y: usize, height: f32) -> Option<f32> {
        let d = self.yh - (y as f32 + 0.5);
        (d > 0.0).then(|| self.f * (height - HEIGHT_M) / d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ground_rows_and_projection_agree() {
        let cam = Camera::new(1280, 720, 0.0, 1.75);
        for y in [330usize, 400, 500, 719] {
            let z = cam.ground_z(y).unwrap();
            let p = cam.project(1.75, 0.0, z);
            assert!((p[1] - (y as f32 + 0.5)).abs() < 1e-3);
            assert!((p[0] - 640.0).abs() < 1e-3);
        }
        assert!(cam.ground_z(10).is_none());
        // Farther is smaller and nearer the horizon.
        let near = cam.project(3.0, 0.0, 10.0);
        let far = cam.project(3.0, 0.0, 40.0);
        assert!(far[1] < near[1] && far[1] > cam.yh);
        assert!((far[0] - cam.cx) < (near[0] - cam.cx));
    }

    #[test]
    fn curvature_shifts_far_points_more() {
        let straight = Camera::new(640, 360, 0.0, 0.0);
        let bend = Camera::new(640, 360, 0.004, 0.0);
        let d10 = bend.project(0.0, 0.0, 10.0)[0] - straight.project(0.0, 0.0, 10.0)[0];
        let d80 = bend.project(0.0, 0.0, 80.0)[0] - straight.project(0.0, 0.0, 80.0)[0];
        assert!(d80 > d10 && d10 > 0.0);
    }
}
