//! The moving (and parked) things the ground truth is about: their classes, sizes, colours and
//! behaviour. Drawing them is `shapes.rs`; moving them is `world.rs`.

use super::rng::Rng;
use crate::capture::EventKind;

/// The classes of the synthetic stream, in class-id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Class {
    Car = 0,
    Truck = 1,
    Bus = 2,
    Pedestrian = 3,
    Cyclist = 4,
    TrafficCone = 5,
    Animal = 6,
}

impl Class {
    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn is_vehicle(self) -> bool {
        matches!(self, Class::Car | Class::Truck | Class::Bus)
    }
}

/// What an actor does each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Behavior {
    /// Drives along the road (`dir` +1: the ego's direction, -1: oncoming) at up to `cruise`
    /// metres per second, keeping its distance to whatever is ahead in its lane.
    Drive { dir: f32, cruise: f32 },
    /// Does not move (parked vehicles, cones, people standing).
    Still,
    /// Walks with a constant velocity.
    Walk { vx: f32, vs: f32 },
    /// Waits until the ego is nearer than `trigger` metres, then crosses the road sideways at
    /// `vx` until it reaches `to_x` (pausing `pause_s` seconds on the way when `pause_x` is
    /// reached), then walks along at `then_vs`.
    Cross {
        trigger: f32,
        vx: f32,
        to_x: f32,
        pause_x: Option<f32>,
        pause_s: f32,
        then_vs: f32,
        started: bool,
    },
}

/// One instance in the world.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub track: u64,
    pub class: Class,
    /// Centre of the footprint: metres right of the centre line, metres along the road.
    pub x: f32,
    pub s: f32,
    /// Current speed along the road (Drive) or walking speed (for the gait).
    pub v: f32,
    /// Extent along the road (vehicles) or along the direction faced in side view.
    pub length: f32,
    pub width: f32,
    pub height: f32,
    /// Which way a side view faces: +1 towards screen right.
    pub face: f32,
    pub colors: [[u8; 3]; 4],
    pub variant: u8,
    pub seed: u64,
    /// Gait / pedalling phase, radians.
    pub phase: f32,
    pub behavior: Behavior,
    /// The injected event this actor belongs to.
    pub event: Option<(u64, EventKind)>,
}

impl Actor {
    /// Velocity (lateral, along) in metres per second.
    pub fn velocity(&self) -> (f32, f32) {
        match self.behavior {
            Behavior::Drive { dir, .. } => (0.0, dir * self.v),
            Behavior::Walk { vx, vs } => (vx, vs),
            Behavior::Cross {
                vx,
                started,
                pause_x,
                ..
            } => {
                let pausing = pause_x.is_some_and(|px| (self.x - px) * vx >= 0.0);
                if started && !pausing {
                    (vx, 0.0)
                } else {
                    (0.0, 0.0)
                }
            }
            Behavior::Still => (0.0, 0.0),
        }
    }
}

const CAR_COLORS: [[u8; 3]; 11] = [
    [236, 236, 232],
    [24, 24, 28],
    [168, 170, 174],
    [96, 98, 104],
    [170, 28, 30],
    [34, 70, 150],
    [22, 34, 74],
    [40, 84, 58],
    [196, 180, 150],
    [226, 184, 36],
    [120, 34, 44],
];
const CAR_WEIGHTS: [f32; 11] = [
    0.22, 0.18, 0.16, 0.12, 0.08, 0.07, 0.05, 0.03, 0.03, 0.03, 0.03,
];
const CLOTHES: [[u8; 3]; 14] = [
    [30, 30, 34],
    [200, 200, 196],
    [160, 40, 40],
    [40, 70, 140],
    [60, 110, 60],
    [220, 180, 60],
    [120, 80, 140],
    [90, 90, 96],
    [210, 110, 40],
    [160, 150, 120],
    [240, 240, 240],
    [80, 50, 40],
    [30, 120, 150],
    [200, 90, 130],
];
const TROUSERS: [[u8; 3]; 6] = [
    [44, 60, 96],
    [28, 28, 32],
    [80, 80, 86],
    [150, 130, 100],
    [60, 50, 40],
    [120, 30, 40],
];
const SKIN: [[u8; 3]; 6] = [
    [236, 196, 170],
    [222, 170, 134],
    [190, 140, 104],
    [150, 100, 70],
    [110, 74, 52],
    [84, 56, 40],
];
const HAIR: [[u8; 3]; 5] = [
    [24, 20, 18],
    [70, 46, 30],
    [150, 110, 60],
    [200, 170, 110],
    [160, 160, 160],
];

