//! `/health` and the service's background threads: a [`Watchdog`] knows every thread a
//! service started; one that ends while the service is not shutting down (a panic, a loop
//! that returned) turns `/health` into a `503` naming it, and is logged once.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Map, Value};

use crate::http::Response;
use crate::shutdown::Shutdown;

/// A liveness check of a thread the watchdog does not own (e.g. the database writer's).
type Probe = Box<dyn Fn() -> bool + Send + Sync>;

/// The background threads of one service and whether each is still running.
pub struct Watchdog {
    shutdown: Shutdown,
    threads: Mutex<Vec<JoinHandle<()>>>,
    probes: Mutex<Vec<(&'static str, Probe)>>,
    reported: Mutex<Vec<String>>,
}

impl Watchdog {
    /// A watchdog for a service stopped by `shutdown`.
    pub fn new(shutdown: Shutdown) -> Arc<Watchdog> {
        Arc::new(Watchdog {
            shutdown,
            threads: Mutex::new(Vec::new()),
            probes: Mutex::new(Vec::new()),
            reported: Mutex::new(Vec::new()),
        })
    }

    /// Watches a thread (named through `thread::Builder::name`); `Running::wait` joins the
    /// watched threads in the order they were added.
    pub fn watch(&self, thread: JoinHandle<()>) {
        lock(&self.threads).push(thread);
    }

    /// Watches a thread through a check that says whether it still runs.
    pub fn probe(&self, name: &'static str, is_running: impl Fn() -> bool + Send + Sync + 'static) {
        lock(&self.probes).push((name, Box::new(is_running)));
    }

    /// The names of the threads that stopped although the service is not shutting down;
    /// each is logged the first time it is seen.
    pub fn stopped(&self) -> Vec<String> {
        if self.shutdown.is_set() {
            return Vec::new();
        }
        let mut stopped: Vec<String> = lock(&self.threads)
            .iter()
            .filter(|t| t.is_finished())
            .map(|t| t.thread().name().unwrap_or("unnamed").to_string())
            .collect();
        stopped.extend(
            lock(&self.probes)
                .iter()
                .filter(|(_, is_running)| !is_running())
                .map(|(name, _)| name.to_string()),
        );
        let mut reported = lock(&self.reported);
        for name in &stopped {
            if !reported.contains(name) {
                log::error!("background thread '{name}' has stopped; /health answers 503");
                reported.push(name.clone());
            }
        }
        stopped
    }

    /// The watched threads, for joining at shutdown.
    pub(crate) fn take_threads(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *lock(&self.threads))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `/health` answer: `200 {"status":"ok", ...figures}`, or `503 {"status":"error",
/// "detail":...}` when the database cannot be read (`figures` is `Err`) or a background
/// thread has stopped (`stopped_threads` names them).
pub fn answer<E: std::fmt::Display>(
    figures: Result<Map<String, Value>, E>,
    watchdog: &Watchdog,
) -> Response {
    let figures = match figures {
        Ok(figures) => figures,
        Err(e) => {
            log::error!("health check cannot read the database: {e}");
            let body = json!({"status": "error", "detail": "database unavailable"});
            return Response::json(503, &body);
        }
    };
    let stopped = watchdog.stopped();
    if !stopped.is_empty() {
        let body = json!({
            "status": "error",
            "detail": format!("background thread stopped: {}", stopped.join(", ")),
            "stopped_threads": stopped,
        });
        return Response::json(503, &body);
    }
    let mut body = Map::new();
    body.insert("status".to_string(), json!("ok"));
    body.extend(figures);
    Response::json(200, &body)
}

/// Panics here when the env var `MONLIGHT_FAULT` names `point`: how tests kill a background
/// thread on purpose. Compiled only with the `testing` feature (a no-op otherwise).
#[cfg(feature = "testing")]
pub fn fault_point(point: &str) {
    if std::env::var("MONLIGHT_FAULT").is_ok_and(|v| v == point) {
        panic!("injected fault at {point}");
    }
}

/// Panics here when the env var `MONLIGHT_FAULT` names `point`: how tests kill a background
/// thread on purpose. Compiled only with the `testing` feature (a no-op otherwise).
#[cfg(not(feature = "testing"))]
#[inline(always)]
pub fn fault_point(_point: &str) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    fn status_and_body(response: Response) -> (u16, Value) {
        let body = response
            .body_bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        (response.status(), body)
    }

    #[test]
    fn a_thread_that_panics_turns_health_503_naming_it() {
        let watchdog = Watchdog::new(Shutdown::new());
        let healthy = std::thread::Builder::new()
            .name("steady".into())
            .spawn(|| std::thread::sleep(Duration::from_secs(30)))
            .unwrap();
        let dying = std::thread::Builder::new()
            .name("aggregation".into())
            .spawn(|| panic!("injected"))
            .unwrap();
        watchdog.watch(healthy);
        watchdog.watch(dying);
        let deadline = Instant::now() + Duration::from_secs(10);
        while watchdog.stopped().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (status, body) = status_and_body(answer::<String>(Ok(Map::new()), &watchdog));
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["stopped_threads"], json!(["aggregation"]));
        assert!(body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("aggregation"));
    }

    #[test]
    fn probes_and_shutdown() {
        let shutdown = Shutdown::new();
        let watchdog = Watchdog::new(shutdown.clone());
        let alive = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&alive);
        watchdog.probe("db-writer", move || flag.load(Ordering::SeqCst));
        let mut figures = Map::new();
        figures.insert("n".into(), json!(3));
        let (status, body) = status_and_body(answer::<String>(Ok(figures), &watchdog));
        assert_eq!(
            (status, &body["status"], &body["n"]),
            (200, &json!("ok"), &json!(3))
        );
        alive.store(false, Ordering::SeqCst);
        assert_eq!(watchdog.stopped(), ["db-writer"]);
        shutdown.trigger();
        assert!(
            watchdog.stopped().is_empty(),
            "threads stop at shutdown: not a failure"
        );
        let (status, _) = status_and_body(answer(Err("disk gone"), &watchdog));
        assert_eq!(status, 503);
    }
}
