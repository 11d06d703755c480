//! Extractors of the sync API: JSON bodies and queries whose rejections are
//! 400 [`ApiError`](jo_shared::api::ApiError)s saying what is wrong, and the
//! authenticated, rate-limited device.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiFailure;
use super::rate::RateLimiter;
use crate::auth::tokens::{hash_token, is_token_shaped};
use crate::state::AppState;

/// A JSON body; a malformed one is a 400 whose message names the field
/// (`records[0].scan_id: …`), an oversized one a 413.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiFailure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rej) => Err(json_failure(&rej)),
        }
    }
}

fn json_failure(rej: &JsonRejection) -> ApiFailure {
    if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiFailure::TooLarge(0);
    }
    ApiFailure::BadRequest(rej.body_text())
}

/// A query string; a malformed one is a 400 saying what is wrong.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(rej) => Err(query_failure(&rej)),
        }
    }
}

fn query_failure(rej: &QueryRejection) -> ApiFailure {
    ApiFailure::BadRequest(rej.body_text())
}

/// The device making an API call: its bearer token is live, and it is
/// within its rate limit.
#[derive(Debug, Clone)]
pub struct Device {
    /// The device id.
    pub id: String,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// The SHA-256 of the token used for this call.
    pub token_hash: [u8; 32],
}

/// How often a device's `last_sync_at` is refreshed by calls that write
/// nothing else (a write per call would contend with uploads).
const TOUCH_EVERY_SECS: i64 = 60;

/// The token of an `Authorization: Bearer <token>` header.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && is_token_shaped(token)).then_some(token)
}

impl FromRequestParts<AppState> for Device {
    type Rejection = ApiFailure;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Missing, malformed, unknown and revoked tokens all get the same 401.
        let token_hash = hash_token(bearer(parts).ok_or(ApiFailure::Unauthorized)?);
        let device = state
            .store
            .api_device(token_hash)
            .await?
            .ok_or(ApiFailure::Unauthorized)?;
        if let Some(limiter) = parts.extensions.get::<Arc<RateLimiter>>() {
            let p = state.config.api;
            limiter.check(&device.id, p.rate_per_sec, p.rate_burst)?;
        }
        let now = crate::units::time::now();
        if device
            .last_sync_at
            .is_none_or(|t| now.saturating_sub(t) >= TOUCH_EVERY_SECS)
        {
            state.store.touch_device(device.id.clone()).await?;
        }
        Ok(Device {
            id: device.id,
            public_key: device.public_key,
            token_hash,
        })
    }
}
