//! The programme: sports, venues, sessions and offers, as the shop reads
//! them and as the admin console writes them, the seat guard that sells a
//! session's seats, and the idempotent loader of the seed programme. The
//! one module that writes `game_sessions` and `offers`.

use super::sql::{Begin, Conn, Optional, Row, params};

use jo_shared::api::{EntryRule, GateSession};
use jo_shared::revocation::RevocationReason;

use super::audit::{Actor, audit};
use super::outbox::{self, Outgoing};
use super::{Store, StoreResult, now, tickets};
use crate::units::status::SessionStatus;

/// A session (épreuve) with its sport and venue.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Id (the session id in ticket payloads).
    pub id: i64,
    /// Programme code (e.g. `ATH01`).
    pub code: String,
    /// Sport id.
    pub sport_id: i64,
    /// Sport name.
    pub sport: String,
    /// Venue id.
    pub venue_id: i64,
    /// Venue name.
    pub venue: String,
    /// Venue city.
    pub city: String,
    /// Title.
    pub title: String,
    /// Start, Unix seconds.
    pub starts_at: i64,
    /// End, Unix seconds.
    pub ends_at: i64,
    /// Doors open, Unix seconds.
    pub doors_open_at: i64,
    /// Seats in all.
    pub capacity: i64,
    /// Seats sold or held.
    pub seats_taken: i64,
    /// Base price of one seat, cents.
    pub base_price_cents: i64,
    /// Scheduled or cancelled.
    pub status: SessionStatus,
    /// `single` or `multiple`.
    pub entry_rule: String,
    /// Entries allowed per ticket (re-entry).
    pub max_entries: i64,
    /// The venue's postal address ("" when not known).
    pub address: String,
    /// Entrance or gate information ("" when none).
    pub entrance: String,
}

impl SessionRow {
    /// Seats still for sale.
    pub fn seats_left(&self) -> i64 {
        (self.capacity - self.seats_taken).max(0)
    }

    /// Whether tickets can be bought now: scheduled, not started.
    pub fn on_sale(&self, now: i64) -> bool {
        self.status == SessionStatus::Scheduled && self.starts_at > now
    }
}

/// The columns of [`SessionRow`], for `session_from_row`.
pub(super) const SESSION_COLUMNS: &str = "s.id, s.code, s.sport_id, sp.name, s.venue_id, v.name, v.city, s.title, \
     s.starts_at, s.ends_at, s.doors_open_at, s.capacity, s.seats_taken, s.base_price_cents, s.status, \
     s.entry_rule, s.max_entries, v.address, s.entrance";
/// How many columns [`SESSION_COLUMNS`] has: a query that selects more
/// after them reads those from this index on.
pub(super) const SESSION_COLUMN_COUNT: usize = 19;
/// The joins of [`SESSION_COLUMNS`].
pub(super) const SESSION_FROM: &str = "game_sessions s JOIN sports sp ON sp.id = s.sport_id \
     JOIN venues v ON v.id = s.venue_id";

pub(super) fn session_from_row(r: &Row<'_>) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        code: r.get(1)?,
        sport_id: r.get(2)?,
        sport: r.get(3)?,
        venue_id: r.get(4)?,
        venue: r.get(5)?,
        city: r.get(6)?,
        title: r.get(7)?,
        starts_at: r.get(8)?,
        ends_at: r.get(9)?,
        doors_open_at: r.get(10)?,
        capacity: r.get(11)?,
        seats_taken: r.get(12)?,
        base_price_cents: r.get(13)?,
        status: r.get(14)?,
        entry_rule: r.get(15)?,
        max_entries: r.get(16)?,
        address: r.get(17)?,
        entrance: r.get(18)?,
    })
}

/// An offer.
#[derive(Debug, Clone)]
pub struct OfferRow {
    /// Id.
    pub id: i64,
    /// Name (Solo, Duo, Famille, …).
    pub name: String,
    /// Description.
    pub description: String,
    /// People one ticket admits.
    pub seats: i64,
    /// Price per seat, percent of the session's base price.
    pub price_percent: i64,
    /// Whether it is on sale.
    pub active: bool,
}

/// The columns of [`OfferRow`], for `offer_from_row`.
const OFFER_COLUMNS: &str = "id, name, description, seats, price_percent, active";
/// Offers by name, case-insensitively (ASCII) as SQLite's NOCASE orders
/// them, the same on PostgreSQL (whose `nocase` is an ICU collation that
/// orders otherwise).
const OFFER_ORDER: &str = "lower(name COLLATE \"binary\")";

