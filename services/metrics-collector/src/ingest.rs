//! Validating a batch of points (`POST /api/metrics`) into a [`Batch`]. The whole batch is
//! checked before anything is stored; the first bad point is a 400 naming its index and field,
//! e.g. `metrics[3].value: must be a finite number`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::http::ApiError;
use shared::time::parse_rfc3339_ms;

/// Points in one batch at most.
pub const MAX_BATCH: usize = 1000;
/// Labels on one point at most.
pub const MAX_LABELS: usize = 20;
/// Longest label key, in characters.
pub const MAX_LABEL_KEY: usize = 100;
/// Longest label value, in characters.
pub const MAX_LABEL_VALUE: usize = 200;
/// Longest metric name, in characters.
pub const MAX_NAME: usize = 200;
/// Longest project, in characters.
pub const MAX_PROJECT: usize = 100;
/// The project of points that name none.
pub const DEFAULT_PROJECT: &str = "default";
/// How far in the future a timestamp may be.
const MAX_FUTURE_MS: i64 = 3_600_000;

/// What a metric measures, and so how it is rolled up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Increments: rolled up as their sum (the rate per second is sum/60 per minute).
    Counter,
    /// Observations: rolled up with percentiles.
    Histogram,
    /// A level: rolled up with the latest value (`last`).
    Gauge,
}

impl Kind {
    /// The name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Histogram => "histogram",
            Kind::Gauge => "gauge",
        }
    }

    /// Parses `counter`, `histogram` or `gauge`.
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "counter" => Some(Kind::Counter),
            "histogram" => Some(Kind::Histogram),
            "gauge" => Some(Kind::Gauge),
            _ => None,
        }
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the series dictionary: a name, type, project and canonical label set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub name: String,
    pub kind: Kind,
    pub project: String,
    /// The labels as canonical JSON: keys sorted, values strings (see [`canonical_labels`]).
    pub labels: String,
}

/// A validated point, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Index of its series in [`Batch::series`].
    pub series: usize,
    /// Epoch milliseconds.
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A validated batch: each distinct series once, and the points referring to them (so a
/// batch waiting for the writer holds each label set once, not once per point).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    pub series: Vec<SeriesKey>,
    pub points: Vec<Point>,
}

/// The limits a batch is checked against that depend on the time and the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// "Now", the default timestamp.
    pub now_ms: i64,
    /// The oldest timestamp accepted: anything older would be deleted by the hour tier's
    /// retention at once, so it is refused rather than silently dropped.
    pub oldest_ms: i64,
}

/// Validates a whole batch given as JSON: an array of 1–1000 points or `{"metrics": [...]}`.
pub fn parse_batch(body: &Value, window: Window) -> Result<Batch, ApiError> {
    let items = match body {
        Value::Array(items) => items,
        Value::Object(fields) => match fields.get("metrics") {
            Some(Value::Array(items)) => items,
            _ => return Err(batch_shape_error()),
        },
        _ => return Err(batch_shape_error()),
    };
    check_size(items.len())?;
    let mut batch = BatchBuilder::default();
    for (index, item) in items.iter().enumerate() {
        batch.push(index, item, window)?;
    }
    Ok(batch.batch)
}

/// Validates a whole batch straight from the request body. Each point is parsed into a JSON
/// value of its own, one at a time: a 1000-point batch never exists as one JSON tree (about
/// nine times the body's size).
pub fn parse_body(body: &[u8], window: Window) -> Result<Batch, ApiError> {
    /// `{"metrics": [...]}`, each point kept as its text.
    #[derive(serde::Deserialize)]
    struct Wrapped {
        metrics: Vec<Box<RawValue>>,
    }
    let invalid = |e: serde_json::Error| ApiError::bad_request(format!("Invalid JSON: {e}"));
    let items = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => {
            return Err(ApiError::bad_request(
                "Invalid JSON: the request body is empty",
            ))
        }
        Some(b'[') => serde_json::from_slice::<Vec<Box<RawValue>>>(body).map_err(invalid)?,
        Some(b'{') => match serde_json::from_slice::<Wrapped>(body) {
            Ok(wrapped) => wrapped.metrics,
            Err(e) if e.is_data() => return Err(batch_shape_error()),
            Err(e) => return Err(invalid(e)),
        },
        Some(_) => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => return Err(batch_shape_error()),
            Err(e) => return Err(invalid(e)),
        },
    };
    check_size(items.len())?;
    let mut batch = BatchBuilder::default();
    for (index, item) in items.iter().enumerate() {
        let value: Value = serde_json::from_str(item.get()).map_err(invalid)?;
        batch.push(index, &value, window)?;
    }
    Ok(batch.batch)
}

