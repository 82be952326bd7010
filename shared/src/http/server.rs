//! The server: the poller (accepting, holding waiting connections) hands each complete
//! request head to a request thread from an elastic pool, which runs the request cycle —
//! policy checks, body, handler, response — and gives the connection back when it idles.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;

use super::budget::Semaphore;
use super::conn::{Conn, Framing, Head, ReadError};
use super::poller::{readable_within, Client, GiveBack, Poller};
use super::pool::Pool;
use super::request::Request;
use super::response::{reason, ApiError, Body, Response, StreamWriter};
use super::router::{method_not_allowed, Guard, HeadersFn, RateClass, RouteMatch, Router};
use super::target::{loggable, Target};
use crate::auth;
use crate::config::HttpConfig;
use crate::rate_limit::{client_key, RateLimiter};
use crate::secret::Secret;
use crate::shutdown::Shutdown;
use crate::time::http_date;

/// The body budget is at least this many bytes (it is also at least 4 bodies of
/// `MAX_BODY_SIZE`, and at least the largest body any route takes). A buffered body is
/// parsed into about two more copies of itself, so 4 MiB of bodies cost about 12 MB at peak
/// (`bench-attack`: 64 clients sending 256 KiB reports).
const MIN_BODY_BUDGET: usize = 4 * 1024 * 1024;
/// How long a graceful stop waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// After an early answer, how long and how much of the rest of the request is read and
/// discarded before closing (see [`linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1024 * 1024;
/// After a response on a kept-alive connection, how long its request thread waits for the
/// next request before handing the connection back to the poller (a client that sends its
/// next request at once keeps its thread; an idle one costs no thread).
const NEXT_REQUEST_WAIT: Duration = Duration::from_millis(2);

/// What the server enforces on every connection and request.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Silent connection / stalled read or write limit.
    pub idle_timeout: Duration,
    /// Handlers running at once.
    pub workers: usize,
    /// Open connections beyond which new ones are closed at once.
    pub max_connections: usize,
    /// Requests per minute per client (IPv6 per /64) on routes of the `PerClient` rate
    /// class (0 = off).
    pub rate_limit: u32,
    /// Largest request body in bytes.
    pub max_body_size: usize,
    /// The key of `Guard::ApiKey` routes; with `None` such routes answer `401` to everyone.
    pub api_key: Option<Secret>,
    /// Bytes of request bodies held in memory at once, over all connections: without it,
    /// `MAX_CONNECTIONS` bodies of `MAX_BODY_SIZE` could be buffered together (256 MB).
    /// Raised to the largest body limit of any route when that is larger.
    pub body_budget: usize,
}

impl ServerOptions {
    /// The options from the common HTTP settings and the service's API key.
    pub fn new(config: &HttpConfig, api_key: Option<Secret>) -> ServerOptions {
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

    /// Serves on a thread of its own (the poller) until `shutdown` is set, then stops
    /// accepting and waits (at most 5 s) for in-flight requests.
    pub fn spawn<S: Send + Sync + 'static>(
        self,
        router: Router<S>,
        state: Arc<S>,
        shutdown: Shutdown,
    ) -> io::Result<JoinHandle<()>> {
        let (poller, give_back) = Poller::new(
            self.listener,
            self.options.idle_timeout,
            self.options.max_connections,
            shutdown.clone(),
        )?;
        let pool = Pool::new(self.options.workers);
        // A route that takes larger bodies than the budget could never be served.
        let body_budget = self
            .options
            .body_budget
            .max(router.largest_body_limit().unwrap_or(0));
        let shared = Arc::new(Shared {
            limiter: RateLimiter::new(self.options.rate_limit),
            slots: Semaphore::new(self.options.workers),
            body_budget: Semaphore::new(body_budget),
            options: self.options,
            router,
            state,
            shutdown,
            give_back,
        });
        thread::Builder::new()
            .name("http-poll".to_string())
            .spawn(move || serve(poller, pool, shared))
    }
}

struct Shared<S> {
    options: ServerOptions,
    router: Router<S>,
    state: Arc<S>,
    limiter: RateLimiter,
    slots: Semaphore,
    body_budget: Semaphore,
    shutdown: Shutdown,
    give_back: GiveBack,
}

/// The poller's thread: dispatches complete heads to the pool until shutdown, then waits
/// for the requests in flight.
fn serve<S: Send + Sync + 'static>(poller: Poller, pool: Arc<Pool>, shared: Arc<Shared<S>>) {
    let open = poller.open_connections();
    poller.run(&mut |client, buffered| {
        let for_thread = Arc::clone(&shared);
        if let Err(e) = pool.execute(move || serve_connection(&for_thread, client, buffered)) {
            log::warn!("cannot start a request thread: {e}");
        }
    });
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    pool.close();
    log::info!("http server stopped");
}

