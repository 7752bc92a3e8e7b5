//! Cron lines as people copy them, in the dialect they were written for. Every dialect
//! ends as a `croner` pattern (seconds, minutes, hours, day of month, month, day of week,
//! year) plus what croner lacks (`L-n`, intervals):
//!
//! * `unix` (default): 5 fields, or 6 with seconds first; `@yearly`... `@hourly`,
//!   `@midnight`; `@every 1h30m` and AWS's `rate(5 minutes)` (intervals from the plan's
//!   `start`); a step from a single value read as cronie reads it (`20/15` is `20-59/15`);
//!   `L`, `L-3`, `LW`, `W`, `#`; day of week 0 or 7 is Sunday; day of month and day of
//!   week both restricted fire on either (as Vixie cron); a whole crontab entry's command
//!   after the five fields is left out, as are quotes around the line.
//! * `spring`: 6 fields, seconds first, as Spring's `CronExpression`: `?`, `L`, `W`, `#`,
//!   day of week 0 or 7 Sunday; day of month and day of week must both match.
//! * `quartz`: 6 or 7 fields (a year last); day of week 1 is Sunday, so `6L` is the last
//!   Friday and `6#3` the third; one of the day fields is `?`.
//! * `aws`: EventBridge's 6 fields (minutes ... year), `cron(...)` around them accepted;
//!   day of week 1 is Sunday; one of the day fields is `?`.
//! * `jenkins`: 5 fields with `H` (a value hashed from the plan's seed: stable across
//!   restarts and replicas), `H/15`, `H(0-29)`, and Jenkins' `@hourly`... `@midnight`
//!   spread by `H`; day of month and day of week must both match.
//!
//! Any dialect takes a `CRON_TZ=Zone` or `TZ=Zone` prefix. `@reboot` is refused: a plan
//! has no boot.

use cme_plugin_sdk::PluginError;
use cme_plugin_sdk::chrono::{DateTime, Datelike, Duration, Utc};
use cme_plugin_sdk::chrono_tz::Tz;
use cme_plugin_sdk::time;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

pub use crate::args::Dialect;

/// When a line fires.
#[derive(Debug, Clone)]
pub enum Timing {
    /// On a cron pattern; `last_day_offset` `n` narrows the day of month to the month's
    /// last day minus `n` (`L-n`, which croner does not read).
    Cron { cron: Cron, last_day_offset: Option<u32> },
    /// Every `interval`, counted from the plan's `start`.
    Every(Duration),
}

/// A line read: when it fires, and the zone its prefix named.
#[derive(Debug, Clone)]
pub struct Line {
    pub timing: Timing,
    pub zone: Option<Tz>,
}

/// The years a line is read for. Croner builds its year field value by value (5,000 of
/// them for `*`: three quarters of a plan call), so a planner reads the line for the
/// years around its window; a year the line names itself (Quartz, AWS) is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Years {
    first: i32,
    last: i32,
}

impl Years {
    /// Every year croner knows (what `*` reads as).
    pub const ALL: Years = Years { first: croner::YEAR_LOWER_LIMIT, last: croner::YEAR_UPPER_LIMIT };

    /// The years of `[from, until)` in any zone (a year either side: wall time in a zone
    /// is up to a day from UTC).
    pub fn around(from: DateTime<Utc>, until: DateTime<Utc>) -> Years {
        let first = (from.year() - 1).clamp(croner::YEAR_LOWER_LIMIT, croner::YEAR_UPPER_LIMIT);
        let last = (until.year() + 1).clamp(first, croner::YEAR_UPPER_LIMIT);
        Years { first, last }
    }

    /// The year field that stands for `*`.
    fn field(self) -> String {
        if self == Years::ALL { "*".into() } else { format!("{}-{}", self.first, self.last) }
    }
}

/// The shortest interval `@every` and `rate()` take.
pub const MIN_INTERVAL_SECONDS: i64 = 1;

/// Reads `text` in `dialect` for `years`; `seed` hashes Jenkins' `H`. A refusal names the
/// field and, when another dialect reads the line, says which.
pub fn read(text: &str, dialect: Dialect, seed: u64, years: Years) -> Result<Line, PluginError> {
    let refuse = |why: String| {
        let mut why = why;
        if let Some(other) = Dialect::ALL.into_iter().find(|d| *d != dialect && read_as(text, *d, seed, years).is_ok())
        {
            why.push_str(&format!(" (it reads as a {} line: set \"dialect\": \"{}\")", other.name(), other.name()));
        }
        PluginError::invalid("cron", why)
    };
    read_as(text, dialect, seed, years).map_err(refuse)
}

