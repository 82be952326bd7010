//! The Sentry endpoints over HTTP: keys (seeded and from the admin API), envelopes and
//! `store` bodies, compression, grouping, rate limits. The real SDKs' envelopes are the
//! parser tests' fixtures (`src/sentry/`) and the end-to-end tests (`tests/sentry/`).

use std::io::Write;

use serde_json::{json, Value};

use crate::support::{Exchange, TestServer, KEY};

const SEEDED: &str = "0123456789abcdef0123456789abcdef";

fn server(extra: &[(&str, &str)]) -> TestServer {
    let seed = format!("shop:{SEEDED}");
    let mut env = vec![("SENTRY_KEYS", seed.as_str())];
    env.extend_from_slice(extra);
    TestServer::start(&env)
}

/// A Python-like error event: `KeyError` raised into `ValueError` in `app.py`.
fn event(id: &str, line: u32) -> Value {
    json!({
        "event_id": id,
        "platform": "python",
        "level": "error",
        "environment": "staging",
        "release": "shop@1.2.3",
        "user": {"id": 42, "email": "a@example.com"},
        "tags": {"region": "eu"},
        "exception": {"values": [
            {"type": "KeyError", "value": "'sku'", "module": null,
             "stacktrace": {"frames": [
                {"filename": "app.py", "module": "app", "function": "lookup", "lineno": 7, "in_app": true}
             ]}},
            {"type": "ValueError", "value": "no such product", "module": null,
             "stacktrace": {"frames": [
                {"filename": "app.py", "module": "app", "function": "checkout", "lineno": line, "in_app": true},
                {"filename": "app.py", "module": "app", "function": "find", "lineno": line + 3, "in_app": true}
             ]}}
        ]}
    })
}

/// An envelope of `items` (item header, payload) after a header naming `event_id`.
fn envelope(header: Value, items: &[(Value, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = header.to_string().into_bytes();
    for (item_header, payload) in items {
        bytes.push(b'\n');
        bytes.extend_from_slice(item_header.to_string().as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(payload);
    }
    bytes.push(b'\n');
    bytes
}

fn event_envelope(event: &Value) -> Vec<u8> {
    let payload = event.to_string().into_bytes();
    let item = json!({"type": "event", "length": payload.len()});
    envelope(json!({"event_id": event["event_id"]}), &[(item, payload)])
}

fn auth(key: &str) -> String {
    format!("Sentry sentry_version=7, sentry_client=sentry.python/2.0.0, sentry_key={key}")
}

fn send(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Exchange {
    s.request("POST", path, headers, Some(body))
}

fn groups(s: &TestServer, project: &str) -> Vec<Value> {
    let list = s.get(&format!("/api/errors?project={project}")).expect(200);
    list.json()["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

#[test]
fn an_envelope_with_a_seeded_key_is_one_group_counted_twice() {
    let s = server(&[]);
    let key = auth(SEEDED);
    let first = event("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", 10);
    let ex = send(
        &s,
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &key)],
        &event_envelope(&first),
    )
    .expect(200);
    ex.check(
        ex.json() == json!({"id": "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"}),
        "the answer is the event id",
    );
    // The same error raised from another line of the same functions is the same group.
    let second = event("b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2", 20);
    send(
        &s,
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &key)],
        &event_envelope(&second),
    )
    .expect(200);
    let groups = groups(&s, "shop");
    assert_eq!(groups.len(), 1, "{groups:?}");
    let group = &groups[0];
    assert_eq!(group["exception_type"], "ValueError");
    assert_eq!(group["message"], "no such product");
    assert_eq!(group["environment"], "staging");
    assert_eq!(group["count"], 2);
    let detail = s.get(&format!("/api/errors/{}", group["id"])).expect(200);
    let detail = detail.json();
    let traceback = detail["traceback"].as_str().unwrap_or_default();
    for needle in [
        "KeyError",
        "ValueError: no such product",
        "in checkout",
        "app.py",
    ] {
        assert!(traceback.contains(needle), "{needle} in {traceback}");
    }
    let occurrence = &detail["occurrences"][0];
    assert_eq!(occurrence["user_id"], "42", "{occurrence}");
    assert_eq!(occurrence["extra"]["release"], "shop@1.2.3", "{occurrence}");
}

#[test]
fn store_bodies_gzip_and_the_query_key_work() {
    let s = server(&[]);
    let body = gzip(
        event("c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3", 10)
            .to_string()
            .as_bytes(),
    );
    let path = format!("/api/1/store/?sentry_key={SEEDED}&sentry_version=7");
    let ex = send(&s, &path, &[("Content-Encoding", "gzip")], &body).expect(200);
    ex.check(
        ex.json()["id"] == "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
        "the store answer is the event id",
    );
    let envelope = gzip(&event_envelope(&event(
        "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4",
        10,
    )));
    let path = format!("/api/1/envelope/?sentry_key={SEEDED}");
    send(&s, &path, &[("Content-Encoding", "gzip")], &envelope).expect(200);
    assert_eq!(groups(&s, "shop")[0]["count"], 2);
}

#[test]
fn keys_are_checked_and_the_envelope_dsn_is_a_key_too() {
    let s = server(&[]);
    let body = event_envelope(&event("e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5", 10));
    send(
        &s,
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &auth("ffffffffffffffffffffffffffffffff"))],
        &body,
    )
    .expect_detail(401, "Invalid Sentry key");
    send(&s, "/api/1/envelope/", &[], &body).expect_detail(401, "Invalid Sentry key");
    send(&s, "/api/1/store/", &[], &body).expect_detail(401, "Invalid Sentry key");
    // A tunnel forwards browser envelopes as they are: the header's DSN names the key.
    let payload = event("f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6", 10).to_string();
    let header = json!({"event_id": "f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6",
        "dsn": format!("https://{SEEDED}@errors.example.com/1")});
    let tunneled = envelope(header, &[(json!({"type": "event"}), payload.into_bytes())]);
    send(&s, "/api/1/envelope/", &[], &tunneled).expect(200);
    assert_eq!(groups(&s, "shop").len(), 1);
}