fn jitter(rng: &mut Rng, c: [u8; 3], amount: f32) -> [u8; 3] {
    let k = 1.0 + rng.range(-amount, amount);
    c.map(|v| (v as f32 * k).clamp(0.0, 255.0) as u8)
}

impl Actor {
    fn base(track: u64, class: Class, x: f32, s: f32, behavior: Behavior, rng: &mut Rng) -> Self {
        Actor {
            track,
            class,
            x,
            s,
            v: 0.0,
            length: 1.0,
            width: 1.0,
            height: 1.0,
            face: 1.0,
            colors: [[0; 3]; 4],
            variant: 0,
            seed: rng.next_u64(),
            phase: rng.range(0.0, std::f32::consts::TAU),
            behavior,
            event: None,
        }
    }

    /// A car: variant 0 sedan, 1 hatchback, 2 SUV, 3 van.
    pub fn car(track: u64, x: f32, s: f32, behavior: Behavior, rng: &mut Rng) -> Self {
        let mut a = Self::base(track, Class::Car, x, s, behavior, rng);
        a.variant = rng.weighted(&[0.4, 0.25, 0.25, 0.1]) as u8;
        let (l, w, h) = match a.variant {
            0 => (4.6, 1.8, 1.45),
            1 => (4.0, 1.75, 1.48),
            2 => (4.7, 1.9, 1.72),
            _ => (5.0, 1.95, 1.95),
        };
        a.length = l * rng.range(0.94, 1.06);
        a.width = w * rng.range(0.96, 1.04);
        a.height = h * rng.range(0.96, 1.04);
        let c = CAR_COLORS[rng.weighted(&CAR_WEIGHTS)];
        a.colors = [jitter(rng, c, 0.06), [0; 3], [0; 3], [0; 3]];
        a
    }

    /// A box truck: colours are cab, box, chassis.
    pub fn truck(track: u64, x: f32, s: f32, behavior: Behavior, rng: &mut Rng) -> Self {
        let mut a = Self::base(track, Class::Truck, x, s, behavior, rng);
        a.variant = rng.below(2) as u8;
        a.length = rng.range(6.5, 10.0);
        a.width = rng.range(2.4, 2.55);
        a.height = rng.range(3.3, 3.9);
        let cab = rng.pick(&[
            [230, 230, 228],
            [180, 30, 30],
            [30, 60, 130],
            [220, 200, 40],
            [60, 64, 70],
            [30, 100, 60],
        ]);
        let body = rng.pick(&[
            [238, 238, 236],
            [200, 202, 204],
            [236, 236, 236],
            [60, 90, 150],
            [180, 50, 40],
            [214, 170, 60],
        ]);
        a.colors = [
            jitter(rng, cab, 0.05),
            jitter(rng, body, 0.04),
            [34, 34, 36],
            [0; 3],
        ];
        a
    }

    /// A bus: colours are body, stripe.
    pub fn bus(track: u64, x: f32, s: f32, behavior: Behavior, rng: &mut Rng) -> Self {
        let mut a = Self::base(track, Class::Bus, x, s, behavior, rng);
        a.length = rng.range(10.5, 12.8);
        a.width = 2.55;
        a.height = rng.range(3.0, 3.3);
        let (body, stripe) = rng.pick(&[
            ([236, 186, 30], [30, 30, 30]),
            ([200, 40, 40], [240, 240, 240]),
            ([236, 236, 232], [40, 100, 180]),
            ([40, 110, 180], [240, 240, 240]),
            ([60, 140, 70], [230, 230, 230]),
            ([236, 236, 232], [200, 40, 40]),
        ]);
        a.colors = [jitter(rng, body, 0.04), stripe, [0; 3], [0; 3]];
        a
    }

