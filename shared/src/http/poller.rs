//! The poller: one thread that accepts connections and holds every connection that is
//! waiting for a request — new ones, idle keep-alive ones, ones whose head is still arriving
//! — without a thread each (`poll(2)` over all of them). A connection is handed to a request
//! thread only once a complete head is buffered, and comes back here when it goes idle.
//! So a thousand slow or silent clients cost a thousand small buffers, not a thousand
//! threads, a head that trickles in a byte at a time meets a deadline that those bytes do
//! not reset, and at `MAX_CONNECTIONS` the stalest waiting connection makes room for a new
//! one.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{parse_head, HEAD_FREE, MAX_HEAD};
use crate::shutdown::Shutdown;

/// How long one `poll` waits at most, so timeouts and shutdown are seen promptly.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// Connections that may buffer a large head (over `HEAD_FREE` bytes) at once: with the rest
/// capped at `HEAD_FREE`, all waiting heads together stay within about
/// `MAX_CONNECTIONS × HEAD_FREE + LARGE_HEADS × MAX_HEAD` (2 MiB + 1 MiB by default).
const LARGE_HEADS: usize = 64;
/// At `MAX_CONNECTIONS`, a waiting connection can be closed to make room once it has waited
/// this long (a client that just connected gets the time to send its request).
const EVICT_AFTER: Duration = Duration::from_secs(1);
/// At shutdown, how long heads that are still arriving may take to complete.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// After `accept` fails (e.g. `EMFILE`), the listener rests this long before the next try.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// An open client connection, counted as open for as long as it lives.
pub(crate) struct Client {
    /// The socket (blocking, with read and write timeouts).
    pub stream: TcpStream,
    /// The peer's address.
    pub peer: SocketAddr,
    _open: OpenCount,
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

/// Counts a connection as open until it is dropped (also through a panic).
struct OpenCount(Arc<AtomicUsize>);

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How a request thread gives an idle connection (and any bytes of its next request) back.
#[derive(Clone)]
pub(crate) struct GiveBack {
    connections: Sender<(Client, Vec<u8>)>,
    wake: Arc<UnixStream>,
}

impl GiveBack {
    /// Hands `client` back to the poller; after shutdown it is simply closed.
    pub fn give_back(&self, client: Client, buffered: Vec<u8>) {
        if self.connections.send((client, buffered)).is_ok() {
            // A full wake pipe already means "wake up".
            let _ = (&*self.wake).write(&[1]);
        }
    }
}

/// A connection waiting for a complete request head.
struct Waiting {
    client: Client,
    buf: Vec<u8>,
    /// Since when it has been silent (for the idle timeout).
    since: Instant,
    /// When the first byte of the head arrived (for the head deadline).
    head_started: Option<Instant>,
    /// Whether it holds one of the `LARGE_HEADS` places.
    large: bool,
}

impl Waiting {
    /// Since when it has been waiting for its request: when its head started arriving, or
    /// when it became idle (a trickling head does not make it look fresh).
    fn waiting_since(&self) -> Instant {
        self.head_started.unwrap_or(self.since)
    }

    fn new(client: Client, buf: Vec<u8>, now: Instant) -> Waiting {
        let head_started = (!buf.is_empty()).then_some(now);
        Waiting {
            client,
            buf,
            since: now,
            head_started,
            large: false,
        }
    }
}

/// The accepting, waiting half of the server.
pub(crate) struct Poller {
    listener: TcpListener,
    wake: UnixStream,
    returned: Receiver<(Client, Vec<u8>)>,
    waiting: Vec<Waiting>,
    large_heads: usize,
    open: Arc<AtomicUsize>,
    idle_timeout: Duration,
    max_connections: usize,
    shutdown: Shutdown,
}

/// What the poller does with a connection whose head is complete (or broken).
pub(crate) type Dispatch<'d> = dyn FnMut(Client, Vec<u8>) + 'd;

impl Poller {
    /// A poller for `listener`, and the handle request threads give connections back with.
    pub fn new(
        listener: TcpListener,
        idle_timeout: Duration,
        max_connections: usize,
        shutdown: Shutdown,
    ) -> io::Result<(Poller, GiveBack)> {
        listener.set_nonblocking(true)?;
        let (wake_read, wake_write) = UnixStream::pair()?;
        wake_read.set_nonblocking(true)?;
        wake_write.set_nonblocking(true)?;
        let (connections, returned) = mpsc::channel();
        let poller = Poller {
            listener,
            wake: wake_read,
            returned,
            waiting: Vec::new(),
            large_heads: 0,
            open: Arc::new(AtomicUsize::new(0)),
            idle_timeout,
            max_connections,
            shutdown,
        };
        let give_back = GiveBack {
            connections,
            wake: Arc::new(wake_write),
        };
        Ok((poller, give_back))
    }

