//! The synthetic road-scene source as the pipeline sees it: determinism, ground truth that is
//! consistent with itself, and events at their configured rates.

use edgesift::capture::synthetic::{
    ConditionOverrides, EventRates, SyntheticConfig, SyntheticSource, TimeOfDay, Weather,
    CLASS_NAMES, RARE_CLASS_ID,
};
use edgesift::capture::{Delivered, EventKind, GroundTruth, RawFrame, Source};
use image::RgbImage;
use std::collections::{BTreeMap, HashSet};

fn small(seed: u64) -> SyntheticConfig {
    SyntheticConfig {
        seed,
        width: 320,
        height: 180,
        realtime: false,
        min_instance_px: 4,
        ..Default::default()
    }
}

fn frames(config: SyntheticConfig, n: usize) -> Vec<(Vec<u8>, GroundTruth)> {
    let mut src = SyntheticSource::new(config).unwrap();
    let mut img = RgbImage::new(1, 1);
    (0..n)
        .map(|_| {
            let t = src.render_next(&mut img).unwrap();
            (img.as_raw().clone(), t)
        })
        .collect()
}

fn same_truth(a: &GroundTruth, b: &GroundTruth) -> bool {
    a.events == b.events
        && a.instances.len() == b.instances.len()
        && a.instances.iter().zip(&b.instances).all(|(p, q)| {
            p.class_id == q.class_id
                && p.track_id == q.track_id
                && p.bbox == q.bbox
                && p.mask == q.mask
                && p.visible_fraction == q.visible_fraction
        })
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let a = frames(small(7), 40);
    let b = frames(small(7), 40);
    for (i, (fa, fb)) in a.iter().zip(&b).enumerate() {
        assert!(fa.0 == fb.0, "frame {i} differs");
        assert!(same_truth(&fa.1, &fb.1), "truth of frame {i} differs");
    }
    let c = frames(small(8), 40);
    let differing = a.iter().zip(&c).filter(|(x, y)| x.0 != y.0).count();
    assert_eq!(differing, 40);
}

#[test]
fn pacing_and_skipping_do_not_change_the_frames() {
    // Paced like a camera (at a high rate to keep the test short) vs as fast as possible.
    let paced = SyntheticConfig {
        fps: 200.0,
        realtime: true,
        ..small(3)
    };
    let fast = SyntheticConfig {
        realtime: false,
        ..paced.clone()
    };
    let mut a = SyntheticSource::new(paced).unwrap();
    let mut b = SyntheticSource::new(fast).unwrap();
    let (mut ia, mut ib) = (RgbImage::new(1, 1), RgbImage::new(1, 1));
    for i in 0..12 {
        let ma = a.next_frame(&mut ia).unwrap().unwrap();
        let mb = b.next_frame(&mut ib).unwrap().unwrap();
        assert_eq!(ma.index, i);
        assert_eq!(ma.monotonic, mb.monotonic);
        assert!(ia == ib, "frame {i}");
    }
    // Skipping frames leaves the stream where producing them would.
    let all = frames(small(5), 31);
    let mut s = SyntheticSource::new(small(5)).unwrap();
    s.skip(30);
    let mut img = RgbImage::new(1, 1);
    let t = s.render_next(&mut img).unwrap();
    assert!(img.as_raw() == &all[30].0);
    assert!(same_truth(&t, &all[30].1));
}

