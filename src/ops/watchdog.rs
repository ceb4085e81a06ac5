//! Liveness of the pipeline, as systemd's watchdog and `/healthz` see it.
//!
//! Every pipeline stage beats ([`crate::pipeline::Stats::stalled`]) after each item and while
//! idle-waiting, so a stage whose beat is old is stuck inside its work (a hung camera read, an
//! inference or a write that never returns). The watchdog pings systemd only while every stage
//! beats: a stuck pipeline stops the pings and systemd restarts the service after `WatchdogSec=`.
//! A timer thread that pinged regardless would keep a wedged daemon alive forever.

use super::Notifier;
use crate::pipeline::{status_line, Control, Stage, StatsSnapshot};
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Whether the pipeline makes progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Before [`Liveness::mark_started`]: loading the model, opening the source.
    Starting,
    Live,
    /// This stage has not beaten for longer than the stall timeout.
    Stalled(Stage),
    /// A stop was requested; the pipeline is draining.
    Stopping,
}

/// Judges the pipeline's liveness from its heartbeats. Shared by the watchdog and `/healthz`.
#[derive(Debug)]
pub struct Liveness {
    control: Arc<Control>,
    stall: Duration,
    started: OnceLock<Instant>,
}

impl Liveness {
    pub fn new(control: Arc<Control>, stall: Duration) -> Self {
        Self {
            control,
            stall,
            started: OnceLock::new(),
        }
    }

    /// The pipeline runs from now on. For the first `stall` no stage counts as stalled, so that
    /// stages that have not beaten yet (the first camera frame, the first inference) are given
    /// the same time as any later item.
    pub fn mark_started(&self) {
        let _ = self.started.set(Instant::now());
    }

    pub fn check(&self) -> Health {
        if self.control.stop_requested() {
            return Health::Stopping;
        }
        let Some(started) = self.started.get() else {
            return Health::Starting;
        };
        if started.elapsed() < self.stall {
            return Health::Live;
        }
        match self.control.stats.stalled(self.stall) {
            None => Health::Live,
            Some(stage) => Health::Stalled(stage),
        }
    }

    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    pub fn stall_timeout(&self) -> Duration {
        self.stall
    }
}

/// Sends `WATCHDOG=1` while the pipeline is live, and `STATUS=` with a one-line summary.
#[derive(Debug)]
pub struct Watchdog {
    notifier: Arc<Notifier>,
    liveness: Arc<Liveness>,
    prev: StatsSnapshot,
    /// The stage last reported stalled, so that the error is logged once per stall.
    reported: Option<Stage>,
}

impl Watchdog {
    pub fn new(notifier: Arc<Notifier>, liveness: Arc<Liveness>) -> Self {
        let prev = liveness.control.stats.snapshot();
        Self {
            notifier,
            liveness,
            prev,
            reported: None,
        }
    }

    /// One check. Live: ping and a status line. Stalled: no ping, a status naming the stage and
    /// an error in the log (once per stall). Starting and stopping: ping only (both phases have
    /// their own bounds: `TimeoutStartSec=`, `[pipeline] drain_timeout_ms`).
    pub fn tick(&mut self) -> Health {
        let health = self.liveness.check();
        let now = self.liveness.control.stats.snapshot();
        let line = status_line(&now, &self.prev);
        self.prev = now;
        match health {
            Health::Starting | Health::Stopping => self.notifier.watchdog(),
            Health::Live => {
                if let Some(stage) = self.reported.take() {
                    tracing::info!(stage = stage.name(), "pipeline stage progressing again");
                }
                self.notifier.watchdog();
                self.notifier.status(&line);
            }
            Health::Stalled(stage) => {
                let secs = self.liveness.stall.as_secs_f64();
                if self.reported != Some(stage) {
                    tracing::error!(
                        stage = stage.name(),
                        stall_timeout_s = secs,
                        "pipeline stage stalled; withholding the systemd watchdog ping"
                    );
                    self.reported = Some(stage);
                }
                self.notifier.status(&format!(
                    "STALLED: {} stage made no progress for over {}",
                    stage.name(),
                    seconds(self.liveness.stall)
                ));
            }
        }
        health
    }

    /// Runs [`tick`](Self::tick) every `period` on a thread until the returned handle is
    /// stopped or dropped.
    pub fn spawn(mut self, period: Duration) -> WatchdogThread {
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let handle = thread::Builder::new()
            .name("edgesift-watchdog".into())
            .spawn(move || loop {
                self.tick();
                match stop_rx.recv_timeout(period) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                }
            })
            .expect("spawning the watchdog thread");
        WatchdogThread {
            stop: Some(stop_tx),
            handle: Some(handle),
        }
    }
}

