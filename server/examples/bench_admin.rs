//! Admin console benchmark: seeds a large store (1 M tickets and 1 M scans
//! by default), starts the real server on it, logs an admin in with 2FA
//! and times the dashboard and the scans view over HTTP.
//!
//! `cargo run --release -p jo-server --example bench_admin -- [TICKETS] [SCANS]`
//! (or `scripts/bench-admin.sh`). The store is seeded straight through SQL
//! in one transaction, so the rollup triggers run as they do in production.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rusqlite::params;
use sha2::{Digest, Sha256};

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

fn seed(db: &std::path::Path, tickets: i64, scans: i64) -> anyhow::Result<()> {
    let mut c = rusqlite::Connection::open(db)?;
    c.busy_timeout(Duration::from_secs(30))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "OFF")?;
    let tx = c.transaction()?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = jo_server::units::time::now();
    let sport: i64 = tx.query_row("SELECT min(id) FROM sports", [], |r| r.get(0))?;
    let sports: i64 = tx.query_row("SELECT count(*) FROM sports", [], |r| r.get(0))?;
    let venue: i64 = tx.query_row("SELECT min(id) FROM venues", [], |r| r.get(0))?;
    let offers: Vec<(i64, String, i64, i64)> = tx
        .prepare("SELECT id, name, seats, price_percent FROM offers ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    if offers.is_empty() {
        bail!("no offers: the fixtures did not load");
    }
    let mut session_ids = Vec::new();
    {
        let mut st = tx.prepare(
            "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at, doors_open_at,
                 capacity, base_price_cents, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 20000, ?8, ?9, ?9)",
        )?;
        for i in 0..SESSIONS {
            let start = now + 40 * 86_400 + i * 3 * 3600;
            st.execute(params![
                format!("BEN{i:04}"),
                sport + i % sports.max(1),
                venue,
                format!("Session de charge {i}"),
                start,
                start + 2 * 3600,
                start - 3600,
                2500 + (i % 10) * 1000,
                now
            ])?;
            session_ids.push(tx.last_insert_rowid());
        }
    }
    let mut user_ids = Vec::new();
    {
        let mut st = tx.prepare(
            "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, created_at)
             VALUES (?1, ?2, 'Prénom', ?3, 'x', ?4, ?5)",
        )?;
        for i in 0..USERS {
            let key = Sha256::digest(i.to_le_bytes());
            st.execute(params![
                format!("bench{i}"),
                format!("bench{i}@example.com"),
                format!("Nom{i}"),
                &key[..],
                now
            ])?;
            user_ids.push(tx.last_insert_rowid());
        }
    }
    let t = Instant::now();
    let mut made = 0i64;
    let mut order_no = 0i64;
    let mut ticket_ids: Vec<[u8; 10]> = Vec::with_capacity(usize::try_from(tickets).unwrap_or(0));
    let mut ticket_sessions: Vec<i64> = Vec::with_capacity(ticket_ids.capacity());
    {
        let mut ins_order = tx.prepare(
            "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at, paid_at, purchase_key)
             VALUES (?1, ?2, 'paid', ?3, ?4, ?4, ?4, ?5)",
        )?;
        let mut ins_line = tx.prepare(
            "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut ins_ticket = tx.prepare(
            "INSERT INTO tickets (ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id, holder,
                 admits, key_id, valid_from, valid_minutes, qr, issued_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'Prénom Nom', ?8, x'00000000', ?9, 240, 'bench', ?10)",
        )?;
        while made < tickets {
            order_no += 1;
            let user = user_ids[usize::try_from(rng.below(USERS as u64)).unwrap_or(0)];
            let session = session_ids[usize::try_from(rng.below(SESSIONS as u64)).unwrap_or(0)];
            let (offer_id, offer_name, seats, percent) =
                &offers[usize::try_from(rng.below(offers.len() as u64)).unwrap_or(0)];
            let quantity = (1 + rng.below(4)).min(tickets - made);
            let unit = 5000 * seats * percent / 100;
            // Sales spread over the last 90 days.
            let paid_at = now - rng.below(90 * 86_400);
            let purchase = Sha256::digest(order_no.to_be_bytes());
            ins_order.execute(params![
                format!("B{order_no:09}"),
                user,
                unit * quantity,
                paid_at,
                &purchase[..]
            ])?;
            let order_id = tx.last_insert_rowid();
            ins_line.execute(params![
                order_id, session, offer_id, offer_name, seats, quantity, unit
            ])?;
            let line_id = tx.last_insert_rowid();
            for idx in 0..quantity {
                let mut id = [0u8; 10];
                id[2..].copy_from_slice(&(made + 1).to_be_bytes());
                ins_ticket.execute(params![
                    &id[..],
                    order_id,
                    line_id,
                    idx,
                    user,
                    session,
                    offer_id,
                    seats,
                    now,
                    paid_at
                ])?;
                ticket_ids.push(id);
                ticket_sessions.push(session);
                made += 1;
            }
        }
    }
    println!(
        "seeded {made} tickets in {order_no} orders ({USERS} buyers, {SESSIONS} extra sessions) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    {
        let mut st = tx.prepare(
            "INSERT INTO devices (id, label, public_key, token_hash, enrolled_at, gate, last_sync_at)
             VALUES (?1, ?2, zeroblob(32), ?3, ?4, ?5, ?4)",
        )?;
        for d in 0..DEVICES {
            let hash = Sha256::digest(d.to_le_bytes());
            st.execute(params![
                format!("bench-dev-{d}"),
                format!("Laptop {d}"),
                &hash[..],
                now,
                format!("Porte {}", d % 20)
            ])?;
        }
        let mut ins_scan = tx.prepare(
            "INSERT INTO scans (scan_id, device_id, seq, prev_hash, hash, ticket_id, session_id, verdict, reason,
                 admits, gate, scanned_at, received_at)
             VALUES (?1, ?2, ?3, zeroblob(32), zeroblob(32), ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut ins_conflict = tx.prepare(
            "INSERT INTO scan_conflicts (kind, scan_id, device_id, ticket_id, detail, detected_at)
             VALUES (?1, ?2, ?3, ?4, 'bench', ?5)",
        )?;
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
            let scan_id = format!("bench-scan-{i}");
            ins_scan.execute(params![
                scan_id,
                format!("bench-dev-{d}"),
                i,
                &ticket_ids[n][..],
                ticket_sessions[n],
                verdict,
                reason,
                i64::from(verdict == "admit"),
                format!("Porte {}", d % 20),
                scanned,
                received
            ])?;
            if i % 50 == 0 {
                ins_conflict.execute(params![
                    kinds[usize::try_from(i / 50 % 4).unwrap_or(0)],
                    scan_id,
                    format!("bench-dev-{d}"),
                    &ticket_ids[n][..],
                    received
                ])?;
            }
        }
    }
    println!(
        "seeded {scans} scans ({} conflicts) in {:.1} s",
        scans / 50,
        t.elapsed().as_secs_f64()
    );
    tx.commit()?;
    c.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
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
    let config = jo_server::Config::for_tests(data.clone());

    // First start: creates, migrates and loads the fixtures; then seed.
    let app = jo_server::Application::build(config.clone()).await?;
    drop(app);
    let db = data.join("jo.sqlite3");
    tokio::task::spawn_blocking(move || seed(&db, tickets, scans)).await??;

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
