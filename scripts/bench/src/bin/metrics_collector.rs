//! `bench-metrics-collector`: starts the release `metrics-collector` binary and measures
//!
//! 1. its idle resident memory (`VmRSS`) after start-up;
//! 2. `POST /api/metrics` throughput and latency with batches of 1,000 points (counters,
//!    histograms and gauges of ~200 series, timestamps = now) at 1 and 8 keep-alive clients;
//! 3. on a second database, seeded with 24 hours of points for the same 200 series (Web
//!    Vitals among them) and rolled up by the service after a restart: how long that
//!    aggregation took, then the latency of the read endpoints (`GET /api/metrics` for one
//!    series and with `group_by`, `/api/metrics/names`, `/api/dashboard`, `/metrics`);
//! 4. every instance's peak resident memory (`VmHWM`) and its exit after SIGTERM.
//!
//! It prints a Markdown report on stdout (progress goes to stderr). Build first:
//! `cargo build --release -p metrics-collector -p bench`, then run
//! `./target/release/bench-metrics-collector [--binary PATH] [--seconds S] [--timeout S]`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench::args::Args;
use bench::client::{request_bytes, Client};
use bench::load::{Limits, MakeRequest, Phase, PhaseResult};
use bench::procfs;
use bench::report::{describe_busy, load_average, verdict};
use bench::service::Service;
use bench::stats::{format_count, format_mib, format_ms};

/// The API key the service is started with.
const API_KEY: &str = "bench";
/// Points per `POST /api/metrics` batch (the service's maximum).
const BATCH_POINTS: u64 = 1_000;
/// Upper bound of batches per ingest phase (the time limit usually ends it first).
const INGEST_BATCHES: u64 = 20_000;
/// Unmeasured batches before the ingest phases (creates the 200 series).
const INGEST_WARMUP: u64 = 50;
/// Measured requests per query phase, and unmeasured ones before.
const QUERY_REQUESTS: u64 = 500;
const QUERY_WARMUP: u64 = 20;
/// Minutes of history seeded for the queries.
const SEED_MINUTES: i64 = 24 * 60;
/// `GET /api/metrics?...&period=24h` for one seeded series must hold at least this many
/// minute buckets before the queries are timed (a few minutes slide out of the window
/// while the benchmark runs).
const MIN_DAY_BUCKETS: usize = 1_380;
/// Targets from the issue.
const TARGET_POINTS_PER_S: f64 = 250_000.0;
const TARGET_SERIES_P50: Duration = Duration::from_millis(5);
const TARGET_NAMES_P50: Duration = Duration::from_millis(1);
const TARGET_DASHBOARD_7D_P50: Duration = Duration::from_millis(20);
const TARGET_IDLE_KIB: u64 = 8 * 1024;
const TARGET_PEAK_KIB: u64 = 20 * 1024;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// Command-line options.
struct Options {
    /// The `metrics-collector` binary.
    binary: PathBuf,
    /// Time limit of each load phase.
    phase_time: Duration,
    /// How long to wait for the seeded day to be rolled up.
    timeout: Duration,
    /// Leave the query instance's directory (the seeded, rolled-up `metrics.db`).
    keep: bool,
}

const USAGE: &str = "\
Usage: bench-metrics-collector [--binary PATH] [--seconds S] [--timeout S] [--keep]

Build first: cargo build --release -p metrics-collector -p bench

  --binary PATH  the metrics-collector binary (default: metrics-collector next to this
                 program, else target/release/metrics-collector)
  --seconds S    time limit of each load phase (default 5)
  --timeout S    give up waiting for the seeded day to be rolled up after S seconds
                 (default 300)
  --keep         leave the seeded, rolled-up database (metrics.db) and print its path

Prints a Markdown report on stdout; progress goes to stderr.";

impl Options {
    /// Parses the arguments; exits with the usage on `--help` or a bad argument.
    fn from_args() -> Options {
        let mut options = Options {
            binary: bench::service::release_binary("metrics-collector"),
            phase_time: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
            keep: false,
        };
        let mut args = Args::new("bench-metrics-collector", USAGE);
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--binary" => options.binary = args.value(&flag).into(),
                "--seconds" => options.phase_time = args.seconds(&flag),
                "--timeout" => options.timeout = args.seconds(&flag),
                "--keep" => options.keep = true,
                _ => args.unknown(&flag),
            }
        }
        if options.phase_time.is_zero() || options.timeout.is_zero() {
            args.error("--seconds and --timeout need a positive whole number");
        }
        options.binary = args.binary(
            &options.binary,
            "cargo build --release -p metrics-collector -p bench",
        );
        options
    }
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

