//! The browser-relay's integration tests: the relay (in this process, or as a child process
//! where it must be killed) in front of the real error-tracker and metrics-collector, started
//! in this process on port 0. One binary, `cargo test -p browser-relay --test it`.

mod delivery;
mod faults;
mod hostile;
mod support;
mod tunnel;
