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
//! (`Readers::data_version`) and used only while that version stands. It is built only as
//! deep as a page asks (and [`AHEAD`] keys further), one build at a time, and extended
//! from its last key when a deeper page is asked: the first page half-way down a million
//! rows waits for half the list's keys, not all of them. SQLite steps over the rows
//! between two kept keys itself (`LIMIT 1 OFFSET 499` after the last key), so a key
//! costs one query, not 500 rows copied out; a list of several statuses merges the
//! statuses' ranges, hopping through one status while it runs alone (see `Arms`). A stale
//! index is built again rather than the rows skipped: skipping half-way down costs about
//! as much as a build, and every request after it at the same version is then cheap.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use cme_model::Locked;
use rusqlite::Connection;

use cme_engine::StorageError;

/// Rows between two kept keys: a page skips fewer than this many.
pub(crate) const EVERY: u64 = 500;

/// Keys built past the deepest one a page needs (64 keys, 32,000 rows: a few
/// milliseconds), so that a client paging down one page at a time extends the index once
/// every few hundred pages.
const AHEAD: usize = 64;

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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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
    /// Whether `anchors` reaches the end of the list (else it is extended when a deeper
    /// page is asked).
    complete: bool,
}

impl RankIndex {
    /// Whether the index knows where the row at `offset` starts.
    fn covers(&self, offset: u64) -> bool {
        self.complete || offset / EVERY <= self.anchors.len() as u64
    }
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
    /// Held while an index is built or extended, so that requests arriving together
    /// build it once.
    building: Mutex<()>,
}

impl Ranks {
    /// Where the row at `offset` of `list` starts, at data `version`, on `conn`: from a
    /// kept index, or one built (or extended) now.
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
        // Extended from the keys kept at this version, if any.
        let mut anchors = {
            let indexes = self.indexes.locked();
            match indexes.get(list) {
                Some(index) if index.version == version => index.anchors.clone(),
                _ => Vec::new(),
            }
        };
        let building = Instant::now();
        let kept = anchors.len();
        let wanted = (offset / EVERY) as usize + AHEAD;
        let complete = extend_anchors(conn, list, &mut anchors, wanted)?;
        tracing::debug!(
            ?list,
            version,
            kept,
            built = anchors.len() - kept,
            complete,
            took_ms = building.elapsed().as_secs_f64() * 1000.0,
            "built a rank index"
        );
        let start = start_in(&anchors, offset);
        let mut indexes = self.indexes.locked();
        if indexes.len() >= KEPT && !indexes.contains_key(list) {
            let oldest = indexes.iter().min_by_key(|(_, index)| index.last_used).map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                indexes.remove(&oldest);
            }
        }
        indexes.insert(list.clone(), RankIndex { version, last_used: Instant::now(), anchors, complete });
        Ok(start)
    }

    fn kept_start(&self, list: &ListKey, version: u64, offset: u64) -> Option<Start> {
        let mut indexes = self.indexes.locked();
        let index = indexes.get_mut(list).filter(|index| index.version == version && index.covers(offset))?;
        index.last_used = Instant::now();
        Some(start_in(&index.anchors, offset))
    }
}

/// The start of the row at `offset`, from `anchors` (which reach it, or the list's end).
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

fn read_error(e: rusqlite::Error) -> StorageError {
    StorageError::Unavailable(format!("reading executor ranks: {e}"))
}

/// Adds to `anchors` (every `EVERY`th key of `list`, in list order: due time, then id)
/// until it holds `wanted` keys; true when the list ended first.
fn extend_anchors(
    conn: &Connection,
    list: &ListKey,
    anchors: &mut Vec<RowKey>,
    wanted: usize,
) -> Result<bool, StorageError> {
    let mut arms = Arms::of(list, anchors.last().cloned());
    while anchors.len() < wanted {
        match arms.next_anchor(conn)? {
            Some(anchor) => anchors.push(anchor),
            None => return Ok(true),
        }
    }
    Ok(false)
}

