//! The simulated world: drives with their conditions, the road, scenery, traffic, and the
//! injected events. It knows nothing about pixels; the renderer looks at it.
//!
//! The stream is a sequence of *drives* (45 to 150 s each, longer while an event is running),
//! like dashcam clips concatenated: each has its own time of day, weather, kind of road, and
//! perhaps a tunnel. Within a drive, the ego vehicle follows its lane, slows for what is ahead
//! and stops at red lights; traffic, parked cars, pedestrians, cyclists and cones appear ahead as
//! it moves. Every random choice comes from the world's own generator in a fixed order, so the
//! world depends only on the seed, the frame rate and the configuration.

use super::actors::{Actor, Behavior, Class};
use super::config::{ConditionOverrides, Environment, EventRates, TimeOfDay, Weather};
use super::look::{Look, Region};
use super::rng::Rng;
use crate::capture::{ActiveEvent, EventKind};

/// Width of a parking lane, metres.
pub(crate) const PARKING_W: f32 = 2.3;
/// Width of a curb stone, metres.
pub(crate) const CURB_W: f32 = 0.2;
/// How far ahead the world is populated, metres.
const POPULATE_AHEAD: f32 = 230.0;
/// Actors this far behind the camera are gone.
const CULL_BEHIND: f32 = -25.0;
/// Height of a tunnel's ceiling, metres.
pub(crate) const TUNNEL_H: f32 = 6.0;
/// The ego's front bumper is this far ahead of the camera.
const EGO_FRONT: f32 = 2.0;
/// Half the width of the corridor the ego checks for obstacles.
const EGO_HALF_W: f32 = 0.95;
/// The longest the ego waits behind something that is not a red light, seconds.
const STUCK_LIMIT_S: f32 = 45.0;

/// The cross-section of the road of one drive.
#[derive(Debug, Clone)]
pub(crate) struct Road {
    pub lane_w: f32,
    pub own_lanes: u8,
    pub onc_lanes: u8,
    /// Parking lane on the left (index 0) / right (index 1).
    pub parking: [bool; 2],
    /// Sidewalk width (0: none, a grass verge instead).
    pub sidewalk_w: f32,
    /// Paved shoulder where there is no parking lane.
    pub shoulder_w: f32,
    pub yellow_centre: bool,
    pub double_centre: bool,
}

impl Road {
    /// -1 for the left side (index 0), +1 for the right (index 1).
    pub fn sign(side: usize) -> f32 {
        if side == 0 {
            -1.0
        } else {
            1.0
        }
    }

    /// Outer edge of the travel lanes.
    pub fn edge(&self, side: usize) -> f32 {
        if side == 0 {
            -(self.onc_lanes as f32) * self.lane_w
        } else {
            self.own_lanes as f32 * self.lane_w
        }
    }

    /// Where the curb (or the shoulder's end) is.
    pub fn curb(&self, side: usize) -> f32 {
        let w = if self.parking[side] {
            PARKING_W
        } else {
            self.shoulder_w
        };
        self.edge(side) + Road::sign(side) * w
    }

    /// Centre of the parking lane or shoulder.
    pub fn park_x(&self, side: usize) -> f32 {
        (self.edge(side) + self.curb(side)) * 0.5 + Road::sign(side) * 0.1
    }

    /// Outer edge of the sidewalk (where buildings may start).
    pub fn walk_outer(&self, side: usize) -> f32 {
        self.curb(side) + Road::sign(side) * (CURB_W + self.sidewalk_w)
    }

    /// A lateral position to walk at on `side`, `t` in 0..1 across the sidewalk (or the verge).
    pub fn walk_x(&self, side: usize, t: f32) -> f32 {
        let w = if self.sidewalk_w > 0.0 {
            self.sidewalk_w
        } else {
            2.0
        };
        self.curb(side) + Road::sign(side) * (CURB_W + 0.35 + t * (w - 0.7))
    }

    /// Centre of own lane `i` (0 next to the centre line).
    pub fn own_lane(&self, i: u8) -> f32 {
        (i as f32 + 0.5) * self.lane_w
    }

    pub fn onc_lane(&self, i: u8) -> f32 {
        -(i as f32 + 0.5) * self.lane_w
    }
}

/// A stretch of novel scenery.
#[derive(Debug, Clone)]
pub(crate) struct Novel {
    pub s0: f32,
    pub s1: f32,
    pub region: Region,
    pub id: u64,
}

/// One drive's conditions.
#[derive(Debug, Clone)]
pub(crate) struct Drive {
    pub id: u64,
    pub time: TimeOfDay,
    pub weather: Weather,
    pub region: Region,
    pub road: Road,
    pub cruise: f32,
    /// The drive ends at the first quiet moment after this stream time.
    pub end_t: f64,
    pub blur: bool,
    pub noise: bool,
    pub stops: bool,
    pub tunnels: Vec<(f32, f32)>,
    pub novel: Vec<Novel>,
    pub crosswalks: Vec<f32>,
    /// Curvature waves: (amplitude 1/m, wavelength m, phase).
    curv: [(f32, f32, f32); 2],
    pub skyline_seed: u64,
}

/// A traffic light's stop line on the ego's side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signal {
    pub s: f32,
    pub red_until: f64,
}

/// Scenery beside the road.
#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    /// A block with its facade parallel to the road at `Item::x`, reaching `depth` away from it.
    Building {
        depth: f32,
        height: f32,
        facade: [u8; 3],
        floor_h: f32,
        win_spacing: f32,
        /// Pitched roof colour and height.
        roof: Option<([u8; 3], f32)>,
        industrial: bool,
    },
    Tree {
        height: f32,
        crown_r: f32,
        crown: [u8; 3],
        conifer: bool,
    },
    Lamp {
        height: f32,
    },
    Sign {
        kind: u8,
    },
    /// A traffic light pole (its colour comes from the world's signal).
    SignalPole,
    Rock {
        r: f32,
        color: [u8; 3],
    },
    Cactus {
        height: f32,
    },
    Tank {
        r: f32,
        height: f32,
        color: [u8; 3],
    },
    Chimney {
        r: f32,
        height: f32,
    },
    /// A utility pole (rural).
    Pole,
}

#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Extent along the road (equal for point items).
    pub s0: f32,
    pub s1: f32,
    /// Lateral position (the facade plane for buildings).
    pub x: f32,
    pub side: usize,
    pub seed: u64,
    pub kind: ItemKind,
}

#[derive(Debug, Clone)]
pub(crate) struct Ego {
    /// Camera position along the road, metres.
    pub s: f32,
    pub x: f32,
    pub v: f32,
    /// Accumulated turning, radians (pans the distant skyline).
    pub heading: f32,
}

const KINDS: [EventKind; 5] = [
    EventKind::RareClass,
    EventKind::Occlusion,
    EventKind::Crowd,
    EventKind::NovelScenery,
    EventKind::Boring,
];

#[derive(Debug, Clone)]
struct Scheduler {
    next_t: [f64; 5],
    boring: Option<(u64, f64)>,
    next_id: u64,
}

