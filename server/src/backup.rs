//! `jo-server backup`: a consistent copy of a SQLite install, taken while
//! the server keeps serving.
//!
//! SQLite's online backup API copies every page of the database inside one
//! read transaction: in WAL mode a reader blocks no writer, so buyers keep
//! paying while the copy runs, and the copy is the database as it was at one
//! instant (every transaction committed before it started, none half). The
//! copy is written beside its destination under a temporary name, checked
//! (`PRAGMA integrity_check`), made a single self-contained file (rollback
//! journal, no `-wal` beside it), flushed to disk and only then renamed over
//! the destination: a failed or interrupted backup never leaves a file that
//! looks like a good one.
//!
//! Restore (README, "Production"): stop the server, copy the backup over
//! `DATA/jo.sqlite3`, delete `DATA/jo.sqlite3-wal` and `DATA/jo.sqlite3-shm`
//! if present (they belong to the database being replaced), start it again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Paid (or later refunded) orders it holds.
    pub paid_orders: i64,
    /// Tickets it holds.
    pub tickets: i64,
}

impl BackupReport {
    /// One line for the operator.
    pub fn render(&self) -> String {
        format!(
            "backup written to {}: {} bytes, integrity ok, {} paid orders, {} tickets",
            self.path.display(),
            self.bytes,
            self.paid_orders,
            self.tickets
        )
    }
}

/// Copies the SQLite database `database` to `to` (replaced if it exists).
/// Blocking: call off the async threads.
pub fn backup_sqlite(database: &Path, to: &Path) -> anyhow::Result<BackupReport> {
    if !database.is_file() {
        bail!("no SQLite database at {}", database.display());
    }
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = to
        .file_name()
        .with_context(|| format!("--to {}: not a file name", to.display()))?;
    if let (Ok(a), Ok(b)) = (database.canonicalize(), to.canonicalize())
        && a == b
    {
        bail!("--to {} is the database itself", to.display());
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".partial-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = copy_and_check(database, &tmp);
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, to)
        .with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))?;
    // The rename itself reaches the disk with the directory.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    let bytes = std::fs::metadata(to)
        .with_context(|| format!("reading {}", to.display()))?
        .len();
    Ok(BackupReport {
        path: to.to_path_buf(),
        bytes,
        ..report
    })
}

/// The backup proper, into `tmp`; then the checks on the copy.
fn copy_and_check(database: &Path, tmp: &Path) -> anyhow::Result<BackupReport> {
    // Read-write without create: a read-only connection could not open a
    // WAL database whose `-shm` the server has not made yet; the source is
    // only ever read here.
    let src = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", database.display()))?;
    src.busy_timeout(Duration::from_secs(10))?;
    let mut dst = Connection::open_with_flags(
        tmp,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("creating {}", tmp.display()))?;
    {
        let backup = Backup::new(&src, &mut dst).context("starting the backup")?;
        // All pages in one step, hence in one read transaction of the
        // source: a copy in several steps would start again each time a
        // writer changed the database between two steps, and under a steady
        // flow of orders might never end.
        let mut waits = 0u32;
        loop {
            match backup.step(-1).context("copying the database")? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    waits += 1;
                    if waits > 400 {
                        bail!("the database stayed locked for 20 s; try again");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => bail!("unexpected backup step result"),
            }
        }
    }
    drop(src);
    let check: String = dst.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        bail!("the copy fails its integrity check: {check}");
    }
    // One self-contained file: no -wal to carry beside it.
    let mode: String = dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        bail!("the copy stayed in journal mode {mode}");
    }
    let paid_orders: i64 = dst.query_row(
        "SELECT count(*) FROM orders WHERE status IN ('paid', 'refunded')",
        [],
        |r| r.get(0),
    )?;
    let tickets: i64 = dst.query_row("SELECT count(*) FROM tickets", [], |r| r.get(0))?;
    dst.close()
        .map_err(|(_, e)| e)
        .context("closing the copy")?;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("flushing {}", tmp.display()))?;
    Ok(BackupReport {
        path: tmp.to_path_buf(),
        bytes: 0,
        paid_orders,
        tickets,
    })
}
