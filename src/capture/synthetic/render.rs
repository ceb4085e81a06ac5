//! One frame: background, then roadside items and instances far to near (each instance painting
//! its id into the id buffer as it paints its colours), halos and camera effects; then the ground
//! truth read back from the id buffer.

use super::actors::{Actor, Class};
use super::camera::Camera;
use super::effects::Effects;
use super::raster::{Canvas, Scratch, Texture};
use super::rng::{hash2, Rng};
use super::scenery::{Glow, Scene};
use super::shapes::{near_z, Draw};
use super::world::{ItemKind, World};
use crate::capture::{ActiveEvent, EventKind, GroundTruth, TruthInstance};
use crate::geometry::{Mask, PixelRect};
use std::collections::BTreeMap;

/// A crowd event is active in frames showing at least this many of its members.
pub(crate) const CROWD_MIN_VISIBLE: usize = 8;
/// An occlusion event is active while its pedestrian shows at most this share of itself.
pub(crate) const OCCLUDED_MAX_VISIBLE: f32 = 0.85;

/// What the renderer knows about one painted instance.
#[derive(Debug, Clone)]
pub(crate) struct Painted {
    pub actor: usize,
    pub id: u16,
    /// Pixels it covered right after it was painted (before nearer things).
    pub full_px: u32,
    pub bounds: [usize; 4],
    /// Its pixels right after painting, inside `bounds` (kept for event actors only).
    snapshot: Option<Vec<bool>>,
}

pub(crate) struct Renderer {
    w: usize,
    h: usize,
    seed: u64,
    min_px: u32,
    ids: Vec<u16>,
    tex: Texture,
    scratch: Scratch,
    effects: Effects,
    glows: Vec<Glow>,
    pub painted: Vec<Painted>,
}

impl Renderer {
    pub fn new(width: u32, height: u32, seed: u64, min_px: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        Renderer {
            w,
            h,
            seed,
            min_px,
            ids: vec![0; w * h],
            tex: Texture::new(),
            scratch: Scratch::default(),
            effects: Effects::new(),
            glows: Vec::new(),
            painted: Vec::new(),
        }
    }

    /// The id buffer of the last frame: 0 background, `k` the k-th painted instance.
    #[cfg(test)]
    pub fn ids(&self) -> &[u16] {
        &self.ids
    }

    /// Paints `world` into `rgb` (`w*h*3` bytes) and returns what it shows.
    /// The frame size it paints, width and height.
    pub fn size(&self) -> (u32, u32) {
        (self.w as u32, self.h as u32)
    }

