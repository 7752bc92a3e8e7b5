//! Fuzz targets (property-based, coverage-free, on stable Rust) for the documents the
//! engine parses from requests: iCalendar files and Ansible inventories (INI, YAML and
//! `ansible-inventory --list` JSON, host patterns). Inputs are built
//! from the grammar's own pieces (so most reach deep into the parsers) mixed with noise.
//! Each property: the parser answers (accepts or refuses with a message), never panics,
//! never recurses past its bound, and what it accepts is within the engine's limits.
//!
//! CI runs `PROPTEST_CASES` cases (256 by default); `cargo xtask fuzz --minutes N` runs
//! them for as long as asked. Crashes found become named cases in `regressions` below.

use proptest::prelude::*;

use cme_engine::bounded;
use cme_engine::calendar::{MAX_EVENTS, parse_events};
use cme_engine::inventory::{Format, MAX_HOSTS, ReadOptions, read};

/// Reads an inventory in `format` as the import does (a refusal's message, or the groups).
fn from_inventory(
    text: &str,
    format: Format,
) -> Result<std::collections::BTreeMap<String, Vec<cme_engine::InventoryHost>>, String> {
    read(text, &ReadOptions { format: Some(format), credential: Some("fleet".into()) })
        .map(|r| r.groups)
        .map_err(|e| e.0)
}

fn from_ansible_yaml(text: &str) -> Result<std::collections::BTreeMap<String, Vec<cme_engine::InventoryHost>>, String> {
    from_inventory(text, Format::Yaml)
}

fn ical_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("BEGIN:VCALENDAR".to_string()),
        Just("END:VCALENDAR".to_string()),
        Just("BEGIN:VEVENT".to_string()),
        Just("END:VEVENT".to_string()),
        Just("BEGIN:VALARM".to_string()),
        Just("END:VALARM".to_string()),
        Just("BEGIN:VTIMEZONE".to_string()),
        Just("END:VTIMEZONE".to_string()),
        Just("BEGIN:STANDARD".to_string()),
        Just("END:DAYLIGHT".to_string()),
        "TZID:[A-Za-z ()+:0-9/_]{0,30}",
        "TZOFFSET(FROM|TO):[+-][0-9]{4}",
        "RRULE:FREQ=(YEARLY|MONTHLY|WEEKLY|DAILY|HOURLY|MINUTELY|SECONDLY)(;(INTERVAL|COUNT|BYSETPOS|BYMONTHDAY|BYYEARDAY|BYWEEKNO|BYHOUR)=-?[0-9]{1,4}|;BYDAY=(-?[0-9]{0,2}(MO|TU|WE|TH|FR|SA|SU),?){1,3}|;BYMONTH=[0-9]{1,2}|;UNTIL=[0-9]{8}(T[0-9]{6}Z?)?|;X-[A-Z]{1,5}=[A-Z0-9]{0,5}){0,4}",
        "(RDATE|EXDATE)(;VALUE=(DATE|PERIOD)|;TZID=[A-Za-z/_ ]{0,20}|)?:[0-9]{8}(T[0-9]{6}Z?)?(/(P[0-9]{0,3}[DW]|PT[0-9]{1,3}[HMS]|[0-9]{8}T[0-9]{6}Z))?(,[0-9]{8}(T[0-9]{6}Z?)?){0,3}",
        "RECURRENCE-ID(;TZID=[A-Za-z/_]{0,20})?:[0-9]{8}(T[0-9]{6}Z?)?",
        "DURATION:[+-]?P([0-9]{1,3}[WD])?(T([0-9]{1,3}[HMS]){0,3})?",
        "(STATUS:(CANCELLED|CONFIRMED|TENTATIVE)|TRANSP:(OPAQUE|TRANSPARENT)|UID:[a-z0-9]{1,3}|X-WR-TIMEZONE:[A-Za-z/_ ]{0,20})",
        Just("VERSION:2.0".to_string()),
        "(DTSTART|DTEND|DUE)(;VALUE=DATE|;TZID=[A-Za-z/_]{0,20}|)?:[0-9]{8}(T[0-9]{6}Z?)?",
        "SUMMARY:[ -~]{0,40}",
        "(RRULE|RDATE|EXDATE|DURATION|UID|STATUS|TRANSP):[ -~]{0,30}",
        "X-[A-Z-]{1,10};[A-Z]{1,5}=\"[^\"\r\n]{0,10}\":[ -~]{0,20}",
        "[ -~]{0,60}",
        "(BEGIN|END|begin|End):[A-Za-z]{0,10}",
    ]
}

