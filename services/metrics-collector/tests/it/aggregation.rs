//! The aggregation thread, driven by the test's clock: every complete minute rolled up once
//! at any interval and across a restart, late points re-rolling their minute and hour, clock
//! jumps, and the retention tiers.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use shared::time::format_ms;

use crate::support::{counts, point, TestServer, HOUR, MINUTE, T0};

/// Sends two histogram points at `at_ms` (values from `i`) and records them in `sent`.
fn send_pair(server: &TestServer, at_ms: i64, i: i64, sent: &mut BTreeMap<i64, i64>) {
    let labels = json!({"route": "/checkout"});
    server.send(&json!([
        point(
            "latency_ms",
            "histogram",
            (i % 97) as f64,
            at_ms,
            labels.clone()
        ),
        point(
            "latency_ms",
            "histogram",
            (i % 89) as f64 + 0.5,
            at_ms,
            labels
        ),
    ]));
    *sent.entry(at_ms.div_euclid(MINUTE) * MINUTE).or_default() += 2;
}

/// What the minute and hour queries over `[from, to)` must say about `sent`.
fn check_buckets(server: &TestServer, sent: &BTreeMap<i64, i64>, from_ms: i64, to_ms: i64) {
    let range = format!("from={}&to={}", format_ms(from_ms), format_ms(to_ms));
    let minutes = server.series("latency_ms", &format!("{range}&resolution=minute"));
    let expected: Vec<(String, i64)> = sent
        .range(from_ms..to_ms)
        .map(|(&at, &n)| (format_ms(at), n))
        .collect();
    assert_eq!(counts(&minutes["data"]), expected, "minute buckets");
    let hours = server.series("latency_ms", &format!("{range}&resolution=hour"));
    let mut per_hour: BTreeMap<i64, i64> = BTreeMap::new();
    for (&at, &n) in sent.range(from_ms.div_euclid(HOUR) * HOUR..to_ms) {
        *per_hour.entry(at.div_euclid(HOUR) * HOUR).or_default() += n;
    }
    let expected: Vec<(String, i64)> = per_hour
        .iter()
        .map(|(&at, &n)| (format_ms(at), n))
        .collect();
    assert_eq!(counts(&hours["data"]), expected, "hour buckets");
}

/// Points arrive as time passes, the aggregation runs every 10 s or every 120 s, the service
/// restarts halfway: afterwards every minute and every hour holds exactly the points sent —
/// none skipped, none counted twice — and raw points older than an hour are gone.
#[test]
fn every_minute_is_rolled_up_exactly_once_at_any_interval_and_across_a_restart() {
    // Each crosses an hour boundary; 10 s steps for 70 minutes, 120 s ones for 150.
    for (interval_s, minutes) in [(10i64, 70), (120, 150)] {
        let mut server =
            TestServer::start(T0, &[("AGGREGATION_INTERVAL", &interval_s.to_string())]);
        let steps = minutes * 60 / interval_s;
        let mut sent = BTreeMap::new();
        for i in 0..steps {
            // Somewhere in the last interval: some points are late for a minute that the
            // previous run already rolled up.
            let at = server.clock.now_ms() - (i * 7_919) % (interval_s * 1000);
            send_pair(&server, at, i, &mut sent);
            if i == steps / 2 {
                server.restart();
            }
            server.advance(interval_s * 1000);
        }
        // Two more intervals: the last minute is complete and rolled up.
        server.advance(interval_s * 1000);
        server.advance(interval_s * 1000);
        let now = server.clock.now_ms();
        check_buckets(&server, &sent, T0 - HOUR, now);
        // Raw points are kept an hour (RETENTION_RAW=1), and only once rolled up.
        let raw_kept: i64 = sent.range(now - HOUR - MINUTE..).map(|(_, &n)| n).sum();
        assert!(
            server.rows("points") <= raw_kept,
            "interval {interval_s}: raw points older than an hour remain ({} > {raw_kept})",
            server.rows("points")
        );
        assert_eq!(
            server.health()["metrics_received_24h"],
            json!(sent.values().sum::<i64>())
        );
    }
}

