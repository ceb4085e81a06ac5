//! `edgesift check`: verifies the storage invariants of the module doc without changing
//! anything.
//!
//! Cost, for a full 8 GiB store of ~40 000 samples on an SD card: the index check and the
//! directory scan take seconds; hashing every file reads the whole store (minutes at SD-card
//! speed), so it can be turned off ([`CheckOptions::verify_hashes`]).

use super::db;
use super::encode::sha256;
use super::error::DbContext;
use super::fs;
use super::layout::{self, Name, INDEX_FILE};
use super::record::SampleId;
use super::StoreError;
use rusqlite::Connection;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// How thorough a check is.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Read every file and compare its sha256 with the index (invariant 1 in full); without
    /// it, only presence and size are checked.
    pub verify_hashes: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            verify_hashes: true,
        }
    }
}

/// One violation of the invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issue {
    /// `pragma integrity_check` did not say `ok`.
    Integrity(String),
    /// A row's file is missing (invariant 1).
    MissingFile { id: SampleId, path: PathBuf },
    /// A row's file has another size than recorded (invariant 1).
    WrongSize {
        id: SampleId,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// A row's file has another content than recorded (invariant 1).
    WrongHash { id: SampleId, path: PathBuf },
    /// A row that cannot be read back (bad RLE, bad selection JSON).
    BadRow { id: SampleId, reason: String },
    /// A sample file without a row (invariants 2 and 3): left by a crash (the next start-up
    /// removes or re-indexes it) or put there by hand.
    Unindexed { path: PathBuf },
    /// A `.tmp` file: an interrupted write (invariant 3).
    TempFile { path: PathBuf },
    /// A `garbage` row: an interrupted eviction (invariant 3).
    Garbage { id: SampleId },
    /// A file whose name the store never writes.
    Unknown { path: PathBuf },
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::Integrity(s) => write!(f, "index integrity: {s}"),
            Issue::MissingFile { id, path } => {
                write!(f, "sample {id}: file missing: {}", path.display())
            }
            Issue::WrongSize {
                id,
                path,
                expected,
                actual,
            } => write!(
                f,
                "sample {id}: {} has {actual} bytes, the index says {expected}",
                path.display()
            ),
            Issue::WrongHash { id, path } => write!(
                f,
                "sample {id}: {} does not match its recorded sha256",
                path.display()
            ),
            Issue::BadRow { id, reason } => write!(f, "sample {id}: unreadable row: {reason}"),
            Issue::Unindexed { path } => {
                write!(f, "file without an index row: {}", path.display())
            }
            Issue::TempFile { path } => {
                write!(f, "leftover temporary file: {}", path.display())
            }
            Issue::Garbage { id } => write!(f, "sample {id}: eviction not completed"),
            Issue::Unknown { path } => write!(f, "stray file: {}", path.display()),
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub samples: u64,
    pub files: u64,
    pub bytes_hashed: u64,
    pub issues: Vec<Issue>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.issues.is_empty()
    }
}

/// Checks the store at `dir` without a running daemon: takes the store's lock (so fails with
/// [`StoreError::Locked`] while a daemon runs), opens the index read-only, repairs nothing.
pub fn check_dir(dir: &Path, opts: &CheckOptions) -> Result<CheckReport, StoreError> {
    if !dir.join(INDEX_FILE).exists() {
        return Err(StoreError::NoStore(dir.to_path_buf()));
    }
    let _lock = fs::lock_exclusive(dir)?;
    let conn = db::open_ro(&dir.join(INDEX_FILE))?;
    run(&conn, &dir.join(layout::SAMPLES_DIR), opts)
}

pub(crate) fn run(
    conn: &Connection,
    samples: &Path,
    opts: &CheckOptions,
) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    let mut st = conn
        .prepare("pragma integrity_check")
        .db("running integrity_check")?;
    let lines = st
        .query_map([], |r| r.get::<_, String>(0))
        .db("running integrity_check")?;
    for l in lines {
        let l = l.db("reading integrity_check")?;
        if l != "ok" {
            report.issues.push(Issue::Integrity(l));
        }
    }
    let fk_violations: i64 = conn
        .query_row("select count(*) from pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .db("running foreign_key_check")?;
    if fk_violations > 0 {
        report.issues.push(Issue::Integrity(format!(
            "{fk_violations} rows violate foreign keys"
        )));
    }
    for g in db::garbage_rows(conn)? {
        report.issues.push(Issue::Garbage { id: g.id });
    }

    let (files, _) = layout::scan(samples)?;
    report.files = files.len() as u64;
    let mut on_disk: HashMap<PathBuf, u64> = HashMap::new();
    for f in &files {
        let p = f.path(samples);
        match f.parsed {
            Name::Temp => report.issues.push(Issue::TempFile { path: p }),
            Name::Unknown => report.issues.push(Issue::Unknown { path: p }),
            Name::Sample { .. } => {
                on_disk.insert(p, f.bytes);
            }
        }
    }

    let rows = db::file_rows(conn)?;
    report.samples = rows.len() as u64;
    for r in &rows {
        let dir = samples.join(&r.dir);
        for (kind, (bytes, hash)) in r.files() {
            let path = dir.join(layout::file_name(&r.stem, kind));
            match on_disk.remove(&path) {
                None => report.issues.push(Issue::MissingFile { id: r.id, path }),
                Some(actual) if actual != bytes => report.issues.push(Issue::WrongSize {
                    id: r.id,
                    path,
                    expected: bytes,
                    actual,
                }),
                Some(_) if opts.verify_hashes => match std::fs::read(&path) {
                    Ok(data) => {
                        report.bytes_hashed += data.len() as u64;
                        if sha256(&data) != hash {
                            report.issues.push(Issue::WrongHash { id: r.id, path });
                        }
                    }
                    Err(e) => return Err(StoreError::io(&path, e)),
                },
                Some(_) => {}
            }
        }
        if let Err(e) = db::load_sample(conn, samples, r.id) {
            report.issues.push(Issue::BadRow {
                id: r.id,
                reason: e.to_string(),
            });
        }
    }
    let mut leftovers: Vec<PathBuf> = on_disk.into_keys().collect();
    leftovers.sort();
    report
        .issues
        .extend(leftovers.into_iter().map(|path| Issue::Unindexed { path }));
    Ok(report)
}
