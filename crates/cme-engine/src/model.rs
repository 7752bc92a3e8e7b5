//! The engine's vocabulary: plans, executors, runs, audit events, plugins and
//! credentials as the engine reasons about them. Storage keeps its own representation
//! and converts at its edge; nothing here knows SQL or HTTP.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use cme_grant::Grant;

use cme_model::text_enum;
pub use cme_model::{PluginKind, UnknownStatus};

/// A plan: an attack with its args, and the planner call that scheduled it. A deleted
/// plan is kept (its executors' history refers to it) with `deleted` set.
/// How much work an engine (all its replicas) holds at most: live plans, and executors
/// still pending. Creating a plan beyond either is refused (HTTP 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkCaps {
    pub max_plans: u64,
    pub max_pending_executors: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// 32 hex digits, as the original engine's ids.
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    pub deleted: Option<DateTime<Utc>>,
    pub attack: PlannedCall,
    pub planner: PlannedCall,
    /// Attacks of this plan record what they would do instead of doing it.
    pub dry_run: bool,
    /// The zone the planner was asked in (an IANA name).
    pub timezone: String,
    /// The planner's seed: the same seed and args give the same times.
    pub seed: u64,
    /// How late an executor may still start.
    pub grace: Duration,
    /// Who created it; None for plans stored before creators were recorded (they count
    /// as made by an operator).
    pub created_by: Option<Actor>,
    /// Since when it is paused: its waiting executors do not fire.
    pub paused: Option<DateTime<Utc>>,
    /// For a recurring plan, how far its executors are made: the end of the last window
    /// its planner was asked about (the scheduler moves it on as time passes). None for a
    /// one-shot plan.
    pub planned_until: Option<DateTime<Utc>>,
    /// What happens to firings an outage made it miss.
    pub misfire: Misfire,
    /// What happens to a firing due while the plan's previous run still runs.
    pub overlap: Overlap,
    /// Probes checked right before each run: any unhealthy (or unable to tell) answer
    /// skips the run, with its reason.
    pub steady_state: Vec<PlannedCall>,
    /// Probes checked while the plan's runs are in flight (and for a settle time after):
    /// an unhealthy answer cancels them and pauses the plan or halts the engine.
    pub stop_conditions: Vec<StopCondition>,
    /// An experiment's steps (empty: the plan runs its one `attack`, which for an
    /// experiment is its first attack step, as older clients show it).
    pub steps: Vec<crate::steps::Step>,
    /// The longest an experiment's run may take, all steps and reverts (None: the
    /// engine's `max_experiment_seconds`).
    pub deadline: Option<Duration>,
}

/// A probe watching a plan's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StopCondition {
    pub probe: PlannedCall,
    /// How often it is asked while the plan's runs are in flight.
    pub interval: Duration,
    /// How long it is still asked after the plan's last run here ended.
    pub settle: Duration,
    pub on_failure: OnFailure,
}

/// What an unhealthy stop condition does (besides cancelling the plan's running attacks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Pause the plan.
    #[default]
    PausePlan,
    /// Halt the engine (every replica).
    Halt,
}

text_enum!(OnFailure, "on_failure", { PausePlan => "pause_plan", Halt => "halt" });

impl Plan {
    /// Whether its planner is asked again as time passes.
    pub fn is_recurring(&self) -> bool {
        self.planned_until.is_some()
    }
}

/// What happens to firings not started within their grace (the engine was down, or
/// paused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// They become `missed` (the original engine's behaviour).
    #[default]
    Skip,
    /// They become `missed`, and one catch-up run fires at once for all of them (never a
    /// storm).
    RunOnce,
}

text_enum!(Misfire, "misfire policy", { Skip => "skip", RunOnce => "run_once" });

/// What happens to a firing due while the plan's previous run still runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// It is `skipped`, naming the run still in flight.
    #[default]
    Forbid,
    /// It runs beside the previous one.
    Allow,
}

text_enum!(Overlap, "overlap policy", { Forbid => "forbid", Allow => "allow" });

pub use cme_model::Actor;

/// One side of a plan: the ref as the plan gave it (canonical form), the exact plugin
/// version it resolved to, and the args.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedCall {
    /// `module:Class`.
    pub reference: String,
    /// `name@version`.
    pub plugin: String,
    pub args: Value,
}

/// A plan with the figures the plan list shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSummary {
    pub plan: Plan,
    pub executors_count: u64,
    /// The earliest due time of a pending executor.
    pub next_execution: Option<DateTime<Utc>>,
    /// True once no executor is pending or running.
    pub executed: bool,
}

