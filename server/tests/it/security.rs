//! Attacks on the account pages: password guessing, account enumeration,
//! CSRF, XSS, SQL injection, session theft after logout, oversized bodies;
//! and the security headers.

use std::time::{Duration, Instant};

use crate::common::*;
use jo_server::config::Argon2Params;
use reqwest::StatusCode;

#[tokio::test]
async fn failed_logins_are_throttled_but_never_lock_the_owner_out_for_good() {
    let app = spawn_app_with(|c| {
        c.throttle.base_lock_secs = 1;
        c.throttle.max_lock_secs = 2;
    })
    .await;
    let owner = registered_user(&app, "victime", "victime@example.com").await;
    // The owner logged in before from this browser: it holds a trusted-device cookie.
    assert_redirect_to(
        &owner.login("victime@example.com", GOOD_PASSWORD).await,
        "/",
    );
    owner.logout().await;

    let attacker = Browser::new(&app);
    for _ in 0..5 {
        let r = attacker
            .login("victime@example.com", "wrong password!!")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = attacker
        .login("victime@example.com", "wrong password!!")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Now locked: even the right password gets the throttled answer, without being checked.
    let r = attacker.login("victime@example.com", GOOD_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.expect("body").contains("Trop de tentatives"));

    // The owner's trusted browser has its own counter: not locked out.
    assert_redirect_to(
        &owner.login("victime@example.com", GOOD_PASSWORD).await,
        "/",
    );

    // And the lock is temporary (capped at max_lock_secs).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_redirect_to(
        &attacker.login("victime@example.com", GOOD_PASSWORD).await,
        "/",
    );
}

