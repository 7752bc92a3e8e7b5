//! Ansible's YAML inventory format, as its `yaml` inventory plugin reads it: the document
//! is a mapping of groups; a group has `hosts` (host patterns, each with its variables),
//! `vars` and `children` (groups, defined there or anywhere else: a group named twice is
//! one group, its parts merged). Merge keys (`<<: *defaults`) apply in every mapping.
//! Unknown keys in a group are ignored (and said, if the group ends without hosts), as
//! Ansible ignores them with a warning; Vault-encrypted variables (`!vault |`) are left
//! out.

use serde_norway::{Mapping, Value as Yaml};

use super::model::Model;
use super::var::{Var, Vars};

/// How deep `children` may nest (the YAML reader bounds nesting too; this keeps the
/// recursion's own bound next to it).
const MAX_GROUP_DEPTH: usize = 32;

pub(super) fn read(text: &str, model: &mut Model) -> Result<(), String> {
    let root = crate::bounded::yaml(text.trim_start_matches('\u{feff}')).map_err(|e| format!("not YAML: {e}"))?;
    let groups = match root {
        Yaml::Mapping(m) => merged(&m),
        Yaml::Null => Mapping::new(),
        _ => return Err("a YAML inventory is a mapping of groups (e.g. all: {children: ...})".into()),
    };
    for (name, body) in &groups {
        let name = scalar(name).ok_or("a group name is not a string")?;
        group(model, &name, body, 0)?;
    }
    Ok(())
}

fn group(model: &mut Model, name: &str, body: &Yaml, depth: usize) -> Result<(), String> {
    if depth > MAX_GROUP_DEPTH {
        return Err(format!("group {name}: children nest deeper than {MAX_GROUP_DEPTH} levels"));
    }
    model.declare(name)?;
    let body = match body {
        Yaml::Null => return Ok(()),
        Yaml::Mapping(m) => merged(m),
        _ => return model.note(name, "its body is not a mapping of hosts, vars and children".into()),
    };
    for (key, value) in &body {
        match scalar(key).as_deref() {
            Some("vars") => model.add_group_vars(name, vars(&format!("group {name} vars"), value)?)?,
            Some("hosts") => match value {
                Yaml::Null => {}
                Yaml::Mapping(hosts) => {
                    for (pattern, host_vars) in &merged(hosts) {
                        let pattern =
                            scalar(pattern).ok_or_else(|| format!("group {name}: a host name is not a string"))?;
                        let host_vars = vars(&format!("host {pattern}"), host_vars)?;
                        model.add_pattern(name, &pattern, &host_vars).map_err(|e| format!("group {name}: {e}"))?;
                    }
                }
                _ => model.note(name, "hosts is not a mapping of host names (a list is INI's habit)".into())?,
            },
            Some("children") => match value {
                Yaml::Null => {}
                Yaml::Mapping(children) => {
                    for (child, child_body) in &merged(children) {
                        let child =
                            scalar(child).ok_or_else(|| format!("group {name}: a child group name is not a string"))?;
                        model.add_child(name, &child)?;
                        group(model, &child, child_body, depth + 1)?;
                    }
                }
                _ => model.note(name, "children is not a mapping of groups".into())?,
            },
            other => model.note(name, format!("key {:?} ignored (hosts, vars, children)", other.unwrap_or("?")))?,
        }
    }
    Ok(())
}

/// A mapping with its merge keys applied: the keys of `<<`'s mapping (or of each mapping
/// of its list, earlier ones first) that the mapping does not set itself.
fn merged(mapping: &Mapping) -> Mapping {
    let Some(merge) = mapping.get("<<") else { return mapping.clone() };
    let mut out = Mapping::new();
    let sources: Vec<&Mapping> = match merge {
        Yaml::Mapping(m) => vec![m],
        Yaml::Sequence(items) => items.iter().filter_map(Yaml::as_mapping).collect(),
        _ => Vec::new(),
    };
    for source in sources {
        for (k, v) in source {
            if !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in mapping {
        if k.as_str() != Some("<<") {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A host's or group's variables: a mapping (or nothing), nested values kept.
fn vars(owner: &str, value: &Yaml) -> Result<Vars, String> {
    match value {
        Yaml::Null => Ok(Vars::new()),
        Yaml::Mapping(m) => Ok(var(&Yaml::Mapping(m.clone())).into_vars().unwrap_or_default()),
        _ => Err(format!("{owner}: variables must be a mapping")),
    }
}

/// A YAML value as a variable: keys that are not scalars are left out, and so are
/// tagged values (Ansible Vault's `!vault |` ciphertext: cme cannot read it, and it is
/// not a tag to filter on).
fn var(value: &Yaml) -> Var {
    match value {
        Yaml::Null | Yaml::Tagged(_) => Var::Null,
        Yaml::Bool(b) => Var::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Var::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Var::Number(u.into())
            } else {
                n.as_f64().and_then(serde_json::Number::from_f64).map_or(Var::Null, Var::Number)
            }
        }
        Yaml::String(s) => Var::Text(s.clone()),
        Yaml::Sequence(items) => Var::List(items.iter().map(var).collect()),
        Yaml::Mapping(m) => Var::Map(
            merged(m)
                .iter()
                .filter(|(_, v)| !matches!(v, Yaml::Tagged(_)))
                .filter_map(|(k, v)| Some((scalar(k)?, var(v))))
                .collect(),
        ),
    }
}

/// A key as text: strings, numbers (integer host names) and booleans.
fn scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
