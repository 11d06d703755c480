//! Storage: the embedded SQLite database (the default) or PostgreSQL (several
//! nodes on one database), behind a narrow, async data-access layer.
//!
//! Handlers only see [`Store`] and the plain domain structs it returns; the SQL
//! lives in one module per aggregate, the only one that writes its tables:
//! [`catalogue`] (sessions, offers, seats), [`orders`] (carts, holds,
//! payments), [`tickets`] (issue, re-issue, revoke), [`devices`], [`scans`],
//! [`revocations`], [`audit`], [`reports`] (read-only), [`users`],
//! [`sessions`], [`tokens`], [`throttle`], [`secrets`], and the mail
//! [`outbox`]. Their functions take a [`sql::Conn`] (either database, also
//! inside a transaction), and their SQL is written once for both ([`sql`]
//! holds the differences).
//!
//! Database calls block, so they run on tokio's blocking pool: SQLite's on
//! one of a few pooled connections (WAL lets readers proceed while one writer
//! writes), PostgreSQL's on [`pg::PgPool`]'s ([`Backend`] picks).

pub mod audit;
mod backend;
pub mod catalogue;
pub mod devices;
pub mod direct;
pub mod migrations;
pub mod orders;
pub mod outbox;
pub mod pg;
pub mod reports;
pub mod resale;
pub mod revocations;
pub mod scans;
pub mod secrets;
pub mod sessions;
pub mod sql;
pub mod status;
mod store;
pub mod throttle;
pub mod tickets;
pub mod tokens;
pub mod transfers;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::Connection;

