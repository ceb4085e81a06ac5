//! SIGTERM / SIGINT / SIGHUP, handled on a thread of their own (`signal-hook` turns the
//! async-signal context into ordinary reads, so handlers may log, lock and allocate).
//!
//! - The first SIGTERM or SIGINT asks for an orderly stop: capture stops, frames in flight drain,
//!   the samples being written are completed and indexed.
//! - A second one exits at once (status 128 + signal number), as an impatient operator pressing
//!   Ctrl-C twice expects; the store's recovery at the next start cleans up after it.
//! - SIGHUP asks for a configuration reload.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use std::io;
use std::thread;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Stop capturing, drain, exit 0.
    Stop,
    /// Re-read the configuration file.
    Reload,
}

/// What to do about one signal, given the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Handle(Request),
    /// Exit now with this status.
    ExitNow(i32),
}

#[derive(Debug, Default)]
struct Dispatcher {
    stops: u32,
}

impl Dispatcher {
    fn dispatch(&mut self, signal: i32) -> Action {
        match signal {
            SIGHUP => Action::Handle(Request::Reload),
            _ => {
                self.stops += 1;
                if self.stops == 1 {
                    Action::Handle(Request::Stop)
                } else {
                    Action::ExitNow(128 + signal)
                }
            }
        }
    }
}

fn name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "signal",
    }
}

/// The signal thread; closing (or dropping) it stops listening. The handlers stay installed
/// (doing nothing) until the process exits.
#[derive(Debug)]
pub struct SignalThread {
    handle: Handle,
    thread: Option<thread::JoinHandle<()>>,
}

impl SignalThread {
    /// Installs the handlers and calls `on_request` on a dedicated thread for every request.
    pub fn spawn(mut on_request: impl FnMut(Request) + Send + 'static) -> io::Result<Self> {
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let handle = signals.handle();
        let thread = thread::Builder::new()
            .name("edgesift-signals".into())
            .spawn(move || {
                let mut d = Dispatcher::default();
                for sig in signals.forever() {
                    match d.dispatch(sig) {
                        Action::Handle(req) => {
                            tracing::info!(signal = name(sig), ?req, "signal received");
                            on_request(req);
                        }
                        Action::ExitNow(code) => {
                            tracing::warn!(
                                signal = name(sig),
                                "second stop signal: exiting without finishing the drain"
                            );
                            std::process::exit(code);
                        }
                    }
                }
            })?;
        Ok(Self {
            handle,
            thread: Some(thread),
        })
    }

    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SignalThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_stop_drains_second_exits_hangups_reload() {
        let mut d = Dispatcher::default();
        assert_eq!(d.dispatch(SIGHUP), Action::Handle(Request::Reload));
        assert_eq!(d.dispatch(SIGTERM), Action::Handle(Request::Stop));
        assert_eq!(d.dispatch(SIGHUP), Action::Handle(Request::Reload));
        assert_eq!(d.dispatch(SIGINT), Action::ExitNow(130));
        let mut d = Dispatcher::default();
        assert_eq!(d.dispatch(SIGINT), Action::Handle(Request::Stop));
        assert_eq!(d.dispatch(SIGTERM), Action::ExitNow(143));
    }

    #[test]
    fn real_signals_arrive_as_requests() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let t = SignalThread::spawn(move |r| {
            let _ = tx.send(r);
        })
        .unwrap();
        // SAFETY: raise(3) sends a signal to this process; handlers for both are installed above.
        unsafe { libc::raise(libc::SIGHUP) };
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Ok(Request::Reload)
        );
        unsafe { libc::raise(libc::SIGTERM) };
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(Request::Stop));
        t.close();
    }
}
