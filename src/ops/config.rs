//! The `[metrics]`, `[log]` and `[watchdog]` sections of the configuration file.

use crate::config::{check_range, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;

/// The Prometheus endpoint. Every field has a default, so `[metrics]` may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether to serve `/metrics` and `/healthz` over HTTP. Default `true`.
    pub enabled: bool,
    /// Address and port to listen on. Default `127.0.0.1:9464` (loopback only: the endpoint has
    /// no authentication; put a reverse proxy or an SSH tunnel in front to reach it remotely).
    /// Port 0 picks a free port, which is logged.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// How log lines look and how many there are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `auto`: journald-friendly lines (syslog priority prefix, no timestamp, no colour) when
    /// stderr is connected to the journal, human-readable lines otherwise (with colour on a
    /// terminal); `human`; `journald`; or `json` (one object per line). Default `auto`.
    pub format: LogFormat,
    /// Verbosity, as a tracing filter: `error`, `warn`, `info`, `debug`, `trace`, or per module
    /// such as `info,edgesift::store=debug`. `-v` on the command line and `RUST_LOG` override
    /// it. Default `info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Auto,
    Human,
    Journald,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".into(),
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::builder()
            .parse(&self.level)
            .map_err(|e| ConfigError::new("level", format!("not a log filter: {e}")))?;
        Ok(())
    }
}

/// How the systemd watchdog judges that the pipeline is alive.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogConfig {
    /// A stage (capture, segment, select, store) that has not reported progress for this long
    /// counts as stalled: edgesift stops answering systemd's watchdog (which then restarts it once
    /// `WatchdogSec=` passes) and `/healthz` answers 503. Milliseconds. It must exceed the slowest
    /// single inference or sample write on the board; a camera that delivers no frame for this
    /// long also counts. Default 30000.
    pub stall_timeout_ms: u64,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self {
            stall_timeout_ms: 30_000,
        }
    }
}

impl WatchdogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("stall_timeout_ms", self.stall_timeout_ms, 500, 3_600_000)
    }

    pub fn stall_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.stall_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sections_give_documented_defaults() {
        let m: MetricsConfig = toml::from_str("").unwrap();
        assert_eq!(m, MetricsConfig::default());
        assert!(m.enabled);
        assert_eq!(m.listen.to_string(), "127.0.0.1:9464");
        let l: LogConfig = toml::from_str("").unwrap();
        assert_eq!((l.format, l.level.as_str()), (LogFormat::Auto, "info"));
        let w: WatchdogConfig = toml::from_str("").unwrap();
        assert_eq!(w.stall_timeout_ms, 30_000);
        for r in [m.validate(), l.validate(), w.validate()] {
            r.unwrap();
        }
    }

    #[test]
    fn parses_and_validates_every_field() {
        let m: MetricsConfig = toml::from_str("enabled = false\nlisten = \"[::1]:9100\"").unwrap();
        assert!(!m.enabled);
        assert_eq!(m.listen.port(), 9100);
        assert!(toml::from_str::<MetricsConfig>("listen = \"localhost\"").is_err());
        assert!(toml::from_str::<MetricsConfig>("port = 1").is_err());

        let l: LogConfig =
            toml::from_str("format = \"json\"\nlevel = \"warn,edgesift=debug\"").unwrap();
        assert_eq!(l.format, LogFormat::Json);
        l.validate().unwrap();
        assert!(toml::from_str::<LogConfig>("format = \"xml\"").is_err());
        let bad = LogConfig {
            level: "edgesift=loud".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "level");

        let w = WatchdogConfig {
            stall_timeout_ms: 10,
        };
        assert_eq!(w.validate().unwrap_err().key, "stall_timeout_ms");
    }

    /// The shipped default config and every example under config/examples load as they are.
    #[test]
    fn shipped_configs_load() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut files = vec![root.join("edgesift.toml")];
        let mut examples: Vec<_> = std::fs::read_dir(root.join("examples"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        examples.sort();
        assert!(examples.len() >= 2, "{examples:?}");
        files.extend(examples);
        for f in files {
            if let Err(e) = crate::config::Config::load(&f) {
                panic!("{}: {e}", f.display());
            }
        }
    }
}
