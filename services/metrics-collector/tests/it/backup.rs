//! `metrics-collector backup <dest>`, the real binary, against a running service's database
//! while batches keep arriving: the copy is whole, checked, and holds every row committed
//! before it started.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shared::testing::{self, wait_for};

use crate::support::{point, TestServer, KEY, T0};

fn batch(i: usize) -> Value {
    let points: Vec<Value> = (0..20)
        .map(|j| {
            point(
                "jobs_total",
                "counter",
                1.0,
                T0,
                json!({"worker": format!("w{}", (i + j) % 50)}),
            )
        })
        .collect();
    Value::Array(points)
}

/// The binary's `backup` with only `DATABASE_PATH` set (no API key: a backup needs none).
fn run_backup(server: &TestServer, args: &[&std::path::Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metrics-collector"))
        .arg("backup")
        .args(args)
        .env_clear()
        .env("DATABASE_PATH", &server.db_path)
        .output()
        .expect("run the binary")
}

#[test]
fn backup_while_batches_arrive_is_checked_and_holds_the_committed_rows() {
    let server = TestServer::start(T0, &[]);
    for i in 0..10 {
        server.send(&batch(i));
    }
    wait_for("200 committed points", Duration::from_secs(10), || {
        let n = server.rows("points");
        if n >= 200 {
            Ok(())
        } else {
            Err(format!("{n} points"))
        }
    });
    let committed = server.rows("points");

    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (addr, stop) = (server.addr, Arc::clone(&stop));
        let headers = [("X-API-Key", KEY), ("Content-Type", "application/json")];
        std::thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) || sent < 20 {
                let body = batch(sent).to_string();
                let response = testing::request(
                    addr,
                    "POST",
                    "/api/metrics",
                    &headers,
                    Some(body.as_bytes()),
                )
                .expect("a response");
                assert_eq!(response.status, 202, "{}", response.text());
                sent += 1;
            }
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut copies = Vec::new();
    for i in 0..3 {
        let dest = dir.path().join(format!("metrics-{i}.db"));
        let out = run_backup(&server, &[&dest]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "backup failed: {stdout}{stderr}");
        assert!(stdout.contains("integrity ok"), "{stdout}");
        copies.push(dest);
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("the sender thread");

    let mut previous = committed;
    for dest in &copies {
        let copy = rusqlite::Connection::open(dest).expect("open the copy");
        let check: String = copy
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok");
        let rows: i64 = copy
            .query_row("SELECT count(*) FROM points", [], |r| r.get(0))
            .expect("count");
        assert!(
            rows >= previous,
            "{} has {rows} points, fewer than {previous}",
            dest.display()
        );
        previous = rows;
    }
    assert!(previous <= server.rows("points"));
}

#[test]
fn backup_refuses_an_existing_destination_and_a_missing_argument() {
    let server = TestServer::start(T0, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("taken.db");
    std::fs::write(&dest, b"an older backup").expect("write");
    let out = run_backup(&server, &[&dest]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert_eq!(std::fs::read(&dest).expect("read"), b"an older backup");

    let out = run_backup(&server, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("usage: metrics-collector backup <dest-file>"));
}
