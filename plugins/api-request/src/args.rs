//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use std::collections::BTreeMap;

use cme_plugin_sdk::serde_json::{Map, Number, Value};

/// What to call, and what counts as success.
#[derive(serde::Deserialize, schemars::JsonSchema)]
// With a `revert`, the compensating call is registered before the request: reverted.
#[schemars(extend("x-cme-reversible" = {"required": ["revert"]}))]
pub struct Args {
    /// absolute http(s) URL
    #[schemars(regex(pattern = "^[hH][tT][tT][pP][sS]?://"))]
    pub endpoint: String,
    /// HTTP method, e.g. POST
    #[schemars(regex(pattern = "^[A-Za-z]+$"))]
    pub method: String,
    /// body fields; form-encoded unless encoding is json or Content-Type is application/json
    #[serde(default)]
    pub payload: Map<String, Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// whole-request timeout in ms (default 10000)
    #[schemars(range(min = 1, max = 600_000))]
    pub timeout_ms: Option<u32>,
    /// status code(s) that count as success (default any 2xx)
    pub expected_status: Option<ExpectedStatus>,
    pub encoding: Option<Encoding>,
    /// a compensating request that undoes this one (e.g. DELETE what a POST injected): registered with the host before the call and sent by it, with this plugin's grant and injected credentials, when the fault ends (after_seconds, an experiment's step, an abort, a halt)
    pub revert: Option<Revert>,
}

/// The compensating request.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Revert {
    /// absolute http(s) URL
    #[schemars(regex(pattern = "^[hH][tT][tT][pP][sS]?://"))]
    pub endpoint: String,
    /// HTTP method, e.g. DELETE
    #[schemars(regex(pattern = "^[A-Za-z]+$"))]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderValue>,
    /// sent as the request body (text)
    #[schemars(length(max = 16384))]
    pub body: Option<String>,
    /// when the host sends it at the latest (default 3600; an experiment's step may send it sooner)
    #[schemars(range(min = 1, max = 604_800))]
    pub after_seconds: Option<u32>,
}

/// A header's value as the original's clients send it: text, a number or a flag.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum HeaderValue {
    Text(String),
    Number(Number),
    Flag(bool),
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ExpectedStatus {
    One(#[schemars(range(min = 100, max = 599))] u16),
    Any(#[schemars(length(min = 1), inner(range(min = 100, max = 599)))] Vec<u16>),
}

#[derive(serde::Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Form,
    Json,
}

impl HeaderValue {
    /// The header's text: strings bare, numbers and flags as JSON writes them.
    pub fn text(&self) -> String {
        match self {
            HeaderValue::Text(text) => text.clone(),
            HeaderValue::Number(number) => number.to_string(),
            HeaderValue::Flag(flag) => flag.to_string(),
        }
    }
}
