//! Schema, migrations and every write of the metrics-collector: storing batches, rolling
//! minutes and hours up, retention. All writes run on the writer thread ([`apply`]); the
//! reads are in [`crate::read`].
//!
//! The aggregation state lives in `_meta`, so restarts, pauses and clock jumps neither skip
//! nor repeat a minute:
//! - `minute_watermark`: every minute before it is rolled up; a point stored for such a minute
//!   (a late point) marks it in `dirty_minutes`, and the next run rolls it up again.
//! - `hour_watermark`: likewise for hours (`dirty_hours`), which roll up from their minutes
//!   once all of them are rolled up.
//! - `raw_deleted_before` / `minute_deleted_before`: where retention last cut raw points and
//!   minute rollups. A minute before the first is rolled up again by merging its new points
//!   into the stored rollup (the rest of its raw points are gone), an hour before the second
//!   by merging the changed minute into it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Row};
use shared::service::Schema;

use crate::config::Retention;
use crate::ingest::{Batch, Kind, SeriesKey};
use crate::rollup::{Rollup, Sketch};

/// Schema migrations, in order; `_meta.schema_version` counts the applied ones.
pub const MIGRATIONS: &[&str] = &[r#"
-- The series dictionary: one row per name, type, project and canonical label set, so a
-- label set is stored once and queries by name or label touch only the series that match.
CREATE TABLE series (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    type       TEXT    NOT NULL, -- counter, histogram, gauge
    project    TEXT    NOT NULL,
    labels     TEXT    NOT NULL, -- canonical JSON: keys sorted, values strings
    first_seen INTEGER NOT NULL, -- epoch ms of its oldest point
    last_seen  INTEGER NOT NULL  -- epoch ms of its newest point
);
CREATE UNIQUE INDEX series_by_key ON series (name, type, project, labels);
CREATE INDEX series_by_project ON series (project, name);
CREATE INDEX series_by_last_seen ON series (last_seen);

-- Raw points, kept until rolled up and RETENTION_RAW old.
CREATE TABLE points (
    minute    INTEGER NOT NULL, -- epoch ms / 60,000, rounded down
    series_id INTEGER NOT NULL,
    ts        INTEGER NOT NULL, -- epoch ms
    value     REAL    NOT NULL
);
CREATE INDEX points_by_minute ON points (minute, series_id);

-- Rollups: `bucket` is the epoch minute (or hour); percentiles for histograms only (exact
-- for a minute, from the merged sketch for an hour); `sketch` is the histogram's DDSketch.
CREATE TABLE rollups_minute (
    series_id INTEGER NOT NULL,
    bucket    INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    sum       REAL    NOT NULL,
    min       REAL    NOT NULL,
    max       REAL    NOT NULL,
    last      REAL    NOT NULL,
    last_ms   INTEGER NOT NULL,
    p50 REAL, p75 REAL, p90 REAL, p95 REAL, p99 REAL,
    sketch    BLOB,
    PRIMARY KEY (series_id, bucket)
) WITHOUT ROWID;
-- Covering the sums of the dashboard and /health.
CREATE INDEX rollups_minute_by_bucket ON rollups_minute (bucket, series_id, count, sum);

CREATE TABLE rollups_hour (
    series_id INTEGER NOT NULL,
    bucket    INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    sum       REAL    NOT NULL,
    min       REAL    NOT NULL,
    max       REAL    NOT NULL,
    last      REAL    NOT NULL,
    last_ms   INTEGER NOT NULL,
    p50 REAL, p75 REAL, p90 REAL, p95 REAL, p99 REAL,
    sketch    BLOB,
    PRIMARY KEY (series_id, bucket)
) WITHOUT ROWID;
CREATE INDEX rollups_hour_by_bucket ON rollups_hour (bucket, series_id, count, sum);

-- Rolled-up minutes and hours that got late points and must be rolled up again.
CREATE TABLE dirty_minutes (minute INTEGER PRIMARY KEY);
CREATE TABLE dirty_hours (hour INTEGER PRIMARY KEY);
"#];

/// The schema and the page caches: 2 MiB for the writer's connection, 1 MiB for each read
/// connection (one per handler slot).
pub const SCHEMA: Schema = Schema {
    migrations: MIGRATIONS,
    write_cache_kib: 2048,
    read_cache_kib: 1024,
};

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Minutes in an hour.
pub const HOUR_MINUTES: i64 = 60;

/// The `_meta` keys of the aggregation state (see the module documentation).
pub mod meta {
    pub const MINUTE_WATERMARK: &str = "minute_watermark";
    pub const HOUR_WATERMARK: &str = "hour_watermark";
    pub const RAW_DELETED_BEFORE: &str = "raw_deleted_before";
    pub const MINUTE_DELETED_BEFORE: &str = "minute_deleted_before";
    pub const LAST_AGGREGATION: &str = "last_aggregation";
}

/// Raw points rolled up by one job at most (whole minutes: the last one may go beyond), and
/// minutes: a larger transaction rewrote fewer pages but held more memory (measured with
/// `bench-metrics-collector`: 100,000 points raised the peak by 5 MiB).
const ROLL_BUDGET_POINTS: usize = 20_000;
const ROLL_BUDGET_MINUTES: usize = 60;
/// Hours rolled up by one job at most.
const ROLL_BUDGET_HOURS: usize = 24;

/// Raw points deleted by one retention job at most, so that ingest interleaves.
pub const RETENTION_BATCH: usize = 50_000;

/// A write, run on the writer thread inside a group transaction.
#[derive(Debug)]
pub enum Job {
    /// Store a validated batch.
    Store(Batch),
    /// Roll up the next complete minutes that need it (before the minute of `now_ms`), up to
    /// a budget of points.
    RollMinute { now_ms: i64 },
    /// Roll up the next complete hours that need it (up to a day of them).
    RollHour,
    /// Delete what each tier no longer keeps (raw points in batches of
    /// [`RETENTION_BATCH`]).
    Retention { now_ms: i64, retention: Retention },
    /// Record the end of a successful aggregation run.
    Finished { now_ms: i64 },
}

/// What a [`Job`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Points stored.
    Stored(usize),
    /// Minutes or hours rolled up (0: none was left).
    Rolled(usize),
    /// Rows deleted by retention (raw points, minute rollups, hour rollups, series).
    Deleted([usize; 4]),
    /// Done.
    Done,
}

