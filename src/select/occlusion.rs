//! `occlusion`: an object partly hidden by another, e.g. a pedestrian behind a parked van.
//!
//! For each configured `[hidden, occluder]` pair of detections, the hidden one must be *behind*
//! (its lowest visible row above the occluder's by at least the contact radius: farther from a
//! ground-level camera; two objects standing side by side at the same distance are not hidden
//! by each other, and the one whose feet are lower is in front) and *touch* it: the share of its mask's outline pixels that have an occluder pixel within a small
//! radius (a hidden object's outline runs along its occluder), or, for segmenters whose masks
//! overlap, the share of its mask inside the occluder's. A pair whose hidden object is on the
//! far side of its occluder from the image centre (the ego path of a forward camera: a pedestrian
//! on the sidewalk behind a parked car, rather than at the car's road-side edge about to step
//! out) scores `far_side_factor` times as much. The score grows with the contact up to
//! `full_contact`, so the more hidden view of an object ranks first. The frame scores its best
//! pair.

use super::config::OcclusionConfig;
use super::verdict::{round, FrameView, Verdict};
use crate::geometry::Mask;
use crate::segment::Instance;

pub(crate) struct Occlusion {
    cfg: OcclusionConfig,
}

impl Occlusion {
    pub fn new(cfg: &OcclusionConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    pub fn reconfigure(&mut self, cfg: &OcclusionConfig) {
        self.cfg = cfg.clone();
    }

    pub fn evaluate(&self, frame: &FrameView) -> Verdict {
        let mut v = Verdict::new("occlusion", "occlusion", self.cfg.weight);
        let det = frame.det;
        // Contact radius: about 1 pixel per 320 of width, so it means the same at any resolution.
        let radius = (det.image_width / 320).clamp(1, 8) as i64;
        let strong: Vec<(usize, &Instance)> = det
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.score >= self.cfg.min_score)
            .collect();
        let centre = det.image_width as f32 / 2.0;
        // (score, contact, on the path side, hidden index, hidden, occluder)
        let mut best: Option<(f32, f32, bool, usize, &Instance, &Instance)> = None;
        for &(k, hidden) in &strong {
            for &(j, occluder) in &strong {
                if k == j || !self.pair_wanted(frame, hidden, occluder) {
                    continue;
                }
                let c = contact(hidden, occluder, radius);
                if c <= 0.0 {
                    continue;
                }
                let path_side = on_path_side(hidden, occluder, centre);
                let mut score = contact_score(c, self.cfg.min_contact, self.cfg.full_contact);
                if !path_side {
                    score *= self.cfg.far_side_factor;
                }
                if best.is_none_or(|b| (score, c) > (b.0, b.1)) {
                    best = Some((score, c, path_side, k, hidden, occluder));
                }
            }
        }
        if let Some((score, c, path_side, k, hidden, occluder)) = best {
            v.score = score;
            v.fired = c >= self.cfg.min_contact;
            // One key per hidden object: the selector appends its track.
            v.key = Some("occlusion".into());
            v.subject = Some(k);
            v = v
                .with("hidden", frame.name(hidden))
                .with("by", frame.name(occluder))
                .with("contact", round(c))
                .with("side", if path_side { "path" } else { "far" });
        }
        v
    }

    fn pair_wanted(&self, frame: &FrameView, hidden: &Instance, occluder: &Instance) -> bool {
        if self.cfg.pairs.is_empty() {
            return true;
        }
        let (h, o) = (frame.name(hidden), frame.name(occluder));
        self.cfg.pairs.iter().any(|[a, b]| a == h && b == o)
    }
}