/// One index range of a list: the executors of one status (or of any), of one plan (or
/// of all), in list order.
#[derive(Debug)]
struct Arm {
    /// The range's condition (`status = ?1 AND plan_id = ?2`, or none), its values bound
    /// from `?1`.
    condition: String,
    values: Vec<String>,
    /// The last key of this range taken into the list's order (None: none yet, the range
    /// starts at the list's top).
    taken: Option<RowKey>,
    /// Keys of this range after `taken`, read ahead.
    ahead: std::collections::VecDeque<RowKey>,
    /// Whether rows may follow `ahead`.
    more: bool,
}

impl Arm {
    fn new(status: Option<&str>, plan: Option<&str>, after: Option<RowKey>) -> Arm {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        for (column, value) in [("status", status), ("plan_id", plan)] {
            if let Some(value) = value {
                values.push(value.to_string());
                conditions.push(format!("{column} = ?{}", values.len()));
            }
        }
        Arm { condition: conditions.join(" AND "), values, taken: after, ahead: Default::default(), more: true }
    }

    /// `SELECT due_at_us, id` of this range after `after`, in order, then `tail`.
    fn query(&self, after: Option<&RowKey>, tail: &str) -> (String, Vec<rusqlite::types::Value>) {
        let mut values: Vec<rusqlite::types::Value> = self.values.iter().map(|v| v.clone().into()).collect();
        let mut conditions: Vec<String> = Vec::new();
        if !self.condition.is_empty() {
            conditions.push(self.condition.clone());
        }
        if let Some(after) = after {
            values.push(after.due_at_us.into());
            values.push(after.id.clone().into());
            conditions.push(format!("(due_at_us, id) > (?{}, ?{})", values.len() - 1, values.len()));
        }
        let condition =
            if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        (format!("SELECT due_at_us, id FROM executors{condition} ORDER BY due_at_us, id {tail}"), values)
    }

    /// The `n`th key of this range after `taken` (1-based), found by SQLite stepping over
    /// the ones before it; None when fewer follow.
    fn hop(&self, conn: &Connection, n: u64) -> Result<Option<RowKey>, StorageError> {
        let (sql, mut values) = self.query(self.taken.as_ref(), "");
        values.push(i64::try_from(n.saturating_sub(1)).unwrap_or(i64::MAX).into());
        let sql = format!("{sql}LIMIT 1 OFFSET ?{}", values.len());
        let mut statement = conn.prepare_cached(&sql).map_err(read_error)?;
        let mut rows = statement.query(rusqlite::params_from_iter(values)).map_err(read_error)?;
        match rows.next().map_err(read_error)? {
            Some(row) => {
                Ok(Some(RowKey { due_at_us: row.get(0).map_err(read_error)?, id: row.get(1).map_err(read_error)? }))
            }
            None => Ok(None),
        }
    }

    /// The next key of this range, read ahead `chunk` keys at a time.
    fn head(&mut self, conn: &Connection, chunk: u64) -> Result<Option<&RowKey>, StorageError> {
        if self.ahead.is_empty() && self.more {
            let after = self.taken.clone();
            let (sql, mut values) = self.query(after.as_ref(), "");
            values.push(i64::try_from(chunk).unwrap_or(i64::MAX).into());
            let sql = format!("{sql}LIMIT ?{}", values.len());
            let mut statement = conn.prepare_cached(&sql).map_err(read_error)?;
            let mut rows = statement.query(rusqlite::params_from_iter(values)).map_err(read_error)?;
            while let Some(row) = rows.next().map_err(read_error)? {
                self.ahead.push_back(RowKey {
                    due_at_us: row.get(0).map_err(read_error)?,
                    id: row.get(1).map_err(read_error)?,
                });
            }
            self.more = self.ahead.len() as u64 == chunk;
        }
        Ok(self.ahead.front())
    }

    /// Takes the head into the list's order.
    fn take(&mut self) -> Option<RowKey> {
        let key = self.ahead.pop_front()?;
        self.taken = Some(key.clone());
        Some(key)
    }

    /// Takes every key up to `key` (this range's, found by `hop`).
    fn take_through(&mut self, key: RowKey) {
        self.ahead.clear();
        self.more = true;
        self.taken = Some(key);
    }
}