/// A point for a minute already rolled up re-rolls that minute and its hour, whether its
/// minute's raw points are still kept (recomputed exactly) or already deleted (merged into
/// the stored rollup); another run changes nothing.
#[test]
fn a_late_point_re_rolls_its_minute_and_its_hour() {
    let server = TestServer::start(T0, &[]);
    let labels = json!({"route": "/a"});
    let mut sent = BTreeMap::new();
    for minute in [5, 30, 50] {
        let at = T0 + minute * MINUTE + 1_000;
        send_pair(&server, at, minute, &mut sent);
    }
    server.advance(70 * MINUTE); // hour 0 complete and rolled up
    check_buckets(&server, &sent, T0, T0 + HOUR);
    for minute in [50, 5] {
        // Minute 50's raw points are still kept (an hour: back to minute 10); minute 5's are not.
        let at = T0 + minute * MINUTE + 2_000;
        server.send(&json!([point(
            "latency_ms",
            "histogram",
            5000.0,
            at,
            labels.clone()
        )]));
        *sent.entry(T0 + minute * MINUTE).or_default() += 1;
        server.advance(MINUTE);
        check_buckets(&server, &sent, T0, T0 + HOUR);
        let minute_bucket = server.series(
            "latency_ms",
            &format!(
                "from={}&to={}&resolution=minute",
                format_ms(T0 + minute * MINUTE),
                format_ms(T0 + (minute + 1) * MINUTE)
            ),
        );
        assert_eq!(minute_bucket["data"][0]["max"], json!(5000.0));
        assert_eq!(minute_bucket["data"][0]["p99"], json!(5000.0));
        let hour = server.series(
            "latency_ms",
            &format!(
                "from={}&to={}&resolution=hour",
                format_ms(T0),
                format_ms(T0 + HOUR)
            ),
        );
        assert_eq!(hour["data"][0]["max"], json!(5000.0));
    }
    server.advance(MINUTE);
    check_buckets(&server, &sent, T0, T0 + HOUR);
}

/// The clock jumping back an hour rolls nothing up twice; points stored meanwhile land in
/// their minutes, and once the clock is past them again every minute is right.
#[test]
fn a_clock_jumping_back_neither_skips_nor_repeats_a_minute() {
    let server = TestServer::start(T0, &[]);
    let mut sent = BTreeMap::new();
    for i in 0..5 {
        send_pair(&server, server.clock.now_ms(), i, &mut sent);
        server.advance(MINUTE);
    }
    server.advance(-HOUR);
    for i in 0..3 {
        send_pair(&server, server.clock.now_ms(), i, &mut sent);
        server.advance(MINUTE);
    }
    server.advance(2 * HOUR);
    check_buckets(&server, &sent, T0 - HOUR, T0 + HOUR);
}

/// Raw points go after RETENTION_RAW once rolled up, minute rollups after RETENTION_MINUTE,
/// hour rollups after RETENTION_HOURLY; a name stays listed as long as any tier has it.
#[test]
fn each_tier_keeps_its_data_for_its_retention_and_names_survive_the_raw_tier() {
    let server = TestServer::start(T0, &[]);
    server.send(&json!([point(
        "jobs_done",
        "counter",
        3.0,
        T0 + 1_000,
        json!({})
    )]));
    let names = || server.get("/api/metrics/names")["metrics"].clone();
    server.advance(2 * HOUR);
    assert_eq!(
        (
            server.rows("points"),
            server.rows("rollups_minute"),
            server.rows("rollups_hour")
        ),
        (0, 1, 1)
    );
    assert_eq!(names()[0]["name"], json!("jobs_done"));
    assert_eq!(names()[0]["last_seen"], json!(format_ms(T0 + 1_000)));
    server.advance(24 * HOUR);
    assert_eq!(
        (server.rows("rollups_minute"), server.rows("rollups_hour")),
        (0, 1)
    );
    assert_eq!(names()[0]["name"], json!("jobs_done"));
    let week = server.series("jobs_done", "period=7d");
    assert_eq!(week["resolution"], json!("hour"));
    assert_eq!(counts(&week["data"]), [(format_ms(T0), 1)]);
    assert_eq!(week["data"][0]["sum"], json!(3.0));
    server.advance(30 * 24 * HOUR);
    assert_eq!((server.rows("rollups_hour"), server.rows("series")), (0, 0));
    assert_eq!(names(), json!([]));
}

/// Rolled-up hours answer from the hour tier, the hour in progress from its minutes and the
/// current minute from raw points: a histogram's merged percentiles stay within 1 % of the
/// exact ones.
#[test]
fn hour_percentiles_come_from_merged_sketches() {
    let server = TestServer::start(T0, &[]);
    let mut all = Vec::new();
    let mut batch = Vec::new();
    for minute in 0..60 {
        for j in 0..20 {
            let value = 1.0 + ((minute * 37 + j * 101) % 1000) as f64;
            all.push(value);
            batch.push(point(
                "size_bytes",
                "histogram",
                value,
                T0 + minute * MINUTE + j * 100,
                json!({}),
            ));
        }
    }
    for chunk in batch.chunks(1000) {
        server.send(&Value::Array(chunk.to_vec()));
    }
    server.advance(2 * HOUR);
    let hour = server.series(
        "size_bytes",
        &format!(
            "from={}&to={}&resolution=hour",
            format_ms(T0),
            format_ms(T0 + HOUR)
        ),
    );
    all.sort_by(f64::total_cmp);
    for (p, key) in [(50, "p50"), (75, "p75"), (95, "p95"), (99, "p99")] {
        let rank = (p * all.len()).div_ceil(100) - 1;
        let got = hour["data"][0][key].as_f64().unwrap();
        let near = [rank - 1, rank, rank + 1]
            .iter()
            .any(|&i| (got - all[i]).abs() <= 0.01 * all[i]);
        assert!(near, "{key}: {got} vs exact {}", all[rank]);
    }
}
