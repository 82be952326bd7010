//! The HTTP handlers: each turns a request into a job for the writer or reads on the pool.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::{json, Map, Value};
use shared::http::params::invalid;
use shared::http::{ApiError, Request, Response};

use crate::db::{Job, Outcome, Tier};
use crate::ingest::{parse_body, Kind, Window};
use crate::prometheus;
use crate::query;
use crate::read::{self, Marks, Range, Series, SeriesFilter};
use crate::vitals::{self, WebVitals};
use crate::State;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// `POST /api/metrics`: validate the whole batch, then store it; `202` once committed.
pub fn ingest(state: &State, request: &Request) -> Result<Response, ApiError> {
    let now_ms = state.config.clock.now_ms();
    let window = Window {
        now_ms,
        oldest_ms: now_ms - state.config.retention.hour_days * DAY_MS,
    };
    let batch = parse_body(request.body(), window)?;
    // Validated: waiting for the writer happens outside the handler slot, so concurrent
    // batches share one transaction.
    let writer = state.writer.clone();
    Ok(Response::deferred(move || {
        match writer.submit(Job::Store(batch)) {
            Ok(Outcome::Stored(count)) => {
                Response::json(202, &json!({"status": "accepted", "count": count}))
            }
            Ok(other) => {
                ApiError::internal("storing points", format!("unexpected outcome {other:?}")).into()
            }
            Err(e) => ApiError::from(e).into(),
        }
    }))
}

/// The answer of `GET /api/metrics` (`series` and `data` are computed while written).
#[derive(Serialize)]
struct SeriesAnswer<'a, 's, 'r> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: Option<Kind>,
    resolution: &'static str,
    period: &'a str,
    series_total: usize,
    series: query::SeriesPart<'a, 's, 'r>,
    data: query::DataPart<'a, 's, 'r>,
    /// Whether `series` leaves out the least busy groups (see [`MAX_ANSWER_BUCKETS`]).
    truncated: query::TruncatedPart<'a, 's, 'r>,
}

/// Buckets in an answer's `series` at most (about 3 MB of JSON): a metric with many label sets
/// over a long period answers its busiest ones, so one query cannot exhaust the memory.
const MAX_ANSWER_BUCKETS: i64 = 20_000;

/// `GET /api/metrics`: one metric's buckets over a period, per label set (or per value of
/// `group_by`), busiest first, and merged. A name stored with several types is answered for
/// the type of its first series unless `type=` chooses.
pub fn series(state: &State, request: &Request) -> Result<Response, ApiError> {
    let name = request
        .query("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing required parameter: name"))?;
    let period = query::period(request, state.config.clock.now_ms(), "24h")?;
    let resolution = query::resolution(request, period.range)?;
    let wanted = query::label_match(request)?;
    let group_by = request.query("group_by").filter(|g| !g.is_empty());
    let kind = match request.query("type") {
        None => None,
        Some(text) => Some(
            Kind::parse(text)
                .ok_or_else(|| invalid("type", text, "counter, histogram or gauge"))?,
        ),
    };
    let conn = state.reads.get();
    let filter = SeriesFilter {
        name: Some(name),
        project: request.query("project"),
    };
    let all = read::series(&conn, &filter)?;
    let kind = kind.or_else(|| all.first().map(|s| s.kind));
    let chosen: Vec<&Series> = all
        .iter()
        .filter(|s| Some(s.kind) == kind && query::matches(s, &wanted))
        .collect();
    let marks = Marks::load(&conn)?;
    let groups = query::group(&chosen, group_by);
    let series_total = groups.len();
    // Bound the answer: the busiest groups that fit MAX_ANSWER_BUCKETS get a series each;
    // every group is still merged into `data`.
    let per_series = (period.range.to_ms - period.range.from_ms) / resolution.bucket_ms() + 2;
    let shown = (MAX_ANSWER_BUCKETS / per_series.max(1)).max(1) as usize;
    let volumes = if series_total > shown {
        read::totals(&conn, period.range, &marks)?
    } else {
        Default::default()
    };
    let groups = query::busiest_first(groups, |id| volumes.get(&id).map_or(0, |t| t.0));
    let assembly = query::Assembly::new(groups, shown, kind.unwrap_or(Kind::Gauge), |members| {
        read::buckets(&conn, members, period.range, resolution, &marks)
    });
    let answer = SeriesAnswer {
        name,
        kind,
        resolution: match resolution {
            Tier::Minute => "minute",
            Tier::Hour => "hour",
        },
        period: &period.label,
        series_total,
        series: assembly.series(),
        data: assembly.data(),
        truncated: assembly.truncated(),
    };
    Ok(Response::json(200, &answer))
}

/// `GET /api/metrics/names`: every known name and type.
pub fn names(state: &State, request: &Request) -> Result<Response, ApiError> {
    let names = read::names(&state.reads.get(), request.query("project"))?;
    Ok(Response::json(200, &json!({ "metrics": names })))
}

/// `GET /api/projects`: every project with a series.
pub fn projects(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let projects = read::projects(&state.reads.get())?;
    Ok(Response::json(200, &json!({ "projects": projects })))
}

