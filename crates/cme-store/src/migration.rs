//! Schema migrations (sea-orm-migration); applied at connect.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

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
        ]
    }
}

struct M0001Initial;

// Names are explicit: the derive names a migration after its file, and both live here.
impl MigrationName for M0001Initial {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    Id,
    Name,
    CreatedAtUs,
    DeletedAtUs,
    AttackRef,
    AttackPlugin,
    AttackArgs,
    PlannerRef,
    PlannerPlugin,
    PlannerArgs,
    DryRun,
    Timezone,
    Seed,
    GraceMs,
}

#[derive(DeriveIden)]
enum Executors {
    Table,
    Id,
    PlanId,
    DueAtUs,
    Status,
    Attempts,
    LeaseOwner,
    LeaseExpiresUs,
    GraceMs,
    CreatedAtUs,
    StartedAtUs,
    FinishedAtUs,
    Summary,
    Targets,
    Details,
    Error,
    Log,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    AtUs,
    Source,
    RunId,
    Actor,
    Action,
    Target,
    Decision,
    Reason,
    DryRun,
    Outcome,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
    UpdatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .if_not_exists()
                    .col(string(Plans::Id).primary_key())
                    .col(text(Plans::Name))
                    .col(big_integer(Plans::CreatedAtUs))
                    .col(big_integer_null(Plans::DeletedAtUs))
                    .col(text(Plans::AttackRef))
                    .col(text(Plans::AttackPlugin))
                    .col(text(Plans::AttackArgs))
                    .col(text(Plans::PlannerRef))
                    .col(text(Plans::PlannerPlugin))
                    .col(text(Plans::PlannerArgs))
                    .col(boolean(Plans::DryRun))
                    .col(text(Plans::Timezone))
                    .col(big_integer(Plans::Seed))
                    .col(big_integer(Plans::GraceMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("plans_by_created").table(Plans::Table).col(Plans::CreatedAtUs).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Executors::Table)
                    .if_not_exists()
                    .col(string(Executors::Id).primary_key())
                    .col(string(Executors::PlanId))
                    .col(big_integer(Executors::DueAtUs))
                    .col(string(Executors::Status))
                    .col(integer(Executors::Attempts))
                    .col(string_null(Executors::LeaseOwner))
                    .col(big_integer_null(Executors::LeaseExpiresUs))
                    .col(big_integer(Executors::GraceMs))
                    .col(big_integer(Executors::CreatedAtUs))
                    .col(big_integer_null(Executors::StartedAtUs))
                    .col(big_integer_null(Executors::FinishedAtUs))
                    .col(text_null(Executors::Summary))
                    .col(text(Executors::Targets))
                    .col(text_null(Executors::Details))
                    .col(text_null(Executors::Error))
                    .col(text(Executors::Log))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            // Every listing orders by (due_at_us, id); each index ends so, so that a page is
            // an index range read, never a sort of the whole table.
            ("executors_by_status_due", vec![Executors::Status, Executors::DueAtUs, Executors::Id]),
            ("executors_by_plan", vec![Executors::PlanId, Executors::DueAtUs, Executors::Id]),
            ("executors_by_due", vec![Executors::DueAtUs, Executors::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Executors::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(big_integer(AuditEvents::AtUs))
                    .col(string(AuditEvents::Source))
                    .col(string(AuditEvents::RunId))
                    .col(text(AuditEvents::Actor))
                    .col(text(AuditEvents::Action))
                    .col(text(AuditEvents::Target))
                    .col(string(AuditEvents::Decision))
                    .col(text_null(AuditEvents::Reason))
                    .col(boolean(AuditEvents::DryRun))
                    .col(text_null(AuditEvents::Outcome))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .if_not_exists()
                    .col(string(Settings::Key).primary_key())
                    .col(text(Settings::Value))
                    .col(big_integer(Settings::UpdatedAtUs))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

struct M0002Credentials;

impl MigrationName for M0002Credentials {
    fn name(&self) -> &str {
        "m0002_credentials"
    }
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    Name,
    User,
    PrivateKey,
    Passphrase,
    Fingerprint,
    Algorithm,
    CreatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Credentials {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Credentials::Table)
                    .if_not_exists()
                    .col(string(Credentials::Name).primary_key())
                    .col(text(Credentials::User))
                    .col(text(Credentials::PrivateKey))
                    .col(text_null(Credentials::Passphrase))
                    .col(text(Credentials::Fingerprint))
                    .col(text(Credentials::Algorithm))
                    .col(big_integer(Credentials::CreatedAtUs))
                    .to_owned(),
            )
            .await
    }
}

struct M0003Plugins;

impl MigrationName for M0003Plugins {
    fn name(&self) -> &str {
        "m0003_plugins"
    }
}

#[derive(DeriveIden)]
enum Plugins {
    Table,
    Id,
    Name,
    Version,
    Kind,
    Sha256,
    Size,
    Wasm,
    Status,
    Grant,
    UploadedBy,
    UploadedAtUs,
    UpdatedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Plugins {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plugins::Table)
                    .if_not_exists()
                    .col(string(Plugins::Id).primary_key())
                    .col(text(Plugins::Name))
                    .col(text(Plugins::Version))
                    .col(text(Plugins::Kind))
                    .col(text(Plugins::Sha256))
                    .col(big_integer(Plugins::Size))
                    .col(blob(Plugins::Wasm))
                    .col(text(Plugins::Status))
                    .col(text_null(Plugins::Grant))
                    .col(text(Plugins::UploadedBy))
                    .col(big_integer(Plugins::UploadedAtUs))
                    .col(big_integer(Plugins::UpdatedAtUs))
                    .to_owned(),
            )
            .await
    }
}

