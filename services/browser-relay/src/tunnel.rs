//! The Sentry tunnel, `POST /api/browser/sentry`: a browser Sentry SDK (`@sentry/browser`
//! with `tunnel` set to this URL) sends its envelopes here. The DSN in the envelope header
//! must name an active DSN key of this relay: its project is where the events go, and its
//! limits apply. Each error event's stack frames are rewritten with the project's source
//! maps for the event's `release`, the event is checked the way the error-tracker will read
//! it, and an envelope of the events alone is stored in the outbox for the error-tracker's
//! envelope endpoint; the browser gets `200 {"id": "<event_id>"}` as from Sentry. Items
//! other than error events (sessions, client reports, transactions) are dropped here.

use std::borrow::Cow;
use std::fmt::Write;

use error_tracker::sentry::{auth, decode, envelope, event};
use serde_json::{json, Map, Value};
use shared::http::{ApiError, Request, Response};

use crate::browser::{self, enqueue};
use crate::db::{Payload, Upstream};
use crate::State;

/// Largest envelope as sent: a browser event with its breadcrumbs is often larger than the
/// other browser endpoints' `MAX_BODY_SIZE`; what is queued is much smaller (see
/// [`UNKEPT_FIELDS`]).
pub const MAX_TUNNEL_BODY: usize = 256 * 1024;

/// Event fields the error-tracker does not keep, dropped before the event is queued.
const UNKEPT_FIELDS: &[&str] = &[
    "breadcrumbs",
    "debug_meta",
    "modules",
    "threads",
    "spans",
    "measurements",
];

/// `POST /api/browser/sentry`.
pub fn envelope(state: &State, request: &Request) -> Result<Response, ApiError> {
    let body = decode::decode(
        request.header("Content-Encoding"),
        request.body(),
        decode::MAX_DECODED_BYTES,
    )?;
    let envelope = envelope::parse(&body)?;
    let key = envelope
        .dsn()
        .and_then(auth::key_from_dsn)
        .ok_or_else(browser::invalid_key)?;
    let project = browser::check_key(state, key)?;
    let mut id = envelope.event_id().map(String::from);
    let mut events = Vec::new();
    for (index, item) in envelope.items.iter().enumerate() {
        if !event::is_error_item(item.kind()) {
            continue;
        }
        let mut event: Value = serde_json::from_slice(&item.payload).map_err(|e| {
            ApiError::bad_request(format!(
                "envelope item {}: not a JSON event: {e}",
                index + 1
            ))
        })?;
        if let Value::Object(fields) = &mut event {
            fields.retain(|name, _| !UNKEPT_FIELDS.contains(&name.as_str()));
        }
        symbolicate(state, &project, &mut event);
        // Refused here, with the reason, rather than queued and refused upstream.
        event::to_report(&event, &project)?;
        id = id.or_else(|| event::event_id(&event));
        let payload = serde_json::to_vec(&event)
            .map_err(|e| ApiError::internal("serializing an event", e))?;
        let header = Map::from_iter([
            ("type".to_string(), json!("event")),
            ("length".to_string(), json!(payload.len())),
        ]);
        events.push(envelope::Item {
            header,
            payload: Cow::Owned(payload),
        });
    }
    let answer = json!({ "id": id });
    if events.is_empty() {
        return Ok(Response::json(200, &answer));
    }
    let forwarded = envelope::Envelope {
        header: envelope.header.clone(),
        items: events,
    };
    // Envelope headers and events are JSON, so UTF-8.
    let body = String::from_utf8(forwarded.to_bytes())
        .map_err(|_| ApiError::bad_request("envelope header is not UTF-8"))?;
    let payload = Payload {
        body,
        points: 1,
        path: Some(format!(
            "/api/0/envelope/?project={}",
            query_escape(&project)
        )),
    };
    Ok(enqueue(state, Upstream::Errors, payload, (200, answer)))
}

/// Rewrites the frames of every exception of the event with the project's source maps for
/// the event's `release` (none: kept as they are).
fn symbolicate(state: &State, project: &str, event: &mut Value) {
    let Some(release) = event.get("release").and_then(Value::as_str) else {
        return;
    };
    let release = release.to_string();
    let exceptions = match event.get_mut("exception") {
        Some(Value::Object(exception)) => exception.get_mut("values"),
        Some(values @ Value::Array(_)) => Some(values),
        _ => None,
    };
    let Some(Value::Array(exceptions)) = exceptions else {
        return;
    };
    for exception in exceptions {
        if let Some(Value::Array(frames)) = exception.pointer_mut("/stacktrace/frames") {
            browser::rewrite_frames(state, project, &release, frames);
        }
    }
}

/// `text` as a query value: unreserved characters as they are, the rest percent-encoded.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_escape("shop"), "shop");
        assert_eq!(query_escape("a b/c&d=é"), "a%20b%2Fc%26d%3D%C3%A9");
    }
}
