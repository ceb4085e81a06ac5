//! The budget: sliding-window limits on kept frames, the share of them a frame's value entitles
//! it to, and the per-reason cooldown (which lets a clearly better view of the same thing
//! through).
//!
//! Limits count kept frames in any 60 s and any 3600 s of capture time. Frames of one look-back
//! window are decided best-value first, so they are not decided in time order; a frame at `t` is
//! therefore checked against every kept frame later than `t − 60 s` (including ones later than
//! `t`), which keeps the limit true of every 60 s window whatever the order.

use super::config::BudgetConfig;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Whether a reason is held back by its cooldown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cooling {
    No,
    Yes,
    /// Cooling, but let through: its score is `better_view` times the `kept` one or more.
    BetterView {
        kept: f32,
    },
}

/// Why the budget refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Minute,
    Hour,
}

impl Refusal {
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Minute => "budget_minute",
            Refusal::Hour => "budget_hour",
        }
    }
}

pub(crate) struct Budget {
    cfg: BudgetConfig,
    /// Capture times of kept frames within the last hour, sorted.
    kept: VecDeque<Duration>,
    /// Each cooldown key's last keep, and the best score it was kept with in that cooldown.
    cooldown: HashMap<String, (Duration, f32)>,
}

impl Budget {
    pub fn new(cfg: &BudgetConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            kept: VecDeque::new(),
            cooldown: HashMap::new(),
        }
    }

    /// New limits; what was kept still counts against them.
    pub fn reconfigure(&mut self, cfg: &BudgetConfig) {
        self.cfg = cfg.clone();
    }

    /// The share of each limit a frame of this value may use.
    pub fn share(&self, value: f32) -> f64 {
        (value as f64 / self.cfg.full_value as f64).clamp(0.0, 1.0)
    }

    /// Whether a reason with cooldown key `key` and score `score`, at `t`, is cooling down: the
    /// key was kept less than `cooldown_ms` from `t` (either side: a window is not decided in
    /// time order), unless `score` is at least `better_view` times the best score it was kept
    /// with then (a clearly better view of the same object is not a duplicate).
    pub fn cooling(&self, key: &str, t: Duration, score: f32) -> Cooling {
        let period = Duration::from_millis(self.cfg.cooldown_ms);
        match self.cooldown.get(key) {
            Some(&(last, kept)) if t.abs_diff(last) < period => {
                let better = self.cfg.better_view;
                if better > 0.0 && score >= kept * better {
                    Cooling::BetterView { kept }
                } else {
                    Cooling::Yes
                }
            }
            _ => Cooling::No,
        }
    }

    /// Whether one more frame of `value` at `t` fits the limits.
    pub fn admit(&self, t: Duration, value: f32) -> Result<(), Refusal> {
        let share = self.share(value);
        let check = |max: u32, span: Duration, refusal: Refusal| {
            if max == 0 {
                return Ok(());
            }
            // (The epsilon keeps 10 × 0.7f32 at 7, not 6.99999.)
            let limit = ((max as f64 * share + 1e-6).floor() as usize).max(1);
            if self.kept_near(t, span) >= limit {
                Err(refusal)
            } else {
                Ok(())
            }
        };
        check(self.cfg.max_per_minute, MINUTE, Refusal::Minute)?;
        check(self.cfg.max_per_hour, HOUR, Refusal::Hour)
    }

    /// Counts a kept frame and starts the cooldown of its keys, each with the score its reason
    /// had in this frame.
    pub fn record<'a>(&mut self, t: Duration, keys: impl Iterator<Item = (&'a str, f32)>) {
        let at = self.kept.partition_point(|&k| k <= t);
        self.kept.insert(at, t);
        let period = Duration::from_millis(self.cfg.cooldown_ms);
        for (k, score) in keys {
            let e = self.cooldown.entry(k.to_string()).or_insert((t, score));
            if t.abs_diff(e.0) >= period {
                // A new cooldown: what was kept before it no longer counts.
                *e = (t, score);
            } else {
                e.0 = e.0.max(t);
                e.1 = e.1.max(score);
            }
        }
    }

    /// Forgets what can no longer matter at `now` (frames are never decided later than the
    /// look-back window after their capture).
    pub fn prune(&mut self, now: Duration, window: Duration) {
        let horizon = now.saturating_sub(HOUR + window);
        while self.kept.front().is_some_and(|&k| k < horizon) {
            self.kept.pop_front();
        }
        let cool = now.saturating_sub(Duration::from_millis(self.cfg.cooldown_ms) + window);
        self.cooldown.retain(|_, &mut (last, _)| last >= cool);
    }

    /// Kept frames less than `span` from `t`, either side: those a window of length `span`
    /// holding `t` may also hold.
    pub fn kept_near(&self, t: Duration, span: Duration) -> usize {
        let lo = match t.checked_sub(span) {
            Some(lo) => self.kept.partition_point(|&k| k <= lo),
            None => 0,
        };
        let hi = self.kept.partition_point(|&k| k < t + span);
        hi.saturating_sub(lo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn per_minute_limit_slides_and_low_values_get_a_smaller_share() {
        let mut b = Budget::new(&BudgetConfig {
            max_per_minute: 10,
            max_per_hour: 0,
            full_value: 1.0,
            ..Default::default()
        });
        // Frames of value 0.7 get 7 of 10 ...
        for i in 0..7 {
            assert_eq!(b.admit(s(i as f64), 0.7), Ok(()));
            b.record(s(i as f64), std::iter::empty::<(&str, f32)>());
        }
        assert_eq!(b.admit(s(7.0), 0.7), Err(Refusal::Minute));
        assert_eq!(b.admit(s(7.0), 0.3), Err(Refusal::Minute));
        // ... frames of full value the rest.
        for i in 7..10 {
            assert_eq!(b.admit(s(i as f64), 1.5), Ok(()));
            b.record(s(i as f64), std::iter::empty::<(&str, f32)>());
        }
        assert_eq!(b.admit(s(10.0), 1.5), Err(Refusal::Minute));
        // 60 s after the first keep, one slot is free again.
        assert_eq!(b.admit(s(59.9), 1.0), Err(Refusal::Minute));
        assert_eq!(b.admit(s(60.0), 1.0), Ok(()));
        // Whatever its value, a frame may be kept when nothing else is.
        let empty = Budget::new(&BudgetConfig::default());
        assert_eq!(empty.admit(s(0.0), 0.0), Ok(()));
    }

    #[test]
    fn out_of_order_keeps_still_respect_every_window() {
        let mut b = Budget::new(&BudgetConfig {
            max_per_minute: 2,
            max_per_hour: 0,
            ..Default::default()
        });
        b.record(s(100.0), std::iter::empty::<(&str, f32)>());
        b.record(s(100.5), std::iter::empty::<(&str, f32)>());
        // An earlier frame of the same window would make three within 60 s ...
        assert!(b.admit(s(99.0), 1.0).is_err());
        assert!(b.admit(s(41.0), 1.0).is_err());
        // ... but [40.1 s, 100.1 s) holds only 40.1 and 100.
        assert!(b.admit(s(40.1), 1.0).is_ok());
        assert!(b.admit(s(40.0), 1.0).is_ok());
    }

    #[test]
    fn hourly_limit() {
        let mut b = Budget::new(&BudgetConfig {
            max_per_minute: 0,
            max_per_hour: 3,
            ..Default::default()
        });
        for t in [0.0, 1000.0, 2000.0] {
            b.record(s(t), std::iter::empty::<(&str, f32)>());
        }
        assert_eq!(b.admit(s(3000.0), 1.0), Err(Refusal::Hour));
        assert_eq!(b.admit(s(3600.0), 1.0), Ok(()));
        b.prune(s(7200.0), s(2.0));
        assert_eq!(b.kept.len(), 0);
    }

    #[test]
    fn cooldown_is_per_key_and_symmetric_in_time() {
        let mut b = Budget::new(&BudgetConfig {
            cooldown_ms: 5_000,
            better_view: 0.0,
            ..Default::default()
        });
        b.record(s(10.0), [("rare_class:animal", 1.0)].into_iter());
        assert_eq!(b.cooling("rare_class:animal", s(14.9), 1.0), Cooling::Yes);
        assert_eq!(
            b.cooling("rare_class:animal", s(9.0), 1.0),
            Cooling::Yes,
            "earlier frame of the window"
        );
        assert_eq!(b.cooling("rare_class:animal", s(15.0), 1.0), Cooling::No);
        assert_eq!(b.cooling("occlusion:pedestrian", s(11.0), 1.0), Cooling::No);
        // With better_view off, no score gets through.
        assert_eq!(b.cooling("rare_class:animal", s(11.0), 50.0), Cooling::Yes);
        b.prune(s(100.0), s(2.0));
        assert!(b.cooldown.is_empty());
    }

    #[test]
    fn a_clearly_better_view_gets_through_the_cooldown_and_raises_the_bar() {
        let mut b = Budget::new(&BudgetConfig {
            cooldown_ms: 5_000,
            better_view: 1.5,
            ..Default::default()
        });
        b.record(s(10.0), [("occlusion#7", 0.6)].into_iter());
        assert_eq!(b.cooling("occlusion#7", s(11.0), 0.8), Cooling::Yes);
        assert_eq!(
            b.cooling("occlusion#7", s(11.0), 0.95),
            Cooling::BetterView { kept: 0.6 }
        );
        // Kept at 0.95: the next one must reach 1.425.
        b.record(s(11.0), [("occlusion#7", 0.95)].into_iter());
        assert_eq!(b.cooling("occlusion#7", s(12.0), 1.0), Cooling::Yes);
        assert_eq!(
            b.cooling("occlusion#7", s(15.5), 1.0),
            Cooling::Yes,
            "5 s from the last keep"
        );
        // A worse view kept later (for another reason) extends the cooldown but not the bar down.
        b.record(s(14.0), [("occlusion#7", 0.3)].into_iter());
        assert_eq!(b.cooling("occlusion#7", s(18.0), 1.0), Cooling::Yes);
        // Once the cooldown has passed, a keep starts afresh at its own score.
        b.record(s(30.0), [("occlusion#7", 0.4)].into_iter());
        assert_eq!(
            b.cooling("occlusion#7", s(31.0), 0.6),
            Cooling::BetterView { kept: 0.4 }
        );
    }
}
