//! browser-relay: the one service that faces the public internet. Browsers post errors and
//! metrics with a public DSN key; the relay checks the key, the origin and the rate limits,
//! rewrites minified stacks with uploaded source maps, stores the payload in its outbox and
//! answers `202` at once; forwarders deliver the outbox to the error-tracker and the
//! metrics-collector with their internal keys, which never reach a browser.
//!
//! A request goes: [`routes`] → [`browser`] (DSN-key endpoints, with [`cors`] and
//! [`symbolicate`]) or [`admin`] (keys and source maps) → a [`db::Job`] for the writer;
//! [`forward`] empties the outbox, [`retention`] deletes old source maps. Only [`db`] holds SQL.

pub mod admin;
pub mod browser;
pub mod config;
pub mod cors;
pub mod db;
pub mod forward;
pub mod retention;
pub mod symbolicate;
pub mod tunnel;

use std::sync::Arc;

use serde_json::{json, Map};
use shared::cli::{About, StartError};
use shared::health::Watchdog;
use shared::http::{ApiError, Policy, RateClass, Request, Response, Router};
use shared::keys::{self, ActiveKeys};
use shared::rate_limit::RateLimiter;
use shared::writer::Writer;
use shared::{Running, Shutdown};

pub use config::Config;

/// What `--help` and `--version` say.
pub const ABOUT: About = About {
    name: "browser-relay",
    version: env!("CARGO_PKG_VERSION"),
    summary: "public endpoint for browsers: DSN keys, CORS, source maps, forwarding",
    vars: config::VARS_HELP,
};

/// Jobs waiting for the writer at most; beyond it browsers get `503` + `Retry-After`. A job
/// holds a payload (at most ~100 KiB: see `browser.rs`), so this bounds their memory too.
const WRITE_QUEUE: usize = 64;
/// Bytes of parsed source maps kept in memory.
const MAP_CACHE_BYTES: usize = 4 * 1024 * 1024;
/// Largest source map upload: the map itself (5 MiB) inside a JSON body.
pub const MAX_MAP_BYTES: usize = 5 * 1024 * 1024;
const MAX_UPLOAD_BODY: usize = MAX_MAP_BYTES + MAX_MAP_BYTES / 4 + 64 * 1024;

/// Shared by every handler.
pub struct State {
    /// The configuration the service started with.
    pub config: Config,
    /// Read connections, one per handler slot.
    pub reads: Arc<shared::db::Pool>,
    /// The one writer of the database.
    pub writer: Writer<db::Job, db::Outcome>,
    /// The active DSN keys.
    pub keys: ActiveKeys,
    /// Requests per minute per DSN key.
    pub per_key: RateLimiter<String>,
    /// All browser requests per minute (ten times `RATE_LIMIT`).
    pub global: RateLimiter<()>,
    /// Parsed source maps.
    pub maps: symbolicate::MapCache,
    /// Entries waiting in the outbox.
    pub depth: Arc<db::Depth>,
    /// Wakes the forwarders.
    pub doorbell: Arc<forward::Doorbell>,
    /// Each upstream's reachability, for `/health`.
    pub error_tracker: Arc<forward::Reachability>,
    pub metrics_collector: Arc<forward::Reachability>,
    /// The background threads, for `/health`.
    pub watchdog: Arc<Watchdog>,
}

/// Anyone: health; never rate limited.
const OPEN: Policy<State> = Policy::open();
/// `ADMIN_API_KEY`; rate limited per client.
const ADMIN: Policy<State> = Policy::api_key();
/// An active DSN key (with its per-key and global limits), the per-IP limit, and CORS on
/// every answer.
const DSN: Policy<State> = Policy::checked(browser::check_dsn_key).headers(cors_headers);
/// A CORS preflight: before the DSN check, outside the rate limits.
const PREFLIGHT: Policy<State> = Policy::open()
    .rate(RateClass::Unlimited)
    .headers(cors_headers);

fn cors_headers(
    state: &State,
    request: &Request,
    _answer: &Response,
) -> Vec<(&'static str, String)> {
    cors::headers(&state.config.origins, request)
}

/// The Sentry tunnel: the per-IP limit (the envelope's DSN key is checked, with its limits,
/// once the body is read), CORS and Sentry's rate-limit header on every answer.
const TUNNEL: Policy<State> = Policy::open()
    .rate(RateClass::PerClient)
    .max_body(tunnel::MAX_TUNNEL_BODY)
    .headers(tunnel_headers);

fn tunnel_headers(
    state: &State,
    request: &Request,
    answer: &Response,
) -> Vec<(&'static str, String)> {
    let mut headers = cors::headers(&state.config.origins, request);
    headers.extend(error_tracker::sentry::api::rate_limit_header(answer));
    headers
}

