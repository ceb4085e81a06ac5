//! A deterministic road-camera scene generator with exact ground truth: the default frame source
//! when no camera is configured, the training set of the bundled default model, and a test
//! stream for frame selection.
//!
//! [`SyntheticSource`] simulates a vehicle driving forward through a sequence of *drives* (urban,
//! suburban or rural roads by day, dusk or night, in clear weather, fog or rain, sometimes through
//! a tunnel) with traffic, parked cars, pedestrians, cyclists, traffic cones and, rarely, an
//! animal on the road ([`CLASS_NAMES`]). Every frame carries a [`GroundTruth`]: each visible
//! instance with its class, track id, box, mask of visible pixels and visible fraction, plus the
//! injected events active in that frame ([`EventKind`](super::EventKind)), each occurrence with one id across its
//! frames.
//!
//! How it is built:
//! - `world.rs` simulates (drives, road, scenery, traffic, events), from its own random stream;
//! - `render.rs` paints a frame far to near with a scanline rasteriser (`raster.rs`) that writes
//!   an instance-id buffer alongside the colours, which is where the masks come from; the
//!   background (`scenery.rs`), the classes (`shapes.rs`) and the camera effects (`effects.rs`)
//!   each have their file;
//! - `look.rs` holds palettes and light; `camera.rs` the projection; `rng.rs` the SplitMix64
//!   generator (not `rand`: a seed must give the same stream forever).
//!
//! When each event is active (its frames carry an [`ActiveEvent`](super::ActiveEvent) with the
//! occurrence's id; ids are unique over the stream):
//! - `RareClass`: frames whose ground truth holds one of the occurrence's animals (sometimes two,
//!   a doe and a fawn, under one id);
//! - `Occlusion`: frames where the occurrence's pedestrian, waiting behind a parked car, van, truck
//!   or bus and then stepping out, is in the ground truth with a visible fraction of at most 0.85
//!   and the instance hiding most of the rest is a vehicle;
//! - `Crowd`: frames showing at least 8 members of a crowd crossing in front of the vehicle;
//! - `NovelScenery`: from 60 m before a snow, desert or industrial stretch until its end;
//! - `Boring`: the whole stretch, during which nothing new appears.
//!
//! Occlusions, stops and busy streets also happen on their own, untagged: the tags mark the
//! injected occurrences, whose rates [`EventRates`] sets.
//!
//! Determinism: the same [`SyntheticConfig`] gives the same bytes frame for frame, whether frames
//! are paced in real time, produced as fast as possible, or skipped with
//! [`SyntheticSource::skip`] (the world is stepped identically; only painting is left out).

mod actors;
mod camera;
mod config;
mod effects;
mod look;
mod raster;
mod render;
mod rng;
mod scenery;
mod shapes;
mod world;

pub use config::{
    ConditionOverrides, Environment, EventRates, SyntheticConfig, TimeOfDay, Weather,
};

use super::{CaptureError, Delivered, FrameMeta, GroundTruth, RawFrame, Source};
use crate::config::ConfigError;
use image::RgbImage;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The classes of the synthetic stream; an instance's `class_id` indexes this list.
pub const CLASS_NAMES: [&str; 7] = [
    "car",
    "truck",
    "bus",
    "pedestrian",
    "cyclist",
    "traffic_cone",
    "animal",
];

/// Class id of the rare class (animal).
pub const RARE_CLASS_ID: u32 = 6;

/// The seed of stream `k` of a family of streams derived from `seed` (for datasets sampled from
/// many independent streams).
pub fn stream_seed(seed: u64, k: u64) -> u64 {
    rng::hash2(seed, k)
}

/// What the scene of the next frame is like (for logs, file names and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct SceneInfo {
    /// Number of the drive (1, 2, ...): frames of one drive share their conditions.
    pub drive: u64,
    pub time_of_day: TimeOfDay,
    pub weather: Weather,
    /// Kind of place around the camera: `urban`, `suburban`, `rural`, or a novel one (`snow`,
    /// `desert`, `industrial`).
    pub region: &'static str,
    pub in_tunnel: bool,
    /// Speed of the camera vehicle, metres per second.
    pub speed_mps: f32,
}

/// The synthetic road-scene [`Source`].
pub struct SyntheticSource {
    config: SyntheticConfig,
    world: world::World,
    /// Shared with the frames whose painting waits for the model ([`PendingScene`]).
    renderer: Arc<Mutex<render::Renderer>>,
    frame: u64,
    dt: f32,
    started: Option<Instant>,
}

impl SyntheticSource {
    /// A stream as configured; fails when the configuration does not validate.
    pub fn new(config: SyntheticConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let world = world::World::new(
            config.seed,
            config.events.clone(),
            config.conditions.clone(),
        );
        let renderer = render::Renderer::new(
            config.width,
            config.height,
            config.seed,
            config.min_instance_px,
        );
        Ok(SyntheticSource {
            dt: 1.0 / config.fps,
            config,
            world,
            renderer: Arc::new(Mutex::new(renderer)),
            frame: 0,
            started: None,
        })
    }

    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// Index of the next frame.
    pub fn frame_index(&self) -> u64 {
        self.frame
    }

