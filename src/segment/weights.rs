//! A memory-mapped safetensors file and a `VarBuilder`-like view of it.
//!
//! candle's `VarBuilder` would load the tensors too, but edgesift also needs the file's metadata
//! (class names, task) and load errors that say which tensor is missing or mis-shaped in terms an
//! operator can act on, so this module reads the file with the `safetensors` crate and converts
//! each tensor to f32 on the host, where BatchNorm is folded before anything reaches the device.

use super::SegmentError;
use memmap2::Mmap;
use safetensors::tensor::{Dtype, SafeTensors, TensorInfo};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// An opened, validated safetensors file.
pub struct Weights {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    tensors: HashMap<String, TensorInfo>,
    metadata: HashMap<String, String>,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl Weights {
    /// Maps the file and checks its header: a truncated file, a file of another format or one whose
    /// offsets do not add up is refused here, before any tensor is read.
    pub fn open(path: &Path) -> Result<Self, SegmentError> {
        let io = |source| SegmentError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. A file truncated by another
        // process while mapped would fault on access; model files are installed, not rewritten
        // in place (scripts/install.sh and the .deb replace them by rename).
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (header_len, meta) =
            SafeTensors::read_metadata(&mmap).map_err(|e| SegmentError::NotSafetensors {
                path: path.to_owned(),
                reason: describe_safetensors_error(&e, mmap.len()),
            })?;
        let tensors = meta
            .tensors()
            .into_iter()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(Self {
            path: path.to_owned(),
            mmap,
            data_start: 8 + header_len,
            tensors,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's `__metadata__` entries.
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// All tensor names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// The stored shape of `key`.
    pub fn shape(&self, key: &str) -> Result<&[usize], SegmentError> {
        self.tensors
            .get(key)
            .map(|t| t.shape.as_slice())
            .ok_or_else(|| SegmentError::MissingTensor { key: key.into() })
    }

    /// The dtype the file stores `key` in.
    pub fn dtype(&self, key: &str) -> Result<Dtype, SegmentError> {
        self.tensors
            .get(key)
            .map(|t| t.dtype)
            .ok_or_else(|| SegmentError::MissingTensor { key: key.into() })
    }

    /// The values of `key` as f32, after checking that its shape is `expected`.
    pub fn f32(&self, key: &str, expected: &[usize]) -> Result<Vec<f32>, SegmentError> {
        let info = self
            .tensors
            .get(key)
            .ok_or_else(|| SegmentError::MissingTensor { key: key.into() })?;
        if info.shape != expected {
            return Err(SegmentError::ShapeMismatch {
                key: key.into(),
                expected: expected.to_vec(),
                actual: info.shape.clone(),
            });
        }
        let (start, end) = info.data_offsets;
        let bytes = &self.mmap[self.data_start + start..self.data_start + end];
        let values = match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(SegmentError::UnsupportedDtype {
                    key: key.into(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        Ok(values)
    }

    /// The values of `key`, stored as int8 (`edgesift quantize --dtype int8`), after checking
    /// that its shape is `expected`.
    pub fn i8(&self, key: &str, expected: &[usize]) -> Result<Vec<i8>, SegmentError> {
        let info = self
            .tensors
            .get(key)
            .ok_or_else(|| SegmentError::MissingTensor { key: key.into() })?;
        if info.shape != expected {
            return Err(SegmentError::ShapeMismatch {
                key: key.into(),
                expected: expected.to_vec(),
                actual: info.shape.clone(),
            });
        }
        if info.dtype != Dtype::I8 {
            return Err(SegmentError::UnsupportedDtype {
                key: key.into(),
                dtype: format!("{:?} where int8 was expected", info.dtype),
            });
        }
        let (start, end) = info.data_offsets;
        let bytes = &self.mmap[self.data_start + start..self.data_start + end];
        Ok(bytes.iter().map(|&b| b as i8).collect())
    }

    /// A view of the tensors under `prefix` (`"model.22"` → `model.22.*`).
    pub fn scope(&self, prefix: impl Into<String>) -> Scope<'_> {
        Scope {
            weights: self,
            prefix: prefix.into(),
        }
    }
}

/// A prefix into a [`Weights`] file, descended with [`Scope::pp`] the way candle's `VarBuilder`
/// is, so that the Rust structure of the model mirrors the tensor names of the checkpoint.
#[derive(Clone)]
pub struct Scope<'a> {
    weights: &'a Weights,
    prefix: String,
}

impl<'a> Scope<'a> {
    /// The scope one level down: `model.2` → `model.2.cv1`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Scope<'a> {
        let prefix = if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        };
        Scope {
            weights: self.weights,
            prefix,
        }
    }

    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn contains(&self, name: &str) -> bool {
        self.weights.contains(&self.key(name))
    }

    pub fn shape(&self, name: &str) -> Result<&'a [usize], SegmentError> {
        self.weights.shape(&self.key(name))
    }

    pub fn f32(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, SegmentError> {
        self.weights.f32(&self.key(name), expected)
    }

    pub fn i8(&self, name: &str, expected: &[usize]) -> Result<Vec<i8>, SegmentError> {
        self.weights.i8(&self.key(name), expected)
    }

    pub fn dtype(&self, name: &str) -> Result<Dtype, SegmentError> {
        self.weights.dtype(&self.key(name))
    }
}

fn describe_safetensors_error(e: &safetensors::SafeTensorError, file_len: usize) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => format!("the file is only {file_len} bytes, too short for a header"),
        E::InvalidHeaderLength | E::HeaderTooLarge => {
            "the header length field does not fit the file (not a safetensors file, or truncated)"
                .into()
        }
        E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) => {
            format!("the header is not safetensors JSON ({e})")
        }
        E::MetadataIncompleteBuffer => format!(
            "the tensor data does not match the header (file truncated or padded: {file_len} bytes)"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        File::create(&p).unwrap().write_all(bytes).unwrap();
        p
    }

    fn tiny_file() -> Vec<u8> {
        let header = br#"{"__metadata__":{"nc":"2"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1,2],"data_offsets":[4,12]}}"#;
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header);
        out.extend_from_slice(&half::f16::from_f32(1.5).to_le_bytes());
        out.extend_from_slice(&half::f16::from_f32(-2.0).to_le_bytes());
        out.extend_from_slice(&3.25f32.to_le_bytes());
        out.extend_from_slice(&(-0.5f32).to_le_bytes());
        out
    }

