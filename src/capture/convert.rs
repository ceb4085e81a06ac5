//! Pixel conversion: what cameras deliver (YUYV, UYVY, NV12, MJPEG) into packed RGB.
//!
//! The camera ([`super::v4l2`]) and the replay source (`super::replay`) both go through
//! [`Converter`], so a recorded dump exercises exactly the code that runs in the field.
//!
//! - Raw YUV goes through `yuvutils-rs`, which has SSE4.1/AVX2 paths on x86-64 (picked at run
//!   time) and NEON on aarch64; the unit tests check it against a scalar float reference on
//!   whichever architecture runs them.
//! - The colour matrix and range are explicit ([`YuvSpec`]). UVC cameras send BT.601 with
//!   limited range (Y in 16..=235, chroma in 16..=240) unless the driver says otherwise, so that
//!   is the default.
//! - Chroma is not interpolated: each 2x1 (4:2:2) or 2x2 (4:2:0) block of pixels shares its
//!   chroma sample, as in libyuv's fast paths.
//! - MJPEG frames are decoded by `zune-jpeg` (SIMD on both architectures) in strict mode: a
//!   truncated or corrupt frame is an error rather than a half-grey picture, because a
//!   half-decoded frame looks "novel" to the selection stage and would be kept.
//!
//! Every function writes into a caller-provided buffer (the recycled frame image) and never
//! panics on input: short buffers, odd sizes and corrupt JPEGs are [`ConvertError`]s.

use image::RgbImage;
use rayon::prelude::*;
use serde::Deserialize;
use std::fmt;
use yuvutils_rs::{YuvBiPlanarImage, YuvConversionMode, YuvPackedImage};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder as ZuneDecoder;

/// Largest JPEG accepted when the expected size is not known (replayed files): 8192 x 8192,
/// a 192 MiB RGB buffer. Camera frames must match the negotiated size exactly.
pub const MAX_JPEG_SIDE: u32 = 8192;

/// A pixel format a source can deliver, named as in V4L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Packed 4:2:2, bytes `Y0 U Y1 V` (V4L2 `YUYV`, also called YUY2): what most USB cameras
    /// send uncompressed.
    Yuyv,
    /// Packed 4:2:2, bytes `U Y0 V Y1` (V4L2 `UYVY`): common on CSI/GMSL bridges (Jetson).
    Uyvy,
    /// Planar 4:2:0, a Y plane then one interleaved `U V` plane (V4L2 `NV12`).
    Nv12,
    /// Motion JPEG: each frame a JPEG (possibly without Huffman tables, as UVC sends them).
    #[serde(alias = "mjpg", alias = "jpeg")]
    Mjpeg,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 4] = [Self::Yuyv, Self::Uyvy, Self::Nv12, Self::Mjpeg];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Self::Yuyv => *b"YUYV",
            Self::Uyvy => *b"UYVY",
            Self::Nv12 => *b"NV12",
            Self::Mjpeg => *b"MJPG",
        }
    }

    /// The format with this V4L2 code, if edgesift can convert it. `JPEG` (sent by some
    /// cameras for the same thing) counts as MJPEG.
    pub fn from_fourcc(code: &[u8; 4]) -> Option<Self> {
        match code {
            b"YUYV" => Some(Self::Yuyv),
            b"UYVY" => Some(Self::Uyvy),
            b"NV12" => Some(Self::Nv12),
            b"MJPG" | b"JPEG" => Some(Self::Mjpeg),
            _ => None,
        }
    }

    /// The lowercase name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yuyv => "yuyv",
            Self::Uyvy => "uyvy",
            Self::Nv12 => "nv12",
            Self::Mjpeg => "mjpeg",
        }
    }

    /// Bytes per row of a tightly packed frame (`None` for MJPEG, which has no rows).
    pub fn min_stride(self, width: u32) -> Option<usize> {
        let w = width as usize;
        match self {
            // A 4:2:2 macropixel (4 bytes) covers 2 pixels; an odd width still has a whole one.
            Self::Yuyv | Self::Uyvy => Some(w.div_ceil(2) * 4),
            Self::Nv12 => Some(w),
            Self::Mjpeg => None,
        }
    }

    /// Bytes of one frame with rows `stride` bytes apart (`None` for MJPEG).
    pub fn frame_bytes(self, height: u32, stride: usize) -> Option<usize> {
        let h = height as usize;
        match self {
            Self::Yuyv | Self::Uyvy => Some(stride * h),
            // The interleaved chroma plane has ceil(h/2) rows of the same stride.
            Self::Nv12 => Some(stride * (h + h.div_ceil(2))),
            Self::Mjpeg => None,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The YUV → RGB matrix (the luma coefficients Kr and Kb).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YuvMatrix {
    /// SD video and nearly every UVC camera (Kr 0.299, Kb 0.114).
    #[default]
    Bt601,
    /// HD video (Kr 0.2126, Kb 0.0722).
    Bt709,
    /// UHD video (Kr 0.2627, Kb 0.0593).
    Bt2020,
}

impl YuvMatrix {
    /// `(Kr, Kb)`.
    pub fn kr_kb(self) -> (f32, f32) {
        match self {
            Self::Bt601 => (0.299, 0.114),
            Self::Bt709 => (0.2126, 0.0722),
            Self::Bt2020 => (0.2627, 0.0593),
        }
    }

    fn to_yuvutils(self) -> yuvutils_rs::YuvStandardMatrix {
        match self {
            Self::Bt601 => yuvutils_rs::YuvStandardMatrix::Bt601,
            Self::Bt709 => yuvutils_rs::YuvStandardMatrix::Bt709,
            Self::Bt2020 => yuvutils_rs::YuvStandardMatrix::Bt2020,
        }
    }
}

/// Which code values are black and white.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YuvRange {
    /// "TV" range: Y 16..=235, chroma 16..=240 (what UVC cameras send).
    #[default]
    Limited,
    /// "PC"/JPEG range: everything 0..=255.
    Full,
}

impl YuvRange {
    fn to_yuvutils(self) -> yuvutils_rs::YuvRange {
        match self {
            Self::Limited => yuvutils_rs::YuvRange::Limited,
            Self::Full => yuvutils_rs::YuvRange::Full,
        }
    }
}

/// How to read YUV samples: matrix and range. The default is BT.601 limited range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct YuvSpec {
    pub matrix: YuvMatrix,
    pub range: YuvRange,
}

