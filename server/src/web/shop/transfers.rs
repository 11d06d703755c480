//! Named tickets and transfers, from "my tickets": a name change (a
//! re-issue under the new name), an offer to another person by e-mail, its
//! cancellation, and the recipient's page behind the mail's single-use link
//! (accept or decline, logged in with the address the offer went to). The
//! holder names of an order are given on its payment page.
//!
//! The mails are rendered here (the store knows no language or URL) and
//! enqueued by the store in the transaction of what they tell.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::tokens::{hash_token, random_token};
use crate::db::audit::Actor;
use crate::db::outbox::{MailKind, Outgoing};
use crate::db::tickets::{ReissueMail, ReissueOutcome, Reissued};
use crate::db::transfers::{AcceptOutcome, NoticeMail, OfferOutcome, SenderNotice, TransferView};
use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::shop::when;
use crate::state::AppState;
use crate::units::time::now;
use crate::web::client::ClientIp;
use crate::web::ctx::PageCtx;
use crate::web::pages::render;
use crate::web::session::{CurrentUser, MaybeUser};

use super::{parse_order_number, parse_ticket_id};

/// Longest holder name kept (the payload carries a short form of it).
pub const MAX_NAME_CHARS: usize = 80;

/// A holder name from a form: trimmed, inner runs of spaces made one, no
/// control characters, 1 to [`MAX_NAME_CHARS`] characters; else `None`.
pub fn clean_name(raw: &str) -> Option<String> {
    if raw.chars().any(char::is_control) {
        return None;
    }
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let n = name.chars().count();
    (1..=MAX_NAME_CHARS).contains(&n).then_some(name)
}

/// An e-mail address from a form, normalised as accounts store theirs
/// (trimmed, lower case); `None` unless it looks like one address.
pub fn clean_email(raw: &str) -> Option<String> {
    let e = raw.trim().to_lowercase();
    let (local, domain) = e.split_once('@')?;
    let ok = e.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.contains(char::is_whitespace)
        && !e.chars().any(char::is_control)
        && e.matches('@').count() == 1
        && !e.contains(['<', '>', ',', ';', '"']);
    ok.then_some(e)
}

fn actor(me: &CurrentUser, ip: ClientIp) -> Actor {
    Actor {
        id: me.user.id,
        username: me.user.username.clone(),
        ip: ip.0.to_string(),
    }
}

/// Both languages, French first: the recipient's language is not stored.
fn bilingual(text: impl Fn(Lang) -> String) -> String {
    format!("{}\n\n— — —\n\n{}\n", text(Lang::Fr), text(Lang::En))
}

fn bilingual_subject(key: &str) -> String {
    format!("{} / {}", Lang::Fr.t(key), Lang::En.t(key))
}

/// The mail to a re-issued ticket's new holder: where the ticket is.
pub fn reissued_mail(public_url: String) -> Box<ReissueMail> {
    Box::new(move |r: &Reissued| {
        let text = |lang: Lang| {
            // The same account's ticket replaced: this is their only mail.
            let replaces = r
                .replaces
                .as_ref()
                .map(|old| format!("{} {old}.\n", lang.t("mail.reissued_replaces")))
                .unwrap_or_default();
            format!(
                "{} {},\n\n{} « {} » ({}).\n{}{} {}\n{} {}\n\n{}\n{}/tickets\n{}/tickets/{}/ticket.pdf\n{}",
                lang.t("mail.tickets_hello"),
                r.first_name,
                lang.t("mail.reissued_body"),
                r.session,
                when(r.starts_at, lang),
                replaces,
                lang.t("tickets.holder"),
                r.holder,
                lang.t("mail.reissued_code"),
                r.ticket_hex,
                lang.t("mail.reissued_where"),
                public_url,
                public_url,
                r.ticket_hex,
                lang.t("mail.transfer_footer"),
            )
        };
        Outgoing::rendered(
            MailKind::TicketReissued,
            r.email.clone(),
            Lang::Fr.code(),
            bilingual_subject("mail.reissued_subject"),
            bilingual(text),
        )
    })
}

/// The mail telling a sender that their offer was declined or lapsed.
pub fn notice_mail() -> Box<NoticeMail> {
    Box::new(|n: &SenderNotice| {
        let key = if n.outcome == "declined" {
            "mail.transfer_declined"
        } else {
            "mail.transfer_expired"
        };
        let text = |lang: Lang| {
            format!(
                "{} {},\n\n{} « {} » ({}) {}\n{}\n{}",
                lang.t("mail.tickets_hello"),
                n.first_name,
                lang.t("mail.transfer_your_offer"),
                n.session,
                n.to_email,
                lang.t(key),
                lang.t("mail.transfer_kept"),
                lang.t("mail.transfer_footer"),
            )
        };
        Outgoing::rendered(
            MailKind::Transfer,
            n.email.clone(),
            Lang::Fr.code(),
            bilingual_subject("mail.transfer_outcome_subject"),
            bilingual(text),
        )
    })
}

