//! Accessibility in a real browser (headless chromium): axe-core (npm, in
//! target/node_modules) on every shop and console page at 390 and 1280 px,
//! no critical and no serious violation; and the keyboard: Tab reaches every
//! control of a page, each with a visible focus ring (≥ 2 px, ≥ 3:1).

use crate::common::admin::{
    create_admin, device, first_session, offer_named, one_i64, paid_order, scan,
};
use crate::common::browser::{Chrome, DESKTOP, PHONE};
use crate::common::*;

/// Logs the admin in through the pages, enrolling the second factor with
/// oathtool's codes, and leaves the browser on the console.
async fn admin_in(chrome: &Chrome, url: &dyn Fn(&str) -> String) {
    chrome.goto(&url("/login")).await;
    chrome.fill("email", "chef@example.com").await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome.click("form[action='/login'] button").await;
    chrome.wait_for_path("/account/2fa").await;
    chrome.assert_accessible("/account/2fa (enrolment)").await;
    let secret = between(&chrome.source().await, "id=\"totp-secret\">", "<").expect("secret");
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    chrome.fill("code", &oathtool(&secret, 0)).await;
    chrome
        .click("form[action='/account/2fa/enable'] button")
        .await;
    chrome.wait_for("#recovery-codes").await;
    chrome.assert_accessible("recovery codes").await;
    chrome.click("form[action='/logout'] button").await;
    chrome.wait_for_path("/").await;
    chrome.goto(&url("/login")).await;
    chrome.fill("email", "chef@example.com").await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome.click("form[action='/login'] button").await;
    chrome.wait_for_path("/login/totp").await;
    chrome.assert_accessible("/login/totp").await;
    chrome.fill("code", &oathtool(&secret, 30)).await;
    chrome.click("form[action='/login/totp'] button").await;
    chrome.wait_for_path("/admin").await;
}

#[tokio::test]
async fn every_shop_and_console_page_passes_axe_at_phone_and_desktop_width() {
    let app = spawn_app().await;
    create_admin(&app, "chef@example.com", "chef").await;
    let email = "lea@example.com";
    registered_user(&app, "lea", email).await;
    let buyer = one_i64(&app, "SELECT id FROM users WHERE email = ?1", &[&email]);
    let session = first_session(&app);
    let famille = offer_named(&app, "Famille");
    let (order, tickets) = paid_order(&app, buyer, session, famille, 1, 17000);
    device(&app, "dev-a", "Laptop A", "Porte A");
    let now = jo_server::units::time::now();
    for (i, verdict) in ["admit", "admit", "refuse"].iter().enumerate() {
        let i = i64::try_from(i).expect("small");
        scan(
            &app,
            &format!("s{i}"),
            "dev-a",
            None,
            Some(session),
            verdict,
            (*verdict == "refuse").then_some("revoked"),
            "Porte A",
            now - i * 1800,
            now,
        );
    }

    let chrome = Chrome::start().await;
    let url = |p: &str| format!("{}{p}", app.addr);

    // The harness sees a fault: an image without a text alternative,
    // added to the page, is a critical violation.
    chrome.goto(&url("/")).await;
    chrome
        .client
        .execute(
            "const i = document.createElement('img'); i.src = '/static/logo.svg'; document.querySelector('main').appendChild(i);",
            vec![],
        )
        .await
        .expect("adds an image");
    let found = chrome.axe().await;
    assert!(
        found
            .iter()
            .any(|v| v.id == "image-alt" && v.impact.as_deref() == Some("critical")),
        "axe-core runs and reports: {found:?}"
    );

    // A visitor.
    for page in [
        "/".to_owned(),
        "/sessions".to_owned(),
        format!("/sessions/{session}"),
        "/login".to_owned(),
        "/register".to_owned(),
        "/password/forgot".to_owned(),
        "/cart".to_owned(),
        "/no-such-page".to_owned(),
    ] {
        chrome.goto(&url(&page)).await;
        chrome.assert_accessible(&page).await;
    }
    // A form sent back with its errors.
    chrome.goto(&url("/login")).await;
    chrome.fill("email", "lea@example.com").await;
    chrome.fill("password", "not the password").await;
    chrome
        .click("form[action='/login'] button[type=submit]")
        .await;
    chrome.wait_for(".alert-error, .error").await;
    chrome.assert_accessible("/login with an error").await;

    // A buyer: cart, payment, tickets, orders, account.
    chrome.fill("email", email).await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome
        .click("form[action='/login'] button[type=submit]")
        .await;
    chrome.wait_for_path("/").await;
    chrome.goto(&url(&format!("/sessions/{session}"))).await;
    chrome.click("#add-famille").await;
    chrome.wait_for_path("/cart").await;
    chrome.assert_accessible("/cart with a line").await;
    chrome.click("#checkout").await;
    chrome.wait_for("#pay").await;
    chrome.assert_accessible("the payment page").await;
    for page in [
        "/tickets".to_owned(),
        format!("/orders/{order}"),
        "/account".to_owned(),
        "/account/2fa".to_owned(),
    ] {
        chrome.goto(&url(&page)).await;
        chrome.assert_accessible(&page).await;
    }
    chrome.goto(&url("/")).await;
    chrome.click("form[action='/logout'] button").await;
    chrome.wait_for_path("/").await;

    // The console.
    admin_in(&chrome, &url).await;
    let offer = famille;
    for page in [
        "/admin".to_owned(),
        "/admin/offers".to_owned(),
        format!("/admin/offers/{offer}"),
        "/admin/sessions".to_owned(),
        "/admin/sessions/new".to_owned(),
        format!("/admin/sessions/{session}"),
        "/admin/orders".to_owned(),
        "/admin/orders?q=lea".to_owned(),
        format!("/admin/orders/{order}"),
        format!("/admin/tickets/{}", tickets[0]),
        "/admin/devices".to_owned(),
        "/admin/scans".to_owned(),
        "/admin/audit".to_owned(),
    ] {
        chrome.goto(&url(&page)).await;
        chrome.assert_accessible(&page).await;
    }
    // The charts' text, as rendered, at both widths.
    for page in ["/admin", "/admin/scans"] {
        chrome.goto(&url(page)).await;
        for size in [PHONE, DESKTOP] {
            let (texts, smallest) = chart_text_px(&chrome, size).await;
            assert!(texts > 0, "{page} at {} px draws chart text", size.0);
            assert!(
                smallest >= 12.0,
                "{page} at {} px: chart text as small as {smallest:.1} px",
                size.0
            );
        }
    }
    // The dashboard's charts on a phone, to look at.
    chrome.goto(&url("/admin")).await;
    chrome
        .client
        .set_window_size(PHONE.0, PHONE.1)
        .await
        .expect("resizes");
    chrome
        .client
        .execute(
            "document.getElementById('offers-h').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scrolls");
    chrome.screenshot("admin-dashboard-charts", PHONE).await;
    // The enrolment code and its QR.
    chrome.goto(&url("/admin/devices")).await;
    chrome
        .click("form[action='/admin/devices/codes'] button")
        .await;
    chrome.wait_for("#enrol-qr svg").await;
    chrome.assert_accessible("a new enrolment code").await;
    chrome.close().await;
}

