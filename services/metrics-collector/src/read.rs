//! Every read of the metrics-collector. Data lives in three tiers — raw points since the
//! minute watermark, minute rollups, hour rollups — and a read takes each stretch of time
//! from the tier that holds it, so what is not yet rolled up (the current minute) is live.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::db::{
    get_meta, meta, parse_kind, rollup_from_row, Tier, HOUR_MINUTES, MINUTE_MS, ROLLUP_COLUMNS,
};
use crate::ingest::Kind;
use crate::rollup::Rollup;

/// How far aggregation has got (see [`crate::db`]).
#[derive(Debug, Clone, Copy)]
pub struct Marks {
    /// Minutes before it are in `rollups_minute`; raw points from it on.
    pub minute_watermark: i64,
    /// Hours before it are in `rollups_hour`.
    pub hour_watermark: i64,
    /// Minute rollups before it were deleted by retention.
    pub minute_deleted_before: i64,
}

impl Marks {
    /// The marks as stored; before the first run everything is raw.
    pub fn load(conn: &Connection) -> rusqlite::Result<Marks> {
        Ok(Marks {
            minute_watermark: get_meta(conn, meta::MINUTE_WATERMARK)?.unwrap_or(i64::MIN),
            hour_watermark: get_meta(conn, meta::HOUR_WATERMARK)?.unwrap_or(i64::MIN),
            minute_deleted_before: get_meta(conn, meta::MINUTE_DELETED_BEFORE)?.unwrap_or(i64::MIN),
        })
    }
}

/// A row of the series dictionary.
#[derive(Debug, Clone)]
pub struct Series {
    pub id: i64,
    pub name: String,
    pub kind: Kind,
    pub project: String,
    pub labels: BTreeMap<String, String>,
}

/// Which series to read.
#[derive(Debug, Default, Clone)]
pub struct SeriesFilter<'a> {
    /// Exact name (all names when `None`).
    pub name: Option<&'a str>,
    /// Exact project.
    pub project: Option<&'a str>,
}

