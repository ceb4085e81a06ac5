//! `edgesift run`: the daemon.

use anyhow::Result;
use clap::Args;
use edgesift::config::{self, Config};
use edgesift::ops::{Daemon, ResidentMemory};
use edgesift::pipeline::{self, Control, RunLimits, StatsSnapshot};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct RunArgs {
    /// Config file. Default: $EDGESIFT_CONFIG, else config/edgesift.toml, else
    /// /etc/edgesift/edgesift.toml.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides store.dir and $EDGESIFT_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Stop after capturing this many frames (tests, demos, benchmarks).
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_parser = positive_seconds)]
    pub duration: Option<f64>,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

/// Exit code of a config that cannot be used (the same as a usage error).
const EXIT_CONFIG: u8 = 2;

pub fn run(a: RunArgs) -> Result<ExitCode> {
    let (path, mut cfg) = match load_config(a.config.as_deref()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("edgesift: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    // The command line and the environment win over the file, also when it is reloaded.
    let data_dir = a.data_dir;
    let overrides = move |c: &mut Config| {
        c.apply_env();
        if let Some(dir) = &data_dir {
            c.store.dir = dir.clone();
        }
    };
    overrides(&mut cfg);
    edgesift::pool::start();
    // Signals, sd_notify, watchdog and metrics, before the (possibly long) model load; dropped
    // (STOPPING=1, threads ended) on every way out.
    let control = Control::new();
    let daemon = Daemon::start(&cfg, Some(&path), overrides, control.clone());
    tracing::info!(config = %path.display(), data = %cfg.store.dir.display(), "starting");
    let config_dir = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    });
    let assembled = match pipeline::assemble(&cfg, config_dir) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("edgesift: cannot start: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let limits = RunLimits {
        max_frames: a.max_frames,
        duration: a.duration.map(Duration::from_secs_f64),
    };
    daemon.model_loaded(assembled.model_load);
    let queues = cfg.pipeline.queues();
    let source = assembled.source.clone();
    let model = assembled.model.name.clone();
    let pipeline = {
        let control = control.clone();
        let stages = assembled.stages;
        thread::Builder::new()
            .name("edgesift-pipeline".into())
            .spawn(move || pipeline::run(stages, limits, queues, control))?
    };
    tracing::info!(
        source = %source,
        model = %model,
        store = %assembled.store_dir.display(),
        stored = assembled.stored_samples,
        "running"
    );
    daemon.ready();

    let mut monitor = Monitor::new(&cfg, control.clone());
    while !pipeline.is_finished() {
        thread::sleep(Duration::from_millis(50));
        monitor.tick();
        if let Some(waited) = monitor.drain_overdue(&cfg) {
            monitor.clear();
            tracing::error!(
                waited_ms = waited.as_millis() as u64,
                "frames in flight did not drain in time; exiting without them"
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    monitor.clear();
    daemon.finish();
    let result = pipeline
        .join()
        .unwrap_or_else(|_| Err(pipeline::PipelineError::Panicked("pipeline".into())));
    let snap = control.stats.snapshot();
    println!("{}", pipeline::summary(&snap, &source, &model));
    if let Some(mem) = ResidentMemory::current() {
        println!(
            "  memory   peak resident {} (VmHWM), {} at exit",
            pipeline::human_bytes(mem.peak),
            pipeline::human_bytes(mem.now)
        );
    }
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!("stopped: {e}");
            eprintln!("edgesift: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn load_config(explicit: Option<&Path>) -> Result<(PathBuf, Config), config::ConfigFileError> {
    let path = config::locate(explicit)?;
    let cfg = Config::load(&path)?;
    Ok((path, cfg))
}

/// The live status: redrawn in place on a terminal, logged now and then otherwise.
struct Monitor {
    control: Arc<Control>,
    terminal: bool,
    every: Duration,
    last: Instant,
    prev: StatsSnapshot,
    drawn: bool,
    stop_seen: Option<Instant>,
}

impl Monitor {
    fn new(cfg: &Config, control: Arc<Control>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let base = Duration::from_millis(cfg.pipeline.status_interval_ms);
        let prev = control.stats.snapshot();
        Self {
            control,
            terminal,
            // A journal wants a line a minute, not one a second.
            every: if terminal { base } else { base * 60 },
            last: Instant::now(),
            prev,
            drawn: false,
            stop_seen: None,
        }
    }

    fn tick(&mut self) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        let now = self.control.stats.snapshot();
        let line = pipeline::status_line(&now, &self.prev);
        self.prev = now;
        if self.terminal {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
            self.drawn = true;
        } else {
            tracing::info!("{line}");
        }
    }

    /// Erases the status line so that what follows starts on a clean line.
    fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.drawn = false;
        }
    }

    /// After a stop request, `Some(time waited)` once draining has taken longer than allowed.
    fn drain_overdue(&mut self, cfg: &Config) -> Option<Duration> {
        if !self.control.stop_requested() {
            return None;
        }
        let since = *self.stop_seen.get_or_insert_with(Instant::now);
        let waited = since.elapsed();
        (waited > Duration::from_millis(cfg.pipeline.drain_timeout_ms)).then_some(waited)
    }
}
