use sea_orm::entity::prelude::*;

/// One event on its way to one webhook: the outbox (m0008).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook: String,
    pub event_id: String,
    /// `executor.failed`, ... (without the `cme.` prefix).
    pub kind: String,
    pub subject: String,
    pub time_us: i64,
    /// JSON of the event's data.
    pub data: String,
    /// pending, delivered or failed (given up).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_us: i64,
    pub lease_owner: Option<String>,
    pub lease_until_us: Option<i64>,
    pub last_attempt_us: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_us: Option<i64>,
    pub created_us: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
