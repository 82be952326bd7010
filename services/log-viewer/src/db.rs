//! Schema, migrations and every SQL statement of the log-viewer. The ingestion thread is the
//! only writer (entries, cursors, counts, caps); handlers only read.
//!
//! Design notes (measured in `scripts/bench/`): ids sort as time sorts ([`ID_PER_MS`]), so
//! "newest first by timestamp" is `ORDER BY id DESC`; `logs_fts` is an external-content FTS5
//! table whose rowid is the entry id, so `ORDER BY rowid DESC LIMIT n` stops early; time
//! ranges are exact id ranges, pushed into FTS5 as rowid bounds; the live tail replays by
//! `seq`, the ingest order, since a late line gets an id among older ones; totals
//! are counted up to [`TOTAL_CAP`] and flagged beyond; per-container/level counts are kept in
//! `log_counts` so stats never scan the history.

use shared::service::Schema;
use std::collections::HashMap;

use rusqlite::types::Value as Sql;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension, Row};
use serde::Serialize;
use shared::time::format_ms;

use crate::level::Level;
use crate::tail::fold::fold;
use crate::tailer::Cursor;

/// Schema migrations, in order. A database of any earlier version is brought up to date at
/// start-up (`shared::db::migrate`, tracked in `_meta.schema_version`).
pub const MIGRATIONS: &[&str] = &[SCHEMA_V1, TIME_ORDERED_IDS];

