//! Payment: the card form's checks, and the gateway behind a trait.
//!
//! The shop only talks to [`PaymentGateway`]; [`SimulatedGateway`] is the
//! deterministic stand-in shipped with the product. A real acquirer (Stripe,
//! Adyen, …) implements the same trait: it receives the idempotency key, so a
//! retried request is charged once on its side too.
//!
//! The card number and CVV live only in a [`CardDetails`] for the time of
//! the request: they are never stored, logged or echoed back in a page. Only
//! the brand and the last four digits are kept with the payment.

use std::future::Future;
use std::pin::Pin;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Card details typed in the payment form, checked.
pub struct CardDetails {
    /// Digits only; wiped from memory when dropped.
    number: Zeroizing<String>,
    /// Expiry month (1–12).
    pub exp_month: u32,
    /// Expiry year (four digits).
    pub exp_year: i64,
    /// 3 or 4 digits; wiped when dropped.
    cvv: Zeroizing<String>,
    /// Cardholder name as typed (trimmed).
    pub holder: String,
}

impl std::fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardDetails")
            .field("brand", &self.brand())
            .field("last4", &self.last4())
            .finish_non_exhaustive()
    }
}

/// The form's raw fields.
pub struct CardForm<'a> {
    /// Card number (spaces and dashes allowed).
    pub number: &'a str,
    /// Expiry, `MM/YY` or `MM/YYYY`.
    pub expiry: &'a str,
    /// Security code.
    pub cvv: &'a str,
    /// Cardholder name.
    pub holder: &'a str,
}

/// Errors of the card form as (field, message key).
pub type CardErrors = Vec<(&'static str, &'static str)>;

/// Whether a digit string passes the Luhn checksum.
pub fn luhn_ok(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let Some(mut d) = char::from(b).to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// The card brand of a number, from its leading digits.
pub fn brand_of(digits: &str) -> &'static str {
    let two: u32 = digits.get(..2).and_then(|s| s.parse().ok()).unwrap_or(0);
    let four: u32 = digits.get(..4).and_then(|s| s.parse().ok()).unwrap_or(0);
    if digits.starts_with('4') {
        "Visa"
    } else if (51..=55).contains(&two) || (2221..=2720).contains(&four) {
        "Mastercard"
    } else if two == 34 || two == 37 {
        "American Express"
    } else {
        "Carte"
    }
}

impl CardDetails {
    /// Checks the form: Luhn, a future expiry, a CVV of the brand's length
    /// and a holder name. `now_year`/`now_month` are today's (UTC).
    pub fn parse(f: &CardForm<'_>, now_year: i64, now_month: u32) -> Result<Self, CardErrors> {
        let mut errors = CardErrors::new();
        let number: Zeroizing<String> = Zeroizing::new(
            f.number
                .chars()
                .filter(|c| !matches!(c, ' ' | '-'))
                .take(40)
                .collect(),
        );
        if number.is_empty() {
            errors.push(("card_number", "err.required"));
        } else if !(12..=19).contains(&number.len())
            || !number.bytes().all(|b| b.is_ascii_digit())
            || !luhn_ok(&number)
        {
            errors.push(("card_number", "pay.err_card_number"));
        }
        let expiry = parse_expiry(f.expiry.trim());
        match expiry {
            None if f.expiry.trim().is_empty() => errors.push(("card_expiry", "err.required")),
            None => errors.push(("card_expiry", "pay.err_expiry_format")),
            Some((y, m)) if (y, m) < (now_year, now_month) => {
                errors.push(("card_expiry", "pay.err_expired"));
            }
            Some((y, _)) if y > now_year + 20 => {
                errors.push(("card_expiry", "pay.err_expiry_format"))
            }
            Some(_) => {}
        }
        let cvv: Zeroizing<String> = Zeroizing::new(f.cvv.trim().chars().take(8).collect());
        let cvv_len = if brand_of(&number) == "American Express" {
            4
        } else {
            3
        };
        if cvv.is_empty() {
            errors.push(("card_cvv", "err.required"));
        } else if cvv.len() != cvv_len || !cvv.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(("card_cvv", "pay.err_cvv"));
        }
        let holder = f.holder.trim();
        if holder.is_empty() {
            errors.push(("card_holder", "err.required"));
        } else if holder.chars().count() < 2
            || holder.chars().count() > 100
            || holder.chars().any(char::is_control)
        {
            errors.push(("card_holder", "pay.err_holder"));
        }
        match (errors.is_empty(), expiry) {
            (true, Some((exp_year, exp_month))) => Ok(Self {
                number,
                exp_month,
                exp_year,
                cvv,
                holder: holder.to_owned(),
            }),
            _ => Err(errors),
        }
    }

    /// The brand (kept with the payment).
    pub fn brand(&self) -> &'static str {
        brand_of(&self.number)
    }

    /// The last four digits (kept with the payment).
    pub fn last4(&self) -> String {
        let n = self.number.len();
        self.number
            .get(n.saturating_sub(4)..)
            .unwrap_or("")
            .to_owned()
    }

    /// The full number, for the gateway only.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The security code, for the gateway only.
    pub fn cvv(&self) -> &str {
        &self.cvv
    }
}

