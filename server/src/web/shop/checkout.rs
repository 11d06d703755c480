//! Checkout (a pending order holding its seats), the order page and the
//! simulated payment page.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::tokens::{is_token_shaped, random_token};
use crate::db::orders::{
    CartOwner, ChargeNow, CheckoutOutcome, Order, PaymentResult, PaymentStart,
};
use crate::error::{AppError, Result};
use crate::shop::payment::{CardDetails, CardForm, ChargeOutcome, ChargeRequest, DeclineReason};
use crate::shop::{hm, when};
use crate::state::AppState;
use crate::units::money::Cents;
use crate::units::status::OrderStatus;
use crate::units::time::now;
use crate::web::ctx::PageCtx;
use crate::web::pages::{FieldErrors, render};
use crate::web::session::CurrentUser;

use super::cart::{Notice, cart_page, owner};
use super::parse_order_number;

/// `POST /checkout`: a pending order from the buyer's cart, its seats held
/// in the transaction that checks them; then the payment page.
pub async fn checkout(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    headers: HeaderMap,
) -> Result<Response> {
    if !me.user.email_verified {
        return Err(AppError::Forbidden);
    }
    // A visitor's cart, if the browser still has one, joins the buyer's first.
    let (owner, _) = owner(&state, &headers, Some(me.user.id)).await?;
    let outcome = state.store.checkout(me.user.id, state.config.shop).await?;
    crate::metrics::checkout(&outcome);
    match outcome {
        CheckoutOutcome::Created(number) => {
            tracing::info!(user_id = me.user.id, order = %number, "order created; seats held");
            Ok(Redirect::to(&format!("/orders/{number}/pay")).into_response())
        }
        CheckoutOutcome::Empty => {
            cart_page(
                &state,
                &ctx,
                owner,
                true,
                StatusCode::UNPROCESSABLE_ENTITY,
                "cart.empty".into(),
                &[],
            )
            .await
        }
        CheckoutOutcome::Refused(problems) => {
            cart_page(
                &state,
                &ctx,
                owner,
                true,
                StatusCode::CONFLICT,
                "cart.checkout_refused".into(),
                &problems,
            )
            .await
        }
        CheckoutOutcome::TooManyPending { limit } => {
            refused_over_limit(&state, &ctx, owner, &me, "cart.too_many_pending", limit).await
        }
        CheckoutOutcome::TooManySeats { limit } => {
            refused_over_limit(&state, &ctx, owner, &me, "cart.too_many_seats", limit).await
        }
    }
}

/// The cart page after a checkout refused over one of the buyer's hold
/// limits: the message says which, and the limit.
async fn refused_over_limit(
    state: &AppState,
    ctx: &PageCtx,
    owner: Option<CartOwner>,
    me: &CurrentUser,
    key: &'static str,
    limit: i64,
) -> Result<Response> {
    tracing::info!(
        user_id = me.user.id,
        key,
        "checkout refused: buyer's hold limit"
    );
    cart_page(
        state,
        ctx,
        owner,
        true,
        StatusCode::CONFLICT,
        Notice {
            key,
            limit: Some(limit),
        },
        &[],
    )
    .await
}

/// An order line as shown.
pub struct OrderLineView {
    /// Session id.
    pub session_id: i64,
    /// Session title.
    pub title: String,
    /// Venue.
    pub venue: String,
    /// Date.
    pub when: String,
    /// Offer.
    pub offer: String,
    /// People per ticket.
    pub seats: i64,
    /// Tickets.
    pub quantity: i64,
    /// Unit price.
    pub unit_price: String,
    /// Line total.
    pub total: String,
}

/// An order as shown.
pub struct OrderView {
    /// Public number.
    pub number: String,
    /// Status.
    pub status: OrderStatus,
    /// Message key of the status.
    pub status_key: &'static str,
    /// Total.
    pub total: String,
    /// Hold end (Paris time, "19:45").
    pub hold_until: String,
    /// Lines.
    pub lines: Vec<OrderLineView>,
}

