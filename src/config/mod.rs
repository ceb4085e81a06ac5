//! The one TOML file that configures the daemon, parsed once and validated once.
//!
//! Each stage owns the struct of its own section (`[source]`, `[model]`, `[select]`, `[store]`,
//! ...) next to its code, with serde defaults documented on the fields; this module composes them,
//! reads the file, and turns every problem into an error that names the key: unknown keys and
//! wrong types from deserialisation (with the line), out-of-range values from each section's
//! `validate`.
//!
//! Architecture invariant: no other module reads the config file or the environment.

mod error;

pub use error::{check_range, ConfigError};

use crate::capture::SourceConfig;
use crate::ops::{LogConfig, MetricsConfig, WatchdogConfig};
use crate::pipeline::PipelineConfig;
use crate::segment::ModelConfig;
use crate::store::StoreConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole file. Every section may be left out; its defaults then apply.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub source: SourceConfig,
    pub model: ModelConfig,
    pub store: StoreConfig,
    pub pipeline: PipelineConfig,
    pub select: crate::select::SelectConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub watchdog: WatchdogConfig,
    pub refine: crate::segment::mobilesam::RefineConfig,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("no config file given and none found (looked for {}); pass --config FILE", .tried.join(", "))]
    NotFound { tried: Vec<String> },
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax errors, unknown keys and wrong types, with the key path and TOML's own pointer to
    /// the line.
    #[error("{path}: {key}: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Invalid {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
}

impl ConfigFileError {
    /// The dotted key at fault, when one is.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigFileError::Io { .. } | ConfigFileError::NotFound { .. } => None,
            ConfigFileError::Parse { key, .. } => Some(key),
            ConfigFileError::Invalid { source, .. } => Some(&source.key),
        }
    }
}

impl Config {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ParseError::Syntax { key, message } => ConfigFileError::Parse {
                path: path.to_owned(),
                key,
                message,
            },
            ParseError::Invalid(source) => ConfigFileError::Invalid {
                path: path.to_owned(),
                source,
            },
        })
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| ParseError::Syntax {
            key: "(file)".into(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ParseError::Syntax {
                key: if key == "." { "(file)".into() } else { key },
                message: e.into_inner().to_string().trim_end().to_string(),
            }
        })?;
        cfg.validate().map_err(ParseError::Invalid)?;
        Ok(cfg)
    }

    /// Checks every section, naming the key (with its section) of the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.source.validate().map_err(|e| e.within("source"))?;
        self.model.validate().map_err(|e| e.within("model"))?;
        self.store.validate().map_err(|e| e.within("store"))?;
        self.pipeline.validate().map_err(|e| e.within("pipeline"))?;
        self.select.validate().map_err(|e| e.within("select"))?;
        self.metrics.validate().map_err(|e| e.within("metrics"))?;
        self.log.validate().map_err(|e| e.within("log"))?;
        self.watchdog.validate().map_err(|e| e.within("watchdog"))?;
        self.refine.validate().map_err(|e| e.within("refine"))?;
        Ok(())
    }
}

/// Where `edgesift run` looks for its config when not told: the repository's
/// `config/edgesift.toml` (a checkout), then the packaged `/etc/edgesift/edgesift.toml`.
pub const DEFAULT_CONFIG_PATHS: [&str; 2] = ["config/edgesift.toml", "/etc/edgesift/edgesift.toml"];

/// Environment variable naming the config file (after `--config`, before the default paths).
pub const CONFIG_ENV: &str = "EDGESIFT_CONFIG";

/// Environment variable overriding `store.dir` (a `--data-dir` flag overrides it in turn).
pub const DATA_DIR_ENV: &str = "EDGESIFT_DATA_DIR";

/// The config file to use: `explicit` when given, else `$EDGESIFT_CONFIG`, else the first of
/// [`DEFAULT_CONFIG_PATHS`] that exists.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigFileError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    DEFAULT_CONFIG_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| ConfigFileError::NotFound {
            tried: DEFAULT_CONFIG_PATHS.iter().map(|s| s.to_string()).collect(),
        })
}

impl Config {
    /// Applies the environment's overrides of paths ([`DATA_DIR_ENV`]).
    pub fn apply_env(&mut self) {
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
            self.store.dir = PathBuf::from(dir);
        }
    }
}

/// A config text that does not parse or validate.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{key}: {message}")]
    Syntax { key: String, message: String },
    #[error(transparent)]
    Invalid(ConfigError),
}

impl ParseError {
    pub fn key(&self) -> &str {
        match self {
            ParseError::Syntax { key, .. } => key,
            ParseError::Invalid(e) => &e.key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_name_their_full_path() {
        let e = Config::parse("[store]\nmax_byte = 5\n").unwrap_err();
        assert_eq!(e.key(), "store.max_byte");
        assert!(e.to_string().contains("unknown field `max_byte`"), "{e}");
        let e = Config::parse("[modle]\n").unwrap_err();
        assert_eq!(e.key(), "modle");
    }

    #[test]
    fn wrong_types_name_the_key_and_the_line() {
        let e = Config::parse("[model]\nconf = \"high\"\n").unwrap_err();
        assert_eq!(e.key(), "model.conf");
        let msg = e.to_string();
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn out_of_range_values_name_the_section_and_key() {
        let e = Config::parse("[model]\niou = 2.0\n").unwrap_err();
        assert_eq!(e.key(), "model.iou");
        assert!(e.to_string().contains("between 0 and 1"), "{e}");
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let e = Config::parse("[model\nconf = 0.3\n").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
