//! The writer of a database: request threads submit jobs through a bounded channel; the
//! writer thread commits a group of jobs per transaction and answers each job after its
//! group committed. Anything acknowledged is therefore on disk (WAL), and a full queue is a
//! `503` with `Retry-After` rather than unbounded memory.
//!
//! When the writes come one at a time (the last `CALM_COMMITS` commits each held one job
//! and nothing queued meanwhile) and none is under way, a job is committed at once on the
//! thread that submits it. Handing it to the writer thread and back costs two thread
//! wake-ups, which on a small machine whose idle cores sleep take longer than the commit
//! itself; under concurrent load jobs go through the channel, so that they are grouped.
//!
//! WAL checkpoints run on a second thread with its own connection: a checkpoint fsyncs the
//! WAL and the database, which on a real disk takes milliseconds, and inside a commit
//! (SQLite's auto-checkpoint runs in the commit that crosses the threshold) every report
//! queued behind it would wait that long.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
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
/// At most this many frames committed during the checkpoint thread's last pass are copied
/// by the committing thread itself (the rest of the round's WAL); more, and the thread makes
/// another pass. Measured with `Connection: close` reports at 1 client (wrk, 4 s): the
/// committing thread's share fell from ~450 frames in 1.5 ms to ~70 frames in 0.8 ms (its
/// two fsyncs), about 11 times a second.
const CATCH_UP_FRAMES: i32 = 256;
/// Longest a commit waits for a checkpoint thread that fell `CHECKPOINT_FRAMES` behind.
const BACKSTOP_WAIT: Duration = Duration::from_secs(1);
/// Commits in a row without company (one job each, nothing queued meanwhile) after which a
/// job may be committed on the thread that submits it.
const CALM_COMMITS: u32 = 8;

/// Why a job was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The queue is full: the client should retry shortly.
    QueueFull,
    /// The writer has stopped (shutdown, or a commit panicked).
    Stopped,
    /// The job or its transaction failed (already logged by the writer).
    Failed,
}

type Reply<R> = SyncSender<Result<R, WriteError>>;
/// A job to commit, and where its result goes (`None`: the committing thread's own job).
type Pending<J, R> = (J, Option<Reply<R>>);
/// A committed job's result, and where it goes.
type Done<R> = (Result<R, WriteError>, Option<Reply<R>>);
type Apply<J, R> = Box<dyn FnMut(&Connection, J) -> rusqlite::Result<R> + Send>;

/// Submits jobs to the writer. Cheap to share between request threads.
pub struct Writer<J, R> {
    queue: SyncSender<(J, Reply<R>)>,
    running: Arc<AtomicBool>,
    committer: Arc<Committer<J, R>>,
}

/// The write connection, shared by the writer thread and calm submitters.
struct Committer<J, R> {
    /// Held for each commit (`None` once the writer has stopped; a commit that panicked
    /// leaves it poisoned, which stops the writer).
    core: Mutex<Option<Core<J, R>>>,
    /// Jobs sent to the channel and not yet committed by the writer thread.
    queued: AtomicUsize,
    /// Commits in a row without company.
    calm: AtomicU32,
}

/// The write connection and what a job does on it.
struct Core<J, R> {
    conn: Connection,
    apply: Apply<J, R>,
}

