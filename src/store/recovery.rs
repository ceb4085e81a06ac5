//! The *Startup* procedure of the module doc: turns whatever a crash left into a store that
//! satisfies the invariants.

use super::db;
use super::encode::sha256;
use super::error::DbContext;
use super::fs;
use super::layout::{self, FileKind, Found, Name};
use super::record::{unhex32, MetaFile, SampleId, META_FORMAT};
use super::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// What *Startup* found and did. All empty after an orderly shutdown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Interrupted evictions completed (step 3).
    pub garbage_completed: Vec<SampleId>,
    /// Temporary files (step 4) and leftovers of interrupted writes beside an indexed sample
    /// (step 6) removed.
    pub temp_files_removed: Vec<PathBuf>,
    /// Rows removed because their files were missing or of the wrong size (step 5).
    pub damaged_rows_removed: Vec<SampleId>,
    /// Complete samples without a row, indexed (step 6).
    pub reindexed: Vec<SampleId>,
    /// Incomplete samples without a row, whose files were removed (step 6).
    pub incomplete_removed: Vec<SampleId>,
    /// Files whose names the store does not write, left in place (step 7).
    pub unknown_files: Vec<PathBuf>,
}

impl RecoveryReport {
    /// Whether start-up found nothing to repair.
    pub fn is_clean(&self) -> bool {
        *self == RecoveryReport::default()
    }
}

impl Store {
    pub(crate) fn recover(&mut self) -> Result<RecoveryReport, StoreError> {
        let mut report = RecoveryReport::default();

        // Step 3: interrupted evictions.
        let garbage = db::garbage_rows(&self.conn)?;
        if !garbage.is_empty() {
            self.remove_garbage(&garbage, false)?;
            report.garbage_completed = garbage.iter().map(|g| g.id).collect();
            tracing::info!(samples = garbage.len(), "completed interrupted evictions");
        }

        // Step 4: temporary files.
        let (files, _) = layout::scan(&self.samples)?;
        let mut touched_dirs = BTreeSet::new();
        let mut by_stem: BTreeMap<(String, String), Vec<Found>> = BTreeMap::new();
        for f in files {
            match &f.parsed {
                Name::Temp => {
                    let p = f.path(&self.samples);
                    fs::remove_if_exists(&p)?;
                    touched_dirs.insert(f.rel_dir.clone());
                    report.temp_files_removed.push(p);
                }
                Name::Unknown => {
                    let p = f.path(&self.samples);
                    tracing::warn!(path = %p.display(), "unknown file in the sample directory; left alone");
                    report.unknown_files.push(p);
                }
                Name::Sample { stem, .. } => {
                    by_stem
                        .entry((f.rel_dir.clone(), stem.clone()))
                        .or_default()
                        .push(f);
                }
            }
        }

        // Step 5: rows whose files are missing or short.
        let rows = db::file_rows(&self.conn)?;
        let mut damaged = Vec::new();
        // Indexed samples: their image kind and whether they have a refined file.
        let mut indexed: HashMap<(String, String), (FileKind, bool)> = HashMap::new();
        for r in &rows {
            let key = (r.dir.clone(), r.stem.clone());
            let found = by_stem.get(&key);
            let size_of = |kind: FileKind| {
                found.and_then(|fs| {
                    fs.iter().find_map(|f| match &f.parsed {
                        Name::Sample { kind: k, .. } if *k == kind => Some(f.bytes),
                        _ => None,
                    })
                })
            };
            let expected = r.files();
            let problems: Vec<String> = expected
                .iter()
                .filter_map(|&(kind, (want, _))| match size_of(kind) {
                    None => Some(format!("{} missing", layout::file_name(&r.stem, kind))),
                    Some(got) if got != want => Some(format!(
                        "{} has {got} bytes, expected {want}",
                        layout::file_name(&r.stem, kind)
                    )),
                    Some(_) => None,
                })
                .collect();
            if problems.is_empty() {
                indexed.insert(
                    key,
                    (FileKind::Image(r.image_format()), r.refined.is_some()),
                );
            } else {
                tracing::warn!(id = r.id, dir = r.dir, problems = ?problems, "removing damaged sample");
                damaged.push(r.id);
                // Its remaining files go with it.
                by_stem.remove(&key);
            }
        }
        if !damaged.is_empty() {
            self.remove_samples(&damaged, false)?;
            report.damaged_rows_removed = damaged;
        }

        // Step 6: sample files without a row.
        let mut next = db::next_sample_id(&self.conn)?;
        let max_row_id = rows.iter().map(|r| r.id).max().unwrap_or(0);
        next = next.max(max_row_id + 1);
        for ((rel_dir, stem), group) in by_stem {
            if let Some(&(image, refined)) = indexed.get(&(rel_dir.clone(), stem.clone())) {
                // An indexed sample; an image of the other format beside it is not its file
                // (a Store interrupted before a change of `image_format`), nor is a refined
                // file its row does not name.
                for f in &group {
                    if let Name::Sample { kind, .. } = f.parsed {
                        let stray = (matches!(kind, FileKind::Image(_)) && kind != image)
                            || (kind == FileKind::Refined && !refined);
                        if stray {
                            let p = f.path(&self.samples);
                            tracing::info!(path = %p.display(), "removing a leftover image");
                            fs::remove_if_exists(&p)?;
                            report.temp_files_removed.push(p);
                            touched_dirs.insert(rel_dir.clone());
                        }
                    }
                }
                continue;
            }
            let id = match &group[0].parsed {
                Name::Sample { id, .. } => *id,
                _ => unreachable!("only sample names are grouped"),
            };
            let taken = rows.iter().any(|r| r.id == id);
            let complete = if taken {
                Err("its id belongs to another sample".to_owned())
            } else {
                self.reindex(&rel_dir, &stem, id, &group)
            };
            touched_dirs.insert(rel_dir.clone());
            match complete {
                Ok(()) => {
                    tracing::info!(
                        id,
                        dir = rel_dir,
                        stem,
                        "re-indexed a complete sample without a row"
                    );
                    report.reindexed.push(id);
                    next = next.max(id + 1);
                }
                Err(why) => {
                    tracing::info!(
                        id,
                        dir = rel_dir,
                        stem,
                        why,
                        "removing an incomplete sample"
                    );
                    for f in &group {
                        fs::remove_if_exists(&f.path(&self.samples))?;
                    }
                    report.incomplete_removed.push(id);
                }
            }
        }
        if next != db::next_sample_id(&self.conn)? {
            let tx = self.conn.transaction().db("raising next_sample_id")?;
            db::set_next_sample_id(&tx, next)?;
            tx.commit().db("raising next_sample_id")?;
        }
        if self.cfg.fsync {
            for d in &touched_dirs {
                let p = self.samples.join(d);
                if p.exists() {
                    fs::sync_dir(&p)?;
                }
            }
        }
        for d in &touched_dirs {
            layout::prune_empty_dirs(&self.samples, d);
        }
        if !report.is_clean() {
            tracing::warn!(?report, "store recovered from an unclean shutdown");
        }
        Ok(report)
    }

