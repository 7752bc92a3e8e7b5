//! Schema migrations (sea-orm-migration); applied at connect. One migration a file; a
//! migration's name is explicit (`MigrationName`), never derived from its file, so that
//! the names recorded in existing databases stay what they were. A migration's table and
//! column names (`DeriveIden` enums) are visible to the later ones, which alter the same
//! tables.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

mod m0001_initial;
mod m0002_credentials;
mod m0003_plugins;
mod m0004_executor_dry_run;
mod m0005_credential_scopes;
mod m0006_plan_pause;
mod m0007_continuous_chaos;
mod m0008_webhooks;
mod m0009_steady_state;
mod m0010_stop_conditions;
mod m0011_budget_ledger;
mod m0012_work_counts;
mod m0013_plugin_signer;
mod m0014_inventories_and_undos;
mod m0015_locked_work_counts;
mod m0016_admit_work;
mod m0017_blackout_order;
mod m0018_blackout_description;
mod m0019_calendar_feeds;
mod m0020_experiments;
mod m0021_horizon_order;

use m0001_initial::*;
use m0002_credentials::*;
use m0003_plugins::*;
use m0004_executor_dry_run::*;
use m0005_credential_scopes::*;
use m0006_plan_pause::*;
use m0007_continuous_chaos::*;
use m0008_webhooks::*;
use m0009_steady_state::*;
use m0010_stop_conditions::*;
use m0011_budget_ledger::*;
use m0012_work_counts::*;
use m0013_plugin_signer::*;
use m0014_inventories_and_undos::*;
use m0015_locked_work_counts::*;
use m0016_admit_work::*;
use m0017_blackout_order::*;
use m0018_blackout_description::*;
use m0019_calendar_feeds::*;
use m0020_experiments::*;
use m0021_horizon_order::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Initial),
            Box::new(M0002Credentials),
            Box::new(M0003Plugins),
            Box::new(M0004ExecutorDryRun),
            Box::new(M0005CredentialScopes),
            Box::new(M0006PlanPause),
            Box::new(M0007ContinuousChaos),
            Box::new(M0008Webhooks),
            Box::new(M0009SteadyState),
            Box::new(M0010StopConditions),
            Box::new(M0011BudgetLedger),
            Box::new(M0012WorkCounts),
            Box::new(M0013PluginSigner),
            Box::new(M0014InventoriesAndUndos),
            Box::new(M0015LockedWorkCounts),
            Box::new(M0016AdmitWork),
            Box::new(M0017BlackoutOrder),
            Box::new(M0018BlackoutDescription),
            Box::new(M0019CalendarFeeds),
            Box::new(M0020Experiments),
            Box::new(M0021HorizonOrder),
        ]
    }
}

/// Runs `sql` on PostgreSQL; SQLite needs none of it.
async fn on_postgres_only(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    manager.get_connection().execute_unprepared(sql).await.map(|_| ())
}