fn parse_expiry(s: &str) -> Option<(i64, u32)> {
    let (m, y) = s.split_once('/')?;
    let m: u32 = m.trim().parse().ok()?;
    let y = y.trim();
    if !(1..=12).contains(&m) || !y.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = match y.len() {
        2 => 2000 + y.parse::<i64>().ok()?,
        4 => y.parse().ok()?,
        _ => return None,
    };
    Some((y, m))
}

/// Why a payment was declined. Each maps to a message for the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    /// Not enough money on the account.
    InsufficientFunds,
    /// The bank refused the card.
    CardDeclined,
    /// The payment network did not answer; nothing was charged, try again.
    NetworkError,
}

impl DeclineReason {
    /// Stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::InsufficientFunds => "insufficient_funds",
            Self::CardDeclined => "card_declined",
            Self::NetworkError => "network_error",
        }
    }

    /// Parses a stored code.
    pub fn from_code(s: &str) -> Self {
        match s {
            "insufficient_funds" => Self::InsufficientFunds,
            "network_error" => Self::NetworkError,
            _ => Self::CardDeclined,
        }
    }

    /// Message key shown to the buyer.
    pub fn message_key(self) -> &'static str {
        match self {
            Self::InsufficientFunds => "pay.declined_funds",
            Self::CardDeclined => "pay.declined_card",
            Self::NetworkError => "pay.declined_network",
        }
    }
}

/// What the gateway answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Charged; the gateway's transaction id.
    Approved {
        /// Gateway transaction reference.
        transaction_id: String,
    },
    /// Not charged.
    Declined(DeclineReason),
}

/// One charge request.
pub struct ChargeRequest<'a> {
    /// Same key, same charge: the gateway must not charge twice for it.
    pub idempotency_key: &'a str,
    /// Amount in cents.
    pub amount_cents: i64,
    /// Our order number, as the statement reference.
    pub reference: &'a str,
    /// The card.
    pub card: &'a CardDetails,
}

/// A boxed future, so the trait stays object-safe (`Arc<dyn PaymentGateway>`).
pub type ChargeFuture<'a> = Pin<Box<dyn Future<Output = ChargeOutcome> + Send + 'a>>;

/// One refund request: part or all of an earlier charge given back.
pub struct RefundRequest<'a> {
    /// Same key, same refund: the gateway must not refund twice for it.
    pub idempotency_key: &'a str,
    /// The charge refunded (the gateway's transaction id).
    pub transaction_id: &'a str,
    /// Amount in cents (at most the charge).
    pub amount_cents: i64,
    /// Our reference for the statement.
    pub reference: &'a str,
}

/// A boxed refund future: the gateway's refund reference, or why not.
pub type RefundFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// A payment service provider.
pub trait PaymentGateway: Send + Sync {
    /// Refunds part of a charge once per idempotency key (a resold
    /// ticket's seller is refunded face value less the seller's fee).
    fn refund<'a>(&'a self, req: RefundRequest<'a>) -> RefundFuture<'a>;

    /// Charges a card once per idempotency key.
    fn charge<'a>(&'a self, req: ChargeRequest<'a>) -> ChargeFuture<'a>;

    /// Charges a card at once, without waiting on a network or anything
    /// else, if this gateway can; `None` (the default) means "use
    /// [`PaymentGateway::charge`]". The shop calls it inside the transaction
    /// that records the attempt, so the attempt, the charge and the tickets
    /// take one commit; a gateway that talks to an acquirer must keep the
    /// default, so the attempt is on disk before the card is charged.
    fn charge_now(&self, _req: &ChargeRequest<'_>) -> Option<ChargeOutcome> {
        None
    }
}

/// The payment gateway the shop charges and refunds through, shared by
/// the handlers and the background jobs. The simulated one ships with the
/// product; a real acquirer implements [`PaymentGateway`] and goes here.
pub type Gateway = std::sync::Arc<dyn PaymentGateway>;

