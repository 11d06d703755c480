//! The cart, for anonymous visitors (a random cookie, stored as its SHA-256)
//! and logged-in buyers. A visitor's cart is merged into the buyer's cart on
//! the first shop page after login, however the login went (password only
//! or with a second factor).

use askama::Template;
use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::tokens::{hash_token, is_token_shaped, random_token};
use crate::db::orders::{
    CartLine, CartOwner, CartRefusal, LineProblem, MAX_LINE_QUANTITY, ProblemKind,
};
use crate::error::{AppError, Result};
use crate::shop::when;
use crate::state::AppState;
use crate::units::money::Cents;
use crate::units::time::now;
use crate::web::cookies;
use crate::web::ctx::PageCtx;
use crate::web::pages::render;
use crate::web::session::MaybeUser;

use super::parse_id;

/// Lifetime of the anonymous cart cookie.
const CART_COOKIE_SECS: i64 = 30 * 24 * 3600;

/// The cart cookie's name (`__Host-` over https, like the other cookies).
pub fn cart_cookie_name(state: &AppState) -> &'static str {
    if state.https {
        "__Host-jo_cart"
    } else {
        "jo_cart"
    }
}

/// The cart of this request, merging a visitor's cart into the buyer's
/// after login. Returns the owner (none: an anonymous visitor without a
/// cart yet) and the cookies to set.
pub async fn owner(
    state: &AppState,
    headers: &HeaderMap,
    user: Option<i64>,
) -> Result<(Option<CartOwner>, Vec<HeaderValue>)> {
    let anon = cookies::get(headers, cart_cookie_name(state))
        .filter(|v| is_token_shaped(v))
        .map(hash_token);
    match (user, anon) {
        (Some(u), Some(h)) => {
            let moved = state.store.cart_merge(h, u).await?;
            if moved > 0 {
                tracing::info!(user_id = u, lines = moved, "visitor's cart kept at login");
            }
            Ok((
                Some(CartOwner::User(u)),
                vec![cookies::clear(cart_cookie_name(state), state.https)],
            ))
        }
        (Some(u), None) => Ok((Some(CartOwner::User(u)), Vec::new())),
        (None, Some(h)) => Ok((Some(CartOwner::Anonymous(h)), Vec::new())),
        (None, None) => Ok((None, Vec::new())),
    }
}

fn with_cookies(mut res: Response, set: Vec<HeaderValue>) -> Response {
    for c in set {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// A cart line as shown.
pub struct LineView {
    /// Session id.
    pub session_id: i64,
    /// Offer id.
    pub offer_id: i64,
    /// Session title.
    pub title: String,
    /// Sport.
    pub sport: String,
    /// Venue.
    pub venue: String,
    /// Date.
    pub when: String,
    /// Offer name.
    pub offer: String,
    /// People per ticket.
    pub seats: i64,
    /// Tickets.
    pub quantity: i64,
    /// Unit price.
    pub unit_price: String,
    /// Line total.
    pub total: String,
    /// Message key of what prevents buying it, or empty.
    pub problem: &'static str,
    /// Seats left in the session.
    pub seats_left: i64,
    /// The resale listing the line buys (one ticket, no quantity), or 0.
    pub listing: i64,
}

/// `/cart`.
#[derive(Template)]
#[template(path = "shop/cart.html")]
pub struct CartPage<'a> {
    /// Page context.
    pub ctx: &'a PageCtx,
    /// Lines.
    pub lines: Vec<LineView>,
    /// Total of the lines that can be bought.
    pub total: String,
    /// Whether a buyer is logged in.
    pub logged_in: bool,
    /// Whether every line can be bought.
    pub can_checkout: bool,
    /// Message key of a notice, or empty.
    pub notice: &'static str,
    /// A number shown after the notice (the limit a refused checkout hit).
    pub notice_limit: Option<i64>,
    /// Kind of the notice.
    pub notice_kind: &'static str,
    /// Problems found at checkout.
    pub problems: Vec<ProblemView>,
    /// Largest quantity per line.
    pub max_quantity: i64,
}

/// A checkout problem as shown.
pub struct ProblemView {
    /// Session title.
    pub title: String,
    /// Offer.
    pub offer: String,
    /// Message key.
    pub key: &'static str,
    /// Seats left, for sold-out lines.
    pub left: Option<i64>,
}

impl From<&LineProblem> for ProblemView {
    fn from(p: &LineProblem) -> Self {
        let (key, left) = match p.kind {
            ProblemKind::SoldOut { left } => ("cart.err_sold_out", Some(left)),
            ProblemKind::OfferInactive => ("cart.err_offer_inactive", None),
            ProblemKind::SessionClosed => ("cart.err_session_closed", None),
            ProblemKind::SessionLimit { .. } => ("cart.err_session_limit", None),
            ProblemKind::ResaleGone => ("cart.err_resale_gone", None),
        };
        Self {
            title: p.title.clone(),
            offer: p.offer.clone(),
            key,
            left,
        }
    }
}

fn line_problem(l: &CartLine, t: i64) -> &'static str {
    if !l.session.on_sale(t) {
        "cart.err_session_closed"
    } else if let Some(x) = l.listing {
        // A resale ticket has its seat: only whether it is still on sale counts.
        if x.on_sale {
            ""
        } else {
            "cart.err_resale_gone"
        }
    } else if !l.offer_active {
        "cart.err_offer_inactive"
    } else if l.session.seats_left() < l.seats_needed() {
        "cart.err_sold_out"
    } else {
        ""
    }
}

