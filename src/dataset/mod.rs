//! Training datasets out of frames with instance masks: ultralytics yolo-seg and COCO.
//!
//! Used by `edgesift synth` (a dataset rendered by the synthetic generator, to train the default
//! model) and by the store's export of kept samples. The public face:
//!
//! - [`DatasetWriter`]: `create(dir, formats, class_names)`, then [`DatasetWriter::add`] one
//!   image with its [`Labeled`] instances per call, into the [`Split::Train`] or [`Split::Val`]
//!   split, then [`DatasetWriter::finish`]. Images are JPEG files under `images/<split>/`.
//!   - yolo-seg: `labels/<split>/<stem>.txt`, one line per instance, `class x1 y1 x2 y2 ...` with
//!     coordinates normalised to 0..1, and `data.yaml` (`path`, `train`, `val`, `names`): what
//!     `yolo segment train data=DIR/data.yaml` reads directly. Each mask becomes one polygon (see
//!     [`contour::mask_to_polygon`]: outer contours simplified by Douglas-Peucker to at most
//!     1 px and joined at their closest points, as ultralytics' own converters do).
//!   - COCO: `annotations/instances_<split>.json` with compressed RLE masks (pycocotools' string
//!     form), `area`, `bbox`, `iscrowd` 0; category ids are class ids + 1. Annotations are
//!     streamed to part files while images are added, so memory stays flat however large the
//!     export.
//! - [`read_coco`]: a COCO instances file back into memory ([`CocoDataset`]), masks as
//!   [`Rle`](crate::geometry::Rle) whether stored as compressed or uncompressed RLE or as polygons
//!   (rasterised; approximate), for evaluation.
//! - [`export_synthetic`]: a dataset sampled from many synthetic streams.
//!
//! Files are written under a temporary name and renamed into place, so an interrupted export
//! leaves no truncated image or label behind (it is not fsynced: an export can be redone).

mod coco;
pub mod contour;
mod synthetic;
mod yolo;

pub use coco::{read_coco, CocoAnnotation, CocoCategory, CocoDataset, CocoImage};
pub use synthetic::{export_synthetic, Exported, SynthExport};

use crate::geometry::{BBox, Mask};
use image::RgbImage;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Default JPEG quality of exported images.
pub const DEFAULT_JPEG_QUALITY: u8 = 92;
/// Polygon simplification tolerance for yolo-seg labels of large masks, pixels; smaller masks get
/// less (see [`polygon_tolerance`]).
pub const POLYGON_TOLERANCE_PX: f32 = 1.0;

/// The simplification tolerance for a mask of `area` pixels: a 40th of its size, between 0.25 and
/// [`POLYGON_TOLERANCE_PX`], so that thin parts of small instances survive.
pub fn polygon_tolerance(area: u64) -> f32 {
    ((area as f32).sqrt() / 40.0).clamp(0.25, POLYGON_TOLERANCE_PX)
}
/// Parts of a mask smaller than this (pixels) are left out of its yolo-seg polygon, except the
/// largest part.
pub const MIN_PART_PX: u64 = 4;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// ultralytics' segmentation labels (`labels/<split>/*.txt` + `data.yaml`).
    YoloSeg,
    /// COCO instances JSON with RLE masks.
    Coco,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::YoloSeg => "yolo-seg",
            Format::Coco => "coco",
        }
    }
}

