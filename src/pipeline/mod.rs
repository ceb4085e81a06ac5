//! The daemon's wiring: the only place that knows every stage.
//!
//! ```text
//!  capture ──frames (bounded, drop oldest)──▶ segment ──▶ select ──kept (bounded, blocking)──▶ store
//!     ▲                                                      │                                  │
//!     └────────────── recycled image buffers ◀───────────────┴──────────────────────────────────┘
//! ```
//!
//! Each stage runs on its own thread; channels are bounded and created here.
//! - Capture never blocks on inference: when the segmenter is still busy with an earlier frame
//!   the oldest waiting frame is dropped and counted, so the model always works on the newest one.
//! - Selection holds a few candidate frames while it decides (budgets pick the best of a window);
//!   frames it skips give their buffers back at once.
//! - The store applies backpressure and never drops a selected frame silently: a kept frame waits
//!   for its turn; if it cannot be written the error is logged and counted per sample.
//! - Camera frames (YUYV, NV12, MJPEG) and synthetic scenes wait for the model unconverted
//!   (`RawFrame`) and are converted, decoded or painted when it takes them: a frame dropped
//!   from the queue never cost that work. The segment stage takes the next such frame when the
//!   model starts on the current one and converts it meanwhile, on the pool, so the conversion
//!   fills the gaps of the model's work rather than pausing it.
//! - Image buffers travel in a pool, so in a steady state the hot path allocates no frame memory;
//!   the pool keeps only a few spares (`spare_buffers`), so that memory taken by a burst
//!   (selection holding a window of candidates, kept frames waiting for the store) is given back.
//!
//! A per-frame error (bad frame, failed inference, failed write) is logged with context and
//! counted; only a fatal condition ends the run ([`PipelineError`]).
//!
//! Shutdown: [`Control::stop`] (SIGTERM/SIGINT) stops capture; the frames in flight drain through
//! segment, select (which decides the candidates it still holds) and store; then `run` returns.

mod assemble;
mod config;
mod refine_sink;
mod select_stage;
mod stats;
mod status;
mod store_sink;
#[cfg(test)]
mod tests;

pub use assemble::{assemble, build_select, AssembleError, Assembled};
pub use config::PipelineConfig;
pub use refine_sink::RefineSink;
pub use stats::{
    LatencyHistogram, LatencySummary, StageCounters, Stats, StatsSnapshot, LATENCY_BUCKETS,
};
pub use status::{human_bytes, status_line, summary};
pub use store_sink::StoreSink;

use crate::capture::{
    CaptureError, Delivered, Frame, GroundTruth, Origin, RawFrame, Source, Timestamp,
};
use crate::segment::{Detections, Segmenter};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use image::RgbImage;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The verdict on one frame, from the selection stage.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The frame's sequence number (the decision may concern a frame offered earlier).
    pub seq: u64,
    pub keep: bool,
    /// Value of the frame, used to rank kept samples (eviction of the lowest first).
    pub value: f32,
    /// Short tags, e.g. `rare_class`, `occlusion`.
    pub reasons: Vec<String>,
    /// Every strategy's score, verdict and reason, stored with the sample verbatim.
    pub record: serde_json::Value,
}

/// What the pipeline needs from frame selection.
pub trait Select: Send {
    /// Offers a segmented frame; returns the decisions made now (for it or for frames offered
    /// earlier and still held). Every offered frame is eventually decided exactly once.
    fn offer(&mut self, seq: u64, captured: Timestamp, detections: &Detections) -> Vec<Decided>;
    /// End of stream: decides every frame still held.
    fn finish(&mut self) -> Vec<Decided>;
    /// Applies a reloaded configuration (SIGHUP); an error keeps the old settings.
    fn reconfigure(&mut self, _config: &crate::config::Config) -> Result<(), String> {
        Ok(())
    }
}

/// A frame on its way to storage.
pub struct KeptSample {
    pub frame: Frame,
    pub detections: Detections,
    pub decision: Decided,
    /// `[refine]`'s masks (filled by `RefineSink`), stored beside the detector's.
    pub refined: Vec<crate::segment::mobilesam::RefinedInstance>,
}

