//! Resale at face value, from "my tickets" (list, withdraw) and the session
//! page (buy): the purchase is a pending order paid on the normal payment
//! page; on payment the ticket moves into the buyer's order and the seller
//! is refunded through the payment gateway ([`settle_payouts`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::db::audit::Actor;
use crate::db::resale::{BuyOutcome, ListOutcome};
use crate::error::{AppError, Result};
use crate::shop::payment::RefundRequest;
use crate::state::AppState;
use crate::web::client::ClientIp;
use crate::web::ctx::PageCtx;
use crate::web::session::CurrentUser;

use super::{Gateway, parse_id, parse_ticket_id};

fn actor(me: &CurrentUser, ip: ClientIp) -> Actor {
    Actor {
        id: me.user.id,
        username: me.user.username.clone(),
        ip: ip.0.to_string(),
    }
}

/// `POST /tickets/{id}/resale`: lists the ticket at the price paid for it.
pub async fn list(
    State(state): State<AppState>,
    me: CurrentUser,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_ticket_id(&id).ok_or(AppError::NotFound)?;
    let out = state
        .store
        .list_for_resale(actor(&me, ip), jo_shared::TicketId(id))
        .await?;
    let notice = match out {
        ListOutcome::NotFound => return Err(AppError::NotFound),
        ListOutcome::Listed(_) => {
            tracing::info!("ticket listed for resale");
            "listed"
        }
        ListOutcome::AlreadyListed => "already_listed",
        ListOutcome::NotValid => "not_changeable",
    };
    Ok(Redirect::to(&format!("/tickets/done?notice={notice}")).into_response())
}

/// `POST /tickets/{id}/resale/withdraw`: takes the listing back while no
/// buyer holds it.
pub async fn withdraw(
    State(state): State<AppState>,
    me: CurrentUser,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_ticket_id(&id).ok_or(AppError::NotFound)?;
    let done = state
        .store
        .withdraw_listing(actor(&me, ip), jo_shared::TicketId(id))
        .await?;
    let notice = if done { "withdrawn" } else { "not_withdrawn" };
    Ok(Redirect::to(&format!("/tickets/done?notice={notice}")).into_response())
}

/// `POST /resale/{id}/buy`: holds the listing in a new pending order and
/// goes to its payment page; a listing sold, withdrawn or held by another
/// buyer meanwhile is "gone" (409).
pub async fn buy(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response> {
    if !me.user.email_verified {
        return Err(AppError::Forbidden);
    }
    let id = parse_id(&id).ok_or(AppError::NotFound)?;
    let out = state
        .store
        .buy_listing(me.user.id, id, state.config.shop)
        .await?;
    let code = match out {
        BuyOutcome::Created(number) => {
            tracing::info!(order = %number, "resale ticket held for payment");
            return Ok(Redirect::to(&format!("/orders/{number}/pay")).into_response());
        }
        BuyOutcome::Gone => "resale_gone",
        BuyOutcome::Own => "resale_own",
        BuyOutcome::Limit(_) => "session_limit",
    };
    super::transfers::done_page(&ctx, StatusCode::CONFLICT, code, String::new())
}

/// Refunds the sellers of resold tickets what they are owed, through the
/// gateway, once per listing (the listing is the idempotency key): called
/// after a payment commits. A refund the gateway refuses stays due and is
/// tried again after the next payment.
pub async fn settle_payouts(state: &AppState, gateway: &Gateway) {
    let due = match state.store.due_payouts().await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "resale refunds not read");
            return;
        }
    };
    for p in due {
        let key = format!("resale-payout-{}", p.listing);
        let out = gateway
            .refund(RefundRequest {
                idempotency_key: &key,
                transaction_id: &p.transaction_id,
                amount_cents: p.amount_cents,
                reference: &p.order_number,
            })
            .await;
        match out {
            Ok(reference) => {
                if let Err(e) = state.store.payout_done(p.listing, reference).await {
                    tracing::warn!(listing = p.listing, error = %e, "resale refund made but not recorded");
                } else {
                    tracing::info!(
                        listing = p.listing,
                        amount_cents = p.amount_cents,
                        "resale seller refunded"
                    );
                }
            }
            Err(why) => tracing::warn!(listing = p.listing, error = %why, "resale refund refused"),
        }
    }
}
