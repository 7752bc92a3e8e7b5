//! # cme-secrets: what is stored is not what is shown
//!
//! Plans keep their args as given (an attack needs its `Authorization` header), but every
//! document, audit row, log line and error shows secrets as `***`: the values of
//! credential-bearing headers (`Authorization`, `Proxy-Authorization`, `Cookie`,
//! `Set-Cookie`, `X-Api-Key`, and any name an operator adds) wherever they appear as keys
//! of JSON objects, the user-info of any URL in any text (`https://***@host/`, whole,
//! whatever it holds), and every secret the engine knows ([`remember`]: token secrets,
//! webhook secrets, host-held credentials, the database password, SSH keys and
//! passphrases) wherever it appears.
//!
//! There is one masker: every text that leaves the engine (API answers, the halt reason,
//! audit rows, webhook payloads, the log writer through [`MaskingWriter`]) passes
//! [`text_of`] or [`Redactor::json`].
//!
//! Invariant: pure code; redacting twice changes nothing more.

use cme_model::RwLocked;
use std::borrow::Cow;
use std::sync::{Arc, LazyLock, RwLock};

use serde_json::Value;

/// The mask that replaces a secret.
pub const MASK: &str = "***";

/// Header names whose values are secrets, lowercase.
pub const DEFAULT_SECRET_HEADERS: [&str; 5] =
    ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];

/// What counts as a secret: the default header names plus the operator's.
#[derive(Debug, Clone)]
pub struct Redactor {
    headers: Vec<String>,
}

/// Header names the operator adds (`secret_headers`), for every redactor of this process.
static OPERATOR_HEADERS: LazyLock<RwLock<Vec<String>>> = LazyLock::new(Default::default);

/// Makes `names` secret headers for every [`Redactor::default`] made from now on (the
/// binary calls it once at start, with the configuration's `secret_headers`).
pub fn add_secret_headers(names: &[String]) {
    OPERATOR_HEADERS.write_locked().extend(names.iter().cloned());
}

impl Default for Redactor {
    /// The default secret headers and the operator's ([`add_secret_headers`]).
    fn default() -> Self {
        Redactor::new(OPERATOR_HEADERS.read_locked().clone())
    }
}

impl Redactor {
    pub fn new(extra_headers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut headers: Vec<String> = DEFAULT_SECRET_HEADERS.iter().map(|h| h.to_string()).collect();
        headers.extend(extra_headers.into_iter().map(|h| h.into().to_ascii_lowercase()));
        headers.sort();
        headers.dedup();
        Redactor { headers }
    }

    fn is_secret_key(&self, key: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(key))
    }

    /// Teaches the masker ([`remember`]) every secret `value` carries: the values of
    /// secret headers (and the token after a scheme such as `Bearer`) and the user-info
    /// of every URL in its strings. Called on what plans and requests carry, so that a
    /// secret shows nowhere else either (a dependency's trace line, an error, a summary).
    pub fn remember_secrets_in(&self, value: &Value) {
        match value {
            Value::String(text) => remember_user_info(text),
            Value::Array(items) => items.iter().for_each(|v| self.remember_secrets_in(v)),
            Value::Object(map) => {
                let pair_key = map.get("key").or_else(|| map.get("name")).and_then(Value::as_str);
                let pair_is_secret = pair_key.is_some_and(|k| self.is_secret_key(k));
                for (key, item) in map {
                    match item.as_str() {
                        Some(secret) if self.is_secret_key(key) || (pair_is_secret && key == "value") => {
                            self.remember_header_value(secret)
                        }
                        _ => self.remember_secrets_in(item),
                    }
                }
            }
            _ => {}
        }
    }

    /// Teaches the masker a header's value if `name` is a secret header.
    pub fn remember_header(&self, name: &str, value: &str) {
        if self.is_secret_key(name) {
            self.remember_header_value(value);
        }
    }

    fn remember_header_value(&self, value: &str) {
        remember(value);
        if let Some((_, token)) = value.trim().split_once(' ') {
            remember(token.trim());
        }
    }

    /// A copy of `value` with secret header values masked (object keys, and
    /// `{"key": name, "value": ...}` pairs) and URL user-info masked in every string.
    pub fn json(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(text_of(text).into_owned()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => {
                let pair_key = map.get("key").or_else(|| map.get("name")).and_then(Value::as_str);
                let pair_is_secret = pair_key.is_some_and(|k| self.is_secret_key(k));
                let masked = map
                    .iter()
                    .map(|(k, v)| {
                        let secret = self.is_secret_key(k) || (pair_is_secret && k == "value");
                        let shown = if secret && !v.is_null() { Value::String(MASK.into()) } else { self.json(v) };
                        (k.clone(), shown)
                    })
                    .collect();
                Value::Object(masked)
            }
            other => other.clone(),
        }
    }
}

