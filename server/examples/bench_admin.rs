//! Admin console benchmark: seeds a large store (1 M tickets and 1 M scans
//! by default), starts the real server on it, logs an admin in with 2FA
//! and times the dashboard and the scans view over HTTP.
//!
//! `cargo run --release -p jo-server --example bench_admin -- [TICKETS] [SCANS]`
//! (or `scripts/bench-admin.sh`). The store is seeded straight through SQL
//! (SQLite: in one transaction; PostgreSQL, with `JO_BENCH_DATABASE`: by
//! COPY), so the rollup triggers run as they do in production.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jo_server::db::direct::Direct;
use jo_server::db::sql::params;
use sha2::{Digest, Sha256};

#[path = "../benches/common/seed.rs"]
mod seed;
use seed::{Sink, Table, Val};

/// A cheap deterministic pseudo-random generator (the data need no quality).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n.max(1)).unwrap_or(0)
    }
}

const SESSIONS: i64 = 300;
const USERS: i64 = 100_000;
const DEVICES: i64 = 40;

const SESSION_ROWS: Table = Table {
    name: "game_sessions",
    columns: "id, code, sport_id, venue_id, title, starts_at, ends_at, doors_open_at, capacity, base_price_cents, created_at, updated_at",
};
const USER_ROWS: Table = Table {
    name: "users",
    columns: "id, username, email, first_name, last_name, password_hash, user_key, created_at",
};
const ORDER_ROWS: Table = Table {
    name: "orders",
    columns: "id, number, user_id, status, total_cents, created_at, hold_expires_at, paid_at, purchase_key",
};
const LINE_ROWS: Table = Table {
    name: "order_lines",
    columns: "id, order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents",
};
const TICKET_ROWS: Table = Table {
    name: "tickets",
    columns: "ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id, holder, admits, key_id, valid_from, valid_minutes, qr, issued_at",
};
const DEVICE_ROWS: Table = Table {
    name: "devices",
    columns: "id, label, public_key, token_hash, enrolled_at, gate, last_sync_at",
};
const SCAN_ROWS: Table = Table {
    name: "scans",
    columns: "scan_id, device_id, seq, prev_hash, hash, ticket_id, session_id, verdict, reason, admits, gate, scanned_at, received_at",
};
const CONFLICT_ROWS: Table = Table {
    name: "scan_conflicts",
    columns: "kind, scan_id, device_id, ticket_id, detail, detected_at",
};

/// What the fixtures hold that the seeded rows refer to, and the first
/// free ids (the seeded rows carry their own, to refer to each other).
struct Base {
    sport: i64,
    sports: i64,
    venue: i64,
    offers: Vec<(i64, String, i64, i64)>,
    next_session: i64,
    next_user: i64,
    next_order: i64,
    next_line: i64,
}

