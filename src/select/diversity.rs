//! `diversity`: a frame whose scene embedding is far from every recently kept frame.
//!
//! The bank holds the embeddings of the last `bank_size` kept frames. A frame's novelty is the
//! cosine distance to its nearest neighbour in the bank (and among the candidates still waiting
//! in the look-back window, so that one new scene does not make a whole window of near-identical
//! frames novel). With `center`, a running mean of every embedding offered is subtracted first.
//!
//! With `target_ratio` > 0 the threshold adapts after every frame: `τ ← τ · exp(η (fired − r))`,
//! a stochastic approximation whose fixed point is a firing rate of `r`: each novel frame raises
//! the bar a little, each ordinary frame lowers it a very little.

use super::config::DiversityConfig;
use super::verdict::{round, Verdict};
use std::collections::VecDeque;

/// Step of the adaptive threshold (per frame, in log space).
const ADAPT_RATE: f32 = 0.05;
/// Bounds of the adaptive threshold (cosine distance).
const MIN_THRESHOLD: f32 = 1e-4;
const MAX_THRESHOLD: f32 = 2.0;
/// The running mean forgets with this horizon (frames).
const MEAN_HORIZON: f32 = 2000.0;

pub(crate) struct Diversity {
    cfg: DiversityConfig,
    bank: VecDeque<Vec<f32>>,
    mean: Vec<f32>,
    seen: u64,
    threshold: f32,
}

