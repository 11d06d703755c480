//! Down-sync: keyring, sessions, revocation deltas, other gates' entries.
//! Each is a few indexed reads; revocation states are signed per request
//! (one Ed25519 signature, ~20 µs).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use jo_shared::api::{
    EntriesResponse, KeyringResponse, RevocationDelta, SessionsResponse, SignedDeviceList,
};
use jo_shared::revocation::SignedListState;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiFailure;
use super::extract::{ApiQuery, Device};
use crate::db::revocations::RevocationPageError;
use crate::state::AppState;

/// Sessions stay listed this long after they end (late entries, re-syncs).
const SESSION_GRACE_SECS: i64 = 24 * 60 * 60;

/// Most revocation entries in one answer (about 2.5 MB of JSON).
pub const MAX_REVOCATIONS_PAGE: u32 = 50_000;

/// Most entries in one answer.
pub const MAX_ENTRIES_PAGE: u32 = 10_000;

/// Entries in one answer unless the device asks for fewer.
const DEFAULT_ENTRIES_PAGE: u32 = 5_000;

/// Header of a revocation answer: the list's latest version, so that a device
/// knows how far it still is (it asks again from the delta's end).
pub const LATEST_VERSION_HEADER: &str = "x-jo-revocations-latest";

/// The signed keyring chain: every statement from version 1, each signed
/// by a key of the one before it, so a gate follows key rotations and
/// withdrawals from the version it pinned at enrolment.
#[utoipa::path(
    get,
    path = "/api/v1/keyring",
    tag = "down-sync",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keyring chain", body = KeyringResponse),
        (status = 401, description = "No valid device token", body = jo_shared::api::ApiError),
        (status = 429, description = "Rate limited: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn keyring(
    State(state): State<AppState>,
    _device: Device,
) -> Result<Json<KeyringResponse>, ApiFailure> {
    // Read at each call: a key withdrawn in withdrawn.txt is served at once.
    let (_, chain) = crate::trust::current_for(&state)
        .await
        .map_err(ApiFailure::Internal)?;
    Ok(Json(KeyringResponse { chain }))
}

/// Every enrolled device's public key and whether it is revoked, signed by
/// the server's ticket key: gates believe another gate's admission only
/// when it verifies with an active key of this list.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "down-sync",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed device list", body = SignedDeviceList),
        (status = 401, description = "No valid device token", body = jo_shared::api::ApiError),
        (status = 429, description = "Rate limited: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn devices(
    State(state): State<AppState>,
    _device: Device,
) -> Result<Json<SignedDeviceList>, ApiFailure> {
    let list = crate::trust::device_list(&state, crate::units::time::now())
        .await
        .map_err(ApiFailure::Internal)?;
    Ok(Json(list))
}

/// The sessions gates serve: every scheduled session that has not ended
/// more than a day ago.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "down-sync",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Sessions", body = SessionsResponse),
        (status = 401, description = "No valid device token", body = jo_shared::api::ApiError),
        (status = 429, description = "Rate limited: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn sessions(
    State(state): State<AppState>,
    _device: Device,
) -> Result<Json<SessionsResponse>, ApiFailure> {
    let sessions = state.store.gate_sessions(SESSION_GRACE_SECS).await?;
    Ok(Json(SessionsResponse { sessions }))
}

/// Query of `GET /api/v1/revocations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RevocationsParams {
    /// The version the device holds (0 or absent: none, the full list).
    #[serde(default)]
    #[param(minimum = 0)]
    pub since: u64,
    /// Most entries to return (default and maximum 50,000).
    #[param(minimum = 1, maximum = 50000)]
    pub limit: Option<u32>,
}

/// The revocation entries after `since`, at most `limit`, with the server's
/// signature over the list state they lead to. Ask again from the answer's
/// `state.version` until an answer brings no entry (or until it reaches the
/// `X-JO-Revocations-Latest` header's version).
#[utoipa::path(
    get,
    path = "/api/v1/revocations",
    tag = "down-sync",
    security(("bearer" = [])),
    params(RevocationsParams),
    responses(
        (status = 200, description = "A signed delta", body = RevocationDelta,
         headers(("x-jo-revocations-latest" = u64, description = "The list's latest version"))),
        (status = 400, description = "Malformed query", body = jo_shared::api::ApiError),
        (status = 401, description = "No valid device token", body = jo_shared::api::ApiError),
        (status = 409, description = "The device's version is ahead of the server's", body = jo_shared::api::ApiError),
        (status = 429, description = "Rate limited: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn revocations(
    State(state): State<AppState>,
    _device: Device,
    ApiQuery(q): ApiQuery<RevocationsParams>,
) -> Result<Response, ApiFailure> {
    let limit = match q.limit {
        None => MAX_REVOCATIONS_PAGE,
        Some(n) if (1..=MAX_REVOCATIONS_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiFailure::BadRequest(format!(
                "limit: must be between 1 and {MAX_REVOCATIONS_PAGE}"
            )));
        }
    };
    let page = match state.store.revocation_page(q.since, limit as usize).await? {
        Ok(p) => p,
        Err(RevocationPageError::Ahead { latest }) => return Err(ApiFailure::ListAhead(latest)),
    };
    let delta = RevocationDelta {
        from_version: q.since,
        entries: page.entries,
        state: SignedListState::sign(
            &state.signer,
            page.version,
            page.head,
            crate::units::time::now(),
        ),
    };
    let mut res = Json(delta).into_response();
    res.headers_mut().insert(
        HeaderName::from_static(LATEST_VERSION_HEADER),
        HeaderValue::from(page.latest),
    );
    Ok(res)
}

/// Query of `GET /api/v1/entries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntriesParams {
    /// The `next_cursor` of the previous answer (0 or absent: from the start).
    #[serde(default)]
    #[param(minimum = 0)]
    pub cursor: u64,
    /// Most entries to return (default 5,000, at most 10,000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// Admissions other devices uploaded after `cursor`, oldest first. Ask
/// again from `next_cursor` while `more` is true.
#[utoipa::path(
    get,
    path = "/api/v1/entries",
    tag = "down-sync",
    security(("bearer" = [])),
    params(EntriesParams),
    responses(
        (status = 200, description = "A page of entries", body = EntriesResponse),
        (status = 400, description = "Malformed query", body = jo_shared::api::ApiError),
        (status = 401, description = "No valid device token", body = jo_shared::api::ApiError),
        (status = 429, description = "Rate limited: see Retry-After", body = jo_shared::api::ApiError),
    )
)]
pub async fn entries(
    State(state): State<AppState>,
    device: Device,
    ApiQuery(q): ApiQuery<EntriesParams>,
) -> Result<Json<EntriesResponse>, ApiFailure> {
    let limit = match q.limit {
        None => DEFAULT_ENTRIES_PAGE,
        Some(n) if (1..=MAX_ENTRIES_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiFailure::BadRequest(format!(
                "limit: must be between 1 and {MAX_ENTRIES_PAGE}"
            )));
        }
    };
    let page = state
        .store
        .entries_page(device.id, q.cursor, limit as usize)
        .await?;
    Ok(Json(EntriesResponse {
        entries: page.entries,
        next_cursor: page.next_cursor,
        more: page.more,
    }))
}
