//! Subcommands, one file each. Each parses its flags, calls into the library and prints.

mod bench_model;
mod bench_sam;
mod bench_select;
mod check;
mod check_config;
mod devices;
mod eval;
mod export;
mod ls;
mod quantize;
mod run;
mod segment;
mod segment_sam;
mod stats;
mod store_stress;
mod synth;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "edgesift",
    version,
    about = "Keeps only the camera frames worth labelling, with instance masks"
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: capture, segment, select and store until stopped.
    Run(run::RunArgs),
    /// Validate a config file (and find its model) without running anything.
    CheckConfig(check_config::CheckConfigArgs),
    /// Segment one image (or run the bare network on a tensor file, for parity checks).
    Segment(segment::SegmentArgs),
    /// Verify the store: index integrity, every sample's files, no stray or leftover files.
    /// Exits 3 when the store is inconsistent.
    Check(check::CheckArgs),
    /// Write stored samples as a dataset (COCO and/or ultralytics yolo-seg) for labelling.
    Export(export::ExportArgs),
    /// List stored samples, newest first.
    Ls(ls::LsArgs),
    /// Totals of the store: samples, bytes, classes, reasons, time span, free space.
    Stats(stats::StatsArgs),
    /// Insert made-up samples in a loop (crash tests, trying a store out).
    #[command(hide = true)]
    StoreStress(store_stress::StoreStressArgs),
    /// List the video devices (/dev/video*), their stable names and the formats, sizes and
    /// frame rates each offers.
    Devices(devices::DevicesArgs),
    /// Box and mask mAP (COCO-style, as pycocotools computes it) of a model on a dataset split.
    Eval(eval::EvalArgs),
    /// Render a training dataset (yolo-seg and/or COCO) with the synthetic road-scene generator.
    Synth(synth::SynthArgs),
    /// Selection quality on a synthetic stream: events caught vs interval and random sampling.
    BenchSelect(bench_select::BenchSelectArgs),
    /// Time the network alone on a random input (last line: `median_ms <value>`).
    BenchModel(bench_model::BenchModelArgs),
    /// Time MobileSAM's encoder at 1024 and its decoder (one box, a batch of boxes).
    BenchSam(bench_sam::BenchSamArgs),
    /// Write a smaller copy of a model (convolution weights in f16).
    Quantize(quantize::QuantizeArgs),
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(a) => run::run(a),
        Command::CheckConfig(a) => check_config::run(a),
        Command::Segment(a) => segment::run(a),
        Command::Check(a) => check::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Export(a) => export::run(a),
        Command::Stats(a) => stats::run(a),
        Command::StoreStress(a) => store_stress::run(a),
        Command::Devices(a) => devices::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Eval(a) => eval::run(a),
        Command::BenchSelect(a) => bench_select::run(a),
        Command::BenchModel(a) => bench_model::run(a),
        Command::BenchSam(a) => bench_sam::run(a),
        Command::Quantize(a) => quantize::run(a),
    }
}

/// Logs on stderr: human-readable, or journald-friendly under systemd (see `ops::logging`);
/// `RUST_LOG` takes precedence over `-v`.
pub fn init_logging(verbose: u8) {
    edgesift::ops::logging::init(verbose);
}

/// Parses a number in `0..=1` for thresholds.
pub fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between 0 and 1, got {v}"))
    }
}