fn check_size(points: usize) -> Result<(), ApiError> {
    if points == 0 || points > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "metrics: a batch holds 1-{MAX_BATCH} points (got {points})"
        )));
    }
    Ok(())
}

/// A batch being validated point by point, each series kept once.
#[derive(Default)]
struct BatchBuilder {
    batch: Batch,
    index_of: HashMap<SeriesKey, usize>,
}

impl BatchBuilder {
    fn push(&mut self, index: usize, item: &Value, window: Window) -> Result<(), ApiError> {
        let (series, timestamp_ms, value) = parse_point(item, window)
            .map_err(|e| ApiError::bad_request(format!("metrics[{index}].{e}")))?;
        let series = match self.index_of.get(&series) {
            Some(&i) => i,
            None => {
                self.batch.series.push(series.clone());
                self.index_of.insert(series, self.batch.series.len() - 1);
                self.batch.series.len() - 1
            }
        };
        self.batch.points.push(Point {
            series,
            timestamp_ms,
            value,
        });
        Ok(())
    }
}

fn batch_shape_error() -> ApiError {
    ApiError::bad_request(format!(
        "Request body must be a JSON array of 1-{MAX_BATCH} points or {{\"metrics\": [...]}}"
    ))
}

/// A point's problem: `field: what is wrong` (the caller adds `metrics[i].`).
#[derive(Debug, PartialEq)]
struct FieldError(String);

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn field_error(field: &str, problem: impl fmt::Display) -> FieldError {
    FieldError(format!("{field}: {problem}"))
}

/// A point's series, timestamp (epoch ms) and value.
fn parse_point(item: &Value, window: Window) -> Result<(SeriesKey, i64, f64), FieldError> {
    let Value::Object(fields) = item else {
        return Err(FieldError("point: must be a JSON object".to_string()));
    };
    let name = string_field(fields, "name", 1, MAX_NAME)?
        .ok_or_else(|| field_error("name", "is required"))?;
    let kind = match present(fields, "type") {
        None => return Err(field_error("type", "is required")),
        Some(Value::String(text)) => Kind::parse(text).ok_or_else(|| {
            field_error(
                "type",
                format!(
                    "must be counter, histogram or gauge (got {:?})",
                    shorten(text)
                ),
            )
        })?,
        Some(_) => return Err(field_error("type", "must be a string")),
    };
    let value = match present(fields, "value") {
        None => return Err(field_error("value", "is required")),
        Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
        Some(_) => None,
    }
    .ok_or_else(|| field_error("value", "must be a finite number"))?;
    let project = string_field(fields, "project", 0, MAX_PROJECT)?
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT.to_string());
    let labels = match present(fields, "labels") {
        None => "{}".to_string(),
        Some(Value::Object(labels)) => canonical_labels(labels)?,
        Some(_) => return Err(field_error("labels", "must be an object")),
    };
    let timestamp_ms = match present(fields, "timestamp") {
        None => window.now_ms,
        Some(raw) => timestamp(raw, window)?,
    };
    let series = SeriesKey {
        name,
        kind,
        project,
        labels,
    };
    Ok((series, timestamp_ms, value))
}

