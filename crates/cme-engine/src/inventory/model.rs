//! An Ansible inventory as Ansible holds it once a source is read: groups with their own
//! hosts, variables and children (named from anywhere in the source), and each host's own
//! variables. [`Model::resolve`] turns it into cme inventories the way Ansible resolves
//! variables:
//!
//! * every group that is nobody's child is a child of `all`; a host in no group is in
//!   `ungrouped`;
//! * a group holds its own hosts and every descendant's;
//! * a host's variables are merged from every group holding it, shallowest first (`all`,
//!   then parents, then children), groups of equal depth by `ansible_group_priority`, then
//!   by name; the host's own variables win over all of them.

use std::collections::{BTreeMap, BTreeSet};

use super::var::{Var, Vars};
use super::{InventoryHost, MAX_HOSTS};

/// The most groups one source may define.
pub const MAX_GROUPS: usize = 10_000;

/// The most (host, group) memberships resolution builds: a bound on its work and memory
/// whatever the shape of the group tree.
pub const MAX_MEMBERSHIPS: usize = 1_000_000;

/// The most variable assignments resolution makes (each group variable once per host of
/// the group, each host variable once): a bound on its time whatever the shape.
pub const MAX_MERGES: usize = 20_000_000;

/// The most bytes of hosts (names, addresses, tags) the resolved inventories hold between
/// them, a host counted once per group holding it: group variables repeat on every host,
/// so a small source could otherwise resolve to gigabytes.
pub const MAX_RESOLVED_BYTES: usize = 32 << 20;

/// The most tags one host keeps; further variables are left out.
pub const MAX_TAGS: usize = 256;

/// How deep nested variables are flattened into dotted tags.
const MAX_TAG_DEPTH: usize = 16;

#[derive(Debug, Default)]
struct Group {
    hosts: BTreeSet<String>,
    vars: Vars,
    children: BTreeSet<String>,
    /// Why parts of the group's source were ignored, shown if the group is skipped.
    notes: Vec<String>,
}

/// The inventory read from one source.
#[derive(Debug, Default)]
pub(super) struct Model {
    groups: BTreeMap<String, Group>,
    hosts: BTreeMap<String, Vars>,
}

/// One group of the source as it resolved: its hosts, or why it cannot be an inventory.
pub(super) type Resolved = BTreeMap<String, Result<Vec<InventoryHost>, String>>;

impl Model {
    fn group(&mut self, name: &str) -> Result<&mut Group, String> {
        if !self.groups.contains_key(name) && self.groups.len() >= MAX_GROUPS {
            return Err(format!("the inventory defines more than {MAX_GROUPS} groups"));
        }
        Ok(self.groups.entry(name.to_string()).or_default())
    }

    /// Declares a group (it may stay empty).
    pub(super) fn declare(&mut self, group: &str) -> Result<(), String> {
        self.group(group).map(|_| ())
    }

    /// Puts `host` in `group`; its variables merge into those it already has (a later
    /// definition's win, as in Ansible).
    pub(super) fn add_host(&mut self, group: &str, host: &str, vars: Vars) -> Result<(), String> {
        self.group(group)?.hosts.insert(host.to_string());
        self.add_host_vars(host, vars)
    }

    /// Puts every host a pattern names (`www[01:50]:2222`) in `group` with `vars`; a port
    /// in the pattern is the host's `ansible_port` unless `vars` set one.
    pub(super) fn add_pattern(&mut self, group: &str, pattern: &str, vars: &Vars) -> Result<(), String> {
        for host in super::patterns::expand(pattern)? {
            let mut host_vars = Vars::new();
            if let Some(port) = host.port {
                host_vars.insert("ansible_port".into(), Var::from(port));
            }
            host_vars.extend(vars.clone());
            self.add_host(group, &host.name, host_vars)?;
        }
        Ok(())
    }

    /// Sets a host's own variables (a host in no group is `ungrouped`).
    pub(super) fn add_host_vars(&mut self, host: &str, vars: Vars) -> Result<(), String> {
        if !self.hosts.contains_key(host) && self.hosts.len() >= MAX_HOSTS {
            return Err(format!("the inventory has more than {MAX_HOSTS} hosts"));
        }
        self.hosts.entry(host.to_string()).or_default().extend(vars);
        Ok(())
    }

    pub(super) fn add_child(&mut self, parent: &str, child: &str) -> Result<(), String> {
        if parent == child {
            return Err(format!("group {parent} is its own child"));
        }
        self.group(child)?;
        self.group(parent)?.children.insert(child.to_string());
        Ok(())
    }

