//! The wiring with stand-in stages: ordering, drop-oldest, drain on stop, per-frame errors.

use super::*;
use crate::capture::{CaptureError, FrameMeta};
use crate::segment::{Architecture, ModelInfo, SegmentError};
use std::sync::Mutex;

/// Frames of a fixed size; frame `i` is filled with the byte `i % 251`. `bad` indices fail.
/// With `yuyv`, frames come unconverted as grey YUYV (luma `i % 251`) when the pipeline asks
/// for raw frames, as a camera's do.
struct CountingSource {
    n: u64,
    next: u64,
    bad: Vec<u64>,
    pace: Duration,
    yuyv: Option<crate::capture::Converter>,
}

impl CountingSource {
    /// Advances to the next frame: `Ok(Some(i))`, or the end, or a bad frame.
    fn advance(&mut self) -> Result<Option<u64>, CaptureError> {
        if self.next >= self.n {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        thread::sleep(self.pace);
        if self.bad.contains(&i) {
            return Err(CaptureError::BadFrame {
                file: Some(format!("{i}.jpg")),
                reason: "corrupt".into(),
            });
        }
        Ok(Some(i))
    }
}

impl Source for CountingSource {
    fn describe(&self) -> String {
        "test:counting".into()
    }

    fn next_pixels(
        &mut self,
        image: &mut RgbImage,
        raw: &mut RawFrame,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        let Some(conv) = self.yuyv.clone() else {
            return Ok(self.next_frame(image)?.map(|m| (m, Delivered::Rgb)));
        };
        let Some(i) = self.advance()? else {
            return Ok(None);
        };
        let y = (i % 251) as u8;
        let frame: Vec<u8> = [y, 128, y, 128].repeat(4 * 4);
        raw.fill(&conv, &frame).expect("a whole frame");
        let meta = FrameMeta {
            index: i,
            ..Default::default()
        };
        Ok(Some((meta, Delivered::Raw)))
    }

    fn next_frame(&mut self, image: &mut RgbImage) -> Result<Option<FrameMeta>, CaptureError> {
        let Some(i) = self.advance()? else {
            return Ok(None);
        };
        if image.dimensions() != (8, 4) {
            *image = RgbImage::new(8, 4);
        }
        image.fill((i % 251) as u8);
        Ok(Some(FrameMeta {
            index: i,
            ..Default::default()
        }))
    }
}

struct FakeSegmenter {
    info: ModelInfo,
    delay: Duration,
    fail_on_byte: Option<u8>,
}

impl FakeSegmenter {
    fn new(delay: Duration) -> Self {
        Self {
            info: ModelInfo {
                name: "fake".into(),
                path: "fake".into(),
                sha256: String::new(),
                class_names: vec!["thing".to_string()].into(),
                trained_imgsz: None,
                architecture: Architecture {
                    num_classes: 1,
                    num_masks: 0,
                    proto_channels: 0,
                    reg_max: 0,
                    backbone_widths: vec![],
                    neck_widths: [0; 3],
                    c2f_depths: vec![],
                },
            },
            delay,
            fail_on_byte: None,
        }
    }
}

impl Segmenter for FakeSegmenter {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError> {
        thread::sleep(self.delay);
        let first = image.as_raw()[0];
        if Some(first) == self.fail_on_byte {
            return Err(SegmentError::BadInput("test failure".into()));
        }
        Ok(Detections {
            image_width: image.width(),
            image_height: image.height(),
            instances: vec![],
            embedding: vec![first as f32],
            class_names: self.info.class_names.clone(),
            timings: Default::default(),
        })
    }
}

/// Holds every frame until the next one arrives, then keeps it when its byte is even.
#[derive(Default)]
struct HoldOneSelect {
    held: Option<(u64, u8)>,
}

impl Select for HoldOneSelect {
    fn offer(&mut self, seq: u64, _t: Timestamp, d: &Detections) -> Vec<Decided> {
        let prev = self.held.replace((seq, d.embedding[0] as u8));
        prev.map(decide).into_iter().collect()
    }

