//! Where page N of an executor list starts, without skipping N × size rows.
//!
//! The original engine's clients page by number (`?page=5000&size=100`). SQLite (like any
//! B-tree without order statistics) finds the 500,000th row of an index only by stepping
//! over the 499,999 before it, so a page half-way down a million executors cost tens of
//! milliseconds. A rank index keeps, for one list (its filter) and one version of the data,
//! the key (due time, id) of every [`EVERY`]th row. Page N then seeks to the nearest key
//! before it (an index range, like the `after` cursor) and skips fewer than [`EVERY`] rows.
//!
//! The index is exact: it is kept under the data version it was built at
//! (`Readers::data_version`) and used only while that version stands. Building one reads
//! the list's keys once (about 200 ms a million rows, on a reader thread), one build at a
//! time: requests arriving meanwhile use it. A stale index is built again at once rather
//! than the rows skipped: skipping half-way down costs about as much as a build, and every
//! request after it at the same version is then cheap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use cme_model::Locked;
use rusqlite::Connection;

use cme_engine::StorageError;

/// Rows between two kept keys: a page skips fewer than this many.
pub(crate) const EVERY: u64 = 500;

/// Lists whose index is kept at once (the least recently used goes first).
const KEPT: usize = 8;

/// Which list: the executors of one plan or of all, with one of some statuses or any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ListKey {
    pub plan_id: Option<String>,
    /// Sorted and without repeats; None for every status.
    pub statuses: Option<Vec<&'static str>>,
}

/// A row's place in the list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowKey {
    pub due_at_us: i64,
    pub id: String,
}

#[derive(Debug)]
struct RankIndex {
    version: u64,
    last_used: Instant,
    /// `anchors[j]` is the key of the row ranked `(j + 1) × EVERY − 1` (0-based): the rows
    /// after it start at rank `(j + 1) × EVERY`.
    anchors: Vec<RowKey>,
}

/// Where a page starts: after `after` (None: at the top), skipping `skip` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub after: Option<RowKey>,
    pub skip: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Ranks {
    indexes: Mutex<HashMap<ListKey, RankIndex>>,
    /// Held while an index is built, so that requests arriving together build it once.
    building: Mutex<()>,
}

impl Ranks {
    /// Where the row at `offset` of `list` starts, at data `version`, on `conn`: from a
    /// kept index, or one built now.
    pub(crate) fn start(
        &self,
        conn: &Connection,
        list: &ListKey,
        version: u64,
        offset: u64,
    ) -> Result<Start, StorageError> {
        if offset < EVERY {
            return Ok(Start { after: None, skip: offset });
        }
        if let Some(start) = self.kept_start(list, version, offset) {
            return Ok(start);
        }
        let _building = self.building.locked();
        // Built by the request this one waited for?
        if let Some(start) = self.kept_start(list, version, offset) {
            return Ok(start);
        }
        let anchors = anchors_of(conn, list)?;
        let start = start_in(&anchors, offset);
        let mut indexes = self.indexes.locked();
        if indexes.len() >= KEPT && !indexes.contains_key(list) {
            let oldest = indexes.iter().min_by_key(|(_, index)| index.last_used).map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                indexes.remove(&oldest);
            }
        }
        let now = Instant::now();
        indexes.insert(list.clone(), RankIndex { version, last_used: now, anchors });
        Ok(start)
    }

    fn kept_start(&self, list: &ListKey, version: u64, offset: u64) -> Option<Start> {
        let mut indexes = self.indexes.locked();
        let index = indexes.get_mut(list).filter(|index| index.version == version)?;
        index.last_used = Instant::now();
        Some(start_in(&index.anchors, offset))
    }
}

/// The start of the row at `offset`, from `anchors`.
fn start_in(anchors: &[RowKey], offset: u64) -> Start {
    let j = offset / EVERY;
    if j == 0 {
        return Start { after: None, skip: offset };
    }
    match anchors.get((j - 1) as usize) {
        Some(anchor) => Start { after: Some(anchor.clone()), skip: offset - j * EVERY },
        // Past the end of the list: after its last kept key, the rows left are fewer than
        // the skip, so the page is empty, as it must be.
        None => match anchors.last() {
            Some(last) => Start { after: Some(last.clone()), skip: offset - anchors.len() as u64 * EVERY },
            None => Start { after: None, skip: offset },
        },
    }
}

