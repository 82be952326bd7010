//! One Sentry error event (the JSON of a `store` body or of an envelope `event` item) mapped
//! onto a [`Report`]: the type and message of the error, its traceback rendered as the
//! language itself prints one, the request, the user, and everything else worth keeping in
//! `extra`. See <https://develop.sentry.dev/sdk/data-model/event-payloads/>.
//!
//! The traceback is rendered by [`super::traceback`], the group key made by
//! [`super::grouping`].
//!
//! Nothing here panics on any JSON: a field of the wrong type is ignored; only an event with
//! nothing to show (no exception, no message) is refused.

use serde_json::{Map, Value};
use shared::http::ApiError;

use super::grouping::grouping;
use super::traceback::{render, Style};
use crate::ingest::{cut_at_char_boundary, Report, MAX_MESSAGE_BYTES, MAX_TRACEBACK_BYTES};

/// The `exception_type` of an event without an exception (`capture_message`, logging): the
/// message is the error, "Message" says so in the list.
pub const MESSAGE_TYPE: &str = "Message";

/// Longest kept `extra` JSON, in bytes; bigger parts are dropped whole (see [`to_report`]).
const MAX_EXTRA_BYTES: usize = 64 * 1024;
/// Longest kept short string (release, server name, transaction, SDK name, ...), in characters.
const MAX_SHORT_CHARS: usize = 200;
/// Exceptions of a chain, and frames of a stack trace, read at most (Sentry keeps 250 frames).
const MAX_EXCEPTIONS: usize = 50;
const MAX_FRAMES: usize = 250;
/// Request headers kept at most, and the longest kept header value in characters.
const MAX_HEADERS: usize = 100;
const MAX_HEADER_CHARS: usize = 2000;
/// Headers never stored: credentials (the spec's Python client list plus Sentry's own).
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-sentry-auth",
    "proxy-authorization",
];

/// Whether an item type carries an error event we store ("event"; not transaction, session, sessions, client_report, attachment, ...).
pub fn is_error_item(kind: &str) -> bool {
    kind == "event"
}

/// The event's `event_id` (32 hex, dashes removed), or None.
///
/// Lower-cased; anything that is not 32 hex digits once the dashes are gone is no id.
pub fn event_id(event: &Value) -> Option<String> {
    normalized_event_id(event.get("event_id")?.as_str()?)
}

