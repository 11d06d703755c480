//! The dashboard: sales per offer (charts), per session (with fill rate)
//! and per sport, and sales over time — all read from the sales rollup.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::chart::{BarChart, ColumnChart};
use super::{Admin, fmt_time, money};
use crate::db::reports::{SessionSales, SportSales};
use crate::error::Result;
use crate::state::AppState;
use crate::units::status::SessionStatus;
use crate::web::ctx::PageCtx;
use crate::web::pages::render;

/// Days shown in the sales-over-time chart.
const DAYS_SHOWN: usize = 60;

/// A session row with display strings.
pub(super) struct SessionLine {
    s: SessionSales,
    starts: String,
    revenue: String,
    /// Seats sold per thousand seats of capacity (for the meter).
    fill_permille: i64,
    fill: String,
}

/// A sport row with display strings.
pub(super) struct SportLine {
    s: SportSales,
    revenue: String,
    fill: String,
}

/// `/admin`.
#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage<'a> {
    ctx: &'a PageCtx,
    tickets_total: i64,
    revenue_total: String,
    offers_tickets: BarChart,
    offers_revenue: BarChart,
    over_time: ColumnChart,
    sports_chart: BarChart,
    sports: Vec<SportLine>,
    sessions: Vec<SessionLine>,
}

/// `12.5 %` from a part and a whole.
fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "—".to_owned();
    }
    let tenths = part.saturating_mul(1000) / whole;
    format!("{},{} %", tenths / 10, tenths % 10)
}

/// `GET /admin`.
pub(super) async fn page(
    _admin: Admin,
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response> {
    let d = state.store.admin_dashboard().await?;
    let tickets_total = d.offers.iter().map(|o| o.tickets).sum();
    let revenue_total = money(d.offers.iter().map(|o| o.revenue_cents).sum());
    let offers_tickets = BarChart::new(
        ctx.t("admin.dash.chart_offer_tickets").to_owned(),
        d.offers
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    o.tickets,
                    format!("{} · {} {}", o.tickets, o.seats, ctx.t("admin.dash.seats")),
                )
            })
            .collect(),
    );
    let offers_revenue = BarChart::new(
        ctx.t("admin.dash.chart_offer_revenue").to_owned(),
        d.offers
            .iter()
            .map(|o| (o.name.clone(), o.revenue_cents, money(o.revenue_cents)))
            .collect(),
    );
    let over_time = ColumnChart::new(
        ctx.t("admin.dash.chart_over_time").to_owned(),
        d.days
            .iter()
            .map(|p| {
                let (y, m, day) = crate::units::time::civil_from_days(p.day);
                (
                    format!("{y:04}-{m:02}-{day:02}"),
                    p.tickets,
                    format!("{} · {}", p.tickets, money(p.revenue_cents)),
                )
            })
            .collect(),
        DAYS_SHOWN,
    );
    let sports_chart = BarChart::new(
        ctx.t("admin.dash.chart_sports").to_owned(),
        // Sports with sales, best first (the store sorts them); those with
        // none stay in the table below but would only be empty rows here.
        d.sports
            .iter()
            .filter(|s| s.revenue_cents > 0)
            .take(12)
            .map(|s| (s.sport.clone(), s.revenue_cents, money(s.revenue_cents)))
            .collect(),
    );
    let sports = d
        .sports
        .into_iter()
        .map(|s| SportLine {
            revenue: money(s.revenue_cents),
            fill: percent(s.seats, s.capacity),
            s,
        })
        .collect();
    let sessions = d
        .sessions
        .into_iter()
        .map(|s| SessionLine {
            starts: fmt_time(s.starts_at),
            revenue: money(s.revenue_cents),
            fill_permille: if s.capacity > 0 {
                (s.seats.saturating_mul(1000) / s.capacity).clamp(0, 1000)
            } else {
                0
            },
            fill: percent(s.seats, s.capacity),
            s,
        })
        .collect();
    render(
        StatusCode::OK,
        &DashboardPage {
            ctx: &ctx,
            tickets_total,
            revenue_total,
            offers_tickets,
            offers_revenue,
            over_time,
            sports_chart,
            sports,
            sessions,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn fill_rates_read_in_french() {
        assert_eq!(percent(1, 8), "12,5 %");
        assert_eq!(percent(5, 0), "—");
        assert_eq!(percent(80_000, 80_000), "100,0 %");
    }
}
