//! One request, one path: every other spelling of an API path is refused or guarded, never
//! answered with data; route policies, HEAD, `Date`, strict framing and early answers as a
//! client sees them on the wire.

use std::io::Read;
use std::time::Duration;

use shared::testing;

use crate::support::{read_one_response, report, write_all, TestServer, KEY};

/// Spellings of `/api/errors` that a proxy, a browser or the router could read differently.
const SPELLINGS: &[&str] = &[
    "//api/errors",
    "/%2Fapi/errors",
    "/%2fapi/errors",
    "/api//errors",
    "/./api/errors",
    "/x/../api/errors",
    "/%2e%2e/api/errors",
    "/api/%2e/errors",
    "/api/errors%00",
    "/api/%zz",
    "http://h/api/errors",
    "*",
];

#[test]
fn other_spellings_of_api_paths_are_refused_never_served_without_a_key() {
    let s = TestServer::start(&[]);
    let id = s.report(&report("p", "SecretError", "do not leak me"))["id"]
        .as_i64()
        .unwrap_or(1);
    let write_routes = [
        ("POST", "errors".to_string()),
        ("POST", format!("errors/{id}/resolve")),
        ("POST", format!("errors/{id}/unresolve")),
        ("POST", "test-alert".to_string()),
    ];
    let read_routes = [
        ("GET", "errors".to_string()),
        ("GET", format!("errors/{id}")),
        ("GET", "projects".to_string()),
    ];
    for spelling in SPELLINGS {
        for (method, rest) in write_routes.iter().chain(&read_routes) {
            let path = spelling.replace("errors", rest);
            let ex = s.request(method, &path, &[], Some(b"{}"));
            ex.check(
                matches!(ex.status(), 400 | 401 | 404),
                &format!("{method} {path} without a key must be 400, 401 or 404"),
            );
            let body = String::from_utf8_lossy(&ex.response.body).into_owned();
            ex.check(
                !body.contains("SecretError") && !body.contains("do not leak me"),
                "no data in the answer",
            );
        }
    }
    // Nothing was changed by any of them.
    let detail = s.detail(id);
    assert_eq!(detail["resolved"], false, "{detail}");
    assert_eq!(detail["count"], 1, "{detail}");
}

#[test]
fn percent_encoded_ordinary_characters_get_the_same_checks_as_the_plain_path() {
    let s = TestServer::start(&[]);
    s.report(&report("p", "E", "m"));
    for path in ["/%61pi/errors", "/api/%65rrors", "/api/errors/"] {
        s.request("GET", path, &[], None)
            .expect_detail(401, "Invalid API key");
        let listed = s.get(path).expect(200).json();
        assert_eq!(listed["total"], 1, "{path}: {listed}");
    }
}

#[test]
fn unknown_api_paths_ask_for_the_key_before_saying_not_found() {
    let s = TestServer::start(&[]);
    s.get_nokey("/api/nope")
        .expect_detail(401, "Invalid API key");
    s.get("/api/nope").expect_detail(404, "Not found");
    s.request("DELETE", "/api/errors", &[], None).expect(401);
    let ex = s.request("DELETE", "/api/errors", &[("X-API-Key", KEY)], None);
    let ex = ex.expect(405);
    let mut allow: Vec<&str> = ex.header("allow").unwrap_or("").split(", ").collect();
    allow.sort_unstable();
    assert_eq!(allow, ["GET", "HEAD", "POST"]);
    s.get_nokey("/nope").expect_detail(404, "Not found");
}

#[test]
fn head_is_answered_for_every_get_route_without_a_body() {
    let s = TestServer::start(&[]);
    for (path, key, status) in [
        ("/health", false, 200),
        ("/", false, 200),
        ("/static/monlight.css", false, 200),
        ("/api/errors", true, 200),
        ("/api/errors", false, 401),
    ] {
        let mut stream = s.connect();
        let key_header = if key {
            format!("X-API-Key: {KEY}\r\n")
        } else {
            String::new()
        };
        let request =
            format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n{key_header}Connection: close\r\n\r\n");
        write_all(&mut stream, request.as_bytes(), "a HEAD request");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "HEAD {path}: {head}"
        );
        assert!(body.is_empty(), "HEAD {path} sent a body: {body:?}");
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.parse::<usize>().ok());
        assert!(length.is_some_and(|n| n > 0), "HEAD {path}: {head}");
    }
}

