//! Rows to the engine's types and back. Times are stored as i64 microseconds (UTC) so
//! that SQLite and PostgreSQL order and index them alike; JSON is stored as text.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use cme_engine::{
    Actor, AuditEntry, AuditEvent, Blackout, Credential, Executor, Grant, Lease, Plan, PlannedCall, PluginRecord,
    Report, RunLog, StorageError,
};

use crate::entity::{audit_event, blackout, credential, executor, plan, plugin};
use crate::plugins::PluginRow;
use crate::sealed::{self, CredentialKey};

pub(crate) fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn at(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {error}"))
}

fn json(what: &str, text: &str) -> Result<Value, StorageError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub(crate) fn plan_model(p: &Plan) -> plan::Model {
    plan::Model {
        id: p.id.clone(),
        name: p.name.clone(),
        created_at_us: us(p.created),
        deleted_at_us: p.deleted.map(us),
        attack_ref: p.attack.reference.clone(),
        attack_plugin: p.attack.plugin.clone(),
        attack_args: p.attack.args.to_string(),
        planner_ref: p.planner.reference.clone(),
        planner_plugin: p.planner.plugin.clone(),
        planner_args: p.planner.args.to_string(),
        dry_run: p.dry_run,
        timezone: p.timezone.clone(),
        seed: p.seed as i64,
        grace_ms: p.grace.as_millis() as i64,
        created_by: p.created_by.as_ref().map(|a| serde_json::json!({"name": a.name, "role": a.role}).to_string()),
        paused_at_us: p.paused.map(us),
        planned_until_us: p.planned_until.map(us),
        misfire: p.misfire.as_str().to_string(),
        overlap: p.overlap.as_str().to_string(),
        steady_state: (!p.steady_state.is_empty()).then(|| {
            serde_json::Value::Array(
                p.steady_state
                    .iter()
                    .map(|c| serde_json::json!({"ref": c.reference, "plugin": c.plugin, "args": c.args}))
                    .collect(),
            )
            .to_string()
        }),
        stop_conditions: (!p.stop_conditions.is_empty()).then(|| {
            serde_json::Value::Array(
                p.stop_conditions
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "ref": c.probe.reference, "plugin": c.probe.plugin, "args": c.probe.args,
                            "interval_ms": c.interval.as_millis() as u64, "settle_ms": c.settle.as_millis() as u64,
                            "on_failure": c.on_failure.as_str(),
                        })
                    })
                    .collect(),
            )
            .to_string()
        }),
        steps: (!p.steps.is_empty()).then(|| steps_text(&p.steps)),
        deadline_ms: p.deadline.map(|d| d.as_millis() as i64),
    }
}

/// An experiment's steps as stored: `[{name, after, kind, ...}]` with `ref`, `plugin`,
/// `args`, `duration_ms`, `irreversible` (attack), `probes` (verify) or `wait_ms`.
fn steps_text(steps: &[cme_engine::Step]) -> String {
    use cme_engine::StepAction;
    let call = |c: &PlannedCall| serde_json::json!({"ref": c.reference, "plugin": c.plugin, "args": c.args});
    let steps: Vec<Value> = steps
        .iter()
        .map(|step| {
            let mut stored = serde_json::json!({"name": step.name, "after": step.after, "kind": step.action.kind()});
            match &step.action {
                StepAction::Attack { call: attack, duration, irreversible } => {
                    stored["ref"] = attack.reference.clone().into();
                    stored["plugin"] = attack.plugin.clone().into();
                    stored["args"] = attack.args.clone();
                    stored["duration_ms"] = duration.map(|d| d.as_millis() as u64).into();
                    stored["irreversible"] = (*irreversible).into();
                }
                StepAction::Verify(probes) => stored["probes"] = probes.iter().map(call).collect(),
                StepAction::Wait(wait) => stored["wait_ms"] = (wait.as_millis() as u64).into(),
            }
            stored
        })
        .collect();
    Value::Array(steps).to_string()
}

