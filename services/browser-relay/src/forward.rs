//! The forwarders: one thread per upstream sends its outbox entries in order — errors one
//! request each, metrics joined into batches of at most 1000 points — and deletes them only
//! after the upstream's `2xx`. While the upstream is down or answers `5xx`/`429`, it waits with
//! exponential backoff (1 s doubling to 60 s, or the upstream's `Retry-After`; while waiting,
//! a down upstream's `/health` is probed every 2 s to resume as soon as it is back); a `4xx` other
//! than `429` cannot succeed on retry: the entry is logged and dropped (counted). A crash
//! between the upstream's `2xx` and the delete sends that entry again: at worst once twice,
//! never lost.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use shared::writer::Writer;
use shared::Shutdown;
use ureq::Agent;

use crate::config::Upstream as UpstreamConfig;
use crate::db::{self, Job, Outcome, Upstream};

/// Points in one metrics request at most (the collector's batch limit).
const MAX_POINTS: usize = 1000;
/// Outbox entries read at once, and their bytes at most.
const READ_AHEAD: usize = 200;
const READ_AHEAD_BYTES: usize = 256 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How often an idle forwarder checks its upstream's `/health`.
const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// How often an upstream in backoff is probed for its recovery.
const RECOVERY_PROBE: Duration = Duration::from_secs(2);
/// Longest an idle forwarder waits for the doorbell before looking at the outbox again.
const IDLE_WAIT: Duration = Duration::from_millis(250);

/// An upstream's reachability, for `/health`.
#[derive(Debug, Default)]
pub struct Reachability(AtomicU8);

impl Reachability {
    /// `ok` once the upstream answered (any status but 5xx), `down` when it did not.
    pub fn as_str(&self) -> &'static str {
        match self.0.load(Ordering::SeqCst) {
            1 => "ok",
            _ => "down",
        }
    }

    fn set(&self, ok: bool) {
        self.0.store(u8::from(ok), Ordering::SeqCst);
    }
}

/// Wakes the forwarders when something was queued.
#[derive(Debug, Default)]
pub struct Doorbell {
    rung: Mutex<bool>,
    bell: Condvar,
}

impl Doorbell {
    /// Something new is in the outbox.
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.bell.notify_all();
    }

    /// Waits until rung or `timeout`; clears the bell.
    fn wait(&self, timeout: Duration) {
        let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        if !*rung {
            rung = match self.bell.wait_timeout(rung, timeout) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *rung = false;
    }
}

/// What one forwarder needs.
pub struct Forwarder {
    pub upstream: Upstream,
    pub target: UpstreamConfig,
    pub timeout: Duration,
    pub reads: Arc<shared::db::Pool>,
    pub writer: Writer<Job, Outcome>,
    pub reachability: Arc<Reachability>,
    pub doorbell: Arc<Doorbell>,
}

/// The result of one upstream request.
enum Sent {
    /// `2xx`: delete the entries.
    Delivered,
    /// A `4xx` other than `429`: retrying cannot help; drop the entries.
    Refused(u16, String),
    /// Down, `5xx` or `429`: retry after the backoff (or the given `Retry-After`).
    Retry(Option<Duration>, String),
}

impl Forwarder {
    /// Starts the thread; it ends within ~100 ms of shutdown (what is not yet delivered stays
    /// in the outbox for the next start).
    pub fn spawn(self, shutdown: Shutdown) -> std::io::Result<JoinHandle<()>> {
        thread::Builder::new()
            .name(format!("forward-{}", self.upstream.as_str()))
            .spawn(move || self.run(&shutdown))
    }

    fn run(self, shutdown: &Shutdown) {
        // A timeout per step, not a global one: with a global timeout ureq resolves the host
        // name on a new thread for every request (measured: a thread per forwarded error).
        let step = Some(self.timeout);
        let agent: Agent = Agent::config_builder()
            .timeout_connect(Some(self.timeout.min(Duration::from_secs(5))))
            .timeout_send_request(step)
            .timeout_send_body(step)
            .timeout_recv_response(step)
            .timeout_recv_body(step)
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        self.reachability.set(self.probe(&agent));
        let mut last_probe = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        while !shutdown.is_set() {
            shared::health::fault_point("forward");
            let entries = match db::head(
                &self.reads.get(),
                self.upstream,
                READ_AHEAD,
                READ_AHEAD_BYTES,
            ) {
                Ok(entries) => entries,
                Err(e) => {
                    log::error!(
                        "forward-{}: cannot read the outbox: {e}",
                        self.upstream.as_str()
                    );
                    shutdown.sleep(FIRST_BACKOFF);
                    continue;
                }
            };
            if entries.is_empty() {
                if last_probe.elapsed() >= PROBE_INTERVAL {
                    self.reachability.set(self.probe(&agent));
                    last_probe = Instant::now();
                }
                self.doorbell.wait(IDLE_WAIT);
                continue;
            }
            let mut rest: &[db::Entry] = &entries;
            let mut retry = None;
            while !rest.is_empty() && !shutdown.is_set() {
                let batch = self.next_request(rest);
                let (ids, body) = (batch.iter().map(|e| e.id).collect(), self.body(batch));
                match self.send(&agent, batch[0].payload.path.as_deref(), &body) {
                    Sent::Delivered => {
                        self.reachability.set(true);
                        backoff = FIRST_BACKOFF;
                        self.finish(ids, true);
                    }
                    Sent::Refused(status, answer) => {
                        self.reachability.set(true);
                        log::warn!(
                            "forward-{}: upstream refused {} entries with {status} ({answer}); dropped",
                            self.upstream.as_str(),
                            batch.len()
                        );
                        self.finish(ids, false);
                    }
                    Sent::Retry(retry_after, why) => {
                        let wait = retry_after.unwrap_or(backoff).min(MAX_RETRY_AFTER);
                        log::warn!(
                            "forward-{}: {why}; retrying in {} s",
                            self.upstream.as_str(),
                            wait.as_secs()
                        );
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        retry = Some((wait, retry_after.is_some()));
                        break;
                    }
                }
                rest = &rest[batch.len()..];
            }
            // Wait without holding what was read: the outbox keeps it.
            drop(entries);
            if let Some((wait, asked)) = retry {
                self.wait_to_retry(&agent, wait, asked, shutdown);
            }
        }
    }

