//! The admin console in a real browser (headless chromium): an admin logs
//! in with a TOTP code from oathtool, sees the dashboard with its SVG chart
//! (screenshots in target/test-artifacts), and the enrolment QR code on
//! screen reads back (zbarimg) as the scanner's invite.

use crate::common::admin::{
    create_admin, device, first_session, logged_in_buyer, offer_named, paid_order, scan,
};
use crate::common::browser::{Chrome, DESKTOP, PHONE};
use crate::common::*;

#[tokio::test]
async fn admin_logs_in_with_2fa_and_sees_the_dashboard_chart() {
    let app = spawn_app().await;
    create_admin(&app, "chef@example.com", "chef").await;
    // Some sales and scans to draw.
    let (_, buyer) = logged_in_buyer(&app, "curie_m").await;
    let session = first_session(&app);
    for (offer, qty, price) in [("Solo", 5, 5000), ("Duo", 3, 9500), ("Famille", 2, 17000)] {
        paid_order(&app, buyer, session, offer_named(&app, offer), qty, price);
    }
    device(&app, "dev-a", "Laptop A", "Porte A");
    let now = jo_server::units::time::now();
    for i in 0..6 {
        scan(
            &app,
            &format!("s{i}"),
            "dev-a",
            None,
            Some(session),
            "admit",
            None,
            "Porte A",
            now - i * 1800,
            now,
        );
    }

    let chrome = Chrome::start().await;
    let url = |p: &str| format!("{}{p}", app.addr);
    chrome.goto(&url("/login")).await;
    chrome.fill("email", "chef@example.com").await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome.click("form[action='/login'] button").await;
    // An admin must enrol 2FA before anything else.
    chrome.wait_for_path("/account/2fa").await;
    let secret = between(&chrome.source().await, "id=\"totp-secret\">", "<").expect("secret");
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    chrome.fill("code", &oathtool(&secret, 0)).await;
    chrome
        .click("form[action='/account/2fa/enable'] button")
        .await;
    chrome.wait_for("#recovery-codes").await;

    // Log out and in again: password, then the code oathtool computes.
    chrome.click("form[action='/logout'] button").await;
    chrome.wait_for_path("/").await;
    chrome.goto(&url("/login")).await;
    chrome.fill("email", "chef@example.com").await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome.click("form[action='/login'] button").await;
    chrome.wait_for_path("/login/totp").await;
    // The enrolment step is spent: the next step's code (within the drift).
    chrome.fill("code", &oathtool(&secret, 30)).await;
    chrome.click("form[action='/login/totp'] button").await;
    // An admin lands on the console.
    chrome.wait_for_path("/admin").await;
    chrome.wait_for("#chart-offer-tickets svg rect").await;
    let html = chrome.source().await;
    assert!(html.contains("Famille") && html.contains("Tableau de bord"));
    assert_eq!(
        between(&html, "id=\"kpi-tickets\">", "<").as_deref(),
        Some("10")
    );
    let shot = chrome.screenshot("admin-dashboard", DESKTOP).await;
    assert!(std::fs::metadata(&shot).expect("screenshot").len() > 10_000);
    chrome.screenshot("admin-dashboard", PHONE).await;

    chrome.goto(&url("/admin/scans")).await;
    chrome.wait_for("#chart-entries svg rect").await;
    chrome.screenshot("admin-scans", DESKTOP).await;

    // The enrolment QR on screen reads back as the scanner's invite.
    chrome.goto(&url("/admin/devices")).await;
    chrome
        .click("form[action='/admin/devices/codes'] button")
        .await;
    chrome.wait_for("#enrol-qr svg").await;
    let code = between(&chrome.source().await, "id=\"enrol-code\">", "<").expect("code");
    let shot = chrome.screenshot("admin-enrolment", DESKTOP).await;
    let zbar = std::process::Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&shot)
        .output()
        .expect("zbarimg is needed for this test: apt-get install zbar-tools");
    let decoded = String::from_utf8_lossy(&zbar.stdout);
    let invite = jo_shared::api::EnrollmentInvite::parse(decoded.trim()).expect("an enrolment QR");
    assert_eq!(invite.code, code);
    chrome.close().await;
}
