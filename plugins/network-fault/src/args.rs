//! The attack's args: the type `run` receives and, derived from it at build time
//! (`build.rs`), the schema the engine checks plans against.

use cme_plugin_sdk::aim::Aim;

/// Which hosts, which fault, for how long.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
// Its undo (the qdisc or rule removed) is registered before the fault.
#[schemars(extend("x-cme-reversible" = true))]
#[schemars(extend("allOf" = [{"oneOf": [
    {"properties": {"fault": {"const": "latency"}}, "required": ["latency_ms"]},
    {"properties": {"fault": {"const": "loss"}}, "required": ["loss_percent"]},
    {"properties": {"fault": {"const": "blackhole"}}, "required": ["ports"]},
    {"properties": {"fault": {"const": "partition"}}, "required": ["peers"]},
    {"properties": {"fault": {"const": "corrupt"}}, "required": ["corrupt_percent"]},
    {"properties": {"fault": {"const": "duplicate"}}, "required": ["duplicate_percent"]}
]}]))]
pub struct Args {
    #[serde(flatten)]
    pub aim: Aim,
    #[schemars(with = "FaultKind")]
    pub fault: String,
    /// latency, loss, corrupt and duplicate: the network interface (default: the default route's)
    #[schemars(regex(pattern = "^[A-Za-z0-9_.:@-]{1,15}$"))]
    pub interface: Option<String>,
    /// latency: added delay
    #[schemars(range(min = 1, max = 60_000))]
    pub latency_ms: Option<u32>,
    /// latency: variation of the delay (default 0)
    #[schemars(range(min = 0, max = 60_000))]
    pub jitter_ms: Option<u32>,
    /// loss: share of packets dropped
    #[schemars(range(max = 100), extend("exclusiveMinimum" = 0))]
    pub loss_percent: Option<f64>,
    /// blackhole: TCP and UDP ports whose traffic is dropped (never the SSH port the engine uses)
    #[serde(default)]
    #[schemars(length(min = 1, max = 32), inner(range(min = 1, max = 65535)), extend("uniqueItems" = true))]
    pub ports: Vec<u16>,
    /// partition: addresses or CIDRs the host is cut off from, both directions (never one
    /// holding the engine's address as the host sees it)
    #[serde(default)]
    #[schemars(length(min = 1, max = 32), inner(regex(pattern = "^[0-9A-Fa-f.:]{2,45}(/[0-9]{1,3})?$")), extend("uniqueItems" = true))]
    pub peers: Vec<String>,
    /// corrupt: share of packets with a flipped bit
    #[schemars(range(max = 100), extend("exclusiveMinimum" = 0))]
    pub corrupt_percent: Option<f64>,
    /// duplicate: share of packets sent twice
    #[schemars(range(max = 100), extend("exclusiveMinimum" = 0))]
    pub duplicate_percent: Option<f64>,
    /// when the fault is removed (the undo)
    #[schemars(range(min = 1, max = 86_400))]
    pub duration_seconds: u32,
    /// run tc and iptables through sudo -n (default false)
    #[serde(default)]
    pub sudo: bool,
}

/// The faults it makes.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum FaultKind {
    Latency,
    Loss,
    Blackhole,
    Partition,
    Corrupt,
    Duplicate,
}