/// The label set as canonical JSON text: keys sorted, every value a string (`1`, `"1"` →
/// `"1"`; `true`, `"true"` → `"true"`), so the same set is always the same series.
fn canonical_labels(labels: &Map<String, Value>) -> Result<String, FieldError> {
    if labels.len() > MAX_LABELS {
        return Err(field_error(
            "labels",
            format!("at most {MAX_LABELS} labels (got {})", labels.len()),
        ));
    }
    let mut canonical = BTreeMap::new();
    for (key, value) in labels {
        let keys = key.chars().count();
        if keys == 0 || keys > MAX_LABEL_KEY {
            return Err(field_error(
                "labels",
                format!("keys must be 1-{MAX_LABEL_KEY} characters (got {keys})"),
            ));
        }
        let field = format!("labels.{}", shorten(key));
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(field_error(&field, "must be a string, number or boolean")),
        };
        let chars = text.chars().count();
        if chars > MAX_LABEL_VALUE {
            return Err(field_error(
                &field,
                format!("must be at most {MAX_LABEL_VALUE} characters (got {chars})"),
            ));
        }
        canonical.insert(key.as_str(), text);
    }
    serde_json::to_string(&canonical).map_err(|e| field_error("labels", e))
}

/// RFC 3339 with any offset, or Unix seconds (fractions kept to the millisecond).
fn timestamp(raw: &Value, window: Window) -> Result<i64, FieldError> {
    let expected = "must be an RFC 3339 time or Unix seconds";
    let ms = match raw {
        Value::String(text) => parse_rfc3339_ms(text),
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && s.abs() < 1e13)
            .map(|s| (s * 1000.0).round() as i64),
        _ => None,
    }
    .ok_or_else(|| field_error("timestamp", expected))?;
    if ms > window.now_ms + MAX_FUTURE_MS {
        return Err(field_error(
            "timestamp",
            "is more than 1 hour in the future",
        ));
    }
    if ms < window.oldest_ms {
        return Err(field_error(
            "timestamp",
            "is older than the hour rollups' retention (RETENTION_HOURLY)",
        ));
    }
    Ok(ms)
}

/// A field's value; `null` counts as absent.
fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

/// An optional string of `min`-`max` characters.
fn string_field(
    fields: &Map<String, Value>,
    name: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match present(fields, name) {
        None => Ok(None),
        Some(Value::String(text)) => {
            let chars = text.chars().count();
            if chars < min || chars > max {
                Err(field_error(
                    name,
                    format!("must be {min}-{max} characters (got {chars})"),
                ))
            } else {
                Ok(Some(text.clone()))
            }
        }
        Some(_) => Err(field_error(name, "must be a string")),
    }
}