/// `text` with the user-info of every URL in it masked, and every known secret
/// ([`remember`]).
///
/// User-info runs from `scheme://` to the last `@` before the next `/`, `?`, `#` or end
/// of line, and is masked whole whatever it holds (`@`, whitespace, percent-escapes): a
/// password with an `@` in it shows nothing of itself.
pub fn text_of(text: &str) -> Cow<'_, str> {
    masked(&known(), text)
}

/// `scheme://` and the user-info after it, up to the last `@` before `/`, `?`, `#` or
/// the end of the line: what is masked, and what is remembered.
static USERINFO: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#\r\n]*)@").expect("a valid pattern"));

/// `text` masked with one snapshot of the known secrets.
fn masked<'t>(known: &Known, text: &'t str) -> Cow<'t, str> {
    // Most texts (every access-log line) hold no URL: the pattern is not run on them.
    let masked = if text.contains("://") {
        USERINFO.replace_all(text, |c: &regex::Captures<'_>| format!("{}{MASK}@", &c[1]))
    } else {
        Cow::Borrowed(text)
    };
    let mut masked = match known.matcher.as_ref().filter(|m| m.is_match(masked.as_ref())) {
        Some(matcher) => Cow::Owned(matcher.replace_all(masked.as_ref(), &vec![MASK; matcher.patterns_len()])),
        None => masked,
    };
    for secret in &known.pending {
        if masked.contains(secret.as_str()) {
            masked = Cow::Owned(masked.replace(secret.as_str(), MASK));
        }
    }
    masked
}

/// Remembers the user-info of every URL in `text`, as written and percent-decoded, and
/// its password alone.
pub fn remember_user_info(text: &str) {
    for found in USERINFO.captures_iter(text) {
        let user_info = &found[2];
        let decoded = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        remember(user_info);
        remember(&decoded(user_info));
        if let Some((_, password)) = user_info.split_once(':') {
            remember(password);
            remember(&decoded(password));
        }
    }
}

/// The shortest literal secret [`remember`] masks: shorter ones would mask ordinary
/// words of every text.
pub const MIN_SECRET_LEN: usize = 6;

/// The most secret forms remembered at once (besides the pinned ones from the
/// configuration): when more arrive, the oldest are forgotten, so that hostile input
/// cannot grow the masker (its memory, and the time every text takes to mask).
pub const MAX_REMEMBERED: usize = 4_096;

/// The longest form remembered; a longer secret is remembered by its lines (a key's).
pub const MAX_SECRET_LEN: usize = 4_096;

/// Secrets learnt since the matcher was last built, masked by plain search until there
/// are this many (so that learning a secret does not rebuild the matcher every time).
const PENDING: usize = 64;

#[derive(Default)]
struct Known {
    /// From the configuration: never forgotten.
    pinned: Vec<String>,
    /// Learnt at run time, oldest first.
    learnt: std::collections::VecDeque<String>,
    /// The matcher over every form when it was built.
    matcher: Option<aho_corasick::AhoCorasick>,
    /// Forms learnt since, longest first.
    pending: Vec<String>,
}

static KNOWN: LazyLock<RwLock<Arc<Known>>> = LazyLock::new(Default::default);

/// The known secrets now.
fn known() -> Arc<Known> {
    KNOWN.read_locked().clone()
}

/// Masks `secret` from now on in every text this crate masks, in this process: as
/// written, JSON-escaped (as JSON logs and documents carry it) and, for a multi-line
/// secret such as a private key, each of its long lines. Secrets shorter than
/// [`MIN_SECRET_LEN`] are not remembered; at most [`MAX_REMEMBERED`] are kept (the
/// oldest forgotten first).
pub fn remember(secret: &str) {
    learn(secret, false);
}

/// As [`remember`], for a secret of the configuration (a token, a webhook secret, a
/// host-held credential, the database password): never forgotten.
pub fn remember_pinned(secret: &str) {
    learn(secret, true);
}

