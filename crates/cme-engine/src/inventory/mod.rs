//! Inventories: named groups of hosts reachable over SSH, any machine rather than only
//! those EC2 finds (issue 16). A host is an address, a port, a login user, the stored SSH
//! credential to log in with (or none yet) and free-form tags that attacks filter on.
//!
//! This module is the vocabulary, the engine's operations on stored inventories (each
//! change audited with it) and the ways in: a group written as JSON, or every group of an
//! Ansible inventory read as Ansible reads it — INI ([`ini`]), YAML ([`yaml`]) or the JSON
//! `ansible-inventory --list` prints ([`json`]) — resolved by [`model`] (host ranges,
//! children by name, variable precedence) into one inventory per group.

mod ini;
mod json;
mod model;
mod patterns;
mod var;
mod yaml;

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::bounded::DocumentRefused;
use crate::{AuditEvent, Engine, EngineError, Resource};

pub use model::{MAX_GROUPS, MAX_MEMBERSHIPS, MAX_MERGES, MAX_RESOLVED_BYTES, MAX_TAGS};

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

/// The formats an Ansible inventory comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ini,
    Yaml,
    /// What `ansible-inventory --list` prints.
    Json,
}

/// A format name that is none of `ini`, `yaml`, `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("format {0:?}: ini, yaml or json")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ini" => Ok(Format::Ini),
            "yaml" | "yml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            _ => Err(UnknownFormat(s.to_string())),
        }
    }
}

impl Format {
    /// Its name, as `?format=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Ini => "ini",
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }

    /// The format a media type names (`application/json`, `application/yaml`,
    /// `text/x-ini`...); `None` for types that say nothing (`text/plain`, forms).
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Format::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Some(Format::Yaml),
            "text/x-ini" | "application/x-ini" | "text/ini" => Some(Format::Ini),
            _ => None,
        }
    }

    /// Guesses the format from the text: `{` starts JSON; a `[group]` header, or a first
    /// line that is not `key:` YAML, is INI; else YAML.
    pub fn sniff(text: &str) -> Format {
        let first = text
            .trim_start_matches('\u{feff}')
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'));
        let Some(first) = first else { return Format::Yaml };
        if first.starts_with('{') {
            return Format::Json;
        }
        if first.starts_with('[') && first.contains(']') && !first.contains(',') {
            return Format::Ini;
        }
        let yaml_key = first == "---"
            || first.starts_with("- ")
            || first.split_once(':').is_some_and(|(key, rest)| {
                !key.contains(['=', ' ']) && (rest.is_empty() || rest.starts_with([' ', '\t']))
            });
        if yaml_key { Format::Yaml } else { Format::Ini }
    }
}

/// How to read an inventory source.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The parser; `None`: [`Format::sniff`].
    pub format: Option<Format>,
    /// The credential of every host that names none (`cme_credential`).
    pub credential: Option<String>,
}

/// A group of the source that does not become an inventory, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedGroup {
    pub group: String,
    pub reason: String,
}

/// What a source holds: an inventory's hosts per group that has any, and the groups
/// skipped.
#[derive(Debug, Clone)]
pub struct InventoryRead {
    /// The parser that read it (given, or sniffed).
    pub format: Format,
    pub groups: BTreeMap<String, Vec<InventoryHost>>,
    pub skipped: Vec<SkippedGroup>,
}

/// Reads an Ansible inventory as Ansible does (see the module's doc). The document is
/// refused for syntax Ansible would refuse too; a group that cannot be an inventory (no
/// hosts, an invalid name, a host with a bad port) is skipped, saying why.
pub fn read(text: &str, options: &ReadOptions) -> Result<InventoryRead, DocumentRefused> {
    let mut format = options.format.unwrap_or_else(|| Format::sniff(text));
    let parse = |format: Format, model: &mut model::Model| match format {
        Format::Ini => ini::read(text, model),
        Format::Yaml => yaml::read(text, model),
        Format::Json => json::read(text, model),
    };
    let mut model = model::Model::default();
    if let Err(why) = parse(format, &mut model) {
        // Sniffed as JSON for its `{`, it may be a YAML inventory in flow style.
        let mut yaml = model::Model::default();
        if options.format.is_some() || format != Format::Json || parse(Format::Yaml, &mut yaml).is_err() {
            return Err(DocumentRefused(why));
        }
        (format, model) = (Format::Yaml, yaml);
    }
    let mut read = InventoryRead { format, groups: BTreeMap::new(), skipped: Vec::new() };
    for (group, hosts) in model.resolve(options.credential.as_deref()).map_err(DocumentRefused)? {
        match hosts.and_then(|hosts| validate(&group, &hosts).map(|()| hosts)) {
            Ok(hosts) => {
                read.groups.insert(group, hosts);
            }
            Err(reason) => read.skipped.push(SkippedGroup { group, reason }),
        }
    }
    Ok(read)
}

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
        if host.credential.as_deref().is_some_and(|c| c.is_empty() || c.len() > 255) {
            return Err(at("credential", "must have 1-255 characters (or be left out)"));
        }
        if host.tags.len() > MAX_TAGS || host.tags.iter().any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 256) {
            return Err(at(
                "tags",
                &format!("must be at most {MAX_TAGS}, keys 1-128 and values at most 256 characters"),
            ));
        }
    }
    Ok(())
}

