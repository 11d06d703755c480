//! The account page: profile, password change, TOTP enrolment and removal.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::auth::tokens::{
    RECOVERY_CODES, hash_recovery_code, normalize_recovery_code, random_recovery_code,
};
use crate::auth::totp;
use crate::config::Secret;
use crate::db::sessions::Stage;
use crate::db::users::Role;
use crate::domain::{PersonName, check_new_password_off_thread};
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::units::time::now;
use crate::web::auth::{account_bucket, check_second_factor, redirect_with_cookies};
use crate::web::ctx::PageCtx;
use crate::web::pages::{
    AccountPage, FieldErrors, RecoveryCodesPage, TwofaManagePage, TwofaSetupPage, render,
};
use crate::web::session::{self, CurrentUser};

/// `/account…`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/profile", post(update_profile))
        .route("/account/password", post(change_password))
        .route("/account/2fa", get(twofa))
        .route("/account/2fa/qr.svg", get(twofa_qr))
        .route("/account/2fa/enable", post(twofa_enable))
        .route("/account/2fa/disable", post(twofa_disable))
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn account_page(
    state: &AppState,
    ctx: &PageCtx,
    me: &CurrentUser,
    status: StatusCode,
    errors: FieldErrors,
    notice: &'static str,
    names: Option<(&str, &str)>,
) -> Result<Response> {
    let recovery_left = state.store.recovery_codes_left(me.user.id).await?;
    render(
        status,
        &AccountPage {
            ctx,
            errors,
            user: &me.user,
            is_admin: me.user.role == Role::Admin,
            recovery_left,
            first_name: names.map_or(me.user.first_name.as_str(), |n| n.0),
            last_name: names.map_or(me.user.last_name.as_str(), |n| n.1),
            notice,
        },
    )
}

