//! Reading Docker's json-file logs: decoding, levels, multiline entries, partial lines and
//! pieces, long lines, rotation, truncation, restarts, discovery and the history cap.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::{docker_time, messages, record, strings, wait_for, TestServer, PIECE};

/// `message → level` of every entry of `container`.
fn levels_by_message(server: &TestServer, container: &str) -> BTreeMap<String, String> {
    server
        .all_logs(&format!("container={container}"))
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap_or("").to_string(),
                e["level"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix} {i}")).collect()
}

#[test]
fn json_is_unescaped_and_raw_lines_are_kept() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("esc");
    // Exactly what Docker writes: Go escapes <, > and & as \u003c, \u003e, \u0026.
    let mut wire = String::new();
    wire.push_str(concat!(
        r#"{"log":"say \"hi\"\tto \u003cyou\u003e \u0026 caf\u00e9 \\ done\n","#,
        r#""stream":"stdout","time":"2026-01-20T10:00:00.123456789Z"}"#,
        "\n"
    ));
    wire.push_str(concat!(
        r#"{"log":"trailing spaces kept   \n","stream":"stdout","#,
        r#""time":"2026-01-20T10:00:01.999999999Z"}"#,
        "\n"
    ));
    wire.push_str("this is not json [ERROR] broken\n");
    wire.push_str("plain garbage line\n");
    wire.push_str("{\"log\":\"cut short\n");
    c.append_raw(wire.as_bytes());

    let entries = server.wait_for_count("container=esc", 5);
    let by_message: BTreeMap<String, &Value> = entries
        .iter()
        .map(|e| (e["message"].as_str().unwrap().to_string(), e))
        .collect();
    let expected = [
        "say \"hi\"\tto <you> & café \\ done",
        "trailing spaces kept   ",
        "this is not json [ERROR] broken",
        "plain garbage line",
        "{\"log\":\"cut short",
    ];
    let mut got: Vec<&str> = by_message.keys().map(String::as_str).collect();
    let mut want = expected.to_vec();
    got.sort();
    want.sort();
    assert_eq!(got, want, "messages as stored: {entries:#?}");

    let first = by_message[expected[0]];
    assert_eq!(first["timestamp"], "2026-01-20T10:00:00.123Z", "{first}");
    assert_eq!(first["stream"], "stdout");
    assert_eq!(first["container"], "esc");
    assert_eq!(first["level"], "INFO");
    assert_eq!(
        by_message[expected[1]]["timestamp"], "2026-01-20T10:00:01.999Z",
        "milliseconds are truncated, not rounded"
    );
    // Raw lines: kept, with level detection applied.
    assert_eq!(by_message[expected[2]]["level"], "ERROR");
    assert_eq!(by_message[expected[3]]["level"], "INFO");
    assert_eq!(by_message[expected[4]]["level"], "INFO");
}

