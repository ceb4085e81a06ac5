//! The store against its promises: round trips, quota, free-space guard, ENOSPC, recovery from
//! every crash point, real SIGKILLs, and `edgesift check`.

use edgesift::store::synthetic::{SyntheticSample, CLASSES};
use edgesift::store::{
    check_dir, CheckOptions, EvictionPolicy, Faults, ImageFormat, Issue, Order, Query, SampleId,
    SampleRecord, Step, Store, StoreConfig, StoreError, StoreReader,
};
use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MIB: u64 = 1 << 20;

fn cfg(dir: &Path) -> StoreConfig {
    StoreConfig {
        dir: dir.to_path_buf(),
        max_bytes: 64 * MIB,
        min_free_bytes: 0,
        ..StoreConfig::default()
    }
}

/// 2026-11-24T10:00:00Z plus `secs`.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_514_400 + secs)
}

fn insert(
    store: &mut Store,
    s: &SyntheticSample,
    seq: u64,
    value: f32,
) -> Result<SampleId, StoreError> {
    s.with_sample(seq, at(seq), value, |n| store.insert(n))
}

fn all(store: &Store) -> Vec<SampleRecord> {
    store
        .query(&Query::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn assert_clean(store: &Store) {
    let r = store.check(&CheckOptions::default()).unwrap();
    assert!(r.is_clean(), "check found: {:#?}", r.issues);
}

/// Every indexed sample is whole: its image decodes, its masks PNG has the right size and only
/// valid ids, and its instances' RLE decode to masks of the image's size.
fn assert_complete(rec: &SampleRecord) {
    let img = rec.load_image().unwrap();
    assert_eq!(img.dimensions(), (rec.width, rec.height));
    let ids = rec.load_instance_ids().unwrap();
    assert!(ids.iter().all(|&v| (v as usize) <= rec.instances.len()));
    for i in &rec.instances {
        let m = i.mask();
        assert_eq!((m.image_width(), m.image_height()), (rec.width, rec.height));
        assert_eq!(m.area(), i.area);
        if let Some(r) = &i.refined {
            assert!(
                rec.refined.is_some(),
                "a refined instance without the refined PNG"
            );
            assert_eq!((r.rle.width, r.rle.height), (rec.width, rec.height));
        }
    }
    match rec.load_refined_ids().unwrap() {
        Some(ids) => {
            assert!(rec.instances.iter().any(|i| i.refined.is_some()));
            for &v in ids.iter().filter(|&&v| v > 0) {
                assert!(rec.instances[v as usize - 1].refined.is_some(), "id {v}");
            }
        }
        None => assert!(rec.instances.iter().all(|i| i.refined.is_none())),
    }
}

#[test]
fn insert_and_query_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let mut store = Store::open(&cfg(d.path())).unwrap();
    assert!(store.recovery_report().is_clean());
    let samples: Vec<SyntheticSample> =
        (0..4).map(|i| SyntheticSample::new(i, 96, 64, 5)).collect();
    let mut ids = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        ids.push(insert(&mut store, s, i as u64 * 100, 0.1 * i as f32).unwrap());
    }
    assert_eq!(ids, vec![1, 2, 3, 4]);
    assert_clean(&store);

    for (s, &id) in samples.iter().zip(&ids) {
        let rec = store.sample(id).unwrap().expect("stored sample");
        assert_eq!((rec.width, rec.height), (96, 64));
        assert_eq!(rec.seq, (id as u64 - 1) * 100);
        assert_eq!(rec.captured_wall(), at(rec.seq));
        assert_eq!(rec.source, s.origin.source);
        assert_eq!(rec.reasons, s.reasons);
        assert_eq!(rec.selection, s.selection);
        assert_eq!(rec.image_format, ImageFormat::Jpeg);
        assert!(rec
            .image
            .path
            .starts_with(d.path().join("samples/2026/11/24")));
        assert_eq!(rec.instances.len(), s.masks.len());
        for (k, inst) in rec.instances.iter().enumerate() {
            assert_eq!(inst.index as usize, k);
            assert_eq!(CLASSES[s.class_ids[k] as usize], inst.class_name);
            assert_eq!(inst.class_id, s.class_ids[k]);
            assert_eq!(inst.score, s.scores[k]);
            assert_eq!(inst.bbox, s.boxes[k]);
            assert_eq!(inst.rle, s.masks[k].to_rle());
            let m = inst.mask();
            for y in 0..64 {
                for x in 0..96 {
                    assert_eq!(m.get(x, y), s.masks[k].get(x, y), "instance {k} at {x},{y}");
                }
            }
        }
        // The instance-id PNG: at each pixel, the highest-scored instance covering it.
        let ids_png = rec.load_instance_ids().unwrap();
        for y in 0..64u32 {
            for x in 0..96u32 {
                let want = (0..s.masks.len())
                    .filter(|&k| s.masks[k].get(x, y))
                    .max_by(|&a, &b| s.scores[a].total_cmp(&s.scores[b]).then(b.cmp(&a)))
                    .map_or(0, |k| k as u16 + 1);
                assert_eq!(ids_png[(y * 96 + x) as usize], want, "pixel {x},{y}");
            }
        }
        // The sidecar says the same as the index.
        let j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&rec.meta.path).unwrap()).unwrap();
        assert_eq!(j["id"], id);
        assert_eq!(j["instances"].as_array().unwrap().len(), s.masks.len());
        assert_eq!(
            j["instances"][0]["segmentation"]["counts"],
            s.masks[0].to_rle().to_compressed()
        );
        assert_eq!(j["captured"]["wall"], rec.captured_rfc3339());
    }

    // Filters.
    let by_class = |c: &str| {
        store
            .ids(&Query {
                class: Some(c.into()),
                ..Default::default()
            })
            .unwrap()
    };
    for (c, name) in CLASSES.iter().enumerate() {
        let want: Vec<SampleId> = samples
            .iter()
            .zip(&ids)
            .filter(|(s, _)| s.class_ids.contains(&(c as u32)))
            .map(|(_, &id)| id)
            .collect();
        assert_eq!(by_class(name), want, "class {name}");
    }
    let rare: Vec<SampleId> = samples
        .iter()
        .zip(&ids)
        .filter(|(s, _)| s.reasons == ["rare_class"])
        .map(|(_, &id)| id)
        .collect();
    let q = Query {
        reason: Some("rare_class".into()),
        ..Default::default()
    };
    assert_eq!(store.ids(&q).unwrap(), rare);
    let q = Query {
        since: Some(at(100)),
        until: Some(at(300)),
        ..Default::default()
    };
    assert_eq!(store.ids(&q).unwrap(), vec![2, 3]);
    let q = Query {
        order: Order::NewestFirst,
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(store.ids(&q).unwrap(), vec![4, 3]);

    let stats = store.stats().unwrap();
    assert_eq!(stats.samples, 4);
    assert_eq!(stats.instances, 20);
    assert_eq!(stats.oldest_unix_ns, Some(1_795_514_400_000_000_000));
    assert!(stats.bytes > 0 && stats.quota_bytes >= stats.bytes);
    assert_eq!(
        stats.by_class.iter().map(|c| c.2).sum::<u64>(),
        20,
        "{:?}",
        stats.by_class
    );

    // A clean close leaves nothing to recover; a reader sees the same.
    store.close().unwrap();
    let store = Store::open(&cfg(d.path())).unwrap();
    assert!(
        store.recovery_report().is_clean(),
        "{:?}",
        store.recovery_report()
    );
    assert_eq!(all(&store).len(), 4);
    let reader = StoreReader::open(d.path()).unwrap();
    let recs: Vec<_> = reader
        .query(&Query::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(recs.len(), 4);
    assert_eq!(reader.stats().unwrap().samples, 4);
}

#[test]
fn png_frames_are_lossless() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.image_format = ImageFormat::Png;
    let mut store = Store::open(&c).unwrap();
    let s = SyntheticSample::new(9, 40, 30, 2);
    let id = insert(&mut store, &s, 0, 0.5).unwrap();
    let rec = store.sample(id).unwrap().unwrap();
    assert!(rec.image.path.to_string_lossy().ends_with(".png"));
    assert_eq!(rec.load_image().unwrap(), s.image);
    assert_clean(&store);
}