/// What an import stored, and the groups it skipped.
#[derive(Debug, Clone)]
pub struct ImportedInventories {
    pub format: Format,
    pub inventories: Vec<Inventory>,
    pub skipped: Vec<SkippedGroup>,
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
        let stored = self.stored_credentials().await?;
        if let Some(why) = unknown_credential(name, &hosts, &stored) {
            return Err(EngineError::invalid("/hosts", why));
        }
        let inventory = Inventory { name: name.to_string(), hosts, updated: Utc::now(), updated_by: by.to_string() };
        let audit = AuditEvent::action(by, "inventory.put", format!("{name}: {} hosts", inventory.hosts.len()));
        self.ports.ssh.put_inventories(std::slice::from_ref(&inventory), &audit).await?;
        tracing::info!(inventory = name, hosts = inventory.hosts.len(), by, "inventory stored");
        Ok(inventory)
    }

    /// Imports every group of an Ansible inventory (INI, YAML or `ansible-inventory
    /// --list` JSON) that holds hosts as an inventory of the same name, replacing those of
    /// the same names, in one write, audited. Groups that cannot be inventories (no hosts,
    /// a host naming a credential not stored...) are skipped and answered with why; a
    /// source with none to import is refused, with every reason.
    pub async fn import_inventories(
        &self,
        text: &str,
        options: &ReadOptions,
        by: &str,
    ) -> Result<ImportedInventories, EngineError> {
        let stored = self.stored_credentials().await?;
        if let Some(credential) = &options.credential
            && !stored.contains(credential)
        {
            return Err(EngineError::invalid(
                "/credential",
                format!("no credential named {credential:?} is stored (POST /api/1/credentials/ first)"),
            ));
        }
        let text = text.to_string();
        let options = options.clone();
        let read = crate::bounded::off_worker("the inventory", move || read(&text, &options).map_err(|e| e.0))
            .await
            .map_err(|m| EngineError::invalid("/", m))?;
        let mut skipped = read.skipped;
        let now = Utc::now();
        let mut inventories = Vec::new();
        for (name, hosts) in read.groups {
            match unknown_credential(&name, &hosts, &stored) {
                Some(reason) => skipped.push(SkippedGroup { group: name, reason }),
                None => inventories.push(Inventory { name, hosts, updated: now, updated_by: by.to_string() }),
            }
        }
        if inventories.is_empty() {
            let reasons: Vec<String> = skipped.iter().map(|s| format!("{}: {}", s.group, s.reason)).collect();
            let why = if reasons.is_empty() { "the inventory has no hosts".to_string() } else { reasons.join("; ") };
            return Err(EngineError::invalid("/", format!("no group of the inventory can be imported: {why}")));
        }
        let names: Vec<&str> = inventories.iter().map(|i| i.name.as_str()).collect();
        let audit = AuditEvent::action(by, "inventory.import", names.join(", "));
        self.ports.ssh.put_inventories(&inventories, &audit).await?;
        tracing::info!(inventories = %names.join(","), skipped = skipped.len(), by, "inventories imported");
        Ok(ImportedInventories { format: read.format, inventories, skipped })
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

    async fn stored_credentials(&self) -> Result<std::collections::HashSet<String>, EngineError> {
        Ok(self.ports.ssh.credentials().await?.into_iter().map(|c| c.name).collect())
    }
}