/// Whether an executor's run was dry, recorded with its result (the engine-wide leash
/// applies at run time, so the plan's flag alone does not tell).
struct M0004ExecutorDryRun;

impl MigrationName for M0004ExecutorDryRun {
    fn name(&self) -> &str {
        "m0004_executor_dry_run"
    }
}

#[derive(DeriveIden)]
enum ExecutorRuns {
    #[sea_orm(iden = "executors")]
    Table,
    DryRun,
}

#[async_trait::async_trait]
impl MigrationTrait for M0004ExecutorDryRun {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(ExecutorRuns::Table).add_column(boolean_null(ExecutorRuns::DryRun)).to_owned()).await
    }
}

/// Who may use a credential (token names and roles; an inline key: its plan only), and
/// who created each plan (what the check compares with at run time).
struct M0005CredentialScopes;

impl MigrationName for M0005CredentialScopes {
    fn name(&self) -> &str {
        "m0005_credential_scopes"
    }
}

#[derive(DeriveIden)]
enum ScopedCredentials {
    #[sea_orm(iden = "credentials")]
    Table,
    MayUse,
    OwnerPlan,
}

#[derive(DeriveIden)]
enum PlanCreators {
    #[sea_orm(iden = "plans")]
    Table,
    CreatedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for M0005CredentialScopes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        manager.alter_table(Table::alter().table(ScopedCredentials::Table).add_column(text_null(ScopedCredentials::MayUse)).to_owned()).await?;
        manager.alter_table(Table::alter().table(ScopedCredentials::Table).add_column(text_null(ScopedCredentials::OwnerPlan)).to_owned()).await?;
        manager.alter_table(Table::alter().table(PlanCreators::Table).add_column(text_null(PlanCreators::CreatedBy)).to_owned()).await
    }
}

/// Paused plans (their waiting executors take the status `paused`, no schema change).
struct M0006PlanPause;

impl MigrationName for M0006PlanPause {
    fn name(&self) -> &str {
        "m0006_plan_pause"
    }
}

#[derive(DeriveIden)]
enum PausedPlans {
    #[sea_orm(iden = "plans")]
    Table,
    PausedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0006PlanPause {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(PausedPlans::Table).add_column(big_integer_null(PausedPlans::PausedAtUs)).to_owned()).await
    }
}


/// Continuous chaos: recurring plans (their horizon, indexed: the scheduler asks for the
/// soonest), misfire and overlap policies, the reason of skipped executors, blackouts.
struct M0007ContinuousChaos;

impl MigrationName for M0007ContinuousChaos {
    fn name(&self) -> &str {
        "m0007_continuous_chaos"
    }
}

#[derive(DeriveIden)]
enum RecurringPlans {
    #[sea_orm(iden = "plans")]
    Table,
    PlannedUntilUs,
    Misfire,
    Overlap,
}

#[derive(DeriveIden)]
enum SkippedExecutors {
    #[sea_orm(iden = "executors")]
    Table,
    Reason,
}

