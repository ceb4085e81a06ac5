//! Ground truth that travels with a frame from a source that knows what it drew.

use crate::geometry::{BBox, Mask};

/// What a frame really shows: every instance and the events active in it.
#[derive(Debug, Clone, Default)]
pub struct GroundTruth {
    pub instances: Vec<TruthInstance>,
    pub events: Vec<ActiveEvent>,
}

/// One object as drawn.
#[derive(Debug, Clone)]
pub struct TruthInstance {
    /// Index into the source's class list (the synthetic classes: car, truck, ...).
    pub class_id: u32,
    /// Identity of the object across frames.
    pub track_id: u64,
    /// Box of the visible pixels, in image coordinates.
    pub bbox: BBox,
    /// The visible pixels.
    pub mask: Mask,
    /// Visible share of the object's full silhouette (1.0 = nothing hides it). Parts outside
    /// the frame do not count as hidden: this measures occlusion, not truncation.
    pub visible_fraction: f32,
}

/// An event the generator injected, active in this frame. The same `id` marks every frame of one
/// occurrence, so a selection benchmark can tell whether at least one frame of it was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActiveEvent {
    pub id: u64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// The rare class is on screen.
    RareClass,
    /// A pedestrian partly hidden by a vehicle.
    Occlusion,
    /// Many instances at once.
    Crowd,
    /// A stretch of scenery unlike the usual road.
    NovelScenery,
    /// A long stretch where nothing new happens.
    Boring,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::RareClass,
        EventKind::Occlusion,
        EventKind::Crowd,
        EventKind::NovelScenery,
        EventKind::Boring,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::RareClass => "rare_class",
            EventKind::Occlusion => "occlusion",
            EventKind::Crowd => "crowd",
            EventKind::NovelScenery => "novel_scenery",
            EventKind::Boring => "boring",
        }
    }
}
