//! The error-tracker's configuration, read from the environment.

use std::path::PathBuf;
use std::time::Duration;

use shared::config::{ConfigError, Env, HttpConfig, HttpDefaults};

/// Defaults of the common HTTP settings for this service.
pub const HTTP_DEFAULTS: HttpDefaults = HttpDefaults {
    rate_limit: 6000,
    max_body_size: 256 * 1024,
};

/// `--help` text for this service's own variables.
pub const VARS_HELP: &str = "\
  API_KEY             (required)               key for X-API-Key
  DATABASE_PATH       ./data/errors.db
  RATE_LIMIT          6000                     requests per minute per IP (0 = off)
  MAX_BODY_SIZE       262144                   bytes
  RETENTION_DAYS      90                       resolved groups older than this are deleted
  RETENTION_INTERVAL  86400                    seconds between retention runs
  MAX_OCCURRENCES     5                        occurrences kept per group
  BASE_URL            http://localhost:5010    used for links in alerts
";

/// Everything the error-tracker reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address, timeouts, limits.
    pub http: HttpConfig,
    /// The key every `/api/` request must carry.
    pub api_key: String,
    /// The SQLite file.
    pub database_path: PathBuf,
    /// Resolved groups older than this many days are deleted.
    pub retention_days: u32,
    /// Time between retention runs.
    pub retention_interval: Duration,
    /// Occurrences kept per group (the newest).
    pub max_occurrences: u32,
    /// Base of links in alerts, without a trailing slash.
    pub base_url: String,
}

impl Config {
    /// Reads and checks the configuration.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let max_occurrences: u32 = env.parse_or("MAX_OCCURRENCES", 5)?;
        if max_occurrences == 0 {
            return Err(ConfigError(
                "MAX_OCCURRENCES must be at least 1".to_string(),
            ));
        }
        Ok(Config {
            api_key: env.required("API_KEY")?,
            http: HttpConfig::from_env(env, HTTP_DEFAULTS)?,
            database_path: PathBuf::from(env.get_or("DATABASE_PATH", "./data/errors.db")),
            retention_days: env.parse_or("RETENTION_DAYS", 90)?,
            retention_interval: env.seconds_or("RETENTION_INTERVAL", 86_400, 1)?,
            max_occurrences,
            base_url: env
                .get_or("BASE_URL", "http://localhost:5010")
                .trim_end_matches('/')
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_required_and_defaults_apply() {
        let err = Config::from_env(&Env::from_pairs(&[("PORT", "1")])).unwrap_err();
        assert_eq!(err.0, "API_KEY is required but not set");
        let config = Config::from_env(&Env::from_pairs(&[("API_KEY", "k")])).unwrap();
        assert_eq!(config.http.rate_limit, 6000);
        assert_eq!(config.http.max_body_size, 262_144);
        assert_eq!(config.max_occurrences, 5);
        assert_eq!(config.database_path, PathBuf::from("./data/errors.db"));
    }

    #[test]
    fn bad_numbers_are_named() {
        let env = Env::from_pairs(&[("API_KEY", "k"), ("RETENTION_DAYS", "ninety")]);
        let err = Config::from_env(&env).unwrap_err();
        assert_eq!(err.0, "RETENTION_DAYS has an invalid value \"ninety\"");
    }
}
