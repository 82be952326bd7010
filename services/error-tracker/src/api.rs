//! The HTTP handlers: each turns a request into a job for the writer or a read on the pool.

use std::sync::Arc;

use serde_json::{json, Value};
use shared::http::params::invalid;
use shared::http::{ApiError, Request, Response};
use shared::time::now_ms;

use shared::writer::Writer;

use crate::alerts::{Alert, AlertEvent, Alerts};
use crate::db::{self, DistinctColumn, Job, Outcome, ReportStatus};
use crate::ingest::{parse_report, Report};
use crate::query::list_filter;
use crate::State;

/// `POST /api/errors`: store a report (created 201, reopened 201, incremented 200); a new
/// or reopened group is alerted on once committed.
pub fn report_error(state: &State, request: &Request) -> Result<Response, ApiError> {
    let report = parse_report(&request.json()?)?;
    // Validated: waiting for the writer happens outside the handler slot, so more reports
    // share one transaction.
    let store = Storer::new(state);
    Ok(Response::deferred(move || {
        let fingerprint = report.fingerprint.clone();
        match store.store(report) {
            Ok(Stored { status, id, count }) => {
                let code = if status == ReportStatus::Incremented {
                    200
                } else {
                    201
                };
                let body = json!({"status": status.as_str(), "id": id, "fingerprint": fingerprint, "count": count});
                Response::json(code, &body)
            }
            Err(e) => e.into(),
        }
    }))
}

/// What storing a report did to its group.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    /// Created, incremented or reopened.
    pub status: ReportStatus,
    /// The group's id.
    pub id: i64,
    /// How often the group has been seen.
    pub count: i64,
}

/// Stores validated reports from a deferred response (outside the handler slot): through
/// the writer, then an alert for a new or reopened group.
pub struct Storer {
    writer: Writer<Job, Outcome>,
    alerts: Alerts,
    max_occurrences: u32,
}

impl Storer {
    /// What storing needs from the state.
    pub fn new(state: &State) -> Storer {
        Storer {
            writer: state.writer.clone(),
            alerts: state.alerts.clone(),
            max_occurrences: state.config.max_occurrences,
        }
    }

    /// Stores one report once committed; alerts on a new or reopened group.
    pub fn store(&self, report: Report) -> Result<Stored, ApiError> {
        let report = Arc::new(report);
        let job = Job::Report {
            report: Arc::clone(&report),
            now_ms: now_ms(),
            max_occurrences: self.max_occurrences,
        };
        match self.writer.submit(job)? {
            Outcome::Reported { status, id, count } => {
                if let Some(event) = AlertEvent::for_status(status) {
                    self.alerts
                        .notify(Alert::from_report(event, id, count, &report));
                }
                Ok(Stored { status, id, count })
            }
            other => Err(ApiError::internal(
                "storing a report",
                format!("unexpected outcome {other:?}"),
            )),
        }
    }
}

/// `GET /api/errors`: one page of groups matching the filters.
pub fn list_errors(state: &State, request: &Request) -> Result<Response, ApiError> {
    let filter = list_filter(request)?;
    let (errors, total) = db::list(&state.reads.get(), &filter)?;
    let body =
        json!({"errors": errors, "total": total, "limit": filter.limit, "offset": filter.offset});
    Ok(Response::json(200, &body))
}

/// `GET /api/errors/{id}`: a group with its traceback, occurrences, hourly trend
/// (`trend=24h`, the default, or `7d`) and the project's log containers.
pub fn error_detail(state: &State, request: &Request) -> Result<Response, ApiError> {
    let id = group_id(request)?;
    let hours = match request.query("trend").unwrap_or("24h") {
        "24h" => 24,
        "7d" => db::TREND_DAYS * 24,
        other => return Err(invalid("trend", other, "24h or 7d")),
    };
    match db::detail(&state.reads.get(), id, hours, now_ms())? {
        Some(mut group) => {
            group.log_containers = state
                .config
                .project_containers
                .get(&group.summary.project)
                .cloned()
                .unwrap_or_default();
            Ok(Response::json(200, &group))
        }
        None => Err(error_not_found()),
    }
}

/// `POST /api/errors/resolve`: resolve several groups → a result per id, in order.
pub fn resolve_many(state: &State, request: &Request) -> Result<Response, ApiError> {
    update_many(state, request, true)
}

/// `POST /api/errors/unresolve`: reopen several groups → a result per id, in order.
pub fn unresolve_many(state: &State, request: &Request) -> Result<Response, ApiError> {
    update_many(state, request, false)
}

