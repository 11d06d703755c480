//! The admin console (admins with two-factor authentication only): sales
//! dashboard, offers, sessions, orders and tickets, scanner devices, scans
//! and the audit log.
//!
//! Access: every handler takes the [`Admin`] extractor, the console's one
//! guard (anonymous → login page, buyer → 403, admin without 2FA → 2FA
//! enrolment, a session of a 2FA admin that did not itself pass the second
//! factor → 403). Routes are declared once, in the table below, which builds
//! both the router and [`ROUTES`]; the access test walks [`ROUTES`], so a
//! route added here without the guard fails it.

mod audit;
mod chart;
mod dashboard;
mod devices;
mod offers;
mod orders;
mod scans;
mod sessions;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::db::audit::Actor;
use crate::db::users::{Role, User};
use crate::error::AppError;
use crate::state::AppState;
use crate::units::money::Cents;
use crate::web::client::ClientIp;
use crate::web::session::CurrentUser;

/// A logged-in admin whose session passed the second factor.
pub struct Admin {
    /// The admin.
    pub user: User,
    /// The admin and the client address, for the audit log.
    pub actor: Actor,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        // Anonymous: redirect to login; admin without 2FA: redirect to enrolment.
        let me = CurrentUser::from_request_parts(parts, state).await?;
        // The session must have passed the second factor itself: the account
        // having it on does not vouch for a session opened with the password
        // alone before enrolment.
        if me.user.role != Role::Admin || !me.user.totp_enabled || !me.second_factor {
            return Err(AppError::Forbidden);
        }
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(Self {
            actor: Actor {
                id: me.user.id,
                username: me.user.username.clone(),
                ip: ip.to_string(),
            },
            user: me.user,
        })
    }
}

/// Declares the console's routes once: builds [`router`] and [`ROUTES`].
macro_rules! admin_routes {
    ($($method:ident $path:literal => $handler:path;)*) => {
        /// Every console route, `(method, path pattern)`: the access test
        /// checks that each refuses buyers and anonymous visitors.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        /// The console's routes, under `/admin`.
        pub fn router() -> Router<AppState> {
            Router::new()
                $(.route($path, axum::routing::on(axum::routing::MethodFilter::$method, $handler)))*
        }
    };
}

admin_routes! {
    GET "/admin" => dashboard::page;
    GET "/admin/offers" => offers::list;
    POST "/admin/offers" => offers::create;
    GET "/admin/offers/{id}" => offers::edit;
    POST "/admin/offers/{id}" => offers::update;
    POST "/admin/offers/{id}/active" => offers::set_active;
    GET "/admin/sessions" => sessions::list;
    GET "/admin/sessions/new" => sessions::new_form;
    POST "/admin/sessions" => sessions::create;
    GET "/admin/sessions/{id}" => sessions::edit;
    POST "/admin/sessions/{id}" => sessions::update;
    POST "/admin/sessions/{id}/cancel" => sessions::cancel;
    POST "/admin/sessions/{id}/reissue" => sessions::reissue;
    GET "/admin/sessions/{id}/transfers" => orders::session_transfers;
    GET "/admin/orders" => orders::search;
    GET "/admin/orders/{number}" => orders::order;
    POST "/admin/orders/{number}/refund" => orders::refund;
    GET "/admin/tickets/{code}" => orders::ticket;
    POST "/admin/tickets/{code}/revoke" => orders::revoke;
    POST "/admin/tickets/{code}/reissue" => orders::reissue;
    GET "/admin/devices" => devices::list;
    POST "/admin/devices/codes" => devices::create_code;
    POST "/admin/devices/{id}/revoke" => devices::revoke;
    GET "/admin/scans" => scans::page;
    GET "/admin/scans.csv" => scans::scans_csv;
    GET "/admin/sales.csv" => scans::sales_csv;
    GET "/admin/audit" => audit::page;
}

/// A Unix time as Paris local time, `2024-08-03 19:30`.
pub fn fmt_time(utc: i64) -> String {
    let l = crate::units::time::paris(utc);
    format!("{} {}", l.iso_date(), l.hm())
}

/// An optional time, or an em dash.
pub fn fmt_opt_time(utc: Option<i64>) -> String {
    utc.map_or_else(|| "—".to_owned(), fmt_time)
}

/// Cents as `1 234,50 €`.
pub fn money(cents: i64) -> String {
    Cents(cents).fr()
}

/// Trims a form value and caps it at `max` characters (for echoing back).
fn echo(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

/// Whether a text field holds control characters (refused everywhere:
/// they break logs, CSV exports and the layout).
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}
