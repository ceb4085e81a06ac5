//! The SQLite index: opening it (pragmas, schema, upgrades) and its rows.

use super::config::ImageFormat;
use super::error::{DbContext, StoreError};
use super::record::{
    unhex32, InstanceRecord, MetaFile, RefinedRecord, SampleId, SampleRecord, StoredFile,
};
use crate::geometry::{BBox, Rle};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use std::path::Path;
use std::time::Duration;

/// The schema `schema.sql` creates; older indexes are upgraded by `upgrade/`.
pub const SCHEMA_VERSION: i64 = 2;

const SCHEMA_SQL: &str = include_str!("schema.sql");

/// The one place the connection's pragmas are set.
///
/// - `journal_mode = wal`: readers (`edgesift ls`) never block the writer, and a commit is one
///   append to the log.
/// - `synchronous = full` (with `fsync`): a commit is durable when it returns; `normal` without,
///   which keeps the index consistent but may lose the last commits on power loss (recovery
///   then re-indexes those samples from their files).
/// - `foreign_keys = on`: instance and reason rows go with their sample.
/// - `busy_timeout`: a reader holding a lock briefly delays rather than fails the writer.
/// - `fullfsync` only matters on macOS, where plain fsync does not reach the platter.
pub(crate) fn set_pragmas(
    conn: &Connection,
    fsync: bool,
    read_only: bool,
) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(5))
        .db("setting busy_timeout")?;
    conn.execute_batch("pragma foreign_keys = on; pragma fullfsync = on;")
        .db("setting integrity pragmas")?;
    if read_only {
        return Ok(());
    }
    let mode: String = conn
        .query_row("pragma journal_mode = wal", [], |r| r.get(0))
        .db("setting journal_mode")?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "SQLite refused WAL journaling");
    }
    conn.execute_batch(if fsync {
        "pragma synchronous = full"
    } else {
        "pragma synchronous = normal"
    })
    .db("setting synchronous")?;
    Ok(())
}

fn not_an_index(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::NotAnIndex {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Opens (creating it if absent) the index for writing; upgrades it to [`SCHEMA_VERSION`].
pub(crate) fn open_rw(path: &Path, fsync: bool) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path).map_err(|e| not_an_index(path, e))?;
    set_pragmas(&conn, fsync, false).map_err(|e| not_an_index(path, e))?;
    match schema_version(&conn, path)? {
        None => {
            let tx = conn.transaction().db("creating the index")?;
            tx.execute_batch(SCHEMA_SQL).db("creating the schema")?;
            tx.execute(
                "insert into meta (id, schema_version, next_sample_id, created_unix_ns) \
                 values (1, ?1, 1, ?2)",
                params![
                    SCHEMA_VERSION,
                    super::record::system_time_to_unix_ns(std::time::SystemTime::now())
                ],
            )
            .db("creating the meta row")?;
            tx.commit().db("creating the index")?;
            tracing::info!(path = %path.display(), version = SCHEMA_VERSION, "created index");
        }
        Some(v) => {
            super::upgrade::upgrade(&mut conn, path, v, SCHEMA_VERSION, super::upgrade::STEPS)?
        }
    }
    Ok(conn)
}

/// Opens an existing index for reading only (works while a daemon writes it).
pub(crate) fn open_ro(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::NoStore(
            path.parent().unwrap_or(path).to_path_buf(),
        ));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| not_an_index(path, e))?;
    set_pragmas(&conn, false, true)?;
    match schema_version(&conn, path)? {
        Some(SCHEMA_VERSION) => Ok(conn),
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: v,
            supported: SCHEMA_VERSION,
        }),
        Some(v) => Err(not_an_index(
            path,
            format!("schema version {v} needs an upgrade: start the daemon (or `edgesift check --repair`) once"),
        )),
        None => Err(not_an_index(path, "no edgesift tables")),
    }
}