/// Builds an [`OrderView`].
pub fn order_view(o: &Order, ctx: &PageCtx) -> OrderView {
    let status_key = match o.status {
        OrderStatus::Pending => "orders.status_pending",
        OrderStatus::Paid => "orders.status_paid",
        OrderStatus::Expired => "orders.status_expired",
        OrderStatus::Refunded => "orders.status_refunded",
    };
    OrderView {
        number: o.number.clone(),
        status: o.status,
        status_key,
        total: Cents(o.total_cents).fr(),
        hold_until: hm(o.hold_expires_at),
        lines: o
            .lines
            .iter()
            .map(|l| OrderLineView {
                session_id: l.session_id,
                title: l.title.clone(),
                venue: l.venue.clone(),
                when: when(l.starts_at, ctx.lang),
                offer: l.offer_name.clone(),
                seats: l.seats,
                quantity: l.quantity,
                unit_price: Cents(l.unit_price_cents).fr(),
                total: Cents(l.unit_price_cents.saturating_mul(l.quantity)).fr(),
            })
            .collect(),
    }
}

/// `/orders/{number}`.
#[derive(Template)]
#[template(path = "shop/order.html")]
pub struct OrderPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// The order.
    pub order: OrderView,
    /// Public ids of its valid tickets (paid orders).
    pub tickets: Vec<String>,
    /// Message key of a notice, or empty.
    pub notice: &'static str,
    /// Kind of the notice.
    pub notice_kind: &'static str,
}

async fn load_order(state: &AppState, number: &str, me: &CurrentUser) -> Result<Order> {
    let number = parse_order_number(number).ok_or(AppError::NotFound)?;
    state
        .store
        .order_of(number, me.user.id)
        .await?
        .ok_or(AppError::NotFound)
}

fn order_page(
    ctx: &PageCtx,
    o: &Order,
    status: StatusCode,
    notice: &'static str,
    notice_kind: &'static str,
) -> Result<Response> {
    order_page_with(ctx, o, Vec::new(), status, notice, notice_kind)
}

fn order_page_with(
    ctx: &PageCtx,
    o: &Order,
    tickets: Vec<String>,
    status: StatusCode,
    notice: &'static str,
    notice_kind: &'static str,
) -> Result<Response> {
    render(
        status,
        &OrderPage {
            ctx,
            order: order_view(o, ctx),
            tickets,
            notice,
            notice_kind,
        },
    )
}

/// `GET /orders/{number}`.
pub async fn order(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Path(number): Path<String>,
) -> Result<Response> {
    let number = parse_order_number(&number).ok_or(AppError::NotFound)?;
    let (mut o, mut tickets) = state
        .store
        .order_with_tickets(number.clone(), me.user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    if o.status == OrderStatus::Pending && o.hold_expires_at <= now() {
        // The sweeper has not passed yet: expire now, so the page tells the truth.
        state.store.expire_holds().await?;
        (o, tickets) = state
            .store
            .order_with_tickets(number, me.user.id)
            .await?
            .ok_or(AppError::NotFound)?;
    }
    let (notice, kind) = match o.status {
        OrderStatus::Paid => ("orders.paid_notice", "success"),
        OrderStatus::Expired => ("orders.expired_notice", "warning"),
        OrderStatus::Refunded => ("orders.refunded_notice", "info"),
        OrderStatus::Pending => ("", "info"),
    };
    if o.status != OrderStatus::Paid {
        // Only a paid order shows tickets (a refunded one's are revoked).
        tickets.clear();
    }
    order_page_with(&ctx, &o, tickets, StatusCode::OK, notice, kind)
}

/// `/orders/{number}/pay`.
#[derive(Template)]
#[template(path = "shop/pay.html")]
pub struct PayPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// The order.
    pub order: OrderView,
    /// Field errors.
    pub errors: FieldErrors,
    /// Idempotency key of this form.
    pub idem: String,
    /// Holder typed (echoed; never the card number or CVV).
    pub holder: String,
    /// Expiry typed (echoed).
    pub expiry: String,
    /// Message key of a notice (a decline), or empty.
    pub notice: &'static str,
    /// The names the order's tickets will carry, one per ticket (empty:
    /// the buyer's); no names form when empty.
    pub names: Vec<String>,
    /// The buyer's name (each ticket's default).
    pub buyer: String,
    /// Message key of the names form's notice, or empty.
    pub names_notice: &'static str,
}

