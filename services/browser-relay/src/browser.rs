//! The browser endpoints: a DSN key (header `X-Monlight-Key` or `?key=` for beacons), the
//! payload validated (a `text/plain` body is read as JSON), then stored in the outbox and
//! answered `202` at once; the forwarders deliver it. The project is always the key's.

use serde_json::{json, Map, Value};
use shared::http::{ApiError, Request, Response};

use crate::db::{self, Job, Outcome, Payload, Upstream};
use crate::{cors, symbolicate, State};

/// Metrics in one browser batch at most.
pub const MAX_METRICS: usize = 100;
/// Longest traceback forwarded, in bytes (a browser's stack is a few KiB; longer ones come
/// from hostile clients), and longest message: what a queued payload may hold.
const MAX_TRACEBACK_BYTES: usize = 64 * 1024;
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// How long a browser is told to wait when the outbox is full.
const FULL_RETRY_AFTER_SECS: u64 = 30;

/// `401 Invalid DSN key`.
pub(crate) fn invalid_key() -> ApiError {
    ApiError::new(401, "Invalid DSN key")
}

/// The request's DSN key: one `X-Monlight-Key` header or one `?key=`. Several (two headers,
/// two parameters, or a header and a parameter) are ambiguous, and refused.
fn dsn_key(request: &Request) -> Option<&str> {
    let mut keys = request.header_all("x-monlight-key");
    keys.extend(request.query_all("key"));
    match keys.as_slice() {
        [key] if !key.is_empty() => Some(key),
        _ => None,
    }
}

/// The guard of the browser endpoints: an active DSN key within its rate limit, and the
/// global cap.
pub fn check_dsn_key(state: &State, request: &Request) -> Result<(), ApiError> {
    let key = dsn_key(request).ok_or_else(invalid_key)?;
    check_key(state, key).map(|_| ())
}

/// The project of an active DSN key within its rate limit and the global cap (`401` or
/// `429` otherwise).
pub(crate) fn check_key(state: &State, key: &str) -> Result<String, ApiError> {
    let project = state.keys.project(key).ok_or_else(invalid_key)?;
    let limited = |retry_after: u64| {
        ApiError::new(429, "Rate limit exceeded")
            .with_header("Retry-After", &retry_after.to_string())
    };
    state.per_key.check(key.to_string()).map_err(limited)?;
    state.global.check(()).map_err(limited)?;
    Ok(project)
}

/// The project of the request's (already checked) key.
fn project(state: &State, request: &Request) -> Result<String, ApiError> {
    dsn_key(request)
        .and_then(|key| state.keys.project(key))
        .ok_or_else(invalid_key)
}

/// `OPTIONS` on a browser endpoint.
pub fn preflight(state: &State, request: &Request) -> Result<Response, ApiError> {
    cors::preflight(&state.config.origins, request)
}

/// `POST /api/browser/errors`.
pub fn report_error(state: &State, request: &Request) -> Result<Response, ApiError> {
    let project = project(state, request)?;
    let body: Value = request.json()?;
    let Value::Object(fields) = body else {
        return Err(ApiError::bad_request("Request body must be a JSON object"));
    };
    let exception_type = string(&fields, "type", 200)?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("field 'type' is required"))?;
    let message = string(&fields, "message", MAX_MESSAGE_BYTES)?
        .ok_or_else(|| ApiError::bad_request("field 'message' is required"))?;
    let stack = string(&fields, "stack", usize::MAX)?.unwrap_or_default();
    let url = string(&fields, "url", 2000)?;
    let release = string(&fields, "release", 200)?;
    let context = match fields.get("context") {
        None | Some(Value::Null) => None,
        Some(context @ Value::Object(_)) => Some(context.clone()),
        Some(_) => return Err(ApiError::bad_request("field 'context' must be an object")),
    };
    let user_id = match context.as_ref().and_then(|c| c.get("user_id")) {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.chars().take(200).collect::<String>()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "field 'context.user_id' must be a string or a number",
            ))
        }
    };
    let mut traceback = match &release {
        Some(release) => rewrite(state, &project, release, &stack),
        None => stack,
    };
    // What the error-tracker keeps of a traceback; also keeps the report within its body limit.
    traceback.truncate(traceback.floor_char_boundary(MAX_TRACEBACK_BYTES));
    let extra = json!({
        "user_agent": string(&fields, "user_agent", 1000)?,
        "session_id": string(&fields, "session_id", 200)?,
        "release": release,
        "page_url": url,
        "timestamp": string(&fields, "timestamp", 64)?,
        "context": context,
    });
    let report = json!({
        "project": project,
        "exception_type": exception_type,
        "message": message,
        "traceback": traceback,
        "request_method": "BROWSER",
        "request_url": url,
        "user_id": user_id,
        "extra": extra,
    });
    let payload = Payload {
        body: report.to_string(),
        points: 1,
        path: None,
    };
    Ok(enqueue(
        state,
        Upstream::Errors,
        payload,
        (202, json!({"status": "accepted"})),
    ))
}

/// Rewrites the stack's frames with the project's source maps for `release`.
fn rewrite(state: &State, project: &str, release: &str, stack: &str) -> String {
    let conn = state.reads.get();
    symbolicate::rewrite_stack(stack, |path| map_for(state, &conn, project, release, path))
}