async fn account(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Query(q): Query<Done>,
) -> Result<Response> {
    let notice = match q.done.as_deref() {
        Some("password") => "account.password_changed",
        Some("profile") => "account.profile_saved",
        _ => "",
    };
    account_page(
        &state,
        &ctx,
        &me,
        StatusCode::OK,
        FieldErrors::default(),
        notice,
        None,
    )
    .await
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

/// `POST /account/profile`: prénom and nom.
async fn update_profile(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Form(f): Form<ProfileForm>,
) -> Result<Response> {
    let mut errors = FieldErrors::default();
    let first = PersonName::parse(&f.first_name)
        .map_err(|e| errors.add("first_name", e))
        .ok();
    let last = PersonName::parse(&f.last_name)
        .map_err(|e| errors.add("last_name", e))
        .ok();
    let (Some(first), Some(last)) = (first, last) else {
        let echo = |s: &str| s.chars().take(200).collect::<String>();
        let (first, last) = (echo(&f.first_name), echo(&f.last_name));
        return account_page(
            &state,
            &ctx,
            &me,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            "",
            Some((&first, &last)),
        )
        .await;
    };
    state
        .store
        .set_names(
            me.user.id,
            first.as_str().to_owned(),
            last.as_str().to_owned(),
        )
        .await?;
    Ok(Redirect::to("/account?done=profile").into_response())
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn change_password(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Form(f): Form<PasswordForm>,
) -> Result<Response> {
    let bucket = account_bucket(&me.user.email);
    let user_bucket = format!("u:{}", me.user.id);
    let t = state.config.throttle;
    let mut errors = FieldErrors::default();
    // Counts like a failed login, reserved before the check so that
    // concurrent guesses cannot all pass: a stolen session must not become
    // a password oracle.
    if state
        .store
        .reserve_attempt(vec![bucket.clone()], bucket.clone(), t)
        .await?
        .is_some()
    {
        errors.add("current_password", "login.throttled");
        return account_page(
            &state,
            &ctx,
            &me,
            StatusCode::TOO_MANY_REQUESTS,
            errors,
            "",
            None,
        )
        .await;
    }
    let hash = state.store.password_hash(me.user.id).await?;
    if state
        .hasher
        .verify(Secret::new(f.current_password), hash)
        .await?
    {
        state.store.release_attempt(bucket, false, t).await?;
    } else {
        state.store.count_shared_failure(user_bucket, t).await?;
        errors.add("current_password", "err.current_password");
    }
    let u = &me.user;
    if let Err(e) = check_new_password_off_thread(
        &f.password,
        &f.password_confirm,
        &[&u.username, &u.email, &u.first_name, &u.last_name],
    )
    .await?
    {
        errors.add_password_error(e);
    }
    if !errors.is_empty() {
        return account_page(
            &state,
            &ctx,
            &me,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            "",
            None,
        )
        .await;
    }
    let new_hash = state.hasher.hash(Secret::new(f.password)).await?;
    // Ends every session, this one included, then opens a fresh one here.
    state
        .store
        .change_password(me.user.id, new_hash, None)
        .await?;
    // The new session keeps what this one proved: a password change is not a second factor.
    let (cookie, _) =
        session::start(&state, None, me.user.id, Stage::Full, me.second_factor).await?;
    tracing::info!(
        user_id = me.user.id,
        "password changed; other sessions ended"
    );
    Ok(redirect_with_cookies(
        "/account?done=password",
        vec![cookie],
    ))
}

async fn twofa(State(state): State<AppState>, ctx: PageCtx, me: CurrentUser) -> Result<Response> {
    if me.user.totp_enabled {
        return render(
            StatusCode::OK,
            &TwofaManagePage {
                ctx: &ctx,
                errors: FieldErrors::default(),
                is_admin: me.user.role == Role::Admin,
            },
        );
    }
    setup_page(&state, &ctx, &me, StatusCode::OK, FieldErrors::default()).await
}

/// The enrolment page; keeps the pending secret across reloads of this
/// session so a code from an app that already scanned it still works. A
/// secret pending in another session of the account is never shown here:
/// this session gets a fresh one of its own (which replaces it).
async fn setup_page(
    state: &AppState,
    ctx: &PageCtx,
    me: &CurrentUser,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<Response> {
    let secret = match state
        .totp_pending_secret(me.user.id, me.session_hash)
        .await?
    {
        Some(s) => s,
        None => {
            let s = zeroize::Zeroizing::new(totp::new_secret()?);
            state
                .set_totp_pending_secret(me.user.id, &s, me.session_hash)
                .await?;
            s
        }
    };
    render(
        status,
        &TwofaSetupPage {
            ctx,
            errors,
            secret: totp::secret_base32(&secret),
            admin_required: me.user.role == Role::Admin,
        },
    )
}

async fn twofa_qr(State(state): State<AppState>, me: CurrentUser) -> Result<Response> {
    if me.user.totp_enabled {
        return Err(AppError::NotFound);
    }
    let secret = state
        .totp_pending_secret(me.user.id, me.session_hash)
        .await?
        .ok_or(AppError::NotFound)?;
    let url = totp::otpauth_url(&secret, &me.user.username)
        .ok_or_else(|| anyhow::anyhow!("cannot build the otpauth URL"))?;
    let svg = jo_shared::qr::render_svg(&url).map_err(|e| anyhow::anyhow!("otpauth QR: {e}"))?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn twofa_enable(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Form(f): Form<CodeForm>,
) -> Result<Response> {
    if me.user.totp_enabled {
        return Ok(Redirect::to("/account/2fa").into_response());
    }
    let Some(secret) = state
        .totp_pending_secret(me.user.id, me.session_hash)
        .await?
    else {
        // Nothing pending in this session (another one may have replaced it):
        // say so, and show this session a key of its own.
        let mut errors = FieldErrors::default();
        errors.add("code", "2fa.new_secret");
        return setup_page(&state, &ctx, &me, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    };
    let now_secs = u64::try_from(now()).unwrap_or(0);
    let Some(step) = totp::matching_step(&secret, &f.code, now_secs) else {
        let mut errors = FieldErrors::default();
        errors.add("code", "2fa.bad_code");
        return setup_page(&state, &ctx, &me, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    };
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let code = random_recovery_code()?;
        let normalized = normalize_recovery_code(&code)
            .ok_or_else(|| anyhow::anyhow!("recovery code format"))?;
        hashes.push(hash_recovery_code(me.user.id, &normalized));
        codes.push(code);
    }
    // The confirming code's step is recorded as used: it cannot log in again.
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    // Ends every other session of the account: one opened with the password
    // alone before enrolment must not carry on beside the new second factor.
    if !state
        .store
        .enable_totp(me.user.id, step, hashes, me.session_hash)
        .await?
    {
        return Ok(Redirect::to("/account/2fa").into_response());
    }
    // A privilege change: new session id. It just proved the second factor
    // (a code from the new secret), so it counts as having passed it.
    let (cookie, _) =
        session::start(&state, Some(me.session_hash), me.user.id, Stage::Full, true).await?;
    tracing::info!(user_id = me.user.id, "two-factor authentication turned on");
    let mut res = render(StatusCode::OK, &RecoveryCodesPage { ctx: &ctx, codes })?;
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

#[derive(Deserialize)]
struct DisableForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

async fn twofa_disable(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Form(f): Form<DisableForm>,
) -> Result<Response> {
    if me.user.role == Role::Admin {
        return Err(AppError::Forbidden);
    }
    if !me.user.totp_enabled {
        return Ok(Redirect::to("/account/2fa").into_response());
    }
    let bucket = account_bucket(&me.user.email);
    let user_bucket = format!("u:{}", me.user.id);
    let t = state.config.throttle;
    let mut errors = FieldErrors::default();
    // Reserved before the checks, as for a password change.
    if state
        .store
        .reserve_attempt(vec![bucket.clone()], bucket.clone(), t)
        .await?
        .is_some()
    {
        errors.add("password", "login.throttled");
    } else {
        let hash = state.store.password_hash(me.user.id).await?;
        let password_ok = state.hasher.verify(Secret::new(f.password), hash).await?;
        let code_ok = password_ok && check_second_factor(&state, &me.user, &f.code).await?;
        if !password_ok {
            errors.add("password", "err.current_password");
        } else if !code_ok {
            errors.add("code", "totp.bad_code");
        }
        if code_ok {
            state.store.release_attempt(bucket, false, t).await?;
        } else {
            state.store.count_shared_failure(user_bucket, t).await?;
        }
    }
    if !errors.is_empty() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &TwofaManagePage {
                ctx: &ctx,
                errors,
                is_admin: false,
            },
        );
    }
    state
        .store
        .disable_totp(me.user.id, me.session_hash)
        .await?;
    let (cookie, _) = session::start(
        &state,
        Some(me.session_hash),
        me.user.id,
        Stage::Full,
        false,
    )
    .await?;
    tracing::info!(user_id = me.user.id, "two-factor authentication turned off");
    Ok(redirect_with_cookies("/account", vec![cookie]))
}
