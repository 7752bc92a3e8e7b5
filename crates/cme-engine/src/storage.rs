//! What the engine needs from storage, in the engine's vocabulary. `cme-store`
//! implements it over SQLite and PostgreSQL; the engine never sees SQL.
//!
//! Every method that changes more than one row does it in one transaction: a plan with
//! its executors, audit event and inline credential; a change with its audit event; a
//! batch of finished runs with their capability calls' audit events.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::blackouts::Blackout;
use crate::events::{Attempt, Delivery, DeliveryClaim, DeliveryCounts, Event};
use crate::model::{
    AuditEntry, AuditEvent, Credential, Executor, ExecutorFilter, ExecutorStatus, FinishedRun, HaltState, Page, PageOf,
    Plan, PlanSummary, PluginChange, PluginRecord, StoredUpload, WorkCaps,
};

/// Why storage failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The database did not answer or refused the statement.
    #[error("database error: {0}")]
    Unavailable(String),
    /// A stored value does not parse (a status, a date, JSON).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// What made storage fail, as far as its message tells: what an operator must do differs
/// (free space, repair the file system, bring the database back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageCause {
    /// No space left for the database (SQLite's "database or disk is full", ENOSPC,
    /// PostgreSQL's `53100`).
    DiskFull,
    /// The database or its file system takes no writes (SQLite's read-only database,
    /// EROFS, a read-only PostgreSQL transaction).
    ReadOnly,
    /// The database cannot be reached (refused, reset, closed connections, pool timeouts).
    Unreachable,
    /// Anything else (an I/O error, a refused statement).
    Failed,
}

impl StorageCause {
    /// The problem document's `type` (RFC 9457) for this cause.
    pub fn problem_type(self) -> &'static str {
        match self {
            StorageCause::DiskFull => "urn:cme:problem:storage-disk-full",
            StorageCause::ReadOnly => "urn:cme:problem:storage-read-only",
            StorageCause::Unreachable => "urn:cme:problem:storage-unreachable",
            StorageCause::Failed => "urn:cme:problem:storage-failed",
        }
    }

    /// How long a client should wait before trying again (`Retry-After`, seconds): space
    /// and file systems come back slower than a restarted database.
    pub fn retry_after_seconds(self) -> u32 {
        match self {
            StorageCause::DiskFull => 30,
            StorageCause::ReadOnly => 60,
            StorageCause::Unreachable | StorageCause::Failed => 5,
        }
    }
}

impl StorageError {
    /// What made storage fail, read from the drivers' messages (SQLite's and
    /// PostgreSQL's wording and codes, and the OS's errno texts).
    pub fn cause(&self) -> StorageCause {
        let StorageError::Unavailable(message) = self else { return StorageCause::Failed };
        let message = message.to_ascii_lowercase();
        let says = |needles: &[&str]| needles.iter().any(|n| message.contains(n));
        if says(&["disk is full", "no space left", "could not extend file", "53100", "os error 28", "disk quota"]) {
            StorageCause::DiskFull
        } else if says(&["readonly database", "read-only file system", "read-only transaction", "25006", "os error 30"])
        {
            StorageCause::ReadOnly
        } else if says(&[
            "connection refused",
            "connection reset",
            "broken pipe",
            "pool timed out",
            "connection closed",
            "server closed the connection",
            "terminating connection",
            "57p01",
            "08006",
            "08001",
            "unable to open database file",
            "error communicating with database",
        ]) {
            StorageCause::Unreachable
        } else {
            StorageCause::Failed
        }
    }
}

