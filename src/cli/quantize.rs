//! `edgesift quantize`: a smaller copy of a model file (convolution weights in f16 or int8; for
//! MobileSAM also its linear layers in int8).

use anyhow::Context;
use edgesift::segment::{quantize, WeightDtype};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct QuantizeArgs {
    /// Model to convert: YOLOv8-seg (scripts/export_ultralytics.py) or MobileSAM
    /// (scripts/export_mobilesam.py), told apart by the file's `arch` metadata and tensor names.
    #[arg(long = "in")]
    input: PathBuf,
    /// Where to write the converted model.
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype of the convolution weights: f16 (BatchNorm and biases stay f32) or int8
    /// (BatchNorm folded, per-output-channel scales; runs on the int8 CPU kernels; MobileSAM:
    /// its linear layers too).
    #[arg(long, default_value = "f16")]
    dtype: WeightDtype,
}

pub fn run(a: QuantizeArgs) -> anyhow::Result<ExitCode> {
    let s = quantize(&a.input, &a.out, a.dtype)
        .with_context(|| format!("converting {} into {}", a.input.display(), a.out.display()))?;
    println!(
        "wrote {}: {} of {} tensors converted, {:.1} MB -> {:.1} MB",
        a.out.display(),
        s.converted,
        s.tensors,
        s.bytes_in as f64 / 1e6,
        s.bytes_out as f64 / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
