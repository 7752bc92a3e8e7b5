//! Client subcommands: talk to a running engine over its API and print readable tables.

use cme_model::Locked;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

/// True with `--output json`: the human output is silent and each command prints the
/// documents it got, as JSON.
pub(crate) static JSON: AtomicBool = AtomicBool::new(false);

/// A line of human output (silent with `--output json`).
macro_rules! say {
    ($($arg:tt)*) => {
        if !JSON.load(Ordering::Relaxed) {
            println!($($arg)*);
        }
    };
}

/// How results are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// Tables and sentences for people.
    #[default]
    Table,
    /// The API's documents, as JSON (a list command: every item of every page).
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Target {
    /// The engine's base URL.
    #[arg(long, env = "CME_URL", default_value = "http://127.0.0.1:5000", global = true)]
    url: String,
    /// API token.
    #[arg(long, env = "CME_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// How to print results.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Seconds to wait for the engine's answer.
    #[arg(long, default_value_t = 30, global = true)]
    timeout: u64,
    /// Items per request when a list is read page by page (1..=1000).
    #[arg(long, default_value_t = 500, global = true, value_parser = clap::value_parser!(u64).range(1..=1000))]
    page_size: u64,
}

#[derive(Subcommand, Debug)]
pub enum PlansCommand {
    /// List plans (with work left, or --all).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Create a plan from a JSON file ("-" for stdin).
    Create {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Then wait for the executors made with it, printing each outcome as it finishes
        /// (a recurring plan's first window can be long: Ctrl-C stops waiting, not the plan).
        #[arg(long)]
        wait: bool,
    },
    /// Show a plan and its executors.
    Show { id: String },
    /// Delete a plan (cancels its pending executors).
    Delete { id: String },
    /// Fire a plan once, now (refused while halted).
    Run { id: String },
    /// Pause a plan: its pending executors wait until it is resumed.
    Pause { id: String },
    /// Resume a paused plan.
    Resume { id: String },
    /// The firings a plan will make, with skipped ones and why: a stored plan (ID), or a
    /// plan body not yet created (-f FILE, "-" for stdin; its "seed" is kept).
    Forecast {
        /// A stored plan.
        #[arg(conflicts_with = "file", required_unless_present = "file")]
        id: Option<String>,
        /// A plan body to forecast without creating it.
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Start (RFC 3339, or without offset in the engine's zone) [default: now].
        #[arg(long)]
        from: Option<String>,
        /// End [default: a week after --from].
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CalendarsCommand {
    /// List calendars: kind, URL origin, last fetch, last error, blackouts.
    List,
    /// Subscribe to a calendar's iCal URL (Google's or Outlook's secret address); it is
    /// fetched now and again every --refresh-seconds.
    Subscribe {
        url: String,
        #[arg(long)]
        name: String,
        /// How often it is fetched again [default: 3600; at least 300].
        #[arg(long)]
        refresh_seconds: Option<u64>,
        /// Zone of all-day events and floating times [default: the file's X-WR-TIMEZONE,
        /// else the engine's].
        #[arg(long)]
        timezone: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        /// Free (TRANSP:TRANSPARENT) events become blackouts too.
        #[arg(long)]
        include_free: bool,
        /// Cancel the plans' running attacks when a blackout starts.
        #[arg(long)]
        stop_running: bool,
    },
    /// Delete a calendar and its blackouts.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum BlackoutsCommand {
    /// List blackouts.
    List,
    /// Add a blackout: two dates (one-off) or two wall times ("FRI 16:00" "MON 08:00"
    /// every week, "22:00" "06:00" every day).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        start: String,
        #[arg(long)]
        end: String,
        /// IANA zone of wall times and dates without offset [default: the engine's].
        #[arg(long)]
        timezone: Option<String>,
        /// Hold only this plan [default: every plan].
        #[arg(long)]
        plan: Option<String>,
        /// Cancel the plans' running attacks when it starts.
        #[arg(long)]
        stop_running: bool,
    },
    Show {
        id: String,
    },
    Delete {
        id: String,
    },
    /// Import an iCalendar (.ics) file as blackouts, one per event; importing the same
    /// --name again replaces them.
    Import {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// Zone of all-day events and floating times [default: the file's X-WR-TIMEZONE,
        /// else the engine's].
        #[arg(long)]
        timezone: Option<String>,
        #[arg(long)]
        plan: Option<String>,
        /// Free (TRANSP:TRANSPARENT) events become blackouts too.
        #[arg(long)]
        include_free: bool,
        /// Refuse the file if any event cannot be read (default: skip it, listed).
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum InventoriesCommand {
    /// List inventories and how many hosts each has.
    List,
    /// One inventory's hosts.
    Show { name: String },
    /// Import an Ansible inventory, INI, YAML or `ansible-inventory --list` JSON ("-":
    /// stdin): each group with hosts becomes (or replaces) the inventory of its name;
    /// groups that cannot are listed with why (admin).
    Import {
        file: PathBuf,
        /// ini, yaml or json (default: guessed from the text)
        #[arg(long)]
        format: Option<String>,
        /// The stored SSH credential of every host that names none (cme_credential).
        #[arg(long)]
        credential: Option<String>,
    },
    /// Create or replace an inventory from a JSON file `{"hosts": [...]}` ("-": stdin) (admin).
    Put { name: String, file: PathBuf },
    /// Delete an inventory (admin).
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
pub enum ExecutorsCommand {
    /// List executors (pending/running by default).
    List {
        /// true (finished), false (pending or running) or all.
        #[arg(long, default_value = "false")]
        executed: String,
        /// Only these statuses, comma-separated.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        plan: Option<String>,
    },
    /// Show an executor with its result and log.
    Show { id: String },
    /// Cancel a pending executor.
    Cancel { id: String },
    /// Move a pending executor to another date (RFC 3339; without offset in the engine's zone).
    Reschedule { id: String, date: String },
}

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// List SSH credentials (fingerprints, never keys).
    List,
    /// Store an SSH key: sealed at rest, shown only by fingerprint.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        user: String,
        /// The private key file (OpenSSH or PEM).
        #[arg(long)]
        key: PathBuf,
        /// Read the key's passphrase from this environment variable.
        #[arg(long)]
        passphrase_env: Option<String>,
        /// Token names and roles whose plans may use it (repeatable) [default: yours].
        #[arg(long = "may-use")]
        may_use: Vec<String>,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// Upload a component (.wasm); it stays pending until granted.
    Push {
        file: PathBuf,
        /// The sha256 you expect the engine to receive (hex).
        #[arg(long)]
        sha256: Option<String>,
        /// Sign it with this OpenSSH ed25519 private key (unencrypted; `ssh-keygen -t
        /// ed25519`); the engine must trust its public key ([registry] trusted_keys).
        #[arg(long, value_name = "KEY", conflicts_with = "signature")]
        sign: Option<PathBuf>,
        /// Send a signature made elsewhere (`ssh-keygen -Y sign -n cme-plugin -f KEY FILE`).
        #[arg(long, value_name = "FILE.sig")]
        signature: Option<PathBuf>,
    },
    /// List built-in and uploaded plugins.
    List,
    /// Show a plugin: refs, schema, requested and granted capabilities.
    Show {
        id: String,
    },
    /// Grant capabilities from a JSON file ("-" for stdin), e.g.
    /// {"http": {"urls": ["https://api.internal/*"]}}; approves and enables the plugin.
    Grant {
        id: String,
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Delete an uploaded plugin (refused while executors still to run use it).
    Delete {
        id: String,
    },
    /// Run a component here, without an engine or database: an attack runs (its
    /// capabilities real, within --grant; --dry-run records them), a planner plans the
    /// next 7 days, a probe checks. Prints its log, capability calls and result.
    Run(crate::local::RunArgs),
    /// Check a component offline as an upload is checked (size, world, imports, describe,
    /// schema, built-in names and refs); exits non-zero with the upload's message.
    Check {
        file: PathBuf,
    },
    /// Create a plugin project here (Rust, the SDK by version, a mock-host test, a grant
    /// and a plan to start from).
    New(crate::scaffold::NewArgs),
}

pub enum Request {
    Credentials(CredentialsCommand),
    /// The audit log, newest first: one page.
    Audit {
        page: u64,
        size: u64,
    },
    /// Whether the engine is halted, since when and why.
    HaltStatus,
    /// The webhooks and their deliveries.
    Webhooks,
    Plugins(PluginsCommand),
    Plans(PlansCommand),
    Executors(ExecutorsCommand),
    Blackouts(BlackoutsCommand),
    Calendars(CalendarsCommand),
    Inventories(InventoriesCommand),
    /// The undos attacks armed: pending ones first, then the latest finished.
    Undos,
    Halt(Option<String>),
    Resume,
}

pub fn run(target: Target, request: Request) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let client = Client::connect(target)?;
        match request {
            Request::Plugins(command) => plugins(&client, command).await?,
            Request::Blackouts(command) => blackouts(&client, command).await?,
            Request::Calendars(command) => calendars(&client, command).await?,
            Request::Inventories(command) => inventories(&client, command).await?,
            Request::Undos => {
                let rows = client
                    .all_pages("/api/1/undos/", &[("size", "1000".into())], "undos")
                    .await?
                    .iter()
                    .map(|u| {
                        vec![
                            cell(&u["id"]),
                            cell(&u["state"]),
                            cell(&u["due"]),
                            cell(&u["target"]),
                            cell(&u["command"]),
                            cell(&u["outcome"]),
                        ]
                    })
                    .collect();
                table(&["ID", "STATE", "DUE", "TARGET", "COMMAND", "OUTCOME"], rows);
            }
            Request::Credentials(command) => credentials(&client, command).await?,
            Request::Audit { page, size } => {
                let doc =
                    client.get_with("/api/1/audit/", &[("page", page.to_string()), ("size", size.to_string())]).await?;
                let rows = doc["_embedded"]["audit"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|e| {
                        vec![
                            cell(&e["at"]),
                            cell(&e["actor"]),
                            cell(&e["action"]),
                            cell(&e["target"]),
                            cell(&e["decision"]),
                        ]
                    })
                    .collect();
                table(&["AT", "ACTOR", "ACTION", "TARGET", "DECISION"], rows);
            }
            Request::Webhooks => {
                let doc = client.get("/api/1/webhooks/").await?;
                let rows = doc["_embedded"]["webhooks"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|w| {
                        let events = w["events"]
                            .as_array()
                            .map(|e| e.iter().map(cell).collect::<Vec<_>>().join(","))
                            .unwrap_or_default();
                        vec![
                            cell(&w["name"]),
                            cell(&w["url"]),
                            events,
                            cell(&w["pending"]),
                            cell(&w["delivered"]),
                            cell(&w["failed"]),
                            cell(&w["last_error"]),
                        ]
                    })
                    .collect();
                table(&["NAME", "URL", "EVENTS", "PENDING", "DELIVERED", "FAILED", "LAST ERROR"], rows);
            }
            Request::HaltStatus => {
                let doc = client.get("/api/1/halt").await?;
                say!("halted: {}", doc["halted"]);
                if doc["halted"] == true {
                    say!("since:  {}", cell(&doc["since"]));
                    say!("reason: {}", cell(&doc["reason"]));
                }
            }
            Request::Executors(ExecutorsCommand::Cancel { id }) => {
                let doc = client.send(reqwest::Method::DELETE, &format!("/api/1/executors/{id}"), None).await?;
                say!("{}", doc["msg"].as_str().unwrap_or("cancelled"));
            }
            Request::Executors(ExecutorsCommand::Reschedule { id, date }) => {
                let body = serde_json::json!({"type": "date", "args": {"date": date}});
                let doc = client.send(reqwest::Method::PUT, &format!("/api/1/executors/{id}"), Some(body)).await?;
                print_executors(std::slice::from_ref(&doc));
            }
            Request::Plans(PlansCommand::Forecast { id, file, from, until }) => {
                let mut query = Vec::new();
                query.extend(from.map(|f| ("from", f)));
                query.extend(until.map(|u| ("until", u)));
                let doc = match (id, file) {
                    (Some(id), _) => client.get_with(&format!("/api/1/plans/{id}/forecast"), &query).await?,
                    (None, Some(file)) => {
                        let body = read_json(&file, "plan")?;
                        client
                            .request(
                                reqwest::Method::POST,
                                "/api/1/forecast",
                                &query,
                                Some(("application/json", body.to_string().into_bytes())),
                            )
                            .await?
                    }
                    (None, None) => anyhow::bail!("name a plan ID or a plan body with -f FILE"),
                };
                say!(
                    "{} firings from {} until {}{}",
                    cell(&doc["count"]),
                    cell(&doc["from"]),
                    cell(&doc["until"]),
                    if doc["truncated"] == true { " (truncated)" } else { "" }
                );
                let rows = doc["firings"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|f| vec![cell(&f["due"]), cell(&f["status"]), cell(&f["reason"]), cell(&f["executor_id"])])
                    .collect();
                table(&["DUE", "STATUS", "REASON", "EXECUTOR"], rows);
                for note in doc["notes"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    say!("note: {}", note.as_str().unwrap_or(""));
                }
            }
            Request::Plans(PlansCommand::List { all }) => {
                print_plans(
                    &client
                        .all_pages(
                            "/api/1/plans/",
                            &[("all", all.to_string()), ("size", client.target.page_size.to_string())],
                            "plans",
                        )
                        .await?,
                );
            }
            Request::Plans(PlansCommand::Create { file, wait }) => {
                let body = read_json(&file, "plan")?;
                let doc = client.send(reqwest::Method::POST, "/api/1/plans/", Some(body)).await?;
                let plan_id = doc["id"].as_str().unwrap_or("?").to_string();
                say!("created plan {plan_id} ({})", doc["name"].as_str().unwrap_or(""));
                print_executors(doc["_embedded"]["executors"].as_array().map(Vec::as_slice).unwrap_or_default());
                if wait {
                    wait_for_executors(&client, &plan_id).await?;
                }
            }
            Request::Plans(PlansCommand::Show { id }) => {
                let doc = client.get(&format!("/api/1/plans/{id}")).await?;
                print_plans(std::slice::from_ref(&doc));
                say!("attack:  {} {}", doc["attack"]["ref"].as_str().unwrap_or(""), doc["attack"]["args"]);
                say!("planner: {} {}", doc["planner"]["ref"].as_str().unwrap_or(""), doc["planner"]["args"]);
                print_executors(doc["_embedded"]["executors"].as_array().map(Vec::as_slice).unwrap_or_default());
            }
            Request::Plans(PlansCommand::Run { id }) => {
                let doc = client
                    .send(reqwest::Method::POST, &format!("/api/1/plans/{id}/run"), Some(serde_json::json!({})))
                    .await?;
                say!("fired plan {id}: executor {}", doc["id"].as_str().unwrap_or("?"));
                print_executors(std::slice::from_ref(&doc));
            }
            Request::Plans(PlansCommand::Pause { id }) => {
                let doc = client
                    .send(reqwest::Method::POST, &format!("/api/1/plans/{id}/pause"), Some(serde_json::json!({})))
                    .await?;
                say!("plan {id} paused: {}", doc["paused"]);
            }
            Request::Plans(PlansCommand::Resume { id }) => {
                let doc = client
                    .send(reqwest::Method::POST, &format!("/api/1/plans/{id}/resume"), Some(serde_json::json!({})))
                    .await?;
                say!("plan {id} paused: {}", doc["paused"]);
            }
            Request::Plans(PlansCommand::Delete { id }) => {
                let doc = client.send(reqwest::Method::DELETE, &format!("/api/1/plans/{id}"), None).await?;
                say!("{}", doc["msg"].as_str().unwrap_or("deleted"));
            }
            Request::Executors(ExecutorsCommand::List { executed, status, plan }) => {
                let mut query = vec![("executed", executed.to_string())];
                query.extend(status.map(|s| ("status", s)));
                query.extend(plan.map(|p| ("plan_id", p)));
                query.push(("size", client.target.page_size.to_string()));
                print_executors(&client.all_pages("/api/1/executors/", &query, "executors").await?);
            }
            Request::Executors(ExecutorsCommand::Show { id }) => {
                let doc = client.get(&format!("/api/1/executors/{id}")).await?;
                print_executors(std::slice::from_ref(&doc));
                if !doc["result"].is_null() {
                    say!("result: {}", serde_json::to_string_pretty(&doc["result"])?);
                }
                if let Some(error) = doc["error"].as_str() {
                    say!("error:  {error}");
                }
                for line in doc["log"]["lines"].as_array().map(Vec::as_slice).unwrap_or_default() {
                    say!(
                        "log:    {} {:5} {}",
                        line["at"].as_str().unwrap_or(""),
                        line["level"].as_str().unwrap_or(""),
                        line["message"].as_str().unwrap_or("")
                    );
                }
            }
            Request::Halt(reason) => {
                let body = reason.map(|r| serde_json::json!({ "reason": r }));
                let doc = client.send(reqwest::Method::POST, "/api/1/halt", body).await?;
                say!("halted: {}", doc["halted"]);
            }
            Request::Resume => {
                let doc = client.send(reqwest::Method::POST, "/api/1/resume", None).await?;
                say!("halted: {}", doc["halted"]);
            }
        }
        if JSON.load(Ordering::Relaxed) {
            println!("{}", serde_json::to_string_pretty(&*client.result.locked())?);
        }
        Ok(())
    })
}

async fn plugins(client: &Client, command: PluginsCommand) -> anyhow::Result<()> {
    match command {
        PluginsCommand::Run(_) | PluginsCommand::Check { .. } | PluginsCommand::New(_) => {
            anyhow::bail!("`cme plugins run`, `check` and `new` work on this machine, not through an engine")
        }
        PluginsCommand::Push { file, sha256, sign, signature } => {
            let wasm = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let mut query: Vec<(&str, String)> = sha256.into_iter().map(|s| ("sha256", s)).collect();
            let armored = match (sign, signature) {
                (Some(key), _) => Some(sign_plugin(&key, &wasm)?),
                (None, Some(path)) => {
                    Some(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?)
                }
                (None, None) => None,
            };
            if let Some(armored) = armored {
                use base64::Engine as _;
                query.push(("signature", base64::engine::general_purpose::STANDARD.encode(armored)));
            }
            eprintln!(
                "uploading {} ({} bytes); the engine compiles it, which can take a few seconds",
                file.display(),
                wasm.len()
            );
            let doc = client
                .request(reqwest::Method::POST, "/api/1/plugins/", &query, Some(("application/wasm", wasm)))
                .await?;
            say!(
                "{} {} ({}), compiled in {} ms",
                doc["id"].as_str().unwrap_or("?"),
                doc["status"].as_str().unwrap_or(""),
                doc["kind"].as_str().unwrap_or(""),
                doc["compile_ms"]
            );
            say!("requested capabilities: {}", doc["capabilities"]);
            if doc["status"] == "pending" {
                say!("grant it to use it: cme plugins grant {} -f grant.json", doc["id"].as_str().unwrap_or("ID"));
            }
        }
        PluginsCommand::List => {
            let rows = client
                .all_pages("/api/1/plugins/", &[("size", "1000".into())], "plugins")
                .await?
                .iter()
                .map(|p| {
                    vec![
                        cell(&p["id"]),
                        cell(&p["kind"]),
                        cell(&p["status"]),
                        if p["builtin"] == true { "built-in".into() } else { cell(&p["uploaded_by"]) },
                        cell(&p["ref"]),
                    ]
                })
                .collect();
            table(&["ID", "KIND", "STATUS", "SOURCE", "REF"], rows);
        }
        PluginsCommand::Show { id } => {
            let mut doc = client.get(&format!("/api/1/plugins/{id}")).await?;
            if let Some(object) = doc.as_object_mut() {
                object.remove("_links");
            }
            say!("{}", serde_json::to_string_pretty(&doc)?);
        }
        PluginsCommand::Grant { id, file } => {
            let grant = read_json(&file, "grant")?;
            let doc = client.send(reqwest::Method::PUT, &format!("/api/1/plugins/{id}/grant"), Some(grant)).await?;
            say!(
                "{} {}: granted {}",
                doc["id"].as_str().unwrap_or("?"),
                doc["status"].as_str().unwrap_or(""),
                doc["granted"]
            );
        }
        PluginsCommand::Enable { id } => {
            let doc = client.send(reqwest::Method::POST, &format!("/api/1/plugins/{id}/enable"), None).await?;
            say!("{} {}", doc["id"].as_str().unwrap_or("?"), doc["status"].as_str().unwrap_or(""));
        }
        PluginsCommand::Disable { id } => {
            let doc = client.send(reqwest::Method::POST, &format!("/api/1/plugins/{id}/disable"), None).await?;
            say!("{} {}", doc["id"].as_str().unwrap_or("?"), doc["status"].as_str().unwrap_or(""));
        }
        PluginsCommand::Delete { id } => {
            let doc = client.send(reqwest::Method::DELETE, &format!("/api/1/plugins/{id}"), None).await?;
            say!("{}", doc["msg"].as_str().unwrap_or("deleted"));
        }
    }
    Ok(())
}

/// Polls a plan's executors until every one is finished, printing each as it finishes.
async fn wait_for_executors(client: &Client, plan_id: &str) -> anyhow::Result<()> {
    let mut reported = std::collections::HashSet::new();
    let query =
        [("plan_id", plan_id.to_string()), ("executed", "all".into()), ("size", client.target.page_size.to_string())];
    loop {
        let executors = client.all_pages("/api/1/executors/", &query, "executors").await?;
        for executor in executors.iter().filter(|e| e["executed"] == true) {
            if reported.insert(executor["id"].as_str().unwrap_or("").to_string()) {
                let outcome = executor["result"]["summary"]
                    .as_str()
                    .or(executor["error"].as_str())
                    .or(executor["reason"].as_str())
                    .unwrap_or("");
                say!("{} {}: {}", cell(&executor["id"]), cell(&executor["status"]), outcome);
            }
        }
        if executors.iter().all(|e| e["executed"] == true) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn credentials(client: &Client, command: CredentialsCommand) -> anyhow::Result<()> {
    match command {
        CredentialsCommand::List => {
            print_credentials(
                &client.all_pages("/api/1/credentials/", &[("size", "1000".into())], "credentials").await?,
            );
        }
        CredentialsCommand::Create { name, user, key, passphrase_env, may_use } => {
            let private_key =
                std::fs::read_to_string(&key).with_context(|| format!("reading the key {}", key.display()))?;
            let mut body = serde_json::json!({"name": name, "user": user, "private_key": private_key});
            if let Some(var) = passphrase_env {
                body["passphrase"] =
                    std::env::var(&var).with_context(|| format!("the passphrase variable {var} is not set"))?.into();
            }
            if !may_use.is_empty() {
                body["may_use"] = may_use.into();
            }
            let doc = client.send(reqwest::Method::POST, "/api/1/credentials/", Some(body)).await?;
            say!("stored credential {}", cell(&doc["name"]));
            print_credentials(std::slice::from_ref(&doc));
        }
        CredentialsCommand::Delete { name } => {
            let doc = client.send(reqwest::Method::DELETE, &format!("/api/1/credentials/{name}"), None).await?;
            say!("{}", doc["msg"].as_str().unwrap_or("deleted"));
        }
    }
    Ok(())
}

fn print_credentials(credentials: &[Value]) {
    let rows = credentials
        .iter()
        .map(|c| {
            vec![
                cell(&c["name"]),
                cell(&c["user"]),
                cell(&c["algorithm"]),
                cell(&c["fingerprint"]),
                cell(&c["may_use"]),
            ]
        })
        .collect();
    table(&["NAME", "USER", "ALGORITHM", "FINGERPRINT", "MAY USE"], rows);
}

async fn blackouts(client: &Client, command: BlackoutsCommand) -> anyhow::Result<()> {
    match command {
        BlackoutsCommand::List => {
            let blackouts = client.all_pages("/api/1/blackouts/", &[("size", "1000".into())], "blackouts").await?;
            print_blackouts(&blackouts);
        }
        BlackoutsCommand::Create { name, start, end, timezone, plan, stop_running } => {
            let mut body = serde_json::json!({"name": name, "start": start, "end": end, "stop_running": stop_running});
            if let Some(zone) = timezone {
                body["timezone"] = zone.into();
            }
            if let Some(plan) = plan {
                body["plan_id"] = plan.into();
            }
            let doc = client.send(reqwest::Method::POST, "/api/1/blackouts/", Some(body)).await?;
            say!("created blackout {}", cell(&doc["id"]));
            print_blackouts(std::slice::from_ref(&doc));
        }
        BlackoutsCommand::Show { id } => {
            print_blackouts(std::slice::from_ref(&client.get(&format!("/api/1/blackouts/{id}")).await?))
        }
        BlackoutsCommand::Delete { id } => {
            let doc = client.send(reqwest::Method::DELETE, &format!("/api/1/blackouts/{id}"), None).await?;
            say!("{}", doc["msg"].as_str().unwrap_or("deleted"));
        }
        BlackoutsCommand::Import { file, name, timezone, plan, include_free, strict } => {
            let ics = std::fs::read(&file).with_context(|| format!("reading the calendar {}", file.display()))?;
            let mut query = vec![("name", name)];
            query.extend(timezone.map(|z| ("timezone", z)));
            query.extend(plan.map(|p| ("plan_id", p)));
            query.extend(include_free.then(|| ("include_free", "true".to_string())));
            query.extend(strict.then(|| ("strict", "true".to_string())));
            let doc = client
                .request(reqwest::Method::POST, "/api/1/calendars/", &query, Some(("text/calendar", ics)))
                .await?;
            say!("imported {} events of calendar {}", cell(&doc["count"]), cell(&doc["calendar"]));
            print_blackouts(doc["blackouts"].as_array().map(Vec::as_slice).unwrap_or_default());
            for skipped in doc["skipped"].as_array().map(Vec::as_slice).unwrap_or_default() {
                say!("skipped {}: {}", cell(&skipped["event"]), cell(&skipped["reason"]));
            }
        }
    }
    Ok(())
}

async fn calendars(client: &Client, command: CalendarsCommand) -> anyhow::Result<()> {
    match command {
        CalendarsCommand::List => {
            let doc = client.get("/api/1/calendars/").await?;
            print_calendars(doc["calendars"].as_array().map(Vec::as_slice).unwrap_or_default());
        }
        CalendarsCommand::Subscribe { url, name, refresh_seconds, timezone, plan, include_free, stop_running } => {
            let mut body = serde_json::json!({"name": name, "url": url, "include_free": include_free, "stop_running": stop_running});
            if let Some(seconds) = refresh_seconds {
                body["refresh_seconds"] = seconds.into();
            }
            if let Some(zone) = timezone {
                body["timezone"] = zone.into();
            }
            if let Some(plan) = plan {
                body["plan_id"] = plan.into();
            }
            let doc = client.send(reqwest::Method::POST, "/api/1/calendars/", Some(body)).await?;
            say!("subscribed to calendar {}", cell(&doc["name"]));
            print_calendars(std::slice::from_ref(&doc));
        }
        CalendarsCommand::Delete { name } => {
            let doc = client.send(reqwest::Method::DELETE, &format!("/api/1/calendars/{name}"), None).await?;
            say!("{}", doc["msg"].as_str().unwrap_or("deleted"));
        }
    }
    Ok(())
}

fn print_calendars(calendars: &[Value]) {
    let rows = calendars
        .iter()
        .map(|c| {
            vec![
                cell(&c["name"]),
                cell(&c["kind"]),
                cell(&c["url"]),
                cell(&c["last_fetched"]),
                cell(&c["last_error"]),
                cell(&c["blackouts"]),
            ]
        })
        .collect();
    table(&["NAME", "KIND", "URL", "LAST FETCHED", "LAST ERROR", "BLACKOUTS"], rows);
}

async fn inventories(client: &Client, command: InventoriesCommand) -> anyhow::Result<()> {
    match command {
        InventoriesCommand::List => {
            let rows = client
                .all_pages("/api/1/inventories/", &[("size", "1000".into())], "inventories")
                .await?
                .iter()
                .map(|i| vec![cell(&i["name"]), cell(&i["count"]), cell(&i["updated"]), cell(&i["updated_by"])])
                .collect();
            table(&["NAME", "HOSTS", "UPDATED", "BY"], rows);
        }
        InventoriesCommand::Show { name } => print_hosts(&client.get(&format!("/api/1/inventories/{name}")).await?),
        InventoriesCommand::Import { file, format, credential } => {
            let text = read_input(&file)?.into_bytes();
            let mut query = Vec::new();
            if let Some(format) = format {
                query.push(("format", format));
            }
            if let Some(credential) = credential {
                query.push(("credential", credential));
            }
            let doc = client
                .request(reqwest::Method::POST, "/api/1/inventories/", &query, Some(("text/plain", text)))
                .await?;
            for group in doc["imported"].as_array().map(Vec::as_slice).unwrap_or_default() {
                say!("imported inventory {} ({} hosts)", cell(&group["name"]), cell(&group["hosts"]));
            }
            for skipped in doc["skipped"].as_array().map(Vec::as_slice).unwrap_or_default() {
                say!("skipped group {}: {}", cell(&skipped["group"]), cell(&skipped["reason"]));
            }
        }
        InventoriesCommand::Put { name, file } => {
            let body = read_json(&file, "inventory")?;
            let doc = client.send(reqwest::Method::PUT, &format!("/api/1/inventories/{name}"), Some(body)).await?;
            say!("stored inventory {} ({} hosts)", cell(&doc["name"]), cell(&doc["count"]));
        }
        InventoriesCommand::Delete { name } => {
            let doc = client.send(reqwest::Method::DELETE, &format!("/api/1/inventories/{name}"), None).await?;
            say!("{}", doc["msg"].as_str().unwrap_or("deleted"));
        }
    }
    Ok(())
}

fn print_hosts(inventory: &Value) {
    let rows = inventory["hosts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let tags = h["tags"]
                .as_object()
                .map(|t| t.iter().map(|(k, v)| format!("{k}={}", cell(v))).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                cell(&h["name"]),
                format!("{}:{}", cell(&h["address"]), cell(&h["port"])),
                cell(&h["user"]),
                cell(&h["credential"]),
                tags,
            ]
        })
        .collect();
    table(&["NAME", "ADDRESS", "USER", "CREDENTIAL", "TAGS"], rows);
}

fn print_blackouts(blackouts: &[Value]) {
    let rows = blackouts
        .iter()
        .map(|b| {
            let every = match (b["recurring"] == true, b["rule"].as_str()) {
                (true, Some(rule)) => rule.to_string(),
                (true, None) => format!("every {}", cell(&b["every"])),
                (false, _) => "once".into(),
            };
            vec![cell(&b["id"]), cell(&b["name"]), every, cell(&b["start"]), cell(&b["end"]), cell(&b["plan_id"])]
        })
        .collect();
    table(&["ID", "NAME", "WHEN", "START", "END", "PLAN"], rows);
}

/// A text file, or stdin for "-".
fn read_input(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// A JSON document from a file, or stdin for "-".
pub(crate) fn read_json(file: &std::path::Path, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(&read_input(file)?).with_context(|| format!("the {what} file is not JSON"))
}

pub(crate) struct Client {
    http: reqwest::Client,
    pub(crate) target: Target,
    /// What `--output json` prints: the last document, or every item of a list.
    result: std::sync::Mutex<Value>,
}

impl Client {
    /// Every item of a paged list (`key` in the document or in `_embedded`), following
    /// `_links.next` to the last page.
    async fn all_pages(&self, path: &str, query: &[(&str, String)], key: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut doc = self.get_with(path, query).await?;
        loop {
            let page = doc
                .get(key)
                .or_else(|| doc["_embedded"].get(key))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            items.extend(page);
            let Some(next) = doc["_links"]["next"]["href"].as_str().map(str::to_string) else { break };
            doc = self.get(&next).await?;
        }
        *self.result.locked() = Value::Array(items.clone());
        Ok(items)
    }

    /// A client of the engine `target` names (and `--output` set for the process).
    pub(crate) fn connect(target: Target) -> anyhow::Result<Client> {
        JSON.store(target.output == Output::Json, Ordering::Relaxed);
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(target.timeout.max(1))).build()?;
        Ok(Client { http, target, result: std::sync::Mutex::new(Value::Null) })
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.get_with(path, &[]).await
    }

    /// A GET with query parameters (encoded by reqwest).
    async fn get_with(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.request(reqwest::Method::GET, path, query, None).await
    }

    pub(crate) async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.request(method, path, &[], body.map(|b| ("application/json", b.to_string().into_bytes()))).await
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.target.url.trim_end_matches('/'));
        let mut request = self.http.request(method, &url).query(query);
        if let Some(token) = &self.target.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response =
            request.send().await.with_context(|| format!("cannot reach the engine at {}", self.target.url))?;
        let status = response.status();
        let doc: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = doc["detail"].as_str().or(doc["msg"].as_str()).unwrap_or("no detail");
            anyhow::bail!("{status}: {msg}");
        }
        *self.result.locked() = doc.clone();
        Ok(doc)
    }
}

