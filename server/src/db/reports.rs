//! Reports: the console's read-only figures, the sales dashboard (from the
//! rollup tables of migration 6, `sales_daily`, `scan_totals`,
//! `scan_hours`, maintained by triggers, so it stays fast on millions of
//! rows) and the CSV exports, streamed on a connection of their own.

use super::sql::{Conn, Row, ToValue, params};
use super::{Store, StoreError, StoreResult, tickets};
use crate::units::money::cents_plain;
use crate::units::status::SessionStatus;
use crate::units::time::iso_utc;

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
    pub status: SessionStatus,
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

/// Streams the rows of an export's query to `sink` as records, then
/// `None`; stops early, without the `None`, when `sink` returns false (the
/// reader went away), dropping the rest of the query's rows unread.
fn export(
    c: &Conn<'_>,
    sql: &str,
    params: &[&dyn ToValue],
    sink: &mut impl FnMut(Option<Vec<String>>) -> bool,
    record: impl Fn(&Row<'_>) -> StoreResult<Vec<String>>,
) -> StoreResult<()> {
    let mut gone = false;
    let streamed = c.for_each(sql, params, |r| {
        if sink(Some(record(r)?)) {
            Ok(())
        } else {
            // Ends the query: the error is not reported, `gone` says why.
            gone = true;
            Err(StoreError::Task("the export's reader went away".into()))
        }
    });
    if gone {
        return Ok(());
    }
    streamed?;
    sink(None);
    Ok(())
}

impl Store {
    /// Sales per offer, session, sport and day, from the rollup.
    pub async fn admin_dashboard(&self) -> StoreResult<Dashboard> {
        self.pool
            .read_blocking_sql(|c| {
                // Offers by name as SQLite's NOCASE orders them, on both databases.
                let offers = c.query_map(
                    "SELECT o.name, o.active, coalesce(sum(s.tickets), 0), coalesce(sum(s.seats), 0),
                            coalesce(sum(s.revenue_cents), 0)
                     FROM offers o LEFT JOIN sales_daily s ON s.offer_id = o.id
                     GROUP BY o.id ORDER BY o.seats, lower(o.name COLLATE \"binary\")",
                    params![],
                    |r| {
                        Ok(OfferSales {
                            name: r.get(0)?,
                            active: r.get::<i64>(1)? == 1,
                            tickets: r.get(2)?,
                            seats: r.get(3)?,
                            revenue_cents: r.get(4)?,
                        })
                    },
                )?;
                let sessions: Vec<SessionSales> = c.query_map(
                    "SELECT g.id, g.code, g.title, sp.name, g.starts_at, g.status, g.capacity,
                            coalesce(x.tickets, 0), coalesce(x.seats, 0), coalesce(x.revenue, 0)
                     FROM game_sessions g JOIN sports sp ON sp.id = g.sport_id
                     LEFT JOIN (SELECT session_id, sum(tickets) AS tickets, sum(seats) AS seats,
                                       sum(revenue_cents) AS revenue
                                FROM sales_daily GROUP BY session_id) x ON x.session_id = g.id
                     ORDER BY g.starts_at, g.id",
                    params![],
                    |r| {
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
                    },
                )?;
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
                let days = c.query_map(
                    "SELECT day, sum(tickets), sum(revenue_cents) FROM sales_daily
                     GROUP BY day ORDER BY day",
                    params![],
                    |r| {
                        Ok(DaySales {
                            day: r.get(0)?,
                            tickets: r.get(1)?,
                            revenue_cents: r.get(2)?,
                        })
                    },
                )?;
                Ok(Dashboard {
                    offers,
                    sessions,
                    sports,
                    days,
                })
            })
            .await
    }

    /// Streams the scans (of one session, or all) as records to `sink`,
    /// oldest first, then `None`, on a connection of its own (a long export
    /// must not hold one of the pool's). `sink` returns false when the
    /// reader went away.
    pub async fn admin_export_scans(
        &self,
        session: Option<i64>,
        mut sink: impl FnMut(Option<Vec<String>>) -> bool + Send + 'static,
    ) -> StoreResult<()> {
        self.pool
            .read_own_sql(move |c| {
                export(
                    c,
                    "SELECT s.id, s.scan_id, s.device_id, d.label, s.gate, s.session_id, s.ticket_id,
                            s.verdict, coalesce(s.reason, ''), s.admits, s.scanned_at, s.received_at
                     FROM scans s JOIN devices d ON d.id = s.device_id
                     WHERE (?1 = -1 OR s.session_id = ?1) ORDER BY s.id",
                    params![session.unwrap_or(-1)],
                    &mut sink,
                    |r| {
                        Ok(vec![
                            r.get::<i64>(0)?.to_string(),
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get::<Option<i64>>(5)?
                                .map(|v| v.to_string())
                                .unwrap_or_default(),
                            tickets::ticket_hex(r.get(6)?).unwrap_or_default(),
                            r.get(7)?,
                            r.get(8)?,
                            r.get::<i64>(9)?.to_string(),
                            iso_utc(r.get(10)?),
                            iso_utc(r.get(11)?),
                        ])
                    },
                )
            })
            .await
    }

    /// Streams sales (one record per order line of paid and refunded
    /// orders) to `sink`, like [`Store::admin_export_scans`].
    pub async fn admin_export_sales(
        &self,
        mut sink: impl FnMut(Option<Vec<String>>) -> bool + Send + 'static,
    ) -> StoreResult<()> {
        self.pool
            .read_own_sql(move |c| {
                export(
                    c,
                    "SELECT o.number, o.status, o.paid_at, o.refunded_at, u.email,
                            u.first_name || ' ' || u.last_name, g.code, g.title, ol.offer_name, ol.seats,
                            ol.quantity, ol.unit_price_cents
                     FROM order_lines ol JOIN orders o ON o.id = ol.order_id JOIN users u ON u.id = o.user_id
                     JOIN game_sessions g ON g.id = ol.session_id
                     WHERE o.status IN ('paid', 'refunded') ORDER BY o.id, ol.id",
                    params![],
                    &mut sink,
                    |r| {
                        let quantity: i64 = r.get(10)?;
                        let unit: i64 = r.get(11)?;
                        Ok(vec![
                            r.get(0)?,
                            r.get(1)?,
                            r.get::<Option<i64>>(2)?.map(iso_utc).unwrap_or_default(),
                            r.get::<Option<i64>>(3)?.map(iso_utc).unwrap_or_default(),
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get::<i64>(9)?.to_string(),
                            quantity.to_string(),
                            cents_plain(unit),
                            cents_plain(unit.saturating_mul(quantity)),
                        ])
                    },
                )
            })
            .await
    }
}
