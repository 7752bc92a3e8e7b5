//! The mock host as a plugin author uses it: one attack, planner and probe each, through
//! `run`, `plan` and `check`.

use chrono::{Duration, TimeZone, Utc};
use serde::Deserialize;

use super::{Call, MockHost, instance, validate_describe};
use crate::attack::{Attack, Report, RunContext};
use crate::planner::{PlanContext, Planner, Schedule};
use crate::probe::{Probe, ProbeContext, Verdict};
use crate::{Capability, Describe, HostError, PluginError, ec2, http, info, json, scripts, ssh};

/// Terminates one tagged instance in eu-west-1 after checking a URL, and runs a script on it.
struct Chaos;

#[derive(Deserialize, schemars::JsonSchema)]
struct ChaosArgs {
    /// Checked first: must answer 200.
    url: String,
    /// The instances' tag value for `Chaos`.
    tag: String,
}

impl Attack for Chaos {
    type Args = ChaosArgs;

    fn describe() -> Describe {
        Describe::new("chaos", "1.0.0")
            .refs(["chaos:Chaos"])
            .args::<ChaosArgs>()
            .example(json!({"url": "http://svc/health", "tag": "true"}))
            .capability(Capability::Http(vec!["http://svc/*".into()]))
            .capability(Capability::Ec2Describe(vec!["eu-west-1".into()]))
            .capability(Capability::Ec2Terminate(vec!["eu-west-1".into()]))
            .capability(Capability::Ssh)
            .capability(Capability::Scripts)
    }

    fn run(ctx: &RunContext, args: ChaosArgs) -> Result<Report, PluginError> {
        let answer = http::send(&http::Request {
            method: "GET".into(),
            url: args.url.clone(),
            headers: vec![],
            body: None,
            timeout_ms: None,
        })?;
        info!("{} answered {}", args.url, answer.status);
        if answer.status != 200 && !ctx.dry_run {
            return Err(PluginError::failed(format!("{} answered {}", args.url, answer.status)));
        }
        let filter = ec2::Filter { name: "tag:Chaos".into(), values: vec![args.tag] };
        let found = ec2::describe_instances("eu-west-1", &[filter])?;
        let victim = found.first().ok_or_else(|| PluginError::failed("no instance matches"))?;
        let script = scripts::read("burn.sh")?;
        let target = ssh::Target {
            address: victim.private_ip.clone().unwrap_or_default(),
            port: 22,
            user: String::new(),
            credential: "fleet".into(),
        };
        ssh::upload(&target, "/tmp/burn.sh", &script, 0o700)?;
        let out = ssh::exec(&target, "/tmp/burn.sh", 1_000)?;
        let done = ec2::terminate_instances("eu-west-1", std::slice::from_ref(&victim.instance_id))?;
        Ok(Report::new(format!("{} -> {} ({})", victim.instance_id, done[0].current_state, out.stdout.trim()))
            .target(victim.instance_id.clone()))
    }
}

fn fleet() -> MockHost {
    MockHost::new()
        .http_answer("GET", "http://svc/health", 200, "ok")
        .instances(
            "eu-west-1",
            vec![
                instance("i-spared", "10.0.0.1", &[("Chaos", "false")]),
                instance("i-victim", "10.0.0.2", &[("Chaos", "true")]),
            ],
        )
        .script("burn.sh", b"#!/bin/sh\necho burning\n")
        .ssh_handler(|_, command| {
            Ok(ssh::ExecOutput {
                exit_code: Some(0),
                stdout: format!("ran {command}\n"),
                stderr: String::new(),
                truncated: false,
            })
        })
}

#[test]
fn an_attack_runs_end_to_end_with_answers_from_fixtures() {
    let outcome = fleet().run::<Chaos>(json!({"url": "http://svc/health", "tag": "true"}));
    let report = outcome.result.expect("the attack succeeds");
    assert_eq!(report.summary, "i-victim -> shutting-down (ran /tmp/burn.sh)");
    assert_eq!(report.targets, vec!["i-victim"]);
    let kinds: Vec<&str> = outcome
        .calls
        .iter()
        .map(|c| match c {
            Call::Http { .. } => "http",
            Call::Ec2Describe { .. } => "describe",
            Call::ScriptRead { .. } => "script",
            Call::SshUpload { .. } => "upload",
            Call::SshExec { .. } => "exec",
            Call::Ec2Terminate { .. } => "terminate",
            Call::InventoryHosts { .. } => "inventory",
            Call::UndoArm { .. } | Call::UndoArmHttp { .. } => "undo",
            Call::Ec2Disrupt { .. } => "disrupt",
            Call::ComputeList { .. } | Call::ComputeOperate { .. } => "compute",
        })
        .collect();
    assert_eq!(kinds, ["http", "describe", "script", "upload", "exec", "terminate"]);
    assert!(outcome.calls.iter().all(|c| c.denied().is_none()));
    assert_eq!(outcome.log, vec![(crate::log::Level::Info, "http://svc/health answered 200".to_string())]);
}

