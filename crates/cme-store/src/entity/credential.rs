use sea_orm::entity::prelude::*;

/// An SSH credential plugins refer to by name. The key never leaves the engine: the API
/// shows the name, user and fingerprint only.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub user: String,
    pub private_key: String,
    pub passphrase: Option<String>,
    /// `SHA256:...` of the public key.
    pub fingerprint: String,
    pub algorithm: String,
    pub created_at_us: i64,
    /// JSON array of the token names and roles whose plans may use it; NULL (stored before
    /// m0005) means the roles that could use any credential then: operator and admin.
    pub may_use: Option<String>,
    /// The plan whose inline key this is: only that plan may use it.
    pub owner_plan: Option<String>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
