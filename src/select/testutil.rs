//! Detections built by hand for the unit tests.

use crate::capture::synthetic::CLASS_NAMES;
use crate::geometry::{BBox, Mask};
use crate::segment::{Detections, Instance, Timings};
use std::sync::Arc;

pub(crate) const W: u32 = 640;
pub(crate) const H: u32 = 360;

/// A detection of `class` (an index into the synthetic classes) whose mask fills its box.
pub(crate) fn inst(class: u32, score: f32, b: [f32; 4]) -> Instance {
    let bbox = BBox::new(b[0], b[1], b[2], b[3]);
    let mask = Mask::from_fn(W, H, bbox.pixel_rect(W, H), |_, _| true);
    let mut class_scores = vec![0.01; CLASS_NAMES.len()];
    class_scores[class as usize] = score;
    Instance {
        class_id: class,
        score,
        bbox,
        mask,
        class_scores,
    }
}

/// A 640x360 frame with these detections and no embedding.
pub(crate) fn det(instances: Vec<Instance>) -> Detections {
    Detections {
        image_width: W,
        image_height: H,
        instances,
        embedding: Vec::new(),
        class_names: names(),
        timings: Timings::default(),
    }
}

/// The synthetic class names, one shared list (as a segmenter hands out).
pub(crate) fn names() -> Arc<[String]> {
    thread_local! {
        static NAMES: Arc<[String]> = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    }
    NAMES.with(|n| n.clone())
}

/// A car that is a new object every 2 s at 10 fps (frame `i`): it stands at one of five spots
/// 120 px apart for 20 frames, so a track ends before its spot comes round again.
pub(crate) fn traffic(i: u64) -> Instance {
    traffic_of(0, i)
}

/// [`traffic`] of any class.
pub(crate) fn traffic_of(class: u32, i: u64) -> Instance {
    let x = ((i / 20) % 5) as f32 * 120.0 + 10.0;
    inst(class, 0.9, [x, 200.0, x + 60.0, 240.0])
}
