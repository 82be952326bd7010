//! Public ingest keys: the relay's DSN keys and the error-tracker's Sentry keys. Each key
//! names the project what it sends is filed under. Keys live in a table of the service's
//! database (created by its own migration, with the columns of [`KEY_COLUMNS`]); the active
//! ones are held in memory ([`ActiveKeys`]), since every ingest request checks one. New keys
//! come from the OS's random source; `project:key,...` env values seed keys at start.

use std::collections::HashMap;
use std::io::Read;
use std::sync::RwLock;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use crate::cli::StartError;
use crate::config::ConfigError;
use crate::db::Pool;
use crate::http::{ApiError, Request};
use crate::time::format_ms;
use crate::writer::Writer;

/// The columns a key table has: `id INTEGER PRIMARY KEY, public_key TEXT NOT NULL UNIQUE,
/// project TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL`
/// (epoch ms).
pub const KEY_COLUMNS: &str = "id, public_key, project, active, created_at";

/// Longest project name a key can carry.
pub const MAX_PROJECT_CHARS: usize = 100;

/// A key as the admin APIs show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PublicKey {
    /// Row id (the admin API's `{id}`).
    pub id: i64,
    /// The key itself, as clients send it.
    pub public_key: String,
    /// The project what the key sends is filed under.
    pub project: String,
    /// Whether the key is accepted.
    pub active: bool,
    /// When the key was created (ISO 8601, UTC).
    pub created_at: String,
}

/// A change to a key table, run by the service's writer thread ([`KeyTable::apply`]).
#[derive(Debug, Clone)]
pub enum KeyJob {
    /// Create a key (or keep the existing one with that value).
    Create {
        project: String,
        public_key: String,
        now_ms: i64,
    },
    /// Deactivate the key with this id.
    Deactivate { id: i64 },
}

/// A key table, named by the service (a constant, never user input).
#[derive(Debug, Clone, Copy)]
pub struct KeyTable(&'static str);

impl KeyTable {
    /// The table called `name`.
    pub const fn new(name: &'static str) -> KeyTable {
        KeyTable(name)
    }

    /// Runs a job: the key created (or the existing one of that value), the key deactivated,
    /// or `None` when there is no key of that id.
    pub fn apply(&self, conn: &Connection, job: KeyJob) -> rusqlite::Result<Option<PublicKey>> {
        let table = self.0;
        match job {
            KeyJob::Create {
                project,
                public_key,
                now_ms,
            } => {
                conn.prepare_cached(&format!(
                    "INSERT INTO {table} (public_key, project, created_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (public_key) DO NOTHING"
                ))?
                .execute(params![public_key, project, now_ms])?;
                conn.prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM {table} WHERE public_key = ?1"
                ))?
                .query_row([public_key], key_from_row)
                .optional()
            }
            KeyJob::Deactivate { id } => conn
                .prepare_cached(&format!(
                    "UPDATE {table} SET active = 0 WHERE id = ?1 RETURNING {KEY_COLUMNS}"
                ))?
                .query_row([id], key_from_row)
                .optional(),
        }
    }

    /// Every key, oldest first.
    pub fn list(&self, conn: &Connection) -> rusqlite::Result<Vec<PublicKey>> {
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM {} ORDER BY id", self.0))?;
        let rows = stmt.query_map([], key_from_row)?;
        rows.collect()
    }
}

fn key_from_row(row: &rusqlite::Row) -> rusqlite::Result<PublicKey> {
    Ok(PublicKey {
        id: row.get(0)?,
        public_key: row.get(1)?,
        project: row.get(2)?,
        active: row.get(3)?,
        created_at: format_ms(row.get(4)?),
    })
}

/// Active public keys → their project.
#[derive(Debug, Default)]
pub struct ActiveKeys(RwLock<HashMap<String, String>>);

impl ActiveKeys {
    /// The active keys among `keys`.
    pub fn new(keys: &[PublicKey]) -> ActiveKeys {
        let active = ActiveKeys::default();
        for key in keys {
            active.update(key);
        }
        active
    }

    /// The project of an active key.
    pub fn project(&self, public_key: &str) -> Option<String> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        map.get(public_key).cloned()
    }

    /// Records a key's current state (created or deactivated).
    pub fn update(&self, key: &PublicKey) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        if key.active {
            map.insert(key.public_key.clone(), key.project.clone());
        } else {
            map.remove(&key.public_key);
        }
    }
}