#[derive(DeriveIden)]
enum Blackouts {
    Table,
    Id,
    Name,
    PlanId,
    Spec,
    Calendar,
    StopRunning,
    CreatedAtUs,
    CreatedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for M0007ContinuousChaos {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time. Plans stored
        // before are one-shot, with the original behaviour (skip misfires)...
        manager.alter_table(Table::alter().table(RecurringPlans::Table).add_column(big_integer_null(RecurringPlans::PlannedUntilUs)).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(RecurringPlans::Table).add_column(string(RecurringPlans::Misfire).default("skip")).to_owned())
            .await?;
        // ... and allow overlaps, as they always did.
        manager
            .alter_table(Table::alter().table(RecurringPlans::Table).add_column(string(RecurringPlans::Overlap).default("allow")).to_owned())
            .await?;
        manager
            .create_index(Index::create().name("plans_planned_until").table(RecurringPlans::Table).col(RecurringPlans::PlannedUntilUs).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(SkippedExecutors::Table).add_column(text_null(SkippedExecutors::Reason)).to_owned()).await?;
        manager
            .create_table(
                Table::create()
                    .table(Blackouts::Table)
                    .col(string(Blackouts::Id).primary_key())
                    .col(text(Blackouts::Name))
                    .col(string_null(Blackouts::PlanId))
                    .col(text(Blackouts::Spec))
                    .col(text_null(Blackouts::Calendar))
                    .col(boolean(Blackouts::StopRunning))
                    .col(big_integer(Blackouts::CreatedAtUs))
                    .col(text(Blackouts::CreatedBy))
                    .to_owned(),
            )
            .await
    }
}

struct M0008Webhooks;

impl MigrationName for M0008Webhooks {
    fn name(&self) -> &str {
        "m0008_webhooks"
    }
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    Webhook,
    EventId,
    Kind,
    Subject,
    TimeUs,
    Data,
    Status,
    Attempts,
    NextAttemptUs,
    LeaseOwner,
    LeaseUntilUs,
    LastAttemptUs,
    LastError,
    DeliveredUs,
    CreatedUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0008Webhooks {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(big_pk_auto(Deliveries::Id))
                    .col(string(Deliveries::Webhook))
                    .col(string(Deliveries::EventId))
                    .col(string(Deliveries::Kind))
                    .col(text(Deliveries::Subject))
                    .col(big_integer(Deliveries::TimeUs))
                    .col(text(Deliveries::Data))
                    .col(string(Deliveries::Status))
                    .col(integer(Deliveries::Attempts))
                    .col(big_integer(Deliveries::NextAttemptUs))
                    .col(string_null(Deliveries::LeaseOwner))
                    .col(big_integer_null(Deliveries::LeaseUntilUs))
                    .col(big_integer_null(Deliveries::LastAttemptUs))
                    .col(text_null(Deliveries::LastError))
                    .col(big_integer_null(Deliveries::DeliveredUs))
                    .col(big_integer(Deliveries::CreatedUs))
                    .to_owned(),
            )
            .await?;
        // What the senders claim (pending and due), and what the API counts per webhook.
        manager
            .create_index(
                Index::create().name("deliveries_due").table(Deliveries::Table).col(Deliveries::Status).col(Deliveries::NextAttemptUs).to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("deliveries_webhook").table(Deliveries::Table).col(Deliveries::Webhook).col(Deliveries::Status).to_owned())
            .await
    }
}

struct M0009SteadyState;

impl MigrationName for M0009SteadyState {
    fn name(&self) -> &str {
        "m0009_steady_state"
    }
}

#[derive(DeriveIden)]
enum GuardedPlans {
    #[sea_orm(iden = "plans")]
    Table,
    SteadyState,
}

#[async_trait::async_trait]
impl MigrationTrait for M0009SteadyState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Plans stored before have no steady state (NULL).
        manager.alter_table(Table::alter().table(GuardedPlans::Table).add_column(text_null(GuardedPlans::SteadyState)).to_owned()).await
    }
}

struct M0010StopConditions;

impl MigrationName for M0010StopConditions {
    fn name(&self) -> &str {
        "m0010_stop_conditions"
    }
}

#[derive(DeriveIden)]
enum WatchedPlans {
    #[sea_orm(iden = "plans")]
    Table,
    StopConditions,
}

#[async_trait::async_trait]
impl MigrationTrait for M0010StopConditions {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(WatchedPlans::Table).add_column(text_null(WatchedPlans::StopConditions)).to_owned()).await
    }
}

struct M0011BudgetLedger;

