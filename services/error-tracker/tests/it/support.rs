//! `TestServer`: the real error-tracker on port 0, in this process or as a child process,
//! with helpers that speak HTTP to it and explain themselves when an expectation fails.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::testing::{self, merge_env, ChildService, HttpResponse};
use tempfile::TempDir;

/// The API key every test server uses.
pub const KEY: &str = "test-key";

/// The service binary built by Cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_error-tracker");

/// Environment every test server starts with (later pairs override earlier ones).
fn base_env(db: &Path) -> Vec<(String, String)> {
    [
        ("API_KEY", KEY),
        ("PORT", "0"),
        ("BIND", "127.0.0.1"),
        ("RATE_LIMIT", "0"),
        ("LOG_LEVEL", "debug"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("DATABASE_PATH".to_string(), db.display().to_string())])
    .collect()
}

enum Kind {
    InProcess(Option<shared::Running>),
    Child(ChildService),
}

/// A running error-tracker with its own temporary directory and database.
pub struct TestServer {
    pub addr: SocketAddr,
    pub db_path: PathBuf,
    kind: Kind,
    _dir: TempDir,
}

/// A request as sent and the response as received, for assertions that explain themselves.
pub struct Exchange {
    pub request: String,
    pub response: HttpResponse,
    /// Tail of the service's log (child processes only).
    pub log: String,
}

impl Exchange {
    pub fn status(&self) -> u16 {
        self.response.status
    }

    pub fn json(&self) -> Value {
        self.response.json()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.response.header(name)
    }

    /// Everything needed to understand a failure: request, response, server log.
    pub fn context(&self) -> String {
        let mut text = format!(
            "\n--- request ---\n{}\n--- response ---\n{} {:?}\n{}",
            self.request,
            self.response.status,
            self.response.headers,
            shorten(&self.response.text(), 2000)
        );
        if !self.log.is_empty() {
            text.push_str("\n--- service log (tail) ---\n");
            text.push_str(&self.log);
        }
        text
    }

    /// Panics with the whole exchange unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Exchange {
        assert_eq!(
            self.response.status,
            status,
            "unexpected status{}",
            self.context()
        );
        self
    }

    /// Panics with the whole exchange unless `ok`.
    #[track_caller]
    pub fn check(&self, ok: bool, what: &str) {
        assert!(ok, "{what}{}", self.context());
    }

    /// Panics unless the body is exactly `{"detail": detail}` with a JSON content type.
    #[track_caller]
    pub fn expect_detail(self, status: u16, detail: &str) -> Exchange {
        let ex = self.expect(status);
        ex.check(
            ex.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error responses must be application/json",
        );
        ex.check(
            ex.json() == json!({ "detail": detail }),
            &format!("expected body {{\"detail\":{detail:?}}}"),
        );
        ex
    }

    /// Panics unless the status is 400 and the detail names `field` (as `'field'`).
    #[track_caller]
    pub fn expect_bad_field(self, field: &str) -> Exchange {
        let ex = self.expect(400);
        let detail = ex.json()["detail"].as_str().unwrap_or("").to_string();
        ex.check(
            detail.contains(&format!("'{field}'")),
            &format!("the 400 detail must name '{field}'"),
        );
        ex
    }
}

pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

impl TestServer {
    /// The service in this process, with `extra` env vars over the test defaults.
    pub fn start(extra: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_path = dir.path().join("errors.db");
        let env = merge_env(base_env(&db_path), extra);
        let env = shared::config::Env::from_pairs(&env);
        let config = error_tracker::Config::from_env(&env).expect("test configuration is valid");
        let running =
            error_tracker::run(config, shared::Shutdown::new()).expect("the service starts");
        TestServer {
            addr: running.addr(),
            db_path,
            kind: Kind::InProcess(Some(running)),
            _dir: dir,
        }
    }

    /// The service binary as a child process (stderr logged to a file), waiting until it
    /// logs its address.
    pub fn spawn(extra: &[(&str, &str)]) -> TestServer {
        TestServer::spawn_with(extra, None)
    }

    /// Like [`spawn`], run under `prlimit --nofile=N:N` (or setrlimit in the child).
    pub fn spawn_with_nofile(extra: &[(&str, &str)], nofile: u64) -> TestServer {
        TestServer::spawn_with(extra, Some(nofile))
    }

