//! Our own small HTTP/1.1 engine on `std::net` + `httparse`, and the request/response types
//! handlers see.
//!
//! Why not tiny_http (see ARCHITECTURE.md): 0.12 sets no socket timeouts, its accept thread
//! dies on the first `accept()` error, and dropping a request with an unread body allocates a
//! buffer of the *announced* `Content-Length` — one header aborts the process.
//!
//! Design: one thread per connection (capped by `MAX_CONNECTIONS`) reads the request head and
//! body under the idle timeout, runs the pre-checks (auth → route → rate limit → body size),
//! then runs the handler while holding one of `WORKERS` handler slots. Streaming responses
//! (SSE) run on the connection thread after the slot is released.

mod conn;
pub mod params;
mod request;
mod response;
mod router;
mod server;

pub use request::Request;
pub use response::{ApiError, Body, DeferredFn, Response, StreamFn, StreamWriter};
pub use router::{Handler, RouteMatch, Router};
pub use server::{Server, ServerOptions};
