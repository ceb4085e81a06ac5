//! The kernel side: opening, negotiating and streaming a V4L2 device with the `v4l` crate.
//!
//! The `v4l` crate 0.14 panics on a few device answers (a non-UTF-8 card name, an unknown
//! colourspace code, a failing `close` or `STREAMOFF` in `Drop`). A device answer is input, so
//! every call into it runs under [`guard`], and dropping a stream is caught too.

use super::negotiate::{self, fmt_fps, Choice, Mode};
use super::{
    Camera, CameraStream, Captured, DeviceInfo, FormatInfo, OpenError, Sizes, StreamError,
    V4lConfig,
};
use crate::capture::convert::{Converter, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
use crate::capture::{natural_cmp, Delivered, FrameMeta, RawFrame};
use image::RgbImage;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::buffer::{Flags as BufFlags, Type};
use v4l::capability::Flags as CapFlags;
use v4l::format::{Colorspace, Quantization};
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::traits::CaptureStream as _;
use v4l::prelude::{Device, MmapStream};
use v4l::video::capture::Parameters;
use v4l::video::Capture as _;
use v4l::{Format, FourCC, Fraction};

/// The first frame after `STREAMON` may take a while (exposure start-up on UVC cameras).
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs `f`, turning a panic inside the `v4l` crate into an error message.
fn guard<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("the v4l library failed while {what}: {msg}")
    })
}

pub(crate) struct V4l2Camera;

