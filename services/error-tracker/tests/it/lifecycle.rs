//! The process: command line, exit codes, SIGTERM, retention.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use shared::time::now_ms;

use crate::support::{distinct_report, read_one_response, run_binary, write_all, TestServer, KEY};

const DAY_MS: i64 = 86_400_000;

// ---------------------------------------------------------------- command line

#[test]
fn version_and_help_need_no_environment() {
    let (status, out, err) = run_binary(&["--version"], &[], Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("error-tracker"), "{out}");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");

    let (status, out, err) = run_binary(&["--help"], &[], Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("error-tracker"), "{out}");
    for var in [
        "API_KEY",
        "DATABASE_PATH",
        "PORT",
        "RATE_LIMIT",
        "MAX_BODY_SIZE",
        "RETENTION_DAYS",
        "MAX_OCCURRENCES",
    ] {
        assert!(out.contains(var), "--help does not mention {var}:\n{out}");
    }
}

/// The non-empty lines of a text.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn missing_api_key_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("errors.db").display().to_string();
    let (status, out, err) = run_binary(
        &[],
        &[("PORT", "0"), ("BIND", "127.0.0.1"), ("DATABASE_PATH", &db)],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(2), "stdout: {out}\nstderr: {err}");
    assert_eq!(lines(&err).len(), 1, "one line expected:\n{err}");
    assert!(err.contains("API_KEY"), "{err}");
    assert!(
        !std::path::Path::new(&db).exists(),
        "nothing is opened on a configuration error"
    );
    // Set to the empty string counts as unset.
    let (status, _, err) = run_binary(
        &[],
        &[("API_KEY", ""), ("PORT", "0"), ("DATABASE_PATH", &db)],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("API_KEY"), "{err}");
}

#[test]
fn unparsable_port_is_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("errors.db").display().to_string();
    let (status, out, err) = run_binary(
        &[],
        &[("API_KEY", KEY), ("PORT", "abc"), ("DATABASE_PATH", &db)],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(2), "stdout: {out}\nstderr: {err}");
    assert_eq!(lines(&err).len(), 1, "one line expected:\n{err}");
    assert!(err.contains("PORT") && err.contains("abc"), "{err}");
    let (status, _, err) = run_binary(
        &[],
        &[
            ("API_KEY", KEY),
            ("PORT", "0"),
            ("BIND", "127.0.0.1"),
            ("MAX_OCCURRENCES", "five"),
            ("DATABASE_PATH", &db),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("MAX_OCCURRENCES") && err.contains("five"),
        "{err}"
    );
}

#[test]
fn unopenable_database_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain-file");
    std::fs::write(&plain, b"not a directory").unwrap();
    let db = plain.join("errors.db").display().to_string();
    let (status, out, err) = run_binary(
        &[],
        &[
            ("API_KEY", KEY),
            ("PORT", "0"),
            ("BIND", "127.0.0.1"),
            ("DATABASE_PATH", &db),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(!err.trim().is_empty(), "a message is expected on stderr");
    assert!(
        err.contains("plain-file"),
        "the message names the path:\n{err}"
    );
}

#[test]
fn busy_port_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("errors.db").display().to_string();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, out, err) = run_binary(
        &[],
        &[
            ("API_KEY", KEY),
            ("PORT", &port),
            ("BIND", "127.0.0.1"),
            ("DATABASE_PATH", &db),
        ],
        Duration::from_secs(10),
    );
    drop(taken);
    assert_eq!(status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(err.contains(&port), "the message names the address:\n{err}");
}

#[test]
fn database_from_a_newer_version_is_refused_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO _meta VALUES ('schema_version', '999');",
        )
        .unwrap();
    }
    let db = path.display().to_string();
    let (status, out, err) = run_binary(
        &[],
        &[
            ("API_KEY", KEY),
            ("PORT", "0"),
            ("BIND", "127.0.0.1"),
            ("DATABASE_PATH", &db),
        ],
        Duration::from_secs(10),
    );
    assert_eq!(status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("999"),
        "the message explains the version:\n{err}"
    );
}

