//! The reconnection logic against a scripted camera on a manual clock.

use super::*;
use crate::capture::pace::ManualClock;
use std::collections::VecDeque;
use std::sync::Mutex;

/// What the scripted stream does on each `next`.
#[derive(Debug, Clone)]
enum Ev {
    Frame(u32),
    Bad(u32),
    Gone(&'static str),
    /// An MJPEG frame whose header is fine and whose compressed data is cut short: it passes
    /// the checks on arrival and fails when decoded.
    Undecodable(u32),
}

type OpenResult = Result<Vec<Ev>, OpenError>;

struct Script {
    opens: VecDeque<OpenResult>,
    /// When each open was attempted, on the manual clock.
    calls: Vec<Duration>,
}

struct FakeCamera {
    script: Arc<Mutex<Script>>,
    clock: Arc<ManualClock>,
}

impl Camera for FakeCamera {
    fn open(&mut self, _: &V4lConfig) -> Result<Box<dyn CameraStream>, OpenError> {
        let mut s = self.script.lock().unwrap();
        s.calls.push(self.clock.elapsed());
        match s.opens.pop_front() {
            Some(Ok(events)) => Ok(Box::new(FakeStream(events.into()))),
            Some(Err(e)) => Err(e),
            None => Err(OpenError::Transient("no such device".into())),
        }
    }
}

struct FakeStream(VecDeque<Ev>);

impl CameraStream for FakeStream {
    fn mode(&self) -> String {
        "YUYV 64x48 @ 30 fps".into()
    }

    fn next(&mut self, image: &mut RgbImage) -> Result<Captured, StreamError> {
        match self.0.pop_front().unwrap_or(Ev::Gone("script ended")) {
            Ev::Frame(seq) => {
                *image = RgbImage::from_pixel(4, 4, image::Rgb([seq as u8, 0, 0]));
                Ok(Captured {
                    meta: FrameMeta {
                        index: u64::from(seq),
                        monotonic: Some(Duration::from_millis(u64::from(seq) * 33)),
                        ..FrameMeta::default()
                    },
                    sequence: Some(seq),
                })
            }
            Ev::Bad(seq) => Err(StreamError::Bad {
                reason: format!("corrupt MJPEG (sequence {seq})"),
                sequence: Some(seq),
            }),
            Ev::Gone(why) => Err(StreamError::Gone(why.into())),
            Ev::Undecodable(seq) => Err(StreamError::Bad {
                reason: format!("undecodable frame {seq} asked for in RGB"),
                sequence: Some(seq),
            }),
        }
    }

    fn next_into(
        &mut self,
        image: &mut RgbImage,
        raw: Option<&mut RawFrame>,
    ) -> Result<(Captured, Delivered), StreamError> {
        let (Some(Ev::Undecodable(seq)), Some(raw)) = (self.0.front().cloned(), raw) else {
            return Ok((self.next(image)?, Delivered::Rgb));
        };
        self.0.pop_front();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&RgbImage::from_pixel(16, 16, image::Rgb([seq as u8, 9, 9])))
            .unwrap();
        jpeg.truncate(jpeg.len() * 2 / 3);
        let conv = crate::capture::Converter::new(
            crate::capture::PixelFormat::Mjpeg,
            16,
            16,
            None,
            Default::default(),
        )
        .unwrap();
        raw.fill(&conv, &jpeg).expect("the header is whole");
        let meta = FrameMeta {
            index: u64::from(seq),
            ..FrameMeta::default()
        };
        let captured = Captured {
            meta,
            sequence: Some(seq),
        };
        Ok((captured, Delivered::Raw))
    }
}

fn transient(msg: &str) -> OpenResult {
    Err(OpenError::Transient(msg.into()))
}

struct Rig {
    clock: Arc<ManualClock>,
    script: Arc<Mutex<Script>>,
}

impl Rig {
    fn new(opens: Vec<OpenResult>) -> Self {
        Self {
            clock: ManualClock::new(),
            script: Arc::new(Mutex::new(Script {
                opens: opens.into(),
                calls: Vec::new(),
            })),
        }
    }

    fn open(&self, cfg: &V4lConfig) -> Result<V4lSource, CaptureError> {
        let camera = FakeCamera {
            script: self.script.clone(),
            clock: self.clock.clone(),
        };
        V4lSource::with_parts(cfg, Box::new(camera), self.clock.clone())
    }