#[test]
fn bad_samples_cost_one_sample() {
    let d = tempfile::tempdir().unwrap();
    let mut store = Store::open(&cfg(d.path())).unwrap();
    let mut s = SyntheticSample::new(1, 40, 30, 2);
    s.masks[1] = edgesift::geometry::Mask::empty(41, 30);
    assert!(matches!(
        insert(&mut store, &s, 0, 0.5),
        Err(StoreError::BadSample(_))
    ));
    let good = SyntheticSample::new(2, 40, 30, 2);
    assert_eq!(insert(&mut store, &good, 1, 0.5).unwrap(), 1);
    assert_clean(&store);
}

#[test]
fn the_store_moves_to_the_pipeline_thread() {
    fn send<T: Send>() {}
    send::<Store>();
    send::<StoreReader>();
}

#[test]
fn a_second_writer_and_a_check_are_locked_out() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(&cfg(d.path())).unwrap();
    assert!(matches!(
        Store::open(&cfg(d.path())),
        Err(StoreError::Locked { .. })
    ));
    assert!(matches!(
        check_dir(d.path(), &CheckOptions::default()),
        Err(StoreError::Locked { .. })
    ));
    // Readers are welcome beside the writer.
    StoreReader::open(d.path()).unwrap();
    store.close().unwrap();
    assert!(check_dir(d.path(), &CheckOptions::default())
        .unwrap()
        .is_clean());
}

