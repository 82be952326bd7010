//! `bench-attack`: starts the release `error-tracker` and `log-viewer` binaries and attacks
//! them, one attack per fresh service instance, measuring for each
//!
//! - the service's peak resident memory (`VmRSS` sampled every 50 ms during the attack, and
//!   `VmHWM` at its end), and
//! - whether `GET /health` (a new connection every 250 ms, 2 s to answer) answered
//!   throughout.
//!
//! It only measures: how the engine refuses (503, 408, 431, a close) may change, and every
//! answer is counted, never asserted. Every attack is bounded in connections, requests and
//! time (`--seconds`), and all traffic stays on 127.0.0.0/8.
//!
//! Build first: `cargo build --release -p error-tracker -p log-viewer -p bench`, then run
//! `./target/release/bench-attack [--seconds S] [--error-tracker PATH] [--log-viewer PATH]`.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bench::args::Args;
use bench::client::{connection_close, request_bytes, Client};
use bench::procfs;
use bench::service::Service;
use bench::stats::{format_count, format_mib};

/// The API key both services are started with.
const API_KEY: &str = "bench";
/// `MAX_CONNECTIONS` of every instance, and the connections of the slowloris attack.
const MAX_CONNECTIONS: usize = 1024;
/// The services' default `MAX_BODY_SIZE`s, set explicitly so the attacks know them.
const ERROR_TRACKER_MAX_BODY: usize = 256 * 1024;
const LOG_VIEWER_MAX_BODY: usize = 64 * 1024;
/// Connections sending whole `MAX_BODY_SIZE` bodies back to back.
const BODY_SENDERS: usize = 64;
/// Connections sending a `MAX_BODY_SIZE` body slowly, and heads near the size limit.
const SLOW_CONNECTIONS: usize = 512;
/// Bytes each slow-body connection sends per second.
const SLOW_BODY_RATE: usize = 256;
/// A head this long (request line and headers, without the blank line that ends it): just
/// under the engine's 16 KiB head limit at the time of writing.
const BIG_HEAD: usize = 16 * 1024 - 512;
/// `RATE_LIMIT` of the rate-limiter flood, and the distinct source addresses it uses at most.
const FLOOD_RATE_LIMIT: u32 = 60;
const FLOOD_ADDRESSES: u64 = 200_000;
/// Client threads of the rate-limiter flood and of the long-message queries.
const FLOOD_THREADS: usize = 4;
const QUERY_THREADS: usize = 4;
/// Live-tail subscribers that never read, their receive buffer, and the line they are fed.
const TAIL_SUBSCRIBERS: usize = 64;
const TAIL_RCVBUF: usize = 4096;
const LONG_LINE: usize = 64 * 1024;
/// Long lines appended per second during the live-tail attack.
const LONG_LINES_PER_SECOND: u64 = 50;
/// Long lines stored before the long-message queries, and how long storing them may take.
const STORED_LONG_LINES: u64 = 600;
const INGEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Ingestion counts as done when the count of stored entries has not changed for this long.
const INGEST_SETTLED: Duration = Duration::from_secs(3);
/// Docker's `json-file` driver splits a line into pieces of this many bytes.
const DOCKER_PIECE: usize = 16 * 1024;
/// The fake container.
const CONTAINER_ID: &str = "a77ac4e2b6d44f1e9c0d8b3f5e6a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b";
const CONTAINER_NAME: &str = "bench_attack";
/// Health probes: how often, and how long one may take.
const PROBE_EVERY: Duration = Duration::from_millis(250);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Resident memory samples.
const RSS_EVERY: Duration = Duration::from_millis(50);
/// Connect timeout of every attacking connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

const USAGE: &str = "\
Usage: bench-attack [--seconds S] [--error-tracker PATH] [--log-viewer PATH]

Build first: cargo build --release -p error-tracker -p log-viewer -p bench

  --seconds S            length of each attack (default 15)
  --error-tracker PATH   the error-tracker binary (default: next to this program, else
                         target/release/error-tracker)
  --log-viewer PATH      the log-viewer binary (likewise)

