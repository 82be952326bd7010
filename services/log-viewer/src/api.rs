//! The HTTP handlers: every one reads through the pool; the ingestion thread writes.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::Serialize;
use serde_json::json;
use shared::http::{ApiError, Request, Response};
use shared::time::{format_ms, now_ms};

use crate::{db, query, tail, State};

/// Entries replayed to a reconnecting live tail at most.
const REPLAY_LIMIT: i64 = 1000;
/// The histogram's range when neither `since` nor any entry gives one.
const DEFAULT_RANGE_MS: i64 = 60 * 60 * 1000;

/// The body of `GET /api/logs`.
#[derive(Serialize)]
struct LogsPage<'a> {
    logs: &'a [db::EntryPreview],
    total: i64,
    total_capped: bool,
    limit: i64,
    offset: i64,
    /// The live tail's cursor as of this page: `since_id` for a tail that must miss nothing
    /// stored after it.
    tail_cursor: i64,
}

/// `GET /api/logs`: one page, newest first; long messages cut (see [`db::PREVIEW_BYTES`]).
pub fn list_logs(state: &State, request: &Request) -> Result<Response, ApiError> {
    let filter = query::filter(request)?;
    let (limit, offset) = query::page(request)?;
    let conn = state.reads.get();
    // Read before the page: whatever is stored after it is replayed by a tail started here.
    let tail_cursor = db::last_seq(&conn)?;
    let page = db::list(&conn, &filter, limit, offset)?;
    Ok(Response::json(
        200,
        &LogsPage {
            logs: &page.logs,
            total: page.total,
            total_capped: page.total_capped,
            limit,
            offset,
            tail_cursor,
        },
    ))
}

/// `GET /api/logs/{id}`: one entry with its whole message.
pub fn log_entry(state: &State, request: &Request) -> Result<Response, ApiError> {
    let id = query::entry_id(request)?;
    match db::entry(&state.reads.get(), id)? {
        Some(entry) => Ok(Response::json(200, &entry)),
        None => Err(ApiError::not_found("Log entry not found")),
    }
}

/// `GET /api/logs/histogram`: log volume by level over time.
pub fn histogram(state: &State, request: &Request) -> Result<Response, ApiError> {
    let filter = query::filter(request)?;
    let buckets = query::buckets(request)?;
    let conn = state.reads.get();
    let until = filter.until_ms.unwrap_or_else(now_ms);
    let since = match filter.since_ms {
        Some(since) => since,
        None => db::time_bounds(&conn)?
            .0
            .unwrap_or(until - DEFAULT_RANGE_MS),
    };
    if since > until {
        return Err(ApiError::bad_request(
            "parameter 'since' must not be after 'until'",
        ));
    }
    let (bars, width_ms) = db::histogram(&conn, &filter, since, until.max(since + 1), buckets)?;
    let bucket_seconds = width_ms as f64 / 1000.0;
    Ok(Response::json(
        200,
        &json!({"buckets": bars, "since": format_ms(since), "until": format_ms(until), "bucket_seconds": bucket_seconds}),
    ))
}

/// `GET /api/containers` (also `/api/logs/containers`).
pub fn containers(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let watched = state.status.watched();
    let mut containers: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (name, count, last_seen) in db::container_counts(&state.reads.get())? {
        let watching = watched.contains(&name);
        containers.insert(
            name.clone(),
            json!({"name": name, "log_count": count, "last_seen": format_ms(last_seen), "watching": watching}),
        );
    }
    for name in watched {
        containers.entry(name.clone()).or_insert_with(
            || json!({"name": name, "log_count": 0, "last_seen": null, "watching": true}),
        );
    }
    let list: Vec<_> = containers.into_values().collect();
    Ok(Response::json(200, &json!({ "containers": list })))
}

/// `GET /api/stats` (also `/api/logs/stats`).
pub fn stats(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let conn = state.reads.get();
    let by_level: BTreeMap<&str, i64> = db::level_counts(&conn)?
        .into_iter()
        .map(|(level, n)| (level.as_str(), n))
        .collect();
    let by_container: BTreeMap<String, i64> = db::container_counts(&conn)?
        .into_iter()
        .map(|(name, n, _)| (name, n))
        .collect();
    let (oldest, newest) = db::time_bounds(&conn)?;
    Ok(Response::json(
        200,
        &json!({
            "total_logs": by_level.values().sum::<i64>(),
            "oldest_log": oldest.map(format_ms),
            "newest_log": newest.map(format_ms),
            "by_level": by_level,
            "by_container": by_container,
        }),
    ))
}

/// `GET /api/logs/tail`: Server-Sent Events, streamed on the connection's own thread.
pub fn live_tail(state: &State, request: &Request) -> Result<Response, ApiError> {
    let (filter, since_id) = query::tail(request)?;
    let replay_filter = db::Filter {
        containers: filter.containers.clone(),
        level: filter.level,
        ..db::Filter::default()
    };
    let substring = filter.substring.clone();
    // Subscribe before the replay so nothing falls between; the stream skips repeats by id.
    let subscription = state
        .hub
        .subscribe(filter)
        .ok_or_else(|| ApiError::unavailable("Too many live tail connections", 5))?;
    let replay = match since_id {
        Some(after) => db::replay(
            &state.reads.get(),
            &replay_filter,
            substring.as_deref(),
            after,
            REPLAY_LIMIT,
        )?,
        None => Vec::new(),
    };
    let stream = tail::event_stream(subscription, replay, state.shutdown.clone());
    Ok(Response::stream("text/event-stream", stream)
        .with_header("cache-control", "no-cache")
        .with_header("x-accel-buffering", "no"))
}

/// `LOG_SOURCES` as the last scan found it: `readable` is `null` before the first scan. An
/// unreadable directory is reported but keeps `/health` at 200: the service works (it serves
/// what it stored and retries the directory every rescan); what is wrong is the mount or the
/// setting, which a restart would not fix.
fn log_sources(state: &State) -> serde_json::Value {
    let path = state.log_sources.display().to_string();
    match state.status.sources() {
        None => json!({"path": path, "readable": null}),
        Some(Ok(())) => json!({"path": path, "readable": true}),
        Some(Err(error)) => json!({"path": path, "readable": false, "error": error}),
    }
}

/// `GET /health`: no key, never rate limited; 503 when the database cannot be read.
pub fn health(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let figures = db::total_entries(&state.reads.get()).map(|logs_indexed| {
        let last = state.status.last_ingest_ms.load(Ordering::SeqCst);
        let figures = json!({
            "logs_indexed": logs_indexed,
            "last_ingest": (last > 0).then(|| format_ms(last)),
            "containers_watched": state.status.watched().len(),
            "tail_streams": state.hub.open_streams(),
            "polls": state.status.polls.load(Ordering::SeqCst),
            "search_index_compactions": state.status.compactions.load(Ordering::SeqCst),
            "log_sources": log_sources(state),
        });
        figures.as_object().cloned().unwrap_or_default()
    });
    Ok(shared::health::answer(figures, &state.watchdog))
}
