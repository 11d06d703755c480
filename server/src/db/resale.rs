//! Resale at face value (`resale_listings`): a holder lists a valid ticket
//! at what was paid for it, no other price possible; it shows on the
//! session page beside the primary offers. A buyer's pending order holds
//! the listing (one atomic UPDATE from `listed`: of two buyers racing, one
//! wins, the other is told it is gone) and is paid on the normal payment
//! page at face value plus the buyer's fee. On payment the ticket is
//! re-issued into the buyer's order ([`tickets::reissue_in`], the old one
//! revoked `transferred`) and the seller is owed face value minus the
//! seller's fee, refunded through the payment gateway once the payment has
//! committed ([`Store::due_payouts`], [`Store::payout_done`]).
//!
//! A resale order takes no seat: it moves one that is already taken. Its
//! hold expiring returns the listing on sale, not seats.

use jo_shared::doublekey::PurchaseKey;
use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::TicketId;

use super::audit::{Actor, audit};
use super::orders::CartListing;
use super::sql::{Begin, Conn, Optional, params};
use super::tickets::{self, NewHolder, ReissueOutcome};
use super::{Store, StoreError, StoreResult, now};
use crate::config::ShopPolicy;
use crate::tickets::TicketIssuer;

/// `amount × basis_points / 10 000`, rounded half up, in cents.
pub fn fee_cents(amount: i64, basis_points: i64) -> i64 {
    (amount.saturating_mul(basis_points) + 5_000).div_euclid(10_000)
}

/// What a buyer pays for a listing of face value `face`.
pub fn buyer_price(face: i64, shop: &ShopPolicy) -> i64 {
    face + fee_cents(face, shop.resale_buyer_fee_bp)
}

/// What the seller of a listing of face value `face` is refunded.
pub fn seller_payout(face: i64, shop: &ShopPolicy) -> i64 {
    face - fee_cents(face, shop.resale_seller_fee_bp)
}

/// Whether ticket row `row` is on sale or held by a buyer's order.
pub(super) fn is_listed(c: &Conn<'_>, row: i64) -> StoreResult<bool> {
    let n: i64 = c.query_row(
        "SELECT count(*) FROM resale_listings WHERE ticket = ?1 AND status IN ('listed', 'held')",
        params![row],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Tickets `user_id` holds or is buying for session `session_id`: valid
/// tickets, the units of unpaid unexpired orders (primary and resale).
pub(super) fn tickets_for_session(
    c: &Conn<'_>,
    user_id: i64,
    session_id: i64,
    t: i64,
) -> StoreResult<i64> {
    // One statement, so one snapshot: a payment of this buyer committing
    // meanwhile (pending hold to tickets) is counted once, never missed,
    // when checkouts run side by side on PostgreSQL (Begin::Shop).
    c.query_row(
        "SELECT (SELECT count(*) FROM tickets WHERE user_id = ?1 AND session_id = ?2 AND status = 'valid')
              + (SELECT coalesce(sum(l.quantity), 0) FROM orders o JOIN order_lines l ON l.order_id = o.id
                 WHERE o.user_id = ?1 AND l.session_id = ?2 AND o.status = 'pending' AND o.hold_expires_at > ?3)",
        params![user_id, session_id, t],
        |r| r.get(0),
    )
}

/// Puts the listing of resale order `order_id` back on sale (its hold ran
/// out), or withdraws it if its ticket was revoked meanwhile (a refund, a
/// cancelled session). No seat is released: the order took none.
pub(super) fn release(tx: &Conn<'_>, order_id: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE resale_listings SET order_id = NULL,
             status = CASE WHEN (SELECT t.status FROM tickets t WHERE t.id = resale_listings.ticket) = 'valid'
                           THEN 'listed' ELSE 'withdrawn' END
         WHERE order_id = ?1 AND status = 'held'",
        params![order_id],
    )?;
    Ok(())
}

/// Withdraws the listing on sale of ticket row `ticket`, revoked other
/// than by its own sale: no buyer pays for a code that no longer works.
/// (A listing held by a buyer's order stays held; its payment fails on
/// the revoked ticket and the hold's end withdraws it, see [`release`].)
pub(super) fn withdraw_revoked(tx: &Conn<'_>, ticket: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE resale_listings SET status = 'withdrawn' WHERE ticket = ?1 AND status = 'listed'",
        params![ticket],
    )?;
    Ok(())
}

