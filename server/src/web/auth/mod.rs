//! Registration, email verification, login (password then TOTP), logout and
//! password reset.
//!
//! No answer here depends on whether an email address has an account:
//! registration and reset always say "if this address can be used, we sent
//! a mail" (the mail itself differs), and a failed login says the same thing
//! in the same time (a dummy argon2 verification for unknown addresses).

mod login;
mod register;
mod reset;

use std::net::IpAddr;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use crate::auth::tokens::{
    ct_eq, hash_recovery_code, hash_token, is_token_shaped, mac, normalize_recovery_code,
    random_token,
};
use crate::auth::totp;
use crate::db::outbox::{MailKind, Outgoing};
use crate::db::sessions::Stage;
use crate::db::tokens::Purpose;
use crate::db::users::{Role, User};
use crate::error::Result;
use crate::i18n::Lang;
use crate::mail::Mail;
use crate::state::AppState;
use crate::units::time::now;
use crate::web::cookies;
use crate::web::csrf;
use crate::web::ctx::PageCtx;
use crate::web::pages::{MessagePage, render};
use crate::web::session;

/// Lifetime of an email-verification link.
const VERIFY_TTL_SECS: i64 = 24 * 3600;
/// Lifetime of a password-reset link.
const RESET_TTL_SECS: i64 = 3600;
/// Lifetime of the trusted-device cookie.
const DEVICE_COOKIE_SECS: i64 = 180 * 24 * 3600;

/// The authentication pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", get(register::form).post(register::submit))
        .route("/register/done", get(register::done))
        .route(
            "/verify-email",
            get(register::verify_form).post(register::verify),
        )
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/login/totp",
            get(login::totp_form).post(login::totp_submit),
        )
        .route("/logout", post(login::logout))
        .route(
            "/password/forgot",
            get(reset::forgot_form).post(reset::forgot),
        )
        .route("/password/reset", get(reset::form).post(reset::submit))
}
// ----- helpers shared with `account`

/// Enqueues an account mail (one no other write goes with); the outbox
/// sends it, retrying while the relay is down.
pub async fn send_later(state: &AppState, mail: Mail, lang: Lang) -> Result<()> {
    state
        .store
        .enqueue_mail(Outgoing::rendered(
            MailKind::Account,
            mail.to,
            lang.code(),
            mail.subject,
            mail.body,
        ))
        .await?;
    Ok(())
}

/// Runs `work` in the background, logging a failure there, once. Used for
/// work that depends on whether an address has an account: the response must
/// not wait for it, or its timing would tell.
fn in_background<F>(what: &'static str, work: F)
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = work.await {
            tracing::error!(error = %e, what, "background task failed");
        }
    });
}

/// Whether another account mail may go to `to` now: at most 5 an hour, then
/// fewer, so that nobody can flood an address through our forms.
/// Whether `token` (from an email link) is live for `purpose`, without
/// spending it: the GET of a link only shows a form, since mail scanners
/// prefetch links.
async fn link_is_live(state: &AppState, token: &str, purpose: Purpose) -> Result<bool> {
    Ok(is_token_shaped(token)
        && state
            .store
            .peek_token(hash_token(token), purpose)
            .await?
            .is_some())
}

async fn mail_allowed(state: &AppState, to: &str) -> Result<bool> {
    let bucket = format!("m:{}", hex::encode(Sha256::digest(to.as_bytes())));
    let allowed = state.store.allow_message(bucket, 5, 3600).await?;
    if !allowed {
        tracing::warn!("account mail not sent: too many to this address in the last hour");
    }
    Ok(allowed)
}

/// Creates a single-use link token and mails the link (unless the address
/// got too many mails lately: then the links it already has stay valid).
async fn mail_link(state: &AppState, user: &User, purpose: Purpose, lang: Lang) -> Result<()> {
    if !mail_allowed(state, &user.email).await? {
        return Ok(());
    }
    let token = random_token()?;
    let (ttl, path, subject, body) = match purpose {
        Purpose::VerifyEmail => (
            VERIFY_TTL_SECS,
            "/verify-email",
            "mail.verify_subject",
            "mail.verify_body",
        ),
        Purpose::ResetPassword => (
            RESET_TTL_SECS,
            "/password/reset",
            "mail.reset_subject",
            "mail.reset_body",
        ),
    };
    // The link's token and its mail are written together: the outbox sends
    // the mail even if this node stops right after.
    let mail = Outgoing::rendered(
        MailKind::Account,
        user.email.clone(),
        lang.code(),
        lang.t(subject).to_owned(),
        format!(
            "{}{}{path}?token={token}{}",
            lang.t(body),
            state.public_url,
            lang.t("mail.footer")
        ),
    );
    state
        .store
        .create_token(hash_token(&token), user.id, purpose, ttl, mail)
        .await?;
    Ok(())
}

