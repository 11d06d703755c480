//! One error type for every handler, mapped to an HTML page (or JSON under
//! `/api/`). Internal errors are logged here, once, and shown as a generic page.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::db::StoreError;

/// What went wrong while handling a request.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: malformed request.
    #[error("bad request")]
    BadRequest,
    /// 403: CSRF token missing or wrong, cross-site request, or not allowed.
    #[error("forbidden")]
    Forbidden,
    /// 404: no such page or object (also for objects of other users).
    #[error("not found")]
    NotFound,
    /// 413: request body too large.
    #[error("payload too large")]
    TooLarge,
    /// 303 to the login page: no valid session.
    #[error("login required")]
    LoginRequired,
    /// 303 to the given local path (e.g. an admin without 2FA to enrolment).
    #[error("redirect to {0}")]
    Redirect(&'static str),
    /// 500: anything else; details go to the log only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Result of a handler.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<jo_shared::doublekey::RandomError> for AppError {
    fn from(e: jo_shared::doublekey::RandomError) -> Self {
        AppError::Internal(e.into())
    }
}

/// Marker put in the extensions of error responses, so the API layer can
/// turn them into JSON.
#[derive(Clone, Copy, Debug)]
pub struct ErrorInfo {
    /// Machine-readable code.
    pub code: &'static str,
    /// What went wrong, in English.
    pub message: &'static str,
}

/// The error page. It is shown in both languages: an error may happen before
/// the request's language is known.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    fr: &'static str,
    en: &'static str,
}

/// The error page of `status` with the message `key` in both languages,
/// marked with its [`ErrorInfo`] for the API layer.
fn error_page(status: StatusCode, key: &'static str, code: &'static str) -> Response {
    let page = ErrorPage {
        status: status.as_u16(),
        fr: crate::i18n::Lang::Fr.t(key),
        en: crate::i18n::Lang::En.t(key),
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("{} {}", status.as_u16(), code));
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    res.extensions_mut().insert(ErrorInfo {
        code,
        message: page.en,
    });
    res
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, key, code) = match &self {
            AppError::LoginRequired => return Redirect::to("/login").into_response(),
            AppError::Redirect(to) => return Redirect::to(to).into_response(),
            AppError::BadRequest => (StatusCode::BAD_REQUEST, "error.bad_request", "bad_request"),
            AppError::Forbidden => (StatusCode::FORBIDDEN, "error.forbidden", "forbidden"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "error.not_found", "not_found"),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "error.too_large",
                "too_large",
            ),
            AppError::Internal(e) if StoreError::in_chain(e) => {
                // Not a bug: the database is away (restarting, failing over).
                tracing::warn!(error = format!("{e:#}"), "database unavailable");
                // 503 with Retry-After: a short "try again" page.
                let mut res = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error.unavailable",
                    "unavailable",
                );
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(crate::db::RETRY_AFTER_SECS),
                );
                return res;
            }
            AppError::Internal(e) => {
                // The one place internal errors are logged.
                tracing::error!(error = format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error.internal",
                    "internal",
                )
            }
        };
        error_page(status, key, code)
    }
}
