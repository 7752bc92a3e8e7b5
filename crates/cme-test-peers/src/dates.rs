//! Calendar dates for tests that go through the engine, which plans only from now on.
//!
//! A test about a DST change, the first Monday of a month or a week of work days names
//! the days of one year; written with 2027's dates it would start failing on the first of
//! January 2027. [`Dates::like`] moves such dates forward by whole 28-year cycles, so they
//! always lie in the future and keep their weekdays, leap days and DST Sundays (between
//! 1901 and 2099 the Gregorian calendar repeats every 28 years; the zone rules the engine
//! uses run to 2099).
//!
//! `CME_TEST_DATES_CYCLES=N` moves them N cycles further: a run with it shows that no test
//! depends on the year it was written in.

use chrono::Datelike;

/// The Gregorian calendar's period between 1901 and 2099, in years.
const CYCLE: i32 = 28;

/// A shift of whole calendar cycles, chosen so that the earliest year a test names is
/// after this year.
#[derive(Clone, Copy, Debug)]
pub struct Dates {
    shift: i32,
}

impl Dates {
    /// The shift for a test whose dates are in `earliest` or later.
    pub fn like(earliest: i32) -> Dates {
        let this_year = chrono::Utc::now().year();
        let cycles = if earliest > this_year { 0 } else { (this_year - earliest) / CYCLE + 1 };
        let extra = std::env::var("CME_TEST_DATES_CYCLES").ok().and_then(|n| n.parse::<i32>().ok()).unwrap_or(0);
        let shift = (cycles + extra.max(0)) * CYCLE;
        assert!(
            earliest + shift + 10 <= 2099,
            "no room for {earliest} + {shift} years: the calendar cycle and the zone rules end in 2099"
        );
        Dates { shift }
    }

    /// The year that plays `year`.
    pub fn year(&self, year: i32) -> i32 {
        year + self.shift
    }

    /// `text` with the year of every date in it moved: ISO 8601 dates (`2027-01-04`) and
    /// iCalendar's (`20270104T`), wherever they stand (a query string, a JSON document).
    pub fn at(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < bytes.len() {
            let starts_a_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            if starts_a_word && date_at(&bytes[i..]) {
                let year: i32 = text[i..i + 4].parse().expect("four digits");
                out.push_str(&self.year(year).to_string());
                i += 4;
            } else {
                let c = text[i..].chars().next().expect("in bounds");
                out.push(c);
                i += c.len_utf8();
            }
        }
        out
    }
}

/// Whether `b` begins with a date of the 20th or 21st century: `YYYY-MM-DD`, or
/// iCalendar's `YYYYMMDD` (alone or before `T`).
fn date_at(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| b.len() >= range.end && b[range].iter().all(u8::is_ascii_digit);
    let number =
        |range: std::ops::Range<usize>| std::str::from_utf8(&b[range]).ok().and_then(|t| t.parse::<u32>().ok());
    let month_and_day = |month: usize, day: usize| {
        number(month..month + 2).is_some_and(|m| (1..=12).contains(&m))
            && number(day..day + 2).is_some_and(|d| (1..=31).contains(&d))
    };
    let century = b.starts_with(b"19") || b.starts_with(b"20");
    let iso = digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10);
    let ical = digits(0..8) && !b.get(8).is_some_and(u8::is_ascii_digit);
    century && ((iso && month_and_day(5, 8)) || (ical && month_and_day(4, 6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_move_by_whole_cycles_and_only_dates_move() {
        let dates = Dates { shift: 28 };
        assert_eq!(
            dates.at("from=2027-01-04T00:00:00Z&until=2027-01-11T00:00:00Z 2027 x2027-01-01 DTSTART:20261214T090000"),
            "from=2055-01-04T00:00:00Z&until=2055-01-11T00:00:00Z 2027 x2027-01-01 DTSTART:20541214T090000"
        );
        assert_eq!(
            dates.at("DTSTART;VALUE=DATE:20271225\r\n 20271399 202712250 2027-13-01"),
            "DTSTART;VALUE=DATE:20551225\r\n 20271399 202712250 2027-13-01"
        );
        assert_eq!(dates.at("grüße 2030-06-01"), "grüße 2058-06-01");
    }

    #[test]
    fn the_earliest_year_is_always_after_this_one() {
        let this_year = chrono::Utc::now().year();
        for earliest in [this_year - 30, this_year - 1, this_year, this_year + 1] {
            let dates = Dates::like(earliest);
            assert!(dates.year(earliest) > this_year, "{earliest} -> {}", dates.year(earliest));
            assert_eq!(dates.shift % CYCLE, 0);
        }
    }

    #[test]
    fn a_moved_date_keeps_its_weekday() {
        let dates = Dates { shift: 2 * CYCLE };
        for day in ["2027-01-04", "2027-03-28", "2028-02-29", "2026-12-07"] {
            let before = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
            let after = chrono::NaiveDate::parse_from_str(&dates.at(day), "%Y-%m-%d").unwrap();
            assert_eq!(before.weekday(), after.weekday(), "{day}");
        }
    }
}
