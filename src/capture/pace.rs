//! Time as the sources see it: a [`Clock`] to read and sleep on, and a [`Pacer`] that spaces
//! frames at a fixed rate.
//!
//! Sources take the clock as an `Arc<dyn Clock>` so that tests drive them with a
//! [`ManualClock`] and assert the schedule instead of measuring it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A monotonic clock that can also wait.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn sleep(&self, duration: Duration);
}

/// The real clock: `Instant::now` and `thread::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The system clock, shared.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that only moves when slept on (or [`advance`](ManualClock::advance)d); it records
/// every sleep, so a test can assert the exact schedule a source kept.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    state: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    elapsed: Duration,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            state: Mutex::new(ManualState::default()),
        })
    }

    /// Time since the clock was made.
    pub fn elapsed(&self) -> Duration {
        self.lock().elapsed
    }

    /// Moves time forward without recording a sleep (work that took time).
    pub fn advance(&self, d: Duration) {
        self.lock().elapsed += d;
    }

    /// Every sleep so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A test that panicked while holding the lock has failed already; its state is
        // still meaningful for the report.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.lock().elapsed
    }

    fn sleep(&self, duration: Duration) {
        let mut s = self.lock();
        s.elapsed += duration;
        s.sleeps.push(duration);
    }
}

/// Spaces frames `1/fps` apart on a fixed schedule (no drift from the time each frame takes).
///
/// The first frame is due at once. A consumer that falls more than one interval behind does
/// not get a burst of catch-up frames: the schedule restarts from now, as a camera would.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Option<Duration>,
    next_due: Option<Instant>,
}

impl Pacer {
    /// `fps` of 0 (or anything not positive and finite) means unpaced: every wait returns at once.
    pub fn new(fps: f64) -> Self {
        let interval = (fps.is_finite() && fps > 0.0).then(|| Duration::from_secs_f64(1.0 / fps));
        Self {
            interval,
            next_due: None,
        }
    }

    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Waits until the next frame is due.
    pub fn wait(&mut self, clock: &dyn Clock) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = clock.now();
        let due = match self.next_due {
            None => now,
            Some(due) if now > due + interval => now,
            Some(due) => due,
        };
        if due > now {
            clock.sleep(due - now);
        }
        self.next_due = Some(due + interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_schedule_without_drift_or_bursts() {
        let clock = ManualClock::new();
        let mut p = Pacer::new(4.0);
        let ms = Duration::from_millis;
        // Frame 0 at once, then every 250 ms even though each frame takes 100 ms of work.
        for _ in 0..4 {
            p.wait(&*clock);
            clock.advance(ms(100));
        }
        assert_eq!(clock.sleeps(), [ms(150), ms(150), ms(150)]);
        assert_eq!(clock.elapsed(), ms(850));
        // The consumer stalls for 2 s: the next frame comes at once, then the schedule resumes
        // 250 ms later instead of firing the missed frames back to back.
        clock.advance(ms(2000));
        p.wait(&*clock);
        p.wait(&*clock);
        assert_eq!(clock.sleeps().last(), Some(&ms(250)));
        assert_eq!(clock.sleeps().len(), 4);
    }

    #[test]
    fn zero_fps_never_sleeps() {
        let clock = ManualClock::new();
        let mut p = Pacer::new(0.0);
        for _ in 0..10 {
            p.wait(&*clock);
        }
        assert!(clock.sleeps().is_empty());
        assert_eq!(Pacer::new(f64::NAN).interval(), None);
        assert_eq!(
            Pacer::new(10.0).interval(),
            Some(Duration::from_millis(100))
        );
    }
}