#[test]
fn a_url_outside_the_declared_patterns_is_denied_and_recorded() {
    let outcome = fleet().run::<Chaos>(json!({"url": "http://other/health", "tag": "true"}));
    assert!(
        matches!(&outcome.result, Err(PluginError::Denied(why)) if why.contains("not declared")),
        "{:?}",
        outcome.result
    );
    assert_eq!(outcome.calls.len(), 1);
    assert!(outcome.calls[0].denied().is_some());
}

#[test]
fn the_grant_narrows_what_was_declared() {
    let host = fleet().grant(vec![Capability::Http(vec!["http://svc/*".into()]), Capability::Ec2Describe(vec![])]);
    let outcome = host.run::<Chaos>(json!({"url": "http://svc/health", "tag": "true"}));
    assert_eq!(outcome.result, Err(PluginError::Denied("reading script burn.sh is not granted".into())));
}

#[test]
fn args_that_fail_the_schema_are_refused_before_the_call() {
    let outcome = fleet().run::<Chaos>(json!({"url": 7}));
    let Err(PluginError::InvalidArgs(why)) = &outcome.result else { panic!("{:?}", outcome.result) };
    assert!(why.contains("/url") && why.contains("tag"), "{why}");
    assert!(outcome.calls.is_empty(), "nothing runs with refused args");
}

#[test]
fn a_dry_run_sends_nothing_and_terminates_nothing() {
    let host = fleet().dry_run(true).ssh_handler(|_, _| panic!("a dry run must not execute"));
    let outcome = host.run::<Chaos>(json!({"url": "http://svc/health", "tag": "true"}));
    assert_eq!(outcome.result.expect("succeeds").summary, "i-victim -> dry-run ()");
}

#[test]
fn an_instance_not_described_by_the_run_cannot_be_terminated_or_reached() {
    struct Blind;
    impl Attack for Blind {
        type Args = serde_json::Value;
        fn describe() -> Describe {
            Describe::new("blind", "1.0.0").capability(Capability::Ec2Terminate(vec![])).capability(Capability::Ssh)
        }
        fn run(_: &RunContext, _: Self::Args) -> Result<Report, PluginError> {
            let target =
                ssh::Target { address: "10.0.0.2".into(), port: 22, user: String::new(), credential: "fleet".into() };
            let ssh = ssh::exec(&target, "true", 1_000).unwrap_err();
            let terminate = ec2::terminate_instances("eu-west-1", &["i-victim".into()]).unwrap_err();
            Ok(Report::new(format!("{ssh:?} / {terminate:?}")))
        }
    }
    let outcome = fleet().run::<Blind>(json!({}));
    assert_eq!(
        outcome.result.unwrap().summary,
        "HostError::Denied(\"10.0.0.2 is not an address this run described\") / HostError::Denied(\"i-victim was not described by this run in eu-west-1\")"
    );
}

#[test]
fn a_request_without_a_fixture_is_an_upstream_error_naming_it() {
    let outcome = MockHost::new().run::<Chaos>(json!({"url": "http://svc/nothing", "tag": "true"}));
    let Err(PluginError::Failed(why)) = outcome.result else { panic!() };
    assert!(why.contains("no answer for GET http://svc/nothing"), "{why}");
    let error = MockHost::new()
        .http_error("GET", "http://svc/slow", HostError::Timeout("10000 ms".into()))
        .run::<Chaos>(json!({"url": "http://svc/slow", "tag": "x"}));
    assert_eq!(error.result, Err(PluginError::Failed("timeout: 10000 ms".into())));
}

struct Daily;

#[derive(Deserialize, schemars::JsonSchema)]
struct DailyArgs {
    /// Hour of the day, in the plan's zone.
    hour: u32,
}

impl Planner for Daily {
    type Args = DailyArgs;
    fn describe() -> Describe {
        Describe::new("daily", "1.0.0").refs(["daily:Daily"]).args::<DailyArgs>().example(json!({"hour": 10}))
    }
    fn plan(ctx: &PlanContext, args: DailyArgs) -> Result<Schedule, PluginError> {
        let mut day = ctx.window.from.date_naive();
        let mut instants = Vec::new();
        while let Some(at) = day.and_hms_opt(args.hour, 0, 0).map(|t| crate::time::schedule_instant(t, ctx.timezone)) {
            if at >= ctx.window.until {
                break;
            }
            if ctx.window.contains(at) {
                instants.push(at);
            }
            day = day.succ_opt().expect("a next day");
        }
        Ok(Schedule::recurring(instants))
    }
}

