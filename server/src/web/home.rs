//! The home page, the language switch and the health check.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::web::cookies;
use crate::web::ctx::{LANG_COOKIE, PageCtx};
use crate::web::pages::{HomePage, render};

/// `/`, `/lang/{code}`, `/healthz`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/lang/{code}", get(switch_lang))
        .route("/healthz", get(|| async { "ok" }))
}

async fn home(ctx: PageCtx) -> Result<Response> {
    render(StatusCode::OK, &HomePage { ctx: &ctx })
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// A local path to go back to: one leading '/', not '//' or '/\' (which
/// browsers treat as another host), no control characters.
pub fn safe_local_path(next: Option<&str>) -> &str {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(char::is_control)
                && p.len() < 512 =>
        {
            p
        }
        _ => "/",
    }
}

async fn switch_lang(
    State(state): State<AppState>,
    Path(code): Path<String>,
    Query(q): Query<Next>,
) -> Result<Response> {
    let lang = Lang::from_code(&code).ok_or(AppError::NotFound)?;
    let cookie = cookies::set(
        LANG_COOKIE,
        lang.code(),
        Some(365 * 24 * 3600),
        cookies::SameSite::Lax,
        state.https,
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(safe_local_path(q.next.as_deref())),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_redirects_are_refused() {
        assert_eq!(safe_local_path(Some("/account")), "/account");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "javascript:x",
            "/a\r\nSet-Cookie: x",
        ] {
            assert_eq!(safe_local_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_local_path(None), "/");
    }
}
