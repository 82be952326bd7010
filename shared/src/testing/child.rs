//! A service binary as a child process for integration tests: started on port 0 with a
//! given environment, its stderr in a log file, found by the `listening on` line it logs,
//! signalled, waited for and killed on drop.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a service may take to log `listening on`.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A running service binary.
pub struct ChildService {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
}

impl ChildService {
    /// Starts `binary` with exactly `env` (nothing inherited), its stderr in `log`, under an
    /// open-files limit of `nofile` if given; waits until it logs `listening on <addr>`.
    /// Panics with the log if it exits or stays silent instead.
    pub fn spawn(
        binary: &str,
        env: &[(String, String)],
        log: PathBuf,
        nofile: Option<u64>,
    ) -> ChildService {
        let mut command = Command::new(binary);
        if let Some(n) = nofile {
            set_nofile_in_child(&mut command, n);
        }
        command
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("create the service's log file"));
        let child = command.spawn().expect("spawn the service binary");
        let mut service = ChildService {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(addr) = parse_listening(&service.log()) {
                service.addr = addr;
                return service;
            }
            if let Some(status) = service.try_exit_status() {
                panic!(
                    "the service exited ({status}) before listening; log:\n{}",
                    service.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the service did not log 'listening on' within {START_DEADLINE:?}; log:\n{}",
                service.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (10 s at most) until `/health` answers 503 naming exactly `threads` as stopped,
    /// and checks that each was logged as stopped and the injected panic was logged
    /// (`MONLIGHT_FAULT`, see `health::fault_point`). Panics with what was seen otherwise.
    pub fn expect_stopped_threads(&self, threads: &[&str]) {
        let expected = serde_json::json!(threads);
        wait_for(
            "/health to answer 503 naming the stopped threads",
            Duration::from_secs(10),
            || match super::get(self.addr, "/health", None) {
                Ok(r) if r.status == 503 && r.json()["stopped_threads"] == expected => Ok(()),
                Ok(r) => Err(format!("{} {}", r.status, r.text())),
                Err(e) => Err(e.to_string()),
            },
        );
        let log = self.log();
        for thread in threads {
            assert!(
                log.contains(&format!("background thread '{thread}' has stopped")),
                "{log}"
            );
        }
        assert!(log.contains("injected fault at "), "{log}");
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill() on the pid of our own, not yet reaped, child.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// Its exit status, if it has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on the service")
    }

    /// Waits (polling) up to `deadline` for it to exit.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildService {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `listening on 127.0.0.1:PORT` in a log.
fn parse_listening(log: &str) -> Option<SocketAddr> {
    log.lines().find_map(|line| {
        let rest = &line[line.find("listening on ")? + "listening on ".len()..];
        rest.trim().parse().ok()
    })
}

fn set_nofile_in_child(command: &mut Command, n: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: n as libc::rlim_t,
                rlim_max: n as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Starts `binary` on 127.0.0.1, port 0, with `env` and `MONLIGHT_FAULT=<fault>` (its log in
/// `dir`), and checks that `/health` then names `threads` as stopped (see
/// [`ChildService::expect_stopped_threads`]).
pub fn expect_fault_seen(
    binary: &str,
    dir: &std::path::Path,
    env: &[(&str, &str)],
    fault: &str,
    threads: &[&str],
) {
    let base = vec![
        ("PORT".to_string(), "0".to_string()),
        ("BIND".to_string(), "127.0.0.1".to_string()),
        ("MONLIGHT_FAULT".to_string(), fault.to_string()),
    ];
    let service = ChildService::spawn(
        binary,
        &merge_env(base, env),
        dir.join(format!("{fault}-fault.log")),
        None,
    );
    service.expect_stopped_threads(threads);
}

/// `base` with each pair of `extra` replacing the variable of the same name.
pub fn merge_env(mut base: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (name, value) in extra {
        base.retain(|(n, _)| n != name);
        base.push((name.to_string(), value.to_string()));
    }
    base
}

/// Retries `check` until it returns `Ok`, for at most `deadline`; panics with the last `Err`
/// (a description of what was seen) otherwise.
pub fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if started.elapsed() >= deadline => {
                panic!("timed out after {deadline:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
