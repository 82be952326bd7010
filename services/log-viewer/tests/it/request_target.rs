//! One request, one path: other spellings of the log API and its live tail are refused or
//! guarded, never answered with log lines.

use crate::support::TestServer;

#[test]
fn other_spellings_of_log_paths_and_the_live_tail_never_serve_lines_without_a_key() {
    let s = TestServer::start(&[]);
    let container = s.docker.add("web");
    container.stdout("a secret log line");
    s.wait_for_count("", 1);
    for path in [
        "/api/logs",
        "/api/logs/tail",
        "/api/logs/stats",
        "/api/containers",
    ] {
        let rest = &path["/api".len()..];
        for spelling in [
            format!("/{path}"),
            format!("/%2Fapi{rest}"),
            format!("/api/{rest}"),
            format!("/./api{rest}"),
            format!("/x/..{path}"),
            format!("/%61pi{rest}"),
            format!("http://h{path}"),
        ] {
            let response = s.get_without_key(&spelling);
            assert!(
                matches!(response.status, 400 | 401 | 404),
                "GET {spelling} without a key answered {}",
                response.status
            );
            assert!(
                !response.text().contains("secret"),
                "GET {spelling} leaked a line"
            );
        }
    }
    assert_eq!(
        s.get("/%61pi/logs").status,
        200,
        "an escaped ordinary letter is the same path"
    );
}
