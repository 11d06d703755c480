//! Object-level access control: a buyer never sees another buyer's order,
//! ticket, QR code or PDF (404 whatever id is tried), and a visitor must log in.

use crate::common::shop::*;
use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn another_buyer_gets_404_on_every_order_and_ticket_route() {
    let app = spawn_app().await;
    let alice = buyer(&app, "alice").await;
    let mallory = buyer(&app, "mallory").await;
    let sid = session_ids(&alice, "").await[0];
    let paid = buy(&alice, sid, "Duo", 1).await;
    let ticket = ticket_ids(&alice).await.remove(0);
    // And a pending order of Alice's.
    let solo = offer_id(&alice, sid, "Solo").await;
    add_to_cart(&alice, sid, solo, 1).await;
    let pending = order_of_redirect(&checkout(&alice).await);

    let owned = [
        format!("/orders/{paid}"),
        format!("/orders/{paid}/tickets.pdf"),
        format!("/orders/{pending}"),
        format!("/orders/{pending}/pay"),
        format!("/tickets/{ticket}/qr.png"),
        format!("/tickets/{ticket}/ticket.pdf"),
    ];
    for path in &owned {
        let (status, _) = alice.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "{path} for its owner");
        let (status, body) = mallory.get_text(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} for another buyer");
        assert!(!body.contains(&paid) && !body.contains(&ticket));
        // A visitor is sent to log in, and learns nothing.
        let r = Browser::new(&app).get(path).await;
        assert_redirect_to(&r, "/login");
    }
    // Mallory cannot pay (or learn about) Alice's pending order either.
    let (_, page) = mallory.get_text("/cart").await;
    let csrf = csrf_of(&page);
    let r = post_pay(&mallory, &pending, &csrf, &"k".repeat(43), CARD_OK).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(order_status(&app, &pending), "pending");
    // Mallory's "Mes billets" shows none of Alice's.
    assert!(ticket_ids(&mallory).await.is_empty());
    let (_, html) = mallory.get_text("/tickets").await;
    assert!(!html.contains(&paid) && !html.contains(&ticket));

    // Malformed and guessed ids: 404, never a 500.
    for path in [
        "/orders/XXXXX-XXXXX",
        "/orders/..%2F..%2Fetc",
        "/orders/1",
        "/orders/%27%20OR%201=1--/pay",
        "/tickets/00000000000000000000/qr.png",
        "/tickets/zz/qr.png",
        "/tickets/1/ticket.pdf",
        "/orders/AAAAA-AAAAA/tickets.pdf",
    ] {
        let (status, _) = mallory.get_text(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}
