//! Room left on the SQLite database's file system, checked before every write.
//!
//! SQLite keeps its WAL file at its high-water mark (up to `journal_size_limit`) and
//! writes new frames over old ones, so on a file system with no space left small writes
//! still succeed for a while, then a larger one or a checkpoint fails half-way through the
//! engine's work. The engine would look ready on a full disk (its write probe fits in the
//! old WAL) and refuse writes at random later. So every write (the writer thread's batches
//! and the write gate's statements) is refused while the file system holds less than
//! [`FLOOR`] for unprivileged users: the answer is SQLite's own "database or disk is full"
//! (a 503 with `Retry-After` at the API, not ready at `/readyz`), nothing is half-written,
//! and writes are taken again as soon as space is freed, without a restart. Nothing is
//! claimed meanwhile, so nothing fires that could not be recorded.

use std::path::{Path, PathBuf};

use cme_engine::StorageError;

/// The space (bytes) a write needs free on the database's file system: a batch of plans
/// with their executors and audit rows, and the checkpoint copying it to the database.
pub(crate) const FLOOR: u64 = 1024 * 1024;

/// The directory holding a SQLite database, its WAL and its shared memory file.
#[derive(Debug)]
pub(crate) struct Room {
    directory: PathBuf,
}

impl Room {
    /// Watches the file system holding `database` (a file path).
    pub(crate) fn of(database: &Path) -> Room {
        let directory = match database.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Room { directory }
    }

    /// Ok while the file system has at least [`FLOOR`] free; a statfs that fails (the
    /// directory gone) lets SQLite's own write say what is wrong.
    pub(crate) fn check(&self) -> Result<(), StorageError> {
        match rustix::fs::statvfs(&self.directory) {
            Ok(stats) => refuse_below_floor(stats.f_bavail.saturating_mul(stats.f_frsize)),
            Err(_) => Ok(()),
        }
    }
}

fn refuse_below_floor(free: u64) -> Result<(), StorageError> {
    if free >= FLOOR {
        return Ok(());
    }
    // Worded as SQLite words it: the engine's storage cause reads it as a full disk.
    Err(StorageError::Unavailable(format!(
        "database or disk is full: {} KiB free on the database's file system, below the {} KiB a write needs",
        free / 1024,
        FLOOR / 1024
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cme_engine::storage::StorageCause;

    #[test]
    fn a_file_system_below_the_floor_refuses_writes_as_a_full_disk() {
        let refused = refuse_below_floor(FLOOR - 1).unwrap_err();
        assert_eq!(refused.cause(), StorageCause::DiskFull, "{refused}");
        assert!(refused.to_string().contains("1023 KiB free"), "{refused}");
        assert!(refuse_below_floor(FLOOR).is_ok());
    }

    #[test]
    fn a_database_with_room_is_writable_and_a_bare_file_name_means_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Room::of(&dir.path().join("cme.db")).check().is_ok());
        assert_eq!(Room::of(Path::new("cme.db")).directory, PathBuf::from("."));
    }
}