#[test]
fn healthcheck_flag() {
    let s = TestServer::spawn(&[]);
    let port = s.addr.port().to_string();
    let (status, out, err) = run_binary(
        &["--healthcheck"],
        &[("PORT", &port)],
        Duration::from_secs(10),
    );
    assert_eq!(
        status.code(),
        Some(0),
        "--healthcheck against a running service\nstdout: {out}\nstderr: {err}"
    );
    // A port where nothing listens.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let free_port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let (status, out, err) = run_binary(
        &["--healthcheck"],
        &[("PORT", &free_port)],
        Duration::from_secs(10),
    );
    assert_eq!(
        status.code(),
        Some(1),
        "--healthcheck with nothing listening\nstdout: {out}\nstderr: {err}"
    );
}

// ---------------------------------------------------------------- SIGTERM

#[test]
fn a_head_still_trickling_in_does_not_hold_up_sigterm() {
    // IDLE_TIMEOUT is a minute: the head's own deadline must not be what ends the wait.
    let mut s = TestServer::spawn(&[("IDLE_TIMEOUT", "60")]);
    s.wait_healthy(Duration::from_secs(10));
    let mut slow = s.connect();
    std::io::Write::write_all(&mut slow, b"GET /health HTTP/1.1\r\nHo").expect("a partial head");
    s.wait_healthy(Duration::from_secs(10));
    s.signal(libc::SIGTERM);
    let status = s.wait_exit(Duration::from_secs(15));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit 0 within 15 s of SIGTERM, not after the head's 60 s deadline; log:\n{}",
        s.log_tail()
    );
}

#[test]
fn sigterm_on_an_idle_server_exits_0() {
    let mut s = TestServer::spawn(&[]);
    s.wait_healthy(Duration::from_secs(10));
    s.post("/api/errors", &distinct_report("p", 1)).expect(201);
    s.signal(libc::SIGTERM);
    let status = s.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "no exit within 10 s of SIGTERM; log:\n{}",
        s.log_tail()
    );
    assert_eq!(
        status.unwrap().code(),
        Some(0),
        "exit status after SIGTERM; log:\n{}",
        s.log_tail()
    );
    // The WAL was checkpointed on the way out.
    let wal = s.db_path.with_extension("db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        wal_len,
        0,
        "{} still holds {wal_len} bytes after a clean shutdown; log:\n{}",
        wal.display(),
        s.log_tail()
    );
    // What was acknowledged is in the database.
    let count: i64 = s
        .sql()
        .query_row("SELECT count(*) FROM errors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
}

#[test]
fn sigint_exits_0_too() {
    let mut s = TestServer::spawn(&[]);
    s.wait_healthy(Duration::from_secs(10));
    s.signal(libc::SIGINT);
    let status = s.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGINT; log:\n{}",
        s.log_tail()
    );
}

