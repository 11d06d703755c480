//! Several `jo-server` processes on one PostgreSQL database, as behind a
//! proxy in production: nodes started at the same moment on an empty
//! database migrate it once between them.
//!
//! Needs a PostgreSQL server: `JO_TEST_DATABASE_URL` (set by
//! `scripts/test`); without it the test says so and passes, unless
//! `JO_REQUIRE_POSTGRES=1` makes that a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jo_server::db::pg::PG_MIGRATIONS;

use crate::common::query_i64;

const BIN: &str = env!("CARGO_BIN_EXE_jo-server");

/// A `jo-server serve` process and the lines it logs.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Node {
    fn start(database: &str, data: &std::path::Path, keys: &std::path::Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--database", database])
            .arg("--data")
            .arg(data)
            .arg("--keys")
            .arg(keys)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("JO_DATABASE_URL")
            .env_remove("JO_DATABASE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts jo-server");
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for the address the node logs once it listens.
    fn address(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            self.log.push(line.clone());
            if let Some(rest) = line.split("address=").nth(1) {
                return rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .to_owned();
            }
        }
        panic!("the node did not start:\n{}", self.log.join("\n"));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_nodes_started_at_once_on_an_empty_database_migrate_it_once() {
    let Some(url) = std::env::var("JO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var("JO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "JO_TEST_DATABASE_URL is not set"
        );
        eprintln!("skipped: JO_TEST_DATABASE_URL is not set");
        return;
    };
    let database =
        jo_server::db::direct::scratch_postgres(&url, "jo_nodes").expect("scratch database");
    let dir = tempfile::tempdir().expect("tempdir");
    // The signing key is made once, before the nodes, as an operator
    // provisions the secret they all mount.
    let keys = dir.path().join("keys");
    let out = Command::new(BIN)
        .arg("keygen")
        .arg("--keys")
        .arg(&keys)
        .output()
        .expect("runs keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| Node::start(&database, &dir.path().join(n), &keys))
        .collect();
    let addrs: Vec<String> = nodes.iter_mut().map(Node::address).collect();

    // Both serve and are ready on the one schema.
    for addr in &addrs {
        let r = reqwest::get(format!("http://{addr}/readyz"))
            .await
            .expect("GET /readyz");
        assert_eq!(
            r.status(),
            200,
            "{addr}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    // Each migration was applied once: one row each, and one node (the one
    // that took the lock first) logged them all.
    let mut config = jo_server::Config::for_tests(dir.path().join("check"));
    config.postgres = Some(jo_server::config::PostgresSettings {
        url: jo_server::config::Secret::new(database.clone()),
        password: None,
        connections: 1,
    });
    let d = jo_server::db::direct::Direct::open(&config).expect("opens");
    let (rows, versions) = (
        query_i64(&d, "SELECT count(*) FROM schema_version", &[]),
        query_i64(
            &d,
            "SELECT count(DISTINCT version) FROM schema_version",
            &[],
        ),
    );
    assert_eq!(rows, PG_MIGRATIONS.len() as i64, "one row per migration");
    assert_eq!(versions, rows);
    let applied: Vec<usize> = nodes
        .iter()
        .map(|n| {
            n.log
                .iter()
                .filter(|l| l.contains("applied database migration"))
                .count()
        })
        .collect();
    applied
        .iter()
        .for_each(|n| assert!(*n == 0 || *n == PG_MIGRATIONS.len(), "{applied:?}"));
    assert_eq!(
        applied.iter().sum::<usize>(),
        PG_MIGRATIONS.len(),
        "{applied:?}"
    );
}
