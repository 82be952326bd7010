//! `bench-error-tracker`: starts the release `error-tracker` binary and measures
//!
//! 1. `POST /api/errors` throughput and latency at 1 and 8 keep-alive clients, for one
//!    repeated fingerprint and for all-distinct fingerprints (~1 KB Python tracebacks), and
//!    for all-distinct fingerprints with one connection per request (`Connection: close`);
//! 2. `GET /api/errors?limit=50` and `...&offset=5000` latency with exactly 10,000
//!    unresolved groups stored (a second service instance on a fresh database, because the
//!    write phases leave an unknown, larger number of groups behind);
//! 3. `POST /api/1/envelope/` throughput at 1 and 8 clients with a real `sentry-python`
//!    envelope (a chained exception, gzip-compressed as the SDK sends it);
//! 4. the service's idle and peak resident memory (`VmRSS`, `VmHWM`).
//!
//! It prints a Markdown report on stdout (progress goes to stderr). Build first:
//! `cargo build --release -p error-tracker -p bench`, then run
//! `./target/release/bench-error-tracker [--binary PATH] [--workers N] [--seconds S]`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bench::args::Args;
use bench::client::{connection_close, request_bytes, request_with_headers, Client};
use bench::load::{Limits, MakeRequest, Phase, PhaseResult};
use bench::procfs;
use bench::report::{describe_busy, verdict};
use bench::service::Service;
use bench::stats::{format_count, format_mib, format_ms};

/// The API key the service is started with.
const API_KEY: &str = "bench";
/// The Sentry key the service is started with (`SENTRY_KEYS`).
const SENTRY_KEY: &str = "bench0sentry0key0000000000000000";
/// Its size uncompressed (the same capture, sent without compression).
const SENTRY_ENVELOPE_BYTES: usize = include_bytes!(
    "../../../../services/error-tracker/tests/fixtures/sentry/python-chained.envelope"
)
.len();
/// A real `sentry-python` 2.x envelope of a chained exception, as the SDK sent it (gzip).
const SENTRY_ENVELOPE_GZ: &[u8] = include_bytes!(
    "../../../../services/error-tracker/tests/fixtures/sentry/python-chained.envelope.gz"
);
/// Groups stored for the list benchmark.
const LIST_GROUPS: u64 = 10_000;
/// Requests per list benchmark.
const LIST_REQUESTS: u64 = 500;
/// Upper bound of requests per write phase (the time limit usually ends it first).
const WRITE_REQUESTS: u64 = 200_000;
/// Unmeasured reports sent before the write phases (also creates the repeated group).
const WARMUP_REQUESTS: u64 = 500;
/// Targets from the spec and the issue.
const TARGET_DISTINCT_RPS: f64 = 10_000.0;
const TARGET_LIST_P50: Duration = Duration::from_millis(2);
const TARGET_PEAK_KIB: u64 = 20 * 1024;
const TARGET_IDLE_KIB: u64 = 8 * 1024;

/// Command-line options.
struct Options {
    /// The `error-tracker` binary.
    binary: PathBuf,
    /// `WORKERS` for the service.
    workers: usize,
    /// Time limit of each load phase.
    phase_time: Duration,
}

const USAGE: &str = "\
Usage: bench-error-tracker [--binary PATH] [--workers N] [--seconds S]

Build first: cargo build --release -p error-tracker -p bench

  --binary PATH  the error-tracker binary (default: error-tracker next to this program,
                 else target/release/error-tracker)
  --workers N    WORKERS for the service (default 4, the service's default)
  --seconds S    time limit of each load phase (default 5)

Prints a Markdown report on stdout; progress goes to stderr.";

impl Options {
    /// Parses the arguments; exits with the usage on `--help` or a bad argument.
    fn from_args() -> Options {
        let mut options = Options {
            binary: bench::service::release_binary("error-tracker"),
            workers: 4,
            phase_time: Duration::from_secs(5),
        };
        let mut args = Args::new("bench-error-tracker", USAGE);
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--binary" => options.binary = args.value(&flag).into(),
                "--workers" => options.workers = args.number(&flag),
                "--seconds" => options.phase_time = args.seconds(&flag),
                _ => args.unknown(&flag),
            }
        }
        options.binary = args.binary(
            &options.binary,
            "cargo build --release -p error-tracker -p bench",
        );
        options
    }
}