fn base(db: &Direct) -> anyhow::Result<Base> {
    let b = db.with(|c| {
        let one = |sql: &str| c.query_row(sql, params![], |r| r.get::<i64>(0));
        Ok(Base {
            sport: one("SELECT min(id) FROM sports")?,
            sports: one("SELECT count(*) FROM sports")?,
            venue: one("SELECT min(id) FROM venues")?,
            offers: c.query_map(
                "SELECT id, name, seats, price_percent FROM offers ORDER BY id",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?,
            next_session: one("SELECT COALESCE(max(id), 0) + 1 FROM game_sessions")?,
            next_user: one("SELECT COALESCE(max(id), 0) + 1 FROM users")?,
            next_order: one("SELECT COALESCE(max(id), 0) + 1 FROM orders")?,
            next_line: one("SELECT COALESCE(max(id), 0) + 1 FROM order_lines")?,
        })
    })?;
    if b.offers.is_empty() {
        bail!("no offers: the fixtures did not load");
    }
    Ok(b)
}

fn seed_rows(sink: &mut Sink<'_>, b: &Base, tickets: i64, scans: i64) -> anyhow::Result<()> {
    use Val::{B, I, Null, T};
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = jo_server::units::time::now();
    let session_ids: Vec<i64> = (b.next_session..b.next_session + SESSIONS).collect();
    for (i, id) in session_ids.iter().enumerate() {
        let i = i as i64;
        let start = now + 40 * 86_400 + i * 3 * 3600;
        let (code, title) = (format!("BEN{i:04}"), format!("Session de charge {i}"));
        sink.row(
            SESSION_ROWS,
            &[
                I(*id),
                T(&code),
                I(b.sport + i % b.sports.max(1)),
                I(b.venue),
                T(&title),
                I(start),
                I(start + 2 * 3600),
                I(start - 3600),
                I(20_000),
                I(2500 + (i % 10) * 1000),
                I(now),
                I(now),
            ],
        )?;
    }
    let user_ids: Vec<i64> = (b.next_user..b.next_user + USERS).collect();
    for (i, id) in user_ids.iter().enumerate() {
        let key = Sha256::digest(i.to_le_bytes());
        let (name, email, last) = (
            format!("bench{i}"),
            format!("bench{i}@example.com"),
            format!("Nom{i}"),
        );
        sink.row(
            USER_ROWS,
            &[
                I(*id),
                T(&name),
                T(&email),
                T("Prénom"),
                T(&last),
                T("x"),
                B(&key),
                I(now),
            ],
        )?;
    }
    let t = Instant::now();
    let mut made = 0i64;
    let mut order_no = 0i64;
    let mut ticket_ids: Vec<[u8; 10]> = Vec::with_capacity(usize::try_from(tickets).unwrap_or(0));
    let mut ticket_sessions: Vec<i64> = Vec::with_capacity(ticket_ids.capacity());
    while made < tickets {
        let user = user_ids[usize::try_from(rng.below(USERS as u64)).unwrap_or(0)];
        let session = session_ids[usize::try_from(rng.below(SESSIONS as u64)).unwrap_or(0)];
        let (offer_id, offer_name, seats, percent) =
            &b.offers[usize::try_from(rng.below(b.offers.len() as u64)).unwrap_or(0)];
        let quantity = (1 + rng.below(4)).min(tickets - made);
        let unit = 5000 * seats * percent / 100;
        // Sales spread over the last 90 days.
        let paid_at = now - rng.below(90 * 86_400);
        let (order_id, line_id) = (b.next_order + order_no, b.next_line + order_no);
        order_no += 1;
        let purchase = Sha256::digest(order_no.to_be_bytes());
        let number = format!("B{order_no:09}");
        sink.row(
            ORDER_ROWS,
            &[
                I(order_id),
                T(&number),
                I(user),
                T("paid"),
                I(unit * quantity),
                I(paid_at),
                I(paid_at),
                I(paid_at),
                B(&purchase),
            ],
        )?;
        sink.row(
            LINE_ROWS,
            &[
                I(line_id),
                I(order_id),
                I(session),
                I(*offer_id),
                T(offer_name),
                I(*seats),
                I(quantity),
                I(unit),
            ],
        )?;
        for idx in 0..quantity {
            let mut id = [0u8; 10];
            id[2..].copy_from_slice(&(made + 1).to_be_bytes());
            sink.row(
                TICKET_ROWS,
                &[
                    B(&id),
                    I(order_id),
                    I(line_id),
                    I(idx),
                    I(user),
                    I(session),
                    I(*offer_id),
                    T("Prénom Nom"),
                    I(*seats),
                    B(&[0; 4]),
                    I(now),
                    I(240),
                    T("bench"),
                    I(paid_at),
                ],
            )?;
            ticket_ids.push(id);
            ticket_sessions.push(session);
            made += 1;
        }
    }
    println!(
        "generated {made} tickets in {order_no} orders ({USERS} buyers, {SESSIONS} extra sessions) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for d in 0..DEVICES {
        let hash = Sha256::digest(d.to_le_bytes());
        let (id, label, gate) = (
            format!("bench-dev-{d}"),
            format!("Laptop {d}"),
            format!("Porte {}", d % 20),
        );
        sink.row(
            DEVICE_ROWS,
            &[
                T(&id),
                T(&label),
                B(&[0; 32]),
                B(&hash),
                I(now),
                T(&gate),
                I(now),
            ],
        )?;
    }
    let kinds = [
        "double_admit",
        "admitted_after_revocation",
        "unknown_ticket",
        "late_upload",
    ];
    let reasons = [
        "bad_signature",
        "wrong_session",
        "revoked",
        "not_yet_valid",
        "expired",
    ];
    for i in 0..scans {
        let d = rng.below(DEVICES as u64);
        let n = usize::try_from(rng.below(ticket_ids.len() as u64)).unwrap_or(0);
        let roll = rng.below(100);
        let (verdict, reason) = match roll {
            0..90 => ("admit", None),
            90..98 => (
                "refuse",
                Some(reasons[usize::try_from(roll % 5).unwrap_or(0)]),
            ),
            _ => ("used", Some("already_used")),
        };
        let scanned = now - rng.below(20 * 86_400);
        let late = rng.below(100) == 0;
        let received = scanned + if late { 2 * 3600 } else { 5 };
        let (scan_id, device, gate) = (
            format!("bench-scan-{i}"),
            format!("bench-dev-{d}"),
            format!("Porte {}", d % 20),
        );
        sink.row(
            SCAN_ROWS,
            &[
                T(&scan_id),
                T(&device),
                I(i),
                B(&[0; 32]),
                B(&[0; 32]),
                B(&ticket_ids[n]),
                I(ticket_sessions[n]),
                T(verdict),
                reason.map_or(Null, T),
                I(i64::from(verdict == "admit")),
                T(&gate),
                I(scanned),
                I(received),
            ],
        )?;
        if i % 50 == 0 {
            sink.row(
                CONFLICT_ROWS,
                &[
                    T(kinds[usize::try_from(i / 50 % 4).unwrap_or(0)]),
                    T(&scan_id),
                    T(&device),
                    B(&ticket_ids[n]),
                    T("bench"),
                    I(received),
                ],
            )?;
        }
    }
    println!(
        "generated {scans} scans ({} conflicts) in {:.1} s",
        scans / 50,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Seeds `config`'s database; returns its size when on PostgreSQL.
fn seed(config: &jo_server::Config, tickets: i64, scans: i64) -> anyhow::Result<Option<String>> {
    let b = base(&Direct::open(config)?)?;
    let t = Instant::now();
    let size = match &config.postgres {
        Some(pg) => {
            let mut client = seed::pg_client(pg.url.expose())?;
            let mut sink = Sink::postgres(&mut client);
            seed_rows(&mut sink, &b, tickets, scans)?;
            sink.finish()?;
            seed::pg_after_copy(
                &mut client,
                &["game_sessions", "users", "orders", "order_lines"],
            )?;
            Some(seed::pg_size(&mut client)?)
        }
        None => {
            let mut c = rusqlite::Connection::open(&config.database)?;
            c.busy_timeout(Duration::from_secs(30))?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c.pragma_update(None, "synchronous", "OFF")?;
            let tx = c.transaction()?;
            let mut sink = Sink::Sqlite(&tx);
            seed_rows(&mut sink, &b, tickets, scans)?;
            drop(sink);
            tx.commit()?;
            c.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
            None
        }
    };
    println!(
        "stored in {:.1} s{}",
        t.elapsed().as_secs_f64(),
        size.as_ref()
            .map(|s| format!("; database size {s}"))
            .unwrap_or_default()
    );
    Ok(size)
}

/// The text between `start` and the next `end`.
fn between(s: &str, start: &str, end: &str) -> Option<String> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(s[i..j].to_owned())
}

async fn admin_client(base: &str, config: &jo_server::Config) -> anyhow::Result<reqwest::Client> {
    let password = "Quatre-chevaux-Seine-2024!";
    jo_server::admin::create_admin(
        config,
        "bench@example.com",
        "benchadmin",
        jo_server::config::Secret::new(password.to_owned()),
    )
    .await?;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let html = http
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = between(&html, "name=\"csrf\" value=\"", "\"").context("csrf")?;
    http.post(format!("{base}/login"))
        .form(&[
            ("email", "bench@example.com"),
            ("password", password),
            ("csrf", &csrf),
        ])
        .send()
        .await?;
    let html = http
        .get(format!("{base}/account/2fa"))
        .send()
        .await?
        .text()
        .await?;
    let secret = between(&html, "id=\"totp-secret\">", "<").context("totp secret")?;
    let csrf = between(&html, "name=\"csrf\" value=\"", "\"").context("csrf")?;
    let raw = totp_rs::Secret::Encoded(secret)
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("base32: {e:?}"))?;
    let step = u64::try_from(jo_server::units::time::now()).unwrap_or(0) / 30;
    let code = jo_server::auth::totp::code_at_step(&raw, step).context("totp code")?;
    let r = http
        .post(format!("{base}/account/2fa/enable"))
        .form(&[("code", code.as_str()), ("csrf", &csrf)])
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("2FA enrolment failed: {}", r.status());
    }
    Ok(http)
}