/// What the pipeline needs from storage.
pub trait Sink: Send {
    /// Writes one kept sample durably. An error costs this sample only.
    fn write(&mut self, sample: &KeptSample) -> Result<SinkReport, SinkError>;
    /// Applies a reloaded configuration (SIGHUP); an error keeps the old settings.
    fn reconfigure(&mut self, _config: &crate::config::Config) -> Result<(), String> {
        Ok(())
    }
}

/// What a write did besides storing the sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkReport {
    pub evicted: u64,
    pub stored_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Why the pipeline stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("capture failed: {0}")]
    Capture(#[source] CaptureError),
    #[error("a pipeline thread panicked: {0}")]
    Panicked(String),
}

/// Limits of a bounded run (tests, demos, benchmarks); the service runs unbounded.
#[derive(Debug, Clone, Default)]
pub struct RunLimits {
    pub max_frames: Option<u64>,
    pub duration: Option<Duration>,
}

/// Channel sizes.
#[derive(Debug, Clone)]
pub struct Queues {
    /// Frames waiting for the segmenter. Small: a waiting frame is a stale frame.
    pub frames: usize,
    /// Segmented frames waiting for selection.
    pub segmented: usize,
    /// Kept samples waiting for the store.
    pub kept: usize,
}

impl Default for Queues {
    fn default() -> Self {
        Self {
            frames: 2,
            segmented: 4,
            kept: 16,
        }
    }
}

/// Shared run state: the stop request, pending reloads, and the liveness and statistics of
/// every stage.
#[derive(Debug, Default)]
pub struct Control {
    stop: AtomicBool,
    /// A reloaded configuration not yet picked up by selection / by the store.
    reload_select: std::sync::Mutex<Option<Arc<crate::config::Config>>>,
    reload_store: std::sync::Mutex<Option<Arc<crate::config::Config>>>,
    pub stats: Stats,
}

impl Control {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Asks capture to stop; what is in flight drains.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Hands a new, already validated configuration to selection and storage; each applies it
    /// between two frames (the model is not touched).
    pub fn reload(&self, config: Arc<crate::config::Config>) {
        *lock(&self.reload_select) = Some(config.clone());
        *lock(&self.reload_store) = Some(config);
    }

