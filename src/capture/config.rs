//! `[source]`: which frame source the daemon reads, and the settings of each kind.
//!
//! Each kind has its own sub-table, so switching `kind` keeps the other settings in the file:
//!
//! ```toml
//! [source]
//! kind = "v4l"
//! [source.v4l]
//! device = "/dev/v4l/by-id/usb-Arducam-video-index0"
//! ```

use super::{
    CaptureError, ReplayConfig, ReplaySource, Source, SyntheticConfig, SyntheticSource, V4lConfig,
    V4lSource,
};
use crate::config::ConfigError;
use serde::Deserialize;

/// The `[source]` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `synthetic` (the built-in road-scene generator, no camera needed), `v4l` (a V4L2
    /// camera) or `replay` (image directories, raw dumps, MJPEG files). Default `synthetic`.
    pub kind: SourceKind,
    /// Settings of the `synthetic` kind (`[source.synthetic]`).
    pub synthetic: SyntheticConfig,
    /// Settings of the `v4l` kind (`[source.v4l]`).
    pub v4l: V4lConfig,
    /// Settings of the `replay` kind (`[source.replay]`).
    pub replay: ReplayConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    #[default]
    Synthetic,
    V4l,
    Replay,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Synthetic => "synthetic",
            SourceKind::V4l => "v4l",
            SourceKind::Replay => "replay",
        }
    }
}

impl SourceConfig {
    /// Checks the settings of the selected kind only: a replay path is required only when
    /// replaying.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let kind = self.kind.name();
        match self.kind {
            SourceKind::Synthetic => self.synthetic.validate(),
            SourceKind::V4l => self.v4l.validate(),
            SourceKind::Replay => self.replay.validate(),
        }
        .map_err(|e| e.within(kind))
    }

    /// Opens the selected source. Fails when the camera or the files cannot be used.
    pub fn open(&self) -> Result<Box<dyn Source>, CaptureError> {
        Ok(match self.kind {
            SourceKind::Synthetic => {
                Box::new(SyntheticSource::new(self.synthetic.clone()).map_err(|e| {
                    CaptureError::Unusable(e.within("source.synthetic").to_string())
                })?)
            }
            SourceKind::V4l => Box::new(V4lSource::open(&self.v4l)?),
            SourceKind::Replay => Box::new(ReplaySource::open(&self.replay)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn default_is_the_synthetic_source() {
        let cfg = Config::parse("").unwrap();
        assert_eq!(cfg.source.kind, SourceKind::Synthetic);
        assert!(cfg.source.open().is_ok());
    }

    #[test]
    fn only_the_selected_kind_is_validated() {
        // A replay without a path is fine while the synthetic source runs...
        assert!(Config::parse("[source.replay]\nfps = 5\n").is_ok());
        // ...and an error once it is selected, named with its full key.
        let e = Config::parse("[source]\nkind = \"replay\"\n").unwrap_err();
        assert_eq!(e.key(), "source.replay.path");
    }

    #[test]
    fn errors_in_sub_tables_name_the_full_key() {
        let e = Config::parse("[source.v4l]\nfsp = 30\n").unwrap_err();
        assert_eq!(e.key(), "source.v4l.fsp");
        let e = Config::parse("[source]\nkind = \"usb\"\n").unwrap_err();
        assert_eq!(e.key(), "source.kind");
        let e = Config::parse("[source]\nkind = \"v4l\"\n[source.v4l]\nfps = 0\n").unwrap_err();
        assert_eq!(e.key(), "source.v4l.fps");
    }
}
