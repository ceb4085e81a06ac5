//! `v4l`: a V4L2 camera (USB/UVC, CSI bridges that speak plain V4L2), with reconnection.
//!
//! Opening negotiates the mode: of the formats the config accepts (YUYV, UYVY, MJPEG, NV12,
//! best first), the camera's offer at the wanted size and rate ([`negotiate`]). Frames are
//! streamed through memory-mapped driver buffers and converted straight from them into the
//! recycled RGB image ([`super::convert`]); the driver's capture time (CLOCK_MONOTONIC, the
//! clock the pipeline stamps frames with) becomes [`FrameMeta::monotonic`].
//!
//! Trouble, and what the source does about it:
//! - **Missing, busy or inaccessible at start-up** (a USB camera that enumerates late at boot,
//!   udev permissions not applied yet): [`V4lSource::open`] waits up to `startup_wait_s`, then
//!   fails with [`CaptureError::Unusable`] naming the device, the reason and the cameras that
//!   are present.
//! - **Not a camera, or nothing usable** (`/dev/null`, a UVC metadata node, no accepted
//!   format): fails at once, listing what the device offers.
//! - **Unplugged, I/O error, or silent for `frame_timeout_ms`** while streaming: the source
//!   closes the device and reopens it with exponential backoff (`reconnect_min_ms` doubling up
//!   to `reconnect_max_ms`). Meanwhile [`Source::next_frame`] returns
//!   [`CaptureError::DeviceGone`] at most about once a second (so the caller can stop and
//!   count), and never a fatal error. The log says "lost", `still unavailable: <new reason>`
//!   and "back" once per change of state, not once per attempt.
//! - **Corrupt frames** (flagged by the driver, short, bad MJPEG): each is a
//!   [`CaptureError::BadFrame`] and counted; the next call goes on. After
//!   `reset_after_bad_frames` in a row the camera is reopened.
//! - **Frames the driver dropped** (the capture thread was late and every buffer was full)
//!   show as gaps in the buffers' sequence numbers, counted in [`V4lStats::driver_dropped`].
//!
//! Not supported (yet): multi-planar devices (most MIPI CSI sensors behind libcamera or
//! Argus, which need those stacks), H.264 cameras, controls (exposure, focus).
//! `edgesift devices` lists what each `/dev/video*` offers.

mod config;
#[cfg(target_os = "linux")]
mod device;
pub mod negotiate;

pub use config::V4lConfig;

use super::pace::{system_clock, Clock};
use super::{CaptureError, Delivered, FrameMeta, RawFrame, Source};
use image::RgbImage;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// While the camera is down, [`Source::next_frame`] blocks at most this long per call.
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// Counters since the source was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V4lStats {
    /// Frames delivered.
    pub frames: u64,
    /// Frames that could not be used (corrupt, short, flagged by the driver).
    pub bad_frames: u64,
    /// Frames the driver dropped because no buffer was free (gaps in its sequence numbers).
    pub driver_dropped: u64,
    /// Times the camera was lost.
    pub disconnects: u64,
    /// Times it came back.
    pub reconnects: u64,
}

/// A V4L2 camera as a frame source. See the module documentation.
pub struct V4lSource {
    cfg: V4lConfig,
    describe: String,
    camera: Box<dyn Camera>,
    clock: Arc<dyn Clock>,
    state: State,
    stats: V4lStats,
    /// Frames in a row handed over undecoded that then failed to decode (in the pipeline's
    /// segment stage), for `reset_after_bad_frames`.
    decode_failures: Arc<AtomicU32>,
}

enum State {
    Streaming(Live),
    Down(Outage),
}

struct Live {
    stream: Box<dyn CameraStream>,
    consecutive_bad: u32,
    warmup_left: u32,
    last_sequence: Option<u32>,
}

struct Outage {
    since: Instant,
    next_attempt: Instant,
    delay: Duration,
    attempts: u32,
    reason: String,
}

impl V4lSource {
    /// Opens the camera described by `cfg`, waiting up to `startup_wait_s` for it to appear.
    pub fn open(cfg: &V4lConfig) -> Result<Self, CaptureError> {
        Self::with_parts(cfg, default_camera(), system_clock())
    }