/// Series ids by key, so a batch of points costs no lookups for known series. Bounded by the
/// bytes of its keys; emptied when a transaction rolls back (an id it holds may be undone).
#[derive(Default)]
pub struct SeriesCache {
    ids: HashMap<SeriesKey, i64>,
    bytes: usize,
    rolled_back: Arc<AtomicBool>,
    /// Whether rollbacks reach `rolled_back`; without the hook the cache lasts one job.
    hooked: bool,
}

/// Bytes of cached series keys at most (~10,000 typical series).
const CACHE_BYTES: usize = 2 * 1024 * 1024;

impl SeriesCache {
    /// A cache that the writer connection's rollbacks empty.
    pub fn for_connection(conn: &mut Connection) -> SeriesCache {
        let mut cache = SeriesCache::default();
        let flag = Arc::clone(&cache.rolled_back);
        match conn.rollback_hook(Some(move || flag.store(true, Ordering::SeqCst))) {
            Ok(()) => cache.hooked = true,
            Err(e) => log::warn!("cannot hook rollbacks ({e}): series ids are cached per batch"),
        }
        cache
    }

    fn clear(&mut self) {
        self.ids.clear();
        self.bytes = 0;
    }

    /// The id of `key`'s series, created when new.
    fn id(&mut self, conn: &Connection, key: &SeriesKey, at_ms: i64) -> rusqlite::Result<i64> {
        if let Some(&id) = self.ids.get(key) {
            return Ok(id);
        }
        let kind = key.kind.as_str();
        let found: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM series WHERE name = ?1 AND type = ?2 AND project = ?3 AND labels = ?4",
            )?
            .query_row(params![key.name, kind, key.project, key.labels], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => conn
                .prepare_cached(
                    "INSERT INTO series (name, type, project, labels, first_seen, last_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id",
                )?
                .query_row(
                    params![key.name, kind, key.project, key.labels, at_ms],
                    |r| r.get(0),
                )?,
        };
        let size = key.name.len() + key.project.len() + key.labels.len() + 64;
        if self.bytes + size > CACHE_BYTES {
            self.clear();
        }
        self.bytes += size;
        self.ids.insert(key.clone(), id);
        Ok(id)
    }
}

