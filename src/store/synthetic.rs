//! Made-up samples for tests, benchmarks and `edgesift store-stress`: a textured frame with
//! overlapping instances of a few classes. Deterministic for a seed.

use super::record::{ModelRef, NewSample, RefinedMask, StoredInstance};
use crate::capture::{Origin, Timestamp};
use crate::geometry::{BBox, Mask, PixelRect};
use std::time::{Duration, SystemTime};

/// The classes the instances are drawn from.
pub const CLASSES: [&str; 4] = ["car", "person", "bicycle", "dog"];

/// One made-up frame with its instances (masks overlap on purpose).
pub struct SyntheticSample {
    pub image: image::RgbImage,
    pub masks: Vec<Mask>,
    pub class_ids: Vec<u32>,
    pub scores: Vec<f32>,
    pub boxes: Vec<BBox>,
    /// Refined masks and their predicted IoU per instance (empty: none; see `with_refined`).
    pub refined: Vec<Option<(Mask, f32)>>,
    pub origin: Origin,
    pub reasons: Vec<String>,
    pub selection: serde_json::Value,
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
}

impl SyntheticSample {
    /// A `width x height` frame with `instances` elliptical instances.
    pub fn new(seed: u64, width: u32, height: u32, instances: usize) -> Self {
        let mut rng = Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            let n = (x.wrapping_mul(31) ^ y.wrapping_mul(17)).wrapping_add(seed as u32) % 64;
            image::Rgb([
                ((x * 255) / width.max(1)) as u8 / 2 + n as u8,
                ((y * 255) / height.max(1)) as u8 / 2 + n as u8,
                (128 + n) as u8,
            ])
        });
        let mut s = SyntheticSample {
            image,
            masks: Vec::new(),
            class_ids: Vec::new(),
            scores: Vec::new(),
            boxes: Vec::new(),
            refined: Vec::new(),
            origin: Origin {
                source: format!("synthetic:seed={seed}"),
                file: None,
                index: seed,
            },
            reasons: Vec::new(),
            selection: serde_json::json!({}),
        };
        for _ in 0..instances {
            let w = 4 + rng.below(width / 3);
            let h = 4 + rng.below(height / 3);
            let x = rng.below(width.saturating_sub(w));
            let y = rng.below(height.saturating_sub(h));
            let rect = PixelRect::new(x, y, w.min(width - x), h.min(height - y));
            let (cx, cy) = (
                rect.x as f32 + rect.width as f32 / 2.0,
                rect.y as f32 + rect.height as f32 / 2.0,
            );
            let (rx, ry) = (rect.width as f32 / 2.0, rect.height as f32 / 2.0);
            let mask = Mask::from_fn(width, height, rect, |px, py| {
                let dx = (px as f32 + 0.5 - cx) / rx;
                let dy = (py as f32 + 0.5 - cy) / ry;
                dx * dx + dy * dy <= 1.0
            });
            s.boxes.push(rect.to_bbox());
            s.masks.push(mask);
            s.class_ids.push(rng.below(CLASSES.len() as u32));
            s.scores.push(0.25 + rng.below(750) as f32 / 1000.0);
        }
        let rare = s.class_ids.contains(&3);
        s.reasons = if rare {
            vec!["rare_class".to_owned()]
        } else {
            vec!["diversity".to_owned()]
        };
        s.selection = serde_json::json!({
            "rarity": {"score": if rare { 0.9 } else { 0.1 }, "keep": rare},
            "diversity": {"score": 0.5, "keep": !rare, "reason": "far from recent frames"},
        });
        s
    }

    /// The same sample with a refined mask (its box, filled) for every other instance, as
    /// `[refine]` would add them.
    pub fn with_refined(mut self) -> Self {
        let (w, h) = self.image.dimensions();
        self.refined = self
            .boxes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (i % 2 == 0).then(|| {
                    let rect = PixelRect::new(
                        b.x1 as u32,
                        b.y1 as u32,
                        (b.x2 - b.x1) as u32,
                        (b.y2 - b.y1) as u32,
                    );
                    (
                        Mask::from_fn(w, h, rect, |_, _| true),
                        0.5 + i as f32 / 100.0,
                    )
                })
            })
            .collect();
        self
    }

    /// Calls `f` with this sample as the pipeline would hand it over.
    pub fn with_sample<R>(
        &self,
        seq: u64,
        wall: SystemTime,
        value: f32,
        f: impl FnOnce(&NewSample) -> R,
    ) -> R {
        let instances: Vec<StoredInstance> = (0..self.masks.len())
            .map(|i| StoredInstance {
                class_id: self.class_ids[i],
                class_name: CLASSES[self.class_ids[i] as usize],
                score: self.scores[i],
                bbox: self.boxes[i],
                mask: &self.masks[i],
                refined: self
                    .refined
                    .get(i)
                    .and_then(|r| r.as_ref())
                    .map(|(m, iou)| RefinedMask {
                        mask: m,
                        predicted_iou: *iou,
                    }),
            })
            .collect();
        let sample = NewSample {
            seq,
            captured: Timestamp {
                monotonic: Duration::from_millis(seq * 33),
                wall,
            },
            origin: &self.origin,
            image: &self.image,
            instances: &instances,
            value,
            reasons: &self.reasons,
            selection: &self.selection,
            model: ModelRef {
                name: "synthetic",
                sha256: "0000000000000000000000000000000000000000000000000000000000000000",
            },
        };
        f(&sample)
    }
}