/// Serves the requests of one connection whose buffer starts with a complete head, for as
/// long as the next one follows at once; then gives the connection back to the poller.
fn serve_connection<S>(shared: &Shared<S>, client: Client, buffered: Vec<u8>) {
    let peer = client.peer;
    let mut conn = Conn::resume(client, buffered, shared.options.idle_timeout);
    loop {
        let head = match conn.next_head() {
            Ok(Some(head)) => head,
            Ok(None) => {
                // Nothing complete buffered: wait briefly for the next request, then let
                // the poller hold the connection.
                if shared.shutdown.is_set() {
                    return;
                }
                let (client, rest) = conn.into_parts();
                if rest.is_empty() && readable_within(&client.stream, NEXT_REQUEST_WAIT) {
                    conn = Conn::resume(client, rest, shared.options.idle_timeout);
                    match conn.read_more() {
                        Ok(()) => continue,
                        Err(_) => return,
                    }
                }
                shared.give_back.give_back(client, rest);
                return;
            }
            Err(ReadError::TooLarge) => {
                let response = Response::error(431, "Request header fields too large");
                return refuse_and_close(&mut conn.stream.stream, response);
            }
            Err(ReadError::Malformed(detail)) => {
                return refuse_and_close(&mut conn.stream.stream, Response::error(400, &detail));
            }
            Err(ReadError::Timeout | ReadError::Closed) => return,
        };
        let started = Instant::now();
        let method = head.method.clone();
        let wants_keep_alive = head.keep_alive();
        let Some(handled) = handle_request(shared, &mut conn, head, peer) else {
            return;
        };
        let status = handled.response.status();
        let keep_alive = wants_keep_alive && handled.body_read && !shared.shutdown.is_set();
        let head_only = method == "HEAD";
        let written = write_response(
            &mut conn.stream.stream,
            handled.response,
            keep_alive,
            head_only,
        );
        log::debug!(
            "{peer} {method} {} {status} {:.1}ms",
            handled.log_path,
            started.elapsed().as_secs_f64() * 1000.0
        );
        if written.is_err() {
            return;
        }
        if !handled.body_read {
            return linger(&conn.stream.stream);
        }
        if !keep_alive {
            return;
        }
    }
}

/// A request's answer, and what the connection may do next.
struct Handled {
    response: Response,
    /// Whether the request's body was read to its end; if not, the connection must close.
    body_read: bool,
    /// The canonical path, escaped for a log line (or the raw target when it was refused).
    log_path: String,
}