    fn finish(&mut self) -> Vec<Decided> {
        self.held.take().map(decide).into_iter().collect()
    }
}

fn decide((seq, byte): (u64, u8)) -> Decided {
    Decided {
        seq,
        keep: byte % 2 == 0,
        value: byte as f32,
        reasons: vec!["even".into()],
        record: serde_json::json!({ "byte": byte }),
    }
}

#[derive(Clone, Default)]
struct RecordingSink {
    got: Arc<Mutex<Vec<(u64, u8, String)>>>,
    delay: Duration,
}

impl Sink for RecordingSink {
    fn write(&mut self, s: &KeptSample) -> Result<SinkReport, SinkError> {
        thread::sleep(self.delay);
        self.got.lock().unwrap().push((
            s.frame.seq,
            s.frame.image.as_raw()[0],
            s.frame.origin.source.clone(),
        ));
        Ok(SinkReport::default())
    }
}

fn stages(source: CountingSource, seg: FakeSegmenter, sink: RecordingSink) -> Stages {
    Stages {
        source: Box::new(source),
        segmenter: Box::new(seg),
        select: Box::new(HoldOneSelect::default()),
        sink: Box::new(sink),
    }
}

fn source(n: u64) -> CountingSource {
    CountingSource {
        n,
        next: 0,
        bad: vec![],
        pace: Duration::ZERO,
        yuyv: None,
    }
}

/// Like [`source`], as unconverted full-range YUYV frames.
fn yuyv_source(n: u64) -> CountingSource {
    let spec = crate::capture::YuvSpec {
        range: crate::capture::YuvRange::Full,
        ..Default::default()
    };
    let conv = crate::capture::Converter::new(crate::capture::PixelFormat::Yuyv, 8, 4, None, spec)
        .expect("an 8x4 YUYV converter");
    CountingSource {
        yuyv: Some(conv),
        ..source(n)
    }
}

#[test]
fn every_frame_is_segmented_and_decided_when_nothing_is_slow() {
    let sink = RecordingSink::default();
    let control = Control::new();
    let mut src = source(40);
    // Pace capture so the segmenter (instant) never falls behind.
    src.pace = Duration::from_millis(2);
    run(
        stages(src, FakeSegmenter::new(Duration::ZERO), sink.clone()),
        RunLimits::default(),
        Queues::default(),
        control.clone(),
    )
    .unwrap();
    let snap = control.stats.snapshot();
    assert_eq!(snap.captured, 40);
    assert_eq!(snap.segmented + snap.dropped, 40);
    assert_eq!(snap.selected_kept + snap.skipped, snap.segmented);
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len() as u64, snap.selected_kept);
    // Kept frames arrive in capture order, with their own pixels and origin.
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    for (seq, byte, origin) in &got {
        assert_eq!(*byte as u64, seq % 251);
        assert_eq!(byte % 2, 0);
        assert_eq!(origin, "test:counting");
    }
}

#[test]
fn capture_drops_the_oldest_frame_instead_of_waiting_for_a_slow_model() {
    let sink = RecordingSink::default();
    let control = Control::new();
    run(
        stages(
            source(200),
            FakeSegmenter::new(Duration::from_millis(5)),
            sink.clone(),
        ),
        RunLimits::default(),
        Queues::default(),
        control.clone(),
    )
    .unwrap();
    let snap = control.stats.snapshot();
    assert_eq!(snap.captured, 200);
    assert!(
        snap.dropped > 0,
        "a 5 ms model cannot keep up with an unpaced source"
    );
    // Nothing vanishes: every captured frame was either dropped (counted) or segmented.
    assert_eq!(snap.segmented + snap.dropped, 200);
    assert_eq!(snap.selected_kept + snap.skipped, snap.segmented);
    assert_eq!(sink.got.lock().unwrap().len() as u64, snap.selected_kept);
    // The last frame is never the one dropped: the model always gets the newest.
    assert_eq!(snap.stored, snap.selected_kept);
}

