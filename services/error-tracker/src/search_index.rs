//! The search-index thread: once a second, asks the writer to move the groups waiting
//! in `search_pending` into the FTS5 search index, in one batch. FTS5 writes a new segment
//! per transaction, so indexing each new group in its report's own transaction cost a third
//! of the report throughput; batched, it costs next to nothing. Search scans the pending
//! groups too, so nothing is ever unfindable in between.

use std::thread::{self, JoinHandle};
use std::time::Duration;

use shared::writer::Writer;
use shared::Shutdown;

use crate::db::{self, Job, Outcome};

/// How often pending groups are indexed (250 ms measured slightly slower: more, smaller
/// batches; at 5,000 new groups a second a second's worth is a small table to scan).
const INTERVAL: Duration = Duration::from_millis(1000);

/// Starts the thread; it ends within ~100 ms of shutdown (pending groups stay pending and
/// are indexed after the next start).
pub fn spawn(writer: Writer<Job, Outcome>, shutdown: Shutdown) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("search-index".to_string())
        .spawn(move || {
            let mut more = false;
            // A full batch means more are waiting: go on at once (each batch is its own
            // write, so reports interleave), else rest until the next round.
            while more || shutdown.sleep(INTERVAL) {
                if shutdown.is_set() {
                    return;
                }
                shared::health::fault_point("search-index");
                more = match writer.submit(Job::IndexPending) {
                    Ok(Outcome::Indexed(n)) => {
                        if n > 0 {
                            log::debug!("search index: {n} new groups");
                        }
                        n >= db::INDEX_BATCH
                    }
                    Ok(other) => {
                        log::error!("search indexing got an unexpected outcome {other:?}");
                        false
                    }
                    Err(e) => {
                        log::warn!("search indexing failed (will retry): {e:?}");
                        false
                    }
                };
            }
        })
}
