//! The metrics-collector's configuration, read from the environment.

use std::time::Duration;

use shared::config::{ConfigError, Env, HttpDefaults};
use shared::service::{CommonConfig, Defaults};

use crate::clock::Clock;

/// This service's defaults of the settings every service has.
pub const COMMON_DEFAULTS: Defaults = Defaults {
    api_key_var: "API_KEY",
    database_path: "./data/metrics.db",
    http: HttpDefaults {
        rate_limit: 6000,
        max_body_size: 512 * 1024,
    },
};

/// `--help` text for this service's own variables.
pub const VARS_HELP: &str = "\
  API_KEY               (required)           key for X-API-Key
  DATABASE_PATH         ./data/metrics.db
  RATE_LIMIT            6000                 requests per minute per IP (0 = off)
  MAX_BODY_SIZE         524288               bytes
  RETENTION_RAW         1                    hours of raw points (deleted only once rolled up)
  RETENTION_MINUTE      24                   hours of minute rollups (more than RETENTION_RAW)
  RETENTION_HOURLY      30                   days of hour rollups
  AGGREGATION_INTERVAL  60                   seconds between aggregation runs
";

/// Everything the metrics-collector reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `API_KEY`, `DATABASE_PATH` and the HTTP settings.
    pub common: CommonConfig,
    /// How long data is kept in each tier.
    pub retention: Retention,
    /// Time between aggregation runs.
    pub aggregation_interval: Duration,
    /// Where "now" comes from: the system clock, or a test's manual clock.
    pub clock: Clock,
}

/// How long each tier keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `RETENTION_RAW`: hours of raw points.
    pub raw_hours: i64,
    /// `RETENTION_MINUTE`: hours of minute rollups.
    pub minute_hours: i64,
    /// `RETENTION_HOURLY`: days of hour rollups.
    pub hour_days: i64,
}

impl Config {
    /// Reads and checks the configuration.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let retention = Retention {
            raw_hours: env.parse_or("RETENTION_RAW", 1)?,
            minute_hours: env.parse_or("RETENTION_MINUTE", 24)?,
            hour_days: env.parse_or("RETENTION_HOURLY", 30)?,
        };
        retention.check()?;
        Ok(Config {
            common: CommonConfig::from_env(env, COMMON_DEFAULTS)?,
            retention,
            aggregation_interval: env.seconds_or("AGGREGATION_INTERVAL", 60, 1)?,
            clock: Clock::System,
        })
    }
}

impl Retention {
    /// Each tier must outlive the one it is rolled up from: an hour is recomputed from its
    /// minutes only while they are all kept, a minute from its raw points likewise.
    fn check(&self) -> Result<(), ConfigError> {
        if self.raw_hours < 1 {
            return Err(ConfigError(
                "RETENTION_RAW must be at least 1 (hour)".into(),
            ));
        }
        if self.minute_hours <= self.raw_hours {
            return Err(ConfigError(format!(
                "RETENTION_MINUTE ({} h) must be longer than RETENTION_RAW ({} h)",
                self.minute_hours, self.raw_hours
            )));
        }
        if self.hour_days * 24 <= self.minute_hours {
            return Err(ConfigError(format!(
                "RETENTION_HOURLY ({} days) must be longer than RETENTION_MINUTE ({} h)",
                self.hour_days, self.minute_hours
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn defaults_follow_the_spec() {
        let config = Config::from_env(&Env::from_pairs(&[("API_KEY", "k")])).unwrap();
        assert_eq!(config.common.http.rate_limit, 6000);
        assert_eq!(config.common.http.max_body_size, 524_288);
        assert_eq!(
            config.common.database_path,
            PathBuf::from("./data/metrics.db")
        );
        assert_eq!(
            config.retention,
            Retention {
                raw_hours: 1,
                minute_hours: 24,
                hour_days: 30
            }
        );
        assert_eq!(config.aggregation_interval, Duration::from_secs(60));
    }

    #[test]
    fn tiers_must_outlive_the_tier_below() {
        for (pairs, needle) in [
            (&[("RETENTION_RAW", "0")][..], "RETENTION_RAW"),
            (&[("RETENTION_MINUTE", "1")][..], "RETENTION_MINUTE"),
            (&[("RETENTION_HOURLY", "1")][..], "RETENTION_HOURLY"),
            (&[("AGGREGATION_INTERVAL", "0")][..], "AGGREGATION_INTERVAL"),
        ] {
            let mut env = vec![("API_KEY", "k")];
            env.extend_from_slice(pairs);
            let err = Config::from_env(&Env::from_pairs(&env)).unwrap_err();
            assert!(err.0.contains(needle), "{pairs:?}: {}", err.0);
        }
    }
}
