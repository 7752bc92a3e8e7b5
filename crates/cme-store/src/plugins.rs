//! The plugin registry's rows. Every change bumps the `plugins_generation` setting in
//! the same transaction, so that replicas notice a change with one cheap read.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DerivePartialModel, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use crate::entity::{executor, plan, plugin, setting};
use crate::queries::{NewAudit, insert_audit_rows};
use crate::{Store, StoreError, status};

const GENERATION_KEY: &str = "plugins_generation";

/// A stored plugin without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "plugin::Entity")]
pub struct PluginRow {
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
}

/// What storing an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredUpload {
    Inserted,
    /// The same id with the same bytes was already there.
    AlreadyStored(PluginRow),
    /// The same id with other bytes is there: versions are immutable.
    Conflict { sha256: String },
}

/// A change to a stored plugin.
#[derive(Debug, Clone, Default)]
pub struct PluginChange {
    pub status: Option<String>,
    /// Some(grant JSON) replaces the grant.
    pub grant: Option<String>,
}

impl Store {
    /// Changes whenever any plugin row changes (opaque; compare for equality).
    pub async fn plugins_generation(&self) -> Result<String, StoreError> {
        Ok(setting::Entity::find_by_id(GENERATION_KEY.to_string()).one(self.db()).await?.map(|row| row.value).unwrap_or_default())
    }

    /// Every stored plugin, without bytes, oldest first.
    pub async fn plugin_rows(&self) -> Result<Vec<PluginRow>, StoreError> {
        Ok(plugin::Entity::find().order_by_asc(plugin::Column::UploadedAtUs).into_partial_model::<PluginRow>().all(self.db()).await?)
    }

    pub async fn plugin_row(&self, id: &str) -> Result<Option<PluginRow>, StoreError> {
        Ok(plugin::Entity::find_by_id(id.to_string()).into_partial_model::<PluginRow>().one(self.db()).await?)
    }

    /// A stored plugin's component bytes.
    pub async fn plugin_wasm(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(plugin::Entity::find_by_id(id.to_string()).one(self.db()).await?.map(|row| row.wasm))
    }

    /// Stores an upload with its audit event, unless its id is taken.
    pub async fn insert_plugin(&self, row: plugin::Model, audit: NewAudit) -> Result<StoredUpload, StoreError> {
        let _gate = self.write_gate().await;
        let txn = self.db().begin().await?;
        if let Some(existing) = plugin::Entity::find_by_id(row.id.clone()).into_partial_model::<PluginRow>().one(&txn).await? {
            txn.rollback().await?;
            return Ok(if existing.sha256 == row.sha256 {
                StoredUpload::AlreadyStored(existing)
            } else {
                StoredUpload::Conflict { sha256: existing.sha256 }
            });
        }
        let at = row.uploaded_at_us;
        plugin::Entity::insert(row.into_active_model()).exec_without_returning(&txn).await?;
        insert_audit_rows(&txn, vec![audit]).await?;
        bump_generation(&txn, at).await?;
        txn.commit().await?;
        Ok(StoredUpload::Inserted)
    }

    /// Applies a change; false when there is no such plugin.
    pub async fn update_plugin(&self, id: &str, change: PluginChange, now_us: i64, audit: NewAudit) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let txn = self.db().begin().await?;
        let mut update = plugin::Entity::update_many().col_expr(plugin::Column::UpdatedAtUs, Expr::value(now_us)).filter(plugin::Column::Id.eq(id));
        if let Some(status) = change.status {
            update = update.col_expr(plugin::Column::Status, Expr::value(status));
        }
        if let Some(grant) = change.grant {
            update = update.col_expr(plugin::Column::Grant, Expr::value(grant));
        }
        if update.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        insert_audit_rows(&txn, vec![audit]).await?;
        bump_generation(&txn, now_us).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Deletes a plugin unless executors that still have to run use it; returns how many
    /// do (0: deleted), or None when there is no such plugin.
    pub async fn delete_plugin(&self, id: &str, now_us: i64, audit: NewAudit) -> Result<Option<u64>, StoreError> {
        let _gate = self.write_gate().await;
        let txn = self.db().begin().await?;
        if plugin::Entity::find_by_id(id.to_string()).into_partial_model::<PluginRow>().one(&txn).await?.is_none() {
            txn.rollback().await?;
            return Ok(None);
        }
        let users = executor::Entity::find()
            .filter(executor::Column::Status.is_in([status::PENDING, status::RUNNING]))
            .filter(
                executor::Column::PlanId.in_subquery(
                    sea_orm::sea_query::Query::select()
                        .column(plan::Column::Id)
                        .from(plan::Entity)
                        .cond_where(sea_orm::Condition::any().add(plan::Column::AttackPlugin.eq(id)).add(plan::Column::PlannerPlugin.eq(id)))
                        .to_owned(),
                ),
            )
            .count(&txn)
            .await?;
        if users > 0 {
            txn.rollback().await?;
            return Ok(Some(users));
        }
        plugin::Entity::delete_by_id(id.to_string()).exec(&txn).await?;
        insert_audit_rows(&txn, vec![audit]).await?;
        bump_generation(&txn, now_us).await?;
        txn.commit().await?;
        Ok(Some(0))
    }
}

/// A fresh opaque generation value, written by upsert (no read-modify-write race).
async fn bump_generation(db: &impl ConnectionTrait, now_us: i64) -> Result<(), StoreError> {
    let value = format!("{now_us}-{}", uuid::Uuid::new_v4().simple());
    let row = setting::ActiveModel { key: Set(GENERATION_KEY.into()), value: Set(value), updated_at_us: Set(now_us) };
    setting::Entity::insert(row)
        .on_conflict(OnConflict::column(setting::Column::Key).update_columns([setting::Column::Value, setting::Column::UpdatedAtUs]).to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}
