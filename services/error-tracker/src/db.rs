//! Schema, migrations and every SQL statement of the error-tracker. Only this module writes
//! SQL; all writes run on the writer thread (`apply`), reads on the handler pool.

use std::sync::Arc;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;
use shared::keys::{KeyJob, KeyTable, PublicKey};
use shared::service::Schema;
use shared::time::format_ms;

use crate::ingest::Report;

/// Schema migrations, in order; `_meta.schema_version` counts the applied ones.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE errors (
    id             INTEGER PRIMARY KEY,
    fingerprint    TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    environment    TEXT    NOT NULL,
    exception_type TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    traceback      TEXT    NOT NULL,
    count          INTEGER NOT NULL,
    first_seen     INTEGER NOT NULL, -- epoch ms
    last_seen      INTEGER NOT NULL, -- epoch ms
    resolved       INTEGER NOT NULL DEFAULT 0,
    resolved_at    INTEGER,          -- epoch ms
    is_browser     INTEGER NOT NULL DEFAULT 0 -- ever had a BROWSER occurrence; never cleared
);
CREATE UNIQUE INDEX errors_by_fingerprint ON errors (fingerprint);
CREATE INDEX errors_by_last_seen ON errors (resolved, last_seen);
CREATE INDEX errors_by_first_seen ON errors (resolved, first_seen);
CREATE INDEX errors_by_count ON errors (resolved, count);
CREATE INDEX errors_by_project ON errors (project, resolved, last_seen);
CREATE INDEX errors_by_environment ON errors (environment, resolved, last_seen);
CREATE INDEX errors_by_resolved_at ON errors (resolved_at) WHERE resolved = 1;

CREATE TABLE error_occurrences (
    id              INTEGER PRIMARY KEY,
    error_id        INTEGER NOT NULL REFERENCES errors (id) ON DELETE CASCADE,
    timestamp       INTEGER NOT NULL, -- epoch ms
    request_url     TEXT,
    request_method  TEXT,
    request_headers TEXT, -- JSON
    user_id         TEXT,
    extra           TEXT, -- JSON
    traceback       TEXT NOT NULL
);
CREATE INDEX occurrences_by_error ON error_occurrences (error_id, id);

-- Every browser session a group was seen in; unlike occurrences it is not trimmed, so the
-- session filter stays complete.
CREATE TABLE error_sessions (
    session_id TEXT    NOT NULL,
    error_id   INTEGER NOT NULL REFERENCES errors (id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, error_id)
) WITHOUT ROWID;
CREATE INDEX sessions_by_error ON error_sessions (error_id);
"#,
    r#"
