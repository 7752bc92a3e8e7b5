use sea_orm::entity::prelude::*;

/// An uploaded plugin version: its component bytes, what it said about itself, its
/// status and the operator's grant. Built-in plugins are not stored: they ship in the
/// binary. `(name, version)` is immutable: the id is `name@version`.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub version: String,
    /// `planner` or `attack`.
    pub kind: String,
    pub sha256: String,
    pub size: i64,
    pub wasm: Vec<u8>,
    /// `pending` (until an admin grants it), `enabled` or `disabled`.
    pub status: String,
    /// The operator's grant as JSON; None while pending.
    pub grant: Option<String>,
    pub uploaded_by: String,
    pub uploaded_at_us: i64,
    pub updated_at_us: i64,
    /// The trusted key that signed it; None: unsigned.
    pub signed_by: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id)
            .field("sha256", &self.sha256)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