/// Why a change to an executor was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutorChangeError {
    #[error("executor not found")]
    NotFound,
    #[error("executor is {0}, not pending")]
    NotPending(ExecutorStatus),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a plan was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertPlanError {
    /// Storing it would pass one of the engine's caps; nothing was stored.
    #[error(transparent)]
    OverCap(#[from] OverCap),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A cap that a change would pass: what it caps, the cap and what is stored now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this engine holds at most {max} {what}; {stored} are stored and this change would add {adding}")]
pub struct OverCap {
    pub what: CappedWork,
    pub max: u64,
    pub stored: u64,
    pub adding: u64,
}

/// What a [`WorkCaps`] bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CappedWork {
    Plans,
    PendingExecutors,
    Blackouts,
}

impl CappedWork {
    /// The config key of the cap.
    pub fn config_key(self) -> &'static str {
        match self {
            CappedWork::Plans => "max_plans",
            CappedWork::PendingExecutors => "max_pending_executors",
            CappedWork::Blackouts => "max_blackouts",
        }
    }
}

impl std::fmt::Display for CappedWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CappedWork::Plans => "live plans",
            CappedWork::PendingExecutors => "pending executors",
            CappedWork::Blackouts => "blackouts",
        })
    }
}

/// A position in the blackout list: just past the blackout created at `created` with `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlackoutCursor {
    pub created: DateTime<Utc>,
    pub id: String,
}

impl BlackoutCursor {
    /// The cursor past `blackout`.
    pub fn after(blackout: &Blackout) -> Self {
        BlackoutCursor { created: blackout.created, id: blackout.id.clone() }
    }

    /// As written in a `next` link: `<microseconds>-<id>`.
    pub fn to_text(&self) -> String {
        format!("{}-{}", self.created.timestamp_micros(), self.id)
    }

    /// Reads what [`BlackoutCursor::to_text`] wrote; None for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('-')?;
        let created = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        let id_ok =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        id_ok.then(|| BlackoutCursor { created, id: id.to_string() })
    }
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub audit_events: u64,
    pub run_logs: u64,
    /// Outbox rows delivered or given up, older than the run log retention.
    pub deliveries: u64,
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A claim of due executors (see [`Storage::claim_due`]).
///
/// On PostgreSQL the database's clock stands for `now` and the other instants keep their
/// distance from it: replicas share one clock, so a replica whose own clock is ahead
/// neither claims early nor takes leases that others would judge expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// When the claim is made (by the claiming engine's clock).
    pub now: DateTime<Utc>,
    /// Executors due up to this instant are claimed: `now`, or a little after it when
    /// the scheduler claims ahead of the due times.
    pub due_by: DateTime<Utc>,
    /// The claiming engine, which holds the leases.
    pub owner: String,
    pub lease_until: DateTime<Utc>,
    /// At most this many executors.
    pub limit: u64,
}

/// One recurring plan's next window, to store (see [`Storage::extend_plans`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Extension {
    pub plan_id: String,
    /// The horizon the planner was asked from.
    pub from: DateTime<Utc>,
    /// The new horizon; None when the plan stopped recurring.
    pub until: Option<DateTime<Utc>>,
    pub executors: Vec<Executor>,
}