/// Rewrites Sentry frames with the project's source maps for `release`.
pub(crate) fn rewrite_frames(state: &State, project: &str, release: &str, frames: &mut [Value]) {
    let conn = state.reads.get();
    symbolicate::rewrite_frames(frames, |path| map_for(state, &conn, project, release, path));
}

/// The parsed map of a script path (cached), if one was uploaded.
fn map_for(
    state: &State,
    conn: &rusqlite::Connection,
    project: &str,
    release: &str,
    path: &str,
) -> Option<std::sync::Arc<symbolicate::Map>> {
    let id = match db::find_map(conn, project, release, path) {
        Ok(found) => found?,
        Err(e) => {
            log::error!("cannot look up a source map: {e}");
            return None;
        }
    };
    state
        .maps
        .get(id, || db::map_content(conn, id).ok().flatten())
}

/// `POST /api/browser/metrics`.
pub fn report_metrics(state: &State, request: &Request) -> Result<Response, ApiError> {
    let project = project(state, request)?;
    let body: Value = request.json()?;
    let Value::Object(fields) = body else {
        return Err(ApiError::bad_request("Request body must be a JSON object"));
    };
    let Some(Value::Array(metrics)) = fields.get("metrics") else {
        return Err(ApiError::bad_request("field 'metrics' must be an array"));
    };
    if metrics.is_empty() || metrics.len() > MAX_METRICS {
        return Err(ApiError::bad_request(format!(
            "metrics: a batch holds 1-{MAX_METRICS} points (got {})",
            metrics.len()
        )));
    }
    let session_id = string(&fields, "session_id", 200)?;
    let page = string(&fields, "url", 2000)?.map(|url| page_path(&url));
    let mut points = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let mut metric = metric.clone();
        if let Value::Object(point) = &mut metric {
            point.insert("project".to_string(), json!(project));
            let labels = point
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if labels.is_null() {
                *labels = Value::Object(Map::new());
            }
            if let Value::Object(labels) = labels {
                let enrich = [
                    ("source", Some("browser".to_string())),
                    ("session_id", session_id.clone()),
                    ("page", page.clone()),
                ];
                for (key, value) in enrich {
                    if let (false, Some(value)) = (labels.contains_key(key), value) {
                        labels.insert(key.to_string(), json!(value));
                    }
                }
            }
        }
        points.push(metric);
    }
    let points = Value::Array(points);
    // Validated as the collector validates, so that what is accepted here is accepted there.
    let now_ms = shared::time::now_ms();
    let window = metrics_collector::ingest::Window {
        now_ms,
        oldest_ms: now_ms - 30 * 86_400_000,
    };
    metrics_collector::ingest::parse_batch(&points, window)?;
    let count = metrics.len();
    let answer = json!({"status": "accepted", "count": count});
    let payload = Payload {
        body: points.to_string(),
        points: count,
        path: None,
    };
    Ok(enqueue(state, Upstream::Metrics, payload, (202, answer)))
}

/// The path of a page URL, without query and fragment (`https://x.org/a/b?q#f` → `/a/b`).
pub fn page_path(url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_start = if url.contains("://") {
        without_scheme.find('/').map_or(without_scheme.len(), |i| i)
    } else {
        0
    };
    let path = &without_scheme[path_start..];
    let end = path.find(['?', '#']).unwrap_or(path.len());
    match &path[..end] {
        "" => "/".to_string(),
        path => path.to_string(),
    }
}

/// Stores the payload in the outbox (waiting for the writer outside the handler slot) and
/// answers with `answer` (status, body), or `503` when the outbox is full.
pub(crate) fn enqueue(
    state: &State,
    upstream: Upstream,
    payload: Payload,
    answer: (u16, Value),
) -> Response {
    let writer = state.writer.clone();
    let doorbell = std::sync::Arc::clone(&state.doorbell);
    let job = Job::Enqueue {
        upstream,
        payload,
        limit: state.config.forward_queue,
        now_ms: shared::time::now_ms(),
    };
    Response::deferred(move || match writer.submit(job) {
        Ok(Outcome::Queued(true)) => {
            doorbell.ring();
            Response::json(answer.0, &answer.1)
        }
        Ok(Outcome::Queued(false)) => ApiError::unavailable(
            "The forward queue is full; retry later",
            FULL_RETRY_AFTER_SECS,
        )
        .into(),
        Ok(other) => ApiError::internal(
            "queueing a payload",
            format!("unexpected outcome {other:?}"),
        )
        .into(),
        Err(e) => ApiError::from(e).into(),
    })
}

/// An optional string field of at most `max` bytes (longer ones are cut at a character
/// boundary), `null` as absent.
fn string(fields: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text[..text.floor_char_boundary(max)].to_string())),
        Some(_) => Err(ApiError::bad_request(format!(
            "field '{name}' must be a string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_paths_drop_origin_query_and_fragment() {
        assert_eq!(
            page_path("https://shop.example.com/cart/42?x=1#top"),
            "/cart/42"
        );
        assert_eq!(page_path("https://shop.example.com"), "/");
        assert_eq!(page_path("https://shop.example.com?q"), "/");
        assert_eq!(page_path("/a/b?c"), "/a/b");
        assert_eq!(page_path("http://localhost:8080/ü/x"), "/ü/x");
    }
}
