//! Alerts end to end: the real service in this process, a small SMTP sink and a small HTTP
//! receiver on 127.0.0.1 standing in for the mail server, Postmark and a webhook.
//!
//! Self-contained on purpose (its own service helper), so it depends on nothing but the
//! library and `shared::testing`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use error_tracker::Config;
use serde_json::{json, Value};
use shared::config::Env;
use shared::testing::{get, post_json, request, HttpResponse};
use shared::{Running, Shutdown};
use tempfile::TempDir;

const KEY: &str = "alerts-key";
const BASE_URL: &str = "http://errors.test:5010";
/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The service

/// The error-tracker on port 0 in a temporary directory; stopped on drop.
struct Service {
    addr: SocketAddr,
    running: Option<Running>,
    _dir: TempDir,
}

impl Service {
    fn start(extra: &[(&str, &str)]) -> Service {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("errors.db").display().to_string();
        let mut pairs: Vec<(&str, &str)> = vec![
            ("API_KEY", KEY),
            ("PORT", "0"),
            ("BIND", "127.0.0.1"),
            ("RATE_LIMIT", "0"),
            ("BASE_URL", BASE_URL),
            ("DATABASE_PATH", &db),
        ];
        pairs.extend_from_slice(extra);
        let config = Config::from_env(&Env::from_pairs(&pairs)).expect("valid config");
        let running = error_tracker::run(config, Shutdown::new()).expect("service starts");
        Service {
            addr: running.addr(),
            running: Some(running),
            _dir: dir,
        }
    }

    fn post(&self, path: &str, body: &Value) -> HttpResponse {
        post_json(self.addr, path, Some(KEY), body).expect("POST answered")
    }

    /// Reports an error; returns the response body after checking the status.
    fn report(&self, body: &Value, status: u16) -> Value {
        let response = self.post("/api/errors", body);
        assert_eq!(response.status, status, "{}", response.text());
        response.json()
    }

    fn health(&self) -> Value {
        let response = get(self.addr, "/health", None).expect("health answered");
        assert_eq!(response.status, 200, "{}", response.text());
        response.json()
    }

    /// Polls `/health` until `done` holds for it; returns that answer.
    fn wait_health(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let health = self.health();
            if done(&health) {
                return health;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; /health: {health}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop();
        }
    }
}

fn error_body(exception_type: &str, message: &str) -> Value {
    json!({
        "project": "alerts-test",
        "environment": "staging",
        "exception_type": exception_type,
        "message": message,
        "traceback": format!("Traceback (most recent call last):\n  File \"/app/{exception_type}.py\", line 3, in <module>\n{exception_type}: {message}"),
        "request_method": "POST",
        "request_url": "https://shop.example/cart?x=1&y=2",
    })
}

// ---------------------------------------------------------------------------------------
// An SMTP sink: just enough SMTP to take a message, and a record of what the client said.

#[derive(Debug, Default)]
struct Session {
    /// Every command line, in order.
    commands: Vec<String>,
    /// Each message received with DATA, dot-unstuffed.
    messages: Vec<String>,
    /// After STARTTLS, whether the next byte began a TLS handshake record.
    tls_hello: bool,
}

impl Session {
    fn said(&self, prefix: &str) -> bool {
        self.commands.iter().any(|c| c.starts_with(prefix))
    }
}

struct SmtpSink {
    addr: SocketAddr,
    sessions: Receiver<Session>,
}

impl SmtpSink {
    /// A sink that advertises `extensions` after EHLO.
    fn start(extensions: &'static [&'static str]) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let (sender, sessions) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sender = sender.clone();
                thread::spawn(move || {
                    let _ = sender.send(smtp_session(stream, extensions));
                });
            }
        });
        SmtpSink { addr, sessions }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// The next finished session.
    fn next(&self) -> Session {
        self.sessions
            .recv_timeout(PATIENCE)
            .expect("an SMTP session within the deadline")
    }
}

