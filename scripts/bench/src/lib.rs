//! Building blocks of Monlight's benchmark programs (`src/bin/*`).
//!
//! A benchmark starts a release binary as a child process ([`service`]), drives it with
//! keep-alive HTTP/1.1 clients ([`client`]) from a few threads ([`load`]), and reports
//! throughput, latency percentiles ([`stats`]) and the process's memory and CPU ([`procfs`]),
//! with the verdicts and machine notes every report shares ([`report`]); [`args`] reads their
//! command lines.
//!
//! These are programs, never tests: performance is not measured in `cargo test`.

pub mod args;
pub mod client;
pub mod docker;
pub mod load;
pub mod procfs;
pub mod report;
pub mod service;
pub mod stats;
