//! Closed-loop load: `clients` threads, each with its own keep-alive connection, send
//! requests back to back until a request count or a time limit is reached, whichever first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::procfs;
use crate::stats::Latencies;

/// Builds the bytes of the next request; called once per request actually sent.
pub type MakeRequest<'a> = dyn Fn() -> Vec<u8> + Sync + 'a;

/// When a phase stops: after `max_requests` requests or `max_time`, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests sent in all, over every client.
    pub max_requests: u64,
    /// Wall-clock time, from the moment every client is connected.
    pub max_time: Duration,
}

/// What one phase measured.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// Requests answered with an expected status.
    pub ok: u64,
    /// Requests answered with another status, or failed on the connection.
    pub failures: u64,
    /// The first few failures, as text (status and body, or the I/O error).
    pub failure_samples: Vec<String>,
    /// From the start signal until the last client stopped.
    pub elapsed: Duration,
    /// Latency of every request, failed ones included.
    pub latencies: Latencies,
    /// CPU time the server process used during the phase.
    pub server_cpu: Duration,
    /// CPU time this benchmark process used during the phase.
    pub bench_cpu: Duration,
    /// CPU time every other process on the machine used during the phase.
    pub other_cpu: Duration,
}

impl PhaseResult {
    /// Requests (ok or not) per second of wall-clock time.
    pub fn requests_per_second(&self) -> f64 {
        (self.ok + self.failures) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Average CPU cores the server used during the phase.
    pub fn server_cores(&self) -> f64 {
        self.server_cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Average CPU cores the benchmark's own clients used during the phase.
    pub fn bench_cores(&self) -> f64 {
        self.bench_cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Average CPU cores everything else on the machine used during the phase.
    pub fn other_cores(&self) -> f64 {
        self.other_cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A phase: where to send, how many clients, when to stop, what to send and what counts as
/// success.
pub struct Phase<'a> {
    /// The server.
    pub addr: SocketAddr,
    /// The server's process id (for its CPU time).
    pub server_pid: u32,
    /// Concurrent clients, each on its own connection and thread.
    pub clients: usize,
    /// When to stop.
    pub limits: Limits,
    /// The bytes of the next request; called once per request actually sent.
    pub request: &'a MakeRequest<'a>,
    /// Whether a status code counts as success.
    pub ok_status: fn(u16) -> bool,
}

/// Failures kept as text per phase.
const FAILURE_SAMPLES: usize = 5;

/// What one client thread saw.
#[derive(Default)]
struct ClientTally {
    ok: u64,
    failures: u64,
    failure_samples: Vec<String>,
    latencies: Vec<Duration>,
}

impl Phase<'_> {
    /// Runs the phase. Panics (with a message) if a client cannot connect at all.
    pub fn run(&self) -> PhaseResult {
        let sent = AtomicU64::new(0);
        let start = Barrier::new(self.clients + 1);
        let (tallies, elapsed, cpu) = thread::scope(|scope| {
            let workers: Vec<_> = (0..self.clients)
                .map(|_| scope.spawn(|| self.client_loop(&sent, &start)))
                .collect();
            start.wait();
            let began = Instant::now();
            let cpu_before = CpuTimes::now(self.server_pid);
            let tallies: Vec<ClientTally> = workers
                .into_iter()
                .map(|w| w.join().expect("a benchmark client thread panicked"))
                .collect();
            let elapsed = began.elapsed();
            (
                tallies,
                elapsed,
                CpuTimes::now(self.server_pid).since(&cpu_before),
            )
        });
        merge(tallies, elapsed, cpu)
    }

    /// One client: connect, wait for the start signal, send until a limit is reached.
    fn client_loop(&self, sent: &AtomicU64, start: &Barrier) -> ClientTally {
        let mut client = Client::connect(self.addr)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.addr));
        let mut tally = ClientTally::default();
        start.wait();
        let deadline = Instant::now() + self.limits.max_time;
        while sent.fetch_add(1, Ordering::Relaxed) < self.limits.max_requests
            && Instant::now() < deadline
        {
            let request = (self.request)();
            let began = Instant::now();
            let outcome = client.send(&request);
            tally.latencies.push(began.elapsed());
            let failure = match outcome {
                Ok(reply) if (self.ok_status)(reply.status) => None,
                Ok(reply) => Some(format!(
                    "status {}: {}",
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                )),
                Err(e) => Some(format!("connection error: {e}")),
            };
            match failure {
                None => tally.ok += 1,
                Some(text) => {
                    tally.failures += 1;
                    if tally.failure_samples.len() < FAILURE_SAMPLES {
                        tally.failure_samples.push(text);
                    }
                }
            }
        }
        tally
    }
}

/// CPU time used so far by the server, this process, and the whole machine.
struct CpuTimes {
    server: Duration,
    bench: Duration,
    machine: Duration,
}

impl CpuTimes {
    fn now(server_pid: u32) -> CpuTimes {
        CpuTimes {
            server: procfs::cpu_time(server_pid).unwrap_or_default(),
            bench: procfs::own_cpu_time().unwrap_or_default(),
            machine: procfs::machine_busy_time().unwrap_or_default(),
        }
    }

    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            server: self.server.saturating_sub(earlier.server),
            bench: self.bench.saturating_sub(earlier.bench),
            machine: self.machine.saturating_sub(earlier.machine),
        }
    }
}

fn merge(tallies: Vec<ClientTally>, elapsed: Duration, cpu: CpuTimes) -> PhaseResult {
    let mut ok = 0;
    let mut failures = 0;
    let mut failure_samples = Vec::new();
    let mut samples = Vec::new();
    for tally in tallies {
        ok += tally.ok;
        failures += tally.failures;
        failure_samples.extend(tally.failure_samples);
        samples.extend(tally.latencies);
    }
    failure_samples.truncate(FAILURE_SAMPLES);
    PhaseResult {
        ok,
        failures,
        failure_samples,
        elapsed,
        latencies: Latencies::from_samples(samples),
        server_cpu: cpu.server,
        bench_cpu: cpu.bench,
        other_cpu: cpu.machine.saturating_sub(cpu.server + cpu.bench),
    }
}
