//! Storage: kept frames as plain files a person can browse, behind an SQLite index, with a
//! quota, crash safety and a consistency check.
//!
//! - [`Store`]: the writer the pipeline owns. [`Store::open`] takes the store's lock and runs
//!   crash recovery; [`Store::insert`] stores one [`NewSample`] (evicting as the quota and the
//!   free-space guard require); [`Store::query`] / [`Store::stats`] / [`Store::check`] read.
//! - [`StoreReader`]: read-only access beside a running daemon (`edgesift ls`, `stats`,
//!   dataset export).
//! - [`check_dir`]: `edgesift check` without starting a daemon.
//! - [`StoreConfig`]: the `[store]` section.
//!
//! A sample is three files in `samples/YYYY/MM/DD/` (UTC day of capture, see `layout.rs`):
//! `HHMMSS-<id>.jpg` (or `.png`), `HHMMSS-<id>.masks.png` (16-bit instance ids: 0 background,
//! `i + 1` instance `i`; where masks overlap the higher-scored instance wins, equal scores the
//! earlier one), and `HHMMSS-<id>.json`, the sidecar holding everything else (instances with
//! class, score, box, COCO RLE mask and area; selection reasons and verdicts; source; times;
//! model; the other files' sizes and sha256). A sample stored with `[refine]` masks has a fourth
//! file, `HHMMSS-<id>.refined.png` (the same encoding, painted with the refined masks), and each
//! refined instance carries `mask_refined` (COCO RLE, area, the refiner's predicted IoU) in the
//! sidecar. The sidecar is written last and is a complete description: the index row is derived
//! from it and can be rebuilt from it.
//!
//! Files are hashed with sha256 (already a dependency, for model files): a 720p JPEG costs
//! about a millisecond even without SHA instructions, small beside encoding it, and a field
//! technician can verify a file by hand with `sha256sum`.
//!
//! # Storage invariants
//!
//! 1. Every `sample` row names three files (four with refined masks) that exist with the recorded
//!    sizes and sha256.
//! 2. Every sample file under `samples/` has exactly one of: a `sample` row, a `garbage` row, or
//!    (only between a crash and the next start-up) no row, because its Store did not commit.
//!    A file without a row and without a `.tmp` suffix is complete; a `.tmp` file never is.
//! 3. After [`Store::open`] returns, and after every procedure below returns, there are no
//!    `garbage` rows, no `.tmp` files and no sample files without a row.
//!
//! # Procedures
//!
//! The step order is the crash-safety argument: a crash between any two steps leaves a state
//! that *Startup* turns back into one satisfying the invariants, with the sample either fully
//! indexed or gone. `fsync` below is skipped when `fsync = false` (benchmarks), which keeps
//! consistency but not durability.
//!
//! *Store* (one sample, id = `meta.next_sample_id`):
//!
//! 1. Encode the image, the masks PNG, the refined masks PNG (if any) and the sidecar JSON in
//!    memory (sizes and hashes known).
//! 2. Make room: while the quota or the free-space guard would be exceeded, *Evict*.
//! 3. Create the day directory if needed, `fsync`ing its parent.
//! 4. For the image, then the masks, then the refined masks (if any), then the JSON: write
//!    `<name>.tmp` (created with `O_EXCL`), `fsync` it, rename it to `<name>`.
//! 5. `fsync` the day directory.
//! 6. In one transaction: insert the `sample`, `instance` and `reason` rows and set
//!    `meta.next_sample_id = id + 1`; commit (durable with `synchronous = full`).
//!
//! On ENOSPC in step 4 the temporary file is removed, the files of the sample so far are
//! removed, *Evict* frees at least the sample's size again, and step 4 is retried once; a second
//! ENOSPC gives [`StoreError::DiskFull`]. Any other failure before step 6 removes the sample's
//! files and reports the error; nothing is indexed.
//!
//! *Evict* (a batch of victims chosen by the eviction policy):
//!
//! 1. In one transaction, replace each victim's `sample` row (and, by cascade, its `instance`
//!    and `reason` rows) with a `garbage` row; commit.
//! 2. `unlink` each victim's files (a missing file is logged: invariant 1 was broken; the
//!    garbage row does not say whether there was a refined file, so its absence is not).
//! 3. `fsync` the directories they were in.
//! 4. Delete the `garbage` rows; commit. Remove day directories left empty.
//!
//! *Startup* ([`Store::open`]):
//!
//! 1. Take the exclusive lock on `<dir>/lock` (another daemon or `edgesift check` holding it is
//!    an error: [`StoreError::Locked`]).
//! 2. Open the index: set the pragmas, create the schema or upgrade it, refuse a newer one.
//! 3. Complete interrupted evictions: `unlink` the files of every `garbage` row (ignoring
//!    missing ones), `fsync` their directories, delete the `garbage` rows.
//! 4. Scan `samples/`: `unlink` every `.tmp` file (an interrupted *Store* step 4).
//! 5. Rows whose files are missing or of the wrong size (damage from outside the store, or a
//!    disk that lied about `fsync`) are logged and evicted as in *Evict*.
//! 6. Sample files without a row: if the sample is complete (its JSON parses, names this id and
//!    stem, and the image and masks match the sizes and hashes it records) it is re-indexed (a
//!    *Store* interrupted between steps 5 and 6, or an index restored from an older backup);
//!    otherwise its files are `unlink`ed (a *Store* interrupted in step 4). `meta.next_sample_id`
//!    is raised above every id seen. `fsync` the directories touched.
//! 7. Files whose names the store does not write are left alone and logged; `check` lists them.
//!
//! Startup is idempotent, so a crash during it is handled by the next one.
//!
//! # What a crash may lose (non-goals)
//!
//! A sample whose *Store* had not reached step 5 is gone after a crash (the pipeline had not
//! been told it was stored). Frames in flight in the pipeline are lost. With `fsync = false` a
//! power cut may also lose the last few seconds of stored samples, or bring back a sample whose
//! eviction was not yet durable. Restoring `index.db` from a backup without `samples/` re-indexes
//! the newer samples from their sidecars, but samples evicted since the backup are gone.

