//! The accept loop and the per-connection request cycle.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;

use super::conn::{Conn, Framing, Head, ReadError, READ_SLICE};
use super::request::Request;
use super::response::{reason, Body, Response, StreamWriter};
use super::router::{RouteMatch, Router};
use crate::auth;
use crate::config::HttpConfig;
use crate::rate_limit::RateLimiter;
use crate::shutdown::Shutdown;

/// Stack of a connection thread (virtual memory; only touched pages count in RSS).
const CONNECTION_STACK: usize = 1024 * 1024;
/// The body budget is at least this many bytes (it is also at least 4 largest bodies).
const MIN_BODY_BUDGET: usize = 8 * 1024 * 1024;
/// How long a graceful stop waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Connection threads kept waiting for the next connection once theirs closed.
const MAX_IDLE_THREADS: usize = 16;
/// How long an idle connection thread waits for a connection before it exits.
const IDLE_THREAD_KEEP: Duration = Duration::from_secs(10);

/// What the server enforces on every connection and request.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Silent connection / stalled read or write limit.
    pub idle_timeout: Duration,
    /// Handlers running at once.
    pub workers: usize,
    /// Open connections beyond which new ones are closed at once.
    pub max_connections: usize,
    /// Requests per minute per client IP on `/api/` (0 = off).
    pub rate_limit: u32,
    /// Largest request body in bytes.
    pub max_body_size: usize,
    /// The key `/api/` paths require; `None` leaves them open (the browser relay).
    pub api_key: Option<String>,
    /// Bytes of request bodies held in memory at once, over all connections: without it,
    /// `MAX_CONNECTIONS` bodies of `MAX_BODY_SIZE` could be buffered together (256 MB).
    pub body_budget: usize,
}

impl ServerOptions {
    /// The options from the common HTTP settings and the service's API key.
    pub fn new(config: &HttpConfig, api_key: Option<String>) -> ServerOptions {
        ServerOptions {
            idle_timeout: config.idle_timeout,
            workers: config.workers,
            max_connections: config.max_connections,
            rate_limit: config.rate_limit,
            max_body_size: config.max_body_size,
            api_key,
            body_budget: (4 * config.max_body_size).max(MIN_BODY_BUDGET),
        }
    }
}

/// A bound, not yet serving, HTTP server.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    options: ServerOptions,
}

impl Server {
    /// Binds the address (port 0 picks a free one) and logs `listening on <addr>`.
    pub fn bind(addr: SocketAddr, options: ServerOptions) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        // accept() obeys SO_RCVTIMEO on Linux: the accept loop wakes up to see shutdown.
        socket2::SockRef::from(&listener).set_read_timeout(Some(READ_SLICE))?;
        let addr = listener.local_addr()?;
        log::info!("listening on {addr}");
        Ok(Server {
            listener,
            addr,
            options,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on a thread of its own until `shutdown` is set, then stops accepting and waits
    /// (at most 5 s) for in-flight requests.
    pub fn spawn<S: Send + Sync + 'static>(
        self,
        router: Router<S>,
        state: Arc<S>,
        shutdown: Shutdown,
    ) -> io::Result<JoinHandle<()>> {
        let shared = Arc::new(Shared {
            limiter: RateLimiter::new(self.options.rate_limit),
            slots: Semaphore::new(self.options.workers),
            body_budget: Semaphore::new(self.options.body_budget),
            open_connections: AtomicUsize::new(0),
            idle_threads: IdleThreads::default(),
            options: self.options,
            router,
            state,
            shutdown,
        });
        let listener = self.listener;
        thread::Builder::new()
            .name("http-accept".to_string())
            .spawn(move || accept_loop(listener, shared))
    }
}

struct Shared<S> {
    options: ServerOptions,
    router: Router<S>,
    state: Arc<S>,
    limiter: RateLimiter,
    slots: Semaphore,
    body_budget: Semaphore,
    open_connections: AtomicUsize,
    idle_threads: IdleThreads,
    shutdown: Shutdown,
}

fn accept_loop<S: Send + Sync + 'static>(listener: TcpListener, shared: Arc<Shared<S>>) {
    let mut last_error_log: Option<Instant> = None;
    while !shared.shutdown.is_set() {
        match listener.accept() {
            Ok((stream, peer)) => start_connection(&shared, stream, peer),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                // EMFILE and friends: the connection waits in the backlog; try again shortly
                // rather than dying (tiny_http's accept thread exits here for good).
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    log::warn!("accept failed: {e} (retrying)");
                    last_error_log = Some(Instant::now());
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
    drop(listener);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while shared.open_connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    log::info!("http server stopped");
}

fn start_connection<S: Send + Sync + 'static>(
    shared: &Arc<Shared<S>>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    if shared.open_connections.load(Ordering::SeqCst) >= shared.options.max_connections {
        refuse(stream);
        return;
    }
    shared.open_connections.fetch_add(1, Ordering::SeqCst);
    let Some((stream, peer)) = shared.idle_threads.hand_off((stream, peer)) else {
        return;
    };
    let for_thread = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("http-conn".to_string())
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            let mut next = Some((stream, peer));
            while let Some((stream, peer)) = next {
                {
                    let _open = OpenConnection(&for_thread.open_connections);
                    serve_connection(&for_thread, stream, peer);
                }
                next = for_thread.idle_threads.wait(&for_thread.shutdown);
            }
        });
    if let Err(e) = spawned {
        shared.open_connections.fetch_sub(1, Ordering::SeqCst);
        log::warn!("cannot start a connection thread: {e}");
    }
}