/// Spans (of `EVERY` rows) after which a failed hop is tried again.
const HOP_BACKOFF: u32 = 8;

/// Keys read ahead per query while ranges interleave.
const CHUNK: u64 = 256;

/// A list's ranges, merged in list order: one range for a list of any status, one per
/// status otherwise. While one range runs alone up to the next kept key (its `EVERY`th
/// row from here comes before every other range's next row), SQLite hops to that key;
/// else the heads are merged row by row, read ahead a chunk at a time.
struct Arms {
    arms: Vec<Arm>,
    /// Rows taken since the last kept key.
    since_anchor: u64,
    /// Spans left before a hop is tried again.
    backoff: u32,
}

impl Arms {
    fn of(list: &ListKey, after: Option<RowKey>) -> Arms {
        let plan = list.plan_id.as_deref();
        let arms = match &list.statuses {
            None => vec![Arm::new(None, plan, after)],
            Some(statuses) => statuses.iter().map(|status| Arm::new(Some(status), plan, after.clone())).collect(),
        };
        Arms { arms, since_anchor: 0, backoff: 0 }
    }

    /// The list's next kept key: the `EVERY`th row after the last one; None when fewer
    /// rows follow.
    fn next_anchor(&mut self, conn: &Connection) -> Result<Option<RowKey>, StorageError> {
        loop {
            let chunk = if self.backoff == 0 { 1 } else { CHUNK };
            // The range with the smallest head, and the smallest head of the others.
            let mut first: Option<(usize, RowKey)> = None;
            let mut second: Option<RowKey> = None;
            for (i, arm) in self.arms.iter_mut().enumerate() {
                let Some(head) = arm.head(conn, chunk)? else { continue };
                match &first {
                    Some((_, smallest)) if head >= smallest => {
                        if second.as_ref().is_none_or(|s| head < s) {
                            second = Some(head.clone());
                        }
                    }
                    _ => {
                        if let Some((_, previous)) = first.take() {
                            second = Some(second.map_or(previous.clone(), |s| s.min(previous)));
                        }
                        first = Some((i, head.clone()));
                    }
                }
            }
            let Some((i, _)) = first else { return Ok(None) };
            let needed = EVERY - self.since_anchor;
            if self.backoff == 0 && needed > 1 {
                match self.arms[i].hop(conn, needed)? {
                    Some(key) if second.as_ref().is_none_or(|s| key < *s) => {
                        self.arms[i].take_through(key.clone());
                        self.since_anchor = 0;
                        return Ok(Some(key));
                    }
                    // This range ends before the key: so does the list, unless others follow.
                    None if second.is_none() => return Ok(None),
                    _ => self.backoff = HOP_BACKOFF,
                }
            }
            let key = self.arms[i].take().expect("the smallest head was read");
            self.since_anchor += 1;
            if self.since_anchor == EVERY {
                self.since_anchor = 0;
                self.backoff = self.backoff.saturating_sub(1);
                return Ok(Some(key));
            }
        }
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

    /// Every kept key of `list`, to its end.
    fn anchors_of(conn: &Connection, list: &ListKey) -> Vec<RowKey> {
        let mut anchors = Vec::new();
        assert!(extend_anchors(conn, list, &mut anchors, usize::MAX).unwrap());
        anchors
    }

    /// Every `EVERY`th key of `rows` in `list`, as a full read would keep them.
    fn expected_anchors(rows: &[(i64, String, &str, &str)], list: &ListKey) -> Vec<RowKey> {
        let mut keys: Vec<RowKey> = rows
            .iter()
            .filter(|(_, _, plan, status)| {
                list.plan_id.as_deref().is_none_or(|p| p == *plan)
                    && list.statuses.as_ref().is_none_or(|s| s.contains(status))
            })
            .map(|(due, id, _, _)| RowKey { due_at_us: *due, id: id.clone() })
            .collect();
        keys.sort();
        keys.iter().skip(EVERY as usize - 1).step_by(EVERY as usize).cloned().collect()
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
            assert_eq!(anchors_of(&conn, &list), expected_anchors(&rows, &list), "{list:?}");
        }
    }