/// Plans: stored with their executors, read, listed, paused, deleted.
#[async_trait::async_trait]
pub trait PlanStore: Send + Sync + 'static {
    /// Stores a plan, its executors, the audit event of its creation and the credential
    /// made from its inline key, if any: all or nothing, and only when the live plans and
    /// pending executors stay within `caps` (checked in the same transaction, serialised
    /// across replicas).
    async fn insert_plan(
        &self,
        plan: &Plan,
        executors: &[Executor],
        audit: &AuditEvent,
        credential: Option<&Credential>,
        caps: &WorkCaps,
    ) -> Result<(), InsertPlanError>;

    /// Adds executors to an existing plan with the audit event of the change, within
    /// `caps` (as `insert_plan`, the plan counting as already stored).
    async fn insert_executors(
        &self,
        executors: &[Executor],
        audit: &AuditEvent,
        caps: &WorkCaps,
    ) -> Result<(), InsertPlanError>;

    async fn plan(&self, id: &str) -> StorageResult<Option<Plan>>;

    /// The plans of `ids` that exist (deleted ones too), in any order: what a burst of
    /// executors of many plans needs, read at once.
    async fn plans_of(&self, ids: &[String]) -> StorageResult<Vec<Plan>> {
        let mut plans = Vec::with_capacity(ids.len());
        for id in ids {
            plans.extend(self.plan(id).await?);
        }
        Ok(plans)
    }

    /// Pauses (`Some(since)`) or resumes (`None`) a plan that is not deleted, moving its
    /// waiting executors between `pending` and `paused`, with the audit event; false when
    /// there is no such plan. Pausing a paused plan keeps its first `since`.
    async fn set_plan_paused(&self, id: &str, since: Option<DateTime<Utc>>, audit: &AuditEvent) -> StorageResult<bool>;

    /// Plans not deleted, newest first, with their figures (one query for the page's
    /// figures); with `all` false only those with executors still pending or running.
    async fn list_plans(&self, all: bool, page: Page) -> StorageResult<PageOf<PlanSummary>>;

    /// One plan's figures.
    async fn summarize(&self, plan: Plan) -> StorageResult<PlanSummary>;

    /// Marks a plan deleted, cancels its pending executors, deletes the credential it
    /// owns (named `owned_credential`) and stores `audit`; false (and nothing changed)
    /// when there is no such undeleted plan.
    async fn delete_plan(
        &self,
        id: &str,
        at: DateTime<Utc>,
        owned_credential: &str,
        audit: &AuditEvent,
    ) -> StorageResult<bool>;

    /// Plans not deleted.
    async fn count_live_plans(&self) -> StorageResult<u64>;
}

/// Recurring plans' horizon: which plans need their next window, and storing it.
#[async_trait::async_trait]
pub trait HorizonStore: Send + Sync + 'static {
    /// Live, unpaused recurring plans whose executors are made only up to before `before`,
    /// soonest first (then by id), after `after` (a `(planned_until, id)` of an earlier
    /// page), at most `limit`.
    async fn plans_to_extend(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: u64,
    ) -> StorageResult<Vec<Plan>>;

    /// The earliest `planned_until` of a live, unpaused recurring plan.
    async fn next_planned_until(&self) -> StorageResult<Option<DateTime<Utc>>>;

    /// Applies extensions within `caps`, each all or nothing: each moves its plan's horizon
    /// from `from` to `until` (None: it stopped recurring) and stores its window's
    /// executors, only while the horizon is still `from`. A store may commit them a few
    /// at a time (SQLite does, so that no firing waits behind a long write); on an error,
    /// the extensions committed before it stay stored. Returns, per extension, whether
    /// it was stored (false: another replica moved that horizon first, or the plan was
    /// deleted or paused meanwhile; nothing of it is stored).
    async fn extend_plans(&self, extensions: &[Extension], caps: &WorkCaps) -> Result<Vec<bool>, InsertPlanError>;
}

