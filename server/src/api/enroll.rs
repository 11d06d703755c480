//! Enrolment (a one-time code and the device's public key for a device id
//! and token) and token rolls.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jo_shared::api::{EnrollRequest, EnrollResponse, TokenResponse};
use jo_shared::signing::verifying_key_from_bytes;

use super::error::ApiFailure;
use super::extract::{ApiJson, Device};
use super::rate::RateLimiter;
use crate::auth::tokens::{hash_enrollment_code, hash_token, random_token};
use crate::db::devices::NewDevice;
use crate::state::AppState;
use crate::web::client::ClientIp;

/// Longest device label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// A random device id: `dev-` and 20 hex digits (80 bits).
fn new_device_id() -> Result<String, ApiFailure> {
    let mut b = [0u8; 10];
    jo_shared::doublekey::random_bytes(&mut b)?;
    Ok(format!("dev-{}", hex::encode(b)))
}

/// The device's public key: 32 bytes, base64url without padding, a valid
/// curve point.
fn parse_public_key(s: &str) -> Result<[u8; 32], ApiFailure> {
    let bad = || {
        ApiFailure::BadRequest(
            "device_public_key: must be a 32-byte Ed25519 public key, base64url without padding"
                .into(),
        )
    };
    if s.len() != 43 {
        return Err(bad());
    }
    let raw = URL_SAFE_NO_PAD.decode(s.as_bytes()).map_err(|_| bad())?;
    let key = verifying_key_from_bytes(&raw).ok_or_else(bad)?;
    if key.is_weak() {
        return Err(bad());
    }
    Ok(key.to_bytes())
}

fn parse_label(s: &str) -> Result<String, ApiFailure> {
    let label = s.trim();
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(ApiFailure::BadRequest(format!(
            "label: at most {MAX_LABEL_CHARS} characters, no control characters"
        )));
    }
    Ok(label.to_owned())
}

/// Trades a one-time enrolment code and the device's public key for a
/// device id and a bearer token.
#[utoipa::path(
    post,
    path = "/api/v1/enroll",
    tag = "enrolment",
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "Enrolled: keep the token, it is shown once", body = EnrollResponse),
        (status = 400, description = "Malformed request or public key", body = jo_shared::api::ApiError),
        (status = 403, description = "Unknown, used or expired enrolment code", body = jo_shared::api::ApiError),
        (status = 413, description = "Body too large", body = jo_shared::api::ApiError),
        (status = 429, description = "Too many attempts from this address: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    Extension(limiter): Extension<Arc<RateLimiter>>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiFailure> {
    // Before anything else: each attempt may open a write transaction, and
    // codes must not be guessed at speed.
    let policy = state.config.api;
    limiter.check_per_minute(
        &format!("enroll {ip}"),
        policy.enroll_per_minute,
        policy.enroll_burst,
    )?;
    // Input is checked before the code is spent, so a typo does not burn it.
    let public_key = parse_public_key(&req.device_public_key)?;
    let label = parse_label(&req.label)?;
    let code_hash = hash_enrollment_code(&req.code).ok_or(ApiFailure::InvalidCode)?;
    let token = random_token()?;
    let id = new_device_id()?;
    let device = NewDevice {
        id: id.clone(),
        label,
        public_key,
        token_hash: hash_token(&token),
    };
    if !state
        .store
        .redeem_enrollment_code(code_hash, device)
        .await?
    {
        return Err(ApiFailure::InvalidCode);
    }
    tracing::info!(device_id = %id, "scanner device enrolled");
    let (_, keyring) = crate::trust::current_for(&state)
        .await
        .map_err(ApiFailure::Internal)?;
    Ok(Json(EnrollResponse {
        device_id: id,
        token,
        server_time: crate::units::time::now(),
        keyring,
    }))
}

/// Replaces the token used for this call by a new one; the old one stops
/// working at once. Any body is ignored.
#[utoipa::path(
    post,
    path = "/api/v1/token",
    tag = "enrolment",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new token", body = TokenResponse),
        (status = 401, description = "No valid device token", body = jo_shared::api::ApiError),
        (status = 413, description = "Body too large", body = jo_shared::api::ApiError),
        (status = 429, description = "Rate limited: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn roll_token(
    State(state): State<AppState>,
    device: Device,
) -> Result<Json<TokenResponse>, ApiFailure> {
    let token = random_token()?;
    if !state
        .store
        .roll_device_token(device.id.clone(), device.token_hash, hash_token(&token))
        .await?
    {
        // Revoked or rolled by a concurrent call meanwhile.
        return Err(ApiFailure::Unauthorized);
    }
    tracing::info!(device_id = %device.id, "device token rolled");
    Ok(Json(TokenResponse { token }))
}
