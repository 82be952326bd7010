//! Our own small HTTP/1.1 engine on `std::net` + `httparse`, and the request/response types
//! handlers see.
//!
//! Why not tiny_http (see ARCHITECTURE.md): 0.12 sets no socket timeouts, its accept thread
//! dies on the first `accept()` error, and dropping a request with an unread body allocates a
//! buffer of the *announced* `Content-Length` — one header aborts the process.
//!
//! Design: one poller thread (`poller.rs`) accepts and holds every connection waiting for a
//! request, with no thread each, until its head is complete (within a deadline and a bound
//! on large heads); the target is parsed once into the canonical path (`target.rs`); a
//! request thread from an elastic pool (`pool.rs`) then runs what the route table says
//! (`router.rs`: guard 401 → 404/405 → rate class 429 → body limit 413), reads the body, and
//! runs the handler while holding one of `WORKERS` handler slots. Streaming (SSE) and
//! deferred responses run on the request thread after the slot is released.

mod budget;
mod conn;
#[cfg(test)]
mod fuzz;
pub mod params;
mod poller;
mod pool;
mod request;
mod response;
mod router;
mod server;
mod target;

pub use request::Request;
pub use response::{ApiError, Body, DeferredFn, Response, StreamFn, StreamWriter};
pub use router::{Guard, Handler, Policy, RateClass, RouteMatch, Router};
pub use server::{Server, ServerOptions};
