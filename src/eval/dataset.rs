//! A segmenter scored on a COCO-format dataset (`edgesift eval`).

use super::{CocoEval, Detection, EvalSummary, GroundTruth, IouType};
use crate::dataset::{read_coco, CocoDataset};
use crate::segment::{SegmentError, Segmenter};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Box and mask scores of one model on one split.
#[derive(Debug, Clone)]
pub struct DatasetEval {
    pub images: usize,
    pub instances: usize,
    pub detections: usize,
    pub boxes: EvalSummary,
    pub masks: EvalSummary,
    /// Category id → name, for the per-category figures.
    pub categories: Vec<(u32, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Dataset(String),
    #[error("cannot read image {path}: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("segmenting {path}: {source}")]
    Segment {
        path: PathBuf,
        #[source]
        source: SegmentError,
    },
}

/// The COCO instances file and image folder of `split` in an exported dataset
/// (`annotations/instances_<split>.json`, `images/<split>/`).
pub fn split_paths(dataset: &Path, split: &str) -> (PathBuf, PathBuf) {
    (
        dataset
            .join("annotations")
            .join(format!("instances_{split}.json")),
        dataset.join("images").join(split),
    )
}

/// Runs `segmenter` on every image of the split and scores it as pycocotools would.
///
/// Model classes map to dataset categories by name (so a model whose class order differs from
/// the dataset's still scores correctly); a model class without a category is not scored.
/// `progress` is called after each image with (done, total).
pub fn evaluate_split(
    segmenter: &mut dyn Segmenter,
    dataset: &Path,
    split: &str,
    limit: Option<usize>,
    mut progress: impl FnMut(usize, usize),
) -> Result<DatasetEval, EvalError> {
    let (ann, images_dir) = split_paths(dataset, split);
    let coco: CocoDataset = read_coco(&ann).map_err(|e| EvalError::Dataset(e.to_string()))?;
    let by_name: HashMap<&str, u32> = coco
        .categories
        .iter()
        .map(|c| (c.name.as_str(), c.id as u32))
        .collect();
    let class_to_category: Vec<Option<u32>> = segmenter
        .info()
        .class_names
        .iter()
        .map(|n| by_name.get(n.as_str()).copied())
        .collect();
    if class_to_category.iter().all(Option::is_none) {
        return Err(EvalError::Dataset(format!(
            "none of the model's classes ({}) is a category of {}",
            segmenter.info().class_names.join(", "),
            ann.display()
        )));
    }
    let images: Vec<_> = coco
        .images
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    let mut eval = CocoEval::new(
        images.iter().map(|i| i.id).collect(),
        coco.categories.iter().map(|c| c.id as u32).collect(),
    );
    let mut instances = 0;
    for a in &coco.annotations {
        if images.iter().any(|i| i.id == a.image_id) {
            instances += 1;
            eval.add_ground_truth(GroundTruth {
                image_id: a.image_id,
                category_id: a.category_id as u32,
                bbox: a.bbox,
                mask: a.segmentation.clone(),
                iscrowd: a.iscrowd,
            });
        }
    }
    let mut detections = 0;
    for (n, img) in images.iter().enumerate() {
        let path = images_dir.join(&img.file_name);
        let rgb = image::open(&path)
            .map_err(|e| EvalError::Image {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .to_rgb8();
        let det = segmenter
            .segment(&rgb)
            .map_err(|source| EvalError::Segment {
                path: path.clone(),
                source,
            })?;
        for i in &det.instances {
            let Some(Some(category_id)) = class_to_category.get(i.class_id as usize) else {
                continue;
            };
            detections += 1;
            eval.add_detection(Detection {
                image_id: img.id,
                category_id: *category_id,
                score: i.score as f64,
                bbox: i.bbox.to_xywh().map(f64::from),
                mask: Some(i.mask.to_rle()),
            });
        }
        progress(n + 1, images.len());
    }
    Ok(DatasetEval {
        images: images.len(),
        instances,
        detections,
        boxes: eval.evaluate(IouType::Bbox),
        masks: eval.evaluate(IouType::Segm),
        categories: coco
            .categories
            .iter()
            .map(|c| (c.id as u32, c.name.clone()))
            .collect(),
    })
}
