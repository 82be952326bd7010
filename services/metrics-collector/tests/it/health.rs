//! `/health` sees a background thread that died: the aggregation thread is killed on purpose
//! (a fault point compiled only into test builds) in the real binary, as a child process.

use shared::testing::ChildService;

use crate::support::KEY;

#[test]
fn a_dead_aggregation_thread_turns_health_503_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env: Vec<(String, String)> = [
        ("API_KEY", KEY.to_string()),
        ("PORT", "0".to_string()),
        ("BIND", "127.0.0.1".to_string()),
        (
            "DATABASE_PATH",
            dir.path().join("metrics.db").display().to_string(),
        ),
        ("MONLIGHT_FAULT", "aggregation".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let service = ChildService::spawn(
        env!("CARGO_BIN_EXE_metrics-collector"),
        &env,
        dir.path().join("service.log"),
        None,
    );
    service.expect_stopped_threads(&["aggregation"]);
}
