//! `jo-server backup` on SQLite, taken while buyers are paying: the copy
//! opens, passes `PRAGMA integrity_check`, holds every order paid before the
//! backup started (with its tickets), and a server restored from it (the
//! README's steps: the file copied in as DATA/jo.sqlite3) serves the buyer
//! their tickets. On PostgreSQL the command refuses and names pg_dump.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::shop::*;
use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_jo-server");

/// Paid order numbers of a SQLite file.
fn paid_orders(conn: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT number FROM orders WHERE status = 'paid' ORDER BY number")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_buyers_pay_holds_every_order_paid_before_it() {
    // The online backup is SQLite's: this test runs on SQLite whatever the
    // backend of the run.
    let app = spawn_app_with(|c| c.postgres = None).await;
    let template = buyer(&app, "template").await;
    let sid = sql_i64(
        &app,
        "SELECT id FROM game_sessions WHERE code = 'ATH01'",
        &[],
    );
    db(&app)
        .with(|c| {
            c.execute(
                "UPDATE game_sessions SET capacity = 1000000 WHERE id = ?1",
                params![sid],
            )
        })
        .expect("capacity");
    buy(&template, sid, "Solo", 2).await;
    let crowd = many_buyers(&app, "template", 6).await;

    // Buyers pay in a loop until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let paid = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for b in crowd {
        let (stop, paid) = (stop.clone(), paid.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                buy(&b, sid, "Solo", 1).await;
                paid.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    while paid.load(Ordering::Relaxed) < 12 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Everything paid before the backup starts must be in it.
    let live = rusqlite::Connection::open(&app.config.database).expect("opens");
    let before = paid_orders(&live);
    let paid_at_start = paid.load(Ordering::Relaxed);
    let out_dir = tempfile::tempdir().expect("tempdir");
    let copy = out_dir.path().join("jo-backup.sqlite3");
    let (db_path, to) = (app.config.database.clone(), copy.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("backup")
            .arg("--database")
            .arg(&db_path)
            .arg("--to")
            .arg(&to)
            .env_remove("JO_DATABASE_URL")
            .output()
            .expect("runs")
    })
    .await
    .expect("backup task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "backup failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("integrity ok"), "{stdout}");
    // The shop kept selling during and after the backup.
    while paid.load(Ordering::Relaxed) < paid_at_start + 6 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("no buyer failed while the backup ran");
    }

    // One self-contained file that passes its integrity check.
    assert!(!out_dir.path().join("jo-backup.sqlite3-wal").exists());
    let restored = rusqlite::Connection::open(&copy).expect("the copy opens");
    let check: String = restored
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let in_copy = paid_orders(&restored);
    for number in &before {
        assert!(in_copy.contains(number), "order {number} missing");
        let (tickets, seats): (i64, i64) = restored
            .query_row(
                "SELECT (SELECT count(*) FROM tickets t WHERE t.order_id = o.id),
                        (SELECT sum(l.quantity) FROM order_lines l WHERE l.order_id = o.id)
                 FROM orders o WHERE o.number = ?1",
                [number],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("order in the copy");
        assert!(
            tickets >= seats && tickets > 0,
            "order {number}: {tickets} tickets for {seats} places"
        );
    }
    assert!(in_copy.len() >= before.len());
    let template_tickets: i64 = restored
        .query_row(
            "SELECT count(*) FROM tickets t JOIN users u ON u.id = t.user_id
             WHERE u.username = 'template'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    drop(restored);

    // Restore as README says: the backup becomes DATA/jo.sqlite3 of a
    // server (same keys directory), which then serves the buyer.
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    std::fs::copy(&copy, data_dir.join("jo.sqlite3")).expect("restore copy");
    let mut config = jo_server::Config::for_tests(data_dir.clone());
    config.keys_dir = app.config.keys_dir.clone();
    let node = start(config, data).await;
    let b = Browser::new(&node);
    let r = b.login("template@example.com", GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/");
    assert_eq!(ticket_ids(&b).await.len() as i64, template_tickets);
    let (status, _) = b.get_text("/readyz").await;
    assert_eq!(status, reqwest::StatusCode::OK);
}

#[test]
fn backup_refuses_a_postgres_database_and_names_pg_dump() {
    let out = Command::new(BIN)
        .args([
            "backup",
            "--database",
            "postgres://jo@db.invalid:5432/jo",
            "--to",
            "x.sqlite3",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!std::path::Path::new("x.sqlite3").exists());
}

#[test]
fn backup_of_a_missing_database_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .arg("backup")
        .arg("--database")
        .arg(dir.path().join("none.sqlite3"))
        .arg("--to")
        .arg(dir.path().join("b.sqlite3"))
        .env_remove("JO_DATABASE_URL")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no SQLite database"), "{err}");
    assert!(!dir.path().join("b.sqlite3").exists());
}
