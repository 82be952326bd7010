//! Every endpoint and status code of the spec, against an in-process server.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{distinct_report, report, TestServer, KEY};

// ---------------------------------------------------------------- auth, routing, health

#[test]
fn health_needs_no_key() {
    let s = TestServer::start(&[]);
    let ex = s.get_nokey("/health").expect(200);
    ex.check(ex.json()["status"] == "ok", "/health must say status ok");
    ex.check(
        ex.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "/health is JSON",
    );
}

#[test]
fn missing_or_wrong_key_is_401() {
    let s = TestServer::start(&[]);
    s.get_nokey("/api/errors")
        .expect_detail(401, "Invalid API key");
    s.request("GET", "/api/errors", &[("X-API-Key", "wrong")], None)
        .expect_detail(401, "Invalid API key");
    s.request("GET", "/api/errors", &[("X-API-Key", "")], None)
        .expect_detail(401, "Invalid API key");
    // A key that is a prefix or an extension of the real one is wrong too.
    s.request("GET", "/api/errors", &[("X-API-Key", &KEY[..3])], None)
        .expect_detail(401, "Invalid API key");
    s.request(
        "GET",
        "/api/errors",
        &[("X-API-Key", &format!("{KEY}x"))],
        None,
    )
    .expect_detail(401, "Invalid API key");
    // POSTs too, before any body validation.
    s.request(
        "POST",
        "/api/errors",
        &[("Content-Type", "application/json")],
        Some(b"{nope"),
    )
    .expect_detail(401, "Invalid API key");
    s.get_nokey("/api/projects")
        .expect_detail(401, "Invalid API key");
}

#[test]
fn key_header_name_is_case_insensitive() {
    let s = TestServer::start(&[]);
    for name in ["X-API-Key", "x-api-key", "X-API-KEY", "x-Api-kEy"] {
        s.request("GET", "/api/errors", &[(name, KEY)], None)
            .expect(200);
    }
}

#[test]
fn key_in_query_string_works_and_header_wins() {
    let s = TestServer::start(&[]);
    s.get_nokey(&format!("/api/errors?api_key={KEY}"))
        .expect(200);
    s.get_nokey(&format!("/api/projects?api_key={KEY}"))
        .expect(200);
    s.get_nokey("/api/errors?api_key=wrong")
        .expect_detail(401, "Invalid API key");
    // Both present: the header decides.
    s.request(
        "GET",
        &format!("/api/errors?api_key={KEY}"),
        &[("X-API-Key", "wrong")],
        None,
    )
    .expect_detail(401, "Invalid API key");
    s.request(
        "GET",
        "/api/errors?api_key=wrong",
        &[("X-API-Key", KEY)],
        None,
    )
    .expect(200);
}

#[test]
fn unknown_paths_are_404_and_auth_comes_first() {
    let s = TestServer::start(&[]);
    s.get("/api/nope").expect_detail(404, "Not found");
    s.get("/api/errors/1/nope").expect_detail(404, "Not found");
    // No key on an unknown /api path: auth is checked before routing.
    s.get_nokey("/api/nope")
        .expect_detail(401, "Invalid API key");
    // Outside /api/: 404 without any key.
    s.get_nokey("/nope").expect_detail(404, "Not found");
    s.request("POST", "/definitely/not/here", &[], Some(b"{}"))
        .expect_detail(404, "Not found");
}

#[test]
fn known_path_with_another_method_is_405_with_allow() {
    let s = TestServer::start(&[]);
    let ex = s
        .request("DELETE", "/api/errors", &[("X-API-Key", KEY)], None)
        .expect(405);
    let allow = ex.header("allow").unwrap_or("").to_string();
    ex.check(
        allow.contains("GET") && allow.contains("POST"),
        "Allow must list GET and POST",
    );
    ex.check(
        ex.json()["detail"].is_string(),
        "405 body is {\"detail\":...}",
    );
    let ex = s
        .request("GET", "/api/errors/1/resolve", &[("X-API-Key", KEY)], None)
        .expect(405);
    ex.check(
        ex.header("allow").is_some_and(|a| a.contains("POST")),
        "Allow must list POST",
    );
    let ex = s
        .request("PUT", "/api/projects", &[("X-API-Key", KEY)], None)
        .expect(405);
    ex.check(
        ex.header("allow").is_some_and(|a| a.contains("GET")),
        "Allow must list GET",
    );
    // Auth still comes first.
    s.request("DELETE", "/api/errors", &[], None)
        .expect_detail(401, "Invalid API key");
}

#[test]
fn trailing_slash_matches() {
    let s = TestServer::start(&[]);
    s.get("/api/errors/").expect(200);
    s.get("/api/projects/").expect(200);
    s.get_nokey("/health/").expect(200);
}

// ---------------------------------------------------------------- validation

fn with(field: &str, value: Value) -> Value {
    let mut body = report("p1", "ValueError", "bad value");
    body[field] = value;
    body
}

fn without(field: &str) -> Value {
    let mut body = report("p1", "ValueError", "bad value");
    body.as_object_mut().unwrap().remove(field);
    body
}

#[test]
fn each_validation_rule_is_a_400_naming_the_field() {
    let s = TestServer::start(&[]);
    let cases: Vec<(&str, Value)> = vec![
        ("project", without("project")),
        ("project", with("project", json!(""))),
        ("project", with("project", json!("p".repeat(101)))),
        ("project", with("project", json!(12))),
        ("project", with("project", Value::Null)),
        ("exception_type", without("exception_type")),
        ("exception_type", with("exception_type", json!(""))),
        (
            "exception_type",
            with("exception_type", json!("E".repeat(201))),
        ),
        ("exception_type", with("exception_type", json!(["x"]))),
        ("message", without("message")),
        ("message", with("message", json!(5))),
        ("traceback", without("traceback")),
        ("traceback", with("traceback", json!({"a": 1}))),
        ("environment", with("environment", json!("e".repeat(21)))),
        ("environment", with("environment", json!(true))),
        ("request_url", with("request_url", json!("u".repeat(2001)))),
        (
            "request_method",
            with("request_method", json!("M".repeat(11))),
        ),
        ("user_id", with("user_id", json!("u".repeat(201)))),
        ("user_id", with("user_id", json!(42))),
        ("request_headers", with("request_headers", json!("x"))),
        ("request_headers", with("request_headers", json!([1, 2]))),
    ];
    for (field, body) in cases {
        s.post("/api/errors", &body).expect_bad_field(field);
    }
    // Nothing was stored by any of them.
    let list = s.list("resolved=all");
    assert_eq!(list["total"], 0, "{list}");
}