fn normalized_event_id(id: &str) -> Option<String> {
    let hex: String = id.chars().filter(|&c| c != '-').collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// A Sentry event (the JSON of a `store` body or an envelope `event` item) mapped onto a report of `project`.
///
/// - `exception_type` and `message`: the last exception of `exception.values` (the most
///   recent; `exception` may also be the array itself), its `value` falling back to the
///   event's message; an event with only a message (`logentry` or `message`) has type
///   [`MESSAGE_TYPE`]. The type is cut to 200 characters, the message to 64 KiB.
/// - `traceback`: rendered per platform (module docs), cut to 128 KiB. A message event shows
///   the stack of its crashed/current thread or its `stacktrace` when the SDK attached one.
/// - `environment`: cut to 20 characters, `prod` when absent; `user_id`: `user.id` (string
///   or number); `request_url` (`request.url` plus `?query_string` when the URL has none),
///   `request_headers` (object or `[name, value]` pairs, credentials dropped).
/// - `request_method`: `request.method`; an event of platform `javascript` (the browser
///   SDKs) is marked `BROWSER` like browser-relay's reports, with `page_url` and
///   `user_agent` in `extra`; any other event claiming `BROWSER` has no method.
/// - `extra`: `event_id`, `level`, `release`, `dist`, `environment` (uncut), `platform`,
///   `server_name`, `transaction`, `logger`, `sdk` (name, version), `user`, `tags` (pairs
///   become an object), `contexts`, and the event's own `extra`. When the JSON exceeds
///   64 KiB, `extra`, then `contexts`, `user`, `tags` are dropped whole until it fits, their
///   names listed under `dropped`. Breadcrumbs, modules, debug images and thread lists are
///   never kept.
/// - `session_id`: the event's `extra.session_id` or `tags.session_id`, as browser-relay's.
///
/// Errors: 400 when `event` is not an object, or has neither an exception nor a message.
pub fn to_report(event: &Value, project: &str) -> Result<Report, ApiError> {
    let Value::Object(fields) = event else {
        return Err(ApiError::bad_request("event must be a JSON object"));
    };
    let message = Message::of(fields);
    let mut exceptions = exceptions(fields);
    let is_message_event = exceptions.is_empty();
    if let (true, Some(message)) = (is_message_event, &message) {
        exceptions.push(Exception {
            ty: MESSAGE_TYPE,
            module: None,
            value: message.text,
            frames: message_stack(fields),
            cause: false,
        });
    }
    let Some(last) = exceptions.last() else {
        return Err(ApiError::bad_request(
            "event has no exception and no message",
        ));
    };
    let exception_type = cut_chars(last.ty, 200);
    let message_text = match (last.value, &message) {
        ("", Some(message)) => message.text,
        (value, _) => value,
    };
    let style = Style::of(fields, &exceptions);
    let traceback = cut_at_char_boundary(render(style, &exceptions), MAX_TRACEBACK_BYTES);
    let fingerprint = grouping(
        project,
        fields,
        &exceptions,
        // A message event groups by its template (`User %s failed`), not the formatted text.
        match &message {
            Some(m) if is_message_event => m.template,
            _ => message_text,
        },
        is_message_event,
    );

    let platform = str_field(fields, "platform");
    let is_browser = platform == Some("javascript");
    let request = fields.get("request").and_then(Value::as_object);
    let headers = request.and_then(|r| headers(r.get("headers")));
    let request_method = match request.and_then(|r| str_field(r, "method")) {
        _ if is_browser => Some("BROWSER".to_string()),
        Some(m) if m.chars().count() <= 10 && !m.eq_ignore_ascii_case("BROWSER") => {
            Some(m.to_ascii_uppercase())
        }
        _ => None,
    };
    let request_url = request.and_then(request_url);
    let session_id = [("extra", "session_id"), ("tags", "session_id")]
        .iter()
        .find_map(|(object, key)| fields.get(*object)?.get(*key)?.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| cut_chars(s, MAX_SHORT_CHARS));

    let mut extra = extra(fields);
    if is_browser {
        if let Some(url) = &request_url {
            extra.insert("page_url".into(), Value::from(url.as_str()));
        }
        let user_agent = headers.as_ref().and_then(|h| {
            h.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
                .and_then(|(_, v)| v.as_str())
        });
        if let Some(user_agent) = user_agent {
            extra.insert("user_agent".into(), Value::from(user_agent));
        }
    }
    if let Some(session_id) = &session_id {
        extra.insert("session_id".into(), Value::from(session_id.as_str()));
    }

    Ok(Report {
        fingerprint,
        project: project.to_string(),
        environment: str_field(fields, "environment")
            .map(|e| cut_chars(e, 20))
            .unwrap_or_else(|| "prod".to_string()),
        exception_type,
        message: cut_at_char_boundary(message_text.to_string(), MAX_MESSAGE_BYTES),
        traceback,
        request_url,
        request_method,
        request_headers: headers.map(|h| Value::Object(h).to_string()),
        user_id: fields
            .get("user")
            .and_then(|u| u.get("id"))
            .and_then(|id| match id {
                Value::String(s) if !s.is_empty() => Some(cut_chars(s, 200)),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        extra: Some(bounded_extra(extra)),
        session_id,
    })
}

// ---------------------------------------------------------------------------
// Reading the event
// ---------------------------------------------------------------------------

/// The event's message: the text shown and the template it was formatted from.
struct Message<'a> {
    text: &'a str,
    template: &'a str,
}

impl<'a> Message<'a> {
    /// `logentry` (or its old name `sentry.interfaces.Message`), else `message` (a string or
    /// an object like `logentry`): `formatted`, else `message`; `None` when all are empty.
    fn of(fields: &'a Map<String, Value>) -> Option<Message<'a>> {
        let from_object = |v: &'a Value| {
            let formatted = v.get("formatted").and_then(non_empty);
            let template = v.get("message").and_then(non_empty);
            let text = formatted.or(template)?;
            Some(Message {
                text,
                template: template.unwrap_or(text),
            })
        };
        ["logentry", "sentry.interfaces.Message", "message"]
            .iter()
            .filter_map(|key| fields.get(*key))
            .find_map(|v| match v {
                Value::String(s) if !s.is_empty() => Some(Message {
                    text: s,
                    template: s,
                }),
                Value::Object(_) => from_object(v),
                _ => None,
            })
    }
}

/// One exception of the chain.
pub(super) struct Exception<'a> {
    pub(super) ty: &'a str,
    pub(super) module: Option<&'a str>,
    pub(super) value: &'a str,
    /// Outermost first, as Sentry sends them.
    pub(super) frames: Vec<Frame<'a>>,
    /// Whether `mechanism.source` says it is the `__cause__` of the next one (Python).
    pub(super) cause: bool,
}

/// One stack frame; every field optional.
pub(super) struct Frame<'a> {
    pub(super) function: Option<&'a str>,
    pub(super) module: Option<&'a str>,
    pub(super) filename: Option<&'a str>,
    pub(super) abs_path: Option<&'a str>,
    pub(super) lineno: Option<u64>,
    pub(super) colno: Option<u64>,
    pub(super) context_line: Option<&'a str>,
    pub(super) in_app: Option<bool>,
    pub(super) platform: Option<&'a str>,
}

impl<'a> Frame<'a> {
    fn of(frame: &'a Map<String, Value>) -> Frame<'a> {
        Frame {
            function: str_field(frame, "function").filter(|f| *f != "?"),
            module: str_field(frame, "module"),
            filename: str_field(frame, "filename"),
            abs_path: str_field(frame, "abs_path"),
            lineno: frame.get("lineno").and_then(Value::as_u64),
            colno: frame.get("colno").and_then(Value::as_u64),
            context_line: str_field(frame, "context_line"),
            in_app: frame.get("in_app").and_then(Value::as_bool),
            platform: str_field(frame, "platform"),
        }
    }

    /// The path as the runtime prints it: absolute when known.
    pub(super) fn path(&self) -> &'a str {
        self.abs_path.or(self.filename).unwrap_or("<unknown>")
    }

