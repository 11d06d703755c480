//! The admin console's queries and actions.
//!
//! Every state-changing action takes the acting admin
//! ([`super::audit::Actor`]) and writes its audit row inside the action's own
//! transaction: an action and its audit entry commit together or not at all. Dashboard and scan figures
//! read the rollup tables of migration 6 (`sales_daily`, `scan_totals`,
//! `scan_hours`),
//! maintained by triggers, so they stay fast on millions of rows.

use jo_shared::revocation::RevocationReason;
use jo_shared::ticket::TicketId;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::audit::{Actor, audit};
use super::tickets::{self, TicketRow};
use super::{Store, StoreError, StoreResult, now};
use crate::units::money::cents_plain;
use crate::units::time::iso_utc;

// ----- orders and tickets

/// An order found by a search.
#[derive(Debug, Clone)]
pub struct OrderHit {
    /// Public order number.
    pub number: String,
    /// Status.
    pub status: String,
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
}

// ----- devices

/// A scanner device.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// Device id.
    pub id: String,
    /// Label.
    pub label: String,
    /// Gate it reports.
    pub gate: String,
    /// Enrolled, Unix seconds.
    pub enrolled_at: i64,
    /// Last sync, Unix seconds.
    pub last_sync_at: Option<i64>,
    /// Scans waiting on the device at its last sync.
    pub pending_uploads: i64,
    /// Clock skew seen at its last sync, seconds.
    pub clock_skew_secs: Option<i64>,
    /// Revoked, Unix seconds.
    pub revoked_at: Option<i64>,
}

// ----- dashboard

/// Sales of one offer.
#[derive(Debug, Clone)]
pub struct OfferSales {
    /// Offer name.
    pub name: String,
    /// Whether it is on sale.
    pub active: bool,
    /// Tickets sold.
    pub tickets: i64,
    /// Seats sold.
    pub seats: i64,
    /// Revenue, cents.
    pub revenue_cents: i64,
}

/// Sales of one session.
#[derive(Debug, Clone)]
pub struct SessionSales {
    /// Session id.
    pub id: i64,
    /// Code.
    pub code: String,
    /// Title.
    pub title: String,
    /// Sport.
    pub sport: String,
    /// Start, Unix seconds.
    pub starts_at: i64,
    /// Status.
    pub status: String,
    /// Capacity.
    pub capacity: i64,
    /// Tickets sold.
    pub tickets: i64,
    /// Seats sold.
    pub seats: i64,
    /// Revenue, cents.
    pub revenue_cents: i64,
}

/// Sales of one sport.
#[derive(Debug, Clone)]
pub struct SportSales {
    /// Sport.
    pub sport: String,
    /// Sessions.
    pub sessions: i64,
    /// Capacity of its sessions.
    pub capacity: i64,
    /// Seats sold.
    pub seats: i64,
    /// Revenue, cents.
    pub revenue_cents: i64,
}

/// Sales of one day.
#[derive(Debug, Clone, Copy)]
pub struct DaySales {
    /// Unix day (UTC).
    pub day: i64,
    /// Tickets sold.
    pub tickets: i64,
    /// Revenue, cents.
    pub revenue_cents: i64,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    /// Per offer.
    pub offers: Vec<OfferSales>,
    /// Per session.
    pub sessions: Vec<SessionSales>,
    /// Per sport.
    pub sports: Vec<SportSales>,
    /// Per day.
    pub days: Vec<DaySales>,
}

// ----- scans

/// Admitted entries of one session at one gate.
#[derive(Debug, Clone)]
pub struct GateEntries {
    /// Session id (0: none).
    pub session_id: i64,
    /// Gate.
    pub gate: String,
    /// Admitting scans.
    pub scans: i64,
    /// People admitted.
    pub people: i64,
}

/// Scans of one verdict and reason.
#[derive(Debug, Clone)]
pub struct ReasonCount {
    /// `refuse` or `used`.
    pub verdict: String,
    /// Reason code.
    pub reason: String,
    /// Scans.
    pub scans: i64,
}

