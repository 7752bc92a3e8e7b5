//! Hostile input against the real binary (issue 27): every kind of input the engine
//! parses, at the worst the body caps allow, gets a problem document; after each the
//! process is alive and its peak RSS grew less than 64 MiB (the peak is reset before each
//! input: `5` to `/proc/PID/clear_refs`, then `VmHWM` read after) and it spent at most 5 s
//! of CPU (this debug build; the release bound is 1 s).

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

/// One hostile request: what it is, its method, path, content type and body.
struct Hostile {
    what: &'static str,
    method: reqwest::Method,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
}

fn post(what: &'static str, path: &str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Hostile {
    Hostile { what, method: reqwest::Method::POST, path: path.to_string(), content_type, body: body.into() }
}

/// Peak RSS and CPU of a process, from /proc.
struct Usage {
    peak_kib: u64,
    rss_kib: u64,
    cpu_ticks: u64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let cpu_ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Usage { peak_kib: field("VmHWM:"), rss_kib: field("VmRSS:"), cpu_ticks }
}

fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("resetting the peak RSS (/proc/PID/clear_refs)");
}

/// An OpenSSH private key header asking for `rounds` bcrypt rounds (the body after the
/// KDF options is irrelevant: the cost is judged first).
fn bcrypt_key(rounds: u32) -> String {
    let mut der = b"openssh-key-v1\0".to_vec();
    let string = |bytes: &[u8], der: &mut Vec<u8>| {
        der.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        der.extend_from_slice(bytes);
    };
    string(b"aes256-ctr", &mut der);
    string(b"bcrypt", &mut der);
    let mut options = Vec::new();
    string(&[1u8; 16], &mut options);
    options.extend_from_slice(&rounds.to_be_bytes());
    string(&options, &mut der);
    der.extend_from_slice(&[0u8; 64]);
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n")
}