fn smtp_session(stream: TcpStream, extensions: &[&str]) -> Session {
    let mut session = Session::default();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(reader) = stream.try_clone() else {
        return session;
    };
    let mut reader = BufReader::new(reader);
    let mut out = stream;
    let _ = out.write_all(b"220 sink.test ESMTP\r\n");
    loop {
        let mut line = String::new();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            break;
        }
        let command = line.trim_end().to_string();
        session.commands.push(command.clone());
        let verb = command
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" | "HELO" => {
                let lines: Vec<&str> = std::iter::once("sink.test")
                    .chain(extensions.iter().copied())
                    .collect();
                let last = lines.len() - 1;
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                    .collect()
            }
            "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 OK\r\n".to_string(),
            "AUTH" => "235 Authenticated\r\n".to_string(),
            "DATA" => {
                let _ = out.write_all(b"354 go on\r\n");
                let mut message = String::new();
                loop {
                    let mut data = String::new();
                    if !matches!(reader.read_line(&mut data), Ok(n) if n > 0) {
                        return session;
                    }
                    if data == ".\r\n" {
                        break;
                    }
                    message.push_str(data.strip_prefix('.').unwrap_or(&data));
                }
                session.messages.push(message);
                "250 queued\r\n".to_string()
            }
            "STARTTLS" => {
                let _ = out.write_all(b"220 go ahead\r\n");
                let mut first = [0u8; 1];
                // A TLS handshake record starts with content type 22 (0x16).
                session.tls_hello = reader.read_exact(&mut first).is_ok() && first[0] == 0x16;
                break;
            }
            "QUIT" => {
                let _ = out.write_all(b"221 bye\r\n");
                break;
            }
            _ => "502 unknown command\r\n".to_string(),
        };
        if out.write_all(reply.as_bytes()).is_err() {
            break;
        }
    }
    session
}

// ---------------------------------------------------------------------------------------
// Reading the received email: headers, RFC 2047 subject, MIME parts.

struct Mail {
    headers: Vec<(String, String)>,
    body: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
        // Unfold continuation lines, then split into name/value.
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        let headers = unfolded
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Mail {
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    /// The parts of a multipart body, each decoded per its Content-Transfer-Encoding.
    fn parts(&self) -> Vec<(String, String)> {
        let content_type = self.header("content-type");
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .expect("a boundary")
            .trim_matches('"');
        self.body
            .split(&format!("--{boundary}"))
            .skip(1)
            .filter(|part| !part.starts_with("--"))
            .map(|part| {
                let part = Mail::parse(part.trim_start_matches("\r\n"));
                let body = match part.header("content-transfer-encoding") {
                    "quoted-printable" => qp_decode(&part.body),
                    "base64" => base64_decode(&part.body),
                    _ => part.body.clone().into_bytes(),
                };
                let body = String::from_utf8(body).expect("utf-8 part");
                (part.header("content-type").to_string(), body)
            })
            .collect()
    }

    fn part(&self, mime: &str) -> String {
        let parts = self.parts();
        parts
            .iter()
            .find(|(content_type, _)| content_type.starts_with(mime))
            .map(|(_, body)| body.clone())
            .unwrap_or_else(|| panic!("no {mime} part in {parts:?}"))
    }
}

/// Decodes RFC 2047 `=?utf-8?b?...?=` words; white space between two encoded words goes.
fn decode_subject(value: &str) -> String {
    let mut decoded = String::new();
    let mut previous_encoded = false;
    for word in value.split_whitespace() {
        let encoded = word
            .strip_prefix("=?utf-8?b?")
            .and_then(|w| w.strip_suffix("?="));
        let joined = previous_encoded && encoded.is_some();
        if !decoded.is_empty() && !joined {
            decoded.push(' ');
        }
        match encoded {
            Some(b64) => {
                decoded.push_str(&String::from_utf8(base64_decode(b64)).expect("utf-8 word"))
            }
            None => decoded.push_str(word),
        }
        previous_encoded = encoded.is_some();
    }
    decoded
}

fn base64_decode(text: &str) -> Vec<u8> {
    let (mut bits, mut count, mut out) = (0u32, 0, Vec::new());
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

fn qp_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        if bytes[i] != b'=' {
            out.push(bytes[i]);
            i += 1;
        } else if bytes[i + 1..].starts_with(b"\r\n") {
            i += 3;
        } else {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
            out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            i += 3;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// An HTTP receiver standing in for a webhook or Postmark.

#[derive(Debug)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers every request with `status` and `answer`, and hands over what it received.
fn http_receiver(status: u16, answer: &'static str) -> (SocketAddr, Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
    let addr = listener.local_addr().expect("receiver addr");
    let (sender, received) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            receive_one(stream, status, answer, &sender);
        }
    });
    (addr, received)
}

