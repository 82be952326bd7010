//! Test helpers (the `testing` feature; never in a production build): a tiny HTTP/1.1 client
//! with full control over what goes on the wire (raw bytes, chunked bodies, missing bodies),
//! and [`ChildService`], a service binary as a child process.

mod child;
pub mod web;

pub use child::{expect_fault_seen, merge_env, wait_for, ChildService};

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response as received.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends `method path` with extra headers and an optional body (`Content-Length` set) on a
/// new connection, and reads the whole response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<HttpResponse> {
    let mut wire = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        wire.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        wire.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    wire.push_str("\r\n");
    let mut bytes = wire.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    let raw = send_raw(addr, &bytes)?;
    parse_response(&raw)
}

/// `GET path` with an optional API key.
pub fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> io::Result<HttpResponse> {
    let headers: Vec<(&str, &str)> = key.map(|k| vec![("X-API-Key", k)]).unwrap_or_default();
    request(addr, "GET", path, &headers, None)
}

/// `POST path` with a JSON body and an optional API key.
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> io::Result<HttpResponse> {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(key) = key {
        headers.push(("X-API-Key", key));
    }
    request(
        addr,
        "POST",
        path,
        &headers,
        Some(body.to_string().as_bytes()),
    )
}

/// Writes raw bytes on a new connection and reads until the server closes it (10 s limit).
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(bytes)?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        // A reset after the server answered and closed early still leaves the answer.
        Err(_) if !raw.is_empty() => Ok(raw),
        Err(e) => Err(e),
    }
}

/// Parses one response (status line, headers, `Content-Length` or close-delimited body).
pub fn parse_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head in the response"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(rest.len())
        .min(rest.len());
    Ok(HttpResponse {
        status,
        headers,
        body: rest[..length].to_vec(),
    })
}
