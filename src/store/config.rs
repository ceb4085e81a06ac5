//! The `[store]` section of the configuration file.

use crate::config::{check_range, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// Where and how kept samples are written. Every field has a default, so `[store]` may be empty.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Data directory holding `index.db` and `samples/`. Default `/var/lib/edgesift`.
    pub dir: PathBuf,
    /// Format of the stored frame: `jpeg` (lossy, small) or `png` (lossless, ~10x larger).
    /// Default `jpeg`.
    pub image_format: ImageFormat,
    /// JPEG quality, 1 (smallest) to 100 (best). Ignored for `png`. Default 90.
    pub jpeg_quality: u8,
    /// Most bytes the sample files may take, each file counted in whole 4 KiB blocks (the index
    /// itself, about 1 KiB per sample, is not counted). Reaching it evicts samples. Default
    /// 8 GiB; at least 1 MiB.
    pub max_bytes: u64,
    /// Free space, in bytes, to leave on the filesystem holding `dir` whatever `max_bytes` says;
    /// falling below it evicts samples. Default 1 GiB; 0 disables the guard.
    pub min_free_bytes: u64,
    /// Which samples make room first: `lowest_value` (lowest selection value, then the oldest)
    /// or `oldest` (first stored). Default `lowest_value`.
    pub eviction: EvictionPolicy,
    /// Whether to `fsync` every file, directory and index commit. Turning it off trades the
    /// durability of the last few seconds after a power cut for speed (consistency is kept
    /// either way); only for benchmarks and throwaway runs. Default `true`.
    pub fsync: bool,
}

/// How the frame itself is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    /// The file extension, also stored in the index.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }

    pub(crate) fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "jpg" => Some(ImageFormat::Jpeg),
            "png" => Some(ImageFormat::Png),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
        }
    }
}

/// Which samples are evicted first when the quota or the free-space guard is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionPolicy {
    /// The lowest selection value first, the first stored among equals: the store converges on
    /// the most valuable samples while recent low-value ones churn in the remaining room.
    LowestValue,
    /// The first stored first (by sample id, not by wall clock, which may jump on a board
    /// without a real-time clock).
    Oldest,
}

impl EvictionPolicy {
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::LowestValue => "lowest_value",
            EvictionPolicy::Oldest => "oldest",
        }
    }
}

pub(crate) const MIB: u64 = 1 << 20;
pub(crate) const GIB: u64 = 1 << 30;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("/var/lib/edgesift"),
            image_format: ImageFormat::Jpeg,
            jpeg_quality: 90,
            max_bytes: 8 * GIB,
            min_free_bytes: GIB,
            eviction: EvictionPolicy::LowestValue,
            fsync: true,
        }
    }
}

impl StoreConfig {
    /// Checks ranges; keys are relative to the `[store]` section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError::new("dir", "must not be empty"));
        }
        check_range("jpeg_quality", self.jpeg_quality, 1, 100)?;
        if self.max_bytes < MIB {
            return Err(ConfigError::new(
                "max_bytes",
                format!("must be at least 1 MiB (1048576), got {}", self.max_bytes),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_documented_defaults() {
        let c: StoreConfig = toml::from_str("").unwrap();
        assert_eq!(c, StoreConfig::default());
        assert_eq!(c.dir, PathBuf::from("/var/lib/edgesift"));
        assert_eq!(c.jpeg_quality, 90);
        assert_eq!(c.max_bytes, 8 << 30);
        assert_eq!(c.min_free_bytes, 1 << 30);
        assert_eq!(c.eviction, EvictionPolicy::LowestValue);
        assert!(c.fsync);
        c.validate().unwrap();
    }

    #[test]
    fn parses_every_field_and_rejects_unknown_ones() {
        let c: StoreConfig = toml::from_str(
            r#"
            dir = "/data/es"
            image_format = "png"
            jpeg_quality = 75
            max_bytes = 2000000
            min_free_bytes = 0
            eviction = "oldest"
            fsync = false
            "#,
        )
        .unwrap();
        assert_eq!(c.image_format, ImageFormat::Png);
        assert_eq!(c.eviction, EvictionPolicy::Oldest);
        assert_eq!(c.max_bytes, 2_000_000);
        assert!(!c.fsync);
        assert!(toml::from_str::<StoreConfig>("max_byte = 5").is_err());
        assert!(toml::from_str::<StoreConfig>("eviction = \"random\"").is_err());
    }

    #[test]
    fn validate_names_the_key() {
        let c = StoreConfig {
            jpeg_quality: 0,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "jpeg_quality");
        let c = StoreConfig {
            max_bytes: 1000,
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "max_bytes");
        assert!(e.problem.contains("1000"), "{e}");
    }
}
