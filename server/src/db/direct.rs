//! Direct access to a configured database, beside a running store: what
//! tests and benchmarks use to seed rows and check them, on either backend.
//!
//! Not for the application's own queries (those go through
//! [`Store`](super::Store)); this opens one connection of its own.

use std::cell::RefCell;
use std::sync::Mutex;

use super::sql::{Conn, PgConn};
use super::{StoreError, StoreResult};
use crate::config::Config;

/// One connection to the database a [`Config`] names.
pub enum Direct {
    /// The SQLite file.
    Sqlite(Mutex<rusqlite::Connection>),
    /// The PostgreSQL database.
    Postgres(Box<Mutex<RefCell<PgConn>>>),
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Task("a direct connection was poisoned by a panic".into())
}

impl Direct {
    /// Opens a connection to `config`'s database (which must exist and be
    /// migrated: a server opened it before).
    pub fn open(config: &Config) -> StoreResult<Self> {
        match &config.postgres {
            None => {
                let c = rusqlite::Connection::open(&config.database)?;
                c.busy_timeout(std::time::Duration::from_secs(10))?;
                c.pragma_update(None, "foreign_keys", "ON")?;
                Ok(Direct::Sqlite(Mutex::new(c)))
            }
            Some(pg) => {
                let settings = super::pg::config(
                    pg.url.expose(),
                    pg.password.as_ref().map(crate::config::Secret::expose),
                )?;
                // The client blocks on a runtime of its own: never on an
                // async worker, so on a thread of its own.
                let conn = std::thread::scope(|s| {
                    s.spawn(|| super::pg::open(&settings))
                        .join()
                        .map_err(poisoned)
                })??;
                Ok(Direct::Postgres(Box::new(Mutex::new(RefCell::new(conn)))))
            }
        }
    }

    /// Runs `f` on the connection. Callable from async code: PostgreSQL
    /// queries run on a thread of their own, SQLite ones right here.
    pub fn with<T: Send>(
        &self,
        f: impl FnOnce(&Conn<'_>) -> StoreResult<T> + Send,
    ) -> StoreResult<T> {
        match self {
            Direct::Sqlite(m) => {
                let c = m.lock().map_err(poisoned)?;
                f(&Conn::Sqlite(&c))
            }
            Direct::Postgres(m) => std::thread::scope(|s| {
                s.spawn(|| {
                    let c = m.lock().map_err(poisoned)?;
                    f(&Conn::Postgres(&c))
                })
                .join()
                .map_err(poisoned)?
            }),
        }
    }
}

/// Creates an empty database beside the one `url` names (same server and
/// role), named `prefix` and a random suffix, and returns its URL: each
/// test or benchmark run gets a database of its own on one throwaway
/// server. `url` must be of the form `postgres://…/DATABASE[?…]`.
pub fn scratch_postgres(url: &str, prefix: &str) -> StoreResult<String> {
    let mut suffix = [0u8; 6];
    jo_shared::doublekey::random_bytes(&mut suffix).map_err(|e| StoreError::Task(e.to_string()))?;
    let name = format!("{prefix}_{}", hex::encode(suffix));
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::Config(format!(
            "{prefix:?}: a database name prefix is letters, digits and _"
        )));
    }
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let authority = head.find("://").map(|i| i + 3);
    let Some(slash) = authority.and_then(|a| head[a..].find('/').map(|i| a + i)) else {
        return Err(StoreError::Config(
            "the PostgreSQL URL names no database".into(),
        ));
    };
    let mut new_url = format!("{}/{name}", &head[..slash]);
    if !query.is_empty() {
        new_url = format!("{new_url}?{query}");
    }
    let settings = super::pg::config(url, None)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            let cell = RefCell::new(super::pg::open(&settings)?);
            // A name of our own making (checked above): CREATE DATABASE takes
            // no parameters.
            Conn::Postgres(&cell).batch(&format!("CREATE DATABASE {name}"))
        })
        .join()
        .map_err(poisoned)?
    })?;
    Ok(new_url)
}