/// Executors as operators see and change them: read, listed, rescheduled, cancelled, counted.
#[async_trait::async_trait]
pub trait ExecutorStore: Send + Sync + 'static {
    /// A plan's executors by due time.
    async fn executors_of(&self, plan_id: &str) -> StorageResult<Vec<Executor>>;

    /// A plan's executors due in `[from, until)`, by due time, at most `limit`.
    async fn executors_between(
        &self,
        plan_id: &str,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> StorageResult<Vec<Executor>>;

    async fn executor(&self, id: &str) -> StorageResult<Option<Executor>>;

    /// Executors by due time (then id), one page, without their run logs (`log` is empty:
    /// lists never show it, and a page of big logs would be read and parsed for nothing;
    /// `executor` reads one with its log).
    async fn list_executors(&self, filter: &ExecutorFilter, page: Page) -> StorageResult<PageOf<Executor>>;

    /// A number that changes whenever anything is committed, by any writer: two reads
    /// made under the same number saw the same data, so what was made of the first may
    /// answer the second. Cheap (no wait, no round trip); None when the store cannot
    /// tell that way (then every read is made afresh). By default None.
    fn data_version(&self) -> Option<u64> {
        None
    }

    /// Moves a pending executor to `due`, with the audit event.
    async fn reschedule(
        &self,
        id: &str,
        due: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Executor, ExecutorChangeError>;

    /// Cancels a pending executor, with the audit event.
    async fn cancel(
        &self,
        id: &str,
        at: DateTime<Utc>,
        reason: &str,
        audit: &AuditEvent,
    ) -> Result<Executor, ExecutorChangeError>;

    /// How many executors have each status (statuses with none may be left out).
    async fn count_executors(&self) -> StorageResult<Vec<(ExecutorStatus, u64)>>;
}

/// Claiming due executors for this engine, under the lease.
#[async_trait::async_trait]
pub trait ClaimStore: Send + Sync + 'static {
    /// Atomically moves up to `claim.limit` pending executors due by `claim.due_by` to
    /// running under a lease held by `claim.owner`, unless the stored halt is on; rows
    /// another replica holds are skipped. Each records as its start the later of its due
    /// time and `claim.now` (the engine starts one claimed ahead at its due time, and
    /// records the moment it really started with its result).
    async fn claim_due(&self, claim: &Claim) -> StorageResult<Vec<Executor>>;

    /// `claim_due`, but never beyond `cap` attacks running over every replica (counted
    /// and claimed atomically: each running executor, plus the attack steps its
    /// experiment runs beside its first); true when the cap held some back.
    async fn claim_due_capped(&self, claim: &Claim, cap: u64) -> StorageResult<(Vec<Executor>, bool)>;

    /// Takes a slot of the `cap` for another attack step of the running experiment
    /// `executor_id` (held by `owner`), counted as `claim_due_capped` counts; false when
    /// the cap is reached (nothing changed).
    async fn take_step_slot(&self, executor_id: &str, owner: &str, cap: u64) -> StorageResult<bool>;

    /// Gives a step's slot back.
    async fn release_step_slot(&self, executor_id: &str) -> StorageResult<()>;

    /// Running executors of `plan_id` other than `executor_id` that are ahead of it (due
    /// earlier, or at the same time with a smaller id): the first one's id, if any.
    async fn running_ahead(
        &self,
        plan_id: &str,
        executor_id: &str,
        due: DateTime<Utc>,
    ) -> StorageResult<Option<String>>;
}

/// The scheduler's other bookkeeping: what is due next, missed and halted firings, results, the reaper, retention.
#[async_trait::async_trait]
pub trait RunStore: Send + Sync + 'static {
    /// The earliest due time of a pending executor.
    async fn next_due(&self) -> StorageResult<Option<DateTime<Utc>>>;

    /// Pending executors past their grace become missed; returns the plan of each one
    /// marked (a plan once per executor), so that the engine can catch up (misfire
    /// `run_once`): only the caller whose statement marked a row is told.
    async fn mark_missed(&self, now: DateTime<Utc>) -> StorageResult<Vec<String>>;

    /// While halted: pending executors that fall due are cancelled for good.
    async fn cancel_due_while_halted(&self, now: DateTime<Utc>) -> StorageResult<u64>;

    /// Records finished runs, each only if its owner still holds its lease, with their
    /// audit events, in one transaction. Returns, per run, whether it was recorded.
    async fn record_runs(&self, runs: &[FinishedRun]) -> StorageResult<Vec<bool>>;

    /// Running executors whose lease expired become failed, "outcome unknown" (on
    /// PostgreSQL judged by the database's clock, whatever `now` says), except `spare`:
    /// the reaping engine's own runs still in flight or waiting for its recorder (their
    /// results are coming, whatever a stepped clock says of their leases).
    async fn reap_expired(&self, now: DateTime<Utc>, spare: &[String]) -> StorageResult<u64>;

    /// Extends a running executor's lease to `lease` from now (on PostgreSQL the
    /// database's now) while `owner` still holds it (an experiment outlives one lease);
    /// false when it does not (reaped, or another's).
    async fn renew_lease(&self, executor_id: &str, owner: &str, lease: std::time::Duration) -> StorageResult<bool>;

    /// Confirms, in one statement, right before a run's first effect, that its claim
    /// still holds: the executor is running, `owner` holds its lease, the lease has not
    /// expired (on PostgreSQL by the database's clock), no halt is stored, and its plan
    /// is neither paused nor deleted. Records `started` and a fresh lease of `lease`
    /// from now (a run that starts late, its engine slowed by a database outage, keeps
    /// its whole deadline under its lease) when it does; false (and nothing written) when
    /// it does not, and then the run must not start.
    async fn confirm_start(
        &self,
        executor_id: &str,
        owner: &str,
        started: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StorageResult<bool>;

    /// A finished run's journal (None: the run never started, or retention emptied it).
    async fn journal(&self, executor_id: &str) -> StorageResult<Option<crate::journal::Journal>>;

    /// Retention: deletes audit events older than `audit_before` and empties the run logs
    /// (log lines, stdout, stderr) of executors finished before `logs_before`, keeping
    /// their status and result. None keeps that kind forever.
    async fn prune(
        &self,
        audit_before: Option<DateTime<Utc>>,
        logs_before: Option<DateTime<Utc>>,
    ) -> StorageResult<Pruned>;
}

