//! Frame sources: where pictures come from.
//!
//! A [`Source`] fills an RGB buffer with the next picture and says where it came from; the
//! pipeline's capture thread wraps it into a [`Frame`] with a sequence number and timestamps.
//! Sources pace themselves: a camera blocks until the sensor delivers, a replay or the synthetic
//! generator sleeps until the next frame is due (or returns at once when told to run as fast as
//! possible).
//!
//! Sources:
//! - `synthetic`: a deterministic road-camera scene generator with per-frame ground truth
//!   ([`GroundTruth`]), the default stream when no camera is configured.
//! - `v4l` ([`V4lSource`], [`V4lConfig`]): a V4L2 camera; negotiates YUYV/UYVY/MJPEG/NV12,
//!   reconnects with backoff when unplugged, skips and counts corrupt frames ([`v4l2`]).
//! - `replay` ([`ReplaySource`], [`ReplayConfig`]): image directories, raw YUYV/UYVY/NV12 dumps
//!   and MJPEG stream files, paced or as fast as possible, optionally looped.
//!
//! Camera and replay share [`convert`] (SIMD YUV → RGB, MJPEG decoding), so a dump recorded on
//! a robot replays through exactly the code that ran there. Sources that sleep take a
//! [`Clock`], so that tests drive them with a [`ManualClock`].
//!
//! Buffers are recycled: [`Source::next_frame`] writes into an image it is handed, so the hot path
//! allocates nothing once the pool is warm. [`Source::next_pixels`] may instead copy a raw camera
//! frame (or a synthetic scene) into a [`RawFrame`], converted (painted) only when the model takes it.

mod config;
pub mod convert;
mod pace;
mod raw;
mod replay;
pub mod synthetic;
mod truth;
pub mod v4l2;

pub use config::{SourceConfig, SourceKind};
pub use convert::{ConvertError, Converter, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
pub use pace::{system_clock, Clock, ManualClock, Pacer, SystemClock};
pub use raw::RawFrame;
pub use replay::{natural_cmp, ReplayConfig, ReplayFormat, ReplaySource};
pub use synthetic::{SyntheticConfig, SyntheticSource};
pub use truth::{ActiveEvent, EventKind, GroundTruth, TruthInstance};
pub use v4l2::{V4lConfig, V4lSource, V4lStats};

use image::RgbImage;
use std::time::{Duration, SystemTime};

/// One picture on its way through the pipeline.
#[derive(Debug)]
pub struct Frame {
    /// Position in the stream, counting every frame the source produced (dropped ones included).
    pub seq: u64,
    pub captured: Timestamp,
    pub origin: Origin,
    pub image: RgbImage,
    /// What the picture really shows, when the source knows (the synthetic generator does).
    pub truth: Option<Box<GroundTruth>>,
}

/// When a frame was captured, on both clocks: the monotonic one orders and spaces frames, the
/// wall clock is what a person searches by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// Since an arbitrary fixed point (boot, for a camera); never goes backwards.
    pub monotonic: Duration,
    pub wall: SystemTime,
}

/// Where a frame came from, recorded with every kept sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The source as configured, e.g. `v4l:/dev/video0`, `replay:/data/run3`, `synthetic:seed=7`.
    pub source: String,
    /// The file the frame was read from, for replays.
    pub file: Option<String>,
    /// The frame's index within its source (or within `file`).
    pub index: u64,
}

/// What a source says about the frame it just wrote.
#[derive(Debug, Default)]
pub struct FrameMeta {
    pub file: Option<String>,
    pub index: u64,
    /// The driver's capture time, when it has one (V4L2 buffers carry a monotonic timestamp).
    pub monotonic: Option<Duration>,
    pub truth: Option<Box<GroundTruth>>,
}

/// A producer of frames.
pub trait Source: Send {
    /// A short description for logs and sample metadata, e.g. `synthetic:seed=7`.
    fn describe(&self) -> String;

    /// Writes the next picture into `image` (resizing it if needed, reusing its allocation) and
    /// describes it. `Ok(None)` ends a finite stream. Blocks until the frame is due.
    fn next_frame(&mut self, image: &mut RgbImage) -> Result<Option<FrameMeta>, CaptureError>;

    /// Like [`Source::next_frame`], but a frame in an uncompressed camera format may be left
    /// unconverted in `raw` (its length checked), for the pipeline to convert only if the model
    /// takes it; the answer says which buffer was written. By default the frame goes to `image`.
    fn next_pixels(
        &mut self,
        image: &mut RgbImage,
        raw: &mut RawFrame,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        let _ = raw;
        Ok(self.next_frame(image)?.map(|m| (m, Delivered::Rgb)))
    }
}

/// Which buffer [`Source::next_pixels`] wrote the frame into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    Rgb,
    Raw,
}

/// Why a source could not produce a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// One frame was unusable (corrupt JPEG, short buffer); the stream goes on.
    #[error("bad frame{}: {reason}", .file.as_deref().map(|f| format!(" in {f}")).unwrap_or_default())]
    BadFrame {
        file: Option<String>,
        reason: String,
    },
    /// The device disappeared or failed; the source may come back after a reconnect.
    #[error("capture device {device} unavailable: {reason}")]
    DeviceGone { device: String, reason: String },
    /// The source cannot work at all as configured (missing directory, unsupported format).
    #[error("{0}")]
    Unusable(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