    pub(super) fn add_group_vars(&mut self, group: &str, vars: Vars) -> Result<(), String> {
        self.group(group)?.vars.extend(vars);
        Ok(())
    }

    /// Remembers that part of a group's source was ignored, and why.
    pub(super) fn note(&mut self, group: &str, note: String) -> Result<(), String> {
        self.group(group)?.notes.push(note);
        Ok(())
    }

    /// Every group, with the hosts it holds (its own and its descendants') and each host's
    /// merged variables; `credential` is given to hosts that name none. Fails on a cycle of
    /// children or a tree too large to resolve.
    pub(super) fn resolve(mut self, credential: Option<&str>) -> Result<Resolved, String> {
        self.group("all")?;
        let grouped: BTreeSet<&String> = self.groups.values().flat_map(|g| &g.hosts).collect();
        let ungrouped: Vec<String> = self.hosts.keys().filter(|h| !grouped.contains(h)).cloned().collect();
        for host in ungrouped {
            self.group("ungrouped")?.hosts.insert(host);
        }
        let children: BTreeSet<String> = self.groups.values().flat_map(|g| g.children.iter().cloned()).collect();
        let tops: Vec<String> = self.groups.keys().filter(|g| *g != "all" && !children.contains(*g)).cloned().collect();
        for top in tops {
            self.add_child("all", &top)?;
        }
        let order = self.topological()?;
        let depth = self.depths(&order);
        let members = self.members(&order)?;

        // Each host's groups (hosts by their index among all hosts, in name order), in the
        // order their variables apply.
        let names: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
        let mut host_groups: Vec<Vec<&str>> = vec![Vec::new(); names.len()];
        for (group, hosts) in &members {
            for host in hosts {
                host_groups[*host as usize].push(group.as_str());
            }
        }
        let priority =
            |group: &str| self.groups[group].vars.get("ansible_group_priority").and_then(number).unwrap_or(1);
        let mut hosts: Vec<Option<Result<InventoryHost, String>>> = vec![None; names.len()];
        let mut merges = 0usize;
        let mut bytes = 0usize;
        for (index, mut groups) in host_groups.into_iter().enumerate() {
            if groups.is_empty() {
                continue;
            }
            let host = names[index];
            groups.sort_by_key(|g| (depth[*g], priority(g), *g));
            let own = self.hosts.get(host);
            merges += groups.iter().map(|g| self.groups[*g].vars.len()).sum::<usize>() + own.map_or(0, Vars::len);
            if merges > MAX_MERGES {
                return Err(format!(
                    "the inventory's variables, applied to each host of their groups, exceed {MAX_MERGES} assignments"
                ));
            }
            let mut vars: Merged = BTreeMap::new();
            for (key, value) in groups.iter().flat_map(|g| &self.groups[*g].vars).chain(own.into_iter().flatten()) {
                vars.insert(key, value);
            }
            let resolved = host_from(host, &vars, credential);
            // Counted once per group that will hold a copy of it.
            bytes = bytes.saturating_add(resolved.as_ref().map_or(0, size_of).saturating_mul(groups.len()));
            if bytes > MAX_RESOLVED_BYTES {
                return Err(format!(
                    "the inventory resolves to more than {} MiB of hosts and tags (group variables repeat on each host of each group)",
                    MAX_RESOLVED_BYTES >> 20
                ));
            }
            hosts[index] = Some(resolved);
        }

        let mut resolved = Resolved::new();
        for (name, held) in &members {
            let group = &self.groups[name.as_str()];
            let outcome = if held.is_empty() {
                let mut why = "no hosts".to_string();
                if !group.notes.is_empty() {
                    why = format!("{why} ({})", group.notes.join("; "));
                }
                Err(why)
            } else {
                held.iter()
                    .map(|h| hosts[*h as usize].clone().expect("every member host is resolved"))
                    .collect::<Result<Vec<_>, _>>()
            };
            resolved.insert(name.clone(), outcome);
        }
        Ok(resolved)
    }

    /// Groups ordered parents before children (Kahn's algorithm); a cycle is refused.
    fn topological(&self) -> Result<Vec<String>, String> {
        let mut parents: BTreeMap<&str, usize> = self.groups.keys().map(|g| (g.as_str(), 0)).collect();
        for group in self.groups.values() {
            for child in &group.children {
                *parents.get_mut(child.as_str()).expect("declared") += 1;
            }
        }
        let mut ready: Vec<&str> = parents.iter().filter(|(_, n)| **n == 0).map(|(g, _)| *g).collect();
        let mut order = Vec::with_capacity(self.groups.len());
        while let Some(group) = ready.pop() {
            order.push(group.to_string());
            for child in &self.groups[group].children {
                let n = parents.get_mut(child.as_str()).expect("declared");
                *n -= 1;
                if *n == 0 {
                    ready.push(child);
                }
            }
        }
        if order.len() < self.groups.len() {
            let stuck: Vec<&str> = parents.iter().filter(|(_, n)| **n > 0).map(|(g, _)| *g).take(5).collect();
            return Err(format!("groups {} are their own ancestors (a cycle of children)", stuck.join(", ")));
        }
        Ok(order)
    }