/// A row of the dashboard's top metrics.
#[derive(Serialize)]
struct TopMetric {
    name: String,
    #[serde(rename = "type")]
    kind: Kind,
    count: i64,
    total: f64,
}

/// Metrics in the dashboard's top list.
const TOP_METRICS: usize = 10;
/// Periods up to this long chart the vitals per minute, longer ones per hour.
const VITALS_MINUTE_SPAN_MS: i64 = 6 * 3_600_000;

/// `GET /api/dashboard`: totals, the top metrics by points and, when browsers sent them,
/// the Web Vitals — over any period, from whichever tier holds it.
pub fn dashboard(state: &State, request: &Request) -> Result<Response, ApiError> {
    let period = query::period(request, state.config.clock.now_ms(), "24h")?;
    let conn = state.reads.get();
    let filter = SeriesFilter {
        name: None,
        project: request.query("project"),
    };
    let all = read::series(&conn, &filter)?;
    let marks = Marks::load(&conn)?;
    let totals = read::totals(&conn, period.range, &marks)?;
    let mut by_metric: BTreeMap<(&str, Kind), (i64, f64)> = BTreeMap::new();
    for s in &all {
        if let Some(&(count, sum)) = totals.get(&s.id).filter(|t| t.0 > 0) {
            let entry = by_metric.entry((s.name.as_str(), s.kind)).or_default();
            entry.0 += count;
            entry.1 += sum;
        }
    }
    let distinct: HashSet<&str> = by_metric.keys().map(|(name, _)| *name).collect();
    let mut top: Vec<TopMetric> = by_metric
        .iter()
        .map(|(&(name, kind), &(count, total))| TopMetric {
            name: name.to_string(),
            kind,
            count,
            total,
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    top.truncate(TOP_METRICS);
    let web_vitals = web_vitals(&conn, &all, period.range, &marks)?;
    let mut body = json!({
        "period": period.label,
        "summary": {
            "total_datapoints": by_metric.values().map(|t| t.0).sum::<i64>(),
            "distinct_metrics": distinct.len(),
        },
        "top_metrics": top,
    });
    if let Some(vitals) = web_vitals {
        body["web_vitals"] = serde_json::to_value(vitals)
            .map_err(|e| ApiError::internal("answering the dashboard", e))?;
    }
    Ok(Response::json(200, &body))
}

fn web_vitals(
    conn: &rusqlite::Connection,
    all: &[Series],
    range: Range,
    marks: &Marks,
) -> Result<Option<WebVitals>, ApiError> {
    let vital_series: Vec<(&Series, usize)> = all
        .iter()
        .filter_map(|s| vitals::vital_of(s).map(|v| (s, v)))
        .collect();
    if vital_series.is_empty() {
        return Ok(None);
    }
    let resolution = if range.to_ms - range.from_ms <= VITALS_MINUTE_SPAN_MS {
        Tier::Minute
    } else {
        Tier::Hour
    };
    let refs: Vec<&Series> = vital_series.iter().map(|(s, _)| *s).collect();
    let mut buckets = read::buckets(conn, &refs, range, resolution, marks)?;
    let input = vital_series
        .iter()
        .map(|(s, vital)| {
            let page = s.labels.get("page").cloned().unwrap_or_default();
            (*vital, page, buckets.remove(&s.id).unwrap_or_default())
        })
        .collect();
    Ok(vitals::web_vitals(input))
}

/// `GET /health`: points received in the last 24 hours and the last aggregation run.
pub fn health(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let figures = figures(state).map(|(points, last)| {
        let mut map = Map::new();
        map.insert("metrics_received_24h".to_string(), json!(points));
        map.insert(
            "last_aggregation".to_string(),
            last.map_or(Value::Null, |ms| json!(shared::time::format_ms(ms))),
        );
        map
    });
    Ok(shared::health::answer(figures, &state.watchdog))
}

/// Points received in the last 24 hours, and the last aggregation run.
fn figures(state: &State) -> rusqlite::Result<(i64, Option<i64>)> {
    let conn = state.reads.get();
    let now_ms = state.config.clock.now_ms();
    let range = Range {
        from_ms: now_ms - DAY_MS,
        to_ms: now_ms + 1,
    };
    let totals = read::totals(&conn, range, &Marks::load(&conn)?)?;
    let points = totals.values().map(|t| t.0).sum();
    Ok((points, state.aggregation.last_aggregation_ms()))
}

/// `GET /metrics`: the Prometheus exposition of every series' latest bucket.
pub fn prometheus(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let (points_24h, last_aggregation_ms) = figures(state)?;
    let conn = state.reads.get();
    let all = read::series(&conn, &SeriesFilter::default())?;
    let latest = read::latest(&conn, &all, &Marks::load(&conn)?)?;
    let own = prometheus::Own {
        points_24h,
        series: all.len(),
        last_aggregation_ms,
    };
    let text = prometheus::exposition(&own, &all, &latest);
    Ok(Response::bytes(
        200,
        prometheus::CONTENT_TYPE,
        text.into_bytes(),
    ))
}
