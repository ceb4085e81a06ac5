//! What runs around the pipeline: systemd integration, signals, metrics and logs.
//!
//! - [`Notifier`] speaks sd_notify (`READY=1`, `WATCHDOG=1`, `STATUS=`, `STOPPING=1`) over
//!   `$NOTIFY_SOCKET`, and does nothing without it.
//! - [`Liveness`] judges from the pipeline's own per-stage heartbeats whether it makes progress;
//!   [`Watchdog`] pings systemd only while it does, so a stuck pipeline gets restarted.
//! - [`SignalThread`]: SIGTERM/SIGINT stop (twice: exit now), SIGHUP reloads.
//! - [`MetricsServer`]: Prometheus `/metrics` and `/healthz` on a small blocking HTTP thread,
//!   read from the pipeline's statistics at scrape time.
//! - [`logging`]: human, journald or JSON lines via `tracing`.
//! - [`ResidentMemory`]: the process's resident memory; [`tune_allocator`]: glibc malloc settings.
//! - [`Daemon`] starts and stops all of the above for `edgesift run`.
//!
//! Architecture invariant: the pipeline does not know this module; ops only reads
//! [`crate::pipeline::Control`] (stop, reload, statistics) and never touches a stage.

mod config;
mod daemon;
pub mod logging;
mod memory;
mod metrics;
mod notify;
mod signals;
mod watchdog;

pub use config::{LogConfig, LogFormat, MetricsConfig, WatchdogConfig};
pub use daemon::Daemon;
pub use memory::{tune_allocator, ResidentMemory};
pub use metrics::{MetricsServer, MetricsSource};
pub use notify::{watchdog_interval, Notifier};
pub use signals::{Request, SignalThread};
pub use watchdog::{tick_period, Health, Liveness, Watchdog, WatchdogThread};
