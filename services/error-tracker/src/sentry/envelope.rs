//! The Sentry envelope format (what SDKs POST to `/api/<project_id>/envelope/`): a JSON header
//! line, then items, each a JSON header line and a payload. A payload is `length` bytes when
//! the item header says so (binary-safe: attachments may hold newlines), otherwise it runs to
//! the next `\n`. See <https://develop.sentry.dev/sdk/data-model/envelopes/>.
//!
//! Parsing borrows the payloads from the body: no copy, whatever their size. It is as
//! tolerant as Sentry's relay where SDKs differ (no trailing newline, blank lines between
//! items, `\r\n` after header lines) and strict where a mistake would shift every following
//! item (a `length` that runs past the end, a payload not followed by a newline).

use std::borrow::Cow;

use serde_json::{Map, Value};
use shared::http::ApiError;

/// A parsed envelope: its header and its items, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    /// The envelope header (`event_id`, `dsn`, `sent_at`, `sdk`, `trace`, ...).
    pub header: Map<String, Value>,
    /// The items, in the order sent.
    pub items: Vec<Item<'a>>,
}

/// One envelope item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    /// The item header (`type`, `length`, `content_type`, `filename`, ...).
    pub header: Map<String, Value>,
    /// The payload bytes, borrowed from the body when parsed.
    pub payload: Cow<'a, [u8]>,
}

impl Item<'_> {
    /// the item header's `type` ("" if none)
    pub fn kind(&self) -> &str {
        self.header
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

impl Envelope<'_> {
    /// The header's `dsn` (browser SDKs put their DSN here), if it is a string.
    pub fn dsn(&self) -> Option<&str> {
        self.header.get("dsn").and_then(Value::as_str)
    }

    /// The header's `event_id`, if it is a string (as sent, not validated).
    pub fn event_id(&self) -> Option<&str> {
        self.header.get("event_id").and_then(Value::as_str)
    }

    /// Serialized back (each item with an explicit `length`), e.g. after the relay rewrote an event's frames.
    ///
    /// Header keys come out in sorted order (serde_json's map); [`parse`] of the result gives
    /// back this envelope, item headers now carrying `length`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Value::Object(self.header.clone()).to_string().into_bytes();
        out.push(b'\n');
        for item in &self.items {
            let mut header = item.header.clone();
            header.insert("length".to_string(), Value::from(item.payload.len()));
            out.extend_from_slice(Value::Object(header).to_string().as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&item.payload);
            out.push(b'\n');
        }
        out
    }
}

/// Parses envelope bytes (header line, then items: item header line + payload of `length` bytes, or up to the next `\n` when no length; trailing newline optional; empty lines between items tolerated as Sentry's relay does). Errors → ApiError 400 whose detail names what is wrong (e.g. "envelope item 2: length 500 runs past the end of the body").
///
/// Items are numbered from 1. Lines holding only whitespace count as empty.
pub fn parse(bytes: &[u8]) -> Result<Envelope<'_>, ApiError> {
    let (first, mut rest) = split_line(bytes);
    if is_blank(bytes) {
        return Err(bad("envelope is empty".to_string()));
    }
    if is_blank(first) {
        return Err(bad("envelope header line is empty".to_string()));
    }
    let header = json_object(first).map_err(|e| bad(format!("envelope header {e}")))?;
    let mut items = Vec::new();
    loop {
        let (line, after) = split_line(rest);
        if is_blank(line) {
            if after.is_empty() {
                break;
            }
            rest = after;
            continue;
        }
        let n = items.len() + 1;
        let header =
            json_object(line).map_err(|e| bad(format!("envelope item {n}: header {e}")))?;
        let (payload, after) = match header.get("length") {
            None | Some(Value::Null) => split_line(after),
            Some(length) => {
                let len = length
                    .as_u64()
                    .and_then(|l| usize::try_from(l).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "envelope item {n}: length {length} is not a byte count"
                        ))
                    })?;
                if len > after.len() {
                    return Err(bad(format!(
                        "envelope item {n}: length {len} runs past the end of the body ({} bytes left)",
                        after.len()
                    )));
                }
                let (payload, tail) = after.split_at(len);
                let tail = match tail {
                    [] => tail,
                    [b'\n', tail @ ..] | [b'\r', b'\n', tail @ ..] => tail,
                    _ => {
                        return Err(bad(format!(
                        "envelope item {n}: payload of length {len} is not followed by a newline"
                    )))
                    }
                };
                (payload, tail)
            }
        };
        items.push(Item {
            header,
            payload: Cow::Borrowed(payload),
        });
        if after.is_empty() {
            break;
        }
        rest = after;
    }
    Ok(Envelope { header, items })
}