/// Inserts 40 samples into a 1 MiB store and checks after each insert that the quota holds and
/// that exactly the samples the policy names were evicted.
fn quota_holds(policy: EvictionPolicy) {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.max_bytes = MIB;
    c.eviction = policy;
    c.fsync = false;
    let mut store = Store::open(&c).unwrap();
    let pool: Vec<SyntheticSample> = (0..4)
        .map(|i| SyntheticSample::new(i, 320, 240, 6))
        .collect();
    let mut values = std::collections::HashMap::new();
    let mut evicted_total = 0;
    for i in 0..40u64 {
        let before: BTreeSet<SampleId> =
            store.ids(&Query::default()).unwrap().into_iter().collect();
        let value = ((i * 37) % 11) as f32 / 10.0;
        let id = insert(&mut store, &pool[(i % 4) as usize], i, value).unwrap();
        values.insert(id, value);
        let after: BTreeSet<SampleId> = store.ids(&Query::default()).unwrap().into_iter().collect();
        let gone: Vec<SampleId> = before.difference(&after).copied().collect();
        evicted_total += gone.len();
        // The victims are the first of the policy's order among what was stored.
        let mut order: Vec<SampleId> = before.iter().copied().collect();
        if policy == EvictionPolicy::LowestValue {
            order.sort_by(|a, b| values[a].total_cmp(&values[b]).then(a.cmp(b)));
        }
        let expected: BTreeSet<SampleId> = order[..gone.len()].iter().copied().collect();
        assert_eq!(
            gone.iter().copied().collect::<BTreeSet<_>>(),
            expected,
            "insert {i}"
        );
        assert!(after.contains(&id));
        // The quota, as the store counts it and as the disk shows it.
        assert!(
            store.quota_used() <= c.max_bytes,
            "{} > max",
            store.quota_used()
        );
        assert!(disk_usage(&d.path().join("samples")) <= c.max_bytes);
    }
    assert!(
        evicted_total > 10,
        "only {evicted_total} evictions: test too small"
    );
    assert_eq!(store.counters().evicted as usize, evicted_total);
    assert_clean(&store);
}

/// Sum of the sample files' sizes rounded up to 4 KiB blocks.
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for e in walk(dir) {
        total += e.metadata().unwrap().len().div_ceil(4096).max(1) * 4096;
    }
    total
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn quota_holds_evicting_the_oldest() {
    quota_holds(EvictionPolicy::Oldest);
}

#[test]
fn quota_holds_evicting_the_lowest_value() {
    quota_holds(EvictionPolicy::LowestValue);
}

#[test]
fn lowest_value_keeps_the_valuable_samples_that_oldest_drops() {
    for (policy, kept) in [
        (EvictionPolicy::LowestValue, true),
        (EvictionPolicy::Oldest, false),
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path());
        c.max_bytes = MIB;
        c.eviction = policy;
        c.fsync = false;
        let mut store = Store::open(&c).unwrap();
        let s = SyntheticSample::new(3, 320, 240, 6);
        let precious = insert(&mut store, &s, 0, 0.99).unwrap();
        for i in 1..40 {
            insert(&mut store, &s, i, 0.1).unwrap();
        }
        assert!(store.counters().evicted > 0);
        assert_eq!(
            store.sample(precious).unwrap().is_some(),
            kept,
            "{policy:?}"
        );
    }
}

/// A simulated disk of `capacity` bytes holding only the store's sample files.
fn small_disk(capacity: u64) -> Box<dyn edgesift::store::FreeSpace> {
    Box::new(move |dir: &Path| Ok(capacity.saturating_sub(disk_usage(&dir.join("samples")))))
}

