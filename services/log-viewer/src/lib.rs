//! log-viewer: follows Docker's `json-file` logs straight from disk, keeps a bounded,
//! full-text-searchable history in SQLite (FTS5), and streams new lines live over SSE.
//!
//! Data flow: [`discovery`] finds containers → [`tailer`] follows each log file (cursors,
//! rotation, 16 KiB pieces) → [`multiline`] reassembles entries and [`level`] detects levels →
//! [`ingest`] stores each poll in one transaction and pushes it to [`tail`] subscribers.
//! Requests: [`routes`] → [`api`] → [`query`] (parameters) → [`db`] (the only SQL).
//! The web UI ([`web`]) is one static page that reads the same API from the browser.

pub mod api;
pub mod config;
pub mod db;
pub mod discovery;
pub mod dockerlog;
pub mod ingest;
pub mod level;
pub mod multiline;
pub mod query;
pub mod tail;
pub mod tailer;
pub mod web;

use std::sync::Arc;

use shared::cli::{About, StartError};
use shared::health::Watchdog;
use shared::http::{Policy, Router};
use shared::{Running, Shutdown};

pub use config::Config;

/// What `--help` and `--version` say.
pub const ABOUT: About = About {
    name: "log-viewer",
    version: env!("CARGO_PKG_VERSION"),
    summary: "Docker json-file logs with full-text search and a live tail",
    vars: config::VARS_HELP,
};

/// Shared by every handler.
pub struct State {
    /// Read connections, one per handler slot.
    pub reads: shared::db::Pool,
    /// Live tail subscribers.
    pub hub: Arc<tail::Hub>,
    /// What the ingestion thread reports.
    pub status: Arc<ingest::IngestStatus>,
    /// Ends live tails on shutdown.
    pub shutdown: Shutdown,
    /// The background threads, for `/health`.
    pub watchdog: Arc<Watchdog>,
    /// `UI_LINKS`, for the page's header.
    pub ui_links: shared::web::UiLinks,
    /// `LOG_SOURCES`, named by `/health`.
    pub log_sources: std::path::PathBuf,
}

impl AsRef<shared::web::UiLinks> for State {
    fn as_ref(&self) -> &shared::web::UiLinks {
        &self.ui_links
    }
}

/// Anyone: health, the page, assets; never rate limited.
const OPEN: Policy<State> = Policy::open();
/// The service's `API_KEY`; rate limited per client.
const KEY: Policy<State> = Policy::api_key();

/// The API, as a table: method, path, who may call it, handler.
pub fn routes() -> Router<State> {
    Router::new()
        .get("/health", OPEN, api::health)
        .get("/api/logs", KEY, api::list_logs)
        .get("/api/logs/histogram", KEY, api::histogram)
        .get("/api/logs/tail", KEY, api::live_tail)
        .get("/api/containers", KEY, api::containers)
        .get("/api/logs/containers", KEY, api::containers)
        .get("/api/stats", KEY, api::stats)
        .get("/api/logs/stats", KEY, api::stats)
        .get("/api/logs/{id}", KEY, api::log_entry)
        .unmatched("/api", KEY)
        .get("/", OPEN, web::logs_page)
        .get("/static/{file}", OPEN, web::static_file)
}

/// Opens the database, starts ingestion and the HTTP server; returns at once.
pub fn run(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let (write_conn, reads) = config.common.open_database(&db::SCHEMA)?;
    write_conn
        .execute_batch(db::FTS_TUNING)
        .map_err(|e| StartError::Start(format!("cannot tune the search index: {e}")))?;
    let hub = Arc::new(tail::Hub::new(config.max_tail_streams));
    let status = Arc::new(ingest::IngestStatus::default());
    let server = config.common.bind()?;
    let addr = server.local_addr();
    let ingest_config = ingest::IngestConfig {
        log_sources: config.log_sources.clone(),
        containers: config.containers.clone(),
        poll_interval: config.poll_interval,
        rescan_interval: config.rescan_interval,
        tail_buffer: config.tail_buffer,
        max_entries: config.max_entries,
        max_age_days: config.max_age_days,
    };
    let ingest = ingest::spawn(
        ingest_config,
        write_conn,
        Arc::clone(&hub),
        Arc::clone(&status),
        shutdown.clone(),
    )?;
    let watchdog = Watchdog::new(shutdown.clone());
    let state = Arc::new(State {
        reads,
        hub,
        status,
        shutdown: shutdown.clone(),
        watchdog: Arc::clone(&watchdog),
        ui_links: config.common.ui_links.clone(),
        log_sources: config.log_sources.clone(),
    });
    let http = server.spawn(routes(), state, shutdown.clone())?;
    Ok(Running::new(addr, shutdown, watchdog)
        .with_thread(http)
        .with_thread(ingest))
}
