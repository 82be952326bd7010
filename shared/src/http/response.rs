//! Responses and the `{"detail": ...}` error type.

use std::fmt;
use std::io::Write;
use std::net::TcpStream;

use serde::Serialize;
use serde_json::json;

/// Writes a streaming body (e.g. Server-Sent Events) straight to the connection; it runs on
/// the connection's own thread, never on a handler slot, and the connection closes after it.
pub type StreamFn = Box<dyn FnOnce(&mut StreamWriter) -> std::io::Result<()> + Send>;

/// The connection a [`StreamFn`] writes to (each write bounded by `IDLE_TIMEOUT`).
pub struct StreamWriter<'a> {
    stream: &'a mut TcpStream,
}

impl<'a> StreamWriter<'a> {
    pub(crate) fn new(stream: &'a mut TcpStream) -> StreamWriter<'a> {
        StreamWriter { stream }
    }

    /// Whether the client has closed the connection — checked without blocking, so a stream
    /// that has nothing to write for a while still frees its slot soon after the client left.
    pub fn client_gone(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let gone = match self.stream.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        };
        self.stream.set_nonblocking(false).is_err() || gone
    }
}

impl Write for StreamWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

/// A response body.
pub enum Body {
    /// Bytes built for this response.
    Bytes(Vec<u8>),
    /// Bytes embedded in the binary (web UI assets).
    Static(&'static [u8]),
    /// A body written over time; sent without `Content-Length`, connection closed after.
    Stream(StreamFn),
    /// Not a body yet: work that mostly waits (e.g. for the database writer) and then
    /// produces the real response. The server runs it after releasing the handler slot.
    Deferred(DeferredFn),
}

/// See [`Body::Deferred`].
pub type DeferredFn = Box<dyn FnOnce() -> Response + Send>;

/// An HTTP response.
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Response {
    /// A JSON response. Serialization failures become a logged 500.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(bytes) => Response::bytes(status, "application/json", bytes),
            Err(e) => ApiError::internal("serializing a response", e).into(),
        }
    }

    /// An error response `{"detail": detail}`.
    pub fn error(status: u16, detail: &str) -> Response {
        Response::json(status, &json!({ "detail": detail }))
    }

    /// A response with the given content type and body.
    pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: Body::Bytes(body),
        }
    }

    /// An embedded asset (web UI), with its content type.
    pub fn asset(content_type: &str, body: &'static [u8]) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: Body::Static(body),
        }
    }

    /// A streaming response (see [`StreamFn`]).
    pub fn stream(content_type: &str, write: StreamFn) -> Response {
        Response {
            status: 200,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: Body::Stream(write),
        }
    }

    /// A response produced by `work` once the handler slot is released (see
    /// [`Body::Deferred`]): a handler validates its input in the slot, then returns the part
    /// that only waits, so `WORKERS` bounds work rather than waiting.
    pub fn deferred(work: impl FnOnce() -> Response + Send + 'static) -> Response {
        Response {
            status: 0,
            headers: Vec::new(),
            body: Body::Deferred(Box::new(work)),
        }
    }

    /// Runs deferred work, if any, and returns the real response.
    pub fn resolve(self) -> Response {
        match self.body {
            Body::Deferred(work) => work().resolve(),
            _ => self,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body bytes, when the body is not a stream (tests).
    pub fn body_bytes(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Bytes(bytes) => Some(bytes),
            Body::Static(bytes) => Some(bytes),
            Body::Stream(_) | Body::Deferred(_) => None,
        }
    }

    pub(crate) fn into_parts(self) -> (u16, Vec<(String, String)>, Body) {
        (self.status, self.headers, self.body)
    }
}

/// A failed request: the status and the `detail` message the client sees. Handlers return
/// `Result<Response, ApiError>` and use `?`; the status mapping lives here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: u16,
    detail: String,
    headers: Vec<(String, String)>,
}

impl ApiError {
    /// Any status with a detail message.
    pub fn new(status: u16, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    /// 400: bad input; the message names the field or parameter.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, detail)
    }

    /// 404 with a specific message, e.g. `Error not found`.
    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(404, detail)
    }

    /// 503 with a `Retry-After` header.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> ApiError {
        ApiError::new(503, detail).with_header("Retry-After", &retry_after_secs.to_string())
    }

    /// 500: logs `context: error` and tells the client only `Internal server error`.
    pub fn internal(context: &str, error: impl fmt::Display) -> ApiError {
        log::error!("{context}: {error}");
        ApiError::new(500, "Internal server error")
    }

    /// Adds a response header (e.g. `Retry-After`).
    pub fn with_header(mut self, name: &str, value: &str) -> ApiError {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message sent as `detail`.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}

impl From<ApiError> for Response {
    fn from(err: ApiError) -> Response {
        let mut response = Response::error(err.status, &err.detail);
        response.headers.extend(err.headers);
        response
    }
}

/// The reason phrase for the status codes we send.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deferred_work_becomes_the_response() {
        let response =
            Response::deferred(|| Response::deferred(|| Response::error(201, "made later")));
        assert!(response.body_bytes().is_none());
        let resolved = response.resolve();
        assert_eq!(resolved.status(), 201);
        assert_eq!(
            resolved.body_bytes(),
            Some(&br#"{"detail":"made later"}"#[..])
        );
    }
}
