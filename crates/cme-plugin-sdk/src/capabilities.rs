//! The host's capabilities as a plugin calls them. In a component each function is the
//! WIT import; built for the machine running `cargo test` it asks the
//! [`MockHost`](crate::testing::MockHost) running the plugin, so `run` and `check` can be
//! tested end to end without an engine.
//!
//! Every call returns a [`HostError`](crate::HostError) value when the host refuses or
//! fails it, never a trap; `?` turns it into a [`PluginError`](crate::PluginError).

/// Outbound HTTP, checked against the plugin's declared URL patterns, the operator's
/// grant and the engine's egress rules.
///
/// ```no_run
/// use cme_plugin_sdk::http;
/// let response = http::send(&http::Request {
///     method: "GET".into(),
///     url: "http://service.internal/health".into(),
///     headers: vec![],
///     body: None,
///     timeout_ms: Some(2_000),
/// })?;
/// assert_eq!(response.status, 200);
/// # Ok::<(), cme_plugin_sdk::HostError>(())
/// ```
pub mod http {
    use crate::HostError;
    pub use crate::wit::cme::plugin::http::{Request, Response};

    /// Sends one request, following up to the host's redirect limit (each hop checked like
    /// the first URL). In a dry run the request is checked but not sent: the response has
    /// status 0, no headers and an empty body.
    pub fn send(request: &Request) -> Result<Response, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::http::send(request);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.http_send(request));
    }
}

/// Amazon EC2 through the engine's credentials (a plugin never sees them).
///
/// ```no_run
/// use cme_plugin_sdk::ec2;
/// let running = ec2::describe_instances("eu-west-1", &[ec2::Filter {
///     name: "instance-state-name".into(),
///     values: vec!["running".into()],
/// }])?;
/// let ids: Vec<String> = running.into_iter().map(|i| i.instance_id).take(1).collect();
/// let done = ec2::terminate_instances("eu-west-1", &ids)?;
/// # Ok::<(), cme_plugin_sdk::HostError>(())
/// ```
pub mod ec2 {
    use crate::HostError;
    pub use crate::wit::cme::plugin::ec2::{Filter, Instance, Terminated};

    /// Lists the instances in `region` matching every filter (EC2 semantics); the host
    /// adds the grant's required filters and returns every page up to its cap.
    pub fn describe_instances(region: &str, filters: &[Filter]) -> Result<Vec<Instance>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ec2::describe_instances(region, filters);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.ec2_describe(region, filters));
    }

    /// Terminates instances this run obtained from [`describe_instances`] in the same
    /// region; the host re-checks them against the grant and counts them against the run's
    /// termination budget. In a dry run nothing is terminated (state `dry-run`).
    pub fn terminate_instances(region: &str, instance_ids: &[String]) -> Result<Vec<Terminated>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ec2::terminate_instances(region, instance_ids);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.ec2_terminate(region, instance_ids));
    }

    /// Stops instances this run described; the host stores their revert (start) first and
    /// runs it when the experiment's step ends, the run is aborted, on a halt, and at the
    /// latest after `hold_ms`. In a dry run nothing is stopped (state `dry-run`).
    pub fn stop_instances(region: &str, instance_ids: &[String], hold_ms: u64) -> Result<Vec<Terminated>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ec2::stop_instances(region, instance_ids, hold_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.ec2_disrupt("stop", region, instance_ids, hold_ms));
    }

    /// Reboots instances this run described (nothing to revert).
    pub fn reboot_instances(region: &str, instance_ids: &[String]) -> Result<Vec<Terminated>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ec2::reboot_instances(region, instance_ids);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.ec2_disrupt("reboot", region, instance_ids, 0));
    }

    /// Swaps instances' security groups for an empty one; the host stores their groups
    /// as the revert first (state `isolated`).
    pub fn isolate_instances(
        region: &str,
        instance_ids: &[String],
        hold_ms: u64,
    ) -> Result<Vec<Terminated>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ec2::isolate_instances(region, instance_ids, hold_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.ec2_disrupt("isolate", region, instance_ids, hold_ms));
    }

    /// Swaps subnets' network ACLs for a deny-all one; the host stores the original ACLs
    /// as the revert first. Answers the subnet ids.
    pub fn isolate_subnets(region: &str, subnet_ids: &[String], hold_ms: u64) -> Result<Vec<String>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ec2::isolate_subnets(region, subnet_ids, hold_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| {
            host.ec2_disrupt("isolate-subnets", region, subnet_ids, hold_ms)
                .map(|done| done.into_iter().map(|d| d.instance_id).collect())
        });
    }
}