impl fmt::Display for YuvSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.matrix {
            YuvMatrix::Bt601 => "BT.601",
            YuvMatrix::Bt709 => "BT.709",
            YuvMatrix::Bt2020 => "BT.2020",
        };
        let r = match self.range {
            YuvRange::Limited => "limited",
            YuvRange::Full => "full",
        };
        write!(f, "{m} {r} range")
    }
}

/// Why a frame could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("{format} frame of {width}x{height} needs {needed} bytes, got {got}")]
    ShortFrame {
        format: PixelFormat,
        width: u32,
        height: u32,
        needed: usize,
        got: usize,
    },
    #[error("{format} frame size {width}x{height} (stride {stride}) is not usable: {why}")]
    BadGeometry {
        format: PixelFormat,
        width: u32,
        height: u32,
        stride: usize,
        why: &'static str,
    },
    #[error("{format} frame size {width}x{height} (stride {stride}) rejected by the converter: {reason}")]
    Rejected {
        format: PixelFormat,
        width: u32,
        height: u32,
        stride: usize,
        reason: String,
    },
    #[error("corrupt JPEG: {0}")]
    Jpeg(String),
    #[error("no frame in the buffer to convert")]
    Empty,
    #[error("JPEG is {width}x{height}, expected {expected_width}x{expected_height}")]
    JpegSize {
        width: u32,
        height: u32,
        expected_width: u32,
        expected_height: u32,
    },
}

/// Makes `image` `width x height`, reusing its allocation, and returns its bytes (row-major RGB,
/// no padding). The contents are unspecified until written.
pub fn prepare(image: &mut RgbImage, width: u32, height: u32) -> &mut [u8] {
    if image.dimensions() != (width, height) {
        let mut buf = std::mem::take(image).into_raw();
        buf.resize(width as usize * height as usize * 3, 0);
        *image = RgbImage::from_raw(width, height, buf).expect("buffer sized width * height * 3");
    }
    image
}

fn check_geometry(
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: usize,
) -> Result<(), ConvertError> {
    let bad = |why| ConvertError::BadGeometry {
        format,
        width,
        height,
        stride,
        why,
    };
    if width == 0 || height == 0 {
        return Err(bad("width and height must be positive"));
    }
    if width > 16384 || height > 16384 {
        return Err(bad("sides over 16384 pixels are not supported"));
    }
    let min = format.min_stride(width).unwrap_or(0);
    if stride < min {
        return Err(bad("the stride is shorter than a row"));
    }
    if u32::try_from(stride).is_err() {
        return Err(bad("the stride does not fit 32 bits"));
    }
    Ok(())
}

/// Converts packed 4:2:2 (`Yuyv` or `Uyvy`) to RGB. `stride` is the distance between rows in
/// bytes (at least `ceil(width / 2) * 4`); `dst` is `width * height * 3` bytes.
pub fn packed422_to_rgb(
    format: PixelFormat,
    src: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    spec: YuvSpec,
    dst: &mut [u8],
) -> Result<(), ConvertError> {
    if !matches!(format, PixelFormat::Yuyv | PixelFormat::Uyvy) {
        return Err(ConvertError::BadGeometry {
            format,
            width,
            height,
            stride,
            why: "not a packed 4:2:2 format",
        });
    }
    check_geometry(format, width, height, stride)?;
    let row_bytes = format.min_stride(width).expect("4:2:2 has rows");
    // The last row needs no padding after it.
    let needed = stride * (height as usize - 1) + row_bytes;
    if src.len() < needed {
        return Err(ConvertError::ShortFrame {
            format,
            width,
            height,
            needed,
            got: src.len(),
        });
    }
    let out = &mut dst[..width as usize * height as usize * 3];
    let (range, matrix) = (spec.range.to_yuvutils(), spec.matrix.to_yuvutils());
    let convert = |yuy: &[u8], rows: u32, out: &mut [u8]| {
        let packed = YuvPackedImage {
            yuy,
            yuy_stride: row_bytes as u32,
            width,
            height: rows,
        };
        match format {
            PixelFormat::Yuyv => {
                yuvutils_rs::yuyv422_to_rgb(&packed, out, width * 3, range, matrix)
            }
            _ => yuvutils_rs::uyvy422_to_rgb(&packed, out, width * 3, range, matrix),
        }
        .map_err(|e| internal(format, width, height, stride, e))
    };
    if stride == row_bytes {
        let rows = band_rows(height, 1);
        out.par_chunks_mut(rows as usize * width as usize * 3)
            .enumerate()
            .try_for_each(|(b, out)| {
                let n = (out.len() / (width as usize * 3)) as u32;
                let start = b * rows as usize * row_bytes;
                convert(&src[start..start + n as usize * row_bytes], n, out)
            })
    } else {
        // yuvutils 0.8 wants packed 4:2:2 without row padding: go row by row.
        let out_row = width as usize * 3;
        for (row, out) in src.chunks(stride).zip(out.chunks_exact_mut(out_row)) {
            convert(&row[..row_bytes], 1, out)?;
        }
        Ok(())
    }
}

/// Rows per band when a conversion is split over the pool's threads (a multiple of `multiple`):
/// the model's workers wait while a frame is converted, so all of them convert it. One band
/// for small frames.
fn band_rows(height: u32, multiple: u32) -> u32 {
    let bands = rayon::current_num_threads().clamp(1, 16) as u32;
    if height < 64 || bands == 1 {
        return height.max(1);
    }
    height.div_ceil(bands).next_multiple_of(multiple)
}

/// Converts YUYV (`Y0 U Y1 V`) to RGB; see [`packed422_to_rgb`].
pub fn yuyv_to_rgb(
    src: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    spec: YuvSpec,
    dst: &mut [u8],
) -> Result<(), ConvertError> {
    packed422_to_rgb(PixelFormat::Yuyv, src, width, height, stride, spec, dst)
}

