//! The error-tracker's configuration, read from the environment.

use std::collections::HashMap;
use std::time::Duration;

use lettre::message::Mailbox;
use shared::config::{ConfigError, Env, HttpDefaults};
use shared::secret::Secret;
use shared::service::{CommonConfig, Defaults};

/// This service's defaults of the settings every service has.
pub const COMMON_DEFAULTS: Defaults = Defaults {
    api_key_var: "API_KEY",
    database_path: "./data/errors.db",
    http: HttpDefaults {
        rate_limit: 6000,
        max_body_size: 256 * 1024,
    },
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
  SMTP_HOST           (unset = no SMTP)        SMTP server for email alerts
  SMTP_PORT           25
  SMTP_TLS            auto                     auto: implicit TLS on port 465, else STARTTLS when
                                               offered (required when credentials are set);
                                               tls, starttls, or none (plain text: the only mode
                                               that sends AUTH unencrypted)
  SMTP_USERNAME       (unset)                  AUTH only when both username and password are set
  SMTP_PASSWORD       (unset)
  SMTP_FROM           errors@example.com       sender of alert emails
  POSTMARK_API_TOKEN  (unset = no Postmark)    email alerts through Postmark's HTTP API
  POSTMARK_FROM       SMTP_FROM                sender of Postmark alert emails
  POSTMARK_API_URL    https://api.postmarkapp.com
  ALERT_EMAILS        (unset)                  comma-separated recipients of email alerts
  ALERT_WEBHOOK_URL   (unset = no webhook)     POST a JSON alert (Slack/Discord/ntfy `text` field)
  ALERT_TIMEOUT       10                       seconds an SMTP step or a Postmark call may take
  SENTRY_KEYS         (unset)                  Sentry SDK keys seeded at start: project:key,...
  PROJECT_CONTAINERS  (unset)                  the log viewer's containers of each project, for
                                               Logs around this time: shop=web|worker,...
";

/// Everything the error-tracker reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `API_KEY`, `DATABASE_PATH` and the HTTP settings.
    pub common: CommonConfig,
    /// Resolved groups older than this many days are deleted.
    pub retention_days: u32,
    /// Time between retention runs.
    pub retention_interval: Duration,
    /// Occurrences kept per group (the newest).
    pub max_occurrences: u32,
    /// Base of links in alerts, without a trailing slash.
    pub base_url: String,
    /// Where alerts go.
    pub alerts: AlertConfig,
    /// `PROJECT_CONTAINERS`: each project's containers in the log viewer.
    pub project_containers: HashMap<String, Vec<String>>,
    /// `SENTRY_KEYS`: (project, key) pairs created at start when missing.
    pub seed_sentry_keys: Vec<(String, String)>,
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
            common: CommonConfig::from_env(env, COMMON_DEFAULTS)?,
            retention_days: env.parse_or("RETENTION_DAYS", 90)?,
            retention_interval: env.seconds_or("RETENTION_INTERVAL", 86_400, 1)?,
            max_occurrences,
            base_url: env
                .get_or("BASE_URL", "http://localhost:5010")
                .trim_end_matches('/')
                .to_string(),
            alerts: AlertConfig::from_env(env)?,
            project_containers: project_containers(
                &env.get("PROJECT_CONTAINERS").unwrap_or_default(),
            )?,
            seed_sentry_keys: shared::keys::parse_seed(
                "SENTRY_KEYS",
                &env.get("SENTRY_KEYS").unwrap_or_default(),
            )?,
        })
    }
}

/// Parses `project=container|container,...` (`PROJECT_CONTAINERS`).
fn project_containers(text: &str) -> Result<HashMap<String, Vec<String>>, ConfigError> {
    let mut map = HashMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = || {
            ConfigError(format!(
                "PROJECT_CONTAINERS: expected project=container|container (got {item:?})"
            ))
        };
        let (project, containers) = item.split_once('=').ok_or_else(bad)?;
        let containers: Vec<String> = containers
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        if project.trim().is_empty() || containers.is_empty() {
            return Err(bad());
        }
        map.insert(project.trim().to_string(), containers);
    }
    Ok(map)
}

/// The alert channels' settings. A channel is on when its settings are complete (see
/// `alerts::Channels`); nothing here opens a connection.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// `SMTP_*`: set when `SMTP_HOST` is.
    pub smtp: Option<SmtpConfig>,
    /// `POSTMARK_*`: set when `POSTMARK_API_TOKEN` is.
    pub postmark: Option<PostmarkConfig>,
    /// `ALERT_EMAILS`: recipients of both email channels.
    pub recipients: Vec<Mailbox>,
    /// `ALERT_WEBHOOK_URL`.
    pub webhook_url: Option<String>,
    /// `ALERT_TIMEOUT`: bound on each SMTP step (connect, every read and write) and on a
    /// whole Postmark call.
    pub timeout: Duration,
}