/// How many chart texts are shown at window `size`, and the smallest of
/// their sizes as rendered (the SVG's font size times its scale), in px.
async fn chart_text_px(chrome: &Chrome, size: (u32, u32)) -> (usize, f64) {
    chrome
        .client
        .set_window_size(size.0, size.1)
        .await
        .expect("resizes");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let v = chrome
        .client
        .execute(
            "let n = 0, min = 1e9;
             for (const svg of document.querySelectorAll('.chart svg')) {
                 const r = svg.getBoundingClientRect();
                 if (getComputedStyle(svg).display === 'none' || r.width === 0) continue;
                 const scale = r.width / svg.viewBox.baseVal.width;
                 for (const t of svg.querySelectorAll('text')) {
                     if (!t.textContent.trim()) continue;
                     n += 1;
                     min = Math.min(min, parseFloat(t.getAttribute('font-size')) * scale);
                 }
             }
             return [n, min];",
            vec![],
        )
        .await
        .expect("measures the charts");
    let (n, min): (usize, f64) = serde_json::from_value(v).expect("numbers");
    (n, min)
}

/// Tab from the top of `page`: every control is reached, and each focus
/// shows a ring at least 2 px wide with at least 3:1 contrast.
async fn keyboard_reaches_everything(chrome: &Chrome, page: &str, size: (u32, u32)) {
    chrome
        .client
        .set_window_size(size.0, size.1)
        .await
        .expect("resizes");
    let report = chrome.tab_through(400).await;
    assert!(!report.controls.is_empty(), "{page} has controls");
    let missed: Vec<&String> = report
        .controls
        .iter()
        .zip(&report.reached)
        .filter(|(_, r)| !**r)
        .map(|(c, _)| c)
        .collect();
    assert!(
        missed.is_empty(),
        "{page} at {} px: Tab never reaches {missed:?}",
        size.0
    );
    for ring in &report.rings {
        assert!(
            ring.width >= 2.0 && ring.contrast >= 3.0,
            "{page} at {} px: the focus on {:?} is not visible enough ({} px, {:.2}:1)",
            size.0,
            ring.name,
            ring.width,
            ring.contrast
        );
    }
}

#[tokio::test]
async fn tab_reaches_every_control_with_a_visible_focus_ring() {
    let app = spawn_app().await;
    create_admin(&app, "chef@example.com", "chef").await;
    let session = first_session(&app);
    let chrome = Chrome::start().await;
    let url = |p: &str| format!("{}{p}", app.addr);
    for page in [
        "/".to_owned(),
        "/sessions".to_owned(),
        format!("/sessions/{session}"),
        "/login".to_owned(),
        "/register".to_owned(),
    ] {
        for size in [PHONE, DESKTOP] {
            chrome.goto(&url(&page)).await;
            keyboard_reaches_everything(&chrome, &page, size).await;
        }
    }
    admin_in(&chrome, &url).await;
    for page in [
        "/admin",
        "/admin/sessions/new",
        "/admin/scans",
        "/admin/audit",
    ] {
        for size in [PHONE, DESKTOP] {
            chrome.goto(&url(page)).await;
            keyboard_reaches_everything(&chrome, page, size).await;
        }
    }
    chrome.close().await;
}
