//! The text format of a log line written to a file or a collector: what
//! tracing-subscriber's default format prints without colours,
//! `2026-12-07T19:31:34.550309Z  INFO span{a=1}: target: message k=v`, written directly.
//!
//! The default format styles every piece (a no-op style still goes through
//! `fmt::Display`) and formats the date from scratch per line: at 60k requests a second
//! the access log's line was a fifth of a request's CPU time. Here the date up to the
//! second is formatted once a second per thread, and fields are written without styling.
//! Terminal control characters in any field are escaped (`\x1b`), so that a logged value
//! cannot drive the operator's terminal; tracing does that for the message only.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The plain text line; `Full` with colours stays for a terminal.
pub(crate) struct PlainLine;

impl<S, N> FormatEvent<S, N> for PlainLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // Lines of the `log` crate's users carry their real target in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        write_timestamp(&mut writer)?;
        writer.write_str(level_label(meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_char(':')?;
                seen = true;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields { out: Escaping(&mut writer), empty: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The level as the default format prints it: five columns, then a space.
fn level_label(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        Level::ERROR => "ERROR ",
    }
}

thread_local! {
    /// This thread's last second and its text, `2026-12-07T19:31:34.`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// `2026-12-07T19:31:34.550309Z ` (UTC, microseconds, a space).
fn write_timestamp(writer: &mut Writer<'_>) -> fmt::Result {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != seconds {
            let date =
                i64::try_from(seconds).ok().and_then(|s| chrono::DateTime::from_timestamp(s, 0)).unwrap_or_default();
            text.clear();
            write!(text, "{}.", date.format("%Y-%m-%dT%H:%M:%S"))?;
            *cached = seconds;
        }
        writer.write_str(text)
    })?;
    write!(writer, "{:06}Z ", since_epoch.subsec_micros())
}

/// The event's fields: the message bare, the others `name=value` (strings quoted), one
/// space apart, as the default format writes them.
struct Fields<'w, 'a> {
    out: Escaping<'w, 'a>,
    empty: bool,
    result: fmt::Result,
}

impl<'w, 'a> Fields<'w, 'a> {
    /// Starts a field: `name=` after a separating space; `None` for fields not printed.
    fn start(&mut self, field: &Field) -> Option<&mut Escaping<'w, 'a>> {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return None;
        }
        if !std::mem::replace(&mut self.empty, false) {
            self.result = self.out.0.write_char(' ');
        }
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            self.result =
                self.result.and_then(|()| self.out.0.write_str(name)).and_then(|()| self.out.0.write_char('='));
        }
        Some(&mut self.out)
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        if let Some(out) = self.start(field) {
            let written = if message { out.write_str(value) } else { write!(out, "{value:?}") };
            self.result = self.result.and(written);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.start(field) {
            let written = write!(out.0, "{value}");
            self.result = self.result.and(written);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.start(field) {
            let written = write!(out.0, "{value}");
            self.result = self.result.and(written);
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if let Some(out) = self.start(field) {
            let written = out.0.write_str(if value { "true" } else { "false" });
            self.result = self.result.and(written);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let name = field.name().strip_prefix("r#").unwrap_or(field.name()).to_string();
        if let Some(out) = self.start(field) {
            let mut written = write!(out, "{value}");
            if let Some(source) = value.source() {
                written = written.and_then(|()| write!(out, " {name}.sources=["));
                let mut cause = Some(source);
                let mut first = true;
                while let Some(error) = cause {
                    let separator = if std::mem::replace(&mut first, false) { "" } else { ", " };
                    written = written.and_then(|()| write!(out, "{separator}{error}"));
                    cause = error.source();
                }
                written = written.and_then(|()| out.write_char(']'));
            }
            self.result = self.result.and(written);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(out) = self.start(field) {
            let written = write!(out, "{value:?}");
            self.result = self.result.and(written);
        }
    }
}

/// Writes text with terminal control characters escaped: ESC, BEL, BS, FF, DEL and the
/// C1 controls, as tracing escapes them in messages. Clean text (nearly all) is written
/// in one piece.
struct Escaping<'w, 'a>(&'w mut Writer<'a>);

fn is_control(c: char) -> bool {
    matches!(c, '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}')
}

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // The C1 controls are two bytes in UTF-8, led by 0xC2.
        let clean = !text.bytes().any(|b| matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2));
        if clean {
            return self.0.write_str(text);
        }
        for c in text.chars() {
            if is_control(c) {
                write!(self.0, "\\x{:02x}", c as u32)?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// What `emit` logs, in the plain format and in tracing's own (without colours or date).
    fn both(emit: impl Fn()) -> (String, String) {
        let ours = Lines::default();
        let subscriber =
            tracing_subscriber::fmt().with_writer(ours.clone()).with_ansi(false).event_format(PlainLine).finish();
        tracing::subscriber::with_default(subscriber, &emit);
        let theirs = Lines::default();
        let subscriber = tracing_subscriber::fmt().with_writer(theirs.clone()).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, &emit);
        let text = |lines: Lines| String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (text(ours), text(theirs))
    }

    /// A line without its date (the first 28 characters: the two runs differ there).
    fn undated(text: &str) -> Vec<&str> {
        text.lines().map(|l| l.get(28..).unwrap_or(l)).collect()
    }

    #[test]
    fn lines_read_as_tracings_default_format_does() {
        let (ours, theirs) = both(|| {
            let span = tracing::info_span!("run", plan = 7, name = "nightly");
            let _in = span.enter();
            tracing::info!(target: "cme::access", method = %"GET", route = %"/api/1/plans/{id}", status = 200u16, duration_us = 825u64, token = "admin", "request");
            tracing::warn!(r#type = "x", delta = -3i64, ok = true, ratio = 0.5, "a \"quoted\" message");
            let error = std::io::Error::other("disk full");
            tracing::error!(error = &error as &(dyn std::error::Error + 'static), "failed");
        });
        assert_eq!(ours.lines().count(), 3, "{ours}");
        assert_eq!(undated(&ours), undated(&theirs), "ours:\n{ours}\ntheirs:\n{theirs}");
        assert!(ours.contains(" INFO run{plan=7 name=\"nightly\"}: cme::access: request method=GET"), "{ours}");
    }

    #[test]
    fn the_date_is_utc_to_the_microsecond() {
        let (ours, _) = both(|| tracing::info!("now"));
        let date = ours.split(' ').next().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(date).unwrap();
        assert_eq!(date.len(), "2026-12-07T19:31:34.550309Z".len(), "{date}");
        assert!((chrono::Utc::now() - parsed.to_utc()).num_seconds().abs() < 5);
    }

    #[test]
    fn terminal_controls_in_any_field_are_escaped() {
        let (ours, _) = both(|| {
            tracing::info!(name = %"evil\x1b[31mred\u{9b}", "bell\x07 here");
        });
        assert!(!ours.contains('\x1b') && !ours.contains('\x07') && !ours.contains('\u{9b}'), "{ours:?}");
        assert!(ours.contains("bell\\x07 here name=evil\\x1b[31mred\\x9b"), "{ours:?}");
    }

    #[test]
    fn log_crate_records_name_their_own_target() {
        let ours = Lines::default();
        let subscriber = tracing_subscriber::fmt().with_writer(ours.clone()).event_format(PlainLine).finish();
        tracing::subscriber::with_default(subscriber, || {
            let record = log::Record::builder()
                .args(format_args!("from log"))
                .level(log::Level::Warn)
                .target("russh::client")
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
        let text = String::from_utf8(ours.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains(" WARN russh::client: from log"), "{text:?}");
        assert!(!text.contains("log.target"), "{text:?}");
    }
}