-- Search (`GET /api/errors?search=`): exception type and message case-folded by the writer
-- (`fold`: Unicode lower case, which SQLite's lower() is not) and indexed by trigrams, so a
-- substring of three characters or more is an index lookup, not a scan. Groups stored before
-- this migration are indexed by `backfill_search`, which the `search_backfill` key asks for.
CREATE VIRTUAL TABLE errors_search USING fts5 (
    type_folded, message_folded, tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER errors_search_delete AFTER DELETE ON errors BEGIN
    DELETE FROM errors_search WHERE rowid = old.id;
END;
INSERT INTO _meta (key, value)
    SELECT 'search_backfill', 'pending' WHERE EXISTS (SELECT 1 FROM errors);
"#,
    r#"
-- The occurrence trend: reports per group per hour, counted by the writer in the report's
-- transaction. Unlike occurrences it is not trimmed to MAX_OCCURRENCES, so the trend stays
-- whole; retention drops hours older than TREND_DAYS. Filled here from the occurrences
-- still kept (older, trimmed ones are gone: a group's trend starts with what was kept).
CREATE TABLE error_hourly (
    error_id INTEGER NOT NULL REFERENCES errors (id) ON DELETE CASCADE,
    hour     INTEGER NOT NULL, -- epoch ms / 3,600,000
    count    INTEGER NOT NULL,
    PRIMARY KEY (error_id, hour)
) WITHOUT ROWID;
CREATE INDEX hourly_by_hour ON error_hourly (hour);
INSERT INTO error_hourly (error_id, hour, count)
    SELECT error_id, timestamp / 3600000, count(*) FROM error_occurrences GROUP BY 1, 2;
"#,
    r#"
-- New groups wait here, folded, until the writer adds them to the search index in a batch
-- (`Job::IndexPending`): FTS5 writes a segment per transaction, which cost a third of the
-- report throughput when every new group had its own. Search scans this small table too,
-- so a group is found as soon as it is stored.
CREATE TABLE search_pending (
    id             INTEGER PRIMARY KEY REFERENCES errors (id) ON DELETE CASCADE,
    type_folded    TEXT NOT NULL,
    message_folded TEXT NOT NULL
);
"#,
    r#"
-- Sentry SDKs' public keys (`shared::keys`): each names the project its events go to.
CREATE TABLE sentry_keys (
    id         INTEGER PRIMARY KEY,
    public_key TEXT    NOT NULL UNIQUE,
    project    TEXT    NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL -- epoch ms
);
"#,
];

/// The Sentry keys' table.
pub const SENTRY_KEYS: KeyTable = KeyTable::new("sentry_keys");

/// Milliseconds in an hour, the trend's bucket.
const HOUR_MS: i64 = 3_600_000;

/// Days of hourly counts kept (the detail's longest trend).
pub const TREND_DAYS: i64 = 7;

/// Hours in the list items' compact trend (the sparkline).
pub const LIST_TREND_HOURS: i64 = 24;

/// The schema and the page caches: 2 MiB for the writer's connection, 1 MiB for each read
/// connection (one per handler slot).
pub const SCHEMA: Schema = Schema {
    migrations: MIGRATIONS,
    write_cache_kib: 2048,
    read_cache_kib: 1024,
};

/// A write, run on the writer thread inside a group transaction.
#[derive(Debug)]
pub enum Job {
    /// Store a report: increment, reopen or create its group. Shared with the handler, which
    /// still needs the report for the alert.
    Report {
        report: Arc<Report>,
        now_ms: i64,
        max_occurrences: u32,
    },
    /// Mark a group resolved (keeps an earlier `resolved_at`).
    Resolve { id: i64, now_ms: i64 },
    /// Mark a group unresolved.
    Unresolve { id: i64 },
    /// Resolve (`resolve: true`) or reopen several groups at once.
    UpdateMany {
        ids: Vec<i64>,
        resolve: bool,
        now_ms: i64,
    },
    /// Delete resolved groups resolved before the cutoff, and trend hours older than
    /// [`TREND_DAYS`] before `now_ms`.
    Retention { cutoff_ms: i64, now_ms: i64 },
    /// Move the groups waiting in `search_pending` into the search index, in one batch.
    IndexPending,
    /// Create or deactivate a Sentry key.
    Key(KeyJob),
}

/// What a report did to its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    Created,
    Incremented,
    Reopened,
}

impl ReportStatus {
    /// The `status` word of the response.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Created => "created",
            ReportStatus::Incremented => "incremented",
            ReportStatus::Reopened => "reopened",
        }
    }
}

/// The result of a [`Job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A report was stored in group `id`, now seen `count` times.
    Reported {
        status: ReportStatus,
        id: i64,
        count: i64,
    },
    /// Resolve/unresolve: whether the group exists.
    Updated { found: bool },
    /// A bulk resolve/reopen: for each id in the job's order, whether the group exists.
    UpdatedMany(Vec<bool>),
    /// Retention: how many groups were deleted.
    Deleted(usize),
    /// How many pending groups were added to the search index.
    Indexed(usize),
    /// The key created (or the existing one) or deactivated; `None` when there is no such key.
    Key(Option<PublicKey>),
}

/// Runs one job (called by the writer thread, inside its transaction).
pub fn apply(conn: &Connection, job: Job) -> rusqlite::Result<Outcome> {
    match job {
        Job::Report {
            report,
            now_ms,
            max_occurrences,
        } => store_report(conn, &report, now_ms, max_occurrences),
        Job::Resolve { id, now_ms } => Ok(Outcome::Updated {
            found: set_resolved(conn, id, true, now_ms)?,
        }),
        Job::Unresolve { id } => Ok(Outcome::Updated {
            found: set_resolved(conn, id, false, 0)?,
        }),
        Job::UpdateMany {
            ids,
            resolve,
            now_ms,
        } => {
            let found = ids
                .iter()
                .map(|&id| set_resolved(conn, id, resolve, now_ms))
                .collect::<rusqlite::Result<Vec<bool>>>()?;
            Ok(Outcome::UpdatedMany(found))
        }
        Job::Retention { cutoff_ms, now_ms } => {
            let deleted = conn.execute(
                "DELETE FROM errors WHERE resolved = 1 AND resolved_at < ?1",
                [cutoff_ms],
            )?;
            conn.execute(
                "DELETE FROM error_hourly WHERE hour < ?1",
                [now_ms / HOUR_MS - TREND_DAYS * 24],
            )?;
            Ok(Outcome::Deleted(deleted))
        }
        Job::IndexPending => index_pending(conn).map(Outcome::Indexed),
        Job::Key(job) => SENTRY_KEYS.apply(conn, job).map(Outcome::Key),
    }
}