    fn spawn_with(extra: &[(&str, &str)], nofile: Option<u64>) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_path = dir.path().join("errors.db");
        let env = merge_env(base_env(&db_path), extra);
        let child = ChildService::spawn(BIN, &env, dir.path().join("service.log"), nofile);
        TestServer {
            addr: child.addr(),
            db_path,
            kind: Kind::Child(child),
            _dir: dir,
        }
    }

    /// The whole service log (child processes; empty in-process).
    pub fn log(&self) -> String {
        match &self.kind {
            Kind::Child(child) => child.log(),
            Kind::InProcess(_) => String::new(),
        }
    }

    /// See [`ChildService::expect_stopped_threads`] (child processes only).
    pub fn expect_stopped_threads(&self, threads: &[&str]) {
        match &self.kind {
            Kind::Child(child) => child.expect_stopped_threads(threads),
            Kind::InProcess(_) => panic!("a fault is injected into a child process only"),
        }
    }

    /// The last lines of the service log.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn child(&self) -> &ChildService {
        match &self.kind {
            Kind::Child(child) => child,
            Kind::InProcess(_) => panic!("not a child process"),
        }
    }

    /// The child's pid (child processes only).
    pub fn pid(&self) -> u32 {
        self.child().pid()
    }

    /// Sends a signal to the child.
    pub fn signal(&self, signal: i32) {
        self.child().signal(signal);
    }

    /// The exit status if the child has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        match &mut self.kind {
            Kind::Child(child) => child.try_exit_status(),
            Kind::InProcess(_) => None,
        }
    }

    /// Waits (polling) up to `deadline` for the child to exit.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        match &mut self.kind {
            Kind::Child(child) => child.wait_exit(deadline),
            Kind::InProcess(_) => None,
        }
    }

    fn describe(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
        let mut text = format!("{method} {path} (server {})", self.addr);
        for (name, value) in headers {
            text.push_str(&format!("\n{name}: {value}"));
        }
        if !body.is_empty() {
            text.push_str("\n\n");
            text.push_str(&shorten(&String::from_utf8_lossy(body), 2000));
        }
        text
    }

    fn exchange(&self, request: String, result: std::io::Result<HttpResponse>) -> Exchange {
        match result {
            Ok(response) => Exchange {
                request,
                response,
                log: self.log_tail(),
            },
            Err(e) => panic!(
                "no response: {e}\n--- request ---\n{request}\n--- service log (tail) ---\n{}",
                self.log_tail()
            ),
        }
    }

    /// Any request, `Content-Length` set when there is a body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Exchange {
        let described = self.describe(method, path, headers, body.unwrap_or_default());
        let result = testing::request(self.addr, method, path, headers, body);
        self.exchange(described, result)
    }

    /// Raw bytes on a new connection, the response parsed.
    pub fn raw(&self, bytes: &[u8]) -> Exchange {
        let described = format!(
            "raw bytes to {}:\n{}",
            self.addr,
            shorten(&String::from_utf8_lossy(bytes), 2000)
        );
        let result = testing::send_raw(self.addr, bytes).and_then(|raw| {
            testing::parse_response(&raw).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("{e}; received {:?}", String::from_utf8_lossy(&raw)),
                )
            })
        });
        self.exchange(described, result)
    }

    /// `GET` with the API key.
    pub fn get(&self, path: &str) -> Exchange {
        self.request("GET", path, &[("X-API-Key", KEY)], None)
    }

    /// `GET` without any key.
    pub fn get_nokey(&self, path: &str) -> Exchange {
        self.request("GET", path, &[], None)
    }

    /// `POST` JSON with the API key.
    pub fn post(&self, path: &str, body: &Value) -> Exchange {
        self.request(
            "POST",
            path,
            &[("X-API-Key", KEY), ("Content-Type", "application/json")],
            Some(body.to_string().as_bytes()),
        )
    }

    /// `POST` without a body (no `Content-Length`) with the API key.
    pub fn post_empty(&self, path: &str) -> Exchange {
        self.request("POST", path, &[("X-API-Key", KEY)], None)
    }

    /// Reports an error; panics unless 200/201.
    #[track_caller]
    pub fn report(&self, body: &Value) -> Value {
        let ex = self.post("/api/errors", body);
        ex.check(
            matches!(ex.status(), 200 | 201),
            "reporting an error must succeed",
        );
        ex.json()
    }

    /// The detail of group `id`; panics unless 200.
    #[track_caller]
    pub fn detail(&self, id: i64) -> Value {
        self.get(&format!("/api/errors/{id}")).expect(200).json()
    }

    /// `GET /api/errors?<query>`; panics unless 200.
    #[track_caller]
    pub fn list(&self, query: &str) -> Value {
        self.get(&format!("/api/errors?{query}")).expect(200).json()
    }

    /// The ids listed by `GET /api/errors?<query>`, in order.
    #[track_caller]
    pub fn list_ids(&self, query: &str) -> Vec<i64> {
        ids(&self.list(query))
    }

    /// Polls `GET /health` until it answers 200 (or panics at the deadline).
    #[track_caller]
    pub fn wait_healthy(&self, deadline: Duration) {
        let end = Instant::now() + deadline;
        loop {
            let last = match testing::get(self.addr, "/health", None) {
                Ok(r) if r.status == 200 => return,
                Ok(r) => format!("{} {}", r.status, r.text()),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < end,
                "/health did not answer 200 within {deadline:?}; last: {last}\n--- service log (tail) ---\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A connection to the service with read/write timeouts.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    /// A read-write connection straight to the SQLite file.
    pub fn sql(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&self.db_path).expect("open the database");
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch("PRAGMA foreign_keys=ON").unwrap();
        conn
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::InProcess(running) => {
                if let Some(running) = running.take() {
                    running.stop();
                }
            }
            Kind::Child(_) => {}
        }
    }
}

