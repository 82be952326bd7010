//! Pieces every benchmark's Markdown report shares: verdicts beside targets and how busy the
//! machine was.

/// `met`, or a bold `missed`.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

/// How busy the CPU was before the run (see [`crate::procfs::machine_busy`]), flagged when
/// other work was competing for it (more than 10% busy).
pub fn describe_busy(busy: Option<f64>) -> String {
    match busy {
        None => "CPU use before the run unknown".to_string(),
        Some(busy) if busy > 0.10 => format!(
            "CPU {:.0}% busy in the second before the run: **other work was running, the figures are skewed**",
            busy * 100.0
        ),
        Some(busy) => format!("CPU {:.0}% busy in the second before the run", busy * 100.0),
    }
}

/// The first field of `/proc/loadavg` (1-minute load average), `?` when unreadable.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".to_string())
}