fn hostile_inputs() -> Vec<Hostile> {
    let calendar_cap = 2 << 20;
    let json_cap = 1 << 20;
    let inventory_cap = 4 << 20;
    let mut laughs = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..40 {
        laughs.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    let big = "x".repeat(200_000);
    let mut strings = format!("big: &big {big}\nall:\n  vars:\n    v: [");
    strings.push_str(&"*big, ".repeat(3000));
    strings.push_str("]\n");
    // As many events as a calendar may hold, padded to the cap, the last one bad: the
    // parser reads them all before the import is refused.
    let many_events: String = {
        let events = cme_engine::calendar::MAX_EVENTS;
        let pad = "p".repeat((calendar_cap - 200) / events - 110);
        let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
        for i in 0..events - 1 {
            text.push_str(&format!("BEGIN:VEVENT\r\nUID:{i}\r\nDTSTART:20270101T000000Z\r\nDTEND:20270101T010000Z\r\nSUMMARY:{pad}\r\nEND:VEVENT\r\n"));
        }
        text.push_str("BEGIN:VEVENT\r\nUID:bad\r\nDTSTART:20270101T010000Z\r\nDTEND:20270101T000000Z\r\nSUMMARY:ends first\r\nEND:VEVENT\r\n");
        text + "END:VCALENDAR\r\n"
    };
    // Rules the rrule crate can only give up on (February 30th) and rules that repeat too
    // often to evaluate: the calendar's check budgets (time, occurrences) cut them off.
    let rules = |rule: &str, name: &str| {
        let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
        for i in 0..cme_engine::calendar::MAX_EVENTS {
            text.push_str(&format!("BEGIN:VEVENT\r\nUID:{name}{i}\r\nDTSTART:20000101T000000Z\r\nDTEND:20000101T000100Z\r\nRRULE:{rule}\r\nEND:VEVENT\r\n"));
        }
        text + "END:VCALENDAR\r\n"
    };
    let impossible_rules = rules("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never");
    let hourly_rules = rules("FREQ=HOURLY", "hourly");
    // Inventories: a group chain where every group holds the deepest group's hosts (the
    // memberships multiply), more groups than a source may define, a JSON host with a
    // hundred thousand variables (and a bad port, so that nothing imports).
    let chain: String = {
        let mut text = String::from("[g4999]\nh[0:1999]\n");
        for i in 0..4999 {
            text.push_str(&format!("[g{i}:children]\ng{}\n", i + 1));
        }
        text
    };
    let groups: String = (0..)
        .map(|i| format!("[g{i}:children]\nc{i}\n"))
        .take_while({
            let mut n = 0;
            move |l: &String| {
                n += l.len();
                n < inventory_cap - 100
            }
        })
        .collect();
    let wide_hostvars = {
        let vars: Vec<String> = (0..100_000).map(|i| format!("\"v{i}\": {{\"n\": [{i}]}}")).collect();
        format!(
            "{{\"_meta\": {{\"hostvars\": {{\"h\": {{\"ansible_port\": \"x\", {}}}}}}}, \"web\": [\"h\"]}}",
            vars.join(", ")
        )
    };
    let amplified = {
        let value = "v".repeat(250);
        let vars: String = (0..256).map(|i| format!("var{i}={value}\n")).collect();
        format!("[all:vars]\n{vars}[web]\nh[0:9999]\n")
    };
    let cron_plan = |args: Value| {
        json!({"name": "hostile cron", "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:9/", "method": "GET"}}, "planner": {"ref": "cron_planner:CronPlanner", "args": args}}).to_string()
    };
    // A date the exact planner takes: one still to come.
    let later = Dates::like(2030).at("2030-01-01T00:00:00Z");
    let plan_with = |args: Value| json!({"name": "hostile", "attack": {"ref": "run_script:RunScript", "args": args}, "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": later}}});
    let pem = base64::engine::general_purpose::STANDARD.encode(bcrypt_key(u32::MAX));
    let multipart = {
        let mut body = Vec::new();
        for _ in 0..20_000 {
            body.extend_from_slice(b"--XX\r\nContent-Disposition: form-data; name=\"sha256\"\r\n\r\nabc\r\n");
        }
        body.extend_from_slice(b"--XX--\r\n");
        body
    };
    vec![
        post("an iCalendar of nested BEGIN lines", "/api/1/calendars/?name=deep", "text/calendar", format!("BEGIN:VCALENDAR\r\n{}", "BEGIN:VEVENT\r\n".repeat((calendar_cap - 100) / 14))),
        post("an iCalendar of as many events as it may hold, one bad, strict", "/api/1/calendars/?name=many&strict=true", "text/calendar", many_events),
        post("an iCalendar of recurring events that can never match", "/api/1/calendars/?name=never", "text/calendar", impossible_rules),
        post("an iCalendar of hourly rules since 2000", "/api/1/calendars/?name=hourly", "text/calendar", hourly_rules),
        post("an iCalendar of more events than it may hold", "/api/1/calendars/?name=more", "text/calendar", format!("BEGIN:VCALENDAR\r\n{}END:VCALENDAR\r\n", "BEGIN:VEVENT\r\nEND:VEVENT\r\n".repeat((calendar_cap - 100) / 26))),
        post("an iCalendar that is not UTF-8", "/api/1/calendars/?name=bytes", "text/calendar", vec![0xff; 4096]),
        post("a YAML inventory of aliases to aliases", "/api/1/inventories/", "application/yaml", laughs),
        post("a YAML inventory of one big string aliased", "/api/1/inventories/", "application/yaml", strings),
        post("a YAML inventory of nested flow collections", "/api/1/inventories/", "application/yaml", format!("all: {}{}", "[".repeat(inventory_cap / 2 - 100), "]".repeat(inventory_cap / 2 - 100))),
        post("a YAML inventory of nested blocks", "/api/1/inventories/", "application/yaml", (0..1400).map(|i| format!("{}k{i}:", " ".repeat(i))).collect::<Vec<_>>().join("\n")),
        post("an INI inventory of ranges that multiply", "/api/1/inventories/", "text/plain", "[web]\nh[0:9999][0:9999][0:9999]\n"),
        post("an INI inventory of a 5,000-group chain over 2,000 hosts", "/api/1/inventories/", "text/plain", chain),
        post("an INI inventory of more groups than it may define", "/api/1/inventories/", "text/plain", groups),
        post("an INI inventory whose group variables repeat on 10,000 hosts", "/api/1/inventories/", "text/plain", amplified),
        post("an ansible-inventory JSON nested to the cap", "/api/1/inventories/", "application/json", format!("{{\"_meta\": {}{}}}", "[".repeat(inventory_cap / 2 - 100), "]".repeat(inventory_cap / 2 - 100))),
        post("an ansible-inventory JSON host of 100,000 variables", "/api/1/inventories/", "application/json", wide_hostvars),
        post("a cron rate() past any integer", "/api/1/plans/", "application/json", cron_plan(json!({"cron": "rate(99999999999999999999999 minutes)", "dialect": "aws"}))),
        post("an @every interval that overflows", "/api/1/plans/", "application/json", cron_plan(json!({"cron": "@every 9999999999999999h9999999999999999m"}))),
        post("a Jenkins H with a zero step", "/api/1/plans/", "application/json", cron_plan(json!({"cron": "H(0-59)/0 * * * *", "dialect": "jenkins"}))),
        post("a cron line of 100 fields, read in every dialect", "/api/1/plans/", "application/json", cron_plan(json!({"cron": "* ".repeat(100).trim_end()}))),
        post("JSON nested as deep as the cap allows", "/api/1/plans/", "application/json", format!("{}{}", "[".repeat(json_cap / 2 - 10), "]".repeat(json_cap / 2 - 10))),
        post("JSON as wide as the cap allows", "/api/1/plans/", "application/json", format!("{{\"name\":[{}0]}}", "{},".repeat(json_cap / 3 - 10))),
        post("JSON of escapes", "/api/1/plans/", "application/json", format!("{{\"name\":\"{}\"}}", "\\u0041".repeat(json_cap / 6 - 10))),
        post("JSON larger than the cap", "/api/1/plans/", "application/json", vec![b' '; json_cap + 1]),
        post("an inline SSH key asking for 4 billion bcrypt rounds", "/api/1/plans/", "application/json", plan_with(json!({"ssh": {"user": "ops", "pem": pem}, "script": "x"})).to_string()),
        post(
            "a credential asking Argon2 for 4 GiB",
            "/api/1/credentials/",
            "application/json",
            json!({"name": "argon", "user": "ops", "private_key": "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: aes256-cbc\nKey-Derivation: Argon2id\nArgon2-Memory: 4194304\nArgon2-Passes: 1000\nArgon2-Parallelism: 1\n", "passphrase": "x"}).to_string(),
        ),
        post("a multipart upload of endless small parts", "/api/1/plugins/", "multipart/form-data; boundary=XX", multipart),
        post(
            "a credential of a 60 KB RSA key of noise",
            "/api/1/credentials/",
            "application/json",
            json!({"name": "noise", "user": "ops", "private_key": format!("-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n", base64::engine::general_purpose::STANDARD.encode((0..45_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<u8>>()))}).to_string(),
        ),
        Hostile {
            what: "a grant nested as deep as the cap allows",
            method: reqwest::Method::PUT,
            path: "/api/1/plugins/none@0.1.0/grant".into(),
            content_type: "application/json",
            body: format!("{}{}", "{\"a\":".repeat(json_cap / 6), "}".repeat(json_cap / 6)).into_bytes(),
        },
        post("an upload that is not a component", "/api/1/plugins/", "application/wasm", vec![0x42; 1 << 20]),
        post("a plan whose args fill the body cap", "/api/1/plans/", "application/json", json!({"name": "big", "attack": {"ref": "api_request:ApiRequest", "args": {"endpoint": "http://127.0.0.1:9/", "method": "GET", "headers": {"X-Pad": "p".repeat(json_cap - 400)}}}, "planner": {"ref": "exact_planner:ExactPlanner", "args": {"date": later}}}).to_string()),
        post("a blackout with a name of escapes", "/api/1/blackouts/", "application/json", json!({"name": "\u{0}".repeat(100_000), "start": "x", "end": "y"}).to_string()),
        Hostile { what: "a signature of noise", method: reqwest::Method::POST, path: format!("/api/1/plugins/?signature={}", "A".repeat(9000)), content_type: "application/wasm", body: vec![0; 16] },
        Hostile { what: "a Host of a non-ASCII byte", method: reqwest::Method::GET, path: "/api/1/plans/".into(), content_type: "", body: Vec::new() },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_inputs_get_a_problem_and_leave_the_engine_alive_and_small() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(dir.path(), Backend::Sqlite, Options::default());
    let pid = engine.pid();
    let client = reqwest::Client::new();
    // Warm up what every request touches once (the registry, the pools).
    assert_eq!(engine.client().get("/api/1/plans/").await.status, 200);
    let ticks_per_second = 100; // USER_HZ on Linux
    for input in hostile_inputs() {
        reset_peak(pid);
        let before = usage(pid);
        let mut request = client
            .request(input.method.clone(), format!("{}{}", engine.url, input.path))
            .timeout(Duration::from_secs(120));
        if !input.content_type.is_empty() {
            request = request.header("content-type", input.content_type).body(input.body.clone());
        }
        if input.what.starts_with("a Host") {
            request = request.header("host", reqwest::header::HeaderValue::from_bytes(b"localhost\xe9").unwrap());
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{}: no answer: {e}", input.what));
        let status = response.status().as_u16();
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let text = response.text().await.unwrap_or_default();
        let after = usage(pid);
        let head: String = text.chars().take(300).collect();
        assert!(status >= 400, "{}: answered {status}: {head}", input.what);
        assert_eq!(content_type, "application/problem+json", "{}: {status} {head}", input.what);
        assert!(text.len() < 4096, "{}: a {} byte answer: {head}", input.what, text.len());
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{}: not JSON: {head}", input.what));
        assert!(doc["msg"].as_str().is_some_and(|m| !m.is_empty()), "{}: {head}", input.what);
        let live = client.get(format!("{}/livez", engine.url)).send().await;
        assert!(live.is_ok_and(|r| r.status() == 200), "{}: the engine died", input.what);
        let grew_mib = after.peak_kib.saturating_sub(before.rss_kib) / 1024;
        assert!(grew_mib < 64, "{}: peak RSS grew {grew_mib} MiB", input.what);
        let cpu = (after.cpu_ticks - before.cpu_ticks) as f64 / ticks_per_second as f64;
        assert!(cpu <= 5.0, "{}: took {cpu:.1} s of CPU", input.what);
        eprintln!("{:<55} {status} peak +{grew_mib} MiB, {cpu:.2} s CPU", input.what);
    }
    let stored = engine.client().get("/api/1/plans/?all=true").await.body;
    assert_eq!(stored["plans"].as_array().map(Vec::len), Some(0), "nothing hostile was stored: {stored}");
    let credentials = engine.client().get("/api/1/credentials/").await.body;
    assert_eq!(credentials["count"], 0, "{credentials}");
}

/// `1048576` as the README writes it: `1,048,576`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The README's security table states the limits the code enforces: each row names the
/// numbers of the constants behind it.
#[test]
fn the_readmes_input_table_states_the_codes_limits() {
    use cme_api::limits::*;
    use cme_cloud::ssh::key_cost;
    use cme_engine::bounded;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let row = |input: &str| -> String {
        readme
            .lines()
            .find(|l| l.starts_with(&format!("| {input}")))
            .unwrap_or_else(|| panic!("no README row for {input}"))
            .to_string()
    };
    let defaults = cme_engine::EngineConfig::default();
    let expected: Vec<(&str, Vec<u64>)> = vec![
        ("JSON body", vec![MAX_JSON_BODY as u64, cme_engine::MAX_PLAN_ARGS_BYTES as u64]),
        (
            "iCalendar upload",
            vec![
                MAX_CALENDAR_BYTES as u64,
                bounded::ICAL_MAX_DEPTH as u64,
                bounded::ICAL_MAX_LINES as u64,
                cme_engine::calendar::MAX_EVENTS as u64,
            ],
        ),
        (
            "Ansible inventory",
            vec![
                MAX_INVENTORY_BYTES as u64,
                cme_engine::inventory::MAX_GROUPS as u64,
                cme_engine::inventory::MAX_MEMBERSHIPS as u64,
                (cme_engine::inventory::MAX_RESOLVED_BYTES >> 20) as u64,
                cme_engine::inventory::MAX_TAGS as u64,
                bounded::YAML_MAX_DEPTH as u64,
                bounded::YAML_MAX_NODES as u64,
                bounded::YAML_MAX_TEXT_BYTES as u64,
                cme_engine::inventory::MAX_HOSTS as u64,
            ],
        ),
        (
            "SSH private key",
            vec![
                key_cost::MAX_KEY_BYTES as u64,
                key_cost::MAX_BCRYPT_ROUNDS as u64,
                key_cost::MAX_PBKDF2_ITERATIONS as u64,
                key_cost::MAX_SCRYPT_WORK_BYTES,
                key_cost::MAX_ARGON2_MEMORY_KIB,
            ],
        ),
        ("plugin upload", vec![defaults.max_plugin_bytes as u64]),
        ("plugin signature", vec![MAX_SIGNATURE_BYTES as u64]),
        ("blackouts", vec![defaults.max_blackouts, cme_engine::Page::MAX_SIZE]),
        ("lists", vec![cme_engine::Page::MAX_SIZE]),
    ];
    for (input, numbers) in expected {
        let line = row(input);
        for n in numbers {
            assert!(
                line.contains(&thousands(n)),
                "the README row for {input} does not state {}:\n{line}",
                thousands(n)
            );
        }
    }
    let prose = format!("at most {} at a time", bounded::PARSES_AT_ONCE);
    assert!(
        readme.contains(&prose) && readme.contains(&format!("{} MiB stacks", bounded::PARSE_STACK >> 20)),
        "the parse threads"
    );
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&format!("at most {} bytes", thousands(MAX_DETAIL as u64))), "the problem detail cap");
}