    /// Indexes a sample found without a row if it is complete; says why not otherwise.
    fn reindex(
        &mut self,
        rel_dir: &str,
        stem: &str,
        id: SampleId,
        group: &[Found],
    ) -> Result<(), String> {
        let find = |kind: FileKind| {
            group
                .iter()
                .find(|f| matches!(&f.parsed, Name::Sample { kind: k, .. } if *k == kind))
        };
        let meta_file = find(FileKind::Meta).ok_or("no metadata JSON")?;
        let meta_bytes = std::fs::read(meta_file.path(&self.samples))
            .map_err(|e| format!("reading JSON: {e}"))?;
        let m: MetaFile =
            serde_json::from_slice(&meta_bytes).map_err(|e| format!("JSON does not parse: {e}"))?;
        if m.format != META_FORMAT || m.id != id {
            return Err(format!("JSON is {} for id {}", m.format, m.id));
        }
        let format = super::config::ImageFormat::from_extension(match m.image.format.as_str() {
            "jpeg" => "jpg",
            other => other,
        })
        .ok_or("unknown image format")?;
        let mut files = vec![
            (
                FileKind::Image(format),
                &m.image.file,
                m.image.bytes,
                &m.image.sha256,
            ),
            (
                FileKind::Masks,
                &m.masks.file,
                m.masks.bytes,
                &m.masks.sha256,
            ),
        ];
        if let Some(r) = &m.refined_masks {
            files.push((FileKind::Refined, &r.file, r.bytes, &r.sha256));
        }
        for (kind, name, bytes, hash) in files {
            if *name != layout::file_name(stem, kind) {
                return Err(format!("JSON names {name}"));
            }
            let f = find(kind).ok_or_else(|| format!("{name} missing"))?;
            if f.bytes != bytes {
                return Err(format!("{name} has {} bytes, JSON says {bytes}", f.bytes));
            }
            let data = std::fs::read(f.path(&self.samples)).map_err(|e| format!("{name}: {e}"))?;
            if Some(sha256(&data)) != unhex32(hash) {
                return Err(format!("{name} does not match its sha256"));
            }
        }
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        db::insert_sample(
            &tx,
            &m,
            rel_dir,
            stem,
            meta_bytes.len() as u64,
            &sha256(&meta_bytes),
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(())
    }
}
