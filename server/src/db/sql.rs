//! One SQL interface over both backends, SQLite and PostgreSQL.
//!
//! The store's queries are written once, against [`Conn`]: they bind
//! [`ToValue`] parameters as `?1`, `?2`… (SQLite's spelling, rewritten to
//! `$1`, `$2`… for PostgreSQL in [`pg_placeholders`]), read columns through
//! [`Row::get`] into [`FromValue`] types, and group statements in a
//! [`Tx`]. Values are the four SQLite storage classes (integer, real, text,
//! blob) and NULL: the PostgreSQL schema uses BIGINT, DOUBLE PRECISION,
//! TEXT and BYTEA for them, so the same SQL means the same thing on both.
//!
//! Where the dialects differ, the difference is here and nowhere else:
//! - placeholders ([`pg_placeholders`]);
//! - what a PostgreSQL column of another type reads as ([`pg_cell`]: an
//!   `int4` count, a `bool` comparison and a `numeric` sum read as integers);
//! - write serialisation ([`Begin::Immediate`]): SQLite lets one
//!   transaction write at a time, and the store's transactions rely on it
//!   (read the seats left, then take them). On PostgreSQL the same guarantee
//!   comes from one advisory transaction lock ([`WRITE_LOCK`]) taken by every
//!   write transaction and every write statement run outside one, on every
//!   node sharing the database. The shop's checkouts and payments take it
//!   *shared* instead ([`Begin::Shop`]) and rely on narrow locks for what
//!   they touch (a buyer's advisory lock, [`Conn::lock_buyer`]; the order's
//!   row, [`Conn::for_update`]; the session's seat row, taken by its atomic
//!   `UPDATE`), so they run side by side while every other writer, holding
//!   it exclusively, still runs alone.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Deref;

use super::{StoreError, StoreResult};

/// Which database a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default.
    Sqlite,
    /// The multi-node backend.
    Postgres,
}

/// A value bound to a statement parameter.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (also booleans, as 0 and 1).
    Int(i64),
    /// A double.
    Real(f64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

/// A type that can be bound to a statement parameter.
pub trait ToValue {
    /// The value to bind.
    fn to_value(&self) -> Value<'_>;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_to_value!(i64, i32, i16, i8, u32, u16, u8, bool);

impl ToValue for usize {
    fn to_value(&self) -> Value<'_> {
        // A count or a length: far below i64::MAX on any machine this runs on.
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}

impl ToValue for Value<'_> {
    fn to_value(&self) -> Value<'_> {
        *self
    }
}

/// The parameters of a statement: `params![a, b, c]`.
#[macro_export]
macro_rules! sql_params {
    () => { &[] as &[&dyn $crate::db::sql::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::db::sql::ToValue),+] as &[&dyn $crate::db::sql::ToValue] };
}
pub use crate::sql_params as params;

/// One column of a result row, as read from either backend.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    /// SQL NULL.
    Null,
    /// An integer (PostgreSQL: int2/int4/int8, bool, integral numeric).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl Cell<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Int(_) => "an integer",
            Cell::Real(_) => "a real",
            Cell::Text(_) => "text",
            Cell::Blob(_) => "a blob",
        }
    }
}

/// A type a column can be read into.
pub trait FromValue: Sized {
    /// Converts the column, or says why it cannot.
    fn from_cell(cell: Cell<'_>) -> Result<Self, String>;
}

fn wrong(cell: Cell<'_>, want: &str) -> String {
    format!("{} where {want} was expected", cell.kind())
}

impl FromValue for i64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Int(i) => Ok(i),
            other => Err(wrong(other, "an integer")),
        }
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
                let i = i64::from_cell(cell)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_from_value!(i32, i16, i8, u64, u32, u16, u8, usize);

impl FromValue for bool {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        Ok(i64::from_cell(cell)? != 0)
    }
}

impl FromValue for f64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Real(f) => Ok(f),
            // Integers read as reals, as SQLite does (an AVG of integers, a 0).
            #[allow(clippy::cast_precision_loss)]
            Cell::Int(i) => Ok(i as f64),
            other => Err(wrong(other, "a number")),
        }
    }
}

