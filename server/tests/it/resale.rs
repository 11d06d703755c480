//! Resale at face value over HTTP: list, buy through the cart, checkout
//! and payment page at face value + 10 % (alone, or in one order with
//! primary tickets), the seller refunded face value − 5 % through the
//! gateway (exact cents), the seat moved and not counted twice, the seller's
//! old code refused at a synced gate; a withdrawn listing cannot be bought;
//! two buyers racing for one listing (one wins, the other is told it is
//! gone); and the tickets-per-buyer-per-session limit across primary and
//! resale purchases.

use jo_server::db::sql::params;
use jo_shared::api::{KeyringResponse, RevocationDelta, paths};
use jo_shared::revocation::{RevocationList, RevocationReason};
use reqwest::StatusCode;

use crate::common::api::ApiDevice;
use crate::common::shop::*;
use crate::common::*;

fn ath01(app: &TestApp) -> i64 {
    sql_i64(
        app,
        "SELECT id FROM game_sessions WHERE code = 'ATH01'",
        &[],
    )
}

/// The listing ids on a session's page.
async fn listings(b: &Browser, sid: i64) -> Vec<i64> {
    let (_, html) = b.get_text(&format!("/sessions/{sid}")).await;
    html.split("id=\"listing-")
        .skip(1)
        .filter_map(|s| s.split('"').next()?.parse().ok())
        .collect()
}

async fn list(b: &Browser, code: &str) -> String {
    let r = b
        .submit("/tickets", &format!("/tickets/{code}/resale"), &[])
        .await;
    location(&r)
}

/// The session page's "buy" button of listing `id`: into the cart.
async fn buy_listing(b: &Browser, sid: i64, id: i64) -> reqwest::Response {
    b.submit(
        &format!("/sessions/{sid}"),
        &format!("/resale/{id}/buy"),
        &[],
    )
    .await
}

/// Listing `id` into the cart, then checkout: the pending order's number.
async fn order_listing(b: &Browser, sid: i64, id: i64) -> String {
    assert_redirect_to(&buy_listing(b, sid, id).await, "/cart?added=1");
    order_of_redirect(&checkout(b).await)
}

fn face_of(app: &TestApp, code: &str) -> i64 {
    let id = hex::decode(code).expect("hex");
    app.db()
        .with(|c| {
            c.query_row(
                "SELECT ol.unit_price_cents FROM tickets t JOIN order_lines ol ON ol.id = t.order_line_id
                 WHERE t.ticket_id = ?1",
                params![id],
                |r| r.get(0),
            )
        })
        .expect("face")
}

