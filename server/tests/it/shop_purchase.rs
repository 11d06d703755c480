//! The whole purchase over HTTP for each offer, every test card, declined
//! payments and hold expiry, double submits, and the confirmation mail.

use crate::common::shop::*;
use crate::common::*;
use jo_server::db::sql::Dialect;
use reqwest::StatusCode;

async fn session_with_code(app: &TestApp, code: &str) -> i64 {
    sql_i64(
        app,
        "SELECT id FROM game_sessions WHERE code = ?1",
        &[&code],
    )
}

#[tokio::test]
async fn each_offer_is_bought_end_to_end_and_delivered() {
    let app = spawn_app().await;
    // An offer an admin adds later works with no code change.
    db(&app)
        .with(|c| c.execute(
            "INSERT INTO offers (name, seats, price_percent, created_at, updated_at) VALUES ('Groupe 8', 8, 80, 0, 0)", params![]))
        .expect("offer");
    let b = buyer(&app, "marie").await;
    let sid = session_with_code(&app, "ATH01").await;
    let mut seats = 0;
    for (offer, admits, quantity) in [
        ("Solo", 1, 2),
        ("Duo", 2, 1),
        ("Famille", 4, 1),
        ("Groupe 8", 8, 1),
    ] {
        let before = ticket_ids(&b).await.len();
        let number = buy(&b, sid, offer, quantity).await;
        assert_eq!(order_status(&app, &number), "paid");
        let (status, html) = b.get_text(&format!("/orders/{number}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Paiement accepté"), "{html}");
        let ids = ticket_ids(&b).await;
        assert_eq!(ids.len(), before + quantity as usize, "{offer}");
        let n: i64 = sql_i64(
            &app,
            "SELECT count(*) FROM tickets t JOIN orders o ON o.id = t.order_id WHERE o.number = ?1 AND t.admits = ?2",
            &[&number, &admits],
        );
        assert_eq!(n, quantity, "{offer}: one ticket per unit, admits = seats");
        seats += admits * quantity;
        // Every ticket's QR is served and verifies with the public key.
        let qr: String = db(&app)
            .with(|c| c.query_row(
                "SELECT t.qr FROM tickets t JOIN orders o ON o.id = t.order_id WHERE o.number = ?1 LIMIT 1", params![&number],
                |r| r.get(0)))
            .expect("qr");
        let p = verify_ticket(&app, &qr);
        assert_eq!(i64::from(p.admits), admits);
        assert_eq!(i64::from(p.session_id), sid);
        assert_eq!(p.holder, jo_shared::HolderName::shorten("Marie Curie"));
    }
    assert_eq!(seats_taken(&app, sid), seats);
    // Paid orders have their purchase key; tickets derive from the double key.
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM orders WHERE status = 'paid' AND length(purchase_key) = 32",
            &[]
        ),
        4
    );
    let ids = ticket_ids(&b).await;
    let (status, html) = b.get_text("/tickets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Marie Curie")
            && html.contains("Stade de France")
            && html.contains("Finale 100 m hommes")
    );
    let r = b.get(&format!("/tickets/{}/qr.png", ids[0])).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");

    // The confirmation mail carries the PDF (mail #0 was the address check).
    let raw = outbox_raw(&app, "marie@example.com", 1).await;
    assert!(raw.contains("application/pdf"), "PDF attached");
    assert!(raw.contains("billets-"), "named after the order");
    // Never a card number anywhere.
    let dump: String = db(&app)
        .with(|c| {
            let concat = match c.dialect() {
                Dialect::Sqlite => "group_concat",
                Dialect::Postgres => "string_agg",
            };
            c.query_row(
                &format!(
                    "SELECT {concat}(card_brand || ' ' || card_last4 || ' ' || coalesce(transaction_id, ''), ';')
                     FROM payments"
                ),
                params![],
                |r| r.get(0),
            )
        })
        .expect("payments");
    assert!(
        dump.contains("Visa 4242") && !dump.contains("42424242"),
        "{dump}"
    );
    // SQLite: not in the file either (free pages, journal); PostgreSQL's
    // files are the server's.
    if app.config.postgres.is_none() {
        let file = std::fs::read(&app.config.database).expect("db file");
        assert!(
            !file.windows(16).any(|w| w == b"4242424242424242"),
            "card number stored in the database file"
        );
    }
}