    fn take_reload(&self, stage: Stage) -> Option<Arc<crate::config::Config>> {
        match stage {
            Stage::Select => lock(&self.reload_select).take(),
            Stage::Store => lock(&self.reload_store).take(),
            Stage::Capture | Stage::Segment => None,
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn apply_reload(stage: Stage, result: Result<(), String>) {
    match result {
        Ok(()) => tracing::info!(stage = stage.name(), "configuration reloaded"),
        Err(e) => tracing::error!(
            stage = stage.name(),
            error = %e,
            "reloaded configuration refused; keeping the previous settings"
        ),
    }
}

/// The four stages of a run.
pub struct Stages {
    pub source: Box<dyn Source>,
    pub segmenter: Box<dyn Segmenter>,
    pub select: Box<dyn Select>,
    pub sink: Box<dyn Sink>,
}

/// Runs the pipeline until the source ends, the limits are reached or `control.stop()` is called,
/// then drains. Returns when every stage has finished.
pub fn run(
    stages: Stages,
    limits: RunLimits,
    queues: Queues,
    control: Arc<Control>,
) -> Result<(), PipelineError> {
    let Stages {
        source,
        segmenter,
        select,
        sink,
    } = stages;
    // Spare images for capture: enough for the frames between capture and the model. Images
    // beyond that (given back after a burst of held candidates or kept frames) are freed rather
    // than kept idle: at 1280x720 each is 2.7 MB, and a burst may have needed thirty.
    let (pool_tx, pool_rx) = bounded::<RgbImage>(spare_buffers(&queues));
    // Unconverted camera frames: one per slot of the frame queue, the one being captured and
    // the one being converted.
    let (raw_tx, raw_rx) = bounded::<RawFrame>(queues.frames.max(1) + 2);
    let raw_pool = RawPool {
        tx: raw_tx,
        rx: raw_rx,
    };
    let (frame_tx, frame_rx) = bounded::<Captured>(queues.frames.max(1));
    let (seg_tx, seg_rx) = bounded::<(Frame, Detections)>(queues.segmented.max(1));
    let (kept_tx, kept_rx) = bounded::<KeptSample>(queues.kept.max(1));

    let capture = {
        let (control, pool_tx, pool_rx, frame_rx, raw_pool) = (
            control.clone(),
            pool_tx.clone(),
            pool_rx.clone(),
            frame_rx.clone(),
            raw_pool.clone(),
        );
        spawn("capture", move || {
            capture_loop(
                source, limits, control, frame_tx, frame_rx, pool_tx, pool_rx, raw_pool,
            )
        })
    };
    let segment = {
        let (control, pool_tx, pool_rx) = (control.clone(), pool_tx.clone(), pool_rx.clone());
        spawn("segment", move || {
            segment_loop(
                segmenter, frame_rx, seg_tx, pool_tx, pool_rx, raw_pool, control,
            )
        })
    };
    let selection = {
        let (control, pool_tx) = (control.clone(), pool_tx.clone());
        spawn("select", move || {
            select_loop(select, seg_rx, kept_tx, pool_tx, control)
        })
    };
    let store = {
        let control = control.clone();
        spawn("store", move || store_loop(sink, kept_rx, pool_tx, control))
    };

    let capture_result = join(capture)?;
    join(segment)?;
    join(selection)?;
    join(store)?;
    drop(pool_rx);
    capture_result
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .name(format!("edgesift-{name}"))
        .spawn(f)
        .expect("spawning a pipeline thread")
}

fn join<T>(h: thread::JoinHandle<T>) -> Result<T, PipelineError> {
    let name = h.thread().name().unwrap_or("?").to_string();
    h.join().map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        PipelineError::Panicked(format!("{name}: {msg}"))
    })
}

/// Both clocks now, for sources that do not timestamp their frames. The monotonic reading is
/// CLOCK_MONOTONIC, the clock V4L2 stamps its buffers with, so both kinds of stamp compare.
pub fn now() -> Timestamp {
    Timestamp {
        monotonic: monotonic_now(),
        wall: SystemTime::now(),
    }
}

fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer; CLOCK_MONOTONIC exists
    // on every Linux (it cannot fail with these arguments).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A frame between capture and the model, its picture still in the camera's format when the
/// source allowed it.
struct Captured {
    seq: u64,
    captured: Timestamp,
    origin: Origin,
    pixels: Pixels,
    truth: Option<Box<GroundTruth>>,
}

enum Pixels {
    Rgb(RgbImage),
    Raw(RawFrame),
}

/// Spare buffers for unconverted frames.
#[derive(Clone)]
struct RawPool {
    tx: Sender<RawFrame>,
    rx: Receiver<RawFrame>,
}

impl RawPool {
    /// A spare buffer, or an empty one (counted when a frame is first written into it).
    fn take(&self) -> RawFrame {
        self.rx.try_recv().unwrap_or_default()
    }

