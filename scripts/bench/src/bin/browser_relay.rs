//! `bench-browser-relay`: starts the release `browser-relay` binary (with real release
//! `error-tracker` and `metrics-collector` binaries as its upstreams where they are needed)
//! and measures
//!
//! 1. `POST /api/browser/errors` acceptance (DSN key, ~1.5 KB reports with a 20-frame V8
//!    stack) at 1 and 8 keep-alive clients, without a release and with every frame rewritten
//!    through an uploaded source map, and `POST /api/browser/metrics` batches of 100, with the
//!    upstreams pointing at a closed port so that forwarding does not compete;
//! 2. the same error reports at 8 clients with live upstreams, forwarding meanwhile;
//! 3. a backlog built while the upstreams are down, then how fast the outbox drains into a
//!    live error-tracker (errors/s) and metrics-collector (points/s);
//! 4. a stress backlog of reports at the body limit (~61 KB) with the upstreams down;
//! 5. every instance's idle and peak resident memory (`VmRSS`, `VmHWM`), the backlog
//!    instance's sampled `VmRSS` while it builds and drains;
//! 6. the exit status and stop time after SIGTERM.
//!
//! It prints a Markdown report on stdout (progress goes to stderr). Build first:
//! `cargo build --release -p browser-relay -p error-tracker -p metrics-collector -p bench`,
//! then run `./target/release/bench-browser-relay [--seconds S] [--backlog N] ...`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bench::args::Args;
use bench::client::{request_bytes, request_with_headers, Client};
use bench::load::{Limits, MakeRequest, Phase, PhaseResult};
use bench::procfs;
use bench::report::{describe_busy, load_average, verdict};
use bench::service::Service;
use bench::stats::{format_count, format_mib, format_ms};
use serde_json::{json, Value};
use sourcemap::SourceMapBuilder;

/// `ADMIN_API_KEY` of the relay.
const ADMIN_KEY: &str = "bench-admin";
/// The DSN key seeded with `DSN_KEYS=bench:<key>` (32 hex characters, like a created one).
const DSN_KEY: &str = "5f0c3a9e81d24b67a9c1e0f4d3b2a190";
/// The project of that key.
const PROJECT: &str = "bench";
/// `API_KEY` of the error-tracker and the metrics-collector (and the relay's keys for them).
const UPSTREAM_KEY: &str = "bench";
/// The release the source map is uploaded for, and the script it maps.
const RELEASE: &str = "1.0.0";
const SCRIPT_URL: &str = "https://cdn.example.com/app.min.js";
/// Frames in every stack.
const FRAMES: usize = 20;
/// The generated minified script: lines, mapped tokens per line and the column step
/// between them.
const MAP_LINES: u32 = 2_000;
const MAP_TOKENS_PER_LINE: u32 = 8;
const MAP_COLUMN_STEP: u32 = 40;
/// Original files and function names in the map.
const MAP_SOURCES: u32 = 60;
const MAP_NAMES: u32 = 600;
/// Different pre-rendered requests each kind cycles through.
const DISTINCT_BODIES: usize = 1_000;
/// Metric points per `POST /api/browser/metrics` (the relay's maximum).
const METRICS_PER_BATCH: usize = 100;
/// Upper bound of requests per load phase (the time limit usually ends it first).
const PHASE_REQUESTS: u64 = 200_000;
/// Unmeasured requests before the first phase of each kind.
const WARMUP_REQUESTS: u64 = 500;
/// `FORWARD_QUEUE`: large enough that no phase fills the outbox.
const FORWARD_QUEUE: u64 = 1_000_000;
/// Metric batches in the backlog (each one outbox entry of 100 points).
const BACKLOG_METRIC_BATCHES: u64 = 1_000;
/// The stress backlog: reports of ~60 KB (just under `MAX_BODY_SIZE`, 64 KiB), and how long
/// the relay is watched afterwards (its forwarder retries after 1 s, then 2 s).
const LARGE_REPORTS: u64 = 400;
const LARGE_MESSAGE_BYTES: usize = 60_000;
const LARGE_WATCH: Duration = Duration::from_secs(4);
/// How often `/health` and `VmRSS` are sampled while the backlog drains.
const POLL: Duration = Duration::from_millis(10);
const RSS_SAMPLE: Duration = Duration::from_millis(20);
/// Targets from the issue.
const TARGET_ACCEPT_8: f64 = 8_500.0;
const TARGET_PEAK_KIB: u64 = 20 * 1024;
/// What the other services' idle memory is held to (informative here).
const IDLE_REFERENCE_KIB: u64 = 8 * 1024;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// Command-line options.
struct Options {
    relay: PathBuf,
    error_tracker: PathBuf,
    metrics_collector: PathBuf,
    /// Time limit of each load phase.
    phase_time: Duration,
    /// Error reports in the backlog.
    backlog: u64,
    /// Give up waiting for a drain after this long.
    timeout: Duration,
}

const USAGE: &str = "\
Usage: bench-browser-relay [--binary PATH] [--error-tracker PATH] [--metrics-collector PATH]
                           [--seconds S] [--backlog N] [--timeout S]

Build first:
  cargo build --release -p browser-relay -p error-tracker -p metrics-collector -p bench

  --binary PATH             the browser-relay binary (default: next to this program, else
                            target/release/browser-relay)
  --error-tracker PATH      the error-tracker binary (same default rule)
  --metrics-collector PATH  the metrics-collector binary (same default rule)
  --seconds S               time limit of each load phase (default 5)
  --backlog N               error reports queued while the upstreams are down (default 10000)
  --timeout S               give up waiting for the backlog to drain after S s (default 300)

Prints a Markdown report on stdout; progress goes to stderr.";