fn offer_from_row(r: &Row<'_>) -> StoreResult<OfferRow> {
    Ok(OfferRow {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        seats: r.get(3)?,
        price_percent: r.get(4)?,
        active: r.get(5)?,
    })
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Only this sport.
    pub sport_id: Option<i64>,
    /// Only this venue.
    pub venue_id: Option<i64>,
    /// Only sessions starting in `[from, to)` (Unix seconds).
    pub window: Option<(i64, i64)>,
}

/// The choices of the list's filters.
#[derive(Debug, Clone, Default)]
pub struct Facets {
    /// Sports with upcoming sessions, by name.
    pub sports: Vec<(i64, String)>,
    /// Venues with upcoming sessions, by name.
    pub venues: Vec<(i64, String)>,
    /// Start times of upcoming sessions (the page groups them by local day).
    pub starts: Vec<i64>,
}

/// One session of the seed programme, placed in time.
#[derive(Debug, Clone)]
pub struct SeedSession {
    /// Programme code.
    pub code: String,
    /// Sport name.
    pub sport: String,
    /// Title.
    pub title: String,
    /// Venue name.
    pub venue: String,
    /// Venue city.
    pub city: String,
    /// Venue postal address ("" when not known).
    pub address: String,
    /// Entrance or gate information ("" when none).
    pub entrance: String,
    /// Start, Unix seconds.
    pub starts_at: i64,
    /// End, Unix seconds.
    pub ends_at: i64,
    /// Doors open, Unix seconds.
    pub doors_open_at: i64,
    /// Seats.
    pub capacity: i64,
    /// Base price of one seat, cents.
    pub base_price_cents: i64,
    /// `single` or `multiple`.
    pub entry_rule: String,
}

/// One seed offer.
#[derive(Debug, Clone)]
pub struct SeedOffer {
    /// Name.
    pub name: String,
    /// Seats.
    pub seats: i64,
    /// Price percent.
    pub price_percent: i64,
    /// Active.
    pub active: bool,
}

/// What the loader inserted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// New sessions.
    pub sessions: usize,
    /// New offers.
    pub offers: usize,
}

/// The `meta` value of `key`.
pub fn meta_get(c: &Conn<'_>, key: &str) -> StoreResult<Option<String>> {
    c.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
        r.get(0)
    })
    .optional()
}

fn id_of_or_insert(c: &Conn<'_>, table: &str, name: &str, city: Option<&str>) -> StoreResult<i64> {
    // `table` is one of our two literals below, never user input.
    let found: Option<i64> = c
        .query_row(
            &format!("SELECT id FROM {table} WHERE name = ?1"),
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    match city {
        Some(city) => c.query_row(
            "INSERT INTO venues (name, city) VALUES (?1, ?2) RETURNING id",
            params![name, city],
            |r| r.get(0),
        ),
        None => c.query_row(
            "INSERT INTO sports (name) VALUES (?1) RETURNING id",
            params![name],
            |r| r.get(0),
        ),
    }
}

/// Takes the seats of an order's lines (`(session, seats)` pairs): the seat
/// guard. Each session's seats are taken by one guarded
/// `UPDATE … WHERE seats_taken + n <= capacity` of a scheduled session, so
/// no session is ever oversold.
/// Returns the indexes of the pairs that found too few seats; the caller
/// then rolls back what the others took.
/// Callers pass sessions in ascending id order (see [`release_seats`]).
pub(super) fn take_seats(tx: &Conn<'_>, lines: &[(i64, i64)]) -> StoreResult<Vec<usize>> {
    let mut failed = Vec::new();
    for (i, (session_id, seats)) in lines.iter().enumerate() {
        let n = tx.execute(
            "UPDATE game_sessions SET seats_taken = seats_taken + ?2
             WHERE id = ?1 AND status = 'scheduled' AND seats_taken + ?2 <= capacity",
            params![session_id, seats],
        )?;
        if n == 0 {
            failed.push(i);
        }
    }
    Ok(failed)
}

/// Which seats of an order [`release_seats`] gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lines {
    /// Those its lines took when it was placed (an expired hold): not its
    /// resale lines', which moved seats already taken.
    Primary,
    /// Those its tickets hold (a refund): every line's, resale lines
    /// included, less the seats of tickets resold into another order since
    /// (their new order holds those seats now, and gives them back itself).
    All,
}

