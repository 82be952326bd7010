//! Response shapes of `/api/containers`, `/api/stats` (and their `/api/logs/...` aliases),
//! `/health`, `/api/logs`; authentication and routing errors.

use serde_json::Value;

use crate::support::{strings, wait_for, TestServer, KEY};

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.ends_with('Z') && shared::time::parse_rfc3339_ms(s).is_some())
}

#[test]
fn health_shape() {
    let server = TestServer::start(&[]);
    let health = server.get_without_key("/health");
    assert_eq!(health.status, 200);
    assert!(health
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["logs_indexed"], 0, "{body}");
    assert_eq!(body["containers_watched"], 0, "{body}");
    for field in [
        "status",
        "logs_indexed",
        "last_ingest",
        "containers_watched",
    ] {
        assert!(body.get(field).is_some(), "/health lacks {field}: {body}");
    }
    // last_ingest: null before the first successful poll, then a time.
    wait_for("a successful poll", || {
        let body = server.get_without_key("/health").json();
        if is_rfc3339_utc(&body["last_ingest"]) {
            Ok(())
        } else {
            Err(body.to_string())
        }
    });
    let c = server.docker.add("h1");
    c.lines("stdout", &strings(&["one", "two", "three"]));
    server.wait_for_count("container=h1", 3);
    let body = server.get_without_key("/health").json();
    assert_eq!(body["logs_indexed"], 3, "{body}");
    assert_eq!(body["containers_watched"], 1, "{body}");
    // Never needs the key, also with a wrong one.
    let response = shared::testing::get(server.addr, "/health", Some("wrong")).unwrap();
    assert_eq!(response.status, 200);
}

#[test]
fn containers_and_stats_shapes() {
    let server = TestServer::start(&[]);
    let web = server.docker.add("web");
    let db = server.docker.add("db");
    let _idle = server.docker.add("idle"); // watched, never logs
    web.lines("stdout", &strings(&["GET / 200", "GET /x 200"]));
    web.stderr("ERROR: boom");
    db.stderr("WARNING: slow query");
    server.wait_for_count("", 4);
    server.wait_watching("idle");

    for path in [
        "/api/containers",
        "/api/logs/containers",
        "/api/containers/",
    ] {
        let body = server.json(path);
        assert_eq!(keys(&body), vec!["containers"], "{path}: {body}");
        let list = body["containers"].as_array().unwrap();
        let names: Vec<&str> = list.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["db", "idle", "web"], "sorted by name: {body}");
        for container in list {
            assert_eq!(
                keys(container),
                vec!["last_seen", "log_count", "name", "watching"],
                "{container}"
            );
            assert_eq!(container["watching"], true, "{container}");
        }
        assert_eq!(list[0]["log_count"], 1);
        assert_eq!(list[2]["log_count"], 3);
        assert!(is_rfc3339_utc(&list[2]["last_seen"]), "{body}");
        assert_eq!(list[1]["log_count"], 0, "{body}");
        assert!(list[1]["last_seen"].is_null(), "{body}");
    }

    for path in ["/api/stats", "/api/logs/stats"] {
        let stats = server.json(path);
        assert_eq!(
            keys(&stats),
            vec![
                "by_container",
                "by_level",
                "newest_log",
                "oldest_log",
                "total_logs"
            ],
            "{path}: {stats}"
        );
        assert_eq!(stats["total_logs"], 4, "{stats}");
        assert_eq!(stats["by_container"]["web"], 3, "{stats}");
        assert_eq!(stats["by_container"]["db"], 1, "{stats}");
        assert_eq!(stats["by_level"]["INFO"], 2, "{stats}");
        assert_eq!(stats["by_level"]["ERROR"], 1, "{stats}");
        assert_eq!(stats["by_level"]["WARNING"], 1, "{stats}");
        assert!(is_rfc3339_utc(&stats["oldest_log"]), "{stats}");
        assert!(is_rfc3339_utc(&stats["newest_log"]), "{stats}");
        assert!(
            stats["oldest_log"].as_str().unwrap() <= stats["newest_log"].as_str().unwrap(),
            "{stats}"
        );
    }

    // A removed container stays listed with its history but is no longer watched.
    db.remove();
    wait_for("db to be no longer watched", || {
        let body = server.json("/api/containers");
        let db = body["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "db")
            .cloned();
        match db {
            Some(db) if db["watching"] == false && db["log_count"] == 1 => Ok(()),
            _ => Err(body.to_string()),
        }
    });
}

#[test]
fn empty_history_shapes() {
    let server = TestServer::start(&[]);
    let stats = server.json("/api/stats");
    assert_eq!(stats["total_logs"], 0, "{stats}");
    assert!(
        stats["oldest_log"].is_null() && stats["newest_log"].is_null(),
        "{stats}"
    );
    let logs = server.json("/api/logs");
    assert_eq!(
        keys(&logs)
            .into_iter()
            .filter(|k| k != "total_capped")
            .collect::<Vec<_>>(),
        vec!["limit", "logs", "offset", "tail_cursor", "total"],
        "{logs}"
    );
    assert_eq!(logs["logs"], serde_json::json!([]));
    assert_eq!(logs["total"], 0);
    let containers = server.json("/api/containers");
    assert_eq!(containers, serde_json::json!({"containers": []}));
    let histogram = server.json("/api/logs/histogram");
    assert!(histogram["buckets"].is_array(), "{histogram}");
}