/// What the pipeline does: scenes handed over unpainted and painted only when the model takes
/// them, some never, some late; the painted ones are the frames and truth the stream would
/// have given.
#[test]
fn scenes_painted_later_or_never_are_the_same_frames() {
    let all = frames(small(11), 24);
    let mut src = SyntheticSource::new(small(11)).unwrap();
    let mut unused = RgbImage::new(1, 1);
    let mut waiting: Vec<(u64, RawFrame)> = Vec::new();
    for i in 0..24u64 {
        let mut raw = RawFrame::default();
        let (meta, delivered) = src.next_pixels(&mut unused, &mut raw).unwrap().unwrap();
        assert_eq!((meta.index, delivered), (i, Delivered::Raw));
        assert!(meta.truth.is_none(), "the truth comes with the painting");
        assert!(raw.is_empty(), "a scene holds no frame bytes");
        // Two of every three are dropped unpainted, as by a model slower than the stream.
        if i % 3 == 2 {
            waiting.push((i, raw));
        }
    }
    assert_eq!(unused.dimensions(), (1, 1));
    // Painted after the stream moved on, newest first, into one recycled image.
    let mut img = RgbImage::new(1, 1);
    for (i, mut raw) in waiting.into_iter().rev() {
        let truth = raw.convert(&mut img).unwrap().expect("a scene's truth");
        assert!(img.as_raw() == &all[i as usize].0, "frame {i}");
        assert!(same_truth(&truth, &all[i as usize].1), "truth of frame {i}");
        assert!(raw.convert(&mut img).is_err(), "painted once");
    }
}

#[test]
fn source_contract() {
    let mut src = SyntheticSource::new(SyntheticConfig {
        max_frames: Some(3),
        fps: 25.0,
        ..small(11)
    })
    .unwrap();
    assert_eq!(src.describe(), "synthetic:seed=11");
    let mut img = RgbImage::new(7, 3);
    for i in 0..3u64 {
        let meta = src.next_frame(&mut img).unwrap().expect("a frame");
        assert_eq!(img.dimensions(), (320, 180));
        assert_eq!(meta.index, i);
        assert_eq!(
            meta.monotonic,
            Some(std::time::Duration::from_millis(40 * i))
        );
        assert!(meta.truth.is_some());
    }
    assert!(
        src.next_frame(&mut img).unwrap().is_none(),
        "the stream ends after max_frames"
    );
    let bad = SyntheticConfig {
        height: 5,
        ..small(1)
    };
    assert_eq!(SyntheticSource::new(bad).err().unwrap().key, "height");
}

#[test]
fn ground_truth_is_consistent() {
    let config = SyntheticConfig {
        fps: 5.0,
        min_instance_px: 10,
        ..small(21)
    };
    let mut classes = BTreeMap::new();
    let mut partly_hidden = 0;
    for (_, t) in frames(config, 800) {
        let mut tracks = HashSet::new();
        for i in &t.instances {
            assert!((i.class_id as usize) < CLASS_NAMES.len());
            assert!(
                tracks.insert(i.track_id),
                "one instance per track and frame"
            );
            assert!(i.mask.area() >= 10);
            assert_eq!((i.mask.image_width(), i.mask.image_height()), (320, 180));
            assert_eq!(
                i.mask.tight_rect().unwrap().to_bbox(),
                i.bbox,
                "box of the visible pixels"
            );
            assert!(i.visible_fraction > 0.0 && i.visible_fraction <= 1.0);
            if i.visible_fraction < 0.9 {
                partly_hidden += 1;
            }
            *classes.entry(i.class_id).or_insert(0) += 1;
        }
        // Instances do not share pixels.
        for (k, a) in t.instances.iter().enumerate() {
            for b in &t.instances[k + 1..] {
                assert_eq!(a.mask.intersection(&b.mask), 0);
            }
        }
    }
    for c in 0..6 {
        assert!(
            classes.get(&c).copied().unwrap_or(0) > 0,
            "no {} in 160 s: {classes:?}",
            CLASS_NAMES[c as usize]
        );
    }
    assert!(
        partly_hidden > 20,
        "occlusion happens naturally: {partly_hidden}"
    );
}

#[test]
fn conditions_can_be_forced() {
    let mut config = small(4);
    config.conditions = ConditionOverrides {
        time_of_day: Some(TimeOfDay::Night),
        weather: Some(Weather::Fog),
        tunnel: Some(true),
        ..Default::default()
    };
    config.fps = 10.0;
    let mut src = SyntheticSource::new(config).unwrap();
    let mut tunnel = false;
    for _ in 0..900 {
        let s = src.scene();
        assert_eq!((s.time_of_day, s.weather), (TimeOfDay::Night, Weather::Fog));
        tunnel |= s.in_tunnel;
        src.skip(1);
    }
    assert!(tunnel, "a forced tunnel comes within the first 90 s");
    // Night is dark, day is bright.
    let mean = |tod| {
        let mut c = small(4);
        c.conditions.time_of_day = Some(tod);
        c.conditions.weather = Some(Weather::Clear);
        let f = frames(c, 1);
        f[0].0.iter().map(|&v| v as f64).sum::<f64>() / f[0].0.len() as f64
    };
    assert!(mean(TimeOfDay::Night) * 2.0 < mean(TimeOfDay::Day));
}

