//! `bench-log-viewer`: starts the release `log-viewer` binary on a fake Docker containers
//! directory and measures
//!
//! 1. ingestion until searchable: lines written to a container's `<id>-json.log` as fast as
//!    possible (pre-generated), timed from the first write until `GET /api/logs?limit=1`
//!    shows the last line stored (ids count entries from 1 and are never reused) — for the
//!    first 200,000 lines, then for 800,000 more;
//! 2. `GET /api/logs?search=<term>&limit=100` latency (p50/p99, one keep-alive client) for a
//!    rare term (0.01% of lines), a 2% term and a term in every line, and the unfiltered
//!    `GET /api/logs?limit=100`, at 200,000 and at 1,000,000 entries;
//! 3. the service's idle and peak resident memory (`VmRSS`, `VmHWM`).
//!
//! It prints a Markdown report on stdout (progress goes to stderr). Build first:
//! `cargo build --release -p log-viewer -p bench`, then run
//! `./target/release/bench-log-viewer [--binary PATH] [--keep] [--first N] [--total N]
//! [--max-entries N]`.
//! With `--keep` the temporary directory (database, log file) is left for inspection, e.g.
//! `sqlite3 <dir>/logs.db 'EXPLAIN QUERY PLAN ...'`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bench::args::Args;
use bench::client::{request_bytes, Client};
use bench::load::{Limits, Phase, PhaseResult};
use bench::procfs;
use bench::report::{describe_busy, load_average, verdict};
use bench::service::Service;
use bench::stats::{format_count, format_mib, format_ms};

/// The API key the service is started with.
const API_KEY: &str = "bench";
/// The fake container's name (`config.v2.json` says `/bench_app`).
const CONTAINER_NAME: &str = "bench_app";
/// Lines stored before the first round of searches, and in all (defaults of `--first` and
/// `--total`).
const FIRST_LINES: u64 = 200_000;
const TOTAL_LINES: u64 = 1_000_000;
/// Measured requests per search benchmark (default of `--requests`), after a warm-up.
const SEARCH_REQUESTS: u64 = 200;
const SEARCH_WARMUP: u64 = 10;
/// Time limit of one search benchmark (it normally ends by the request count).
const SEARCH_TIME_LIMIT: Duration = Duration::from_secs(60);
/// Giving up waiting for the service to store the lines (default of `--timeout`).
const INGEST_TIMEOUT: Duration = Duration::from_secs(600);
/// `MAX_ENTRIES` by default: above `TOTAL_LINES`, so nothing is deleted.
const MAX_ENTRIES: u64 = 2_000_000;
/// How often the newest entry is asked for while waiting for ingestion.
const HEALTH_POLL: Duration = Duration::from_millis(10);
/// Page size of the searches.
const PAGE: u64 = 100;
/// The service counts `total` up to this many matches, then flags it as capped.
const TOTAL_CAP: u64 = 10_000;

/// The vocabulary: `RARE_TERM` is in line `i` iff `i % RARE_EVERY == RARE_AT` (0.01%),
/// `COMMON_TERM` iff `i % COMMON_EVERY == COMMON_AT` (2%), `EVERY_TERM` in every line. No
/// other generated text contains the first two (checked while generating).
const RARE_TERM: &str = "zebracorn";
const RARE_EVERY: u64 = 10_000;
const RARE_AT: u64 = 4_321;
const COMMON_TERM: &str = "timeout";
const COMMON_EVERY: u64 = 50;
const COMMON_AT: u64 = 17;
const EVERY_TERM: &str = "request";

/// Targets from the spec and the issue.
const TARGET_INGEST_LPS: f64 = 30_000.0;
const TARGET_SEARCH_P50_FIRST: Duration = Duration::from_millis(5);
const TARGET_SEARCH_P50_TOTAL: Duration = Duration::from_millis(20);
const TARGET_PEAK_KIB: u64 = 20 * 1024;
const TARGET_IDLE_KIB: u64 = 8 * 1024;

/// The first line's Docker time: 2026-01-20T10:00:00Z, in ms; lines are ~2 ms apart.
const FIRST_TIME_MS: i64 = 1_768_903_200_000;

