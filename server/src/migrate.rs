//! `jo-server migrate-to-postgres`: moves an evaluation install (the SQLite
//! file) into an empty PostgreSQL database, then proves the copy.
//!
//! The copy is one PostgreSQL transaction: the target is checked empty,
//! every table is copied in foreign-key order with its columns by name, the
//! identity sequences are moved past the copied ids, and both sides are
//! compared table by table (row count and an order-independent checksum of
//! every cell, read through [`Conn`] on both sides so that cells decode the
//! same). Only if every table matches is it committed: anything else leaves
//! the target as it was.
//!
//! The SQLite side is read in one read transaction (one snapshot), from a
//! read-only connection: the source is never written.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::db::sql::{Begin, Cell, Conn, FromValue, Value, params};
use crate::db::{StoreError, migrations, pg};

/// Rows per multi-row INSERT: large enough to make the copy quick, small
/// enough to stay far below PostgreSQL's 65,535 parameters per statement.
const BATCH_ROWS: usize = 500;

/// PostgreSQL's limit on the parameters of one statement.
const MAX_PARAMS: usize = 65_535;

/// Why a migration did not happen (or was rolled back).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The SQLite file is not at this build's schema version.
    #[error(
        "{path}: schema version {found}, this server's is {latest}: start the current server on it once (then stop it) before migrating"
    )]
    SchemaVersion {
        /// The file.
        path: String,
        /// Its `PRAGMA user_version`.
        found: i64,
        /// This build's latest SQLite migration.
        latest: i64,
    },
    /// This build's PostgreSQL schema is not the twin of its SQLite schema.
    #[error(
        "this build's PostgreSQL schema is version {pg}, its SQLite schema version {sqlite}: no migration is possible with it"
    )]
    NoTwinSchema {
        /// Latest PostgreSQL migration.
        pg: i64,
        /// Latest SQLite migration.
        sqlite: i64,
    },
    /// The target already holds data.
    #[error(
        "the PostgreSQL database is not empty (table {table} has rows): migrate into an empty database; nothing was written"
    )]
    NotEmpty {
        /// The first table found with rows.
        table: String,
    },
    /// The two schemas do not have the same table or columns.
    #[error("table {table}: {message}; nothing was written")]
    Schema {
        /// The table concerned.
        table: String,
        /// What differs.
        message: String,
    },
    /// A table differs after the copy: rolled back.
    #[error(
        "{} table(s) differ after the copy ({}): rolled back, nothing was written",
        .report.differing().len(),
        .report.differing().join(", ")
    )]
    Mismatch {
        /// Both sides, table by table.
        report: Report,
    },
    /// A database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An order-independent digest of a table's rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Rows seen.
    pub rows: u64,
    /// The wrapping sum of the first 16 bytes (big-endian) of every row's
    /// SHA-256: a sum, so the order rows are read in does not matter.
    pub sum: u128,
}

impl Checksum {
    /// Adds one row, given its cells in column order.
    pub fn add(&mut self, cells: &[OwnedCell]) {
        let mut h = Sha256::new();
        for cell in cells {
            // A type tag, then a fixed-width or length-prefixed payload: no
            // two different rows encode alike (a text "1" is not an integer
            // 1, a NULL is not an empty blob).
            match cell {
                OwnedCell::Null => h.update([0u8]),
                OwnedCell::Int(i) => {
                    h.update([1u8]);
                    h.update(i.to_be_bytes());
                }
                OwnedCell::Real(f) => {
                    h.update([2u8]);
                    h.update(f.to_bits().to_be_bytes());
                }
                OwnedCell::Text(s) => {
                    h.update([3u8]);
                    h.update((s.len() as u64).to_be_bytes());
                    h.update(s.as_bytes());
                }
                OwnedCell::Blob(b) => {
                    h.update([4u8]);
                    h.update((b.len() as u64).to_be_bytes());
                    h.update(b);
                }
            }
        }
        let digest = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(first));
        self.rows += 1;
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.sum)
    }
}

