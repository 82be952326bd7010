//! Schema, migrations and every SQL statement of the relay: DSN keys, source maps, and the
//! outbox — payloads accepted from browsers, kept until their upstream answered `2xx` (or a
//! `4xx` that retrying cannot fix). All writes run on the writer thread ([`apply`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use shared::keys::{KeyJob, KeyTable, PublicKey};
use shared::service::Schema;
use shared::time::format_ms;

/// Schema migrations, in order; `_meta.schema_version` counts the applied ones.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE dsn_keys (
    id         INTEGER PRIMARY KEY,
    public_key TEXT    NOT NULL UNIQUE,
    project    TEXT    NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL -- epoch ms
);

-- Matched by (project, release, path of the script URL).
CREATE TABLE source_maps (
    id          INTEGER PRIMARY KEY,
    project     TEXT    NOT NULL,
    release     TEXT    NOT NULL,
    file_path   TEXT    NOT NULL,
    file_url    TEXT    NOT NULL,
    content     BLOB    NOT NULL,
    size        INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL -- epoch ms
);
CREATE UNIQUE INDEX maps_by_file ON source_maps (project, release, file_path);
CREATE INDEX maps_by_upload ON source_maps (uploaded_at);

-- Accepted payloads waiting for their upstream, in order; `body` is what is sent (an error
-- report, or a JSON array of metric points).
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    upstream   TEXT    NOT NULL, -- errors, metrics
    body       TEXT    NOT NULL,
    points     INTEGER NOT NULL, -- metric points in body (1 for an error)
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_by_upstream ON outbox (upstream, id);
"#,
    r#"
-- Where an entry goes on its upstream, with its query (Sentry envelopes go to their
-- project's envelope endpoint); NULL is the upstream's own path.
ALTER TABLE outbox ADD COLUMN path TEXT;
"#,
];

/// The schema and the page caches (1 MiB writer, 512 KiB per reader).
pub const SCHEMA: Schema = Schema {
    migrations: MIGRATIONS,
    write_cache_kib: 1024,
    read_cache_kib: 512,
};

/// Where an outbox entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// error-tracker `POST /api/errors`, one entry per request.
    Errors,
    /// metrics-collector `POST /api/metrics`, entries joined into batches of ≤ 1000 points.
    Metrics,
}

impl Upstream {
    /// The name in the database and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Upstream::Errors => "errors",
            Upstream::Metrics => "metrics",
        }
    }
}

/// A source map as listed (no content).
#[derive(Debug, Clone, Serialize)]
pub struct SourceMapInfo {
    pub id: i64,
    pub project: String,
    pub release: String,
    pub file_url: String,
    pub size: i64,
    pub uploaded_at: String,
}

/// What is queued for an upstream.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The request body: an error report, a JSON array of metric points, or a Sentry envelope.
    pub body: String,
    /// Metric points in `body` (1 for an error).
    pub points: usize,
    /// A Sentry envelope's path and query on the error-tracker; `None` for a JSON body to
    /// the upstream's own path ([`Upstream`]).
    pub path: Option<String>,
}

/// An outbox entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub payload: Payload,
}

/// A write, run on the writer thread inside a group transaction.
#[derive(Debug)]
pub enum Job {
    /// Create or deactivate a DSN key.
    Key(KeyJob),
    /// Store a source map, replacing the one of the same (project, release, path).
    PutMap {
        project: String,
        release: String,
        file_path: String,
        file_url: String,
        content: Vec<u8>,
        now_ms: i64,
    },
    /// Delete a source map.
    DeleteMap { id: i64 },
    /// Delete source maps uploaded before the cutoff.
    RetainMaps { cutoff_ms: i64 },
    /// Queue a payload for an upstream unless the outbox holds `limit` entries already.
    Enqueue {
        upstream: Upstream,
        payload: Payload,
        limit: usize,
        now_ms: i64,
    },
    /// Remove delivered (`forwarded`) or undeliverable entries and count them.
    Done { ids: Vec<i64>, forwarded: bool },
}

/// What a [`Job`] did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The key created (or the existing one) or deactivated; `None` when there is no such key.
    Key(Option<PublicKey>),
    /// The deleted map's id, or `None` when there was no such map.
    Found(Option<i64>),
    /// A map stored (or replaced in place): its id.
    Map(i64),
    /// Rows deleted.
    Deleted(usize),
    /// Queued, or refused because the outbox is full (counted as dropped).
    Queued(bool),
    /// Done.
    Done,
}

/// The `_meta` keys of the delivery counters.
const FORWARDED: &str = "forwarded";
const DROPPED: &str = "dropped";

/// The outbox's depth, kept by the writer (the only one that changes it).
#[derive(Debug, Default)]
pub struct Depth(AtomicUsize);

