//! Static assets, embedded in the binary: the server needs no asset directory
//! and no CDN.

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::error::AppError;
use crate::state::AppState;

const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
    (
        "admin.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/admin.css"),
    ),
    (
        "logo.svg",
        "image/svg+xml",
        include_bytes!("../../static/logo.svg"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
];

/// `/static/{file}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/static/{file}", get(asset))
}

async fn asset(Path(file): Path<String>) -> Result<impl IntoResponse, AppError> {
    let (_, mime, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, *mime),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        *bytes,
    ))
}