#[test]
fn unconverted_camera_frames_are_converted_when_the_model_takes_them() {
    let sink = RecordingSink::default();
    let control = Control::new();
    run(
        stages(
            yuyv_source(200),
            FakeSegmenter::new(Duration::from_millis(5)),
            sink.clone(),
        ),
        RunLimits::default(),
        Queues::default(),
        control.clone(),
    )
    .unwrap();
    let snap = control.stats.snapshot();
    assert_eq!(snap.captured, 200);
    assert!(snap.dropped > 0, "the model is slower than capture");
    assert_eq!(snap.capture_errors, 0);
    assert_eq!(snap.segmented + snap.dropped, 200);
    assert_eq!(snap.selected_kept + snap.skipped, snap.segmented);
    // Each kept frame carries the conversion of its own bytes (grey at its luma).
    let got = sink.got.lock().unwrap().clone();
    assert_eq!(got.len() as u64, snap.selected_kept);
    assert!(!got.is_empty());
    for (seq, byte, _) in &got {
        assert_eq!(*byte as u64, seq % 251);
    }
}

/// MJPEG frames handed over undecoded, as the camera source does; frame `corrupt` has its
/// compressed data cut short (its header is fine, so only decoding finds it).
struct JpegSource {
    frames: Vec<Vec<u8>>,
    next: usize,
    conv: crate::capture::Converter,
}

impl JpegSource {
    fn new(n: usize, corrupt: usize) -> Self {
        let frames = (0..n)
            .map(|i| {
                let img = RgbImage::from_fn(32, 16, |x, y| {
                    image::Rgb([(i % 251) as u8, (x * 8) as u8, (y * 16) as u8])
                });
                let mut out = Vec::new();
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
                    .encode_image(&img)
                    .unwrap();
                if i == corrupt {
                    let n = out.len();
                    out.truncate(n * 2 / 3);
                }
                out
            })
            .collect();
        let conv = crate::capture::Converter::new(
            crate::capture::PixelFormat::Mjpeg,
            32,
            16,
            None,
            Default::default(),
        )
        .unwrap();
        Self {
            frames,
            next: 0,
            conv,
        }
    }
}

impl Source for JpegSource {
    fn describe(&self) -> String {
        "test:mjpeg".into()
    }

    fn next_pixels(
        &mut self,
        _image: &mut RgbImage,
        raw: &mut RawFrame,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        let Some(f) = self.frames.get(self.next) else {
            return Ok(None);
        };
        raw.fill(&self.conv, f).unwrap();
        self.next += 1;
        thread::sleep(Duration::from_millis(2));
        let meta = FrameMeta {
            index: self.next as u64 - 1,
            ..Default::default()
        };
        Ok(Some((meta, Delivered::Raw)))
    }

    fn next_frame(&mut self, _image: &mut RgbImage) -> Result<Option<FrameMeta>, CaptureError> {
        unreachable!("the pipeline asks for raw frames")
    }
}

#[test]
fn an_undecodable_frame_found_at_the_model_costs_that_frame_only() {
    let sink = RecordingSink::default();
    let control = Control::new();
    run(
        Stages {
            source: Box::new(JpegSource::new(30, 7)),
            segmenter: Box::new(FakeSegmenter::new(Duration::ZERO)),
            select: Box::new(HoldOneSelect::default()),
            sink: Box::new(sink.clone()),
        },
        RunLimits::default(),
        Queues::default(),
        control.clone(),
    )
    .unwrap();
    let snap = control.stats.snapshot();
    assert_eq!(snap.captured, 30);
    // Counted where it belongs: a bad frame from the camera, not a failed inference.
    assert_eq!(snap.capture_errors, 1);
    assert_eq!(snap.segment_errors, 0);
    assert_eq!(snap.segmented + snap.dropped + 1, 30);
    for (seq, byte, origin) in sink.got.lock().unwrap().iter() {
        assert_ne!(*seq, 7);
        assert!(
            (*byte as i64 - (seq % 251) as i64).abs() <= 3,
            "{seq}: {byte}"
        );
        assert_eq!(origin, "test:mjpeg");
    }
}