    pub(crate) fn with_parts(
        cfg: &V4lConfig,
        mut camera: Box<dyn Camera>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaptureError> {
        let dev = cfg.device.display().to_string();
        cfg.validate()
            .map_err(|e| CaptureError::Unusable(format!("camera {dev}: {e}")))?;
        let deadline = clock.now() + Duration::from_secs(cfg.startup_wait_s);
        let mut delay = cfg.reconnect_min();
        let mut last_reason: Option<String> = None;
        let stream = loop {
            match camera.open(cfg) {
                Ok(stream) => break stream,
                Err(OpenError::Fatal(msg)) => return Err(CaptureError::Unusable(msg)),
                Err(OpenError::Transient(msg)) => {
                    let now = clock.now();
                    if now >= deadline {
                        let waited = if cfg.startup_wait_s == 0 {
                            " (startup_wait_s = 0: not waiting)".to_string()
                        } else {
                            format!(" (waited {} s)", cfg.startup_wait_s)
                        };
                        return Err(CaptureError::Unusable(format!("{msg}{waited}")));
                    }
                    if last_reason.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(
                            device = %dev,
                            wait_s = cfg.startup_wait_s,
                            "waiting for the camera: {msg}"
                        );
                        last_reason = Some(msg);
                    }
                    clock.sleep(delay.min(deadline - now));
                    delay = (delay * 2).min(cfg.reconnect_max());
                }
            }
        };
        tracing::info!(device = %dev, mode = %stream.mode(), "camera open");
        Ok(Self {
            describe: format!("v4l:{dev}"),
            cfg: cfg.clone(),
            camera,
            clock,
            state: State::Streaming(Live::new(stream, cfg)),
            stats: V4lStats::default(),
            decode_failures: Arc::default(),
        })
    }

    /// Counters since opening.
    pub fn stats(&self) -> V4lStats {
        self.stats
    }

    /// The mode in use, e.g. `MJPEG 1280x720 @ 30 fps, BT.601 limited range`; `None` while
    /// the camera is down.
    pub fn mode(&self) -> Option<String> {
        match &self.state {
            State::Streaming(live) => Some(live.stream.mode()),
            State::Down(_) => None,
        }
    }

    fn device(&self) -> String {
        self.cfg.device.display().to_string()
    }

    fn gone(&self, reason: String) -> CaptureError {
        CaptureError::DeviceGone {
            device: self.device(),
            reason,
        }
    }

    /// Closes the stream and schedules the first reopening attempt.
    fn go_down(&mut self, reason: String) {
        let now = self.clock.now();
        let delay = self.cfg.reconnect_min();
        tracing::warn!(
            device = %self.device(),
            retry_min_ms = self.cfg.reconnect_min_ms,
            retry_max_ms = self.cfg.reconnect_max_ms,
            "camera lost, reconnecting: {reason}"
        );
        self.stats.disconnects += 1;
        // Dropping the old stream releases the device before it is reopened.
        self.state = State::Down(Outage {
            since: now,
            next_attempt: now + delay,
            delay,
            attempts: 0,
            reason,
        });
    }

    fn on_frame(live: &mut Live, stats: &mut V4lStats, sequence: Option<u32>) {
        if let (Some(prev), Some(seq)) = (live.last_sequence, sequence) {
            let gap = seq.wrapping_sub(prev).wrapping_sub(1);
            // A huge gap is a restart of the counter, not billions of lost frames.
            if gap > 0 && gap < 1 << 20 {
                stats.driver_dropped += u64::from(gap);
            }
        }
        if sequence.is_some() {
            live.last_sequence = sequence;
        }
    }
}

impl Live {
    fn new(stream: Box<dyn CameraStream>, cfg: &V4lConfig) -> Self {
        Self {
            stream,
            consecutive_bad: 0,
            warmup_left: cfg.warmup_frames,
            last_sequence: None,
        }
    }
}

impl Source for V4lSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn next_frame(&mut self, image: &mut RgbImage) -> Result<Option<FrameMeta>, CaptureError> {
        Ok(self.next_with(image, None)?.map(|(meta, _)| meta))
    }

    fn next_pixels(
        &mut self,
        image: &mut RgbImage,
        raw: &mut RawFrame,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        self.next_with(image, Some(raw))
    }
}

