//! Which object a reason is about, followed from frame to frame by its box, so that the cooldown
//! holds back the same lingering object and not the next one of its class.
//!
//! No appearance model: the subject of a reason in this frame continues the track of the same
//! reason whose last box is nearest, if its centre is within half the larger box's diagonal, the
//! two boxes differ in area by less than a factor of [`MAX_AREA_RATIO`], and the track was seen
//! less than [`TRACK_GAP`] ago (a missed detection or two do not break a track).

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