impl Options {
    fn from_args() -> Options {
        let mut options = Options {
            relay: bench::service::release_binary("browser-relay"),
            error_tracker: bench::service::release_binary("error-tracker"),
            metrics_collector: bench::service::release_binary("metrics-collector"),
            phase_time: Duration::from_secs(5),
            backlog: 10_000,
            timeout: Duration::from_secs(300),
        };
        let mut args = Args::new("bench-browser-relay", USAGE);
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--binary" => options.relay = args.value(&flag).into(),
                "--error-tracker" => options.error_tracker = args.value(&flag).into(),
                "--metrics-collector" => options.metrics_collector = args.value(&flag).into(),
                "--seconds" => options.phase_time = args.seconds(&flag),
                "--backlog" => options.backlog = args.number(&flag),
                "--timeout" => options.timeout = args.seconds(&flag),
                _ => args.unknown(&flag),
            }
        }
        let build =
            "cargo build --release -p browser-relay -p error-tracker -p metrics-collector -p bench";
        for path in [
            &mut options.relay,
            &mut options.error_tracker,
            &mut options.metrics_collector,
        ] {
            *path = args.binary(path, build);
        }
        options
    }
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

// ---------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------

fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// A port on 127.0.0.1 where nothing listens (bound, then released), for an upstream that
/// is down now and may be started there later.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot reserve a port")
        .port()
}

/// The relay's environment (nothing else is inherited).
fn relay_env(dir: &Path, errors_url: &str, metrics_url: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "DATABASE_PATH",
            dir.join("browser-relay.db").display().to_string(),
        ),
        ("ADMIN_API_KEY", ADMIN_KEY.to_string()),
        ("ERROR_TRACKER_URL", errors_url.to_string()),
        ("ERROR_TRACKER_API_KEY", UPSTREAM_KEY.to_string()),
        ("METRICS_COLLECTOR_URL", metrics_url.to_string()),
        ("METRICS_COLLECTOR_API_KEY", UPSTREAM_KEY.to_string()),
        ("DSN_KEYS", format!("{PROJECT}:{DSN_KEY}")),
        ("FORWARD_QUEUE", FORWARD_QUEUE.to_string()),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        // 0 = no limit: neither per DSN key, nor globally, nor per client IP.
        ("RATE_LIMIT", "0".to_string()),
        // `info` for the `listening on` line; nothing is logged per request below `debug`.
        ("LOG_LEVEL", "info".to_string()),
    ]
}

fn start_relay(options: &Options, errors_url: &str, metrics_url: &str) -> Service {
    let dir = temp_dir("monlight-bench-relay-");
    let env = relay_env(dir.path(), errors_url, metrics_url);
    Service::start(&options.relay, &env, dir)
}

/// An upstream on `port` (0: any), fresh database, `RATE_LIMIT=0`.
fn start_error_tracker(options: &Options, port: u16) -> Service {
    let dir = temp_dir("monlight-bench-relay-et-");
    let env = vec![
        (
            "DATABASE_PATH",
            dir.path().join("errors.db").display().to_string(),
        ),
        ("API_KEY", UPSTREAM_KEY.to_string()),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", port.to_string()),
        ("RATE_LIMIT", "0".to_string()),
        ("LOG_LEVEL", "info".to_string()),
    ];
    Service::start(&options.error_tracker, &env, dir)
}