/// Version 1: ids in ingest order.
const SCHEMA_V1: &str = r#"
-- Ids are given by `store_batch` and never reused, even when the caps empty the table (live
-- tails, Last-Event-ID and before_id rely on ids only growing): the last one is kept in
-- `_meta.last_log_id`. (AUTOINCREMENT would do it too, but makes each insert a two-table
-- write with a statement savepoint, which costs FTS5 dearly; see below.)
CREATE TABLE logs (
    id        INTEGER PRIMARY KEY,
    timestamp INTEGER NOT NULL, -- epoch ms (Docker's time)
    seen_max  INTEGER NOT NULL, -- the largest timestamp stored up to this id: grows with id
    container TEXT    NOT NULL,
    stream    TEXT    NOT NULL,
    level     INTEGER NOT NULL, -- 1 DEBUG .. 5 CRITICAL
    message   TEXT    NOT NULL
);
CREATE INDEX logs_by_time ON logs (timestamp);
CREATE INDEX logs_by_seen_max ON logs (seen_max);
CREATE INDEX logs_by_container ON logs (container);
CREATE INDEX logs_by_level ON logs (level);

-- New entries are added to `logs_fts` by `store_batch` itself, in the same transaction: an
-- AFTER INSERT trigger made every `INSERT INTO logs` a multi-write statement with a statement
-- savepoint, and FTS5 flushes its pending terms to a new on-disk segment at every savepoint:
-- one segment per row, merged over and over (half the ingestion CPU; see scripts/bench).
CREATE VIRTUAL TABLE logs_fts USING fts5 (message, content = 'logs', content_rowid = 'id');
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
END;

CREATE TABLE cursors (
    container_id TEXT PRIMARY KEY,
    position     INTEGER NOT NULL,
    inode        INTEGER NOT NULL,
    device       INTEGER NOT NULL,
    done_stdout  INTEGER NOT NULL,
    done_stderr  INTEGER NOT NULL
);

CREATE TABLE log_counts (
    container TEXT    NOT NULL,
    level     INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (container, level)
) WITHOUT ROWID;
"#;

/// Version 2: ids that sort as time sorts (see [`ID_PER_MS`]), and `seq`, the ingest order,
/// for the live tail's replay. Existing entries are renumbered in (timestamp, old id) order,
/// keep their old id as `seq` (a reconnecting tail's Last-Event-ID stays valid), and the
/// search index is rebuilt (about 10 s per million entries, once).
const TIME_ORDERED_IDS: &str = r#"
-- id = timestamp × 1000 + the entry's place among those of the same millisecond. Written as
-- a running maximum so that a millisecond with more than 1000 entries spills into the next
-- ids instead of colliding: new id = row number + max over earlier rows of (ts×1000 − row).
CREATE TABLE logs_renumber (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
INSERT INTO logs_renumber (old, new)
    SELECT id, rn + max(ts * 1000 - rn) OVER (ORDER BY ts, id ROWS UNBOUNDED PRECEDING)
    FROM (SELECT id, max(timestamp, 0) AS ts, row_number() OVER (ORDER BY timestamp, id) AS rn FROM logs);

-- `seq` is the order entries were stored in: the live tail's cursor.
CREATE TABLE logs_v2 (
    id        INTEGER PRIMARY KEY, -- timestamp × 1000 + n: ORDER BY id is ORDER BY time
    seq       INTEGER NOT NULL,    -- ingest order, never reused (`_meta.last_log_seq`)
    timestamp INTEGER NOT NULL,    -- epoch ms (Docker's time)
    container TEXT    NOT NULL,
    stream    TEXT    NOT NULL,
    level     INTEGER NOT NULL,    -- 1 DEBUG .. 5 CRITICAL
    message   TEXT    NOT NULL
);
INSERT INTO logs_v2 (id, seq, timestamp, container, stream, level, message)
    SELECT r.new, l.id, max(l.timestamp, 0), l.container, l.stream, l.level, l.message
    FROM logs l JOIN logs_renumber r ON r.old = l.id ORDER BY r.new;
DROP TABLE logs_renumber;
DROP TABLE logs_fts;
DROP TABLE logs;
ALTER TABLE logs_v2 RENAME TO logs;
CREATE UNIQUE INDEX logs_by_seq ON logs (seq);
CREATE INDEX logs_by_container ON logs (container);
CREATE INDEX logs_by_level ON logs (level);

CREATE VIRTUAL TABLE logs_fts USING fts5 (message, content = 'logs', content_rowid = 'id');
INSERT INTO logs_fts (logs_fts) VALUES ('rebuild');
CREATE TRIGGER logs_fts_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
END;

INSERT INTO _meta (key, value)
    SELECT 'last_log_seq', max(coalesce((SELECT CAST(value AS INTEGER) FROM _meta WHERE key = 'last_log_id'), 0),
                               coalesce((SELECT max(seq) FROM logs), 0))
    WHERE true
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
DELETE FROM _meta WHERE key = 'last_log_id';
"#;

/// Ids per millisecond: an entry's id is `timestamp × ID_PER_MS + n`, n its place among the
/// entries of that millisecond (in the order they were stored), so ids sort as (timestamp,
/// arrival) sorts and a time range is an id range. Ids stay below 2⁵³ (exact in JavaScript)
/// until the year 2255. A millisecond with more entries than this (a million lines a second
/// from one host) spills into the next millisecond's ids: still unique, ordered within a
/// millisecond of the truth.
pub const ID_PER_MS: i64 = 1000;
/// Timestamps are kept between 1970 and the last millisecond whose ids stay below 2⁵³.
const MAX_TIME_MS: i64 = (1 << 53) / ID_PER_MS - 1;

/// FTS5 merge settings: fewer, larger merges keep ingestion fast (see the benchmark).
pub const FTS_TUNING: &str = "
    INSERT INTO logs_fts (logs_fts, rank) VALUES ('automerge', 8);
    INSERT INTO logs_fts (logs_fts, rank) VALUES ('crisismerge', 32);
";

/// The schema and the page caches: 1 MiB per read connection, 2 MiB for the ingestion
/// connection. Inserts go to the right-hand end of each b-tree (ids and times grow) and FTS5
/// writes whole segments, so a bigger write cache buys nothing: 4 MiB ingested as fast as
/// 2 MiB, with 2–4 MiB more peak RSS (`bench-log-viewer`).
pub const SCHEMA: Schema = Schema {
    migrations: MIGRATIONS,
    write_cache_kib: 2048,
    read_cache_kib: 1024,
};
/// Totals are counted up to this many matches, then reported as capped.
pub const TOTAL_CAP: i64 = 10_000;
/// Rows deleted per transaction when enforcing the caps. A DELETE with a trigger (the FTS
/// 'delete') inside a transaction keeps a statement journal of every page it changes, in
/// memory (`temp_store=MEMORY`), so peak RSS grows with the chunk: 20,000 rows peaked at
/// 22.5 MiB at `MAX_ENTRIES=100000`, 5,000 at 17.5 MiB with the same ingestion rate
/// (`bench-log-viewer --max-entries 100000`).
const DELETE_CHUNK: i64 = 5_000;

/// An entry to store.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub time_ms: i64,
    pub container: String,
    pub stream: &'static str,
    pub level: Level,
    pub message: String,
}

/// Bytes of a message that a list page or a live-tail event carries at most (cut at a
/// character boundary); the whole message is at `GET /api/logs/{id}`. An entry may be up to
/// 256 KiB, so without the cut a page of 500 held up to 128 MiB, and so could each tail queue.
pub const PREVIEW_BYTES: usize = 2048;

/// A stored entry with its whole message (`GET /api/logs/{id}`, and what the live tail's
/// filters look at).
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Sorts as (timestamp, arrival) sorts; see [`ID_PER_MS`].
    pub id: i64,
    /// The ingest order: the live tail's cursor (not part of the JSON).
    #[serde(skip)]
    pub seq: i64,
    pub timestamp: String,
    pub container: String,
    pub stream: String,
    pub level: Level,
    pub message: String,
}

/// An entry as a list page and the live tail show it: the message cut to
/// [`PREVIEW_BYTES`]. A cut entry also has `"truncated": true` and `message_bytes` (the whole
/// message's length in bytes); an entry that was not cut has the spec's six fields only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryPreview {
    /// Sorts as (timestamp, arrival) sorts; see [`ID_PER_MS`].
    pub id: i64,
    /// The ingest order: the live tail's cursor (not part of the JSON).
    #[serde(skip)]
    pub seq: i64,
    pub timestamp: String,
    pub container: String,
    pub stream: String,
    pub level: Level,
    pub message: String,
    /// Whether `message` is only the start of the entry's message.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The whole message's length in bytes, when cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_bytes: Option<usize>,
}

impl EntryPreview {
    /// The preview of `entry`.
    pub fn of(entry: &LogEntry) -> EntryPreview {
        let message = preview_text(&entry.message).to_string();
        let truncated = message.len() < entry.message.len();
        EntryPreview {
            id: entry.id,
            seq: entry.seq,
            timestamp: entry.timestamp.clone(),
            container: entry.container.clone(),
            stream: entry.stream.clone(),
            level: entry.level,
            message,
            truncated,
            message_bytes: truncated.then_some(entry.message.len()),
        }
    }

    /// Bytes this preview occupies in memory, roughly (what the live tail's queues count).
    pub fn size(&self) -> usize {
        std::mem::size_of::<EntryPreview>()
            + self.timestamp.len()
            + self.container.len()
            + self.stream.len()
            + self.message.len()
    }
}

/// The first [`PREVIEW_BYTES`] of `message` at most, ending at a character boundary.
pub fn preview_text(message: &str) -> &str {
    &message[..message.floor_char_boundary(PREVIEW_BYTES)]
}

