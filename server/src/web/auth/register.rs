//! Registration and email verification.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use jo_shared::doublekey::UserKey;

use crate::auth::tokens::{hash_token, is_token_shaped};
use crate::config::Secret;
use crate::db::tokens::Purpose;
use crate::db::users::{Conflict, NewUser, Role};
use crate::domain::{Email, PersonName, Username, check_new_password_off_thread};
use crate::error::{AppError, Result};
use crate::mail::Mail;
use crate::state::AppState;
use crate::web::ctx::PageCtx;
use crate::web::pages::{FieldErrors, RegisterPage, VerifyPage, render};

use super::{echo, in_background, mail_allowed, mail_link, message, send_later};

/// The registration form.
#[derive(Deserialize)]
pub(super) struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// `GET /register`.
pub(super) async fn form(ctx: PageCtx) -> Result<Response> {
    render(
        StatusCode::OK,
        &RegisterPage {
            ctx: &ctx,
            errors: FieldErrors::default(),
            username: "",
            email: "",
            first_name: "",
            last_name: "",
        },
    )
}

/// `POST /register`: checks every field, then creates the account (or warns
/// the owner of a taken address) in the background and always redirects to
/// `/register/done`.
pub(super) async fn submit(
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(f): Form<RegisterForm>,
) -> Result<Response> {
    let mut errors = FieldErrors::default();
    let username = Username::parse(&f.username)
        .map_err(|e| errors.add("username", e))
        .ok();
    let email = Email::parse(&f.email)
        .map_err(|e| errors.add("email", e))
        .ok();
    let first_name = PersonName::parse(&f.first_name)
        .map_err(|e| errors.add("first_name", e))
        .ok();
    let last_name = PersonName::parse(&f.last_name)
        .map_err(|e| errors.add("last_name", e))
        .ok();
    if let Err(e) = check_new_password_off_thread(
        &f.password,
        &f.password_confirm,
        &[&f.username, &f.email, &f.first_name, &f.last_name],
    )
    .await?
    {
        errors.add_password_error(e);
    }
    // Usernames are public handles (not login names), so saying one is taken reveals nothing useful.
    if let Some(u) = &username
        && state.store.username_taken(u.as_str().to_owned()).await?
    {
        errors.add("username", "err.username_taken");
    }
    let rerender = |errors: FieldErrors| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RegisterPage {
                ctx: &ctx,
                errors,
                username: echo(&f.username),
                email: echo(&f.email),
                first_name: echo(&f.first_name),
                last_name: echo(&f.last_name),
            },
        )
    };
    let (Some(username), Some(email), Some(first_name), Some(last_name), true) =
        (username, email, first_name, last_name, errors.is_empty())
    else {
        return rerender(errors);
    };
    // Hash before knowing whether the email is taken: both paths cost the same.
    let password_hash = state.hasher.hash(Secret::new(f.password.clone())).await?;
    let new = NewUser {
        username: username.as_str().to_owned(),
        email: email.as_str().to_owned(),
        first_name: first_name.as_str().to_owned(),
        last_name: last_name.as_str().to_owned(),
        password_hash,
        user_key: UserKey::generate()?,
        role: Role::Buyer,
        email_verified: false,
    };
    // Whether the address is taken must show neither in the answer nor in its
    // timing: the account is created (or the owner warned) in the background.
    let lang = ctx.lang;
    let st = state.clone();
    in_background("registration", async move {
        match st.store.create_user(new).await? {
            Ok(id) => {
                tracing::info!(user_id = id, "account registered");
                let user = st.store.user(id).await?.ok_or(AppError::NotFound)?;
                mail_link(&st, &user, Purpose::VerifyEmail, lang).await?;
            }
            Err(Conflict::Email) => {
                // The owner learns of the attempt by mail.
                if !mail_allowed(&st, email.as_str()).await? {
                    return Ok(());
                }
                send_later(
                    &st,
                    Mail {
                        to: email.as_str().to_owned(),
                        subject: lang.t("mail.exists_subject").to_owned(),
                        body: format!(
                            "{}{}/login\n{}/password/forgot{}",
                            lang.t("mail.exists_body"),
                            st.public_url,
                            st.public_url,
                            lang.t("mail.footer")
                        ),
                    },
                    lang,
                )
                .await?;
            }
            // Taken between the check above and the insert (two simultaneous
            // registrations): the later one is dropped.
            Err(Conflict::Username) => tracing::info!("registration lost a race for its username"),
        }
        Ok(())
    });
    Ok(Redirect::to("/register/done").into_response())
}

/// `GET /register/done`.
pub(super) async fn done(ctx: PageCtx) -> Result<Response> {
    message(
        &ctx,
        StatusCode::OK,
        "register.done_title",
        "register.done_text",
        "info",
        None,
    )
}

#[derive(Deserialize)]
/// `?token=…` of a link from an email (also the hidden field of its form).
pub(super) struct TokenQuery {
    #[serde(default)]
    pub(super) token: String,
}

/// `GET /verify-email?token=…`.
pub(super) async fn verify_form(
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<TokenQuery>,
) -> Result<Response> {
    // GET only shows a button: mail scanners that prefetch links must not spend the token.
    if !super::link_is_live(&state, &q.token, Purpose::VerifyEmail).await? {
        return message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "verify.title",
            "verify.invalid",
            "error",
            Some(("/login", "nav.login")),
        );
    }
    render(
        StatusCode::OK,
        &VerifyPage {
            ctx: &ctx,
            token: &q.token,
        },
    )
}

/// `POST /verify-email`: spends the token.
pub(super) async fn verify(
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(f): Form<TokenQuery>,
) -> Result<Response> {
    let user = if is_token_shaped(&f.token) {
        state
            .store
            .consume_token(hash_token(&f.token), Purpose::VerifyEmail, None, None)
            .await?
    } else {
        None
    };
    match user {
        Some(id) => {
            tracing::info!(user_id = id, "email verified");
            message(
                &ctx,
                StatusCode::OK,
                "verify.title",
                "verify.done",
                "success",
                Some(("/login", "nav.login")),
            )
        }
        None => message(
            &ctx,
            StatusCode::BAD_REQUEST,
            "verify.title",
            "verify.invalid",
            "error",
            Some(("/login", "nav.login")),
        ),
    }
}
