//! CORS for the browser endpoints: which origins may read the relay's answers (`CORS_ORIGINS`),
//! the headers every answer to them carries, and the preflight.

use shared::config::ConfigError;
use shared::http::{ApiError, Request, Response};

/// The allowed origins: exact (`https://app.example.com`) or with one wildcard label
/// (`https://*.example.com`: `https://a.example.com`, not `https://example.com`, not
/// `https://a.b.example.com`). Scheme and port must match; nothing else is ever allowed
/// (`null` included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(Vec<Rule>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Exact(String),
    /// `scheme://*` + `suffix` (the suffix starts with `.`).
    OneLabel {
        scheme: String,
        suffix: String,
    },
}

impl Origins {
    /// Parses `CORS_ORIGINS` (comma-separated).
    pub fn parse(text: &str) -> Result<Origins, ConfigError> {
        let mut rules = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = || {
                ConfigError(format!(
                    "CORS_ORIGINS: expected origins like https://app.example.com or https://*.example.com (got {item:?})"
                ))
            };
            let origin = item.trim_end_matches('/').to_ascii_lowercase();
            let (scheme, host) = origin.split_once("://").ok_or_else(bad)?;
            if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('/') {
                return Err(bad());
            }
            match host.strip_prefix('*') {
                Some(suffix)
                    if suffix.starts_with('.') && suffix.len() > 1 && !suffix.contains('*') =>
                {
                    rules.push(Rule::OneLabel {
                        scheme: scheme.to_string(),
                        suffix: suffix.to_string(),
                    })
                }
                Some(_) => return Err(bad()),
                None if host.contains('*') => return Err(bad()),
                None => rules.push(Rule::Exact(origin.clone())),
            }
        }
        Ok(Origins(rules))
    }

    /// Whether `origin` (an `Origin` header) is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.0.iter().any(|rule| match rule {
            Rule::Exact(exact) => *exact == origin,
            Rule::OneLabel { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|rest| rest.strip_prefix("://"))
                .and_then(|host| host.strip_suffix(suffix.as_str()))
                .is_some_and(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }),
        })
    }
}

/// `Access-Control-Allow-Origin`, `Vary: Origin` and `Access-Control-Expose-Headers:
/// Retry-After, X-Sentry-Rate-Limits` (so a page, or a Sentry SDK through the tunnel, can read
/// how long to back off after a `429` or `503`) for a request
/// from an allowed origin, nothing otherwise: what every answer of a browser endpoint carries.
pub fn headers(origins: &Origins, request: &Request) -> Vec<(&'static str, String)> {
    match request.header("origin") {
        Some(origin) if origins.allows(origin) => vec![
            ("Access-Control-Allow-Origin", origin.to_string()),
            ("Vary", "Origin".to_string()),
            (
                "Access-Control-Expose-Headers",
                "Retry-After, X-Sentry-Rate-Limits".to_string(),
            ),
        ],
        _ => Vec::new(),
    }
}

/// The answer to a preflight (`OPTIONS`): `204` with the allowed methods and headers for an
/// allowed origin (the route adds `Access-Control-Allow-Origin`), `403` otherwise.
pub fn preflight(origins: &Origins, request: &Request) -> Result<Response, ApiError> {
    match request.header("origin") {
        Some(origin) if origins.allows(origin) => {
            Ok(Response::bytes(204, "text/plain", Vec::new())
                .with_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                .with_header(
                    "Access-Control-Allow-Headers",
                    "X-Monlight-Key, Content-Type",
                )
                .with_header("Access-Control-Max-Age", "86400"))
        }
        _ => Err(ApiError::new(403, "Origin not allowed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_one_label_wildcards() {
        let origins =
            Origins::parse("https://app.example.com/, https://*.example.com,http://localhost:3000")
                .unwrap();
        for allowed in [
            "https://app.example.com",
            "https://a.example.com",
            "https://A-1.Example.com",
            "http://localhost:3000",
        ] {
            assert!(origins.allows(allowed), "{allowed}");
        }
        for refused in [
            "https://example.com",
            "https://example.com.evil.com",
            "https://aexample.com",
            "http://a.example.com",
            "https://a.b.example.com",
            "https://.example.com",
            "https://a.example.com:8443",
            "http://localhost:3001",
            "null",
            "",
        ] {
            assert!(!origins.allows(refused), "{refused}");
        }
        assert!(!Origins::default().allows("https://app.example.com"));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "example.com",
            "ftp://x.org",
            "https://*",
            "https://a.*.example.com",
            "https://*example.com",
            "https://x.org/path",
        ] {
            assert!(Origins::parse(bad).is_err(), "{bad}");
        }
    }
}
