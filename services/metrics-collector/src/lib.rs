//! metrics-collector: takes batches of counters, histograms and gauges, keeps the raw points
//! briefly, rolls them up per minute and per hour (with mergeable percentile sketches), and
//! serves time series, a dashboard with browser Web Vitals, a Prometheus exposition and a web
//! UI with charts.
//!
//! A request goes: [`routes`] → a handler in [`api`] → [`ingest`] (validation) and a
//! [`db::Job`] for the writer thread, or [`query`] (parameters) and a read on the pool.
//! [`aggregate`] is the background thread that rolls minutes and hours up and applies
//! retention, through the same writer. Only [`db`] writes SQL.

pub mod aggregate;
pub mod api;
pub mod clock;
pub mod config;
pub mod db;
pub mod ingest;
pub mod prometheus;
pub mod query;
pub mod read;
pub mod rollup;
pub mod vitals;
pub mod web;

use std::sync::Arc;

use shared::cli::{About, StartError};
use shared::health::Watchdog;
use shared::http::{Policy, Router};
use shared::writer::Writer;
use shared::{Running, Shutdown};

pub use config::Config;

/// What `--help` and `--version` say.
pub const ABOUT: About = About {
    name: "metrics-collector",
    version: env!("CARGO_PKG_VERSION"),
    summary: "counters, histograms and gauges rolled up per minute and hour, with percentiles",
    vars: config::VARS_HELP,
};

/// Jobs waiting for the writer at most; beyond it batches get `503` + `Retry-After`. A job
/// is a whole batch (up to 1000 points, at most `MAX_BODY_SIZE` of label text), so this
/// bounds the memory of validated batches waiting to be stored.
const WRITE_QUEUE: usize = 16;

/// Shared by every handler.
pub struct State {
    /// The configuration the service started with (its clock included).
    pub config: Config,
    /// Read connections, one per handler slot.
    pub reads: shared::db::Pool,
    /// The one writer of the database.
    pub writer: Writer<db::Job, db::Outcome>,
    /// What the aggregation thread reports (`last_aggregation`).
    pub aggregation: Arc<aggregate::Status>,
    /// The background threads, for `/health`.
    pub watchdog: Arc<Watchdog>,
}

impl AsRef<shared::web::UiLinks> for State {
    fn as_ref(&self) -> &shared::web::UiLinks {
        &self.config.common.ui_links
    }
}

/// Anyone: health, pages, assets; never rate limited.
const OPEN: Policy<State> = Policy::open();
/// The service's `API_KEY`; rate limited per client.
const KEY: Policy<State> = Policy::api_key();

/// The API, as a table: method, path, who may call it, handler.
pub fn routes() -> Router<State> {
    Router::new()
        .get("/health", OPEN, api::health)
        .post("/api/metrics", KEY, api::ingest)
        .get("/api/metrics", KEY, api::series)
        .get("/api/metrics/names", KEY, api::names)
        .get("/api/projects", KEY, api::projects)
        // The same, under the service's own prefix: the UI's path behind one origin, where
        // the error-tracker answers /api/projects (deploy/nginx/monlight.conf).
        .get("/api/metrics/projects", KEY, api::projects)
        .get("/api/dashboard", KEY, api::dashboard)
        .unmatched("/api", KEY)
        .get("/metrics", KEY, api::prometheus)
        .get("/", OPEN, web::index_page)
        .get("/static/{file}", OPEN, web::static_file)
}

/// Opens the database, starts the writer and the aggregation thread and the HTTP server;
/// returns at once.
pub fn run(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let (mut write_conn, reads) = config.common.open_database(&db::SCHEMA)?;
    let mut cache = db::SeriesCache::for_connection(&mut write_conn);
    let (writer, writer_handle) =
        Writer::spawn("db-writer", write_conn, WRITE_QUEUE, move |conn, job| {
            db::apply(conn, &mut cache, job)
        })?;
    let server = config.common.bind()?;
    let addr = server.local_addr();
    let aggregation = aggregate::Status::load(&reads.get())
        .map_err(|e| StartError::Start(format!("cannot read the aggregation state: {e}")))?;
    let aggregator = aggregate::spawn(
        writer.clone(),
        Arc::clone(&aggregation),
        config.clone(),
        shutdown.clone(),
    )?;
    let watchdog = Watchdog::new(shutdown.clone());
    let probed = writer.clone();
    watchdog.probe("db-writer", move || probed.is_running());
    let state = Arc::new(State {
        config,
        reads,
        writer,
        aggregation,
        watchdog: Arc::clone(&watchdog),
    });
    let http = server.spawn(routes(), state, shutdown.clone())?;
    Ok(Running::new(addr, shutdown, watchdog)
        .with_thread(http)
        .with_thread(aggregator)
        .with_finisher(move || writer_handle.finish()))
}
