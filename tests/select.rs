//! Frame selection on a short synthetic stream: under a tight budget the configured strategies
//! catch more rare-class and occlusion events than interval sampling at the same keep rate.

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
