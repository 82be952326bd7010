//! `GET /api/logs/tail`: Server-Sent Events, replay, filters, stream limits, and that a tail
//! never holds a request worker.

use std::time::{Duration, Instant};

use crate::support::{enc, wait_for, Event, Sse, TestServer, DEADLINE, KEY};

fn messages(events: &[Event]) -> Vec<String> {
    events.iter().map(Event::message).collect()
}

fn event_ids(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.id.expect("every log event has an id"))
        .collect()
}

#[test]
fn live_lines_arrive_and_a_reconnect_replays_what_was_missed() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("live");
    c.stdout("old line");
    server.expect_messages("container=live", &["old line".to_string()]);

    let mut sse = Sse::tail(server.addr, "", &[]);
    assert!(
        sse.header("content-type")
            .unwrap_or("")
            .starts_with("text/event-stream"),
        "{:?}",
        sse.headers
    );
    assert_eq!(sse.header("cache-control"), Some("no-cache"));
    c.stdout("live one");
    let first = sse.next_log().expect("a live event within the deadline");
    assert_eq!(first.event, "log");
    assert_eq!(
        first.message(),
        "live one",
        "only lines read after connecting"
    );
    let data = first.json();
    // The event id is an opaque cursor (the ingest order), not the entry id.
    assert!(first.id.is_some(), "every log event has an id");
    assert!(data["id"].as_i64().is_some(), "{data}");
    assert_eq!(data["container"], "live");
    assert_eq!(data["stream"], "stdout");
    assert_eq!(data["level"], "INFO");
    assert!(data["timestamp"].as_str().unwrap().ends_with('Z'), "{data}");
    c.lines(
        "stdout",
        &["live two".to_string(), "live three".to_string()],
    );
    let next = sse.logs(2);
    assert_eq!(messages(&next), vec!["live two", "live three"]);
    let first_id = first.id.unwrap();
    drop(sse);

    // Missed while disconnected.
    c.lines(
        "stdout",
        &["missed four".to_string(), "missed five".to_string()],
    );
    server.wait_for_count("container=live", 6);
    let expected_replay = vec!["live two", "live three", "missed four", "missed five"];
    let id_header = first_id.to_string();
    let mut again = Sse::tail(server.addr, "", &[("Last-Event-ID", &id_header)]);
    let replay = again.logs(4);
    assert_eq!(messages(&replay), expected_replay);
    let replay_ids = event_ids(&replay);
    assert!(
        replay_ids.windows(2).all(|w| w[0] < w[1]) && replay_ids[0] > first_id,
        "{replay_ids:?}"
    );
    c.stdout("after reconnect");
    let live = again.next_log().expect("a live event after the replay");
    assert_eq!(live.message(), "after reconnect");
    assert!(live.id.unwrap() > *replay_ids.last().unwrap());

    // `?since_id=` is the same as the header; the header wins over it.
    let mut by_param = Sse::tail(server.addr, &format!("since_id={first_id}"), &[]);
    assert_eq!(
        messages(&by_param.logs(5)),
        [expected_replay.clone(), vec!["after reconnect"]].concat()
    );
    let third_id = replay_ids[1].to_string();
    let mut both = Sse::tail(server.addr, "since_id=0", &[("Last-Event-ID", &third_id)]);
    assert_eq!(
        messages(&both.logs(3)),
        vec!["missed four", "missed five", "after reconnect"]
    );
    // An earlier id replays everything after it, oldest first.
    let mut from_start = Sse::tail(server.addr, "since_id=0", &[]);
    assert_eq!(
        messages(&from_start.logs(7)),
        vec![
            "old line",
            "live one",
            "live two",
            "live three",
            "missed four",
            "missed five",
            "after reconnect"
        ]
    );
}

#[test]
fn tail_filters_apply_live_and_in_the_replay() {
    let server = TestServer::start(&[]);
    let a = server.docker.add("ta");
    let b = server.docker.add("tb");
    server.wait_watching("ta");
    server.wait_watching("tb");
    let query = "container=ta&level=%3E%3Dwarning&search=DISK";
    let mut sse = Sse::tail(server.addr, query, &[]);
    b.stderr("ERROR: disk full on tb");
    a.stdout("INFO: disk fine");
    a.stdout("WARNING: cpu hot");
    a.stdout("ERROR: Disk full");
    a.stdout("INFO: still fine");
    a.stdout("CRITICAL: the DISK is gone");
    let got = sse.logs(2);
    assert_eq!(
        messages(&got),
        vec!["ERROR: Disk full", "CRITICAL: the DISK is gone"]
    );
    // Everything written before this sentinel has been read by now: nothing else came.
    a.stdout("WARNING: disk sentinel");
    let sentinel = sse.next_log().expect("the sentinel");
    assert_eq!(sentinel.message(), "WARNING: disk sentinel");
    server.wait_for_count("container=tb", 1);

    // The replay applies the same filters.
    let mut replay = Sse::tail(server.addr, &format!("{query}&since_id=0"), &[]);
    assert_eq!(
        messages(&replay.logs(3)),
        vec![
            "ERROR: Disk full",
            "CRITICAL: the DISK is gone",
            "WARNING: disk sentinel"
        ]
    );
    // An exact level and several containers.
    let mut exact = Sse::tail(
        server.addr,
        "container=ta&container=tb&level=ERROR&since_id=0",
        &[],
    );
    // (Which of the two is stored first depends on when each entry closed: the stderr line
    // of `tb` closes only after 1 s without a next stderr line.)
    let mut got = messages(&exact.logs(2));
    got.sort();
    assert_eq!(got, vec!["ERROR: Disk full", "ERROR: disk full on tb"]);
    let bad = shared::testing::get(
        server.addr,
        &format!("/api/logs/tail?api_key={KEY}&level=loud"),
        None,
    )
    .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
}

