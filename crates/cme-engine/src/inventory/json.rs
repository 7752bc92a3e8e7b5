//! The JSON `ansible-inventory --list` prints (and dynamic inventory scripts answer):
//! an object of groups, each `{"hosts": [...], "vars": {...}, "children": [...]}` or, in
//! the older script form, a list of hosts; `_meta.hostvars` holds each host's variables.
//! Every dynamic inventory plugin (aws_ec2, gcp_compute, azure_rm, vmware, netbox) prints
//! this, so each is a source: `ansible-inventory -i aws_ec2.yml --list | cme inventories
//! import -`. Host names are taken as written (no ranges: the output is expanded already).

use super::model::Model;
use super::var::{Var, Vars};

/// How deep the document may nest (serde_json's own limit is 128).
const MAX_DEPTH: usize = 64;

pub(super) fn read(text: &str, model: &mut Model) -> Result<(), String> {
    check_depth(text)?;
    let root: Var = serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| format!("not JSON: {e}"))?;
    let Var::Map(root) = root else {
        return Err("ansible-inventory JSON is an object of groups (with _meta.hostvars)".into());
    };
    let mut meta = None;
    for (name, body) in root {
        if name == "_meta" {
            meta = Some(body);
            continue;
        }
        let name = name.as_str();
        model.declare(name)?;
        match body {
            Var::List(hosts) => add_hosts(model, name, &hosts)?,
            Var::Map(group) => {
                for (key, value) in group {
                    match (key.as_str(), value) {
                        ("hosts", Var::List(hosts)) => add_hosts(model, name, &hosts)?,
                        ("children", Var::List(children)) => {
                            for child in children {
                                let Var::Text(child) = child else {
                                    return Err(format!("group {name}: a child group name is not a string"));
                                };
                                model.add_child(name, &child)?;
                            }
                        }
                        ("vars", vars @ Var::Map(_)) => {
                            model.add_group_vars(name, vars.into_vars().unwrap_or_default())?
                        }
                        (_, Var::Null) => {}
                        (key, _) => model.note(name, format!("key {key:?} ignored (hosts, vars, children)"))?,
                    }
                }
            }
            Var::Null => {}
            _ => model.note(name, "not a list of hosts nor an object".into())?,
        }
    }
    if let Some(Var::Map(meta)) = meta {
        for (key, value) in meta {
            if key != "hostvars" {
                continue;
            }
            match value {
                Var::Null => {}
                Var::Map(hostvars) => {
                    for (host, vars) in hostvars {
                        let vars: Vars =
                            vars.into_vars().ok_or_else(|| format!("_meta.hostvars.{host} is not an object"))?;
                        model.add_host_vars(&host, vars)?;
                    }
                }
                _ => return Err("_meta.hostvars is not an object of hosts".into()),
            }
        }
    }
    Ok(())
}

fn add_hosts(model: &mut Model, group: &str, hosts: &[Var]) -> Result<(), String> {
    for host in hosts {
        let host = match host {
            Var::Text(s) => s.clone(),
            Var::Number(n) => n.to_string(),
            _ => return Err(format!("group {group}: a host name is not a string")),
        };
        if host.is_empty() {
            return Err(format!("group {group}: a host name is empty"));
        }
        model.add_host(group, &host, Vars::new())?;
    }
    Ok(())
}

/// Refuses nesting past [`MAX_DEPTH`] in one linear pass, before parsing.
fn check_depth(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("the document nests deeper than {MAX_DEPTH} levels"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}
