use sea_orm::entity::prelude::*;

/// A span of time in which nothing fires (m0007).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blackouts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// NULL: every plan.
    pub plan_id: Option<String>,
    /// JSON of `BlackoutWhen`.
    pub spec: String,
    /// The calendar it was imported from.
    pub calendar: Option<String>,
    /// Cancel the plans' running attacks when it starts.
    pub stop_running: bool,
    pub created_at_us: i64,
    pub created_by: String,
    /// What it is for (m0018).
    pub description: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
