//! Tidy checks in the manner of rust-analyzer's: ARCHITECTURE.md stays true of the code.
//! Every path its layout names exists, every type its code map names is found in the file
//! it names, the crates depend on each other only as its invariants allow (from `cargo
//! metadata`), and the SDK's contract is the top-level `wit/`, not a copy that can drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

/// `a/{b,c}/` as `a/b/` and `a/c/`.
fn expand(token: &str) -> Vec<String> {
    match (token.find('{'), token.find('}')) {
        (Some(open), Some(close)) => token[open + 1..close]
            .split(',')
            .flat_map(|alt| expand(&format!("{}{alt}{}", &token[..open], &token[close + 1..])))
            .collect(),
        _ => vec![token.to_string()],
    }
}

/// The paths of the layout block: a line's leading names (`name/`, `file.ext`) under the
/// directory of the line above it with less indentation.
fn layout_paths() -> Vec<String> {
    let text = architecture();
    let block = text.split("## Layout").nth(1).unwrap().split("```").nth(1).unwrap();
    let mut parents: Vec<(usize, String)> = Vec::new();
    let mut paths = Vec::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        // Continuation lines of a description are indented past the name column.
        if indent >= 24 {
            continue;
        }
        parents.retain(|(level, _)| *level < indent);
        let prefix = parents.last().map(|(_, dir)| dir.clone()).unwrap_or_default();
        let mut names = Vec::new();
        for token in line.split_whitespace() {
            let is_path = token.ends_with('/') || token.contains('.') && !token.contains('`') && !token.contains(',');
            if !is_path || token.starts_with('(') || token.starts_with("...") {
                break;
            }
            names.push(token.to_string());
        }
        for name in &names {
            for path in expand(name) {
                paths.push(format!("{prefix}{path}"));
            }
        }
        if let [single] = names.as_slice()
            && single.ends_with('/')
            && !single.contains('{')
        {
            parents.push((indent, format!("{prefix}{single}")));
        }
    }
    paths
}

#[test]
fn every_path_the_layout_names_exists() {
    let paths = layout_paths();
    assert!(paths.len() > 40, "the layout block parsed: {paths:?}");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| {
            let full = root().join(p.as_str());
            if p.contains('*') {
                let (dir, pattern) = p.rsplit_once('/').unwrap();
                let (start, end) = pattern.split_once('*').unwrap();
                !std::fs::read_dir(root().join(dir)).unwrap().flatten().any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with(start) && name.ends_with(end)
                })
            } else {
                !full.exists()
            }
        })
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's layout names paths that do not exist: {missing:?}");
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn every_type_the_code_map_names_is_in_the_file_it_names() {
    let text = architecture();
    let map = text.split("## Code map").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut problems = Vec::new();
    let mut rows = 0;
    for row in map.lines().filter(|l| l.starts_with("| `")) {
        rows += 1;
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (names, place) = (backticked(cells[1]), cells[2]);
        let krate = place.split_whitespace().next().unwrap_or_default().trim_end_matches(',');
        // Crates live in crates/, the project's tasks in xtask/.
        let src = match krate {
            "xtask" => root().join("xtask/src"),
            krate => root().join("crates").join(krate).join("src"),
        };
        if !src.is_dir() {
            problems.push(format!("{row}: no crate {krate}"));
            continue;
        }
        let files: Vec<PathBuf> = {
            let named = backticked(place);
            let all = sources(&src);
            if named.is_empty() {
                all
            } else {
                let mut chosen = Vec::new();
                for file in named {
                    let found: Vec<PathBuf> =
                        all.iter().filter(|p| p.to_string_lossy().ends_with(&format!("/{file}"))).cloned().collect();
                    if found.is_empty() {
                        problems.push(format!("{krate}: no file {file}"));
                    }
                    chosen.extend(found);
                }
                chosen
            }
        };
        let text: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
        for name in names {
            let word = name.rsplit("::").next().unwrap();
            let is_module = files.iter().any(|f| f.file_stem().is_some_and(|stem| stem == word));
            let found = is_module
                || text.match_indices(word).any(|(at, _)| {
                    let before = text[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                    let after =
                        text[at + word.len()..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                    before && after
                });
            if !found {
                problems.push(format!("`{name}` is not in {krate} {}", cells[2]));
            }
        }
    }
    assert!(rows > 40, "the code map parsed ({rows} rows)");
    assert!(problems.is_empty(), "ARCHITECTURE.md's code map is stale:\n{}", problems.join("\n"));
}

/// The workspace crates each crate depends on (normal and build dependencies).
fn internal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let members: BTreeSet<String> =
        metadata["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|name| members.contains(name))
                .collect();
            (package["name"].as_str().unwrap().to_string(), deps)
        })
        .collect()
}