/// SSH to instances the same run discovered; keys stay in the host (a target names a
/// stored credential).
///
/// ```no_run
/// use cme_plugin_sdk::ssh;
/// let target = ssh::Target { address: "10.0.0.7".into(), port: 22, user: "ec2-user".into(), credential: "fleet".into() };
/// ssh::upload(&target, "/tmp/burn.sh", b"#!/bin/sh\nuptime\n", 0o700)?;
/// let out = ssh::exec(&target, "/tmp/burn.sh", 30_000)?;
/// # Ok::<(), cme_plugin_sdk::HostError>(())
/// ```
pub mod ssh {
    use crate::HostError;
    pub use crate::wit::cme::plugin::ssh::{ExecOutput, Target};

    /// Writes `contents` to `remote_path` on the target with permission bits `mode`.
    pub fn upload(target: &Target, remote_path: &str, contents: &[u8], mode: u32) -> Result<(), HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ssh::upload(target, remote_path, contents, mode);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.ssh_upload(target, remote_path, contents, mode));
    }

    /// Runs `command` through the remote shell, waiting at most `timeout_ms`. In a dry run
    /// nothing is sent and the answer is exit code 0 with no output.
    pub fn exec(target: &Target, command: &str, timeout_ms: u32) -> Result<ExecOutput, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::ssh::exec(target, command, timeout_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.ssh_exec(target, command, timeout_ms));
    }
}

/// The host's script library: the scripts shipped with the engine and an operator's own.
///
/// ```no_run
/// let script = cme_plugin_sdk::scripts::read("s_burncpu.sh")?;
/// # Ok::<(), cme_plugin_sdk::HostError>(())
/// ```
pub mod scripts {
    use crate::HostError;

    /// The script called `name` (`s_burncpu.sh` or `script_attacks/s_burncpu.sh`); paths
    /// that leave the library are refused.
    pub fn read(name: &str) -> Result<Vec<u8>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::scripts::read(name);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.script_read(name));
    }
}

/// The engine's inventories: machines an operator listed, reachable over [`ssh`] by the
/// run that listed them (it takes the `ssh` capability and a grant naming the inventory).
///
/// ```no_run
/// use cme_plugin_sdk::{inventory, ssh};
/// let web = inventory::hosts("web", &[("zone", "a")])?;
/// if let Some(host) = web.first() {
///     let target = ssh::Target { address: host.address.clone(), port: host.port, user: host.user.clone(), credential: host.credential.clone() };
///     ssh::exec(&target, "uptime", 10_000)?;
/// }
/// # Ok::<(), cme_plugin_sdk::HostError>(())
/// ```
pub mod inventory {
    use crate::HostError;
    pub use crate::wit::cme::plugin::inventory::InventoryHost;
    use crate::wit::cme::plugin::types::KeyValue;

    /// The hosts of inventory `name` carrying every tag of `tags` (all of them when it is
    /// empty), in the inventory's order.
    pub fn hosts(name: &str, tags: &[(&str, &str)]) -> Result<Vec<InventoryHost>, HostError> {
        let tags: Vec<KeyValue> =
            tags.iter().map(|(k, v)| KeyValue { key: k.to_string(), value: v.to_string() }).collect();
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::inventory::hosts(name, &tags);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.inventory_hosts(name, &tags));
    }
}

/// Undoing a fault whatever happens to the run: arm the undo *before* making the fault.
/// The engine runs it when due, at once when halted, and when it starts again; a timer
/// left on the target runs it should the engine be gone. The command must be safe to run
/// twice.
///
/// ```no_run
/// use cme_plugin_sdk::{ssh, undo};
/// let target = ssh::Target { address: "10.0.0.7".into(), port: 22, user: String::new(), credential: "fleet".into() };
/// undo::arm(&target, "systemctl start nginx", 300_000)?;
/// ssh::exec(&target, "systemctl stop nginx", 30_000)?;
/// # Ok::<(), cme_plugin_sdk::HostError>(())
/// ```
pub mod undo {
    use crate::HostError;
    use crate::wit::cme::plugin::ssh::Target;

