//! Test helpers: [`TestServer`] (the real log-viewer, in this process, on port 0),
//! [`FakeDocker`] (container directories written the way Docker's `json-file` driver writes
//! them) and [`Sse`] (a raw Server-Sent Events client). Every wait has a deadline and says
//! what it last saw when it gives up.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use shared::testing::{self, HttpResponse};
use tempfile::TempDir;

/// The API key of every test server.
pub const KEY: &str = "k";
/// How long any wait lasts before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// Docker splits lines into pieces of this many bytes.
pub const PIECE: usize = 16 * 1024;

/// Retries `check` until it returns `Ok`, for at most [`DEADLINE`]; panics with the last
/// `Err` (a description of what was seen) otherwise.
pub fn wait_for<T>(what: &str, check: impl FnMut() -> Result<T, String>) -> T {
    testing::wait_for(what, DEADLINE, check)
}

/// Docker's time format: `2026-01-20T10:00:00.123456789Z`.
pub fn docker_time(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).expect("time after 1970");
    let whole = shared::time::format_ms(since_epoch.as_secs() as i64 * 1000);
    format!("{}.{:09}Z", &whole[..19], since_epoch.subsec_nanos())
}

/// How the API shows a Docker time: UTC, millisecond precision.
pub fn api_time(time: SystemTime) -> String {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .expect("time after 1970")
        .as_millis();
    shared::time::format_ms(ms as i64)
}

/// Percent-encodes a query value.
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// JSON-escapes a string the way Docker (Go's `encoding/json`) does: `<`, `>`, `&` become
/// `\u003c`, `\u003e`, `\u0026` (they can only occur inside strings, so this is safe).
fn go_json_string(text: &str) -> String {
    serde_json::to_string(text)
        .expect("a string serializes")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// One `json-file` record (a line of the log file, with its `\n`).
pub fn record(log: &str, stream: &str, time: SystemTime) -> String {
    format!(
        "{{\"log\":{},\"stream\":\"{stream}\",\"time\":\"{}\"}}\n",
        go_json_string(log),
        docker_time(time)
    )
}

/// The records Docker writes for one line of output: 16 KiB pieces without a trailing
/// newline, then the last piece with it.
pub fn line_records(text: &str, stream: &str, time: SystemTime) -> String {
    let mut out = String::new();
    let mut rest = text;
    while rest.len() > PIECE {
        let mut cut = PIECE;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&record(&rest[..cut], stream, time));
        rest = &rest[cut..];
    }
    out.push_str(&record(&format!("{rest}\n"), stream, time));
    out
}

/// A unique 64-hex-digit container id.
fn container_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut state = nanos ^ (u64::from(std::process::id()) << 32) ^ n.wrapping_mul(0x9E37);
    let mut id = String::new();
    for _ in 0..4 {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        id.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    id
}

/// Docker's containers directory: `<root>/<id>/config.v2.json` and `<root>/<id>/<id>-json.log`.
pub struct FakeDocker {
    pub root: PathBuf,
    /// Where container directories are prepared before being moved into `root` at once (so a
    /// scan never sees a directory without its config).
    staging: PathBuf,
}

impl FakeDocker {
    pub fn new(root: PathBuf, staging: PathBuf) -> FakeDocker {
        fs::create_dir_all(&staging).expect("create the staging directory");
        FakeDocker { root, staging }
    }

    /// Creates `root` (for tests that start without it).
    pub fn create_root(&self) {
        fs::create_dir_all(&self.root).expect("create LOG_SOURCES");
    }

    /// A new container named `name` with an empty log.
    pub fn add(&self, name: &str) -> Container {
        self.add_with_log(name, "")
    }

    /// A new container named `name` whose log already holds `content`.
    pub fn add_with_log(&self, name: &str, content: &str) -> Container {
        let id = container_id();
        let staged = self.staging.join(&id);
        fs::create_dir_all(&staged).expect("create a container directory");
        let config = serde_json::json!({"ID": id, "Name": format!("/{name}")});
        fs::write(staged.join("config.v2.json"), config.to_string()).expect("write config");
        fs::write(staged.join(format!("{id}-json.log")), content).expect("write the log");
        let dir = self.root.join(&id);
        fs::rename(&staged, &dir).expect("move the container into LOG_SOURCES");
        Container { id, dir }
    }
}

impl FakeDocker {
    /// The container named `name` (e.g. created before the server started), found on disk.
    pub fn find(&self, name: &str) -> Container {
        for dir in fs::read_dir(&self.root).expect("read LOG_SOURCES") {
            let dir = dir.expect("a directory entry").path();
            let Ok(config) = fs::read(dir.join("config.v2.json")) else {
                continue;
            };
            let config: Value = serde_json::from_slice(&config).expect("config is JSON");
            if config["Name"] == format!("/{name}") {
                return Container {
                    id: config["ID"].as_str().expect("config has an ID").to_string(),
                    dir,
                };
            }
        }
        panic!("no container named {name} in {}", self.root.display());
    }
}

