//! Signals between replicas on PostgreSQL: storing the halt switch sends `NOTIFY cme_halt`
//! and writing outbox rows `NOTIFY cme_outbox`, each in its transaction (delivered at
//! commit); every store listens on one pooled connection and bumps a counter per
//! notification. A lost connection is re-established, and both counters bumped then (a
//! notification may have been missed). Waiting on the connection costs no CPU.
//!
//! On SQLite there is one process: outbox writes bump the counter themselves, while they
//! hold the write gate, so a sender woken by it claims (through the same gate) only
//! after their commit.

use std::time::Duration;

use sea_orm::sqlx::postgres::{PgListener, PgPool};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::watch;

use crate::{Store, db_error};

pub(crate) const HALT_CHANNEL: &str = "cme_halt";
pub(crate) const OUTBOX_CHANNEL: &str = "cme_outbox";

/// The counters, and whether this store listens yet.
#[derive(Debug)]
pub(crate) struct Signals {
    halt: watch::Sender<u64>,
    outbox: watch::Sender<u64>,
    listening: std::sync::Once,
}

impl Default for Signals {
    fn default() -> Self {
        Signals { halt: watch::channel(0).0, outbox: watch::channel(0).0, listening: std::sync::Once::new() }
    }
}

impl Signals {
    /// Outbox rows were committed (by the SQLite writer, still holding the write gate).
    pub(crate) fn bump_outbox(&self) {
        self.outbox.send_modify(|n| *n += 1);
    }
}

impl Store {
    pub(crate) fn halt_signal_receiver(&self) -> Option<watch::Receiver<u64>> {
        (self.backend() == DbBackend::Postgres).then(|| {
            self.listen();
            self.signals.halt.subscribe()
        })
    }

    pub(crate) fn outbox_signal_receiver(&self) -> watch::Receiver<u64> {
        self.listen();
        self.signals.outbox.subscribe()
    }

    /// Tells the senders that outbox rows were written by the transaction in progress
    /// (see the module's documentation for why this is not early).
    pub(crate) async fn signal_outbox(&self, txn: &impl ConnectionTrait) -> Result<(), cme_engine::StorageError> {
        if self.backend() == DbBackend::Postgres {
            txn.execute_raw(notify(OUTBOX_CHANNEL)).await.map_err(db_error)?;
        }
        self.signals.bump_outbox();
        Ok(())
    }

    fn listen(&self) {
        if self.backend() != DbBackend::Postgres {
            return;
        }
        self.signals.listening.call_once(|| {
            tokio::spawn(listen(
                self.db().get_postgres_connection_pool().clone(),
                self.signals.halt.clone(),
                self.signals.outbox.clone(),
            ));
        });
    }
}

/// `NOTIFY channel`, delivered to every listener when the transaction commits.
pub(crate) fn notify(channel: &str) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, "SELECT pg_notify($1, '')", [channel.into()])
}

async fn listen(pool: PgPool, halt: watch::Sender<u64>, outbox: watch::Sender<u64>) {
    let bump = |signal: &watch::Sender<u64>| signal.send_modify(|n| *n += 1);
    let mut first = true;
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen_all([HALT_CHANNEL, OUTBOX_CHANNEL]).await {
                Ok(()) => {
                    if !first {
                        bump(&halt);
                        bump(&outbox);
                    }
                    first = false;
                    loop {
                        match listener.recv().await {
                            Ok(notification) if notification.channel() == OUTBOX_CHANNEL => bump(&outbox),
                            Ok(_) => bump(&halt),
                            Err(e) => {
                                tracing::warn!(error = %e, "replica notifications interrupted; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for replica notifications; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect for replica notifications; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
