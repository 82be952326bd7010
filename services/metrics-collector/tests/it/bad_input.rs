//! Bodies of every wrong shape get a clear 400 and leave the service healthy.

use serde_json::json;

use crate::support::{TestServer, T0};

#[test]
fn every_wrong_shape_is_a_clear_400_and_the_service_stays_healthy() {
    let server = TestServer::start(T0, &[]);
    let point = |extra: &str| format!(r#"[{{"name":"n","type":"counter","value":1{extra}}}]"#);
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let batch_1001 = format!(
        "[{}]",
        vec![r#"{"name":"n","type":"gauge","value":1}"#; 1001].join(",")
    );
    let huge_label = point(&format!(r#","labels":{{"k":"{}"}}"#, "x".repeat(200_000)));
    let cases: Vec<(&str, String, &str)> = vec![
        ("not JSON", "name=n&value=1".to_string(), "Invalid JSON"),
        (
            "empty",
            String::new(),
            "Invalid JSON: the request body is empty",
        ),
        ("nested 1,000 levels", deep, "Invalid JSON"),
        (
            "1001 points",
            batch_1001,
            "metrics: a batch holds 1-1000 points (got 1001)",
        ),
        (
            "NaN as a string",
            point(r#","value":"NaN""#).replace(r#""value":1,"#, ""),
            "metrics[0].value: must be a finite number",
        ),
        (
            "Infinity as a string",
            point("").replace("1", "\"Infinity\""),
            "metrics[0].value: must be a finite number",
        ),
        ("1e400", point("").replace(":1", ":1e400"), "Invalid JSON"),
        (
            "200 KB label value",
            huge_label,
            "metrics[0].labels.k: must be at most 200 characters (got 200000)",
        ),
        (
            "unknown type",
            point("").replace("counter", "summary"),
            "metrics[0].type: must be counter, histogram or gauge",
        ),
        (
            "an object without metrics",
            r#"{"points":[]}"#.to_string(),
            "Request body must be a JSON array",
        ),
        (
            "a number",
            "42".to_string(),
            "Request body must be a JSON array",
        ),
    ];
    for (what, body, expected) in cases {
        let response = server.post_raw(body.as_bytes());
        assert_eq!(response.status, 400, "{what}: {}", response.text());
        let detail = response.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            detail.starts_with(expected),
            "{what}: {detail:?} should start with {expected:?}"
        );
        assert!(
            detail.len() < 300,
            "{what}: the detail quotes too much ({} bytes)",
            detail.len()
        );
    }
    assert_eq!(server.rows("points"), 0);
    assert_eq!(server.health()["status"], json!("ok"));
    server.send(&json!([{"name": "n", "type": "counter", "value": 1}]));
}
