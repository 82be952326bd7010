//! Logs read as time: `/api/logs` is newest first by timestamp (ties by id) also for entries
//! stored late — a traceback closed by the idle timer after later lines, a container found
//! late with an older backlog — `before_id` pages in that order, and the live tail (which goes
//! in ingest order, by an opaque cursor) still replays exactly what a client missed.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::support::*;

fn at(base: SystemTime, seconds: i64) -> SystemTime {
    if seconds >= 0 {
        base + Duration::from_secs(seconds as u64)
    } else {
        base - Duration::from_secs(seconds.unsigned_abs())
    }
}

/// Every entry of `query`, newest first, `per_page` at a time through `before_id`.
fn paged(server: &TestServer, query: &str, per_page: usize) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut before = String::new();
    loop {
        let page = server.json(&format!("/api/logs?limit={per_page}&{query}{before}"));
        let logs = page["logs"].as_array().cloned().unwrap_or_default();
        let Some(last) = logs.last().and_then(|e| e["id"].as_i64()) else {
            break;
        };
        before = format!("&before_id={last}");
        let full = logs.len() == per_page;
        all.extend(logs);
        if !full {
            break;
        }
    }
    all
}

/// Newest first by timestamp, ties by id (both descending).
fn assert_time_order(entries: &[Value]) {
    for pair in entries.windows(2) {
        let key = |e: &Value| {
            (
                e["timestamp"].as_str().unwrap_or("").to_string(),
                e["id"].as_i64(),
            )
        };
        assert!(key(&pair[0]) > key(&pair[1]), "not newest first: {pair:#?}");
    }
}

#[test]
fn a_traceback_closed_by_the_idle_timer_lands_before_the_later_lines() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("app");
    let mut tail = Sse::tail(server.addr, "container=app", &[]);
    let t0 = SystemTime::now() - Duration::from_secs(60);
    // One write, read in one poll: the two first stdout lines close at once (each by the
    // next one), the traceback and "after 3" only when the idle timer closes them, a
    // second later, so the traceback is stored after lines written after it.
    let mut records = String::new();
    records.push_str(&record(
        "Traceback (most recent call last):\n",
        "stderr",
        t0,
    ));
    records.push_str(&record(
        "  File \"/app/jobs.py\", line 7, in run\n",
        "stderr",
        t0,
    ));
    records.push_str(&record("KeyError: 'customer_id'\n", "stderr", t0));
    for (i, text) in ["after 1", "after 2", "after 3"].iter().enumerate() {
        records.push_str(&record(
            &format!("{text}\n"),
            "stdout",
            at(t0, i as i64 + 1),
        ));
    }
    c.append_raw(records.as_bytes());

    let traceback = "Traceback (most recent call last):\n  File \"/app/jobs.py\", line 7, in run\nKeyError: 'customer_id'";
    let expected = strings(&[traceback, "after 1", "after 2", "after 3"]);
    let entries = server.expect_messages("container=app", &expected);
    let mut newest_first = entries.clone();
    newest_first.reverse();
    assert_time_order(&newest_first);
    assert_eq!(paged(&server, "container=app", 1), newest_first);

    // The live tail sent them as they were stored: the traceback after "after 2".
    let live = tail.logs(4);
    assert_eq!(
        live.iter().map(Event::message).collect::<Vec<_>>(),
        strings(&["after 1", "after 2", traceback, "after 3"]),
        "ingest order"
    );
    let cursors: Vec<i64> = live.iter().map(|e| e.id.expect("an event id")).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    drop(tail);

    // A client that saw "after 2" missed the traceback, although its entry id is smaller.
    let seen = cursors[1].to_string();
    let mut again = Sse::tail(server.addr, "container=app", &[("Last-Event-ID", &seen)]);
    assert_eq!(
        again.logs(2).iter().map(Event::message).collect::<Vec<_>>(),
        strings(&[traceback, "after 3"])
    );
    c.stdout("after reconnect");
    assert_eq!(
        again
            .next_log()
            .expect("a live event after the replay")
            .message(),
        "after reconnect"
    );
}

#[test]
fn a_container_found_late_with_an_hour_of_older_backlog_lands_in_time_order() {
    let server = TestServer::start(&[]);
    let now = SystemTime::now();
    let web = server.docker.add("web");
    for minutes in [50, 20, 1] {
        web.write_at(
            "stdout",
            &format!("web {minutes} min ago"),
            at(now, -60 * minutes),
        );
    }
    server.wait_for_count("container=web", 3);

    // Found after those were stored, read from its start: an hour of older lines.
    let mut backlog = String::new();
    for minutes in [60, 40, 10] {
        backlog.push_str(&record(
            &format!("late {minutes} min ago\n"),
            "stdout",
            at(now, -60 * minutes),
        ));
    }
    server.docker.add_with_log("late", &backlog);
    let expected = strings(&[
        "late 60 min ago",
        "web 50 min ago",
        "late 40 min ago",
        "web 20 min ago",
        "late 10 min ago",
        "web 1 min ago",
    ]);
    let entries = server.expect_messages("", &expected);
    let mut newest_first = entries.clone();
    newest_first.reverse();
    assert_time_order(&newest_first);

    // before_id pages in the same order, whatever the page size and filters.
    for per_page in [1, 2, 4] {
        assert_eq!(
            paged(&server, "", per_page),
            newest_first,
            "pages of {per_page}"
        );
    }
    let both = paged(&server, "container=web&container=late", 2);
    assert_eq!(both, newest_first);
    let searched = paged(&server, "search=ago", 2);
    assert_eq!(searched, newest_first);

    // A time range is exact, for the late entries too.
    let since = api_time(at(now, -45 * 60));
    let until = api_time(at(now, -15 * 60));
    let window = server.json(&format!(
        "/api/logs?since={}&until={}",
        enc(&since),
        enc(&until)
    ));
    assert_eq!(
        messages(window["logs"].as_array().unwrap()),
        strings(&["web 20 min ago", "late 40 min ago"]),
        "{window}"
    );
    assert_eq!(window["total"], 2, "{window}");
}
