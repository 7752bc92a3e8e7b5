//! The lexical layer of RFC 5545 as producers write it: a byte-order mark, CRLF or bare
//! LF, folded lines (a line starting with a space or tab continues the one before),
//! names and parameter names in any case, quoted parameter values. The text becomes a
//! tree of components, each with its properties in file order.
//!
//! Hand-written on purpose: the `icalendar` crate's parser reads names in upper case
//! only and refuses a whole file for one odd line, while producers (Outlook, Zimbra,
//! old Mozilla) write both; here a line that is not a content line is ignored, and a
//! malformed event is left for the event reader to skip, not the file.
//! [`crate::bounded::check_ical_shape`] has bounded the nesting and the line count before
//! this runs, and the tree is built iteratively.

/// One component (`VCALENDAR`, `VEVENT`, `VTIMEZONE`, `STANDARD`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Component {
    /// Upper case.
    pub name: String,
    pub properties: Vec<Property>,
    pub components: Vec<Component>,
}

/// One content line: `NAME;PARAM=value:VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Upper case.
    pub name: String,
    /// Parameter names upper case, values unquoted.
    pub params: Vec<(String, String)>,
    pub value: String,
}

impl Property {
    /// A parameter's value (`TZID`, `VALUE`, ...).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value as TEXT (RFC 5545 3.3.11): `\n`, `\,`, `\;` and `\\` unescaped.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.value.len());
        let mut chars = self.value.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    }
}

impl Component {
    /// The first property of that name.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Every property of that name (EXDATE and RDATE may repeat).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Property> + 'a {
        self.properties.iter().filter(move |p| p.name == name)
    }

    /// The direct subcomponents of that name.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Component> + 'a {
        self.components.iter().filter(move |c| c.name == name)
    }
}

/// The logical lines of `text`: unfolded, without their line ends or a leading BOM.
pub fn unfolded(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
            (Some(continued), Some(last)) => last.push_str(continued),
            _ => lines.push(raw.to_string()),
        }
    }
    lines
}

/// Reads one content line; None when the line is not one (blank, or no `:` after a name).
pub fn property(line: &str) -> Option<Property> {
    let name_end = line.find([';', ':'])?;
    let name = line[..name_end].trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let mut params = Vec::new();
    let mut rest = &line[name_end..];
    // Parameters: `;NAME=value[,value]`, values possibly quoted (and then holding `:;,`).
    while let Some(after) = rest.strip_prefix(';') {
        let eq = after.find('=')?;
        let param_name = after[..eq].trim().to_ascii_uppercase();
        let mut value = String::new();
        let mut chars = after[eq + 1..].char_indices();
        let mut end = after.len() - eq - 1;
        let mut quoted = false;
        for (i, c) in chars.by_ref() {
            match c {
                '"' => quoted = !quoted,
                ';' | ':' if !quoted => {
                    end = i;
                    break;
                }
                _ => value.push(c),
            }
        }
        if quoted {
            return None;
        }
        params.push((param_name, value));
        rest = &after[eq + 1 + end..];
    }
    let value = rest.strip_prefix(':')?;
    Some(Property { name: name.to_ascii_uppercase(), params, value: value.to_string() })
}

/// The components of `text` (the VCALENDARs, usually one). An END that closes nothing
/// open or a component never closed ends the tree where it is: the shape check refuses
/// such files before this runs.
pub fn components(text: &str) -> Vec<Component> {
    let mut top: Vec<Component> = Vec::new();
    let mut open: Vec<Component> = Vec::new();
    for line in unfolded(text) {
        let Some(prop) = property(&line) else { continue };
        match prop.name.as_str() {
            "BEGIN" => open.push(Component { name: prop.value.trim().to_ascii_uppercase(), ..Component::default() }),
            "END" => {
                let Some(done) = open.pop() else { continue };
                match open.last_mut() {
                    Some(parent) => parent.components.push(done),
                    None => top.push(done),
                }
            }
            _ => {
                if let Some(current) = open.last_mut() {
                    current.properties.push(prop);
                }
            }
        }
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_any_case_and_quoted_parameters_are_read() {
        let text = "\u{feff}begin:vcalendar\nBEGIN:VEVENT\r\nsummary;language=en:Long \r\n name\\, with comma\ndtstart;tzid=\"(UTC-05:00) Eastern Time (US & Canada)\":20260101T090000\nEND:VEVENT\nend:vcalendar\n";
        let calendars = components(text);
        assert_eq!(calendars.len(), 1);
        assert_eq!(calendars[0].name, "VCALENDAR");
        let event = calendars[0].children("VEVENT").next().unwrap();
        assert_eq!(event.property("SUMMARY").unwrap().text(), "Long name, with comma");
        assert_eq!(event.property("SUMMARY").unwrap().param("LANGUAGE"), Some("en"));
        let start = event.property("DTSTART").unwrap();
        assert_eq!(start.param("TZID"), Some("(UTC-05:00) Eastern Time (US & Canada)"));
        assert_eq!(start.value, "20260101T090000");
    }

    #[test]
    fn lines_that_are_not_content_lines_are_ignored() {
        assert_eq!(property("no colon here"), None);
        assert_eq!(property(":value without a name"), None);
        assert_eq!(property("X;P=\"unterminated:value"), None);
        assert_eq!(property("X-WR-CALNAME:Holidays").unwrap().name, "X-WR-CALNAME");
    }
}
