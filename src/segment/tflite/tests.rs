//! The TFLite backend's own logic (layout, (de)quantisation, box normalisation, NHWC protos)
//! on a fake interpreter with hand-made outputs, so it is tested without the runtime.

use super::*;

const H: usize = 64;
const W: usize = 64;
const NC: usize = 2;
const NM: usize = 2;

fn anchors() -> usize {
    STRIDES.iter().map(|s| (H / s) * (W / s)).sum()
}

/// `[rows, A]`: anchor centres everywhere (boxes 4x4 with no score) and one object: class 1,
/// score 0.9, centre (28, 36), 16x16, mask coefficients (1, 0).
fn planar_pred(normalized: bool) -> Vec<f32> {
    let a = anchors();
    let rows = 4 + NC + NM;
    let mut p = vec![0f32; rows * a];
    let mut k = 0;
    for s in STRIDES {
        for y in 0..H / s {
            for x in 0..W / s {
                p[k] = (x as f32 + 0.5) * s as f32;
                p[a + k] = (y as f32 + 0.5) * s as f32;
                p[2 * a + k] = 4.0;
                p[3 * a + k] = 4.0;
                k += 1;
            }
        }
    }
    let obj = 4 * (W / 8) + 3; // stride 8, x = 3, y = 4
    for (r, v) in [28.0, 36.0, 16.0, 16.0].into_iter().enumerate() {
        p[r * a + obj] = v;
    }
    p[(4 + 1) * a + obj] = 0.9;
    p[(4 + NC) * a + obj] = 1.0;
    if normalized {
        for r in 0..4 {
            let d = if r % 2 == 0 { W } else { H } as f32;
            for v in &mut p[r * a..(r + 1) * a] {
                *v /= d;
            }
        }
    }
    p
}

/// NHWC protos: channel 0 is +4 everywhere, channel 1 is 0.
fn nhwc_proto() -> Vec<f32> {
    let mut p = vec![0f32; (H / 4) * (W / 4) * NM];
    for px in p.chunks_exact_mut(NM) {
        px[0] = 4.0;
    }
    p
}

struct Fake {
    input: TensorDesc,
    outputs: Vec<TensorDesc>,
    data: Vec<Vec<u8>>,
}

impl Runtime for Fake {
    fn input(&self) -> &TensorDesc {
        &self.input
    }
    fn outputs(&self) -> &[TensorDesc] {
        &self.outputs
    }
    fn set_input(&mut self, bytes: &[u8]) -> Result<(), SegmentError> {
        let n: usize = self.input.shape.iter().product();
        let size = if self.input.dtype == ElemType::F32 {
            4
        } else {
            1
        };
        assert_eq!(bytes.len(), n * size, "input size");
        Ok(())
    }
    fn invoke(&mut self) -> Result<(), SegmentError> {
        Ok(())
    }
    fn output(&self, i: usize) -> Result<&[u8], SegmentError> {
        Ok(&self.data[i])
    }
}

