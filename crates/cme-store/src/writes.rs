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
        match one_statement(&self.statements) {
            Some(statement) => {
                conn.execute_raw(statement).await.map_err(db_error)?;
            }
            None => {
                for statement in &self.statements {
                    conn.execute_raw(statement.clone()).await.map_err(db_error)?;
                }
            }
        }
        if self.outbox {
            store.signal_outbox(conn).await?;
        }
        Ok(())
    }

    /// This change as one PostgreSQL statement whose main query is `guard`, which may
    /// raise to store none of it (see `with_inserts`); None when the change is not plain
    /// inserts only.
    pub(crate) fn guarded_by(&self, guard: &Statement) -> Option<Statement> {
        if self.statements.is_empty() {
            return None;
        }
        with_inserts(&self.statements, guard)
    }

    /// Whether the change writes outbox rows (the senders must be told after its commit).
    pub(crate) fn writes_outbox(&self) -> bool {
        self.outbox
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
    (rows.starts_with('(') && rows.ends_with(')') && !rows.contains("RETURNING") && !rows.contains("ON CONFLICT"))
        .then_some((head, rows))
}

/// Appends `extra`'s rows to `target` (same head), renumbering its `$n` placeholders after
/// `target`'s; false (nothing changed) when the result would bind too many parameters.
fn fold(target: &mut Statement, extra: &Statement) -> bool {
    let (Some(target_values), Some(extra_values)) = (target.values.as_mut(), extra.values.as_ref()) else {
        return false;
    };
    if target_values.0.len() + extra_values.0.len() > MAX_PARAMETERS {
        return false;
    }
    let Some((_, rows)) = insert_parts(extra) else { return false };
    let Some(renumbered) = renumbered(rows, target_values.0.len()) else { return false };
    target.sql.push_str(", ");
    target.sql.push_str(&renumbered);
    target_values.0.extend(extra_values.0.iter().cloned());
    true
}

/// Plain PostgreSQL inserts into different tables as one statement: every insert but the
/// last becomes a data-modifying `WITH` clause, so a batch's rows cost one round trip
/// instead of one per table. None when there is only one statement, one is not a plain
/// insert, or the parameters would be too many (then they run one by one).
fn one_statement(statements: &[Statement]) -> Option<Statement> {
    let (last, first) = statements.split_last()?;
    insert_parts(last)?;
    if first.is_empty() {
        return None;
    }
    with_inserts(first, last)
}

/// `inserts` as data-modifying `WITH` clauses before `main`. PostgreSQL runs each of them
/// exactly once and to completion, whatever `main` reads, and all of them or none are
/// stored. None when one is not a plain insert, a table would be written twice (it would
/// meet its own statement triggers twice; `absorb` folds each table's rows into one
/// insert), or the parameters would be too many. The tables have no foreign keys between
/// them, so the order of the clauses does not matter.
fn with_inserts(inserts: &[Statement], main: &Statement) -> Option<Statement> {
    let table = |s: &Statement| insert_parts(s).and_then(|(head, _)| head.split(" (").next().map(str::to_string));
    let mut tables: Vec<String> = inserts.iter().map(table).collect::<Option<_>>()?;
    tables.extend(table(main));
    let written = tables.len();
    tables.sort_unstable();
    tables.dedup();
    if tables.len() != written {
        return None;
    }
    let parameters = |s: &Statement| s.values.as_ref().map_or(0, |v| v.0.len());
    let total: usize = inserts.iter().chain([main]).map(parameters).sum();
    if total > MAX_PARAMETERS {
        return None;
    }
    let mut sql = String::from("WITH ");
    let mut values = Vec::with_capacity(total);
    for (i, statement) in inserts.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("w{i} AS ("));
        sql.push_str(&renumbered(&statement.sql, values.len())?);
        sql.push(')');
        values.extend(statement.values.as_ref().map(|v| v.0.clone()).unwrap_or_default());
    }
    sql.push(' ');
    sql.push_str(&renumbered(&main.sql, values.len())?);
    values.extend(main.values.as_ref().map(|v| v.0.clone()).unwrap_or_default());
    Some(Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, values))
}

/// `sql` with each `$n` placeholder moved up by `offset`; None if a `$` is not followed by
/// a number (not a statement built with bound values only).
fn renumbered(sql: &str, offset: usize) -> Option<String> {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' {
            let mut number = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                number.push(*d);
                chars.next();
            }
            out.push_str(&(number.parse::<usize>().ok()? + offset).to_string());
        }
    }
    Some(out)
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
        let one = Writes {
            statements: vec![
                insert(r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2)"#, vec![1.into(), 2.into()]),
                insert(r#"INSERT INTO "b" ("z") VALUES ($1)"#, vec![3.into()]),
            ],
            outbox: false,
        };
        let two = Writes {
            statements: vec![
                insert(
                    r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2), ($3, $4)"#,
                    vec![4.into(), 5.into(), 6.into(), 7.into()],
                ),
                insert(r#"INSERT INTO "b" ("z") VALUES ($1)"#, vec![8.into()]),
            ],
            outbox: true,
        };
        let mut batch = Writes::default();
        batch.absorb(&one);
        batch.absorb(&two);
        assert!(batch.outbox);
        assert_eq!(batch.statements.len(), 2);
        assert_eq!(batch.statements[0].sql, r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2), ($3, $4), ($5, $6)"#);
        assert_eq!(
            batch.statements[0].values.as_ref().unwrap().0,
            vec![1.into(), 2.into(), 4.into(), 5.into(), 6.into(), 7.into()]
        );
        assert_eq!(batch.statements[1].sql, r#"INSERT INTO "b" ("z") VALUES ($1), ($2)"#);
        assert_eq!(batch.statements[1].values.as_ref().unwrap().0, vec![3.into(), 8.into()]);
    }

    #[test]
    fn inserts_into_different_tables_become_one_statement_with_renumbered_parameters() {
        let statements = vec![
            insert(
                r#"INSERT INTO "a" ("x", "y") VALUES ($1, $2), ($3, $4)"#,
                vec![1.into(), 2.into(), 3.into(), 4.into()],
            ),
            insert(r#"INSERT INTO "b" ("z") VALUES ($1)"#, vec![5.into()]),
            insert(r#"INSERT INTO "c" ("v") VALUES ($1), ($2)"#, vec![6.into(), 7.into()]),
        ];
        let one = super::one_statement(&statements).expect("plain inserts combine");
        assert_eq!(
            one.sql,
            r#"WITH w0 AS (INSERT INTO "a" ("x", "y") VALUES ($1, $2), ($3, $4)), w1 AS (INSERT INTO "b" ("z") VALUES ($5)) INSERT INTO "c" ("v") VALUES ($6), ($7)"#
        );
        assert_eq!(one.values.unwrap().0, (1..=7).map(sea_orm::Value::from).collect::<Vec<_>>());
        // One statement, or anything but plain inserts, runs as it is.
        assert!(super::one_statement(&statements[..1]).is_none());
        let with_update = vec![statements[0].clone(), insert(r#"UPDATE "a" SET "x" = $1"#, vec![1.into()])];
        assert!(super::one_statement(&with_update).is_none());
        let same_table_twice = vec![statements[1].clone(), statements[1].clone()];
        assert!(super::one_statement(&same_table_twice).is_none());
    }

    #[test]
    fn other_columns_and_other_statements_are_not_folded() {
        let one =
            Writes { statements: vec![insert(r#"INSERT INTO "a" ("x") VALUES ($1)"#, vec![1.into()])], outbox: false };
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
