//! `replay`: frames from files, through the same conversion code as the camera.
//!
//! Three kinds of input:
//! - a directory of PNG/JPEG images (or a single image file), played in natural name order
//!   (`frame2.png` before `frame10.png`; zero-padded names sort the same either way);
//! - a raw dump of YUYV, UYVY or NV12 frames back to back (`width`/`height` from the config),
//!   e.g. from `v4l2-ctl --stream-mmap --stream-to=cam.yuyv`;
//! - an MJPEG stream: JPEGs back to back (`ffmpeg -f v4l2 -input_format mjpeg -i /dev/video0
//!   -c copy cam.mjpeg`). Bytes between frames (multipart boundaries, padding) are skipped.
//!
//! Frames are played at `fps` on a fixed schedule, or as fast as the consumer takes them, and
//! optionally looped. Every frame records the file it came from and its index: the position in
//! the sorted listing for a directory, the frame number within the file for a stream.
//!
//! A frame that cannot be decoded (corrupt or truncated JPEG, unreadable file, short final raw
//! frame) is a [`CaptureError::BadFrame`] naming the file; the next call goes on with the next
//! frame. Only an unusable configuration (missing path, empty directory, wrong raw size) fails
//! at [`ReplaySource::open`].

use super::convert::{prepare, Converter, JpegDecoder, PixelFormat, YuvMatrix, YuvRange, YuvSpec};
use super::pace::{system_clock, Clock, Pacer};
use super::{CaptureError, Delivered, FrameMeta, RawFrame, Source};
use crate::config::{check_range, ConfigError};
use image::RgbImage;
use serde::Deserialize;
use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest JPEG accepted from an MJPEG stream (a frame without an end marker would otherwise
/// grow without bound).
const MAX_STREAM_FRAME_BYTES: usize = 64 << 20;

/// `[source]` with `kind = "replay"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// A directory of PNG/JPEG images, a single image, a raw YUYV/UYVY/NV12 dump or an MJPEG
    /// stream file. Required (no default).
    pub path: PathBuf,
    /// What `path` holds: `auto`, `images`, `mjpeg`, `yuyv`, `uyvy` or `nv12`. `auto` reads a
    /// directory or a `.png`/`.jpg`/`.jpeg` file as images, `.mjpeg`/`.mjpg` as an MJPEG
    /// stream and `.yuyv`/`.yuy2`/`.uyvy`/`.nv12` as raw dumps. Default: `auto`.
    pub format: ReplayFormat,
    /// Frame width of a raw dump, in pixels. Required for raw dumps, ignored otherwise.
    /// Default: 0 (unset).
    pub width: u32,
    /// Frame height of a raw dump, in pixels. Required for raw dumps, ignored otherwise.
    /// Default: 0 (unset).
    pub height: u32,
    /// Playback rate in frames per second, 0 to 1000; 0 plays as fast as the pipeline takes
    /// frames. Default: 30.
    pub fps: f64,
    /// Starts again from the first frame after the last one. Default: false.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// Colour matrix of a raw dump: `bt601`, `bt709` or `bt2020`. Default: `bt601`.
    pub matrix: YuvMatrix,
    /// Value range of a raw dump: `limited` (16..235, what cameras send) or `full`.
    /// Default: `limited`.
    pub range: YuvRange,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            format: ReplayFormat::Auto,
            width: 0,
            height: 0,
            fps: 30.0,
            looping: false,
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Limited,
        }
    }
}

/// What a replay path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayFormat {
    /// Decided from the path (see [`ReplayConfig::format`]).
    Auto,
    /// A directory of PNG/JPEG files, or one such file.
    Images,
    /// Concatenated JPEGs.
    #[serde(alias = "mjpg")]
    Mjpeg,
    /// Raw packed YUYV frames.
    #[serde(alias = "yuy2")]
    Yuyv,
    /// Raw packed UYVY frames.
    Uyvy,
    /// Raw NV12 frames.
    Nv12,
}

impl ReplayFormat {
    fn raw(self) -> Option<PixelFormat> {
        match self {
            Self::Yuyv => Some(PixelFormat::Yuyv),
            Self::Uyvy => Some(PixelFormat::Uyvy),
            Self::Nv12 => Some(PixelFormat::Nv12),
            _ => None,
        }
    }

