//! `/health` sees a background thread that died: the aggregation thread is killed on purpose
//! (a fault point compiled only into test builds) in the real binary, as a child process.

use crate::support::KEY;

#[test]
fn a_dead_aggregation_thread_turns_health_503_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("metrics.db").display().to_string();
    shared::testing::expect_fault_seen(
        env!("CARGO_BIN_EXE_metrics-collector"),
        dir.path(),
        &[("API_KEY", KEY), ("DATABASE_PATH", &db)],
        "aggregation",
        &["aggregation"],
    );
}
