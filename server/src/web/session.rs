//! Login sessions seen from HTTP: the session cookie, the extractors that
//! require (or offer) a logged-in user, and session rotation.

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::request::Parts;

use crate::auth::tokens::{hash_token, is_token_shaped, random_token};
use crate::db::sessions::{SessionInfo, Stage};
use crate::db::users::{Role, User};
use crate::error::AppError;
use crate::state::AppState;
use crate::units::time::now;
use crate::web::cookies;

/// Write `last_seen_at` at most this often (or every half idle timeout, if
/// shorter): saves a write per request, at the cost of that much precision.
const TOUCH_EVERY_SECS: i64 = 60;

/// A loaded session, cached in the request extensions so that several
/// extractors cost one query.
#[derive(Clone)]
struct Loaded(Option<(SessionInfo, [u8; 32])>);

async fn load(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<(SessionInfo, [u8; 32])>, AppError> {
    if let Some(Loaded(l)) = parts.extensions.get::<Loaded>() {
        return Ok(l.clone());
    }
    let hash = cookies::get(&parts.headers, state.cookie_name("jo_session"))
        .filter(|v| is_token_shaped(v))
        .map(hash_token);
    let loaded = match hash {
        None => None,
        Some(h) => match state
            .store
            .session(h, state.config.sessions.idle_secs)
            .await?
        {
            None => None,
            Some(info) => {
                let every = TOUCH_EVERY_SECS.min(state.config.sessions.idle_secs / 2);
                if now() - info.last_seen_at >= every {
                    state.store.touch_session(h).await?;
                }
                Some((info, h))
            }
        },
    };
    parts.extensions.insert(Loaded(loaded.clone()));
    Ok(loaded)
}

/// A fully logged-in user. Rejects with a redirect to the login page; an
/// admin without two-factor authentication is sent to enrol it first.
#[derive(Clone)]
pub struct CurrentUser {
    /// The user.
    pub user: User,
    /// Hash of the session id (to rotate or end it).
    pub session_hash: [u8; 32],
    /// Whether this session passed the second factor (not whether the
    /// account has it on: a session opened before enrolment did not).
    pub second_factor: bool,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match load(parts, state).await? {
            Some((info, h)) if info.stage == Stage::Full => {
                let path = parts.uri.path();
                if info.user.role == Role::Admin
                    && !info.user.totp_enabled
                    && !path.starts_with("/account/2fa")
                {
                    return Err(AppError::Redirect("/account/2fa"));
                }
                Ok(Self {
                    user: info.user,
                    session_hash: h,
                    second_factor: info.second_factor,
                })
            }
            _ => Err(AppError::LoginRequired),
        }
    }
}

/// The logged-in user, if any (for pages that everyone may see).
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(Self(match load(parts, state).await? {
            Some((info, h)) if info.stage == Stage::Full => Some(CurrentUser {
                user: info.user,
                session_hash: h,
                second_factor: info.second_factor,
            }),
            _ => None,
        }))
    }
}

/// A login half-way: password checked, second factor due.
pub struct PendingLogin {
    /// The user.
    pub user: User,
    /// Hash of the pending session id.
    pub session_hash: [u8; 32],
}

impl FromRequestParts<AppState> for PendingLogin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        match load(parts, state).await? {
            Some((info, h)) if info.stage == Stage::SecondFactor => Ok(Self {
                user: info.user,
                session_hash: h,
            }),
            _ => Err(AppError::LoginRequired),
        }
    }
}

/// The hash of the request's session id, whatever its state (for logout).
pub fn presented_session(
    parts_headers: &axum::http::HeaderMap,
    state: &AppState,
) -> Option<[u8; 32]> {
    cookies::get(parts_headers, state.cookie_name("jo_session"))
        .filter(|v| is_token_shaped(v))
        .map(hash_token)
}

/// Starts a session with a fresh id, ending `old` (fixation defence: the id
/// changes at login, at the second factor and at every privilege change).
/// `second_factor` says whether the new session passed the second factor.
/// Returns the `Set-Cookie` header and the new id's hash.
pub async fn start(
    state: &AppState,
    old: Option<[u8; 32]>,
    user_id: i64,
    stage: Stage,
    second_factor: bool,
) -> Result<(HeaderValue, [u8; 32]), AppError> {
    let id = random_token()?;
    let hash = hash_token(&id);
    let lifetime = match stage {
        Stage::Full => state.config.sessions.absolute_secs,
        Stage::SecondFactor => state.config.sessions.second_factor_secs,
    };
    state
        .store
        .rotate_session(old, hash, user_id, stage, second_factor, lifetime)
        .await?;
    let cookie = cookies::set(
        state.cookie_name("jo_session"),
        &id,
        None,
        // Lax, so that following a link from an email to the site keeps the session.
        cookies::SameSite::Lax,
        state.https,
    );
    Ok((cookie, hash))
}

/// The `Set-Cookie` header that removes the session cookie.
pub fn clear_cookie(state: &AppState) -> HeaderValue {
    cookies::clear(state.cookie_name("jo_session"), state.https)
}
