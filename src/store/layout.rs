//! Where a sample's files live and how their names are read back.
//!
//! ```text
//! <dir>/index.db                      the SQLite index (+ -wal, -shm)
//! <dir>/lock                          held exclusively by the process writing the store
//! <dir>/samples/2026/11/24/           one directory per UTC day of capture
//!     101502-000042.jpg               the frame (or .png)
//!     101502-000042.masks.png         16-bit instance ids
//!     101502-000042.refined.png       16-bit instance ids of the [refine] masks (if any)
//!     101502-000042.json              everything else; written last
//!     101502-000043.jpg.tmp           a file being written (never outlives a start-up)
//! ```
//!
//! The stem is the UTC time of capture (`HHMMSS`, so a day sorts chronologically in a file
//! browser) and the sample id (unique, what recovery keys on). Day directories keep each
//! directory small and let a person find a morning's samples without the index.

use super::config::ImageFormat;
use super::fs::TEMP_SUFFIX;
use super::StoreError;
use std::path::{Path, PathBuf};

pub(crate) const INDEX_FILE: &str = "index.db";
pub(crate) const SAMPLES_DIR: &str = "samples";

const MASKS_SUFFIX: &str = ".masks.png";
const REFINED_SUFFIX: &str = ".refined.png";
const META_SUFFIX: &str = ".json";

/// One of the files of a sample (`Refined` only for samples with refined masks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FileKind {
    Image(ImageFormat),
    Masks,
    Refined,
    Meta,
}

/// The directory (relative to `samples/`, `/`-separated) and stem of a new sample.
pub(crate) fn place(wall_unix_ns: i64, id: i64) -> (String, String) {
    match jiff::Timestamp::from_nanosecond(wall_unix_ns as i128) {
        Ok(ts) => {
            let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
            (
                format!("{:04}/{:02}/{:02}", dt.year(), dt.month(), dt.day()),
                format!(
                    "{:02}{:02}{:02}-{id:06}",
                    dt.hour(),
                    dt.minute(),
                    dt.second()
                ),
            )
        }
        // A wall clock beyond year 9999 is broken; keep the sample anyway.
        Err(_) => ("undated".to_owned(), format!("000000-{id:06}")),
    }
}

pub(crate) fn file_name(stem: &str, kind: FileKind) -> String {
    match kind {
        FileKind::Image(f) => format!("{stem}.{}", f.extension()),
        FileKind::Masks => format!("{stem}{MASKS_SUFFIX}"),
        FileKind::Refined => format!("{stem}{REFINED_SUFFIX}"),
        FileKind::Meta => format!("{stem}{META_SUFFIX}"),
    }
}

/// What a file name in `samples/` says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name {
    Sample {
        id: i64,
        stem: String,
        kind: FileKind,
    },
    /// `*.tmp`: an interrupted write.
    Temp,
    /// Not a name the store writes.
    Unknown,
}

pub(crate) fn parse_name(name: &str) -> Name {
    if name.ends_with(TEMP_SUFFIX) {
        return Name::Temp;
    }
    let (stem, kind) = if let Some(s) = name.strip_suffix(MASKS_SUFFIX) {
        (s, FileKind::Masks)
    } else if let Some(s) = name.strip_suffix(REFINED_SUFFIX) {
        (s, FileKind::Refined)
    } else if let Some(s) = name.strip_suffix(META_SUFFIX) {
        (s, FileKind::Meta)
    } else if let Some((s, ext)) = name.rsplit_once('.') {
        match ImageFormat::from_extension(ext) {
            Some(f) => (s, FileKind::Image(f)),
            None => return Name::Unknown,
        }
    } else {
        return Name::Unknown;
    };
    let Some((time, id)) = stem.split_once('-') else {
        return Name::Unknown;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if time.len() != 6 || !digits(time) || !digits(id) {
        return Name::Unknown;
    }
    match id.parse::<i64>() {
        Ok(id) => Name::Sample {
            id,
            stem: stem.to_owned(),
            kind,
        },
        Err(_) => Name::Unknown,
    }
}

/// A file found under `samples/`.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Directory relative to `samples/`, `/`-separated.
    pub rel_dir: String,
    pub name: String,
    pub bytes: u64,
    pub parsed: Name,
}

