//! What a chaos run recorded: the operations the workload sent and how they were answered,
//! what reached the sink (attacks and webhook deliveries), the faults injected, and the
//! database's state once everything was quiet. Times are the harness's wall clock, in
//! milliseconds since the epoch.

use std::collections::HashMap;

pub type Ms = i64;

/// How an operation was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 2xx status: the change is promised.
    Done(u16),
    /// Another status: the change was refused (and must not have happened).
    Refused(u16),
    /// No answer (a timeout, a reset connection): it may or may not have happened.
    Unknown,
}

impl Answer {
    pub fn of(status: Option<u16>) -> Answer {
        match status {
            Some(s) if (200..300).contains(&s) => Answer::Done(s),
            Some(s) => Answer::Refused(s),
            None => Answer::Unknown,
        }
    }

    pub fn done(self) -> bool {
        matches!(self, Answer::Done(_))
    }
}

/// What an operation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A plan made (its id when answered): `forbid` is `overlap: forbid`.
    Create {
        name: String,
        id: Option<String>,
        recurring: bool,
        forbid: bool,
    },
    Pause {
        id: String,
    },
    ResumePlan {
        id: String,
    },
    Delete {
        id: String,
    },
    Halt,
    Resume,
    /// A blackout over every plan, from `start` to `end` (harness clock).
    Blackout {
        start: Ms,
        end: Ms,
    },
}

/// One operation: what, when it was sent, when it was answered, how.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub action: Action,
    pub sent: Ms,
    pub answered: Ms,
    pub answer: Answer,
}

/// An attack that reached the sink: its run id, its plan's name, when its request
/// arrived and when the sink answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub run_id: String,
    pub plan: String,
    pub at: Ms,
    pub done: Ms,
}

/// An experiment's fault or its revert that reached the sink (its plan's name).
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    pub plan: String,
    pub revert: bool,
    pub at: Ms,
}

/// A webhook delivery that reached the sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event_id: String,
    /// The CloudEvent type without `cme.` (`plan.created`, `executor.succeeded`, ...).
    pub kind: String,
    pub subject: String,
    pub at: Ms,
}

/// A fault and the span it was in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: String,
    /// The engine it hit (None: the database, the disk, every engine).
    pub engine: Option<usize>,
    pub from: Ms,
    pub until: Ms,
    /// For a clock fault of a lone engine (SQLite): how far its clock was ahead (ms).
    /// Such an engine fires early by exactly that much at most: it has no other clock.
    pub clock_ahead_ms: i64,
    /// For a clock step of a lone engine: its clock's offset meanwhile (ms, signed); the
    /// times it recorded then are off by that much.
    pub clock_step_ms: i64,
}

/// An executor as the database holds it once everything is quiet.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalExecutor {
    pub id: String,
    pub plan_id: String,
    pub status: String,
    pub error: Option<String>,
    pub due: Ms,
    /// When its engine recorded its start (that engine's clock; on PostgreSQL the
    /// database's).
    pub started: Option<Ms>,
}

/// A plan as the database holds it once everything is quiet.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalPlan {
    pub paused: bool,
    pub deleted: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinalState {
    pub plans: HashMap<String, FinalPlan>,
    pub executors: HashMap<String, FinalExecutor>,
    pub halted: bool,
    /// When its reading began. Recurring plans go on firing while it is read: an event
    /// that arrived before this tells a change the state shows (or a later one); one that
    /// arrived after may tell a change the state does not show yet.
    pub read_at: Ms,
}

/// What the engines were told (`max_concurrent_attacks`, `claim_ahead_ms`) and how much
/// the checker forgives the time between an answer and an attack already on its way.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub claim_ahead_ms: i64,
    pub max_concurrent_attacks: Option<usize>,
    /// An attack whose run started just before a halt, pause or delete was answered
    /// may reach the sink a little after the answer.
    pub in_flight_ms: i64,
    /// Lease and reaper interval: how long a dead engine's run stays `running`.
    pub lease_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub terms: Terms,
    pub ops: Vec<Op>,
    pub receipts: Vec<Receipt>,
    /// Experiments' faults and reverts (`api_request` with a `revert`).
    pub touches: Vec<Touch>,
    pub deliveries: Vec<Delivery>,
    pub faults: Vec<Fault>,
    pub final_state: FinalState,
}