/// Every `EVERY`th key of `list`, in list order (due time, then id). A status filter reads
/// each status's range of the status index in order and merges them; the keys of rows
/// not kept are never copied out of SQLite.
fn anchors_of(conn: &Connection, list: &ListKey) -> Result<Vec<RowKey>, StorageError> {
    let read = |e: rusqlite::Error| StorageError::Unavailable(format!("reading executor ranks: {e}"));
    let plan = list.plan_id.as_deref();
    let plan_condition = if plan.is_some() { " AND plan_id = ?2" } else { "" };
    let mut anchors = Vec::new();
    let mut rank: u64 = 0;
    let mut keep = |due: i64, id: &str| {
        rank += 1;
        if rank.is_multiple_of(EVERY) {
            anchors.push(RowKey { due_at_us: due, id: id.to_string() });
        }
    };
    match &list.statuses {
        None => {
            let sql = match plan {
                Some(_) => "SELECT due_at_us, id FROM executors WHERE plan_id = ?1 ORDER BY due_at_us, id",
                None => "SELECT due_at_us, id FROM executors ORDER BY due_at_us, id",
            };
            let mut statement = conn.prepare(sql).map_err(read)?;
            let mut rows = match plan {
                Some(plan) => statement.query([plan]),
                None => statement.query([]),
            }
            .map_err(read)?;
            while let Some(row) = rows.next().map_err(read)? {
                keep(row.get(0).map_err(read)?, row.get_ref(1).and_then(|v| Ok(v.as_str()?)).map_err(read)?);
            }
        }
        Some(statuses) => {
            let sql =
                format!("SELECT due_at_us, id FROM executors WHERE status = ?1{plan_condition} ORDER BY due_at_us, id");
            let mut statements =
                statuses.iter().map(|_| conn.prepare(&sql)).collect::<Result<Vec<_>, _>>().map_err(read)?;
            let mut streams = Vec::with_capacity(statements.len());
            for (statement, status) in statements.iter_mut().zip(statuses) {
                let rows = match plan {
                    Some(plan) => statement.query([*status, plan]),
                    None => statement.query([*status]),
                }
                .map_err(read)?;
                streams.push(rows);
            }
            // The head of each status's stream, merged by key.
            let mut heads: Vec<Option<(i64, String)>> = Vec::with_capacity(streams.len());
            for rows in &mut streams {
                heads.push(next_key(rows).map_err(read)?);
            }
            loop {
                let smallest = heads
                    .iter()
                    .enumerate()
                    .filter_map(|(i, head)| head.as_ref().map(|key| (i, key)))
                    .min_by(|(_, a), (_, b)| a.cmp(b))
                    .map(|(i, _)| i);
                let Some(i) = smallest else { break };
                let (due, id) = heads[i].take().expect("the smallest head is present");
                keep(due, &id);
                heads[i] = next_key(&mut streams[i]).map_err(read)?;
            }
        }
    }
    Ok(anchors)
}

