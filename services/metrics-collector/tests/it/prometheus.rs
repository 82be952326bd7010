//! `GET /metrics` read by a real Prometheus parser: `prometheus_client`'s
//! `text_string_to_metric_families` (PyPI `prometheus-client`), in the Python that
//! `MONLIGHT_PYTHON` names (scripts/test.sh makes a venv with it), else `python3` if it has
//! the package.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::support::{point, TestServer, KEY, T0};

/// Parses the exposition and prints `name|type|sample name|labels as JSON|value` per sample.
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        print(json.dumps([family.name, family.type, s.name, s.labels, s.value]))
"#;

fn python() -> Option<String> {
    if let Ok(python) = std::env::var("MONLIGHT_PYTHON") {
        return Some(python);
    }
    let has_parser = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    has_parser.then(|| "python3".to_string())
}

#[test]
fn the_exposition_parses_with_the_prometheus_client_parser() {
    let Some(python) = python() else {
        eprintln!("SKIPPED: no prometheus_client (set MONLIGHT_PYTHON, as scripts/test.sh does)");
        return;
    };
    let server = TestServer::start(T0, &[]);
    let nasty = "quote \" backslash \\ newline \n end";
    server.send(&json!([
        point(
            "http.requests-total",
            "counter",
            2.0,
            T0,
            json!({"route": nasty, "9bad key": "x"})
        ),
        point("queue_depth", "gauge", 4.5, T0, json!({"queue": "emails"})),
        point("latency_ms", "histogram", 10.0, T0, json!({"route": "/a"})),
        point("latency_ms", "histogram", 20.0, T0, json!({"route": "/a"})),
        point("web \"vitals\"\\lcp", "histogram", 1.0, T0, json!({})),
    ]));
    let response = server.request("GET", "/metrics", &[("X-API-Key", KEY)], None);
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain; version=0.0.4"));
    let mut child = Command::new(&python)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&response.body)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        response.text()
    );
    let samples: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |name: &str, label: (&str, &str)| {
        samples
            .iter()
            .find(|s| s[2] == json!(name) && s[3][label.0] == json!(label.1))
            .unwrap_or_else(|| panic!("no sample {name} with {label:?} in {samples:#?}"))
    };
    let requests = find("http_requests_total", ("route", nasty));
    let value = |sample: &Value| sample[4].as_f64().unwrap_or(f64::NAN);
    assert_eq!(
        (requests[1].clone(), value(requests)),
        (json!("gauge"), 2.0)
    );
    assert_eq!(requests[3]["_9bad_key"], json!("x"));
    assert_eq!(requests[3]["project"], json!("default"));
    assert_eq!(value(find("queue_depth", ("queue", "emails"))), 4.5);
    let p50 = find("latency_ms", ("quantile", "0.5"));
    assert_eq!((p50[1].clone(), value(p50)), (json!("summary"), 10.0));
    assert_eq!(value(find("latency_ms_count", ("route", "/a"))), 2.0);
    assert_eq!(
        value(find("web__vitals__lcp_sum", ("project", "default"))),
        1.0
    );
    let own = samples
        .iter()
        .find(|s| s[2] == json!("monlight_collector_points_received_24h"));
    assert_eq!(own.map(value), Some(5.0));
}
