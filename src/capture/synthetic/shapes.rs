//! How each class is drawn: a few polygons per part, placed in 3D and projected.
//!
//! Vehicles are boxes seen in perspective: the end facing the camera (rear of traffic going our
//! way, front of oncoming traffic) is drawn as a cross-section at its distance, and the side that
//! faces the camera axis as a profile in its own vertical plane, so its far end really is smaller.
//! People, cones and animals are flat cut-outs facing the camera (a side view when they cross, a
//! front or back view when they walk along the road); a cyclist riding along the road has the
//! bicycle in its own plane, so its wheels become ellipses.

use super::actors::{Actor, Behavior, Class};
use super::camera::{Camera, Z_NEAR};
use super::look::Look;
use super::raster::{lerp3, scale3, Canvas, Paint, Pt, CIRCLE32};
use super::scenery::Glow;

const GLASS_DAY_TOP: [u8; 3] = [150, 170, 190];
const GLASS_DAY_BOTTOM: [u8; 3] = [40, 50, 62];
const TYRE: [u8; 3] = [22, 22, 24];
const HUB: [u8; 3] = [150, 152, 156];
const DARK: [u8; 3] = [34, 34, 36];

/// Where an actor is nearest to the camera (its painting order key), metres ahead.
pub(crate) fn near_z(a: &Actor, ego_s: f32) -> f32 {
    match a.class {
        Class::Car | Class::Truck | Class::Bus => a.s - ego_s - a.length * 0.5,
        _ => a.s - ego_s,
    }
}

/// A vertical plane along the road at lateral `x`; `u` runs along it from `z0` in direction `dir`.
#[derive(Clone, Copy)]
struct Plane {
    x: f32,
    z0: f32,
    dir: f32,
}

impl Plane {
    fn z(&self, u: f32) -> f32 {
        self.z0 + self.dir * u
    }
}

/// A cut-out facing the camera at distance `z`.
#[derive(Clone, Copy)]
struct Board {
    base: Pt,
    sc: f32,
}

impl Board {
    fn new(cam: &Camera, x: f32, z: f32) -> Self {
        Board {
            base: cam.project(x, 0.0, z),
            sc: cam.scale(z),
        }
    }

    #[inline]
    fn at(&self, dx: f32, h: f32) -> Pt {
        [self.base[0] + dx * self.sc, self.base[1] - h * self.sc]
    }
}

pub(crate) struct Draw<'x, 'a> {
    pub c: &'x mut Canvas<'a>,
    pub cam: &'x Camera,
    pub look: &'x Look,
    pub glows: &'x mut Vec<Glow>,
    pub ego_s: f32,
    pts: Vec<Pt>,
    ring: Vec<Pt>,
}

impl<'x, 'a> Draw<'x, 'a> {
    pub fn new(
        c: &'x mut Canvas<'a>,
        cam: &'x Camera,
        look: &'x Look,
        glows: &'x mut Vec<Glow>,
        ego_s: f32,
    ) -> Self {
        Draw {
            c,
            cam,
            look,
            glows,
            ego_s,
            pts: Vec::with_capacity(64),
            ring: Vec::with_capacity(64),
        }
    }

    /// Draws one actor (its id must already be set on the canvas).
    pub fn actor(&mut self, a: &Actor) {
        match a.class {
            Class::Car | Class::Truck | Class::Bus => self.vehicle(a),
            Class::Pedestrian => self.pedestrian(a),
            Class::Cyclist => self.cyclist(a),
            Class::TrafficCone => self.cone(a),
            Class::Animal => self.animal(a),
        }
    }

    fn board_poly(&mut self, b: &Board, pts: &[[f32; 2]], paint: &Paint) {
        self.pts.clear();
        self.pts.extend(pts.iter().map(|p| b.at(p[0], p[1])));
        self.c.poly(&self.pts, paint);
    }

    fn board_rect(&mut self, b: &Board, x0: f32, h0: f32, x1: f32, h1: f32, paint: &Paint) {
        self.board_poly(b, &[[x0, h0], [x1, h0], [x1, h1], [x0, h1]], paint);
    }

    fn board_line(&mut self, b: &Board, p: [f32; 2], q: [f32; 2], wa: f32, wb: f32, paint: &Paint) {
        self.c.line(
            b.at(p[0], p[1]),
            b.at(q[0], q[1]),
            wa * b.sc,
            wb * b.sc,
            paint,
        );
    }

    fn board_ellipse(&mut self, b: &Board, c: [f32; 2], rx: f32, ry: f32, paint: &Paint) {
        self.c
            .ellipse(b.at(c[0], c[1]), rx * b.sc, ry * b.sc, paint);
    }

    /// A polygon given in `(u, h)` of a plane, clipped to `z >= Z_NEAR`.
    fn plane_poly(&mut self, plane: Plane, uh: &[[f32; 2]], paint: &Paint) {
        Self::clip_project(self.cam, plane, uh, &mut self.pts);
        if self.pts.len() >= 3 {
            self.c.poly(&self.pts, paint);
        }
    }

    fn clip_project(cam: &Camera, plane: Plane, uh: &[[f32; 2]], out: &mut Vec<Pt>) {
        out.clear();
        let n = uh.len();
        for i in 0..n {
            let (a, b) = (uh[i], uh[(i + 1) % n]);
            let (za, zb) = (plane.z(a[0]), plane.z(b[0]));
            if za >= Z_NEAR {
                out.push(cam.project(plane.x, a[1], za));
            }
            if (za >= Z_NEAR) != (zb >= Z_NEAR) {
                let t = (Z_NEAR - za) / (zb - za);
                let h = a[1] + t * (b[1] - a[1]);
                out.push(cam.project(plane.x, h, Z_NEAR));
            }
        }
    }

    /// A wheel (tyre ring and hub) in a plane.
    #[allow(clippy::too_many_arguments)]
    fn plane_wheel(
        &mut self,
        plane: Plane,
        u: f32,
        h: f32,
        r: f32,
        tyre: [u8; 3],
        hub: [u8; 3],
        ring: bool,
    ) {
        let mut outer = [[0f32; 2]; 16];
        let mut inner = [[0f32; 2]; 16];
        for k in 0..16 {
            let cs = CIRCLE32[k * 2];
            outer[k] = [u + r * cs[0], h + r * cs[1]];
            inner[k] = [u + r * 0.82 * cs[0], h + r * 0.82 * cs[1]];
        }
        if ring {
            Self::clip_project(self.cam, plane, &outer, &mut self.pts);
            Self::clip_project(self.cam, plane, &inner, &mut self.ring);
            if self.pts.len() >= 3 {
                if self.ring.len() >= 3 {
                    self.c.polys(&[&self.pts, &self.ring], &Paint::Solid(tyre));
                } else {
                    self.c.poly(&self.pts, &Paint::Solid(tyre));
                }
            }
            let hub_r = r * 0.12;
            let mut hub_pts = [[0f32; 2]; 8];
            for k in 0..8 {
                let cs = CIRCLE32[k * 4];
                hub_pts[k] = [u + hub_r * cs[0], h + hub_r * cs[1]];
            }
            self.plane_poly(plane, &hub_pts, &Paint::Solid(hub));
        } else {
            self.plane_poly(plane, &outer, &Paint::Solid(tyre));
            for p in inner.iter_mut() {
                p[0] = u + (p[0] - u) * 0.65;
                p[1] = h + (p[1] - h) * 0.65;
            }
            self.plane_poly(plane, &inner, &Paint::Solid(hub));
        }
    }

