//! The HTTP layer: one router per area, merged here, and the middleware every
//! request goes through (tracing, security headers, body limit, CSRF).

pub mod account;
pub mod assets;
pub mod auth;
pub mod cookies;
pub mod csrf;
pub mod ctx;
pub mod headers;
pub mod home;
pub mod pages;
pub mod session;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::from_fn_with_state;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::error::AppError;
use crate::state::AppState;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    Router::new()
        .merge(home::router())
        .merge(auth::router())
        .merge(account::router())
        .merge(assets::router())
        .fallback(|| async { AppError::NotFound })
        .layer(from_fn_with_state(state.clone(), csrf::layer))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(from_fn_with_state(state.clone(), headers::layer))
        .layer(
            // Log the path only: queries carry single-use tokens.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}
