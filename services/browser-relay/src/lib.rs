//! browser-relay: the public endpoint for browsers.

pub mod symbolicate;
