use sea_orm::entity::prelude::*;

/// Something done to or by the engine: a capability call of a plugin, or an operator's
/// action through the API.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at_us: i64,
    /// "plugin" or "api".
    pub source: String,
    /// The executor id for plugin calls; empty otherwise.
    pub run_id: String,
    /// `name@version` for plugin calls; the role for API calls.
    pub actor: String,
    pub action: String,
    pub target: String,
    /// allowed, denied, unavailable.
    pub decision: String,
    pub reason: Option<String>,
    pub dry_run: bool,
    pub outcome: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