/// Where an executor is in its life. `Pending` and `Running` are open; the others are
/// terminal (an executor never changes again once there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Not started within its grace period after its due time.
    Missed,
    Cancelled,
    /// Its plan is paused: not claimed until the plan is resumed (then pending again, or
    /// missed if its grace has passed).
    Paused,
    /// Due, but not run, for a reason it carries: a blackout, or its plan's previous run
    /// still running (overlap `forbid`).
    Skipped,
}

impl ExecutorStatus {
    pub const ALL: [ExecutorStatus; 8] = [
        Self::Pending,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Missed,
        Self::Cancelled,
        Self::Paused,
        Self::Skipped,
    ];
    /// Still to run (or running): what "not executed" means.
    pub const OPEN: [ExecutorStatus; 3] = [Self::Pending, Self::Running, Self::Paused];
    /// Waiting for their time: what a cancel, a reschedule or a deletion may change.
    pub const WAITING: [ExecutorStatus; 2] = [Self::Pending, Self::Paused];
    pub const TERMINAL: [ExecutorStatus; 5] =
        [Self::Succeeded, Self::Failed, Self::Missed, Self::Cancelled, Self::Skipped];

    pub fn is_terminal(self) -> bool {
        !Self::OPEN.contains(&self)
    }
}

text_enum!(ExecutorStatus, "executor status", {
    Pending => "pending",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Missed => "missed",
    Cancelled => "cancelled",
    Paused => "paused",
    Skipped => "skipped",
});

/// One scheduled run of a plan's attack. Never deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Executor {
    pub id: String,
    pub plan_id: String,
    pub due: DateTime<Utc>,
    pub status: ExecutorStatus,
    /// How many times it was claimed (1 once run: runs are never retried blindly).
    pub attempts: u32,
    /// Which engine holds the run, and until when.
    pub lease: Option<Lease>,
    pub grace: Duration,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// What a succeeded attack reported.
    pub report: Option<Report>,
    pub error: Option<String>,
    pub log: RunLog,
    /// Whether its run was dry (the plan's flag or the engine's leash); None until it ran.
    pub dry_run: Option<bool>,
    /// Why it did not run (a skipped executor: the blackout's name, the run in flight; a
    /// catch-up run: the firings it stands for).
    pub reason: Option<String>,
    /// What its run showed: every verify held, one was refuted, or it was aborted
    /// (None until it ran, and for a run that never started).
    pub outcome: Option<crate::journal::Outcome>,
}

impl Executor {
    /// A new pending executor of `plan` due at `due`.
    pub fn pending(id: String, plan: &Plan, due: DateTime<Utc>) -> Executor {
        Executor {
            id,
            plan_id: plan.id.clone(),
            due,
            status: ExecutorStatus::Pending,
            attempts: 0,
            lease: None,
            grace: plan.grace,
            created: plan.created,
            started: None,
            finished: None,
            report: None,
            error: None,
            log: RunLog::default(),
            dry_run: None,
            reason: None,
            outcome: None,
        }
    }

    /// The original engine's flag: true once the executor is terminal.
    pub fn executed(&self) -> bool {
        self.status.is_terminal()
    }
}

/// A claim on a running executor: only its owner may record the result, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub expires: DateTime<Utc>,
}

/// What an attack reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub summary: String,
    pub targets: Vec<String>,
    /// A JSON object.
    pub details: Value,
}

/// Everything a run left besides its result: its log lines, what it wrote to stdout and
/// stderr, what a dry run would have done, and how long it took. One shape for every run
/// (a run that never reached the plugin has an empty log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunLog {
    pub lines: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    pub dry_run_actions: Vec<String>,
    pub elapsed_ms: u64,
}

pub use cme_model::{LogLevel, LogLine};

impl<'de> Deserialize<'de> for RunLog {
    /// Reads the object form, and the empty array earlier versions stored for runs that
    /// never reached a plugin.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(default)]
        #[derive(Default)]
        struct Object {
            lines: Vec<LogLine>,
            stdout: String,
            stderr: String,
            dry_run_actions: Vec<String>,
            elapsed_ms: u64,
        }

        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Object(Object),
            Lines(Vec<LogLine>),
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Object(o) => RunLog {
                lines: o.lines,
                stdout: o.stdout,
                stderr: o.stderr,
                dry_run_actions: o.dry_run_actions,
                elapsed_ms: o.elapsed_ms,
            },
            Stored::Lines(lines) => RunLog { lines, ..RunLog::default() },
        })
    }
}

/// How a run ended, to record on its executor.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// Succeeded, failed or cancelled.
    pub status: ExecutorStatus,
    pub finished: DateTime<Utc>,
    pub report: Option<Report>,
    pub error: Option<String>,
    pub log: RunLog,
    /// Whether the run was dry; None when it never reached the plugin.
    pub dry_run: Option<bool>,
    /// Why a skipped executor did not run.
    pub reason: Option<String>,
    /// What the run showed (None: it never started).
    pub outcome: Option<crate::journal::Outcome>,
    /// Its journal (None: it never started).
    pub journal: Option<crate::journal::Journal>,
}