fn receive_one(stream: TcpStream, status: u16, answer: &str, sender: &Sender<Received>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = sender.send(Received {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
}

fn next_request(received: &Receiver<Received>) -> Received {
    received
        .recv_timeout(PATIENCE)
        .expect("a request within the deadline")
}

// ---------------------------------------------------------------------------------------
// SMTP

#[test]
fn smtp_alert_is_multipart_with_encoded_subject_date_message_id_and_link() {
    let sink = SmtpSink::start(&["8BITMIME", "SIZE 10240000"]);
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &sink.port()),
        ("SMTP_FROM", "Monlight <alerts@example.org>"),
        ("ALERT_EMAILS", " ops@example.org, ,dev@example.org "),
    ]);
    let message = "<script>alert(1)</script> ünïcödé";
    let created = service.report(&error_body("TypeError", message), 201);
    let id = created["id"].as_i64().expect("id");

    let session = sink.next();
    assert!(
        session.said("MAIL FROM:<alerts@example.org>"),
        "{session:?}"
    );
    assert!(session.said("RCPT TO:<ops@example.org>"), "{session:?}");
    assert!(session.said("RCPT TO:<dev@example.org>"), "{session:?}");
    assert!(
        !session.said("AUTH"),
        "no credentials, no AUTH: {session:?}"
    );
    assert_eq!(session.messages.len(), 1, "{session:?}");
    let mail = Mail::parse(&session.messages[0]);

    let subject = mail.header("subject");
    assert!(
        subject.contains("=?utf-8?b?"),
        "RFC 2047 encoded: {subject}"
    );
    assert_eq!(
        decode_subject(subject),
        format!("[alerts-test] TypeError: {message} (#{id})")
    );
    // `Date: Wed, 25 Nov 2026 19:13:21 +0000` and `Message-ID: <random@host>`.
    let date = mail.header("date");
    assert!(
        date.len() > 20 && date.contains(':') && date.ends_with("+0000"),
        "{date}"
    );
    let message_id = mail.header("message-id");
    assert!(
        message_id.starts_with('<') && message_id.ends_with('>') && message_id.contains('@'),
        "{message_id}"
    );
    assert_eq!(mail.header("from"), "Monlight <alerts@example.org>");
    assert!(mail.header("to").contains("ops@example.org"));
    assert!(mail
        .header("content-type")
        .starts_with("multipart/alternative"));

    let link = format!("{BASE_URL}/errors/{id}");
    let text = mail.part("text/plain");
    assert!(text.contains(&link), "{text}");
    assert!(text.contains(message), "{text}");
    assert!(
        text.contains("POST https://shop.example/cart?x=1&y=2"),
        "{text}"
    );
    assert!(
        text.contains("File \"/app/TypeError.py\", line 3"),
        "{text}"
    );
    assert!(text.contains("staging"), "{text}");
    let html = mail.part("text/html");
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; ünïcödé"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("cart?x=1&amp;y=2"), "{html}");

    let health = service.wait_health("one alert sent", |h| h["alerts_sent"] == 1);
    assert_eq!(
        (
            health["alerts_failed"].as_u64(),
            health["alerts_dropped"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn a_reopened_group_alerts_as_regression_and_a_repeat_does_not_alert() {
    let sink = SmtpSink::start(&[]);
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &sink.port()),
        ("ALERT_EMAILS", "ops@example.org"),
    ]);
    let body = error_body("KeyError", "missing 'sku'");
    let id = service.report(&body, 201)["id"].as_i64().expect("id");
    assert_eq!(service.report(&body, 200)["status"], "incremented");
    let resolved = service.post(&format!("/api/errors/{id}/resolve"), &json!({}));
    assert_eq!(resolved.status, 200);
    assert_eq!(service.report(&body, 201)["status"], "reopened");

    // One sender, FIFO: had the repeat alerted, the second email would not be the regression.
    let first = Mail::parse(&sink.next().messages[0]);
    assert_eq!(
        decode_subject(first.header("subject")),
        format!("[alerts-test] KeyError: missing 'sku' (#{id})")
    );
    let second = Mail::parse(&sink.next().messages[0]);
    assert_eq!(
        decode_subject(second.header("subject")),
        format!("[regression] [alerts-test] KeyError: missing 'sku' (#{id})")
    );
    assert!(second.part("text/plain").contains("Seen:        3 times"));
    service.wait_health("two alerts sent", |h| h["alerts_sent"] == 2);
}

