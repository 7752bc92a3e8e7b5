//! Inventory hosts: the machines SSH attacks aim at by name, as operators write them and
//! as the `inventory` capability hands them out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One machine of an inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryHost {
    /// Unique within the inventory (Ansible's inventory hostname), e.g. `web-1`.
    pub name: String,
    /// A DNS name or an IP address.
    pub address: String,
    #[serde(default = "ssh_port")]
    pub port: u16,
    /// The login user; empty: the credential's own user.
    #[serde(default)]
    pub user: String,
    /// The stored SSH credential (`/api/1/credentials/`) to log in with; none: stored
    /// without one (imported from an inventory that names none), and attacks on it fail
    /// saying so.
    #[serde(default)]
    pub credential: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn ssh_port() -> u16 {
    22
}
