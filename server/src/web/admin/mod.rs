//! The admin console (admins with two-factor authentication only).

use axum::Router;

use crate::state::AppState;

/// The console's routes, under `/admin`.
pub fn router() -> Router<AppState> {
    Router::new()
}
