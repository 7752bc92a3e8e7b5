//! The engine's log: `tracing` lines, masked, written out by a thread of their own.
//!
//! A request (or any task) formats its line and hands it to a channel; the log thread masks
//! it ([`cme_secrets::MaskingWriter`]) and writes it to stderr through a 64 KiB buffer that
//! is flushed whenever the channel runs dry. So no request waits on stderr (or on a pipe a
//! collector drains slowly): lines come out in order, batched into few writes under load
//! and at once when the engine is quiet. The channel is lossless: with 128,000 lines
//! queued, a logging task waits rather than drop one. Dropping the returned guard writes out
//! what is still queued, so it is held until the engine has stopped.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

/// Lines queued before a logging task waits for the log thread.
const QUEUED_LINES: usize = 128_000;

/// Installs the global subscriber: `RUST_LOG` (default `info`), `format` `text` or `json`.
pub(crate) fn init(format: &str) -> anyhow::Result<WorkerGuard> {
    if !matches!(format, "text" | "json") {
        anyhow::bail!("unknown log format {format:?}: text or json");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only for a terminal: a file or a log collector gets plain text.
    let ansi = std::io::stderr().is_terminal();
    // Every line passes the masker before it is written, dependencies' lines at trace too.
    let masked = cme_secrets::MaskingWriter::new(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("cme-log")
        .finish(masked);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match format {
        "json" => builder.json().init(),
        _ => builder.init(),
    }
    Ok(guard)
}
