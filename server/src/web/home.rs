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

/// `/`, `/lang/{code}`, `/healthz` (the process answers), `/readyz` (it
/// can serve: what a proxy or an orchestrator routes on).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/lang/{code}", get(switch_lang))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}

/// 200 `ready` when the database answers with every migration applied and
/// the signing key is in the keyring and not withdrawn; else 503 and the
/// first reason, in one line (details, such as paths and hosts, go to the
/// log only: the probe is public).
async fn ready(State(state): State<AppState>) -> Response {
    let not_ready = |why: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, crate::db::RETRY_AFTER_SECS.to_string())],
            format!("not ready: {why}\n"),
        )
            .into_response()
    };
    match state.store.schema_is_current().await {
        Ok(true) => {}
        Ok(false) => return not_ready("the database schema is not this build's".into()),
        Err(e) => {
            tracing::warn!(error = %e, "readyz: database");
            return not_ready("the database is unavailable".into());
        }
    }
    let app = state.clone();
    let keys = tokio::task::spawn_blocking(move || {
        crate::trust::current(&app.config.keys_dir, &app.signer).map(|_| ())
    })
    .await;
    match keys {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = format!("{e:#}"), "readyz: signing key");
            not_ready("the signing key is not usable (see the log)".into())
        }
        Err(e) => {
            tracing::warn!(error = %e, "readyz: signing key check");
            not_ready("the signing key check failed".into())
        }
    }
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
