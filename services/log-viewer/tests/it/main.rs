//! The log-viewer's integration tests: the real service in this process on port 0, reading a
//! fake Docker containers directory, spoken to over HTTP.
//! One binary: `cargo test -p log-viewer --test it` (`TEST_LOG=debug` shows the service's log).
//! The tests mostly wait on the ingestion's polls, so on a machine with few cores
//! `-- --test-threads 16` runs the whole suite in about the time of its slowest test.

mod api;
mod health;
mod ingest;
mod order;
mod request_target;
mod search;
mod support;
mod tail;