Prints a Markdown table on stdout; progress goes to stderr.";

/// Command-line options.
struct Options {
    /// Length of each attack.
    seconds: Duration,
    /// The `error-tracker` binary.
    error_tracker: PathBuf,
    /// The `log-viewer` binary.
    log_viewer: PathBuf,
}

impl Options {
    /// Parses the arguments; exits with the usage on `--help` or a bad argument.
    fn from_args() -> Options {
        let mut options = Options {
            seconds: Duration::from_secs(15),
            error_tracker: bench::service::release_binary("error-tracker"),
            log_viewer: bench::service::release_binary("log-viewer"),
        };
        let mut args = Args::new("bench-attack", USAGE);
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--seconds" => {
                    let seconds: u64 = args.number(&flag);
                    options.seconds = Duration::from_secs(seconds.clamp(1, 120));
                }
                "--error-tracker" => options.error_tracker = args.value(&flag).into(),
                "--log-viewer" => options.log_viewer = args.value(&flag).into(),
                _ => args.unknown(&flag),
            }
        }
        let build = "cargo build --release -p error-tracker -p log-viewer -p bench";
        for binary in [&mut options.error_tracker, &mut options.log_viewer] {
            *binary = args.binary(binary, build);
        }
        options
    }
}

fn progress(message: &str) {
    eprintln!("bench-attack: {message}");
}

/// Which service an attack runs against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    ErrorTracker,
    LogViewer,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::ErrorTracker => "error-tracker",
            Target::LogViewer => "log-viewer",
        }
    }

    fn max_body(self) -> usize {
        match self {
            Target::ErrorTracker => ERROR_TRACKER_MAX_BODY,
            Target::LogViewer => LOG_VIEWER_MAX_BODY,
        }
    }

    /// A request that takes a body and reaches the handler (the log-viewer has no `POST`
    /// route; a `GET` with a body is read all the same).
    fn body_request_line(self) -> &'static str {
        match self {
            Target::ErrorTracker => "POST /api/errors",
            Target::LogViewer => "GET /api/logs?limit=1",
        }
    }

    /// A cheap authenticated `GET` under `/api/` (rate limited).
    fn api_path(self) -> &'static str {
        match self {
            Target::ErrorTracker => "/api/errors?limit=1",
            Target::LogViewer => "/api/containers",
        }
    }
}

/// A service instance started for one attack, with its own temporary directory.
struct Instance {
    service: Service,
    /// The fake container's log (log-viewer only).
    container_log: Option<PathBuf>,
}

/// Starts a fresh instance of `target` with `rate_limit` (0 = off).
fn start(options: &Options, target: Target, rate_limit: u32) -> Instance {
    let dir = tempfile::Builder::new()
        .prefix("monlight-attack-")
        .tempdir()
        .expect("cannot create a temporary directory");
    let mut env = vec![
        ("API_KEY", API_KEY.to_string()),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("RATE_LIMIT", rate_limit.to_string()),
        ("LOG_LEVEL", "info".to_string()),
        ("MAX_CONNECTIONS", MAX_CONNECTIONS.to_string()),
        ("MAX_BODY_SIZE", target.max_body().to_string()),
    ];
    let (binary, container_log) = match target {
        Target::ErrorTracker => {
            let db = dir.path().join("errors.db");
            env.push(("DATABASE_PATH", db.display().to_string()));
            (&options.error_tracker, None)
        }
        Target::LogViewer => {
            let containers = dir.path().join("containers");
            let log = bench::docker::create_container(
                &containers,
                CONTAINER_ID,
                CONTAINER_NAME,
                "attack:1",
            );
            env.push((
                "DATABASE_PATH",
                dir.path().join("logs.db").display().to_string(),
            ));
            env.push(("LOG_SOURCES", containers.display().to_string()));
            env.push(("POLL_INTERVAL", "0.2".to_string()));
            (&options.log_viewer, Some(log))
        }
    };
    let service = Service::start(binary, &env, dir);
    Instance {
        service,
        container_log,
    }
}

