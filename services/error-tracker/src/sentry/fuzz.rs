//! Fuzzing the Sentry layer the way `shared::http::fuzz` fuzzes the HTTP engine: the real
//! SDK fixtures (and a few hand-written envelopes) mutated byte-wise and fed to
//! [`envelope::parse`], [`decode::decode`] (also as gzip, intact and corrupted) and
//! [`event::to_report`] on every parsed item; events also mutated as JSON trees, which reach
//! far deeper into the mapping than byte flips that mostly break the JSON. The verdict: no
//! panic, `parse(to_bytes(parse(x)))` gives `parse(x)` back, decoding never exceeds its cap
//! and gives back what was compressed, and every report keeps the limits the store relies
//! on. Each test runs for `MONLIGHT_FUZZ_SECONDS` (default 2) and prints its seed;
//! `MONLIGHT_FUZZ_SEED` replays one.

use std::borrow::Cow;
use std::io::Write;
use std::time::Instant;

use serde_json::{json, Map, Value};

use shared::fuzzing::{self, Mutator, Rng};

use super::{decode, envelope, event};
use crate::ingest::{MAX_MESSAGE_BYTES, MAX_TRACEBACK_BYTES};

/// Envelopes the byte mutations start from: every captured fixture plus hand-written shapes.
const SEEDS: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/sentry/python-chained.envelope"),
    include_bytes!("../../tests/fixtures/sentry/python-message.envelope"),
    include_bytes!("../../tests/fixtures/sentry/browser-typeerror.envelope"),
    include_bytes!("../../tests/fixtures/sentry/browser-session.envelope"),
    b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k@h/1\"}\n{\"type\":\"attachment\",\"length\":5}\n\n\x00\xff\n\n{\"type\":\"event\"}\n{\"message\":\"m\",\"fingerprint\":[\"{{ default }}\",\"x\"]}\n",
    b"{}\n{\"type\":\"event\",\"length\":63}\n{\"platform\":\"java\",\"exception\":[{\"type\":\"E\",\"module\":\"a.b\"}]}\n",
];

/// Event JSON the tree mutations start from.
const EVENTS: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/sentry/python-chained.store.json"),
    br#"{"platform":"go","exception":{"values":[{"type":"*E","value":"v","stacktrace":{"frames":[{"module":"m","function":"f","abs_path":"/a.go","lineno":3,"in_app":true}]}}]},"request":{"headers":[["A","b"]]},"tags":[["k","v"]]}"#,
    br#"{"platform":"javascript","logentry":{"message":"%s","formatted":"x"},"threads":{"values":[{"current":true,"stacktrace":{"frames":[{"filename":"a.js","lineno":1,"colno":2}]}}]},"user":{"id":1},"fingerprint":["{{default}}"]}"#,
];

/// Byte strings that matter to the envelope format, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\n\n",
    b"{}",
    b"{\"type\":\"event\"}\n",
    b"{\"type\":\"event\",\"length\":",
    b"\"length\":0,",
    b"\"length\":99999999999999999999,",
    b"\"length\":-1,",
    b"12",
    b"null",
    b"[]",
    b"\"exception\":",
    b"\"values\":[",
    b"\"frames\":[{}],",
    b"\"fingerprint\":[\"{{ default }}\"],",
    b"\"platform\":\"python\",",
    b"\"",
    b"\\",
    b"\xff\xfe",
    b"\xf0\x9f\x92\xa5",
];

/// Byte mutations of the seeds; cuts of up to 64 bytes.
const MUTATOR: Mutator<'static> = Mutator {
    seeds: SEEDS,
    tokens: TOKENS,
    max_cut: 64,
};

/// A random JSON value of the kinds an event's fields may wrongly hold.
fn random_value(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next_u64() as i64),
        3 => json!(-1.5e300),
        4 => json!(""),
        5 => json!("{{ default }}"),
        6 => json!("💥\n    at f (a.js:1:2)\n  File \"x.py\", line 3"),
        7 => json!([]),
        8 => json!({}),
        _ => json!([["a", 1], ["b"], 2]),
    }
}

/// Field names an event's objects use, so that mutations hit meaningful places.
const KEYS: &[&str] = &[
    "exception",
    "values",
    "type",
    "value",
    "module",
    "stacktrace",
    "frames",
    "function",
    "filename",
    "abs_path",
    "lineno",
    "colno",
    "in_app",
    "platform",
    "message",
    "logentry",
    "formatted",
    "fingerprint",
    "request",
    "headers",
    "url",
    "method",
    "query_string",
    "user",
    "id",
    "tags",
    "extra",
    "contexts",
    "environment",
    "release",
    "sdk",
    "threads",
    "mechanism",
    "source",
    "event_id",
    "session_id",
];

/// `value` changed in place: a random node replaced, emptied, or given a new field.
fn mutate_json(rng: &mut Rng, value: &mut Value, depth: usize) {
    let go_deeper = depth < 12 && rng.below(4) != 0;
    match value {
        Value::Object(map) if go_deeper && !map.is_empty() => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .cloned()
                .unwrap_or_default();
            if let Some(child) = map.get_mut(&key) {
                mutate_json(rng, child, depth + 1);
            }
        }
        Value::Array(items) if go_deeper && !items.is_empty() => {
            let i = rng.below(items.len());
            mutate_json(rng, &mut items[i], depth + 1);
        }
        Value::Object(map) if rng.below(2) == 0 => {
            let key = KEYS[rng.below(KEYS.len())];
            map.insert(key.to_string(), random_value(rng));
        }
        Value::Array(items) if rng.below(2) == 0 => {
            let copy = items.first().cloned().unwrap_or(Value::Null);
            items.push(copy);
        }
        _ => *value = random_value(rng),
    }
}

