//! Orders and tickets: search (email, name, order number, ticket code),
//! view, revoke a ticket with a reason, refund an order, re-issue a ticket.
//! Every revocation goes through `db::tickets::revoke`, so it enters
//! the signed list scanners sync.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::TicketId;
use serde::Deserialize;

use super::{Admin, echo, fmt_opt_time, fmt_time, has_control, money};
use crate::db::orders::{OrderDetail, OrderHit, RefundOutcome};
use crate::db::tickets::{ReissueOutcome, TicketRow};
use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::units::status::{OrderStatus, TicketStatus};
use crate::web::ctx::PageCtx;
use crate::web::pages::{FieldErrors, render};

/// Most search results shown.
const SEARCH_LIMIT: i64 = 50;

/// An order row of the search results.
pub(super) struct HitLine {
    h: OrderHit,
    created: String,
    total: String,
}

/// `/admin/orders`.
#[derive(Template)]
#[template(path = "admin/orders.html")]
struct SearchPage<'a> {
    ctx: &'a PageCtx,
    q: String,
    hits: Vec<HitLine>,
}

/// A ticket line with display strings.
pub(super) struct TicketLine {
    t: TicketRow,
    issued: String,
}

/// `/admin/orders/{number}`.
#[derive(Template)]
#[template(path = "admin/order.html")]
struct OrderPage<'a> {
    ctx: &'a PageCtx,
    d: OrderDetail,
    /// Message key of the order's status.
    status_key: String,
    created: String,
    paid: String,
    refunded: String,
    total: String,
    lines: Vec<(String, String, i64, String)>,
    tickets: Vec<TicketLine>,
    notice: &'static str,
}

