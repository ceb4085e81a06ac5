//! Objects followed from frame to frame by their boxes, so that the cooldown holds back the same
//! lingering object and not the next one of its class ([`Objects`]), and so that class
//! frequencies count objects rather than frames ([`Tracks`]).
//!
//! No appearance model: a box continues the track whose last box is nearest, if its centre is
//! within half the larger box's diagonal, the two boxes differ in area by less than a factor of
//! [`MAX_AREA_RATIO`], and the track was seen less than [`TRACK_GAP`] ago (a missed detection or
//! two do not break a track).

use crate::geometry::BBox;
use std::collections::HashMap;
use std::time::Duration;

/// A track unseen for this long ends.
pub(crate) const TRACK_GAP: Duration = Duration::from_secs(2);
/// Boxes whose areas differ more than this are different objects.
const MAX_AREA_RATIO: f32 = 2.5;

#[derive(Default)]
pub(crate) struct Tracks {
    next_id: u64,
    by_reason: HashMap<String, Vec<Track>>,
}

struct Track {
    id: u64,
    bbox: BBox,
    seen: Duration,
}

impl Tracks {
    /// The track of `subject` for `reason` at `t`, a new one if none continues.
    #[cfg(test)]
    pub fn assign(&mut self, reason: &str, subject: &BBox, t: Duration) -> u64 {
        self.assign_new(reason, subject, t).0
    }

    /// [`Tracks::assign`], and whether the track is new.
    pub fn assign_new(&mut self, reason: &str, subject: &BBox, t: Duration) -> (u64, bool) {
        let tracks = self.by_reason.entry(reason.to_string()).or_default();
        let (cx, cy) = subject.center();
        let best = tracks
            .iter_mut()
            .filter(|k| t.saturating_sub(k.seen) < TRACK_GAP)
            .map(|k| {
                let (kx, ky) = k.bbox.center();
                let d = ((cx - kx).powi(2) + (cy - ky).powi(2)).sqrt();
                (d, k)
            })
            .filter(|(d, k)| {
                let (a, b) = (subject.area().max(1e-3), k.bbox.area().max(1e-3));
                *d <= 0.5 * diagonal(subject).max(diagonal(&k.bbox))
                    && a.max(b) / a.min(b) <= MAX_AREA_RATIO
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, k)) = best {
            k.bbox = *subject;
            k.seen = k.seen.max(t);
            return (k.id, false);
        }
        self.next_id += 1;
        tracks.push(Track {
            id: self.next_id,
            bbox: *subject,
            seen: t,
        });
        (self.next_id, true)
    }

    /// Ends the tracks unseen since before `t − TRACK_GAP`.
    pub fn prune(&mut self, t: Duration) {
        for tracks in self.by_reason.values_mut() {
            tracks.retain(|k| t.saturating_sub(k.seen) < TRACK_GAP);
        }
        self.by_reason.retain(|_, v| !v.is_empty());
    }
}

/// Every detection of every frame, followed one to one: the selector's view of which object is
/// which, for the cooldown of reasons about an object.
///
/// Unlike a track that is only updated when a reason fires about its object, these tracks live
/// as long as the object is detected, whichever object a strategy picks in a frame. On a moving
/// camera small objects near the edge of the picture move by more than their own size from one
/// frame to the next, so a track predicts where its object is now from its last displacement
/// (constant velocity) and looks for it there; a track seen once looks within its diagonal. A
/// label that flips for a frame (truck/bus, pedestrian/cyclist) keeps the track (a box of the
/// same class is preferred); a box that grows or shrinks fast because the object steps out from
/// behind another (its visible part changes, not the object) keeps it as long as one box lies
/// mostly inside the other and the label is the same. A track unseen for [`OBJECT_GAP`] ends:
/// a missed detection or two do not break it, but a new object at the same place is not taken
/// for the old one.
#[derive(Default)]
pub(crate) struct Objects {
    next_id: u64,
    tracks: Vec<ObjectTrack>,
}