fn desc(name: &str, shape: &[usize], dtype: ElemType, quant: Option<(f32, i32)>) -> TensorDesc {
    TensorDesc {
        name: name.into(),
        shape: shape.to_vec(),
        dtype,
        quant,
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

fn i8_bytes(v: &[f32], (s, z): (f32, i32)) -> Vec<u8> {
    v.iter()
        .map(|x| ((x / s).round() as i32 + z).clamp(-128, 127) as i8 as u8)
        .collect()
}

fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

/// A fake model; `int8` quantises input and outputs, `anchors_first` transposes pred.
fn fake(normalized: bool, int8: bool, anchors_first: bool, embedding: bool) -> Fake {
    let a = anchors();
    let rows = 4 + NC + NM;
    let mut pred = planar_pred(normalized);
    let mut pred_shape = vec![1, rows, a];
    if anchors_first {
        pred = transpose(&pred, rows, a);
        pred_shape = vec![1, a, rows];
    }
    let proto = nhwc_proto();
    let emb = vec![0.5f32, -1.0, 2.0];
    let (pq, xq, eq) = if normalized {
        ((1.0 / 200.0, -100), (4.0 / 127.0, 0), (0.02, 0))
    } else {
        ((64.0 / 250.0, -128), (4.0 / 127.0, 0), (0.02, 0))
    };
    let dtype = if int8 { ElemType::I8 } else { ElemType::F32 };
    let q = |qp: (f32, i32)| int8.then_some(qp);
    let bytes = |v: &[f32], qp: (f32, i32)| if int8 { i8_bytes(v, qp) } else { f32_bytes(v) };
    let mut outputs = vec![
        desc("proto", &[1, H / 4, W / 4, NM], dtype, q(xq)),
        desc("pred", &pred_shape, dtype, q(pq)),
    ];
    let mut data = vec![bytes(&proto, xq), bytes(&pred, pq)];
    if embedding {
        outputs.push(desc("embedding", &[1, 3], dtype, q(eq)));
        data.push(bytes(&emb, eq));
    }
    Fake {
        input: desc("images", &[1, H, W, 3], dtype, q((1.0 / 255.0, -128))),
        outputs,
        data,
    }
}

fn segmenter(f: Fake) -> TfliteSegmenter {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tflite");
    std::fs::write(&path, b"not read by the fake").unwrap();
    std::fs::write(
        path.with_extension("json"),
        r#"{"names": {"0": "car", "1": "truck"}, "imgsz": [64, 64]}"#,
    )
    .unwrap();
    TfliteSegmenter::with_runtime(Box::new(f), &path, PostOptions::default()).unwrap()
}

fn check_one_truck(seg: &mut TfliteSegmenter, tol: f32) {
    let img = RgbImage::from_pixel(W as u32, H as u32, image::Rgb([10, 20, 30]));
    let d = seg.segment(&img).unwrap();
    assert_eq!(d.instances.len(), 1, "{:?}", d.instances);
    let i = &d.instances[0];
    assert_eq!((i.class_id, d.class_name(i.class_id)), (1, "truck"));
    assert!((i.score - 0.9).abs() < tol, "score {}", i.score);
    let b = i.bbox;
    for (got, want) in [(b.x1, 20.0), (b.y1, 28.0), (b.x2, 36.0), (b.y2, 44.0)] {
        assert!((got - want).abs() < 0.5, "box {b:?}");
    }
    assert_eq!(i.mask.area(), 256);
}

#[test]
fn float_model_with_pixel_boxes() {
    let mut s = segmenter(fake(false, false, false, true));
    assert!(!s.boxes_normalized());
    assert_eq!(s.imgsz(), [64, 64]);
    check_one_truck(&mut s, 1e-6);
}

#[test]
fn normalized_boxes_are_found_and_scaled_back() {
    let mut s = segmenter(fake(true, false, false, true));
    assert!(s.boxes_normalized());
    check_one_truck(&mut s, 1e-6);
}

#[test]
fn int8_input_is_quantised_and_outputs_dequantised() {
    let mut s = segmenter(fake(true, true, false, true));
    assert!(s.boxes_normalized());
    check_one_truck(&mut s, 0.01);
    let img = RgbImage::from_pixel(W as u32, H as u32, image::Rgb([0, 128, 255]));
    let d = s.segment(&img).unwrap();
    assert_eq!(d.embedding.len(), 3);
    assert!((d.embedding[2] - 2.0).abs() < 0.02, "{:?}", d.embedding);
}

#[test]
fn int8_input_bytes_follow_scale_and_zero_point() {
    let t = desc(
        "images",
        &[1, 32, 32, 3],
        ElemType::I8,
        Some((1.0 / 255.0, -128)),
    );
    let InputLut::Byte(l) = input_lut(&t) else {
        panic!("int8 input needs a byte table")
    };
    assert_eq!(l[0] as i8, -128);
    assert_eq!(l[255] as i8, 127);
    assert_eq!(l[114] as i8, -14);
}

#[test]
fn anchors_first_predictions_and_missing_embedding() {
    let mut s = segmenter(fake(false, false, true, false));
    check_one_truck(&mut s, 1e-6);
    let img = RgbImage::from_pixel(W as u32, H as u32, image::Rgb([1, 2, 3]));
    assert!(s.segment(&img).unwrap().embedding.is_empty());
}

#[test]
fn mask_coefficients_as_their_own_output() {
    // scripts/export_tflite.py's layout: pred [1, 4 + nc, A] (normalised boxes, scores) and the
    // coefficients apart, each int8 with its own scale; here the coefficients anchors-first.
    let a = anchors();
    let full = planar_pred(true);
    let head = &full[..(4 + NC) * a];
    let coefs = transpose(&full[(4 + NC) * a..], NM, a);
    let (hq, cq, xq) = ((1.0 / 200.0, -100), (2.0 / 127.0, 0), (4.0 / 127.0, 0));
    let q = |qp| Some(qp);
    let f = Fake {
        input: desc(
            "images",
            &[1, H, W, 3],
            ElemType::I8,
            q((1.0 / 255.0, -128)),
        ),
        outputs: vec![
            desc("output_0", &[1, 4 + NC, a], ElemType::I8, q(hq)),
            desc("output_1", &[1, a, NM], ElemType::I8, q(cq)),
            desc("output_2", &[1, H / 4, W / 4, NM], ElemType::I8, q(xq)),
        ],
        data: vec![
            i8_bytes(head, hq),
            i8_bytes(&coefs, cq),
            i8_bytes(&nhwc_proto(), xq),
        ],
    };
    let l = Layout::identify(&f.input, &f.outputs).unwrap();
    assert_eq!((l.pred, l.coefs, l.num_classes), (0, Some((1, true)), NC));
    let mut s = segmenter(f);
    check_one_truck(&mut s, 0.01);
}

#[test]
fn letterbox_is_to_the_models_fixed_size() {
    let mut s = segmenter(fake(false, false, false, true));
    // A 128x64 frame is scaled to 64x32 and padded to the model's 64x64.
    let lb = s.letterbox_for(128, 64);
    assert_eq!((lb.input_width, lb.input_height, lb.top), (64, 64, 16));
    let img = RgbImage::from_pixel(128, 64, image::Rgb([255, 255, 255]));
    let d = s.segment(&img).unwrap();
    let b = d.instances[0].bbox;
    // Box (20, 28)-(36, 44) in the input is (40, 24)-(72, 56) in the frame.
    assert!(
        (b.x1 - 40.0).abs() < 0.5 && (b.y1 - 24.0).abs() < 0.5,
        "{b:?}"
    );
    assert!(
        (b.x2 - 72.0).abs() < 0.5 && (b.y2 - 56.0).abs() < 0.5,
        "{b:?}"
    );
}

#[test]
fn layout_errors_name_the_tensor() {
    let f = fake(false, false, false, true);
    let mut outs = f.outputs.clone();
    outs[1].shape = vec![1, 8, 99];
    let e = Layout::identify(&f.input, &outs).unwrap_err().to_string();
    assert!(e.contains("`pred`") && e.contains("[1, 8, 99]"), "{e}");
    let mut outs = f.outputs.clone();
    outs.push(desc("extra", &[1, 5, 5, 5, 5], ElemType::F32, None));
    let e = Layout::identify(&f.input, &outs).unwrap_err().to_string();
    assert!(e.contains("`extra`"), "{e}");
    let mut outs = f.outputs.clone();
    outs.push(desc("coefs", &[1, 7, anchors()], ElemType::F32, None));
    let e = Layout::identify(&f.input, &outs).unwrap_err().to_string();
    assert!(e.contains("`coefs`") && e.contains("2 rows"), "{e}");
    let input = desc("images", &[1, 3, 64, 64], ElemType::F32, None);
    let e = Layout::identify(&input, &f.outputs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`images`") && e.contains("NHWC"), "{e}");
    let mut outs = f.outputs.clone();
    outs[0].dtype = ElemType::I8;
    let e = Layout::identify(&f.input, &outs).unwrap_err().to_string();
    assert!(e.contains("`proto`") && e.contains("scale"), "{e}");
}

#[test]
fn sidecar_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tflite");
    std::fs::write(path.with_extension("json"), r#"{"names": {"5": "x"}}"#).unwrap();
    let e = Sidecar::read(&path, 2).err().unwrap().to_string();
    assert!(e.contains("names") && e.contains("class id 5"), "{e}");
    std::fs::write(path.with_extension("json"), r#"{"imgsz": 320}"#).unwrap();
    let e = Sidecar::read(&path, 2).err().unwrap().to_string();
    assert!(e.contains("imgsz"), "{e}");
    std::fs::remove_file(path.with_extension("json")).unwrap();
    assert_eq!(Sidecar::read(&path, 2).unwrap().names, ["class0", "class1"]);
}

#[test]
fn a_missing_library_is_named_with_where_it_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("libLiteRt.so");
    let not_a_library = dir.path().join("not-a-library.so");
    std::fs::write(&not_a_library, b"not an ELF file").unwrap();
    let e = ffi::load_from(&[absent.clone(), not_a_library.clone()])
        .err()
        .unwrap();
    if cfg!(target_feature = "crt-static") {
        assert!(
            e.contains("statically") && e.contains("libLiteRt.so"),
            "{e}"
        );
        return;
    }
    assert!(
        e.contains("libLiteRt.so") && e.contains("EDGESIFT_LITERT_LIB"),
        "{e}"
    );
    assert!(
        e.contains(&format!("{} (no such file)", absent.display())),
        "{e}"
    );
    assert!(e.contains(&not_a_library.display().to_string()), "{e}");
}

#[test]
fn the_library_is_looked_for_beside_the_binary_and_then_by_the_loader() {
    let c = ffi::candidates();
    assert_eq!(c.last().unwrap(), Path::new("libLiteRt.so"));
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    assert!(c.contains(&exe_dir.join("libLiteRt.so")), "{c:?}");
}