/// Command-line options.
struct Options {
    /// The `log-viewer` binary.
    binary: PathBuf,
    /// Leave the temporary directory behind.
    keep: bool,
    first: u64,
    total: u64,
    requests: u64,
    timeout: Duration,
    /// `MAX_ENTRIES` for the service.
    max_entries: u64,
}

const USAGE: &str = "\
Usage: bench-log-viewer [--binary PATH] [--keep] [--first N] [--total N] [--requests N]
                        [--timeout S] [--max-entries N]

Build first: cargo build --release -p log-viewer -p bench

  --binary PATH   the log-viewer binary (default: log-viewer next to this program,
                  else target/release/log-viewer)
  --keep          keep the temporary directory (logs.db, the container log) and print its path
  --first N       lines written before the first round of searches (default 200000)
  --total N       lines written in all; the rest before the second round (default 1000000)
  --requests N    measured requests per search benchmark (default 200)
  --timeout S     give up waiting for ingestion after S seconds (default 600)
  --max-entries N MAX_ENTRIES for the service (default 2000000: no deletion; e.g. 100000,
                  the service's default, measures ingestion while the cap deletes)

Prints a Markdown report on stdout; progress goes to stderr.";

impl Options {
    /// Parses the arguments; exits with the usage on `--help` or a bad argument.
    fn from_args() -> Options {
        let mut options = Options {
            binary: bench::service::release_binary("log-viewer"),
            keep: false,
            first: FIRST_LINES,
            total: TOTAL_LINES,
            requests: SEARCH_REQUESTS,
            timeout: INGEST_TIMEOUT,
            max_entries: MAX_ENTRIES,
        };
        let mut args = Args::new("bench-log-viewer", USAGE);
        while let Some(flag) = args.next_flag() {
            match flag.as_str() {
                "--binary" => options.binary = args.value(&flag).into(),
                "--keep" => options.keep = true,
                "--first" => options.first = args.number(&flag),
                "--total" => options.total = args.number(&flag),
                "--requests" => options.requests = args.number(&flag),
                "--timeout" => options.timeout = args.seconds(&flag),
                "--max-entries" => options.max_entries = args.number(&flag),
                _ => args.unknown(&flag),
            }
        }
        if options.first == 0
            || options.total < options.first
            || options.requests == 0
            || options.max_entries == 0
        {
            args.error("need 0 < --first <= --total, --requests > 0 and --max-entries > 0");
        }
        options.binary = args.binary(
            &options.binary,
            "cargo build --release -p log-viewer -p bench",
        );
        options
    }
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

// ---------------------------------------------------------------------------------------
// The fake container and its lines
// ---------------------------------------------------------------------------------------

/// A 64-hex-digit container id, like Docker's.
const CONTAINER_ID: &str = "b3e1c0de5a1e7f00d4c1a55e5b0a7d1e9c8f6a4b2d0e8c6a4f2b0d9e7c5a3f10";

/// xorshift64*: deterministic, good enough for picking templates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, digits: usize) -> String {
        format!("{:016x}", self.next())[..digits].to_string()
    }
}

/// Civil date of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A time as its parts, for the different formats the lines use.
struct Stamp {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
}

impl Stamp {
    fn new(ns: i64) -> Stamp {
        let secs = ns.div_euclid(1_000_000_000);
        let (year, month, day) = civil(secs.div_euclid(86_400));
        let in_day = secs.rem_euclid(86_400);
        Stamp {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
            nanos: ns.rem_euclid(1_000_000_000),
        }
    }

    /// Docker's `time`: `2026-01-20T10:00:00.123456789Z`.
    fn docker(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.nanos
        )
    }

    /// Python logging: `2026-01-20 10:00:00,123`.
    fn python(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanos / 1_000_000
        )
    }

    /// nginx: `20/Jan/2026:10:00:00 +0000`.
    fn nginx(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
            self.day,
            MONTHS[self.month as usize - 1],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// JSON logs: `2026-01-20T10:00:00.123Z`.
    fn iso_ms(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.nanos / 1_000_000
        )
    }
}

