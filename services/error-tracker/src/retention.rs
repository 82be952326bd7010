//! The retention thread: at start-up and every `RETENTION_INTERVAL`, delete resolved groups
//! whose `resolved_at` is older than `RETENTION_DAYS` (occurrences cascade). Unresolved groups
//! are never deleted; hourly trend counts older than `db::TREND_DAYS` go too. The delete itself
//! runs on the writer thread.

use std::thread::JoinHandle;
use std::time::Duration;

use shared::writer::Writer;
use shared::Shutdown;

use crate::db::{Job, Outcome};

/// Starts the thread; it ends within ~100 ms of shutdown.
pub fn spawn(
    writer: Writer<Job, Outcome>,
    retention_days: u32,
    interval: Duration,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    shutdown.every("retention", interval, move || {
        let now_ms = shared::time::now_ms();
        let cutoff_ms = now_ms - i64::from(retention_days) * 86_400_000;
        match writer.submit(Job::Retention { cutoff_ms, now_ms }) {
            Ok(Outcome::Deleted(0)) => {}
            Ok(Outcome::Deleted(n)) => {
                log::info!("retention deleted {n} resolved groups older than {retention_days} days")
            }
            Ok(other) => log::error!("retention got an unexpected outcome {other:?}"),
            Err(e) => log::warn!("retention run failed: {e:?}"),
        }
    })
}
