//! Resale at face value, from "my tickets" (list, withdraw) and the session
//! page (buy): a listing goes into the buyer's cart and is bought through
//! the normal checkout and payment page, with any other line; on payment
//! the ticket moves into the buyer's order and the seller is refunded
//! through the payment gateway ([`settle_payouts`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

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

use super::{parse_id, parse_ticket_id};

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

/// `POST /resale/{id}/buy`: puts the listing in the buyer's cart, beside
/// the primary offers, and goes to the cart; checkout holds it with the
/// cart's other lines. A listing sold, withdrawn or held by another buyer
/// meanwhile is "gone" (409).
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
        .cart_add_listing(me.user.id, id, state.config.shop)
        .await?;
    let code = match out {
        BuyOutcome::Added => return Ok(Redirect::to("/cart?added=1").into_response()),
        BuyOutcome::Gone => "resale_gone",
        BuyOutcome::Own => "resale_own",
        BuyOutcome::Limit(_) => "session_limit",
        BuyOutcome::CartFull => "cart_full",
    };
    super::transfers::done_page(&ctx, StatusCode::CONFLICT, code, String::new())
}

/// Refunds the sellers of resold tickets what they are owed, through the
/// gateway, once per listing (the listing is the idempotency key, so two
/// nodes paying the same listing at once refund it once): called after a
/// payment commits. A refund the gateway refuses stays due and is tried
/// again by [`settle_payouts_periodically`].
pub async fn settle_payouts(state: &AppState) {
    let Some(due) = due_payouts(state).await else {
        return;
    };
    for p in due {
        let _ = pay_out(state, &p).await;
    }
}

/// Longest wait between two tries of a refused refund.
const PAYOUT_RETRY_MAX: Duration = Duration::from_secs(3600);

/// Tries again, on every node, the sellers' refunds still owed: one the
/// gateway refused (or a node that died between the sale and the refund)
/// is paid without waiting for another sale. Each refused listing waits
/// `config.shop.payout_retry_secs`, doubling to [`PAYOUT_RETRY_MAX`]; the waits are
/// this node's own (a restart tries at once, which the idempotency key
/// makes harmless).
pub async fn settle_payouts_periodically(state: AppState) {
    let every = Duration::from_secs(state.config.shop.sweep_secs.max(1));
    let first = Duration::from_secs(state.config.shop.payout_retry_secs.max(1));
    let mut tick = tokio::time::interval(every);
    let mut waits: HashMap<i64, (Duration, Instant)> = HashMap::new();
    loop {
        tick.tick().await;
        let Some(due) = due_payouts(&state).await else {
            continue;
        };
        let now = Instant::now();
        waits.retain(|listing, _| due.iter().any(|p| p.listing == *listing));
        for p in due {
            if waits.get(&p.listing).is_some_and(|(_, next)| *next > now) {
                continue;
            }
            if pay_out(&state, &p).await {
                waits.remove(&p.listing);
            } else {
                let wait = waits
                    .get(&p.listing)
                    .map_or(first, |(w, _)| (*w * 2).min(PAYOUT_RETRY_MAX));
                waits.insert(p.listing, (wait, Instant::now() + wait));
            }
        }
    }
}

async fn due_payouts(state: &AppState) -> Option<Vec<crate::db::resale::Payout>> {
    match state.store.due_payouts().await {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(error = %e, "resale refunds not read");
            None
        }
    }
}

/// One seller's refund through the gateway; `true` once made and recorded.
async fn pay_out(state: &AppState, p: &crate::db::resale::Payout) -> bool {
    let key = format!("resale-payout-{}", p.listing);
    let out = state
        .gateway
        .refund(RefundRequest {
            idempotency_key: &key,
            transaction_id: &p.transaction_id,
            amount_cents: p.amount_cents,
            reference: &p.order_number,
        })
        .await;
    match out {
        Ok(reference) => match state.store.payout_done(p.listing, reference).await {
            Ok(()) => {
                tracing::info!(
                    listing = p.listing,
                    amount_cents = p.amount_cents,
                    "resale seller refunded"
                );
                true
            }
            Err(e) => {
                // Tried again later under the same key: the gateway
                // answers with the same refund, which is then recorded.
                tracing::warn!(listing = p.listing, error = %e, "resale refund made but not recorded");
                false
            }
        },
        Err(why) => {
            tracing::warn!(listing = p.listing, error = %why, "resale refund refused; tried again later");
            false
        }
    }
}
