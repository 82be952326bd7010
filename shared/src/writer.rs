//! The one writer thread of a database: request threads submit jobs through a bounded
//! channel; the writer commits a group of jobs per transaction and answers each job after
//! its group committed. Anything acknowledged is therefore on disk (WAL), and a full queue
//! is a `503` with `Retry-After` rather than unbounded memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::Connection;

/// Jobs committed in one transaction at most.
const MAX_GROUP: usize = 512;

/// Why a job was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The queue is full: the client should retry shortly.
    QueueFull,
    /// The writer has stopped (shutdown).
    Stopped,
    /// The job or its transaction failed (already logged by the writer).
    Failed,
}

type Reply<R> = SyncSender<Result<R, WriteError>>;

/// Submits jobs to the writer thread. Cheap to share between request threads.
pub struct Writer<J, R> {
    queue: SyncSender<(J, Reply<R>)>,
    running: Arc<AtomicBool>,
}

/// Cleared when the writer thread ends, however it ends (a panic included).
struct RunningFlag(Arc<AtomicBool>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Stops the writer thread once the server no longer submits.
pub struct WriterHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl<J: Send + 'static, R: Send + 'static> Writer<J, R> {
    /// Starts the writer thread on `conn` with a queue of `capacity` jobs. `apply` runs each
    /// job inside the group's transaction (in a savepoint, so one failing job does not undo
    /// the others).
    pub fn spawn(
        name: &str,
        conn: Connection,
        capacity: usize,
        apply: impl FnMut(&Connection, J) -> rusqlite::Result<R> + Send + 'static,
    ) -> std::io::Result<(Writer<J, R>, WriterHandle)> {
        let (queue, jobs) = mpsc::sync_channel(capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let running = Arc::new(AtomicBool::new(true));
        let on_exit = RunningFlag(Arc::clone(&running));
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _on_exit = on_exit;
                write_loop(conn, jobs, stop_flag, apply)
            })?;
        Ok((Writer { queue, running }, WriterHandle { stop, thread }))
    }

    /// Whether the writer thread is still running (it stops only at shutdown, unless it
    /// died: then `/health` says so).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Queues a job and waits until its group is committed.
    pub fn submit(&self, job: J) -> Result<R, WriteError> {
        let (reply, answer) = mpsc::sync_channel(1);
        match self.queue.try_send((job, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(WriteError::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(WriteError::Stopped),
        }
        answer.recv().unwrap_or(Err(WriteError::Stopped))
    }
}

impl<J, R> Clone for Writer<J, R> {
    fn clone(&self) -> Self {
        Writer {
            queue: self.queue.clone(),
            running: Arc::clone(&self.running),
        }
    }
}

impl WriterHandle {
    /// Writes what is still queued, checkpoints the WAL and ends the thread.
    pub fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        if self.thread.join().is_err() {
            log::error!("the database writer thread panicked");
        }
    }
}

fn write_loop<J, R>(
    mut conn: Connection,
    jobs: Receiver<(J, Reply<R>)>,
    stop: Arc<AtomicBool>,
    mut apply: impl FnMut(&Connection, J) -> rusqlite::Result<R>,
) {
    loop {
        crate::health::fault_point("db-writer");
        let first = match jobs.recv_timeout(Duration::from_millis(100)) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => break,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group, &mut apply);
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        log::warn!("WAL checkpoint at shutdown failed: {e}");
    }
}

fn commit_group<J, R>(
    conn: &mut Connection,
    group: Vec<(J, Reply<R>)>,
    apply: &mut impl FnMut(&Connection, J) -> rusqlite::Result<R>,
) {
    let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            log::error!("cannot begin a write transaction: {e}");
            for (_, reply) in group {
                let _ = reply.send(Err(WriteError::Failed));
            }
            return;
        }
    };
    let mut results = Vec::with_capacity(group.len());
    for (job, reply) in group {
        let outcome = tx
            .prepare_cached("SAVEPOINT job")
            .and_then(|mut savepoint| savepoint.execute([]))
            .and_then(|_| apply(&tx, job))
            .and_then(|value| tx.prepare_cached("RELEASE job")?.execute([]).map(|_| value));
        let outcome = outcome.map_err(|e| {
            log::error!("write failed: {e}");
            let _ = tx.execute_batch("ROLLBACK TO job; RELEASE job");
            WriteError::Failed
        });
        results.push((outcome, reply));
    }
    let committed = tx.commit();
    for (outcome, reply) in results {
        let outcome = match &committed {
            Ok(()) => outcome,
            Err(_) => Err(WriteError::Failed),
        };
        let _ = reply.send(outcome);
    }
    if let Err(e) = committed {
        log::error!("commit failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_commit_and_failures_stay_isolated() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        let (writer, handle) =
            Writer::spawn("test-writer", conn, 16, |c: &Connection, x: Option<i64>| {
                c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            })
            .unwrap();
        assert_eq!(writer.submit(Some(1)), Ok(1));
        assert_eq!(writer.submit(None), Err(WriteError::Failed));
        assert_eq!(writer.submit(Some(2)), Ok(2));
        handle.finish();
        assert_eq!(writer.submit(Some(3)), Err(WriteError::Stopped));
    }
}
