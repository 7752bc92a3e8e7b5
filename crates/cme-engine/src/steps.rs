//! An experiment's steps: several faults, verifications and waits in one run, ordered by
//! `after` (steps without it start together; a lane is a chain of `after`). What is
//! checked here needs no plugin: names, references, cycles and the step bounds. The
//! args and probes are checked against their plugins by the plan's draft.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::EngineError;
use crate::model::PlannedCall;
use crate::plans::PluginCall;

/// The most steps an experiment may have (as an AWS FIS template's actions).
pub const MAX_STEPS: usize = 20;
/// The most steps of one run in flight at once.
pub const MAX_PARALLEL_STEPS: usize = 10;
/// The most probes one verify step may name.
pub const MAX_VERIFY_PROBES: usize = 8;
/// The longest a step's duration or wait may be.
pub const MAX_STEP_SECONDS: u64 = 86_400;

/// One step of a stored experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    /// Steps that must have ended (their faults reverted) before this one starts.
    pub after: Vec<String>,
    pub action: StepAction,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    /// Makes a fault; holds it `duration` (None: until the experiment ends), then reverts
    /// what the attack registered.
    Attack { call: PlannedCall, duration: Option<Duration>, irreversible: bool },
    /// Probes that must all answer healthy, else the run is refuted and aborted.
    Verify(Vec<PlannedCall>),
    /// Waits.
    Wait(Duration),
}

impl StepAction {
    /// `attack`, `verify` or `wait`: what journals and answers call the step.
    pub fn kind(&self) -> &'static str {
        match self {
            StepAction::Attack { .. } => "attack",
            StepAction::Verify(_) => "verify",
            StepAction::Wait(_) => "wait",
        }
    }
}

/// A step as a plan body gives it.
#[derive(Debug, Clone)]
pub struct NewStep {
    pub name: String,
    pub after: Vec<String>,
    pub action: NewStepAction,
}

/// What a new step does (exactly one of them: the body's shape says so).
#[derive(Debug, Clone)]
pub enum NewStepAction {
    Attack { call: PluginCall, duration_seconds: Option<u64>, irreversible: bool },
    Verify(Vec<PluginCall>),
    Wait { seconds: u64 },
}

/// Checks the steps' shape and order: their number, names (unique), `after` references
/// (known, not themselves), that they form no cycle, at least one attack, and the
/// durations. Every refusal names the step (`/steps/3/after/0`).
pub(crate) fn check_graph(steps: &[NewStep]) -> Result<(), EngineError> {
    if steps.is_empty() {
        return Err(EngineError::invalid("/steps", "an experiment has at least one step"));
    }
    if steps.len() > MAX_STEPS {
        return Err(EngineError::invalid("/steps", format!("at most {MAX_STEPS} steps")));
    }
    let mut index = HashMap::new();
    for (i, step) in steps.iter().enumerate() {
        if step.name.trim().is_empty() || step.name.len() > 64 {
            return Err(EngineError::invalid(&format!("/steps/{i}/name"), "a step's name has 1 to 64 characters"));
        }
        if let Some(first) = index.insert(step.name.as_str(), i) {
            return Err(EngineError::invalid(
                &format!("/steps/{i}/name"),
                format!("step {i} has the name of step {first} ({:?}): names are unique", step.name),
            ));
        }
    }
    for (i, step) in steps.iter().enumerate() {
        for (j, before) in step.after.iter().enumerate() {
            match index.get(before.as_str()) {
                None => {
                    return Err(EngineError::invalid(
                        &format!("/steps/{i}/after/{j}"),
                        format!("no step is named {before:?}"),
                    ));
                }
                Some(&k) if k == i => {
                    return Err(EngineError::invalid(&format!("/steps/{i}/after/{j}"), "a step cannot follow itself"));
                }
                Some(_) => {}
            }
        }
        let seconds = match &step.action {
            NewStepAction::Attack { duration_seconds, .. } => duration_seconds.map(|s| ("duration_seconds", s)),
            NewStepAction::Wait { seconds } => Some(("wait_seconds", *seconds)),
            NewStepAction::Verify(probes) => {
                if probes.is_empty() || probes.len() > MAX_VERIFY_PROBES {
                    return Err(EngineError::invalid(
                        &format!("/steps/{i}/verify"),
                        format!("a verify step names 1 to {MAX_VERIFY_PROBES} probes"),
                    ));
                }
                None
            }
        };
        if let Some((field, seconds)) = seconds
            && !(1..=MAX_STEP_SECONDS).contains(&seconds)
        {
            return Err(EngineError::invalid(
                &format!("/steps/{i}/{field}"),
                format!("1 to {MAX_STEP_SECONDS} seconds"),
            ));
        }
    }
    if !steps.iter().any(|s| matches!(s.action, NewStepAction::Attack { .. })) {
        return Err(EngineError::invalid("/steps", "an experiment has at least one attack step"));
    }
    if let Some(i) = first_in_cycle(steps, &index) {
        return Err(EngineError::invalid(
            &format!("/steps/{i}/after"),
            format!("step {:?} is part of a cycle of `after`: it could never start", steps[i].name),
        ));
    }
    Ok(())
}