/// Adds the groups waiting in `search_pending` (at most [`INDEX_BATCH`]) to the search
/// index and forgets them there; how many.
fn index_pending(conn: &Connection) -> rusqlite::Result<usize> {
    let mut pending = conn.prepare_cached(
        "SELECT id, type_folded, message_folded FROM search_pending ORDER BY id LIMIT ?1",
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO errors_search (rowid, type_folded, message_folded) VALUES (?1, ?2, ?3)",
    )?;
    let mut last_id = None;
    let mut indexed = 0;
    let mut rows = pending.query([INDEX_BATCH as i64])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        insert.execute(params![
            id,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?
        ])?;
        last_id = Some(id);
        indexed += 1;
    }
    if let Some(last_id) = last_id {
        conn.prepare_cached("DELETE FROM search_pending WHERE id <= ?1")?
            .execute([last_id])?;
    }
    Ok(indexed)
}

/// Pending groups indexed in one job at most (a few milliseconds of the writer's time).
pub const INDEX_BATCH: usize = 2048;

/// Resolves (keeping an earlier `resolved_at`) or reopens group `id`; whether it exists.
fn set_resolved(conn: &Connection, id: i64, resolve: bool, now_ms: i64) -> rusqlite::Result<bool> {
    let changed = if resolve {
        conn.prepare_cached(
            "UPDATE errors SET resolved_at = CASE WHEN resolved = 1 THEN resolved_at ELSE ?2 END,
                               resolved = 1
             WHERE id = ?1",
        )?
        .execute(params![id, now_ms])?
    } else {
        conn.prepare_cached("UPDATE errors SET resolved = 0, resolved_at = NULL WHERE id = ?1")?
            .execute([id])?
    };
    Ok(changed > 0)
}

fn store_report(
    conn: &Connection,
    report: &Report,
    now_ms: i64,
    max_occurrences: u32,
) -> rusqlite::Result<Outcome> {
    // The writer thread is the only writer, so the count read here plus one is the new count.
    let existing: Option<(i64, bool, i64)> = conn
        .prepare_cached("SELECT id, resolved, count FROM errors WHERE fingerprint = ?1")?
        .query_row([&report.fingerprint], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let browser = report.is_browser();
    let (status, id, count) = match existing {
        Some((id, resolved, count)) => {
            conn.prepare_cached(
                "UPDATE errors SET count = count + 1, last_seen = ?2, resolved = 0, resolved_at = NULL,
                                   is_browser = is_browser OR ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, now_ms, browser])?;
            let status = if resolved {
                ReportStatus::Reopened
            } else {
                ReportStatus::Incremented
            };
            (status, id, count + 1)
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO errors (fingerprint, project, environment, exception_type, message, traceback,
                                     count, first_seen, last_seen, is_browser)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?7, ?8)",
            )?
            .execute(params![
                report.fingerprint,
                report.project,
                report.environment,
                report.exception_type,
                report.message,
                report.traceback,
                now_ms,
                browser
            ])?;
            let id = conn.last_insert_rowid();
            conn.prepare_cached(
                "INSERT INTO search_pending (id, type_folded, message_folded) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                id,
                fold(&report.exception_type),
                fold(&report.message)
            ])?;
            (ReportStatus::Created, id, 1)
        }
    };
    conn.prepare_cached(
        "INSERT INTO error_occurrences (error_id, timestamp, request_url, request_method, request_headers,
                                        user_id, extra, traceback)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        id,
        now_ms,
        report.request_url,
        report.request_method,
        report.request_headers,
        report.user_id,
        report.extra,
        report.traceback
    ])?;
    conn.prepare_cached(
        "INSERT INTO error_hourly (error_id, hour, count) VALUES (?1, ?2, 1)
         ON CONFLICT (error_id, hour) DO UPDATE SET count = count + 1",
    )?
    .execute(params![id, now_ms / HOUR_MS])?;
    if let Some(session_id) = &report.session_id {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO error_sessions (session_id, error_id) VALUES (?1, ?2)",
        )?
        .execute(params![session_id, id])?;
    }
    if count > i64::from(max_occurrences) {
        // Keep the newest `max_occurrences`: delete everything at or below the oldest one
        // past that many.
        conn.prepare_cached(
            "DELETE FROM error_occurrences WHERE error_id = ?1 AND id <= (
                 SELECT id FROM error_occurrences WHERE error_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![id, max_occurrences])?;
    }
    Ok(Outcome::Reported { status, id, count })
}

