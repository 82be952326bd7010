//! The browser-relay's configuration, read from the environment.

use std::time::Duration;

use shared::config::{ConfigError, Env, HttpDefaults};
use shared::secret::Secret;
use shared::service::{CommonConfig, Defaults};

use crate::cors::Origins;

/// This service's defaults of the settings every service has. `RATE_LIMIT` is per DSN key
/// (and per client IP), with a global cap of ten times it.
pub const COMMON_DEFAULTS: Defaults = Defaults {
    api_key_var: "ADMIN_API_KEY",
    database_path: "./data/browser-relay.db",
    http: HttpDefaults {
        rate_limit: 300,
        max_body_size: 64 * 1024,
    },
};

/// `--help` text for this service's own variables.
pub const VARS_HELP: &str = "\
  ADMIN_API_KEY              (required)      X-API-Key of the admin endpoints
  ERROR_TRACKER_URL          (required)      e.g. http://error-tracker:8000
  ERROR_TRACKER_API_KEY      (required)
  METRICS_COLLECTOR_URL      (required)      e.g. http://metrics-collector:8000
  METRICS_COLLECTOR_API_KEY  (required)
  DATABASE_PATH              ./data/browser-relay.db
  CORS_ORIGINS               (empty)         allowed origins: https://app.example.com,https://*.example.com
  DSN_KEYS                   (empty)         keys seeded at start: project:key,project2:key2
  RETENTION_DAYS             90              source maps older than this are deleted
  RATE_LIMIT                 300             per minute per DSN key and per client IP; 10x globally
  MAX_BODY_SIZE              65536           bytes, browser endpoints (source maps: 5 MiB)
  FORWARD_QUEUE              10000           payloads waiting to be forwarded, at most
  UPSTREAM_TIMEOUT           10              seconds per step of an upstream request
";

/// An upstream service: where it is and its API key.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL without a trailing slash.
    pub url: String,
    /// Its `API_KEY` (never printed by `Debug`).
    pub api_key: Secret,
}

/// Everything the relay reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ADMIN_API_KEY`, `DATABASE_PATH` and the HTTP settings.
    pub common: CommonConfig,
    pub error_tracker: Upstream,
    pub metrics_collector: Upstream,
    /// `CORS_ORIGINS`.
    pub origins: Origins,
    /// `DSN_KEYS`: (project, key) pairs created at start when missing.
    pub seed_keys: Vec<(String, String)>,
    /// Source maps older than this many days are deleted.
    pub retention_days: u32,
    /// `FORWARD_QUEUE`: payloads waiting to be forwarded, at most.
    pub forward_queue: usize,
    /// Timeout of each step of an upstream request (connect at most 5 s; send; answer).
    pub upstream_timeout: Duration,
}

impl Config {
    /// Reads and checks the configuration.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let forward_queue: usize = env.parse_or("FORWARD_QUEUE", 10_000)?;
        if forward_queue == 0 {
            return Err(ConfigError("FORWARD_QUEUE must be at least 1".to_string()));
        }
        Ok(Config {
            common: CommonConfig::from_env(env, COMMON_DEFAULTS)?,
            error_tracker: upstream(env, "ERROR_TRACKER")?,
            metrics_collector: upstream(env, "METRICS_COLLECTOR")?,
            origins: Origins::parse(&env.get("CORS_ORIGINS").unwrap_or_default())?,
            seed_keys: shared::keys::parse_seed(
                "DSN_KEYS",
                &env.get("DSN_KEYS").unwrap_or_default(),
            )?,
            retention_days: env.parse_or("RETENTION_DAYS", 90)?,
            forward_queue,
            upstream_timeout: env.seconds_or("UPSTREAM_TIMEOUT", 10, 1)?,
        })
    }
}

/// `<NAME>_URL` (http or https) and `<NAME>_API_KEY`, both required.
fn upstream(env: &Env, name: &str) -> Result<Upstream, ConfigError> {
    let url_var = format!("{name}_URL");
    let url = env
        .required(&url_var)?
        .trim()
        .trim_end_matches('/')
        .to_string();
    let valid = url.parse::<ureq::http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
    });
    if !valid {
        return Err(ConfigError(format!(
            "{url_var} has an invalid value {url:?} (expected an http:// or https:// URL)"
        )));
    }
    Ok(Upstream {
        url,
        api_key: Secret::new(env.required(&format!("{name}_API_KEY"))?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(extra: &[(&str, &str)]) -> Env {
        let mut pairs = vec![
            ("ADMIN_API_KEY", "admin-k3y-marker"),
            ("ERROR_TRACKER_URL", "http://errors:8000/"),
            ("ERROR_TRACKER_API_KEY", "errors-k3y-marker"),
            ("METRICS_COLLECTOR_URL", "http://metrics:8000"),
            ("METRICS_COLLECTOR_API_KEY", "metrics-k3y-marker"),
        ];
        pairs.extend_from_slice(extra);
        Env::from_pairs(&pairs)
    }

    #[test]
    fn defaults_and_secrets() {
        let config = Config::from_env(&env(&[])).unwrap();
        assert_eq!(config.error_tracker.url, "http://errors:8000");
        assert_eq!(config.common.http.rate_limit, 300);
        assert_eq!(config.common.http.max_body_size, 65_536);
        assert_eq!(config.forward_queue, 10_000);
        assert_eq!(config.retention_days, 90);
        let shown = format!("{config:?}");
        for secret in [
            "admin-k3y-marker",
            "errors-k3y-marker",
            "metrics-k3y-marker",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn required_and_invalid_settings_are_named() {
        let missing = Config::from_env(&Env::from_pairs(&[("ADMIN_API_KEY", "k")])).unwrap_err();
        assert!(missing.0.contains("ERROR_TRACKER_URL"), "{}", missing.0);
        let bad_url = Config::from_env(&env(&[("METRICS_COLLECTOR_URL", "ftp://x")])).unwrap_err();
        assert!(
            bad_url.0.starts_with("METRICS_COLLECTOR_URL"),
            "{}",
            bad_url.0
        );
    }
}