/// `None` for an empty database, the version of an edgesift index, an error for anything else.
fn schema_version(conn: &Connection, path: &Path) -> Result<Option<i64>, StoreError> {
    let tables: i64 = conn
        .query_row("select count(*) from sqlite_master", [], |r| r.get(0))
        .map_err(|e| not_an_index(path, e))?;
    if tables == 0 {
        return Ok(None);
    }
    let has_meta: i64 = conn
        .query_row(
            "select count(*) from sqlite_master where type = 'table' and name = 'meta'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| not_an_index(path, e))?;
    if has_meta == 0 {
        return Err(not_an_index(path, "SQLite database without a meta table"));
    }
    conn.query_row("select schema_version from meta where id = 1", [], |r| {
        r.get::<_, i64>(0)
    })
    .optional()
    .map_err(|e| not_an_index(path, e))?
    .map(Some)
    .ok_or_else(|| not_an_index(path, "meta table is empty"))
}

pub(crate) fn next_sample_id(conn: &Connection) -> Result<SampleId, StoreError> {
    conn.query_row("select next_sample_id from meta where id = 1", [], |r| {
        r.get(0)
    })
    .db("reading next_sample_id")
}

pub(crate) fn set_next_sample_id(tx: &Transaction, next: SampleId) -> Result<(), StoreError> {
    tx.execute("update meta set next_sample_id = ?1 where id = 1", [next])
        .db("advancing next_sample_id")?;
    Ok(())
}

/// Bytes a file takes against the quota: whole 4 KiB blocks, as most filesystems allocate.
pub(crate) fn blocks(bytes: u64) -> u64 {
    bytes.div_ceil(4096).max(1) * 4096
}

/// Inserts the rows of a sample described by its sidecar JSON.
pub(crate) fn insert_sample(
    tx: &Transaction,
    m: &MetaFile,
    dir: &str,
    stem: &str,
    meta_bytes: u64,
    meta_sha256: &[u8; 32],
) -> Result<u64, StoreError> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        what: format!("sample {} metadata", m.id),
        reason: reason.to_owned(),
    };
    let ext = match m.image.format.as_str() {
        "jpeg" => ImageFormat::Jpeg,
        "png" => ImageFormat::Png,
        other => return Err(corrupt(&format!("image format {other:?}"))),
    }
    .extension();
    let image_sha = unhex32(&m.image.sha256).ok_or_else(|| corrupt("image sha256"))?;
    let masks_sha = unhex32(&m.masks.sha256).ok_or_else(|| corrupt("masks sha256"))?;
    let refined = match &m.refined_masks {
        Some(r) => Some((
            r.bytes,
            unhex32(&r.sha256).ok_or_else(|| corrupt("refined masks sha256"))?,
        )),
        None => None,
    };
    let quota = blocks(m.image.bytes)
        + blocks(m.masks.bytes)
        + refined.map_or(0, |r| blocks(r.0))
        + blocks(meta_bytes);
    tx.prepare_cached(
        "insert into sample (id, dir, stem, image_ext, width, height, seq, captured_unix_ns, \
         captured_ns, source, source_file, source_index, model_name, model_sha256, value, \
         selection_json, image_bytes, image_sha256, masks_bytes, masks_sha256, meta_bytes, \
         meta_sha256, quota_bytes, refined_bytes, refined_sha256) values (?1, ?2, ?3, ?4, ?5, \
         ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, \
         ?24, ?25)",
    )
    .db("preparing the sample insert")?
    .execute(params![
        m.id,
        dir,
        stem,
        ext,
        m.image.width,
        m.image.height,
        m.seq as i64,
        m.captured.unix_ns,
        m.captured.monotonic_ns as i64,
        m.source.source,
        m.source.file,
        m.source.index as i64,
        m.model.name,
        m.model.sha256,
        m.value as f64,
        m.selection.to_string(),
        m.image.bytes as i64,
        &image_sha[..],
        m.masks.bytes as i64,
        &masks_sha[..],
        meta_bytes as i64,
        &meta_sha256[..],
        quota as i64,
        refined.map(|r| r.0 as i64),
        refined.as_ref().map(|r| &r.1[..]),
    ])
    .db("inserting a sample row")?;
    let mut ins = tx
        .prepare_cached(
            "insert into instance (sample_id, idx, class_id, class_name, score, x1, y1, x2, y2, \
             area, rle, refined_iou, refined_rle) values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
             ?10, ?11, ?12, ?13)",
        )
        .db("preparing the instance insert")?;
    for (i, inst) in m.instances.iter().enumerate() {
        let [x1, y1, x2, y2] = inst.bbox_xyxy;
        ins.execute(params![
            m.id,
            i as i64,
            inst.class_id,
            inst.class_name,
            inst.score as f64,
            x1 as f64,
            y1 as f64,
            x2 as f64,
            y2 as f64,
            inst.area as i64,
            inst.segmentation.counts,
            inst.mask_refined.as_ref().map(|r| r.predicted_iou as f64),
            inst.mask_refined.as_ref().map(|r| &r.segmentation.counts),
        ])
        .db("inserting an instance row")?;
    }
    let mut reason = tx
        .prepare_cached("insert or ignore into reason (sample_id, reason) values (?1, ?2)")
        .db("preparing the reason insert")?;
    for r in &m.reasons {
        reason
            .execute(params![m.id, r])
            .db("inserting a reason row")?;
    }
    Ok(quota)
}