fn steps_of(text: &str) -> Result<Vec<cme_engine::Step>, StorageError> {
    use cme_engine::{Step, StepAction};
    let stored = json("plan steps", text)?;
    let steps = stored.as_array().ok_or_else(|| StorageError::Corrupt("plan steps are not a list".into()))?;
    let lacks = |what: &str| StorageError::Corrupt(format!("a plan step lacks {what}"));
    let text_of = |v: &Value, k: &str| v[k].as_str().map(str::to_string).ok_or_else(|| lacks(k));
    let call_of = |v: &Value| -> Result<PlannedCall, StorageError> {
        Ok(PlannedCall { reference: text_of(v, "ref")?, plugin: text_of(v, "plugin")?, args: v["args"].clone() })
    };
    steps
        .iter()
        .map(|s| {
            let action = match s["kind"].as_str() {
                Some("attack") => StepAction::Attack {
                    call: call_of(s)?,
                    duration: s["duration_ms"].as_u64().map(Duration::from_millis),
                    irreversible: s["irreversible"].as_bool().unwrap_or(false),
                },
                Some("verify") => StepAction::Verify(
                    s["probes"]
                        .as_array()
                        .ok_or_else(|| lacks("probes"))?
                        .iter()
                        .map(call_of)
                        .collect::<Result<_, _>>()?,
                ),
                Some("wait") => {
                    StepAction::Wait(Duration::from_millis(s["wait_ms"].as_u64().ok_or_else(|| lacks("wait_ms"))?))
                }
                _ => return Err(lacks("a kind")),
            };
            let after = s["after"]
                .as_array()
                .ok_or_else(|| lacks("after"))?
                .iter()
                .map(|a| a.as_str().map(str::to_string).ok_or_else(|| lacks("after names")))
                .collect::<Result<_, _>>()?;
            Ok(Step { name: text_of(s, "name")?, after, action })
        })
        .collect()
}

pub(crate) fn plan(m: plan::Model) -> Result<Plan, StorageError> {
    Ok(Plan {
        attack: PlannedCall {
            reference: m.attack_ref,
            plugin: m.attack_plugin,
            args: json("plan attack args", &m.attack_args)?,
        },
        planner: PlannedCall {
            reference: m.planner_ref,
            plugin: m.planner_plugin,
            args: json("plan planner args", &m.planner_args)?,
        },
        id: m.id,
        name: m.name,
        created: at(m.created_at_us),
        deleted: m.deleted_at_us.map(at),
        dry_run: m.dry_run,
        timezone: m.timezone,
        seed: m.seed as u64,
        grace: Duration::from_millis(m.grace_ms.max(0) as u64),
        paused: m.paused_at_us.map(at),
        planned_until: m.planned_until_us.map(at),
        misfire: m.misfire.parse().map_err(|e| corrupt("plan misfire", e))?,
        overlap: m.overlap.parse().map_err(|e| corrupt("plan overlap", e))?,
        steady_state: match m.steady_state {
            None => Vec::new(),
            Some(text) => {
                let calls = json("plan steady state", &text)?;
                let calls =
                    calls.as_array().ok_or_else(|| StorageError::Corrupt("plan steady state is not a list".into()))?;
                calls
                    .iter()
                    .map(|c| {
                        let field = |k: &str| {
                            c[k].as_str()
                                .map(str::to_string)
                                .ok_or_else(|| StorageError::Corrupt(format!("plan steady state lacks {k}")))
                        };
                        Ok(PlannedCall { reference: field("ref")?, plugin: field("plugin")?, args: c["args"].clone() })
                    })
                    .collect::<Result<Vec<_>, StorageError>>()?
            }
        },
        stop_conditions: match m.stop_conditions {
            None => Vec::new(),
            Some(text) => {
                let conditions = json("plan stop conditions", &text)?;
                let conditions = conditions
                    .as_array()
                    .ok_or_else(|| StorageError::Corrupt("plan stop conditions are not a list".into()))?;
                conditions
                    .iter()
                    .map(|c| {
                        let text = |k: &str| {
                            c[k].as_str()
                                .map(str::to_string)
                                .ok_or_else(|| StorageError::Corrupt(format!("a plan stop condition lacks {k}")))
                        };
                        let ms = |k: &str| {
                            c[k].as_u64()
                                .map(Duration::from_millis)
                                .ok_or_else(|| StorageError::Corrupt(format!("a plan stop condition lacks {k}")))
                        };
                        Ok(cme_engine::StopCondition {
                            probe: PlannedCall {
                                reference: text("ref")?,
                                plugin: text("plugin")?,
                                args: c["args"].clone(),
                            },
                            interval: ms("interval_ms")?,
                            settle: ms("settle_ms")?,
                            on_failure: text("on_failure")?
                                .parse()
                                .map_err(|e| corrupt("plan stop condition on_failure", e))?,
                        })
                    })
                    .collect::<Result<Vec<_>, StorageError>>()?
            }
        },
        steps: m.steps.as_deref().map(steps_of).transpose()?.unwrap_or_default(),
        deadline: m.deadline_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
        created_by: match m.created_by {
            None => None,
            Some(text) => {
                let value = json("plan created_by", &text)?;
                let field = |k: &str| {
                    value[k]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| StorageError::Corrupt(format!("plan created_by lacks {k}")))
                };
                Some(Actor { name: field("name")?, role: field("role")? })
            }
        },
    })
}

