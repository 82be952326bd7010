//! `<service> backup <dest>`: an online, consistent copy of the service's own database, for
//! images without a `sqlite3` CLI (`docker compose exec error-tracker /error-tracker backup
//! /data/backups/errors.db`, or `backup -` to stream the copy out of the container).
//!
//! The copy is made with `VACUUM INTO`, one read transaction: under WAL it never blocks the
//! running service's writer and always holds a single committed state. It is written next to
//! the destination, must pass `PRAGMA integrity_check`, is synced, and only then renamed to the
//! destination — so the destination either does not exist or is a whole, checked copy. It
//! deliberately does not rotate, compress or upload: `deploy/backup.sh` does that.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// How long the copy waits for a lock (e.g. WAL recovery by another connection), ms.
const BUSY_TIMEOUT_MS: u32 = 10_000;

/// A finished backup.
#[derive(Debug)]
pub struct Backup {
    /// Size of the copy in bytes.
    pub bytes: u64,
}

/// Why a backup was not made; nothing is left at the destination.
#[derive(Debug)]
pub enum BackupError {
    /// There is no database at the source path (the service has not run yet, or
    /// `DATABASE_PATH` names another file).
    NoDatabase(PathBuf),
    /// The destination exists already; a backup never overwrites.
    DestinationExists(PathBuf),
    /// The source could not be opened or copied, or the copy not written.
    Copy(String),
    /// The copy failed `PRAGMA integrity_check`; the first problems it reported.
    Integrity(String),
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupError::NoDatabase(path) => write!(f, "no database at {}", path.display()),
            BackupError::DestinationExists(path) => {
                write!(
                    f,
                    "{} exists already (a backup never overwrites)",
                    path.display()
                )
            }
            BackupError::Copy(e) => write!(f, "copy failed: {e}"),
            BackupError::Integrity(e) => write!(f, "the copy fails integrity_check: {e}"),
        }
    }
}

impl std::error::Error for BackupError {}

/// Copies the database at `source` to `dest` (a new file; its directory is created) with
/// `VACUUM INTO`, checks the copy's integrity and syncs it. Safe while the service writes to
/// `source`.
pub fn backup(source: &Path, dest: &Path) -> Result<Backup, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_path_buf()));
    }
    if dest.exists() {
        return Err(BackupError::DestinationExists(dest.to_path_buf()));
    }
    // A scratch image has no mkdir: `backup /data/backups/x.db` makes /data/backups.
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| io_error("cannot create the directory", parent, e))?;
    }
    let partial = partial_path(dest);
    // A leftover of an interrupted run would make VACUUM INTO refuse.
    let _ = std::fs::remove_file(&partial);
    let result = copy_and_check(source, &partial).and_then(|bytes| {
        if dest.exists() {
            return Err(BackupError::DestinationExists(dest.to_path_buf()));
        }
        std::fs::rename(&partial, dest).map_err(|e| io_error("cannot rename the copy", dest, e))?;
        sync_parent(dest);
        Ok(Backup { bytes })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Like [`backup`], but streams the checked copy to `out` (`backup -`: stdout, out of a
/// container) instead of keeping it. The copy is made beside `source`
/// (`<source>.backup-<pid>`, the one place a read-only container may write) and deleted
/// afterwards.
pub fn backup_to_writer(source: &Path, out: &mut dyn Write) -> Result<Backup, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.to_path_buf()));
    }
    let mut name = source.as_os_str().to_owned();
    name.push(format!(".backup-{}", std::process::id()));
    let partial = PathBuf::from(name);
    let _ = std::fs::remove_file(&partial);
    let result = copy_and_check(source, &partial).and_then(|bytes| {
        let mut file =
            File::open(&partial).map_err(|e| io_error("cannot open the copy", &partial, e))?;
        std::io::copy(&mut file, out)
            .and_then(|_| out.flush())
            .map_err(|e| BackupError::Copy(format!("cannot write the copy out: {e}")))?;
        Ok(Backup { bytes })
    });
    let _ = std::fs::remove_file(&partial);
    result
}

