//! The whole account life cycle against the real server: registration, the
//! verification mail through a real SMTP conversation, login, TOTP enrolment
//! with codes from `oathtool`, replay refusal, recovery codes; and the
//! command-line admin who must enrol 2FA.

use crate::common::smtp::SmtpSink;
use crate::common::*;
use jo_server::config::{SmtpSettings, SmtpTls};
use reqwest::StatusCode;

#[tokio::test]
async fn register_verify_login_enrol_totp_and_recover() {
    let mut sink = SmtpSink::start().await;
    let app = spawn_app_with(|c| {
        c.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port: sink.port,
            tls: SmtpTls::None,
            username: None,
            password: None,
        });
    })
    .await;
    let b = Browser::new(&app);

    // Register: the answer does not depend on the address; the mail does.
    let r = b
        .register("marie_c", "marie@example.com", GOOD_PASSWORD)
        .await;
    assert_redirect_to(&r, "/register/done");
    let mail = sink.next().await;
    assert_eq!(mail.rcpt_to, vec!["marie@example.com".to_owned()]);
    let body = mail_body(&mail.data);
    let token = link_token(&body, "/verify-email");
    assert!(
        body.contains(&format!("{}/verify-email?token=", app.addr)),
        "absolute link: {body}"
    );

    // Login before verification is refused, and the link is re-sent.
    let r = b.login("marie@example.com", GOOD_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let resent = mail_body(&sink.next().await.data);
    let token2 = link_token(&resent, "/verify-email");
    assert_ne!(token, token2);

    // Only the latest link works; GET shows a button, POST spends it, once.
    let (s, _) = b.get_text(&format!("/verify-email?token={token}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the superseded link is dead");
    let r = b
        .submit(
            &format!("/verify-email?token={token2}"),
            "/verify-email",
            &[("token", &token2)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = b
        .submit("/login", "/verify-email", &[("token", &token2)])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "single use");

    // Login.
    let before = b.cookie("jo_session");
    let r = b.login("marie@example.com", GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/");
    assert_ne!(b.cookie("jo_session"), before);
    let (s, html) = b.get_text("/account").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("marie_c") && html.contains("marie@example.com"));

    // Enrol TOTP: QR code and secret, confirmed by a code from oathtool.
    let (_, html) = b.get_text("/account/2fa").await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret shown");
    let qr = b.get("/account/2fa/qr.svg").await;
    assert_eq!(qr.status(), StatusCode::OK);
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    let r = b
        .submit("/account/2fa", "/account/2fa/enable", &[("code", "000000")])
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a wrong code does not enrol"
    );
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let session_before = b.cookie("jo_session");
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(
        b.cookie("jo_session"),
        session_before,
        "session id rotated at privilege change"
    );
    let html = r.text().await.expect("body");
    let codes: Vec<String> = html
        .split("<li><code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next().map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), 10, "ten recovery codes");
    // At rest, the seed is sealed (XChaCha20-Poly1305) with a key outside the database.
    let stored: Vec<u8> = app
        .db()
        .with(|c| {
            c.query_row(
                "SELECT totp_secret FROM users WHERE username = 'marie_c'",
                params![],
                |r| r.get(0),
            )
        })
        .expect("row");
    assert_eq!(
        stored.len(),
        1 + 24 + 20 + 16,
        "sealed, not the raw 20-byte seed"
    );

    // Logout; the account is closed; login now asks for the code.
    assert_redirect_to(&b.logout().await, "/");
    assert_redirect_to(&b.get("/account").await, "/login");
    let r = b.login("marie@example.com", GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/login/totp");
    assert_redirect_to(&b.get("/account").await, "/login");
    let r = b
        .submit("/login/totp", "/login/totp", &[("code", "123456")])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The enrolment code's step is spent: use the next step's code (within the allowed drift).
    let code = oathtool(&secret, 30);
    let r = b
        .submit("/login/totp", "/login/totp", &[("code", &code)])
        .await;
    assert_redirect_to(&r, "/");
    assert_eq!(b.get("/account").await.status(), StatusCode::OK);

    // The same code again, within its window: refused.
    b.logout().await;
    assert_redirect_to(
        &b.login("marie@example.com", GOOD_PASSWORD).await,
        "/login/totp",
    );
    let r = b
        .submit("/login/totp", "/login/totp", &[("code", &code)])
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "replayed TOTP code refused"
    );

    // A recovery code works once (any case, with or without dashes).
    let r = b
        .submit(
            "/login/totp",
            "/login/totp",
            &[("code", &codes[0].to_uppercase())],
        )
        .await;
    assert_redirect_to(&r, "/");
    b.logout().await;
    assert_redirect_to(
        &b.login("marie@example.com", GOOD_PASSWORD).await,
        "/login/totp",
    );
    let r = b
        .submit("/login/totp", "/login/totp", &[("code", &codes[0])])
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "a recovery code is single-use"
    );
    let r = b
        .submit(
            "/login/totp",
            "/login/totp",
            &[("code", &codes[1].replace('-', ""))],
        )
        .await;
    assert_redirect_to(&r, "/");
    let (_, html) = b.get_text("/account").await;
    assert!(
        html.contains("Codes de secours restants : 8</p>"),
        "8 recovery codes left"
    );
}

#[tokio::test]
async fn password_reset_is_single_use_and_ends_sessions() {
    let app = spawn_app().await;
    let b = registered_user(&app, "reset_me", "reset@example.com").await;
    assert_redirect_to(&b.login("reset@example.com", GOOD_PASSWORD).await, "/");

    let other = Browser::new(&app);
    let r = other
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("email", "reset@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = outbox_mail(&app, "reset@example.com", 1).await;
    let token = link_token(&body, "/password/reset");

    let new_password = "Un-nouveau-mot-de-passe-solide";
    let r = other
        .submit(
            &format!("/password/reset?token={token}"),
            "/password/reset",
            &[
                ("token", &token),
                ("password", "trop court"),
                ("password_confirm", "trop court"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("id=\"password-error\"")
    );
    let r = other
        .submit(
            &format!("/password/reset?token={token}"),
            "/password/reset",
            &[
                ("token", &token),
                ("password", new_password),
                ("password_confirm", new_password),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The old session is gone, the link is spent, only the new password works.
    assert_redirect_to(&b.get("/account").await, "/login");
    let (s, _) = other
        .get_text(&format!("/password/reset?token={token}"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b.login("reset@example.com", GOOD_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_redirect_to(&b.login("reset@example.com", new_password).await, "/");
}

#[tokio::test]
async fn changing_password_asks_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let laptop = registered_user(&app, "two_devices", "two@example.com").await;
    let phone = Browser::new(&app);
    assert_redirect_to(&laptop.login("two@example.com", GOOD_PASSWORD).await, "/");
    assert_redirect_to(&phone.login("two@example.com", GOOD_PASSWORD).await, "/");
    let new_password = "Velodrome-de-Saint-Quentin";

    let r = laptop
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", "not the password"),
                ("password", new_password),
                ("password_confirm", new_password),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("id=\"current_password-error\"")
    );

    let before = laptop.cookie("jo_session");
    let r = laptop
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", GOOD_PASSWORD),
                ("password", new_password),
                ("password_confirm", new_password),
            ],
        )
        .await;
    assert_redirect_to(&r, "/account?done=password");
    assert_ne!(laptop.cookie("jo_session"), before, "session id rotated");
    assert_eq!(laptop.get("/account").await.status(), StatusCode::OK);
    assert_redirect_to(&phone.get("/account").await, "/login");
}

#[tokio::test]
async fn admin_created_on_the_command_line_must_enrol_2fa() {
    let data = tempfile::tempdir().expect("tempdir");
    let data_dir = data.path().join("data");
    let config = test_config(data_dir.clone());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jo-server"));
    cmd.args(["create-admin", "--data"]).arg(&data_dir);
    if let Some(pg) = &config.postgres {
        cmd.arg("--database").arg(pg.url.expose());
    }
    let mut child = cmd
        .args(["--email", "Admin@Example.com", "--username", "chef"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs jo-server");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{GOOD_PASSWORD}").expect("writes");
    }
    let out = child.wait_with_output().expect("waits");
    assert!(out.status.success(), "create-admin failed");
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin chef created"));

    let app = start(config, data).await;
    let b = Browser::new(&app);
    assert_redirect_to(
        &b.login("admin@example.com", GOOD_PASSWORD).await,
        "/account/2fa",
    );
    // Every logged-in page sends the admin back to enrolment until 2FA is on.
    assert_redirect_to(&b.get("/account").await, "/account/2fa");
    let (_, html) = b.get_text("/account/2fa").await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret shown");
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (s, html) = b.get_text("/account").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Administrateur"));
    // An admin cannot turn 2FA off.
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/disable",
            &[("password", GOOD_PASSWORD), ("code", "000000")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_buyer_turns_2fa_off_with_password_and_code() {
    let app = spawn_app().await;
    let b = registered_user(&app, "no_more_2fa", "off@example.com").await;
    assert_redirect_to(&b.login("off@example.com", GOOD_PASSWORD).await, "/");
    let (_, html) = b.get_text("/account/2fa").await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret shown");
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Wrong password, or a spent code: refused, errors next to the fields.
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/disable",
            &[
                ("password", "not it at all"),
                ("code", &oathtool(&secret, 30)),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("id=\"password-error\"")
    );
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/disable",
            &[("password", GOOD_PASSWORD), ("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the enrolment code is spent"
    );
    assert!(r.text().await.expect("body").contains("id=\"code-error\""));

    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/disable",
            &[
                ("password", GOOD_PASSWORD),
                ("code", &oathtool(&secret, 30)),
            ],
        )
        .await;
    assert_redirect_to(&r, "/account");
    let (_, html) = b.get_text("/account").await;
    assert!(html.contains("désactivée"));
    b.logout().await;
    assert_redirect_to(&b.login("off@example.com", GOOD_PASSWORD).await, "/");
}

#[tokio::test]
async fn sessions_expire_when_idle_and_at_their_absolute_limit() {
    let idle = spawn_app_with(|c| c.sessions.idle_secs = 2).await;
    let b = registered_user(&idle, "idle_user", "idle@example.com").await;
    assert_redirect_to(&b.login("idle@example.com", GOOD_PASSWORD).await, "/");
    assert_eq!(b.get("/account").await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_redirect_to(&b.get("/account").await, "/login");

    // Whole seconds: a 3 s limit lasts more than 2 s and less than 4 s.
    let absolute = spawn_app_with(|c| c.sessions.absolute_secs = 3).await;
    let b = registered_user(&absolute, "busy_user", "busy@example.com").await;
    assert_redirect_to(&b.login("busy@example.com", GOOD_PASSWORD).await, "/");
    // Activity does not extend the absolute limit.
    for _ in 0..4 {
        assert_eq!(b.get("/account").await.status(), StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_redirect_to(&b.get("/account").await, "/login");
}

#[tokio::test]
async fn the_profile_names_can_be_changed() {
    let app = spawn_app().await;
    let b = registered_user(&app, "renamed", "renamed@example.com").await;
    assert_redirect_to(&b.login("renamed@example.com", GOOD_PASSWORD).await, "/");
    let r = b
        .submit(
            "/account",
            "/account/profile",
            &[("first_name", "   "), ("last_name", "Sklodowska")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    assert!(html.contains("id=\"first_name-error\"") && html.contains("value=\"Sklodowska\""));
    let r = b
        .submit(
            "/account",
            "/account/profile",
            &[("first_name", "Maria"), ("last_name", "Skłodowska-Curie")],
        )
        .await;
    assert_redirect_to(&r, "/account?done=profile");
    let (_, html) = b.get_text("/account?done=profile").await;
    assert!(html.contains("Profil enregistré"));
    assert!(html.contains("value=\"Maria\"") && html.contains("value=\"Skłodowska-Curie\""));
}

/// Enrols TOTP in browser `b` (on `/account/2fa`) and returns the secret
/// and the recovery codes.
async fn enrol_totp(b: &Browser) -> (String, Vec<String>) {
    let (_, html) = b.get_text("/account/2fa").await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret shown");
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let r = b
        .submit(
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "2FA enrolment");
    let html = r.text().await.expect("body");
    let codes = html
        .split("<li><code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next().map(str::to_owned))
        .collect();
    (secret, codes)
}

#[tokio::test]
async fn password_only_session_is_not_admin_after_enrolment() {
    let app = spawn_app().await;
    crate::common::admin::create_admin(&app, "chef@example.com", "chef").await;
    // Someone who knows the password logs in before the admin enrols 2FA.
    let early = Browser::new(&app);
    assert_redirect_to(
        &early.login("chef@example.com", GOOD_PASSWORD).await,
        "/account/2fa",
    );
    let db = crate::common::shop::db(&app);
    let early_row: (Vec<u8>, i64, i64, i64, i64) = db
        .with(|c| {
            c.query_row(
                "SELECT id_hash, user_id, created_at, last_seen_at, expires_at FROM sessions",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
        })
        .expect("the early session");

    let real = Browser::new(&app);
    assert_redirect_to(
        &real.login("chef@example.com", GOOD_PASSWORD).await,
        "/account/2fa",
    );
    enrol_totp(&real).await;
    assert_eq!(real.get("/admin").await.status(), StatusCode::OK);

    // Even a password-only session that outlived enrolment (one opened
    // before this server version ended them, say) is not an admin session:
    // the account has 2FA on, but this session never passed it.
    db.with(|c| {
        c.execute(
            "INSERT INTO sessions (id_hash, user_id, stage, created_at, last_seen_at, expires_at)
             VALUES (?1, ?2, 'full', ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![
                early_row.0,
                early_row.1,
                early_row.2,
                early_row.3,
                early_row.4
            ],
        )
    })
    .expect("the early session is back");
    for path in ["/admin", "/admin/orders", "/admin/devices"] {
        assert_eq!(
            early.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path} without the second factor in this session"
        );
    }
    let r = early
        .submit("/account", "/admin/devices/codes", &[("label", "porte")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(real.get("/admin").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn enabling_2fa_ends_other_sessions() {
    let app = spawn_app().await;
    let laptop = registered_user(&app, "deux_fa", "deuxfa@example.com").await;
    let phone = Browser::new(&app);
    assert_redirect_to(
        &laptop.login("deuxfa@example.com", GOOD_PASSWORD).await,
        "/",
    );
    assert_redirect_to(&phone.login("deuxfa@example.com", GOOD_PASSWORD).await, "/");
    let (secret, recovery) = enrol_totp(&laptop).await;
    assert_eq!(laptop.get("/account").await.status(), StatusCode::OK);
    assert_redirect_to(&phone.get("/account").await, "/login");

    // Turning it off is a change of the second factor too.
    assert_redirect_to(
        &phone.login("deuxfa@example.com", GOOD_PASSWORD).await,
        "/login/totp",
    );
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let r = phone
        .submit(
            "/login/totp",
            "/login/totp",
            &[("code", &oathtool(&secret, 30))],
        )
        .await;
    assert_redirect_to(&r, "/");
    let r = laptop
        .submit(
            "/account/2fa",
            "/account/2fa/disable",
            // A recovery code: this step's and the next one's TOTP codes are used.
            &[("password", GOOD_PASSWORD), ("code", &recovery[0])],
        )
        .await;
    assert_redirect_to(&r, "/account");
    assert_eq!(laptop.get("/account").await.status(), StatusCode::OK);
    assert_redirect_to(&phone.get("/account").await, "/login");
}

#[tokio::test]
async fn pending_totp_secret_is_not_shown_to_another_session() {
    let app = spawn_app().await;
    crate::common::admin::create_admin(&app, "chef@example.com", "chef").await;
    let admin = Browser::new(&app);
    let other = Browser::new(&app);
    for b in [&admin, &other] {
        assert_redirect_to(
            &b.login("chef@example.com", GOOD_PASSWORD).await,
            "/account/2fa",
        );
    }
    let (_, html) = admin.get_text("/account/2fa").await;
    let secret = between(&html, "id=\"totp-secret\">", "<").expect("secret shown");
    let qr = admin.get("/account/2fa/qr.svg").await;
    assert_eq!(qr.status(), StatusCode::OK);
    let qr = qr.text().await.expect("svg");

    // The other session's QR code and page never carry the admin's seed.
    let r = other.get("/account/2fa/qr.svg").await;
    if r.status() == StatusCode::OK {
        assert!(r.text().await.expect("svg") != qr, "another session's QR");
    }
    let (status, html) = other.get_text("/account/2fa").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(&secret), "another session's enrolment page");
    let r = other.get("/account/2fa/qr.svg").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("svg") != qr, "another session's QR");
    // Nor can it confirm the admin's seed.
    if secs_left_in_step() < 3 {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let r = other
        .submit(
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &oathtool(&secret, 0))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        crate::common::shop::sql_i64(
            &app,
            "SELECT totp_enabled FROM users WHERE username = 'chef'",
            &[]
        ),
        0
    );
}

#[tokio::test]
async fn an_admin_lands_on_the_console_after_the_second_factor() {
    let app = spawn_app().await;
    let (_, secret) = crate::common::admin::admin(&app).await;
    let b = Browser::new(&app);
    assert_redirect_to(
        &b.login("chef@example.com", GOOD_PASSWORD).await,
        "/login/totp",
    );
    // The enrolment spent the current step: the next one (within the drift).
    let r = b
        .submit(
            "/login/totp",
            "/login/totp",
            &[("code", &oathtool(&secret, 30))],
        )
        .await;
    assert_redirect_to(&r, "/admin");
    assert_eq!(b.get("/admin").await.status(), StatusCode::OK);
}
