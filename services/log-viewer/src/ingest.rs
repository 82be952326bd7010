//! The ingestion thread: rescans `LOG_SOURCES`, polls every followed container, stores each
//! poll's entries (sorted by time) together with the cursors in one transaction, pushes them
//! to the live tails, and enforces `MAX_ENTRIES` / `MAX_AGE_DAYS`. It is the only writer of
//! the database.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use shared::Shutdown;

use crate::db::{self, NewEntry};
use crate::discovery;
use crate::tail::Hub;
use crate::tailer::{Cursor, Tail};

/// Bytes read from one container per poll at most (bounds memory; the next poll follows at
/// once when a container had more). A batch holds the bytes, the parsed entries and their
/// copies for the live tails, so peak RSS grows with it — per busy container. In
/// `bench-log-viewer`, 512 KiB (~2,000 lines per transaction) peaked at 12.7 MiB against
/// 17.0 MiB for 1 MiB and 29.6 MiB for 4 MiB, for ~10% more CPU per line than 1 MiB.
const READ_BUDGET: usize = 512 * 1024;
/// Caps are checked every this many polls.
const CAP_CHECK_EVERY: u64 = 10;
/// Deleted entries after which the search index is compacted (at least; also half of
/// `MAX_ENTRIES`). FTS5 keeps a deleted entry's postings until its segments merge, so without
/// it the file grows to many times the live data under a busy cap (measured: 100 k live
/// entries in 198 MB; 11 MB after an optimize of 2.7 s).
const OPTIMIZE_AFTER_DELETES: u64 = 10_000;

/// What the ingestion thread needs to know.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub log_sources: PathBuf,
    pub containers: Vec<String>,
    pub poll_interval: Duration,
    pub rescan_interval: Duration,
    pub tail_buffer: u64,
    pub max_entries: u64,
    pub max_age_days: u32,
}

/// What the ingestion thread reports to `/health` and `/api/containers`.
#[derive(Debug, Default)]
pub struct IngestStatus {
    /// Time of the last successful poll, epoch ms; 0 before the first.
    pub last_ingest_ms: AtomicI64,
    /// Polls done since start.
    pub polls: AtomicU64,
    /// Names of the containers being followed.
    pub watched: Mutex<Vec<String>>,
    /// Times the search index was compacted after deletions.
    pub compactions: AtomicU64,
    /// What the last scan of `LOG_SOURCES` met: `None` before the first, `Some(Err(why))`
    /// when the directory could not be read (missing, not a directory, no permission).
    pub sources: Mutex<Option<Result<(), String>>>,
}