#[test]
fn every_level_rule() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("levels");
    let stdout: &[(&str, &str)] = &[
        (r#"{"level":"warn","msg":"json level"}"#, "WARNING"),
        (r#"{"severity":"ERROR","message":"json severity"}"#, "ERROR"),
        (r#"{"lvl":"debug","msg":"json lvl"}"#, "DEBUG"),
        (r#"{"log.level":"error","message":"ecs flat key"}"#, "ERROR"),
        (
            r#"{"log":{"level":"warning"},"message":"ecs nested"}"#,
            "WARNING",
        ),
        (r#"{"level":50,"msg":"pino error"}"#, "ERROR"),
        (r#"{"level":60,"msg":"pino fatal"}"#, "CRITICAL"),
        (r#"{"level":20,"msg":"pino debug"}"#, "DEBUG"),
        (r#"{"level":"trace","msg":"trace is debug"}"#, "DEBUG"),
        (r#"{"level":"Fatal","msg":"fatal is critical"}"#, "CRITICAL"),
        (
            r#"{"level":"info","msg":"[ERROR] json wins over brackets"}"#,
            "INFO",
        ),
        (
            "time=2026-01-20T10:00:00Z level=warn msg=\"logfmt\"",
            "WARNING",
        ),
        (
            "level=debug msg=\"[ERROR] logfmt wins over brackets\"",
            "DEBUG",
        ),
        ("[ERROR] bracketed", "ERROR"),
        ("worker [warn] bracketed lower case", "WARNING"),
        (
            "[2026-01-20 10:00:00] [crit] bracket after a timestamp",
            "CRITICAL",
        ),
        ("ERROR: leading token", "ERROR"),
        ("err: short form", "ERROR"),
        (
            "2026-01-20 10:00:00,123 ERROR django.request failed",
            "ERROR",
        ),
        ("2026-01-20 10:00:00,123 WARNING python logging", "WARNING"),
        ("plain stdout line mentioning error later", "INFO"),
    ];
    let stderr: &[(&str, &str)] = &[
        ("INFO:     Uvicorn running on http://0.0.0.0:8000", "INFO"),
        ("plain stderr line", "ERROR"),
        ("DEBUG: leading debug on stderr", "DEBUG"),
        (r#"{"level":30,"msg":"pino info on stderr"}"#, "INFO"),
        ("level=info msg=\"logfmt on stderr\"", "INFO"),
        (
            "2026-01-20 10:00:00,123 WARNING stderr python logging",
            "WARNING",
        ),
    ];
    c.lines(
        "stdout",
        &stdout
            .iter()
            .map(|(m, _)| m.to_string())
            .collect::<Vec<_>>(),
    );
    c.lines(
        "stderr",
        &stderr
            .iter()
            .map(|(m, _)| m.to_string())
            .collect::<Vec<_>>(),
    );
    server.wait_for_count("container=levels", stdout.len() + stderr.len());
    let got = levels_by_message(&server, "levels");
    let mut wrong = Vec::new();
    for (message, level) in stdout.iter().chain(stderr) {
        match got.get(*message) {
            Some(actual) if actual == level => {}
            other => wrong.push(format!("{message:?}: want {level}, got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "wrong levels:\n{}", wrong.join("\n"));
    assert_eq!(got.len(), stdout.len() + stderr.len(), "{got:#?}");

    // The level filter sees the same levels.
    let errors = server.json("/api/logs?container=levels&level=ERROR&limit=500");
    let expected_errors = stdout
        .iter()
        .chain(stderr)
        .filter(|(_, l)| *l == "ERROR")
        .count();
    assert_eq!(errors["total"], expected_errors, "{errors}");
}

#[test]
fn traceback_across_two_polls_is_one_entry() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("py");
    server.wait_watching("py");
    c.stdout("service started");
    c.stderr("Traceback (most recent call last):");
    c.stderr("  File \"/app/main.py\", line 10, in <module>");
    server.wait_until_read();
    c.stderr("    raise ValueError(\"boom\")");
    c.stderr("ValueError: boom");
    let whole = [
        "Traceback (most recent call last):",
        "  File \"/app/main.py\", line 10, in <module>",
        "    raise ValueError(\"boom\")",
        "ValueError: boom",
    ]
    .join("\n");
    let entries = server.expect_messages(
        "container=py",
        &[strings(&["service started"]), vec![whole]].concat(),
    );
    assert_eq!(entries[1]["stream"], "stderr");
    assert_eq!(entries[1]["level"], "ERROR");

    // The next line after the exception line starts a new entry.
    c.stderr("ERROR: next request failed");
    server.wait_for_count("container=py", 3);
}

#[test]
fn line_written_in_two_halves_is_read_once() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("halves");
    server.wait_watching("halves");
    let full = record("hello across polls world\n", "stdout", SystemTime::now());
    let (first, second) = full.split_at(full.find("polls").unwrap());
    c.append_raw(first.as_bytes());
    server.wait_until_read();
    c.append_raw(second.as_bytes());

    // The same with 16 KiB pieces: two pieces, read, then the last piece.
    let long = format!("pieced {}", "p".repeat(2 * PIECE + 100));
    let records = crate::support::line_records(&long, "stdout", SystemTime::now());
    let lines: Vec<&str> = records.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 3);
    c.append_raw(format!("{}{}", lines[0], lines[1]).as_bytes());
    server.wait_until_read();
    c.append_raw(lines[2].as_bytes());

    server.expect_messages(
        "container=halves",
        &[strings(&["hello across polls world"]), vec![long]].concat(),
    );
}

#[test]
fn pieces_are_joined_and_long_lines_cut() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("long");
    let joined = format!("joined {}", "0123456789".repeat(4 * 1024)); // 40 KiB: 3 pieces
    let over = format!("over {}", "x".repeat(300 * 1024)); // > 256 KiB
    let huge = format!("huge {}", "y".repeat(1536 * 1024)); // > one 1 MiB read
    c.stdout(&joined);
    c.stdout(&over);
    c.stdout(&huge);
    c.stdout("after the long lines");
    server.wait_for_entry("container=long", |e| e["message"] == "after the long lines");
    let got = server.messages("container=long");
    assert_eq!(
        got.len(),
        4,
        "{:?}",
        got.iter()
            .map(|m| (m.len(), &m[..m.len().min(40)]))
            .collect::<Vec<_>>()
    );
    assert_eq!(got[0], joined, "pieces joined exactly");
    for (message, original) in [(&got[1], &over), (&got[2], &huge)] {
        assert!(
            message.len() < original.len(),
            "not cut: {} bytes",
            message.len()
        );
        assert!(
            message.len() <= 256 * 1024 + 100,
            "cut at {} bytes, more than 256 KiB",
            message.len()
        );
        assert!(
            message.len() >= 200 * 1024,
            "cut too short: {}",
            message.len()
        );
        assert!(
            original.starts_with(&message[..200 * 1024]),
            "the kept part is the start"
        );
        let tail = &message[message.len().saturating_sub(60)..];
        assert!(tail.contains("cut"), "no cut marker at the end: {tail:?}");
    }
    assert_eq!(got[3], "after the long lines");
    // And the container keeps going.
    c.stdout("still going");
    server.wait_for_entry("container=long", |e| e["message"] == "still going");
}

#[test]
fn rotation_while_running_loses_nothing() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("rot");
    c.lines("stdout", &numbered("before", 0..5));
    server.expect_messages("container=rot", &numbered("before", 0..5));

    // Lines not read yet when the log rotates: the rotated file is finished first.
    c.lines("stdout", &numbered("before", 5..10));
    c.rotate();
    c.lines("stdout", &numbered("after", 0..5));
    let mut expected = [numbered("before", 0..10), numbered("after", 0..5)].concat();
    server.expect_messages("container=rot", &expected);

    // A second rotation (the first rotated file moves to .2).
    c.lines("stdout", &numbered("after", 5..10));
    c.rotate();
    c.lines("stdout", &numbered("second", 0..5));
    expected.extend(numbered("after", 5..10));
    expected.extend(numbered("second", 0..5));
    let entries = server.expect_messages("container=rot", &expected);
    let ids = crate::support::ids(&entries);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in order: {ids:?}");
}

#[test]
fn two_rotations_between_polls_lose_nothing() {
    // A chatty container with a small max-size can rotate twice within one poll interval.
    let server = TestServer::start(&[("POLL_INTERVAL", "0.5")]);
    let c = server.docker.add("rot2");
    c.stdout("r0");
    server.expect_messages("container=rot2", &strings(&["r0"]));
    c.stdout("r1");
    c.rotate();
    c.stdout("r2");
    c.rotate();
    c.stdout("r3");
    server.expect_messages("container=rot2", &strings(&["r0", "r1", "r2", "r3"]));
}

#[test]
fn truncated_log_is_read_from_the_start() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("trunc");
    let before = numbered("a fairly long line written before the truncation", 0..5);
    c.lines("stdout", &before);
    server.expect_messages("container=trunc", &before);
    c.rewrite(&record("after truncation 1\n", "stdout", SystemTime::now()));
    let mut expected = [before, strings(&["after truncation 1"])].concat();
    server.expect_messages("container=trunc", &expected);
    c.stdout("after truncation 2");
    expected.push("after truncation 2".to_string());
    server.expect_messages("container=trunc", &expected);
}

#[test]
fn restart_neither_loses_nor_duplicates() {
    let mut server = TestServer::start_prepared(&[], |docker| {
        let c = docker.add("app");
        c.lines("stdout", &numbered("boot", 0..5));
    });
    let app = server.docker.find("app");
    app.lines("stdout", &numbered("out", 0..10));
    app.stderr("Traceback (most recent call last):");
    app.stderr("  File \"/app/x.py\", line 1, in <module>");
    app.stderr("KeyError: 'x'");
    app.lines("stdout", &numbered("out", 10..15));
    let traceback =
        "Traceback (most recent call last):\n  File \"/app/x.py\", line 1, in <module>\nKeyError: 'x'";
    let mut expected: Vec<String> = [numbered("boot", 0..5), numbered("out", 0..15)].concat();
    expected.push(traceback.to_string());
    let first = server.wait_for_count("container=app", expected.len());
    assert_same_entries(&messages(&first), &expected);

    // A line half written when the service stops.
    let pending = record("half written at stop\n", "stdout", SystemTime::now());
    let (head, rest) = pending.split_at(pending.len() / 2);
    app.append_raw(head.as_bytes());
    server.wait_polls(2);
    server.stop();
    app.append_raw(rest.as_bytes());
    app.lines("stdout", &numbered("while stopped", 0..5));
    app.stderr("stderr while stopped");
    server.start_again();
    app.lines("stdout", &numbered("after restart", 0..5));
    expected.push("half written at stop".to_string());
    expected.extend(numbered("while stopped", 0..5));
    expected.push("stderr while stopped".to_string());
    expected.extend(numbered("after restart", 0..5));
    let got = server.wait_for_count("container=app", expected.len());
    server.wait_polls(3);
    let got_again = server.all_logs("container=app");
    assert_eq!(
        messages(&got),
        messages(&got_again),
        "entries changed after settling"
    );
    assert_same_entries(&messages(&got_again), &expected);
    assert_stdout_order(&got_again, &expected);

    // Another restart with nothing new changes nothing.
    server.stop();
    server.start_again();
    server.wait_polls(5);
    assert_same_entries(&server.messages("container=app"), &expected);
}

#[test]
fn restart_after_rotation_while_stopped() {
    let mut server = TestServer::start(&[]);
    let c = server.docker.add("rs");
    c.lines("stdout", &numbered("one", 0..5));
    server.expect_messages("container=rs", &numbered("one", 0..5));
    server.stop();
    c.lines("stdout", &numbered("two", 0..5));
    c.rotate();
    c.lines("stdout", &numbered("three", 0..5));
    server.start_again();
    let expected = [
        numbered("one", 0..5),
        numbered("two", 0..5),
        numbered("three", 0..5),
    ]
    .concat();
    server.expect_messages("container=rs", &expected);
}

/// Same multiset of messages: nothing lost, nothing duplicated.
fn assert_same_entries(got: &[String], expected: &[String]) {
    let mut got_sorted = got.to_vec();
    let mut expected_sorted = expected.to_vec();
    got_sorted.sort();
    expected_sorted.sort();
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for m in got {
        *counts.entry(m).or_default() += 1;
    }
    for m in expected {
        *counts.entry(m).or_default() -= 1;
    }
    let diff: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .map(|(m, n)| {
            format!(
                "{m:?}: {}",
                if n > 0 {
                    format!("{n} extra")
                } else {
                    format!("{} missing", -n)
                }
            )
        })
        .collect();
    assert_eq!(
        got_sorted, expected_sorted,
        "differences: {diff:#?}\nall: {got:#?}"
    );
}

/// The stdout entries appear in the order they were written.
fn assert_stdout_order(entries: &[Value], expected: &[String]) {
    let stdout: Vec<String> = entries
        .iter()
        .filter(|e| e["stream"] == "stdout")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let expected_stdout: Vec<String> = expected
        .iter()
        .filter(|m| stdout.contains(m))
        .cloned()
        .collect();
    assert_eq!(stdout, expected_stdout, "stdout order");
}

#[test]
fn containers_matching_a_glob_are_followed_when_they_appear() {
    let server = TestServer::start_prepared(&[("CONTAINERS", "app_*, cache")], |docker| {
        docker
            .add("app_api")
            .lines("stdout", &strings(&["api line 1", "api line 2"]));
        docker
            .add("db")
            .lines("stdout", &strings(&["dbonly secret 1"]));
    });
    server.expect_messages("container=app_api", &strings(&["api line 1", "api line 2"]));
    let web = server.docker.add("app_web");
    web.lines("stdout", &strings(&["web line 1", "web line 2"]));
    let cache = server.docker.add("cache");
    cache.stdout("cache line");
    let other = server.docker.add("cachex");
    other.stdout("dbonly cachex line");
    let db = server.docker.find("db");
    db.stdout("dbonly secret 2");
    server.expect_messages("container=app_web", &strings(&["web line 1", "web line 2"]));
    server.expect_messages("container=cache", &strings(&["cache line"]));
    web.stdout("web line 3");
    server.wait_for_entry("container=app_web", |e| e["message"] == "web line 3");

    let containers = server.json("/api/containers");
    let names: Vec<&str> = containers["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["app_api", "app_web", "cache"], "{containers}");
    for excluded in ["db", "cachex"] {
        let page = server.json(&format!("/api/logs?container={excluded}"));
        assert_eq!(page["total"], 0, "{excluded}: {page}");
    }
    let search = server.json("/api/logs?search=dbonly");
    assert_eq!(search["total"], 0, "{search}");
    let everything = server.all_logs("");
    assert!(
        everything
            .iter()
            .all(|e| ["app_api", "app_web", "cache"].contains(&e["container"].as_str().unwrap())),
        "{everything:#?}"
    );
    let health = server.json("/health");
    assert_eq!(health["containers_watched"], 3, "{health}");
}

#[test]
fn renamed_container_keeps_its_cursor() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("old_name");
    c.lines("stdout", &numbered("before rename", 0..3));
    server.expect_messages("container=old_name", &numbered("before rename", 0..3));
    c.rename("new_name");
    server.wait_watching("new_name");
    c.lines("stdout", &numbered("after rename", 0..3));
    server.expect_messages("container=new_name", &numbered("after rename", 0..3));
    server.expect_messages("container=old_name", &numbered("before rename", 0..3));
}

#[test]
fn max_entries_trims_oldest_and_search_stays_consistent() {
    let server = TestServer::start(&[("MAX_ENTRIES", "50")]);
    let c = server.docker.add("capped");
    let lines: Vec<String> = (0..200)
        .map(|i| {
            let word = if i < 150 { "alphaword" } else { "omegaword" };
            format!("entry{i:03} common {word}")
        })
        .collect();
    c.lines("stdout", &lines);
    let kept: Vec<String> = lines[150..].to_vec();
    wait_for("the history to be trimmed to 50 entries", || {
        let page = server.json("/api/logs?limit=500");
        let got = messages(page["logs"].as_array().unwrap());
        if page["total"] == 50
            && got.len() == 50
            && got.first().map(String::as_str) == Some("entry199 common omegaword")
        {
            Ok(())
        } else {
            Err(format!(
                "total {} with {} entries",
                page["total"],
                got.len()
            ))
        }
    });
    assert_eq!(
        server.messages(""),
        kept,
        "the newest 50 are kept, in order"
    );
    let gone = server.json("/api/logs?search=alphaword");
    assert_eq!(gone["total"], 0, "{gone}");
    assert_eq!(gone["logs"].as_array().unwrap().len(), 0);
    let deleted_line = server.json("/api/logs?search=entry042");
    assert_eq!(deleted_line["total"], 0, "{deleted_line}");
    let found = server.json("/api/logs?search=omegaword&limit=500");
    assert_eq!(found["total"], 50, "{found}");
    let mut found_messages = messages(found["logs"].as_array().unwrap());
    found_messages.reverse();
    assert_eq!(found_messages, kept);
    let common = server.json("/api/logs?search=common&limit=500");
    assert_eq!(common["total"], 50, "{common}");
    let prefix = server.json("/api/logs?search=entry0*");
    assert_eq!(prefix["total"], 0, "entries 000-099 are all gone: {prefix}");

    let stats = server.json("/api/stats");
    assert_eq!(stats["total_logs"], 50, "{stats}");
    assert_eq!(stats["by_container"]["capped"], 50, "{stats}");
    assert_eq!(stats["by_level"]["INFO"], 50, "{stats}");
    let containers = server.json("/api/containers");
    assert_eq!(containers["containers"][0]["log_count"], 50, "{containers}");
    let health = server.json("/health");
    assert_eq!(health["logs_indexed"], 50, "{health}");
    let histogram = server.json("/api/logs/histogram");
    let sum: i64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 50, "{histogram}");

    // Trimming keeps going as new lines arrive.
    c.lines("stdout", &strings(&["entry200 common lateword"]));
    wait_for("the newest line", || {
        let page = server.json("/api/logs?limit=1");
        if page["logs"][0]["message"] == "entry200 common lateword" && page["total"] == 50 {
            Ok(())
        } else {
            Err(page.to_string())
        }
    });
    let omega = server.json("/api/logs?search=omegaword");
    assert_eq!(omega["total"], 49, "{omega}");
}

#[test]
fn missing_log_sources_is_retried() {
    let server = TestServer::start_without_sources(&[]);
    server.wait_polls(3);
    // Said, but not a failure: the service works and retries (README, "/health").
    let health = server.get("/health");
    assert_eq!(health.status, 200);
    let health = health.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["containers_watched"], 0);
    assert_eq!(health["log_sources"]["readable"], false, "{health}");
    assert_eq!(health["log_sources"]["path"], server.setting("LOG_SOURCES"));
    assert!(
        health["log_sources"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("No such file")),
        "{health}"
    );
    server.docker.create_root();
    let c = server.docker.add_with_log(
        "late",
        &record("written before discovery\n", "stdout", SystemTime::now()),
    );
    c.stdout("written after");
    server.expect_messages(
        "container=late",
        &strings(&["written before discovery", "written after"]),
    );
    let health = server.json("/health");
    assert_eq!(health["containers_watched"], 1);
    assert_eq!(health["log_sources"]["readable"], true, "{health}");
    assert!(health["log_sources"].get("error").is_none(), "{health}");
}

#[test]
fn tail_buffer_starts_at_a_line_start_for_the_first_scan_only() {
    let lines = numbered("a line that is about sixty bytes long once encoded", 0..200);
    let server = TestServer::start_prepared(&[("TAIL_BUFFER", "1000")], |docker| {
        docker.add("first").lines("stdout", &lines);
    });
    server.wait_for_entry("container=first", |e| e["message"] == lines[199]);
    server.wait_polls(12); // the last entry closes after 1 s; let a few more polls pass
    let got = server.messages("container=first");
    assert!(
        !got.is_empty() && got.len() < 20,
        "{} entries: {got:#?}",
        got.len()
    );
    let start = lines.len() - got.len();
    assert_eq!(
        got,
        lines[start..].to_vec(),
        "complete lines from a line start to the end"
    );

    // A container appearing later is read from its start.
    let later = server.docker.add("later");
    later.lines("stdout", &lines);
    let all = server.wait_for_count("container=later", 200);
    assert_eq!(messages(&all), lines);
}

#[test]
fn docker_time_keeps_milliseconds_in_utc() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("clock");
    let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_768_903_200_987_654_321);
    c.write_at("stdout", "timed", t);
    let entry = server.wait_for_entry("container=clock", |e| e["message"] == "timed");
    assert_eq!(
        entry["timestamp"],
        "2026-01-20T10:00:00.987Z",
        "{} -> {entry}",
        docker_time(t)
    );
}

#[test]
fn pieces_pending_at_stop_are_joined_after_restart() {
    let mut server = TestServer::start(&[]);
    let c = server.docker.add("pstop");
    c.stdout("first");
    server.expect_messages("container=pstop", &strings(&["first"]));
    let long = format!("split by a restart {}", "s".repeat(2 * PIECE + 50));
    let records = crate::support::line_records(&long, "stdout", SystemTime::now());
    let pieces: Vec<&str> = records.split_inclusive('\n').collect();
    assert_eq!(pieces.len(), 3);
    c.append_raw(format!("{}{}", pieces[0], pieces[1]).as_bytes());
    server.wait_polls(3);
    server.stop(); // Docker has not written the last piece yet
    c.append_raw(pieces[2].as_bytes());
    server.start_again();
    c.stdout("after");
    server.wait_for_entry("container=pstop", |e| e["message"] == "after");
    let all = server.messages("container=pstop");
    let summary: Vec<String> = all
        .iter()
        .map(|m| format!("{:?}… ({} bytes)", &m[..m.len().min(24)], m.len()))
        .collect();
    assert!(
        all == vec!["first".to_string(), long.clone(), "after".to_string()],
        "one line must be one entry; want [first, the {}-byte line, after], got {summary:#?}",
        long.len()
    );
}

#[test]
fn age_cap_keeps_young_entries_of_other_containers() {
    let server = TestServer::start(&[("MAX_AGE_DAYS", "1")]);
    let now = SystemTime::now();
    let minute = Duration::from_secs(60);
    let young = server.docker.add("young");
    for i in 0..5 {
        young.write_at("stdout", &format!("young {i}"), now - 10 * minute);
    }
    server.expect_messages("container=young", &numbered("young", 0..5));
    // A container that appears later is read from its start: its history is older.
    let mut history = String::new();
    for i in 0..3 {
        history.push_str(&record(
            &format!("ancient {i}\n"),
            "stdout",
            now - Duration::from_secs(5 * 86_400),
        ));
    }
    for i in 0..2 {
        history.push_str(&record(
            &format!("recent {i}\n"),
            "stdout",
            now - 20 * minute,
        ));
    }
    server.docker.add_with_log("late", &history);
    server.wait_for_count("container=late", 2);
    wait_for("entries older than MAX_AGE_DAYS to be deleted", || {
        let ancient = server.json("/api/logs?search=ancient");
        if ancient["total"] == 0 {
            Ok(())
        } else {
            Err(ancient.to_string())
        }
    });
    server.wait_polls(12); // one more cap check
    assert_eq!(
        server.messages("container=young"),
        numbered("young", 0..5),
        "entries 10 minutes old must survive MAX_AGE_DAYS=1"
    );
    assert_eq!(server.messages("container=late"), numbered("recent", 0..2));
}

#[test]
fn ids_are_not_reused_after_the_history_empties() {
    let server = TestServer::start(&[("MAX_AGE_DAYS", "1")]);
    let c = server.docker.add("aged");
    server.wait_watching("aged");
    let mut sse = crate::support::Sse::tail(server.addr, "", &[]);
    let old = SystemTime::now() - Duration::from_secs(3 * 86_400);
    let old_lines: String = (0..3)
        .map(|i| record(&format!("old {i}\n"), "stdout", old))
        .collect();
    c.append_raw(old_lines.as_bytes());
    server.wait_polls(25); // the last one closes after 1 s; caps are checked every 10 polls
    wait_for("every entry to age out", || {
        let stats = server.json("/api/stats");
        if stats["total_logs"] == 0 {
            Ok(())
        } else {
            Err(stats.to_string())
        }
    });
    c.stdout("fresh");
    let fresh = server.wait_for_entry("container=aged", |e| e["message"] == "fresh");
    let mut events = Vec::new();
    while let Some(event) = sse.next_log() {
        let done = event.message() == "fresh";
        events.push(event);
        if done {
            break;
        }
    }
    let seen: Vec<(String, Option<i64>)> = events.iter().map(|e| (e.message(), e.id)).collect();
    assert_eq!(
        events.iter().map(|e| e.message()).collect::<Vec<_>>(),
        strings(&["old 0", "old 1", "old 2", "fresh"]),
        "a live tail must see every entry (ids seen: {seen:?}; stored fresh entry: {fresh})"
    );
    let ids: Vec<i64> = events.iter().filter_map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {seen:?}");
    // And a live tail reconnecting with its last old id gets the new entry.
    let header = ids[2].to_string();
    let mut again = crate::support::Sse::tail(server.addr, "", &[("Last-Event-ID", &header)]);
    assert_eq!(again.next_log().map(|e| e.message()), Some("fresh".into()));
}

#[test]
fn crash_restart_from_the_saved_cursor_neither_loses_nor_duplicates() {
    // A crash is simulated by a snapshot of the database taken while a
    // traceback on stderr is still being assembled and stdout lines after its start are
    // already stored; a new server then starts on the copy. The cursor must resume at the
    // traceback's start without storing those stdout lines again.
    let mut first = TestServer::start(&[]);
    let c = first.docker.add("crash");
    first.wait_watching("crash");
    c.stdout("a1");
    c.stderr("Traceback (most recent call last):");
    c.lines("stdout", &strings(&["a2", "a3", "a4"]));
    let mut frames = 0;
    let mut keep_open = || {
        frames += 1;
        c.stderr(&format!("  File \"x.py\", line {frames}, in f"));
    };
    // Each try adds a frame, so the traceback never idles for the second that would close it.
    wait_for("a1..a4 stored while the traceback stays open", || {
        keep_open();
        let got = first.messages("container=crash");
        if got == strings(&["a1", "a2", "a3", "a4"]) {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });
    // A crash leaves the last committed transaction on disk; `VACUUM INTO` copies exactly
    // that, consistently, while the service goes on writing.
    let db = std::path::PathBuf::from(first.setting("DATABASE_PATH"));
    let snapshot = tempfile::tempdir().unwrap();
    let copy = snapshot.path().join("logs.db");
    keep_open();
    rusqlite::Connection::open(&db)
        .and_then(|conn| conn.execute("VACUUM INTO ?1", [copy.display().to_string()]))
        .expect("a snapshot of the database");
    keep_open();
    first.stop(); // the original database is not used any more
    let second = TestServer::start(&[
        ("DATABASE_PATH", &copy.display().to_string()),
        ("LOG_SOURCES", &first.docker.root.display().to_string()),
    ]);
    c.stderr("ValueError: end");
    c.stdout("a5");
    let traceback = std::iter::once("Traceback (most recent call last):".to_string())
        .chain((1..=frames).map(|n| format!("  File \"x.py\", line {n}, in f")))
        .chain(std::iter::once("ValueError: end".to_string()))
        .collect::<Vec<_>>()
        .join("\n");
    let expected: Vec<String> =
        [strings(&["a1", "a2", "a3", "a4", "a5"]), vec![traceback]].concat();
    second.wait_for_entry("container=crash", |e| e["message"] == "a5");
    let entries = second.wait_for_count("container=crash", expected.len());
    second.wait_polls(3);
    let got = second.messages("container=crash");
    assert_eq!(got, messages(&entries), "changed after settling");
    assert_same_entries(&got, &expected);
    assert_stdout_order(&second.all_logs("container=crash"), &expected);
}

#[test]
fn the_search_index_is_compacted_after_many_deletions_and_stays_consistent() {
    let server = TestServer::start(&[("MAX_ENTRIES", "100")]);
    let c = server.docker.add("busy");
    let lines: Vec<String> = (0..12_000)
        .map(|i| {
            let word = if i < 11_900 { "oldword" } else { "newword" };
            format!("line{i:05} {word}")
        })
        .collect();
    c.lines("stdout", &lines);
    // Every line stored (the last one closes after the idle second) and trimmed to 100.
    wait_for("the newest 100 lines, and no older one", || {
        let kept = server.json("/api/logs?search=newword&limit=500");
        let gone = server.json("/api/logs?search=oldword");
        if kept["total"] == 100 && gone["total"] == 0 {
            Ok(())
        } else {
            Err(format!(
                "newword {}, oldword {}",
                kept["total"], gone["total"]
            ))
        }
    });
    wait_for("a compaction after more than 10,000 deletions", || {
        let health = server.json("/health");
        if health["search_index_compactions"].as_u64() >= Some(1) {
            Ok(())
        } else {
            Err(health.to_string())
        }
    });
    // Still consistent after the compaction.
    let gone = server.json("/api/logs?search=oldword");
    assert_eq!(gone["total"], 0, "{gone}");
    let kept = server.json("/api/logs?search=newword&limit=500");
    assert_eq!(kept["total"], 100, "{kept}");
    let newest = server.json("/api/logs?search=line11999");
    assert_eq!(
        newest["logs"][0]["message"], "line11999 newword",
        "{newest}"
    );
}