/// `POST /tickets/{id}/holder`: the new name on one of my tickets.
#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

/// `POST /tickets/{id}/holder`: a name change before the session, which
/// is a re-issue (the old code stops working at the gates' next sync).
pub async fn rename(
    State(state): State<AppState>,
    me: CurrentUser,
    ip: ClientIp,
    Path(id): Path<String>,
    Form(f): Form<RenameForm>,
) -> Result<Response> {
    let id = parse_ticket_id(&id).ok_or(AppError::NotFound)?;
    let Some(name) = clean_name(&f.name) else {
        return Ok(Redirect::to("/tickets/done?notice=name_invalid").into_response());
    };
    let out = state
        .store
        .rename_ticket(
            actor(&me, ip),
            jo_shared::TicketId(id),
            name,
            state.signer.clone(),
            reissued_mail(state.public_url.clone()),
        )
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(match out {
        ReissueOutcome::Reissued(new) => {
            tracing::info!("ticket renamed (re-issued)");
            Redirect::to(&format!("/tickets/done?notice=renamed&ticket={new}")).into_response()
        }
        ReissueOutcome::NotFound => return Err(AppError::NotFound),
        ReissueOutcome::NotValid => {
            Redirect::to("/tickets/done?notice=not_changeable").into_response()
        }
    })
}

/// The transfer form of a ticket.
#[derive(Deserialize)]
pub struct OfferForm {
    #[serde(default)]
    email: String,
}

/// `POST /tickets/{id}/transfer`: offers the ticket to an address; the
/// recipient gets a mail with a single-use link bound to that address.
pub async fn offer(
    State(state): State<AppState>,
    me: CurrentUser,
    ip: ClientIp,
    Path(id): Path<String>,
    Form(f): Form<OfferForm>,
) -> Result<Response> {
    let id = parse_ticket_id(&id).ok_or(AppError::NotFound)?;
    let Some(to) = clean_email(&f.email) else {
        return Ok(Redirect::to("/tickets/done?notice=email_invalid").into_response());
    };
    let ticket = state
        .store
        .ticket_of(id, me.user.id)
        .await?
        .ok_or(AppError::NotFound)?;
    let token = random_token().map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let link = format!("{}/transfers/accept?token={token}", state.public_url);
    let from = format!("{} {}", me.user.first_name, me.user.last_name);
    let text = |lang: Lang| {
        format!(
            "{},\n\n{from} {} « {} » ({}, {}).\n\n{}\n{link}\n\n{}\n{}",
            lang.t("mail.tickets_hello"),
            lang.t("mail.transfer_offers"),
            ticket.title,
            when(ticket.starts_at, lang),
            ticket.offer_name,
            lang.t("mail.transfer_how"),
            lang.t("mail.transfer_bound"),
            lang.t("mail.transfer_footer"),
        )
    };
    let mail = Outgoing::rendered(
        MailKind::Transfer,
        to.clone(),
        Lang::Fr.code(),
        bilingual_subject("mail.transfer_subject"),
        bilingual(text),
    );
    let policy = state.config.shop;
    let out = state
        .store
        .offer_transfer(
            actor(&me, ip),
            jo_shared::TicketId(id),
            to,
            hash_token(&token),
            policy.transfer_offer_secs,
            policy.max_transfers_per_ticket,
            mail,
        )
        .await?;
    let notice = match out {
        OfferOutcome::NotFound => return Err(AppError::NotFound),
        OfferOutcome::Offered(_) => {
            tracing::info!("ticket offered for transfer");
            "offered"
        }
        OfferOutcome::NotValid => "not_changeable",
        OfferOutcome::AlreadyOffered => "already_offered",
        OfferOutcome::ToSelf => "to_self",
        OfferOutcome::LimitReached => "transfer_limit",
    };
    Ok(Redirect::to(&format!("/tickets/done?notice={notice}")).into_response())
}

/// `POST /tickets/{id}/transfer/cancel`: the sender takes the offer back.
pub async fn cancel(
    State(state): State<AppState>,
    me: CurrentUser,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_ticket_id(&id).ok_or(AppError::NotFound)?;
    let done = state
        .store
        .cancel_transfer(actor(&me, ip), jo_shared::TicketId(id))
        .await?;
    let notice = if done { "cancelled" } else { "no_offer" };
    Ok(Redirect::to(&format!("/tickets/done?notice={notice}")).into_response())
}

