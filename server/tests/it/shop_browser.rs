//! Through real pages in headless chromium: a buyer browses the sessions,
//! buys a Famille ticket, pays with the test card and finds it in "Mes
//! billets"; a screenshot of that page is decoded by `zbarimg`.

use crate::common::browser::{Chrome, DESKTOP, PHONE};
use crate::common::shop::*;
use crate::common::*;

#[tokio::test]
async fn a_famille_ticket_is_bought_through_the_pages() {
    let app = spawn_app().await;
    let email = "lea@example.com";
    registered_user(&app, "lea", email).await;
    let chrome = Chrome::start().await;
    let url = |p: &str| format!("{}{p}", app.addr);

    chrome.goto(&url("/")).await;
    chrome.screenshot("shop-home", PHONE).await;
    chrome.screenshot("shop-home", DESKTOP).await;
    chrome.click("a.button[href='/sessions']").await;
    chrome.wait_for_path("/sessions").await;
    chrome.screenshot("shop-sessions", PHONE).await;
    chrome.screenshot("shop-sessions", DESKTOP).await;

    // Filter by sport, then open the first session.
    let sid = sql_i64(
        &app,
        "SELECT id FROM game_sessions WHERE code = 'ATH01'",
        &[],
    );
    let sport = sql_i64(
        &app,
        "SELECT sport_id FROM game_sessions WHERE id = ?1",
        &[&sid],
    );
    chrome.goto(&url(&format!("/sessions?sport={sport}"))).await;
    chrome.click(&format!("a[href='/sessions/{sid}']")).await;
    chrome.wait_for_path(&format!("/sessions/{sid}")).await;
    chrome.screenshot("shop-session", PHONE).await;
    chrome.click("#add-famille").await;
    chrome.wait_for_path("/cart").await;
    chrome.screenshot("shop-cart-visitor", PHONE).await;
    assert!(chrome.source().await.contains("Famille"));

    // Log in: the cart is kept.
    chrome.goto(&url("/login")).await;
    chrome.fill("email", email).await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome
        .click("form[action='/login'] button[type=submit]")
        .await;
    chrome.wait_for_path("/").await;
    chrome.goto(&url("/cart")).await;
    chrome.wait_for("#checkout").await;
    chrome.screenshot("shop-cart", DESKTOP).await;
    chrome.click("#checkout").await;
    chrome.wait_for("#pay").await;
    chrome.screenshot("shop-pay", PHONE).await;
    chrome.screenshot("shop-pay", DESKTOP).await;
    chrome.fill("card_number", CARD_OK).await;
    chrome.fill("card_expiry", "12/39").await;
    chrome.fill("card_cvv", "123").await;
    chrome.click("#pay").await;
    chrome.wait_for(".alert-success").await;
    assert!(chrome.source().await.contains("Paiement accepté"));
    chrome.screenshot("shop-order", PHONE).await;

    chrome.goto(&url("/tickets")).await;
    chrome.wait_for(".ticket-qr img").await;
    // Let the QR image load before the screenshot.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let html = chrome.source().await;
    assert!(html.contains("Marie Curie") && html.contains("Famille"));
    chrome.screenshot("shop-tickets", PHONE).await;
    // At phone width: the code comes first and is large, the details under it.
    let layout = chrome
        .client
        .execute(
            "const img = document.querySelector('.ticket-qr img').getBoundingClientRect();
             const info = document.querySelector('.ticket-info').getBoundingClientRect();
             return [img.width, img.bottom, info.top, document.documentElement.clientWidth];",
            vec![],
        )
        .await
        .expect("measures");
    let m: Vec<f64> = serde_json::from_value(layout).expect("numbers");
    assert_eq!(m[3], 390.0, "viewport width");
    assert!(m[0] >= 280.0, "the QR is {} px wide at 390", m[0]);
    assert!(m[1] <= m[2], "the QR is above the details: {m:?}");
    // A tap enlarges it to the screen's width, with no script.
    chrome.click(".qr-open").await;
    let full = chrome
        .client
        .execute(
            "const f = document.querySelector('.qr-full:target');
             return f ? [getComputedStyle(f).display, f.querySelector('img').getBoundingClientRect().width] : null;",
            vec![],
        )
        .await
        .expect("measures");
    let (display, width): (String, f64) = serde_json::from_value(full).expect("the view opens");
    assert_eq!(display, "flex");
    assert!(width >= 340.0, "the enlarged QR is {width} px wide");
    chrome.screenshot("shop-ticket-enlarged", PHONE).await;
    chrome.click(".qr-full a.button").await;
    let shot = chrome.screenshot("shop-tickets", DESKTOP).await;
    let codes = zbar(&shot);
    assert_eq!(codes.len(), 1, "zbarimg reads the QR on the screenshot");
    let p = verify_ticket(&app, &codes[0]);
    assert_eq!(p.admits, 4);
    assert_eq!(p.holder, jo_shared::HolderName::shorten("Marie Curie"));
    assert_eq!(i64::from(p.session_id), sid);
    chrome.close().await;
}
