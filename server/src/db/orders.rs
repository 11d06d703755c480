//! Carts, orders with seat holds, and payments: the one module that writes
//! `carts`, `cart_lines`, `cart_listings`, `orders`, `order_lines` and
//! `payments`, for the shop and for the console (order search, refund).
//!
//! Overselling is impossible by construction: seats are taken by the
//! catalogue's seat guard (`catalogue::take_seats`, one conditional
//! `UPDATE` of the session's row) inside the transaction that creates the
//! order (and the schema's CHECK backs it). Checkouts and primary payments
//! are shop writes ([`Begin::Shop`]): on PostgreSQL they run side by side,
//! under the buyer's lock and the order's row lock, and lock sessions' rows
//! in ascending id order. A
//! paid order, its purchase key and its tickets (`tickets::issue_for_order`)
//! are written in one transaction, so there is never a paid order without
//! tickets nor a ticket without a paid order.

use std::sync::Arc;

use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::TicketId;

use super::audit::{Actor, audit};
use super::catalogue::{
    self, SESSION_COLUMN_COUNT, SESSION_COLUMNS, SESSION_FROM, SessionRow, session_from_row,
};
use super::resale::BuyOutcome;
use super::sql::{Begin, Conn, Dialect, Optional, Row, params};
use super::tickets::{SignedOrder, TicketRow};
use super::{Store, StoreError, StoreResult, now, outbox, relaxed_write_sql, tickets};
use crate::config::ShopPolicy;
use crate::tickets::TicketIssuer;
use crate::units::money::offer_price;
use crate::units::status::{OrderStatus, SessionStatus};

/// Most tickets of one offer for one session in a cart line.
pub const MAX_LINE_QUANTITY: i64 = 10;
/// Most lines in a cart.
pub const MAX_CART_LINES: i64 = 10;

/// Whose cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartOwner {
    /// A logged-in buyer.
    User(i64),
    /// An anonymous visitor: the SHA-256 of their cart cookie.
    Anonymous([u8; 32]),
}

/// A cart line with what the cart page shows.
#[derive(Debug, Clone)]
pub struct CartLine {
    /// The session.
    pub session: SessionRow,
    /// Offer id.
    pub offer_id: i64,
    /// Offer name.
    pub offer_name: String,
    /// People one ticket admits.
    pub offer_seats: i64,
    /// Whether the offer is still on sale.
    pub offer_active: bool,
    /// Tickets.
    pub quantity: i64,
    /// Price of one ticket now, cents.
    pub unit_price_cents: i64,
    /// The resale listing this line buys (one ticket, which takes no seat:
    /// it moves one), or `None` for a primary offer.
    pub listing: Option<CartListing>,
}

/// A resale listing in a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartListing {
    /// Its row id.
    pub id: i64,
    /// The ticket's face value (what its seller paid), cents.
    pub face_cents: i64,
    /// Whether it is still on sale (not sold, withdrawn, or held by
    /// another buyer's order).
    pub on_sale: bool,
}

impl CartLine {
    /// Seats the line needs.
    pub fn seats_needed(&self) -> i64 {
        self.offer_seats * self.quantity
    }

    /// Price of the line, cents.
    pub fn total_cents(&self) -> i64 {
        self.unit_price_cents.saturating_mul(self.quantity)
    }
}

/// Why a cart change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartRefusal {
    /// No such session, or not on sale (cancelled, started).
    SessionClosed,
    /// No such offer, or inactive.
    OfferInactive,
    /// Not enough seats left for even this.
    SoldOut,
    /// Too many lines.
    CartFull,
}

/// What is wrong with one line at checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// Session title.
    pub title: String,
    /// Offer name.
    pub offer: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// Kinds of [`LineProblem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Not enough seats left (`left` seats remain).
    SoldOut {
        /// Seats left.
        left: i64,
    },
    /// The offer was withdrawn.
    OfferInactive,
    /// The session is cancelled or started.
    SessionClosed,
    /// The resale ticket was sold, withdrawn, or is held by another buyer.
    ResaleGone,
    /// The buyer would hold more tickets for the session than allowed
    /// (primary and resale purchases together).
    SessionLimit {
        /// The most tickets per buyer per session.
        limit: i64,
    },
}

/// Outcome of a checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutOutcome {
    /// Order created pending, seats held; its public number.
    Created(String),
    /// The cart is empty.
    Empty,
    /// Nothing was held: these lines cannot be bought.
    Refused(Vec<LineProblem>),
    /// Nothing was held: the buyer has this many unpaid orders holding
    /// seats already (the most allowed).
    TooManyPending {
        /// The most unpaid orders a buyer may have.
        limit: i64,
    },
    /// Nothing was held: with this order, the buyer would hold more seats
    /// unpaid than allowed.
    TooManySeats {
        /// The most seats a buyer may hold unpaid.
        limit: i64,
    },
}

/// One line of an order.
#[derive(Debug, Clone)]
pub struct OrderLine {
    /// Session id.
    pub session_id: i64,
    /// Session title.
    pub title: String,
    /// Venue name.
    pub venue: String,
    /// Session start.
    pub starts_at: i64,
    /// Offer name (as bought).
    pub offer_name: String,
    /// Seats per ticket.
    pub seats: i64,
    /// Tickets.
    pub quantity: i64,
    /// Price of one ticket, cents.
    pub unit_price_cents: i64,
}

/// An order of the current buyer.
#[derive(Debug, Clone)]
pub struct Order {
    /// Row id (never shown).
    pub id: i64,
    /// Public number.
    pub number: String,
    /// Status.
    pub status: OrderStatus,
    /// Total, cents.
    pub total_cents: i64,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// End of the seat hold, Unix seconds.
    pub hold_expires_at: i64,
    /// Paid, Unix seconds.
    pub paid_at: Option<i64>,
    /// Lines.
    pub lines: Vec<OrderLine>,
}

/// How a payment attempt starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStart {
    /// Go on and charge: the attempt's row id and the amount.
    Charge {
        /// Payment row id.
        payment_id: i64,
        /// Amount, cents.
        amount_cents: i64,
    },
    /// This idempotency key was used already: its recorded result.
    Replay(PaymentResult),
    /// The order is paid already (by another attempt).
    AlreadyPaid,
    /// The hold expired; the order can no longer be paid.
    Expired,
    /// Another attempt for this order is being charged right now.
    InProgress,
    /// No such order for this buyer, or the key belongs to another order.
    NotFound,
    /// The gateway answered at once: the attempt and this result were
    /// recorded in one transaction.
    Charged(PaymentResult),
}

/// Charges the card for an amount in cents without waiting on anything, if
/// the gateway can: `Some(Ok(transaction id))`, `Some(Err(decline code))`,
/// or `None` when the gateway answers later (the attempt is then recorded
/// first, and [`Store::finish_payment`] records the answer).
pub type ChargeNow = Box<dyn FnOnce(i64) -> Option<Result<String, String>> + Send + 'static>;

/// The recorded result of a payment attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentResult {
    /// Paid, tickets issued.
    Paid,
    /// Declined with this reason code.
    Declined(String),
    /// Charged, but the seats were gone (hold expired and resold): refunded.
    Refunded,
    /// Still being charged.
    Processing,
    /// Failed on our side; nothing kept.
    Failed,
}

/// An order number: 10 characters of Crockford base32 (50 random bits),
/// grouped `XXXXX-XXXXX`.
fn new_order_number() -> StoreResult<String> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 10];
    jo_shared::doublekey::random_bytes(&mut bytes).map_err(|e| StoreError::Task(e.to_string()))?;
    let mut s = String::with_capacity(11);
    for (i, b) in bytes.iter().enumerate() {
        if i == 5 {
            s.push('-');
        }
        s.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    Ok(s)
}

// ----- carts

