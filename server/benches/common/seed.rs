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
    /// COPY text, buffered per table, streamed at [`Sink::finish`] in the
    /// order the tables first appeared (parents before children).
    Postgres {
        client: &'c mut postgres::Client,
        buffers: Vec<(Table, Vec<u8>)>,
        index: HashMap<&'static str, usize>,
    },
}

impl<'c> Sink<'c> {
    /// A sink that COPYs into `client`'s database.
    pub fn postgres(client: &'c mut postgres::Client) -> Self {
        Sink::Postgres {
            client,
            buffers: Vec::new(),
            index: HashMap::new(),
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
            Sink::Postgres { buffers, index, .. } => {
                let i = *index.entry(table.name).or_insert_with(|| {
                    buffers.push((table, Vec::new()));
                    buffers.len() - 1
                });
                let buf = &mut buffers[i].1;
                for (n, v) in vals.iter().enumerate() {
                    if n > 0 {
                        buf.push(b'\t');
                    }
                    copy_text(buf, *v)?;
                }
                buf.push(b'\n');
            }
        }
        Ok(())
    }

    /// Streams what is buffered (PostgreSQL); returns the rows' bytes sent.
    pub fn finish(self) -> anyhow::Result<u64> {
        let mut sent = 0u64;
        if let Sink::Postgres {
            client, buffers, ..
        } = self
        {
            for (table, buf) in buffers {
                let t = std::time::Instant::now();
                let mut w = client.copy_in(&format!(
                    "COPY {} ({}) FROM STDIN",
                    table.name, table.columns
                ))?;
                w.write_all(&buf)?;
                let rows = w.finish()?;
                sent += buf.len() as u64;
                println!(
                    "  COPY {}: {rows} rows in {:.1} s",
                    table.name,
                    t.elapsed().as_secs_f64()
                );
            }
        }
        Ok(sent)
    }
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
    client.batch_execute("ANALYZE")?;
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
