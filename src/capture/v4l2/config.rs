//! `[source]` with `kind = "v4l"`.

use crate::capture::convert::{PixelFormat, YuvMatrix, YuvRange};
use crate::config::{check_range, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// A V4L2 camera: which device, in which format, and how to ride out trouble.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct V4lConfig {
    /// The video device. Prefer the stable names under `/dev/v4l/by-id/` (listed by
    /// `edgesift devices`) to `/dev/videoN`, whose numbers depend on plug order.
    /// Default: `/dev/video0`.
    pub device: PathBuf,
    /// Pixel formats to accept, best first: `yuyv`, `uyvy`, `mjpeg`, `nv12`. The first one
    /// the camera offers at the wanted size and rate is used; when none reaches the rate, the
    /// fastest one at the wanted size. Default: `["yuyv", "uyvy", "mjpeg", "nv12"]`
    /// (uncompressed first: no JPEG artefacts and far less CPU per frame).
    pub formats: Vec<PixelFormat>,
    /// Frame width in pixels, 16 to 8192. The nearest size the camera offers is used (with a
    /// warning) when it lacks this one. Default: 1280.
    pub width: u32,
    /// Frame height in pixels, 16 to 8192. Default: 720.
    pub height: u32,
    /// Frames per second to ask for, 0.1 to 1000. Default: 30.
    pub fps: f64,
    /// Driver buffers to stream with, 2 to 32. More ride out longer pauses of the capture
    /// thread; each holds one frame. Default: 4.
    pub buffers: u32,
    /// A camera that delivers no frame for this long, in milliseconds (100 to 60000), is
    /// treated as gone and reopened. The first frame after opening gets at least 5 s.
    /// Default: 2000.
    pub frame_timeout_ms: u64,
    /// How long to wait at start-up for a camera that is missing, busy or not yet accessible
    /// (a USB camera that comes up late at boot), in seconds, 0 to 86400. 0 fails at once.
    /// Default: 30.
    pub startup_wait_s: u64,
    /// First delay before reopening a lost camera, in milliseconds (10 to 60000); it doubles
    /// after each failed attempt. Default: 500.
    pub reconnect_min_ms: u64,
    /// Longest delay between reopening attempts, in milliseconds (at least
    /// `reconnect_min_ms`, at most 600000). Default: 10000.
    pub reconnect_max_ms: u64,
    /// After this many corrupt frames in a row the camera is closed and reopened (some UVC
    /// cameras get stuck sending garbage); 0 never does. Default: 30.
    pub reset_after_bad_frames: u32,
    /// Frames to throw away after each (re)open, 0 to 1000, while exposure and white balance
    /// settle. Default: 0.
    pub warmup_frames: u32,
    /// Colour matrix of YUV frames: `bt601`, `bt709` or `bt2020`. Default: unset, what the
    /// driver reports (BT.601 for UVC cameras).
    pub matrix: Option<YuvMatrix>,
    /// Value range of YUV frames: `limited` or `full`. Default: unset, what the driver
    /// reports (limited for UVC cameras).
    pub range: Option<YuvRange>,
}

impl Default for V4lConfig {
    fn default() -> Self {
        Self {
            device: PathBuf::from("/dev/video0"),
            formats: vec![
                PixelFormat::Yuyv,
                PixelFormat::Uyvy,
                PixelFormat::Mjpeg,
                PixelFormat::Nv12,
            ],
            width: 1280,
            height: 720,
            fps: 30.0,
            buffers: 4,
            frame_timeout_ms: 2000,
            startup_wait_s: 30,
            reconnect_min_ms: 500,
            reconnect_max_ms: 10_000,
            reset_after_bad_frames: 30,
            warmup_frames: 0,
            matrix: None,
            range: None,
        }
    }
}

impl V4lConfig {
    /// Checks the values; keys are relative to the section (`fps`, not `source.fps`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let dev = self.device.as_os_str();
        if dev.is_empty() {
            return Err(ConfigError::new("device", "required, e.g. /dev/video0"));
        }
        if dev.as_encoded_bytes().contains(&0) {
            return Err(ConfigError::new("device", "contains a NUL byte"));
        }
        if self.formats.is_empty() {
            return Err(ConfigError::new(
                "formats",
                "list at least one of yuyv, uyvy, mjpeg, nv12",
            ));
        }
        for (i, f) in self.formats.iter().enumerate() {
            if self.formats[..i].contains(f) {
                return Err(ConfigError::new("formats", format!("lists {f} twice")));
            }
        }
        check_range("width", self.width, 16, 8192)?;
        check_range("height", self.height, 16, 8192)?;
        if !self.fps.is_finite() {
            return Err(ConfigError::new("fps", "must be a number"));
        }
        check_range("fps", self.fps, 0.1, 1000.0)?;
        check_range("buffers", self.buffers, 2, 32)?;
        check_range("frame_timeout_ms", self.frame_timeout_ms, 100, 60_000)?;
        check_range("startup_wait_s", self.startup_wait_s, 0, 86_400)?;
        check_range("reconnect_min_ms", self.reconnect_min_ms, 10, 60_000)?;
        check_range(
            "reconnect_max_ms",
            self.reconnect_max_ms,
            self.reconnect_min_ms,
            600_000,
        )?;
        check_range(
            "reset_after_bad_frames",
            self.reset_after_bad_frames,
            0,
            100_000,
        )?;
        check_range("warmup_frames", self.warmup_frames, 0, 1000)?;
        Ok(())
    }

    pub(crate) fn frame_timeout(&self) -> Duration {
        Duration::from_millis(self.frame_timeout_ms)
    }

    pub(crate) fn reconnect_min(&self) -> Duration {
        Duration::from_millis(self.reconnect_min_ms)
    }

    pub(crate) fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c: V4lConfig = toml::from_str("").unwrap();
        assert_eq!(c, V4lConfig::default());
        c.validate().unwrap();
        assert_eq!(c.device, PathBuf::from("/dev/video0"));
        assert_eq!((c.width, c.height, c.fps), (1280, 720, 30.0));
        assert_eq!(c.formats[0], PixelFormat::Yuyv);
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = [
            ("formats = []", "formats"),
            ("formats = [\"yuyv\", \"yuyv\"]", "formats"),
            ("width = 8", "width"),
            ("fps = 0", "fps"),
            ("buffers = 1", "buffers"),
            ("frame_timeout_ms = 5", "frame_timeout_ms"),
            (
                "reconnect_min_ms = 2000\nreconnect_max_ms = 1000",
                "reconnect_max_ms",
            ),
            ("device = \"\"", "device"),
        ];
        for (toml_text, key) in bad {
            let c: V4lConfig = toml::from_str(toml_text).unwrap();
            assert_eq!(c.validate().unwrap_err().key, key, "{toml_text}");
        }
        assert!(toml::from_str::<V4lConfig>("formats = [\"h264\"]").is_err());
        assert!(toml::from_str::<V4lConfig>("fsp = 30").is_err());
        let c: V4lConfig = toml::from_str("matrix = \"bt709\"\nrange = \"full\"").unwrap();
        assert_eq!(
            (c.matrix, c.range),
            (Some(YuvMatrix::Bt709), Some(YuvRange::Full))
        );
    }
}