/// Where a sample's files are and what they should be; enough for recovery, eviction and check.
#[derive(Debug, Clone)]
pub(crate) struct FileRow {
    pub id: SampleId,
    pub dir: String,
    pub stem: String,
    pub image_ext: String,
    pub image: (u64, [u8; 32]),
    pub masks: (u64, [u8; 32]),
    pub meta: (u64, [u8; 32]),
    /// Only for samples with refined masks.
    pub refined: Option<(u64, [u8; 32])>,
}

impl FileRow {
    pub fn image_format(&self) -> ImageFormat {
        ImageFormat::from_extension(&self.image_ext).unwrap_or(ImageFormat::Jpeg)
    }

    /// Every file of the sample with its size and sha256.
    pub fn files(&self) -> Vec<(super::layout::FileKind, (u64, [u8; 32]))> {
        use super::layout::FileKind;
        let mut v = vec![
            (FileKind::Image(self.image_format()), self.image),
            (FileKind::Masks, self.masks),
        ];
        v.extend(self.refined.map(|r| (FileKind::Refined, r)));
        v.push((FileKind::Meta, self.meta));
        v
    }
}

fn sha(r: &rusqlite::Row, i: usize) -> rusqlite::Result<[u8; 32]> {
    let v: Vec<u8> = r.get(i)?;
    v.try_into().map_err(|v: Vec<u8>| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            format!("sha256 of {} bytes", v.len()).into(),
        )
    })
}

pub(crate) fn file_rows(conn: &Connection) -> Result<Vec<FileRow>, StoreError> {
    let mut st = conn
        .prepare(
            "select id, dir, stem, image_ext, image_bytes, image_sha256, masks_bytes, \
             masks_sha256, meta_bytes, meta_sha256, refined_bytes, refined_sha256 from sample \
             order by id",
        )
        .db("listing samples")?;
    let rows = st
        .query_map([], |r| {
            Ok(FileRow {
                id: r.get(0)?,
                dir: r.get(1)?,
                stem: r.get(2)?,
                image_ext: r.get(3)?,
                image: (r.get::<_, i64>(4)? as u64, sha(r, 5)?),
                masks: (r.get::<_, i64>(6)? as u64, sha(r, 7)?),
                meta: (r.get::<_, i64>(8)? as u64, sha(r, 9)?),
                refined: match r.get::<_, Option<i64>>(10)? {
                    Some(b) => Some((b as u64, sha(r, 11)?)),
                    None => None,
                },
            })
        })
        .db("listing samples")?;
    rows.collect::<Result<_, _>>().db("reading sample rows")
}

/// A `garbage` row: a sample whose files are being removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GarbageRow {
    pub id: SampleId,
    pub dir: String,
    pub stem: String,
    pub image_ext: String,
}

pub(crate) fn garbage_rows(conn: &Connection) -> Result<Vec<GarbageRow>, StoreError> {
    let mut st = conn
        .prepare("select sample_id, dir, stem, image_ext from garbage order by sample_id")
        .db("listing garbage")?;
    let rows = st
        .query_map([], |r| {
            Ok(GarbageRow {
                id: r.get(0)?,
                dir: r.get(1)?,
                stem: r.get(2)?,
                image_ext: r.get(3)?,
            })
        })
        .db("listing garbage")?;
    rows.collect::<Result<_, _>>().db("reading garbage rows")
}

/// Evict step 1 for a batch: every sample row becomes a garbage row, in one transaction.
pub(crate) fn move_to_garbage(conn: &mut Connection, ids: &[SampleId]) -> Result<(), StoreError> {
    let tx = conn.transaction().db("starting an eviction")?;
    for &id in ids {
        tx.execute(
            "insert into garbage (sample_id, dir, stem, image_ext) \
             select id, dir, stem, image_ext from sample where id = ?1",
            [id],
        )
        .db("inserting a garbage row")?;
        tx.execute("delete from sample where id = ?1", [id])
            .db("deleting a sample row")?;
    }
    tx.commit().db("committing an eviction")
}

/// Evict step 4: forget garbage rows whose files are gone.
pub(crate) fn delete_garbage(conn: &mut Connection, ids: &[SampleId]) -> Result<(), StoreError> {
    let tx = conn.transaction().db("starting garbage removal")?;
    for &id in ids {
        tx.execute("delete from garbage where sample_id = ?1", [id])
            .db("deleting a garbage row")?;
    }
    tx.commit().db("committing garbage removal")
}