/// The raw `.eml` number `seen` sent to `to`.
async fn outbox_raw(app: &TestApp, to: &str, seen: usize) -> String {
    let dir = app.data.path().join("data").join("outbox");
    for _ in 0..100 {
        let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let text = std::fs::read_to_string(e.path()).ok()?;
                        let t = e.metadata().ok()?.modified().ok()?;
                        text.lines()
                            .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
                            .then_some((t, text))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if found.len() > seen {
            found.sort_by_key(|(t, _)| *t);
            return found.swap_remove(seen).1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail #{seen} to {to}");
}

#[tokio::test]
async fn every_test_card_has_its_outcome_and_a_decline_keeps_the_order_unpaid() {
    let app = spawn_app().await;
    let b = buyer(&app, "paul").await;
    let sid = session_with_code(&app, "ATH02").await;
    let solo = offer_id(&b, sid, "Solo").await;
    add_to_cart(&b, sid, solo, 1).await;
    let number = order_of_redirect(&checkout(&b).await);
    assert_eq!(order_status(&app, &number), "pending");
    assert_eq!(seats_taken(&app, sid), 1, "the seat is held");

    for (card, message) in [
        (CARD_FUNDS, "provision insuffisante"),
        (CARD_DECLINED, "refusé par votre banque"),
        (CARD_NETWORK, "Erreur réseau"),
        ("4111 1111 1111 1111", "refusé par votre banque"),
    ] {
        let r = pay(&b, &number, card).await;
        assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED, "{card}");
        let html = r.text().await.expect("body");
        assert!(html.contains(message), "{card}: {html}");
        assert!(!html.contains(&card.replace(' ', "")), "card number echoed");
        assert_eq!(order_status(&app, &number), "pending");
        assert_eq!(sql_i64(&app, "SELECT count(*) FROM tickets", &[]), 0);
    }
    // Form errors: Luhn, expiry, CVV, holder; nothing recorded.
    let (csrf, idem) = pay_form(&b, &number).await;
    let r = b
        .client
        .post(b.url(&format!("/orders/{number}/pay")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("idem", &idem),
            ("card_holder", ""),
            ("card_number", "4242 4242 4242 4241"),
            ("card_expiry", "01/20"),
            ("card_cvv", "12a"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    for id in [
        "card_number-error",
        "card_expiry-error",
        "card_cvv-error",
        "card_holder-error",
    ] {
        assert!(html.contains(id), "{id}");
    }
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM payments WHERE idempotency_key = ?1",
            &[&idem]
        ),
        0
    );
    // The good card pays.
    let r = pay(&b, &number, CARD_OK).await;
    assert_redirect_to(&r, &format!("/orders/{number}"));
    assert_eq!(order_status(&app, &number), "paid");
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM payments WHERE status = 'declined'",
            &[]
        ),
        4
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM payments WHERE status = 'succeeded'",
            &[]
        ),
        1
    );
    assert_eq!(seats_taken(&app, sid), 1);
}

#[tokio::test]
async fn an_unpaid_hold_expires_and_its_seats_return() {
    let app = spawn_app_with(|c| {
        c.shop.hold_secs = 2;
        c.shop.sweep_secs = 1;
    })
    .await;
    let b = buyer(&app, "ines").await;
    let sid = session_with_code(&app, "NAT05").await;
    let fam = offer_id(&b, sid, "Famille").await;
    add_to_cart(&b, sid, fam, 1).await;
    let number = order_of_redirect(&checkout(&b).await);
    assert_eq!(seats_taken(&app, sid), 4);
    let r = pay(&b, &number, CARD_FUNDS).await;
    assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(order_status(&app, &number), "pending");
    let (csrf, idem) = pay_form(&b, &number).await;
    // The sweeper runs every second; the hold lasts two.
    for _ in 0..80 {
        if order_status(&app, &number) == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(order_status(&app, &number), "expired");
    assert_eq!(seats_taken(&app, sid), 0, "seats returned");
    // Paying now is refused and charges nothing.
    let r = post_pay(&b, &number, &csrf, &idem, CARD_OK).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("Le délai de paiement est dépassé")
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM payments WHERE status = 'succeeded'",
            &[]
        ),
        0
    );
    assert_eq!(sql_i64(&app, "SELECT count(*) FROM tickets", &[]), 0);
    let r = b.get(&format!("/orders/{number}/pay")).await;
    assert_redirect_to(&r, &format!("/orders/{number}"));
}

#[tokio::test]
async fn a_double_submit_or_a_reload_pays_once() {
    let app = spawn_app().await;
    let b = buyer(&app, "hugo").await;
    let sid = session_with_code(&app, "ATH03").await;
    let duo = offer_id(&b, sid, "Duo").await;
    add_to_cart(&b, sid, duo, 2).await;
    let number = order_of_redirect(&checkout(&b).await);
    let (csrf, idem) = pay_form(&b, &number).await;
    // Two submits at once with the same key (a double click)…
    let (r1, r2) = tokio::join!(
        post_pay(&b, &number, &csrf, &idem, CARD_OK),
        post_pay(&b, &number, &csrf, &idem, CARD_OK)
    );
    for r in [&r1, &r2] {
        assert!(
            r.status() == StatusCode::SEE_OTHER || r.status() == StatusCode::CONFLICT,
            "{}",
            r.status()
        );
    }
    // …then the same post again (a reload), then another form (a second tab).
    let r = post_pay(&b, &number, &csrf, &idem, CARD_OK).await;
    assert_redirect_to(&r, &format!("/orders/{number}"));
    let r = post_pay(&b, &number, &csrf, "x".repeat(43).as_str(), CARD_OK).await;
    assert_redirect_to(&r, &format!("/orders/{number}"));
    assert_eq!(
        sql_i64(&app, "SELECT count(*) FROM payments", &[]),
        1,
        "charged once"
    );
    assert_eq!(sql_i64(&app, "SELECT count(*) FROM tickets", &[]), 2);
    assert_eq!(order_status(&app, &number), "paid");
    assert_eq!(seats_taken(&app, sid), 4);
}
