//! WAL checkpoints off the writers' path.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
//! commit copies the WAL into the database and (with `synchronous=FULL`) waits for the disk
//! twice more, while it still holds the write gate. A claim queued behind it fired
//! seconds late while 10,000 horizons were extended. So every writing connection of a
//! SQLite file runs with `wal_autocheckpoint=0`, and this thread checkpoints instead: each
//! write nudges it (a non-blocking send), and it runs one `PASSIVE` checkpoint per
//! [`COALESCE`] of writes on a connection of its own. A passive checkpoint takes no lock a
//! writer or reader waits for; it copies what no reader still needs, and the writer
//! restarts the WAL from its start once a checkpoint has copied all of it. The WAL file is
//! cut back to [`WAL_SIZE_LIMIT`] when it restarts. With no writes the thread sleeps in
//! `recv`: no CPU at idle.

use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

use rusqlite::Connection;

/// Writes gathered before a checkpoint: one checkpoint serves all that came meanwhile.
const COALESCE: Duration = Duration::from_millis(100);

/// The size (bytes) the WAL file is cut back to when it restarts (`journal_size_limit`).
pub(crate) const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The pragmas of a writing connection: no checkpoint inside its commits, and the WAL cut
/// back when it restarts.
pub(crate) fn writer_pragmas() -> String {
    format!("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};")
}

/// A handle on the checkpoint thread; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    nudges: SyncSender<()>,
}

impl Checkpointer {
    /// Opens the checkpointing connection to the SQLite file at `path` (syncing as the
    /// writers do) and starts its thread.
    pub(crate) fn start(path: &Path, synchronous_full: bool) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        // Never waits: a checkpoint that finds the file busy is retried at the next write.
        conn.busy_timeout(Duration::ZERO)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; {}",
            if synchronous_full { "FULL" } else { "NORMAL" },
            writer_pragmas()
        ))?;
        let (nudges, woken) = sync_channel(1);
        std::thread::Builder::new()
            .name("cme-sqlite-checkpoint".into())
            .spawn(move || checkpoint_after_writes(&conn, &woken))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer { nudges })
    }

    /// Tells the thread a write was committed (never waits).
    pub(crate) fn nudge(&self) {
        let _ = self.nudges.try_send(());
    }
}

fn checkpoint_after_writes(conn: &Connection, woken: &Receiver<()>) {
    while woken.recv().is_ok() {
        std::thread::sleep(COALESCE);
        match woken.try_recv() {
            Ok(()) | Err(TryRecvError::Empty) => {}
            // The store is gone: a last checkpoint, then the connection closes.
            Err(TryRecvError::Disconnected) => {
                checkpoint(conn);
                return;
            }
        }
        checkpoint(conn);
    }
}

fn checkpoint(conn: &Connection) {
    let began = std::time::Instant::now();
    let outcome = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((busy, frames, copied)) => {
            tracing::debug!(busy, frames, copied, took_us = began.elapsed().as_micros() as u64, "WAL checkpoint")
        }
        Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retried after the next write"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_never_checkpoint_in_their_commit_and_the_thread_copies_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let writer = Connection::open(&path).unwrap();
        writer.execute_batch(&format!("PRAGMA journal_mode = WAL; {}", writer_pragmas())).unwrap();
        writer.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        // About 2,000 pages: past the 1,000 at which a commit would checkpoint by default.
        for _ in 0..500 {
            writer.execute("INSERT INTO t VALUES (zeroblob(16000))", []).unwrap();
        }
        // Only a checkpoint copies rows into the database file itself.
        let size = || std::fs::metadata(&path).unwrap().len();
        assert!(size() < 1_000_000, "a commit checkpointed: the database file holds {} bytes", size());
        let checkpointer = Checkpointer::start(&path, true).unwrap();
        checkpointer.nudge();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < 8_000_000 {
            assert!(std::time::Instant::now() < deadline, "not checkpointed: {} bytes", size());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
