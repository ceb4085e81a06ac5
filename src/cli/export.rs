//! `edgesift export`: stored samples as a dataset for labelling and training tools.

use anyhow::{bail, Context};
use edgesift::dataset::{DatasetWriter, Format, Labeled, Split};
use edgesift::store::{Order, Query, SampleRecord, StoreConfig, StoreReader};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The store's data directory.
    #[arg(long, default_value_os_t = StoreConfig::default().dir)]
    dir: PathBuf,
    /// Output directory (created; must be empty).
    #[arg(long)]
    out: PathBuf,
    /// `yolo-seg` (ultralytics: images/, labels/, data.yaml), `coco` (instances JSON with RLE
    /// masks), or both separated by a comma.
    #[arg(long, default_value = "coco")]
    format: String,
    /// Captured at or after this time: RFC 3339 or a UTC date (`2026-11-24`).
    #[arg(long, value_parser = super::ls::parse_time)]
    since: Option<SystemTime>,
    /// Captured before this time (same forms as --since).
    #[arg(long, value_parser = super::ls::parse_time)]
    until: Option<SystemTime>,
    /// Only samples with an instance of this class name.
    #[arg(long)]
    class: Option<String>,
    /// Only samples kept for this reason (e.g. `rare_class`).
    #[arg(long)]
    reason: Option<String>,
    /// Share of the samples put in the `val` split (by sample id, so that re-exporting a grown
    /// store keeps earlier samples in their split).
    #[arg(long, default_value_t = 0.1, value_parser = super::unit_interval)]
    val_fraction: f32,
    /// Which masks label the instances: `detector` (the model's), or `refined` (`[refine]`'s
    /// MobileSAM mask where the instance has one, the detector's otherwise). Boxes stay the
    /// detector's in yolo-seg; COCO derives them from the mask.
    #[arg(long, default_value = "detector", value_parser = ["detector", "refined"])]
    masks: String,
}

pub fn run(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let formats = parse_formats(&a.format)?;
    let reader = StoreReader::open(&a.dir)?;
    let q = Query {
        since: a.since,
        until: a.until,
        class: a.class,
        reason: a.reason,
        limit: None,
        order: Order::OldestFirst,
    };
    let ids = reader.ids(&q)?;
    if ids.is_empty() {
        bail!("no stored sample matches; nothing exported");
    }
    // Class ids are renumbered densely over the classes present, in the models' own order,
    // since samples may come from more than one model.
    let mut classes: BTreeMap<String, u32> = BTreeMap::new();
    for rec in reader.query(&q)? {
        for i in &rec?.instances {
            let e = classes.entry(i.class_name.clone()).or_insert(i.class_id);
            *e = (*e).min(i.class_id);
        }
    }
    let mut names: Vec<(u32, String)> = classes.into_iter().map(|(n, id)| (id, n)).collect();
    names.sort();
    let names: Vec<String> = names.into_iter().map(|(_, n)| n).collect();
    if names.is_empty() {
        bail!(
            "the {} matching samples have no instances; nothing to label",
            ids.len()
        );
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut writer = DatasetWriter::create(&a.out, &formats, &name_refs)
        .with_context(|| format!("creating {}", a.out.display()))?;
    for rec in reader.query(&q)? {
        let rec = rec?;
        add(
            &mut writer,
            &rec,
            &names,
            a.val_fraction,
            a.masks == "refined",
        )
        .with_context(|| format!("sample {} ({})", rec.id, rec.image.path.display()))?;
    }
    let summary = writer.finish()?;
    println!(
        "exported {} train + {} val images, {} instances of {} classes to {} ({})",
        summary.images[0],
        summary.images[1],
        summary.instances[0] + summary.instances[1],
        names.len(),
        a.out.display(),
        formats
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn add(
    writer: &mut DatasetWriter,
    rec: &SampleRecord,
    names: &[String],
    val_fraction: f32,
    refined: bool,
) -> anyhow::Result<()> {
    let image = rec.load_image()?;
    let masks: Vec<_> = rec
        .instances
        .iter()
        .map(|i| match (&i.refined, refined) {
            (Some(r), true) => r.rle.to_mask(),
            _ => i.mask(),
        })
        .collect();
    let labels: Vec<Labeled> = rec
        .instances
        .iter()
        .zip(&masks)
        .map(|(i, mask)| Labeled {
            class_id: names
                .iter()
                .position(|n| *n == i.class_name)
                .expect("every class name was collected") as u32,
            bbox: i.bbox,
            mask,
        })
        .collect();
    writer.add(
        split_of(rec.id, val_fraction),
        &format!("sample-{:08}", rec.id),
        &image,
        &labels,
    )?;
    Ok(())
}

/// A stable pseudo-random split from the sample id.
fn split_of(id: i64, val_fraction: f32) -> Split {
    let h = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    if (h as f64 / (1u64 << 24) as f64) < val_fraction as f64 {
        Split::Val
    } else {
        Split::Train
    }
}

fn parse_formats(s: &str) -> anyhow::Result<Vec<Format>> {
    let mut out = Vec::new();
    for f in s.split(',').map(str::trim) {
        let f = match f {
            "coco" => Format::Coco,
            "yolo-seg" | "yolo" => Format::YoloSeg,
            other => bail!("--format: `{other}` is not one of coco, yolo-seg"),
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}
