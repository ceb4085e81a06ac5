//! What goes in and what comes out of the store, and the sidecar JSON format.
//!
//! The input types ([`NewSample`], [`StoredInstance`]) borrow from the pipeline's own types so a
//! sample costs no copy on its way in; the output types ([`SampleRecord`], [`InstanceRecord`])
//! are read back from the index. The sidecar JSON ([`MetaFile`]) is the on-disk format: upstream
//! types do not derive `Serialize`, so refactoring a stage cannot change it by accident.

use super::config::ImageFormat;
use super::StoreError;
use crate::capture::{Origin, Timestamp};
use crate::geometry::{BBox, Mask, Rle};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A sample's id: unique within a store, increasing in the order samples were stored.
pub type SampleId = i64;

/// `format` of every sidecar JSON this version writes.
pub const META_FORMAT: &str = "edgesift.sample/1";

/// What the pipeline hands over for one kept frame.
#[derive(Debug, Clone, Copy)]
pub struct NewSample<'a> {
    /// Position of the frame in the capture stream.
    pub seq: u64,
    pub captured: Timestamp,
    pub origin: &'a Origin,
    pub image: &'a image::RgbImage,
    /// Each instance's mask must be of the image's size. At most 65535 (the PNG's id range).
    pub instances: &'a [StoredInstance<'a>],
    /// Selection value; drives `lowest_value` eviction (higher is kept longer).
    pub value: f32,
    /// Short tags saying why the frame was kept, e.g. `rare_class`, `occlusion`.
    pub reasons: &'a [String],
    /// Every strategy's score / verdict / reason, stored verbatim.
    pub selection: &'a serde_json::Value,
    pub model: ModelRef<'a>,
}

/// The model that produced the instances.
#[derive(Debug, Clone, Copy)]
pub struct ModelRef<'a> {
    pub name: &'a str,
    /// Hex sha256 of the weights file.
    pub sha256: &'a str,
}

/// One instance of a [`NewSample`].
#[derive(Debug, Clone, Copy)]
pub struct StoredInstance<'a> {
    pub class_id: u32,
    pub class_name: &'a str,
    pub score: f32,
    pub bbox: BBox,
    pub mask: &'a Mask,
    /// `[refine]`'s mask for this instance (MobileSAM prompted with its box), if any.
    pub refined: Option<RefinedMask<'a>>,
}

/// A second, refined mask of an instance: stored in the sidecar (`mask_refined`) and painted into
/// the sample's refined instance-id PNG.
#[derive(Debug, Clone, Copy)]
pub struct RefinedMask<'a> {
    /// Of the image's size.
    pub mask: &'a Mask,
    /// The refining model's estimate of the mask's IoU with the object.
    pub predicted_iou: f32,
}

/// One stored file of a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// A stored sample as the index knows it, with absolute file paths.
#[derive(Debug, Clone)]
pub struct SampleRecord {
    pub id: SampleId,
    pub seq: u64,
    /// Wall-clock capture time, nanoseconds since 1970-01-01 UTC.
    pub captured_unix_ns: i64,
    /// The source's monotonic capture time.
    pub captured_monotonic: Duration,
    pub source: String,
    pub source_file: Option<String>,
    pub source_index: u64,
    pub model_name: String,
    pub model_sha256: String,
    pub value: f32,
    pub reasons: Vec<String>,
    pub selection: serde_json::Value,
    pub width: u32,
    pub height: u32,
    pub image_format: ImageFormat,
    pub image: StoredFile,
    /// The instance-id PNG (16-bit grey; 0 background, `i + 1` instance `i`).
    pub masks: StoredFile,
    /// The sidecar JSON.
    pub meta: StoredFile,
    /// The refined instance-id PNG (same encoding as `masks`, only instances with a refined
    /// mask painted), for samples stored with `[refine]` masks.
    pub refined: Option<StoredFile>,
    pub instances: Vec<InstanceRecord>,
}