/// Blackouts (and imported calendars' events as blackouts).
#[async_trait::async_trait]
pub trait CalendarStore: Send + Sync + 'static {
    /// Every blackout, oldest first (what the engine's blackout index is built from).
    async fn blackouts(&self) -> StorageResult<Vec<Blackout>>;

    /// Up to `size` blackouts after `after` (None: from the first), oldest first, and
    /// whether more follow.
    async fn blackouts_page(&self, after: Option<&BlackoutCursor>, size: u64) -> StorageResult<PageOf<Blackout>>;

    /// How many blackouts are stored.
    async fn count_blackouts(&self) -> StorageResult<u64>;

    /// One blackout by id.
    async fn blackout(&self, id: &str) -> StorageResult<Option<Blackout>>;

    /// Changes with every change to the blackouts, by any replica, in the change's own
    /// transaction: one cheap read tells whether a copy of them is current.
    async fn blackouts_generation(&self) -> StorageResult<String>;

    /// Stores blackouts with the audit event; with `replace_calendar`, the blackouts that
    /// calendar imported before are deleted in the same transaction. Refused, storing
    /// nothing, when more than `max` blackouts would then be stored (judged under a lock
    /// that serialises blackout inserts across replicas).
    async fn insert_blackouts(
        &self,
        replace_calendar: Option<&str>,
        blackouts: &[Blackout],
        audit: &AuditEvent,
        max: u64,
    ) -> Result<(), InsertPlanError>;

    /// Deletes a blackout with its audit event; false when there is none by that id.
    async fn delete_blackout(&self, id: &str, audit: &AuditEvent) -> StorageResult<bool>;
}

/// The calendars the engine holds blackouts of: uploads, and subscriptions with their
/// fetch state.
#[async_trait::async_trait]
pub trait FeedStore: Send + Sync + 'static {
    /// Every calendar, by name.
    async fn feeds(&self) -> StorageResult<Vec<crate::feeds::CalendarFeed>>;

    async fn feed(&self, name: &str) -> StorageResult<Option<crate::feeds::CalendarFeed>>;

    /// Stores a calendar, replacing one of its name, with its audit event (if any).
    async fn save_feed(&self, feed: &crate::feeds::CalendarFeed, audit: Option<&AuditEvent>) -> StorageResult<()>;

    /// Deletes a calendar and its blackouts with the audit event; false when there is none.
    async fn delete_feed(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool>;

    /// Claims one subscription due at `now` (its next fetch at or before it) by moving its
    /// next fetch to `hold`, in one conditional write: of replicas claiming at once, one
    /// gets it.
    async fn claim_due_feed(
        &self,
        now: DateTime<Utc>,
        hold: DateTime<Utc>,
    ) -> StorageResult<Option<crate::feeds::CalendarFeed>>;

    /// Records a fetch: when it succeeded (None: it failed, `error` says why; the last
    /// success stays), and when the next is due.
    async fn record_fetch(
        &self,
        name: &str,
        fetched: Option<DateTime<Utc>>,
        error: Option<&str>,
        next: DateTime<Utc>,
    ) -> StorageResult<()>;

    /// How many blackouts each calendar holds.
    async fn blackouts_per_calendar(&self) -> StorageResult<std::collections::HashMap<String, u64>>;
}

