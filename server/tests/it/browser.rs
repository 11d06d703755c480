//! Through real pages in headless chromium: register, confirm the address,
//! log in, enrol two-factor authentication from the QR code on screen;
//! screenshots at phone and desktop widths go to target/test-artifacts/.

use crate::common::browser::{Chrome, DESKTOP, PHONE};
use crate::common::*;

#[tokio::test]
async fn register_and_log_in_through_the_browser() {
    let app = spawn_app().await;
    let chrome = Chrome::start().await;
    let url = |p: &str| format!("{}{p}", app.addr);

    chrome.goto(&url("/")).await;
    chrome.screenshot("home", PHONE).await;
    chrome.screenshot("home", DESKTOP).await;

    // Registration, with one mistake first: the error shows next to the field.
    chrome.goto(&url("/register")).await;
    chrome.screenshot("register", PHONE).await;
    chrome.fill("username", "lea_b").await;
    chrome.fill("email", "lea@example.com").await;
    chrome.fill("first_name", "Léa").await;
    chrome.fill("last_name", "Bernard").await;
    chrome.fill("password", "motdepasse12").await;
    chrome.fill("password_confirm", "motdepasse12").await;
    chrome
        .click("form[action='/register'] button[type=submit]")
        .await;
    chrome.wait_for("#password-error").await;
    assert!(chrome.source().await.contains("aria-invalid=\"true\""));
    chrome.screenshot("register-error", PHONE).await;
    chrome.screenshot("register-error", DESKTOP).await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome.fill("password_confirm", GOOD_PASSWORD).await;
    chrome
        .click("form[action='/register'] button[type=submit]")
        .await;
    chrome.wait_for_path("/register/done").await;

    // The link from the mail, then the confirmation button.
    let token = link_token(
        &outbox_mail(&app, "lea@example.com", 0).await,
        "/verify-email",
    );
    chrome
        .goto(&url(&format!("/verify-email?token={token}")))
        .await;
    chrome.click("form[action='/verify-email'] button").await;
    chrome.wait_for(".alert-success").await;
    let html = chrome.source().await;
    assert!(html.contains("Votre adresse est confirmée"), "{html}");

    // Login.
    chrome.goto(&url("/login")).await;
    chrome.screenshot("login", PHONE).await;
    chrome.screenshot("login", DESKTOP).await;
    chrome.fill("email", "lea@example.com").await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome.click("form[action='/login'] button").await;
    chrome.wait_for_path("/").await;
    assert!(
        chrome.source().await.contains("lea_b"),
        "logged in: name in the navigation"
    );
    chrome.screenshot("home-logged-in", PHONE).await;
    chrome.goto(&url("/account")).await;
    chrome.screenshot("account", PHONE).await;
    chrome.screenshot("account", DESKTOP).await;

    // Two-factor enrolment: the QR code on screen decodes (zbarimg) to an
    // otpauth URL holding the secret shown beside it.
    chrome.goto(&url("/account/2fa")).await;
    let shot = chrome.screenshot("totp-enrol", DESKTOP).await;
    chrome.screenshot("totp-enrol", PHONE).await;
    let html = chrome.source().await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret on the page");
    let zbar = std::process::Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&shot)
        .output()
        .expect("zbarimg is needed for this test: apt-get install zbar-tools");
    let decoded = String::from_utf8_lossy(&zbar.stdout);
    assert!(
        decoded.starts_with("otpauth://totp/"),
        "QR decodes to {decoded:?}"
    );
    assert!(
        decoded.contains(&format!("secret={secret}")),
        "QR holds the secret: {decoded}"
    );
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    chrome.fill("code", &oathtool(&secret, 0)).await;
    chrome
        .click("form[action='/account/2fa/enable'] button")
        .await;
    chrome.wait_for_path("/account/2fa/enable").await;
    assert!(chrome.source().await.contains("id=\"recovery-codes\""));
    chrome.screenshot("recovery-codes", PHONE).await;

    // Logout through the navigation's button; the language switch works.
    chrome.click("form[action='/logout'] button").await;
    chrome.wait_for_path("/").await;
    assert!(!chrome.source().await.contains("lea_b"));
    chrome.click("a[hreflang=en]").await;
    chrome.wait_for_path("/").await;
    assert!(
        chrome
            .source()
            .await
            .contains("Welcome to the ticket office")
    );
    chrome.screenshot("home-en", PHONE).await;
    chrome.close().await;
}