impl V4lSource {
    /// The next frame, left unconverted in `raw` when one is given.
    fn next_with(
        &mut self,
        image: &mut RgbImage,
        mut raw: Option<&mut RawFrame>,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        let limit = self.cfg.reset_after_bad_frames;
        if limit > 0
            && matches!(self.state, State::Streaming(_))
            && self.decode_failures.load(Ordering::Relaxed) >= limit
        {
            self.decode_failures.store(0, Ordering::Relaxed);
            self.go_down(format!("{limit} frames in a row could not be decoded"));
        }
        loop {
            match &mut self.state {
                State::Streaming(live) => match live.stream.next_into(image, raw.as_deref_mut()) {
                    Ok((captured, delivered)) => {
                        Self::on_frame(live, &mut self.stats, captured.sequence);
                        live.consecutive_bad = 0;
                        if live.warmup_left > 0 {
                            live.warmup_left -= 1;
                            continue;
                        }
                        self.stats.frames += 1;
                        match (delivered, raw.as_deref_mut()) {
                            (Delivered::Raw, Some(raw)) => {
                                raw.report_failures_to(self.decode_failures.clone())
                            }
                            // Decoded already: a good frame ends a run of bad ones.
                            _ => self.decode_failures.store(0, Ordering::Relaxed),
                        }
                        return Ok(Some((captured.meta, delivered)));
                    }
                    Err(StreamError::Bad { reason, sequence }) => {
                        Self::on_frame(live, &mut self.stats, sequence);
                        self.stats.bad_frames += 1;
                        live.consecutive_bad += 1;
                        let limit = self.cfg.reset_after_bad_frames;
                        if limit > 0 && live.consecutive_bad >= limit {
                            self.go_down(format!(
                                "{limit} corrupt frames in a row, the last: {reason}"
                            ));
                        }
                        return Err(CaptureError::BadFrame { file: None, reason });
                    }
                    Err(StreamError::Gone(reason)) => {
                        self.go_down(reason.clone());
                        return Err(self.gone(reason));
                    }
                },
                State::Down(out) => {
                    let now = self.clock.now();
                    if now < out.next_attempt {
                        self.clock.sleep((out.next_attempt - now).min(MAX_BLOCK));
                        if self.clock.now() < out.next_attempt {
                            let reason = out.reason.clone();
                            return Err(self.gone(reason));
                        }
                    }
                    out.attempts += 1;
                    match self.camera.open(&self.cfg) {
                        Ok(stream) => {
                            let down_s = self.clock.now().duration_since(out.since).as_secs_f64();
                            tracing::info!(
                                device = %self.cfg.device.display(),
                                mode = %stream.mode(),
                                down_s = format!("{down_s:.1}"),
                                attempts = out.attempts,
                                "camera back"
                            );
                            self.stats.reconnects += 1;
                            self.state = State::Streaming(Live::new(stream, &self.cfg));
                        }
                        Err(OpenError::Transient(msg) | OpenError::Fatal(msg)) => {
                            if msg != out.reason {
                                tracing::warn!(
                                    device = %self.cfg.device.display(),
                                    attempts = out.attempts,
                                    "camera still unavailable: {msg}"
                                );
                                out.reason = msg;
                            } else {
                                tracing::debug!(
                                    device = %self.cfg.device.display(),
                                    attempts = out.attempts,
                                    "camera still unavailable: {msg}"
                                );
                            }
                            out.delay = (out.delay * 2).min(self.cfg.reconnect_max());
                            out.next_attempt = self.clock.now() + out.delay;
                            let reason = out.reason.clone();
                            return Err(self.gone(reason));
                        }
                    }
                }
            }
        }
    }
}

/// Opens a configured device, ready to stream. The seam between the reconnection logic and
/// the kernel, so that the former is tested without a camera.
pub(crate) trait Camera: Send {
    fn open(&mut self, cfg: &V4lConfig) -> Result<Box<dyn CameraStream>, OpenError>;
}

