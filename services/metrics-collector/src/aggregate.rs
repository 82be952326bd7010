//! The aggregation thread: at start-up and every `AGGREGATION_INTERVAL` (on the service's
//! clock), roll up every complete minute and hour that needs it, then apply retention. Each
//! minute, hour and retention batch is its own writer job, so batches of points interleave
//! with a long catch-up. The state is in the database (see [`crate::db`]): a restart, a
//! pause or any interval neither skips nor repeats a minute.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::Connection;
use shared::writer::{WriteError, Writer};
use shared::Shutdown;

use crate::config::Config;
use crate::db::{self, Job, Outcome};

/// What the thread reports: the time of its last successful run.
#[derive(Debug)]
pub struct Status {
    last_run_ms: AtomicI64,
}

/// No run yet.
const NEVER: i64 = i64::MIN;

impl Status {
    /// The status as the database remembers it (the last run before a restart counts).
    pub fn load(conn: &Connection) -> rusqlite::Result<Arc<Status>> {
        let last = db::get_meta(conn, db::meta::LAST_AGGREGATION)?.unwrap_or(NEVER);
        Ok(Arc::new(Status {
            last_run_ms: AtomicI64::new(last),
        }))
    }

    /// The time of the last successful run, epoch ms.
    pub fn last_aggregation_ms(&self) -> Option<i64> {
        Some(self.last_run_ms.load(Ordering::SeqCst)).filter(|&ms| ms != NEVER)
    }
}

/// How long to wait before retrying a job the writer's full queue refused.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(50);

/// Starts the thread; it ends within ~100 ms of shutdown (a run cut short resumes from the
/// database's state at the next start).
pub fn spawn(
    writer: Writer<Job, Outcome>,
    status: Arc<Status>,
    config: Config,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("aggregation".to_string())
        .spawn(move || loop {
            shared::health::fault_point("aggregation");
            let now_ms = config.clock.now_ms();
            match run(&writer, &config, now_ms, &shutdown) {
                Ok(()) => status.last_run_ms.store(now_ms, Ordering::SeqCst),
                Err(WriteError::Stopped) => return,
                Err(e) => log::warn!("aggregation run failed (next run retries): {e:?}"),
            }
            if !config
                .clock
                .sleep(now_ms, config.aggregation_interval, &shutdown)
            {
                return;
            }
        })
}

/// One run: minutes, then hours, then retention, then the run is recorded.
fn run(
    writer: &Writer<Job, Outcome>,
    config: &Config,
    now_ms: i64,
    shutdown: &Shutdown,
) -> Result<(), WriteError> {
    let mut minutes = 0;
    while let Outcome::Rolled(n @ 1..) = submit(writer, shutdown, || Job::RollMinute { now_ms })? {
        minutes += n;
    }
    let mut hours = 0;
    while let Outcome::Rolled(n @ 1..) = submit(writer, shutdown, || Job::RollHour)? {
        hours += n;
    }
    let retention = config.retention;
    let mut deleted = [0; 4];
    loop {
        let Outcome::Deleted(batch) =
            submit(writer, shutdown, || Job::Retention { now_ms, retention })?
        else {
            return Err(WriteError::Failed);
        };
        for (total, n) in deleted.iter_mut().zip(batch) {
            *total += n;
        }
        if batch[0] < db::RETENTION_BATCH {
            break;
        }
    }
    submit(writer, shutdown, || Job::Finished { now_ms })?;
    if minutes + hours > 0 || deleted.iter().any(|&n| n > 0) {
        shared::cli::release_free_memory();
        log::info!(
            "aggregation: {minutes} minutes and {hours} hours rolled up; deleted {} raw points, {} minute and {} hour rollups, {} series",
            deleted[0], deleted[1], deleted[2], deleted[3]
        );
    }
    Ok(())
}

/// Submits a job, waiting while the writer's queue is full (ingest has priority); stops
/// with `Stopped` at shutdown.
fn submit(
    writer: &Writer<Job, Outcome>,
    shutdown: &Shutdown,
    job: impl Fn() -> Job,
) -> Result<Outcome, WriteError> {
    loop {
        if shutdown.is_set() {
            return Err(WriteError::Stopped);
        }
        match writer.submit(job()) {
            Err(WriteError::QueueFull) => {
                if !shutdown.sleep(QUEUE_FULL_PAUSE) {
                    return Err(WriteError::Stopped);
                }
            }
            other => return other,
        }
    }
}