/// Runs one job (on the writer thread, inside the group's transaction).
pub fn apply(conn: &Connection, cache: &mut SeriesCache, job: Job) -> rusqlite::Result<Outcome> {
    if cache.rolled_back.swap(false, Ordering::SeqCst) || !cache.hooked {
        cache.clear();
    }
    let outcome = match job {
        Job::Store(batch) => store(conn, cache, &batch).map(Outcome::Stored),
        Job::RollMinute { now_ms } => {
            // Several minutes per transaction while catching up (consecutive minutes of a
            // series share pages), within a budget of points so that batches interleave.
            let (mut minutes, mut points) = (0, 0);
            while points < ROLL_BUDGET_POINTS && minutes < ROLL_BUDGET_MINUTES {
                match roll_next_minute(conn, now_ms)? {
                    Some(n) => (minutes, points) = (minutes + 1, points + n.max(1)),
                    None => break,
                }
            }
            Ok(Outcome::Rolled(minutes))
        }
        Job::RollHour => {
            let mut hours = 0;
            while hours < ROLL_BUDGET_HOURS && roll_next_hour(conn)?.is_some() {
                hours += 1;
            }
            Ok(Outcome::Rolled(hours))
        }
        Job::Retention { now_ms, retention } => {
            let deleted = apply_retention(conn, now_ms, retention)?;
            if deleted[3] > 0 {
                cache.clear();
            }
            Ok(Outcome::Deleted(deleted))
        }
        Job::Finished { now_ms } => {
            set_meta(conn, meta::LAST_AGGREGATION, now_ms)?;
            Ok(Outcome::Done)
        }
    };
    if outcome.is_err() {
        // The job's savepoint is rolled back: series it created are gone again.
        cache.clear();
    }
    outcome
}

/// An integer from `_meta`.
pub fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM _meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(text.and_then(|t| t.parse().ok()))
}

fn set_meta(conn: &Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO _meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value.to_string()])?;
    Ok(())
}

/// Stores a batch; a point for a minute already rolled up marks that minute dirty.
fn store(conn: &Connection, cache: &mut SeriesCache, batch: &Batch) -> rusqlite::Result<usize> {
    let watermark = get_meta(conn, meta::MINUTE_WATERMARK)?.unwrap_or(i64::MIN);
    // The span of each series' points in this batch, then each series' id.
    let mut spans = vec![(i64::MAX, i64::MIN); batch.series.len()];
    for point in &batch.points {
        let span = &mut spans[point.series];
        *span = (
            span.0.min(point.timestamp_ms),
            span.1.max(point.timestamp_ms),
        );
    }
    let ids = batch
        .series
        .iter()
        .zip(&spans)
        .map(|(key, span)| cache.id(conn, key, span.0))
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO points (minute, series_id, ts, value) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut late = BTreeSet::new();
    for point in &batch.points {
        let minute = point.timestamp_ms.div_euclid(MINUTE_MS);
        insert.execute(params![
            minute,
            ids[point.series],
            point.timestamp_ms,
            point.value
        ])?;
        if minute < watermark {
            late.insert(minute);
        }
    }
    let mut touch = conn.prepare_cached(
        "UPDATE series SET first_seen = min(first_seen, ?2), last_seen = max(last_seen, ?3)
         WHERE id = ?1 AND (first_seen > ?2 OR last_seen < ?3)",
    )?;
    for (id, (first, last)) in ids.iter().zip(spans) {
        touch.execute(params![id, first, last])?;
    }
    let mut dirty =
        conn.prepare_cached("INSERT OR IGNORE INTO dirty_minutes (minute) VALUES (?1)")?;
    for minute in late {
        dirty.execute([minute])?;
    }
    Ok(batch.points.len())
}

/// Rolls up the oldest complete minute that needs it: a dirty one, or the first one at or
/// after the watermark that has points. With none left, moves the watermark up to the
/// current minute (never back: a clock that jumps back rolls nothing up until it catches up).
/// Returns the points of the minute rolled up, `None` when none was left.
fn roll_next_minute(conn: &Connection, now_ms: i64) -> rusqlite::Result<Option<usize>> {
    let current = now_ms.div_euclid(MINUTE_MS);
    let watermark = get_meta(conn, meta::MINUTE_WATERMARK)?;
    let dirty: Option<i64> = conn
        .prepare_cached("SELECT min(minute) FROM dirty_minutes WHERE minute < ?1")?
        .query_row([current], |r| r.get(0))?;
    let fresh: Option<i64> = conn
        .prepare_cached("SELECT min(minute) FROM points WHERE minute >= ?1 AND minute < ?2")?
        .query_row([watermark.unwrap_or(i64::MIN), current], |r| r.get(0))?;
    let minute = match (dirty, fresh) {
        (Some(d), Some(f)) => d.min(f),
        (Some(m), None) | (None, Some(m)) => m,
        (None, None) => {
            if watermark.is_none_or(|w| w < current) {
                set_meta(conn, meta::MINUTE_WATERMARK, current)?;
            }
            return Ok(None);
        }
    };
    let points = roll_minute(conn, minute)?;
    if fresh == Some(minute) {
        set_meta(conn, meta::MINUTE_WATERMARK, minute + 1)?;
    }
    conn.prepare_cached("DELETE FROM dirty_minutes WHERE minute = ?1")?
        .execute([minute])?;
    Ok(Some(points))
}