#[test]
fn stop_drains_frames_in_flight_into_the_store() {
    let sink = RecordingSink {
        delay: Duration::from_millis(3),
        ..Default::default()
    };
    let control = Control::new();
    let c2 = control.clone();
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(60));
        c2.stop();
    });
    let mut src = source(u64::MAX);
    src.pace = Duration::from_millis(1);
    run(
        stages(
            src,
            FakeSegmenter::new(Duration::from_millis(1)),
            sink.clone(),
        ),
        RunLimits::default(),
        Queues::default(),
        control.clone(),
    )
    .unwrap();
    stopper.join().unwrap();
    let snap = control.stats.snapshot();
    assert!(snap.captured > 0);
    // Every frame selection kept reached the store before run() returned.
    assert_eq!(snap.stored, snap.selected_kept);
    assert_eq!(sink.got.lock().unwrap().len() as u64, snap.selected_kept);
    assert_eq!(snap.selected_kept + snap.skipped, snap.segmented);
}

#[test]
fn bad_frames_and_failed_inference_cost_one_frame_each() {
    let sink = RecordingSink::default();
    let control = Control::new();
    let mut src = source(30);
    src.bad = vec![3, 17];
    src.pace = Duration::from_millis(2);
    let mut seg = FakeSegmenter::new(Duration::ZERO);
    seg.fail_on_byte = Some(10);
    run(
        stages(src, seg, sink.clone()),
        RunLimits::default(),
        Queues::default(),
        control.clone(),
    )
    .unwrap();
    let snap = control.stats.snapshot();
    assert_eq!(snap.capture_errors, 2);
    assert_eq!(snap.captured, 28);
    assert_eq!(snap.segment_errors, 1);
    assert_eq!(snap.segmented + snap.dropped + snap.segment_errors, 28);
}

/// Unplugged for `gone_for` (answering `DeviceGone` like the camera source does while it
/// reconnects), then `n` frames.
struct UnpluggedSource {
    until: Option<Instant>,
    gone_for: Duration,
    frames: CountingSource,
}

impl Source for UnpluggedSource {
    fn describe(&self) -> String {
        "test:unplugged".into()
    }

    fn next_frame(&mut self, image: &mut RgbImage) -> Result<Option<FrameMeta>, CaptureError> {
        let until = *self
            .until
            .get_or_insert_with(|| Instant::now() + self.gone_for);
        if Instant::now() < until {
            thread::sleep(Duration::from_millis(20));
            return Err(CaptureError::DeviceGone {
                device: "/dev/video9".into(),
                reason: "unplugged".into(),
            });
        }
        self.frames.next_frame(image)
    }
}

#[test]
fn a_reconnecting_camera_keeps_the_capture_stage_alive() {
    let control = Control::new();
    let src = UnpluggedSource {
        until: None,
        gone_for: Duration::from_millis(1200),
        frames: source(5),
    };
    let stages = Stages {
        source: Box::new(src),
        segmenter: Box::new(FakeSegmenter::new(Duration::ZERO)),
        select: Box::new(HoldOneSelect::default()),
        sink: Box::new(RecordingSink::default()),
    };
    let c = control.clone();
    let runner = thread::spawn(move || run(stages, RunLimits::default(), Queues::default(), c));
    let mut stalled = Vec::new();
    while !runner.is_finished() {
        stalled.extend(control.stats.stalled(Duration::from_millis(400)));
        thread::sleep(Duration::from_millis(25));
    }
    runner.join().unwrap().unwrap();
    assert!(
        !stalled.contains(&Stage::Capture),
        "capture counted as stalled while the camera reconnected"
    );
    let snap = control.stats.snapshot();
    assert_eq!(snap.captured, 5);
    assert!(snap.capture_errors >= 5, "{}", snap.capture_errors);
}

#[test]
fn limits_bound_the_run() {
    let control = Control::new();
    run(
        stages(
            source(1000),
            FakeSegmenter::new(Duration::ZERO),
            RecordingSink::default(),
        ),
        RunLimits {
            max_frames: Some(25),
            duration: None,
        },
        Queues::default(),
        control.clone(),
    )
    .unwrap();
    assert_eq!(control.stats.snapshot().captured, 25);
}

