//! The Sentry endpoints: `POST /api/<project_id>/envelope/` and `/store/` (the paths an SDK
//! derives from its DSN) and the admin API of the keys they accept (`/api/sentry-keys`).
//!
//! Who may send: a request names a key in `X-Sentry-Auth` (or `Authorization: Sentry ...`)
//! or `?sentry_key=`; an active Sentry key files the events under its project, and the
//! service's API key (also accepted as `X-API-Key`) under the project `?project=` or the
//! path names (the relay's tunnel forwards so). A
//! request naming no key is read, and the envelope header's `dsn` must then name an active
//! key (a tunnel forwarding browser envelopes as they are). The answers are the ones SDKs
//! expect: `200 {"id": "<event_id>"}`, and on a `429` Sentry's `X-Sentry-Rate-Limits` beside
//! `Retry-After`, so an SDK backs off rather than retrying.

use serde::Serialize;
use serde_json::{json, Value};
use shared::auth::{constant_time_eq, has_valid_key};
use shared::http::{ApiError, Request, Response};
use shared::keys::{self, KeyJob, PublicKey};

use super::{auth, decode, envelope, event};
use crate::api::Storer;
use crate::db::{self, Job, Outcome};
use crate::ingest::Report;
use crate::State;

/// Largest `envelope`/`store` body as sent (compressed or not); once decompressed it may be
/// [`decode::MAX_DECODED_BYTES`].
pub const MAX_SENTRY_BODY: usize = 1024 * 1024;

/// The route guard: a key the request names must be valid (`401` otherwise).
pub fn check_credentials(state: &State, request: &Request) -> Result<(), ApiError> {
    credentials(state, request).map(|_| ())
}

/// The route headers of the Sentry endpoints: [`rate_limit_header`].
pub fn rate_limit_headers(
    _state: &State,
    _request: &Request,
    answer: &Response,
) -> Vec<(&'static str, String)> {
    rate_limit_header(answer).into_iter().collect()
}

/// Sentry's rate-limit header for a `429`: all categories, for its `Retry-After` seconds
/// (an SDK then stops sending for that long rather than retrying).
pub fn rate_limit_header(answer: &Response) -> Option<(&'static str, String)> {
    let seconds = answer
        .header("Retry-After")
        .filter(|_| answer.status() == 429)?;
    Some(("X-Sentry-Rate-Limits", format!("{seconds}::organization")))
}

/// `POST /api/{project_id}/envelope/`: stores the envelope's error events; other items
/// (transactions, sessions, client reports, attachments) are accepted and ignored.
pub fn envelope(state: &State, request: &Request) -> Result<Response, ApiError> {
    let project = credentials(state, request)?;
    let body = decode::decode(
        request.header("Content-Encoding"),
        request.body(),
        decode::MAX_DECODED_BYTES,
    )?;
    let envelope = envelope::parse(&body)?;
    let project = match project {
        Some(project) => project,
        None => envelope
            .dsn()
            .and_then(auth::key_from_dsn)
            .and_then(|key| state.sentry_keys.project(key))
            .ok_or_else(invalid_key)?,
    };
    let mut reports = Vec::new();
    let mut id = envelope.event_id().map(String::from);
    for (index, item) in envelope.items.iter().enumerate() {
        if !event::is_error_item(item.kind()) {
            continue;
        }
        let event: Value = serde_json::from_slice(&item.payload).map_err(|e| {
            ApiError::bad_request(format!(
                "envelope item {}: not a JSON event: {e}",
                index + 1
            ))
        })?;
        id = id.or_else(|| event::event_id(&event));
        reports.push(event::to_report(&event, &project)?);
    }
    Ok(store(state, reports, id))
}

/// `POST /api/{project_id}/store/`: one event as JSON (the older protocol).
pub fn store_event(state: &State, request: &Request) -> Result<Response, ApiError> {
    let project = credentials(state, request)?.ok_or_else(invalid_key)?;
    let body = decode::decode(
        request.header("Content-Encoding"),
        request.body(),
        decode::MAX_DECODED_BYTES,
    )?;
    let event: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body is not a JSON event: {e}")))?;
    let id = event::event_id(&event);
    let report = event::to_report(&event, &project)?;
    Ok(store(state, vec![report], id))
}