/// Gives an order's seats back to its sessions: the one release, for an
/// expired hold and for a refund alike.
///
/// Not clamped at 0: [`take_seats`] took exactly these seats, and only an
/// order holding them (pending, or paid) is released, once, as its status
/// leaves pending or paid in the same transaction. Editing a session cannot
/// lower `seats_taken` either. So a release below 0 would be a seat counted
/// twice; the schema's `CHECK (seats_taken BETWEEN 0 AND capacity)` then
/// fails the transaction instead of `max(0, …)` hiding the miscount.
///
/// Session by session in ascending id order, the order [`take_seats`]'s
/// callers use too: shop transactions running side by side on PostgreSQL
/// lock sessions' rows in one order, so they never deadlock.
pub(super) fn release_seats(tx: &Conn<'_>, order_id: i64, which: Lines) -> StoreResult<()> {
    let all = i64::from(which == Lines::All);
    let per_session: Vec<(i64, i64)> = tx.query_map(
        "SELECT session_id, sum(n) FROM (
             SELECT session_id, seats * quantity AS n FROM order_lines
             WHERE order_id = ?1 AND (?2 = 1 OR resale_listing IS NULL)
             UNION ALL
             SELECT t.session_id, -t.admits FROM tickets t JOIN tickets r ON r.replaces = t.id
             WHERE ?2 = 1 AND t.order_id = ?1 AND r.order_id <> ?1
         ) x GROUP BY session_id ORDER BY session_id",
        params![order_id, all],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (session_id, seats) in per_session.into_iter().filter(|(_, n)| *n != 0) {
        tx.execute(
            "UPDATE game_sessions SET seats_taken = seats_taken - ?2 WHERE id = ?1",
            params![session_id, seats],
        )?;
    }
    Ok(())
}

/// An offer with the tickets sold of it, as the console lists it.
#[derive(Debug, Clone)]
pub struct OfferSold {
    /// The offer.
    pub offer: OfferRow,
    /// Tickets sold (not refunded).
    pub tickets_sold: i64,
}

/// A validated offer form.
#[derive(Debug, Clone)]
pub struct OfferInput {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Seats, 1..=255.
    pub seats: i64,
    /// Percent, 1..=1000.
    pub price_percent: i64,
    /// On sale.
    pub active: bool,
}

/// An offer or session could not be saved because a unique field is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken;

/// A validated session form.
#[derive(Debug, Clone)]
pub struct SessionInput {
    /// Programme code (unique).
    pub code: String,
    /// Sport id.
    pub sport_id: i64,
    /// Venue id.
    pub venue_id: i64,
    /// Title.
    pub title: String,
    /// Start, Unix seconds.
    pub starts_at: i64,
    /// End, Unix seconds.
    pub ends_at: i64,
    /// Doors open, Unix seconds.
    pub doors_open_at: i64,
    /// Seats.
    pub capacity: i64,
    /// Base price per seat, cents.
    pub base_price_cents: i64,
    /// `single` or `multiple`.
    pub entry_rule: String,
    /// Entries allowed per ticket.
    pub max_entries: i64,
    /// Entrance or gate information ("" when none).
    pub entrance: String,
}

/// Why a session was not saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// The code is used by another session.
    CodeTaken,
    /// The capacity is below the seats already sold or held (given).
    BelowTaken(i64),
    /// No such session.
    NotFound,
    /// A cancelled session cannot be edited.
    Cancelled,
    /// The sport or venue does not exist.
    BadReference,
    /// The doors, start or end would change while this many valid tickets
    /// exist: each carries its validity window, signed, and is never
    /// reissued, so the gates would refuse a rescheduled session's crowd.
    TimesLocked(i64),
}

/// A buyer to tell about a cancelled session.
#[derive(Debug, Clone)]
pub struct AffectedBuyer {
    /// Email address.
    pub email: String,
    /// Prénom.
    pub first_name: String,
    /// Tickets of theirs revoked.
    pub tickets: i64,
}

/// Renders the mail telling a buyer that a session (its title) is
/// cancelled, enqueued with the cancellation.
pub type CancelMail = Box<dyn Fn(&str, &AffectedBuyer) -> Outgoing + Send>;

/// What cancelling a session did.
#[derive(Debug, Clone)]
pub struct Cancelled {
    /// The session's title.
    pub title: String,
    /// Tickets revoked.
    pub revoked: usize,
    /// Buyers to mail.
    pub buyers: Vec<AffectedBuyer>,
}

