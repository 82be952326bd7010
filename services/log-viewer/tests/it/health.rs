//! `/health` sees a background thread that died: the ingestion thread is killed on purpose
//! (a fault point compiled only into test builds) in the real binary, as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shared::testing;

#[test]
fn a_dead_ingestion_thread_turns_health_503_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = dir.path().join("containers");
    std::fs::create_dir_all(&sources).expect("LOG_SOURCES");
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-viewer"))
        .env("API_KEY", "k")
        .env("PORT", "0")
        .env("BIND", "127.0.0.1")
        .env("DATABASE_PATH", dir.path().join("logs.db"))
        .env("LOG_SOURCES", &sources)
        .env("MONLIGHT_FAULT", "ingest")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start log-viewer");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut log = String::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("log-viewer exited before listening:\n{log}");
        };
        log.push_str(&line);
        log.push('\n');
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.trim().parse().expect("an address");
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    while Instant::now() < deadline {
        let response = testing::get(addr, "/health", None).expect("GET /health");
        if response.status == 503 {
            last = Some(response);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let response = last.expect("/health stayed 200 after the ingestion thread died");
    assert_eq!(
        response.json()["stopped_threads"],
        serde_json::json!(["ingest"])
    );
    for line in lines.map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
    }
    assert!(
        log.contains("background thread 'ingest' has stopped"),
        "{log}"
    );
}
