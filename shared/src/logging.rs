//! Logging to stderr through `log` + `simplelog`, level from `LOG_LEVEL`.

use log::LevelFilter;

/// Parses a `LOG_LEVEL` value (`error`, `warn`, `info`, `debug`, `trace`, any case).
pub fn parse_level(value: &str) -> Option<LevelFilter> {
    match value.trim().to_ascii_lowercase().as_str() {
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// Starts logging to stderr. An invalid level logs a warning and falls back to `info`.
/// Calling it twice (tests start several services in one process) is harmless.
pub fn init(level: Option<&str>) {
    let parsed = level.map(parse_level);
    let filter = parsed.flatten().unwrap_or(LevelFilter::Info);
    let config = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .build();
    let logger = simplelog::WriteLogger::new(filter, config, std::io::stderr());
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(filter);
    }
    if let (Some(bad), Some(None)) = (level, parsed) {
        log::warn!("LOG_LEVEL {bad:?} is not one of error, warn, info, debug, trace; using info");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(parse_level("DEBUG"), Some(LevelFilter::Debug));
        assert_eq!(parse_level("warn"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("loud"), None);
    }
}
