use std::{
    cell::Cell,
    fmt::{self, Write},
    time::{Duration, Instant, SystemTime},
};

/// "Thu, 01 Jan 1970 00:00:00 GMT".len()
pub(crate) const DATE_VALUE_LENGTH: usize = 29;

#[derive(Clone, Copy)]
pub(crate) struct Date {
    pub(crate) bytes: [u8; DATE_VALUE_LENGTH],
    pos: usize,
}

impl Date {
    fn new() -> Date {
        let mut date = Date {
            bytes: [0; DATE_VALUE_LENGTH],
            pos: 0,
        };
        date.update();
        date
    }

    fn update(&mut self) {
        self.pos = 0;
        write!(self, "{}", httpdate::HttpDate::from(SystemTime::now())).unwrap();
    }
}

impl fmt::Write for Date {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let len = s.len();
        self.bytes[self.pos..self.pos + len].copy_from_slice(s.as_bytes());
        self.pos += len;
        Ok(())
    }
}

/// How long a rendered `Date` header value is reused before it is rendered again.
const DATE_REUSE: Duration = Duration::from_millis(500);

/// The `Date` header value, rendered lazily and reused for up to [`DATE_REUSE`].
///
/// cme patch: upstream refreshes the value from an `interval(500ms)` task spawned on every
/// worker, which wakes an idle server four times a second on two workers (actix/actix-web#3411).
/// Here the value is refreshed by the request that finds it stale, so an idle server never
/// wakes; a busy one renders it at most twice a second per worker, as before.
pub(crate) struct DateService {
    current: Cell<(Date, Instant)>,
}

impl DateService {
    pub(crate) fn new() -> Self {
        DateService {
            current: Cell::new((Date::new(), Instant::now())),
        }
    }

    /// The current instant, read from the clock (upstream returned the timer's last tick).
    pub(crate) fn now(&self) -> Instant {
        Instant::now()
    }

    /// Calls `f` with the date, rendered again first when the cached one is stale.
    pub(crate) fn with_date<F: FnMut(&Date)>(&self, mut f: F) {
        let now = Instant::now();
        let (mut date, rendered_at) = self.current.get();
        if now.saturating_duration_since(rendered_at) >= DATE_REUSE {
            date = Date::new();
            self.current.set((date, now));
        }
        f(&date);
    }
}

impl fmt::Debug for DateService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DateService").finish_non_exhaustive()
    }
}