/// Samples the service's memory and probes `GET /health` while an attack runs.
struct Monitor {
    stop: Arc<AtomicBool>,
    rss: thread::JoinHandle<u64>,
    health: thread::JoinHandle<HealthTally>,
}

/// What the health probes saw.
#[derive(Default)]
struct HealthTally {
    probes: u64,
    answered: u64,
    slowest: Duration,
}

impl Monitor {
    fn start(service: &Service) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = service.pid();
        let addr = service.addr();
        let rss_stop = Arc::clone(&stop);
        let rss = thread::spawn(move || {
            let mut peak = 0;
            while !rss_stop.load(Ordering::Relaxed) {
                peak = peak.max(procfs::status_kib(pid, "VmRSS").unwrap_or(0));
                thread::sleep(RSS_EVERY);
            }
            peak
        });
        let health_stop = Arc::clone(&stop);
        let health = thread::spawn(move || {
            let mut tally = HealthTally::default();
            while !health_stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                tally.probes += 1;
                if probe_health(addr) {
                    tally.answered += 1;
                }
                tally.slowest = tally.slowest.max(began.elapsed());
                thread::sleep(PROBE_EVERY.saturating_sub(began.elapsed()));
            }
            tally
        });
        Monitor { stop, rss, health }
    }

    /// Stops sampling; returns the largest `VmRSS` sample and the health tally.
    fn finish(self) -> (u64, HealthTally) {
        self.stop.store(true, Ordering::Relaxed);
        let rss = self.rss.join().expect("the RSS sampler panicked");
        let health = self.health.join().expect("the health prober panicked");
        (rss, health)
    }
}

/// `GET /health` on a new connection: whether it answered 200 within `PROBE_TIMEOUT`.
fn probe_health(addr: SocketAddr) -> bool {
    let attempt = || -> io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
        stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
        stream.set_write_timeout(Some(PROBE_TIMEOUT))?;
        stream.write_all(&connection_close(&request_bytes(
            "GET", "/health", None, None,
        )))?;
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok(head.starts_with(b"HTTP/1.1 200"))
    };
    attempt().unwrap_or(false)
}

/// One line of the report.
struct Row {
    attack: String,
    service: &'static str,
    /// Largest `VmRSS` sample during the attack.
    peak_sampled_kib: u64,
    /// `VmHWM` at the end of the attack (the instance's lifetime peak).
    hwm_kib: u64,
    health: HealthTally,
    notes: String,
}

/// Runs `attack` against a fresh instance of `target` under a [`Monitor`], then stops it.
fn run(
    options: &Options,
    target: Target,
    rate_limit: u32,
    attack: &str,
    body: impl FnOnce(&Instance, Instant) -> String,
) -> Row {
    progress(&format!("{attack} against {}", target.name()));
    let instance = start(options, target, rate_limit);
    let monitor = Monitor::start(&instance.service);
    let notes = body(&instance, Instant::now() + options.seconds);
    let (peak_sampled_kib, health) = monitor.finish();
    let hwm_kib = procfs::status_kib(instance.service.pid(), "VmHWM").unwrap_or(0);
    let (problems, count) = instance.service.problems();
    let (status, _) = instance.service.stop();
    let mut notes = notes;
    if count > 0 {
        let first = problems.first().map_or("", String::as_str);
        notes.push_str(&format!("; {count} WARN/ERROR log lines, first: `{first}`"));
    }
    if !status.success() {
        notes.push_str(&format!("; **exit: {status}**"));
    }
    Row {
        attack: attack.to_string(),
        service: target.name(),
        peak_sampled_kib,
        hwm_kib,
        health,
        notes,
    }
}