fn cart_id(c: &Conn<'_>, owner: CartOwner) -> StoreResult<Option<i64>> {
    match owner {
        CartOwner::User(u) => c
            .query_row("SELECT id FROM carts WHERE user_id = ?1", params![u], |r| {
                r.get(0)
            })
            .optional(),
        CartOwner::Anonymous(h) => c
            .query_row(
                "SELECT id FROM carts WHERE token_hash = ?1",
                params![&h[..]],
                |r| r.get(0),
            )
            .optional(),
    }
}

fn cart_id_or_create(c: &Conn<'_>, owner: CartOwner, t: i64) -> StoreResult<i64> {
    if let Some(id) = cart_id(c, owner)? {
        return Ok(id);
    }
    match owner {
        CartOwner::User(u) => c.query_row(
            "INSERT INTO carts (user_id, created_at, updated_at) VALUES (?1, ?2, ?2) RETURNING id",
            params![u, t],
            |r| r.get(0),
        ),
        CartOwner::Anonymous(h) => c.query_row(
            "INSERT INTO carts (token_hash, created_at, updated_at) VALUES (?1, ?2, ?2) RETURNING id",
            params![&h[..], t],
            |r| r.get(0),
        ),
    }
}

/// A cart's lines: its primary offers, then its resale listings (at face
/// value plus the buyer's fee of `shop`).
fn cart_lines_of(c: &Conn<'_>, cart: i64, shop: &ShopPolicy) -> StoreResult<Vec<CartLine>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, o.id, o.name, o.seats, o.active, o.price_percent, cl.quantity
         FROM {SESSION_FROM}
         JOIN cart_lines cl ON cl.session_id = s.id
         JOIN offers o ON o.id = cl.offer_id
         WHERE cl.cart_id = ?1 ORDER BY s.starts_at, o.seats"
    );
    let mut lines = c.query_map(&sql, params![cart], |r| {
        let session = session_from_row(r)?;
        // The offer's and the line's columns follow the session's.
        let k = SESSION_COLUMN_COUNT;
        let seats: i64 = r.get(k + 2)?;
        let percent: i64 = r.get(k + 4)?;
        Ok(CartLine {
            unit_price_cents: offer_price(session.base_price_cents, seats, percent)
                .map_or(i64::MAX, |p| p.0),
            session,
            offer_id: r.get(k)?,
            offer_name: r.get(k + 1)?,
            offer_seats: seats,
            offer_active: r.get(k + 3)?,
            quantity: r.get(k + 5)?,
            listing: None,
        })
    })?;
    lines.extend(cart_listings_of(c, cart, shop)?);
    Ok(lines)
}

/// A cart's resale listings, in ascending id order: the order checkout
/// holds them in, so that two checkouts running side by side on PostgreSQL
/// lock listings' rows in one order (after sessions' rows) and never
/// deadlock.
fn cart_listings_of(c: &Conn<'_>, cart: i64, shop: &ShopPolicy) -> StoreResult<Vec<CartLine>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, t.offer_id, ol.offer_name, t.admits, x.face_cents, x.id,
                x.status = 'listed' AND x.seller <> coalesce(ct.user_id, 0)
         FROM {SESSION_FROM}
         JOIN resale_listings x ON x.session_id = s.id
         JOIN tickets t ON t.id = x.ticket
         JOIN order_lines ol ON ol.id = t.order_line_id
         JOIN cart_listings cl ON cl.listing = x.id
         JOIN carts ct ON ct.id = cl.cart_id
         WHERE cl.cart_id = ?1 ORDER BY x.id"
    );
    c.query_map(&sql, params![cart], |r| {
        let session = session_from_row(r)?;
        let k = SESSION_COLUMN_COUNT;
        let face: i64 = r.get(k + 3)?;
        Ok(CartLine {
            session,
            offer_id: r.get(k)?,
            offer_name: r.get(k + 1)?,
            offer_seats: r.get(k + 2)?,
            // A resale ticket is sold whatever became of its offer.
            offer_active: true,
            quantity: 1,
            unit_price_cents: super::resale::buyer_price(face, shop),
            listing: Some(CartListing {
                id: r.get(k + 4)?,
                face_cents: face,
                on_sale: r.get(k + 5)?,
            }),
        })
    })
}

