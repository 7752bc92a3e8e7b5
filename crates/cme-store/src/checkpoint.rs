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
//! cut back to [`WAL_SIZE_LIMIT`] when it restarts (the size at which it is restarted, so
//! the file keeps up to 1 GiB after a heavy burst of writes, until the engine stops and
//! the last connection deletes it). With no writes the thread sleeps in `recv`: no CPU at
//! idle.
//!
//! Under writes that never pause, the WAL would never restart: the writer restarts it
//! only when, as its transaction begins, every frame has been copied, and frames written
//! since this thread's last checkpoint are never copied yet. Measured, creating plans for
//! two minutes grew the WAL to 2.6 GB. So once a checkpoint finds the WAL past
//! [`RESTART_PAST`], it asks the writer ([`Checkpointer::take_restart_due`]) to copy the
//! frames written since, between two of its transactions, and restart the WAL
//! ([`restart_on_the_writer`]). That copy ends with a sync of the database file, which the
//! writer waits for: measured at 40-220 ms on this project's virtual disk while 100 MB a
//! second were written. Hence a restart only past [`RESTART_PAST`] (1 GiB): a busy minute
//! of writes, not every burst; a firing's claim, made 50 ms before it is due, mostly
//! absorbs the wait.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

use rusqlite::Connection;

/// Writes gathered before a checkpoint: one checkpoint serves all that came meanwhile.
const COALESCE: Duration = Duration::from_millis(100);

/// The size (bytes) the WAL file is cut back to when it restarts (`journal_size_limit`):
/// no smaller than the size at which it is restarted, so a restart truncates next to
/// nothing. Cut back from 1 GiB to 64 MiB, the first write after each restart took
/// 310-380 ms (the file system freeing the file's pages), and a claim queued behind it
/// fired up to 129 ms late while 100,000 horizons were extended.
pub(crate) const WAL_SIZE_LIMIT: i64 = 1024 * 1024 * 1024;

/// The WAL size (bytes) past which the writer is asked to restart it.
const RESTART_PAST: i64 = WAL_SIZE_LIMIT;

/// The pragmas of a writing connection: no checkpoint inside its commits, and the WAL cut
/// back when it restarts.
pub(crate) fn writer_pragmas() -> String {
    format!("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};")
}

/// A handle on the checkpoint thread; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    nudges: SyncSender<()>,
    /// How many times its limit the WAL held at the last checkpoint that found it past the
    /// limit (0: not past it, or the writer has been told): the writer copies the rest.
    restart_due: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Opens the checkpointing connection to the SQLite file at `path` (syncing as the
    /// writers do) and starts its thread.
    pub(crate) fn start(path: &Path, synchronous_full: bool) -> rusqlite::Result<Checkpointer> {
        Checkpointer::start_with_limit(path, synchronous_full, RESTART_PAST)
    }

    /// [`Checkpointer::start`], asking for a restart once the WAL holds `limit` bytes.
    fn start_with_limit(path: &Path, synchronous_full: bool, limit: i64) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        // Never waits: a checkpoint that finds the file busy is retried at the next write.
        conn.busy_timeout(Duration::ZERO)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; {}",
            if synchronous_full { "FULL" } else { "NORMAL" },
            writer_pragmas()
        ))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        let limit_frames = limit / page_size.max(512);
        let (nudges, woken) = sync_channel(1);
        let restart_due = Arc::new(AtomicU64::new(0));
        let due = restart_due.clone();
        std::thread::Builder::new()
            .name("cme-sqlite-checkpoint".into())
            .spawn(move || checkpoint_after_writes(&conn, &woken, limit_frames, &due))
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer { nudges, restart_due })
    }

    /// Tells the thread a write was committed (never waits).
    pub(crate) fn nudge(&self) {
        let _ = self.nudges.try_send(());
    }

    /// How long the writer may wait for readers to restart the WAL, if a checkpoint has
    /// found it past its limit since last asked: [`RESTART_WAIT`] per time over its limit
    /// (so that readers holding it up cannot keep it growing), at most [`RESTART_WAIT_MOST`].
    pub(crate) fn take_restart_due(&self) -> Option<Duration> {
        let times = self.restart_due.swap(0, Ordering::Relaxed);
        (times > 0).then(|| RESTART_WAIT.saturating_mul(times.min(u64::from(u32::MAX)) as u32).min(RESTART_WAIT_MOST))
    }
}

