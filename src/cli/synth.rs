//! `edgesift synth`: a training dataset (yolo-seg and/or COCO) rendered by the synthetic
//! road-scene generator.

use anyhow::Context;
use edgesift::capture::synthetic::{Environment, TimeOfDay, Weather, CLASS_NAMES};
use edgesift::dataset::{export_synthetic, Format, SynthExport};
use edgesift::overlay;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct SynthArgs {
    /// Directory to write the dataset into (created; must be empty).
    #[arg(long)]
    out: PathBuf,
    /// Images to write, train and val together.
    #[arg(long, default_value_t = 2000)]
    frames: u64,
    /// Seed of the family of streams the images are sampled from.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Label format; repeat or comma-separate for both.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "yolo-seg")]
    format: Vec<FormatArg>,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1280)]
    width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 720)]
    height: u32,
    /// Share of the images in the validation split (whole streams go to it).
    #[arg(long, default_value_t = 0.1, value_parser = super::unit_interval)]
    val_fraction: f32,
    /// Frames (at 30 fps) between two samples of a stream.
    #[arg(long, default_value_t = 45)]
    stride: u64,
    /// Samples per stream; every stream has its own seed, drives, conditions and events.
    #[arg(long, default_value_t = 100)]
    per_stream: u64,
    /// JPEG quality of the images (1..=100).
    #[arg(long, default_value_t = edgesift::dataset::DEFAULT_JPEG_QUALITY, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Instances with fewer visible pixels are not labelled.
    #[arg(long, default_value_t = 20)]
    min_pixels: u32,
    /// Only this time of day.
    #[arg(long, value_enum)]
    time_of_day: Option<TimeArg>,
    /// Only this weather.
    #[arg(long, value_enum)]
    weather: Option<WeatherArg>,
    /// Only this kind of road.
    #[arg(long, value_enum)]
    environment: Option<EnvArg>,
    /// Also draw the masks and boxes of the first N images into OUT/preview/ (PNG).
    #[arg(long, default_value_t = 0)]
    preview: u64,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    YoloSeg,
    Coco,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TimeArg {
    Day,
    Dusk,
    Night,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WeatherArg {
    Clear,
    Fog,
    Rain,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EnvArg {
    Urban,
    Suburban,
    Rural,
}

pub fn run(a: SynthArgs) -> anyhow::Result<ExitCode> {
    let mut formats: Vec<Format> = a
        .format
        .iter()
        .map(|f| match f {
            FormatArg::YoloSeg => Format::YoloSeg,
            FormatArg::Coco => Format::Coco,
        })
        .collect();
    formats.dedup();
    let mut opts = SynthExport {
        frames: a.frames,
        seed: a.seed,
        width: a.width,
        height: a.height,
        val_fraction: a.val_fraction,
        stride: a.stride,
        per_stream: a.per_stream,
        formats,
        jpeg_quality: a.quality,
        min_instance_px: a.min_pixels,
        ..SynthExport::default()
    };
    opts.conditions.time_of_day = a.time_of_day.map(|t| match t {
        TimeArg::Day => TimeOfDay::Day,
        TimeArg::Dusk => TimeOfDay::Dusk,
        TimeArg::Night => TimeOfDay::Night,
    });
    opts.conditions.weather = a.weather.map(|w| match w {
        WeatherArg::Clear => Weather::Clear,
        WeatherArg::Fog => Weather::Fog,
        WeatherArg::Rain => Weather::Rain,
    });
    opts.conditions.environment = a.environment.map(|e| match e {
        EnvArg::Urban => Environment::Urban,
        EnvArg::Suburban => Environment::Suburban,
        EnvArg::Rural => Environment::Rural,
    });
    opts.validate()
        .map_err(|e| anyhow::anyhow!("--{}", e.to_string().replace('_', "-")))?;
    let preview_dir = a.out.join("preview");
    let mut preview_err = None;
    let mut last_log = std::time::Instant::now();
    let started = std::time::Instant::now();
    let summary = export_synthetic(&a.out, &opts, |e| {
        if e.done <= a.preview && preview_err.is_none() {
            let r = (|| -> anyhow::Result<()> {
                std::fs::create_dir_all(&preview_dir)?;
                let mut img = e.image.clone();
                let items: Vec<overlay::Item> = e
                    .truth
                    .instances
                    .iter()
                    .map(|i| overlay::Item {
                        class_id: i.class_id,
                        bbox: i.bbox,
                        mask: Some(&i.mask),
                        label: CLASS_NAMES[i.class_id as usize].to_string(),
                    })
                    .collect();
                overlay::draw(&mut img, &items);
                let path = preview_dir.join(format!("{}.png", e.stem));
                img.save(&path)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(())
            })();
            preview_err = r.err();
        }
        if last_log.elapsed().as_secs() >= 5 || e.done == e.total {
            last_log = std::time::Instant::now();
            tracing::info!(
                done = e.done,
                total = e.total,
                "rendering synthetic dataset"
            );
        }
    })
    .with_context(|| format!("writing the dataset into {}", a.out.display()))?;
    if let Some(e) = preview_err {
        return Err(e.context("writing previews"));
    }
    println!(
        "wrote {} train + {} val images, {} + {} instances, into {} in {:.0} s",
        summary.images[0],
        summary.images[1],
        summary.instances[0],
        summary.instances[1],
        a.out.display(),
        started.elapsed().as_secs_f64()
    );
    for (name, n) in CLASS_NAMES.iter().zip(&summary.per_class) {
        println!("  {name:<13} {n}");
    }
    if opts.formats.contains(&Format::YoloSeg) {
        println!(
            "train with: yolo segment train data={}",
            a.out.join("data.yaml").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
