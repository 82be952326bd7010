//! The error-tracker's integration tests: the real service on port 0 (in this process or as a
//! child process), spoken to over HTTP. One binary, `cargo test -p error-tracker --test it`.

mod alerts;
mod api;
mod lifecycle;
mod request_target;
mod sentry;
mod server_loop;
mod support;