/// The API, as a table: method, path, who may call it, handler.
pub fn routes() -> Router<State> {
    Router::new()
        .get("/health", OPEN, health)
        .post("/api/browser/errors", DSN, browser::report_error)
        .route(
            "OPTIONS",
            "/api/browser/errors",
            PREFLIGHT,
            browser::preflight,
        )
        .post("/api/browser/sentry", TUNNEL, tunnel::envelope)
        .route(
            "OPTIONS",
            "/api/browser/sentry",
            PREFLIGHT,
            browser::preflight,
        )
        .post("/api/browser/metrics", DSN, browser::report_metrics)
        .route(
            "OPTIONS",
            "/api/browser/metrics",
            PREFLIGHT,
            browser::preflight,
        )
        .post("/api/dsn-keys", ADMIN, admin::create_key)
        .get("/api/dsn-keys", ADMIN, admin::list_keys)
        .route("DELETE", "/api/dsn-keys/{id}", ADMIN, admin::deactivate_key)
        .post(
            "/api/source-maps",
            ADMIN.max_body(MAX_UPLOAD_BODY),
            admin::upload_map,
        )
        .get("/api/source-maps", ADMIN, admin::list_maps)
        .route("DELETE", "/api/source-maps/{id}", ADMIN, admin::delete_map)
        .unmatched("/api", ADMIN)
}

/// `GET /health`: the outbox and the upstreams.
fn health(state: &State, _request: &Request) -> Result<Response, ApiError> {
    let figures = db::counters(&state.reads.get()).map(|(forwarded, dropped)| {
        let mut map = Map::new();
        map.insert("queue_depth".into(), json!(state.depth.get()));
        map.insert("forwarded".into(), json!(forwarded));
        map.insert("dropped".into(), json!(dropped));
        map.insert(
            "upstreams".into(),
            json!({
                "error_tracker": state.error_tracker.as_str(),
                "metrics_collector": state.metrics_collector.as_str(),
            }),
        );
        map
    });
    Ok(shared::health::answer(figures, &state.watchdog))
}

/// Opens the database, seeds `DSN_KEYS`, starts the writer, the forwarders, retention and
/// the HTTP server; returns at once.
pub fn run(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let (write_conn, reads) = config.common.open_database(&db::SCHEMA)?;
    let start_error = |what: &str, e: rusqlite::Error| StartError::Start(format!("{what}: {e}"));
    let depth =
        db::load_depth(&write_conn).map_err(|e| start_error("cannot read the outbox", e))?;
    let writer_depth = Arc::clone(&depth);
    let (writer, writer_handle) =
        Writer::spawn("db-writer", write_conn, WRITE_QUEUE, move |conn, job| {
            db::apply(conn, &writer_depth, job)
        })?;
    let active_keys = keys::seed(
        "DSN_KEYS",
        &config.seed_keys,
        &writer,
        db::Job::Key,
        db::DSN_KEYS,
        &reads,
    )?;
    let reads = Arc::new(reads);
    let server = config.common.bind()?;
    let addr = server.local_addr();
    let doorbell = Arc::new(forward::Doorbell::default());
    let error_tracker = Arc::new(forward::Reachability::default());
    let metrics_collector = Arc::new(forward::Reachability::default());
    let forwarder =
        |upstream, target: &config::Upstream, reachability: &Arc<forward::Reachability>| {
            forward::Forwarder {
                upstream,
                target: target.clone(),
                timeout: config.upstream_timeout,
                reads: Arc::clone(&reads),
                writer: writer.clone(),
                reachability: Arc::clone(reachability),
                doorbell: Arc::clone(&doorbell),
            }
            .spawn(shutdown.clone())
        };
    let forward_errors = forwarder(db::Upstream::Errors, &config.error_tracker, &error_tracker)?;
    let forward_metrics = forwarder(
        db::Upstream::Metrics,
        &config.metrics_collector,
        &metrics_collector,
    )?;
    let retention = retention::spawn(writer.clone(), config.retention_days, shutdown.clone())?;
    let watchdog = Watchdog::new(shutdown.clone());
    let probed = writer.clone();
    watchdog.probe("db-writer", move || probed.is_running());
    let rate_limit = config.common.http.rate_limit;
    let state = Arc::new(State {
        keys: active_keys,
        per_key: RateLimiter::new(rate_limit),
        global: RateLimiter::new(rate_limit.saturating_mul(10)),
        maps: symbolicate::MapCache::new(MAP_CACHE_BYTES),
        config,
        reads,
        writer,
        depth,
        doorbell,
        error_tracker,
        metrics_collector,
        watchdog: Arc::clone(&watchdog),
    });
    let http = server.spawn(routes(), state, shutdown.clone())?;
    // The forwarders are watched but not waited for at shutdown: one may be in the middle of
    // a request to a slow upstream (up to UPSTREAM_TIMEOUT). What it was sending stays in
    // the outbox and is sent again at the next start.
    for (name, forwarder) in [
        ("forward-errors", forward_errors),
        ("forward-metrics", forward_metrics),
    ] {
        watchdog.probe(name, move || !forwarder.is_finished());
    }
    Ok(Running::new(addr, shutdown, watchdog)
        .with_thread(http)
        .with_thread(retention)
        .with_finisher(move || writer_handle.finish()))
}
