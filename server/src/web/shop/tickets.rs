//! "Mes billets": the buyer's tickets with their QR codes, the PDFs, and the
//! confirmation mail with the PDF attached (rendered when the outbox sends it).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jo_shared::revocation::RevocationReason;

use crate::db::orders::Order;
use crate::db::tickets::TicketView;
use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::mail::{Attachment, Mail};
use crate::shop::{hm, tickets_pdf, when};
use crate::state::AppState;
use crate::units::money::Cents;
use crate::units::status::{OrderStatus, TicketStatus};
use crate::web::ctx::PageCtx;
use crate::web::pages::render;
use crate::web::session::CurrentUser;

use super::checkout::{OrderView, order_view};
use super::{parse_order_number, parse_ticket_id};

/// Pixels per QR module on screen: a version-10 ticket is 65 modules with its
/// quiet zone, so 390 px, crisp on phones and easy for webcams.
const QR_MODULE_PX: u32 = 6;

/// A ticket as shown.
pub struct TicketCard {
    /// Public id (hex).
    pub id: String,
    /// Order number.
    pub order_number: String,
    /// Session title.
    pub title: String,
    /// Sport.
    pub sport: String,
    /// Venue and city.
    pub venue: String,
    /// Date.
    pub when: String,
    /// Doors open.
    pub doors: String,
    /// Holder.
    pub holder: String,
    /// People admitted.
    pub admits: i64,
    /// Offer.
    pub offer: String,
    /// Whether it is valid (not revoked).
    pub valid: bool,
    /// Whether its holder may still hand it over or rename it (its
    /// session has not started).
    pub changeable: bool,
    /// The address of its live transfer offer.
    pub offered_to: Option<String>,
    /// Whether it is on resale (or held by a buyer).
    pub listed: bool,
    /// Why it was revoked, as a message key (`None` while valid).
    pub reason_key: Option<&'static str>,
    /// Sold on resale: the refund owed to the seller (formatted) and
    /// whether the payment gateway has made it.
    pub resold: Option<(String, bool)>,
    /// Whether its order is the holder's own (a ticket received by transfer
    /// or resale stays under the order that paid for it, which is not).
    pub own_order: bool,
}

/// The buyer's words for why a ticket was revoked (a message key).
pub fn reason_key(reason: RevocationReason) -> &'static str {
    match reason {
        RevocationReason::Refunded => "tickets.reason_refunded",
        RevocationReason::SessionCancelled => "tickets.reason_session_cancelled",
        RevocationReason::Reissued => "tickets.reason_reissued",
        RevocationReason::Transferred => "tickets.reason_transferred",
        RevocationReason::Fraud => "tickets.reason_fraud",
        RevocationReason::Other => "tickets.reason_other",
    }
}

fn ticket_card(
    t: &TicketView,
    lang: Lang,
    reasons: &HashMap<String, RevocationReason>,
) -> TicketCard {
    let valid = t.status == TicketStatus::Valid;
    TicketCard {
        id: t.ticket_hex.clone(),
        order_number: t.order_number.clone(),
        title: t.title.clone(),
        sport: t.sport.clone(),
        venue: format!("{}, {}", t.venue, t.city),
        when: when(t.starts_at, lang),
        doors: hm(t.doors_open_at),
        holder: t.holder.clone(),
        admits: t.admits,
        offer: t.offer_name.clone(),
        valid,
        // A revoked ticket missing from the list (which the one writer
        // rules out) still says it is revoked, in general words.
        reason_key: (!valid).then(|| {
            reason_key(
                reasons
                    .get(&t.ticket_hex)
                    .copied()
                    .unwrap_or(RevocationReason::Other),
            )
        }),
        changeable: t.starts_at > crate::units::time::now(),
        offered_to: None,
        listed: false,
        resold: None,
        own_order: false,
    }
}

/// `/tickets`.
#[derive(Template)]
#[template(path = "shop/tickets.html")]
pub struct TicketsPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Tickets.
    pub tickets: Vec<TicketCard>,
    /// Orders (newest first).
    pub orders: Vec<OrderView>,
}

