//! The PostgreSQL backend's connections: a pool shared by every query of a
//! node, and the schema migrations, run once across nodes.
//!
//! The `postgres` client is synchronous (it runs its own small runtime per
//! connection and must not be called from an async task), so every query
//! runs on tokio's blocking pool, like SQLite's writes.

use std::cell::RefCell;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::sql::{Conn, PgConn, params};
use super::{StoreError, StoreResult};

/// How long opening a connection may take before the database counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The session-level advisory lock under which one node migrates while the
/// others wait ("JOMIGRAT" in ASCII).
const MIGRATION_LOCK: i64 = 0x4A4F_4D49_4752_4154;

/// PostgreSQL migrations, in order: migration `n` is `PG_MIGRATIONS[n - 1]`.
/// The first is the SQLite schema at its version 8 in one script; from 9 on,
/// each SQLite migration has its PostgreSQL twin here, so both databases
/// have the same version numbers.
pub const PG_MIGRATIONS: &[(i64, &str)] = &[
    (8, include_str!("migrations/pg/0001_baseline.sql")),
    (
        9,
        include_str!("migrations/pg/0009_rollups_per_statement.sql"),
    ),
    (10, include_str!("migrations/pg/0010_mail_outbox.sql")),
    (
        11,
        include_str!("migrations/pg/0011_ticket_revoked_mail.sql"),
    ),
    (12, include_str!("migrations/pg/0012_transfers.sql")),
    (
        13,
        include_str!("migrations/pg/0013_venue_address_entrance.sql"),
    ),
    (14, include_str!("migrations/pg/0014_resale_in_cart.sql")),
    (
        15,
        include_str!("migrations/pg/0015_buyer_limits_indexes.sql"),
    ),
];

/// Where a database is, for messages: host, port and database name, never
/// the password.
pub fn describe(config: &postgres::Config) -> String {
    let host = config.get_hosts().first().map_or_else(
        || "localhost".to_owned(),
        |h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        },
    );
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgresql at {host}:{port}, database {db}")
}

/// Parses a `postgres://` URL (or key=value string); `password`, when
/// given, replaces any password in it.
pub fn config(url: &str, password: Option<&str>) -> StoreResult<postgres::Config> {
    let mut config = postgres::Config::from_str(url).map_err(|e| {
        StoreError::Config(format!(
            // The URL may hold a password: name the problem, never the URL.
            "the PostgreSQL URL is not valid: {e}"
        ))
    })?;
    if let Some(p) = password {
        config.password(p);
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("jo-server");
    Ok(config)
}

/// A pool of PostgreSQL connections used from async code.
pub struct PgPool {
    config: postgres::Config,
    idle: Mutex<Vec<PgConn>>,
    permits: Semaphore,
}

/// Opens one connection (blocking: not on an async worker).
pub fn open(config: &postgres::Config) -> StoreResult<PgConn> {
    let client = config.connect(postgres::NoTls).map_err(|e| {
        // The driver's message and its causes ("Connection refused",
        // "password authentication failed for user …"): never the password.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        StoreError::Unavailable(format!("{}: {message}", describe(config)))
    })?;
    Ok(PgConn::new(client))
}

impl PgPool {
    /// Connects (failing with one clear error when the database cannot be
    /// reached), applies pending migrations, and keeps up to `size`
    /// connections.
    pub fn connect(config: postgres::Config, size: usize) -> StoreResult<Self> {
        let first = open(&config)?;
        let cell = RefCell::new(first);
        migrate(&Conn::Postgres(&cell))?;
        Ok(Self {
            config,
            idle: Mutex::new(vec![cell.into_inner()]),
            permits: Semaphore::new(size.max(1)),
        })
    }

    /// Where the database is (for messages).
    pub fn describe(&self) -> String {
        describe(&self.config)
    }

    /// Runs `f` with a connection on the blocking thread pool. A connection
    /// that broke (or was left inside a transaction) is not put back: the
    /// next caller opens a fresh one, so the pool recovers by itself once
    /// the database is back.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        let waiting = std::time::Instant::now();
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        crate::metrics::pool_wait(waiting.elapsed());
        let taken = self
            .idle
            .lock()
            .map_err(|e| StoreError::Task(e.to_string()))?
            .pop();
        let config = self.config.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match taken {
                Some(c) if c.is_healthy() => c,
                _ => match open(&config) {
                    Ok(c) => c,
                    Err(e) => return (None, Err(e)),
                },
            };
            let cell = RefCell::new(conn);
            let r = f(&Conn::Postgres(&cell));
            (Some(cell.into_inner()), r)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        if let Some(conn) = conn.filter(PgConn::is_healthy)
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(conn);
        }
        result
    }
}