#[tokio::test]
async fn one_client_address_guessing_many_accounts_is_throttled() {
    let app = spawn_app_with(|c| {
        c.throttle.address_free_failures = 3;
        // The test client plays a reverse proxy reporting client addresses.
        c.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    let regular = registered_user(&app, "habitue", "habitue@example.com").await;
    assert_redirect_to(
        &regular
            .login_from("203.0.113.7", "habitue@example.com", GOOD_PASSWORD)
            .await,
        "/",
    );
    regular.logout().await;

    let attacker = Browser::new(&app);
    for i in 0..4 {
        let r = attacker
            .login_from(
                "203.0.113.7",
                &format!("user{i}@example.com"),
                "wrong password!!",
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = attacker
        .login_from(
            "203.0.113.7",
            "someone.else@example.com",
            "wrong password!!",
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked"
    );

    // Other addresses are not affected, and a forged X-Forwarded-For prefix does not help.
    let r = attacker
        .login_from(
            "198.51.100.9",
            "someone.else@example.com",
            "wrong password!!",
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = attacker
        .login_from(
            "198.51.100.1, 203.0.113.7",
            "x@example.com",
            "wrong password!!",
        )
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // A returning user behind the same address (same NAT) still gets in from their trusted browser.
    assert_redirect_to(
        &regular
            .login_from("203.0.113.7", "habitue@example.com", GOOD_PASSWORD)
            .await,
        "/",
    );
}

#[tokio::test]
async fn known_and_unknown_emails_get_identical_answers() {
    // Real (production) argon2 cost, so that timing would show a shortcut.
    let app = spawn_app_with(|c| c.argon2 = Argon2Params::PRODUCTION).await;
    registered_user(&app, "connu", "connu@example.com").await;
    let b = Browser::new(&app);

    // Login: same status and same page (but for the echoed address), same time.
    let mut times = [Duration::ZERO; 2];
    let mut pages = Vec::new();
    for round in 0..3 {
        for (i, email) in ["connu@example.com", "inconnu@example.com"]
            .iter()
            .enumerate()
        {
            let (_, html) = b.get_text("/login").await;
            let token = csrf_of(&html);
            let start = Instant::now();
            let r = b
                .client
                .post(b.url("/login"))
                .form(&[
                    ("email", *email),
                    ("password", "wrong password!!"),
                    ("csrf", &token),
                ])
                .send()
                .await
                .expect("POST");
            let status = r.status();
            let body = r.text().await.expect("body");
            times[i] += start.elapsed();
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            if round == 0 {
                pages.push(body.replace(email, "EMAIL"));
            }
        }
    }
    assert_eq!(
        pages[0], pages[1],
        "login answers differ for known and unknown emails"
    );
    let (known, unknown) = (times[0].as_secs_f64(), times[1].as_secs_f64());
    assert!(
        known / unknown < 1.5 && unknown / known < 1.5,
        "login timing differs: known {known:.3}s vs unknown {unknown:.3}s"
    );

    // Password reset: same answer.
    let mut answers = Vec::new();
    for email in ["connu@example.com", "inconnu@example.com"] {
        let r = b
            .submit("/password/forgot", "/password/forgot", &[("email", email)])
            .await;
        answers.push((r.status(), r.text().await.expect("body")));
    }
    assert_eq!(answers[0], answers[1], "reset answers differ");

    // Registration with a taken email: same redirect as a new one.
    let r = b
        .register("autre_nom", "connu@example.com", GOOD_PASSWORD)
        .await;
    assert_redirect_to(&r, "/register/done");
    let r = b
        .register("nouveau_nom", "nouveau@example.com", GOOD_PASSWORD)
        .await;
    assert_redirect_to(&r, "/register/done");
    // The owner of the taken address is told by mail instead.
    let body = outbox_mail(&app, "connu@example.com", 2).await;
    assert!(body.contains("déjà un compte"), "{body}");
}

#[tokio::test]
async fn csrf_token_missing_or_wrong_is_refused() {
    let app = spawn_app().await;
    registered_user(&app, "csrf_user", "csrf@example.com").await;
    let b = Browser::new(&app);
    let (_, html) = b.get_text("/login").await;
    let token = csrf_of(&html);
    assert_eq!(token.len(), 43);
    let creds = [("email", "csrf@example.com"), ("password", GOOD_PASSWORD)];

    let post = |fields: Vec<(&'static str, String)>| {
        let b = &b;
        async move {
            b.client
                .post(b.url("/login"))
                .form(&fields)
                .send()
                .await
                .expect("POST")
                .status()
        }
    };
    let base: Vec<(&str, String)> = creds.iter().map(|(k, v)| (*k, v.to_string())).collect();

    assert_eq!(
        post(base.clone()).await,
        StatusCode::FORBIDDEN,
        "missing token"
    );
    let mut wrong = base.clone();
    wrong.push(("csrf", "A".repeat(43)));
    assert_eq!(post(wrong).await, StatusCode::FORBIDDEN, "wrong token");

    // The right token from another browser (another cookie) does not work either.
    let other = Browser::new(&app);
    let other_token = csrf_of(&other.get_text("/login").await.1);
    let mut foreign = base.clone();
    foreign.push(("csrf", other_token));
    assert_eq!(
        post(foreign).await,
        StatusCode::FORBIDDEN,
        "token of another browser"
    );

    // A token without its cookie.
    let bare = reqwest::Client::new();
    let mut with_token = base.clone();
    with_token.push(("csrf", token.clone()));
    let s = bare
        .post(b.url("/login"))
        .form(&with_token)
        .send()
        .await
        .expect("POST")
        .status();
    assert_eq!(s, StatusCode::FORBIDDEN, "no cookie");

    // A cross-site request carrying the right cookie and token (as a forged form would).
    let s = b
        .client
        .post(b.url("/login"))
        .header("origin", "https://evil.example")
        .form(&with_token)
        .send()
        .await
        .expect("POST")
        .status();
    assert_eq!(s, StatusCode::FORBIDDEN, "cross-origin");

    // Logout is a state change too.
    let s = b
        .client
        .post(b.url("/logout"))
        .form(&[("x", "y")])
        .send()
        .await
        .expect("POST")
        .status();
    assert_eq!(s, StatusCode::FORBIDDEN);

    // With everything right, it goes through.
    let s = b
        .client
        .post(b.url("/login"))
        .header("origin", app.addr.clone())
        .form(&with_token)
        .send()
        .await
        .expect("POST");
    assert_redirect_to(&s, "/");
}

const XSS: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";
/// `XSS` as askama escapes it (numeric character references).
const XSS_ESCAPED: &str =
    "&#60;script&#62;alert(1)&#60;/script&#62;&#34;&#39;&#62;&#60;img src=x onerror=alert(2)&#62;";

#[tokio::test]
async fn xss_payloads_in_every_field_come_back_escaped() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    // Invalid everywhere: every field is echoed back with its error.
    let r = b
        .submit(
            "/register",
            "/register",
            &[
                ("username", XSS),
                ("email", XSS),
                ("first_name", &format!("{XSS}{}", "x".repeat(100))),
                ("last_name", XSS),
                ("password", XSS),
                ("password_confirm", XSS),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    assert!(!html.contains("<script>alert"), "raw payload in page");
    assert!(!html.contains("<img src=x"), "raw payload in page");
    assert!(
        html.contains(&format!("value=\"{XSS_ESCAPED}\"")),
        "escaped payload expected"
    );
    for field in ["username", "email", "first_name", "password"] {
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "error next to {field}"
        );
    }

    // Valid names that are payloads: stored, then shown escaped on the account page.
    let r = b
        .submit(
            "/register",
            "/register",
            &[
                ("username", "xss_user"),
                ("email", "xss@example.com"),
                ("first_name", XSS),
                ("last_name", XSS),
                ("password", GOOD_PASSWORD),
                ("password_confirm", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_redirect_to(&r, "/register/done");
    let token = link_token(
        &outbox_mail(&app, "xss@example.com", 0).await,
        "/verify-email",
    );
    b.submit(
        &format!("/verify-email?token={token}"),
        "/verify-email",
        &[("token", &token)],
    )
    .await;
    assert_redirect_to(&b.login("xss@example.com", GOOD_PASSWORD).await, "/");
    let (_, html) = b.get_text("/account").await;
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));
    assert!(html.contains(XSS_ESCAPED));

    // Login and reset forms echo the address escaped too.
    let r = b
        .submit("/login", "/login", &[("email", XSS), ("password", "x")])
        .await;
    let html = r.text().await.expect("body");
    assert!(!html.contains("<script>alert") && html.contains(XSS_ESCAPED));
    let r = b
        .submit("/password/forgot", "/password/forgot", &[("email", XSS)])
        .await;
    let html = r.text().await.expect("body");
    assert!(!html.contains("<script>alert") && html.contains(XSS_ESCAPED));
    // Reflected through the language switch: the path is encoded.
    let (_, html) = b.get_text("/%3Cscript%3E").await;
    assert!(!html.contains("<script>"));
}

#[tokio::test]
async fn sql_metacharacters_in_every_field_are_harmless() {
    let app = spawn_app().await;
    let sql = "'; DROP TABLE users; --";
    let b = Browser::new(&app);
    let r = b
        .submit(
            "/register",
            "/register",
            &[
                ("username", "o.brien"),
                ("email", "o'brien@example.com"),
                ("first_name", sql),
                ("last_name", "\" OR \"1\"=\"1"),
                ("password", "Robert'); DROP TABLE users;--"),
                ("password_confirm", "Robert'); DROP TABLE users;--"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/register/done");
    let token = link_token(
        &outbox_mail(&app, "o'brien@example.com", 0).await,
        "/verify-email",
    );
    b.submit(
        &format!("/verify-email?token={token}"),
        "/verify-email",
        &[("token", &token)],
    )
    .await;

    // Injection attempts on login and reset change nothing.
    for email in ["' OR '1'='1", "o'brien@example.com' --", "\" OR 1=1 --"] {
        let r = b.login(email, "' OR '1'='1").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{email}");
        let r = b
            .submit("/password/forgot", "/password/forgot", &[("email", email)])
            .await;
        assert!(r.status().is_client_error() || r.status() == StatusCode::OK);
    }
    let (s, _) = b.get_text("/verify-email?token=' OR 1=1 --").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let r = b
        .submit("/login", "/verify-email", &[("token", "x' OR '1'='1")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The account (and the table) are intact, the values stored verbatim.
    assert_redirect_to(
        &b.login("o'brien@example.com", "Robert'); DROP TABLE users;--")
            .await,
        "/",
    );
    let (_, html) = b.get_text("/account").await;
    assert!(
        html.contains("&#39;; DROP TABLE users; --")
            || html.contains("&#x27;; DROP TABLE users; --"),
        "{html}"
    );
    let other = registered_user(&app, "still_works", "still@example.com").await;
    assert_redirect_to(&other.login("still@example.com", GOOD_PASSWORD).await, "/");
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let mut responses = vec![
        b.get("/").await,
        b.get("/login").await,
        b.get("/static/style.css").await,
        b.get("/no/such/page").await,
    ];
    responses.push(
        b.client
            .post(b.url("/login"))
            .form(&[("a", "b")])
            .send()
            .await
            .expect("POST"),
    );
    for r in &responses {
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http"
        );
    }
    assert_eq!(responses[3].status(), StatusCode::NOT_FOUND);
    let fresh = reqwest::get(b.url("/static/style.css")).await.expect("GET");
    assert!(
        fresh.headers().get("set-cookie").is_none(),
        "cacheable assets set no cookie"
    );
    let fresh = reqwest::get(b.url("/login")).await.expect("GET");
    assert!(
        fresh.headers().get("set-cookie").is_some(),
        "pages with forms set the CSRF cookie"
    );
    assert_eq!(responses[1].headers()["cache-control"], "no-store");
    // Pages carry no inline script and load nothing from elsewhere.
    let html = b.get_text("/register").await.1;
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));

    // Behind https: HSTS and Secure, __Host- cookies.
    let https = spawn_app_with(|c| c.public_url = Some("https://billets.example.fr".into())).await;
    let r = reqwest::get(format!("{}/login", https.addr))
        .await
        .expect("GET");
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .expect("ascii")
            .contains("max-age=")
    );
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        cookie.starts_with("__Host-jo_csrf=")
            && cookie.contains("; Secure")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_logged_out_session_id_no_longer_works() {
    let app = spawn_app().await;
    let b = registered_user(&app, "leaver", "leaver@example.com").await;
    // A session id planted before login is not kept (fixation).
    b.jar.add_cookie_str(
        "jo_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; Path=/",
        &b.url("/").parse().expect("url"),
    );
    assert_redirect_to(&b.login("leaver@example.com", GOOD_PASSWORD).await, "/");
    let sid = b.cookie("jo_session").expect("session cookie");
    assert_ne!(sid, "A".repeat(43));

    let thief = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let steal = || {
        thief
            .get(b.url("/account"))
            .header("cookie", format!("jo_session={sid}"))
            .send()
    };
    assert_eq!(
        steal().await.expect("GET").status(),
        StatusCode::OK,
        "the copied id works while logged in"
    );
    assert_redirect_to(&b.logout().await, "/");
    assert_redirect_to(&steal().await.expect("GET"), "/login");
}

#[tokio::test]
async fn weak_passwords_and_bad_fields_get_errors_next_to_them() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let r = b
        .register("ok_name", "ok@example.com", "password1234")
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    assert!(html.contains("id=\"password-error\"") && html.contains("trop facile à deviner"));
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(html.contains("value=\"ok_name\""), "valid fields are kept");

    registered_user(&app, "taken_name", "first@example.com").await;
    let r = b
        .register("Taken_Name", "second@example.com", GOOD_PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains("déjà pris"));

    // English on request.
    let r = b
        .client
        .get(b.url("/register"))
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .expect("GET");
    assert!(r.text().await.expect("body").contains("Create an account"));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let (_, html) = b.get_text("/login").await;
    let token = csrf_of(&html);
    let big = "x".repeat(200 * 1024);
    let r = b
        .client
        .post(b.url("/login"))
        .form(&[("email", big.as_str()), ("password", "x"), ("csrf", &token)])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn api_errors_are_json_and_pages_are_html() {
    let app = spawn_app().await;
    let r = reqwest::get(format!("{}/api/v1/no-such-route", app.addr))
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: jo_shared::api::ApiError =
        serde_json::from_str(&r.text().await.expect("body")).expect("ApiError body");
    assert_eq!(body.error, "not_found");
    let r = reqwest::get(format!("{}/no-such-page", app.addr))
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn the_forms_cannot_flood_a_mailbox() {
    let app = spawn_app().await;
    registered_user(&app, "flooded", "flood@example.com").await;
    let b = Browser::new(&app);
    for _ in 0..10 {
        let r = b
            .submit(
                "/password/forgot",
                "/password/forgot",
                &[("email", "flood@example.com")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "the answer never changes");
    }
    for _ in 0..5 {
        assert_redirect_to(
            &b.register("flood_again", "flood@example.com", GOOD_PASSWORD)
                .await,
            "/register/done",
        );
    }
    // Mail goes out in the background: wait for the six allowed ones, then
    // give any extra one time to show up.
    for _ in 0..100 {
        if outbox_count(&app, "flood@example.com") >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        outbox_count(&app, "flood@example.com"),
        6,
        "verification + 5 resets, then nothing for a while"
    );
    // The links already delivered keep working: refused requests do not replace them.
    // (Each new link replaces the previous one: exactly the last delivered one is live.)
    let mut live = 0;
    for i in 1..=5 {
        let token = link_token(
            &outbox_mail(&app, "flood@example.com", i).await,
            "/password/reset",
        );
        if b.get_text(&format!("/password/reset?token={token}"))
            .await
            .0
            == StatusCode::OK
        {
            live += 1;
        }
    }
    assert_eq!(live, 1);
}

/// `n` fresh browsers, each holding the CSRF token of `page`.
async fn browsers_with_tokens(app: &TestApp, n: usize, page: &str) -> Vec<(Browser, String)> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let b = Browser::new(app);
        let (_, html) = b.get_text(page).await;
        let token = csrf_of(&html);
        out.push((b, token));
    }
    out
}

/// POSTs each browser's form to `action` at once; returns the statuses.
async fn burst(forms: Vec<(Browser, Vec<(String, String)>)>, action: &str) -> Vec<StatusCode> {
    let mut set = tokio::task::JoinSet::new();
    for (b, form) in forms {
        let url = b.url(action);
        set.spawn(async move {
            b.client
                .post(url)
                .form(&form)
                .send()
                .await
                .expect("POST")
                .status()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.expect("task"));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_past_the_limit_are_not_evaluated() {
    // Real argon2 cost: guesses wait in the hasher's queue, as in production.
    let app = spawn_app_with(|c| {
        c.argon2 = Argon2Params::PRODUCTION;
        c.throttle.account_free_failures = 3;
        c.throttle.address_free_failures = 1000;
    })
    .await;
    registered_user(&app, "cible", "cible@example.com").await;
    let browsers = browsers_with_tokens(&app, 30, "/login").await;
    let forms = browsers
        .into_iter()
        .map(|(b, token)| {
            let form = vec![
                ("email".to_owned(), "cible@example.com".to_owned()),
                ("password".to_owned(), "wrong password!!".to_owned()),
                ("csrf".to_owned(), token),
            ];
            (b, form)
        })
        .collect();
    let statuses = burst(forms, "/login").await;
    let evaluated = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // Three free failures, then the fourth locks: at most four guesses checked.
    assert!(evaluated <= 4, "{evaluated} of 30 guesses were evaluated");
    assert_eq!(evaluated + refused, 30, "{statuses:?}");
    // The lock holds against the right password too.
    let r = Browser::new(&app)
        .login("cible@example.com", GOOD_PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_totp_codes_past_the_limit_are_not_evaluated() {
    let app = spawn_app_with(|c| {
        c.throttle.account_free_failures = 3;
        c.throttle.address_free_failures = 1000;
    })
    .await;
    let owner = registered_user(&app, "deux_etapes", "etapes@example.com").await;
    assert_redirect_to(&owner.login("etapes@example.com", GOOD_PASSWORD).await, "/");
    let (_, html) = owner.get_text("/account/2fa").await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret shown");
    if secs_left_in_step() < 3 {
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let r = owner
        .submit(
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Thirty sessions past the password, each guessing a code at once.
    let mut forms = Vec::new();
    for _ in 0..30 {
        let b = Browser::new(&app);
        assert_redirect_to(
            &b.login("etapes@example.com", GOOD_PASSWORD).await,
            "/login/totp",
        );
        let (_, html) = b.get_text("/login/totp").await;
        let form = vec![
            ("code".to_owned(), "000000".to_owned()),
            ("csrf".to_owned(), csrf_of(&html)),
        ];
        forms.push((b, form));
    }
    let statuses = burst(forms, "/login/totp").await;
    let evaluated = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(evaluated <= 4, "{evaluated} of 30 codes were evaluated");
    assert_eq!(evaluated + refused, 30, "{statuses:?}");
}

/// Names a gate agent would misread at the ID check: bidi overrides and
/// isolates, zero-width and other invisible format characters, controls.
const SPOOFED_NAMES: &[&str] = &[
    "Marie\u{202E}eiruC",
    "\u{2067}Curie\u{2069}",
    "Ma\u{200B}rie",
    "Marie\u{200D}",
    "\u{FEFF}Marie",
    "Ma\u{00AD}rie",
    "Marie\u{2066}",
    "Marie\u{061C}",
    "Marie\u{E0041}",
    "Ma\u{0007}rie",
    "Marie\u{2028}Curie",
];

#[tokio::test]
async fn names_with_bidi_overrides_or_invisible_characters_are_refused_at_registration() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    for (i, name) in SPOOFED_NAMES.iter().enumerate() {
        let (username, email) = (format!("spoof{i}"), format!("spoof{i}@example.com"));
        for field in ["first_name", "last_name"] {
            let mut form = vec![
                ("username", username.as_str()),
                ("email", email.as_str()),
                ("first_name", "Marie"),
                ("last_name", "Curie"),
                ("password", GOOD_PASSWORD),
                ("password_confirm", GOOD_PASSWORD),
            ];
            for f in form.iter_mut() {
                if f.0 == field {
                    f.1 = name;
                }
            }
            let r = b.submit("/register", "/register", &form).await;
            assert_eq!(
                r.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{name:?} as {field}"
            );
            let html = r.text().await.expect("body");
            assert!(
                html.contains(&format!("id=\"{field}-error\"")),
                "{name:?}: the error is next to {field}"
            );
        }
    }
    assert_eq!(
        crate::common::shop::sql_i64(&app, "SELECT count(*) FROM users", &[]),
        0
    );
    // Accents, apostrophes, hyphens and other scripts are names.
    let r = b
        .submit(
            "/register",
            "/register",
            &[
                ("username", "eloise"),
                ("email", "eloise@example.com"),
                ("first_name", "Éloïse-Anaïs"),
                ("last_name", "N'Diaye عائشة 李"),
                ("password", GOOD_PASSWORD),
                ("password_confirm", GOOD_PASSWORD),
            ],
        )
        .await;
    assert_redirect_to(&r, "/register/done");
}

#[tokio::test]
async fn names_with_bidi_overrides_or_invisible_characters_are_refused_at_account_edit() {
    let app = spawn_app().await;
    let b = registered_user(&app, "renommee", "renommee@example.com").await;
    assert_redirect_to(&b.login("renommee@example.com", GOOD_PASSWORD).await, "/");
    for name in SPOOFED_NAMES {
        for (field, other) in [("first_name", "last_name"), ("last_name", "first_name")] {
            let r = b
                .submit(
                    "/account",
                    "/account/profile",
                    &[(field, name), (other, "Curie")],
                )
                .await;
            assert_eq!(
                r.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{name:?} as {field}"
            );
            let html = r.text().await.expect("body");
            assert!(
                html.contains(&format!("id=\"{field}-error\"")),
                "{name:?}: the error is next to {field}"
            );
            assert!(!html.contains(&format!("id=\"{other}-error\"")));
        }
    }
    assert_eq!(
        crate::common::shop::sql_i64(
            &app,
            "SELECT count(*) FROM users WHERE first_name = 'Marie' AND last_name = 'Curie'",
            &[]
        ),
        1,
        "the names are unchanged"
    );
}

/// Writes `request` on one raw connection (from a task of its own, so a
/// server that stops reading cannot block the test), then reads everything
/// the server answers until it closes the connection (or 5 s pass).
async fn raw_http(port: u16, request: Vec<u8>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // The server may close before reading it all: errors are expected.
        let _ = wr.write_all(&request).await;
        let _ = wr.flush().await;
        wr
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    drop(writer.await);
    String::from_utf8_lossy(&out).into_owned()
}

/// A 413 either says `Connection: close` (the client opens a new connection
/// for its next request) or lets the next request on the connection through.
fn assert_413_keeps_the_client_working(answer: &str, what: &str) {
    let first = answer.split("\r\n\r\n").next().unwrap_or("");
    assert!(
        first.starts_with("HTTP/1.1 413"),
        "{what}: expected a 413 first, got {answer:?}"
    );
    let says_close = first
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "connection:close");
    let next_answered = answer.matches("HTTP/1.1 ").count() >= 2;
    assert!(
        says_close || next_answered,
        "{what}: the 413 neither says Connection: close nor answers the next request: {first}"
    );
}

#[tokio::test]
async fn an_oversized_body_answer_does_not_break_the_connection_for_the_next_request() {
    let app = spawn_app().await;
    let next = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec();
    let body = "x".repeat(100 * 1024);

    // A declared length over the site's cap (64 KiB).
    let mut req = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&next);
    assert_413_keeps_the_client_working(&raw_http(app.port, req).await, "declared length");

    // A chunked body cut at the cap while it is read (by the CSRF check:
    // the request carries the cookie, so its body is read).
    let b = Browser::new(&app);
    b.get("/login").await;
    let cookie = b.cookie("jo_csrf").expect("CSRF cookie");
    let mut req = format!("POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: jo_csrf={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for chunk in body.as_bytes().chunks(8 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req.extend_from_slice(&next);
    assert_413_keeps_the_client_working(&raw_http(app.port, req).await, "chunked body");

    // The sync API's JSON 413.
    let mut req = format!(
        "POST /api/v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&next);
    let answer = raw_http(app.port, req).await;
    assert_413_keeps_the_client_working(&answer, "API");
    assert!(answer.contains("application/json"), "{answer}");

    // A body within the cap keeps the connection for the next request.
    let (_, html) = b.get_text("/login").await;
    let form = format!(
        "email=x%40example.com&password=nope&csrf={}",
        csrf_of(&html)
    );
    let mut req = format!(
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: jo_csrf={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .into_bytes();
    req.extend_from_slice(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let answer = raw_http(app.port, req).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        2,
        "both answered: {answer}"
    );

    // And a client that reuses its connections carries on.
    for _ in 0..3 {
        let r = b
            .client
            .post(b.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(b.get("/login").await.status(), StatusCode::OK);
    }
}