/// Converts NV12 to RGB: a Y plane of `height` rows `stride` bytes apart, then the interleaved
/// `U V` plane of `ceil(height / 2)` rows with the same stride. `dst` is `width * height * 3`.
pub fn nv12_to_rgb(
    src: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    spec: YuvSpec,
    dst: &mut [u8],
) -> Result<(), ConvertError> {
    let format = PixelFormat::Nv12;
    check_geometry(format, width, height, stride)?;
    // The chroma row of an odd width still holds a whole U V pair for the last pixel.
    let chroma_row = (width as usize).div_ceil(2) * 2;
    if stride < chroma_row {
        return Err(ConvertError::BadGeometry {
            format,
            width,
            height,
            stride,
            why: "the stride is shorter than a chroma row",
        });
    }
    let y_len = stride * height as usize;
    let needed = format
        .frame_bytes(height, stride)
        .expect("NV12 has a fixed frame size");
    if src.len() < needed {
        return Err(ConvertError::ShortFrame {
            format,
            width,
            height,
            needed,
            got: src.len(),
        });
    }
    let out = &mut dst[..width as usize * height as usize * 3];
    let convert = |y_plane: &[u8], uv_plane: &[u8], rows: u32, out: &mut [u8]| {
        let planes = YuvBiPlanarImage {
            y_plane,
            y_stride: stride as u32,
            uv_plane,
            uv_stride: chroma_row as u32,
            width,
            height: rows,
        };
        yuvutils_rs::yuv_nv12_to_rgb(
            &planes,
            out,
            width * 3,
            spec.range.to_yuvutils(),
            spec.matrix.to_yuvutils(),
            YuvConversionMode::Balanced,
        )
        .map_err(|e| internal(format, width, height, stride, e))
    };
    let (y_plane, uv_plane) = src[..needed].split_at(y_len);
    if stride == chroma_row {
        let rows = band_rows(height, 2);
        out.par_chunks_mut(rows as usize * width as usize * 3)
            .enumerate()
            .try_for_each(|(b, out)| {
                let n = (out.len() / (width as usize * 3)) as u32;
                let first = b * rows as usize;
                let y = &y_plane[first * stride..][..n as usize * stride];
                let uv = &uv_plane[first / 2 * chroma_row..][..n.div_ceil(2) as usize * chroma_row];
                convert(y, uv, n, out)
            })
    } else {
        // yuvutils 0.8 wants the chroma plane without row padding: go two rows at a time.
        let out_pair = width as usize * 3 * 2;
        for (k, out) in out.chunks_mut(out_pair).enumerate() {
            let rows = (out.len() / (width as usize * 3)) as u32;
            let y = &y_plane[2 * k * stride..];
            let uv = &uv_plane[k * stride..][..chroma_row];
            convert(y, uv, rows, out)?;
        }
        Ok(())
    }
}

/// A yuvutils error after our own checks passed: still reported, never a panic.
fn internal(
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: usize,
    e: yuvutils_rs::YuvError,
) -> ConvertError {
    ConvertError::Rejected {
        format,
        width,
        height,
        stride,
        reason: e.to_string(),
    }
}

/// Decodes JPEG/MJPEG frames into RGB images.
///
/// Many UVC cameras leave the Huffman tables out of their MJPEG frames and rely on the
/// standard ones (JPEG Annex K.3, as in AVI files); such frames are marked as AVI1 MJPEG
/// before decoding so that the decoder supplies those tables.
#[derive(Debug, Clone, Default)]
pub struct JpegDecoder {
    /// When set, frames of any other size are errors (a camera's negotiated size).
    expected: Option<(u32, u32)>,
    /// A frame with the AVI1 marker added, reused.
    scratch: Vec<u8>,
}

/// An APP0 segment saying "AVI1 MJPEG": use the standard Huffman tables where none are given.
const AVI1_APP0: [u8; 9] = [0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0x00];

impl JpegDecoder {
    /// A decoder for JPEGs of any size up to [`MAX_JPEG_SIDE`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that accepts only `width x height` frames.
    pub fn expecting(width: u32, height: u32) -> Self {
        Self {
            expected: Some((width, height)),
            scratch: Vec::new(),
        }
    }

    /// Decodes `data` into `image`, resizing it to the JPEG's size. Grey JPEGs come out grey in
    /// all three channels.
    pub fn decode(&mut self, data: &[u8], image: &mut RgbImage) -> Result<(), ConvertError> {
        if data.starts_with(&[0xFF, 0xD8]) && !has_huffman_tables(data) {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(&data[..2]);
            scratch.extend_from_slice(&AVI1_APP0);
            scratch.extend_from_slice(&data[2..]);
            let r = self.decode_inner(&scratch, image);
            self.scratch = scratch;
            return r;
        }
        self.decode_inner(data, image)
    }

    fn decode_inner(&self, data: &[u8], image: &mut RgbImage) -> Result<(), ConvertError> {
        let (max_w, max_h) = self.expected.unwrap_or((MAX_JPEG_SIDE, MAX_JPEG_SIDE));
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::RGB)
            .set_strict_mode(true)
            .set_max_width(max_w as usize)
            .set_max_height(max_h as usize);
        let mut dec = ZuneDecoder::new_with_options(ZCursor::new(data), options);
        let jpeg_err = |e: zune_jpeg::errors::DecodeErrors| ConvertError::Jpeg(format!("{e:?}"));
        dec.decode_headers().map_err(jpeg_err)?;
        let (w, h) = dec
            .dimensions()
            .ok_or_else(|| ConvertError::Jpeg("no frame header".into()))?;
        let (w, h) = (w as u32, h as u32);
        if let Some((ew, eh)) = self.expected {
            if (w, h) != (ew, eh) {
                return Err(ConvertError::JpegSize {
                    width: w,
                    height: h,
                    expected_width: ew,
                    expected_height: eh,
                });
            }
        }
        if w == 0 || h == 0 {
            return Err(ConvertError::Jpeg("zero-sized image".into()));
        }
        let buf = prepare(image, w, h);
        dec.decode_into(buf).map_err(jpeg_err)
    }
}

