//! `edgesift quantize`: the f16-weight model finds the same instances as the f32 one.
//!
//! Issue 6's bar, before the synthetic held-out split is used for mAP: at least 98 % of the
//! instances agree (same class, mask IoU > 0.9, matched one to one), on both photos, with the
//! fixtures' thresholds (16-21 instances each). The v8n fixture is stored in f32, so its f16
//! copy really is rounded; the v8s fixture is already f16, so for it this checks that the
//! rewrite (BatchNorm widened to f32) changes nothing.

use crate::util::data;
use candle_core::{DType, Device, Tensor};
use edgesift::segment::{
    quantize, Instance, ModelOptions, PostOptions, Segmenter, WeightDtype, Weights, YoloSegmenter,
    YoloV8Seg,
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

/// The int8 file's layout, and its raw outputs against ultralytics' f32 ones on the parity
/// inputs: through the int8 kernels (CPU, f32 mode) and dequantized to candle's conv2d (f16
/// compute, the path a GPU takes). These fixtures are randomly initialised networks, whose
/// scores sit near the threshold everywhere, so instance agreement is judged on the trained
/// model below instead.
#[test]
fn int8_files_are_folded_and_close_in_raw_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for fixture in ["v8n_coffee_320", "v8s_chelsea_256_f16"] {
        let src = data(&format!("parity/{fixture}.safetensors"));
        let dst = dir.path().join(format!("{fixture}-int8.safetensors"));
        let summary = quantize(&src, &dst, WeightDtype::Int8).unwrap();
        // 66 `Conv` blocks; the head's 9 last 1x1 convolutions, the DFL and the Proto's
        // transposed convolution stay f32.
        assert_eq!(summary.converted, 66, "{fixture}");
        assert!(summary.bytes_out * 10 < summary.bytes_in * 6, "{summary:?}");
        let w = Weights::open(&dst).unwrap();
        assert_eq!(
            format!("{:?}", w.dtype("model.0.conv.weight").unwrap()),
            "I8"
        );
        let c0 = w.shape("model.0.conv.weight").unwrap()[0];
        assert_eq!(w.shape("model.0.conv.weight_scale").unwrap(), [c0]);
        assert!(!w.contains("model.0.bn.running_var"));
        assert!(w.metadata()["quantized"].contains("int8"));
        // Quantizing twice is refused, naming a tensor.
        let again = quantize(
            &dst,
            &dir.path().join("again.safetensors"),
            WeightDtype::Int8,
        );
        assert!(again.unwrap_err().to_string().contains("already int8"));

        let io = candle_core::safetensors::load(
            data(&format!("parity/{fixture}_io.safetensors")),
            &Device::Cpu,
        )
        .unwrap();
        for dtype in [DType::F32, DType::F16] {
            let net = YoloV8Seg::load(&w, &Device::Cpu, dtype).unwrap();
            let out = net.forward(&io["images"].to_dtype(dtype).unwrap()).unwrap();
            let pred = rel_l2(&out.pred, &io["pred"]);
            let proto = rel_l2(&out.proto, &io["proto"]);
            eprintln!("{fixture} int8 ({dtype:?}): pred rel L2 {pred:.2e}, proto {proto:.2e}");
            assert!(
                pred < 0.02 && proto < 0.02,
                "{fixture} {dtype:?}: {pred} {proto}"
            );
        }
    }
}

/// ||a - b|| / ||b||.
fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
    let v = |t: &Tensor| {
        t.to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let (a, b) = (v(a), v(b));
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// The trained default model on synthetic road scenes from the held-out seed family (1007):
/// int8 against f32 at the default thresholds, agreement pooled over the frames.
///
/// Measured: 0.910 (174 f32 instances; weights alone in int8 with f32 activations give 0.971).
/// That is short of issue 6's fallback bar of 0.98, which counts every instance whose score
/// crosses 0.25 or whose mask moves below IoU 0.9; the primary criterion, mAP on the held-out
/// split, is in docs/PERFORMANCE.md. This test guards against regressions at 0.88.
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
    assert!(agree >= 0.88, "agreement {agree}");
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
