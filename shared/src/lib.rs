//! Monlight's common crate: everything the four services need, written once.
//!
//! The HTTP engine (`http`), routing, API-key auth, the per-IP rate limiter, env config,
//! SQLite open/migrations and the group-commit writer, logging, the shutdown flag and the
//! command-line entry point. It knows nothing of any service: services hand it a
//! [`http::Router`] and their own state.

pub mod auth;
pub mod backup;
pub mod cli;
pub mod config;
pub mod db;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod health;
pub mod http;
pub mod keys;
pub mod logging;
pub mod rate_limit;
pub mod secret;
pub mod service;
pub mod shutdown;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod web;
pub mod writer;

pub use cli::Running;
pub use shutdown::Shutdown;