/// Connection threads whose connection closed, waiting (up to `MAX_IDLE_THREADS` of them,
/// each for `IDLE_THREAD_KEEP`) to serve a newly accepted one: a client that opens a
/// connection per request then costs no thread creation (`mmap` of the stack, `clone3`,
/// `munmap` at exit) per request.
#[derive(Default)]
struct IdleThreads {
    state: Mutex<IdleState>,
    arrived: Condvar,
}

/// Accepted connections handed to idle threads, and how many threads wait; never more
/// connections than waiting threads, so none is left behind.
#[derive(Default)]
struct IdleState {
    handed: VecDeque<(TcpStream, SocketAddr)>,
    waiting: usize,
}

impl IdleThreads {
    /// Gives the connection to a waiting thread, or back when none waits.
    fn hand_off(&self, conn: (TcpStream, SocketAddr)) -> Option<(TcpStream, SocketAddr)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.waiting <= state.handed.len() {
            return Some(conn);
        }
        state.handed.push_back(conn);
        drop(state);
        self.arrived.notify_one();
        None
    }

    /// Waits for a connection; `None` when enough threads already wait, after
    /// `IDLE_THREAD_KEEP`, or on shutdown (noticed within `READ_SLICE`).
    fn wait(&self, shutdown: &Shutdown) -> Option<(TcpStream, SocketAddr)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.waiting >= MAX_IDLE_THREADS {
            return None;
        }
        state.waiting += 1;
        let deadline = Instant::now() + IDLE_THREAD_KEEP;
        let conn = loop {
            if let Some(conn) = state.handed.pop_front() {
                break Some(conn);
            }
            if shutdown.is_set() || Instant::now() >= deadline {
                break None;
            }
            state = self
                .arrived
                .wait_timeout(state, READ_SLICE)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        state.waiting -= 1;
        conn
    }
}

/// Counts an open connection for as long as it lives (also through a panic).
struct OpenConnection<'a>(&'a AtomicUsize);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Over `MAX_CONNECTIONS`: a best-effort 503, then close.
fn refuse(stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let body = br#"{"detail":"Too many connections"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = (&stream).write_all([head.as_bytes(), body].concat().as_slice());
}

