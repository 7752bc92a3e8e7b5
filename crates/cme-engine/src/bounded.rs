//! Parsing hostile documents within fixed bounds. Every document a request or a fetch
//! hands the engine (calendars, inventories, keys) is parsed here:
//!
//! * off the async workers, on a thread of its own with a [`PARSE_STACK`] stack, at most
//!   [`PARSES_AT_ONCE`] at a time (a burst of hostile imports queues instead of taking
//!   the memory of all of them at once);
//! * with recursion an input cannot drive past a fixed depth (each parser checks nesting
//!   first, in a linear pre-scan or by a depth limit of its own), so the stack is bounded
//!   — a stack overflow aborts the process and cannot be caught;
//! * with a panic inside the parser turned into an error naming the document, never a
//!   dead worker.
//!
//! YAML is read through [`yaml`], which counts every node and byte it builds, aliases
//! included, so that a document of aliases to aliases ("billion laughs") is refused after
//! [`YAML_MAX_NODES`] nodes instead of filling memory.

use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_norway::{Mapping, Value as Yaml};
use tokio::sync::Semaphore;

/// The stack of a parsing thread: far more than the deepest nesting any parser here
/// allows needs, in a debug build too.
pub const PARSE_STACK: usize = 16 << 20;

/// Documents parsed at once; more wait their turn.
pub const PARSES_AT_ONCE: usize = 2;

/// The most YAML nodes (scalars, sequences, mappings, with every alias expanded) one
/// document may build.
pub const YAML_MAX_NODES: usize = 250_000;

/// The most bytes of scalar text one YAML document may build, aliases expanded.
pub const YAML_MAX_TEXT_BYTES: usize = 16 << 20;

/// The deepest a YAML document may nest.
pub const YAML_MAX_DEPTH: usize = 64;

static GATE: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(PARSES_AT_ONCE));

/// Runs `parse` on a parsing thread (see the module's doc) and answers its result; a panic
/// becomes an error saying `what` could not be read.
pub async fn off_worker<T: Send + 'static>(
    what: &'static str,
    parse: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let _permit = GATE.acquire().await.map_err(|_| format!("{what}: the engine is shutting down"))?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("cme-parse".into()).stack_size(PARSE_STACK).spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse));
        let _ = answer.send(result);
    });
    if let Err(e) = spawned {
        return Err(format!("{what}: no thread to parse it on ({e})"));
    }
    match answered.await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(what, panic = %why, "a parser panicked on a document; refused");
            Err(format!("{what} could not be read (the parser failed on it)"))
        }
        Err(_) => Err(format!("{what} could not be read")),
    }
}

/// Why a document from a request was refused before or while parsing it: a bound it
/// breaks (nesting, size, nodes), or the parser's own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DocumentRefused(pub String);

impl From<String> for DocumentRefused {
    fn from(message: String) -> Self {
        DocumentRefused(message)
    }
}

/// Parses YAML into a value, refusing documents that nest deeper than
/// [`YAML_MAX_DEPTH`] or expand (aliases included) past [`YAML_MAX_NODES`] nodes or
/// [`YAML_MAX_TEXT_BYTES`] bytes of text. Tagged values are kept with their tag.
pub fn yaml(text: &str) -> Result<Yaml, DocumentRefused> {
    check_yaml_flow_depth(text)?;
    let mut budget = Budget { nodes: 0, bytes: 0, depth: 0 };
    let deserializer = serde_norway::Deserializer::from_str(text);
    BoundedYaml { budget: &mut budget }.deserialize(deserializer).map_err(|e| DocumentRefused(e.to_string()))
}