/// The series matching `filter`, in id order.
pub fn series(conn: &Connection, filter: &SeriesFilter) -> rusqlite::Result<Vec<Series>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, type, project, labels FROM series
         WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR project = ?2) ORDER BY id",
    )?;
    let rows = stmt.query_map(params![filter.name, filter.project], |row| {
        let labels: String = row.get(4)?;
        Ok(Series {
            id: row.get(0)?,
            name: row.get(1)?,
            kind: parse_kind(&row.get::<_, String>(2)?),
            project: row.get(3)?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// An entry of `GET /api/metrics/names`.
#[derive(Debug, Serialize)]
pub struct Name {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub last_seen: String,
}

/// Every known name and type (the series dictionary outlives the raw tier), newest point
/// first within a name.
pub fn names(conn: &Connection, project: Option<&str>) -> rusqlite::Result<Vec<Name>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, type, max(last_seen) FROM series WHERE (?1 IS NULL OR project = ?1)
         GROUP BY name, type ORDER BY name, type",
    )?;
    let rows = stmt.query_map([project], |row| {
        Ok(Name {
            name: row.get(0)?,
            kind: row.get(1)?,
            last_seen: shared::time::format_ms(row.get(2)?),
        })
    })?;
    rows.collect()
}

/// Every project with a series.
pub fn projects(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT project FROM series ORDER BY project")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    rows.collect()
}

/// A time range in epoch ms, `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Buckets of one series, by bucket start (epoch ms).
pub type Buckets = BTreeMap<i64, Rollup>;

/// The buckets of each series in `series` over `range` at `resolution`: stored rollups of
/// the tier, minute rollups not yet in an hour folded into their hour, and raw points not
/// yet rolled up (the current minute) rolled up on the fly.
pub fn buckets(
    conn: &Connection,
    series: &[&Series],
    range: Range,
    resolution: Tier,
    marks: &Marks,
) -> rusqlite::Result<HashMap<i64, Buckets>> {
    let mut out: HashMap<i64, Buckets> = series.iter().map(|s| (s.id, Buckets::new())).collect();
    let from_min = range.from_ms.div_euclid(MINUTE_MS);
    let to_min = ceil_div(range.to_ms, MINUTE_MS);
    let per_bucket = match resolution {
        Tier::Minute => 1,
        Tier::Hour => HOUR_MINUTES,
    };
    // Whole buckets: widen the range to the resolution's boundaries.
    let from_min = from_min.div_euclid(per_bucket) * per_bucket;
    let to_min = ceil_div(to_min, per_bucket) * per_bucket;
    let fold = |minute: i64| minute.div_euclid(per_bucket) * per_bucket * MINUTE_MS;
    let mut minutes_from = from_min;
    if resolution == Tier::Hour {
        let hours_to = (to_min / HOUR_MINUTES).min(marks.hour_watermark);
        read_stored(
            conn,
            series,
            Tier::Hour,
            (from_min / HOUR_MINUTES, hours_to),
            &mut out,
            |h| h * HOUR_MINUTES * MINUTE_MS,
        )?;
        minutes_from = minutes_from.max(hours_to.saturating_mul(HOUR_MINUTES));
    }
    let minutes_to = to_min.min(marks.minute_watermark);
    read_stored(
        conn,
        series,
        Tier::Minute,
        (minutes_from, minutes_to),
        &mut out,
        fold,
    )?;
    let raw_from = from_min.max(marks.minute_watermark);
    read_raw(conn, series, (raw_from, to_min), &mut out, fold)?;
    Ok(out)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// Adds `rollup` into the bucket at `at` of `buckets`.
fn add(buckets: &mut Buckets, at: i64, rollup: Rollup) {
    match buckets.get_mut(&at) {
        Some(existing) => {
            existing.merge(&rollup);
            existing.compact();
        }
        None => {
            buckets.insert(at, rollup);
        }
    }
}

/// Stored rollups of `tier` with buckets in `[from, to)`, each added at `start(bucket)`.
fn read_stored(
    conn: &Connection,
    series: &[&Series],
    tier: Tier,
    (from, to): (i64, i64),
    out: &mut HashMap<i64, Buckets>,
    start: impl Fn(i64) -> i64,
) -> rusqlite::Result<()> {
    if from >= to {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT bucket, {ROLLUP_COLUMNS} FROM {} WHERE series_id = ?1 AND bucket >= ?2 AND bucket < ?3",
        tier.table()
    ))?;
    for s in series {
        let buckets = out.entry(s.id).or_default();
        let mut rows = stmt.query(params![s.id, from, to])?;
        while let Some(row) = rows.next()? {
            add(buckets, start(row.get(0)?), rollup_from_row(row, 1)?);
        }
    }
    Ok(())
}

/// Raw points of minutes `[from, to)` rolled up per minute, each added at `start(minute)`.
fn read_raw(
    conn: &Connection,
    series: &[&Series],
    (from, to): (i64, i64),
    out: &mut HashMap<i64, Buckets>,
    start: impl Fn(i64) -> i64,
) -> rusqlite::Result<()> {
    if from >= to {
        return Ok(());
    }
    let kinds: HashMap<i64, Kind> = series.iter().map(|s| (s.id, s.kind)).collect();
    let mut minutes: BTreeMap<(i64, i64), Vec<(i64, f64)>> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT series_id, minute, ts, value FROM points WHERE minute >= ?1 AND minute < ?2",
    )?;
    let mut rows = stmt.query([from, to])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if kinds.contains_key(&id) {
            let key = (id, row.get(1)?);
            minutes
                .entry(key)
                .or_default()
                .push((row.get(2)?, row.get(3)?));
        }
    }
    for ((id, minute), mut points) in minutes {
        let kind = kinds.get(&id).copied().unwrap_or(Kind::Gauge);
        if let Some(rollup) = Rollup::from_points(kind, &mut points) {
            add(out.entry(id).or_default(), start(minute), rollup);
        }
    }
    Ok(())
}