#[test]
fn free_space_guard_evicts_before_the_quota_does() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.max_bytes = 100 * MIB; // never reached
    c.min_free_bytes = MIB;
    c.fsync = false;
    let capacity = 2 * MIB;
    let mut store = Store::open_with(&c, small_disk(capacity)).unwrap();
    let s = SyntheticSample::new(5, 320, 240, 4);
    for i in 0..40 {
        insert(&mut store, &s, i, 0.5).unwrap();
        let free = capacity - disk_usage(&d.path().join("samples"));
        assert!(free >= c.min_free_bytes, "free {free} after insert {i}");
    }
    assert!(store.counters().evicted > 0);
    assert!(store.len() < 40);
    assert_clean(&store);
}

#[test]
fn a_disk_filled_by_something_else_refuses_without_emptying_the_store() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.min_free_bytes = MIB;
    c.fsync = false;
    let free = Arc::new(AtomicU64::new(100 * MIB));
    let probe = free.clone();
    let mut store = Store::open_with(
        &c,
        Box::new(move |_: &Path| Ok(probe.load(Ordering::SeqCst))),
    )
    .unwrap();
    let s = SyntheticSample::new(5, 160, 120, 4);
    for i in 0..5 {
        insert(&mut store, &s, i, 0.5).unwrap();
    }
    // Another process leaves 10 KiB: evicting all five samples (~100 KiB) cannot restore 1 MiB.
    free.store(10 << 10, Ordering::SeqCst);
    let e = insert(&mut store, &s, 5, 0.5).unwrap_err();
    assert!(matches!(e, StoreError::DiskFull { .. }), "{e}");
    assert_eq!(store.len(), 5);
    assert_eq!(store.counters().disk_full, 1);
    assert_clean(&store);
    // When space comes back, capture goes on.
    free.store(100 * MIB, Ordering::SeqCst);
    insert(&mut store, &s, 6, 0.5).unwrap();
    assert_eq!(store.len(), 6);
}

#[test]
fn enospc_evicts_and_retries_once_then_reports_disk_full() {
    let d = tempfile::tempdir().unwrap();
    let mut store = Store::open(&cfg(d.path())).unwrap();
    let s = SyntheticSample::new(6, 160, 120, 4);
    for i in 0..4 {
        insert(&mut store, &s, i, 0.5).unwrap();
    }
    // One ENOSPC: the store evicts and the retry succeeds.
    store.inject_faults(Faults {
        enospc_writes: 1,
        ..Default::default()
    });
    let id = insert(&mut store, &s, 4, 0.5).unwrap();
    assert_eq!(store.counters().enospc_retries, 1);
    assert_eq!(store.counters().evicted, 1);
    assert!(store.sample(id).unwrap().is_some());
    assert_clean(&store);
    // ENOSPC on the retry as well: DiskFull, nothing partial left, the store goes on.
    store.inject_faults(Faults {
        enospc_writes: 2,
        ..Default::default()
    });
    let before = store.len();
    let e = insert(&mut store, &s, 5, 0.5).unwrap_err();
    assert!(matches!(e, StoreError::DiskFull { .. }), "{e}");
    assert_eq!(store.len(), before - 1, "one sample evicted for the retry");
    assert_clean(&store);
    let id = insert(&mut store, &s, 6, 0.5).unwrap();
    assert!(store.sample(id).unwrap().is_some());
    assert_clean(&store);
}

/// For every step of *Store* and *Evict*: stop there as a crash would, reopen, and check that
/// recovery leaves a clean store where the interrupted sample is either whole or absent.
#[test]
fn recovery_from_every_crash_point() {
    for step in Step::ALL {
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg(d.path());
        c.max_bytes = MIB;
        c.eviction = EvictionPolicy::Oldest;
        // With refined masks: four files per sample, the refined PNG before the sidecar.
        let pool: Vec<SyntheticSample> = (0..3)
            .map(|i| SyntheticSample::new(i, 320, 240, 6).with_refined())
            .collect();
        let mut store = Store::open(&c).unwrap();
        // Fill until the quota bites, so that the next insert evicts.
        let mut seq = 0;
        while store.counters().evicted == 0 {
            insert(&mut store, &pool[seq as usize % 3], seq, 0.5).unwrap();
            seq += 1;
        }
        let before: Vec<SampleId> = store.ids(&Query::default()).unwrap();
        let next_id = before.last().unwrap() + 1;
        store.inject_faults(Faults {
            crash_at: Some(step),
            ..Default::default()
        });
        let e = insert(&mut store, &pool[0], seq, 0.5).unwrap_err();
        assert!(
            matches!(e, StoreError::InjectedCrash(s) if s == step),
            "{step:?}: {e}"
        );
        drop(store); // the process dies here

        let store = Store::open(&c).unwrap();
        let report = store.recovery_report().clone();
        assert_clean(&store);
        let after: Vec<SampleId> = store.ids(&Query::default()).unwrap();
        for rec in all(&store) {
            assert_complete(&rec);
        }
        let evict_step = matches!(
            step,
            Step::EvictGarbageCommitted
                | Step::EvictFirstUnlink
                | Step::EvictUnlinked
                | Step::EvictDirSynced
        );
        if evict_step {
            // The victim (the oldest) is gone for good, the new sample never started.
            assert_eq!(after, before[1..].to_vec(), "{step:?}");
            assert_eq!(report.garbage_completed, vec![before[0]], "{step:?}");
        } else {
            let survived = matches!(step, Step::StoreFilesRenamed | Step::StoreDirSynced);
            assert_eq!(after.contains(&next_id), survived, "{step:?}: {report:?}");
            if survived {
                assert_eq!(report.reindexed, vec![next_id], "{step:?}");
            } else {
                let leftovers = report.temp_files_removed.len() + report.incomplete_removed.len();
                assert!(leftovers > 0, "{step:?}: {report:?}");
            }
        }
        // Writing goes on with fresh ids.
        let mut store = store;
        let id = insert(&mut store, &pool[1], seq + 1, 0.5).unwrap();
        assert!(id > *after.last().unwrap());
        assert_clean(&store);
        store.close().unwrap();
    }
}