impl FromValue for String {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Text(s) => Ok(s.to_owned()),
            other => Err(wrong(other, "text")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Blob(b) => Ok(b.to_vec()),
            other => Err(wrong(other, "a blob")),
        }
    }
}

impl<const N: usize> FromValue for [u8; N] {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Blob(b) => <[u8; N]>::try_from(b)
                .map_err(|_| format!("{} bytes where {N} were expected", b.len())),
            other => Err(wrong(other, "a blob")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// A result row of either backend.
pub enum Row<'r> {
    /// A SQLite row.
    Sqlite(&'r rusqlite::Row<'r>),
    /// A PostgreSQL row.
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i` (0-based) as a `T`; a NULL, a wrong type or a value out of
    /// range is an error ([`StoreError::Decode`]), never a panic.
    pub fn get<T: FromValue>(&self, i: usize) -> StoreResult<T> {
        let decode = |message: String| StoreError::Decode { column: i, message };
        match self {
            Row::Sqlite(r) => {
                use rusqlite::types::ValueRef;
                let cell = match r.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(
                        std::str::from_utf8(t).map_err(|e| decode(format!("text: {e}")))?,
                    ),
                    ValueRef::Blob(b) => Cell::Blob(b),
                };
                T::from_cell(cell).map_err(decode)
            }
            Row::Postgres(r) => T::from_cell(pg_cell(r, i)?).map_err(decode),
        }
    }
}

/// Reads a PostgreSQL column as a [`Cell`]. Beyond the four types the schema
/// uses, it reads what expressions yield: `int4` (a literal, `length()`),
/// `int2`, `bool` (a comparison, `EXISTS`) as integers like SQLite does, and
/// `numeric` (`SUM` of bigints) as an integer when integral.
fn pg_cell<'r>(r: &'r postgres::Row, i: usize) -> StoreResult<Cell<'r>> {
    use postgres::types::Type;
    let Some(column) = r.columns().get(i) else {
        return Err(StoreError::Decode {
            column: i,
            message: format!("the row has {} columns", r.len()),
        });
    };
    let ty = column.type_().clone();
    let int = |v: Option<i64>| v.map_or(Cell::Null, Cell::Int);
    Ok(if ty == Type::INT8 {
        int(r.try_get::<_, Option<i64>>(i)?)
    } else if ty == Type::INT4 {
        int(r.try_get::<_, Option<i32>>(i)?.map(i64::from))
    } else if ty == Type::INT2 {
        int(r.try_get::<_, Option<i16>>(i)?.map(i64::from))
    } else if ty == Type::BOOL {
        int(r.try_get::<_, Option<bool>>(i)?.map(i64::from))
    } else if ty == Type::FLOAT8 {
        r.try_get::<_, Option<f64>>(i)?
            .map_or(Cell::Null, Cell::Real)
    } else if ty == Type::FLOAT4 {
        r.try_get::<_, Option<f32>>(i)?
            .map_or(Cell::Null, |v| Cell::Real(f64::from(v)))
    } else if ty == Type::NUMERIC {
        match r.try_get::<_, Option<PgNumeric>>(i)? {
            None => Cell::Null,
            Some(PgNumeric::Int(v)) => Cell::Int(v),
            Some(PgNumeric::Real(v)) => Cell::Real(v),
        }
    } else if ty == Type::BYTEA {
        r.try_get::<_, Option<&[u8]>>(i)?
            .map_or(Cell::Null, Cell::Blob)
    } else if ty == Type::TEXT || ty == Type::VARCHAR || ty == Type::BPCHAR || ty == Type::NAME {
        r.try_get::<_, Option<&str>>(i)?
            .map_or(Cell::Null, Cell::Text)
    } else {
        return Err(StoreError::Decode {
            column: i,
            message: format!("unsupported column type {ty}"),
        });
    })
}

/// A PostgreSQL `numeric`, decoded from its binary form (a sign, a weight
/// and base-10000 digits): integral values as integers, others as doubles.
enum PgNumeric {
    Int(i64),
    Real(f64),
}

impl<'a> postgres::types::FromSql<'a> for PgNumeric {
    fn from_sql(
        _: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |k: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
            raw.get(2 * k..2 * k + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "short numeric".into())
        };
        let ndigits = usize::from(word(0)?);
        let weight = i32::from(word(1)? as i16);
        let sign = word(2)?;
        if sign == 0xC000 {
            return Err("NaN".into());
        }
        let negative = sign == 0x4000;
        let mut int: i128 = 0;
        let mut real = 0.0f64;
        let mut integral = true;
        for k in 0..ndigits {
            let d = word(4 + k)?;
            let power = weight - i32::try_from(k).unwrap_or(i32::MAX);
            real += f64::from(d) * 10_000f64.powi(power);
            if power < 0 {
                integral &= d == 0;
            } else {
                let scale = 10_000i128
                    .checked_pow(u32::try_from(power).unwrap_or(u32::MAX))
                    .ok_or("numeric out of range")?;
                int = i128::from(d)
                    .checked_mul(scale)
                    .and_then(|v| int.checked_add(v))
                    .ok_or("numeric out of range")?;
            }
        }
        if integral {
            let v = if negative { -int } else { int };
            Ok(PgNumeric::Int(
                i64::try_from(v).map_err(|_| "numeric out of range")?,
            ))
        } else {
            Ok(PgNumeric::Real(if negative { -real } else { real }))
        }
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        *ty == postgres::types::Type::NUMERIC
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Binds a [`Value`] to whatever type PostgreSQL inferred for the parameter:
/// an integer to `int8`, `int4`, `int2` or `bool` (out of range is an error),
/// a NULL to anything.
impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, ToSql, Type};
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) if *ty == Type::INT8 => i.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
            Value::Int(i) if *ty == Type::BOOL => (i != 0).to_sql(ty, out),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(i) if *ty == Type::FLOAT8 => (i as f64).to_sql(ty, out),
            Value::Real(f) if *ty == Type::FLOAT8 => f.to_sql(ty, out),
            Value::Text(s) if <&str as ToSql>::accepts(ty) => s.to_sql(ty, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.to_sql(ty, out),
            other => Err(format!("cannot bind {other:?} to a parameter of type {ty}").into()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

/// Rewrites SQLite's `?N` placeholders as PostgreSQL's `$N` (a bare `?`
/// takes the number after the largest so far, as in SQLite), leaving
/// string literals, quoted names and comments alone.
pub fn pg_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut largest = 0u32;
    while let Some(ch) = chars.next() {
        match ch {
            '\'' | '"' => {
                out.push(ch);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ch {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(ch);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(ch);
                let mut last = ' ';
                for c in chars.by_ref() {
                    out.push(c);
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    largest + 1
                } else {
                    digits.parse().unwrap_or(u32::MAX)
                };
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The advisory lock every PostgreSQL write takes (see the module
/// documentation): one number, shared by every node. "JOWRITE1" in ASCII.
pub const WRITE_LOCK: i64 = 0x4A4F_5752_4954_4531;

/// The class (first key) of the buyers' advisory locks
/// ([`Conn::lock_buyer`]): the two-key lock space does not overlap the
/// single-key one of [`WRITE_LOCK`]. "JOB1" in ASCII.
pub const BUYER_LOCK_CLASS: i32 = 0x4A4F_4231;

/// How many prepared statements a PostgreSQL connection keeps.
const STATEMENT_CACHE: usize = 512;

/// A PostgreSQL connection with its prepared statements.
pub struct PgConn {
    client: PgClient,
    statements: HashMap<String, postgres::Statement>,
    in_tx: bool,
}

/// A client that may be dropped anywhere: the `postgres` client blocks
/// (on its own runtime) when it closes, which panics on an async worker, so
/// there it is closed on a thread of its own.
struct PgClient(Option<postgres::Client>);

impl Deref for PgClient {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        // Some from creation until drop.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("client used after drop"))
    }
}

impl std::ops::DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0
            .as_mut()
            .unwrap_or_else(|| unreachable!("client used after drop"))
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if let Some(client) = self.0.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(client));
        }
    }
}

impl PgConn {
    /// Wraps an open client.
    pub fn new(client: postgres::Client) -> Self {
        Self {
            client: PgClient(Some(client)),
            statements: HashMap::new(),
            in_tx: false,
        }
    }

    /// Whether the connection is still usable (not closed, and not left in
    /// the middle of a transaction).
    pub fn is_healthy(&self) -> bool {
        !self.client.is_closed() && !self.in_tx
    }

    fn statement(&mut self, sql: &str) -> StoreResult<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&pg_placeholders(sql))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// Whether `sql` writes (the statements that must take [`WRITE_LOCK`] when
/// run outside a transaction).
fn is_write(sql: &str) -> bool {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    ["INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
}

/// How a transaction begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begin {
    /// A read transaction: one snapshot for several reads. It takes no
    /// write lock on PostgreSQL, so it must not write (use
    /// [`Begin::Immediate`] for anything that writes).
    Deferred,
    /// Writes, one such transaction at a time across every connection and
    /// node (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: [`WRITE_LOCK`]).
    Immediate,
    /// A shop write (checkout, payment): on SQLite `BEGIN IMMEDIATE` like
    /// [`Begin::Immediate`]; on PostgreSQL [`WRITE_LOCK`] *shared*, so
    /// shop writes run side by side and only exclude the other writers.
    /// Such a transaction must lock what its checks rely on itself:
    /// [`Conn::lock_buyer`] before reading a buyer's limits,
    /// [`Conn::for_update`] on the order it changes, seats taken by one
    /// conditional `UPDATE`, sessions' rows in ascending id order.
    Shop,
}

/// A connection (or transaction) of either backend: what every query
/// function of the store takes.
#[derive(Clone, Copy)]
pub enum Conn<'c> {
    /// SQLite.
    Sqlite(&'c rusqlite::Connection),
    /// PostgreSQL.
    Postgres(&'c RefCell<PgConn>),
}

fn pg<'c>(cell: &'c RefCell<PgConn>) -> StoreResult<std::cell::RefMut<'c, PgConn>> {
    cell.try_borrow_mut()
        .map_err(|_| StoreError::Task("the connection is in use by a running query".into()))
}

fn values<'a>(params: &'a [&'a dyn ToValue]) -> Vec<Value<'a>> {
    params.iter().map(|p| p.to_value()).collect()
}

impl<'c> Conn<'c> {
    /// The backend's dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement; returns the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn ToValue]) -> StoreResult<usize> {
        let vals = values(params);
        match self {
            Conn::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(vals.iter()))?),
            Conn::Postgres(cell) => {
                let mut p = pg(cell)?;
                let stmt = p.statement(sql)?;
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = vals
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                let n = if !p.in_tx && is_write(sql) {
                    let mut tx = p.client.transaction()?;
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                    let n = tx.execute(&stmt, &refs)?;
                    tx.commit()?;
                    n
                } else {
                    p.client.execute(&stmt, &refs)?
                };
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// Runs a query and calls `f` on each row, in order, as they arrive.
    /// `f` must not use the connection (it is busy streaming the rows).
    pub fn for_each(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        mut f: impl FnMut(&Row<'_>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let vals = values(params);
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(vals.iter()))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Conn::Postgres(cell) => {
                use postgres::fallible_iterator::FallibleIterator;
                let mut p = pg(cell)?;
                if !p.in_tx && is_write(sql) {
                    // A write returning rows, outside a transaction: run it
                    // in one that holds the write lock.
                    drop(p);
                    let tx = self.begin(Begin::Immediate)?;
                    tx.for_each(sql, params, f)?;
                    return tx.commit();
                }
                let stmt = p.statement(sql)?;
                let mut rows = p
                    .client
                    .query_raw(&stmt, vals.iter().map(|v| v as &dyn postgres::types::ToSql))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Postgres(&r))?;
                }
                Ok(())
            }
        }
    }

    /// The first row of a query through `f`; no row is
    /// [`StoreError::NoRows`] (see [`Optional::optional`]).
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut f = Some(f);
        let mut out = None;
        self.for_each(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        out.ok_or(StoreError::NoRows)
    }

    /// Every row of a query through `f`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn ToValue],
        mut f: impl FnMut(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        self.for_each(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Runs several statements without parameters (schema changes).
    pub fn batch(&self, sql: &str) -> StoreResult<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(cell) => Ok(pg(cell)?.client.batch_execute(sql)?),
        }
    }

    /// Begins a transaction; it rolls back unless [`Tx::commit`] is called.
    /// A transaction inside another is an error.
    pub fn begin(&self, how: Begin) -> StoreResult<Tx<'c>> {
        match self {
            Conn::Sqlite(c) => {
                if !c.is_autocommit() {
                    return Err(StoreError::Task("a transaction is already open".into()));
                }
                let sql = match how {
                    Begin::Deferred => "BEGIN DEFERRED",
                    // One writer at a time: the shop's checks hold as they are.
                    Begin::Immediate | Begin::Shop => "BEGIN IMMEDIATE",
                };
                c.prepare_cached(sql)?.execute([])?;
            }
            Conn::Postgres(cell) => {
                let mut p = pg(cell)?;
                if p.in_tx {
                    return Err(StoreError::Task("a transaction is already open".into()));
                }
                p.client.batch_execute("BEGIN")?;
                p.in_tx = true;
                match how {
                    Begin::Deferred => {}
                    Begin::Immediate => {
                        p.client
                            .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
                    }
                    Begin::Shop => {
                        p.client
                            .execute("SELECT pg_advisory_xact_lock_shared($1)", &[&WRITE_LOCK])?;
                    }
                }
            }
        }
        Ok(Tx {
            conn: *self,
            open: true,
        })
    }

    /// Locks buyer `user_id` until the end of the current [`Begin::Shop`]
    /// transaction, so that two checkouts of one buyer check the buyer's
    /// limits (pending orders, held seats, tickets per session) one after
    /// the other. SQLite: nothing to do (one writer at a time already).
    /// Take it before any row lock (one lock order, no deadlock).
    pub fn lock_buyer(&self, user_id: i64) -> StoreResult<()> {
        match self {
            Conn::Sqlite(_) => Ok(()),
            Conn::Postgres(cell) => {
                // Ids past 2^31 share a lock with a smaller one: they only
                // wait for each other, never miss a lock.
                let key = i32::try_from(user_id.rem_euclid(1 << 31)).unwrap_or(i32::MAX);
                pg(cell)?.client.execute(
                    "SELECT pg_advisory_xact_lock($1, $2)",
                    &[&BUYER_LOCK_CLASS, &key],
                )?;
                Ok(())
            }
        }
    }

    /// The clause that locks the rows a `SELECT` reads until the end of the
    /// transaction: `FOR UPDATE` on PostgreSQL (a [`Begin::Shop`]
    /// transaction's order row); nothing on SQLite, whose write
    /// transactions run one at a time.
    pub fn for_update(&self) -> &'static str {
        match self {
            Conn::Sqlite(_) => "",
            Conn::Postgres(_) => " FOR UPDATE",
        }
    }

    /// Sets a savepoint inside the current transaction; it is rolled back
    /// to unless [`Savepoint::release`] is called.
    pub fn savepoint(&self) -> StoreResult<Savepoint<'c>> {
        self.batch("SAVEPOINT jo_sp")?;
        Ok(Savepoint {
            conn: *self,
            open: true,
        })
    }

    fn end(&self, sql: &str) -> StoreResult<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute([]).map(|_| ())?),
            Conn::Postgres(cell) => {
                let mut p = pg(cell)?;
                let r = p.client.batch_execute(sql);
                if r.is_ok() || p.client.is_closed() {
                    p.in_tx = false;
                }
                Ok(r?)
            }
        }
    }
}

/// An open transaction: derefs to its [`Conn`]; rolls back when dropped
/// without [`Tx::commit`].
pub struct Tx<'c> {
    conn: Conn<'c>,
    open: bool,
}

impl Tx<'_> {
    /// Commits.
    pub fn commit(mut self) -> StoreResult<()> {
        self.open = false;
        self.conn.end("COMMIT")
    }
}

impl<'c> Deref for Tx<'c> {
    type Target = Conn<'c>;
    fn deref(&self) -> &Conn<'c> {
        &self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A failed rollback leaves the connection unhealthy (PostgreSQL:
            // dropped by the pool; SQLite: the next BEGIN fails and says so).
            let _ = self.conn.end("ROLLBACK");
        }
    }
}

/// A savepoint: rolled back to when dropped without [`Savepoint::release`].
pub struct Savepoint<'c> {
    conn: Conn<'c>,
    open: bool,
}

impl Savepoint<'_> {
    /// Keeps what was done since the savepoint.
    pub fn release(mut self) -> StoreResult<()> {
        self.open = false;
        self.conn.batch("RELEASE jo_sp")
    }
}

impl<'c> Deref for Savepoint<'c> {
    type Target = Conn<'c>;
    fn deref(&self) -> &Conn<'c> {
        &self.conn
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.batch("ROLLBACK TO jo_sp; RELEASE jo_sp");
        }
    }
}

/// `.optional()` on a query's result: no row becomes `None`.
pub trait Optional<T> {
    /// `Err(NoRows)` → `Ok(None)`.
    fn optional(self) -> StoreResult<Option<T>>;
}

impl<T> Optional<T> for StoreResult<T> {
    fn optional(self) -> StoreResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_outside_literals() {
        assert_eq!(
            pg_placeholders(
                "SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12 -- ?3\n AND e = ?"
            ),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12 -- ?3\n AND e = $13"
        );
        assert_eq!(pg_placeholders("SELECT 1"), "SELECT 1");
        assert_eq!(
            pg_placeholders("SELECT \"?x\", ?, ?"),
            "SELECT \"?x\", $1, $2"
        );
    }

    #[test]
    fn writes_are_told_from_reads() {
        assert!(is_write("  insert INTO t VALUES (1)"));
        assert!(is_write("UPDATE t SET a = 1"));
        assert!(is_write("WITH x AS (SELECT 1) DELETE FROM t"));
        assert!(!is_write("SELECT * FROM t"));
    }

    #[test]
    fn sqlite_values_round_trip_and_bad_columns_are_errors() {
        let c = rusqlite::Connection::open_in_memory().expect("opens");
        let conn = Conn::Sqlite(&c);
        conn.batch("CREATE TABLE t (i INTEGER, s TEXT, b BLOB)")
            .expect("creates");
        let tx = conn.begin(Begin::Immediate).expect("begins");
        tx.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            params![7i64, "sept", [1u8, 2, 3]],
        )
        .expect("inserts");
        assert!(
            conn.begin(Begin::Deferred).is_err(),
            "no nested transaction"
        );
        tx.commit().expect("commits");
        let (i, s, b): (u8, String, [u8; 3]) = conn
            .query_row("SELECT i, s, b FROM t WHERE i = ?1", params![7], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("reads");
        assert_eq!((i, s.as_str(), b), (7, "sept", [1, 2, 3]));
        let none: Option<i64> = conn
            .query_row("SELECT i FROM t WHERE i = 8", params![], |r| r.get(0))
            .optional()
            .expect("reads");
        assert_eq!(none, None);
        // Wrong type, wrong length, NULL into a non-Option: errors, not panics.
        assert!(matches!(
            conn.query_row("SELECT s FROM t", params![], |r| r.get::<i64>(0)),
            Err(StoreError::Decode { .. })
        ));
        assert!(
            conn.query_row("SELECT b FROM t", params![], |r| r.get::<[u8; 4]>(0))
                .is_err()
        );
        assert!(
            conn.query_row("SELECT NULL", params![], |r| r.get::<String>(0))
                .is_err()
        );
        // A dropped transaction rolls back.
        {
            let tx = conn.begin(Begin::Immediate).expect("begins");
            tx.execute("DELETE FROM t", params![]).expect("deletes");
        }
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", params![], |r| r.get(0))
            .expect("counts");
        assert_eq!(n, 1);
    }
}