fn session_by_id(c: &Conn<'_>, id: i64) -> StoreResult<Option<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM {SESSION_FROM} WHERE s.id = ?1");
    c.query_row(&sql, params![id], session_from_row).optional()
}

fn references_exist(c: &Conn<'_>, input: &SessionInput) -> StoreResult<bool> {
    let n: i64 = c.query_row(
        "SELECT (SELECT count(*) FROM sports WHERE id = ?1) + (SELECT count(*) FROM venues WHERE id = ?2)",
        params![input.sport_id, input.venue_id],
        |r| r.get(0),
    )?;
    Ok(n == 2)
}

/// An offer form's values, for its audit entry.
fn offer_detail(input: &OfferInput) -> String {
    format!(
        "name={:?} seats={} price_percent={} active={}",
        input.name, input.seats, input.price_percent, input.active
    )
}

/// A session form's values, for its audit entry.
fn session_detail(input: &SessionInput) -> String {
    format!(
        "code={} title={:?} capacity={} base_price_cents={} starts_at={} entry_rule={} max_entries={}",
        input.code,
        input.title,
        input.capacity,
        input.base_price_cents,
        input.starts_at,
        input.entry_rule,
        input.max_entries
    )
}

/// The scheduled sessions that end after `ends_after`, as gates need them.
pub fn gate_sessions(conn: &Conn<'_>, ends_after: i64) -> StoreResult<Vec<GateSession>> {
    conn.query_map(
        "SELECT g.id, sp.name, g.title, v.name, g.starts_at, g.ends_at, g.doors_open_at,
                g.entry_rule, g.max_entries
         FROM game_sessions g
         JOIN sports sp ON sp.id = g.sport_id
         JOIN venues v ON v.id = g.venue_id
         WHERE g.status = 'scheduled' AND g.ends_at > ?1
         ORDER BY g.starts_at, g.id",
        params![ends_after],
        |r| {
            let rule: String = r.get(7)?;
            let max: i64 = r.get(8)?;
            Ok(GateSession {
                id: u32::try_from(r.get::<i64>(0)?).unwrap_or(0),
                sport: r.get(1)?,
                title: r.get(2)?,
                venue: r.get(3)?,
                starts_at: r.get(4)?,
                ends_at: r.get(5)?,
                doors_open_at: r.get(6)?,
                entry_rule: if rule == "multiple" {
                    EntryRule::Multiple {
                        max_entries: u32::try_from(max).unwrap_or(1),
                    }
                } else {
                    EntryRule::Single
                },
            })
        },
    )
}

impl Store {
    /// The first day of the Games (days since 1970-01-01), fixed at the
    /// first call to `default_days` and kept in `meta` so restarts do not move it.
    pub async fn games_first_day(&self, default_days: i64) -> StoreResult<i64> {
        self.pool
            .run_sql(move |c| {
                let tx = c.begin(Begin::Immediate)?;
                let day = match meta_get(&tx, "games_first_day")? {
                    Some(v) => v.parse::<i64>().unwrap_or(default_days),
                    None => {
                        tx.execute(
                            "INSERT INTO meta (key, value) VALUES ('games_first_day', ?1)",
                            params![default_days.to_string()],
                        )?;
                        default_days
                    }
                };
                tx.commit()?;
                Ok(day)
            })
            .await
    }

