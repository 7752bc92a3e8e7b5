//! Halt notifications between replicas on PostgreSQL: storing the switch sends
//! `NOTIFY cme_halt` in its transaction (delivered at commit); every store listens on one
//! pooled connection and bumps a counter per notification. A lost connection is
//! re-established, and the counter bumped then too (a notification may have been missed).
//! Waiting on the connection costs no CPU.

use std::time::Duration;

use sea_orm::DbBackend;
use sea_orm::sqlx::postgres::{PgListener, PgPool};
use tokio::sync::watch;

use crate::Store;

pub(crate) const HALT_CHANNEL: &str = "cme_halt";

impl Store {
    pub(crate) fn halt_signal_receiver(&self) -> Option<watch::Receiver<u64>> {
        if self.backend() != DbBackend::Postgres {
            return None;
        }
        let sender = self.halt_signal.get_or_init(|| {
            let (sender, _) = watch::channel(0);
            tokio::spawn(listen(self.db().get_postgres_connection_pool().clone(), sender.clone()));
            sender
        });
        Some(sender.subscribe())
    }
}

async fn listen(pool: PgPool, signal: watch::Sender<u64>) {
    let mut first = true;
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(HALT_CHANNEL).await {
                Ok(()) => {
                    if !first {
                        signal.send_modify(|n| *n += 1);
                    }
                    first = false;
                    loop {
                        match listener.recv().await {
                            Ok(_) => signal.send_modify(|n| *n += 1),
                            Err(e) => {
                                tracing::warn!(error = %e, "halt notifications interrupted; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for halt notifications; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect for halt notifications; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