/// Counts of what happened to a set of held connections.
#[derive(Default)]
struct HeldTally {
    opened: u64,
    failed_connects: u64,
    closed_by_server: u64,
    /// The first line of the first few answers the server sent (e.g. `HTTP/1.1 503 ...`).
    answers: Vec<String>,
}

impl HeldTally {
    fn describe(&self, open_at_end: usize) -> String {
        format!(
            "{} connections opened ({} connects failed), {} closed by the server, {open_at_end} open at the end; answers seen: {}",
            format_count(self.opened),
            format_count(self.failed_connects),
            format_count(self.closed_by_server),
            if self.answers.is_empty() {
                "none".to_string()
            } else {
                self.answers.join(", ")
            }
        )
    }
}

/// One connection that sends `prefix` at once, then `trickle` bytes every second.
struct Held {
    stream: TcpStream,
    sent_of_trickle: usize,
}

/// Holds up to `count` connections that each send `prefix` and then `per_second` bytes of
/// `trickle` (repeated) every second until `deadline`; a connection the server closes is
/// opened again (at most once per connection per second).
fn hold_connections(
    addr: SocketAddr,
    count: usize,
    prefix: &[u8],
    trickle: &[u8],
    per_second: usize,
    deadline: Instant,
) -> String {
    let mut tally = HeldTally::default();
    let mut held: Vec<Option<Held>> = (0..count).map(|_| None).collect();
    while Instant::now() < deadline {
        let round = Instant::now();
        for slot in held.iter_mut() {
            if Instant::now() >= deadline {
                break;
            }
            if slot.is_none() {
                *slot = open_held(addr, prefix, &mut tally);
                continue;
            }
            let Some(conn) = slot.as_mut() else { continue };
            if server_answered_or_closed(&mut conn.stream, &mut tally) {
                *slot = None;
                continue;
            }
            let piece: Vec<u8> = (0..per_second)
                .map(|i| trickle[(conn.sent_of_trickle + i) % trickle.len()])
                .collect();
            match (&conn.stream).write(&piece) {
                Ok(n) => conn.sent_of_trickle += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    tally.closed_by_server += 1;
                    *slot = None;
                }
            }
        }
        thread::sleep(
            Duration::from_secs(1)
                .saturating_sub(round.elapsed())
                .min(deadline.saturating_duration_since(Instant::now())),
        );
    }
    let open_at_end = held.iter().filter(|slot| slot.is_some()).count();
    tally.describe(open_at_end)
}

fn open_held(addr: SocketAddr, prefix: &[u8], tally: &mut HeldTally) -> Option<Held> {
    let opened = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).and_then(|mut stream| {
        stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
        stream.write_all(prefix)?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    });
    match opened {
        Ok(stream) => {
            tally.opened += 1;
            Some(Held {
                stream,
                sent_of_trickle: 0,
            })
        }
        Err(_) => {
            tally.failed_connects += 1;
            None
        }
    }
}

/// Whether the server wrote something (an error answer) or closed the (non-blocking)
/// connection; keeps the first few answers' status lines.
fn server_answered_or_closed(stream: &mut TcpStream, tally: &mut HeldTally) -> bool {
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(0) => {
            tally.closed_by_server += 1;
            true
        }
        Ok(n) => {
            let text = String::from_utf8_lossy(&buf[..n]);
            let status = text.lines().next().unwrap_or("").to_string();
            if tally.answers.len() < 3 && !tally.answers.contains(&status) {
                tally.answers.push(status);
            }
            tally.closed_by_server += 1;
            true
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => {
            tally.closed_by_server += 1;
            true
        }
    }
}

/// (a) `MAX_CONNECTIONS` connections each sending one more header byte per second.
fn slowloris(instance: &Instance, target: Target, deadline: Instant) -> String {
    let prefix = format!(
        "{} HTTP/1.1\r\nHost: attack\r\nX-Api-Key: {API_KEY}\r\nX-Slow: ",
        target.body_request_line()
    );
    hold_connections(
        instance.service.addr(),
        MAX_CONNECTIONS,
        prefix.as_bytes(),
        b"a",
        1,
        deadline,
    )
}

