//! Inventories: named groups of hosts reachable over SSH, any machine rather than only
//! those EC2 finds (issue 16). A host is an address, a port, a login user, the name of a
//! stored SSH credential and free-form tags that attacks filter on.
//!
//! This module is the vocabulary, the engine's operations on stored inventories (each
//! change audited with it) and the two ways in: checking a group written as JSON, and
//! importing the groups of an Ansible YAML inventory (`ansible_host`, `ansible_port`,
//! `ansible_user`; `cme_credential` names the credential; other scalar variables become
//! tags). Group variables apply to the group's hosts and to its children's, a host's own
//! variables win, and a host in a child group belongs to every ancestor, as in Ansible.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_norway::Value as Yaml;

use crate::{AuditEvent, Engine, EngineError, Resource};

/// A stored inventory: a named group of hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub name: String,
    pub hosts: Vec<InventoryHost>,
    pub updated: DateTime<Utc>,
    pub updated_by: String,
}

/// The most hosts one inventory holds.
pub const MAX_HOSTS: usize = 10_000;

pub use cme_model::InventoryHost;

/// Checks an inventory's name and hosts; the error names the host and field.
pub(crate) fn validate(name: &str, hosts: &[InventoryHost]) -> Result<(), String> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !name_ok {
        return Err(format!(
            "inventory name {name:?}: 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
        ));
    }
    if hosts.len() > MAX_HOSTS {
        return Err(format!("inventory {name}: {} hosts, at most {MAX_HOSTS}", hosts.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for host in hosts {
        let at = |field: &str, why: &str| format!("inventory {name}, host {:?}: {field} {why}", host.name);
        if host.name.is_empty() || host.name.len() > 255 {
            return Err(at("name", "must have 1-255 characters"));
        }
        if !seen.insert(host.name.as_str()) {
            return Err(at("name", "is used twice"));
        }
        let address_ok = !host.address.is_empty()
            && host.address.len() <= 255
            && !host.address.contains(|c: char| c.is_whitespace() || c == '/' || c == '@');
        if !address_ok {
            return Err(at("address", "must be a host name or an IP address"));
        }
        if host.port == 0 {
            return Err(at("port", "must be 1-65535"));
        }
        if host.credential.is_empty() {
            return Err(at("credential", "is required (the name of a stored SSH credential)"));
        }
        if host.tags.len() > 64 || host.tags.iter().any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 256) {
            return Err(at("tags", "must be at most 64, keys 1-128 and values at most 256 characters"));
        }
    }
    Ok(())
}

/// The groups of an Ansible YAML inventory that hold hosts (directly or through their
/// children), each with its hosts, by group name.
pub fn from_ansible_yaml(text: &str) -> Result<BTreeMap<String, Vec<InventoryHost>>, crate::bounded::DocumentRefused> {
    ansible_groups(text).map_err(crate::bounded::DocumentRefused)
}

pub(crate) fn ansible_groups(text: &str) -> Result<BTreeMap<String, Vec<InventoryHost>>, String> {
    let root: Yaml = crate::bounded::yaml(text).map_err(|e| format!("not YAML: {e}"))?;
    let Yaml::Mapping(groups) = root else {
        return Err("an Ansible YAML inventory is a mapping of groups (e.g. all: {children: ...})".into());
    };
    let mut found = BTreeMap::new();
    for (name, group) in &groups {
        let name = scalar(name).ok_or("a group name is not a string")?;
        walk(&name, group, &BTreeMap::new(), &mut found, 0)?;
    }
    let mut inventories = BTreeMap::new();
    for (group, hosts) in found {
        let hosts: Vec<InventoryHost> = hosts.into_values().collect::<Result<_, _>>()?;
        if !hosts.is_empty() {
            validate(&group, &hosts)?;
            inventories.insert(group, hosts);
        }
    }
    if inventories.is_empty() {
        return Err("the inventory has no hosts".into());
    }
    Ok(inventories)
}

impl Engine {
    /// Creates or replaces the inventory called `name`, audited.
    pub async fn put_inventory(
        &self,
        name: &str,
        hosts: Vec<InventoryHost>,
        by: &str,
    ) -> Result<Inventory, EngineError> {
        validate(name, &hosts).map_err(|m| EngineError::invalid("/hosts", m))?;
        self.check_inventory_credentials(std::iter::once((name, hosts.as_slice()))).await?;
        let inventory = Inventory { name: name.to_string(), hosts, updated: Utc::now(), updated_by: by.to_string() };
        let audit = AuditEvent::action(by, "inventory.put", format!("{name}: {} hosts", inventory.hosts.len()));
        self.ports.ssh.put_inventories(std::slice::from_ref(&inventory), &audit).await?;
        tracing::info!(inventory = name, hosts = inventory.hosts.len(), by, "inventory stored");
        Ok(inventory)
    }

    /// Imports every group of an Ansible YAML inventory that holds hosts as an inventory
    /// of the same name, replacing those of the same names; all or nothing, audited.
    pub async fn import_inventories(&self, yaml: &str, by: &str) -> Result<Vec<Inventory>, EngineError> {
        let text = yaml.to_string();
        let groups = crate::bounded::off_worker("the inventory", move || ansible_groups(&text))
            .await
            .map_err(|m| EngineError::invalid("/", m))?;
        self.check_inventory_credentials(groups.iter().map(|(name, hosts)| (name.as_str(), hosts.as_slice()))).await?;
        let now = Utc::now();
        let inventories: Vec<Inventory> = groups
            .into_iter()
            .map(|(name, hosts)| Inventory { name, hosts, updated: now, updated_by: by.to_string() })
            .collect();
        let names: Vec<&str> = inventories.iter().map(|i| i.name.as_str()).collect();
        let audit = AuditEvent::action(by, "inventory.import", names.join(", "));
        self.ports.ssh.put_inventories(&inventories, &audit).await?;
        tracing::info!(inventories = %names.join(","), by, "inventories imported");
        Ok(inventories)
    }

    /// Every inventory, by name.
    pub async fn inventories(&self) -> Result<Vec<Inventory>, EngineError> {
        Ok(self.ports.ssh.inventories().await?)
    }

    pub async fn inventory(&self, name: &str) -> Result<Inventory, EngineError> {
        self.ports.ssh.inventory(name).await?.ok_or_else(|| EngineError::not_found(Resource::Inventory, name))
    }

    /// Deletes an inventory, audited. Plans naming it fail at their next run, saying so.
    pub async fn delete_inventory(&self, name: &str, by: &str) -> Result<(), EngineError> {
        let audit = AuditEvent::action(by, "inventory.delete", name);
        if !self.ports.ssh.delete_inventory(name, &audit).await? {
            return Err(EngineError::not_found(Resource::Inventory, name));
        }
        tracing::info!(inventory = name, by, "inventory deleted");
        Ok(())
    }

    /// Every credential the hosts name must be stored: a typo is refused now rather than
    /// found by the first attack.
    async fn check_inventory_credentials<'a>(
        &self,
        inventories: impl Iterator<Item = (&'a str, &'a [InventoryHost])>,
    ) -> Result<(), EngineError> {
        let stored: std::collections::HashSet<String> =
            self.ports.ssh.credentials().await?.into_iter().map(|c| c.name).collect();
        for (name, hosts) in inventories {
            if let Some(host) = hosts.iter().find(|h| !stored.contains(&h.credential)) {
                return Err(EngineError::invalid(
                    "/hosts",
                    format!(
                        "inventory {name}, host {:?}: no credential named {:?} is stored (POST /api/1/credentials/ first)",
                        host.name, host.credential
                    ),
                ));
            }
        }
        Ok(())
    }
}