/// Which part of the dataset an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub const ALL: [Split; 2] = [Split::Train, Split::Val];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One instance to write: its class, box and mask (on the image's size).
#[derive(Debug, Clone, Copy)]
pub struct Labeled<'a> {
    pub class_id: u32,
    pub bbox: BBox,
    pub mask: &'a Mask,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatasetSummary {
    /// Images per split (train, val).
    pub images: [u64; 2],
    /// Instances written per split.
    pub instances: [u64; 2],
    /// Instances per class id, both splits.
    pub per_class: Vec<u64>,
    /// Instances left out because their mask was empty.
    pub dropped: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} already holds files; export into a new or empty directory")]
    NotEmpty(PathBuf),
    #[error("no class names given")]
    NoClasses,
    #[error("no output format given")]
    NoFormat,
    #[error("image name `{0}` must be a plain file stem (letters, digits, `-`, `_`, `.`)")]
    BadStem(String),
    #[error("image `{stem}` is already in the {split} split")]
    DuplicateStem { split: &'static str, stem: String },
    #[error(
        "image `{stem}`: class id {class_id} is not below the number of class names ({classes})"
    )]
    BadClass {
        stem: String,
        class_id: u32,
        classes: usize,
    },
    #[error("image `{stem}`: a mask is {mask_w}x{mask_h}, the image {width}x{height}")]
    MaskSize {
        stem: String,
        mask_w: u32,
        mask_h: u32,
        width: u32,
        height: u32,
    },
    #[error("encoding {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}: {reason}")]
    Coco { path: PathBuf, reason: String },
    #[error("synthetic stream: {0}")]
    Synthetic(#[from] crate::config::ConfigError),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    let tmp = tmp_name(path);
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

pub(crate) fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes a dataset, one image at a time.
pub struct DatasetWriter {
    dir: PathBuf,
    class_names: Vec<String>,
    yolo: Option<yolo::YoloWriter>,
    coco: Option<coco::CocoWriter>,
    stems: HashSet<(Split, String)>,
    jpeg_quality: u8,
    summary: DatasetSummary,
    jpeg: Vec<u8>,
}

impl DatasetWriter {
    /// Starts a dataset in `dir` (created if missing; it must not hold files yet).
    pub fn create(
        dir: &Path,
        formats: &[Format],
        class_names: &[&str],
    ) -> Result<Self, DatasetError> {
        if class_names.is_empty() {
            return Err(DatasetError::NoClasses);
        }
        if formats.is_empty() {
            return Err(DatasetError::NoFormat);
        }
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
            if entries.next().is_some() {
                return Err(DatasetError::NotEmpty(dir.to_path_buf()));
            }
        }
        for split in Split::ALL {
            let d = dir.join("images").join(split.name());
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        let names: Vec<String> = class_names.iter().map(|s| s.to_string()).collect();
        let yolo = if formats.contains(&Format::YoloSeg) {
            Some(yolo::YoloWriter::create(dir)?)
        } else {
            None
        };
        let coco = if formats.contains(&Format::Coco) {
            Some(coco::CocoWriter::create(dir)?)
        } else {
            None
        };
        Ok(DatasetWriter {
            dir: dir.to_path_buf(),
            summary: DatasetSummary {
                per_class: vec![0; names.len()],
                ..Default::default()
            },
            class_names: names,
            yolo,
            coco,
            stems: HashSet::new(),
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            jpeg: Vec::new(),
        })
    }

    /// JPEG quality (1..=100) of the images written from now on.
    pub fn with_jpeg_quality(mut self, quality: u8) -> Self {
        self.jpeg_quality = quality.clamp(1, 100);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds one image and its instances to `split`. `stem` names the files (`<stem>.jpg`, ...).
    pub fn add(
        &mut self,
        split: Split,
        stem: &str,
        image: &RgbImage,
        labels: &[Labeled],
    ) -> Result<(), DatasetError> {
        let stem_ok = !stem.is_empty()
            && stem != "."
            && stem != ".."
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !stem_ok {
            return Err(DatasetError::BadStem(stem.to_string()));
        }
        let (w, h) = image.dimensions();
        for l in labels {
            if l.class_id as usize >= self.class_names.len() {
                return Err(DatasetError::BadClass {
                    stem: stem.to_string(),
                    class_id: l.class_id,
                    classes: self.class_names.len(),
                });
            }
            if (l.mask.image_width(), l.mask.image_height()) != (w, h) {
                return Err(DatasetError::MaskSize {
                    stem: stem.to_string(),
                    mask_w: l.mask.image_width(),
                    mask_h: l.mask.image_height(),
                    width: w,
                    height: h,
                });
            }
        }
        if !self.stems.insert((split, stem.to_string())) {
            return Err(DatasetError::DuplicateStem {
                split: split.name(),
                stem: stem.to_string(),
            });
        }
        let file_name = format!("{stem}.jpg");
        let path = self.dir.join("images").join(split.name()).join(&file_name);
        self.jpeg.clear();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut self.jpeg, self.jpeg_quality)
            .encode_image(image)
            .map_err(|source| DatasetError::Encode {
                path: path.clone(),
                source,
            })?;
        write_atomic(&path, &self.jpeg)?;
        let kept: Vec<Labeled> = labels
            .iter()
            .filter(|l| !l.mask.is_empty())
            .copied()
            .collect();
        self.summary.dropped += (labels.len() - kept.len()) as u64;
        if let Some(y) = &mut self.yolo {
            y.add(split, stem, w, h, &kept)?;
        }
        if let Some(c) = &mut self.coco {
            c.add(split, &file_name, w, h, &kept)?;
        }
        let i = split.index();
        self.summary.images[i] += 1;
        self.summary.instances[i] += kept.len() as u64;
        for l in &kept {
            self.summary.per_class[l.class_id as usize] += 1;
        }
        Ok(())
    }

    /// Writes the index files (`data.yaml`, the COCO JSON) and returns what was written.
    pub fn finish(self) -> Result<DatasetSummary, DatasetError> {
        let names: Vec<&str> = self.class_names.iter().map(|s| s.as_str()).collect();
        if let Some(y) = self.yolo {
            y.finish(&self.dir, &names)?;
        }
        if let Some(c) = self.coco {
            c.finish(&names)?;
        }
        Ok(self.summary)
    }
}