/// Holds frames in bursts of `burst`, then decides the whole burst at once (skipping all but
/// the last), as a selection window does.
struct BurstSelect {
    burst: usize,
    held: Vec<u64>,
}

impl BurstSelect {
    fn decide_all(&mut self) -> Vec<Decided> {
        let last = self.held.last().copied();
        self.held
            .drain(..)
            .map(|seq| Decided {
                seq,
                keep: Some(seq) == last,
                value: 1.0,
                reasons: vec!["burst".into()],
                record: serde_json::Value::Null,
            })
            .collect()
    }
}

impl Select for BurstSelect {
    fn offer(&mut self, seq: u64, _t: Timestamp, _d: &Detections) -> Vec<Decided> {
        self.held.push(seq);
        if self.held.len() < self.burst {
            return Vec::new();
        }
        self.decide_all()
    }

    fn finish(&mut self) -> Vec<Decided> {
        self.decide_all()
    }
}

#[test]
fn images_a_burst_needed_are_freed_once_it_is_decided() {
    let control = Control::new();
    let mut src = source(100);
    src.pace = Duration::from_millis(1);
    let queues = Queues::default();
    run(
        Stages {
            source: Box::new(src),
            segmenter: Box::new(FakeSegmenter::new(Duration::ZERO)),
            select: Box::new(BurstSelect {
                burst: 20,
                held: Vec::new(),
            }),
            sink: Box::new(RecordingSink::default()),
        },
        RunLimits::default(),
        queues.clone(),
        control.clone(),
    )
    .unwrap();
    let snap = control.stats.snapshot();
    assert!(snap.segmented >= 40, "{}", snap.segmented);
    // Twenty held at once (the frame being offered too), so at least that many existed...
    assert!(snap.frame_buffers_peak >= 20, "{}", snap.frame_buffers_peak);
    // ...but once decided only the pool's spares stay.
    assert!(
        snap.frame_buffers <= spare_buffers(&queues) as u64,
        "{} images alive after the run, the pool keeps {}",
        snap.frame_buffers,
        spare_buffers(&queues)
    );
    assert!(snap.first_segmented.is_some());
}

/// Counts reconfigurations; refuses them when told to.
struct ReloadProbe {
    inner: HoldOneSelect,
    seen: Arc<Mutex<Vec<f32>>>,
}

impl Select for ReloadProbe {
    fn offer(&mut self, seq: u64, t: Timestamp, d: &Detections) -> Vec<Decided> {
        self.inner.offer(seq, t, d)
    }

    fn finish(&mut self) -> Vec<Decided> {
        self.inner.finish()
    }

    fn reconfigure(&mut self, config: &crate::config::Config) -> Result<(), String> {
        self.seen.lock().unwrap().push(config.model.conf);
        Ok(())
    }
}

#[test]
fn a_reload_reaches_selection_between_frames() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let control = Control::new();
    let c2 = control.clone();
    let reloader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        let mut cfg = crate::config::Config::default();
        cfg.model.conf = 0.42;
        c2.reload(Arc::new(cfg));
    });
    let mut src = source(60);
    src.pace = Duration::from_millis(2);
    run(
        Stages {
            source: Box::new(src),
            segmenter: Box::new(FakeSegmenter::new(Duration::ZERO)),
            select: Box::new(ReloadProbe {
                inner: HoldOneSelect::default(),
                seen: seen.clone(),
            }),
            sink: Box::new(RecordingSink::default()),
        },
        RunLimits::default(),
        Queues::default(),
        control,
    )
    .unwrap();
    reloader.join().unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![0.42]);
}

#[test]
fn throttle_lets_one_event_per_period_through_and_counts_the_rest() {
    let mut t = Throttle::new(Duration::from_secs(10));
    let t0 = Instant::now();
    assert_eq!(t.allow(t0), Some(0));
    assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
    assert_eq!(t.allow(t0 + Duration::from_secs(9)), None);
    assert_eq!(t.allow(t0 + Duration::from_secs(11)), Some(2));
    assert_eq!(t.allow(t0 + Duration::from_secs(12)), None);
}
