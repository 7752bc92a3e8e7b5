//! The checker: judges a recorded [`History`] against the engine's promises. Safety over
//! the whole history (what must never happen, faults or not); liveness only over the
//! state after the quiet period (faults lifted, engines up, leases and the reaper given
//! their time). An operation without an answer (a timeout, a reset) is indeterminate:
//! neither promised nor refused.

use std::collections::{HashMap, HashSet};

use super::history::{Action, Answer, History, Ms};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Violation {
    /// One run id reached the sink twice.
    Twice { run_id: String },
    /// An attack whose run the database does not know.
    UnknownRun { run_id: String },
    /// An attack of a plan whose creation was refused.
    RefusedPlanFired { plan: String },
    /// An attack while a halt answered 200 was in force.
    WhileHalted { run_id: String, at: Ms },
    /// An attack of a plan paused or deleted (answered 2xx) before it.
    PausedOrDeleted { run_id: String, at: Ms },
    /// An attack of an executor due in a blackout answered 2xx before the claim that
    /// took it (its due time minus `claim_ahead_ms`).
    InBlackout { run_id: String },
    /// An attack before its due time minus `claim_ahead_ms`.
    Early { run_id: String, by_ms: Ms },
    /// More attacks at once than `max_concurrent_attacks`.
    OverCap { at: Ms, running: usize, cap: usize },
    /// Two runs of an `overlap: forbid` plan at once.
    Overlap { plan: String, first: String, second: String },
    /// A change answered 2xx that the database does not hold.
    LostWrite { what: String },
    /// A webhook event for a change the database does not hold.
    PhantomEvent { kind: String, subject: String },
    /// A committed change no webhook event told.
    MissingEvent { kind: String, subject: String },
    /// An executor's end told before its start.
    EventOrder { subject: String },
    /// An experiment's revert before its fault.
    RevertBeforeFault { plan: String },
    /// After the quiet period: an experiment's fault never reverted.
    NotReverted { plan: String },
    /// After the quiet period: an executor still running.
    StillRunning { executor: String },
    /// "Outcome unknown" where no engine died.
    FalseUnknown { executor: String },
}

/// Every violation the history shows (empty: it holds).
pub fn check(history: &History) -> Vec<Violation> {
    let mut found = Vec::new();
    safety_of_attacks(history, &mut found);
    concurrency(history, &mut found);
    durability(history, &mut found);
    webhooks(history, &mut found);
    liveness(history, &mut found);
    reverts(history, &mut found);
    found.sort();
    found.dedup();
    found
}

/// Spans `[from, until)` in which a promise holds.
type Spans = Vec<(Ms, Ms)>;

/// Whether `at` falls in a span, `grace` after its start at the earliest (an attack
/// already on its way when the answer came is forgiven).
fn in_spans(spans: &Spans, at: Ms, grace: Ms) -> bool {
    spans.iter().any(|(from, until)| from.saturating_add(grace) <= at && at < *until)
}

/// Halts answered 2xx, each until the next resume was sent.
fn halted_spans(history: &History) -> Spans {
    let mut ops: Vec<_> = history.ops.iter().filter(|o| matches!(o.action, Action::Halt | Action::Resume)).collect();
    ops.sort_by_key(|o| o.sent);
    let mut spans = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if op.action == Action::Halt && op.answer.done() {
            let until = ops[i + 1..].iter().find(|o| o.action == Action::Resume).map_or(Ms::MAX, |o| o.sent);
            spans.push((op.answered, until));
        }
    }
    spans
}

/// Per plan id: spans in which it was paused or deleted (answered 2xx).
fn stopped_spans(history: &History) -> HashMap<String, Spans> {
    let mut ops: Vec<_> = history.ops.iter().collect();
    ops.sort_by_key(|o| o.sent);
    let mut spans: HashMap<String, Spans> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        match &op.action {
            Action::Pause { id } if op.answer.done() => {
                let until = ops[i + 1..]
                    .iter()
                    .find(|o| matches!(&o.action, Action::ResumePlan { id: r } if r == id))
                    .map_or(Ms::MAX, |o| o.sent);
                spans.entry(id.clone()).or_default().push((op.answered, until));
            }
            Action::Delete { id } if op.answer.done() => {
                spans.entry(id.clone()).or_default().push((op.answered, Ms::MAX));
            }
            _ => {}
        }
    }
    spans
}