impl MigrationName for M0011BudgetLedger {
    fn name(&self) -> &str {
        "m0011_budget_ledger"
    }
}

#[derive(DeriveIden)]
enum BudgetLedger {
    Table,
    Id,
    GroupKey,
    Rule,
    RunId,
    Count,
    AtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0011BudgetLedger {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BudgetLedger::Table)
                    .col(big_pk_auto(BudgetLedger::Id))
                    .col(string(BudgetLedger::GroupKey))
                    .col(string(BudgetLedger::Rule))
                    .col(string(BudgetLedger::RunId))
                    .col(integer(BudgetLedger::Count))
                    .col(big_integer(BudgetLedger::AtUs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("budget_ledger_group").table(BudgetLedger::Table).col(BudgetLedger::GroupKey).col(BudgetLedger::AtUs).to_owned())
            .await
    }
}

/// The caps on stored work (`WorkCaps`) are checked in every inserting transaction; counting
/// live plans and waiting executors there grew with the database (a scan per POST). The
/// database keeps the two counts itself, by triggers, so they are exact in every
/// transaction that reads them and no writer can forget them. On PostgreSQL the counts are
/// striped over 16 rows by backend (a reader sums them) so that claims on different
/// connections do not queue on one row; statement-level triggers count a statement's
/// rows once. SQLite has one writer at a time and one row.
struct M0012WorkCounts;

impl MigrationName for M0012WorkCounts {
    fn name(&self) -> &str {
        "m0012_work_counts"
    }
}

const SQLITE_WORK_COUNTS: &str = r#"
CREATE TABLE work_counts (slot INTEGER PRIMARY KEY, live_plans BIGINT NOT NULL, waiting_executors BIGINT NOT NULL);
INSERT INTO work_counts (slot, live_plans, waiting_executors) VALUES (0,
    (SELECT COUNT(*) FROM plans WHERE deleted_at_us IS NULL),
    (SELECT COUNT(*) FROM executors WHERE status IN ('pending', 'paused')));
CREATE TRIGGER work_counts_plan_insert AFTER INSERT ON plans WHEN NEW.deleted_at_us IS NULL
BEGIN UPDATE work_counts SET live_plans = live_plans + 1 WHERE slot = 0; END;
CREATE TRIGGER work_counts_plan_update AFTER UPDATE OF deleted_at_us ON plans
WHEN (OLD.deleted_at_us IS NULL) <> (NEW.deleted_at_us IS NULL)
BEGIN UPDATE work_counts SET live_plans = live_plans + (CASE WHEN NEW.deleted_at_us IS NULL THEN 1 ELSE -1 END) WHERE slot = 0; END;
CREATE TRIGGER work_counts_plan_delete AFTER DELETE ON plans WHEN OLD.deleted_at_us IS NULL
BEGIN UPDATE work_counts SET live_plans = live_plans - 1 WHERE slot = 0; END;
CREATE TRIGGER work_counts_executor_insert AFTER INSERT ON executors WHEN NEW.status IN ('pending', 'paused')
BEGIN UPDATE work_counts SET waiting_executors = waiting_executors + 1 WHERE slot = 0; END;
CREATE TRIGGER work_counts_executor_update AFTER UPDATE OF status ON executors
WHEN (OLD.status IN ('pending', 'paused')) <> (NEW.status IN ('pending', 'paused'))
BEGIN UPDATE work_counts SET waiting_executors = waiting_executors + (CASE WHEN NEW.status IN ('pending', 'paused') THEN 1 ELSE -1 END) WHERE slot = 0; END;
CREATE TRIGGER work_counts_executor_delete AFTER DELETE ON executors WHEN OLD.status IN ('pending', 'paused')
BEGIN UPDATE work_counts SET waiting_executors = waiting_executors - 1 WHERE slot = 0; END;
"#;

const POSTGRES_WORK_COUNTS: &str = r#"
CREATE TABLE work_counts (slot INTEGER PRIMARY KEY, live_plans BIGINT NOT NULL, waiting_executors BIGINT NOT NULL);
INSERT INTO work_counts (slot, live_plans, waiting_executors) SELECT s, 0, 0 FROM generate_series(0, 15) AS s;
UPDATE work_counts SET
    live_plans = (SELECT COUNT(*) FROM plans WHERE deleted_at_us IS NULL),
    waiting_executors = (SELECT COUNT(*) FROM executors WHERE status IN ('pending', 'paused'))