#[test]
fn tail_needs_the_key() {
    let server = TestServer::start(&[]);
    let response = shared::testing::get(server.addr, "/api/logs/tail", None).unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(response.json()["detail"], "Invalid API key");
    let response = shared::testing::get(server.addr, "/api/logs/tail?api_key=wrong", None).unwrap();
    assert_eq!(response.status, 401);
    // The header works as well as the query parameter.
    let mut sse = Sse::open(server.addr, "/api/logs/tail", &[("X-API-Key", KEY)]).unwrap();
    assert_eq!(sse.status, 200);
    let c = server.docker.add("keyed");
    server.wait_watching("keyed");
    c.stdout("with header");
    assert_eq!(sse.next_log().unwrap().message(), "with header");
}

#[test]
fn seventeenth_tail_is_refused_until_one_closes() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("many");
    server.wait_watching("many");
    let mut tails: Vec<Sse> = (0..16).map(|_| Sse::tail(server.addr, "", &[])).collect();
    let mut refused =
        Sse::open(server.addr, &format!("/api/logs/tail?api_key={KEY}"), &[]).unwrap();
    assert_eq!(refused.status, 503);
    assert!(refused
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_str(&refused.body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"detail": "Too many live tail connections"})
    );

    // All 16 still work.
    c.stdout("to all sixteen");
    for tail in &mut tails {
        assert_eq!(tail.next_log().unwrap().message(), "to all sixteen");
    }

    // Close one, with no traffic at all: the stream notices the closed connection by itself
    // (it checks every half second), not only at its next write or heartbeat.
    drop(tails.pop());
    let started = Instant::now();
    let mut accepted = wait_for("a tail slot to free up after closing one", || {
        let sse = Sse::open(server.addr, &format!("/api/logs/tail?api_key={KEY}"), &[])
            .map_err(|e| e.to_string())?;
        if sse.status == 200 {
            Ok(sse)
        } else {
            Err(format!("status {}", sse.status))
        }
    });
    eprintln!(
        "a new tail was accepted {:?} after closing one",
        started.elapsed()
    );
    c.stdout("to the new one");
    let event = wait_for("the line on the new tail", || {
        accepted
            .next_log()
            .filter(|e| e.message() == "to the new one")
            .ok_or_else(|| "not yet".to_string())
    });
    assert_eq!(event.event, "log");
    // 16 open again: the next one is refused.
    let again = Sse::open(server.addr, &format!("/api/logs/tail?api_key={KEY}"), &[]).unwrap();
    assert_eq!(again.status, 503);
    drop(tails);
}

/// Opens a connection that sends nothing and waits until the server closes it (after its
/// `IDLE_TIMEOUT`).
fn wait_for_idle_close(addr: std::net::SocketAddr) {
    use std::io::Read;
    let mut idle = std::net::TcpStream::connect(addr).expect("connect");
    idle.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    wait_for("the server to close an idle connection", || {
        let mut buf = [0u8; 512];
        match idle.read(&mut buf) {
            Ok(0) => Ok(()),
            // A `408` before closing is fine too; the close follows.
            Ok(_) => Err("got a response; waiting for the close".to_string()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err("still open".to_string())
            }
            Err(_) => Ok(()),
        }
    });
}

#[test]
fn tail_outlives_twice_the_idle_timeout() {
    let server = TestServer::start(&[("IDLE_TIMEOUT", "1")]);
    let c = server.docker.add("quiet");
    server.wait_watching("quiet");
    let mut sse = Sse::tail(server.addr, "", &[]);
    // Twice the idle timeout, observed rather than slept: the server closes an idle
    // connection opened after the tail, then another one opened after that.
    wait_for_idle_close(server.addr);
    wait_for_idle_close(server.addr);
    c.stdout("after a long silence");
    let event = sse.next_log().expect("the line still arrives");
    assert_eq!(event.message(), "after a long silence");
    wait_for_idle_close(server.addr);
    wait_for_idle_close(server.addr);
    c.stdout("and again");
    assert_eq!(sse.next_log().expect("still open").message(), "and again");
}

