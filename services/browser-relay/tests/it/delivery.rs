//! What arrives upstream, and who may send it: the key's project, the context, the metric
//! labels; keys; CORS on every answer.

use std::time::Duration;

use serde_json::{json, Value};
use shared::testing::wait_for;

use crate::support::*;

#[test]
fn a_browser_error_arrives_with_the_keys_project_and_its_context() {
    let stack = Stack::start(&[]);
    let body = json!({
        "type": "TypeError", "message": "x is undefined", "project": "someone-else",
        "stack": "TypeError: x is undefined\n    at f (https://shop.example.com/app.js:1:20)",
        "url": "https://shop.example.com/cart?step=2", "user_agent": "Mozilla/5.0 test",
        "session_id": "sess-1", "release": "1.2.3", "timestamp": "2026-01-01T12:00:00Z",
        "context": {"user_id": "u-42", "plan": "pro"}
    });
    let answer = post_browser(stack.relay(), "/api/browser/errors", &body);
    assert_eq!(
        (answer.status, answer.json()),
        (202, json!({"status": "accepted"}))
    );
    let group = &wait_for_groups(stack.errors_addr, 1)[0];
    assert_eq!(
        group["project"],
        json!("shop"),
        "the key's project, never the body's"
    );
    let detail = get_json(
        stack.errors_addr,
        &format!("/api/errors/{}", group["id"]),
        ERRORS_KEY,
    )
    .unwrap();
    let occurrence = &detail["occurrences"][0];
    assert_eq!(occurrence["request_method"], json!("BROWSER"), "{detail}");
    assert_eq!(
        occurrence["request_url"],
        json!("https://shop.example.com/cart?step=2")
    );
    assert_eq!(occurrence["user_id"], json!("u-42"));
    let extra = &occurrence["extra"];
    assert_eq!(
        (
            extra["user_agent"].clone(),
            extra["session_id"].clone(),
            extra["release"].clone(),
            extra["page_url"].clone()
        ),
        (
            json!("Mozilla/5.0 test"),
            json!("sess-1"),
            json!("1.2.3"),
            json!("https://shop.example.com/cart?step=2")
        )
    );
    assert_eq!(extra["context"], json!({"user_id": "u-42", "plan": "pro"}));
    assert_eq!(extra["timestamp"], json!("2026-01-01T12:00:00Z"));
    assert!(detail["traceback"]
        .as_str()
        .unwrap_or_default()
        .contains("app.js:1:20"));
}

#[test]
fn metrics_arrive_with_source_page_and_session_labels_and_keep_their_own() {
    let stack = Stack::start(&[]);
    let body = json!({
        "metrics": [
            {"name": "web_vitals_lcp", "type": "histogram", "value": 1250.5},
            {"name": "web_vitals_cls", "type": "histogram", "value": 0.05, "labels": {"page": "/own", "source": "synthetic"}}
        ],
        "session_id": "sess-9", "url": "https://shop.example.com/dash/7?tab=2#top"
    });
    let answer = post_browser(stack.relay(), "/api/browser/metrics", &body);
    assert_eq!(
        (answer.status, answer.json()),
        (202, json!({"status": "accepted", "count": 2}))
    );
    let series = |name: &str| -> Value {
        wait_for(
            &format!("{name} in the collector"),
            Duration::from_secs(30),
            || {
                let path = format!("/api/metrics?name={name}&period=1h&project=shop");
                match get_json(stack.metrics.addr(), &path, METRICS_KEY) {
                    Some(answer) if answer["series"].as_array().is_some_and(|s| !s.is_empty()) => {
                        Ok(answer)
                    }
                    other => Err(format!("{other:?}")),
                }
            },
        )
    };
    assert_eq!(
        series("web_vitals_lcp")["series"][0]["labels"],
        json!({"page": "/dash/7", "session_id": "sess-9", "source": "browser"})
    );
    assert_eq!(
        series("web_vitals_cls")["series"][0]["labels"],
        json!({"page": "/own", "session_id": "sess-9", "source": "synthetic"})
    );
    let bad = post_browser(
        stack.relay(),
        "/api/browser/metrics",
        &json!({"metrics": [{"name": "x", "type": "gauge", "value": "NaN"}]}),
    );
    assert_eq!(
        (bad.status, bad.json()),
        (
            400,
            json!({"detail": "metrics[0].value: must be a finite number"})
        )
    );
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"name": "x", "type": "gauge", "value": 1}))
        .collect();
    let too_many = post_browser(
        stack.relay(),
        "/api/browser/metrics",
        &json!({ "metrics": many }),
    );
    assert_eq!(too_many.status, 400);
}