impl<J, R> Committer<J, R> {
    /// Commits `group` (see [`commit_group`]), of which `from_queue` jobs came through the
    /// channel, on the connection `core` holds; notes whether it had company (other jobs in
    /// the group, or queued) and lets go of the connection before anyone is answered (an
    /// answered thread may commit its next job at once), then answers each queued job and
    /// returns the result of the job without a reply (the committing thread's own). `None`
    /// once the writer has stopped.
    fn commit(
        &self,
        mut core: MutexGuard<'_, Option<Core<J, R>>>,
        group: Vec<Pending<J, R>>,
        from_queue: usize,
    ) -> Option<Result<R, WriteError>> {
        let alone = group.len() == 1;
        let results = commit_group(core.as_mut()?, group);
        if alone && self.queued.load(Ordering::SeqCst) == from_queue {
            let _ = self
                .calm
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_add(1));
        } else {
            self.calm.store(0, Ordering::SeqCst);
        }
        self.queued.fetch_sub(from_queue, Ordering::SeqCst);
        drop(core);
        let mut own = None;
        for (outcome, reply) in results {
            match reply {
                Some(reply) => {
                    let _ = reply.send(outcome);
                }
                None => own = Some(outcome),
            }
        }
        own
    }
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
    /// job inside its group's transaction (in a savepoint when the group has several jobs,
    /// so one failing job does not undo the others). For a database file in WAL mode it
    /// also starts `<name>-checkpoint`, which checkpoints the WAL on a connection of its own
    /// instead of the writer's commits.
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
        let committer = Arc::new(Committer {
            core: Mutex::new(Some(Core {
                conn,
                apply: Box::new(apply),
            })),
            queued: AtomicUsize::new(0),
            calm: AtomicU32::new(0),
        });
        let thread_committer = Arc::clone(&committer);
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _on_exit = on_exit;
                write_loop(&thread_committer, jobs, stop_flag)
            })?;
        let handle = WriterHandle {
            stop,
            thread,
            checkpointer,
        };
        let writer = Writer {
            queue,
            running,
            committer,
        };
        Ok((writer, handle))
    }

    /// Whether the writer is still running (it stops only at shutdown, unless its thread
    /// died or a commit panicked: then `/health` says so).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Writes a job and returns once it is committed: on this thread when writes are calm
    /// and none is under way, otherwise queued for the writer thread's next group.
    pub fn submit(&self, job: J) -> Result<R, WriteError> {
        let committer = &*self.committer;
        if self.is_running()
            && committer.calm.load(Ordering::SeqCst) >= CALM_COMMITS
            && committer.queued.load(Ordering::SeqCst) == 0
        {
            match committer.core.try_lock() {
                Ok(core) => {
                    let own = committer.commit(core, vec![(job, None)], 0);
                    return own.unwrap_or(Err(WriteError::Stopped));
                }
                // A commit panicked: the writer stops and `/health` says so.
                Err(TryLockError::Poisoned(_)) => return Err(WriteError::Stopped),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let (reply, answer) = mpsc::sync_channel(1);
        committer.queued.fetch_add(1, Ordering::SeqCst);
        if let Err(refused) = self.queue.try_send((job, reply)) {
            committer.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(match refused {
                TrySendError::Full(_) => WriteError::QueueFull,
                TrySendError::Disconnected(_) => WriteError::Stopped,
            });
        }
        answer.recv().unwrap_or(Err(WriteError::Stopped))
    }
}

impl<J, R> Clone for Writer<J, R> {
    fn clone(&self) -> Self {
        Writer {
            queue: self.queue.clone(),
            running: Arc::clone(&self.running),
            committer: Arc::clone(&self.committer),
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
/// frame is copied, which never happens while the writer keeps committing, so the thread
/// makes passes until fewer than `CATCH_UP_FRAMES` were committed during its last one, and
/// the committing thread copies those itself (a short `PASSIVE` checkpoint in its hook).
/// Should the WAL reach twice the threshold while the thread still copies (a disk slower
/// than the writes), the commit waits for it, as it would have waited for its own
/// checkpoint. The thread ends when the writer's connection (holding the hook) is dropped.
/// `None` for an in-memory or non-WAL database.
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
                let copied = checkpoint_pass(&checkpoint_conn);
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
        let backfilled = progress.backfilled.load(Ordering::SeqCst);
        if backfilled == 0 || frames - backfilled > CATCH_UP_FRAMES {
            // Nothing copied yet in this round, or much committed during the thread's last
            // pass: the thread copies (again).
            progress.busy.store(true, Ordering::SeqCst);
            if wake.try_send(()).is_err() {
                progress.busy.store(false, Ordering::SeqCst);
            }
        } else {
            // Only a few frames were committed since: copy them here, so the WAL starts over.
            progress.backfilled.store(0, Ordering::SeqCst);
            if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                log::warn!("WAL catch-up checkpoint failed: {e}");
            }
        }
        Ok(())
    }));
    if let Err(e) = hooked {
        log::warn!("cannot install the WAL hook ({e}); the writer checkpoints itself");
    }
    Ok(Some(thread))
}

