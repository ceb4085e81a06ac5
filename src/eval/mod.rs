//! Accuracy of a segmenter on a labelled dataset: COCO-style box and mask mAP.
//!
//! [`CocoEval`] reproduces pycocotools' `COCOeval` (`evaluateImg` greedy matching by score,
//! `accumulate` with 101 recall points, `summarize`) for the "all areas, 100 detections" setting
//! that mAP50-95 and mAP50 are quoted at. `tests/eval.rs` checks it against pycocotools on the same
//! detections. [`evaluate_split`] runs a segmenter over a COCO-format dataset split and scores it.

mod coco;
mod dataset;

pub use coco::{CocoEval, Detection, EvalSummary, GroundTruth, IouType};
pub use dataset::{evaluate_split, split_paths, DatasetEval, EvalError};
