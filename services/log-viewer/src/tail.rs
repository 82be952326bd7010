//! The live tail: the ingestion thread pushes each stored batch to subscribers through
//! bounded channels; each subscriber's Server-Sent Events stream runs on its connection's
//! own thread (never on a request worker). A subscriber whose queue is full — by entries or by
//! bytes — is dropped rather than buffered without bound; a subscription forgets itself from
//! the hub as soon as its stream ends.

pub mod fold;

use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::http::{StreamFn, StreamWriter};
use shared::Shutdown;

use crate::db::{EntryPreview, LevelFilter, LogEntry};

/// Entries waiting for one slow subscriber at most.
const SUBSCRIBER_QUEUE: usize = 2048;
/// Bytes of entries (previews, see [`EntryPreview::size`]) waiting for one subscriber at most:
/// about 450 cut 2 KiB messages, or a whole poll's batch of ordinary lines.
const SUBSCRIBER_BYTES: usize = 1024 * 1024;
/// A heartbeat after this long without an event.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A stream ends with `event: close` after this long.
const MAX_STREAM_AGE: Duration = Duration::from_secs(30 * 60);

/// What a tail wants to see.
#[derive(Debug, Clone, Default)]
pub struct TailFilter {
    pub containers: Vec<String>,
    pub level: Option<LevelFilter>,
    /// A substring, folded with [`fold::fold`] (as search folds words: `É` finds `é` and `e`).
    pub substring: Option<String>,
}

impl TailFilter {
    /// Whether `entry` passes the filter.
    pub fn matches(&self, entry: &LogEntry) -> bool {
        let container_ok = self.containers.is_empty() || self.containers.contains(&entry.container);
        let level_ok = match self.level {
            None => true,
            Some(LevelFilter::Exactly(level)) => entry.level == level,
            Some(LevelFilter::AtLeast(level)) => entry.level >= level,
        };
        let text_ok = self
            .substring
            .as_ref()
            .is_none_or(|s| fold::fold(&entry.message).contains(s.as_str()));
        container_ok && level_ok && text_ok
    }
}

struct Subscriber {
    id: u64,
    filter: TailFilter,
    queue: SyncSender<Arc<EntryPreview>>,
    /// Bytes sent on `queue` and not yet taken by the stream.
    queued_bytes: Arc<AtomicUsize>,
}

type Subscribers = Arc<Mutex<Vec<Subscriber>>>;

/// The live tail subscribers.
pub struct Hub {
    subscribers: Subscribers,
    open: Arc<AtomicUsize>,
    next_id: AtomicU64,
    max_streams: usize,
}

/// A subscription: entries arrive through [`Subscription::next`]; dropping it frees its
/// stream slot and removes it from the hub at once.
pub struct Subscription {
    id: u64,
    entries: Receiver<Arc<EntryPreview>>,
    queued_bytes: Arc<AtomicUsize>,
    subscribers: Subscribers,
    open: Arc<AtomicUsize>,
}