/// One cell read from either backend, owned (to be bound again later).
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedCell {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A real.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl FromValue for OwnedCell {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        Ok(match cell {
            Cell::Null => OwnedCell::Null,
            Cell::Int(i) => OwnedCell::Int(i),
            Cell::Real(f) => OwnedCell::Real(f),
            Cell::Text(s) => OwnedCell::Text(s.to_owned()),
            Cell::Blob(b) => OwnedCell::Blob(b.to_vec()),
        })
    }
}

impl OwnedCell {
    fn value(&self) -> Value<'_> {
        match self {
            OwnedCell::Null => Value::Null,
            OwnedCell::Int(i) => Value::Int(*i),
            OwnedCell::Real(f) => Value::Real(*f),
            OwnedCell::Text(s) => Value::Text(s),
            OwnedCell::Blob(b) => Value::Blob(b),
        }
    }
}

/// Both sides of one table.
#[derive(Clone, Debug)]
pub struct TableReport {
    /// The table.
    pub table: String,
    /// The SQLite side.
    pub source: Checksum,
    /// The PostgreSQL side.
    pub target: Checksum,
}

impl TableReport {
    /// Whether both sides have the same rows.
    pub fn matches(&self) -> bool {
        self.source == self.target
    }
}

/// Every table, in copy order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// One entry per table.
    pub tables: Vec<TableReport>,
}

impl Report {
    /// Whether every table matches.
    pub fn ok(&self) -> bool {
        self.tables.iter().all(TableReport::matches)
    }

    /// The tables that differ.
    pub fn differing(&self) -> Vec<&str> {
        self.tables
            .iter()
            .filter(|t| !t.matches())
            .map(|t| t.table.as_str())
            .collect()
    }

    /// The side-by-side table printed by the command.
    pub fn render(&self) -> String {
        let width = self
            .tables
            .iter()
            .map(|t| t.table.len())
            .chain(std::iter::once(5))
            .max()
            .unwrap_or(5);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:width$}  {:>9}  {:32}  {:>9}  postgres checksum",
            "table", "sqlite", "sqlite checksum", "postgres"
        );
        for t in &self.tables {
            let _ = writeln!(
                out,
                "{:width$}  {:>9}  {}  {:>9}  {}  {}",
                t.table,
                t.source.rows,
                t.source,
                t.target.rows,
                t.target,
                if t.matches() { "OK" } else { "DIFFERS" }
            );
        }
        out
    }
}

/// One table to copy: its name and its columns in SQLite order.
#[derive(Clone, Debug)]
struct Table {
    name: String,
    columns: Vec<String>,
    /// How to read it in insertion order (rowid, else the primary key), so
    /// that a row referring to an earlier row of its own table
    /// (`tickets.replaces`) is copied after it.
    order_by: String,
}

/// A name quoted for SQL (both dialects quote with double quotes).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens the SQLite file read-only and checks its schema version.
fn open_source(path: &Path) -> Result<rusqlite::Connection, MigrateError> {
    use rusqlite::OpenFlags;
    if !path.is_file() {
        return Err(StoreError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such database file"),
        }
        .into());
    }
    let c = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::from)?;
    // A server still running on the file may hold a lock for a moment.
    c.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(StoreError::from)?;
    let found: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::from)?;
    let latest = i64::try_from(migrations::MIGRATIONS.len()).unwrap_or(i64::MAX);
    if found != latest {
        return Err(MigrateError::SchemaVersion {
            path: path.display().to_string(),
            found,
            latest,
        });
    }
    let pg_latest = pg::PG_MIGRATIONS.last().map_or(0, |m| m.0);
    if pg_latest != latest {
        return Err(MigrateError::NoTwinSchema {
            pg: pg_latest,
            sqlite: latest,
        });
    }
    Ok(c)
}