/// One instance of a stored sample.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    /// Position in the sample; `index + 1` is the instance's value in the masks PNG.
    pub index: u32,
    pub class_id: u32,
    pub class_name: String,
    pub score: f32,
    pub bbox: BBox,
    /// Mask pixels.
    pub area: u64,
    /// The full mask (not cut by overlaps), COCO RLE.
    pub rle: Rle,
    /// `[refine]`'s mask, if the instance was refined.
    pub refined: Option<RefinedRecord>,
}

/// A stored refined mask.
#[derive(Debug, Clone)]
pub struct RefinedRecord {
    /// The full mask, COCO RLE.
    pub rle: Rle,
    /// The refining model's estimate of the mask's IoU with the object.
    pub predicted_iou: f32,
}

impl InstanceRecord {
    /// The mask decoded from its RLE.
    pub fn mask(&self) -> Mask {
        self.rle.to_mask()
    }
}

impl SampleRecord {
    pub fn captured_wall(&self) -> SystemTime {
        unix_ns_to_system_time(self.captured_unix_ns)
    }

    /// Capture time as RFC 3339 in UTC, e.g. `2026-11-24T10:15:02.5Z`.
    pub fn captured_rfc3339(&self) -> String {
        rfc3339(self.captured_unix_ns)
    }