WHERE slot = 0;
CREATE FUNCTION cme_count_work(plans_delta BIGINT, executors_delta BIGINT) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF plans_delta <> 0 OR executors_delta <> 0 THEN
        UPDATE work_counts SET live_plans = live_plans + plans_delta, waiting_executors = waiting_executors + executors_delta
        WHERE slot = pg_backend_pid() % 16;
    END IF;
END $$;
-- Each branch names only the transition tables its operation has (PL/pgSQL plans a
-- statement when it first runs it).
CREATE FUNCTION cme_count_plans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM cme_count_work((SELECT COUNT(*) FROM new_rows WHERE deleted_at_us IS NULL), 0);
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM cme_count_work((SELECT COUNT(*) FROM new_rows WHERE deleted_at_us IS NULL)
                             - (SELECT COUNT(*) FROM old_rows WHERE deleted_at_us IS NULL), 0);
    ELSE
        PERFORM cme_count_work(-(SELECT COUNT(*) FROM old_rows WHERE deleted_at_us IS NULL), 0);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION cme_count_executors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM cme_count_work(0, (SELECT COUNT(*) FROM new_rows WHERE status IN ('pending', 'paused')));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM cme_count_work(0, (SELECT COUNT(*) FROM new_rows WHERE status IN ('pending', 'paused'))
                                - (SELECT COUNT(*) FROM old_rows WHERE status IN ('pending', 'paused')));
    ELSE
        PERFORM cme_count_work(0, -(SELECT COUNT(*) FROM old_rows WHERE status IN ('pending', 'paused')));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER work_counts_plan_insert AFTER INSERT ON plans REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_plans();
CREATE TRIGGER work_counts_plan_update AFTER UPDATE ON plans REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_plans();
CREATE TRIGGER work_counts_plan_delete AFTER DELETE ON plans REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_plans();
CREATE TRIGGER work_counts_executor_insert AFTER INSERT ON executors REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_executors();
CREATE TRIGGER work_counts_executor_update AFTER UPDATE ON executors REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_executors();
CREATE TRIGGER work_counts_executor_delete AFTER DELETE ON executors REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cme_count_executors();
"#;

#[async_trait::async_trait]
impl MigrationTrait for M0012WorkCounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => POSTGRES_WORK_COUNTS,
            _ => SQLITE_WORK_COUNTS,
        };
        manager.get_connection().execute_unprepared(sql).await.map(|_| ())
    }
}

/// Who signed an uploaded plugin (a trusted key's name and fingerprint); None: unsigned.
struct M0013PluginSigner;

impl MigrationName for M0013PluginSigner {
    fn name(&self) -> &str {
        "m0013_plugin_signer"
    }
}

#[derive(DeriveIden)]
enum PluginSigner {
    #[sea_orm(iden = "plugins")]
    Table,
    SignedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for M0013PluginSigner {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(PluginSigner::Table).add_column(text_null(PluginSigner::SignedBy)).to_owned()).await
    }
}

/// Inventories (named groups of SSH hosts, their hosts as JSON: read and written whole)
/// and the undos attacks arm, with the index the undo keeper reads them by.
struct M0014InventoriesAndUndos;

impl MigrationName for M0014InventoriesAndUndos {
    fn name(&self) -> &str {
        "m0014_inventories_and_undos"
    }
}

#[derive(DeriveIden)]
enum Inventories {
    Table,
    Name,
    Hosts,
    UpdatedAtUs,
    UpdatedBy,
}

#[derive(DeriveIden)]
enum Undos {
    Table,
    Id,
    RunId,
    PlanId,
    Plugin,
    Address,
    Port,
    User,
    Credential,
    Command,
    PlanCreatedBy,
    ArmedAtUs,
    DueAtUs,
    State,
    Attempts,
    Outcome,
    FinishedAtUs,
}