/// The SQLite tables (internal `sqlite_*` ones and views left out), parents
/// before children.
fn source_tables(c: &Conn<'_>) -> Result<Vec<Table>, MigrateError> {
    let names: Vec<String> = c.query_map(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        params![],
        |r| r.get(0),
    )?;
    let mut tables = BTreeMap::new();
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in &names {
        // PRAGMA arguments cannot be bound: the table-valued forms can.
        let info: Vec<(String, i64)> = c.query_map(
            "SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid",
            params![name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let columns: Vec<String> = info.iter().map(|(n, _)| n.clone()).collect();
        // A WITHOUT ROWID table has no rowid to select.
        let has_rowid = c
            .for_each(
                &format!("SELECT rowid FROM {} LIMIT 0", quote(name)),
                params![],
                |_| Ok(()),
            )
            .is_ok();
        let order_by = if !has_rowid {
            let mut pk: Vec<&(String, i64)> = info.iter().filter(|(_, k)| *k > 0).collect();
            pk.sort_by_key(|(_, k)| *k);
            let cols: Vec<String> = pk.iter().map(|(n, _)| n.clone()).collect();
            column_list(&cols)
        } else {
            "rowid".to_owned()
        };
        let refs: Vec<String> = c.query_map(
            "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)",
            params![name],
            |r| r.get(0),
        )?;
        parents.insert(
            name.clone(),
            refs.into_iter()
                // Self-references are satisfied by the copy order.
                .filter(|p| p != name)
                .collect(),
        );
        tables.insert(
            name.clone(),
            Table {
                name: name.clone(),
                columns,
                order_by,
            },
        );
    }
    // Topological order, alphabetical among equals (a stable, readable report).
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut ordered = Vec::new();
    while done.len() < names.len() {
        let ready: Vec<String> = names
            .iter()
            .filter(|n| !done.contains(*n))
            .filter(|n| {
                parents[*n]
                    .iter()
                    .all(|p| done.contains(p) || !tables.contains_key(p))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            let left: Vec<&str> = names
                .iter()
                .filter(|n| !done.contains(*n))
                .map(String::as_str)
                .collect();
            return Err(MigrateError::Schema {
                table: left.join(", "),
                message: "their foreign keys form a cycle".into(),
            });
        }
        for n in ready {
            if let Some(t) = tables.remove(&n) {
                ordered.push(t);
            }
            done.insert(n);
        }
    }
    Ok(ordered)
}

/// Checks that the target has every table with the same columns, and no
/// row in any application table.
fn check_target(pgc: &Conn<'_>, tables: &[Table]) -> Result<(), MigrateError> {
    for t in tables {
        let columns: BTreeSet<String> = pgc
            .query_map(
                "SELECT column_name::text FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = ?1",
                params![t.name],
                |r| r.get(0),
            )?
            .into_iter()
            .collect();
        if columns.is_empty() {
            return Err(MigrateError::Schema {
                table: t.name.clone(),
                message: "missing from the PostgreSQL schema".into(),
            });
        }
        let source: BTreeSet<String> = t.columns.iter().cloned().collect();
        if columns != source {
            let only_sqlite: Vec<&String> = source.difference(&columns).collect();
            let only_pg: Vec<&String> = columns.difference(&source).collect();
            return Err(MigrateError::Schema {
                table: t.name.clone(),
                message: format!(
                    "columns differ (only in SQLite: {only_sqlite:?}; only in PostgreSQL: {only_pg:?})"
                ),
            });
        }
    }
    let targets: Vec<String> = pgc.query_map(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
            AND c.relname <> 'schema_version'",
        params![],
        |r| r.get(0),
    )?;
    // The copy order first (the report's order), then any other table.
    let mut order: Vec<&str> = tables
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| targets.iter().any(|t| t == n))
        .collect();
    let mut others: Vec<&str> = targets
        .iter()
        .map(String::as_str)
        .filter(|n| !order.contains(n))
        .collect();
    others.sort_unstable();
    order.extend(others);
    for name in order {
        let any: bool = pgc.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM {})", quote(name)),
            params![],
            |r| r.get(0),
        )?;
        if any {
            return Err(MigrateError::NotEmpty {
                table: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// Inserts buffered rows in one multi-row INSERT.
fn flush(pgc: &Conn<'_>, t: &Table, rows: &mut Vec<Vec<OwnedCell>>) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = t.columns.len();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        quote(&t.name),
        column_list(&t.columns)
    );
    for (i, _) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for j in 0..n {
            if j > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "?{}", i * n + j + 1);
        }
        sql.push(')');
    }
    let values: Vec<Value<'_>> = rows.iter().flatten().map(OwnedCell::value).collect();
    let refs: Vec<&dyn crate::db::sql::ToValue> = values
        .iter()
        .map(|v| v as &dyn crate::db::sql::ToValue)
        .collect();
    pgc.execute(&sql, &refs)?;
    rows.clear();
    Ok(())
}

/// Copies one table; returns the checksum of the rows read from SQLite.
fn copy_table(src: &Conn<'_>, pgc: &Conn<'_>, t: &Table) -> Result<Checksum, MigrateError> {
    let per_batch = BATCH_ROWS.min(MAX_PARAMS / t.columns.len().max(1)).max(1);
    let mut sum = Checksum::default();
    let mut rows = Vec::with_capacity(per_batch);
    src.for_each(
        &format!(
            "SELECT {} FROM {} ORDER BY {}",
            column_list(&t.columns),
            quote(&t.name),
            t.order_by
        ),
        params![],
        |r| {
            let cells = (0..t.columns.len())
                .map(|i| r.get::<OwnedCell>(i))
                .collect::<Result<Vec<_>, _>>()?;
            sum.add(&cells);
            rows.push(cells);
            if rows.len() >= per_batch {
                flush(pgc, t, &mut rows)?;
            }
            Ok(())
        },
    )?;
    flush(pgc, t, &mut rows)?;
    Ok(sum)
}

/// The checksum of a table as `c` reads it, columns in the given order.
fn checksum(c: &Conn<'_>, t: &Table) -> Result<Checksum, StoreError> {
    let mut sum = Checksum::default();
    c.for_each(
        &format!("SELECT {} FROM {}", column_list(&t.columns), quote(&t.name)),
        params![],
        |r| {
            let cells = (0..t.columns.len())
                .map(|i| r.get::<OwnedCell>(i))
                .collect::<Result<Vec<_>, _>>()?;
            sum.add(&cells);
            Ok(())
        },
    )?;
    Ok(sum)
}

/// Moves every identity sequence of the target past the ids copied, so that
/// the next row the application inserts does not collide with one.
fn reset_sequences(pgc: &Conn<'_>) -> Result<(), StoreError> {
    let identities: Vec<(String, String)> = pgc.query_map(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
          WHERE table_schema = current_schema() AND is_identity = 'YES'
          ORDER BY table_name",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (table, column) in identities {
        // is_called = false: the next value is exactly MAX + 1 (1 when empty).
        pgc.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence(?1, ?2), COALESCE(MAX({}), 0) + 1, false) FROM {}",
                quote(&column),
                quote(&table)
            ),
            params![quote(&table), column],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// What [`migrate_to_postgres`] reports as it goes (one line per step).
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Copies the SQLite database at `sqlite` into the empty PostgreSQL
/// database of `target`, applying its schema first, and compares both
/// sides. Blocking (both clients are synchronous): run it on a thread of
/// its own or on tokio's blocking pool, never on an async worker.
///
/// Commits only if every table matches; a non-empty target, a schema
/// difference or a mismatch leaves the target's data as it was (the schema
/// migrations, applied first, stay).
pub fn migrate_to_postgres(
    sqlite: &Path,
    target: &postgres::Config,
    progress: Progress<'_>,
) -> Result<Report, MigrateError> {
    let source = open_source(sqlite)?;
    let src = Conn::Sqlite(&source);
    // One snapshot of the source for the copy and its checksums.
    let read = src.begin(Begin::Deferred)?;
    let tables = source_tables(&src)?;

    progress(&format!("connecting to {}", pg::describe(target)));
    let cell = RefCell::new(pg::open(target)?);
    let pgc = Conn::Postgres(&cell);
    pg::migrate(&pgc)?;

    // The write lock: a second migration (or a node started too early) waits
    // instead of interleaving its rows with these.
    let tx = pgc.begin(Begin::Immediate)?;
    check_target(&tx, &tables)?;
    let mut sums = Vec::with_capacity(tables.len());
    for t in &tables {
        // The rollup triggers would count every copied ticket and scan a
        // second time (the rollup tables are copied as they are), and the
        // audit log's guards have nothing to guard yet. Foreign keys are
        // system triggers: they stay on.
        tx.batch(&format!(
            "ALTER TABLE {} DISABLE TRIGGER USER",
            quote(&t.name)
        ))?;
        let sum = copy_table(&src, &tx, t)?;
        tx.batch(&format!(
            "ALTER TABLE {} ENABLE TRIGGER USER",
            quote(&t.name)
        ))?;
        progress(&format!("copied {} ({} rows)", t.name, sum.rows));
        sums.push(sum);
    }
    reset_sequences(&tx)?;

    // Compare inside the transaction: a mismatch rolls everything back.
    let mut report = Report::default();
    for (t, source) in tables.iter().zip(sums) {
        report.tables.push(TableReport {
            table: t.name.clone(),
            source,
            target: checksum(&tx, t)?,
        });
    }
    if !report.ok() {
        return Err(MigrateError::Mismatch { report });
    }
    tx.commit()?;
    read.commit()?;
    Ok(report)
}

/// Compares the SQLite database at `sqlite` with the PostgreSQL database of
/// `target`, table by table, without writing to either (blocking, like
/// [`migrate_to_postgres`]).
pub fn compare(sqlite: &Path, target: &postgres::Config) -> Result<Report, MigrateError> {
    let source = open_source(sqlite)?;
    let src = Conn::Sqlite(&source);
    let read = src.begin(Begin::Deferred)?;
    let tables = source_tables(&src)?;
    let cell = RefCell::new(pg::open(target)?);
    let pgc = Conn::Postgres(&cell);
    let mut report = Report::default();
    for t in &tables {
        report.tables.push(TableReport {
            table: t.name.clone(),
            source: checksum(&src, t)?,
            target: checksum(&pgc, t)?,
        });
    }
    read.commit()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_ignores_row_order_but_not_types_or_values() {
        let a = vec![OwnedCell::Int(1), OwnedCell::Text("x".into())];
        let b = vec![OwnedCell::Null, OwnedCell::Blob(vec![1, 2])];
        let mut one = Checksum::default();
        one.add(&a);
        one.add(&b);
        let mut other = Checksum::default();
        other.add(&b);
        other.add(&a);
        assert_eq!(one, other);
        let mut text = Checksum::default();
        text.add(&[OwnedCell::Text("1".into()), OwnedCell::Text("x".into())]);
        let mut int = Checksum::default();
        int.add(&a);
        assert_ne!(text, int);
        let mut empty = Checksum::default();
        empty.add(&[OwnedCell::Blob(vec![])]);
        let mut null = Checksum::default();
        null.add(&[OwnedCell::Null]);
        assert_ne!(empty, null);
    }

    #[test]
    fn tables_come_parents_first_and_views_and_internal_tables_are_left_out() {
        let mut c = rusqlite::Connection::open_in_memory().expect("opens");
        migrations::apply(&mut c).expect("migrates");
        let tables = source_tables(&Conn::Sqlite(&c)).expect("lists");
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        let at = |n: &str| {
            names
                .iter()
                .position(|x| *x == n)
                .unwrap_or_else(|| panic!("{n} in {names:?}"))
        };
        assert!(at("users") < at("orders"));
        assert!(at("orders") < at("order_lines"));
        assert!(at("order_lines") < at("tickets"));
        assert!(at("devices") < at("scans"));
        assert!(!names.contains(&"scan_levels"), "a view");
        assert!(!names.iter().any(|n| n.starts_with("sqlite_")));
        let sales = &tables[at("sales_daily")];
        assert_eq!(sales.order_by, "\"session_id\", \"offer_id\", \"day\"");
        assert_eq!(tables[at("tickets")].order_by, "rowid");
    }
}
