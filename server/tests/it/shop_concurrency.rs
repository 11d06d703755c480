//! A rush: 200 buyers check out at the same instant for a session with 10
//! seats left. Exactly 10 get an order, the 190 others a clear "sold out",
//! nobody a 500, and the session is never oversold: on one node, and on two
//! nodes sharing the database (half the buyers through each).

use crate::common::shop::*;
use crate::common::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_simultaneous_checkouts_for_ten_seats_sell_exactly_ten() {
    rush(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_rush_across_two_nodes_sells_exactly_ten() {
    rush(true).await;
}

async fn rush(two_nodes: bool) {
    let app = spawn_app().await;
    let other = if two_nodes {
        Some(second_node(&app).await)
    } else {
        None
    };
    let first = buyer(&app, "template").await;
    let sid = sql_i64(
        &app,
        "SELECT id FROM game_sessions WHERE code = 'TEN10'",
        &[],
    );
    let solo = offer_id(&first, sid, "Solo").await;
    let mut crowd = many_buyers(&app, "template", 200).await;
    if let Some(node) = &other {
        // Every other buyer shops on the second node, from the cart on.
        for b in crowd.iter_mut().skip(1).step_by(2) {
            b.base = node.addr.clone();
        }
    }

    // Everyone has one Solo ticket in the cart.
    let mut tasks = Vec::new();
    for b in crowd {
        tasks.push(tokio::spawn(async move {
            let r = add_to_cart(&b, sid, solo, 1).await;
            assert_redirect_to(&r, "/cart?added=1");
            let (_, html) = b.get_text("/cart").await;
            (b, csrf_of(&html))
        }));
    }
    let mut ready = Vec::new();
    for t in tasks {
        ready.push(t.await.expect("cart task"));
    }
    // 10 seats left.
    db(&app)
        .with(|c| {
            c.execute(
                "UPDATE game_sessions SET seats_taken = capacity - 10 WHERE id = ?1",
                params![sid],
            )
        })
        .expect("capacity");
    let capacity = sql_i64(
        &app,
        "SELECT capacity FROM game_sessions WHERE id = ?1",
        &[&sid],
    );

    // All at once.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(ready.len()));
    let mut tasks = Vec::new();
    for (b, csrf) in ready {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = b
                .client
                .post(b.url("/checkout"))
                .form(&[("csrf", csrf.as_str())])
                .send()
                .await
                .expect("POST /checkout");
            let status = r.status();
            let to = location(&r);
            let body = r.text().await.unwrap_or_default();
            (b, status, to, body)
        }));
    }
    let mut winners = Vec::new();
    let mut sold_out = 0;
    for t in tasks {
        let (b, status, to, body) = t.await.expect("checkout task");
        match status {
            StatusCode::SEE_OTHER => {
                assert!(to.ends_with("/pay"), "{to}");
                winners.push((b, to));
            }
            StatusCode::CONFLICT => {
                assert!(
                    body.contains("complet, il ne reste pas assez de places"),
                    "{body}"
                );
                sold_out += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 10, "exactly 10 orders");
    assert_eq!(sold_out, 190);
    assert_eq!(seats_taken(&app, sid), capacity, "sold out, never oversold");

    // The 10 pay; 10 seats sold, 10 tickets.
    for (b, to) in &winners {
        let number = to
            .trim_start_matches("/orders/")
            .trim_end_matches("/pay")
            .to_owned();
        let r = pay(b, &number, CARD_OK).await;
        assert_redirect_to(&r, &format!("/orders/{number}"));
    }
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM tickets WHERE session_id = ?1",
            &[&sid]
        ),
        10
    );
    assert_eq!(seats_taken(&app, sid), capacity);
}