    pub fn render(
        &mut self,
        world: &World,
        rgb: &mut [u8],
        frame: u64,
        effects: bool,
    ) -> GroundTruth {
        let (w, h) = (self.w, self.h);
        let cam = Camera::new(w as u32, h as u32, world.curvature(), world.ego.x);
        let look = world.look();
        self.ids.fill(0);
        self.glows.clear();
        self.painted.clear();
        let ego_s = world.ego.s;
        let mut scene = Scene::new(world, cam, look.clone(), world.t as f32);
        let inside = world.tunnel_at(ego_s);
        let ahead = world.tunnel_ahead(ego_s);
        let road = &world.drive.road;
        let (wl, wr) = (road.edge(0) - 1.0, road.edge(1) + 1.0);
        {
            let mut c = Canvas::new(w, h, rgb, &mut self.ids, &self.tex, &mut self.scratch);
            c.id = None;
            if inside.is_none() {
                scene.sky(&mut c);
                scene.skyline(&mut c);
                let y0 = (cam.yh.floor().max(0.0) as usize).min(h);
                scene.ground(&mut c, y0, h, 0, w, f32::INFINITY);
            }
            // Buildings beyond a tunnel entrance ahead go behind its portal, nearer ones in front.
            let split = ahead.map_or(f32::INFINITY, |(t0, _)| t0);
            if inside.is_none() {
                scene.buildings(&mut c, split, true);
            }
            scene.tunnel(&mut c);
            if inside.is_none() {
                scene.buildings(&mut c, split, false);
            }

            // Roadside items and instances, far to near.
            enum Thing {
                Item(usize),
                Actor(usize),
            }
            let mut things: Vec<(f32, u64, Thing)> = Vec::new();
            for (i, it) in world.items.iter().enumerate() {
                if matches!(it.kind, ItemKind::Building { .. }) {
                    continue;
                }
                let z = it.s0 - ego_s;
                if z > 0.0
                    && z < 400.0
                    && !hidden_by_tunnel(inside, ahead, ego_s, it.s0, it.x, wl, wr)
                {
                    things.push((z, it.seed, Thing::Item(i)));
                }
            }
            for (i, a) in world.actors.iter().enumerate() {
                let z = near_z(a, ego_s);
                if z + a.length > 0.0
                    && z < 320.0
                    && !hidden_by_tunnel(inside, ahead, ego_s, a.s, a.x, wl, wr)
                {
                    things.push((z, a.track, Thing::Actor(i)));
                }
            }
            things.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut draw = Draw::new(&mut c, &cam, &look, &mut self.glows, ego_s);
            let mut next_id: u16 = 0;
            for (_, _, t) in &things {
                match *t {
                    Thing::Item(i) => {
                        draw.c.id = Some(0);
                        scene.item(draw.c, &world.items[i], draw.glows);
                        draw.c.take_bounds();
                    }
                    Thing::Actor(i) => {
                        if next_id == u16::MAX {
                            continue;
                        }
                        next_id += 1;
                        draw.c.id = Some(next_id);
                        draw.actor(&world.actors[i]);
                        let Some(bounds) = draw.c.take_bounds() else {
                            continue;
                        };
                        let [x0, y0, x1, y1] = bounds;
                        let mut full = 0u32;
                        let keep = world.actors[i].event.is_some();
                        let mut snap = Vec::new();
                        for y in y0..y1 {
                            for &v in &draw.c.ids[y * w + x0..y * w + x1] {
                                let on = v == next_id;
                                full += on as u32;
                                if keep {
                                    snap.push(on);
                                }
                            }
                        }
                        self.painted.push(Painted {
                            actor: i,
                            id: next_id,
                            full_px: full,
                            bounds,
                            snapshot: keep.then_some(snap),
                        });
                    }
                }
            }
        }
        let truth = self.truth(world);
        if effects {
            let fx_rng = &mut Rng::new(hash2(self.seed ^ 0x00EF_FEC7, frame));
            self.effects.glows(rgb, w, h, &self.glows);
            if look.rain {
                self.effects.rain(rgb, w, h, fx_rng);
            }
            if look.snowfall {
                self.effects.snowfall(rgb, w, h, fx_rng);
            }
            if look.blur > 0.0 {
                self.effects.zoom_blur(rgb, w, h, cam.cx, cam.yh, look.blur);
            }
            self.effects.noise(rgb, w, look.noise_sigma, fx_rng);
        }
        truth
    }