fn checkpoint_after_writes(conn: &Connection, woken: &Receiver<()>, limit_frames: i64, restart_due: &AtomicU64) {
    while woken.recv().is_ok() {
        std::thread::sleep(COALESCE);
        match woken.try_recv() {
            Ok(()) | Err(TryRecvError::Empty) => {}
            // The store is gone: a last checkpoint, then the connection closes.
            Err(TryRecvError::Disconnected) => {
                checkpoint(conn, "PASSIVE", "WAL checkpoint");
                return;
            }
        }
        if let Some(frames) = checkpoint(conn, "PASSIVE", "WAL checkpoint")
            && frames > limit_frames
        {
            restart_due.store((frames / limit_frames.max(1)) as u64, Ordering::Relaxed);
        }
    }
}

/// How long the writer waits for readers of old snapshots to finish before it restarts
/// the WAL, per time the WAL is over its limit: a reader's transaction is a few
/// milliseconds, and one that takes longer makes the restart wait for the next
/// checkpoint, with a longer wait.
const RESTART_WAIT: Duration = Duration::from_millis(10);

/// The longest the writer waits for readers to restart the WAL.
const RESTART_WAIT_MOST: Duration = Duration::from_millis(250);

/// On the writer's connection, between two of its transactions: copies the frames the
/// checkpoint thread has not (those written since its last checkpoint), waits up to
/// `wait` for readers still reading frames from the WAL, and starts it afresh
/// (`RESTART`). Readers that begin meanwhile read the database file, so they do not hold
/// it up. A busy answer leaves the WAL as it was, to be restarted next time.
pub(crate) fn restart_on_the_writer(conn: &Connection, wait: Duration, busy_timeout: Duration) {
    if conn.busy_timeout(wait).is_ok() {
        checkpoint(conn, "RESTART", "WAL restarted by the writer");
    }
    if let Err(error) = conn.busy_timeout(busy_timeout) {
        tracing::warn!(%error, "cannot set the SQLite writer's busy timeout back");
    }
}

/// One checkpoint (`PASSIVE`, `RESTART`): the WAL's size in frames, or None when it failed.
fn checkpoint(conn: &Connection, mode: &str, what: &str) -> Option<i64> {
    let began = std::time::Instant::now();
    let outcome = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((busy, frames, copied)) => {
            tracing::debug!(busy, frames, copied, took_us = began.elapsed().as_micros() as u64, "{what}");
            Some(frames)
        }
        Err(error) => {
            tracing::warn!(%error, "{what} failed; retried after the next write");
            None
        }
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

    #[test]
    fn the_wal_restarts_under_writes_that_never_pause_while_readers_keep_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        {
            let setup = Connection::open(&path).unwrap();
            setup.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB)").unwrap();
        }
        // A restart asked for past 1 MB (256 pages) instead of 1 GiB.
        let checkpointer = Arc::new(Checkpointer::start_with_limit(&path, true, 1 << 20).unwrap());
        let config = crate::writer::WriterConfig {
            path: &path,
            synchronous_full: false,
            checkpointer: Some(checkpointer.clone()),
            room: None,
        };
        let writer = crate::writer::Writer::start(config, Arc::new(tokio::sync::Mutex::new(())), || {}).unwrap();
        // Readers that never stop: a short read transaction after another.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (path, stop) = (path.clone(), stop.clone());
                std::thread::spawn(move || {
                    let reader = Connection::open(&path).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        let _: i64 = reader.query_row("SELECT count(*) FROM t", [], |row| row.get(0)).unwrap();
                    }
                })
            })
            .collect();
        // About 24 MB written, a few pages a write, without a pause.
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            for _ in 0..3_000 {
                writer
                    .write(|conn| -> Result<(), cme_engine::StorageError> {
                        conn.execute("INSERT INTO t VALUES (zeroblob(8000))", [])
                            .map(drop)
                            .map_err(crate::writer::unavailable)
                    })
                    .await
                    .unwrap();
            }
        });
        stop.store(true, Ordering::Relaxed);
        readers.into_iter().for_each(|r| r.join().unwrap());
        // The WAL's frames since it last started: a few megabytes at most, not all 24.
        let frames: i64 =
            Connection::open(&path).unwrap().query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1)).unwrap();
        assert!(frames < 4_000, "the WAL never restarted: {frames} frames (about {} MB)", frames / 256);
    }
}
