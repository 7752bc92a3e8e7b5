//! Inventories and undos: what the SSH capability reads and records besides keys. An
//! inventory is stored whole (its hosts as one JSON document): it is read and replaced
//! whole. Undo updates are conditioned on the undo still being pending, so that two
//! replicas running the same undo record it once.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait};

use cme_engine::{Actor, AuditEvent, Inventory, InventoryHost, StorageError, Undo, UndoState};

use crate::convert::{at, us};
use crate::entity::{inventory, undo};
use crate::{Store, db_error as db};

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{what}: {error}"))
}

fn inventory_of(m: inventory::Model) -> Result<Inventory, StorageError> {
    let hosts: Vec<InventoryHost> =
        serde_json::from_str(&m.hosts).map_err(|e| corrupt(&format!("inventory {} hosts", m.name), e))?;
    Ok(Inventory { name: m.name, hosts, updated: at(m.updated_at_us), updated_by: m.updated_by })
}

fn undo_of(m: undo::Model) -> Result<Undo, StorageError> {
    let plan_created_by = match &m.plan_created_by {
        Some(json) => {
            let (name, role): (String, String) =
                serde_json::from_str(json).map_err(|e| corrupt(&format!("undo {} plan_created_by", m.id), e))?;
            Some(Actor::new(name, role))
        }
        None => None,
    };
    let revert = match &m.revert {
        Some(json) => serde_json::from_str(json).map_err(|e| corrupt(&format!("undo {} revert", m.id), e))?,
        None => cme_model::undo::Revert::Ssh,
    };
    Ok(Undo {
        state: UndoState::parse(&m.state).ok_or_else(|| corrupt(&format!("undo {} state", m.id), &m.state))?,
        port: u16::try_from(m.port).map_err(|e| corrupt(&format!("undo {} port", m.id), e))?,
        attempts: u32::try_from(m.attempts).unwrap_or(0),
        id: m.id,
        run_id: m.run_id,
        plan_id: m.plan_id,
        step: m.step,
        plugin: m.plugin,
        address: m.address,
        user: m.user,
        credential: m.credential,
        command: m.command,
        revert,
        plan_created_by,
        armed: at(m.armed_at_us),
        due: at(m.due_at_us),
        outcome: m.outcome,
        finished: m.finished_at_us.map(at),
    })
}

fn undo_model(u: &Undo) -> undo::Model {
    undo::Model {
        id: u.id.clone(),
        run_id: u.run_id.clone(),
        plan_id: u.plan_id.clone(),
        step: u.step.clone(),
        plugin: u.plugin.clone(),
        address: u.address.clone(),
        port: i32::from(u.port),
        user: u.user.clone(),
        credential: u.credential.clone(),
        command: u.command.clone(),
        revert: match &u.revert {
            cme_model::undo::Revert::Ssh => None,
            other => serde_json::to_string(other).ok(),
        },
        plan_created_by: u.plan_created_by.as_ref().map(|a| serde_json::json!([a.name, a.role]).to_string()),
        armed_at_us: us(u.armed),
        due_at_us: us(u.due),
        state: u.state.as_str().to_string(),
        attempts: i32::try_from(u.attempts).unwrap_or(i32::MAX),
        outcome: u.outcome.clone(),
        finished_at_us: u.finished.map(us),
    }
}

impl Store {
    pub(crate) async fn all_inventories(&self) -> Result<Vec<Inventory>, StorageError> {
        let rows = inventory::Entity::find().order_by_asc(inventory::Column::Name).all(self.db()).await.map_err(db)?;
        rows.into_iter().map(inventory_of).collect()
    }

    pub(crate) async fn one_inventory(&self, name: &str) -> Result<Option<Inventory>, StorageError> {
        inventory::Entity::find_by_id(name.to_string()).one(self.db()).await.map_err(db)?.map(inventory_of).transpose()
    }

    pub(crate) async fn store_inventories(
        &self,
        inventories: &[Inventory],
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        for inventory in inventories {
            let hosts = serde_json::to_string(&inventory.hosts).map_err(|e| corrupt("inventory hosts", e))?;
            let row = inventory::Model {
                name: inventory.name.clone(),
                hosts,
                updated_at_us: us(inventory.updated),
                updated_by: inventory.updated_by.clone(),
            };
            inventory::Entity::insert(row.into_active_model())
                .on_conflict(
                    OnConflict::column(inventory::Column::Name)
                        .update_columns([
                            inventory::Column::Hosts,
                            inventory::Column::UpdatedAtUs,
                            inventory::Column::UpdatedBy,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(db)?;
        }
        self.insert_audit_rows(&txn, std::slice::from_ref(audit)).await?;
        txn.commit().await.map_err(db)
    }

    pub(crate) async fn store_undo(&self, undo: &Undo) -> Result<(), StorageError> {
        let _gate = self.write_gate().await?;
        undo::Entity::insert(undo_model(undo).into_active_model())
            .exec_without_returning(self.db())
            .await
            .map_err(db)?;
        Ok(())
    }

    pub(crate) async fn list_undos(&self, pending: bool, limit: u64) -> Result<Vec<Undo>, StorageError> {
        let query = if pending {
            undo::Entity::find()
                .filter(undo::Column::State.eq(UndoState::Pending.as_str()))
                .order_by_asc(undo::Column::DueAtUs)
        } else {
            undo::Entity::find().order_by_desc(undo::Column::ArmedAtUs)
        };
        let rows = query.order_by_asc(undo::Column::Id).limit(limit).all(self.db()).await.map_err(db)?;
        rows.into_iter().map(undo_of).collect()
    }

    pub(crate) async fn run_undos(&self, run_id: &str) -> Result<Vec<Undo>, StorageError> {
        let rows = undo::Entity::find()
            .filter(undo::Column::RunId.eq(run_id))
            .order_by_asc(undo::Column::ArmedAtUs)
            .order_by_asc(undo::Column::Id)
            .limit(10_000)
            .all(self.db())
            .await
            .map_err(db)?;
        rows.into_iter().map(undo_of).collect()
    }

    pub(crate) async fn one_undo(&self, id: &str) -> Result<Option<Undo>, StorageError> {
        undo::Entity::find_by_id(id.to_string()).one(self.db()).await.map_err(db)?.map(undo_of).transpose()
    }

    pub(crate) async fn record_undo(&self, undo: &Undo, audit: &AuditEvent) -> Result<bool, StorageError> {
        let _gate = self.write_gate().await?;
        let txn = self.db().begin().await.map_err(db)?;
        let row = undo_model(undo);
        let changed = undo::Entity::update_many()
            .set(undo::ActiveModel {
                state: Set(row.state),
                attempts: Set(row.attempts),
                due_at_us: Set(row.due_at_us),
                outcome: Set(row.outcome),
                finished_at_us: Set(row.finished_at_us),
                ..Default::default()
            })
            .filter(undo::Column::Id.eq(undo.id.as_str()))
            .filter(undo::Column::State.eq(UndoState::Pending.as_str()))
            .exec(&txn)
            .await
            .map_err(db)?;
        self.audit_if_changed(txn, changed.rows_affected, audit).await
    }
}