#[test]
fn every_response_carries_a_date_header() {
    let s = TestServer::start(&[]);
    for ex in [
        s.get_nokey("/health"),
        s.get_nokey("/api/errors"),
        s.get("/nope"),
    ] {
        let date = ex.header("date").unwrap_or("").to_string();
        ex.check(
            date.ends_with(" GMT") && date.len() == 29,
            "an IMF-fixdate Date header",
        );
    }
}

#[test]
fn smuggling_shaped_requests_get_400_and_the_connection_closes() {
    let s = TestServer::start(&[]);
    let k = format!("X-API-Key: {KEY}\r\n");
    let cases = [
        format!("POST /api/errors HTTP/1.1\r\nHost: t\r\n{k}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        format!("POST /api/errors HTTP/1.1\r\nHost: t\r\n{k}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        format!("POST /api/errors HTTP/1.1\r\nHost: t\r\n{k}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
        format!("POST /api/errors HTTP/1.1\r\nHost: t\r\n{k}Content-Length: +2\r\n\r\n{{}}"),
        format!("POST /api/errors HTTP/1.1\r\nHost: t\r\n{k}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}"),
        format!("POST /api/errors HTTP/1.1\r\nHost: t\r\n{k}Transfer-Encoding: chunked\r\n\r\n+2\r\n{{}}\r\n0\r\n\r\n"),
        format!("POST /api/errors HTTP/1.1\r\nHost: t\r\n{k}Transfer-Encoding: chunked\r\n\r\n2\n{{}}\r\n0\r\n\r\n"),
        format!("GET /api/errors HTTP/1.1\r\n{k}\r\n"),
        format!("GET /api/errors HTTP/1.1\nHost: t\n{k}\n"),
    ];
    for request in &cases {
        let mut stream = s.connect();
        write_all(
            &mut stream,
            request.as_bytes(),
            "a smuggling-shaped request",
        );
        let response = read_one_response(&mut stream, Duration::from_secs(5));
        let response = response.unwrap_or_else(|e| panic!("{request:?}: {e}"));
        assert_eq!(response.status, 400, "{request:?}: {}", response.text());
        assert_eq!(response.header("connection"), Some("close"), "{request:?}");
        let mut rest = Vec::new();
        let closed = stream.read_to_end(&mut rest).is_ok();
        assert!(closed && rest.is_empty(), "{request:?}: more after the 400");
    }
    s.get_nokey("/health").expect(200);
}

#[test]
fn an_early_401_or_413_reaches_the_client_that_is_still_sending() {
    let s = TestServer::start(&[("MAX_BODY_SIZE", "65536")]);
    let body = vec![b'x'; 512 * 1024];
    for (key, length, status) in [("wrong", body.len(), 401), (KEY, 10 * 1024 * 1024, 413)] {
        let mut stream = s.connect();
        let head = format!(
            "POST /api/errors HTTP/1.1\r\nHost: t\r\nX-API-Key: {key}\r\nContent-Length: {length}\r\n\r\n"
        );
        write_all(&mut stream, head.as_bytes(), "the head");
        // The client goes on sending its body; the server answers before reading it. With
        // a plain close the kernel would reset the connection and the answer be lost.
        let _ = std::io::Write::write_all(&mut stream, &body);
        let response = read_one_response(&mut stream, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("no {status} answer, only: {e}"));
        assert_eq!(response.status, status, "{}", response.text());
    }
    s.get_nokey("/health").expect(200);
}

#[test]
fn a_request_line_with_a_newline_in_the_path_cannot_forge_a_log_line() {
    let s = TestServer::spawn(&[("LOG_LEVEL", "debug")]);
    s.get_nokey("/nope%0A2026-01-01T00:00:00Z%20INFO%20forged")
        .expect(404);
    s.get_nokey("/health").expect(200);
    let log = s.log();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z INFO forged")),
        "{log}"
    );
    assert!(
        log.contains("/nope\\n2026"),
        "the path is logged escaped:\n{log}"
    );
}

#[test]
fn raw_fuzz_of_the_live_service_never_breaks_it() {
    // A few known-nasty inputs through the whole service (the engine's own fuzzers run in
    // `shared`); the service must answer each with a status or close, and stay healthy.
    let s = TestServer::start(&[]);
    for bytes in [
        &b"\0\0\0\0\r\n\r\n"[..],
        b"GET /%%%% HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
        b"POST /api/errors HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
    ] {
        let _ = testing::send_raw(s.addr, bytes);
    }
    s.get_nokey("/health").expect(200);
}