#[tokio::test]
async fn a_resold_ticket_moves_to_its_buyer_and_the_seller_is_refunded_face_value_less_five_percent()
 {
    let app = spawn_app().await;
    let seller = buyer(&app, "vendeur").await;
    let buyer_b = buyer(&app, "acheteur").await;
    let sid = ath01(&app);
    let first = buy(&seller, sid, "Solo", 1).await;
    let code = ticket_ids(&seller).await.remove(0);
    let old_qr: String = app
        .db()
        .with(|c| {
            c.query_row(
                "SELECT qr FROM tickets WHERE ticket_id = ?1",
                params![hex::decode(&code).expect("hex")],
                |r| r.get(0),
            )
        })
        .expect("qr");
    let seats = seats_taken(&app, sid);
    let face = face_of(&app, &code);

    assert_eq!(list(&seller, &code).await, "/tickets/done?notice=listed");
    assert_eq!(
        list(&seller, &code).await,
        "/tickets/done?notice=already_listed"
    );
    // Listed, it can neither be offered to someone nor renamed meanwhile.
    let r = seller
        .submit(
            "/tickets",
            &format!("/tickets/{code}/transfer"),
            &[("email", "x@example.com")],
        )
        .await;
    assert_eq!(location(&r), "/tickets/done?notice=already_offered");
    let ids = listings(&buyer_b, sid).await;
    assert_eq!(ids.len(), 1);
    // The seller cannot buy their own listing.
    let r = buy_listing(&seller, sid, ids[0]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // The buyer pays face value + 10 %, exactly, through the cart and the
    // normal payment page.
    assert_redirect_to(&buy_listing(&buyer_b, sid, ids[0]).await, "/cart?added=1");
    let (_, cart) = buyer_b.get_text("/cart").await;
    assert!(cart.contains("Revente officielle"), "{cart}");
    let number = order_of_redirect(&checkout(&buyer_b).await);
    let expected = face + (face * 1_000 + 5_000) / 10_000;
    let total = sql_i64(
        &app,
        "SELECT total_cents FROM orders WHERE number = ?1",
        &[&number],
    );
    assert_eq!(total, expected);
    // Held by the buyer's order: gone from the page, not withdrawable.
    assert!(listings(&buyer_b, sid).await.is_empty());
    let r = seller
        .submit("/tickets", &format!("/tickets/{code}/resale/withdraw"), &[])
        .await;
    assert_eq!(location(&r), "/tickets/done?notice=not_withdrawn");
    assert_redirect_to(
        &pay(&buyer_b, &number, CARD_OK).await,
        &format!("/orders/{number}"),
    );
    assert_eq!(order_status(&app, &number), "paid");
    let charged = sql_i64(
        &app,
        "SELECT p.amount_cents FROM payments p JOIN orders o ON o.id = p.order_id
         WHERE o.number = ?1 AND p.status = 'succeeded'",
        &[&number],
    );
    assert_eq!(charged, expected);

    // The ticket moved: a new one in the buyer's order and name, the
    // seller's revoked `transferred`; the seat is not counted twice.
    let mine = ticket_ids(&buyer_b).await;
    assert_eq!(mine.len(), 1);
    assert_ne!(mine[0], code);
    let (_, html) = buyer_b.get_text(&format!("/orders/{number}")).await;
    assert!(html.contains(&mine[0]), "the buyer sees it in the order");
    let p = verify_ticket(
        &app,
        &app.db()
            .with(|c| {
                c.query_row(
                    "SELECT qr FROM tickets WHERE ticket_id = ?1",
                    params![hex::decode(&mine[0]).expect("hex")],
                    |r| r.get::<String>(0),
                )
            })
            .expect("qr"),
    );
    assert_eq!(p.holder, jo_shared::HolderName::shorten("Marie Curie"));
    assert_eq!(seats_taken(&app, sid), seats);
    let reason = sql_i64(
        &app,
        "SELECT reason FROM revocations WHERE ticket_id = ?1",
        &[&hex::decode(&code).expect("hex")],
    );
    assert_eq!(reason, i64::from(RevocationReason::Transferred.code()));
    // The seller is refunded face value − 5 % through the gateway, once.
    let payout = sql_i64(
        &app,
        "SELECT payout_cents FROM resale_listings WHERE status = 'sold' AND payout_ref LIKE 'sim_re_%'",
        &[],
    );
    assert_eq!(payout, face - (face * 500 + 5_000) / 10_000);
    // The seller's order still shows, its ticket revoked.
    let (status, _) = seller.get_text(&format!("/orders/{first}")).await;
    assert_eq!(status, StatusCode::OK);

    // The console lists the resale under its session, with the refund.
    // It is reached from the console: the sessions list and the session's
    // own page both link to it.
    let (admin, _) = crate::common::admin::admin(&app).await;
    let link = format!("href=\"/admin/sessions/{sid}/transfers\"");
    for page in [
        "/admin/sessions".to_owned(),
        format!("/admin/sessions/{sid}"),
    ] {
        let (status, html) = admin.get_text(&page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(
            html.contains(&link),
            "{page} has no link to the transfers page"
        );
    }
    let (status, html) = admin
        .get_text(&format!("/admin/sessions/{sid}/transfers"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Vendue") && html.contains("sim_re_"),
        "{html}"
    );
    // Refunding the seller's order frees no seat: the one it took is the
    // buyer's now. Refunding the buyer's order frees it, once.
    for (order, left) in [(&first, seats), (&number, seats - 1)] {
        let page = format!("/admin/orders/{order}");
        let r = admin.submit(&page, &format!("{page}/refund"), &[]).await;
        assert_redirect_to(&r, &format!("{page}?done=refunded"));
        assert_eq!(seats_taken(&app, sid), left, "after refunding {order}");
    }

    // A synced gate refuses the seller's old code as transferred.
    let gate = ApiDevice::enroll(&app, "Porte R").await;
    let keyring: KeyringResponse = gate.get_ok(paths::KEYRING).await;
    let ring = jo_shared::trust::pin(&keyring.chain, None)
        .expect("chain")
        .keyring()
        .expect("keyring");
    let delta: RevocationDelta = gate
        .get_ok(&format!("{}?since=0", paths::REVOCATIONS))
        .await;
    let mut list_ = RevocationList::new();
    list_.apply(&delta, &ring).expect("applies");
    let (payload, _) = jo_shared::qr::decode_string(&old_qr).expect("qr");
    let old = jo_shared::TicketPayload::decode(&payload).expect("payload");
    assert_eq!(
        list_.lookup(&old.ticket_id),
        Some(RevocationReason::Transferred)
    );
}

/// The tickets of order `number`, in derivation order: (holder, status).
fn order_tickets(app: &TestApp, number: &str) -> Vec<(String, String)> {
    app.db()
        .with(|c| {
            c.query_map(
                "SELECT t.holder, t.status FROM tickets t JOIN orders o ON o.id = t.order_id
                 WHERE o.number = ?1 ORDER BY t.idx",
                params![number],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .expect("tickets")
}

#[tokio::test]
async fn a_resale_ticket_is_bought_in_one_order_with_primary_tickets_and_an_expired_hold_frees_both()
 {
    let app = spawn_app().await;
    let seller = buyer(&app, "vendeur").await;
    let fan = buyer(&app, "famille").await;
    let sid = ath01(&app);
    buy(&seller, sid, "Solo", 1).await;
    let code = ticket_ids(&seller).await.remove(0);
    let face = face_of(&app, &code);
    list(&seller, &code).await;
    let id = listings(&fan, sid).await[0];
    let seats = seats_taken(&app, sid);
    let solo = offer_id(&fan, sid, "Solo").await;
    let listing_status = |app: &TestApp| -> String {
        app.db()
            .with(|c| {
                c.query_row(
                    "SELECT status FROM resale_listings WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
            })
            .expect("status")
    };

    // Two Solo tickets and the resale one in one cart, one checkout.
    assert_redirect_to(&add_to_cart(&fan, sid, solo, 2).await, "/cart?added=1");
    assert_redirect_to(&buy_listing(&fan, sid, id).await, "/cart?added=1");
    // Added twice, it is still one line.
    assert_redirect_to(&buy_listing(&fan, sid, id).await, "/cart?added=1");
    let (_, cart) = fan.get_text("/cart").await;
    assert_eq!(cart.matches("class=\"card cart-line").count(), 2, "{cart}");
    let number = order_of_redirect(&checkout(&fan).await);
    let price = sql_i64(
        &app,
        "SELECT l.unit_price_cents FROM order_lines l JOIN orders o ON o.id = l.order_id
         WHERE o.number = ?1 AND l.resale_listing IS NULL",
        &[&number],
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT total_cents FROM orders WHERE number = ?1",
            &[&number]
        ),
        2 * price + face + (face * 1_000 + 5_000) / 10_000,
        "the Solo tickets at their price, the resale one at face value + 10 %"
    );
    // Only the new tickets took seats; the listing is held, off the page.
    assert_eq!(seats_taken(&app, sid), seats + 2);
    assert_eq!(listing_status(&app), "held");
    assert!(listings(&fan, sid).await.is_empty());
    let (_, cart) = fan.get_text("/cart").await;
    assert!(!cart.contains("Revente officielle"), "the cart was emptied");

    // The hold runs out (the next checkout sweeps it): the seats and the
    // listing come back, once.
    app.db()
        .with(|c| {
            c.execute(
                "UPDATE orders SET hold_expires_at = 0 WHERE number = ?1",
                params![&number],
            )
        })
        .expect("update");
    let other = buyer(&app, "autre").await;
    assert_redirect_to(&add_to_cart(&other, sid, solo, 1).await, "/cart?added=1");
    order_of_redirect(&checkout(&other).await);
    assert_eq!(order_status(&app, &number), "expired");
    assert_eq!(seats_taken(&app, sid), seats + 1);
    assert_eq!(listing_status(&app), "listed");
    assert_eq!(listings(&fan, sid).await, [id]);

    // Again, and paid this time, the resale ticket named at checkout.
    add_to_cart(&fan, sid, solo, 2).await;
    buy_listing(&fan, sid, id).await;
    let number = order_of_redirect(&checkout(&fan).await);
    let (_, page) = fan.get_text(&format!("/orders/{number}/pay")).await;
    assert_eq!(
        page.matches("name=\"name\"").count(),
        3,
        "one name per ticket"
    );
    let r = fan
        .submit(
            &format!("/orders/{number}/pay"),
            &format!("/orders/{number}/holders"),
            &[("name", ""), ("name", ""), ("name", "Jeanne Baret")],
        )
        .await;
    assert_redirect_to(&r, &format!("/orders/{number}/pay?notice=names_saved"));
    assert_redirect_to(
        &pay(&fan, &number, CARD_OK).await,
        &format!("/orders/{number}"),
    );
    let tickets = order_tickets(&app, &number);
    assert_eq!(tickets.len(), 3, "{tickets:?}");
    assert!(tickets.iter().all(|(_, s)| s == "valid"));
    assert_eq!(tickets[0].0, tickets[1].0, "the buyer's name");
    assert_eq!(tickets[2].0, "Jeanne Baret");
    // Each verifies, the resale one with its name signed in.
    let qrs: Vec<String> = app
        .db()
        .with(|c| {
            c.query_map(
                "SELECT t.qr FROM tickets t JOIN orders o ON o.id = t.order_id
                 WHERE o.number = ?1 ORDER BY t.idx",
                params![&number],
                |r| r.get(0),
            )
        })
        .expect("qrs");
    let payloads: Vec<_> = qrs.iter().map(|q| verify_ticket(&app, q)).collect();
    assert_eq!(
        payloads[2].holder,
        jo_shared::HolderName::shorten("Jeanne Baret")
    );
    let ids: std::collections::HashSet<String> =
        payloads.iter().map(|p| p.ticket_id.to_hex()).collect();
    assert_eq!(ids.len(), 3, "three distinct tickets");
    // The seat moved: two more taken, none for the resale ticket.
    assert_eq!(seats_taken(&app, sid), seats + 1 + 2);
    assert_eq!(listing_status(&app), "sold");
    assert_eq!(ticket_ids(&fan).await.len(), 3);
    let seller_ticket: String = app
        .db()
        .with(|c| {
            c.query_row(
                "SELECT status FROM tickets WHERE ticket_id = ?1",
                params![hex::decode(&code).expect("hex")],
                |r| r.get(0),
            )
        })
        .expect("status");
    assert_eq!(seller_ticket, "revoked");
    let payout = sql_i64(
        &app,
        "SELECT payout_cents FROM resale_listings WHERE id = ?1",
        &[&id],
    );
    assert_eq!(payout, face - (face * 500 + 5_000) / 10_000);
}

#[tokio::test]
async fn a_withdrawn_listing_cannot_be_bought_and_of_two_racing_buyers_one_wins() {
    let app = spawn_app().await;
    let seller = buyer(&app, "vend").await;
    let sid = ath01(&app);
    buy(&seller, sid, "Solo", 2).await;
    let codes = ticket_ids(&seller).await;

    // Withdrawn: the listing is gone.
    list(&seller, &codes[0]).await;
    let id = listings(&seller, sid).await[0];
    let r = seller
        .submit(
            "/tickets",
            &format!("/tickets/{}/resale/withdraw", codes[0]),
            &[],
        )
        .await;
    assert_eq!(location(&r), "/tickets/done?notice=withdrawn");
    let late = buyer(&app, "tard").await;
    let r = buy_listing(&late, sid, id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.expect("body");
    assert!(html.contains("plus disponible"), "{html}");

    // Two buyers race for one listing: both have it in their cart, both
    // check out at once; one holds it, the other is told it is gone.
    list(&seller, &codes[1]).await;
    let id = listings(&seller, sid).await[0];
    let a = buyer(&app, "course1").await;
    let b = buyer(&app, "course2").await;
    for br in [&a, &b] {
        assert_redirect_to(&buy_listing(br, sid, id).await, "/cart?added=1");
    }
    // Both have the cart page (and its form) before either submits.
    let (_, page_a) = a.get_text("/cart").await;
    let (_, page_b) = b.get_text("/cart").await;
    let post = |br: &Browser, page: &str| {
        br.client
            .post(br.url("/checkout"))
            .form(&[("csrf", csrf_of(page))])
            .send()
    };
    let (ra, rb) = tokio::join!(post(&a, &page_a), post(&b, &page_b));
    let (ra, rb) = (ra.expect("POST"), rb.expect("POST"));
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 409], "one wins, one is told it is gone");
    let (winner, number, loser) = if ra.status() == StatusCode::SEE_OTHER {
        (&a, order_of_redirect(&ra), rb)
    } else {
        (&b, order_of_redirect(&rb), ra)
    };
    let html = loser.text().await.expect("body");
    assert!(
        html.contains("billet de revente") && html.contains("plus disponible"),
        "{html}"
    );
    assert_redirect_to(
        &pay(winner, &number, CARD_OK).await,
        &format!("/orders/{number}"),
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM resale_listings WHERE status = 'sold'",
            &[]
        ),
        1
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM orders o JOIN order_lines l ON l.order_id = o.id
             WHERE l.resale_listing IS NOT NULL AND o.status = 'paid'",
            &[]
        ),
        1,
        "no double sale"
    );
    assert_eq!(ticket_ids(winner).await.len(), 1);
}

#[tokio::test]
async fn tickets_per_buyer_per_session_are_limited_across_primary_and_resale() {
    let app = spawn_app_with(|c| c.shop.max_tickets_per_session = 2).await;
    let seller = buyer(&app, "stock").await;
    let sid = ath01(&app);
    buy(&seller, sid, "Solo", 1).await;
    let code = ticket_ids(&seller).await.remove(0);
    list(&seller, &code).await;
    let id = listings(&seller, sid).await[0];

    let tout = buyer(&app, "revendeur").await;
    buy(&tout, sid, "Solo", 2).await;
    // Two held: a resale ticket would make three.
    let r = buy_listing(&tout, sid, id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        r.text().await.expect("body").contains("nombre maximal"),
        "a clear message"
    );
    // And so would a primary one.
    let offer = offer_id(&tout, sid, "Solo").await;
    add_to_cart(&tout, sid, offer, 1).await;
    let r = checkout(&tout).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        r.text().await.expect("body").contains("nombre maximal"),
        "a clear message"
    );
    // Another buyer, under the limit, buys it.
    let fan = buyer(&app, "fan").await;
    let number = order_listing(&fan, sid, id).await;
    assert_redirect_to(
        &pay(&fan, &number, CARD_OK).await,
        &format!("/orders/{number}"),
    );
}

/// The simulated gateway, except that it refuses the first `refuse`
/// refunds (an acquirer down, a refund rejected for a while), counting
/// every refund asked for.
struct RefusingGateway {
    refuse: usize,
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl jo_server::shop::payment::PaymentGateway for RefusingGateway {
    fn refund<'a>(
        &'a self,
        req: jo_server::shop::payment::RefundRequest<'a>,
    ) -> jo_server::shop::payment::RefundFuture<'a> {
        let n = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n < self.refuse {
            return Box::pin(async { Err("acquirer unavailable".to_owned()) });
        }
        jo_server::shop::payment::SimulatedGateway.refund(req)
    }

    fn charge<'a>(
        &'a self,
        req: jo_server::shop::payment::ChargeRequest<'a>,
    ) -> jo_server::shop::payment::ChargeFuture<'a> {
        jo_server::shop::payment::SimulatedGateway.charge(req)
    }

    fn charge_now(
        &self,
        req: &jo_server::shop::payment::ChargeRequest<'_>,
    ) -> Option<jo_server::shop::payment::ChargeOutcome> {
        jo_server::shop::payment::SimulatedGateway.charge_now(req)
    }
}