impl Depth {
    /// Entries waiting.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The outbox's depth as stored, for the start.
pub fn load_depth(conn: &Connection) -> rusqlite::Result<Arc<Depth>> {
    let n: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
    Ok(Arc::new(Depth(AtomicUsize::new(n as usize))))
}

/// Runs one job (on the writer thread, inside the group's transaction).
pub fn apply(conn: &Connection, depth: &Depth, job: Job) -> rusqlite::Result<Outcome> {
    match job {
        Job::Key(job) => Ok(Outcome::Key(DSN_KEYS.apply(conn, job)?)),
        Job::PutMap {
            project,
            release,
            file_path,
            file_url,
            content,
            now_ms,
        } => {
            let id = conn
                .prepare_cached(
                    "INSERT INTO source_maps (project, release, file_path, file_url, content, size, uploaded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (project, release, file_path) DO UPDATE SET
                         file_url = excluded.file_url, content = excluded.content,
                         size = excluded.size, uploaded_at = excluded.uploaded_at
                     RETURNING id",
                )?
                .query_row(
                    params![project, release, file_path, file_url, content, content.len() as i64, now_ms],
                    |r| r.get(0),
                )?;
            Ok(Outcome::Map(id))
        }
        Job::DeleteMap { id } => {
            let n = conn
                .prepare_cached("DELETE FROM source_maps WHERE id = ?1")?
                .execute([id])?;
            Ok(Outcome::Found((n > 0).then_some(id)))
        }
        Job::RetainMaps { cutoff_ms } => {
            let n = conn
                .prepare_cached("DELETE FROM source_maps WHERE uploaded_at < ?1")?
                .execute([cutoff_ms])?;
            Ok(Outcome::Deleted(n))
        }
        Job::Enqueue {
            upstream,
            payload,
            limit,
            now_ms,
        } => {
            if depth.get() >= limit {
                add_to_counter(conn, DROPPED, 1)?;
                return Ok(Outcome::Queued(false));
            }
            conn.prepare_cached(
                "INSERT INTO outbox (upstream, body, points, path, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                upstream.as_str(),
                payload.body,
                payload.points as i64,
                payload.path,
                now_ms
            ])?;
            depth.0.fetch_add(1, Ordering::SeqCst);
            Ok(Outcome::Queued(true))
        }
        Job::Done { ids, forwarded } => {
            let mut delete = conn.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            let mut n = 0;
            for id in ids {
                n += delete.execute([id])?;
            }
            depth.0.fetch_sub(n.min(depth.get()), Ordering::SeqCst);
            add_to_counter(conn, if forwarded { FORWARDED } else { DROPPED }, n)?;
            Ok(Outcome::Done)
        }
    }
}

fn add_to_counter(conn: &Connection, key: &str, n: usize) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO _meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
    )?
    .execute(params![key, n as i64])?;
    Ok(())
}

/// `forwarded` and `dropped`, since the database was created.
pub fn counters(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let get = |key: &str| -> rusqlite::Result<i64> {
        let value: Option<String> = conn
            .prepare_cached("SELECT value FROM _meta WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    };
    Ok((get(FORWARDED)?, get(DROPPED)?))
}

/// The DSN keys' table.
pub const DSN_KEYS: KeyTable = KeyTable::new("dsn_keys");

/// Source maps (of `project`, or all), newest first, without content.
pub fn maps(conn: &Connection, project: Option<&str>) -> rusqlite::Result<Vec<SourceMapInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, project, release, file_url, size, uploaded_at FROM source_maps
         WHERE ?1 IS NULL OR project = ?1 ORDER BY uploaded_at DESC, id DESC",
    )?;
    let rows = stmt.query_map([project], |row| {
        Ok(SourceMapInfo {
            id: row.get(0)?,
            project: row.get(1)?,
            release: row.get(2)?,
            file_url: row.get(3)?,
            size: row.get(4)?,
            uploaded_at: format_ms(row.get(5)?),
        })
    })?;
    rows.collect()
}

/// The id of the map for a script, if one was uploaded.
pub fn find_map(
    conn: &Connection,
    project: &str,
    release: &str,
    file_path: &str,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT id FROM source_maps WHERE project = ?1 AND release = ?2 AND file_path = ?3",
    )?
    .query_row([project, release, file_path], |r| r.get(0))
    .optional()
}

/// A map's content.
pub fn map_content(conn: &Connection, id: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT content FROM source_maps WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

/// The oldest entries for `upstream`: at most `limit`, and no more than `max_bytes` of bodies
/// (but always the first one), so a backlog of large payloads is read a little at a time.
pub fn head(
    conn: &Connection,
    upstream: Upstream,
    limit: usize,
    max_bytes: usize,
) -> rusqlite::Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body, points, path FROM outbox WHERE upstream = ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![upstream.as_str(), limit as i64])?;
    let (mut entries, mut bytes) = (Vec::new(), 0);
    while let Some(row) = rows.next()? {
        let body: String = row.get(1)?;
        bytes += body.len();
        if !entries.is_empty() && bytes > max_bytes {
            break;
        }
        entries.push(Entry {
            id: row.get(0)?,
            payload: Payload {
                body,
                points: row.get::<_, i64>(2)? as usize,
                path: row.get(3)?,
            },
        });
    }
    Ok(entries)
}
