//! The metrics-collector's integration tests: the real service on port 0 in this process,
//! spoken to over HTTP, its clock driven by the test. One binary,
//! `cargo test -p metrics-collector --test it`.

mod aggregation;
mod api;
mod backup;
mod bad_input;
mod health;
mod prometheus;
mod support;
