//! error-tracker: takes exception reports, groups them by fingerprint, keeps the latest
//! occurrences of each group, resolves and reopens groups, and alerts on new and reopened
//! ones ([`alerts`]).
//!
//! A request goes: [`routes`] → a handler in [`api`] → a [`db::Job`] for the writer thread
//! (writes) or a pooled read connection (reads). Only [`db`] writes SQL.

pub mod alerts;
pub mod api;
pub mod config;
pub mod db;
pub mod fingerprint;
pub mod ingest;
pub mod query;
pub mod retention;
pub mod search_index;
pub mod sentry;
pub mod web;

use std::sync::Arc;

use shared::cli::{About, StartError};
use shared::health::Watchdog;
use shared::http::{Policy, Router};
use shared::keys::{self, ActiveKeys};
use shared::writer::Writer;
use shared::{Running, Shutdown};

pub use config::Config;

/// What `--help` and `--version` say.
pub const ABOUT: About = About {
    name: "error-tracker",
    version: env!("CARGO_PKG_VERSION"),
    summary: "groups exception reports by fingerprint, resolves and reopens them",
    vars: config::VARS_HELP,
};

/// Jobs waiting for the writer at most; beyond it reports get `503` + `Retry-After`.
const WRITE_QUEUE: usize = 1024;

/// Shared by every handler.
pub struct State {
    /// The configuration the service started with.
    pub config: Config,
    /// Read connections, one per handler slot.
    pub reads: shared::db::Pool,
    /// The one writer of the database.
    pub writer: Writer<db::Job, db::Outcome>,
    /// The alert queue (new and reopened groups).
    pub alerts: alerts::Alerts,
    /// The background threads, for `/health`.
    pub watchdog: Arc<Watchdog>,
    /// The active Sentry keys → their project.
    pub sentry_keys: ActiveKeys,
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
/// A Sentry SDK: a Sentry key or the API key (see [`sentry::api`]), rate limited per client,
/// Sentry's rate-limit header on a `429`.
const SENTRY: Policy<State> = Policy::checked(sentry::api::check_credentials)
    .max_body(sentry::api::MAX_SENTRY_BODY)
    .headers(sentry::api::rate_limit_headers);

/// The API, as a table: method, path, who may call it, handler.
pub fn routes() -> Router<State> {
    Router::new()
        .get("/health", OPEN, api::health)
        .post("/api/errors", KEY, api::report_error)
        .get("/api/errors", KEY, api::list_errors)
        .post("/api/errors/resolve", KEY, api::resolve_many)
        .post("/api/errors/unresolve", KEY, api::unresolve_many)
        .get("/api/errors/{id}", KEY, api::error_detail)
        .post("/api/errors/{id}/resolve", KEY, api::resolve)
        .post("/api/errors/{id}/unresolve", KEY, api::unresolve)
        .get("/api/projects", KEY, api::projects)
        .get("/api/environments", KEY, api::environments)
        .post("/api/test-alert", KEY, api::test_alert)
        .post("/api/{project_id}/envelope", SENTRY, sentry::api::envelope)
        .post("/api/{project_id}/store", SENTRY, sentry::api::store_event)
        .post("/api/sentry-keys", KEY, sentry::api::create_key)
        .get("/api/sentry-keys", KEY, sentry::api::list_keys)
        .route(
            "DELETE",
            "/api/sentry-keys/{id}",
            KEY,
            sentry::api::deactivate_key,
        )
        .unmatched("/api", KEY)
        .get("/", OPEN, web::list_page)
        .get("/errors/{id}", OPEN, web::detail_page)
        .get("/static/{file}", OPEN, web::static_file)
}

/// Opens the database, starts the writer, seeds `SENTRY_KEYS`, starts retention, the alert
/// sender and the HTTP server; returns at once.
pub fn run(config: Config, shutdown: Shutdown) -> Result<Running, StartError> {
    let (mut write_conn, reads) = config.common.open_database(&db::SCHEMA)?;
    db::backfill_search(&mut write_conn)
        .map_err(|e| StartError::Start(format!("cannot index existing groups for search: {e}")))?;
    let (writer, writer_handle) = Writer::spawn("db-writer", write_conn, WRITE_QUEUE, db::apply)?;
    let sentry_keys = keys::seed(
        "SENTRY_KEYS",
        &config.seed_sentry_keys,
        &writer,
        db::Job::Key,
        db::SENTRY_KEYS,
        &reads,
    )?;
    let server = config.common.bind()?;
    let addr = server.local_addr();
    let retention = retention::spawn(
        writer.clone(),
        config.retention_days,
        config.retention_interval,
        shutdown.clone(),
    )?;
    let search_index = search_index::spawn(writer.clone(), shutdown.clone())?;
    let (alerts, alert_sender) =
        alerts::Alerts::start(&config.alerts, &config.base_url, shutdown.clone())?;
    let watchdog = Watchdog::new(shutdown.clone());
    let probed = writer.clone();
    watchdog.probe("db-writer", move || probed.is_running());
    let state = Arc::new(State {
        config,
        reads,
        writer,
        alerts,
        watchdog: Arc::clone(&watchdog),
        sentry_keys,
    });
    let http = server.spawn(routes(), state, shutdown.clone())?;
    Ok(Running::new(addr, shutdown, watchdog)
        .with_thread(http)
        .with_thread(retention)
        .with_thread(search_index)
        .with_thread(alert_sender)
        .with_finisher(move || writer_handle.finish()))
}
