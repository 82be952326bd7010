//! `GET /metrics`: the collector's own figures and the latest bucket of every series in the
//! Prometheus text exposition format (0.0.4), so a Prometheus or VictoriaMetrics server can
//! scrape Monlight.
//!
//! Each metric name becomes a family, its characters outside `[a-zA-Z0-9_:]` replaced by `_`.
//! Gauges expose their latest value; counters the sum of their latest minute (Monlight stores
//! increments, not running totals, so they are exposed as gauges: a Prometheus `counter`
//! must never go down); histograms become summaries (`quantile` 0.5 … 0.99, `_sum`,
//! `_count` of the latest bucket). Labels keep their values (escaped) and get the series'
//! `project`; a label key that is not a valid Prometheus name is rewritten the same way.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::ingest::Kind;
use crate::read::Series;
use crate::rollup::{Rollup, PERCENTILES};

/// `content-type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The collector's own figures.
pub struct Own {
    /// Points received in the last 24 hours.
    pub points_24h: i64,
    /// Series in the dictionary.
    pub series: usize,
    /// Time of the last aggregation run, epoch ms.
    pub last_aggregation_ms: Option<i64>,
}

/// The prefix of the collector's own families; user families with these names are left out.
const OWN_PREFIX: &str = "monlight_collector_";

/// The whole exposition.
pub fn exposition(own: &Own, series: &[Series], latest: &HashMap<i64, (i64, Rollup)>) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "monlight_collector_up",
        "gauge",
        "1 while the collector answers",
    );
    out.push_str("monlight_collector_up 1\n");
    family(
        &mut out,
        "monlight_collector_points_received_24h",
        "gauge",
        "points received in the last 24 hours",
    );
    let _ = writeln!(
        out,
        "monlight_collector_points_received_24h {}",
        own.points_24h
    );
    family(
        &mut out,
        "monlight_collector_series",
        "gauge",
        "series stored",
    );
    let _ = writeln!(out, "monlight_collector_series {}", own.series);
    if let Some(ms) = own.last_aggregation_ms {
        family(
            &mut out,
            "monlight_collector_last_aggregation_timestamp_seconds",
            "gauge",
            "time of the last aggregation run",
        );
        let _ = writeln!(
            out,
            "monlight_collector_last_aggregation_timestamp_seconds {}",
            number(ms as f64 / 1000.0)
        );
    }

    // Families by exposed name; a name used by two types gets the type appended the second
    // time, so one family never mixes types.
    let mut families: BTreeMap<String, (Kind, Vec<&Series>)> = BTreeMap::new();
    for s in series.iter().filter(|s| latest.contains_key(&s.id)) {
        let mut name = metric_name(&s.name);
        if name.starts_with(OWN_PREFIX) {
            continue;
        }
        if families.get(&name).is_some_and(|(kind, _)| *kind != s.kind) {
            name = format!("{name}_{}", s.kind);
        }
        families
            .entry(name)
            .or_insert((s.kind, Vec::new()))
            .1
            .push(s);
    }
    for (name, (kind, members)) in families {
        let (prom_type, help) = match kind {
            Kind::Gauge => ("gauge", "Monlight gauge: latest value"),
            Kind::Counter => ("gauge", "Monlight counter: sum of its latest minute"),
            Kind::Histogram => ("summary", "Monlight histogram: its latest bucket"),
        };
        family(&mut out, &name, prom_type, help);
        for s in members {
            let Some((_, rollup)) = latest.get(&s.id) else {
                continue;
            };
            let labels = labels(s);
            match kind {
                Kind::Gauge => sample(&mut out, &name, &labels, None, rollup.last),
                Kind::Counter => sample(&mut out, &name, &labels, None, rollup.sum),
                Kind::Histogram => {
                    if let Some(values) = rollup.percentiles() {
                        for (p, value) in PERCENTILES.iter().zip(values) {
                            let q = number(f64::from(*p) / 100.0);
                            sample(&mut out, &name, &labels, Some(&q), value);
                        }
                    }
                    sample(&mut out, &format!("{name}_sum"), &labels, None, rollup.sum);
                    let count = rollup.count as f64;
                    sample(&mut out, &format!("{name}_count"), &labels, None, count);
                }
            }
        }
    }
    out
}

