use sea_orm::entity::prelude::*;

/// A calendar the engine holds blackouts of (m0019).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "calendar_feeds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The subscription's URL, sealed when the engine has a credential key; NULL: uploaded.
    pub url: Option<String>,
    pub refresh_seconds: i64,
    pub timezone: Option<String>,
    pub plan_id: Option<String>,
    pub stop_running: bool,
    pub include_free: bool,
    pub created_at_us: i64,
    pub created_by: String,
    pub last_fetched_at_us: Option<i64>,
    pub last_error: Option<String>,
    /// When a replica may fetch it next; NULL: never (an upload).
    pub next_fetch_at_us: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
