//! A training set rendered by the synthetic generator: many short streams, sparse samples.

use super::{DatasetError, DatasetSummary, DatasetWriter, Format, Labeled, Split};
use crate::capture::synthetic::{
    ConditionOverrides, EventRates, SyntheticConfig, SyntheticSource, CLASS_NAMES,
};
use crate::capture::GroundTruth;
use crate::config::{check_range, ConfigError};
use image::RgbImage;
use std::path::Path;

/// How to sample a synthetic dataset.
///
/// Consecutive frames are near-duplicates, so the export takes one frame every `stride` frames
/// (1.5 s at 30 fps by default) from each of several independent streams (`per_stream` frames
/// each, every stream with its own seed and so its own drives, conditions and events). Whole
/// streams go to the validation split, so no validation image has a near-twin in training;
/// with too few streams for that, single frames are drawn instead.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthExport {
    /// Images to write, both splits together.
    pub frames: u64,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    /// Share of images in the validation split (0..1).
    pub val_fraction: f32,
    /// Frames of a stream between two samples.
    pub stride: u64,
    /// Samples per stream.
    pub per_stream: u64,
    pub formats: Vec<Format>,
    pub jpeg_quality: u8,
    /// Conditions forced on every stream.
    pub conditions: ConditionOverrides,
    /// Instances with fewer visible pixels are not labelled.
    pub min_instance_px: u32,
    /// Keep this share of frames that show no instance at all (background images).
    pub empty_keep: f32,
}

impl Default for SynthExport {
    fn default() -> Self {
        SynthExport {
            frames: 2000,
            seed: 1,
            width: 1280,
            height: 720,
            val_fraction: 0.1,
            stride: 45,
            per_stream: 100,
            formats: vec![Format::YoloSeg],
            jpeg_quality: super::DEFAULT_JPEG_QUALITY,
            conditions: ConditionOverrides::default(),
            min_instance_px: 20,
            empty_keep: 0.3,
        }
    }
}

impl SynthExport {
    fn config(&self, seed: u64) -> SyntheticConfig {
        SyntheticConfig {
            seed,
            width: self.width,
            height: self.height,
            realtime: false,
            min_instance_px: self.min_instance_px,
            // A training set wants more of the events than a realistic stream has.
            events: EventRates {
                rare_class_per_hour: 90.0,
                occlusion_per_hour: 90.0,
                crowd_per_hour: 45.0,
                novel_scenery_per_hour: 20.0,
                boring_per_hour: 4.0,
                ..EventRates::default()
            },
            conditions: self.conditions.clone(),
            ..SyntheticConfig::default()
        }
    }

    /// Checks the options (keys named as the `edgesift synth` flags).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("frames", self.frames, 1, 10_000_000)?;
        check_range("val_fraction", self.val_fraction, 0.0, 1.0)?;
        check_range("stride", self.stride, 1, 1_000_000)?;
        check_range("per_stream", self.per_stream, 1, 10_000_000)?;
        check_range("jpeg_quality", self.jpeg_quality, 1, 100)?;
        check_range("empty_keep", self.empty_keep, 0.0, 1.0)?;
        if self.formats.is_empty() {
            return Err(ConfigError::new("formats", "name at least one format"));
        }
        self.config(self.seed).validate()
    }
}

/// One image the export just wrote, for progress reports and previews.
pub struct Exported<'a> {
    /// Images written so far, and in all.
    pub done: u64,
    pub total: u64,
    pub split: Split,
    pub stem: &'a str,
    pub image: &'a RgbImage,
    pub truth: &'a GroundTruth,
}

/// Renders and writes the dataset into `dir`; `observe` sees each image after it is written.
pub fn export_synthetic(
    dir: &Path,
    opts: &SynthExport,
    mut observe: impl FnMut(Exported<'_>),
) -> Result<DatasetSummary, DatasetError> {
    opts.validate()?;
    let mut writer = DatasetWriter::create(dir, &opts.formats, &CLASS_NAMES)?
        .with_jpeg_quality(opts.jpeg_quality);
    let per_stream = opts.per_stream.max(1);
    let streams = opts.frames.div_ceil(per_stream);
    let val_fraction = opts.val_fraction.clamp(0.0, 1.0);
    let val_streams = (streams as f32 * val_fraction).round() as u64;
    // Too few streams to give whole ones to validation: draw single frames instead.
    let by_frame = val_fraction > 0.0 && (val_streams == 0 || val_streams == streams);
    let mut image = RgbImage::new(1, 1);
    let mut done = 0u64;
    for k in 0..streams {
        let n = per_stream.min(opts.frames - done);
        let seed = crate::capture::synthetic::stream_seed(opts.seed, k);
        let mut src = SyntheticSource::new(opts.config(seed))?;
        let stride = opts.stride.max(1);
        // Start each stream at a different phase.
        src.skip(seed % stride);
        let mut written = 0u64;
        let mut tries = 0u64;
        while written < n && tries < n * 20 {
            tries += 1;
            src.skip(stride - 1);
            let Some(truth) = src.render_next(&mut image) else {
                break;
            };
            let frame = src.frame_index() - 1;
            let h = crate::capture::synthetic::stream_seed(seed, frame);
            if truth.instances.is_empty()
                && (h >> 40) as f32 / (1u64 << 24) as f32 >= opts.empty_keep
            {
                continue;
            }
            let split = if by_frame {
                if (h & 0xffff) as f32 / 65536.0 < val_fraction {
                    Split::Val
                } else {
                    Split::Train
                }
            } else if k >= streams - val_streams {
                Split::Val
            } else {
                Split::Train
            };
            let labels: Vec<Labeled> = truth
                .instances
                .iter()
                .map(|i| Labeled {
                    class_id: i.class_id,
                    bbox: i.bbox,
                    mask: &i.mask,
                })
                .collect();
            let stem = format!("s{k:04}_f{frame:07}");
            writer.add(split, &stem, &image, &labels)?;
            written += 1;
            done += 1;
            observe(Exported {
                done,
                total: opts.frames,
                split,
                stem: &stem,
                image: &image,
                truth: &truth,
            });
        }
    }
    writer.finish()
}
