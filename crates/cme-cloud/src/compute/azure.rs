//! Azure virtual machines as compute nodes, over Azure Resource Manager as the official
//! clients' models (azure-mgmt-compute, azure-mgmt-network) describe it: the VMs of each
//! resource group of the cloud (`virtualMachines` with `$expand=instanceView` for the
//! power state, paged by `nextLink`), one VM read with its instance view, `deallocate`,
//! `start`, `restart` and `DELETE`, each answered 202 and followed through its
//! `Azure-AsyncOperation` (a status document: `Succeeded`, `Failed` with the error, or
//! `Canceled`) or else its `Location` (202 while running). Addresses come from the VM's
//! network interfaces and their public IPs (listed once per resource group; an interface
//! elsewhere is read on its own). ARM ids are case-insensitive: they are compared lower
//! case. Power states: `running` is running, `deallocated` and `stopped` are stopped,
//! `deallocating` and `stopping` stopping, `starting` pending.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::rest::{Answer, Rest};
use super::{ComputeError, Node, NodeFilters, NodeState, Operation, Pending, Provider, ProviderKind, within_max_nodes};

/// Azure Resource Manager.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com/";
/// The Microsoft.Compute API version the requests name.
pub const COMPUTE_API_VERSION: &str = "2024-07-01";
/// The Microsoft.Network API version the requests name.
pub const NETWORK_API_VERSION: &str = "2024-05-01";

/// The VMs of one subscription's resource groups.
pub struct Azure {
    rest: Rest,
    endpoint: Url,
    subscription: String,
    resource_groups: Vec<String>,
    poll: Duration,
}

/// An ARM name segment (subscription, resource group, VM name): it goes into a URL path.
fn arm_name(what: &str, name: &str) -> Result<(), ComputeError> {
    let fits = !name.is_empty()
        && name.len() <= 90
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
        && name != "."
        && name != "..";
    if fits { Ok(()) } else { Err(ComputeError::InvalidArgument(format!("{what} {name:?} is not an Azure name"))) }
}

/// An ARM resource id from an answer (a NIC's, a public IP's), safe to put in a URL path.
fn arm_id(id: &str) -> Option<&str> {
    let fits = id.starts_with("/subscriptions/")
        && id.len() <= 1024
        && id.split('/').skip(1).all(|segment| arm_name("segment", segment).is_ok());
    fits.then_some(id)
}

/// A node's state from a VM's instance view (its `PowerState/*` status), or from its
/// provisioning state when the view has none.
pub(crate) fn node_state(vm: &Value) -> (NodeState, String) {
    let statuses = vm["properties"]["instanceView"]["statuses"].as_array().cloned().unwrap_or_default();
    let power = statuses.iter().filter_map(|s| s["code"].as_str()).find_map(|c| c.strip_prefix("PowerState/"));
    let provisioning = vm["properties"]["provisioningState"].as_str().unwrap_or_default();
    if provisioning.eq_ignore_ascii_case("deleting") {
        return (NodeState::Terminated, "deleting".into());
    }
    let Some(power) = power else {
        let state = if provisioning.eq_ignore_ascii_case("failed") { NodeState::Error } else { NodeState::Unknown };
        return (state, provisioning.to_string());
    };
    let state = match power {
        "running" => NodeState::Running,
        "starting" => NodeState::Pending,
        "stopping" | "deallocating" => NodeState::Stopping,
        "stopped" | "deallocated" => NodeState::Stopped,
        _ => NodeState::Unknown,
    };
    (state, format!("VM {power}"))
}

/// The addresses of network interfaces and public IPs, by lower-case id.
#[derive(Default)]
struct Addresses {
    /// A NIC's private addresses and its public IPs' ids.
    nics: HashMap<String, (Vec<String>, Vec<String>)>,
    public_ips: HashMap<String, String>,
}

impl Addresses {
    fn add_nic(&mut self, nic: &Value) {
        let Some(id) = nic["id"].as_str() else { return };
        let configurations = nic["properties"]["ipConfigurations"].as_array().cloned().unwrap_or_default();
        let private = configurations
            .iter()
            .filter_map(|c| c["properties"]["privateIPAddress"].as_str().map(str::to_string))
            .collect();
        let public = configurations
            .iter()
            .filter_map(|c| c["properties"]["publicIPAddress"]["id"].as_str().map(str::to_string))
            .collect();
        self.nics.insert(id.to_ascii_lowercase(), (private, public));
    }