/// What SSH attacks reach and leave behind: credentials, inventories, armed undos.
#[async_trait::async_trait]
pub trait SshTargetStore: Send + Sync + 'static {
    /// Every inventory, by name.
    async fn inventories(&self) -> StorageResult<Vec<crate::Inventory>>;

    async fn inventory(&self, name: &str) -> StorageResult<Option<crate::Inventory>>;

    /// Stores inventories, replacing those of the same names, with the audit event (all
    /// or nothing).
    async fn put_inventories(&self, inventories: &[crate::Inventory], audit: &AuditEvent) -> StorageResult<()>;

    /// Deletes an inventory with its audit event; false when there is none by that name.
    async fn delete_inventory(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool>;

    /// Stores an armed undo (before its attack acts).
    async fn insert_undo(&self, undo: &crate::Undo) -> StorageResult<()>;

    /// Pending undos, soonest due first (`pending: true`), or every undo, newest armed
    /// first; at most `limit`.
    async fn undos(&self, pending: bool, limit: u64) -> StorageResult<Vec<crate::Undo>>;

    async fn undo(&self, id: &str) -> StorageResult<Option<crate::Undo>>;

    /// Every undo a run armed, in the order they were armed.
    async fn undos_of_run(&self, run_id: &str) -> StorageResult<Vec<crate::Undo>>;

    /// Records an attempt at an undo (its new state, attempts, due time and outcome) with
    /// its audit event, only while it is still pending; false when it was not (another
    /// replica finished it first: nothing is written).
    async fn update_undo(&self, undo: &crate::Undo, audit: &AuditEvent) -> StorageResult<bool>;

    /// Stores a credential with its audit event; false (nothing stored) when the name is taken.
    async fn insert_credential(&self, credential: &Credential, audit: &AuditEvent) -> StorageResult<bool>;

    async fn credential(&self, name: &str) -> StorageResult<Option<Credential>>;

    /// Every credential, by name.
    async fn credentials(&self) -> StorageResult<Vec<Credential>>;

    /// Deletes a credential with its audit event; false when there is none by that name.
    async fn delete_credential(&self, name: &str, audit: &AuditEvent) -> StorageResult<bool>;
}

/// The persisted halt switch, and its changes as other replicas make them.
#[async_trait::async_trait]
pub trait HaltStore: Send + Sync + 'static {
    async fn halt_state(&self) -> StorageResult<HaltState>;

    /// Changes whenever another replica may have changed the halt switch (PostgreSQL's
    /// LISTEN/NOTIFY), so that a halt reaches every replica at once; None where storage
    /// has no such channel (a SQLite file serves one engine).
    fn halt_signals(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Sets the halt switch and stores the audit event of the change.
    async fn set_halt_state(&self, state: &HaltState, audit: &AuditEvent) -> StorageResult<()>;

    /// Writes one small row, committed as every change is: whether the database takes
    /// writes now (a full disk or a read-only file system refuses it where reads pass).
    async fn probe_write(&self) -> StorageResult<()>;
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn insert_audit(&self, events: &[AuditEvent]) -> StorageResult<()>;

    /// Audit events, newest first.
    async fn list_audit(&self, page: Page) -> StorageResult<PageOf<AuditEntry>>;

    /// Up to `size` audit events older than the one with id `before`, newest first (a
    /// seek: as fast deep in the log as at its start).
    async fn list_audit_before(&self, before: i64, size: u64) -> StorageResult<PageOf<AuditEntry>>;
}