/// The columns [`preview_from_row`] reads, from `logs l`: SQLite hands over only the first
/// [`PREVIEW_BYTES`] characters of a message and its length, never a whole long message.
fn preview_columns() -> String {
    format!(
        "l.id, l.timestamp, l.container, l.stream, l.level, substr(l.message, 1, {PREVIEW_BYTES}), octet_length(l.message), l.seq"
    )
}

fn preview_from_row(row: &Row) -> rusqlite::Result<EntryPreview> {
    let level: i64 = row.get(4)?;
    let start: String = row.get(5)?;
    let full_bytes: i64 = row.get(6)?;
    let message = preview_text(&start).to_string();
    let truncated = (message.len() as i64) < full_bytes;
    Ok(EntryPreview {
        id: row.get(0)?,
        seq: row.get(7)?,
        timestamp: format_ms(row.get(1)?),
        container: row.get(2)?,
        stream: row.get(3)?,
        level: Level::from_stored(level),
        message,
        truncated,
        message_bytes: truncated.then_some(full_bytes as usize),
    })
}

/// One entry with its whole message, if it is stored.
pub fn entry(conn: &Connection, id: i64) -> rusqlite::Result<Option<LogEntry>> {
    conn.prepare_cached(
        "SELECT l.id, l.timestamp, l.container, l.stream, l.level, l.message, l.seq FROM logs l WHERE l.id = ?1",
    )?
    .query_row([id], entry_from_row)
    .optional()
}

