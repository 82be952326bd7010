//! `GET /api/logs` filters and paging, full-text search, and the histogram.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::{api_time, enc, ids, messages, strings, TestServer};

/// Writes `lines` to stdout of a new container `name` and waits until all are stored.
fn seed(server: &TestServer, name: &str, lines: &[String]) -> Vec<Value> {
    let c = server.docker.add(name);
    c.lines("stdout", lines);
    server.expect_messages(&format!("container={name}"), lines)
}

/// The messages of `/api/logs?<query>`, newest first, and the total.
fn search(server: &TestServer, query: &str) -> (Vec<String>, i64) {
    let page = server.json(&format!("/api/logs?limit=500&{query}"));
    let logs = page["logs"].as_array().unwrap_or_else(|| panic!("{page}"));
    (messages(logs), page["total"].as_i64().unwrap())
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

const CORPUS: &[&str] = &[
    "alpha beta gamma",
    "alpha delta",
    "beta epsilon",
    "the quick brown fox",
    "quick the brown dog",
    "connection refused by upstream",
    "connect timeout",
    "unbalanced quotes here",
    "foo and bar",
    "foo only",
    "bad level:error value",
];

#[test]
fn full_text_search_syntax() {
    let server = TestServer::start(&[]);
    seed(&server, "s", &strings(CORPUS));
    let cases: &[(&str, &[&str])] = &[
        ("alpha", &["alpha beta gamma", "alpha delta"]),
        ("ALPHA", &["alpha beta gamma", "alpha delta"]),
        ("beta alpha", &["alpha beta gamma"]),
        (
            "brown quick",
            &["the quick brown fox", "quick the brown dog"],
        ),
        ("\"quick brown\"", &["the quick brown fox"]),
        ("fox OR epsilon", &["the quick brown fox", "beta epsilon"]),
        ("alpha NOT delta", &["alpha beta gamma"]),
        (
            "conn*",
            &["connection refused by upstream", "connect timeout"],
        ),
        ("connect", &["connect timeout"]),
        ("nothing_matches_this", &[]),
    ];
    for (query, expected) in cases {
        let (got, total) = search(&server, &format!("search={}", enc(query)));
        assert_eq!(
            sorted(got.clone()),
            sorted(strings(expected)),
            "search {query:?}"
        );
        assert_eq!(total, expected.len() as i64, "total of search {query:?}");
    }
    // `q` is the same as `search`; results are newest first.
    let (got, _) = search(&server, "q=alpha");
    assert_eq!(got, strings(&["alpha delta", "alpha beta gamma"]));
    // Search combines with the other filters.
    let (got, total) = search(&server, "search=alpha&container=s&level=INFO");
    assert_eq!((got.len(), total), (2, 2));
    let (got, total) = search(&server, "search=alpha&container=other");
    assert_eq!((got.len(), total), (0, 0));
}

#[test]
fn invalid_search_syntax_is_searched_as_plain_words() {
    let server = TestServer::start(&[]);
    seed(&server, "s", &strings(CORPUS));
    let must_find: &[(&str, &str)] = &[
        ("\"unbalanced", "unbalanced quotes here"),
        ("foo AND", "foo and bar"),
        ("level:error", "bad level:error value"),
        ("alpha (", "alpha delta"),
    ];
    for (query, expected) in must_find {
        let response = server.get(&format!("/api/logs?search={}", enc(query)));
        assert_eq!(
            response.status,
            200,
            "search {query:?}: {}",
            response.text()
        );
        let got = messages(response.json()["logs"].as_array().unwrap());
        assert!(
            got.iter().any(|m| m == expected),
            "search {query:?} should find {expected:?}, got {got:?}"
        );
    }
    for query in [
        "(",
        "***",
        "\"",
        "AND",
        "OR",
        "NOT",
        "foo AND",
        "NEAR(",
        ")",
        "*foo",
        "-foo",
        "foo:",
        "^",
        "a OR",
        "'; DROP TABLE logs; --",
        "%",
        "\\",
        "{}",
        "café",
    ] {
        for path in [
            format!("/api/logs?search={}", enc(query)),
            format!("/api/logs/histogram?search={}", enc(query)),
        ] {
            let response = server.get(&path);
            assert_eq!(response.status, 200, "{path}: {}", response.text());
            assert!(
                response
                    .header("content-type")
                    .unwrap_or("")
                    .starts_with("application/json"),
                "{path}"
            );
            assert!(response.json().is_object(), "{path}: {}", response.text());
        }
    }
    // Still there.
    let (got, _) = search(&server, "");
    assert_eq!(got.len(), CORPUS.len());
}

#[test]
fn paging_with_before_id_is_stable_while_lines_arrive() {
    let server = TestServer::start(&[]);
    let lines: Vec<String> = (0..30).map(|i| format!("page line {i:02}")).collect();
    seed(&server, "p", &lines);
    let newest_first = |range: std::ops::Range<usize>| -> Vec<String> {
        lines[range].iter().rev().cloned().collect()
    };
    let page1 = server.json("/api/logs?limit=10");
    assert_eq!(
        messages(page1["logs"].as_array().unwrap()),
        newest_first(20..30)
    );
    let oldest_on_page1 = *ids(page1["logs"].as_array().unwrap()).last().unwrap();
    let page2_path = format!("/api/logs?limit=10&before_id={oldest_on_page1}");
    let page2 = server.json(&page2_path);
    assert_eq!(
        messages(page2["logs"].as_array().unwrap()),
        newest_first(10..20)
    );

    // New lines arrive between two page loads.
    let c = server.docker.find("p");
    c.lines(
        "stdout",
        &strings(&["new 1", "new 2", "new 3", "new 4", "new 5"]),
    );
    server.wait_for_count("container=p", 35);
    let page2_again = server.json(&page2_path);
    assert_eq!(
        page2_again["logs"], page2["logs"],
        "same page after new lines"
    );
    assert_eq!(
        page2_again["total"], page2["total"],
        "same total below before_id"
    );
    let searched = server.json(&format!("{page2_path}&search=page"));
    assert_eq!(
        searched["logs"], page2["logs"],
        "the same page when searching"
    );

    let oldest_on_page2 = *ids(page2["logs"].as_array().unwrap()).last().unwrap();
    let page3 = server.json(&format!("/api/logs?limit=10&before_id={oldest_on_page2}"));
    assert_eq!(
        messages(page3["logs"].as_array().unwrap()),
        newest_first(0..10)
    );
    let oldest = *ids(page3["logs"].as_array().unwrap()).last().unwrap();
    let empty = server.json(&format!("/api/logs?limit=10&before_id={oldest}"));
    assert_eq!(empty["logs"].as_array().unwrap().len(), 0, "{empty}");

    // Offset paging counts from the newest.
    let offset = server.json("/api/logs?limit=3&offset=5");
    assert_eq!(
        messages(offset["logs"].as_array().unwrap()),
        newest_first(27..30),
        "{offset}"
    );
    assert_eq!(offset["offset"], 5);
}

#[test]
fn limit_and_parameter_validation() {
    let server = TestServer::start(&[]);
    let lines: Vec<String> = (0..520).map(|i| format!("limit line {i:03}")).collect();
    let c = server.docker.add("lim");
    c.lines("stdout", &lines);
    server.wait_for_count("container=lim", 520);

    let default = server.json("/api/logs");
    assert_eq!(default["logs"].as_array().unwrap().len(), 100);
    assert_eq!(default["limit"], 100);
    assert_eq!(default["offset"], 0);
    assert_eq!(default["total"], 520);
    let capped = server.json("/api/logs?limit=9999");
    assert_eq!(capped["logs"].as_array().unwrap().len(), 500);
    assert_eq!(capped["limit"], 500);
    assert_eq!(capped["total"], 520);
    let one = server.json("/api/logs?limit=1");
    assert_eq!(
        messages(one["logs"].as_array().unwrap()),
        strings(&["limit line 519"])
    );

    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=-5", "limit"),
        ("limit=1.5", "limit"),
        ("offset=abc", "offset"),
        ("offset=-1", "offset"),
        ("before_id=abc", "before_id"),
        ("since=yesterday", "since"),
        ("until=2026-13-45T00:00:00Z", "until"),
        ("level=loud", "level"),
        ("level=%3E%3Dloud", "level"),
    ] {
        let response = server.get(&format!("/api/logs?{query}"));
        assert_eq!(response.status, 400, "{query}: {}", response.text());
        assert!(
            response
                .header("content-type")
                .unwrap_or("")
                .starts_with("application/json"),
            "{query}"
        );
        let detail = response.json()["detail"].as_str().unwrap_or("").to_string();
        assert!(
            detail.contains(&format!("'{parameter}'")),
            "{query}: the message should name {parameter}: {detail:?}"
        );
    }
    let loud = server.get("/api/logs?level=loud").json();
    assert!(loud["detail"].as_str().unwrap().contains("loud"), "{loud}");
    // The histogram validates the same parameters.
    for query in ["level=loud", "since=yesterday", "buckets=0", "buckets=abc"] {
        let response = server.get(&format!("/api/logs/histogram?{query}"));
        assert_eq!(
            response.status,
            400,
            "histogram {query}: {}",
            response.text()
        );
    }
}