    #[test]
    fn anchors_hop_through_a_status_running_alone_and_merge_where_statuses_meet() {
        // 20,000 rows: mostly succeeded; a failed one every 1,700th row; a stretch where
        // missed and succeeded alternate; a skipped cluster at the end; two plans.
        let rows: Vec<(i64, String, &str, &str)> = (0..20_000)
            .map(|i: i64| {
                let status = match i {
                    _ if i % 1_700 == 3 => "failed",
                    6_000..8_000 if i % 2 == 0 => "missed",
                    19_500.. => "skipped",
                    _ => "succeeded",
                };
                (i / 2, format!("{i:06}"), if i % 5 == 0 { "a" } else { "b" }, status)
            })
            .collect();
        let conn = database(&rows.iter().map(|(d, id, p, s)| (*d, id.as_str(), *p, *s)).collect::<Vec<_>>());
        let finished = vec!["failed", "missed", "skipped", "succeeded"];
        let lists = [
            ListKey { plan_id: None, statuses: Some(finished.clone()) },
            ListKey { plan_id: None, statuses: Some(vec!["missed", "succeeded"]) },
            ListKey { plan_id: None, statuses: Some(vec!["failed"]) },
            ListKey { plan_id: Some("b".into()), statuses: Some(finished) },
            ListKey { plan_id: Some("a".into()), statuses: None },
            ListKey { plan_id: None, statuses: None },
        ];
        for list in lists {
            let expected = expected_anchors(&rows, &list);
            assert_eq!(anchors_of(&conn, &list), expected, "{list:?}");
            // Built in pieces, from the last key kept, it is the same.
            let mut pieces = Vec::new();
            for wanted in [1, 2, 7, 13, usize::MAX] {
                let ended = extend_anchors(&conn, &list, &mut pieces, wanted).unwrap();
                assert_eq!(ended, wanted > expected.len(), "{list:?} to {wanted}");
                assert_eq!(pieces[..], expected[..wanted.min(expected.len())], "{list:?} to {wanted}");
            }
        }
    }

    #[test]
    fn a_deeper_page_extends_the_index_kept_at_its_version() {
        let rows: Vec<(i64, String, &str, &str)> =
            (0..100_000).map(|i: i64| (i, format!("{i:06}"), "a", "pending")).collect();
        let conn = database(&rows.iter().map(|(d, id, p, s)| (*d, id.as_str(), *p, *s)).collect::<Vec<_>>());
        let ranks = Ranks::default();
        let list = ListKey { plan_id: None, statuses: None };
        let at = |offset: u64| {
            let j = offset / EVERY;
            Start {
                after: Some(RowKey { due_at_us: (j * EVERY - 1) as i64, id: format!("{:06}", j * EVERY - 1) }),
                skip: offset % EVERY,
            }
        };
        assert_eq!(ranks.start(&conn, &list, 1, 1_234).unwrap(), at(1_234));
        let built =
            |ranks: &Ranks| ranks.indexes.locked().get(&list).map(|index| (index.anchors.len(), index.complete));
        // Built as deep as the page and `AHEAD` keys further, not to the list's end.
        assert_eq!(built(&ranks), Some((2 + AHEAD, false)));
        assert_eq!(ranks.start(&conn, &list, 1, 20_100).unwrap(), at(20_100));
        assert_eq!(built(&ranks), Some((2 + AHEAD, false)), "within what is kept: nothing read");
        assert_eq!(ranks.start(&conn, &list, 1, 40_123).unwrap(), at(40_123));
        assert_eq!(built(&ranks), Some((80 + AHEAD, false)));
        // Past the end: the index reaches it, and the page is empty.
        assert_eq!(
            ranks.start(&conn, &list, 1, 150_000).unwrap(),
            Start { after: Some(RowKey { due_at_us: 99_999, id: "099999".into() }), skip: 50_000 }
        );
        assert_eq!(built(&ranks), Some((200, true)));
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