/// Maps `event` and checks the limits the store relies on.
fn check_event(event_json: &Value) {
    let Ok(report) = event::to_report(event_json, "fuzz") else {
        return;
    };
    assert_eq!(report.fingerprint.len(), 32);
    assert!(report.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    let types = report.exception_type.chars().count();
    assert!((1..=200).contains(&types), "{report:?}");
    assert!((1..=20).contains(&report.environment.chars().count()));
    assert!(report.message.len() <= MAX_MESSAGE_BYTES);
    assert!(report.traceback.len() <= MAX_TRACEBACK_BYTES);
    assert!(report
        .request_url
        .as_ref()
        .is_none_or(|u| u.chars().count() <= 2000));
    assert!(report
        .request_method
        .as_ref()
        .is_none_or(|m| m.chars().count() <= 10));
    assert!(report
        .user_id
        .as_ref()
        .is_none_or(|u| u.chars().count() <= 200));
    for json in [&report.extra, &report.request_headers]
        .into_iter()
        .flatten()
    {
        assert!(
            serde_json::from_str::<Map<String, Value>>(json).is_ok(),
            "{json}"
        );
    }
    let _ = event::event_id(event_json);
}

/// Parses `bytes` as an envelope; when it parses, maps its items and checks the round trip.
fn check_envelope(bytes: &[u8]) {
    let Ok(parsed) = envelope::parse(bytes) else {
        return;
    };
    let _ = (parsed.dsn(), parsed.event_id());
    for item in &parsed.items {
        if let Ok(value) = serde_json::from_slice::<Value>(&item.payload) {
            let _ = event::is_error_item(item.kind());
            check_event(&value);
        }
    }
    let written = parsed.to_bytes();
    let again = envelope::parse(&written)
        .unwrap_or_else(|e| panic!("to_bytes output does not parse: {e}: {written:?}"));
    assert_eq!(again.header, parsed.header);
    assert_eq!(again.items.len(), parsed.items.len());
    for (a, b) in again.items.iter().zip(&parsed.items) {
        assert_eq!(a.payload, b.payload);
        let mut header = b.header.clone();
        header.insert("length".into(), json!(b.payload.len()));
        assert_eq!(a.header, header);
    }
}

/// Decodes `bytes` (intact gzip of them, corrupted gzip, and as is under every encoding).
fn check_decode(rng: &mut Rng, bytes: &[u8]) {
    let max = if rng.below(2) == 0 {
        bytes.len() + 1
    } else {
        rng.below(bytes.len() + 1)
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes)
        .unwrap_or_else(|e| unreachable!("writing to a Vec: {e}"));
    let gz = gz
        .finish()
        .unwrap_or_else(|e| unreachable!("writing to a Vec: {e}"));
    match decode::decode(Some("gzip"), &gz, max) {
        Ok(decoded) => assert_eq!(&*decoded, bytes),
        Err(e) => assert!(e.status() == 413 && bytes.len() > max, "{e}"),
    }
    let corrupt = MUTATOR.mutate(rng, gz);
    for encoding in [Some("gzip"), Some("deflate"), Some("br")] {
        for body in [&corrupt[..], bytes] {
            if let Ok(decoded) = decode::decode(encoding, body, max) {
                assert!(decoded.len() <= max);
                assert!(matches!(decoded, Cow::Owned(_)));
            }
        }
    }
    if let Ok(decoded) = decode::decode(None, bytes, max) {
        assert!(matches!(decoded, Cow::Borrowed(_)));
    }
}

#[test]
fn fuzz_envelopes_and_bodies_never_panic_and_round_trip() {
    let mut rng = Rng::new(fuzzing::seed("sentry fuzz_envelopes"));
    for bytes in SEEDS {
        check_envelope(bytes);
    }
    let deadline = Instant::now() + fuzzing::budget();
    let mut cases = 0u64;
    while Instant::now() < deadline {
        let bytes = MUTATOR.mutated_seed(&mut rng);
        check_envelope(&bytes);
        if cases.is_multiple_of(8) {
            check_decode(&mut rng, &bytes);
        }
        cases += 1;
    }
    eprintln!("sentry fuzz_envelopes: {cases} cases");
}

#[test]
fn fuzz_events_never_panic_and_keep_the_limits() {
    let mut rng = Rng::new(fuzzing::seed("sentry fuzz_events"));
    let events: Vec<Value> = EVENTS
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap_or_else(|err| panic!("seed event: {err}")))
        .collect();
    let deadline = Instant::now() + fuzzing::budget();
    let mut cases = 0u64;
    while Instant::now() < deadline {
        let mut value = events[rng.below(events.len())].clone();
        for _ in 0..=rng.below(6) {
            mutate_json(&mut rng, &mut value, 0);
        }
        check_event(&value);
        cases += 1;
    }
    eprintln!("sentry fuzz_events: {cases} cases");
}
