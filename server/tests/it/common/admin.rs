//! Test helpers for the admin tests: an admin logged in with 2FA (oathtool
//! codes), and sales, devices and scans written straight into the
//! database (the shop and the sync API write them in production).

use jo_server::db::direct::Direct;
use jo_server::db::sql::{Begin, Optional, params};
use jo_server::tickets::{TicketSpec, issue};
use jo_shared::TicketSigner;
use jo_shared::doublekey::{PurchaseKey, UserKey};
use jo_shared::ticket::TicketId;
use reqwest::StatusCode;

use super::*;

/// The database of a running test app.
pub fn admin_db(app: &TestApp) -> Direct {
    app.db()
}

/// One integer from SQL.
pub fn one_i64(app: &TestApp, sql: &str, params: Params<'_>) -> i64 {
    query_i64(&app.db(), sql, params)
}

/// Creates an admin account (as `jo-server create-admin` does).
pub async fn create_admin(app: &TestApp, email: &str, username: &str) -> i64 {
    jo_server::admin::create_admin(
        &app.config,
        email,
        username,
        jo_server::config::Secret::new(GOOD_PASSWORD.to_owned()),
    )
    .await
    .expect("admin created")
}

/// An admin logged in with a full two-factor session, and its TOTP secret.
pub async fn admin(app: &TestApp) -> (Browser, String) {
    create_admin(app, "chef@example.com", "chef").await;
    let b = Browser::new(app);
    assert_redirect_to(
        &b.login("chef@example.com", GOOD_PASSWORD).await,
        "/account/2fa",
    );
    let (_, html) = b.get_text("/account/2fa").await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret shown");
    if secs_left_in_step() < 3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "2FA enrolment");
    (b, secret)
}

/// A registered, verified, logged-in buyer; returns it with its user id.
pub async fn logged_in_buyer(app: &TestApp, username: &str) -> (Browser, i64) {
    let email = format!("{username}@example.com");
    let b = registered_user(app, username, &email).await;
    assert_redirect_to(&b.login(&email, GOOD_PASSWORD).await, "/");
    let id = one_i64(app, "SELECT id FROM users WHERE email = ?1", &[&email]);
    (b, id)
}

/// The id of a session of the fixtures (the first by start).
pub fn first_session(app: &TestApp) -> i64 {
    one_i64(
        app,
        "SELECT id FROM game_sessions WHERE status = 'scheduled' ORDER BY starts_at, id LIMIT 1",
        &[],
    )
}

/// The id of an offer by name.
pub fn offer_named(app: &TestApp, name: &str) -> i64 {
    one_i64(app, "SELECT id FROM offers WHERE name = ?1", &[&name])
}