/// Points and sum of values per series over `range`, from the coarsest tier that holds each
/// stretch (whole hours from hour rollups): what the dashboard and `/health` count.
pub fn totals(
    conn: &Connection,
    range: Range,
    marks: &Marks,
) -> rusqlite::Result<HashMap<i64, (i64, f64)>> {
    let mut from_min = range.from_ms.div_euclid(MINUTE_MS);
    let to_min = ceil_div(range.to_ms, MINUTE_MS);
    if from_min < marks.minute_deleted_before {
        // Its minutes are gone: count its whole hour.
        from_min = from_min.div_euclid(HOUR_MINUTES) * HOUR_MINUTES;
    }
    let mut out: HashMap<i64, (i64, f64)> = HashMap::new();
    let mut add_sql = |sql: &str, from: i64, to: i64| -> rusqlite::Result<()> {
        if from >= to {
            return Ok(());
        }
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([from, to])?;
        while let Some(row) = rows.next()? {
            let entry = out.entry(row.get(0)?).or_default();
            entry.0 += row.get::<_, i64>(1)?;
            entry.1 += row.get::<_, f64>(2)?;
        }
        Ok(())
    };
    let minutes_end = to_min.min(marks.minute_watermark);
    let first_hour = ceil_div(from_min, HOUR_MINUTES);
    let hours_end = (minutes_end / HOUR_MINUTES).min(marks.hour_watermark);
    let by_minute = "SELECT series_id, sum(count), sum(sum) FROM rollups_minute
                     WHERE bucket >= ?1 AND bucket < ?2 GROUP BY series_id";
    if first_hour < hours_end {
        add_sql(
            "SELECT series_id, sum(count), sum(sum) FROM rollups_hour
             WHERE bucket >= ?1 AND bucket < ?2 GROUP BY series_id",
            first_hour,
            hours_end,
        )?;
        add_sql(by_minute, from_min, first_hour * HOUR_MINUTES)?;
        add_sql(by_minute, hours_end * HOUR_MINUTES, minutes_end)?;
    } else {
        add_sql(by_minute, from_min, minutes_end)?;
    }
    add_sql(
        "SELECT series_id, count(*), sum(value) FROM points
         WHERE minute >= ?1 AND minute < ?2 GROUP BY series_id",
        from_min.max(marks.minute_watermark),
        to_min,
    )?;
    Ok(out)
}

/// The latest bucket of each series (raw minutes first, then minute, then hour rollups):
/// what `/metrics` exposes. Series without data in any tier are left out.
pub fn latest(
    conn: &Connection,
    series: &[Series],
    marks: &Marks,
) -> rusqlite::Result<HashMap<i64, (i64, Rollup)>> {
    let refs: Vec<&Series> = series.iter().collect();
    let mut raw = HashMap::new();
    let since = (marks.minute_watermark, i64::MAX);
    read_raw(conn, &refs, since, &mut raw, |m| m * MINUTE_MS)?;
    let mut out = HashMap::new();
    for (id, buckets) in raw {
        if let Some((at, rollup)) = buckets.into_iter().next_back() {
            out.insert(id, (at, rollup));
        }
    }
    for tier in [Tier::Minute, Tier::Hour] {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT bucket, {ROLLUP_COLUMNS} FROM {} WHERE series_id = ?1 ORDER BY bucket DESC LIMIT 1",
            tier.table()
        ))?;
        for s in series {
            if out.contains_key(&s.id) {
                continue;
            }
            let found = stmt
                .query_row([s.id], |row| {
                    Ok((
                        row.get::<_, i64>(0)? * tier.bucket_ms(),
                        rollup_from_row(row, 1)?,
                    ))
                })
                .optional()?;
            if let Some(found) = found {
                out.insert(s.id, found);
            }
        }
    }
    Ok(out)
}
