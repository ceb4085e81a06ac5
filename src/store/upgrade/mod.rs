//! Upgrades `index.db` in place from older schema versions, one version per step.
//!
//! Field units are upgraded in place, never re-created: a daemon that starts on an older index
//! runs every step from its version to [`SCHEMA_VERSION`](super::db::SCHEMA_VERSION), each in
//! its own transaction together with the new `meta.schema_version`, so a crash mid-upgrade
//! leaves the index at a whole version.
//!
//! Adding version N+1:
//! 1. copy today's `schema.sql` to `upgrade/vN.sql` (the frozen fresh schema of version N);
//! 2. change `schema.sql` and bump `SCHEMA_VERSION`;
//! 3. add `upgrade/vN_to_vN+1.rs` with `pub(super) fn run(tx: &Transaction) -> rusqlite::Result<()>`
//!    and append it to [`STEPS`];
//! 4. extend the test below: create `vN.sql`, upgrade, compare with a fresh `schema.sql`.
//!
//! Version 2 added `[refine]`'s masks (`v1_to_v2.rs`).

use super::error::{DbContext, StoreError};
use rusqlite::{Connection, Transaction};
use std::path::Path;

/// A step from version `i + 1` to `i + 2` is `STEPS[i]`.
pub(super) type Step = fn(&Transaction) -> rusqlite::Result<()>;

mod v1_to_v2;

pub(super) const STEPS: &[Step] = &[v1_to_v2::run];

/// Brings an index at `found` up to `target` with `steps`; refuses versions it does not know.
pub(super) fn upgrade(
    conn: &mut Connection,
    path: &Path,
    found: i64,
    target: i64,
    steps: &[Step],
) -> Result<(), StoreError> {
    if found > target {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: target,
        });
    }
    if found < 1 {
        return Err(StoreError::NotAnIndex {
            path: path.to_path_buf(),
            reason: format!("schema version {found} is not one edgesift ever wrote"),
        });
    }
    debug_assert_eq!(steps.len() as i64, target - 1, "one step per version bump");
    for v in found..target {
        tracing::info!(path = %path.display(), from = v, to = v + 1, "upgrading index schema");
        let tx = conn.transaction().db("starting an upgrade")?;
        let step = steps
            .get((v - 1) as usize)
            .ok_or_else(|| StoreError::NotAnIndex {
                path: path.to_path_buf(),
                reason: format!("no upgrade from schema version {v}"),
            })?;
        step(&tx).db(&format!("upgrading schema {v} to {}", v + 1))?;
        tx.execute("update meta set schema_version = ?1", [v + 1])
            .db("recording the schema version")?;
        tx.commit().db("committing an upgrade")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(dir: &Path) -> Connection {
        let mut c = Connection::open(dir.join("index.db")).unwrap();
        let tx = c.transaction().unwrap();
        tx.execute_batch(include_str!("v1.sql")).unwrap();
        tx.execute(
            "insert into meta (id, schema_version, next_sample_id, created_unix_ns) values (1, 1, 1, 0)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
        c
    }

    fn version(c: &Connection) -> i64 {
        c.query_row("select schema_version from meta", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn the_current_version_needs_no_step() {
        let d = tempfile::tempdir().unwrap();
        let mut c = v1(d.path());
        upgrade(&mut c, d.path(), 1, 1, &[]).unwrap();
        assert_eq!(version(&c), 1);
    }

    #[test]
    fn steps_run_in_order_each_recording_its_version() {
        let d = tempfile::tempdir().unwrap();
        let mut c = v1(d.path());
        // A pretend v2 and v3, to exercise the mechanism before a real second version exists.
        let steps: &[Step] = &[
            |tx| tx.execute_batch("alter table sample add column v2_col integer"),
            |tx| tx.execute_batch("create table v3_table (x integer)"),
        ];
        upgrade(&mut c, d.path(), 1, 3, steps).unwrap();
        assert_eq!(version(&c), 3);
        c.execute("insert into v3_table (x) values (1)", [])
            .unwrap();
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version() {
        let d = tempfile::tempdir().unwrap();
        let mut c = v1(d.path());
        let steps: &[Step] = &[|tx| tx.execute_batch("this is not sql")];
        assert!(upgrade(&mut c, d.path(), 1, 2, steps).is_err());
        assert_eq!(version(&c), 1);
    }

    #[test]
    fn newer_and_bogus_versions_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut c = v1(d.path());
        let e = upgrade(&mut c, d.path(), 7, 1, STEPS).unwrap_err();
        assert!(
            matches!(
                e,
                StoreError::SchemaTooNew {
                    found: 7,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("upgrade edgesift"), "{e}");
        assert!(matches!(
            upgrade(&mut c, d.path(), 0, 1, STEPS),
            Err(StoreError::NotAnIndex { .. })
        ));
    }

    /// Every column of every table (name, type, not null, default, primary key) and the
    /// indexes, as SQLite reports them.
    fn shape(c: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        let tables: Vec<String> = c
            .prepare("select name from sqlite_master where type = 'table' order by name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for t in tables {
            let mut st = c.prepare(&format!("pragma table_info({t})")).unwrap();
            let cols = st
                .query_map([], |r| {
                    Ok(format!(
                        "{t}.{}: {} notnull={} default={:?} pk={}",
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?
                    ))
                })
                .unwrap();
            out.extend(cols.map(|c| c.unwrap()));
        }
        let idx = c
            .prepare("select name, tbl_name from sqlite_master where type = 'index' order by name")
            .unwrap()
            .query_map([], |r| {
                Ok(format!(
                    "index {} on {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect::<Vec<_>>();
        out.extend(idx);
        out
    }

    #[test]
    fn version_1_upgrades_to_the_fresh_schema_and_keeps_its_rows() {
        let d = tempfile::tempdir().unwrap();
        let mut c = v1(d.path());
        c.execute(
            "insert into sample (id, dir, stem, image_ext, width, height, seq, captured_unix_ns, \
             captured_ns, source, source_index, model_name, model_sha256, value, selection_json, \
             image_bytes, image_sha256, masks_bytes, masks_sha256, meta_bytes, meta_sha256, \
             quota_bytes) values (1, 'd', 's', 'jpg', 4, 4, 0, 0, 0, 'src', 0, 'm', 'h', 1.0, \
             '{}', 1, zeroblob(32), 1, zeroblob(32), 1, zeroblob(32), 12288)",
            [],
        )
        .unwrap();
        upgrade(&mut c, d.path(), 1, 2, STEPS).unwrap();
        assert_eq!(version(&c), 2);
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = Connection::open(fresh_dir.path().join("index.db")).unwrap();
        fresh.execute_batch(include_str!("../schema.sql")).unwrap();
        assert_eq!(shape(&c), shape(&fresh));
        let refined: Option<i64> = c
            .query_row("select refined_bytes from sample where id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(refined, None, "an old sample has no refined masks");
        // The new check holds: a refined hash must be 32 bytes.
        assert!(c
            .execute(
                "update sample set refined_sha256 = zeroblob(3) where id = 1",
                []
            )
            .is_err());
    }
}