/// A notice on the cart page: a message key (or empty) and, for a checkout
/// refused over a buyer's limits, the limit, shown after the message.
#[derive(Clone, Copy, Debug, Default)]
pub struct Notice {
    /// Message key, or empty.
    pub key: &'static str,
    /// The number shown after the message.
    pub limit: Option<i64>,
}

impl From<&'static str> for Notice {
    fn from(key: &'static str) -> Self {
        Self { key, limit: None }
    }
}

/// Renders the cart page.
pub async fn cart_page(
    state: &AppState,
    ctx: &PageCtx,
    owner: Option<CartOwner>,
    logged_in: bool,
    status: StatusCode,
    notice: Notice,
    problems: &[LineProblem],
) -> Result<Response> {
    let lines = match owner {
        Some(o) => state.store.cart(o, state.config.shop).await?,
        None => Vec::new(),
    };
    let t = now();
    let mut total: i64 = 0;
    let views: Vec<LineView> = lines
        .iter()
        .map(|l| {
            let problem = line_problem(l, t);
            if problem.is_empty() {
                total = total.saturating_add(l.total_cents());
            }
            LineView {
                session_id: l.session.id,
                offer_id: l.offer_id,
                title: l.session.title.clone(),
                sport: l.session.sport.clone(),
                venue: l.session.venue.clone(),
                when: when(l.session.starts_at, ctx.lang),
                offer: l.offer_name.clone(),
                seats: l.offer_seats,
                quantity: l.quantity,
                unit_price: Cents(l.unit_price_cents).fr(),
                total: Cents(l.total_cents()).fr(),
                problem,
                seats_left: l.session.seats_left(),
                listing: l.listing.map_or(0, |x| x.id),
            }
        })
        .collect();
    let can_checkout = !views.is_empty() && views.iter().all(|v| v.problem.is_empty());
    render(
        status,
        &CartPage {
            ctx,
            can_checkout,
            lines: views,
            total: Cents(total).fr(),
            logged_in,
            notice: notice.key,
            notice_limit: notice.limit,
            notice_kind: if status.is_success() {
                "success"
            } else {
                "error"
            },
            problems: problems.iter().map(ProblemView::from).collect(),
            max_quantity: MAX_LINE_QUANTITY,
        },
    )
}

/// The cart page's query string (what was just done).
#[derive(Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    added: String,
    #[serde(default)]
    updated: String,
}

/// `GET /cart`.
pub async fn show(
    State(state): State<AppState>,
    ctx: PageCtx,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    q: Result<Query<ShowQuery>, QueryRejection>,
) -> Result<Response> {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let notice = if !q.added.is_empty() {
        "cart.added"
    } else if !q.updated.is_empty() {
        "cart.updated"
    } else {
        ""
    };
    let uid = user.as_ref().map(|u| u.user.id);
    let (owner, set) = owner(&state, &headers, uid).await?;
    let res = cart_page(
        &state,
        &ctx,
        owner,
        uid.is_some(),
        StatusCode::OK,
        notice.into(),
        &[],
    )
    .await?;
    Ok(with_cookies(res, set))
}

