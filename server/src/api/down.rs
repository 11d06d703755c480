//! Down-sync: keyring, sessions, revocation deltas, other gates' entries.
//! Each is a few indexed reads; revocation states are signed per request
//! (one Ed25519 signature, ~20 µs). The entries feed can be long-polled
//! (`wait`): a gate holds one request open and gets another gate's
//! admission as soon as it is stored.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
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

/// Longest `wait` of the entries long-poll, seconds: well below the gates'
/// request timeout (20 s) and a client's or proxy's usual 10 s read
/// timeout, so that an idle connection is never dropped on the way; a gate
/// asks again at once, one request per 8 s.
pub const MAX_ENTRIES_WAIT_SECS: u32 = 8;

/// While long-polls wait on a node, the newest scan id is read this often:
/// an entry stored by another node of the cluster (whose upload signals only
/// its own waiters) reaches this node's waiters within this time. One read
/// of the primary key's end per node per tick, however many gates wait.
pub const ENTRIES_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Wakes the entries long-polls of this node when scans were stored: a
/// counter bumped after an upload's commit on this node, or when the
/// watcher sees a newer scan id (another node's upload); each waiter holds
/// a receiver.
#[derive(Debug)]
pub struct EntriesSignal {
    tx: tokio::sync::watch::Sender<u64>,
    watching: std::sync::atomic::AtomicBool,
}

impl Default for EntriesSignal {
    fn default() -> Self {
        Self {
            tx: tokio::sync::watch::Sender::new(0),
            watching: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl EntriesSignal {
    /// Tells every waiter that new rows may be in the table.
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Long-polls waiting now.
    pub fn waiters(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Starts, once per node, the task that reads the newest scan id every
    /// [`ENTRIES_POLL_INTERVAL`] while long-polls wait and wakes them when
    /// it grew. A read that fails (database away) is tried at the next tick.
    fn watch(self: &Arc<Self>, state: AppState) {
        use std::sync::atomic::Ordering;
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        // The task holds the signal weakly: it ends with the router (and
        // lets go of the state then).
        let signal = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last: Option<i64> = None;
            loop {
                tokio::time::sleep(ENTRIES_POLL_INTERVAL).await;
                let Some(s) = signal.upgrade() else { return };
                if s.waiters() == 0 {
                    // Nobody waits: the next waiter reads the table itself.
                    last = None;
                    continue;
                }
                if let Ok(id) = state.store.last_scan_id().await {
                    // The first read of a waiting spell wakes the waiters
                    // too: a row stored before it may be newer than what
                    // they read.
                    if last.is_none_or(|l| id > l) {
                        s.notify();
                    }
                    last = Some(id);
                }
            }
        });
    }
}

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
    /// Long-poll: when no entry waits, hold the request up to this many
    /// seconds (at most 8) and answer as soon as one is stored. 0 or
    /// absent: answer at once.
    #[serde(default)]
    #[param(minimum = 0, maximum = 8)]
    pub wait: u32,
}

/// Admissions other devices uploaded after `cursor`, oldest first. Ask
/// again from `next_cursor` while `more` is true. With `wait`, an answer
/// without entries comes only after that many seconds, or earlier with the
/// first entry stored meanwhile (long-poll: one request open per gate).
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
    Extension(signal): Extension<Arc<EntriesSignal>>,
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
    if q.wait > MAX_ENTRIES_WAIT_SECS {
        return Err(ApiFailure::BadRequest(format!(
            "wait: must be between 0 and {MAX_ENTRIES_WAIT_SECS}"
        )));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(q.wait));
    // Subscribed before the first read: an upload committed between the
    // read and the wait still wakes this request.
    let mut wake = signal.subscribe();
    if q.wait > 0 {
        signal.watch(state.clone());
    }
    let mut cursor = q.cursor;
    let page = loop {
        wake.borrow_and_update();
        let page = state
            .store
            .entries_page(device.id.clone(), cursor, limit as usize)
            .await?;
        if !page.entries.is_empty() || page.more || tokio::time::Instant::now() >= deadline {
            break page;
        }
        // Rows read but not for this device (its own, a revoked device's)
        // are not read again.
        cursor = page.next_cursor;
        // Woken by an upload on this node or by the watcher (another
        // node's); the table is read again only then.
        tokio::select! {
            changed = wake.changed() => {
                if changed.is_err() {
                    // No sender (the router is going away): answer now.
                    break state
                        .store
                        .entries_page(device.id.clone(), cursor, limit as usize)
                        .await?;
                }
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
    };
    Ok(Json(EntriesResponse {
        entries: page.entries,
        next_cursor: page.next_cursor,
        more: page.more,
    }))
}
