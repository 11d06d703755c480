//! Bulk seeding for the benchmarks, on either backend: rows are written the
//! same way to a [`Sink`], which on SQLite inserts them with prepared
//! statements in one transaction and on PostgreSQL streams each table with
//! `COPY … FROM STDIN` (the only way to load millions of rows there in
//! minutes, not hours). Row ids are given by the generator, so that one
//! table's rows can name another's without reading them back.
//!
//! The rollup triggers run on both backends as they do in production (COPY
//! fires row triggers).

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;

/// One cell of a seeded row.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    /// An integer.
    I(i64),
    /// Text.
    T(&'a str),
    /// Bytes.
    B(&'a [u8]),
    /// SQL NULL.
    Null,
}

/// A table to seed and the columns given, in order.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Table name.
    pub name: &'static str,
    /// Column names, comma-separated.
    pub columns: &'static str,
}

/// Where seeded rows go.
pub enum Sink<'c> {
    /// Prepared INSERTs in the caller's SQLite transaction.
    Sqlite(&'c rusqlite::Transaction<'c>),
    /// COPY text, buffered per table and streamed in the order the tables
    /// first appeared (parents before children) whenever [`FLUSH_BYTES`]
    /// are buffered, and at [`Sink::finish`].
    Postgres {
        client: &'c mut postgres::Client,
        buffers: Vec<Buffered>,
        index: HashMap<&'static str, usize>,
        buffered: usize,
    },
}

/// Bytes of COPY text held before they are sent. Bounded so that seeding
/// 12 million tickets holds neither gigabytes here nor a 12-million-row
/// statement (its foreign-key checks and transition tables) on the server.
const FLUSH_BYTES: usize = 64 << 20;

/// One table's COPY text waiting to be sent, and what was sent of it.
pub struct Buffered {
    table: Table,
    text: Vec<u8>,
    rows: u64,
    secs: f64,
}

impl<'c> Sink<'c> {
    /// A sink that COPYs into `client`'s database.
    pub fn postgres(client: &'c mut postgres::Client) -> Self {
        Sink::Postgres {
            client,
            buffers: Vec::new(),
            index: HashMap::new(),
            buffered: 0,
        }
    }

    /// Writes one row of `table`.
    pub fn row(&mut self, table: Table, vals: &[Val<'_>]) -> anyhow::Result<()> {
        match self {
            Sink::Sqlite(tx) => {
                let marks: Vec<String> = (1..=vals.len()).map(|i| format!("?{i}")).collect();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    table.name,
                    table.columns,
                    marks.join(", ")
                );
                let mut st = tx.prepare_cached(&sql)?;
                let params: Vec<rusqlite::types::Value> = vals
                    .iter()
                    .map(|v| match *v {
                        Val::I(i) => rusqlite::types::Value::Integer(i),
                        Val::T(t) => rusqlite::types::Value::Text(t.to_owned()),
                        Val::B(b) => rusqlite::types::Value::Blob(b.to_vec()),
                        Val::Null => rusqlite::types::Value::Null,
                    })
                    .collect();
                st.execute(rusqlite::params_from_iter(params))?;
            }
            Sink::Postgres {
                client,
                buffers,
                index,
                buffered,
            } => {
                let i = *index.entry(table.name).or_insert_with(|| {
                    buffers.push(Buffered {
                        table,
                        text: Vec::new(),
                        rows: 0,
                        secs: 0.0,
                    });
                    buffers.len() - 1
                });
                let buf = &mut buffers[i].text;
                let before = buf.len();
                for (n, v) in vals.iter().enumerate() {
                    if n > 0 {
                        buf.push(b'\t');
                    }
                    copy_text(buf, *v)?;
                }
                buf.push(b'\n');
                *buffered += buf.len() - before;
                if *buffered >= FLUSH_BYTES {
                    flush(client, buffers)?;
                    *buffered = 0;
                }
            }
        }
        Ok(())
    }

    /// Streams what is still buffered (PostgreSQL) and prints each table's
    /// rows and time.
    pub fn finish(self) -> anyhow::Result<()> {
        if let Sink::Postgres {
            client,
            mut buffers,
            ..
        } = self
        {
            flush(client, &mut buffers)?;
            for b in &buffers {
                println!(
                    "  COPY {}: {} rows in {:.1} s",
                    b.table.name, b.rows, b.secs
                );
            }
        }
        Ok(())
    }
}

/// Sends every table's buffered text, parents first, one COPY each.
fn flush(client: &mut postgres::Client, buffers: &mut [Buffered]) -> anyhow::Result<()> {
    for b in buffers.iter_mut().filter(|b| !b.text.is_empty()) {
        let t = std::time::Instant::now();
        let mut w = client.copy_in(&format!(
            "COPY {} ({}) FROM STDIN",
            b.table.name, b.table.columns
        ))?;
        w.write_all(&b.text)?;
        b.rows += w.finish()?;
        b.secs += t.elapsed().as_secs_f64();
        b.text.clear();
    }
    Ok(())
}

/// One value in COPY's text format: `\N` for NULL, bytea as `\\x…` (the
/// backslash itself escaped), text with its backslashes, tabs and line
/// breaks escaped.
fn copy_text(buf: &mut Vec<u8>, v: Val<'_>) -> std::io::Result<()> {
    match v {
        Val::I(i) => write!(buf, "{i}"),
        Val::Null => buf.write_all(b"\\N"),
        Val::B(b) => {
            buf.write_all(b"\\\\x")?;
            buf.write_all(hex::encode(b).as_bytes())
        }
        Val::T(t) => {
            for c in t.bytes() {
                match c {
                    b'\\' => buf.write_all(b"\\\\")?,
                    b'\t' => buf.write_all(b"\\t")?,
                    b'\n' => buf.write_all(b"\\n")?,
                    b'\r' => buf.write_all(b"\\r")?,
                    c => buf.push(c),
                }
            }
            Ok(())
        }
    }
}

/// After COPY with explicit ids: moves each identity sequence past the
/// largest id (else the server's next INSERT would collide), and refreshes
/// the planner's statistics.
pub fn pg_after_copy(client: &mut postgres::Client, tables: &[&str]) -> anyhow::Result<()> {
    for t in tables {
        client.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{t}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {t}"
        ))?;
    }
    // VACUUM as well: a database in service has been through autovacuum,
    // and one that has not would start its pass over millions of fresh rows
    // in the middle of the measurements.
    client.batch_execute("VACUUM ANALYZE")?;
    Ok(())
}

/// The size of the current PostgreSQL database, as `pg_size_pretty` says it.
pub fn pg_size(client: &mut postgres::Client) -> anyhow::Result<String> {
    Ok(client
        .query_one(
            "SELECT pg_size_pretty(pg_database_size(current_database()))",
            &[],
        )?
        .get(0))
}

/// A client for the database of `config`'s PostgreSQL settings.
pub fn pg_client(url: &str) -> anyhow::Result<postgres::Client> {
    Ok(url.parse::<postgres::Config>()?.connect(postgres::NoTls)?)
}