#[test]
fn limits_are_inclusive_and_count_characters_not_bytes() {
    let s = TestServer::start(&[]);
    // Exactly at each limit is fine, with multi-byte characters.
    let mut body = report(&"ü".repeat(100), &"é".repeat(200), "m");
    body["environment"] = json!("ß".repeat(20));
    body["request_url"] = json!("ú".repeat(2000));
    body["request_method"] = json!("ñ".repeat(10));
    body["user_id"] = json!("ø".repeat(200));
    let ex = s.post("/api/errors", &body).expect(201);
    let id = ex.json()["id"].as_i64().unwrap();
    let detail = s.detail(id);
    assert_eq!(detail["project"], "ü".repeat(100));
    assert_eq!(detail["environment"], "ß".repeat(20));
    // One more character is over.
    let body = report(&"ü".repeat(101), "E", "m");
    s.post("/api/errors", &body).expect_bad_field("project");
}

#[test]
fn invalid_json_is_400() {
    let s = TestServer::start(&[]);
    for bad in [
        &b"{nope"[..],
        b"{\"project\": \"p\",}",
        b"\xff\xfe",
        b"[1, 2",
    ] {
        let ex = s
            .request(
                "POST",
                "/api/errors",
                &[("X-API-Key", KEY), ("Content-Type", "application/json")],
                Some(bad),
            )
            .expect(400);
        let detail = ex.json()["detail"].as_str().unwrap_or("").to_string();
        ex.check(
            detail.starts_with("Invalid JSON"),
            "detail must start with 'Invalid JSON'",
        );
    }
    // Valid JSON that is not an object is a 400 too.
    s.post("/api/errors", &json!([1, 2])).expect(400);
    s.post("/api/errors", &json!("text")).expect(400);
}

#[test]
fn body_less_post_is_an_empty_body() {
    let s = TestServer::start(&[]);
    let ex = s.post_empty("/api/errors").expect(400);
    ex.check(
        ex.json()["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Invalid JSON")),
        "a body-less report is Invalid JSON",
    );
    // Also with an explicit `Content-Length: 0`.
    let ex = s
        .request(
            "POST",
            "/api/errors",
            &[("X-API-Key", KEY), ("Content-Length", "0")],
            None,
        )
        .expect(400);
    ex.check(
        ex.json()["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Invalid JSON")),
        "an empty report is Invalid JSON",
    );
    // Resolve and unresolve need no body.
    let id = s.report(&report("p1", "E", "m"))["id"].as_i64().unwrap();
    s.post_empty(&format!("/api/errors/{id}/resolve"))
        .expect(200);
    s.post_empty(&format!("/api/errors/{id}/unresolve"))
        .expect(200);
    // The service is still fine.
    s.get_nokey("/health").expect(200);
}

#[test]
fn long_message_and_traceback_are_cut_not_rejected() {
    let s = TestServer::start(&[]);
    let message = format!("a{}", "€".repeat(30_000)); // 90 001 bytes
    let traceback = format!("b{}", "€".repeat(50_000)); // 150 001 bytes, no location
    let body = json!({"project": "p1", "exception_type": "Big", "message": message, "traceback": traceback});
    let ex = s.post("/api/errors", &body).expect(201);
    let id = ex.json()["id"].as_i64().unwrap();
    let detail = s.detail(id);
    let stored = detail["message"].as_str().unwrap();
    assert!(
        stored.len() <= 65_536,
        "message kept {} bytes",
        stored.len()
    );
    assert!(
        stored.len() > 65_536 - 4,
        "message cut too short: {} bytes",
        stored.len()
    );
    assert!(message.starts_with(stored), "the kept message is a prefix");
    let stored_tb = detail["traceback"].as_str().unwrap();
    assert!(
        stored_tb.len() <= 131_072 && stored_tb.len() > 131_072 - 4,
        "traceback kept {} bytes",
        stored_tb.len()
    );
    assert!(traceback.starts_with(stored_tb));
}

#[test]
fn null_fields_count_as_absent() {
    let s = TestServer::start(&[]);
    let mut body = report("p1", "ValueError", "m");
    for field in [
        "environment",
        "request_url",
        "request_method",
        "request_headers",
        "user_id",
        "extra",
    ] {
        body[field] = Value::Null;
    }
    body["unknown_field"] = json!({"ignored": true});
    let ex = s.post("/api/errors", &body).expect(201);
    let id = ex.json()["id"].as_i64().unwrap();
    let detail = s.detail(id);
    assert_eq!(detail["environment"], "prod", "{detail}");
    let occurrence = &detail["occurrences"][0];
    assert_eq!(occurrence["request_headers"], Value::Null, "{detail}");
    assert_eq!(occurrence["extra"], Value::Null, "{detail}");
    assert_eq!(occurrence["user_id"], Value::Null, "{detail}");
    // Without the field at all: same default.
    let id2 = s.report(&report("p1", "OtherError", "m"))["id"]
        .as_i64()
        .unwrap();
    assert_eq!(s.detail(id2)["environment"], "prod");
}

// ---------------------------------------------------------------- body size

#[test]
fn content_length_over_the_limit_is_413() {
    let s = TestServer::start(&[("MAX_BODY_SIZE", "1024")]);
    // A valid report of 2000 bytes.
    let mut body = report("p1", "E", "");
    body["message"] = json!("x".repeat(2000));
    s.post("/api/errors", &body)
        .expect_detail(413, "Request body exceeds maximum size");
    // Checked before validation: invalid JSON over the limit is 413 too.
    s.request(
        "POST",
        "/api/errors",
        &[("X-API-Key", KEY)],
        Some(&[b'{'; 1025]),
    )
    .expect_detail(413, "Request body exceeds maximum size");
    // Just under the limit is fine.
    let mut body = report("p1", "E", "");
    let room = 1024 - body.to_string().len();
    body["message"] = json!("x".repeat(room));
    assert_eq!(body.to_string().len(), 1024);
    s.post("/api/errors", &body).expect(201);
    // Nothing over the limit was stored.
    assert_eq!(s.list("resolved=all")["total"], 1);
}

