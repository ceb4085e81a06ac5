//! The *Store* and *Evict* procedures of the module doc, step by step.

use super::config::EvictionPolicy;
use super::db::{self, blocks};
use super::encode::{self, sha256, Encoded};
use super::error::DbContext;
use super::faults::Step;
use super::fs::{self, TEMP_SUFFIX};
use super::layout::{self, file_name, FileKind};
use super::record::{system_time_to_unix_ns, NewSample, SampleId};
use super::{Store, StoreError};
use std::collections::BTreeSet;
use std::path::Path;

/// Victims considered per eviction query.
const EVICT_BATCH: i64 = 256;

impl Store {
    /// Stores one sample (procedure *Store*); returns its id once it is durable and indexed.
    ///
    /// Never leaves a partial sample behind: on error nothing of it is indexed and its files are
    /// removed. [`StoreError::DiskFull`] and [`StoreError::BadSample`] cost this sample only.
    pub fn insert(&mut self, s: &NewSample) -> Result<SampleId, StoreError> {
        let r = self.insert_inner(s);
        if matches!(r, Err(StoreError::DiskFull { .. })) {
            self.counters.disk_full += 1;
        }
        r
    }

    fn insert_inner(&mut self, s: &NewSample) -> Result<SampleId, StoreError> {
        let id = self.next_id;
        let (rel_dir, stem) = layout::place(system_time_to_unix_ns(s.captured.wall), id);
        // Step 1.
        // Encoding (JPEG, PNG, JSON) is the store's CPU work: on the network's pool, see
        // `crate::pool`.
        let (format, quality) = (self.cfg.image_format, self.cfg.jpeg_quality);
        let enc = crate::pool::on_pool(|| encode::encode(s, id, &stem, format, quality))?;
        let quota = blocks(enc.image.len() as u64)
            + blocks(enc.masks.len() as u64)
            + enc.refined.as_ref().map_or(0, |r| blocks(r.len() as u64))
            + blocks(enc.meta.len() as u64);
        // Step 2.
        self.make_room(quota)?;
        // Steps 3-5, with one retry after ENOSPC.
        match self.write_sample(&rel_dir, &stem, &enc) {
            Ok(()) => {}
            Err(e) if e.is_disk_full() => {
                tracing::warn!(id, error = %e, "filesystem full while storing; evicting and retrying once");
                self.counters.enospc_retries += 1;
                let freed = if self.sample_count > 0 {
                    self.evict(quota)?.1
                } else {
                    0
                };
                if let Err(e) = self.write_sample(&rel_dir, &stem, &enc) {
                    if e.is_disk_full() {
                        return Err(self.disk_full(quota, freed));
                    }
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        // Step 6.
        if let Err(e) = self.commit(&enc, &rel_dir, &stem) {
            self.remove_sample_files(&rel_dir, &stem);
            return Err(if e.is_disk_full() {
                self.disk_full(quota, 0)
            } else {
                e
            });
        }
        self.next_id = id + 1;
        self.quota_used += quota;
        self.sample_count += 1;
        self.counters.inserted += 1;
        tracing::debug!(id, dir = rel_dir, stem, bytes = quota, "stored sample");
        Ok(id)
    }

    fn disk_full(&self, needed: u64, _freed: u64) -> StoreError {
        let available = self
            .free_space
            .free_bytes(&self.dir)
            .unwrap_or(0)
            .saturating_sub(self.cfg.min_free_bytes)
            .min(self.cfg.max_bytes.saturating_sub(self.quota_used));
        StoreError::DiskFull {
            dir: self.dir.clone(),
            needed,
            available,
        }
    }

    fn crash_point(&self, step: Step) -> Result<(), StoreError> {
        if self.faults.crash_at == Some(step) {
            return Err(StoreError::InjectedCrash(step));
        }
        Ok(())
    }

    /// Step 2: evicts until the sample fits both the quota and the free-space guard. Refuses
    /// (without evicting anything) when even an empty store could not take it.
    fn make_room(&mut self, need: u64) -> Result<(), StoreError> {
        if need > self.cfg.max_bytes {
            return Err(self.disk_full(need, 0));
        }
        let free_at_start = self
            .free_space
            .free_bytes(&self.dir)
            .map_err(|e| StoreError::io(&self.dir, e))?;
        let guard = self.cfg.min_free_bytes.saturating_add(need);
        if free_at_start.saturating_add(self.quota_used) < guard {
            // Something else filled the disk: evicting every sample would not make room.
            return Err(self.disk_full(need, 0));
        }
        // Freed blocks may show up in statvfs only after the filesystem's next journal commit;
        // credit what was unlinked so that a lagging count does not evict more than needed.
        let mut credited = 0u64;
        loop {
            let over_quota = (self.quota_used + need).saturating_sub(self.cfg.max_bytes);
            let free = if credited == 0 {
                free_at_start
            } else {
                self.free_space
                    .free_bytes(&self.dir)
                    .map_err(|e| StoreError::io(&self.dir, e))?
                    .max(free_at_start + credited)
            };
            let short = guard.saturating_sub(free);
            let deficit = over_quota.max(short);
            if deficit == 0 {
                return Ok(());
            }
            if self.sample_count == 0 {
                return Err(self.disk_full(need, credited));
            }
            let (n, freed) = self.evict(deficit)?;
            tracing::info!(
                samples = n,
                bytes = freed,
                reason = if over_quota > 0 {
                    "max_bytes"
                } else {
                    "min_free_bytes"
                },
                policy = self.cfg.eviction.name(),
                "evicted samples to make room"
            );
            if n == 0 {
                return Err(self.disk_full(need, credited));
            }
            credited += freed;
        }
    }

    /// Steps 3-5. On failure (other than an injected crash) the sample's files are removed.
    fn write_sample(&mut self, rel_dir: &str, stem: &str, enc: &Encoded) -> Result<(), StoreError> {
        let r = self.write_sample_steps(rel_dir, stem, enc);
        if let Err(e) = &r {
            if !matches!(e, StoreError::InjectedCrash(_)) {
                self.remove_sample_files(rel_dir, stem);
            }
        }
        r
    }

    fn write_sample_steps(
        &mut self,
        rel_dir: &str,
        stem: &str,
        enc: &Encoded,
    ) -> Result<(), StoreError> {
        let fsync = self.cfg.fsync;
        let dir = fs::ensure_dir(&self.samples, Path::new(rel_dir), fsync)?;
        // The sidecar last: it makes the sample complete (recovery's test).
        let mut files = vec![
            (FileKind::Image(self.cfg.image_format), &enc.image),
            (FileKind::Masks, &enc.masks),
        ];
        files.extend(enc.refined.as_ref().map(|r| (FileKind::Refined, r)));
        files.push((FileKind::Meta, &enc.meta));
        for (kind, bytes) in files {
            let name = file_name(stem, kind);
            if kind == FileKind::Meta && self.faults.crash_at == Some(Step::StoreMetaTempPartial) {
                fs::write_partial_temp(&dir, &name, bytes)?;
                return Err(StoreError::InjectedCrash(Step::StoreMetaTempPartial));
            }
            if matches!(kind, FileKind::Image(_))
                && self.faults.crash_at == Some(Step::StoreImageTemp)
            {
                std::fs::write(dir.join(format!("{name}{TEMP_SUFFIX}")), bytes)
                    .map_err(|e| StoreError::io(&dir, e))?;
                return Err(StoreError::InjectedCrash(Step::StoreImageTemp));
            }
            let enospc = self.faults.enospc_writes > 0;
            if enospc {
                self.faults.enospc_writes -= 1;
            }
            fs::write_file(&dir, &name, bytes, fsync, enospc)?;
            if matches!(kind, FileKind::Image(_)) {
                self.crash_point(Step::StoreImageRenamed)?;
            }
        }
        self.crash_point(Step::StoreFilesRenamed)?;
        if fsync {
            fs::sync_dir(&dir)?;
        }
        self.crash_point(Step::StoreDirSynced)
    }

    fn commit(&mut self, enc: &Encoded, rel_dir: &str, stem: &str) -> Result<(), StoreError> {
        let id = enc.parsed.id;
        let tx = self.conn.transaction().db("starting a sample insert")?;
        db::insert_sample(
            &tx,
            &enc.parsed,
            rel_dir,
            stem,
            enc.meta.len() as u64,
            &sha256(&enc.meta),
        )?;
        db::set_next_sample_id(&tx, id + 1)?;
        tx.commit().db("committing a sample")
    }

    /// Best-effort removal of every file (final or temporary) of a sample that failed to store.
    /// What cannot be removed now is removed or re-indexed by the next *Startup*.
    fn remove_sample_files(&self, rel_dir: &str, stem: &str) {
        let dir = self.samples.join(rel_dir);
        for kind in [
            FileKind::Image(self.cfg.image_format),
            FileKind::Masks,
            FileKind::Refined,
            FileKind::Meta,
        ] {
            let name = file_name(stem, kind);
            for n in [name.clone(), format!("{name}{TEMP_SUFFIX}")] {
                if let Err(e) = fs::remove_if_exists(&dir.join(&n)) {
                    tracing::warn!(error = %e, "cannot remove a file of a failed store");
                }
            }
        }
    }

    /// *Evict*: removes samples by policy until at least `bytes` of quota are freed (or the
    /// store is empty). Returns `(samples, quota bytes)` freed.
    pub(crate) fn evict(&mut self, bytes: u64) -> Result<(usize, u64), StoreError> {
        let order = match self.cfg.eviction {
            EvictionPolicy::LowestValue => "value, id",
            EvictionPolicy::Oldest => "id",
        };
        let mut victims: Vec<(SampleId, u64)> = Vec::new();
        let mut total = 0u64;
        {
            let mut st = self
                .conn
                .prepare_cached(&format!(
                    "select id, quota_bytes from sample order by {order} limit ?1"
                ))
                .db("choosing eviction victims")?;
            let rows = st
                .query_map([EVICT_BATCH], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .db("choosing eviction victims")?;
            for r in rows {
                let (id, q) = r.db("choosing eviction victims")?;
                victims.push((id, q as u64));
                total += q as u64;
                if total >= bytes {
                    break;
                }
            }
        }
        let ids: Vec<SampleId> = victims.iter().map(|v| v.0).collect();
        self.remove_samples(&ids, true)?;
        self.quota_used = self.quota_used.saturating_sub(total);
        self.sample_count = self.sample_count.saturating_sub(ids.len() as u64);
        self.counters.evicted += ids.len() as u64;
        self.counters.evicted_bytes += total;
        Ok((ids.len(), total))
    }

    /// *Evict* steps 1-4 for the given sample rows. `live`: warn about files already missing
    /// (during recovery some may legitimately be gone).
    pub(crate) fn remove_samples(
        &mut self,
        ids: &[SampleId],
        live: bool,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // Step 1.
        db::move_to_garbage(&mut self.conn, ids)?;
        self.crash_point(Step::EvictGarbageCommitted)?;
        let garbage: Vec<_> = db::garbage_rows(&self.conn)?
            .into_iter()
            .filter(|g| ids.contains(&g.id))
            .collect();
        self.remove_garbage(&garbage, live)
    }

    /// *Evict* steps 2-4 (also *Startup* step 3) for `garbage` rows.
    pub(crate) fn remove_garbage(
        &mut self,
        garbage: &[db::GarbageRow],
        live: bool,
    ) -> Result<(), StoreError> {
        let mut dirs = BTreeSet::new();
        let mut done = Vec::new();
        let mut first = true;
        for g in garbage {
            let dir = self.samples.join(&g.dir);
            let format = super::config::ImageFormat::from_extension(&g.image_ext)
                .unwrap_or(super::config::ImageFormat::Jpeg);
            let mut ok = true;
            // The garbage row does not say whether the sample had refined masks; removing a
            // refined file that is not there is no loss.
            for kind in [
                FileKind::Image(format),
                FileKind::Masks,
                FileKind::Refined,
                FileKind::Meta,
            ] {
                let path = dir.join(file_name(&g.stem, kind));
                match fs::remove_if_exists(&path) {
                    Ok(true) => {}
                    Ok(false) if kind == FileKind::Refined => {}
                    Ok(false) if live => {
                        tracing::warn!(id = g.id, path = %path.display(), "evicted sample had lost a file")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(id = g.id, error = %e, "cannot remove an evicted file; will retry at start-up");
                        ok = false;
                    }
                }
                if first {
                    first = false;
                    self.crash_point(Step::EvictFirstUnlink)?;
                }
            }
            dirs.insert(g.dir.clone());
            if ok {
                done.push(g.id);
            }
        }
        self.crash_point(Step::EvictUnlinked)?;
        if self.cfg.fsync {
            for d in &dirs {
                let p = self.samples.join(d);
                if p.exists() {
                    fs::sync_dir(&p)?;
                }
            }
        }
        self.crash_point(Step::EvictDirSynced)?;
        db::delete_garbage(&mut self.conn, &done)?;
        for d in &dirs {
            layout::prune_empty_dirs(&self.samples, d);
        }
        Ok(())
    }
}
