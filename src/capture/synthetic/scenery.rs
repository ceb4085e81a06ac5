//! The background: sky, distant skyline, road surface with its markings, buildings, tunnels,
//! and the roadside items (trees, lamps, signs, ...) that can hide instances.
//!
//! The road is painted row by row: each screen row below the horizon sees the ground at one
//! distance `z`, so its surfaces (lanes, parking lane, curb, sidewalk, verge) are spans whose ends
//! are projected once per row, and its texture coordinates advance by a fixed step per pixel.

use super::camera::{Camera, HEIGHT_M, Z_NEAR};
use super::look::{Look, Region};
use super::raster::{Canvas, Paint, Pt};
use super::rng::hash2;
use super::world::{Item, ItemKind, Road, World, CURB_W, TUNNEL_H};

/// A light source's halo, added after everything is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Glow {
    pub at: Pt,
    pub radius: f32,
    pub color: [u8; 3],
    /// Peak added intensity, 0..1.
    pub strength: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Surface {
    Asphalt,
    Shoulder,
    Curb,
    Sidewalk,
    Verge,
}

struct Band {
    x0: f32,
    x1: f32,
    surface: Surface,
}

struct Marking {
    x: f32,
    width: f32,
    /// Dash length and period, metres.
    dash: Option<(f32, f32)>,
    yellow: bool,
}

fn bands(road: &Road) -> Vec<Band> {
    let mut out = Vec::new();
    for side in 0..2 {
        let sign = Road::sign(side);
        let edge = road.edge(side);
        let curb = road.curb(side);
        let lim = |a: f32, b: f32| if a < b { (a, b) } else { (b, a) };
        let mut push = |a: f32, b: f32, surface| {
            let (x0, x1) = lim(a, b);
            if x1 > x0 {
                out.push(Band { x0, x1, surface });
            }
        };
        push(0.0, edge, Surface::Asphalt);
        push(
            edge,
            curb,
            if road.parking[side] {
                Surface::Asphalt
            } else {
                Surface::Shoulder
            },
        );
        if road.sidewalk_w > 0.0 {
            push(curb, curb + sign * CURB_W, Surface::Curb);
            push(
                curb + sign * CURB_W,
                road.walk_outer(side),
                Surface::Sidewalk,
            );
            push(road.walk_outer(side), sign * 1.0e6, Surface::Verge);
        } else {
            push(curb, sign * 1.0e6, Surface::Verge);
        }
    }
    out.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    out
}

fn markings(road: &Road) -> Vec<Marking> {
    let mut out = Vec::new();
    let yellow = road.yellow_centre;
    if road.double_centre {
        for x in [-0.12, 0.12] {
            out.push(Marking {
                x,
                width: 0.12,
                dash: None,
                yellow,
            });
        }
    } else {
        out.push(Marking {
            x: 0.0,
            width: 0.13,
            dash: Some((3.0, 9.0)),
            yellow,
        });
    }
    for i in 1..road.own_lanes {
        out.push(Marking {
            x: i as f32 * road.lane_w,
            width: 0.13,
            dash: Some((3.0, 12.0)),
            yellow: false,
        });
    }
    for i in 1..road.onc_lanes {
        out.push(Marking {
            x: -(i as f32) * road.lane_w,
            width: 0.13,
            dash: Some((3.0, 12.0)),
            yellow: false,
        });
    }
    for side in 0..2 {
        let sign = Road::sign(side);
        out.push(Marking {
            x: road.edge(side) - sign * 0.1,
            width: if road.parking[side] { 0.1 } else { 0.15 },
            dash: None,
            yellow: false,
        });
    }
    out
}

/// Per-frame state shared by the background painters.
pub(crate) struct Scene<'a> {
    pub world: &'a World,
    pub cam: Camera,
    pub look: Look,
    bands: Vec<Band>,
    markings: Vec<Marking>,
    /// Stream time, seconds (cloud drift).
    pub time: f32,
    /// Scratch per-column values for tunnel walls.
    wall_cols: Vec<WallColumn>,
}

const GLARE: [u8; 3] = [246, 248, 250];

impl<'a> Scene<'a> {
    pub fn new(world: &'a World, cam: Camera, look: Look, time: f32) -> Self {
        Scene {
            world,
            cam,
            look,
            bands: bands(&world.drive.road),
            markings: markings(&world.drive.road),
            time,
            wall_cols: Vec::new(),
        }
    }

    fn surface_color(&self, region: Region, s: Surface) -> ([u8; 3], i32) {
        let p = region.palette();
        let wet = self.look.rain;
        let (c, amp) = match s {
            Surface::Asphalt => (p.asphalt, p.asphalt_amp),
            Surface::Shoulder => (p.asphalt.map(|v| v.saturating_add(10)), p.asphalt_amp + 6),
            Surface::Curb => (p.curb, 14),
            Surface::Sidewalk => (p.sidewalk, 22),
            Surface::Verge => (p.verge, p.verge_amp),
        };
        if wet && s != Surface::Verge {
            (c.map(|v| (v as f32 * 0.72) as u8), amp)
        } else {
            (c, amp)
        }
    }