/// How far ahead a lone engine's clock was at `at` (a clock fault): it fires early by that.
/// A run claimed under the step may start up to a lease after it ends, later still when
/// its engine was stopped (SIGSTOP) meanwhile.
fn clock_ahead_at(history: &History, at: Ms) -> Ms {
    let lease = history.terms.lease_ms;
    history
        .faults
        .iter()
        .filter(|f| f.clock_ahead_ms > 0)
        .filter(|f| {
            let stopped: Ms = history
                .faults
                .iter()
                .filter(|g| g.kind == "sigstop" && f.from <= g.from && g.from <= f.until + lease)
                .map(|g| g.until - g.from)
                .sum();
            f.from <= at && at < f.until + lease + stopped
        })
        .map(|f| f.clock_ahead_ms)
        .max()
        .unwrap_or(0)
}

fn safety_of_attacks(history: &History, found: &mut Vec<Violation>) {
    let terms = &history.terms;
    let halted = halted_spans(history);
    let stopped = stopped_spans(history);
    let blackouts: Vec<(Ms, Ms, Ms)> = history
        .ops
        .iter()
        .filter_map(|o| match o.action {
            Action::Blackout { start, end } if o.answer.done() => Some((o.answered, start, end)),
            _ => None,
        })
        .collect();
    let mut seen = HashSet::new();
    let creations: HashMap<&str, &super::history::Op> = history
        .ops
        .iter()
        .filter_map(|o| match &o.action {
            Action::Create { name, .. } => Some((name.as_str(), o)),
            _ => None,
        })
        .collect();
    for receipt in &history.receipts {
        if !seen.insert(receipt.run_id.as_str()) {
            found.push(Violation::Twice { run_id: receipt.run_id.clone() });
        }
        if in_spans(&halted, receipt.at, terms.in_flight_ms) {
            found.push(Violation::WhileHalted { run_id: receipt.run_id.clone(), at: receipt.at });
        }
        if let Some(op) = creations.get(receipt.plan.as_str())
            && let Answer::Refused(_) = op.answer
        {
            found.push(Violation::RefusedPlanFired { plan: receipt.plan.clone() });
        }
        let Some(executor) = history.final_state.executors.get(&receipt.run_id) else {
            found.push(Violation::UnknownRun { run_id: receipt.run_id.clone() });
            continue;
        };
        if stopped.get(&executor.plan_id).is_some_and(|spans| in_spans(spans, receipt.at, terms.in_flight_ms)) {
            found.push(Violation::PausedOrDeleted { run_id: receipt.run_id.clone(), at: receipt.at });
        }
        // Blackouts are judged by the executor's due time (no engine clock involved), read
        // by each claim: one made before the claim (a second of slack) holds.
        let claimed_by = executor.due - terms.claim_ahead_ms - clock_ahead_at(history, receipt.at) - 1_000;
        if blackouts
            .iter()
            .any(|(answered, start, end)| *answered <= claimed_by && (*start..*end).contains(&executor.due))
        {
            found.push(Violation::InBlackout { run_id: receipt.run_id.clone() });
        }
        let earliest = executor.due - terms.claim_ahead_ms - clock_ahead_at(history, receipt.at);
        // The sink's clock and the engines' are one machine's: a few ms of scheduling.
        if receipt.at + 5 < earliest {
            found.push(Violation::Early { run_id: receipt.run_id.clone(), by_ms: earliest - receipt.at });
        }
    }
}