/// The service's environment (nothing else is inherited).
fn service_env(options: &Options, dir: &tempfile::TempDir) -> Vec<(&'static str, String)> {
    vec![
        (
            "DATABASE_PATH",
            dir.path().join("errors.db").display().to_string(),
        ),
        ("API_KEY", API_KEY.to_string()),
        ("SENTRY_KEYS", format!("bench:{SENTRY_KEY}")),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("RATE_LIMIT", "0".to_string()),
        // `info` is needed for the `listening on` line; nothing is logged per request
        // below `debug`.
        ("LOG_LEVEL", "info".to_string()),
        ("WORKERS", options.workers.to_string()),
    ]
}

/// Starts a service instance on a fresh database in a new temporary directory.
fn start_service(options: &Options) -> Service {
    let dir = tempfile::Builder::new()
        .prefix("monlight-bench-")
        .tempdir()
        .expect("cannot create a temporary directory");
    let env = service_env(options, &dir);
    Service::start(&options.binary, &env, dir)
}

/// Resident memory once the service has settled after start-up, before any request.
fn idle_rss_kib(service: &Service) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    procfs::status_kib(service.pid(), "VmRSS").expect("cannot read the service's VmRSS")
}

/// Waits until `GET /health` answers 200 (the service logs `listening on` just before it
/// starts accepting).
fn wait_healthy(service: &Service) {
    let mut client = Client::connect(service.addr()).expect("cannot connect to the service");
    let reply = client
        .send(&request_bytes("GET", "/health", None, None))
        .expect("GET /health failed");
    assert_eq!(reply.status, 200, "GET /health answered {}", reply.status);
}

/// Report bodies: a ~1 KB Flask-style Python traceback whose deepest frame's line number
/// decides the fingerprint. The JSON is serialized once and split around that number.
struct ReportBodies {
    before_line: String,
    after_line: String,
}

/// Stands in for the line number while the template is serialized.
const LINE_MARKER: &str = "@@LINE@@";
/// The line of the repeated report; distinct reports count up from `FIRST_DISTINCT_LINE`.
const REPEATED_LINE: u64 = 42;
const FIRST_DISTINCT_LINE: u64 = 1_000;
/// The next line number for a distinct report, shared by every phase and thread so that
/// every distinct report creates a new group.
static NEXT_DISTINCT_LINE: AtomicU64 = AtomicU64::new(FIRST_DISTINCT_LINE);

impl ReportBodies {
    fn new() -> ReportBodies {
        let traceback = format!(
            "Traceback (most recent call last):\n  \
             File \"/app/venv/lib/python3.12/site-packages/flask/app.py\", line 1511, in wsgi_app\n    \
             response = self.full_dispatch_request()\n  \
             File \"/app/venv/lib/python3.12/site-packages/flask/app.py\", line 919, in full_dispatch_request\n    \
             rv = self.handle_user_exception(e)\n  \
             File \"/app/venv/lib/python3.12/site-packages/flask/app.py\", line 917, in full_dispatch_request\n    \
             rv = self.dispatch_request()\n  \
             File \"/app/shop/views/orders.py\", line 57, in create_order\n    \
             order = checkout.place_order(cart, user=current_user)\n  \
             File \"/app/shop/checkout.py\", line {LINE_MARKER}, in place_order\n    \
             raise ValueError(f\"invalid quantity {{qty!r}} for SKU {{sku}}\")\n\
             ValueError: invalid quantity -1 for SKU A-1042\n"
        );
        let report = serde_json::json!({
            "project": "shop",
            "environment": "prod",
            "exception_type": "ValueError",
            "message": "invalid quantity -1 for SKU A-1042",
            "traceback": traceback,
            "request_url": "https://shop.example.com/api/orders?cart=8f14e45f",
            "request_method": "POST",
            "request_headers": {
                "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Content-Type": "application/json",
                "Accept": "application/json"
            },
            "user_id": "user-1042",
            "extra": {"release": "2026.01.3", "worker": "gunicorn-3"}
        });
        let json = report.to_string();
        let (before, after) = json
            .split_once(LINE_MARKER)
            .expect("the line marker is in the template");
        ReportBodies {
            before_line: before.to_string(),
            after_line: after.to_string(),
        }
    }