    fn glass(&self, z: f32, y0: f32, y1: f32) -> Paint {
        if self.look.lamps_on || self.look.ambient[0] < 0.4 {
            Paint::Solid(self.look.shade([30, 34, 40], z, 0.0))
        } else {
            Paint::VGrad {
                top: self.look.shade(GLASS_DAY_TOP, z, 0.0),
                bottom: self.look.shade(GLASS_DAY_BOTTOM, z, 0.0),
                y0,
                y1,
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn light(
        &mut self,
        b: &Board,
        x0: f32,
        h0: f32,
        x1: f32,
        h1: f32,
        color: [u8; 3],
        on: bool,
        z: f32,
        glow: f32,
    ) {
        let paint = if on {
            Paint::Solid(self.look.emit(color, z))
        } else {
            Paint::Solid(self.look.shade(scale3(color, 0.75), z, 0.0))
        };
        self.board_rect(b, x0, h0, x1, h1, &paint);
        if on && glow > 0.0 {
            self.glows.push(Glow {
                at: b.at((x0 + x1) * 0.5, (h0 + h1) * 0.5),
                radius: glow * b.sc,
                color,
                strength: 0.7,
            });
        }
    }

    // ----- vehicles ---------------------------------------------------------------------------

    fn vehicle(&mut self, a: &Actor) {
        let cam = *self.cam;
        let look = self.look.clone();
        let (dir, moving) = match a.behavior {
            Behavior::Drive { dir, .. } => (dir, true),
            _ => (a.face, false),
        };
        let l = a.length;
        let zn = a.s - self.ego_s - l * 0.5;
        if zn + l < Z_NEAR {
            return;
        }
        let zm = (zn.max(Z_NEAR) + zn + l) * 0.5;
        let rel = cam.rel_x(a.x, zm);
        let hw = a.width * 0.5;
        let side_x = if rel > hw {
            Some(a.x - hw)
        } else if rel < -hw {
            Some(a.x + hw)
        } else {
            None
        };
        let lights = look.vehicle_lights && moving;
        // u = 0 at the rear; the rear is nearest when the vehicle faces away from us.
        let plane = |x: f32| {
            if dir > 0.0 {
                Plane {
                    x,
                    z0: zn,
                    dir: 1.0,
                }
            } else {
                Plane {
                    x,
                    z0: zn + l,
                    dir: -1.0,
                }
            }
        };
        let shade = |c: [u8; 3]| look.shade(c, zm, rel);
        match a.class {
            Class::Car => {
                let m = &CARS[a.variant.min(3) as usize];
                let (ku, kh) = (l / m.l, a.height / m.h);
                let sc = |p: &[[f32; 2]]| -> Vec<[f32; 2]> {
                    p.iter().map(|q| [q[0] * ku, q[1] * kh]).collect()
                };
                let body = shade(a.colors[0]);
                if let Some(x) = side_x {
                    let pl = plane(x);
                    let shadeb = scale3(body, 0.88);
                    self.plane_poly(pl, &sc(m.body), &Paint::Solid(shadeb));
                    // Sill and bumpers a little darker.
                    self.plane_poly(
                        pl,
                        &sc(&[
                            [0.0, m.wheel_r],
                            [m.l, m.wheel_r],
                            [m.l, m.wheel_r + 0.12],
                            [0.0, m.wheel_r + 0.12],
                        ]),
                        &Paint::Solid(scale3(body, 0.7)),
                    );
                    for w in m.windows {
                        let pts = sc(w);
                        let g = self.glass(zm, 0.0, 0.0);
                        let g = match g {
                            Paint::VGrad { top, bottom, .. } => {
                                Paint::Solid(lerp3(top, bottom, 0.6))
                            }
                            p => p,
                        };
                        self.plane_poly(pl, &pts, &g);
                    }
                    for &u in &m.wheels {
                        self.plane_wheel(
                            pl,
                            u * ku,
                            m.wheel_r * kh,
                            m.wheel_r * kh,
                            shade(TYRE),
                            shade(HUB),
                            false,
                        );
                    }
                }
                if zn >= Z_NEAR {
                    let b = Board::new(&cam, a.x, zn);
                    let belt = m.belt * kh;
                    let top = a.height;
                    let w = hw;
                    let tyre = shade(TYRE);
                    self.board_rect(&b, -w + 0.05, 0.0, -w + 0.3, 0.34 * kh, &Paint::Solid(tyre));
                    self.board_rect(&b, w - 0.3, 0.0, w - 0.05, 0.34 * kh, &Paint::Solid(tyre));
                    let low = 0.28 * kh;
                    self.board_poly(
                        &b,
                        &[
                            [-w + 0.05, low],
                            [w - 0.05, low],
                            [w, low + 0.08],
                            [w, belt - 0.05],
                            [w - 0.08, belt],
                            [-w + 0.08, belt],
                            [-w, belt - 0.05],
                            [-w, low + 0.08],
                        ],
                        &Paint::Solid(body),
                    );
                    self.board_poly(
                        &b,
                        &[
                            [-w + 0.1, belt],
                            [w - 0.1, belt],
                            [w - 0.24, top],
                            [-w + 0.24, top],
                        ],
                        &Paint::Solid(scale3(body, 0.95)),
                    );
                    let gy = (b.at(0.0, top)[1], b.at(0.0, belt)[1]);
                    let g = self.glass(zn, gy.0, gy.1);
                    let inset = if dir > 0.0 { 0.06 } else { 0.03 };
                    self.board_poly(
                        &b,
                        &[
                            [-w + 0.17, belt + 0.04],
                            [w - 0.17, belt + 0.04],
                            [w - 0.27, top - inset],
                            [-w + 0.27, top - inset],
                        ],
                        &g,
                    );
                    self.board_rect(&b, -w, low, w, low + 0.12, &Paint::Solid(scale3(body, 0.6)));
                    if dir > 0.0 {
                        // Rear: tail lights, plate.
                        for s in [-1.0f32, 1.0] {
                            let (x0, x1) = if s < 0.0 {
                                (-w + 0.04, -w + 0.34)
                            } else {
                                (w - 0.34, w - 0.04)
                            };
                            self.light(
                                &b,
                                x0,
                                belt - 0.27,
                                x1,
                                belt - 0.1,
                                [230, 30, 26],
                                lights,
                                zn,
                                0.35,
                            );
                        }
                        self.board_rect(
                            &b,
                            -0.26,
                            0.44 * kh,
                            0.26,
                            0.56 * kh,
                            &Paint::Solid(shade([226, 226, 220])),
                        );
                    } else {
                        for s in [-1.0f32, 1.0] {
                            let (x0, x1) = if s < 0.0 {
                                (-w + 0.07, -w + 0.38)
                            } else {
                                (w - 0.38, w - 0.07)
                            };
                            self.light(
                                &b,
                                x0,
                                belt - 0.3,
                                x1,
                                belt - 0.17,
                                [250, 248, 230],
                                lights,
                                zn,
                                0.9,
                            );
                        }
                        self.board_rect(
                            &b,
                            -0.42,
                            0.46 * kh,
                            0.42,
                            belt - 0.2,
                            &Paint::Solid(shade(DARK)),
                        );
                        self.board_rect(
                            &b,
                            -0.24,
                            0.31 * kh,
                            0.24,
                            0.41 * kh,
                            &Paint::Solid(shade([226, 226, 220])),
                        );
                    }
                }
            }
            Class::Truck => {
                let h = a.height;
                let cab_l = 2.3;
                let cab_h = 2.95_f32.min(h - 0.3);
                let cab = shade(a.colors[0]);
                let boxc = shade(a.colors[1]);
                let chassis = shade(a.colors[2]);
                let tyre = shade(TYRE);
                if let Some(x) = side_x {
                    let pl = plane(x);
                    self.plane_poly(
                        pl,
                        &[[0.3, 0.55], [0.3, 1.0], [l - cab_l, 1.0], [l - cab_l, 0.55]],
                        &Paint::Solid(chassis),
                    );
                    self.plane_poly(
                        pl,
                        &[
                            [0.0, 1.0],
                            [0.0, h],
                            [l - cab_l - 0.15, h],
                            [l - cab_l - 0.15, 1.0],
                        ],
                        &Paint::Tex {
                            base: scale3(boxc, 0.92),
                            amp: 10,
                            shift: 2,
                            off: a.seed as u32,
                        },
                    );
                    self.plane_poly(
                        pl,
                        &[
                            [l - cab_l, 0.5],
                            [l - cab_l, cab_h],
                            [l - 0.7, cab_h + 0.05],
                            [l - 0.05, cab_h - 0.7],
                            [l, 1.3],
                            [l, 0.5],
                        ],
                        &Paint::Solid(scale3(cab, 0.9)),
                    );
                    let g = self.glass(zm, 0.0, 0.0);
                    let g = match g {
                        Paint::VGrad { top, bottom, .. } => Paint::Solid(lerp3(top, bottom, 0.55)),
                        p => p,
                    };
                    self.plane_poly(
                        pl,
                        &[
                            [l - 1.4, 1.85],
                            [l - 1.4, cab_h - 0.2],
                            [l - 0.75, cab_h - 0.17],
                            [l - 0.22, cab_h - 0.75],
                            [l - 0.22, 1.85],
                        ],
                        &g,
                    );
                    let mut axles = vec![1.1, l - 1.5];
                    if l > 8.0 {
                        axles.push(2.35);
                    }
                    for u in axles {
                        self.plane_wheel(pl, u, 0.5, 0.5, tyre, shade(HUB), false);
                    }
                }
                if zn >= Z_NEAR {
                    let w = hw;
                    if dir > 0.0 {
                        let b = Board::new(&cam, a.x, zn);
                        self.board_rect(&b, -w + 0.05, 0.0, -w + 0.6, 0.95, &Paint::Solid(tyre));
                        self.board_rect(&b, w - 0.6, 0.0, w - 0.05, 0.95, &Paint::Solid(tyre));
                        self.board_rect(
                            &b,
                            -w,
                            1.0,
                            w,
                            h,
                            &Paint::Tex {
                                base: scale3(boxc, 0.85),
                                amp: 8,
                                shift: 2,
                                off: a.seed as u32,
                            },
                        );
                        self.board_rect(
                            &b,
                            -0.025,
                            1.05,
                            0.025,
                            h - 0.05,
                            &Paint::Solid(scale3(boxc, 0.45)),
                        );
                        for s in [-0.25f32, 0.2] {
                            self.board_rect(&b, s, 2.0, s + 0.05, 2.4, &Paint::Solid(shade(DARK)));
                        }
                        self.board_rect(&b, -w + 0.1, 0.45, w - 0.1, 0.6, &Paint::Solid(chassis));
                        self.light(
                            &b,
                            -w + 0.1,
                            0.64,
                            -w + 0.4,
                            0.8,
                            [230, 30, 26],
                            lights,
                            zn,
                            0.35,
                        );
                        self.light(
                            &b,
                            w - 0.4,
                            0.64,
                            w - 0.1,
                            0.8,
                            [230, 30, 26],
                            lights,
                            zn,
                            0.35,
                        );
                    } else {
                        // The box shows above the cab, farther back.
                        let zb = zn + cab_l + 0.1;
                        let bb = Board::new(&cam, a.x, zb);
                        self.board_rect(
                            &bb,
                            -w,
                            cab_h - 0.1,
                            w,
                            h,
                            &Paint::Solid(scale3(boxc, 0.8)),
                        );
                        let b = Board::new(&cam, a.x, zn);
                        self.board_rect(&b, -w + 0.05, 0.0, -w + 0.45, 0.55, &Paint::Solid(tyre));
                        self.board_rect(&b, w - 0.45, 0.0, w - 0.05, 0.55, &Paint::Solid(tyre));
                        self.board_rect(&b, -w + 0.05, 0.5, w - 0.05, cab_h, &Paint::Solid(cab));
                        let gy = (b.at(0.0, cab_h - 0.15)[1], b.at(0.0, 1.85)[1]);
                        let g = self.glass(zn, gy.0, gy.1);
                        self.board_rect(&b, -w + 0.2, 1.85, w - 0.2, cab_h - 0.15, &g);
                        self.board_rect(&b, -0.6, 0.72, 0.6, 1.5, &Paint::Solid(shade(DARK)));
                        for k in 0..4 {
                            let hh = 0.85 + k as f32 * 0.17;
                            self.board_rect(
                                &b,
                                -0.55,
                                hh,
                                0.55,
                                hh + 0.05,
                                &Paint::Solid(shade([120, 122, 126])),
                            );
                        }
                        self.board_rect(&b, -w, 0.45, w, 0.7, &Paint::Solid(shade([70, 72, 76])));
                        self.light(
                            &b,
                            -w + 0.12,
                            0.85,
                            -w + 0.45,
                            1.05,
                            [250, 248, 230],
                            lights,
                            zn,
                            1.0,
                        );
                        self.light(
                            &b,
                            w - 0.45,
                            0.85,
                            w - 0.12,
                            1.05,
                            [250, 248, 230],
                            lights,
                            zn,
                            1.0,
                        );
                    }
                }
            }
            Class::Bus => {
                let h = a.height;
                let body = shade(a.colors[0]);
                let stripe = shade(a.colors[1]);
                let tyre = shade(TYRE);
                if let Some(x) = side_x {
                    let pl = plane(x);
                    self.plane_poly(
                        pl,
                        &[
                            [0.0, 0.35],
                            [0.0, h - 0.1],
                            [0.15, h],
                            [l - 0.35, h],
                            [l, h - 0.3],
                            [l, 0.35],
                        ],
                        &Paint::Solid(scale3(body, 0.9)),
                    );
                    self.plane_poly(
                        pl,
                        &[[0.0, 0.85], [0.0, 1.05], [l, 1.05], [l, 0.85]],
                        &Paint::Solid(scale3(stripe, 0.9)),
                    );
                    let g = self.glass(zm, 0.0, 0.0);
                    let g = match g {
                        Paint::VGrad { top, bottom, .. } => Paint::Solid(lerp3(top, bottom, 0.55)),
                        p => p,
                    };
                    let n = ((l - 3.3) / 1.45).floor().max(1.0) as usize;
                    for i in 0..n {
                        let u0 = 0.45 + i as f32 * 1.45;
                        self.plane_poly(
                            pl,
                            &[
                                [u0, 1.45],
                                [u0, h - 0.45],
                                [u0 + 1.28, h - 0.45],
                                [u0 + 1.28, 1.45],
                            ],
                            &g,
                        );
                    }
                    let door_side = x > a.x;
                    if door_side {
                        self.plane_poly(
                            pl,
                            &[
                                [l - 2.5, 0.4],
                                [l - 2.5, h - 0.45],
                                [l - 1.35, h - 0.45],
                                [l - 1.35, 0.4],
                            ],
                            &g,
                        );
                    }
                    self.plane_poly(
                        pl,
                        &[
                            [l - 1.2, 1.35],
                            [l - 1.2, h - 0.4],
                            [l - 0.3, h - 0.5],
                            [l - 0.08, 1.35],
                        ],
                        &g,
                    );
                    for u in [3.0, l - 2.6] {
                        self.plane_wheel(pl, u, 0.5, 0.5, tyre, shade(HUB), false);
                    }
                }
                if zn >= Z_NEAR {
                    let w = hw;
                    let b = Board::new(&cam, a.x, zn);
                    self.board_rect(&b, -w + 0.05, 0.0, -w + 0.45, 0.5, &Paint::Solid(tyre));
                    self.board_rect(&b, w - 0.45, 0.0, w - 0.05, 0.5, &Paint::Solid(tyre));
                    self.board_poly(
                        &b,
                        &[
                            [-w, 0.35],
                            [w, 0.35],
                            [w, h - 0.12],
                            [w - 0.12, h],
                            [-w + 0.12, h],
                            [-w, h - 0.12],
                        ],
                        &Paint::Solid(body),
                    );
                    self.board_rect(&b, -w, 0.85, w, 1.05, &Paint::Solid(stripe));
                    if dir > 0.0 {
                        let gy = (b.at(0.0, h - 0.25)[1], b.at(0.0, h - 1.0)[1]);
                        let g = self.glass(zn, gy.0, gy.1);
                        self.board_rect(&b, -w + 0.3, h - 1.0, w - 0.3, h - 0.25, &g);
                        self.board_rect(&b, -0.8, 0.55, 0.8, 1.2, &Paint::Solid(shade(DARK)));
                        self.light(
                            &b,
                            -w + 0.08,
                            0.6,
                            -w + 0.3,
                            1.3,
                            [230, 30, 26],
                            lights,
                            zn,
                            0.4,
                        );
                        self.light(
                            &b,
                            w - 0.3,
                            0.6,
                            w - 0.08,
                            1.3,
                            [230, 30, 26],
                            lights,
                            zn,
                            0.4,
                        );
                    } else {
                        let gy = (b.at(0.0, h - 0.4)[1], b.at(0.0, 1.2)[1]);
                        let g = self.glass(zn, gy.0, gy.1);
                        self.board_rect(&b, -w + 0.12, 1.2, w - 0.12, h - 0.4, &g);
                        self.board_rect(
                            &b,
                            -w + 0.3,
                            h - 0.36,
                            w - 0.3,
                            h - 0.08,
                            &Paint::Solid(shade([16, 16, 18])),
                        );
                        self.light(
                            &b,
                            -0.6,
                            h - 0.27,
                            0.6,
                            h - 0.17,
                            [255, 170, 40],
                            look.vehicle_lights || look.ambient[0] > 0.0,
                            zn,
                            0.0,
                        );
                        self.board_rect(&b, -w, 0.35, w, 0.55, &Paint::Solid(shade(DARK)));
                        self.light(
                            &b,
                            -w + 0.12,
                            0.6,
                            -w + 0.45,
                            0.78,
                            [250, 248, 230],
                            lights,
                            zn,
                            1.0,
                        );
                        self.light(
                            &b,
                            w - 0.45,
                            0.6,
                            w - 0.12,
                            0.78,
                            [250, 248, 230],
                            lights,
                            zn,
                            1.0,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    // ----- people -----------------------------------------------------------------------------

    fn pedestrian(&mut self, a: &Actor) {
        let z = a.s - self.ego_s;
        if z < Z_NEAR + 0.3 {
            return;
        }
        let cam = *self.cam;
        let look = self.look.clone();
        let b = Board::new(&cam, a.x, z);
        let rel = cam.rel_x(a.x, z);
        let shade = |c: [u8; 3]| look.shade(c, z, rel);
        let h = a.height;
        let (vx, vs) = a.velocity();
        let walking = vx.abs() > 0.05 || vs.abs() > 0.05;
        let swing = if walking { a.phase.sin() } else { 0.0 };
        let view = if vx.abs() > 0.05 {
            View::Side(vx.signum())
        } else if vs > 0.05 {
            View::Back
        } else if vs < -0.05 {
            View::Front
        } else {
            match a.seed % 3 {
                0 => View::Side(a.face),
                1 => View::Front,
                _ => View::Back,
            }
        };
        let top = shade(a.colors[0]);
        let legs = shade(a.colors[1]);
        let skin = shade(a.colors[2]);
        let hair = shade(a.colors[3]);
        let shoes = shade([30, 28, 28]);
        let coat = a.variant & 2 != 0;
        let backpack = a.variant & 4 != 0;
        let hip = 0.5 * h;
        let sh = 0.81 * h;
        match view {
            View::Side(d) => {
                let stride = 0.2 * h * swing;
                let feet = [d * stride, -d * stride];
                let arms = [-d * 0.13 * h * swing, d * 0.13 * h * swing];
                // Far limbs first, darker.
                for k in [1usize, 0] {
                    let dim = if k == 1 { 0.78 } else { 1.0 };
                    let foot = [feet[k], 0.04 * h];
                    let knee = [feet[k] * 0.5 + d * 0.025 * h, 0.27 * h];
                    if k == 0 {
                        self.torso_side(&b, d, h, hip, sh, top, coat, backpack, legs);
                    }
                    self.board_line(
                        &b,
                        [0.0, hip],
                        knee,
                        0.11 * h,
                        0.085 * h,
                        &Paint::Solid(scale3(legs, dim)),
                    );
                    self.board_line(
                        &b,
                        knee,
                        foot,
                        0.085 * h,
                        0.07 * h,
                        &Paint::Solid(scale3(legs, dim)),
                    );
                    self.board_poly(
                        &b,
                        &[
                            [foot[0] - d * 0.03 * h, 0.0],
                            [foot[0] + d * 0.09 * h, 0.0],
                            [foot[0] + d * 0.08 * h, 0.045 * h],
                            [foot[0] - d * 0.03 * h, 0.05 * h],
                        ],
                        &Paint::Solid(shoes),
                    );
                    let elbow = [arms[k] * 0.5 + d * 0.01 * h, 0.65 * h];
                    let hand = [arms[k], 0.47 * h];
                    self.board_line(
                        &b,
                        [0.0, sh - 0.02 * h],
                        elbow,
                        0.07 * h,
                        0.06 * h,
                        &Paint::Solid(scale3(top, dim * 0.95)),
                    );
                    self.board_line(
                        &b,
                        elbow,
                        hand,
                        0.06 * h,
                        0.05 * h,
                        &Paint::Solid(scale3(top, dim * 0.95)),
                    );
                    self.board_ellipse(
                        &b,
                        hand,
                        0.028 * h,
                        0.03 * h,
                        &Paint::Solid(scale3(skin, dim)),
                    );
                }
                self.board_rect(&b, -0.025 * h, sh, 0.025 * h, 0.87 * h, &Paint::Solid(skin));
                self.board_ellipse(
                    &b,
                    [d * 0.015 * h, 0.925 * h],
                    0.056 * h,
                    0.067 * h,
                    &Paint::Solid(skin),
                );
                self.board_ellipse(
                    &b,
                    [-d * 0.012 * h, 0.948 * h],
                    0.055 * h,
                    0.048 * h,
                    &Paint::Solid(hair),
                );
            }
            View::Front | View::Back => {
                let lift = [swing.max(0.0) * 0.05 * h, (-swing).max(0.0) * 0.05 * h];
                for (k, s) in [-1.0f32, 1.0].into_iter().enumerate() {
                    let x0 = s * 0.105 * h;
                    let x1 = s * 0.012 * h;
                    self.board_poly(
                        &b,
                        &[
                            [x0, hip],
                            [x1, hip],
                            [s * 0.025 * h, lift[k] + 0.04 * h],
                            [s * 0.085 * h, lift[k] + 0.04 * h],
                        ],
                        &Paint::Solid(legs),
                    );
                    self.board_rect(
                        &b,
                        s * 0.092 * h,
                        lift[k],
                        s * 0.02 * h,
                        lift[k] + 0.045 * h,
                        &Paint::Solid(shoes),
                    );
                }
                let bottom = if coat { 0.3 * h } else { 0.47 * h };
                self.board_poly(
                    &b,
                    &[
                        [-0.125 * h, bottom],
                        [0.125 * h, bottom],
                        [0.15 * h, sh - 0.02 * h],
                        [0.11 * h, sh + 0.015 * h],
                        [-0.11 * h, sh + 0.015 * h],
                        [-0.15 * h, sh - 0.02 * h],
                    ],
                    &Paint::Solid(top),
                );
                for (k, s) in [-1.0f32, 1.0].into_iter().enumerate() {
                    let hand_h = 0.47 * h + lift[1 - k] * 0.6;
                    self.board_line(
                        &b,
                        [s * 0.145 * h, sh - 0.03 * h],
                        [s * 0.165 * h, hand_h + 0.03 * h],
                        0.065 * h,
                        0.055 * h,
                        &Paint::Solid(scale3(top, 0.9)),
                    );
                    self.board_ellipse(
                        &b,
                        [s * 0.166 * h, hand_h],
                        0.028 * h,
                        0.03 * h,
                        &Paint::Solid(skin),
                    );
                }
                if backpack && view == View::Back {
                    self.board_rect(
                        &b,
                        -0.1 * h,
                        0.56 * h,
                        0.1 * h,
                        0.79 * h,
                        &Paint::Solid(shade([60, 64, 80])),
                    );
                }
                self.board_rect(&b, -0.025 * h, sh, 0.025 * h, 0.87 * h, &Paint::Solid(skin));
                if view == View::Front {
                    self.board_ellipse(
                        &b,
                        [0.0, 0.915 * h],
                        0.06 * h,
                        0.07 * h,
                        &Paint::Solid(skin),
                    );
                    self.board_ellipse(
                        &b,
                        [0.0, 0.955 * h],
                        0.062 * h,
                        0.042 * h,
                        &Paint::Solid(hair),
                    );
                } else {
                    self.board_ellipse(
                        &b,
                        [0.0, 0.915 * h],
                        0.06 * h,
                        0.07 * h,
                        &Paint::Solid(hair),
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn torso_side(
        &mut self,
        b: &Board,
        d: f32,
        h: f32,
        hip: f32,
        sh: f32,
        top: [u8; 3],
        coat: bool,
        backpack: bool,
        legs: [u8; 3],
    ) {
        let _ = legs;
        if backpack {
            self.board_rect(
                b,
                -d * 0.16 * h,
                0.56 * h,
                -d * 0.07 * h,
                0.79 * h,
                &Paint::Solid(scale3(top, 0.5)),
            );
        }
        let bottom = if coat { 0.3 * h } else { hip - 0.03 * h };
        self.board_poly(
            b,
            &[
                [-0.085 * h, bottom],
                [0.085 * h, bottom],
                [0.075 * h + d * 0.02 * h, sh],
                [-0.07 * h + d * 0.02 * h, sh + 0.01 * h],
            ],
            &Paint::Solid(top),
        );
    }

    fn cyclist(&mut self, a: &Actor) {
        let z = a.s - self.ego_s;
        if z < Z_NEAR + 1.0 {
            return;
        }
        let cam = *self.cam;
        let look = self.look.clone();
        let rel = cam.rel_x(a.x, z);
        let shade = |c: [u8; 3]| look.shade(c, z, rel);
        let frame = shade(a.colors[0]);
        let top = shade(a.colors[1]);
        let legs = shade(a.colors[2]);
        let helmet = shade(a.colors[3]);
        let skin = shade([214, 170, 140]);
        let tyre = shade(TYRE);
        let (cr, sn) = (a.phase.cos(), a.phase.sin());
        let along = matches!(a.behavior, Behavior::Drive { .. });
        if !along {
            // Side view, crossing.
            let b = Board::new(&cam, a.x, z);
            let d = a.face;
            let wr = 0.34;
            let (rw, fw) = ([-0.52 * d, wr], [0.52 * d, wr]);
            for w in [rw, fw] {
                let (o, n) = super::raster::ellipse(b.at(w[0], w[1]), wr * b.sc, wr * b.sc);
                let (i, m) =
                    super::raster::ellipse(b.at(w[0], w[1]), wr * 0.84 * b.sc, wr * 0.84 * b.sc);
                self.c.polys(&[&o[..n], &i[..m]], &Paint::Solid(tyre));
            }
            let bb = [-0.02 * d, 0.3];
            let seat = [-0.22 * d, 0.88];
            let head = [0.36 * d, 0.86];
            let bars = [0.4 * d, 1.0];
            let t = 0.045;
            let p = Paint::Solid(frame);
            for (u, v) in [
                (rw, bb),
                (bb, seat),
                (seat, rw),
                (seat, head),
                (bb, head),
                (head, fw),
                (head, bars),
            ] {
                self.board_line(&b, u, v, t, t, &p);
            }
            self.board_rect(
                &b,
                seat[0] - 0.12,
                seat[1],
                seat[0] + 0.1,
                seat[1] + 0.05,
                &Paint::Solid(shade(DARK)),
            );
            let hip = [seat[0], seat[1] + 0.08];
            let shoulder = [hip[0] + 0.3 * d, hip[1] + 0.5];
            let pedals = [
                [bb[0] + 0.17 * cr * d, bb[1] + 0.17 * sn],
                [bb[0] - 0.17 * cr * d, bb[1] - 0.17 * sn],
            ];
            for (k, pd) in pedals.iter().enumerate().rev() {
                let dim = if k == 1 { 0.8 } else { 1.0 };
                let knee = knee(hip, *pd, 0.46, d);
                self.board_line(&b, hip, knee, 0.13, 0.1, &Paint::Solid(scale3(legs, dim)));
                self.board_line(&b, knee, *pd, 0.1, 0.08, &Paint::Solid(scale3(legs, dim)));
                if k == 1 {
                    self.board_line(&b, hip, shoulder, 0.24, 0.26, &Paint::Solid(top));
                }
            }
            self.board_line(
                &b,
                shoulder,
                bars,
                0.08,
                0.06,
                &Paint::Solid(scale3(top, 0.9)),
            );
            let hc = [shoulder[0] + 0.1 * d, shoulder[1] + 0.19];
            self.board_ellipse(&b, hc, 0.1, 0.11, &Paint::Solid(skin));
            self.board_poly(
                &b,
                &[
                    [hc[0] - 0.13 * d, hc[1] + 0.01],
                    [hc[0] + 0.12 * d, hc[1] + 0.02],
                    [hc[0] + 0.06 * d, hc[1] + 0.12],
                    [hc[0] - 0.08 * d, hc[1] + 0.12],
                ],
                &Paint::Solid(helmet),
            );
        } else {
            // Riding along the road: the bicycle in its own plane, the rider seen from behind
            // (or from the front when oncoming).
            let dir = if let Behavior::Drive { dir, .. } = a.behavior {
                dir
            } else {
                1.0
            };
            let pl = Plane { x: a.x, z0: z, dir };
            let wr = 0.34;
            let (far_u, near_u) = if dir > 0.0 {
                (0.52, -0.52)
            } else {
                (-0.52, 0.52)
            };
            self.plane_wheel(pl, far_u, wr, wr, tyre, shade(HUB), true);
            let p = Paint::Solid(frame);
            let bb = [-0.02, 0.3];
            let seat = [-0.22, 0.88];
            let head = [0.36, 0.86];
            let t = 0.05 * cam.scale(z);
            for (u, v) in [
                ([-0.52, wr], bb),
                (bb, seat),
                (seat, head),
                (bb, head),
                (head, [0.52, wr]),
            ] {
                let pu = cam.project(a.x, u[1], pl.z(u[0]));
                let pv = cam.project(a.x, v[1], pl.z(v[0]));
                self.c.line(pu, pv, t, t, &p);
            }
            let zr = pl.z(-0.15);
            let b = Board::new(&cam, a.x, zr);
            let front_view = dir < 0.0;
            for (k, s) in [-1.0f32, 1.0].into_iter().enumerate() {
                let ph = if k == 0 { sn } else { -sn };
                let pedal = [s * 0.12, 0.3 + 0.17 * ph];
                let knee = [s * 0.15, 0.62 + 0.12 * ph];
                self.board_line(&b, [s * 0.09, 0.95], knee, 0.13, 0.1, &Paint::Solid(legs));
                self.board_line(&b, knee, pedal, 0.1, 0.08, &Paint::Solid(legs));
            }
            self.board_poly(
                &b,
                &[[-0.17, 0.92], [0.17, 0.92], [0.2, 1.45], [-0.2, 1.45]],
                &Paint::Solid(top),
            );
            for s in [-1.0f32, 1.0] {
                self.board_line(
                    &b,
                    [s * 0.19, 1.42],
                    [s * 0.27, 1.05],
                    0.08,
                    0.06,
                    &Paint::Solid(scale3(top, 0.88)),
                );
            }
            let hc = [0.0, 1.6];
            self.board_ellipse(
                &b,
                hc,
                0.1,
                0.115,
                &Paint::Solid(if front_view {
                    skin
                } else {
                    shade([60, 44, 34])
                }),
            );
            self.board_poly(
                &b,
                &[[-0.13, 1.6], [0.13, 1.6], [0.09, 1.74], [-0.09, 1.74]],
                &Paint::Solid(helmet),
            );
            self.plane_wheel(pl, near_u, wr, wr, tyre, shade(HUB), true);
            // Rear reflector / front lamp.
            let lamp_u = if dir > 0.0 { -0.62 } else { 0.45 };
            let lp = cam.project(a.x, if dir > 0.0 { 0.75 } else { 0.95 }, pl.z(lamp_u));
            let r = 0.035 * cam.scale(pl.z(lamp_u));
            let col = if dir > 0.0 {
                [220, 30, 30]
            } else {
                [250, 250, 230]
            };
            let paint = if look.vehicle_lights {
                Paint::Solid(look.emit(col, z))
            } else {
                Paint::Solid(shade(col))
            };
            self.c.ellipse(lp, r.max(0.5), r.max(0.5), &paint);
        }
    }

    fn cone(&mut self, a: &Actor) {
        let z = a.s - self.ego_s;
        if z < Z_NEAR + 0.3 {
            return;
        }
        let cam = *self.cam;
        let b = Board::new(&cam, a.x, z);
        let rel = cam.rel_x(a.x, z);
        let look = self.look;
        let orange = look.shade(a.colors[0], z, rel);
        let white = look.shade(a.colors[1], z, rel);
        let black = look.shade(a.colors[2], z, rel);
        let h = a.height;
        if a.variant == 1 {
            self.board_rect(&b, -0.18, 0.0, 0.18, 0.05, &Paint::Solid(black));
            self.board_rect(&b, -0.055, 0.05, 0.055, h, &Paint::Solid(orange));
            self.board_rect(&b, 0.0, 0.05, 0.055, h, &Paint::Solid(scale3(orange, 0.82)));
            for k in [0.55, 0.78] {
                self.board_rect(&b, -0.055, h * k, 0.055, h * k + 0.09, &Paint::Solid(white));
            }
            self.board_ellipse(&b, [0.0, h], 0.055, 0.02, &Paint::Solid(orange));
            return;
        }
        let k = h / 0.7;
        let (bw, tw) = (0.15 * k, 0.025 * k);
        let width_at = |hh: f32| bw - (bw - tw) * (hh / h);
        self.board_rect(&b, -0.21 * k, 0.0, 0.21 * k, 0.04 * k, &Paint::Solid(black));
        let base_h = 0.04 * k;
        self.board_poly(
            &b,
            &[[-bw, base_h], [0.0, base_h], [0.0, h], [-tw, h]],
            &Paint::Solid(orange),
        );
        self.board_poly(
            &b,
            &[[0.0, base_h], [bw, base_h], [tw, h], [0.0, h]],
            &Paint::Solid(scale3(orange, 0.82)),
        );
        for (h0, h1) in [(0.4, 0.53), (0.64, 0.74)] {
            let (a0, a1) = (h * h0, h * h1);
            let (w0, w1) = (width_at(a0), width_at(a1));
            self.board_poly(
                &b,
                &[[-w0, a0], [w0, a0], [w1, a1], [-w1, a1]],
                &Paint::Solid(white),
            );
        }
    }

    fn animal(&mut self, a: &Actor) {
        let z = a.s - self.ego_s;
        if z < Z_NEAR + 0.5 {
            return;
        }
        let cam = *self.cam;
        let look = self.look.clone();
        let b = Board::new(&cam, a.x, z);
        let rel = cam.rel_x(a.x, z);
        let shade = |c: [u8; 3]| look.shade(c, z, rel);
        let coat = shade(a.colors[0]);
        let belly = shade(a.colors[1]);
        let dark = shade(a.colors[2]);
        let d = a.face;
        let (l, h) = (a.length, a.height);
        let (vx, _) = a.velocity();
        let walk = if vx.abs() > 0.05 { 1.0 } else { 0.0 };
        // Proportions per species: body centre height, body radii, leg top, neck and head.
        let (body_h, rx, ry, head_h, head_x, neck_w) = match a.variant {
            0 => (0.6 * h, 0.4 * l, 0.15 * h, 0.93 * h, 0.5 * l, 0.11 * h),
            1 => (0.66 * h, 0.4 * l, 0.16 * h, 0.8 * h, 0.52 * l, 0.16 * h),
            _ => (0.55 * h, 0.45 * l, 0.3 * h, 0.55 * h, 0.46 * l, 0.3 * h),
        };
        let leg_top = body_h - ry * 0.3;
        let legs_x = [0.3 * l, 0.22 * l, -0.3 * l, -0.22 * l];
        use std::f32::consts::{FRAC_PI_2, PI};
        let phases = [0.0f32, PI, FRAC_PI_2, PI + FRAC_PI_2];
        // Far legs (darker), body, near legs.
        for pass in 0..2 {
            for k in 0..4 {
                if (k % 2 == 1) != (pass == 0) {
                    continue;
                }
                let swing = walk * (a.phase + phases[k]).sin() * 0.12 * h;
                let top = [d * legs_x[k], leg_top];
                let foot = [d * (legs_x[k] + swing * 0.6), 0.0];
                let col = if pass == 0 { scale3(coat, 0.7) } else { coat };
                let w0 = if a.variant == 2 { 0.09 * h } else { 0.055 * h };
                if k >= 2 && a.variant != 2 {
                    let hock = [d * (legs_x[k] - 0.06 * l + swing * 0.3), 0.3 * h];
                    self.board_line(&b, top, hock, w0 * 1.5, w0, &Paint::Solid(col));
                    self.board_line(&b, hock, foot, w0, w0 * 0.8, &Paint::Solid(col));
                } else {
                    self.board_line(&b, top, foot, w0 * 1.2, w0 * 0.8, &Paint::Solid(col));
                }
                self.board_rect(
                    &b,
                    foot[0] - w0 * 0.5,
                    0.0,
                    foot[0] + w0 * 0.5,
                    0.03 * h,
                    &Paint::Solid(dark),
                );
            }
            if pass == 0 {
                // Tail, body, belly, neck, head.
                self.board_ellipse(
                    &b,
                    [-d * rx * 1.02, body_h + ry * 0.4],
                    0.05 * l,
                    0.07 * h,
                    &Paint::Solid(if a.variant == 0 { belly } else { coat }),
                );
                self.board_ellipse(
                    &b,
                    [0.0, body_h],
                    rx,
                    ry,
                    &Paint::Tex {
                        base: coat,
                        amp: 18,
                        shift: 1,
                        off: a.seed as u32,
                    },
                );
                if a.variant == 1 {
                    self.board_ellipse(
                        &b,
                        [d * 0.22 * l, body_h + ry * 0.8],
                        0.16 * l,
                        0.1 * h,
                        &Paint::Solid(coat),
                    );
                }
                self.board_ellipse(
                    &b,
                    [0.0, body_h - ry * 0.55],
                    rx * 0.7,
                    ry * 0.4,
                    &Paint::Solid(belly),
                );
                let nb = [d * rx * 0.7, body_h + ry * 0.3];
                let hb = [d * head_x, head_h];
                if a.variant != 2 {
                    self.board_line(&b, nb, hb, neck_w * 1.6, neck_w, &Paint::Solid(coat));
                }
                let hl = 0.2 * l;
                let hh = if a.variant == 2 { 0.22 * h } else { 0.11 * h };
                let droop = if a.variant == 1 { -0.08 * h } else { -0.04 * h };
                self.board_poly(
                    &b,
                    &[
                        [hb[0] - d * 0.05 * l, hb[1] + hh * 0.6],
                        [hb[0] + d * 0.05 * l, hb[1] + hh * 0.7],
                        [hb[0] + d * hl, hb[1] + droop + hh * 0.2],
                        [hb[0] + d * hl, hb[1] + droop - hh * 0.25],
                        [hb[0] - d * 0.03 * l, hb[1] - hh * 0.5],
                    ],
                    &Paint::Solid(coat),
                );
                self.board_ellipse(
                    &b,
                    [hb[0] + d * hl, hb[1] + droop],
                    0.025 * l,
                    0.03 * h,
                    &Paint::Solid(dark),
                );
                self.board_poly(
                    &b,
                    &[
                        [hb[0] - d * 0.01 * l, hb[1] + hh * 0.5],
                        [hb[0] - d * 0.06 * l, hb[1] + hh * 0.5 + 0.1 * h.min(1.6)],
                        [hb[0] + d * 0.02 * l, hb[1] + hh * 0.6],
                    ],
                    &Paint::Solid(coat),
                );
                if a.variant == 0 && a.seed % 2 == 0 {
                    let ant = shade([160, 140, 110]);
                    let base = [hb[0], hb[1] + hh * 0.6];
                    let tip = [base[0] - d * 0.06 * l, base[1] + 0.25 * h];
                    self.board_line(&b, base, tip, 0.025, 0.018, &Paint::Solid(ant));
                    self.board_line(
                        &b,
                        [base[0] - d * 0.02 * l, base[1] + 0.1 * h],
                        [base[0] + d * 0.07 * l, base[1] + 0.19 * h],
                        0.02,
                        0.015,
                        &Paint::Solid(ant),
                    );
                    self.board_line(
                        &b,
                        [tip[0] + d * 0.01 * l, tip[1] - 0.06 * h],
                        [tip[0] - d * 0.08 * l, tip[1] + 0.04 * h],
                        0.02,
                        0.015,
                        &Paint::Solid(ant),
                    );
                }
                if a.variant == 1 {
                    let ant = shade([170, 150, 120]);
                    let base = [hb[0] - d * 0.02 * l, hb[1] + hh * 0.8];
                    self.board_poly(
                        &b,
                        &[
                            base,
                            [base[0] - d * 0.16 * l, base[1] + 0.12 * h],
                            [base[0] - d * 0.1 * l, base[1] + 0.2 * h],
                            [base[0] + d * 0.02 * l, base[1] + 0.08 * h],
                        ],
                        &Paint::Solid(ant),
                    );
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum View {
    Side(f32),
    Front,
    Back,
}

/// The knee of a two-segment leg of segment length `seg` from `hip` to `foot`, bending towards
/// `d` (+1: screen right).
fn knee(hip: [f32; 2], foot: [f32; 2], seg: f32, d: f32) -> [f32; 2] {
    let mid = [(hip[0] + foot[0]) * 0.5, (hip[1] + foot[1]) * 0.5];
    let (dx, dy) = (foot[0] - hip[0], foot[1] - hip[1]);
    let len = (dx * dx + dy * dy).sqrt().max(1e-4);
    let bend = (seg * seg - len * len * 0.25).max(0.0).sqrt();
    // Perpendicular pointing forward (towards d).
    let (mut nx, mut ny) = (-dy / len, dx / len);
    if nx * d < 0.0 {
        nx = -nx;
        ny = -ny;
    }
    [mid[0] + nx * bend, mid[1] + ny * bend]
}

struct CarModel {
    l: f32,
    h: f32,
    belt: f32,
    wheel_r: f32,
    body: &'static [[f32; 2]],
    windows: &'static [&'static [[f32; 2]]],
    wheels: [f32; 2],
}

/// Side profiles `(u from the rear, height)`, metres, of the base model of each car variant.
const CARS: [CarModel; 4] = [
    CarModel {
        l: 4.6,
        h: 1.45,
        belt: 0.98,
        wheel_r: 0.33,
        body: &[
            [0.0, 0.3],
            [0.0, 0.62],
            [0.08, 0.92],
            [0.95, 0.98],
            [1.5, 1.4],
            [2.95, 1.45],
            [3.45, 1.0],
            [4.45, 0.86],
            [4.6, 0.62],
            [4.58, 0.3],
        ],
        windows: &[
            &[[1.08, 1.0], [1.58, 1.34], [2.18, 1.37], [2.18, 1.0]],
            &[[2.3, 1.0], [2.3, 1.37], [2.9, 1.37], [3.3, 1.0]],
        ],
        wheels: [0.95, 3.7],
    },
    CarModel {
        l: 4.0,
        h: 1.48,
        belt: 1.0,
        wheel_r: 0.32,
        body: &[
            [0.0, 0.3],
            [0.0, 0.95],
            [0.12, 1.1],
            [0.4, 1.44],
            [2.35, 1.48],
            [2.9, 1.0],
            [3.85, 0.86],
            [4.0, 0.6],
            [3.98, 0.3],
        ],
        windows: &[
            &[[0.3, 1.02], [0.52, 1.38], [1.45, 1.41], [1.45, 1.02]],
            &[[1.55, 1.02], [1.55, 1.41], [2.3, 1.41], [2.72, 1.02]],
        ],
        wheels: [0.75, 3.25],
    },
    CarModel {
        l: 4.7,
        h: 1.72,
        belt: 1.12,
        wheel_r: 0.38,
        body: &[
            [0.0, 0.38],
            [0.0, 1.05],
            [0.1, 1.68],
            [3.05, 1.72],
            [3.6, 1.12],
            [4.55, 1.0],
            [4.7, 0.7],
            [4.68, 0.38],
        ],
        windows: &[
            &[[0.25, 1.14], [0.3, 1.6], [1.55, 1.63], [1.55, 1.14]],
            &[[1.65, 1.14], [1.65, 1.63], [2.95, 1.63], [3.4, 1.14]],
        ],
        wheels: [0.95, 3.75],
    },
    CarModel {
        l: 5.0,
        h: 1.95,
        belt: 1.15,
        wheel_r: 0.36,
        body: &[
            [0.0, 0.38],
            [0.0, 1.9],
            [3.9, 1.95],
            [4.5, 1.2],
            [5.0, 1.0],
            [5.0, 0.38],
        ],
        windows: &[
            &[[3.1, 1.15], [3.1, 1.82], [3.85, 1.84], [4.35, 1.15]],
            &[[0.45, 1.22], [0.45, 1.75], [2.9, 1.75], [2.9, 1.22]],
        ],
        wheels: [0.9, 4.0],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knee_bends_forward_and_keeps_segment_lengths() {
        let k = knee([0.0, 1.0], [0.2, 0.2], 0.46, 1.0);
        let d1 = ((k[0]).powi(2) + (k[1] - 1.0).powi(2)).sqrt();
        let d2 = ((k[0] - 0.2).powi(2) + (k[1] - 0.2).powi(2)).sqrt();
        assert!((d1 - 0.46).abs() < 1e-3 && (d2 - 0.46).abs() < 1e-3);
        assert!(k[0] > 0.1, "bends towards +x: {k:?}");
    }
}
