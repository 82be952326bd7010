//! `/health` sees a background thread that died: the ingestion thread is killed on purpose
//! (a fault point compiled only into test builds) in the real binary, as a child process.

use shared::testing::ChildService;

use crate::support::KEY;

#[test]
fn a_dead_ingestion_thread_turns_health_503_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = dir.path().join("containers");
    std::fs::create_dir_all(&sources).expect("LOG_SOURCES");
    let env: Vec<(String, String)> = [
        ("API_KEY", KEY.to_string()),
        ("PORT", "0".to_string()),
        ("BIND", "127.0.0.1".to_string()),
        (
            "DATABASE_PATH",
            dir.path().join("logs.db").display().to_string(),
        ),
        ("LOG_SOURCES", sources.display().to_string()),
        ("MONLIGHT_FAULT", "ingest".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let service = ChildService::spawn(
        env!("CARGO_BIN_EXE_log-viewer"),
        &env,
        dir.path().join("service.log"),
        None,
    );
    service.expect_stopped_threads(&["ingest"]);
}