/// One stored conflict.
#[derive(Debug, Clone)]
pub struct ConflictRow {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// Scan id.
    pub scan_id: String,
    /// Device id.
    pub device_id: String,
    /// Ticket code, hex.
    pub ticket: Option<String>,
    /// Details.
    pub detail: String,
    /// Detected, Unix seconds.
    pub detected_at: i64,
}

/// Everything the scans view shows.
#[derive(Debug, Clone, Default)]
pub struct ScansView {
    /// Admitted entries per session and gate.
    pub entries: Vec<GateEntries>,
    /// People admitted per hour (Unix hours), oldest first.
    pub hours: Vec<(i64, i64)>,
    /// Non-admitting scans by verdict and reason.
    pub refused: Vec<ReasonCount>,
    /// Conflicts per kind.
    pub conflict_counts: Vec<(String, i64)>,
    /// The latest conflicts (of the chosen kind, if any).
    pub conflicts: Vec<ConflictRow>,
    /// Scans uploaded more than an hour after they were made.
    pub late_scans: i64,
    /// Scans in all.
    pub total_scans: i64,
}

/// The conflict kinds, in the order the console shows them.
pub const CONFLICT_KINDS: &[&str] = &[
    "double_admit",
    "admitted_after_revocation",
    "unknown_ticket",
    "chain_gap",
    "chain_break",
    "late_upload",
    "unproven_admission",
];

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

fn task(e: impl std::fmt::Display) -> StoreError {
    StoreError::Task(e.to_string())
}

const HIT_SELECT: &str = "SELECT o.number, o.status, o.total_cents, o.created_at, u.email,
        u.first_name || ' ' || u.last_name
     FROM orders o JOIN users u ON u.id = o.user_id";

fn hit_from_row(r: &Row<'_>) -> rusqlite::Result<OrderHit> {
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
pub fn search_orders(c: &Connection, q: &str, limit: i64) -> StoreResult<Vec<OrderHit>> {
    let q = q.trim();
    if q.is_empty() {
        let mut st = c.prepare_cached(&format!("{HIT_SELECT} ORDER BY o.id DESC LIMIT ?1"))?;
        return Ok(st
            .query_map([limit], hit_from_row)?
            .collect::<Result<_, _>>()?);
    }
    if let Ok(id) = TicketId::from_hex(&q.to_ascii_lowercase()) {
        let mut st = c.prepare_cached(&format!(
            "{HIT_SELECT} WHERE o.id = (SELECT order_id FROM tickets WHERE ticket_id = ?1)"
        ))?;
        let hits: Vec<OrderHit> = st
            .query_map([&id.0[..]], hit_from_row)?
            .collect::<Result<_, _>>()?;
        if !hits.is_empty() {
            return Ok(hits);
        }
    }
    // Order numbers are upper case; comparing exactly keeps the UNIQUE index in use.
    let mut st = c.prepare_cached(&format!("{HIT_SELECT} WHERE o.number IN (?1, ?2)"))?;
    let hits: Vec<OrderHit> = st
        .query_map(params![q, q.to_ascii_uppercase()], hit_from_row)?
        .collect::<Result<_, _>>()?;
    if !hits.is_empty() {
        return Ok(hits);
    }
    let escaped = like_escape(&q.to_lowercase());
    let mut st = c.prepare_cached(&format!(
        "{HIT_SELECT} WHERE o.user_id IN (
             SELECT id FROM users WHERE email LIKE ?1 ESCAPE '\\'
             UNION SELECT id FROM users
             WHERE lower(first_name || ' ' || last_name) LIKE ?2 ESCAPE '\\'
                OR lower(last_name || ' ' || first_name) LIKE ?2 ESCAPE '\\'
                OR lower(username) LIKE ?2 ESCAPE '\\')
         ORDER BY o.id DESC LIMIT ?3"
    ))?;
    Ok(st
        .query_map(
            params![format!("{escaped}%"), format!("%{escaped}%"), limit],
            hit_from_row,
        )?
        .collect::<Result<_, _>>()?)
}

