//! The web shop: catalogue, cart, checkout, payment, tickets.

use axum::Router;

use crate::state::AppState;

/// The shop's routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
