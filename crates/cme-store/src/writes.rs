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

    /// Appends `other`'s statements, folding each PostgreSQL multi-row `INSERT` into the
    /// last one of the same table and columns: a batch of inserts then costs one round trip
    /// per table, not per insert and table. Statements of one change keep their order.
    pub(crate) fn absorb(&mut self, other: &Writes) {
        self.outbox |= other.outbox;
        for statement in &other.statements {
            let folded = insert_parts(statement).and_then(|(head, _)| {
                self.statements.iter_mut().rev().find(|s| insert_parts(s).is_some_and(|(h, _)| h == head))
            });
            let done = match folded {
                Some(target) => fold(target, statement),
                None => false,
            };
            if !done {
                self.statements.push(statement.clone());
            }
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
            crate::writer::execute(conn, statement)?;
        }
        Ok(())
    }
}

/// PostgreSQL's limit on bound parameters of one statement.
const MAX_PARAMETERS: usize = 65_535;

/// `INSERT INTO t (columns) VALUES ` and the row tuples of a plain PostgreSQL multi-row
/// insert (nothing after the tuples), else None.
fn insert_parts(statement: &Statement) -> Option<(&str, &str)> {
    if statement.db_backend != sea_orm::DbBackend::Postgres || !statement.sql.starts_with("INSERT INTO ") {
        return None;
    }
    let at = statement.sql.find(" VALUES ")? + " VALUES ".len();
    let (head, rows) = statement.sql.split_at(at);
    (rows.starts_with('(') && rows.ends_with(')') && !rows.contains("RETURNING") && !rows.contains("ON CONFLICT")).then_some((head, rows))
}

/// Appends `extra`'s rows to `target` (same head), renumbering its `$n` placeholders after
/// `target`'s; false (nothing changed) when the result would bind too many parameters.
fn fold(target: &mut Statement, extra: &Statement) -> bool {
    let (Some(target_values), Some(extra_values)) = (target.values.as_mut(), extra.values.as_ref()) else { return false };
    if target_values.0.len() + extra_values.0.len() > MAX_PARAMETERS {
        return false;
    }
    let Some((_, rows)) = insert_parts(extra) else { return false };
    let offset = target_values.0.len();
    let mut renumbered = String::with_capacity(rows.len() + 16);
    let mut chars = rows.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        renumbered.push(c);
        if c == '$' {
            let mut number = String::new();
            while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                number.push(*d);
                chars.next();
            }
            match number.parse::<usize>() {
                Ok(n) => renumbered.push_str(&(n + offset).to_string()),
                Err(_) => return false,
            }
        }
    }
    target.sql.push_str(", ");
    target.sql.push_str(&renumbered);
    target_values.0.extend(extra_values.0.iter().cloned());
    true
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, Statement};

    use super::Writes;

    fn insert(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    #[test]
    fn inserts_of_one_table_fold_into_one_statement_with_renumbered_parameters() {
        let one = Writes { statements: vec![insert(r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2)"#, vec![1.into(), 2.into()]), insert(r#"INSERT INTO "b" ("z") VALUES ($1)"#, vec![3.into()])], outbox: false };
        let two = Writes { statements: vec![insert(r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2), ($3, $4)"#, vec![4.into(), 5.into(), 6.into(), 7.into()]), insert(r#"INSERT INTO "b" ("z") VALUES ($1)"#, vec![8.into()])], outbox: true };
        let mut batch = Writes::default();
        batch.absorb(&one);
        batch.absorb(&two);
        assert!(batch.outbox);
        assert_eq!(batch.statements.len(), 2);
        assert_eq!(batch.statements[0].sql, r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2), ($3, $4), ($5, $6)"#);
        assert_eq!(batch.statements[0].values.as_ref().unwrap().0, vec![1.into(), 2.into(), 4.into(), 5.into(), 6.into(), 7.into()]);
        assert_eq!(batch.statements[1].sql, r#"INSERT INTO "b" ("z") VALUES ($1), ($2)"#);
        assert_eq!(batch.statements[1].values.as_ref().unwrap().0, vec![3.into(), 8.into()]);
    }

    #[test]
    fn other_columns_and_other_statements_are_not_folded() {
        let one = Writes { statements: vec![insert(r#"INSERT INTO "a" ("x") VALUES ($1)"#, vec![1.into()])], outbox: false };
        let two = Writes {
            statements: vec![
                insert(r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2)"#, vec![1.into(), 2.into()]),
                insert(r#"UPDATE "a" SET "x" = $1"#, vec![1.into()]),
                insert(r#"INSERT INTO "a" ("x") VALUES ($1) RETURNING "x""#, vec![1.into()]),
            ],
            outbox: false,
        };
        let mut batch = Writes::default();
        batch.absorb(&one);
        batch.absorb(&two);
        assert_eq!(batch.statements.len(), 4);
        assert_eq!(batch.statements[0].sql, r#"INSERT INTO "a" ("x") VALUES ($1)"#);
    }
}