fn order_detail(c: &Connection, number: &str) -> StoreResult<Option<OrderDetail>> {
    let head: Option<(i64, OrderHit, Option<i64>, Option<i64>)> = c
        .query_row(
            "SELECT o.id, o.number, o.status, o.total_cents, o.created_at, u.email,
                    u.first_name || ' ' || u.last_name, o.paid_at, o.refunded_at
             FROM orders o JOIN users u ON u.id = o.user_id WHERE o.number = ?1",
            [number],
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
    let lines = c
        .prepare_cached(
            "SELECT s.title, ol.offer_name, ol.quantity, ol.unit_price_cents
             FROM order_lines ol JOIN game_sessions s ON s.id = ol.session_id
             WHERE ol.order_id = ?1 ORDER BY ol.id",
        )?
        .query_map([id], |r| {
            Ok(LineRow {
                session: r.get(0)?,
                offer: r.get(1)?,
                quantity: r.get(2)?,
                unit_price_cents: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
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
    // ----- orders and tickets

    /// Searches orders (see [`search_orders`]).
    pub async fn admin_search_orders(&self, q: String, limit: i64) -> StoreResult<Vec<OrderHit>> {
        self.pool
            .read_blocking(move |c| search_orders(c, &q, limit))
            .await
    }

    /// An order by number, with its lines and tickets.
    pub async fn admin_order(&self, number: String) -> StoreResult<Option<OrderDetail>> {
        self.pool
            .read_blocking(move |c| order_detail(c, &number))
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
            .run(move |c| {
                let t = now();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let order: Option<(i64, String)> = tx
                    .query_row(
                        "SELECT id, status FROM orders WHERE number = ?1",
                        [&number],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let Some((order_id, status)) = order else {
                    return Ok(RefundOutcome::NotFound);
                };
                if status != "paid" {
                    return Ok(RefundOutcome::NotPaid);
                }
                tx.execute(
                    "UPDATE orders SET status = 'refunded', refunded_at = ?2 WHERE id = ?1",
                    params![order_id, t],
                )?;
                tx.execute(
                    "UPDATE payments SET status = 'refunded', updated_at = ?2
                     WHERE order_id = ?1 AND status = 'succeeded'",
                    params![order_id, t],
                )?;
                // The seats go back on sale.
                super::catalogue::release_seats(&tx, order_id)?;
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

    // ----- devices

    /// Every device, live ones first, then by enrolment.
    pub async fn admin_devices(&self) -> StoreResult<Vec<DeviceRow>> {
        self.pool
            .read_blocking(|c| {
                let mut st = c.prepare_cached(
                    "SELECT id, label, gate, enrolled_at, last_sync_at, pending_uploads, clock_skew_secs, revoked_at
                     FROM devices ORDER BY revoked_at IS NOT NULL, enrolled_at DESC",
                )?;
                Ok(st
                    .query_map([], |r| {
                        Ok(DeviceRow {
                            id: r.get(0)?,
                            label: r.get(1)?,
                            gate: r.get(2)?,
                            enrolled_at: r.get(3)?,
                            last_sync_at: r.get(4)?,
                            pending_uploads: r.get(5)?,
                            clock_skew_secs: r.get(6)?,
                            revoked_at: r.get(7)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?)
            })
            .await
    }

    /// Live (unused, unexpired) enrolment codes.
    pub async fn admin_live_codes(&self) -> StoreResult<i64> {
        self.pool
            .read_blocking(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM enrollment_codes WHERE used_at IS NULL AND expires_at > ?1",
                    [now()],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    /// Stores a new one-time enrolment code (its hash only).
    pub async fn admin_create_enrollment_code(
        &self,
        actor: Actor,
        code_hash: [u8; 32],
        ttl_secs: i64,
    ) -> StoreResult<i64> {
        self.pool
            .run(move |c| {
                let t = now();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                super::devices::insert_code(&tx, &code_hash, t, t + ttl_secs)?;
                // The code itself never enters the log: only its expiry.
                audit(
                    &tx,
                    &actor,
                    "device.enrollment_code",
                    "device:new",
                    &format!("expires_at={}", t + ttl_secs),
                    t,
                )?;
                tx.commit()?;
                Ok(t + ttl_secs)
            })
            .await
    }

    /// Revokes a device; false if there is no such live device.
    pub async fn admin_revoke_device(&self, actor: Actor, id: String) -> StoreResult<bool> {
        self.pool
            .run(move |c| {
                let t = now();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let n = tx.execute(
                    "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, t],
                )?;
                if n == 0 {
                    return Ok(false);
                }
                audit(&tx, &actor, "device.revoke", &format!("device:{id}"), "", t)?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    // ----- dashboard

    /// Sales per offer, session, sport and day, from the rollup.
    pub async fn admin_dashboard(&self) -> StoreResult<Dashboard> {
        self.pool
            .read_blocking(|c| {
                let offers = c
                    .prepare_cached(
                        "SELECT o.name, o.active, coalesce(sum(s.tickets), 0), coalesce(sum(s.seats), 0),
                                coalesce(sum(s.revenue_cents), 0)
                         FROM offers o LEFT JOIN sales_daily s ON s.offer_id = o.id
                         GROUP BY o.id ORDER BY o.seats, o.name",
                    )?
                    .query_map([], |r| {
                        Ok(OfferSales {
                            name: r.get(0)?,
                            active: r.get::<_, i64>(1)? == 1,
                            tickets: r.get(2)?,
                            seats: r.get(3)?,
                            revenue_cents: r.get(4)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let sessions: Vec<SessionSales> = c
                    .prepare_cached(
                        "SELECT g.id, g.code, g.title, sp.name, g.starts_at, g.status, g.capacity,
                                coalesce(x.tickets, 0), coalesce(x.seats, 0), coalesce(x.revenue, 0)
                         FROM game_sessions g JOIN sports sp ON sp.id = g.sport_id
                         LEFT JOIN (SELECT session_id, sum(tickets) AS tickets, sum(seats) AS seats,
                                           sum(revenue_cents) AS revenue
                                    FROM sales_daily GROUP BY session_id) x ON x.session_id = g.id
                         ORDER BY g.starts_at, g.id",
                    )?
                    .query_map([], |r| {
                        Ok(SessionSales {
                            id: r.get(0)?,
                            code: r.get(1)?,
                            title: r.get(2)?,
                            sport: r.get(3)?,
                            starts_at: r.get(4)?,
                            status: r.get(5)?,
                            capacity: r.get(6)?,
                            tickets: r.get(7)?,
                            seats: r.get(8)?,
                            revenue_cents: r.get(9)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                // Per sport from the per-session figures just read: no second pass over the rollup.
                let mut sports: Vec<SportSales> = Vec::new();
                for s in &sessions {
                    match sports.iter_mut().find(|x| x.sport == s.sport) {
                        Some(x) => {
                            x.sessions += 1;
                            x.capacity += s.capacity;
                            x.seats += s.seats;
                            x.revenue_cents += s.revenue_cents;
                        }
                        None => sports.push(SportSales {
                            sport: s.sport.clone(),
                            sessions: 1,
                            capacity: s.capacity,
                            seats: s.seats,
                            revenue_cents: s.revenue_cents,
                        }),
                    }
                }
                sports.sort_by(|a, b| b.revenue_cents.cmp(&a.revenue_cents).then(a.sport.cmp(&b.sport)));
                let days = c
                    .prepare_cached(
                        "SELECT day, sum(tickets), sum(revenue_cents) FROM sales_daily
                         GROUP BY day ORDER BY day",
                    )?
                    .query_map([], |r| {
                        Ok(DaySales {
                            day: r.get(0)?,
                            tickets: r.get(1)?,
                            revenue_cents: r.get(2)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(Dashboard {
                    offers,
                    sessions,
                    sports,
                    days,
                })
            })
            .await
    }

    // ----- scans

    /// The scans view, for one session or all (`session` = `None`) and one
    /// gate or all, with the
    /// latest `conflict_limit` conflicts (of `kind`, when given).
    pub async fn admin_scans(
        &self,
        session: Option<i64>,
        gate: Option<String>,
        kind: Option<&'static str>,
        conflict_limit: i64,
    ) -> StoreResult<ScansView> {
        self.pool
            .read_blocking(move |c| {
                // The rollup level that answers this filter (see migration 6).
                let (level, sid, g) = match (session, gate.as_deref()) {
                    (None, None) => (3, -1, ""),
                    (Some(s), None) => (1, s, ""),
                    (None, Some(g)) => (2, -1, g),
                    (Some(s), Some(g)) => (0, s, g),
                };
                // Level-0 rows (per session and gate), narrowed by the filter;
                // one fixed statement per filter so the primary key is used.
                let entries_sql = match (session.is_some(), gate.is_some()) {
                    (false, false) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND verdict = 'admit' AND ?1 = ?1 AND ?2 = ?2
                         ORDER BY session_id, gate"
                    }
                    (true, false) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND session_id = ?1 AND verdict = 'admit' AND ?2 = ?2
                         ORDER BY session_id, gate"
                    }
                    (false, true) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND gate = ?2 AND verdict = 'admit' AND ?1 = ?1
                         ORDER BY session_id, gate"
                    }
                    (true, true) => {
                        "SELECT session_id, gate, scans, people FROM scan_totals
                         WHERE level = 0 AND session_id = ?1 AND gate = ?2 AND verdict = 'admit'
                         ORDER BY session_id, gate"
                    }
                };
                let entries = c
                    .prepare_cached(entries_sql)?
                    .query_map(params![sid, g], |r| {
                        Ok(GateEntries {
                            session_id: r.get(0)?,
                            gate: r.get(1)?,
                            scans: r.get(2)?,
                            people: r.get(3)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let hours = c
                    .prepare_cached(
                        "SELECT hour, people FROM scan_hours
                         WHERE level = ?1 AND session_id = ?2 AND gate = ?3 ORDER BY hour",
                    )?
                    .query_map(params![level, sid, g], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let refused = c
                    .prepare_cached(
                        "SELECT verdict, reason, scans FROM scan_totals
                         WHERE level = ?1 AND session_id = ?2 AND gate = ?3 AND verdict <> 'admit'
                         ORDER BY scans DESC",
                    )?
                    .query_map(params![level, sid, g], |r| {
                        Ok(ReasonCount {
                            verdict: r.get(0)?,
                            reason: r.get(1)?,
                            scans: r.get(2)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let (total_scans, late_scans): (i64, i64) = c
                    .prepare_cached(
                        "SELECT coalesce(sum(scans), 0), coalesce(sum(late), 0) FROM scan_totals
                         WHERE level = ?1 AND session_id = ?2 AND gate = ?3",
                    )?
                    .query_row(params![level, sid, g], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let conflict_counts = c
                    .prepare_cached("SELECT kind, count(*) FROM scan_conflicts GROUP BY kind")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let conflicts_sql = if kind.is_some() {
                    "SELECT id, kind, scan_id, device_id, ticket_id, detail, detected_at
                     FROM scan_conflicts WHERE kind = ?1
                     ORDER BY detected_at DESC, id DESC LIMIT ?2"
                } else {
                    "SELECT id, kind, scan_id, device_id, ticket_id, detail, detected_at
                     FROM scan_conflicts WHERE ?1 IS NULL
                     ORDER BY detected_at DESC, id DESC LIMIT ?2"
                };
                let conflicts = c
                    .prepare_cached(conflicts_sql)?
                    .query_map(params![kind, conflict_limit], |r| {
                        Ok(ConflictRow {
                            id: r.get(0)?,
                            kind: r.get(1)?,
                            scan_id: r.get(2)?,
                            device_id: r.get(3)?,
                            ticket: tickets::ticket_hex(r.get(4)?),
                            detail: r.get(5)?,
                            detected_at: r.get(6)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(ScansView {
                    entries,
                    hours,
                    refused,
                    conflict_counts,
                    conflicts,
                    late_scans,
                    total_scans,
                })
            })
            .await
    }

    /// Gates that scanned something, for the scans view's filter.
    pub async fn admin_gates(&self) -> StoreResult<Vec<String>> {
        self.pool
            .read_blocking(|c| {
                Ok(c.prepare_cached(
                    "SELECT DISTINCT gate FROM scan_totals WHERE level = 2 ORDER BY gate",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?)
            })
            .await
    }

    /// Session titles by id (for the scans view's labels and filter).
    pub async fn admin_session_titles(&self) -> StoreResult<Vec<(i64, String)>> {
        self.pool
            .read_blocking(|c| {
                Ok(c.prepare_cached(
                    "SELECT id, code || ' · ' || title FROM game_sessions ORDER BY starts_at, id",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?)
            })
            .await
    }

    // ----- exports

    /// Streams the scans (of one session, or all) as records to `sink`,
    /// oldest first, then `None`, on a connection of its own (a long export
    /// must not hold one of the pool's). `sink` returns false when the
    /// reader went away.
    pub async fn admin_export_scans(
        &self,
        session: Option<i64>,
        mut sink: impl FnMut(Option<Vec<String>>) -> bool + Send + 'static,
    ) -> StoreResult<()> {
        let path = self.pool.path.clone();
        tokio::task::spawn_blocking(move || -> StoreResult<()> {
            let c = super::open_connection(&path)?;
            let mut st = c.prepare(
                "SELECT s.id, s.scan_id, s.device_id, d.label, s.gate, s.session_id, s.ticket_id,
                        s.verdict, coalesce(s.reason, ''), s.admits, s.scanned_at, s.received_at
                 FROM scans s JOIN devices d ON d.id = s.device_id
                 WHERE (?1 = -1 OR s.session_id = ?1) ORDER BY s.id",
            )?;
            let mut rows = st.query([session.unwrap_or(-1)])?;
            while let Some(r) = rows.next()? {
                let record = vec![
                    r.get::<_, i64>(0)?.to_string(),
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get::<_, Option<i64>>(5)?
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    tickets::ticket_hex(r.get(6)?).unwrap_or_default(),
                    r.get(7)?,
                    r.get(8)?,
                    r.get::<_, i64>(9)?.to_string(),
                    iso_utc(r.get(10)?),
                    iso_utc(r.get(11)?),
                ];
                if !sink(Some(record)) {
                    return Ok(());
                }
            }
            sink(None);
            Ok(())
        })
        .await
        .map_err(task)?
    }

    /// Streams sales (one record per order line of paid and refunded
    /// orders) to `sink`, like [`Store::admin_export_scans`].
    pub async fn admin_export_sales(
        &self,
        mut sink: impl FnMut(Option<Vec<String>>) -> bool + Send + 'static,
    ) -> StoreResult<()> {
        let path = self.pool.path.clone();
        tokio::task::spawn_blocking(move || -> StoreResult<()> {
            let c = super::open_connection(&path)?;
            let mut st = c.prepare(
                "SELECT o.number, o.status, o.paid_at, o.refunded_at, u.email,
                        u.first_name || ' ' || u.last_name, g.code, g.title, ol.offer_name, ol.seats,
                        ol.quantity, ol.unit_price_cents
                 FROM order_lines ol JOIN orders o ON o.id = ol.order_id JOIN users u ON u.id = o.user_id
                 JOIN game_sessions g ON g.id = ol.session_id
                 WHERE o.status IN ('paid', 'refunded') ORDER BY o.id, ol.id",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let quantity: i64 = r.get(10)?;
                let unit: i64 = r.get(11)?;
                let record = vec![
                    r.get(0)?,
                    r.get(1)?,
                    r.get::<_, Option<i64>>(2)?.map(iso_utc).unwrap_or_default(),
                    r.get::<_, Option<i64>>(3)?.map(iso_utc).unwrap_or_default(),
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get::<_, i64>(9)?.to_string(),
                    quantity.to_string(),
                    cents_plain(unit),
                    cents_plain(unit.saturating_mul(quantity)),
                ];
                if !sink(Some(record)) {
                    return Ok(());
                }
            }
            sink(None);
            Ok(())
        })
        .await
        .map_err(task)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_escape("a%b_c\\d"), "a\\%b\\_c\\\\d");
        let c = Connection::open_in_memory().expect("opens");
        let hit: i64 = c
            .query_row(
                "SELECT 'a%b' LIKE ?1 ESCAPE '\\'",
                [format!("{}%", like_escape("a%"))],
                |r| r.get(0),
            )
            .expect("runs");
        assert_eq!(hit, 1);
        let miss: i64 = c
            .query_row(
                "SELECT 'abc' LIKE ?1 ESCAPE '\\'",
                [format!("{}%", like_escape("a%"))],
                |r| r.get(0),
            )
            .expect("runs");
        assert_eq!(miss, 0, "a typed % is not a wildcard");
    }
}
