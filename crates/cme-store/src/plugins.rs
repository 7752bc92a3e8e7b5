//! The plugin registry's rows. Every change bumps the `plugins_generation` setting in
//! the same transaction, so that replicas notice a change with one cheap read.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DerivePartialModel, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use cme_engine::storage::StorageResult;
use cme_engine::{AuditEvent, ExecutorStatus, PluginChange, PluginRecord, StoredUpload};

use crate::convert::{self, us};
use crate::entity::{executor, plan, plugin};
use crate::{Store, db_error as db};

const GENERATION_KEY: &str = "plugins_generation";

/// A stored plugin without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "plugin::Entity")]
pub(crate) struct PluginRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub kind: String,
    pub sha256: String,
    pub size: i64,
    pub status: String,
    pub grant: Option<String>,
    pub uploaded_by: String,
    pub uploaded_at_us: i64,
    pub updated_at_us: i64,
    pub signed_by: Option<String>,
}

impl Store {
    pub(crate) async fn generation(&self) -> StorageResult<String> {
        self.setting_value(GENERATION_KEY).await
    }

    pub(crate) async fn rows(&self) -> StorageResult<Vec<PluginRow>> {
        plugin::Entity::find()
            .order_by_asc(plugin::Column::UploadedAtUs)
            .into_partial_model::<PluginRow>()
            .all(self.db())
            .await
            .map_err(db)
    }

    pub(crate) async fn row(&self, id: &str) -> StorageResult<Option<PluginRow>> {
        plugin::Entity::find_by_id(id.to_string()).into_partial_model::<PluginRow>().one(self.db()).await.map_err(db)
    }

    pub(crate) async fn wasm(&self, id: &str) -> StorageResult<Option<Vec<u8>>> {
        Ok(plugin::Entity::find_by_id(id.to_string()).one(self.db()).await.map_err(db)?.map(|row| row.wasm))
    }

    pub(crate) async fn insert_upload(
        &self,
        record: &PluginRecord,
        wasm: &[u8],
        audit: &AuditEvent,
    ) -> StorageResult<StoredUpload> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        if let Some(existing) = plugin::Entity::find_by_id(record.id.clone())
            .into_partial_model::<PluginRow>()
            .one(&txn)
            .await
            .map_err(db)?
        {
            txn.rollback().await.map_err(db)?;
            return Ok(if existing.sha256 == record.sha256 {
                StoredUpload::AlreadyStored
            } else {
                StoredUpload::Conflict { sha256: existing.sha256 }
            });
        }
        plugin::Entity::insert(convert::plugin_model(record, wasm).into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(db)?;
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        crate::queries::bump_setting(&txn, GENERATION_KEY).await?;
        txn.commit().await.map_err(db)?;
        Ok(StoredUpload::Inserted)
    }

    pub(crate) async fn change(
        &self,
        id: &str,
        change: &PluginChange,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> StorageResult<bool> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let mut update = plugin::Entity::update_many()
            .col_expr(plugin::Column::UpdatedAtUs, Expr::value(us(now)))
            .filter(plugin::Column::Id.eq(id));
        if let Some(status) = change.status {
            update = update.col_expr(plugin::Column::Status, Expr::value(status.as_str()));
        }
        if let Some(grant) = &change.grant {
            update = update.col_expr(plugin::Column::Grant, Expr::value(convert::grant_text(grant)));
        }
        if update.exec(&txn).await.map_err(db)?.rows_affected == 0 {
            txn.rollback().await.map_err(db)?;
            return Ok(false);
        }
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        crate::queries::bump_setting(&txn, GENERATION_KEY).await?;
        txn.commit().await.map_err(db)?;
        Ok(true)
    }

    pub(crate) async fn delete(&self, id: &str, audit: &AuditEvent) -> StorageResult<Option<u64>> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        if plugin::Entity::find_by_id(id.to_string())
            .into_partial_model::<PluginRow>()
            .one(&txn)
            .await
            .map_err(db)?
            .is_none()
        {
            txn.rollback().await.map_err(db)?;
            return Ok(None);
        }
        let users = executor::Entity::find()
            .filter(executor::Column::Status.is_in(ExecutorStatus::OPEN.map(ExecutorStatus::as_str)))
            .filter(
                executor::Column::PlanId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(plan::Column::Id)
                        .from(plan::Entity)
                        .cond_where(
                            sea_orm::Condition::any()
                                .add(plan::Column::AttackPlugin.eq(id))
                                .add(plan::Column::PlannerPlugin.eq(id)),
                        )
                        .to_owned(),
                ),
            )
            .count(&txn)
            .await
            .map_err(db)?;
        if users > 0 {
            txn.rollback().await.map_err(db)?;
            return Ok(Some(users));
        }
        plugin::Entity::delete_by_id(id.to_string()).exec(&txn).await.map_err(db)?;
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        crate::queries::bump_setting(&txn, GENERATION_KEY).await?;
        txn.commit().await.map_err(db)?;
        Ok(Some(0))
    }
}
