//! Reading requests off one connection: the head with `httparse` (from bytes the poller has
//! already buffered: a connection only gets a thread once its head is complete), then the
//! body by `Content-Length` or chunked, always within the size limits and the idle timeout. Framing is strict (RFC 9112): anything a proxy in front of us could read
//! differently — both `Transfer-Encoding` and `Content-Length`, a coding other than exactly
//! `chunked`, a length that is not plain digits, bare LF line ends, a missing `Host` — is
//! refused, never guessed at.
//!
//! Generic over the byte stream so the parser can be fed arbitrary bytes in tests.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// Largest request head (request line and headers).
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Head bytes a waiting connection may buffer without counting as a large head (see the
/// poller): enough for any ordinary request, small enough that `MAX_CONNECTIONS` of them
/// stay cheap.
pub(crate) const HEAD_FREE: usize = 2 * 1024;
/// Headers per request.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size or trailer line in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 8 * 1024;

/// Why reading a request stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection (or reset it).
    Closed,
    /// Nothing arrived for the idle timeout.
    Timeout,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
}

impl Head {
    fn values<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header<'h>(&'h self, name: &'h str) -> Option<&'h str> {
        self.values(name).next()
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

    /// Whether the client waits for `100 Continue` before sending the body (never sent to
    /// an HTTP/1.0 client).
    pub fn expects_continue(&self) -> bool {
        !self.http_10
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// Checks what RFC 9112 requires of a request head and returns its body framing; the
    /// error is the `detail` of a `400` after which the connection closes.
    pub fn framing(&self) -> Result<Framing, String> {
        let hosts = self.values("host").count();
        if !self.http_10 && hosts == 0 {
            return Err("an HTTP/1.1 request needs a Host header".to_string());
        }
        if hosts > 1 {
            return Err("more than one Host header".to_string());
        }
        let codings: Vec<&str> = self.values("transfer-encoding").collect();
        let lengths: Vec<&str> = self.values("content-length").collect();
        if !codings.is_empty() && !lengths.is_empty() {
            return Err("both Transfer-Encoding and Content-Length".to_string());
        }
        match codings.as_slice() {
            [] => {}
            [coding] if coding.trim().eq_ignore_ascii_case("chunked") => {
                return Ok(Framing::Chunked)
            }
            _ => {
                return Err(format!(
                    "Transfer-Encoding must be exactly 'chunked' (got {:?})",
                    codings.join(", ")
                ))
            }
        }
        let mut length: Option<u64> = None;
        for value in lengths {
            let parsed = parse_digits(value.trim())
                .ok_or_else(|| format!("invalid Content-Length {value:?}"))?;
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

/// Plain decimal digits only (no sign, no spaces); a number too large for `u64` is
/// `u64::MAX` (over any body limit, so a `413`, not a `400`).
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// A chunk size: hex digits only (at most 15), optionally followed by `;extensions`.
fn parse_chunk_size(line: &str) -> Option<usize> {
    let size = match line.split_once(';') {
        Some((size, _extensions)) => size.trim_end_matches([' ', '\t']),
        None => line,
    };
    let hex_only =
        !size.is_empty() && size.len() <= 15 && size.bytes().all(|b| b.is_ascii_hexdigit());
    hex_only
        .then(|| usize::from_str_radix(size, 16).ok())
        .flatten()
}

/// Parses a complete request head at the start of `buf`: the head and its length, `None`
/// while it is still partial. Lines must end in CRLF.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(ReadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge),
        Err(e) => return Err(ReadError::Malformed(format!("malformed request: {e}"))),
    };
    if len > MAX_HEAD {
        return Err(ReadError::TooLarge);
    }
    if has_bare_lf(&buf[..len]) {
        return Err(ReadError::Malformed(
            "malformed request: lines must end with CRLF".to_string(),
        ));
    }
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
    Ok(Some((head, len)))
}

/// One client connection with its read buffer, on the thread serving its requests.
pub(crate) struct Conn<S> {
    pub stream: S,
    buf: Vec<u8>,
    start: usize,
    idle_timeout: Duration,
}

impl<S: Read> Conn<S> {
    /// Resumes a connection whose first bytes (a head, perhaps more) are in `buf`.
    pub fn resume(stream: S, buf: Vec<u8>, idle_timeout: Duration) -> Conn<S> {
        Conn {
            stream,
            buf,
            start: 0,
            idle_timeout,
        }
    }

    /// The stream and the bytes buffered but not consumed (the start of a next request).
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        self.buf.drain(..self.start);
        (self.stream, self.buf)
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads up to `max` more bytes into the buffer (at least one), giving up after the
    /// idle timeout without progress.
    fn fill(&mut self, max: usize) -> Result<(), ReadError> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let began = Instant::now();
        let filled = self.buf.len();
        self.buf.resize(filled + max.clamp(1, READ_CHUNK), 0);
        let result = loop {
            match self.stream.read(&mut self.buf[filled..]) {
                Ok(0) => break Err(ReadError::Closed),
                Ok(n) => break Ok(filled + n),
                Err(e) if is_timeout(&e) => {
                    if began.elapsed() >= self.idle_timeout {
                        break Err(ReadError::Timeout);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Err(ReadError::Closed),
            }
        };
        self.buf.truncate(*result.as_ref().unwrap_or(&filled));
        result.map(|_| ())
    }

    /// Reads whatever the client has sent next (at least one byte, within the idle timeout).
    pub fn read_more(&mut self) -> Result<(), ReadError> {
        self.fill(READ_CHUNK)
    }

    /// The next request head, if the buffer holds a complete one (consumed); `None` when
    /// the buffer is empty or holds only the start of one.
    pub fn next_head(&mut self) -> Result<Option<Head>, ReadError> {
        match parse_head(self.buffered())? {
            Some((head, len)) => {
                self.consume(len);
                Ok(Some(head))
            }
            None => Ok(None),
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

    /// Appends exactly `n` bytes to `out`: what is buffered first, then straight from the
    /// stream into `out` (a body never passes through the connection's buffer).
    fn read_exact_into(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), ReadError> {
        let take = n.min(self.buffered().len());
        out.extend_from_slice(&self.buffered()[..take]);
        self.consume(take);
        let mut remaining = n - take;
        let began = Instant::now();
        let mut last_progress = began;
        while remaining > 0 {
            let filled = out.len();
            out.resize(filled + remaining.min(READ_CHUNK), 0);
            let read = self.stream.read(&mut out[filled..]);
            out.truncate(filled + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Err(ReadError::Closed),
                Ok(got) => {
                    remaining -= got;
                    last_progress = Instant::now();
                }
                Err(e) if is_timeout(&e) => {
                    if last_progress.elapsed() >= self.idle_timeout {
                        return Err(ReadError::Timeout);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Closed),
            }
        }
        Ok(())
    }

    /// One CRLF-terminated line of a chunked body, without its CRLF.
    fn read_line(&mut self) -> Result<String, ReadError> {
        loop {
            if let Some(pos) = self.buffered().iter().position(|&b| b == b'\n') {
                if pos == 0 || self.buffered()[pos - 1] != b'\r' {
                    return Err(ReadError::Malformed(
                        "chunked body lines must end with CRLF".to_string(),
                    ));
                }
                let line = String::from_utf8_lossy(&self.buffered()[..pos - 1]).into_owned();
                self.consume(pos + 1);
                return Ok(line);
            }
            if self.buffered().len() > MAX_CHUNK_LINE {
                return Err(ReadError::Malformed("chunk line too long".to_string()));
            }
            let room = MAX_CHUNK_LINE + 1 - self.buffered().len();
            self.fill(room)?;
        }
    }

    fn read_chunked(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = parse_chunk_size(&line)
                .ok_or_else(|| ReadError::Malformed(format!("invalid chunk size {line:?}")))?;
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

/// Whether a head has a line ending in LF without CR before it.
fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `bytes` as one request on a connection that ends after them: the framing of
    /// its head and the body read by it, or the error (`Closed` for an incomplete head).
    fn parse(bytes: &[u8]) -> Result<(Framing, Vec<u8>), String> {
        let mut conn = Conn::resume(&[][..], bytes.to_vec(), Duration::from_secs(1));
        let head = conn.next_head().map_err(|e| format!("{e:?}"))?;
        let head = head.ok_or_else(|| "Closed".to_string())?;
        let framing = head.framing()?;
        let body = conn
            .read_body(framing, 1024)
            .map_err(|e| format!("{e:?}"))?;
        Ok((framing, body))
    }

    fn check(request: &str, expected: Result<&str, &str>) {
        let got = parse(request.as_bytes());
        match (expected, &got) {
            (Ok(body), Ok((_, got_body))) => {
                assert_eq!(String::from_utf8_lossy(got_body), body, "{request:?}")
            }
            (Err(needle), Err(err)) => assert!(err.contains(needle), "{request:?}: {err}"),
            _ => panic!("{request:?}: expected {expected:?}, got {got:?}"),
        }
    }

    #[test]
    fn framing_conformance_table() {
        let table: &[(&str, Result<&str, &str>)] = &[
            ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", Ok("")),
            ("GET / HTTP/1.0\r\n\r\n", Ok("")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", Ok("abc")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", Ok("abc")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", Ok("abc")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", Ok("abc")),
            // Smuggling: two framings, or a coding we do not speak.
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", Err("both Transfer-Encoding and Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Err("exactly 'chunked'")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", Err("exactly 'chunked'")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Err("exactly 'chunked'")),
            // Lengths are digits only, and agree.
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", Err("invalid Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3 3\r\n\r\nabc", Err("invalid Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3,3\r\n\r\nabc", Err("invalid Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc", Err("invalid Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", Err("invalid Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", Err("TooLarge")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", Err("conflicting Content-Length")),
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n", Err("TooLarge")),
            // Chunk sizes are hex digits only, every line ends in CRLF.
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n", Err("invalid chunk size")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", Err("invalid chunk size")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", Err("invalid chunk size")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", Err("invalid chunk size")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", Err("CRLF")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", Err("CRLF")),
            ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n401\r\n", Err("TooLarge")),
            ("GET / HTTP/1.1\nHost: h\n\n", Err("CRLF")),
            // Host: required in HTTP/1.1, never twice.
            ("GET / HTTP/1.1\r\n\r\n", Err("needs a Host header")),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", Err("more than one Host")),
            // Truncated input is a closed connection, not a request.
            ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab", Err("Closed")),
            ("GET / HTTP/1.1\r\nHost", Err("Closed")),
            ("GET / HTTP/1.1\r\nHo st: h\r\n\r\n", Err("malformed request")),
        ];
        for (request, expected) in table {
            check(request, *expected);
        }
    }

    #[test]
    fn a_head_over_the_limit_is_too_large() {
        let mut request = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        request.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&request).unwrap_err(), "TooLarge");
    }

    #[test]
    fn a_body_is_read_from_the_buffer_then_the_stream() {
        let rest = b"llo";
        let mut conn = Conn::resume(
            &rest[..],
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhe".to_vec(),
            Duration::from_secs(1),
        );
        let head = conn.next_head().unwrap().unwrap();
        let body = conn.read_body(head.framing().unwrap(), 10).unwrap();
        assert_eq!(body, b"hello");
        assert!(conn.into_parts().1.is_empty());
    }

    #[test]
    fn pipelined_requests_are_read_one_after_another() {
        let bytes = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\nHost: h\r\n\r\n";
        let mut conn = Conn::resume(&[][..], bytes.to_vec(), Duration::from_secs(1));
        let mut seen = Vec::new();
        while let Ok(Some(head)) = conn.next_head() {
            let framing = head.framing().unwrap();
            seen.push((head.target, conn.read_body(framing, 100).unwrap()));
        }
        assert_eq!(
            seen,
            vec![
                ("/a".to_string(), vec![]),
                ("/b".to_string(), b"hi".to_vec()),
                ("/c".to_string(), vec![])
            ]
        );
    }
}