    /// Decodes the stored frame.
    pub fn load_image(&self) -> Result<image::RgbImage, StoreError> {
        let bytes =
            std::fs::read(&self.image.path).map_err(|e| StoreError::io(&self.image.path, e))?;
        image::load_from_memory(&bytes)
            .map(|i| i.into_rgb8())
            .map_err(|e| StoreError::Corrupt {
                what: self.image.path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Decodes the instance-id PNG: `width * height` ids, row-major.
    pub fn load_instance_ids(&self) -> Result<Vec<u16>, StoreError> {
        self.load_ids(&self.masks)
    }

    /// Decodes the refined instance-id PNG (`None` for a sample without refined masks).
    pub fn load_refined_ids(&self) -> Result<Option<Vec<u16>>, StoreError> {
        self.refined.as_ref().map(|f| self.load_ids(f)).transpose()
    }

    fn load_ids(&self, file: &StoredFile) -> Result<Vec<u16>, StoreError> {
        let bytes = std::fs::read(&file.path).map_err(|e| StoreError::io(&file.path, e))?;
        let (w, h, ids) =
            super::encode::decode_instance_ids(&bytes).map_err(|reason| StoreError::Corrupt {
                what: file.path.display().to_string(),
                reason,
            })?;
        if (w, h) != (self.width, self.height) {
            return Err(StoreError::Corrupt {
                what: file.path.display().to_string(),
                reason: format!(
                    "masks are {w}x{h}, the sample is {}x{}",
                    self.width, self.height
                ),
            });
        }
        Ok(ids)
    }
}

impl SampleRecord {
    /// The record as JSON (the sidecar's layout, with absolute paths), for `edgesift ls --json`
    /// and other tools.
    pub fn to_json(&self) -> serde_json::Value {
        let file = |f: &StoredFile| {
            serde_json::json!({
                "path": f.path.display().to_string(),
                "bytes": f.bytes,
                "sha256": hex(&f.sha256),
            })
        };
        let mut image = file(&self.image);
        image["format"] = self.image_format.name().into();
        image["width"] = self.width.into();
        image["height"] = self.height.into();
        serde_json::json!({
            "id": self.id,
            "seq": self.seq,
            "captured": {
                "wall": self.captured_rfc3339(),
                "unix_ns": self.captured_unix_ns,
                "monotonic_ns": self.captured_monotonic.as_nanos() as u64,
            },
            "source": {
                "source": self.source,
                "file": self.source_file,
                "index": self.source_index,
            },
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "image": image,
            "masks": file(&self.masks),
            "refined_masks": self.refined.as_ref().map(file),
            "meta": file(&self.meta),
            "value": self.value,
            "reasons": self.reasons,
            "selection": self.selection,
            "instances": self.instances.iter().map(|i| serde_json::json!({
                "id": i.index + 1,
                "class_id": i.class_id,
                "class_name": i.class_name,
                "score": i.score,
                "bbox_xyxy": [i.bbox.x1, i.bbox.y1, i.bbox.x2, i.bbox.y2],
                "area": i.area,
                "segmentation": {"size": [i.rle.height, i.rle.width], "counts": i.rle.to_compressed()},
                "mask_refined": i.refined.as_ref().map(|r| serde_json::json!({
                    "predicted_iou": r.predicted_iou,
                    "area": r.rle.area(),
                    "segmentation": {"size": [r.rle.height, r.rle.width], "counts": r.rle.to_compressed()},
                })),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The sidecar JSON of a sample: everything about it except the pixels. Written last, it makes
/// the sample complete; the index row is derived from it (and can be rebuilt from it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MetaFile {
    pub format: String,
    pub id: SampleId,
    pub seq: u64,
    pub captured: CapturedJson,
    pub source: SourceJson,
    pub model: ModelJson,
    pub image: ImageJson,
    pub masks: MasksJson,
    /// The refined instance-id PNG; absent when no instance has a refined mask (and in sidecars
    /// written before `[refine]` had a field of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refined_masks: Option<MasksJson>,
    pub value: f32,
    pub reasons: Vec<String>,
    pub selection: serde_json::Value,
    pub instances: Vec<InstanceJson>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CapturedJson {
    /// RFC 3339, UTC.
    pub wall: String,
    pub unix_ns: i64,
    pub monotonic_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SourceJson {
    pub source: String,
    pub file: Option<String>,
    pub index: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelJson {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ImageJson {
    /// File name, beside the JSON.
    pub file: String,
    /// `jpeg` or `png`.
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MasksJson {
    pub file: String,
    /// How to read the PNG, for a person who finds the file alone.
    pub encoding: String,
    pub bytes: u64,
    pub sha256: String,
}

pub(crate) const REFINED_MASKS_ENCODING: &str = "16-bit grey PNG: 0 background, i+1 = the refined \
     mask (mask_refined) of instances[i]; where they overlap the higher score wins (equal scores: \
     the earlier instance)";

pub(crate) const MASKS_ENCODING: &str = "16-bit grey PNG: 0 background, i+1 = instances[i]; \
     where instances overlap the higher score wins (equal scores: the earlier instance)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InstanceJson {
    /// Value of this instance in the masks PNG (index + 1).
    pub id: u32,
    pub class_id: u32,
    pub class_name: String,
    pub score: f32,
    /// Box corners `[x1, y1, x2, y2]` in pixels (COCO's `[x, y, w, h]` is `x1, y1, x2-x1, y2-y1`).
    pub bbox_xyxy: [f32; 4],
    pub area: u64,
    /// COCO RLE, pycocotools' compressed string form.
    pub segmentation: RleJson,
    /// `[refine]`'s mask for this instance, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_refined: Option<RefinedJson>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RefinedJson {
    /// The refining model's estimate of the mask's IoU with the object.
    pub predicted_iou: f32,
    pub area: u64,
    pub segmentation: RleJson,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RleJson {
    /// `[height, width]`, as COCO writes it.
    pub size: [u32; 2],
    pub counts: String,
}

pub(crate) fn system_time_to_unix_ns(t: SystemTime) -> i64 {
    let ns: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

pub(crate) fn unix_ns_to_system_time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// RFC 3339 in UTC; a time jiff cannot represent (beyond year 9999) prints as its nanoseconds.
pub(crate) fn rfc3339(unix_ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(unix_ns as i128) {
        Ok(ts) => ts.to_string(),
        Err(_) => format!("@{unix_ns}ns"),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_both_ways_including_before_1970() {
        for ns in [0i64, 1, 1_795_515_302_500_000_000, -1_500_000_000] {
            assert_eq!(system_time_to_unix_ns(unix_ns_to_system_time(ns)), ns);
        }
        assert_eq!(rfc3339(1_795_515_302_500_000_000), "2026-11-24T10:15:02.5Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn hex_round_trips() {
        let b: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(unhex32(&hex(&b)), Some(b));
        assert_eq!(unhex32("zz"), None);
        assert_eq!(unhex32(&"g".repeat(64)), None);
    }
}