/// The dependencies ARCHITECTURE.md's invariants allow between workspace crates: lower
/// layers never import upper ones, and no host crate uses the guest SDK.
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "cme",
        &[
            "cme-api",
            "cme-cloud",
            "cme-engine",
            "cme-grant",
            "cme-model",
            "cme-plugins",
            "cme-runtime",
            "cme-secrets",
            "cme-store",
            "cme-webhooks",
        ],
    ),
    ("cme-api", &["cme-engine", "cme-grant", "cme-model", "cme-secrets"]),
    ("cme-store", &["cme-engine", "cme-model", "cme-secrets"]),
    ("cme-webhooks", &["cme-engine", "cme-model", "cme-secrets"]),
    ("cme-runtime", &["cme-cloud", "cme-grant", "cme-model", "cme-secrets"]),
    ("cme-engine", &["cme-grant", "cme-model", "cme-secrets"]),
    ("cme-cloud", &["cme-grant", "cme-model"]),
    ("cme-grant", &["cme-model"]),
    ("cme-secrets", &["cme-model"]),
    ("cme-model", &[]),
    ("cme-plugins", &[]),
    // Guest side: only plugins (their own workspace) depend on the SDK.
    ("cme-plugin-sdk", &[]),
    ("cme-test-peers", &[]),
    // The bench starts test peers (a private sshd for the experiments row).
    ("xtask", &["cme-test-peers"]),
    // The bench's reference handler: actix-web alone.
    ("cme-bench-bare", &[]),
];

#[test]
fn crates_depend_on_each_other_only_as_the_architecture_allows() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> =
        ALLOWED.iter().map(|(name, deps)| (*name, deps.iter().copied().collect())).collect();
    let mut problems = Vec::new();
    for (krate, deps) in internal_dependencies() {
        let Some(may) = allowed.get(krate.as_str()) else {
            problems.push(format!("{krate} is not in the allowed graph: add it, and to ARCHITECTURE.md"));
            continue;
        };
        for dep in deps {
            if !may.contains(dep.as_str()) {
                problems.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    assert!(problems.is_empty(), "dependencies the architecture does not allow:\n{}", problems.join("\n"));
}

#[test]
fn the_sdks_contract_is_the_top_level_wit_not_a_copy() {
    let top = root().join("wit");
    let sdk = root().join("crates/cme-plugin-sdk/wit");
    assert!(sdk.symlink_metadata().unwrap().file_type().is_symlink(), "crates/cme-plugin-sdk/wit must link to wit/");
    assert_eq!(sdk.canonicalize().unwrap(), top.canonicalize().unwrap());
    for binding in ["crates/cme-runtime/src/bindings.rs"] {
        let text = std::fs::read_to_string(root().join(binding)).unwrap();
        for path in text.split("path: \"").skip(1).map(|rest| rest.split('"').next().unwrap()) {
            let resolved = root().join("crates/cme-runtime").join(path).canonicalize().unwrap();
            assert!(resolved.starts_with(top.canonicalize().unwrap()), "{binding} builds from {path}, outside wit/");
        }
    }
}

#[test]
fn the_hosts_shared_rules_are_the_sdks_own_files() {
    let model = std::fs::read_to_string(root().join("crates/cme-model/src/lib.rs")).unwrap();
    for rule in ["time.rs", "pattern.rs", "names.rs"] {
        let path = format!("#[path = \"../../cme-plugin-sdk/src/{rule}\"]");
        assert!(model.contains(&path), "cme-model compiles the SDK's {rule} ({path}), no copy of it");
        assert!(!root().join("crates/cme-model/src").join(rule).exists(), "a copy of {rule} in cme-model can drift");
    }
}

#[test]
fn no_storage_port_has_more_than_fifteen_methods() {
    let text = std::fs::read_to_string(root().join("crates/cme-engine/src/storage.rs")).unwrap();
    let mut ports = 0;
    for block in text.split("\npub trait ").skip(1) {
        let name = block.split(':').next().unwrap().trim().to_string();
        let body = &block[..block.find("\n}\n").unwrap_or(block.len())];
        let methods = body
            .lines()
            .filter(|l| l.trim_start().starts_with("async fn ") || l.trim_start().starts_with("fn "))
            .count();
        if name != "Storage" {
            ports += 1;
            assert!(methods <= 15, "the storage port {name} has {methods} methods: split it by concern");
        }
    }
    assert!(ports >= 7, "the storage ports parsed ({ports})");
}

/// `Result<_, String>` across a crate's edge says nothing a caller can match on: public
/// functions of the host crates answer typed errors (`thiserror`).
#[test]
fn no_public_function_of_a_host_crate_answers_a_string_error() {
    let mut found = Vec::new();
    for krate in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        if krate.file_name() == "cme-plugin-sdk" || krate.file_name() == "cme-model" {
            continue; // the guest SDK's API (and the files the model compiles from it)
        }
        for file in sources(&krate.path().join("src")) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (number, line) in text.lines().enumerate() {
                let line = line.trim_start();
                let answers_string = line.contains("-> Result<")
                    && line.trim_end().trim_end_matches('{').trim_end().ends_with(", String>");
                if (line.starts_with("pub fn ") || line.starts_with("pub async fn ")) && answers_string {
                    found.push(format!("{}:{}: {line}", file.strip_prefix(root()).unwrap().display(), number + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "public functions answering Result<_, String>:\n{}", found.join("\n"));
}
