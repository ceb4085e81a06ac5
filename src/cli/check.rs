//! `edgesift check`: verifies the store's invariants (what a technician runs after a brown-out).

use edgesift::store::{check_dir, CheckOptions, CheckReport, Store, StoreConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status when the store is inconsistent (1 is kept for "could not check at all").
pub const EXIT_INCONSISTENT: u8 = 3;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The store's data directory.
    #[arg(long, default_value_os_t = StoreConfig::default().dir)]
    dir: PathBuf,
    /// Check presence and sizes only, not the sha256 of every file (much faster on SD cards).
    #[arg(long)]
    no_hash: bool,
    /// Run the daemon's start-up recovery first (complete evictions, remove interrupted writes,
    /// re-index complete samples, drop damaged ones), then check.
    #[arg(long)]
    repair: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let opts = CheckOptions {
        verify_hashes: !a.no_hash,
    };
    let mut repaired = None;
    let report = if a.repair {
        let cfg = StoreConfig {
            dir: a.dir.clone(),
            ..StoreConfig::default()
        };
        let store = Store::open(&cfg)?;
        repaired = Some(store.recovery_report().clone());
        let report = store.check(&opts)?;
        store.close()?;
        report
    } else {
        check_dir(&a.dir, &opts)?
    };
    if a.json {
        let j = serde_json::json!({
            "dir": a.dir.display().to_string(),
            "clean": report.is_clean(),
            "samples": report.samples,
            "files": report.files,
            "bytes_hashed": report.bytes_hashed,
            "repaired": repaired.as_ref().map(|r| format!("{r:?}")),
            "issues": report.issues.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        if let Some(r) = &repaired {
            if r.is_clean() {
                println!("recovery: nothing to repair");
            } else {
                println!("recovery: {r:?}");
            }
        }
        print_report(&a.dir, &report, &opts);
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCONSISTENT)
    })
}

fn print_report(dir: &std::path::Path, r: &CheckReport, opts: &CheckOptions) {
    println!(
        "{}: {} samples, {} files{}",
        dir.display(),
        r.samples,
        r.files,
        if opts.verify_hashes {
            format!(", {} hashed", super::stats::human_bytes(r.bytes_hashed))
        } else {
            ", sizes only".to_owned()
        }
    );
    for i in &r.issues {
        println!("  {i}");
    }
    if r.is_clean() {
        println!("ok: consistent");
    } else {
        println!(
            "INCONSISTENT: {} problem(s); `edgesift check --repair` applies the start-up recovery",
            r.issues.len()
        );
    }
}