impl PgPool {
    /// Runs `f` on a connection of its own, opened for it and closed after
    /// (a long export must not hold one of the pool's).
    pub async fn run_own<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn<'_>) -> StoreResult<T> + Send + 'static,
    {
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || {
            let cell = RefCell::new(open(&config)?);
            f(&Conn::Postgres(&cell))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// Applies pending PostgreSQL migrations. Nodes starting together take
/// turns on an advisory lock: the first migrates, the others then find
/// nothing left to do.
pub fn migrate(c: &Conn<'_>) -> StoreResult<()> {
    c.query_row(
        "SELECT pg_advisory_lock(?1)",
        params![MIGRATION_LOCK],
        |_| Ok(()),
    )?;
    let result = migrate_locked(c);
    let unlock = c.query_row(
        "SELECT pg_advisory_unlock(?1)",
        params![MIGRATION_LOCK],
        |_| Ok(()),
    );
    result.and(unlock)
}

fn migrate_locked(c: &Conn<'_>) -> StoreResult<()> {
    let exists: bool = c.query_row(
        "SELECT to_regclass('schema_version') IS NOT NULL",
        params![],
        |r| r.get(0),
    )?;
    if !exists {
        c.batch(
            "CREATE TABLE schema_version (
                 version    BIGINT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )?;
    }
    let current: i64 = c.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        params![],
        |r| r.get(0),
    )?;
    let known = PG_MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in PG_MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = c.begin(super::sql::Begin::Immediate)?;
        tx.batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![*version],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sql::{Begin, Optional};

    /// The throwaway database of `scripts/test` (`JO_TEST_DATABASE_URL`).
    /// Without one, the test says so and passes, unless
    /// `JO_REQUIRE_POSTGRES=1` (set by `scripts/test`) makes that a failure.
    fn test_config() -> Option<postgres::Config> {
        match std::env::var("JO_TEST_DATABASE_URL") {
            Ok(url) => Some(config(&url, None).expect("valid URL")),
            Err(_) => {
                assert!(
                    std::env::var("JO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "JO_TEST_DATABASE_URL is not set"
                );
                eprintln!("skipped: JO_TEST_DATABASE_URL is not set (scripts/test sets it)");
                None
            }
        }
    }

    #[test]
    fn values_of_every_kind_round_trip_and_expressions_read_as_integers() {
        let Some(config) = test_config() else { return };
        let cell = RefCell::new(open(&config).expect("connects"));
        let c = Conn::Postgres(&cell);
        c.batch(
            "DROP TABLE IF EXISTS sql_layer_t;
             CREATE TABLE sql_layer_t (i BIGINT, s TEXT, b BYTEA, f DOUBLE PRECISION)",
        )
        .expect("creates");
        let tx = c.begin(Begin::Immediate).expect("begins");
        assert!(c.begin(Begin::Deferred).is_err(), "no nested transaction");
        for k in 1..=3i64 {
            tx.execute(
                "INSERT INTO sql_layer_t VALUES (?1, ?2, ?3, ?4)",
                params![k, format!("n{k}"), [k as u8; 2], 0.5],
            )
            .expect("inserts");
        }
        tx.execute(
            "INSERT INTO sql_layer_t VALUES (?1, ?2, ?3, ?4)",
            params![None::<i64>, None::<String>, None::<Vec<u8>>, None::<f64>],
        )
        .expect("inserts NULLs");
        tx.commit().expect("commits");
        // A sum is numeric, a count int8, a literal int4, a comparison bool.
        let (sum, count, one, yes): (i64, i64, i64, bool) = c
            .query_row(
                "SELECT SUM(i), COUNT(*), 1, EXISTS (SELECT 1 FROM sql_layer_t WHERE i = ?1)
                   FROM sql_layer_t",
                params![2],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("reads");
        assert_eq!((sum, count, one, yes), (6, 4, 1, true));
        let avg: f64 = c
            .query_row("SELECT AVG(i) FROM sql_layer_t", params![], |r| r.get(0))
            .expect("averages");
        assert!((avg - 2.0).abs() < 1e-9);
        type Nullable = (Option<i64>, Option<String>, Option<[u8; 2]>);
        let rows: Vec<Nullable> = c
            .query_map(
                "SELECT i, s, b FROM sql_layer_t ORDER BY i NULLS LAST",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("lists");
        assert_eq!(rows[0], (Some(1), Some("n1".into()), Some([1, 1])));
        assert_eq!(rows[3], (None, None, None));
        // An int4 parameter takes an i64 in range and refuses one out of it.
        let small: i64 = c
            .query_row("SELECT CAST(?1 AS INTEGER) + 1", params![41], |r| r.get(0))
            .expect("binds int4");
        assert_eq!(small, 42);
        assert!(
            c.query_row("SELECT CAST(?1 AS INTEGER)", params![i64::MAX], |r| r
                .get::<i64>(0))
                .is_err()
        );
        let none: Option<i64> = c
            .query_row("SELECT i FROM sql_layer_t WHERE i = 99", params![], |r| {
                r.get(0)
            })
            .optional()
            .expect("reads");
        assert_eq!(none, None);
        // A dropped transaction rolls back, and the connection stays usable.
        {
            let tx = c.begin(Begin::Immediate).expect("begins");
            tx.execute("DELETE FROM sql_layer_t", params![])
                .expect("deletes");
        }
        assert!(cell.borrow().is_healthy());
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM sql_layer_t", params![], |r| r.get(0))
            .expect("counts");
        assert_eq!(n, 4);
        // A failed statement inside a transaction: rolled back on drop.
        {
            let tx = c.begin(Begin::Deferred).expect("begins");
            assert!(
                tx.execute("INSERT INTO no_such_table VALUES (1)", params![])
                    .is_err()
            );
        }
        assert!(cell.borrow().is_healthy());
        c.batch("DROP TABLE sql_layer_t").expect("drops");
    }

    #[test]
    fn nodes_starting_together_migrate_once() {
        let Some(config) = test_config() else { return };
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let config = config.clone();
                std::thread::spawn(move || {
                    let cell = RefCell::new(open(&config).expect("connects"));
                    migrate(&Conn::Postgres(&cell))
                })
            })
            .collect();
        for n in nodes {
            n.join().expect("no panic").expect("migrates");
        }
        let cell = RefCell::new(open(&config).expect("connects"));
        let c = Conn::Postgres(&cell);
        let rows: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM schema_version WHERE version = ?1",
                params![PG_MIGRATIONS[0].0],
                |r| r.get(0),
            )
            .expect("reads");
        assert_eq!(rows, 1, "the baseline was applied once");
    }

    #[test]
    fn an_unreachable_database_is_one_clear_error_without_the_password() {
        // A port nobody listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let config = config(
            &format!("postgres://jo:s3cret-pw@127.0.0.1:{port}/jo_prod"),
            None,
        )
        .expect("valid URL");
        let err = match PgPool::connect(config, 2) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("connected to nothing"),
        };
        assert!(
            err.contains("127.0.0.1") && err.contains("jo_prod"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        assert!(matches!(
            super::config("postgres://jo:s3cret@[::1", None),
            Err(StoreError::Config(m)) if !m.contains("s3cret")
        ));
    }
}
