//! Ansible's INI inventory format, as its `ini` inventory plugin reads it:
//!
//! * hosts before any section are `ungrouped`; `[group]` lists hosts (host patterns), each
//!   optionally followed by `key=value` variables, split as a shell splits words (quotes
//!   group, `#` starting a word starts a comment);
//! * `[group:vars]` sets the group's variables (`key=value`, spaces around `=` allowed);
//! * `[group:children]` names child groups, which may be defined anywhere in the file;
//! * `#` and `;` start comment lines; values that are numbers or booleans in Python's
//!   literal syntax are read as such, quoted values lose their quotes.
//!
//! A line that is none of these refuses the file naming the line, as Ansible does.

use super::model::Model;
use super::var::{Var, Vars};

#[derive(Debug)]
enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub(super) fn read(text: &str, model: &mut Model) -> Result<(), String> {
    let mut section = Section::Hosts("ungrouped".into());
    for (number, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let at = |why: String| format!("line {}: {why}", number + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = header(line).map_err(at)?;
            match &section {
                Section::Hosts(group) | Section::Vars(group) | Section::Children(group) => {
                    model.declare(group).map_err(at)?
                }
            }
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words = shell_words(line).map_err(at)?;
                let Some((pattern, rest)) = words.split_first() else { continue };
                let mut vars = Vars::new();
                for word in rest {
                    let (key, value) = word
                        .split_once('=')
                        .ok_or_else(|| at(format!("{word:?} after host {pattern} is not key=value")))?;
                    vars.insert(key.to_string(), literal(value, false));
                }
                model.add_pattern(group, pattern, &vars).map_err(at)?;
            }
            Section::Vars(group) => {
                let (key, value) =
                    line.split_once('=').ok_or_else(|| at(format!("{line:?} in [{group}:vars] is not key=value")))?;
                let key = key.trim();
                if key.is_empty() || key.contains(char::is_whitespace) {
                    return Err(at(format!("{key:?} in [{group}:vars] is not a variable name")));
                }
                let mut vars = Vars::new();
                vars.insert(key.to_string(), literal(value.trim(), true));
                model.add_group_vars(group, vars).map_err(at)?;
            }
            Section::Children(group) => {
                let words = shell_words(line).map_err(at)?;
                match words.as_slice() {
                    [] => {}
                    [child] => model.add_child(group, child).map_err(at)?,
                    _ => return Err(at(format!("[{group}:children] lists one group per line, not {line:?}"))),
                }
            }
        }
    }
    Ok(())
}

/// `[web]`, `[web:vars]`, `[web:children]`, with an optional comment after.
fn header(line: &str) -> Result<Section, String> {
    let close = line.find(']').ok_or_else(|| format!("section {line:?} has no ']'"))?;
    let after = line[close + 1..].trim();
    if !after.is_empty() && !after.starts_with('#') && !after.starts_with(';') {
        return Err(format!("text after the section header: {after:?}"));
    }
    let inside = &line[1..close];
    let (name, kind) = match inside.split_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (inside, None),
    };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '[') {
        return Err(format!("[{inside}] does not name a group"));
    }
    let name = name.to_string();
    match kind {
        None | Some("hosts") => Ok(Section::Hosts(name)),
        Some("vars") => Ok(Section::Vars(name)),
        Some("children") => Ok(Section::Children(name)),
        Some(other) => Err(format!("[{inside}]: a section is [group], [group:vars] or [group:children], not :{other}")),
    }
}

/// Splits a line as Python's `shlex.split(line, comments=True)` does: whitespace
/// separates words, quotes group (a backslash escapes inside double quotes and outside
/// quotes), `#` at the start of a word begins a comment.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a quote (') is not closed".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("a quote (\") is not closed".into()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a quote (\") is not closed".into()),
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.next() {
                    word.get_or_insert_with(String::new).push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// A value as Ansible's INI reader makes it: Python literals (numbers, `True`/`False`)
/// become numbers and booleans; in `:vars` sections quotes around the whole value are
/// removed (host-line values lost theirs to the word splitting already); else text.
fn literal(value: &str, unquote: bool) -> Var {
    let trimmed = value.trim();
    if unquote && trimmed.len() >= 2 {
        for q in ['"', '\''] {
            if trimmed.starts_with(q) && trimmed.ends_with(q) {
                return Var::Text(trimmed[1..trimmed.len() - 1].to_string());
            }
        }
    }
    match trimmed {
        "True" => return Var::Bool(true),
        "False" => return Var::Bool(false),
        _ => {}
    }
    if let Ok(n) = trimmed.parse::<i64>() {
        // Python reads 010 as an error and keeps it as text; so do we.
        if !(trimmed.len() > 1 && trimmed.trim_start_matches('-').starts_with('0')) {
            return Var::Number(n.into());
        }
    }
    if trimmed.contains('.')
        && let Ok(f) = trimmed.parse::<f64>()
        && f.is_finite()
        && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return serde_json::Number::from_f64(f).map_or(Var::Null, Var::Number);
    }
    Var::Text(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_shlex_splits_them() {
        assert_eq!(
            shell_words(r#"web1 a=1 b="two words" c='x y' # note"#).unwrap(),
            ["web1", "a=1", "b=two words", "c=x y"]
        );
        assert_eq!(shell_words("h x=a#b").unwrap(), ["h", "x=a#b"], "# inside a word is not a comment");
        assert!(shell_words("h x='open").is_err());
    }

    #[test]
    fn literals_are_read_as_python_would() {
        assert_eq!(literal("22", false), Var::Number(22.into()));
        assert_eq!(literal("True", false), Var::Bool(true));
        assert_eq!(literal("010", false), Var::Text("010".into()));
        assert_eq!(literal("\"quoted text\"", true), Var::Text("quoted text".into()));
        assert_eq!(literal("10.0.0.1", false), Var::Text("10.0.0.1".into()));
    }

    #[test]
    fn headers_name_the_section_kind() {
        assert!(matches!(header("[web]").unwrap(), Section::Hosts(g) if g == "web"));
        assert!(matches!(header("[web:vars] # x").unwrap(), Section::Vars(g) if g == "web"));
        assert!(matches!(header("[web:children]").unwrap(), Section::Children(g) if g == "web"));
        assert!(header("[web:other]").unwrap_err().contains(":other"));
        assert!(header("[web").is_err());
    }
}
