//! SQLite: open with the pragmas every service uses, `_meta` migrations, and a small pool of
//! read connections.

use std::fmt;
use std::path::Path;
use std::sync::{Condvar, Mutex};

use rusqlite::{Connection, OptionalExtension};

use crate::http::ApiError;
use crate::writer::WriteError;

/// A database that cannot be opened or migrated; `main` prints it and exits with code 1.
#[derive(Debug)]
pub struct DbError(pub String);

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

/// Opens (creating the parent directory) a database with WAL, `synchronous=NORMAL`,
/// `busy_timeout=5000`, foreign keys on, and a page cache of `cache_kib` KiB.
pub fn open(path: &Path, cache_kib: u32) -> Result<Connection, DbError> {
    let context =
        |e: &dyn fmt::Display| DbError(format!("cannot open database {}: {e}", path.display()));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| context(&e))?;
    }
    let conn = Connection::open(path).map_err(|e| context(&e))?;
    let pragmas = format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;
         PRAGMA foreign_keys=ON; PRAGMA cache_size=-{cache_kib}; PRAGMA temp_store=MEMORY;"
    );
    conn.execute_batch(&pragmas).map_err(|e| context(&e))?;
    Ok(conn)
}

/// Applies the migrations not yet recorded in `_meta.schema_version`, each in a transaction
/// with its version bump. A database from a newer binary is refused.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), DbError> {
    let fail = |e: rusqlite::Error| DbError(format!("database migration failed: {e}"));
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )
    .map_err(fail)?;
    let current: usize = conn
        .query_row(
            "SELECT value FROM _meta WHERE key = 'schema_version'",
            [],
            |row| row.get::<_, String>(0),
        )
        .optional()
        .map_err(fail)?
        .map(|v| v.parse().unwrap_or(usize::MAX))
        .unwrap_or(0);
    if current > migrations.len() {
        return Err(DbError(format!(
            "database schema version {current} is newer than this binary supports ({}); upgrade the binary",
            migrations.len()
        )));
    }
    for (index, sql) in migrations.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(fail)?;
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO _meta (key, value) VALUES ('schema_version', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(index + 1).to_string()],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        log::info!("database migrated to schema version {}", index + 1);
    }
    Ok(())
}

/// A fixed set of read connections shared by the request handlers.
pub struct Pool {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

/// A connection borrowed from a [`Pool`]; goes back on drop.
pub struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Pool {
    /// A pool of `size` connections opened by `open`.
    pub fn new(
        size: usize,
        open: impl Fn() -> Result<Connection, DbError>,
    ) -> Result<Pool, DbError> {
        let conns = (0..size.max(1))
            .map(|_| open())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pool {
            idle: Mutex::new(conns),
            returned: Condvar::new(),
        })
    }

    /// Borrows a connection, waiting for one if all are in use.
    pub fn get(&self) -> Pooled<'_> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.pop() {
                return Pooled {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Always Some until drop.
        self.conn
            .as_ref()
            .expect("pooled connection present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            self.pool.returned.notify_one();
        }
    }
}

/// A failed statement reaches the client as a logged `500`.
impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> ApiError {
        ApiError::internal("database error", err)
    }
}

/// A write the writer thread could not take or commit, as the client sees it.
impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> ApiError {
        match err {
            WriteError::QueueFull => ApiError::unavailable("Write queue is full, retry shortly", 1),
            WriteError::Stopped => ApiError::unavailable("Service is shutting down", 5),
            WriteError::Failed => ApiError::new(500, "Internal server error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_newer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/test.db");
        let mut conn = open(&path, 256).unwrap();
        let v1 = ["CREATE TABLE a (x INTEGER)"];
        migrate(&mut conn, &v1).unwrap();
        migrate(&mut conn, &v1).unwrap();
        let v2 = ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"];
        migrate(&mut conn, &v2).unwrap();
        let err = migrate(&mut conn, &v1).unwrap_err();
        assert!(err.0.contains("newer than this binary"), "{err}");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
