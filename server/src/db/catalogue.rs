//! The programme seen by the shop: sports, venues, sessions, offers, and the
//! idempotent loader of the seed programme.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{Store, StoreResult, now};

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
    /// `scheduled` or `cancelled`.
    pub status: String,
}

impl SessionRow {
    /// Seats still for sale.
    pub fn seats_left(&self) -> i64 {
        (self.capacity - self.seats_taken).max(0)
    }

    /// Whether tickets can be bought now: scheduled, not started.
    pub fn on_sale(&self, now: i64) -> bool {
        self.status == "scheduled" && self.starts_at > now
    }
}

/// The columns of [`SessionRow`], for `session_from_row`.
pub(super) const SESSION_COLUMNS: &str = "s.id, s.code, s.sport_id, sp.name, s.venue_id, v.name, v.city, s.title, \
     s.starts_at, s.ends_at, s.doors_open_at, s.capacity, s.seats_taken, s.base_price_cents, s.status";
/// The joins of [`SESSION_COLUMNS`].
pub(super) const SESSION_FROM: &str = "game_sessions s JOIN sports sp ON sp.id = s.sport_id \
     JOIN venues v ON v.id = s.venue_id";

pub(super) fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
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

fn offer_from_row(r: &Row<'_>) -> rusqlite::Result<OfferRow> {
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
pub fn meta_get(c: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(
        c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?,
    )
}

fn id_of_or_insert(
    c: &Connection,
    table: &str,
    name: &str,
    city: Option<&str>,
) -> StoreResult<i64> {
    // `table` is one of our two literals below, never user input.
    let found: Option<i64> = c
        .query_row(
            &format!("SELECT id FROM {table} WHERE name = ?1"),
            [name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    match city {
        Some(city) => c.execute(
            "INSERT INTO venues (name, city) VALUES (?1, ?2)",
            params![name, city],
        )?,
        None => c.execute("INSERT INTO sports (name) VALUES (?1)", [name])?,
    };
    Ok(c.last_insert_rowid())
}

/// Takes the seats of an order's lines (`(session, seats)` pairs): the seat
/// guard. Each session's seats are taken by one guarded
/// `UPDATE … WHERE seats_taken + n <= capacity` of a scheduled session, so
/// no session is ever oversold.
/// Returns the indexes of the pairs that found too few seats; the caller
/// then rolls back what the others took.
pub(super) fn take_seats(tx: &Connection, lines: &[(i64, i64)]) -> StoreResult<Vec<usize>> {
    let mut failed = Vec::new();
    let mut st = tx.prepare_cached(
        "UPDATE game_sessions SET seats_taken = seats_taken + ?2
         WHERE id = ?1 AND status = 'scheduled' AND seats_taken + ?2 <= capacity",
    )?;
    for (i, (session_id, seats)) in lines.iter().enumerate() {
        if st.execute(params![session_id, seats])? == 0 {
            failed.push(i);
        }
    }
    Ok(failed)
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
pub(super) fn release_seats(tx: &Connection, order_id: i64) -> StoreResult<()> {
    tx.prepare_cached(
        "UPDATE game_sessions SET seats_taken = seats_taken - (
             SELECT sum(seats * quantity) FROM order_lines WHERE order_id = ?1 AND session_id = game_sessions.id)
         WHERE id IN (SELECT session_id FROM order_lines WHERE order_id = ?1)",
    )?
    .execute([order_id])?;
    Ok(())
}

impl Store {
    /// The first day of the Games (days since 1970-01-01), fixed at the
    /// first call to `default_days` and kept in `meta` so restarts do not move it.
    pub async fn games_first_day(&self, default_days: i64) -> StoreResult<i64> {
        self.pool
            .run(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let day = match meta_get(&tx, "games_first_day")? {
                    Some(v) => v.parse::<i64>().unwrap_or(default_days),
                    None => {
                        tx.execute(
                            "INSERT INTO meta (key, value) VALUES ('games_first_day', ?1)",
                            [default_days.to_string()],
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
            .run(move |c| {
                let t = now();
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut report = LoadReport::default();
                for s in &sessions {
                    let exists: Option<i64> = tx
                        .query_row("SELECT id FROM game_sessions WHERE code = ?1", [&s.code], |r| {
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
                             created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
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
                            t
                        ],
                    )?;
                    report.sessions += 1;
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
            .read(move |c| {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM {SESSION_FROM}
                     WHERE s.status = 'scheduled' AND s.ends_at > ?1
                       AND (?2 IS NULL OR s.sport_id = ?2)
                       AND (?3 IS NULL OR s.venue_id = ?3)
                       AND (?4 IS NULL OR (s.starts_at >= ?4 AND s.starts_at < ?5))
                     ORDER BY s.starts_at, s.id LIMIT 500"
                );
                let mut st = c.prepare_cached(&sql)?;
                let (from, to) = filter.window.unzip();
                let rows = st
                    .query_map(
                        params![now(), filter.sport_id, filter.venue_id, from, to],
                        session_from_row,
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// The filters' choices: sports, venues and days with upcoming sessions.
    pub async fn catalogue_facets(&self) -> StoreResult<Facets> {
        self.pool
            .read(move |c| {
                let t = now();
                let mut f = Facets::default();
                let mut st = c.prepare_cached(
                    "SELECT DISTINCT sp.id, sp.name FROM game_sessions s JOIN sports sp ON sp.id = s.sport_id
                     WHERE s.status = 'scheduled' AND s.ends_at > ?1 ORDER BY sp.name",
                )?;
                f.sports = st
                    .query_map([t], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let mut st = c.prepare_cached(
                    "SELECT DISTINCT v.id, v.name FROM game_sessions s JOIN venues v ON v.id = s.venue_id
                     WHERE s.status = 'scheduled' AND s.ends_at > ?1 ORDER BY v.name",
                )?;
                f.venues = st
                    .query_map([t], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let mut st = c.prepare_cached(
                    "SELECT starts_at FROM game_sessions
                     WHERE status = 'scheduled' AND ends_at > ?1 ORDER BY starts_at",
                )?;
                f.starts = st.query_map([t], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(f)
            })
            .await
    }

    /// A session by id (any status).
    pub async fn game_session(&self, id: i64) -> StoreResult<Option<SessionRow>> {
        self.pool
            .read(move |c| {
                let sql = format!("SELECT {SESSION_COLUMNS} FROM {SESSION_FROM} WHERE s.id = ?1");
                Ok(c.prepare_cached(&sql)?
                    .query_row([id], session_from_row)
                    .optional()?)
            })
            .await
    }

    /// Offers on sale, fewest seats first.
    pub async fn active_offers(&self) -> StoreResult<Vec<OfferRow>> {
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, name, description, seats, price_percent, active FROM offers
                     WHERE active = 1 ORDER BY seats, name",
                )?;
                Ok(st
                    .query_map([], offer_from_row)?
                    .collect::<Result<_, _>>()?)
            })
            .await
    }

    /// An offer by id (active or not).
    pub async fn offer(&self, id: i64) -> StoreResult<Option<OfferRow>> {
        self.pool
            .run(move |c| {
                Ok(c.prepare_cached(
                    "SELECT id, name, description, seats, price_percent, active FROM offers WHERE id = ?1",
                )?
                .query_row([id], offer_from_row)
                .optional()?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with one session of `capacity` seats and one pending
    /// order for `seats` of them (not yet taken); (session id, order id).
    fn session_and_order(c: &mut Connection, capacity: i64, seats: i64) -> (i64, i64) {
        crate::db::migrations::apply(c).expect("migrates");
        c.execute_batch(
            "INSERT INTO sports (name) VALUES ('Judo');
             INSERT INTO venues (name, city) VALUES ('Arena', 'Paris');
             INSERT INTO users (username, email, first_name, last_name, password_hash, user_key, role, created_at)
             VALUES ('b', 'b@x.fr', 'B', 'C', 'h', zeroblob(32), 'buyer', 0);
             INSERT INTO offers (name, seats, price_percent, created_at, updated_at)
             VALUES ('Test', 1, 100, 0, 0);",
        )
        .expect("references");
        c.execute(
            "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at,
                 doors_open_at, capacity, base_price_cents, entry_rule, max_entries, created_at, updated_at)
             VALUES ('JUD99', 1, 1, 'Judo', 2000000000, 2000003600, 1999998000, ?1, 1000, 'single', 1, 0, 0)",
            [capacity],
        )
        .expect("session");
        let session = c.last_insert_rowid();
        c.execute(
            "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at)
             VALUES ('AAAAA-AAAAA', 1, 'pending', 0, 0, 600)",
            [],
        )
        .expect("order");
        let order = c.last_insert_rowid();
        c.execute(
            "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents)
             VALUES (?1, ?2, (SELECT id FROM offers WHERE name = 'Test'), 'Test', 1, ?3, 0)",
            params![order, session, seats],
        )
        .expect("line");
        (session, order)
    }

    fn taken(c: &Connection, session: i64) -> i64 {
        c.query_row(
            "SELECT seats_taken FROM game_sessions WHERE id = ?1",
            [session],
            |r| r.get(0),
        )
        .expect("reads")
    }

    #[test]
    fn seats_are_taken_within_capacity_and_released_once() {
        let mut c = Connection::open_in_memory().expect("opens");
        let (session, order) = session_and_order(&mut c, 10, 4);
        assert!(take_seats(&c, &[(session, 4)]).expect("takes").is_empty());
        assert_eq!(
            take_seats(&c, &[(session, 7)]).expect("runs"),
            vec![0],
            "the guard refuses more than capacity"
        );
        assert_eq!(taken(&c, session), 4);
        release_seats(&c, order).expect("releases");
        assert_eq!(taken(&c, session), 0);
        // A second release is a miscount: refused by the schema, not
        // clamped at 0, and nothing changes.
        assert!(release_seats(&c, order).is_err());
        assert_eq!(taken(&c, session), 0);
    }
}
