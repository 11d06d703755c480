//! The audit log, read-only: who did what, to what, when, from where.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{Admin, fmt_time};
use crate::db::audit::AuditEntry;
use crate::error::Result;
use crate::state::AppState;
use crate::web::ctx::PageCtx;
use crate::web::pages::render;

/// Entries per page.
const PAGE: i64 = 100;

/// An entry with its time as text.
pub(super) struct AuditLine {
    e: AuditEntry,
    at: String,
}

/// `/admin/audit`.
#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage<'a> {
    ctx: &'a PageCtx,
    entries: Vec<AuditLine>,
    /// Cursor of the next (older) page, if there may be one.
    older: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct Cursor {
    #[serde(default)]
    before: String,
}

/// `GET /admin/audit?before=ID`: newest first.
pub(super) async fn page(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(c): Query<Cursor>,
) -> Result<Response> {
    let before = c.before.trim().parse::<i64>().ok();
    let entries: Vec<AuditLine> = state
        .store
        .admin_audit(before, PAGE)
        .await?
        .into_iter()
        .map(|e| AuditLine {
            at: fmt_time(e.at),
            e,
        })
        .collect();
    let older = (entries.len() == usize::try_from(PAGE).unwrap_or(usize::MAX))
        .then(|| entries.last().map(|l| l.e.id))
        .flatten();
    render(
        StatusCode::OK,
        &AuditPage {
            ctx: &ctx,
            entries,
            older,
        },
    )
}
