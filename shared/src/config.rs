//! Configuration from environment variables: required, optional and typed values with
//! clear messages. A variable set to the empty string counts as unset.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// A configuration problem; `main` prints it on one line and exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where variables come from: the process environment, or a fixed map in tests.
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    /// A fixed set of variables (tests).
    pub fn from_pairs<K: ToString, V: ToString>(pairs: &[(K, V)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The variable's value; unset and empty are both `None`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// The variable's value, or a string default.
    pub fn get_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }

    /// A variable that must be set.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError(format!("{name} is required but not set")))
    }

    /// A typed variable with a default; an unparsable value is an error naming it.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError(format!("{name} has an invalid value {raw:?}"))),
        }
    }

    /// A whole number of seconds (at least `min`), as a `Duration`.
    pub fn seconds_or(&self, name: &str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        let secs: u64 = self.parse_or(name, default)?;
        if secs < min {
            return Err(ConfigError(format!(
                "{name} must be at least {min} (got {secs})"
            )));
        }
        Ok(Duration::from_secs(secs))
    }

    /// A comma-separated list, trimmed, empties skipped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The per-service defaults of the common HTTP settings.
#[derive(Debug, Clone, Copy)]
pub struct HttpDefaults {
    /// Requests per minute per client IP (`RATE_LIMIT`).
    pub rate_limit: u32,
    /// Largest accepted request body in bytes (`MAX_BODY_SIZE`).
    pub max_body_size: usize,
}

/// The HTTP settings every service reads: `BIND`, `PORT`, `IDLE_TIMEOUT`, `WORKERS`,
/// `MAX_CONNECTIONS`, `RATE_LIMIT`, `MAX_BODY_SIZE`.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address to listen on (`PORT=0` picks a free port).
    pub bind: SocketAddr,
    /// How long a connection may stay silent, and a read or write may stall.
    pub idle_timeout: Duration,
    /// Request handlers that may run at once.
    pub workers: usize,
    /// Open connections beyond which new ones are closed at once.
    pub max_connections: usize,
    /// Requests per minute per client IP on `/api/`; 0 turns the limit off.
    pub rate_limit: u32,
    /// Largest accepted request body in bytes.
    pub max_body_size: usize,
}

impl HttpConfig {
    /// Reads the common HTTP settings with the service's defaults.
    pub fn from_env(env: &Env, defaults: HttpDefaults) -> Result<HttpConfig, ConfigError> {
        let ip: IpAddr = env.parse_or("BIND", IpAddr::from([0, 0, 0, 0]))?;
        let port: u16 = env.parse_or("PORT", 8000)?;
        let workers: usize = env.parse_or("WORKERS", 4)?;
        let max_connections: usize = env.parse_or("MAX_CONNECTIONS", 1024)?;
        if workers == 0 || max_connections == 0 {
            return Err(ConfigError(
                "WORKERS and MAX_CONNECTIONS must be at least 1".to_string(),
            ));
        }
        Ok(HttpConfig {
            bind: SocketAddr::new(ip, port),
            idle_timeout: env.seconds_or("IDLE_TIMEOUT", 30, 1)?,
            workers,
            max_connections,
            rate_limit: env.parse_or("RATE_LIMIT", defaults.rate_limit)?,
            max_body_size: env.parse_or("MAX_BODY_SIZE", defaults.max_body_size)?,
        })
    }
}

/// Help text lines for the common variables, for `--help`.
pub const COMMON_VARS_HELP: &str = "\
  BIND             0.0.0.0   listen address
  PORT             8000      listen port (0 = any free port)
  LOG_LEVEL        info      error, warn, info, debug, trace
  IDLE_TIMEOUT     30        seconds a connection may stay silent or stall
  WORKERS          4         request handlers running at once
  MAX_CONNECTIONS  1024      open connections beyond which new ones are closed
  UI_LINKS         errors=:5010,logs=:5011,metrics=:5012
                             where each web UI lives (name=http(s) URL or :port, the
                             page's own host on that port), for the pages' header
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_counts_as_unset() {
        let env = Env::from_pairs(&[("A", ""), ("B", "x")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.get("B").as_deref(), Some("x"));
        assert!(env.required("A").unwrap_err().0.contains("A is required"));
    }

    #[test]
    fn bad_number_names_variable_and_value() {
        let env = Env::from_pairs(&[("PORT", "eighty")]);
        let err = env.parse_or::<u16>("PORT", 8000).unwrap_err();
        assert_eq!(err.0, "PORT has an invalid value \"eighty\"");
    }

    #[test]
    fn list_trims_and_skips_empties() {
        let env = Env::from_pairs(&[("L", " a@x, ,b@y ,")]);
        assert_eq!(env.list("L"), vec!["a@x", "b@y"]);
    }
}