impl Subscription {
    /// The next entry, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Result<Arc<EntryPreview>, RecvTimeoutError> {
        let entry = self.entries.recv_timeout(timeout)?;
        self.queued_bytes.fetch_sub(entry.size(), Ordering::SeqCst);
        Ok(entry)
    }

    /// The next entry if one is queued already.
    pub fn next_queued(&self) -> Option<Arc<EntryPreview>> {
        let entry = self.entries.try_recv().ok()?;
        self.queued_bytes.fetch_sub(entry.size(), Ordering::SeqCst);
        Some(entry)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| s.id != self.id);
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hub {
    /// A hub allowing `max_streams` subscribers at once.
    pub fn new(max_streams: usize) -> Hub {
        Hub {
            subscribers: Arc::new(Mutex::new(Vec::new())),
            open: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicU64::new(0),
            max_streams,
        }
    }

    /// Live tails open now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Subscribes, or `None` when `max_streams` are open already.
    pub fn subscribe(&self, filter: TailFilter) -> Option<Subscription> {
        let taken = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max_streams).then_some(n + 1)
            });
        if taken.is_err() {
            return None;
        }
        let (queue, entries) = mpsc::sync_channel(SUBSCRIBER_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        self.subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Subscriber {
                id,
                filter,
                queue,
                queued_bytes: Arc::clone(&queued_bytes),
            });
        Some(Subscription {
            id,
            entries,
            queued_bytes,
            subscribers: Arc::clone(&self.subscribers),
            open: Arc::clone(&self.open),
        })
    }

    /// Sends newly stored entries to every subscriber whose filter they pass (the filter sees
    /// the whole message; the queues hold previews, cut like a list page's).
    pub fn publish(&self, entries: &[LogEntry]) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        if subscribers.is_empty() {
            return;
        }
        let previews: Vec<Arc<EntryPreview>> = entries
            .iter()
            .map(|e| Arc::new(EntryPreview::of(e)))
            .collect();
        subscribers.retain(|subscriber| {
            let matching = entries
                .iter()
                .zip(&previews)
                .filter(|(entry, _)| subscriber.filter.matches(entry));
            for (_, preview) in matching {
                // Counted before sending: the stream may take it (and subtract) at once.
                let size = preview.size();
                let queued = subscriber.queued_bytes.fetch_add(size, Ordering::SeqCst) + size;
                if queued > SUBSCRIBER_BYTES {
                    log::warn!(
                        "dropping a live tail that cannot keep up ({queued} bytes waiting for it)"
                    );
                    return false;
                }
                match subscriber.queue.try_send(Arc::clone(preview)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        log::warn!(
                            "dropping a live tail that cannot keep up ({SUBSCRIBER_QUEUE} entries waiting for it)"
                        );
                        return false;
                    }
                    Err(TrySendError::Disconnected(_)) => return false,
                }
            }
            true
        });
    }
}

