//! The scanners' sync API, JSON under `/api/v1/`, described by the OpenAPI
//! document at `/api/v1/openapi.json` (generated from these handlers and the
//! shared wire types, so it cannot drift from them).
//!
//! Every route but enrolment and the document needs `Authorization: Bearer
//! <device token>`; a missing, malformed, unknown or revoked token gets one
//! and the same 401. Each device is rate-limited (token bucket, 429 with
//! `Retry-After`). Errors are [`jo_shared::api::ApiError`] JSON bodies.

mod down;
mod enroll;
mod error;
mod extract;
mod openapi;
mod rate;
mod scans;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use jo_shared::api::paths;

pub use down::{
    ENTRIES_POLL_INTERVAL, EntriesSignal, LATEST_VERSION_HEADER, MAX_ENTRIES_PAGE,
    MAX_ENTRIES_WAIT_SECS, MAX_REVOCATIONS_PAGE,
};
pub use error::ApiFailure;
pub use openapi::openapi_json;
pub use scans::{MAX_LABEL_BYTES, MAX_RAW_BYTES};

use crate::error::AppError;
use crate::state::AppState;

/// The API's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ENROLL, post(enroll::enroll))
        .route(paths::TOKEN, post(enroll::roll_token))
        .route(paths::KEYRING, get(down::keyring))
        .route(paths::DEVICES, get(down::devices))
        .route(paths::SESSIONS, get(down::sessions))
        .route(paths::REVOCATIONS, get(down::revocations))
        .route(paths::ENTRIES, get(down::entries))
        .route(paths::SCANS, post(scans::upload))
        .route(paths::OPENAPI, get(openapi::serve))
        .method_not_allowed_fallback(|| async { ApiFailure::MethodNotAllowed })
        // The size cap of API bodies is set by [`body_limit`] for the whole
        // `/api/` tree; the site-wide extractor default (64 KiB) is lifted here.
        .layer(DefaultBodyLimit::disable())
        .layer(Extension(Arc::new(rate::RateLimiter::default())))
        // One per router (one per node): the scan upload wakes the entries
        // long-polls held on this node; other nodes' waiters see the new
        // rows at their next table poll.
        .layer(Extension(Arc::new(EntriesSignal::default())))
}

/// The request body cap: the API's (a batch of scans) for the scan upload,
/// which authenticates before it reads the body; the site's (64 KiB)
/// everywhere else, enrolment included. Over the cap: 413, as JSON under
/// `/api/`.
pub async fn body_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let api = path.starts_with("/api/");
    let limit = if path == paths::SCANS {
        state.config.api.body_limit_bytes
    } else {
        state.config.body_limit_bytes
    };
    let too_large = || {
        if api {
            ApiFailure::TooLarge(limit).into_response()
        } else {
            AppError::TooLarge.into_response()
        }
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    // Bodies without a length (chunked) are cut at the cap while read; the
    // extractors answer 413 then.
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}