/// `GET /tickets`: "Mes billets".
pub async fn mine(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
) -> Result<Response> {
    let (tickets, orders, offers, listed, reasons, resold) = tokio::try_join!(
        state.store.tickets_of(me.user.id),
        state.store.orders_of(me.user.id),
        state.store.offers_of(me.user.id),
        state.store.listed_of(me.user.id),
        state.store.revocation_reasons_of(me.user.id),
        state.store.resold_of(me.user.id)
    )?;
    let reasons: HashMap<String, RevocationReason> = reasons.into_iter().collect();
    let orders: Vec<Order> = orders;
    let card = |t: &TicketView| {
        let mut c = ticket_card(t, ctx.lang, &reasons);
        c.offered_to = offers
            .iter()
            .find(|(code, _)| *code == t.ticket_hex)
            .map(|(_, to)| to.clone());
        c.listed = listed.contains(&t.ticket_hex);
        c.resold = resold
            .iter()
            .find(|(code, ..)| *code == t.ticket_hex)
            .map(|(_, cents, made)| (Cents(*cents).fr(), *made));
        c.own_order = orders.iter().any(|o| o.number == t.order_number);
        c
    };
    render(
        StatusCode::OK,
        &TicketsPage {
            ctx: &ctx,
            tickets: tickets.iter().map(card).collect(),
            orders: orders
                .iter()
                .filter(|o| o.status != OrderStatus::Expired || o.paid_at.is_some())
                .map(|o| order_view(o, &ctx))
                .collect(),
        },
    )
}

async fn my_ticket(state: &AppState, id: &str, me: &CurrentUser) -> Result<TicketView> {
    let id = parse_ticket_id(id).ok_or(AppError::NotFound)?;
    state
        .store
        .ticket_of(id, me.user.id)
        .await?
        .ok_or(AppError::NotFound)
}

/// `GET /tickets/{id}/qr.png`: the buyer's own valid ticket only.
pub async fn qr_png(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let t = my_ticket(&state, &id, &me).await?;
    if t.status != TicketStatus::Valid {
        return Err(AppError::NotFound);
    }
    // The symbol is encoded once per ticket and shared with its PDF (mail).
    let png = tokio::task::spawn_blocking(move || {
        crate::shop::qr::symbol(&t.qr).map(|s| s.png(QR_MODULE_PX))
    })
    .await
    .map_err(|e| anyhow::anyhow!("QR task: {e}"))?
    .map_err(|e| anyhow::anyhow!("QR render: {e}"))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

fn pdf_response(pdf: Vec<u8>, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        pdf,
    )
        .into_response()
}

async fn render_pdf(tickets: Vec<TicketView>, lang: Lang) -> Result<Vec<u8>> {
    Ok(
        tokio::task::spawn_blocking(move || tickets_pdf(&tickets, lang))
            .await
            .map_err(|e| anyhow::anyhow!("PDF task: {e}"))?
            .map_err(|e| anyhow::anyhow!("PDF: {e}"))?,
    )
}

/// `GET /tickets/{id}/ticket.pdf`.
pub async fn ticket_pdf(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response> {
    let t = my_ticket(&state, &id, &me).await?;
    if t.status != TicketStatus::Valid {
        return Err(AppError::NotFound);
    }
    let name = format!("billet-{}.pdf", t.ticket_hex);
    Ok(pdf_response(render_pdf(vec![t], ctx.lang).await?, &name))
}

/// `GET /orders/{number}/tickets.pdf`: every valid ticket of the order.
pub async fn order_pdf(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    Path(number): Path<String>,
) -> Result<Response> {
    let number = parse_order_number(&number).ok_or(AppError::NotFound)?;
    let tickets: Vec<TicketView> = state
        .store
        .order_tickets_of(number.clone(), me.user.id)
        .await?
        .ok_or(AppError::NotFound)?
        .into_iter()
        .filter(|t| t.status == TicketStatus::Valid)
        .collect();
    if tickets.is_empty() {
        return Err(AppError::NotFound);
    }
    let name = format!("billets-{number}.pdf");
    Ok(pdf_response(render_pdf(tickets, ctx.lang).await?, &name))
}

/// The confirmation mail of order `order_id` with its tickets as a PDF,
/// rendered when the outbox sends it (the row holds only the order and the
/// language): the tickets are read back from the store, so a mail sent by
/// another node, or after a restart, is the same mail.
pub async fn confirmation_mail(
    state: &AppState,
    order_id: i64,
    to: String,
    lang: Lang,
) -> anyhow::Result<(Mail, Vec<Attachment>)> {
    let facts = state
        .store
        .order_mail_facts(order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order {order_id} not found"))?;
    let number = facts.number;
    let tickets = state
        .store
        .order_tickets_of(number.clone(), facts.user_id)
        .await?
        .unwrap_or_default();
    let count = tickets.len();
    let pdf = render_pdf(tickets, lang).await?;
    let body = format!(
        "{} {},\n\n{} {number}.\n{} {count}\n\n{}\n{}/tickets\n{}",
        lang.t("mail.tickets_hello"),
        facts.first_name,
        lang.t("mail.tickets_thanks"),
        lang.t("mail.tickets_count"),
        lang.t("mail.tickets_body"),
        state.public_url,
        lang.t("mail.footer"),
    );
    Ok((
        Mail {
            to,
            subject: format!("{} {number}", lang.t("mail.tickets_subject")),
            body,
        },
        vec![Attachment {
            filename: format!("billets-{number}.pdf"),
            content_type: "application/pdf",
            bytes: pdf,
        }],
    ))
}