/// Checks that `data` starts like a JPEG and that its frame header comes before the first scan,
/// with the expected size when one is given: what can be told without decoding.
fn check_jpeg_header(data: &[u8], expected: Option<(u32, u32)>) -> Result<(), ConvertError> {
    let cut = || ConvertError::Jpeg("cut short before its frame header".into());
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err(ConvertError::Jpeg("no start-of-image marker".into()));
    }
    let mut i = 2;
    loop {
        while data.get(i) == Some(&0xFF) && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&code)) = (data.get(i), data.get(i + 1)) else {
            return Err(ConvertError::Jpeg(format!("no marker at byte {i}")));
        };
        match code {
            0xDA | 0xD9 => return Err(ConvertError::Jpeg("no frame header".into())),
            0x01 | 0xD0..=0xD7 => i += 2,
            // Start-of-frame markers (not DHT C4, JPG C8, DAC CC).
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) => {
                let sof = data.get(i + 4..i + 9).ok_or_else(cut)?;
                let height = u16::from_be_bytes([sof[1], sof[2]]) as u32;
                let width = u16::from_be_bytes([sof[3], sof[4]]) as u32;
                if width == 0 || height == 0 {
                    return Err(ConvertError::Jpeg("zero-sized image".into()));
                }
                return match expected {
                    Some((ew, eh)) if (width, height) != (ew, eh) => Err(ConvertError::JpegSize {
                        width,
                        height,
                        expected_width: ew,
                        expected_height: eh,
                    }),
                    _ => Ok(()),
                };
            }
            _ => {
                let len = data.get(i + 2..i + 4).ok_or_else(cut)?;
                i += 2 + u16::from_be_bytes([len[0], len[1]]) as usize;
            }
        }
    }
}

/// Whether a DHT segment comes before the first scan. Malformed headers answer true: the
/// decoder then reports what is wrong with them.
fn has_huffman_tables(data: &[u8]) -> bool {
    let mut i = 2;
    loop {
        // Fill bytes may precede a marker.
        while data.get(i) == Some(&0xFF) && data.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&code)) = (data.get(i), data.get(i + 1)) else {
            return true;
        };
        match code {
            0xC4 => return true,
            0xDA | 0xD9 => return false,
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let Some(len) = data.get(i + 2..i + 4) else {
                    return true;
                };
                i += 2 + u16::from_be_bytes([len[0], len[1]]) as usize;
            }
        }
    }
}

/// Converts frames of one format and size into RGB: what a source keeps once it knows what it
/// will receive.
#[derive(Debug, Clone)]
pub struct Converter {
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: usize,
    spec: YuvSpec,
    jpeg: JpegDecoder,
}

impl Converter {
    /// A converter for `format` frames of `width x height` with rows `stride` bytes apart
    /// (`None`: tightly packed). For MJPEG, `width` and `height` are what every frame must be,
    /// unless both are 0 (any size, as for replayed files).
    pub fn new(
        format: PixelFormat,
        width: u32,
        height: u32,
        stride: Option<usize>,
        spec: YuvSpec,
    ) -> Result<Self, ConvertError> {
        let stride = match format.min_stride(width) {
            Some(min) => {
                let s = stride.unwrap_or(min);
                check_geometry(format, width, height, s)?;
                s
            }
            None => 0,
        };
        let jpeg = if format == PixelFormat::Mjpeg && width > 0 && height > 0 {
            JpegDecoder::expecting(width, height)
        } else {
            JpegDecoder::new()
        };
        Ok(Self {
            format,
            width,
            height,
            stride,
            spec,
            jpeg,
        })
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    pub fn spec(&self) -> YuvSpec {
        self.spec
    }

    /// Bytes of one raw frame (`None` for MJPEG, whose frames vary).
    pub fn frame_bytes(&self) -> Option<usize> {
        self.format.frame_bytes(self.height, self.stride)
    }

    fn same_layout(&self, other: &Converter) -> bool {
        (self.format, self.width, self.height, self.stride, self.spec)
            == (
                other.format,
                other.width,
                other.height,
                other.stride,
                other.spec,
            )
    }

    /// Converts one frame into `image` (resized as needed, its allocation reused).
    ///
    /// Runs on the network's pool (see `crate::pool`): a frame's conversion is a job taken up
    /// between the network's tasks, not a thread competing with them for a core.
    pub fn convert(&mut self, data: &[u8], image: &mut RgbImage) -> Result<(), ConvertError> {
        crate::pool::on_pool(|| self.convert_here(data, image))
    }

    fn convert_here(&mut self, data: &[u8], image: &mut RgbImage) -> Result<(), ConvertError> {
        let (w, h, s) = (self.width, self.height, self.stride);
        match self.format {
            PixelFormat::Yuyv | PixelFormat::Uyvy | PixelFormat::Nv12 => {
                // Check before resizing, so that a short frame leaves the buffer alone.
                let needed = self.frame_bytes().expect("raw formats have a frame size");
                if data.len() < needed {
                    return Err(ConvertError::ShortFrame {
                        format: self.format,
                        width: w,
                        height: h,
                        needed,
                        got: data.len(),
                    });
                }
                let dst = prepare(image, w, h);
                if self.format == PixelFormat::Nv12 {
                    nv12_to_rgb(data, w, h, s, self.spec, dst)
                } else {
                    packed422_to_rgb(self.format, data, w, h, s, self.spec, dst)
                }
            }
            PixelFormat::Mjpeg => self.jpeg.decode(data, image),
        }
    }
}

/// A frame's bytes as the camera delivered them, with the converter they need: the camera part
/// of [`RawFrame`](super::RawFrame). What can be checked cheaply is checked when the frame
/// arrives: an uncompressed frame's length (after which converting cannot fail), a JPEG's
/// markers up to its frame header and its size. A JPEG whose compressed data is corrupt is only
/// found when decoded.
#[derive(Debug, Default)]
pub(crate) struct RawBytes {
    data: Vec<u8>,
    converter: Option<Converter>,
}

impl RawBytes {
    /// Copies one frame's bytes for `converter`, after the checks above.
    pub fn fill(&mut self, converter: &Converter, data: &[u8]) -> Result<(), ConvertError> {
        let n = match converter.frame_bytes() {
            Some(n) => n.min(data.len()),
            None => {
                check_jpeg_header(data, converter.jpeg.expected)?;
                data.len()
            }
        };
        self.filled_with(converter, data.len())?
            .copy_from_slice(&data[..n]);
        Ok(())
    }