/// `<dest>.partial`, in the destination's directory (so the final rename stays on one
/// filesystem).
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// `VACUUM INTO out`, then `PRAGMA integrity_check` and fsync of `out`; its size in bytes.
fn copy_and_check(source: &Path, out: &Path) -> Result<u64, BackupError> {
    let copy_error = |e: rusqlite::Error| BackupError::Copy(e.to_string());
    // Read-write without CREATE: a missing file is an error rather than a new empty
    // database, and a WAL database can be read even when its -shm file must be set up.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(source, flags).map_err(copy_error)?;
    conn.execute_batch(&format!("PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"))
        .map_err(copy_error)?;
    let out_text = out
        .to_str()
        .ok_or_else(|| BackupError::Copy(format!("{} is not valid UTF-8", out.display())))?;
    conn.execute("VACUUM INTO ?1", [out_text])
        .map_err(copy_error)?;
    drop(conn);

    let copy =
        Connection::open_with_flags(out, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(copy_error)?;
    let problems = {
        let mut stmt = copy
            .prepare("PRAGMA integrity_check(10)")
            .map_err(copy_error)?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(copy_error)?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(copy_error)?
    };
    drop(copy);
    if problems != ["ok"] {
        return Err(BackupError::Integrity(problems.join("; ")));
    }
    // VACUUM INTO does not fsync the file it writes.
    let file = File::open(out).map_err(|e| io_error("cannot open the copy", out, e))?;
    file.sync_all()
        .map_err(|e| io_error("cannot sync the copy", out, e))?;
    let bytes = file
        .metadata()
        .map_err(|e| io_error("cannot stat the copy", out, e))?
        .len();
    Ok(bytes)
}

/// Makes the rename durable; best effort (some filesystems refuse to sync a directory).
fn sync_parent(path: &Path) {
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent,
        None => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> BackupError {
    BackupError::Copy(format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn rows(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn copies_while_another_connection_writes() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        let conn = crate::db::open(&source, 256).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .unwrap();
        drop(conn);

        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (source, stop) = (source.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let conn = crate::db::open(&source, 256).unwrap();
                let mut written = 0i64;
                // At least a few hundred rows, and on until every backup has been taken.
                while written < 300 || !stop.load(Ordering::Relaxed) {
                    conn.execute("INSERT INTO t (body) VALUES (?1)", [&"x".repeat(500)])
                        .unwrap();
                    written += 1;
                }
                written
            })
        };
        let mut counts = Vec::new();
        for i in 0..5 {
            let dest = dir.path().join(format!("copy-{i}.db"));
            let done = backup(&source, &dest).unwrap();
            assert_eq!(done.bytes, std::fs::metadata(&dest).unwrap().len());
            assert!(!partial_path(&dest).exists());
            counts.push(rows(&dest));
        }
        stop.store(true, Ordering::Relaxed);
        let written = writer.join().unwrap();
        // Each copy is one committed state: never fewer rows than the copy before it, never
        // more than were written.
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert!(
            counts.iter().all(|&n| n <= written),
            "{counts:?} of {written}"
        );
        assert_eq!(rows(&source), written);
    }

    #[test]
    fn streams_a_checked_copy_and_leaves_nothing_beside_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        let conn = crate::db::open(&source, 256).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (7)")
            .unwrap();
        let mut out = Vec::new();
        let done = backup_to_writer(&source, &mut out).unwrap();
        assert_eq!(done.bytes, out.len() as u64);
        assert!(out.starts_with(b"SQLite format 3\0"));
        let copy = dir.path().join("streamed.db");
        std::fs::write(&copy, &out).unwrap();
        assert_eq!(rows(&copy), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["live.db", "live.db-shm", "live.db-wal", "streamed.db"]
        );
    }

    #[test]
    fn refuses_a_missing_source_and_an_existing_destination() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        let dest = dir.path().join("copy.db");
        let err = backup(&missing, &dest).unwrap_err();
        assert!(matches!(err, BackupError::NoDatabase(_)), "{err}");
        assert!(!missing.exists() && !dest.exists());

        let source = dir.path().join("live.db");
        crate::db::open(&source, 256).unwrap();
        std::fs::write(&dest, b"keep me").unwrap();
        let err = backup(&source, &dest).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"keep me");
    }

    #[test]
    fn an_unwritable_destination_leaves_nothing_and_a_new_directory_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("live.db");
        crate::db::open(&source, 256).unwrap();
        // Its directory would be a file.
        let dest = source.join("copy.db");
        let err = backup(&source, &dest).unwrap_err();
        assert!(matches!(err, BackupError::Copy(_)), "{err}");
        assert!(!partial_path(&dest).exists());

        let dest = dir.path().join("new/dir/copy.db");
        backup(&source, &dest).unwrap();
        assert!(dest.is_file());
    }
}
