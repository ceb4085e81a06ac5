//! Dataset export: COCO files read back, yolo-seg polygons that rasterise back to the masks,
//! the synthetic export's splits, and the errors users can run into.

use edgesift::capture::synthetic::{EventRates, SyntheticConfig, SyntheticSource, CLASS_NAMES};
use edgesift::capture::GroundTruth;
use edgesift::dataset::contour::{fill_polygon, outer_contours};
use edgesift::dataset::{
    export_synthetic, read_coco, DatasetError, DatasetWriter, Format, Labeled, Split, SynthExport,
};
use edgesift::geometry::{BBox, Mask, PixelRect};
use image::RgbImage;
use std::path::Path;

/// `n` frames 2 s apart from a busy synthetic stream.
fn frames(n: usize, w: u32, h: u32, seed: u64) -> Vec<(RgbImage, GroundTruth)> {
    let mut src = SyntheticSource::new(SyntheticConfig {
        seed,
        width: w,
        height: h,
        realtime: false,
        min_instance_px: 12,
        events: EventRates {
            crowd_per_hour: 200.0,
            occlusion_per_hour: 200.0,
            rare_class_per_hour: 200.0,
            ..EventRates::default()
        },
        ..Default::default()
    })
    .unwrap();
    let mut out = Vec::new();
    let mut img = RgbImage::new(1, 1);
    for _ in 0..n {
        src.skip(60);
        let t = src.render_next(&mut img).unwrap();
        out.push((img.clone(), t));
    }
    out
}

fn labels(t: &GroundTruth) -> Vec<Labeled<'_>> {
    t.instances
        .iter()
        .map(|i| Labeled {
            class_id: i.class_id,
            bbox: i.bbox,
            mask: &i.mask,
        })
        .collect()
}

#[test]
fn coco_export_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let data = frames(6, 320, 180, 3);
    let mut w =
        DatasetWriter::create(&out, &[Format::Coco, Format::YoloSeg], &CLASS_NAMES).unwrap();
    for (k, (img, t)) in data.iter().enumerate() {
        let split = if k < 4 { Split::Train } else { Split::Val };
        w.add(split, &format!("img{k}"), img, &labels(t)).unwrap();
    }
    let summary = w.finish().unwrap();
    assert_eq!(summary.images, [4, 2]);
    for (split, range) in [("train", 0..4), ("val", 4..6)] {
        let coco = read_coco(&out.join(format!("annotations/instances_{split}.json"))).unwrap();
        let names: Vec<&str> = coco.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, CLASS_NAMES);
        assert_eq!(coco.categories[0].id, 1, "category ids are class ids + 1");
        assert_eq!(coco.images.len(), range.len());
        let mut anns = coco.annotations.iter();
        for (im, k) in coco.images.iter().zip(range) {
            assert_eq!(im.file_name, format!("img{k}.jpg"));
            assert_eq!((im.width, im.height), (320, 180));
            let decoded = image::open(out.join("images").join(split).join(&im.file_name)).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (320, 180));
            for inst in &data[k].1.instances {
                let a = anns.next().expect("one annotation per instance");
                assert_eq!(a.image_id, im.id);
                assert_eq!(a.category_id, inst.class_id as u64 + 1);
                let rle = a.segmentation.as_ref().unwrap();
                assert_eq!(rle.to_mask(), inst.mask, "mask of annotation {}", a.id);
                assert_eq!(a.area, inst.mask.area() as f64);
                let [x, y, bw, bh] = a.bbox;
                assert_eq!(
                    BBox::new(x as f32, y as f32, (x + bw) as f32, (y + bh) as f32),
                    inst.bbox
                );
                assert!(!a.iscrowd);
            }
        }
        assert!(anns.next().is_none());
    }
    assert!(
        std::fs::read_dir(out.join("annotations"))
            .unwrap()
            .all(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n.starts_with("instances_") && n.ends_with(".json")
            }),
        "no part files or temporaries left behind"
    );
}

fn parse_label(line: &str, w: u32, h: u32) -> (u32, Vec<[f32; 2]>) {
    let mut it = line.split_ascii_whitespace();
    let class: u32 = it.next().unwrap().parse().unwrap();
    let v: Vec<f32> = it.map(|s| s.parse().unwrap()).collect();
    assert!(v.len() >= 6 && v.len() % 2 == 0, "{line}");
    assert!(v.iter().all(|c| (0.0..=1.0).contains(c)));
    // Back to pixel centres the way ultralytics does it (an int32 cast truncates).
    let px = |c: f32, size: u32| (c * size as f32).trunc();
    (
        class,
        v.chunks_exact(2)
            .map(|p| [px(p[0], w), px(p[1], h)])
            .collect(),
    )
}