#[test]
fn starttls_is_issued_when_the_server_offers_it() {
    // The sink does not speak TLS: we check the client asks for it and starts a handshake
    // before anything else; the failed handshake is then logged and counted.
    let sink = SmtpSink::start(&["STARTTLS", "8BITMIME"]);
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &sink.port()),
        ("ALERT_EMAILS", "ops@example.org"),
    ]);
    service.report(&error_body("TlsError", "x"), 201);
    let session = sink.next();
    assert_eq!(
        session.commands.last().map(String::as_str),
        Some("STARTTLS"),
        "{session:?}"
    );
    assert!(
        session.tls_hello,
        "a TLS ClientHello follows STARTTLS: {session:?}"
    );
    assert!(
        !session.said("MAIL") && session.messages.is_empty(),
        "{session:?}"
    );
    service.wait_health("the failure counted", |h| h["alerts_failed"] == 1);
}

#[test]
fn auth_is_sent_in_plain_mode_only_when_the_operator_chose_it() {
    let sink = SmtpSink::start(&["AUTH PLAIN LOGIN"]);
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &sink.port()),
        ("SMTP_TLS", "none"),
        ("SMTP_USERNAME", "alice"),
        ("SMTP_PASSWORD", "s3cret"),
        ("ALERT_EMAILS", "ops@example.org"),
    ]);
    service.report(&error_body("AuthError", "x"), 201);
    let session = sink.next();
    let auth = session
        .commands
        .iter()
        .find_map(|c| c.strip_prefix("AUTH PLAIN "))
        .unwrap_or_else(|| panic!("AUTH PLAIN with credentials: {session:?}"));
    assert_eq!(base64_decode(auth), b"\0alice\0s3cret");
    assert_eq!(session.messages.len(), 1, "{session:?}");
}

#[test]
fn credentials_never_go_over_plain_text_in_auto_mode() {
    // No STARTTLS offered, credentials set, SMTP_TLS left at auto: nothing is sent.
    let sink = SmtpSink::start(&["AUTH PLAIN LOGIN"]);
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &sink.port()),
        ("SMTP_USERNAME", "alice"),
        ("SMTP_PASSWORD", "s3cret"),
        ("ALERT_EMAILS", "ops@example.org"),
    ]);
    service.report(&error_body("AuthError", "x"), 201);
    let session = sink.next();
    assert!(
        !session.said("AUTH") && !session.said("MAIL"),
        "{session:?}"
    );
    assert!(!session.commands.join("\n").contains("s3cret"));
    service.wait_health("the failure counted", |h| h["alerts_failed"] == 1);
}

#[test]
fn a_username_without_password_sends_without_auth() {
    let sink = SmtpSink::start(&["AUTH PLAIN LOGIN"]);
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &sink.port()),
        ("SMTP_USERNAME", "alice"),
        ("ALERT_EMAILS", "ops@example.org"),
    ]);
    service.report(&error_body("AuthError", "x"), 201);
    let session = sink.next();
    assert!(!session.said("AUTH"), "{session:?}");
    assert_eq!(session.messages.len(), 1, "{session:?}");
}

