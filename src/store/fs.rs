//! The few filesystem operations the procedures are built from: durable file creation, directory
//! sync, the store lock and the free-space probe.

use super::StoreError;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Suffix of a file being written; such a file never has a row and never survives start-up.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// How much room is left on the filesystem holding a directory.
///
/// Injected so that tests can simulate a small or filling disk; the daemon uses [`Statvfs`].
pub trait FreeSpace: Send {
    /// Bytes an unprivileged process may still write on the filesystem holding `dir`.
    fn free_bytes(&self, dir: &Path) -> io::Result<u64>;
}

/// `statvfs(2)`: `f_bavail * f_frsize` (the blocks left to unprivileged users, so that the
/// root-reserved 5% of ext4 is not counted as ours).
#[derive(Debug, Default, Clone, Copy)]
pub struct Statvfs;

impl FreeSpace for Statvfs {
    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        let s = rustix::fs::statvfs(dir)?;
        Ok(s.f_bavail.saturating_mul(s.f_frsize))
    }
}

impl<F: Fn(&Path) -> io::Result<u64> + Send> FreeSpace for F {
    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        self(dir)
    }
}

/// Writes `bytes` to `dir/name` so that the final name only ever holds the complete content:
/// write `name.tmp` (created exclusively), `fsync` it, rename it over `name`. The caller syncs
/// `dir` afterwards (once for several files). On any error the temporary file is removed.
///
/// `fail_enospc_after_half` simulates a full disk (fault injection).
pub(crate) fn write_file(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    fsync: bool,
    fail_enospc_after_half: bool,
) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if fail_enospc_after_half {
            f.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        f.write_all(bytes)?;
        if fsync {
            // Data and metadata (size): `sync_all`, not `sync_data`.
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, dir.join(name))
    })();
    result.map_err(|e| {
        if let Err(rm) = std::fs::remove_file(&tmp) {
            if rm.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %tmp.display(), error = %rm, "cannot remove temporary file");
            }
        }
        StoreError::io(&tmp, e)
    })
}

/// Writes the first half of `bytes` to `dir/name.tmp` and stops, as a crash mid-write would.
pub(crate) fn write_partial_temp(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(&bytes[..bytes.len() / 2])
        .map_err(|e| StoreError::io(&tmp, e))
}

/// `fsync`s a directory, making the creations, renames and unlinks in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

/// Creates `root/rel` and any missing parents below `root`, syncing the parent of each directory
/// it creates (so that the new directory entry is durable before files are written in it).
pub(crate) fn ensure_dir(root: &Path, rel: &Path, fsync: bool) -> Result<PathBuf, StoreError> {
    let mut cur = root.to_path_buf();
    for c in rel.components() {
        let parent = cur.clone();
        cur.push(c);
        match std::fs::create_dir(&cur) {
            Ok(()) => {
                if fsync {
                    sync_dir(&parent)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::io(&cur, e)),
        }
    }
    Ok(cur)
}

/// Takes the store's exclusive lock (held until the returned file is dropped), so that a second
/// daemon or an `edgesift check` cannot run against a store in use.
pub(crate) fn lock_exclusive(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("lock");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(f),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(StoreError::Locked {
            dir: dir.to_path_buf(),
            lock: path,
        }),
        Err(e) => Err(StoreError::io(&path, e.into())),
    }
}

/// Removes a file, treating "already gone" as success; returns whether it existed.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_file_leaves_only_the_final_name() {
        let d = tempfile::tempdir().unwrap();
        write_file(d.path(), "a.json", b"{}", true, false).unwrap();
        assert_eq!(std::fs::read(d.path().join("a.json")).unwrap(), b"{}");
        assert!(!d.path().join("a.json.tmp").exists());
    }

    #[test]
    fn enospc_removes_the_partial_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let e = write_file(d.path(), "a.jpg", &[1; 100], true, true).unwrap_err();
        assert!(e.is_disk_full(), "{e}");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn ensure_dir_creates_nested_directories() {
        let d = tempfile::tempdir().unwrap();
        let p = ensure_dir(d.path(), Path::new("2026/11/24"), true).unwrap();
        assert!(p.is_dir());
        ensure_dir(d.path(), Path::new("2026/11/24"), true).unwrap();
    }

    #[test]
    fn second_lock_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let held = lock_exclusive(d.path()).unwrap();
        assert!(matches!(
            lock_exclusive(d.path()),
            Err(StoreError::Locked { .. })
        ));
        drop(held);
        lock_exclusive(d.path()).unwrap();
    }

    #[test]
    fn statvfs_reports_some_space() {
        let d = tempfile::tempdir().unwrap();
        assert!(Statvfs.free_bytes(d.path()).unwrap() > 0);
    }
}
