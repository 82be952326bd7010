//! Reading requests off one connection: the head with `httparse`, then the body by
//! `Content-Length` or chunked, always within the size limit and the idle timeout.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;

/// Reads block at most this long, so an idle connection notices shutdown quickly.
pub(crate) const READ_SLICE: Duration = Duration::from_millis(250);
/// Largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;
/// Headers per request.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size or trailer line in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// Why reading a request stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection (or reset it).
    Closed,
    /// Nothing arrived for the idle timeout.
    Timeout,
    /// Shutdown was asked for while the connection was idle between requests.
    Shutdown,
    /// The head or the body is over its limit.
    TooLarge,
    /// The bytes are not valid HTTP; the message says why.
    Malformed(String),
}

/// A parsed request line and headers.
pub(crate) struct Head {
    pub method: String,
    pub target: String,
    pub http_10: bool,
    pub headers: Vec<(String, String)>,
}

/// How the request body is delimited.
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept open after this request.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.http_10 {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// The body framing; conflicting or invalid lengths are an error.
    pub fn framing(&self) -> Result<Framing, String> {
        if let Some(te) = self.header("transfer-encoding") {
            if te.to_ascii_lowercase().trim().ends_with("chunked") {
                return Ok(Framing::Chunked);
            }
            return Err(format!("unsupported Transfer-Encoding {te:?}"));
        }
        let mut length: Option<u64> = None;
        for (name, value) in &self.headers {
            if name != "content-length" {
                continue;
            }
            let parsed: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("invalid Content-Length {value:?}"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err("conflicting Content-Length headers".to_string());
            }
            length = Some(parsed);
        }
        Ok(match length {
            None | Some(0) => Framing::None,
            Some(n) => Framing::Length(n),
        })
    }
}

/// One client connection with its read buffer.
pub(crate) struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    idle_timeout: Duration,
    shutdown: Shutdown,
}

impl Conn {
    pub fn new(stream: TcpStream, idle_timeout: Duration, shutdown: Shutdown) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(4096),
            start: 0,
            idle_timeout,
            shutdown,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Whether part of a request has arrived but not been consumed.
    pub fn has_partial_request(&self) -> bool {
        !self.buffered().is_empty()
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads at least one more byte into the buffer. Waits in short slices so that a
    /// connection idle `between_requests` notices shutdown (a request in flight is finished);
    /// gives up after the idle timeout without progress.
    fn fill(&mut self, between_requests: bool) -> Result<(), ReadError> {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let waiting_for_new_request = between_requests && self.buffered().is_empty();
        let began = Instant::now();
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if is_timeout(&e) => {
                    if waiting_for_new_request && self.shutdown.is_set() {
                        return Err(ReadError::Shutdown);
                    }
                    if began.elapsed() >= self.idle_timeout {
                        return Err(ReadError::Timeout);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }

    /// Reads the next request head.
    pub fn read_head(&mut self) -> Result<Head, ReadError> {
        loop {
            if !self.buffered().is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = httparse::Request::new(&mut headers);
                match parsed.parse(self.buffered()) {
                    Ok(httparse::Status::Complete(len)) => {
                        let head = Head {
                            method: parsed.method.unwrap_or("GET").to_string(),
                            target: parsed.path.unwrap_or("/").to_string(),
                            http_10: parsed.version == Some(0),
                            headers: parsed
                                .headers
                                .iter()
                                .map(|h| {
                                    (
                                        h.name.to_ascii_lowercase(),
                                        String::from_utf8_lossy(h.value).into_owned(),
                                    )
                                })
                                .collect(),
                        };
                        self.consume(len);
                        return Ok(head);
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.buffered().len() > MAX_HEAD {
                            return Err(ReadError::TooLarge);
                        }
                    }
                    Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge),
                    Err(e) => return Err(ReadError::Malformed(format!("malformed request: {e}"))),
                }
            }
            self.fill(true)?;
        }
    }

    /// Reads the body announced by `framing`, refusing more than `limit` bytes (a
    /// `Content-Length` over the limit is refused before anything is read).
    pub fn read_body(&mut self, framing: Framing, limit: usize) -> Result<Vec<u8>, ReadError> {
        match framing {
            Framing::None => Ok(Vec::new()),
            Framing::Length(n) if n > limit as u64 => Err(ReadError::TooLarge),
            Framing::Length(n) => {
                let mut body = Vec::with_capacity(n as usize);
                self.read_exact_into(n as usize, &mut body)?;
                Ok(body)
            }
            Framing::Chunked => self.read_chunked(limit),
        }
    }

    fn read_exact_into(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), ReadError> {
        let mut remaining = n;
        while remaining > 0 {
            if self.buffered().is_empty() {
                self.fill(false)?;
            }
            let take = remaining.min(self.buffered().len());
            out.extend_from_slice(&self.buffered()[..take]);
            self.consume(take);
            remaining -= take;
        }
        Ok(())
    }

    fn read_line(&mut self) -> Result<String, ReadError> {
        loop {
            if let Some(pos) = self.buffered().iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.buffered()[..pos])
                    .trim_end()
                    .to_string();
                self.consume(pos + 1);
                return Ok(line);
            }
            if self.buffered().len() > MAX_CHUNK_LINE {
                return Err(ReadError::Malformed("chunk line too long".to_string()));
            }
            self.fill(false)?;
        }
    }

    fn read_chunked(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| ReadError::Malformed(format!("invalid chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailer section: header lines until an empty one.
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            if body.len().saturating_add(size) > limit {
                return Err(ReadError::TooLarge);
            }
            self.read_exact_into(size, &mut body)?;
            if !self.read_line()?.is_empty() {
                return Err(ReadError::Malformed(
                    "chunk not followed by CRLF".to_string(),
                ));
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