    /// The body whose deepest frame is at `line`.
    fn body(&self, line: u64) -> Vec<u8> {
        format!("{}{line}{}", self.before_line, self.after_line).into_bytes()
    }

    /// A `POST /api/errors` request whose deepest frame is at `line`.
    fn request(&self, line: u64) -> Vec<u8> {
        request_bytes("POST", "/api/errors", Some(API_KEY), Some(&self.body(line)))
    }

    /// A `POST /api/errors` request for a group no report has used before.
    fn distinct_request(&self) -> Vec<u8> {
        self.request(NEXT_DISTINCT_LINE.fetch_add(1, Ordering::Relaxed))
    }
}

fn report_accepted(status: u16) -> bool {
    status == 200 || status == 201
}

fn list_ok(status: u16) -> bool {
    status == 200
}

/// One line of the results table.
struct Row {
    benchmark: String,
    clients: usize,
    result: PhaseResult,
    /// The target and whether it was met, when there is one.
    target: Option<(String, bool)>,
}

/// The four `POST /api/errors` phases (after an unmeasured warm-up).
fn write_phases(service: &Service, bodies: &ReportBodies, options: &Options) -> Vec<Row> {
    let repeated = bodies.request(REPEATED_LINE);
    let repeated = || repeated.clone();
    let distinct = || bodies.distinct_request();
    let limits = Limits {
        max_requests: WRITE_REQUESTS,
        max_time: options.phase_time,
    };
    progress("warm-up: 500 repeated reports");
    let warmup = Limits {
        max_requests: WARMUP_REQUESTS,
        max_time: options.phase_time,
    };
    phase(service, 1, warmup, &repeated, report_accepted).run();

    let scenarios: [(&str, usize, &MakeRequest<'_>); 4] = [
        ("`POST /api/errors`, one repeated fingerprint", 1, &repeated),
        ("`POST /api/errors`, one repeated fingerprint", 8, &repeated),
        (
            "`POST /api/errors`, all-distinct fingerprints",
            1,
            &distinct,
        ),
        (
            "`POST /api/errors`, all-distinct fingerprints",
            8,
            &distinct,
        ),
    ];
    scenarios
        .into_iter()
        .map(|(benchmark, clients, request)| {
            progress(&format!("{benchmark}, {clients} client(s)"));
            let result = phase(service, clients, limits, request, report_accepted).run();
            let distinct_at_8 = clients == 8 && benchmark.contains("distinct");
            let target = distinct_at_8.then(|| {
                let met = result.requests_per_second() >= TARGET_DISTINCT_RPS;
                ("≥ 10,000 req/s".to_string(), met)
            });
            Row {
                benchmark: benchmark.to_string(),
                clients,
                result,
                target,
            }
        })
        .collect()
}

fn phase<'a>(
    service: &Service,
    clients: usize,
    limits: Limits,
    request: &'a MakeRequest<'a>,
    ok_status: fn(u16) -> bool,
) -> Phase<'a> {
    Phase {
        addr: service.addr(),
        server_pid: service.pid(),
        clients,
        limits,
        request,
        ok_status,
    }
}

/// Targets of the one-connection-per-request phases (distinct fingerprints).
const TARGET_CLOSE_RPS_1: f64 = 5_000.0;
const TARGET_CLOSE_P99_1: Duration = Duration::from_millis(1);
const TARGET_CLOSE_RPS_8: f64 = 10_000.0;