fn family(out: &mut String, name: &str, prom_type: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {prom_type}");
}

/// One sample line; `quantile` is added last when given.
fn sample(
    out: &mut String,
    name: &str,
    labels: &[(String, String)],
    quantile: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(q) = quantile {
        pairs.push(("quantile", q));
    }
    if !pairs.is_empty() {
        out.push('{');
        for (i, (key, value)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape_label_value(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// The series' labels as Prometheus labels: `project` first, then its own, each key made a
/// valid label name; `project`, `quantile` and `__*` of the series become `label_<key>`.
/// Keys that collide after rewriting keep the first value.
fn labels(series: &Series) -> Vec<(String, String)> {
    let mut out = vec![("project".to_string(), series.project.clone())];
    for (key, value) in &series.labels {
        let mut name = label_name(key);
        if name == "project" || name == "quantile" || name.starts_with("__") {
            name = format!("label_{name}");
        }
        if !out.iter().any(|(k, _)| *k == name) {
            out.push((name, value.clone()));
        }
    }
    out
}

/// A metric name: characters outside `[a-zA-Z0-9_:]` become `_`; a leading digit gets `_`.
pub fn metric_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label name: characters outside `[a-zA-Z0-9_]` become `_`; a leading digit gets `_`.
fn label_name(name: &str) -> String {
    sanitize(name, |c| c.is_ascii_alphanumeric() || c == '_')
}

fn sanitize(name: &str, allowed: impl Fn(char) -> bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as Prometheus writes it (`NaN`, `+Inf`, `-Inf` for the special ones).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(id: i64, name: &str, kind: Kind, labels: &[(&str, &str)]) -> Series {
        Series {
            id,
            name: name.to_string(),
            kind,
            project: "shop".to_string(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn names_labels_and_values_are_made_valid() {
        assert_eq!(metric_name("http.requests-total"), "http_requests_total");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(metric_name("a:b_c"), "a:b_c");
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let s = series(
            1,
            "x",
            Kind::Gauge,
            &[
                ("project", "p"),
                ("quantile", "q"),
                ("a-b", "1"),
                ("a.b", "2"),
            ],
        );
        let got = labels(&s);
        assert_eq!(
            got,
            [
                ("project".to_string(), "shop".to_string()),
                ("a_b".to_string(), "1".to_string()),
                ("label_project".to_string(), "p".to_string()),
                ("label_quantile".to_string(), "q".to_string()),
            ]
        );
    }

    #[test]
    fn each_type_is_exposed_and_a_name_never_mixes_types() {
        let all = vec![
            series(1, "queue.depth", Kind::Gauge, &[]),
            series(2, "queue_depth", Kind::Counter, &[]),
            series(3, "latency", Kind::Histogram, &[("route", "/a")]),
            series(4, "monlight_collector_up", Kind::Gauge, &[]),
        ];
        let mut points = vec![(1, 2.0), (2, 4.0)];
        let latest: HashMap<i64, (i64, Rollup)> = [1, 2, 3, 4]
            .into_iter()
            .map(|id| {
                let kind = all[id as usize - 1].kind;
                (id, (0, Rollup::from_points(kind, &mut points).unwrap()))
            })
            .collect();
        let own = Own {
            points_24h: 7,
            series: 4,
            last_aggregation_ms: Some(1_500),
        };
        let text = exposition(&own, &all, &latest);
        for line in [
            "monlight_collector_points_received_24h 7",
            "monlight_collector_last_aggregation_timestamp_seconds 1.5",
            "# TYPE queue_depth gauge",
            "queue_depth{project=\"shop\"} 4",
            "# TYPE queue_depth_counter gauge",
            "queue_depth_counter{project=\"shop\"} 6",
            "# TYPE latency summary",
            "latency{project=\"shop\",route=\"/a\",quantile=\"0.5\"} 2",
            "latency_count{project=\"shop\",route=\"/a\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let up = text
            .lines()
            .filter(|l| l.starts_with("monlight_collector_up "));
        assert_eq!(
            up.count(),
            1,
            "the user's family of the same name is left out: {text}"
        );
    }
}