/// Stores a batch and the cursors that cover it in one transaction; returns the entries with
/// their ids (see [`ID_PER_MS`]) and ingest sequence numbers, in the order given.
pub fn store_batch(
    conn: &mut Connection,
    entries: &[NewEntry],
    cursors: &[(String, Cursor)],
) -> rusqlite::Result<Vec<LogEntry>> {
    let tx = conn.transaction()?;
    let mut stored = Vec::with_capacity(entries.len());
    let mut counts: HashMap<(String, Level), (i64, i64)> = HashMap::new();
    {
        let mut seq = last_seq(&tx)?;
        let mut ids = IdAllocator::new(&tx)?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO logs (id, seq, timestamp, container, stream, level, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut index =
            tx.prepare_cached("INSERT INTO logs_fts (rowid, message) VALUES (?1, ?2)")?;
        for entry in entries {
            seq += 1;
            let time_ms = entry.time_ms.clamp(0, MAX_TIME_MS);
            let id = ids.next(&tx, time_ms)?;
            insert.execute(params![
                id,
                seq,
                time_ms,
                entry.container,
                entry.stream,
                entry.level.as_number(),
                entry.message
            ])?;
            // Indexed here rather than by a trigger (see the schema): a plain one-row INSERT
            // has no statement savepoint, so FTS5 keeps the batch's terms in memory (bounded
            // by its `hashsize`) and writes them as one segment at commit.
            index.execute(params![id, entry.message])?;
            let count = counts
                .entry((entry.container.clone(), entry.level))
                .or_insert((0, i64::MIN));
            count.0 += 1;
            count.1 = count.1.max(time_ms);
            stored.push(LogEntry {
                id,
                seq,
                timestamp: format_ms(time_ms),
                container: entry.container.clone(),
                stream: entry.stream.to_string(),
                level: entry.level,
                message: entry.message.clone(),
            });
        }
        tx.prepare_cached(
            "INSERT INTO _meta (key, value) VALUES ('last_log_seq', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([seq.to_string()])?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO log_counts (container, level, count, last_seen) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (container, level) DO UPDATE
             SET count = count + excluded.count, last_seen = max(last_seen, excluded.last_seen)",
        )?;
        for ((container, level), (count, last_seen)) in counts {
            upsert.execute(params![container, level.as_number(), count, last_seen])?;
        }
        let mut save = tx.prepare_cached(
            "INSERT INTO cursors (container_id, position, inode, device, done_stdout, done_stderr)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (container_id) DO UPDATE SET position = excluded.position, inode = excluded.inode,
                 device = excluded.device, done_stdout = excluded.done_stdout, done_stderr = excluded.done_stderr",
        )?;
        for (container_id, c) in cursors {
            save.execute(params![
                container_id,
                c.position as i64,
                c.inode as i64,
                c.device as i64,
                c.done[0] as i64,
                c.done[1] as i64
            ])?;
        }
    }
    tx.commit()?;
    Ok(stored)
}

/// The last ingest sequence number given out (kept in `_meta` so that it never goes back,
/// even when the caps empty the table): a live tail started with it as `since_id` gets every
/// entry stored after this moment.
pub fn last_seq(conn: &Connection) -> rusqlite::Result<i64> {
    let saved: Option<String> = conn
        .prepare_cached("SELECT value FROM _meta WHERE key = 'last_log_seq'")?
        .query_row([], |row| row.get(0))
        .optional()?;
    let max_seq: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM logs")?
        .query_row([], |row| row.get(0))?;
    Ok(saved
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .max(max_seq.unwrap_or(0)))
}

/// Gives out ids within one transaction: `timestamp × ID_PER_MS + n`, the first free n. Lines
/// newer than every stored one (nearly all of them) need no lookup; a line older than the
/// newest (a late-closed traceback, a container found late) looks up its millisecond.
struct IdAllocator {
    /// The largest id stored (or given out in this transaction).
    top: i64,
    /// The next free id of each millisecond given ids in this transaction.
    next: HashMap<i64, i64>,
}

impl IdAllocator {
    fn new(conn: &Connection) -> rusqlite::Result<IdAllocator> {
        let top: Option<i64> = conn
            .prepare_cached("SELECT max(id) FROM logs")?
            .query_row([], |row| row.get(0))?;
        Ok(IdAllocator {
            top: top.unwrap_or(-1),
            next: HashMap::new(),
        })
    }

    fn next(&mut self, conn: &Connection, time_ms: i64) -> rusqlite::Result<i64> {
        let first = time_ms * ID_PER_MS;
        let end = first + ID_PER_MS;
        let mut id = match self.next.get(&time_ms) {
            Some(&next) => next,
            None if first > self.top => first,
            None => {
                // After the last entry of this millisecond or before: they follow `first`
                // (also those that spilled past `end`), and stop at the first later one.
                let mut after = conn
                    .prepare_cached("SELECT id, timestamp FROM logs WHERE id >= ?1 ORDER BY id")?;
                let mut rows = after.query([first])?;
                let mut next = first;
                while let Some(row) = rows.next()? {
                    if row.get::<_, i64>(1)? > time_ms {
                        break;
                    }
                    next = row.get::<_, i64>(0)? + 1;
                }
                next
            }
        };
        if id >= end {
            // This millisecond's ids are used up: spill into the next free id after them
            // (the later milliseconds' cached positions may now be taken, so forget them).
            let mut taken = conn.prepare_cached("SELECT 1 FROM logs WHERE id = ?1")?;
            while taken.exists([id])? {
                id += 1;
            }
            self.next.retain(|&t, _| t <= time_ms);
        }
        self.next.insert(time_ms, id + 1);
        self.top = self.top.max(id);
        Ok(id)
    }
}

/// The saved cursor of a container, if any.
pub fn load_cursor(conn: &Connection, container_id: &str) -> rusqlite::Result<Option<Cursor>> {
    conn.prepare_cached(
        "SELECT position, inode, device, done_stdout, done_stderr FROM cursors WHERE container_id = ?1",
    )?
    .query_row([container_id], |row| {
        Ok(Cursor {
            position: row.get::<_, i64>(0)? as u64,
            inode: row.get::<_, i64>(1)? as u64,
            device: row.get::<_, i64>(2)? as u64,
            done: [row.get::<_, i64>(3)? as u64, row.get::<_, i64>(4)? as u64],
        })
    })
    .optional()
}

/// Deletes the entries older than `cutoff_ms`, then the oldest beyond `max_entries`,
/// in chunks, keeping `log_counts` and the FTS index in step. Returns how many were deleted.
pub fn enforce_caps(
    conn: &mut Connection,
    max_entries: u64,
    cutoff_ms: Option<i64>,
) -> rusqlite::Result<u64> {
    let mut deleted = 0;
    if let Some(cutoff) = cutoff_ms {
        loop {
            let n = delete_chunk(
                conn,
                "SELECT id FROM logs WHERE id < ?1 ORDER BY id LIMIT ?2",
                cutoff.clamp(0, MAX_TIME_MS) * ID_PER_MS,
                DELETE_CHUNK,
            )?;
            deleted += n;
            if n < DELETE_CHUNK as u64 {
                break;
            }
        }
    }
    loop {
        let excess = total_entries(conn)? - max_entries as i64;
        if excess <= 0 {
            return Ok(deleted);
        }
        let n = delete_chunk(
            conn,
            "SELECT id FROM logs WHERE id >= ?1 ORDER BY id LIMIT ?2",
            0,
            excess.min(DELETE_CHUNK),
        )?;
        if n == 0 {
            // `log_counts` says there are more entries than `logs` holds: another pass would
            // find nothing to delete either.
            log::warn!(
                "MAX_ENTRIES: the entry counts exceed the cap by {excess} but no entry is left to delete; stopping"
            );
            return Ok(deleted);
        }
        deleted += n;
    }
}

/// Deletes the rows whose ids `select_ids` (parameters `?1` and the limit `?2`) returns, in
/// one transaction with their `log_counts`.
fn delete_chunk(
    conn: &mut Connection,
    select_ids: &str,
    param: i64,
    limit: i64,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY); DELETE FROM doomed;",
    )?;
    tx.prepare_cached(&format!("INSERT INTO doomed (id) {select_ids}"))?
        .execute(params![param, limit])?;
    {
        let mut gone = tx.prepare_cached(
            "SELECT container, level, count(*) FROM logs WHERE id IN (SELECT id FROM doomed)
             GROUP BY container, level",
        )?;
        let rows = gone
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut decrement = tx.prepare_cached(
            "UPDATE log_counts SET count = count - ?3 WHERE container = ?1 AND level = ?2",
        )?;
        for (container, level, count) in rows {
            decrement.execute(params![container, level, count])?;
        }
    }
    let deleted = tx
        .prepare_cached("DELETE FROM logs WHERE id IN (SELECT id FROM doomed)")?
        .execute([])? as u64;
    tx.execute("DELETE FROM log_counts WHERE count <= 0", [])?;
    tx.commit()?;
    Ok(deleted)
}

/// Merges the search index into one segment, dropping deleted entries' postings.
pub fn optimize_search_index(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("INSERT INTO logs_fts (logs_fts) VALUES ('optimize')")
}

/// How many entries are stored (from `log_counts`, kept in step with every write).
pub fn total_entries(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(sum(count), 0) FROM log_counts")?
        .query_row([], |row| row.get(0))
}

/// How a `level` filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelFilter {
    Exactly(Level),
    AtLeast(Level),
}

/// The filters shared by the list, the histogram and the tail replay.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub containers: Vec<String>,
    pub level: Option<LevelFilter>,
    /// An FTS5 query (list, histogram).
    pub search: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only entries with `id < before_id`.
    pub before_id: Option<i64>,
}