/// Rolls `minute` up from its raw points, series by series. While all its raw points are
/// kept the rollup is recomputed exactly; once retention has cut them, the points present are
/// late ones: merged into the stored rollup, then deleted. Returns the points read.
fn roll_minute(conn: &Connection, minute: i64) -> rusqlite::Result<usize> {
    let complete = minute >= get_meta(conn, meta::RAW_DELETED_BEFORE)?.unwrap_or(i64::MIN);
    let hour = minute.div_euclid(HOUR_MINUTES);
    let hour_rolled = get_meta(conn, meta::HOUR_WATERMARK)?.is_some_and(|w| hour < w);
    let hour_recomputable =
        hour * HOUR_MINUTES >= get_meta(conn, meta::MINUTE_DELETED_BEFORE)?.unwrap_or(i64::MIN);
    let mut rows = conn.prepare_cached(
        "SELECT series_id, ts, value FROM points WHERE minute = ?1 ORDER BY series_id",
    )?;
    let mut rows = rows.query([minute])?;
    let mut current: Option<i64> = None;
    let mut points: Vec<(i64, f64)> = Vec::new();
    let mut read = 0;
    let finish = |series_id: i64, points: &mut Vec<(i64, f64)>| -> rusqlite::Result<()> {
        let kind = series_kind(conn, series_id)?;
        if let Some(delta) = Rollup::from_points(kind, points) {
            if complete {
                write_rollup(conn, Tier::Minute, series_id, minute, kind, &delta)?;
            } else {
                merge_into(conn, Tier::Minute, series_id, minute, kind, &delta)?;
            }
            if hour_rolled && !hour_recomputable {
                merge_into(conn, Tier::Hour, series_id, hour, kind, &delta)?;
            }
        }
        points.clear();
        Ok(())
    };
    while let Some(row) = rows.next()? {
        let series_id: i64 = row.get(0)?;
        if current.is_some_and(|c| c != series_id) {
            finish(current.unwrap_or_default(), &mut points)?;
        }
        current = Some(series_id);
        points.push((row.get(1)?, row.get(2)?));
        read += 1;
    }
    if let Some(series_id) = current {
        finish(series_id, &mut points)?;
    }
    if hour_rolled && hour_recomputable {
        conn.prepare_cached("INSERT OR IGNORE INTO dirty_hours (hour) VALUES (?1)")?
            .execute([hour])?;
    }
    if !complete {
        conn.prepare_cached("DELETE FROM points WHERE minute = ?1")?
            .execute([minute])?;
    }
    Ok(read)
}

