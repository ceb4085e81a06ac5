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

mod on_a_dataset {
    //! `evaluate_split` end to end on a tiny exported dataset with an oracle segmenter whose
    //! answers, and so whose mAP, are worked out by hand.

    use edgesift::dataset::{DatasetWriter, Format, Labeled, Split};
    use edgesift::eval::evaluate_split;
    use edgesift::geometry::{BBox, Mask, PixelRect};
    use edgesift::segment::{
        Architecture, Detections, Instance, ModelInfo, SegmentError, Segmenter,
    };
    use image::RgbImage;
    use std::collections::VecDeque;

    fn square(x: u32, y: u32, s: u32) -> (BBox, Mask) {
        let r = PixelRect::new(x, y, s, s);
        (r.to_bbox(), Mask::from_fn(64, 48, r, |_, _| true))
    }

    /// One prepared answer: class, score and the square `(x, y, side)`.
    type Answer = (u32, f32, (u32, u32, u32));

    /// Answers with the next prepared list of answers per image.
    struct Oracle {
        info: ModelInfo,
        answers: VecDeque<Vec<Answer>>,
    }

    impl Segmenter for Oracle {
        fn info(&self) -> &ModelInfo {
            &self.info
        }

        fn segment(&mut self, image: &RgbImage) -> Result<Detections, SegmentError> {
            let answer = self.answers.pop_front().expect("one answer per image");
            Ok(Detections {
                image_width: image.width(),
                image_height: image.height(),
                instances: answer
                    .into_iter()
                    .map(|(class_id, score, (x, y, s))| {
                        let (bbox, mask) = square(x, y, s);
                        Instance {
                            class_id,
                            score,
                            bbox,
                            mask,
                            class_scores: vec![],
                        }
                    })
                    .collect(),
                embedding: vec![],
                class_names: self.info.class_names.clone(),
                timings: Default::default(),
            })
        }
    }

    #[test]
    fn hand_checked_map_of_an_oracle() {
        let dir = tempfile::tempdir().unwrap();
        // The dataset lists "animal" before "car"; the model has them the other way round, so
        // classes must map by name.
        let mut w = DatasetWriter::create(dir.path(), &[Format::Coco], &["animal", "car"]).unwrap();
        let img = RgbImage::from_pixel(64, 48, image::Rgb([90, 90, 90]));
        let (a_box, a_mask) = square(4, 4, 10); // image 1: a car
        w.add(
            Split::Val,
            "one",
            &img,
            &[Labeled {
                class_id: 1,
                bbox: a_box,
                mask: &a_mask,
            }],
        )
        .unwrap();
        let (b_box, b_mask) = square(30, 20, 12); // image 2: an animal and a car
        let (c_box, c_mask) = square(2, 30, 8);
        w.add(
            Split::Val,
            "two",
            &img,
            &[
                Labeled {
                    class_id: 0,
                    bbox: b_box,
                    mask: &b_mask,
                },
                Labeled {
                    class_id: 1,
                    bbox: c_box,
                    mask: &c_mask,
                },
            ],
        )
        .unwrap();
        w.finish().unwrap();

        let mut oracle = Oracle {
            info: ModelInfo {
                name: "oracle".into(),
                path: "oracle".into(),
                sha256: String::new(),
                class_names: vec!["car".to_string(), "animal".to_string()].into(),
                trained_imgsz: None,
                architecture: Architecture {
                    num_classes: 2,
                    num_masks: 0,
                    proto_channels: 0,
                    reg_max: 0,
                    backbone_widths: vec![],
                    neck_widths: [0; 3],
                    c2f_depths: vec![],
                },
            },
            answers: VecDeque::from(vec![
                // Image 1: the car, exactly (a true positive).
                vec![(0, 0.9, (4, 4, 10))],
                // Image 2: the animal exactly; a car where there is none; the real car missed.
                vec![(1, 0.8, (30, 20, 12)), (0, 0.7, (40, 2, 6))],
            ]),
        };
        let r = evaluate_split(&mut oracle, dir.path(), "val", None, |_, _| {}).unwrap();
        assert_eq!((r.images, r.instances, r.detections), (2, 3, 3));
        // car: TP (0.9) then FP (0.7) over 2 objects: precision 1 up to recall 0.5, nothing
        // beyond, so AP = 51/101 at every IoU threshold. animal: one TP, AP = 1.
        let expected = (51.0 / 101.0 + 1.0) / 2.0;
        for s in [&r.boxes, &r.masks] {
            assert!((s.map - expected).abs() < 1e-9, "{} vs {expected}", s.map);
            assert!((s.map50 - expected).abs() < 1e-9);
        }
    }
}