    /// The format `auto` stands for, judged by the path's extension (and whether it is a
    /// directory, when `is_dir` is known).
    fn guess(path: &Path, is_dir: bool) -> Option<Self> {
        if is_dir {
            return Some(Self::Images);
        }
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "png" | "jpg" | "jpeg" => Some(Self::Images),
            "mjpeg" | "mjpg" => Some(Self::Mjpeg),
            "yuyv" | "yuy2" => Some(Self::Yuyv),
            "uyvy" => Some(Self::Uyvy),
            "nv12" => Some(Self::Nv12),
            _ => None,
        }
    }
}

impl ReplayConfig {
    /// Checks the values; keys are relative to the section (`fps`, not `source.fps`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.path.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "path",
                "required: a directory of images, a raw dump or an MJPEG file",
            ));
        }
        if !self.fps.is_finite() {
            return Err(ConfigError::new("fps", "must be a number"));
        }
        check_range("fps", self.fps, 0.0, 1000.0)?;
        let format = match self.format {
            ReplayFormat::Auto => ReplayFormat::guess(&self.path, false),
            f => Some(f),
        };
        if let Some(raw) = format.and_then(ReplayFormat::raw) {
            for (key, v) in [("width", self.width), ("height", self.height)] {
                if v == 0 {
                    return Err(ConfigError::new(
                        key,
                        format!("required for a raw {raw} dump (the file has no header)"),
                    ));
                }
                check_range(key, v, 1, 16384)?;
            }
        }
        Ok(())
    }

    fn spec(&self) -> YuvSpec {
        YuvSpec {
            matrix: self.matrix,
            range: self.range,
        }
    }
}

/// Plays frames from files. See the module documentation.
pub struct ReplaySource {
    describe: String,
    input: Input,
    looping: bool,
    pacer: Pacer,
    clock: Arc<dyn Clock>,
    /// Frames decoded in the current pass, to stop looping over input that has none.
    good_this_pass: u64,
}

enum Input {
    Images(ImageFiles),
    Raw(RawDump),
    Mjpeg(MjpegStream),
}

/// What one step through the input produced.
enum Step {
    Frame(FrameMeta, Delivered),
    Bad(CaptureError),
    End,
}

impl ReplaySource {
    /// Opens the input described by `cfg` on the system clock.
    pub fn open(cfg: &ReplayConfig) -> Result<Self, CaptureError> {
        Self::with_clock(cfg, system_clock())
    }

    /// Opens the input, pacing frames on `clock`.
    pub fn with_clock(cfg: &ReplayConfig, clock: Arc<dyn Clock>) -> Result<Self, CaptureError> {
        cfg.validate()
            .map_err(|e| CaptureError::Unusable(format!("replay: {e}")))?;
        let path = &cfg.path;
        let meta = std::fs::metadata(path).map_err(|e| {
            CaptureError::Unusable(match e.kind() {
                io::ErrorKind::NotFound => format!("replay: {} does not exist", path.display()),
                _ => format!("replay: cannot open {}: {e}", path.display()),
            })
        })?;
        let format = match cfg.format {
            ReplayFormat::Auto => ReplayFormat::guess(path, meta.is_dir()).ok_or_else(|| {
                CaptureError::Unusable(format!(
                    "replay: cannot tell what {} holds from its name; set format to images, \
                     mjpeg, yuyv, uyvy or nv12",
                    path.display()
                ))
            })?,
            f => f,
        };
        if meta.is_dir() && format != ReplayFormat::Images {
            return Err(CaptureError::Unusable(format!(
                "replay: {} is a directory, but format is {format:?}",
                path.display()
            )));
        }
        let input = match format {
            ReplayFormat::Images => Input::Images(ImageFiles::open(path, meta.is_dir())?),
            ReplayFormat::Mjpeg => Input::Mjpeg(MjpegStream::open(path)?),
            raw => {
                let pf = raw.raw().expect("the remaining formats are raw");
                Input::Raw(RawDump::open(path, pf, cfg.width, cfg.height, cfg.spec())?)
            }
        };
        Ok(Self {
            describe: format!("replay:{}", path.display()),
            input,
            looping: cfg.looping,
            pacer: Pacer::new(cfg.fps),
            clock,
            good_this_pass: 0,
        })
    }