type Vars = BTreeMap<String, String>;
/// Per group, its hosts by name (or why one cannot be a host).
type Found = BTreeMap<String, BTreeMap<String, Result<InventoryHost, String>>>;

/// Collects `group`'s hosts (and its children's) into it and into every child, with the
/// variables inherited so far; returns the hosts, so that the parent collects them too.
fn walk(
    group: &str,
    body: &Yaml,
    inherited: &Vars,
    found: &mut Found,
    depth: usize,
) -> Result<BTreeMap<String, Result<InventoryHost, String>>, String> {
    if depth > 32 {
        return Err(format!("group {group}: children nest deeper than 32 levels"));
    }
    let body = match body {
        Yaml::Null => return Ok(BTreeMap::new()),
        Yaml::Mapping(m) => m,
        _ => return Err(format!("group {group}: expected a mapping with hosts, vars or children")),
    };
    for key in body.keys() {
        if !matches!(scalar(key).as_deref(), Some("hosts" | "vars" | "children")) {
            return Err(format!(
                "group {group}: unknown key {:?} (hosts, vars, children)",
                scalar(key).unwrap_or_default()
            ));
        }
    }
    let mut vars = inherited.clone();
    vars.extend(variables(group, body.get("vars"))?);
    let mut hosts = BTreeMap::new();
    match body.get("hosts") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Mapping(listed)) => {
            for (host, host_vars) in listed {
                let host = scalar(host).ok_or_else(|| format!("group {group}: a host name is not a string"))?;
                let mut all = vars.clone();
                all.extend(variables(&format!("host {host}"), Some(host_vars))?);
                hosts.insert(host.clone(), host_from(&host, &all));
            }
        }
        Some(_) => return Err(format!("group {group}: hosts must be a mapping of host names")),
    }
    match body.get("children") {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Mapping(children)) => {
            for (child, child_body) in children {
                let child =
                    scalar(child).ok_or_else(|| format!("group {group}: a child group name is not a string"))?;
                let collected = walk(&child, child_body, &vars, found, depth + 1)?;
                for (name, host) in collected {
                    hosts.entry(name).or_insert(host);
                }
            }
        }
        Some(_) => return Err(format!("group {group}: children must be a mapping of groups")),
    }
    let entry = found.entry(group.to_string()).or_default();
    for (name, host) in &hosts {
        entry.entry(name.clone()).or_insert_with(|| host.clone());
    }
    Ok(hosts)
}

