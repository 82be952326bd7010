//! Rewriting minified stack traces with source maps (being written).