// ---------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------

/// The service's environment (nothing else is inherited): `aggregation_interval` seconds
/// between aggregation runs (the first one runs at start-up).
fn service_env(dir: &tempfile::TempDir, aggregation_interval: u64) -> Vec<(&'static str, String)> {
    vec![
        (
            "DATABASE_PATH",
            dir.path().join("metrics.db").display().to_string(),
        ),
        ("API_KEY", API_KEY.to_string()),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("RATE_LIMIT", "0".to_string()),
        // `info` is needed for the `listening on` line and the aggregation summary; nothing
        // is logged per request below `debug`.
        ("LOG_LEVEL", "info".to_string()),
        ("AGGREGATION_INTERVAL", aggregation_interval.to_string()),
    ]
}

/// Starts an instance on the database in `dir` (a new temporary directory when `None`).
fn start_service(
    options: &Options,
    dir: Option<tempfile::TempDir>,
    aggregation_interval: u64,
) -> Service {
    let dir = dir.unwrap_or_else(|| {
        tempfile::Builder::new()
            .prefix("monlight-bench-metrics-")
            .tempdir()
            .expect("cannot create a temporary directory")
    });
    let env = service_env(&dir, aggregation_interval);
    Service::start(&options.binary, &env, dir)
}

/// The service's peak resident memory so far (`VmHWM`).
fn peak_kib(service: &Service) -> u64 {
    procfs::status_kib(service.pid(), "VmHWM").unwrap_or(0)
}

/// Resident memory once the service has settled after start-up, before any request.
fn idle_rss_kib(service: &Service) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    procfs::status_kib(service.pid(), "VmRSS").expect("cannot read the service's VmRSS")
}