    /// Arms `command` to run on `target` after `after_ms`; returns the undo's id. In a dry
    /// run nothing is armed (the id is `dry-run`).
    pub fn arm(target: &Target, command: &str, after_ms: u64) -> Result<String, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::undo::arm(target, command, after_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.undo_arm(target, command, after_ms));
    }

    /// Arms a compensating HTTP request the host sends after `after_ms` (or when the
    /// experiment's step ends, the run is aborted, on a halt), with this plugin's grant and
    /// the credentials the host injects; it must be a request the plugin may send now.
    /// In a dry run nothing is armed (the id is `dry-run`).
    pub fn arm_http(request: &crate::http::Request, after_ms: u64) -> Result<String, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::undo::arm_http(request, after_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.undo_arm_http(request, after_ms));
    }
}

/// Compute nodes on the operator's clouds (`[[clouds]]`), whatever their provider: list
/// them, then stop, start, reboot or destroy the ones this run listed.
///
/// ```no_run
/// use cme_plugin_sdk::compute;
/// let filters = compute::NodeFilters {
///     tags: vec![cme_plugin_sdk::KeyValue { key: "team".into(), value: "web".into() }],
///     zones: vec![],
///     states: vec![compute::NodeState::Running],
///     names: vec![],
/// };
/// let nodes = compute::list_nodes("prod-gce", &filters)?;
/// if let Some(node) = nodes.first() {
///     compute::stop_node("prod-gce", &node.id, 600_000)?;
/// }
/// # Ok::<(), cme_plugin_sdk::HostError>(())
/// ```
pub mod compute {
    use crate::HostError;
    pub use crate::wit::cme::plugin::compute::{Acted, Node, NodeFilters, NodeState};

    /// The state's word, as the engine's node model and its API spell it.
    pub fn state_word(state: NodeState) -> &'static str {
        match state {
            NodeState::Pending => "pending",
            NodeState::Running => "running",
            NodeState::Stopping => "stopping",
            NodeState::Stopped => "stopped",
            NodeState::Rebooting => "rebooting",
            NodeState::Terminated => "terminated",
            NodeState::Suspended => "suspended",
            NodeState::Error => "error",
            NodeState::Unknown => "unknown",
        }
    }

    /// The clouds this plugin may use, by name.
    pub fn clouds() -> Vec<String> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::compute::clouds();
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.compute_clouds());
    }

    /// The nodes of `cloud` matching every filter (the host adds the required tags of the
    /// cloud and the grant).
    pub fn list_nodes(cloud: &str, filters: &NodeFilters) -> Result<Vec<Node>, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::compute::list_nodes(cloud, filters);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.compute_list(cloud, filters));
    }

    /// Stops a node this run listed; the host stores its revert (start it) first and
    /// runs it when the experiment's step ends, the run is aborted, on a halt, and at the
    /// latest after `hold_ms`.
    pub fn stop_node(cloud: &str, node_id: &str, hold_ms: u64) -> Result<Acted, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::compute::stop_node(cloud, node_id, hold_ms);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.compute_operate("stop-node", cloud, node_id, hold_ms));
    }

    /// Starts a node this run listed.
    pub fn start_node(cloud: &str, node_id: &str) -> Result<Acted, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::compute::start_node(cloud, node_id);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.compute_operate("start-node", cloud, node_id, 0));
    }

    /// Reboots a node this run listed (nothing to revert).
    pub fn reboot_node(cloud: &str, node_id: &str) -> Result<Acted, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::compute::reboot_node(cloud, node_id);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.compute_operate("reboot-node", cloud, node_id, 0));
    }

    /// Destroys a node this run listed (nothing to revert).
    pub fn destroy_node(cloud: &str, node_id: &str) -> Result<Acted, HostError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::cme::plugin::compute::destroy_node(cloud, node_id);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::call(|host| host.compute_operate("destroy-node", cloud, node_id, 0));
    }
}