fn next_key(rows: &mut rusqlite::Rows<'_>) -> rusqlite::Result<Option<(i64, String)>> {
    match rows.next()? {
        Some(row) => Ok(Some((row.get(0)?, row.get(1)?))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> RowKey {
        RowKey { due_at_us: n as i64, id: format!("{n:04}") }
    }

    /// Anchors as `anchors_of` keeps them for rows ranked 0.. with keys equal to their rank.
    fn anchors(rows: u64) -> Vec<RowKey> {
        (1..=rows / EVERY).map(|j| key(j * EVERY - 1)).collect()
    }

    #[test]
    fn a_page_near_the_top_skips_rows_from_the_top() {
        assert_eq!(start_in(&anchors(10_000), 120), Start { after: None, skip: 120 });
    }

    #[test]
    fn a_deep_page_starts_after_the_nearest_kept_key() {
        // Row 2,730 is the 230th after row 2,499.
        let start = start_in(&anchors(10_000), 2_730);
        assert_eq!(start, Start { after: Some(key(2_499)), skip: 230 });
        assert_eq!(start_in(&anchors(10_000), 3_000), Start { after: Some(key(2_999)), skip: 0 });
    }

    #[test]
    fn a_page_past_the_end_skips_past_the_last_row() {
        // 1,200 rows: anchors at 499 and 999; offset 5,000 is 4,000 past the row 999,
        // and only 200 rows follow it.
        let start = start_in(&anchors(1_200), 5_000);
        assert_eq!(start, Start { after: Some(key(999)), skip: 4_000 });
    }

    fn database(rows: &[(i64, &str, &str, &str)]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE executors (id TEXT PRIMARY KEY, plan_id TEXT, due_at_us INTEGER, status TEXT);
             CREATE INDEX by_due ON executors (due_at_us, id);
             CREATE INDEX by_status ON executors (status, due_at_us, id);",
        )
        .unwrap();
        for (due, id, plan, status) in rows {
            conn.execute("INSERT INTO executors VALUES (?1, ?2, ?3, ?4)", rusqlite::params![id, plan, due, status])
                .unwrap();
        }
        conn
    }

    #[test]
    fn anchors_follow_the_list_order_across_statuses_and_plans() {
        // 2,000 rows, statuses and plans interleaved, due times repeating (ties by id).
        let rows: Vec<(i64, String, &str, &str)> = (0..2_000)
            .map(|i: i64| {
                let status = ["pending", "succeeded", "running", "failed"][(i % 4) as usize];
                (i / 3, format!("{:05}", 7_000 - i), if i % 2 == 0 { "a" } else { "b" }, status)
            })
            .collect();
        let conn = database(&rows.iter().map(|(d, id, p, s)| (*d, id.as_str(), *p, *s)).collect::<Vec<_>>());
        let lists = [
            ListKey { plan_id: None, statuses: None },
            ListKey { plan_id: Some("a".into()), statuses: None },
            ListKey { plan_id: None, statuses: Some(vec!["pending", "running"]) },
            ListKey { plan_id: Some("b".into()), statuses: Some(vec!["failed", "succeeded"]) },
        ];
        for list in lists {
            let mut expected: Vec<RowKey> = rows
                .iter()
                .filter(|(_, _, plan, status)| {
                    list.plan_id.as_deref().is_none_or(|p| p == *plan)
                        && list.statuses.as_ref().is_none_or(|s| s.contains(status))
                })
                .map(|(due, id, _, _)| RowKey { due_at_us: *due, id: id.clone() })
                .collect();
            expected.sort_by(|a, b| (a.due_at_us, &a.id).cmp(&(b.due_at_us, &b.id)));
            let every: Vec<RowKey> =
                expected.iter().skip(EVERY as usize - 1).step_by(EVERY as usize).cloned().collect();
            assert_eq!(anchors_of(&conn, &list).unwrap(), every, "{list:?}");
        }
    }

    #[test]
    fn an_index_is_kept_per_version_and_built_again_for_a_new_one() {
        let rows: Vec<(i64, String)> = (0..1_500).map(|i| (i, format!("{i:05}"))).collect();
        let conn = database(&rows.iter().map(|(d, id)| (*d, id.as_str(), "a", "pending")).collect::<Vec<_>>());
        let ranks = Ranks::default();
        let list = ListKey { plan_id: None, statuses: None };
        let seek = Start { after: Some(RowKey { due_at_us: 999, id: "00999".into() }), skip: 100 };
        assert_eq!(ranks.start(&conn, &list, 1, 1_100).unwrap(), seek);
        // A row before all others: a new version, and the index is built for it.
        conn.execute("INSERT INTO executors VALUES ('a', 'a', -1, 'pending')", []).unwrap();
        let shifted = Start { after: Some(RowKey { due_at_us: 998, id: "00998".into() }), skip: 100 };
        assert_eq!(ranks.start(&conn, &list, 2, 1_100).unwrap(), shifted);
        // Asked at the version it was built for, a kept index answers without reading.
        conn.execute("DELETE FROM executors", []).unwrap();
        assert_eq!(ranks.start(&conn, &list, 2, 1_100).unwrap(), shifted);
    }
}
