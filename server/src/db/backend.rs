//! The database behind a [`Store`](super::Store): the embedded SQLite file
//! (the default) or a PostgreSQL server shared by several nodes.
//!
//! Both run the same queries (written against [`Conn`]); what differs is how
//! a connection is had. SQLite: one writer and a few read-only connections
//! in this process, short reads right on the calling task, and group commit
//! for durable writes ([`Pool`]). PostgreSQL: a pool of connections, every
//! query on the blocking pool ([`PgPool`]); its commits are durable
//! already, and its readers never block its writers.

use super::pg::PgPool;
use super::sql::Conn;
use super::{Pool, StoreError, StoreResult};

/// One of the two backends.
pub enum Backend {
    /// The embedded SQLite database.
    Sqlite(Pool),
    /// A PostgreSQL database (boxed: its pool is several times the size
    /// of SQLite's handle to its writer thread).
    Postgres(Box<PgPool>),
}

impl Backend {
    /// Runs `f`, a write or a long read, off the async workers.
    pub async fn run_sql<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        match self {
            Backend::Sqlite(p) => p.run(move |c| f(&Conn::Sqlite(c))).await,
            Backend::Postgres(p) => p.run(f).await,
        }
    }

    /// Runs `f`, whose commits must be durable when this returns: SQLite
    /// group-commits it ([`Pool::run_durable`]); PostgreSQL commits are.
    pub async fn run_durable_sql<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        match self {
            Backend::Sqlite(p) => p.run_durable(move |c| f(&Conn::Sqlite(c))).await,
            Backend::Postgres(p) => p.run(f).await,
        }
    }

    /// Runs `f`, a short read. SQLite: on a read-only connection, on the
    /// calling task ([`Pool::read`]); PostgreSQL: on the blocking pool (its
    /// client must not block an async worker).
    pub async fn read_sql<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        match self {
            Backend::Sqlite(p) => p.read(move |c| f(&Conn::Sqlite(c))).await,
            Backend::Postgres(p) => p.run(f).await,
        }
    }

    /// Runs `f`, a read that may take a while, off the async workers.
    pub async fn read_blocking_sql<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        match self {
            Backend::Sqlite(p) => p.read_blocking(move |c| f(&Conn::Sqlite(c))).await,
            Backend::Postgres(p) => p.run(f).await,
        }
    }

    /// Runs `f`, a long read (an export streamed to a client), on a
    /// connection of its own, so that it holds none of the pool's.
    pub async fn read_own_sql<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        match self {
            Backend::Sqlite(p) => {
                let path = p.path.clone();
                tokio::task::spawn_blocking(move || {
                    let c = super::open_reader(&path)?;
                    f(&Conn::Sqlite(&c))
                })
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
            }
            Backend::Postgres(p) => p.run_own(f).await,
        }
    }
}
