//! Who may use a credential (token names and roles; an inline key: its plan only), and
//! who created each plan (what the check compares with at run time).

use super::*;

pub(super) struct M0005CredentialScopes;

impl MigrationName for M0005CredentialScopes {
    fn name(&self) -> &str {
        "m0005_credential_scopes"
    }
}

#[derive(DeriveIden)]
pub(super) enum ScopedCredentials {
    #[sea_orm(iden = "credentials")]
    Table,
    MayUse,
    OwnerPlan,
}

#[derive(DeriveIden)]
pub(super) enum PlanCreators {
    #[sea_orm(iden = "plans")]
    Table,
    CreatedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for M0005CredentialScopes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ScopedCredentials::Table)
                    .add_column(text_null(ScopedCredentials::MayUse))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ScopedCredentials::Table)
                    .add_column(text_null(ScopedCredentials::OwnerPlan))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(PlanCreators::Table).add_column(text_null(PlanCreators::CreatedBy)).to_owned(),
            )
            .await
    }
}