#[test]
fn a_planner_plans_the_window_it_is_given() {
    let from = Utc.with_ymd_and_hms(2030, 3, 1, 0, 0, 0).unwrap();
    let host = MockHost::new().plan_context(chrono_tz::Europe::Madrid, 7, (from, from + Duration::days(3)));
    let schedule = host.plan::<Daily>(json!({"hour": 10})).result.unwrap();
    assert_eq!(
        schedule.instants,
        (0..3).map(|d| Utc.with_ymd_and_hms(2030, 3, 1 + d, 9, 0, 0).unwrap()).collect::<Vec<_>>()
    );
    assert!(schedule.recurring);
    assert!(matches!(host.plan::<Daily>(json!({"hour": "ten"})).result, Err(PluginError::InvalidArgs(_))));
}

struct Health;

impl Probe for Health {
    type Args = serde_json::Value;
    fn describe() -> Describe {
        Describe::new("health", "1.0.0").capability(Capability::Http(vec!["*".into()]))
    }
    fn check(_: &ProbeContext, _: Self::Args) -> Result<Verdict, PluginError> {
        let answer = http::send(&http::Request {
            method: "GET".into(),
            url: "http://svc/health".into(),
            headers: vec![],
            body: None,
            timeout_ms: None,
        })?;
        Ok(if answer.status == 200 {
            Verdict::healthy("200")
        } else {
            Verdict::unhealthy(format!("{}", answer.status))
        })
    }
}

#[test]
fn a_probe_is_never_a_dry_run() {
    let host = MockHost::new().dry_run(true).http_answer("GET", "http://svc/health", 503, "");
    assert_eq!(host.check::<Health>(json!({})).result, Ok(Verdict::unhealthy("503")));
}

#[test]
fn validate_describe_catches_what_an_upload_would_refuse() {
    assert_eq!(validate_describe(&Chaos::describe()), Ok(()));
    assert_eq!(validate_describe(&Daily::describe()), Ok(()));
    let bad_example = Chaos::describe().example(json!({"url": "x"}));
    assert!(validate_describe(&bad_example).unwrap_err().contains("example does not validate"));
    assert!(validate_describe(&Describe::new("Bad_Name", "1.0.0")).unwrap_err().contains("kebab-case"));
    assert!(validate_describe(&Describe::new("good", "1.0")).unwrap_err().contains("semver"));
}

#[test]
fn a_capability_called_outside_a_mock_host_call_says_how_to_test_it() {
    let panic = std::panic::catch_unwind(|| scripts::read("x")).unwrap_err();
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains("MockHost"), "{message}");
}

#[test]
fn a_plugin_that_panics_does_not_poison_the_next_call() {
    struct Panics;
    impl Attack for Panics {
        type Args = serde_json::Value;
        fn describe() -> Describe {
            Describe::new("panics", "1.0.0")
        }
        fn run(_: &RunContext, _: Self::Args) -> Result<Report, PluginError> {
            panic!("boom")
        }
    }
    assert!(std::panic::catch_unwind(|| MockHost::new().run::<Panics>(json!({}))).is_err());
    assert!(fleet().run::<Chaos>(json!({"url": "http://svc/health", "tag": "true"})).result.is_ok());
}

/// Stops a service on the hosts an [`Aim`](crate::aim::Aim) picks, arming its start first.
struct Pause;

#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
struct PauseArgs {
    #[serde(flatten)]
    aim: crate::aim::Aim,
    /// Arm the undo on this address instead of the chosen host's (a plugin's mistake).
    #[serde(default)]
    undo_on: Option<String>,
}

impl Attack for Pause {
    type Args = PauseArgs;

    fn describe() -> Describe {
        Describe::new("pause", "1.0.0")
            .refs(["pause:Pause"])
            .args::<PauseArgs>()
            .example(json!({"target": {"inventory": "web"}}))
            .aimed_over_ssh()
    }

    fn run(ctx: &RunContext, args: PauseArgs) -> Result<Report, PluginError> {
        let mut report = Report::new("paused");
        for host in args.aim.hosts(&mut ctx.rng())? {
            let mut undo_target = host.target.clone();
            if let Some(address) = &args.undo_on {
                undo_target.address = address.clone();
            }
            crate::undo::arm(&undo_target, "systemctl start app", 60_000)?;
            ssh::exec(&host.target, "systemctl stop app", 1_000)?;
            report = report.target(host.name);
        }
        Ok(report)
    }
}

fn inventory() -> MockHost {
    use super::inventory_host;
    MockHost::new().inventory(
        "web",
        vec![
            inventory_host("web-1", "10.0.1.1", &[("zone", "a")]),
            inventory_host("web-2", "10.0.1.2", &[("zone", "b")]),
        ],
    )
}

