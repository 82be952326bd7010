//! What every service's `run()` does the same way: read the settings all services share
//! (key, database, HTTP), open and migrate the database with its read pool, bind the server.

use std::path::PathBuf;

use rusqlite::Connection;

use crate::cli::StartError;
use crate::config::{ConfigError, Env, HttpConfig, HttpDefaults};
use crate::db::{self, Pool};
use crate::http::{Server, ServerOptions};
use crate::secret::Secret;
use crate::web::UiLinks;

/// A service's defaults for the shared settings.
pub struct Defaults {
    /// The variable holding the key of `Guard::ApiKey` routes: `API_KEY`, or the relay's
    /// `ADMIN_API_KEY`.
    pub api_key_var: &'static str,
    /// `DATABASE_PATH` when unset, e.g. `./data/errors.db`.
    pub database_path: &'static str,
    /// `RATE_LIMIT` and `MAX_BODY_SIZE` when unset.
    pub http: HttpDefaults,
}

impl Defaults {
    /// `DATABASE_PATH`, or this service's default: where the service (and its `backup`
    /// subcommand) finds its database.
    pub fn database_path(&self, env: &Env) -> PathBuf {
        PathBuf::from(env.get_or("DATABASE_PATH", self.database_path))
    }
}

/// The settings every service reads: `API_KEY`, `DATABASE_PATH`, the HTTP ones and
/// `UI_LINKS`.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// The key of every `/api/` route (never printed by `Debug`).
    pub api_key: Secret,
    /// The SQLite file.
    pub database_path: PathBuf,
    /// Listen address, timeouts, limits.
    pub http: HttpConfig,
    /// `UI_LINKS`: where each web UI lives, for the pages' shared header.
    pub ui_links: UiLinks,
}

impl CommonConfig {
    /// Reads the shared settings with the service's defaults; the API key is required.
    pub fn from_env(env: &Env, defaults: Defaults) -> Result<CommonConfig, ConfigError> {
        Ok(CommonConfig {
            api_key: Secret::new(env.required(defaults.api_key_var)?),
            database_path: defaults.database_path(env),
            http: HttpConfig::from_env(env, defaults.http)?,
            ui_links: match env.get("UI_LINKS") {
                Some(text) => UiLinks::parse(&text)?,
                None => UiLinks::default(),
            },
        })
    }

    /// Opens the database: the writer's connection, migrated, and one read connection per
    /// worker, with the page caches `schema` asks for.
    pub fn open_database(&self, schema: &Schema) -> Result<(Connection, Pool), StartError> {
        let path = &self.database_path;
        let mut writer = db::open(path, schema.write_cache_kib)?;
        db::migrate(&mut writer, schema.migrations)?;
        let reads = Pool::new(self.http.workers, || db::open(path, schema.read_cache_kib))?;
        Ok((writer, reads))
    }

    /// Binds the HTTP server (`listening on <addr>` is logged) with the service's key.
    pub fn bind(&self) -> Result<Server, StartError> {
        let options = ServerOptions::new(&self.http, Some(self.api_key.clone()));
        Server::bind(self.http.bind, options)
            .map_err(|e| StartError::Start(format!("cannot listen on {}: {e}", self.http.bind)))
    }
}

/// A service's database schema and page-cache sizes.
pub struct Schema {
    /// The migrations, in order (see [`db::migrate`]).
    pub migrations: &'static [&'static str],
    /// Page cache of the writer's connection, KiB.
    pub write_cache_kib: u32,
    /// Page cache of each read connection, KiB.
    pub read_cache_kib: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Defaults = Defaults {
        api_key_var: "API_KEY",
        database_path: "./data/x.db",
        http: HttpDefaults {
            rate_limit: 60,
            max_body_size: 1024,
        },
    };

    #[test]
    fn api_key_is_required_and_never_printed() {
        let missing = CommonConfig::from_env(&Env::from_pairs::<&str, &str>(&[]), DEFAULTS);
        assert!(missing.is_err_and(|e| e.0.contains("API_KEY")));
        let env = Env::from_pairs(&[("API_KEY", "k3y-marker")]);
        let config = CommonConfig::from_env(&env, DEFAULTS).unwrap();
        assert_eq!(config.database_path, PathBuf::from("./data/x.db"));
        assert_eq!(config.http.rate_limit, 60);
        assert!(!format!("{config:?}").contains("k3y-marker"));
        assert_eq!(config.ui_links, UiLinks::default());
        let env = Env::from_pairs(&[("API_KEY", "k"), ("UI_LINKS", "logs=ftp://x")]);
        let err = CommonConfig::from_env(&env, DEFAULTS).unwrap_err();
        assert!(err.0.contains("UI_LINKS"), "{}", err.0);
    }
}
