//! `edgesift stats`: what the store holds.

use edgesift::store::{StoreConfig, StoreReader};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct StatsArgs {
    /// The store's data directory.
    #[arg(long, default_value_os_t = StoreConfig::default().dir)]
    dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: StatsArgs) -> anyhow::Result<ExitCode> {
    let s = StoreReader::open(&a.dir)?.stats()?;
    let time = |ns: Option<i64>| ns.map(super::ls::rfc3339);
    if a.json {
        let j = serde_json::json!({
            "dir": a.dir.display().to_string(),
            "samples": s.samples,
            "instances": s.instances,
            "bytes": s.bytes,
            "quota_bytes": s.quota_bytes,
            "index_bytes": s.index_bytes,
            "free_bytes": s.free_bytes,
            "oldest": time(s.oldest_unix_ns),
            "newest": time(s.newest_unix_ns),
            "by_class": s.by_class.iter().map(|(c, samples, instances)| serde_json::json!({
                "class": c, "samples": samples, "instances": instances})).collect::<Vec<_>>(),
            "by_reason": s.by_reason.iter().map(|(r, n)| serde_json::json!({
                "reason": r, "samples": n})).collect::<Vec<_>>(),
            "next_sample_id": s.next_sample_id,
            "schema_version": s.schema_version,
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("store      {}", a.dir.display());
    println!("samples    {} ({} instances)", s.samples, s.instances);
    println!(
        "bytes      {} in files, {} against the quota, index {}",
        human_bytes(s.bytes),
        human_bytes(s.quota_bytes),
        human_bytes(s.index_bytes)
    );
    match s.free_bytes {
        Some(f) => println!("free       {} on the filesystem", human_bytes(f)),
        None => println!("free       unknown"),
    }
    match (time(s.oldest_unix_ns), time(s.newest_unix_ns)) {
        (Some(a), Some(b)) => println!("span       {a} .. {b}"),
        _ => println!("span       (empty)"),
    }
    if !s.by_class.is_empty() {
        println!("by class   {:<20} {:>8} {:>10}", "", "samples", "instances");
        for (c, samples, instances) in &s.by_class {
            println!("           {c:<20} {samples:>8} {instances:>10}");
        }
    }
    if !s.by_reason.is_empty() {
        println!("by reason  {:<20} {:>8}", "", "samples");
        for (r, n) in &s.by_reason {
            println!("           {r:<20} {n:>8}");
        }
    }
    println!(
        "schema     v{} (next sample id {})",
        s.schema_version, s.next_sample_id
    );
    Ok(ExitCode::SUCCESS)
}

/// `1536` -> `1.5 KiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