impl Found {
    pub fn path(&self, samples: &Path) -> PathBuf {
        samples.join(&self.rel_dir).join(&self.name)
    }
}

/// Every file under `samples/` (any depth), and the directories seen (deepest first), in
/// directory order. Missing `samples/` is an empty store.
pub(crate) fn scan(samples: &Path) -> Result<(Vec<Found>, Vec<String>), StoreError> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    if !samples.exists() {
        return Ok((files, dirs));
    }
    walk(samples, "", &mut files, &mut dirs)?;
    Ok((files, dirs))
}

fn walk(
    root: &Path,
    rel: &str,
    files: &mut Vec<Found>,
    dirs: &mut Vec<String>,
) -> Result<(), StoreError> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let rd = std::fs::read_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let mut entries = Vec::new();
    for e in rd {
        let e = e.map_err(|e| StoreError::io(&dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ft = e.file_type().map_err(|err| StoreError::io(e.path(), err))?;
        entries.push((name, ft, e));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, ft, e) in entries {
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if ft.is_dir() {
            walk(root, &child_rel, files, dirs)?;
            dirs.push(child_rel);
        } else {
            let bytes = e
                .metadata()
                .map_err(|err| StoreError::io(e.path(), err))?
                .len();
            let parsed = if ft.is_file() {
                parse_name(&name)
            } else {
                Name::Unknown
            };
            files.push(Found {
                rel_dir: rel.to_owned(),
                name,
                bytes,
                parsed,
            });
        }
    }
    Ok(())
}

/// Removes `samples/<rel>` and its parents up to `samples/` while they are empty (best effort:
/// an empty day directory is harmless, so failures are ignored).
pub(crate) fn prune_empty_dirs(samples: &Path, rel: &str) {
    let mut rel = rel.to_owned();
    while !rel.is_empty() {
        if std::fs::remove_dir(samples.join(&rel)).is_err() {
            return;
        }
        rel = match rel.rsplit_once('/') {
            Some((parent, _)) => parent.to_owned(),
            None => String::new(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_uses_the_utc_day_and_time() {
        // 2026-11-24T10:15:02.5Z
        let ns = 1_795_515_302_500_000_000i64;
        let (dir, stem) = place(ns, 42);
        assert_eq!(dir, "2026/11/24");
        assert_eq!(stem, "101502-000042");
        assert_eq!(place(0, 1_234_567).1, "000000-1234567");
    }

    #[test]
    fn names_round_trip() {
        for kind in [
            FileKind::Image(ImageFormat::Jpeg),
            FileKind::Image(ImageFormat::Png),
            FileKind::Masks,
            FileKind::Refined,
            FileKind::Meta,
        ] {
            let n = file_name("101502-000042", kind);
            assert_eq!(
                parse_name(&n),
                Name::Sample {
                    id: 42,
                    stem: "101502-000042".into(),
                    kind
                },
                "{n}"
            );
        }
        assert_eq!(parse_name("101502-000042.jpg.tmp"), Name::Temp);
        assert_eq!(parse_name("notes.txt"), Name::Unknown);
        assert_eq!(parse_name("holiday.jpg"), Name::Unknown);
        assert_eq!(parse_name("1015-000042.jpg"), Name::Unknown);
        assert_eq!(parse_name("101502-.json"), Name::Unknown);
    }

    #[test]
    fn scan_finds_nested_files_and_prune_removes_empty_dirs() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("samples");
        std::fs::create_dir_all(s.join("2026/11/24")).unwrap();
        std::fs::write(s.join("2026/11/24/101502-000042.json"), b"{}").unwrap();
        let (files, dirs) = scan(&s).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].rel_dir, "2026/11/24");
        assert_eq!(files[0].bytes, 2);
        assert_eq!(dirs, vec!["2026/11/24", "2026/11", "2026"]);
        prune_empty_dirs(&s, "2026/11/24");
        assert!(s.join("2026/11/24").exists());
        std::fs::remove_file(s.join("2026/11/24/101502-000042.json")).unwrap();
        prune_empty_dirs(&s, "2026/11/24");
        assert!(!s.join("2026").exists() && s.exists());
    }
}