    /// Inserts the sessions, sports, venues and offers that are missing (by
    /// session code, sport name, venue name, offer name), in one transaction.
    pub async fn load_programme(
        &self,
        sessions: Vec<SeedSession>,
        offers: Vec<SeedOffer>,
    ) -> StoreResult<LoadReport> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let mut report = LoadReport::default();
                for s in &sessions {
                    let exists: Option<i64> = tx
                        .query_row("SELECT id FROM game_sessions WHERE code = ?1", params![&s.code], |r| {
                            r.get(0)
                        })
                        .optional()?;
                    if exists.is_some() {
                        continue;
                    }
                    let sport_id = id_of_or_insert(&tx, "sports", &s.sport, None)?;
                    let venue_id = id_of_or_insert(&tx, "venues", &s.venue, Some(&s.city))?;
                    tx.execute(
                        "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at,
                             doors_open_at, capacity, base_price_cents, entry_rule, max_entries,
                             created_at, updated_at, entrance)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
                        params![
                            s.code,
                            sport_id,
                            venue_id,
                            s.title,
                            s.starts_at,
                            s.ends_at,
                            s.doors_open_at,
                            s.capacity,
                            s.base_price_cents,
                            s.entry_rule,
                            if s.entry_rule == "multiple" { 10 } else { 1 },
                            t,
                            s.entrance
                        ],
                    )?;
                    report.sessions += 1;
                }
                // Venues' addresses, filled in where not known yet (a venue
                // loaded before the programme carried them, too).
                for s in sessions.iter().filter(|s| !s.address.is_empty()) {
                    tx.execute(
                        "UPDATE venues SET address = ?2 WHERE name = ?1 AND address = ''",
                        params![&s.venue, &s.address],
                    )?;
                }
                for o in &offers {
                    let inserted = tx.execute(
                        "INSERT INTO offers (name, description, seats, price_percent, active, created_at, updated_at)
                         VALUES (?1, '', ?2, ?3, ?4, ?5, ?5) ON CONFLICT (name) DO NOTHING",
                        params![o.name, o.seats, o.price_percent, o.active, t],
                    )?;
                    report.offers += inserted;
                }
                tx.commit()?;
                Ok(report)
            })
            .await
    }

    /// Upcoming scheduled sessions matching `filter`, by start time.
    pub async fn list_sessions(&self, filter: SessionFilter) -> StoreResult<Vec<SessionRow>> {
        self.pool
            .read_sql(move |c| {
                // The casts: PostgreSQL cannot tell a parameter's type from
                // `IS NULL` alone.
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM {SESSION_FROM}
                     WHERE s.status = 'scheduled' AND s.ends_at > ?1
                       AND (CAST(?2 AS BIGINT) IS NULL OR s.sport_id = ?2)
                       AND (CAST(?3 AS BIGINT) IS NULL OR s.venue_id = ?3)
                       AND (CAST(?4 AS BIGINT) IS NULL OR (s.starts_at >= ?4 AND s.starts_at < ?5))
                     ORDER BY s.starts_at, s.id LIMIT 500"
                );
                let (from, to) = filter.window.unzip();
                c.query_map(
                    &sql,
                    params![now(), filter.sport_id, filter.venue_id, from, to],
                    session_from_row,
                )
            })
            .await
    }

    /// The filters' choices: sports, venues and days with upcoming sessions.
    pub async fn catalogue_facets(&self) -> StoreResult<Facets> {
        self.pool
            .read_sql(move |c| {
                let t = now();
                // Names in byte order on both databases (`COLLATE "binary"`,
                // whatever PostgreSQL's default collation); EXISTS rather
                // than DISTINCT, which PostgreSQL cannot order by an
                // expression it does not select.
                let sports = c.query_map(
                    "SELECT sp.id, sp.name FROM sports sp
                     WHERE EXISTS (SELECT 1 FROM game_sessions s WHERE s.sport_id = sp.id
                                   AND s.status = 'scheduled' AND s.ends_at > ?1)
                     ORDER BY sp.name COLLATE \"binary\"",
                    params![t],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let venues = c.query_map(
                    "SELECT v.id, v.name FROM venues v
                     WHERE EXISTS (SELECT 1 FROM game_sessions s WHERE s.venue_id = v.id
                                   AND s.status = 'scheduled' AND s.ends_at > ?1)
                     ORDER BY v.name COLLATE \"binary\"",
                    params![t],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let starts = c.query_map(
                    "SELECT starts_at FROM game_sessions
                     WHERE status = 'scheduled' AND ends_at > ?1 ORDER BY starts_at",
                    params![t],
                    |r| r.get(0),
                )?;
                Ok(Facets {
                    sports,
                    venues,
                    starts,
                })
            })
            .await
    }

    /// A session by id (any status).
    pub async fn game_session(&self, id: i64) -> StoreResult<Option<SessionRow>> {
        self.pool.read_sql(move |c| session_by_id(c, id)).await
    }

    /// Offers on sale, fewest seats first.
    pub async fn active_offers(&self) -> StoreResult<Vec<OfferRow>> {
        self.pool
            .read_sql(move |c| {
                c.query_map(
                    &format!(
                        "SELECT {OFFER_COLUMNS} FROM offers WHERE active = 1 ORDER BY seats, {OFFER_ORDER}"
                    ),
                    params![],
                    offer_from_row,
                )
            })
            .await
    }

    /// An offer by id (active or not).
    pub async fn offer(&self, id: i64) -> StoreResult<Option<OfferRow>> {
        self.pool
            .run_sql(move |c| {
                c.query_row(
                    &format!("SELECT {OFFER_COLUMNS} FROM offers WHERE id = ?1"),
                    params![id],
                    offer_from_row,
                )
                .optional()
            })
            .await
    }

    // ----- admin: offers

    /// Every offer, fewest seats first.
    pub async fn admin_offers(&self) -> StoreResult<Vec<OfferSold>> {
        self.pool
            .read_blocking_sql(|c| {
                c.query_map(
                    &format!(
                        "SELECT {OFFER_COLUMNS},
                             coalesce((SELECT sum(tickets) FROM sales_daily s WHERE s.offer_id = offers.id), 0)
                         FROM offers ORDER BY seats, {OFFER_ORDER}"
                    ),
                    params![],
                    |r| {
                        Ok(OfferSold {
                            offer: offer_from_row(r)?,
                            tickets_sold: r.get(6)?,
                        })
                    },
                )
            })
            .await
    }

    /// Creates an offer (on sale at once if active).
    pub async fn admin_create_offer(
        &self,
        actor: Actor,
        input: OfferInput,
    ) -> StoreResult<Result<i64, Taken>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let inserted = tx.query_row(
                    "INSERT INTO offers (name, description, seats, price_percent, active, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
                    params![input.name, input.description, input.seats, input.price_percent, input.active, t],
                    |r| r.get::<i64>(0),
                );
                // A refusal returns without committing: the transaction rolls back.
                let id = match inserted {
                    Err(e) if e.is_unique_violation() => return Ok(Err(Taken)),
                    r => r?,
                };
                audit(
                    &tx,
                    &actor,
                    "offer.create",
                    &format!("offer:{id}"),
                    &offer_detail(&input),
                    t,
                )?;
                tx.commit()?;
                Ok(Ok(id))
            })
            .await
    }

    /// Edits an offer; `Ok(false)` if there is none.
    pub async fn admin_update_offer(
        &self,
        actor: Actor,
        id: i64,
        input: OfferInput,
    ) -> StoreResult<Result<bool, Taken>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let updated = tx.execute(
                    "UPDATE offers SET name = ?2, description = ?3, seats = ?4, price_percent = ?5,
                         active = ?6, updated_at = ?7 WHERE id = ?1",
                    params![
                        id,
                        input.name,
                        input.description,
                        input.seats,
                        input.price_percent,
                        input.active,
                        t
                    ],
                );
                let n = match updated {
                    Err(e) if e.is_unique_violation() => return Ok(Err(Taken)),
                    r => r?,
                };
                if n == 0 {
                    return Ok(Ok(false));
                }
                audit(
                    &tx,
                    &actor,
                    "offer.update",
                    &format!("offer:{id}"),
                    &offer_detail(&input),
                    t,
                )?;
                tx.commit()?;
                Ok(Ok(true))
            })
            .await
    }

    /// Puts an offer on sale or withdraws it; false if there is none.
    pub async fn admin_set_offer_active(
        &self,
        actor: Actor,
        id: i64,
        active: bool,
    ) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let n = tx.execute(
                    "UPDATE offers SET active = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id, active, t],
                )?;
                if n == 0 {
                    return Ok(false);
                }
                let action = if active {
                    "offer.activate"
                } else {
                    "offer.deactivate"
                };
                audit(&tx, &actor, action, &format!("offer:{id}"), "", t)?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    // ----- admin: sessions

    /// Every session, by start.
    pub async fn admin_sessions(&self) -> StoreResult<Vec<SessionRow>> {
        self.pool
            .read_blocking_sql(|c| {
                c.query_map(
                    &format!(
                        "SELECT {SESSION_COLUMNS} FROM {SESSION_FROM} ORDER BY s.starts_at, s.id"
                    ),
                    params![],
                    session_from_row,
                )
            })
            .await
    }

    /// How many valid tickets a session has (its times are fixed once any
    /// exists).
    pub async fn admin_session_valid_tickets(&self, id: i64) -> StoreResult<i64> {
        self.pool
            .read_blocking_sql(move |c| tickets::valid_of_session(c, id))
            .await
    }

    /// Sports and venues, `(id, name)`, for the session form.
    pub async fn admin_sports_venues(
        &self,
    ) -> StoreResult<(Vec<(i64, String)>, Vec<(i64, String)>)> {
        self.pool
            .read_blocking_sql(|c| {
                // By name in byte order on both databases.
                let sports = c.query_map(
                    "SELECT id, name FROM sports ORDER BY name COLLATE \"binary\"",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let venues = c.query_map(
                    "SELECT id, name || ' (' || city || ')' FROM venues ORDER BY name COLLATE \"binary\"",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                Ok((sports, venues))
            })
            .await
    }

    /// Creates a session.
    pub async fn admin_create_session(
        &self,
        actor: Actor,
        input: SessionInput,
    ) -> StoreResult<Result<i64, SessionRefusal>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                if !references_exist(&tx, &input)? {
                    return Ok(Err(SessionRefusal::BadReference));
                }
                let inserted = tx.query_row(
                    "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at,
                         doors_open_at, capacity, base_price_cents, entry_rule, max_entries,
                         created_at, updated_at, entrance)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13) RETURNING id",
                    params![
                        input.code, input.sport_id, input.venue_id, input.title, input.starts_at,
                        input.ends_at, input.doors_open_at, input.capacity, input.base_price_cents,
                        input.entry_rule, input.max_entries, t, input.entrance
                    ],
                    |r| r.get::<i64>(0),
                );
                let id = match inserted {
                    Err(e) if e.is_unique_violation() => return Ok(Err(SessionRefusal::CodeTaken)),
                    r => r?,
                };
                audit(
                    &tx,
                    &actor,
                    "session.create",
                    &format!("session:{id}"),
                    &session_detail(&input),
                    t,
                )?;
                tx.commit()?;
                Ok(Ok(id))
            })
            .await
    }

    /// Edits a session; its capacity never goes below the seats sold or held.
    pub async fn admin_update_session(
        &self,
        actor: Actor,
        id: i64,
        input: SessionInput,
    ) -> StoreResult<Result<(), SessionRefusal>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let Some(current) = session_by_id(&tx, id)? else {
                    return Ok(Err(SessionRefusal::NotFound));
                };
                if current.status == SessionStatus::Cancelled {
                    return Ok(Err(SessionRefusal::Cancelled));
                }
                // Checked in the same IMMEDIATE transaction as the update, so a
                // sale cannot slip in between.
                if input.capacity < current.seats_taken {
                    return Ok(Err(SessionRefusal::BelowTaken(current.seats_taken)));
                }
                let times_change = (input.doors_open_at, input.starts_at, input.ends_at)
                    != (current.doors_open_at, current.starts_at, current.ends_at);
                if times_change {
                    // In this transaction too: no ticket can be issued in between.
                    let sold = tickets::valid_of_session(&tx, id)?;
                    if sold > 0 {
                        return Ok(Err(SessionRefusal::TimesLocked(sold)));
                    }
                }
                if !references_exist(&tx, &input)? {
                    return Ok(Err(SessionRefusal::BadReference));
                }
                let updated = tx.execute(
                    "UPDATE game_sessions SET code = ?2, sport_id = ?3, venue_id = ?4, title = ?5,
                         starts_at = ?6, ends_at = ?7, doors_open_at = ?8, capacity = ?9,
                         base_price_cents = ?10, entry_rule = ?11, max_entries = ?12, updated_at = ?13,
                         entrance = ?14
                     WHERE id = ?1",
                    params![
                        id, input.code, input.sport_id, input.venue_id, input.title, input.starts_at,
                        input.ends_at, input.doors_open_at, input.capacity, input.base_price_cents,
                        input.entry_rule, input.max_entries, t, input.entrance
                    ],
                );
                match updated {
                    Err(e) if e.is_unique_violation() => return Ok(Err(SessionRefusal::CodeTaken)),
                    r => r?,
                };
                audit(&tx, &actor, "session.update", &format!("session:{id}"), &session_detail(&input), t)?;
                tx.commit()?;
                Ok(Ok(()))
            })
            .await
    }

    /// Cancels a session: marks it cancelled, revokes every valid ticket
    /// for it (each entering the signed revocation list) and enqueues the
    /// mail `mail` renders for each buyer (from the session's title), in
    /// one transaction. `None` if there is no such scheduled session.
    pub async fn admin_cancel_session(
        &self,
        actor: Actor,
        id: i64,
        mail: CancelMail,
    ) -> StoreResult<Option<Cancelled>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let n = tx.execute(
                    "UPDATE game_sessions SET status = 'cancelled', updated_at = ?2
                     WHERE id = ?1 AND status = 'scheduled'",
                    params![id, t],
                )?;
                if n == 0 {
                    return Ok(None);
                }
                let title: String =
                    tx.query_row("SELECT title FROM game_sessions WHERE id = ?1", params![id], |r| r.get(0))?;
                let buyers = tx.query_map(
                    "SELECT u.email, u.first_name, count(*) FROM tickets t JOIN users u ON u.id = t.user_id
                     WHERE t.session_id = ?1 AND t.status = 'valid' GROUP BY u.id ORDER BY u.id",
                    params![id],
                    |r| {
                        Ok(AffectedBuyer {
                            email: r.get(0)?,
                            first_name: r.get(1)?,
                            tickets: r.get(2)?,
                        })
                    },
                )?;
                let revoked = tickets::revoke_valid_of_session(&tx, id, RevocationReason::SessionCancelled, t)?;
                for b in &buyers {
                    outbox::enqueue(&tx, &mail(&title, b), t)?;
                }
                audit(
                    &tx,
                    &actor,
                    "session.cancel",
                    &format!("session:{id}"),
                    &format!("tickets_revoked={revoked} buyers={}", buyers.len()),
                    t,
                )?;
                tx.commit()?;
                Ok(Some(Cancelled { title, revoked, buyers }))
            })
            .await
            .inspect(|_| self.wake_outbox())
    }

    /// The scheduled sessions not ended more than `grace_secs` ago.
    pub async fn gate_sessions(&self, grace_secs: i64) -> StoreResult<Vec<GateSession>> {
        self.pool
            .read_blocking_sql(move |c| gate_sessions(c, now().saturating_sub(grace_secs)))
            .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A database with one session of `capacity` seats and one pending
    /// order for `seats` of them (not yet taken); (session id, order id).
    pub(crate) fn session_and_order(
        raw: &mut rusqlite::Connection,
        capacity: i64,
        seats: i64,
    ) -> (i64, i64) {
        crate::db::migrations::apply(raw).expect("migrates");
        let c = Conn::Sqlite(raw);
        c.batch(
            "INSERT INTO sports (name) VALUES ('Judo');
             INSERT INTO venues (name, city) VALUES ('Arena', 'Paris');
             INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, role, created_at)
             VALUES ('b', 'b@x.fr', 'B', 'C', 'h', zeroblob(32), 'buyer', 0);
             INSERT INTO offers (name, seats, price_percent, created_at, updated_at)
             VALUES ('Test', 1, 100, 0, 0);",
        )
        .expect("references");
        let session: i64 = c
            .query_row(
                "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at,
                     doors_open_at, capacity, base_price_cents, entry_rule, max_entries, created_at, updated_at)
                 VALUES ('JUD99', 1, 1, 'Judo', 2000000000, 2000003600, 1999998000, ?1, 1000, 'single', 1, 0, 0)
                 RETURNING id",
                params![capacity],
                |r| r.get(0),
            )
            .expect("session");
        let order: i64 = c
            .query_row(
                "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at)
                 VALUES ('AAAAA-AAAAA', 1, 'pending', 0, 0, 600) RETURNING id",
                params![],
                |r| r.get(0),
            )
            .expect("order");
        c.execute(
            "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents)
             VALUES (?1, ?2, (SELECT id FROM offers WHERE name = 'Test'), 'Test', 1, ?3, 0)",
            params![order, session, seats],
        )
        .expect("line");
        (session, order)
    }

    fn taken(c: &Conn<'_>, session: i64) -> i64 {
        c.query_row(
            "SELECT seats_taken FROM game_sessions WHERE id = ?1",
            params![session],
            |r| r.get(0),
        )
        .expect("reads")
    }

    #[test]
    fn the_session_column_count_matches_the_columns() {
        assert_eq!(SESSION_COLUMNS.split(',').count(), SESSION_COLUMN_COUNT);
    }

    #[test]
    fn seats_are_taken_within_capacity_and_released_once() {
        let mut raw = rusqlite::Connection::open_in_memory().expect("opens");
        let (session, order) = session_and_order(&mut raw, 10, 4);
        let c = Conn::Sqlite(&raw);
        assert!(take_seats(&c, &[(session, 4)]).expect("takes").is_empty());
        assert_eq!(
            take_seats(&c, &[(session, 7)]).expect("runs"),
            vec![0],
            "the guard refuses more than capacity"
        );
        assert_eq!(taken(&c, session), 4);
        release_seats(&c, order, Lines::All).expect("releases");
        assert_eq!(taken(&c, session), 0);
        // A second release is a miscount: refused by the schema, not
        // clamped at 0, and nothing changes.
        assert!(release_seats(&c, order, Lines::All).is_err());
        assert_eq!(taken(&c, session), 0);
    }
}
