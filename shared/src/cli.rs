//! The common `main`: `--help`, `--version`, `--healthcheck`, `backup <dest>`, logging,
//! signals, exit codes, and [`Running`], the handle a service's `run()` returns.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{ConfigError, Env, COMMON_VARS_HELP};
use crate::db::DbError;
use crate::health::Watchdog;
use crate::service::Defaults;
use crate::shutdown::Shutdown;

/// What a binary says about itself in `--help` and `--version`.
pub struct About {
    /// The binary's name, e.g. `error-tracker`.
    pub name: &'static str,
    /// The version (`env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// One line on what the service does.
    pub summary: &'static str,
    /// The service's own env vars with their defaults, one per line.
    pub vars: &'static str,
}

/// Why a service could not start.
#[derive(Debug)]
pub enum StartError {
    /// Bad configuration: exit code 2.
    Config(ConfigError),
    /// Database, port or thread failure: exit code 1.
    Start(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "configuration error: {e}"),
            StartError::Start(e) => write!(f, "cannot start: {e}"),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> StartError {
        StartError::Config(e)
    }
}

impl From<DbError> for StartError {
    fn from(e: DbError) -> StartError {
        StartError::Start(e.0)
    }
}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> StartError {
        StartError::Start(e.to_string())
    }
}

/// A started service: its address, its threads (watched by its [`Watchdog`], so `/health`
/// sees one that dies), and what to do once they have stopped.
pub struct Running {
    addr: SocketAddr,
    shutdown: Shutdown,
    watchdog: Arc<Watchdog>,
    finishers: Vec<Box<dyn FnOnce() + Send>>,
}

impl Running {
    /// A service listening on `addr`, stopped by `shutdown`, its threads kept by `watchdog`.
    pub fn new(addr: SocketAddr, shutdown: Shutdown, watchdog: Arc<Watchdog>) -> Running {
        Running {
            addr,
            shutdown,
            watchdog,
            finishers: Vec::new(),
        }
    }

    /// A thread that ends by itself once the shutdown flag is set; watched, and joined in
    /// the order added (add the HTTP server first, so in-flight requests finish before
    /// anything else stops).
    pub fn with_thread(self, thread: JoinHandle<()>) -> Running {
        self.watchdog.watch(thread);
        self
    }

    /// Runs after every thread has stopped (e.g. finishing the database writer).
    pub fn with_finisher(mut self, finish: impl FnOnce() + Send + 'static) -> Running {
        self.finishers.push(Box::new(finish));
        self
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the shutdown flag is set and everything has stopped.
    pub fn wait(self) {
        // The threads stay with the watchdog (and `/health`) until shutdown is asked for.
        while self.shutdown.sleep(Duration::from_secs(3600)) {}
        for thread in self.watchdog.take_threads() {
            if thread.join().is_err() {
                log::error!("a service thread panicked");
            }
        }
        for finish in self.finishers {
            finish();
        }
        log::info!("stopped");
    }

    /// Sets the shutdown flag and waits for everything to stop (tests).
    pub fn stop(self) {
        self.shutdown.trigger();
        self.wait();
    }
}

/// The whole `main` of a service binary; `defaults` say where its database is by default
/// (for `backup`). Never returns.
pub fn main(
    about: &About,
    defaults: &Defaults,
    start: impl FnOnce(&Env, Shutdown) -> Result<Running, StartError>,
) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("--help" | "-h") => {
            println!(
                "{} {} — {}\n\nUsage: {} [--help | --version | --healthcheck | backup <dest-file>]\n\n\
                 backup <dest-file>: an online, integrity-checked copy of the database at\n\
                 DATABASE_PATH (safe while the service runs); <dest-file> must not exist;\n\
                 `-` writes the copy to stdout.\n\n\
                 Environment (empty = unset):\n{}{}",
                about.name, about.version, about.summary, about.name, COMMON_VARS_HELP, about.vars
            );
            std::process::exit(0);
        }
        Some("backup") => {
            let code = match args.as_slice() {
                [_, dest] => backup(about, &defaults.database_path(&Env::from_process()), dest),
                _ => {
                    eprintln!("{}: usage: {} backup <dest-file>", about.name, about.name);
                    2
                }
            };
            std::process::exit(code);
        }
        Some("--version" | "-V") => {
            println!("{} {}", about.name, about.version);
            std::process::exit(0);
        }
        Some("--healthcheck") => std::process::exit(healthcheck(&Env::from_process())),
        Some(other) => {
            eprintln!("{}: unknown argument {other:?}; see --help", about.name);
            std::process::exit(2);
        }
    }
    let env = Env::from_process();
    crate::logging::init(env.get("LOG_LEVEL").as_deref());
    log_panics();
    tune_malloc();
    raise_open_files_limit();
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.install_signal_handlers() {
        eprintln!("{}: cannot install signal handlers: {e}", about.name);
        std::process::exit(1);
    }
    match start(&env, shutdown) {
        Ok(running) => {
            log::info!("{} {} started", about.name, about.version);
            running.wait();
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{}: {e}", about.name);
            std::process::exit(match e {
                StartError::Config(_) => 2,
                StartError::Start(_) => 1,
            });
        }
    }
}