#[test]
fn yolo_polygons_rasterise_back_to_the_masks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let (w, h) = (640, 360);
    let data = frames(8, w, h, 9);
    let mut writer = DatasetWriter::create(&out, &[Format::YoloSeg], &CLASS_NAMES).unwrap();
    for (k, (img, t)) in data.iter().enumerate() {
        writer
            .add(Split::Train, &format!("f{k}"), img, &labels(t))
            .unwrap();
    }
    writer.finish().unwrap();
    // Masks in one piece come back nearly exactly; masks broken up by occluders (a head above a
    // car, feet below it) lose parts that are too far away to bridge, but never do worse than
    // their largest piece alone.
    let (mut n, mut sum, mut worst_whole, mut fragmented) = (0usize, 0f64, 1f32, 0usize);
    for (k, (_, t)) in data.iter().enumerate() {
        let text = std::fs::read_to_string(out.join(format!("labels/train/f{k}.txt"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), t.instances.len());
        for (line, inst) in lines.iter().zip(&t.instances) {
            let (class, poly) = parse_label(line, w, h);
            assert_eq!(class, inst.class_id);
            let iou = fill_polygon(&poly, w, h).iou(&inst.mask);
            n += 1;
            sum += iou as f64;
            let parts = outer_contours(&inst.mask);
            let largest = parts[0].pixels as f32 / inst.mask.area() as f32;
            if parts.len() == 1 {
                if inst.mask.area() >= 100 {
                    assert!(
                        iou > 0.9,
                        "IoU {iou} for a {}-pixel {}",
                        inst.mask.area(),
                        CLASS_NAMES[class as usize]
                    );
                    worst_whole = worst_whole.min(iou);
                }
            } else {
                fragmented += 1;
                assert!(
                    iou >= 0.9 * largest,
                    "IoU {iou} below its largest piece ({largest}): {parts:?}"
                );
            }
        }
    }
    let mean = sum / n as f64;
    eprintln!("{n} polygons ({fragmented} of broken-up masks), mean IoU {mean:.3}, worst whole {worst_whole:.3}");
    assert!(n > 50, "only {n} instances");
    assert!(mean > 0.9, "mean IoU {mean}");
    let yaml = std::fs::read_to_string(out.join("data.yaml")).unwrap();
    let abs = std::fs::canonicalize(&out).unwrap();
    assert!(
        yaml.contains(&format!("path: '{}'", abs.display())),
        "{yaml}"
    );
    assert!(yaml.contains("train: images/train\nval: images/val\nnames:\n  0: 'car'\n"));
    assert!(yaml.contains("  6: 'animal'\n"));
}

#[test]
fn writer_rejects_what_would_make_a_broken_dataset() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), b"").unwrap();
    assert!(matches!(
        DatasetWriter::create(dir.path(), &[Format::YoloSeg], &CLASS_NAMES),
        Err(DatasetError::NotEmpty(_))
    ));
    let out = dir.path().join("new");
    assert!(matches!(
        DatasetWriter::create(&out, &[], &CLASS_NAMES),
        Err(DatasetError::NoFormat)
    ));
    assert!(matches!(
        DatasetWriter::create(&out, &[Format::Coco], &[]),
        Err(DatasetError::NoClasses)
    ));
    let mut w = DatasetWriter::create(&out, &[Format::YoloSeg, Format::Coco], &["a", "b"]).unwrap();
    let img = RgbImage::new(8, 6);
    let mask = Mask::from_fn(8, 6, PixelRect::new(1, 1, 3, 3), |_, _| true);
    let ok = Labeled {
        class_id: 1,
        bbox: BBox::new(1.0, 1.0, 4.0, 4.0),
        mask: &mask,
    };
    for stem in ["", "../up", "a/b", "..", "sp ace"] {
        assert!(
            matches!(
                w.add(Split::Train, stem, &img, &[ok]),
                Err(DatasetError::BadStem(_))
            ),
            "{stem:?}"
        );
    }
    w.add(Split::Train, "one", &img, &[ok]).unwrap();
    assert!(matches!(
        w.add(Split::Train, "one", &img, &[ok]),
        Err(DatasetError::DuplicateStem { .. })
    ));
    w.add(Split::Val, "one", &img, &[]).unwrap();
    let bad_class = Labeled { class_id: 2, ..ok };
    let e = w.add(Split::Train, "two", &img, &[bad_class]).unwrap_err();
    assert!(e.to_string().contains("class id 2"), "{e}");
    let other = Mask::from_fn(9, 6, PixelRect::new(0, 0, 2, 2), |_, _| true);
    let e = w
        .add(
            Split::Train,
            "three",
            &img,
            &[Labeled { mask: &other, ..ok }],
        )
        .unwrap_err();
    assert!(matches!(e, DatasetError::MaskSize { mask_w: 9, .. }));
    let empty = Mask::empty(8, 6);
    w.add(
        Split::Train,
        "four",
        &img,
        &[Labeled { mask: &empty, ..ok }],
    )
    .unwrap();
    let s = w.finish().unwrap();
    assert_eq!(s.images, [2, 1]);
    assert_eq!(s.instances, [1, 0]);
    assert_eq!(s.dropped, 1);
    assert_eq!(
        std::fs::read_to_string(out.join("labels/train/four.txt")).unwrap(),
        ""
    );
    assert_eq!(
        std::fs::read_to_string(out.join("labels/val/one.txt")).unwrap(),
        "",
        "a background image"
    );
}