/// The score of a pair whose contact is `c`: rising to 0.5 at `min_contact` (where it fires),
/// then on to 1 at `full_contact`. It keeps rising past the threshold so that, of the frames
/// of one partly hidden object, the one where more of it is hidden (more of its outline runs
/// along the occluder) ranks first: that is the view worth labelling, and the cooldown would
/// otherwise keep whichever frame came with a little more value from elsewhere.
fn contact_score(c: f32, min_contact: f32, full_contact: f32) -> f32 {
    if c < min_contact {
        0.5 * c / min_contact.max(1e-6)
    } else {
        let above = (c - min_contact) / (full_contact - min_contact).max(1e-6);
        0.5 + 0.5 * above.min(1.0)
    }
}

/// Whether `hidden` is on the side of `occluder` that faces the image centre column `centre`:
/// its centre lies in the third of the occluder's width nearest that column, or the occluder
/// spans the column (an object hidden by something straight ahead is in the path either way).
fn on_path_side(hidden: &Instance, occluder: &Instance, centre: f32) -> bool {
    let (o, h) = (&occluder.bbox, &hidden.bbox);
    if o.x1 <= centre && centre <= o.x2 {
        return true;
    }
    let (hx, _) = h.center();
    let third = o.width() / 3.0;
    if o.x2 < centre {
        hx >= o.x2 - third
    } else {
        hx <= o.x1 + third
    }
}

/// How much of `hidden` borders or lies inside `occluder` (0..=1); 0 unless `hidden` is behind.
fn contact(hidden: &Instance, occluder: &Instance, radius: i64) -> f32 {
    let (hb, ob) = (&hidden.bbox, &occluder.bbox);
    let r = radius as f32;
    // Boxes must touch (within the radius) ...
    if hb.x2 + r < ob.x1 || ob.x2 + r < hb.x1 || hb.y2 + r < ob.y1 || ob.y2 + r < hb.y1 {
        return 0.0;
    }
    // ... and the hidden one must stand farther away: its lowest visible row above the
    // occluder's by at least the radius. Side by side at the same distance (bottoms level) is
    // not hidden, and a lower bottom is in front: on a road camera at 320x180 these were a
    // third of all pairs that touched, most of them objects with nothing hidden at all.
    if hb.y2 > ob.y2 - r {
        return 0.0;
    }
    let (hm, om) = (&hidden.mask, &occluder.mask);
    let area = hm.area();
    if area == 0 || om.area() == 0 {
        return 0.0;
    }
    let overlap = hm.intersection(om) as f32 / area as f32;
    overlap.max(outline_contact(hm, om, radius))
}