#[test]
fn tails_do_not_occupy_request_workers() {
    let server = TestServer::start(&[("WORKERS", "1")]);
    let c = server.docker.add("busy");
    c.stdout("a line");
    server.expect_messages("container=busy", &["a line".to_string()]);
    let mut tails = [
        Sse::tail(server.addr, "", &[]),
        Sse::tail(server.addr, "since_id=0", &[]),
        Sse::tail(server.addr, "", &[("Last-Event-ID", "0")]),
    ];
    let started = Instant::now();
    let logs = server.json("/api/logs");
    assert_eq!(logs["total"], 1);
    let health = server.get_without_key("/health");
    assert_eq!(health.status, 200);
    assert!(
        started.elapsed() < DEADLINE,
        "requests waited {:?}",
        started.elapsed()
    );
    // The tails still stream, and requests still answer meanwhile.
    c.stdout("streamed");
    let [live, replayed, by_header] = &mut tails;
    assert_eq!(messages(&live.logs(1)), vec!["streamed"]);
    assert_eq!(messages(&replayed.logs(2)), vec!["a line", "streamed"]);
    assert_eq!(messages(&by_header.logs(2)), vec!["a line", "streamed"]);
    server.wait_for_count("container=busy", 2);
    assert_eq!(server.json("/api/stats")["total_logs"], 2);
}

#[test]
fn a_long_replay_joins_the_live_stream_without_a_gap() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("backlog");
    let lines: Vec<String> = (0..1200).map(|i| format!("backlog {i:04}")).collect();
    c.lines("stdout", &lines);
    server.wait_for_count("container=backlog", 1200);
    let mut sse = Sse::tail(server.addr, "since_id=0", &[]);
    let mut got = Vec::new();
    c.stdout("live after the replay");
    while got.last().map(Event::message).as_deref() != Some("live after the replay") {
        match sse.next_log() {
            Some(event) => got.push(event),
            None => panic!("the stream stopped after {} events", got.len()),
        }
    }
    let ids = event_ids(&got);
    let gaps: Vec<(i64, i64)> = ids
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(
        gaps.is_empty(),
        "{} events replayed then live; entries silently skipped between ids {gaps:?}",
        got.len()
    );
}

#[test]
fn live_tail_and_its_replay_cut_long_messages() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("longtail");
    server.wait_watching("longtail");
    let long = format!("long {}", "ü".repeat(5000));
    let mut live = Sse::tail(server.addr, "", &[]);
    c.stdout(&long);
    c.stdout("after");
    let events = live.logs(2);
    let replayed = Sse::tail(server.addr, "since_id=0", &[]).logs(2);
    for (how, event) in [("live", &events[0]), ("replayed", &replayed[0])] {
        let data = event.json();
        let shown = data["message"].as_str().expect("a message");
        assert!(shown.len() <= 2048, "{how}: {} bytes", shown.len());
        assert!(long.starts_with(shown), "{how}: the start of the message");
        assert_eq!(data["truncated"], true, "{how}");
        assert_eq!(data["message_bytes"], long.len(), "{how}");
    }
    for (how, event) in [("live", &events[1]), ("replayed", &replayed[1])] {
        let data = event.json();
        assert_eq!(data["message"], "after", "{how}");
        assert!(data.get("truncated").is_none(), "{how}: {data}");
    }
}

/// The messages of `events` up to (without) `last`, which must arrive.
fn messages_until(sse: &mut Sse, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        match sse.next_log() {
            Some(event) if event.message() == last => return got,
            Some(event) => got.push(event.message()),
            None => panic!("{last:?} did not arrive; got {got:?}"),
        }
    }
}

#[test]
fn tail_filter_and_search_agree_on_case_and_accents() {
    let server = TestServer::start(&[]);
    let c = server.docker.add("accents");
    server.wait_watching("accents");
    let query = "Échec";
    let filter = format!("container=accents&search={}", enc(query));
    let mut live = Sse::tail(server.addr, &filter, &[]);
    let lines = crate::support::strings(&[
        "Échec du paiement",
        "échec partiel",
        "ECHEC total",
        "echec simple",
        "e\u{301}chec décomposé",
        "succès",
        "Paiement réussi",
    ]);
    c.lines("stdout", &lines);
    server.wait_for_count("container=accents", lines.len());
    // A matching line stored after all of them: whatever the tails send before it is all
    // they will send of the lines above.
    let sentinel = "échec sentinel";
    c.stdout(sentinel);
    server.wait_for_entry("container=accents", |e| e["message"] == sentinel);

    let mut searched = server.messages(&filter);
    searched.retain(|m| m != sentinel);
    let mut streamed = messages_until(&mut live, sentinel);
    let mut replay = Sse::tail(server.addr, &format!("{filter}&since_id=0"), &[]);
    let mut replayed = messages_until(&mut replay, sentinel);
    for list in [&mut searched, &mut streamed, &mut replayed] {
        list.sort();
    }
    let mut expected = lines[..5].to_vec();
    expected.sort();
    assert_eq!(searched, expected, "search={query}");
    assert_eq!(streamed, expected, "live tail search={query}");
    assert_eq!(replayed, expected, "replayed tail search={query}");
}