    fn add_public_ip(&mut self, ip: &Value) {
        if let (Some(id), Some(address)) = (ip["id"].as_str(), ip["properties"]["ipAddress"].as_str()) {
            self.public_ips.insert(id.to_ascii_lowercase(), address.to_string());
        }
    }
}

/// The NIC ids of a VM.
fn nic_ids(vm: &Value) -> Vec<String> {
    vm["properties"]["networkProfile"]["networkInterfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["id"].as_str().map(str::to_string))
        .collect()
}

/// A VM as a node (addresses from `addresses`); None when it lacks an id.
fn node(vm: &Value, addresses: &Addresses) -> Option<Node> {
    let id = vm["id"].as_str()?.to_string();
    let text = |v: &Value| v.as_str().map(str::to_string);
    let (state, provider_state) = node_state(vm);
    let mut private_addresses = Vec::new();
    let mut public_addresses = Vec::new();
    for nic in nic_ids(vm) {
        if let Some((private, public)) = addresses.nics.get(&nic.to_ascii_lowercase()) {
            private_addresses.extend(private.iter().cloned());
            public_addresses
                .extend(public.iter().filter_map(|ip| addresses.public_ips.get(&ip.to_ascii_lowercase()).cloned()));
        }
    }
    let region = text(&vm["location"]);
    let image = &vm["properties"]["storageProfile"]["imageReference"];
    Some(Node {
        name: text(&vm["name"]).unwrap_or_else(|| id.clone()),
        state,
        provider_state,
        provider: ProviderKind::Azure,
        // A VM outside an availability zone is placed by its region alone.
        zone: vm["zones"][0]
            .as_str()
            .map(|z| format!("{}-{z}", region.as_deref().unwrap_or_default()))
            .or(region.clone()),
        region,
        tags: vm["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        private_addresses,
        public_addresses,
        image: match (image["offer"].as_str(), image["sku"].as_str()) {
            (Some(offer), Some(sku)) => Some(format!("{offer}:{sku}")),
            _ => text(&image["id"]),
        },
        size: text(&vm["properties"]["hardwareProfile"]["vmSize"]),
        id,
    })
}

impl Azure {
    pub fn new(
        rest: Rest,
        endpoint: Option<&str>,
        subscription: &str,
        resource_groups: Vec<String>,
    ) -> Result<Azure, ComputeError> {
        let mut endpoint = endpoint.unwrap_or(DEFAULT_ENDPOINT).to_string();
        if !endpoint.ends_with('/') {
            endpoint.push('/');
        }
        let endpoint = Url::parse(&endpoint).map_err(|e| ComputeError::InvalidArgument(format!("endpoint: {e}")))?;
        arm_name("subscription_id", subscription)?;
        for group in &resource_groups {
            arm_name("resource group", group)?;
        }
        Ok(Azure {
            rest,
            endpoint,
            subscription: subscription.to_string(),
            resource_groups,
            poll: Duration::from_secs(2),
        })
    }

    /// How often an asynchronous operation is read again (2 s by default; tests shorten it).
    pub fn with_poll(mut self, poll: Duration) -> Azure {
        self.poll = poll;
        self
    }

    /// `path` (an ARM id or a path under the endpoint) with `api-version`.
    fn url(&self, path: &str, api_version: &str) -> Result<Url, ComputeError> {
        let mut url = self
            .endpoint
            .join(path.trim_start_matches('/'))
            .map_err(|e| ComputeError::InvalidArgument(format!("{path}: {e}")))?;
        url.query_pairs_mut().append_pair("api-version", api_version);
        Ok(url)
    }

    fn group_path(&self, group: &str) -> String {
        format!("subscriptions/{}/resourceGroups/{group}", self.subscription)
    }

    /// The id of a VM of this cloud's subscription and resource groups, as given (ARM
    /// compares it case-insensitively).
    fn vm_id<'n>(&self, node: &'n Node) -> Result<&'n str, ComputeError> {
        let parts: Vec<&str> = node.id.split('/').collect();
        let fits = match parts.as_slice() {
            ["", subscriptions, subscription, resource_groups, group, providers, namespace, kind, name] => {
                subscriptions.eq_ignore_ascii_case("subscriptions")
                    && subscription.eq_ignore_ascii_case(&self.subscription)
                    && resource_groups.eq_ignore_ascii_case("resourceGroups")
                    && self.resource_groups.iter().any(|g| g.eq_ignore_ascii_case(group))
                    && providers.eq_ignore_ascii_case("providers")
                    && namespace.eq_ignore_ascii_case("Microsoft.Compute")
                    && kind.eq_ignore_ascii_case("virtualMachines")
                    && arm_name("VM", name).is_ok()
            }
            _ => false,
        };
        if fits {
            Ok(&node.id)
        } else {
            Err(ComputeError::InvalidArgument(format!(
                "{:?} is not a virtual machine of subscription {} in resource groups {:?}",
                node.id, self.subscription, self.resource_groups
            )))
        }
    }

    /// Every item of a paged ARM list (`value`, `nextLink`), at most [`super::MAX_NODES`].
    async fn list_all(&self, operation: &'static str, first: Url) -> Result<Vec<Value>, ComputeError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        while let Some(page) = next.take() {
            let answer = self.rest.send(operation, Method::GET, &page, None, true, &[]).await?;
            items.extend(answer.body["value"].as_array().cloned().unwrap_or_default());
            within_max_nodes(items.len())?;
            if let Some(link) = answer.body["nextLink"].as_str().filter(|l| !l.is_empty()) {
                next = Some(Url::parse(link).map_err(|e| ComputeError::InvalidArgument(format!("nextLink: {e}")))?);
            }
        }
        Ok(items)
    }

    /// The NICs of `vms` not yet in `addresses`, and their public IPs, read one by one.
    async fn read_missing(&self, vms: &[Value], addresses: &mut Addresses) -> Result<(), ComputeError> {
        for nic in vms.iter().flat_map(nic_ids) {
            if addresses.nics.contains_key(&nic.to_ascii_lowercase()) {
                continue;
            }
            let Some(nic_answer) = self.read_network("get network interface", &nic).await? else { continue };
            addresses.add_nic(&nic_answer);
            // Under the id the answer gives (an answer naming another id adds nothing here).
            let public: Vec<String> = addresses
                .nics
                .get(&nic.to_ascii_lowercase())
                .map(|(_, ips)| ips.iter().filter(|ip| !addresses.public_ips.contains_key(&ip.to_ascii_lowercase())))
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            for ip in &public {
                if let Some(ip_answer) = self.read_network("get public IP address", ip).await? {
                    addresses.add_public_ip(&ip_answer);
                }
            }
        }
        Ok(())
    }

    /// A network resource by the ARM id an answer gave (skipped when it is not one); `None`
    /// once it is gone.
    async fn read_network(&self, operation: &'static str, id: &str) -> Result<Option<Value>, ComputeError> {
        let Some(id) = arm_id(id) else { return Ok(None) };
        let url = self.url(id, NETWORK_API_VERSION)?;
        let answer = self.rest.send(operation, Method::GET, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
        Ok((answer.status != StatusCode::NOT_FOUND).then_some(answer.body))
    }

    /// Follows an accepted operation through `Azure-AsyncOperation`, else `Location`,
    /// until it ends or `deadline` passes.
    async fn follow(
        &self,
        operation: &'static str,
        accepted: &Answer,
        deadline: tokio::time::Instant,
    ) -> Result<(), ComputeError> {
        let header = |name: &str| accepted.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (url, status_document) = match (header("azure-asyncoperation"), header("location")) {
            (Some(url), _) => (url, true),
            (None, Some(url)) => (url, false),
            // Done at once (a 200), or nothing to follow: the cloud follows the VM's state.
            (None, None) => return Ok(()),
        };
        let url = Url::parse(&url).map_err(|e| ComputeError::InvalidArgument(format!("the operation's URL: {e}")))?;
        loop {
            if tokio::time::Instant::now() + self.poll > deadline {
                return Err(ComputeError::Upstream {
                    provider: ProviderKind::Azure,
                    operation,
                    code: "OperationTimeout".into(),
                    message: "the asynchronous operation is still running at the operation's timeout".into(),
                });
            }
            tokio::time::sleep(self.poll).await;
            let answer = self.rest.send(operation, Method::GET, &url, None, true, &[]).await?;
            if !status_document {
                if answer.status == StatusCode::ACCEPTED {
                    continue;
                }
                return Ok(());
            }
            match answer.body["status"].as_str().unwrap_or_default() {
                "Succeeded" => return Ok(()),
                "Failed" | "Canceled" => {
                    let error = &answer.body["error"];
                    return Err(ComputeError::Upstream {
                        provider: ProviderKind::Azure,
                        operation,
                        code: error["code"]
                            .as_str()
                            .unwrap_or(answer.body["status"].as_str().unwrap_or("Failed"))
                            .to_string(),
                        message: error["message"].as_str().unwrap_or("the operation failed").to_string(),
                    });
                }
                _ => {}
            }
        }
    }
}