/// One `PASSIVE` checkpoint on the checkpoint thread's connection: the frames it copied.
/// `SQLITE_BUSY` means it read the WAL's header just while a commit was rewriting it (a
/// passive checkpoint does not wait for that): it is tried again a few times before it
/// counts as a failure.
fn checkpoint_pass(conn: &Connection) -> i32 {
    const ATTEMPTS: u32 = 3;
    for attempt in 1..=ATTEMPTS {
        match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
            Ok((_, copied)) => return copied.max(0),
            Err(e)
                if attempt < ATTEMPTS
                    && e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) =>
            {
                log::debug!("WAL checkpoint pass: {e} (attempt {attempt}), trying again");
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => {
                log::warn!("WAL checkpoint pass failed: {e}");
                return 0;
            }
        }
    }
    0
}

/// The writer thread: commits queued jobs in groups until stopped, then commits what is
/// left, checkpoints the WAL and closes the connection. A commit that panicked on a
/// submitting thread stops it too (`/health` then names it).
fn write_loop<J, R>(
    committer: &Committer<J, R>,
    jobs: Receiver<(J, Reply<R>)>,
    stop: Arc<AtomicBool>,
) {
    let mut stopped_cleanly = true;
    loop {
        crate::health::fault_point("db-writer");
        let first = match jobs.recv_timeout(Duration::from_millis(100)) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) if committer.core.is_poisoned() => {
                stopped_cleanly = false;
                break;
            }
            Err(RecvTimeoutError::Timeout) if stop.load(Ordering::SeqCst) => break,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![(first.0, Some(first.1))];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok((job, reply)) => group.push((job, Some(reply))),
                Err(_) => break,
            }
        }
        let taken = group.len();
        let Ok(core) = committer.core.lock() else {
            stopped_cleanly = false;
            break;
        };
        committer.commit(core, group, taken);
    }
    if !stopped_cleanly {
        log::error!("a database commit panicked; the writer stops");
        return;
    }
    let Ok(mut core) = committer.core.lock() else {
        return;
    };
    if let Some(core) = core.as_mut() {
        if let Err(e) = core.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            log::warn!("WAL checkpoint at shutdown failed: {e}");
        }
    }
    *core = None;
}