/// Uploaded plugins: records, their bytes, the generation replicas sync by.
#[async_trait::async_trait]
pub trait PluginStore: Send + Sync + 'static {
    /// Changes whenever any plugin record changes (opaque; compare for equality).
    async fn plugins_generation(&self) -> StorageResult<String>;

    /// Every stored plugin, oldest first, without bytes.
    async fn plugin_records(&self) -> StorageResult<Vec<PluginRecord>>;

    async fn plugin_record(&self, id: &str) -> StorageResult<Option<PluginRecord>>;

    async fn plugin_wasm(&self, id: &str) -> StorageResult<Option<Vec<u8>>>;

    /// Stores an upload with its audit event unless its id is taken.
    async fn insert_plugin(
        &self,
        record: &PluginRecord,
        wasm: &[u8],
        audit: &AuditEvent,
    ) -> StorageResult<StoredUpload>;

    /// Applies a change with its audit event; false when there is no such plugin.
    async fn update_plugin(
        &self,
        id: &str,
        change: &PluginChange,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StorageResult<bool>;

    /// Deletes a plugin (with its audit event) unless executors that still have to run
    /// use it; returns how many do (0: deleted), or None when there is no such plugin.
    async fn delete_plugin(&self, id: &str, audit: &AuditEvent) -> StorageResult<Option<u64>>;
}