/// The throttling bucket of an account, keyed by a hash of the address so
/// that attempts on unknown addresses are counted alike and stored without
/// the address itself.
pub fn account_bucket(email: &str) -> String {
    format!("a:{}", hex::encode(Sha256::digest(email.as_bytes())))
}

/// The throttling bucket of a client address (IPv6 by /64: one host usually owns a whole /64).
pub fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("i:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("i:{v4}"),
            None => {
                let s = v6.segments();
                format!("i:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A trusted-device cookie for `email`: `nonce.MAC(nonce, email)`. A browser
/// that logged in successfully keeps its own failure counter, so an attacker
/// hammering an account cannot lock its owner out of their usual devices.
fn device_cookie_value(state: &AppState, email: &str) -> Result<String> {
    let nonce = random_token()?;
    let m = mac(
        &state.device_key,
        &[b"device", email.as_bytes(), nonce.as_bytes()],
    );
    Ok(format!("{nonce}.{m}"))
}

fn device_cookie_matches(state: &AppState, email: &str, value: &str) -> bool {
    value.split_once('.').is_some_and(|(nonce, m)| {
        is_token_shaped(nonce)
            && ct_eq(
                &mac(
                    &state.device_key,
                    &[b"device", email.as_bytes(), nonce.as_bytes()],
                ),
                m,
            )
    })
}

/// Checks a TOTP code (refusing one already used) or spends a recovery code.
pub async fn check_second_factor(state: &AppState, user: &User, input: &str) -> Result<bool> {
    let input = input.trim();
    if input.len() == totp::DIGITS && input.bytes().all(|b| b.is_ascii_digit()) {
        let Some(secret) = state.totp_secret(user.id).await? else {
            return Ok(false);
        };
        let now_secs = u64::try_from(now()).unwrap_or(0);
        let Some(step) = totp::matching_step(&secret, input, now_secs) else {
            return Ok(false);
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        return Ok(state.store.use_totp_step(user.id, step).await?);
    }
    match normalize_recovery_code(input) {
        Some(code) => {
            let used = state
                .store
                .use_recovery_code(user.id, hash_recovery_code(user.id, &code))
                .await?;
            if used {
                tracing::info!(user_id = user.id, "recovery code used");
            }
            Ok(used)
        }
        None => Ok(false),
    }
}

/// A redirect that sets cookies.
pub fn redirect_with_cookies(to: &str, set_cookies: Vec<HeaderValue>) -> Response {
    let mut res = Redirect::to(to).into_response();
    for c in set_cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// Completes a login: a full session under a fresh id (recording whether it
/// passed the second factor), a fresh CSRF cookie, a trusted-device cookie;
/// admins without 2FA go to enrolment.
async fn finish_login(
    state: &AppState,
    old: Option<[u8; 32]>,
    user: &User,
    second_factor: bool,
) -> Result<Response> {
    let (session_cookie, _) =
        session::start(state, old, user.id, Stage::Full, second_factor).await?;
    let device = cookies::set(
        state.cookie_name("jo_device"),
        &device_cookie_value(state, &user.email)?,
        Some(DEVICE_COOKIE_SECS),
        cookies::SameSite::Strict,
        state.https,
    );
    tracing::info!(user_id = user.id, "login");
    // An admin comes to work: straight to the console once the session
    // passed the second factor, to its enrolment while there is none.
    let to = match (user.role, user.totp_enabled, second_factor) {
        (Role::Admin, false, _) => "/account/2fa",
        (Role::Admin, true, true) => "/admin",
        _ => "/",
    };
    Ok(redirect_with_cookies(
        to,
        vec![session_cookie, csrf::fresh_cookie(state)?, device],
    ))
}

fn message(
    ctx: &PageCtx,
    status: StatusCode,
    title: &'static str,
    text: &'static str,
    kind: &'static str,
    link: Option<(&'static str, &'static str)>,
) -> Result<Response> {
    let (link_href, link_key) = link.unwrap_or(("", ""));
    render(
        status,
        &MessagePage {
            ctx,
            title_key: title,
            text_key: text,
            kind,
            link_href,
            link_key,
        },
    )
}

/// Caps what is echoed back into a form (the value is escaped anyway).
fn echo(s: &str) -> &str {
    match s.char_indices().nth(254) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
