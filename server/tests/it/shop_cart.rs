//! The cart: anonymous and logged-in, kept at login, quantities and removal,
//! clear messages for a sold-out session or an inactive offer, hostile input.

use crate::common::shop::*;
use crate::common::*;
use reqwest::StatusCode;

async fn first_session(app: &TestApp) -> i64 {
    session_ids(&Browser::new(app), "").await[0]
}

#[tokio::test]
async fn a_visitor_fills_a_cart_that_is_kept_when_they_log_in() {
    let app = spawn_app().await;
    let sid = first_session(&app).await;
    let email = "anna@example.com";
    let b = registered_user(&app, "anna", email).await;
    b.logout().await;

    let duo = offer_id(&b, sid, "Duo").await;
    let r = add_to_cart(&b, sid, duo, 2).await;
    assert_redirect_to(&r, "/cart?added=1");
    let (_, html) = b.get_text("/cart").await;
    assert!(
        html.contains("Duo") && html.contains("value=\"2\""),
        "{html}"
    );
    assert!(
        !html.contains("id=\"checkout\""),
        "a visitor must log in to check out"
    );
    // Adding again adds up.
    add_to_cart(&b, sid, duo, 1).await;
    let (_, html) = b.get_text("/cart").await;
    assert!(html.contains("value=\"3\""));

    // Checkout without an account goes to the login page.
    let r = checkout(&b).await;
    assert_redirect_to(&r, "/login");

    let r = b.login(email, GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/");
    let (_, html) = b.get_text("/cart").await;
    assert!(
        html.contains("Duo") && html.contains("value=\"3\""),
        "cart kept at login"
    );
    assert!(html.contains("id=\"checkout\""));
    // The visitor's cart is gone (merged, not copied).
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM carts WHERE user_id IS NULL",
            &[]
        ),
        0
    );
}

