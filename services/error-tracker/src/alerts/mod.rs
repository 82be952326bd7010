//! Alerts on new and reopened groups: a bounded queue and one sender thread that delivers
//! each alert to every configured channel (SMTP, Postmark, webhook).
//!
//! Ingestion never waits for an alert: [`Alerts::notify`] only tries to queue it. When the
//! queue is full (a burst of new errors, a slow mail server) the alert is dropped and
//! counted, and the sender logs a summary once a minute. A failed delivery is logged with
//! its host, port and error and counted, never retried. Alerts still queued at shutdown are
//! discarded (and counted in the log): waiting for a dead mail server must not hold up a stop.

mod channel;
mod message;
mod postmark;
mod smtp;
mod webhook;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use shared::cli::StartError;
use shared::http::ApiError;
use shared::Shutdown;

pub use message::{Alert, AlertEvent};

use crate::config::AlertConfig;
use channel::DeliveryError;
use message::Email;
use postmark::Postmark;
use smtp::Smtp;
use webhook::Webhook;

/// Alerts waiting for the sender at most. An alert holds at most ~25 KiB (message and
/// traceback are cut when it is made; the request URL is at most 2000 characters), so a
/// full queue stays under about 3 MiB.
const QUEUE: usize = 128;
/// How often dropped alerts are summarized in the log.
const DROP_SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// How often an idle sender looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);

/// What `POST /api/test-alert` answers when no channel is configured.
const NO_CHANNEL: &str = "No alert channel configured: set SMTP_HOST (or POSTMARK_API_TOKEN) \
                          and ALERT_EMAILS, or ALERT_WEBHOOK_URL";

/// Alert counters since start, shown on `/health`. `sent` and `failed` count deliveries (one
/// per channel), `dropped` counts alerts that found the queue full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Deliveries that succeeded.
    pub sent: u64,
    /// Deliveries that failed (each logged).
    pub failed: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The handlers' side of the alerts: queue one, dispatch a test, read the counters.
#[derive(Clone)]
pub struct Alerts {
    queue: SyncSender<Alert>,
    channels: Vec<&'static str>,
    counters: Arc<Counters>,
}

impl Alerts {
    /// Builds the configured channels and starts the sender thread. The thread ends within
    /// ~100 ms of shutdown, or when the delivery in flight ends (bounded by the timeouts).
    pub fn start(
        config: &AlertConfig,
        base_url: &str,
        shutdown: Shutdown,
    ) -> Result<(Alerts, JoinHandle<()>), StartError> {
        let channels = Channels::new(config, base_url)?;
        let names = channels.names();
        if names.is_empty() {
            log::info!("alerts are off: no channel configured");
        } else {
            log::info!("alerts go to: {}", names.join(", "));
        }
        let counters = Arc::new(Counters::default());
        let (queue, alerts) = mpsc::sync_channel(QUEUE);
        let thread_counters = Arc::clone(&counters);
        let thread = thread::Builder::new()
            .name("alerts".to_string())
            .spawn(move || send_loop(&channels, &alerts, &thread_counters, &shutdown))?;
        let handle = Alerts {
            queue,
            channels: names,
            counters,
        };
        Ok((handle, thread))
    }