    fn truth(&self, world: &World) -> GroundTruth {
        let (w, h) = (self.w, self.h);
        let mut instances = Vec::new();
        let mut events: Vec<ActiveEvent> = world.stretch_events();
        let mut crowd: BTreeMap<u64, usize> = BTreeMap::new();
        // Class of each painted id, for occluders (ids of instances that drew nothing have none).
        let max_id = self.painted.last().map_or(0, |p| p.id as usize);
        let mut class_of: Vec<Option<Class>> = vec![None; max_id + 1];
        for p in &self.painted {
            class_of[p.id as usize] = Some(world.actors[p.actor].class);
        }
        for p in &self.painted {
            let a: &Actor = &world.actors[p.actor];
            let [x0, y0, x1, y1] = p.bounds;
            let (mut n, mut tx0, mut ty0, mut tx1, mut ty1) = (0u32, usize::MAX, usize::MAX, 0, 0);
            for y in y0..y1 {
                let row = &self.ids[y * w + x0..y * w + x1];
                let mut any = false;
                for (i, &v) in row.iter().enumerate() {
                    if v == p.id {
                        n += 1;
                        tx0 = tx0.min(x0 + i);
                        tx1 = tx1.max(x0 + i + 1);
                        any = true;
                    }
                }
                if any {
                    ty0 = ty0.min(y);
                    ty1 = y + 1;
                }
            }
            if n < self.min_px || n == 0 {
                continue;
            }
            let rect = PixelRect::new(
                tx0 as u32,
                ty0 as u32,
                (tx1 - tx0) as u32,
                (ty1 - ty0) as u32,
            );
            let mask = Mask::from_fn(w as u32, h as u32, rect, |x, y| {
                self.ids[y as usize * w + x as usize] == p.id
            });
            let visible_fraction = (n as f32 / p.full_px.max(1) as f32).min(1.0);
            if let Some((id, kind)) = a.event {
                match kind {
                    EventKind::RareClass => events.push(ActiveEvent { id, kind }),
                    EventKind::Crowd => *crowd.entry(id).or_default() += 1,
                    EventKind::Occlusion if visible_fraction <= OCCLUDED_MAX_VISIBLE => {
                        if let Some(snap) = &p.snapshot {
                            let occ = self.main_occluder(p, snap);
                            if occ
                                .and_then(|o| class_of.get(o as usize).copied().flatten())
                                .is_some_and(|c| c.is_vehicle())
                            {
                                events.push(ActiveEvent { id, kind });
                            }
                        }
                    }
                    _ => {}
                }
            }
            instances.push(TruthInstance {
                class_id: a.class.id(),
                track_id: a.track,
                bbox: rect.to_bbox(),
                mask,
                visible_fraction,
            });
        }
        let _ = h;
        for (id, n) in crowd {
            if n >= CROWD_MIN_VISIBLE {
                events.push(ActiveEvent {
                    id,
                    kind: EventKind::Crowd,
                });
            }
        }
        events.sort_by_key(|e| (e.kind, e.id));
        events.dedup();
        instances.sort_by_key(|i| i.track_id);
        GroundTruth { instances, events }
    }

    /// The id covering most of what `p` lost after it was painted (0: scenery).
    fn main_occluder(&self, p: &Painted, snap: &[bool]) -> Option<u16> {
        let [x0, y0, x1, y1] = p.bounds;
        let mut count: BTreeMap<u16, u32> = BTreeMap::new();
        let mut k = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                if snap[k] {
                    let v = self.ids[y * self.w + x];
                    if v != p.id {
                        *count.entry(v).or_default() += 1;
                    }
                }
                k += 1;
            }
        }
        count
            .into_iter()
            .max_by_key(|&(id, n)| (n, std::cmp::Reverse(id)))
            .map(|(id, _)| id)
    }
}