    /// Sky gradient with drifting clouds, rows `0..yh`.
    pub fn sky(&self, c: &mut Canvas) {
        let yh = (self.cam.yh.ceil() as usize).min(c.h);
        let l = &self.look;
        let pan = (self.world.ego.heading * self.cam.f * 0.5) as i64 + (self.time * 3.0) as i64;
        let thr = (255.0 - l.cloud_cover * 150.0) as i32;
        for y in 0..yh {
            let t = y as f32 / yh.max(1) as f32;
            let base = super::raster::lerp3(l.sky_top, l.sky_horizon, t * t);
            let row = &mut c.rgb[y * c.w * 3..(y + 1) * c.w * 3];
            if l.cloud_cover <= 0.0 {
                for p in row.chunks_exact_mut(3) {
                    p.copy_from_slice(&base);
                }
                continue;
            }
            // Clouds flatten towards the horizon.
            let v = (6000.0 / (yh as f32 - y as f32 + 20.0)) as u32;
            let du = (65536.0 * 256.0 / (yh as f32 - y as f32 + 40.0) / 6.0) as u32;
            let mut u = (pan as u32).wrapping_mul(1 << 12);
            let fade = (255.0 * (1.0 - t).min(1.0).sqrt()) as i32;
            // Texel (in steps of 4) to colour.
            let mut lut = [[0u8; 3]; 64];
            for (k, e) in lut.iter_mut().enumerate() {
                let a = (((k as i32 * 4 + 2 - thr) * 5).clamp(0, 255) * fade) >> 8;
                for i in 0..3 {
                    e[i] =
                        (base[i] as i32 + (((l.cloud[i] as i32 - base[i] as i32) * a) >> 8)) as u8;
                }
            }
            for p in row.chunks_exact_mut(3) {
                p.copy_from_slice(&lut[(c.tex.at(u >> 16, v) >> 2) as usize]);
                u = u.wrapping_add(du);
            }
        }
    }

    /// Distant hills or a city skyline along the horizon.
    pub fn skyline(&self, c: &mut Canvas) {
        let region = self.world.region_at(self.world.ego.s);
        let color = self.look.shade(region.palette().skyline, 700.0, 60.0);
        let yh = self.cam.yh;
        let hs = c.h as f32;
        let pan = self.world.ego.heading * self.cam.f;
        let seed = self.world.drive.skyline_seed;
        let city = matches!(region, Region::Urban | Region::Industrial);
        let block = (c.w as f32 / 70.0).max(2.0);
        for x in 0..c.w {
            let wx = x as f32 + pan;
            let height = if city {
                let b = (wx / block).floor() as i64;
                let hh = hash2(seed, b as u64);
                if hh % 5 == 0 {
                    0.0
                } else {
                    hs * (0.015 + (hh >> 40) as f32 / (1u64 << 24) as f32 * 0.07)
                }
            } else {
                let u = wx / (c.w as f32 / 6.0);
                let i = u.floor();
                let f = u - i;
                let a = (hash2(seed, i as i64 as u64) >> 40) as f32 / (1u64 << 24) as f32;
                let b = (hash2(seed, (i as i64 + 1) as u64) >> 40) as f32 / (1u64 << 24) as f32;
                let f = f * f * (3.0 - 2.0 * f);
                let fine = c.tex.at((wx as i64 / 2) as u32, 17) as f32 / 255.0;
                hs * (0.01 + (a + (b - a) * f) * 0.05 + fine * 0.008)
            };
            let top = (yh - height).max(0.0) as usize;
            for y in top..(yh.ceil() as usize).min(c.h) {
                let i = (y * c.w + x) * 3;
                c.rgb[i..i + 3].copy_from_slice(&color);
            }
        }
    }