    #[test]
    fn reads_values_in_any_float_dtype_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let w = Weights::open(&write(&dir, "m.safetensors", &tiny_file())).unwrap();
        assert_eq!(w.metadata()["nc"], "2");
        assert_eq!(w.f32("a", &[2]).unwrap(), vec![1.5, -2.0]);
        assert_eq!(w.scope("").f32("b", &[1, 2]).unwrap(), vec![3.25, -0.5]);
    }

    #[test]
    fn names_the_key_and_both_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let w = Weights::open(&write(&dir, "m.safetensors", &tiny_file())).unwrap();
        let err = w.f32("b", &[2, 1]).unwrap_err().to_string();
        assert!(
            err.contains("`b`") && err.contains("[1, 2]") && err.contains("[2, 1]"),
            "{err}"
        );
        let err = w.scope("model.3").f32("conv.weight", &[1]).unwrap_err();
        assert!(err.to_string().contains("model.3.conv.weight"), "{err}");
    }

    #[test]
    fn refuses_truncated_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let full = tiny_file();
        let err =
            Weights::open(&write(&dir, "t.safetensors", &full[..full.len() - 3])).unwrap_err();
        assert!(matches!(err, SegmentError::NotSafetensors { .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
        let err =
            Weights::open(&write(&dir, "x.txt", b"hello, this is not a model\n")).unwrap_err();
        assert!(matches!(err, SegmentError::NotSafetensors { .. }), "{err}");
        let err = Weights::open(&write(&dir, "e", b"")).unwrap_err();
        assert!(err.to_string().contains("too short"), "{err}");
        let err = Weights::open(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, SegmentError::Io { .. }), "{err}");
    }
}