/// One fake container.
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
}

impl Container {
    /// `<id>-json.log`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.id))
    }

    /// Appends raw bytes to the log, in one write.
    pub fn append_raw(&self, bytes: &[u8]) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the log for appending");
        file.write_all(bytes).expect("append to the log");
    }

    /// Writes one line of output on `stream` at `time` (split into pieces when long).
    pub fn write_at(&self, stream: &str, text: &str, time: SystemTime) {
        self.append_raw(line_records(text, stream, time).as_bytes());
    }

    /// Writes one stdout line, timestamped now.
    pub fn stdout(&self, text: &str) {
        self.write_at("stdout", text, SystemTime::now());
    }

    /// Writes one stderr line, timestamped now.
    pub fn stderr(&self, text: &str) {
        self.write_at("stderr", text, SystemTime::now());
    }

    /// Writes several lines of one stream in a single append.
    pub fn lines(&self, stream: &str, texts: &[String]) {
        let now = SystemTime::now();
        let all: String = texts.iter().map(|t| line_records(t, stream, now)).collect();
        self.append_raw(all.as_bytes());
    }

    /// Docker's rotation: `.4` → `.5` … `log` → `.1`, then a new empty log.
    pub fn rotate(&self) {
        let path = self.log_path();
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
        for n in (1..5).rev() {
            if numbered(n).exists() {
                fs::rename(numbered(n), numbered(n + 1)).expect("shift a rotated log");
            }
        }
        fs::rename(&path, numbered(1)).expect("rotate the log");
        fs::write(&path, "").expect("create the new log");
    }

    /// Rewrites the log in place (same inode) with `content`.
    pub fn rewrite(&self, content: &str) {
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.log_path())
            .expect("open the log for truncation");
        file.write_all(content.as_bytes()).expect("rewrite the log");
    }

    /// Docker renames the container (same id, new `Name`); the config is replaced at once.
    pub fn rename(&self, new_name: &str) {
        let config = serde_json::json!({"ID": self.id, "Name": format!("/{new_name}")});
        let staged = self.dir.join("config.v2.json.tmp");
        fs::write(&staged, config.to_string()).expect("write the new config");
        fs::rename(&staged, self.dir.join("config.v2.json")).expect("replace the config");
    }

    /// The container is removed.
    pub fn remove(&self) {
        fs::remove_dir_all(&self.dir).expect("remove the container directory");
    }
}