    /// How many frames one pass holds, when known without reading it all (directories and raw
    /// dumps; not MJPEG streams).
    pub fn frame_count(&self) -> Option<u64> {
        match &self.input {
            Input::Images(f) => Some(f.files.len() as u64),
            Input::Raw(r) => Some(r.frames),
            Input::Mjpeg(_) => None,
        }
    }

    fn step(
        &mut self,
        image: &mut RgbImage,
        raw: Option<&mut RawFrame>,
    ) -> Result<Step, CaptureError> {
        match &mut self.input {
            Input::Images(f) => Ok(f.next(image)),
            Input::Raw(r) => r.next(image, raw),
            Input::Mjpeg(m) => m.next(image),
        }
    }

    fn rewind(&mut self) -> Result<(), CaptureError> {
        match &mut self.input {
            Input::Images(f) => {
                f.pos = 0;
                Ok(())
            }
            Input::Raw(r) => r.rewind(),
            Input::Mjpeg(m) => m.rewind(),
        }
    }
}

impl Source for ReplaySource {
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

impl ReplaySource {
    /// The next frame, into `raw` unconverted when one is given and the input is a raw dump.
    fn next_with(
        &mut self,
        image: &mut RgbImage,
        mut raw: Option<&mut RawFrame>,
    ) -> Result<Option<(FrameMeta, Delivered)>, CaptureError> {
        self.pacer.wait(&*self.clock);
        loop {
            match self.step(image, raw.as_deref_mut())? {
                Step::Frame(meta, delivered) => {
                    self.good_this_pass += 1;
                    return Ok(Some((meta, delivered)));
                }
                Step::Bad(e) => return Err(e),
                Step::End if self.looping => {
                    if self.good_this_pass == 0 {
                        return Err(CaptureError::Unusable(format!(
                            "{}: a whole pass produced no usable frame, not looping over it",
                            self.describe
                        )));
                    }
                    self.good_this_pass = 0;
                    self.rewind()?;
                    tracing::debug!(source = %self.describe, "replay looped");
                }
                Step::End => return Ok(None),
            }
        }
    }
}

/// The name of `path` as recorded in frame metadata.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn bad(file: &str, reason: impl std::fmt::Display) -> Step {
    Step::Bad(CaptureError::BadFrame {
        file: Some(file.to_owned()),
        reason: reason.to_string(),
    })
}

struct ImageFiles {
    files: Vec<PathBuf>,
    pos: usize,
    data: Vec<u8>,
    jpeg: JpegDecoder,
}

impl ImageFiles {
    fn open(path: &Path, is_dir: bool) -> Result<Self, CaptureError> {
        let files = if is_dir {
            list_images(path)?
        } else {
            vec![path.to_owned()]
        };
        Ok(Self {
            files,
            pos: 0,
            data: Vec::new(),
            jpeg: JpegDecoder::new(),
        })
    }

    fn next(&mut self, image: &mut RgbImage) -> Step {
        let Some(path) = self.files.get(self.pos) else {
            return Step::End;
        };
        let index = self.pos as u64;
        self.pos += 1;
        let name = file_name(path);
        self.data.clear();
        if let Err(e) = File::open(path).and_then(|mut f| f.read_to_end(&mut self.data)) {
            return bad(&name, format_args!("cannot read: {e}"));
        }
        let decoded = if self.data.starts_with(&[0xFF, 0xD8]) {
            let data = &self.data;
            self.jpeg.decode(data, image).map_err(|e| e.to_string())
        } else {
            decode_other(&self.data, image)
        };
        match decoded {
            Ok(()) => Step::Frame(
                FrameMeta {
                    file: Some(name),
                    index,
                    ..FrameMeta::default()
                },
                Delivered::Rgb,
            ),
            Err(reason) => bad(&name, reason),
        }
    }
}