#[test]
fn an_unreachable_smtp_host_only_costs_a_log_line() {
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", "1"),
        ("ALERT_EMAILS", "ops@example.org"),
    ]);
    service.report(&error_body("DownError", "x"), 201);
    let health = service.wait_health("the failure counted", |h| h["alerts_failed"] == 1);
    assert_eq!(health["alerts_sent"], 0);
    assert_eq!(health["errors_total"], 1);
}

/// A mail server that accepts connections and never says a word: a delivery to it waits
/// for the whole `ALERT_TIMEOUT`. It holds what it accepted until [`BlackHole::release`].
struct BlackHole {
    port: u16,
    accepted: Receiver<()>,
    held: Arc<std::sync::Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the black hole");
        let port = listener.local_addr().expect("black hole address").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let (notify, accepted) = mpsc::channel();
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (held, stop) = (Arc::clone(&held), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            held.lock().expect("held connections").push(stream);
                            let _ = notify.send(());
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        BlackHole {
            port,
            accepted,
            held,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits until a client has connected.
    fn wait_connection(&self) {
        self.accepted
            .recv_timeout(PATIENCE)
            .expect("a connection to the black hole within the deadline");
    }

    /// Whether every connection accepted so far is still open at the client's end.
    fn all_still_open(&self) -> bool {
        let held = self.held.lock().expect("held connections");
        held.iter().all(|stream| {
            stream.set_nonblocking(true).expect("nonblocking stream");
            let mut byte = [0u8; 1];
            // Nothing to read and no end of stream: the client is still waiting.
            matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
    }

    /// Stops listening (later connections are refused) and closes what it held.
    fn release(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("black hole thread");
        }
        self.held.lock().expect("held connections").clear();
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.release();
    }
}

#[test]
fn reports_are_answered_while_the_alert_sender_is_stuck() {
    let black_hole = BlackHole::start();
    let port = black_hole.port.to_string();
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &port),
        ("ALERT_EMAILS", "ops@example.org"),
        // Longer than the test: the sender stays stuck until the black hole lets go.
        ("ALERT_TIMEOUT", "300"),
    ]);
    // Declared after the service, so dropped first: a failing test lets go of the sender
    // before it stops the service.
    let mut black_hole = black_hole;
    service.report(&error_body("StuckError", "the first alert"), 201);
    black_hole.wait_connection();

    // The queue holds 128 alerts; these fill it and overflow it.
    const MORE: usize = 128 + 50;
    for n in 0..MORE {
        let mut body = error_body(&format!("Stuck{n}Error"), "while the sender waits");
        body["traceback"] = json!("");
        service.report(&body, 201);
    }
    assert!(
        black_hole.all_still_open(),
        "the sender let go of the mail server before the reports were answered"
    );
    let health = service.health();
    assert_eq!(
        (&health["alerts_sent"], &health["alerts_failed"]),
        (&json!(0), &json!(0)),
        "nothing delivered while stuck: {health}"
    );
    assert_eq!(health["alerts_dropped"], MORE - 128, "{health}");
    assert_eq!(health["errors_total"], MORE + 1, "{health}");

    black_hole.release();
    service.wait_health("the stuck delivery failed once released", |h| {
        h["alerts_failed"].as_u64() >= Some(1)
    });
}

// ---------------------------------------------------------------------------------------
// Webhook and Postmark

#[test]
fn the_webhook_gets_a_json_alert_with_text_and_fields() {
    let (addr, received) = http_receiver(200, "ok");
    let url = format!("http://{addr}/hooks/T000/secret");
    let service = Service::start(&[("ALERT_WEBHOOK_URL", &url)]);
    let created = service.report(&error_body("ValueError", "bad\nthing"), 201);
    let id = created["id"].as_i64().expect("id");

    let hook = next_request(&received);
    assert_eq!(
        (hook.method.as_str(), hook.path.as_str()),
        ("POST", "/hooks/T000/secret")
    );
    assert_eq!(hook.header("content-type"), Some("application/json"));
    let link = format!("{BASE_URL}/errors/{id}");
    let text = hook.body["text"].as_str().expect("text");
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(
        text.contains(&link) && text.contains("ValueError"),
        "{text}"
    );
    assert_eq!(hook.body["event"], "created");
    assert_eq!(
        hook.body["error"],
        json!({"id": id, "project": "alerts-test", "environment": "staging",
               "exception_type": "ValueError", "message": "bad\nthing", "count": 1, "url": link})
    );
    service.wait_health("one alert sent", |h| h["alerts_sent"] == 1);
}

