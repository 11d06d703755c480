//! The HTTP layer: one router per area, merged here, and the middleware every
//! request goes through (tracing, security headers, body limit, CSRF).

pub mod account;
pub mod admin;
pub mod assets;
pub mod auth;
pub mod client;
pub mod cookies;
pub mod csrf;
pub mod ctx;
pub mod headers;
pub mod home;
pub mod pages;
pub mod session;
pub mod shop;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;

use crate::error::{AppError, ErrorInfo};
use crate::state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    Router::new()
        .merge(home::router())
        .merge(auth::router())
        .merge(account::router())
        .merge(assets::router())
        .merge(shop::router())
        .merge(admin::router())
        .merge(crate::api::router())
        .fallback(|| async { AppError::NotFound })
        .layer(from_fn_with_state(state.clone(), csrf::layer))
        .layer(from_fn(api_errors))
        .layer(DefaultBodyLimit::max(limit))
        // The sync API takes larger bodies (scan batches) than the site.
        .layer(from_fn_with_state(state.clone(), crate::api::body_limit))
        .layer(from_fn(close_after_too_large))
        // Inside the router: the matched route pattern labels the latency.
        .layer(from_fn(crate::metrics::track))
        .layer(from_fn_with_state(state.clone(), headers::layer))
        .layer(
            // Log the path only: queries carry single-use tokens.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

/// A 413 (body too large, site or API) ends the connection and says so.
/// The body was not read to its end, so the server cannot serve another
/// request on that connection; without `Connection: close`, a client that
/// reuses its connections sends its next request into a closed one.
/// HTTP/1 only: HTTP/2 has no such header, and its streams end on their own.
async fn close_after_too_large(req: axum::extract::Request, next: Next) -> Response {
    let http1 = req.version() <= axum::http::Version::HTTP_11;
    let mut res = next.run(req).await;
    if http1 && res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        res.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    res
}

/// Under `/api/`, error pages become the sync API's JSON error body
/// ([`jo_shared::api::ApiError`]), with the same status.
async fn api_errors(req: axum::extract::Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    match res.extensions().get::<ErrorInfo>().copied() {
        Some(info) if api => {
            let body = jo_shared::api::ApiError {
                error: info.code.to_owned(),
                message: info.message.to_owned(),
            };
            (res.status(), Json(body)).into_response()
        }
        _ => res,
    }
}