/// PNG (or anything else the `image` crate reads) into `image`, with size limits.
fn decode_other(data: &[u8], image: &mut RgbImage) -> Result<(), String> {
    let mut reader = image::ImageReader::new(io::Cursor::new(data))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(super::convert::MAX_JPEG_SIDE);
    limits.max_image_height = Some(super::convert::MAX_JPEG_SIDE);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| e.to_string())?.into_rgb8();
    let (w, h) = decoded.dimensions();
    prepare(image, w, h).copy_from_slice(&decoded);
    Ok(())
}

/// The PNG/JPEG files directly in `dir`, in natural name order.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let unusable = |e: io::Error| {
        CaptureError::Unusable(format!("replay: cannot list {}: {e}", dir.display()))
    };
    let mut files = Vec::new();
    let mut skipped = 0usize;
    for entry in std::fs::read_dir(dir).map_err(unusable)? {
        let entry = entry.map_err(unusable)?;
        let path = entry.path();
        let is_image = matches!(
            ReplayFormat::guess(&path, false),
            Some(ReplayFormat::Images)
        );
        // Follows symlinks: a directory of links to frames elsewhere is fine.
        if is_image && path.is_file() {
            files.push(path);
        } else {
            skipped += 1;
        }
    }
    if files.is_empty() {
        return Err(CaptureError::Unusable(format!(
            "replay: no PNG or JPEG files in {}",
            dir.display()
        )));
    }
    if skipped > 0 {
        tracing::debug!(dir = %dir.display(), skipped, "replay ignores entries that are not images");
    }
    files.sort_by(|a, b| natural_cmp(&file_name(a), &file_name(b)));
    Ok(files)
}

/// Compares names with runs of digits taken as numbers: `f2` < `f10`, `f002` == `f2` by value
/// (then ordered by the plain string so the order is total).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let n = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let m = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (trim_zeros(&x[..n]), trim_zeros(&y[..m]));
                let ord = dx.len().cmp(&dy.len()).then_with(|| dx.cmp(dy));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[n..];
                y = &y[m..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let z = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[z..]
}

struct RawDump {
    path: PathBuf,
    name: String,
    reader: BufReader<File>,
    conv: Converter,
    frame_bytes: usize,
    frames: u64,
    buf: Vec<u8>,
    index: u64,
}

