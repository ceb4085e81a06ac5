//! Builds the four stages of a run from a validated configuration.
//!
//! Order matters for the operator: the config problems that need no I/O are already caught by
//! `Config::validate`; here the model loads first (the slowest and most likely to fail on a
//! fresh device), then the store opens (crash recovery runs), then the source opens (a camera
//! may wait for its device), so that READY means every stage can work.

use super::{Select, Stages, StoreSink};
use crate::capture::CaptureError;
use crate::config::{Config, ConfigError};
use crate::segment::{Backend, ModelInfo, SegmentError, Segmenter, TfliteSegmenter, YoloSegmenter};
use crate::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A run ready to start, and what the operator should be told about it.
pub struct Assembled {
    pub stages: Stages,
    pub model: ModelInfo,
    /// How long loading the model took.
    pub model_load: Duration,
    /// The source as described in logs and sample metadata.
    pub source: String,
    pub store_dir: PathBuf,
    /// Samples already in the store when it opened.
    pub stored_samples: u64,
}

/// A stage that cannot start. Each of these ends the daemon with a clear message.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("model {path}: {source}")]
    Model {
        path: PathBuf,
        #[source]
        source: SegmentError,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("source: {0}")]
    Source(#[from] CaptureError),
}

/// Loads the model, opens the store and the source. `config_dir` is where the config file
/// lives, for finding a model named by a relative path.
pub fn assemble(cfg: &Config, config_dir: Option<&Path>) -> Result<Assembled, AssembleError> {
    let model_path = cfg
        .model
        .resolve_path(config_dir)
        .map_err(|e| e.within("model"))?;
    let t0 = Instant::now();
    let segmenter = load_model(cfg, &model_path)?;
    let model_load = t0.elapsed();
    let model = segmenter.info().clone();
    tracing::info!(
        model = %model.path.display(),
        sha256 = %&model.sha256[..12.min(model.sha256.len())],
        classes = model.class_names.len(),
        took_ms = model_load.as_millis() as u64,
        "model loaded"
    );

    let store = Store::open(&cfg.store)?;
    let stored_samples = store.len();
    let store_dir = store.dir().to_owned();
    let select = build_select(cfg)?;
    let mut sink: Box<dyn super::Sink> = Box::new(StoreSink::new(store, &model));
    if cfg.refine.enabled {
        sink = Box::new(super::RefineSink::new(sink, load_refiner(cfg, config_dir)?));
    }
    let source = cfg.source.open()?;
    let describe = source.describe();
    tracing::info!(source = %describe, "source open");

    Ok(Assembled {
        stages: Stages {
            source,
            segmenter,
            select,
            sink,
        },
        model,
        model_load,
        source: describe,
        store_dir,
        stored_samples,
    })
}

/// The `[model]` backend: YOLOv8-seg on candle or LiteRT, or MobileSAM's class-agnostic
/// everything mode.
fn load_model(cfg: &Config, path: &Path) -> Result<Box<dyn Segmenter>, AssembleError> {
    let wrap = |source| AssembleError::Model {
        path: path.to_owned(),
        source,
    };
    let backend = cfg.model.parse_backend().map_err(|e| e.within("model"))?;
    if backend == Backend::Tflite {
        let seg = TfliteSegmenter::load(path, cfg.model.tflite_options()).map_err(wrap)?;
        return Ok(Box::new(seg));
    }
    let device = cfg
        .model
        .parse_device()
        .map_err(|e| e.within("model"))?
        .open()
        .map_err(wrap)?;
    if backend == Backend::MobilesamEverything {
        let seg = crate::segment::mobilesam::SamEverything::from_config(path, &device, &cfg.model)
            .map_err(wrap)?;
        return Ok(Box::new(seg));
    }
    let opts = cfg.model.options(device).map_err(|e| e.within("model"))?;
    Ok(Box::new(YoloSegmenter::load(path, opts).map_err(wrap)?))
}

/// MobileSAM for `[refine]` (kept frames' masks), on the CPU.
fn load_refiner(
    cfg: &Config,
    config_dir: Option<&Path>,
) -> Result<crate::segment::mobilesam::Refiner, AssembleError> {
    let path = cfg
        .refine
        .resolve_model(config_dir)
        .map_err(|e| e.within("refine"))?;
    let t0 = Instant::now();
    let refiner =
        crate::segment::mobilesam::Refiner::load(&cfg.refine, &path).map_err(|source| {
            AssembleError::Model {
                path: path.clone(),
                source,
            }
        })?;
    tracing::info!(model = %path.display(), took_ms = t0.elapsed().as_millis() as u64, "refine model loaded");
    Ok(refiner)
}

/// The selection stage as configured by `[select]`.
pub fn build_select(cfg: &Config) -> Result<Box<dyn Select>, ConfigError> {
    Ok(Box::new(super::select_stage::build(cfg)?))
}