    /// Whether `max_frames` have been produced.
    pub fn finished(&self) -> bool {
        self.config.max_frames.is_some_and(|m| self.frame >= m)
    }

    /// The conditions of the next frame.
    pub fn scene(&self) -> SceneInfo {
        let w = &self.world;
        let region = match w.region_at(w.ego.s) {
            look::Region::Urban => "urban",
            look::Region::Suburban => "suburban",
            look::Region::Rural => "rural",
            look::Region::Snow => "snow",
            look::Region::Desert => "desert",
            look::Region::Industrial => "industrial",
        };
        SceneInfo {
            drive: w.drive.id,
            time_of_day: w.drive.time,
            weather: w.drive.weather,
            region,
            in_tunnel: w.tunnel_at(w.ego.s).is_some(),
            speed_mps: w.ego.v,
        }
    }

    /// Advances `n` frames without painting them: the stream continues exactly as if they had
    /// been produced (used to sample a dataset spread over many scenes).
    pub fn skip(&mut self, n: u64) {
        for _ in 0..n {
            if self.finished() {
                return;
            }
            self.world.step(self.dt);
            self.frame += 1;
        }
    }

    /// Paints the next frame into `image` (resized if needed) at once, without pacing; `None`
    /// once `max_frames` are done.
    pub fn render_next(&mut self, image: &mut RgbImage) -> Option<GroundTruth> {
        if self.finished() {
            return None;
        }
        let truth = paint(&self.renderer, &self.world, self.frame, image);
        self.advance();
        Some(truth)
    }

    /// The next frame's scene, to be painted later ([`PendingScene::paint`]), and the stream
    /// moves on; `None` once `max_frames` are done.
    pub fn defer_next(&mut self) -> Option<PendingScene> {
        if self.finished() {
            return None;
        }
        let scene = PendingScene {
            world: self.world.clone(),
            frame: self.frame,
            renderer: self.renderer.clone(),
        };
        self.advance();
        Some(scene)
    }

    fn advance(&mut self) {
        if self.frame % (self.config.fps as u64 * 60).max(1) == 0 {
            tracing::debug!(frame = self.frame, "{}", self.world.drive_summary());
        }
        self.world.step(self.dt);
        self.frame += 1;
    }

    fn meta(&self, index: u64, truth: Option<GroundTruth>) -> FrameMeta {
        FrameMeta {
            file: None,
            index,
            // Simulated capture time: stable whatever the pacing.
            monotonic: Some(Duration::from_secs_f64(
                index as f64 / self.config.fps as f64,
            )),
            truth: truth.map(Box::new),
        }
    }

    fn pace(&mut self) {
        if !self.config.realtime {
            return;
        }
        let start = *self.started.get_or_insert_with(Instant::now);
        let due = start + Duration::from_secs_f64(self.frame as f64 / self.config.fps as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

impl Source for SyntheticSource {
    fn describe(&self) -> String {
        format!("synthetic:seed={}", self.config.seed)
    }

    fn next_frame(&mut self, image: &mut RgbImage) -> Result<Option<FrameMeta>, CaptureError> {
        if self.finished() {
            return Ok(None);
        }
        self.pace();
        let index = self.frame;
        let Some(truth) = self.render_next(image) else {
            return Ok(None);
        };
        Ok(Some(self.meta(index, Some(truth))))
    }

    /// The scene is painted when the model takes the frame: painting costs 13-18 ms at
    /// 1280x720, and a model slower than the stream's rate drops the rest unpainted. The ground
    /// truth comes with the painting.
    fn next_pixels(
        &mut self,
        _image: &mut RgbImage,
        raw: &mut RawFrame,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        if self.finished() {
            return Ok(None);
        }
        self.pace();
        let index = self.frame;
        let Some(scene) = self.defer_next() else {
            return Ok(None);
        };
        raw.set_scene(scene);
        Ok(Some((self.meta(index, None), Delivered::Raw)))
    }
}

/// One frame of the synthetic stream, not painted yet: the world as it was at that frame.
pub struct PendingScene {
    world: world::World,
    frame: u64,
    renderer: Arc<Mutex<render::Renderer>>,
}

impl std::fmt::Debug for PendingScene {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingScene")
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl PendingScene {
    /// Paints the frame into `image` (resized if needed): the same bytes and ground truth as
    /// painting it when it was due.
    pub fn paint(&self, image: &mut RgbImage) -> GroundTruth {
        paint(&self.renderer, &self.world, self.frame, image)
    }
}

fn paint(
    renderer: &Mutex<render::Renderer>,
    world: &world::World,
    frame: u64,
    image: &mut RgbImage,
) -> GroundTruth {
    let mut renderer = renderer.lock().unwrap_or_else(|e| e.into_inner());
    let (w, h) = renderer.size();
    if image.dimensions() != (w, h) {
        let mut buf = std::mem::take(image).into_raw();
        buf.resize(w as usize * h as usize * 3, 0);
        *image = RgbImage::from_raw(w, h, buf).expect("buffer sized for the frame");
    }
    // Painting is CPU work: on the network's pool, see `crate::pool`.
    let renderer = &mut *renderer;
    crate::pool::on_pool(|| renderer.render(world, image, frame, true))
}
