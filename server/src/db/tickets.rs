//! Tickets: the one module that writes the `tickets` table. A ticket row is
//! made by `insert` only, for a paid order (`issue_for_order`) or a
//! re-issue ([`Store::admin_reissue_ticket`]), and changed by [`revoke`]
//! only, which also enters it in the signed revocation list. The signing
//! itself is the caller's [`TicketIssuer`]: the server key never enters
//! storage, and the key id comes back with the signed ticket.

use std::sync::Arc;

use super::sql::{Begin, Conn, Optional, Row, params};
use jo_shared::doublekey::{PurchaseKey, UserKey};
use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::{TICKET_ID_LEN, TicketId};

use super::audit::{Actor, audit};
use super::outbox::{self, Outgoing};
use super::{Store, StoreError, StoreResult, now, revocations};
use crate::tickets::{IssuedTicket, TicketIssuer, TicketSpec};
use crate::units::status::{OrderStatus, TicketStatus};

/// A ticket as the buyer sees it.
#[derive(Debug, Clone)]
pub struct TicketView {
    /// Public ticket id, hex (used in URLs).
    pub ticket_hex: String,
    /// Order number.
    pub order_number: String,
    /// Session id.
    pub session_id: i64,
    /// Session title.
    pub title: String,
    /// Sport.
    pub sport: String,
    /// Venue.
    pub venue: String,
    /// City.
    pub city: String,
    /// Session start.
    pub starts_at: i64,
    /// Doors open.
    pub doors_open_at: i64,
    /// Holder as signed.
    pub holder: String,
    /// People admitted.
    pub admits: i64,
    /// Offer name.
    pub offer_name: String,
    /// Valid or revoked.
    pub status: TicketStatus,
    /// The signed QR string.
    pub qr: String,
    /// The venue's postal address ("" when not known).
    pub address: String,
    /// The session's entrance or gate information ("" when none).
    pub entrance: String,
}

/// A ticket as the console lists it.
#[derive(Debug, Clone)]
pub struct TicketRow {
    /// Public ticket id, hex.
    pub code: String,
    /// Order number.
    pub order_number: String,
    /// Session title.
    pub session: String,
    /// Offer name.
    pub offer: String,
    /// Holder name.
    pub holder: String,
    /// People admitted.
    pub admits: i64,
    /// Valid or revoked.
    pub status: TicketStatus,
    /// Issued, Unix seconds.
    pub issued_at: i64,
    /// Code of the ticket this one replaces.
    pub replaces: Option<String>,
    /// Revocation reason (`fraud`, `refunded`…), when revoked.
    pub revocation: Option<String>,
    /// Revocation note.
    pub note: String,
    /// Buyer's email.
    pub email: String,
}

/// What a re-issue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReissueOutcome {
    /// No such ticket.
    NotFound,
    /// Only a valid ticket of a paid order can be re-issued.
    NotValid,
    /// The new ticket's code.
    Reissued(String),
}

/// Tickets re-issued per transaction by [`Store::admin_reissue_session`]:
/// a few hundred milliseconds of the write lock at most.
pub const REISSUE_CHUNK: i64 = 500;

/// What [`Store::admin_reissue_session`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionReissue {
    /// Tickets re-issued (each holder mailed, each old code revoked).
    pub reissued: usize,
    /// Valid tickets left as they were: on offer to a friend, listed for
    /// resale, or of an order no longer paid.
    pub left_out: usize,
}

/// Where a new ticket belongs and whom it admits; what was signed comes
/// with the [`IssuedTicket`].
pub(super) struct NewTicket<'a> {
    /// The paid order.
    pub order_id: i64,
    /// Its line (session × offer).
    pub order_line_id: i64,
    /// Derivation index within the order.
    pub index: u32,
    /// The buyer.
    pub user_id: i64,
    /// The session.
    pub session_id: i64,
    /// The offer.
    pub offer_id: i64,
    /// Holder name as kept on the server.
    pub holder: &'a str,
    /// People admitted.
    pub admits: i64,
    /// Row id of the ticket this one replaces (a re-issue).
    pub replaces: Option<i64>,
    /// The ticket's own purchase key, when it is not the order's (a ticket
    /// re-issued to another account).
    pub purchase_key: Option<&'a PurchaseKey>,
}

/// Writes a newly signed ticket, valid: the one INSERT of a ticket row.
/// Returns its row id.
pub(super) fn insert(
    c: &Conn<'_>,
    new: &NewTicket<'_>,
    issued: &IssuedTicket,
    issued_at: i64,
) -> StoreResult<i64> {
    c.query_row(
        "INSERT INTO tickets (ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id,
             holder, admits, key_id, valid_from, valid_minutes, qr, status, issued_at, replaces,
             purchase_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         RETURNING id",
        params![
            &issued.ticket_id.0[..],
            new.order_id,
            new.order_line_id,
            new.index,
            new.user_id,
            new.session_id,
            new.offer_id,
            new.holder,
            new.admits,
            &issued.key_id.0[..],
            issued.valid_from,
            issued.valid_minutes,
            issued.qr,
            TicketStatus::Valid,
            issued_at,
            new.replaces,
            new.purchase_key.map(|k| k.as_bytes().to_vec())
        ],
        |r| r.get(0),
    )
}