#[test]
fn webhook_text_escapes_chat_markup_and_mentions_nobody() {
    let (addr, received) = http_receiver(200, "ok");
    let service = Service::start(&[("ALERT_WEBHOOK_URL", &format!("http://{addr}/hook"))]);
    let mut body = error_body(
        "Evil<@U024BE7LH>Error",
        "<!channel> @everyone @here <https://phish.example|click> & more",
    );
    body["project"] = json!("<!here>");
    let created = service.report(&body, 201);
    let id = created["id"].as_i64().expect("id");

    let hook = next_request(&received);
    let text = hook.body["text"].as_str().expect("text");
    assert_eq!(
        text,
        format!(
            "New error in &lt;!here&gt; (staging): Evil&lt;@U024BE7LH&gt;Error: &lt;!channel&gt; \
             @\u{200B}everyone @\u{200B}here &lt;https://phish.example|click&gt; &amp; more \
             — {BASE_URL}/errors/{id}"
        )
    );
    assert_eq!(hook.body["allowed_mentions"], json!({"parse": []}));
    // The structured fields are data, not chat text: they stay as reported.
    assert_eq!(hook.body["error"]["project"], "<!here>");
    assert_eq!(hook.body["error"]["message"], body["message"]);
}

#[test]
fn a_webhook_error_answer_is_counted_as_failed() {
    let (addr, received) = http_receiver(500, "{\"error\":\"boom\"}");
    let service = Service::start(&[("ALERT_WEBHOOK_URL", &format!("http://{addr}/hook"))]);
    service.report(&error_body("ValueError", "x"), 201);
    next_request(&received);
    let health = service.wait_health("the failure counted", |h| h["alerts_failed"] == 1);
    assert_eq!(health["alerts_sent"], 0);
}

#[test]
fn postmark_gets_the_email_over_http() {
    let (addr, received) = http_receiver(200, "{\"ErrorCode\":0,\"Message\":\"OK\"}");
    let api_url = format!("http://{addr}");
    let service = Service::start(&[
        ("POSTMARK_API_TOKEN", "server-token-1"),
        ("POSTMARK_API_URL", &api_url),
        ("ALERT_EMAILS", "ops@example.org,dev@example.org"),
    ]);
    let created = service.report(&error_body("TypeError", "<b>bold</b>"), 201);
    let id = created["id"].as_i64().expect("id");

    let call = next_request(&received);
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("POST", "/email")
    );
    assert_eq!(
        call.header("x-postmark-server-token"),
        Some("server-token-1")
    );
    assert_eq!(call.header("content-type"), Some("application/json"));
    let body = &call.body;
    assert_eq!(body["From"], "errors@example.com");
    assert_eq!(body["To"], "ops@example.org, dev@example.org");
    assert_eq!(
        body["Subject"],
        format!("[alerts-test] TypeError: <b>bold</b> (#{id})")
    );
    assert_eq!(body["MessageStream"], "outbound");
    let link = format!("{BASE_URL}/errors/{id}");
    let text = body["TextBody"].as_str().expect("TextBody");
    assert!(
        text.contains(&link) && text.contains("<b>bold</b>"),
        "{text}"
    );
    let html = body["HtmlBody"].as_str().expect("HtmlBody");
    assert!(
        html.contains(&link) && html.contains("&lt;b&gt;bold&lt;/b&gt;"),
        "{html}"
    );
    service.wait_health("one alert sent", |h| h["alerts_sent"] == 1);
}

// ---------------------------------------------------------------------------------------
// POST /api/test-alert