impl Camera for V4l2Camera {
    fn open(&mut self, cfg: &V4lConfig) -> Result<Box<dyn CameraStream>, OpenError> {
        match guard("opening the device", || open_device(cfg)) {
            Ok(r) => r,
            Err(msg) => Err(OpenError::Fatal(format!(
                "camera {}: {msg}",
                cfg.device.display()
            ))),
        }
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Why opening failed, in words a person can act on; transient unless it can never work.
fn classify(dev: &str, what: &str, e: &io::Error) -> OpenError {
    let msg = match errno(e) {
        libc::ENOENT | libc::ENODEV | libc::ENXIO => {
            return OpenError::Transient(format!(
                "camera {dev}: no such device ({})",
                present_devices()
            ))
        }
        libc::EACCES | libc::EPERM => format!(
            "camera {dev}: permission denied; the user running edgesift needs read and write \
             access (usually membership of the `video` group)"
        ),
        libc::EBUSY => format!("camera {dev}: busy, another program is using it"),
        libc::ENOTTY => {
            return OpenError::Fatal(format!(
                "{dev} is not a V4L2 device (it does not answer {what})"
            ))
        }
        _ => format!("camera {dev}: {what} failed: {e}"),
    };
    OpenError::Transient(msg)
}

/// `present: /dev/video0, /dev/video2` or `no /dev/video* devices present`.
fn present_devices() -> String {
    let devs = video_nodes();
    if devs.is_empty() {
        "no /dev/video* devices present".into()
    } else {
        let names: Vec<String> = devs.iter().map(|p| p.display().to_string()).collect();
        format!("present: {}", names.join(", "))
    }
}

/// `/dev/video*`, in number order.
fn video_nodes() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/dev")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("video"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    v
}

fn fourcc_str(f: FourCC) -> String {
    f.repr
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn fraction_fps(interval: Fraction) -> Option<f64> {
    (interval.numerator > 0 && interval.denominator > 0)
        .then(|| f64::from(interval.denominator) / f64::from(interval.numerator))
}

/// Rates offered for one size (empty when the driver does not say).
fn rates(device: &Device, fourcc: FourCC, w: u32, h: u32, want_fps: f64) -> Vec<f64> {
    let mut fps = Vec::new();
    for iv in device.enum_frameintervals(fourcc, w, h).unwrap_or_default() {
        match iv.interval {
            FrameIntervalEnum::Discrete(f) => fps.extend(fraction_fps(f)),
            FrameIntervalEnum::Stepwise(s) => {
                // `min` is the shortest interval: the fastest rate.
                let fastest = fraction_fps(s.min);
                let slowest = fraction_fps(s.max);
                if let (Some(hi), Some(lo)) = (fastest, slowest) {
                    if (lo..=hi).contains(&want_fps) {
                        fps.push(want_fps);
                    }
                    fps.push(hi);
                }
            }
        }
    }
    fps
}

/// The offer for one format, and its description for `edgesift devices`.
fn sizes_of(device: &Device, fourcc: FourCC) -> Sizes {
    let Ok(list) = device.enum_framesizes(fourcc) else {
        return Sizes::Unknown;
    };
    let mut discrete = Vec::new();
    for fs in list {
        match fs.size {
            FrameSizeEnum::Discrete(d) => {
                let fps = rates(device, fourcc, d.width, d.height, 0.0);
                discrete.push((d.width, d.height, fps));
            }
            FrameSizeEnum::Stepwise(s) => {
                return Sizes::Stepwise {
                    min: (s.min_width, s.min_height),
                    max: (s.max_width, s.max_height),
                    step: (s.step_width.max(1), s.step_height.max(1)),
                }
            }
        }
    }
    if discrete.is_empty() {
        Sizes::Unknown
    } else {
        Sizes::Discrete(discrete)
    }
}

/// Every mode worth considering for `format`, given what is wanted.
fn modes_of(device: &Device, format: PixelFormat, fourcc: FourCC, cfg: &V4lConfig) -> Vec<Mode> {
    let (ww, wh) = (cfg.width, cfg.height);
    let mode = |w, h| Mode {
        format,
        width: w,
        height: h,
        fps: rates(device, fourcc, w, h, cfg.fps),
    };
    match sizes_of(device, fourcc) {
        Sizes::Discrete(list) => list.into_iter().map(|(w, h, _)| mode(w, h)).collect(),
        Sizes::Stepwise { min, max, step } => {
            // The wanted size when the range allows it, snapped to the step; and the largest.
            let snap =
                |v: u32, lo: u32, hi: u32, st: u32| (lo + (v.clamp(lo, hi) - lo) / st * st).min(hi);
            let w = snap(ww, min.0, max.0, step.0);
            let h = snap(wh, min.1, max.1, step.1);
            vec![mode(w, h), mode(max.0, max.1)]
        }
        // Not enumerated: ask for the wanted size and see what the driver makes of it.
        Sizes::Unknown => vec![Mode {
            format,
            width: ww,
            height: wh,
            fps: Vec::new(),
        }],
    }
}

fn open_device(cfg: &V4lConfig) -> Result<Box<dyn CameraStream>, OpenError> {
    let dev = cfg.device.display().to_string();
    let device = Device::with_path(&cfg.device).map_err(|e| classify(&dev, "open", &e))?;
    let caps = device
        .query_caps()
        .map_err(|e| classify(&dev, "VIDIOC_QUERYCAP", &e))?;
    let name = format!("{dev} ({}, {})", caps.card, caps.driver);
    let flags = caps.capabilities;
    if !flags.contains(CapFlags::VIDEO_CAPTURE) {
        let why = if flags.contains(CapFlags::VIDEO_CAPTURE_MPLANE) {
            "only offers multi-planar capture, which edgesift does not read yet".to_string()
        } else if flags.contains(CapFlags::META_CAPTURE) {
            "is a metadata node, not a picture; UVC cameras have one of each, try the \
             neighbouring /dev/videoN (`edgesift devices` lists them)"
                .to_string()
        } else {
            format!("cannot capture video (capabilities: {flags})")
        };
        return Err(OpenError::Fatal(format!("{name} {why}")));
    }
    if !flags.contains(CapFlags::STREAMING) {
        return Err(OpenError::Fatal(format!(
            "{name} does not support streaming I/O"
        )));
    }

    let descriptions = device
        .enum_formats()
        .map_err(|e| classify(&dev, "VIDIOC_ENUM_FMT", &e))?;
    let mut modes = Vec::new();
    for d in &descriptions {
        if let Some(pf) = PixelFormat::from_fourcc(&d.fourcc.repr) {
            if cfg.formats.contains(&pf) {
                modes.extend(modes_of(&device, pf, d.fourcc, cfg));
            }
        }
    }
    let want = (cfg.width, cfg.height, cfg.fps);
    let Some(choice) = negotiate::choose(&cfg.formats, &modes, want) else {
        let offered: Vec<String> = descriptions
            .iter()
            .map(|d| format!("{} ({})", fourcc_str(d.fourcc), d.description))
            .collect();
        let accepted: Vec<&str> = cfg.formats.iter().map(|f| f.name()).collect();
        return Err(OpenError::Fatal(format!(
            "{name} offers none of the configured formats [{}]; it offers: {}",
            accepted.join(", "),
            if offered.is_empty() {
                "nothing".to_string()
            } else {
                offered.join(", ")
            }
        )));
    };
    configure(&device, &name, &dev, cfg, &choice)
}

fn configure(
    device: &Device,
    name: &str,
    dev: &str,
    cfg: &V4lConfig,
    choice: &Choice,
) -> Result<Box<dyn CameraStream>, OpenError> {
    let fourcc = FourCC::new(&choice.format.fourcc());
    let fmt = device
        .set_format(&Format::new(choice.width, choice.height, fourcc))
        .map_err(|e| classify(dev, "VIDIOC_S_FMT", &e))?;
    let got = PixelFormat::from_fourcc(&fmt.fourcc.repr).filter(|f| cfg.formats.contains(f));
    let Some(format) = got else {
        return Err(OpenError::Fatal(format!(
            "{name} was asked for {} and answered with {}",
            fourcc_str(fourcc),
            fourcc_str(fmt.fourcc)
        )));
    };
    // Some drivers do not implement frame rates; the camera then runs at its default.
    let interval = Fraction::new(1000, (choice.fps * 1000.0).round().max(1.0) as u32);
    let fps = match device.set_params(&Parameters::new(interval)) {
        Ok(p) => fraction_fps(p.interval).unwrap_or(choice.fps),
        Err(e) => {
            tracing::debug!(device = %dev, error = %e, "the driver does not take a frame rate");
            choice.fps
        }
    };
    let spec = YuvSpec {
        matrix: cfg.matrix.unwrap_or(match fmt.colorspace {
            Colorspace::Rec709 => YuvMatrix::Bt709,
            Colorspace::Rec2020 => YuvMatrix::Bt2020,
            _ => YuvMatrix::Bt601,
        }),
        range: cfg
            .range
            .unwrap_or(match (fmt.quantization, fmt.colorspace) {
                (Quantization::FullRange, _) | (Quantization::Default, Colorspace::JPEG) => {
                    YuvRange::Full
                }
                _ => YuvRange::Limited,
            }),
    };
    let stride = (fmt.stride > 0).then_some(fmt.stride as usize);
    let conv = Converter::new(format, fmt.width, fmt.height, stride, spec)
        .map_err(|e| OpenError::Fatal(format!("{name}: {e}")))?;
    let mut mode = format!(
        "{} {}x{} @ {} fps",
        format.name().to_uppercase(),
        fmt.width,
        fmt.height,
        fmt_fps(fps)
    );
    if format != PixelFormat::Mjpeg {
        mode.push_str(&format!(", {spec}"));
    }
    if (fmt.width, fmt.height) != (cfg.width, cfg.height) || fps < cfg.fps * 0.97 {
        tracing::warn!(
            device = %dev,
            wanted = %format!("{}x{} @ {} fps", cfg.width, cfg.height, fmt_fps(cfg.fps)),
            got = %mode,
            "the camera does not offer the configured mode; using the closest"
        );
    }
    let mut stream = MmapStream::with_buffers(device, Type::VideoCapture, cfg.buffers)
        .map_err(|e| classify(dev, "VIDIOC_REQBUFS", &e))?;
    stream.set_timeout(cfg.frame_timeout().max(FIRST_FRAME_TIMEOUT));
    Ok(Box::new(V4lStream {
        stream: Some(stream),
        started: false,
        conv,
        mode,
        timeout: cfg.frame_timeout(),
        device: dev.to_owned(),
    }))
}

struct V4lStream {
    /// Always `Some` until dropped (taken in `Drop` to release it under a guard).
    stream: Option<MmapStream<'static>>,
    started: bool,
    conv: Converter,
    mode: String,
    timeout: Duration,
    device: String,
}

impl V4lStream {
    /// Waits for a buffer to be ready, retrying when a signal interrupts the wait (the
    /// crate's own wait cannot be retried without re-queueing a buffer).
    fn wait_readable(&self, fd: i32) -> Result<(), StreamError> {
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd, for the length given.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            match r {
                0 => {
                    return Err(StreamError::Gone(format!(
                        "no frame for {} ms",
                        self.timeout.as_millis()
                    )))
                }
                r if r > 0 => return Ok(()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(StreamError::Gone(format!("waiting for a frame: {e}")));
                    }
                }
            }
        }
    }
}