/// `text` folded for search: Unicode lower case (SQLite's `lower()` only folds ASCII), `ß`
/// as `ss` and the final `ς` as `σ`, so `ÉCOLE` finds `école` and `STRASSE` finds `straße`.
fn fold(text: &str) -> String {
    let lower = text.to_lowercase();
    if lower.contains(['ß', 'ς']) {
        lower.replace('ß', "ss").replace('ς', "σ")
    } else {
        lower
    }
}

/// Adds group `id` to the search index (exception type and message never change).
fn index_for_search(
    conn: &Connection,
    id: i64,
    exception_type: &str,
    message: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO errors_search (rowid, type_folded, message_folded) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, fold(exception_type), fold(message)])?;
    Ok(())
}

/// Indexes for search the groups stored before migration 2, when `_meta` says they are
/// not yet (SQLite cannot fold Unicode case, so the migration's SQL cannot do it). One
/// transaction: an interrupted backfill is redone at the next start.
pub fn backfill_search(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let pending = tx
        .query_row(
            "SELECT 1 FROM _meta WHERE key = 'search_backfill'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !pending {
        return Ok(());
    }
    let mut indexed = 0;
    {
        let mut groups = tx.prepare(
            "SELECT id, exception_type, message FROM errors
             WHERE id NOT IN (SELECT rowid FROM errors_search)
               AND id NOT IN (SELECT id FROM search_pending)",
        )?;
        let mut rows = groups.query([])?;
        while let Some(row) = rows.next()? {
            let (id, exception_type, message): (i64, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            index_for_search(&tx, id, &exception_type, &message)?;
            indexed += 1;
        }
    }
    tx.execute("DELETE FROM _meta WHERE key = 'search_backfill'", [])?;
    tx.commit()?;
    log::info!("search index: {indexed} existing groups indexed");
    Ok(())
}

/// Which groups a list request wants.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub project: Option<String>,
    pub environment: Option<String>,
    /// `None` = all.
    pub resolved: Option<bool>,
    /// `Some(true)` = browser groups only, `Some(false)` = server groups only.
    pub browser: Option<bool>,
    pub session_id: Option<String>,
    /// Literal substring of exception type or message, in any case (Unicode case folding).
    pub search: Option<String>,
    /// `last_seen` bounds, epoch ms.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub sort: SortKey,
    pub limit: i64,
    pub offset: i64,
    /// The time the list items' trends end at (epoch ms).
    pub now_ms: i64,
}

/// List order (always descending, ties by id descending).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    LastSeen,
    FirstSeen,
    Count,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::LastSeen => "last_seen",
            SortKey::FirstSeen => "first_seen",
            SortKey::Count => "count",
        }
    }
}

/// Up to this many search matches, a list page sorts them all; beyond, it walks the sort
/// order's index and meets a page of matches soon.
const SORTED_MATCHES: i64 = 1000;

/// Characters of `message` shown in list items (the detail has it whole).
const LIST_MESSAGE_CHARS: usize = 1000;

/// A group as listed (no traceback).
#[derive(Debug, Serialize)]
pub struct GroupSummary {
    pub id: i64,
    pub fingerprint: String,
    pub project: String,
    pub environment: String,
    pub exception_type: String,
    pub message: String,
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub resolved: bool,
    pub resolved_at: Option<String>,
    pub source: &'static str,
    /// List items only: reports per hour over the last [`LIST_TREND_HOURS`] hours, oldest
    /// first, the current hour last (the sparkline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trend: Option<Vec<i64>>,
}

/// A group with its traceback, recent occurrences and hourly trend.
#[derive(Debug, Serialize)]
pub struct GroupDetail {
    #[serde(flatten)]
    pub summary: GroupSummary,
    pub traceback: String,
    pub occurrences: Vec<Occurrence>,
    /// Reports per hour, oldest first, the current hour last; hours without reports are 0.
    pub trend: Vec<TrendPoint>,
    /// The project's containers in the log viewer (`PROJECT_CONTAINERS`; set by the handler).
    pub log_containers: Vec<String>,
}

/// One hour of a group's trend.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct TrendPoint {
    /// The hour's start, RFC 3339.
    pub hour: String,
    /// Reports in that hour.
    pub count: i64,
}

/// One stored occurrence.
#[derive(Debug, Serialize)]
pub struct Occurrence {
    pub id: i64,
    pub timestamp: String,
    pub request_url: Option<String>,
    pub request_method: Option<String>,
    pub request_headers: Value,
    pub user_id: Option<String>,
    pub extra: Value,
    pub traceback: String,
}

const SUMMARY_COLUMNS: &str =
    "id, fingerprint, project, environment, exception_type, message, count,
     first_seen, last_seen, resolved, resolved_at, is_browser";