    /// Each group's depth: the longest chain of parents above it (`all` is 0).
    fn depths<'a>(&'a self, order: &'a [String]) -> BTreeMap<&'a str, usize> {
        let mut depth: BTreeMap<&str, usize> = order.iter().map(|g| (g.as_str(), 0)).collect();
        for group in order {
            let here = depth[group.as_str()];
            for child in &self.groups[group].children {
                let d = depth.get_mut(child.as_str()).expect("declared");
                *d = (*d).max(here + 1);
            }
        }
        depth
    }

    /// Each group's hosts, its descendants' included, children resolved first.
    /// Hosts are their index among all hosts (in name order): a million memberships take
    /// 4 MB, not a million copies of names.
    fn members(&self, order: &[String]) -> Result<BTreeMap<String, Vec<u32>>, String> {
        let index: std::collections::HashMap<&str, u32> =
            self.hosts.keys().enumerate().map(|(i, h)| (h.as_str(), i as u32)).collect();
        let mut members: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut total = 0usize;
        for group in order.iter().rev() {
            let mut held: Vec<u32> = self.groups[group].hosts.iter().map(|h| index[h.as_str()]).collect();
            // Each child's list was counted in `total`: this one is no longer than all of them.
            for child in &self.groups[group].children {
                held.extend_from_slice(&members[child]);
            }
            held.sort_unstable();
            held.dedup();
            total += held.len();
            if total > MAX_MEMBERSHIPS {
                return Err(format!(
                    "the groups hold more than {MAX_MEMBERSHIPS} hosts between them (counting each group's descendants)"
                ));
            }
            members.insert(group.clone(), held);
        }
        Ok(members)
    }
}

