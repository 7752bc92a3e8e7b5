//! The engine's log: `tracing` lines, masked, written out in batches by a thread of their
//! own.
//!
//! A request's access log line used to cost a write to stderr (and, through a channel of
//! lines, a wake-up of a writer thread per line: measured, that was no cheaper). Here a
//! line is appended to a shared buffer; only the line that finds the buffer empty wakes
//! the log thread, which waits [`GATHER`] for the lines that follow, then masks the whole
//! batch ([`cme_secrets::MaskingWriter`]) and writes it with one write. Under load that is
//! one wake-up and one write per a few hundred requests; a quiet engine's line is out
//! within [`GATHER`]; an idle one's log thread sleeps without a timer. Nothing is dropped:
//! past [`MAX_BUFFERED`] bytes a logging task waits for the log thread. Dropping the
//! returned [`LogGuard`] writes out every line still buffered, so it is held until the
//! engine has stopped.

use std::io::{BufWriter, IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cme_model::Locked;
use tracing_subscriber::fmt::MakeWriter;

/// How long the log thread, once woken, gathers lines before writing them.
const GATHER: Duration = Duration::from_millis(2);

/// Bytes buffered before a logging task waits for the log thread to take them.
const MAX_BUFFERED: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when the buffer gets its first line, and at shutdown.
    filled: Condvar,
    /// Signalled when the log thread has taken the buffer.
    taken: Condvar,
}

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    closing: bool,
}

/// The subscriber's writer: appends each line to the shared buffer.
#[derive(Clone)]
struct BatchedLog(Arc<Shared>);

impl Write for &BatchedLog {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let shared = &self.0;
        let mut state = shared.state.locked();
        while state.buffer.len() > MAX_BUFFERED && !state.closing {
            state = shared.taken.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let first = state.buffer.is_empty();
        state.buffer.extend_from_slice(line);
        drop(state);
        if first {
            shared.filled.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedLog {
    type Writer = &'a BatchedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Held while the engine runs; dropped, it writes out what is buffered and ends the log
/// thread.
pub(crate) struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.state.locked().closing = true;
        self.shared.filled.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes batches to `out` (masked) until the guard is dropped and the buffer is empty.
fn write_batches(shared: &Shared, out: &mut impl Write) {
    let mut batch = Vec::new();
    loop {
        {
            let mut state = shared.state.locked();
            while state.buffer.is_empty() && !state.closing {
                state = shared.filled.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if state.buffer.is_empty() {
                return;
            }
            if !state.closing {
                drop(state);
                std::thread::sleep(GATHER);
                state = shared.state.locked();
            }
            std::mem::swap(&mut batch, &mut state.buffer);
        }
        shared.taken.notify_all();
        // A failing stderr cannot be reported anywhere better: the lines are dropped.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
    }
}

/// Starts the log thread writing to `out`: every line passes the masker before it is
/// written, dependencies' lines at trace too.
fn start<W: Write + Send + 'static>(out: W) -> std::io::Result<(BatchedLog, LogGuard)> {
    let shared = Arc::new(Shared::default());
    let thread = {
        let shared = shared.clone();
        let mut out = cme_secrets::MaskingWriter::new(BufWriter::with_capacity(64 * 1024, out));
        std::thread::Builder::new().name("cme-log".into()).spawn(move || write_batches(&shared, &mut out))?
    };
    Ok((BatchedLog(shared.clone()), LogGuard { shared, thread: Some(thread) }))
}

/// Installs the global subscriber: `RUST_LOG` (default `info`), `format` `text` or `json`.
pub(crate) fn init(format: &str) -> anyhow::Result<LogGuard> {
    if !matches!(format, "text" | "json") {
        anyhow::bail!("unknown log format {format:?}: text or json");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only for a terminal: a file or a log collector gets plain text.
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = start(std::io::stderr())?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match format {
        "json" => builder.json().init(),
        _ if ansi => builder.init(),
        _ => builder.event_format(crate::log_line::PlainLine).init(),
    }
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Collected(Arc<Mutex<Vec<u8>>>);

    impl Write for Collected {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.locked().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn started(out: Collected) -> (BatchedLog, LogGuard) {
        start(out).unwrap()
    }

    #[test]
    fn every_line_from_every_thread_is_written_whole_and_none_after_the_guard_is_lost() {
        let out = Collected::default();
        let (log, guard) = started(out.clone());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        (&log).write_all(format!("thread {t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        drop(guard);
        let text = String::from_utf8(out.0.locked().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 80_000);
        for t in 0..4 {
            // Each thread's lines whole and in their order.
            let own: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with(&format!("thread {t} "))).collect();
            let expected: Vec<String> = (0..20_000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(own, expected);
        }
    }

    #[test]
    fn a_quiet_engines_line_is_written_without_waiting_for_more() {
        let out = Collected::default();
        let (log, _guard) = started(out.clone());
        (&log).write_all(b"alone\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while out.0.locked().as_slice() != b"alone\n" {
            assert!(std::time::Instant::now() < deadline, "the line was not written");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn secrets_are_masked_by_the_log_thread() {
        let out = Collected::default();
        let (log, guard) = started(out.clone());
        (&log).write_all(b"calling https://user:hunter2@example.com/x\n").unwrap();
        drop(guard);
        let text = String::from_utf8(out.0.locked().clone()).unwrap();
        assert!(!text.contains("hunter2") && text.contains("example.com/x"), "{text}");
    }
}