/// Stores the reports outside the handler slot, then answers `{"id": ...}`.
fn store(state: &State, reports: Vec<Report>, id: Option<String>) -> Response {
    let storer = Storer::new(state);
    Response::deferred(move || {
        for report in reports {
            if let Err(e) = storer.store(report) {
                return e.into();
            }
        }
        Response::json(200, &json!({ "id": id }))
    })
}

/// The project of the key a request names (`Some`), `None` when it names none, `401` when
/// the key is not valid.
fn credentials(state: &State, request: &Request) -> Result<Option<String>, ApiError> {
    let api_key = state.config.common.api_key.expose();
    let named = request
        .header("X-Sentry-Auth")
        .and_then(auth::key_from_auth_header)
        .or_else(|| {
            request
                .header("Authorization")
                .and_then(auth::key_from_auth_header)
        })
        .or_else(|| request.query("sentry_key"));
    if let Some(key) = named {
        if constant_time_eq(key.as_bytes(), api_key.as_bytes()) {
            return path_project(request).map(Some);
        }
        return state
            .sentry_keys
            .project(key)
            .map(Some)
            .ok_or_else(invalid_key);
    }
    if has_valid_key(request, api_key) {
        return path_project(request).map(Some);
    }
    Ok(None)
}

/// With the API key, the Monlight project is `?project=` (any name, as the relay sends it),
/// else the path's `{project_id}` itself.
fn path_project(request: &Request) -> Result<String, ApiError> {
    let project = request
        .query("project")
        .or_else(|| request.param("project_id"))
        .unwrap_or_default();
    let chars = project.chars().count();
    if chars == 0 || chars > keys::MAX_PROJECT_CHARS {
        return Err(ApiError::bad_request(format!(
            "the project ('project' parameter or path) must be 1-{} characters",
            keys::MAX_PROJECT_CHARS
        )));
    }
    Ok(project.to_string())
}

fn invalid_key() -> ApiError {
    ApiError::new(401, "Invalid Sentry key")
}

/// A key as the admin API shows it, with the DSN an SDK is given.
#[derive(Debug, Serialize)]
struct SentryKey {
    #[serde(flatten)]
    key: PublicKey,
    /// `<scheme>://<public_key>@<BASE_URL host and path>/<id>`.
    dsn: String,
}

impl SentryKey {
    fn new(state: &State, key: PublicKey) -> SentryKey {
        let base = &state.config.base_url;
        let (scheme, rest) = base.split_once("://").unwrap_or(("http", base));
        let dsn = format!("{scheme}://{}@{rest}/{}", key.public_key, key.id);
        SentryKey { key, dsn }
    }
}

/// `POST /api/sentry-keys` `{"project"}`: a new key from the OS's random source, with its DSN.
pub fn create_key(state: &State, request: &Request) -> Result<Response, ApiError> {
    match state.writer.submit(Job::Key(keys::create_job(request)?))? {
        Outcome::Key(Some(key)) => {
            state.sentry_keys.update(&key);
            Ok(Response::json(201, &SentryKey::new(state, key)))
        }
        other => Err(unexpected("creating a Sentry key", other)),
    }
}

/// `GET /api/sentry-keys`: every key, oldest first, with its DSN.
pub fn list_keys(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let keys: Vec<SentryKey> = db::SENTRY_KEYS
        .list(&state.reads.get())?
        .into_iter()
        .map(|key| SentryKey::new(state, key))
        .collect();
    Ok(Response::json(200, &json!({ "keys": keys })))
}

/// `DELETE /api/sentry-keys/{id}`: deactivate (SDKs using it get `401` at once).
pub fn deactivate_key(state: &State, request: &Request) -> Result<Response, ApiError> {
    let id = keys::path_id(request, "Sentry key")?;
    match state.writer.submit(Job::Key(KeyJob::Deactivate { id }))? {
        Outcome::Key(Some(key)) => {
            state.sentry_keys.update(&key);
            Ok(Response::json(200, &json!({"status": "deactivated"})))
        }
        Outcome::Key(None) => Err(ApiError::not_found("Sentry key not found")),
        other => Err(unexpected("deactivating a Sentry key", other)),
    }
}

fn unexpected(what: &str, outcome: Outcome) -> ApiError {
    ApiError::internal(what, format!("unexpected outcome {outcome:?}"))
}
