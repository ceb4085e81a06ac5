//! Frame selection on a short synthetic stream: under a tight budget the configured strategies
//! catch more rare-class and occlusion events than interval sampling at the same keep rate; and
//! `edgesift bench-select --seeds` pools several streams correctly.

use edgesift::capture::synthetic::EventRates;
use edgesift::capture::EventKind;
use edgesift::select::bench::{self, StreamOptions, TruthDetector};
use edgesift::select::SelectConfig;

#[test]
fn strategies_beat_interval_sampling_on_rare_events_at_equal_keep_rate() {
    // 4000 frames at 10 fps (400 s) with rare animals and occlusions more frequent than by
    // default, so that a short stream holds enough of them.
    let opts = StreamOptions {
        frames: 4000,
        seed: 5,
        events: EventRates {
            rare_class_per_hour: 120.0,
            occlusion_per_hour: 120.0,
            ..EventRates::default()
        },
        ..Default::default()
    };
    let frames = bench::record_stream(&opts, &mut TruthDetector::new(5), |_| {}).unwrap();
    // A tight budget: about one frame in ten seconds, so that coverage alone cannot catch what
    // lasts a few seconds.
    let mut cfg = SelectConfig::default();
    cfg.budget.max_per_minute = 6;
    cfg.budget.max_per_hour = 360;
    let (scores, stats) = bench::compare(&frames, &cfg, "strategies", 5).unwrap();
    let [sel, interval, random] = &scores[..] else {
        panic!("three scores");
    };
    eprintln!("{}", bench::table(&scores));
    assert_eq!(sel.kept, interval.kept, "equal keep rate");
    assert_eq!(stats.kept as usize, sel.kept);
    assert!(sel.keep_rate() <= 0.05, "keep rate {}", sel.keep_rate());
    let share = |s: &bench::Score, k| s.kind(k).unwrap().share();
    let rare = sel.kind(EventKind::RareClass).unwrap();
    assert!(rare.events >= 5, "{} rare-class events", rare.events);
    assert!(share(sel, EventKind::RareClass) > share(interval, EventKind::RareClass));
    assert!(share(sel, EventKind::RareClass) > share(random, EventKind::RareClass));
    assert!(share(sel, EventKind::Occlusion) > share(interval, EventKind::Occlusion));
}

/// `bench-select --seeds`: the pooled rows are the per-seed rows added up, event by event.
#[test]
fn bench_select_pools_several_seeds_by_their_events() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_edgesift"))
        .args([
            "bench-select",
            "--seeds",
            "3-4",
            "--frames",
            "600",
            "--json",
        ])
        .output()
        .expect("running edgesift");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let per_seed = j["per_seed"].as_array().expect("per_seed");
    assert_eq!(per_seed.len(), 2);
    assert_eq!(per_seed[0]["seed"], 3);
    assert_eq!(per_seed[1]["seed"], 4);
    let pooled = &j["pooled"];
    for (row, name) in ["strategies", "interval", "random"].iter().enumerate() {
        assert_eq!(pooled[row]["name"], *name);
        let sum = |field: &str| -> u64 {
            per_seed
                .iter()
                .map(|s| s["scores"][row][field].as_u64().expect(field))
                .sum()
        };
        assert_eq!(pooled[row]["kept"].as_u64(), Some(sum("kept")), "{name}");
        assert_eq!(pooled[row]["frames"].as_u64(), Some(1200), "{name}");
        for kind in ["rare_class", "occlusion", "crowd"] {
            for field in ["events", "caught"] {
                let total: u64 = per_seed
                    .iter()
                    .map(|s| s["scores"][row]["events"][kind][field].as_u64().unwrap())
                    .sum();
                assert_eq!(
                    pooled[row]["events"][kind][field].as_u64(),
                    Some(total),
                    "{name} {kind} {field}"
                );
            }
        }
    }
    let bar = &j["seeds_at_90_percent"]["rare_class"];
    assert!(bar["seeds"].as_u64() <= bar["of"].as_u64());
}