/// Commits `group` in one transaction, one savepoint per job when there are several (a
/// single job that fails rolls the transaction back); each job's result, beside its reply.
fn commit_group<J, R>(core: &mut Core<J, R>, group: Vec<Pending<J, R>>) -> Vec<Done<R>> {
    let tx = match core
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
    {
        Ok(tx) => tx,
        Err(e) => {
            log::error!("cannot begin a write transaction: {e}");
            return group
                .into_iter()
                .map(|(_, reply)| (Err(WriteError::Failed), reply))
                .collect();
        }
    };
    let single = group.len() == 1;
    let mut results = Vec::with_capacity(group.len());
    for (job, reply) in group {
        let outcome = if single {
            (core.apply)(&tx, job)
        } else {
            tx.prepare_cached("SAVEPOINT job")
                .and_then(|mut savepoint| savepoint.execute([]))
                .and_then(|_| (core.apply)(&tx, job))
                .and_then(|value| tx.prepare_cached("RELEASE job")?.execute([]).map(|_| value))
        };
        let outcome = outcome.map_err(|e| {
            log::error!("write failed: {e}");
            if !single {
                let _ = tx.execute_batch("ROLLBACK TO job; RELEASE job");
            }
            WriteError::Failed
        });
        results.push((outcome, reply));
    }
    let committed = if single && results[0].0.is_err() {
        tx.rollback()
    } else {
        tx.commit()
    };
    if let Err(e) = committed {
        log::error!("commit failed: {e}");
        for (outcome, _) in &mut results {
            *outcome = Err(WriteError::Failed);
        }
    }
    results
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

    /// Names of the threads that committed jobs submitted one at a time from a thread
    /// named `submitter`.
    fn committing_threads(writer: &Writer<u32, String>, jobs: u32) -> Vec<String> {
        let writer = writer.clone();
        thread::Builder::new()
            .name("submitter".to_string())
            .spawn(move || (0..jobs).map(|_| writer.submit(1).unwrap()).collect())
            .unwrap()
            .join()
            .unwrap()
    }

    /// A writer whose jobs return the name of the thread that committed them; job `0`
    /// first says so on `started`, then waits for a message on `gate`; job `2` panics.
    fn naming_writer(
        started: mpsc::Sender<()>,
        gate: Receiver<()>,
    ) -> (Writer<u32, String>, WriterHandle) {
        let conn = Connection::open_in_memory().unwrap();
        Writer::spawn("test-writer", conn, 16, move |_: &Connection, job: u32| {
            match job {
                0 => {
                    started.send(()).unwrap();
                    gate.recv().unwrap();
                }
                2 => panic!("a job panics"),
                _ => {}
            }
            Ok(thread::current().name().unwrap_or_default().to_string())
        })
        .unwrap()
    }

    #[test]
    fn once_writes_come_one_at_a_time_a_job_commits_on_the_submitting_thread() {
        let (_gate, gate) = mpsc::channel();
        let (writer, handle) = naming_writer(mpsc::channel().0, gate);
        let threads = committing_threads(&writer, CALM_COMMITS + 3);
        let (first, later) = threads.split_at(CALM_COMMITS as usize);
        assert!(first.iter().all(|t| t == "test-writer"), "{threads:?}");
        assert!(later.iter().all(|t| t == "submitter"), "{threads:?}");
        handle.finish();
        assert_eq!(writer.submit(1), Err(WriteError::Stopped));
    }

    #[test]
    fn a_job_arriving_during_a_commit_queues_and_jobs_go_to_the_writer_thread_again() {
        let (open_gate, gate) = mpsc::channel();
        let (started, slow_started) = mpsc::channel();
        let (writer, handle) = naming_writer(started, gate);
        committing_threads(&writer, CALM_COMMITS);
        // Commits on its own thread, and holds the connection until the gate opens.
        let slow = {
            let writer = writer.clone();
            thread::spawn(move || writer.submit(0))
        };
        slow_started.recv_timeout(Duration::from_secs(10)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let queued = {
            let writer = writer.clone();
            thread::spawn(move || writer.submit(1))
        };
        while writer.committer.queued.load(Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the second job never queued"
            );
            thread::yield_now();
        }
        open_gate.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap(), "");
        assert_eq!(queued.join().unwrap().unwrap(), "test-writer");
        // That commit had company: the next jobs go through the writer thread again.
        let threads = committing_threads(&writer, 2);
        assert!(threads.iter().all(|t| t == "test-writer"), "{threads:?}");
        handle.finish();
    }

    #[test]
    fn a_commit_that_panics_on_a_submitting_thread_stops_the_writer() {
        let (_gate, gate) = mpsc::channel();
        let (writer, handle) = naming_writer(mpsc::channel().0, gate);
        committing_threads(&writer, CALM_COMMITS);
        let panicking = writer.clone();
        assert!(thread::spawn(move || panicking.submit(2)).join().is_err());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while writer.is_running() {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer kept running"
            );
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(writer.submit(1), Err(WriteError::Stopped));
        handle.finish();
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