/// The settings every test server starts with; tests add or override.
fn base_env(dir: &Path) -> Vec<(String, String)> {
    let pairs = [
        ("API_KEY", KEY.to_string()),
        ("PORT", "0".to_string()),
        ("BIND", "127.0.0.1".to_string()),
        (
            "DATABASE_PATH",
            dir.join("data/logs.db").display().to_string(),
        ),
        ("LOG_SOURCES", dir.join("containers").display().to_string()),
        ("RATE_LIMIT", "0".to_string()),
        ("POLL_INTERVAL", "0.1".to_string()),
        ("RESCAN_INTERVAL", "0.2".to_string()),
        ("TAIL_BUFFER", "100000000".to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A log-viewer running in this process with its own temporary directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub docker: FakeDocker,
    running: Option<shared::Running>,
    env: Vec<(String, String)>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts with `LOG_SOURCES` created (empty) and `extra` settings.
    pub fn start(extra: &[(&str, &str)]) -> TestServer {
        TestServer::start_with(extra, true, |_| {})
    }

    /// Starts with `LOG_SOURCES` prepared by `prepare` (containers found at the first scan).
    pub fn start_prepared(extra: &[(&str, &str)], prepare: impl FnOnce(&FakeDocker)) -> TestServer {
        TestServer::start_with(extra, true, prepare)
    }

    /// Starts while `LOG_SOURCES` does not exist yet.
    pub fn start_without_sources(extra: &[(&str, &str)]) -> TestServer {
        TestServer::start_with(extra, false, |_| {})
    }

    fn start_with(
        extra: &[(&str, &str)],
        create_sources: bool,
        prepare: impl FnOnce(&FakeDocker),
    ) -> TestServer {
        if std::env::var_os("TEST_LOG").is_some() {
            shared::logging::init(std::env::var("TEST_LOG").ok().as_deref());
        }
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let mut env = base_env(dir.path());
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k.to_string(), v.to_string()));
        }
        let docker = FakeDocker::new(dir.path().join("containers"), dir.path().join("staging"));
        if create_sources {
            docker.create_root();
            prepare(&docker);
        }
        let mut server = TestServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            docker,
            running: None,
            env,
            _dir: dir,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let config = log_viewer::Config::from_env(&shared::config::Env::from_pairs(&self.env))
            .expect("valid test configuration");
        let running = log_viewer::run(config, shared::Shutdown::new())
            .unwrap_or_else(|e| panic!("the log-viewer did not start: {e}"));
        self.addr = running.addr();
        self.running = Some(running);
    }

    /// Stops the service (flushes pending entries, closes the database).
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }

    /// Starts it again on the same database and `LOG_SOURCES`.
    pub fn start_again(&mut self) {
        assert!(self.running.is_none(), "stop the server first");
        self.launch();
    }

    /// The value of a setting the server was started with.
    pub fn setting(&self, name: &str) -> String {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no setting {name}"))
    }

    /// `GET path` with the API key header.
    pub fn get(&self, path: &str) -> HttpResponse {
        testing::get(self.addr, path, Some(KEY))
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }

    /// `GET path` without any key.
    pub fn get_without_key(&self, path: &str) -> HttpResponse {
        testing::get(self.addr, path, None).unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }

    /// `GET path` with the key, expecting `200` and JSON.
    pub fn json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(
            response.status,
            200,
            "GET {path} answered {}: {}",
            response.status,
            response.text()
        );
        response.json()
    }

    /// Every entry matching `query` (an `/api/logs` query string without `limit`), oldest
    /// first, paging with `before_id`.
    pub fn all_logs(&self, query: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let mut path = format!("/api/logs?limit=500&{query}");
            if let Some(b) = before {
                path.push_str(&format!("&before_id={b}"));
            }
            let page = self.json(&path);
            let logs = page["logs"].as_array().cloned().unwrap_or_default();
            let done = logs.len() < 500;
            before = logs.last().and_then(|e| e["id"].as_i64());
            all.extend(logs);
            if done || before.is_none() {
                break;
            }
        }
        all.reverse();
        all
    }

    /// The messages of [`all_logs`](Self::all_logs), oldest first, whole: the text of an
    /// entry the list cut is fetched from `/api/logs/{id}`.
    pub fn messages(&self, query: &str) -> Vec<String> {
        self.all_logs(query)
            .iter()
            .map(|entry| {
                if entry["truncated"] == true {
                    let whole = self.json(&format!("/api/logs/{}", entry["id"]));
                    whole["message"]
                        .as_str()
                        .unwrap_or("<no message>")
                        .to_string()
                } else {
                    entry["message"]
                        .as_str()
                        .unwrap_or("<no message>")
                        .to_string()
                }
            })
            .collect()
    }

    /// Waits until the entries matching `query` are exactly `expected` (oldest first), then
    /// checks they stay so for a few more polls (no late duplicates). Returns the entries.
    pub fn expect_messages(&self, query: &str, expected: &[String]) -> Vec<Value> {
        wait_for(&format!("entries {query:?} to be {expected:#?}"), || {
            let got = self.messages(query);
            if got == expected {
                Ok(())
            } else {
                Err(format!("{got:#?}"))
            }
        });
        self.wait_polls(3);
        let entries = self.all_logs(query);
        assert_eq!(
            self.messages(query),
            expected,
            "entries {query:?} changed after matching"
        );
        entries
    }

    /// Waits until some entry matching `query` satisfies `found`; returns it.
    pub fn wait_for_entry(&self, query: &str, found: impl Fn(&Value) -> bool) -> Value {
        wait_for(&format!("an entry for {query:?}"), || {
            let entries = self.all_logs(query);
            entries
                .iter()
                .find(|e| found(e))
                .cloned()
                .ok_or_else(|| format!("{:#?}", messages(&entries)))
        })
    }

    /// Waits until `query` matches at least `n` entries; returns them (oldest first).
    pub fn wait_for_count(&self, query: &str, n: usize) -> Vec<Value> {
        wait_for(&format!("{n} entries for {query:?}"), || {
            let entries = self.all_logs(query);
            if entries.len() >= n {
                Ok(entries)
            } else {
                Err(format!(
                    "{} entries: {:#?}",
                    entries.len(),
                    messages(&entries)
                ))
            }
        })
    }

    /// Waits until `/api/containers` lists `name` as watched.
    pub fn wait_watching(&self, name: &str) {
        wait_for(&format!("container {name} to be watched"), || {
            let list = self.json("/api/containers");
            let watched = list["containers"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["name"] == name && c["watching"] == true)
            });
            if watched {
                Ok(())
            } else {
                Err(list.to_string())
            }
        });
    }

    /// Waits until a poll has read everything written so far: two more polls completed (the
    /// one under way may have started before the write). Nothing to see in the API yet (a
    /// half line, a piece, the start of a traceback), so the poll count is the condition. It
    /// takes about two poll intervals (0.2 s), well within the 1 s after which an idle
    /// multi-line entry closes.
    pub fn wait_until_read(&self) {
        self.wait_polls(2);
    }

    /// Polls done by the ingestion thread so far (from `/health`).
    pub fn polls(&self) -> u64 {
        let health = self.get("/health").json();
        health["polls"]
            .as_u64()
            .unwrap_or_else(|| panic!("/health has no 'polls': {health}"))
    }

    /// Waits until `n` more polls have completed.
    pub fn wait_polls(&self, n: u64) {
        let target = self.polls() + n;
        wait_for(&format!("{n} more polls"), || {
            let now = self.polls();
            if now >= target {
                Ok(())
            } else {
                Err(format!("polls = {now}, want {target}"))
            }
        });
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `message` of each entry.
pub fn messages(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("<no message>").to_string())
        .collect()
}

