//! `edgesift store-stress` (hidden): inserts made-up samples in a loop, printing `stored <id>`
//! after each insert returns. The crash test kills it with SIGKILL at random moments and then
//! checks the store; also handy to fill a store on a board to try `ls`, `stats` and eviction.

use edgesift::store::synthetic::SyntheticSample;
use edgesift::store::{EvictionPolicy, Store, StoreConfig, StoreError};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(clap::Args)]
pub struct StoreStressArgs {
    #[arg(long)]
    dir: PathBuf,
    /// Samples to insert; 0 runs until killed.
    #[arg(long, default_value_t = 0)]
    count: u64,
    #[arg(long, default_value_t = 1 << 20)]
    max_bytes: u64,
    #[arg(long, default_value_t = 0)]
    min_free_bytes: u64,
    /// `oldest` or `lowest_value`.
    #[arg(long, default_value = "lowest_value")]
    eviction: String,
    #[arg(long, default_value_t = 160)]
    width: u32,
    #[arg(long, default_value_t = 120)]
    height: u32,
    #[arg(long, default_value_t = 6)]
    instances: usize,
    #[arg(long)]
    no_fsync: bool,
}

pub fn run(a: StoreStressArgs) -> anyhow::Result<ExitCode> {
    let eviction = match a.eviction.as_str() {
        "oldest" => EvictionPolicy::Oldest,
        "lowest_value" => EvictionPolicy::LowestValue,
        other => anyhow::bail!("--eviction: `{other}` is neither oldest nor lowest_value"),
    };
    let cfg = StoreConfig {
        dir: a.dir,
        max_bytes: a.max_bytes,
        min_free_bytes: a.min_free_bytes,
        eviction,
        fsync: !a.no_fsync,
        ..StoreConfig::default()
    };
    cfg.validate()?;
    let mut store = Store::open(&cfg)?;
    let pool: Vec<SyntheticSample> = (0..8)
        .map(|i| SyntheticSample::new(i, a.width, a.height, a.instances))
        .collect();
    let out = std::io::stdout();
    let mut out = out.lock();
    let start = SystemTime::now();
    let mut i = 0u64;
    while a.count == 0 || i < a.count {
        let wall = start + Duration::from_millis(i * 100);
        let value = ((i * 7919) % 1000) as f32 / 1000.0;
        match pool[(i % 8) as usize].with_sample(i, wall, value, |s| store.insert(s)) {
            Ok(id) => writeln!(out, "stored {id}")?,
            Err(StoreError::DiskFull { .. }) => writeln!(out, "full")?,
            Err(e) => return Err(e.into()),
        }
        out.flush()?;
        i += 1;
    }
    store.close()?;
    Ok(ExitCode::SUCCESS)
}