#[tokio::test]
async fn quantities_change_and_lines_are_removed() {
    let app = spawn_app().await;
    let b = buyer(&app, "bob").await;
    let sid = first_session(&app).await;
    let solo = offer_id(&b, sid, "Solo").await;
    let fam = offer_id(&b, sid, "Famille").await;
    add_to_cart(&b, sid, solo, 1).await;
    add_to_cart(&b, sid, fam, 1).await;
    let (sid_s, solo_s, fam_s) = (sid.to_string(), solo.to_string(), fam.to_string());
    let r = b
        .submit(
            "/cart",
            "/cart/update",
            &[
                ("session_id", &sid_s),
                ("offer_id", &solo_s),
                ("quantity", "4"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/cart?updated=1");
    let (_, html) = b.get_text("/cart").await;
    assert!(html.contains("value=\"4\""));
    let r = b
        .submit(
            "/cart",
            "/cart/remove",
            &[("session_id", &sid_s), ("offer_id", &fam_s)],
        )
        .await;
    assert_redirect_to(&r, "/cart?updated=1");
    let (_, html) = b.get_text("/cart").await;
    assert!(!html.contains("Famille"));
    // Quantity 0 removes the line too.
    b.submit(
        "/cart",
        "/cart/update",
        &[
            ("session_id", &sid_s),
            ("offer_id", &solo_s),
            ("quantity", "0"),
        ],
    )
    .await;
    let (_, html) = b.get_text("/cart").await;
    assert!(html.contains("Votre panier est vide"));
    // An empty cart cannot be checked out.
    let r = checkout(&b).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn hostile_cart_input_is_refused_cleanly() {
    let app = spawn_app().await;
    let b = buyer(&app, "eve").await;
    let sid = first_session(&app).await.to_string();
    let solo = offer_id(&b, sid.parse().expect("id"), "Solo")
        .await
        .to_string();
    for (s, o, q) in [
        (sid.as_str(), solo.as_str(), "11"),
        (&sid, &solo, "-1"),
        (&sid, &solo, "abc"),
        (&sid, &solo, "99999999999999999999"),
        ("abc", &solo, "1"),
        (&sid, "1 OR 1=1", "1"),
        ("0", &solo, "1"),
    ] {
        let r = b
            .submit(
                "/cart",
                "/cart/add",
                &[("session_id", s), ("offer_id", o), ("quantity", q)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{s} {o} {q}");
    }
    // Unknown session or offer: back to the session with a reason, no line.
    let r = b
        .submit(
            "/cart",
            "/cart/add",
            &[
                ("session_id", "999999"),
                ("offer_id", &solo),
                ("quantity", "1"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/sessions/999999?refused=closed");
    let r = b
        .submit(
            "/cart",
            "/cart/add",
            &[
                ("session_id", &sid),
                ("offer_id", "999999"),
                ("quantity", "1"),
            ],
        )
        .await;
    assert_redirect_to(&r, &format!("/sessions/{sid}?refused=offer"));
    assert_eq!(sql_i64(&app, "SELECT count(*) FROM cart_lines", &[]), 0);
    // Without the CSRF token: refused.
    let r = b
        .client
        .post(b.url("/cart/add"))
        .form(&[
            ("session_id", sid.as_str()),
            ("offer_id", &solo),
            ("quantity", "1"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sold_out_sessions_and_inactive_offers_say_so() {
    let app = spawn_app().await;
    let b = buyer(&app, "carl").await;
    let sid = first_session(&app).await;
    let solo = offer_id(&b, sid, "Solo").await;
    let fam = offer_id(&b, sid, "Famille").await;
    add_to_cart(&b, sid, solo, 1).await;
    add_to_cart(&b, sid, fam, 1).await;

    // The Famille offer is withdrawn after it went into the cart.
    db(&app)
        .with(|c| c.execute("UPDATE offers SET active = 0 WHERE id = ?1", params![fam]))
        .expect("update");
    let (_, html) = b.get_text("/cart").await;
    assert!(html.contains("plus proposée"), "{html}");
    assert!(!html.contains("id=\"checkout\""));
    let r = checkout(&b).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.expect("body");
    assert!(html.contains("plus proposée"));
    // Adding an inactive offer is refused with its reason.
    let r = add_to_cart(&b, sid, fam, 1).await;
    assert_redirect_to(&r, &format!("/sessions/{sid}?refused=offer"));
    let (_, html) = b.get_text(&location(&r)).await;
    assert!(html.contains("plus proposée"));
    b.submit(
        "/cart",
        "/cart/remove",
        &[
            ("session_id", &sid.to_string()),
            ("offer_id", &fam.to_string()),
        ],
    )
    .await;

    // Now the session sells out.
    db(&app)
        .with(|c| {
            c.execute(
                "UPDATE game_sessions SET seats_taken = capacity WHERE id = ?1",
                params![sid],
            )
        })
        .expect("update");
    let (_, html) = b.get_text("/cart").await;
    assert!(html.contains("complet, il ne reste pas assez de places"));
    let r = checkout(&b).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("complet") && html.contains("Places restantes : 0"),
        "{html}"
    );
    let (_, html) = b.get_text(&format!("/sessions/{sid}")).await;
    assert!(html.contains("Complet"));
    let r = add_to_cart(&b, sid, solo, 1).await;
    assert_redirect_to(&r, &format!("/sessions/{sid}?refused=sold_out"));
    assert_eq!(sql_i64(&app, "SELECT count(*) FROM orders", &[]), 0);
}

#[tokio::test]
async fn pending_orders_per_buyer_are_capped() {
    let app = spawn_app_with(|c| c.shop.max_pending_orders = 2).await;
    let b = buyer(&app, "hoarder").await;
    let sid = first_session(&app).await;
    let solo = offer_id(&b, sid, "Solo").await;
    for _ in 0..2 {
        add_to_cart(&b, sid, solo, 1).await;
        order_of_redirect(&checkout(&b).await);
    }
    // A third unpaid order while two still hold seats: refused, nothing held.
    add_to_cart(&b, sid, solo, 1).await;
    let taken = sql_i64(
        &app,
        "SELECT seats_taken FROM game_sessions WHERE id = ?1",
        &[&sid],
    );
    let r = checkout(&b).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("commandes en attente de paiement") && html.contains(" 2"),
        "{html}"
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM orders WHERE status = 'pending'",
            &[]
        ),
        2
    );
    assert_eq!(
        sql_i64(
            &app,
            "SELECT seats_taken FROM game_sessions WHERE id = ?1",
            &[&sid]
        ),
        taken
    );
    // Once a hold has expired, the buyer may order again.
    db(&app)
        .with(|c| {
            c.execute(
                "UPDATE orders SET hold_expires_at = 0 WHERE id = (SELECT min(id) FROM orders)",
                params![],
            )
        })
        .expect("update");
    order_of_redirect(&checkout(&b).await);
}

#[tokio::test]
async fn seats_held_per_buyer_are_capped() {
    let app = spawn_app_with(|c| c.shop.max_held_seats = 10).await;
    let b = buyer(&app, "grand_groupe").await;
    let sid = first_session(&app).await;
    let solo = offer_id(&b, sid, "Solo").await;
    let fam = offer_id(&b, sid, "Famille").await;
    // Three Famille tickets are 12 seats: more than one buyer may hold.
    add_to_cart(&b, sid, fam, 3).await;
    let r = checkout(&b).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("places à la fois") && html.contains(" 10"),
        "{html}"
    );
    assert_eq!(sql_i64(&app, "SELECT count(*) FROM orders", &[]), 0);
    // Eight seats, then three more (eleven held): the second is refused.
    let (sid_s, fam_s) = (sid.to_string(), fam.to_string());
    b.submit(
        "/cart",
        "/cart/update",
        &[
            ("session_id", &sid_s),
            ("offer_id", &fam_s),
            ("quantity", "2"),
        ],
    )
    .await;
    order_of_redirect(&checkout(&b).await);
    add_to_cart(&b, sid, solo, 3).await;
    assert_eq!(checkout(&b).await.status(), StatusCode::CONFLICT);
    let solo_s = solo.to_string();
    b.submit(
        "/cart",
        "/cart/update",
        &[
            ("session_id", &sid_s),
            ("offer_id", &solo_s),
            ("quantity", "2"),
        ],
    )
    .await;
    order_of_redirect(&checkout(&b).await);
    assert_eq!(
        sql_i64(
            &app,
            "SELECT sum(l.seats * l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id
             WHERE o.status = 'pending'",
            &[]
        ),
        10
    );
}

#[tokio::test]
async fn a_cart_merged_at_login_keeps_the_line_and_quantity_caps() {
    let app = spawn_app().await;
    let email = "fusion@example.com";
    let b = registered_user(&app, "fusion", email).await;
    assert_redirect_to(&b.login(email, GOOD_PASSWORD).await, "/");
    let sessions = session_ids(&b, "").await;
    assert!(sessions.len() >= 7, "enough sessions in the fixtures");
    // The buyer's own cart: ten lines (the most), one of them at ten tickets.
    let mut lines = Vec::new();
    for &sid in &sessions[..5] {
        for name in ["Solo", "Duo"] {
            lines.push((sid, offer_id(&b, sid, name).await));
        }
    }
    for &(sid, offer) in &lines {
        assert_redirect_to(&add_to_cart(&b, sid, offer, 1).await, "/cart?added=1");
    }
    let (first_sid, first_offer) = lines[0];
    add_to_cart(&b, first_sid, first_offer, 9).await;
    b.logout().await;

    // As a visitor, the same browser fills another cart: three new lines
    // and five more of the line already at ten.
    for &sid in &sessions[5..7] {
        let fam = offer_id(&b, sid, "Famille").await;
        add_to_cart(&b, sid, fam, 2).await;
    }
    let fam = offer_id(&b, sessions[0], "Famille").await;
    add_to_cart(&b, sessions[0], fam, 1).await;
    add_to_cart(&b, first_sid, first_offer, 5).await;

    assert_redirect_to(&b.login(email, GOOD_PASSWORD).await, "/");
    let (status, _) = b.get_text("/cart").await;
    assert_eq!(status, StatusCode::OK);
    let user_lines = |sql: &str| {
        sql_i64(
            &app,
            &format!(
                "SELECT {sql} FROM cart_lines l JOIN carts c ON c.id = l.cart_id
                 JOIN users u ON u.id = c.user_id WHERE u.email = ?1"
            ),
            &[&email],
        )
    };
    assert_eq!(user_lines("count(*)"), 10, "the line cap holds at login");
    assert_eq!(user_lines("max(l.quantity)"), 10, "the quantity cap holds");
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM carts WHERE user_id IS NULL",
            &[]
        ),
        0
    );
}

#[tokio::test]
async fn adding_zero_tickets_is_refused_and_adds_nothing() {
    let app = spawn_app().await;
    let b = buyer(&app, "zero").await;
    let sid = first_session(&app).await;
    let solo = offer_id(&b, sid, "Solo").await;
    let (sid_s, solo_s) = (sid.to_string(), solo.to_string());
    for q in ["0", "-0", "+0", " 0 ", "00"] {
        let r = b
            .submit(
                &format!("/sessions/{sid}"),
                "/cart/add",
                &[
                    ("session_id", &sid_s),
                    ("offer_id", &solo_s),
                    ("quantity", q),
                ],
            )
            .await;
        assert_redirect_to(&r, &format!("/sessions/{sid}?refused=quantity"));
        let (_, html) = b.get_text(&location(&r)).await;
        assert!(
            html.contains("Choisissez entre 1 et 10 billets"),
            "{q:?}: {html}"
        );
    }
    assert_eq!(sql_i64(&app, "SELECT count(*) FROM cart_lines", &[]), 0);
}