/// The documented test cards (also in server/README.md). Anything else that
/// passes the form checks is declined as `card_declined`: no real card can
/// ever look as if it had been charged.
pub const TEST_CARDS: &[(&str, Option<DeclineReason>)] = &[
    ("4242424242424242", None),
    ("5555555555554444", None),
    ("4000000000009995", Some(DeclineReason::InsufficientFunds)),
    ("4000000000000002", Some(DeclineReason::CardDeclined)),
    ("4000000000000119", Some(DeclineReason::NetworkError)),
];

/// Deterministic simulated gateway: the outcome depends only on the card
/// number (no randomness), the transaction id only on the idempotency key.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimulatedGateway;

impl SimulatedGateway {
    fn decide(req: &ChargeRequest<'_>) -> ChargeOutcome {
        let outcome = TEST_CARDS
            .iter()
            .find(|(n, _)| *n == req.card.number())
            .map_or(Some(DeclineReason::CardDeclined), |(_, o)| *o);
        match outcome {
            None => {
                let h = Sha256::digest(req.idempotency_key.as_bytes());
                ChargeOutcome::Approved {
                    transaction_id: format!("SIM-{}", hex::encode_upper(&h[..8])),
                }
            }
            Some(r) => ChargeOutcome::Declined(r),
        }
    }
}

impl PaymentGateway for SimulatedGateway {
    fn charge<'a>(&'a self, req: ChargeRequest<'a>) -> ChargeFuture<'a> {
        Box::pin(async move { Self::decide(&req) })
    }

    /// Refunds any positive amount of a charge it made; the reference
    /// depends only on the idempotency key.
    fn refund<'a>(&'a self, req: RefundRequest<'a>) -> RefundFuture<'a> {
        Box::pin(async move {
            if req.amount_cents <= 0 || req.transaction_id.is_empty() {
                return Err("nothing to refund".to_owned());
            }
            let h = Sha256::digest(req.idempotency_key.as_bytes());
            Ok(format!("sim_re_{}", hex::encode(&h[..8])))
        })
    }

    /// The simulation decides in memory, so it always answers at once.
    fn charge_now(&self, req: &ChargeRequest<'_>) -> Option<ChargeOutcome> {
        Some(Self::decide(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form<'a>(number: &'a str, expiry: &'a str, cvv: &'a str) -> CardForm<'a> {
        CardForm {
            number,
            expiry,
            cvv,
            holder: "Élodie Martin",
        }
    }

    #[test]
    fn test_cards_pass_luhn_and_others_do_not() {
        for (n, _) in TEST_CARDS {
            assert!(luhn_ok(n), "{n}");
        }
        assert!(!luhn_ok("4242424242424241"));
        assert!(!luhn_ok(""));
        assert!(!luhn_ok("42a2"));
    }

    #[test]
    fn the_form_is_checked_field_by_field() {
        let ok = CardDetails::parse(&form("4242 4242 4242 4242", "12/30", "123"), 2026, 5)
            .expect("valid");
        assert_eq!(ok.brand(), "Visa");
        assert_eq!(ok.last4(), "4242");
        assert!(!format!("{ok:?}").contains("424242424242"));
        let e = CardDetails::parse(&form("4242 4242 4242 4241", "01/20", "12"), 2026, 5)
            .expect_err("invalid");
        assert_eq!(
            e,
            vec![
                ("card_number", "pay.err_card_number"),
                ("card_expiry", "pay.err_expired"),
                ("card_cvv", "pay.err_cvv")
            ]
        );
        let e = CardDetails::parse(&form("", "13/30", "abc"), 2026, 5).expect_err("invalid");
        assert_eq!(e[0], ("card_number", "err.required"));
        assert_eq!(e[1], ("card_expiry", "pay.err_expiry_format"));
        // The current month is still valid.
        assert!(CardDetails::parse(&form("4242424242424242", "05/2026", "123"), 2026, 5).is_ok());
    }

    #[tokio::test]
    async fn the_simulated_gateway_is_deterministic() {
        let g = SimulatedGateway;
        for (n, expected) in TEST_CARDS {
            let card = CardDetails::parse(&form(n, "12/30", "123"), 2026, 1).expect("valid");
            let req = || ChargeRequest {
                idempotency_key: "k1",
                amount_cents: 100,
                reference: "X",
                card: &card,
            };
            let a = g.charge(req()).await;
            assert_eq!(a, g.charge(req()).await);
            match (expected, a) {
                (None, ChargeOutcome::Approved { transaction_id }) => {
                    assert!(transaction_id.starts_with("SIM-"));
                }
                (Some(r), ChargeOutcome::Declined(d)) => assert_eq!(*r, d),
                (e, a) => panic!("{n}: expected {e:?}, got {a:?}"),
            }
        }
    }
}