/// A body of exactly `size` bytes: for the error-tracker a valid report whose message fills
/// it, otherwise a JSON string.
fn max_body(target: Target, size: usize) -> Vec<u8> {
    let skeleton = match target {
        Target::ErrorTracker => {
            r#"{"project":"attack","exception_type":"ValueError","message":"@","traceback":"Traceback (most recent call last):\nValueError: x\n"}"#
        }
        Target::LogViewer => r#"{"filler":"@"}"#,
    };
    let filler = "x".repeat(size.saturating_sub(skeleton.len() - 1));
    skeleton.replace('@', &filler).into_bytes()
}

/// (b1) `BODY_SENDERS` connections sending `MAX_BODY_SIZE` bodies back to back.
fn big_bodies(instance: &Instance, target: Target, deadline: Instant) -> String {
    let body = max_body(target, target.max_body());
    let (method, path) = target
        .body_request_line()
        .split_once(' ')
        .expect("a method and a path");
    let request = request_bytes(method, path, Some(API_KEY), Some(&body));
    let statuses = Mutex::new(std::collections::BTreeMap::<String, u64>::new());
    let addr = instance.service.addr();
    thread::scope(|scope| {
        for _ in 0..BODY_SENDERS {
            scope.spawn(|| {
                let mut client = None;
                while Instant::now() < deadline {
                    let outcome = match client.as_mut() {
                        Some(client) => Client::send(client, &request),
                        None => match Client::connect(addr) {
                            Ok(new) => Client::send(client.insert(new), &request),
                            Err(e) => Err(e),
                        },
                    };
                    let key = match outcome {
                        Ok(reply) => reply.status.to_string(),
                        Err(_) => {
                            client = None;
                            thread::sleep(Duration::from_millis(10));
                            "connection error".to_string()
                        }
                    };
                    *lock(&statuses).entry(key).or_default() += 1;
                }
            });
        }
    });
    let statuses = lock(&statuses);
    format!(
        "{BODY_SENDERS} connections, {} KiB bodies; answers: {}",
        target.max_body() / 1024,
        describe_counts(&statuses)
    )
}

/// (b2) `SLOW_CONNECTIONS` connections declaring a `MAX_BODY_SIZE` body and sending it at
/// `SLOW_BODY_RATE` bytes per second.
fn slow_bodies(instance: &Instance, target: Target, deadline: Instant) -> String {
    let head = format!(
        "{} HTTP/1.1\r\nHost: attack\r\nX-Api-Key: {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        target.body_request_line(),
        target.max_body()
    );
    let body = max_body(target, target.max_body());
    let notes = hold_connections(
        instance.service.addr(),
        SLOW_CONNECTIONS,
        head.as_bytes(),
        &body,
        SLOW_BODY_RATE,
        deadline,
    );
    format!("{SLOW_BODY_RATE} B/s each; {notes}")
}

/// (c) `SLOW_CONNECTIONS` connections each sending a head of `BIG_HEAD` bytes, without the
/// blank line that ends it, then one more header byte per second.
fn big_heads(instance: &Instance, target: Target, deadline: Instant) -> String {
    let mut head = format!(
        "{} HTTP/1.1\r\nHost: attack\r\nX-Api-Key: {API_KEY}\r\n",
        target.body_request_line()
    );
    let mut n = 0;
    while head.len() + 300 < BIG_HEAD {
        head.push_str(&format!("X-Pad-{n:02}: {}\r\n", "p".repeat(250)));
        n += 1;
    }
    head.push_str("X-Last: ");
    head.push_str(&"q".repeat(BIG_HEAD.saturating_sub(head.len())));
    let notes = hold_connections(
        instance.service.addr(),
        SLOW_CONNECTIONS,
        head.as_bytes(),
        b"q",
        1,
        deadline,
    );
    format!("{} B heads, {n} headers; {notes}", head.len())
}

