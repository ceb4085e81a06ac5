//! Post-processing alone: confidence filter, NMS and masks for 20 instances of a 1280x720 frame
//! (issue 6 target: 5 ms). `cargo bench --bench post`.
//!
//! The raw output is made up with the real layout of yolov8n-seg at 640 with minimal padding
//! (640x384 input, 5040 anchors, 80 classes, 32 prototypes of 160x96): 20 objects, each
//! predicted by a cluster of 8 overlapping anchors (NMS keeps one), and low scores everywhere
//! else. Two scenes: objects from 40 to 230 pixels wide (a street seen from afar: 0.3 M mask
//! pixels in all), and from 120 to 576 pixels (a close street, the objects overlapping: 3.4 M
//! mask pixels, 3.7 times the frame); a mask's cost grows with its box.

use criterion::{criterion_group, criterion_main, Criterion};
use edgesift::segment::{postprocess, Letterbox, PostOptions, RawView, STRIDES};
use std::hint::black_box;
use std::time::Duration;

const NC: usize = 80;
const NM: usize = 32;
const OBJECTS: usize = 20;

struct Raw {
    pred: Vec<f32>,
    anchors: usize,
    proto: Vec<f32>,
    proto_h: usize,
    proto_w: usize,
}

/// Object `o` is `base + step * o` input pixels wide and 0.8 of that high.
fn made_up(lb: &Letterbox, base: f32, step: f32) -> Raw {
    let (w, h) = (lb.input_width as usize, lb.input_height as usize);
    let anchors: usize = STRIDES.iter().map(|s| (w / s) * (h / s)).sum();
    let rows = 4 + NC + NM;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut pred = vec![0f32; rows * anchors];
    for a in 0..anchors {
        pred[a] = rnd() * w as f32;
        pred[anchors + a] = rnd() * h as f32;
        pred[2 * anchors + a] = 4.0 + rnd() * 20.0;
        pred[3 * anchors + a] = 4.0 + rnd() * 20.0;
        for k in 0..NC {
            pred[(4 + k) * anchors + a] = rnd() * 0.05;
        }
        for k in 0..NM {
            pred[(4 + NC + k) * anchors + a] = rnd() * 2.0 - 1.0;
        }
    }
    // 20 objects on a 5x4 grid, sizes from small to a fifth of the frame, 8 anchors each.
    for o in 0..OBJECTS {
        let (gx, gy) = ((o % 5) as f32, (o / 5) as f32);
        let cx = (gx + 0.5) * w as f32 / 5.0;
        let cy = (gy + 0.5) * h as f32 / 4.0;
        let size = base + step * o as f32;
        for j in 0..8 {
            let a = o * 97 + j * 11;
            pred[a] = cx + 0.15 * j as f32;
            pred[anchors + a] = cy - 0.15 * j as f32;
            pred[2 * anchors + a] = size;
            pred[3 * anchors + a] = size * 0.8;
            pred[(4 + o % NC) * anchors + a] = 0.9 - 0.01 * j as f32;
        }
    }
    let (proto_h, proto_w) = (h / 4, w / 4);
    let proto = (0..NM * proto_h * proto_w)
        .map(|_| rnd() * 2.0 - 1.0)
        .collect();
    Raw {
        pred,
        anchors,
        proto,
        proto_h,
        proto_w,
    }
}

fn bench_post(c: &mut Criterion) {
    let lb = Letterbox::plan(1280, 720, [640, 640], true, 32);
    let opts = PostOptions::default();
    let mut g = c.benchmark_group("post");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, base, step) in [
        ("nms_masks_20_instances_1280x720", 20.0, 5.0),
        ("nms_masks_20_large_instances_1280x720", 60.0, 12.0),
    ] {
        let raw = made_up(&lb, base, step);
        let view = RawView {
            pred: &raw.pred,
            anchors: raw.anchors,
            num_classes: NC,
            num_masks: NM,
            proto: &raw.proto,
            proto_h: raw.proto_h,
            proto_w: raw.proto_w,
        };
        let instances = postprocess(&view, &lb, &opts);
        assert_eq!(
            instances.len(),
            OBJECTS,
            "the made-up output should give {OBJECTS} instances"
        );
        let pixels: u64 = instances.iter().map(|i| i.mask.rect().area()).sum();
        println!("{name}: {:.1} M mask pixels", pixels as f64 / 1e6);
        g.bench_function(name, |b| {
            b.iter(|| black_box(postprocess(black_box(&view), &lb, &opts)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_post);
criterion_main!(benches);