/// `GET path` (with the API key) on a new connection; panics unless it answers 200.
fn get_json(service: &Service, path: &str) -> serde_json::Value {
    let mut client = Client::connect(service.addr()).expect("cannot connect to the service");
    let reply = client
        .send(&request_bytes("GET", path, Some(API_KEY), None))
        .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
    assert_eq!(
        reply.status,
        200,
        "GET {path} answered {}: {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

/// Memory and shutdown of one service instance.
struct InstanceReport {
    name: &'static str,
    idle_kib: Option<u64>,
    peak_kib: u64,
    stop: String,
    problems: (Vec<String>, usize),
}

/// Reads the peak memory, then stops the service with SIGTERM; keeps its directory when
/// asked (to start it again on the same database).
fn finish(
    service: Service,
    name: &'static str,
    idle_kib: Option<u64>,
) -> (InstanceReport, tempfile::TempDir) {
    let peak_kib =
        procfs::status_kib(service.pid(), "VmHWM").expect("cannot read the service's VmHWM");
    let problems = service.problems();
    progress(&format!("stopping the {name} instance (SIGTERM)"));
    let (status, took, dir) = service.stop_keeping_dir();
    let report = InstanceReport {
        name,
        idle_kib,
        peak_kib,
        stop: format!("{status} after {}", format_ms(took)),
        problems,
    };
    (report, dir)
}

// ---------------------------------------------------------------------------------------
// The series and their points
// ---------------------------------------------------------------------------------------

/// splitmix64 of `x`: a deterministic "random" number for a (series, minute, n) triple.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in [0, 1) from `seed`.
fn unit(seed: u64) -> f64 {
    (mix(seed) >> 11) as f64 / (1u64 << 53) as f64
}

/// How a series' values look.
#[derive(Debug, Clone, Copy)]
enum Values {
    /// Counter increments, 1–`max`.
    Increments { max: u64 },
    /// A long-tailed latency or size around `median` (log-normal-ish).
    LongTail { median: f64 },
    /// A level in [`low`, `high`).
    Level { low: f64, high: f64 },
}

impl Values {
    /// The value for `seed`, as JSON number text.
    fn render(self, seed: u64) -> String {
        match self {
            Values::Increments { max } => (1 + mix(seed) % max).to_string(),
            Values::LongTail { median } => {
                // exp(N(0, 0.6)) by Box-Muller: p99 ≈ 4 × the median.
                let (u1, u2) = (unit(seed).max(1e-12), unit(seed ^ 0x5555));
                let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let value = median * (0.6 * normal).exp();
                if median < 1.0 {
                    format!("{value:.4}")
                } else {
                    format!("{value:.1}")
                }
            }
            Values::Level { low, high } => format!("{:.2}", low + (high - low) * unit(seed)),
        }
    }
}

/// One series: everything of a point but its value and timestamp, as JSON text.
struct SeriesSpec {
    /// `{"name":...,"type":...,"labels":{...},"value":` — the point up to its value.
    head: String,
    values: Values,
}

impl SeriesSpec {
    fn new(name: &str, kind: &str, labels: serde_json::Value, values: Values) -> SeriesSpec {
        let head = format!(
            "{{\"name\":{},\"type\":\"{kind}\",\"labels\":{labels},\"value\":",
            serde_json::Value::from(name)
        );
        SeriesSpec { head, values }
    }

    /// Appends the point `{...,"value":V,"timestamp":T}` to `out`.
    fn push_point(&self, out: &mut String, seed: u64, timestamp: &str) {
        out.push_str(&self.head);
        out.push_str(&self.values.render(seed));
        out.push_str(",\"timestamp\":");
        out.push_str(timestamp);
        out.push('}');
    }
}

const ROUTES: [&str; 8] = [
    "/",
    "/api/orders",
    "/api/orders/{id}",
    "/api/cart",
    "/api/products",
    "/api/products/{id}",
    "/login",
    "/checkout",
];
const HOSTS: [&str; 8] = [
    "web-1", "web-2", "web-3", "web-4", "worker-1", "worker-2", "db-1", "cache-1",
];
const QUEUES: [&str; 4] = ["emails", "exports", "webhooks", "thumbnails"];
const PAGES: [&str; 4] = ["/", "/products", "/cart", "/checkout"];
/// The Web Vitals, with the median of their values.
const VITALS: [(&str, f64); 5] = [
    ("web_vitals_lcp", 2200.0),
    ("web_vitals_inp", 140.0),
    ("web_vitals_cls", 0.06),
    ("web_vitals_fcp", 1300.0),
    ("web_vitals_ttfb", 450.0),
];

/// The one series the single-series query reads: `http_request_duration_ms` for
/// `GET /api/orders`.
const ONE_SERIES_QUERY: &str =
    "name=http_request_duration_ms&labels=method:GET,route:%2Fapi%2Forders&period=24h";

/// The 200 series of the benchmark: 64 counters, 48 histograms (20 of them Web Vitals) and
/// 88 gauges.
fn all_series() -> Vec<SeriesSpec> {
    use serde_json::json;
    let mut all = Vec::new();
    // Counters: requests per method, route and status (48), jobs per queue and outcome (16).
    for route in ROUTES {
        for method in ["GET", "POST"] {
            for status in ["200", "404", "500"] {
                let max = if status == "200" { 20 } else { 3 };
                all.push(SeriesSpec::new(
                    "http_requests_total",
                    "counter",
                    json!({"method": method, "route": route, "status": status}),
                    Values::Increments { max },
                ));
            }
        }
    }
    for queue in QUEUES {
        for outcome in ["ok", "failed", "retried", "dead"] {
            all.push(SeriesSpec::new(
                "jobs_processed_total",
                "counter",
                json!({"queue": queue, "outcome": outcome}),
                Values::Increments { max: 5 },
            ));
        }
    }
    // Histograms: request durations per method and route (16), query durations (12), the
    // Web Vitals per page (20).
    for (i, route) in ROUTES.iter().enumerate() {
        for method in ["GET", "POST"] {
            all.push(SeriesSpec::new(
                "http_request_duration_ms",
                "histogram",
                json!({"method": method, "route": route}),
                Values::LongTail {
                    median: 20.0 + 15.0 * i as f64,
                },
            ));
        }
    }
    for (i, query) in [
        "select_orders",
        "select_cart",
        "insert_order",
        "update_stock",
        "select_products",
        "select_user",
    ]
    .iter()
    .enumerate()
    {
        for db in ["primary", "replica"] {
            all.push(SeriesSpec::new(
                "db_query_duration_ms",
                "histogram",
                json!({"query": query, "db": db}),
                Values::LongTail {
                    median: 1.0 + 2.0 * i as f64,
                },
            ));
        }
    }
    for (name, median) in VITALS {
        for page in PAGES {
            all.push(SeriesSpec::new(
                name,
                "histogram",
                json!({"source": "browser", "page": page}),
                Values::LongTail { median },
            ));
        }
    }
    // Gauges: host figures (40), pool connections (24), queue depths (4), cache hit ratios
    // (4), open files and threads per host (16).
    for host in HOSTS {
        for (name, low, high) in [
            ("cpu_usage_percent", 5.0, 95.0),
            ("memory_used_bytes", 2.0e8, 1.6e9),
            ("disk_used_bytes", 1.0e10, 4.0e10),
            ("load_average_1m", 0.0, 4.0),
            ("network_receive_bytes_per_second", 1.0e4, 5.0e6),
        ] {
            all.push(SeriesSpec::new(
                name,
                "gauge",
                json!({"host": host}),
                Values::Level { low, high },
            ));
        }
        for state in ["idle", "busy", "waiting"] {
            all.push(SeriesSpec::new(
                "db_pool_connections",
                "gauge",
                json!({"host": host, "state": state}),
                Values::Level {
                    low: 0.0,
                    high: 20.0,
                },
            ));
        }
        for name in ["process_open_fds", "process_threads"] {
            all.push(SeriesSpec::new(
                name,
                "gauge",
                json!({"host": host}),
                Values::Level {
                    low: 10.0,
                    high: 200.0,
                },
            ));
        }
    }
    for queue in QUEUES {
        all.push(SeriesSpec::new(
            "queue_depth",
            "gauge",
            json!({"queue": queue}),
            Values::Level {
                low: 0.0,
                high: 500.0,
            },
        ));
        all.push(SeriesSpec::new(
            "cache_hit_ratio",
            "gauge",
            json!({"cache": queue}),
            Values::Level {
                low: 0.6,
                high: 1.0,
            },
        ));
    }
    assert_eq!(all.len(), 200, "the benchmark's series");
    all
}

/// A timestamp as Unix seconds with milliseconds, e.g. `1767225600.123`.
fn unix_seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Stands in for the timestamp in the pre-rendered ingest batches.
const TIME_MARKER: &str = "@T@";
/// Pre-rendered ingest batches (different values), used in turn.
const INGEST_VARIANTS: u64 = 16;

/// Ingest batches of 1,000 points, 5 per series, the same timestamp (now) for every point
/// of a batch: rendered once with a marker, so that a request costs the client only a copy.
struct IngestBatches {
    /// Per variant, the body's pieces between the timestamps.
    variants: Vec<Vec<String>>,
    next: std::sync::atomic::AtomicU64,
}

impl IngestBatches {
    fn new(series: &[SeriesSpec]) -> IngestBatches {
        let variants = (0..INGEST_VARIANTS)
            .map(|variant| {
                let mut body = String::from("[");
                for n in 0..BATCH_POINTS {
                    let index = (n % series.len() as u64) as usize;
                    if n > 0 {
                        body.push(',');
                    }
                    series[index].push_point(&mut body, variant << 32 | n, TIME_MARKER);
                }
                body.push(']');
                body.split(TIME_MARKER).map(str::to_string).collect()
            })
            .collect();
        IngestBatches {
            variants,
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next `POST /api/metrics`, every point stamped now.
    fn request(&self) -> Vec<u8> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pieces = &self.variants[(n % INGEST_VARIANTS) as usize];
        let stamp = unix_seconds(now_ms());
        let mut body =
            String::with_capacity(pieces.iter().map(String::len).sum::<usize>() + 16 * 1024);
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                body.push_str(&stamp);
            }
            body.push_str(piece);
        }
        request_bytes("POST", "/api/metrics", Some(API_KEY), Some(body.as_bytes()))
    }

    /// Bytes of one batch's body.
    fn body_bytes(&self) -> usize {
        let pieces = &self.variants[0];
        pieces.iter().map(String::len).sum::<usize>() + (pieces.len() - 1) * 14
    }
}

// ---------------------------------------------------------------------------------------
// Ingest phases
// ---------------------------------------------------------------------------------------

fn batch_accepted(status: u16) -> bool {
    status == 202
}

fn read_ok(status: u16) -> bool {
    status == 200
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

/// One line of the ingest table.
struct IngestRow {
    what: String,
    clients: usize,
    result: PhaseResult,
    /// The instance's `VmHWM` after the phase.
    peak_kib: u64,
    target: Option<(String, bool)>,
}

impl IngestRow {
    fn points_per_second(&self) -> f64 {
        self.result.ok as f64 * BATCH_POINTS as f64 / self.result.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `POST /api/metrics` at 1 and 8 clients, after an unmeasured warm-up.
fn ingest_phases(service: &Service, batches: &IngestBatches, options: &Options) -> Vec<IngestRow> {
    let request = || batches.request();
    progress(&format!("warm-up: {INGEST_WARMUP} batches"));
    let warmup = Limits {
        max_requests: INGEST_WARMUP,
        max_time: options.phase_time,
    };
    phase(service, 1, warmup, &request, batch_accepted).run();
    [1, 8]
        .into_iter()
        .map(|clients| {
            progress(&format!("`POST /api/metrics`, {clients} client(s)"));
            let limits = Limits {
                max_requests: INGEST_BATCHES,
                max_time: options.phase_time,
            };
            let result = phase(service, clients, limits, &request, batch_accepted).run();
            let mut row = IngestRow {
                what: "`POST /api/metrics`, 1,000 points per batch, timestamps now".to_string(),
                clients,
                result,
                peak_kib: peak_kib(service),
                target: None,
            };
            if clients == 8 {
                let met = row.points_per_second() >= TARGET_POINTS_PER_S;
                row.target = Some(("≥ 250,000 points/s".to_string(), met));
            }
            row
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The seeded day
// ---------------------------------------------------------------------------------------

/// Values per series per seeded minute: 1–3.
fn points_in_minute(series: usize, minute: i64) -> u64 {
    1 + mix((series as u64) << 40 ^ minute as u64) % 3
}

/// Where the seeding has got: the next (minute, series, point) to send.
struct SeedCursor {
    minute: i64,
    series: usize,
    point: u64,
}

/// 24 hours of points for every series, in batches of 1,000 in time order, timestamps
/// spread over each minute; generated as they are sent.
struct SeedBatches<'a> {
    series: &'a [SeriesSpec],
    /// The first seeded minute (epoch minutes); the last is `first + SEED_MINUTES - 1`.
    first_minute: i64,
    cursor: Mutex<SeedCursor>,
    points: u64,
}

impl SeedBatches<'_> {
    /// The day of complete minutes that ends with the minute before now.
    fn new(series: &[SeriesSpec]) -> SeedBatches<'_> {
        let first_minute = now_ms().div_euclid(60_000) - SEED_MINUTES;
        let points = (first_minute..first_minute + SEED_MINUTES)
            .map(|m| {
                (0..series.len())
                    .map(|s| points_in_minute(s, m))
                    .sum::<u64>()
            })
            .sum();
        SeedBatches {
            series,
            first_minute,
            cursor: Mutex::new(SeedCursor {
                minute: first_minute,
                series: 0,
                point: 0,
            }),
            points,
        }
    }

    fn batches(&self) -> u64 {
        self.points.div_ceil(BATCH_POINTS)
    }

    /// The next batch (the last one may be short; none is empty while batches remain).
    fn request(&self) -> Vec<u8> {
        let mut body = String::with_capacity(160 * BATCH_POINTS as usize);
        body.push('[');
        let mut count = 0;
        {
            let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
            let end = self.first_minute + SEED_MINUTES;
            while count < BATCH_POINTS && cursor.minute < end {
                let (s, m) = (cursor.series, cursor.minute);
                if cursor.point < points_in_minute(s, m) {
                    let seed = (s as u64) << 48 ^ (m as u64) << 4 ^ cursor.point;
                    let ms = m * 60_000 + (mix(seed ^ 0xABCD) % 60_000) as i64;
                    if count > 0 {
                        body.push(',');
                    }
                    self.series[s].push_point(&mut body, seed, &unix_seconds(ms));
                    count += 1;
                    cursor.point += 1;
                } else {
                    cursor.point = 0;
                    cursor.series += 1;
                    if cursor.series == self.series.len() {
                        cursor.series = 0;
                        cursor.minute += 1;
                    }
                }
            }
        }
        body.push(']');
        request_bytes("POST", "/api/metrics", Some(API_KEY), Some(body.as_bytes()))
    }
}

/// What seeding and rolling up the day took.
struct Seeding {
    points: u64,
    result: PhaseResult,
    /// The seeding instance's `VmHWM` after the seeding.
    peak_kib: u64,
    /// From starting the second instance on the seeded database to its `aggregation: ...`
    /// log line, the line itself, and the CPU the service used meanwhile.
    aggregation: Option<(Duration, String, Duration)>,
    /// From the restart until `/health` showed a run after the seeding and one series'
    /// day held its buckets.
    ready_after: Duration,
    /// Minute buckets of the single-series day query when the queries started.
    day_buckets: usize,
    /// The query instance's `VmRSS` and `VmHWM` once the day was rolled up.
    rss_kib: u64,
    rollup_peak_kib: u64,
}

/// Epoch ms of a `YYYY-MM-DDTHH:MM:SS(.fff)Z` time (what `/health` answers).
fn parse_utc_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match text.get(19..text.len() - 1) {
        Some("") => 0,
        Some(frac) => {
            let digits = frac.strip_prefix('.')?;
            let padded = format!("{digits:0<3}");
            padded.get(..3)?.parse::<i64>().ok()?
        }
        None => return None,
    };
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + millis)
}

/// Seeds a fresh instance with the day (aggregation held off: `AGGREGATION_INTERVAL=3600`,
/// so only the start-up run happens, before the seeding), stops it, and starts it again on
/// the same database with `AGGREGATION_INTERVAL=1`: its start-up run rolls the whole day up
/// at once. Waits (at most `--timeout`) until `/health` shows a run that started after the
/// seeding and one series' day answers with its minute buckets.
fn seeded_instance(options: &Options, series: &[SeriesSpec]) -> (Service, Seeding, InstanceReport) {
    progress("starting the seeding instance (fresh database, AGGREGATION_INTERVAL=3600)");
    let seeder = start_service(options, None, 3600);
    let seed_idle = idle_rss_kib(&seeder);
    let seed = SeedBatches::new(series);
    progress(&format!(
        "seeding {} points over the last 24 h ({} batches, 8 clients)",
        format_count(seed.points),
        format_count(seed.batches())
    ));
    let request = || seed.request();
    let limits = Limits {
        max_requests: seed.batches(),
        max_time: options.timeout,
    };
    let result = phase(&seeder, 8, limits, &request, batch_accepted).run();
    assert!(
        result.failures == 0 && result.ok == seed.batches(),
        "seeding failed: {} of {} batches stored, e.g. {:?}",
        result.ok,
        seed.batches(),
        result.failure_samples
    );
    let seeded_at = now_ms();
    let seed_peak_kib = peak_kib(&seeder);
    let (seed_report, dir) = finish(seeder, "seeding", Some(seed_idle));

    progress("restarting on the seeded database (AGGREGATION_INTERVAL=1)");
    let restarted = Instant::now();
    let service = start_service(options, Some(dir), 1);
    let cpu_at_start = procfs::cpu_time(service.pid()).unwrap_or_default();
    let deadline = restarted + options.timeout;
    let path = format!("/api/metrics?{ONE_SERIES_QUERY}");
    let mut aggregation = None;
    let day_buckets = loop {
        if aggregation.is_none() {
            let lines = service.lines_containing("aggregation: ");
            if let Some((at, line)) = lines.into_iter().next() {
                let cpu = procfs::cpu_time(service.pid())
                    .unwrap_or_default()
                    .saturating_sub(cpu_at_start);
                let text = line
                    .split_once("aggregation: ")
                    .map_or(line.clone(), |(_, rest)| rest.to_string());
                aggregation = Some((at.duration_since(restarted), text, cpu));
            }
        }
        let health = get_json(&service, "/health");
        let last = health["last_aggregation"]
            .as_str()
            .and_then(parse_utc_ms)
            .unwrap_or(i64::MIN);
        if last > seeded_at {
            let answer = get_json(&service, &path);
            let series_count = answer["series"].as_array().map_or(0, Vec::len);
            let buckets = answer["data"].as_array().map_or(0, Vec::len);
            assert_eq!(series_count, 1, "GET {path} must select one series");
            if buckets >= MIN_DAY_BUCKETS {
                break buckets;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the seeded day was not rolled up within {:?} (last /health: {health})",
            options.timeout
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let seeding = Seeding {
        points: seed.points,
        result,
        peak_kib: seed_peak_kib,
        aggregation,
        ready_after: restarted.elapsed(),
        day_buckets,
        rss_kib: procfs::status_kib(service.pid(), "VmRSS").unwrap_or(0),
        rollup_peak_kib: peak_kib(&service),
    };
    (service, seeding, seed_report)
}

// ---------------------------------------------------------------------------------------
// Query phases
// ---------------------------------------------------------------------------------------

/// One line of the query table.
struct QueryRow {
    path: String,
    result: PhaseResult,
    /// Bytes of the answer.
    answer_bytes: usize,
    /// The instance's `VmHWM` after the phase.
    peak_kib: u64,
    target: Option<(String, bool)>,
}

/// The read endpoints, one client each: warm-up, then 500 requests or `--seconds`.
fn query_phases(service: &Service, options: &Options) -> Vec<QueryRow> {
    let queries: [(String, Option<(&str, Duration)>); 7] = [
        (
            format!("/api/metrics?{ONE_SERIES_QUERY}"),
            Some(("p50 ≤ 5 ms", TARGET_SERIES_P50)),
        ),
        (
            "/api/metrics/names".to_string(),
            Some(("p50 ≤ 1 ms", TARGET_NAMES_P50)),
        ),
        (
            "/api/dashboard?period=7d".to_string(),
            Some(("p50 ≤ 20 ms", TARGET_DASHBOARD_7D_P50)),
        ),
        ("/api/dashboard?period=24h".to_string(), None),
        (
            "/api/metrics?name=http_request_duration_ms&group_by=route&period=24h".to_string(),
            None,
        ),
        (
            "/api/metrics?name=http_requests_total&period=24h".to_string(),
            None,
        ),
        ("/metrics".to_string(), None),
    ];
    queries
        .into_iter()
        .map(|(path, target)| {
            let request = request_bytes("GET", &path, Some(API_KEY), None);
            let mut client =
                Client::connect(service.addr()).expect("cannot connect to the service");
            let answer = client
                .send(&request)
                .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
            assert_eq!(answer.status, 200, "GET {path} answered {}", answer.status);
            let request = || request.clone();
            let warmup = Limits {
                max_requests: QUERY_WARMUP,
                max_time: options.phase_time,
            };
            phase(service, 1, warmup, &request, read_ok).run();
            progress(&format!("`GET {path}`, 1 client"));
            let limits = Limits {
                max_requests: QUERY_REQUESTS,
                max_time: options.phase_time,
            };
            let result = phase(service, 1, limits, &request, read_ok).run();
            let target = target.map(|(text, p50)| {
                (
                    text.to_string(),
                    result.failures == 0 && result.latencies.percentile(50.0) <= p50,
                )
            });
            QueryRow {
                path,
                result,
                answer_bytes: answer.body.len(),
                peak_kib: peak_kib(service),
                target,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Main and the report
// ---------------------------------------------------------------------------------------

fn main() {
    let options = Options::from_args();
    let series = all_series();
    let batches = IngestBatches::new(&series);
    let load_before = load_average();
    let busy_before = procfs::machine_busy(Duration::from_secs(1));

    progress("starting the ingest instance (fresh database)");
    let ingest = start_service(&options, None, 3600);
    let ingest_idle = idle_rss_kib(&ingest);
    let _ = get_json(&ingest, "/health");
    let ingest_rows = ingest_phases(&ingest, &batches, &options);
    let (ingest_report, _) = finish(ingest, "ingest", Some(ingest_idle));

    let (queries, seeding, seed_report) = seeded_instance(&options, &series);
    let query_rows = query_phases(&queries, &options);
    let (query_report, query_dir) = finish(queries, "query", None);

    let instances = [&ingest_report, &seed_report, &query_report];
    print_settings(&options, &batches, busy_before, &load_before);
    print_ingest(&ingest_rows, &seeding);
    print_queries(&query_rows, &seeding);
    print_memory(&instances, &seeding);
    print_notes(&ingest_rows, &query_rows, &instances);
    if options.keep {
        let kept = query_dir.keep();
        println!(
            "- kept: `{}` (`sqlite3 {}/metrics.db`)",
            kept.display(),
            kept.display()
        );
    }
}

fn print_settings(
    options: &Options,
    batches: &IngestBatches,
    busy_before: Option<f64>,
    load_before: &str,
) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## metrics-collector benchmark\n");
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
        "- service env: `DATABASE_PATH=<tmp>/metrics.db API_KEY={API_KEY} BIND=127.0.0.1 PORT=0 RATE_LIMIT=0 LOG_LEVEL=info AGGREGATION_INTERVAL=<n>` (nothing else inherited; `WORKERS=4`, retention and the other defaults): `3600` for the ingest and seeding instances (only the start-up run, before any point), `1` for the query instance"
    );
    println!(
        "- machine: {cores} CPU cores, shared by the service and the benchmark clients (loopback); {}; 1-minute load average {load_before} before the run, {} after",
        describe_busy(busy_before),
        load_average()
    );
    println!(
        "- series: 200 — counters `http_requests_total{{method,route,status}}` (48) and `jobs_processed_total{{queue,outcome}}` (16); histograms `http_request_duration_ms{{method,route}}` (16), `db_query_duration_ms{{query,db}}` (12) and `web_vitals_lcp|inp|cls|fcp|ttfb{{source=browser,page}}` (5 × 4 pages); 88 gauges (host figures, pool connections, queue depths, cache ratios)"
    );
    println!(
        "- ingest: batches of {} points (5 per series, values varied, every point stamped now as Unix seconds), ~{} KB of JSON each; keep-alive clients, closed loop, each phase after {INGEST_WARMUP} unmeasured batches stops after {} batches or {} s",
        format_count(BATCH_POINTS),
        batches.body_bytes() / 1000,
        format_count(INGEST_BATCHES),
        options.phase_time.as_secs()
    );
    println!(
        "- queries: a second database seeded with {SEED_MINUTES} minutes (the last 24 h) × 200 series, 1–3 points per series and minute, then rolled up by the service; one keep-alive client, {QUERY_WARMUP} unmeasured requests then {QUERY_REQUESTS} or {} s per endpoint\n",
        options.phase_time.as_secs()
    );
}

fn print_ingest(rows: &[IngestRow], seeding: &Seeding) {
    println!("| ingest | clients | batches | failed | batches/s | points/s | p50 per batch | p99 per batch | CPU cores: service / bench / other | peak RSS after | target |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let seed_row = IngestRow {
        what: "seeding: `POST /api/metrics`, the last 24 h in time order (late points)".to_string(),
        clients: 8,
        result: seeding.result.clone(),
        peak_kib: seeding.peak_kib,
        target: None,
    };
    for row in rows.iter().chain([&seed_row]) {
        let r = &row.result;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} | {} | {} |",
            row.what,
            row.clients,
            format_count(r.ok + r.failures),
            format_count(r.failures),
            format_count(r.requests_per_second().round() as u64),
            format_count(row.points_per_second().round() as u64),
            format_ms(r.latencies.percentile(50.0)),
            format_ms(r.latencies.percentile(99.0)),
            r.server_cores(),
            r.bench_cores(),
            r.other_cores(),
            format_mib(row.peak_kib),
            row.target
                .as_ref()
                .map_or(String::new(), |(t, met)| format!("{t}: {}", verdict(*met))),
        );
    }
    println!();
    match &seeding.aggregation {
        Some((took, line, cpu)) => println!(
            "Rolling up the seeded day ({} points; the start-up run after the restart): **{:.2} s** from the restart to its log line `aggregation: {line}`, {:.2} s of service CPU; the queries' series had its {} minute buckets {:.2} s after the restart.\n",
            format_count(seeding.points),
            took.as_secs_f64(),
            cpu.as_secs_f64(),
            format_count(seeding.day_buckets as u64),
            seeding.ready_after.as_secs_f64()
        ),
        None => println!(
            "Rolling up the seeded day ({} points): no `aggregation:` log line seen; the day was queryable {:.2} s after the restart.\n",
            format_count(seeding.points),
            seeding.ready_after.as_secs_f64()
        ),
    }
}

fn print_queries(rows: &[QueryRow], seeding: &Seeding) {
    println!(
        "| query (200 series × 24 h, {} minute buckets in the one-series day) | requests | failed | req/s | p50 | p99 | answer | CPU cores: service / bench / other | peak RSS after | target |",
        format_count(seeding.day_buckets as u64)
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let r = &row.result;
        println!(
            "| `GET {}` | {} | {} | {} | {} | {} | {} KB | {:.2} / {:.2} / {:.2} | {} | {} |",
            row.path,
            format_count(r.ok + r.failures),
            format_count(r.failures),
            format_count(r.requests_per_second().round() as u64),
            format_ms(r.latencies.percentile(50.0)),
            format_ms(r.latencies.percentile(99.0)),
            format_count(row.answer_bytes.div_ceil(1000) as u64),
            r.server_cores(),
            r.bench_cores(),
            r.other_cores(),
            format_mib(row.peak_kib),
            row.target
                .as_ref()
                .map_or(String::new(), |(t, met)| format!("{t}: {}", verdict(*met))),
        );
    }
    println!();
}

fn print_memory(instances: &[&InstanceReport], seeding: &Seeding) {
    println!("| service memory | value | target |");
    println!("|---|---:|---|");
    for instance in instances {
        if let Some(idle) = instance.idle_kib {
            println!(
                "| idle RSS (`VmRSS`) after start-up, {} instance | {} | ≤ 8 MiB: {} |",
                instance.name,
                format_mib(idle),
                verdict(idle <= TARGET_IDLE_KIB)
            );
        }
    }
    println!(
        "| query instance once the day was rolled up: `VmRSS` / `VmHWM` | {} / {} | |",
        format_mib(seeding.rss_kib),
        format_mib(seeding.rollup_peak_kib)
    );
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

/// Failures, the services' warnings and their shutdown.
fn print_notes(ingest: &[IngestRow], queries: &[QueryRow], instances: &[&InstanceReport]) {
    println!("Notes:\n");
    for row in ingest.iter().filter(|row| row.result.failures > 0) {
        println!(
            "- {} at {} clients: {} failed batches, e.g. {:?}",
            row.what,
            row.clients,
            format_count(row.result.failures),
            row.result.failure_samples
        );
    }
    for row in queries.iter().filter(|row| row.result.failures > 0) {
        println!(
            "- `GET {}`: {} failed requests, e.g. {:?}",
            row.path,
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
