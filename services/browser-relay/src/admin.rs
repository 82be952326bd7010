//! The admin endpoints (`ADMIN_API_KEY`): DSN keys and source maps.

use serde_json::{json, Value};
use shared::http::{ApiError, Request, Response};

use crate::db::{self, Job, Outcome};
use shared::keys::{self, KeyJob};

use crate::{symbolicate, State, MAX_MAP_BYTES};

fn unexpected(what: &str, outcome: Outcome) -> ApiError {
    ApiError::internal(what, format!("unexpected outcome {outcome:?}"))
}

/// A required string field of 1 to `max` characters.
fn required(body: &Value, name: &str, max: usize) -> Result<String, ApiError> {
    match body.get(name) {
        Some(Value::String(text)) if !text.is_empty() && text.chars().count() <= max => {
            Ok(text.clone())
        }
        Some(Value::String(_)) => Err(ApiError::bad_request(format!(
            "field '{name}' must be 1-{max} characters"
        ))),
        None | Some(Value::Null) => {
            Err(ApiError::bad_request(format!("field '{name}' is required")))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "field '{name}' must be a string"
        ))),
    }
}

/// `POST /api/dsn-keys` `{"project"}`: a new key from the OS's random source.
pub fn create_key(state: &State, request: &Request) -> Result<Response, ApiError> {
    match state.writer.submit(Job::Key(keys::create_job(request)?))? {
        Outcome::Key(Some(key)) => {
            state.keys.update(&key);
            Ok(Response::json(201, &key))
        }
        other => Err(unexpected("creating a DSN key", other)),
    }
}

/// `GET /api/dsn-keys`.
pub fn list_keys(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let keys = db::DSN_KEYS.list(&state.reads.get())?;
    Ok(Response::json(200, &json!({ "keys": keys })))
}

/// `DELETE /api/dsn-keys/{id}`: deactivate (browsers using it get 401 at once).
pub fn deactivate_key(state: &State, request: &Request) -> Result<Response, ApiError> {
    let id = keys::path_id(request, "DSN key")?;
    match state.writer.submit(Job::Key(KeyJob::Deactivate { id }))? {
        Outcome::Key(Some(key)) => {
            state.keys.update(&key);
            Ok(Response::json(200, &json!({"status": "deactivated"})))
        }
        Outcome::Key(None) => Err(ApiError::not_found("DSN key not found")),
        other => Err(unexpected("deactivating a DSN key", other)),
    }
}

/// `POST /api/source-maps` `{"project","release","file_url","map_content"}`: the map (a JSON
/// string holding it, or the map object) must parse as a source map v3; it replaces the map
/// of the same project, release and file path.
pub fn upload_map(state: &State, request: &Request) -> Result<Response, ApiError> {
    let body: Value = request.json()?;
    let project = required(&body, "project", 100)?;
    let release = required(&body, "release", 200)?;
    let file_url = required(&body, "file_url", 2000)?;
    let content = match body.get("map_content") {
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(map @ Value::Object(_)) => map.to_string().into_bytes(),
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("field 'map_content' is required"))
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "field 'map_content' must be a source map (an object, or a string holding one)",
            ))
        }
    };
    drop(body);
    if content.len() > MAX_MAP_BYTES {
        return Err(ApiError::new(
            413,
            format!("map_content exceeds {} MiB", MAX_MAP_BYTES / 1024 / 1024),
        ));
    }
    symbolicate::Map::parse(&content).map_err(|why| {
        ApiError::bad_request(format!(
            "field 'map_content' is not a valid source map: {why}"
        ))
    })?;
    let file_path = symbolicate::file_path(&file_url);
    let job = Job::PutMap {
        project: project.clone(),
        release: release.clone(),
        file_path,
        file_url: file_url.clone(),
        content,
        now_ms: shared::time::now_ms(),
    };
    match state.writer.submit(job)? {
        Outcome::Map(id) => {
            state.maps.remove(id);
            let answer = json!({"status": "uploaded", "id": id, "project": project, "release": release, "file_url": file_url});
            Ok(Response::json(201, &answer))
        }
        other => Err(unexpected("storing a source map", other)),
    }
}

/// `GET /api/source-maps?project=`: without content.
pub fn list_maps(state: &State, request: &Request) -> Result<Response, ApiError> {
    let maps = db::maps(&state.reads.get(), request.query("project"))?;
    Ok(Response::json(
        200,
        &json!({"total": maps.len(), "source_maps": maps}),
    ))
}

/// `DELETE /api/source-maps/{id}`.
pub fn delete_map(state: &State, request: &Request) -> Result<Response, ApiError> {
    let id = keys::path_id(request, "Source map")?;
    match state.writer.submit(Job::DeleteMap { id })? {
        Outcome::Found(Some(_)) => {
            state.maps.remove(id);
            Ok(Response::json(200, &json!({"status": "deleted"})))
        }
        Outcome::Found(None) => Err(ApiError::not_found("Source map not found")),
        other => Err(unexpected("deleting a source map", other)),
    }
}