#[test]
fn test_alert_goes_to_every_channel_in_the_background() {
    let sink = SmtpSink::start(&[]);
    let (addr, received) = http_receiver(200, "ok");
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &sink.port()),
        ("ALERT_EMAILS", "ops@example.org"),
        ("ALERT_WEBHOOK_URL", &format!("http://{addr}/hook")),
    ]);
    let response = request(
        service.addr,
        "POST",
        "/api/test-alert",
        &[("X-API-Key", KEY)],
        None,
    )
    .expect("answered");
    assert_eq!(response.status, 202, "{}", response.text());
    assert_eq!(
        response.json(),
        json!({"status": "test alert dispatched", "channels": ["smtp", "webhook"]})
    );
    let mail = Mail::parse(&sink.next().messages[0]);
    assert!(decode_subject(mail.header("subject")).starts_with("[test] "));
    assert!(mail.part("text/plain").contains(&format!("{BASE_URL}/")));
    let hook = next_request(&received);
    assert_eq!(hook.body["event"], "test");
    service.wait_health("two deliveries", |h| h["alerts_sent"] == 2);
}

#[test]
fn test_alert_without_a_channel_is_503() {
    let detail = "No alert channel configured: set SMTP_HOST (or POSTMARK_API_TOKEN) and \
                  ALERT_EMAILS, or ALERT_WEBHOOK_URL";
    // Nothing set, and an SMTP host without recipients: neither is a channel.
    for extra in [vec![], vec![("SMTP_HOST", "127.0.0.1")]] {
        let service = Service::start(&extra);
        let response = service.post("/api/test-alert", &json!({}));
        assert_eq!(response.status, 503, "{}", response.text());
        assert_eq!(response.json(), json!({ "detail": detail }));
    }
    let service = Service::start(&[]);
    let response = request(service.addr, "POST", "/api/test-alert", &[], None).expect("answered");
    assert_eq!(response.status, 401);
}

// ---------------------------------------------------------------------------------------
// A burst

#[test]
fn a_burst_of_new_errors_with_a_dead_mail_server_never_blocks_ingestion() {
    // A "black hole": connections are accepted by the kernel, never answered, so every
    // delivery takes the whole ALERT_TIMEOUT and the queue fills at once.
    let black_hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = black_hole.local_addr().expect("addr").port().to_string();
    let service = Service::start(&[
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", &port),
        ("ALERT_EMAILS", "ops@example.org"),
        ("ALERT_TIMEOUT", "1"),
    ]);
    let addr = service.addr;
    const THREADS: usize = 8;
    const PER_THREAD: usize = 250;
    const TOTAL: usize = THREADS * PER_THREAD;

    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let done = Arc::clone(&done);
        thread::spawn(move || loop {
            let health = get(addr, "/health", None).expect("health answered during the burst");
            assert_eq!(health.status, 200, "{}", health.text());
            if done.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        })
    };
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let mut body = error_body(&format!("Burst{t}x{i}Error"), "burst");
                    body["traceback"] = json!("");
                    let response =
                        post_json(addr, "/api/errors", Some(KEY), &body).expect("report answered");
                    assert_eq!(response.status, 201, "{}", response.text());
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().expect("sender thread");
    }
    done.store(true, Ordering::SeqCst);
    poller
        .join()
        .expect("/health answered 200 throughout the burst");

    let list = get(addr, "/api/errors?resolved=all&limit=1", Some(KEY)).expect("list");
    assert_eq!(list.json()["total"], TOTAL, "{}", list.text());
    let health = service.health();
    let stat = |name: &str| {
        health[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {health}"))
    };
    // Every alert was delivered, failed, is still queued or in flight (at most the queue's
    // 128 plus one), or was dropped and counted: what is held stays bounded by the queue.
    const QUEUED_AT_MOST: u64 = 128 + 1;
    assert!(stat("alerts_dropped") >= 1, "{health}");
    let accounted = stat("alerts_dropped") + stat("alerts_failed") + stat("alerts_sent");
    assert!(accounted + QUEUED_AT_MOST >= TOTAL as u64, "{health}");
    assert_eq!(stat("alerts_sent"), 0);

    // The sender is stuck on the black hole: stopping still ends within its timeout.
    let stopping = Instant::now();
    service.stop();
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopping.elapsed()
    );
    drop(black_hole);
}