/// The `id`s of a list response, in order.
pub fn ids(list: &Value) -> Vec<i64> {
    list["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array in {list}"))
        .iter()
        .map(|e| e["id"].as_i64().expect("numeric id"))
        .collect()
}

/// A minimal valid report.
pub fn report(project: &str, exception_type: &str, message: &str) -> Value {
    json!({
        "project": project,
        "exception_type": exception_type,
        "message": message,
        "traceback": format!("Traceback (most recent call last):\n  File \"/app/{exception_type}.py\", line 1, in f\n{exception_type}: {message}"),
    })
}

/// A report whose traceback has a location unique to `n` (so each `n` is a new group).
pub fn distinct_report(project: &str, n: usize) -> Value {
    json!({
        "project": project,
        "exception_type": "RuntimeError",
        "message": format!("failure {n}"),
        "traceback": format!("Traceback (most recent call last):\n  File \"/app/m{n}.py\", line {n}, in f\nRuntimeError: failure {n}"),
    })
}

/// Reads until the peer closes (or `deadline`); returns what arrived and whether it closed.
pub fn read_until_close(stream: &mut TcpStream, deadline: Duration) -> (Vec<u8>, bool) {
    let end = Instant::now() + deadline;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(200))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset is the peer closing too.
            Err(_) => return (out, true),
        }
    }
}

/// Reads exactly one response with a `Content-Length` body off a kept-alive connection,
/// never reading past it (the head byte by byte), so pipelined responses stay in the socket.
pub fn read_one_response(
    stream: &mut TcpStream,
    deadline: Duration,
) -> std::io::Result<HttpResponse> {
    let end = Instant::now() + deadline;
    let mut raw = Vec::new();
    let mut body_len: Option<usize> = None;
    loop {
        let want = body_len.unwrap_or(1);
        if body_len.is_some() && want == 0 {
            return testing::parse_response(&raw);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no full response; got {:?}", String::from_utf8_lossy(&raw)),
            ));
        }
        stream.set_read_timeout(Some(left)).unwrap();
        let mut buf = vec![0u8; want.min(64 * 1024)];
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "closed before a full response; got {:?}",
                        String::from_utf8_lossy(&raw)
                    ),
                ))
            }
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                match &mut body_len {
                    Some(left) => *left -= n,
                    None if raw.ends_with(b"\r\n\r\n") => {
                        let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        body_len = Some(length);
                    }
                    None => {}
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `bytes`, panicking with context on failure.
#[track_caller]
pub fn write_all(stream: &mut TcpStream, bytes: &[u8], what: &str) {
    stream
        .write_all(bytes)
        .unwrap_or_else(|e| panic!("writing {what} failed: {e}"));
}

/// Runs a child-process invocation of the binary to completion (with a deadline) and
/// returns (status, stdout, stderr).
pub fn run_binary(
    args: &[&str],
    env: &[(&str, &str)],
    deadline: Duration,
) -> (ExitStatus, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn the binary");
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`error-tracker {}` did not exit within {deadline:?}; stderr:\n{}",
                args.join(" "),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}