#[test]
fn log_entry_shape() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("shape");
    c.stderr("ERROR: shaped");
    let entry = server.wait_for_entry("container=shape", |e| e["message"] == "ERROR: shaped");
    assert_eq!(
        keys(&entry),
        vec!["container", "id", "level", "message", "stream", "timestamp"],
        "{entry}"
    );
    assert!(entry["id"].is_i64());
    assert_eq!(entry["container"], "shape");
    assert_eq!(entry["stream"], "stderr");
    assert_eq!(entry["level"], "ERROR");
    assert!(is_rfc3339_utc(&entry["timestamp"]), "{entry}");
}

#[test]
fn authentication_and_routing() {
    let server = TestServer::start(&[]);
    for path in [
        "/api/logs",
        "/api/logs/histogram",
        "/api/containers",
        "/api/logs/containers",
        "/api/stats",
        "/api/logs/stats",
        "/api/nothing-here",
    ] {
        let response = server.get_without_key(path);
        assert_eq!(response.status, 401, "{path}");
        assert_eq!(
            response.json(),
            serde_json::json!({"detail": "Invalid API key"})
        );
        let wrong = shared::testing::get(server.addr, path, Some("not-the-key")).unwrap();
        assert_eq!(wrong.status, 401, "{path} with a wrong key");
        let with_param = server.get_without_key(&format!("{path}?api_key={KEY}"));
        let expected = if path == "/api/nothing-here" {
            404
        } else {
            200
        };
        assert_eq!(
            with_param.status,
            expected,
            "{path}?api_key=: {}",
            with_param.text()
        );
    }
    // The header wins over the query parameter; the header name is case-insensitive.
    let response =
        shared::testing::get(server.addr, "/api/stats?api_key=k", Some("wrong")).unwrap();
    assert_eq!(response.status, 401);
    let response = shared::testing::request(
        server.addr,
        "GET",
        "/api/stats",
        &[("x-api-KEY", KEY)],
        None,
    )
    .unwrap();
    assert_eq!(response.status, 200);

    let missing = server.get("/api/nothing-here");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json(), serde_json::json!({"detail": "Not found"}));
    let outside = server.get_without_key("/nothing-here");
    assert_eq!(outside.status, 404);
    let post =
        shared::testing::post_json(server.addr, "/api/logs", Some(KEY), &serde_json::json!({}))
            .unwrap();
    assert_eq!(post.status, 405, "{}", post.text());
    assert!(
        post.header("allow").unwrap_or("").contains("GET"),
        "{:?}",
        post.headers
    );
}

/// A message longer than a preview: multi-byte characters across the cut.
fn long_message() -> String {
    format!("long {}", "é€x".repeat(2000))
}

#[test]
fn long_messages_are_cut_in_lists_and_whole_at_the_entry_endpoint() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("long");
    let long = long_message();
    c.stdout(&long);
    c.stdout("short");
    let listed = server.wait_for_entry("container=long", |e| e["message"] == "short");
    assert_eq!(
        keys(&listed),
        vec!["container", "id", "level", "message", "stream", "timestamp"],
        "an entry that was not cut keeps the spec's shape: {listed}"
    );
    let cut = server.wait_for_entry("container=long", |e| e["truncated"] == true);
    let shown = cut["message"].as_str().expect("a message");
    assert!(shown.len() <= 2048, "cut to 2 KiB: {} bytes", shown.len());
    assert!(
        shown.len() > 2040,
        "cut close to 2 KiB: {} bytes",
        shown.len()
    );
    assert!(long.starts_with(shown), "the start of the message");
    assert_eq!(cut["message_bytes"], long.len(), "{cut}");

    let id = cut["id"].as_i64().expect("an id");
    let whole = server.json(&format!("/api/logs/{id}"));
    assert_eq!(whole["message"], long.as_str());
    assert_eq!(
        keys(&whole),
        vec!["container", "id", "level", "message", "stream", "timestamp"]
    );
    assert_eq!(whole["id"], id);
    assert_eq!(whole["container"], "long");
}

#[test]
fn entry_endpoint_answers_404_for_an_unknown_id_and_400_for_a_non_number() {
    let server = TestServer::start(&[]);
    let missing = server.get("/api/logs/987654321");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(
        missing.json(),
        serde_json::json!({"detail": "Log entry not found"})
    );
    for id in ["abc", "1.5", "0x10", "99999999999999999999999", "%20"] {
        let bad = server.get(&format!("/api/logs/{id}"));
        assert_eq!(bad.status, 400, "{id}: {}", bad.text());
        assert!(
            bad.json()["detail"].as_str().unwrap_or("").contains("'id'"),
            "{id}: {}",
            bad.text()
        );
    }
    for id in ["0", "-1", "9223372036854775807"] {
        let none = server.get(&format!("/api/logs/{id}"));
        assert_eq!(none.status, 404, "{id}: {}", none.text());
    }
    assert_eq!(server.get_without_key("/health").status, 200);
    // The literal routes under /api/logs/ still win over {id}.
    for path in [
        "/api/logs/histogram",
        "/api/logs/stats",
        "/api/logs/containers",
    ] {
        assert_eq!(server.get(path).status, 200, "{path}");
    }
}
