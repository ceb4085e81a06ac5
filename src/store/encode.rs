//! Turning a [`NewSample`] into the bytes of its three files.

use super::config::ImageFormat;
use super::layout::{file_name, FileKind};
use super::record::{
    hex, system_time_to_unix_ns, CapturedJson, ImageJson, InstanceJson, MasksJson, MetaFile,
    ModelJson, NewSample, RefinedJson, RleJson, SampleId, SourceJson, StoredInstance,
    MASKS_ENCODING, META_FORMAT, REFINED_MASKS_ENCODING,
};
use super::StoreError;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use sha2::{Digest, Sha256};

/// The files of a sample, ready to write.
pub(crate) struct Encoded {
    pub image: Vec<u8>,
    pub masks: Vec<u8>,
    /// The refined instance-id PNG, when any instance has a refined mask.
    pub refined: Option<Vec<u8>>,
    pub meta: Vec<u8>,
    pub parsed: MetaFile,
}

/// Checks what a programming error upstream could get wrong, so that a bad sample costs one
/// sample rather than a panic.
pub(crate) fn validate(s: &NewSample) -> Result<(), StoreError> {
    let (w, h) = s.image.dimensions();
    if w == 0 || h == 0 {
        return Err(StoreError::BadSample(format!("empty {w}x{h} image")));
    }
    if s.instances.len() > u16::MAX as usize {
        return Err(StoreError::BadSample(format!(
            "{} instances; the masks PNG holds at most 65535",
            s.instances.len()
        )));
    }
    for (i, inst) in s.instances.iter().enumerate() {
        let (mw, mh) = (inst.mask.image_width(), inst.mask.image_height());
        if (mw, mh) != (w, h) {
            return Err(StoreError::BadSample(format!(
                "instance {i}: mask is {mw}x{mh}, image is {w}x{h}"
            )));
        }
        if !inst.score.is_finite() {
            return Err(StoreError::BadSample(format!(
                "instance {i}: score {}",
                inst.score
            )));
        }
        if let Some(r) = &inst.refined {
            let (rw, rh) = (r.mask.image_width(), r.mask.image_height());
            if (rw, rh) != (w, h) {
                return Err(StoreError::BadSample(format!(
                    "instance {i}: refined mask is {rw}x{rh}, image is {w}x{h}"
                )));
            }
            if !r.predicted_iou.is_finite() {
                return Err(StoreError::BadSample(format!(
                    "instance {i}: refined mask's predicted IoU {}",
                    r.predicted_iou
                )));
            }
        }
    }
    if !s.value.is_finite() {
        return Err(StoreError::BadSample(format!("value {}", s.value)));
    }
    Ok(())
}

pub(crate) fn encode(
    s: &NewSample,
    id: SampleId,
    stem: &str,
    format: ImageFormat,
    jpeg_quality: u8,
) -> Result<Encoded, StoreError> {
    validate(s)?;
    let (w, h) = s.image.dimensions();
    let image = encode_image(s.image, format, jpeg_quality)?;
    let masks = encode_instance_ids(w, h, s.instances)?;
    let refined = if s.instances.iter().any(|i| i.refined.is_some()) {
        // Instances without a refined mask paint nothing; ids stay `index + 1`.
        let empty = crate::geometry::Mask::empty(w, h);
        let as_refined: Vec<StoredInstance> = s
            .instances
            .iter()
            .map(|i| StoredInstance {
                mask: i.refined.map_or(&empty, |r| r.mask),
                ..*i
            })
            .collect();
        Some(encode_instance_ids(w, h, &as_refined)?)
    } else {
        None
    };
    let unix_ns = system_time_to_unix_ns(s.captured.wall);
    let parsed = MetaFile {
        format: META_FORMAT.to_owned(),
        id,
        seq: s.seq,
        captured: CapturedJson {
            wall: super::record::rfc3339(unix_ns),
            unix_ns,
            monotonic_ns: s.captured.monotonic.as_nanos().min(i64::MAX as u128) as u64,
        },
        source: SourceJson {
            source: s.origin.source.clone(),
            file: s.origin.file.clone(),
            index: s.origin.index,
        },
        model: ModelJson {
            name: s.model.name.to_owned(),
            sha256: s.model.sha256.to_owned(),
        },
        image: ImageJson {
            file: file_name(stem, FileKind::Image(format)),
            format: format.name().to_owned(),
            width: w,
            height: h,
            bytes: image.len() as u64,
            sha256: hex(&sha256(&image)),
        },
        masks: MasksJson {
            file: file_name(stem, FileKind::Masks),
            encoding: MASKS_ENCODING.to_owned(),
            bytes: masks.len() as u64,
            sha256: hex(&sha256(&masks)),
        },
        refined_masks: refined.as_ref().map(|r| MasksJson {
            file: file_name(stem, FileKind::Refined),
            encoding: REFINED_MASKS_ENCODING.to_owned(),
            bytes: r.len() as u64,
            sha256: hex(&sha256(r)),
        }),
        value: s.value,
        reasons: s.reasons.to_vec(),
        selection: s.selection.clone(),
        instances: s
            .instances
            .iter()
            .enumerate()
            .map(|(i, inst)| {
                let rle = inst.mask.to_rle();
                InstanceJson {
                    id: i as u32 + 1,
                    class_id: inst.class_id,
                    class_name: inst.class_name.to_owned(),
                    score: inst.score,
                    bbox_xyxy: [inst.bbox.x1, inst.bbox.y1, inst.bbox.x2, inst.bbox.y2],
                    area: rle.area(),
                    segmentation: RleJson {
                        size: [h, w],
                        counts: rle.to_compressed(),
                    },
                    mask_refined: inst.refined.map(|r| {
                        let rle = r.mask.to_rle();
                        RefinedJson {
                            predicted_iou: r.predicted_iou,
                            area: rle.area(),
                            segmentation: RleJson {
                                size: [h, w],
                                counts: rle.to_compressed(),
                            },
                        }
                    }),
                }
            })
            .collect(),
    };
    let mut meta = serde_json::to_vec_pretty(&parsed).expect("a MetaFile always serialises");
    meta.push(b'\n');
    Ok(Encoded {
        image,
        masks,
        refined,
        meta,
        parsed,
    })
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn encode_image(
    img: &image::RgbImage,
    format: ImageFormat,
    quality: u8,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    let (w, h) = img.dimensions();
    let r = match format {
        ImageFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .write_image(img.as_raw(), w, h, ExtendedColorType::Rgb8),
        ImageFormat::Png => {
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(img.as_raw(), w, h, ExtendedColorType::Rgb8)
        }
    };
    r.map_err(|e| StoreError::BadSample(format!("cannot encode the {w}x{h} image: {e}")))?;
    Ok(out)
}

/// Paints every instance's id (`index + 1`) into one 16-bit image: lower scores first, so that
/// where instances overlap the higher score wins; among equal scores the earlier instance wins.
pub(crate) fn encode_instance_ids(
    w: u32,
    h: u32,
    instances: &[StoredInstance],
) -> Result<Vec<u8>, StoreError> {
    let mut ids = vec![0u16; w as usize * h as usize];
    let mut order: Vec<usize> = (0..instances.len()).collect();
    order.sort_by(|&a, &b| {
        instances[a]
            .score
            .total_cmp(&instances[b].score)
            .then(b.cmp(&a))
    });
    for i in order {
        instances[i].mask.paint(&mut ids, i as u16 + 1);
    }
    let bytes: Vec<u8> = ids.iter().flat_map(|v| v.to_ne_bytes()).collect();
    // The encoder makes a big-endian copy of its own: two copies of the ids at a time, not three.
    drop(ids);
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&bytes, w, h, ExtendedColorType::L16)
        .map_err(|e| StoreError::BadSample(format!("cannot encode the {w}x{h} masks: {e}")))?;
    Ok(out)
}

