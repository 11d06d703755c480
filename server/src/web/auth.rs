//! Registration, email verification, login (password then TOTP), logout and
//! password reset.
//!
//! No answer here depends on whether an email address has an account:
//! registration and reset always say "if this address can be used, we sent
//! a mail" (the mail itself differs), and a failed login says the same thing
//! in the same time (a dummy argon2 verification for unknown addresses).

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use jo_shared::doublekey::UserKey;

use crate::auth::tokens::{
    ct_eq, hash_recovery_code, hash_token, is_token_shaped, mac, normalize_recovery_code,
    random_token,
};
use crate::auth::totp;
use crate::config::Secret;
use crate::db::now;
use crate::db::sessions::Stage;
use crate::db::tokens::Purpose;
use crate::db::users::{Conflict, NewUser, Role, User};
use crate::domain::{Email, PersonName, Username, check_new_password};
use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::mail::Mail;
use crate::state::AppState;
use crate::web::client::ClientIp;
use crate::web::cookies;
use crate::web::csrf;
use crate::web::ctx::PageCtx;
use crate::web::pages::{
    FieldErrors, ForgotPage, LoginPage, MessagePage, RegisterPage, ResetPage, TotpPage, VerifyPage,
    render,
};
use crate::web::session::{self, PendingLogin, presented_session};

/// Lifetime of an email-verification link.
const VERIFY_TTL_SECS: i64 = 24 * 3600;
/// Lifetime of a password-reset link.
const RESET_TTL_SECS: i64 = 3600;
/// Lifetime of the trusted-device cookie.
const DEVICE_COOKIE_SECS: i64 = 180 * 24 * 3600;

/// The authentication pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", get(register_form).post(register))
        .route("/register/done", get(register_done))
        .route("/verify-email", get(verify_form).post(verify))
        .route("/login", get(login_form).post(login))
        .route("/login/totp", get(totp_form).post(totp_submit))
        .route("/logout", post(logout))
        .route("/password/forgot", get(forgot_form).post(forgot))
        .route("/password/reset", get(reset_form).post(reset))
}

// ----- helpers shared with `account`

/// Sends a mail in the background; failures are logged there, once.
pub fn send_later(state: &AppState, mail: Mail) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = state.mailer.send(mail).await {
            tracing::error!(error = format!("{e:#}"), "mail not sent");
        }
    });
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
    state
        .store
        .create_token(hash_token(&token), user.id, purpose, ttl)
        .await?;
    send_later(
        state,
        Mail {
            to: user.email.clone(),
            subject: lang.t(subject).to_owned(),
            body: format!(
                "{}{}{path}?token={token}{}",
                lang.t(body),
                state.public_url,
                lang.t("mail.footer")
            ),
        },
    );
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

/// Completes a login: a full session under a fresh id, a fresh CSRF cookie,
/// a trusted-device cookie; admins without 2FA go to enrolment.
async fn finish_login(state: &AppState, old: Option<[u8; 32]>, user: &User) -> Result<Response> {
    let (session_cookie, _) = session::start(state, old, user.id, Stage::Full).await?;
    let device = cookies::set(
        state.cookie_name("jo_device"),
        &device_cookie_value(state, &user.email)?,
        Some(DEVICE_COOKIE_SECS),
        cookies::SameSite::Strict,
        state.https,
    );
    tracing::info!(user_id = user.id, "login");
    let to = if user.role == Role::Admin && !user.totp_enabled {
        "/account/2fa"
    } else {
        "/"
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

// ----- registration

#[derive(Deserialize)]
struct RegisterForm {
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

async fn register_form(ctx: PageCtx) -> Result<Response> {
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

async fn register(
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
    if let Err(e) = check_new_password(
        &f.password,
        &f.password_confirm,
        &[&f.username, &f.email, &f.first_name, &f.last_name],
    ) {
        errors.add(
            if e == "err.password_mismatch" {
                "password_confirm"
            } else {
                "password"
            },
            e,
        );
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
                );
            }
            // Taken between the check above and the insert (two simultaneous
            // registrations): the later one is dropped.
            Err(Conflict::Username) => tracing::info!("registration lost a race for its username"),
        }
        Ok(())
    });
    Ok(Redirect::to("/register/done").into_response())
}