#[test]
fn an_attack_aimed_at_an_inventory_arms_its_undo_before_the_fault() {
    let outcome = inventory().run::<Pause>(json!({"target": {"inventory": "web", "tags": {"zone": "b"}}}));
    assert_eq!(outcome.result.expect("it succeeds").targets, vec!["web-2"]);
    let kinds: Vec<String> = outcome
        .calls
        .iter()
        .map(|c| match c {
            Call::InventoryHosts { name, tags, .. } => format!("list {name} {tags:?}"),
            Call::UndoArm { address, command, .. } => format!("arm {address} {command}"),
            Call::SshExec { address, command, .. } => format!("exec {address} {command}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["list web [\"zone=b\"]", "arm 10.0.1.2 systemctl start app", "exec 10.0.1.2 systemctl stop app"]
    );

    let both = inventory().run::<Pause>(json!({"target": {"inventory": "web"}, "count": 2}));
    assert_eq!(both.result.expect("it succeeds").targets.len(), 2);
    let none = inventory().run::<Pause>(json!({"target": {"inventory": "web", "tags": {"zone": "z"}}}));
    assert!(
        matches!(none.result, Err(PluginError::Failed(ref m)) if m.contains("no host matched: inventory web with tags zone=z")),
        "{:?}",
        none.result
    );
    let unknown = inventory().run::<Pause>(json!({"target": {"inventory": "db"}}));
    assert!(format!("{:?}", unknown.result).contains("no inventory named \\\"db\\\""), "{:?}", unknown.result);
}

#[test]
fn an_undo_on_an_address_the_run_did_not_list_is_denied() {
    let outcome =
        inventory().run::<Pause>(json!({"target": {"inventory": "web", "tags": {"zone": "a"}}, "undo_on": "10.9.9.9"}));
    assert!(outcome.result.is_err());
    let arm = outcome.calls.iter().find(|c| matches!(c, Call::UndoArm { .. })).expect("the arm was tried");
    assert!(arm.denied().unwrap().contains("10.9.9.9 is not an address this run described"), "{arm:?}");
    assert!(!outcome.calls.iter().any(|c| matches!(c, Call::SshExec { .. })), "no fault without its undo");
}

#[test]
fn an_attack_aimed_at_a_clouds_nodes_reaches_them_at_the_address_asked_for() {
    use super::node;
    let mut stopped = node("n-3", "nova", &[("team", "web")], "10.0.0.3");
    stopped.state = crate::compute::NodeState::Stopped;
    let mut public = node("n-2", "nova", &[("team", "web")], "10.0.0.2");
    public.public_addresses = vec!["172.24.4.2".into()];
    let host = MockHost::new().nodes("lab", vec![node("n-1", "nova", &[("team", "db")], "10.0.0.1"), public, stopped]);
    let ssh = json!({"credential": "fleet", "user": "ubuntu", "address": "public"});
    let outcome = host.run::<Pause>(json!({"target": {"cloud": "lab", "tags": {"team": "web"}, "ssh": ssh}}));
    assert_eq!(outcome.result.expect("it succeeds").targets, vec!["n-2"], "running, tagged, with a public address");
    let exec = outcome.calls.iter().find(|c| matches!(c, Call::SshExec { .. })).expect("an exec");
    assert!(format!("{exec:?}").contains("172.24.4.2"), "{exec:?}");

    let private = host.run::<Pause>(
        json!({"target": {"cloud": "lab", "zones": ["nova"], "ssh": {"credential": "fleet"}}, "count": 2}),
    );
    let mut chosen = private.result.expect("it succeeds").targets;
    chosen.sort();
    assert_eq!(chosen, vec!["n-1", "n-2"], "only running nodes");
    let none =
        host.run::<Pause>(json!({"target": {"cloud": "lab", "zones": ["az-9"], "ssh": {"credential": "fleet"}}}));
    assert!(
        matches!(none.result, Err(PluginError::Failed(ref m)) if m.contains("running nodes of cloud lab in zones az-9")),
        "{:?}",
        none.result
    );
    // Every field of the form is checked: a typo is refused before anything is listed.
    let typo = host.run::<Pause>(json!({"target": {"cloud": "lab", "zone": ["nova"], "ssh": {"credential": "fleet"}}}));
    assert!(matches!(typo.result, Err(PluginError::InvalidArgs(_))), "{:?}", typo.result);
    assert!(typo.calls.is_empty());
}

#[test]
fn both_forms_at_once_are_refused_by_the_schema() {
    let outcome = inventory().run::<Pause>(json!({"target": {"inventory": "web"}, "region": "eu-west-1"}));
    assert!(matches!(outcome.result, Err(PluginError::InvalidArgs(_))), "{:?}", outcome.result);
    assert!(outcome.calls.is_empty());
}