/// A cart form.
#[derive(Deserialize)]
pub struct LineForm {
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    offer_id: String,
    #[serde(default)]
    quantity: String,
    /// A resale listing's id (the remove form of a resale line).
    #[serde(default)]
    listing: String,
}

fn quantity_of(s: &str) -> Result<i64> {
    let q: i64 = s.trim().parse().map_err(|_| AppError::BadRequest)?;
    if (0..=MAX_LINE_QUANTITY).contains(&q) {
        Ok(q)
    } else {
        Err(AppError::BadRequest)
    }
}

/// `POST /cart/add`: back to the cart, or to the session with the reason.
pub async fn add(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    Form(f): Form<LineForm>,
) -> Result<Response> {
    let session_id = parse_id(&f.session_id).ok_or(AppError::BadRequest)?;
    let offer_id = parse_id(&f.offer_id).ok_or(AppError::BadRequest)?;
    let quantity = if f.quantity.trim().is_empty() {
        1
    } else {
        quantity_of(&f.quantity)?
    };
    if quantity == 0 {
        // Zero (or "-0") tickets is no order of one: say so and add nothing.
        return Ok(
            Redirect::to(&format!("/sessions/{session_id}?refused=quantity")).into_response(),
        );
    }
    let uid = user.as_ref().map(|u| u.user.id);
    let (owner, mut set) = owner(&state, &headers, uid).await?;
    let owner = match owner {
        Some(o) => o,
        None => {
            let token = random_token()?;
            set.push(cookies::set(
                cart_cookie_name(&state),
                &token,
                Some(CART_COOKIE_SECS),
                cookies::SameSite::Lax,
                state.https,
            ));
            CartOwner::Anonymous(hash_token(&token))
        }
    };
    let to = match state
        .store
        .cart_add(owner, session_id, offer_id, quantity)
        .await?
    {
        Ok(()) => "/cart?added=1".to_owned(),
        Err(r) => {
            let code = match r {
                CartRefusal::SoldOut => "sold_out",
                CartRefusal::OfferInactive => "offer",
                CartRefusal::SessionClosed => "closed",
                CartRefusal::CartFull => "full",
            };
            format!("/sessions/{session_id}?refused={code}")
        }
    };
    Ok(with_cookies(Redirect::to(&to).into_response(), set))
}

/// `POST /cart/update`: a line's new quantity (0 removes it).
pub async fn update(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    Form(f): Form<LineForm>,
) -> Result<Response> {
    let session_id = parse_id(&f.session_id).ok_or(AppError::BadRequest)?;
    let offer_id = parse_id(&f.offer_id).ok_or(AppError::BadRequest)?;
    let quantity = quantity_of(&f.quantity)?;
    set_line(
        state,
        user.map(|u| u.user.id),
        headers,
        session_id,
        offer_id,
        quantity,
    )
    .await
}

/// `POST /cart/remove`: a primary line (session and offer) or a resale
/// line (`listing`).
pub async fn remove(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    Form(f): Form<LineForm>,
) -> Result<Response> {
    if !f.listing.trim().is_empty() {
        let listing = parse_id(&f.listing).ok_or(AppError::BadRequest)?;
        let (owner, set) = owner(&state, &headers, user.map(|u| u.user.id)).await?;
        if let Some(o) = owner {
            state.store.cart_remove_listing(o, listing).await?;
        }
        return Ok(with_cookies(
            Redirect::to("/cart?updated=1").into_response(),
            set,
        ));
    }
    let session_id = parse_id(&f.session_id).ok_or(AppError::BadRequest)?;
    let offer_id = parse_id(&f.offer_id).ok_or(AppError::BadRequest)?;
    set_line(
        state,
        user.map(|u| u.user.id),
        headers,
        session_id,
        offer_id,
        0,
    )
    .await
}

async fn set_line(
    state: AppState,
    uid: Option<i64>,
    headers: HeaderMap,
    session_id: i64,
    offer_id: i64,
    quantity: i64,
) -> Result<Response> {
    let (owner, set) = owner(&state, &headers, uid).await?;
    if let Some(o) = owner {
        state
            .store
            .cart_set(o, session_id, offer_id, quantity)
            .await?;
    }
    Ok(with_cookies(
        Redirect::to("/cart?updated=1").into_response(),
        set,
    ))
}
