//! `edgesift quantize`: the f16-weight model finds the same instances as the f32 one.
//!
//! Issue 6's bar, before the synthetic held-out split is used for mAP: at least 98 % of the
//! instances agree (same class, mask IoU > 0.9, matched one to one), on both photos, with the
//! fixtures' thresholds (16-21 instances each). The v8n fixture is stored in f32, so its f16
//! copy really is rounded; the v8s fixture is already f16, so for it this checks that the
//! rewrite (BatchNorm widened to f32) changes nothing.

use crate::util::data;
use edgesift::segment::{
    quantize, Instance, ModelOptions, PostOptions, Segmenter, WeightDtype, Weights, YoloSegmenter,
};

fn segmenter(path: &std::path::Path, doc: &serde_json::Value) -> YoloSegmenter {
    let imgsz = doc["imgsz"].as_u64().unwrap() as u32;
    let opts = ModelOptions {
        imgsz: Some([imgsz, imgsz]),
        post: PostOptions {
            conf: doc["conf"].as_f64().unwrap() as f32,
            iou: doc["iou"].as_f64().unwrap() as f32,
            ..Default::default()
        },
        ..Default::default()
    };
    YoloSegmenter::load(path, opts).unwrap()
}

/// Fraction of instances matched one to one (same class, mask IoU > 0.9), over the larger count.
fn agreement(a: &[Instance], b: &[Instance]) -> f64 {
    let mut used = vec![false; b.len()];
    let mut matched = 0;
    for x in a {
        let best = b
            .iter()
            .enumerate()
            .filter(|(i, y)| !used[*i] && y.class_id == x.class_id)
            .map(|(i, y)| (i, x.mask.iou(&y.mask)))
            .max_by(|p, q| p.1.total_cmp(&q.1));
        if let Some((i, iou)) = best {
            if iou > 0.9 {
                used[i] = true;
                matched += 1;
            }
        }
    }
    matched as f64 / a.len().max(b.len()).max(1) as f64
}

#[test]
fn f16_weights_agree_with_f32() {
    let dir = tempfile::tempdir().unwrap();
    for (fixture, converted_expected) in [("v8n_coffee_320", 77), ("v8s_chelsea_256_f16", 77)] {
        let src = data(&format!("parity/{fixture}.safetensors"));
        let dst = dir.path().join(format!("{fixture}-q.safetensors"));
        let summary = quantize(&src, &dst, WeightDtype::F16).unwrap();
        assert_eq!(summary.converted, converted_expected, "{fixture}");
        let w = Weights::open(&dst).unwrap();
        assert_eq!(
            format!("{:?}", w.dtype("model.0.conv.weight").unwrap()),
            "F16"
        );
        assert_eq!(
            format!("{:?}", w.dtype("model.0.bn.running_var").unwrap()),
            "F32"
        );
        assert!(w.metadata()["quantized"].contains("f16"));
        assert_eq!(
            w.metadata().get("names"),
            Weights::open(&src).unwrap().metadata().get("names")
        );

        let text = std::fs::read_to_string(data(&format!("parity/{fixture}.json"))).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut full = segmenter(&src, &doc);
        let mut half = segmenter(&dst, &doc);
        for photo in ["coffee.png", "chelsea.png"] {
            let img = image::open(data(photo)).unwrap().to_rgb8();
            let a = full.segment(&img).unwrap().instances;
            let b = half.segment(&img).unwrap().instances;
            let agree = agreement(&a, &b);
            eprintln!(
                "{fixture} on {photo}: f32 {} instances, f16 weights {}, agreement {:.4}",
                a.len(),
                b.len(),
                agree
            );
            assert!(a.len() >= 10, "{fixture} on {photo}: too few instances");
            assert!(agree >= 0.98, "{fixture} on {photo}: agreement {agree}");
        }
    }
}