/// The link's query (`?token=`).
#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `/transfers/accept`.
#[derive(Template)]
#[template(path = "shop/transfer.html")]
pub struct TransferPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// The offer.
    pub offer: TransferView,
    /// Its date, formatted.
    pub when: String,
    /// The link's token (posted back by the buttons).
    pub token: String,
    /// Message key of what is shown instead of the buttons, or empty.
    pub notice: &'static str,
    /// Whether someone is logged in.
    pub logged_in: bool,
}

fn token_shaped(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn offer_page(
    state: &AppState,
    ctx: &PageCtx,
    token: &str,
    email: Option<&str>,
    status: StatusCode,
    notice: &'static str,
) -> Result<Response> {
    if !token_shaped(token) {
        return Err(AppError::NotFound);
    }
    let offer = state
        .store
        .transfer_by_token(hash_token(token))
        .await?
        .ok_or(AppError::NotFound)?;
    let notice = match (notice, email) {
        ("", None) => "transfer.log_in",
        ("", Some(e)) if !e.eq_ignore_ascii_case(&offer.to_email) => "transfer.wrong_account",
        ("", Some(_)) if offer.status != "pending" || offer.expires_at <= now() => {
            "transfer.closed"
        }
        (n, _) => n,
    };
    render(
        status,
        &TransferPage {
            ctx,
            when: when(offer.starts_at, ctx.lang),
            offer,
            token: token.to_owned(),
            notice,
            logged_in: email.is_some(),
        },
    )
}

/// `GET /transfers/accept?token=…`: the offer, with accept and decline
/// buttons for the account it was sent to (others are told it is not
/// theirs; a visitor is asked to log in or create an account).
pub async fn show(
    State(state): State<AppState>,
    ctx: PageCtx,
    MaybeUser(me): MaybeUser,
    Query(q): Query<TokenQuery>,
) -> Result<Response> {
    let email = me.as_ref().map(|m| m.user.email.clone());
    offer_page(&state, &ctx, &q.token, email.as_deref(), StatusCode::OK, "").await
}

/// The buttons' form.
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    token: String,
}

/// `POST /transfers/accept`: the ticket is re-issued to the logged-in
/// recipient (new id, secret and signature, their name) and the sender's
/// revoked (`transferred`).
pub async fn accept(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    ip: ClientIp,
    Form(f): Form<TokenForm>,
) -> Result<Response> {
    if !token_shaped(&f.token) {
        return Err(AppError::NotFound);
    }
    let out = state
        .store
        .accept_transfer(
            actor(&me, ip),
            me.user.email.clone(),
            hash_token(&f.token),
            state.signer.clone(),
            reissued_mail(state.public_url.clone()),
        )
        .await?;
    let (status, notice) = match out {
        AcceptOutcome::Accepted(new) => {
            tracing::info!("ticket transfer accepted");
            return Ok(
                Redirect::to(&format!("/tickets/done?notice=received&ticket={new}"))
                    .into_response(),
            );
        }
        AcceptOutcome::NotFound => return Err(AppError::NotFound),
        AcceptOutcome::WrongAccount => (StatusCode::FORBIDDEN, "transfer.wrong_account"),
        AcceptOutcome::Closed => (StatusCode::CONFLICT, "transfer.closed"),
        AcceptOutcome::TicketGone => (StatusCode::CONFLICT, "transfer.gone"),
    };
    offer_page(&state, &ctx, &f.token, Some(&me.user.email), status, notice).await
}

/// `POST /transfers/decline`: the recipient says no; the sender is told
/// and keeps the ticket.
pub async fn decline(
    State(state): State<AppState>,
    ctx: PageCtx,
    me: CurrentUser,
    ip: ClientIp,
    Form(f): Form<TokenForm>,
) -> Result<Response> {
    if !token_shaped(&f.token) {
        return Err(AppError::NotFound);
    }
    let out = state
        .store
        .decline_transfer(
            actor(&me, ip),
            me.user.email.clone(),
            hash_token(&f.token),
            notice_mail(),
        )
        .await?;
    let (status, notice) = match out {
        AcceptOutcome::NotFound => return Err(AppError::NotFound),
        AcceptOutcome::WrongAccount => (StatusCode::FORBIDDEN, "transfer.wrong_account"),
        _ => (StatusCode::OK, "transfer.declined"),
    };
    offer_page(&state, &ctx, &f.token, Some(&me.user.email), status, notice).await
}