/// Ids in one bulk request at most.
pub const MAX_BULK_IDS: usize = 200;

fn update_many(state: &State, request: &Request, resolve: bool) -> Result<Response, ApiError> {
    let ids = bulk_ids(&request.json::<Value>()?)?;
    let job = Job::UpdateMany {
        ids: ids.clone(),
        resolve,
        now_ms: now_ms(),
    };
    let found = match state.writer.submit(job)? {
        Outcome::UpdatedMany(found) => found,
        other => {
            return Err(ApiError::internal(
                "updating groups",
                format!("unexpected outcome {other:?}"),
            ))
        }
    };
    let done = if resolve { "resolved" } else { "unresolved" };
    let results: Vec<_> = ids
        .iter()
        .zip(found)
        .map(|(id, found)| json!({"id": id, "status": if found { done } else { "not_found" }}))
        .collect();
    Ok(Response::json(200, &json!({ "results": results })))
}

/// The `ids` of a bulk body: 1 to [`MAX_BULK_IDS`] integers.
fn bulk_ids(body: &Value) -> Result<Vec<i64>, ApiError> {
    let Some(items) = body.get("ids").and_then(Value::as_array) else {
        return Err(ApiError::bad_request(
            "field 'ids' must be an array of group ids",
        ));
    };
    if items.is_empty() || items.len() > MAX_BULK_IDS {
        return Err(ApiError::bad_request(format!(
            "field 'ids' must hold 1-{MAX_BULK_IDS} ids (got {})",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| {
            item.as_i64().ok_or_else(|| {
                let got = match item {
                    Value::Number(n) => n.to_string(),
                    Value::String(_) => "a string".to_string(),
                    Value::Null => "null".to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Array(_) => "an array".to_string(),
                    Value::Object(_) => "an object".to_string(),
                };
                ApiError::bad_request(format!("field 'ids' must hold integers (got {got})"))
            })
        })
        .collect()
}

/// `POST /api/errors/{id}/resolve`.
pub fn resolve(state: &State, request: &Request) -> Result<Response, ApiError> {
    let id = group_id(request)?;
    update(
        state,
        Job::Resolve {
            id,
            now_ms: now_ms(),
        },
    )?;
    Ok(Response::json(
        200,
        &json!({"status": "resolved", "id": id}),
    ))
}

/// `POST /api/errors/{id}/unresolve`.
pub fn unresolve(state: &State, request: &Request) -> Result<Response, ApiError> {
    let id = group_id(request)?;
    update(state, Job::Unresolve { id })?;
    Ok(Response::json(
        200,
        &json!({"status": "unresolved", "id": id}),
    ))
}

/// `GET /api/projects`.
pub fn projects(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let projects = db::distinct(&state.reads.get(), DistinctColumn::Project)?;
    Ok(Response::json(200, &json!({ "projects": projects })))
}

/// `GET /api/environments`.
pub fn environments(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let environments = db::distinct(&state.reads.get(), DistinctColumn::Environment)?;
    Ok(Response::json(
        200,
        &json!({ "environments": environments }),
    ))
}

/// `POST /api/test-alert`: a test alert through every configured channel, in the
/// background → 202 with the channels; 503 when there is none.
pub fn test_alert(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let channels = state.alerts.send_test()?;
    Ok(Response::json(
        202,
        &json!({"status": "test alert dispatched", "channels": channels}),
    ))
}

/// `GET /health`: no key, never rate limited; 503 when the database cannot be read.
pub fn health(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let figures = db::health_counts(&state.reads.get()).map(|(total, unresolved)| {
        let alerts = state.alerts.stats();
        let figures = json!({"errors_total": total, "errors_unresolved": unresolved,
            "alerts_sent": alerts.sent, "alerts_failed": alerts.failed,
            "alerts_dropped": alerts.dropped});
        figures.as_object().cloned().unwrap_or_default()
    });
    Ok(shared::health::answer(figures, &state.watchdog))
}

fn update(state: &State, job: Job) -> Result<(), ApiError> {
    match state.writer.submit(job)? {
        Outcome::Updated { found: true } => Ok(()),
        _ => Err(error_not_found()),
    }
}

/// The `{id}` path parameter; a non-numeric id is simply not found.
fn group_id(request: &Request) -> Result<i64, ApiError> {
    request
        .param("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(error_not_found)
}

fn error_not_found() -> ApiError {
    ApiError::not_found("Error not found")
}