/// A streaming device.
pub(crate) trait CameraStream: Send {
    /// The negotiated mode, for logs.
    fn mode(&self) -> String;
    /// Waits for the next frame and converts it into `image`.
    fn next(&mut self, image: &mut RgbImage) -> Result<Captured, StreamError>;

    /// Like `next`, but may leave the frame unconverted in `raw` when one is given.
    fn next_into(
        &mut self,
        image: &mut RgbImage,
        raw: Option<&mut RawFrame>,
    ) -> Result<(Captured, Delivered), StreamError> {
        let _ = raw;
        Ok((self.next(image)?, Delivered::Rgb))
    }
}

pub(crate) struct Captured {
    pub meta: FrameMeta,
    /// The driver's frame counter.
    pub sequence: Option<u32>,
}

#[derive(Debug)]
pub(crate) enum OpenError {
    /// Might work later: missing, busy, no permission yet, I/O trouble.
    Transient(String),
    /// Cannot work as configured: not a camera, no accepted format.
    Fatal(String),
}

#[derive(Debug)]
pub(crate) enum StreamError {
    /// This frame is unusable; the stream goes on.
    Bad {
        reason: String,
        sequence: Option<u32>,
    },
    /// The device failed or vanished.
    Gone(String),
}

fn default_camera() -> Box<dyn Camera> {
    #[cfg(target_os = "linux")]
    {
        Box::new(device::V4l2Camera)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Box::new(Unsupported)
    }
}

#[cfg(not(target_os = "linux"))]
struct Unsupported;

#[cfg(not(target_os = "linux"))]
impl Camera for Unsupported {
    fn open(&mut self, _: &V4lConfig) -> Result<Box<dyn CameraStream>, OpenError> {
        Err(OpenError::Fatal(
            "the v4l source needs Linux (Video4Linux2)".into(),
        ))
    }
}

/// What `edgesift devices` shows about one video device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub path: PathBuf,
    /// Stable names that point at it (`/dev/v4l/by-id/...`, `/dev/v4l/by-path/...`).
    pub aliases: Vec<PathBuf>,
    /// The device's name, e.g. `HD Pro Webcam C920`.
    pub card: String,
    /// The kernel driver, e.g. `uvcvideo`.
    pub driver: String,
    /// Where it is attached, e.g. `usb-0000:00:14.0-1`.
    pub bus: String,
    /// Whether it captures single-planar video (what the v4l source reads).
    pub capture: bool,
    /// A note on why it cannot be used, or why it could not be queried.
    pub note: Option<String>,
    pub formats: Vec<FormatInfo>,
}

/// One pixel format a device offers.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatInfo {
    /// The four-character code, e.g. `YUYV`.
    pub fourcc: String,
    /// The driver's description, e.g. `YUYV 4:2:2`.
    pub description: String,
    /// The config name, when edgesift can convert it.
    pub supported: Option<super::PixelFormat>,
    pub sizes: Sizes,
}

/// The frame sizes of one format.
#[derive(Debug, Clone, PartialEq)]
pub enum Sizes {
    /// Listed sizes, each with its frame rates (empty: not listed).
    Discrete(Vec<(u32, u32, Vec<f64>)>),
    /// Any size in a range.
    Stepwise {
        min: (u32, u32),
        max: (u32, u32),
        step: (u32, u32),
    },
    /// The driver does not enumerate sizes.
    Unknown,
}

/// Every `/dev/video*` with what it offers, in device-number order. Empty off Linux.
pub fn list_devices() -> Vec<DeviceInfo> {
    #[cfg(target_os = "linux")]
    {
        device::list_devices()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// What one device offers (its `note` says why when it cannot be queried).
pub fn probe_device(path: &std::path::Path) -> DeviceInfo {
    #[cfg(target_os = "linux")]
    {
        device::probe(path)
    }
    #[cfg(not(target_os = "linux"))]
    {
        DeviceInfo {
            path: path.to_owned(),
            aliases: Vec::new(),
            card: String::new(),
            driver: String::new(),
            bus: String::new(),
            capture: false,
            note: Some("V4L2 needs Linux".into()),
            formats: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests;