impl Diversity {
    pub fn new(cfg: &DiversityConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            bank: VecDeque::new(),
            mean: Vec::new(),
            seen: 0,
            threshold: cfg.min_distance.max(MIN_THRESHOLD),
        }
    }

    /// Applies new settings, keeping the bank (trimmed) and, while it still adapts from the same
    /// starting point, the learned threshold.
    pub fn reconfigure(&mut self, cfg: &DiversityConfig) {
        if cfg.target_ratio == 0.0 || cfg.min_distance != self.cfg.min_distance {
            self.threshold = cfg.min_distance.max(MIN_THRESHOLD);
        }
        while self.bank.len() > cfg.bank_size {
            self.bank.pop_front();
        }
        self.cfg = cfg.clone();
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Judges `embedding` against the bank and the `pending` embeddings, then learns from it
    /// (running mean, adaptive threshold).
    pub fn evaluate<'a>(
        &mut self,
        embedding: &[f32],
        pending: impl Iterator<Item = &'a [f32]>,
    ) -> Verdict {
        let mut v = Verdict::new("diversity", "novel_scene", self.cfg.weight);
        if embedding.is_empty() || embedding.iter().any(|x| !x.is_finite()) {
            return v.with("note", "no usable embedding");
        }
        if self.mean.len() != embedding.len() {
            // First frame, or a segmenter with another embedding size: start over.
            self.mean = embedding.to_vec();
            self.seen = 0;
            self.bank.clear();
        }
        let kept = self.nearest(embedding, self.bank.iter().map(Vec::as_slice));
        let waiting = self.nearest(embedding, pending);
        // Nothing to compare with: as far as cosine distance goes.
        let distance = match (kept, waiting) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(2.0),
        };
        v.fired = distance >= self.threshold;
        v.score = distance / (distance + self.threshold);
        v = v
            .with("distance", round(distance))
            .with("threshold", round(self.threshold));
        self.learn(embedding, v.fired);
        v
    }

    /// Whether `embedding` is still novel against the bank as it is now (after the frames kept
    /// since it was judged).
    pub fn still_novel(&self, embedding: &[f32]) -> bool {
        self.nearest(embedding, self.bank.iter().map(Vec::as_slice))
            .is_none_or(|d| d >= self.threshold)
    }

    /// Adds a kept frame's embedding, forgetting the oldest beyond `bank_size`.
    pub fn add(&mut self, embedding: &[f32]) {
        if embedding.is_empty() || embedding.len() != self.mean.len() {
            return;
        }
        self.bank.push_back(embedding.to_vec());
        while self.bank.len() > self.cfg.bank_size {
            self.bank.pop_front();
        }
    }

    fn learn(&mut self, embedding: &[f32], fired: bool) {
        self.seen += 1;
        let a = 1.0 / (self.seen as f32).min(MEAN_HORIZON);
        for (m, x) in self.mean.iter_mut().zip(embedding) {
            *m += a * (x - *m);
        }
        if self.cfg.target_ratio > 0.0 {
            let step = ADAPT_RATE * (fired as u8 as f32 - self.cfg.target_ratio);
            self.threshold = (self.threshold * step.exp()).clamp(MIN_THRESHOLD, MAX_THRESHOLD);
        }
    }

    /// Smallest cosine distance from `x` to any of `others` of the same length.
    fn nearest<'a>(&self, x: &[f32], others: impl Iterator<Item = &'a [f32]>) -> Option<f32> {
        let center = self.cfg.center && self.mean.len() == x.len();
        let xc = |i: usize| x[i] - if center { self.mean[i] } else { 0.0 };
        let nx: f32 = (0..x.len()).map(|i| xc(i) * xc(i)).sum::<f32>().sqrt();
        let mut best: Option<f32> = None;
        for b in others {
            if b.len() != x.len() {
                continue;
            }
            let (mut dot, mut nb) = (0.0f32, 0.0f32);
            for (i, &bv) in b.iter().enumerate() {
                let bc = bv - if center { self.mean[i] } else { 0.0 };
                dot += xc(i) * bc;
                nb += bc * bc;
            }
            let denom = nx * nb.sqrt();
            let d = if denom > 1e-12 {
                1.0 - (dot / denom).clamp(-1.0, 1.0)
            } else {
                // A vector equal to the mean: call it identical, not novel.
                0.0
            };
            best = Some(best.map_or(d, |b: f32| b.min(d)));
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min_distance: f32, target_ratio: f32) -> DiversityConfig {
        DiversityConfig {
            min_distance,
            target_ratio,
            center: false,
            ..Default::default()
        }
    }

    #[test]
    fn fixed_threshold_fires_on_frames_far_from_the_bank() {
        let mut d = Diversity::new(&cfg(0.2, 0.0));
        let a = [1.0, 0.0, 0.0];
        // Empty bank: everything is novel.
        assert!(d.evaluate(&a, std::iter::empty()).fired);
        d.add(&a);
        let near = [1.0, 0.1, 0.0];
        let v = d.evaluate(&near, std::iter::empty());
        assert!(!v.fired, "{v:?}");
        assert!(v.score < 0.5);
        let far = [0.0, 1.0, 0.0];
        let v = d.evaluate(&far, std::iter::empty());
        assert!(v.fired);
        assert!((v.detail["distance"].as_f64().unwrap() - 1.0).abs() < 1e-4);
        assert!(v.score > 0.5);
        // A pending candidate counts as seen.
        let v = d.evaluate(&far, [&far[..]].into_iter());
        assert!(!v.fired);
        assert_eq!(d.threshold(), 0.2);
    }

    #[test]
    fn bank_is_bounded_and_forgets_the_oldest() {
        let mut d = Diversity::new(&DiversityConfig {
            bank_size: 2,
            ..cfg(0.5, 0.0)
        });
        let e = |i: usize| {
            let mut v = vec![0.0; 4];
            v[i] = 1.0;
            v
        };
        d.evaluate(&e(0), std::iter::empty());
        for i in 0..3 {
            d.add(&e(i));
        }
        assert_eq!(d.bank.len(), 2);
        assert!(d.still_novel(&e(0)), "the oldest was forgotten");
        assert!(!d.still_novel(&e(2)));
        d.reconfigure(&DiversityConfig {
            bank_size: 1,
            ..cfg(0.5, 0.0)
        });
        assert!(d.still_novel(&e(1)));
    }

    #[test]
    fn adaptive_threshold_holds_the_target_ratio() {
        // A random walk of embeddings: the fire rate settles near the target whatever the scale.
        let mut d = Diversity::new(&cfg(0.5, 0.05));
        let mut state = 12345u64;
        let mut rnd = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let mut x = vec![0.0f32; 16];
        let (mut fired, n) = (0, 20_000);
        for i in 0..n {
            for v in x.iter_mut() {
                *v += 0.05 * rnd();
            }
            let v = d.evaluate(&x, std::iter::empty());
            if v.fired {
                d.add(&x);
                if i >= n / 2 {
                    fired += 1;
                }
            }
        }
        let rate = fired as f32 / (n / 2) as f32;
        assert!((0.035..0.065).contains(&rate), "rate {rate}");
    }

    #[test]
    fn centering_separates_embeddings_that_share_a_large_common_part() {
        let mut plain = Diversity::new(&cfg(0.05, 0.0));
        let mut centered = Diversity::new(&DiversityConfig {
            center: true,
            ..cfg(0.05, 0.0)
        });
        // Positive features with a big shared offset; the scenes differ in a small part.
        let scene = |k: usize, j: f32| {
            let mut v = vec![10.0f32; 8];
            v[k] += 1.0 + j;
            v
        };
        for i in 0..200 {
            let e = scene(i % 4, (i % 7) as f32 * 0.01);
            plain.evaluate(&e, std::iter::empty());
            centered.evaluate(&e, std::iter::empty());
        }
        plain.add(&scene(0, 0.0));
        centered.add(&scene(0, 0.0));
        let other = scene(1, 0.0);
        assert!(!plain.evaluate(&other, std::iter::empty()).fired);
        assert!(centered.evaluate(&other, std::iter::empty()).fired);
    }

    #[test]
    fn missing_or_broken_embeddings_never_fire() {
        let mut d = Diversity::new(&cfg(0.1, 0.0));
        assert!(!d.evaluate(&[], std::iter::empty()).fired);
        assert!(!d.evaluate(&[f32::NAN, 1.0], std::iter::empty()).fired);
    }
}