fn read_as(text: &str, dialect: Dialect, seed: u64, years: Years) -> Result<Line, String> {
    let (zone, rest) = zone_prefix(unquoted(text.trim()))?;
    let rest = unquoted(rest.trim());
    if rest.is_empty() {
        return Err("the line is empty".into());
    }
    if rest.starts_with("at(") {
        return Err("at(...) is an EventBridge one-time schedule, not a recurring one: use exact_planner:ExactPlanner with its date".into());
    }
    let timing = if let Some(inner) = rest.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        if dialect != Dialect::Aws && dialect != Dialect::Unix {
            return Err(format!("cron(...) is an AWS line, not a {} one", dialect.name()));
        }
        fields(inner, Dialect::Aws, seed, years)?
    } else if let Some(inner) = rest.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        Timing::Every(rate(inner)?)
    } else if let Some(nickname) = rest.strip_prefix('@') {
        let (word, arg) = nickname.split_once(char::is_whitespace).unwrap_or((nickname, ""));
        match (word.to_ascii_lowercase().as_str(), dialect) {
            ("reboot", _) => {
                return Err("@reboot fires when a machine boots, and a plan has no boot: use @every, a cron line or the exact planner".into());
            }
            ("every", _) => Timing::Every(every(arg.trim())?),
            (_, _) if !arg.trim().is_empty() => return Err(format!("@{word} takes nothing after it")),
            (word, Dialect::Jenkins) => {
                let spread = match word {
                    "yearly" | "annually" => "H H H(1-28) H *",
                    "monthly" => "H H H(1-28) * *",
                    "weekly" => "H H * * H",
                    "daily" => "H H * * *",
                    "midnight" => "H H(0-2) * * *",
                    "hourly" => "H * * * *",
                    other => {
                        return Err(format!(
                            "@{other} is not a nickname (@yearly, @monthly, @weekly, @daily, @midnight, @hourly, @every)"
                        ));
                    }
                };
                fields(spread, Dialect::Jenkins, seed, years)?
            }
            (word, _) => {
                let expanded = match word {
                    "yearly" | "annually" => "0 0 1 1 *",
                    "monthly" => "0 0 1 * *",
                    "weekly" => "0 0 * * 0",
                    "daily" | "midnight" => "0 0 * * *",
                    "hourly" => "0 * * * *",
                    other => {
                        return Err(format!(
                            "@{other} is not a nickname (@yearly, @monthly, @weekly, @daily, @midnight, @hourly, @every)"
                        ));
                    }
                };
                fields(expanded, Dialect::Unix, seed, years)?
            }
        }
    } else {
        match fields(rest, dialect, seed, years) {
            Ok(timing) => timing,
            // A crontab entry copied whole: five schedule fields, then (in /etc/crontab a
            // user and) the command, which cron runs and a plan has no use for.
            Err(why) => match crontab_schedule(rest, dialect) {
                Some(schedule) => fields(schedule, dialect, seed, years)?,
                None => return Err(why),
            },
        }
    };
    Ok(Line { timing, zone })
}

/// A line without the quotes a YAML or shell copy leaves around it.
fn unquoted(text: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner.trim();
        }
    }
    text
}

/// The five schedule fields of a whole crontab entry (`0 5 * * * /usr/bin/backup.sh`,
/// or `17 * * * * root run-parts ...` from /etc/crontab), when the word after them cannot
/// be a sixth field: it holds a letter run that names no day or month, or is a path.
fn crontab_schedule(text: &str, dialect: Dialect) -> Option<&str> {
    if !matches!(dialect, Dialect::Unix | Dialect::Jenkins) {
        return None;
    }
    let mut rest = text;
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = &rest[rest.find(char::is_whitespace)?..];
    }
    let command = rest.split_whitespace().next()?;
    const NAMES: [&str; 21] = [
        "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP",
        "OCT", "NOV", "DEC", "L", "W",
    ];
    let upper = command.to_ascii_uppercase();
    let is_field = !upper.starts_with('/')
        && upper.chars().all(|c| c.is_ascii_alphanumeric() || "*,-/?#".contains(c))
        && upper.split(|c: char| !c.is_ascii_alphabetic()).all(|w| w.is_empty() || w == "LW" || NAMES.contains(&w));
    (!is_field).then(|| text[..text.len() - rest.len()].trim())
}