impl CameraStream for V4lStream {
    fn mode(&self) -> String {
        self.mode.clone()
    }

    fn next(&mut self, image: &mut RgbImage) -> Result<Captured, StreamError> {
        Ok(self.next_into(image, None)?.0)
    }

    fn next_into(
        &mut self,
        image: &mut RgbImage,
        raw: Option<&mut RawFrame>,
    ) -> Result<(Captured, Delivered), StreamError> {
        let stream = self.stream.as_mut().expect("present until drop");
        if self.started {
            let fd = stream.handle().fd();
            self.wait_readable(fd)?;
        }
        let stream = self.stream.as_mut().expect("present until drop");
        let conv = &mut self.conv;
        let result = guard("capturing a frame", || {
            let (buf, meta) = match stream.next() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(StreamError::Gone("no first frame after starting".into()))
                }
                Err(e) => return Err(StreamError::Gone(format!("capture failed: {e}"))),
            };
            let sequence = Some(meta.sequence);
            let bad = |reason: String| StreamError::Bad { reason, sequence };
            if meta.flags.contains(BufFlags::ERROR) {
                return Err(bad(format!(
                    "the driver marked frame {} as corrupt",
                    meta.sequence
                )));
            }
            let used = (meta.bytesused as usize).min(buf.len());
            if used == 0 {
                return Err(bad(format!("frame {} is empty", meta.sequence)));
            }
            // The mmap buffer goes back to the driver with the next call: an unconverted frame
            // is copied out (0.1-0.2 ms at 1280x720, against about 1 ms for converting YUYV and
            // 10 ms for decoding MJPEG). A JPEG's compressed data is checked only when decoded;
            // `reset_after_bad_frames` counts frames found bad here (driver errors, empty or
            // cut frames, broken headers, a wrong size) and, separately, frames that fail to
            // decode later (`RawFrame::report_failures_to`).
            let delivered = match raw {
                Some(raw) => {
                    raw.fill(conv, &buf[..used])
                        .map_err(|e| bad(format!("frame {}: {e}", meta.sequence)))?;
                    Delivered::Raw
                }
                _ => {
                    conv.convert(&buf[..used], image)
                        .map_err(|e| bad(format!("frame {}: {e}", meta.sequence)))?;
                    Delivered::Rgb
                }
            };
            let ts = meta.timestamp;
            let monotonic = (meta.flags.bits() & BufFlags::TIMESTAMP_MASK.bits()
                == BufFlags::TIMESTAMP_MONOTONIC.bits()
                && ts.sec >= 0
                && (0..1_000_000).contains(&ts.usec))
            .then(|| Duration::new(ts.sec as u64, ts.usec as u32 * 1000));
            Ok((
                Captured {
                    meta: FrameMeta {
                        index: u64::from(meta.sequence),
                        monotonic,
                        ..FrameMeta::default()
                    },
                    sequence,
                },
                delivered,
            ))
        });
        self.started = true;
        match result {
            Ok(r) => r,
            Err(msg) => Err(StreamError::Gone(msg)),
        }
    }
}