    /// The entries of the next request: one error, or metrics up to [`MAX_POINTS`] points
    /// (always at least one entry).
    fn next_request<'e>(&self, entries: &'e [db::Entry]) -> &'e [db::Entry] {
        if self.upstream == Upstream::Errors {
            return &entries[..1];
        }
        let mut points = 0;
        let mut n = 0;
        for entry in entries {
            if n > 0 && points + entry.payload.points > MAX_POINTS {
                break;
            }
            points += entry.payload.points;
            n += 1;
        }
        &entries[..n.max(1)]
    }

    /// The request body: the error as stored, or the metric arrays joined into one.
    fn body(&self, entries: &[db::Entry]) -> String {
        match self.upstream {
            Upstream::Errors => entries[0].payload.body.clone(),
            Upstream::Metrics => {
                let inner: Vec<&str> = entries
                    .iter()
                    .map(|e| {
                        let body = e.payload.body.trim();
                        body.trim_start_matches('[').trim_end_matches(']')
                    })
                    .filter(|inner| !inner.trim().is_empty())
                    .collect();
                format!("[{}]", inner.join(","))
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.url)
    }

    /// Posts a body: to the upstream's own path as JSON, or (`envelope_path`) a Sentry
    /// envelope to that path.
    fn send(&self, agent: &Agent, envelope_path: Option<&str>, body: &str) -> Sent {
        let (path, content_type) = match (envelope_path, self.upstream) {
            (Some(path), _) => (path, "application/x-sentry-envelope"),
            (None, Upstream::Errors) => ("/api/errors", "application/json"),
            (None, Upstream::Metrics) => ("/api/metrics", "application/json"),
        };
        let result = agent
            .post(&self.url(path))
            .header("X-API-Key", self.target.api_key.expose())
            .header("Content-Type", content_type)
            .send(body);
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                self.reachability.set(false);
                return Sent::Retry(None, format!("{} unreachable: {e}", self.target.url));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer: String = response
            .body_mut()
            .read_to_string()
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        match status {
            200..=299 => Sent::Delivered,
            429 => Sent::Retry(retry_after, format!("upstream rate limit (429 {answer})")),
            400..=499 => Sent::Refused(status, answer),
            _ => {
                self.reachability.set(false);
                Sent::Retry(
                    retry_after,
                    format!("upstream answered {status} ({answer})"),
                )
            }
        }
    }

    /// Waits `wait` before a retry. Unless the upstream asked for the wait (`Retry-After`),
    /// its `/health` is probed every [`RECOVERY_PROBE`] meanwhile, so that an upstream back
    /// after a long outage gets the backlog at once rather than at the end of the backoff.
    fn wait_to_retry(&self, agent: &Agent, wait: Duration, asked: bool, shutdown: &Shutdown) {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            let step = RECOVERY_PROBE.min(until - Instant::now());
            if !shutdown.sleep(step) {
                return;
            }
            if !asked && self.probe(agent) {
                self.reachability.set(true);
                return;
            }
        }
    }

    /// Whether the upstream's `/health` answers.
    fn probe(&self, agent: &Agent) -> bool {
        agent
            .get(&self.url("/health"))
            .call()
            .is_ok_and(|r| r.status().as_u16() < 500)
    }

    /// Deletes delivered or dropped entries, retrying while the writer is busy.
    fn finish(&self, ids: Vec<i64>, forwarded: bool) {
        for _ in 0..100 {
            match self.writer.submit(Job::Done {
                ids: ids.clone(),
                forwarded,
            }) {
                Ok(_) => return,
                Err(shared::writer::WriteError::QueueFull) => {
                    thread::sleep(Duration::from_millis(20))
                }
                Err(e) => {
                    log::error!(
                        "forward-{}: cannot delete delivered entries ({e:?}); they may be sent again",
                        self.upstream.as_str()
                    );
                    return;
                }
            }
        }
    }
}
