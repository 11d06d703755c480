//! Scanner devices: one-time enrolment codes (text and QR), the list of
//! devices with their last sync and pending uploads, revocation.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Admin, fmt_opt_time, fmt_time};
use crate::auth::tokens::{hash_enrollment_code, random_enrollment_code};
use crate::db::devices::DeviceRow;
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::web::ctx::PageCtx;
use crate::web::pages::render;

/// Lifetime of an enrolment code made in the console.
const CODE_TTL_SECS: i64 = 24 * 3600;

/// A device row with display strings.
pub(super) struct DeviceLine {
    d: DeviceRow,
    enrolled: String,
    last_sync: String,
    revoked: String,
}

/// A code just created, shown once.
pub(super) struct NewCode {
    code: String,
    expires: String,
    /// The QR symbol as SVG markup (our own output, no script).
    qr_svg: String,
    qr_text: String,
}

/// `/admin/devices`.
#[derive(Template)]
#[template(path = "admin/devices.html")]
struct DevicesPage<'a> {
    ctx: &'a PageCtx,
    devices: Vec<DeviceLine>,
    live_codes: i64,
    new_code: Option<NewCode>,
    notice: &'static str,
}

#[derive(Deserialize)]
pub(super) struct Done {
    #[serde(default)]
    done: String,
}

async fn page_with(
    state: &AppState,
    ctx: &PageCtx,
    new_code: Option<NewCode>,
    notice: &'static str,
) -> Result<Response> {
    let devices = state
        .store
        .admin_devices()
        .await?
        .into_iter()
        .map(|d| DeviceLine {
            enrolled: fmt_time(d.enrolled_at),
            last_sync: fmt_opt_time(d.last_sync_at),
            revoked: fmt_opt_time(d.revoked_at),
            d,
        })
        .collect();
    let live_codes = state.store.admin_live_codes().await?;
    render(
        StatusCode::OK,
        &DevicesPage {
            ctx,
            devices,
            live_codes,
            new_code,
            notice,
        },
    )
}

/// `GET /admin/devices`.
pub(super) async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<Done>,
) -> Result<Response> {
    let notice = match q.done.as_str() {
        "revoked" => "admin.devices.revoked_notice",
        _ => "",
    };
    page_with(&state, &ctx, None, notice).await
}

/// `POST /admin/devices/codes`: a new one-time code, shown on this answer
/// only (the database keeps its hash), as text and as a QR the scanner reads.
pub(super) async fn create_code(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response> {
    let code = random_enrollment_code()?;
    let hash =
        hash_enrollment_code(&code).ok_or_else(|| anyhow::anyhow!("enrolment code format"))?;
    let expires_at = state
        .store
        .admin_create_enrollment_code(admin.actor, hash, CODE_TTL_SECS)
        .await?;
    // The QR pins the keyring the admin's server holds now: a gate enrolled
    // through a lying network refuses any other.
    let (_, chain) = crate::trust::current_for(&state).await?;
    let keyring_fingerprint = chain
        .last()
        .ok_or_else(|| anyhow::anyhow!("empty keyring chain"))?
        .fingerprint()
        .map_err(|e| anyhow::anyhow!("keyring fingerprint: {e}"))?;
    let qr_text = jo_shared::api::EnrollmentInvite {
        server_url: state.public_url.clone(),
        code: code.clone(),
        keyring_fingerprint,
    }
    .to_qr_text();
    let svg =
        jo_shared::qr::render_svg(&qr_text).map_err(|e| anyhow::anyhow!("enrolment QR: {e}"))?;
    // Inline markup: drop the XML prolog, which HTML does not take.
    let qr_svg = svg
        .find("<svg")
        .map_or(svg.as_str(), |i| &svg[i..])
        .to_owned();
    tracing::info!("enrolment code created");
    page_with(
        &state,
        &ctx,
        Some(NewCode {
            code,
            expires: fmt_time(expires_at),
            qr_svg,
            qr_text,
        }),
        "",
    )
    .await
}

/// `POST /admin/devices/{id}/revoke`: the sync API refuses the device from
/// its next call.
pub(super) async fn revoke(
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::NotFound);
    }
    if !state.store.admin_revoke_device(admin.actor, id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!("device revoked");
    Ok(Redirect::to("/admin/devices?done=revoked").into_response())
}
