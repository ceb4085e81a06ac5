//! Everything that runs around the pipeline of `edgesift run`, started and stopped in one place
//! so that the command itself stays glue.
//!
//! Order of a run (`Daemon` methods in brackets):
//! 1. config read; [`Daemon::start`]: `[log]` applied, signal thread, metrics endpoint, watchdog
//!    thread (pinging while starting; `TimeoutStartSec=` bounds start-up);
//! 2. model loaded ([`Daemon::model_loaded`]), source opened;
//! 3. [`Daemon::ready`]: `READY=1`; from now a stalled stage withholds the watchdog ping;
//! 4. `pipeline::run` until the source ends or a stop signal (which sends `STOPPING=1` and calls
//!    [`Control::stop`]); SIGHUP reloads meanwhile;
//! 5. [`Daemon::finish`]: `STOPPING=1` if not yet sent, threads stopped, endpoint closed.

use super::{
    logging, tick_period, watchdog_interval, Liveness, MetricsServer, MetricsSource, Notifier,
    Request, SignalThread, Watchdog, WatchdogThread,
};
use crate::config::Config;
use crate::pipeline::Control;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The service around one pipeline run.
pub struct Daemon {
    shared: Arc<Shared>,
    metrics: Option<(MetricsServer, Arc<MetricsSource>)>,
    signals: Option<SignalThread>,
    watchdog: Option<WatchdogThread>,
}

struct Shared {
    notifier: Arc<Notifier>,
    liveness: Arc<Liveness>,
    control: Arc<Control>,
    /// The file to re-read on SIGHUP (none when running on built-in defaults).
    config_path: Option<PathBuf>,
    /// The configuration in force.
    config: Mutex<Config>,
    /// What the command line and the environment change in a config read from the file
    /// (`--data-dir`, `$EDGESIFT_DATA_DIR`); applied to a reloaded file too.
    overrides: Box<dyn Fn(&mut Config) + Send + Sync>,
    stopping_sent: AtomicBool,
}

impl Daemon {
    /// Starts the service machinery for `config` (read from `config_path`, if any). Call it
    /// before loading the model, so that a stop signal during a long load is already orderly.
    /// Nothing here is fatal: a metrics address that cannot be bound is logged and skipped
    /// (collecting frames matters more than observing it).
    pub fn start(
        config: &Config,
        config_path: Option<&Path>,
        overrides: impl Fn(&mut Config) + Send + Sync + 'static,
        control: Arc<Control>,
    ) -> Self {
        if let Err(e) = logging::apply(&config.log) {
            tracing::debug!(error = %e, "log settings not applied");
        }
        let liveness = Arc::new(Liveness::new(
            control.clone(),
            config.watchdog.stall_timeout(),
        ));
        let shared = Arc::new(Shared {
            notifier: Arc::new(Notifier::from_env()),
            liveness: liveness.clone(),
            control,
            config_path: config_path.map(Path::to_owned),
            config: Mutex::new(config.clone()),
            overrides: Box::new(overrides),
            stopping_sent: AtomicBool::new(false),
        });
        shared.notifier.status("starting: loading the model");

        let signals = {
            let shared = shared.clone();
            SignalThread::spawn(move |req| match req {
                Request::Stop => shared.stop(),
                Request::Reload => shared.reload(),
            })
            .map_err(|e| tracing::error!(error = %e, "cannot install signal handlers"))
            .ok()
        };

        let metrics = if config.metrics.enabled {
            let source = Arc::new(MetricsSource::new(liveness.clone(), &config.store.dir));
            match MetricsServer::start(config.metrics.listen, source.clone()) {
                Ok(server) => {
                    tracing::info!(
                        addr = %server.local_addr(),
                        "metrics endpoint listening: http://{}/metrics, /healthz",
                        server.local_addr()
                    );
                    Some((server, source))
                }
                Err(e) => {
                    tracing::error!(
                        listen = %config.metrics.listen,
                        error = %e,
                        "cannot serve metrics (see metrics.listen); running without them"
                    );
                    None
                }
            }
        } else {
            None
        };

        let interval = watchdog_interval();
        if let Some(w) = interval {
            tracing::debug!(
                watchdog_ms = w.as_millis() as u64,
                "systemd watchdog enabled"
            );
        }
        let watchdog = shared.notifier.enabled().then(|| {
            Watchdog::new(shared.notifier.clone(), liveness.clone()).spawn(tick_period(interval))
        });

        Self {
            shared,
            metrics,
            signals,
            watchdog,
        }
    }

    /// Records how long loading the model took (the `edgesift_model_load_seconds` gauge).
    pub fn model_loaded(&self, took: Duration) {
        if let Some((_, source)) = &self.metrics {
            source.set_model_load_time(took);
        }
    }

