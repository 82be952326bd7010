//! `TestServer`: the real metrics-collector on port 0 in this process, on a manual clock the
//! test moves (so aggregation runs without sleeping), with helpers that speak HTTP to it and
//! explain themselves when an expectation fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics_collector::clock::{Clock, ManualClock};
use serde_json::{json, Value};
use shared::testing::{self, merge_env, wait_for, HttpResponse};
use shared::time::format_ms;
use tempfile::TempDir;

/// The API key every test server uses.
pub const KEY: &str = "test-key";

/// A whole minute, 2026-06-01T00:00:00Z: test clocks start here (plus offsets).
pub const T0: i64 = 1_780_272_000_000;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;

/// A running metrics-collector with its own temporary directory, database and clock.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub db_path: PathBuf,
    /// The service's clock; move it with [`TestServer::advance`].
    pub clock: Arc<ManualClock>,
    env: Vec<(String, String)>,
    running: Option<shared::Running>,
    _dir: TempDir,
}

impl TestServer {
    /// The service at `start_ms` on its manual clock, with `extra` env vars over the test
    /// defaults (a 60 s aggregation interval unless given).
    pub fn start(start_ms: i64, extra: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_path = dir.path().join("metrics.db");
        let base: Vec<(String, String)> = [
            ("API_KEY", KEY),
            ("PORT", "0"),
            ("BIND", "127.0.0.1"),
            ("RATE_LIMIT", "0"),
            ("LOG_LEVEL", "debug"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("DATABASE_PATH".to_string(), db_path.display().to_string())])
        .collect();
        let env = merge_env(base, extra);
        let (clock_source, clock) = Clock::manual(start_ms);
        let running = launch(&env, clock_source);
        let server = TestServer {
            addr: running.addr(),
            db_path,
            clock,
            env,
            running: Some(running),
            _dir: dir,
        };
        server.wait_for_run(start_ms);
        server
    }

    /// Stops the service and starts it again on the same database and clock.
    pub fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
        let running = launch(&self.env, Clock::Manual(Arc::clone(&self.clock)));
        self.addr = running.addr();
        self.running = Some(running);
        self.wait_for_run(self.clock.now_ms());
    }

    /// Moves the clock by `delta_ms` and waits until the aggregation run it triggers (one
    /// `AGGREGATION_INTERVAL` after the previous run) has finished.
    pub fn advance(&self, delta_ms: i64) {
        self.clock.advance(delta_ms);
        self.wait_for_run(self.clock.now_ms());
    }

    /// Waits (10 s at most) until `/health` says the last aggregation ran at `at_ms`.
    pub fn wait_for_run(&self, at_ms: i64) {
        let expected = json!(format_ms(at_ms));
        wait_for("an aggregation run", Duration::from_secs(10), || {
            let health = self.health();
            if health["last_aggregation"] == expected {
                Ok(())
            } else {
                Err(format!("{health} (expected last_aggregation {expected})"))
            }
        });
    }

    pub fn health(&self) -> Value {
        self.request("GET", "/health", &[], None).json()
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> HttpResponse {
        testing::request(self.addr, method, path, headers, body)
            .unwrap_or_else(|e| panic!("no response to {method} {path}: {e}"))
    }

    /// `GET` with the API key; panics unless 200.
    #[track_caller]
    pub fn get(&self, path: &str) -> Value {
        let response = self.request("GET", path, &[("X-API-Key", KEY)], None);
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        response.json()
    }

    /// `POST /api/metrics` with raw bytes and the API key.
    pub fn post_raw(&self, body: &[u8]) -> HttpResponse {
        let headers = [("X-API-Key", KEY), ("Content-Type", "application/json")];
        self.request("POST", "/api/metrics", &headers, Some(body))
    }

    /// Posts `points`; panics unless `202 {"status":"accepted","count":n}`.
    #[track_caller]
    pub fn send(&self, points: &Value) {
        let response = self.post_raw(points.to_string().as_bytes());
        let count = points.as_array().map_or(0, Vec::len);
        assert_eq!(response.status, 202, "{}", response.text());
        assert_eq!(
            response.json(),
            json!({"status": "accepted", "count": count})
        );
    }

    /// `GET /api/metrics` for `name` with the query string `params`.
    pub fn series(&self, name: &str, params: &str) -> Value {
        self.get(&format!("/api/metrics?name={name}&{params}"))
    }

    /// Rows of `table` (read straight from the database file).
    pub fn rows(&self, table: &str) -> i64 {
        let conn = rusqlite::Connection::open(&self.db_path).expect("open the database");
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}

fn launch(env: &[(String, String)], clock: Clock) -> shared::Running {
    let env = shared::config::Env::from_pairs(env);
    let mut config =
        metrics_collector::Config::from_env(&env).expect("test configuration is valid");
    config.clock = clock;
    metrics_collector::run(config, shared::Shutdown::new()).expect("the service starts")
}

/// A point as JSON.
pub fn point(name: &str, kind: &str, value: f64, at_ms: i64, labels: Value) -> Value {
    json!({"name": name, "type": kind, "value": value, "timestamp": format_ms(at_ms), "labels": labels})
}

/// `(bucket, count)` of each bucket of `data`.
pub fn counts(data: &Value) -> Vec<(String, i64)> {
    data.as_array()
        .map(|buckets| {
            buckets
                .iter()
                .map(|b| {
                    let bucket = b["bucket"].as_str().unwrap_or_default().to_string();
                    (bucket, b["count"].as_i64().unwrap_or(-1))
                })
                .collect()
        })
        .unwrap_or_default()
}