    /// The ground, rows from the horizon down, columns `x0..x1`.
    pub fn ground(
        &self,
        c: &mut Canvas,
        y0: usize,
        y1: usize,
        x0: usize,
        x1: usize,
        glare_beyond: f32,
    ) {
        let cam = &self.cam;
        let w = &self.world;
        let look = &self.look;
        let night_lamps = look.lamps_on;
        for y in y0..y1.min(c.h) {
            let Some(z) = cam.ground_z(y) else { continue };
            if z > glare_beyond {
                c.span(y, x0, x1, &Paint::Solid(GLARE));
                continue;
            }
            let s = w.ego.s + z;
            let region = w.region_at(s);
            let inv = cam.f / z;
            let off = 0.5 * cam.k * z * z - cam.x_ego;
            let sx = |x: f32| cam.cx + (x + off) * inv;
            let px = |x: f32| ((sx(x) - 0.5).ceil().clamp(x0 as f32, x1 as f32)) as usize;
            // Light and fog of this row, 8.8 fixed point.
            let fog = look.fog(z);
            let mut amb = look.ambient;
            if night_lamps && region != Region::Rural {
                let d = (s % 30.0 - 15.0).abs() / 15.0;
                let pool = (1.0 - d * d) * 0.3 / (1.0 + z / 60.0);
                amb = [amb[0] + pool, amb[1] + pool * 0.78, amb[2] + pool * 0.45];
            }
            let lit = amb.map(|a| (a * (1.0 - fog) * 256.0) as i32);
            let fogadd: [i32; 3] = [0, 1, 2].map(|i| (look.fog_color[i] * fog * 256.0) as i32);
            let hl = if look.headlights > 0.0 {
                let d = z / 28.0;
                let k = look.headlights / (1.0 + d * d) * (1.0 - fog);
                // cone(x) = 1 - |x + 0.5 - cx| * slope, slope in 1/pixel
                let slope = (z / cam.f) / (2.5 + 0.22 * z);
                Some((k, slope))
            } else {
                None
            };
            // Texture: 4 cm texels; 16.16 fixed point across the row.
            let mpp = z / cam.f; // metres per pixel
            let du = (mpp * 25.0 * 65536.0) as u32;
            let u_at0 = ((0.5 - cam.cx) * mpp - off) * 25.0;
            let v = (s * 25.0) as i64 as u32;
            // Fade the grain out where a pixel covers many texels (cheap mip-mapping).
            let fade = (1.5 / (mpp * 25.0)).min(1.0);
            for b in &self.bands {
                let (xa, xb) = (px(b.x0), px(b.x1));
                if xb <= xa {
                    continue;
                }
                let (base, amp) = self.surface_color(region, b.surface);
                let amp = (amp as f32 * fade) as i32;
                let u0 = ((u_at0 + xa as f32 * mpp * 25.0) * 65536.0) as i64 as u32;
                let row = Row {
                    base,
                    amp,
                    u0,
                    du,
                    v,
                    lit,
                    fogadd,
                };
                row.paint(c, y, xa, xb, hl.map(|(k, slope)| (k, slope, cam.cx)));
            }
            // Markings.
            let pal = region.palette();
            for m in &self.markings {
                if let Some((on, period)) = m.dash {
                    if (s + 1000.0) % period > on {
                        continue;
                    }
                }
                let (xa, xb) = (px(m.x - m.width * 0.5), px(m.x + m.width * 0.5));
                let col = if m.yellow {
                    [222, 180, 42]
                } else {
                    pal.marking
                };
                let col = if look.rain {
                    col.map(|v| (v as f32 * 0.85) as u8)
                } else {
                    col
                };
                self.flat_span(c, y, xa, xb, col, lit, fogadd, hl, z);
            }
            // Crosswalk stripes and the stop line.
            let road = &w.drive.road;
            for &cw in &w.drive.crosswalks {
                if s >= cw && s < cw + 3.0 {
                    let mut x = road.edge(0) + 0.3;
                    while x < road.edge(1) - 0.3 {
                        let (xa, xb) = (px(x), px(x + 0.5));
                        self.flat_span(c, y, xa, xb, pal.marking, lit, fogadd, hl, z);
                        x += 1.0;
                    }
                }
            }
            if let Some(sig) = w.signal {
                if s >= sig.s - 0.45 && s < sig.s {
                    let (xa, xb) = (px(0.15), px(road.edge(1)));
                    self.flat_span(c, y, xa, xb, pal.marking, lit, fogadd, hl, z);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn flat_span(
        &self,
        c: &mut Canvas,
        y: usize,
        xa: usize,
        xb: usize,
        col: [u8; 3],
        lit: [i32; 3],
        fogadd: [i32; 3],
        hl: Option<(f32, f32)>,
        _z: f32,
    ) {
        if xb <= xa {
            return;
        }
        let row = Row {
            base: col,
            amp: 8,
            u0: 0,
            du: 1 << 16,
            v: y as u32,
            lit,
            fogadd,
        };
        row.paint(c, y, xa, xb, hl.map(|(k, slope)| (k, slope, self.cam.cx)));
    }

    /// Facades, their windows and end walls, far to near.
    /// Facades, their windows and end walls, far to near; `beyond`: only those starting at or
    /// beyond road position `split` (the others when false), so that a tunnel portal can be
    /// painted in between.
    pub fn buildings(&self, c: &mut Canvas, split: f32, beyond: bool) {
        let w = self.world;
        let ego = w.ego.s;
        let mut order: Vec<&Item> = w
            .items
            .iter()
            .filter(|i| {
                matches!(i.kind, ItemKind::Building { .. })
                    && i.s1 - ego > Z_NEAR + 0.3
                    && i.s0 - ego < 400.0
                    && (i.s0 >= split) == beyond
            })
            .collect();
        order.sort_by(|a, b| b.s0.total_cmp(&a.s0));
        for item in order {
            self.building(c, item);
        }
    }

    fn building(&self, c: &mut Canvas, item: &Item) {
        let ItemKind::Building {
            depth,
            height,
            facade,
            floor_h,
            win_spacing,
            roof,
            industrial,
        } = item.kind
        else {
            return;
        };
        let cam = &self.cam;
        let look = &self.look;
        let ego = self.world.ego.s;
        let sign = Road::sign(item.side);
        let x = item.x;
        let z0 = (item.s0 - ego).max(Z_NEAR + 0.3);
        let z1 = (item.s1 - ego).min(400.0);
        if z1 <= z0 {
            return;
        }
        let region = self.world.region_at(item.s0);
        let snow = region == Region::Snow;
        // End wall facing the camera.
        if item.s0 - ego > Z_NEAR + 0.3 {
            let z = item.s0 - ego;
            let col = look
                .shade(facade, z, cam.rel_x(x, z))
                .map(|v| (v as f32 * 0.72) as u8);
            let q = [
                cam.project(x, 0.0, z),
                cam.project(x + sign * depth, 0.0, z),
                cam.project(x + sign * depth, height, z),
                cam.project(x, height, z),
            ];
            c.poly(
                &q,
                &Paint::Tex {
                    base: col,
                    amp: 14,
                    shift: 1,
                    off: item.seed as u32,
                },
            );
            if let Some((rc, rh)) = roof {
                let rc = if snow { [240, 242, 246] } else { rc };
                let g = [
                    cam.project(x, height, z),
                    cam.project(x + sign * depth, height, z),
                    cam.project(x + sign * depth * 0.5, height + rh, z),
                ];
                c.poly(
                    &g,
                    &Paint::Solid(look.shade(facade, z, 0.0).map(|v| (v as f32 * 0.66) as u8)),
                );
                let _ = rc;
            }
        }
        // The facade in chunks of at most 8 m, each shaded for its own distance.
        let n = ((z1 - z0) / 8.0).ceil().max(1.0) as usize;
        let step = (z1 - z0) / n as f32;
        for i in (0..n).rev() {
            let (za, zb) = (z0 + step * i as f32, z0 + step * (i + 1) as f32);
            let zm = 0.5 * (za + zb);
            let col = look.shade(facade, zm, cam.rel_x(x, zm));
            let q = [
                cam.project(x, 0.0, za),
                cam.project(x, 0.0, zb),
                cam.project(x, height, zb),
                cam.project(x, height, za),
            ];
            let shift = if zm < 25.0 { 2 } else { 1 };
            c.poly(
                &q,
                &Paint::Tex {
                    base: col,
                    amp: 16,
                    shift,
                    off: item.seed as u32,
                },
            );
            if let Some((rc, rh)) = roof {
                let rc = if snow { [240, 242, 246] } else { rc };
                let rcol = look.shade(rc, zm, cam.rel_x(x, zm));
                let r = [
                    cam.project(x, height, za),
                    cam.project(x, height, zb),
                    cam.project(x + sign * depth * 0.5, height + rh, zb),
                    cam.project(x + sign * depth * 0.5, height + rh, za),
                ];
                c.poly(
                    &r,
                    &Paint::Tex {
                        base: rcol,
                        amp: 22,
                        shift: 1,
                        off: 77,
                    },
                );
            }
            // Windows, only where they are at least a couple of pixels wide.
            if cam.scale(zm) * win_spacing * 0.45 < 2.0 {
                continue;
            }
            let first = ((item.s0 + 0.5 * win_spacing - ego - za) / win_spacing).floor();
            let mut k = first.max(-1.0) as i64;
            loop {
                let zc = item.s0 - ego + (k as f32 + 0.5) * win_spacing;
                k += 1;
                if zc > zb + win_spacing {
                    break;
                }
                let (wa, wb) = (zc - win_spacing * 0.25, zc + win_spacing * 0.25);
                if wa < za.max(z0) || wb > zb.min(z1) || zc > item.s1 - ego - 0.5 {
                    continue;
                }
                let floors = ((height - 0.6) / floor_h).floor().max(1.0) as i32;
                for f in 0..floors {
                    let (h0, h1) = if industrial {
                        if f != floors - 1 {
                            continue;
                        }
                        (height - 2.2, height - 1.0)
                    } else if f == 0 && region == Region::Urban && item.seed % 3 != 0 {
                        (0.4, 2.6) // shop window
                    } else {
                        (
                            f as f32 * floor_h + 0.9,
                            f as f32 * floor_h + floor_h * 0.72,
                        )
                    };
                    let q = [
                        cam.project(x, h0, wa),
                        cam.project(x, h0, wb),
                        cam.project(x, h1, wb),
                        cam.project(x, h1, wa),
                    ];
                    let h = hash2(item.seed, (k as u64) << 8 | f as u64);
                    let lit = look.lamps_on && h % 100 < 38;
                    let paint = if lit {
                        Paint::Solid(look.emit([255, 206, 130], zc))
                    } else {
                        let g = look.shade([62, 78, 96], zc, 0.0);
                        let g2 = look.shade([120, 140, 160], zc, 0.0);
                        Paint::VGrad {
                            top: g2,
                            bottom: g,
                            y0: q[3][1].min(q[2][1]),
                            y1: q[0][1].max(q[1][1]),
                        }
                    };
                    c.poly(&q, &paint);
                }
                if industrial && hash2(item.seed, k as u64) % 4 == 0 {
                    // A roller door.
                    let q = [
                        cam.project(x, 0.0, wa - 0.5),
                        cam.project(x, 0.0, wb + 0.5),
                        cam.project(x, 4.0, wb + 0.5),
                        cam.project(x, 4.0, wa - 0.5),
                    ];
                    c.poly(
                        &q,
                        &Paint::Tex {
                            base: look.shade([110, 112, 116], zc, 0.0),
                            amp: 20,
                            shift: 0,
                            off: 3,
                        },
                    );
                }
            }
        }
    }

    /// The tunnel: its inside when the camera is in it, its portal when it is ahead.
    pub fn tunnel(&mut self, c: &mut Canvas) -> bool {
        let w = self.world;
        let ego = w.ego.s;
        if let Some((_, t1)) = w.tunnel_at(ego) {
            self.tunnel_inside(c, [0, 0, c.w, c.h], t1 - ego);
            return true;
        }
        let Some((t0, t1)) = w.tunnel_ahead(ego) else {
            return false;
        };
        let a0 = t0 - ego;
        if !(Z_NEAR + 0.5..350.0).contains(&a0) {
            return false;
        }
        let cam = self.cam;
        let road = &w.drive.road;
        let (wl, wr) = (road.edge(0) - 1.0, road.edge(1) + 1.0);
        let look = &self.look;
        let region = w.region_at(t0);
        // The hill above, the concrete face with its opening, then the inside.
        let hill_col = look.shade(
            if region == Region::Snow {
                [230, 232, 236]
            } else {
                [86, 104, 62]
            },
            a0,
            0.0,
        );
        let mut hill = vec![cam.project(wl - 80.0, 0.0, a0)];
        for i in 0..=8 {
            let xx = wl - 80.0 + (wr - wl + 160.0) * i as f32 / 8.0;
            let hh =
                14.0 + 10.0 * ((hash2(w.drive.skyline_seed, i) >> 40) as f32 / (1u64 << 24) as f32);
            hill.push(cam.project(xx, hh, a0 + 15.0));
        }
        hill.push(cam.project(wr + 80.0, 0.0, a0));
        c.poly(
            &hill,
            &Paint::Tex {
                base: hill_col,
                amp: 40,
                shift: 1,
                off: 9,
            },
        );
        let face = look.shade([150, 148, 140], a0, 0.0);
        let outer = [
            cam.project(wl - 6.0, 0.0, a0),
            cam.project(wr + 6.0, 0.0, a0),
            cam.project(wr + 6.0, TUNNEL_H + 2.5, a0),
            cam.project(wl - 6.0, TUNNEL_H + 2.5, a0),
        ];
        let inner = [
            cam.project(wl, 0.0, a0),
            cam.project(wr, 0.0, a0),
            cam.project(wr, TUNNEL_H, a0),
            cam.project(wl, TUNNEL_H, a0),
        ];
        c.polys(
            &[&outer, &inner],
            &Paint::Tex {
                base: face,
                amp: 18,
                shift: 1,
                off: 5,
            },
        );
        let x0 = (inner[0][0] - 0.5).ceil().clamp(0.0, c.w as f32) as usize;
        let x1 = (inner[1][0] - 0.5).ceil().clamp(0.0, c.w as f32) as usize;
        let y0 = (inner[3][1] - 0.5).ceil().clamp(0.0, c.h as f32) as usize;
        let y1 = (inner[0][1] - 0.5).ceil().clamp(0.0, c.h as f32) as usize;
        if x1 > x0 && y1 > y0 {
            let inner_look = self.look.clone().tunnel();
            let saved = std::mem::replace(&mut self.look, inner_look);
            self.tunnel_inside(c, [x0, y0, x1, y1], t1 - ego);
            self.look = saved;
        }
        false
    }

    /// Walls, ceiling with lamps and road inside a tunnel, within `clip`; beyond `exit` metres
    /// the daylight glares.
    fn tunnel_inside(&mut self, c: &mut Canvas, clip: [usize; 4], exit: f32) {
        let [x0, y0, x1, y1] = clip;
        let cam = self.cam;
        let w = self.world;
        let road = &w.drive.road;
        let (wl, wr) = (road.edge(0) - 1.0, road.edge(1) + 1.0);
        let ego = w.ego.s;
        // The wall seen in each column: its distance and its colours (shaded once per column,
        // not per pixel): lower band, wall, lamp strip (where there is a lamp).
        let look = &self.look;
        let mut cols = std::mem::take(&mut self.wall_cols);
        cols.clear();
        for x in 0..c.w {
            let dx = x as f32 + 0.5 - cam.cx;
            let lat = if dx > 0.0 {
                wr - cam.x_ego
            } else {
                wl - cam.x_ego
            };
            let z = if dx.abs() < 1e-3 {
                f32::INFINITY
            } else {
                cam.f * lat / dx
            };
            if !(z > 0.0 && z <= exit) {
                cols.push(WallColumn {
                    z,
                    lower: GLARE,
                    wall: GLARE,
                    lamp: None,
                });
                continue;
            }
            let s = ego + z;
            let seam = s % 4.0 < 0.12;
            let dim = |b: [u8; 3]| if seam { b.map(|v| v - 40) } else { b };
            cols.push(WallColumn {
                z,
                lower: look.shade(dim([120, 118, 112]), z, 2.0),
                wall: look.shade(dim([168, 164, 152]), z, 2.0),
                lamp: (s % 7.0 < 3.0).then(|| look.emit([255, 190, 110], z)),
            });
        }
        for y in y0..y1 {
            let z_r = if (y as f32 + 0.5) > cam.yh {
                cam.ground_z(y)
            } else {
                cam.ceiling_z(y, TUNNEL_H)
            }
            .unwrap_or(f32::INFINITY);
            let xl = (cam.cx + cam.rel_x(wl, z_r) * cam.f / z_r - 0.5)
                .ceil()
                .clamp(x0 as f32, x1 as f32) as usize;
            let xr = (cam.cx + cam.rel_x(wr, z_r) * cam.f / z_r - 0.5)
                .ceil()
                .clamp(x0 as f32, x1 as f32) as usize;
            // Walls: height above the road of this row at each column's distance.
            let k = (cam.yh - y as f32 - 0.5) / cam.f;
            for x in (x0..xl).chain(xr..x1) {
                let col = &cols[x];
                let h = HEIGHT_M + k * col.z;
                let rgb = match col.lamp {
                    Some(lamp) if (4.1..4.35).contains(&h) => lamp,
                    _ if h < 1.0 => col.lower,
                    _ => col.wall,
                };
                let i = (y * c.w + x) * 3;
                c.rgb[i..i + 3].copy_from_slice(&rgb);
            }
            if xr <= xl {
                continue;
            }
            if (y as f32 + 0.5) > cam.yh {
                self.ground(c, y, y + 1, xl, xr, exit);
            } else if z_r > exit {
                c.span(y, xl, xr, &Paint::Solid(GLARE));
            } else {
                let s = ego + z_r;
                let base = look.shade([70, 68, 64], z_r, 0.0);
                c.span(y, xl, xr, &Paint::Solid(base));
                if s % 6.0 < 1.6 {
                    let lamp = look.emit([255, 196, 120], z_r);
                    let half = 0.35 * cam.f / z_r;
                    let mid = cam.cx + cam.rel_x(0.5 * (wl + wr), z_r) * cam.f / z_r;
                    let a = ((mid - half - 0.5).ceil().max(xl as f32)) as usize;
                    let b = ((mid + half - 0.5).ceil().min(xr as f32)) as usize;
                    c.span(y, a, b.max(a), &Paint::Solid(lamp));
                }
            }
        }
        self.wall_cols = cols;
    }

    /// One roadside point item (drawn in depth order with the instances, so it can hide them).
    pub fn item(&self, c: &mut Canvas, item: &Item, glows: &mut Vec<Glow>) {
        let cam = &self.cam;
        let look = &self.look;
        let z = item.s0 - self.world.ego.s;
        if z < Z_NEAR + 0.3 {
            return;
        }
        let x = item.x;
        let sc = cam.scale(z);
        let base = cam.project(x, 0.0, z);
        let rel = cam.rel_x(x, z);
        let at = |dx: f32, h: f32| -> Pt { [base[0] + dx * sc, base[1] - h * sc] };
        let shade = |col: [u8; 3]| look.shade(col, z, rel);
        let toward_road = -Road::sign(item.side);
        match item.kind {
            ItemKind::Tree {
                height,
                crown_r,
                crown,
                conifer,
            } => {
                let trunk = shade(self.world.region_at(item.s0).palette().trunk);
                let tw = 0.12 + crown_r * 0.05;
                let top = height
                    - if conifer {
                        height * 0.75
                    } else {
                        crown_r * 1.2
                    };
                c.poly(
                    &[
                        at(-tw, 0.0),
                        at(tw, 0.0),
                        at(tw * 0.7, top + 0.3),
                        at(-tw * 0.7, top + 0.3),
                    ],
                    &Paint::Solid(trunk),
                );
                let col = shade(crown);
                let shift = if sc > 40.0 {
                    2
                } else if sc > 12.0 {
                    1
                } else {
                    0
                };
                let paint = Paint::Tex {
                    base: col,
                    amp: 60,
                    shift,
                    off: item.seed as u32,
                };
                if conifer {
                    let tiers = 3;
                    for t in 0..tiers {
                        let frac = t as f32 / tiers as f32;
                        let y0 = top + (height - top) * frac * 0.8;
                        let wdt = crown_r * (1.0 - frac * 0.55);
                        let tip = y0 + (height - top) * 0.55;
                        c.poly(
                            &[at(-wdt, y0), at(wdt, y0), at(0.0, tip.min(height))],
                            &paint,
                        );
                    }
                    if self.world.region_at(item.s0) == Region::Snow {
                        let snow = shade([236, 240, 246]);
                        c.poly(
                            &[
                                at(-crown_r * 0.2, height - 0.8),
                                at(crown_r * 0.2, height - 0.8),
                                at(0.0, height),
                            ],
                            &Paint::Solid(snow),
                        );
                    }
                } else {
                    let cy = height - crown_r;
                    let mut pts = [[0f32; 2]; 16];
                    for (k, p) in pts.iter_mut().enumerate() {
                        let cs = super::raster::CIRCLE32[k * 2];
                        let rr = crown_r
                            * (0.82
                                + 0.3
                                    * ((hash2(item.seed, k as u64) >> 40) as f32
                                        / (1u64 << 24) as f32));
                        *p = at(cs[0] * rr, cy + cs[1] * rr * 0.9);
                    }
                    c.poly(&pts, &paint);
                }
            }
            ItemKind::Lamp { height } => {
                let pole = shade([92, 96, 100]);
                c.poly(
                    &[
                        at(-0.08, 0.0),
                        at(0.08, 0.0),
                        at(0.06, height),
                        at(-0.06, height),
                    ],
                    &Paint::Solid(pole),
                );
                let arm = toward_road * 1.6;
                c.line(
                    at(0.0, height - 0.1),
                    at(arm, height + 0.15),
                    0.1 * sc,
                    0.08 * sc,
                    &Paint::Solid(pole),
                );
                let head = [
                    at(arm - 0.35, height + 0.05),
                    at(arm + 0.35, height + 0.05),
                    at(arm + 0.3, height + 0.22),
                    at(arm - 0.3, height + 0.22),
                ];
                if look.lamps_on {
                    c.poly(&head, &Paint::Solid(look.emit([255, 214, 150], z)));
                    glows.push(Glow {
                        at: at(arm, height),
                        radius: 1.4 * sc,
                        color: [255, 190, 120],
                        strength: 0.5,
                    });
                } else {
                    c.poly(&head, &Paint::Solid(shade([70, 72, 76])));
                }
            }
            ItemKind::Pole => {
                let wood = shade([96, 76, 58]);
                c.poly(
                    &[at(-0.12, 0.0), at(0.12, 0.0), at(0.1, 9.0), at(-0.1, 9.0)],
                    &Paint::Solid(wood),
                );
                c.poly(
                    &[at(-0.9, 8.3), at(0.9, 8.3), at(0.9, 8.45), at(-0.9, 8.45)],
                    &Paint::Solid(wood),
                );
            }
            ItemKind::Sign { kind } => {
                let pole = shade([150, 152, 156]);
                let top = if kind == 3 { 3.2 } else { 2.4 };
                c.poly(
                    &[at(-0.04, 0.0), at(0.04, 0.0), at(0.04, top), at(-0.04, top)],
                    &Paint::Solid(pole),
                );
                match kind {
                    0 => {
                        c.ellipse(
                            at(0.0, top),
                            0.33 * sc,
                            0.33 * sc,
                            &Paint::Solid(shade([200, 30, 30])),
                        );
                        c.ellipse(
                            at(0.0, top),
                            0.25 * sc,
                            0.25 * sc,
                            &Paint::Solid(shade([240, 240, 236])),
                        );
                        c.rect(
                            at(-0.12, top)[0],
                            at(0.0, top + 0.08)[1],
                            at(0.12, top)[0],
                            at(0.0, top - 0.08)[1],
                            &Paint::Solid(shade([30, 30, 30])),
                        );
                    }
                    1 => {
                        c.poly(
                            &[
                                at(-0.3, top - 0.3),
                                at(0.3, top - 0.3),
                                at(0.3, top + 0.3),
                                at(-0.3, top + 0.3),
                            ],
                            &Paint::Solid(shade([30, 80, 170])),
                        );
                        c.poly(
                            &[
                                at(-0.06, top - 0.2),
                                at(0.06, top - 0.2),
                                at(0.06, top + 0.2),
                                at(-0.06, top + 0.2),
                            ],
                            &Paint::Solid(shade([240, 240, 240])),
                        );
                    }
                    2 => {
                        c.poly(
                            &[
                                at(-0.4, top - 0.25),
                                at(0.4, top - 0.25),
                                at(0.0, top + 0.45),
                            ],
                            &Paint::Solid(shade([200, 30, 30])),
                        );
                        c.poly(
                            &[
                                at(-0.26, top - 0.17),
                                at(0.26, top - 0.17),
                                at(0.0, top + 0.28),
                            ],
                            &Paint::Solid(shade([240, 240, 236])),
                        );
                    }
                    _ => {
                        c.poly(
                            &[
                                at(-0.9, top - 0.5),
                                at(0.9, top - 0.5),
                                at(0.9, top + 0.4),
                                at(-0.9, top + 0.4),
                            ],
                            &Paint::Solid(shade([30, 110, 60])),
                        );
                        c.poly(
                            &[
                                at(-0.7, top - 0.1),
                                at(0.5, top - 0.1),
                                at(0.5, top),
                                at(-0.7, top),
                            ],
                            &Paint::Solid(shade([230, 230, 230])),
                        );
                    }
                }
            }
            ItemKind::SignalPole => {
                let pole = shade([60, 62, 66]);
                c.poly(
                    &[at(-0.07, 0.0), at(0.07, 0.0), at(0.07, 3.4), at(-0.07, 3.4)],
                    &Paint::Solid(pole),
                );
                c.poly(
                    &[at(-0.2, 2.35), at(0.2, 2.35), at(0.2, 3.45), at(-0.2, 3.45)],
                    &Paint::Solid(shade([24, 24, 26])),
                );
                let red = self
                    .world
                    .signal
                    .is_some_and(|sg| self.world.t < sg.red_until);
                for (k, (col, on)) in [
                    ([255, 40, 30], red),
                    ([255, 170, 20], false),
                    ([40, 255, 120], !red),
                ]
                .into_iter()
                .enumerate()
                {
                    let p = at(0.0, 3.25 - k as f32 * 0.34);
                    let paint = if on {
                        Paint::Solid(look.emit(col, z))
                    } else {
                        Paint::Solid(shade(col.map(|v| v / 5)))
                    };
                    c.ellipse(p, 0.12 * sc, 0.12 * sc, &paint);
                    if on && look.ambient[0] < 0.8 {
                        glows.push(Glow {
                            at: p,
                            radius: 0.6 * sc,
                            color: col,
                            strength: 0.5,
                        });
                    }
                }
            }
            ItemKind::Rock { r, color } => {
                let mut pts = [[0f32; 2]; 10];
                for (k, p) in pts.iter_mut().enumerate() {
                    let cs = super::raster::CIRCLE32[(k * 16 / 5) % 32];
                    let rr = r
                        * (0.7
                            + 0.5
                                * ((hash2(item.seed, k as u64) >> 40) as f32
                                    / (1u64 << 24) as f32));
                    *p = at(cs[0] * rr * 1.3, (cs[1] * rr * 0.8).max(0.0));
                }
                c.poly(
                    &pts,
                    &Paint::Tex {
                        base: shade(color),
                        amp: 40,
                        shift: 1,
                        off: item.seed as u32,
                    },
                );
            }
            ItemKind::Cactus { height } => {
                let g = shade([62, 112, 62]);
                let p = Paint::Tex {
                    base: g,
                    amp: 30,
                    shift: 0,
                    off: 1,
                };
                c.poly(
                    &[
                        at(-0.18, 0.0),
                        at(0.18, 0.0),
                        at(0.18, height),
                        at(-0.18, height),
                    ],
                    &p,
                );
                c.ellipse(at(0.0, height), 0.18 * sc, 0.12 * sc, &p);
                let arm_h = height * 0.55;
                c.poly(
                    &[
                        at(0.18, arm_h),
                        at(0.6, arm_h),
                        at(0.6, arm_h + 0.25),
                        at(0.18, arm_h + 0.25),
                    ],
                    &p,
                );
                c.poly(
                    &[
                        at(0.45, arm_h),
                        at(0.65, arm_h),
                        at(0.65, height * 0.85),
                        at(0.45, height * 0.85),
                    ],
                    &p,
                );
            }
            ItemKind::Tank { r, height, color } => {
                let body = shade(color);
                let dark = body.map(|v| (v as f32 * 0.78) as u8);
                c.poly(
                    &[at(-r, 0.0), at(r, 0.0), at(r, height), at(-r, height)],
                    &Paint::Solid(body),
                );
                c.poly(
                    &[
                        at(r * 0.35, 0.0),
                        at(r, 0.0),
                        at(r, height),
                        at(r * 0.35, height),
                    ],
                    &Paint::Solid(dark),
                );
                c.ellipse(
                    at(0.0, height),
                    r * sc,
                    r * sc * 0.18,
                    &Paint::Solid(body.map(|v| v.saturating_add(20))),
                );
                for k in 1..4 {
                    let hh = height * k as f32 / 4.0;
                    c.poly(
                        &[at(-r, hh), at(r, hh), at(r, hh + 0.12), at(-r, hh + 0.12)],
                        &Paint::Solid(dark),
                    );
                }
            }
            ItemKind::Chimney { r, height } => {
                c.poly(
                    &[
                        at(-r, 0.0),
                        at(r, 0.0),
                        at(r * 0.7, height),
                        at(-r * 0.7, height),
                    ],
                    &Paint::Tex {
                        base: shade([150, 90, 70]),
                        amp: 20,
                        shift: 0,
                        off: 4,
                    },
                );
                for k in 0..3 {
                    let hh = height - 1.5 - k as f32 * 3.0;
                    let col = if k % 2 == 0 {
                        [220, 40, 40]
                    } else {
                        [240, 240, 240]
                    };
                    c.poly(
                        &[
                            at(-r * 0.72, hh),
                            at(r * 0.72, hh),
                            at(r * 0.7, hh + 1.5),
                            at(-r * 0.7, hh + 1.5),
                        ],
                        &Paint::Solid(shade(col)),
                    );
                }
            }
            ItemKind::Building { .. } => {}
        }
    }
}

/// The tunnel wall seen in one screen column.
struct WallColumn {
    z: f32,
    lower: [u8; 3],
    wall: [u8; 3],
    lamp: Option<[u8; 3]>,
}

/// One textured, lit and fogged span of ground.
struct Row {
    base: [u8; 3],
    amp: i32,
    u0: u32,
    du: u32,
    v: u32,
    lit: [i32; 3],
    fogadd: [i32; 3],
}

impl Row {
    #[inline]
    fn paint(&self, c: &mut Canvas, y: usize, xa: usize, xb: usize, hl: Option<(f32, f32, f32)>) {
        if xb <= xa {
            return;
        }
        let base = self.base.map(|v| v as i32);
        let row = &mut c.rgb[(y * c.w + xa) * 3..(y * c.w + xb) * 3];
        let mut u = self.u0;
        match hl {
            None if xb - xa >= 48 => {
                // Long spans: a 64-entry table from texel to final colour.
                let mut lut = [[0u8; 3]; 64];
                for (t, e) in lut.iter_mut().enumerate() {
                    let d = (((t as i32 * 4 + 2) - 128) * self.amp) >> 7;
                    for i in 0..3 {
                        e[i] = (((base[i] + d).max(0) * self.lit[i] + self.fogadd[i]) >> 8).min(255)
                            as u8;
                    }
                }
                for p in row.chunks_exact_mut(3) {
                    p.copy_from_slice(&lut[(c.tex.at(u >> 16, self.v) >> 2) as usize]);
                    u = u.wrapping_add(self.du);
                }
            }
            None => {
                for p in row.chunks_exact_mut(3) {
                    let t = ((c.tex.at(u >> 16, self.v) as i32 - 128) * self.amp) >> 7;
                    for i in 0..3 {
                        p[i] = (((base[i] + t).max(0) * self.lit[i] + self.fogadd[i]) >> 8).min(255)
                            as u8;
                    }
                    u = u.wrapping_add(self.du);
                }
            }
            Some((k, slope, cx)) => {
                for (j, p) in row.chunks_exact_mut(3).enumerate() {
                    let t = ((c.tex.at(u >> 16, self.v) as i32 - 128) * self.amp) >> 7;
                    let cone = (1.0 - ((xa + j) as f32 + 0.5 - cx).abs() * slope).clamp(0.0, 0.6);
                    let add = (cone * k * 256.0) as i32;
                    for i in 0..3 {
                        p[i] = (((base[i] + t).max(0) * (self.lit[i] + add) + self.fogadd[i]) >> 8)
                            .min(255) as u8;
                    }
                    u = u.wrapping_add(self.du);
                }
            }
        }
    }
}
