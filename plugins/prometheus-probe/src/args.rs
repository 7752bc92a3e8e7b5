//! The probe's args: the type `check` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use std::collections::BTreeMap;

/// A PromQL query, and the threshold its value is compared with.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Prometheus' base URL, e.g. http://prometheus:9090
    #[schemars(regex(pattern = "^[hH][tT][tT][pP][sS]?://"))]
    pub url: String,
    /// PromQL, e.g. sum(rate(http_requests_total{code=~"5.."}[1m]))
    #[schemars(length(min = 1))]
    pub query: String,
    pub op: Op,
    pub threshold: f64,
    /// when the query finds no sample (default unhealthy)
    #[serde(default)]
    pub on_empty: OnEmpty,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[schemars(range(min = 1, max = 60_000))]
    pub timeout_ms: Option<u32>,
}

#[derive(serde::Deserialize, schemars::JsonSchema, Clone, Copy)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

#[derive(serde::Deserialize, serde::Serialize, schemars::JsonSchema, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum OnEmpty {
    #[default]
    Unhealthy,
    Healthy,
}
