//! Reading the index: which samples match a query, and totals.

use super::error::{DbContext, StoreError};
use super::record::{system_time_to_unix_ns, SampleId, SampleRecord};
use rusqlite::types::Value;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Which samples to list. Every filter is optional; all given ones must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Captured at or after (wall clock).
    pub since: Option<SystemTime>,
    /// Captured before (wall clock).
    pub until: Option<SystemTime>,
    /// Has at least one instance of this class name.
    pub class: Option<String>,
    /// Was kept for this reason.
    pub reason: Option<String>,
    /// At most this many samples.
    pub limit: Option<usize>,
    pub order: Order,
}

/// Order of the results, by capture time (wall clock), then id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    OldestFirst,
    NewestFirst,
}

/// Ids of the samples matching `q`, in its order.
pub(crate) fn ids(conn: &Connection, q: &Query) -> Result<Vec<SampleId>, StoreError> {
    let mut sql = String::from("select s.id from sample s where 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(t) = q.since {
        sql.push_str(" and s.captured_unix_ns >= ?");
        args.push(Value::Integer(system_time_to_unix_ns(t)));
    }
    if let Some(t) = q.until {
        sql.push_str(" and s.captured_unix_ns < ?");
        args.push(Value::Integer(system_time_to_unix_ns(t)));
    }
    if let Some(c) = &q.class {
        sql.push_str(
            " and exists (select 1 from instance i where i.sample_id = s.id and i.class_name = ?)",
        );
        args.push(Value::Text(c.clone()));
    }
    if let Some(r) = &q.reason {
        sql.push_str(
            " and exists (select 1 from reason r where r.sample_id = s.id and r.reason = ?)",
        );
        args.push(Value::Text(r.clone()));
    }
    sql.push_str(match q.order {
        Order::OldestFirst => " order by s.captured_unix_ns, s.id",
        Order::NewestFirst => " order by s.captured_unix_ns desc, s.id desc",
    });
    if let Some(n) = q.limit {
        sql.push_str(" limit ?");
        args.push(Value::Integer(n.min(i64::MAX as usize) as i64));
    }
    let mut st = conn.prepare(&sql).db("preparing a query")?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
        .db("running a query")?;
    rows.collect::<Result<_, _>>().db("reading query results")
}

/// The samples of a query, read one at a time (so exporting a whole store holds one record in
/// memory, not all of them). Obtained from `Store::samples` or
/// `StoreReader::samples`.
pub struct Samples<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) samples_dir: PathBuf,
    pub(crate) ids: std::vec::IntoIter<SampleId>,
}

impl Iterator for Samples<'_> {
    type Item = Result<SampleRecord, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let id = self.ids.next()?;
            match super::db::load_sample(self.conn, &self.samples_dir, id) {
                Ok(Some(r)) => return Some(Ok(r)),
                // Evicted since the query ran (a reader beside a running daemon).
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.ids.len()))
    }
}

/// Totals of a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub samples: u64,
    pub instances: u64,
    /// Bytes of the sample files.
    pub bytes: u64,
    /// What the quota counts (files in whole 4 KiB blocks).
    pub quota_bytes: u64,
    /// Per class name: `(samples with it, instances of it)`, most instances first.
    pub by_class: Vec<(String, u64, u64)>,
    /// Per reason: samples, most first.
    pub by_reason: Vec<(String, u64)>,
    /// Wall-clock capture time of the oldest and newest sample, ns since 1970.
    pub oldest_unix_ns: Option<i64>,
    pub newest_unix_ns: Option<i64>,
    /// Free space on the filesystem (for unprivileged writers), when it could be read.
    pub free_bytes: Option<u64>,
    pub index_bytes: u64,
    pub next_sample_id: SampleId,
    pub schema_version: i64,
}

pub(crate) fn stats(conn: &Connection, dir: &Path) -> Result<Stats, StoreError> {
    let (samples, bytes, quota_bytes, oldest, newest): (i64, i64, i64, Option<i64>, Option<i64>) =
        conn.query_row(
            "select count(*), coalesce(sum(image_bytes + masks_bytes + meta_bytes), 0), \
             coalesce(sum(quota_bytes), 0), min(captured_unix_ns), max(captured_unix_ns) \
             from sample",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .db("totalling samples")?;
    let instances: i64 = conn
        .query_row("select count(*) from instance", [], |r| r.get(0))
        .db("counting instances")?;
    let mut by_class = Vec::new();
    {
        let mut st = conn
            .prepare(
                "select class_name, count(distinct sample_id), count(*) from instance \
                 group by class_name order by count(*) desc, class_name",
            )
            .db("totalling classes")?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .db("totalling classes")?;
        for r in rows {
            by_class.push(r.db("totalling classes")?);
        }
    }
    let mut by_reason = Vec::new();
    {
        let mut st = conn
            .prepare(
                "select reason, count(*) from reason group by reason \
                 order by count(*) desc, reason",
            )
            .db("totalling reasons")?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .db("totalling reasons")?;
        for r in rows {
            by_reason.push(r.db("totalling reasons")?);
        }
    }
    let (next_sample_id, schema_version): (i64, i64) = conn
        .query_row(
            "select next_sample_id, schema_version from meta where id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .db("reading meta")?;
    let index_bytes = ["", "-wal"]
        .iter()
        .filter_map(|s| {
            std::fs::metadata(dir.join(format!("{}{s}", super::layout::INDEX_FILE))).ok()
        })
        .map(|m| m.len())
        .sum();
    use super::fs::FreeSpace;
    Ok(Stats {
        samples: samples as u64,
        instances: instances as u64,
        bytes: bytes as u64,
        quota_bytes: quota_bytes as u64,
        by_class,
        by_reason,
        oldest_unix_ns: oldest,
        newest_unix_ns: newest,
        free_bytes: super::fs::Statvfs.free_bytes(dir).ok(),
        index_bytes,
        next_sample_id,
        schema_version,
    })
}