fn start_metrics_collector(options: &Options, port: u16) -> Service {
    let dir = temp_dir("monlight-bench-relay-mc-");
    let env = vec![
        (
            "DATABASE_PATH",
            dir.path().join("metrics.db").display().to_string(),
        ),
        ("API_KEY", UPSTREAM_KEY.to_string()),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", port.to_string()),
        ("RATE_LIMIT", "0".to_string()),
        ("LOG_LEVEL", "info".to_string()),
        // Only the start-up run: no rollup competes with the drain.
        ("AGGREGATION_INTERVAL", "3600".to_string()),
    ];
    Service::start(&options.metrics_collector, &env, dir)
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Resident memory once the service has settled after start-up.
fn idle_rss_kib(service: &Service) -> u64 {
    thread::sleep(Duration::from_millis(300));
    procfs::status_kib(service.pid(), "VmRSS").expect("cannot read the service's VmRSS")
}

fn hwm_kib(service: &Service) -> u64 {
    procfs::status_kib(service.pid(), "VmHWM").unwrap_or(0)
}

/// One request on a new connection; panics when it cannot be sent.
fn call(addr: SocketAddr, request: &[u8]) -> bench::client::Reply {
    let mut client = Client::connect(addr).expect("cannot connect to the service");
    client
        .send(request)
        .unwrap_or_else(|e| panic!("request to {addr} failed: {e}"))
}

/// The relay's `/health` figures.
#[derive(Debug, Clone, Copy, Default)]
struct Health {
    queue_depth: u64,
    forwarded: u64,
    dropped: u64,
}

fn health(client: &mut Client) -> Health {
    let reply = client
        .send(&request_bytes("GET", "/health", None, None))
        .expect("GET /health failed");
    assert_eq!(reply.status, 200, "GET /health answered {}", reply.status);
    let body = reply.json();
    let figure = |name: &str| {
        body[name]
            .as_u64()
            .unwrap_or_else(|| panic!("/health has no `{name}`: {body}"))
    };
    Health {
        queue_depth: figure("queue_depth"),
        forwarded: figure("forwarded"),
        dropped: figure("dropped"),
    }
}

/// Memory and shutdown of one service instance.
struct InstanceReport {
    name: String,
    idle_kib: Option<u64>,
    peak_kib: u64,
    /// Whether the peak is held to the target.
    targeted: bool,
    stop: String,
    clean_exit: bool,
    problems: (Vec<String>, usize),
}

/// Reads the peak memory, then stops the service with SIGTERM.
fn finish(service: Service, name: &str, idle_kib: Option<u64>, targeted: bool) -> InstanceReport {
    let peak_kib = hwm_kib(&service);
    let problems = service.problems();
    progress(&format!("stopping {name} (SIGTERM)"));
    let (status, took) = service.stop();
    InstanceReport {
        name: name.to_string(),
        idle_kib,
        peak_kib,
        targeted,
        stop: format!("{status} after {}", format_ms(took)),
        clean_exit: status.success(),
        problems,
    }
}

// ---------------------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------------------

/// A source map of a 2,000-line minified `app.min.js` (8 named tokens per line, from 60
/// TypeScript files), serialized.
fn source_map_json() -> String {
    let mut builder = SourceMapBuilder::new(Some("app.min.js"));
    let sources: Vec<u32> = (0..MAP_SOURCES)
        .map(|k| {
            let area = ["components", "pages", "stores", "api", "utils", "hooks"][k as usize % 6];
            builder.add_source(&format!("webpack:///src/{area}/module{k:03}.tsx"))
        })
        .collect();
    let names: Vec<u32> = (0..MAP_NAMES)
        .map(|k| {
            let verb = ["handle", "render", "load", "update", "validate", "format"][k as usize % 6];
            builder.add_name(&format!("{verb}Component{k}"))
        })
        .collect();
    for line in 0..MAP_LINES {
        for t in 0..MAP_TOKENS_PER_LINE {
            let n = line * MAP_TOKENS_PER_LINE + t;
            builder.add_raw(
                line,
                t * MAP_COLUMN_STEP,
                (n * 7) % 900,
                (n * 13) % 80,
                Some(sources[(n % MAP_SOURCES) as usize]),
                Some(names[(n % MAP_NAMES) as usize]),
                false,
            );
        }
    }
    let mut out = Vec::new();
    builder
        .into_sourcemap()
        .to_writer(&mut out)
        .expect("cannot serialize the source map");
    String::from_utf8(out).expect("a source map is UTF-8")
}

/// `POST /api/source-maps` with the generated map; panics unless `201`.
fn upload_map(relay: &Service, map: &str) {
    let body = json!({
        "project": PROJECT,
        "release": RELEASE,
        "file_url": SCRIPT_URL,
        "map_content": map,
    })
    .to_string();
    let reply = call(
        relay.addr(),
        &request_bytes(
            "POST",
            "/api/source-maps",
            Some(ADMIN_KEY),
            Some(body.as_bytes()),
        ),
    );
    assert_eq!(
        reply.status,
        201,
        "POST /api/source-maps answered {}: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
}

/// A 20-frame V8 stack into `app.min.js`; every frame lands on a mapped token (just after
/// its column) of a line between 1 and 2,000.
fn v8_stack(n: u64) -> String {
    let mut stack = String::from("TypeError: Cannot read properties of undefined (reading 'id')");
    for i in 0..FRAMES as u64 {
        let line = (n * 37 + i * 101) % u64::from(MAP_LINES) + 1;
        let token = (n + i * 3) % u64::from(MAP_TOKENS_PER_LINE);
        let column = token * u64::from(MAP_COLUMN_STEP) + 1 + (n + i) % 5;
        let name = format!(
            "{}{}",
            (b'a' + (i % 26) as u8) as char,
            (b'A' + ((n + i) % 26) as u8) as char
        );
        stack.push_str(&format!("\n    at {name} ({SCRIPT_URL}:{line}:{column})"));
    }
    stack
}

/// A browser error report; with `release`, its frames are rewritten by the relay.
fn error_body(n: u64, release: bool) -> String {
    let mut report = json!({
        "type": "TypeError",
        "message": "Cannot read properties of undefined (reading 'id')",
        "stack": v8_stack(n),
        "url": format!("https://shop.example.com/orders/{}?tab=items", 1000 + n % 500),
        "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "session_id": format!("8f14e45f-ceea-467a-9575-{n:012x}"),
        "timestamp": "2026-01-01T12:00:00.000Z",
        "context": {"user_id": format!("u-{}", n % 977), "route": "/orders/:id", "locale": "en-GB"},
    });
    if release {
        report["release"] = json!(RELEASE);
    }
    report.to_string()
}

/// A batch of 100 Web Vitals and counters.
fn metrics_body(n: u64) -> String {
    let names = [
        ("web_vitals_lcp", "histogram"),
        ("web_vitals_inp", "histogram"),
        ("web_vitals_cls", "histogram"),
        ("web_vitals_fcp", "histogram"),
        ("web_vitals_ttfb", "histogram"),
        ("js_errors_total", "counter"),
    ];
    let metrics: Vec<Value> = (0..METRICS_PER_BATCH as u64)
        .map(|i| {
            let (name, kind) = names[(i % names.len() as u64) as usize];
            let value = ((n * 31 + i * 17) % 4000) as f64 + 0.5;
            let browser = ["chrome", "firefox", "safari"][(i % 3) as usize];
            json!({"name": name, "type": kind, "value": value, "labels": {"browser": browser}})
        })
        .collect();
    json!({
        "metrics": metrics,
        "session_id": format!("8f14e45f-ceea-467a-9575-{n:012x}"),
        "url": format!("https://shop.example.com/dashboard/{}?x=1", n % 20),
    })
    .to_string()
}

/// Pre-rendered requests, handed out in turn.
struct Requests {
    all: Vec<Vec<u8>>,
    next: AtomicU64,
}

impl Requests {
    fn new(path: &str, body: impl Fn(u64) -> String) -> Requests {
        let all = (0..DISTINCT_BODIES as u64)
            .map(|n| {
                request_with_headers(
                    "POST",
                    path,
                    &[("X-Monlight-Key", DSN_KEY)],
                    Some(body(n).as_bytes()),
                )
            })
            .collect();
        Requests {
            all,
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> Vec<u8> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        self.all[n % self.all.len()].clone()
    }

    /// Average request size, bytes (head included).
    fn average_len(&self) -> usize {
        self.all.iter().map(Vec::len).sum::<usize>() / self.all.len()
    }
}

fn accepted(status: u16) -> bool {
    status == 202
}

fn phase<'a>(
    service: &Service,
    clients: usize,
    limits: Limits,
    request: &'a MakeRequest<'a>,
) -> Phase<'a> {
    Phase {
        addr: service.addr(),
        server_pid: service.pid(),
        clients,
        limits,
        request,
        ok_status: accepted,
    }
}

/// One row of the acceptance table.
struct Row {
    benchmark: String,
    clients: usize,
    result: PhaseResult,
    /// `VmHWM` of the relay after the phase.
    peak_kib: u64,
    target: Option<(String, bool)>,
}

/// Warms up (unmeasured), then runs the payload at 1 and 8 clients.
fn accept_rows(
    relay: &Service,
    options: &Options,
    benchmark: &str,
    requests: &Requests,
    targeted: bool,
) -> Vec<Row> {
    let next = || requests.next();
    let warmup = Limits {
        max_requests: WARMUP_REQUESTS,
        max_time: options.phase_time,
    };
    phase(relay, 8, warmup, &next).run();
    [1, 8]
        .into_iter()
        .map(|clients| {
            progress(&format!("{benchmark}, {clients} client(s)"));
            let limits = Limits {
                max_requests: PHASE_REQUESTS,
                max_time: options.phase_time,
            };
            let result = phase(relay, clients, limits, &next).run();
            let target = (targeted && clients == 8).then(|| {
                (
                    "≥ 8,500 accepted/s (old reference ~1,700)".to_string(),
                    result.ok as f64 / result.elapsed.as_secs_f64() >= TARGET_ACCEPT_8
                        && result.failures == 0,
                )
            });
            Row {
                benchmark: benchmark.to_string(),
                clients,
                peak_kib: hwm_kib(relay),
                result,
                target,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------

/// Instance 1: acceptance with both upstreams at a closed port.
fn accept_instance(options: &Options, map: &str) -> (Vec<Row>, InstanceReport) {
    let closed = url(SocketAddr::from(([127, 0, 0, 1], free_port())));
    progress(&format!(
        "starting the acceptance relay (upstreams at {closed}, nothing listening)"
    ));
    let relay = start_relay(options, &closed, &closed);
    let idle = idle_rss_kib(&relay);
    upload_map(&relay, map);
    let plain = Requests::new("/api/browser/errors", |n| error_body(n, false));
    let mapped = Requests::new("/api/browser/errors", |n| error_body(n, true));
    let metrics = Requests::new("/api/browser/metrics", metrics_body);
    let mut rows = accept_rows(
        &relay,
        options,
        "`POST /api/browser/errors`, no release (stack kept)",
        &plain,
        true,
    );
    rows.extend(accept_rows(
        &relay,
        options,
        "`POST /api/browser/errors`, release `1.0.0`: all 20 frames source-mapped",
        &mapped,
        true,
    ));
    rows.extend(accept_rows(
        &relay,
        options,
        "`POST /api/browser/metrics`, 100 points per batch",
        &metrics,
        false,
    ));
    let report = finish(
        relay,
        "relay, acceptance (upstreams down)",
        Some(idle),
        false,
    );
    (rows, report)
}

/// What the live-upstream acceptance phase saw.
struct LiveResult {
    row: Row,
    before: Health,
    after: Health,
    /// Whether a source-mapped report reached the error-tracker rewritten.
    rewritten: Result<(), String>,
}

/// Instance 2: acceptance at 8 clients while the relay forwards to a live error-tracker.
fn live_instance(options: &Options, map: &str) -> (LiveResult, Vec<InstanceReport>) {
    progress("starting error-tracker and metrics-collector, then a relay forwarding to them");
    let tracker = start_error_tracker(options, 0);
    let collector = start_metrics_collector(options, 0);
    let relay = start_relay(options, &url(tracker.addr()), &url(collector.addr()));
    let idle = idle_rss_kib(&relay);
    upload_map(&relay, map);
    let rewritten = check_rewritten(&relay, &tracker, options);
    let plain = Requests::new("/api/browser/errors", |n| error_body(n, false));
    let next = || plain.next();
    let warmup = Limits {
        max_requests: WARMUP_REQUESTS,
        max_time: options.phase_time,
    };
    phase(&relay, 8, warmup, &next).run();
    let mut monitor = Client::connect(relay.addr()).expect("cannot connect to the relay");
    let before = health(&mut monitor);
    let benchmark = "`POST /api/browser/errors`, no release, upstreams live (forwarding meanwhile)";
    progress(&format!("{benchmark}, 8 clients"));
    let limits = Limits {
        max_requests: PHASE_REQUESTS,
        max_time: options.phase_time,
    };
    let result = phase(&relay, 8, limits, &next).run();
    let after = health(&mut monitor);
    drop(monitor);
    let met =
        result.ok as f64 / result.elapsed.as_secs_f64() >= TARGET_ACCEPT_8 && result.failures == 0;
    let row = Row {
        benchmark: benchmark.to_string(),
        clients: 8,
        peak_kib: hwm_kib(&relay),
        result,
        target: Some(("≥ 8,500 accepted/s".to_string(), met)),
    };
    // The relay stops while its forwarder is busy with the backlog the phase left.
    let reports = vec![
        finish(relay, "relay, live upstreams", Some(idle), false),
        finish(tracker, "error-tracker (live upstream)", None, false),
        finish(collector, "metrics-collector (live upstream)", None, false),
    ];
    (
        LiveResult {
            row,
            before,
            after,
            rewritten,
        },
        reports,
    )
}

/// Sends one source-mapped report and checks that the error-tracker stored its traceback
/// with the original file names (at most `--timeout`).
fn check_rewritten(relay: &Service, tracker: &Service, options: &Options) -> Result<(), String> {
    let body = error_body(7, true);
    let request = request_with_headers(
        "POST",
        "/api/browser/errors",
        &[("X-Monlight-Key", DSN_KEY)],
        Some(body.as_bytes()),
    );
    let reply = call(relay.addr(), &request);
    if reply.status != 202 {
        return Err(format!("the report was answered {}", reply.status));
    }
    let deadline = Instant::now() + options.timeout.min(Duration::from_secs(30));
    let list = request_bytes("GET", "/api/errors?limit=1", Some(UPSTREAM_KEY), None);
    while Instant::now() < deadline {
        let page = call(tracker.addr(), &list).json();
        if let Some(id) = page["errors"][0]["id"].as_i64() {
            let path = format!("/api/errors/{id}");
            let detail = call(
                tracker.addr(),
                &request_bytes("GET", &path, Some(UPSTREAM_KEY), None),
            );
            let text = String::from_utf8_lossy(&detail.body).into_owned();
            let mapped = text.matches("webpack:///src/").count();
            return if mapped >= FRAMES && !text.contains("app.min.js") {
                Ok(())
            } else {
                Err(format!(
                    "{mapped} original paths in the stored group, minified ones left: {}",
                    text.contains("app.min.js")
                ))
            };
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err("the report did not reach the error-tracker".to_string())
}

/// Samples a process's `VmRSS` until stopped; keeps the largest.
struct RssSampler {
    stop: std::sync::Arc<AtomicBool>,
    handle: thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32, limit: Duration) -> RssSampler {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let began = Instant::now();
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) && began.elapsed() < limit {
                max = max.max(procfs::status_kib(pid, "VmRSS").unwrap_or(0));
                thread::sleep(RSS_SAMPLE);
            }
            max
        });
        RssSampler { stop, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

/// One drain: how long, how much CPU.
struct Drain {
    entries: u64,
    /// From the upstream's `listening on` to the last entry delivered.
    from_start: Duration,
    /// From the first entry delivered to the last.
    from_first: Duration,
    relay_cpu: Duration,
    upstream_cpu: Duration,
    complete: bool,
    /// Relay figures at the end.
    end: Health,
}

impl Drain {
    fn rate(&self, units: u64) -> f64 {
        units as f64 / self.from_first.as_secs_f64().max(1e-9)
    }
}

/// Waits until the outbox holds `remaining` entries (at most `timeout`), with the upstream
/// just started.
fn drain(
    relay: &Service,
    upstream: &Service,
    monitor: &mut Client,
    remaining: u64,
    timeout: Duration,
) -> Drain {
    let started = Instant::now();
    let relay_cpu = procfs::cpu_time(relay.pid()).unwrap_or_default();
    let upstream_cpu = procfs::cpu_time(upstream.pid()).unwrap_or_default();
    let initial = health(monitor);
    let mut first: Option<Instant> = None;
    let (complete, end) = loop {
        let now = health(monitor);
        if first.is_none() && now.forwarded + now.dropped > initial.forwarded + initial.dropped {
            first = Some(Instant::now());
        }
        if now.queue_depth <= remaining {
            break (true, now);
        }
        if started.elapsed() > timeout {
            break (false, now);
        }
        thread::sleep(POLL);
    };
    let finished = Instant::now();
    Drain {
        entries: initial.queue_depth.saturating_sub(end.queue_depth),
        from_start: finished - started,
        from_first: finished - first.unwrap_or(started),
        relay_cpu: procfs::cpu_time(relay.pid())
            .unwrap_or_default()
            .saturating_sub(relay_cpu),
        upstream_cpu: procfs::cpu_time(upstream.pid())
            .unwrap_or_default()
            .saturating_sub(upstream_cpu),
        complete,
        end,
    }
}

/// What the backlog instance measured.
struct BacklogResult {
    build_errors: PhaseResult,
    build_metrics: PhaseResult,
    queued: Health,
    peak_after_build_kib: u64,
    /// `VmHWM` once the errors are delivered (before the metrics drain).
    peak_after_errors_kib: u64,
    /// `RssAnon`, `RssFile`, `RssShmem` then.
    breakdown_after_errors: [u64; 3],
    errors: Drain,
    metrics: Drain,
    groups: Option<u64>,
    max_rss_sample_kib: u64,
}

/// Instance 3: a backlog built with both upstreams down, then drained into each as it is
/// started on the port the relay points at.
fn backlog_instance(options: &Options, map: &str) -> (BacklogResult, Vec<InstanceReport>) {
    let (errors_port, metrics_port) = (free_port(), free_port());
    let at = |port| url(SocketAddr::from(([127, 0, 0, 1], port)));
    progress(&format!(
        "starting the backlog relay (upstreams down: {} and {})",
        at(errors_port),
        at(metrics_port)
    ));
    let relay = start_relay(options, &at(errors_port), &at(metrics_port));
    let idle = idle_rss_kib(&relay);
    let sampler = RssSampler::start(relay.pid(), options.timeout * 3);
    upload_map(&relay, map);
    let mapped = Requests::new("/api/browser/errors", |n| error_body(n, true));
    let metrics = Requests::new("/api/browser/metrics", metrics_body);
    let limits = |n| Limits {
        max_requests: n,
        max_time: options.timeout,
    };
    progress(&format!(
        "building the backlog: {} source-mapped reports, {} metric batches",
        format_count(options.backlog),
        format_count(BACKLOG_METRIC_BATCHES)
    ));
    let next = || mapped.next();
    let build_errors = phase(&relay, 8, limits(options.backlog), &next).run();
    let next = || metrics.next();
    let build_metrics = phase(&relay, 8, limits(BACKLOG_METRIC_BATCHES), &next).run();
    let mut monitor = Client::connect(relay.addr()).expect("cannot connect to the relay");
    let queued = health(&mut monitor);
    let peak_after_build_kib = hwm_kib(&relay);

    progress(&format!("starting error-tracker on port {errors_port}"));
    let tracker = start_error_tracker(options, errors_port);
    let errors = drain(
        &relay,
        &tracker,
        &mut monitor,
        build_metrics.ok,
        options.timeout,
    );
    progress(&format!(
        "errors drained: {} in {}",
        format_count(errors.entries),
        format_ms(errors.from_start)
    ));
    let peak_after_errors_kib = hwm_kib(&relay);
    let breakdown_after_errors =
        ["RssAnon", "RssFile", "RssShmem"].map(|f| procfs::status_kib(relay.pid(), f).unwrap_or(0));
    progress(&format!(
        "starting metrics-collector on port {metrics_port}"
    ));
    let collector = start_metrics_collector(options, metrics_port);
    let metrics = drain(&relay, &collector, &mut monitor, 0, options.timeout);
    drop(monitor);
    let max_rss_sample_kib = sampler.finish();
    let groups = {
        let page = call(
            tracker.addr(),
            &request_bytes(
                "GET",
                "/api/errors?limit=1&resolved=all",
                Some(UPSTREAM_KEY),
                None,
            ),
        )
        .json();
        page["total"].as_u64()
    };
    let reports = vec![
        finish(relay, "relay, backlog", Some(idle), true),
        finish(tracker, "error-tracker (backlog drain)", None, false),
        finish(collector, "metrics-collector (backlog drain)", None, false),
    ];
    (
        BacklogResult {
            build_errors,
            build_metrics,
            queued,
            peak_after_build_kib,
            peak_after_errors_kib,
            breakdown_after_errors,
            errors,
            metrics,
            groups,
            max_rss_sample_kib,
        },
        reports,
    )
}

/// A report whose message fills the body limit (a serialized state, say).
fn large_error_body(n: u64) -> String {
    let words = [
        "state",
        "cart",
        "items",
        "undefined",
        "price",
        "quantity",
        "null",
        "user",
    ];
    let mut message = format!("Invariant failed #{n}: ");
    let mut i = 0;
    while message.len() < LARGE_MESSAGE_BYTES {
        message.push_str(words[i % words.len()]);
        message.push(' ');
        i += 1;
    }
    json!({
        "type": "Error",
        "message": message,
        "stack": v8_stack(n),
        "url": "https://shop.example.com/checkout",
        "session_id": format!("8f14e45f-ceea-467a-9575-{n:012x}"),
    })
    .to_string()
}

/// What the stress backlog measured.
struct LargeResult {
    build: PhaseResult,
    body_len: usize,
    peak_kib: u64,
}

/// Instance 4: a backlog of reports at the body limit with the upstreams down, watched while
/// the forwarder retries.
fn large_backlog_instance(options: &Options) -> (LargeResult, InstanceReport) {
    let closed = url(SocketAddr::from(([127, 0, 0, 1], free_port())));
    progress("starting the stress relay (upstreams down): a backlog of ~60 KB reports");
    let relay = start_relay(options, &closed, &closed);
    let idle = idle_rss_kib(&relay);
    let large = Requests::new("/api/browser/errors", large_error_body);
    let body_len = large.average_len();
    let next = || large.next();
    let limits = Limits {
        max_requests: LARGE_REPORTS,
        max_time: options.timeout,
    };
    let build = phase(&relay, 8, limits, &next).run();
    drop(large);
    thread::sleep(LARGE_WATCH);
    let peak_kib = hwm_kib(&relay);
    let report = finish(
        relay,
        "relay, stress backlog (~60 KB reports)",
        Some(idle),
        true,
    );
    (
        LargeResult {
            build,
            body_len,
            peak_kib,
        },
        report,
    )
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn main() {
    let options = Options::from_args();
    let uptime = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let busy_before = procfs::machine_busy(Duration::from_secs(1));
    let map = source_map_json();
    let sample_plain = error_body(0, false);
    let request_len = Requests::new("/api/browser/errors", |n| error_body(n, false)).average_len();

    let (mut rows, accept_report) = accept_instance(&options, &map);
    let (live, live_reports) = live_instance(&options, &map);
    let (backlog, backlog_reports) = backlog_instance(&options, &map);
    let (large, large_report) = large_backlog_instance(&options);
    rows.push(live.row);

    let mut instances = vec![accept_report];
    instances.extend(live_reports);
    instances.extend(backlog_reports);
    instances.push(large_report);

    print_settings(
        &options,
        &map,
        (&sample_plain, request_len),
        busy_before,
        &uptime,
    );
    print_rows(&rows);
    print_forwarding(&options, &backlog, &live.before, &live.after, &rows);
    print_memory(&backlog, &large, &instances);
    print_notes(&rows, &backlog, &large, &live.rewritten, &instances);
}

fn print_settings(
    options: &Options,
    map: &str,
    (sample_plain, request_len): (&str, usize),
    busy_before: Option<f64>,
    loadavg: &str,
) {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!("## browser-relay benchmark\n");
    let debug_build = options.relay.components().any(|c| c.as_os_str() == "debug");
    println!(
        "- binaries: `{}`{}, `{}`, `{}`",
        options.relay.display(),
        if debug_build {
            " (**a debug build: the figures are not representative**)"
        } else {
            ""
        },
        options.error_tracker.display(),
        options.metrics_collector.display(),
    );
    println!(
        "- relay env: `DATABASE_PATH=<tmp>/browser-relay.db ADMIN_API_KEY={ADMIN_KEY} DSN_KEYS={PROJECT}:<32 hex> ERROR_TRACKER_URL=… METRICS_COLLECTOR_URL=… *_API_KEY={UPSTREAM_KEY} FORWARD_QUEUE={FORWARD_QUEUE} BIND=127.0.0.1 PORT=0 RATE_LIMIT=0 LOG_LEVEL=info` (nothing else inherited; `RATE_LIMIT=0` turns off the per-key, global and per-IP limits); upstreams: `API_KEY={UPSTREAM_KEY} RATE_LIMIT=0 LOG_LEVEL=info` on fresh databases (metrics-collector `AGGREGATION_INTERVAL=3600`)"
    );
    println!(
        "- machine: {cores} CPU cores, shared by the services and the benchmark clients (loopback); {}; load average before the run: {}",
        describe_busy(busy_before),
        loadavg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "- clients: keep-alive HTTP/1.1, one connection per client thread, closed loop; each phase stops after {} requests or {} s, after {} unmeasured requests per payload",
        format_count(PHASE_REQUESTS),
        options.phase_time.as_secs(),
        WARMUP_REQUESTS,
    );
    println!(
        "- error report: {} bytes of JSON, {request_len} bytes per request with the head (V8 stack of {FRAMES} frames into `{SCRIPT_URL}`, url, user agent, session id, timestamp, context); {} different reports cycled; the source-mapped variant adds `\"release\":\"{RELEASE}\"`",
        sample_plain.len(),
        format_count(DISTINCT_BODIES as u64),
    );
    println!(
        "- source map: {} bytes, `sourcemap::SourceMapBuilder`: {} lines × {} named tokens of the minified script, {MAP_SOURCES} original files, {MAP_NAMES} names; every frame of the source-mapped reports lands on a token",
        format_count(map.len() as u64),
        format_count(u64::from(MAP_LINES)),
        MAP_TOKENS_PER_LINE,
    );
    println!(
        "- four relay instances: (1) acceptance with both upstream URLs at a closed port (forwarding fails fast and backs off, so it does not compete); (2) acceptance with a live error-tracker and metrics-collector; (3) a backlog of {} source-mapped reports and {} metric batches built while both upstreams are down, then each upstream started on the port the relay points at; (4) {LARGE_REPORTS} reports of ~61 KB (the body limit) queued with the upstreams down, watched {} s while the forwarder retries\n",
        format_count(options.backlog),
        format_count(BACKLOG_METRIC_BATCHES),
        LARGE_WATCH.as_secs(),
    );
}

fn print_rows(rows: &[Row]) {
    println!("| benchmark | clients | requests | failed | accepted/s | p50 | p99 | CPU cores: relay / bench / other | relay `VmHWM` after | target |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let r = &row.result;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} | {} | {} |",
            row.benchmark,
            row.clients,
            format_count(r.ok + r.failures),
            format_count(r.failures),
            format_count((r.ok as f64 / r.elapsed.as_secs_f64()).round() as u64),
            format_ms(r.latencies.percentile(50.0)),
            format_ms(r.latencies.percentile(99.0)),
            r.server_cores(),
            r.bench_cores(),
            r.other_cores(),
            format_mib(row.peak_kib),
            row.target
                .as_ref()
                .map_or("—".to_string(), |(target, met)| {
                    format!("{target}: {}", verdict(*met))
                }),
        );
    }
    println!();
}

/// Seconds with two decimals, e.g. `3.42 s`.
fn format_secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn cores(cpu: Duration, over: Duration) -> f64 {
    cpu.as_secs_f64() / over.as_secs_f64().max(1e-9)
}

fn print_forwarding(
    options: &Options,
    backlog: &BacklogResult,
    before: &Health,
    after: &Health,
    rows: &[Row],
) {
    println!("| forwarding | entries | time | rate | CPU cores: relay / upstream | notes |");
    println!("|---|---:|---:|---:|---:|---|");
    let b = &backlog.build_errors;
    println!(
        "| backlog build: source-mapped reports, upstreams down, 8 clients | {} | {} | {} accepted/s | {:.2} / — | {} failed; `/health` then: queue_depth {}, dropped {} |",
        format_count(b.ok),
        format_secs(b.elapsed),
        format_count((b.ok as f64 / b.elapsed.as_secs_f64()).round() as u64),
        b.server_cores(),
        format_count(b.failures),
        format_count(backlog.queued.queue_depth),
        format_count(backlog.queued.dropped),
    );
    for (what, drain, units, unit) in [
        (
            "errors → error-tracker (one `POST /api/errors` each)",
            &backlog.errors,
            backlog.errors.entries,
            "errors",
        ),
        (
            "metric batches → metrics-collector (joined into ≤ 1,000 points per request)",
            &backlog.metrics,
            backlog.metrics.entries * METRICS_PER_BATCH as u64,
            "points",
        ),
    ] {
        println!(
            "| drain: {what} | {} | {} from the upstream's start, {} from the first delivery | {} {unit}/s | {:.2} / {:.2} | {}; then forwarded {}, dropped {} |",
            format_count(drain.entries),
            format_secs(drain.from_start),
            format_secs(drain.from_first),
            format_count(drain.rate(units).round() as u64),
            cores(drain.relay_cpu, drain.from_start),
            cores(drain.upstream_cpu, drain.from_start),
            if drain.complete {
                "drained".to_string()
            } else {
                format!("**not drained within {} s**", options.timeout.as_secs())
            },
            format_count(drain.end.forwarded),
            format_count(drain.end.dropped),
        );
    }
    if let Some(live) = rows.last() {
        let secs = live.result.elapsed.as_secs_f64();
        let forwarded = after.forwarded.saturating_sub(before.forwarded);
        println!(
            "| live upstreams: forwarded while 8 clients post errors | {} | {} | {} errors/s | — | queue_depth {} → {} (the forwarder falls behind when it is below the accept rate) |",
            format_count(forwarded),
            format_secs(live.result.elapsed),
            format_count((forwarded as f64 / secs).round() as u64),
            format_count(before.queue_depth),
            format_count(after.queue_depth),
        );
    }
    println!();
}

fn print_memory(backlog: &BacklogResult, large: &LargeResult, instances: &[InstanceReport]) {
    println!("| service memory | value | target |");
    println!("|---|---:|---|");
    for instance in instances.iter().filter(|i| i.idle_kib.is_some()) {
        let idle = instance.idle_kib.unwrap_or(0);
        println!(
            "| idle RSS (`VmRSS`) after start-up, {} | {} | — (other services: < 8 MiB, {}) |",
            instance.name,
            format_mib(idle),
            if idle < IDLE_REFERENCE_KIB {
                "within"
            } else {
                "above"
            }
        );
    }
    println!(
        "| relay `VmHWM` after the backlog was built (before any drain) | {} | — |",
        format_mib(backlog.peak_after_build_kib)
    );
    println!(
        "| relay `VmHWM` after the errors drained (before the metrics drain) | {} | — |",
        format_mib(backlog.peak_after_errors_kib)
    );
    let [anon, file, shmem] = backlog.breakdown_after_errors;
    println!(
        "| relay `VmRSS` then: heap and stacks (`RssAnon`) / binary and mapped files such as the SQLite WAL index `-shm` (`RssFile`) / `RssShmem` | {} / {} / {} | — |",
        format_mib(anon),
        format_mib(file),
        format_mib(shmem)
    );
    println!(
        "| relay largest `VmRSS` sample (every 20 ms) while the backlog builds and drains | {} | — |",
        format_mib(backlog.max_rss_sample_kib)
    );
    println!(
        "| relay `VmHWM` {} s after {} reports of {} bytes (a request at the body limit) were queued, upstreams down | {} | ≤ 20 MiB: {} |",
        LARGE_WATCH.as_secs(),
        format_count(large.build.ok),
        format_count(large.body_len as u64),
        format_mib(large.peak_kib),
        verdict(large.peak_kib <= TARGET_PEAK_KIB)
    );
    for instance in instances {
        let target = if instance.targeted {
            format!(
                "≤ 20 MiB: {}",
                verdict(instance.peak_kib <= TARGET_PEAK_KIB)
            )
        } else if instance.name.starts_with("relay") {
            "— (informative; the target is held by the backlog instance)".to_string()
        } else {
            "—".to_string()
        };
        println!(
            "| peak RSS (`VmHWM`), {} | {} | {target} |",
            instance.name,
            format_mib(instance.peak_kib)
        );
    }
    println!();
}

fn print_notes(
    rows: &[Row],
    backlog: &BacklogResult,
    large: &LargeResult,
    rewritten: &Result<(), String>,
    instances: &[InstanceReport],
) {
    println!("Notes:\n");
    match rewritten {
        Ok(()) => println!(
            "- check: a source-mapped report reached the error-tracker with all {FRAMES} frames rewritten to `webpack:///src/…` paths and no `app.min.js` left"
        ),
        Err(why) => println!("- **check failed**: source-map rewriting as seen by the error-tracker: {why}"),
    }
    if let Some(groups) = backlog.groups {
        println!(
            "- the error-tracker holds {} groups after the drain ({} distinct reports cycled)",
            format_count(groups),
            format_count(DISTINCT_BODIES as u64)
        );
    }
    let m = &backlog.build_metrics;
    println!(
        "- backlog metric batches: {} accepted at 8 clients in {} ({} failed)",
        format_count(m.ok),
        format_ms(m.elapsed),
        format_count(m.failures)
    );
    for row in rows.iter().filter(|row| row.result.failures > 0) {
        println!(
            "- {} at {} clients: {} failed requests, e.g. {:?}",
            row.benchmark,
            row.clients,
            format_count(row.result.failures),
            row.result.failure_samples
        );
    }
    for (what, r) in [
        ("backlog build (errors)", &backlog.build_errors),
        ("backlog build (metrics)", &backlog.build_metrics),
        ("stress backlog build", &large.build),
    ] {
        if r.failures > 0 {
            println!(
                "- {what}: {} failed requests, e.g. {:?}",
                format_count(r.failures),
                r.failure_samples
            );
        }
    }
    for instance in instances {
        println!(
            "- {}: stopped by SIGTERM with {}{}",
            instance.name,
            instance.stop,
            if instance.clean_exit {
                ""
            } else {
                " (**not a clean exit**)"
            }
        );
        let (problems, count) = &instance.problems;
        if *count > 0 {
            println!(
                "- {} logged {count} WARN/ERROR lines, first ones: {:?}",
                instance.name,
                problems.iter().take(5).collect::<Vec<_>>()
            );
        }
    }
    println!("- load average (1 min) at the end: {}", load_average());
}
