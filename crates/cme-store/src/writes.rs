//! A change as its statements: built once with sea-orm's query builders, executed either
//! in a sea-orm transaction or by the SQLite writer (see `writer`), so both paths store the
//! very same rows.

use sea_orm::{ConnectionTrait, EntityTrait, QueryTrait, Statement};

use cme_engine::{AuditEvent, Event, StorageError};

use crate::{Store, db_error};

/// The statements of one all-or-nothing change, in order, and whether they write outbox
/// rows (the senders are signalled after them).
#[derive(Debug, Default)]
pub(crate) struct Writes {
    statements: Vec<Statement>,
    outbox: bool,
}

impl Writes {
    pub(crate) fn push(&mut self, store: &Store, query: impl QueryTrait) {
        self.statements.push(query.build(store.backend()));
    }

    /// Audit rows, and the outbox rows of the operator actions among them.
    pub(crate) fn audit(&mut self, store: &Store, events: &[AuditEvent]) {
        if events.is_empty() {
            return;
        }
        self.push(store, crate::entity::audit_event::Entity::insert_many(events.iter().map(crate::convert::audit_row)));
        if !store.subscriptions.is_empty() {
            let announced: Vec<Event> = events.iter().filter_map(Event::of_action).collect();
            self.outbox(store, &announced);
        }
    }

    /// The outbox rows of `events` for every webhook that wants them.
    pub(crate) fn outbox(&mut self, store: &Store, events: &[Event]) {
        let rows = store.outbox_rows(events);
        for chunk in rows.chunks(500) {
            self.push(store, crate::entity::delivery::Entity::insert_many(chunk.to_vec()));
            self.outbox = true;
        }
    }

    /// In a sea-orm transaction (or on a connection); callers hold the write gate to their
    /// commit.
    pub(crate) async fn execute(&self, store: &Store, conn: &impl ConnectionTrait) -> Result<(), StorageError> {
        for statement in &self.statements {
            conn.execute_raw(statement.clone()).await.map_err(db_error)?;
        }
        if self.outbox {
            store.signal_outbox(conn).await?;
        }
        Ok(())
    }

    /// On the SQLite writer's connection (it signals the senders after its commit).
    pub(crate) fn execute_sqlite(&self, conn: &rusqlite::Connection) -> Result<(), StorageError> {
        for statement in &self.statements {
            crate::writer::execute(conn, statement).map_err(|e| StorageError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }
}