fn summary_from_row(row: &Row) -> rusqlite::Result<GroupSummary> {
    let resolved_at: Option<i64> = row.get(10)?;
    let is_browser: bool = row.get(11)?;
    Ok(GroupSummary {
        id: row.get(0)?,
        fingerprint: row.get(1)?,
        project: row.get(2)?,
        environment: row.get(3)?,
        exception_type: row.get(4)?,
        message: row.get(5)?,
        count: row.get(6)?,
        first_seen: format_ms(row.get(7)?),
        last_seen: format_ms(row.get(8)?),
        resolved: row.get(9)?,
        resolved_at: resolved_at.map(format_ms),
        source: if is_browser { "browser" } else { "server" },
        trend: None,
    })
}

/// The ids of the groups whose folded exception type or message contains `term` (folded),
/// as a subquery, and its values. Indexed groups are found by the trigram index (three
/// characters or more) or a scan of its texts (fewer: `instr` matches literally, so `%` and
/// `_` match themselves); groups not indexed yet are in `search_pending`, a few hundred rows
/// at most, scanned.
fn search_matches(term: &str) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as Sql;
    let text = || Sql::Text(term.to_string());
    let (indexed, mut values) = if term.chars().count() >= 3 {
        let phrase = format!("\"{}\"", term.replace('"', "\"\""));
        (
            "SELECT rowid AS matched_id FROM errors_search WHERE errors_search MATCH ?",
            vec![Sql::Text(phrase)],
        )
    } else {
        (
            "SELECT rowid AS matched_id FROM errors_search
             WHERE instr(type_folded, ?) > 0 OR instr(message_folded, ?) > 0",
            vec![text(), text()],
        )
    };
    values.extend([text(), text()]);
    let ids = format!(
        "{indexed} UNION ALL SELECT id FROM search_pending
         WHERE instr(type_folded, ?) > 0 OR instr(message_folded, ?) > 0"
    );
    (ids, values)
}