mod check;
mod config;
mod db;
mod encode;
mod error;
mod faults;
mod fs;
mod layout;
mod query;
mod record;
mod recovery;
#[doc(hidden)]
pub mod synthetic;
mod upgrade;
mod writer;

pub use check::{check_dir, CheckOptions, CheckReport, Issue};
pub use config::{EvictionPolicy, ImageFormat, StoreConfig};
pub use db::SCHEMA_VERSION;
pub use error::StoreError;
#[doc(hidden)]
pub use faults::{Faults, Step};
pub use fs::{FreeSpace, Statvfs};
pub use query::{Order, Query, Samples, Stats};
pub use record::{
    InstanceRecord, ModelRef, NewSample, RefinedMask, RefinedRecord, SampleId, SampleRecord,
    StoredFile, StoredInstance, META_FORMAT,
};
pub use recovery::RecoveryReport;

use error::DbContext;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// The writer of a store; one per data directory (enforced by a lock).
pub struct Store {
    dir: PathBuf,
    samples: PathBuf,
    cfg: StoreConfig,
    conn: Connection,
    _lock: std::fs::File,
    next_id: SampleId,
    quota_used: u64,
    sample_count: u64,
    free_space: Box<dyn FreeSpace>,
    faults: Faults,
    recovery: RecoveryReport,
    counters: Counters,
}

/// Running totals since [`Store::open`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub inserted: u64,
    pub evicted: u64,
    pub evicted_bytes: u64,
    /// Inserts that failed with [`StoreError::DiskFull`].
    pub disk_full: u64,
    /// ENOSPC from the filesystem that an eviction and retry absorbed.
    pub enospc_retries: u64,
}

impl Store {
    /// Opens (creating if needed) the store at `cfg.dir` and runs *Startup*; measures free space
    /// with `statvfs`.
    pub fn open(cfg: &StoreConfig) -> Result<Self, StoreError> {
        Self::open_with(cfg, Box::new(Statvfs))
    }

