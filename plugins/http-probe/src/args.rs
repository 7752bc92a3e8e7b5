//! The probe's args: the type `check` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use std::collections::BTreeMap;

use cme_plugin_sdk::serde_json::Value;

/// One request, and what a healthy answer looks like.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("dependentRequired" = {"json_equals": ["json_pointer"], "json_pointer": ["json_equals"]}))]
pub struct Args {
    /// absolute http(s) URL
    #[schemars(regex(pattern = "^[hH][tT][tT][pP][sS]?://"))]
    pub url: String,
    /// default GET
    #[serde(default = "get")]
    #[schemars(regex(pattern = "^[A-Za-z]+$"))]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// a code or a list of codes (default: any 2xx)
    pub expect_status: Option<ExpectedStatus>,
    /// slower answers are unhealthy
    #[schemars(range(min = 1))]
    pub max_latency_ms: Option<u32>,
    /// text the body must contain
    pub body_contains: Option<String>,
    /// a JSON pointer into the JSON body, e.g. /status
    #[schemars(regex(pattern = "^(/.*)?$"))]
    pub json_pointer: Option<String>,
    /// the value the pointer must find
    pub json_equals: Option<Value>,
    /// default 5000
    #[schemars(range(min = 1, max = 60_000))]
    pub timeout_ms: Option<u32>,
}

fn get() -> String {
    "GET".into()
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ExpectedStatus {
    One(#[schemars(range(min = 100, max = 599))] u16),
    Any(#[schemars(length(min = 1), inner(range(min = 100, max = 599)))] Vec<u16>),
}