/// The whole simulation state.
#[derive(Debug, Clone)]
pub(crate) struct World {
    rng: Rng,
    pub t: f64,
    pub drive: Drive,
    pub ego: Ego,
    pub actors: Vec<Actor>,
    pub items: Vec<Item>,
    pub signal: Option<Signal>,
    big_cursor: [f32; 2],
    small_cursor: [f32; 2],
    park_cursor: [f32; 2],
    ped_cursor: f32,
    cone_cursor: f32,
    cw_cursor: f32,
    next_track: u64,
    sched: Scheduler,
    next_stop_t: f64,
    stuck_s: f32,
    rates: EventRates,
    overrides: ConditionOverrides,
    drives: u64,
}

fn interval(rate_per_hour: f32) -> f64 {
    if rate_per_hour > 0.0 {
        3600.0 / rate_per_hour as f64
    } else {
        f64::INFINITY
    }
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

impl World {
    pub fn new(seed: u64, rates: EventRates, overrides: ConditionOverrides) -> Self {
        let mut rng = Rng::derive(seed, 1);
        let mut next_t = [f64::INFINITY; 5];
        for (i, k) in KINDS.iter().enumerate() {
            let mean = interval(rate_of(&rates, *k));
            if mean.is_finite() {
                next_t[i] = rng.exp(mean as f32) as f64;
            }
        }
        let placeholder = Drive {
            id: 0,
            time: TimeOfDay::Day,
            weather: Weather::Clear,
            region: Region::Urban,
            road: Road {
                lane_w: 3.5,
                own_lanes: 1,
                onc_lanes: 1,
                parking: [false; 2],
                sidewalk_w: 0.0,
                shoulder_w: 1.0,
                yellow_centre: false,
                double_centre: false,
            },
            cruise: 10.0,
            end_t: 0.0,
            blur: false,
            noise: false,
            stops: false,
            tunnels: Vec::new(),
            novel: Vec::new(),
            crosswalks: Vec::new(),
            curv: [(0.0, 1.0, 0.0); 2],
            skyline_seed: 0,
        };
        let mut w = World {
            rng,
            t: 0.0,
            drive: placeholder,
            ego: Ego {
                s: 0.0,
                x: 0.0,
                v: 0.0,
                heading: 0.0,
            },
            actors: Vec::new(),
            items: Vec::new(),
            signal: None,
            big_cursor: [0.0; 2],
            small_cursor: [0.0; 2],
            park_cursor: [0.0; 2],
            ped_cursor: 0.0,
            cone_cursor: 0.0,
            cw_cursor: 0.0,
            next_track: 1,
            sched: Scheduler {
                next_t,
                boring: None,
                next_id: 1,
            },
            next_stop_t: 0.0,
            stuck_s: 0.0,
            rates,
            overrides,
            drives: 0,
        };
        w.new_drive();
        w
    }

    // ----- queries for the renderer -----------------------------------------------------------

    /// The kind of place at road position `s`.
    pub fn region_at(&self, s: f32) -> Region {
        for n in &self.drive.novel {
            if s >= n.s0 && s < n.s1 {
                return n.region;
            }
        }
        self.drive.region
    }

    /// The tunnel containing road position `s`.
    pub fn tunnel_at(&self, s: f32) -> Option<(f32, f32)> {
        self.drive
            .tunnels
            .iter()
            .copied()
            .find(|&(a, b)| s >= a && s < b)
    }

    /// The next tunnel entrance ahead of `s`.
    pub fn tunnel_ahead(&self, s: f32) -> Option<(f32, f32)> {
        self.drive.tunnels.iter().copied().find(|&(a, _)| a > s)
    }

    /// Road curvature at the ego (1/m); straight in and near tunnels.
    pub fn curvature(&self) -> f32 {
        let s = self.ego.s;
        let mut k = 0.0;
        for &(amp, wl, ph) in &self.drive.curv {
            k += amp * (s / wl * std::f32::consts::TAU + ph).sin();
        }
        let mut damp = 1.0f32;
        for &(a, b) in &self.drive.tunnels {
            let d = if s < a - 250.0 {
                a - 250.0 - s
            } else if s > b + 60.0 {
                s - b - 60.0
            } else {
                0.0
            };
            damp = damp.min(smoothstep(0.0, 120.0, d));
        }
        k * damp
    }

    /// The light of the current frame.
    pub fn look(&self) -> Look {
        let region = self.region_at(self.ego.s);
        let mut look = Look::new(self.drive.time, self.drive.weather, region);
        if self.tunnel_at(self.ego.s).is_some() {
            look = look.tunnel();
        }
        if !self.drive.noise {
            look.noise_sigma = 0.0;
        }
        if self.drive.blur {
            look.blur = (self.ego.v / 25.0).min(1.0)
                * if self.drive.time == TimeOfDay::Night {
                    0.022
                } else {
                    0.012
                };
        }
        look
    }

    /// The events that the world itself knows to be active (stretches); the renderer adds those
    /// that depend on what is visible.
    pub fn stretch_events(&self) -> Vec<ActiveEvent> {
        let mut out = Vec::new();
        for n in &self.drive.novel {
            if self.ego.s >= n.s0 - 60.0 && self.ego.s < n.s1 {
                out.push(ActiveEvent {
                    id: n.id,
                    kind: EventKind::NovelScenery,
                });
            }
        }
        if let Some((id, until)) = self.sched.boring {
            if self.t < until {
                out.push(ActiveEvent {
                    id,
                    kind: EventKind::Boring,
                });
            }
        }
        out
    }

    /// A description of the drive for logs.
    pub fn drive_summary(&self) -> String {
        format!(
            "drive {}: {:?} {:?} {:?}{}",
            self.drive.id,
            self.drive.region,
            self.drive.time,
            self.drive.weather,
            if self.drive.tunnels.is_empty() {
                ""
            } else {
                " with tunnel"
            }
        )
    }

    // ----- simulation ---------------------------------------------------------------------------

    /// Advances the world by `dt` seconds of stream time.
    pub fn step(&mut self, dt: f32) {
        self.t += dt as f64;
        if self.t >= self.drive.end_t && self.quiet() {
            self.new_drive();
        }
        self.schedule_events();
        self.advance(dt, true);
    }

    fn boring(&self) -> bool {
        self.sched.boring.is_some_and(|(_, until)| self.t < until)
    }

    /// No event running: a drive may end here.
    fn quiet(&self) -> bool {
        !self.boring()
            && self.drive.novel.iter().all(|n| self.ego.s >= n.s1)
            && self.actors.iter().all(|a| a.event.is_none())
    }

    fn advance(&mut self, dt: f32, live: bool) {
        let quiet_spawns = self.boring();
        self.populate(quiet_spawns);
        if !quiet_spawns {
            self.spawn_traffic(dt);
        }
        self.update_signal(live);
        self.move_ego(dt);
        self.move_actors(dt);
        let ego_s = self.ego.s;
        self.actors.retain(|a| {
            let z = a.s - ego_s;
            z > CULL_BEHIND && z < POPULATE_AHEAD + 60.0 && a.x.abs() < 80.0
        });
        self.items.retain(|i| i.s1 > ego_s - 30.0);
        if let Some(sig) = self.signal {
            if sig.s < ego_s - 30.0 {
                self.signal = None;
            }
        }
    }

    fn new_drive(&mut self) {
        self.drives += 1;
        let o = self.overrides.clone();
        let r = &mut self.rng;
        let time = o.time_of_day.unwrap_or_else(|| {
            [TimeOfDay::Day, TimeOfDay::Dusk, TimeOfDay::Night][r.weighted(&[0.58, 0.16, 0.26])]
        });
        let weather = o.weather.unwrap_or_else(|| {
            [Weather::Clear, Weather::Fog, Weather::Rain][r.weighted(&[0.68, 0.15, 0.17])]
        });
        let env = o.environment.unwrap_or_else(|| {
            [
                Environment::Urban,
                Environment::Suburban,
                Environment::Rural,
            ][r.weighted(&[0.45, 0.3, 0.25])]
        });
        let region = match env {
            Environment::Urban => Region::Urban,
            Environment::Suburban => Region::Suburban,
            Environment::Rural => Region::Rural,
        };
        let road = match region {
            Region::Urban => {
                let two = r.chance(0.3);
                Road {
                    lane_w: r.range(3.2, 3.6),
                    own_lanes: 1 + two as u8,
                    onc_lanes: 1 + two as u8,
                    parking: [r.chance(0.7), r.chance(0.9)],
                    sidewalk_w: r.range(2.5, 4.0),
                    shoulder_w: 0.4,
                    yellow_centre: r.chance(0.3),
                    double_centre: r.chance(0.5),
                }
            }
            Region::Suburban => Road {
                lane_w: r.range(3.2, 3.6),
                own_lanes: 1,
                onc_lanes: 1,
                parking: [false, r.chance(0.6)],
                sidewalk_w: r.range(1.8, 2.6),
                shoulder_w: 0.6,
                yellow_centre: r.chance(0.4),
                double_centre: r.chance(0.3),
            },
            _ => {
                let two = r.chance(0.35);
                Road {
                    lane_w: r.range(3.4, 3.75),
                    own_lanes: 1 + two as u8,
                    onc_lanes: 1 + two as u8,
                    parking: [false, false],
                    sidewalk_w: 0.0,
                    shoulder_w: r.range(1.0, 2.2),
                    yellow_centre: r.chance(0.3),
                    double_centre: two || r.chance(0.3),
                }
            }
        };
        let cruise = match region {
            Region::Urban => r.range(10.0, 13.5),
            Region::Suburban => r.range(11.0, 15.0),
            _ => r.range(17.0, 24.0),
        };
        let mut tunnels = Vec::new();
        let tunnel_p = if region == Region::Urban { 0.12 } else { 0.22 };
        if o.tunnel.unwrap_or_else(|| r.chance(tunnel_p)) {
            let t0 = r.range(220.0, 520.0);
            tunnels.push((t0, t0 + r.range(180.0, 480.0)));
        }
        if o.tunnel == Some(true) {
            // Forced tunnels start right away, so that short streams see one.
            tunnels[0] = (r.range(90.0, 130.0), 0.0);
            tunnels[0].1 = tunnels[0].0 + r.range(250.0, 450.0);
        }
        let amp = match region {
            Region::Urban => 1.0 / 1400.0,
            Region::Suburban => 1.0 / 700.0,
            _ => 1.0 / 380.0,
        };
        let curv = [
            (
                amp * r.range(0.3, 1.0),
                r.range(350.0, 800.0),
                r.range(0.0, std::f32::consts::TAU),
            ),
            (
                amp * r.range(0.0, 0.4),
                r.range(130.0, 260.0),
                r.range(0.0, std::f32::consts::TAU),
            ),
        ];
        let duration = r.range(45.0, 150.0) as f64;
        self.drive = Drive {
            id: self.drives,
            time,
            weather,
            region,
            road: road.clone(),
            cruise,
            end_t: self.t + duration,
            blur: o.motion_blur.unwrap_or_else(|| r.chance(0.3)),
            noise: o.sensor_noise.unwrap_or_else(|| r.chance(0.9)),
            stops: o
                .stops
                .unwrap_or_else(|| r.chance(if region == Region::Rural { 0.2 } else { 0.8 })),
            tunnels,
            novel: Vec::new(),
            crosswalks: Vec::new(),
            curv,
            skyline_seed: r.next_u64(),
        };
        let ego_lane = road.own_lanes - 1;
        self.ego = Ego {
            s: 0.0,
            x: road.own_lane(ego_lane),
            v: cruise * 0.8,
            heading: 0.0,
        };
        self.actors.clear();
        self.items.clear();
        self.signal = None;
        self.big_cursor = [-40.0; 2];
        self.small_cursor = [-40.0; 2];
        self.park_cursor = [-30.0; 2];
        self.ped_cursor = -30.0;
        self.cone_cursor = 60.0 + self.rng.exp(250.0);
        self.cw_cursor = 40.0 + self.rng.range(0.0, 150.0);
        self.next_stop_t = self.t + self.rng.exp(60.0) as f64 + 10.0;
        // Let traffic fill the road before the first frame of the drive.
        for _ in 0..60 {
            self.advance(0.1, false);
        }
    }

    fn add(&mut self, mut a: Actor) -> usize {
        a.track = self.next_track;
        self.next_track += 1;
        self.actors.push(a);
        self.actors.len() - 1
    }

    fn occupied(&self, x: f32, s: f32, half_len: f32, half_w: f32) -> bool {
        self.actors.iter().any(|a| {
            (a.x - x).abs() < half_w + a.width * 0.5 && (a.s - s).abs() < half_len + a.length * 0.5
        })
    }

    fn near_crossing(&self, s: f32, margin: f32) -> bool {
        self.drive
            .crosswalks
            .iter()
            .any(|&c| s > c - margin && s < c + 3.0 + margin)
            || self
                .signal
                .is_some_and(|sig| s > sig.s - margin && s < sig.s + 4.0 + margin)
    }

    fn in_tunnel_zone(&self, s: f32, margin: f32) -> bool {
        self.drive
            .tunnels
            .iter()
            .any(|&(a, b)| s > a - margin && s < b + margin)
    }

    /// Fills the road ahead with things fixed to the world: scenery, parked cars, pedestrians on
    /// sidewalks, cones, crosswalks.
    fn populate(&mut self, quiet: bool) {
        let horizon = self.ego.s + POPULATE_AHEAD;
        for side in 0..2 {
            while self.big_cursor[side] < horizon {
                self.gen_big(side);
            }
            while self.small_cursor[side] < horizon {
                self.gen_small(side);
            }
            while self.park_cursor[side] < horizon - 40.0 {
                self.gen_parked(side, quiet);
            }
        }
        while self.cw_cursor < horizon {
            let s = self.cw_cursor;
            let region = self.region_at(s);
            let spacing = match region {
                Region::Urban => 160.0,
                Region::Suburban | Region::Industrial => 380.0,
                _ => 0.0,
            };
            if spacing > 0.0 && !self.in_tunnel_zone(s, 40.0) {
                self.drive.crosswalks.push(s);
                if !quiet {
                    let n = self.rng.weighted(&[0.35, 0.3, 0.2, 0.15]);
                    for _ in 0..n {
                        self.spawn_crosser(s, None, 1.0);
                    }
                }
                self.cw_cursor += spacing * self.rng.range(0.6, 1.5);
            } else {
                self.cw_cursor += 150.0;
            }
        }
        while self.ped_cursor < horizon - 20.0 {
            let s = self.ped_cursor;
            let spacing = match self.region_at(s) {
                Region::Urban => 13.0,
                Region::Suburban => 45.0,
                Region::Industrial => 60.0,
                Region::Snow => 90.0,
                Region::Rural => 180.0,
                Region::Desert => 250.0,
            };
            if !quiet && !self.in_tunnel_zone(s, 10.0) {
                self.spawn_walker(s);
            }
            self.ped_cursor += self.rng.exp(spacing) + 1.0;
        }
        while self.cone_cursor < horizon {
            let s = self.cone_cursor;
            if !quiet && !self.in_tunnel_zone(s, 20.0) && !self.near_crossing(s, 10.0) {
                self.spawn_cones(s);
            }
            self.cone_cursor += self.rng.exp(320.0) + 30.0;
        }
    }

    fn gen_big(&mut self, side: usize) {
        let s = self.big_cursor[side];
        if let Some((_, b)) = self.tunnel_at(s + 15.0) {
            self.big_cursor[side] = b + 15.0;
            return;
        }
        let sign = Road::sign(side);
        let road = self.drive.road.clone();
        let region = self.region_at(s);
        let pal = region.palette();
        let r = &mut self.rng;
        let outer = road.walk_outer(side);
        let seed = r.next_u64();
        let (item, advance) = match region {
            Region::Urban => {
                if r.chance(0.08) {
                    (None, r.range(6.0, 14.0))
                } else {
                    let len = r.range(12.0, 38.0);
                    let height = r.range(8.0, 28.0);
                    let item = Item {
                        s0: s,
                        s1: s + len,
                        x: outer + sign * r.range(0.0, 1.0),
                        side,
                        seed,
                        kind: ItemKind::Building {
                            depth: r.range(10.0, 20.0),
                            height,
                            facade: r.pick(pal.facades),
                            floor_h: r.range(2.9, 3.5),
                            win_spacing: r.range(2.4, 3.6),
                            roof: None,
                            industrial: false,
                        },
                    };
                    (Some(item), len + r.range(0.0, 1.5))
                }
            }
            Region::Suburban | Region::Snow => {
                if r.chance(0.35) {
                    (None, r.range(8.0, 20.0))
                } else {
                    let len = r.range(9.0, 16.0);
                    let item = Item {
                        s0: s,
                        s1: s + len,
                        x: outer + sign * r.range(4.0, 11.0),
                        side,
                        seed,
                        kind: ItemKind::Building {
                            depth: r.range(8.0, 12.0),
                            height: r.range(4.5, 7.0),
                            facade: r.pick(pal.facades),
                            floor_h: r.range(2.6, 3.0),
                            win_spacing: r.range(2.8, 4.0),
                            roof: Some((r.pick(pal.roofs), r.range(2.0, 3.5))),
                            industrial: false,
                        },
                    };
                    (Some(item), len + r.range(6.0, 18.0))
                }
            }
            Region::Rural => {
                if r.chance(0.1) {
                    let len = r.range(10.0, 20.0);
                    let item = Item {
                        s0: s,
                        s1: s + len,
                        x: outer + sign * r.range(15.0, 40.0),
                        side,
                        seed,
                        kind: ItemKind::Building {
                            depth: r.range(8.0, 14.0),
                            height: r.range(4.0, 7.0),
                            facade: r.pick(pal.facades),
                            floor_h: 3.0,
                            win_spacing: 4.0,
                            roof: Some((r.pick(pal.roofs), r.range(2.0, 4.0))),
                            industrial: false,
                        },
                    };
                    (Some(item), len + r.range(30.0, 90.0))
                } else {
                    let conifer = r.chance(0.3);
                    let h = r.range(5.0, 13.0);
                    let item = Item {
                        s0: s,
                        s1: s,
                        x: outer + sign * r.range(3.0, 30.0),
                        side,
                        seed,
                        kind: ItemKind::Tree {
                            height: h,
                            crown_r: h * r.range(0.25, 0.4),
                            crown: r.pick(pal.crowns),
                            conifer,
                        },
                    };
                    (Some(item), r.exp(9.0) + 1.0)
                }
            }
            Region::Desert => {
                if r.chance(0.12) {
                    let len = r.range(8.0, 14.0);
                    let item = Item {
                        s0: s,
                        s1: s + len,
                        x: outer + sign * r.range(6.0, 25.0),
                        side,
                        seed,
                        kind: ItemKind::Building {
                            depth: r.range(6.0, 10.0),
                            height: r.range(3.0, 4.5),
                            facade: r.pick(pal.facades),
                            floor_h: 3.0,
                            win_spacing: 3.5,
                            roof: None,
                            industrial: false,
                        },
                    };
                    (Some(item), len + r.range(30.0, 80.0))
                } else if r.chance(0.5) {
                    let item = Item {
                        s0: s,
                        s1: s,
                        x: outer + sign * r.range(1.0, 25.0),
                        side,
                        seed,
                        kind: ItemKind::Cactus {
                            height: r.range(1.5, 4.0),
                        },
                    };
                    (Some(item), r.exp(14.0) + 2.0)
                } else {
                    let item = Item {
                        s0: s,
                        s1: s,
                        x: outer + sign * r.range(1.0, 30.0),
                        side,
                        seed,
                        kind: ItemKind::Rock {
                            r: r.range(0.4, 2.5),
                            color: r.pick(&[[150, 120, 90], [170, 140, 100], [120, 100, 84]]),
                        },
                    };
                    (Some(item), r.exp(12.0) + 2.0)
                }
            }
            Region::Industrial => {
                let pick = r.weighted(&[0.55, 0.25, 0.1, 0.1]);
                match pick {
                    0 => {
                        let len = r.range(25.0, 70.0);
                        let item = Item {
                            s0: s,
                            s1: s + len,
                            x: outer + sign * r.range(2.0, 10.0),
                            side,
                            seed,
                            kind: ItemKind::Building {
                                depth: r.range(20.0, 40.0),
                                height: r.range(7.0, 14.0),
                                facade: r.pick(pal.facades),
                                floor_h: r.range(4.0, 6.0),
                                win_spacing: r.range(5.0, 9.0),
                                roof: None,
                                industrial: true,
                            },
                        };
                        (Some(item), len + r.range(2.0, 15.0))
                    }
                    1 => {
                        let rad = r.range(3.0, 7.0);
                        let item = Item {
                            s0: s + rad,
                            s1: s + rad,
                            x: outer + sign * (rad + r.range(3.0, 15.0)),
                            side,
                            seed,
                            kind: ItemKind::Tank {
                                r: rad,
                                height: r.range(6.0, 14.0),
                                color: r.pick(&[[196, 196, 190], [170, 176, 180], [190, 170, 140]]),
                            },
                        };
                        (Some(item), 2.0 * rad + r.range(3.0, 12.0))
                    }
                    2 => {
                        let item = Item {
                            s0: s,
                            s1: s,
                            x: outer + sign * r.range(12.0, 30.0),
                            side,
                            seed,
                            kind: ItemKind::Chimney {
                                r: r.range(0.8, 1.6),
                                height: r.range(20.0, 40.0),
                            },
                        };
                        (Some(item), r.range(10.0, 30.0))
                    }
                    _ => (None, r.range(10.0, 30.0)),
                }
            }
        };
        if let Some(item) = item {
            self.items.push(item);
        }
        self.big_cursor[side] = s + advance;
    }

    fn gen_small(&mut self, side: usize) {
        let s = self.small_cursor[side];
        if let Some((_, b)) = self.tunnel_at(s + 5.0) {
            self.small_cursor[side] = b + 8.0;
            return;
        }
        let sign = Road::sign(side);
        let road = self.drive.road.clone();
        let region = self.region_at(s);
        let pal = region.palette();
        let curb = road.curb(side);
        let r = &mut self.rng;
        let seed = r.next_u64();
        let lamp_spacing = match region {
            Region::Urban | Region::Industrial => 30.0,
            Region::Suburban | Region::Snow => 42.0,
            _ => 60.0,
        };
        let choice = r.weighted(&[0.45, 0.35, 0.1, 0.1]);
        let (kind, x) = match choice {
            0 if matches!(region, Region::Rural | Region::Desert) => {
                (ItemKind::Pole, curb + sign * r.range(2.0, 4.0))
            }
            0 => (
                ItemKind::Lamp {
                    height: r.range(7.0, 9.0),
                },
                curb + sign * 0.5,
            ),
            1 if region != Region::Desert => {
                let h = r.range(4.0, 9.0);
                let x = if road.sidewalk_w > 0.0 {
                    curb + sign * (CURB_W + 0.6)
                } else {
                    curb + sign * r.range(3.0, 8.0)
                };
                (
                    ItemKind::Tree {
                        height: h,
                        crown_r: h * r.range(0.25, 0.38),
                        crown: r.pick(pal.crowns),
                        conifer: region == Region::Snow || r.chance(0.12),
                    },
                    x,
                )
            }
            2 => (
                ItemKind::Sign {
                    kind: r.below(4) as u8,
                },
                curb + sign * 0.5,
            ),
            _ => {
                self.small_cursor[side] = s + lamp_spacing * 0.5;
                return;
            }
        };
        if self.near_crossing(s, 2.0) {
            self.small_cursor[side] = s + 6.0;
            return;
        }
        self.items.push(Item {
            s0: s,
            s1: s,
            x,
            side,
            seed,
            kind,
        });
        self.small_cursor[side] = s + lamp_spacing * self.rng.range(0.5, 1.1);
    }

    fn gen_parked(&mut self, side: usize, quiet: bool) {
        let s = self.park_cursor[side];
        let road = &self.drive.road;
        let can_park = road.parking[side];
        if !can_park || quiet || self.in_tunnel_zone(s, 15.0) || self.near_crossing(s, 6.0) {
            self.park_cursor[side] = s + 8.0;
            return;
        }
        let density = match self.region_at(s) {
            Region::Urban => 0.65,
            Region::Suburban => 0.3,
            _ => 0.35,
        };
        let x = road.park_x(side);
        let r = &mut self.rng;
        if r.chance(density) {
            let truck = r.chance(0.07);
            let mut a = if truck {
                Actor::truck(0, x, 0.0, Behavior::Still, r)
            } else {
                Actor::car(0, x, 0.0, Behavior::Still, r)
            };
            a.s = s + a.length * 0.5;
            if self.occupied(x, a.s, a.length * 0.5 + 0.4, 0.9) {
                self.park_cursor[side] = s + 3.0;
                return;
            }
            let r = &mut self.rng;
            // Parked on the left side of a two-way street, cars usually face the other way.
            if side == 0 && r.chance(0.6) {
                a.face = -1.0;
            }
            let adv = a.length + r.range(0.6, 2.5);
            self.add(a);
            self.park_cursor[side] = s + adv;
        } else {
            self.park_cursor[side] = s + r.range(4.0, 14.0);
        }
    }

    fn spawn_walker(&mut self, s: f32) {
        let road = self.drive.road.clone();
        let r = &mut self.rng;
        let side = if r.chance(0.5) { 0 } else { 1 };
        let t = r.f32();
        let x = road.walk_x(side, t);
        let mode = r.weighted(&[0.62, 0.24, 0.14]);
        let vs = r.sign() * r.range(0.9, 1.6);
        let behavior = if mode == 1 {
            Behavior::Still
        } else {
            Behavior::Walk { vx: 0.0, vs }
        };
        let child = r.chance(0.1);
        let a = Actor::pedestrian(0, x, s, behavior, child, r);
        self.add(a);
        if mode == 2 {
            let n = 1 + self.rng.below(2);
            for i in 0..n {
                let x = road.walk_x(side, (t + 0.3 * (i as f32 + 1.0)) % 1.0);
                let child = self.rng.chance(0.25);
                let ds = self.rng.range(-0.5, 0.5);
                let a = Actor::pedestrian(0, x, s + ds, behavior, child, &mut self.rng);
                self.add(a);
            }
        }
    }

    /// A pedestrian (or now and then a cyclist) waiting at a crossing at `s`, crossing when the
    /// ego comes near.
    fn spawn_crosser(
        &mut self,
        s_cw: f32,
        event: Option<(u64, EventKind)>,
        trigger_scale: f32,
    ) -> usize {
        let road = self.drive.road.clone();
        let r = &mut self.rng;
        let side = if r.chance(0.5) { 0 } else { 1 };
        let other = 1 - side;
        let x = road.curb(side) + Road::sign(side) * r.range(0.3, 2.2);
        let to_x = road.curb(other) + Road::sign(other) * r.range(0.6, 2.0);
        let s = s_cw + r.range(0.3, 2.7);
        let cyclist = event.is_none() && r.chance(0.2);
        let speed = if cyclist {
            r.range(2.5, 4.0)
        } else {
            r.range(1.0, 1.6)
        };
        let behavior = Behavior::Cross {
            trigger: r.range(22.0, 60.0) * trigger_scale,
            vx: -Road::sign(side) * speed,
            to_x,
            pause_x: None,
            pause_s: 0.0,
            then_vs: r.sign() * r.range(0.9, 1.5),
            started: false,
        };
        let mut a = if cyclist {
            Actor::cyclist(0, x, s, behavior, r)
        } else {
            let child = r.chance(0.12);
            Actor::pedestrian(0, x, s, behavior, child, r)
        };
        a.face = -Road::sign(side);
        a.v = speed;
        a.event = event;
        self.add(a)
    }

    fn spawn_cones(&mut self, s: f32) {
        let road = self.drive.road.clone();
        let r = &mut self.rng;
        let side = if r.chance(0.75) { 1 } else { 0 };
        let sign = Road::sign(side);
        let n = if r.chance(0.3) {
            1 + r.below(3)
        } else {
            5 + r.below(8)
        };
        let spacing = r.range(2.0, 4.0);
        let base_x = road.edge(side) + sign * r.range(0.3, 1.2);
        let proto_seed = r.next_u64();
        let mut proto_rng = Rng::new(proto_seed);
        let proto = Actor::cone(0, 0.0, 0.0, &mut proto_rng);
        for i in 0..n {
            let x = base_x + sign * (i as f32 * 0.05) + self.rng.range(-0.08, 0.08);
            let cs = s + i as f32 * spacing;
            if self.occupied(x, cs, 0.4, 0.4) {
                continue;
            }
            let mut c = proto.clone();
            c.x = x;
            c.s = cs;
            c.seed = self.rng.next_u64();
            self.add(c);
        }
    }

    fn spawn_traffic(&mut self, dt: f32) {
        let region = self.region_at(self.ego.s + 100.0);
        let road = self.drive.road.clone();
        let cruise = self.drive.cruise;
        let (same_rate, onc_rate, cyc_rate) = match region {
            Region::Urban => (0.07, 0.16, 0.05),
            Region::Suburban => (0.05, 0.1, 0.04),
            Region::Industrial => (0.06, 0.1, 0.015),
            _ => (0.04, 0.09, 0.015),
        };
        let in_tunnel_soon = self.in_tunnel_zone(self.ego.s + 150.0, 0.0);
        // Same direction, ahead.
        if self.rng.chance(same_rate * dt) {
            let lane = self.rng.below(road.own_lanes as u32) as u8;
            let x = road.own_lane(lane);
            let s = self.ego.s + self.rng.range(110.0, 170.0);
            if !self.occupied(x, s, 15.0, 1.0) {
                let v = cruise * self.rng.range(0.85, 1.15);
                let a = self.make_vehicle(x, s, 1.0, v);
                self.add(a);
            }
        }
        // Overtaking in a second own lane, from behind.
        if road.own_lanes > 1 && self.rng.chance(0.03 * dt) {
            let x = road.own_lane(0);
            let s = self.ego.s - 22.0;
            if !self.occupied(x, s, 12.0, 1.0) {
                let v = cruise + self.rng.range(3.0, 7.0);
                let a = self.make_vehicle(x, s, 1.0, v);
                self.add(a);
            }
        }
        // Oncoming.
        if self.rng.chance(onc_rate * dt) {
            let lane = self.rng.below(road.onc_lanes as u32) as u8;
            let x = road.onc_lane(lane);
            let s = self.ego.s + self.rng.range(170.0, 220.0);
            if !self.occupied(x, s, 15.0, 1.0) {
                let v = cruise * self.rng.range(0.85, 1.15);
                let a = self.make_vehicle(x, s, -1.0, v);
                self.add(a);
            }
        }
        // Cyclists along the right edge (now and then oncoming on the left).
        if !in_tunnel_soon && self.rng.chance(cyc_rate * dt) {
            let (side, dir) = if self.rng.chance(0.8) {
                (1, 1.0)
            } else {
                (0, -1.0)
            };
            let x = road.edge(side) - Road::sign(side) * 0.4;
            let s = self.ego.s + self.rng.range(50.0, 110.0);
            if !self.occupied(x, s, 6.0, 0.6) {
                let cruise = self.rng.range(3.5, 7.0);
                let mut a = Actor::cyclist(0, x, s, Behavior::Drive { dir, cruise }, &mut self.rng);
                a.v = cruise;
                self.add(a);
            }
        }
    }

    fn make_vehicle(&mut self, x: f32, s: f32, dir: f32, cruise: f32) -> Actor {
        let r = &mut self.rng;
        let b = Behavior::Drive { dir, cruise };
        let mut a = match r.weighted(&[0.7, 0.14, 0.16]) {
            0 => Actor::car(0, x, s, b, r),
            1 => Actor::truck(0, x, s, b, r),
            _ => Actor::bus(0, x, s, b, r),
        };
        a.v = cruise;
        a
    }

    fn update_signal(&mut self, live: bool) {
        if !live || !self.drive.stops || self.signal.is_some() || self.t < self.next_stop_t {
            return;
        }
        self.next_stop_t = self.t + self.rng.exp(75.0) as f64 + 20.0;
        let s = self.ego.s + (self.ego.v * self.ego.v / 4.0).max(40.0) + 10.0;
        if self.in_tunnel_zone(s, 30.0) || self.near_crossing(s, 8.0) {
            return;
        }
        let red_s = self.rng.range(8.0, 25.0) as f64;
        let travel = ((s - self.ego.s) / self.ego.v.max(3.0)) as f64;
        self.signal = Some(Signal {
            s,
            red_until: self.t + travel + red_s,
        });
        let road = self.drive.road.clone();
        for side in 0..2 {
            let seed = self.rng.next_u64();
            self.items.push(Item {
                s0: s - 0.5,
                s1: s - 0.5,
                x: road.curb(side) + Road::sign(side) * 0.6,
                side,
                seed,
                kind: ItemKind::SignalPole,
            });
        }
        self.drive.crosswalks.push(s + 1.0);
        if !self.boring() {
            let n = self.rng.below(5);
            for _ in 0..n {
                self.spawn_crosser(s + 1.0, None, 0.9);
            }
        }
    }

    /// Distance to the nearest thing ahead in a corridor and its speed along `dir`.
    fn lead(&self, me: Option<usize>, x: f32, front: f32, dir: f32, half_w: f32) -> (f32, f32) {
        let mut best = (f32::INFINITY, 0.0f32);
        for (j, a) in self.actors.iter().enumerate() {
            if Some(j) == me || (a.x - x).abs() >= half_w + a.width * 0.5 {
                continue;
            }
            let d = (a.s - front) * dir - a.length * 0.5;
            if d < -1.5 || d >= best.0 {
                continue;
            }
            let (_, vs) = a.velocity();
            best = (d.max(0.0), vs * dir);
        }
        if me.is_some() && (self.ego.x - x).abs() < half_w + 0.9 {
            let d = (self.ego.s - 0.25 - front) * dir - 2.25;
            if d > -1.5 && d < best.0 {
                best = (d.max(0.0), self.ego.v * dir);
            }
        }
        if dir > 0.0 {
            if let Some(sig) = self.signal {
                if self.t < sig.red_until {
                    let d = sig.s - front;
                    if d > -1.0 && d < best.0 {
                        best = (d.max(0.0), 0.0);
                    }
                }
            }
        }
        best
    }

    fn follow(v: f32, cruise: f32, lead: (f32, f32), dt: f32) -> f32 {
        let (gap, v_lead) = lead;
        let v_lead = v_lead.max(0.0);
        let mut v_des = cruise;
        if gap.is_finite() {
            let want = 3.0 + 1.2 * v_lead;
            v_des = v_des.min((v_lead + (gap - want) * 0.6).max(0.0));
            if gap < 2.0 {
                v_des = 0.0;
            }
        }
        (v + (v_des - v).clamp(-9.0 * dt, 2.2 * dt)).max(0.0)
    }

    fn move_ego(&mut self, dt: f32) {
        let front = self.ego.s + EGO_FRONT;
        let lead = self.lead(None, self.ego.x, front, 1.0, EGO_HALF_W);
        self.ego.v = Self::follow(self.ego.v, self.drive.cruise, lead, dt);
        // Never wait forever: after a long stop that no red light explains, whatever stands in
        // the way moves off (a safety net; the scenarios are laid out to avoid it).
        let red = self
            .signal
            .is_some_and(|s| self.t < s.red_until && s.s > self.ego.s);
        if self.ego.v < 0.2 && !red {
            self.stuck_s += dt;
            if self.stuck_s > STUCK_LIMIT_S {
                let (x, s) = (self.ego.x, self.ego.s);
                self.actors.retain(|a| {
                    let z = a.s - s;
                    !((a.x - x).abs() < EGO_HALF_W + a.width * 0.5 + 0.5
                        && z > 0.0
                        && z < 25.0 + a.length)
                });
                self.stuck_s = 0.0;
            }
        } else {
            self.stuck_s = 0.0;
        }
        let ds = self.ego.v * dt;
        self.ego.s += ds;
        self.ego.heading += self.curvature() * ds;
    }

    fn move_actors(&mut self, dt: f32) {
        let ego_s = self.ego.s;
        for i in 0..self.actors.len() {
            let a = &self.actors[i];
            let mut behavior = a.behavior;
            let mut v = a.v;
            match &mut behavior {
                Behavior::Drive { dir, cruise } => {
                    let front = a.s + *dir * a.length * 0.5;
                    let half_w = (a.width * 0.5).max(0.5);
                    let lead = self.lead(Some(i), a.x, front, *dir, half_w);
                    v = Self::follow(v, *cruise, lead, dt);
                }
                Behavior::Cross {
                    trigger,
                    started,
                    vx,
                    to_x,
                    pause_x,
                    pause_s,
                    then_vs,
                } => {
                    if !*started && a.s - ego_s < *trigger {
                        *started = true;
                    }
                    if let Some(px) = *pause_x {
                        if (a.x - px) * *vx >= 0.0 {
                            *pause_s -= dt;
                            if *pause_s <= 0.0 {
                                *pause_x = None;
                            }
                        }
                    }
                    if *started && (a.x - *to_x) * *vx >= 0.0 {
                        behavior = Behavior::Walk {
                            vx: 0.0,
                            vs: *then_vs,
                        };
                    }
                }
                _ => {}
            }
            let a = &mut self.actors[i];
            a.behavior = behavior;
            a.v = v;
            let (vx, vs) = a.velocity();
            a.x += vx * dt;
            a.s += vs * dt;
            let speed = (vx * vx + vs * vs).sqrt();
            if vx.abs() > 0.05 {
                a.face = vx.signum();
            }
            // Gait: about one stride per 1.4 m walked (pedalling: per 2.2 m ridden).
            let stride = match a.class {
                Class::Cyclist => 2.2,
                Class::Animal => 1.8,
                _ => 1.4,
            };
            a.phase =
                (a.phase + speed * dt / stride * std::f32::consts::TAU) % std::f32::consts::TAU;
        }
    }

    // ----- events -------------------------------------------------------------------------------

    fn schedule_events(&mut self) {
        for (i, kind) in KINDS.iter().enumerate() {
            if self.t < self.sched.next_t[i] {
                continue;
            }
            let done = if self.boring() && *kind != EventKind::Boring {
                false
            } else {
                match kind {
                    EventKind::RareClass => self.inject_rare(),
                    EventKind::Occlusion => self.inject_occlusion(),
                    EventKind::Crowd => self.inject_crowd(),
                    EventKind::NovelScenery => self.inject_novel(),
                    EventKind::Boring => self.inject_boring(),
                }
            };
            self.sched.next_t[i] = if done {
                self.t + self.rng.exp(interval(rate_of(&self.rates, *kind)) as f32) as f64
            } else {
                self.t + 3.0
            };
        }
    }

    fn new_event_id(&mut self) -> u64 {
        let id = self.sched.next_id;
        self.sched.next_id += 1;
        id
    }

    /// Whether the stretch `[s0, s1]` of road is free for an event (no tunnel).
    fn open_road(&self, s0: f32, s1: f32) -> bool {
        !self
            .drive
            .tunnels
            .iter()
            .any(|&(a, b)| s1 > a - 30.0 && s0 < b + 30.0)
    }

    fn inject_rare(&mut self) -> bool {
        let s = self.ego.s + self.rng.range(75.0, 110.0);
        if !self.open_road(s - 20.0, s + 20.0) || self.near_crossing(s, 10.0) {
            return false;
        }
        let id = self.new_event_id();
        let road = self.drive.road.clone();
        let side = if self.rng.chance(0.5) { 0 } else { 1 };
        let other = 1 - side;
        let n = if self.rng.chance(0.25) { 2 } else { 1 };
        let variant_seed = self.rng.next_u64();
        for k in 0..n {
            let x = road.curb(side) + Road::sign(side) * self.rng.range(1.0, 4.0);
            let speed = self.rng.range(0.8, 1.6);
            let pause = self.rng.chance(0.45);
            let pause_x = pause.then(|| self.rng.range(road.edge(0), road.edge(1)));
            let behavior = Behavior::Cross {
                trigger: self.rng.range(30.0, 60.0),
                vx: -Road::sign(side) * speed,
                to_x: road.curb(other) + Road::sign(other) * 8.0,
                pause_x,
                pause_s: self.rng.range(2.0, 6.0),
                then_vs: 0.0,
                started: false,
            };
            // A pair is the same species.
            let mut vr = Rng::new(variant_seed);
            let mut a = Actor::animal(0, x, s + k as f32 * 2.5, behavior, &mut vr);
            a.seed = self.rng.next_u64();
            a.phase = self.rng.range(0.0, std::f32::consts::TAU);
            if k == 1 {
                a.length *= 0.75;
                a.height *= 0.75;
                a.x += Road::sign(side) * 1.5;
            }
            a.face = -Road::sign(side);
            a.v = speed;
            a.event = Some((id, EventKind::RareClass));
            self.add(a);
        }
        true
    }

    fn inject_occlusion(&mut self) -> bool {
        let s_v = self.ego.s + self.rng.range(60.0, 85.0);
        if !self.open_road(s_v - 20.0, s_v + 20.0) || self.near_crossing(s_v, 12.0) {
            return false;
        }
        let id = self.new_event_id();
        let road = self.drive.road.clone();
        let side = if road.parking[1] || !road.parking[0] {
            1
        } else {
            0
        };
        let sign = Road::sign(side);
        // Cars hide all but the head and shoulders of an adult; vans, trucks and buses all of a
        // person until they step out.
        let kind = self.rng.weighted(&[0.55, 0.25, 0.2]);
        let mut v = match kind {
            0 => Actor::car(0, 0.0, s_v, Behavior::Still, &mut self.rng),
            1 => Actor::truck(0, 0.0, s_v, Behavior::Still, &mut self.rng),
            _ => Actor::bus(0, 0.0, s_v, Behavior::Still, &mut self.rng),
        };
        // In the parking lane, or without one half on the sidewalk, clear of the travel lane.
        let x = if road.parking[side] {
            road.park_x(side)
        } else {
            road.edge(side) + sign * (v.width * 0.5 + 0.15)
        };
        v.x = x;
        // Clear the parking spot.
        let (lo, hi) = (s_v - v.length * 0.5 - 3.0, s_v + v.length * 0.5 + 3.0);
        self.actors.retain(|a| {
            a.event.is_some()
                || (a.x - x).abs() > 1.6
                || a.s + a.length * 0.5 < lo
                || a.s - a.length * 0.5 > hi
        });
        v.face = 1.0;
        let half = v.length * 0.5;
        self.add(v);
        let child = self.rng.chance(0.25);
        let behavior = Behavior::Cross {
            trigger: self.rng.range(18.0, 40.0),
            vx: -sign * self.rng.range(0.6, 1.2),
            to_x: road.curb(1 - side) + Road::sign(1 - side) * 1.0,
            pause_x: None,
            pause_s: 0.0,
            then_vs: self.rng.sign() * 1.2,
            started: false,
        };
        let ps = s_v + half + self.rng.range(0.35, 0.8);
        // From well behind the vehicle to partly beside it on the road side.
        let w = self.actors.last().map_or(1.8, |a| a.width);
        let px = x + sign * self.rng.range(-(w * 0.5 - 0.15), 0.5);
        let mut p = Actor::pedestrian(0, px, ps, behavior, child, &mut self.rng);
        p.face = -Road::sign(side);
        p.v = 1.2;
        p.event = Some((id, EventKind::Occlusion));
        self.add(p);
        true
    }

    fn inject_crowd(&mut self) -> bool {
        let s_cw = self.ego.s + self.rng.range(60.0, 80.0);
        if !self.open_road(s_cw - 20.0, s_cw + 20.0)
            || self.near_crossing(s_cw, 15.0)
            || self.signal.is_some_and(|sig| (sig.s - s_cw).abs() < 40.0)
        {
            return false;
        }
        let id = self.new_event_id();
        self.drive.crosswalks.push(s_cw);
        let n = 12 + self.rng.below(15);
        for _ in 0..n {
            let i = self.spawn_crosser(s_cw, Some((id, EventKind::Crowd)), 0.0);
            // The whole crowd starts within a few seconds when the ego is about 40 m away.
            let t = 38.0 + self.rng.range(-4.0, 6.0);
            if let Behavior::Cross { trigger, .. } = &mut self.actors[i].behavior {
                *trigger = t;
            }
        }
        // Parked cars on the crossing would stand in the crowd.
        self.actors.retain(|a| {
            a.event.is_some()
                || !(a.behavior == Behavior::Still
                    && a.class.is_vehicle()
                    && (a.s - s_cw).abs() < 8.0)
        });
        true
    }

    fn inject_novel(&mut self) -> bool {
        let s0 = self.ego.s + 100.0;
        let len = self.rates.novel_scenery_s * self.drive.cruise;
        if !self.open_road(s0, s0 + len) || self.drive.novel.iter().any(|n| n.s1 > self.ego.s) {
            return false;
        }
        let id = self.new_event_id();
        let choices: Vec<Region> = [Region::Snow, Region::Desert, Region::Industrial]
            .into_iter()
            .filter(|&r| r != self.drive.region)
            .collect();
        let region = self.rng.pick(&choices);
        self.drive.novel.push(Novel {
            s0,
            s1: s0 + len,
            region,
            id,
        });
        // Scenery not yet generated there will be of the new kind; what was, goes.
        self.items
            .retain(|i| i.s1 < s0 || matches!(i.kind, ItemKind::SignalPole));
        for side in 0..2 {
            self.big_cursor[side] = self.big_cursor[side].min(s0);
            self.small_cursor[side] = self.small_cursor[side].min(s0);
        }
        true
    }

    fn inject_boring(&mut self) -> bool {
        if self.boring() {
            return false;
        }
        let id = self.new_event_id();
        self.sched.boring = Some((id, self.t + self.rates.boring_s as f64));
        true
    }
}

fn rate_of(r: &EventRates, k: EventKind) -> f32 {
    match k {
        EventKind::RareClass => r.rare_class_per_hour,
        EventKind::Occlusion => r.occlusion_per_hour,
        EventKind::Crowd => r.crowd_per_hour,
        EventKind::NovelScenery => r.novel_scenery_per_hour,
        EventKind::Boring => r.boring_per_hour,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(seed: u64) -> World {
        World::new(seed, EventRates::default(), ConditionOverrides::default())
    }

    #[test]
    fn same_seed_same_world() {
        let (mut a, mut b) = (world(3), world(3));
        for _ in 0..3000 {
            a.step(1.0 / 30.0);
            b.step(1.0 / 30.0);
        }
        assert_eq!(a.ego.s, b.ego.s);
        assert_eq!(a.actors.len(), b.actors.len());
        let c = {
            let mut c = world(4);
            for _ in 0..3000 {
                c.step(1.0 / 30.0);
            }
            c
        };
        assert_ne!(a.ego.s, c.ego.s);
    }

    #[test]
    fn drives_change_and_traffic_keeps_moving() {
        let mut w = world(11);
        let mut drives = std::collections::HashSet::new();
        let mut stopped_frames = 0;
        let frames = 30 * 600;
        for _ in 0..frames {
            w.step(1.0 / 30.0);
            drives.insert(w.drive.id);
            if w.ego.v < 0.1 {
                stopped_frames += 1;
            }
            assert!(w.actors.len() < 400, "population stays bounded");
        }
        assert!(drives.len() >= 4, "{} drives in 10 minutes", drives.len());
        // The ego stops now and then but mostly drives.
        assert!(
            stopped_frames > 0 && stopped_frames < frames / 2,
            "{stopped_frames}"
        );
    }

    #[test]
    fn road_layout_is_ordered() {
        let w = world(5);
        let r = &w.drive.road;
        assert!(r.edge(0) < 0.0 && r.edge(1) > 0.0);
        assert!(r.curb(0) <= r.edge(0) && r.curb(1) >= r.edge(1));
        assert!(r.walk_outer(1) > r.curb(1));
        assert!(
            r.walk_x(1, 0.5) > r.curb(1) && r.walk_x(1, 0.5) < r.walk_outer(1).max(r.curb(1) + 2.5)
        );
    }
}
