use sea_orm::entity::prelude::*;

/// A plan: an attack with its args, and the planner call that scheduled it.
/// Never hard-deleted: `deleted_at_us` hides it from the plans API.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plans")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub created_at_us: i64,
    pub deleted_at_us: Option<i64>,
    pub attack_ref: String,
    /// `name@version` of the attack plugin chosen at creation.
    pub attack_plugin: String,
    /// JSON text.
    pub attack_args: String,
    pub planner_ref: String,
    pub planner_plugin: String,
    pub planner_args: String,
    pub dry_run: bool,
    pub timezone: String,
    pub seed: i64,
    pub grace_ms: i64,
    /// JSON `{"name": token name, "role": role}` of who created it; NULL for plans stored
    /// before m0005.
    pub created_by: Option<String>,
    /// Set while paused (m0006).
    pub paused_at_us: Option<i64>,
    /// A recurring plan's horizon: executors are made up to here (m0007); NULL: one-shot.
    pub planned_until_us: Option<i64>,
    /// `skip` or `run_once` (m0007).
    pub misfire: String,
    /// `forbid` or `allow` (m0007).
    pub overlap: String,
    /// The steady state's probes, a JSON array of `{ref, plugin, args}` (m0009); NULL: none.
    pub steady_state: Option<String>,
    /// The stop conditions, a JSON array of `{ref, plugin, args, interval_ms, settle_ms,
    /// on_failure}` (m0010); NULL: none.
    pub stop_conditions: Option<String>,
    /// An experiment's steps, a JSON array (m0020); NULL: a one-attack plan.
    pub steps: Option<String>,
    /// An experiment's deadline (m0020); NULL: the engine's.
    pub deadline_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