/// Adds `quantity` tickets (capped per line) of an offer for a session.
fn cart_add(
    c: &Conn<'_>,
    owner: CartOwner,
    session_id: i64,
    offer_id: i64,
    quantity: i64,
) -> StoreResult<Result<(), CartRefusal>> {
    let t = now();
    let tx = c.begin(Begin::Immediate)?;
    let session: Option<(SessionStatus, i64, i64, i64)> = tx
        .query_row(
            "SELECT status, starts_at, capacity, seats_taken FROM game_sessions WHERE id = ?1",
            params![session_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((status, starts_at, capacity, taken)) = session else {
        return Ok(Err(CartRefusal::SessionClosed));
    };
    if status != SessionStatus::Scheduled || starts_at <= t {
        return Ok(Err(CartRefusal::SessionClosed));
    }
    let offer: Option<(i64, bool)> = tx
        .query_row(
            "SELECT seats, active FROM offers WHERE id = ?1",
            params![offer_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((seats, true)) = offer else {
        return Ok(Err(CartRefusal::OfferInactive));
    };
    if capacity - taken < seats {
        return Ok(Err(CartRefusal::SoldOut));
    }
    let cart = cart_id_or_create(&tx, owner, t)?;
    let lines: i64 = tx.query_row(
        "SELECT count(*) FROM cart_lines WHERE cart_id = ?1 AND NOT (session_id = ?2 AND offer_id = ?3)",
        params![cart, session_id, offer_id],
        |r| r.get(0),
    )?;
    if lines >= MAX_CART_LINES {
        return Ok(Err(CartRefusal::CartFull));
    }
    let q = quantity.clamp(1, MAX_LINE_QUANTITY);
    // The smaller of the sum and the cap (SQLite's two-argument `min` is
    // PostgreSQL's `LEAST`: a CASE reads the same on both).
    tx.execute(
        "INSERT INTO cart_lines (cart_id, session_id, offer_id, quantity, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (cart_id, session_id, offer_id)
         DO UPDATE SET quantity = CASE WHEN cart_lines.quantity + excluded.quantity < ?6
             THEN cart_lines.quantity + excluded.quantity ELSE ?6 END",
        params![cart, session_id, offer_id, q, t, MAX_LINE_QUANTITY],
    )?;
    tx.execute(
        "UPDATE carts SET updated_at = ?2 WHERE id = ?1",
        params![cart, t],
    )?;
    tx.commit()?;
    Ok(Ok(()))
}

/// Moves an anonymous cart's lines into a buyer's cart and deletes the
/// anonymous cart. The caps of [`cart_add`] hold here too: quantities add
/// up to [`MAX_LINE_QUANTITY`] at most, and lines new to the buyer's cart
/// are kept, oldest first, only while it has fewer than [`MAX_CART_LINES`]
/// (otherwise logging in with a visitor's cart would grow a cart past them).
/// Returns how many lines were kept.
fn cart_merge(c: &Conn<'_>, anon: [u8; 32], user_id: i64) -> StoreResult<usize> {
    let t = now();
    let tx = c.begin(Begin::Immediate)?;
    let Some(from) = cart_id(&tx, CartOwner::Anonymous(anon))? else {
        return Ok(0);
    };
    let to = cart_id_or_create(&tx, CartOwner::User(user_id), t)?;
    let incoming: Vec<(i64, i64, i64, i64)> = tx.query_map(
        "SELECT session_id, offer_id, quantity, added_at FROM cart_lines
         WHERE cart_id = ?1 ORDER BY added_at, session_id, offer_id",
        params![from],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let mut lines: i64 = tx.query_row(
        "SELECT count(*) FROM cart_lines WHERE cart_id = ?1",
        params![to],
        |r| r.get(0),
    )?;
    let mut kept = 0;
    for (session_id, offer_id, quantity, added_at) in incoming {
        let q = quantity.clamp(1, MAX_LINE_QUANTITY);
        let merged = tx.execute(
            "UPDATE cart_lines SET quantity = CASE WHEN quantity + ?4 < ?5 THEN quantity + ?4 ELSE ?5 END
             WHERE cart_id = ?1 AND session_id = ?2 AND offer_id = ?3",
            params![to, session_id, offer_id, q, MAX_LINE_QUANTITY],
        )?;
        if merged == 0 {
            if lines >= MAX_CART_LINES {
                continue;
            }
            tx.execute(
                "INSERT INTO cart_lines (cart_id, session_id, offer_id, quantity, added_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![to, session_id, offer_id, q, added_at],
            )?;
            lines += 1;
        }
        kept += 1;
    }
    tx.execute("DELETE FROM carts WHERE id = ?1", params![from])?;
    tx.commit()?;
    Ok(kept)
}

// ----- holds

/// Returns the seats of every pending order whose hold has expired and marks
/// it expired. Runs inside the caller's transaction.
fn expire_holds_in(tx: &Conn<'_>, t: i64) -> StoreResult<usize> {
    let ids: Vec<i64> = tx.query_map(
        "SELECT id FROM orders WHERE status = 'pending' AND hold_expires_at <= ?1 LIMIT 1000",
        params![t],
        |r| r.get(0),
    )?;
    for id in &ids {
        expire_order(tx, *id)?;
    }
    Ok(ids.len())
}

/// The resale listings an order buys, in line order.
fn listings_of(tx: &Conn<'_>, order_id: i64) -> StoreResult<Vec<i64>> {
    tx.query_map(
        "SELECT resale_listing FROM order_lines WHERE order_id = ?1 AND resale_listing IS NOT NULL
         ORDER BY id",
        params![order_id],
        |r| r.get(0),
    )
}

/// Inserts a pending order of `user_id` for `total` cents, holding until
/// `hold_until`, under a new number; returns (number, row id).
pub(super) fn insert_order(
    tx: &Conn<'_>,
    user_id: i64,
    total: i64,
    t: i64,
    hold_until: i64,
) -> StoreResult<(String, i64)> {
    loop {
        let n = new_order_number()?;
        // A number drawn twice is drawn again. The savepoint keeps the
        // transaction usable after the failed insert (PostgreSQL aborts a
        // transaction at its first error).
        let sp = tx.savepoint()?;
        let inserted = sp.query_row(
            "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at)
             VALUES (?1, ?2, ?6, ?3, ?4, ?5) RETURNING id",
            params![n, user_id, total, t, hold_until, OrderStatus::Pending],
            |r| r.get::<i64>(0),
        );
        match inserted {
            Ok(id) => {
                sp.release()?;
                return Ok((n, id));
            }
            Err(e) if e.is_unique_violation() => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Marks a pending order expired and gives its held seats back, inside the
/// caller's transaction (the sweep and a late payment attempt alike). Its
/// resale lines took no seat: their listings go back on sale instead.
///
/// Only a still pending order is expired, and its seats given back once:
/// the status changes first, by a guarded `UPDATE` that also waits for any
/// payment holding the order's row (PostgreSQL, [`Begin::Shop`]).
fn expire_order(tx: &Conn<'_>, order_id: i64) -> StoreResult<()> {
    let changed = tx.execute(
        "UPDATE orders SET status = ?2 WHERE id = ?1 AND status = ?3",
        params![order_id, OrderStatus::Expired, OrderStatus::Pending],
    )?;
    if changed == 0 {
        return Ok(());
    }
    catalogue::release_seats(tx, order_id, catalogue::Lines::Primary)?;
    super::resale::release(tx, order_id)?;
    Ok(())
}

/// How many unpaid, unexpired orders the buyer has, and the seats they hold.
fn held_by(tx: &Conn<'_>, user_id: i64, t: i64) -> StoreResult<(i64, i64)> {
    tx.query_row(
        "SELECT count(DISTINCT o.id), coalesce(sum(l.seats * l.quantity), 0)
         FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id
         WHERE o.user_id = ?1 AND o.status = 'pending' AND o.hold_expires_at > ?2",
        params![user_id, t],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

fn checkout(c: &Conn<'_>, user_id: i64, shop: ShopPolicy) -> StoreResult<CheckoutOutcome> {
    let hold_secs = shop.hold_secs;
    let t = now();
    // Seats of expired holds go back on sale before anyone is told "sold
    // out". The sweep frees other buyers' orders, across sessions, so it is
    // a generic writer (exclusive lock), in a transaction of its own, and
    // only when there is something to sweep: checkouts then run side by
    // side (Begin::Shop) holding no lock but their buyer's and their seats'.
    let expired: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM orders WHERE status = 'pending' AND hold_expires_at <= ?1)",
        params![t],
        |r| r.get(0),
    )?;
    if expired {
        let sweep = c.begin(Begin::Immediate)?;
        expire_holds_in(&sweep, t)?;
        sweep.commit()?;
    }
    let tx = c.begin(Begin::Shop)?;
    // The buyer's limits below are read and then relied on: one checkout
    // of this buyer at a time (taken first: one lock order).
    tx.lock_buyer(user_id)?;
    let Some(cart) = cart_id(&tx, CartOwner::User(user_id))? else {
        return Ok(CheckoutOutcome::Empty);
    };
    let lines = cart_lines_of(&tx, cart, &shop)?;
    if lines.is_empty() {
        return Ok(CheckoutOutcome::Empty);
    }
    let mut problems = Vec::new();
    for l in &lines {
        let kind = if !l.session.on_sale(t) {
            Some(ProblemKind::SessionClosed)
        } else if !l.offer_active {
            Some(ProblemKind::OfferInactive)
        } else if l.listing.is_some_and(|x| !x.on_sale) {
            Some(ProblemKind::ResaleGone)
        } else {
            None
        };
        if let Some(kind) = kind {
            problems.push(LineProblem {
                title: l.session.title.clone(),
                offer: l.offer_name.clone(),
                kind,
            });
        }
    }
    if problems.is_empty() {
        // One buyer may not hold a session's seats by checking out again
        // every hold period: cap the unpaid orders and the seats they hold.
        // Checked under the buyer's lock (and, on SQLite, in an IMMEDIATE
        // transaction), so two checkouts at once cannot both pass.
        let (pending, held) = held_by(&tx, user_id, t)?;
        if pending >= shop.max_pending_orders {
            return Ok(CheckoutOutcome::TooManyPending {
                limit: shop.max_pending_orders,
            });
        }
        let wanted = lines
            .iter()
            .fold(0i64, |acc, l| acc.saturating_add(l.seats_needed()));
        if held.saturating_add(wanted) > shop.max_held_seats {
            return Ok(CheckoutOutcome::TooManySeats {
                limit: shop.max_held_seats,
            });
        }
        // Tickets per buyer per session, primary and resale together.
        for l in &lines {
            let wanted: i64 = lines
                .iter()
                .filter(|o| o.session.id == l.session.id)
                .map(|o| o.quantity)
                .sum();
            let have = super::resale::tickets_for_session(&tx, user_id, l.session.id, t)?;
            if have.saturating_add(wanted) > shop.max_tickets_per_session {
                problems.push(LineProblem {
                    title: l.session.title.clone(),
                    offer: l.offer_name.clone(),
                    kind: ProblemKind::SessionLimit {
                        limit: shop.max_tickets_per_session,
                    },
                });
            }
        }
        if !problems.is_empty() {
            return Ok(CheckoutOutcome::Refused(problems));
        }
        // Several lines may share a session: take each session's seats once,
        // summed. A resale line takes none: its ticket has its seat.
        let mut per_session: Vec<(i64, i64)> = Vec::new();
        for l in lines.iter().filter(|l| l.listing.is_none()) {
            match per_session.iter_mut().find(|(s, _)| *s == l.session.id) {
                Some((_, n)) => *n += l.seats_needed(),
                None => per_session.push((l.session.id, l.seats_needed())),
            }
        }
        // Sessions' rows are locked in ascending id order by every shop
        // transaction (catalogue::release_seats too): no deadlock.
        per_session.sort_unstable();
        let short = catalogue::take_seats(&tx, &per_session)?;
        for i in short {
            let (sid, _) = per_session[i];
            for l in lines
                .iter()
                .filter(|l| l.session.id == sid && l.listing.is_none())
            {
                problems.push(LineProblem {
                    title: l.session.title.clone(),
                    offer: l.offer_name.clone(),
                    kind: ProblemKind::SoldOut {
                        left: l.session.seats_left(),
                    },
                });
            }
        }
    }
    if !problems.is_empty() {
        // Dropping the transaction rolls back the seats taken so far.
        return Ok(CheckoutOutcome::Refused(problems));
    }
    let total = lines
        .iter()
        .try_fold(0i64, |acc, l| acc.checked_add(l.total_cents()))
        .ok_or_else(|| StoreError::Task("order total overflows".into()))?;
    let (number, order_id) = insert_order(&tx, user_id, total, t, t + hold_secs)?;
    // Primary lines first, then resale lines (as `cart_lines_of` returns
    // them): the tickets' derivation indexes follow the lines' order, and
    // the resale tickets are re-issued into the order after the others.
    for l in &lines {
        tx.execute(
            "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity,
                 unit_price_cents, resale_listing)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                order_id,
                l.session.id,
                l.offer_id,
                l.offer_name,
                l.offer_seats,
                l.quantity,
                l.unit_price_cents,
                l.listing.map(|x| x.id)
            ],
        )?;
        let Some(listing) = l.listing else { continue };
        // Of two buyers racing for one listing, one UPDATE wins; the other
        // is told it is gone, and nothing of its order is kept.
        if !super::resale::hold(&tx, &listing, order_id, user_id, &shop)? {
            problems.push(LineProblem {
                title: l.session.title.clone(),
                offer: l.offer_name.clone(),
                kind: ProblemKind::ResaleGone,
            });
        }
    }
    if !problems.is_empty() {
        return Ok(CheckoutOutcome::Refused(problems));
    }
    tx.execute("DELETE FROM cart_lines WHERE cart_id = ?1", params![cart])?;
    tx.execute(
        "DELETE FROM cart_listings WHERE cart_id = ?1",
        params![cart],
    )?;
    tx.commit()?;
    Ok(CheckoutOutcome::Created(number))
}

// ----- orders

fn order_from_row(r: &Row<'_>) -> StoreResult<Order> {
    Ok(Order {
        id: r.get(0)?,
        number: r.get(1)?,
        status: r.get(2)?,
        total_cents: r.get(3)?,
        created_at: r.get(4)?,
        hold_expires_at: r.get(5)?,
        paid_at: r.get(6)?,
        lines: Vec::new(),
    })
}

const ORDER_COLUMNS: &str = "id, number, status, total_cents, created_at, hold_expires_at, paid_at";

fn order_lines(c: &Conn<'_>, order_id: i64) -> StoreResult<Vec<OrderLine>> {
    c.query_map(
        "SELECT ol.session_id, s.title, v.name, s.starts_at, ol.offer_name, ol.seats, ol.quantity, ol.unit_price_cents
         FROM order_lines ol JOIN game_sessions s ON s.id = ol.session_id JOIN venues v ON v.id = s.venue_id
         WHERE ol.order_id = ?1 ORDER BY ol.id",
        params![order_id],
        |r| {
            Ok(OrderLine {
                session_id: r.get(0)?,
                title: r.get(1)?,
                venue: r.get(2)?,
                starts_at: r.get(3)?,
                offer_name: r.get(4)?,
                seats: r.get(5)?,
                quantity: r.get(6)?,
                unit_price_cents: r.get(7)?,
            })
        },
    )
}

fn order_of(c: &Conn<'_>, number: &str, user_id: i64) -> StoreResult<Option<Order>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE number = ?1 AND user_id = ?2");
    let Some(mut o) = c
        .query_row(&sql, params![number, user_id], order_from_row)
        .optional()?
    else {
        return Ok(None);
    };
    o.lines = order_lines(c, o.id)?;
    Ok(Some(o))
}

// ----- payments

fn last_decline(c: &Conn<'_>, order_id: i64) -> StoreResult<Option<String>> {
    Ok(c.query_row(
        "SELECT decline_reason FROM payments WHERE order_id = ?1 AND status = 'declined'
             ORDER BY id DESC LIMIT 1",
        params![order_id],
        |r| r.get::<Option<String>>(0),
    )
    .optional()?
    .flatten())
}

fn payment_result(status: &str, reason: Option<String>) -> PaymentResult {
    match status {
        "succeeded" => PaymentResult::Paid,
        "declined" => PaymentResult::Declined(reason.unwrap_or_default()),
        "refunded" => PaymentResult::Refunded,
        "processing" => PaymentResult::Processing,
        _ => PaymentResult::Failed,
    }
}

/// Records a payment attempt, inside the caller's transaction (see
/// [`PaymentStart`]).
fn begin_payment_in(
    tx: &Conn<'_>,
    number: &str,
    user_id: i64,
    key: &str,
    brand: &str,
    last4: &str,
    t: i64,
) -> StoreResult<PaymentStart> {
    let order: Option<(i64, OrderStatus, i64, i64)> = tx
        .query_row(
            &format!(
                "SELECT id, status, total_cents, hold_expires_at FROM orders WHERE number = ?1 AND user_id = ?2{}",
                tx.for_update()
            ),
            params![number, user_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((order_id, status, total, hold_until)) = order else {
        return Ok(PaymentStart::NotFound);
    };
    let previous: Option<(i64, String, Option<String>)> = tx
        .query_row(
            "SELECT order_id, status, decline_reason FROM payments WHERE idempotency_key = ?1",
            params![key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((oid, st, reason)) = previous {
        if oid != order_id {
            return Ok(PaymentStart::NotFound);
        }
        return Ok(PaymentStart::Replay(payment_result(&st, reason)));
    }
    match status {
        OrderStatus::Paid | OrderStatus::Refunded => return Ok(PaymentStart::AlreadyPaid),
        OrderStatus::Expired => return Ok(PaymentStart::Expired),
        OrderStatus::Pending => {}
    }
    if hold_until <= t {
        expire_order(tx, order_id)?;
        return Ok(PaymentStart::Expired);
    }
    // The savepoint keeps the transaction usable after a refused insert
    // (PostgreSQL aborts a transaction at its first error).
    let sp = tx.savepoint()?;
    let inserted = sp.query_row(
        "INSERT INTO payments (order_id, idempotency_key, status, card_brand, card_last4, amount_cents, created_at, updated_at)
         VALUES (?1, ?2, 'processing', ?3, ?4, ?5, ?6, ?6) RETURNING id",
        params![order_id, key, brand, last4, total, t],
        |r| r.get::<i64>(0),
    );
    let payment_id = match inserted {
        Ok(id) => {
            sp.release()?;
            id
        }
        // The partial unique index: another attempt is in flight (or succeeded).
        Err(e) if e.is_unique_violation() => return Ok(PaymentStart::InProgress),
        Err(e) => return Err(e),
    };
    Ok(PaymentStart::Charge {
        payment_id,
        amount_cents: total,
    })
}

/// How a payment's transaction begins, given whether its order buys a
/// resale ticket (`None`: no such order). A primary order's payment touches
/// only its own order, payments, tickets and mail: a shop write
/// ([`Begin::Shop`]) that locks the order's row. A resale moves a ticket
/// and signs a revocation (a list with one version counter for everyone),
/// and an unknown order is decided inside: both keep the exclusive lock.
fn payment_lock(resale: Option<bool>) -> Begin {
    match resale {
        Some(false) => Begin::Shop,
        Some(true) | None => Begin::Immediate,
    }
}

/// Starts a payment attempt and, if the gateway answers at once, charges
/// and records the result in the same transaction: one durable commit for
/// the attempt, the charge, the tickets and their mail.
#[allow(clippy::too_many_arguments)]
fn begin_payment(
    c: &Conn<'_>,
    number: &str,
    user_id: i64,
    key: &str,
    (brand, last4): (&str, &str),
    charge_now: ChargeNow,
    issuing: (Option<SignedOrder>, &dyn TicketIssuer),
    lang: &'static str,
) -> StoreResult<PaymentStart> {
    let t = now();
    let resale: Option<bool> = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.resale_listing IS NOT NULL)
             FROM orders o WHERE o.number = ?1 AND o.user_id = ?2",
            params![number, user_id],
            |r| r.get(0),
        )
        .optional()?;
    let tx = c.begin(payment_lock(resale))?;
    let start = begin_payment_in(&tx, number, user_id, key, brand, last4, t)?;
    let PaymentStart::Charge {
        payment_id,
        amount_cents,
    } = start
    else {
        tx.commit()?;
        return Ok(start);
    };
    // The write lock is held while the gateway decides: only a gateway that
    // answers without waiting on anything does so here. Another submit of
    // the same order waits for the lock, then finds this attempt.
    let Some(approved) = charge_now(amount_cents) else {
        // The attempt is on disk before the card is charged elsewhere.
        tx.commit()?;
        return Ok(start);
    };
    let result = finish_or_fail(&tx, payment_id, approved, issuing, t)?;
    if let Ok(PaymentResult::Paid) = result {
        outbox::enqueue_order_tickets(&tx, payment_id, lang, t)?;
    }
    tx.commit()?;
    result.map(PaymentStart::Charged)
}

fn set_payment(
    c: &Conn<'_>,
    payment_id: i64,
    status: &str,
    reason: Option<&str>,
    transaction_id: Option<&str>,
) -> StoreResult<()> {
    c.execute(
        "UPDATE payments SET status = ?2, decline_reason = ?3, transaction_id = coalesce(?4, transaction_id),
             updated_at = ?5 WHERE id = ?1",
        params![payment_id, status, reason, transaction_id, now()],
    )?;
    Ok(())
}

/// Marks the order paid with a new purchase key and issues its tickets
/// ([`tickets::issue_for_order`]: those of `signed` when they were signed
/// from the order as it is), inside `tx`.
fn pay_and_issue(
    tx: &Conn<'_>,
    order_id: i64,
    user_id: i64,
    signed: Option<SignedOrder>,
    issuer: &dyn TicketIssuer,
    t: i64,
) -> StoreResult<usize> {
    let (purchase_key, n) = tickets::issue_for_order(tx, order_id, user_id, signed, issuer, t)?;
    // Resale lines: each listed ticket moves into this order, derived from
    // its purchase key after the primary tickets.
    let moved = super::resale::complete(tx, order_id, user_id, &purchase_key, issuer, t)?;
    tx.execute(
        "UPDATE orders SET status = ?4, paid_at = ?2, purchase_key = ?3 WHERE id = ?1",
        params![order_id, t, &purchase_key.as_bytes()[..], OrderStatus::Paid],
    )?;
    Ok(n + moved)
}

/// Records the gateway's answer inside the caller's transaction; on
/// approval, marks the order paid and issues its tickets.
fn finish_payment_in(
    tx: &Conn<'_>,
    payment_id: i64,
    approved: Result<String, String>,
    (signed, issuer): (Option<SignedOrder>, &dyn TicketIssuer),
    t: i64,
) -> StoreResult<PaymentResult> {
    // The order's row is locked first (PostgreSQL, Begin::Shop): its status
    // and its hold stay as read until the commit.
    let lock = match tx.dialect() {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE OF o",
    };
    let (order_id, user_id, status): (i64, i64, OrderStatus) = tx.query_row(
        &format!(
            "SELECT o.id, o.user_id, o.status FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = ?1{lock}"
        ),
        params![payment_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let transaction_id = match approved {
        Err(reason) => {
            set_payment(tx, payment_id, "declined", Some(&reason), None)?;
            return Ok(PaymentResult::Declined(reason));
        }
        Ok(id) => id,
    };
    if status == OrderStatus::Expired {
        // The hold ran out while the card was being charged: take the seats
        // and hold the listings again if they are all still there, else
        // refund (and take nothing).
        let per_session: Vec<(i64, i64)> = tx.query_map(
            "SELECT session_id, sum(seats * quantity) FROM order_lines
             WHERE order_id = ?1 AND resale_listing IS NULL
             GROUP BY session_id ORDER BY session_id",
            params![order_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.batch("SAVEPOINT retake_seats")?;
        let mut back = catalogue::take_seats(tx, &per_session)?.is_empty();
        for listing in listings_of(tx, order_id)? {
            back = back && super::resale::hold_again(tx, listing, order_id)?;
        }
        if !back {
            // Give back what was taken before the part that failed.
            tx.batch("ROLLBACK TO retake_seats; RELEASE retake_seats")?;
            set_payment(
                tx,
                payment_id,
                "refunded",
                Some("hold_expired"),
                Some(&transaction_id),
            )?;
            return Ok(PaymentResult::Refunded);
        }
        tx.batch("RELEASE retake_seats")?;
        tx.execute(
            "UPDATE orders SET status = ?2 WHERE id = ?1",
            params![order_id, OrderStatus::Pending],
        )?;
    } else if status != OrderStatus::Pending {
        // begin_payment allows one live attempt per order, so this is not reached.
        return Err(StoreError::Task(format!(
            "paying an order that is {status}"
        )));
    }
    pay_and_issue(tx, order_id, user_id, signed, issuer, t)?;
    set_payment(tx, payment_id, "succeeded", None, Some(&transaction_id))?;
    Ok(PaymentResult::Paid)
}

/// [`finish_payment_in`] inside a savepoint: if it fails, nothing of it is
/// kept (no paid order without tickets, no ticket without a paid order) and
/// the attempt is marked failed, which frees the order for another attempt;
/// the caller commits that and returns the inner error. The outer error
/// means the transaction itself is unusable: the caller must not commit.
fn finish_or_fail(
    tx: &Conn<'_>,
    payment_id: i64,
    approved: Result<String, String>,
    issuing: (Option<SignedOrder>, &dyn TicketIssuer),
    t: i64,
) -> StoreResult<StoreResult<PaymentResult>> {
    tx.batch("SAVEPOINT finish_payment")?;
    match finish_payment_in(tx, payment_id, approved, issuing, t) {
        Ok(r) => {
            tx.batch("RELEASE finish_payment")?;
            Ok(Ok(r))
        }
        Err(e) => {
            tx.batch("ROLLBACK TO finish_payment; RELEASE finish_payment")?;
            set_payment(tx, payment_id, "failed", Some("internal"), None)?;
            Ok(Err(e))
        }
    }
}

/// The order a payment is for, as its caller knows it.
enum PayingOrder {
    /// Order number and buyer, at the first attempt.
    Number(String, i64),
    /// The attempt, when the gateway answers later.
    Payment(i64),
}

fn finish_payment(
    c: &Conn<'_>,
    payment_id: i64,
    approved: Result<String, String>,
    issuing: (Option<SignedOrder>, &dyn TicketIssuer),
    lang: &'static str,
) -> StoreResult<PaymentResult> {
    let t = now();
    let resale: Option<bool> = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = p.order_id AND l.resale_listing IS NOT NULL)
             FROM payments p WHERE p.id = ?1",
            params![payment_id],
            |r| r.get(0),
        )
        .optional()?;
    let tx = c.begin(payment_lock(resale))?;
    let result = finish_or_fail(&tx, payment_id, approved, issuing, t)?;
    if let Ok(PaymentResult::Paid) = result {
        outbox::enqueue_order_tickets(&tx, payment_id, lang, t)?;
    }
    tx.commit()?;
    result
}

/// An order found by a search.
#[derive(Debug, Clone)]
pub struct OrderHit {
    /// Public order number.
    pub number: String,
    /// Status.
    pub status: OrderStatus,
    /// Total, cents.
    pub total_cents: i64,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Buyer's email.
    pub email: String,
    /// Buyer's full name.
    pub buyer: String,
}

/// One line of an order.
#[derive(Debug, Clone)]
pub struct LineRow {
    /// Session title.
    pub session: String,
    /// Offer name (as sold).
    pub offer: String,
    /// Quantity.
    pub quantity: i64,
    /// Unit price, cents.
    pub unit_price_cents: i64,
}

/// An order with everything the console shows about it.
#[derive(Debug, Clone)]
pub struct OrderDetail {
    /// The order.
    pub order: OrderHit,
    /// Paid, Unix seconds.
    pub paid_at: Option<i64>,
    /// Refunded, Unix seconds.
    pub refunded_at: Option<i64>,
    /// Lines.
    pub lines: Vec<LineRow>,
    /// Tickets.
    pub tickets: Vec<TicketRow>,
}

/// What a refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    /// No such order.
    NotFound,
    /// Only a paid order can be refunded.
    NotPaid,
    /// Refunded; that many tickets revoked.
    Refunded(usize),
    /// Refused: that many of its valid tickets now belong to someone else
    /// (transferred or resold). Refunding the order would revoke their
    /// holders' tickets and free seats they still occupy; its own tickets
    /// are revoked one by one instead.
    HandedOver(usize),
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

const HIT_SELECT: &str = "SELECT o.number, o.status, o.total_cents, o.created_at, u.email,
        u.first_name || ' ' || u.last_name
     FROM orders o JOIN users u ON u.id = o.user_id";

fn hit_from_row(r: &Row<'_>) -> StoreResult<OrderHit> {
    Ok(OrderHit {
        number: r.get(0)?,
        status: r.get(1)?,
        total_cents: r.get(2)?,
        created_at: r.get(3)?,
        email: r.get(4)?,
        buyer: r.get(5)?,
    })
}

/// Searches orders: an exact ticket code (hex) or order number, else a
/// prefix of the buyer's email, else part of the buyer's name or username.
/// Newest first, at most `limit`.
pub fn search_orders(c: &Conn<'_>, q: &str, limit: i64) -> StoreResult<Vec<OrderHit>> {
    let q = q.trim();
    if q.is_empty() {
        return c.query_map(
            &format!("{HIT_SELECT} ORDER BY o.id DESC LIMIT ?1"),
            params![limit],
            hit_from_row,
        );
    }
    if let Ok(id) = TicketId::from_hex(&q.to_ascii_lowercase()) {
        let hits = c.query_map(
            &format!(
                "{HIT_SELECT} WHERE o.id = (SELECT order_id FROM tickets WHERE ticket_id = ?1)"
            ),
            params![&id.0[..]],
            hit_from_row,
        )?;
        if !hits.is_empty() {
            return Ok(hits);
        }
    }
    // Order numbers are upper case; comparing exactly keeps the UNIQUE index in use.
    let hits = c.query_map(
        &format!("{HIT_SELECT} WHERE o.number IN (?1, ?2)"),
        params![q, q.to_ascii_uppercase()],
        hit_from_row,
    )?;
    if !hits.is_empty() {
        return Ok(hits);
    }
    // Case-insensitive: the patterns are lower case, and so is each side
    // they are matched against (LIKE ignores ASCII case on SQLite only).
    // The username's NOCASE collation is set aside: PostgreSQL cannot LIKE
    // under a nondeterministic collation, and lower() makes it moot.
    let escaped = like_escape(&q.to_lowercase());
    c.query_map(
        &format!(
            "{HIT_SELECT} WHERE o.user_id IN (
                 SELECT id FROM users WHERE lower(email) LIKE ?1 ESCAPE '\\'
                 UNION SELECT id FROM users
                 WHERE lower(first_name || ' ' || last_name) LIKE ?2 ESCAPE '\\'
                    OR lower(last_name || ' ' || first_name) LIKE ?2 ESCAPE '\\'
                    OR lower(username COLLATE \"binary\") LIKE ?2 ESCAPE '\\')
             ORDER BY o.id DESC LIMIT ?3"
        ),
        params![format!("{escaped}%"), format!("%{escaped}%"), limit],
        hit_from_row,
    )
}

fn order_detail(c: &Conn<'_>, number: &str) -> StoreResult<Option<OrderDetail>> {
    let head: Option<(i64, OrderHit, Option<i64>, Option<i64>)> = c
        .query_row(
            "SELECT o.id, o.number, o.status, o.total_cents, o.created_at, u.email,
                    u.first_name || ' ' || u.last_name, o.paid_at, o.refunded_at
             FROM orders o JOIN users u ON u.id = o.user_id WHERE o.number = ?1",
            params![number],
            |r| {
                Ok((
                    r.get(0)?,
                    OrderHit {
                        number: r.get(1)?,
                        status: r.get(2)?,
                        total_cents: r.get(3)?,
                        created_at: r.get(4)?,
                        email: r.get(5)?,
                        buyer: r.get(6)?,
                    },
                    r.get(7)?,
                    r.get(8)?,
                ))
            },
        )
        .optional()?;
    let Some((id, order, paid_at, refunded_at)) = head else {
        return Ok(None);
    };
    let lines = c.query_map(
        "SELECT s.title, ol.offer_name, ol.quantity, ol.unit_price_cents
         FROM order_lines ol JOIN game_sessions s ON s.id = ol.session_id
         WHERE ol.order_id = ?1 ORDER BY ol.id",
        params![id],
        |r| {
            Ok(LineRow {
                session: r.get(0)?,
                offer: r.get(1)?,
                quantity: r.get(2)?,
                unit_price_cents: r.get(3)?,
            })
        },
    )?;
    let tickets = tickets::rows_of_order(c, id)?;
    Ok(Some(OrderDetail {
        order,
        paid_at,
        refunded_at,
        lines,
        tickets,
    }))
}

impl Store {
    /// The lines of a cart, resale listings priced under `shop`'s fees.
    pub async fn cart(&self, owner: CartOwner, shop: ShopPolicy) -> StoreResult<Vec<CartLine>> {
        self.pool
            .read_sql(move |c| match cart_id(c, owner)? {
                Some(id) => cart_lines_of(c, id, &shop),
                None => Ok(Vec::new()),
            })
            .await
    }

    /// Adds tickets to a cart (creating it).
    pub async fn cart_add(
        &self,
        owner: CartOwner,
        session_id: i64,
        offer_id: i64,
        quantity: i64,
    ) -> StoreResult<Result<(), CartRefusal>> {
        self.pool
            .run_sql(move |c| {
                relaxed_write_sql(c, |c| cart_add(c, owner, session_id, offer_id, quantity))
            })
            .await
    }

    /// Sets a line's quantity; 0 removes the line.
    pub async fn cart_set(
        &self,
        owner: CartOwner,
        session_id: i64,
        offer_id: i64,
        quantity: i64,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                relaxed_write_sql(c, |c| {
                    let Some(cart) = cart_id(c, owner)? else {
                        return Ok(());
                    };
                    if quantity <= 0 {
                        c.execute(
                            "DELETE FROM cart_lines WHERE cart_id = ?1 AND session_id = ?2 AND offer_id = ?3",
                            params![cart, session_id, offer_id],
                        )?;
                    } else {
                        c.execute(
                            "UPDATE cart_lines SET quantity = ?4 WHERE cart_id = ?1 AND session_id = ?2 AND offer_id = ?3",
                            params![cart, session_id, offer_id, quantity.min(MAX_LINE_QUANTITY)],
                        )?;
                    }
                    c.execute(
                        "UPDATE carts SET updated_at = ?2 WHERE id = ?1",
                        params![cart, now()],
                    )?;
                    Ok(())
                })
            })
            .await
    }

    /// Moves a visitor's cart into a buyer's cart.
    pub async fn cart_merge(&self, anonymous: [u8; 32], user_id: i64) -> StoreResult<usize> {
        self.pool
            .run_sql(move |c| relaxed_write_sql(c, |c| cart_merge(c, anonymous, user_id)))
            .await
    }

    /// Puts listing `listing` in `user_id`'s cart, if it is still on sale,
    /// not theirs, and within their tickets per session: it is held (and
    /// may still be gone) at checkout, with the cart's other lines.
    pub async fn cart_add_listing(
        &self,
        user_id: i64,
        listing: i64,
        shop: ShopPolicy,
    ) -> StoreResult<BuyOutcome> {
        self.pool
            .run_sql(move |c| {
                relaxed_write_sql(c, |c| {
                    let t = now();
                    let tx = c.begin(Begin::Immediate)?;
                    // A hold that ran out puts its listing back on sale first.
                    expire_holds_in(&tx, t)?;
                    let found: Option<(i64, i64, i64)> = tx
                        .query_row(
                            "SELECT x.seller, x.session_id, s.starts_at
                             FROM resale_listings x JOIN game_sessions s ON s.id = x.session_id
                             WHERE x.id = ?1 AND x.status = 'listed'",
                            params![listing],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .optional()?;
                    let Some((seller, session, starts_at)) = found else {
                        return Ok(BuyOutcome::Gone);
                    };
                    if starts_at <= t {
                        return Ok(BuyOutcome::Gone);
                    }
                    if seller == user_id {
                        return Ok(BuyOutcome::Own);
                    }
                    let cart = cart_id_or_create(&tx, CartOwner::User(user_id), t)?;
                    let (lines, in_cart, same_session): (i64, i64, i64) = tx.query_row(
                        "SELECT (SELECT count(*) FROM cart_lines WHERE cart_id = ?1)
                              + (SELECT count(*) FROM cart_listings WHERE cart_id = ?1),
                                (SELECT count(*) FROM cart_listings WHERE cart_id = ?1 AND listing = ?2),
                                (SELECT coalesce(sum(cl.quantity), 0) FROM cart_lines cl
                                 WHERE cl.cart_id = ?1 AND cl.session_id = ?3)
                              + (SELECT count(*) FROM cart_listings cl JOIN resale_listings x ON x.id = cl.listing
                                 WHERE cl.cart_id = ?1 AND x.session_id = ?3)",
                        params![cart, listing, session],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )?;
                    if in_cart > 0 {
                        return Ok(BuyOutcome::Added);
                    }
                    // The limit counts what the buyer has, is paying for,
                    // and has in the cart for the session (checked again at
                    // checkout, where it holds).
                    let have = super::resale::tickets_for_session(&tx, user_id, session, t)?;
                    if have + same_session + 1 > shop.max_tickets_per_session {
                        return Ok(BuyOutcome::Limit(shop.max_tickets_per_session));
                    }
                    if lines >= MAX_CART_LINES {
                        return Ok(BuyOutcome::CartFull);
                    }
                    tx.execute(
                        "INSERT INTO cart_listings (cart_id, listing, added_at) VALUES (?1, ?2, ?3)",
                        params![cart, listing, t],
                    )?;
                    tx.execute(
                        "UPDATE carts SET updated_at = ?2 WHERE id = ?1",
                        params![cart, t],
                    )?;
                    tx.commit()?;
                    Ok(BuyOutcome::Added)
                })
            })
            .await
    }

    /// Takes listing `listing` out of `owner`'s cart.
    pub async fn cart_remove_listing(&self, owner: CartOwner, listing: i64) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                relaxed_write_sql(c, |c| {
                    let Some(cart) = cart_id(c, owner)? else {
                        return Ok(());
                    };
                    c.execute(
                        "DELETE FROM cart_listings WHERE cart_id = ?1 AND listing = ?2",
                        params![cart, listing],
                    )?;
                    Ok(())
                })
            })
            .await
    }

    /// Creates a pending order from the buyer's cart and holds its seats for
    /// the shop's hold time, all in one IMMEDIATE transaction, unless the
    /// buyer would pass the shop's caps on unpaid orders and held seats.
    /// Committed without an fsync ([`relaxed_write_sql`]): a power cut can only
    /// lose the whole pending order with its hold and seats, never a paid one.
    pub async fn checkout(&self, user_id: i64, shop: ShopPolicy) -> StoreResult<CheckoutOutcome> {
        self.pool
            .run_sql(move |c| relaxed_write_sql(c, |c| checkout(c, user_id, shop)))
            .await
    }

    /// Expires unpaid holds and returns their seats; the number of orders expired.
    /// Also drops anonymous carts untouched for 30 days.
    pub async fn expire_holds(&self) -> StoreResult<usize> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let n = expire_holds_in(&tx, t)?;
                tx.execute(
                    "DELETE FROM carts WHERE user_id IS NULL AND updated_at < ?1",
                    params![t - 30 * 86_400],
                )?;
                tx.commit()?;
                Ok(n)
            })
            .await
    }

    /// A buyer's order by number; `None` if it is not theirs.
    pub async fn order_of(&self, number: String, user_id: i64) -> StoreResult<Option<Order>> {
        self.pool
            .read_sql(move |c| order_of(c, &number, user_id))
            .await
    }

    /// A buyer's orders, newest first.
    pub async fn orders_of(&self, user_id: i64) -> StoreResult<Vec<Order>> {
        self.pool
            .read_blocking_sql(move |c| {
                let sql = format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 200"
                );
                let mut orders: Vec<Order> = c.query_map(&sql, params![user_id], order_from_row)?;
                for o in &mut orders {
                    o.lines = order_lines(c, o.id)?;
                }
                Ok(orders)
            })
            .await
    }

    /// A buyer's order by number with the public ids of its valid tickets
    /// (for the order page), in one round trip; `None` if it is not theirs.
    pub async fn order_with_tickets(
        &self,
        number: String,
        user_id: i64,
    ) -> StoreResult<Option<(Order, Vec<String>)>> {
        self.pool
            .read_sql(move |c| {
                let Some(o) = order_of(c, &number, user_id)? else {
                    return Ok(None);
                };
                let ids: Vec<Vec<u8>> = c.query_map(
                    // Tickets handed to another account stay under this
                    // order but are no longer the buyer's.
                    "SELECT ticket_id FROM tickets WHERE order_id = ?1 AND user_id = ?2 AND status = 'valid' ORDER BY idx",
                    params![o.id, user_id],
                    |r| r.get(0),
                )?;
                Ok(Some((o, ids.into_iter().map(hex::encode).collect())))
            })
            .await
    }

    /// Names the tickets of one of a buyer's unpaid orders will carry:
    /// `(derivation index, name)`, the others the buyer's name. Replaces
    /// any names given before. False if the order is not theirs, not
    /// pending, or an index is past its tickets.
    pub async fn set_order_holders(
        &self,
        number: String,
        user_id: i64,
        names: Vec<(u32, String)>,
    ) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| {
                let tx = c.begin(Begin::Immediate)?;
                let order: Option<(i64, OrderStatus)> = tx
                    .query_row(
                        "SELECT id, status FROM orders WHERE number = ?1 AND user_id = ?2",
                        params![number, user_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((order_id, OrderStatus::Pending)) = order else {
                    return Ok(false);
                };
                let count: i64 = tx.query_row(
                    "SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE order_id = ?1",
                    params![order_id],
                    |r| r.get(0),
                )?;
                if names.iter().any(|(i, _)| i64::from(*i) >= count) {
                    return Ok(false);
                }
                tx.execute(
                    "DELETE FROM order_holders WHERE order_id = ?1",
                    params![order_id],
                )?;
                for (idx, name) in &names {
                    tx.execute(
                        "INSERT INTO order_holders (order_id, idx, name) VALUES (?1, ?2, ?3)",
                        params![order_id, idx, name],
                    )?;
                }
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    /// The names given to an order's tickets, one per ticket in derivation
    /// order (empty: the buyer's); `None` if the order is not theirs.
    pub async fn order_holders(
        &self,
        number: String,
        user_id: i64,
    ) -> StoreResult<Option<Vec<String>>> {
        self.pool
            .read_sql(move |c| {
                let Some(o) = order_of(c, &number, user_id)? else {
                    return Ok(None);
                };
                let count: i64 = c.query_row(
                    "SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE order_id = ?1",
                    params![o.id],
                    |r| r.get(0),
                )?;
                let given: Vec<(i64, String)> = c.query_map(
                    "SELECT idx, name FROM order_holders WHERE order_id = ?1",
                    params![o.id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let mut names = vec![String::new(); usize::try_from(count).unwrap_or(0).min(1_000)];
                for (i, n) in given {
                    if let Some(slot) = usize::try_from(i).ok().and_then(|i| names.get_mut(i)) {
                        *slot = n;
                    }
                }
                Ok(Some(names))
            })
            .await
    }

    /// A buyer's order by number with the decline reason of its latest
    /// declined attempt (for the payment page), in one round trip; `None` if
    /// it is not theirs.
    pub async fn order_with_last_decline(
        &self,
        number: String,
        user_id: i64,
    ) -> StoreResult<Option<(Order, Option<String>)>> {
        self.pool
            .read_sql(move |c| {
                let Some(o) = order_of(c, &number, user_id)? else {
                    return Ok(None);
                };
                let decline = last_decline(c, o.id)?;
                Ok(Some((o, decline)))
            })
            .await
    }

    /// Starts a payment attempt (see [`PaymentStart`]) and, if `charge_now`
    /// answers, records its result in the same durable transaction: on
    /// approval, the order paid with a new purchase key and its tickets,
    /// and its confirmation mail in the outbox, in language `lang` (a code:
    /// `fr`, `en`).
    #[allow(clippy::too_many_arguments)]
    pub async fn begin_payment(
        &self,
        number: String,
        user_id: i64,
        idempotency_key: String,
        brand: &'static str,
        last4: String,
        charge_now: ChargeNow,
        issuer: Arc<dyn TicketIssuer>,
        lang: &'static str,
    ) -> StoreResult<PaymentStart> {
        let signed = self
            .sign_ahead(PayingOrder::Number(number.clone(), user_id), issuer.clone())
            .await?;
        // Durable: the attempt must be on disk before a card is charged
        // elsewhere, and a paid order with its tickets (and its mail, in
        // the outbox) before "paid" is shown.
        self.pool
            .run_durable_sql(move |c| {
                begin_payment(
                    c,
                    &number,
                    user_id,
                    &idempotency_key,
                    (brand, &last4),
                    charge_now,
                    (signed, &*issuer),
                    lang,
                )
            })
            .await
    }

    /// Signs ahead the tickets of the order being paid, outside the write
    /// lock: signing is the longest part of a payment's transaction, which
    /// then only checks that the order is still as signed
    /// ([`tickets::issue_for_order`]). `None` when there is no such pending
    /// order; the transaction decides then.
    async fn sign_ahead(
        &self,
        order: PayingOrder,
        issuer: Arc<dyn TicketIssuer>,
    ) -> StoreResult<Option<SignedOrder>> {
        let plan = self
            .pool
            .read_sql(move |c| {
                let found: Option<(i64, i64)> = match &order {
                    PayingOrder::Number(number, user_id) => c.query_row(
                        "SELECT id, user_id FROM orders WHERE number = ?1 AND user_id = ?2 AND status = ?3",
                        params![number, *user_id, OrderStatus::Pending],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    ),
                    PayingOrder::Payment(payment_id) => c.query_row(
                        "SELECT o.id, o.user_id FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.id = ?1",
                        params![*payment_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    ),
                }
                .optional()?;
                found
                    .map(|(order_id, user_id)| tickets::plan_for_order(c, order_id, user_id))
                    .transpose()
            })
            .await?;
        let Some(plan) = plan else { return Ok(None) };
        // Signing is CPU work: off the async workers.
        tokio::task::spawn_blocking(move || tickets::sign_order(plan, &*issuer))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
            .map(Some)
    }

    /// Records the gateway's answer; on approval, in the same transaction,
    /// marks the order paid with a new purchase key, issues its tickets
    /// and enqueues its confirmation mail (in language `lang`). `approved`
    /// is the transaction id, or the decline reason code.
    pub async fn finish_payment(
        &self,
        payment_id: i64,
        approved: Result<String, String>,
        issuer: Arc<dyn TicketIssuer>,
        lang: &'static str,
    ) -> StoreResult<PaymentResult> {
        // A declined payment issues nothing: nothing to sign ahead.
        let signed = match approved {
            Ok(_) => {
                self.sign_ahead(PayingOrder::Payment(payment_id), issuer.clone())
                    .await?
            }
            Err(_) => None,
        };
        self.pool
            .run_durable_sql(move |c| {
                let r = finish_payment(c, payment_id, approved, (signed, &*issuer), lang);
                if r.is_err() {
                    // Nothing of the failed payment was kept; free the order
                    // for another attempt (done already unless the
                    // transaction itself failed; setting it again is harmless).
                    set_payment(c, payment_id, "failed", Some("internal"), None)?;
                }
                r
            })
            .await
    }

    /// Searches orders (see [`search_orders`]).
    pub async fn admin_search_orders(&self, q: String, limit: i64) -> StoreResult<Vec<OrderHit>> {
        self.pool
            .read_blocking_sql(move |c| search_orders(c, &q, limit))
            .await
    }

    /// An order by number, with its lines and tickets.
    pub async fn admin_order(&self, number: String) -> StoreResult<Option<OrderDetail>> {
        self.pool
            .read_blocking_sql(move |c| order_detail(c, &number))
            .await
    }

    /// Refunds a paid order: marks it (and its payment) refunded, gives its
    /// seats back and revokes its tickets, in one transaction.
    pub async fn admin_refund_order(
        &self,
        actor: Actor,
        number: String,
    ) -> StoreResult<RefundOutcome> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let order: Option<(i64, OrderStatus)> = tx
                    .query_row(
                        "SELECT id, status FROM orders WHERE number = ?1",
                        params![&number],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((order_id, status)) = order else {
                    return Ok(RefundOutcome::NotFound);
                };
                if status != OrderStatus::Paid {
                    return Ok(RefundOutcome::NotPaid);
                }
                let handed: i64 = tx.query_row(
                    "SELECT count(*) FROM tickets t JOIN orders o ON o.id = t.order_id
                     WHERE t.order_id = ?1 AND t.status = 'valid' AND t.user_id <> o.user_id",
                    params![order_id],
                    |r| r.get(0),
                )?;
                if handed > 0 {
                    return Ok(RefundOutcome::HandedOver(
                        usize::try_from(handed).unwrap_or(usize::MAX),
                    ));
                }
                tx.execute(
                    "UPDATE orders SET status = ?3, refunded_at = ?2 WHERE id = ?1",
                    params![order_id, t, OrderStatus::Refunded],
                )?;
                tx.execute(
                    "UPDATE payments SET status = 'refunded', updated_at = ?2
                     WHERE order_id = ?1 AND status = 'succeeded'",
                    params![order_id, t],
                )?;
                // The seats its tickets hold go back on sale (a resale
                // line's too; not those of tickets resold away since).
                super::catalogue::release_seats(&tx, order_id, super::catalogue::Lines::All)?;
                let revoked = tickets::revoke_valid_of_order(
                    &tx,
                    order_id,
                    RevocationReason::Refunded,
                    "",
                    t,
                )?;
                audit(
                    &tx,
                    &actor,
                    "order.refund",
                    &format!("order:{number}"),
                    &format!("tickets_revoked={revoked}"),
                    t,
                )?;
                tx.commit()?;
                Ok(RefundOutcome::Refunded(revoked))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escape("a%b_c\\d"), "a\\%b\\_c\\\\d");
        let raw = rusqlite::Connection::open_in_memory().expect("opens");
        let c = Conn::Sqlite(&raw);
        let hit: i64 = c
            .query_row(
                "SELECT 'a%b' LIKE ?1 ESCAPE '\\'",
                params![format!("{}%", like_escape("a%"))],
                |r| r.get(0),
            )
            .expect("runs");
        assert_eq!(hit, 1);
        let miss: i64 = c
            .query_row(
                "SELECT 'abc' LIKE ?1 ESCAPE '\\'",
                params![format!("{}%", like_escape("a%"))],
                |r| r.get(0),
            )
            .expect("runs");
        assert_eq!(miss, 0, "a typed % is not a wildcard");
    }
}
