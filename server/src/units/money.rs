//! Money: integer cents, priced by offer rules, shown in the fr-FR format.

/// An amount of money in euro cents. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cents(pub i64);

/// U+202F NARROW NO-BREAK SPACE: the fr-FR digit-group separator.
const GROUP_SEP: char = '\u{202f}';
/// U+00A0 NO-BREAK SPACE: keeps "€" on the line of its amount.
const NBSP: char = '\u{a0}';

impl Cents {
    /// The amount as `fr-FR` formats it: `1 234,50 €` (narrow no-break space
    /// between digit groups, no-break space before the sign), like
    /// `Intl.NumberFormat('fr-FR', {style: 'currency', currency: 'EUR'})`.
    pub fn fr(self) -> String {
        let negative = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let (euros, cents) = (abs / 100, abs % 100);
        let digits = euros.to_string();
        let mut grouped = String::with_capacity(digits.len() + 8);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(GROUP_SEP);
            }
            grouped.push(c);
        }
        format!(
            "{}{grouped},{cents:02}{NBSP}€",
            if negative { "-" } else { "" }
        )
    }
}

impl std::fmt::Display for Cents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fr())
    }
}

/// The price of one unit of an offer for a session: `seats × base × percent / 100`,
/// rounded half up to the cent, in integer arithmetic. `None` on overflow
/// (values from the database are bounded by CHECK constraints, so only a
/// corrupted row gets there).
pub fn offer_price(base_price_cents: i64, seats: i64, price_percent: i64) -> Option<Cents> {
    let raw = base_price_cents
        .checked_mul(seats)?
        .checked_mul(price_percent)?;
    if raw < 0 {
        return None;
    }
    Some(Cents(raw.checked_add(50)? / 100))
}

/// `1234.50`: cents as a plain decimal for spreadsheets (exports).
pub fn cents_plain(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let a = c.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_amounts_format_for_exports() {
        assert_eq!(cents_plain(123_450), "1234.50");
        assert_eq!(cents_plain(-5), "-0.05");
    }

    fn plain(s: &str) -> String {
        s.replace(['\u{202f}', '\u{a0}'], " ")
    }

    #[test]
    fn formats_like_fr_fr() {
        assert_eq!(plain(&Cents(123_450).fr()), "1 234,50 €");
        assert_eq!(plain(&Cents(0).fr()), "0,00 €");
        assert_eq!(plain(&Cents(5).fr()), "0,05 €");
        assert_eq!(plain(&Cents(99_999).fr()), "999,99 €");
        assert_eq!(plain(&Cents(100_000).fr()), "1 000,00 €");
        assert_eq!(plain(&Cents(12_345_678_901).fr()), "123 456 789,01 €");
        assert_eq!(plain(&Cents(-1_050).fr()), "-10,50 €");
        assert!(Cents(123_450).fr().contains('\u{202f}'));
    }

    #[test]
    fn prices_follow_the_offer_rule() {
        // Famille: 4 seats at 85 % of 125,00 € = 425,00 €.
        assert_eq!(offer_price(12_500, 4, 85), Some(Cents(42_500)));
        // Duo: 2 × 33,33 € × 95 % = 63,327 → 63,33 €.
        assert_eq!(offer_price(3_333, 2, 95), Some(Cents(6_333)));
        // Half a cent rounds up.
        assert_eq!(offer_price(1, 1, 50), Some(Cents(1)));
        assert_eq!(offer_price(i64::MAX, 2, 100), None);
        assert_eq!(offer_price(-1, 1, 100), None);
    }
}
