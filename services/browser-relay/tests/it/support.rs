//! The stack under test: the real error-tracker and metrics-collector on port 0, and the
//! relay in front of them; helpers that speak HTTP to each and wait on conditions.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use shared::testing::{self, merge_env, wait_for, ChildService, HttpResponse};
use shared::Running;
use tempfile::TempDir;

pub const ADMIN: &str = "admin-test-key";
pub const ERRORS_KEY: &str = "errors-test-key";
pub const METRICS_KEY: &str = "metrics-test-key";
/// A DSN key seeded through `DSN_KEYS` for project `shop`.
pub const DSN: &str = "5eed0000000000000000000000000001";
/// The origins the relay allows.
pub const ORIGINS: &str = "https://shop.example.com,https://*.example.com";
pub const RELAY_BIN: &str = env!("CARGO_BIN_EXE_browser-relay");

fn env(pairs: &[(&str, &str)]) -> shared::config::Env {
    shared::config::Env::from_pairs(pairs)
}

/// The error-tracker in this process on `port` (0: any).
pub fn start_error_tracker(dir: &Path, port: u16) -> Running {
    let db = dir.join("errors.db").display().to_string();
    let port = port.to_string();
    let pairs = [
        ("API_KEY", ERRORS_KEY),
        ("BIND", "127.0.0.1"),
        ("PORT", &port),
        ("RATE_LIMIT", "0"),
        ("DATABASE_PATH", &db),
    ];
    let config = error_tracker::Config::from_env(&env(&pairs)).expect("error-tracker config");
    error_tracker::run(config, shared::Shutdown::new()).expect("error-tracker starts")
}

/// The metrics-collector in this process.
pub fn start_metrics_collector(dir: &Path) -> Running {
    let db = dir.join("metrics.db").display().to_string();
    let pairs = [
        ("API_KEY", METRICS_KEY),
        ("BIND", "127.0.0.1"),
        ("PORT", "0"),
        ("RATE_LIMIT", "0"),
        ("DATABASE_PATH", &db),
    ];
    let config = metrics_collector::Config::from_env(&env(&pairs)).expect("collector config");
    metrics_collector::run(config, shared::Shutdown::new()).expect("collector starts")
}

/// The relay's environment in front of the given upstreams (later pairs of `extra` win).
pub fn relay_env(
    dir: &Path,
    errors: SocketAddr,
    metrics: SocketAddr,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let base: Vec<(String, String)> = [
        ("ADMIN_API_KEY", ADMIN.to_string()),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("LOG_LEVEL", "debug".to_string()),
        ("DATABASE_PATH", dir.join("relay.db").display().to_string()),
        ("ERROR_TRACKER_URL", format!("http://{errors}")),
        ("ERROR_TRACKER_API_KEY", ERRORS_KEY.to_string()),
        ("METRICS_COLLECTOR_URL", format!("http://{metrics}")),
        ("METRICS_COLLECTOR_API_KEY", METRICS_KEY.to_string()),
        ("CORS_ORIGINS", ORIGINS.to_string()),
        ("DSN_KEYS", format!("shop:{DSN}")),
        ("RATE_LIMIT", "0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    merge_env(base, extra)
}

/// The relay in this process.
pub fn start_relay(env_pairs: &[(String, String)]) -> Running {
    let config = browser_relay::Config::from_env(&shared::config::Env::from_pairs(env_pairs))
        .expect("relay config");
    browser_relay::run(config, shared::Shutdown::new()).expect("relay starts")
}

/// The whole stack, in this process.
pub struct Stack {
    pub dir: TempDir,
    pub errors: Option<Running>,
    pub errors_addr: SocketAddr,
    pub metrics: Running,
    pub relay: Running,
    /// Holds the error-tracker's port while it is stopped.
    reserved: Option<socket2::Socket>,
}

impl Stack {
    pub fn start(extra: &[(&str, &str)]) -> Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let errors = start_error_tracker(dir.path(), 0);
        let metrics = start_metrics_collector(dir.path());
        let env = relay_env(dir.path(), errors.addr(), metrics.addr(), extra);
        let relay = start_relay(&env);
        Stack {
            errors_addr: errors.addr(),
            errors: Some(errors),
            metrics,
            relay,
            dir,
            reserved: None,
        }
    }

    pub fn relay(&self) -> SocketAddr {
        self.relay.addr()
    }

    /// Stops the error-tracker. Its port stays reserved for [`Stack::restart_errors`] by a
    /// socket bound to it that does not listen: connections are refused, as by a stopped
    /// service, and no other test's server can take the port meanwhile.
    pub fn stop_errors(&mut self) {
        if let Some(errors) = self.errors.take() {
            errors.stop();
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("a socket");
            socket.set_reuse_address(true).expect("SO_REUSEADDR");
            socket
                .bind(&self.errors_addr.into())
                .expect("the stopped error-tracker's port is free to reserve");
            self.reserved = Some(socket);
        }
    }

    /// Starts the error-tracker again on its port and database.
    pub fn restart_errors(&mut self) {
        self.reserved = None;
        self.errors = Some(start_error_tracker(
            self.dir.path(),
            self.errors_addr.port(),
        ));
    }

    pub fn db_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// An address where nothing listens (a port just freed): connections are refused.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address")
}

/// Any request.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    testing::request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("no answer to {method} {path}: {e}"))
}

/// `POST` a browser payload with the DSN key and an allowed origin.
pub fn post_browser(relay: SocketAddr, path: &str, body: &Value) -> HttpResponse {
    let headers = [
        ("X-Monlight-Key", DSN),
        ("Origin", "https://shop.example.com"),
        ("Content-Type", "text/plain"),
    ];
    request(
        relay,
        "POST",
        path,
        &headers,
        Some(body.to_string().as_bytes()),
    )
}

/// A browser error of its own group (the error-tracker groups by type and frames, so the
/// type carries the message).
pub fn browser_error(message: &str) -> Value {
    let kind = format!("Error_{}", message.replace(' ', "_"));
    json!({"type": kind, "message": message, "stack": format!("{kind}: {message}\n    at f (https://shop.example.com/app.js:1:20)"), "url": "https://shop.example.com/cart?x=1"})
}

/// `GET` on an upstream with its key; `None` while it does not answer 200.
pub fn get_json(addr: SocketAddr, path: &str, key: &str) -> Option<Value> {
    let response = testing::request(addr, "GET", path, &[("X-API-Key", key)], None).ok()?;
    (response.status == 200).then(|| response.json())
}

/// Waits (60 s at most) until the error-tracker lists `n` groups; returns them in the order
/// they were created (id order).
pub fn wait_for_groups(errors: SocketAddr, n: usize) -> Vec<Value> {
    wait_for(
        &format!("{n} error groups"),
        Duration::from_secs(60),
        || {
            let list = get_json(errors, "/api/errors?limit=200", ERRORS_KEY)
                .ok_or_else(|| "error-tracker not answering".to_string())?;
            let mut groups = list["errors"].as_array().cloned().unwrap_or_default();
            if groups.len() >= n {
                groups.sort_by_key(|g| g["id"].as_i64());
                Ok(groups)
            } else {
                Err(format!("{} groups so far", groups.len()))
            }
        },
    )
}

/// The relay's `/health`.
pub fn relay_health(relay: SocketAddr) -> Value {
    request(relay, "GET", "/health", &[], None).json()
}

/// The relay as a child process (killed with SIGKILL by the fault tests).
pub fn spawn_relay(env_pairs: &[(String, String)], log: PathBuf) -> ChildService {
    ChildService::spawn(RELAY_BIN, env_pairs, log, None)
}