/// One page of entries, newest first, and the (possibly capped) total.
#[derive(Debug, Default)]
pub struct Page {
    pub logs: Vec<EntryPreview>,
    pub total: i64,
    pub total_capped: bool,
}

fn entry_from_row(row: &Row) -> rusqlite::Result<LogEntry> {
    let level: i64 = row.get(4)?;
    Ok(LogEntry {
        id: row.get(0)?,
        seq: row.get(6)?,
        timestamp: format_ms(row.get(1)?),
        container: row.get(2)?,
        stream: row.get(3)?,
        level: Level::from_stored(level),
        message: row.get(5)?,
    })
}

/// A WHERE clause on `logs l` (and `logs_fts` when searching) with its values.
struct Clause {
    from: &'static str,
    conditions: Vec<String>,
    values: Vec<Sql>,
    /// Whether any condition needs the `logs` row (not just the FTS index).
    needs_row: bool,
}

impl Clause {
    fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }
}

/// Translates the filter into SQL. `search` is the FTS5 query to use (the user's, or the
/// plain-words fallback).
fn clause(filter: &Filter, search: Option<&str>) -> Clause {
    let id_column = if search.is_some() {
        "logs_fts.rowid"
    } else {
        "l.id"
    };
    let mut c = Clause {
        from: if search.is_some() {
            "logs_fts JOIN logs l ON l.id = logs_fts.rowid"
        } else {
            "logs l"
        },
        conditions: Vec::new(),
        values: Vec::new(),
        needs_row: false,
    };
    if let Some(search) = search {
        c.conditions.push("logs_fts MATCH ?".to_string());
        c.values.push(Sql::Text(search.to_string()));
    }
    let (lo, hi) = id_range(filter);
    if let Some(lo) = lo {
        c.conditions.push(format!("{id_column} >= ?"));
        c.values.push(Sql::Integer(lo));
    }
    if let Some(hi) = hi {
        c.conditions.push(format!("{id_column} <= ?"));
        c.values.push(Sql::Integer(hi));
    }
    if !filter.containers.is_empty() {
        let marks = vec!["?"; filter.containers.len()].join(", ");
        c.conditions.push(format!("l.container IN ({marks})"));
        c.values
            .extend(filter.containers.iter().cloned().map(Sql::Text));
        c.needs_row = true;
    }
    match filter.level {
        Some(LevelFilter::Exactly(level)) => {
            c.conditions.push("l.level = ?".to_string());
            c.values.push(Sql::Integer(level.as_number()));
            c.needs_row = true;
        }
        Some(LevelFilter::AtLeast(level)) => {
            c.conditions.push("l.level >= ?".to_string());
            c.values.push(Sql::Integer(level.as_number()));
            c.needs_row = true;
        }
        None => {}
    }
    c
}

/// The id bounds implied by `before_id` and the time range: exact, since ids sort as time
/// sorts ([`ID_PER_MS`]).
fn id_range(filter: &Filter) -> (Option<i64>, Option<i64>) {
    let mut hi = filter.before_id.map(|b| b.saturating_sub(1));
    let lo = filter
        .since_ms
        .map(|since| since.clamp(0, MAX_TIME_MS) * ID_PER_MS);
    if let Some(until) = filter.until_ms {
        let last = until.clamp(-1, MAX_TIME_MS) * ID_PER_MS + ID_PER_MS - 1;
        hi = Some(hi.map_or(last, |h| h.min(last)));
    }
    (lo, hi)
}

/// Runs `query` with the user's FTS5 syntax, and — if SQLite rejects that syntax — again with
/// the input as plain words. Input that still cannot be searched matches nothing.
fn with_search_fallback<T: Default>(
    filter: &Filter,
    mut query: impl FnMut(Option<&str>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let Some(search) = filter.search.as_deref() else {
        return query(None);
    };
    match query(Some(search)) {
        Err(e) if is_query_error(&e) => match plain_words(search) {
            Some(words) => match query(Some(&words)) {
                Err(e) if is_query_error(&e) => Ok(T::default()),
                other => other,
            },
            None => Ok(T::default()),
        },
        other => other,
    }
}

/// SQLite's generic error (bad FTS5 syntax, unknown column in a query) as opposed to I/O or
/// corruption, which stay errors.
fn is_query_error(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::Unknown)
}

/// The search as AND-ed quoted words: `foo-bar (baz` → `"foo-bar" "baz"`.
pub fn plain_words(search: &str) -> Option<String> {
    let words: Vec<String> = search
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// One page of entries matching `filter`, newest first.
pub fn list(conn: &Connection, filter: &Filter, limit: i64, offset: i64) -> rusqlite::Result<Page> {
    with_search_fallback(filter, |search| {
        let c = clause(filter, search);
        let id_column = if search.is_some() {
            "logs_fts.rowid"
        } else {
            "l.id"
        };
        let sql = format!(
            "SELECT {} FROM {}{} ORDER BY {id_column} DESC LIMIT ? OFFSET ?",
            preview_columns(),
            c.from,
            c.sql()
        );
        let mut values = c.values.clone();
        values.push(Sql::Integer(limit));
        values.push(Sql::Integer(offset));
        let logs = conn
            .prepare_cached(&sql)?
            .query_map(params_from_iter(values.iter()), preview_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let (total, total_capped) = count(conn, search, &c)?;
        Ok(Page {
            logs,
            total,
            total_capped,
        })
    })
}

/// Counts matches up to [`TOTAL_CAP`]; with no filter at all, exactly from `log_counts`.
fn count(conn: &Connection, search: Option<&str>, c: &Clause) -> rusqlite::Result<(i64, bool)> {
    let unfiltered = search.is_none() && c.conditions.is_empty();
    if unfiltered {
        return Ok((total_entries(conn)?, false));
    }
    let from = if search.is_some() && !c.needs_row {
        "logs_fts"
    } else {
        c.from
    };
    // Newest first, like the page: FTS5 walks a term's entries from the end the ORDER BY
    // asks for, and the oldest end holds the entries the caps deleted, which FTS5 keeps
    // (with delete markers) until its segments merge. Ascending, a term in every line at
    // MAX_ENTRIES=100000 after 1 M lines waded through 900,000 of them: 30 ms, now 1 ms.
    let order = if search.is_some() {
        " ORDER BY logs_fts.rowid DESC"
    } else {
        ""
    };
    let sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM {from}{}{order} LIMIT ?)",
        c.sql()
    );
    let mut values = c.values.clone();
    values.push(Sql::Integer(TOTAL_CAP + 1));
    let n: i64 = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(values.iter()), |row| row.get(0))?;
    Ok(if n > TOTAL_CAP {
        (TOTAL_CAP, true)
    } else {
        (n, false)
    })
}