/// `CRON_TZ=Europe/Madrid 0 9 * * *` or `TZ=...`.
fn zone_prefix(text: &str) -> Result<(Option<Tz>, &str), String> {
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let (name, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let zone = time::parse_zone(name).map_err(|e| format!("{prefix}{name}: {e}"))?;
            return Ok((Some(zone), rest));
        }
    }
    Ok((None, text))
}

/// Go's durations as `@every` takes them (`1h30m`, `90m`, `1.5h`, `45s`), plus days
/// (`1d`); whole seconds.
fn every(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("@every needs an interval, e.g. @every 1h30m".into());
    }
    let mut total: f64 = 0.0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("@every {text}: {c:?} is not a unit (d, h, m, s)")),
        };
        let n: f64 = number.parse().map_err(|_| format!("@every {text}: a number comes before each unit"))?;
        total += n * unit as f64;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("@every {text}: {number} has no unit (d, h, m, s)"));
    }
    if !total.is_finite() || total > 1e12 {
        return Err(format!("@every {text} is too long"));
    }
    interval(total.round() as i64, text)
}

/// AWS's `rate(5 minutes)`.
fn rate(text: &str) -> Result<Duration, String> {
    let (value, unit) = text
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("rate({text}): a value and a unit, e.g. rate(5 minutes)"))?;
    let n: i64 = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("rate({text}): {value:?} is not a positive whole number"))?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        other => return Err(format!("rate({text}): {other:?} is not minutes, hours or days")),
    };
    interval(n.checked_mul(unit).ok_or_else(|| format!("rate({text}) is too long"))?, text)
}

fn interval(seconds: i64, text: &str) -> Result<Duration, String> {
    if seconds < MIN_INTERVAL_SECONDS {
        return Err(format!("{text}: an interval of at least {MIN_INTERVAL_SECONDS} s"));
    }
    if seconds > 366 * 86_400 {
        return Err(format!("{text}: an interval of at most 366 days"));
    }
    Ok(Duration::seconds(seconds))
}

const NAMES: [&str; 7] = ["second", "minute", "hour", "day of month", "month", "day of week", "year"];
/// Each field's range (a step from a single value runs to its end).
const RANGES: [(u32, u32); 7] = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (1970, 2099)];

/// The fields of a line in `dialect`, as croner's seven (seconds ... year).
fn fields(text: &str, dialect: Dialect, seed: u64, years: Years) -> Result<Timing, String> {
    let given: Vec<&str> = text.split_whitespace().collect();
    let n = given.len();
    let mut seven: Vec<String> = match (dialect, n) {
        (Dialect::Unix | Dialect::Jenkins, 5) => {
            [&["0"][..], &given[..], &["*"][..]].concat().into_iter().map(str::to_string).collect()
        }
        (Dialect::Unix | Dialect::Spring, 6) => given.iter().map(|s| s.to_string()).chain(["*".to_string()]).collect(),
        (Dialect::Quartz, 6) => given.iter().map(|s| s.to_string()).chain(["*".to_string()]).collect(),
        (Dialect::Quartz, 7) => given.iter().map(|s| s.to_string()).collect(),
        (Dialect::Aws, 6) => ["0"].iter().chain(given.iter()).map(|s| s.to_string()).collect(),
        (dialect, n) => {
            let wanted = match dialect {
                Dialect::Unix => "5 (minute hour day month weekday) or 6 (seconds first)",
                Dialect::Spring => "6 (seconds first)",
                Dialect::Quartz => "6 or 7 (seconds first, a year last)",
                Dialect::Aws => "6 (minutes hours day-of-month month day-of-week year)",
                Dialect::Jenkins => "5 (minute hour day month weekday)",
            };
            return Err(format!("{n} fields; a {} line has {wanted}", dialect.name()));
        }
    };
    let one_based_weekdays = matches!(dialect, Dialect::Quartz | Dialect::Aws);
    for (i, field) in seven.iter_mut().enumerate() {
        let at = |why: String| format!("field {} ({}) {field:?}: {why}", position(dialect, n, i), NAMES[i]);
        if dialect == Dialect::Jenkins {
            *field = hashed(field, i, seed).map_err(at)?;
        } else if field.to_ascii_uppercase().replace("THU", "").contains('H') {
            return Err(at("H is Jenkins' hash: set \"dialect\": \"jenkins\"".into()));
        }
        *field = cronie_steps(field, i, one_based_weekdays);
    }
    if matches!(dialect, Dialect::Quartz | Dialect::Aws) {
        let (dom, dow) = (&seven[3], &seven[5]);
        if dom != "?" && dow != "?" {
            return Err(format!(
                "a {} line gives one of day of month ({dom}) and day of week ({dow}) and '?' for the other",
                dialect.name()
            ));
        }
    }
    // L-n: croner reads neither it nor an offset; the planner narrows the days itself.
    let mut last_day_offset = None;
    if let Some(offset) = seven[3].strip_prefix("L-") {
        let offset: u32 = offset.parse().ok().filter(|o| *o <= 30).ok_or_else(|| {
            format!("field {} (day of month) {:?}: L-n takes n from 0 to 30", position(dialect, n, 3), seven[3])
        })?;
        if !matches!(seven[5].as_str(), "*" | "?") {
            return Err(format!(
                "field {} (day of month) {:?} with a day of week is not supported; give the day of week as * or ?",
                position(dialect, n, 3),
                seven[3]
            ));
        }
        last_day_offset = Some(offset);
        seven[3] = "*".into();
    }
    if seven[6] == "*" {
        seven[6] = years.field();
    }
    let pattern = seven.join(" ");
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(one_based_weekdays)
        .dom_and_dow(matches!(dialect, Dialect::Spring | Dialect::Jenkins))
        .build();
    let cron = parser.parse(&pattern).map_err(|e| {
        // Blame the field: each alone, the others any.
        for i in 0..7 {
            let mut probe: Vec<&str> = vec!["0", "*", "*", "*", "*", "*", "*"];
            probe[i] = &seven[i];
            if let Err(e) = parser.parse(&probe.join(" ")) {
                return format!("field {} ({}) {:?}: {e}", position(dialect, n, i), NAMES[i], seven[i]);
            }
        }
        format!("{text:?} is not a cron line: {e}")
    })?;
    Ok(Timing::Cron { cron, last_day_offset })
}