const PATHS: [&str; 8] = [
    "/api/orders",
    "/api/cart/items",
    "/api/products",
    "/api/users/me",
    "/api/payments/charge",
    "/api/search",
    "/static/app.js",
    "/healthz",
];
const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Safari/605.1.15",
    "python-httpx/0.27.0",
    "kube-probe/1.29",
];
const LOGGERS: [&str; 5] = [
    "shop.orders",
    "shop.cart",
    "shop.auth",
    "shop.catalog",
    "shop.payments",
];

/// One log line's text (what the app printed, without the newline) and its stream.
fn app_line(i: u64, rng: &mut Rng, stamp: &Stamp) -> (String, &'static str) {
    let rid = rng.hex(16);
    if i % RARE_EVERY == RARE_AT {
        return (
            format!(
                "{} INFO [shop.promo] request {rid} applied coupon {RARE_TERM} to cart {}",
                stamp.python(),
                rng.below(90_000) + 10_000
            ),
            "stdout",
        );
    }
    if i % COMMON_EVERY == COMMON_AT {
        return if rng.below(2) == 0 {
            (
                format!(
                    r#"{{"level":"error","ts":"{}","logger":"http","msg":"request failed","error":"upstream {COMMON_TERM} after 30s","method":"POST","path":"/api/payments/charge","request_id":"{rid}"}}"#,
                    stamp.iso_ms()
                ),
                "stderr",
            )
        } else {
            (
                format!(
                    "{} WARNING [shop.http] request {rid} to inventory-api retried after {COMMON_TERM} ({} ms)",
                    stamp.python(),
                    rng.below(4000) + 1000
                ),
                "stdout",
            )
        };
    }
    let kind = rng.below(100);
    let path = rng.pick(&PATHS);
    let ms = rng.below(900) + 2;
    match kind {
        // nginx access log
        0..=44 => {
            let status = match rng.below(50) {
                0 => 500,
                1..=3 => 404,
                4..=6 => 302,
                _ => 200,
            };
            (
                format!(
                    "172.18.0.{} - - [{}] \"{} {path}?page={} HTTP/1.1\" {status} {} \"-\" \"{}\" request_id={rid} rt=0.{ms:03}",
                    rng.below(250) + 2,
                    stamp.nginx(),
                    rng.pick(&METHODS),
                    rng.below(20) + 1,
                    rng.below(40_000) + 120,
                    rng.pick(&AGENTS),
                ),
                "stdout",
            )
        }
        // structured JSON log
        45..=74 => (
            format!(
                r#"{{"level":"info","ts":"{}","logger":"http","msg":"request completed","method":"{}","path":"{path}","status":200,"duration_ms":{ms}.{},"user_id":{},"request_id":"{rid}"}}"#,
                stamp.iso_ms(),
                rng.pick(&METHODS),
                rng.below(10),
                rng.below(5000) + 1,
            ),
            "stdout",
        ),
        // Python application log
        75..=89 => (
            format!(
                "{} INFO [{}] request {rid} handled: order {} created for user {} in {ms}ms",
                stamp.python(),
                rng.pick(&LOGGERS),
                rng.below(900_000) + 100_000,
                rng.below(5000) + 1,
            ),
            "stdout",
        ),
        90..=94 => (
            format!(
                "{} DEBUG [shop.cache] cache hit for product:{} (request {rid})",
                stamp.python(),
                rng.below(20_000)
            ),
            "stdout",
        ),
        95..=97 => (
            format!(
                "{} WARNING [shop.db] slow query took {}ms during request {rid}: SELECT id, total FROM orders WHERE user_id = ?",
                stamp.python(),
                ms + 500
            ),
            "stdout",
        ),
        _ => (
            format!(
                r#"{{"level":"error","ts":"{}","logger":"http","msg":"request failed","error":"upstream returned 502 Bad Gateway","method":"GET","path":"{path}","request_id":"{rid}"}}"#,
                stamp.iso_ms()
            ),
            "stderr",
        ),
    }
}

