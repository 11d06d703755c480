//! Password reset by email.

use super::register::TokenQuery;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::tokens::{hash_token, is_token_shaped};
use crate::config::Secret;
use crate::db::tokens::Purpose;
use crate::domain::{Email, check_new_password_off_thread};
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::web::ctx::PageCtx;
use crate::web::pages::{FieldErrors, ForgotPage, ResetPage, render};
use crate::web::session::{self};

use super::{account_bucket, echo, in_background, mail_link, message};

/// The reset request form.
#[derive(Deserialize)]
pub(super) struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `GET /password/forgot`.
pub(super) async fn forgot_form(ctx: PageCtx) -> Result<Response> {
    render(
        StatusCode::OK,
        &ForgotPage {
            ctx: &ctx,
            errors: FieldErrors::default(),
            email: "",
        },
    )
}

/// `POST /password/forgot`: same answer whether the address has an account or not.
pub(super) async fn forgot(
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(f): Form<ForgotForm>,
) -> Result<Response> {
    let email = match Email::parse(&f.email) {
        Ok(e) => e,
        Err(key) => {
            let mut errors = FieldErrors::default();
            errors.add("email", key);
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ForgotPage {
                    ctx: &ctx,
                    errors,
                    email: echo(&f.email),
                },
            );
        }
    };
    let (lang, st) = (ctx.lang, state.clone());
    in_background("password reset request", async move {
        if let Some((user, _)) = st.store.user_by_email(email.as_str().to_owned()).await? {
            mail_link(&st, &user, Purpose::ResetPassword, lang).await?;
        }
        Ok(())
    });
    message(
        &ctx,
        StatusCode::OK,
        "forgot.title",
        "forgot.done",
        "info",
        None,
    )
}

/// `GET /password/reset?token=…`.
pub(super) async fn form(
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<TokenQuery>,
) -> Result<Response> {
    if !super::link_is_live(&state, &q.token, Purpose::ResetPassword).await? {
        return message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "reset.title",
            "verify.invalid",
            "error",
            Some(("/password/forgot", "login.forgot")),
        );
    }
    render(
        StatusCode::OK,
        &ResetPage {
            ctx: &ctx,
            errors: FieldErrors::default(),
            token: &q.token,
        },
    )
}

/// The new-password form.
#[derive(Deserialize)]
pub(super) struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// `POST /password/reset`: new password, all sessions ended.
pub(super) async fn submit(
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(f): Form<ResetForm>,
) -> Result<Response> {
    let invalid = || {
        message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "reset.title",
            "verify.invalid",
            "error",
            Some(("/password/forgot", "login.forgot")),
        )
    };
    if !is_token_shaped(&f.token) {
        return invalid();
    }
    let hash = hash_token(&f.token);
    let Some(user_id) = state.store.peek_token(hash, Purpose::ResetPassword).await? else {
        return invalid();
    };
    let user = state.store.user(user_id).await?.ok_or(AppError::NotFound)?;
    if let Err(e) = check_new_password_off_thread(
        &f.password,
        &f.password_confirm,
        &[
            &user.username,
            &user.email,
            &user.first_name,
            &user.last_name,
        ],
    )
    .await?
    {
        let mut errors = FieldErrors::default();
        errors.add_password_error(e);
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ResetPage {
                ctx: &ctx,
                errors,
                token: &f.token,
            },
        );
    }
    let new_hash = state.hasher.hash(Secret::new(f.password)).await?;
    if state
        .store
        .consume_token(
            hash,
            Purpose::ResetPassword,
            Some(new_hash),
            Some(account_bucket(&user.email)),
        )
        .await?
        .is_none()
    {
        return invalid();
    }
    tracing::info!(user_id, "password reset; all sessions ended");
    let mut res = message(
        &ctx,
        StatusCode::OK,
        "reset.title",
        "reset.done",
        "success",
        Some(("/login", "nav.login")),
    )?;
    res.headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie(&state));
    Ok(res)
}
