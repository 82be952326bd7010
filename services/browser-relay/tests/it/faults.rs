//! Delivery under faults: an upstream down for a while, a relay killed with a backlog, an
//! upstream failing then recovering, an upstream that never answers.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;
use shared::testing::wait_for;

use crate::support::*;

/// Every accepted error arrives once, in the order it was accepted.
fn check_arrived_once_in_order(errors: std::net::SocketAddr, messages: &[String]) {
    let groups = wait_for_groups(errors, messages.len());
    let got: Vec<(String, i64)> = groups
        .iter()
        .map(|g| {
            (
                g["message"].as_str().unwrap_or_default().to_string(),
                g["count"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let expected: Vec<(String, i64)> = messages.iter().map(|m| (m.clone(), 1)).collect();
    assert_eq!(got, expected, "each error once, in order");
}

#[test]
fn an_error_tracker_down_for_30_s_gets_every_accepted_error_in_order_once_it_is_back() {
    let mut stack = Stack::start(&[]);
    stack.stop_errors();
    let mut messages = Vec::new();
    // Browsers keep posting for 30 s while it is down (one error a second).
    for i in 0..30 {
        let message = format!("outage error {i:02}");
        assert_eq!(
            post_browser(
                stack.relay(),
                "/api/browser/errors",
                &browser_error(&message)
            )
            .status,
            202
        );
        messages.push(message);
        std::thread::sleep(Duration::from_secs(1));
    }
    let health = relay_health(stack.relay());
    assert_eq!(
        health["upstreams"]["error_tracker"],
        json!("down"),
        "{health}"
    );
    assert!(
        health["queue_depth"].as_u64().unwrap_or(0) >= 29,
        "{health}"
    );
    stack.restart_errors();
    check_arrived_once_in_order(stack.errors_addr, &messages);
    wait_for("an empty outbox", Duration::from_secs(10), || {
        let health = relay_health(stack.relay());
        (health["queue_depth"] == json!(0) && health["forwarded"] == json!(30))
            .then_some(())
            .ok_or(health.to_string())
    });
}

#[test]
fn a_relay_killed_with_a_full_backlog_delivers_everything_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = start_metrics_collector(dir.path());
    // First the error-tracker's address points nowhere: the backlog builds up.
    let nowhere = closed_port();
    let env = relay_env(dir.path(), nowhere, metrics.addr(), &[]);
    let relay = spawn_relay(&env, dir.path().join("relay-1.log"));
    let messages: Vec<String> = (0..50).map(|i| format!("backlog error {i:02}")).collect();
    for message in &messages {
        assert_eq!(
            post_browser(relay.addr(), "/api/browser/errors", &browser_error(message)).status,
            202
        );
    }
    assert_eq!(relay_health(relay.addr())["queue_depth"], json!(50));
    relay.signal(libc::SIGKILL);
    drop(relay);
    let errors = start_error_tracker(dir.path(), 0);
    let env = relay_env(dir.path(), errors.addr(), metrics.addr(), &[]);
    let relay = spawn_relay(&env, dir.path().join("relay-2.log"));
    check_arrived_once_in_order(errors.addr(), &messages);
    drop(relay);
}

#[test]
fn a_collector_failing_then_recovering_gets_each_batch_once() {
    let stack = Stack::start(&[]);
    // Hold the collector's database: its writes fail (500) until released.
    let lock = rusqlite::Connection::open(stack.db_path("metrics.db")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let body = json!({"metrics": [{"name": "clicks", "type": "counter", "value": 1}, {"name": "clicks", "type": "counter", "value": 2}]});
    assert_eq!(
        post_browser(stack.relay(), "/api/browser/metrics", &body).status,
        202
    );
    wait_for(
        "the collector's 500 to be seen",
        Duration::from_secs(30),
        || {
            let health = relay_health(stack.relay());
            (health["upstreams"]["metrics_collector"] == json!("down"))
                .then_some(())
                .ok_or(health.to_string())
        },
    );
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    let answer = wait_for(
        "the points in the collector",
        Duration::from_secs(60),
        || {
            let path = "/api/metrics?name=clicks&period=1h";
            match get_json(stack.metrics.addr(), path, METRICS_KEY) {
                Some(a) if a["data"].as_array().is_some_and(|d| !d.is_empty()) => Ok(a),
                other => Err(format!("{other:?}")),
            }
        },
    );
    assert_eq!(
        (
            answer["data"][0]["count"].clone(),
            answer["data"][0]["sum"].clone()
        ),
        (json!(2), json!(3.0))
    );
    let health = relay_health(stack.relay());
    assert_eq!(
        (health["forwarded"].clone(), health["queue_depth"].clone()),
        (json!(1), json!(0)),
        "{health}"
    );
}

#[test]
fn an_upstream_that_never_answers_never_delays_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = start_metrics_collector(dir.path());
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let env = relay_env(
        dir.path(),
        silent.local_addr().unwrap(),
        metrics.addr(),
        &[("UPSTREAM_TIMEOUT", "120")],
    );
    let relay = start_relay(&env);
    // The test client gives up after 10 s: a 202 that waited for the upstream never comes.
    for i in 0..20 {
        let answer = post_browser(
            relay.addr(),
            "/api/browser/errors",
            &browser_error(&format!("slow {i}")),
        );
        assert_eq!(answer.status, 202);
    }
    assert_eq!(
        relay_health(relay.addr())["queue_depth"]
            .as_u64()
            .map(|d| d >= 19),
        Some(true)
    );
    relay.stop();
    drop(silent);
}

#[test]
fn a_full_outbox_answers_503_and_counts_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = start_metrics_collector(dir.path());
    let nowhere = closed_port();
    let env = relay_env(
        dir.path(),
        nowhere,
        metrics.addr(),
        &[("FORWARD_QUEUE", "3")],
    );
    let relay = start_relay(&env);
    let statuses: Vec<u16> = (0..5)
        .map(|i| {
            post_browser(
                relay.addr(),
                "/api/browser/errors",
                &browser_error(&format!("full {i}")),
            )
            .status
        })
        .collect();
    assert_eq!(statuses, [202, 202, 202, 503, 503]);
    let full = post_browser(
        relay.addr(),
        "/api/browser/errors",
        &browser_error("full 5"),
    );
    assert!(
        full.header("retry-after").is_some(),
        "a 503 says when to retry"
    );
    let health = relay_health(relay.addr());
    assert_eq!(
        (health["queue_depth"].clone(), health["dropped"].clone()),
        (json!(3), json!(3)),
        "{health}"
    );
    relay.stop();
}

#[test]
fn a_dead_forwarder_turns_health_503_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = relay_env(
        dir.path(),
        closed_port(),
        closed_port(),
        &[("MONLIGHT_FAULT", "forward")],
    );
    let relay = spawn_relay(&env, dir.path().join("relay.log"));
    relay.expect_stopped_threads(&["forward-errors", "forward-metrics"]);
}
