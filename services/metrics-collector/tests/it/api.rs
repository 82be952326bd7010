//! The HTTP API: ingest validation (nothing stored on any error), canonical labels, subset
//! match, group-by, live current minute, names, projects, the dashboard's p75 ratings, auth.

use serde_json::{json, Value};
use shared::time::format_ms;

use crate::support::{counts, point, TestServer, HOUR, KEY, MINUTE, T0};

/// A batch with one bad point is refused whole, naming the point and the field.
#[test]
fn one_bad_point_refuses_the_batch_and_names_its_index_and_field() {
    let server = TestServer::start(T0, &[]);
    let good = point("orders_total", "counter", 1.0, T0, json!({}));
    let mut bad = good.clone();
    bad["value"] = json!("NaN");
    let batch = json!([good, good, good, bad]);
    let response = server.post_raw(batch.to_string().as_bytes());
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({"detail": "metrics[3].value: must be a finite number"})
    );
    assert_eq!(server.get("/api/metrics/names"), json!({"metrics": []}));
    assert_eq!(server.rows("points"), 0);
    assert_eq!(server.health()["metrics_received_24h"], json!(0));
}

/// `1` and `"1"`, `true` and `"true"`, keys in any order: one label set, one series.
#[test]
fn labels_are_canonical_so_equal_sets_are_one_series() {
    let server = TestServer::start(T0, &[]);
    server.send(&json!([
        point(
            "hits",
            "counter",
            1.0,
            T0,
            json!({"code": 200, "cached": true})
        ),
        point(
            "hits",
            "counter",
            1.0,
            T0,
            json!({"cached": "true", "code": "200"})
        ),
    ]));
    let answer = server.series("hits", "period=1h");
    assert_eq!(answer["series"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(
        answer["series"][0]["labels"],
        json!({"cached": "true", "code": "200"})
    );
    assert_eq!(answer["data"][0]["count"], json!(2));
    assert_eq!(server.rows("series"), 1);
}

fn seed_requests(server: &TestServer) {
    let mut points = Vec::new();
    for (method, route, status, n) in [
        ("GET", "/a", 200, 3),
        ("GET", "/b", 500, 2),
        ("POST", "/a", 200, 1),
    ] {
        for i in 0..n {
            let labels = json!({"method": method, "route": route, "status": status});
            points.push(point(
                "http_requests_total",
                "counter",
                1.0,
                T0 + i * 1000,
                labels,
            ));
        }
    }
    server.send(&Value::Array(points));
}

/// `labels=` keeps series whose labels contain the pairs; `group_by=` gives one series per
/// value of a label; `data` always merges everything selected.
#[test]
fn label_subset_match_and_group_by() {
    let server = TestServer::start(T0, &[]);
    seed_requests(&server);
    let get = server.series("http_requests_total", "period=1h&labels=method:GET");
    assert_eq!(get["series"].as_array().unwrap().len(), 2);
    assert_eq!(get["data"][0]["count"], json!(5));
    let get_a = server.series(
        "http_requests_total",
        "period=1h&labels=method:GET,route:/a",
    );
    assert_eq!(get_a["data"][0]["count"], json!(3));
    let none = server.series("http_requests_total", "period=1h&labels=method:DELETE");
    assert_eq!(
        (none["series"].clone(), none["data"].clone()),
        (json!([]), json!([]))
    );
    let by_route = server.series("http_requests_total", "period=1h&group_by=route");
    let groups: Vec<(Value, i64)> = by_route["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["labels"].clone(), s["data"][0]["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        groups,
        [(json!({"route": "/a"}), 4), (json!({"route": "/b"}), 2)]
    );
    assert_eq!(by_route["data"][0]["count"], json!(6));
    assert_eq!(by_route["data"][0]["sum"], json!(6.0));
    let by_status = server.series(
        "http_requests_total",
        "period=1h&group_by=status&labels=route:/a",
    );
    assert_eq!(by_status["series"][0]["labels"], json!({"status": "200"}));
}

/// The minute in progress is answered from raw points, before any aggregation; counters,
/// gauges and histograms each show their own figures.
#[test]
fn the_current_minute_is_live_and_each_type_has_its_figures() {
    let server = TestServer::start(T0 + 30_000, &[]);
    server.send(&json!([
        point("queue_depth", "gauge", 7.0, T0 + 1_000, json!({})),
        point("queue_depth", "gauge", 3.0, T0 + 2_000, json!({})),
        point("latency_ms", "histogram", 10.0, T0 + 1_000, json!({})),
        point("latency_ms", "histogram", 30.0, T0 + 1_000, json!({})),
        point("latency_ms", "histogram", 20.0, T0 + 1_000, json!({})),
        point("latency_ms", "histogram", 40.0, T0 + 1_000, json!({})),
    ]));
    let gauge = server.series("queue_depth", "period=5m");
    assert_eq!(gauge["type"], json!("gauge"));
    assert_eq!(counts(&gauge["data"]), [(format_ms(T0), 2)]);
    assert_eq!(
        (
            gauge["data"][0]["last"].clone(),
            gauge["data"][0]["p50"].clone()
        ),
        (json!(3.0), Value::Null)
    );
    let histogram = server.series("latency_ms", "period=5m");
    let bucket = &histogram["data"][0];
    assert_eq!(
        [
            &bucket["p50"],
            &bucket["p75"],
            &bucket["p90"],
            &bucket["p99"],
            &bucket["avg"],
            &bucket["last"]
        ],
        [
            &json!(20.0),
            &json!(30.0),
            &json!(40.0),
            &json!(40.0),
            &json!(25.0),
            &Value::Null
        ]
    );
    assert_eq!(server.rows("rollups_minute"), 0, "answered from raw points");
}

#[test]
fn names_projects_and_unknown_names() {
    let server = TestServer::start(T0, &[]);
    server.send(&json!([
        {"name": "a_total", "type": "counter", "value": 1, "project": "shop"},
        {"name": "b_ms", "type": "histogram", "value": 1, "project": "blog"},
        {"name": "c", "type": "gauge", "value": 1},
    ]));
    assert_eq!(
        server.get("/api/projects"),
        json!({"projects": ["blog", "default", "shop"]})
    );
    let names = server.get("/api/metrics/names");
    assert_eq!(
        names["metrics"],
        json!([
            {"name": "a_total", "type": "counter", "last_seen": format_ms(T0)},
            {"name": "b_ms", "type": "histogram", "last_seen": format_ms(T0)},
            {"name": "c", "type": "gauge", "last_seen": format_ms(T0)},
        ])
    );
    let shop = server.get("/api/metrics/names?project=shop");
    assert_eq!(shop["metrics"].as_array().unwrap().len(), 1);
    let unknown = server.series("nope", "period=1h");
    assert_eq!(
        (unknown["series"].clone(), unknown["data"].clone()),
        (json!([]), json!([]))
    );
    let project = server.series("b_ms", "period=1h&project=shop");
    assert_eq!(project["data"], json!([]));
    let missing = server.request("GET", "/api/metrics", &[("X-API-Key", KEY)], None);
    assert_eq!(
        (missing.status, missing.json()),
        (400, json!({"detail": "Missing required parameter: name"}))
    );
    let bad_period = server.request(
        "GET",
        "/api/metrics?name=c&period=7w",
        &[("X-API-Key", KEY)],
        None,
    );
    assert_eq!(bad_period.status, 400);
    assert!(bad_period.json()["detail"]
        .as_str()
        .unwrap()
        .contains("'period'"));
}

/// Ratings are judged on p75, over any period (here a week, from hour rollups): values chosen
/// so that the average would rate differently.
#[test]
fn web_vitals_are_rated_on_p75_over_any_period() {
    let server = TestServer::start(T0 + 2 * HOUR, &[]);
    let mut points = Vec::new();
    for i in 0..100 {
        // LCP: 70 % at 1 s, 30 % at 5 s — average 2.2 s (good), p75 5 s (poor).
        let lcp = if i % 10 < 7 { 1000.0 } else { 5000.0 };
        // CLS: 80 % at 0.3, 20 % at 0 — average 0.24 (needs improvement), p75 0.3 (poor).
        let cls = if i % 5 == 0 { 0.0 } else { 0.3 };
        let page = if i % 2 == 0 { "/" } else { "/checkout" };
        let labels = json!({"source": "browser", "page": page});
        let at = T0 + i * MINUTE;
        points.push(point(
            "web_vitals_lcp",
            "histogram",
            lcp,
            at,
            labels.clone(),
        ));
        points.push(point(
            "web_vitals_cls",
            "histogram",
            cls,
            at,
            labels.clone(),
        ));
        points.push(point("web_vitals_inp", "histogram", 150.0, at, labels));
    }
    // Not a browser vital: ignored by the vitals section.
    points.push(point(
        "web_vitals_lcp",
        "histogram",
        90000.0,
        T0,
        json!({"source": "synthetic"}),
    ));
    server.send(&Value::Array(points));
    server.advance(3 * HOUR);
    let dashboard = server.get("/api/dashboard?period=7d");
    let vitals = &dashboard["web_vitals"];
    let summary = &vitals["summary"];
    assert_eq!(summary["lcp"]["rating"], json!("poor"), "{summary}");
    assert!((summary["lcp"]["avg"].as_f64().unwrap() - 2200.0).abs() < 1e-6);
    assert!((summary["lcp"]["p75"].as_f64().unwrap() - 5000.0).abs() <= 50.0);
    assert_eq!(summary["lcp"]["count"], json!(100));
    assert_eq!(summary["cls"]["rating"], json!("poor"));
    assert_eq!(summary["inp"]["rating"], json!("good"));
    assert_eq!(
        summary["ttfb"],
        json!({"p75": null, "avg": null, "count": 0, "rating": "unknown"})
    );
    let pages: Vec<&str> = vitals["by_page"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["page"].as_str().unwrap())
        .collect();
    assert_eq!(pages, ["/", "/checkout"]);
    assert_eq!(vitals["by_page"][0]["page_views"], json!(50));
    assert!(!vitals["timeseries"].as_array().unwrap().is_empty());
    assert_eq!(
        dashboard["summary"],
        json!({"total_datapoints": 301, "distinct_metrics": 3})
    );
    assert_eq!(dashboard["top_metrics"][0]["name"], json!("web_vitals_lcp"));
    assert_eq!(dashboard["top_metrics"][0]["count"], json!(101));
    // Without browser vitals there is no section.
    let other = server.get("/api/dashboard?period=7d&project=none");
    assert!(other.get("web_vitals").is_none(), "{other}");
}

/// Every `/api/` path and `/metrics` need the key; `/health` and the UI do not.
#[test]
fn the_api_and_the_exposition_need_the_key() {
    let server = TestServer::start(T0, &[]);
    for (method, path) in [
        ("GET", "/api/metrics?name=x"),
        ("POST", "/api/metrics"),
        ("GET", "/api/metrics/names"),
        ("GET", "/api/projects"),
        ("GET", "/api/dashboard"),
        ("GET", "/api/nothing-here"),
        ("GET", "/metrics"),
    ] {
        let response = server.request(method, path, &[("X-API-Key", "wrong")], Some(b"[]"));
        assert_eq!(response.status, 401, "{method} {path}");
    }
    for path in ["/health", "/"] {
        assert_eq!(server.request("GET", path, &[], None).status, 200, "{path}");
    }
}

/// A metric with more label sets than an answer holds: `series` keeps the busiest, flagged
/// `truncated`, and `data` still merges them all.
#[test]
fn a_large_answer_keeps_the_busiest_series_and_all_the_data() {
    let server = TestServer::start(T0 + 30_000, &[]);
    let mut points = Vec::new();
    for i in 0..20 {
        let n = if i == 7 { 5 } else { 1 };
        for _ in 0..n {
            points.push(point("jobs", "counter", 1.0, T0, json!({"worker": i})));
        }
    }
    server.send(&Value::Array(points));
    let day = server.series("jobs", "period=24h");
    assert_eq!(
        (day["truncated"].clone(), day["series_total"].clone()),
        (json!(true), json!(20))
    );
    let shown = day["series"].as_array().unwrap();
    assert_eq!(shown.len(), 13, "20,000 buckets / 1,442 per series");
    assert_eq!(
        shown[0]["labels"],
        json!({"worker": "7"}),
        "the busiest first"
    );
    assert_eq!(day["data"][0]["count"], json!(24));
    let hour = server.series("jobs", "period=1h");
    assert_eq!(
        (
            hour["truncated"].clone(),
            hour["series"].as_array().unwrap().len()
        ),
        (json!(false), 20)
    );
}