    fn calls(&self) -> Vec<Duration> {
        self.script.lock().unwrap().calls.clone()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// `Ok(index)`, `Err("gone")`, `Err("bad")` for each call.
fn pull(src: &mut V4lSource, n: usize) -> Vec<Result<u64, &'static str>> {
    let mut img = RgbImage::new(1, 1);
    (0..n)
        .map(|_| match src.next_frame(&mut img) {
            Ok(Some(m)) => Ok(m.index),
            Ok(None) => panic!("a camera does not end"),
            Err(CaptureError::DeviceGone { .. }) => Err("gone"),
            Err(CaptureError::BadFrame { .. }) => Err("bad"),
            Err(e) => panic!("a transient condition became fatal: {e}"),
        })
        .collect()
}

#[test]
fn missing_camera_without_waiting_is_a_clear_error() {
    let rig = Rig::new(vec![transient(
        "camera /dev/video7: no such device (present: /dev/video0)",
    )]);
    let cfg = V4lConfig {
        device: "/dev/video7".into(),
        startup_wait_s: 0,
        ..V4lConfig::default()
    };
    let e = rig.open(&cfg).err().unwrap();
    assert!(matches!(e, CaptureError::Unusable(_)));
    assert_eq!(
        e.to_string(),
        "camera /dev/video7: no such device (present: /dev/video0) (startup_wait_s = 0: not waiting)"
    );
    assert_eq!(rig.calls().len(), 1);
}

#[test]
fn waits_at_startup_with_backoff_then_gives_up() {
    let rig = Rig::new(vec![]);
    let cfg = V4lConfig {
        startup_wait_s: 3,
        ..V4lConfig::default()
    };
    let e = rig.open(&cfg).err().unwrap();
    assert!(
        e.to_string().ends_with("no such device (waited 3 s)"),
        "{e}"
    );
    // 0.5, 1, then what is left of the 3 s.
    assert_eq!(rig.calls(), [secs(0.0), secs(0.5), secs(1.5), secs(3.0)]);
}

#[test]
fn a_late_camera_is_picked_up() {
    let rig = Rig::new(vec![
        transient("no such device"),
        transient("permission denied"),
        Ok(vec![Ev::Frame(1)]),
    ]);
    let mut src = rig.open(&V4lConfig::default()).unwrap();
    assert_eq!(rig.calls(), [secs(0.0), secs(0.5), secs(1.5)]);
    assert_eq!(src.describe(), "v4l:/dev/video0");
    assert_eq!(src.mode().as_deref(), Some("YUYV 64x48 @ 30 fps"));
    let mut img = RgbImage::new(1, 1);
    let meta = src.next_frame(&mut img).unwrap().unwrap();
    assert_eq!(meta.monotonic, Some(Duration::from_millis(33)));
    assert_eq!(img.get_pixel(0, 0).0, [1, 0, 0]);
}

#[test]
fn not_a_camera_fails_at_once() {
    let rig = Rig::new(vec![Err(OpenError::Fatal(
        "/dev/null is not a V4L2 device".into(),
    ))]);
    let e = rig.open(&V4lConfig::default()).err().unwrap();
    assert_eq!(e.to_string(), "/dev/null is not a V4L2 device");
    assert_eq!(rig.calls().len(), 1);
}

#[test]
fn unplug_reconnects_with_backoff_and_never_fails_fatally() {
    let rig = Rig::new(vec![
        Ok(vec![Ev::Frame(1), Ev::Frame(2), Ev::Gone("No such device")]),
        transient("no such device"),
        // A different camera without an accepted format: still not fatal once running.
        Err(OpenError::Fatal("offers only H264".into())),
        Ok(vec![Ev::Frame(10)]),
    ]);
    let mut src = rig.open(&V4lConfig::default()).unwrap();
    let got = pull(&mut src, 7);
    assert_eq!(
        got,
        [
            Ok(1),
            Ok(2),
            Err("gone"), // lost at t = 0
            Err("gone"), // t = 0.5: attempt 1 fails, next in 1 s
            Err("gone"), // t = 1.5: attempt 2 fails, next in 2 s
            Err("gone"), // t = 2.5: blocked 1 s, not due yet
            Ok(10),      // t = 3.5: attempt 3 succeeds
        ]
    );
    assert_eq!(
        rig.calls(),
        [secs(0.0), secs(0.5), secs(1.5), secs(3.5)],
        "open attempts"
    );
    // No call blocked longer than a second.
    assert!(rig.clock.sleeps().iter().all(|&s| s <= MAX_BLOCK));
    assert_eq!(
        src.stats(),
        V4lStats {
            frames: 3,
            bad_frames: 0,
            driver_dropped: 0, // each open starts a new sequence
            disconnects: 1,
            reconnects: 1,
        }
    );
}

#[test]
fn backoff_is_capped() {
    let rig = Rig::new(vec![Ok(vec![Ev::Gone("I/O error")])]);
    let cfg = V4lConfig {
        reconnect_min_ms: 500,
        reconnect_max_ms: 2000,
        ..V4lConfig::default()
    };
    let mut src = rig.open(&cfg).unwrap();
    let got = pull(&mut src, 12);
    assert!(got.iter().all(|r| *r == Err("gone")));
    let calls = rig.calls();
    let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    // Startup open, then 0.5 s after the loss, then 1, 2, 2, 2 ...
    assert_eq!(
        &gaps[..5],
        [secs(0.5), secs(1.0), secs(2.0), secs(2.0), secs(2.0)]
    );
    assert_eq!(src.mode(), None);
}

#[test]
fn corrupt_frames_are_skipped_counted_and_reset_the_camera_when_endless() {
    let rig = Rig::new(vec![
        Ok(vec![
            Ev::Frame(1),
            Ev::Bad(2),
            Ev::Frame(3),
            Ev::Bad(4),
            Ev::Bad(5),
            Ev::Bad(6),
        ]),
        Ok(vec![Ev::Frame(1)]),
    ]);
    let cfg = V4lConfig {
        reset_after_bad_frames: 3,
        ..V4lConfig::default()
    };
    let mut src = rig.open(&cfg).unwrap();
    let got = pull(&mut src, 7);
    assert_eq!(
        got,
        [
            Ok(1),
            Err("bad"),
            Ok(3),
            Err("bad"),
            Err("bad"),
            Err("bad"), // the third in a row: the camera is reopened
            Ok(1),
        ]
    );
    let s = src.stats();
    assert_eq!(
        (s.frames, s.bad_frames, s.disconnects, s.reconnects),
        (3, 4, 1, 1)
    );
    assert_eq!(rig.calls().len(), 2);
}

/// Frames handed over undecoded and found corrupt only when the pipeline decodes them count
/// towards the reset too; one that decodes starts the count again.
#[test]
fn frames_that_fail_to_decode_later_reset_the_camera_when_endless() {
    use Ev::Undecodable as U;
    let rig = Rig::new(vec![
        Ok(vec![
            U(1),
            U(2),
            Ev::Frame(3),
            U(4),
            U(5),
            U(6),
            Ev::Frame(7),
        ]),
        Ok(vec![Ev::Frame(1)]),
    ]);
    let cfg = V4lConfig {
        reset_after_bad_frames: 3,
        ..V4lConfig::default()
    };
    let mut src = rig.open(&cfg).unwrap();
    let (mut image, mut raw) = (RgbImage::new(1, 1), RawFrame::default());
    let mut got = Vec::new();
    for _ in 0..7 {
        got.push(match src.next_pixels(&mut image, &mut raw) {
            Ok(Some((m, Delivered::Raw))) => {
                // What the segment stage does with the frame it takes.
                let decoded = raw.convert(&mut image);
                assert!(decoded.is_err(), "frame {}", m.index);
                Err("undecodable")
            }
            Ok(Some((m, Delivered::Rgb))) => Ok(m.index),
            Ok(None) => panic!("a camera does not end"),
            Err(CaptureError::DeviceGone { .. }) => Err("gone"),
            Err(e) => panic!("unexpected: {e}"),
        });
    }
    assert_eq!(
        got,
        [
            Err("undecodable"),
            Err("undecodable"),
            Ok(3),
            Err("undecodable"),
            Err("undecodable"),
            Err("undecodable"), // the third in a row: reopened before the next frame
            Ok(1),
        ]
    );
    assert_eq!(rig.calls().len(), 2);
    assert_eq!((src.stats().disconnects, src.stats().reconnects), (1, 1));
}

#[test]
fn warmup_frames_are_dropped_after_each_open_and_driver_drops_counted() {
    let rig = Rig::new(vec![Ok(vec![
        Ev::Frame(1),
        Ev::Frame(2),
        Ev::Frame(3),
        Ev::Frame(7),
        Ev::Frame(8),
    ])]);
    let cfg = V4lConfig {
        warmup_frames: 2,
        ..V4lConfig::default()
    };
    let mut src = rig.open(&cfg).unwrap();
    assert_eq!(pull(&mut src, 3), [Ok(3), Ok(7), Ok(8)]);
    assert_eq!(src.stats().frames, 3);
    assert_eq!(src.stats().driver_dropped, 3);
}

#[test]
fn invalid_config_is_unusable_naming_the_key() {
    let rig = Rig::new(vec![]);
    let cfg = V4lConfig {
        buffers: 0,
        ..V4lConfig::default()
    };
    let e = rig.open(&cfg).err().unwrap();
    assert_eq!(
        e.to_string(),
        "camera /dev/video0: buffers: must be between 2 and 32, got 0"
    );
    assert!(rig.calls().is_empty());
}