/// The `i`-th flood source address: 127.1.0.0 upwards (never 127.0.0.x).
fn flood_source(i: u64) -> Ipv4Addr {
    let n = (1u64 << 16) + i;
    Ipv4Addr::new(
        127,
        ((n >> 16) & 0xff) as u8,
        ((n >> 8) & 0xff) as u8,
        (n & 0xff) as u8,
    )
}

/// One request from source address `source` on a new connection; its status.
fn request_from(source: Ipv4Addr, addr: SocketAddr, request: &[u8]) -> io::Result<u16> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    socket.connect_timeout(&addr.into(), CONNECT_TIMEOUT)?;
    let mut stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    stream.write_all(request)?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    let status = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|text| text.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok(status)
}

/// (d) Requests from up to `FLOOD_ADDRESSES` distinct source addresses, one new address per
/// request, with `RATE_LIMIT` on: every address is a new entry in the rate limiter's table.
fn rate_limit_flood(instance: &Instance, target: Target, deadline: Instant) -> String {
    let request = connection_close(&request_bytes(
        "GET",
        target.api_path(),
        Some(API_KEY),
        None,
    ));
    let next = AtomicU64::new(0);
    let statuses = Mutex::new(std::collections::BTreeMap::<String, u64>::new());
    let addr = instance.service.addr();
    thread::scope(|scope| {
        for _ in 0..FLOOD_THREADS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= FLOOD_ADDRESSES || Instant::now() >= deadline {
                    break;
                }
                let key = match request_from(flood_source(i), addr, &request) {
                    Ok(status) => status.to_string(),
                    Err(_) => "connection error".to_string(),
                };
                *lock(&statuses).entry(key).or_default() += 1;
            });
        }
    });
    let used = next.load(Ordering::Relaxed).min(FLOOD_ADDRESSES);
    format!(
        "RATE_LIMIT={FLOOD_RATE_LIMIT}, {} distinct source addresses (127.1.0.0 up); answers: {}",
        format_count(used),
        describe_counts(&lock(&statuses))
    )
}

/// One Docker `json-file` record per piece of a `LONG_LINE`-byte line (`seq` makes each
/// line different): pieces of `DOCKER_PIECE` bytes, only the last one ending in `\n`.
fn long_line_records(seq: u64) -> Vec<u8> {
    let text = format!("{seq:08} ERROR {}", "long-message ".repeat(LONG_LINE / 13));
    let text = &text[..LONG_LINE.min(text.len())];
    let mut out = Vec::with_capacity(LONG_LINE + 512);
    let pieces: Vec<&str> = text
        .as_bytes()
        .chunks(DOCKER_PIECE)
        .map(|piece| std::str::from_utf8(piece).expect("ASCII"))
        .collect();
    let (h, m, s) = (seq / 3600 % 24, seq / 60 % 60, seq % 60);
    for (i, piece) in pieces.iter().enumerate() {
        let newline = if i + 1 == pieces.len() { "\\n" } else { "" };
        out.extend_from_slice(
            format!(
                "{{\"log\":\"{piece}{newline}\",\"stream\":\"stderr\",\"time\":\"2026-01-20T{h:02}:{m:02}:{s:02}.{:09}Z\"}}\n",
                i
            )
            .as_bytes(),
        );
    }
    out
}