pub use backend::Backend;
pub use store::Store;
// The clock every module here stamps rows with (`super::now`).
use crate::units::time::now;
use thiserror::Error;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Errors of the storage layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed (or could not be reached).
    #[error("database: {}", pg_message(.0))]
    Postgres(#[from] postgres::Error),
    /// The database cannot be reached (or was lost): try again later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database settings are wrong.
    #[error("{0}")]
    Config(String),
    /// A query that must return a row returned none.
    #[error("database: no row")]
    NoRows,
    /// A column could not be read as the type asked for.
    #[error("database: column {column}: {message}")]
    Decode {
        /// The column's index in the row.
        column: usize,
        /// What was wrong.
        message: String,
    },
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

/// A PostgreSQL error with its causes ("db error: ERROR: relation … does
/// not exist"): the driver's own message is only the kind of error.
fn pg_message(e: &postgres::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

/// Result of the storage layer.
pub type StoreResult<T> = Result<T, StoreError>;

/// How long a connection waits on another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause between two attempts to take SQLite's write lock.
const BUSY_PAUSE: Duration = Duration::from_micros(100);

/// Busy handler: retry every [`BUSY_PAUSE`] until [`BUSY_TIMEOUT`]. SQLite's
/// own handler (`busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25… ms between
/// attempts, while a write transaction here lasts well under a millisecond:
/// under a rush most of the wait was sleeping past a lock already free, with
/// the pooled connection held all along.
fn retry_soon(attempts: i32) -> bool {
    let waited = BUSY_PAUSE * u32::try_from(attempts).unwrap_or(u32::MAX);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(BUSY_PAUSE);
    true
}

/// Opens one connection with the settings every connection must have.
fn open_connection(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_handler(Some(retry_soon))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // FULL keeps the last committed orders and scans across a power cut.
    // It stays the default: only [`relaxed_write`] lowers it, for one call.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Runs `f` with `synchronous = NORMAL`, then puts the connection back to
/// the `FULL` default: its commits are appended to the WAL without an fsync.
///
/// Alone, for writes whose loss the application already handles: the shop's
/// cart changes (the cart comes back as it was) and the creation of a
/// pending order with its seat hold (the order, its hold and the seats it
/// took vanish together, being one transaction; the buyer's payment page
/// then finds no order, and expiries done in that transaction are redone by
/// the next sweep). Why nothing else can be lost: SQLite recovers the
/// longest intact prefix of the WAL, and any fsync of the WAL (a FULL commit
/// from any connection, [`Pool::run_durable`], a checkpoint) makes every
/// commit before it durable. So a power cut loses only the NORMAL commits
/// made since the last fsync, whole and in order, and nothing durable can
/// depend on one of them. Everything else (accounts, admin, sync API) keeps
/// the FULL default by not calling this.
pub fn relaxed_write<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.prepare_cached("PRAGMA synchronous = NORMAL")?
        .execute([])?;
    let result = f(conn);
    // Back to the default before the connection returns to the pool.
    conn.prepare_cached("PRAGMA synchronous = FULL")?
        .execute([])?;
    result
}

/// [`relaxed_write`] for either backend: `f`'s commits are made without
/// waiting for the disk. SQLite: `synchronous = NORMAL` around `f`, as
/// there. PostgreSQL: `synchronous_commit = off` for the session while `f`
/// runs, then back to the server's setting: a crash may lose those last
/// commits (whole, and in order: the WAL is replayed up to what was
/// flushed), never corrupt anything nor lose a commit made before them or
/// any durable commit after them (each flushes the WAL up to itself).
pub fn relaxed_write_sql<T>(
    c: &sql::Conn<'_>,
    f: impl FnOnce(&sql::Conn<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    match c.dialect() {
        sql::Dialect::Sqlite => {
            c.execute("PRAGMA synchronous = NORMAL", sql::params![])?;
            let result = f(c);
            // Back to the default before the connection returns to the pool.
            c.execute("PRAGMA synchronous = FULL", sql::params![])?;
            result
        }
        sql::Dialect::Postgres => {
            c.batch("SET synchronous_commit = off")?;
            let result = f(c);
            // Back to the server's setting before the connection returns
            // to the pool.
            c.batch("RESET synchronous_commit")?;
            result
        }
    }
}

/// Group commit: fsyncs the WAL file for every caller that committed before
/// the fsync began, so concurrent durable writes share one fsync instead of
/// queueing one each behind SQLite's write lock (a FULL commit fsyncs while
/// holding it, which caps durable commits at one per fsync, about 300/s on
/// a disk with 3 ms fsyncs).
struct WalSync {
    /// The database's `-wal` file.
    wal: PathBuf,
    /// Its directory (synced once, so the WAL file's own entry is durable).
    dir: PathBuf,
    state: Mutex<SyncState>,
    done: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Callers so far (each after its commit).
    arrived: u64,
    /// Callers whose commits a finished fsync covered.
    synced: u64,
    /// An fsync is under way.
    running: bool,
    /// The directory was synced.
    dir_synced: bool,
    /// An fsync failed: what it should have written may be lost, and a later
    /// fsync could report success without it, so every later call fails.
    failed: bool,
}

impl WalSync {
    /// Returns once the WAL is on disk up to at least the caller's commit.
    fn sync(&self) -> StoreResult<()> {
        let io = |source: std::io::Error| StoreError::Io {
            path: self.wal.clone(),
            source,
        };
        let mut st = self
            .state
            .lock()
            .map_err(|e| StoreError::Task(e.to_string()))?;
        st.arrived += 1;
        let mine = st.arrived;
        loop {
            if st.failed {
                return Err(io(std::io::Error::other(
                    "an earlier fsync of the WAL failed",
                )));
            }
            if st.synced >= mine {
                return Ok(());
            }
            if st.running {
                st = self
                    .done
                    .wait(st)
                    .map_err(|e| StoreError::Task(e.to_string()))?;
                continue;
            }
            // Lead: this fsync covers everyone who arrived so far, all of
            // whom had committed (written their WAL frames) before arriving.
            st.running = true;
            let upto = st.arrived;
            let sync_dir = !st.dir_synced;
            drop(st);
            let result = self.fsync(sync_dir);
            st = self
                .state
                .lock()
                .map_err(|e| StoreError::Task(e.to_string()))?;
            st.running = false;
            match &result {
                Ok(()) => {
                    st.synced = st.synced.max(upto);
                    st.dir_synced = true;
                }
                Err(_) => st.failed = true,
            }
            self.done.notify_all();
            result.map_err(io)?;
        }
    }

    fn fsync(&self, sync_dir: bool) -> std::io::Result<()> {
        // Opened for each fsync: SQLite may delete or recreate the WAL, and a
        // kept descriptor would then sync a file nobody reads any more.
        match std::fs::File::open(&self.wal) {
            Ok(f) => f.sync_data()?,
            // No WAL: it was checkpointed into the database file (synced by
            // the checkpoint) and removed, so there is nothing left to sync.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if sync_dir {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }
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

/// A small pool of SQLite connections used from async code: the one
/// read-write connection, on a thread of its own ([`Writer`]), for
/// [`Pool::run`]; read-only ones for [`Pool::read`].
pub struct Pool {
    path: PathBuf,
    writer: Writer,
    readers: Slots,
    wal_sync: Arc<WalSync>,
}

/// A write for the writer thread: runs on its connection, and sends its
/// result back itself.
type WriteJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The read-write connection on a thread of its own that runs the writes
/// queued for it one after the other, in order.
///
/// Why a thread, not a connection lent to tasks of the blocking pool: a
/// lent connection comes back only once the task that borrowed it is
/// polled again on an async worker, and the next writer, woken on its
/// permit, must be polled too before it hands its write to a blocking
/// thread. Under a rush both wait behind the workers' other work (pages,
/// QR codes, PDFs): measured on 2 cores with 32 buyers, the connection ran
/// queries less than half the time while every write queued ~30 ms for
/// it, and checkouts stayed near 320/s. Here the thread goes from one
/// write to the next at once (busy ~95 % of the time in the same run).
///
/// Checkpoints (copying the WAL into the database file, then an fsync of
/// it) are not the writer's: SQLite's automatic checkpoint runs inside the
/// commit that crosses its threshold, so every few hundred writes one
/// waited several milliseconds for the disk and every write queued behind
/// it (measured: 6 % of the writes took 47 % of the writer's time). A
/// second thread checkpoints on a connection of its own ([`checkpoints`])
/// in PASSIVE mode, which never takes the write lock.
struct Writer {
    /// Where writes are queued; `None` once the pool is closing.
    jobs: Option<std::sync::mpsc::Sender<WriteJob>>,
    /// The threads (writer, checkpointer), joined when the pool is dropped
    /// (so the database file is closed when the pool is).
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Ends the checkpointer when dropped.
    stop_checkpoints: Option<std::sync::mpsc::Sender<()>>,
}

/// WAL size past which the checkpointer copies it into the database (the
/// size SQLite's own automatic checkpoint uses: 1000 pages of 4 KiB).
const CHECKPOINT_WAL_BYTES: u64 = 1000 * 4096;

/// How often the checkpointer looks at the WAL's size.
const CHECKPOINT_POLL: Duration = Duration::from_millis(50);

/// Opens the writer's connection: as every connection, without SQLite's
/// automatic checkpoint (see [`Writer`]).
fn open_writer(path: &Path) -> StoreResult<Connection> {
    let conn = open_connection(path)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// The checkpointer's loop: a PASSIVE checkpoint whenever the WAL has
/// grown past [`CHECKPOINT_WAL_BYTES`], until `stop` is dropped. A failed
/// checkpoint is logged and tried again at the next look (the WAL only
/// grows meanwhile; nothing is lost).
fn checkpoints(path: &Path, stop: &std::sync::mpsc::Receiver<()>) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let mut conn = None;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_POLL) {
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size < CHECKPOINT_WAL_BYTES {
            continue;
        }
        if conn.is_none() {
            conn = open_connection(path)
                .inspect_err(|e| tracing::warn!(error = %e, "checkpointer: opening the database"))
                .ok();
        }
        if let Some(c) = &conn
            && let Err(e) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "WAL checkpoint failed; tried again shortly");
            conn = None;
        }
    }
}

impl Writer {
    fn start(path: &Path, conn: Connection) -> StoreResult<Self> {
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (jobs, queue) = std::sync::mpsc::channel::<WriteJob>();
        let (stop_checkpoints, stop) = std::sync::mpsc::channel::<()>();
        let checkpoint_path = path.to_owned();
        let checkpointer = std::thread::Builder::new()
            .name("jo-server-sqlite-checkpoint".into())
            .spawn(move || checkpoints(&checkpoint_path, &stop))
            .map_err(|e| StoreError::Task(format!("starting the checkpoint thread: {e}")))?;
        let path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("jo-server-sqlite-writer".into())
            .spawn(move || {
                let mut conn = conn;
                for job in queue {
                    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut conn);
                    }));
                    if done.is_err() {
                        // A panic in a query (its caller gets an error): the
                        // connection may be left inside a transaction, so
                        // the next write starts on a new one.
                        match open_writer(&path) {
                            Ok(fresh) => conn = fresh,
                            Err(e) => {
                                tracing::error!(error = %e, "reopening the database after a panic");
                                if !conn.is_autocommit() {
                                    let _ = conn.execute_batch("ROLLBACK");
                                }
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Task(format!("starting the writer thread: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            threads: vec![thread, checkpointer],
            stop_checkpoints: Some(stop_checkpoints),
        })
    }

    /// Queues `f` and waits for its result.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = std::time::Instant::now();
        let job: WriteJob = Box::new(move |conn| {
            crate::metrics::pool_wait(queued.elapsed());
            // The caller may be gone (a dropped request): nothing to tell.
            let _ = tx.send(f(conn));
        });
        self.jobs
            .as_ref()
            .ok_or_else(|| StoreError::Task("the database is closing".into()))?
            .send(job)
            .map_err(|_| StoreError::Task("the writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Task("a write panicked".into()))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Ends the thread's loop once the writes queued so far are done.
        self.jobs = None;
        self.stop_checkpoints = None;
        for t in self.threads.drain(..) {
            // Not from the thread itself (the last handle on the store
            // dropped by a write): it ends by itself after this write.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// Connections of one kind and a permit for each: a caller waits for a
/// free one on the semaphore (woken as soon as one is put back).
struct Slots {
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
    /// Opens a replacement for a connection lost to a panic in a query.
    open: fn(&Path) -> StoreResult<Connection>,
}

impl Slots {
    fn new(conns: Vec<Connection>, open: fn(&Path) -> StoreResult<Connection>) -> Self {
        Self {
            permits: Semaphore::new(conns.len()),
            idle: Mutex::new(conns),
            open,
        }
    }

    /// A connection, with the permit that must live as long as its use.
    async fn take(&self, path: &Path) -> StoreResult<(SemaphorePermit<'_>, Connection)> {
        let waiting = std::time::Instant::now();
        let permit = self
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
        let conn = match taken {
            Some(c) => c,
            None => (self.open)(path)?,
        };
        Ok((permit, conn))
    }

    /// Puts a connection back (before its permit is released).
    fn put(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// Opens a connection that cannot write (`SQLITE_OPEN_READ_ONLY`): a write
/// attempted through it fails instead of happening. The database must exist
/// and be in WAL mode already (set by the read-write connections).
fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(retry_soon))?;
    Ok(conn)
}

impl Pool {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations, and keeps one read-write connection and `readers`
    /// read-only ones.
    ///
    /// One writer: SQLite lets one transaction write at a time anyway, and
    /// with a single read-write connection writers queue on the pool's
    /// semaphore (woken as soon as it is free) instead of polling SQLite's
    /// lock, and its page cache is never invalidated by another writer.
    /// Measured on 2 cores: ~10 % more checkouts a second than with two.
    /// Reads go to the read-only connections ([`Pool::read`],
    /// [`Pool::read_blocking`]), so a slow read never holds up a write.
    pub fn open(path: &Path, readers: usize) -> StoreResult<Self> {
        create_private_file(path)?;
        let mut first = open_connection(path)?;
        migrations::apply(&mut first)?;
        let readers = (0..readers.max(1))
            .map(|_| open_reader(path))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Ok(Self {
            path: path.to_owned(),
            writer: Writer::start(path, first)?,
            readers: Slots::new(readers, open_reader),
            wal_sync: Arc::new(WalSync {
                wal: PathBuf::from(wal),
                dir,
                state: Mutex::new(SyncState::default()),
                done: Condvar::new(),
            }),
        })
    }

    /// Runs `f`, whose commits must be on disk when this returns (a paid
    /// order and its tickets), as a group commit: `f` commits without an
    /// fsync ([`relaxed_write`]), the connection goes back to the pool, then
    /// one fsync of the WAL covers this commit and those of every concurrent
    /// caller. As durable as a FULL commit (the fsync starts after the commit
    /// is written, and covers everything before it), but the fsync is not
    /// done under SQLite's write lock, so other writers go on meanwhile.
    /// The fsync happens even if `f` fails, for what it may have committed.
    pub async fn run_durable<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let result = self.run(move |c| relaxed_write(c, f)).await;
        let wal_sync = self.wal_sync.clone();
        tokio::task::spawn_blocking(move || wal_sync.sync())
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        result
    }

    /// Runs `f`, a short read (rows found by key or index, a page's worth),
    /// right here on the calling task, on a read-only connection (a write in
    /// `f` fails instead of happening).
    ///
    /// Why not on the blocking pool like [`Pool::run`]: handing a query to
    /// another thread and waking the task again costs two thread switches,
    /// more than such a query takes (tens of µs), and the shop's pages make
    /// several a request: measured on 2 cores, ~10 % more checkouts a
    /// second. A read never waits for SQLite's write lock in WAL mode, so it
    /// does not stall the async worker; writes, scans and anything slow go
    /// through [`Pool::run`].
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T>,
    {
        let (_permit, conn) = self.readers.take(&self.path).await?;
        let result = f(&conn);
        self.readers.put(conn);
        result
    }

    /// Runs `f`, a read that may take a while (a dashboard, a page of the
    /// revocation list), on a read-only connection on the blocking thread
    /// pool, so that it neither stalls an async worker nor holds the
    /// writer's connection.
    pub async fn read_blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (_permit, conn) = self.readers.take(&self.path).await?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?;
        self.readers.put(conn);
        result
    }

    /// Runs `f` on the read-write connection, on the writer's thread.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.run(f).await
    }
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

/// Seconds a client is told to wait when the database is unavailable.
pub const RETRY_AFTER_SECS: u32 = 5;

impl StoreError {
    /// Whether the database is unavailable for now (lost, restarting,
    /// refusing connections, or too busy): the request may succeed if tried
    /// again, so it is a 503 with Retry-After, not a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Postgres(e) => {
                // Class 08: connection exception; 57P01-03: the server is
                // shutting down or starting; 53300: too many connections.
                let transient = e.code().is_some_and(|c| {
                    c.code().starts_with("08")
                        || matches!(c.code(), "57P01" | "57P02" | "57P03" | "53300")
                });
                transient
                    || e.is_closed()
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }

    /// Whether `e`, or one of its causes, is an unavailable database.
    pub fn in_chain(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            c.downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_unavailable)
        })
    }

    /// True when this is a violated UNIQUE constraint (or primary key).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            StoreError::Postgres(e) => {
                e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_cannot_write_and_the_writer_can() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = Pool::open(&dir.path().join("jo.db"), 2).expect("opens");
        let create = |c: &Connection| Ok(c.execute("CREATE TABLE t (a INTEGER)", [])?);
        assert!(pool.read(create).await.is_err());
        assert!(
            pool.read_blocking(|c| Ok(c.execute("DELETE FROM users", [])?))
                .await
                .is_err()
        );
        pool.run(move |c| create(c))
            .await
            .expect("the writer writes");
        pool.run(|c| Ok(c.execute("INSERT INTO t VALUES (7)", [])?))
            .await
            .expect("inserts");
        // The read-only connections see what the writer committed.
        let seen: i64 = pool
            .read(|c| Ok(c.query_row("SELECT a FROM t", [], |r| r.get(0))?))
            .await
            .expect("reads");
        assert_eq!(seen, 7);
    }

    #[tokio::test]
    async fn the_wal_is_checkpointed_off_the_writer() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("jo.db");
        let pool = Pool::open(&path, 1).expect("opens");
        let before = std::fs::metadata(&path).expect("file").len();
        let auto: i64 = pool
            .run(|c| Ok(c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?))
            .await
            .expect("reads the pragma");
        assert_eq!(auto, 0, "the writer's commits never checkpoint");
        pool.run(|c| {
            c.execute_batch("CREATE TABLE t (b BLOB)")?;
            for _ in 0..6 {
                c.execute("INSERT INTO t VALUES (zeroblob(1000000))", [])?;
            }
            Ok(())
        })
        .await
        .expect("writes");
        // The writer checkpoints nothing itself: the 6 MB are in the WAL
        // until the checkpointer copies them into the database file.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).expect("file").len() < before + 6_000_000 {
            assert!(
                std::time::Instant::now() < until,
                "the WAL was never checkpointed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_write_that_panics_is_an_error_and_the_next_write_works() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = Pool::open(&dir.path().join("jo.db"), 1).expect("opens");
        pool.run(|c| Ok(c.execute_batch("CREATE TABLE t (a INTEGER)")?))
            .await
            .expect("creates");
        // A panic inside an open transaction: it must not stay open.
        let r: StoreResult<()> = pool
            .run(|c| {
                c.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")?;
                panic!("a bug in a query");
            })
            .await;
        assert!(r.is_err());
        pool.run(|c| Ok(c.execute("INSERT INTO t VALUES (2)", [])?))
            .await
            .expect("the writer still writes");
        let rows: Vec<i64> = pool
            .read(|c| {
                let mut st = c.prepare("SELECT a FROM t ORDER BY a")?;
                let v = st
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?;
                Ok(v)
            })
            .await
            .expect("reads");
        assert_eq!(rows, [2], "the panicked write was rolled back");
    }
}