    /// Whether the frame is the application's own for grouping: marked `in_app` and not in
    /// a package directory (`node_modules`, `site-packages`, `dist-packages`) — browser SDKs
    /// mark every frame in-app, and a source-mapped bundle shows which came from packages,
    /// whose minified names change from build to build.
    pub(super) fn is_app(&self) -> bool {
        let in_package = |path: &str| {
            ["node_modules/", "site-packages/", "dist-packages/"]
                .iter()
                .any(|dir| path.starts_with(dir) || path.contains(&format!("/{dir}")))
        };
        self.in_app == Some(true)
            && !self.abs_path.is_some_and(in_package)
            && !self.filename.is_some_and(in_package)
    }
}

/// The chain, oldest first: `exception.values`, or `exception` as an array (old protocol),
/// or a single exception object. Entries without type, value or frames are skipped.
fn exceptions(fields: &Map<String, Value>) -> Vec<Exception<'_>> {
    let list = match fields.get("exception") {
        Some(single @ Value::Object(e)) => match e.get("values") {
            Some(Value::Array(values)) => values.as_slice(),
            _ if e.contains_key("type") || e.contains_key("value") => std::slice::from_ref(single),
            _ => &[],
        },
        Some(Value::Array(values)) => values.as_slice(),
        _ => &[],
    };
    let skip = list.len().saturating_sub(MAX_EXCEPTIONS);
    list[skip..]
        .iter()
        .filter_map(Value::as_object)
        .map(|e| Exception {
            ty: str_field(e, "type").unwrap_or(""),
            module: str_field(e, "module"),
            value: str_field(e, "value").unwrap_or(""),
            frames: frames(e.get("stacktrace")),
            cause: e
                .get("mechanism")
                .and_then(|m| m.get("source"))
                .and_then(Value::as_str)
                == Some("__cause__"),
        })
        .filter(|e| !e.ty.is_empty() || !e.value.is_empty() || !e.frames.is_empty())
        .map(|e| Exception {
            ty: if e.ty.is_empty() { "Error" } else { e.ty },
            ..e
        })
        .collect()
}

/// The frames of a `stacktrace` object, the innermost `MAX_FRAMES` at most.
fn frames(stacktrace: Option<&Value>) -> Vec<Frame<'_>> {
    let Some(Value::Array(frames)) = stacktrace.and_then(|s| s.get("frames")) else {
        return Vec::new();
    };
    let skip = frames.len().saturating_sub(MAX_FRAMES);
    frames[skip..]
        .iter()
        .filter_map(Value::as_object)
        .map(Frame::of)
        .collect()
}

/// The stack a message event carries, if any: its crashed or current thread's, else the
/// first thread's with one, else the event's `stacktrace`.
fn message_stack(fields: &Map<String, Value>) -> Vec<Frame<'_>> {
    let threads = match fields.get("threads") {
        Some(Value::Object(t)) => t.get("values").and_then(Value::as_array),
        Some(Value::Array(t)) => Some(t),
        _ => None,
    };
    let with_stack = || {
        threads
            .into_iter()
            .flatten()
            .filter(|t| t.get("stacktrace").is_some())
    };
    let flagged = |t: &&Value| {
        ["crashed", "current"]
            .iter()
            .any(|flag| t.get(*flag).and_then(Value::as_bool) == Some(true))
    };
    let thread = with_stack().find(flagged).or_else(|| with_stack().next());
    frames(
        thread
            .and_then(|t| t.get("stacktrace"))
            .or(fields.get("stacktrace")),
    )
}

// ---------------------------------------------------------------------------
// Request, extra
// ---------------------------------------------------------------------------

/// `request.url`, with `?query_string` appended when the SDK sent it apart (Python).
fn request_url(request: &Map<String, Value>) -> Option<String> {
    let url = str_field(request, "url")?;
    let url = match str_field(request, "query_string") {
        Some(query) if !url.contains('?') => format!("{url}?{}", query.trim_start_matches('?')),
        _ => url.to_string(),
    };
    Some(cut_chars(&url, 2000))
}

