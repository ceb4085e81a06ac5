//! edgesift: keeps only the camera frames worth labelling, with instance masks, on the computer of
//! a drone, robot or vehicle.
//!
//! The pipeline, one module per stage (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//! capture (v4l | replay | synthetic) -> segment (yolov8-seg on candle) -> select -> store
//! ```
//!
//! - [`capture`]: frame sources producing [`capture::Frame`]s.
//! - [`segment`]: the instance-segmentation model and its pre/post-processing, producing
//!   [`segment::Detections`].
//! - [`select`]: the strategies and budget that decide which frames are kept, and why.
//! - [`store`]: crash-safe sample files behind an SQLite index, with a quota.
//! - [`ops`]: what runs around the pipeline: systemd, signals, metrics, logs, time.
//! - [`dataset`]: training datasets (ultralytics yolo-seg, COCO) written from frames with masks.
//! - [`geometry`]: boxes, masks and COCO run-length encoding, shared by every stage.
//! - [`pool`]: the one CPU pool the stages' heavy work runs on, beside the network's.

pub mod capture;
pub mod config;
pub mod dataset;
pub mod eval;
pub mod geometry;
pub mod ops;
pub mod overlay;
pub mod pipeline;
pub mod pool;
pub mod segment;
pub mod select;
pub mod store;