#[test]
fn level_filters() {
    let server = TestServer::start(&[]);
    seed(
        &server,
        "lv",
        &strings(&[
            "DEBUG: d",
            "INFO: i",
            "WARNING: w",
            "ERROR: e",
            "CRITICAL: c",
        ]),
    );
    let cases: &[(&str, &[&str])] = &[
        ("level=ERROR", &["ERROR: e"]),
        ("level=error", &["ERROR: e"]),
        ("level=warn", &["WARNING: w"]),
        (
            "level=%3E%3Dwarning",
            &["CRITICAL: c", "ERROR: e", "WARNING: w"],
        ),
        ("level=%3E%3DERROR", &["CRITICAL: c", "ERROR: e"]),
        (
            "level=%3E%3Ddebug",
            &[
                "CRITICAL: c",
                "ERROR: e",
                "WARNING: w",
                "INFO: i",
                "DEBUG: d",
            ],
        ),
        ("level=%3E%3Dcritical", &["CRITICAL: c"]),
    ];
    for (query, expected) in cases {
        let (got, total) = search(&server, query);
        assert_eq!(got, strings(expected), "{query}");
        assert_eq!(total, expected.len() as i64, "{query}");
    }
    let response = server.get("/api/logs?level=loud");
    assert_eq!(response.status, 400);
}