/// Lines `from..to` as Docker `json-file` records, back to back.
fn generate(from: u64, to: u64) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ from.wrapping_mul(0x1000_0000_01B3));
    let mut out = Vec::with_capacity(((to - from) * 330) as usize);
    for i in from..to {
        // ~2 ms apart, with some jitter in the nanoseconds.
        let ns = (FIRST_TIME_MS + 2 * i as i64) * 1_000_000 + rng.below(1_000_000) as i64;
        let stamp = Stamp::new(ns);
        let (text, stream) = app_line(i, &mut rng, &stamp);
        let has = |term: &str| text.contains(term);
        assert!(
            has(EVERY_TERM)
                && has(RARE_TERM) == (i % RARE_EVERY == RARE_AT)
                && has(COMMON_TERM) == (i % COMMON_EVERY == COMMON_AT),
            "line {i} breaks the vocabulary: {text}"
        );
        let log = serde_json::to_string(&format!("{text}\n")).expect("a string serializes");
        out.extend_from_slice(b"{\"log\":");
        out.extend_from_slice(log.as_bytes());
        out.extend_from_slice(b",\"stream\":\"");
        out.extend_from_slice(stream.as_bytes());
        out.extend_from_slice(b"\",\"time\":\"");
        out.extend_from_slice(stamp.docker().as_bytes());
        out.extend_from_slice(b"\"}\n");
    }
    out
}

/// How many of lines `0..n` hold a term placed at `i % every == at`.
fn placed(n: u64, every: u64, at: u64) -> u64 {
    n / every + u64::from(n % every > at)
}

/// How many of the kept lines `n - kept..n` hold a term placed at `i % every == at`.
fn placed_in(n: u64, kept: u64, every: u64, at: u64) -> u64 {
    placed(n, every, at) - placed(n - kept, every, at)
}

// ---------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------