/// One bar of the histogram.
#[derive(Debug, Serialize)]
pub struct Bucket {
    pub start: String,
    pub count: i64,
    pub by_level: HashMap<&'static str, i64>,
}

/// Bar widths the histogram picks from: round to a reader, so a bar reads 04:00–04:15.
const BUCKET_WIDTHS_MS: [i64; 22] = [
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000, // seconds
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000, // minutes
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000, // hours
    86_400_000,
    172_800_000,
    604_800_000,
    1_209_600_000,
    2_592_000_000, // days
];

/// The narrowest round width that covers `[since_ms, until_ms]` in at most `buckets` bars
/// (the widest one for longer spans).
pub fn bucket_width(since_ms: i64, until_ms: i64, buckets: i64) -> i64 {
    let buckets = buckets.max(1);
    let wanted = ((until_ms - since_ms).max(1) + buckets - 1) / buckets;
    BUCKET_WIDTHS_MS
        .into_iter()
        .find(|&w| w >= wanted)
        .unwrap_or(BUCKET_WIDTHS_MS[BUCKET_WIDTHS_MS.len() - 1])
}

/// Log volume by level over `[since_ms, until_ms]` in bars of a round width (see
/// [`bucket_width`]) that start at multiples of it (UTC), so there may be one bar more than
/// `buckets`; the first and last bars count only the part inside the range. Returns the
/// bars and their width.
pub fn histogram(
    conn: &Connection,
    filter: &Filter,
    since_ms: i64,
    until_ms: i64,
    buckets: i64,
) -> rusqlite::Result<(Vec<Bucket>, i64)> {
    let width = bucket_width(since_ms, until_ms, buckets);
    let first = since_ms.div_euclid(width) * width;
    let buckets = ((until_ms - first) / width + 1).min(buckets + 1);
    let mut bars: Vec<Bucket> = (0..buckets)
        .map(|i| Bucket {
            start: format_ms(first + i * width),
            count: 0,
            by_level: HashMap::new(),
        })
        .collect();
    let mut ranged = filter.clone();
    ranged.since_ms = Some(since_ms);
    ranged.until_ms = Some(until_ms);
    let counts = with_search_fallback(&ranged, |search| {
        let c = clause(&ranged, search);
        let sql = format!(
            "SELECT (l.timestamp - ?) / ? AS bucket, l.level, count(*) FROM {}{} GROUP BY bucket, l.level",
            c.from,
            c.sql()
        );
        let mut values = vec![Sql::Integer(first), Sql::Integer(width)];
        values.extend(c.values.iter().cloned());
        conn.prepare_cached(&sql)?
            .query_map(params_from_iter(values.iter()), |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    for (bucket, level, n) in counts {
        let index = bucket.clamp(0, buckets - 1) as usize;
        let name = Level::from_stored(level).as_str();
        bars[index].count += n;
        *bars[index].by_level.entry(name).or_insert(0) += n;
    }
    Ok((bars, width))
}

/// The last `limit` entries stored after ingest sequence number `after_seq` matching the
/// tail's filters (container, level, and `substring`, already folded like the live filter's),
/// in the order they were stored — the replay of a
/// reconnecting live tail. Taking the newest keeps the replay contiguous with the live stream
/// when more than `limit` were missed. The substring is matched here rather than in SQL, whose
/// `lower()` folds ASCII only, so that the replay and the live stream agree.
pub fn replay(
    conn: &Connection,
    filter: &Filter,
    substring: Option<&str>,
    after_seq: i64,
    limit: i64,
) -> rusqlite::Result<Vec<EntryPreview>> {
    let mut c = clause(
        &Filter {
            search: None,
            ..filter.clone()
        },
        None,
    );
    c.conditions.push("l.seq > ?".to_string());
    c.values.push(Sql::Integer(after_seq));
    let mut newest = match substring {
        None => {
            let sql = format!(
                "SELECT {} FROM logs l{} ORDER BY l.seq DESC LIMIT ?",
                preview_columns(),
                c.sql()
            );
            c.values.push(Sql::Integer(limit));
            conn.prepare_cached(&sql)?
                .query_map(params_from_iter(c.values.iter()), preview_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
        }
        Some(text) => {
            // One whole message in memory at a time; stops at `limit` matches.
            let sql = format!(
                "SELECT l.id, l.timestamp, l.container, l.stream, l.level, l.message, l.seq FROM logs l{} ORDER BY l.seq DESC",
                c.sql()
            );
            let mut select = conn.prepare_cached(&sql)?;
            let mut matching = Vec::new();
            for entry in select.query_map(params_from_iter(c.values.iter()), entry_from_row)? {
                let entry = entry?;
                if fold(&entry.message).contains(text) {
                    matching.push(EntryPreview::of(&entry));
                    if matching.len() as i64 >= limit {
                        break;
                    }
                }
            }
            matching
        }
    };
    newest.reverse();
    Ok(newest)
}

/// Per container: entries stored and the newest entry's time.
pub fn container_counts(conn: &Connection) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    conn.prepare_cached(
        "SELECT container, sum(count), max(last_seen) FROM log_counts GROUP BY container ORDER BY container",
    )?
    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
    .collect()
}

/// Entries stored per level.
pub fn level_counts(conn: &Connection) -> rusqlite::Result<Vec<(Level, i64)>> {
    conn.prepare_cached("SELECT level, sum(count) FROM log_counts GROUP BY level ORDER BY level")?
        .query_map([], |row| {
            let level: i64 = row.get(0)?;
            Ok((Level::from_stored(level), row.get(1)?))
        })?
        .collect()
}

/// The oldest and newest entry times.
pub fn time_bounds(conn: &Connection) -> rusqlite::Result<(Option<i64>, Option<i64>)> {
    // Each end of the table: ids sort as times sort.
    conn.prepare_cached(
        "SELECT (SELECT timestamp FROM logs ORDER BY id LIMIT 1),
                (SELECT timestamp FROM logs ORDER BY id DESC LIMIT 1)",
    )?
    .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_db() -> Connection {
        let mut conn = Connection::open_in_memory().expect("an in-memory database");
        shared::db::migrate(&mut conn, MIGRATIONS).expect("the schema");
        conn
    }

    fn new_entry(time_ms: i64, message: &str) -> NewEntry {
        NewEntry {
            time_ms,
            container: "web".to_string(),
            stream: "stdout",
            level: Level::Info,
            message: message.to_string(),
        }
    }

    #[test]
    fn previews_cut_at_a_character_boundary_within_the_byte_budget() {
        assert_eq!(preview_text("short"), "short");
        let exact = "x".repeat(PREVIEW_BYTES);
        assert_eq!(preview_text(&exact), exact);
        // 'é' is two bytes: after one ASCII byte, byte PREVIEW_BYTES falls inside one.
        let odd = format!("a{}", "é".repeat(PREVIEW_BYTES));
        assert_eq!(preview_text(&odd).len(), PREVIEW_BYTES - 1);
        assert!(odd.starts_with(preview_text(&odd)));
    }

    #[test]
    fn list_and_replay_cut_long_messages_and_entry_keeps_them_whole() {
        let mut conn = memory_db();
        let long = format!("start {}", "€".repeat(PREVIEW_BYTES));
        let stored = store_batch(
            &mut conn,
            &[new_entry(1, &long), new_entry(2, "short")],
            &[],
        )
        .unwrap();
        let page = list(&conn, &Filter::default(), 10, 0).unwrap();
        let replayed = replay(&conn, &Filter::default(), None, 0, 10).unwrap();
        let live: Vec<EntryPreview> = stored.iter().map(EntryPreview::of).collect();
        for previews in [page.logs.iter().rev().cloned().collect(), replayed, live] {
            let [cut, short] = &previews[..] else {
                panic!("two entries: {previews:?}");
            };
            assert!(cut.truncated);
            assert_eq!(cut.message_bytes, Some(long.len()));
            assert_eq!(cut.message, preview_text(&long));
            assert!(!short.truncated);
            assert_eq!(short.message_bytes, None);
            assert_eq!(short.message, "short");
            let json = serde_json::to_value(short).unwrap();
            assert_eq!(json.as_object().map(|o| o.len()), Some(6), "{json}");
            let json = serde_json::to_value(cut).unwrap();
            assert_eq!(json["truncated"], true, "{json}");
            assert_eq!(json["message_bytes"], long.len(), "{json}");
        }
        let whole = entry(&conn, stored[0].id).unwrap().expect("stored");
        assert_eq!(whole.message, long);
        assert!(entry(&conn, 999).unwrap().is_none());
    }

    #[test]
    fn enforce_caps_stops_when_a_pass_deletes_nothing() {
        let mut conn = memory_db();
        let entries: Vec<NewEntry> = (0..3).map(|i| new_entry(i, "x")).collect();
        store_batch(&mut conn, &entries, &[]).unwrap();
        // Counts that overstate the history: no pass can bring them under the cap.
        conn.execute("UPDATE log_counts SET count = count + 10", [])
            .unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = enforce_caps(&mut conn, 1, None);
            let left: i64 = conn
                .query_row("SELECT count(*) FROM logs", [], |row| row.get(0))
                .unwrap();
            let _ = done.send((result, left));
        });
        let (result, left) = finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("enforce_caps returns instead of looping");
        assert_eq!(result.unwrap(), 3);
        assert_eq!(left, 0);
    }

    fn ids_and_messages(conn: &Connection) -> Vec<(i64, i64, String)> {
        conn.prepare("SELECT id, seq, message FROM logs ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn ids_sort_as_time_for_late_entries_and_full_milliseconds() {
        let mut conn = memory_db();
        let batch: Vec<NewEntry> = [5, 7, 20].map(|t| new_entry(t, &format!("at {t}"))).into();
        store_batch(&mut conn, &batch, &[]).unwrap();
        // Late: one in an empty millisecond, one beside an entry of the same millisecond.
        store_batch(
            &mut conn,
            &[new_entry(6, "late 6"), new_entry(7, "late 7")],
            &[],
        )
        .unwrap();
        // A millisecond with more entries than it has ids spills over, still in order.
        let crowd: Vec<NewEntry> = (0..ID_PER_MS + 2)
            .map(|i| new_entry(8, &format!("crowd {i}")))
            .collect();
        store_batch(&mut conn, &crowd, &[]).unwrap();
        store_batch(&mut conn, &[new_entry(8, "crowd late")], &[]).unwrap();
        let rows = ids_and_messages(&conn);
        let messages: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(
            &messages[..5],
            ["at 5", "late 6", "at 7", "late 7", "crowd 0"]
        );
        assert_eq!(messages[messages.len() - 2], "crowd late");
        assert_eq!(messages[messages.len() - 1], "at 20");
        assert_eq!(rows[rows.len() - 2].0, 8 * ID_PER_MS + ID_PER_MS + 2);
        assert_eq!(rows[0].0, 5 * ID_PER_MS);
        assert_eq!(rows[3].0, 7 * ID_PER_MS + 1);
        // seq is the ingest order: the late ones came fourth and fifth.
        assert_eq!((rows[1].1, rows[3].1), (4, 5));
        let page = list(
            &conn,
            &Filter {
                since_ms: Some(6),
                until_ms: Some(7),
                ..Filter::default()
            },
            10,
            0,
        )
        .unwrap();
        let got: Vec<&str> = page.logs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(got, ["late 7", "at 7", "late 6"]);
    }

    #[test]
    fn a_version_1_database_is_renumbered_in_time_order_and_keeps_its_tail_cursor() {
        let mut conn = Connection::open_in_memory().unwrap();
        shared::db::migrate(&mut conn, &MIGRATIONS[..1]).unwrap();
        // Ingest order ≠ time order (a late traceback), two entries in one millisecond, and
        // a millisecond with more entries than it has ids.
        let mut rows: Vec<(i64, i64, String)> = vec![
            (1, 2_000, "second".into()),
            (2, 3_000, "third, same ms as the fourth".into()),
            (3, 1_000, "first, stored late".into()),
            (4, 3_000, "fourth".into()),
        ];
        for i in 0..ID_PER_MS + 1 {
            rows.push((10 + i, 4_000, format!("crowd {i}")));
        }
        for (id, ts, message) in &rows {
            conn.execute(
                "INSERT INTO logs (id, timestamp, seen_max, container, stream, level, message) VALUES (?1, ?2, ?2, 'web', 'stdout', 2, ?3)",
                params![id, ts, message],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO logs_fts (rowid, message) VALUES (?1, ?2)",
                params![id, message],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO _meta (key, value) VALUES ('last_log_id', '5000')",
            [],
        )
        .unwrap();

        shared::db::migrate(&mut conn, MIGRATIONS).unwrap();
        let after = ids_and_messages(&conn);
        let order: Vec<&str> = after.iter().take(4).map(|r| r.2.as_str()).collect();
        assert_eq!(
            order,
            [
                "first, stored late",
                "second",
                "third, same ms as the fourth",
                "fourth"
            ]
        );
        assert_eq!(after[0].0, 1_000 * ID_PER_MS);
        assert_eq!(
            (after[2].0, after[3].0),
            (3_000 * ID_PER_MS, 3_000 * ID_PER_MS + 1)
        );
        assert_eq!(after[0].1, 3, "the old id is the ingest sequence");
        assert!(after.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            after.last().map(|r| r.2.as_str()),
            Some(format!("crowd {ID_PER_MS}").as_str())
        );
        // The search index follows the new ids; new entries continue the old sequence.
        let found = list(
            &conn,
            &Filter {
                search: Some("stored late".into()),
                ..Filter::default()
            },
            10,
            0,
        )
        .unwrap();
        assert_eq!(found.logs.len(), 1);
        assert_eq!(found.logs[0].id, 1_000 * ID_PER_MS);
        let stored = store_batch(&mut conn, &[new_entry(5_000, "new")], &[]).unwrap();
        assert_eq!(stored[0].seq, 5001);
        let key: Option<String> = conn
            .query_row(
                "SELECT value FROM _meta WHERE key = 'last_log_id'",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap();
        assert_eq!(key, None);
    }

    #[test]
    fn histogram_bars_have_round_widths() {
        let minute = 60_000;
        assert_eq!(bucket_width(0, 60 * minute, 60), minute);
        assert_eq!(bucket_width(0, 60 * minute, 4), 15 * minute);
        assert_eq!(bucket_width(0, 61 * minute, 60), 2 * minute);
        assert_eq!(bucket_width(0, 24 * 60 * minute, 24), 60 * minute);
        assert_eq!(bucket_width(0, 100, 60), 1_000);
        let conn = memory_db();
        // 04:01 → 05:01 in 4 bars: 15-minute bars from 04:00, five of them.
        let since = 4 * 60 * minute + minute;
        let (bars, width) =
            histogram(&conn, &Filter::default(), since, since + 60 * minute, 4).unwrap();
        assert_eq!(width, 15 * minute);
        let starts: Vec<&str> = bars.iter().map(|b| &b.start[11..16]).collect();
        assert_eq!(starts, ["04:00", "04:15", "04:30", "04:45", "05:00"]);
    }

    #[test]
    fn plain_words_quotes_and_drops_punctuation() {
        assert_eq!(
            plain_words("foo-bar (baz \"q").as_deref(),
            Some("\"foo-bar\" \"(baz\" \"\"\"q\"")
        );
        assert_eq!(plain_words("!!! ((("), None);
    }
}