fn ical_text() -> impl Strategy<Value = String> {
    (proptest::collection::vec(ical_line(), 0..60), prop_oneof![Just("\r\n"), Just("\n")], any::<bool>(), any::<u8>())
        .prop_map(|(lines, newline, bom, fold_every)| {
            let mut text = if bom { "\u{feff}".to_string() } else { String::new() };
            for (i, line) in lines.iter().enumerate() {
                // Fold some lines as producers do (CRLF and a space).
                if fold_every > 0 && i % (fold_every as usize % 7 + 1) == 0 && line.len() > 10 {
                    let (a, b) = line.split_at(line.char_indices().nth(line.chars().count() / 2).map_or(0, |(i, _)| i));
                    text.push_str(&format!("{a}{newline} {b}{newline}"));
                } else {
                    text.push_str(line);
                    text.push_str(newline);
                }
            }
            text
        })
}

fn yaml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,8}:",
        "  [a-z][a-z0-9_.-]{0,8}:",
        "    [a-z0-9][a-z0-9_.-]{0,8}:( [a-z0-9.:]{0,10})?",
        Just("all:".to_string()),
        Just("  children:".to_string()),
        Just("  hosts:".to_string()),
        Just("  vars:".to_string()),
        Just("    ansible_host: 10.0.0.1".to_string()),
        Just("    cme_credential: fleet".to_string()),
        "&[a-z]{1,3} \\[[a-z*, ]{0,20}\\]",
        "[a-z]{1,3}: \\*[a-z]{1,3}",
        "  <<: \\*[a-z]{1,3}",
        "    [a-z]{1,5}: !(vault|custom|!str) [a-z0-9|]{0,10}",
        "[\\[\\]{}:,&*!|>'\" -]{0,20}",
        "[ -~]{0,40}",
    ]
}

fn ini_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\[[a-z_]{1,6}(:vars|:children|:hosts|:[a-z]{1,3})?\\]",
        "[a-z]{1,5}(\\[[0-9a-z]{0,3}:[0-9a-z]{0,3}(:[0-9]{0,2})?\\])?[a-z.]{0,6}(:[0-9]{1,6})?( [a-z_]{1,8}=[a-z0-9\"' .]{0,8}){0,3}( #.*)?",
        "ansible_(host|port|user|ssh_host|ssh_port|ssh_user|group_priority) ?= ?[a-z0-9.\"']{0,10}",
        "[a-z_]{1,6}",
        "[#;].{0,20}",
        "[\\[\\]:=\"' #;a-z0-9]{0,30}",
        "[ -~]{0,40}",
    ]
}

