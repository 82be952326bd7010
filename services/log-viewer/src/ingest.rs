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
}

impl IngestStatus {
    /// The followed container names.
    pub fn watched(&self) -> Vec<String> {
        self.watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
        .spawn(move || {
            let mut ingest = Ingest {
                config,
                conn,
                hub,
                status,
                tails: BTreeMap::new(),
                saved: BTreeMap::new(),
                unsaved: None,
                first_scan: true,
                deleted_since_optimize: 0,
                last_scan: None,
                sources_error_logged: false,
            };
            ingest.run(&shutdown);
        })
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
    /// A batch whose commit failed, retried before reading more.
    unsaved: Option<Vec<NewEntry>>,
    first_scan: bool,
    /// Entries deleted by the caps since the search index was last compacted.
    deleted_since_optimize: u64,
    last_scan: Option<Instant>,
    sources_error_logged: bool,
}

impl Ingest {
    fn run(&mut self, shutdown: &Shutdown) {
        let mut polls: u64 = 0;
        while !shutdown.is_set() {
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
        // Entries still being assembled are not stored: the saved cursors point at their
        // first line, so the next start re-reads and completes them (a line in 16 KiB pieces
        // or a traceback is never split by a restart).
        self.store(Vec::new());
        log::info!("ingestion stopped");
    }

    /// Follows new containers, forgets removed ones, keeps renamed ones' cursors.
    fn rescan(&mut self) {
        self.last_scan = Some(Instant::now());
        let found = match discovery::scan(&self.config.log_sources, &self.config.containers) {
            Ok(found) => {
                self.sources_error_logged = false;
                found
            }
            Err(e) => {
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
            let Some(tail) = self.tails.get_mut(&id) else {
                continue;
            };
            log::info!("container {} is gone; no longer following it", tail.name);
            let name = tail.name.clone();
            let rest = tail
                .flush()
                .into_iter()
                .map(|(s, e)| new_entry(&name, s, e))
                .collect();
            self.store(rest);
            self.tails.remove(&id);
        }
        for container in found {
            if let Some(tail) = self.tails.get_mut(&container.id) {
                if tail.name != container.name {
                    log::info!("container {} is now named {}", tail.name, container.name);
                    tail.name = container.name;
                }
                continue;
            }
            let saved = match db::load_cursor(&self.conn, &container.id) {
                Ok(saved) => saved,
                Err(e) => {
                    log::error!("cannot load the cursor of {}: {e}", container.name);
                    continue;
                }
            };
            log::info!(
                "following container {} ({})",
                container.name,
                container.log_path.display()
            );
            if let Some(cursor) = saved {
                self.saved.insert(container.id.clone(), cursor);
            }
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
        if let Some(batch) = self.unsaved.take() {
            if !self.store(batch) {
                return (false, 0);
            }
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
        // Each poll inserts its batch sorted by time, so ids follow time.
        batch.sort_by_key(|e| e.time_ms);
        let count = batch.len();
        if self.store(batch) {
            self.status
                .last_ingest_ms
                .store(shared::time::now_ms(), Ordering::SeqCst);
        }
        self.status.polls.fetch_add(1, Ordering::SeqCst);
        (more, count)
    }

    /// Stores entries with the cursors that changed; on failure keeps them for a retry.
    fn store(&mut self, batch: Vec<NewEntry>) -> bool {
        let cursors: Vec<(String, Cursor)> = self
            .tails
            .iter()
            .map(|(id, tail)| (id.clone(), tail.cursor()))
            .filter(|(id, cursor)| self.saved.get(id) != Some(cursor) && cursor.inode != 0)
            .collect();
        if batch.is_empty() && cursors.is_empty() {
            return true;
        }
        match db::store_batch(&mut self.conn, &batch, &cursors) {
            Ok(stored) => {
                self.saved.extend(cursors);
                self.hub.publish(&stored);
                true
            }
            Err(e) => {
                log::error!("cannot store {} log entries (will retry): {e}", batch.len());
                self.unsaved = Some(batch);
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