/// A mapping of scalar variables (lists and mappings are skipped: not tags).
fn variables(owner: &str, value: Option<&Yaml>) -> Result<Vars, String> {
    match value {
        None | Some(Yaml::Null) => Ok(Vars::new()),
        Some(Yaml::Mapping(m)) => Ok(m.iter().filter_map(|(k, v)| Some((scalar(k)?, scalar(v)?))).collect()),
        Some(_) => Err(format!("{owner}: variables must be a mapping")),
    }
}

fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn host_from(name: &str, vars: &Vars) -> Result<InventoryHost, String> {
    // `web1:2222` names a port too, as Ansible allows.
    let (bare, port_in_name) = match name.rsplit_once(':') {
        Some((bare, port)) if !bare.contains(':') && port.parse::<u16>().is_ok() => (bare, port.parse::<u16>().ok()),
        _ => (name, None),
    };
    let port = match vars.get("ansible_port") {
        Some(p) => p.parse::<u16>().map_err(|_| format!("host {name}: ansible_port {p:?} is not a port"))?,
        None => port_in_name.unwrap_or(22),
    };
    let credential = vars.get("cme_credential").cloned().ok_or_else(|| {
        format!("host {name}: no cme_credential (the stored SSH credential to log in with; set it on the host or a group's vars)")
    })?;
    let tags = vars
        .iter()
        .filter(|(k, _)| !k.starts_with("ansible_") && !k.starts_with("cme_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(InventoryHost {
        name: bare.to_string(),
        address: vars.get("ansible_host").cloned().unwrap_or_else(|| bare.to_string()),
        port,
        user: vars.get("ansible_user").cloned().unwrap_or_default(),
        credential,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = r#"
all:
  vars:
    cme_credential: fleet-ssh
    env: prod
  children:
    web:
      vars:
        ansible_user: ubuntu
        tier: frontend
      hosts:
        web-1:
          ansible_host: 10.0.1.5
          zone: a
        web-2:2222:
          zone: b
    db:
      hosts:
        db-1:
          ansible_host: db1.internal
          ansible_port: 2200
          cme_credential: db-ssh
          zone: a
    empty:
"#;

    #[test]
    fn groups_become_inventories_with_inherited_variables_and_host_overrides() {
        let inventories = from_ansible_yaml(INVENTORY).unwrap();
        assert_eq!(inventories.keys().collect::<Vec<_>>(), ["all", "db", "web"], "a group without hosts is left out");
        let web = &inventories["web"];
        assert_eq!(
            web[0],
            InventoryHost {
                name: "web-1".into(),
                address: "10.0.1.5".into(),
                port: 22,
                user: "ubuntu".into(),
                credential: "fleet-ssh".into(),
                tags: [("env", "prod"), ("tier", "frontend"), ("zone", "a")]
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            }
        );
        assert_eq!(
            (web[1].name.as_str(), web[1].address.as_str(), web[1].port),
            ("web-2", "web-2", 2222),
            "host:port in the name"
        );
        let db = &inventories["db"][0];
        assert_eq!(
            (db.address.as_str(), db.port, db.credential.as_str(), db.user.as_str()),
            ("db1.internal", 2200, "db-ssh", "")
        );
        assert_eq!(inventories["all"].len(), 3, "a parent holds its children's hosts");
    }

    #[test]
    fn a_host_without_a_credential_is_refused_naming_it() {
        let err =
            from_ansible_yaml("all:\n  hosts:\n    web-1:\n      ansible_host: 10.0.0.1\n").unwrap_err().to_string();
        assert!(err.contains("host web-1: no cme_credential"), "{err}");
    }

    #[test]
    fn malformed_inventories_are_refused_with_what_is_wrong() {
        assert!(from_ansible_yaml("[1, 2]").unwrap_err().to_string().contains("mapping of groups"));
        assert!(from_ansible_yaml("all:\n  hostz: {}\n").unwrap_err().to_string().contains("unknown key \"hostz\""));
        assert!(
            from_ansible_yaml("all:\n  hosts: [a, b]\n").unwrap_err().to_string().contains("hosts must be a mapping")
        );
        assert!(
            from_ansible_yaml("all:\n  vars: {cme_credential: x}\n  hosts:\n    a:\n      ansible_port: http\n")
                .unwrap_err()
                .to_string()
                .contains("not a port")
        );
        assert!(from_ansible_yaml(": : :").unwrap_err().to_string().starts_with("not YAML"));
        assert_eq!(from_ansible_yaml("all: {}\n").unwrap_err().to_string(), "the inventory has no hosts");
    }

    #[test]
    fn validation_names_the_host_and_field() {
        let host = |name: &str, address: &str| InventoryHost {
            name: name.into(),
            address: address.into(),
            port: 22,
            user: String::new(),
            credential: "c".into(),
            tags: BTreeMap::new(),
        };
        assert_eq!(validate("web", &[host("a", "10.0.0.1")]), Ok(()));
        assert!(
            validate("web", &[host("a", "10.0.0.1"), host("a", "10.0.0.2")])
                .unwrap_err()
                .contains("\"a\": name is used twice")
        );
        assert!(validate("web", &[host("a", "user@10.0.0.1")]).unwrap_err().contains("address must be"));
        assert!(validate("bad name", &[]).unwrap_err().contains("inventory name"));
    }
}