pub(crate) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

fn print_plans(plans: &[Value]) {
    let rows = plans
        .iter()
        .map(|p| {
            vec![
                cell(&p["id"]),
                cell(&p["name"]),
                cell(&p["executors_count"]),
                cell(&p["next_execution"]),
                cell(&p["executed"]),
            ]
        })
        .collect();
    table(&["ID", "NAME", "EXECUTORS", "NEXT", "EXECUTED"], rows);
}

fn print_executors(executors: &[Value]) {
    let rows = executors
        .iter()
        .map(|e| {
            vec![
                cell(&e["id"]),
                cell(&e["plan_id"]),
                cell(&e["next_run_time"]),
                cell(&e["status"]),
                e["result"]["summary"]
                    .as_str()
                    .or(e["error"].as_str())
                    .or(e["reason"].as_str())
                    .unwrap_or("-")
                    .to_string(),
            ]
        })
        .collect();
    table(&["ID", "PLAN", "DUE", "STATUS", "RESULT"], rows);
}

/// A detached SSH signature (SSHSIG, namespace `cme-plugin`) over `wasm` with the OpenSSH
/// ed25519 private key at `key`, armored as `ssh-keygen -Y sign` writes it.
fn sign_plugin(key: &std::path::Path, wasm: &[u8]) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let key = ssh_key::PrivateKey::from_openssh(text)
        .with_context(|| format!("{} is not an OpenSSH private key", key.display()))?;
    if key.is_encrypted() {
        anyhow::bail!(
            "the key is encrypted: sign with `ssh-keygen -Y sign -n cme-plugin -f KEY FILE.wasm` and pass --signature FILE.wasm.sig"
        );
    }
    if key.algorithm() != ssh_key::Algorithm::Ed25519 {
        anyhow::bail!("a {} key: plugin signatures are ed25519 (ssh-keygen -t ed25519)", key.algorithm());
    }
    let signature = key.sign(cme_engine::SIGNATURE_NAMESPACE, ssh_key::HashAlg::Sha512, wasm).context("signing")?;
    signature.to_pem(ssh_key::LineEnding::LF).context("armoring the signature")
}