/// Every credential the hosts name must be stored: a typo is refused now rather than found
/// by the first attack. A host naming none is stored as such (its attacks fail naming it).
fn unknown_credential(
    name: &str,
    hosts: &[InventoryHost],
    stored: &std::collections::HashSet<String>,
) -> Option<String> {
    let (host, credential) =
        hosts.iter().find_map(|h| h.credential.as_ref().filter(|c| !stored.contains(*c)).map(|c| (h, c)))?;
    Some(format!(
        "inventory {name}, host {:?}: no credential named {credential:?} is stored (POST /api/1/credentials/ first)",
        host.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../tests/e2e/fixtures/inventories/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn read_as(text: &str, format: Option<Format>, credential: Option<&str>) -> InventoryRead {
        read(text, &ReadOptions { format, credential: credential.map(str::to_string) }).unwrap()
    }

    fn host<'a>(read: &'a InventoryRead, group: &str, name: &str) -> &'a InventoryHost {
        read.groups[group].iter().find(|h| h.name == name).unwrap_or_else(|| panic!("{group} has no host {name}"))
    }

    #[test]
    fn ini_inventories_are_read_as_ansible_reads_them() {
        let read = read_as(&fixture("docs-example.ini"), None, Some("fleet"));
        assert_eq!(read.format, Format::Ini, "sniffed");
        assert_eq!(read.groups["webservers"].len(), 53, "www[01:50] and web-[a:c]");
        assert!(read.groups["webservers"].iter().any(|h| h.name == "www07.example.com"));
        assert_eq!(read.groups["ungrouped"][0].name, "mail.example.com");
        let names: Vec<&str> = read.groups["dbservers"].iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["db-legacy.example.com", "db0.example.com", "db10.example.com", "db20.example.com"]);
        let legacy = host(&read, "dbservers", "db-legacy.example.com");
        assert_eq!((legacy.port, legacy.user.as_str()), (5309, "oracle"));
        let host1 = host(&read, "atlanta", "host1");
        assert_eq!(host1.tags["http_port"], "80", "the host's own variable wins over its group's");
        assert_eq!(host1.tags["ntp_server"], "ntp.atlanta.example.com", "a child group wins over its parent");
        assert_eq!(host1.tags["halon_system_timeout"], "30", "a parent's variables reach its children's hosts");
        assert_eq!(host1.tags["env"], "prod", "all:vars reach every host");
        assert_eq!(host1.tags["proxy"], "proxy.atlanta.example.com", "quotes around a :vars value go");
        let jumper = host(&read, "atlanta", "jumper");
        assert_eq!((jumper.address.as_str(), jumper.port), ("192.0.2.50", 5555));
        assert_eq!(jumper.tags["role"], "jump box");
        assert_eq!(jumper.credential.as_deref(), Some("fleet"));
        assert_eq!(read.groups["southeast"].len(), 4, "children named before they are defined");
        assert_eq!(read.groups["usa"].len(), 4);
        assert_eq!(read.groups["all"].len(), 62);
        assert_eq!(read.skipped, [SkippedGroup { group: "northeast".into(), reason: "no hosts".into() }]);
    }

    #[test]
    fn a_kubespray_inventory_resolves_its_roles() {
        let read = read_as(&fixture("kubespray.ini"), Some(Format::Ini), None);
        assert_eq!(read.groups["k8s_cluster"].len(), 3);
        let node2 = host(&read, "kube_node", "node2");
        assert_eq!(node2.address, "95.54.0.13", "variables set where the host was first listed");
        assert_eq!(node2.tags["ip"], "10.3.0.2");
        assert_eq!(node2.credential, None, "no credential anywhere: stored as none");
        assert_eq!(read.skipped[0].group, "calico_rr");
    }

    #[test]
    fn yaml_merge_keys_integer_names_and_groups_in_two_places() {
        let read = read_as(&fixture("merge-keys.yaml"), None, Some("fleet"));
        assert_eq!(read.format, Format::Yaml);
        let web: Vec<&str> = read.groups["web"].iter().map(|h| h.name.as_str()).collect();
        assert_eq!(web, ["app1.example.com", "app2.example.com", "app3.example.com", "app9.example.com"]);
        let app1 = host(&read, "web", "app1.example.com");
        assert_eq!((app1.port, app1.user.as_str()), (2222, "deploy"), "merged from the anchor");
        assert_eq!(app1.tags["monitoring.team"], "sre");
        assert_eq!(app1.tags["monitoring.pager"], "true");
        assert_eq!(host(&read, "web", "app9.example.com").tags["tier"], "canary");
        let numbered = host(&read, "db", "12345");
        assert_eq!((numbered.address.as_str(), numbered.tags["tier"].as_str()), ("10.0.3.8", "data"));
        assert_eq!(numbered.tags["env"], "staging");
        assert!(
            read.skipped.iter().any(|s| s.group == "x-defaults" && s.reason.contains("no hosts")),
            "{:?}",
            read.skipped
        );
        let vaulted = host(&read, "vaulted", "vault-1");
        assert_eq!(vaulted.tags.get("role").map(String::as_str), Some("db"));
        assert!(!vaulted.tags.contains_key("db_password"), "Vault ciphertext is left out");
    }

    #[test]
    fn ansible_inventory_list_json_is_a_source_with_dotted_tags() {
        let read = read_as(&fixture("aws_ec2-list.json"), None, Some("fleet"));
        assert_eq!(read.format, Format::Json);
        assert_eq!(read.groups["tag_Role_web"].len(), 2);
        assert_eq!(read.groups["aws_ec2"].len(), 3);
        let web1 = host(&read, "tag_Role_web", "ec2-54-1-2-3.compute-1.amazonaws.com");
        assert_eq!(web1.address, "10.0.1.10");
        assert_eq!(web1.tags["tags.Role"], "web");
        assert_eq!(web1.tags["placement.availability_zone"], "us-east-1a");
        assert_eq!(web1.tags["security_groups.0.group_id"], "sg-0123");
        assert_eq!(web1.tags["state.code"], "16");
        assert!(read.skipped.iter().any(|s| s.group == "ungrouped"));
    }

    #[test]
    fn the_format_is_sniffed_from_the_text() {
        assert_eq!(Format::sniff("{\"all\": {}}"), Format::Json);
        assert_eq!(Format::sniff("# c\n[web]\nh1\n"), Format::Ini);
        assert_eq!(Format::sniff("h1 ansible_host=10.0.0.1\n"), Format::Ini);
        assert_eq!(Format::sniff("web1:2222\n"), Format::Ini, "a host and port is not a YAML key");
        assert_eq!(Format::sniff("all:\n  hosts:\n"), Format::Yaml);
        assert_eq!(Format::sniff("---\nall: {}\n"), Format::Yaml);
        let flow = read_as("{all: {hosts: {web-1: {ansible_host: 10.0.0.1}}}}", None, None);
        assert_eq!((flow.format, flow.groups["all"].len()), (Format::Yaml, 1), "YAML in flow style is YAML");
        assert_eq!(Format::of_media_type("application/json; charset=utf-8"), Some(Format::Json));
        assert_eq!(Format::of_media_type("text/plain"), None);
        assert_eq!("INI".parse::<Format>(), Ok(Format::Ini));
        assert!("toml".parse::<Format>().is_err());
    }

    #[test]
    fn a_group_that_cannot_be_an_inventory_is_skipped_saying_why() {
        let read = read_as("[web]\nw1 ansible_port=http\n[db]\nd1\n[bad!name]\nb1\n", Some(Format::Ini), None);
        assert_eq!(read.groups.keys().collect::<Vec<_>>(), ["db"]);
        let bad = read.skipped.iter().find(|s| s.group == "bad!name").unwrap();
        assert!(bad.reason.contains("inventory name"), "{}", bad.reason);
        let web = read.skipped.iter().find(|s| s.group == "web").unwrap();
        assert!(web.reason.contains("ansible_port \"http\" is not a port"), "{}", web.reason);
        let all = read.skipped.iter().find(|s| s.group == "all").unwrap();
        assert!(all.reason.contains("not a port"), "all holds web's host too: {}", all.reason);
    }

    #[test]
    fn malformed_sources_are_refused_naming_the_line() {
        let refused =
            |text: &str, format| read(text, &ReadOptions { format: Some(format), credential: None }).unwrap_err().0;
        assert!(refused("[web]\nh1 stray\n", Format::Ini).starts_with("line 2: \"stray\""));
        assert!(refused("[web:hosts2]\n", Format::Ini).contains(":hosts2"));
        assert!(refused("[a:children]\nb\n[b:children]\na\n[b]\nh\n", Format::Ini).contains("own ancestors"));
        assert!(refused("[1, 2]", Format::Yaml).contains("mapping of groups"));
        assert!(refused(": : :", Format::Yaml).starts_with("not YAML"));
        assert!(refused("{\"web\": [1.5, {}]}", Format::Json).contains("not a string"));
        assert!(refused("[]", Format::Json).contains("object of groups"));
        assert!(refused(&format!("{}{}", "[".repeat(100), "]".repeat(100)), Format::Json).contains("deeper"));
    }

    #[test]
    fn validation_names_the_host_and_field() {
        let host = |name: &str, address: &str| InventoryHost {
            name: name.into(),
            address: address.into(),
            port: 22,
            user: String::new(),
            credential: Some("c".into()),
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
