//! Our own small HTTP/1.1 engine on `std::net` + `httparse`, and the request/response types
//! handlers see.
//!
//! Why not tiny_http (see ARCHITECTURE.md): 0.12 sets no socket timeouts, its accept thread
//! dies on the first `accept()` error, and dropping a request with an unread body allocates a
//! buffer of the *announced* `Content-Length` — one header aborts the process.
//!
//! Design: one thread per connection (capped by `MAX_CONNECTIONS`) reads the request head
//! (under a deadline, within a shared head budget) and parses its target once into the
//! canonical path (`target.rs`). The route table gives that path a handler and a policy
//! (`router.rs`): the server checks the route's guard (401), then 404/405, its rate-limit
//! class (429) and body limit (413), reads the body (within the body budget), then runs the
//! handler while holding one of `WORKERS` handler slots. Streaming responses (SSE) and
//! deferred responses run on the connection thread after the slot is released.

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