    /// The model is loaded and the source open: `READY=1`, and liveness is judged from now.
    pub fn ready(&self) {
        self.shared.liveness.mark_started();
        if self.shared.control.stop_requested() {
            // Stopped while loading: systemd already has STOPPING=1.
            return;
        }
        self.shared.notifier.ready();
        self.shared.notifier.status("running");
        tracing::debug!(notify = self.shared.notifier.enabled(), "ready");
    }

    /// Where the metrics endpoint listens, when it does.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(s, _)| s.local_addr())
    }

    /// The pipeline has returned: tells systemd, stops the threads, closes the endpoint.
    /// Dropping the daemon does the same.
    pub fn finish(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.send_stopping();
        if let Some(w) = self.watchdog.take() {
            w.stop();
        }
        if let Some(s) = self.signals.take() {
            s.close();
        }
        if let Some((m, _)) = self.metrics.take() {
            m.stop();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn send_stopping(&self) {
        if !self.stopping_sent.swap(true, Ordering::SeqCst) {
            self.notifier.stopping();
        }
    }

    fn stop(&self) {
        tracing::info!("stopping: capture stops, frames in flight drain into the store");
        self.send_stopping();
        self.notifier
            .status("stopping: draining frames in flight into the store");
        self.control.stop();
    }

    /// Re-reads the file; applies it when it is valid, keeps the old one (loudly) otherwise.
    fn reload(&self) {
        let Some(path) = &self.config_path else {
            tracing::warn!("SIGHUP ignored: running on built-in defaults, no config file to re-read (start with --config)");
            return;
        };
        self.notifier.reloading();
        match Config::load(path) {
            Ok(mut new) => {
                (self.overrides)(&mut new);
                let mut current = self.config.lock().unwrap_or_else(|e| e.into_inner());
                for section in restart_only_changes(&current, &new) {
                    tracing::warn!(
                        section,
                        path = %path.display(),
                        "[{section}] changed; it takes effect at the next restart"
                    );
                }
                if let Err(e) = logging::apply(&new.log) {
                    tracing::warn!(error = %e, "log settings not reloaded");
                }
                self.control.reload(Arc::new(new.clone()));
                *current = new;
                tracing::info!(
                    path = %path.display(),
                    "configuration reloaded; selection and storage apply it between two frames"
                );
            }
            Err(e) => {
                tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "configuration reload failed; still running on the previous configuration"
                );
                self.notifier.status(&format!(
                    "reload failed, running on the previous config: {e}"
                ));
            }
        }
        self.notifier.ready();
    }
}

/// Sections of `new` that differ from `old` but only apply at start-up.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.source != new.source {
        out.push("source");
    }
    if old.model != new.model {
        out.push("model");
    }
    if old.pipeline != new.pipeline {
        out.push("pipeline");
    }
    if old.metrics != new.metrics {
        out.push("metrics");
    }
    if old.watchdog != new.watchdog {
        out.push("watchdog");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_needing_a_restart_are_named() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(restart_only_changes(&old, &new).is_empty());
        new.store.jpeg_quality = 50;
        assert!(restart_only_changes(&old, &new).is_empty());
        new.metrics.enabled = false;
        new.watchdog.stall_timeout_ms = 5_000;
        assert_eq!(restart_only_changes(&old, &new), ["metrics", "watchdog"]);
    }

    fn shared(path: Option<&Path>, control: Arc<Control>) -> Shared {
        Shared {
            notifier: Arc::new(Notifier::disabled()),
            liveness: Arc::new(Liveness::new(control.clone(), Duration::from_secs(30))),
            control,
            config_path: path.map(Path::to_owned),
            config: Mutex::new(Config::default()),
            overrides: Box::new(|c: &mut Config| c.store.dir = "/elsewhere".into()),
            stopping_sent: AtomicBool::new(false),
        }
    }

    #[test]
    fn a_broken_file_keeps_the_old_configuration_and_a_good_one_is_handed_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edgesift.toml");
        let control = Control::new();
        let s = shared(Some(&path), control.clone());

        std::fs::write(&path, "[store]\njpeg_quality = 500\n").unwrap();
        s.reload();
        assert_eq!(s.config.lock().unwrap().store.jpeg_quality, 90);

        std::fs::write(&path, "[store]\njpeg_quality = 70\n").unwrap();
        s.reload();
        let current = s.config.lock().unwrap().clone();
        assert_eq!(current.store.jpeg_quality, 70);
        // --data-dir and the environment still apply to the reloaded file.
        assert_eq!(current.store.dir, Path::new("/elsewhere"));
        assert!(!control.stop_requested());
        s.stop();
        assert!(control.stop_requested());
    }
}
