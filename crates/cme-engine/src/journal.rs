//! A run's journal: each step's start and end with its targets, the probe readings
//! before, during and after the faults, and every revert with its outcome. Every run has
//! one (a one-attack plan's is one step); it is stored with the run's result, shown as
//! JSON or JUnit XML, and streamed while the run is in flight.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use cme_model::text_enum;

/// What an experiment's run showed (None: it never started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every step ran and every verify held.
    Held,
    /// A verify step found the system unhealthy: the hypothesis did not hold.
    Refuted,
    /// It stopped before its end: a step failed, a stop condition, the deadline, a
    /// cancel or a halt.
    Aborted,
}

text_enum!(Outcome, "outcome", { Held => "held", Refuted => "refuted", Aborted => "aborted" });

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Waiting for the steps it comes after.
    Waiting,
    Running,
    Succeeded,
    /// Its attack failed, or its verify found the system unhealthy.
    Failed,
    /// Stopped while running (the run was aborted).
    Cancelled,
    /// Never started (the run was aborted first).
    NotRun,
}

/// When a probe was read, relative to the faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// No fault made yet.
    Before,
    /// A fault is on.
    During,
    /// Every fault made is reverted.
    After,
}

/// One step as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    /// `attack`, `verify` or `wait`.
    pub kind: String,
    pub after: Vec<String>,
    /// `name@version` of an attack step's plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub status: StepStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<DateTime<Utc>>,
    /// When its fault's hold ended and its reverts began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverting: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A probe's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReading {
    /// The verify step that asked; None: the plan's steady state, before the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// `name@version`.
    pub probe: String,
    pub at: DateTime<Utc>,
    pub phase: Phase,
    pub healthy: bool,
    /// Why not healthy (or could not tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One attempt at a revert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevertRecord {
    /// The step whose fault it reverts (None: armed outside a step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub undo_id: String,
    pub target: String,
    pub at: DateTime<Utc>,
    /// `done`, `failed`, or `pending` (to be retried).
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why it ran now (`step ended`, `aborted: ...`, `run ended`).
    pub why: String,
}

/// A run's journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub readings: Vec<ProbeReading>,
    #[serde(default)]
    pub reverts: Vec<RevertRecord>,
    /// Why the run stopped before its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

impl Journal {
    /// A one-attack run's journal: one step, `attack`, as the run ended (held when it
    /// succeeded, else aborted), after the steady state's readings.
    pub fn of_one_attack(
        plugin: &str,
        end: &crate::model::RunEnd,
        readings: Vec<ProbeReading>,
        started: DateTime<Utc>,
    ) -> Journal {
        use crate::model::ExecutorStatus;
        let status = match end.status {
            ExecutorStatus::Succeeded => StepStatus::Succeeded,
            ExecutorStatus::Cancelled => StepStatus::Cancelled,
            _ => StepStatus::Failed,
        };
        let held = status == StepStatus::Succeeded;
        Journal {
            steps: vec![StepRecord {
                name: "attack".into(),
                kind: "attack".into(),
                after: Vec::new(),
                plugin: Some(plugin.to_string()),
                status,
                started: Some(started),
                ended: Some(end.finished),
                reverting: None,
                targets: end.report.as_ref().map(|r| r.targets.clone()).unwrap_or_default(),
                summary: end.report.as_ref().map(|r| r.summary.clone()),
                error: end.error.clone(),
            }],
            readings,
            reverts: Vec::new(),
            aborted: (!held).then(|| end.error.clone().unwrap_or_else(|| "the attack did not succeed".into())),
            outcome: Some(if held { Outcome::Held } else { Outcome::Aborted }),
        }
    }

    /// The record of step `name`.
    pub fn step_mut(&mut self, name: &str) -> Option<&mut StepRecord> {
        self.steps.iter_mut().find(|s| s.name == name)
    }

    /// The phase a probe read now is in: before any fault, during one, or after all
    /// were reverted.
    pub fn phase(&self) -> Phase {
        let attacks = self.steps.iter().filter(|s| s.kind == "attack" && s.started.is_some());
        let mut any = false;
        for step in attacks {
            any = true;
            if step.status == StepStatus::Running || step.reverting.is_none() {
                return Phase::During;
            }
        }
        if any { Phase::After } else { Phase::Before }
    }