fn chunked_request(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut wire = format!(
        "POST /api/errors HTTP/1.1\r\nHost: test\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(chunk) {
        wire.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        wire.extend_from_slice(part);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    wire
}

#[test]
fn chunked_body_under_the_limit_is_accepted() {
    let s = TestServer::start(&[("MAX_BODY_SIZE", "1024")]);
    let body = report("p1", "ChunkedError", "sent in chunks").to_string();
    let ex = s.raw(&chunked_request(body.as_bytes(), 37)).expect(201);
    ex.check(ex.json()["status"] == "created", "status created");
    let id = ex.json()["id"].as_i64().unwrap();
    assert_eq!(s.detail(id)["message"], "sent in chunks");
}

#[test]
fn chunked_body_over_the_limit_is_413() {
    let s = TestServer::start(&[("MAX_BODY_SIZE", "1024")]);
    let mut body = report("p1", "E", "");
    body["message"] = json!("x".repeat(3000));
    s.raw(&chunked_request(body.to_string().as_bytes(), 600))
        .expect_detail(413, "Request body exceeds maximum size");
    // One chunk bigger than the limit on its own.
    s.raw(&chunked_request(body.to_string().as_bytes(), 4000))
        .expect_detail(413, "Request body exceeds maximum size");
    assert_eq!(s.list("resolved=all")["total"], 0);
    s.get_nokey("/health").expect(200);
}

// ---------------------------------------------------------------- the group cycle

#[test]
fn create_increment_resolve_reopen_unresolve() {
    let s = TestServer::start(&[]);
    let body = report("p1", "ValueError", "bad value");

    let created = s.post("/api/errors", &body).expect(201).json();
    assert_eq!(created["status"], "created", "{created}");
    assert_eq!(created["count"], 1, "{created}");
    let id = created["id"].as_i64().expect("id");
    let fingerprint = created["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(fingerprint.len(), 32);

    let incremented = s.post("/api/errors", &body).expect(200).json();
    assert_eq!(
        incremented,
        json!({"status": "incremented", "id": id, "fingerprint": fingerprint, "count": 2})
    );

    let ex = s
        .post_empty(&format!("/api/errors/{id}/resolve"))
        .expect(200);
    assert_eq!(ex.json(), json!({"status": "resolved", "id": id}));
    let detail = s.detail(id);
    assert_eq!(detail["resolved"], true, "{detail}");
    let resolved_at = detail["resolved_at"]
        .as_str()
        .expect("resolved_at set")
        .to_string();
    assert!(resolved_at.ends_with('Z'), "{resolved_at}");
    // Resolved groups leave the default list and show up with resolved=true.
    assert!(!s.list_ids("").contains(&id));
    assert!(s.list_ids("resolved=true").contains(&id));

    // Resolving again keeps the first resolved_at (ms precision: once the clock has moved).
    let resolved_ms = shared::time::now_ms();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while shared::time::now_ms() <= resolved_ms {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock stands still"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    s.post_empty(&format!("/api/errors/{id}/resolve"))
        .expect(200);
    assert_eq!(s.detail(id)["resolved_at"], resolved_at.as_str());

    let reopened = s.post("/api/errors", &body).expect(201).json();
    assert_eq!(
        reopened,
        json!({"status": "reopened", "id": id, "fingerprint": fingerprint, "count": 3})
    );
    let detail = s.detail(id);
    assert_eq!(detail["resolved"], false, "{detail}");
    assert_eq!(detail["resolved_at"], Value::Null, "{detail}");
    assert_eq!(detail["count"], 3);
    assert_eq!(detail["occurrences"].as_array().unwrap().len(), 3);

    s.post_empty(&format!("/api/errors/{id}/resolve"))
        .expect(200);
    let ex = s
        .post_empty(&format!("/api/errors/{id}/unresolve"))
        .expect(200);
    assert_eq!(ex.json(), json!({"status": "unresolved", "id": id}));
    let detail = s.detail(id);
    assert_eq!(detail["resolved"], false);
    assert_eq!(detail["resolved_at"], Value::Null);
    assert!(s.list_ids("").contains(&id));
    // Unresolve of an unresolved group is fine; the next report increments.
    s.post_empty(&format!("/api/errors/{id}/unresolve"))
        .expect(200);
    let again = s.post("/api/errors", &body).expect(200).json();
    assert_eq!(again["status"], "incremented");
    assert_eq!(again["count"], 4);
}

#[test]
fn detail_shape_and_first_report_kept_on_the_group() {
    let s = TestServer::start(&[]);
    let mut first = report("p1", "ValueError", "first message");
    first["environment"] = json!("staging");
    let id = s.report(&first)["id"].as_i64().unwrap();
    let mut second = first.clone();
    second["message"] = json!("second message");
    s.report(&second);
    let detail = s.detail(id);
    for key in [
        "id",
        "fingerprint",
        "project",
        "environment",
        "exception_type",
        "message",
        "traceback",
        "count",
        "first_seen",
        "last_seen",
        "resolved",
        "resolved_at",
        "source",
        "occurrences",
    ] {
        assert!(detail.get(key).is_some(), "detail lacks {key}: {detail}");
    }
    assert_eq!(detail["message"], "first message");
    assert_eq!(detail["environment"], "staging");
    assert_eq!(detail["source"], "server");
    for key in ["first_seen", "last_seen"] {
        let t = detail[key].as_str().unwrap();
        assert!(t.ends_with('Z') && t.contains('T'), "{key} = {t}");
    }
    let occurrence = &detail["occurrences"][0];
    for key in [
        "id",
        "timestamp",
        "request_url",
        "request_method",
        "request_headers",
        "user_id",
        "extra",
        "traceback",
    ] {
        assert!(
            occurrence.get(key).is_some(),
            "occurrence lacks {key}: {occurrence}"
        );
    }
}

#[test]
fn unknown_or_non_numeric_id_is_404() {
    let s = TestServer::start(&[]);
    s.get("/api/errors/999999")
        .expect_detail(404, "Error not found");
    s.post_empty("/api/errors/999999/resolve")
        .expect_detail(404, "Error not found");
    s.post_empty("/api/errors/999999/unresolve")
        .expect_detail(404, "Error not found");
    for id in ["abc", "1x", "-", "1.5", "99999999999999999999999"] {
        s.get(&format!("/api/errors/{id}"))
            .expect_detail(404, "Error not found");
        s.post_empty(&format!("/api/errors/{id}/resolve"))
            .expect_detail(404, "Error not found");
    }
}

#[test]
fn fingerprint_matches_the_spec_example() {
    let s = TestServer::start(&[]);
    let body = json!({
        "project": "p1",
        "exception_type": "ValueError",
        "message": "invalid literal",
        "traceback": "Traceback (most recent call last):\n  File \"/app/lib.py\", line 3, in <module>\n    main()\n  File \"/app/main.py\", line 10, in main\n    int('x')\nValueError: invalid literal",
    });
    let ex = s.post("/api/errors", &body).expect(201);
    assert_eq!(
        ex.json()["fingerprint"],
        "d640c720cde4360c190e74c212247c51",
        "{}",
        ex.context()
    );
    // Same location, other message and line text: the same group.
    let body2 = json!({
        "project": "p1",
        "exception_type": "ValueError",
        "message": "another message",
        "traceback": "Traceback (most recent call last):\n  File \"/app/main.py\", line 10, in main\n    other()\nValueError: another message",
    });
    let ex2 = s.post("/api/errors", &body2).expect(200);
    assert_eq!(ex2.json()["id"], ex.json()["id"]);
    // Another project: another group.
    let mut body3 = body2.clone();
    body3["project"] = json!("p2");
    s.post("/api/errors", &body3).expect(201);
}

#[test]
fn concurrent_reports_of_a_new_error_make_one_group() {
    let s = TestServer::start(&[]);
    let addr = s.addr;
    let barrier = Arc::new(Barrier::new(20));
    let body = report("p1", "RaceError", "at once");
    let threads: Vec<_> = (0..20)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let body = body.clone();
            std::thread::spawn(move || {
                barrier.wait();
                shared::testing::post_json(addr, "/api/errors", Some(KEY), &body)
            })
        })
        .collect();
    let responses: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread").expect("response"))
        .collect();
    let summary: Vec<(u16, String)> = responses.iter().map(|r| (r.status, r.text())).collect();
    let created = responses
        .iter()
        .filter(|r| r.status == 201 && r.json()["status"] == "created")
        .count();
    let incremented = responses
        .iter()
        .filter(|r| r.status == 200 && r.json()["status"] == "incremented")
        .count();
    assert_eq!((created, incremented), (1, 19), "{summary:#?}");
    let ids: std::collections::BTreeSet<i64> = responses
        .iter()
        .map(|r| r.json()["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{summary:#?}");
    let mut counts: Vec<i64> = responses
        .iter()
        .map(|r| r.json()["count"].as_i64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(counts, (1..=20).collect::<Vec<_>>(), "{summary:#?}");
    let list = s.list("resolved=all");
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["errors"][0]["count"], 20, "{list}");
}

#[test]
fn occurrences_are_trimmed_newest_first_with_json_fields() {
    let s = TestServer::start(&[("MAX_OCCURRENCES", "3")]);
    let mut id = 0;
    for n in 1..=5 {
        let mut body = report("p1", "TrimError", "m");
        body["request_url"] = json!(format!("https://x.test/{n}"));
        body["request_method"] = json!("GET");
        body["request_headers"] = json!({"User-Agent": "t", "X-N": n});
        body["user_id"] = json!(format!("u{n}"));
        body["extra"] = json!({"n": n, "nested": {"ok": true}, "list": [1, 2]});
        id = s.report(&body)["id"].as_i64().unwrap();
    }
    let detail = s.detail(id);
    assert_eq!(detail["count"], 5, "{detail}");
    let occurrences = detail["occurrences"].as_array().unwrap();
    let urls: Vec<&str> = occurrences
        .iter()
        .map(|o| o["request_url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        ["https://x.test/5", "https://x.test/4", "https://x.test/3"],
        "{detail}"
    );
    let newest = &occurrences[0];
    assert_eq!(
        newest["request_headers"],
        json!({"User-Agent": "t", "X-N": 5})
    );
    assert_eq!(
        newest["extra"],
        json!({"n": 5, "nested": {"ok": true}, "list": [1, 2]})
    );
    assert_eq!(newest["user_id"], "u5");
    assert_eq!(newest["request_method"], "GET");
    let ids: Vec<i64> = occurrences
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    // The database holds just those three.
    let stored: i64 = s
        .sql()
        .query_row(
            "SELECT count(*) FROM error_occurrences WHERE error_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 3);
}

// ---------------------------------------------------------------- list filters and paging

#[test]
fn list_items_have_the_spec_fields_and_no_traceback() {
    let s = TestServer::start(&[]);
    s.report(&report("p1", "ValueError", "m"));
    let list = s.list("");
    for key in ["errors", "total", "limit", "offset"] {
        assert!(list.get(key).is_some(), "list lacks {key}: {list}");
    }
    assert_eq!(list["limit"], 50);
    assert_eq!(list["offset"], 0);
    let item = list["errors"][0].as_object().unwrap();
    assert!(!item.contains_key("traceback"), "{list}");
    assert!(!item.contains_key("occurrences"), "{list}");
    for key in [
        "id",
        "fingerprint",
        "project",
        "environment",
        "exception_type",
        "message",
        "count",
        "first_seen",
        "last_seen",
        "resolved",
        "resolved_at",
        "source",
    ] {
        assert!(item.contains_key(key), "list item lacks {key}: {list}");
    }
    assert_eq!(item["resolved"], false);
    assert_eq!(item["resolved_at"], Value::Null);
}

#[test]
fn filter_by_project_and_environment() {
    let s = TestServer::start(&[]);
    let mut ids = Vec::new();
    // The environment is not part of the fingerprint: distinct locations make distinct groups.
    for (n, (project, env)) in [
        ("alpha", "prod"),
        ("alpha", "dev"),
        ("beta", "prod"),
        ("alphabet", "dev"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = distinct_report(project, n);
        body["environment"] = json!(env);
        ids.push(s.report(&body)["id"].as_i64().unwrap());
    }
    let mut got = s.list_ids("project=alpha");
    got.sort();
    assert_eq!(got, vec![ids[0], ids[1]], "project is exact");
    let mut got = s.list_ids("environment=dev");
    got.sort();
    assert_eq!(got, vec![ids[1], ids[3]]);
    assert_eq!(s.list_ids("project=alpha&environment=dev"), vec![ids[1]]);
    assert_eq!(s.list("project=nothing")["total"], 0);
    // Unknown parameters are ignored; keys are case-sensitive.
    assert_eq!(s.list("whatever=1&Project=beta")["total"], 4);
    assert_eq!(s.list("project=alpha")["total"], 2);
}

#[test]
fn filter_by_resolved() {
    let s = TestServer::start(&[]);
    let open = s.report(&distinct_report("p", 1))["id"].as_i64().unwrap();
    let closed = s.report(&distinct_report("p", 2))["id"].as_i64().unwrap();
    s.post_empty(&format!("/api/errors/{closed}/resolve"))
        .expect(200);
    assert_eq!(s.list_ids(""), vec![open], "default is unresolved only");
    assert_eq!(s.list_ids("resolved=false"), vec![open]);
    assert_eq!(s.list_ids("resolved=true"), vec![closed]);
    let mut all = s.list_ids("resolved=all");
    all.sort();
    assert_eq!(all, vec![open, closed]);
    assert_eq!(s.list("resolved=all")["total"], 2);
    for bad in ["maybe", "TRUE", "1"] {
        s.get(&format!("/api/errors?resolved={bad}"))
            .expect_bad_field("resolved");
    }
}

#[test]
fn filter_by_source_survives_trimming() {
    let s = TestServer::start(&[("MAX_OCCURRENCES", "2")]);
    let mut browser = report("p", "TypeError", "from a browser");
    browser["request_method"] = json!("BROWSER");
    let b = s.report(&browser)["id"].as_i64().unwrap();
    // More server-side reports of the same error push the BROWSER occurrence out.
    let mut server_side = browser.clone();
    server_side["request_method"] = json!("POST");
    for _ in 0..3 {
        assert_eq!(s.report(&server_side)["id"], b);
    }
    let detail = s.detail(b);
    assert!(
        detail["occurrences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["request_method"] == "POST"),
        "the BROWSER occurrence was trimmed: {detail}"
    );
    assert_eq!(detail["source"], "browser", "{detail}");
    let srv = s.report(&report("p", "KeyError", "server"))["id"]
        .as_i64()
        .unwrap();
    assert_eq!(s.list_ids("source=browser"), vec![b]);
    assert_eq!(s.list_ids("source=server"), vec![srv]);
    let list = s.list("source=browser");
    assert_eq!(list["errors"][0]["source"], "browser");
    assert_eq!(s.list("source=server")["errors"][0]["source"], "server");
    s.get("/api/errors?source=phone").expect_bad_field("source");
}

#[test]
fn filter_by_session_id() {
    let s = TestServer::start(&[("MAX_OCCURRENCES", "1")]);
    let with_session = |n: usize, session: &str| {
        let mut body = distinct_report("web", n);
        body["request_method"] = json!("BROWSER");
        body["extra"] = json!({"session_id": session, "user_agent": "ua"});
        body
    };
    let a = s.report(&with_session(1, "s1"))["id"].as_i64().unwrap();
    let b = s.report(&with_session(2, "s2"))["id"].as_i64().unwrap();
    // Group c seen in both sessions (its s1 occurrence is then trimmed away).
    let c = s.report(&with_session(3, "s1"))["id"].as_i64().unwrap();
    assert_eq!(s.report(&with_session(3, "s2"))["id"], c);
    let none = s.report(&distinct_report("web", 4))["id"].as_i64().unwrap();
    let mut s1 = s.list_ids("session_id=s1");
    s1.sort();
    assert_eq!(s1, vec![a, c]);
    let mut s2 = s.list_ids("session_id=s2");
    s2.sort();
    assert_eq!(s2, vec![b, c]);
    assert_eq!(s.list("session_id=s3")["total"], 0);
    assert!(!s1.contains(&none));
}

#[test]
fn search_is_case_insensitive_and_literal() {
    let s = TestServer::start(&[]);
    let ids = report_each(
        &s,
        &[
            ("ValueError", "100% sure"),
            ("KeyError", "abc"),
            ("TypeError", "snake_case here"),
            ("ConnectionRefused", "snakeXcase"),
        ],
    );
    let sorted = |query: &str| {
        let mut v = s.list_ids(query);
        v.sort();
        v
    };
    assert_eq!(
        sorted("search=0%25"),
        vec![ids[0]],
        "'0%' matches '100% sure'"
    );
    assert_eq!(
        sorted("search=%25"),
        vec![ids[0]],
        "'%' is literal, not 'anything'"
    );
    assert_eq!(
        sorted("search=_"),
        vec![ids[2]],
        "'_' is literal, not 'any char'"
    );
    assert_eq!(sorted("search=e_c"), vec![ids[2]]);
    assert_eq!(
        sorted("search=SURE"),
        vec![ids[0]],
        "case-insensitive message"
    );
    assert_eq!(
        sorted("search=keyERROR"),
        vec![ids[1]],
        "case-insensitive type"
    );
    assert_eq!(sorted("search=connection%20refused"), Vec::<i64>::new());
    assert_eq!(sorted("search=connectionrefused"), vec![ids[3]]);
    assert_eq!(sorted("search=100%25+sure"), vec![ids[0]], "'+' is a space");
    assert_eq!(s.list("search=abc")["total"], 1);
}

#[test]
fn search_is_case_insensitive_beyond_ascii() {
    let s = TestServer::start(&[]);
    let ids = report_each(
        &s,
        &[
            ("ÜberError", "l'école est fermée"),
            ("ValueError", "Straße gesperrt"),
            ("KeyError", "ecole without accent"),
        ],
    );
    let sorted = |query: &str| {
        let list = s.list(query);
        let mut v = crate::support::ids(&list);
        v.sort();
        assert_eq!(list["total"], v.len(), "{query}: {list}");
        v
    };
    assert_eq!(
        sorted("search=%C3%89COLE"),
        vec![ids[0]],
        "ÉCOLE finds école"
    );
    assert_eq!(
        sorted("search=%C3%A9cole"),
        vec![ids[0]],
        "école finds école"
    );
    assert_eq!(sorted("search=%C3%BCBERerror"), vec![ids[0]], "type too");
    assert_eq!(
        sorted("search=STRASSE"),
        vec![ids[1]],
        "STRASSE finds straße"
    );
    assert_eq!(sorted("search=%C3%89"), vec![ids[0]], "one character");
    assert_eq!(sorted("search=ECOLE"), vec![ids[2]], "É is not E");
}

/// Sets a group's timestamps (epoch ms) straight in the database.
fn set_times(s: &TestServer, id: i64, first_seen: i64, last_seen: i64) {
    let n = s
        .sql()
        .execute(
            "UPDATE errors SET first_seen = ?2, last_seen = ?3 WHERE id = ?1",
            [id, first_seen, last_seen],
        )
        .unwrap();
    assert_eq!(n, 1);
}

const T_10H: i64 = 1_767_261_600_000; // 2026-01-01T10:00:00Z

#[test]
fn filter_by_since_and_until_with_offsets() {
    let s = TestServer::start(&[]);
    let hour = 3_600_000;
    let a = s.report(&distinct_report("p", 1))["id"].as_i64().unwrap();
    let b = s.report(&distinct_report("p", 2))["id"].as_i64().unwrap();
    let c = s.report(&distinct_report("p", 3))["id"].as_i64().unwrap();
    set_times(&s, a, T_10H, T_10H); // 10:00Z
    set_times(&s, b, T_10H, T_10H + 2 * hour); // 12:00Z
    set_times(&s, c, T_10H, T_10H + 4 * hour); // 14:00Z
    let detail = s.detail(b);
    assert_eq!(detail["last_seen"], "2026-01-01T12:00:00Z", "{detail}");
    let sorted = |query: &str| {
        let mut v = s.list_ids(query);
        v.sort();
        v
    };
    // 13:00+02:00 = 11:00Z ('+' must be sent as %2B).
    assert_eq!(sorted("since=2026-01-01T13:00:00%2B02:00"), vec![b, c]);
    // 12:30-01:00 = 13:30Z.
    assert_eq!(sorted("until=2026-01-01T12:30:00-01:00"), vec![a, b]);
    assert_eq!(
        sorted("since=2026-01-01T11:00:00Z&until=2026-01-01T13:30:00.000Z"),
        vec![b]
    );
    assert_eq!(sorted("since=2026-01-01T15:00:00Z"), Vec::<i64>::new());
    assert_eq!(sorted("until=2026-01-01T09:00:00Z"), Vec::<i64>::new());
    assert_eq!(s.list("since=2026-01-01T11:00:00Z")["total"], 2);
    for (query, name) in [
        ("since=yesterday", "since"),
        ("since=2026-01-01", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("until=12:00", "until"),
    ] {
        s.get(&format!("/api/errors?{query}"))
            .expect_bad_field(name);
    }
}

#[test]
fn sort_orders_descending_with_ties_by_id() {
    let s = TestServer::start(&[]);
    // Counts: g1=2, g2=3, g3=1, g4=2.
    let mut g = Vec::new();
    for (n, times) in [(1, 2), (2, 3), (3, 1), (4, 2)] {
        let mut id = 0;
        for _ in 0..times {
            id = s.report(&distinct_report("p", n))["id"].as_i64().unwrap();
        }
        g.push(id);
    }
    // last_seen: g1=100, g2=300, g3=300, g4=200; first_seen: g1=50, g2=10, g3=50, g4=40.
    set_times(&s, g[0], T_10H + 50, T_10H + 100);
    set_times(&s, g[1], T_10H + 10, T_10H + 300);
    set_times(&s, g[2], T_10H + 50, T_10H + 300);
    set_times(&s, g[3], T_10H + 40, T_10H + 200);
    let expected_last = vec![g[2], g[1], g[3], g[0]];
    assert_eq!(s.list_ids(""), expected_last, "default sort is last_seen");
    assert_eq!(s.list_ids("sort=last_seen"), expected_last);
    assert_eq!(s.list_ids("sort=first_seen"), vec![g[2], g[0], g[3], g[1]]);
    assert_eq!(s.list_ids("sort=count"), vec![g[1], g[3], g[0], g[2]]);
    // Paging follows the same order.
    assert_eq!(s.list_ids("sort=count&limit=2&offset=1"), vec![g[3], g[0]]);
    s.get("/api/errors?sort=name").expect_bad_field("sort");
}

#[test]
fn limit_and_offset_paging() {
    let s = TestServer::start(&[]);
    for n in 0..60 {
        s.report(&distinct_report("p", n));
    }
    let all = s.list("limit=200");
    assert_eq!(all["total"], 60);
    let all_ids = crate::support::ids(&all);
    assert_eq!(all_ids.len(), 60);

    let default = s.list("");
    assert_eq!(default["limit"], 50);
    assert_eq!(default["errors"].as_array().unwrap().len(), 50);
    assert_eq!(default["total"], 60, "total counts every match");

    let big = s.list("limit=1000");
    assert_eq!(big["limit"], 200, "larger limits are capped at 200");
    assert_eq!(big["errors"].as_array().unwrap().len(), 60);

    for bad in ["0", "x", "-5", "2.5"] {
        s.get(&format!("/api/errors?limit={bad}"))
            .expect_bad_field("limit");
    }
    s.get("/api/errors?offset=-1").expect_bad_field("offset");
    s.get("/api/errors?offset=abc").expect_bad_field("offset");

    let mut paged = Vec::new();
    for offset in [0, 25, 50] {
        let page = s.list(&format!("limit=25&offset={offset}"));
        assert_eq!(page["total"], 60, "stable total on every page: {page}");
        assert_eq!(page["limit"], 25);
        assert_eq!(page["offset"], offset);
        paged.extend(crate::support::ids(&page));
    }
    assert_eq!(
        paged, all_ids,
        "pages concatenate to the full list, in order"
    );
    let past = s.list("limit=25&offset=100");
    assert_eq!(past["errors"].as_array().unwrap().len(), 0);
    assert_eq!(past["total"], 60);
}

#[test]
fn projects_and_environments_are_sorted_and_distinct() {
    let s = TestServer::start(&[]);
    assert_eq!(
        s.get("/api/projects").expect(200).json(),
        json!({"projects": []})
    );
    for (n, (project, env)) in [
        ("zeta", "staging"),
        ("alpha", "prod"),
        ("mid", "dev"),
        ("alpha", "staging"),
        ("zeta", "prod"),
    ]
    .iter()
    .enumerate()
    {
        let mut body = distinct_report(project, n);
        body["environment"] = json!(env);
        s.report(&body);
    }
    // A resolved group still counts.
    let mut body = distinct_report("beta", 99);
    body["environment"] = json!("qa");
    let id = s.report(&body)["id"].as_i64().unwrap();
    s.post_empty(&format!("/api/errors/{id}/resolve"))
        .expect(200);
    assert_eq!(
        s.get("/api/projects").expect(200).json(),
        json!({"projects": ["alpha", "beta", "mid", "zeta"]})
    );
    assert_eq!(
        s.get("/api/environments").expect(200).json(),
        json!({"environments": ["dev", "prod", "qa", "staging"]})
    );
}

// ---------------------------------------------------------------- rate limit

#[test]
fn rate_limit_429_with_retry_after() {
    let s = TestServer::start(&[("RATE_LIMIT", "3")]);
    // /health is never limited and does not count.
    for _ in 0..5 {
        s.get_nokey("/health").expect(200);
    }
    s.get("/api/errors").expect(200);
    s.get("/api/projects").expect(200);
    // Unauthenticated requests don't consume quota.
    for _ in 0..5 {
        s.request("GET", "/api/errors", &[("X-API-Key", "wrong")], None)
            .expect(401);
        s.get_nokey("/api/errors").expect(401);
    }
    s.get("/api/errors").expect(200);
    let ex = s.get("/api/errors").expect(429);
    let body = ex.json();
    ex.check(body["detail"] == "Rate limit exceeded", "detail");
    let retry = body["retry_after"].as_u64();
    ex.check(
        retry.is_some_and(|r| (1..=60).contains(&r)),
        "retry_after is 1..=60 seconds",
    );
    ex.check(
        ex.header("retry-after") == Some(retry.unwrap().to_string().as_str()),
        "Retry-After header equals retry_after",
    );
    ex.check(
        body.as_object().unwrap().len() == 2,
        "body is exactly {detail, retry_after}",
    );
    // Writes are limited too, and /health still answers.
    s.post("/api/errors", &report("p", "E", "m")).expect(429);
    s.get_nokey("/health").expect(200);
    // Over the limit, a wrong key is still 401 (auth first).
    s.get_nokey("/api/errors").expect(401);
}

#[test]
fn content_length_413_reaches_a_client_that_is_still_sending() {
    let s = TestServer::start(&[("MAX_BODY_SIZE", "1024")]);
    let mut stream = s.connect();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let head = format!(
            "POST /api/errors HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n"
        );
        let _ = std::io::Write::write_all(&mut writer, head.as_bytes());
        let chunk = vec![b' '; 16 * 1024];
        let mut sent = 0;
        while sent < 1_048_576 {
            if std::io::Write::write_all(&mut writer, &chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let (bytes, _) = crate::support::read_until_close(&mut stream, Duration::from_secs(10));
    let sent = sender.join().unwrap();
    let response = shared::testing::parse_response(&bytes);
    assert!(
        response.as_ref().is_ok_and(|r| r.status == 413),
        "a client still sending its over-limit body must receive the 413 (client sent {sent} bytes before the server stopped reading): {response:?}"
    );
}

// ---------------------------------------------------------------- alerts endpoint, web UI

#[test]
fn test_alert_without_a_channel_is_503() {
    let s = TestServer::start(&[]);
    s.post_empty("/api/test-alert").expect_detail(
        503,
        "No alert channel configured: set SMTP_HOST (or POSTMARK_API_TOKEN) and ALERT_EMAILS, or ALERT_WEBHOOK_URL",
    );
    s.request("POST", "/api/test-alert", &[], None)
        .expect_detail(401, "Invalid API key");
}

#[test]
fn test_alert_with_a_webhook_is_202_and_posts_json() {
    use std::io::{Read, Write};
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let receiver = std::thread::spawn(move || {
        // Bounded wait for the alert's connection.
        hook.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut conn = loop {
            match hook.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return None,
            }
        };
        conn.set_nonblocking(false).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head, then Content-Length bytes of body.
        loop {
            let n = conn.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let _ =
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        Some(String::from_utf8_lossy(&raw).into_owned())
    });
    let s = TestServer::start(&[("ALERT_WEBHOOK_URL", &url)]);
    let ex = s.post_empty("/api/test-alert").expect(202);
    assert_eq!(
        ex.json(),
        json!({"status": "test alert dispatched", "channels": ["webhook"]}),
        "{}",
        ex.context()
    );
    // The listener thread waits at most 15 s for the alert.
    let received = receiver
        .join()
        .unwrap()
        .expect("the webhook received a request");
    assert!(received.starts_with("POST "), "{received}");
    let body = &received[received.find("\r\n\r\n").unwrap() + 4..];
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert!(
        json["text"].is_string(),
        "webhook body has a text field: {received}"
    );
}

#[test]
fn web_pages_need_no_key() {
    let s = TestServer::start(&[]);
    let ex = s.get_nokey("/").expect(200);
    ex.check(
        ex.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "the list page is HTML",
    );
    let id = s.report(&report("p", "E", "m"))["id"].as_i64().unwrap();
    let ex = s.get_nokey(&format!("/errors/{id}")).expect(200);
    ex.check(
        ex.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "the detail page is HTML",
    );
}

// ---------------------------------------------------------------- database failures

#[test]
fn unreadable_database_is_503_on_health_and_500_elsewhere() {
    let s = TestServer::start(&[]);
    let id = s.report(&report("p", "E", "m"))["id"].as_i64().unwrap();
    s.get_nokey("/health").expect(200);
    // Break the schema under the running service.
    s.sql()
        .execute_batch(
            "PRAGMA foreign_keys=OFF; DROP TABLE error_sessions; DROP TABLE error_occurrences; DROP TABLE errors;",
        )
        .unwrap();
    let ex = s.get_nokey("/health").expect(503);
    ex.check(ex.json()["status"] == "error", "status error");
    ex.check(ex.json()["detail"].is_string(), "a detail");
    for ex in [
        s.get("/api/errors"),
        s.get(&format!("/api/errors/{id}")),
        s.get("/api/projects"),
        s.post("/api/errors", &report("p", "E2", "m")),
        s.post_empty(&format!("/api/errors/{id}/resolve")),
    ] {
        let ex = ex.expect_detail(500, "Internal server error");
        ex.check(
            !ex.response.text().contains("no such table"),
            "no database details leak to the client",
        );
    }
    // The process keeps serving.
    s.get_nokey("/health").expect(503);
    s.get_nokey("/nope").expect(404);
}

// ---------------------------------------------------------------- trend

#[test]
fn trend_counts_every_report_per_hour_and_survives_trimming() {
    let s = TestServer::start(&[("MAX_OCCURRENCES", "2")]);
    let id = s.report(&report("p", "TrendError", "x"))["id"]
        .as_i64()
        .unwrap();
    for _ in 0..4 {
        s.report(&report("p", "TrendError", "x"));
    }
    let other = s.report(&report("p", "OtherError", "y"))["id"]
        .as_i64()
        .unwrap();
    let detail = s.detail(id);
    assert_eq!(
        detail["occurrences"].as_array().unwrap().len(),
        2,
        "trimmed"
    );
    let trend = detail["trend"].as_array().unwrap();
    assert_eq!(trend.len(), 24, "24 hourly points by default: {detail}");
    // The current hour holds every report (the previous one if the hour turned meanwhile).
    let recent = trend[22]["count"].as_i64().unwrap() + trend[23]["count"].as_i64().unwrap();
    assert_eq!(recent, 5, "{detail}");
    let total: i64 = trend.iter().map(|p| p["count"].as_i64().unwrap()).sum();
    assert_eq!(total, 5);
    let hour = trend[23]["hour"].as_str().unwrap();
    assert!(hour.ends_with(":00:00Z"), "hours are RFC 3339: {hour}");
    assert!(trend[0]["hour"].as_str().unwrap() < hour, "oldest first");

    let week = s
        .get(&format!("/api/errors/{id}?trend=7d"))
        .expect(200)
        .json();
    assert_eq!(week["trend"].as_array().unwrap().len(), 168);
    s.get(&format!("/api/errors/{id}?trend=1y"))
        .expect_bad_field("trend");

    let list = s.list("");
    for item in list["errors"].as_array().unwrap() {
        let trend: Vec<i64> = serde_json::from_value(item["trend"].clone()).unwrap();
        assert_eq!(trend.len(), 24, "{item}");
        let expected = if item["id"] == id { 5 } else { 1 };
        assert_eq!(trend[22] + trend[23], expected, "{item}");
        assert_eq!(trend.iter().sum::<i64>(), expected);
    }
    assert!(s.list_ids("").contains(&other));
}

#[test]
fn retention_keeps_the_trend_of_the_last_week_and_a_group_takes_its_hours_along() {
    let s = TestServer::start(&[("RETENTION_INTERVAL", "1")]);
    let id = s.report(&report("p", "OldError", "x"))["id"]
        .as_i64()
        .unwrap();
    let sql = s.sql();
    let hour: i64 = sql
        .query_row(
            "SELECT max(hour) FROM error_hourly WHERE error_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    // Three hours ago, and a month ago (outside every trend).
    sql.execute(
        "INSERT INTO error_hourly (error_id, hour, count) VALUES (?1, ?2, 7), (?1, ?3, 9)",
        [id, hour - 3, hour - 24 * 30],
    )
    .unwrap();
    let trend = s.detail(id)["trend"].clone();
    assert_eq!(trend[20]["count"], 7, "{trend}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let hours = || -> Vec<i64> {
        let mut statement = sql
            .prepare("SELECT hour FROM error_hourly WHERE error_id = ?1 ORDER BY hour")
            .unwrap();
        let rows = statement.query_map([id], |r| r.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    };
    while hours().len() == 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "retention never dropped the old hour"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        hours(),
        vec![hour - 3, hour],
        "only the month-old hour is gone"
    );
    sql.execute("DELETE FROM errors WHERE id = ?1", [id])
        .unwrap();
    let left: i64 = sql
        .query_row("SELECT count(*) FROM error_hourly", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "a deleted group's hours are deleted with it");
}

// ---------------------------------------------------------------- bulk resolve

#[test]
fn bulk_resolve_and_reopen_answer_per_id() {
    let s = TestServer::start(&[]);
    let a = s.report(&report("p", "AError", "a"))["id"]
        .as_i64()
        .unwrap();
    let b = s.report(&report("p", "BError", "b"))["id"]
        .as_i64()
        .unwrap();
    let c = s.report(&report("p", "CError", "c"))["id"]
        .as_i64()
        .unwrap();
    let ex = s
        .post("/api/errors/resolve", &json!({"ids": [a, 999_999, b]}))
        .expect(200);
    assert_eq!(
        ex.json(),
        json!({"results": [
            {"id": a, "status": "resolved"},
            {"id": 999_999, "status": "not_found"},
            {"id": b, "status": "resolved"},
        ]})
    );
    assert_eq!(s.list_ids(""), vec![c]);
    let resolved_at = s.detail(a)["resolved_at"].clone();
    assert!(resolved_at.is_string());
    // Resolving again keeps the first resolved_at.
    s.post("/api/errors/resolve", &json!({"ids": [a]}))
        .expect(200);
    assert_eq!(s.detail(a)["resolved_at"], resolved_at);

    let ex = s
        .post("/api/errors/unresolve", &json!({"ids": [b, a]}))
        .expect(200);
    assert_eq!(
        ex.json()["results"],
        json!([{"id": b, "status": "unresolved"}, {"id": a, "status": "unresolved"}])
    );
    let mut open = s.list_ids("");
    open.sort();
    assert_eq!(open, vec![a, b, c]);
    assert!(s.detail(a)["resolved_at"].is_null());
}

#[test]
fn bulk_resolve_validates_its_ids() {
    let s = TestServer::start(&[]);
    let too_many: Vec<i64> = (1..=201).collect();
    for body in [
        json!({}),
        json!({"ids": 5}),
        json!({"ids": []}),
        json!({"ids": too_many}),
        json!({"ids": [1, "2"]}),
        json!({"ids": [1.5]}),
        json!({"ids": [null]}),
    ] {
        for path in ["/api/errors/resolve", "/api/errors/unresolve"] {
            s.post(path, &body).expect_bad_field("ids");
        }
    }
    let most: Vec<i64> = (1..=200).collect();
    let ex = s
        .post("/api/errors/resolve", &json!({"ids": most}))
        .expect(200);
    assert_eq!(ex.json()["results"].as_array().unwrap().len(), 200);
    s.post_empty("/api/errors/resolve").expect(400);
    s.request("POST", "/api/errors/resolve", &[], Some(b"{\"ids\":[1]}"))
        .expect_detail(401, "Invalid API key");
}

// ---------------------------------------------------------------- log containers

#[test]
fn detail_names_the_projects_log_containers() {
    let s = TestServer::start(&[(
        "PROJECT_CONTAINERS",
        "shop=shop_web|shop_worker,billing=billing_api",
    )]);
    let shop = s.report(&report("shop", "E", "x"))["id"].as_i64().unwrap();
    let other = s.report(&report("other", "E", "x"))["id"].as_i64().unwrap();
    assert_eq!(
        s.detail(shop)["log_containers"],
        json!(["shop_web", "shop_worker"])
    );
    assert_eq!(s.detail(other)["log_containers"], json!([]));
}

/// Reports one distinct group per (exception type, message); their ids in order.
fn report_each(s: &TestServer, groups: &[(&str, &str)]) -> Vec<i64> {
    groups
        .iter()
        .enumerate()
        .map(|(n, (ty, message))| {
            let mut body = distinct_report("p", n);
            body["exception_type"] = json!(ty);
            body["message"] = json!(message);
            s.report(&body)["id"].as_i64().expect("an id")
        })
        .collect()
}