/// The `id` of each entry.
pub fn ids(entries: &[Value]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e["id"].as_i64().expect("entry id"))
        .collect()
}

/// Owned strings from literals.
pub fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Option<i64>,
    pub event: String,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {:?}", self.data))
    }

    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_string()
    }
}

/// A raw SSE client on its own TCP connection.
pub struct Sse {
    stream: TcpStream,
    buf: Vec<u8>,
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
}

impl Sse {
    /// Sends `GET target` with `headers` and reads the response head.
    pub fn open(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> io::Result<Sse> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        let mut wire =
            format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            wire.push_str(&format!("{name}: {value}\r\n"));
        }
        wire.push_str("\r\n");
        stream.write_all(wire.as_bytes())?;
        let mut sse = Sse {
            stream,
            buf: Vec::new(),
            status: 0,
            headers: Vec::new(),
        };
        let deadline = Instant::now() + DEADLINE;
        let end = loop {
            if let Some(end) = sse.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no response head; got {:?}",
                        String::from_utf8_lossy(&sse.buf)
                    ),
                ));
            }
            if !sse.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "closed before the head ended: {:?}",
                        String::from_utf8_lossy(&sse.buf)
                    ),
                ));
            }
        };
        let head = String::from_utf8_lossy(&sse.buf[..end]).into_owned();
        sse.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        sse.status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        sse.headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(sse)
    }

    /// `/api/logs/tail?api_key=k&<query>`, expecting a 200 stream.
    pub fn tail(addr: SocketAddr, query: &str, headers: &[(&str, &str)]) -> Sse {
        let target = format!("/api/logs/tail?api_key={KEY}&{query}");
        let sse = Sse::open(addr, &target, headers)
            .unwrap_or_else(|e| panic!("GET {target} failed: {e}"));
        assert_eq!(sse.status, 200, "GET {target}: {:?}", sse.headers);
        sse
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The rest of a non-streaming response (its `content-length` bytes).
    pub fn body(&mut self) -> String {
        let length: usize = self
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let deadline = Instant::now() + DEADLINE;
        while self.buf.len() < length && Instant::now() < deadline {
            if !self.fill().unwrap_or(false) {
                break;
            }
        }
        String::from_utf8_lossy(&self.buf[..length.min(self.buf.len())]).into_owned()
    }

    /// Reads what is available (waits up to the 100 ms read timeout). `Ok(false)` at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// The next event with an `event:` or `data:` field (comments and `retry:` skipped),
    /// waiting at most `timeout`. `None` on timeout or when the stream ended.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                let mut event = Event {
                    id: None,
                    event: String::new(),
                    data: String::new(),
                };
                let mut has_fields = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                        has_fields = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_fields = true;
                    }
                }
                if has_fields {
                    return Some(event);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) | Err(_) => return None,
            }
        }
    }

    /// The next `event: log` (heartbeats skipped), waiting at most [`DEADLINE`].
    pub fn next_log(&mut self) -> Option<Event> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next_event(left)?;
            if event.event == "log" {
                return Some(event);
            }
        }
    }

    /// `n` log events, or a panic saying what arrived.
    pub fn logs(&mut self, n: usize) -> Vec<Event> {
        let mut got = Vec::new();
        while got.len() < n {
            match self.next_log() {
                Some(event) => got.push(event),
                None => panic!(
                    "expected {n} log events within {DEADLINE:?}, got {}: {:#?}",
                    got.len(),
                    got.iter().map(Event::message).collect::<Vec<_>>()
                ),
            }
        }
        got
    }
}