/// Holds listing `listing` for order `order_id` again (a payment approved
/// after its hold ran out); false if it was sold or withdrawn meanwhile.
pub(super) fn hold_again(tx: &Conn<'_>, listing: i64, order_id: i64) -> StoreResult<bool> {
    let n = tx.execute(
        "UPDATE resale_listings SET status = 'held', order_id = ?2 WHERE id = ?1 AND status = 'listed'",
        params![listing, order_id],
    )?;
    Ok(n == 1)
}

/// Holds `listing` for `user_id`'s new order `order_id` (a checkout), the
/// seller to be refunded face value less the seller's fee of `shop`: one
/// conditional UPDATE, so of two buyers racing for it one gets it. False if
/// it is no longer on sale, or is the buyer's own.
pub(super) fn hold(
    tx: &Conn<'_>,
    listing: &CartListing,
    order_id: i64,
    user_id: i64,
    shop: &ShopPolicy,
) -> StoreResult<bool> {
    let n = tx.execute(
        "UPDATE resale_listings SET status = 'held', order_id = ?2, payout_cents = ?4
         WHERE id = ?1 AND status = 'listed' AND seller <> ?3",
        params![
            listing.id,
            order_id,
            user_id,
            seller_payout(listing.face_cents, shop)
        ],
    )?;
    Ok(n == 1)
}

/// Completes the resale lines of the paid order `order_id` inside the
/// payment's transaction: each listed ticket re-issued into it under the
/// order's `purchase_key` (the seller's revoked, `transferred`), each
/// listing sold. Returns how many tickets moved.
pub(super) fn complete(
    tx: &Conn<'_>,
    order_id: i64,
    user_id: i64,
    purchase_key: &PurchaseKey,
    issuer: &dyn TicketIssuer,
    t: i64,
) -> StoreResult<usize> {
    let lines: Vec<(i64, i64, Vec<u8>, bool)> = tx.query_map(
        "SELECT ol.id, x.id, t.ticket_id, x.status = 'held' AND x.order_id = ?1
         FROM order_lines ol JOIN resale_listings x ON x.id = ol.resale_listing
         JOIN tickets t ON t.id = x.ticket
         WHERE ol.order_id = ?1 ORDER BY ol.id",
        params![order_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    for (line, listing, ticket, held) in &lines {
        if !held {
            // Checkout held it and only this order's end releases it.
            return Err(StoreError::Task(format!(
                "listing {listing} is not held by the order paying it"
            )));
        }
        let ticket = TicketId(
            <[u8; 10]>::try_from(ticket.as_slice())
                .map_err(|_| StoreError::Task("stored ticket id of the wrong length".into()))?,
        );
        let out = tickets::reissue_in(
            tx,
            &ticket,
            NewHolder::Bought {
                user_id,
                order_id,
                line_id: *line,
                purchase_key,
            },
            (RevocationReason::Transferred, &format!("resale {listing}")),
            issuer,
            None,
            t,
        )?;
        let ReissueOutcome::Reissued(_) = out else {
            // Revoked since it was listed (a refund, a cancelled session): the
            // payment's savepoint rolls back and the attempt is marked failed.
            return Err(StoreError::Task(
                "the listed ticket is no longer valid".into(),
            ));
        };
        tx.execute(
            "UPDATE resale_listings SET status = 'sold', sold_at = ?2 WHERE id = ?1",
            params![listing, t],
        )?;
    }
    Ok(lines.len())
}

/// What listing a ticket did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOutcome {
    /// Not one of the holder's tickets.
    NotFound,
    /// Revoked, offered to someone, or its session has started.
    NotValid,
    /// Already on sale.
    AlreadyListed,
    /// On sale at this face value, cents.
    Listed(i64),
}

/// A listing as the session page shows it.
#[derive(Debug, Clone)]
pub struct ListingView {
    /// Row id.
    pub id: i64,
    /// Offer name.
    pub offer: String,
    /// People admitted.
    pub admits: i64,
    /// Face value, cents.
    pub face_cents: i64,
}

/// What a buyer's attempt on a listing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyOutcome {
    /// Sold, withdrawn, or held by another buyer.
    Gone,
    /// The buyer's own listing.
    Own,
    /// The buyer would hold more tickets for the session than allowed.
    Limit(i64),
    /// The cart has as many lines as it may.
    CartFull,
    /// In the buyer's cart (held at checkout, with the cart's other lines).
    Added,
}