/// How an SMTP connection is secured (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Port 465: implicit TLS. Other ports: STARTTLS when the server offers it, and required
    /// when credentials are set (they are never sent in clear in this mode).
    Auto,
    /// TLS from the first byte, whatever the port.
    Implicit,
    /// STARTTLS, and fail when the server does not offer it.
    StartTls,
    /// Plain text, never STARTTLS: the operator's explicit choice, the only mode in which
    /// AUTH may go over an unencrypted connection.
    None,
}

/// SMTP server settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `SMTP_HOST`.
    pub host: String,
    /// `SMTP_PORT` (25).
    pub port: u16,
    /// `SMTP_TLS` (`auto`).
    pub tls: SmtpTls,
    /// `SMTP_USERNAME` and `SMTP_PASSWORD`, when both are set.
    pub credentials: Option<(String, Secret)>,
    /// `SMTP_FROM` (`errors@example.com`).
    pub from: Mailbox,
}

/// Postmark settings.
#[derive(Debug, Clone)]
pub struct PostmarkConfig {
    /// `POSTMARK_API_TOKEN`.
    pub token: Secret,
    /// `POSTMARK_FROM`, defaulting to `SMTP_FROM`.
    pub from: Mailbox,
    /// `POSTMARK_API_URL` without a trailing slash.
    pub api_url: String,
}

const DEFAULT_FROM: &str = "errors@example.com";

impl AlertConfig {
    /// Reads and checks the alert settings: addresses and URLs must parse.
    pub fn from_env(env: &Env) -> Result<AlertConfig, ConfigError> {
        let smtp_from = env.get_or("SMTP_FROM", DEFAULT_FROM);
        let smtp = match env.get("SMTP_HOST") {
            None => None,
            Some(host) => Some(SmtpConfig {
                host: host.trim().to_string(),
                port: env.parse_or("SMTP_PORT", 25)?,
                tls: smtp_tls(env)?,
                credentials: smtp_credentials(env),
                from: mailbox("SMTP_FROM", &smtp_from)?,
            }),
        };
        let postmark = match env.get("POSTMARK_API_TOKEN") {
            None => None,
            Some(token) => Some(PostmarkConfig {
                token: Secret::new(token.trim()),
                from: mailbox("POSTMARK_FROM", &env.get_or("POSTMARK_FROM", &smtp_from))?,
                api_url: http_url(
                    "POSTMARK_API_URL",
                    &env.get_or("POSTMARK_API_URL", "https://api.postmarkapp.com"),
                )?
                .trim_end_matches('/')
                .to_string(),
            }),
        };
        let recipients = env
            .list("ALERT_EMAILS")
            .iter()
            .map(|address| mailbox("ALERT_EMAILS", address))
            .collect::<Result<_, _>>()?;
        let webhook_url = match env.get("ALERT_WEBHOOK_URL") {
            None => None,
            Some(url) => Some(http_url("ALERT_WEBHOOK_URL", &url)?),
        };
        Ok(AlertConfig {
            smtp,
            postmark,
            recipients,
            webhook_url,
            timeout: env.seconds_or("ALERT_TIMEOUT", 10, 1)?,
        })
    }
}

fn smtp_tls(env: &Env) -> Result<SmtpTls, ConfigError> {
    match env.get_or("SMTP_TLS", "auto").trim() {
        "auto" => Ok(SmtpTls::Auto),
        "tls" => Ok(SmtpTls::Implicit),
        "starttls" => Ok(SmtpTls::StartTls),
        "none" => Ok(SmtpTls::None),
        other => Err(ConfigError(format!(
            "SMTP_TLS has an invalid value {other:?} (expected auto, tls, starttls or none)"
        ))),
    }
}

/// Both or nothing: AUTH only happens when username and password are set.
fn smtp_credentials(env: &Env) -> Option<(String, Secret)> {
    match (env.get("SMTP_USERNAME"), env.get("SMTP_PASSWORD")) {
        (Some(username), Some(password)) => Some((username, Secret::new(password))),
        (None, None) => None,
        (username, _) => {
            let missing = if username.is_some() {
                "SMTP_PASSWORD"
            } else {
                "SMTP_USERNAME"
            };
            log::warn!("{missing} is not set: SMTP alerts are sent without AUTH");
            None
        }
    }
}

fn mailbox(name: &str, value: &str) -> Result<Mailbox, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError(format!("{name} has an invalid email address {value:?}")))
}

