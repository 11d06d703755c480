//! The catalogue: the list of sessions with its filters, and a session's page.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::db::catalogue::{OfferRow, SessionFilter, SessionRow};
use crate::error::{AppError, Result};
use crate::i18n::Lang;
use crate::shop::{hm, when};
use crate::state::AppState;
use crate::units::money::{Cents, offer_price};
use crate::units::time::now;
use crate::units::time::{paris, paris_to_utc, parse_iso_date};
use crate::web::ctx::PageCtx;
use crate::web::pages::render;

use super::parse_id;

/// A session as the list and the page show it.
pub struct SessionCard {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Sport.
    pub sport: String,
    /// Venue.
    pub venue: String,
    /// City.
    pub city: String,
    /// "samedi 3 août 2024, 19:30".
    pub when: String,
    /// Doors open "18:00".
    pub doors: String,
    /// `datetime` attribute value (UTC, ISO 8601).
    pub datetime: String,
    /// Seats left.
    pub seats_left: i64,
    /// Capacity.
    pub capacity: i64,
    /// Whether it can be bought now.
    pub on_sale: bool,
    /// Lowest price of a seat among active offers.
    pub from_price: String,
    /// Whether few seats are left (under 5 %).
    pub few_left: bool,
}

fn iso_utc(t: i64) -> String {
    let (y, m, d) = crate::units::time::civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:00Z",
        s / 3600,
        s % 3600 / 60
    )
}

fn card(s: &SessionRow, offers: &[OfferRow], lang: Lang, t: i64) -> SessionCard {
    let min_percent = offers.iter().map(|o| o.price_percent).min().unwrap_or(100);
    SessionCard {
        id: s.id,
        title: s.title.clone(),
        sport: s.sport.clone(),
        venue: s.venue.clone(),
        city: s.city.clone(),
        when: when(s.starts_at, lang),
        doors: hm(s.doors_open_at),
        datetime: iso_utc(s.starts_at),
        seats_left: s.seats_left(),
        capacity: s.capacity,
        on_sale: s.on_sale(t) && s.seats_left() > 0,
        from_price: offer_price(s.base_price_cents, 1, min_percent)
            .unwrap_or_default()
            .fr(),
        few_left: s.seats_left() * 20 < s.capacity,
    }
}

/// An option of a filter.
pub struct Choice {
    /// Value.
    pub value: String,
    /// Label.
    pub label: String,
    /// Whether selected.
    pub selected: bool,
}

/// `/sessions`.
#[derive(Template)]
#[template(path = "shop/sessions.html")]
pub struct SessionsPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Sessions shown.
    pub sessions: Vec<SessionCard>,
    /// Sport choices.
    pub sports: Vec<Choice>,
    /// Venue choices.
    pub venues: Vec<Choice>,
    /// Day choices.
    pub dates: Vec<Choice>,
    /// Whether a filter is on.
    pub filtered: bool,
}

/// The list's query string; junk values are ignored, not errors.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    sport: String,
    #[serde(default)]
    venue: String,
    #[serde(default)]
    date: String,
}

/// `GET /sessions?sport=&date=&venue=`.
pub async fn list(
    State(state): State<AppState>,
    ctx: PageCtx,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response> {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let sport_id = parse_id(&q.sport);
    let venue_id = parse_id(&q.venue);
    let day = parse_iso_date(&q.date);
    let filter = SessionFilter {
        sport_id,
        venue_id,
        window: day.map(|d| (paris_to_utc(d, 0), paris_to_utc(d + 1, 0))),
    };
    let (sessions, facets, offers) = tokio::try_join!(
        state.store.list_sessions(filter),
        state.store.catalogue_facets(),
        state.store.active_offers()
    )?;
    let t = now();
    let fr = ctx.lang == Lang::Fr;
    let mut dates: Vec<Choice> = Vec::new();
    for s in &facets.starts {
        let l = paris(*s);
        let value = l.iso_date();
        if dates.last().is_none_or(|c| c.value != value) {
            dates.push(Choice {
                selected: Some(l.days) == day,
                label: l.date_long(fr),
                value,
            });
        }
    }
    let choices = |items: Vec<(i64, String)>, chosen: Option<i64>| -> Vec<Choice> {
        items
            .into_iter()
            .map(|(id, name)| Choice {
                value: id.to_string(),
                label: name,
                selected: Some(id) == chosen,
            })
            .collect()
    };
    let page = SessionsPage {
        ctx: &ctx,
        sessions: sessions
            .iter()
            .map(|s| card(s, &offers, ctx.lang, t))
            .collect(),
        sports: choices(facets.sports, sport_id),
        venues: choices(facets.venues, venue_id),
        dates,
        filtered: sport_id.is_some() || venue_id.is_some() || day.is_some(),
    };
    render(StatusCode::OK, &page)
}

/// An offer on a session's page.
pub struct OfferCard {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// People admitted.
    pub seats: i64,
    /// Price of one ticket.
    pub price: String,
    /// Whether enough seats are left for one ticket.
    pub available: bool,
}

/// `/sessions/{id}`.
#[derive(Template)]
#[template(path = "shop/session.html")]
pub struct SessionPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// The session.
    pub s: SessionCard,
    /// Its offers.
    pub offers: Vec<OfferCard>,
    /// Message key of a notice, or empty.
    pub notice: &'static str,
    /// Kind of the notice.
    pub notice_kind: &'static str,
    /// Tickets on resale at face value: (listing id, offer, admits, price
    /// with the buyer's fee).
    pub resale: Vec<(i64, String, i64, String)>,
}

/// The session page's query string.
#[derive(Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    refused: String,
}

/// Message key of a cart refusal code carried back in the URL.
pub fn refusal_key(code: &str) -> &'static str {
    match code {
        "sold_out" => "cart.err_sold_out",
        "offer" => "cart.err_offer_inactive",
        "closed" => "cart.err_session_closed",
        "full" => "cart.err_full",
        "quantity" => "cart.err_quantity",
        _ => "",
    }
}

/// `GET /sessions/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    q: Result<Query<DetailQuery>, QueryRejection>,
) -> Result<Response> {
    let id = parse_id(&id).ok_or(AppError::NotFound)?;
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let (session, offers, listings) = tokio::try_join!(
        state.store.game_session(id),
        state.store.active_offers(),
        state.store.session_listings(id)
    )?;
    let session = session.ok_or(AppError::NotFound)?;
    let t = now();
    let s = card(&session, &offers, ctx.lang, t);
    let offers = offers
        .iter()
        .map(|o| OfferCard {
            id: o.id,
            name: o.name.clone(),
            description: o.description.clone(),
            seats: o.seats,
            price: offer_price(session.base_price_cents, o.seats, o.price_percent)
                .map(Cents::fr)
                .unwrap_or_default(),
            available: s.on_sale && session.seats_left() >= o.seats,
        })
        .collect();
    let notice = refusal_key(&q.refused);
    let shop = state.config.shop;
    let resale = if s.on_sale || session.starts_at > t {
        listings
            .into_iter()
            .map(|l| {
                let price = crate::db::resale::buyer_price(l.face_cents, &shop);
                (l.id, l.offer, l.admits, Cents(price).fr())
            })
            .collect()
    } else {
        Vec::new()
    };
    render(
        StatusCode::OK,
        &SessionPage {
            ctx: &ctx,
            s,
            offers,
            notice,
            notice_kind: "error",
            resale,
        },
    )
}