#[test]
fn container_may_repeat() {
    let server = TestServer::start(&[]);
    for name in ["ca", "cb", "cc"] {
        seed(
            &server,
            name,
            &[format!("{name} one"), format!("{name} two")],
        );
    }
    let (got, total) = search(&server, "container=ca&container=cb");
    assert_eq!(
        sorted(got),
        strings(&["ca one", "ca two", "cb one", "cb two"]),
    );
    assert_eq!(total, 4);
    let (got, total) = search(&server, "container=cc");
    assert_eq!((got, total), (strings(&["cc two", "cc one"]), 2));
    let (got, total) = search(&server, "container=nope");
    assert_eq!((got.len(), total), (0, 0));
    let (got, _) = search(&server, "container=ca&container=cc&search=two");
    assert_eq!(sorted(got), strings(&["ca two", "cc two"]));
}

/// `t` truncated to whole seconds.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn since_and_until() {
    let server = TestServer::start(&[]);
    let now = whole_seconds(SystemTime::now());
    let hour = Duration::from_secs(3600);
    let minute = Duration::from_secs(60);
    let c = server.docker.add("t");
    let points = [
        ("three hours ago", now - 3 * hour),
        ("two hours ago", now - 2 * hour),
        ("one hour ago", now - hour),
        ("a minute ago", now - minute),
    ];
    for (text, time) in points {
        c.write_at("stdout", text, time);
    }
    let entries = server.wait_for_count("container=t", 4);
    for (text, time) in points {
        let entry = entries.iter().find(|e| e["message"] == text).unwrap();
        assert_eq!(entry["timestamp"], api_time(time), "{entry}");
    }
    let since = api_time(now - 2 * hour - minute);
    let until = api_time(now - hour + minute);
    let (got, total) = search(&server, &format!("since={}", enc(&since)));
    assert_eq!(
        got,
        strings(&["a minute ago", "one hour ago", "two hours ago"])
    );
    assert_eq!(total, 3);
    let (got, _) = search(&server, &format!("until={}", enc(&until)));
    assert_eq!(
        got,
        strings(&["one hour ago", "two hours ago", "three hours ago"])
    );
    let (got, total) = search(
        &server,
        &format!("since={}&until={}", enc(&since), enc(&until)),
    );
    assert_eq!(got, strings(&["one hour ago", "two hours ago"]));
    assert_eq!(total, 2);
    // Exact bounds are inclusive.
    let exact = api_time(now - hour);
    let (got, _) = search(&server, &format!("since={0}&until={0}", enc(&exact)));
    assert_eq!(got, strings(&["one hour ago"]));
    // Any offset is accepted: 2 h 1 min ago written in +02:00.
    let shifted = shared::time::format_ms(
        (now - 2 * hour - minute + 2 * hour)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let with_offset = format!("{}+02:00", &shifted[..19]);
    let (got, _) = search(&server, &format!("since={}", enc(&with_offset)));
    assert_eq!(
        got,
        strings(&["a minute ago", "one hour ago", "two hours ago"]),
        "since={with_offset}"
    );
    // With a search too.
    let (got, _) = search(&server, &format!("since={}&search=ago", enc(&since)));
    assert_eq!(got.len(), 3);
    // Nothing in the future, nothing before the first entry.
    let (got, _) = search(&server, &format!("since={}", enc(&api_time(now + hour))));
    assert!(got.is_empty());
    let (got, _) = search(
        &server,
        &format!("until={}", enc(&api_time(now - 4 * hour))),
    );
    assert!(got.is_empty());
}