/// What a paid order's tickets will say, as read from the database: the
/// buyer's key and name, and the order's lines with their sessions' times.
/// Two equal plans signed with one purchase key give the same tickets, which
/// is what lets the signing happen before the payment's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OrderPlan {
    order_id: i64,
    user_id: i64,
    user_key: Vec<u8>,
    holder: String,
    /// The names given to tickets of the order at checkout, by derivation
    /// index (the others carry the buyer's name).
    names: Vec<(u32, String)>,
    /// (line, session, offer, seats, quantity, doors open, end), in line order.
    lines: Vec<(i64, i64, i64, i64, i64, i64, i64)>,
}

impl OrderPlan {
    /// The name on ticket `index`: the one given at checkout, else the buyer's.
    fn holder_of(&self, index: u32) -> &str {
        self.names
            .iter()
            .find(|(i, _)| *i == index)
            .map_or(self.holder.as_str(), |(_, n)| n.as_str())
    }
}

/// Reads the plan of `order_id`, bought by `user_id`: its primary lines
/// (a resale line's ticket exists already; it is re-issued into the order,
/// see `resale::complete`).
pub(super) fn plan_for_order(c: &Conn<'_>, order_id: i64, user_id: i64) -> StoreResult<OrderPlan> {
    let (user_key, first, last): (Vec<u8>, String, String) = c.query_row(
        "SELECT user_key, first_name, last_name FROM users WHERE id = ?1",
        params![user_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let lines = c.query_map(
        "SELECT ol.id, ol.session_id, ol.offer_id, ol.seats, ol.quantity, s.doors_open_at, s.ends_at
         FROM order_lines ol JOIN game_sessions s ON s.id = ol.session_id
         WHERE ol.order_id = ?1 AND ol.resale_listing IS NULL ORDER BY ol.id",
        params![order_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
    )?;
    let names = c
        .query_map(
            "SELECT idx, name FROM order_holders WHERE order_id = ?1 ORDER BY idx",
            params![order_id],
            |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
        )?
        .into_iter()
        .filter_map(|(i, n)| u32::try_from(i).ok().map(|i| (i, n)))
        .collect();
    Ok(OrderPlan {
        order_id,
        user_id,
        user_key,
        holder: format!("{first} {last}"),
        names,
        lines,
    })
}

/// An order's tickets, signed under a new purchase key from its
/// [`OrderPlan`], not yet stored.
pub(super) struct SignedOrder {
    /// What was signed.
    pub plan: OrderPlan,
    /// The order's new purchase key.
    pub purchase_key: PurchaseKey,
    /// (line, session, offer, seats, derivation index, signed ticket).
    tickets: Vec<(i64, i64, i64, i64, u32, IssuedTicket)>,
}

/// Signs the tickets of `plan`: one per unit of each line, derivation
/// indexes 0, 1, 2… in line order, each valid from the doors' opening to an
/// hour after the end. Pure computation: no database, no lock.
pub(super) fn sign_order(plan: OrderPlan, issuer: &dyn TicketIssuer) -> StoreResult<SignedOrder> {
    let user_key = UserKey::from_slice(&plan.user_key)
        .ok_or_else(|| StoreError::Task("user key of the wrong length".into()))?;
    let purchase_key = PurchaseKey::generate().map_err(|e| StoreError::Task(e.to_string()))?;
    let mut tickets = Vec::new();
    let mut index: u32 = 0;
    for &(line_id, session_id, offer_id, seats, quantity, doors, ends) in &plan.lines {
        let admits =
            u8::try_from(seats).map_err(|_| StoreError::Task("admits out of range".into()))?;
        let session = u32::try_from(session_id)
            .map_err(|_| StoreError::Task("session id out of range".into()))?;
        for _ in 0..quantity {
            let spec = TicketSpec {
                index,
                session_id: session,
                admits,
                valid_from: doors,
                // An hour after the end: late leavers re-entering, clocks off by a little.
                valid_until: ends + 3_600,
                holder: plan.holder_of(index),
            };
            let issued = issuer
                .issue(&user_key, &purchase_key, &spec)
                .map_err(|e| StoreError::Task(format!("signing a ticket: {e}")))?;
            tickets.push((line_id, session_id, offer_id, seats, index, issued));
            index += 1;
        }
    }
    Ok(SignedOrder {
        plan,
        purchase_key,
        tickets,
    })
}

/// Stores the tickets of a paid order inside `tx`: `signed` if it was
/// signed from the order as it still is (read again here, under the write
/// lock), else tickets signed now. Returns the purchase key they are
/// derived from, for the order row, and how many were stored.
pub(super) fn issue_for_order(
    tx: &Conn<'_>,
    order_id: i64,
    user_id: i64,
    signed: Option<SignedOrder>,
    issuer: &dyn TicketIssuer,
    t: i64,
) -> StoreResult<(PurchaseKey, usize)> {
    let plan = plan_for_order(tx, order_id, user_id)?;
    let signed = match signed {
        Some(s) if s.plan == plan => s,
        // Changed in between (or nothing signed ahead): sign it as it is.
        _ => sign_order(plan, issuer)?,
    };
    let SignedOrder {
        plan,
        purchase_key,
        tickets,
    } = signed;
    for (line_id, session_id, offer_id, seats, index, issued) in &tickets {
        let new = NewTicket {
            order_id,
            order_line_id: *line_id,
            index: *index,
            user_id,
            session_id: *session_id,
            offer_id: *offer_id,
            // The full name stays on the server; the payload carries its short form.
            holder: plan.holder_of(*index),
            admits: *seats,
            replaces: None,
            purchase_key: None,
        };
        insert(tx, &new, issued, t)?;
    }
    Ok((purchase_key, tickets.len()))
}

/// Revokes `ticket_id`: marks the ticket revoked (when the server issued
/// it) and appends it to the signed list (`revocations::append`). A
/// ticket already on the list gets `None`; otherwise the new entry's version.
///
/// Call inside a transaction: the caller's other writes (refund, session
/// cancellation, re-issue) and the list entry commit together, so that a
/// ticket's status and the list scanners sync can never disagree.
pub fn revoke(
    conn: &Conn<'_>,
    ticket_id: &TicketId,
    reason: RevocationReason,
    note: &str,
    now: i64,
) -> StoreResult<Option<u64>> {
    revoke_and_notify(conn, ticket_id, (reason, note), now, true)
}

/// [`revoke`], with the holder's revocation mail only if `notify`.
fn revoke_and_notify(
    conn: &Conn<'_>,
    ticket_id: &TicketId,
    (reason, note): (RevocationReason, &str),
    now: i64,
    notify: bool,
) -> StoreResult<Option<u64>> {
    conn.execute(
        "UPDATE tickets SET status = ?2 WHERE ticket_id = ?1",
        params![&ticket_id.0[..], TicketStatus::Revoked],
    )?;
    // Revoked other than by its own hand-over (which closes its offer or
    // listing itself): no friend may accept it, no buyer pay for it.
    if reason != RevocationReason::Transferred
        && let Some(row) = row_id(conn, ticket_id)?
    {
        super::transfers::cancel_for_revoked(conn, row, now)?;
        super::resale::withdraw_revoked(conn, row)?;
    }
    revocations::append(conn, ticket_id, reason, note, now, notify)
}

/// Revokes every valid ticket of an order with `reason`; returns how many.
pub(super) fn revoke_valid_of_order(
    tx: &Conn<'_>,
    order_id: i64,
    reason: RevocationReason,
    note: &str,
    t: i64,
) -> StoreResult<usize> {
    let ids: Vec<Vec<u8>> = tx.query_map(
        "SELECT ticket_id FROM tickets WHERE order_id = ?1 AND status = 'valid'",
        params![order_id],
        |r| r.get(0),
    )?;
    revoke_each(tx, ids, reason, note, t)
}

/// Revokes every valid ticket of a session with `reason`; returns how many.
pub(super) fn revoke_valid_of_session(
    tx: &Conn<'_>,
    session_id: i64,
    reason: RevocationReason,
    t: i64,
) -> StoreResult<usize> {
    let ids: Vec<Vec<u8>> = tx.query_map(
        "SELECT ticket_id FROM tickets WHERE session_id = ?1 AND status = 'valid' ORDER BY id",
        params![session_id],
        |r| r.get(0),
    )?;
    revoke_each(tx, ids, reason, "", t)
}

/// Revokes each of these stored ticket ids; returns how many (a malformed
/// id, which the schema's CHECK rules out, is passed over).
fn revoke_each(
    tx: &Conn<'_>,
    ids: Vec<Vec<u8>>,
    reason: RevocationReason,
    note: &str,
    t: i64,
) -> StoreResult<usize> {
    let mut n = 0;
    for id in ids {
        let Ok(tid) = <[u8; TICKET_ID_LEN]>::try_from(id.as_slice()) else {
            continue;
        };
        revoke(tx, &TicketId(tid), reason, note, t)?;
        n += 1;
    }
    Ok(n)
}

/// Valid tickets of a session (those whose signed window a change of its
/// times would leave behind).
pub(super) fn valid_of_session(c: &Conn<'_>, id: i64) -> StoreResult<i64> {
    c.query_row(
        "SELECT count(*) FROM tickets WHERE session_id = ?1 AND status = 'valid'",
        params![id],
        |r| r.get(0),
    )
}

/// A stored ticket id as hex; `None` for a missing or malformed one.
pub(super) fn ticket_hex(blob: Option<Vec<u8>>) -> Option<String> {
    blob.filter(|b| b.len() == TICKET_ID_LEN).map(hex::encode)
}

fn task(e: impl std::fmt::Display) -> StoreError {
    StoreError::Task(e.to_string())
}

const VIEW_SELECT: &str = "SELECT t.ticket_id, o.number, t.session_id, s.title, sp.name, v.name, v.city,
        s.starts_at, s.doors_open_at, t.holder, t.admits, ol.offer_name, t.status, t.qr,
        v.address, s.entrance
     FROM tickets t JOIN orders o ON o.id = t.order_id JOIN order_lines ol ON ol.id = t.order_line_id
     JOIN game_sessions s ON s.id = t.session_id JOIN sports sp ON sp.id = s.sport_id
     JOIN venues v ON v.id = s.venue_id";

fn view_from_row(r: &Row<'_>) -> StoreResult<TicketView> {
    let id: Vec<u8> = r.get(0)?;
    Ok(TicketView {
        ticket_hex: hex::encode(id),
        order_number: r.get(1)?,
        session_id: r.get(2)?,
        title: r.get(3)?,
        sport: r.get(4)?,
        venue: r.get(5)?,
        city: r.get(6)?,
        starts_at: r.get(7)?,
        doors_open_at: r.get(8)?,
        holder: r.get(9)?,
        admits: r.get(10)?,
        offer_name: r.get(11)?,
        status: r.get(12)?,
        qr: r.get(13)?,
        address: r.get(14)?,
        entrance: r.get(15)?,
    })
}

const ROW_SELECT: &str = "SELECT t.ticket_id, o.number, s.title, ol.offer_name, t.holder, t.admits, t.status,
        t.issued_at, (SELECT r.ticket_id FROM tickets r WHERE r.id = t.replaces), rv.reason, rv.note, u.email
     FROM tickets t JOIN orders o ON o.id = t.order_id JOIN game_sessions s ON s.id = t.session_id
     JOIN order_lines ol ON ol.id = t.order_line_id JOIN users u ON u.id = t.user_id
     LEFT JOIN revocations rv ON rv.ticket_id = t.ticket_id";

fn row_from_row(r: &Row<'_>) -> StoreResult<TicketRow> {
    let reason: Option<i64> = r.get(9)?;
    Ok(TicketRow {
        code: ticket_hex(r.get(0)?).unwrap_or_default(),
        order_number: r.get(1)?,
        session: r.get(2)?,
        offer: r.get(3)?,
        holder: r.get(4)?,
        admits: r.get(5)?,
        status: r.get(6)?,
        issued_at: r.get(7)?,
        replaces: ticket_hex(r.get(8)?),
        revocation: reason.map(|c| {
            RevocationReason::from_code(u8::try_from(c).unwrap_or(0))
                .as_str()
                .to_owned()
        }),
        note: r.get::<Option<String>>(10)?.unwrap_or_default(),
        email: r.get(11)?,
    })
}

/// The console's rows of an order's tickets, by derivation index.
pub(super) fn rows_of_order(c: &Conn<'_>, order_id: i64) -> StoreResult<Vec<TicketRow>> {
    c.query_map(
        &format!("{ROW_SELECT} WHERE t.order_id = ?1 ORDER BY t.idx"),
        params![order_id],
        row_from_row,
    )
}

impl Store {
    /// A buyer's valid and revoked tickets, by session start.
    pub async fn tickets_of(&self, user_id: i64) -> StoreResult<Vec<TicketView>> {
        self.pool
            .read_blocking_sql(move |c| {
                let sql = format!(
                    "{VIEW_SELECT} WHERE t.user_id = ?1 ORDER BY s.starts_at, t.order_id, t.idx"
                );
                c.query_map(&sql, params![user_id], view_from_row)
            })
            .await
    }

    /// One of a buyer's tickets by public id; `None` if it is not theirs.
    pub async fn ticket_of(
        &self,
        ticket_id: [u8; 10],
        user_id: i64,
    ) -> StoreResult<Option<TicketView>> {
        self.pool
            .read_sql(move |c| {
                let sql = format!("{VIEW_SELECT} WHERE t.ticket_id = ?1 AND t.user_id = ?2");
                c.query_row(&sql, params![&ticket_id[..], user_id], view_from_row)
                    .optional()
            })
            .await
    }

    /// The tickets of one of a buyer's orders; `None` if the order is not theirs.
    pub async fn order_tickets_of(
        &self,
        number: String,
        user_id: i64,
    ) -> StoreResult<Option<Vec<TicketView>>> {
        self.pool
            .read_sql(move |c| {
                let owned: Option<i64> = c
                    .query_row(
                        "SELECT id FROM orders WHERE number = ?1 AND user_id = ?2",
                        params![number, user_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(order_id) = owned else {
                    return Ok(None);
                };
                // A ticket handed to another account stays under the order
                // it was bought in, but is no longer the buyer's.
                let sql = format!(
                    "{VIEW_SELECT} WHERE t.order_id = ?1 AND t.user_id = ?2 ORDER BY t.idx"
                );
                Ok(Some(c.query_map(
                    &sql,
                    params![order_id, user_id],
                    view_from_row,
                )?))
            })
            .await
    }
    /// A ticket by id.
    pub async fn admin_ticket(&self, id: TicketId) -> StoreResult<Option<TicketRow>> {
        self.pool
            .read_blocking_sql(move |c| {
                c.query_row(
                    &format!("{ROW_SELECT} WHERE t.ticket_id = ?1"),
                    params![&id.0[..]],
                    row_from_row,
                )
                .optional()
            })
            .await
    }

    /// Revokes one ticket with a reason; `None` if there is no such ticket,
    /// `Some(false)` if it was already revoked.
    pub async fn admin_revoke_ticket(
        &self,
        actor: Actor,
        id: TicketId,
        reason: RevocationReason,
        note: String,
    ) -> StoreResult<Option<bool>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let status: Option<TicketStatus> = tx
                    .query_row(
                        "SELECT status FROM tickets WHERE ticket_id = ?1",
                        params![&id.0[..]],
                        |r| r.get(0),
                    )
                    .optional()?;
                match status {
                    None => return Ok(None),
                    Some(TicketStatus::Revoked) => return Ok(Some(false)),
                    Some(TicketStatus::Valid) => {}
                }
                revoke(&tx, &id, reason, &note, t)?;
                audit(
                    &tx,
                    &actor,
                    "ticket.revoke",
                    &format!("ticket:{}", id.to_hex()),
                    &format!("reason={} note={note:?}", reason.as_str()),
                    t,
                )?;
                tx.commit()?;
                Ok(Some(true))
            })
            .await
    }

    /// Re-issues a ticket to the same holder (a code that leaked): a new
    /// ticket replacing the old one, which is revoked (`reissued`), in one
    /// transaction with the holder's mail ([`reissue_in`]).
    pub async fn admin_reissue_ticket(
        &self,
        actor: Actor,
        id: TicketId,
        issuer: Arc<dyn TicketIssuer>,
        mail: Box<ReissueMail>,
    ) -> StoreResult<ReissueOutcome> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let out = reissue_in(
                    &tx,
                    &id,
                    NewHolder::Same,
                    (RevocationReason::Reissued, ""),
                    issuer.as_ref(),
                    Some(mail.as_ref()),
                    t,
                )?;
                let ReissueOutcome::Reissued(new_hex) = &out else {
                    return Ok(out);
                };
                audit(
                    &tx,
                    &actor,
                    "ticket.reissue",
                    &format!("ticket:{}", id.to_hex()),
                    &format!("new_ticket={new_hex}"),
                    t,
                )?;
                tx.commit()?;
                Ok(out)
            })
            .await
            .inspect(|_| self.wake_outbox())
    }

    /// Re-issues every valid ticket of session `session_id` for its holder
    /// (a leak of a session's codes, or a mass change): each ticket through
    /// the same [`reissue_in`] as [`Store::admin_reissue_ticket`], audited
    /// and mailed the same way, in transactions of [`REISSUE_CHUNK`]
    /// tickets so that the shop's writers get in between (a chunk commits
    /// whole or not at all; a failure leaves the chunks before it done and
    /// the rest valid, and running it again re-issues the rest). Only the
    /// tickets valid when it starts are re-issued (not the new ones). A
    /// ticket on offer to a friend or listed for resale is left as it is
    /// and counted: its offer or listing names that very ticket. `None` if
    /// there is no such session.
    pub async fn admin_reissue_session(
        &self,
        actor: Actor,
        session_id: i64,
        issuer: Arc<dyn TicketIssuer>,
        mail: Arc<ReissueMail>,
    ) -> StoreResult<Option<SessionReissue>> {
        let last: Option<i64> = self
            .pool
            .run_sql(move |c| {
                let exists: Option<i64> = c
                    .query_row(
                        "SELECT id FROM game_sessions WHERE id = ?1",
                        params![session_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if exists.is_none() {
                    return Ok(None);
                }
                let last: Option<i64> = c.query_row(
                    "SELECT max(id) FROM tickets WHERE session_id = ?1",
                    params![session_id],
                    |r| r.get(0),
                )?;
                Ok(Some(last.unwrap_or(0)))
            })
            .await?;
        let Some(last) = last else {
            return Ok(None);
        };
        let mut done = SessionReissue::default();
        let mut after = 0i64;
        loop {
            let (actor, issuer, mail) = (actor.clone(), issuer.clone(), mail.clone());
            let (chunk, seen_to) = self
                .pool
                .run_sql(move |c| {
                    let t = now();
                    let tx = c.begin(Begin::Immediate)?;
                    let rows: Vec<(i64, Vec<u8>)> = tx.query_map(
                        "SELECT id, ticket_id FROM tickets
                         WHERE session_id = ?1 AND status = ?2 AND id > ?3 AND id <= ?4
                         ORDER BY id LIMIT ?5",
                        params![session_id, TicketStatus::Valid, after, last, REISSUE_CHUNK],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    let mut chunk = SessionReissue::default();
                    let seen_to = rows.last().map(|(row, _)| *row);
                    for (row, tid) in rows {
                        let Ok(tid) = <[u8; TICKET_ID_LEN]>::try_from(tid.as_slice()) else {
                            continue;
                        };
                        let id = TicketId(tid);
                        if super::transfers::is_offered(&tx, &id)?
                            || super::resale::is_listed(&tx, row)?
                        {
                            chunk.left_out += 1;
                            continue;
                        }
                        let out = reissue_in(
                            &tx,
                            &id,
                            NewHolder::Same,
                            (RevocationReason::Reissued, "session re-issue"),
                            issuer.as_ref(),
                            Some(mail.as_ref()),
                            t,
                        )?;
                        match out {
                            ReissueOutcome::Reissued(new_hex) => {
                                audit(
                                    &tx,
                                    &actor,
                                    "ticket.reissue",
                                    &format!("ticket:{}", id.to_hex()),
                                    &format!("new_ticket={new_hex} session={session_id}"),
                                    t,
                                )?;
                                chunk.reissued += 1;
                            }
                            // A ticket of an order no longer paid.
                            ReissueOutcome::NotFound | ReissueOutcome::NotValid => {
                                chunk.left_out += 1
                            }
                        }
                    }
                    tx.commit()?;
                    Ok((chunk, seen_to))
                })
                .await?;
            self.wake_outbox();
            done.reissued += chunk.reissued;
            done.left_out += chunk.left_out;
            match seen_to {
                Some(row) => after = row,
                None => break,
            }
        }
        if done.reissued > 0 {
            let detail = format!("reissued={} left_out={}", done.reissued, done.left_out);
            self.pool
                .run_sql(move |c| {
                    audit(
                        c,
                        &actor,
                        "session.reissue",
                        &format!("session:{session_id}"),
                        &detail,
                        now(),
                    )
                })
                .await?;
        }
        Ok(Some(done))
    }

    /// Changes the name on one of a buyer's valid tickets before its
    /// session: a re-issue under the new name (the old code revoked,
    /// `reissued`), mailed to the buyer. `None` if the ticket is not theirs.
    pub async fn rename_ticket(
        &self,
        actor: Actor,
        id: TicketId,
        name: String,
        issuer: Arc<dyn TicketIssuer>,
        mail: Box<ReissueMail>,
    ) -> StoreResult<Option<ReissueOutcome>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let owned: Option<i64> = tx
                    .query_row(
                        "SELECT s.starts_at FROM tickets t JOIN game_sessions s ON s.id = t.session_id
                         WHERE t.ticket_id = ?1 AND t.user_id = ?2",
                        params![&id.0[..], actor.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(starts_at) = owned else {
                    return Ok(None);
                };
                let row = row_id(&tx, &id)?.unwrap_or_default();
                if starts_at <= t
                    || super::transfers::is_offered(&tx, &id)?
                    || super::resale::is_listed(&tx, row)?
                {
                    return Ok(Some(ReissueOutcome::NotValid));
                }
                let out = reissue_in(
                    &tx,
                    &id,
                    NewHolder::Renamed(&name),
                    (RevocationReason::Reissued, "name changed"),
                    issuer.as_ref(),
                    Some(mail.as_ref()),
                    t,
                )?;
                if let ReissueOutcome::Reissued(new_hex) = &out {
                    audit(
                        &tx,
                        &actor,
                        "ticket.rename",
                        &format!("ticket:{}", id.to_hex()),
                        &format!("new_ticket={new_hex}"),
                        t,
                    )?;
                    tx.commit()?;
                }
                Ok(Some(out))
            })
            .await
            .inspect(|_| self.wake_outbox())
    }
}

/// Who a re-issued ticket is for.
#[derive(Debug, Clone, Copy)]
pub enum NewHolder<'a> {
    /// The same account and name: a new secret only (a code that leaked).
    Same,
    /// The same account, another name on the ticket (a name change).
    Renamed(&'a str),
    /// Another account (a transfer, a resale): the ticket is derived from
    /// its user key and a purchase key of the ticket's own, and carries the
    /// account's name.
    Account(i64),
    /// A buyer's paid order (a resale): the ticket joins that order, derived
    /// from the buyer's user key and the order's purchase key like a ticket
    /// bought new, and carries the name given to it at checkout, else the
    /// buyer's. The order's confirmation is the buyer's mail.
    Bought {
        /// The buyer.
        user_id: i64,
        /// Their order.
        order_id: i64,
        /// Its line.
        line_id: i64,
        /// The order's purchase key.
        purchase_key: &'a PurchaseKey,
    },
}

/// What the new holder's mail is about, for the caller's [`ReissueMail`].
#[derive(Debug, Clone)]
pub struct Reissued {
    /// The new holder's address.
    pub email: String,
    /// Their first name.
    pub first_name: String,
    /// The name on the new ticket.
    pub holder: String,
    /// Session title.
    pub session: String,
    /// Session start, Unix seconds.
    pub starts_at: i64,
    /// The new ticket's public id, hex.
    pub ticket_hex: String,
    /// Why the old ticket was replaced.
    pub reason: RevocationReason,
    /// The replaced ticket's public id (hex) when it was this same
    /// account's: the mail then also tells them the old code no longer
    /// works, as theirs is the only mail (no separate revocation notice).
    pub replaces: Option<String>,
}

/// Renders the mail telling a re-issued ticket's new holder about it
/// (the store knows no language or URL; the web layer does).
pub type ReissueMail = dyn Fn(&Reissued) -> Outgoing + Send + Sync;

/// Re-issues ticket `id` inside `tx`: signs a new ticket for `to` (next
/// derivation index of the order: a new id, secret and signature), stores
/// it as replacing the old one, revokes the old one with `reason` through
/// [`revoke`] (so it enters the signed list in this same transaction), and
/// enqueues the new holder's mail, rendered by `mail`. Everything commits
/// with the caller's transaction or not at all. (The old holder's notice
/// belongs to the revocation, except when the ticket stays with the same
/// account: then the new ticket's mail says it all, and is the only one.)
///
/// Only a valid ticket of a paid order can be re-issued.
pub(super) fn reissue_in(
    tx: &Conn<'_>,
    id: &TicketId,
    to: NewHolder<'_>,
    (reason, note): (RevocationReason, &str),
    issuer: &dyn TicketIssuer,
    mail: Option<&ReissueMail>,
    t: i64,
) -> StoreResult<ReissueOutcome> {
    #[allow(clippy::type_complexity)]
    let old: Option<(
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        String,
        i64,
        i64,
        i64,
        TicketStatus,
        OrderStatus,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    )> = tx
        .query_row(
            "SELECT t.id, t.order_id, t.order_line_id, t.user_id, t.session_id, t.offer_id,
                    t.holder, t.admits, t.valid_from, t.valid_minutes, t.status, o.status,
                    o.purchase_key, t.purchase_key
             FROM tickets t JOIN orders o ON o.id = t.order_id
             WHERE t.ticket_id = ?1",
            params![&id.0[..]],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                ))
            },
        )
        .optional()?;
    let Some((
        old_id,
        order_id,
        line_id,
        old_user,
        session_id,
        offer_id,
        old_holder,
        admits,
        valid_from,
        valid_minutes,
        status,
        order_status,
        order_key,
        own_key,
    )) = old
    else {
        return Ok(ReissueOutcome::NotFound);
    };
    if status != TicketStatus::Valid || order_status != OrderStatus::Paid {
        return Ok(ReissueOutcome::NotValid);
    }
    let user_id = match to {
        NewHolder::Account(u) | NewHolder::Bought { user_id: u, .. } => u,
        NewHolder::Same | NewHolder::Renamed(_) => old_user,
    };
    let (user_key, email, first, last): (Vec<u8>, String, String, String) = tx.query_row(
        "SELECT user_key, email, first_name, last_name FROM users WHERE id = ?1",
        params![user_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let user_key = UserKey::from_slice(&user_key).ok_or_else(|| task("user key length"))?;
    let holder = match to {
        NewHolder::Same => old_holder,
        NewHolder::Renamed(name) => name.to_owned(),
        NewHolder::Account(_) | NewHolder::Bought { .. } => format!("{first} {last}"),
    };
    // Another account: a purchase key of the ticket's own, so the new
    // ticket shares nothing with the order it came from. The same account
    // keeps the key its ticket was derived from.
    let fresh = match to {
        NewHolder::Account(_) => Some(PurchaseKey::generate().map_err(task)?),
        NewHolder::Same | NewHolder::Renamed(_) | NewHolder::Bought { .. } => None,
    };
    let (order_id, line_id) = match to {
        NewHolder::Bought {
            order_id, line_id, ..
        } => (order_id, line_id),
        _ => (order_id, line_id),
    };
    let purchase_key = match (&fresh, to) {
        (Some(k), _) => k.clone(),
        (None, NewHolder::Bought { purchase_key, .. }) => purchase_key.clone(),
        (None, _) => own_key
            .as_deref()
            .or(order_key.as_deref())
            .and_then(PurchaseKey::from_slice)
            .ok_or_else(|| task("purchase key of a paid order"))?,
    };
    let next: i64 = tx.query_row(
        "SELECT coalesce(max(idx), -1) + 1 FROM tickets WHERE order_id = ?1",
        params![order_id],
        |r| r.get(0),
    )?;
    // A ticket bought into an order carries the name its buyer gave that
    // ticket at checkout, if any, like the order's other tickets.
    let holder = match to {
        NewHolder::Bought { .. } => tx
            .query_row(
                "SELECT name FROM order_holders WHERE order_id = ?1 AND idx = ?2",
                params![order_id, next],
                |r| r.get::<String>(0),
            )
            .optional()?
            .unwrap_or(holder),
        _ => holder,
    };
    let spec = TicketSpec {
        index: u32::try_from(next).map_err(task)?,
        session_id: u32::try_from(session_id).map_err(task)?,
        admits: u8::try_from(admits).map_err(task)?,
        valid_from,
        valid_until: valid_from + valid_minutes * 60,
        holder: &holder,
    };
    let issued = issuer
        .issue(&user_key, &purchase_key, &spec)
        .map_err(task)?;
    let new = NewTicket {
        order_id,
        order_line_id: line_id,
        index: spec.index,
        user_id,
        session_id,
        offer_id,
        // The full name, as for a bought ticket: the payload carries its
        // short form.
        holder: &holder,
        admits,
        replaces: Some(old_id),
        purchase_key: fresh.as_ref(),
    };
    insert(tx, &new, &issued, t)?;
    // The same account keeps the ticket (console re-issue, new name): one
    // mail, the new ticket's, saying the old code is gone. Another account
    // gets the ticket (transfer, resale): the old holder is told apart.
    let one_mail = mail.is_some() && user_id == old_user;
    revoke_and_notify(tx, id, (reason, note), t, !one_mail)?;
    let (session, starts_at): (String, i64) = tx.query_row(
        "SELECT title, starts_at FROM game_sessions WHERE id = ?1",
        params![session_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let new_hex = issued.ticket_id.to_hex();
    if let Some(mail) = mail {
        let facts = Reissued {
            email,
            first_name: first,
            holder,
            session,
            starts_at,
            ticket_hex: new_hex.clone(),
            reason,
            replaces: one_mail.then(|| id.to_hex()),
        };
        outbox::enqueue(tx, &mail(&facts), t)?;
    }
    Ok(ReissueOutcome::Reissued(new_hex))
}

/// The row id of a stored ticket.
pub(super) fn row_id(c: &Conn<'_>, id: &TicketId) -> StoreResult<Option<i64>> {
    c.query_row(
        "SELECT id FROM tickets WHERE ticket_id = ?1",
        params![&id.0[..]],
        |r| r.get(0),
    )
    .optional()
}

/// One holder of a ticket's chain, oldest first: every ticket the one
/// asked about replaces, and every ticket that replaced it.
#[derive(Debug, Clone)]
pub struct ChainLink {
    /// Row id.
    pub row: i64,
    /// Public ticket id, hex.
    pub code: String,
    /// Name on the ticket.
    pub holder: String,
    /// The account's address.
    pub email: String,
    /// Issued, Unix seconds.
    pub issued_at: i64,
    /// Valid or revoked.
    pub status: TicketStatus,
    /// Revocation reason, when revoked.
    pub revocation: Option<String>,
}

/// The chain of holders of the ticket with row id `row`: walked back to
/// the ticket first issued, then forward to the one valid now.
pub(super) fn chain_of(c: &Conn<'_>, row: i64) -> StoreResult<Vec<ChainLink>> {
    let mut first = row;
    // A chain is a handful of links; the bound only guards a corrupt loop.
    for _ in 0..1_000 {
        let back: Option<Option<i64>> = c
            .query_row(
                "SELECT replaces FROM tickets WHERE id = ?1",
                params![first],
                |r| r.get(0),
            )
            .optional()?;
        match back.flatten() {
            Some(prev) => first = prev,
            None => break,
        }
    }
    let mut out = Vec::new();
    let mut at = Some(first);
    while let Some(id) = at.take() {
        if out.len() >= 1_000 {
            break;
        }
        let link = c
            .query_row(
                "SELECT t.ticket_id, t.holder, u.email, t.issued_at, t.status, rv.reason
                 FROM tickets t JOIN users u ON u.id = t.user_id
                 LEFT JOIN revocations rv ON rv.ticket_id = t.ticket_id WHERE t.id = ?1",
                params![id],
                |r| {
                    let reason: Option<i64> = r.get(5)?;
                    Ok(ChainLink {
                        row: id,
                        code: ticket_hex(r.get(0)?).unwrap_or_default(),
                        holder: r.get(1)?,
                        email: r.get(2)?,
                        issued_at: r.get(3)?,
                        status: r.get(4)?,
                        revocation: reason.map(|c| {
                            RevocationReason::from_code(u8::try_from(c).unwrap_or(0))
                                .as_str()
                                .to_owned()
                        }),
                    })
                },
            )
            .optional()?;
        let Some(link) = link else { break };
        out.push(link);
        at = c
            .query_row(
                "SELECT id FROM tickets WHERE replaces = ?1 ORDER BY id LIMIT 1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jo_shared::TicketSigner;

    fn stored_qrs(c: &Conn<'_>, order: i64) -> Vec<(String, String)> {
        c.query_map(
            "SELECT qr, holder FROM tickets WHERE order_id = ?1 ORDER BY idx",
            params![order],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("reads")
    }

    #[test]
    fn tickets_signed_ahead_are_stored_only_while_the_order_is_as_signed() {
        let signer = TicketSigner::generate().expect("key");

        // Unchanged order: the tickets signed ahead are the ones stored,
        // under the purchase key they were derived from.
        let mut raw = rusqlite::Connection::open_in_memory().expect("opens");
        let (_, order) = super::super::catalogue::tests::session_and_order(&mut raw, 10, 2);
        let c = Conn::Sqlite(&raw);
        let ahead =
            sign_order(plan_for_order(&c, order, 1).expect("plan"), &signer).expect("signs");
        let ahead_qrs: Vec<String> = ahead.tickets.iter().map(|t| t.5.qr.clone()).collect();
        let ahead_key = *ahead.purchase_key.as_bytes();
        let (key, n) = issue_for_order(&c, order, 1, Some(ahead), &signer, 0).expect("issues");
        assert_eq!(n, 2);
        assert_eq!(*key.as_bytes(), ahead_key);
        let stored: Vec<String> = stored_qrs(&c, order).into_iter().map(|t| t.0).collect();
        assert_eq!(stored, ahead_qrs);

        // The buyer's name changed between the signing and the transaction:
        // what was signed ahead is dropped, the tickets say the new name.
        let mut raw = rusqlite::Connection::open_in_memory().expect("opens");
        let (_, order) = super::super::catalogue::tests::session_and_order(&mut raw, 10, 1);
        let c = Conn::Sqlite(&raw);
        let ahead =
            sign_order(plan_for_order(&c, order, 1).expect("plan"), &signer).expect("signs");
        let ahead_qr = ahead.tickets[0].5.qr.clone();
        let ahead_key = *ahead.purchase_key.as_bytes();
        c.execute(
            "UPDATE users SET last_name = 'Durand' WHERE id = 1",
            params![],
        )
        .expect("renames");
        let (key, n) = issue_for_order(&c, order, 1, Some(ahead), &signer, 0).expect("issues");
        assert_eq!(n, 1);
        assert_ne!(*key.as_bytes(), ahead_key, "signed again, under a new key");
        let stored = stored_qrs(&c, order);
        assert_ne!(stored[0].0, ahead_qr);
        assert_eq!(stored[0].1, "B Durand");
    }
}