/// Rolls up the oldest complete hour that needs it (all its minutes rolled up): a dirty one,
/// or the first one at or after the hour watermark that has minute rollups.
fn roll_next_hour(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let Some(minute_watermark) = get_meta(conn, meta::MINUTE_WATERMARK)? else {
        return Ok(None);
    };
    let complete_before = minute_watermark.div_euclid(HOUR_MINUTES);
    let watermark = get_meta(conn, meta::HOUR_WATERMARK)?;
    let dirty: Option<i64> = conn
        .prepare_cached("SELECT min(hour) FROM dirty_hours WHERE hour < ?1")?
        .query_row([complete_before], |r| r.get(0))?;
    let from_minute = watermark.map_or(i64::MIN, |w| w.saturating_mul(HOUR_MINUTES));
    let fresh: Option<i64> = conn
        .prepare_cached(
            "SELECT min(bucket) FROM rollups_minute WHERE bucket >= ?1 AND bucket < ?2",
        )?
        .query_row([from_minute, complete_before * HOUR_MINUTES], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .map(|m: i64| m.div_euclid(HOUR_MINUTES));
    let hour = match (dirty, fresh) {
        (Some(d), Some(f)) => d.min(f),
        (Some(h), None) | (None, Some(h)) => h,
        (None, None) => {
            if watermark.is_none_or(|w| w < complete_before) {
                set_meta(conn, meta::HOUR_WATERMARK, complete_before)?;
            }
            return Ok(None);
        }
    };
    roll_hour(conn, hour)?;
    if fresh == Some(hour) {
        set_meta(conn, meta::HOUR_WATERMARK, hour + 1)?;
    }
    conn.prepare_cached("DELETE FROM dirty_hours WHERE hour = ?1")?
        .execute([hour])?;
    Ok(Some(hour))
}

/// Recomputes `hour` from its minute rollups, merging their sketches.
fn roll_hour(conn: &Connection, hour: i64) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT series_id, {ROLLUP_COLUMNS} FROM rollups_minute
         WHERE bucket >= ?1 AND bucket < ?2 ORDER BY series_id, bucket"
    ))?;
    let mut rows = stmt.query([hour * HOUR_MINUTES, (hour + 1) * HOUR_MINUTES])?;
    let mut current: Option<(i64, Rollup)> = None;
    while let Some(row) = rows.next()? {
        let series_id: i64 = row.get(0)?;
        let rollup = rollup_from_row(row, 1)?;
        match &mut current {
            Some((id, merged)) if *id == series_id => merged.merge(&rollup),
            _ => {
                if let Some((id, merged)) = current.take() {
                    write_rollup(conn, Tier::Hour, id, hour, series_kind(conn, id)?, &merged)?;
                }
                current = Some((series_id, rollup));
            }
        }
    }
    if let Some((id, merged)) = current {
        write_rollup(conn, Tier::Hour, id, hour, series_kind(conn, id)?, &merged)?;
    }
    Ok(())
}

/// Deletes raw points older than `RETENTION_RAW` that are rolled up (and not waiting in a
/// dirty minute), minute rollups older than `RETENTION_MINUTE` whose hour is rolled up,
/// hour rollups older than `RETENTION_HOURLY`, and series with no point left in any tier.
fn apply_retention(
    conn: &Connection,
    now_ms: i64,
    retention: Retention,
) -> rusqlite::Result<[usize; 4]> {
    let now_minute = now_ms.div_euclid(MINUTE_MS);
    let mut deleted = [0; 4];
    if let Some(watermark) = get_meta(conn, meta::MINUTE_WATERMARK)? {
        let cutoff = watermark.min(now_minute - retention.raw_hours * HOUR_MINUTES);
        deleted[0] = conn
            .prepare_cached(
                "DELETE FROM points WHERE rowid IN (
                     SELECT rowid FROM points WHERE minute < ?1
                     AND minute NOT IN (SELECT minute FROM dirty_minutes) LIMIT ?2)",
            )?
            .execute(params![cutoff, RETENTION_BATCH as i64])?;
        raise_meta(conn, meta::RAW_DELETED_BEFORE, cutoff)?;
    }
    if let Some(hour_watermark) = get_meta(conn, meta::HOUR_WATERMARK)? {
        let first_dirty: Option<i64> = conn
            .prepare_cached("SELECT min(hour) FROM dirty_hours")?
            .query_row([], |r| r.get(0))?;
        let cutoff = (now_minute - retention.minute_hours * HOUR_MINUTES)
            .min(hour_watermark * HOUR_MINUTES)
            .min(first_dirty.map_or(i64::MAX, |h| h * HOUR_MINUTES));
        deleted[1] = conn
            .prepare_cached("DELETE FROM rollups_minute WHERE bucket < ?1")?
            .execute([cutoff])?;
        raise_meta(conn, meta::MINUTE_DELETED_BEFORE, cutoff)?;
    }
    let hour_cutoff = now_minute.div_euclid(HOUR_MINUTES) - retention.hour_days * 24;
    deleted[2] = conn
        .prepare_cached("DELETE FROM rollups_hour WHERE bucket < ?1")?
        .execute([hour_cutoff])?;
    deleted[3] = conn
        .prepare_cached("DELETE FROM series WHERE last_seen < ?1")?
        .execute([hour_cutoff * HOUR_MINUTES * MINUTE_MS])?;
    Ok(deleted)
}