#[test]
fn only_an_active_key_may_post_and_the_admin_key_manages_keys() {
    let stack = Stack::start(&[]);
    let relay = stack.relay();
    let error = browser_error("boom").to_string();
    let post = |headers: &[(&str, &str)], path: &str| {
        request(relay, "POST", path, headers, Some(error.as_bytes()))
    };
    for headers in [
        vec![],
        vec![("X-Monlight-Key", "0000")],
        vec![("X-Monlight-Key", "")],
    ] {
        let answer = post(&headers, "/api/browser/errors");
        assert_eq!(
            (answer.status, answer.json()),
            (401, json!({"detail": "Invalid DSN key"})),
            "{headers:?}"
        );
    }
    // A beacon's key in the query string.
    assert_eq!(
        post(&[], &format!("/api/browser/errors?key={DSN}")).status,
        202
    );
    // Admin: create, list, deactivate.
    let admin = [("X-API-Key", ADMIN)];
    let created = request(
        relay,
        "POST",
        "/api/dsn-keys",
        &admin,
        Some(br#"{"project":"blog"}"#),
    );
    assert_eq!(created.status, 201);
    let key = created.json();
    let public_key = key["public_key"].as_str().unwrap().to_string();
    assert_eq!(public_key.len(), 32);
    assert_eq!(
        (key["project"].clone(), key["active"].clone()),
        (json!("blog"), json!(true))
    );
    assert_eq!(
        post(&[("X-Monlight-Key", &public_key)], "/api/browser/errors").status,
        202
    );
    let deleted = request(
        relay,
        "DELETE",
        &format!("/api/dsn-keys/{}", key["id"]),
        &admin,
        None,
    );
    assert_eq!(
        (deleted.status, deleted.json()),
        (200, json!({"status": "deactivated"}))
    );
    assert_eq!(
        post(&[("X-Monlight-Key", &public_key)], "/api/browser/errors").status,
        401
    );
    let listed = request(relay, "GET", "/api/dsn-keys", &admin, None).json();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        request(relay, "DELETE", "/api/dsn-keys/999", &admin, None).status,
        404
    );
    // The DSN key is no admin key, and the admin endpoints refuse other methods.
    assert_eq!(
        request(relay, "GET", "/api/dsn-keys", &[("X-API-Key", DSN)], None).status,
        401
    );
    let wrong_method = request(relay, "PUT", "/api/dsn-keys", &admin, None);
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method
        .header("allow")
        .is_some_and(|a| a.contains("POST")));
}

#[test]
fn cors_answers_only_allowed_origins_on_every_answer() {
    let stack = Stack::start(&[("RATE_LIMIT", "3"), ("MAX_BODY_SIZE", "2048")]);
    let relay = stack.relay();
    let preflight = |origin: &str| {
        request(
            relay,
            "OPTIONS",
            "/api/browser/errors",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
            ],
            None,
        )
    };
    let allowed = preflight("https://app.example.com");
    assert_eq!(allowed.status, 204, "a preflight needs no key");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        allowed.header("access-control-allow-methods"),
        Some("POST, OPTIONS")
    );
    assert_eq!(
        allowed.header("access-control-allow-headers"),
        Some("X-Monlight-Key, Content-Type")
    );
    assert_eq!(allowed.header("access-control-max-age"), Some("86400"));
    assert_eq!(allowed.header("vary"), Some("Origin"));
    for origin in [
        "https://example.com.evil.com",
        "https://aexample.com",
        "http://a.example.com",
        "null",
        "https://example.com",
    ] {
        let refused = preflight(origin);
        assert!(
            refused.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
        // (No key: a 401, which counts against no rate limit.)
        let post = request(
            relay,
            "POST",
            "/api/browser/errors",
            &[("Origin", origin)],
            Some(b"{}"),
        );
        assert!(
            post.header("access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
    // Every answer to an allowed origin carries the headers: 401, 400, 413, 202, 429.
    let origin = ("Origin", "https://shop.example.com");
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (vec![origin], b"{}".to_vec(), 401),
        (vec![origin, ("X-Monlight-Key", DSN)], b"{}".to_vec(), 400),
        (vec![origin, ("X-Monlight-Key", DSN)], vec![b' '; 4096], 413),
        (
            vec![origin, ("X-Monlight-Key", DSN)],
            browser_error("a").to_string().into_bytes(),
            202,
        ),
        (
            vec![origin, ("X-Monlight-Key", DSN)],
            browser_error("b").to_string().into_bytes(),
            429,
        ),
    ];
    for (headers, body, status) in cases {
        let answer = request(relay, "POST", "/api/browser/errors", &headers, Some(&body));
        assert_eq!(answer.status, status, "{}", answer.text());
        assert_eq!(
            answer.header("access-control-allow-origin"),
            Some("https://shop.example.com"),
            "{status}"
        );
        assert_eq!(answer.header("vary"), Some("Origin"), "{status}");
        assert_eq!(
            answer.header("access-control-expose-headers"),
            Some("Retry-After, X-Sentry-Rate-Limits")
        );
    }
    // Health: no CORS, no key.
    let health = request(relay, "GET", "/health", &[origin], None);
    assert_eq!(health.status, 200);
    assert!(health.header("access-control-allow-origin").is_none());
}