/// The bytes up to the first `\n` (excluded) and the bytes after it.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// A header line as a JSON object; the error completes "envelope header ...".
fn json_object(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(line) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("is not a JSON object (got {})", kind_of(&other))),
        Err(e) => Err(format!("is not valid JSON: {e}")),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn bad(detail: String) -> ApiError {
    ApiError::bad_request(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PYTHON: &[u8] = include_bytes!("../../tests/fixtures/sentry/python-chained.envelope");
    const PYTHON_MESSAGE: &[u8] =
        include_bytes!("../../tests/fixtures/sentry/python-message.envelope");
    const BROWSER: &[u8] = include_bytes!("../../tests/fixtures/sentry/browser-typeerror.envelope");
    const BROWSER_SESSION: &[u8] =
        include_bytes!("../../tests/fixtures/sentry/browser-session.envelope");

    fn detail(bytes: &[u8]) -> String {
        let err = parse(bytes).unwrap_err();
        assert_eq!(err.status(), 400);
        err.detail().to_string()
    }

    fn kinds(envelope: &Envelope<'_>) -> Vec<String> {
        envelope
            .items
            .iter()
            .map(|i| i.kind().to_string())
            .collect()
    }

    /// parse → to_bytes → parse gives the same envelope, `length` now explicit.
    fn assert_round_trips(envelope: &Envelope<'_>) {
        let bytes = envelope.to_bytes();
        let again = parse(&bytes).unwrap();
        assert_eq!(again.header, envelope.header);
        assert_eq!(again.items.len(), envelope.items.len());
        for (a, b) in again.items.iter().zip(&envelope.items) {
            assert_eq!(a.payload, b.payload);
            let mut header = b.header.clone();
            header.insert("length".into(), json!(b.payload.len()));
            assert_eq!(a.header, header);
        }
    }

    #[test]
    fn python_fixture() {
        let envelope = parse(PYTHON).unwrap();
        assert_eq!(kinds(&envelope), ["event"]);
        assert_eq!(envelope.event_id().map(str::len), Some(32));
        assert_eq!(envelope.dsn(), None);
        let item = &envelope.items[0];
        assert_eq!(item.header["length"], json!(item.payload.len()));
        let event: Value = serde_json::from_slice(&item.payload).unwrap();
        assert_eq!(event["platform"], "python");
        assert_round_trips(&envelope);
        assert_eq!(kinds(&parse(PYTHON_MESSAGE).unwrap()), ["event"]);
    }

    #[test]
    fn browser_fixtures_have_no_length_and_no_trailing_newline() {
        assert!(!BROWSER.ends_with(b"\n"));
        let envelope = parse(BROWSER).unwrap();
        assert_eq!(kinds(&envelope), ["event"]);
        assert!(!envelope.items[0].header.contains_key("length"));
        let event: Value = serde_json::from_slice(&envelope.items[0].payload).unwrap();
        assert_eq!(event["exception"]["values"][0]["type"], "TypeError");
        assert_eq!(envelope.event_id(), event["event_id"].as_str());
        assert_round_trips(&envelope);
        let session = parse(BROWSER_SESSION).unwrap();
        assert_eq!(kinds(&session), ["session"]);
        assert_eq!(session.event_id(), None);
    }

    #[test]
    fn items_with_and_without_length() {
        let bytes =
            b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k@h/1\"}\n\
{\"type\":\"attachment\",\"length\":10,\"filename\":\"a.bin\"}\n\
\xef\xbb\x00\n\n\xff\r\n\xfe\n\n\
{\"type\":\"event\"}\n\
{\"message\":\"hi\"}\n\
{\"type\":\"client_report\",\"length\":0}\n\
\n\
{\"type\":\"session\"}\n";
        let envelope = parse(bytes).unwrap();
        assert_eq!(envelope.dsn(), Some("https://k@h/1"));
        assert_eq!(
            envelope.event_id(),
            Some("9ec79c33ec9942ab8353589fcb2e04dc")
        );
        assert_eq!(
            kinds(&envelope),
            ["attachment", "event", "client_report", "session"]
        );
        assert_eq!(
            &*envelope.items[0].payload,
            b"\xef\xbb\x00\n\n\xff\r\n\xfe\n"
        );
        assert_eq!(&*envelope.items[1].payload, b"{\"message\":\"hi\"}");
        assert_eq!(&*envelope.items[2].payload, b"");
        assert_eq!(&*envelope.items[3].payload, b"");
        assert_round_trips(&envelope);
    }

    #[test]
    fn tolerated_shapes() {
        let cases: &[(&[u8], &[&str])] = &[
            (b"{}", &[]),
            (b"{}\n", &[]),
            (b"{}\n\n\n", &[]),
            (b"{}\r\n{\"type\":\"event\"}\r\n{}\r\n", &["event"]),
            // no trailing newline after a sized or an unsized payload
            (b"{}\n{\"type\":\"event\",\"length\":2}\n{}", &["event"]),
            (b"{}\n{\"type\":\"event\"}\n{}", &["event"]),
            // a header line at the very end: an item with an empty payload
            (b"{}\n{\"type\":\"event\"}", &["event"]),
            (
                b"{}\n{\"type\":\"a\",\"length\":0}\n\n  \n{\"type\":\"b\",\"length\":null}\n",
                &["a", "b"],
            ),
            (b"{}\n{\"length\":1}\nx\n", &[""]),
        ];
        for (bytes, expected) in cases {
            let envelope = parse(bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"));
            assert_eq!(
                kinds(&envelope),
                *expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
            assert_round_trips(&envelope);
        }
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "envelope is empty"),
            (b" \r\n\n", "envelope is empty"),
            (b"\n{}", "envelope header line is empty"),
            (b"[1]\n", "envelope header is not a JSON object (got an array)"),
            (b"{\"a\":\n", "envelope header is not valid JSON: EOF while parsing a value at line 1 column 5"),
            (b"{}\n{\"type\":\"event\",\"length\":1}\n{}", "envelope item 1: payload of length 1 is not followed by a newline"),
            (
                b"{}\n{\"type\":\"event\",\"length\":2}\n{}\n{\"type\":\"attachment\",\"length\":500}\nabc",
                "envelope item 2: length 500 runs past the end of the body (3 bytes left)",
            ),
            (b"{}\n{\"length\":-1}\n", "envelope item 1: length -1 is not a byte count"),
            (b"{}\n{\"length\":\"3\"}\nabc", "envelope item 1: length \"3\" is not a byte count"),
            (b"{}\n{\"length\":1.5}\n", "envelope item 1: length 1.5 is not a byte count"),
            (b"{}\nnot json\n", "envelope item 1: header is not valid JSON: expected ident at line 1 column 2"),
            (b"{}\n{\"type\":\"event\"}\n{}\n\"event\"\n", "envelope item 2: header is not a JSON object (got a string)"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                detail(bytes),
                *expected,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn rewritten_payload_serializes_with_its_new_length() {
        let mut envelope = parse(BROWSER).unwrap();
        envelope.items[0].payload = Cow::Owned(b"{\"message\":\"rewritten\"}".to_vec());
        let bytes = envelope.to_bytes();
        let again = parse(&bytes).unwrap();
        assert_eq!(&*again.items[0].payload, b"{\"message\":\"rewritten\"}");
        assert_eq!(again.items[0].header["length"], json!(23));
        assert_eq!(again.header, envelope.header);
    }
}