/// An `http://` or `https://` URL with a host.
fn http_url(name: &str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim();
    let valid = value.parse::<ureq::http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
    });
    if valid {
        Ok(value.to_string())
    } else {
        Err(ConfigError(format!(
            "{name} has an invalid value {value:?} (expected an http:// or https:// URL)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn api_key_is_required_and_defaults_apply() {
        let err = Config::from_env(&Env::from_pairs(&[("PORT", "1")])).unwrap_err();
        assert_eq!(err.0, "API_KEY is required but not set");
        let config = Config::from_env(&Env::from_pairs(&[("API_KEY", "k")])).unwrap();
        assert_eq!(config.common.http.rate_limit, 6000);
        assert_eq!(config.common.http.max_body_size, 262_144);
        assert_eq!(config.max_occurrences, 5);
        assert_eq!(
            config.common.database_path,
            PathBuf::from("./data/errors.db")
        );
    }

    #[test]
    fn debug_of_the_config_never_prints_the_api_key_or_passwords() {
        let env = Env::from_pairs(&[
            ("API_KEY", "k3y-7f3a-marker"),
            ("SMTP_HOST", "h"),
            ("SMTP_USERNAME", "u"),
            ("SMTP_PASSWORD", "pa55-marker"),
            ("POSTMARK_API_TOKEN", "t0ken-marker"),
        ]);
        let config = Config::from_env(&env).unwrap();
        let shown = format!("{config:?}");
        for secret in ["k3y-7f3a-marker", "pa55-marker", "t0ken-marker"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("api_key: Secret(..)"), "{shown}");
        assert_eq!(config.common.api_key.expose(), "k3y-7f3a-marker");
    }

    #[test]
    fn project_containers_map_projects_to_their_containers() {
        let map = project_containers(" shop=shop_web| shop_worker ,billing=billing_api,").unwrap();
        assert_eq!(map["shop"], vec!["shop_web", "shop_worker"]);
        assert_eq!(map["billing"], vec!["billing_api"]);
        assert!(project_containers("").unwrap().is_empty());
        for bad in ["shop", "=web", "shop=", "shop=|"] {
            let err = project_containers(bad).unwrap_err();
            assert!(err.0.contains("PROJECT_CONTAINERS"), "{bad}: {}", err.0);
        }
    }

    #[test]
    fn bad_numbers_are_named() {
        let env = Env::from_pairs(&[("API_KEY", "k"), ("RETENTION_DAYS", "ninety")]);
        let err = Config::from_env(&env).unwrap_err();
        assert_eq!(err.0, "RETENTION_DAYS has an invalid value \"ninety\"");
    }

    fn alerts(pairs: &[(&str, &str)]) -> Result<AlertConfig, ConfigError> {
        AlertConfig::from_env(&Env::from_pairs(pairs))
    }

    #[test]
    fn alert_defaults() {
        let config = alerts(&[("SMTP_HOST", "mail.example.org")]).unwrap();
        let smtp = config.smtp.unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example.org", 25));
        assert_eq!(smtp.tls, SmtpTls::Auto);
        assert_eq!(smtp.from.to_string(), "errors@example.com");
        assert!(smtp.credentials.is_none());
        assert!(config.postmark.is_none() && config.webhook_url.is_none());
        assert!(config.recipients.is_empty());
        assert_eq!(config.timeout, Duration::from_secs(10));
        let postmark = alerts(&[("POSTMARK_API_TOKEN", "t"), ("SMTP_FROM", "me@x.org")])
            .unwrap()
            .postmark
            .unwrap();
        assert_eq!(postmark.api_url, "https://api.postmarkapp.com");
        assert_eq!(postmark.from.to_string(), "me@x.org");
        assert!(!format!("{postmark:?}").contains("\"t\""));
    }

    #[test]
    fn recipients_are_trimmed_and_empties_skipped() {
        let config = alerts(&[("ALERT_EMAILS", " a@x.org, ,Bob <b@y.org> ,")]).unwrap();
        let recipients: Vec<String> = config.recipients.iter().map(|m| m.to_string()).collect();
        assert_eq!(recipients, ["a@x.org", "Bob <b@y.org>"]);
        let err = alerts(&[("ALERT_EMAILS", "a@x.org,not an address")]).unwrap_err();
        assert_eq!(
            err.0,
            "ALERT_EMAILS has an invalid email address \"not an address\""
        );
    }

    #[test]
    fn credentials_need_both_halves() {
        let both = [
            ("SMTP_HOST", "h"),
            ("SMTP_USERNAME", "u"),
            ("SMTP_PASSWORD", "p"),
        ];
        let (user, password) = alerts(&both).unwrap().smtp.unwrap().credentials.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("u", "p"));
        let half = [("SMTP_HOST", "h"), ("SMTP_USERNAME", "u")];
        assert!(alerts(&half).unwrap().smtp.unwrap().credentials.is_none());
    }

    #[test]
    fn bad_alert_settings_are_named() {
        let err = alerts(&[("SMTP_HOST", "h"), ("SMTP_TLS", "maybe")]).unwrap_err();
        assert!(err.0.starts_with("SMTP_TLS has an invalid value \"maybe\""));
        let err = alerts(&[("ALERT_WEBHOOK_URL", "ftp://x")]).unwrap_err();
        assert!(err
            .0
            .starts_with("ALERT_WEBHOOK_URL has an invalid value \"ftp://x\""));
        let err = alerts(&[("SMTP_HOST", "h"), ("SMTP_PORT", "smtp")]).unwrap_err();
        assert_eq!(err.0, "SMTP_PORT has an invalid value \"smtp\"");
        let url = alerts(&[
            ("POSTMARK_API_TOKEN", "t"),
            ("POSTMARK_API_URL", "http://h:9/"),
        ]);
        assert_eq!(url.unwrap().postmark.unwrap().api_url, "http://h:9");
    }
}