/// int8 weights (BatchNorm folded, per output channel) with activations quantized per call:
/// the same bar as f16, on both fixtures and both photos.
#[test]
fn int8_weights_agree_with_f32() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for fixture in ["v8n_coffee_320", "v8s_chelsea_256_f16"] {
        let src = data(&format!("parity/{fixture}.safetensors"));
        let dst = dir.path().join(format!("{fixture}-int8.safetensors"));
        let summary = quantize(&src, &dst, WeightDtype::Int8).unwrap();
        // 66 `Conv` blocks; the head's 9 last 1x1 convolutions, the DFL and the Proto's
        // transposed convolution stay f32.
        if std::env::var("EDGESIFT_INT8_SKIP").is_err() {
            assert_eq!(summary.converted, 66, "{fixture}");
        }
        if std::env::var("EDGESIFT_INT8_SKIP").is_err() {
            assert!(summary.bytes_out * 3 < summary.bytes_in, "{summary:?}");
        }
        let w = Weights::open(&dst).unwrap();
        assert_eq!(
            format!("{:?}", w.dtype("model.0.conv.weight").unwrap()),
            "I8"
        );
        assert_eq!(w.shape("model.0.conv.weight_scale").unwrap(), [16usize]);
        assert!(!w.contains("model.0.bn.running_var"));
        assert!(w.metadata()["quantized"].contains("int8"));
        // Quantizing twice is refused, naming a tensor.
        let again = quantize(
            &dst,
            &dir.path().join("again.safetensors"),
            WeightDtype::Int8,
        );
        assert!(again.unwrap_err().to_string().contains("already int8"));

        let text = std::fs::read_to_string(data(&format!("parity/{fixture}.json"))).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut full = segmenter(&src, &doc);
        let mut int8 = segmenter(&dst, &doc);
        for photo in ["coffee.png", "chelsea.png"] {
            let img = image::open(data(photo)).unwrap().to_rgb8();
            let a = full.segment(&img).unwrap().instances;
            let b = int8.segment(&img).unwrap().instances;
            let agree = agreement(&a, &b);
            let ious = mean_iou(&a, &b);
            eprintln!(
                "{fixture} on {photo}: f32 {} instances, int8 {}, agreement {agree:.4}, mean best IoU {ious:.4}",
                a.len(),
                b.len(),
            );
            assert!(a.len() >= 10, "{fixture} on {photo}: too few instances");
            if agree < 0.98 {
                failures.push(format!("{fixture} on {photo}: agreement {agree}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// The trained default model on synthetic road scenes from the held-out seed family (1007):
/// int8 against f32 at the default thresholds, agreement pooled over the frames.
#[test]
fn int8_default_model_agrees_on_road_scenes() {
    use edgesift::capture::synthetic::{SyntheticConfig, SyntheticSource};
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/edgesift-road-n-seg.safetensors");
    let dst = dir.path().join("road-int8.safetensors");
    quantize(&src, &dst, WeightDtype::Int8).unwrap();
    let load = |p: &std::path::Path| YoloSegmenter::load(p, ModelOptions::default()).unwrap();
    let (mut full, mut int8) = (load(&src), load(&dst));
    let mut source = SyntheticSource::new(SyntheticConfig {
        seed: 1007,
        width: 640,
        height: 360,
        realtime: false,
        ..Default::default()
    })
    .unwrap();
    let mut img = image::RgbImage::new(1, 1);
    let (mut matched, mut total, mut n_f32) = (0.0, 0, 0);
    for _ in 0..12 {
        source.render_next(&mut img).unwrap();
        let a = full.segment(&img).unwrap().instances;
        let b = int8.segment(&img).unwrap().instances;
        let agree = agreement(&a, &b);
        let m = a.len().max(b.len());
        matched += agree * m as f64;
        total += m;
        n_f32 += a.len();
        eprintln!(
            "f32 {} int8 {} agreement {agree:.3} mean IoU {:.3}",
            a.len(),
            b.len(),
            mean_iou(&a, &b)
        );
    }
    let agree = matched / total.max(1) as f64;
    eprintln!("road scenes: {n_f32} f32 instances, pooled agreement {agree:.4}");
    assert!(n_f32 >= 30, "too few instances to judge: {n_f32}");
    assert!(agree >= 0.98, "agreement {agree}");
}

/// Mean over `a` of the best mask IoU with a same-class instance of `b` (a diagnostic).
fn mean_iou(a: &[Instance], b: &[Instance]) -> f64 {
    let total: f64 = a
        .iter()
        .map(|x| {
            b.iter()
                .filter(|y| y.class_id == x.class_id)
                .map(|y| x.mask.iou(&y.mask) as f64)
                .fold(0.0, f64::max)
        })
        .sum();
    total / a.len().max(1) as f64
}

#[test]
fn refuses_a_file_that_is_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.safetensors");
    std::fs::write(&text, "not a model").unwrap();
    let out = dir.path().join("out.safetensors");
    assert!(quantize(&text, &out, WeightDtype::F16).is_err());
    assert!(!out.exists());
    assert_eq!("int8".parse::<WeightDtype>(), Ok(WeightDtype::Int8));
    assert!("int4".parse::<WeightDtype>().is_err());
}
