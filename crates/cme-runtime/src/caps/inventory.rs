//! `cme:plugin/inventory`: the hosts of an inventory the grant names, filtered by tags.
//! Their addresses join the run's reachable set, as described instances' do, so that the
//! same run may open SSH sessions to them (and to nothing it was not given). Listing is
//! a read: a dry run lists for real.

use super::Unit;
use crate::audit::Decision;
use crate::bindings::HostError;
use crate::bindings::attack::cme::plugin::inventory::{Host, InventoryHost};
use crate::bindings::wit_types::KeyValue;
use crate::credentials::SshStoreError;
use crate::grant::{Denial, Fences, Grant, not_declared, not_granted};
use crate::info::Capability;
use crate::state::CallState;

/// The `inventory` unit. Inventories are reached over SSH: listing one takes the `ssh`
/// declaration and an ssh grant naming the inventory (no grant section of its own).
pub(crate) struct Inventory;

impl Unit for Inventory {
    const INTERFACE: &'static str = "cme:plugin/inventory";
    /// The hosts a run listed join the run's reachable addresses, shared with `ssh`.
    type RunState = ();
    /// The inventory's name.
    type Use<'a> = &'a str;

    fn check(declared: &[Capability], grant: &Grant, _fences: &Fences, name: &str) -> Result<(), Denial> {
        if !declared.iter().any(|c| matches!(c, Capability::Ssh)) {
            return Err(not_declared("ssh (inventories are reached over ssh)"));
        }
        let Some(ssh) = &grant.ssh else { return Err(not_granted("ssh")) };
        if !ssh.allows_inventory(name) {
            return Err(Denial(format!(
                "inventory {name} is not granted to this plugin (granted inventories: {:?})",
                ssh.inventories
            )));
        }
        Ok(())
    }
}

impl Host for CallState {
    async fn hosts(
        &mut self,
        name: String,
        tags: Vec<KeyValue>,
    ) -> wasmtime::Result<Result<Vec<InventoryHost>, HostError>> {
        const CALL: &str = "inventory.hosts";
        let wanted: Vec<String> = tags.iter().map(|t| format!("{}={}", t.key, t.value)).collect();
        let label = if wanted.is_empty() { name.clone() } else { format!("{name} [{}]", wanted.join(", ")) };
        if let Err(denied) = self.admit::<Inventory>(CALL, &label, &name)? {
            return Ok(Err(denied));
        }
        let caps = self.caps.as_ref().expect("admitted calls have capabilities");
        let Some(backend) = caps.backends.ssh.clone() else {
            return Ok(Err(self.unavailable(CALL, &label, "ssh (and so inventories)")));
        };
        self.begin(CALL, &label);
        let hosts = match backend.store.inventory(&name).await {
            Ok(Some(hosts)) => hosts,
            Ok(None) => {
                let reason = format!("no inventory named {name:?} is stored on this engine");
                self.audit(CALL, label, Decision::Allowed, Some(reason.clone()));
                return Ok(Err(HostError::InvalidArgument(reason)));
            }
            Err(SshStoreError::Denied(reason)) => {
                self.audit(CALL, label, Decision::Denied(reason.clone()), None);
                return Ok(Err(HostError::Denied(reason)));
            }
            Err(SshStoreError::Unavailable(reason)) => {
                self.audit(CALL, label, Decision::Unavailable(reason.clone()), None);
                return Ok(Err(HostError::Unavailable(reason)));
            }
        };
        let matching: Vec<_> = hosts
            .into_iter()
            .filter(|host| tags.iter().all(|want| host.tags.iter().any(|(k, v)| *k == want.key && *v == want.value)))
            .collect();
        let caps = self.caps.as_mut().expect("admitted");
        for host in &matching {
            caps.addresses.insert(host.address.clone(), format!("inventory {name} host {}", host.name));
        }
        self.audit(CALL, label, Decision::Allowed, Some(format!("{} hosts", matching.len())));
        Ok(Ok(matching
            .into_iter()
            .map(|host| InventoryHost {
                name: host.name,
                address: host.address,
                port: host.port,
                user: host.user,
                credential: host.credential.unwrap_or_default(),
                tags: host.tags.into_iter().map(|(key, value)| KeyValue { key, value }).collect(),
            })
            .collect()))
    }
}