impl Drop for V4lStream {
    fn drop(&mut self) {
        let stream = self.stream.take();
        if let Err(msg) = guard("closing the stream", move || drop(stream)) {
            tracing::warn!(device = %self.device, "{msg}");
        }
    }
}

/// Every `/dev/video*` with what it offers.
pub(crate) fn list_devices() -> Vec<DeviceInfo> {
    video_nodes().iter().map(|p| probe(p)).collect()
}

/// What one device offers.
pub(crate) fn probe(path: &Path) -> DeviceInfo {
    let mut info = DeviceInfo {
        path: path.to_owned(),
        aliases: aliases_of(path),
        card: String::new(),
        driver: String::new(),
        bus: String::new(),
        capture: false,
        note: None,
        formats: Vec::new(),
    };
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        info.note = Some("the path contains a NUL byte".into());
        return info;
    }
    match guard("querying the device", || probe_into(path, &mut info)) {
        Ok(Ok(())) => {}
        Ok(Err(note)) | Err(note) => info.note = Some(note),
    }
    info
}

fn probe_into(path: &Path, info: &mut DeviceInfo) -> Result<(), String> {
    let device = Device::with_path(path).map_err(|e| match errno(&e) {
        libc::EACCES | libc::EPERM => {
            "permission denied (add the user to the `video` group)".into()
        }
        libc::EBUSY => "busy".into(),
        _ => format!("cannot open: {e}"),
    })?;
    let caps = device
        .query_caps()
        .map_err(|e| format!("not a V4L2 device: {e}"))?;
    info.card = caps.card;
    info.driver = caps.driver;
    info.bus = caps.bus;
    let flags = caps.capabilities;
    info.capture = flags.contains(CapFlags::VIDEO_CAPTURE);
    if !info.capture {
        return Err(if flags.contains(CapFlags::META_CAPTURE) {
            "metadata node (not a picture)".into()
        } else if flags.contains(CapFlags::VIDEO_CAPTURE_MPLANE) {
            "multi-planar capture (not supported yet)".into()
        } else {
            "no video capture".into()
        });
    }
    for d in device
        .enum_formats()
        .map_err(|e| format!("cannot list formats: {e}"))?
    {
        info.formats.push(FormatInfo {
            fourcc: fourcc_str(d.fourcc),
            description: d.description.clone(),
            supported: PixelFormat::from_fourcc(&d.fourcc.repr),
            sizes: sizes_of(&device, d.fourcc),
        });
    }
    Ok(())
}