/// Whether a tunnel's walls hide something at road position `s`, lateral `x`: beyond the exit
/// while inside, or inside the rock beside the opening while the tunnel is ahead.
fn hidden_by_tunnel(
    inside: Option<(f32, f32)>,
    ahead: Option<(f32, f32)>,
    ego_s: f32,
    s: f32,
    x: f32,
    wl: f32,
    wr: f32,
) -> bool {
    if let Some((_, t1)) = inside {
        return s > t1 || x < wl || x > wr;
    }
    if let Some((t0, _)) = ahead {
        if t0 - ego_s < 350.0 && s > t0 {
            return x < wl || x > wr;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::config::{ConditionOverrides, EventRates};
    use super::*;

    fn world_at(seed: u64, steps: usize) -> World {
        let mut w = World::new(seed, EventRates::default(), ConditionOverrides::default());
        for _ in 0..steps {
            w.step(1.0 / 15.0);
        }
        w
    }

    /// Every instance's mask is exactly the pixels whose id is that instance's, its visible
    /// fraction is what is left of the pixels it had when painted alone, and the pixels it lost
    /// are covered by something nearer.
    #[test]
    fn masks_match_the_id_buffer_and_solo_renders() {
        let (wd, ht) = (320u32, 180u32);
        let mut checked = 0;
        let mut occluded = 0;
        for (seed, steps) in [(1u64, 40usize), (2, 300), (3, 900), (4, 1500)] {
            let world = world_at(seed, steps);
            let mut r = Renderer::new(wd, ht, seed, 1);
            let mut rgb = vec![0u8; (wd * ht * 3) as usize];
            let truth = r.render(&world, &mut rgb, 0, false);
            let painted = r.painted.clone();
            let ids = r.ids().to_vec();
            for inst in &truth.instances {
                let p = painted
                    .iter()
                    .find(|p| world.actors[p.actor].track == inst.track_id)
                    .unwrap();
                // Mask == id buffer.
                for y in 0..ht {
                    for x in 0..wd {
                        let id = ids[(y * wd + x) as usize];
                        assert_eq!(
                            inst.mask.get(x, y),
                            id == p.id,
                            "track {} at ({x},{y})",
                            inst.track_id
                        );
                    }
                }
                // Alone in the world (no other actor, no roadside item), it covers full_px.
                let mut solo = world.clone();
                solo.actors = vec![world.actors[p.actor].clone()];
                solo.items
                    .retain(|i| matches!(i.kind, ItemKind::Building { .. }));
                let mut rs = Renderer::new(wd, ht, seed, 1);
                let mut rgb2 = vec![0u8; rgb.len()];
                let t2 = rs.render(&solo, &mut rgb2, 0, false);
                let alone = &t2.instances[0];
                assert_eq!(alone.mask.area(), p.full_px as u64);
                assert!(alone.visible_fraction > 0.999);
                // Visible pixels are a subset of the solo silhouette; the rest is covered by an
                // instance painted later (nearer) or by a roadside item.
                assert_eq!(inst.mask.intersection(&alone.mask), inst.mask.area());
                let expect = inst.mask.area() as f32 / alone.mask.area() as f32;
                assert!((inst.visible_fraction - expect).abs() < 1e-6);
                if inst.visible_fraction < 0.99 {
                    occluded += 1;
                }
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} instances checked");
        assert!(occluded >= 1, "no occlusion in the sample");
    }

    #[test]
    fn instances_paint_their_own_colours() {
        // The pixels of a mask were painted by that instance: with effects off, re-rendering the
        // frame with that instance removed changes (nearly) every pixel of its mask.
        let (wd, ht) = (320u32, 180u32);
        let mut tested = 0;
        for (seed, steps) in [(5u64, 450usize), (6, 200), (7, 700)] {
            let world = world_at(seed, steps);
            let mut r = Renderer::new(wd, ht, seed, 1);
            let mut rgb = vec![0u8; (wd * ht * 3) as usize];
            let truth = r.render(&world, &mut rgb, 0, false);
            for inst in truth.instances.iter().filter(|i| i.mask.area() >= 25) {
                let mut without = world.clone();
                without.actors.retain(|a| a.track != inst.track_id);
                let mut rgb2 = vec![0u8; rgb.len()];
                Renderer::new(wd, ht, seed, 1).render(&without, &mut rgb2, 0, false);
                let (mut changed, mut outside_changed) = (0u64, 0u64);
                for y in 0..ht {
                    for x in 0..wd {
                        let i = ((y * wd + x) * 3) as usize;
                        let diff = rgb[i..i + 3] != rgb2[i..i + 3];
                        if inst.mask.get(x, y) {
                            changed += diff as u64;
                        } else {
                            outside_changed += diff as u64;
                        }
                    }
                }
                assert!(
                    changed as f32 >= 0.9 * inst.mask.area() as f32,
                    "track {}: {changed}/{}",
                    inst.track_id,
                    inst.mask.area()
                );
                assert_eq!(
                    outside_changed, 0,
                    "track {} changed pixels outside its mask",
                    inst.track_id
                );
                tested += 1;
            }
        }
        assert!(tested >= 2);
    }
}