impl Provider for Azure {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Azure
    }

    fn list_nodes<'a>(&'a self, _filters: &'a NodeFilters) -> Pending<'a, Vec<Node>> {
        Box::pin(async move {
            let mut nodes = Vec::new();
            for group in &self.resource_groups {
                let base = self.group_path(group);
                let mut first =
                    self.url(&format!("{base}/providers/Microsoft.Compute/virtualMachines"), COMPUTE_API_VERSION)?;
                first.query_pairs_mut().append_pair("$expand", "instanceView");
                let vms = self.list_all("list virtual machines", first).await?;
                let mut addresses = Addresses::default();
                if vms.iter().any(|vm| !nic_ids(vm).is_empty()) {
                    let nics = self
                        .url(&format!("{base}/providers/Microsoft.Network/networkInterfaces"), NETWORK_API_VERSION)?;
                    for nic in self.list_all("list network interfaces", nics).await? {
                        addresses.add_nic(&nic);
                    }
                    let ips = self
                        .url(&format!("{base}/providers/Microsoft.Network/publicIPAddresses"), NETWORK_API_VERSION)?;
                    for ip in self.list_all("list public IP addresses", ips).await? {
                        addresses.add_public_ip(&ip);
                    }
                    self.read_missing(&vms, &mut addresses).await?;
                }
                nodes.extend(vms.iter().filter_map(|vm| node(vm, &addresses)));
                within_max_nodes(nodes.len())?;
            }
            Ok(nodes)
        })
    }

    fn read_node<'a>(&'a self, listed: &'a Node) -> Pending<'a, Option<Node>> {
        Box::pin(async move {
            let mut url = self.url(self.vm_id(listed)?, COMPUTE_API_VERSION)?;
            url.query_pairs_mut().append_pair("$expand", "instanceView");
            let answer =
                self.rest.send("get virtual machine", Method::GET, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let mut addresses = Addresses::default();
            self.read_missing(std::slice::from_ref(&answer.body), &mut addresses).await?;
            Ok(node(&answer.body, &addresses))
        })
    }

    fn request<'a>(&'a self, node: &'a Node, operation: Operation, deadline: tokio::time::Instant) -> Pending<'a, ()> {
        Box::pin(async move {
            let id = self.vm_id(node)?;
            let (method, path, call) = match operation {
                Operation::Stop => (Method::POST, format!("{id}/deallocate"), "deallocate"),
                Operation::Start => (Method::POST, format!("{id}/start"), "start"),
                Operation::Reboot => (Method::POST, format!("{id}/restart"), "restart"),
                Operation::Destroy => (Method::DELETE, id.to_string(), "delete"),
            };
            let url = self.url(&path, COMPUTE_API_VERSION)?;
            // ARM's power actions and deletes are idempotent: the same request twice is one.
            let answer = self.rest.send(call, method, &url, None, true, &[StatusCode::NOT_FOUND]).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return if operation == Operation::Destroy {
                    Ok(())
                } else {
                    Err(ComputeError::WrongState { operation, node: node.id.clone(), state: NodeState::Terminated })
                };
            }
            self.follow(call, &answer, deadline).await
        })
    }

    fn id_key(&self, id: &str) -> String {
        id.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vm(power: &str) -> Value {
        json!({
            "id": "/subscriptions/s1/resourceGroups/chaos/providers/Microsoft.Compute/virtualMachines/web-1",
            "name": "web-1", "location": "westeurope", "zones": ["2"], "tags": {"chaos": "yes"},
            "properties": {
                "provisioningState": "Succeeded",
                "hardwareProfile": {"vmSize": "Standard_B1s"},
                "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}},
                "networkProfile": {"networkInterfaces": [{"id": "/subscriptions/s1/resourceGroups/chaos/providers/Microsoft.Network/networkInterfaces/web-1-nic"}]},
                "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": format!("PowerState/{power}")}]}
            }
        })
    }

    #[test]
    fn a_vm_reads_as_a_node_with_its_nic_addresses() {
        let mut addresses = Addresses::default();
        addresses.add_nic(&json!({
            "id": "/subscriptions/s1/resourceGroups/CHAOS/providers/Microsoft.Network/networkInterfaces/web-1-nic",
            "properties": {"ipConfigurations": [{"properties": {
                "privateIPAddress": "10.0.0.4",
                "publicIPAddress": {"id": "/subscriptions/s1/resourceGroups/chaos/providers/Microsoft.Network/publicIPAddresses/web-1-ip"}
            }}]}
        }));
        addresses.add_public_ip(&json!({
            "id": "/subscriptions/s1/resourceGroups/chaos/providers/Microsoft.Network/publicIPAddresses/WEB-1-IP",
            "properties": {"ipAddress": "20.0.0.9"}
        }));
        let node = node(&vm("deallocated"), &addresses).unwrap();
        assert_eq!((node.state, node.provider_state.as_str()), (NodeState::Stopped, "VM deallocated"));
        assert_eq!((node.region.as_deref(), node.zone.as_deref()), (Some("westeurope"), Some("westeurope-2")));
        assert_eq!((node.private_addresses[0].as_str(), node.public_addresses[0].as_str()), ("10.0.0.4", "20.0.0.9"));
        assert_eq!(
            (node.size.as_deref(), node.image.as_deref()),
            (Some("Standard_B1s"), Some("ubuntu-24_04-lts:server"))
        );
        for (power, state) in
            [("running", NodeState::Running), ("deallocating", NodeState::Stopping), ("starting", NodeState::Pending)]
        {
            assert_eq!(node_state(&vm(power)).0, state);
        }
    }

    #[test]
    fn only_vms_of_the_clouds_groups_reach_a_url_and_ids_compare_without_case() {
        let rest = Rest::new(
            ProviderKind::Azure,
            std::sync::Arc::new(
                crate::http::HttpCredential::new(
                    "a",
                    &["https://management.azure.com/*".into()],
                    crate::http::CredentialSpec::Bearer { token: "t0ken".into() },
                )
                .unwrap(),
            ),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        let azure = Azure::new(rest, None, "s1", vec!["chaos".into()]).unwrap();
        let mut node = node(&vm("running"), &Addresses::default()).unwrap();
        node.id = node.id.to_uppercase().replace("S1", "s1");
        assert!(azure.vm_id(&node).is_ok(), "{}", node.id);
        for bad in [
            "/subscriptions/s2/resourceGroups/chaos/providers/Microsoft.Compute/virtualMachines/web-1",
            "/subscriptions/s1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/web-1",
            "/subscriptions/s1/resourceGroups/chaos/providers/Microsoft.Compute/virtualMachines/..",
            "/subscriptions/s1/resourceGroups/chaos/providers/Microsoft.Compute/virtualMachines/a?b",
            "https://evil.example/subscriptions/s1",
        ] {
            node.id = bad.to_string();
            assert!(azure.vm_id(&node).is_err(), "{bad}");
        }
        assert_eq!(azure.id_key("/Subscriptions/S1/X"), "/subscriptions/s1/x");
        assert!(arm_id("/subscriptions/s1/../x").is_none());
        assert!(arm_id("https://x/subscriptions").is_none());
    }
}
