use sea_orm::entity::prelude::*;

/// An undo an attack armed (m0014).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "undos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub run_id: String,
    pub plan_id: String,
    /// The experiment step whose fault it reverts (m0020); NULL: a one-attack run's.
    pub step: Option<String>,
    pub plugin: String,
    pub address: String,
    pub port: i32,
    pub user: String,
    pub credential: String,
    pub command: String,
    /// What the host restores itself, JSON (m0020); NULL: an SSH command.
    pub revert: Option<String>,
    /// JSON `{"name", "role"}` of whoever created the plan; NULL when unknown.
    pub plan_created_by: Option<String>,
    pub armed_at_us: i64,
    pub due_at_us: i64,
    /// pending, done or failed.
    pub state: String,
    pub attempts: i32,
    pub outcome: Option<String>,
    pub finished_at_us: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
