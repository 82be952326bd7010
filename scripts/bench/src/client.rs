//! A minimal keep-alive HTTP/1.1 client: one connection, one request at a time, requests as
//! pre-built bytes so that the client spends as little CPU as possible per request.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read or write may stall before the request counts as failed.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// The bytes of one request: `method path`, `Host`, an optional `X-API-Key`, and a JSON body
/// with its `Content-Length` when given. The connection is kept alive.
pub fn request_bytes(
    method: &str,
    path: &str,
    api_key: Option<&str>,
    body: Option<&[u8]>,
) -> Vec<u8> {
    match api_key {
        Some(key) => request_with_headers(method, path, &[("X-API-Key", key)], body),
        None => request_with_headers(method, path, &[], body),
    }
}

/// The bytes of one request like [`request_bytes`], with any extra headers (e.g. the
/// browser-relay's `X-Monlight-Key`) after `Host`.
pub fn request_with_headers(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    bytes
}

/// `request` (from [`request_bytes`]) with a `Connection: close` header after its request
/// line: the server answers and closes, so a [`Client`] opens a new connection (timed as part
/// of the request) for the next one.
pub fn connection_close(request: &[u8]) -> Vec<u8> {
    let line_end = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(request.len(), |pos| pos + 2);
    let mut bytes = Vec::with_capacity(request.len() + 19);
    bytes.extend_from_slice(&request[..line_end]);
    bytes.extend_from_slice(b"Connection: close\r\n");
    bytes.extend_from_slice(&request[line_end..]);
    bytes
}

/// One keep-alive connection to a server; reconnects when the server closed it.
pub struct Client {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    /// Opens a connection to `addr`.
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let mut client = Client {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        };
        client.stream = Some(client.open()?);
        Ok(client)
    }

    fn open(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(self.addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(stream)
    }

    /// Sends one request (see [`request_bytes`]) and reads its whole response. After an
    /// error or a `connection: close` answer the next call opens a new connection.
    pub fn send(&mut self, request: &[u8]) -> io::Result<Reply> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => self.open()?,
        };
        stream.write_all(request)?;
        let (reply, keep_alive) = self.read_reply(&mut stream)?;
        if keep_alive {
            self.stream = Some(stream);
        }
        Ok(reply)
    }

    /// Reads a response head, then `Content-Length` bytes of body.
    fn read_reply(&mut self, stream: &mut TcpStream) -> io::Result<(Reply, bool)> {
        self.buf.clear();
        let head_end = loop {
            if let Some(pos) = find_head_end(&self.buf) {
                break pos;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            read_some(stream, &mut self.buf)?;
        };
        let head = parse_head(&self.buf[..head_end])?;
        let body_start = head_end + 4;
        while self.buf.len() < body_start + head.content_length {
            read_some(stream, &mut self.buf)?;
        }
        let body = self.buf[body_start..body_start + head.content_length].to_vec();
        let reply = Reply {
            status: head.status,
            body,
        };
        Ok((reply, head.keep_alive))
    }
}

/// Appends whatever the stream has (at least one byte) to `buf`.
fn read_some(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Where the blank line ending the head starts.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// What the client needs from a response head.
struct Head {
    status: u16,
    content_length: usize,
    keep_alive: bool,
}

fn parse_head(raw: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(raw).map_err(|_| invalid("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid("no status code in the response"))?;
    let mut head = Head {
        status,
        content_length: 0,
        keep_alive: true,
    };
    for (name, value) in lines.filter_map(|line| line.split_once(':')) {
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value
                .parse()
                .map_err(|_| invalid("invalid Content-Length in the response"))?;
        } else if name.eq_ignore_ascii_case("connection") {
            head.keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    Ok(head)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}
