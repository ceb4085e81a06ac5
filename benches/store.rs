//! Storing one kept frame: a 1280x720 JPEG (quality 90) with 10 instances, masks PNG, sidecar
//! and index row, with and without fsync, in a store at its quota (so each insert also evicts).
//!
//! `cargo bench --bench store`. Numbers for docs come from the target board's own storage.

use criterion::{criterion_group, criterion_main, Criterion};
use edgesift::store::synthetic::SyntheticSample;
use edgesift::store::{EvictionPolicy, ImageFormat, Store, StoreConfig};
use std::time::{Duration, SystemTime};

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_insert");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    let samples: Vec<SyntheticSample> = (0..4)
        .map(|i| SyntheticSample::new(i, 1280, 720, 10))
        .collect();
    for (format, fsync) in [
        (ImageFormat::Jpeg, true),
        (ImageFormat::Jpeg, false),
        (ImageFormat::Png, false),
    ] {
        // On the build disk, not a tmpfs, so that fsync means something.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench dir");
        let cfg = StoreConfig {
            dir: dir.path().to_path_buf(),
            image_format: format,
            max_bytes: 32 << 20,
            min_free_bytes: 0,
            eviction: EvictionPolicy::LowestValue,
            fsync,
            ..StoreConfig::default()
        };
        let mut store = Store::open(&cfg).expect("open store");
        let mut seq = 0u64;
        let name = format!(
            "1280x720_{}_10inst/{}",
            format.name(),
            if fsync { "fsync" } else { "nofsync" }
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                let s = &samples[(seq % 4) as usize];
                let value = (seq % 97) as f32 / 97.0;
                seq += 1;
                s.with_sample(seq, SystemTime::now(), value, |n| {
                    store.insert(n).expect("insert")
                })
            })
        });
        store.close().expect("close");
    }
    group.finish();
}

criterion_group!(benches, insert);
criterion_main!(benches);
