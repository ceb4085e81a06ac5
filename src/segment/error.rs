use std::path::PathBuf;

/// Why a model could not be loaded or a frame could not be segmented.
///
/// Load errors name the file and, where one is at fault, the tensor; the pipeline treats them as
/// fatal at start-up. [`SegmentError::BadInput`] costs one frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable safetensors file: {reason}")]
    NotSafetensors { path: PathBuf, reason: String },
    #[error("model file has no tensor `{key}`")]
    MissingTensor { key: String },
    #[error("tensor `{key}` has shape {actual:?}, but this model needs {expected:?}")]
    ShapeMismatch {
        key: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor `{key}` is stored as {dtype}; weights must be f32, f16 or bf16 (or int8 for folded convolution weights written by `edgesift quantize --dtype int8`)")]
    UnsupportedDtype { key: String, dtype: String },
    #[error("model metadata `{key}`: {reason}")]
    Metadata { key: String, reason: String },
    #[error("not a YOLOv8-seg model: {0}")]
    Architecture(String),
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}