/// A client's text quoted back in an error, cut to 40 characters.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 40 {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(40).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_780_000_000_000;
    const WINDOW: Window = Window {
        now_ms: NOW,
        oldest_ms: NOW - 30 * 86_400_000,
    };

    fn detail(body: Value) -> String {
        parse_batch(&body, WINDOW).unwrap_err().detail().to_string()
    }

    fn point(extra: Value) -> Value {
        let mut p = json!({"name": "http_requests_total", "type": "counter", "value": 1});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    #[test]
    fn both_body_shapes_and_defaults() {
        let batch = parse_batch(&json!([point(json!({}))]), WINDOW).unwrap();
        assert_eq!(batch.points[0].timestamp_ms, NOW);
        assert_eq!(batch.series[0].project, "default");
        assert_eq!(batch.series[0].labels, "{}");
        let wrapped = parse_batch(&json!({"metrics": [point(json!({}))]}), WINDOW).unwrap();
        assert_eq!(wrapped, batch);
    }

    #[test]
    fn the_body_parser_agrees_with_the_value_parser() {
        let bodies = [
            json!([point(json!({"labels": {"a": 1}})), point(json!({}))]),
            json!({"metrics": [point(json!({}))]}),
            json!([point(json!({"value": "x"}))]),
            json!({"points": []}),
            json!(42),
            json!([]),
        ];
        for body in bodies {
            let from_value = parse_batch(&body, WINDOW).map_err(|e| e.detail().to_string());
            let bytes = body.to_string().into_bytes();
            let from_body = parse_body(&bytes, WINDOW).map_err(|e| e.detail().to_string());
            assert_eq!(from_body, from_value, "{body}");
        }
        for bad in [&b""[..], b"  ", b"[1,", b"{\"metrics\": [}", b"nope"] {
            let detail = parse_body(bad, WINDOW).unwrap_err().detail().to_string();
            assert!(detail.starts_with("Invalid JSON"), "{detail}");
        }
    }

    #[test]
    fn labels_are_canonical() {
        let a = point(json!({"labels": {"b": 1, "a": true, "c": "x"}}));
        let b = point(json!({"labels": {"c": "x", "a": "true", "b": "1"}}));
        let batch = parse_batch(&json!([a, b]), WINDOW).unwrap();
        assert_eq!(batch.series.len(), 1, "one label set, stored once");
        assert_eq!(batch.series[0].labels, r#"{"a":"true","b":"1","c":"x"}"#);
        assert_eq!((batch.points[0].series, batch.points[1].series), (0, 0));
    }

    #[test]
    fn timestamps_in_both_forms() {
        let rfc = point(json!({"timestamp": "2026-05-28T22:26:40+02:00"}));
        let unix = point(json!({"timestamp": 1_779_999_999.5}));
        let points = parse_batch(&json!([rfc, unix]), WINDOW).unwrap().points;
        assert_eq!(points[0].timestamp_ms, NOW);
        assert_eq!(points[1].timestamp_ms, 1_779_999_999_500);
    }

    #[test]
    fn each_rule_names_the_index_and_field() {
        let ok = point(json!({}));
        let cases = [
            (json!({"type": "counter", "value": 1}), "metrics[1].name: is required"),
            (point(json!({"name": ""})), "metrics[1].name: must be 1-200 characters (got 0)"),
            (point(json!({"type": "summary"})), "metrics[1].type: must be counter, histogram or gauge (got \"summary\")"),
            (point(json!({"value": "NaN"})), "metrics[1].value: must be a finite number"),
            (point(json!({"value": "1"})), "metrics[1].value: must be a finite number"),
            (point(json!({"labels": []})), "metrics[1].labels: must be an object"),
            (point(json!({"labels": {"k": "v".repeat(201)}})), "metrics[1].labels.k: must be at most 200 characters (got 201)"),
            (point(json!({"labels": {"k": null}})), "metrics[1].labels.k: must be a string, number or boolean"),
            (point(json!({"labels": {"": "v"}})), "metrics[1].labels: keys must be 1-100 characters (got 0)"),
            (point(json!({"project": 7})), "metrics[1].project: must be a string"),
            (point(json!({"timestamp": "yesterday"})), "metrics[1].timestamp: must be an RFC 3339 time or Unix seconds"),
            (point(json!({"timestamp": (NOW + 3_700_000) / 1000})), "metrics[1].timestamp: is more than 1 hour in the future"),
            (point(json!({"timestamp": (NOW - 31 * 86_400_000) / 1000})), "metrics[1].timestamp: is older than the hour rollups' retention (RETENTION_HOURLY)"),
            (json!(7), "metrics[1].point: must be a JSON object"),
        ];
        for (bad, expected) in cases {
            assert_eq!(detail(json!([ok.clone(), bad])), expected);
        }
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(
            detail(json!([point(json!({"labels": many}))])),
            "metrics[0].labels: at most 20 labels (got 21)"
        );
    }

    #[test]
    fn batch_size_and_shape() {
        assert_eq!(
            detail(json!([])),
            "metrics: a batch holds 1-1000 points (got 0)"
        );
        let big: Vec<Value> = (0..1001).map(|_| point(json!({}))).collect();
        assert_eq!(
            detail(json!(big)),
            "metrics: a batch holds 1-1000 points (got 1001)"
        );
        for shape in [json!({"points": []}), json!("x"), json!(null)] {
            assert!(detail(shape).starts_with("Request body must be a JSON array"));
        }
    }
}