impl RawDump {
    fn open(
        path: &Path,
        format: PixelFormat,
        width: u32,
        height: u32,
        spec: YuvSpec,
    ) -> Result<Self, CaptureError> {
        let conv = Converter::new(format, width, height, None, spec)
            .map_err(|e| CaptureError::Unusable(format!("replay {}: {e}", path.display())))?;
        let frame_bytes = conv.frame_bytes().expect("raw formats have a frame size");
        let file = File::open(path).map_err(|e| CaptureError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let len = file
            .metadata()
            .map_err(|e| CaptureError::Io {
                path: path.display().to_string(),
                source: e,
            })?
            .len();
        let frames = len / frame_bytes as u64;
        if frames == 0 {
            return Err(CaptureError::Unusable(format!(
                "replay: {} holds {len} bytes, less than one {format} frame of {width}x{height} \
                 ({frame_bytes} bytes); check width, height and format",
                path.display()
            )));
        }
        if len % frame_bytes as u64 != 0 {
            tracing::warn!(
                file = %path.display(),
                bytes = len,
                frame_bytes,
                "the dump is not a whole number of frames (wrong width/height/format, or cut \
                 short); the last frame will be reported as bad"
            );
        }
        Ok(Self {
            path: path.to_owned(),
            name: file_name(path),
            reader: BufReader::with_capacity(frame_bytes.min(1 << 20), file),
            conv,
            frame_bytes,
            frames,
            buf: vec![0; frame_bytes],
            index: 0,
        })
    }

    /// The next frame, converted into `image`, or read unconverted into `raw` when given.
    fn next(
        &mut self,
        image: &mut RgbImage,
        raw: Option<&mut RawFrame>,
    ) -> Result<Step, CaptureError> {
        let buf = match raw {
            Some(r) => Some(
                r.filled_with(&self.conv, self.frame_bytes)
                    .expect("a dump's frames have the converter's size"),
            ),
            None => None,
        };
        let delivered = if buf.is_some() {
            Delivered::Raw
        } else {
            Delivered::Rgb
        };
        let buf = match buf {
            Some(b) => b,
            None => &mut self.buf[..],
        };
        let got = read_full(&mut self.reader, buf).map_err(|e| CaptureError::Io {
            path: self.path.display().to_string(),
            source: e,
        })?;
        if got == 0 {
            return Ok(Step::End);
        }
        let index = self.index;
        self.index += 1;
        if got < self.frame_bytes {
            return Ok(bad(
                &self.name,
                format_args!(
                    "frame {index} is cut short: {got} of {} bytes",
                    self.frame_bytes
                ),
            ));
        }
        let meta = FrameMeta {
            file: Some(self.name.clone()),
            index,
            ..FrameMeta::default()
        };
        if delivered == Delivered::Raw {
            return Ok(Step::Frame(meta, Delivered::Raw));
        }
        Ok(match self.conv.convert(&self.buf, image) {
            Ok(()) => Step::Frame(meta, Delivered::Rgb),
            Err(e) => bad(&self.name, format_args!("frame {index}: {e}")),
        })
    }

    fn rewind(&mut self) -> Result<(), CaptureError> {
        self.index = 0;
        self.reader.rewind().map_err(|e| CaptureError::Io {
            path: self.path.display().to_string(),
            source: e,
        })
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

struct MjpegStream {
    path: PathBuf,
    name: String,
    splitter: JpegSplitter<BufReader<File>>,
    conv: Converter,
    frame: Vec<u8>,
    index: u64,
}

impl MjpegStream {
    fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|e| CaptureError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let conv = Converter::new(PixelFormat::Mjpeg, 0, 0, None, YuvSpec::default())
            .expect("an MJPEG converter of any size is always valid");
        Ok(Self {
            path: path.to_owned(),
            name: file_name(path),
            splitter: JpegSplitter::new(BufReader::with_capacity(1 << 16, file)),
            conv,
            frame: Vec::new(),
            index: 0,
        })
    }

    fn next(&mut self, image: &mut RgbImage) -> Result<Step, CaptureError> {
        let split = self
            .splitter
            .next(&mut self.frame)
            .map_err(|e| CaptureError::Io {
                path: self.path.display().to_string(),
                source: e,
            })?;
        let index = self.index;
        let step = match split {
            Split::End => return Ok(Step::End),
            Split::Frame => match self.conv.convert(&self.frame, image) {
                Ok(()) => Step::Frame(
                    FrameMeta {
                        file: Some(self.name.clone()),
                        index,
                        ..FrameMeta::default()
                    },
                    Delivered::Rgb,
                ),
                Err(e) => bad(&self.name, format_args!("frame {index}: {e}")),
            },
            Split::Broken(why) => bad(&self.name, format_args!("frame {index}: {why}")),
        };
        self.index += 1;
        Ok(step)
    }

    fn rewind(&mut self) -> Result<(), CaptureError> {
        self.index = 0;
        self.splitter.rewind().map_err(|e| CaptureError::Io {
            path: self.path.display().to_string(),
            source: e,
        })
    }
}

/// What [`JpegSplitter::next`] found.
#[derive(Debug, PartialEq, Eq)]
enum Split {
    /// A whole JPEG, SOI to EOI.
    Frame,
    /// A frame that cannot be whole (cut off by the next frame or the end of the file, or
    /// malformed); the bytes found are in the buffer.
    Broken(String),
    /// No more frames.
    End,
}

/// Cuts a byte stream into JPEGs by walking their markers, so that an `FF D9` inside an
/// embedded thumbnail or a marker segment does not end a frame early.
struct JpegSplitter<R> {
    reader: R,
    /// The previous frame was cut off by an SOI that starts the next one.
    pending_soi: bool,
    /// Junk bytes skipped before frames, for the log.
    skipped: u64,
}

impl<R: BufRead> JpegSplitter<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            pending_soi: false,
            skipped: 0,
        }
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        let buf = self.reader.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.reader.consume(1);
        Ok(Some(b))
    }

    /// Reads the next JPEG into `out` (cleared first).
    fn next(&mut self, out: &mut Vec<u8>) -> io::Result<Split> {
        out.clear();
        if !self.pending_soi && !self.find_soi()? {
            return Ok(Split::End);
        }
        self.pending_soi = false;
        out.extend_from_slice(&[0xFF, 0xD8]);
        let mut in_scan = false;
        loop {
            if out.len() > MAX_STREAM_FRAME_BYTES {
                return Ok(Split::Broken(format!(
                    "no end marker within {} MiB",
                    MAX_STREAM_FRAME_BYTES >> 20
                )));
            }
            if in_scan {
                // Entropy-coded data: copy up to the next 0xFF in bulk.
                let buf = self.reader.fill_buf()?;
                if buf.is_empty() {
                    return Ok(Split::Broken("the file ends inside the frame".into()));
                }
                match buf.iter().position(|&b| b == 0xFF) {
                    None => {
                        let n = buf.len();
                        out.extend_from_slice(buf);
                        self.reader.consume(n);
                        continue;
                    }
                    Some(i) => {
                        out.extend_from_slice(&buf[..i]);
                        self.reader.consume(i + 1);
                    }
                }
            } else {
                match self.byte()? {
                    Some(0xFF) => {}
                    Some(b) => {
                        return Ok(Split::Broken(format!(
                            "expected a marker, found byte {b:#04x} at offset {}",
                            out.len()
                        )));
                    }
                    None => return Ok(Split::Broken("the file ends inside the frame".into())),
                }
            }
            // After 0xFF: skip fill bytes, then the marker code.
            let mut code = 0xFF;
            while code == 0xFF {
                code = match self.byte()? {
                    Some(c) => c,
                    None => return Ok(Split::Broken("the file ends inside the frame".into())),
                };
            }
            match code {
                // A stuffed 0xFF or a restart marker inside the scan.
                0x00 | 0xD0..=0xD7 if in_scan => out.extend_from_slice(&[0xFF, code]),
                0xD9 => {
                    out.extend_from_slice(&[0xFF, 0xD9]);
                    return Ok(Split::Frame);
                }
                0xD8 => {
                    self.pending_soi = true;
                    return Ok(Split::Broken(
                        "cut short: the next frame starts before this one ends".into(),
                    ));
                }
                // Markers without a length.
                0x01 | 0xD0..=0xD7 => out.extend_from_slice(&[0xFF, code]),
                0x00 => return Ok(Split::Broken("a stuffed byte outside a scan".into())),
                _ => {
                    let (Some(hi), Some(lo)) = (self.byte()?, self.byte()?) else {
                        return Ok(Split::Broken("the file ends inside the frame".into()));
                    };
                    let len = u16::from_be_bytes([hi, lo]) as usize;
                    if len < 2 {
                        return Ok(Split::Broken(format!(
                            "marker {code:#04x} has length {len}"
                        )));
                    }
                    out.extend_from_slice(&[0xFF, code, hi, lo]);
                    let start = out.len();
                    out.resize(start + len - 2, 0);
                    let got = read_full(&mut self.reader, &mut out[start..])?;
                    if got < len - 2 {
                        out.truncate(start + got);
                        return Ok(Split::Broken("the file ends inside the frame".into()));
                    }
                    // Start of scan: entropy-coded data follows (progressive files have several).
                    in_scan = code == 0xDA;
                }
            }
        }
    }

    /// Skips to the next SOI; false at the end of the input.
    fn find_soi(&mut self) -> io::Result<bool> {
        let mut skipped = 0u64;
        let mut prev_ff = false;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                self.note_skipped(skipped);
                return Ok(false);
            }
            let n = buf.len();
            for (i, &b) in buf.iter().enumerate() {
                if prev_ff && b == 0xD8 {
                    self.reader.consume(i + 1);
                    // The 0xFF before the SOI code was counted as skipped.
                    self.note_skipped(skipped + i as u64 - 1);
                    return Ok(true);
                }
                prev_ff = b == 0xFF;
            }
            skipped += n as u64;
            self.reader.consume(n);
        }
    }

    fn note_skipped(&mut self, n: u64) {
        if n > 0 {
            self.skipped += n;
            tracing::trace!(bytes = n, "skipped bytes between JPEG frames");
        }
    }
}