/// `POST /api/errors` with all-distinct fingerprints at 1 and 8 clients, each request with
/// `Connection: close` on a new TCP connection (curl, shell scripts, health checkers).
fn close_phases(service: &Service, bodies: &ReportBodies, options: &Options) -> Vec<Row> {
    let distinct = || connection_close(&bodies.distinct_request());
    let limits = Limits {
        max_requests: WRITE_REQUESTS,
        max_time: options.phase_time,
    };
    let benchmark = "`POST /api/errors`, all-distinct fingerprints, a new connection per request (`Connection: close`)";
    [1, 8]
        .into_iter()
        .map(|clients| {
            progress(&format!("{benchmark}, {clients} client(s)"));
            let result = phase(service, clients, limits, &distinct, report_accepted).run();
            let rps = result.requests_per_second();
            let target = if clients == 1 {
                let p99 = result.latencies.percentile(99.0);
                let met = rps >= TARGET_CLOSE_RPS_1 && p99 <= TARGET_CLOSE_P99_1;
                ("≥ 5,000 req/s, p99 ≤ 1 ms".to_string(), met)
            } else {
                ("≥ 10,000 req/s".to_string(), rps >= TARGET_CLOSE_RPS_8)
            };
            Row {
                benchmark: benchmark.to_string(),
                clients,
                result,
                target: Some(target),
            }
        })
        .collect()
}

/// `POST /api/1/envelope/` with the real SDK envelope (gzip) at 1 and 8 clients: the same
/// event each time, so one group counted up, as a burst of one error is.
fn sentry_phases(service: &Service, options: &Options) -> Vec<Row> {
    let auth = format!(
        "Sentry sentry_version=7, sentry_client=sentry.python/2.75.0, sentry_key={SENTRY_KEY}"
    );
    let headers = [
        ("X-Sentry-Auth", auth.as_str()),
        ("Content-Encoding", "gzip"),
    ];
    let request = request_with_headers(
        "POST",
        "/api/1/envelope/",
        &headers,
        Some(SENTRY_ENVELOPE_GZ),
    );
    let request = || request.clone();
    let limits = Limits {
        max_requests: WRITE_REQUESTS,
        max_time: options.phase_time,
    };
    let benchmark = "`POST /api/1/envelope/`, a real `sentry-python` envelope, gzip";
    [1, 8]
        .into_iter()
        .map(|clients| {
            progress(&format!("{benchmark}, {clients} client(s)"));
            let result = phase(service, clients, limits, &request, list_ok).run();
            Row {
                benchmark: benchmark.to_string(),
                clients,
                result,
                target: None,
            }
        })
        .collect()
}

