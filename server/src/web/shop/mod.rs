//! The web shop: catalogue ([`catalogue`]), cart ([`cart`]), checkout and
//! simulated payment ([`checkout`]), and the buyer's tickets ([`tickets`]):
//! QR codes, PDFs and the confirmation mail.
//!
//! Every id in a URL is parsed strictly and looked up together with the
//! logged-in buyer, so another buyer's order, ticket, QR code or PDF is a 404
//! whatever id is tried.

pub mod cart;
pub mod catalogue;
pub mod checkout;
pub mod resale;
pub mod tickets;
pub mod transfers;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use crate::shop::payment::Gateway;
use crate::state::AppState;

/// The shop's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions", get(catalogue::list))
        .route("/sessions/{id}", get(catalogue::detail))
        .route("/cart", get(cart::show))
        .route("/cart/add", post(cart::add))
        .route("/cart/update", post(cart::update))
        .route("/cart/remove", post(cart::remove))
        .route("/checkout", post(checkout::checkout))
        .route("/orders/{number}", get(checkout::order))
        .route(
            "/orders/{number}/pay",
            get(checkout::pay_form).post(checkout::pay),
        )
        .route("/orders/{number}/tickets.pdf", get(tickets::order_pdf))
        .route("/tickets", get(tickets::mine))
        .route("/tickets/{id}/qr.png", get(tickets::qr_png))
        .route("/tickets/{id}/ticket.pdf", get(tickets::ticket_pdf))
        .route("/tickets/done", get(transfers::done))
        .route("/tickets/{id}/holder", post(transfers::rename))
        .route("/tickets/{id}/transfer", post(transfers::offer))
        .route("/tickets/{id}/transfer/cancel", post(transfers::cancel))
        .route(
            "/transfers/accept",
            get(transfers::show).post(transfers::accept),
        )
        .route("/transfers/decline", post(transfers::decline))
        .route("/orders/{number}/holders", post(transfers::holders))
        .route("/tickets/{id}/resale", post(resale::list))
        .route("/tickets/{id}/resale/withdraw", post(resale::withdraw))
        .route("/resale/{id}/buy", post(resale::buy))
}

/// Sweeps expired seat holds every `config.shop.sweep_secs`, so their seats
/// return on sale even when nobody checks out (checkout also sweeps first),
/// and lapses the transfer offers that ran out (their tickets stay with
/// their senders).
pub async fn expire_holds_periodically(state: AppState) {
    let every = Duration::from_secs(state.config.shop.sweep_secs.max(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match state.store.expire_holds().await {
            Ok(n) if n > 0 => tracing::info!(orders = n, "unpaid holds expired; seats returned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "hold expiry failed"),
        }
        transfers::expire_offers(&state).await;
    }
}

/// An order number from a URL: `XXXXX-XXXXX` in our alphabet, else `None`.
pub fn parse_order_number(s: &str) -> Option<String> {
    let ok = s.len() == 11
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 5 {
                b == b'-'
            } else {
                b.is_ascii_digit() || b.is_ascii_uppercase()
            }
        });
    ok.then(|| s.to_owned())
}

/// A public ticket id from a URL: 20 hex digits.
pub fn parse_ticket_id(s: &str) -> Option<[u8; 10]> {
    if s.len() != 20 {
        return None;
    }
    let v = hex::decode(s).ok()?;
    v.try_into().ok()
}

/// A positive row id from a URL or form.
pub fn parse_id(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|v: &i64| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_urls_are_strict() {
        assert_eq!(parse_id("42"), Some(42));
        for bad in ["", "0", "-1", "1e3", "99999999999", " 1", "+1"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
        assert!(parse_order_number("AB12C-DE34F").is_some());
        for bad in [
            "ab12c-de34f",
            "AB12CDE34F",
            "AB12C-DE34F0",
            "AB12C_DE34F",
            "' OR 1=1--",
        ] {
            assert!(parse_order_number(bad).is_none(), "{bad}");
        }
        assert_eq!(
            parse_ticket_id("00112233445566778899"),
            Some([0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99])
        );
        assert!(parse_ticket_id("0011223344556677889").is_none());
        assert!(parse_ticket_id("zz112233445566778899").is_none());
    }
}
