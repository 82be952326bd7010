//! The log-viewer's configuration, read from the environment.

use std::path::PathBuf;
use std::time::Duration;

use shared::config::{ConfigError, Env, HttpDefaults};
use shared::service::{CommonConfig, Defaults};

/// This service's defaults of the settings every service has.
pub const COMMON_DEFAULTS: Defaults = Defaults {
    api_key_var: "API_KEY",
    database_path: "./data/logs.db",
    http: HttpDefaults {
        rate_limit: 600,
        max_body_size: 64 * 1024,
    },
};

/// `--help` text for this service's own variables.
pub const VARS_HELP: &str = "\
  API_KEY           (required)                   key for X-API-Key
  DATABASE_PATH     ./data/logs.db
  LOG_SOURCES       /var/lib/docker/containers   Docker's containers directory
  CONTAINERS        (all)                        names or globs, e.g. myapp_*,db
  MAX_ENTRIES       100000                       history cap (oldest deleted first)
  MAX_AGE_DAYS      0                            also delete entries older than this (0 = off)
  POLL_INTERVAL     2                            seconds between polls (decimals allowed)
  TAIL_BUFFER       65536                        bytes read back from the end at first sight
  RESCAN_INTERVAL   30                           seconds between scans of LOG_SOURCES
  MAX_TAIL_STREAMS  16                           concurrent live-tail connections
  RATE_LIMIT        600                          requests per minute per IP (0 = off)
  MAX_BODY_SIZE     65536                        bytes
";

/// Everything the log-viewer reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `API_KEY`, `DATABASE_PATH` and the HTTP settings.
    pub common: CommonConfig,
    /// Docker's containers directory.
    pub log_sources: PathBuf,
    /// Container name patterns; empty = every container.
    pub containers: Vec<String>,
    pub max_entries: u64,
    /// 0 = no age limit.
    pub max_age_days: u32,
    pub poll_interval: Duration,
    pub tail_buffer: u64,
    pub rescan_interval: Duration,
    pub max_tail_streams: usize,
}

impl Config {
    /// Reads and checks the configuration.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let max_entries: u64 = env.parse_or("MAX_ENTRIES", 100_000)?;
        if max_entries == 0 {
            return Err(ConfigError("MAX_ENTRIES must be at least 1".to_string()));
        }
        Ok(Config {
            common: CommonConfig::from_env(env, COMMON_DEFAULTS)?,
            log_sources: PathBuf::from(env.get_or("LOG_SOURCES", "/var/lib/docker/containers")),
            containers: env.list("CONTAINERS"),
            max_entries,
            max_age_days: env.parse_or("MAX_AGE_DAYS", 0)?,
            poll_interval: fractional_seconds(env, "POLL_INTERVAL", 2.0)?,
            tail_buffer: env.parse_or("TAIL_BUFFER", 65_536)?,
            rescan_interval: fractional_seconds(env, "RESCAN_INTERVAL", 30.0)?,
            max_tail_streams: env.parse_or("MAX_TAIL_STREAMS", 16)?,
        })
    }
}

/// Seconds with decimals allowed (tests poll every 0.1 s), at least 0.05.
fn fractional_seconds(env: &Env, name: &str, default: f64) -> Result<Duration, ConfigError> {
    let secs: f64 = env.parse_or(name, default)?;
    if !(0.05..=86_400.0).contains(&secs) {
        return Err(ConfigError(format!(
            "{name} must be between 0.05 and 86400 seconds (got {secs})"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let config = Config::from_env(&Env::from_pairs(&[("API_KEY", "k")])).unwrap();
        assert_eq!(config.common.http.rate_limit, 600);
        assert_eq!(config.poll_interval, Duration::from_secs(2));
        assert!(config.containers.is_empty());
        let err = Config::from_env(&Env::from_pairs(&[
            ("API_KEY", "k"),
            ("POLL_INTERVAL", "0"),
        ]))
        .unwrap_err();
        assert!(err.0.contains("POLL_INTERVAL"));
        let err = Config::from_env(&Env::from_pairs(&[
            ("API_KEY", "k"),
            ("MAX_ENTRIES", "many"),
        ]))
        .unwrap_err();
        assert_eq!(err.0, "MAX_ENTRIES has an invalid value \"many\"");
    }
}
