//! `jo-server migrate-to-postgres`: an evaluation install, populated by the
//! real server on SQLite (buyer, paid order, revocation, device and scans,
//! audit log), copied into an empty PostgreSQL database and compared; a
//! second run into the now non-empty database is refused; the identity
//! sequences continue after the copied ids.
//!
//! The PostgreSQL tests need a server: `JO_TEST_DATABASE_URL` (set by
//! `scripts/test`); without it they say so and pass, unless
//! `JO_REQUIRE_POSTGRES=1` makes that a failure. The refusals that happen
//! before any connection run everywhere.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;

use jo_server::db::sql::{Conn, params};
use jo_server::migrate::{Report, compare, migrate_to_postgres};
use jo_shared::api::ScanVerdict;
use jo_shared::ticket::TicketId;
use reqwest::StatusCode;

use crate::common::admin::{admin, admin_db, first_session};
use crate::common::api::{ApiDevice, json_of, now};
use crate::common::shop::{buy, buyer, ticket_ids, verify_ticket};
use crate::common::*;

/// A password that must never be printed.
const SECRET: &str = "s3cret-never-shown";

/// The throwaway server's URL, or `None` (the test is skipped).
fn test_url() -> Option<String> {
    match std::env::var("JO_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("JO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "JO_TEST_DATABASE_URL is not set"
            );
            eprintln!("skipped: JO_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// Runs `jo-server migrate-to-postgres`; returns (success, stdout, stderr).
fn run_cli(from: &Path, to: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jo-server"))
        .args(["migrate-to-postgres", "--from"])
        .arg(from)
        .args(["--to", to])
        .env("JO_DATABASE_PASSWORD", SECRET)
        .env_remove("JO_DATABASE")
        .env_remove("JO_DATABASE_URL")
        .output()
        .expect("runs jo-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A stopped evaluation install with a bit of everything.
struct Install {
    /// Its data directory (keys, `totp.key`), kept alive.
    data: tempfile::TempDir,
    /// Its SQLite database file.
    db: PathBuf,
    /// The buyer's e-mail address (password [`GOOD_PASSWORD`]).
    buyer: String,
    /// Public ids of the buyer's tickets, oldest first (the first revoked).
    tickets: Vec<String>,
    /// The session they are for.
    session: u32,
    /// A gate enrolled before the move, with its token and log position.
    gate: ApiDevice,
}

async fn populated_install() -> Install {
    // The source is an evaluation install: SQLite, whatever backend the
    // other tests run on.
    let mut app = spawn_app_with(|c| c.postgres = None).await;
    let (chef, _) = admin(&app).await;
    let marie = buyer(&app, "curie_m").await;
    let session = first_session(&app);
    buy(&marie, session, "Solo", 2).await;
    buy(&marie, session, "Duo", 1).await;
    let codes: Vec<String> = {
        admin_db(&app)
            .with(|c| {
                c.query_map(
                    "SELECT lower(hex(ticket_id)) FROM tickets ORDER BY id",
                    jo_server::db::sql::params![],
                    |r| r.get(0),
                )
            })
            .expect("lists")
    };
    assert_eq!(codes.len(), 3);

    // A revocation from the console (and its audit log row).
    let page = format!("/admin/tickets/{}", codes[0]);
    let r = chef
        .submit(
            &page,
            &format!("{page}/revoke"),
            &[("reason", "fraud"), ("note", "copie vendue en ligne")],
        )
        .await;
    assert_redirect_to(&r, &format!("{page}?done=revoked"));

    // A gate enrols and uploads an admission and a refusal.
    let mut gate = ApiDevice::enroll(&app, "Porte A").await;
    let ticket = TicketId::from_hex(&codes[1]).expect("hex");
    let session = u32::try_from(session).expect("session id");
    let records = vec![
        gate.admit(ticket, session),
        gate.record(ScanVerdict::Refuse, None, None, now()),
    ];
    let _: serde_json::Value =
        json_of(gate.upload(&gate.batch(records)).await, StatusCode::OK).await;

    let data = std::mem::replace(&mut app.data, tempfile::tempdir().expect("tempdir"));
    drop(app);
    // Let the server wind down (the copy reads one snapshot anyway).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let db = data.path().join("data").join("jo.sqlite3");
    Install {
        data,
        db,
        buyer: "curie_m@example.com".to_owned(),
        tickets: codes,
        session,
        gate,
    }
}

fn sqlite_count(db: &Path, table: &str) -> u64 {
    let c = rusqlite::Connection::open(db).expect("opens");
    let n: i64 = c
        .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
            r.get(0)
        })
        .expect("counts");
    u64::try_from(n).expect("count")
}

/// Runs `f` on a connection to `url`, on a thread of its own (the client
/// blocks).
fn on_pg<T: Send>(url: &str, f: impl FnOnce(&Conn<'_>) -> T + Send) -> T {
    let config = jo_server::db::pg::config(url, None).expect("valid URL");
    std::thread::scope(|s| {
        s.spawn(|| {
            let cell = RefCell::new(jo_server::db::pg::open(&config).expect("connects"));
            f(&Conn::Postgres(&cell))
        })
        .join()
        .expect("no panic")
    })
}

#[tokio::test]
async fn an_evaluation_install_moves_to_postgresql_and_a_second_run_is_refused() {
    let Some(url) = test_url() else { return };
    let target = jo_server::db::direct::scratch_postgres(&url, "jo_migrate").expect("scratch db");
    let install = populated_install().await;
    let db = install.db.clone();

    let config = jo_server::db::pg::config(&target, None).expect("valid URL");
    let from = db.clone();
    let report: Report = tokio::task::spawn_blocking(move || {
        migrate_to_postgres(&from, &config, &mut |line: &str| eprintln!("{line}"))
    })
    .await
    .expect("no panic")
    .expect("migrates");
    println!("{}", report.render());
    assert!(report.ok(), "{}", report.render());

    let rows = |name: &str| {
        report
            .tables
            .iter()
            .find(|t| t.table == name)
            .unwrap_or_else(|| panic!("{name} is copied"))
            .source
            .rows
    };
    for table in [
        "users",
        "sessions",
        "game_sessions",
        "offers",
        "orders",
        "order_lines",
        "tickets",
        "payments",
        "revocations",
        "devices",
        "enrollment_codes",
        "scans",
        "scan_conflicts",
        "audit_log",
        "sales_daily",
        "scan_totals",
        "server_secrets",
    ] {
        assert!(rows(table) > 0, "{table} has rows");
        assert_eq!(rows(table), sqlite_count(&db, table), "{table}");
    }
    assert!(
        !report.tables.iter().any(|t| t.table == "scan_levels"),
        "views are not copied"
    );

    // A second run into the same, now non-empty, database: refused, by the
    // command, naming the first table with rows, and nothing changes.
    let first_full = report
        .tables
        .iter()
        .find(|t| t.source.rows > 0)
        .expect("a table with rows");
    let (ok, stdout, stderr) = run_cli(&db, &target);
    assert!(!ok, "refused: {stdout}{stderr}");
    assert!(
        stderr.contains("not empty") && stderr.contains(&format!("table {} ", first_full.table)),
        "{stderr}"
    );
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    let config = jo_server::db::pg::config(&target, None).expect("valid URL");
    let from = db.clone();
    let again = tokio::task::spawn_blocking(move || compare(&from, &config))
        .await
        .expect("no panic")
        .expect("compares");
    assert!(again.ok(), "{}", again.render());
    for (a, b) in report.tables.iter().zip(&again.tables) {
        assert_eq!((&a.table, a.target), (&b.table, b.target), "unchanged");
    }

    // The sequences continue after the copied ids; the triggers are back on.
    let max_user = {
        let c = rusqlite::Connection::open(&db).expect("opens");
        c.query_row("SELECT max(id) FROM users", [], |r| r.get::<_, i64>(0))
            .expect("max id")
    };
    let (new_id, disabled, audit_update) = on_pg(&target, |c| {
        let id: i64 = c
            .query_row(
                "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, created_at)
                 VALUES ('after_move', 'after@example.com', 'A', 'B', 'x', ?1, 0) RETURNING id",
                params![[7u8; 32]],
                |r| r.get(0),
            )
            .expect("inserts");
        let disabled: i64 = c
            .query_row(
                "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O'",
                params![],
                |r| r.get(0),
            )
            .expect("counts");
        let update = c.execute("UPDATE audit_log SET detail = 'rewritten'", params![]);
        (id, disabled, update)
    });
    assert!(new_id > max_user, "{new_id} after {max_user}");
    assert_eq!(disabled, 0, "every trigger is enabled again");
    assert!(audit_update.is_err(), "the audit log is append-only again");
}

#[tokio::test]
async fn a_database_of_another_schema_version_is_refused_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("old.sqlite3");
    let c = rusqlite::Connection::open(&db).expect("creates");
    c.pragma_update(None, "user_version", 3)
        .expect("sets version");
    drop(c);
    let (ok, stdout, stderr) = run_cli(&db, &format!("postgres://jo:{SECRET}@127.0.0.1:1/jo_prod"));
    assert!(!ok);
    assert!(
        stderr.contains("schema version 3") && stderr.contains("start the current server"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_target_is_one_line_naming_host_and_database_without_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("jo.sqlite3");
    let mut c = rusqlite::Connection::open(&db).expect("creates");
    jo_server::db::migrations::apply(&mut c).expect("migrates");
    drop(c);
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let (ok, stdout, stderr) = run_cli(
        &db,
        &format!("postgres://jo:{SECRET}@127.0.0.1:{port}/jo_prod"),
    );
    assert!(!ok);
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].contains("127.0.0.1") && error[0].contains("jo_prod"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_moved_install_serves_its_buyers_tickets_and_gates_on_postgresql() {
    let Some(url) = test_url() else { return };
    let target = jo_server::db::direct::scratch_postgres(&url, "jo_moved").expect("scratch db");
    let install = populated_install().await;
    let (ok, stdout, stderr) = run_cli(&install.db, &target);
    assert!(ok, "migrates: {stdout}{stderr}");

    // The same data directory (keys, totp.key), the database now on
    // PostgreSQL: what an operator starts after the move.
    let mut config = jo_server::Config::for_tests(install.data.path().join("data"));
    config.postgres = Some(jo_server::config::PostgresSettings {
        url: jo_server::config::Secret::new(target.clone()),
        password: None,
        connections: 4,
    });
    let moved = start(config, install.data).await;
    let d = moved.db();
    let on_pg: i64 = query_i64(
        &d,
        "SELECT count(*) FROM pg_tables WHERE tablename = 'tickets'",
        &[],
    );
    assert_eq!(on_pg, 1, "the moved server runs on PostgreSQL");

    // The buyer logs in with the password set before the move and sees the
    // same tickets, whose codes still verify with the server's keys.
    let marie = Browser::new(&moved);
    let r = marie.login(&install.buyer, GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/");
    let mut seen = ticket_ids(&marie).await;
    seen.sort();
    let mut before = install.tickets.clone();
    before.sort();
    assert_eq!(seen, before);
    let qr_of = |code: &str| -> String {
        d.with(|c| {
            c.query_row(
                "SELECT qr FROM tickets WHERE ticket_id = ?1",
                params![&TicketId::from_hex(code).expect("hex").0[..]],
                |r| r.get(0),
            )
        })
        .expect("reads the ticket")
    };
    let admitted = &install.tickets[2];
    let payload = verify_ticket(&moved, &qr_of(admitted));
    assert_eq!(payload.ticket_id.to_hex(), *admitted);

    // The gate enrolled before the move syncs with the moved server with
    // its old token: the revocation made before is on the list, and a new
    // admission of an old ticket (with its text and the gate's signature)
    // is accepted as proven, continuing the gate's log.
    let mut gate = install.gate;
    gate.base = moved.addr.clone();
    let delta: jo_shared::revocation::RevocationDelta = gate
        .get_ok(&format!("{}?since=0", jo_shared::api::paths::REVOCATIONS))
        .await;
    let keyring = jo_shared::keys::load_keyring(&moved.config.keys_dir).expect("keyring");
    let mut list = jo_shared::revocation::RevocationList::new();
    list.apply(&delta, &keyring)
        .expect("the moved server's list applies at a gate");
    let revoked = TicketId::from_hex(&install.tickets[0]).expect("hex");
    assert!(
        list.lookup(&revoked).is_some(),
        "the revocation made before the move is on the list"
    );
    let gate_id = gate.id.clone();
    let unproven = || {
        crate::common::api::conflict_kinds(&d, &gate_id)
            .iter()
            .filter(|k| *k == "unproven_admission")
            .count()
    };
    let unproven_before = unproven();
    let ticket = TicketId::from_hex(admitted).expect("hex");
    let mut record = gate.admit(ticket, install.session);
    record.raw = Some(qr_of(admitted));
    gate.last_hash = record.hash();
    let _: serde_json::Value =
        json_of(gate.upload(&gate.batch(vec![record])).await, StatusCode::OK).await;
    assert_eq!(
        crate::common::api::stored_scans(&d, &gate.id),
        3,
        "the gate's two scans from before and the new one"
    );
    assert_eq!(
        unproven(),
        unproven_before,
        "the new admission proves itself with the ticket text issued before the move"
    );

    // A new purchase after the move takes ids after the copied ones.
    buy(&marie, i64::from(install.session), "Solo", 1).await;
    assert_eq!(ticket_ids(&marie).await.len(), install.tickets.len() + 1);
}