/// Refuses flow collections (`[`, `{`) nested deeper than [`YAML_MAX_DEPTH`], in one
/// linear pass before the parser runs: the parser's own work grows with the square of
/// the nesting (38 KB of `[` took seconds), so depth must be refused before it parses.
/// Quoted scalars and comments are skipped as YAML reads them.
fn check_yaml_flow_depth(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    let mut previous = '\n';
    while let Some(c) = chars.next() {
        match c {
            '[' | '{' => {
                depth += 1;
                if depth > YAML_MAX_DEPTH {
                    return Err(format!("the document nests deeper than {YAML_MAX_DEPTH} levels"));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            '#' if previous.is_whitespace() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '\'' if !previous.is_alphanumeric() => {
                while let Some(c) = chars.next() {
                    if c == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
        previous = c;
    }
    Ok(())
}

struct Budget {
    nodes: usize,
    bytes: usize,
    depth: usize,
}

impl Budget {
    fn take<E: de::Error>(&mut self, bytes: usize) -> Result<(), E> {
        self.nodes += 1;
        self.bytes += bytes;
        if self.nodes > YAML_MAX_NODES {
            return Err(E::custom(format!(
                "the document expands to more than {YAML_MAX_NODES} nodes (aliases included)"
            )));
        }
        if self.bytes > YAML_MAX_TEXT_BYTES {
            return Err(E::custom(format!(
                "the document expands to more than {YAML_MAX_TEXT_BYTES} bytes of text (aliases included)"
            )));
        }
        Ok(())
    }
}

struct BoundedYaml<'a> {
    budget: &'a mut Budget,
}

impl<'de> DeserializeSeed<'de> for BoundedYaml<'_> {
    type Value = Yaml;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Yaml, D::Error> {
        if self.budget.depth >= YAML_MAX_DEPTH {
            return Err(de::Error::custom(format!("the document nests deeper than {YAML_MAX_DEPTH} levels")));
        }
        self.budget.depth += 1;
        let value = deserializer.deserialize_any(BoundedVisitor { budget: &mut *self.budget });
        self.budget.depth -= 1;
        value
    }
}

struct BoundedVisitor<'a> {
    budget: &'a mut Budget,
}

impl<'de> Visitor<'de> for BoundedVisitor<'_> {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Yaml, E> {
        self.budget.take(0)?;
        Ok(Yaml::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Yaml, E> {
        self.budget.take(0)?;
        Ok(Yaml::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        self.budget.take(0)?;
        Ok(Yaml::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Yaml, E> {
        self.budget.take(0)?;
        Ok(Yaml::Number(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Yaml, E> {
        self.budget.take(v.len())?;
        Ok(Yaml::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Yaml, E> {
        self.budget.take(v.len())?;
        Ok(Yaml::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Yaml, E> {
        self.budget.take(0)?;
        Ok(Yaml::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Yaml, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Yaml, D::Error> {
        BoundedYaml { budget: self.budget }.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        self.budget.take(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(BoundedYaml { budget: &mut *self.budget })? {
            items.push(item);
        }
        Ok(Yaml::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        self.budget.take(0)?;
        let mut mapping = Mapping::new();
        while let Some(key) = map.next_key_seed(BoundedYaml { budget: &mut *self.budget })? {
            let value = map.next_value_seed(BoundedYaml { budget: &mut *self.budget })?;
            mapping.insert(key, value);
        }
        Ok(Yaml::Mapping(mapping))
    }

    /// A tagged value (`!vault |`, as Ansible Vault writes encrypted variables) is kept
    /// with its tag, within the same budget; what it means is the reader's to decide.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Yaml, A::Error> {
        use serde::de::VariantAccess;
        let (tag, variant): (String, A::Variant) = data.variant()?;
        self.budget.take(tag.len())?;
        let value = variant.newtype_variant_seed(BoundedYaml { budget: &mut *self.budget })?;
        Ok(Yaml::Tagged(Box::new(serde_norway::value::TaggedValue { tag: serde_norway::value::Tag::new(tag), value })))
    }
}

/// The deepest an iCalendar file may nest components (a VALARM in a VEVENT in the
/// VCALENDAR is three; RFC 5545 defines nothing deeper than a VTIMEZONE's STANDARD).
pub const ICAL_MAX_DEPTH: usize = 8;

/// The most content lines (after unfolding) one iCalendar file may hold.
pub const ICAL_MAX_LINES: usize = 200_000;

/// Checks an iCalendar file's shape in one linear pass before it is parsed: components
/// nest at most [`ICAL_MAX_DEPTH`] deep, every END closes the open BEGIN of its name,
/// there are at most [`ICAL_MAX_LINES`] content lines and at most
/// [`crate::calendar::MAX_EVENTS`] events (a file of more is refused before the parser
/// builds any of them). Names are compared in any case,
/// as RFC 5545 reads them, and folded lines are unfolded first.
pub fn check_ical_shape(text: &str) -> Result<(), DocumentRefused> {
    let mut open: Vec<String> = Vec::new();
    let mut lines = 0usize;
    let mut events = 0usize;
    let mut logical = String::new();
    let mut check = |line: &str, open: &mut Vec<String>| -> Result<(), String> {
        lines += 1;
        if lines > ICAL_MAX_LINES {
            return Err(format!("the calendar has more than {ICAL_MAX_LINES} lines"));
        }
        let Some((name, value)) = line.split_once(':') else { return Ok(()) };
        let name = name.split(';').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("BEGIN") {
            if open.len() >= ICAL_MAX_DEPTH {
                return Err(format!("components nest deeper than {ICAL_MAX_DEPTH} levels"));
            }
            let component = value.trim().to_ascii_uppercase();
            if component == "VEVENT" {
                events += 1;
                if events > crate::calendar::MAX_EVENTS {
                    return Err(format!("the calendar has more than {} events", crate::calendar::MAX_EVENTS));
                }
            }
            open.push(component);
        } else if name.eq_ignore_ascii_case("END") {
            let closing = value.trim().to_ascii_uppercase();
            match open.pop() {
                Some(begun) if begun == closing => {}
                Some(begun) => return Err(format!("END:{closing} closes BEGIN:{begun}")),
                None => return Err(format!("END:{closing} closes nothing")),
            }
        }
        Ok(())
    };
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(continued) = raw.strip_prefix([' ', '\t']) {
            logical.push_str(continued);
            continue;
        }
        check(&logical, &mut open)?;
        logical.clear();
        logical.push_str(raw);
    }
    check(&logical, &mut open)?;
    if let Some(unclosed) = open.last() {
        return Err(DocumentRefused(format!("BEGIN:{unclosed} is never closed")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_to_aliases_are_refused_before_they_fill_memory() {
        let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let previous = level - 1;
            laughs.push_str(&format!("a{level}: &a{level} [*a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}, *a{previous}]\n"));
        }
        let refused = yaml(&laughs).unwrap_err().to_string();
        assert!(refused.contains("more than 250000 nodes") || refused.contains("repetition limit"), "{refused}");
        // Within the parser's own repetition limit, the node budget is what stops it.
        let mut wide = String::from("a: &a [");
        wide.push_str(&"x, ".repeat(5_000));
        wide.push_str("]\nb: [");
        wide.push_str(&"*a, ".repeat(60));
        wide.push_str("]\n");
        assert!(yaml(&wide).unwrap_err().to_string().contains("more than 250000 nodes"));
        let big = "x".repeat(1 << 20);
        let mut strings = format!("big: &big {big}\nuses: [");
        strings.push_str(&"*big, ".repeat(40));
        strings.push_str("]\n");
        assert!(yaml(&strings).unwrap_err().to_string().contains("bytes of text"));
    }

    #[test]
    fn flow_nesting_is_counted_outside_quotes_and_comments() {
        let deep = format!("a: {}{}", "[".repeat(65), "]".repeat(65));
        assert!(check_yaml_flow_depth(&deep).unwrap_err().contains("deeper than 64"));
        let quoted =
            format!("a: \"{}\"\nb: '{}'\n# {}\nc: it's [1]", "[".repeat(100), "{".repeat(100), "[".repeat(100));
        assert!(check_yaml_flow_depth(&quoted).is_ok());
        assert!(yaml(&quoted).is_ok());
    }

    #[test]
    fn deep_yaml_is_refused_and_ordinary_yaml_reads() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let refused = yaml(&deep).unwrap_err().to_string();
        assert!(refused.contains("deeper") || refused.contains("recursion"), "{refused}");
        let merged = yaml("base: &base {user: ops}\nweb:\n  <<: *base\n  port: 22\n").unwrap();
        assert_eq!(merged["web"]["port"], Yaml::Number(22.into()));
        let tagged = yaml("!custom 3").unwrap();
        assert!(
            matches!(tagged, Yaml::Tagged(ref t) if t.tag == "custom" && t.value == Yaml::Number(3.into())),
            "{tagged:?}"
        );
    }

    #[test]
    fn calendars_that_nest_too_deep_or_do_not_close_are_refused_in_a_linear_pass() {
        let deep = "BEGIN:VCALENDAR\r\n".to_string() + &"BEGIN:X\r\n".repeat(100_000);
        assert!(check_ical_shape(&deep).unwrap_err().to_string().contains("deeper than 8"));
        let folded = "BEGIN:VCALENDAR\r\nBEG\r\n IN:VEVENT\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert!(check_ical_shape(folded).is_ok());
        assert!(check_ical_shape("begin:vcalendar\nEND:VCALENDAR\n").is_ok(), "any case");
        assert!(
            check_ical_shape("BEGIN:VCALENDAR\r\nEND:VEVENT\r\n")
                .unwrap_err()
                .to_string()
                .contains("closes BEGIN:VCALENDAR")
        );
        assert!(check_ical_shape("BEGIN:VCALENDAR\r\n").unwrap_err().to_string().contains("never closed"));
        let many = format!("BEGIN:VCALENDAR\r\n{}END:VCALENDAR\r\n", "BEGIN:VEVENT\r\nEND:VEVENT\r\n".repeat(10_001));
        assert!(check_ical_shape(&many).unwrap_err().to_string().contains("more than 10000 events"));
    }

    #[tokio::test]
    async fn a_panicking_parser_is_an_error_not_a_dead_worker() {
        let refused = off_worker("the test document", || -> Result<(), String> { panic!("boom") }).await.unwrap_err();
        assert!(refused.contains("the test document could not be read"), "{refused}");
        assert_eq!(off_worker("fine", || Ok(3)).await, Ok(3));
    }
}