#[tokio::test]
async fn a_seller_refund_the_gateway_refuses_is_tried_again_by_itself_and_made_once() {
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let data = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(data.path().join("data"));
    config.shop.sweep_secs = 1;
    config.shop.payout_retry_secs = 1;
    let gateway = std::sync::Arc::new(RefusingGateway {
        refuse: 2,
        asked: asked.clone(),
    });
    let app = start_with_gateway(config, data, gateway).await;
    let seller = buyer(&app, "vendeur").await;
    let buyer_b = buyer(&app, "acheteur").await;
    let sid = ath01(&app);
    buy(&seller, sid, "Solo", 1).await;
    let code = ticket_ids(&seller).await.remove(0);
    let face = face_of(&app, &code);
    assert_eq!(list(&seller, &code).await, "/tickets/done?notice=listed");
    let id = listings(&buyer_b, sid).await[0];
    let number = order_listing(&buyer_b, sid, id).await;
    assert_redirect_to(
        &pay(&buyer_b, &number, CARD_OK).await,
        &format!("/orders/{number}"),
    );
    let refunded = |app: &TestApp| {
        sql_i64(
            app,
            "SELECT COUNT(*) FROM resale_listings WHERE id = ?1 AND payout_ref LIKE 'sim_re_%'",
            &[&id],
        )
    };
    // Refused right after the sale: still owed, nothing recorded, and the
    // seller sees it pending on their tickets.
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(refunded(&app), 0);
    let resold_line =
        |html: &str| between(html, &format!("id=\"resold-{code}\">"), "</p>").unwrap_or_default();
    let (_, html) = seller.get_text("/tickets").await;
    assert!(
        resold_line(&html).contains("refund-pending"),
        "{}",
        resold_line(&html)
    );
    // With no other sale, the node tries again by itself (1 s, then 2 s)
    // and the third try goes through.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while refunded(&app) == 0 {
        assert!(
            std::time::Instant::now() < until,
            "the refund was never tried again ({} tries)",
            asked.load(std::sync::atomic::Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
    let payout = sql_i64(
        &app,
        "SELECT payout_cents FROM resale_listings WHERE id = ?1",
        &[&id],
    );
    assert_eq!(payout, face - (face * 500 + 5_000) / 10_000);
    let (_, html) = seller.get_text("/tickets").await;
    let line = resold_line(&html);
    assert!(
        line.contains("refund-made") && line.contains(&jo_server::units::money::Cents(payout).fr()),
        "{line}"
    );
    // Made, it is not asked for again.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_ticket_revoked_by_the_organiser_leaves_the_resale_and_its_offer_ends() {
    let app = spawn_app().await;
    let (chef, _) = crate::common::admin::admin(&app).await;
    let seller = buyer(&app, "vendeur").await;
    let other = buyer(&app, "acheteur").await;
    let sid = ath01(&app);
    buy(&seller, sid, "Solo", 2).await;
    let codes = ticket_ids(&seller).await;
    assert_eq!(
        list(&seller, &codes[0]).await,
        "/tickets/done?notice=listed"
    );
    let r = seller
        .submit(
            "/tickets",
            &format!("/tickets/{}/transfer", codes[1]),
            &[("email", "ami@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let pending = |code: &str| {
        sql_i64(
            &app,
            "SELECT count(*) FROM transfers x JOIN tickets t ON t.id = x.ticket
             WHERE t.ticket_id = ?1 AND x.status = 'pending'",
            &[&hex::decode(code).expect("hex")],
        )
    };
    assert_eq!(pending(&codes[1]), 1);
    assert_eq!(listings(&other, sid).await.len(), 1);

    // Both revoked by the organiser, for fraud.
    for code in &codes {
        let page = format!("/admin/tickets/{code}");
        let r = chef
            .submit(
                &page,
                &format!("{page}/revoke"),
                &[("reason", "fraud"), ("note", "revendu hors plateforme")],
            )
            .await;
        assert_redirect_to(&r, &format!("{page}?done=revoked"));
    }
    // The dead code is no longer on sale, and nobody can accept the other.
    assert!(listings(&other, sid).await.is_empty());
    assert_eq!(pending(&codes[1]), 0);
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM transfers WHERE status = 'cancelled' AND decided_at IS NOT NULL",
            &[]
        ),
        1
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM resale_listings WHERE status = 'withdrawn'",
            &[]
        ),
        1
    );
}
