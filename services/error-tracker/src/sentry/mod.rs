//! Sentry SDK compatibility, the library half: what an unmodified Sentry SDK (Python
//! `sentry-sdk`, `@sentry/browser`, Go, Java, ...) sends, turned into a [`crate::ingest::Report`].
//!
//! - [`decode`]: the body as sent → plain bytes (`Content-Encoding` gzip, deflate, br), capped.
//! - [`auth`]: the public key of an `X-Sentry-Auth` header or a DSN.
//! - [`envelope`]: the envelope format (`/api/<id>/envelope/`): a header line, then items.
//! - [`event`]: one error event (an envelope `event` item or a `store` body) → a report, with
//!   the traceback rendered as the language prints it and Sentry-style grouping.
//!
//! Deliberately not here: routing, keys, rate limits (the handlers' business), and everything
//! that is not an error event (transactions, sessions, client reports, attachments are parsed
//! as envelope items but never mapped). Nothing in this module panics on input or does I/O.

pub mod auth;
pub mod decode;
pub mod envelope;
pub mod event;

#[cfg(test)]
mod fuzz;