fn learn(secret: &str, pinned: bool) {
    let secret = secret.trim();
    let mut forms: Vec<String> = vec![secret.to_string()];
    if let Ok(escaped) = serde_json::to_string(secret) {
        forms.push(escaped.trim_matches('"').to_string());
    }
    if secret.contains('\n') {
        forms.extend(
            secret.lines().map(str::trim).filter(|l| l.len() >= 16 && !l.starts_with("-----")).map(str::to_string),
        );
    }
    forms.retain(|f| (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&f.len()));
    let is_new = |known: &Known, form: &String| !known.pinned.contains(form) && !known.learnt.contains(form);
    // Most secrets are met again and again (every request a plugin sends): only a new
    // one takes the write lock.
    if !forms.iter().any(|f| is_new(&known(), f)) {
        return;
    }
    let mut known = KNOWN.write_locked();
    let fresh: Vec<String> = forms.into_iter().filter(|f| is_new(&known, f)).collect();
    if fresh.is_empty() {
        return;
    }
    let (mut pinned_forms, mut learnt, mut pending) =
        (known.pinned.clone(), known.learnt.clone(), known.pending.clone());
    for form in fresh {
        pending.push(form.clone());
        if pinned {
            pinned_forms.push(form);
        } else {
            learnt.push_back(form);
        }
    }
    while learnt.len() > MAX_REMEMBERED {
        let gone = learnt.pop_front();
        pending.retain(|p| Some(p) != gone.as_ref());
    }
    if pending.len() < PENDING {
        // A forgotten secret leaves the matcher when it is next rebuilt (masking a
        // little more for a while is safe).
        pending.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let matcher = known.matcher.clone();
        *known = Arc::new(Known { pinned: pinned_forms, learnt, matcher, pending });
        return;
    }
    let mut all: Vec<&String> = pinned_forms.iter().chain(&learnt).collect();
    // Longest first, so that a key's whole text masks before its lines do.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    // A contiguous NFA: memory in proportion to the patterns, never a full DFA.
    let matcher = aho_corasick::AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(&all)
        .ok();
    *known = Arc::new(Known { pinned: pinned_forms, learnt, matcher, pending: Vec::new() });
}

/// A writer that masks what passes through it, line by line ([`text_of`]): the log
/// writer, so that every line at every level (dependencies' lines at `trace` too, in
/// either log format) is masked before it is written.
pub struct MaskingWriter<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> MaskingWriter<W> {
    pub fn new(inner: W) -> Self {
        MaskingWriter { inner, pending: Vec::new() }
    }

    fn flush_lines(&mut self, all: bool) -> std::io::Result<()> {
        let end =
            if all { self.pending.len() } else { self.pending.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) };
        if end == 0 {
            return Ok(());
        }
        let written = {
            let text = String::from_utf8_lossy(&self.pending[..end]);
            self.inner.write_all(text_of(&text).as_bytes())
        };
        self.pending.drain(..end);
        written
    }
}

impl<W: std::io::Write> std::io::Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.flush_lines(false)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_lines(true)?;
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for MaskingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush_lines(true);
    }
}

/// Masks every string of `value` in place ([`text_of`]); allocates only for strings that
/// change. What documents, webhook payloads and journals pass last, whatever built them.
pub fn mask_strings(value: &mut Value) {
    fn mask(known: &Known, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Cow::Owned(shown) = masked(known, text) {
                    *text = shown;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| mask(known, v)),
            Value::Object(map) => map.values_mut().for_each(|v| mask(known, v)),
            _ => {}
        }
    }
    mask(&known(), value);
}