    /// The buffer for one uncompressed frame of `converter`, to be filled in place (a replayed
    /// dump reads into it); `len` is the frame's length in bytes, checked as by
    /// [`RawBytes::fill`]. For MJPEG, use `fill`.
    pub fn filled_with(
        &mut self,
        converter: &Converter,
        len: usize,
    ) -> Result<&mut [u8], ConvertError> {
        let needed = converter.frame_bytes().unwrap_or(len);
        if len < needed {
            return Err(ConvertError::ShortFrame {
                format: converter.format,
                width: converter.width,
                height: converter.height,
                needed,
                got: len,
            });
        }
        match &mut self.converter {
            Some(c) if c.same_layout(converter) => {}
            slot => *slot = Some(converter.clone()),
        }
        self.data.resize(needed, 0);
        Ok(&mut self.data)
    }

    /// Converts the frame into `image` (resized as needed, its allocation reused), on the
    /// network's pool like [`Converter::convert`].
    pub fn convert(&mut self, image: &mut RgbImage) -> Result<(), ConvertError> {
        let conv = self.converter.as_mut().ok_or(ConvertError::Empty)?;
        conv.convert(&self.data, image)
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook conversion in floating point, one pixel: the reference every SIMD path is
    /// held to.
    fn reference_pixel(y: u8, u: u8, v: u8, spec: YuvSpec) -> [u8; 3] {
        let (kr, kb) = spec.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let (y0, ys, cs) = match spec.range {
            YuvRange::Limited => (16.0, 255.0 / 219.0, 255.0 / 224.0),
            YuvRange::Full => (0.0, 1.0, 1.0),
        };
        let yy = (y as f32 - y0) * ys;
        let cb = (u as f32 - 128.0) * cs;
        let cr = (v as f32 - 128.0) * cs;
        let r = yy + 2.0 * (1.0 - kr) * cr;
        let b = yy + 2.0 * (1.0 - kb) * cb;
        let g = yy - (2.0 * (1.0 - kb) * kb / kg) * cb - (2.0 * (1.0 - kr) * kr / kg) * cr;
        [r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8)
    }

    /// Luma below black (Y < 16 in limited range, "footroom") is legal in the signal and
    /// cameras send it in noisy shadows; the SIMD paths clamp it to 16 first, the scalar ones
    /// do not. Either reading is accepted, pixel by pixel.
    fn footroom_clamped(y: u8, spec: YuvSpec) -> u8 {
        match spec.range {
            YuvRange::Limited => y.max(16),
            YuvRange::Full => y,
        }
    }

    /// Scalar reference for a whole packed 4:2:2 frame, with or without the footroom clamp.
    fn reference_packed422(
        format: PixelFormat,
        src: &[u8],
        (w, h, stride): (usize, usize, usize),
        spec: YuvSpec,
        clamp: bool,
    ) -> Vec<u8> {
        let (yo, uo, vo) = match format {
            PixelFormat::Yuyv => ([0, 2], 1, 3),
            _ => ([1, 3], 0, 2),
        };
        let mut out = vec![0; w * h * 3];
        for row in 0..h {
            for x in 0..w {
                let m = row * stride + (x / 2) * 4;
                let mut y = src[m + yo[x % 2]];
                if clamp {
                    y = footroom_clamped(y, spec);
                }
                let px = reference_pixel(y, src[m + uo], src[m + vo], spec);
                out[(row * w + x) * 3..][..3].copy_from_slice(&px);
            }
        }
        out
    }

    /// Scalar reference for NV12 (nearest chroma sample), with or without the footroom clamp.
    fn reference_nv12(
        src: &[u8],
        (w, h, stride): (usize, usize, usize),
        spec: YuvSpec,
        clamp: bool,
    ) -> Vec<u8> {
        let uv = &src[stride * h..];
        let mut out = vec![0; w * h * 3];
        for row in 0..h {
            for x in 0..w {
                let c = (row / 2) * stride + (x / 2) * 2;
                let mut y = src[row * stride + x];
                if clamp {
                    y = footroom_clamped(y, spec);
                }
                let px = reference_pixel(y, uv[c], uv[c + 1], spec);
                out[(row * w + x) * 3..][..3].copy_from_slice(&px);
            }
        }
        out
    }

    /// The largest per-pixel difference between `got` and the closer of the two references.
    fn max_diff_either(got: &[u8], plain: &[u8], clamped: &[u8]) -> (u8, usize) {
        let px_diff = |a: &[u8], b: &[u8]| a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max();
        got.chunks(3)
            .zip(plain.chunks(3).zip(clamped.chunks(3)))
            .enumerate()
            .map(|(i, (g, (p, c)))| {
                let d = px_diff(g, p).unwrap_or(0).min(px_diff(g, c).unwrap_or(0));
                (d, i)
            })
            .max()
            .unwrap_or((0, 0))
    }

    /// Deterministic noise (xorshift), so failures reproduce.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    /// Tolerance against the float reference: the fixed-point paths round intermediate
    /// products (yuvutils uses 6 fractional bits for 4:2:2).
    const TOLERANCE: u8 = 3;

    const SPECS: [YuvSpec; 4] = [
        YuvSpec {
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Limited,
        },
        YuvSpec {
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Full,
        },
        YuvSpec {
            matrix: YuvMatrix::Bt709,
            range: YuvRange::Limited,
        },
        YuvSpec {
            matrix: YuvMatrix::Bt709,
            range: YuvRange::Full,
        },
    ];

    fn yuyv_frame(w: usize, h: usize, y: u8, u: u8, v: u8) -> Vec<u8> {
        let mut f = Vec::with_capacity(w * h * 2);
        for _ in 0..h * w / 2 {
            f.extend_from_slice(&[y, u, y, v]);
        }
        f
    }

    fn nv12_frame(w: usize, h: usize, y: u8, u: u8, v: u8) -> Vec<u8> {
        let mut f = vec![y; w * h];
        for _ in 0..(h / 2) * (w / 2) {
            f.extend_from_slice(&[u, v]);
        }
        f
    }

    fn assert_close(got: &[u8], want: [u8; 3], tol: u8, what: &str) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                g.abs_diff(w) <= tol,
                "{what}: channel {i} is {g}, expected {w} (±{tol}); pixel {got:?}"
            );
        }
    }

    /// Hand-computed BT.601 limited-range values (the ones every UVC camera uses):
    /// black is Y 16, white Y 235, mid-grey Y 126 → 1.164 * 110 = 128;
    /// the 75% colour bars and full primaries from ITU-R BT.601.
    const KNOWN_601_LIMITED: [(&str, [u8; 3], [u8; 3]); 8] = [
        ("black", [16, 128, 128], [0, 0, 0]),
        ("white", [235, 128, 128], [255, 255, 255]),
        ("grey", [126, 128, 128], [128, 128, 128]),
        ("red", [81, 90, 240], [255, 0, 0]),
        ("green", [145, 54, 34], [0, 255, 0]),
        ("blue", [41, 240, 110], [0, 0, 255]),
        ("75% yellow", [162, 44, 142], [191, 191, 0]),
        ("75% cyan", [131, 156, 44], [0, 191, 191]),
    ];

    #[test]
    fn known_vectors_bt601_limited() {
        let spec = YuvSpec::default();
        assert_eq!(
            spec,
            YuvSpec {
                matrix: YuvMatrix::Bt601,
                range: YuvRange::Limited
            }
        );
        for (name, [y, u, v], rgb) in KNOWN_601_LIMITED {
            // The reference itself agrees with the published values.
            assert_close(&reference_pixel(y, u, v, spec), rgb, 2, name);
            // A 16x4 frame of that colour through every raw path.
            let (w, h) = (16u32, 4u32);
            let mut dst = vec![0u8; 16 * 4 * 3];
            yuyv_to_rgb(&yuyv_frame(16, 4, y, u, v), w, h, 32, spec, &mut dst).unwrap();
            for px in dst.chunks(3) {
                assert_close(px, rgb, 2, &format!("YUYV {name}"));
            }
            let mut uyvy = yuyv_frame(16, 4, y, u, v);
            for m in uyvy.chunks_mut(4) {
                m.copy_from_slice(&[u, y, v, y]);
            }
            let mut dst2 = vec![0u8; dst.len()];
            packed422_to_rgb(PixelFormat::Uyvy, &uyvy, w, h, 32, spec, &mut dst2).unwrap();
            assert_eq!(dst, dst2, "UYVY and YUYV disagree on {name}");
            nv12_to_rgb(&nv12_frame(16, 4, y, u, v), w, h, 16, spec, &mut dst).unwrap();
            for px in dst.chunks(3) {
                assert_close(px, rgb, 2, &format!("NV12 {name}"));
            }
        }
    }

    #[test]
    fn full_range_and_bt709_vectors() {
        let full = YuvSpec {
            matrix: YuvMatrix::Bt601,
            range: YuvRange::Full,
        };
        // JPEG/JFIF: Y is the grey level itself.
        for g in [0u8, 77, 128, 255] {
            assert_close(
                &reference_pixel(g, 128, 128, full),
                [g, g, g],
                0,
                "full grey",
            );
            let mut dst = vec![0; 8 * 2 * 3];
            nv12_to_rgb(&nv12_frame(8, 2, g, 128, 128), 8, 2, 8, full, &mut dst).unwrap();
            assert_close(&dst[..3], [g, g, g], 1, "NV12 full grey");
        }
        // BT.709 limited red: Y 63, Cb 102, Cr 240 (ITU-R BT.709 table).
        let hd = YuvSpec {
            matrix: YuvMatrix::Bt709,
            range: YuvRange::Limited,
        };
        assert_close(
            &reference_pixel(63, 102, 240, hd),
            [255, 0, 0],
            2,
            "709 red",
        );
        let mut dst = vec![0; 4 * 2 * 3];
        yuyv_to_rgb(&yuyv_frame(4, 2, 63, 102, 240), 4, 2, 8, hd, &mut dst).unwrap();
        assert_close(&dst[..3], [255, 0, 0], 2, "YUYV 709 red");
        // The same bytes read as BT.601 are visibly different: the matrix matters.
        let mut sd = vec![0; dst.len()];
        yuyv_to_rgb(&yuyv_frame(4, 2, 63, 102, 240), 4, 2, 8, SPECS[0], &mut sd).unwrap();
        assert!(
            sd[0] < 240,
            "601 reading of 709 red should be darker, got {sd:?}"
        );
    }

    /// The SIMD paths (AVX2/SSE4.1 on x86-64, NEON on aarch64, picked at run time) against the
    /// scalar reference on noise, for several sizes including ones that leave a scalar tail and
    /// odd widths, with padded strides, and frames converted in bands.
    #[test]
    fn simd_matches_scalar_reference() {
        for (w, h, pad) in [
            (1280usize, 8usize, 0usize),
            // Tall enough to be split into bands over the pool, odd heights included.
            (96, 67, 0),
            (50, 130, 0),
            (37, 5, 6),
            (64, 3, 0),
            (2, 2, 2),
        ] {
            for (k, spec) in SPECS.iter().enumerate() {
                let seed = (w * 31 + h * 7 + k) as u64 + 1;
                for format in [PixelFormat::Yuyv, PixelFormat::Uyvy] {
                    let stride = w.div_ceil(2) * 4 + pad;
                    let geom = (w, h, stride);
                    let src = noise(stride * h, seed);
                    let mut got = vec![0; w * h * 3];
                    packed422_to_rgb(format, &src, w as u32, h as u32, stride, *spec, &mut got)
                        .unwrap();
                    let plain = reference_packed422(format, &src, geom, *spec, false);
                    let clamped = reference_packed422(format, &src, geom, *spec, true);
                    let (d, px) = max_diff_either(&got, &plain, &clamped);
                    assert!(
                        d <= TOLERANCE,
                        "{format} {w}x{h} {spec}: pixel {px} is off by {d}: got {:?}, want {:?}",
                        &got[px * 3..][..3],
                        &plain[px * 3..][..3],
                    );
                }
                let stride = w.div_ceil(2) * 2 + pad;
                let geom = (w, h, stride);
                let src = noise(stride * (h + h.div_ceil(2)), seed ^ 0xabc);
                let mut got = vec![0; w * h * 3];
                nv12_to_rgb(&src, w as u32, h as u32, stride, *spec, &mut got).unwrap();
                let plain = reference_nv12(&src, geom, *spec, false);
                let clamped = reference_nv12(&src, geom, *spec, true);
                let (d, px) = max_diff_either(&got, &plain, &clamped);
                assert!(
                    d <= TOLERANCE,
                    "nv12 {w}x{h} {spec}: pixel {px} is off by {d}: got {:?}, want {:?}",
                    &got[px * 3..][..3],
                    &plain[px * 3..][..3],
                );
            }
        }
    }

    #[test]
    fn short_and_malformed_frames_are_errors_not_panics() {
        let spec = YuvSpec::default();
        let mut dst = vec![0; 4 * 4 * 3];
        let e = yuyv_to_rgb(&[0; 31], 4, 4, 8, spec, &mut dst).unwrap_err();
        assert_eq!(
            e.to_string(),
            "yuyv frame of 4x4 needs 32 bytes, got 31",
            "{e}"
        );
        assert!(matches!(
            nv12_to_rgb(&[0; 23], 4, 4, 4, spec, &mut dst),
            Err(ConvertError::ShortFrame { needed: 24, .. })
        ));
        assert!(matches!(
            yuyv_to_rgb(&[0; 64], 4, 4, 6, spec, &mut dst),
            Err(ConvertError::BadGeometry { .. })
        ));
        assert!(matches!(
            nv12_to_rgb(&[0; 64], 0, 4, 4, spec, &mut dst),
            Err(ConvertError::BadGeometry { .. })
        ));
        // A converter leaves the image untouched when the frame is short.
        let mut conv = Converter::new(PixelFormat::Yuyv, 4, 4, None, spec).unwrap();
        let mut img = RgbImage::new(2, 2);
        assert!(conv.convert(&[0; 10], &mut img).is_err());
        assert_eq!(img.dimensions(), (2, 2));
        assert_eq!(conv.frame_bytes(), Some(32));
    }

    #[test]
    fn prepare_reuses_the_allocation() {
        let mut img = RgbImage::new(64, 64);
        let ptr = img.as_ptr();
        prepare(&mut img, 32, 32);
        assert_eq!(img.dimensions(), (32, 32));
        assert_eq!(img.len(), 32 * 32 * 3);
        assert_eq!(img.as_ptr(), ptr, "shrinking must not reallocate");
        prepare(&mut img, 64, 64);
        assert_eq!(img.len(), 64 * 64 * 3);
    }

    fn encode_jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(img)
            .unwrap();
        out
    }

    #[test]
    fn jpeg_decodes_known_image() {
        // Four flat quadrants: JPEG is lossy but flat 8x8 blocks come back almost exactly.
        let colours = [
            [200u8, 30, 40],
            [20, 180, 60],
            [30, 40, 220],
            [128, 128, 128],
        ];
        let img = RgbImage::from_fn(64, 48, |x, y| {
            image::Rgb(colours[(x / 32 + 2 * (y / 24)) as usize])
        });
        let data = encode_jpeg(&img, 95);
        let mut out = RgbImage::new(1, 1);
        JpegDecoder::new().decode(&data, &mut out).unwrap();
        assert_eq!(out.dimensions(), (64, 48));
        for (x, y, c) in [(8, 8, 0), (56, 8, 1), (8, 40, 2), (56, 40, 3)] {
            assert_close(
                &out.get_pixel(x, y).0,
                colours[c],
                6,
                &format!("quadrant {c}"),
            );
        }
        // A camera converter insists on the negotiated size.
        let mut conv =
            Converter::new(PixelFormat::Mjpeg, 64, 48, None, YuvSpec::default()).unwrap();
        conv.convert(&data, &mut out).unwrap();
        let other = Converter::new(PixelFormat::Mjpeg, 640, 480, None, YuvSpec::default());
        assert!(matches!(
            other.unwrap().convert(&data, &mut out),
            Err(ConvertError::JpegSize { width: 64, .. })
        ));
    }

    /// Removes every DHT segment, as UVC cameras send MJPEG.
    fn strip_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut i = 2;
        while jpeg[i + 1] != 0xDA {
            let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
            if jpeg[i + 1] != 0xC4 {
                out.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        out.extend_from_slice(&jpeg[i..]);
        out
    }

    #[test]
    fn mjpeg_without_huffman_tables_decodes_like_the_full_jpeg() {
        let img = RgbImage::from_fn(48, 32, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 60]));
        let full = encode_jpeg(&img, 85);
        assert!(has_huffman_tables(&full));
        let uvc = strip_huffman_tables(&full);
        assert!(uvc.len() < full.len() - 400, "the tables were removed");
        assert!(!has_huffman_tables(&uvc));
        let mut dec = JpegDecoder::expecting(48, 32);
        let (mut a, mut b) = (RgbImage::new(1, 1), RgbImage::new(1, 1));
        dec.decode(&full, &mut a).unwrap();
        // zune-jpeg alone refuses such a frame; the AVI1 marker is what makes it work.
        assert!(dec.decode_inner(&uvc, &mut b).is_err());
        dec.decode(&uvc, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_raw_frame_converts_later_to_what_the_converter_gives_now() {
        let spec = YuvSpec::default();
        let nv12 = Converter::new(PixelFormat::Nv12, 6, 4, Some(8), spec).unwrap();
        let data: Vec<u8> = (0..nv12.frame_bytes().unwrap())
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        let mut now = RgbImage::new(1, 1);
        nv12.clone().convert(&data, &mut now).unwrap();

        let mut raw = RawBytes::default();
        assert!(matches!(
            raw.convert(&mut RgbImage::new(1, 1)),
            Err(ConvertError::Empty)
        ));
        // A frame with trailing bytes (a driver's padded buffer) keeps what the format needs.
        let mut padded = data.clone();
        padded.extend([7; 5]);
        raw.fill(&nv12, &padded).unwrap();
        assert_eq!(raw.len(), data.len());
        let mut later = RgbImage::new(1, 1);
        raw.convert(&mut later).unwrap();
        assert_eq!(later, now);

        // A short frame is refused when it arrives, and the buffer then takes another layout.
        assert!(matches!(
            raw.fill(&nv12, &data[..data.len() - 1]),
            Err(ConvertError::ShortFrame { .. })
        ));
        let yuyv = Converter::new(PixelFormat::Yuyv, 2, 1, None, spec).unwrap();
        raw.fill(&yuyv, &[235, 128, 16, 128]).unwrap();
        raw.convert(&mut later).unwrap();
        assert_eq!(later.as_raw(), &[255, 255, 255, 0, 0, 0]);
    }

    #[test]
    fn a_raw_jpeg_is_checked_up_to_its_frame_header_and_decoded_later() {
        let img = RgbImage::from_fn(48, 32, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 60]));
        let jpeg = encode_jpeg(&img, 85);
        let mjpeg = Converter::new(PixelFormat::Mjpeg, 48, 32, None, YuvSpec::default()).unwrap();
        let mut now = RgbImage::new(1, 1);
        mjpeg.clone().convert(&jpeg, &mut now).unwrap();
        let mut raw = RawBytes::default();
        raw.fill(&mjpeg, &jpeg).unwrap();
        assert_eq!(raw.len(), jpeg.len());
        let mut later = RgbImage::new(1, 1);
        raw.convert(&mut later).unwrap();
        assert_eq!(later, now);
        // A UVC frame without Huffman tables passes too, and decodes like the full one.
        raw.fill(&mjpeg, &strip_huffman_tables(&jpeg)).unwrap();
        raw.convert(&mut later).unwrap();
        assert_eq!(later, now);

        // Refused on arrival: not a JPEG, cut before the frame header, the wrong size.
        let refused = |data: &[u8]| RawBytes::default().fill(&mjpeg, data).unwrap_err();
        assert!(matches!(refused(&[0, 1, 2, 3]), ConvertError::Jpeg(_)));
        assert!(matches!(refused(&jpeg[..6]), ConvertError::Jpeg(_)));
        let other = encode_jpeg(&RgbImage::new(40, 32), 85);
        assert!(matches!(
            refused(&other),
            ConvertError::JpegSize {
                width: 40,
                height: 32,
                ..
            }
        ));
        // Any size for a converter that expects none (a replayed file).
        let any = Converter::new(PixelFormat::Mjpeg, 0, 0, None, YuvSpec::default()).unwrap();
        RawBytes::default().fill(&any, &other).unwrap();
        // Corrupt compressed data passes the check and fails when decoded.
        let mut broken = jpeg.clone();
        let n = broken.len();
        broken.truncate(n * 2 / 3);
        raw.fill(&mjpeg, &broken).unwrap();
        assert!(raw.convert(&mut later).is_err());
    }

    #[test]
    fn grey_jpeg_comes_out_grey() {
        let grey = image::GrayImage::from_pixel(16, 16, image::Luma([90]));
        let mut data = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, 95)
            .encode_image(&grey)
            .unwrap();
        let mut out = RgbImage::new(1, 1);
        JpegDecoder::new().decode(&data, &mut out).unwrap();
        assert_eq!(out.dimensions(), (16, 16));
        assert_close(&out.get_pixel(5, 5).0, [90, 90, 90], 2, "grey jpeg");
    }

    #[test]
    fn corrupt_jpegs_are_errors() {
        let img = RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 99]));
        let data = encode_jpeg(&img, 90);
        let mut out = RgbImage::new(1, 1);
        let mut dec = JpegDecoder::new();
        // Truncated mid-scan (what a USB bandwidth hiccup produces).
        assert!(dec.decode(&data[..data.len() * 2 / 3], &mut out).is_err());
        // Not a JPEG at all, and empty.
        assert!(dec.decode(b"hello, world", &mut out).is_err());
        assert!(dec.decode(&[], &mut out).is_err());
        // Header only.
        assert!(dec.decode(&data[..200.min(data.len())], &mut out).is_err());
        // Random bytes after a valid SOI.
        let mut junk = vec![0xFF, 0xD8];
        junk.extend(noise(5000, 9));
        assert!(dec.decode(&junk, &mut out).is_err());
    }

    #[test]
    fn fourcc_round_trip_and_config_names() {
        for f in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_fourcc(&f.fourcc()), Some(f));
        }
        assert_eq!(PixelFormat::from_fourcc(b"JPEG"), Some(PixelFormat::Mjpeg));
        assert_eq!(PixelFormat::from_fourcc(b"H264"), None);
        #[derive(Deserialize)]
        struct T {
            f: Vec<PixelFormat>,
            m: YuvMatrix,
            r: YuvRange,
        }
        let t: T =
            toml::from_str("f = [\"yuyv\", \"mjpg\", \"nv12\"]\nm = \"bt709\"\nr = \"full\"")
                .unwrap();
        assert_eq!(
            t.f,
            [PixelFormat::Yuyv, PixelFormat::Mjpeg, PixelFormat::Nv12]
        );
        assert_eq!((t.m, t.r), (YuvMatrix::Bt709, YuvRange::Full));
    }
}