impl RunEnd {
    /// A run that failed before reaching its plugin.
    pub fn failed(error: impl Into<String>) -> RunEnd {
        RunEnd {
            status: ExecutorStatus::Failed,
            finished: Utc::now(),
            report: None,
            error: Some(error.into()),
            log: RunLog::default(),
            dry_run: None,
            reason: None,
            outcome: None,
            journal: None,
        }
    }

    /// A firing that was due but not run, and why.
    pub fn skipped(reason: impl Into<String>) -> RunEnd {
        RunEnd { status: ExecutorStatus::Skipped, error: None, reason: Some(reason.into()), ..RunEnd::failed("") }
    }
}

/// A finished run to record: its executor, the engine holding its lease, how it ended
/// and the audit events of its capability calls.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedRun {
    pub executor_id: String,
    /// Its plan (named by the run's events).
    pub plan_id: String,
    pub owner: String,
    /// When the engine began the run (its start checks, then the attack).
    pub started: DateTime<Utc>,
    pub end: RunEnd,
    pub audit: Vec<AuditEvent>,
}

pub use cme_model::audit::{AuditDecision, AuditEvent, AuditSource};

/// A stored audit event with its position in the log (newer events have larger ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub event: AuditEvent,
}

/// The persisted halt switch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltState {
    pub halted: bool,
    pub since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// A plugin's state in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginStatus {
    /// Uploaded; waits for an admin's grant. Plans cannot use it.
    Pending,
    Enabled,
    /// Plans cannot use it and its executors fail instead of running.
    Disabled,
}

text_enum!(PluginStatus, "plugin status", { Pending => "pending", Enabled => "enabled", Disabled => "disabled" });

/// An uploaded plugin version as stored, without its bytes. `(name, version)` is
/// immutable: the id is `name@version`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRecord {
    pub id: String,
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub sha256: String,
    pub size: u64,
    pub status: PluginStatus,
    /// None until an admin grants it.
    pub grant: Option<Grant>,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The trusted key that signed it (`name (SHA256:...)`); None: unsigned.
    pub signed_by: Option<String>,
}

/// A change to a stored plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginChange {
    pub status: Option<PluginStatus>,
    /// Some replaces the grant.
    pub grant: Option<Grant>,
}

/// What storing an upload did.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredUpload {
    Inserted,
    /// The same id with the same bytes was already there.
    AlreadyStored,
    /// The same id with other bytes is there: versions are immutable.
    Conflict {
        sha256: String,
    },
}

/// Why a credential may not serve a run (its `may_use`, or an inline key's own plan).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotUsable(pub String);

/// An SSH credential plugins refer to by name. The key never leaves the engine except
/// to the host's SSH backend; `Debug` shows the name, user and fingerprint only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub name: String,
    pub user: String,
    pub private_key: String,
    pub passphrase: Option<String>,
    /// `SHA256:...` of the public key.
    pub fingerprint: String,
    /// e.g. `ssh-ed25519`.
    pub algorithm: String,
    pub created: DateTime<Utc>,
    /// Token names and roles whose plans may use it.
    pub may_use: Vec<String>,
    /// Set for a plan's inline key: only that plan may use it.
    pub owner_plan: Option<String>,
}

impl Credential {
    /// Whether a run of plan `plan_id`, created by `creator`, may use this credential;
    /// the error says why not. Plans stored without a creator count as an operator's.
    pub fn usable_by(&self, plan_id: &str, creator: Option<&Actor>) -> Result<(), NotUsable> {
        if let Some(owner) = &self.owner_plan {
            if owner != plan_id {
                return Err(NotUsable(format!(
                    "credential {} is the inline key of plan {owner}; no other plan may use it",
                    self.name
                )));
            }
            return Ok(());
        }
        let (name, role) = creator.map_or(("", "operator"), |a| (a.name.as_str(), a.role.as_str()));
        if self.may_use.iter().any(|allowed| allowed == role || (!name.is_empty() && allowed == name)) {
            return Ok(());
        }
        Err(NotUsable(format!(
            "credential {} may be used by plans of {:?} only; this plan was created by {} (role {role})",
            self.name,
            self.may_use,
            if name.is_empty() { "an unrecorded caller" } else { name }
        )))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Which executors to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorFilter {
    /// None: any status. Otherwise any of these.
    pub statuses: Option<Vec<ExecutorStatus>>,
    pub plan_id: Option<String>,
    /// Only executors after this one in the list's order (due time, then id): a keyset
    /// cursor, as deep pages cost the same as the first. The page's offset is ignored
    /// with it.
    pub after: Option<ExecutorCursor>,
}

/// A position in the executor list: the last executor of the page before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorCursor {
    pub due: DateTime<Utc>,
    pub id: String,
}

impl ExecutorCursor {
    /// The cursor after `executor`.
    pub fn after(executor: &Executor) -> ExecutorCursor {
        ExecutorCursor { due: executor.due, id: executor.id.clone() }
    }
}

impl fmt::Display for ExecutorCursor {
    /// `<due in µs since the epoch>.<id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.due.timestamp_micros(), self.id)
    }
}

