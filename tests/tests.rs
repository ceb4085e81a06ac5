//! The one integration-test binary (see `autotests = false` in Cargo.toml): candle links once.

// Shared helpers: fixture paths, temporary directories.
mod util;

// YOLOv8-seg against ultralytics: raw outputs, letterbox and final instances.
mod parity;
// Model files that are wrong in every way a user can get them wrong.
mod model_errors;
// The COCO evaluator against pycocotools.
mod eval;
// The store: round trips, quota and free-space eviction, crash recovery, SIGKILL, check/ls/stats.
mod store;
// The replay source: image directories, raw and MJPEG dumps, pacing, bad frames.
mod replay;
// The synthetic road-scene source: determinism, ground truth, event rates.
mod synthetic;
// Dataset export (yolo-seg, COCO) and the COCO reader.
mod dataset;
// `edgesift run` end to end: synthetic and replay runs, bad input, SIGKILL and restart, quota.
mod daemon;
// Frame selection against the synthetic stream's ground-truth events.
mod select;
// `edgesift run` under systemd: sd_notify, SIGTERM drain, SIGHUP reload, the metrics endpoint.
mod daemon_ops;
// edgesift quantize: f16-weight models agree with f32.
mod quantize;
// edgesift bench-model: the scripts' last line and the per-convolution table.
mod bench_model;
// MobileSAM against its Python code: seeded weights, resize, embeddings, masks.
mod mobilesam;
// The TFLite backend (libLiteRt.so loaded at run time) against candle on the same weights.
mod tflite;
