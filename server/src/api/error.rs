//! The sync API's errors: every non-2xx answer is a JSON
//! [`jo_shared::api::ApiError`] with a stable code.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jo_shared::api::ApiError;

use crate::db::StoreError;

/// What went wrong with an API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    /// 400 `bad_request`: malformed JSON, wrong types, values out of bounds.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 400 `bad_signature`: the batch's device signature does not verify.
    #[error("bad batch signature")]
    BadSignature,
    /// 401 `unauthorized`: no valid device token. One answer for a missing,
    /// malformed, unknown or revoked token: no hint whether a device exists.
    #[error("unauthorized")]
    Unauthorized,
    /// 403 `invalid_code`: the enrolment code is unknown, used or expired.
    #[error("invalid enrolment code")]
    InvalidCode,
    /// 404 `not_found`.
    #[error("not found")]
    NotFound,
    /// 405 `method_not_allowed`.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409 `list_ahead`: the device holds a revocation list version the
    /// server does not have.
    #[error("revocation list ahead: server at {0}")]
    ListAhead(u64),
    /// 413 `too_large`: the body exceeds the API's cap (in bytes; 0 when
    /// the cap is not known where the body was cut).
    #[error("body too large")]
    TooLarge(usize),
    /// 429 `rate_limited`: too many requests from this device; retry after
    /// the given seconds.
    #[error("rate limited")]
    RateLimited(u64),
    /// 500 `internal`: details go to the log only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ApiFailure {
    fn from(e: StoreError) -> Self {
        ApiFailure::Internal(e.into())
    }
}

impl From<jo_shared::doublekey::RandomError> for ApiFailure {
    fn from(e: jo_shared::doublekey::RandomError) -> Self {
        ApiFailure::Internal(e.into())
    }
}

/// The body and status of an error.
pub fn error_body(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: code.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        match self {
            ApiFailure::BadRequest(m) => error_body(StatusCode::BAD_REQUEST, "bad_request", m),
            ApiFailure::BadSignature => error_body(
                StatusCode::BAD_REQUEST,
                "bad_signature",
                "the batch signature does not verify with this device's public key",
            ),
            ApiFailure::Unauthorized => {
                let mut res = error_body(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "a valid device token is required (Authorization: Bearer <token>)",
                );
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                res
            }
            ApiFailure::InvalidCode => error_body(
                StatusCode::FORBIDDEN,
                "invalid_code",
                "the enrolment code is unknown, already used or expired",
            ),
            ApiFailure::NotFound => {
                error_body(StatusCode::NOT_FOUND, "not_found", "no such API route")
            }
            ApiFailure::MethodNotAllowed => error_body(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept this method",
            ),
            ApiFailure::ListAhead(latest) => error_body(
                StatusCode::CONFLICT,
                "list_ahead",
                format!(
                    "the server's revocation list is at version {latest}, behind the device's: start again from since=0"
                ),
            ),
            ApiFailure::TooLarge(limit) => error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                if limit == 0 {
                    "the request body is too large".to_owned()
                } else {
                    format!("the request body exceeds {limit} bytes")
                },
            ),
            ApiFailure::RateLimited(secs) => {
                let mut res = error_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests: retry in {secs} s"),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                res
            }
            ApiFailure::Internal(e) if StoreError::in_chain(&e) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable (sync API)");
                let mut res = error_body(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!(
                        "the database is unavailable for now: retry in {} s",
                        crate::db::RETRY_AFTER_SECS
                    ),
                );
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::db::RETRY_AFTER_SECS),
                );
                res
            }
            ApiFailure::Internal(e) => {
                // The one place the API's internal errors are logged.
                tracing::error!(error = format!("{e:#}"), "internal error in the sync API");
                error_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal server error",
                )
            }
        }
    }
}
