//! Hostile input: oversized and fake source maps, absurd stacks, unicode; always a clear 4xx
//! or an unmapped frame, never a panic, and the relay stays healthy.

use serde_json::json;

use crate::support::*;

fn upload(stack: &Stack, map_content: serde_json::Value) -> shared::testing::HttpResponse {
    let body = json!({"project": "shop", "release": "1.0.0", "file_url": "https://cdn.example.com/assets/app.min.js", "map_content": map_content});
    request(
        stack.relay(),
        "POST",
        "/api/source-maps",
        &[("X-API-Key", ADMIN)],
        Some(body.to_string().as_bytes()),
    )
}

/// A small valid map: `app.min.js` line 1 column 0 → `src/app.js` line 1.
const MAP: &str = r#"{"version":3,"file":"app.min.js","sources":["src/app.js"],"names":["boom"],"mappings":"AAAAA"}"#;

#[test]
fn source_maps_are_validated_replaced_listed_and_deleted() {
    let stack = Stack::start(&[]);
    let too_big = format!("{}{}", MAP, " ".repeat(5 * 1024 * 1024 + 1 - MAP.len()));
    let answer = upload(&stack, json!(too_big));
    assert_eq!(answer.status, 413, "{}", answer.text());
    let not_a_map = upload(&stack, json!({"hello": "world"}));
    assert_eq!(not_a_map.status, 400);
    assert!(not_a_map.json()["detail"]
        .as_str()
        .unwrap()
        .starts_with("field 'map_content' is not a valid source map"));
    assert_eq!(upload(&stack, json!("garbage \u{0}")).status, 400);
    let first = upload(&stack, json!(MAP));
    assert_eq!(first.status, 201, "{}", first.text());
    let again = upload(&stack, serde_json::from_str(MAP).unwrap());
    assert_eq!(
        again.json()["id"],
        first.json()["id"],
        "the same file is replaced"
    );
    let admin = [("X-API-Key", ADMIN)];
    let list = request(
        stack.relay(),
        "GET",
        "/api/source-maps?project=shop",
        &admin,
        None,
    )
    .json();
    assert_eq!(list["total"], json!(1));
    assert!(list["source_maps"][0].get("map_content").is_none());
    assert_eq!(list["source_maps"][0]["size"], json!(MAP.len()));
    let id = first.json()["id"].clone();
    let deleted = request(
        stack.relay(),
        "DELETE",
        &format!("/api/source-maps/{id}"),
        &admin,
        None,
    );
    assert_eq!(
        (deleted.status, deleted.json()),
        (200, json!({"status": "deleted"}))
    );
    assert_eq!(
        request(
            stack.relay(),
            "DELETE",
            &format!("/api/source-maps/{id}"),
            &admin,
            None
        )
        .status,
        404
    );
}

#[test]
fn absurd_stacks_are_kept_or_refused_never_a_panic() {
    let stack = Stack::start(&[("MAX_BODY_SIZE", "1048576")]);
    assert_eq!(upload(&stack, json!(MAP)).status, 201);
    let frames: String = (0..10_000)
        .map(|i| format!("    at f{i} (https://cdn.example.com/assets/app.min.js:1:{i})\n"))
        .collect();
    let stacks = [
        format!("Error: many\n{frames}"),
        "Error: far\n    at f (https://cdn.example.com/assets/app.min.js:1000000000:1000000000)".to_string(),
        "Error: ü\n    at ñ (https://cdn.example.com/assets/ファイル.min.js:1:1)\n@https://cdn.example.com/assets/app.min.js:99:99".to_string(),
        "Error: weird\n    at (:::)\n@@@:1:1\n    at x (app.min.js:-1:-1)\n\u{0}".to_string(),
    ];
    for (i, stack_text) in stacks.iter().enumerate() {
        let body = json!({"type": format!("Error{i}"), "message": format!("hostile {i}"), "stack": stack_text, "release": "1.0.0"});
        let answer = post_browser(stack.relay(), "/api/browser/errors", &body);
        assert_eq!(answer.status, 202, "{i}: {}", answer.text());
    }
    let groups = wait_for_groups(stack.errors_addr, stacks.len());
    assert_eq!(groups.len(), stacks.len());
    assert_eq!(relay_health(stack.relay())["status"], json!("ok"));
}

#[test]
fn source_maps_older_than_the_retention_are_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let errors = start_error_tracker(dir.path(), 0);
    let metrics = start_metrics_collector(dir.path());
    let relay = start_relay(&relay_env(dir.path(), errors.addr(), metrics.addr(), &[]));
    let body =
        json!({"project": "shop", "release": "1", "file_url": "/app.min.js", "map_content": MAP});
    let admin = [("X-API-Key", ADMIN)];
    assert_eq!(
        request(
            relay.addr(),
            "POST",
            "/api/source-maps",
            &admin,
            Some(body.to_string().as_bytes())
        )
        .status,
        201
    );
    relay.stop();
    // Restarted keeping no day of maps: the retention thread's first run deletes it.
    let relay = start_relay(&relay_env(
        dir.path(),
        errors.addr(),
        metrics.addr(),
        &[("RETENTION_DAYS", "0")],
    ));
    shared::testing::wait_for(
        "the map deleted",
        std::time::Duration::from_secs(10),
        || {
            let list = request(relay.addr(), "GET", "/api/source-maps", &admin, None).json();
            (list["total"] == json!(0))
                .then_some(())
                .ok_or(list.to_string())
        },
    );
    relay.stop();
}