fn concurrency(history: &History, found: &mut Vec<Violation>) {
    if let Some(cap) = history.terms.max_concurrent_attacks {
        // +1 at an arrival, -1 at an answer; answers first at equal times (so an attack
        // answered the millisecond it arrived, its connection closed at once, dips the
        // count below its true value for a moment, never above).
        let mut edges: Vec<(Ms, i64)> = history.receipts.iter().flat_map(|r| [(r.at, 1), (r.done, -1)]).collect();
        edges.sort();
        let mut running = 0i64;
        for (at, step) in edges {
            running += step;
            if running > cap as i64 {
                found.push(Violation::OverCap { at, running: running as usize, cap });
                break;
            }
        }
    }
    let forbid: HashSet<&str> = history
        .ops
        .iter()
        .filter_map(|o| match &o.action {
            Action::Create { name, forbid: true, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut by_plan: HashMap<&str, Vec<&super::history::Receipt>> = HashMap::new();
    for receipt in history.receipts.iter().filter(|r| forbid.contains(r.plan.as_str())) {
        by_plan.entry(receipt.plan.as_str()).or_default().push(receipt);
    }
    for (plan, mut receipts) in by_plan {
        receipts.sort_by_key(|r| r.at);
        for pair in receipts.windows(2) {
            if pair[1].at < pair[0].done {
                found.push(Violation::Overlap {
                    plan: plan.to_string(),
                    first: pair[0].run_id.clone(),
                    second: pair[1].run_id.clone(),
                });
            }
        }
    }
}

fn durability(history: &History, found: &mut Vec<Violation>) {
    let state = &history.final_state;
    let mut ops: Vec<_> = history.ops.iter().collect();
    ops.sort_by_key(|o| o.sent);
    let later = |i: usize, f: &dyn Fn(&Action) -> bool| ops[i + 1..].iter().any(|o| f(&o.action));
    for (i, op) in ops.iter().enumerate() {
        if !op.answer.done() {
            continue;
        }
        match &op.action {
            Action::Create { id: Some(id), .. } => {
                let deleted_by_us = later(i, &|a| matches!(a, Action::Delete { id: d } if d == id));
                match state.plans.get(id) {
                    None => found.push(Violation::LostWrite { what: format!("plan {id} created") }),
                    Some(plan) if plan.deleted && !deleted_by_us => {
                        found.push(Violation::LostWrite { what: format!("plan {id} deleted by nobody") })
                    }
                    Some(_) => {}
                }
            }
            Action::Pause { id } => {
                let undone =
                    later(i, &|a| matches!(a, Action::ResumePlan { id: r } | Action::Delete { id: r } if r == id));
                if !undone && state.plans.get(id).is_some_and(|p| !p.paused && !p.deleted) {
                    found.push(Violation::LostWrite { what: format!("plan {id} paused") });
                }
            }
            Action::Delete { id } if state.plans.get(id).is_some_and(|p| !p.deleted) => {
                found.push(Violation::LostWrite { what: format!("plan {id} deleted") });
            }
            _ => {}
        }
    }
    // The switch ends as the last halt or resume answered, unless a later one is unknown.
    let switches: Vec<_> = ops.iter().filter(|o| matches!(o.action, Action::Halt | Action::Resume)).collect();
    if let Some(last) = switches.last()
        && last.answer.done()
        && state.halted != (last.action == Action::Halt)
    {
        found.push(Violation::LostWrite { what: format!("the halt switch ({:?} answered last)", last.action) });
    }
}

const TERMINAL: [&str; 5] =
    ["executor.succeeded", "executor.failed", "executor.cancelled", "executor.skipped", "executor.missed"];

fn webhooks(history: &History, found: &mut Vec<Violation>) {
    let state = &history.final_state;
    let mut by_subject: HashMap<(&str, &str), Ms> = HashMap::new();
    for delivery in &history.deliveries {
        let first = by_subject.entry((delivery.kind.as_str(), delivery.subject.as_str())).or_insert(delivery.at);
        *first = (*first).min(delivery.at);
        let committed = match delivery.kind.as_str() {
            "plan.created" => state.plans.contains_key(&delivery.subject),
            "plan.deleted" => state.plans.get(&delivery.subject).is_some_and(|p| p.deleted),
            kind if kind.starts_with("executor.") => match state.executors.get(&delivery.subject) {
                None => false,
                Some(executor) => {
                    let told = kind.trim_start_matches("executor.");
                    // A reaped run's "failed" may be replaced by its engine's late result.
                    told == executor.status || told == "started" || told == "failed"
                }
            },
            _ => true,
        };
        if !committed && delivery.at < state.read_at {
            found.push(Violation::PhantomEvent { kind: delivery.kind.clone(), subject: delivery.subject.clone() });
        }
    }
    for op in history.ops.iter().filter(|o| o.answer.done()) {
        if let Action::Create { id: Some(id), .. } = &op.action
            && !by_subject.contains_key(&("plan.created", id.as_str()))
        {
            found.push(Violation::MissingEvent { kind: "plan.created".into(), subject: id.clone() });
        }
    }
    for executor in state.executors.values() {
        let kind = format!("executor.{}", executor.status);
        // A deleted plan's waiting executors are told by its plan.deleted.
        let by_deletion = executor.error.as_deref() == Some("cancelled: plan deleted");
        if TERMINAL.contains(&kind.as_str())
            && !by_deletion
            && !by_subject.contains_key(&(kind.as_str(), executor.id.as_str()))
        {
            found.push(Violation::MissingEvent { kind, subject: executor.id.clone() });
        }
        if let Some(started) = by_subject.get(&("executor.started", executor.id.as_str()))
            && TERMINAL.iter().any(|t| by_subject.get(&(*t, executor.id.as_str())).is_some_and(|end| end < started))
        {
            found.push(Violation::EventOrder { subject: executor.id.clone() });
        }
    }
}

/// Every fault an experiment made is reverted, after it (each experiment plan runs once).
fn reverts(history: &History, found: &mut Vec<Violation>) {
    let mut by_plan: HashMap<&str, (Option<Ms>, Option<Ms>)> = HashMap::new();
    for touch in &history.touches {
        let (fault, revert) = by_plan.entry(touch.plan.as_str()).or_default();
        let slot = if touch.revert { revert } else { fault };
        *slot = Some(slot.map_or(touch.at, |t| t.min(touch.at)));
    }
    for (plan, (fault, revert)) in by_plan {
        match (fault, revert) {
            (Some(fault), Some(revert)) if revert < fault => {
                found.push(Violation::RevertBeforeFault { plan: plan.to_string() })
            }
            (Some(_), None) => found.push(Violation::NotReverted { plan: plan.to_string() }),
            _ => {}
        }
    }
}

/// The harness times a time a lone engine recorded by its own clock may stand for: itself,
/// and itself less each step its clock may have been under then (a step takes a second
/// to take effect and to end: slack). Which one it was, the time alone does not say.
fn harness_times(history: &History, engine_time: Ms) -> Vec<Ms> {
    let stepped = history
        .faults
        .iter()
        .filter(|f| f.clock_step_ms != 0)
        .map(|f| (f, engine_time - f.clock_step_ms))
        .filter(|(f, real)| f.from - 2_000 <= *real && *real < f.until + 2_000)
        .map(|(_, real)| real);
    std::iter::once(engine_time).chain(stepped).collect()
}

fn liveness(history: &History, found: &mut Vec<Violation>) {
    let lease = history.terms.lease_ms;
    // When each run really ran (its attack reached the sink): a due time set by a
    // stepped clock says little of that.
    let reached: HashMap<&str, Ms> = history.receipts.iter().map(|r| (r.run_id.as_str(), r.at)).collect();
    // A run due shortly before the final state was read may rightly be running still
    // (recurring plans go on firing); one due a lease and half a minute before is stuck.
    let stuck_before = history.final_state.read_at - lease - 30_000;
    for executor in history.final_state.executors.values() {
        // Else when its engine started it: a run may start long after its due time (its
        // engine's clock stepped back, or the engine was down meanwhile).
        let ran: Vec<Ms> = match (reached.get(executor.id.as_str()), executor.started) {
            (Some(at), _) => vec![*at],
            (None, Some(started)) => harness_times(history, started),
            (None, None) => vec![executor.due],
        };
        if executor.status == "running" && executor.due < stuck_before {
            found.push(Violation::StillRunning { executor: executor.id.clone() });
        }
        let unknown = executor.error.as_deref().is_some_and(|e| e.starts_with("outcome unknown"));
        // Only an engine that really died leaves a run's outcome unknown: one killed
        // (SIGKILL), or stopped while its disk refused every write, while the run may have
        // been claimed or running.
        let died = history.faults.iter().any(|f| {
            matches!(f.kind.as_str(), "kill9" | "read-only-disk")
                && ran.iter().any(|ran| f.from >= ran - lease - 5_000 && f.from <= ran + 2 * lease + 5_000)
        });
        if unknown && !died {
            found.push(Violation::FalseUnknown { executor: executor.id.clone() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::*;
    use super::*;

    /// A clean history: one plan created, fired once on time, told by its events.
    fn clean() -> History {
        let op = |action, sent, answer| Op { action, sent, answered: sent + 10, answer };
        let mut final_state = FinalState::default();
        final_state.plans.insert("p1".into(), FinalPlan { paused: false, deleted: false });
        final_state.executors.insert(
            "e1".into(),
            FinalExecutor {
                id: "e1".into(),
                plan_id: "p1".into(),
                status: "succeeded".into(),
                error: None,
                due: 2_000,
                started: Some(2_000),
            },
        );
        History {
            terms: Terms { claim_ahead_ms: 500, max_concurrent_attacks: Some(1), in_flight_ms: 1_000, lease_ms: 5_000 },
            ops: vec![
                op(
                    Action::Create { name: "n1".into(), id: Some("p1".into()), recurring: false, forbid: true },
                    1_000,
                    Answer::Done(201),
                ),
                op(Action::Halt, 10_000, Answer::Done(200)),
            ],
            receipts: vec![Receipt { run_id: "e1".into(), plan: "n1".into(), at: 2_010, done: 3_000 }],
            touches: vec![
                Touch { plan: "x1".into(), revert: false, at: 4_000 },
                Touch { plan: "x1".into(), revert: true, at: 6_000 },
            ],
            deliveries: vec![
                delivery("plan.created", "p1", 1_020),
                delivery("executor.started", "e1", 2_020),
                delivery("executor.succeeded", "e1", 3_100),
                delivery("engine.halted", "", 10_020),
            ],
            faults: vec![],
            final_state: FinalState { halted: true, read_at: 100_000, ..final_state },
        }
    }

    fn delivery(kind: &str, subject: &str, at: Ms) -> Delivery {
        Delivery { event_id: format!("{kind}-{subject}-{at}"), kind: kind.into(), subject: subject.into(), at }
    }

    fn receipt(run_id: &str, at: Ms, done: Ms) -> Receipt {
        Receipt { run_id: run_id.into(), plan: "n1".into(), at, done }
    }

    fn second_executor(history: &mut History, due: Ms) {
        history.final_state.executors.insert(
            "e2".into(),
            FinalExecutor {
                id: "e2".into(),
                plan_id: "p1".into(),
                status: "succeeded".into(),
                error: None,
                due,
                started: None,
            },
        );
        history.deliveries.push(delivery("executor.succeeded", "e2", due + 1_000));
    }

    #[test]
    fn a_clean_history_holds() {
        assert_eq!(check(&clean()), vec![]);
    }

    #[test]
    fn a_run_reaching_the_sink_twice_is_found() {
        let mut h = clean();
        h.receipts.push(receipt("e1", 4_000, 4_100));
        assert!(check(&h).contains(&Violation::Twice { run_id: "e1".into() }));
    }

    #[test]
    fn an_attack_while_halted_is_found_and_one_on_its_way_is_forgiven() {
        let mut h = clean();
        second_executor(&mut h, 10_500);
        h.receipts.push(receipt("e2", 10_500, 10_600));
        assert_eq!(check(&h), vec![], "within the in-flight allowance of the halt's answer");
        h.receipts[1].at = 12_000;
        h.receipts[1].done = 12_100;
        h.final_state.executors.get_mut("e2").unwrap().due = 12_000;
        assert!(check(&h).contains(&Violation::WhileHalted { run_id: "e2".into(), at: 12_000 }));
    }

    #[test]
    fn an_attack_of_a_paused_or_deleted_plan_is_found() {
        for action in [Action::Pause { id: "p1".into() }, Action::Delete { id: "p1".into() }] {
            let mut h = clean();
            h.ops.push(Op { action: action.clone(), sent: 5_000, answered: 5_010, answer: Answer::Done(200) });
            let plan = h.final_state.plans.get_mut("p1").unwrap();
            (plan.paused, plan.deleted) =
                (action != Action::Delete { id: "p1".into() }, action == Action::Delete { id: "p1".into() });
            second_executor(&mut h, 7_000);
            h.receipts.push(receipt("e2", 7_000, 7_100));
            assert!(check(&h).contains(&Violation::PausedOrDeleted { run_id: "e2".into(), at: 7_000 }), "{action:?}");
        }
    }

    #[test]
    fn an_early_attack_is_found_unless_a_lone_engines_clock_was_ahead_by_that_much() {
        let mut h = clean();
        h.receipts[0].at = 1_200;
        assert!(check(&h).contains(&Violation::Early { run_id: "e1".into(), by_ms: 300 }));
        h.faults.push(Fault {
            kind: "clock".into(),
            engine: Some(0),
            from: 1_000,
            until: 1_500,
            clock_ahead_ms: 90_000,
            clock_step_ms: 90_000,
        });
        assert!(!check(&h).iter().any(|v| matches!(v, Violation::Early { .. })));
    }

    #[test]
    fn attacks_beyond_the_cap_and_overlapping_runs_of_a_forbid_plan_are_found() {
        let mut h = clean();
        second_executor(&mut h, 2_000);
        h.receipts.push(receipt("e2", 2_500, 2_800));
        let found = check(&h);
        assert!(found.contains(&Violation::OverCap { at: 2_500, running: 2, cap: 1 }), "{found:?}");
        assert!(found.contains(&Violation::Overlap { plan: "n1".into(), first: "e1".into(), second: "e2".into() }));
    }

    #[test]
    fn a_lost_write_is_found() {
        let mut h = clean();
        h.final_state.plans.clear();
        assert!(check(&h).contains(&Violation::LostWrite { what: "plan p1 created".into() }));
        let mut h = clean();
        h.final_state.halted = false;
        assert!(check(&h).iter().any(|v| matches!(v, Violation::LostWrite { what } if what.contains("halt"))));
    }

    #[test]
    fn an_unanswered_write_promises_nothing() {
        let mut h = clean();
        h.ops[0].answer = Answer::Unknown;
        h.final_state.plans.clear();
        h.final_state.executors.clear();
        h.receipts.clear();
        h.deliveries.retain(|d| d.kind == "engine.halted");
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn a_refused_plan_that_fired_is_found() {
        let mut h = clean();
        h.ops[0].answer = Answer::Refused(503);
        assert!(check(&h).contains(&Violation::RefusedPlanFired { plan: "n1".into() }));
    }

    #[test]
    fn phantom_missing_and_misordered_events_are_found() {
        let mut h = clean();
        h.deliveries.push(delivery("plan.created", "ghost", 5));
        h.deliveries.retain(|d| d.kind != "executor.succeeded");
        h.deliveries.push(delivery("executor.succeeded", "e1", 2_000));
        let found = check(&h);
        assert!(found.contains(&Violation::PhantomEvent { kind: "plan.created".into(), subject: "ghost".into() }));
        assert!(found.contains(&Violation::EventOrder { subject: "e1".into() }));
        let mut h = clean();
        h.deliveries.retain(|d| d.kind != "plan.created");
        assert!(check(&h).contains(&Violation::MissingEvent { kind: "plan.created".into(), subject: "p1".into() }));
    }

    #[test]
    fn an_attack_due_in_a_blackout_made_before_its_claim_is_found() {
        let mut h = clean();
        let blackout = |answered| Op {
            action: Action::Blackout { start: 1_900, end: 2_100 },
            sent: answered - 10,
            answered,
            answer: Answer::Done(201),
        };
        h.ops.push(blackout(200));
        assert!(check(&h).contains(&Violation::InBlackout { run_id: "e1".into() }));
        // Made while the run may have been claimed already: not judged.
        h.ops.pop();
        h.ops.push(blackout(1_000));
        assert_eq!(check(&h), vec![]);
    }

    /// An attack answered the millisecond it arrived is no attack over the cap.
    #[test]
    fn an_attack_answered_as_it_arrived_counts_for_no_more_than_itself() {
        let mut h = clean();
        h.receipts[0].done = h.receipts[0].at;
        assert_eq!(check(&h), vec![]);
    }

    #[test]
    fn a_fault_never_reverted_or_reverted_before_it_is_found() {
        let mut h = clean();
        h.touches[1].at = 3_000;
        assert!(check(&h).contains(&Violation::RevertBeforeFault { plan: "x1".into() }));
        h.touches.pop();
        assert!(check(&h).contains(&Violation::NotReverted { plan: "x1".into() }));
    }

    #[test]
    fn a_run_still_running_and_an_unknown_outcome_without_a_death_are_found() {
        let mut h = clean();
        let executor = h.final_state.executors.get_mut("e1").unwrap();
        executor.status = "running".into();
        assert!(check(&h).contains(&Violation::StillRunning { executor: "e1".into() }));
        // Due just before the state was read: it may rightly run still, and its end may
        // be told after the reading (not a phantom).
        h.final_state.executors.get_mut("e1").unwrap().due = 99_000;
        h.receipts.clear();
        h.deliveries.retain(|d| d.kind != "executor.succeeded");
        h.deliveries.push(delivery("executor.succeeded", "e1", 101_000));
        assert_eq!(check(&h), vec![], "a run ending while the state was read");
        h.deliveries.last_mut().unwrap().at = 99_500;
        assert!(
            check(&h).contains(&Violation::PhantomEvent { kind: "executor.succeeded".into(), subject: "e1".into() })
        );
        let mut h = clean();
        let executor = h.final_state.executors.get_mut("e1").unwrap();
        executor.status = "failed".into();
        executor.error = Some("outcome unknown: the engine running this attack stopped".into());
        h.deliveries.push(delivery("executor.failed", "e1", 9_000));
        assert!(check(&h).contains(&Violation::FalseUnknown { executor: "e1".into() }));
        h.faults.push(Fault {
            kind: "kill9".into(),
            engine: Some(0),
            from: 2_500,
            until: 4_000,
            clock_ahead_ms: 0,
            clock_step_ms: 0,
        });
        assert!(!check(&h).contains(&Violation::FalseUnknown { executor: "e1".into() }));
    }

    /// A run that never reached the sink is dated by its recorded start, on the harness's
    /// clock: its lone engine's clock stood two hours back when it started 30 s late, and
    /// the kill that left its outcome unknown came right after.
    #[test]
    fn an_unknown_outcome_is_judged_by_when_the_run_really_started() {
        let mut h = clean();
        h.receipts.clear();
        h.ops.retain(|o| o.action != Action::Halt);
        h.final_state.halted = false;
        let executor = h.final_state.executors.get_mut("e1").unwrap();
        executor.status = "failed".into();
        executor.error = Some("outcome unknown: the engine running this attack stopped".into());
        executor.started = Some(32_000 - 7_200_000);
        h.deliveries.retain(|d| d.kind != "executor.succeeded");
        h.deliveries.push(delivery("executor.failed", "e1", 40_000));
        let fault = |kind: &str, from, until, step| Fault {
            kind: kind.into(),
            engine: Some(0),
            from,
            until,
            clock_ahead_ms: 0,
            clock_step_ms: step,
        };
        h.faults.push(fault("clock-step -7200s", 20_000, 35_000, -7_200_000));
        h.faults.push(fault("kill9", 33_000, 34_000, 0));
        assert_eq!(check(&h), vec![], "the kill came as the run started");
        h.faults.pop();
        assert!(check(&h).contains(&Violation::FalseUnknown { executor: "e1".into() }));

        // Recorded at 200 s by a clock that was right then; a +90 s step 90 s earlier
        // could have recorded the same time. Either reading is judged.
        h.faults.clear();
        h.final_state.executors.get_mut("e1").unwrap().started = Some(200_000);
        h.faults.push(fault("clock-step +90s", 105_000, 115_000, 90_000));
        h.faults.push(fault("read-only-disk", 199_700, 209_000, 0));
        assert_eq!(check(&h), vec![], "the disk turned read-only as the run started");
    }

    /// A run claimed under a forward clock step may start after the step ended: up to a
    /// lease later, and later still when its engine was stopped in between.
    #[test]
    fn a_run_claimed_under_a_forward_step_may_fire_after_a_stop_that_followed() {
        let mut h = clean();
        h.ops.retain(|o| o.action != Action::Halt);
        h.final_state.halted = false;
        let executor = h.final_state.executors.get_mut("e1").unwrap();
        executor.due = 1_000_000;
        h.faults.push(Fault {
            kind: "clock-step +691200s".into(),
            engine: Some(0),
            from: 1_000,
            until: 1_500,
            clock_ahead_ms: 691_200_000,
            clock_step_ms: 691_200_000,
        });
        h.receipts[0].at = 12_000;
        h.receipts[0].done = 13_000;
        assert!(check(&h).iter().any(|v| matches!(v, Violation::Early { .. })), "long after the step and its lease");
        h.faults.push(Fault {
            kind: "sigstop".into(),
            engine: Some(0),
            from: 2_000,
            until: 11_500,
            clock_ahead_ms: 0,
            clock_step_ms: 0,
        });
        assert!(!check(&h).iter().any(|v| matches!(v, Violation::Early { .. })), "the engine was stopped meanwhile");
    }
}
