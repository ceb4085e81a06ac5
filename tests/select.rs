//! Frame selection on a short synthetic stream: the configured strategies catch more rare-class
//! and occlusion events than interval sampling at the same keep rate.

use edgesift::capture::synthetic::EventRates;
use edgesift::capture::EventKind;
use edgesift::select::bench::{self, StreamOptions, TruthDetector};
use edgesift::select::SelectConfig;

#[test]
fn strategies_beat_interval_sampling_on_rare_events_at_equal_keep_rate() {
    // 2000 frames at 10 fps (200 s) with events far more frequent than by default, so that a
    // short stream holds enough of them.
    let opts = StreamOptions {
        frames: 2000,
        seed: 5,
        events: EventRates {
            rare_class_per_hour: 300.0,
            occlusion_per_hour: 300.0,
            ..EventRates::default()
        },
        ..Default::default()
    };
    let frames = bench::record_stream(&opts, &mut TruthDetector::new(5), |_| {}).unwrap();
    let (scores, stats) =
        bench::compare(&frames, &SelectConfig::default(), "strategies", 5).unwrap();
    let [sel, interval, random] = &scores[..] else {
        panic!("three scores");
    };
    eprintln!("{}", bench::table(&scores));
    assert_eq!(sel.kept, interval.kept, "equal keep rate");
    assert!(sel.keep_rate() <= 0.05, "keep rate {}", sel.keep_rate());
    assert!(stats.kept as usize == sel.kept);
    let share = |s: &bench::Score, k| s.kind(k).unwrap().share();
    let rare = sel.kind(EventKind::RareClass).unwrap();
    assert!(rare.events >= 5, "{} rare-class events", rare.events);
    assert!(share(sel, EventKind::RareClass) >= 0.9);
    assert!(share(sel, EventKind::RareClass) > share(interval, EventKind::RareClass));
    assert!(share(sel, EventKind::RareClass) > share(random, EventKind::RareClass));
    assert!(share(sel, EventKind::Occlusion) > share(interval, EventKind::Occlusion));
}