impl IngestStatus {
    /// The followed container names.
    pub fn watched(&self) -> Vec<String> {
        self.watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// What the last scan of `LOG_SOURCES` met (see [`IngestStatus::sources`]).
    pub fn sources(&self) -> Option<Result<(), String>> {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_sources(&self, scanned: Result<(), String>) {
        *self.sources.lock().unwrap_or_else(|p| p.into_inner()) = Some(scanned);
    }
}

/// Starts the ingestion thread; it flushes pending entries and stops on shutdown.
pub fn spawn(
    config: IngestConfig,
    conn: Connection,
    hub: Arc<Hub>,
    status: Arc<IngestStatus>,
    shutdown: Shutdown,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("ingest".to_string())
        .spawn(move || Ingest::new(config, conn, hub, status).run(&shutdown))
}

struct Ingest {
    config: IngestConfig,
    conn: Connection,
    hub: Arc<Hub>,
    status: Arc<IngestStatus>,
    /// Followed containers by id.
    tails: BTreeMap<String, Tail>,
    /// The cursor last stored per container id.
    saved: BTreeMap<String, Cursor>,
    /// Entries whose commit failed: stored first by the next commit, and no new line is read
    /// before it succeeds. The cursors never go to the database without them.
    unsaved: Vec<NewEntry>,
    /// Cursors of containers no longer followed, whose commit failed (with `unsaved`).
    unsaved_cursors: Vec<(String, Cursor)>,
    /// Commits failed in a row (the first is logged as an error, the rest at debug level).
    failed_commits: u64,
    first_scan: bool,
    /// Entries deleted by the caps since the search index was last compacted.
    deleted_since_optimize: u64,
    last_scan: Option<Instant>,
    sources_error_logged: bool,
}

impl Ingest {
    fn new(
        config: IngestConfig,
        conn: Connection,
        hub: Arc<Hub>,
        status: Arc<IngestStatus>,
    ) -> Ingest {
        Ingest {
            config,
            conn,
            hub,
            status,
            tails: BTreeMap::new(),
            saved: BTreeMap::new(),
            unsaved: Vec::new(),
            unsaved_cursors: Vec::new(),
            failed_commits: 0,
            first_scan: true,
            deleted_since_optimize: 0,
            last_scan: None,
            sources_error_logged: false,
        }
    }

    fn run(&mut self, shutdown: &Shutdown) {
        let mut polls: u64 = 0;
        while !shutdown.is_set() {
            shared::health::fault_point("ingest");
            if self
                .last_scan
                .is_none_or(|t| t.elapsed() >= self.config.rescan_interval)
            {
                self.rescan();
            }
            let (more, stored) = self.poll_once();
            polls += 1;
            if polls.is_multiple_of(CAP_CHECK_EVERY) {
                self.enforce_caps();
            }
            if !more && stored == 0 {
                self.optimize_if_worthwhile();
            }
            if !more && !shutdown.sleep(self.config.poll_interval) {
                break;
            }
        }
        self.finish();
        log::info!("ingestion stopped");
    }

    /// At shutdown: stores what is complete (and any batch whose commit failed). Entries still
    /// being assembled are not stored: the saved cursors point at their first line, so the
    /// next start re-reads and completes them (a line in 16 KiB pieces or a traceback is never
    /// split by a restart). If the commit fails, the saved cursors stay where they were, so
    /// the next start reads those lines again.
    fn finish(&mut self) {
        let waiting = self.unsaved.len();
        if !self.store(Vec::new()) {
            log::error!(
                "stopping with {waiting} log entries not stored; the saved read positions were not advanced past them, so the next start reads them again"
            );
        }
    }

    /// Follows new containers, forgets removed ones, keeps renamed ones' cursors.
    fn rescan(&mut self) {
        self.last_scan = Some(Instant::now());
        let found = match discovery::scan(&self.config.log_sources, &self.config.containers) {
            Ok(found) => {
                self.sources_error_logged = false;
                self.status.set_sources(Ok(()));
                found
            }
            Err(e) => {
                self.status.set_sources(Err(e.to_string()));
                if !self.sources_error_logged {
                    log::warn!(
                        "cannot read LOG_SOURCES {}: {e} (retrying every rescan)",
                        self.config.log_sources.display()
                    );
                    self.sources_error_logged = true;
                }
                self.first_scan = false;
                return;
            }
        };
        let tail_buffer = self.first_scan.then_some(self.config.tail_buffer);
        self.first_scan = false;
        let ids: Vec<&str> = found.iter().map(|c| c.id.as_str()).collect();
        let removed: Vec<String> = self
            .tails
            .keys()
            .filter(|id| !ids.contains(&id.as_str()))
            .cloned()
            .collect();
        for id in removed {
            let Some(mut tail) = self.tails.remove(&id) else {
                continue;
            };
            log::info!("container {} is gone; no longer following it", tail.name);
            let rest = tail
                .flush()
                .into_iter()
                .map(|(s, e)| new_entry(&tail.name, s, e))
                .collect();
            let cursor = tail.cursor();
            if cursor.inode != 0 && self.saved.get(&id) != Some(&cursor) {
                self.unsaved_cursors.push((id, cursor));
            }
            self.store(rest);
        }
        for container in found {
            if let Some(tail) = self.tails.get_mut(&container.id) {
                if tail.name != container.name {
                    log::info!("container {} is now named {}", tail.name, container.name);
                    tail.name = container.name;
                }
                continue;
            }
            // Back before its last entries were committed: go on from the cursor that
            // covers them (they are stored with it), not from the database's.
            let pending = self
                .unsaved_cursors
                .iter()
                .position(|(id, _)| *id == container.id)
                .map(|i| self.unsaved_cursors.remove(i).1);
            let saved = match pending {
                Some(cursor) => Some(cursor),
                None => match db::load_cursor(&self.conn, &container.id) {
                    Ok(Some(cursor)) => {
                        self.saved.insert(container.id.clone(), cursor);
                        Some(cursor)
                    }
                    Ok(None) => None,
                    Err(e) => {
                        log::error!("cannot load the cursor of {}: {e}", container.name);
                        continue;
                    }
                },
            };
            log::info!(
                "following container {} ({})",
                container.name,
                container.log_path.display()
            );
            let tail = Tail::new(
                container.id.clone(),
                container.name,
                container.log_path,
                saved,
                tail_buffer,
            );
            self.tails.insert(container.id, tail);
        }
        let names = self.tails.values().map(|t| t.name.clone()).collect();
        *self
            .status
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = names;
    }

    /// Reads every container once and stores what completed. Returns whether a container
    /// has more to read right away, and how many entries were stored.
    fn poll_once(&mut self) -> (bool, usize) {
        let retry = !self.unsaved.is_empty() || !self.unsaved_cursors.is_empty();
        if retry && !self.store(Vec::new()) {
            return (false, 0);
        }
        let now = Instant::now();
        let mut batch = Vec::new();
        let mut more = false;
        for tail in self.tails.values_mut() {
            match tail.poll(READ_BUDGET, now) {
                Ok(polled) => {
                    more |= polled.more;
                    batch.extend(
                        polled
                            .entries
                            .into_iter()
                            .map(|(s, e)| new_entry(&tail.name, s, e)),
                    );
                }
                Err(e) => log::warn!("cannot read the log of {}: {e}", tail.name),
            }
        }
        let count = batch.len();
        if self.store(batch) {
            self.status
                .last_ingest_ms
                .store(shared::time::now_ms(), Ordering::SeqCst);
        }
        self.status.polls.fetch_add(1, Ordering::SeqCst);
        (more, count)
    }

    /// Stores entries (after any whose commit failed) with the cursors that changed, in one
    /// transaction; on failure keeps them all for the next commit. The cursors cover every
    /// entry read so far that is complete, so they are only ever stored together with them.
    fn store(&mut self, batch: Vec<NewEntry>) -> bool {
        let mut entries = std::mem::take(&mut self.unsaved);
        entries.extend(batch);
        // Each commit inserts its entries sorted by time, so ids follow time.
        entries.sort_by_key(|e| e.time_ms);
        let mut cursors = std::mem::take(&mut self.unsaved_cursors);
        cursors.extend(
            self.tails
                .iter()
                .map(|(id, tail)| (id.clone(), tail.cursor()))
                .filter(|(id, cursor)| self.saved.get(id) != Some(cursor) && cursor.inode != 0),
        );
        if entries.is_empty() && cursors.is_empty() {
            return true;
        }
        match db::store_batch(&mut self.conn, &entries, &cursors) {
            Ok(stored) => {
                if self.failed_commits > 0 {
                    log::info!(
                        "stored {} log entries after {} failed attempts",
                        stored.len(),
                        self.failed_commits
                    );
                    self.failed_commits = 0;
                }
                self.saved.extend(cursors);
                self.hub.publish(&stored);
                true
            }
            Err(e) => {
                self.failed_commits += 1;
                let level = if self.failed_commits == 1 {
                    log::Level::Error
                } else {
                    log::Level::Debug
                };
                let containers: Vec<&str> = cursors
                    .iter()
                    .map(|(id, _)| self.tails.get(id).map_or(id.as_str(), |t| t.name.as_str()))
                    .collect();
                log::log!(
                    level,
                    "cannot store {} log entries with the read positions of {} ({e}); no further line is read until they are stored (retrying every poll)",
                    entries.len(),
                    containers.join(", ")
                );
                self.unsaved = entries;
                self.unsaved_cursors.extend(
                    cursors
                        .into_iter()
                        .filter(|(id, _)| !self.tails.contains_key(id)),
                );
                false
            }
        }
    }

    fn enforce_caps(&mut self) {
        let cutoff = (self.config.max_age_days > 0)
            .then(|| shared::time::now_ms() - i64::from(self.config.max_age_days) * 86_400_000);
        match db::enforce_caps(&mut self.conn, self.config.max_entries, cutoff) {
            Ok(0) => {}
            Ok(n) => {
                log::debug!("deleted {n} old log entries");
                self.deleted_since_optimize += n;
            }
            Err(e) => log::error!("cannot enforce MAX_ENTRIES/MAX_AGE_DAYS: {e}"),
        }
    }

    /// Compacts the search index when many entries were deleted and no line is waiting (it
    /// takes seconds at 100 k entries; new lines are read right after).
    fn optimize_if_worthwhile(&mut self) {
        let threshold = OPTIMIZE_AFTER_DELETES.max(self.config.max_entries / 2);
        if self.deleted_since_optimize < threshold {
            return;
        }
        let started = Instant::now();
        match db::optimize_search_index(&self.conn) {
            Ok(()) => {
                log::info!(
                    "compacted the search index after {} deletions in {:.1} s",
                    self.deleted_since_optimize,
                    started.elapsed().as_secs_f64()
                );
                self.deleted_since_optimize = 0;
                self.status.compactions.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => log::error!("cannot compact the search index: {e}"),
        }
    }
}

fn new_entry(
    container: &str,
    stream: crate::dockerlog::Stream,
    entry: crate::multiline::Entry,
) -> NewEntry {
    NewEntry {
        time_ms: entry.time_ms,
        container: container.to_string(),
        stream: stream.as_str(),
        level: entry.level,
        message: entry.message,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A container directory under `root` with an empty log; returns the log's path.
    fn add_container(root: &Path, id: &str) -> PathBuf {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let config = serde_json::json!({"ID": id, "Name": format!("/{id}")});
        std::fs::write(dir.join("config.v2.json"), config.to_string()).unwrap();
        let log = dir.join(format!("{id}-json.log"));
        std::fs::write(&log, "").unwrap();
        log
    }

    /// Appends stdout lines in Docker's format; each is a few KiB, so a commit of them needs
    /// new database pages.
    fn append(log: &Path, texts: &[&str]) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
        for text in texts {
            let line = format!("{text} {}\n", "p".repeat(4000));
            let record = serde_json::json!({"log": line, "stream": "stdout", "time": "2026-01-20T10:00:00.000000000Z"});
            writeln!(file, "{record}").unwrap();
        }
    }

    fn open(db: &Path) -> Connection {
        let mut conn = shared::db::open(db, db::SCHEMA.write_cache_kib).unwrap();
        shared::db::migrate(&mut conn, db::MIGRATIONS).unwrap();
        conn
    }

    fn ingest(sources: &Path, conn: Connection) -> Ingest {
        let config = IngestConfig {
            log_sources: sources.to_path_buf(),
            containers: Vec::new(),
            poll_interval: Duration::from_millis(100),
            rescan_interval: Duration::from_millis(100),
            tail_buffer: u64::MAX,
            max_entries: 100_000,
            max_age_days: 0,
        };
        let hub = Arc::new(Hub::new(1));
        Ingest::new(config, conn, hub, Arc::new(IngestStatus::default()))
    }

    /// Every database write from now on that needs a new page fails with SQLITE_FULL (as on
    /// a full disk); `false` lifts it.
    fn disk_full(conn: &Connection, full: bool) {
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        let limit = if full { pages } else { 1 << 30 };
        conn.query_row(&format!("PRAGMA max_page_count = {limit}"), [], |_| Ok(()))
            .unwrap();
    }

    /// The first word of every stored message, sorted (entries with one timestamp may be
    /// stored in any order).
    fn stored(db: &Path) -> Vec<String> {
        let conn = Connection::open(db).unwrap();
        let mut select = conn
            .prepare("SELECT message FROM logs ORDER BY id")
            .unwrap();
        let rows = select.query_map([], |row| row.get::<_, String>(0)).unwrap();
        let mut words: Vec<String> = rows
            .map(|m| m.unwrap().split(' ').next().unwrap_or("").to_string())
            .collect();
        words.sort();
        words
    }

    /// Polls until `want` is stored (the last entry of each stream closes after the idle
    /// second), for at most 10 s.
    fn poll_until_stored(ingest: &mut Ingest, db: &Path, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            ingest.poll_once();
            let got = stored(db);
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "stored {got:?}, want {want:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn saved_cursor(db: &Path, id: &str) -> Option<Cursor> {
        db::load_cursor(&Connection::open(db).unwrap(), id).unwrap()
    }

    #[test]
    fn a_failed_commit_is_retried_and_every_line_is_stored_once_even_across_a_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let sources = dir.path().join("containers");
        let db = dir.path().join("logs.db");
        let a = add_container(&sources, "a");
        let b = add_container(&sources, "b");
        let mut ingest = ingest(&sources, open(&db));
        ingest.rescan();
        append(&a, &["a1", "a2"]);
        append(&b, &["b1", "b2"]);
        disk_full(&ingest.conn, true);
        ingest.poll_once();
        assert!(stored(&db).is_empty());
        assert_eq!(
            saved_cursor(&db, "a"),
            None,
            "no cursor without its entries"
        );
        // More lines wait: nothing is read while the failed batch is not stored.
        append(&a, &["a3"]);
        ingest.poll_once();
        // b goes away while its lines are unsaved: its last entry and cursor wait too.
        std::fs::remove_dir_all(sources.join("b")).unwrap();
        ingest.rescan();
        assert!(stored(&db).is_empty());
        assert_eq!(saved_cursor(&db, "a"), None);
        assert_eq!(saved_cursor(&db, "b"), None);

        disk_full(&ingest.conn, false);
        poll_until_stored(&mut ingest, &db, &["a1", "a2", "a3", "b1", "b2"]);
        assert!(saved_cursor(&db, "b").is_some());
        ingest.poll_once();
        assert_eq!(stored(&db), ["a1", "a2", "a3", "b1", "b2"], "stored once");
    }

    #[test]
    fn lines_unsaved_at_shutdown_are_read_again_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let sources = dir.path().join("containers");
        let db = dir.path().join("logs.db");
        let a = add_container(&sources, "a");
        let mut first = ingest(&sources, open(&db));
        first.rescan();
        append(&a, &["a1"]);
        poll_until_stored(&mut first, &db, &["a1"]);
        let before = saved_cursor(&db, "a");
        append(&a, &["a2", "a3"]);
        disk_full(&first.conn, true);
        first.poll_once();
        first.finish();
        drop(first);
        assert_eq!(stored(&db), ["a1"]);
        assert_eq!(
            saved_cursor(&db, "a"),
            before,
            "the cursor stayed before a2"
        );

        let mut second = ingest(&sources, open(&db));
        second.rescan();
        poll_until_stored(&mut second, &db, &["a1", "a2", "a3"]);
        second.finish();
        assert_eq!(stored(&db), ["a1", "a2", "a3"]);
    }
}