/// The full record of one sample, with paths under `samples`.
pub(crate) fn load_sample(
    conn: &Connection,
    samples: &Path,
    id: SampleId,
) -> Result<Option<SampleRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "select dir, stem, image_ext, width, height, seq, captured_unix_ns, captured_ns, \
             source, source_file, source_index, model_name, model_sha256, value, selection_json, \
             image_bytes, image_sha256, masks_bytes, masks_sha256, meta_bytes, meta_sha256, \
             refined_bytes, refined_sha256 from sample where id = ?1",
        )
        .db("preparing a sample read")?
        .query_row([id], |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, u32>(3)?,
                    r.get::<_, u32>(4)?,
                ),
                (
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, i64>(10)?,
                ),
                (
                    r.get::<_, String>(11)?,
                    r.get::<_, String>(12)?,
                    r.get::<_, f64>(13)?,
                    r.get::<_, String>(14)?,
                ),
                (
                    r.get::<_, i64>(15)?,
                    sha(r, 16)?,
                    r.get::<_, i64>(17)?,
                    sha(r, 18)?,
                    r.get::<_, i64>(19)?,
                    sha(r, 20)?,
                ),
                match r.get::<_, Option<i64>>(21)? {
                    Some(b) => Some((b, sha(r, 22)?)),
                    None => None,
                },
            ))
        })
        .optional()
        .db("reading a sample")?;
    let Some((
        (dir, stem, ext, width, height),
        (seq, unix_ns, mono_ns, source, source_file, source_index),
        (model_name, model_sha256, value, selection_json),
        (image_bytes, image_sha, masks_bytes, masks_sha, meta_bytes, meta_sha),
        refined_file,
    )) = row
    else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        what: format!("sample {id} row"),
        reason,
    };
    let image_format =
        ImageFormat::from_extension(&ext).ok_or_else(|| corrupt(format!("image_ext {ext:?}")))?;
    let selection = serde_json::from_str(&selection_json)
        .map_err(|e| corrupt(format!("selection_json: {e}")))?;
    let base = samples.join(&dir);
    let file = |kind, bytes: i64, sha256| StoredFile {
        path: base.join(super::layout::file_name(&stem, kind)),
        bytes: bytes as u64,
        sha256,
    };
    use super::layout::FileKind;
    let mut reasons = Vec::new();
    {
        let mut st = conn
            .prepare_cached("select reason from reason where sample_id = ?1 order by reason")
            .db("preparing a reason read")?;
        let rows = st
            .query_map([id], |r| r.get::<_, String>(0))
            .db("reading reasons")?;
        for r in rows {
            reasons.push(r.db("reading a reason")?);
        }
    }
    let mut instances = Vec::new();
    {
        let mut st = conn
            .prepare_cached(
                "select idx, class_id, class_name, score, x1, y1, x2, y2, area, rle, \
                 refined_iou, refined_rle from instance where sample_id = ?1 order by idx",
            )
            .db("preparing an instance read")?;
        let rows = st
            .query_map([id], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, f64>(3)?,
                    [
                        r.get::<_, f64>(4)?,
                        r.get::<_, f64>(5)?,
                        r.get::<_, f64>(6)?,
                        r.get::<_, f64>(7)?,
                    ],
                    r.get::<_, i64>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, Option<f64>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ))
            })
            .db("reading instances")?;
        for r in rows {
            let (index, class_id, class_name, score, b, area, rle, r_iou, r_rle) =
                r.db("reading an instance")?;
            let rle = Rle::from_compressed(height, width, &rle)
                .map_err(|e| corrupt(format!("instance {index} RLE: {e}")))?;
            let refined = match (r_iou, r_rle) {
                (Some(iou), Some(counts)) => Some(RefinedRecord {
                    rle: Rle::from_compressed(height, width, &counts)
                        .map_err(|e| corrupt(format!("instance {index} refined RLE: {e}")))?,
                    predicted_iou: iou as f32,
                }),
                _ => None,
            };
            instances.push(InstanceRecord {
                index,
                class_id,
                class_name,
                score: score as f32,
                bbox: BBox::new(b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32),
                area: area as u64,
                rle,
                refined,
            });
        }
    }
    Ok(Some(SampleRecord {
        id,
        seq: seq as u64,
        captured_unix_ns: unix_ns,
        captured_monotonic: Duration::from_nanos(mono_ns.max(0) as u64),
        source,
        source_file,
        source_index: source_index as u64,
        model_name,
        model_sha256,
        value: value as f32,
        reasons,
        selection,
        width,
        height,
        image_format,
        image: file(FileKind::Image(image_format), image_bytes, image_sha),
        masks: file(FileKind::Masks, masks_bytes, masks_sha),
        meta: file(FileKind::Meta, meta_bytes, meta_sha),
        refined: refined_file.map(|(b, h)| file(FileKind::Refined, b, h)),
        instances,
    }))
}
