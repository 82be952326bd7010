//! The Sentry tunnel: envelopes of a browser Sentry SDK, checked by the DSN key in their
//! header, symbolicated, queued, and grouped by the error-tracker. `@sentry/browser` itself
//! is driven in Chromium by `tests/sentry/`.

use std::net::SocketAddr;

use serde_json::{json, Value};

use shared::testing::wait_for;

use crate::support::*;

const ORIGIN: (&str, &str) = ("Origin", "https://shop.example.com");
const SCRIPT: &str = "https://cdn.example.com/assets/app.min.js";

/// An envelope as `@sentry/browser` sends it through a tunnel: the DSN in the header, the
/// event item without a length.
fn envelope(key: &str, event: &Value) -> Vec<u8> {
    let id = event["event_id"].as_str().unwrap_or_default();
    let header = json!({"event_id": id, "sent_at": "2026-12-01T00:00:00.000Z",
        "sdk": {"name": "sentry.javascript.browser", "version": "10.0.0"},
        "dsn": format!("https://{key}@relay.example.com/1")});
    format!("{header}\n{}\n{event}", json!({"type": "event"})).into_bytes()
}

/// A browser `TypeError` thrown from the minified bundle, frames outermost first.
fn browser_event(id: &str) -> Value {
    let frame = |function: &str| json!({"function": function, "abs_path": SCRIPT, "filename": SCRIPT, "lineno": 1, "colno": 1, "in_app": true});
    json!({"event_id": id, "platform": "javascript", "level": "error",
        "release": "1.0.0", "environment": "production", "user": {"id": "u-7"},
        "request": {"url": "https://shop.example.com/cart", "headers": {"User-Agent": "Chromium"}},
        "exception": {"values": [{"type": "TypeError", "value": "x is undefined",
            "mechanism": {"type": "onerror", "handled": false},
            "stacktrace": {"frames": [frame("b"), frame("a")]}}]}})
}

fn tunnel(relay: SocketAddr, body: &[u8]) -> shared::testing::HttpResponse {
    let headers = [ORIGIN, ("Content-Type", "text/plain;charset=UTF-8")];
    request(relay, "POST", "/api/browser/sentry", &headers, Some(body))
}

fn upload_map(stack: &Stack) {
    // `app.min.js` line 1 column 1 → `src/app.js` line 1 column 1, named `boom`.
    let map = r#"{"version":3,"file":"app.min.js","sources":["src/app.js"],"names":["boom"],"mappings":"AAAAA"}"#;
    let body =
        json!({"project": "shop", "release": "1.0.0", "file_url": SCRIPT, "map_content": map});
    let answer = request(
        stack.relay(),
        "POST",
        "/api/source-maps",
        &[("X-API-Key", ADMIN)],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
}

#[test]
fn a_tunneled_event_arrives_symbolicated_under_the_keys_project() {
    let stack = Stack::start(&[]);
    upload_map(&stack);
    let id = "0123456789abcdef0123456789abcdef";
    let answer = tunnel(stack.relay(), &envelope(DSN, &browser_event(id)));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json(), json!({ "id": id }));
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://shop.example.com")
    );
    // The same error again: one group, seen twice.
    let again = browser_event("fedcba9876543210fedcba9876543210");
    assert_eq!(tunnel(stack.relay(), &envelope(DSN, &again)).status, 200);
    let group = wait_for(
        "the group seen twice",
        std::time::Duration::from_secs(60),
        || {
            let groups = wait_for_groups(stack.errors_addr, 1);
            match groups[0]["count"].as_i64() {
                Some(2) => Ok(groups[0].clone()),
                count => Err(format!("count {count:?}")),
            }
        },
    );
    assert_eq!(group["project"], "shop");
    assert_eq!(group["exception_type"], "TypeError");
    assert_eq!(group["message"], "x is undefined");
    assert_eq!(group["environment"], "production");
    let detail = get_json(
        stack.errors_addr,
        &format!("/api/errors/{}", group["id"]),
        ERRORS_KEY,
    )
    .expect("the group's detail");
    let traceback = detail["traceback"].as_str().unwrap_or_default();
    assert!(
        traceback.contains("boom") && traceback.contains("src/app.js:1:1"),
        "original names and positions in {traceback}"
    );
    assert!(!traceback.contains("app.min.js"), "{traceback}");
    let occurrence = &detail["occurrences"][0];
    assert_eq!(occurrence["user_id"], "u-7", "{occurrence}");
    assert_eq!(occurrence["extra"]["release"], "1.0.0", "{occurrence}");
}

#[test]
fn an_event_with_large_breadcrumbs_is_accepted_and_arrives() {
    let stack = Stack::start(&[]);
    let mut event = browser_event("0123456789abcdef0123456789abcdef");
    let crumb = json!({"category": "console", "message": "x".repeat(1000)});
    event["breadcrumbs"] = json!({"values": vec![crumb; 150]});
    let body = envelope(DSN, &event);
    assert!(body.len() > 150_000, "{} bytes", body.len());
    let answer = tunnel(stack.relay(), &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let groups = wait_for_groups(stack.errors_addr, 1);
    assert_eq!(groups[0]["exception_type"], "TypeError");
    let too_big = vec![b'x'; 300 * 1024];
    assert_eq!(tunnel(stack.relay(), &too_big).status, 413);
}

#[test]
fn the_envelope_dsn_must_name_an_active_key() {
    let stack = Stack::start(&[]);
    let event = browser_event("0123456789abcdef0123456789abcdef");
    let unknown = tunnel(
        stack.relay(),
        &envelope("ffffffffffffffffffffffffffffffff", &event),
    );
    assert_eq!(unknown.status, 401, "{}", unknown.text());
    assert_eq!(
        unknown.header("access-control-allow-origin"),
        Some("https://shop.example.com"),
        "a refusal is readable by the page"
    );
    let no_dsn = format!("{{}}\n{}\n{event}", json!({"type": "event"}));
    assert_eq!(tunnel(stack.relay(), no_dsn.as_bytes()).status, 401);
    assert_eq!(tunnel(stack.relay(), b"not an envelope").status, 400);
    // Sessions and client reports are accepted and not forwarded.
    let header = json!({"dsn": format!("https://{DSN}@relay.example.com/1")});
    let session = format!("{header}\n{{\"type\":\"session\"}}\n{{\"sid\":\"s\"}}\n");
    let answer = tunnel(stack.relay(), session.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(relay_health(stack.relay())["queue_depth"], 0);
}

#[test]
fn over_the_key_limit_the_sdk_is_told_to_back_off() {
    let stack = Stack::start(&[("RATE_LIMIT", "2")]);
    let body = envelope(DSN, &browser_event("0123456789abcdef0123456789abcdef"));
    let answers: Vec<_> = (0..3).map(|_| tunnel(stack.relay(), &body)).collect();
    let limited = &answers[2];
    assert_eq!(limited.status, 429, "{}", limited.text());
    let retry_after = limited.header("retry-after").unwrap_or_default();
    assert!(!retry_after.is_empty());
    assert_eq!(
        limited.header("x-sentry-rate-limits"),
        Some(format!("{retry_after}::organization").as_str())
    );
    assert_eq!(
        limited.header("access-control-expose-headers"),
        Some("Retry-After, X-Sentry-Rate-Limits")
    );
}
