//! edgesift's YOLOv8-seg against ultralytics on the same weights.
//!
//! Fixtures come from `scripts/make_parity_fixtures.py`, which builds the models with ultralytics
//! (random weights with randomised BatchNorm, fixed seeds) and records ultralytics' letterbox, raw
//! outputs and final instances. Two scales (n with f32 weights, s with f16 weights) on two
//! CC0 photos from scikit-image (`coffee.png`, `chelsea.png`).

use crate::util::data;
use candle_core::{DType, Device, Tensor};
use edgesift::geometry::Rle;
use edgesift::segment::{
    Letterbox, ModelOptions, PostOptions, Segmenter, Weights, YoloSegmenter, YoloV8Seg,
};
use std::collections::HashMap;

struct Fixture {
    name: &'static str,
    image: &'static str,
}

const V8N: Fixture = Fixture {
    name: "v8n_coffee_320",
    image: "coffee.png",
};
const V8S_F16: Fixture = Fixture {
    name: "v8s_chelsea_256_f16",
    image: "chelsea.png",
};

fn io(f: &Fixture) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        data(&format!("parity/{}_io.safetensors", f.name)),
        &Device::Cpu,
    )
    .expect("fixture io file")
}

fn doc(f: &Fixture) -> serde_json::Value {
    let text = std::fs::read_to_string(data(&format!("parity/{}.json", f.name))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn weights(f: &Fixture) -> std::path::PathBuf {
    data(&format!("parity/{}.safetensors", f.name))
}

/// ||a - b|| / ||b||, in f64.
fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(&b) {
        num += (*x as f64 - *y as f64).powi(2);
        den += (*y as f64).powi(2);
    }
    (num / den).sqrt()
}

fn check_raw(f: &Fixture) {
    let w = Weights::open(&weights(f)).unwrap();
    let net = YoloV8Seg::load(&w, &Device::Cpu, DType::F32).unwrap();
    let io = io(f);
    let out = net.forward(&io["images"]).unwrap();
    let e_pred = rel_l2(&out.pred, &io["pred"]);
    let e_proto = rel_l2(&out.proto, &io["proto"]);
    eprintln!(
        "{}: pred rel L2 {e_pred:.2e}, proto rel L2 {e_proto:.2e}",
        f.name
    );
    assert!(e_pred < 1e-4, "{}: pred relative L2 error {e_pred}", f.name);
    assert!(
        e_proto < 1e-4,
        "{}: proto relative L2 error {e_proto}",
        f.name
    );
    // Box coordinates and scores separately, so a large box term cannot hide a class error.
    let nc = net.architecture().num_classes;
    let scores = out.pred.narrow(1, 4, nc).unwrap();
    let e_scores = rel_l2(&scores, &io["pred"].narrow(1, 4, nc).unwrap());
    assert!(
        e_scores < 1e-4,
        "{}: class scores relative L2 {e_scores}",
        f.name
    );
}

#[test]
fn raw_outputs_match_ultralytics_v8n_f32_weights() {
    check_raw(&V8N);
}

#[test]
fn raw_outputs_match_ultralytics_v8s_f16_weights() {
    check_raw(&V8S_F16);
}

#[test]
fn architecture_is_read_from_the_weights() {
    let n = YoloV8Seg::load(
        &Weights::open(&weights(&V8N)).unwrap(),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let a = n.architecture();
    assert_eq!(a.scale(), Some('n'));
    assert_eq!(
        a.backbone_widths,
        vec![16, 32, 32, 64, 64, 128, 128, 256, 256, 256]
    );
    assert_eq!(a.neck_widths, [64, 128, 256]);
    assert_eq!(a.c2f_depths, vec![1, 2, 2, 1, 1, 1, 1, 1]);
    assert_eq!(
        (a.num_classes, a.num_masks, a.proto_channels, a.reg_max),
        (80, 32, 64, 16)
    );
    let s = YoloV8Seg::load(
        &Weights::open(&weights(&V8S_F16)).unwrap(),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    let a = s.architecture();
    assert_eq!(a.scale(), Some('s'));
    assert_eq!(a.neck_widths, [128, 256, 512]);
    assert_eq!((a.num_classes, a.proto_channels), (7, 128));
}

#[test]
fn letterbox_matches_ultralytics() {
    for f in [&V8N, &V8S_F16] {
        let img = image::open(data(f.image)).unwrap().to_rgb8();
        let d = doc(f);
        let imgsz = d["imgsz"].as_u64().unwrap() as u32;
        let lb = Letterbox::plan(img.width(), img.height(), [imgsz, imgsz], true, 32);
        let expected = &io(f)["images"];
        let (_, _, h, w) = expected.dims4().unwrap();
        assert_eq!(
            (lb.input_height as usize, lb.input_width as usize),
            (h, w),
            "{}",
            f.name
        );
        let mut ours = Vec::new();
        lb.apply(&img, &mut ours);
        let theirs = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut max_diff = 0f32;
        let mut differing = 0usize;
        for (a, b) in ours.iter().zip(&theirs) {
            let d = (a - b).abs() * 255.0;
            max_diff = max_diff.max(d);
            differing += (d > 0.5) as usize;
        }
        eprintln!(
            "{}: letterbox differs from cv2 in {differing} of {} values, max {max_diff:.1}/255",
            f.name,
            ours.len()
        );
        assert!(
            max_diff <= 1.01,
            "{}: max difference {max_diff}/255",
            f.name
        );
        assert!(
            differing * 1000 <= ours.len(),
            "{}: {differing} values differ",
            f.name
        );
    }
}

struct Expected {
    class_id: u32,
    score: f32,
    bbox: [f32; 4],
    mask: Rle,
}

fn expected_instances(d: &serde_json::Value) -> Vec<Expected> {
    d["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let b: Vec<f32> = i["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            let size = i["mask"]["size"].as_array().unwrap();
            let (h, w) = (
                size[0].as_u64().unwrap() as u32,
                size[1].as_u64().unwrap() as u32,
            );
            Expected {
                class_id: i["class_id"].as_u64().unwrap() as u32,
                score: i["score"].as_f64().unwrap() as f32,
                bbox: [b[0], b[1], b[2], b[3]],
                mask: Rle::from_compressed(h, w, i["mask"]["counts"].as_str().unwrap()).unwrap(),
            }
        })
        .collect()
}

fn check_instances(f: &Fixture) {
    let d = doc(f);
    let imgsz = d["imgsz"].as_u64().unwrap() as u32;
    let opts = ModelOptions {
        imgsz: Some([imgsz, imgsz]),
        post: PostOptions {
            conf: d["conf"].as_f64().unwrap() as f32,
            iou: d["iou"].as_f64().unwrap() as f32,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut seg = YoloSegmenter::load(&weights(f), opts).unwrap();
    let img = image::open(data(f.image)).unwrap().to_rgb8();
    let det = seg.segment(&img).unwrap();
    let expected = expected_instances(&d);
    assert!(
        expected.len() >= 10,
        "fixture {} has too few instances to mean much",
        f.name
    );
    assert_eq!(
        det.instances.len(),
        expected.len(),
        "{}: instance count",
        f.name
    );
    let mut used = vec![false; det.instances.len()];
    let (mut worst_box, mut worst_mask) = (1f32, 1f64);
    for e in &expected {
        let eb = edgesift::geometry::BBox::new(e.bbox[0], e.bbox[1], e.bbox[2], e.bbox[3]);
        let best = det
            .instances
            .iter()
            .enumerate()
            .filter(|(i, o)| !used[*i] && o.class_id == e.class_id)
            .max_by(|a, b| a.1.bbox.iou(&eb).total_cmp(&b.1.bbox.iou(&eb)))
            .unwrap_or_else(|| panic!("{}: no instance of class {} left", f.name, e.class_id));
        used[best.0] = true;
        let ours = best.1;
        let box_iou = ours.bbox.iou(&eb);
        let mask_iou = ours.mask.to_rle().iou(&e.mask);
        worst_box = worst_box.min(box_iou);
        worst_mask = worst_mask.min(mask_iou);
        assert!(
            box_iou > 0.99,
            "{}: box IoU {box_iou} for {:?}",
            f.name,
            e.bbox
        );
        assert!(
            mask_iou > 0.98,
            "{}: mask IoU {mask_iou} for {:?}",
            f.name,
            e.bbox
        );
        assert!(
            (ours.score - e.score).abs() < 1e-3,
            "{}: score {} vs {}",
            f.name,
            ours.score,
            e.score
        );
        assert_eq!(ours.mask.area(), ours.mask.to_rle().area());
    }
    eprintln!(
        "{}: {} instances, worst box IoU {worst_box:.5}, worst mask IoU {worst_mask:.5}",
        f.name,
        expected.len()
    );
}

#[test]
fn instances_match_ultralytics_on_a_photo_v8n() {
    check_instances(&V8N);
}

#[test]
fn instances_match_ultralytics_on_a_photo_v8s_f16() {
    check_instances(&V8S_F16);
}