impl FromStr for ExecutorCursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("after {text:?} is not a cursor from a `next` link");
        let (due, id) = text.split_once('.').ok_or_else(invalid)?;
        let due = due.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
        if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(invalid());
        }
        Ok(ExecutorCursor { due, id: id.to_string() })
    }
}

/// A page of a list: `page` counts from 1, `size` items each. The constructor refuses
/// pages whose offset does not fit the database's 64-bit integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    page: u64,
    size: u64,
}

/// A page that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("page must be an integer >= 1")]
    Page,
    #[error("size must be an integer from 1 to {}", Page::MAX_SIZE)]
    Size,
    #[error("page {page} of size {size} is beyond any list (its offset does not fit in 63 bits)")]
    TooFar { page: u64, size: u64 },
}

impl Page {
    pub const MAX_SIZE: u64 = 1000;
    pub const DEFAULT_SIZE: u64 = 100;

    pub fn new(page: u64, size: u64) -> Result<Page, PageError> {
        if page == 0 {
            return Err(PageError::Page);
        }
        if !(1..=Self::MAX_SIZE).contains(&size) {
            return Err(PageError::Size);
        }
        let end = page.checked_mul(size).and_then(|e| e.checked_add(1)).filter(|e| *e <= i64::MAX as u64);
        if end.is_none() {
            return Err(PageError::TooFar { page, size });
        }
        Ok(Page { page, size })
    }

    pub fn first(size: u64) -> Result<Page, PageError> {
        Page::new(1, size)
    }

    pub fn number(self) -> u64 {
        self.page
    }

    pub fn size(self) -> u64 {
        self.size
    }

    /// How many items come before this page (fits in an i64 by construction).
    pub fn offset(self) -> u64 {
        (self.page - 1) * self.size
    }
}

impl Default for Page {
    fn default() -> Self {
        Page { page: 1, size: Self::DEFAULT_SIZE }
    }
}

/// One page of results; `has_more` tells whether a next page exists.
#[derive(Debug, Clone, PartialEq)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

impl<T> PageOf<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PageOf<U> {
        PageOf { items: self.items.into_iter().map(f).collect(), has_more: self.has_more }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_back_and_unknown_text_is_refused() {
        for status in ExecutorStatus::ALL {
            assert_eq!(status.as_str().parse::<ExecutorStatus>().unwrap(), status);
        }
        assert!("exploded".parse::<ExecutorStatus>().unwrap_err().to_string().contains("known: pending"));
        for status in [PluginStatus::Pending, PluginStatus::Enabled, PluginStatus::Disabled] {
            assert_eq!(status.as_str().parse::<PluginStatus>().unwrap(), status);
        }
        assert!("enabledd".parse::<PluginStatus>().is_err(), "unknown text is not silently pending");
        assert!("".parse::<PluginStatus>().is_err());
    }

    #[test]
    fn run_logs_read_both_stored_shapes() {
        let object: RunLog = serde_json::from_str(
            r#"{"lines":[{"at":"2031-01-01T00:00:00Z","level":"info","message":"hi"}],"stdout":"o","elapsed_ms":3}"#,
        )
        .unwrap();
        assert_eq!(object.lines[0].message, "hi");
        assert_eq!(object.stdout, "o");
        assert_eq!(object.elapsed_ms, 3);
        let empty: RunLog = serde_json::from_str("[]").unwrap();
        assert_eq!(empty, RunLog::default());
        assert_eq!(serde_json::to_value(RunLog::default()).unwrap()["lines"], serde_json::json!([]));
    }

    #[test]
    fn absurd_pages_are_refused() {
        assert_eq!(Page::new(0, 10), Err(PageError::Page));
        assert_eq!(Page::new(1, 0), Err(PageError::Size));
        assert_eq!(Page::new(1, 1001), Err(PageError::Size));
        assert!(matches!(Page::new(u64::MAX, 1000), Err(PageError::TooFar { .. })));
        assert!(matches!(Page::new(i64::MAX as u64 / 100 + 1, 100), Err(PageError::TooFar { .. })));
        let far = Page::new(1_000_000, 1000).unwrap();
        assert_eq!(far.offset(), 999_999_000);
    }
}
