//! A new offer needs no code change: created in the console, it is bought
//! through the shop's own pages right away, and its sale shows on the
//! dashboard.

use crate::common::admin::{admin, offer_named, one_i64};
use crate::common::shop::{buy, buyer};
use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn a_new_offer_is_bought_by_a_buyer_right_after_creation() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let r = chef
        .submit(
            "/admin/offers",
            "/admin/offers",
            &[
                ("name", "Groupe 8"),
                ("seats", "8"),
                ("price_percent", "90"),
                ("active", "1"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/admin/offers?done=created");
    let offer = offer_named(&app, "Groupe 8");

    let b = buyer(&app, "club_nautique").await;
    let session = one_i64(
        &app,
        "SELECT id FROM game_sessions WHERE status = 'scheduled' AND capacity - seats_taken >= 8
         ORDER BY starts_at, id LIMIT 1",
        &[],
    );
    let number = buy(&b, session, "Groupe 8", 1).await;
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM tickets t JOIN orders o ON o.id = t.order_id
             WHERE o.number = ?1 AND t.offer_id = ?2 AND t.admits = 8 AND t.status = 'valid'",
            &[&number, &offer]
        ),
        1,
        "one ticket admitting eight people"
    );
    let base = one_i64(
        &app,
        "SELECT base_price_cents FROM game_sessions WHERE id = ?1",
        &[&session],
    );
    assert_eq!(
        one_i64(
            &app,
            "SELECT total_cents FROM orders WHERE number = ?1",
            &[&number]
        ),
        (base * 8 * 90 + 50) / 100,
        "priced by the offer's rule"
    );

    let (s, html) = chef.get_text("/admin").await;
    assert_eq!(s, StatusCode::OK);
    let chart = between(&html, "id=\"chart-offer-tickets\"", "</figure>").expect("chart");
    assert!(chart.contains("Groupe 8"));
    assert_eq!(
        between(&html, "id=\"kpi-tickets\">", "<").as_deref(),
        Some("1")
    );
}
