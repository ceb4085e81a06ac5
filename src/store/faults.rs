//! Fault injection for the crash tests: stop a procedure between two of its steps, exactly as a
//! crash there would, or make the filesystem report ENOSPC.
//!
//! Compiled into every build (the integration tests link the normal library) but hidden from the
//! docs; unused, it costs one comparison per step.

/// A point between two steps of a procedure of the module doc (numbers as there).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Store: the image's temporary file is written (and synced) but not renamed.
    StoreImageTemp,
    /// Store: the image is in place, the masks not yet written.
    StoreImageRenamed,
    /// Store: image and masks in place, the metadata's temporary file is half written.
    StoreMetaTempPartial,
    /// Store: all three files renamed, directory not yet synced.
    StoreFilesRenamed,
    /// Store: directory synced, index row not committed.
    StoreDirSynced,
    /// Evict: the `garbage` rows are committed, nothing unlinked.
    EvictGarbageCommitted,
    /// Evict: the first file of the first victim is unlinked.
    EvictFirstUnlink,
    /// Evict: every file unlinked, directories not synced.
    EvictUnlinked,
    /// Evict: directories synced, `garbage` rows not deleted.
    EvictDirSynced,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::StoreImageTemp,
        Step::StoreImageRenamed,
        Step::StoreMetaTempPartial,
        Step::StoreFilesRenamed,
        Step::StoreDirSynced,
        Step::EvictGarbageCommitted,
        Step::EvictFirstUnlink,
        Step::EvictUnlinked,
        Step::EvictDirSynced,
    ];
}

/// What to inject into the next operations of a [`super::Store`].
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Stop (return [`super::StoreError::InjectedCrash`], touching nothing more) on reaching
    /// this step. The store must then be dropped, as a crashed process would be.
    pub crash_at: Option<Step>,
    /// Make this many of the next file writes fail with ENOSPC after writing half their bytes.
    pub enospc_writes: u32,
}