/// An object track unseen for this long ends.
pub(crate) const OBJECT_GAP: Duration = Duration::from_secs(1);
/// Boxes nested in each other may differ this much in area (an object stepping out).
const MAX_NESTED_AREA_RATIO: f32 = 6.0;

struct ObjectTrack {
    id: u64,
    bbox: BBox,
    /// The label the object was first seen with.
    class_id: u32,
    seen: Duration,
    /// Pixels per second of the box's centre, once seen twice.
    velocity: Option<(f32, f32)>,
}

impl ObjectTrack {
    /// The box moved to where the object should be at `t`.
    fn predicted(&self, t: Duration) -> BBox {
        let Some((vx, vy)) = self.velocity else {
            return self.bbox;
        };
        let dt = t.saturating_sub(self.seen).as_secs_f32();
        let (dx, dy) = (vx * dt, vy * dt);
        let b = self.bbox;
        BBox::new(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy)
    }
}

impl Objects {
    /// The track of each of the frame's boxes (with their class ids), in order.
    pub fn update(&mut self, boxes: &[(BBox, u32)], t: Duration) -> Vec<u64> {
        self.tracks
            .retain(|k| t.saturating_sub(k.seen) < OBJECT_GAP);
        // Every admissible (box, track) pair, cheapest first; same-class pairs before others.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (i, (b, class)) in boxes.iter().enumerate() {
            for (j, k) in self.tracks.iter().enumerate() {
                let same = *class == k.class_id;
                let reach = if k.velocity.is_some() { 0.5 } else { 1.0 };
                if let Some(d) = continues(b, &k.predicted(t), same, reach) {
                    pairs.push((d + if same { 0.0 } else { 1e6 }, i, j));
                }
            }
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut ids: Vec<Option<u64>> = vec![None; boxes.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, i, j) in pairs {
            if ids[i].is_some() || taken[j] {
                continue;
            }
            taken[j] = true;
            let k = &mut self.tracks[j];
            let b = boxes[i].0;
            let dt = t.saturating_sub(k.seen).as_secs_f32();
            if dt > 0.0 {
                let ((x0, y0), (x1, y1)) = (k.bbox.center(), b.center());
                k.velocity = Some(((x1 - x0) / dt, (y1 - y0) / dt));
            }
            // The label stays the one the object was first seen with: a flip for a frame does
            // not change what the object is.
            k.bbox = b;
            k.seen = k.seen.max(t);
            ids[i] = Some(k.id);
        }
        ids.iter()
            .zip(boxes)
            .map(|(id, (b, class))| {
                id.unwrap_or_else(|| {
                    self.next_id += 1;
                    self.tracks.push(ObjectTrack {
                        id: self.next_id,
                        bbox: *b,
                        class_id: *class,
                        seen: t,
                        velocity: None,
                    });
                    self.next_id
                })
            })
            .collect()
    }
}

/// The distance between the centres when box `b` may continue a track expected at `k`: within
/// `reach` times the larger diagonal, and of similar size or nested.
fn continues(b: &BBox, k: &BBox, same_class: bool, reach: f32) -> Option<f32> {
    let ((cx, cy), (kx, ky)) = (b.center(), k.center());
    let d = ((cx - kx).powi(2) + (cy - ky).powi(2)).sqrt();
    if d > reach * diagonal(b).max(diagonal(k)) {
        return None;
    }
    let (a1, a2) = (b.area().max(1e-3), k.area().max(1e-3));
    let ratio = a1.max(a2) / a1.min(a2);
    // Emerging from behind something: the smaller box mostly inside the larger.
    let nested =
        same_class && ratio <= MAX_NESTED_AREA_RATIO && b.intersection(k) >= 0.6 * a1.min(a2);
    (ratio <= MAX_AREA_RATIO || nested).then_some(d)
}