/// The webhook outbox: events in, deliveries claimed and finished.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores events in the outbox of every webhook that wants them (nothing when none
    /// does). Events of stored changes are written by those changes' own transactions
    /// (records, misses, reaps, audited operator actions); this is for the rest (a run's
    /// start).
    async fn insert_events(&self, events: &[Event]) -> StorageResult<()>;

    /// Takes up to `claim.limit` pending deliveries that are due, oldest first and in
    /// outbox order per webhook (see [`DeliveryClaim`]); each is held by one sender at a
    /// time across replicas.
    async fn claim_deliveries(&self, claim: &DeliveryClaim<'_>) -> StorageResult<Vec<Delivery>>;

    /// Records how an attempt at a delivery `owner` holds ended.
    async fn finish_delivery(&self, id: i64, owner: &str, attempt: &Attempt) -> StorageResult<()>;

    /// When, by this engine's clock, a pending delivery is next due: the earliest time a
    /// webhook's first pending row may be claimed (its retry, or its lease's end; a time
    /// beyond `furthest` from now counts as now, see [`DeliveryClaim::furthest`]).
    async fn next_delivery(&self, furthest: std::time::Duration) -> StorageResult<Option<DateTime<Utc>>>;

    /// A webhook's deliveries by state.
    async fn delivery_counts(&self, webhook: &str) -> StorageResult<DeliveryCounts>;

    /// Bumped when deliveries may have become due: outbox rows written here, or (on
    /// PostgreSQL) by any replica.
    fn outbox_signals(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// The blast-radius ledger: terminations charged against group budgets.
#[async_trait::async_trait]
pub trait BudgetStore: Send + Sync + 'static {
    /// Records `takes` in the blast-radius ledger for `run_id` when every group's
    /// terminations in the last 24 hours and time since its last one allow them (all or
    /// nothing; serialised across replicas); otherwise which budget refuses and why.
    /// `record: false` only checks (a dry run).
    async fn take_budget(
        &self,
        takes: &[crate::BudgetTake],
        run_id: &str,
        now: DateTime<Utc>,
        record: bool,
    ) -> StorageResult<Result<(), String>>;
}

/// Every port at once: what a database implements (`cme-store`'s `Store`). The engine
/// holds the ports apart ([`Ports`]) so that a test fake implements only the port it fakes.
pub trait Storage:
    PlanStore
    + HorizonStore
    + ExecutorStore
    + ClaimStore
    + RunStore
    + CalendarStore
    + FeedStore
    + SshTargetStore
    + HaltStore
    + AuditStore
    + PluginStore
    + EventStore
    + BudgetStore
{
}

impl<
    T: PlanStore
        + HorizonStore
        + ExecutorStore
        + ClaimStore
        + RunStore
        + CalendarStore
        + FeedStore
        + SshTargetStore
        + HaltStore
        + AuditStore
        + PluginStore
        + EventStore
        + BudgetStore,
> Storage for T
{
}

/// The storage ports an engine works through, each on its own: by default all one store
/// (`Ports::of`), any of them replaceable (a fake that slows claims is a `ClaimStore`).
#[derive(Clone)]
pub struct Ports {
    pub plans: Arc<dyn PlanStore>,
    pub horizon: Arc<dyn HorizonStore>,
    pub executors: Arc<dyn ExecutorStore>,
    pub claims: Arc<dyn ClaimStore>,
    pub runs: Arc<dyn RunStore>,
    pub calendars: Arc<dyn CalendarStore>,
    pub feeds: Arc<dyn FeedStore>,
    pub ssh: Arc<dyn SshTargetStore>,
    pub halt: Arc<dyn HaltStore>,
    pub audit: Arc<dyn AuditStore>,
    pub plugins: Arc<dyn PluginStore>,
    pub events: Arc<dyn EventStore>,
    pub budgets: Arc<dyn BudgetStore>,
}

impl Ports {
    /// Every port served by one store (an `Arc<Store>` coerces to `Arc<dyn Storage>`).
    pub fn of(store: Arc<dyn Storage>) -> Ports {
        Ports {
            plans: store.clone(),
            horizon: store.clone(),
            executors: store.clone(),
            claims: store.clone(),
            runs: store.clone(),
            calendars: store.clone(),
            feeds: store.clone(),
            ssh: store.clone(),
            halt: store.clone(),
            audit: store.clone(),
            plugins: store.clone(),
            events: store.clone(),
            budgets: store.clone(),
        }
    }
}

/// The ports as traits, to call their methods on a store: `use cme_engine::storage::prelude::*`.
pub mod prelude {
    pub use super::{
        AuditStore, BudgetStore, CalendarStore, ClaimStore, EventStore, ExecutorStore, FeedStore, HaltStore,
        HorizonStore, PlanStore, PluginStore, RunStore, SshTargetStore,
    };
}

#[cfg(test)]
mod cause_tests {
    use super::{StorageCause, StorageError};

    fn cause(message: &str) -> StorageCause {
        StorageError::Unavailable(message.into()).cause()
    }

    #[test]
    fn drivers_messages_name_their_cause() {
        assert_eq!(cause("database or disk is full"), StorageCause::DiskFull);
        assert_eq!(
            cause("Execution Error: error returned from database: (code: 13) database or disk is full"),
            StorageCause::DiskFull
        );
        assert_eq!(cause("could not extend file \"base/16384/2619\": No space left on device"), StorageCause::DiskFull);
        assert_eq!(cause("attempt to write a readonly database"), StorageCause::ReadOnly);
        assert_eq!(cause("Read-only file system (os error 30)"), StorageCause::ReadOnly);
        assert_eq!(
            cause("Connection Error: pool timed out while waiting for an open connection"),
            StorageCause::Unreachable
        );
        assert_eq!(
            cause("error communicating with database: Connection refused (os error 111)"),
            StorageCause::Unreachable
        );
        assert_eq!(
            cause("FATAL: terminating connection due to administrator command (57P01)"),
            StorageCause::Unreachable
        );
        assert_eq!(cause("UNIQUE constraint failed: plans.id"), StorageCause::Failed);
        assert_eq!(StorageError::Corrupt("x".into()).cause(), StorageCause::Failed);
    }
}
