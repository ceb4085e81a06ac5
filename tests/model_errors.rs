//! Model files that are wrong in every way a user can get them wrong: each is refused at load with
//! an error that names the problem, never a panic.

use crate::util::data;
use candle_core::{DType, Device};
use edgesift::segment::{SegmentError, Weights, YoloV8Seg};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// The n-scale fixture with `edit` applied to each tensor (`None` drops it).
fn rewritten(dir: &Path, edit: impl Fn(&str, Raw) -> Option<Raw>) -> PathBuf {
    let bytes = std::fs::read(data("parity/v8n_coffee_320.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let tensors: Vec<(String, Raw)> = st
        .tensors()
        .into_iter()
        .filter_map(|(name, v)| {
            let raw = Raw {
                dtype: v.dtype(),
                shape: v.shape().to_vec(),
                data: v.data().to_vec(),
            };
            edit(&name, raw).map(|r| (name, r))
        })
        .collect();
    let out = safetensors::serialize(
        tensors.iter().map(|(n, r)| (n.as_str(), r)),
        meta.metadata().clone(),
    )
    .unwrap();
    let path = dir.join("edited.safetensors");
    std::fs::write(&path, out).unwrap();
    path
}

fn load(path: &Path) -> Result<YoloV8Seg, SegmentError> {
    YoloV8Seg::load(&Weights::open(path)?, &Device::Cpu, DType::F32)
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = rewritten(dir.path(), |n, r| {
        (n != "model.15.m.0.cv2.bn.running_var").then_some(r)
    });
    let e = load(&p).unwrap_err();
    assert!(matches!(e, SegmentError::MissingTensor { .. }), "{e}");
    assert!(
        e.to_string().contains("model.15.m.0.cv2.bn.running_var"),
        "{e}"
    );
}

#[test]
fn wrong_shape_names_key_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    // Layer 1 made to expect 8 input channels: it no longer fits layer 0's 16 outputs.
    let p = rewritten(dir.path(), |n, mut r| {
        if n == "model.1.conv.weight" {
            r.shape = vec![64, 8, 3, 3];
        }
        Some(r)
    });
    let e = load(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SegmentError::ShapeMismatch { .. }), "{msg}");
    assert!(msg.contains("model.1.conv.weight"), "{msg}");
    assert!(
        msg.contains("[64, 8, 3, 3]") && msg.contains("[64, 16, 3, 3]"),
        "{msg}"
    );
}

#[test]
fn detection_only_checkpoint_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let p = rewritten(dir.path(), |n, r| {
        (!n.starts_with("model.22.proto") && !n.starts_with("model.22.cv4")).then_some(r)
    });
    let e = load(&p).unwrap_err();
    assert!(e.to_string().contains("detection model"), "{e}");
}

#[test]
fn integer_tensor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = rewritten(dir.path(), |n, mut r| {
        if n == "model.0.bn.weight" {
            r.dtype = Dtype::I32;
        }
        Some(r)
    });
    let e = load(&p).unwrap_err();
    assert!(matches!(e, SegmentError::UnsupportedDtype { .. }), "{e}");
    assert!(e.to_string().contains("model.0.bn.weight"), "{e}");
}

#[test]
fn truncated_file_is_refused_before_reading_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(data("parity/v8n_coffee_320.safetensors")).unwrap();
    let p = dir.path().join("cut.safetensors");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = Weights::open(&p).unwrap_err();
    assert!(matches!(e, SegmentError::NotSafetensors { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
}

#[test]
fn an_image_passed_as_model_is_refused() {
    let e = Weights::open(&data("coffee.png")).unwrap_err();
    assert!(matches!(e, SegmentError::NotSafetensors { .. }), "{e}");
    assert!(e.to_string().contains("coffee.png"), "{e}");
}
