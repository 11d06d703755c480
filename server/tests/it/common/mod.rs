//! Test harness: starts the real server on port 0 with a temporary data
//! directory, and drives it over HTTP like a browser would.

#![allow(dead_code, missing_docs)]

pub mod admin;
pub mod api;
pub mod shop;

pub mod browser;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jo_server::config::{PostgresSettings, Secret};
use jo_server::db::direct::{Direct, scratch_postgres};
use jo_server::db::sql::ToValue;
pub use jo_server::db::sql::params;
use jo_server::{Application, Config};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Client, Response, StatusCode, header};

/// A running server.
pub struct TestApp {
    pub addr: String,
    pub port: u16,
    pub data: tempfile::TempDir,
    /// The configuration it runs with (its database: SQLite file or
    /// PostgreSQL URL).
    pub config: Config,
    /// The port of `/metrics`, when the configuration asks for it.
    pub metrics_port: Option<u16>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    /// Asks the server to shut down gracefully (as SIGTERM does), without
    /// waiting for it to end.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// A connection of its own to the app's database, either backend.
    pub fn db(&self) -> Direct {
        Direct::open(&self.config).expect("opens the app's database")
    }
}

/// Parameters that may cross to the thread a PostgreSQL query runs on
/// (`&[&a, &b]`), for helpers that run one query for their caller.
pub type Params<'a> = &'a [&'a (dyn ToValue + Sync)];

/// The first column of the first row of `sql`, as an integer.
pub fn query_i64(d: &Direct, sql: &str, params: Params<'_>) -> i64 {
    d.with(|c| {
        let p: Vec<&dyn ToValue> = params.iter().map(|v| *v as &dyn ToValue).collect();
        c.query_row(sql, &p, |r| r.get(0))
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The test configuration for data directory `data`: on PostgreSQL (when
/// `JO_TEST_DATABASE_URL` names a server) with a fresh database of its own.
pub fn test_config(data: PathBuf) -> Config {
    let mut config = Config::for_tests(data);
    if let Some(url) = std::env::var("JO_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let db = scratch_postgres(&url, "jo_test").expect("creates a scratch PostgreSQL database");
        config.postgres = Some(PostgresSettings {
            url: Secret::new(db),
            password: None,
            connections: 8,
        });
    }
    config
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the server with the test configuration, changed by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("RUST_LOG").is_some() {
        jo_server::init_tracing(false);
    }
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path().join("data"));
    tweak(&mut config);
    start(config, data).await
}

/// Starts the server on an existing data directory.
pub async fn start(config: Config, data: tempfile::TempDir) -> TestApp {
    start_with_gateway(
        config,
        data,
        std::sync::Arc::new(jo_server::shop::payment::SimulatedGateway),
    )
    .await
}

/// [`start`] with a payment gateway of the test's own.
pub async fn start_with_gateway(
    config: Config,
    data: tempfile::TempDir,
    gateway: jo_server::shop::payment::Gateway,
) -> TestApp {
    let app = Application::build_with_gateway(config.clone(), gateway)
        .await
        .expect("application builds");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        addr: format!("http://127.0.0.1:{port}"),
        port,
        data,
        config,
        metrics_port,
        stop: Some(tx),
    }
}

/// Another node beside `app`, as behind one proxy: the same database, keys
/// directory and data directory (`totp.key`, outbox), on a port of its own.
pub async fn second_node(app: &TestApp) -> TestApp {
    let mut config = app.config.clone();
    config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    start(config, tempfile::tempdir().expect("tempdir")).await
}

/// Starts the server with the test configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A password the policy accepts.
pub const GOOD_PASSWORD: &str = "Quatre-chevaux-Seine-2024!";

/// A browser-like client: its own cookie jar, no automatic redirects.
pub struct Browser {
    pub client: Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            client,
            jar,
            base: app.addr.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let r = self.get(path).await;
        let s = r.status();
        (s, r.text().await.expect("body"))
    }

    /// The value of cookie `name` in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().expect("url");
        let all = self.jar.cookies(&url)?;
        let all = all.to_str().ok()?.to_owned();
        all.split("; ")
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// GETs `page`, then POSTs `fields` plus its CSRF token to `action`.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let (_, html) = self.get_text(page).await;
        let token = csrf_of(&html);
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &token));
        self.client
            .post(self.url(action))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }

    /// Logs in through a reverse proxy that reports the client as `ip`.
    pub async fn login_from(&self, ip: &str, email: &str, password: &str) -> Response {
        let (_, html) = self.get_text("/login").await;
        let token = csrf_of(&html);
        self.client
            .post(self.url("/login"))
            .header("x-forwarded-for", ip)
            .form(&[("email", email), ("password", password), ("csrf", &token)])
            .send()
            .await
            .expect("POST")
    }

    pub async fn register(&self, username: &str, email: &str, password: &str) -> Response {
        self.submit(
            "/register",
            "/register",
            &[
                ("username", username),
                ("email", email),
                ("first_name", "Marie"),
                ("last_name", "Curie"),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn logout(&self) -> Response {
        self.submit("/", "/logout", &[]).await
    }
}

/// The CSRF token embedded in a page.
pub fn csrf_of(html: &str) -> String {
    between(html, "name=\"csrf\" value=\"", "\"").unwrap_or_default()
}

/// The text between `start` and the next `end`.
pub fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(s[i..j].to_owned())
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub fn assert_redirect_to(r: &Response, to: &str) {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {to}"
    );
    assert_eq!(location(r), to);
}

/// The decoded text body of a raw RFC 5322 message (quoted-printable,
/// base64 or 7/8-bit).
pub fn mail_body(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let head_lc = head.to_ascii_lowercase();
    if head_lc.contains("content-transfer-encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(joined)
            .expect("base64 body");
        String::from_utf8(bytes).expect("utf-8 body")
    } else if head_lc.contains("content-transfer-encoding: quoted-printable") {
        let soft = body.replace("=\n", "");
        let b = soft.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'=' && i + 2 < b.len() {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8(out).expect("utf-8 body")
    } else {
        body.to_owned()
    }
}

/// The token of the first link to `path` in a mail body.
pub fn link_token(body: &str, path: &str) -> String {
    between(body, &format!("{path}?token="), "\n")
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| panic!("no {path} link in mail:\n{body}"))
}

/// Waits for a new `.eml` in the outbox whose recipient is `to`, and returns
/// its decoded body. Mail is sent in the background, hence the polling.
pub async fn outbox_mail(app: &TestApp, to: &str, seen: usize) -> String {
    let dir = app.data.path().join("data").join("outbox");
    for _ in 0..100 {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                if text
                    .lines()
                    .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
                {
                    found.push((e.metadata().and_then(|m| m.modified()).ok(), text));
                }
            }
        }
        if found.len() > seen {
            found.sort_by_key(|(t, _)| *t);
            return mail_body(&found[seen].1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail #{seen} for {to} in {}", dir.display());
}

/// How many mails to `to` are in the outbox.
pub fn outbox_count(app: &TestApp, to: &str) -> usize {
    let dir = app.data.path().join("data").join("outbox");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Registers, verifies through the outbox link, and returns a logged-out browser.
pub async fn registered_user(app: &TestApp, username: &str, email: &str) -> Browser {
    let b = Browser::new(app);
    let r = b.register(username, email, GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/register/done");
    let body = outbox_mail(app, email, 0).await;
    let token = link_token(&body, "/verify-email");
    let r = b
        .submit(
            &format!("/verify-email?token={token}"),
            "/verify-email",
            &[("token", &token)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    b
}

/// The current TOTP code of a base32 secret, as `oathtool` computes it,
/// `offset_secs` from now.
pub fn oathtool(secret: &str, offset_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let out = std::process::Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            secret,
            "-N",
            &format!("@{}", now + offset_secs),
        ])
        .output()
        .expect("oathtool is needed for this test: apt-get install oathtool");
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Seconds left in the current 30-second TOTP step.
pub fn secs_left_in_step() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    30 - now % 30
}

pub fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}
