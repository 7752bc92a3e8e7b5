use sea_orm::entity::prelude::*;

/// One scheduled run of a plan's attack. Never hard-deleted.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "executors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub plan_id: String,
    pub due_at_us: i64,
    /// pending, running, succeeded, failed, missed, cancelled.
    pub status: String,
    pub attempts: i32,
    /// Which engine holds the run, and until when (a lease).
    pub lease_owner: Option<String>,
    pub lease_expires_us: Option<i64>,
    pub grace_ms: i64,
    pub created_at_us: i64,
    pub started_at_us: Option<i64>,
    pub finished_at_us: Option<i64>,
    pub summary: Option<String>,
    /// JSON array of strings.
    pub targets: String,
    /// JSON object.
    pub details: Option<String>,
    pub error: Option<String>,
    /// The run's log (JSON object; `[]` in rows of earlier versions).
    pub log: String,
    /// Whether the run was dry; None until it ran.
    pub dry_run: Option<bool>,
    /// Why a skipped executor did not run, or what a catch-up run stands for (m0007).
    pub reason: Option<String>,
    /// held, refuted or aborted; NULL until it ran (m0020).
    pub outcome: Option<String>,
    /// The run's journal, JSON (m0020); NULL: never started, or emptied by retention.
    pub journal: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