impl<R: BufRead + Seek> JpegSplitter<R> {
    fn rewind(&mut self) -> io::Result<()> {
        self.pending_soi = false;
        self.reader.rewind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([seed, (x * 7) as u8, (y * 5) as u8])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn split_all(data: &[u8]) -> Vec<(Split, Vec<u8>)> {
        let mut s = JpegSplitter::new(io::Cursor::new(data.to_vec()));
        let mut v = Vec::new();
        loop {
            let mut out = Vec::new();
            match s.next(&mut out).unwrap() {
                Split::End => return v,
                other => v.push((other, out)),
            }
        }
    }

    #[test]
    fn splits_concatenated_jpegs_with_junk_between() {
        let (a, b, c) = (jpeg(16, 16, 1), jpeg(24, 8, 2), jpeg(8, 8, 3));
        let mut stream = b"--boundary\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        stream.extend(&a);
        stream.extend(b"\r\n--boundary\r\n\r\n");
        stream.extend(&b);
        stream.extend(&c);
        stream.extend([0u8; 7]);
        let parts = split_all(&stream);
        assert_eq!(parts.len(), 3);
        for ((split, got), want) in parts.iter().zip([&a, &b, &c]) {
            assert_eq!(split, &Split::Frame);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn an_embedded_end_marker_does_not_cut_the_frame() {
        // An APP segment whose payload holds FF D9 (as an EXIF thumbnail does).
        let a = jpeg(16, 16, 9);
        let mut with_app = a[..2].to_vec();
        with_app.extend([0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xD9, 0xFF, 0xD8, 0x00, 0x00]);
        with_app.extend(&a[2..]);
        let parts = split_all(&with_app);
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0], (Split::Frame, with_app.clone()));
        let mut img = RgbImage::new(1, 1);
        JpegDecoder::new().decode(&parts[0].1, &mut img).unwrap();
    }

    #[test]
    fn a_cut_frame_is_reported_and_the_next_one_follows() {
        // Big enough that the cut falls inside the scan, not the header tables.
        let (a, b) = (jpeg(128, 128, 1), jpeg(128, 128, 2));
        let mut stream = a[..a.len() / 2].to_vec();
        stream.extend(&b);
        stream.extend(&a[..a.len() - 10]);
        let parts = split_all(&stream);
        assert_eq!(
            parts.len(),
            3,
            "{:?}",
            parts.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        assert!(matches!(&parts[0].0, Split::Broken(w) if w.contains("next frame starts")));
        assert_eq!(parts[1], (Split::Frame, b));
        assert!(matches!(&parts[2].0, Split::Broken(w) if w.contains("ends inside")));
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            "f10.png", "f2.png", "f1.png", "a.png", "f002.png", "F3.png", "f2b.png",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["F3.png", "a.png", "f1.png", "f002.png", "f2.png", "f2b.png", "f10.png"]
        );
        assert_eq!(natural_cmp("img_0009", "img_0010"), Ordering::Less);
        assert_eq!(
            natural_cmp("x99999999999999999999999", "x100000000000000000000000"),
            Ordering::Less
        );
    }

    #[test]
    fn config_defaults_and_validation() {
        let c: ReplayConfig = toml::from_str("path = \"/data/run3\"").unwrap();
        assert_eq!(c.fps, 30.0);
        assert!(!c.looping);
        assert_eq!(c.format, ReplayFormat::Auto);
        c.validate().unwrap();
        let c: ReplayConfig = toml::from_str("path = \"cam.yuyv\"\nloop = true\nfps = 0").unwrap();
        assert!(c.looping);
        assert_eq!(c.validate().unwrap_err().key, "width");
        let c: ReplayConfig =
            toml::from_str("path = \"cam.bin\"\nformat = \"nv12\"\nwidth = 640\nheight = 0")
                .unwrap();
        assert_eq!(c.validate().unwrap_err().key, "height");
        let c: ReplayConfig = toml::from_str("path = \"x\"\nfps = -1").unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "fps: must be between 0 and 1000, got -1"
        );
        assert_eq!(ReplayConfig::default().validate().unwrap_err().key, "path");
        assert!(toml::from_str::<ReplayConfig>("path = \"x\"\nfsp = 3").is_err());
    }
}