    /// [`Store::open`] with another free-space source (tests simulate a small disk with it).
    pub fn open_with(
        cfg: &StoreConfig,
        free_space: Box<dyn FreeSpace>,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| StoreError::io(&cfg.dir, e))?;
        let lock = fs::lock_exclusive(&cfg.dir)?;
        let conn = db::open_rw(&cfg.dir.join(layout::INDEX_FILE), cfg.fsync)?;
        let samples = fs::ensure_dir(&cfg.dir, Path::new(layout::SAMPLES_DIR), cfg.fsync)?;
        if cfg.fsync {
            // The directory entries of a new index.db (and its -wal) are durable too.
            fs::sync_dir(&cfg.dir)?;
        }
        let mut store = Store {
            dir: cfg.dir.clone(),
            samples,
            cfg: cfg.clone(),
            conn,
            _lock: lock,
            next_id: 0,
            quota_used: 0,
            sample_count: 0,
            free_space,
            faults: Faults::default(),
            recovery: RecoveryReport::default(),
            counters: Counters::default(),
        };
        store.recovery = store.recover()?;
        store.next_id = db::next_sample_id(&store.conn)?;
        let (count, quota): (i64, i64) = store
            .conn
            .query_row(
                "select count(*), coalesce(sum(quota_bytes), 0) from sample",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .db("totalling samples")?;
        store.sample_count = count as u64;
        store.quota_used = quota as u64;
        tracing::info!(
            dir = %store.dir.display(),
            samples = count,
            quota_bytes = quota,
            max_bytes = cfg.max_bytes,
            "store open"
        );
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Applies a reloaded `[store]` section (SIGHUP). The directory and `fsync` are fixed for the
    /// life of an open store; everything else takes effect from the next insert (a lower quota
    /// evicts down to it then).
    pub fn reconfigure(&mut self, cfg: &StoreConfig) -> Result<(), StoreError> {
        if cfg.dir != self.cfg.dir {
            return Err(StoreError::NeedsRestart { key: "dir" });
        }
        if cfg.fsync != self.cfg.fsync {
            return Err(StoreError::NeedsRestart { key: "fsync" });
        }
        self.cfg = cfg.clone();
        tracing::info!(
            max_bytes = cfg.max_bytes,
            min_free_bytes = cfg.min_free_bytes,
            eviction = cfg.eviction.name(),
            "store settings reloaded"
        );
        Ok(())
    }

    /// What *Startup* found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Number of stored samples.
    pub fn len(&self) -> u64 {
        self.sample_count
    }

    pub fn is_empty(&self) -> bool {
        self.sample_count == 0
    }

    /// Bytes counted against `max_bytes`.
    pub fn quota_used(&self) -> u64 {
        self.quota_used
    }

    /// Test hook: inject crashes or ENOSPC into the next operations.
    #[doc(hidden)]
    pub fn inject_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Ids of the samples matching `q` (cheap: no record is read).
    pub fn ids(&self, q: &Query) -> Result<Vec<SampleId>, StoreError> {
        query::ids(&self.conn, q)
    }

    /// The samples matching `q`, each with its instances (masks as RLE, decoded on demand).
    pub fn query(&self, q: &Query) -> Result<Samples<'_>, StoreError> {
        Ok(Samples {
            conn: &self.conn,
            samples_dir: self.samples.clone(),
            ids: query::ids(&self.conn, q)?.into_iter(),
        })
    }

    /// One sample, `None` if there is no such id (never stored, or evicted).
    pub fn sample(&self, id: SampleId) -> Result<Option<SampleRecord>, StoreError> {
        db::load_sample(&self.conn, &self.samples, id)
    }

    pub fn stats(&self) -> Result<Stats, StoreError> {
        query::stats(&self.conn, &self.dir)
    }

    /// Verifies the invariants (see [`CheckReport`]).
    pub fn check(&self, opts: &CheckOptions) -> Result<CheckReport, StoreError> {
        check::run(&self.conn, &self.samples, opts)
    }

    /// Orderly shutdown: folds the write-ahead log into the index and releases the lock.
    pub fn close(self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("pragma wal_checkpoint(truncate)")
            .db("checkpointing the index")?;
        self.conn
            .close()
            .map_err(|(_, e)| e)
            .db("closing the index")?;
        Ok(())
    }
}

/// Read-only access to a store, usable while a daemon writes it.
pub struct StoreReader {
    dir: PathBuf,
    samples: PathBuf,
    conn: Connection,
}

impl StoreReader {
    /// Opens `dir/index.db` read-only; no lock, no recovery.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let conn = db::open_ro(&dir.join(layout::INDEX_FILE))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            samples: dir.join(layout::SAMPLES_DIR),
            conn,
        })
    }

    pub fn ids(&self, q: &Query) -> Result<Vec<SampleId>, StoreError> {
        query::ids(&self.conn, q)
    }

    pub fn query(&self, q: &Query) -> Result<Samples<'_>, StoreError> {
        Ok(Samples {
            conn: &self.conn,
            samples_dir: self.samples.clone(),
            ids: query::ids(&self.conn, q)?.into_iter(),
        })
    }

    pub fn sample(&self, id: SampleId) -> Result<Option<SampleRecord>, StoreError> {
        db::load_sample(&self.conn, &self.samples, id)
    }

    pub fn stats(&self) -> Result<Stats, StoreError> {
        query::stats(&self.conn, &self.dir)
    }
}