/// After a large buffer is freed, glibc's allocator raises the size from which it maps
/// buffers separately, and then keeps large freed buffers in its per-thread arenas — so a
/// burst of 256 KiB bodies over many threads stayed resident (42 MB in `bench-attack`). A
/// fixed 128 KiB threshold gives every large buffer back to the system when it is freed.
/// (Limiting the arenas too saved a little more memory but cost 40 % of the 8-client report
/// throughput in lock contention: measured, not kept.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only sets allocator parameters; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Other allocators (musl's, in the static images) return memory eagerly already.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// Gives the memory freed after a burst of work (e.g. an aggregation run) back to the system:
/// glibc keeps freed small blocks in its arenas; `malloc_trim` returns what it can.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators return freed memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

/// Sends panics (of a handler or a background thread) to the log, with the thread's name,
/// so they are seen in the same place as everything else.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        log::error!(
            "thread '{}' panicked at {location}: {message}",
            thread.name().unwrap_or("unnamed")
        );
    }));
}

/// `backup <dest>`: copies the database at `source` to the new file `dest`, or to stdout when
/// `dest` is `-`; 0 when the copy is made and checked, 1 otherwise (a message on stderr,
/// nothing left at `dest`).
fn backup(about: &About, source: &Path, dest: &str) -> i32 {
    let result = if dest == "-" {
        crate::backup::backup_to_writer(source, &mut std::io::stdout().lock())
    } else {
        crate::backup::backup(source, Path::new(dest))
    };
    match result {
        Ok(done) => {
            // With `-`, stdout is the copy: the report goes to stderr.
            let report = format!(
                "{}: backup of {} -> {dest} ({} bytes, integrity ok)",
                about.name,
                source.display(),
                done.bytes
            );
            if dest == "-" {
                eprintln!("{report}");
            } else {
                println!("{report}");
            }
            0
        }
        Err(e) => {
            eprintln!("{}: backup of {} failed: {e}", about.name, source.display());
            1
        }
    }
}

/// `GET /health` on `127.0.0.1:$PORT` with a 2 s timeout: 0 on a 200, 1 otherwise.
fn healthcheck(env: &Env) -> i32 {
    let port: u16 = match env.parse_or("PORT", 8000) {
        Ok(port) => port,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let timeout = Duration::from_secs(2);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let answer = (|| -> std::io::Result<String> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(String::from_utf8_lossy(&head).into_owned())
    })();
    match answer {
        Ok(status_line) if status_line.starts_with("HTTP/1.1 200") => 0,
        Ok(status_line) => {
            eprintln!("unhealthy: {status_line}");
            1
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            1
        }
    }
}

/// Raises the soft open-files limit to the hard limit: each connection is a descriptor.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                log::warn!("cannot raise the open-files limit");
            }
        }
    }
}
