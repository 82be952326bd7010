//! The service under test as a child process: started with a fixed environment in a
//! temporary directory, its bound port read from its log, stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The service binary `name` beside the running benchmark (both live in `target/release`),
/// else the conventional path relative to the workspace root.
pub fn release_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(name)))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("target/release").join(name))
}
/// How long the service may take to log `listening on`.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the service may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Log lines kept (the latest), to explain a failed start.
const KEPT_LINES: usize = 50;
/// Log lines kept with their arrival time (the first ones), for [`Service::lines_containing`].
const HISTORY_LINES: usize = 10_000;

/// What the service logged, kept for the report.
#[derive(Debug, Default)]
struct LogCapture {
    /// The latest lines.
    recent: Vec<String>,
    /// Every `[WARN]` and `[ERROR]` line (the first 50).
    problems: Vec<String>,
    /// How many `[WARN]` / `[ERROR]` lines there were in all.
    problem_count: usize,
    /// The first lines, each with the moment the benchmark read it.
    history: Vec<(Instant, String)>,
}

/// A running service process.
pub struct Service {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<LogCapture>>,
    log_reader: Option<JoinHandle<()>>,
    /// The working directory; `None` only once [`Service::stop_keeping_dir`] took it.
    dir: Option<tempfile::TempDir>,
}

impl Service {
    /// Starts `binary` with exactly the variables in `env` (nothing else is inherited, so a
    /// stray `SMTP_HOST` or `RATE_LIMIT` in the caller's environment cannot change the
    /// result), in the working directory `dir`, and waits for `listening on <addr>` on its
    /// stderr. The service must log at `info` (or lower) for that line to appear.
    /// Panics with the service's output when it does not start.
    pub fn start(binary: &Path, env: &[(&str, String)], dir: tempfile::TempDir) -> Service {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(LogCapture::default()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let log_reader = spawn_log_reader(stderr, Arc::clone(&log), addr_tx);
        let addr = match addr_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(why) => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map_or_else(|e| format!("unknown ({e})"), |s| s.to_string());
                let _ = log_reader.join();
                let what = match why {
                    RecvTimeoutError::Timeout => format!("within {START_TIMEOUT:?}"),
                    RecvTimeoutError::Disconnected => "before exiting".to_string(),
                };
                let recent = lock(&log).recent.join("\n");
                panic!(
                    "{} did not log `listening on <addr>` {what} ({status}); its output:\n{recent}",
                    binary.display()
                );
            }
        };
        Service {
            child,
            addr,
            log,
            log_reader: Some(log_reader),
            dir: Some(dir),
        }
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `[WARN]` and `[ERROR]` lines logged so far (at most 50) and how many in all.
    pub fn problems(&self) -> (Vec<String>, usize) {
        let log = lock(&self.log);
        (log.problems.clone(), log.problem_count)
    }

    /// The log lines read so far (the first 10,000) that contain `needle`, each with the
    /// moment the benchmark read it (within a millisecond or so of the service writing it).
    pub fn lines_containing(&self, needle: &str) -> Vec<(Instant, String)> {
        lock(&self.log)
            .history
            .iter()
            .filter(|(_, line)| line.contains(needle))
            .cloned()
            .collect()
    }

    /// Sends SIGTERM and waits for the exit (kills it after 15 s); returns the exit status
    /// and how long the graceful stop took. The working directory is removed.
    pub fn stop(self) -> (ExitStatus, Duration) {
        let (status, took, _dir) = self.stop_keeping_dir();
        (status, took)
    }

    /// [`Service::stop`], but hands the working directory (and the database in it) back, e.g.
    /// to start the service again on the same data.
    pub fn stop_keeping_dir(mut self) -> (ExitStatus, Duration, tempfile::TempDir) {
        let began = Instant::now();
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits in pid_t");
        // SAFETY: kill() only sends a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if began.elapsed() < STOP_TIMEOUT => {
                    thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    eprintln!("the service did not stop within {STOP_TIMEOUT:?}; killing it");
                    let _ = self.child.kill();
                    break self.child.wait().expect("waiting for the killed service");
                }
            }
        };
        let took = began.elapsed();
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        let dir = self.dir.take().expect("the directory is taken only here");
        (status, took, dir)
    }
}

impl Drop for Service {
    /// A panic mid-benchmark must not leave the service running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads the service's stderr line by line until it closes: sends the address of the first
/// `listening on <addr>` line and keeps the rest for the report. Draining it also keeps a
/// full pipe from ever blocking the service.
fn spawn_log_reader(
    stderr: ChildStderr,
    log: Arc<Mutex<LogCapture>>,
    addr_tx: Sender<SocketAddr>,
) -> JoinHandle<()> {
    thread::Builder::new()
        .name("service-log".to_string())
        .spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    let _ = addr_tx.send(addr);
                }
                record(&mut lock(&log), line);
            }
        })
        .expect("cannot start the log reader thread")
}

/// The address in a `... listening on 127.0.0.1:PORT` log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on ")?;
    rest.split_whitespace().next()?.parse().ok()
}

fn record(log: &mut LogCapture, line: String) {
    if log.history.len() < HISTORY_LINES {
        log.history.push((Instant::now(), line.clone()));
    }
    if line.contains("[WARN]") || line.contains("[ERROR]") {
        log.problem_count += 1;
        if log.problems.len() < KEPT_LINES {
            log.problems.push(line.clone());
        }
    }
    if log.recent.len() == KEPT_LINES {
        log.recent.remove(0);
    }
    log.recent.push(line);
}

fn lock(log: &Mutex<LogCapture>) -> std::sync::MutexGuard<'_, LogCapture> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
