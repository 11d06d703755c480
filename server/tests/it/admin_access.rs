//! Who may use the admin console: one table-driven test over every admin
//! route (taken from the router's own table, so a new route is covered the
//! day it is added): anonymous visitors go to the login page, buyers get
//! 403, an admin without 2FA goes to enrolment, an admin with 2FA gets in.

use crate::common;

use crate::common::admin::{admin, create_admin, logged_in_buyer, sample_path};
use crate::common::*;
use reqwest::StatusCode;

/// Requests `path` as `b`; a POST carries a valid CSRF token taken from
/// `page`, so that the guard is what answers.
async fn send(b: &Browser, method: &str, path: &str, page: &str) -> reqwest::Response {
    match method {
        "GET" => b.get(path).await,
        "POST" => {
            b.submit(page, path, &[("active", "1"), ("confirm", "1")])
                .await
        }
        other => panic!("unexpected method {other} in the route table"),
    }
}

#[tokio::test]
async fn every_admin_route_refuses_buyers_and_anonymous_visitors() {
    let app = spawn_app().await;
    let routes = jo_server::web::admin::ROUTES;
    assert!(routes.len() >= 20, "the route table lists the console");
    assert!(routes.contains(&("GET", "/admin")));

    let anonymous = Browser::new(&app);
    let (buyer, _) = logged_in_buyer(&app, "acheteuse").await;
    // An admin who has not enrolled 2FA yet.
    create_admin(&app, "novice@example.com", "novice").await;
    let novice = Browser::new(&app);
    assert_redirect_to(
        &novice.login("novice@example.com", GOOD_PASSWORD).await,
        "/account/2fa",
    );

    for &(method, pattern) in routes {
        let path = sample_path(pattern);
        assert!(path.starts_with("/admin"), "{pattern} is under /admin");
        let r = send(&anonymous, method, &path, "/login").await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{method} {pattern}: anonymous must be sent to login"
        );
        assert_eq!(location(&r), "/login", "{method} {pattern}");

        let r = send(&buyer, method, &path, "/account").await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{method} {pattern}: a buyer must get 403"
        );

        let r = send(&novice, method, &path, "/account/2fa").await;
        assert_redirect_to(&r, "/account/2fa");
    }

    // Nothing was changed by all those refused POSTs.
    assert_eq!(
        common::admin::one_i64(&app, "SELECT count(*) FROM audit_log", &[]),
        0
    );

    // An admin with 2FA reaches every page that needs no id.
    let (chef, _) = admin(&app).await;
    for &(method, pattern) in routes {
        if method == "GET" && !pattern.contains('{') {
            let r = chef.get(pattern).await;
            assert_eq!(r.status(), StatusCode::OK, "admin GET {pattern}");
        }
    }
}

#[tokio::test]
async fn a_password_only_session_of_a_2fa_admin_does_not_reach_the_console() {
    let app = spawn_app().await;
    let (_, secret) = admin(&app).await;
    let b = Browser::new(&app);
    // Password right, second factor not given yet.
    assert_redirect_to(
        &b.login("chef@example.com", GOOD_PASSWORD).await,
        "/login/totp",
    );
    assert_redirect_to(&b.get("/admin").await, "/login");
    assert_redirect_to(&b.get("/admin/scans.csv").await, "/login");
    // With the code, the console opens (an admin lands on it).
    let code = oathtool(&secret, 30);
    assert_redirect_to(
        &b.submit("/login/totp", "/login/totp", &[("code", &code)])
            .await,
        "/admin",
    );
    assert_eq!(b.get("/admin").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_navigation_links_the_console_for_admins_only() {
    let app = spawn_app().await;
    let (buyer, _) = logged_in_buyer(&app, "visiteur").await;
    let (status, page) = buyer.get_text("/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("href=\"/admin\""),
        "buyers see no console link"
    );
    let (admin, _) = admin(&app).await;
    let (status, page) = admin.get_text("/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("href=\"/admin\""),
        "admins see the console link"
    );
}

#[tokio::test]
async fn tables_that_scroll_sideways_can_be_reached_by_keyboard() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let mut seen = 0;
    for path in [
        "/admin",
        "/admin/scans",
        "/admin/audit",
        "/admin/offers",
        "/admin/sessions",
        "/admin/devices",
        "/admin/orders?q=x",
    ] {
        let (status, html) = chef.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        for (i, _) in html.match_indices("class=\"table-wrap\"") {
            seen += 1;
            let tag_end = html[i..].find('>').map_or(html.len(), |e| i + e);
            assert!(
                html[i..tag_end].contains("tabindex=\"0\""),
                "{path}: a scrolling table is not a tab stop"
            );
        }
    }
    assert!(seen >= 5, "{seen} tables");
}
