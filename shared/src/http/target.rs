//! The request target, parsed once into the one canonical path that auth, rate limiting,
//! routing and logging all use (RFC 9112 §3.2). Anything that could be read two ways is
//! refused rather than normalised: an empty segment (`//api`), a `.` or `..` segment (also
//! percent-encoded), an encoded `/` or NUL inside a segment, a malformed escape, absolute-form
//! (`http://host/path`) and `*` outside `OPTIONS`. Escapes of ordinary characters (`/%61pi`)
//! decode to the same canonical path as their plain spelling, so both get the same checks.

use std::fmt;

/// A parsed request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Percent-decoded path: `/` alone, or `/seg/seg` without a trailing slash.
    pub path: String,
    /// The raw query string after `?` (decoded later, per parameter).
    pub query: String,
}

/// Why a target was refused: the `detail` of the `400`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTarget(pub &'static str);

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Target {
    /// Parses `target` as sent on the request line of a `method` request.
    pub fn parse(method: &str, target: &str) -> Result<Target, BadTarget> {
        if target == "*" {
            return if method == "OPTIONS" {
                Ok(Target {
                    path: "*".to_string(),
                    query: String::new(),
                })
            } else {
                Err(BadTarget("request target '*' is only allowed with OPTIONS"))
            };
        }
        if !target.starts_with('/') {
            return Err(BadTarget(
                "request target must be a path starting with '/' (origin-form)",
            ));
        }
        let (raw_path, query) = match target.split_once('?') {
            Some((path, query)) => (path, query),
            None => (target, ""),
        };
        let raw_path = raw_path.split('#').next().unwrap_or(raw_path);
        Ok(Target {
            path: canonical_path(raw_path)?,
            query: query.to_string(),
        })
    }
}

/// Decodes each segment of `raw` (which starts with `/`) and joins them again, refusing any
/// spelling that could name another path. One trailing slash is allowed and dropped.
fn canonical_path(raw: &str) -> Result<String, BadTarget> {
    let body = &raw[1..];
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return Ok("/".to_string());
    }
    let mut path = String::with_capacity(raw.len());
    for segment in body.split('/') {
        if segment.is_empty() {
            return Err(BadTarget("request path has an empty segment ('//')"));
        }
        let decoded = decode_segment(segment)?;
        if decoded == "." || decoded == ".." {
            return Err(BadTarget("request path has a '.' or '..' segment"));
        }
        path.push('/');
        path.push_str(&decoded);
    }
    Ok(path)
}

/// Percent-decodes one path segment; `/` and NUL may not be encoded in it, every escape
/// must be two hex digits and the result must be UTF-8.
fn decode_segment(segment: &str) -> Result<String, BadTarget> {
    if !segment.contains('%') {
        return Ok(segment.to_string());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let byte = match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(&hi), Some(&lo)) => match (hex(hi), hex(lo)) {
                (Some(hi), Some(lo)) => hi * 16 + lo,
                _ => return Err(BadTarget("request path has a malformed percent-escape")),
            },
            _ => return Err(BadTarget("request path has a malformed percent-escape")),
        };
        match byte {
            b'/' => return Err(BadTarget("request path has an encoded '/' in a segment")),
            0 => return Err(BadTarget("request path has an encoded NUL")),
            _ => out.push(byte),
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| BadTarget("request path is not valid UTF-8"))
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// `path` with control characters and non-ASCII escaped, for a log line that no request can
/// forge or split (`%0A` decodes to a newline).
pub(crate) fn loggable(path: &str) -> String {
    path.escape_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: &str, expected: Result<&str, ()>) {
        let got = Target::parse("GET", target).map(|t| t.path).map_err(|_| ());
        assert_eq!(got.as_deref(), expected.as_deref(), "target {target:?}");
    }

    #[test]
    fn every_spelling_of_one_path_is_one_path_or_refused() {
        let table: &[(&str, Result<&str, ()>)] = &[
            ("/", Ok("/")),
            ("/api/errors", Ok("/api/errors")),
            ("/api/errors/", Ok("/api/errors")),
            ("/%61pi/errors", Ok("/api/errors")),
            ("/api/errors?x=1", Ok("/api/errors")),
            ("/api/%C3%A9", Ok("/api/é")),
            ("/a+b", Ok("/a+b")),
            ("//api/errors", Err(())),
            ("/api//errors", Err(())),
            ("/api/errors//", Err(())),
            ("/%2Fapi/errors", Err(())),
            ("/%2fapi/errors", Err(())),
            ("/./api/errors", Err(())),
            ("/x/../api/errors", Err(())),
            ("/%2e%2e/api", Err(())),
            ("/%2E/api", Err(())),
            ("/api/%00", Err(())),
            ("/api/%zz", Err(())),
            ("/api/%4", Err(())),
            ("/api/%ff", Err(())),
            ("http://h/api/errors", Err(())),
            ("api/errors", Err(())),
            ("*", Err(())),
            ("", Err(())),
        ];
        for (target, expected) in table {
            check(target, *expected);
        }
    }

    #[test]
    fn asterisk_only_with_options() {
        assert_eq!(
            Target::parse("OPTIONS", "*").map(|t| t.path),
            Ok("*".into())
        );
    }

    #[test]
    fn query_is_kept_raw() {
        let target = Target::parse("GET", "/api/x?a=%2F&b").unwrap();
        assert_eq!(target.query, "a=%2F&b");
    }

    #[test]
    fn log_form_cannot_split_a_line() {
        assert_eq!(loggable("/a\nb"), "/a\\nb");
    }
}