#[async_trait::async_trait]
impl MigrationTrait for M0014InventoriesAndUndos {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Inventories::Table)
                    .col(string(Inventories::Name).primary_key())
                    .col(text(Inventories::Hosts))
                    .col(big_integer(Inventories::UpdatedAtUs))
                    .col(string(Inventories::UpdatedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Undos::Table)
                    .col(string(Undos::Id).primary_key())
                    .col(string(Undos::RunId))
                    .col(string(Undos::PlanId))
                    .col(string(Undos::Plugin))
                    .col(string(Undos::Address))
                    .col(integer(Undos::Port))
                    .col(string(Undos::User))
                    .col(string(Undos::Credential))
                    .col(text(Undos::Command))
                    .col(text_null(Undos::PlanCreatedBy))
                    .col(big_integer(Undos::ArmedAtUs))
                    .col(big_integer(Undos::DueAtUs))
                    .col(string(Undos::State))
                    .col(integer(Undos::Attempts))
                    .col(text_null(Undos::Outcome))
                    .col(big_integer_null(Undos::FinishedAtUs))
                    .to_owned(),
            )
            .await?;
        manager.create_index(Index::create().name("undos_state_due").table(Undos::Table).col(Undos::State).col(Undos::DueAtUs).to_owned()).await
    }
}

/// PostgreSQL only: the work-caps lock and the counts in one round trip. Every batch of
/// inserts takes the advisory lock and then reads the counts; as two statements that was
/// two round trips per batch. The counts must be read after the lock is granted (another
/// replica may have committed while this one waited): a VOLATILE PL/pgSQL function takes
/// a new snapshot for each statement it runs, so its `RETURN QUERY` sees every commit made
/// before the lock, which one plain statement (one snapshot, taken before the wait) would
/// not. SQLite has one writer and needs no lock.
struct M0015LockedWorkCounts;

impl MigrationName for M0015LockedWorkCounts {
    fn name(&self) -> &str {
        "m0015_locked_work_counts"
    }
}

const POSTGRES_LOCKED_WORK_COUNTS: &str = r#"
CREATE FUNCTION cme_locked_work_counts(lock_key BIGINT) RETURNS TABLE (plans BIGINT, executors BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT CAST(COALESCE(SUM(w.live_plans), 0) AS BIGINT), CAST(COALESCE(SUM(w.waiting_executors), 0) AS BIGINT)
    FROM work_counts AS w;
END $$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for M0015LockedWorkCounts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres_only(manager, POSTGRES_LOCKED_WORK_COUNTS).await
    }
}

/// PostgreSQL only: a batch of inserts that all fit under the caps is stored by one
/// statement, committed on its own: its rows as data-modifying `WITH` clauses and, as its
/// main query, this function, which takes the work-caps lock, reads the counts after it
/// (a new snapshot, as in m0015) and raises `CMEC1` when they leave less room than the
/// batch needs; the raise undoes the whole statement. Rows inserted before the lock was
/// granted count nowhere until the statement's triggers run, after this function, so the
/// counts it reads never include its own batch. One round trip instead of four
/// (BEGIN, lock and counts, insert, COMMIT); a batch refused here is judged insert by
/// insert in a transaction of its own (`batcher`).
struct M0016AdmitWork;

impl MigrationName for M0016AdmitWork {
    fn name(&self) -> &str {
        "m0016_admit_work"
    }
}

const POSTGRES_ADMIT_WORK: &str = r#"
CREATE FUNCTION cme_admit_work(lock_key BIGINT, plans_room BIGINT, executors_room BIGINT) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    stored_plans BIGINT;
    stored_executors BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT COALESCE(SUM(w.live_plans), 0), COALESCE(SUM(w.waiting_executors), 0) INTO stored_plans, stored_executors
    FROM work_counts AS w;
    IF stored_plans > plans_room OR stored_executors > executors_room THEN
        RAISE EXCEPTION 'the stored work leaves no room for this batch' USING ERRCODE = 'CMEC1';
    END IF;
    RETURN stored_plans;
END $$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for M0016AdmitWork {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        on_postgres_only(manager, POSTGRES_ADMIT_WORK).await
    }
}

/// Runs `sql` on PostgreSQL; SQLite needs none of it.
async fn on_postgres_only(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    manager.get_connection().execute_unprepared(sql).await.map(|_| ())
}

/// Blackouts are listed page by page in creation order (`created_at_us`, `id`): the
/// index the keyset seeks on.
struct M0017BlackoutOrder;

impl MigrationName for M0017BlackoutOrder {
    fn name(&self) -> &str {
        "m0017_blackout_order"
    }
}

#[derive(DeriveIden)]
enum BlackoutOrder {
    #[sea_orm(iden = "blackouts")]
    Table,
    CreatedAtUs,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for M0017BlackoutOrder {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("blackouts_by_creation")
                    .table(BlackoutOrder::Table)
                    .col(BlackoutOrder::CreatedAtUs)
                    .col(BlackoutOrder::Id)
                    .to_owned(),
            )
            .await
    }
}