/// Reads an instance-id PNG back: `(width, height, ids)`.
pub(crate) fn decode_instance_ids(bytes: &[u8]) -> Result<(u32, u32, Vec<u16>), String> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    match img {
        image::DynamicImage::ImageLuma16(b) => {
            let (w, h) = b.dimensions();
            Ok((w, h, b.into_raw()))
        }
        other => Err(format!("not a 16-bit grey PNG ({:?})", other.color())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BBox, Mask, PixelRect};

    #[test]
    fn overlaps_go_to_the_higher_score_and_ids_survive_png() {
        let (w, h) = (20, 10);
        let a = Mask::from_fn(w, h, PixelRect::new(0, 0, 12, 10), |_, _| true);
        let b = Mask::from_fn(w, h, PixelRect::new(8, 0, 12, 10), |_, _| true);
        let c = Mask::from_fn(w, h, PixelRect::new(0, 0, 2, 2), |_, _| true);
        let inst = |mask, score| StoredInstance {
            class_id: 0,
            class_name: "x",
            score,
            bbox: BBox::default(),
            mask,
            refined: None,
        };
        // b (0.9) beats a (0.5) on columns 8..12; c ties a (0.5) and comes later, so a wins.
        let list = [inst(&a, 0.5), inst(&b, 0.9), inst(&c, 0.5)];
        let png = encode_instance_ids(w, h, &list).unwrap();
        let (dw, dh, ids) = decode_instance_ids(&png).unwrap();
        assert_eq!((dw, dh), (w, h));
        let at = |x: u32, y: u32| ids[(y * w + x) as usize];
        assert_eq!(at(0, 0), 1);
        assert_eq!(at(7, 5), 1);
        assert_eq!(at(8, 5), 2);
        assert_eq!(at(19, 9), 2);
        assert_eq!(ids.iter().filter(|&&v| v == 3).count(), 0);
        // Ids above 255 survive (16 bits, byte order handled by the codec).
        let many: Vec<Mask> = (0..300)
            .map(|i| Mask::from_fn(300, 1, PixelRect::new(i, 0, 1, 1), |_, _| true))
            .collect();
        let list: Vec<_> = many.iter().map(|m| inst(m, 0.5)).collect();
        let (_, _, ids) =
            decode_instance_ids(&encode_instance_ids(300, 1, &list).unwrap()).unwrap();
        assert_eq!(ids, (1..=300).collect::<Vec<u16>>());
    }

    #[test]
    fn decode_refuses_other_pngs() {
        let img = image::RgbImage::new(4, 4);
        let bytes = encode_image(&img, ImageFormat::Png, 90).unwrap();
        assert!(decode_instance_ids(&bytes).is_err());
        assert!(decode_instance_ids(b"not a png").is_err());
    }
}
