//! Human summaries of a run: the one-line live status and the report at exit.

use super::StatsSnapshot;
use std::fmt::Write;
use std::time::Duration;

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// `1.5 MiB`, `12 KiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn reasons(s: &StatsSnapshot) -> String {
    s.kept_by_reason
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line, rates since `prev`: what a person watching the terminal wants to see.
pub fn status_line(now: &StatsSnapshot, prev: &StatsSnapshot) -> String {
    let (cap_fps, seg_fps) = now.rates_since(prev);
    let mut line = format!(
        "capture {cap_fps:.1} fps | model {seg_fps:.1} fps p50 {} p95 {} | dropped {} | kept {}",
        ms(now.segment_latency.p50),
        ms(now.segment_latency.p95),
        now.dropped,
        now.selected_kept,
    );
    if !now.kept_by_reason.is_empty() {
        let _ = write!(line, " ({})", reasons(now));
    }
    let _ = write!(line, " | stored {}", human_bytes(now.stored_bytes));
    let errors = now.capture_errors + now.segment_errors + now.store_errors;
    if errors > 0 {
        let _ = write!(line, " | errors {errors}");
    }
    line
}

/// The report printed when a run ends.
pub fn summary(s: &StatsSnapshot, source: &str, model: &str) -> String {
    let secs = s.elapsed.as_secs_f64();
    let pct = if s.segmented > 0 {
        100.0 * s.selected_kept as f64 / s.segmented as f64
    } else {
        0.0
    };
    let mut out = String::new();
    let _ = writeln!(out, "edgesift: ran {secs:.1} s on {source} with {model}");
    let _ = writeln!(
        out,
        "  frames   captured {} ({:.1} fps), segmented {} ({:.1} fps), dropped {} waiting for the model",
        s.captured,
        s.captured as f64 / secs.max(1e-9),
        s.segmented,
        s.segmented as f64 / secs.max(1e-9),
        s.dropped
    );
    let _ = writeln!(
        out,
        "  errors   capture {}, model {}, store {}",
        s.capture_errors, s.segment_errors, s.store_errors
    );
    let _ = write!(
        out,
        "  kept     {} ({pct:.1}% of segmented frames)",
        s.selected_kept
    );
    if !s.kept_by_reason.is_empty() {
        let _ = write!(out, ": {}", reasons(s));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  latency  model p50 {} p95 {}; store p50 {} p95 {}",
        ms(s.segment_latency.p50),
        ms(s.segment_latency.p95),
        ms(s.store_latency.p50),
        ms(s.store_latency.p95)
    );
    let _ = write!(
        out,
        "  storage  {} samples written, {} in the store, {} evicted",
        s.stored,
        human_bytes(s.stored_bytes),
        s.evicted
    );
    if let Some(first) = s.first_segmented {
        let _ = write!(
            out,
            "\n  start-up first frame segmented {} after start (model load included)",
            ms(first)
        );
    }
    let _ = write!(
        out,
        "\n  buffers  at most {} frame images alive at once",
        s.frame_buffers_peak
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn status_line_shows_rates_reasons_and_errors() {
        let prev = StatsSnapshot {
            elapsed: Duration::from_secs(10),
            captured: 300,
            segmented: 100,
            ..Default::default()
        };
        let now = StatsSnapshot {
            elapsed: Duration::from_secs(12),
            captured: 360,
            segmented: 120,
            dropped: 40,
            selected_kept: 3,
            kept_by_reason: BTreeMap::from([("rare_class".into(), 2), ("interval".into(), 1)]),
            stored_bytes: 5 << 20,
            store_errors: 1,
            frame_buffers_peak: 9,
            first_segmented: Some(Duration::from_millis(250)),
            ..Default::default()
        };
        let line = status_line(&now, &prev);
        assert!(
            line.starts_with("capture 30.0 fps | model 10.0 fps"),
            "{line}"
        );
        assert!(line.contains("kept 3 (interval 1, rare_class 2)"), "{line}");
        assert!(
            line.contains("stored 5.0 MiB") && line.ends_with("errors 1"),
            "{line}"
        );
        let report = summary(&now, "synthetic:seed=1", "edgesift-road-n-seg");
        assert!(
            report.contains("kept     3 (2.5% of segmented frames)"),
            "{report}"
        );
        assert!(
            report.contains("first frame segmented 250 ms after start")
                && report.ends_with("at most 9 frame images alive at once"),
            "{report}"
        );
    }
}