/// A step on a cycle of `after`, if there is one (Kahn's algorithm: what never becomes
/// ready is on a cycle or after one; the first such step on a cycle is named).
fn first_in_cycle(steps: &[NewStep], index: &HashMap<&str, usize>) -> Option<usize> {
    let mut waiting: Vec<usize> = steps.iter().map(|s| s.after.len()).collect();
    let mut followers: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for before in &step.after {
            followers[index[before.as_str()]].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&i| waiting[i] == 0).collect();
    let mut done = vec![false; steps.len()];
    while let Some(i) = ready.pop() {
        done[i] = true;
        for &f in &followers[i] {
            waiting[f] -= 1;
            if waiting[f] == 0 {
                ready.push(f);
            }
        }
    }
    // A step that never became ready: follow its unfinished `after` until a step repeats.
    let start = (0..steps.len()).find(|&i| !done[i])?;
    let mut seen = vec![false; steps.len()];
    let mut at = start;
    while !seen[at] {
        seen[at] = true;
        at = steps[at].after.iter().map(|b| index[b.as_str()]).find(|&b| !done[b])?;
    }
    Some(at)
}

/// Whether a plugin's args schema declares that a fault made with `args` registers its
/// revert: `"x-cme-reversible": true` (always), or a JSON Schema the args must match
/// (kill-process reverts only a STOP with a duration). A plugin that says nothing is not
/// reversible.
pub(crate) fn reversible(schema: &Value, args: &Value) -> bool {
    match schema.get("x-cme-reversible") {
        Some(Value::Bool(flag)) => *flag,
        Some(condition @ Value::Object(_)) => jsonschema::is_valid(condition, args),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attack(name: &str, after: &[&str]) -> NewStep {
        NewStep {
            name: name.into(),
            after: after.iter().map(|s| s.to_string()).collect(),
            action: NewStepAction::Attack {
                call: PluginCall { reference: "x".into(), args: json!({}) },
                duration_seconds: Some(5),
                irreversible: false,
            },
        }
    }

    fn field_of(result: Result<(), EngineError>) -> String {
        match result {
            Err(EngineError::Invalid { field, .. }) => field,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn lanes_and_joins_are_accepted() {
        let steps = [attack("a", &[]), attack("b", &[]), attack("c", &["a", "b"]), attack("d", &["c"])];
        assert!(check_graph(&steps).is_ok());
    }

    #[test]
    fn a_cycle_is_refused_naming_a_step_on_it() {
        let steps = [attack("a", &[]), attack("b", &["d"]), attack("c", &["b"]), attack("d", &["c"])];
        let field = field_of(check_graph(&steps));
        assert!(["/steps/1/after", "/steps/2/after", "/steps/3/after"].contains(&field.as_str()), "{field}");
        // A step after a cycle is not on it: the cycle is named.
        let steps = [attack("a", &["b"]), attack("b", &["a"]), attack("c", &["a"])];
        let field = field_of(check_graph(&steps));
        assert!(["/steps/0/after", "/steps/1/after"].contains(&field.as_str()), "{field}");
    }

    #[test]
    fn unknown_refs_duplicates_and_self_references_are_refused() {
        assert_eq!(field_of(check_graph(&[attack("a", &["nope"])])), "/steps/0/after/0");
        assert_eq!(field_of(check_graph(&[attack("a", &[]), attack("a", &[])])), "/steps/1/name");
        assert_eq!(field_of(check_graph(&[attack("a", &["a"])])), "/steps/0/after/0");
        let too_many: Vec<NewStep> = (0..=MAX_STEPS).map(|i| attack(&format!("s{i}"), &[])).collect();
        assert_eq!(field_of(check_graph(&too_many)), "/steps");
        let wait_only = [NewStep { name: "w".into(), after: vec![], action: NewStepAction::Wait { seconds: 1 } }];
        assert_eq!(field_of(check_graph(&wait_only)), "/steps");
        let endless = [NewStep { name: "w".into(), after: vec![], action: NewStepAction::Wait { seconds: 0 } }];
        assert_eq!(field_of(check_graph(&endless)), "/steps/0/wait_seconds");
    }

    #[test]
    fn reversibility_is_what_the_schema_declares() {
        assert!(!reversible(&json!({"type": "object"}), &json!({})));
        assert!(reversible(&json!({"x-cme-reversible": true}), &json!({})));
        let stop_only =
            json!({"x-cme-reversible": {"properties": {"signal": {"const": "STOP"}}, "required": ["signal"]}});
        assert!(reversible(&stop_only, &json!({"signal": "STOP"})));
        assert!(!reversible(&stop_only, &json!({"signal": "KILL"})));
        assert!(!reversible(&stop_only, &json!({})));
    }
}