#[test]
fn synthetic_export_spreads_streams_over_both_splits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    let opts = SynthExport {
        frames: 12,
        width: 256,
        height: 144,
        per_stream: 4,
        stride: 30,
        val_fraction: 0.34,
        formats: vec![Format::YoloSeg, Format::Coco],
        ..SynthExport::default()
    };
    let mut seen = Vec::new();
    let s = export_synthetic(&out, &opts, |e| {
        seen.push((e.split, e.stem.to_string(), e.done))
    })
    .unwrap();
    assert_eq!(
        s.images,
        [8, 4],
        "3 streams of 4, the last one for validation"
    );
    assert_eq!(seen.len(), 12);
    assert_eq!(seen.last().unwrap().2, 12);
    for (split, stem, _) in &seen {
        assert!(out
            .join(format!("images/{}/{stem}.jpg", split.name()))
            .is_file());
        assert!(out
            .join(format!("labels/{}/{stem}.txt", split.name()))
            .is_file());
    }
    assert!(seen
        .iter()
        .filter(|x| x.0 == Split::Val)
        .all(|x| x.1.starts_with("s0002_")));
    let coco = read_coco(&out.join("annotations/instances_val.json")).unwrap();
    assert_eq!(coco.images.len(), 4);
    assert_eq!(coco.annotations.len() as u64, s.instances[1]);
    // Same options, same dataset.
    let out2 = dir.path().join("again");
    export_synthetic(&out2, &opts, |_| {}).unwrap();
    for (split, stem, _) in &seen {
        let rel = format!("labels/{}/{stem}.txt", split.name());
        assert_eq!(
            std::fs::read(out.join(&rel)).unwrap(),
            std::fs::read(out2.join(&rel)).unwrap()
        );
    }
    let bad = SynthExport {
        width: 3,
        ..opts.clone()
    };
    let e = export_synthetic(&dir.path().join("bad"), &bad, |_| {}).unwrap_err();
    assert!(e.to_string().contains("width"), "{e}");
    assert!(
        !dir.path().join("bad").exists(),
        "nothing written for invalid options"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn coco_reader_takes_every_mask_form_and_names_problems() {
    let dir = tempfile::tempdir().unwrap();
    let images = r#""images":[{"id":7,"file_name":"a.jpg","width":8,"height":6}],"categories":[{"id":1,"name":"car"}]"#;
    // Uncompressed RLE, polygon, box only.
    let p = write(
        dir.path(),
        "ok.json",
        &format!(
            r#"{{{images},"annotations":[
            {{"id":1,"image_id":7,"category_id":1,"segmentation":{{"size":[6,8],"counts":[7,2,4,2,33]}},"iscrowd":0}},
            {{"id":2,"image_id":7,"category_id":1,"segmentation":[[2,1,6,1,6,4,2,4]],"area":12,"bbox":[2,1,4,3]}},
            {{"id":3,"image_id":7,"category_id":1,"bbox":[0,0,1,1],"area":1}}]}}"#
        ),
    );
    let c = read_coco(&p).unwrap();
    assert_eq!(c.category(1).unwrap().name, "car");
    let a = &c.annotations;
    assert_eq!(a[0].segmentation.as_ref().unwrap().area(), 4);
    assert_eq!(a[0].area, 4.0, "area computed when absent");
    assert_eq!(a[0].bbox, [1.0, 1.0, 2.0, 2.0]);
    let poly = a[1].segmentation.as_ref().unwrap();
    assert_eq!(poly.area(), 12, "corners (2,1)-(6,4) cover 4 x 3 pixels");
    assert!(a[2].segmentation.is_none());
    assert_eq!(c.annotations_of(7).count(), 3);

    for (name, body, needle) in [
        (
            "unknown.json",
            r#""annotations":[{"id":1,"image_id":9,"category_id":1}]"#,
            "refers to image 9",
        ),
        (
            "size.json",
            r#""annotations":[{"id":4,"image_id":7,"category_id":1,"segmentation":{"size":[8,6],"counts":"80"}}]"#,
            "annotation 4: mask size",
        ),
        (
            "runs.json",
            r#""annotations":[{"id":5,"image_id":7,"category_id":1,"segmentation":{"size":[6,8],"counts":[3,4]}}]"#,
            "annotation 5",
        ),
        (
            "poly.json",
            r#""annotations":[{"id":6,"image_id":7,"category_id":1,"segmentation":[[1,2,3]]}]"#,
            "annotation 6: a polygon",
        ),
    ] {
        let p = write(dir.path(), name, &format!("{{{images},{body}}}"));
        let e = read_coco(&p).unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains(name), "{e}");
    }
    let p = write(dir.path(), "junk.json", "{\"images\": 3}");
    assert!(read_coco(&p)
        .unwrap_err()
        .to_string()
        .contains("not a COCO instances file"));
    assert!(matches!(
        read_coco(&dir.path().join("missing.json")),
        Err(DatasetError::Io { .. })
    ));
}