#[test]
fn the_api_key_files_events_under_the_project_the_path_names() {
    let s = server(&[]);
    let body = event_envelope(&event("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a", 10));
    send(&s, "/api/billing/envelope/", &[("X-API-Key", KEY)], &body).expect(200);
    send(
        &s,
        "/api/billing/envelope/",
        &[("X-Sentry-Auth", &auth(KEY))],
        &body,
    )
    .expect(200);
    assert_eq!(groups(&s, "billing")[0]["count"], 2);
    assert!(groups(&s, "shop").is_empty());
}

#[test]
fn keys_from_the_admin_api_carry_a_dsn_and_can_be_deactivated() {
    let s = server(&[("BASE_URL", "https://errors.example.com/monlight/")]);
    s.request("POST", "/api/sentry-keys", &[], Some(b"{}"))
        .expect_detail(401, "Invalid API key");
    s.post("/api/sentry-keys", &json!({}))
        .expect_bad_field("project");
    let created = s
        .post("/api/sentry-keys", &json!({"project": "blog"}))
        .expect(201)
        .json();
    let key = created["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(key.len(), 32, "{created}");
    assert_eq!(
        created["dsn"],
        format!(
            "https://{key}@errors.example.com/monlight/{}",
            created["id"]
        )
    );
    let listed = s.get("/api/sentry-keys").expect(200).json();
    let projects: Vec<&Value> = listed["keys"]
        .as_array()
        .map(|keys| keys.iter().map(|k| &k["project"]).collect())
        .unwrap_or_default();
    assert_eq!(projects, [&json!("shop"), &json!("blog")]);

    let body = event_envelope(&event("1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b", 10));
    send(
        &s,
        "/api/2/envelope/",
        &[("X-Sentry-Auth", &auth(&key))],
        &body,
    )
    .expect(200);
    assert_eq!(groups(&s, "blog").len(), 1);
    let path = format!("/api/sentry-keys/{}", created["id"]);
    s.request("DELETE", &path, &[("X-API-Key", KEY)], None)
        .expect(200);
    send(
        &s,
        "/api/2/envelope/",
        &[("X-Sentry-Auth", &auth(&key))],
        &body,
    )
    .expect_detail(401, "Invalid Sentry key");
    s.request(
        "DELETE",
        "/api/sentry-keys/999",
        &[("X-API-Key", KEY)],
        None,
    )
    .expect_detail(404, "Sentry key not found");
}

#[test]
fn items_other_than_events_are_accepted_and_ignored() {
    let s = server(&[]);
    let session = br#"{"sid":"x","status":"ok","started":"2026-12-01T00:00:00Z"}"#.to_vec();
    let report = br#"{"timestamp":1,"discarded_events":[]}"#.to_vec();
    let attachment = b"binary\n\x00\xff bytes".to_vec();
    let body = envelope(
        json!({"sent_at": "2026-12-01T00:00:00Z"}),
        &[
            (json!({"type": "session"}), session),
            (json!({"type": "client_report"}), report),
            (
                json!({"type": "attachment", "length": attachment.len(), "filename": "a.bin"}),
                attachment,
            ),
            (json!({"type": "transaction", "length": 2}), b"{}".to_vec()),
        ],
    );
    let key = auth(SEEDED);
    send(&s, "/api/1/envelope/", &[("X-Sentry-Auth", &key)], &body).expect(200);
    assert!(groups(&s, "shop").is_empty());
}

#[test]
fn a_custom_fingerprint_is_its_own_group() {
    let s = server(&[]);
    let key = auth(SEEDED);
    let plain = event("2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c", 10);
    let mut custom = event("3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d", 10);
    custom["fingerprint"] = json!(["checkout-failures"]);
    for event in [&plain, &custom] {
        send(
            &s,
            "/api/1/envelope/",
            &[("X-Sentry-Auth", &key)],
            &event_envelope(event),
        )
        .expect(200);
    }
    assert_eq!(groups(&s, "shop").len(), 2);
}

#[test]
fn bad_bodies_are_named_and_a_zip_bomb_is_refused() {
    let s = server(&[]);
    let key = auth(SEEDED);
    let headers = [("X-Sentry-Auth", key.as_str())];
    send(&s, "/api/1/envelope/", &headers, b"not json\n").expect(400);
    send(&s, "/api/1/store/", &headers, b"{").expect(400);
    let bomb = gzip(&vec![b'a'; 10 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "{} bytes compressed", bomb.len());
    let ex = send(
        &s,
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &key), ("Content-Encoding", "gzip")],
        &bomb,
    )
    .expect(413);
    ex.check(ex.json()["detail"].is_string(), "the 413 says why");
    send(
        &s,
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &key), ("Content-Encoding", "zstd")],
        b"x",
    )
    .expect(415);
}

#[test]
fn over_the_rate_limit_the_answer_tells_the_sdk_to_back_off() {
    let s = server(&[("RATE_LIMIT", "2")]);
    let key = auth(SEEDED);
    let body = event_envelope(&event("4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e", 10));
    let mut last = None;
    for _ in 0..3 {
        last = Some(send(
            &s,
            "/api/1/envelope/",
            &[("X-Sentry-Auth", &key)],
            &body,
        ));
    }
    let ex = last.expect("three requests sent").expect(429);
    let retry_after = ex.header("Retry-After").unwrap_or_default().to_string();
    ex.check(!retry_after.is_empty(), "a 429 carries Retry-After");
    ex.check(
        ex.header("X-Sentry-Rate-Limits") == Some(&format!("{retry_after}::organization")),
        "a 429 carries X-Sentry-Rate-Limits with the same delay",
    );
    // Answers that are not 429 carry no Sentry rate limit (an SDK would stop sending).
    let ok = s.get("/api/errors").expect(429);
    ok.check(
        ok.header("X-Sentry-Rate-Limits").is_none(),
        "only the Sentry routes speak Sentry",
    );
}