/// `total` of `GET /api/errors?limit=1&<query>`.
fn count_groups(service: &Service, query: &str) -> u64 {
    let path = format!("/api/errors?limit=1&{query}");
    let mut client = Client::connect(service.addr()).expect("cannot connect to the service");
    let reply = client
        .send(&request_bytes("GET", &path, Some(API_KEY), None))
        .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
    assert_eq!(reply.status, 200, "GET {path} answered {}", reply.status);
    reply.json()["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("GET {path}: no `total` in {}", reply.json()))
}

/// Counts the stored groups and tops them up with distinct reports (8 clients) until
/// exactly `target` are stored, all unresolved. Returns the seeding phases.
fn ensure_groups(service: &Service, bodies: &ReportBodies, target: u64) -> Vec<PhaseResult> {
    let distinct = || bodies.distinct_request();
    let mut seeding = Vec::new();
    for _ in 0..5 {
        let stored = count_groups(service, "resolved=all");
        assert!(
            stored <= target,
            "the database already holds {stored} groups, more than {target}"
        );
        if stored == target {
            break;
        }
        progress(&format!(
            "seeding: {stored} groups stored, adding {}",
            target - stored
        ));
        let limits = Limits {
            max_requests: target - stored,
            max_time: Duration::from_secs(120),
        };
        seeding.push(phase(service, 8, limits, &distinct, report_accepted).run());
    }
    let unresolved = count_groups(service, "resolved=false");
    assert_eq!(
        unresolved, target,
        "expected {target} unresolved groups after seeding"
    );
    seeding
}

/// The two list benchmarks, one client each, on a database of exactly `LIST_GROUPS` groups.
fn list_phases(service: &Service, options: &Options) -> Vec<Row> {
    let paths = ["/api/errors?limit=50", "/api/errors?limit=50&offset=5000"];
    paths
        .into_iter()
        .map(|path| {
            check_list_page(service, path);
            let request = request_bytes("GET", path, Some(API_KEY), None);
            let request = || request.clone();
            let warmup = Limits {
                max_requests: 50,
                max_time: options.phase_time,
            };
            phase(service, 1, warmup, &request, list_ok).run();
            progress(&format!("`GET {path}`, 1 client"));
            let limits = Limits {
                max_requests: LIST_REQUESTS,
                max_time: options.phase_time,
            };
            let result = phase(service, 1, limits, &request, list_ok).run();
            let met = result.latencies.percentile(50.0) <= TARGET_LIST_P50;
            Row {
                benchmark: format!("`GET {path}` ({} groups)", format_count(LIST_GROUPS)),
                clients: 1,
                result,
                target: Some(("p50 ≤ 2 ms".to_string(), met)),
            }
        })
        .collect()
}

/// Checks that a list page holds 50 groups out of `LIST_GROUPS`.
fn check_list_page(service: &Service, path: &str) {
    let mut client = Client::connect(service.addr()).expect("cannot connect to the service");
    let reply = client
        .send(&request_bytes("GET", path, Some(API_KEY), None))
        .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
    let page = reply.json();
    let items = page["errors"].as_array().map_or(0, Vec::len);
    assert!(
        reply.status == 200 && items == 50 && page["total"].as_u64() == Some(LIST_GROUPS),
        "GET {path} answered {} with {items} items and total {}",
        reply.status,
        page["total"]
    );
}

/// `GET /api/errors?search=` on a fresh instance holding 100,000 groups with varied
/// messages (names with accents among them): a term that matches one group and an
/// upper-case Unicode term that matches an eighth of them, 500 requests each (one client,
/// after 50 unmeasured). Stops its instance; returns one row per term.
fn search_rows(options: &Options) -> Vec<Row> {
    const GROUPS: u64 = 100_000;
    const TYPES: [&str; 5] = [
        "ValueError",
        "KeyError",
        "TypeError",
        "RuntimeError",
        "OSError",
    ];
    const NOUNS: [&str; 6] = ["order", "invoice", "cart", "payment", "shipment", "refund"];
    const NAMES: [&str; 8] = [
        "Müller", "Dubois", "García", "Nowak", "Åberg", "Smith", "Øster", "Straße",
    ];
    progress("starting the search instance (fresh database)");
    let service = start_service(options);
    wait_healthy(&service);
    let next = AtomicU64::new(0);
    let report = || {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let (kind, noun) = (TYPES[n as usize % 5], NOUNS[n as usize % 6]);
        let name = NAMES[n as usize / 6 % 8];
        let body = serde_json::json!({
            "project": "shop",
            "exception_type": kind,
            "message": format!("could not process {noun} {n} for customer {name}"),
            "traceback": format!("Traceback (most recent call last):\n  File \"/app/shop/{noun}.py\", line {n}, in handle\n{kind}: could not process {noun}"),
        });
        request_bytes(
            "POST",
            "/api/errors",
            Some(API_KEY),
            Some(body.to_string().as_bytes()),
        )
    };
    progress(&format!(
        "seeding {} groups with varied messages",
        format_count(GROUPS)
    ));
    let seeding = Limits {
        max_requests: GROUPS,
        max_time: Duration::from_secs(600),
    };
    let seeded = phase(&service, 8, seeding, &report, report_accepted).run();
    assert_eq!(
        seeded.ok, GROUPS,
        "seeding failed: {:?}",
        seeded.failure_samples
    );
    let searches = [
        ("process%20invoice%2042421%20for", "one match"),
        ("M%C3%9CLLER", "`MÜLLER`, 12,500 matches"),
    ];
    let rows = searches
        .into_iter()
        .map(|(term, what)| {
            let path = format!("/api/errors?limit=50&search={term}");
            let request = request_bytes("GET", &path, Some(API_KEY), None);
            let request = || request.clone();
            let warmup = Limits {
                max_requests: 50,
                max_time: options.phase_time,
            };
            phase(&service, 1, warmup, &request, list_ok).run();
            progress(&format!("`GET {path}`, 1 client"));
            let limits = Limits {
                max_requests: LIST_REQUESTS,
                max_time: options.phase_time,
            };
            let result = phase(&service, 1, limits, &request, list_ok).run();
            let met = result.latencies.percentile(50.0) <= Duration::from_millis(10);
            Row {
                benchmark: format!("`GET {path}` ({what}, {} groups)", format_count(GROUPS)),
                clients: 1,
                result,
                target: Some(("p50 ≤ 10 ms".to_string(), met)),
            }
        })
        .collect();
    progress("stopping the search instance (SIGTERM)");
    service.stop();
    rows
}

/// Memory and shutdown of one service instance.
struct InstanceReport {
    name: &'static str,
    idle_kib: u64,
    peak_kib: u64,
    stop: String,
    problems: (Vec<String>, usize),
}

/// Reads the peak memory, then stops the service with SIGTERM.
fn finish(service: Service, name: &'static str, idle_kib: u64) -> InstanceReport {
    let peak_kib =
        procfs::status_kib(service.pid(), "VmHWM").expect("cannot read the service's VmHWM");
    let problems = service.problems();
    progress(&format!("stopping the {name} instance (SIGTERM)"));
    let (status, took) = service.stop();
    InstanceReport {
        name,
        idle_kib,
        peak_kib,
        stop: format!("{status} after {}", format_ms(took)),
        problems,
    }
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

fn main() {
    let options = Options::from_args();
    let bodies = ReportBodies::new();
    let busy_before = procfs::machine_busy(Duration::from_secs(1));

    progress("starting the write instance");
    let writes = start_service(&options);
    let writes_idle = idle_rss_kib(&writes);
    wait_healthy(&writes);
    let mut rows = write_phases(&writes, &bodies, &options);
    let time_wait = procfs::tcp_time_wait();
    rows.extend(close_phases(&writes, &bodies, &options));
    rows.extend(sentry_phases(&writes, &options));
    let write_report = finish(writes, "write", writes_idle);

    progress("starting the list instance (fresh database)");
    let lists = start_service(&options);
    let lists_idle = idle_rss_kib(&lists);
    wait_healthy(&lists);
    let seeding = ensure_groups(&lists, &bodies, LIST_GROUPS);
    rows.extend(list_phases(&lists, &options));
    let list_report = finish(lists, "list", lists_idle);
    rows.extend(search_rows(&options));

    print_settings(&options, &bodies, busy_before);
    print_results(&rows);
    print_memory(&[&write_report, &list_report]);
    print_notes(&rows, &seeding, &[&write_report, &list_report], time_wait);
}

fn print_settings(options: &Options, bodies: &ReportBodies, busy_before: Option<f64>) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## error-tracker benchmark\n");
    let debug_build = options
        .binary
        .components()
        .any(|c| c.as_os_str() == "debug");
    println!(
        "- binary: `{}`{}",
        options.binary.display(),
        if debug_build {
            " (**a debug build: the figures are not representative**)"
        } else {
            ""
        }
    );
    println!(
        "- service env: `DATABASE_PATH=<tmp>/errors.db API_KEY={API_KEY} BIND=127.0.0.1 PORT=0 RATE_LIMIT=0 LOG_LEVEL=info WORKERS={}` (nothing else inherited; defaults otherwise, e.g. `MAX_OCCURRENCES=5`)",
        options.workers
    );
    println!(
        "- machine: {cores} CPU cores, shared by the service and the benchmark clients (loopback); {}",
        describe_busy(busy_before)
    );
    println!(
        "- clients: keep-alive HTTP/1.1, one connection per client thread, closed loop; each write phase stops after {} requests or {} s, each list phase after {LIST_REQUESTS} requests or {} s",
        format_count(WRITE_REQUESTS),
        options.phase_time.as_secs(),
        options.phase_time.as_secs(),
    );
    println!(
        "- report body: {} bytes of JSON (Python traceback, request headers, extra); distinct reports vary the deepest frame's line number",
        bodies.body(REPEATED_LINE).len()
    );
    println!(
        "- Sentry envelope: {} bytes gzip ({} bytes uncompressed), `X-Sentry-Auth` with a `SENTRY_KEYS` key",
        SENTRY_ENVELOPE_GZ.len(),
        SENTRY_ENVELOPE_BYTES
    );
    println!(
        "- list phases run on a second instance with a fresh database seeded with exactly {} unresolved groups\n",
        format_count(LIST_GROUPS)
    );
}

fn print_results(rows: &[Row]) {
    println!("| benchmark | clients | requests | failed | req/s | p50 | p99 | CPU cores: service / bench / other | target |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let r = &row.result;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} | {} |",
            row.benchmark,
            row.clients,
            format_count(r.ok + r.failures),
            format_count(r.failures),
            format_count(r.requests_per_second().round() as u64),
            format_ms(r.latencies.percentile(50.0)),
            format_ms(r.latencies.percentile(99.0)),
            r.server_cores(),
            r.bench_cores(),
            r.other_cores(),
            row.target.as_ref().map_or(String::new(), |(target, met)| {
                format!("{target}: {}", verdict(*met))
            }),
        );
    }
    println!();
}