fn serve_connection<S>(shared: &Shared<S>, stream: TcpStream, peer: SocketAddr) {
    let idle = shared.options.idle_timeout;
    let configured = stream
        .set_nodelay(true)
        .and(stream.set_read_timeout(Some(READ_SLICE.min(idle))))
        .and(stream.set_write_timeout(Some(idle)));
    if let Err(e) = configured {
        log::debug!("cannot configure connection from {peer}: {e}");
        return;
    }
    let mut conn = Conn::new(stream, idle, shared.shutdown.clone());
    loop {
        let head = match conn.read_head() {
            Ok(head) => head,
            Err(ReadError::Timeout) if conn.has_partial_request() => {
                let _ = write_response(
                    &mut conn.stream,
                    Response::error(408, "Request timeout"),
                    false,
                );
                return;
            }
            Err(ReadError::TooLarge) => {
                let response = Response::error(431, "Request header fields too large");
                let _ = write_response(&mut conn.stream, response, false);
                return;
            }
            Err(ReadError::Malformed(detail)) => {
                let _ = write_response(&mut conn.stream, Response::error(400, &detail), false);
                return;
            }
            Err(_) => return,
        };
        let started = Instant::now();
        let method = head.method.clone();
        let target_path = head.target.split('?').next().unwrap_or("").to_string();
        let wants_keep_alive = head.keep_alive();
        let Some((response, body_done)) = handle_request(shared, &mut conn, head, peer) else {
            return;
        };
        let status = response.status();
        let keep_alive = wants_keep_alive && body_done && !shared.shutdown.is_set();
        let written = write_response(&mut conn.stream, response, keep_alive);
        log::debug!(
            "{peer} {method} {target_path} {status} {:.1}ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        if written.is_err() || !keep_alive {
            return;
        }
    }
}

/// Runs the checks in the spec's order (auth → route → rate limit → body size → handler) and
/// the handler. Returns the response and whether the request body was fully consumed (if
/// not, the connection must close); `None` when the peer vanished mid-body.
fn handle_request<S>(
    shared: &Shared<S>,
    conn: &mut Conn,
    head: Head,
    peer: SocketAddr,
) -> Option<(Response, bool)> {
    let options = &shared.options;
    let framing = match head.framing() {
        Ok(framing) => framing,
        Err(detail) => return Some((Response::error(400, &detail), false)),
    };
    let has_body = !matches!(framing, Framing::None);
    let early = |response: Response| Some((response, !has_body));

    let mut request = Request::new(&head.method, &head.target).with_remote_ip(peer.ip());
    for (name, value) in &head.headers {
        request = request.with_header(name, value);
    }
    let is_api = request.path() == "/api" || request.path().starts_with("/api/");
    if let (true, Some(key)) = (is_api, &options.api_key) {
        if !auth::has_valid_key(&request, key) {
            return early(Response::error(401, "Invalid API key"));
        }
    }
    let (handler, params) = match shared.router.find(request.method(), request.path()) {
        RouteMatch::Found(handler, params) => (handler, params),
        RouteMatch::WrongMethod(allow) => {
            return early(Response::error(405, "Method not allowed").with_header("Allow", &allow));
        }
        RouteMatch::NotFound => return early(Response::error(404, "Not found")),
    };
    if is_api {
        if let Err(retry_after) = shared.limiter.check(peer.ip()) {
            let body = json!({"detail": "Rate limit exceeded", "retry_after": retry_after});
            return early(
                Response::json(429, &body).with_header("Retry-After", &retry_after.to_string()),
            );
        }
    }
    if let Framing::Length(n) = framing {
        if n > options.max_body_size as u64 {
            return early(Response::error(413, "Request body exceeds maximum size"));
        }
    }
    // Reserve the body's memory before reading it (a chunked body reserves the most it may
    // be); a server full of large uploads answers 503 rather than growing without bound.
    let reserve = match framing {
        Framing::None => 0,
        Framing::Length(n) => n as usize,
        Framing::Chunked => options.max_body_size,
    };
    let Some(_body_memory) = shared
        .body_budget
        .acquire_within(reserve, options.idle_timeout)
    else {
        log::warn!("request bodies use the whole body budget; refusing one of {reserve} bytes");
        let busy =
            Response::error(503, "Server busy, retry shortly").with_header("Retry-After", "1");
        return Some((busy, false));
    };
    if has_body && head.expects_continue() {
        let _ = conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let body = match conn.read_body(framing, options.max_body_size) {
        Ok(body) => body,
        Err(ReadError::TooLarge) => {
            return Some((
                Response::error(413, "Request body exceeds maximum size"),
                false,
            ))
        }
        Err(ReadError::Timeout) => return Some((Response::error(408, "Request timeout"), false)),
        Err(ReadError::Malformed(detail)) => return Some((Response::error(400, &detail), false)),
        Err(ReadError::Closed | ReadError::Shutdown) => return None,
    };
    let mut request = request.with_body(body);
    request.set_params(params);

    let slot = shared.slots.acquire_within(1, Duration::MAX);
    let response = run_guarded(&request, || {
        handler(&shared.state, &request).unwrap_or_else(Response::from)
    });
    drop(slot);
    // Deferred work (waiting for the database writer) runs without the slot.
    let response = run_guarded(&request, || response.resolve());
    Some((response, true))
}

/// Runs handler code under `catch_unwind`: a panic costs this request a 500, not the process.
fn run_guarded(request: &Request, work: impl FnOnce() -> Response) -> Response {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        log::error!(
            "handler for {} {} panicked: {message}",
            request.method(),
            request.path()
        );
        Response::error(500, "Internal server error")
    })
}