    /// A pedestrian: colours are top, trousers, skin, hair. Variant bit 0: child, bit 1: long
    /// coat, bit 2: backpack.
    pub fn pedestrian(
        track: u64,
        x: f32,
        s: f32,
        behavior: Behavior,
        child: bool,
        rng: &mut Rng,
    ) -> Self {
        let mut a = Self::base(track, Class::Pedestrian, x, s, behavior, rng);
        a.height = if child {
            rng.range(1.05, 1.4)
        } else {
            rng.range(1.55, 1.95)
        };
        a.width = a.height * rng.range(0.26, 0.31);
        a.length = a.width;
        a.variant = child as u8 | ((rng.chance(0.18) as u8) << 1) | ((rng.chance(0.2) as u8) << 2);
        a.colors = [
            {
                let c = rng.pick(&CLOTHES);
                jitter(rng, c, 0.1)
            },
            {
                let c = rng.pick(&TROUSERS);
                jitter(rng, c, 0.1)
            },
            rng.pick(&SKIN),
            rng.pick(&HAIR),
        ];
        a.face = rng.sign();
        a
    }

    /// A cyclist: colours are frame, top, trousers, helmet.
    pub fn cyclist(track: u64, x: f32, s: f32, behavior: Behavior, rng: &mut Rng) -> Self {
        let mut a = Self::base(track, Class::Cyclist, x, s, behavior, rng);
        a.length = 1.75;
        a.width = 0.6;
        a.height = rng.range(1.6, 1.85);
        a.colors = [
            rng.pick(&[
                [200, 30, 30],
                [30, 30, 30],
                [30, 80, 180],
                [230, 230, 230],
                [40, 140, 80],
                [230, 180, 20],
            ]),
            {
                let c = rng.pick(&CLOTHES);
                jitter(rng, c, 0.1)
            },
            {
                let c = rng.pick(&TROUSERS);
                jitter(rng, c, 0.1)
            },
            rng.pick(&[
                [230, 230, 230],
                [220, 40, 40],
                [30, 30, 30],
                [240, 200, 30],
                [40, 90, 200],
            ]),
        ];
        a.face = rng.sign();
        a
    }

    /// A traffic cone (variant 1: tall delineator post).
    pub fn cone(track: u64, x: f32, s: f32, rng: &mut Rng) -> Self {
        let mut a = Self::base(track, Class::TrafficCone, x, s, Behavior::Still, rng);
        a.variant = rng.chance(0.2) as u8;
        a.height = if a.variant == 1 {
            rng.range(0.9, 1.1)
        } else {
            rng.range(0.5, 0.78)
        };
        a.width = if a.variant == 1 { 0.3 } else { a.height * 0.55 };
        a.length = a.width;
        let c = rng.pick(&[[240, 96, 20], [236, 70, 24], [250, 120, 30], [226, 60, 40]]);
        a.colors = [jitter(rng, c, 0.05), [240, 240, 236], [30, 30, 32], [0; 3]];
        a
    }

    /// An animal on or beside the road: variant 0 deer, 1 moose, 2 wild boar; colours are coat,
    /// belly, dark (legs, nose).
    pub fn animal(track: u64, x: f32, s: f32, behavior: Behavior, rng: &mut Rng) -> Self {
        let mut a = Self::base(track, Class::Animal, x, s, behavior, rng);
        a.variant = rng.weighted(&[0.6, 0.2, 0.2]) as u8;
        let (l, h, coat, belly) = match a.variant {
            0 => (1.5, 1.55, [150, 100, 62], [214, 190, 160]),
            1 => (2.6, 2.2, [70, 50, 36], [110, 90, 70]),
            _ => (1.3, 0.95, [72, 62, 54], [100, 90, 80]),
        };
        let k = rng.range(0.85, 1.1);
        a.length = l * k;
        a.height = h * k;
        a.width = a.length * 0.3;
        a.colors = [jitter(rng, coat, 0.1), belly, [40, 32, 28], [0; 3]];
        a.face = rng.sign();
        a
    }
}