/// Share of the outline pixels of `a` with a pixel of `b` within `radius` (Chebyshev).
fn outline_contact(a: &Mask, b: &Mask, radius: i64) -> f32 {
    let ra = a.rect();
    let (w, h) = (a.image_width() as i64, a.image_height() as i64);
    let (mut outline, mut touching) = (0u32, 0u32);
    for y in ra.y..ra.bottom() {
        for x in ra.x..ra.right() {
            if !a.get(x, y) {
                continue;
            }
            let (xi, yi) = (x as i64, y as i64);
            let edge = [(-1, 0), (1, 0), (0, -1), (0, 1)].iter().any(|(dx, dy)| {
                let (nx, ny) = (xi + dx, yi + dy);
                nx < 0 || ny < 0 || nx >= w || ny >= h || !a.get(nx as u32, ny as u32)
            });
            if !edge {
                continue;
            }
            outline += 1;
            let near = (-radius..=radius).any(|dy| {
                (-radius..=radius).any(|dx| {
                    let (nx, ny) = (xi + dx, yi + dy);
                    nx >= 0 && ny >= 0 && b.get(nx as u32, ny as u32)
                })
            });
            touching += near as u32;
        }
    }
    if outline == 0 {
        0.0
    } else {
        touching as f32 / outline as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::testutil::{det, inst, H, W};
    use std::time::Duration;

    fn eval(cfg: &OcclusionConfig, d: &crate::segment::Detections) -> Verdict {
        Occlusion::new(cfg).evaluate(&FrameView {
            t: Duration::ZERO,
            det: d,
        })
    }

    #[test]
    fn pedestrian_whose_lower_body_is_hidden_behind_a_car_fires() {
        // A car at rows 100..160; the head and shoulders of a pedestrian above its roof line.
        let d = det(vec![
            inst(0, 0.9, [100.0, 100.0, 220.0, 160.0]),
            inst(3, 0.8, [150.0, 80.0, 165.0, 100.0]),
        ]);
        let v = eval(&OcclusionConfig::default(), &d);
        assert!(v.fired, "{v:?}");
        assert_eq!(v.detail["hidden"], "pedestrian");
        assert_eq!(v.detail["by"], "car");
        assert_eq!(v.key.as_deref(), Some("occlusion"));
        assert_eq!(v.subject, Some(1));
    }

    #[test]
    fn the_path_side_of_the_occluder_scores_in_full_and_the_far_side_less() {
        // A car parked right of the 640-wide picture's centre (x 400..520): the path side is
        // its left third (towards x = 320), where a pedestrian steps out into the road.
        let car = || inst(0, 0.9, [400.0, 100.0, 520.0, 160.0]);
        let at = |x: f32| det(vec![car(), inst(3, 0.8, [x, 80.0, x + 15.0, 100.0])]);
        let cfg = OcclusionConfig::default();
        let road_side = eval(&cfg, &at(405.0));
        assert!(road_side.fired);
        assert!(road_side.score > 0.5, "{road_side:?}");
        assert_eq!(road_side.detail["side"], "path");
        // Behind the middle or the outer edge (the sidewalk side): still an occlusion, scored
        // far_side_factor (0.5) times as much (the contact is the same: the same outline on
        // the car's roof line).
        for x in [455.0, 500.0] {
            let v = eval(&cfg, &at(x));
            assert!(v.fired, "x {x}: {v:?}");
            assert_eq!(v.detail["contact"], road_side.detail["contact"]);
            assert!((v.score - 0.5 * road_side.score).abs() < 1e-6, "x {x}");
            assert_eq!(v.detail["side"], "far");
        }
        // Mirrored on the left of the centre: the right third is the path side.
        let left = det(vec![
            inst(0, 0.9, [100.0, 100.0, 220.0, 160.0]),
            inst(3, 0.8, [200.0, 80.0, 215.0, 100.0]),
        ]);
        assert_eq!(eval(&cfg, &left).detail["side"], "path");
        // An occluder across the centre column (a bus straight ahead): either side is the path.
        let ahead = det(vec![
            inst(2, 0.9, [260.0, 100.0, 380.0, 160.0]),
            inst(3, 0.8, [262.0, 80.0, 277.0, 100.0]),
        ]);
        assert_eq!(eval(&cfg, &ahead).score, road_side.score);
        // A path-side pair outranks a far-side pair with more contact in the same frame.
        let both = det(vec![
            car(),
            inst(3, 0.8, [500.0, 80.0, 515.0, 100.0]),
            inst(3, 0.8, [405.0, 80.0, 420.0, 100.0]),
        ]);
        let v = eval(&cfg, &both);
        assert_eq!(v.subject, Some(2));
        // Off (1.0): no difference.
        let off = OcclusionConfig {
            far_side_factor: 1.0,
            ..Default::default()
        };
        assert_eq!(eval(&off, &at(500.0)).score, road_side.score);
    }

    #[test]
    fn the_more_of_an_object_is_hidden_the_higher_it_scores() {
        // Contact 0.5 at min_contact, 1 at full_contact, linear between; below the threshold
        // it does not fire and scores under 0.5.
        assert_eq!(contact_score(0.05, 0.1, 0.5), 0.25);
        assert_eq!(contact_score(0.1, 0.1, 0.5), 0.5);
        assert!((contact_score(0.3, 0.1, 0.5) - 0.75).abs() < 1e-6);
        assert_eq!(contact_score(0.5, 0.1, 0.5), 1.0);
        assert_eq!(contact_score(0.9, 0.1, 0.5), 1.0);
        // A pedestrian's head above a car's roof line, then the same pedestrian stepping out
        // from behind the car's side, half of it still hidden: more of its outline runs along
        // the car, and that frame scores higher.
        let car = || inst(0, 0.9, [100.0, 100.0, 220.0, 160.0]);
        let head = det(vec![car(), inst(3, 0.8, [205.0, 80.0, 215.0, 100.0])]);
        let mut half = det(vec![car(), inst(3, 0.8, [210.0, 80.0, 230.0, 150.0])]);
        // The car hides the left half of the pedestrian's body below the roof line.
        half.instances[1].mask =
            Mask::from_fn(W, H, half.instances[1].bbox.pixel_rect(W, H), |x, y| {
                y < 100 || x >= 220
            });
        let cfg = OcclusionConfig::default();
        let (a, b) = (eval(&cfg, &head), eval(&cfg, &half));
        assert!(a.fired && b.fired, "{a:?} {b:?}");
        assert!(
            b.score > a.score,
            "half hidden {} ({}) vs head only {} ({})",
            b.score,
            b.detail["contact"],
            a.score,
            a.detail["contact"]
        );
    }

    #[test]
    fn a_pedestrian_in_front_of_or_away_from_a_car_does_not() {
        // In front: the pedestrian's feet are below the car's bottom row.
        let front = det(vec![
            inst(0, 0.9, [100.0, 100.0, 220.0, 160.0]),
            inst(3, 0.8, [150.0, 120.0, 165.0, 175.0]),
        ]);
        assert!(!eval(&OcclusionConfig::default(), &front).fired);
        // Side by side at the same distance: the pedestrian's outline runs along the car's side
        // and their feet are level (or nearly: within the contact radius). Nothing is hidden.
        for bottom in [159.0, 160.0, 161.0] {
            let beside = det(vec![
                inst(0, 0.9, [100.0, 100.0, 220.0, 160.0]),
                inst(3, 0.8, [220.0, 110.0, 232.0, bottom]),
            ]);
            let v = eval(&OcclusionConfig::default(), &beside);
            assert!(!v.fired, "bottom {bottom}: {v:?}");
        }
        // Standing farther back (feet higher) beside the car's tail: partly hidden.
        let behind = det(vec![
            inst(0, 0.9, [100.0, 100.0, 220.0, 160.0]),
            inst(3, 0.8, [215.0, 100.0, 227.0, 150.0]),
        ]);
        assert!(eval(&OcclusionConfig::default(), &behind).fired);
        let apart = det(vec![
            inst(0, 0.9, [100.0, 100.0, 220.0, 160.0]),
            inst(3, 0.8, [300.0, 80.0, 315.0, 140.0]),
        ]);
        let v = eval(&OcclusionConfig::default(), &apart);
        assert!(!v.fired);
        assert_eq!(v.score, 0.0);
    }

    #[test]
    fn pairs_restrict_the_classes_and_overlapping_masks_count() {
        // Overlapping masks (a segmenter's masks may overlap): the cone mostly inside the truck.
        let d = det(vec![
            inst(1, 0.9, [100.0, 100.0, 220.0, 160.0]),
            inst(5, 0.8, [110.0, 120.0, 130.0, 150.0]),
        ]);
        assert!(!eval(&OcclusionConfig::default(), &d).fired);
        let cfg = OcclusionConfig {
            pairs: vec![["traffic_cone".into(), "truck".into()]],
            far_side_factor: 1.0,
            ..Default::default()
        };
        let v = eval(&cfg, &d);
        assert!(v.fired);
        assert_eq!(v.detail["contact"], 1.0);
        assert_eq!(v.score, 1.0);
        // Empty pairs: any classes.
        let any = OcclusionConfig {
            pairs: vec![],
            ..Default::default()
        };
        assert!(eval(&any, &d).fired);
        // Weak detections are ignored.
        let weak = OcclusionConfig {
            min_score: 0.85,
            ..any
        };
        assert!(!eval(&weak, &d).fired);
    }
}