fn json_inventory() -> impl Strategy<Value = String> {
    let host = "[a-z0-9.-]{0,8}";
    let group = (
        "[a-z_]{1,6}",
        proptest::collection::vec(host, 0..5),
        proptest::collection::vec("[a-z_]{1,6}", 0..3),
        any::<bool>(),
    )
        .prop_map(|(name, hosts, children, list_form)| {
            if list_form {
                format!("{name:?}: {hosts:?}")
            } else {
                format!("{name:?}: {{\"hosts\": {hosts:?}, \"children\": {children:?}, \"vars\": {{\"v\": {{\"n\": [1, true, null]}}}}}}")
            }
        });
    let hostvar =
        (host, "[a-z_]{1,12}", "[a-z0-9 \"{}\\[\\],:]{0,20}").prop_map(|(h, k, v)| format!("{h:?}: {{{k:?}: {v}}}"));
    (proptest::collection::vec(group, 0..8), proptest::collection::vec(hostvar, 0..6), "[ -~]{0,10}").prop_map(
        |(groups, hostvars, noise)| {
            format!("{{\"_meta\": {{\"hostvars\": {{{}}}}}, {}}}{noise}", hostvars.join(", "), groups.join(", "))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn calendars_are_read_or_refused_never_crash(text in ical_text()) {
        if let Ok(events) = parse_events(&text, chrono_tz::UTC) {
            prop_assert!(!events.is_empty() && events.len() <= MAX_EVENTS);
        }
    }

    #[test]
    fn any_text_as_a_calendar_is_read_or_refused(text in "\\PC{0,400}") {
        let _ = parse_events(&text, chrono_tz::Europe::Madrid);
        let _ = bounded::check_ical_shape(&text);
    }

    #[test]
    fn inventories_are_read_or_refused_never_crash(pieces in proptest::collection::vec(yaml_piece(), 0..40)) {
        let text = pieces.join("\n");
        if let Ok(groups) = from_ansible_yaml(&text) {
            prop_assert!(groups.values().all(|hosts| !hosts.is_empty() && hosts.len() <= MAX_HOSTS));
        }
    }

    #[test]
    fn any_text_as_yaml_is_read_or_refused(text in "\\PC{0,400}") {
        let _ = from_ansible_yaml(&text);
    }

    #[test]
    fn ini_inventories_are_read_or_refused_never_crash(lines in proptest::collection::vec(ini_line(), 0..40)) {
        let text = lines.join("\n");
        if let Ok(groups) = from_inventory(&text, Format::Ini) {
            prop_assert!(groups.values().all(|hosts| !hosts.is_empty() && hosts.len() <= MAX_HOSTS));
        }
        let _ = read(&text, &ReadOptions::default());
    }

    #[test]
    fn ansible_inventory_json_is_read_or_refused_never_crash(text in json_inventory()) {
        if let Ok(groups) = from_inventory(&text, Format::Json) {
            prop_assert!(groups.values().all(|hosts| !hosts.is_empty() && hosts.len() <= MAX_HOSTS));
        }
    }

    #[test]
    fn any_text_as_ini_or_json_is_read_or_refused(text in "\\PC{0,400}") {
        let _ = from_inventory(&text, Format::Ini);
        let _ = from_inventory(&text, Format::Json);
        let _ = from_inventory(&format!("[g]\n{text}"), Format::Ini);
    }

    /// Nesting as deep as the body cap allows is refused by the pre-scan or the depth
    /// limit, on this test's own (default-sized) stack.
    #[test]
    fn deep_nesting_is_refused_not_recursed(depth in 1usize..20_000, flow in any::<bool>()) {
        let yaml = if flow { format!("a: {}{}", "[".repeat(depth), "]".repeat(depth)) } else { (0..depth.min(300)).map(|i| format!("{}k{i}:", " ".repeat(i))).collect::<Vec<_>>().join("\n") };
        let _ = bounded::yaml(&yaml);
        let ical = format!("BEGIN:VCALENDAR\r\n{}{}END:VCALENDAR\r\n", "BEGIN:VEVENT\r\n".repeat(depth), "END:VEVENT\r\n".repeat(depth));
        let refused = parse_events(&ical, chrono_tz::UTC);
        if depth > 7 {
            prop_assert!(refused.is_err());
        }
    }
}

/// Inputs that crashed or blew up the engine before (issue 27), kept by name.
mod regressions {
    use super::*;

    #[test]
    fn nested_begin_lines_overflowed_an_actix_worker() {
        let text = format!("BEGIN:VCALENDAR\r\n{}", "BEGIN:VEVENT\r\n".repeat(100_000));
        assert!(parse_events(&text, chrono_tz::UTC).unwrap_err().to_string().contains("deeper than"));
    }

    /// Found by `deep_nesting_is_refused_not_recursed`: 38 KB of `[` took the YAML parser
    /// two seconds (its work grows with the square of the depth), a 1 MiB body hours.
    #[test]
    fn deep_flow_collections_took_the_yaml_parser_seconds() {
        let text = format!("all: {}{}", "[".repeat(19_000), "]".repeat(19_000));
        assert!(from_ansible_yaml(&text).unwrap_err().to_string().contains("deeper than"));
    }

    #[test]
    fn aliases_to_aliases_took_a_gigabyte() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..20 {
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 9].join(", ")));
        }
        text.push_str("all:\n  hosts:\n    h: {ansible_host: 10.0.0.1, cme_credential: fleet}\n");
        assert!(from_ansible_yaml(&text).is_err());
    }

    /// Ranges multiply: a line of a few bytes could name billions of hosts.
    #[test]
    fn host_ranges_that_multiply_past_the_cap_are_refused_before_expanding() {
        let text = "[web]\nw[0:99999][0:99999][0:99999]\n";
        assert!(from_inventory(text, Format::Ini).unwrap_err().contains("more than"));
        let many: String = (0..200).map(|i| format!("h{i}-[0:99]\n")).collect();
        assert!(from_inventory(&format!("[web]\n{many}"), Format::Ini).unwrap_err().contains("more than 10000 hosts"));
    }
}
