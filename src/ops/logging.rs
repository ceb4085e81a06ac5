//! Log output via `tracing`: readable on a terminal, journald-friendly under systemd, or JSON.
//!
//! Logging starts before the configuration is read ([`init`]: the format is detected, the level
//! comes from `-v`), and `edgesift run` then applies `[log]` ([`apply`]); both the filter and
//! the format sit behind reload handles so this can happen once the subscriber is installed.
//!
//! Under systemd (stderr is the journal stream named by `$JOURNAL_STREAM`) lines carry no
//! timestamp and no colour (the journal stamps them) but start with a `<N>` syslog priority,
//! which journald turns into the entry's priority, so `journalctl -u edgesift -p warning` works.

use super::config::{LogConfig, LogFormat};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

type Filtered = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type BoxedFmt = Box<dyn Layer<Filtered> + Send + Sync>;

struct Handles {
    filter: reload::Handle<EnvFilter, Registry>,
    format: reload::Handle<BoxedFmt, Filtered>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();
/// `-v` count given to [`init`]; it keeps overriding `[log] level` across reloads.
static VERBOSE: AtomicU8 = AtomicU8::new(0);

/// The format `auto` resolves to here and now.
pub fn detect() -> LogFormat {
    let journal = std::env::var("JOURNAL_STREAM").ok();
    if journal.as_deref().is_some_and(stderr_is) {
        LogFormat::Journald
    } else {
        LogFormat::Human
    }
}

/// Whether stderr is the file `dev:ino` (the format of `$JOURNAL_STREAM`).
fn stderr_is(dev_ino: &str) -> bool {
    let Some((dev, ino)) = dev_ino.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    match rustix::fs::fstat(std::io::stderr()) {
        // dev_t and ino_t are not u64 on every target.
        #[allow(clippy::unnecessary_cast)]
        Ok(st) => st.st_dev as u64 == dev && st.st_ino as u64 == ino,
        Err(_) => false,
    }
}

/// The filter: `RUST_LOG` when set, else `-v` (debug, trace) when given, else `level`.
fn filter(level: &str, verbose: u8) -> EnvFilter {
    if let Ok(f) = EnvFilter::try_from_default_env() {
        return f;
    }
    let level = match verbose {
        0 => level,
        1 => "debug",
        _ => "trace",
    };
    EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
}

fn format_layer(format: LogFormat) -> BoxedFmt {
    let format = if format == LogFormat::Auto {
        detect()
    } else {
        format
    };
    let base = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Json => Box::new(base.json().with_current_span(false)),
        LogFormat::Journald => Box::new(
            base.with_ansi(false).event_format(SyslogPrefix(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_ansi(false),
            )),
        ),
        LogFormat::Human | LogFormat::Auto => {
            Box::new(base.with_ansi(std::io::stderr().is_terminal()))
        }
    }
}

/// Installs the global subscriber: detected format, `info` (or `-v`'s level). Calling it again
/// does nothing.
pub fn init(verbose: u8) {
    VERBOSE.store(verbose, Ordering::Relaxed);
    let (filter, filter_handle) = reload::Layer::new(filter("info", verbose));
    let (format, format_handle) = reload::Layer::new(format_layer(LogFormat::Auto));
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init();
    if installed.is_ok() {
        let _ = HANDLES.set(Handles {
            filter: filter_handle,
            format: format_handle,
        });
    }
}

/// Applies `[log]` (at start-up of `edgesift run`, and on reload). `-v` and `RUST_LOG` still
/// win over `level`.
pub fn apply(cfg: &LogConfig) -> Result<(), String> {
    let verbose = VERBOSE.load(Ordering::Relaxed);
    let Some(h) = HANDLES.get() else {
        return Err("logging was not initialised".into());
    };
    h.filter
        .reload(filter(&cfg.level, verbose))
        .map_err(|e| e.to_string())?;
    h.format
        .reload(format_layer(cfg.format))
        .map_err(|e| e.to_string())
}

/// Prefixes each line with its syslog priority (`<3>` error ... `<7>` debug and trace), which
/// journald strips and records as the entry's priority (see `sd-daemon(3)`).
struct SyslogPrefix<F>(F);

fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

impl<S, N, F> FormatEvent<S, N> for SyslogPrefix<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Captures what a layer writes.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn capture(layer_for: impl FnOnce(Buf) -> BoxedFmt) -> String {
        let buf = Buf::default();
        let (filter, _) = reload::Layer::new(EnvFilter::new("debug"));
        let sub = tracing_subscriber::registry()
            .with(filter)
            .with(layer_for(buf.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(stage = "store", "disk almost full");
            tracing::debug!("detail");
        });
        buf.text()
    }

    #[test]
    fn journald_lines_carry_the_priority_and_no_timestamp_or_colour() {
        let out = capture(|b| {
            Box::new(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || b.clone())
                    .with_ansi(false)
                    .event_format(SyslogPrefix(
                        tracing_subscriber::fmt::format()
                            .without_time()
                            .with_ansi(false),
                    )),
            )
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].starts_with("<4> WARN "), "{out}");
        assert!(
            lines[0].ends_with("disk almost full stage=\"store\""),
            "{out}"
        );
        assert!(lines[1].starts_with("<7>DEBUG "), "{out}");
        assert!(!out.contains('\x1b'), "{out}");
    }

    #[test]
    fn json_lines_are_objects() {
        let out = capture(|b| {
            Box::new(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || b.clone())
                    .json(),
            )
        });
        let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(first["level"], "WARN");
        assert_eq!(first["fields"]["message"], "disk almost full");
        assert_eq!(first["fields"]["stage"], "store");
    }

    #[test]
    fn journal_stream_must_name_stderr_itself() {
        assert!(!stderr_is("garbage"));
        assert!(!stderr_is("1:x"));
        let st = rustix::fs::fstat(std::io::stderr()).unwrap();
        assert!(stderr_is(&format!("{}:{}", st.st_dev, st.st_ino)));
        assert!(!stderr_is(&format!("{}:{}", st.st_dev, st.st_ino + 1)));
    }

    #[test]
    fn verbosity_flags_override_the_configured_level() {
        // RUST_LOG is not set in the test environment unless a developer sets it.
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        assert_eq!(filter("warn", 0).to_string(), "warn");
        assert_eq!(filter("warn", 1).to_string(), "debug");
        assert_eq!(filter("warn", 2).to_string(), "trace");
    }
}
