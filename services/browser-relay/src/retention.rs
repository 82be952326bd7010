//! The retention thread: at start-up and every 24 hours, delete source maps uploaded more
//! than `RETENTION_DAYS` ago (through the writer).

use std::thread::JoinHandle;
use std::time::Duration;

use shared::writer::Writer;
use shared::Shutdown;

use crate::db::{Job, Outcome};

const INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Starts the thread; it ends within ~100 ms of shutdown.
pub fn spawn(
    writer: Writer<Job, Outcome>,
    retention_days: u32,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    shutdown.every("retention", INTERVAL, move || {
        let cutoff_ms = shared::time::now_ms() - i64::from(retention_days) * 86_400_000;
        match writer.submit(Job::RetainMaps { cutoff_ms }) {
            Ok(Outcome::Deleted(0)) => {}
            Ok(Outcome::Deleted(n)) => {
                log::info!("retention deleted {n} source maps older than {retention_days} days")
            }
            Ok(other) => log::error!("retention got an unexpected outcome {other:?}"),
            Err(e) => log::warn!("retention run failed: {e:?}"),
        }
    })
}
