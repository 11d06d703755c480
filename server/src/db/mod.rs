//! Storage: the embedded SQLite database behind a narrow, async data-access
//! layer.
//!
//! Handlers only see [`Store`] and the plain domain structs it returns; the SQL
//! lives in one module per aggregate (`users`, `sessions`, `tokens`,
//! `throttle`, `secrets`, `devices`), whose functions take a `&Connection` so they also
//! work inside a transaction. A PostgreSQL backend for multi-node deployments
//! would implement the same `Store` methods without touching any handler.
//!
//! SQLite calls block, so they run on tokio's blocking pool, on one of a few
//! pooled connections (WAL lets readers proceed while one writer writes).

pub mod admin;
pub mod catalogue;
pub mod devices;
pub mod migrations;
pub mod orders;
pub mod revocations;
pub mod secrets;
pub mod sessions;
mod store;
pub mod sync;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::Connection;

pub use store::Store;
use thiserror::Error;
use tokio::sync::Semaphore;

/// Errors of the storage layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the query died.
    #[error("database task: {0}")]
    Task(String),
    /// The database was written by a newer server.
    #[error("database schema version {found} is newer than this server's {known}")]
    TooNew {
        /// Version found in the file.
        found: i64,
        /// Latest version this build knows.
        known: i64,
    },
    /// File-system error preparing the database file.
    #[error("{path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result of the storage layer.
pub type StoreResult<T> = Result<T, StoreError>;

/// How long a connection waits on another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens one connection with the settings every connection must have.
fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL keeps the last committed orders and scans across a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Creates the database file readable by its owner only (it holds user keys
/// and password hashes) before SQLite opens it.
fn create_private_file(path: &Path) -> StoreResult<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A small pool of SQLite connections used from async code.
pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl Pool {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations, and keeps up to `size` connections.
    pub fn open(path: &Path, size: usize) -> StoreResult<Self> {
        create_private_file(path)?;
        let mut first = open_connection(path)?;
        migrations::apply(&mut first)?;
        let mut idle = vec![first];
        for _ in 1..size.max(1) {
            idle.push(open_connection(path)?);
        }
        Ok(Self {
            path: path.to_owned(),
            permits: Semaphore::new(idle.len()),
            idle: Mutex::new(idle),
        })
    }

    /// Runs `f` with a connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        let taken = self
            .idle
            .lock()
            .map_err(|e| StoreError::Task(e.to_string()))?
            .pop();
        let mut conn = match taken {
            Some(c) => c,
            // A connection is lost only if a query panicked; replace it.
            None => open_connection(&self.path)?,
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&mut conn);
            (conn, r)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// True when `e` is a violated UNIQUE constraint.
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