    /// Queues an alert without ever waiting; when the queue is full it is dropped and
    /// counted. Does nothing when no channel is configured.
    pub fn notify(&self, alert: Alert) {
        if self.channels.is_empty() {
            return;
        }
        match self.queue.try_send(alert) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues a test alert for every channel and names them; `503` when no channel is
    /// configured or the queue is full.
    pub fn send_test(&self) -> Result<&[&'static str], ApiError> {
        if self.channels.is_empty() {
            return Err(ApiError::new(503, NO_CHANNEL));
        }
        match self.queue.try_send(Alert::test()) {
            Ok(()) => Ok(&self.channels),
            Err(TrySendError::Full(_)) => Err(ApiError::unavailable(
                "Alert queue is full, retry shortly",
                5,
            )),
            Err(TrySendError::Disconnected(_)) => {
                Err(ApiError::unavailable("Service is shutting down", 5))
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> AlertStats {
        AlertStats {
            sent: self.counters.sent.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

/// The configured channels; owned by the sender thread.
struct Channels {
    base_url: String,
    smtp: Option<Smtp>,
    postmark: Option<Postmark>,
    webhook: Option<Webhook>,
}

impl Channels {
    /// The channels whose settings are complete; email ones also need `ALERT_EMAILS`.
    fn new(config: &AlertConfig, base_url: &str) -> Result<Channels, StartError> {
        let emails = !config.recipients.is_empty();
        if !emails && (config.smtp.is_some() || config.postmark.is_some()) {
            log::warn!("ALERT_EMAILS is not set: email alerts are off");
        }
        let smtp = match &config.smtp {
            Some(smtp) if emails => Some(Smtp::new(smtp, &config.recipients, config.timeout)?),
            _ => None,
        };
        let postmark = match &config.postmark {
            Some(postmark) if emails => {
                Some(Postmark::new(postmark, &config.recipients, config.timeout))
            }
            _ => None,
        };
        Ok(Channels {
            base_url: base_url.to_string(),
            smtp,
            postmark,
            webhook: config.webhook_url.as_deref().map(Webhook::new),
        })
    }

    fn names(&self) -> Vec<&'static str> {
        [
            self.smtp.as_ref().map(|_| "smtp"),
            self.postmark.as_ref().map(|_| "postmark"),
            self.webhook.as_ref().map(|_| "webhook"),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Sends `alert` through each channel in turn; stops early on shutdown.
    fn deliver(&self, alert: &Alert, counters: &Counters, shutdown: &Shutdown) {
        let email = (self.smtp.is_some() || self.postmark.is_some())
            .then(|| Email::new(alert, &self.base_url));
        if let (Some(smtp), Some(email)) = (&self.smtp, &email) {
            record(alert, smtp.send(email), counters);
        }
        if let (Some(postmark), Some(email)) = (&self.postmark, &email) {
            if shutdown.is_set() {
                return;
            }
            record(alert, postmark.send(email), counters);
        }
        if let Some(webhook) = &self.webhook {
            if shutdown.is_set() {
                return;
            }
            record(alert, webhook.send(alert, &self.base_url), counters);
        }
    }
}

fn record(alert: &Alert, result: Result<String, DeliveryError>, counters: &Counters) {
    let what = match alert.event {
        AlertEvent::Test => "test alert".to_string(),
        AlertEvent::Created | AlertEvent::Reopened => format!("alert for error #{}", alert.id),
    };
    match result {
        Ok(delivered) => {
            counters.sent.fetch_add(1, Ordering::Relaxed);
            log::info!("{what} sent by {delivered}");
        }
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            log::warn!("{what} not delivered: {e}");
        }
    }
}

fn send_loop(
    channels: &Channels,
    alerts: &Receiver<Alert>,
    counters: &Counters,
    shutdown: &Shutdown,
) {
    let mut drops = DropLog {
        since: Instant::now(),
        reported: 0,
    };
    while !shutdown.is_set() {
        shared::health::fault_point("alerts");
        match alerts.recv_timeout(POLL) {
            Ok(alert) => {
                // A bug in a channel costs one alert, not the sender thread.
                let delivered = panic::catch_unwind(AssertUnwindSafe(|| {
                    channels.deliver(&alert, counters, shutdown)
                }));
                if delivered.is_err() {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    log::error!("delivering the alert for error #{} panicked", alert.id);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        drops.summarize(counters.dropped.load(Ordering::Relaxed), false);
    }
    let discarded = alerts.try_iter().count();
    if discarded > 0 {
        log::info!("{discarded} queued alerts discarded at shutdown");
    }
    drops.summarize(counters.dropped.load(Ordering::Relaxed), true);
}

/// Dropped alerts are logged as one summary line a minute, not one line each.
struct DropLog {
    since: Instant,
    reported: u64,
}

impl DropLog {
    /// Logs the drops since the last summary, once a minute has passed (or now, at the end).
    fn summarize(&mut self, dropped: u64, now: bool) {
        if !now && self.since.elapsed() < DROP_SUMMARY_EVERY {
            return;
        }
        let new = dropped - self.reported;
        if new > 0 {
            log::warn!("{new} alerts dropped in the last minute (queue full)");
        }
        self.reported = dropped;
        self.since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_channels_nothing_is_queued_and_test_alert_is_503() {
        let shutdown = Shutdown::new();
        let config =
            AlertConfig::from_env(&shared::config::Env::from_pairs::<&str, &str>(&[])).unwrap();
        let (alerts, thread) = Alerts::start(&config, "http://h", shutdown.clone()).unwrap();
        alerts.notify(Alert::test());
        assert_eq!(alerts.stats(), AlertStats::default());
        let err = alerts.send_test().unwrap_err();
        assert_eq!((err.status(), err.detail()), (503, NO_CHANNEL));
        shutdown.trigger();
        thread.join().unwrap();
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (queue, _receiver) = mpsc::sync_channel(1);
        let alerts = Alerts {
            queue,
            channels: vec!["webhook"],
            counters: Arc::default(),
        };
        for _ in 0..3 {
            alerts.notify(Alert::test());
        }
        assert_eq!(alerts.stats().dropped, 2);
        assert_eq!(alerts.send_test().unwrap_err().status(), 503);
    }
}