#[test]
fn recovery_drops_damaged_rows_and_reindexes_complete_orphans() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(d.path());
    let mut store = Store::open(&c).unwrap();
    let s = SyntheticSample::new(7, 64, 48, 3);
    for i in 0..4 {
        insert(&mut store, &s, i, 0.5).unwrap();
    }
    let recs = all(&store);
    store.close().unwrap();
    // Sample 1 loses its masks; sample 2's image is truncated; sample 3 loses its row (as if
    // the index were restored from an older backup); a stray temp file appears.
    std::fs::remove_file(&recs[0].masks.path).unwrap();
    let img = std::fs::read(&recs[1].image.path).unwrap();
    std::fs::write(&recs[1].image.path, &img[..img.len() / 2]).unwrap();
    {
        let conn = rusqlite::Connection::open(d.path().join("index.db")).unwrap();
        conn.execute("pragma foreign_keys = on", []).unwrap();
        conn.execute("delete from sample where id = 3", []).unwrap();
    }
    let tmp = recs[3].image.path.with_extension("jpg.tmp");
    std::fs::write(&tmp, b"half").unwrap();
    // A PNG beside sample 4's JPEG: a Store interrupted before `image_format` changed.
    let other_format = recs[3].image.path.with_extension("png");
    std::fs::write(&other_format, b"png?").unwrap();

    let store = Store::open(&c).unwrap();
    let r = store.recovery_report();
    assert_eq!(r.damaged_rows_removed, vec![1, 2]);
    assert_eq!(r.reindexed, vec![3]);
    assert_eq!(
        r.temp_files_removed,
        vec![tmp.clone(), other_format.clone()]
    );
    assert!(!other_format.exists() && recs[3].image.path.exists());
    assert_eq!(store.ids(&Query::default()).unwrap(), vec![3, 4]);
    assert!(!recs[0].image.path.exists() && !recs[1].meta.path.exists());
    let again = store.sample(3).unwrap().unwrap();
    assert_eq!(again.instances.len(), 3);
    assert_eq!(again.instances[1].rle, recs[2].instances[1].rle);
    assert_eq!(again.reasons, recs[2].reasons);
    assert_clean(&store);
}

#[test]
fn index_versions_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(d.path());
    let mut store = Store::open(&c).unwrap();
    insert(&mut store, &SyntheticSample::new(1, 32, 32, 1), 0, 0.5).unwrap();
    store.close().unwrap();
    // A version-1 index opens as is.
    let store = Store::open(&c).unwrap();
    assert_eq!(
        store.stats().unwrap().schema_version,
        edgesift::store::SCHEMA_VERSION
    );
    assert_eq!(store.len(), 1);
    store.close().unwrap();
    // One from a newer edgesift is refused, by the writer and by readers, and left untouched.
    rusqlite::Connection::open(d.path().join("index.db"))
        .unwrap()
        .execute("update meta set schema_version = 99", [])
        .unwrap();
    let e = Store::open(&c).err().expect("newer schema refused");
    assert!(
        matches!(
            e,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("99"), "{e}");
    assert!(matches!(
        StoreReader::open(d.path()),
        Err(StoreError::SchemaTooNew { .. })
    ));
    // Something that is not an index at all.
    let d2 = tempfile::tempdir().unwrap();
    std::fs::write(
        d2.path().join("index.db"),
        b"not sqlite at all, just some bytes....",
    )
    .unwrap();
    assert!(matches!(
        Store::open(&cfg(d2.path())),
        Err(StoreError::NotAnIndex { .. })
    ));
}

