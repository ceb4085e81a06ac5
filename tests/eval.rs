//! edgesift's COCO evaluator against pycocotools on the same random ground truth and detections
//! (`scripts/make_eval_fixture.py`): boxes and masks, crowd regions, >100 detections per image.

use crate::util::data;
use edgesift::eval::{CocoEval, Detection, GroundTruth, IouType};
use edgesift::geometry::Rle;
use serde_json::Value;

fn rle(v: &Value) -> Rle {
    let size = v["size"].as_array().unwrap();
    let (h, w) = (
        size[0].as_u64().unwrap() as u32,
        size[1].as_u64().unwrap() as u32,
    );
    Rle::from_compressed(h, w, v["counts"].as_str().unwrap()).unwrap()
}

fn bbox(v: &Value) -> [f64; 4] {
    let b: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    [b[0], b[1], b[2], b[3]]
}

#[test]
fn matches_pycocotools_on_boxes_and_masks() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(data("eval/random_coco.json")).unwrap())
            .unwrap();
    let gt = &doc["ground_truth"];
    let images = gt["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    let cats = gt["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap() as u32)
        .collect();
    let mut e = CocoEval::new(images, cats);
    for a in gt["annotations"].as_array().unwrap() {
        e.add_ground_truth(GroundTruth {
            image_id: a["image_id"].as_u64().unwrap(),
            category_id: a["category_id"].as_u64().unwrap() as u32,
            bbox: bbox(&a["bbox"]),
            mask: Some(rle(&a["segmentation"])),
            iscrowd: a["iscrowd"].as_u64().unwrap() == 1,
        });
    }
    for d in doc["detections"].as_array().unwrap() {
        e.add_detection(Detection {
            image_id: d["image_id"].as_u64().unwrap(),
            category_id: d["category_id"].as_u64().unwrap() as u32,
            score: d["score"].as_f64().unwrap(),
            bbox: bbox(&d["bbox"]),
            mask: Some(rle(&d["segmentation"])),
        });
    }
    for (name, kind) in [("bbox", IouType::Bbox), ("segm", IouType::Segm)] {
        let ours = e.evaluate(kind);
        let theirs = &doc["pycocotools"][name];
        for (key, value) in [
            ("map", ours.map),
            ("map50", ours.map50),
            ("map75", ours.map75),
            ("mar100", ours.mar100),
        ] {
            let expected = theirs[key].as_f64().unwrap();
            assert!(
                (value - expected).abs() < 1e-12,
                "{name} {key}: ours {value}, pycocotools {expected}"
            );
        }
        eprintln!(
            "{name}: mAP {:.4} mAP50 {:.4} (pycocotools agrees)",
            ours.map, ours.map50
        );
    }
}