/// The groups matching `filter` (one page) and how many match in all.
pub fn list(conn: &Connection, filter: &ListFilter) -> rusqlite::Result<(Vec<GroupSummary>, i64)> {
    use rusqlite::types::Value as Sql;
    let mut conditions: Vec<&str> = Vec::new();
    let mut values: Vec<Sql> = Vec::new();
    if let Some(resolved) = filter.resolved {
        conditions.push("resolved = ?");
        values.push(Sql::Integer(resolved.into()));
    }
    if let Some(project) = &filter.project {
        conditions.push("project = ?");
        values.push(Sql::Text(project.clone()));
    }
    if let Some(environment) = &filter.environment {
        conditions.push("environment = ?");
        values.push(Sql::Text(environment.clone()));
    }
    if let Some(browser) = filter.browser {
        conditions.push("is_browser = ?");
        values.push(Sql::Integer(browser.into()));
    }
    if let Some(session_id) = &filter.session_id {
        conditions.push("id IN (SELECT error_id FROM error_sessions WHERE session_id = ?)");
        values.push(Sql::Text(session_id.clone()));
    }
    if let Some(since) = filter.since_ms {
        conditions.push("last_seen >= ?");
        values.push(Sql::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        conditions.push("last_seen <= ?");
        values.push(Sql::Integer(until));
    }
    let matched = filter
        .search
        .as_deref()
        .map(fold)
        .filter(|s| !s.is_empty())
        .map(|term| search_matches(&term));
    let where_sql = |search: Option<&str>| {
        let all: Vec<&str> = search
            .into_iter()
            .chain(conditions.iter().copied())
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    };
    let mut values: Vec<Sql> = match &matched {
        Some((_, search_values)) => search_values.iter().cloned().chain(values).collect(),
        None => values,
    };
    // The matches drive the count (each looked up by id), whatever the other filters.
    let driven_by_matches = matched.as_ref().map(|(ids, _)| {
        format!("({ids}) AS matched CROSS JOIN errors ON errors.id = matched.matched_id")
    });
    let count_from = driven_by_matches.as_deref().unwrap_or("errors");
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM {count_from}{}",
            where_sql(None)
        ))?
        .query_row(params_from_iter(values.iter()), |row| row.get(0))?;
    // The page: a few matches are sorted; many are met soon along the sort order's index.
    let many_matches = matched
        .as_ref()
        .filter(|_| total > SORTED_MATCHES)
        .map(|(ids, _)| format!("id IN ({ids})"));
    let page_from = match &many_matches {
        Some(_) => "errors",
        None => count_from,
    };
    let sort = filter.sort.column();
    let page_sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM {page_from}{} ORDER BY {sort} DESC, id DESC LIMIT ? OFFSET ?",
        where_sql(many_matches.as_deref())
    );
    values.push(Sql::Integer(filter.limit));
    values.push(Sql::Integer(filter.offset));
    let mut statement = conn.prepare_cached(&page_sql)?;
    let groups = statement
        .query_map(params_from_iter(values.iter()), |row| {
            let mut group = summary_from_row(row)?;
            group.message = shorten(&group.message, LIST_MESSAGE_CHARS);
            Ok(group)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let groups = with_list_trends(conn, groups, filter.now_ms)?;
    Ok((groups, total))
}

/// Adds each listed group's compact trend: one query for the page, an index range per group.
fn with_list_trends(
    conn: &Connection,
    mut groups: Vec<GroupSummary>,
    now_ms: i64,
) -> rusqlite::Result<Vec<GroupSummary>> {
    if groups.is_empty() {
        return Ok(groups);
    }
    let first_hour = now_ms / HOUR_MS - (LIST_TREND_HOURS - 1);
    let mut counts: std::collections::HashMap<i64, Vec<i64>> = groups
        .iter()
        .map(|g| (g.id, vec![0; LIST_TREND_HOURS as usize]))
        .collect();
    // One placeholder per listed group (a page holds at most 200).
    let placeholders = vec!["?"; groups.len()].join(", ");
    let mut statement = conn.prepare_cached(&format!(
        "SELECT error_id, hour, count FROM error_hourly
         WHERE hour >= ? AND hour < ? AND error_id IN ({placeholders})"
    ))?;
    let hours = [first_hour, first_hour + LIST_TREND_HOURS];
    let values = hours.into_iter().chain(groups.iter().map(|g| g.id));
    let mut rows = statement.query(params_from_iter(values))?;
    while let Some(row) = rows.next()? {
        let (id, hour, count): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if let Some(slot) = counts
            .get_mut(&id)
            .and_then(|c| c.get_mut((hour - first_hour) as usize))
        {
            *slot = count;
        }
    }
    for group in &mut groups {
        group.trend = counts.remove(&group.id);
    }
    Ok(groups)
}

/// Group `id`'s reports per hour over the `hours` hours up to the one holding `now_ms`.
fn trend(conn: &Connection, id: i64, hours: i64, now_ms: i64) -> rusqlite::Result<Vec<TrendPoint>> {
    let first_hour = now_ms / HOUR_MS - (hours - 1);
    let mut counts = vec![0; hours.max(0) as usize];
    let mut statement = conn.prepare_cached(
        "SELECT hour, count FROM error_hourly WHERE error_id = ?1 AND hour >= ?2 AND hour < ?3",
    )?;
    let mut rows = statement.query(params![id, first_hour, first_hour + hours])?;
    while let Some(row) = rows.next()? {
        let (hour, count): (i64, i64) = (row.get(0)?, row.get(1)?);
        if let Some(slot) = counts.get_mut((hour - first_hour) as usize) {
            *slot = count;
        }
    }
    Ok(counts
        .into_iter()
        .zip(first_hour..)
        .map(|(count, hour)| TrendPoint {
            hour: format_ms(hour * HOUR_MS),
            count,
        })
        .collect())
}

/// `text` cut to `max_chars` characters, with `…` when cut.
fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// One group with its occurrences (newest first) and its trend over `trend_hours` hours up
/// to `now_ms`, or `None` if there is no such group.
pub fn detail(
    conn: &Connection,
    id: i64,
    trend_hours: i64,
    now_ms: i64,
) -> rusqlite::Result<Option<GroupDetail>> {
    let group = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, traceback FROM errors WHERE id = ?1"
        ))?
        .query_row([id], |row| {
            Ok((summary_from_row(row)?, row.get::<_, String>(12)?))
        })
        .optional()?;
    let Some((summary, traceback)) = group else {
        return Ok(None);
    };
    let occurrences = conn
        .prepare_cached(
            "SELECT id, timestamp, request_url, request_method, request_headers, user_id, extra, traceback
             FROM error_occurrences WHERE error_id = ?1 ORDER BY id DESC",
        )?
        .query_map([id], |row| {
            Ok(Occurrence {
                id: row.get(0)?,
                timestamp: format_ms(row.get(1)?),
                request_url: row.get(2)?,
                request_method: row.get(3)?,
                request_headers: json_column(row.get(4)?),
                user_id: row.get(5)?,
                extra: json_column(row.get(6)?),
                traceback: row.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(GroupDetail {
        summary,
        traceback,
        occurrences,
        trend: trend(conn, id, trend_hours, now_ms)?,
        log_containers: Vec::new(),
    }))
}

/// A stored JSON text as a JSON value (`null` when absent).
fn json_column(text: Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// The distinct values of `project` or `environment`, sorted.
pub fn distinct(conn: &Connection, column: DistinctColumn) -> rusqlite::Result<Vec<String>> {
    let sql = match column {
        DistinctColumn::Project => "SELECT DISTINCT project FROM errors ORDER BY project",
        DistinctColumn::Environment => {
            "SELECT DISTINCT environment FROM errors ORDER BY environment"
        }
    };
    conn.prepare_cached(sql)?
        .query_map([], |row| row.get(0))?
        .collect()
}

/// A column [`distinct`] can list.
#[derive(Debug, Clone, Copy)]
pub enum DistinctColumn {
    Project,
    Environment,
}

/// Figures for `/health`: groups in all and unresolved.
pub fn health_counts(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.prepare_cached("SELECT count(*), coalesce(sum(resolved = 0), 0) FROM errors")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_report;
    use serde_json::json;

    fn migrated(migrations: &[&str]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        shared::db::migrate(&mut conn, migrations).unwrap();
        conn
    }

    fn store(conn: &Connection, exception_type: &str, message: &str) -> i64 {
        let report = parse_report(&json!({"project": "p", "exception_type": exception_type,
            "message": message, "traceback": format!("{exception_type}: {message}")}))
        .unwrap();
        let job = Job::Report {
            report: Arc::new(report),
            now_ms: 1,
            max_occurrences: 5,
        };
        match apply(conn, job).unwrap() {
            Outcome::Reported { id, .. } => id,
            other => panic!("{other:?}"),
        }
    }

    fn search(conn: &Connection, text: &str) -> Vec<i64> {
        let filter = ListFilter {
            search: Some(text.to_string()),
            limit: 50,
            ..ListFilter::default()
        };
        let (groups, total) = list(conn, &filter).unwrap();
        assert_eq!(total as usize, groups.len(), "{text:?}");
        let mut ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn fold_lowers_unicode_and_sharp_s_and_final_sigma() {
        for (text, folded) in [
            ("ÉCOLE", "école"),
            ("Straße", "strasse"),
            ("STRASSE", "strasse"),
            ("ΟΔΟΣ", "οδοσ"),
            ("οδος", "οδοσ"),
            ("KeyError", "keyerror"),
            ("100% _x_", "100% _x_"),
        ] {
            assert_eq!(fold(text), folded, "{text:?}");
        }
    }

    #[test]
    fn search_is_case_insensitive_beyond_ascii_for_short_and_long_terms() {
        let conn = migrated(MIGRATIONS);
        let ecole = store(&conn, "ÜberError", "l'école est fermée");
        let street = store(&conn, "ValueError", "Straße gesperrt");
        let other = store(&conn, "KeyError", "\"quoted\" 100%");
        assert_eq!(search(&conn, "ÉCOLE"), vec![ecole]);
        assert_eq!(search(&conn, "überERROR"), vec![ecole]);
        assert_eq!(search(&conn, "STRASSE"), vec![street]);
        assert_eq!(search(&conn, "straße"), vec![street]);
        assert_eq!(search(&conn, "É"), vec![ecole], "one character: the scan");
        assert_eq!(search(&conn, "ÉES"), Vec::<i64>::new());
        assert_eq!(search(&conn, "ÉE"), vec![ecole], "two characters: the scan");
        assert_eq!(
            search(&conn, "\"QUOTED\""),
            vec![other],
            "quotes are literal"
        );
        assert_eq!(search(&conn, "0%"), vec![other]);
        assert_eq!(search(&conn, "error"), vec![ecole, street, other]);
        assert_eq!(search(&conn, ""), vec![ecole, street, other]);
    }

    #[test]
    fn new_groups_are_found_while_pending_and_after_batch_indexing() {
        let conn = migrated(MIGRATIONS);
        let ecole = store(&conn, "ÉcoleError", "fermée");
        let street = store(&conn, "KeyError", "Straße");
        let pending = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(pending(&conn), 2, "new groups wait for the batch");
        for (term, expected) in [
            ("ÉCOLE", vec![ecole]),
            ("ss", vec![street]),
            ("error", vec![ecole, street]),
        ] {
            assert_eq!(search(&conn, term), expected, "pending, {term:?}");
        }
        assert_eq!(
            apply(&conn, Job::IndexPending).unwrap(),
            Outcome::Indexed(2)
        );
        assert_eq!(pending(&conn), 0);
        assert_eq!(
            apply(&conn, Job::IndexPending).unwrap(),
            Outcome::Indexed(0)
        );
        let later = store(&conn, "ÉcoleError", "encore");
        for (term, expected) in [
            ("ÉCOLE", vec![ecole, later]),
            ("ss", vec![street]),
            ("error", vec![ecole, street, later]),
        ] {
            assert_eq!(
                search(&conn, term),
                expected,
                "indexed and pending, {term:?}"
            );
        }
        // A deleted group leaves both the index and the pending table.
        conn.execute("DELETE FROM errors WHERE id IN (?1, ?2)", [ecole, later])
            .unwrap();
        assert_eq!(pending(&conn), 0);
        assert_eq!(search(&conn, "école"), Vec::<i64>::new());
    }

    #[test]
    fn a_page_of_many_matches_is_sorted_like_a_page_of_few() {
        let conn = migrated(MIGRATIONS);
        let ids: Vec<i64> = (0..SORTED_MATCHES + 5)
            .map(|n| store(&conn, "BulkError", &format!("bulk {n}")))
            .collect();
        let filter = ListFilter {
            search: Some("BULK".to_string()),
            limit: 3,
            offset: 1,
            ..ListFilter::default()
        };
        let (groups, total) = list(&conn, &filter).unwrap();
        assert_eq!(total, SORTED_MATCHES + 5);
        let page: Vec<i64> = groups.iter().map(|g| g.id).collect();
        let newest: Vec<i64> = ids.iter().rev().skip(1).take(3).copied().collect();
        assert_eq!(page, newest, "same last_seen: ties by id descending");
    }

    #[test]
    fn migrating_an_existing_database_indexes_its_groups_for_search() {
        let mut conn = migrated(&MIGRATIONS[..1]);
        conn.execute(
            "INSERT INTO errors (fingerprint, project, environment, exception_type, message,
                                 traceback, count, first_seen, last_seen)
             VALUES ('f', 'p', 'prod', 'ÉchecError', 'CAFÉ fermé', '', 1, 1, 1)",
            [],
        )
        .unwrap();
        shared::db::migrate(&mut conn, MIGRATIONS).unwrap();
        backfill_search(&mut conn).unwrap();
        assert_eq!(search(&conn, "café"), vec![1]);
        assert_eq!(search(&conn, "échecerror"), vec![1]);
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM _meta WHERE key = 'search_backfill'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 0, "the backfill is recorded as done");
        let retention = apply(
            &conn,
            Job::Retention {
                cutoff_ms: i64::MAX,
                now_ms: 0,
            },
        )
        .unwrap();
        assert_eq!(retention, Outcome::Deleted(0), "unresolved groups stay");
        conn.execute("DELETE FROM errors WHERE id = 1", []).unwrap();
        let indexed: i64 = conn
            .query_row("SELECT count(*) FROM errors_search", [], |r| r.get(0))
            .unwrap();
        assert_eq!(indexed, 0, "deleting a group removes it from the index");
    }

    #[test]
    fn migrating_fills_the_trend_from_the_occurrences_kept() {
        let mut conn = migrated(&MIGRATIONS[..2]);
        conn.execute_batch(
            "INSERT INTO errors (id, fingerprint, project, environment, exception_type, message,
                                 traceback, count, first_seen, last_seen)
             VALUES (1, 'f', 'p', 'prod', 'E', 'm', '', 3, 0, 7200000);
             INSERT INTO error_occurrences (error_id, timestamp, traceback)
             VALUES (1, 60000, ''), (1, 120000, ''), (1, 7200000, '');",
        )
        .unwrap();
        shared::db::migrate(&mut conn, MIGRATIONS).unwrap();
        let group = detail(&conn, 1, 3, 7_200_000).unwrap().unwrap();
        let counts: Vec<i64> = group.trend.iter().map(|p| p.count).collect();
        assert_eq!(counts, vec![2, 0, 1]);
        assert_eq!(group.trend[0].hour, "1970-01-01T00:00:00Z");
        assert_eq!(group.trend[2].hour, "1970-01-01T02:00:00Z");
        let version: String = conn
            .query_row(
                "SELECT value FROM _meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(version, MIGRATIONS.len().to_string());
    }

    #[test]
    fn a_fresh_database_needs_no_backfill() {
        let mut conn = migrated(MIGRATIONS);
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM _meta WHERE key = 'search_backfill'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pending, 0);
        backfill_search(&mut conn).unwrap();
    }

    #[test]
    fn shorten_counts_characters() {
        assert_eq!(shorten("héllo", 10), "héllo");
        assert_eq!(shorten("héllo", 2), "hé…");
    }
}
