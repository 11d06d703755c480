//! Transfers (`transfers`): a holder offers one ticket to another person by
//! e-mail; the recipient, logged in with the address the offer was sent to,
//! accepts (the ticket is re-issued to them by [`tickets::reissue_in`] and
//! the old one revoked, `transferred`) or declines. The sender can cancel
//! until then, and an offer not taken by its expiry lapses: in every case
//! but acceptance the original ticket stays valid and with its holder.
//!
//! The link's token is stored as SHA-256 and works once: the offer leaves
//! `pending` in the transaction that uses it. One live offer per ticket
//! (a partial unique index), and a ticket's chain may change hands at most
//! [`crate::config::ShopPolicy::max_transfers_per_ticket`] times.

use std::sync::Arc;

use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::TicketId;

use super::audit::{Actor, audit};
use super::outbox::{self, Outgoing};
use super::sql::{Begin, Conn, Optional, params};
use super::tickets::{self, NewHolder, ReissueMail, ReissueOutcome};
use super::{Store, StoreResult, now};
use crate::tickets::TicketIssuer;

/// Whether ticket `id` has a live offer.
pub(super) fn is_offered(c: &Conn<'_>, id: &TicketId) -> StoreResult<bool> {
    let n: i64 = c.query_row(
        "SELECT count(*) FROM transfers x JOIN tickets t ON t.id = x.ticket
         WHERE t.ticket_id = ?1 AND x.status = 'pending'",
        params![&id.0[..]],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Accepted transfers along the chain that ends at ticket row `row` (the
/// ticket and every ticket it replaces).
fn transfers_in_chain(c: &Conn<'_>, row: i64) -> StoreResult<i64> {
    let mut n = 0;
    let mut at = Some(row);
    // A chain is a handful of links; the bound only guards a corrupt loop.
    for _ in 0..1_000 {
        let Some(id) = at else { break };
        n += c.query_row(
            "SELECT count(*) FROM transfers WHERE ticket = ?1 AND status = 'accepted'",
            params![id],
            |r| r.get::<i64>(0),
        )?;
        at = c
            .query_row(
                "SELECT replaces FROM tickets WHERE id = ?1",
                params![id],
                |r| r.get::<Option<i64>>(0),
            )
            .optional()?
            .flatten();
    }
    Ok(n)
}

/// What an offer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferOutcome {
    /// Not one of the sender's tickets.
    NotFound,
    /// Revoked, or its session has started.
    NotValid,
    /// Already offered (cancel that offer first).
    AlreadyOffered,
    /// The address is the sender's own.
    ToSelf,
    /// The ticket changed hands as often as allowed.
    LimitReached,
    /// Offered; the offer's row id.
    Offered(i64),
}

/// An offer as its link shows it.
#[derive(Debug, Clone)]
pub struct TransferView {
    /// Row id.
    pub id: i64,
    /// `pending`, `accepted`, `declined`, `cancelled`, `expired`.
    pub status: String,
    /// The address it was sent to.
    pub to_email: String,
    /// When it lapses, Unix seconds.
    pub expires_at: i64,
    /// The sender's full name.
    pub from_name: String,
    /// Session title.
    pub session: String,
    /// Session start.
    pub starts_at: i64,
    /// Offer name.
    pub offer: String,
    /// People admitted.
    pub admits: i64,
}

/// What an acceptance did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// No offer under this token.
    NotFound,
    /// The offer is for another address.
    WrongAccount,
    /// Already accepted, declined, cancelled or expired.
    Closed,
    /// The ticket can no longer be handed over (revoked, session started).
    TicketGone,
    /// Accepted: the new ticket's code.
    Accepted(String),
}

/// What a sender is told about their offer.
#[derive(Debug, Clone)]
pub struct SenderNotice {
    /// The sender's address.
    pub email: String,
    /// The sender's first name.
    pub first_name: String,
    /// Session title.
    pub session: String,
    /// The recipient's address.
    pub to_email: String,
    /// `declined` or `expired`.
    pub outcome: &'static str,
}

/// Renders a sender's notice (the store knows no language).
pub type NoticeMail = dyn Fn(&SenderNotice) -> Outgoing + Send + Sync;

/// A transfer as the console lists it.
#[derive(Debug, Clone)]
pub struct TransferRow {
    /// Row id.
    pub id: i64,
    /// The offered ticket's code.
    pub ticket: String,
    /// The new ticket's code, once accepted.
    pub new_ticket: Option<String>,
    /// Sender's address.
    pub from_email: String,
    /// Recipient's address.
    pub to_email: String,
    /// Status.
    pub status: String,
    /// Offered, Unix seconds.
    pub created_at: i64,
    /// Decided, Unix seconds.
    pub decided_at: Option<i64>,
    /// Session title.
    pub session: String,
}

fn notice_of(c: &Conn<'_>, transfer: i64, outcome: &'static str) -> StoreResult<SenderNotice> {
    c.query_row(
        "SELECT u.email, u.first_name, s.title, x.to_email
         FROM transfers x JOIN users u ON u.id = x.from_user JOIN tickets t ON t.id = x.ticket
         JOIN game_sessions s ON s.id = t.session_id WHERE x.id = ?1",
        params![transfer],
        |r| {
            Ok(SenderNotice {
                email: r.get(0)?,
                first_name: r.get(1)?,
                session: r.get(2)?,
                to_email: r.get(3)?,
                outcome,
            })
        },
    )
}

/// Closes a pending offer with `status`; false if it was no longer pending.
fn close(c: &Conn<'_>, id: i64, status: &str, t: i64) -> StoreResult<bool> {
    let n = c.execute(
        "UPDATE transfers SET status = ?2, decided_at = ?3 WHERE id = ?1 AND status = 'pending'",
        params![id, status, t],
    )?;
    Ok(n == 1)
}

/// Cancels the pending offer of ticket row `ticket`, revoked other than by
/// its own hand-over (a refund, fraud, a re-issue, a cancelled session):
/// the recipient's link then says it is no longer on offer, instead of
/// leading to a ticket that cannot be accepted. The holder's revocation
/// mail says why.
pub(super) fn cancel_for_revoked(c: &Conn<'_>, ticket: i64, t: i64) -> StoreResult<()> {
    c.execute(
        "UPDATE transfers SET status = 'cancelled', decided_at = ?2 WHERE ticket = ?1 AND status = 'pending'",
        params![ticket, t],
    )?;
    Ok(())
}

/// Lapses every pending offer due by `t`, each sender told; returns how many.
fn expire_due(c: &Conn<'_>, t: i64, mail: &NoticeMail) -> StoreResult<usize> {
    let due: Vec<i64> = c.query_map(
        "SELECT id FROM transfers WHERE status = 'pending' AND expires_at <= ?1 ORDER BY id",
        params![t],
        |r| r.get(0),
    )?;
    let mut n = 0;
    for id in due {
        if close(c, id, "expired", t)? {
            outbox::enqueue(c, &mail(&notice_of(c, id, "expired")?), t)?;
            n += 1;
        }
    }
    Ok(n)
}

const ROW_SELECT: &str = "SELECT x.id, t.ticket_id, n.ticket_id, u.email, x.to_email, x.status,
        x.created_at, x.decided_at, s.title
     FROM transfers x JOIN tickets t ON t.id = x.ticket JOIN users u ON u.id = x.from_user
     JOIN game_sessions s ON s.id = t.session_id LEFT JOIN tickets n ON n.id = x.new_ticket";

fn transfer_row(r: &super::sql::Row<'_>) -> StoreResult<TransferRow> {
    Ok(TransferRow {
        id: r.get(0)?,
        ticket: tickets::ticket_hex(r.get(1)?).unwrap_or_default(),
        new_ticket: tickets::ticket_hex(r.get(2)?),
        from_email: r.get(3)?,
        to_email: r.get(4)?,
        status: r.get(5)?,
        created_at: r.get(6)?,
        decided_at: r.get(7)?,
        session: r.get(8)?,
    })
}

/// Transfers of the tickets with these row ids, oldest first.
pub(super) fn of_chain(c: &Conn<'_>, rows: &[i64]) -> StoreResult<Vec<TransferRow>> {
    let mut out = Vec::new();
    for row in rows {
        out.extend(c.query_map(
            &format!("{ROW_SELECT} WHERE x.ticket = ?1 ORDER BY x.id"),
            params![row],
            transfer_row,
        )?);
    }
    Ok(out)
}

impl Store {
    /// Offers one of `actor`'s valid tickets to `to_email` (normalised by
    /// the caller), under the link token whose hash is `token_hash`, open
    /// for `ttl_secs`; `mail` (the offer with its link, to that address)
    /// is enqueued with it.
    #[allow(clippy::too_many_arguments)]
    pub async fn offer_transfer(
        &self,
        actor: Actor,
        id: TicketId,
        to_email: String,
        token_hash: [u8; 32],
        ttl_secs: i64,
        max_transfers: i64,
        mail: Outgoing,
    ) -> StoreResult<OfferOutcome> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let found: Option<(i64, String, i64, String)> = tx
                    .query_row(
                        "SELECT t.id, t.status, s.starts_at, u.email
                         FROM tickets t JOIN game_sessions s ON s.id = t.session_id
                         JOIN users u ON u.id = t.user_id
                         WHERE t.ticket_id = ?1 AND t.user_id = ?2",
                        params![&id.0[..], actor.id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let Some((row, status, starts_at, own_email)) = found else {
                    return Ok(OfferOutcome::NotFound);
                };
                if status != "valid" || starts_at <= t {
                    return Ok(OfferOutcome::NotValid);
                }
                if own_email.eq_ignore_ascii_case(&to_email) {
                    return Ok(OfferOutcome::ToSelf);
                }
                // A lapsed offer the sweep has not reached no longer
                // blocks the ticket (its sender is the one offering again).
                tx.execute(
                    "UPDATE transfers SET status = 'expired', decided_at = ?2
                     WHERE ticket = ?1 AND status = 'pending' AND expires_at <= ?2",
                    params![row, t],
                )?;
                if is_offered(&tx, &id)? || super::resale::is_listed(&tx, row)? {
                    return Ok(OfferOutcome::AlreadyOffered);
                }
                if transfers_in_chain(&tx, row)? >= max_transfers {
                    return Ok(OfferOutcome::LimitReached);
                }
                let offer: i64 = tx.query_row(
                    "INSERT INTO transfers (ticket, from_user, to_email, token_hash, status, created_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6) RETURNING id",
                    params![row, actor.id, to_email, &token_hash[..], t, t + ttl_secs],
                    |r| r.get(0),
                )?;
                outbox::enqueue(&tx, &mail, t)?;
                audit(
                    &tx,
                    &actor,
                    "ticket.transfer_offer",
                    &format!("ticket:{}", id.to_hex()),
                    &format!("transfer={offer} to={to_email}"),
                    t,
                )?;
                tx.commit()?;
                Ok(OfferOutcome::Offered(offer))
            })
            .await
            .inspect(|_| self.wake_outbox())
    }

    /// The offer under a link token, whoever asks (the page says whether it
    /// is theirs).
    pub async fn transfer_by_token(
        &self,
        token_hash: [u8; 32],
    ) -> StoreResult<Option<TransferView>> {
        self.pool
            .read_sql(move |c| {
                c.query_row(
                    "SELECT x.id, x.status, x.to_email, x.expires_at, u.first_name || ' ' || u.last_name,
                            s.title, s.starts_at, ol.offer_name, t.admits
                     FROM transfers x JOIN tickets t ON t.id = x.ticket JOIN users u ON u.id = x.from_user
                     JOIN game_sessions s ON s.id = t.session_id JOIN order_lines ol ON ol.id = t.order_line_id
                     WHERE x.token_hash = ?1",
                    params![&token_hash[..]],
                    |r| {
                        Ok(TransferView {
                            id: r.get(0)?,
                            status: r.get(1)?,
                            to_email: r.get(2)?,
                            expires_at: r.get(3)?,
                            from_name: r.get(4)?,
                            session: r.get(5)?,
                            starts_at: r.get(6)?,
                            offer: r.get(7)?,
                            admits: r.get(8)?,
                        })
                    },
                )
                .optional()
            })
            .await
    }

    /// Accepts the offer under `token_hash` for `actor`, whose address must
    /// be the one it was sent to: the ticket is re-issued to them and the
    /// old one revoked (`transferred`), in one transaction with the offer's
    /// closing and the new holder's mail.
    pub async fn accept_transfer(
        &self,
        actor: Actor,
        email: String,
        token_hash: [u8; 32],
        issuer: Arc<dyn TicketIssuer>,
        mail: Box<ReissueMail>,
    ) -> StoreResult<AcceptOutcome> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                #[allow(clippy::type_complexity)]
                let offer: Option<(i64, String, String, i64, Vec<u8>, i64, i64)> = tx
                    .query_row(
                        "SELECT x.id, x.status, x.to_email, x.expires_at, t.ticket_id, t.user_id, s.starts_at
                         FROM transfers x JOIN tickets t ON t.id = x.ticket
                         JOIN game_sessions s ON s.id = t.session_id WHERE x.token_hash = ?1",
                        params![&token_hash[..]],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
                    )
                    .optional()?;
                let Some((offer, status, to_email, expires_at, ticket, holder, starts_at)) = offer else {
                    return Ok(AcceptOutcome::NotFound);
                };
                if !to_email.eq_ignore_ascii_case(&email) {
                    return Ok(AcceptOutcome::WrongAccount);
                }
                if status != "pending" {
                    return Ok(AcceptOutcome::Closed);
                }
                if expires_at <= t {
                    // Lapsed before the sweep got to it: the sender keeps the ticket.
                    close(&tx, offer, "expired", t)?;
                    tx.commit()?;
                    return Ok(AcceptOutcome::Closed);
                }
                let Ok(ticket) = <[u8; 10]>::try_from(ticket.as_slice()) else {
                    return Ok(AcceptOutcome::TicketGone);
                };
                let ticket = TicketId(ticket);
                if holder == actor.id || starts_at <= t {
                    return Ok(AcceptOutcome::TicketGone);
                }
                let out = tickets::reissue_in(
                    &tx,
                    &ticket,
                    NewHolder::Account(actor.id),
                    (RevocationReason::Transferred, &format!("transfer {offer}")),
                    issuer.as_ref(),
                    Some(mail.as_ref()),
                    t,
                )?;
                let ReissueOutcome::Reissued(new_hex) = out else {
                    return Ok(AcceptOutcome::TicketGone);
                };
                let new_id = TicketId::from_hex(&new_hex).map_err(|e| super::StoreError::Task(e.to_string()))?;
                let new_row = tickets::row_id(&tx, &new_id)?;
                tx.execute(
                    "UPDATE transfers SET status = 'accepted', decided_at = ?2, to_user = ?3, new_ticket = ?4
                     WHERE id = ?1 AND status = 'pending'",
                    params![offer, t, actor.id, new_row],
                )?;
                audit(
                    &tx,
                    &actor,
                    "ticket.transfer_accept",
                    &format!("ticket:{}", ticket.to_hex()),
                    &format!("transfer={offer} new_ticket={new_hex}"),
                    t,
                )?;
                tx.commit()?;
                Ok(AcceptOutcome::Accepted(new_hex))
            })
            .await
            .inspect(|_| self.wake_outbox())
    }

    /// Declines the offer under `token_hash` for `actor` (the recipient);
    /// the sender is told and keeps the ticket.
    pub async fn decline_transfer(
        &self,
        actor: Actor,
        email: String,
        token_hash: [u8; 32],
        mail: Box<NoticeMail>,
    ) -> StoreResult<AcceptOutcome> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let offer: Option<(i64, String, String)> = tx
                    .query_row(
                        "SELECT id, status, to_email FROM transfers WHERE token_hash = ?1",
                        params![&token_hash[..]],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                let Some((offer, status, to_email)) = offer else {
                    return Ok(AcceptOutcome::NotFound);
                };
                if !to_email.eq_ignore_ascii_case(&email) {
                    return Ok(AcceptOutcome::WrongAccount);
                }
                if status != "pending" || !close(&tx, offer, "declined", t)? {
                    return Ok(AcceptOutcome::Closed);
                }
                outbox::enqueue(&tx, &mail(&notice_of(&tx, offer, "declined")?), t)?;
                audit(
                    &tx,
                    &actor,
                    "ticket.transfer_decline",
                    &format!("transfer:{offer}"),
                    "",
                    t,
                )?;
                tx.commit()?;
                Ok(AcceptOutcome::Closed)
            })
            .await
            .inspect(|_| self.wake_outbox())
    }

    /// Cancels the live offer of one of `actor`'s tickets; false if there
    /// was none.
    pub async fn cancel_transfer(&self, actor: Actor, id: TicketId) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let n = tx.execute(
                    "UPDATE transfers SET status = 'cancelled', decided_at = ?3
                     WHERE status = 'pending' AND from_user = ?2
                       AND ticket = (SELECT id FROM tickets WHERE ticket_id = ?1)",
                    params![&id.0[..], actor.id, t],
                )?;
                if n == 0 {
                    return Ok(false);
                }
                audit(
                    &tx,
                    &actor,
                    "ticket.transfer_cancel",
                    &format!("ticket:{}", id.to_hex()),
                    "",
                    t,
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    /// Lapses the offers due now, each sender told; returns how many.
    pub async fn expire_transfers(&self, mail: Box<NoticeMail>) -> StoreResult<usize> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let n = expire_due(&tx, t, mail.as_ref())?;
                tx.commit()?;
                Ok(n)
            })
            .await
            .inspect(|n| {
                if *n > 0 {
                    self.wake_outbox();
                }
            })
    }

    /// The live offers of a holder's tickets: (ticket code, recipient).
    pub async fn offers_of(&self, user_id: i64) -> StoreResult<Vec<(String, String)>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    "SELECT t.ticket_id, x.to_email FROM transfers x JOIN tickets t ON t.id = x.ticket
                     WHERE x.from_user = ?1 AND x.status = 'pending' ORDER BY x.id",
                    params![user_id],
                    |r| {
                        Ok((
                            tickets::ticket_hex(r.get(0)?).unwrap_or_default(),
                            r.get(1)?,
                        ))
                    },
                )
            })
            .await
    }

    /// The chain of holders of ticket `id` (oldest first) and the
    /// transfers along it; `None` if there is no such ticket.
    pub async fn admin_ticket_chain(
        &self,
        id: TicketId,
    ) -> StoreResult<Option<(Vec<tickets::ChainLink>, Vec<TransferRow>)>> {
        self.pool
            .read_blocking_sql(move |c| {
                let Some(row) = tickets::row_id(c, &id)? else {
                    return Ok(None);
                };
                let chain = tickets::chain_of(c, row)?;
                let rows: Vec<i64> = chain.iter().map(|l| l.row).collect();
                let transfers = of_chain(c, &rows)?;
                Ok(Some((chain, transfers)))
            })
            .await
    }

    /// The transfers of a session's tickets, newest first, at most `limit`.
    pub async fn admin_session_transfers(
        &self,
        session_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<TransferRow>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    &format!("{ROW_SELECT} WHERE t.session_id = ?1 ORDER BY x.id DESC LIMIT ?2"),
                    params![session_id, limit],
                    transfer_row,
                )
            })
            .await
    }
}