fn number(value: &Var) -> Option<i64> {
    match value {
        Var::Number(n) => n.as_i64(),
        Var::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A host's variables once merged, borrowed from the groups and host that set them.
type Merged<'a> = BTreeMap<&'a str, &'a Var>;

/// About how many bytes a host takes in memory and stored.
fn size_of(host: &InventoryHost) -> usize {
    64 + host.name.len()
        + host.address.len()
        + host.user.len()
        + host.credential.as_ref().map_or(0, String::len)
        + host.tags.iter().map(|(k, v)| k.len() + v.len() + 32).sum::<usize>()
}

/// The first of `names` set, as text.
fn first_text(vars: &Merged, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| vars.get(*n)).and_then(|v| v.text())
}

/// The cme host Ansible's variables describe: `ansible_host`, `ansible_port` and
/// `ansible_user` (or their legacy `ansible_ssh_*` names), `cme_credential` (else
/// `credential`), and every other variable that is neither `ansible_*` nor `cme_*` as a tag.
fn host_from(name: &str, vars: &Merged, credential: Option<&str>) -> Result<InventoryHost, String> {
    let port = match first_text(vars, &["ansible_port", "ansible_ssh_port"]) {
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("host {name}: ansible_port {p:?} is not a port"))?,
        None => 22,
    };
    let mut tags = BTreeMap::new();
    for (key, value) in vars {
        if !key.starts_with("ansible_") && !key.starts_with("cme_") {
            if tags.len() >= MAX_TAGS {
                break;
            }
            flatten(key, value, 0, &mut tags);
        }
    }
    Ok(InventoryHost {
        name: name.to_string(),
        address: first_text(vars, &["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| name.to_string()),
        port,
        user: first_text(vars, &["ansible_user", "ansible_ssh_user"]).unwrap_or_default(),
        credential: first_text(vars, &["cme_credential"]).or_else(|| credential.map(str::to_string)),
        tags,
    })
}

/// Adds `value` as tags under `key`: scalars as text, mappings and lists as dotted keys
/// (`tags.Role`, `security_groups.0.group_id`). Tags that would not fit a host's limits
/// (key or value too long, too many) are left out.
fn flatten(key: &str, value: &Var, depth: usize, tags: &mut BTreeMap<String, String>) {
    if tags.len() >= MAX_TAGS || key.is_empty() || key.len() > 128 || depth > MAX_TAG_DEPTH {
        return;
    }
    let text = match value {
        Var::Map(map) => {
            for (k, v) in map {
                flatten(&format!("{key}.{k}"), v, depth + 1, tags);
            }
            return;
        }
        Var::List(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{key}.{i}"), v, depth + 1, tags);
            }
            return;
        }
        Var::Text(s) => s.clone(),
        Var::Number(n) => n.to_string(),
        Var::Bool(b) => b.to_string(),
        Var::Null => String::new(),
    };
    if text.len() <= 256 {
        tags.insert(key.to_string(), text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(value: serde_json::Value) -> Vars {
        serde_json::from_value::<Var>(value).unwrap().into_vars().unwrap()
    }

    #[test]
    fn child_groups_win_over_parents_and_hosts_over_groups() {
        let mut model = Model::default();
        model.add_group_vars("all", vars(json!({"env": "prod", "tier": "any"}))).unwrap();
        model.add_child("web", "web_eu").unwrap();
        model.add_group_vars("web", vars(json!({"tier": "frontend", "zone": "x"}))).unwrap();
        model.add_group_vars("web_eu", vars(json!({"zone": "eu"}))).unwrap();
        model.add_host("web_eu", "w1", vars(json!({"zone": "eu-1"}))).unwrap();
        model.add_host("web_eu", "w2", Vars::new()).unwrap();
        let resolved = model.resolve(Some("fleet")).unwrap();
        let web = resolved["web"].as_ref().unwrap();
        assert_eq!(web.len(), 2, "a parent holds its children's hosts");
        assert_eq!(web[0].tags["zone"], "eu-1");
        assert_eq!(web[1].tags["zone"], "eu");
        assert_eq!(web[1].tags["tier"], "frontend");
        assert_eq!(web[1].tags["env"], "prod");
        assert_eq!(web[1].credential.as_deref(), Some("fleet"));
        assert_eq!(resolved["all"].as_ref().unwrap().len(), 2);
    }

    #[test]
    fn equal_depth_groups_apply_by_priority_then_name() {
        let mut model = Model::default();
        model.add_group_vars("a", vars(json!({"role": "a", "ansible_group_priority": 10}))).unwrap();
        model.add_group_vars("b", vars(json!({"role": "b"}))).unwrap();
        model.add_group_vars("c", vars(json!({"colour": "c"}))).unwrap();
        model.add_group_vars("d", vars(json!({"colour": "d"}))).unwrap();
        for g in ["a", "b", "c", "d"] {
            model.add_host(g, "h", Vars::new()).unwrap();
        }
        let resolved = model.resolve(None).unwrap();
        let h = &resolved["all"].as_ref().unwrap()[0];
        assert_eq!(h.tags["role"], "a", "priority 10 applies after b's default 1");
        assert_eq!(h.tags["colour"], "d", "by name otherwise");
        assert_eq!(h.credential, None);
    }

    #[test]
    fn nested_variables_become_dotted_tags_and_legacy_names_work() {
        let mut model = Model::default();
        model
            .add_host(
                "g",
                "i-1",
                vars(json!({
                    "ansible_ssh_host": "10.0.0.9", "ansible_ssh_port": "2200", "ansible_ssh_user": "ec2-user",
                    "tags": {"Role": "web"}, "security_groups": [{"group_id": "sg-1"}], "x": "y".repeat(300)
                })),
            )
            .unwrap();
        let h = &model.resolve(None).unwrap()["g"].clone().unwrap()[0];
        assert_eq!((h.address.as_str(), h.port, h.user.as_str()), ("10.0.0.9", 2200, "ec2-user"));
        assert_eq!(h.tags["tags.Role"], "web");
        assert_eq!(h.tags["security_groups.0.group_id"], "sg-1");
        assert!(!h.tags.contains_key("x"), "a value longer than a tag holds is left out");
    }

    #[test]
    fn a_cycle_of_children_is_refused() {
        let mut model = Model::default();
        model.add_child("a", "b").unwrap();
        model.add_child("b", "a").unwrap();
        model.add_host("a", "h", Vars::new()).unwrap();
        assert!(model.resolve(None).unwrap_err().contains("their own ancestors"));
    }

    #[test]
    fn empty_groups_are_resolved_as_skipped_saying_why() {
        let mut model = Model::default();
        model.declare("empty").unwrap();
        model.note("empty", "key hostz ignored".into()).unwrap();
        model.add_host("web", "h", Vars::new()).unwrap();
        let resolved = model.resolve(None).unwrap();
        assert_eq!(resolved["empty"], Err("no hosts (key hostz ignored)".into()));
    }
}
