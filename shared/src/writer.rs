//! The one writer thread of a database: request threads submit jobs through a bounded
//! channel; the writer commits a group of jobs per transaction and answers each job after
//! its group committed. Anything acknowledged is therefore on disk (WAL), and a full queue
//! is a `503` with `Retry-After` rather than unbounded memory.
//!
//! WAL checkpoints run on a second thread with its own connection: a checkpoint fsyncs the
//! WAL and the database, which on a real disk takes milliseconds, and on the writer thread
//! (SQLite's auto-checkpoint runs inside the commit that crosses the threshold) every report
//! queued behind it would wait that long.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::wal::CheckpointMode;
use rusqlite::Connection;

/// Jobs committed in one transaction at most.
const MAX_GROUP: usize = 512;
/// WAL frames after a commit beyond which the checkpoint thread is woken (~16 MB of WAL with
/// 4 KiB pages). SQLite's auto-checkpoint default is 1,000; measured on 1–8 clients, 4,000
/// makes the writer's short catch-up checkpoint (two small fsyncs) four times rarer.
const CHECKPOINT_FRAMES: i32 = 4000;
/// Longest the writer waits for a checkpoint thread that fell `CHECKPOINT_FRAMES` behind.
const BACKSTOP_WAIT: Duration = Duration::from_secs(1);

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

/// Stops the writer thread (and its checkpointer) once the server no longer submits.
pub struct WriterHandle {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    checkpointer: Option<JoinHandle<()>>,
}

impl<J: Send + 'static, R: Send + 'static> Writer<J, R> {
    /// Starts the writer thread on `conn` with a queue of `capacity` jobs. `apply` runs each
    /// job inside the group's transaction (in a savepoint, so one failing job does not undo
    /// the others). For a database file in WAL mode it also starts `<name>-checkpoint`, which
    /// checkpoints the WAL on a connection of its own instead of the writer's commits.
    pub fn spawn(
        name: &str,
        mut conn: Connection,
        capacity: usize,
        apply: impl FnMut(&Connection, J) -> rusqlite::Result<R> + Send + 'static,
    ) -> std::io::Result<(Writer<J, R>, WriterHandle)> {
        let checkpointer = spawn_checkpointer(name, &mut conn)?;
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
        let handle = WriterHandle {
            stop,
            thread,
            checkpointer,
        };
        Ok((Writer { queue, running }, handle))
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
        // The writer's connection is closed, and with it the checkpointer's wake-up channel.
        if let Some(checkpointer) = self.checkpointer {
            if checkpointer.join().is_err() {
                log::error!("the WAL checkpoint thread panicked");
            }
        }
    }
}

/// What the checkpoint thread has done, read by the writer's WAL hook.
#[derive(Default)]
struct CheckpointProgress {
    /// The thread is copying frames (woken, not yet done).
    busy: AtomicBool,
    /// WAL frames the thread's last checkpoint copied into the database (0: none since the
    /// writer last finished a checkpoint, i.e. since the WAL last started over).
    backfilled: AtomicI32,
}

/// Moves the bulk of WAL checkpointing off the writer. The writer connection's
/// auto-checkpoint is replaced by a hook that, once the WAL holds `CHECKPOINT_FRAMES`
/// frames, wakes a checkpoint thread (on a second connection) to run a `PASSIVE` checkpoint,
/// which copies and fsyncs without blocking the writer. The WAL only starts over when every
/// frame is copied, which never happens while the writer keeps committing, so once the
/// thread is done the writer copies the few frames committed meanwhile itself (a short
/// `PASSIVE` checkpoint in its hook). Should the WAL reach twice the threshold while the
/// thread still copies (a disk slower than the writes), the writer waits for it, as it
/// would have waited for its own checkpoint. The thread ends when the writer's connection (holding
/// the hook) is dropped. `None` for an in-memory or non-WAL database.
fn spawn_checkpointer(
    name: &str,
    conn: &mut Connection,
) -> std::io::Result<Option<JoinHandle<()>>> {
    let journal_mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap_or_default();
    let path = conn.path().unwrap_or_default().to_string();
    if !journal_mode.eq_ignore_ascii_case("wal") || path.is_empty() {
        return Ok(None);
    }
    // A first read makes the new connection open the WAL; until then it checkpoints nothing.
    let opened = Connection::open(&path).and_then(|checkpoint_conn| {
        checkpoint_conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        Ok(checkpoint_conn)
    });
    let checkpoint_conn = match opened {
        Ok(checkpoint_conn) => checkpoint_conn,
        Err(e) => {
            log::warn!("cannot open a checkpoint connection ({e}); the writer checkpoints itself");
            return Ok(None);
        }
    };
    let progress = Arc::new(CheckpointProgress::default());
    let (wake, wakeups) = mpsc::sync_channel::<()>(1);
    let thread_progress = Arc::clone(&progress);
    let thread = thread::Builder::new()
        .name(format!("{name}-checkpoint"))
        .spawn(move || {
            while wakeups.recv().is_ok() {
                let copied = match checkpoint_conn
                    .wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE)
                {
                    Ok((_, copied)) => copied.max(0),
                    Err(e) => {
                        log::warn!("WAL checkpoint failed: {e}");
                        0
                    }
                };
                thread_progress.backfilled.store(copied, Ordering::SeqCst);
                thread_progress.busy.store(false, Ordering::SeqCst);
            }
        })?;
    let hooked = conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, frames: i32| {
        if frames < CHECKPOINT_FRAMES {
            return Ok(());
        }
        if progress.busy.load(Ordering::SeqCst) {
            if frames >= 2 * CHECKPOINT_FRAMES {
                // The disk copies slower than reports arrive: wait for the thread (bounded)
                // rather than let the WAL grow without limit.
                let waited = std::time::Instant::now();
                while progress.busy.load(Ordering::SeqCst) && waited.elapsed() < BACKSTOP_WAIT {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            return Ok(());
        }
        if progress.backfilled.swap(0, Ordering::SeqCst) == 0 {
            // Nothing copied yet in this round: the thread does the bulk.
            progress.busy.store(true, Ordering::SeqCst);
            if wake.try_send(()).is_err() {
                progress.busy.store(false, Ordering::SeqCst);
            }
        } else if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
            // The thread is done: copy what was committed meanwhile, so the WAL starts over.
            log::warn!("WAL checkpoint failed: {e}");
        }
        Ok(())
    }));
    if let Err(e) = hooked {
        log::warn!("cannot install the WAL hook ({e}); the writer checkpoints itself");
    }
    Ok(Some(thread))
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

    #[test]
    fn the_wal_starts_over_while_the_writer_keeps_committing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = crate::db::open(&path, 1024).unwrap();
        conn.execute_batch("CREATE TABLE t (x BLOB NOT NULL)")
            .unwrap();
        let (writer, handle) = Writer::spawn("test-writer", conn, 16, |c: &Connection, n: i64| {
            c.execute("INSERT INTO t (x) VALUES (zeroblob(?1))", [n])
        })
        .unwrap();
        // One commit per job, three WAL frames each: 36,000 frames (~150 MB) if the WAL
        // never started over, whereas the checkpoints keep it near CHECKPOINT_FRAMES.
        for _ in 0..12_000 {
            assert_eq!(writer.submit(8 * 1024), Ok(1));
        }
        let wal_bytes = std::fs::metadata(dir.path().join("w.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal_bytes < 48 * 1024 * 1024,
            "the WAL grew to {wal_bytes} bytes"
        );
        handle.finish();
        let check = Connection::open(&path).unwrap();
        let rows: i64 = check
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 12_000);
    }
}