/// Over a long stream each kind of event shows up about as often as configured, every
/// occurrence under one id, and its frames show what the event says.
#[test]
fn events_come_at_their_rates_with_stable_ids() {
    let minutes = 40.0;
    let rates = EventRates {
        rare_class_per_hour: 30.0,
        occlusion_per_hour: 60.0,
        crowd_per_hour: 30.0,
        novel_scenery_per_hour: 12.0,
        boring_per_hour: 6.0,
        novel_scenery_s: 30.0,
        boring_s: 60.0,
    };
    let fps = 3.0;
    let config = SyntheticConfig {
        width: 480,
        height: 270,
        fps,
        min_instance_px: 8,
        events: rates.clone(),
        ..small(2024)
    };
    let n = (minutes * 60.0 * fps) as usize;
    let mut src = SyntheticSource::new(config).unwrap();
    let mut img = RgbImage::new(1, 1);
    // id -> (kind, first frame, last frame, frames)
    let mut seen: BTreeMap<u64, (EventKind, usize, usize, usize)> = BTreeMap::new();
    for f in 0..n {
        let t = src.render_next(&mut img).unwrap();
        for e in &t.events {
            let entry = seen.entry(e.id).or_insert((e.kind, f, f, 0));
            assert_eq!(entry.0, e.kind, "event {} changed kind", e.id);
            entry.2 = f;
            entry.3 += 1;
            match e.kind {
                EventKind::RareClass => {
                    assert!(t.instances.iter().any(|i| i.class_id == RARE_CLASS_ID))
                }
                EventKind::Crowd => {
                    assert!(t.instances.iter().filter(|i| i.class_id == 3).count() >= 8)
                }
                EventKind::Occlusion => assert!(t
                    .instances
                    .iter()
                    .any(|i| i.class_id == 3 && i.visible_fraction <= 0.85)),
                _ => {}
            }
        }
    }
    let count = |k: EventKind| seen.values().filter(|v| v.0 == k).count() as f32;
    let hours = minutes / 60.0;
    for (kind, rate, max_len_s) in [
        // Longest plausible occurrence (the ego may wait at a red light in the middle of one):
        // an id seen again much later would be a reused id.
        (EventKind::RareClass, rates.rare_class_per_hour, 150.0),
        (EventKind::Occlusion, rates.occlusion_per_hour, 150.0),
        (EventKind::Crowd, rates.crowd_per_hour, 150.0),
        (EventKind::NovelScenery, rates.novel_scenery_per_hour, 150.0),
        (EventKind::Boring, rates.boring_per_hour, 61.0),
    ] {
        let expected = rate * hours;
        let got = count(kind);
        eprintln!(
            "{}: {got} in {minutes} min (configured {expected})",
            kind.name()
        );
        assert!(
            got >= 0.5 * expected && got <= 1.6 * expected + 2.0,
            "{}: {got} occurrences in {minutes} min, configured {expected}",
            kind.name()
        );
        for (id, v) in seen.iter().filter(|(_, v)| v.0 == kind) {
            let span_s = (v.2 - v.1) as f32 / fps;
            assert!(
                span_s <= max_len_s,
                "{} #{id} spans {span_s} s",
                kind.name()
            );
        }
    }
    let boring_s: f32 = seen
        .values()
        .filter(|v| v.0 == EventKind::Boring)
        .map(|v| v.3 as f32 / fps)
        .sum::<f32>()
        / count(EventKind::Boring);
    assert!(
        (boring_s - 60.0).abs() < 2.0,
        "boring stretches last {boring_s} s"
    );
}
