//! # cme-secrets: what is stored is not what is shown
//!
//! Plans keep their args as given (an attack needs its `Authorization` header), but every
//! document, audit row, log line and error shows secrets as `***`: the values of
//! credential-bearing headers (`Authorization`, `Proxy-Authorization`, `Cookie`,
//! `Set-Cookie`, `X-Api-Key`, and any name an operator adds) wherever they appear as keys
//! of JSON objects, and the user-info of any URL in any text (`https://user:***@host/`).
//!
//! Invariant: pure code; redacting twice changes nothing more.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::Value;

/// The mask that replaces a secret.
pub const MASK: &str = "***";

/// Header names whose values are secrets, lowercase.
pub const DEFAULT_SECRET_HEADERS: [&str; 5] = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];

/// What counts as a secret: the default header names plus the operator's.
#[derive(Debug, Clone)]
pub struct Redactor {
    headers: Vec<String>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(Vec::<String>::new())
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

/// `text` with the user-info of every URL in it masked.
pub fn text_of(text: &str) -> Cow<'_, str> {
    static USERINFO: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@]+@").expect("a valid pattern"));
    USERINFO.replace_all(text, |c: &regex::Captures<'_>| format!("{}{MASK}@", &c[1]))
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
        assert_eq!(shown["headers"], json!({"Authorization": "***", "COOKIE": "***", "x-vault-token": "***", "X-Custom": "visible"}));
        assert_eq!(shown["pairs"], json!([{"key": "X-Api-Key", "value": "***"}, {"key": "Accept", "value": "json"}]));
        assert_eq!(shown["nested"]["deeper"]["proxy-authorization"], "***");
        assert_eq!(shown["method"], "POST");
        assert_eq!(redactor.json(&shown), shown, "masking twice changes nothing more");
    }
}