/// An optional text, masked.
pub fn option_of(text: Option<&str>) -> Option<String> {
    text.map(|t| text_of(t).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_user_info_is_masked_anywhere_in_text() {
        for (text, shown) in [
            ("GET https://alice:s3cr3t@api.example.com/x -> 200", "GET https://***@api.example.com/x -> 200"),
            ("postgres://cme:pw@db:5432/cme", "postgres://***@db:5432/cme"),
            ("http://token@host/ and ftp://u:p@h/", "http://***@host/ and ftp://***@h/"),
            ("no url here, just a@b.c", "no url here, just a@b.c"),
            ("https://api.example.com/path?email=a@b.c", "https://api.example.com/path?email=a@b.c"),
            ("https://***@host/", "https://***@host/"),
            ("http://user:p@ss@probe.example/health", "http://***@probe.example/health"),
            ("http://user:pa ss\tword@probe.example", "http://***@probe.example"),
            ("http://us%40er:p%23w@h/x", "http://***@h/x"),
            ("halted: http://u:a@b@c:9/x?next=d@e", "halted: http://***@c:9/x?next=d@e"),
        ] {
            assert_eq!(text_of(text), shown, "{text}");
        }
    }

    #[test]
    fn secret_headers_are_masked_in_args_and_the_rest_is_kept() {
        let redactor = Redactor::new(["X-Vault-Token"]);
        let args = json!({
            "endpoint": "https://bob:hunter2@api.example.com/kill",
            "method": "POST",
            "headers": {"Authorization": "Bearer abc", "COOKIE": "session=1", "x-vault-token": "v", "X-Custom": "visible"},
            "pairs": [{"key": "X-Api-Key", "value": "k"}, {"key": "Accept", "value": "json"}],
            "nested": {"deeper": {"proxy-authorization": "Basic x"}}
        });
        let shown = redactor.json(&args);
        assert_eq!(shown["endpoint"], "https://***@api.example.com/kill");
        assert_eq!(
            shown["headers"],
            json!({"Authorization": "***", "COOKIE": "***", "x-vault-token": "***", "X-Custom": "visible"})
        );
        assert_eq!(shown["pairs"], json!([{"key": "X-Api-Key", "value": "***"}, {"key": "Accept", "value": "json"}]));
        assert_eq!(shown["nested"]["deeper"]["proxy-authorization"], "***");
        assert_eq!(shown["method"], "POST");
        assert_eq!(redactor.json(&shown), shown, "masking twice changes nothing more");
    }

    #[test]
    fn remembered_secrets_are_masked_in_every_form_they_travel_in() {
        remember("canary-7f3a9c1e");
        remember("short");
        remember("line one of a key that is long enough\nline two of a key that is long enough\n");
        assert_eq!(text_of("token canary-7f3a9c1e here"), "token *** here");
        assert_eq!(text_of("short stays"), "short stays", "too short to mask");
        assert_eq!(
            text_of(r#"{"key":"line one of a key that is long enough\nline two of a key that is long enough"}"#),
            r#"{"key":"***"}"#
        );
        assert_eq!(text_of("saw: line two of a key that is long enough"), "saw: ***");
        let mut out = Vec::new();
        {
            use std::io::Write;
            let mut writer = MaskingWriter::new(&mut out);
            writer.write_all(b"first canary-7f3a").unwrap();
            writer.write_all(b"9c1e line\nsecond http://u:p@h/ line\n").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "first *** line\nsecond http://***@h/ line\n");
        assert_eq!(text_of("http://a%40b:c@d/e"), "http://***@d/e");
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

            /// Whatever user-info holds (but the characters that end it), none of it shows.
            #[test]
            fn url_user_info_is_masked_whole(user in "[^/?#\r\n]{1,40}", scheme in "[a-z][a-z0-9+.-]{0,8}", host in "[a-z0-9.-]{1,20}", tail in "(/[a-z0-9/._-]{0,20})?") {
                let text = format!("probe {scheme}://{user}@{host}{tail} failed");
                let shown = text_of(&text).into_owned();
                prop_assert_eq!(&shown, &format!("probe {scheme}://***@{host}{tail} failed"));
                prop_assert_eq!(text_of(&shown).into_owned(), shown.clone(), "masking twice changes nothing more");
            }

            #[test]
            fn masking_any_text_is_total_and_idempotent(text in "\\PC{0,300}") {
                let once = text_of(&text).into_owned();
                prop_assert_eq!(text_of(&once).into_owned(), once);
            }

            /// A parsed URL shows no byte of its user-info, percent-escaped or not.
            #[test]
            fn parsed_urls_lose_their_user_info(user in "[a-zA-Z0-9%@:!$&'()*+,;= \t]{1,30}", host in "[a-z]{1,10}") {
                let raw = format!("https://{user}@{host}.example/x");
                if let Ok(url) = url::Url::parse(&raw).map(|u| u.to_string()).and_then(|u| url::Url::parse(&u)) {
                    if url.username().is_empty() && url.password().is_none() {
                        return Ok(()); // nothing left of the user-info to mask (tabs are dropped)
                    }
                    let shown = text_of(url.as_str()).into_owned();
                    prop_assert!(shown.starts_with("https://***@"), "{} -> {}", raw, shown);
                }
            }
        }
    }

    #[test]
    fn the_masker_forgets_the_oldest_learnt_secrets_but_never_the_pinned_ones() {
        remember_pinned("pinned-secret-abc123");
        let learnt = MAX_REMEMBERED + 2 * PENDING;
        for i in 0..learnt {
            remember(&format!("learnt-secret-{i:06}"));
        }
        assert_eq!(text_of("pinned-secret-abc123"), "***");
        assert_eq!(text_of("learnt-secret-000000"), "learnt-secret-000000", "the oldest was forgotten");
        assert_eq!(text_of(&format!("learnt-secret-{:06}", learnt - 1)), "***", "the newest is masked (pending)");
        assert_eq!(
            text_of(&format!("learnt-secret-{:06}", learnt - PENDING - 1)),
            "***",
            "an older one is masked (built)"
        );
        remember(&"x".repeat(MAX_SECRET_LEN + 1));
        assert_eq!(
            text_of(&"x".repeat(MAX_SECRET_LEN + 1)),
            "x".repeat(MAX_SECRET_LEN + 1),
            "too long to remember whole"
        );
    }
}