/// A refund owed to a seller.
#[derive(Debug, Clone)]
pub struct Payout {
    /// Listing.
    pub listing: i64,
    /// Amount, cents.
    pub amount_cents: i64,
    /// The seller's order (the refund's reference).
    pub order_number: String,
    /// The gateway's transaction of the seller's payment.
    pub transaction_id: String,
}

/// A resale as the console lists it.
#[derive(Debug, Clone)]
pub struct ResaleRow {
    /// Listing.
    pub id: i64,
    /// The listed ticket's code.
    pub ticket: String,
    /// Seller's address.
    pub seller: String,
    /// Status.
    pub status: String,
    /// Face value, cents.
    pub face_cents: i64,
    /// Seller's refund, cents (once held or sold).
    pub payout_cents: Option<i64>,
    /// Gateway refund reference.
    pub payout_ref: Option<String>,
    /// Listed, Unix seconds.
    pub created_at: i64,
}

impl Store {
    /// Lists one of `actor`'s valid tickets for resale at the price paid
    /// for it.
    pub async fn list_for_resale(&self, actor: Actor, id: TicketId) -> StoreResult<ListOutcome> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let found: Option<(i64, String, i64, i64, i64)> = tx
                    .query_row(
                        "SELECT t.id, t.status, s.starts_at, t.session_id, ol.unit_price_cents
                         FROM tickets t JOIN game_sessions s ON s.id = t.session_id
                         JOIN order_lines ol ON ol.id = t.order_line_id
                         WHERE t.ticket_id = ?1 AND t.user_id = ?2",
                        params![&id.0[..], actor.id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                    )
                    .optional()?;
                let Some((row, status, starts_at, session, face)) = found else {
                    return Ok(ListOutcome::NotFound);
                };
                if status != "valid" || starts_at <= t || super::transfers::is_offered(&tx, &id)? {
                    return Ok(ListOutcome::NotValid);
                }
                if is_listed(&tx, row)? {
                    return Ok(ListOutcome::AlreadyListed);
                }
                let listing: i64 = tx.query_row(
                    "INSERT INTO resale_listings (ticket, seller, session_id, face_cents, status, created_at)
                     VALUES (?1, ?2, ?3, ?4, 'listed', ?5) RETURNING id",
                    params![row, actor.id, session, face, t],
                    |r| r.get(0),
                )?;
                audit(
                    &tx,
                    &actor,
                    "ticket.resale_list",
                    &format!("ticket:{}", id.to_hex()),
                    &format!("listing={listing} face_cents={face}"),
                    t,
                )?;
                tx.commit()?;
                Ok(ListOutcome::Listed(face))
            })
            .await
    }

    /// Withdraws the listing of one of `actor`'s tickets while no buyer
    /// holds it; false if there was none to withdraw.
    pub async fn withdraw_listing(&self, actor: Actor, id: TicketId) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let n = tx.execute(
                    "UPDATE resale_listings SET status = 'withdrawn'
                     WHERE status = 'listed' AND seller = ?2
                       AND ticket = (SELECT id FROM tickets WHERE ticket_id = ?1)",
                    params![&id.0[..], actor.id],
                )?;
                if n == 0 {
                    return Ok(false);
                }
                audit(
                    &tx,
                    &actor,
                    "ticket.resale_withdraw",
                    &format!("ticket:{}", id.to_hex()),
                    "",
                    t,
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    /// The tickets on sale for a session, cheapest first.
    pub async fn session_listings(&self, session_id: i64) -> StoreResult<Vec<ListingView>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    "SELECT x.id, ol.offer_name, t.admits, x.face_cents
                     FROM resale_listings x JOIN tickets t ON t.id = x.ticket
                     JOIN order_lines ol ON ol.id = t.order_line_id
                     WHERE x.session_id = ?1 AND x.status = 'listed' ORDER BY x.face_cents, x.id LIMIT 100",
                    params![session_id],
                    |r| {
                        Ok(ListingView {
                            id: r.get(0)?,
                            offer: r.get(1)?,
                            admits: r.get(2)?,
                            face_cents: r.get(3)?,
                        })
                    },
                )
            })
            .await
    }

    /// The ticket codes `user_id` has on sale or held by a buyer.
    pub async fn listed_of(&self, user_id: i64) -> StoreResult<Vec<String>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    "SELECT t.ticket_id FROM resale_listings x JOIN tickets t ON t.id = x.ticket
                     WHERE x.seller = ?1 AND x.status IN ('listed', 'held')",
                    params![user_id],
                    |r| Ok(tickets::ticket_hex(r.get(0)?).unwrap_or_default()),
                )
            })
            .await
    }

    /// The tickets `user_id` sold on resale, with what they are owed:
    /// `(ticket code, refund in cents, whether the gateway has made it)`.
    pub async fn resold_of(&self, user_id: i64) -> StoreResult<Vec<(String, i64, bool)>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    "SELECT t.ticket_id, x.payout_cents, x.payout_ref IS NOT NULL
                     FROM resale_listings x JOIN tickets t ON t.id = x.ticket
                     WHERE x.seller = ?1 AND x.status = 'sold'",
                    params![user_id],
                    |r| {
                        Ok((
                            tickets::ticket_hex(r.get(0)?).unwrap_or_default(),
                            r.get::<Option<i64>>(1)?.unwrap_or(0),
                            r.get::<bool>(2)?,
                        ))
                    },
                )
            })
            .await
    }

    /// Sellers' refunds owed and not yet made.
    pub async fn due_payouts(&self) -> StoreResult<Vec<Payout>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    "SELECT x.id, x.payout_cents, o.number,
                            (SELECT p.transaction_id FROM payments p WHERE p.order_id = o.id AND p.status = 'succeeded')
                     FROM resale_listings x JOIN tickets t ON t.id = x.ticket JOIN orders o ON o.id = t.order_id
                     WHERE x.status = 'sold' AND x.payout_ref IS NULL ORDER BY x.id LIMIT 100",
                    params![],
                    |r| {
                        Ok(Payout {
                            listing: r.get(0)?,
                            amount_cents: r.get::<Option<i64>>(1)?.unwrap_or(0),
                            order_number: r.get(2)?,
                            transaction_id: r.get::<Option<String>>(3)?.unwrap_or_default(),
                        })
                    },
                )
            })
            .await
    }

    /// Records a seller's refund as made (idempotent: the first reference stays).
    pub async fn payout_done(&self, listing: i64, reference: String) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                c.execute(
                    "UPDATE resale_listings SET payout_ref = ?2 WHERE id = ?1 AND payout_ref IS NULL",
                    params![listing, reference],
                )?;
                Ok(())
            })
            .await
    }

    /// The resales of a session's tickets, newest first, at most `limit`.
    pub async fn admin_session_resales(
        &self,
        session_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<ResaleRow>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    "SELECT x.id, t.ticket_id, u.email, x.status, x.face_cents, x.payout_cents, x.payout_ref, x.created_at
                     FROM resale_listings x JOIN tickets t ON t.id = x.ticket JOIN users u ON u.id = x.seller
                     WHERE x.session_id = ?1 ORDER BY x.id DESC LIMIT ?2",
                    params![session_id, limit],
                    |r| {
                        Ok(ResaleRow {
                            id: r.get(0)?,
                            ticket: tickets::ticket_hex(r.get(1)?).unwrap_or_default(),
                            seller: r.get(2)?,
                            status: r.get(3)?,
                            face_cents: r.get(4)?,
                            payout_cents: r.get(5)?,
                            payout_ref: r.get(6)?,
                            created_at: r.get(7)?,
                        })
                    },
                )
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_are_exact_in_cents_rounded_half_up() {
        let shop = ShopPolicy::default();
        assert_eq!(buyer_price(4_500, &shop), 4_950);
        assert_eq!(seller_payout(4_500, &shop), 4_275);
        // 5 % of 1 235 is 61.75 → 62; 10 % of 1 235 is 123.5 → 124.
        assert_eq!(seller_payout(1_235, &shop), 1_173);
        assert_eq!(buyer_price(1_235, &shop), 1_359);
        assert_eq!(fee_cents(0, 500), 0);
        assert_eq!(fee_cents(10, 500), 1);
    }
}