fn pay_page(
    ctx: &PageCtx,
    o: &Order,
    status: StatusCode,
    errors: FieldErrors,
    idem: String,
    card: (&str, &str),
    notice: &'static str,
) -> Result<Response> {
    pay_page_with(ctx, o, status, errors, idem, card, notice, (Vec::new(), ""))
}

#[allow(clippy::too_many_arguments)]
fn pay_page_with(
    ctx: &PageCtx,
    o: &Order,
    status: StatusCode,
    errors: FieldErrors,
    idem: String,
    (holder, expiry): (&str, &str),
    notice: &'static str,
    (names, names_notice): (Vec<String>, &'static str),
) -> Result<Response> {
    render(
        status,
        &PayPage {
            ctx,
            order: order_view(o, ctx),
            errors,
            idem,
            buyer: holder.chars().take(100).collect(),
            holder: holder.chars().take(100).collect(),
            expiry: expiry.chars().take(7).collect(),
            notice,
            names,
            names_notice,
        },
    )
}

/// The payment page's query: what the names form did.
#[derive(Deserialize)]
pub struct PayQuery {
    #[serde(default)]
    notice: String,
}

/// `GET /orders/{number}/pay`.
pub async fn pay_form(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Path(number): Path<String>,
    axum::extract::Query(q): axum::extract::Query<PayQuery>,
) -> Result<Response> {
    let number = parse_order_number(&number).ok_or(AppError::NotFound)?;
    let (o, last_decline) = state
        .store
        .order_with_last_decline(number, me.user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    if o.status != OrderStatus::Pending || o.hold_expires_at <= now() {
        return Ok(Redirect::to(&format!("/orders/{}", o.number)).into_response());
    }
    let notice = match last_decline {
        Some(code) => DeclineReason::from_code(&code).message_key(),
        None => "",
    };
    let holder = format!("{} {}", me.user.first_name, me.user.last_name);
    let names = state
        .store
        .order_holders(o.number.clone(), me.user.id)
        .await?
        .unwrap_or_default();
    let names_notice = match q.notice.as_str() {
        "names_saved" => "pay.names_saved",
        "name_invalid" => "tickets.name_invalid",
        _ => "",
    };
    pay_page_with(
        &ctx,
        &o,
        StatusCode::OK,
        FieldErrors::default(),
        random_token()?,
        (&holder, ""),
        notice,
        (names, names_notice),
    )
}

/// The payment form. The card number and CVV are dropped (and wiped) with it.
#[derive(Deserialize)]
pub struct PayForm {
    #[serde(default)]
    idem: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    card_expiry: String,
    #[serde(default)]
    card_cvv: String,
    #[serde(default)]
    card_holder: String,
}

/// `POST /orders/{number}/pay`: checks the card, charges it once per
/// idempotency key, and on approval issues the tickets and mails them.
pub async fn pay(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Path(number): Path<String>,
    Form(mut f): Form<PayForm>,
) -> Result<Response> {
    // The card number and CVV are wiped from memory when this request ends.
    let card_number = zeroize::Zeroizing::new(std::mem::take(&mut f.card_number));
    let card_cvv = zeroize::Zeroizing::new(std::mem::take(&mut f.card_cvv));
    let gateway = state.gateway.clone();
    let o = load_order(&state, &number, &me).await?;
    let to_order = || Ok(Redirect::to(&format!("/orders/{}", o.number)).into_response());
    if !is_token_shaped(&f.idem) {
        return Err(AppError::BadRequest);
    }
    if o.status == OrderStatus::Paid {
        return to_order();
    }
    let today = crate::units::time::civil_from_days(now().div_euclid(86_400));
    let card = match CardDetails::parse(
        &CardForm {
            number: &card_number,
            expiry: &f.card_expiry,
            cvv: &card_cvv,
            holder: &f.card_holder,
        },
        today.0,
        today.1,
    ) {
        Ok(c) => c,
        Err(errs) => {
            let mut errors = FieldErrors::default();
            for (field, key) in errs {
                errors.add(field, key);
            }
            // Nothing was recorded under this key: the corrected form reuses it.
            return pay_page(
                &ctx,
                &o,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                f.idem,
                (&f.card_holder, &f.card_expiry),
                "",
            );
        }
    };
    // Shared with the store's blocking task (for a gateway that answers at
    // once) and kept here for one that answers later; wiped with the last copy.
    let card = std::sync::Arc::new(card);
    let charge_now: ChargeNow = {
        let (gateway, card) = (gateway.clone(), card.clone());
        let (idem, reference) = (f.idem.clone(), o.number.clone());
        Box::new(move |amount_cents| {
            gateway
                .charge_now(&ChargeRequest {
                    idempotency_key: &idem,
                    amount_cents,
                    reference: &reference,
                    card: &card,
                })
                .map(approval)
        })
    };
    let start = state
        .store
        .begin_payment(
            o.number.clone(),
            me.user.id,
            f.idem.clone(),
            card.brand(),
            card.last4(),
            charge_now,
            state.signer.clone(),
            ctx.lang.code(),
        )
        .await?;
    let result = match start {
        PaymentStart::Charged(r) => {
            crate::metrics::payment(&r, &o);
            log_result(&state, &me, &o.number, &r);
            r
        }
        PaymentStart::Charge {
            payment_id,
            amount_cents,
        } => {
            let outcome = gateway
                .charge(ChargeRequest {
                    idempotency_key: &f.idem,
                    amount_cents,
                    reference: &o.number,
                    card: &card,
                })
                .await;
            let r = state
                .store
                .finish_payment(
                    payment_id,
                    approval(outcome),
                    state.signer.clone(),
                    ctx.lang.code(),
                )
                .await?;
            crate::metrics::payment(&r, &o);
            log_result(&state, &me, &o.number, &r);
            r
        }
        PaymentStart::Replay(r) => r,
        PaymentStart::AlreadyPaid => PaymentResult::Paid,
        PaymentStart::Expired => {
            let o = load_order(&state, &number, &me).await?;
            return order_page(
                &ctx,
                &o,
                StatusCode::GONE,
                "orders.expired_notice",
                "warning",
            );
        }
        PaymentStart::InProgress => PaymentResult::Processing,
        PaymentStart::NotFound => return Err(AppError::NotFound),
    };
    match result {
        PaymentResult::Paid => {
            // A resale's seller is refunded now the sale has committed.
            super::resale::settle_payouts(&state).await;
            to_order()
        }
        PaymentResult::Declined(code) => pay_page(
            &ctx,
            &o,
            StatusCode::PAYMENT_REQUIRED,
            FieldErrors::default(),
            // A new attempt needs a new key: this one stays bound to the decline.
            random_token()?,
            (&f.card_holder, &f.card_expiry),
            DeclineReason::from_code(&code).message_key(),
        ),
        PaymentResult::Processing => pay_page(
            &ctx,
            &o,
            StatusCode::CONFLICT,
            FieldErrors::default(),
            f.idem,
            (&f.card_holder, &f.card_expiry),
            "pay.in_progress",
        ),
        PaymentResult::Refunded => {
            let o = load_order(&state, &number, &me).await?;
            order_page(
                &ctx,
                &o,
                StatusCode::GONE,
                "orders.refunded_notice",
                "warning",
            )
        }
        PaymentResult::Failed => Err(AppError::Internal(anyhow::anyhow!(
            "payment attempt failed earlier"
        ))),
    }
}

/// The gateway's answer as the store records it: the transaction id, or the
/// decline reason code.
fn approval(outcome: ChargeOutcome) -> std::result::Result<String, String> {
    match outcome {
        ChargeOutcome::Approved { transaction_id } => Ok(transaction_id),
        ChargeOutcome::Declined(r) => Err(r.code().to_owned()),
    }
}

/// Logs a charged attempt's result; on success, wakes the mail drainer.
fn log_result(state: &AppState, me: &CurrentUser, number: &str, r: &PaymentResult) {
    match r {
        PaymentResult::Paid => {
            tracing::info!(user_id = me.user.id, order = %number, "order paid; tickets issued");
            // The confirmation mail was enqueued with the payment: this
            // node's drainer sends it now.
            state.store.wake_outbox();
        }
        PaymentResult::Declined(code) => {
            tracing::info!(user_id = me.user.id, order = %number, reason = %code, "payment declined");
        }
        _ => {}
    }
}