#[test]
fn histogram_counts_sum_to_the_entries_in_range() {
    let server = TestServer::start(&[]);
    let now = whole_seconds(SystemTime::now());
    let minute = Duration::from_secs(60);
    let c = server.docker.add("h");
    c.write_at("stdout", "outside the range", now - 180 * minute);
    c.write_at("stdout", "info 1", now - 50 * minute);
    c.write_at("stdout", "info 2", now - 49 * minute);
    c.write_at("stderr", "error 1", now - 30 * minute);
    c.write_at("stderr", "error 2", now - 29 * minute);
    c.write_at("stderr", "error 3", now - 28 * minute);
    c.write_at("stdout", "WARNING: warn 1", now - 10 * minute);
    server.wait_for_count("container=h", 7);

    let since = api_time(now - 60 * minute);
    let until = api_time(now);
    let range = format!("since={}&until={}", enc(&since), enc(&until));
    let histogram = server.json(&format!("/api/logs/histogram?{range}&buckets=6"));
    let buckets = histogram["buckets"].as_array().unwrap();
    // Round bars: 60 minutes in 6 bars of 10 minutes, starting on a multiple of 10 minutes,
    // so the hour takes a seventh bar unless `now` falls on one.
    assert_eq!(histogram["bucket_seconds"], 600.0, "{histogram}");
    let first_start =
        shared::time::parse_rfc3339_ms(buckets[0]["start"].as_str().unwrap()).unwrap();
    let since_ms = shared::time::parse_rfc3339_ms(&since).unwrap();
    assert_eq!(first_start % 600_000, 0, "{histogram}");
    assert!(
        first_start <= since_ms && since_ms - first_start < 600_000,
        "{histogram}"
    );
    assert!((6..=7).contains(&buckets.len()), "{histogram}");
    let mut sum = 0;
    let mut errors = 0;
    let mut previous_start = String::new();
    for bucket in buckets {
        let count = bucket["count"].as_i64().unwrap();
        let by_level = bucket["by_level"]
            .as_object()
            .unwrap_or_else(|| panic!("by_level in {bucket}"));
        let level_sum: i64 = by_level.values().map(|v| v.as_i64().unwrap()).sum();
        assert_eq!(level_sum, count, "by_level sums to count in {bucket}");
        errors += by_level.get("ERROR").and_then(Value::as_i64).unwrap_or(0);
        let start = bucket["start"].as_str().unwrap().to_string();
        assert!(start > previous_start, "buckets in time order: {histogram}");
        previous_start = start;
        sum += count;
    }
    let listed = server.json(&format!("/api/logs?{range}"));
    assert_eq!(listed["total"], 6, "{listed}");
    assert_eq!(sum, 6, "{histogram}");
    assert_eq!(errors, 3, "{histogram}");
    // The three errors (30, 29 and 28 minutes ago) fall in one or two bars.
    let with_errors = buckets
        .iter()
        .filter(|b| b["by_level"]["ERROR"].as_i64() > Some(0))
        .count();
    assert!((1..=2).contains(&with_errors), "{histogram}");

    // Filters apply to the histogram too.
    let only_errors = server.json(&format!(
        "/api/logs/histogram?{range}&buckets=6&level=ERROR"
    ));
    let total: i64 = only_errors["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3, "{only_errors}");
    let searched = server.json(&format!("/api/logs/histogram?{range}&search=info"));
    let total: i64 = searched["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 2, "{searched}");

    // Without a range: from the oldest entry to now (3 hours) in round bars (5 minutes for
    // at most 60 of them: 37), everything counted.
    let everything = server.json("/api/logs/histogram");
    let buckets = everything["buckets"].as_array().unwrap();
    assert_eq!(everything["bucket_seconds"], 300.0, "{everything}");
    assert!((36..=38).contains(&buckets.len()), "{everything}");
    let total: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(total, 7, "{everything}");

    let backwards = server.get(&format!(
        "/api/logs/histogram?since={}&until={}",
        enc(&until),
        enc(&since)
    ));
    assert_eq!(backwards.status, 400, "{}", backwards.text());
}

#[test]
fn since_finds_entries_stored_before_older_ones() {
    let server = TestServer::start(&[]);
    let now = SystemTime::now();
    let current = server.docker.add("current");
    current.lines("stdout", &strings(&["current 1", "current 2", "current 3"]));
    server.expect_messages(
        "container=current",
        &strings(&["current 1", "current 2", "current 3"]),
    );
    // A container that appears later is read from its start: lines from two hours ago
    // are stored after the current ones.
    let two_hours_ago = now - Duration::from_secs(2 * 3600);
    let history: String = (1..=3)
        .map(|i| crate::support::record(&format!("history {i}\n"), "stdout", two_hours_ago))
        .collect();
    server.docker.add_with_log("history", &history);
    server.wait_for_count("container=history", 3);

    let since = enc(&api_time(now - Duration::from_secs(3 * 3600)));
    let (got, total) = search(&server, &format!("since={since}"));
    assert_eq!(
        sorted(got),
        strings(&[
            "current 1",
            "current 2",
            "current 3",
            "history 1",
            "history 2",
            "history 3"
        ]),
        "everything is newer than 3 hours"
    );
    assert_eq!(total, 6);
    let histogram = server.json(&format!("/api/logs/histogram?since={since}"));
    let sum: i64 = histogram["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 6, "{histogram}");
}