/// The 1-based position of croner's field `i` in the line as written.
fn position(dialect: Dialect, given: usize, i: usize) -> usize {
    match (dialect, given) {
        (Dialect::Unix | Dialect::Jenkins, 5) | (Dialect::Aws, _) => i,
        _ => i + 1,
    }
}

/// A step from a single value runs to the field's end, as cronie reads it: `20/15` is
/// `20-59/15`; a bare `/5` is `*/5`.
fn cronie_steps(field: &str, i: usize, one_based_weekdays: bool) -> String {
    let hi = match (i, one_based_weekdays) {
        (5, true) => 7,
        _ => RANGES[i].1,
    };
    field
        .split(',')
        .map(|part| match part.split_once('/') {
            Some(("", step)) => format!("*/{step}"),
            Some((start, step)) if start.chars().all(|c| c.is_ascii_digit()) && !start.is_empty() => {
                format!("{start}-{hi}/{step}")
            }
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Jenkins' `H`, `H/15`, `H(0-29)`, `H(0-29)/10` in field `i`: a value within the range
/// from a hash of the seed and the field, the same every time.
fn hashed(field: &str, i: usize, seed: u64) -> Result<String, String> {
    if !field.contains('H') {
        return Ok(field.to_string());
    }
    let (lo, hi) = match i {
        3 => (1, 28), // as Jenkins: H in the day of month stays within every month
        5 => (0, 6),
        _ => RANGES[i],
    };
    let mut parts = Vec::new();
    for part in field.split(',') {
        let Some(rest) = part.strip_prefix('H') else {
            parts.push(part.to_string());
            continue;
        };
        let (range, step) = match rest.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (rest, None),
        };
        let (lo, hi) = if range.is_empty() {
            (lo, hi)
        } else {
            let inner = range
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("{part}: H takes H(a-b)"))?;
            let (a, b) = inner.split_once('-').ok_or_else(|| format!("{part}: H takes H(a-b)"))?;
            let a: u32 = a.parse().map_err(|_| format!("{part}: {a:?} is not a number"))?;
            let b: u32 = b.parse().map_err(|_| format!("{part}: {b:?} is not a number"))?;
            if a > b || a < lo || b > hi {
                return Err(format!("{part}: the range must lie within {lo}-{hi}"));
            }
            (a, b)
        };
        let h = mix(seed ^ ((i as u64 + 1) << 56));
        match step {
            None => parts.push((lo + (h % u64::from(hi - lo + 1)) as u32).to_string()),
            Some(step) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{part}: the step {step:?} is not a positive number"))?;
                let start = lo + (h % u64::from(step.min(hi - lo + 1))) as u32;
                parts.push(format!("{start}-{hi}/{step}"));
            }
        }
    }
    Ok(parts.join(","))
}

/// SplitMix64's finalizer: a stable, well-spread hash of a seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