fn print_memory(instances: &[&InstanceReport]) {
    println!("| service memory | value | target |");
    println!("|---|---:|---|");
    for instance in instances {
        println!(
            "| idle RSS (`VmRSS`) after start-up, {} instance | {} | < 8 MiB: {} |",
            instance.name,
            format_mib(instance.idle_kib),
            verdict(instance.idle_kib < TARGET_IDLE_KIB)
        );
    }
    for instance in instances {
        println!(
            "| peak RSS (`VmHWM`), {} instance | {} | ≤ 20 MiB: {} |",
            instance.name,
            format_mib(instance.peak_kib),
            verdict(instance.peak_kib <= TARGET_PEAK_KIB)
        );
    }
    println!();
}

/// Seeding figures, failures, the services' warnings and their shutdown.
fn print_notes(
    rows: &[Row],
    seeding: &[PhaseResult],
    instances: &[&InstanceReport],
    time_wait: Option<u64>,
) {
    println!("Notes:\n");
    if let Some(time_wait) = time_wait {
        println!(
            "- TCP sockets in TIME_WAIT on the machine before the `Connection: close` phases: {} (a run started within a minute of another finds ~14,000, and its `Connection: close` rows come out slower)",
            format_count(time_wait)
        );
    }
    for s in seeding {
        println!(
            "- seeding the list instance: {} distinct reports at 8 clients, {} req/s, p50 {}, p99 {}",
            format_count(s.ok + s.failures),
            format_count(s.requests_per_second().round() as u64),
            format_ms(s.latencies.percentile(50.0)),
            format_ms(s.latencies.percentile(99.0)),
        );
    }
    for row in rows.iter().filter(|row| row.result.failures > 0) {
        println!(
            "- {} at {} clients: {} failed requests, e.g. {:?}",
            row.benchmark,
            row.clients,
            format_count(row.result.failures),
            row.result.failure_samples
        );
    }
    for instance in instances {
        println!(
            "- {} instance: stopped by SIGTERM with {}",
            instance.name, instance.stop
        );
        let (problems, count) = &instance.problems;
        if *count > 0 {
            println!(
                "- {} instance logged {count} warning/error lines, first ones: {problems:?}",
                instance.name
            );
        }
    }
}