    /// The number of open connections (waiting or being served).
    pub fn open_connections(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.open)
    }

    /// Accepts and waits until shutdown; then closes idle connections and lets heads that
    /// are arriving finish, for [`STOP_GRACE`] at most, before returning.
    pub fn run(mut self, dispatch: &mut Dispatch<'_>) {
        let mut accept_after = Instant::now();
        let mut stopping_since: Option<Instant> = None;
        loop {
            let stopping = self.shutdown.is_set();
            if stopping {
                let since = *stopping_since.get_or_insert_with(Instant::now);
                let heads_arriving = self.waiting.iter().any(|w| !w.buf.is_empty());
                if !heads_arriving || since.elapsed() >= STOP_GRACE {
                    break;
                }
            }
            self.take_returned();
            let listen = !stopping && Instant::now() >= accept_after;
            let mut fds = Vec::with_capacity(self.waiting.len() + 2);
            fds.push(pollfd(&self.wake));
            fds.push(pollfd(&self.listener));
            if !listen {
                fds[1].fd = -1;
            }
            fds.extend(self.waiting.iter().map(|w| pollfd(&w.client.stream)));
            // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
            let ready = unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    POLL_SLICE.as_millis() as libc::c_int,
                )
            };
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                log::error!("poll failed: {}", io::Error::last_os_error());
                std::thread::sleep(POLL_SLICE);
                continue;
            }
            if fds[0].revents != 0 {
                let mut drain = [0u8; 64];
                while matches!((&self.wake).read(&mut drain), Ok(n) if n > 0) {}
            }
            // Back to front, so `swap_remove` only moves entries already looked at.
            for i in (0..self.waiting.len()).rev() {
                if fds[i + 2].revents != 0 {
                    self.read_from(i, dispatch);
                }
            }
            self.expire(stopping);
            if listen && fds[1].revents != 0 && !self.accept_all(dispatch) {
                accept_after = Instant::now() + ACCEPT_BACKOFF;
            }
        }
        self.waiting.clear();
    }

    fn take_returned(&mut self) {
        let now = Instant::now();
        while let Ok((client, buf)) = self.returned.try_recv() {
            self.waiting.push(Waiting::new(client, buf, now));
        }
    }

    /// Accepts every pending connection; `false` when `accept` failed (to back off). A
    /// client usually sends its request right after connecting: what has already arrived is
    /// read at once, without waiting for the next `poll`.
    fn accept_all(&mut self, dispatch: &mut Dispatch<'_>) -> bool {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.admit(stream, peer) {
                        self.read_from(self.waiting.len() - 1, dispatch);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection waits in the backlog; try again
                    // shortly rather than dying.
                    log::warn!("accept failed: {e} (retrying)");
                    return false;
                }
            }
        }
    }

    /// Takes a new connection. At `MAX_CONNECTIONS`, the connection that has waited the
    /// longest for its request (idle, or its head still arriving) makes room, so stalled or
    /// idle clients cannot lock everyone else out; only when no connection has waited
    /// [`EVICT_AFTER`] (every one is busy with a request, or just arrived) is the new one
    /// refused with a `503`.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) -> bool {
        if self.open.load(Ordering::SeqCst) >= self.max_connections {
            let now = Instant::now();
            let stalest = (0..self.waiting.len())
                .filter(|&i| now.duration_since(self.waiting[i].waiting_since()) >= EVICT_AFTER)
                .min_by_key(|&i| self.waiting[i].waiting_since());
            match stalest {
                Some(i) => {
                    let evicted = self.remove(i);
                    log::debug!(
                        "at MAX_CONNECTIONS: closing {} (silent {:.1} s) for a new connection",
                        evicted.client.peer,
                        evicted.waiting_since().elapsed().as_secs_f64()
                    );
                }
                None => {
                    // Over `MAX_CONNECTIONS` with no connection to spare.
                    answer_and_close(stream, "503 Service Unavailable", "Too many connections");
                    return false;
                }
            }
        }
        let configured = stream
            .set_nonblocking(false)
            .and(stream.set_nodelay(true))
            .and(stream.set_read_timeout(Some(self.idle_timeout.min(Duration::from_millis(250)))))
            .and(stream.set_write_timeout(Some(self.idle_timeout)));
        if let Err(e) = configured {
            log::debug!("cannot configure connection from {peer}: {e}");
            return false;
        }
        self.open.fetch_add(1, Ordering::SeqCst);
        let client = Client {
            stream,
            peer,
            _open: OpenCount(Arc::clone(&self.open)),
        };
        self.waiting
            .push(Waiting::new(client, Vec::new(), Instant::now()));
        true
    }

    /// Reads what connection `i` has sent (never blocking); dispatches it once its head is
    /// complete (or cannot become a valid one), drops it when the peer has gone.
    fn read_from(&mut self, i: usize, dispatch: &mut Dispatch<'_>) {
        let waiting = &mut self.waiting[i];
        if waiting.buf.len() >= HEAD_FREE && !waiting.large {
            if self.large_heads >= LARGE_HEADS {
                let closed = self.remove(i);
                answer_and_close(
                    closed.client.stream,
                    "503 Service Unavailable",
                    "Server busy, retry shortly",
                );
                return;
            }
            waiting.large = true;
            self.large_heads += 1;
        }
        let limit = if waiting.large {
            MAX_HEAD + 1
        } else {
            HEAD_FREE
        };
        let mut chunk = [0u8; 4096];
        let room = (limit - waiting.buf.len().min(limit)).clamp(1, chunk.len());
        match recv_now(&waiting.client.stream, &mut chunk[..room]) {
            Ok(0) => {
                self.remove(i);
            }
            Ok(n) => {
                let now = Instant::now();
                waiting.buf.extend_from_slice(&chunk[..n]);
                waiting.since = now;
                waiting.head_started.get_or_insert(now);
                if !matches!(parse_head(&waiting.buf), Ok(None)) {
                    let ready = self.remove(i);
                    dispatch(ready.client, ready.buf);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                self.remove(i);
            }
        }
    }

    /// Closes connections silent for the idle timeout (all idle ones at shutdown), and
    /// answers `408` to heads that missed their deadline.
    fn expire(&mut self, stopping: bool) {
        let now = Instant::now();
        for i in (0..self.waiting.len()).rev() {
            let waiting = &self.waiting[i];
            match waiting.head_started {
                None if stopping || now.duration_since(waiting.since) >= self.idle_timeout => {
                    self.remove(i);
                }
                Some(started) if now.duration_since(started) >= self.idle_timeout => {
                    let late = self.remove(i);
                    answer_and_close(late.client.stream, "408 Request Timeout", "Request timeout");
                }
                _ => {}
            }
        }
    }

    fn remove(&mut self, i: usize) -> Waiting {
        let waiting = self.waiting.swap_remove(i);
        if waiting.large {
            self.large_heads -= 1;
        }
        waiting
    }
}

/// Reads what has arrived without ever blocking the poller (`WouldBlock` when nothing has).
fn recv_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Whether `stream` has bytes to read (or has closed) within `wait`.
pub(crate) fn readable_within(stream: &TcpStream, wait: Duration) -> bool {
    let mut fd = pollfd(stream);
    // SAFETY: one valid pollfd, exclusively borrowed for the call.
    unsafe { libc::poll(&mut fd, 1, wait.as_millis() as libc::c_int) > 0 }
}

fn pollfd(socket: &impl AsRawFd) -> libc::pollfd {
    libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

/// A best-effort error answer from the poller thread, which must never block on a client,
/// then close: `408` for a late head, `503` (with `Retry-After`) when there is no room.
fn answer_and_close(stream: TcpStream, status: &str, detail: &str) {
    let body = serde_json::json!({ "detail": detail }).to_string();
    let retry_after = if status.starts_with("503") {
        "retry-after: 1\r\n"
    } else {
        ""
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ndate: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{retry_after}connection: close\r\n\r\n{body}",
        crate::time::http_date(std::time::SystemTime::now()),
        body.len()
    );
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write(answer.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