fn edgesift() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgesift"))
}

#[test]
fn check_command_reports_a_missing_and_a_stray_file() {
    let d = tempfile::tempdir().unwrap();
    let mut store = Store::open(&cfg(d.path())).unwrap();
    let s = SyntheticSample::new(8, 64, 48, 3);
    for i in 0..3 {
        insert(&mut store, &s, i, 0.5).unwrap();
    }
    let recs = all(&store);
    store.close().unwrap();

    let ok = edgesift()
        .arg("check")
        .arg("--dir")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    std::fs::remove_file(&recs[1].image.path).unwrap();
    let stray = recs[0].image.path.parent().unwrap().join("holiday.jpg");
    std::fs::write(&stray, b"someone's photo").unwrap();
    let report = check_dir(d.path(), &CheckOptions::default()).unwrap();
    assert!(report.issues.contains(&Issue::MissingFile {
        id: recs[1].id,
        path: recs[1].image.path.clone()
    }));
    assert!(report.issues.contains(&Issue::Unknown {
        path: stray.clone()
    }));
    assert_eq!(report.issues.len(), 2, "{:?}", report.issues);

    let out = edgesift()
        .arg("check")
        .arg("--dir")
        .arg(d.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&recs[1].image.path.display().to_string()),
        "{text}"
    );
    assert!(text.contains(&stray.display().to_string()), "{text}");
    assert!(text.contains("INCONSISTENT"), "{text}");

    // --repair drops the damaged sample; the stray file is not ours to delete and stays reported.
    let out = edgesift()
        .args(["check", "--repair", "--dir"])
        .arg(d.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        !text.contains(&recs[1].image.path.display().to_string()),
        "{text}"
    );
    std::fs::remove_file(&stray).unwrap();
    let out = edgesift()
        .arg("check")
        .arg("--dir")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn ls_and_stats_commands() {
    let d = tempfile::tempdir().unwrap();
    let mut store = Store::open(&cfg(d.path())).unwrap();
    let pool: Vec<SyntheticSample> = (0..6).map(|i| SyntheticSample::new(i, 64, 48, 3)).collect();
    for (i, s) in pool.iter().enumerate() {
        insert(&mut store, s, i as u64 * 60, 0.5).unwrap();
    }
    store.close().unwrap();
    let run = |args: &[&str]| {
        let out = edgesift()
            .args(args)
            .arg("--dir")
            .arg(d.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let lines = run(&[
        "ls",
        "--json",
        "--class",
        "dog",
        "--since",
        "2026-11-24T10:01:00Z",
    ]);
    let got: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<i64> = pool
        .iter()
        .enumerate()
        .filter(|(i, s)| *i >= 1 && s.class_ids.contains(&3))
        .map(|(i, _)| i as i64 + 1)
        .rev()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(
        got.iter()
            .map(|j| j["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        want
    );
    assert!(got.iter().all(|j| j["instances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["class_name"] == "dog")));
    let table = run(&["ls", "--limit", "2"]);
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains("2026-11-24T10:05:00.000Z"), "{table}");

    let stats: serde_json::Value = serde_json::from_str(&run(&["stats", "--json"])).unwrap();
    assert_eq!(stats["samples"], 6);
    assert_eq!(stats["instances"], 18);
    assert_eq!(stats["oldest"], "2026-11-24T10:00:00Z");
    assert_eq!(stats["newest"], "2026-11-24T10:05:00Z");
    assert!(run(&["stats"]).contains("samples    6 (18 instances)"));
}

/// Kills a writer with SIGKILL at random moments, several times; after each kill the store
/// must open, check clean, hold only complete samples, and keep every acknowledged insert that
/// the eviction policy did not remove.
#[test]
fn survives_sigkill_at_random_moments() {
    let d = tempfile::tempdir().unwrap();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut acknowledged_total = 0;
    for round in 0..10 {
        let mut child = edgesift()
            .args([
                "store-stress",
                "--max-bytes",
                "1048576",
                "--eviction",
                "oldest",
                "--dir",
            ])
            .arg(d.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let wait_for = 3 + rand(25);
        let mut last = None;
        for _ in 0..wait_for {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(id) = l.strip_prefix("stored ") {
                        last = Some(id.parse::<SampleId>().unwrap());
                    }
                }
                _ => panic!("round {round}: the writer stopped early"),
            }
        }
        // Land somewhere inside the next insert (or the one after).
        std::thread::sleep(Duration::from_micros(rand(8000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Anything printed before the kill was acknowledged too.
        for l in lines.map_while(Result::ok) {
            if let Some(id) = l.strip_prefix("stored ") {
                last = Some(id.parse().unwrap());
            }
        }
        let last = last.expect("at least one acknowledged insert");
        acknowledged_total += 1;

        let report = check_dir(d.path(), &CheckOptions::default()).unwrap();
        eprintln!(
            "round {round}: before recovery {} issue(s)",
            report.issues.len()
        );
        let store = Store::open(&cfg(d.path())).unwrap();
        assert_clean(&store);
        let recs = all(&store);
        for r in &recs {
            assert_complete(r);
        }
        // `oldest` never evicts the newest sample, so the last acknowledged one is there.
        assert!(
            store.sample(last).unwrap().is_some(),
            "round {round}: acknowledged sample {last} lost ({:?})",
            store.recovery_report()
        );
        store.close().unwrap();
    }
    assert_eq!(acknowledged_total, 10);
}

#[test]
fn reloaded_settings_apply_from_the_next_insert_and_restart_only_keys_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.fsync = false;
    let mut store = Store::open(&c).unwrap();
    let s = SyntheticSample::new(1, 640, 480, 6);
    let mut i = 0;
    while store.quota_used() < 3 * MIB {
        insert(&mut store, &s, i, 0.5).unwrap();
        i += 1;
    }
    let used = store.quota_used();
    // A lower quota evicts down to it at the next insert.
    let mut smaller = c.clone();
    smaller.max_bytes = used / 3;
    store.reconfigure(&smaller).unwrap();
    insert(&mut store, &s, 100, 0.5).unwrap();
    assert!(store.quota_used() <= smaller.max_bytes);
    assert!(store.counters().evicted > 0);
    // The directory and fsync need a restart; the store keeps its settings.
    let mut moved = smaller.clone();
    moved.dir = d.path().join("elsewhere");
    assert!(matches!(
        store.reconfigure(&moved),
        Err(StoreError::NeedsRestart { key: "dir" })
    ));
    let mut durable = smaller.clone();
    durable.fsync = true;
    assert!(matches!(
        store.reconfigure(&durable),
        Err(StoreError::NeedsRestart { key: "fsync" })
    ));
    assert_clean(&store);
}

/// `[refine]`'s masks as a field of the store: a fourth file per refined sample (the refined
/// instance-id PNG) and `mask_refined` per instance in the sidecar and the index; part of the
/// sample for eviction, recovery and check like the other files.
#[test]
fn refined_masks_are_stored_beside_the_detectors_and_recovered_with_the_sample() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(d.path());
    let mut store = Store::open(&c).unwrap();
    let refined = SyntheticSample::new(11, 96, 64, 4).with_refined();
    let plain = SyntheticSample::new(12, 96, 64, 3);
    let a = insert(&mut store, &refined, 0, 0.5).unwrap();
    let b = insert(&mut store, &plain, 1, 0.5).unwrap();
    let c_id = insert(&mut store, &refined, 2, 0.5).unwrap();
    assert_clean(&store);
    let ra = store.sample(a).unwrap().unwrap();
    let rb = store.sample(b).unwrap().unwrap();
    assert_complete(&ra);
    assert_complete(&rb);
    let file = ra.refined.clone().expect("a refined PNG");
    assert!(file.path.to_string_lossy().ends_with(".refined.png"));
    assert_eq!(std::fs::metadata(&file.path).unwrap().len(), file.bytes);
    assert!(rb.refined.is_none());
    assert!(!rb
        .masks
        .path
        .with_file_name(
            rb.masks
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".masks.png", ".refined.png")
        )
        .exists());
    for (i, inst) in ra.instances.iter().enumerate() {
        match &refined.refined[i] {
            Some((mask, iou)) => {
                let r = inst.refined.as_ref().expect("refined instance");
                assert_eq!(r.rle, mask.to_rle(), "instance {i}");
                assert_eq!(r.predicted_iou, *iou);
            }
            None => assert!(inst.refined.is_none(), "instance {i}"),
        }
    }
    // The refined PNG holds the refined masks (filled boxes), the masks PNG the detector's.
    let ids = ra.load_refined_ids().unwrap().unwrap();
    let painted = |id: u16| ids.iter().filter(|&&v| v == id).count();
    assert!(painted(1) > 0 && painted(2) == 0 && painted(3) > 0);
    // The sidecar is a complete description (what recovery re-indexes from).
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ra.meta.path).unwrap()).unwrap();
    assert_eq!(meta["refined_masks"]["bytes"], file.bytes);
    assert!(meta["instances"][0]["mask_refined"]["segmentation"]["counts"].is_string());
    assert!(meta["instances"][1].get("mask_refined").is_none());
    let plain_meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rb.meta.path).unwrap()).unwrap();
    assert!(plain_meta.get("refined_masks").is_none());
    assert!(ra.to_json()["instances"][0]["mask_refined"]["predicted_iou"].is_number());
    let rc = store.sample(c_id).unwrap().unwrap();
    store.close().unwrap();

    // Sample a loses its refined PNG: the row goes, with the rest of its files. Sample c loses
    // its row (an index restored from a backup): re-indexed from its sidecar, refined masks
    // included. A refined PNG appears beside b, whose row names none: removed.
    std::fs::remove_file(&file.path).unwrap();
    {
        let conn = rusqlite::Connection::open(d.path().join("index.db")).unwrap();
        conn.execute("pragma foreign_keys = on", []).unwrap();
        conn.execute("delete from sample where id = ?1", [c_id])
            .unwrap();
    }
    let stray = rb.masks.path.with_file_name(format!(
        "{}.refined.png",
        rb.meta.path.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::copy(rc.refined.as_ref().unwrap().path.clone(), &stray).unwrap();
    let store = Store::open(&c).unwrap();
    let r = store.recovery_report();
    assert_eq!(r.damaged_rows_removed, vec![a]);
    assert_eq!(r.reindexed, vec![c_id]);
    assert_eq!(r.temp_files_removed, vec![stray.clone()]);
    assert!(!ra.image.path.exists() && !ra.meta.path.exists() && !stray.exists());
    let again = store.sample(c_id).unwrap().unwrap();
    assert_complete(&again);
    assert_eq!(again.refined, rc.refined);
    assert_eq!(
        again.instances[2].refined.as_ref().map(|r| r.rle.clone()),
        rc.instances[2].refined.as_ref().map(|r| r.rle.clone())
    );
    assert_clean(&store);
    // Eviction takes the refined file too: a quota that only fits one plain sample.
    let refined_path = again.refined.unwrap().path;
    store.close().unwrap();
    let quota_b: i64 = rusqlite::Connection::open(d.path().join("index.db"))
        .unwrap()
        .query_row("select quota_bytes from sample where id = ?1", [b], |r| {
            r.get(0)
        })
        .unwrap();
    let mut tiny = cfg(d.path());
    tiny.max_bytes = quota_b as u64 + 4096;
    let mut store = Store::open(&tiny).unwrap();
    insert(&mut store, &plain, 3, 0.5).unwrap();
    assert!(
        store.sample(c_id).unwrap().is_none(),
        "evicted by the quota"
    );
    assert!(!refined_path.exists());
    assert_clean(&store);
}

/// A store written before refined masks had a field (schema 1) is upgraded on open: its samples
/// read as before, without refined masks, and new samples may have them.
#[test]
fn a_version_1_store_is_upgraded_and_stays_readable() {
    let d = tempfile::tempdir().unwrap();
    let c = cfg(d.path());
    let mut store = Store::open(&c).unwrap();
    let s = SyntheticSample::new(21, 64, 48, 3);
    let old = insert(&mut store, &s, 0, 0.5).unwrap();
    store.close().unwrap();
    // Back to version 1's tables (what an older edgesift wrote).
    {
        let conn = rusqlite::Connection::open(d.path().join("index.db")).unwrap();
        conn.execute_batch(
            "alter table sample drop column refined_bytes;
             alter table sample drop column refined_sha256;
             alter table instance drop column refined_iou;
             alter table instance drop column refined_rle;
             update meta set schema_version = 1;",
        )
        .unwrap();
    }
    assert!(
        matches!(
            StoreReader::open(d.path()),
            Err(StoreError::NotAnIndex { .. })
        ),
        "readers ask for the upgrade the daemon does"
    );
    let mut store = Store::open(&c).unwrap();
    assert!(store.recovery_report().is_clean());
    assert_eq!(store.stats().unwrap().schema_version, 2);
    let rec = store.sample(old).unwrap().unwrap();
    assert_complete(&rec);
    assert!(rec.refined.is_none() && rec.instances.iter().all(|i| i.refined.is_none()));
    let new = insert(&mut store, &s.with_refined(), 1, 0.5).unwrap();
    assert!(store.sample(new).unwrap().unwrap().refined.is_some());
    assert_clean(&store);
}
