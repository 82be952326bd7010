//! Schema, migrations and every SQL statement of the log-viewer. The ingestion thread is the
//! only writer (entries, cursors, counts, caps); handlers only read.
//!
//! Design notes (measured in `scripts/bench/`): `logs_fts` is an external-content FTS5 table
//! whose rowid is the entry id, so `ORDER BY rowid DESC LIMIT n` stops early; time ranges are
//! translated into id ranges (ids grow with time) and pushed into FTS5 as rowid bounds; totals
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

/// Schema migrations, in order.
pub const MIGRATIONS: &[&str] = &[r#"
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
"#];

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
/// Slack when translating `until` into an id bound: a line read up to this late is found.
const TIME_SLACK_MS: i64 = 60 * 60 * 1000;
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
    pub id: i64,
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
    pub id: i64,
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
    if message.len() <= PREVIEW_BYTES {
        return message;
    }
    let mut end = PREVIEW_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// The columns [`preview_from_row`] reads, from `logs l`: SQLite hands over only the first
/// [`PREVIEW_BYTES`] characters of a message and its length, never a whole long message.
fn preview_columns() -> String {
    format!(
        "l.id, l.timestamp, l.container, l.stream, l.level, substr(l.message, 1, {PREVIEW_BYTES}), octet_length(l.message)"
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
        "SELECT l.id, l.timestamp, l.container, l.stream, l.level, l.message FROM logs l WHERE l.id = ?1",
    )?
    .query_row([id], entry_from_row)
    .optional()
}

/// Stores a batch and the cursors that cover it in one transaction; returns the entries with
/// their ids.
pub fn store_batch(
    conn: &mut Connection,
    entries: &[NewEntry],
    cursors: &[(String, Cursor)],
) -> rusqlite::Result<Vec<LogEntry>> {
    let tx = conn.transaction()?;
    let mut stored = Vec::with_capacity(entries.len());
    let mut counts: HashMap<(String, Level), (i64, i64)> = HashMap::new();
    {
        let (mut last_id, mut seen_max) = sequence(&tx)?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO logs (id, timestamp, seen_max, container, stream, level, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut index =
            tx.prepare_cached("INSERT INTO logs_fts (rowid, message) VALUES (?1, ?2)")?;
        for entry in entries {
            last_id += 1;
            seen_max = seen_max.max(entry.time_ms);
            let id = last_id;
            insert.execute(params![
                id,
                entry.time_ms,
                seen_max,
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
            count.1 = count.1.max(entry.time_ms);
            stored.push(LogEntry {
                id,
                timestamp: format_ms(entry.time_ms),
                container: entry.container.clone(),
                stream: entry.stream.to_string(),
                level: entry.level,
                message: entry.message.clone(),
            });
        }
        tx.prepare_cached(
            "INSERT INTO _meta (key, value) VALUES ('last_log_id', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([last_id.to_string()])?;
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

/// The last id given out and the largest timestamp stored so far.
fn sequence(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let last_id: Option<String> = conn
        .prepare_cached("SELECT value FROM _meta WHERE key = 'last_log_id'")?
        .query_row([], |row| row.get(0))
        .optional()?;
    let (max_id, seen_max): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT (SELECT max(id) FROM logs), (SELECT max(seen_max) FROM logs)")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let last_id = last_id
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .max(max_id.unwrap_or(0));
    Ok((last_id, seen_max.unwrap_or(i64::MIN)))
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

/// Deletes the entries older than `cutoff_ms`, then the oldest (by id) beyond `max_entries`,
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
                "SELECT id FROM logs WHERE timestamp < ?1 LIMIT ?2",
                cutoff,
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
            "SELECT id FROM logs WHERE id > ?1 ORDER BY id LIMIT ?2",
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
fn clause(conn: &Connection, filter: &Filter, search: Option<&str>) -> rusqlite::Result<Clause> {
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
    let (lo, hi) = id_range(conn, filter)?;
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
    if let Some(since) = filter.since_ms {
        c.conditions.push("l.timestamp >= ?".to_string());
        c.values.push(Sql::Integer(since));
        c.needs_row = true;
    }
    if let Some(until) = filter.until_ms {
        c.conditions.push("l.timestamp <= ?".to_string());
        c.values.push(Sql::Integer(until));
        c.needs_row = true;
    }
    Ok(c)
}

/// The id bounds implied by `before_id` and the time range (with [`TIME_SLACK_MS`]); the exact
/// time check is still applied to each row.
fn id_range(conn: &Connection, filter: &Filter) -> rusqlite::Result<(Option<i64>, Option<i64>)> {
    let mut hi = filter.before_id.map(|b| b - 1);
    let mut lo = None;
    if let Some(since) = filter.since_ms {
        // Exact: an entry at or after `since` has a running maximum at or after it too.
        let first: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM logs WHERE seen_max >= ?1 ORDER BY seen_max, id LIMIT 1",
            )?
            .query_row([since], |row| row.get(0))
            .optional()?;
        lo = Some(first.unwrap_or(i64::MAX));
    }
    if let Some(until) = filter.until_ms {
        // Entries stored once newer lines than `until + slack` had been seen: only a line
        // read more than the slack late is missed.
        let first_after: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM logs WHERE seen_max > ?1 ORDER BY seen_max, id LIMIT 1",
            )?
            .query_row([until.saturating_add(TIME_SLACK_MS)], |row| row.get(0))
            .optional()?;
        if let Some(first_after) = first_after {
            hi = Some(hi.map_or(first_after - 1, |h| h.min(first_after - 1)));
        }
    }
    Ok((lo, hi))
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
        let c = clause(conn, filter, search)?;
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

/// Log volume by level in `buckets` equal slices of `[since_ms, until_ms]`.
pub fn histogram(
    conn: &Connection,
    filter: &Filter,
    since_ms: i64,
    until_ms: i64,
    buckets: i64,
) -> rusqlite::Result<Vec<Bucket>> {
    let width = ((until_ms - since_ms) / buckets).max(1);
    let mut bars: Vec<Bucket> = (0..buckets)
        .map(|i| Bucket {
            start: format_ms(since_ms + i * width),
            count: 0,
            by_level: HashMap::new(),
        })
        .collect();
    let mut ranged = filter.clone();
    ranged.since_ms = Some(since_ms);
    ranged.until_ms = Some(until_ms);
    let counts = with_search_fallback(&ranged, |search| {
        let c = clause(conn, &ranged, search)?;
        let sql = format!(
            "SELECT (l.timestamp - ?) / ? AS bucket, l.level, count(*) FROM {}{} GROUP BY bucket, l.level",
            c.from,
            c.sql()
        );
        let mut values = vec![Sql::Integer(since_ms), Sql::Integer(width)];
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
    Ok(bars)
}

/// The newest `limit` entries after `after_id` matching the tail's filters (container, level,
/// and `substring`, already folded like the live filter's), oldest first — the replay of a
/// reconnecting live tail. Taking the newest keeps the replay contiguous with the live stream
/// when more than `limit` were missed. The substring is matched here rather than in SQL, whose
/// `lower()` folds ASCII only, so that the replay and the live stream agree.
pub fn replay(
    conn: &Connection,
    filter: &Filter,
    substring: Option<&str>,
    after_id: i64,
    limit: i64,
) -> rusqlite::Result<Vec<EntryPreview>> {
    let mut c = clause(
        conn,
        &Filter {
            search: None,
            ..filter.clone()
        },
        None,
    )?;
    c.conditions.push("l.id > ?".to_string());
    c.values.push(Sql::Integer(after_id));
    let mut newest = match substring {
        None => {
            let sql = format!(
                "SELECT {} FROM logs l{} ORDER BY l.id DESC LIMIT ?",
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
                "SELECT l.id, l.timestamp, l.container, l.stream, l.level, l.message FROM logs l{} ORDER BY l.id DESC",
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
    // Two subqueries, each one end of `logs_by_time`: SQLite answers a lone min() or max()
    // from one end of the index, but not both in one select.
    conn.prepare_cached(
        "SELECT (SELECT min(timestamp) FROM logs), (SELECT max(timestamp) FROM logs)",
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

    #[test]
    fn plain_words_quotes_and_drops_punctuation() {
        assert_eq!(
            plain_words("foo-bar (baz \"q").as_deref(),
            Some("\"foo-bar\" \"(baz\" \"\"\"q\"")
        );
        assert_eq!(plain_words("!!! ((("), None);
    }
}