    fn recycle(&self, raw: RawFrame, stats: &Stats) {
        if let Err(e) = self.tx.try_send(raw) {
            if !e.into_inner().is_empty() {
                stats.buffer_freed();
            }
        }
    }
}

/// Gives a waiting frame's buffer back to its pool.
fn recycle_pixels(pixels: Pixels, pool: &Sender<RgbImage>, raw_pool: &RawPool, stats: &Stats) {
    match pixels {
        Pixels::Rgb(image) => {
            recycle(pool, image, stats);
        }
        Pixels::Raw(raw) => raw_pool.recycle(raw, stats),
    }
}

#[allow(clippy::too_many_arguments)]
fn capture_loop(
    mut source: Box<dyn Source>,
    limits: RunLimits,
    control: Arc<Control>,
    frame_tx: Sender<Captured>,
    frame_rx: Receiver<Captured>,
    pool_tx: Sender<RgbImage>,
    pool_rx: Receiver<RgbImage>,
    raw_pool: RawPool,
) -> Result<(), PipelineError> {
    let describe = source.describe();
    let started = Instant::now();
    let stats = &control.stats;
    let mut seq = 0u64;
    let mut consecutive_errors = 0u32;
    let mut bad_frames = Throttle::new(Duration::from_secs(10));
    // The buffer the source did not write into last time, kept for the next frame: a camera
    // writes every frame into a raw one and never touches the image, and the other way round.
    let mut spare_image: Option<RgbImage> = None;
    let mut spare_raw: Option<RawFrame> = None;
    loop {
        if control.stop_requested() {
            tracing::info!(source = %describe, "capture stopped on request");
            break;
        }
        if limits.max_frames.is_some_and(|m| seq >= m)
            || limits.duration.is_some_and(|d| started.elapsed() >= d)
        {
            tracing::info!(source = %describe, frames = seq, "capture reached its limit");
            break;
        }
        // Empty buffers are sized by the source on first use, and counted then.
        let mut image = spare_image
            .take()
            .unwrap_or_else(|| pool_rx.try_recv().unwrap_or_default());
        let mut raw = spare_raw.take().unwrap_or_else(|| raw_pool.take());
        let fresh = (image.as_raw().is_empty(), raw.is_empty());
        let t0 = Instant::now();
        let result = source.next_pixels(&mut image, &mut raw);
        let pixels = match &result {
            Ok(Some((_, Delivered::Raw))) => {
                // A synthetic scene waits as a world snapshot, without frame bytes.
                if fresh.1 && !raw.is_empty() {
                    stats.buffer_allocated();
                }
                spare_image = Some(image);
                Some(Pixels::Raw(raw))
            }
            Ok(Some((_, Delivered::Rgb))) => {
                if fresh.0 {
                    stats.buffer_allocated();
                }
                spare_raw = Some(raw);
                Some(Pixels::Rgb(image))
            }
            _ => {
                spare_image = Some(image);
                spare_raw = Some(raw);
                None
            }
        };
        match result {
            Ok(Some((meta, _))) => {
                consecutive_errors = 0;
                let mut captured = now();
                if let Some(m) = meta.monotonic {
                    captured.monotonic = m;
                }
                let frame = Captured {
                    seq,
                    captured,
                    origin: Origin {
                        source: describe.clone(),
                        file: meta.file,
                        index: meta.index,
                    },
                    pixels: pixels.expect("a delivered frame has pixels"),
                    truth: meta.truth,
                };
                seq += 1;
                stats.capture.record(t0.elapsed());
                stats.liveness_beat(Stage::Capture);
                push_dropping_oldest(&frame_tx, &frame_rx, frame, &pool_tx, &raw_pool, stats);
            }
            Ok(None) => {
                tracing::info!(source = %describe, frames = seq, "source ended");
                break;
            }
            Err(e @ CaptureError::BadFrame { .. }) => {
                stats.capture.error();
                stats.liveness_beat(Stage::Capture);
                // A camera sending garbage for minutes must not flood the journal.
                if let Some(suppressed) = bad_frames.allow(Instant::now()) {
                    tracing::warn!(source = %describe, error = %e, suppressed, "skipping a bad frame");
                }
            }
            Err(e @ CaptureError::DeviceGone { .. }) => {
                // The source reconnects by itself; give it a moment and keep the pipeline up.
                // The thread is not stuck (it came back with an answer), so it beats: a camera
                // that stays unplugged must not stop the watchdog's pings and have systemd
                // restart a daemon that is already doing the one useful thing, reconnecting.
                stats.capture.error();
                stats.liveness_beat(Stage::Capture);
                consecutive_errors += 1;
                if consecutive_errors == 1 {
                    tracing::warn!(source = %describe, error = %e, "capture device unavailable");
                }
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                stats.capture.error();
                return Err(PipelineError::Capture(e));
            }
        }
    }
    if let Some(image) = spare_image {
        recycle(&pool_tx, image, stats);
    }
    if let Some(raw) = spare_raw {
        raw_pool.recycle(raw, stats);
    }
    Ok(())
}

/// Lets one event through per `period`, counting the ones it held back.
struct Throttle {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(number suppressed since the last one let through)` when this event may be logged.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.period => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// How many idle frame images the pool keeps for capture: one per slot of the frame and
/// segmented queues, one for the frame being captured and one for the frame the model is working
/// on. Fewer made capture allocate (and fault in) a fresh image for most frames once selection
/// gave its held candidates back in batches: capture's CPU doubled (0.03 -> 0.06 cores at 30 fps,
/// 1280x720) in the pipeline bench.
fn spare_buffers(queues: &Queues) -> usize {
    queues.frames.max(1) + queues.segmented + 2
}

/// Least time between two [`give_back_memory`] calls: trimming returns pages that the next
/// burst faults in again, so it is for memory idle after a burst, not for every window.
const GIVE_BACK_EVERY: Duration = Duration::from_secs(30);

/// Gives a frame image back to the pool, or frees it when the pool has enough spares; returns
/// whether it was freed.
fn recycle(pool: &Sender<RgbImage>, image: RgbImage, stats: &Stats) -> bool {
    match pool.try_send(image) {
        Ok(()) => false,
        Err(e) => {
            // An image never written into held no memory and was never counted.
            if !e.into_inner().as_raw().is_empty() {
                stats.buffer_freed();
            }
            true
        }
    }
}

/// Hands the free pages of malloc's arenas back to the kernel, after frame images were freed.
///
/// glibc serves blocks above its mmap threshold from their own mappings, but it raises the
/// threshold to the size of each such block freed: from the second frame image on, images are
/// carved from the arenas, and an image freed in the middle of an arena stays resident. Called
/// after a burst is given back (a selection window decided, a kept frame stored), not per frame,
/// so the model's activations keep their warm arena pages.
fn give_back_memory() {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let mut last = lock(&LAST);
    if last.is_some_and(|t| t.elapsed() < GIVE_BACK_EVERY) {
        return;
    }
    *last = Some(Instant::now());
    drop(last);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes malloc's own locks; it only releases pages of free chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Sends `frame`; when the queue is full the oldest waiting frame is dropped and counted, so
/// capture never waits for the segmenter.
fn push_dropping_oldest(
    tx: &Sender<Captured>,
    rx: &Receiver<Captured>,
    mut frame: Captured,
    pool: &Sender<RgbImage>,
    raw_pool: &RawPool,
    stats: &Stats,
) {
    loop {
        match tx.try_send(frame) {
            Ok(()) => return,
            Err(TrySendError::Full(f)) => {
                frame = f;
                if let Ok(old) = rx.try_recv() {
                    stats.capture.dropped();
                    tracing::trace!(seq = old.seq, "dropped the oldest waiting frame");
                    recycle_pixels(old.pixels, pool, raw_pool, stats);
                }
            }
            Err(TrySendError::Disconnected(f)) => {
                recycle_pixels(f.pixels, pool, raw_pool, stats);
                return;
            }
        }
    }
}

fn segment_loop(
    mut segmenter: Box<dyn Segmenter>,
    frames: Receiver<Captured>,
    out: Sender<(Frame, Detections)>,
    pool: Sender<RgbImage>,
    pool_rx: Receiver<RgbImage>,
    raw_pool: RawPool,
    control: Arc<Control>,
) {
    let stats = &control.stats;
    let mut bad_frames = Throttle::new(Duration::from_secs(10));
    // The next frame, taken and converted while the model worked on the previous one.
    let mut ahead: Option<Frame> = None;
    loop {
        let (frame, was_raw) = match ahead.take() {
            Some(f) => (f, true),
            None => {
                let captured = match frames.recv_timeout(Duration::from_millis(250)) {
                    Ok(f) => f,
                    Err(RecvTimeoutError::Timeout) => {
                        // Idle is alive: nothing to do is not a stall.
                        stats.liveness_beat(Stage::Segment);
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let was_raw = matches!(captured.pixels, Pixels::Raw(_));
                let Some(frame) =
                    converted(captured, &pool, &pool_rx, &raw_pool, stats, &mut bad_frames)
                else {
                    continue;
                };
                (frame, was_raw)
            }
        };
        let t0 = Instant::now();
        // Frames that need converting (decoding, painting): the one waiting next is taken now
        // and converted on the pool while the model works on this one, so the conversion fills
        // the gaps between the model's tasks instead of a pause with the other cores idle. It
        // is then up to one model run older when the model takes it.
        let next = if was_raw {
            frames.try_recv().ok()
        } else {
            None
        };
        let result = match next {
            Some(Captured {
                seq,
                captured,
                origin,
                pixels: Pixels::Raw(raw),
                truth,
            }) => {
                // The model runs on this thread, as without a frame ahead (its memory stays in
                // this thread's malloc arena); the conversion is a job on the pool.
                let (tx, rx) = bounded(1);
                let mut job = Conversion::new(raw, &pool_rx);
                rayon::spawn(move || {
                    job.run();
                    let _ = tx.send(job);
                });
                let result = segmenter.segment(&frame.image);
                let c = Captured {
                    seq,
                    captured,
                    origin,
                    pixels: Pixels::Raw(RawFrame::default()),
                    truth,
                };
                ahead = rx
                    .recv()
                    .ok()
                    .and_then(|job| job.finish(c, &pool, &raw_pool, stats, &mut bad_frames));
                result
            }
            Some(c) => {
                ahead = converted(c, &pool, &pool_rx, &raw_pool, stats, &mut bad_frames);
                segmenter.segment(&frame.image)
            }
            None => segmenter.segment(&frame.image),
        };
        stats.liveness_beat(Stage::Segment);
        match result {
            Ok(det) => {
                stats.segment.record(t0.elapsed());
                if let Some(since_start) = stats.note_first_segmented() {
                    tracing::info!(
                        since_start_ms = since_start.as_millis() as u64,
                        model_ms = t0.elapsed().as_millis() as u64,
                        "first frame segmented"
                    );
                }
                if out.send((frame, det)).is_err() {
                    break;
                }
            }
            Err(e) => {
                stats.segment.error();
                tracing::warn!(seq = frame.seq, error = %e, "segmentation failed; frame skipped");
                recycle(&pool, frame.image, stats);
            }
        }
    }
    if let Some(f) = ahead {
        recycle(&pool, f.image, stats);
    }
}

/// The frame with its picture in RGB: converted now if it came unconverted. A frame whose
/// conversion fails is counted as capture's error and skipped (the checks at capture make that
/// rare: a JPEG with corrupt compressed data, found only when decoded).
fn converted(
    c: Captured,
    pool: &Sender<RgbImage>,
    pool_rx: &Receiver<RgbImage>,
    raw_pool: &RawPool,
    stats: &Stats,
    bad_frames: &mut Throttle,
) -> Option<Frame> {
    let Captured {
        seq,
        captured,
        origin,
        pixels,
        truth,
    } = c;
    match pixels {
        Pixels::Rgb(image) => Some(Frame {
            seq,
            captured,
            origin,
            image,
            truth,
        }),
        Pixels::Raw(raw) => {
            let mut job = Conversion::new(raw, pool_rx);
            job.run();
            let c = Captured {
                seq,
                captured,
                origin,
                pixels: Pixels::Raw(RawFrame::default()),
                truth,
            };
            job.finish(c, pool, raw_pool, stats, bad_frames)
        }
    }
}

/// One frame's conversion, movable to a pool worker: the camera's bytes (or scene), the image
/// to fill and the outcome.
struct Conversion {
    raw: RawFrame,
    image: RgbImage,
    fresh: bool,
    result: Option<Result<Option<GroundTruth>, crate::capture::ConvertError>>,
}

impl Conversion {
    fn new(raw: RawFrame, pool_rx: &Receiver<RgbImage>) -> Self {
        let image = pool_rx.try_recv().unwrap_or_default();
        let fresh = image.as_raw().is_empty();
        Self {
            raw,
            image,
            fresh,
            result: None,
        }
    }

    fn run(&mut self) {
        self.result = Some(self.raw.convert(&mut self.image));
    }

    /// The frame `c` (whose pixels this converted; they are ignored) with its image, or `None`
    /// if the conversion failed.
    fn finish(
        self,
        c: Captured,
        pool: &Sender<RgbImage>,
        raw_pool: &RawPool,
        stats: &Stats,
        bad_frames: &mut Throttle,
    ) -> Option<Frame> {
        let Self {
            raw,
            image,
            fresh,
            result,
        } = self;
        if fresh && !image.as_raw().is_empty() {
            stats.buffer_allocated();
        }
        raw_pool.recycle(raw, stats);
        let mut truth = c.truth;
        match result.unwrap_or(Err(crate::capture::ConvertError::Empty)) {
            // A painted synthetic scene brings its ground truth.
            Ok(painted) => truth = painted.map(Box::new).or(truth),
            Err(e) => {
                stats.capture.error();
                if let Some(suppressed) = bad_frames.allow(Instant::now()) {
                    tracing::warn!(
                        source = %c.origin.source,
                        seq = c.seq,
                        error = %e,
                        suppressed,
                        "skipping a frame that could not be converted"
                    );
                }
                recycle(pool, image, stats);
                return None;
            }
        }
        Some(Frame {
            seq: c.seq,
            captured: c.captured,
            origin: c.origin,
            image,
            truth,
        })
    }
}

fn select_loop(
    mut select: Box<dyn Select>,
    segmented: Receiver<(Frame, Detections)>,
    kept: Sender<KeptSample>,
    pool: Sender<RgbImage>,
    control: Arc<Control>,
) {
    let stats = &control.stats;
    let mut held: HashMap<u64, (Frame, Detections)> = HashMap::new();
    let dispatch = |decisions: Vec<Decided>, held: &mut HashMap<u64, (Frame, Detections)>| {
        let mut freed = false;
        for d in decisions {
            let Some((frame, detections)) = held.remove(&d.seq) else {
                tracing::error!(
                    seq = d.seq,
                    "selection decided a frame it was never offered"
                );
                continue;
            };
            if d.keep {
                stats.note_kept(&d.reasons);
                let lag = frame.captured.wall.elapsed().unwrap_or_default();
                stats.decision_lag.record(lag);
                // Blocking send: the store's backpressure reaches back to here, never a drop.
                if let Err(e) = kept.send(KeptSample {
                    frame,
                    detections,
                    decision: d,
                    refined: Vec::new(),
                }) {
                    tracing::error!(seq = e.0.frame.seq, "store stage gone; kept frame lost");
                }
            } else {
                stats.skipped.increment();
                freed |= recycle(&pool, frame.image, stats);
            }
        }
        if freed {
            give_back_memory();
        }
    };
    loop {
        if let Some(cfg) = control.take_reload(Stage::Select) {
            apply_reload(Stage::Select, select.reconfigure(&cfg));
        }
        let (frame, det) = match segmented.recv_timeout(Duration::from_millis(250)) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => {
                stats.liveness_beat(Stage::Select);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let t0 = Instant::now();
        let decisions = select.offer(frame.seq, frame.captured, &det);
        stats.select.record(t0.elapsed());
        stats.liveness_beat(Stage::Select);
        held.insert(frame.seq, (frame, det));
        dispatch(decisions, &mut held);
    }
    let decisions = select.finish();
    dispatch(decisions, &mut held);
    for (seq, (frame, _)) in held.drain() {
        tracing::error!(seq, "selection never decided this frame; dropping it");
        recycle(&pool, frame.image, stats);
    }
}

fn store_loop(
    mut sink: Box<dyn Sink>,
    kept: Receiver<KeptSample>,
    pool: Sender<RgbImage>,
    control: Arc<Control>,
) {
    let stats = &control.stats;
    loop {
        if let Some(cfg) = control.take_reload(Stage::Store) {
            apply_reload(Stage::Store, sink.reconfigure(&cfg));
        }
        let sample = match kept.recv_timeout(Duration::from_millis(250)) {
            Ok(s) => s,
            Err(RecvTimeoutError::Timeout) => {
                stats.liveness_beat(Stage::Store);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let t0 = Instant::now();
        match sink.write(&sample) {
            Ok(report) => {
                stats.store.record(t0.elapsed());
                stats.note_stored(report);
            }
            Err(e) => {
                stats.store.error();
                tracing::error!(seq = sample.frame.seq, error = %e, "could not store a kept frame");
            }
        }
        stats.liveness_beat(Stage::Store);
        if recycle(&pool, sample.frame.image, stats) {
            give_back_memory();
        }
    }
}

/// The pipeline's stages, for liveness and statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Capture,
    Segment,
    Select,
    Store,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Capture, Stage::Segment, Stage::Select, Stage::Store];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Capture => "capture",
            Stage::Segment => "segment",
            Stage::Select => "select",
            Stage::Store => "store",
        }
    }
}

/// Nanoseconds since the Unix epoch, for metadata.
pub fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}
