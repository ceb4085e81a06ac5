//! Counters, recent latencies and heartbeats of the running pipeline: what the terminal status
//! line, the exit summary, the metrics endpoint and the systemd watchdog read.

use super::{SinkReport, Stage};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How many recent latencies each stage keeps for its percentiles.
const LATENCY_WINDOW: usize = 512;

/// Upper bounds, in seconds, of the latency histogram's buckets (what the metrics endpoint
/// exports); a last bucket holds everything slower.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// One stage's counts and recent latencies.
#[derive(Debug, Default)]
pub struct StageCounters {
    done: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    recent: Mutex<Recent>,
    /// Every latency ever recorded, by bucket of [`LATENCY_BUCKETS`] (plus one for the rest).
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
}

/// All latencies recorded by a stage, bucketed (not cumulative); see [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    /// `counts[i]`: latencies in `(LATENCY_BUCKETS[i-1], LATENCY_BUCKETS[i]]`; the last entry
    /// holds those above the last bound.
    pub counts: Vec<u64>,
    pub sum: Duration,
}

#[derive(Debug, Default)]
struct Recent {
    values: Vec<f32>,
    next: usize,
}

impl StageCounters {
    /// One item done, taking `took`.
    pub fn record(&self, took: Duration) {
        self.done.fetch_add(1, Ordering::Relaxed);
        let mut r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let v = took.as_secs_f32();
        let bucket = LATENCY_BUCKETS.partition_point(|&b| b < took.as_secs_f64());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        if r.values.len() < LATENCY_WINDOW {
            r.values.push(v);
        } else {
            let i = r.next;
            r.values[i] = v;
        }
        r.next = (r.next + 1) % LATENCY_WINDOW;
    }

    pub fn increment(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn drops(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Every latency recorded so far, bucketed.
    pub fn histogram(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            sum: Duration::from_nanos(self.latency_sum_ns.load(Ordering::Relaxed)),
        }
    }

    /// Percentiles of the recent latencies.
    pub fn latency(&self) -> LatencySummary {
        let r = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut v = r.values.clone();
        drop(r);
        if v.is_empty() {
            return LatencySummary::default();
        }
        v.sort_by(f32::total_cmp);
        let pick = |q: f32| v[((v.len() - 1) as f32 * q).round() as usize];
        LatencySummary {
            p50: Duration::from_secs_f32(pick(0.5)),
            p95: Duration::from_secs_f32(pick(0.95)),
            max: Duration::from_secs_f32(*v.last().expect("non-empty")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    pub p50: Duration,
    pub p95: Duration,
    pub max: Duration,
}

/// Everything the pipeline counts.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    pub capture: StageCounters,
    pub segment: StageCounters,
    pub select: StageCounters,
    pub store: StageCounters,
    /// Frames selection decided not to keep.
    pub skipped: StageCounters,
    /// From capture to the keep decision, for kept frames.
    pub decision_lag: StageCounters,
    kept: AtomicU64,
    kept_by_reason: Mutex<BTreeMap<String, u64>>,
    evicted: AtomicU64,
    stored_bytes: AtomicU64,
    /// Last heartbeat of each stage, in milliseconds since `started`.
    beats: [AtomicU64; 4],
    /// Frame images alive in the pipeline (in hand, queued, held by selection, idle in the
    /// pool), and the most there ever were: at 1280x720 RGB each is 2.7 MB, the largest part of
    /// the daemon's resident memory.
    frame_buffers: AtomicU64,
    frame_buffers_peak: AtomicU64,
    /// When the first frame came out of the model, since `started`.
    first_segmented: OnceLock<Duration>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            capture: Default::default(),
            segment: Default::default(),
            select: Default::default(),
            store: Default::default(),
            skipped: Default::default(),
            decision_lag: Default::default(),
            kept: AtomicU64::new(0),
            kept_by_reason: Mutex::new(BTreeMap::new()),
            evicted: AtomicU64::new(0),
            stored_bytes: AtomicU64::new(0),
            beats: Default::default(),
            frame_buffers: AtomicU64::new(0),
            frame_buffers_peak: AtomicU64::new(0),
            first_segmented: OnceLock::new(),
        }
    }
}

impl Stats {
    pub fn stage(&self, s: Stage) -> &StageCounters {
        match s {
            Stage::Capture => &self.capture,
            Stage::Segment => &self.segment,
            Stage::Select => &self.select,
            Stage::Store => &self.store,
        }
    }

    pub(crate) fn liveness_beat(&self, s: Stage) {
        self.beat_at(s, self.started.elapsed());
    }

    fn beat_at(&self, s: Stage, since_start: Duration) {
        self.beats[s as usize].store(since_start.as_millis() as u64, Ordering::Relaxed);
    }

    /// The first stage whose last heartbeat is older than `max_stall`, if any.
    pub fn stalled(&self, max_stall: Duration) -> Option<Stage> {
        self.stalled_at(self.started.elapsed(), max_stall)
    }

    fn stalled_at(&self, since_start: Duration, max_stall: Duration) -> Option<Stage> {
        let now = since_start.as_millis() as u64;
        Stage::ALL.into_iter().find(|&s| {
            let last = self.beats[s as usize].load(Ordering::Relaxed);
            now.saturating_sub(last) > max_stall.as_millis() as u64
        })
    }

    pub(crate) fn note_kept(&self, reasons: &[String]) {
        self.kept.fetch_add(1, Ordering::Relaxed);
        let mut m = self
            .kept_by_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for r in reasons {
            *m.entry(r.clone()).or_default() += 1;
        }
    }