async fn time_get(http: &reqwest::Client, url: &str, runs: usize) -> anyhow::Result<Vec<f64>> {
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let r = http.get(url).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !status.is_success() || body.is_empty() {
            bail!("{url}: {status}");
        }
    }
    Ok(ms)
}

fn report(name: &str, ms: &[f64]) {
    let mut s = ms.to_vec();
    s.sort_by(f64::total_cmp);
    let median = s[s.len() / 2];
    println!(
        "{name:<28} first {:>7.1} ms   median {median:>7.1} ms   max {:>7.1} ms   ({} runs){}",
        ms[0],
        s[s.len() - 1],
        ms.len(),
        if s[s.len() - 1] <= 1000.0 {
            ""
        } else {
            "   OVER 1 s"
        }
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let tickets: i64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let scans: i64 = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut config = jo_server::Config::for_tests(data.clone());
    // SQLite by default; JO_BENCH_DATABASE=postgres://… on a fresh
    // database of that server.
    if let Some(url) = std::env::var("JO_BENCH_DATABASE")
        .ok()
        .filter(|u| u.starts_with("postgres"))
    {
        let db = jo_server::db::direct::scratch_postgres(&url, "jo_bench_admin")?;
        config.postgres = Some(jo_server::config::PostgresSettings {
            url: jo_server::config::Secret::new(db),
            password: None,
            connections: 16,
        });
    }
    println!(
        "-- {}: {tickets} tickets, {scans} scans",
        if config.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );

    // First start: creates, migrates and loads the fixtures; then seed.
    let app = jo_server::Application::build(config.clone()).await?;
    drop(app);
    let seed_config = config.clone();
    tokio::task::spawn_blocking(move || seed(&seed_config, tickets, scans)).await??;

    let app = jo_server::Application::build(config.clone()).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
    });
    let http = admin_client(&base, &config).await?;
    report(
        "GET /admin (dashboard)",
        &time_get(&http, &format!("{base}/admin"), 10).await?,
    );
    report(
        "GET /admin/scans",
        &time_get(&http, &format!("{base}/admin/scans"), 10).await?,
    );
    report(
        "GET /admin/scans?session=…",
        &time_get(
            &http,
            &format!("{base}/admin/scans?session=100&gate=Porte+3"),
            10,
        )
        .await?,
    );
    report(
        "GET /admin/orders?q=name",
        &time_get(&http, &format!("{base}/admin/orders?q=nom4242"), 5).await?,
    );
    let t = Instant::now();
    let csv = http
        .get(format!("{base}/admin/scans.csv"))
        .send()
        .await?
        .bytes()
        .await?;
    println!(
        "GET /admin/scans.csv         {:.1} s for {} MB ({} lines, streamed)",
        t.elapsed().as_secs_f64(),
        csv.len() / 1_000_000,
        csv.iter().filter(|b| **b == b'\n').count()
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
