//! Sentry SDK compatibility: what an unmodified Sentry SDK (Python `sentry-sdk`,
//! `@sentry/browser`, Go, Java, ...) sends, turned into a [`crate::ingest::Report`].
//!
//! - [`api`]: the endpoints (`/api/<id>/envelope/`, `/api/<id>/store/`), their key check and
//!   answers, and the admin API of the keys.
//! - [`decode`]: the body as sent → plain bytes (`Content-Encoding` gzip, deflate, br), capped.
//! - [`auth`]: the public key of an `X-Sentry-Auth` header or a DSN.
//! - [`envelope`]: the envelope format (`/api/<id>/envelope/`): a header line, then items.
//! - [`event`]: one error event (an envelope `event` item or a `store` body) → a report, with
//!   the traceback rendered as the language prints it (`traceback`) and Sentry-style
//!   grouping (`grouping`).
//!
//! Everything but [`api`] is pure: no I/O, no panic on any input. What is not an error event
//! (transactions, sessions, client reports, attachments) is parsed as an envelope item and
//! never mapped.

pub mod api;
pub mod auth;
pub mod decode;
pub mod envelope;
pub mod event;
mod grouping;
mod traceback;

#[cfg(test)]
mod fuzz;