/// Waits until new connections to the (stopping) service are refused: proof that it has
/// seen the shutdown flag.
fn wait_until_refused(s: &TestServer, deadline: Duration) {
    let end = Instant::now() + deadline;
    loop {
        match std::net::TcpStream::connect_timeout(&s.addr, Duration::from_millis(500)) {
            Err(_) => return,
            Ok(stream) => drop(stream),
        }
        assert!(
            Instant::now() < end,
            "the service still accepts connections {deadline:?} after SIGTERM; log:\n{}",
            s.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// TCP send and receive queues of the IPv4 connection `local` → `remote` (ports), from
/// `/proc/net/tcp`, when it is established.
fn tcp_queues(table: &str, local: u16, remote: u16) -> Option<(u64, u64)> {
    let port = |address: &str| {
        let (_, port) = address.rsplit_once(':')?;
        u16::from_str_radix(port, 16).ok()
    };
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (tx, rx) = fields.get(4)?.split_once(':')?;
        let established = fields.get(3) == Some(&"01");
        (established && port(fields.get(1)?)? == local && port(fields.get(2)?)? == remote)
            .then_some((
                u64::from_str_radix(tx, 16).ok()?,
                u64::from_str_radix(rx, 16).ok()?,
            ))
    })
}

/// Waits until the service has read every byte written on `stream`: nothing of ours is
/// unacknowledged and nothing waits unread in the service's socket.
fn wait_until_read(stream: &std::net::TcpStream, deadline: Duration) {
    let ours = stream.local_addr().expect("local address").port();
    let theirs = stream.peer_addr().expect("peer address").port();
    let end = Instant::now() + deadline;
    loop {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let sent = tcp_queues(&table, ours, theirs);
        let received = tcp_queues(&table, theirs, ours);
        if matches!((sent, received), (Some((0, _)), Some((_, 0)))) {
            return;
        }
        assert!(
            Instant::now() < end,
            "the service did not read what was sent within {deadline:?}: \
             our queues {sent:?}, the service's {received:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `head` + `first` on an accepted connection, SIGTERMs the service, waits until it
/// has seen the signal, then sends `rest`: the request must still be answered 201 and the
/// process exit 0 with the report committed.
fn in_flight_request_survives_sigterm(head: &str, first: &[u8], rest: &[u8]) {
    let mut s = TestServer::spawn(&[]);
    s.wait_healthy(Duration::from_secs(10));
    let mut stream = s.connect();
    // A first request on the connection proves the server has accepted it.
    write_all(
        &mut stream,
        b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        "a keep-alive health request",
    );
    let health = read_one_response(&mut stream, Duration::from_secs(5)).expect("health");
    assert_eq!(health.status, 200);

    write_all(&mut stream, head.as_bytes(), "the request head");
    write_all(&mut stream, first, "the first part of the body");
    // The server has taken in the head and the first part: the request is in flight.
    wait_until_read(&stream, Duration::from_secs(10));
    s.signal(libc::SIGTERM);
    wait_until_refused(&s, Duration::from_secs(5));
    // The rest arrives after the service has seen the signal.
    let sent = std::io::Write::write_all(&mut stream, rest);
    let response = read_one_response(&mut stream, Duration::from_secs(10));
    let log = s.log_tail();
    match response {
        Ok(response) => {
            assert_eq!(response.status, 201, "{}\nlog:\n{log}", response.text());
            assert_eq!(response.json()["status"], "created");
        }
        Err(e) => panic!(
            "the in-flight request got no response after SIGTERM (writing the rest: {sent:?}; reading: {e})\nlog:\n{log}"
        ),
    }
    let status = s.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM; log:\n{}",
        s.log_tail()
    );
    let count: i64 = s
        .sql()
        .query_row("SELECT count(*) FROM errors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1, "the acknowledged report is committed");
}

#[test]
fn sigterm_finishes_an_in_flight_request() {
    let body = distinct_report("p", 7).to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let head = format!(
        "POST /api/errors HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight_request_survives_sigterm(&head, first, rest);
}

#[test]
fn sigterm_finishes_an_in_flight_chunked_request() {
    let body = distinct_report("p", 8).to_string();
    let (a, b) = body.as_bytes().split_at(body.len() / 2);
    let head = format!(
        "POST /api/errors HTTP/1.1\r\nHost: t\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut first = format!("{:x}\r\n", a.len()).into_bytes();
    first.extend_from_slice(a);
    first.extend_from_slice(b"\r\n");
    let mut rest = format!("{:x}\r\n", b.len()).into_bytes();
    rest.extend_from_slice(b);
    rest.extend_from_slice(b"\r\n0\r\n\r\n");
    in_flight_request_survives_sigterm(&head, &first, &rest);
}

// ---------------------------------------------------------------- retention

#[test]
fn retention_deletes_only_old_resolved_groups() {
    let s = TestServer::start(&[("RETENTION_DAYS", "90"), ("RETENTION_INTERVAL", "1")]);
    let mut ids = Vec::new();
    for n in 0..3 {
        let mut body = distinct_report("p", n);
        body["extra"] = serde_json::json!({"session_id": format!("s{n}")});
        let id = s.report(&body)["id"].as_i64().unwrap();
        s.report(&body); // a second occurrence
        ids.push(id);
    }
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    s.post_empty(&format!("/api/errors/{a}/resolve"))
        .expect(200);
    s.post_empty(&format!("/api/errors/{b}/resolve"))
        .expect(200);
    let now = now_ms();
    {
        let sql = s.sql();
        sql.execute(
            "UPDATE errors SET resolved_at = ?2 WHERE id = ?1",
            [a, now - 100 * DAY_MS],
        )
        .unwrap();
        sql.execute(
            "UPDATE errors SET resolved_at = ?2 WHERE id = ?1",
            [b, now - DAY_MS],
        )
        .unwrap();
        sql.execute(
            "UPDATE errors SET first_seen = ?2, last_seen = ?2 WHERE id = ?1",
            [c, now - 100 * DAY_MS],
        )
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ex = s.get(&format!("/api/errors/{a}"));
        if ex.status() == 404 {
            break;
        }
        ex.check(ex.status() == 200, "detail of A while waiting");
        assert!(
            Instant::now() < deadline,
            "group A (resolved 100 days ago) was not deleted within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let detail_b = s.detail(b);
    assert_eq!(detail_b["resolved"], true);
    let detail_c = s.detail(c);
    assert_eq!(detail_c["resolved"], false);
    assert_eq!(detail_c["occurrences"].as_array().unwrap().len(), 2);
    let sql = s.sql();
    let count = |table: &str, id: i64| -> i64 {
        sql.query_row(
            &format!("SELECT count(*) FROM {table} WHERE error_id = ?1"),
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(count("error_occurrences", a), 0, "A's occurrences cascade");
    assert_eq!(count("error_sessions", a), 0, "A's sessions cascade");
    assert_eq!(count("error_occurrences", b), 2);
    assert_eq!(count("error_occurrences", c), 2);
    let remaining: Vec<i64> = sql
        .prepare("SELECT id FROM errors ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(remaining, vec![b, c]);
    drop(sql);
    assert_eq!(s.list("resolved=all")["total"], 2);
}

// ---------------------------------------------------------------- logging

#[test]
fn logs_never_hold_the_key_or_bodies() {
    for level in ["info", "debug"] {
        let s = TestServer::spawn(&[("LOG_LEVEL", level), ("API_KEY", "s3cr3t-k3y-value")]);
        let mut body = distinct_report("p", 1);
        body["message"] = serde_json::json!("body-marker-7f3a");
        let wire = body.to_string();
        s.request(
            "POST",
            "/api/errors",
            &[("X-API-Key", "s3cr3t-k3y-value")],
            Some(wire.as_bytes()),
        )
        .expect(201);
        s.request("GET", "/api/errors?api_key=s3cr3t-k3y-value", &[], None)
            .expect(200);
        s.request("GET", "/api/errors?api_key=wrong-k3y-value", &[], None)
            .expect(401);
        let log = s.log();
        assert!(
            !log.contains("s3cr3t-k3y-value"),
            "the API key is in the {level} log:\n{log}"
        );
        if level == "info" {
            assert!(
                !log.contains("body-marker-7f3a"),
                "a request body is in the info log:\n{log}"
            );
        } else {
            assert!(
                log.contains("GET /api/errors 200"),
                "one line per request at debug:\n{log}"
            );
        }
    }
}

#[test]
fn invalid_log_level_warns_and_runs() {
    let s = TestServer::spawn(&[("LOG_LEVEL", "loud")]);
    s.wait_healthy(Duration::from_secs(10));
    let log = s.log();
    assert!(
        log.contains("LOG_LEVEL") && log.contains("listening on"),
        "a warning naming LOG_LEVEL, then info logs:\n{log}"
    );
}