async fn register_done(ctx: PageCtx) -> Result<Response> {
    message(
        &ctx,
        StatusCode::OK,
        "register.done_title",
        "register.done_text",
        "info",
        None,
    )
}

// ----- email verification

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn verify_form(
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<TokenQuery>,
) -> Result<Response> {
    // GET only shows a button: mail scanners that prefetch links must not spend the token.
    let live = is_token_shaped(&q.token)
        && state
            .store
            .peek_token(hash_token(&q.token), Purpose::VerifyEmail)
            .await?
            .is_some();
    if !live {
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

async fn verify(
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

// ----- login

#[derive(Deserialize)]
struct LoginForm {
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

async fn login_form(ctx: PageCtx) -> Result<Response> {
    login_page(&ctx, StatusCode::OK, "", "", "info")
}

async fn login(
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
    if state.store.throttled_until(buckets).await?.is_some() {
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
        state
            .store
            .record_login_failure(account, address, state.config.throttle)
            .await?;
        tracing::info!(client = %client, "failed login");
        return login_page(
            &ctx,
            StatusCode::UNAUTHORIZED,
            echo(&f.email),
            "login.bad_credentials",
            "error",
        );
    };
    state.store.clear_throttle(account).await?;
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
        let (cookie, _) = session::start(&state, old, user.id, Stage::SecondFactor).await?;
        return Ok(redirect_with_cookies("/login/totp", vec![cookie]));
    }
    finish_login(&state, old, &user).await
}

// ----- second factor at login

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn totp_form(ctx: PageCtx, _pending: PendingLogin) -> Result<Response> {
    render(
        StatusCode::OK,
        &TotpPage {
            ctx: &ctx,
            errors: FieldErrors::default(),
            notice: "",
        },
    )
}

async fn totp_submit(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ctx: PageCtx,
    pending: PendingLogin,
    Form(f): Form<CodeForm>,
) -> Result<Response> {
    let bucket = format!("t:{}", pending.user.id);
    let address = address_bucket(client);
    if state
        .store
        .throttled_until(vec![bucket.clone(), address.clone()])
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
        state
            .store
            .record_login_failure(bucket, address, state.config.throttle)
            .await?;
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
    state.store.clear_throttle(bucket).await?;
    finish_login(&state, Some(pending.session_hash), &pending.user).await
}

// ----- logout

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(h) = presented_session(&headers, &state) {
        state.store.delete_session(h).await?;
    }
    Ok(redirect_with_cookies(
        "/",
        vec![session::clear_cookie(&state), csrf::fresh_cookie(&state)?],
    ))
}

// ----- password reset

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    email: String,
}

async fn forgot_form(ctx: PageCtx) -> Result<Response> {
    render(
        StatusCode::OK,
        &ForgotPage {
            ctx: &ctx,
            errors: FieldErrors::default(),
            email: "",
        },
    )
}

async fn forgot(
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

async fn reset_form(
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<TokenQuery>,
) -> Result<Response> {
    let live = is_token_shaped(&q.token)
        && state
            .store
            .peek_token(hash_token(&q.token), Purpose::ResetPassword)
            .await?
            .is_some();
    if !live {
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

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn reset(
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
    if let Err(e) = check_new_password(
        &f.password,
        &f.password_confirm,
        &[
            &user.username,
            &user.email,
            &user.first_name,
            &user.last_name,
        ],
    ) {
        let mut errors = FieldErrors::default();
        errors.add(
            if e == "err.password_mismatch" {
                "password_confirm"
            } else {
                "password"
            },
            e,
        );
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