    /// A new frame image was allocated (the pool had none to spare).
    pub(crate) fn buffer_allocated(&self) {
        let now = self.frame_buffers.fetch_add(1, Ordering::Relaxed) + 1;
        self.frame_buffers_peak.fetch_max(now, Ordering::Relaxed);
    }

    /// A frame image was freed (the pool was full).
    pub(crate) fn buffer_freed(&self) {
        // Saturating: a buffer that came from outside the pipeline is not counted.
        let _ = self
            .frame_buffers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    /// Records the first segmented frame; returns the time since the run started when this call
    /// was the first.
    pub(crate) fn note_first_segmented(&self) -> Option<Duration> {
        let now = self.started.elapsed();
        let mut first = false;
        self.first_segmented.get_or_init(|| {
            first = true;
            now
        });
        first.then_some(now)
    }

    pub(crate) fn note_stored(&self, report: SinkReport) {
        self.evicted.fetch_add(report.evicted, Ordering::Relaxed);
        self.stored_bytes
            .store(report.stored_bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            elapsed: self.started.elapsed(),
            captured: self.capture.done(),
            dropped: self.capture.drops(),
            capture_errors: self.capture.errors(),
            segmented: self.segment.done(),
            segment_errors: self.segment.errors(),
            selected_kept: self.kept.load(Ordering::Relaxed),
            skipped: self.skipped.done(),
            stored: self.store.done(),
            store_errors: self.store.errors(),
            evicted: self.evicted.load(Ordering::Relaxed),
            stored_bytes: self.stored_bytes.load(Ordering::Relaxed),
            kept_by_reason: self
                .kept_by_reason
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            segment_latency: self.segment.latency(),
            store_latency: self.store.latency(),
            frame_buffers: self.frame_buffers.load(Ordering::Relaxed),
            frame_buffers_peak: self.frame_buffers_peak.load(Ordering::Relaxed),
            first_segmented: self.first_segmented.get().copied(),
        }
    }
}

/// A consistent-enough copy of the counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    pub elapsed: Duration,
    pub captured: u64,
    pub dropped: u64,
    pub capture_errors: u64,
    pub segmented: u64,
    pub segment_errors: u64,
    pub selected_kept: u64,
    pub skipped: u64,
    pub stored: u64,
    pub store_errors: u64,
    pub evicted: u64,
    pub stored_bytes: u64,
    pub kept_by_reason: BTreeMap<String, u64>,
    pub segment_latency: LatencySummary,
    pub store_latency: LatencySummary,
    /// Frame images alive now, and the most at any time.
    pub frame_buffers: u64,
    pub frame_buffers_peak: u64,
    /// From the start of the run (before the model loads) to the first segmented frame.
    pub first_segmented: Option<Duration>,
}

impl StatsSnapshot {
    /// Frames per second of capture and segmentation since `earlier`.
    pub fn rates_since(&self, earlier: &StatsSnapshot) -> (f64, f64) {
        let dt = (self.elapsed.saturating_sub(earlier.elapsed)).as_secs_f64();
        if dt <= 0.0 {
            return (0.0, 0.0);
        }
        (
            (self.captured - earlier.captured) as f64 / dt,
            (self.segmented - earlier.segmented) as f64 / dt,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_over_a_window() {
        let c = StageCounters::default();
        for ms in 1..=100 {
            c.record(Duration::from_millis(ms));
        }
        let l = c.latency();
        let ms = |d: Duration| (d.as_secs_f64() * 1e3).round() as u64;
        assert_eq!((ms(l.p50), ms(l.p95), ms(l.max)), (51, 95, 100));
        // The window forgets: 600 fast values push out the slow ones.
        for _ in 0..600 {
            c.record(Duration::from_millis(2));
        }
        assert_eq!(ms(c.latency().max), 2);
        assert_eq!(c.done(), 700);
        // The histogram does not forget.
        let h = c.histogram();
        assert_eq!(h.counts.iter().sum::<u64>(), 700);
        assert_eq!(h.counts[0], 1); // 1 ms: le 0.001
        assert_eq!(h.counts[1], 601); // 2 ms
        assert_eq!(h.counts[6], 50); // 51..=100 ms: le 0.1
        assert_eq!(h.sum, Duration::from_millis(5050 + 1200));
    }

    #[test]
    fn a_stage_without_heartbeat_is_stalled() {
        let s = Stats::default();
        let at = Duration::from_millis;
        for st in Stage::ALL {
            s.beat_at(st, at(1000));
        }
        assert_eq!(s.stalled_at(at(5000), Duration::from_secs(5)), None);
        for st in [Stage::Capture, Stage::Segment, Stage::Store] {
            s.beat_at(st, at(9000));
        }
        assert_eq!(
            s.stalled_at(at(9500), Duration::from_secs(5)),
            Some(Stage::Select)
        );
        s.beat_at(Stage::Select, at(9400));
        assert_eq!(s.stalled_at(at(9500), Duration::from_secs(5)), None);
    }

    #[test]
    fn kept_reasons_are_counted() {
        let s = Stats::default();
        s.note_kept(&["rare_class".into(), "occlusion".into()]);
        s.note_kept(&["rare_class".into()]);
        let snap = s.snapshot();
        assert_eq!(snap.selected_kept, 2);
        assert_eq!(snap.kept_by_reason["rare_class"], 2);
        assert_eq!(snap.kept_by_reason["occlusion"], 1);
    }
}