pub(crate) fn executor_model(e: &Executor) -> executor::Model {
    executor::Model {
        id: e.id.clone(),
        plan_id: e.plan_id.clone(),
        due_at_us: us(e.due),
        status: e.status.as_str().to_string(),
        attempts: e.attempts as i32,
        lease_owner: e.lease.as_ref().map(|l| l.owner.clone()),
        lease_expires_us: e.lease.as_ref().map(|l| us(l.expires)),
        grace_ms: e.grace.as_millis() as i64,
        created_at_us: us(e.created),
        started_at_us: e.started.map(us),
        finished_at_us: e.finished.map(us),
        summary: e.report.as_ref().map(|r| r.summary.clone()),
        targets: targets_text(e.report.as_ref()),
        details: e.report.as_ref().map(|r| r.details.to_string()),
        error: e.error.clone(),
        log: log_text(&e.log),
        dry_run: e.dry_run,
        reason: e.reason.clone(),
        outcome: e.outcome.map(|o| o.as_str().to_string()),
        journal: None,
    }
}

pub(crate) fn journal_text(journal: &cme_engine::Journal) -> String {
    serde_json::to_string(journal).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn targets_text(report: Option<&Report>) -> String {
    serde_json::to_string(&report.map(|r| r.targets.clone()).unwrap_or_default()).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn log_text(log: &RunLog) -> String {
    serde_json::to_string(log).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn executor(m: executor::Model) -> Result<Executor, StorageError> {
    let report = match m.summary {
        None => None,
        Some(summary) => Some(Report {
            summary,
            targets: serde_json::from_str(&m.targets).map_err(|e| corrupt("executor targets", e))?,
            details: m.details.as_deref().map(|d| json("executor details", d)).transpose()?.unwrap_or(Value::Null),
        }),
    };
    let lease = match (m.lease_owner, m.lease_expires_us) {
        (Some(owner), Some(expires)) => Some(Lease { owner, expires: at(expires) }),
        _ => None,
    };
    Ok(Executor {
        status: m.status.parse().map_err(|e| corrupt("executor status", e))?,
        log: serde_json::from_str(&m.log).map_err(|e| corrupt("executor log", e))?,
        id: m.id,
        plan_id: m.plan_id,
        due: at(m.due_at_us),
        attempts: m.attempts.max(0) as u32,
        lease,
        grace: Duration::from_millis(m.grace_ms.max(0) as u64),
        created: at(m.created_at_us),
        started: m.started_at_us.map(at),
        finished: m.finished_at_us.map(at),
        report,
        error: m.error,
        dry_run: m.dry_run,
        reason: m.reason,
        outcome: m.outcome.map(|o| o.parse().map_err(|e| corrupt("executor outcome", e))).transpose()?,
    })
}

pub(crate) fn blackout_model(b: &Blackout) -> blackout::Model {
    blackout::Model {
        id: b.id.clone(),
        name: b.name.clone(),
        plan_id: b.plan_id.clone(),
        spec: serde_json::to_string(&b.when).unwrap_or_else(|_| "{}".into()),
        calendar: b.calendar.clone(),
        stop_running: b.stop_running,
        created_at_us: us(b.created),
        created_by: b.created_by.clone(),
        description: b.description.clone(),
    }
}

pub(crate) fn blackout(m: blackout::Model) -> Result<Blackout, StorageError> {
    Ok(Blackout {
        when: serde_json::from_str(&m.spec).map_err(|e| corrupt("blackout spec", e))?,
        id: m.id,
        name: m.name,
        description: m.description,
        plan_id: m.plan_id,
        calendar: m.calendar,
        stop_running: m.stop_running,
        created: at(m.created_at_us),
        created_by: m.created_by,
    })
}

pub(crate) fn audit_row(e: &AuditEvent) -> audit_event::ActiveModel {
    use sea_orm::Set;
    audit_event::ActiveModel {
        id: sea_orm::NotSet,
        at_us: Set(us(e.at)),
        source: Set(e.source.as_str().into()),
        run_id: Set(e.run_id.clone().unwrap_or_default()),
        actor: Set(e.actor.clone()),
        action: Set(e.action.clone()),
        // Audit rows are shown and exported: stored masked, whoever wrote the event.
        target: Set(cme_secrets::text_of(&e.target).into_owned()),
        decision: Set(e.decision.as_str().into()),
        reason: Set(cme_secrets::option_of(e.reason.as_deref())),
        dry_run: Set(e.dry_run),
        outcome: Set(cme_secrets::option_of(e.outcome.as_deref())),
    }
}

pub(crate) fn audit(m: audit_event::Model) -> Result<AuditEntry, StorageError> {
    Ok(AuditEntry {
        id: m.id,
        event: AuditEvent {
            at: at(m.at_us),
            source: m.source.parse().map_err(|e| corrupt("audit source", e))?,
            run_id: Some(m.run_id).filter(|r| !r.is_empty()),
            actor: m.actor,
            action: m.action,
            target: m.target,
            decision: m.decision.parse().map_err(|e| corrupt("audit decision", e))?,
            reason: m.reason,
            dry_run: m.dry_run,
            outcome: m.outcome,
        },
    })
}

/// A credential's row; its secrets sealed when there is a key.
pub(crate) fn credential_model(c: &Credential, key: Option<&CredentialKey>) -> credential::Model {
    let seal = |secret: &str| match key {
        Some(key) => key.seal(&c.name, secret),
        None => secret.to_string(),
    };
    credential::Model {
        name: c.name.clone(),
        user: c.user.clone(),
        private_key: seal(&c.private_key),
        passphrase: c.passphrase.as_deref().map(seal),
        fingerprint: c.fingerprint.clone(),
        algorithm: c.algorithm.clone(),
        created_at_us: us(c.created),
        may_use: Some(serde_json::to_string(&c.may_use).unwrap_or_else(|_| "[]".into())),
        owner_plan: c.owner_plan.clone(),
    }
}

pub(crate) fn credential(m: credential::Model, key: Option<&CredentialKey>) -> Result<Credential, StorageError> {
    let may_use = match &m.may_use {
        None => vec!["operator".to_string(), "admin".to_string()],
        Some(text) => serde_json::from_str(text).map_err(|e| corrupt(&format!("credential {} may_use", m.name), e))?,
    };
    Ok(Credential {
        private_key: sealed::open(key, &m.name, &m.private_key)?,
        passphrase: m.passphrase.as_deref().map(|p| sealed::open(key, &m.name, p)).transpose()?,
        name: m.name,
        user: m.user,
        fingerprint: m.fingerprint,
        algorithm: m.algorithm,
        created: at(m.created_at_us),
        may_use,
        owner_plan: m.owner_plan,
    })
}

pub(crate) fn grant_text(grant: &Grant) -> String {
    serde_json::to_string(grant).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn plugin_model(r: &PluginRecord, wasm: &[u8]) -> plugin::Model {
    plugin::Model {
        id: r.id.clone(),
        name: r.name.clone(),
        version: r.version.clone(),
        kind: r.kind.as_str().into(),
        sha256: r.sha256.clone(),
        size: r.size as i64,
        wasm: wasm.to_vec(),
        status: r.status.as_str().into(),
        grant: r.grant.as_ref().map(grant_text),
        uploaded_by: r.uploaded_by.clone(),
        uploaded_at_us: us(r.uploaded_at),
        updated_at_us: us(r.updated_at),
        signed_by: r.signed_by.clone(),
    }
}

pub(crate) fn plugin_record(row: PluginRow) -> Result<PluginRecord, StorageError> {
    let grant = match row.grant.as_deref() {
        None => None,
        Some(text) => {
            Some(serde_json::from_str::<Grant>(text).map_err(|e| corrupt(&format!("grant of {}", row.id), e))?)
        }
    };
    Ok(PluginRecord {
        kind: row.kind.parse().map_err(|e| corrupt("plugin kind", e))?,
        status: row.status.parse().map_err(|e| corrupt("plugin status", e))?,
        grant,
        id: row.id,
        name: row.name,
        version: row.version,
        sha256: row.sha256,
        size: row.size.max(0) as u64,
        uploaded_by: row.uploaded_by,
        uploaded_at: at(row.uploaded_at_us),
        updated_at: at(row.updated_at_us),
        signed_by: row.signed_by,
    })
}
