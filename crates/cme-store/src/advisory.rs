//! PostgreSQL advisory locks: how replicas take turns where a rule spans rows (a cap, a
//! budget, an order). Every key lives here, so that no two rules share one by accident;
//! each is eight ASCII bytes naming its rule. SQLite has one writer and needs none.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use cme_engine::StorageError;

use crate::{Store, db_error as db};

/// A rule whose check-then-write replicas take in turn.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AdvisoryLock {
    /// Migrations, one replica at a time ("cme_migr").
    Migration,
    /// Daily attack budgets ("cme_budg").
    Budgets,
    /// The cap on attacks running at once: claims and experiment step slots ("cme_runs").
    RunningCap,
    /// The cap on stored blackouts ("cme_blko").
    Blackouts,
    /// Webhook deliveries claimed in order per webhook ("cme_outb").
    Outbox,
    /// The caps on stored plans and executors ("cme_caps"); taken inside the
    /// `cme_locked_work_counts` and `cme_admit_work` functions (m0015).
    WorkCaps,
}

impl AdvisoryLock {
    pub(crate) const fn key(self) -> i64 {
        let name: &[u8; 8] = match self {
            AdvisoryLock::Migration => b"cme_migr",
            AdvisoryLock::Budgets => b"cme_budg",
            AdvisoryLock::RunningCap => b"cme_runs",
            AdvisoryLock::Blackouts => b"cme_blko",
            AdvisoryLock::Outbox => b"cme_outb",
            AdvisoryLock::WorkCaps => b"cme_caps",
        };
        i64::from_be_bytes(*name)
    }
}

impl Store {
    /// Takes `lock` until `txn` ends, on PostgreSQL; nothing to take on SQLite.
    pub(crate) async fn lock_until_commit(
        &self,
        txn: &DatabaseTransaction,
        lock: AdvisoryLock,
    ) -> Result<(), StorageError> {
        if self.backend() != DbBackend::Postgres {
            return Ok(());
        }
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [lock.key().into()],
        );
        txn.execute_raw(statement).await.map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::AdvisoryLock::*;

    #[test]
    fn every_lock_has_a_key_of_its_own_and_the_keys_stored_before_are_kept() {
        // The keys predate this module (m0015's functions are handed WorkCaps's): a
        // replica of the previous release must take the same lock for the same rule.
        let keys = [
            (Migration.key(), 0x636d_655f_6d69_6772),
            (Budgets.key(), 0x636d_655f_6275_6467),
            (RunningCap.key(), 0x636d_655f_7275_6e73),
            (Blackouts.key(), 0x636d_655f_626c_6b6f),
            (Outbox.key(), 0x636d_655f_6f75_7462),
            (WorkCaps.key(), 0x636d_655f_6361_7073),
        ];
        for (i, (key, before)) in keys.iter().enumerate() {
            assert_eq!(key, before);
            assert!(keys[..i].iter().all(|(other, _)| other != key));
        }
    }
}