/// The SSE body: replayed entries first, then live ones, heartbeats, and `event: close` after
/// 30 minutes. Ends when the client goes away (noticed within half a second, so its stream
/// slot frees), the hub drops it, or on shutdown.
pub fn event_stream(
    subscription: Subscription,
    replay: Vec<EntryPreview>,
    shutdown: Shutdown,
) -> StreamFn {
    Box::new(move |out: &mut StreamWriter| {
        let started = Instant::now();
        // Entries go out in ingest order: `seq` both dedupes (the replay and the live queue
        // may overlap) and is the `id:` a reconnecting client sends back.
        let mut last_seq = 0;
        out.write_all(b"retry: 3000\n: connected\n\n")?;
        for entry in &replay {
            write_entry(out, entry)?;
            last_seq = entry.seq;
        }
        out.flush()?;
        let mut last_write = Instant::now();
        loop {
            if shutdown.is_set() || out.client_gone() {
                return Ok(());
            }
            if started.elapsed() >= MAX_STREAM_AGE {
                out.write_all(b"event: close\ndata: {}\n\n")?;
                return out.flush();
            }
            match subscription.next(Duration::from_millis(500)) {
                Ok(entry) if entry.seq > last_seq => {
                    write_entry(out, &entry)?;
                    last_seq = entry.seq;
                    // Send what is queued right away, then flush once.
                    while let Some(more) = subscription.next_queued() {
                        if more.seq > last_seq {
                            write_entry(out, &more)?;
                            last_seq = more.seq;
                        }
                    }
                    out.flush()?;
                    last_write = Instant::now();
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if last_write.elapsed() >= HEARTBEAT {
                        write!(
                            out,
                            "event: heartbeat\ndata: {{\"time\":\"{}\"}}\n\n",
                            shared::time::format_ms(shared::time::now_ms())
                        )?;
                        out.flush()?;
                        last_write = Instant::now();
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    })
}

fn write_entry(out: &mut dyn Write, entry: &EntryPreview) -> std::io::Result<()> {
    let data = serde_json::to_string(entry).map_err(std::io::Error::other)?;
    write!(out, "id: {}\nevent: log\ndata: {data}\n\n", entry.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::PREVIEW_BYTES;
    use crate::level::Level;

    fn entry(id: i64, container: &str, level: Level, message: &str) -> LogEntry {
        LogEntry {
            id,
            seq: id,
            timestamp: "2026-01-01T00:00:00Z".into(),
            container: container.into(),
            stream: "stdout".into(),
            level,
            message: message.into(),
        }
    }

    #[test]
    fn filters() {
        let filter = TailFilter {
            containers: vec!["web".into()],
            level: Some(LevelFilter::AtLeast(Level::Warning)),
            substring: Some("disk".into()),
        };
        assert!(filter.matches(&entry(1, "web", Level::Error, "Disk full")));
        assert!(!filter.matches(&entry(1, "db", Level::Error, "Disk full")));
        assert!(!filter.matches(&entry(1, "web", Level::Info, "Disk full")));
        assert!(!filter.matches(&entry(1, "web", Level::Error, "cpu")));
    }

    #[test]
    fn stream_slots_are_bounded_and_freed() {
        let hub = Hub::new(1);
        let first = hub.subscribe(TailFilter::default()).unwrap();
        assert!(hub.subscribe(TailFilter::default()).is_none());
        drop(first);
        assert!(hub.subscribe(TailFilter::default()).is_some());
    }

    fn subscribers(hub: &Hub) -> usize {
        hub.subscribers.lock().unwrap().len()
    }

    #[test]
    fn a_closed_subscription_is_forgotten_by_the_hub_at_once() {
        let hub = Hub::new(2);
        let first = hub.subscribe(TailFilter::default()).unwrap();
        let second = hub.subscribe(TailFilter::default()).unwrap();
        assert_eq!(subscribers(&hub), 2);
        // No line is published in between: dropping alone removes it.
        drop(first);
        assert_eq!(subscribers(&hub), 1);
        assert_eq!(hub.open_streams(), 1);
        hub.publish(&[entry(1, "web", Level::Info, "to the second")]);
        let got = second.next_queued().expect("the second still receives");
        assert_eq!(got.message, "to the second");
    }

    #[test]
    fn a_subscriber_over_its_byte_budget_is_dropped_before_its_entry_count_cap() {
        let hub = Hub::new(1);
        let slow = hub.subscribe(TailFilter::default()).unwrap();
        let big = "b".repeat(64 * 1024);
        let count = SUBSCRIBER_BYTES / 2048 + 10;
        assert!(count < SUBSCRIBER_QUEUE);
        let batch: Vec<LogEntry> = (0..count as i64)
            .map(|i| entry(i, "web", Level::Info, &big))
            .collect();
        hub.publish(&batch);
        assert_eq!(subscribers(&hub), 0, "dropped by bytes");
        let mut queued = 0;
        let mut received = 0;
        while let Some(preview) = slow.next_queued() {
            assert!(
                preview.truncated,
                "queues hold previews, not whole messages"
            );
            queued += preview.size();
            received += 1;
        }
        assert!(received < count, "{received} of {count} queued");
        assert!(queued <= SUBSCRIBER_BYTES, "{queued} bytes queued");
    }

    #[test]
    fn a_subscriber_that_keeps_up_stays_past_its_byte_budget() {
        let hub = Hub::new(1);
        let fast = hub.subscribe(TailFilter::default()).unwrap();
        let text = "f".repeat(PREVIEW_BYTES);
        let mut received = 0;
        for round in 0..6 {
            let batch: Vec<LogEntry> = (0..SUBSCRIBER_BYTES / 2 / PREVIEW_BYTES)
                .map(|i| entry((round * 10_000 + i) as i64, "web", Level::Info, &text))
                .collect();
            hub.publish(&batch);
            while fast.next_queued().is_some() {
                received += 1;
            }
        }
        assert_eq!(subscribers(&hub), 1, "still subscribed");
        assert!(received * PREVIEW_BYTES > 2 * SUBSCRIBER_BYTES);
        assert_eq!(fast.queued_bytes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_slow_subscriber_is_dropped() {
        let hub = Hub::new(2);
        let slow = hub.subscribe(TailFilter::default()).unwrap();
        let batch: Vec<LogEntry> = (0..SUBSCRIBER_QUEUE as i64 + 1)
            .map(|i| entry(i, "web", Level::Info, "x"))
            .collect();
        hub.publish(&batch);
        assert!(hub.subscribers.lock().unwrap().is_empty());
        // It still gets what was queued, then sees the end.
        assert_eq!(slow.entries.iter().count(), SUBSCRIBER_QUEUE);
    }
}