/// The request headers as an object of strings, credentials dropped; `None` when none is left.
fn headers(headers: Option<&Value>) -> Option<Map<String, Value>> {
    let pairs: Vec<(&str, &Value)> = match headers? {
        Value::Object(h) => h.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        Value::Array(h) => h
            .iter()
            .filter_map(|pair| match pair.as_array()?.as_slice() {
                [Value::String(name), value] => Some((name.as_str(), value)),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    let mut kept = Map::new();
    for (name, value) in pairs {
        let value = match value {
            Value::String(s) => cut_chars(s, MAX_HEADER_CHARS),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        let dropped = DROPPED_HEADERS.iter().any(|d| name.eq_ignore_ascii_case(d));
        if dropped || name.is_empty() || kept.len() >= MAX_HEADERS {
            continue;
        }
        // Repeated headers (pair lists) are joined as HTTP folds them.
        match kept.get_mut(name) {
            Some(Value::String(previous)) => {
                previous.push_str(", ");
                previous.push_str(&value);
            }
            _ => {
                kept.insert(cut_chars(name, MAX_SHORT_CHARS), Value::from(value));
            }
        }
    }
    (!kept.is_empty()).then_some(kept)
}

/// Everything kept besides the report's own fields (see [`to_report`]).
fn extra(fields: &Map<String, Value>) -> Map<String, Value> {
    let mut extra = Map::new();
    if let Some(id) = str_field(fields, "event_id").and_then(normalized_event_id) {
        extra.insert("event_id".into(), Value::from(id));
    }
    for key in [
        "level",
        "release",
        "dist",
        "environment",
        "platform",
        "server_name",
        "transaction",
        "logger",
    ] {
        if let Some(value) = str_field(fields, key) {
            extra.insert(key.into(), Value::from(cut_chars(value, MAX_SHORT_CHARS)));
        }
    }
    if let Some(sdk) = fields.get("sdk").and_then(Value::as_object) {
        let mut kept = Map::new();
        for key in ["name", "version"] {
            if let Some(value) = str_field(sdk, key) {
                kept.insert(key.into(), Value::from(cut_chars(value, MAX_SHORT_CHARS)));
            }
        }
        if !kept.is_empty() {
            extra.insert("sdk".into(), Value::Object(kept));
        }
    }
    if let Some(tags) = tags(fields.get("tags")) {
        extra.insert("tags".into(), Value::Object(tags));
    }
    for key in ["user", "contexts", "extra"] {
        if let Some(value @ Value::Object(o)) = fields.get(key) {
            if !o.is_empty() {
                extra.insert(key.into(), value.clone());
            }
        }
    }
    extra
}

/// `tags` as an object of strings: an object, or `[key, value]` pairs (older SDKs).
fn tags(tags: Option<&Value>) -> Option<Map<String, Value>> {
    let as_text = |v: &Value| match v {
        Value::String(s) => Some(Value::from(s.as_str())),
        Value::Number(_) | Value::Bool(_) => Some(Value::from(v.to_string())),
        _ => None,
    };
    let kept: Map<String, Value> = match tags? {
        Value::Object(t) => t
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), as_text(v)?)))
            .collect(),
        Value::Array(t) => t
            .iter()
            .filter_map(|pair| match pair.as_array()?.as_slice() {
                [Value::String(k), v] => Some((k.clone(), as_text(v)?)),
                _ => None,
            })
            .collect(),
        _ => return None,
    };
    (!kept.is_empty()).then_some(kept)
}

/// `extra` as JSON text of at most [`MAX_EXTRA_BYTES`]: the biggest, least useful parts are
/// dropped whole (a cut JSON document would not be JSON).
fn bounded_extra(mut extra: Map<String, Value>) -> String {
    let mut dropped = Vec::new();
    for key in ["extra", "contexts", "user", "tags"] {
        if Value::Object(extra.clone()).to_string().len() <= MAX_EXTRA_BYTES {
            break;
        }
        if extra.remove(key).is_some() {
            dropped.push(Value::from(key));
        }
    }
    if !dropped.is_empty() {
        extra.insert("dropped".into(), Value::Array(dropped));
    }
    Value::Object(extra).to_string()
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// A non-empty string field.
pub(super) fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(non_empty)
}

fn non_empty(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| !s.is_empty())
}