/// `POST /orders/{number}/holders`: the names on an unpaid order's tickets
/// (`name` fields, one per ticket in order; empty means the buyer).
pub async fn holders(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(number): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response> {
    let number = parse_order_number(&number).ok_or(AppError::NotFound)?;
    let mut names = Vec::new();
    for (k, v) in fields
        .iter()
        .filter(|(k, _)| k == "name")
        .enumerate()
        .map(|(i, (_, v))| (i, v))
    {
        if names.len() >= 1_000 {
            return Err(AppError::BadRequest);
        }
        if v.trim().is_empty() {
            continue;
        }
        let Some(n) = clean_name(v) else {
            return Ok(
                Redirect::to(&format!("/orders/{number}/pay?notice=name_invalid")).into_response(),
            );
        };
        names.push((u32::try_from(k).map_err(|_| AppError::BadRequest)?, n));
    }
    if !state
        .store
        .set_order_holders(number.clone(), me.user.id, names)
        .await?
    {
        return Err(AppError::NotFound);
    }
    Ok(Redirect::to(&format!("/orders/{number}/pay?notice=names_saved")).into_response())
}

/// `/tickets/done`: what an action on a ticket did.
#[derive(Template)]
#[template(path = "shop/ticket_done.html")]
pub struct DonePage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Message key.
    pub notice: &'static str,
    /// Whether it reports a success.
    pub ok: bool,
    /// The ticket it is about (a new one), hex, or empty.
    pub ticket: String,
}

/// The query of `/tickets/done`.
#[derive(Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    notice: String,
    #[serde(default)]
    ticket: String,
}

/// `GET /tickets/done?notice=…`: the outcome of a rename, an offer, a
/// cancellation or an acceptance, with the way back to my tickets. Only
/// known notices are shown (the query is the visitor's).
pub async fn done(ctx: PageCtx, _me: CurrentUser, Query(q): Query<DoneQuery>) -> Result<Response> {
    let ticket = parse_ticket_id(&q.ticket)
        .map(hex::encode)
        .unwrap_or_default();
    done_page(&ctx, StatusCode::OK, &q.notice, ticket)
}

/// The outcome page for notice code `code` (a 404 for an unknown one).
pub fn done_page(
    ctx: &PageCtx,
    status: StatusCode,
    code: &str,
    ticket: String,
) -> Result<Response> {
    let (notice, ok) = match code {
        "renamed" => ("tickets.renamed", true),
        "offered" => ("tickets.offered", true),
        "cancelled" => ("tickets.offer_cancelled", true),
        "received" => ("tickets.received", true),
        "no_offer" => ("tickets.no_offer", false),
        "not_changeable" => ("tickets.not_changeable", false),
        "already_offered" => ("tickets.already_offered", false),
        "to_self" => ("tickets.to_self", false),
        "transfer_limit" => ("tickets.transfer_limit", false),
        "email_invalid" => ("tickets.email_invalid", false),
        "name_invalid" => ("tickets.name_invalid", false),
        "listed" => ("resale.listed", true),
        "already_listed" => ("resale.already_listed", false),
        "withdrawn" => ("resale.withdrawn", true),
        "not_withdrawn" => ("resale.not_withdrawn", false),
        "resale_gone" => ("resale.gone", false),
        "resale_own" => ("resale.own", false),
        "session_limit" => ("resale.session_limit", false),
        "cart_full" => ("cart.err_full", false),
        _ => return Err(AppError::NotFound),
    };
    render(
        status,
        &DonePage {
            ctx,
            notice,
            ok,
            ticket,
        },
    )
}

/// Lapses the offers due now, each sender told (called by the shop's
/// periodic sweep).
pub async fn expire_offers(state: &AppState) {
    match state.store.expire_transfers(notice_mail()).await {
        Ok(n) if n > 0 => {
            tracing::info!(
                offers = n,
                "transfer offers lapsed; tickets kept by their senders"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "transfer expiry failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses_from_forms_are_checked() {
        assert_eq!(clean_name("  Awa   Traoré ").as_deref(), Some("Awa Traoré"));
        for bad in ["", "   ", "a\u{0}b", "x\ny", &"é".repeat(81)] {
            assert_eq!(clean_name(bad), None, "{bad:?}");
        }
        assert_eq!(
            clean_email(" Ami@Example.COM ").as_deref(),
            Some("ami@example.com")
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.fr",
            "a@@b.fr",
            "a b@c.fr",
            "a@b.fr,c@d.fr",
            "a@.fr",
            "<a@b.fr>",
        ] {
            assert_eq!(clean_email(bad), None, "{bad:?}");
        }
    }
}
