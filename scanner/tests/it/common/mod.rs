//! A real `jo-server` for the scanner's end-to-end tests: started in-process
//! on its own runtime, stopped and restarted on the same port and data (to
//! play a network that comes and goes), with helpers to issue and revoke
//! tickets the way the server does.

#![allow(dead_code, missing_docs)]

pub mod fake;
pub mod gate;
pub mod netns;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use jo_server::config::{PostgresSettings, Secret};
use jo_server::db::direct::{Direct, scratch_postgres};
use jo_server::db::sql::params;
use jo_server::{Application, Config};
use jo_shared::TicketSigner;
use jo_shared::doublekey::{PurchaseKey, UserKey};
use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::TicketId;

/// A running server; dropped or [`Server::stop`]ped, it shuts down.
pub struct Server {
    pub url: String,
    pub port: u16,
    pub config: Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts a server on `data` (port 0: a free one). With
    /// `JO_TEST_DATABASE_URL` set, on a PostgreSQL database of its own: the
    /// same one each time a server starts on `data` again.
    pub fn start(data: &Path, port: u16) -> Self {
        let mut config = Config::for_tests(data.to_path_buf());
        config.postgres = postgres_for(data);
        config.bind = SocketAddr::from(([127, 0, 0, 1], port));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = config.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let app = Application::build(cfg).await.expect("server builds");
                ready_tx.send(app.port()).expect("port sent");
                app.run_until(async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("server runs");
            });
        });
        let port = ready_rx.recv().expect("server started");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            config,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stops the server and waits until it no longer listens.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// A one-time enrolment code, as `jo-server enroll-code` makes it.
    pub fn enrollment_code(&self) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(jo_server::admin::create_enrollment_code(&self.config, 1))
            .expect("code")
    }

    /// The fingerprint of the server's keyring, as `jo-server enroll-code`
    /// prints it.
    pub fn keyring_fingerprint(&self) -> String {
        jo_server::admin::keyring_fingerprint(&self.config).expect("fingerprint")
    }

    /// The server's database, opened directly (tests only).
    pub fn db(&self) -> Direct {
        Direct::open(&self.config).expect("opens the server's database")
    }

    /// The server's signing key.
    pub fn signer(&self) -> TicketSigner {
        jo_shared::keys::load_signer(&self.config.keys_dir).expect("signing key")
    }

    /// A session on now (doors open an hour ago, ends in three hours), made
    /// for the test; its id.
    pub fn session_on_now(&self, code: &str) -> u32 {
        let now = unix_now();
        let id: i64 = self
            .db()
            .with(|c| {
                c.execute(
                    "INSERT INTO sports (name) VALUES ('Escrime') ON CONFLICT DO NOTHING",
                    params![],
                )?;
                c.execute(
                    "INSERT INTO venues (name, city) VALUES ('Grand Palais', 'Paris')
                     ON CONFLICT DO NOTHING",
                    params![],
                )?;
                c.execute(
                    "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at,
                        doors_open_at, capacity, base_price_cents, created_at, updated_at)
                     VALUES (?1, (SELECT id FROM sports WHERE name = 'Escrime'),
                        (SELECT id FROM venues WHERE name = 'Grand Palais'), 'Sabre, finale',
                        ?2, ?3, ?4, 8000, 5000, ?2, ?2)",
                    params![code, now, now + 3 * 3600, now - 3600],
                )?;
                c.query_row(
                    "SELECT id FROM game_sessions WHERE code = ?1",
                    params![code],
                    |r| r.get(0),
                )
            })
            .expect("session");
        u32::try_from(id).expect("u32")
    }

    /// A ticket signed by the server's key for `session`: its id and QR string.
    pub fn ticket(&self, session: u32, index: u32, holder: &str) -> (TicketId, String) {
        let now = unix_now();
        let t = jo_server::tickets::issue(
            &self.signer(),
            &UserKey::generate().expect("random"),
            &PurchaseKey::generate().expect("random"),
            &jo_server::tickets::TicketSpec {
                index,
                session_id: session,
                admits: 2,
                valid_from: now - 2 * 3600,
                valid_until: now + 4 * 3600,
                holder,
            },
        )
        .expect("issues");
        (t.ticket_id, t.qr)
    }

    /// Revokes a ticket the way the admin console does.
    pub fn revoke(&self, id: &TicketId) {
        self.db()
            .with(|c| {
                jo_server::db::tickets::revoke(c, id, RevocationReason::Fraud, "test", unix_now())
            })
            .expect("revokes");
    }

    /// Scans the server stored, by device.
    pub fn stored_scans(&self) -> Vec<(String, String, String)> {
        self.db()
            .with(|c| {
                c.query_map(
                    "SELECT scan_id, device_id, verdict FROM scans ORDER BY id",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .expect("reads")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The PostgreSQL database of the servers started on `data`, when
/// `JO_TEST_DATABASE_URL` names a PostgreSQL server: made on the first start,
/// the same on every restart (SQLite keeps its file in `data`).
pub fn postgres_for(data: &Path) -> Option<PostgresSettings> {
    static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
    let url = std::env::var("JO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    let mut dbs = DATABASES.lock().expect("lock");
    let db = dbs
        .get_or_insert_with(HashMap::new)
        .entry(data.to_path_buf())
        .or_insert_with(|| {
            scratch_postgres(&url, "jo_scan_test").expect("creates a scratch PostgreSQL database")
        })
        .clone();
    Some(PostgresSettings {
        url: Secret::new(db),
        password: None,
        connections: 8,
    })
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `jo-scanner --state STATE ARGS…`: (success, stdout lines as JSON, stderr).
pub fn scanner(state: &Path, args: &[&str]) -> (bool, Vec<serde_json::Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jo-scanner"))
        .arg("--state")
        .arg(state)
        .args(args)
        .output()
        .expect("jo-scanner runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line {l:?}: {e}")))
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`scanner`], failing the test unless it succeeds; the last JSON line.
pub fn scanner_ok(state: &Path, args: &[&str]) -> serde_json::Value {
    let (ok, lines, err) = scanner(state, args);
    assert!(ok, "jo-scanner {args:?} failed: {err}\n{lines:?}");
    lines.last().cloned().unwrap_or(serde_json::Value::Null)
}

/// Writes a ticket's QR as a PNG in `dir`; its path.
pub fn qr_png(dir: &Path, name: &str, qr: &str) -> PathBuf {
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, jo_shared::qr::render_png(qr, 6).expect("renders")).expect("writes");
    path
}

/// Enrols a scanner at `state` with the keyring fingerprint the admin
/// would give, syncs, names its gate; the device id.
pub fn enrolled_scanner(server: &Server, state: &Path, gate: &str) -> String {
    let code = server.enrollment_code();
    let fingerprint = server.keyring_fingerprint();
    let e = scanner_ok(
        state,
        &[
            "enroll",
            "--server",
            &server.url,
            "--code",
            &code,
            "--label",
            gate,
            "--keyring",
            &fingerprint,
        ],
    );
    assert_eq!(e["enrolled"], true);
    assert_eq!(e["keyring_pinned_by"], "fingerprint");
    scanner_ok(state, &["sync"]);
    scanner_ok(state, &["configure", "--gate", gate]);
    e["device_id"].as_str().expect("device id").to_owned()
}