    /// The journal as JUnit XML: one test suite of the steps (a failed verify or attack
    /// is a failure, a step cancelled by an abort an error, a step never run skipped), and
    /// one of the reverts (a failed revert is a failure).
    pub fn junit(&self, run_id: &str, plan_name: &str) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
        let count = |status: StepStatus| self.steps.iter().filter(|s| s.status == status).count();
        let time = |start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>| match (start, end) {
            (Some(start), Some(end)) => (end - start).num_milliseconds().max(0) as f64 / 1000.0,
            _ => 0.0,
        };
        let suite_time =
            time(self.steps.iter().filter_map(|s| s.started).min(), self.steps.iter().filter_map(|s| s.ended).max());
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{suite_time:.3}\"{}>\n",
            xml(&format!("{plan_name} (run {run_id})")),
            self.steps.len(),
            count(StepStatus::Failed),
            count(StepStatus::Cancelled) + count(StepStatus::Running) + count(StepStatus::Waiting),
            count(StepStatus::NotRun),
            self.steps.iter().filter_map(|s| s.started).min().map_or(String::new(), |t| format!(" timestamp=\"{}\"", stamp(t))),
        ));
        out.push_str("    <properties>\n");
        if let Some(outcome) = self.outcome {
            out.push_str(&format!("      <property name=\"outcome\" value=\"{}\"/>\n", outcome.as_str()));
        }
        if let Some(why) = &self.aborted {
            out.push_str(&format!("      <property name=\"aborted\" value=\"{}\"/>\n", xml(why)));
        }
        out.push_str("    </properties>\n");
        for step in &self.steps {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"cme.{}\" time=\"{:.3}\">\n",
                xml(&step.name),
                step.kind,
                time(step.started, step.ended)
            ));
            let message = step.error.clone().unwrap_or_default();
            match step.status {
                StepStatus::Failed => out.push_str(&format!(
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                    xml(&message),
                    if step.kind == "verify" { "refuted" } else { "failed" },
                    xml(&message)
                )),
                StepStatus::Cancelled | StepStatus::Running | StepStatus::Waiting => out.push_str(&format!(
                    "      <error message=\"{}\" type=\"aborted\"/>\n",
                    xml(&self.aborted.clone().unwrap_or(message))
                )),
                StepStatus::NotRun => {
                    out.push_str("      <skipped message=\"the run was aborted before this step\"/>\n")
                }
                StepStatus::Succeeded => {}
            }
            let mut lines: Vec<String> = Vec::new();
            if !step.targets.is_empty() {
                lines.push(format!("targets: {}", step.targets.join(", ")));
            }
            if let Some(summary) = &step.summary {
                lines.push(summary.clone());
            }
            for reading in self.readings.iter().filter(|r| r.step.as_deref() == Some(&step.name)) {
                lines.push(format!(
                    "{} {}: {}{}",
                    stamp(reading.at),
                    reading.probe,
                    if reading.healthy { "healthy" } else { "unhealthy" },
                    reading.reason.as_ref().map_or(String::new(), |r| format!(" ({r})"))
                ));
            }
            if !lines.is_empty() {
                out.push_str(&format!("      <system-out>{}</system-out>\n", xml(&lines.join("\n"))));
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
        let failed = self.reverts.iter().filter(|r| r.state == "failed").count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">\n",
            xml(&format!("{plan_name} (run {run_id}) reverts")),
            self.reverts.len()
        ));
        for revert in &self.reverts {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"cme.revert\">\n",
                xml(&format!("{} {}", revert.step.as_deref().unwrap_or("run"), revert.target))
            ));
            let outcome = revert.outcome.clone().unwrap_or_default();
            if revert.state == "failed" {
                out.push_str(&format!("      <failure message=\"{}\" type=\"revert\"/>\n", xml(&outcome)));
            }
            out.push_str(&format!(
                "      <system-out>{}</system-out>\n",
                xml(&format!("{} {} ({}): {outcome}", stamp(revert.at), revert.state, revert.why))
            ));
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Text as XML attribute or element content: the five entities escaped, and characters
/// XML 1.0 cannot carry dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, kind: &str, status: StepStatus) -> StepRecord {
        StepRecord {
            name: name.into(),
            kind: kind.into(),
            after: vec![],
            plugin: None,
            status,
            started: Some(Utc::now()),
            ended: Some(Utc::now()),
            reverting: None,
            targets: vec![],
            summary: None,
            error: Some("<bad> & \"worse\" \u{1}".into()),
        }
    }

    #[test]
    fn junit_counts_steps_and_escapes_text() {
        let journal = Journal {
            steps: vec![
                step("a", "attack", StepStatus::Succeeded),
                step("v", "verify", StepStatus::Failed),
                step("b", "attack", StepStatus::Cancelled),
                step("c", "wait", StepStatus::NotRun),
            ],
            aborted: Some("verify v refuted".into()),
            outcome: Some(Outcome::Refuted),
            ..Journal::default()
        };
        let xml = journal.junit("r1", "p <1>");
        assert!(xml.contains("tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\""), "{xml}");
        assert!(xml.contains("name=\"p &lt;1&gt; (run r1)\""), "{xml}");
        assert!(xml.contains("&lt;bad&gt; &amp; &quot;worse&quot; "), "{xml}");
        assert!(!xml.contains('\u{1}'));
    }

    #[test]
    fn the_phase_follows_the_faults() {
        let mut journal = Journal { steps: vec![step("a", "attack", StepStatus::Waiting)], ..Journal::default() };
        journal.steps[0].started = None;
        assert_eq!(journal.phase(), Phase::Before);
        journal.steps[0].started = Some(Utc::now());
        journal.steps[0].status = StepStatus::Running;
        assert_eq!(journal.phase(), Phase::During);
        journal.steps[0].status = StepStatus::Succeeded;
        journal.steps[0].reverting = Some(Utc::now());
        assert_eq!(journal.phase(), Phase::After);
    }
}