fn diagonal(b: &BBox) -> f32 {
    (b.width().powi(2) + b.height().powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_moving_box_keeps_its_track_and_a_distant_one_gets_another() {
        let mut t = Tracks::default();
        let a = t.assign(
            "classes:animal",
            &BBox::new(100.0, 100.0, 120.0, 110.0),
            ms(0),
        );
        // Drifting right a few pixels a frame.
        for i in 1..50u64 {
            let x = 100.0 + i as f32 * 3.0;
            let id = t.assign(
                "classes:animal",
                &BBox::new(x, 100.0, x + 20.0, 110.0),
                ms(i * 100),
            );
            assert_eq!(id, a);
        }
        let far = t.assign(
            "classes:animal",
            &BBox::new(10.0, 10.0, 30.0, 20.0),
            ms(5000),
        );
        assert_ne!(far, a);
        // Another reason never shares a track.
        let other = t.assign(
            "occlusion:pedestrian",
            &BBox::new(250.0, 100.0, 270.0, 110.0),
            ms(5000),
        );
        assert_ne!(other, a);
    }

    #[test]
    fn objects_are_followed_one_to_one_through_label_flips_and_emerging() {
        let mut o = Objects::default();
        let car = BBox::new(100.0, 100.0, 220.0, 160.0);
        let head = BBox::new(150.0, 80.0, 165.0, 100.0);
        let a = o.update(&[(car, 0), (head, 3)], ms(0));
        assert_ne!(a[0], a[1]);
        // The pedestrian labelled cyclist for a frame; two boxes never share a track.
        assert_eq!(o.update(&[(car, 1), (head, 4)], ms(100)), a);
        // Stepping out: its box grows 3.5x around what was visible.
        let body = BBox::new(150.0, 80.0, 165.0, 150.0);
        assert_eq!(o.update(&[(car, 0), (body, 3)], ms(200)), a);
        // A second pedestrian right next to the first is another object.
        let other = BBox::new(166.0, 80.0, 181.0, 150.0);
        let b = o.update(&[(car, 0), (body, 3), (other, 3)], ms(300));
        assert_eq!(&b[..2], &a[..]);
        assert!(!a.contains(&b[2]));
        // Gone for longer than the gap: a new object.
        let c = o.update(&[(body, 3)], ms(300) + OBJECT_GAP);
        assert!(!b.contains(&c[0]));
    }

    #[test]
    fn a_small_object_passing_fast_is_followed_by_its_velocity() {
        // A 5x6 box near the edge of the picture moving 7 px a frame, then faster: more than
        // half its diagonal per frame, so the nearest-box rule alone would lose it every frame.
        let mut o = Objects::default();
        let at = |x: f32| BBox::new(x, 74.0, x + 5.0, 80.0);
        let first = o.update(&[(at(120.0), 3)], ms(0))[0];
        let mut x = 120.0;
        for (i, step) in [7.0, 7.0, 8.0, 9.0, 10.0, 11.0].iter().enumerate() {
            x -= step;
            let id = o.update(&[(at(x), 3)], ms(100 * (i as u64 + 1)))[0];
            assert_eq!(id, first, "frame {i} at x {x}");
        }
        // A missed frame: the prediction carries it over the gap.
        x -= 23.0;
        assert_eq!(o.update(&[(at(x), 3)], ms(800))[0], first);
        // Something appearing where the object was a while ago is another object.
        assert_ne!(o.update(&[(at(120.0), 3)], ms(1000))[0], first);
    }

    #[test]
    fn a_gap_longer_than_the_limit_ends_the_track() {
        let mut t = Tracks::default();
        let b = BBox::new(0.0, 0.0, 10.0, 10.0);
        let a = t.assign("k", &b, ms(0));
        assert_eq!(t.assign("k", &b, ms(1500)), a);
        assert_ne!(t.assign("k", &b, ms(3600)), a);
        t.prune(ms(10_000));
        assert!(t.by_reason.is_empty());
    }
}