/// Runs the checks in the spec's order — target (400), then the route's guard (401),
/// route (404/405), rate-limit class (429) and body limit (413) as the route table declares
/// them — then the handler. `None` when the peer vanished mid-body.
fn handle_request<S>(
    shared: &Shared<S>,
    conn: &mut Conn<Client>,
    head: Head,
    peer: SocketAddr,
) -> Option<Handled> {
    let options = &shared.options;
    let framing = head.framing();
    let has_body = !matches!(framing, Ok(Framing::None));
    let continue_wanted = head.expects_continue();
    let target = Target::parse(&head.method, &head.target);
    let log_path = match &target {
        Ok(target) => loggable(&target.path),
        Err(_) => loggable(&head.target),
    };
    // The route's own headers (`Policy::headers`, given the request's head and the answer),
    // once the route is known.
    let route_headers: RefCell<Option<(HeadersFn<S>, Request)>> = RefCell::new(None);
    let answer = |mut response: Response, body_read: bool| {
        if let Some((headers, request)) = route_headers.borrow().as_ref() {
            for (name, value) in headers(&shared.state, request, &response) {
                response = response.with_header(name, &value);
            }
        }
        Some(Handled {
            response,
            body_read,
            log_path: log_path.clone(),
        })
    };
    let (framing, target) = match (framing, target) {
        (Ok(framing), Ok(target)) => (framing, target),
        (Err(detail), _) => return answer(Response::error(400, &detail), false),
        (_, Err(bad)) => return answer(Response::error(400, &bad.to_string()), false),
    };
    // An answer before the body is read: keep-alive only if there was no body.
    let early = |response: Response| answer(response, !has_body);

    let mut request = Request::from_target(head.method, target).with_remote_ip(peer.ip());
    for (name, value) in &head.headers {
        request = request.with_header(name, value);
    }
    let found = shared.router.find(request.method(), request.path());
    // Path parameters are known before the guard runs (a guard may read them).
    if let RouteMatch::Found(_, _, params) = &found {
        request.set_params(params.clone());
    }
    if let Some(headers) = found.policy().and_then(|policy| policy.headers) {
        *route_headers.borrow_mut() = Some((headers, request.clone()));
    }
    if let Some(policy) = found.policy() {
        if let Err(refused) = check_guard(&policy.guard, shared, &request) {
            return early(refused.into());
        }
    }
    let (handler, policy) = match found {
        RouteMatch::Found(handler, policy, _) => (handler, policy),
        RouteMatch::WrongMethod(_, allow) => return early(method_not_allowed(&allow)),
        RouteMatch::NotFound(_) => return early(Response::error(404, "Not found")),
    };
    if policy.rate == RateClass::PerClient {
        if let Err(retry_after) = shared.limiter.check(client_key(peer.ip())) {
            let body = json!({"detail": "Rate limit exceeded", "retry_after": retry_after});
            return early(
                Response::json(429, &body).with_header("Retry-After", &retry_after.to_string()),
            );
        }
    }
    let max_body = policy.max_body.unwrap_or(options.max_body_size);
    if let Framing::Length(n) = framing {
        if n > max_body as u64 {
            return early(Response::error(413, "Request body exceeds maximum size"));
        }
    }
    // Reserve the body's memory before reading it (a chunked body reserves the most it may
    // be); a server full of large uploads answers 503 rather than growing without bound.
    let reserve = match framing {
        Framing::None => 0,
        Framing::Length(n) => n as usize,
        Framing::Chunked => max_body,
    };
    let Some(_body_memory) = shared
        .body_budget
        .acquire_within(reserve, options.idle_timeout)
    else {
        log::warn!("request bodies use the whole body budget; refusing one of {reserve} bytes");
        return answer(busy(), false);
    };
    if has_body && continue_wanted {
        let _ = conn
            .stream
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let body = match conn.read_body(framing, max_body) {
        Ok(body) => body,
        Err(ReadError::TooLarge) => {
            return answer(
                Response::error(413, "Request body exceeds maximum size"),
                false,
            )
        }
        Err(ReadError::Timeout) => return answer(Response::error(408, "Request timeout"), false),
        Err(ReadError::Malformed(detail)) => return answer(Response::error(400, &detail), false),
        Err(ReadError::Closed) => return None,
    };
    let request = request.with_body(body);

    let slot = shared.slots.acquire_within(1, Duration::MAX);
    let response = run_guarded(&request, || {
        handler(&shared.state, &request).unwrap_or_else(Response::from)
    });
    drop(slot);
    // Deferred work (waiting for the database writer) runs without the slot.
    let response = run_guarded(&request, || response.resolve());
    answer(response, true)
}

/// Runs a route's guard; `Err` is the answer (`401` for a missing or wrong API key).
fn check_guard<S>(guard: &Guard<S>, shared: &Shared<S>, request: &Request) -> Result<(), ApiError> {
    match guard {
        Guard::Open => Ok(()),
        Guard::ApiKey => match &shared.options.api_key {
            Some(key) if auth::has_valid_key(request, key.expose()) => Ok(()),
            _ => Err(ApiError::new(401, "Invalid API key")),
        },
        Guard::Check(check) => check(&shared.state, request),
    }
}

/// `503` with `Retry-After`: a budget is used up for now.
fn busy() -> Response {
    Response::error(503, "Server busy, retry shortly").with_header("Retry-After", "1")
}

/// Answers a request that cannot be read any further, then closes (see [`linger`]).
fn refuse_and_close(stream: &mut TcpStream, response: Response) {
    if write_response(stream, response, false, false).is_ok() {
        linger(stream);
    }
}

/// After an answer sent before the request was read to its end: stop writing, then read
/// and discard what the client is still sending, briefly. Closing a socket with unread data
/// makes the kernel send a reset, and the client would see that instead of our `401`/`413`.
fn linger(stream: &TcpStream) {
    if stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = [0u8; 1024];
    let mut discarded = 0;
    while discarded < LINGER_BYTES && Instant::now() < deadline {
        match (&*stream).read(&mut sink) {
            Ok(0) => return,
            Ok(n) => discarded += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
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
            loggable(request.path())
        );
        Response::error(500, "Internal server error")
    })
}

/// Writes a response (for `HEAD`, its head only); a streaming body is written last and the
/// connection then closes.
fn write_response(
    stream: &mut TcpStream,
    response: Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let (status, headers, body) = response.into_parts();
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ndate: {}\r\n",
        reason(status),
        http_date(std::time::SystemTime::now())
    );
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
    let bytes = if head_only { &[][..] } else { bytes };
    if bytes.len() <= 16 * 1024 {
        let mut out = Vec::with_capacity(head.len() + bytes.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(bytes);
        stream.write_all(&out)?;
    } else {
        stream.write_all(head.as_bytes())?;
        stream.write_all(bytes)?;
    }
    if let (Body::Stream(write), false) = (body, head_only) {
        stream.flush()?;
        write(&mut StreamWriter::new(stream))?;
    }
    stream.flush()
}