/// `45 s`, `0.6 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// How often to check: twice per systemd watchdog period (as `sd_watchdog_enabled(3)` advises),
/// and at least every 5 s so that `STATUS` stays fresh.
pub fn tick_period(watchdog: Option<Duration>) -> Duration {
    let status = Duration::from_secs(5);
    watchdog
        .map(|w| (w / 2).min(status))
        .unwrap_or(status)
        .max(Duration::from_millis(50))
}

/// The running watchdog thread; stopping (or dropping) it ends the pings.
#[derive(Debug)]
pub struct WatchdogThread {
    stop: Option<Sender<()>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl WatchdogThread {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for WatchdogThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::notify::tests::FakeSystemd;

    fn beat(control: &Control, stages: &[Stage]) {
        for &s in stages {
            control.stats.liveness_beat(s);
        }
    }

    #[test]
    fn pings_while_every_stage_beats_and_withholds_when_one_stalls() {
        let fake = FakeSystemd::new();
        let control = Control::new();
        let stall = Duration::from_millis(600);
        let live = Liveness::new(control.clone(), stall);
        // Past the start-up grace, as after a long run.
        live.started.set(Instant::now() - stall * 2).unwrap();
        let mut wd = Watchdog::new(Arc::new(fake.notifier()), Arc::new(live));

        beat(&control, &Stage::ALL);
        control.stats.capture.record(Duration::from_millis(3));
        assert_eq!(wd.tick(), Health::Live);
        let sent = fake.drain();
        assert_eq!(sent[0], "WATCHDOG=1", "{sent:?}");
        assert!(sent[1].starts_with("STATUS=capture "), "{sent:?}");

        // Every stage but selection keeps beating; selection is stuck.
        let t0 = Instant::now();
        while t0.elapsed() < stall + Duration::from_millis(300) {
            beat(&control, &[Stage::Capture, Stage::Segment, Stage::Store]);
            thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(wd.tick(), Health::Stalled(Stage::Select));
        let sent = fake.drain();
        assert!(!sent.iter().any(|m| m.contains("WATCHDOG")), "{sent:?}");
        assert_eq!(
            sent,
            ["STATUS=STALLED: select stage made no progress for over 0.6 s"]
        );

        // It recovers: pings resume.
        beat(&control, &Stage::ALL);
        assert_eq!(wd.tick(), Health::Live);
        assert_eq!(fake.drain()[0], "WATCHDOG=1");
    }

    #[test]
    fn starting_grace_and_stopping() {
        let control = Control::new();
        let live = Liveness::new(control.clone(), Duration::from_secs(60));
        assert_eq!(live.check(), Health::Starting);
        live.mark_started();
        // No stage has beaten, yet the pipeline just started: live.
        assert_eq!(live.check(), Health::Live);
        control.stop();
        assert_eq!(live.check(), Health::Stopping);
    }

    #[test]
    fn pings_continue_while_starting_and_stopping() {
        let fake = FakeSystemd::new();
        let control = Control::new();
        let live = Arc::new(Liveness::new(control.clone(), Duration::from_millis(500)));
        let mut wd = Watchdog::new(Arc::new(fake.notifier()), live);
        // Loading a model may take longer than the stall timeout; systemd's own start timeout
        // bounds it.
        thread::sleep(Duration::from_millis(600));
        assert_eq!(wd.tick(), Health::Starting);
        assert_eq!(fake.drain(), ["WATCHDOG=1"]);
        control.stop();
        assert_eq!(wd.tick(), Health::Stopping);
        assert_eq!(fake.drain(), ["WATCHDOG=1"]);
    }

    #[test]
    fn the_thread_pings_until_stopped() {
        let fake = FakeSystemd::new();
        let control = Control::new();
        let live = Arc::new(Liveness::new(control.clone(), Duration::from_secs(60)));
        live.mark_started();
        let wd = Watchdog::new(Arc::new(fake.notifier()), live).spawn(Duration::from_millis(20));
        assert_eq!(fake.recv(), "WATCHDOG=1");
        assert!(fake.recv().starts_with("STATUS="));
        assert_eq!(fake.recv(), "WATCHDOG=1");
        wd.stop();
        fake.drain();
        thread::sleep(Duration::from_millis(60));
        assert!(fake.drain().is_empty());
    }

    #[test]
    fn checks_twice_per_watchdog_period() {
        assert_eq!(
            tick_period(Some(Duration::from_secs(4))),
            Duration::from_secs(2)
        );
        assert_eq!(
            tick_period(Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        assert_eq!(tick_period(None), Duration::from_secs(5));
    }
}
