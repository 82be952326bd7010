//! The request type handlers see: method, decoded path and query, headers, body.

use std::net::{IpAddr, Ipv4Addr};

use serde::de::DeserializeOwned;

use super::response::ApiError;
use super::target::Target;

/// An HTTP request with its body fully read (within the size limit).
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    remote_ip: IpAddr,
    params: Vec<(&'static str, String)>,
}

impl Request {
    /// A request for `target` (path plus optional `?query`), e.g. for handler unit tests.
    /// The path is made canonical as the server does; a target the server would refuse
    /// keeps its raw path.
    pub fn new(method: &str, target: &str) -> Request {
        let method = method.to_ascii_uppercase();
        let target = Target::parse(&method, target).unwrap_or_else(|_| {
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            Target {
                path: path.to_string(),
                query: query.to_string(),
            }
        });
        Request::from_target(method, target)
    }

    /// The request the server builds from a request line it has already validated.
    pub(crate) fn from_target(method: String, target: Target) -> Request {
        Request {
            method,
            path: target.path,
            query: parse_query(&target.query),
            headers: Vec::new(),
            body: Vec::new(),
            remote_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            params: Vec::new(),
        }
    }

    /// Adds a header (name matched case-insensitively).
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    pub(crate) fn with_remote_ip(mut self, ip: IpAddr) -> Request {
        self.remote_ip = ip;
        self
    }

    pub(crate) fn set_params(&mut self, params: Vec<(&'static str, String)>) {
        self.params = params;
    }

    /// `GET`, `POST`...
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The canonical, percent-decoded path, without the query string or a trailing slash.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, by case-insensitive name, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of a query parameter; an empty value counts as absent.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of a repeated query parameter, in order.
    pub fn query_all(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A path parameter captured by the router, e.g. `id` in `/api/errors/{id}`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The client's IP address (the peer of the TCP connection).
    pub fn remote_ip(&self) -> IpAddr {
        self.remote_ip
    }

    /// The body parsed as JSON; failures are `400 {"detail":"Invalid JSON: ..."}`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "Invalid JSON: the request body is empty",
            ));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("Invalid JSON: {e}")))
    }
}

/// Parses `a=1&b=x+y&c=%2F` into decoded pairs (`+` is a space).
pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

/// Decodes a query key or value: `%XX` escapes and `+` as space; invalid escapes stay as
/// they are and invalid UTF-8 becomes U+FFFD.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_percent_decoded() {
        let req = Request::new(
            "get",
            "/api/x?search=a+b%20c&empty=&k=%2F&k=2&bad=%zz&tail=%4",
        );
        assert_eq!(req.method(), "GET");
        assert_eq!(req.query("search"), Some("a b c"));
        assert_eq!(req.query("empty"), None);
        assert_eq!(req.query_all("k"), vec!["/", "2"]);
        assert_eq!(req.query("bad"), Some("%zz"));
        assert_eq!(req.query("tail"), Some("%4"));
        assert_eq!(req.query("K"), None);
    }

    #[test]
    fn path_keeps_plus() {
        let req = Request::new("GET", "/a+b/%41/");
        assert_eq!(req.path(), "/a+b/A");
    }

    #[test]
    fn json_errors_are_400() {
        let req = Request::new("POST", "/").with_body(b"{nope".to_vec());
        let err = req.json::<serde_json::Value>().unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(err.detail().starts_with("Invalid JSON: "));
        let empty = Request::new("POST", "/");
        assert!(empty.json::<serde_json::Value>().is_err());
    }
}