/// Appends long lines to the container log at `per_second` until `count` lines or
/// `deadline`; returns how many were written.
fn append_long_lines(
    log: &Path,
    first: u64,
    count: u64,
    per_second: u64,
    deadline: Instant,
) -> u64 {
    let mut file = OpenOptions::new()
        .append(true)
        .open(log)
        .expect("cannot open the container log");
    let began = Instant::now();
    let mut written = 0;
    while written < count && Instant::now() < deadline {
        file.write_all(&long_line_records(first + written))
            .expect("cannot append to the container log");
        written += 1;
        if per_second > 0 {
            let due = began + Duration::from_secs_f64(written as f64 / per_second as f64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    written
}

/// A live-tail subscriber with a small receive buffer, its request sent; the caller never
/// reads from it. `None` when the connection failed.
fn open_subscriber(addr: SocketAddr) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    socket.set_recv_buffer_size(TAIL_RCVBUF).ok()?;
    socket.connect_timeout(&addr.into(), CONNECT_TIMEOUT).ok()?;
    let mut stream: TcpStream = socket.into();
    let path = format!("/api/logs/tail?api_key={API_KEY}");
    stream
        .write_all(&request_bytes("GET", &path, None, None))
        .ok()?;
    Some(stream)
}

/// (e1) `TAIL_SUBSCRIBERS` live-tail subscribers that never read, while long lines are
/// appended to the container log.
fn silent_subscribers(instance: &Instance, deadline: Instant) -> String {
    let addr = instance.service.addr();
    let subscribers: Vec<TcpStream> = (0..TAIL_SUBSCRIBERS)
        .filter_map(|_| open_subscriber(addr))
        .collect();
    let log = instance
        .container_log
        .as_ref()
        .expect("a log-viewer instance");
    let total = LONG_LINES_PER_SECOND * 120;
    let written = append_long_lines(log, 0, total, LONG_LINES_PER_SECOND, deadline);
    // What each subscriber's socket holds unread: an answer (e.g. a refusal) or the stream.
    let mut refused = 0;
    for stream in &subscribers {
        let mut buf = [0u8; 64];
        let _ = stream.set_nonblocking(true);
        if let Ok(n) = (&*stream).read(&mut buf) {
            if n > 0 && !buf[..n].starts_with(b"HTTP/1.1 200") {
                refused += 1;
            }
        }
    }
    format!(
        "{} subscribers connected ({refused} answered other than 200), receive buffer {TAIL_RCVBUF} B, never read; {} lines of {} KiB appended at {LONG_LINES_PER_SECOND}/s",
        subscribers.len(),
        format_count(written),
        LONG_LINE / 1024
    )
}

/// (e2) Stores `STORED_LONG_LINES` long lines (waiting at most `INGEST_TIMEOUT`), then
/// `GET /api/logs?limit=500` from `QUERY_THREADS` clients for the attack's length.
fn long_message_queries(instance: &Instance, deadline: Instant) -> String {
    let length = deadline.saturating_duration_since(Instant::now());
    let log = instance
        .container_log
        .as_ref()
        .expect("a log-viewer instance");
    let ingest_deadline = Instant::now() + INGEST_TIMEOUT;
    let written = append_long_lines(log, 0, STORED_LONG_LINES, 0, ingest_deadline);
    let addr = instance.service.addr();
    // Wait until the entries ever stored (`tail_cursor`, the ingest sequence) reach the lines
    // written, or stop growing for `INGEST_SETTLED` (multiline joining may make fewer entries
    // than lines). Entry ids sort as time, so they count nothing.
    let mut stored = 0;
    let mut changed = Instant::now();
    let request = request_bytes("GET", "/api/logs?limit=1", Some(API_KEY), None);
    while Instant::now() < ingest_deadline {
        let newest = Client::connect(addr)
            .and_then(|mut client| client.send(&request))
            .ok()
            .and_then(|reply| reply.json()["tail_cursor"].as_u64())
            .unwrap_or(0);
        if newest != stored {
            stored = newest;
            changed = Instant::now();
        }
        if stored >= written || (stored > 0 && changed.elapsed() >= INGEST_SETTLED) {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + length;
    let query = request_bytes("GET", "/api/logs?limit=500", Some(API_KEY), None);
    let queries = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    thread::scope(|scope| {
        for _ in 0..QUERY_THREADS {
            scope.spawn(|| {
                let Ok(mut client) = Client::connect(addr) else {
                    return;
                };
                while Instant::now() < deadline {
                    match client.send(&query) {
                        Ok(reply) => {
                            queries.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(reply.body.len() as u64, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
            });
        }
    });
    let queries = queries.load(Ordering::Relaxed);
    format!(
        "{} lines of {} KiB written, {} entries stored (ingestion included in the peak) before the queries; {} queries from {QUERY_THREADS} clients, {:.1} MiB per answer on average",
        format_count(written),
        LONG_LINE / 1024,
        format_count(stored),
        format_count(queries),
        bytes.load(Ordering::Relaxed) as f64 / queries.max(1) as f64 / 1024.0 / 1024.0
    )
}

fn describe_counts(counts: &std::collections::BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(key, n)| format!("{key} × {}", format_count(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Raises this process's open-files limit to its hard limit (the attacks hold over a
/// thousand sockets).
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let options = Options::from_args();
    raise_open_files();
    let mut rows = Vec::new();
    for target in [Target::ErrorTracker, Target::LogViewer] {
        rows.push(run(&options, target, 0, "(a) slowloris", |i, d| {
            slowloris(i, target, d)
        }));
        rows.push(run(
            &options,
            target,
            0,
            "(b1) MAX_BODY_SIZE bodies",
            |i, d| big_bodies(i, target, d),
        ));
        rows.push(run(&options, target, 0, "(b2) slow bodies", |i, d| {
            slow_bodies(i, target, d)
        }));
        rows.push(run(
            &options,
            target,
            0,
            "(c) heads near the limit",
            |i, d| big_heads(i, target, d),
        ));
        rows.push(run(
            &options,
            target,
            FLOOD_RATE_LIMIT,
            "(d) rate-limiter flood",
            |i, d| rate_limit_flood(i, target, d),
        ));
    }
    rows.push(run(
        &options,
        Target::LogViewer,
        0,
        "(e1) silent live-tail subscribers",
        silent_subscribers,
    ));
    rows.push(run(
        &options,
        Target::LogViewer,
        0,
        "(e2) `GET /api/logs?limit=500` over long messages",
        long_message_queries,
    ));
    print_report(&options, &rows);
}

fn print_report(options: &Options, rows: &[Row]) {
    println!("## attack benchmark\n");
    println!(
        "- binaries: `{}`, `{}`",
        options.error_tracker.display(),
        options.log_viewer.display()
    );
    println!(
        "- every attack on a fresh instance with `MAX_CONNECTIONS={MAX_CONNECTIONS}`, `MAX_BODY_SIZE` = the service's default (error-tracker {} KiB, log-viewer {} KiB), `RATE_LIMIT=0` except (d); each attack lasts {} s",
        ERROR_TRACKER_MAX_BODY / 1024,
        LOG_VIEWER_MAX_BODY / 1024,
        options.seconds.as_secs()
    );
    println!(
        "- peak RSS: the largest `VmRSS` sampled every {} ms during the attack, and `VmHWM` at its end; health: `GET /health` on a new connection every {} ms, answered = 200 within {} s\n",
        RSS_EVERY.as_millis(),
        PROBE_EVERY.as_millis(),
        PROBE_TIMEOUT.as_secs()
    );
    println!("| attack | service | peak RSS (sampled / `VmHWM`) | health answered | notes |");
    println!("|---|---|---:|---|---|");
    for row in rows {
        let health = &row.health;
        let answered = if health.probes > 0 && health.answered == health.probes {
            format!(
                "yes ({} probes, slowest {} ms)",
                health.probes,
                health.slowest.as_millis()
            )
        } else {
            format!(
                "**no**: {} of {} probes (slowest {} ms)",
                health.answered,
                health.probes,
                health.slowest.as_millis()
            )
        };
        println!(
            "| {} | {} | {} / {} | {answered} | {} |",
            row.attack,
            row.service,
            format_mib(row.peak_sampled_kib),
            format_mib(row.hwm_kib),
            row.notes
        );
    }
}