/// The first `max` characters of `text`.
fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::locate;
    use crate::sentry::{decode, envelope};
    use serde_json::json;

    const STORE: &[u8] = include_bytes!("../../tests/fixtures/sentry/python-chained.store.json");
    const PYTHON_GZ: &[u8] =
        include_bytes!("../../tests/fixtures/sentry/python-chained.envelope.gz");
    const PYTHON_BR: &[u8] =
        include_bytes!("../../tests/fixtures/sentry/python-chained.envelope.br");
    const PYTHON_MESSAGE: &[u8] =
        include_bytes!("../../tests/fixtures/sentry/python-message.envelope");
    const PYTHON_FINGERPRINT: &[u8] =
        include_bytes!("../../tests/fixtures/sentry/python-fingerprint.envelope.gz");
    const BROWSER: &[u8] = include_bytes!("../../tests/fixtures/sentry/browser-typeerror.envelope");

    /// The event items of an envelope body as sent, decoded and parsed.
    fn events(encoding: Option<&str>, body: &[u8]) -> Vec<Value> {
        let decoded = decode::decode(encoding, body, decode::MAX_DECODED_BYTES).unwrap();
        let envelope = envelope::parse(&decoded).unwrap();
        envelope
            .items
            .iter()
            .filter(|i| is_error_item(i.kind()))
            .map(|i| serde_json::from_slice(&i.payload).unwrap())
            .collect()
    }

    fn only_event(encoding: Option<&str>, body: &[u8]) -> Value {
        let mut events = events(encoding, body);
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn extra_of(report: &Report) -> Value {
        serde_json::from_str(report.extra.as_deref().unwrap()).unwrap()
    }

    fn report(event: Value) -> Report {
        to_report(&event, "p1").unwrap_or_else(|e| panic!("{e}: {event}"))
    }

    #[test]
    fn python_chained_store_body() {
        let event: Value = serde_json::from_slice(STORE).unwrap();
        let r = report(event);
        assert_eq!(r.project, "p1");
        assert_eq!(r.exception_type, "ValueError");
        assert_eq!(r.message, "unknown sku 'Z9'");
        assert_eq!(r.environment, "staging");
        assert_eq!(r.user_id.as_deref(), Some("4711"));
        assert_eq!(r.request_method, None);
        assert!(!r.is_browser());
        let tb = &r.traceback;
        assert!(
            tb.starts_with("Traceback (most recent call last):\n  File \""),
            "{tb}"
        );
        assert!(tb.contains("/shop/checkout.py\", line 5, in load_price\n    return prices[sku]\nKeyError: 'Z9'\n"), "{tb}");
        assert!(tb.contains("\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n"), "{tb}");
        assert!(
            tb.contains("python_app.py\", line 40, in main\n    checkout({\"sku\": \"Z9\"})\n"),
            "{tb}"
        );
        assert!(tb.ends_with("/shop/checkout.py\", line 12, in checkout\n    raise ValueError(f\"unknown sku {cart['sku']!r}\") from e\nValueError: unknown sku 'Z9'"), "{tb}");
        // The throw site, as the fingerprint module reads Python tracebacks.
        let at = locate(tb).unwrap();
        assert!(
            at.file.ends_with("/shop/checkout.py") && at.line == 12,
            "{at:?}"
        );
        let extra = extra_of(&r);
        assert_eq!(extra["release"], "shop@1.4.2");
        assert_eq!(extra["level"], "error");
        assert_eq!(extra["server_name"], "web-1");
        assert_eq!(
            extra["sdk"],
            json!({"name": "sentry.python", "version": "2.75.0"})
        );
        assert_eq!(extra["tags"], json!({"region": "eu-west"}));
        assert_eq!(
            extra["user"],
            json!({"id": 4711, "email": "ada@example.com"})
        );
        assert_eq!(extra["extra"]["cart_size"], 3);
        assert_eq!(extra["event_id"].as_str().map(str::len), Some(32));
        assert!(extra.get("breadcrumbs").is_none() && extra.get("modules").is_none());
    }

    #[test]
    fn python_envelopes_gzip_and_brotli_group_with_the_store_body() {
        let store = report(serde_json::from_slice(STORE).unwrap());
        for (encoding, body) in [("gzip", PYTHON_GZ), ("br", PYTHON_BR)] {
            let r = report(only_event(Some(encoding), body));
            assert_eq!(r.exception_type, "ValueError", "{encoding}");
            assert_eq!(r.traceback, store.traceback, "{encoding}");
            // Another occurrence of the same error: the same group.
            assert_eq!(r.fingerprint, store.fingerprint, "{encoding}");
        }
    }

    #[test]
    fn python_capture_message() {
        let event = only_event(None, PYTHON_MESSAGE);
        let r = report(event.clone());
        assert_eq!(r.exception_type, MESSAGE_TYPE);
        assert_eq!(r.message, "payment provider slow: 2300 ms");
        assert_eq!(r.traceback, "Message: payment provider slow: 2300 ms");
        assert_eq!(extra_of(&r)["level"], "warning");
        assert_eq!(r.environment, "staging");
        // Grouped by the message: another text is another group.
        let mut other = event;
        other["message"] = json!("payment provider slow: 900 ms");
        assert_ne!(report(other).fingerprint, r.fingerprint);
    }

    #[test]
    fn python_custom_fingerprint() {
        let event = only_event(Some("gzip"), PYTHON_FINGERPRINT);
        assert_eq!(event["fingerprint"], json!(["{{ default }}", "checkout"]));
        let custom = report(event.clone());
        assert_eq!(custom.exception_type, "ZeroDivisionError");
        assert!(custom
            .traceback
            .ends_with("\nZeroDivisionError: division by zero"));
        let mut plain = event;
        plain.as_object_mut().unwrap().remove("fingerprint");
        assert_ne!(report(plain.clone()).fingerprint, custom.fingerprint);
        plain["fingerprint"] = json!(["{{default}}"]);
        assert_eq!(report(plain.clone()).fingerprint, {
            plain.as_object_mut().unwrap().remove("fingerprint");
            report(plain).fingerprint
        });
    }

    #[test]
    fn browser_typeerror() {
        let event = only_event(None, BROWSER);
        let r = report(event);
        assert_eq!(r.exception_type, "TypeError");
        assert_eq!(
            r.message,
            "Cannot read properties of null (reading 'items')"
        );
        assert_eq!(r.environment, "production");
        assert_eq!(r.user_id.as_deref(), Some("u-42"));
        assert_eq!(r.request_method.as_deref(), Some("BROWSER"));
        assert!(r.is_browser());
        let lines: Vec<&str> = r.traceback.lines().collect();
        assert_eq!(
            lines[0],
            "TypeError: Cannot read properties of null (reading 'items')"
        );
        assert!(
            lines[1].starts_with("    at renderCart (http://127.0.0.1:"),
            "{}",
            r.traceback
        );
        assert!(
            lines[1].ends_with("/static/app.js:8182:21)"),
            "{}",
            r.traceback
        );
        assert!(lines[2].starts_with("    at onCartLoaded (") && lines[2].ends_with(":8185:37)"));
        let at = locate(&r.traceback).unwrap();
        assert!(
            at.file.ends_with("/static/app.js") && at.line == 8182,
            "{at:?}"
        );
        let url = r.request_url.as_deref().unwrap();
        assert!(url.ends_with("/cart?step=2"), "{url}");
        let extra = extra_of(&r);
        assert_eq!(extra["release"], "shop-web@2.0.1");
        assert_eq!(extra["page_url"], url);
        assert!(extra["user_agent"]
            .as_str()
            .unwrap()
            .contains("HeadlessChrome"));
        assert_eq!(extra["tags"], json!({"page": "cart"}));
        assert_eq!(extra["contexts"]["culture"]["timezone"], "UTC");
        let headers: Value = serde_json::from_str(r.request_headers.as_deref().unwrap()).unwrap();
        assert!(headers["User-Agent"].as_str().is_some());
    }

    fn python_error(project: &str, lines: [u64; 2], function: &str) -> (Value, String) {
        let event = json!({
            "platform": "python",
            "exception": {"values": [{
                "type": "ValueError", "value": "bad",
                "stacktrace": {"frames": [
                    {"filename": "site-packages/lib.py", "module": "lib", "function": "call", "lineno": 3, "in_app": false},
                    {"filename": "app/a.py", "abs_path": "/srv/app/a.py", "module": "app.a", "function": "main", "lineno": lines[0], "in_app": true},
                    {"filename": "app/b.py", "abs_path": "/srv/app/b.py", "module": "app.b", "function": function, "lineno": lines[1], "in_app": true,
                     "context_line": "    raise ValueError('bad')"}
                ]}
            }]}
        });
        let fp = to_report(&event, project).unwrap().fingerprint;
        (event, fp)
    }

    #[test]
    fn grouping_rules() {
        let (event, base) = python_error("p1", [10, 20], "handler");
        assert_eq!(base.len(), 32);
        assert!(base.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        // The same error raised a few lines lower (an edit above it): the same group.
        assert_eq!(python_error("p1", [11, 27], "handler").1, base);
        // Another function: another group. Another project: never the same group.
        assert_ne!(python_error("p1", [10, 20], "other").1, base);
        assert_ne!(python_error("p2", [10, 20], "handler").1, base);
        // Library frames do not count while there are in-app frames.
        let mut lib = event.clone();
        lib["exception"]["values"][0]["stacktrace"]["frames"][0]["function"] = json!("call2");
        assert_eq!(report(lib).fingerprint, base);
        // Another type: another group; another message: the same.
        let mut other_type = event.clone();
        other_type["exception"]["values"][0]["type"] = json!("KeyError");
        assert_ne!(report(other_type).fingerprint, base);
        let mut other_message = event.clone();
        other_message["exception"]["values"][0]["value"] = json!("worse");
        assert_eq!(report(other_message).fingerprint, base);
        // Custom fingerprints.
        let with = |fingerprint: Value| {
            let mut e = event.clone();
            e["fingerprint"] = fingerprint;
            report(e).fingerprint
        };
        let custom = with(json!(["payments"]));
        assert_ne!(custom, base);
        assert_eq!(with(json!(["payments"])), custom);
        assert_ne!(with(json!(["payments", "x"])), custom);
        assert_eq!(with(json!(["{{ default }}"])), base);
        assert_eq!(with(json!([" {{default}} "])), base);
        assert_ne!(with(json!(["{{ default }}", "x"])), base);
        assert_ne!(with(json!(["{{ default }}", "x"])), with(json!(["x"])));
        // Unusable fingerprints fall back to the default.
        assert_eq!(with(json!([])), base);
        assert_eq!(with(json!("payments")), base);
        assert_eq!(with(json!([null, {}])), base);
        assert_eq!(with(json!([1, true])), with(json!(["1", "true"])));
        // Custom parts cannot pose as the default's components.
        assert_ne!(
            with(json!(["type:ValueError"])),
            with(json!(["{{ default }}"]))
        );
    }

    #[test]
    fn grouping_without_in_app_frames_or_without_frames() {
        let frames = |f: &str| {
            json!({"exception": {"values": [{"type": "E", "value": "v", "stacktrace": {"frames": [
                {"module": "lib", "function": f, "lineno": 1}
            ]}}]}})
        };
        assert_ne!(
            report(frames("a")).fingerprint,
            report(frames("b")).fingerprint
        );
        let mut moved = frames("a");
        moved["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] = json!(99);
        assert_eq!(report(moved).fingerprint, report(frames("a")).fingerprint);
        let bare = |value: &str| json!({"exception": {"values": [{"type": "E", "value": value}]}});
        assert_ne!(report(bare("x")).fingerprint, report(bare("y")).fingerprint);
        assert_eq!(report(bare("x")).fingerprint, report(bare("x")).fingerprint);
        assert_eq!(report(bare("x")).traceback, "E: x");
    }

    #[test]
    fn package_frames_marked_in_app_do_not_group() {
        // A browser SDK marks every frame in-app; after source mapping, the SDK's own wrapper
        // sits in node_modules with a minified name that changes from build to build.
        let event = |wrapper: &str| {
            json!({"platform": "javascript", "exception": {"values": [{"type": "TypeError", "value": "v",
            "stacktrace": {"frames": [
                {"filename": "../node_modules/@sentry/browser/src/helpers.ts", "function": wrapper, "in_app": true},
                {"filename": "../src/checkout.js", "function": "checkout", "in_app": true}
            ]}}]}})
        };
        assert_eq!(
            report(event("HTMLButtonElement.r")).fingerprint,
            report(event("HTMLButtonElement.q")).fingerprint
        );
        let mut other = event("r");
        other["exception"]["values"][0]["stacktrace"]["frames"][1]["function"] = json!("pay");
        assert_ne!(report(other).fingerprint, report(event("r")).fingerprint);
    }

    #[test]
    fn event_shapes() {
        // `exception` as the array itself (old protocol), `logentry`, a numeric user id.
        let r = report(json!({
            "exception": [{"type": "IOError", "value": ""}],
            "logentry": {"message": "disk %s full", "formatted": "disk /var full"},
            "user": {"id": 7}, "environment": "a-very-long-environment-name"
        }));
        assert_eq!(r.exception_type, "IOError");
        assert_eq!(r.message, "disk /var full");
        assert_eq!(r.user_id.as_deref(), Some("7"));
        assert_eq!(r.environment, "a-very-long-environm");
        assert_eq!(r.environment.chars().count(), 20);
        // A single exception object; no type → `Error`.
        let r = report(json!({"exception": {"value": "boom"}}));
        assert_eq!(
            (r.exception_type.as_str(), r.message.as_str()),
            ("Error", "boom")
        );
        // `message` as an object; message templates group, formatted texts show.
        let a =
            report(json!({"message": {"message": "user %s failed", "formatted": "user 1 failed"}}));
        let b =
            report(json!({"message": {"message": "user %s failed", "formatted": "user 2 failed"}}));
        assert_eq!(
            (a.exception_type.as_str(), a.message.as_str()),
            ("Message", "user 1 failed")
        );
        assert_eq!(a.fingerprint, b.fingerprint);
        // Wrong types everywhere are ignored.
        let r = report(json!({
            "message": "m", "exception": {"values": [1, "x", {"type": 5}, null]},
            "environment": 3, "user": "u", "request": [1], "tags": 4, "contexts": [],
            "extra": "e", "sdk": 1, "fingerprint": {}, "platform": {}, "level": 2,
            "threads": {"values": [{"stacktrace": 5}]}
        }));
        assert_eq!(
            (r.exception_type.as_str(), r.environment.as_str()),
            ("Message", "prod")
        );
        assert_eq!(
            (r.user_id, r.request_url, r.request_headers),
            (None, None, None)
        );
        assert_eq!(r.extra.as_deref(), Some("{}"));
        for (event, detail) in [
            (json!([]), "event must be a JSON object"),
            (json!("x"), "event must be a JSON object"),
            (json!({}), "event has no exception and no message"),
            (
                json!({"exception": {"values": []}, "message": ""}),
                "event has no exception and no message",
            ),
            (
                json!({"exception": {"values": [{}]}, "logentry": {}}),
                "event has no exception and no message",
            ),
        ] {
            let err = to_report(&event, "p").unwrap_err();
            assert_eq!((err.status(), err.detail()), (400, detail), "{event}");
        }
    }

    #[test]
    fn request_headers_and_tags() {
        let r = report(json!({
            "platform": "python", "message": "m",
            "request": {
                "url": "https://shop.example/orders", "query_string": "page=2", "method": "post",
                "headers": [["Authorization", "Bearer x"], ["Cookie", "a=b"], ["X-Sentry-Auth", "k"],
                            ["Accept", "text/html"], ["Accept", "application/json"], ["x-api-key", "k"],
                            ["Content-Length", 12], ["Bad"], [1, "x"]]
            },
            "tags": [["region", "eu"], ["retry", 2], ["bad"]],
            "user": {"id": "u-9", "ip_address": "10.0.0.1"}
        }));
        assert_eq!(
            r.request_url.as_deref(),
            Some("https://shop.example/orders?page=2")
        );
        assert_eq!(r.request_method.as_deref(), Some("POST"));
        let headers: Value = serde_json::from_str(r.request_headers.as_deref().unwrap()).unwrap();
        assert_eq!(
            headers,
            json!({"Accept": "text/html, application/json", "Content-Length": "12"})
        );
        assert_eq!(extra_of(&r)["tags"], json!({"region": "eu", "retry": "2"}));
        assert_eq!(r.user_id.as_deref(), Some("u-9"));
        // Only browser SDK events are BROWSER; a server event cannot claim it.
        let r = report(
            json!({"message": "m", "request": {"method": "BROWSER", "url": "u?a=1", "query_string": "b=2"}}),
        );
        assert_eq!(
            (r.request_method, r.request_url.as_deref()),
            (None, Some("u?a=1"))
        );
        let r = report(json!({"message": "m", "request": {"method": "PROPFINDXXXX"}}));
        assert_eq!(r.request_method, None);
        let r = report(json!({"message": "m", "extra": {"session_id": "s-1"}}));
        assert_eq!(r.session_id.as_deref(), Some("s-1"));
        assert_eq!(extra_of(&r)["session_id"], "s-1");
    }

    #[test]
    fn other_platforms() {
        let frames = json!([
            {"module": "com.shop.Main", "function": "main", "filename": "Main.java", "lineno": 10, "abs_path": "Main.java"},
            {"module": "com.shop.Cart", "function": "total", "filename": "Cart.java", "lineno": 42}
        ]);
        let java = report(json!({"platform": "java", "exception": {"values": [
            {"type": "IOException", "module": "java.io", "value": "disk", "stacktrace": {"frames": [{"module": "com.shop.Disk", "function": "read"}]}},
            {"type": "IllegalStateException", "module": "java.lang", "value": "bad cart", "stacktrace": {"frames": frames}}
        ]}}));
        assert_eq!(java.exception_type, "IllegalStateException");
        assert_eq!(java.traceback, "java.lang.IllegalStateException: bad cart\n\tat com.shop.Cart.total(Cart.java:42)\n\tat com.shop.Main.main(Main.java:10)\nCaused by: java.io.IOException: disk\n\tat com.shop.Disk.read(Unknown Source)");
        let go = report(
            json!({"platform": "go", "exception": [{"type": "*errors.errorString", "value": "nope", "stacktrace": {"frames": [
                {"module": "main", "function": "main", "abs_path": "/src/main.go", "lineno": 9},
                {"module": "main", "function": "handler", "abs_path": "/src/main.go", "lineno": 21}
            ]}}]}),
        );
        assert_eq!(go.traceback, "*errors.errorString: nope\n\nmain.handler(...)\n\t/src/main.go:21\nmain.main(...)\n\t/src/main.go:9");
        let ruby = report(
            json!({"platform": "ruby", "exception": [{"type": "NoMethodError", "value": "undefined method", "stacktrace": {"frames": [
                {"function": "call", "filename": "app/x.rb", "lineno": 3, "colno": 1}
            ]}}]}),
        );
        assert_eq!(
            ruby.traceback,
            "NoMethodError: undefined method\n  at call (app/x.rb:3:1)"
        );
        // No platform: the frames' file names decide.
        let node = report(
            json!({"exception": [{"type": "Error", "value": "x", "stacktrace": {"frames": [
                {"function": "?", "filename": "/srv/index.js", "lineno": 3, "colno": 9},
                {"function": "f", "filename": "/srv/a.mjs", "lineno": 1}
            ]}}]}),
        );
        assert_eq!(
            node.traceback,
            "Error: x\n    at f (/srv/a.mjs:1)\n    at /srv/index.js:3:9"
        );
        let py = report(
            json!({"exception": [{"type": "E", "value": "x", "stacktrace": {"frames": [{"filename": "a.py"}]}}]}),
        );
        assert_eq!(
            py.traceback,
            "Traceback (most recent call last):\n  File \"a.py\", line ?, in <module>\nE: x"
        );
        // Python: `__cause__` picks CPython's other separator; a module prefixes the type.
        let cause = report(json!({"platform": "python", "exception": {"values": [
            {"type": "KeyError", "value": "k", "mechanism": {"source": "__cause__"}},
            {"type": "PaymentError", "module": "shop.errors", "value": "p"}
        ]}}));
        assert_eq!(cause.traceback, "KeyError: k\n\nThe above exception was the direct cause of the following exception:\n\nshop.errors.PaymentError: p");
        assert_eq!(cause.exception_type, "PaymentError");
    }

    #[test]
    fn message_event_with_a_thread_stack() {
        let r = report(
            json!({"platform": "python", "message": "slow", "threads": {"values": [
                {"id": 1, "stacktrace": {"frames": [{"filename": "other.py", "lineno": 1}]}},
                {"id": 2, "current": true, "stacktrace": {"frames": [{"filename": "w.py", "function": "work", "lineno": 4}]}}
            ]}}),
        );
        assert_eq!(
            r.traceback,
            "Traceback (most recent call last):\n  File \"w.py\", line 4, in work\nMessage: slow"
        );
    }

    #[test]
    fn sizes_are_bounded() {
        let big = "x".repeat(300 * 1024);
        let r = report(json!({
            "platform": "python",
            "exception": {"values": [{"type": "E".repeat(300), "value": big, "stacktrace": {"frames":
                (0..2000).map(|i| json!({"filename": "f.py", "lineno": i, "context_line": "y".repeat(100)})).collect::<Vec<_>>()}}]},
            "release": "r".repeat(1000),
            "extra": {"blob": big}, "contexts": {"c": {"d": "z".repeat(70 * 1024)}},
            "request": {"url": "u".repeat(5000), "headers": {"X-Long": big}},
            "user": {"id": "9".repeat(500)}
        }));
        assert_eq!(r.exception_type.len(), 200);
        assert_eq!(r.message.len(), MAX_MESSAGE_BYTES);
        assert!(r.traceback.len() <= MAX_TRACEBACK_BYTES);
        assert_eq!(r.traceback.matches("  File ").count(), MAX_FRAMES);
        assert_eq!(r.request_url.as_ref().map(String::len), Some(2000));
        assert_eq!(r.user_id.as_ref().map(String::len), Some(200));
        assert!(r.request_headers.as_ref().unwrap().len() < 3000);
        let extra = extra_of(&r);
        assert!(r.extra.as_ref().unwrap().len() <= MAX_EXTRA_BYTES);
        assert_eq!(extra["dropped"], json!(["extra", "contexts"]));
        assert_eq!(
            extra["release"].as_str().map(str::len),
            Some(MAX_SHORT_CHARS)
        );
        assert!(extra.get("user").is_some());
    }

    #[test]
    fn ids_and_item_kinds() {
        assert_eq!(
            event_id(&json!({"event_id": "9EC79C33-EC99-42AB-8353-589FCB2E04DC"})).as_deref(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        for bad in [
            json!({}),
            json!({"event_id": 5}),
            json!({"event_id": "xyz"}),
            json!({"event_id": "9ec79c33ec9942ab8353589fcb2e04dz"}),
            json!([]),
        ] {
            assert_eq!(event_id(&bad), None, "{bad}");
        }
        assert!(is_error_item("event"));
        for kind in [
            "transaction",
            "session",
            "sessions",
            "client_report",
            "attachment",
            "",
            "Event",
        ] {
            assert!(!is_error_item(kind), "{kind}");
        }
    }
}