/// A paid order written as the shop writes one: the order, one line and
/// `quantity` signed tickets; returns its number and the tickets' codes.
pub fn paid_order(
    app: &TestApp,
    user_id: i64,
    session_id: i64,
    offer_id: i64,
    quantity: i64,
    unit_price_cents: i64,
) -> (String, Vec<String>) {
    let c = admin_db(app);
    c.with(|c| {
        let tx = c.begin(Begin::Deferred).expect("tx");
        let signer = TicketSigner::generate().expect("key");
        let (user_key, first, last): (Vec<u8>, String, String) = tx
            .query_row(
                "SELECT user_key, first_name, last_name FROM users WHERE id = ?1",
                params![user_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("user");
        let user_key = UserKey::from_slice(&user_key).expect("user key");
        let purchase = PurchaseKey::generate().expect("random");
        let n: i64 = tx
            .query_row("SELECT count(*) FROM orders", params![], |r| r.get(0))
            .expect("count");
        let number = format!("T{:09}", n + 1);
        let now = jo_server::units::time::now();
        let order_id: i64 = tx
            .query_row(
                "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at, paid_at, purchase_key)
                 VALUES (?1, ?2, 'paid', ?3, ?4, ?4, ?4, ?5) RETURNING id",
                params![number, user_id, unit_price_cents * quantity, now, &purchase.as_bytes()[..]],
                |r| r.get(0),
            )
            .expect("order");
        let (offer_name, seats): (String, i64) = tx
            .query_row(
                "SELECT name, seats FROM offers WHERE id = ?1",
                params![offer_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("offer");
        let line_id: i64 = tx
            .query_row(
                "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                params![order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents],
                |r| r.get(0),
            )
            .expect("line");
        tx.execute(
            "UPDATE game_sessions SET seats_taken = seats_taken + ?2 WHERE id = ?1",
            params![session_id, seats * quantity],
        )
        .expect("seats");
        let (doors, ends): (i64, i64) = tx
            .query_row(
                "SELECT doors_open_at, ends_at FROM game_sessions WHERE id = ?1",
                params![session_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("session");
        let holder = format!("{first} {last}");
        let mut codes = Vec::new();
        for i in 0..quantity {
            let t = issue(
                &signer,
                &user_key,
                &purchase,
                &TicketSpec {
                    index: u32::try_from(i).expect("index"),
                    session_id: u32::try_from(session_id).expect("session"),
                    admits: u8::try_from(seats).expect("seats"),
                    valid_from: doors,
                    valid_until: ends + 3600,
                    holder: &holder,
                },
            )
            .expect("issues");
            tx.execute(
                "INSERT INTO tickets (ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id,
                     holder, admits, key_id, valid_from, valid_minutes, qr, status, issued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'valid', ?14)",
                params![
                    &t.ticket_id.0[..],
                    order_id,
                    line_id,
                    i,
                    user_id,
                    session_id,
                    offer_id,
                    t.holder,
                    seats,
                    &signer.key_id().0[..],
                    t.valid_from,
                    t.valid_minutes,
                    t.qr,
                    now
                ],
            )
            .expect("ticket");
            codes.push(t.ticket_id.to_hex());
        }
        tx.commit().expect("commit");
        Ok((number, codes))
    })
    .expect("writes the order")
}

/// A device as the sync API enrols one.
pub fn device(app: &TestApp, id: &str, label: &str, gate: &str) {
    let token_hash: Vec<u8> = id.bytes().cycle().take(32).collect();
    admin_db(app)
        .with(|c| {
            c.execute(
                "INSERT INTO devices (id, label, public_key, token_hash, enrolled_at, gate, last_sync_at, pending_uploads)
                 VALUES (?1, ?2, ?6, ?3, ?4, ?5, ?4, 3)",
                params![id, label, token_hash, jo_server::units::time::now(), gate, [0u8; 32]],
            )
        })
        .expect("device");
}

/// A scan as the sync API stores one.
#[allow(clippy::too_many_arguments)]
pub fn scan(
    app: &TestApp,
    scan_id: &str,
    device_id: &str,
    ticket: Option<&str>,
    session_id: Option<i64>,
    verdict: &str,
    reason: Option<&str>,
    gate: &str,
    scanned_at: i64,
    received_at: i64,
) {
    let ticket = ticket.map(|t| TicketId::from_hex(t).expect("ticket hex").0.to_vec());
    admin_db(app)
        .with(|c| {
            let seq: i64 = c
                .query_row(
                    "SELECT coalesce(max(seq), 0) + 1 FROM scans WHERE device_id = ?1",
                    params![device_id],
                    |r| r.get(0),
                )
                .expect("seq");
            c.execute(
                "INSERT INTO scans (scan_id, device_id, seq, prev_hash, hash, ticket_id, session_id, verdict,
                     reason, admits, gate, scanned_at, received_at)
                 VALUES (?1, ?2, ?3, ?12, ?12, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    scan_id,
                    device_id,
                    seq,
                    ticket,
                    session_id,
                    verdict,
                    reason,
                    i64::from(verdict == "admit"),
                    gate,
                    scanned_at,
                    received_at,
                    [0u8; 32]
                ],
            )
        })
        .expect("scan");
}

/// A conflict as the sync API records one.
pub fn conflict(app: &TestApp, kind: &str, scan_id: &str, device_id: &str, ticket: Option<&str>) {
    let ticket = ticket.map(|t| TicketId::from_hex(t).expect("ticket hex").0.to_vec());
    admin_db(app)
        .with(|c| {
            c.execute(
                "INSERT INTO scan_conflicts (kind, scan_id, device_id, ticket_id, detail, detected_at)
                 VALUES (?1, ?2, ?3, ?4, 'seen in a test', ?5)",
                params![kind, scan_id, device_id, ticket, jo_server::units::time::now()],
            )
        })
        .expect("conflict");
}

/// The status of a ticket and its revocation reason code, if listed.
pub fn ticket_state(app: &TestApp, code: &str) -> (String, Option<i64>) {
    let id = TicketId::from_hex(code).expect("hex");
    admin_db(app)
        .with(|c| {
            let status: String = c.query_row(
                "SELECT status FROM tickets WHERE ticket_id = ?1",
                params![&id.0[..]],
                |r| r.get(0),
            )?;
            let reason: Option<i64> = c
                .query_row(
                    "SELECT reason FROM revocations WHERE ticket_id = ?1",
                    params![&id.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            Ok((status, reason))
        })
        .expect("reads the ticket")
}

/// The ticket ids of the revocation list as scanners sync it (from version 0).
pub fn synced_revocations(app: &TestApp) -> Vec<String> {
    admin_db(app)
        .with(|c| jo_server::db::revocations::entries_since(c, 0, 1_000_000))
        .expect("revocation list")
        .into_iter()
        .map(|e| e.ticket_id.to_hex())
        .collect()
}

/// A concrete path for a route pattern (`{id}` → `1`).
pub fn sample_path(pattern: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for ch in pattern.chars() {
        match ch {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push('1');
            }
            _ if in_param => {}
            _ => out.push(ch),
        }
    }
    out
}
