use sea_orm::entity::prelude::*;

/// One termination (or several in one call) charged to a blast-radius group (m0011).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "budget_ledger")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `rule:region:tag=value`.
    pub group_key: String,
    pub rule: String,
    pub run_id: String,
    pub count: i32,
    pub at_us: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