/// Sets `_meta[key]` to `value` unless it already holds more.
fn raise_meta(conn: &Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    if get_meta(conn, key)?.is_none_or(|old| old < value) {
        set_meta(conn, key, value)?;
    }
    Ok(())
}

/// A series' type.
fn series_kind(conn: &Connection, series_id: i64) -> rusqlite::Result<Kind> {
    let text: String = conn
        .prepare_cached("SELECT type FROM series WHERE id = ?1")?
        .query_row([series_id], |r| r.get(0))?;
    Ok(parse_kind(&text))
}

/// A stored type; anything unknown (impossible through the API) reads as a gauge.
pub fn parse_kind(text: &str) -> Kind {
    Kind::parse(text).unwrap_or(Kind::Gauge)
}

/// Which rollup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// `rollups_minute`: buckets are epoch minutes.
    Minute,
    /// `rollups_hour`: buckets are epoch hours.
    Hour,
}

impl Tier {
    /// The table's name.
    pub fn table(self) -> &'static str {
        match self {
            Tier::Minute => "rollups_minute",
            Tier::Hour => "rollups_hour",
        }
    }

    /// Milliseconds in one bucket.
    pub fn bucket_ms(self) -> i64 {
        match self {
            Tier::Minute => MINUTE_MS,
            Tier::Hour => MINUTE_MS * HOUR_MINUTES,
        }
    }
}

/// The columns [`rollup_from_row`] reads, in order.
pub const ROLLUP_COLUMNS: &str =
    "count, sum, min, max, last, last_ms, p50, p75, p90, p95, p99, sketch";

/// A rollup from [`ROLLUP_COLUMNS`] starting at column `first`. The stored percentiles are
/// kept as exact ones: they are what the bucket reports until it is merged with another.
pub fn rollup_from_row(row: &Row, first: usize) -> rusqlite::Result<Rollup> {
    let p: [Option<f64>; 5] = [
        row.get(first + 6)?,
        row.get(first + 7)?,
        row.get(first + 8)?,
        row.get(first + 9)?,
        row.get(first + 10)?,
    ];
    let exact = match p {
        [Some(a), Some(b), Some(c), Some(d), Some(e)] => Some([a, b, c, d, e]),
        _ => None,
    };
    Ok(Rollup {
        count: row.get(first)?,
        sum: row.get(first + 1)?,
        min: row.get(first + 2)?,
        max: row.get(first + 3)?,
        last: row.get(first + 4)?,
        last_ms: row.get(first + 5)?,
        exact,
        sketch: row
            .get::<_, Option<Vec<u8>>>(first + 11)?
            .map(Sketch::Stored),
    })
}

fn read_rollup(
    conn: &Connection,
    tier: Tier,
    series_id: i64,
    bucket: i64,
) -> rusqlite::Result<Option<Rollup>> {
    conn.prepare_cached(&format!(
        "SELECT {ROLLUP_COLUMNS} FROM {} WHERE series_id = ?1 AND bucket = ?2",
        tier.table()
    ))?
    .query_row([series_id, bucket], |row| rollup_from_row(row, 0))
    .optional()
}

/// Adds `delta` into the stored rollup of `bucket` (or stores it when there is none).
fn merge_into(
    conn: &Connection,
    tier: Tier,
    series_id: i64,
    bucket: i64,
    kind: Kind,
    delta: &Rollup,
) -> rusqlite::Result<()> {
    match read_rollup(conn, tier, series_id, bucket)? {
        Some(mut stored) => {
            stored.merge(delta);
            write_rollup(conn, tier, series_id, bucket, kind, &stored)
        }
        None => write_rollup(conn, tier, series_id, bucket, kind, delta),
    }
}

fn write_rollup(
    conn: &Connection,
    tier: Tier,
    series_id: i64,
    bucket: i64,
    kind: Kind,
    rollup: &Rollup,
) -> rusqlite::Result<()> {
    let p = if kind == Kind::Histogram {
        rollup.percentiles()
    } else {
        None
    };
    let at = |i: usize| p.map(|p| p[i]);
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {} (series_id, bucket, {ROLLUP_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        tier.table()
    ))?
    .execute(params![
        series_id,
        bucket,
        rollup.count,
        rollup.sum,
        rollup.min,
        rollup.max,
        rollup.last,
        rollup.last_ms,
        at(0),
        at(1),
        at(2),
        at(3),
        at(4),
        rollup.sketch_bytes(),
    ])?;
    Ok(())
}
