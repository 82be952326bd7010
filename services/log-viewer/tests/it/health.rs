//! `/health` sees a background thread that died: the ingestion thread is killed on purpose
//! (a fault point compiled only into test builds) in the real binary, as a child process.

use crate::support::KEY;

#[test]
fn a_dead_ingestion_thread_turns_health_503_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = dir.path().join("containers");
    std::fs::create_dir_all(&sources).expect("LOG_SOURCES");
    let sources = sources.display().to_string();
    let db = dir.path().join("logs.db").display().to_string();
    shared::testing::expect_fault_seen(
        env!("CARGO_BIN_EXE_log-viewer"),
        dir.path(),
        &[
            ("API_KEY", KEY),
            ("DATABASE_PATH", &db),
            ("LOG_SOURCES", &sources),
        ],
        "ingest",
        &["ingest"],
    );
}