/// At start: creates the seeded `(project, key)` pairs missing from `table` (each through
/// `writer` as `job(KeyJob::Create)`), then reads back the active keys. `var` names the
/// env variable the pairs came from, in errors.
pub fn seed<J: Send + 'static, R: Send + 'static>(
    var: &str,
    pairs: &[(String, String)],
    writer: &Writer<J, R>,
    job: fn(KeyJob) -> J,
    table: KeyTable,
    reads: &Pool,
) -> Result<ActiveKeys, StartError> {
    let now_ms = crate::time::now_ms();
    for (project, public_key) in pairs {
        let create = KeyJob::Create {
            project: project.clone(),
            public_key: public_key.clone(),
            now_ms,
        };
        writer
            .submit(job(create))
            .map_err(|e| StartError::Start(format!("cannot seed {var}: {e:?}")))?;
    }
    let stored = table
        .list(&reads.get())
        .map_err(|e| StartError::Start(format!("cannot read the keys of {var}: {e}")))?;
    Ok(ActiveKeys::new(&stored))
}

/// A new public key: 16 bytes from the OS's CSPRNG (`/dev/urandom`) as 32 hex characters.
pub fn generate() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The [`KeyJob::Create`] of an admin request `{"project": "..."}`: a new random key.
pub fn create_job(request: &Request) -> Result<KeyJob, ApiError> {
    let body: Value = request.json()?;
    let project = match body.get("project") {
        Some(Value::String(p)) if !p.is_empty() && p.chars().count() <= MAX_PROJECT_CHARS => {
            p.clone()
        }
        Some(Value::String(_)) => {
            return Err(ApiError::bad_request(format!(
                "field 'project' must be 1-{MAX_PROJECT_CHARS} characters"
            )))
        }
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("field 'project' is required"))
        }
        Some(_) => return Err(ApiError::bad_request("field 'project' must be a string")),
    };
    let public_key = generate().map_err(|e| ApiError::internal("generating a key", e))?;
    Ok(KeyJob::Create {
        project,
        public_key,
        now_ms: crate::time::now_ms(),
    })
}

/// The `{id}` of an admin path: a positive integer, else `404 <what> not found`.
pub fn path_id(request: &Request, what: &str) -> Result<i64, ApiError> {
    request
        .param("id")
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|&id| id > 0)
        .ok_or_else(|| ApiError::not_found(format!("{what} not found")))
}

/// Seeded keys from an env value `project:key,project2:key2` (keys of 16 characters or
/// more); `var` names the variable in errors.
pub fn parse_seed(var: &str, text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once(':') {
            Some((project, key)) if !project.trim().is_empty() && key.trim().len() >= 16 => {
                Ok((project.trim().to_string(), key.trim().to_string()))
            }
            _ => Err(ConfigError(format!(
                "{var}: expected project:key with a key of 16 characters or more (got {item:?})"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: KeyTable = KeyTable::new("keys");

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE keys (id INTEGER PRIMARY KEY, public_key TEXT NOT NULL UNIQUE,
             project TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL)",
        )
        .unwrap();
        conn
    }

    fn create(conn: &Connection, project: &str, key: &str) -> PublicKey {
        let job = KeyJob::Create {
            project: project.into(),
            public_key: key.into(),
            now_ms: 0,
        };
        TABLE.apply(conn, job).unwrap().unwrap()
    }

    #[test]
    fn only_active_keys_pass() {
        let conn = conn();
        let a = create(&conn, "shop", "a");
        create(&conn, "blog", "b");
        // Creating an existing key keeps it (and its project).
        assert_eq!(create(&conn, "other", "a"), a);
        let keys = ActiveKeys::new(&TABLE.list(&conn).unwrap());
        assert_eq!(keys.project("a").as_deref(), Some("shop"));
        assert_eq!(keys.project("b").as_deref(), Some("blog"));
        let gone = TABLE.apply(&conn, KeyJob::Deactivate { id: a.id }).unwrap();
        keys.update(&gone.unwrap());
        assert_eq!(keys.project("a"), None);
        assert_eq!(
            TABLE.apply(&conn, KeyJob::Deactivate { id: 99 }).unwrap(),
            None
        );
    }

    #[test]
    fn generated_keys_are_32_hex_and_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn seeds_are_project_key_pairs() {
        let keys = parse_seed("K", " shop:0123456789abcdef0123 , blog:fedcba9876543210 ,").unwrap();
        assert_eq!(
            keys,
            vec![
                ("shop".to_string(), "0123456789abcdef0123".to_string()),
                ("blog".to_string(), "fedcba9876543210".to_string())
            ]
        );
        assert!(parse_seed("K", "shop:short")
            .unwrap_err()
            .0
            .starts_with("K:"));
        assert!(parse_seed("K", ":0123456789abcdef").is_err());
    }

    #[test]
    fn create_job_names_the_field() {
        let detail = |body: &str| {
            let request = Request::new("POST", "/k").with_body(body.as_bytes().to_vec());
            create_job(&request).unwrap_err().detail().to_string()
        };
        assert_eq!(detail("{}"), "field 'project' is required");
        assert_eq!(
            detail(r#"{"project": 1}"#),
            "field 'project' must be a string"
        );
        assert!(detail(r#"{"project": ""}"#).contains("1-100"));
    }
}
