//! Login (password, then the second factor) and logout.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::db::sessions::Stage;
use crate::db::tokens::Purpose;
use crate::error::Result;
use crate::state::AppState;
use crate::web::client::ClientIp;
use crate::web::cookies;
use crate::web::csrf;
use crate::web::ctx::PageCtx;
use crate::web::pages::{FieldErrors, LoginPage, TotpPage, render};
use crate::web::session::{self, PendingLogin, presented_session};

use super::{
    account_bucket, address_bucket, check_second_factor, device_cookie_matches, echo, finish_login,
    mail_link, redirect_with_cookies,
};

/// The login form.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn login_page(
    ctx: &PageCtx,
    status: StatusCode,
    email: &str,
    notice: &'static str,
    notice_kind: &'static str,
) -> Result<Response> {
    render(
        status,
        &LoginPage {
            ctx,
            errors: FieldErrors::default(),
            email,
            notice,
            notice_kind,
        },
    )
}

/// `GET /login`.
pub(super) async fn form(ctx: PageCtx) -> Result<Response> {
    login_page(&ctx, StatusCode::OK, "", "", "info")
}

/// `POST /login`: throttling, then the password (or a dummy hash), then
/// either the second factor or a full session.
pub(super) async fn submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    ctx: PageCtx,
    Form(f): Form<LoginForm>,
) -> Result<Response> {
    // Not `Email::parse`: an invalid address must get the same answer as an unknown one.
    let email: String = f.email.trim().to_lowercase().chars().take(254).collect();
    let device = cookies::get(&headers, state.cookie_name("jo_device"))
        .filter(|v| device_cookie_matches(&state, &email, v));
    let account = match device {
        Some(d) => format!("d:{}", hex::encode(Sha256::digest(d.as_bytes()))),
        None => account_bucket(&email),
    };
    let address = address_bucket(client);
    // A trusted device is not held back by its address either: other clients
    // behind the same address (a NAT, a proxy) may be the ones guessing.
    let mut buckets = vec![account.clone()];
    if device.is_none() {
        buckets.push(address.clone());
    }
    // The attempt is counted against the account before the password is
    // checked, in the same transaction as the lock check: concurrent
    // guesses past the limit are refused here instead of all waiting for
    // argon2 together. The address counts failures only, once checked.
    let throttle = state.config.throttle;
    if state
        .store
        .reserve_attempt(buckets, account.clone(), throttle)
        .await?
        .is_some()
    {
        tracing::warn!(client = %client, "login refused: throttled");
        return login_page(
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            echo(&f.email),
            "login.throttled",
            "error",
        );
    }
    let found = state.store.user_by_email(email).await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), Some(h)),
        None => (None, None),
    };
    let password = Secret::new(f.password);
    let needs_rehash = hash
        .as_deref()
        .is_some_and(|h| state.hasher.needs_rehash(h));
    let ok = state.hasher.verify(password.clone(), hash).await?;
    let Some(user) = user.filter(|_| ok) else {
        // Counted against the account by the reservation; now the address.
        state.store.count_shared_failure(address, throttle).await?;
        tracing::info!(client = %client, "failed login");
        return login_page(
            &ctx,
            StatusCode::UNAUTHORIZED,
            echo(&f.email),
            "login.bad_credentials",
            "error",
        );
    };
    state.store.release_attempt(account, true, throttle).await?;
    if needs_rehash {
        // Costs were raised since this hash was made: upgrade it now that we hold the password.
        let upgraded = state.hasher.hash(password).await?;
        state.store.set_password_hash(user.id, upgraded).await?;
        tracing::info!(
            user_id = user.id,
            "password hash upgraded to the current argon2 parameters"
        );
    }
    if !user.email_verified {
        // Only someone who knows the password gets here, so this says nothing to an attacker.
        mail_link(&state, &user, Purpose::VerifyEmail, ctx.lang).await?;
        return login_page(
            &ctx,
            StatusCode::FORBIDDEN,
            echo(&f.email),
            "login.unverified",
            "warning",
        );
    }
    let old = presented_session(&headers, &state);
    if user.totp_enabled {
        let (cookie, _) = session::start(&state, old, user.id, Stage::SecondFactor, false).await?;
        return Ok(redirect_with_cookies("/login/totp", vec![cookie]));
    }
    finish_login(&state, old, &user, false).await
}

/// The second-factor form.
#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    code: String,
}

/// `GET /login/totp`.
pub(super) async fn totp_form(ctx: PageCtx, _pending: PendingLogin) -> Result<Response> {
    render(
        StatusCode::OK,
        &TotpPage {
            ctx: &ctx,
            errors: FieldErrors::default(),
            notice: "",
        },
    )
}

/// `POST /login/totp`: a TOTP code (not replayable) or a recovery code.
pub(super) async fn totp_submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ctx: PageCtx,
    pending: PendingLogin,
    Form(f): Form<CodeForm>,
) -> Result<Response> {
    let bucket = format!("t:{}", pending.user.id);
    let address = address_bucket(client);
    let throttle = state.config.throttle;
    // Counted against the user before the code is checked, atomically with
    // the lock check (see `submit`); against the address if it is wrong.
    if state
        .store
        .reserve_attempt(
            vec![bucket.clone(), address.clone()],
            bucket.clone(),
            throttle,
        )
        .await?
        .is_some()
    {
        return render(
            StatusCode::TOO_MANY_REQUESTS,
            &TotpPage {
                ctx: &ctx,
                errors: FieldErrors::default(),
                notice: "login.throttled",
            },
        );
    }
    if !check_second_factor(&state, &pending.user, &f.code).await? {
        state.store.count_shared_failure(address, throttle).await?;
        tracing::info!(user_id = pending.user.id, "wrong second factor");
        let mut errors = FieldErrors::default();
        errors.add("code", "totp.bad_code");
        return render(
            StatusCode::UNAUTHORIZED,
            &TotpPage {
                ctx: &ctx,
                errors,
                notice: "",
            },
        );
    }
    state.store.release_attempt(bucket, true, throttle).await?;
    finish_login(&state, Some(pending.session_hash), &pending.user, true).await
}

/// `POST /logout`: ends the session server-side.
pub(super) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(h) = presented_session(&headers, &state) {
        state.store.delete_session(h).await?;
    }
    Ok(redirect_with_cookies(
        "/",
        vec![session::clear_cookie(&state), csrf::fresh_cookie(&state)?],
    ))
}