/// `/admin/tickets/{code}`.
#[derive(Template)]
#[template(path = "admin/ticket.html")]
struct TicketPage<'a> {
    ctx: &'a PageCtx,
    t: TicketLine,
    errors: FieldErrors,
    note: String,
    notice: &'static str,
    /// The chain of holders, oldest first, each with its issue time.
    chain: Vec<(crate::db::tickets::ChainLink, String)>,
    /// The transfers along the chain.
    transfers: Vec<(crate::db::transfers::TransferRow, String)>,
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /admin/orders?q=…`.
pub(super) async fn search(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(sq): Query<SearchQuery>,
) -> Result<Response> {
    let q = echo(&sq.q, 120);
    let hits = state
        .store
        .admin_search_orders(q.clone(), SEARCH_LIMIT)
        .await?
        .into_iter()
        .map(|h| HitLine {
            created: fmt_time(h.created_at),
            total: money(h.total_cents),
            h,
        })
        .collect();
    render(StatusCode::OK, &SearchPage { ctx: &ctx, q, hits })
}

#[derive(Deserialize)]
pub(super) struct Done {
    #[serde(default)]
    done: String,
}

/// Order numbers are short printable tokens; anything else is not one.
fn order_number_ok(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `GET /admin/orders/{number}`.
pub(super) async fn order(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(number): Path<String>,
    Query(q): Query<Done>,
) -> Result<Response> {
    if !order_number_ok(&number) {
        return Err(AppError::NotFound);
    }
    let d = state
        .store
        .admin_order(number)
        .await?
        .ok_or(AppError::NotFound)?;
    let notice = match q.done.as_str() {
        "refunded" => "admin.orders.refunded_notice",
        "handed_over" => "admin.orders.handed_over_notice",
        _ => "",
    };
    render(
        StatusCode::OK,
        &OrderPage {
            ctx: &ctx,
            status_key: format!("admin.order_status.{}", d.order.status),
            created: fmt_time(d.order.created_at),
            paid: fmt_opt_time(d.paid_at),
            refunded: fmt_opt_time(d.refunded_at),
            total: money(d.order.total_cents),
            lines: d
                .lines
                .iter()
                .map(|l| {
                    (
                        l.session.clone(),
                        l.offer.clone(),
                        l.quantity,
                        money(l.unit_price_cents),
                    )
                })
                .collect(),
            tickets: d
                .tickets
                .iter()
                .map(|t| TicketLine {
                    issued: fmt_time(t.issued_at),
                    t: t.clone(),
                })
                .collect(),
            d,
            notice,
        },
    )
}

/// `POST /admin/orders/{number}/refund`.
pub(super) async fn refund(
    admin: Admin,
    State(state): State<AppState>,
    Path(number): Path<String>,
) -> Result<Response> {
    if !order_number_ok(&number) {
        return Err(AppError::NotFound);
    }
    match state
        .store
        .admin_refund_order(admin.actor, number.clone())
        .await?
    {
        RefundOutcome::NotFound => Err(AppError::NotFound),
        // Not paid (pending, expired or already refunded): nothing to do.
        RefundOutcome::NotPaid => {
            Ok(Redirect::to(&format!("/admin/orders/{number}")).into_response())
        }
        RefundOutcome::Refunded(n) => {
            tracing::info!(tickets = n, "order refunded");
            Ok(Redirect::to(&format!("/admin/orders/{number}?done=refunded")).into_response())
        }
        RefundOutcome::HandedOver(_) => {
            Ok(Redirect::to(&format!("/admin/orders/{number}?done=handed_over")).into_response())
        }
    }
}

fn parse_code(code: &str) -> Result<TicketId> {
    TicketId::from_hex(&code.to_ascii_lowercase()).map_err(|_| AppError::NotFound)
}

async fn ticket_page(
    state: &AppState,
    ctx: &PageCtx,
    id: TicketId,
    status: StatusCode,
    errors: FieldErrors,
    note: String,
    notice: &'static str,
) -> Result<Response> {
    let (t, chain) = tokio::try_join!(
        state.store.admin_ticket(id),
        state.store.admin_ticket_chain(id)
    )?;
    let t = t.ok_or(AppError::NotFound)?;
    let (chain, transfers) = chain.unwrap_or_default();
    render(
        status,
        &TicketPage {
            ctx,
            t: TicketLine {
                issued: fmt_time(t.issued_at),
                t,
            },
            errors,
            note,
            notice,
            chain: chain
                .into_iter()
                .map(|l| {
                    let at = fmt_time(l.issued_at);
                    (l, at)
                })
                .collect(),
            transfers: transfers
                .into_iter()
                .map(|x| {
                    let at = fmt_time(x.created_at);
                    (x, at)
                })
                .collect(),
        },
    )
}

/// `GET /admin/tickets/{code}`.
pub(super) async fn ticket(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Query(q): Query<Done>,
) -> Result<Response> {
    let id = parse_code(&code)?;
    let notice = match q.done.as_str() {
        "revoked" => "admin.tickets.revoked_notice",
        "reissued" => "admin.tickets.reissued_notice",
        _ => "",
    };
    ticket_page(
        &state,
        &ctx,
        id,
        StatusCode::OK,
        FieldErrors::default(),
        String::new(),
        notice,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

/// `POST /admin/tickets/{code}/revoke`: a reason (fraud or other) and a note.
pub(super) async fn revoke(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Form(f): Form<RevokeForm>,
) -> Result<Response> {
    let id = parse_code(&code)?;
    let mut errors = FieldErrors::default();
    // Refund, cancellation and re-issue have their own actions.
    let reason = match f.reason.as_str() {
        "fraud" => Some(RevocationReason::Fraud),
        "other" => Some(RevocationReason::Other),
        _ => {
            errors.add("reason", "admin.err.choose");
            None
        }
    };
    let note = f.note.trim();
    if note.is_empty() {
        errors.add("note", "admin.err.note_required");
    } else if note.chars().count() > 200 {
        errors.add("note", "admin.err.note_too_long");
    } else if has_control(note) {
        errors.add("note", "admin.err.control_chars");
    }
    let Some(reason) = reason.filter(|_| errors.is_empty()) else {
        return ticket_page(
            &state,
            &ctx,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            echo(&f.note, 200),
            "",
        )
        .await;
    };
    match state
        .store
        .admin_revoke_ticket(admin.actor, id, reason, note.to_owned())
        .await?
    {
        None => Err(AppError::NotFound),
        Some(_) => Ok(
            Redirect::to(&format!("/admin/tickets/{}?done=revoked", id.to_hex())).into_response(),
        ),
    }
}

/// `POST /admin/tickets/{code}/reissue`: new secret and signature, the old
/// ticket revoked; goes to the new ticket.
pub(super) async fn reissue(
    admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
) -> Result<Response> {
    let id = parse_code(&code)?;
    match state
        .store
        .admin_reissue_ticket(
            admin.actor,
            id,
            state.signer.clone(),
            crate::web::shop::transfers::reissued_mail(state.public_url.clone()),
        )
        .await?
    {
        ReissueOutcome::NotFound => Err(AppError::NotFound),
        ReissueOutcome::NotValid => {
            let mut errors = FieldErrors::default();
            errors.add("reissue", "admin.err.reissue_not_valid");
            ticket_page(
                &state,
                &ctx,
                id,
                StatusCode::CONFLICT,
                errors,
                String::new(),
                "",
            )
            .await
        }
        ReissueOutcome::Reissued(new) => {
            tracing::info!("ticket re-issued");
            Ok(Redirect::to(&format!("/admin/tickets/{new}?done=reissued")).into_response())
        }
    }
}

/// `/admin/sessions/{id}/transfers`.
#[derive(Template)]
#[template(path = "admin/session_transfers.html")]
struct SessionTransfersPage<'a> {
    ctx: &'a PageCtx,
    session_id: i64,
    title: String,
    /// Transfers, newest first, with the offer's time.
    transfers: Vec<(crate::db::transfers::TransferRow, String)>,
    /// Resales, newest first: the row, its time, face value and refund.
    resales: Vec<(crate::db::resale::ResaleRow, String, String, String)>,
}

/// `GET /admin/sessions/{id}/transfers`: the transfers and resales of a
/// session's tickets (the latest 500 of each), each ticket linked to its
/// page and chain of holders.
pub(super) async fn session_transfers(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = crate::web::shop::parse_id(&id).ok_or(AppError::NotFound)?;
    let (session, transfers, resales) = tokio::try_join!(
        state.store.game_session(id),
        state.store.admin_session_transfers(id, 500),
        state.store.admin_session_resales(id, 500)
    )?;
    let session = session.ok_or(AppError::NotFound)?;
    render(
        StatusCode::OK,
        &SessionTransfersPage {
            ctx: &ctx,
            session_id: id,
            title: session.title,
            transfers: transfers
                .into_iter()
                .map(|x| {
                    let at = fmt_time(x.created_at);
                    (x, at)
                })
                .collect(),
            resales: resales
                .into_iter()
                .map(|r| {
                    let at = fmt_time(r.created_at);
                    let face = money(r.face_cents);
                    let payout = r.payout_cents.map(money).unwrap_or_default();
                    (r, at, face, payout)
                })
                .collect(),
        },
    )
}
