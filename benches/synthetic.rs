//! Speed of the synthetic road-scene generator: frames per second on one core, ground-truth
//! masks included. Target: at least 60 frames per second at 1280x720.
//!
//! `cargo bench --bench synthetic`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use edgesift::capture::synthetic::{
    ConditionOverrides, Environment, SyntheticConfig, SyntheticSource, TimeOfDay, Weather,
};
use image::RgbImage;
use std::hint::black_box;

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("synthetic");
    g.throughput(Throughput::Elements(1));
    let cases: [(&str, ConditionOverrides); 4] = [
        // The default mix of drives, conditions and events.
        ("mixed", ConditionOverrides::default()),
        (
            "urban_day",
            ConditionOverrides {
                time_of_day: Some(TimeOfDay::Day),
                weather: Some(Weather::Clear),
                environment: Some(Environment::Urban),
                ..Default::default()
            },
        ),
        // The most expensive combination: headlight cones, rain streaks, zoom blur, noise.
        (
            "urban_night_rain_blur",
            ConditionOverrides {
                time_of_day: Some(TimeOfDay::Night),
                weather: Some(Weather::Rain),
                environment: Some(Environment::Urban),
                motion_blur: Some(true),
                sensor_noise: Some(true),
                ..Default::default()
            },
        ),
        (
            "tunnel",
            ConditionOverrides {
                tunnel: Some(true),
                ..Default::default()
            },
        ),
    ];
    for (name, conditions) in cases {
        let config = SyntheticConfig {
            seed: 7,
            realtime: false,
            conditions,
            ..Default::default()
        };
        let mut src = SyntheticSource::new(config).expect("valid config");
        if name == "tunnel" {
            // Forced tunnels start about 100 m into a drive.
            src.skip(330);
        }
        let mut img = RgbImage::new(1280, 720);
        g.bench_function(format!("frame_1280x720_{name}"), |b| {
            b.iter(|| black_box(src.render_next(&mut img)))
        });
    }
    let mut src = SyntheticSource::new(SyntheticConfig {
        realtime: false,
        ..Default::default()
    })
    .expect("valid config");
    g.bench_function("step_without_painting", |b| b.iter(|| src.skip(1)));
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
