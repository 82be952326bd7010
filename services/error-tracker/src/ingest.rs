//! Validating an error report (`POST /api/errors`) into a [`Report`].

use serde_json::{Map, Value};
use shared::http::ApiError;

use crate::fingerprint;

/// Longest kept message, in bytes; longer ones are cut at a character boundary.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Longest kept traceback, in bytes.
pub(crate) const MAX_TRACEBACK_BYTES: usize = 128 * 1024;

/// A validated error report, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Group key, see [`fingerprint::fingerprint`].
    pub fingerprint: String,
    pub project: String,
    pub environment: String,
    pub exception_type: String,
    pub message: String,
    pub traceback: String,
    pub request_url: Option<String>,
    pub request_method: Option<String>,
    /// `request_headers` as JSON text.
    pub request_headers: Option<String>,
    pub user_id: Option<String>,
    /// `extra` as JSON text.
    pub extra: Option<String>,
    /// `extra.session_id`, when it is a string (browser errors).
    pub session_id: Option<String>,
}

impl Report {
    /// Whether the report came through browser-relay (`request_method` `BROWSER`).
    pub fn is_browser(&self) -> bool {
        self.request_method.as_deref() == Some("BROWSER")
    }
}

/// Parses and validates a report body; every problem is a 400 naming the field.
pub fn parse_report(body: &Value) -> Result<Report, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::bad_request("Request body must be a JSON object"));
    };
    let project = required_string(fields, "project", 1, 100)?;
    let exception_type = required_string(fields, "exception_type", 1, 200)?;
    let message = cut_at_char_boundary(
        required_string(fields, "message", 0, usize::MAX)?,
        MAX_MESSAGE_BYTES,
    );
    let traceback = cut_at_char_boundary(
        required_string(fields, "traceback", 0, usize::MAX)?,
        MAX_TRACEBACK_BYTES,
    );
    let environment = optional_string(fields, "environment", 20)?
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "prod".to_string());
    let extra = present(fields, "extra");
    let session_id = extra
        .and_then(|e| e.get("session_id"))
        .and_then(Value::as_str)
        .map(String::from);
    let request_headers = match present(fields, "request_headers") {
        None => None,
        Some(headers @ Value::Object(_)) => Some(headers.to_string()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "field 'request_headers' must be an object",
            ))
        }
    };
    Ok(Report {
        fingerprint: fingerprint::fingerprint(&project, &exception_type, &traceback),
        project,
        environment,
        exception_type,
        message,
        traceback,
        request_url: optional_string(fields, "request_url", 2000)?,
        request_method: optional_string(fields, "request_method", 10)?,
        request_headers,
        user_id: optional_string(fields, "user_id", 200)?,
        extra: extra.map(Value::to_string),
        session_id,
    })
}

/// A field's value; `null` counts as absent.
fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn required_string(
    fields: &Map<String, Value>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<String, ApiError> {
    match optional_string(fields, name, max)? {
        None => Err(ApiError::bad_request(format!("field '{name}' is required"))),
        Some(value) if value.chars().count() < min => Err(ApiError::bad_request(format!(
            "field '{name}' must be {min}-{max} characters (got 0)"
        ))),
        Some(value) => Ok(value),
    }
}

fn optional_string(
    fields: &Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match present(fields, name) {
        None => Ok(None),
        Some(Value::String(value)) => {
            if max != usize::MAX {
                let chars = value.chars().count();
                if chars > max {
                    return Err(ApiError::bad_request(format!(
                        "field '{name}' must be at most {max} characters (got {chars})"
                    )));
                }
            }
            Ok(Some(value.clone()))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "field '{name}' must be a string"
        ))),
    }
}

/// Cuts `text` to at most `max_bytes` bytes without splitting a character.
pub fn cut_at_char_boundary(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"project": "p1", "exception_type": "ValueError", "message": "bad", "traceback": ""})
    }

    fn detail_for(body: Value) -> String {
        parse_report(&body).unwrap_err().detail().to_string()
    }

    #[test]
    fn defaults_and_nulls() {
        let mut body = valid();
        body["environment"] = Value::Null;
        body["extra"] = json!({"session_id": "s1", "release": "1.0"});
        let report = parse_report(&body).unwrap();
        assert_eq!(report.environment, "prod");
        assert_eq!(report.session_id.as_deref(), Some("s1"));
        assert!(!report.is_browser());
    }

    #[test]
    fn each_rule_names_its_field() {
        let mut missing = valid();
        missing.as_object_mut().unwrap().remove("traceback");
        assert_eq!(detail_for(missing), "field 'traceback' is required");
        let mut empty_project = valid();
        empty_project["project"] = json!("");
        assert!(detail_for(empty_project).contains("'project'"));
        let mut long_type = valid();
        long_type["exception_type"] = json!("é".repeat(201));
        assert_eq!(
            detail_for(long_type),
            "field 'exception_type' must be at most 200 characters (got 201)"
        );
        let mut wrong_type = valid();
        wrong_type["user_id"] = json!(42);
        assert_eq!(detail_for(wrong_type), "field 'user_id' must be a string");
        let mut headers = valid();
        headers["request_headers"] = json!("x");
        assert_eq!(
            detail_for(headers),
            "field 'request_headers' must be an object"
        );
        assert_eq!(detail_for(json!([1])), "Request body must be a JSON object");
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let mut body = valid();
        body["project"] = json!("ü".repeat(100));
        assert!(parse_report(&body).is_ok());
    }

    #[test]
    fn long_message_is_cut_on_a_character_boundary() {
        let mut body = valid();
        body["message"] = json!(format!("a{}", "€".repeat(30_000)));
        let report = parse_report(&body).unwrap();
        assert!(report.message.len() <= MAX_MESSAGE_BYTES);
        assert!(report.message.len() > MAX_MESSAGE_BYTES - 4);
    }
}
