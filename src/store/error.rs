use std::path::PathBuf;

/// Why the store could not do what it was asked.
///
/// The pipeline branches on [`StoreError::DiskFull`] (count it, keep capturing) and
/// [`StoreError::BadSample`] (a programming error upstream: count it, skip the sample); the
/// others are failures of the disk or the index and stop the daemon at start-up, or are logged
/// and counted per sample while running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No room for a sample even after evicting everything evictable, or the filesystem said
    /// ENOSPC twice. Nothing partial is left behind.
    #[error(
        "store {dir} is full: a sample needs {needed} bytes, {available} available after eviction"
    )]
    DiskFull {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    /// The sample handed over is inconsistent (mask of another size than the image, ...).
    #[error("bad sample: {0}")]
    BadSample(String),
    /// Another process (a running daemon, `edgesift check`) holds the store.
    #[error("store {dir} is in use by another edgesift process (lock {lock})")]
    Locked { dir: PathBuf, lock: PathBuf },
    /// `index.db` was written by a newer edgesift.
    #[error("index {path} has schema version {found}, newer than the {supported} this edgesift supports; upgrade edgesift")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// `index.db` is not an edgesift index (or is damaged beyond SQLite's own recovery).
    #[error("index {path} is not a usable edgesift index: {reason}")]
    NotAnIndex { path: PathBuf, reason: String },
    /// A reloaded configuration changes what only a restart can change.
    #[error("store.{key} cannot change while running (restart edgesift to apply it)")]
    NeedsRestart { key: &'static str },
    /// There is no store at the directory (for commands that never create one).
    #[error("no edgesift store at {0} (no index.db)")]
    NoStore(PathBuf),
    // The cause is part of the message (not a `#[source]`) so that a log line shows it whole.
    #[error("I/O error on {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("index error ({context}): {cause}")]
    Db {
        context: String,
        cause: rusqlite::Error,
    },
    /// A row or sidecar file that cannot be read back (damaged or edited by hand).
    #[error("corrupt record {what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// Test builds only: an injected fault stopped an operation as a crash would.
    #[doc(hidden)]
    #[error("injected crash at {0:?}")]
    InjectedCrash(super::faults::Step),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            cause: source,
        }
    }

    /// Whether the cause is the filesystem running out of space (ENOSPC or EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::DiskFull { .. } => true,
            StoreError::Io { cause, .. } => is_enospc(cause),
            StoreError::Db { cause, .. } => matches!(
                cause.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DiskFull)
            ),
            _ => false,
        }
    }
}

pub(crate) fn is_enospc(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Wraps a SQLite error with what was being done.
pub(crate) trait DbContext<T> {
    fn db(self, context: &str) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn db(self, context: &str) -> Result<T, StoreError> {
        self.map_err(|cause| StoreError::Db {
            context: context.to_owned(),
            cause,
        })
    }
}