/// Writes a response; a streaming body is written last and the connection then closes.
fn write_response(stream: &mut TcpStream, response: Response, keep_alive: bool) -> io::Result<()> {
    let (status, headers, body) = response.into_parts();
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in &headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    let bytes: &[u8] = match &body {
        Body::Bytes(bytes) => bytes,
        Body::Static(bytes) => bytes,
        Body::Stream(_) | Body::Deferred(_) => &[],
    };
    if let Body::Stream(_) = body {
        head.push_str("connection: close\r\n\r\n");
    } else {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        head.push_str(&format!(
            "content-length: {}\r\nconnection: {connection}\r\n\r\n",
            bytes.len()
        ));
    }
    if bytes.len() <= 16 * 1024 {
        let mut out = Vec::with_capacity(head.len() + bytes.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(bytes);
        stream.write_all(&out)?;
    } else {
        stream.write_all(head.as_bytes())?;
        stream.write_all(bytes)?;
    }
    if let Body::Stream(write) = body {
        stream.flush()?;
        write(&mut StreamWriter::new(stream))?;
    }
    stream.flush()
}

/// A counting semaphore: `WORKERS` handler slots, or bytes of the body budget.
struct Semaphore {
    free: Mutex<usize>,
    released: Condvar,
}

/// Units taken from a [`Semaphore`]; given back on drop.
struct Permit<'a> {
    semaphore: &'a Semaphore,
    units: usize,
}

impl Semaphore {
    fn new(units: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(units),
            released: Condvar::new(),
        }
    }

    /// Takes `units`, waiting at most `patience` for them (`None` when they did not free up).
    fn acquire_within(&self, units: usize, patience: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now().checked_add(patience);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < units {
            let wait = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            free = self
                .released
                .wait_timeout(free, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *free -= units;
        Some(Permit {
            semaphore: self,
            units,
        })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.units == 0 {
            return;
        }
        let mut free = self
            .semaphore
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *free += self.units;
        self.semaphore.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semaphore_waits_for_units_and_gives_them_back() {
        let budget = Semaphore::new(1000);
        let held = budget.acquire_within(600, Duration::ZERO).unwrap();
        assert!(budget
            .acquire_within(600, Duration::from_millis(20))
            .is_none());
        let small = budget.acquire_within(400, Duration::ZERO).unwrap();
        drop(held);
        assert!(budget.acquire_within(600, Duration::ZERO).is_some());
        drop(small);
        assert!(budget.acquire_within(1000, Duration::ZERO).is_some());
    }

    #[test]
    fn a_waiter_gets_units_released_by_another_thread() {
        let budget = Arc::new(Semaphore::new(1));
        let held = budget.acquire_within(1, Duration::ZERO).map(|p| p.units);
        assert_eq!(held, Some(1));
        // The permit above was dropped at the end of the statement: take it again and hand
        // it back from another thread while this one waits.
        let permit = budget.acquire_within(1, Duration::ZERO);
        assert!(permit.is_some());
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                drop(permit);
            });
            assert!(budget.acquire_within(1, Duration::from_secs(10)).is_some());
        });
    }
}