/// Symlinks under `/dev/v4l/by-id` and `/dev/v4l/by-path` that resolve to `path`.
fn aliases_of(path: &Path) -> Vec<PathBuf> {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut out = Vec::new();
    for dir in ["/dev/v4l/by-id", "/dev/v4l/by-path"] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| std::fs::canonicalize(p).is_ok_and(|t| t == target))
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::pace::system_clock;
    use crate::capture::CaptureError;

    /// `/dev/null` opens but is no camera: a clear, immediate error.
    #[test]
    fn dev_null_is_not_a_camera() {
        let cfg = V4lConfig {
            device: "/dev/null".into(),
            startup_wait_s: 5,
            ..V4lConfig::default()
        };
        let e = super::super::V4lSource::with_parts(&cfg, Box::new(V4l2Camera), system_clock())
            .err()
            .unwrap();
        assert!(matches!(e, CaptureError::Unusable(_)));
        assert!(
            e.to_string()
                .starts_with("/dev/null is not a V4L2 device (it does not answer VIDIOC_QUERYCAP)"),
            "{e}"
        );
    }

    /// A path that does not exist, not waiting: names the device and what is present.
    #[test]
    fn missing_device_names_itself() {
        let cfg = V4lConfig {
            device: "/dev/edgesift-no-such-camera".into(),
            startup_wait_s: 0,
            ..V4lConfig::default()
        };
        let e = super::super::V4lSource::open(&cfg).err().unwrap();
        let msg = e.to_string();
        assert!(
            msg.starts_with("camera /dev/edgesift-no-such-camera: no such device ("),
            "{msg}"
        );
        assert!(msg.ends_with("(startup_wait_s = 0: not waiting)"), "{msg}");
    }

    #[test]
    fn probing_a_non_device_says_why() {
        let info = probe(Path::new("/dev/null"));
        assert!(!info.capture);
        assert!(info.note.unwrap().starts_with("not a V4L2 device"));
        let info = probe(Path::new("/nonexistent/video0"));
        assert!(info.note.unwrap().starts_with("cannot open"));
    }

    #[test]
    fn fourcc_and_rates() {
        assert_eq!(fourcc_str(FourCC::new(b"YUYV")), "YUYV");
        assert_eq!(fourcc_str(FourCC::new(b"Y8  ")), "Y8");
        assert_eq!(fourcc_str(FourCC::new(&[0xFF, b'A', 0, b'B'])), "?A?B");
        assert_eq!(fraction_fps(Fraction::new(1, 30)), Some(30.0));
        assert_eq!(
            fraction_fps(Fraction::new(1001, 30000))
                .map(fmt_fps)
                .as_deref(),
            Some("29.97")
        );
        assert_eq!(fraction_fps(Fraction::new(0, 30)), None);
    }
}
