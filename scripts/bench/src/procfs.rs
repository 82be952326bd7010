//! What Linux's `/proc` says about a process: memory (`status`) and CPU time (`stat`).

use std::time::Duration;

/// A `kB` field of `/proc/<pid>/status`, e.g. `VmRSS` (resident now) or `VmHWM` (peak
/// resident). `None` when the process is gone or the field is missing.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// User plus system CPU time used so far by process `pid` (all its threads).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    cpu_time_from(&format!("/proc/{pid}/stat"))
}

/// User plus system CPU time used so far by this process (all its threads).
pub fn own_cpu_time() -> Option<Duration> {
    cpu_time_from("/proc/self/stat")
}

fn cpu_time_from(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of stat(5); `after_name` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks_per_second(),
    ))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// TCP sockets in TIME_WAIT on the machine (`tw` in `/proc/net/sockstat`). Every
/// connection the server closes leaves one for a minute; with tens of thousands left by a
/// run just before, loopback `connect()` gets slower, which the `Connection: close` phases
/// measure.
pub fn tcp_time_wait() -> Option<u64> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let tcp = sockstat.lines().find(|line| line.starts_with("TCP:"))?;
    let mut fields = tcp.split_whitespace();
    fields.find(|&field| field == "tw")?;
    fields.next()?.parse().ok()
}

/// The share of the machine's CPU time (0–1, all cores) spent busy over `window`, from
/// `/proc/stat`: how much other work competes with a benchmark.
pub fn machine_busy(window: Duration) -> Option<f64> {
    let before = cpu_jiffies()?;
    std::thread::sleep(window);
    let after = cpu_jiffies()?;
    let total = after.0.saturating_sub(before.0);
    let idle = after.1.saturating_sub(before.1);
    (total > 0).then(|| 1.0 - idle as f64 / total as f64)
}

/// Total and idle (idle + iowait) jiffies over all cores.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let idle = values.get(3)? + values.get(4)?;
    Some((values.iter().sum(), idle))
}

/// CPU time the whole machine (every process, every core) has been busy since boot.
pub fn machine_busy_time() -> Option<Duration> {
    let (total, idle) = cpu_jiffies()?;
    Some(Duration::from_secs_f64(
        total.saturating_sub(idle) as f64 / clock_ticks_per_second(),
    ))
}