/// The service's environment (nothing else is inherited).
fn service_env(work: &Path, max_entries: u64) -> Vec<(&'static str, String)> {
    vec![
        ("LOG_SOURCES", work.join("containers").display().to_string()),
        ("DATABASE_PATH", work.join("logs.db").display().to_string()),
        ("API_KEY", API_KEY.to_string()),
        ("BIND", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
        ("RATE_LIMIT", "0".to_string()),
        ("POLL_INTERVAL", "0.2".to_string()),
        ("MAX_ENTRIES", max_entries.to_string()),
        // `info`, not `warn`: the `listening on <addr>` line the benchmark reads is logged at
        // `info`. The log-viewer logs nothing per request or per poll below `debug`.
        ("LOG_LEVEL", "info".to_string()),
    ]
}

/// How many entries were ever stored: `/api/logs`'s `tail_cursor`, the ingest sequence,
/// counts them from 1 and never goes back, so this still counts when the cap deletes old
/// entries (entry ids follow time, not arrival).
fn stored_count(client: &mut Client) -> u64 {
    let request = request_bytes("GET", "/api/logs?limit=1", Some(API_KEY), None);
    let reply = client.send(&request).expect("GET /api/logs?limit=1 failed");
    assert_eq!(
        reply.status, 200,
        "GET /api/logs?limit=1 answered {}",
        reply.status
    );
    reply.json()["tail_cursor"].as_u64().unwrap_or(0)
}

/// `GET /health`'s `logs_indexed`: the entries stored now.
fn logs_indexed(client: &mut Client) -> u64 {
    let reply = client
        .send(&request_bytes("GET", "/health", None, None))
        .expect("GET /health failed");
    assert_eq!(reply.status, 200, "GET /health answered {}", reply.status);
    reply.json()["logs_indexed"]
        .as_u64()
        .unwrap_or_else(|| panic!("GET /health: no `logs_indexed` in {}", reply.json()))
}

/// Waits (up to `timeout`) until the cap has deleted what is beyond `max_entries`, so that
/// the searches see a known window of lines.
fn wait_for_cap(service: &Service, stored: u64, max_entries: u64, timeout: Duration) {
    let mut client = Client::connect(service.addr()).expect("cannot connect to the service");
    let began = Instant::now();
    loop {
        let indexed = logs_indexed(&mut client);
        if indexed == stored.min(max_entries) {
            return;
        }
        assert!(
            began.elapsed() < timeout,
            "gave up after {timeout:?}: {indexed} entries stored, expected {} (MAX_ENTRIES={max_entries})",
            stored.min(max_entries)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One ingestion measurement.
struct Ingestion {
    lines: u64,
    bytes: u64,
    /// From the first write until every line was stored.
    elapsed: Duration,
    /// Writing the file took this long.
    write_time: Duration,
    /// When 10% and 90% of the lines were stored (for the steady-state rate).
    p10: Duration,
    p90: Duration,
    server_cpu: Duration,
    /// Time the service's threads were runnable but waiting for a CPU (other processes).
    server_wait: Duration,
    /// CPU time used by everything but the service and this benchmark meanwhile.
    other_cpu: Duration,
}

impl Ingestion {
    fn lines_per_second(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The rate between 10% and 90% stored: without the start-up and the last entry's
    /// 1 s multiline idle close.
    fn steady_lines_per_second(&self) -> f64 {
        0.8 * self.lines as f64 / (self.p90 - self.p10).as_secs_f64().max(1e-9)
    }
}

/// Appends lines `from..to` to the container log and waits until the service has stored
/// them all; panics after `timeout`.
fn ingest(service: &Service, log: &Path, from: u64, to: u64, timeout: Duration) -> Ingestion {
    progress(&format!(
        "generating lines {} to {}",
        format_count(from),
        format_count(to)
    ));
    let data = generate(from, to);
    let mut client = Client::connect(service.addr()).expect("cannot connect to the service");
    let before = stored_count(&mut client);
    assert_eq!(
        before, from,
        "the service holds {before} entries before writing line {from}"
    );
    let lines = to - from;
    progress(&format!(
        "writing {} lines ({}) and waiting until they are stored",
        format_count(lines),
        format_mib(data.len() as u64 / 1024)
    ));
    let mut file = OpenOptions::new()
        .append(true)
        .open(log)
        .expect("cannot open the container log");
    let cpu_before = procfs::cpu_time(service.pid()).unwrap_or_default();
    let wait_before = run_queue_wait(service.pid());
    let machine_before = procfs::machine_busy_time().unwrap_or_default();
    let own_before = procfs::own_cpu_time().unwrap_or_default();
    let began = Instant::now();
    for chunk in data.chunks(1 << 20) {
        file.write_all(chunk)
            .expect("cannot write the container log");
    }
    let write_time = began.elapsed();
    drop(file);
    let (mut p10, mut p90) = (None, None);
    let mut last_report = began;
    let elapsed = loop {
        let stored = stored_count(&mut client).saturating_sub(from);
        let now = began.elapsed();
        if stored * 10 >= lines {
            p10.get_or_insert(now);
        }
        if stored * 10 >= lines * 9 {
            p90.get_or_insert(now);
        }
        if stored >= lines {
            break now;
        }
        if now > timeout {
            panic!(
                "gave up after {timeout:?}: the service stored {} of {} lines",
                format_count(stored),
                format_count(lines)
            );
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            progress(&format!(
                "  {} of {} stored after {:.1} s",
                format_count(stored),
                format_count(lines),
                now.as_secs_f64()
            ));
        }
        std::thread::sleep(HEALTH_POLL);
    };
    let server_cpu = procfs::cpu_time(service.pid())
        .unwrap_or_default()
        .saturating_sub(cpu_before);
    let server_wait = run_queue_wait(service.pid()).saturating_sub(wait_before);
    let machine_cpu = procfs::machine_busy_time()
        .unwrap_or_default()
        .saturating_sub(machine_before);
    let bench_cpu = procfs::own_cpu_time()
        .unwrap_or_default()
        .saturating_sub(own_before);
    let other_cpu = machine_cpu.saturating_sub(server_cpu + bench_cpu);
    let result = Ingestion {
        lines,
        bytes: data.len() as u64,
        elapsed,
        write_time,
        p10: p10.unwrap_or(elapsed),
        p90: p90.unwrap_or(elapsed),
        server_cpu,
        server_wait,
        other_cpu,
    };
    progress(&format!(
        "  stored in {:.2} s: {} lines/s",
        elapsed.as_secs_f64(),
        format_count(result.lines_per_second().round() as u64)
    ));
    result
}

/// Time every thread of process `pid` spent runnable but waiting for a CPU, from the second
/// field of `/proc/<pid>/task/*/schedstat` (nanoseconds). On a shared machine this shows how
/// much other processes slowed the service down.
fn run_queue_wait(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(ns)
}

// ---------------------------------------------------------------------------------------
// Searches
// ---------------------------------------------------------------------------------------

/// A query to time, and what its first page must hold.
struct Search {
    label: &'static str,
    /// Empty for the unfiltered list.
    term: &'static str,
    /// Lines of the kept `n - kept..n` (arguments `n`, `kept`) that match.
    matches: fn(u64, u64) -> u64,
}

const SEARCHES: [Search; 4] = [
    Search {
        label: "rare term, 0.01% of lines",
        term: RARE_TERM,
        matches: |n, kept| placed_in(n, kept, RARE_EVERY, RARE_AT),
    },
    Search {
        label: "2% term",
        term: COMMON_TERM,
        matches: |n, kept| placed_in(n, kept, COMMON_EVERY, COMMON_AT),
    },
    Search {
        label: "term in every line",
        term: EVERY_TERM,
        matches: |_, kept| kept,
    },
    Search {
        label: "unfiltered",
        term: "",
        matches: |_, kept| kept,
    },
];

impl Search {
    fn path(&self) -> String {
        if self.term.is_empty() {
            format!("/api/logs?limit={PAGE}")
        } else {
            format!("/api/logs?search={}&limit={PAGE}", self.term)
        }
    }
}

/// One line of the search table.
struct SearchRow {
    path: String,
    label: &'static str,
    written: u64,
    entries: u64,
    total: String,
    result: PhaseResult,
    target: Duration,
}

/// Checks the first page of `search` with `entries` stored: status, page size, newest first,
/// every message holding the term, and `total` (capped at [`TOTAL_CAP`]). Returns `total` as
/// shown in the report.
fn check_page(service: &Service, search: &Search, written: u64, entries: u64) -> String {
    let path = search.path();
    let mut client = Client::connect(service.addr()).expect("cannot connect to the service");
    let reply = client
        .send(&request_bytes("GET", &path, Some(API_KEY), None))
        .unwrap_or_else(|e| panic!("GET {path} failed: {e}"));
    let page = reply.json();
    assert_eq!(
        reply.status, 200,
        "GET {path} answered {}: {page}",
        reply.status
    );
    let logs = page["logs"].as_array().cloned().unwrap_or_default();
    let expected = (search.matches)(written, entries);
    assert_eq!(
        logs.len() as u64,
        expected.min(PAGE),
        "GET {path}: page size with {expected} matches"
    );
    let ids: Vec<i64> = logs.iter().filter_map(|l| l["id"].as_i64()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "GET {path}: not newest first"
    );
    assert!(
        logs.iter().all(|l| {
            l["container"] == CONTAINER_NAME
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.to_lowercase().contains(search.term))
        }),
        "GET {path}: an entry does not match"
    );
    let total = page["total"].as_u64().unwrap_or(0);
    let capped = page["total_capped"].as_bool().unwrap_or(false);
    if search.term.is_empty() || expected <= TOTAL_CAP {
        assert!(
            total == expected && !capped,
            "GET {path}: total {total} (capped: {capped}), expected {expected}"
        );
        format_count(total)
    } else {
        assert!(
            total == TOTAL_CAP && capped,
            "GET {path}: total {total} (capped: {capped}), expected {TOTAL_CAP} capped"
        );
        format!("{} (capped)", format_count(total))
    }
}

/// Times every search with `written` lines written, of which `entries` are kept.
fn search_phases(
    service: &Service,
    written: u64,
    entries: u64,
    requests: u64,
    target: Duration,
) -> Vec<SearchRow> {
    SEARCHES
        .iter()
        .map(|search| {
            let path = search.path();
            let total = check_page(service, search, written, entries);
            let request = request_bytes("GET", &path, Some(API_KEY), None);
            let make = || request.clone();
            let phase = |max_requests| Phase {
                addr: service.addr(),
                server_pid: service.pid(),
                clients: 1,
                limits: Limits {
                    max_requests,
                    max_time: SEARCH_TIME_LIMIT,
                },
                request: &make,
                ok_status: |status| status == 200,
            };
            phase(SEARCH_WARMUP).run();
            progress(&format!(
                "`GET {path}` at {} entries, {requests} requests",
                format_count(entries)
            ));
            let result = phase(requests).run();
            SearchRow {
                path,
                label: search.label,
                written,
                entries,
                total,
                result,
                target,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The run and the report
// ---------------------------------------------------------------------------------------

fn main() {
    let options = Options::from_args();
    let load_before = load_average();
    let busy_before = procfs::machine_busy(Duration::from_secs(1));
    let work = tempfile::Builder::new()
        .prefix("monlight-bench-log-viewer-")
        .tempdir()
        .expect("cannot create a temporary directory");
    let log = bench::docker::create_container(
        &work.path().join("containers"),
        CONTAINER_ID,
        CONTAINER_NAME,
        "shop:2026.01.3",
    );
    // The service's working directory (nothing is written there: every path is absolute).
    let cwd = tempfile::Builder::new()
        .prefix("cwd-")
        .tempdir_in(work.path())
        .expect("cannot create the service's working directory");

    progress(&format!("starting {}", options.binary.display()));
    let service = Service::start(
        &options.binary,
        &service_env(work.path(), options.max_entries),
        cwd,
    );
    std::thread::sleep(Duration::from_millis(500));
    let idle_kib =
        procfs::status_kib(service.pid(), "VmRSS").expect("cannot read the service's VmRSS");

    let mut ingestions = Vec::new();
    let mut searches = Vec::new();
    let mut peaks = Vec::new();
    let rounds = [
        (0, options.first, TARGET_SEARCH_P50_FIRST),
        (options.first, options.total, TARGET_SEARCH_P50_TOTAL),
    ];
    for (from, to, target) in rounds {
        if to == from {
            continue;
        }
        ingestions.push(ingest(&service, &log, from, to, options.timeout));
        wait_for_cap(&service, to, options.max_entries, options.timeout);
        peaks.push((
            format!("after ingesting up to {} lines", format_count(to)),
            procfs::status_kib(service.pid(), "VmHWM").unwrap_or(0),
        ));
        let kept = to.min(options.max_entries);
        searches.extend(search_phases(&service, to, kept, options.requests, target));
        peaks.push((
            format!("after the searches at {} entries", format_count(to)),
            procfs::status_kib(service.pid(), "VmHWM").unwrap_or(0),
        ));
    }
    let rss_end = procfs::status_kib(service.pid(), "VmRSS").unwrap_or(0);
    let peak_kib =
        procfs::status_kib(service.pid(), "VmHWM").expect("cannot read the service's VmHWM");
    let db_bytes = dir_bytes(work.path(), "logs.db");
    let (problems, problem_count) = service.problems();
    progress("stopping the service (SIGTERM)");
    let (status, took) = service.stop();

    print_settings(&options, busy_before, &load_before, &load_average());
    print_ingestion(&ingestions);
    print_searches(&searches);
    print_memory(idle_kib, peak_kib, rss_end, &peaks);
    println!("Notes:\n");
    println!(
        "- database after the run: {} (`logs.db` + WAL)",
        format_mib(db_bytes / 1024)
    );
    println!(
        "- service stopped by SIGTERM with {status} after {}",
        format_ms(took)
    );
    for row in searches.iter().filter(|row| row.result.failures > 0) {
        println!(
            "- `GET {}` at {} entries: {} failed requests, e.g. {:?}",
            row.path,
            format_count(row.entries),
            format_count(row.result.failures),
            row.result.failure_samples
        );
    }
    if problem_count > 0 {
        println!(
            "- the service logged {problem_count} warning/error lines, first ones: {problems:?}"
        );
    }
    if options.keep {
        let kept = work.keep();
        println!(
            "- kept: `{}` (`sqlite3 {}/logs.db`)",
            kept.display(),
            kept.display()
        );
    }
}

/// Size of the files of `dir` whose name starts with `prefix`.
fn dir_bytes(dir: &Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn print_settings(
    options: &Options,
    busy_before: Option<f64>,
    load_before: &str,
    load_after: &str,
) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## log-viewer benchmark\n");
    println!("- binary: `{}`", options.binary.display());
    println!(
        "- service env: `LOG_SOURCES=<tmp>/containers DATABASE_PATH=<tmp>/logs.db API_KEY={API_KEY} BIND=127.0.0.1 PORT=0 RATE_LIMIT=0 POLL_INTERVAL=0.2 MAX_ENTRIES={} LOG_LEVEL=info` (nothing else inherited; `WORKERS=4` and the other defaults)",
        options.max_entries
    );
    let busy = describe_busy(busy_before);
    println!(
        "- machine: {cores} CPU cores, shared by the service and the benchmark (loopback); {busy}; 1-minute load average {load_before} before the run, {load_after} after"
    );
    println!(
        "- one container `{CONTAINER_NAME}`, Docker json-file records of web-app lines (45% nginx access, 30% JSON, 15% Python app, 5% debug, 3% warnings, errors on stderr), ~2 ms apart; `{RARE_TERM}` in 0.01%, `{COMMON_TERM}` in 2%, `{EVERY_TERM}` in every line"
    );
    println!(
        "- ingestion: all lines pre-generated, appended as fast as possible, timed from the first write until `GET /api/logs?limit=1` returns the last line (includes the multiline 1 s idle close of the last line); \"steady\" is the rate between 10% and 90% of the lines stored"
    );
    println!(
        "- searches: one keep-alive client, {SEARCH_WARMUP} warm-up requests then {} measured, sequential; each first page checked (size, order, matches, `total`)\n",
        options.requests
    );
}

fn print_ingestion(ingestions: &[Ingestion]) {
    println!("| ingestion until searchable | lines | log bytes | write | until stored | lines/s | steady lines/s | CPU cores: service / other | service CPU per line | service waiting for a CPU | target |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut stored = 0;
    for i in ingestions {
        let rate = i.lines_per_second();
        println!(
            "| {} → {} lines | {} | {} | {:.2} s | {:.2} s | {} | {} | {:.2} / {:.2} | {:.1} µs | {:.2} s | ≥ 30,000 lines/s: {} |",
            format_count(stored),
            format_count(stored + i.lines),
            format_count(i.lines),
            format_mib(i.bytes / 1024),
            i.write_time.as_secs_f64(),
            i.elapsed.as_secs_f64(),
            format_count(rate.round() as u64),
            format_count(i.steady_lines_per_second().round() as u64),
            i.server_cpu.as_secs_f64() / i.elapsed.as_secs_f64().max(1e-9),
            i.other_cpu.as_secs_f64() / i.elapsed.as_secs_f64().max(1e-9),
            i.server_cpu.as_secs_f64() * 1e6 / i.lines as f64,
            i.server_wait.as_secs_f64(),
            verdict(rate >= TARGET_INGEST_LPS),
        );
        stored += i.lines;
    }
    println!();
}

fn print_searches(rows: &[SearchRow]) {
    println!("| query | entries | matches (`total`) | requests | p50 | p99 | max | CPU cores: service / bench / other | target |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let r = &row.result;
        println!(
            "| `GET {}` ({}) | {} | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} | p50 ≤ {} ms: {} |",
            row.path,
            row.label,
            if row.written > row.entries {
                format!(
                    "{} (of {} written)",
                    format_count(row.entries),
                    format_count(row.written)
                )
            } else {
                format_count(row.entries)
            },
            row.total,
            format_count(r.ok + r.failures),
            format_ms(r.latencies.percentile(50.0)),
            format_ms(r.latencies.percentile(99.0)),
            format_ms(r.latencies.percentile(100.0)),
            r.server_cores(),
            r.bench_cores(),
            r.other_cores(),
            row.target.as_millis(),
            verdict(r.failures == 0 && r.latencies.percentile(50.0) <= row.target),
        );
    }
    println!();
}

fn print_memory(idle_kib: u64, peak_kib: u64, rss_end: u64, peaks: &[(String, u64)]) {
    println!("| service memory | value | target |");
    println!("|---|---:|---|");
    println!(
        "| idle RSS (`VmRSS`) 0.5 s after start-up | {} | < 8 MiB: {} |",
        format_mib(idle_kib),
        verdict(idle_kib < TARGET_IDLE_KIB)
    );
    for (when, kib) in peaks {
        println!("| peak RSS (`VmHWM`) {when} | {} | |", format_mib(*kib));
    }
    println!(
        "| peak RSS (`VmHWM`) over the run | {} | ≤ 20 MiB: {} |",
        format_mib(peak_kib),
        verdict(peak_kib <= TARGET_PEAK_KIB)
    );
    println!("| RSS (`VmRSS`) at the end | {} | |", format_mib(rss_end));
    println!();
}
