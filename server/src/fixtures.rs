//! Fixture loading at start-up: the programme of the Games (sports, venues,
//! sessions) and the offers, from `fixtures/seed/*.json` embedded in the
//! binary (so it works from any directory). Idempotent: it runs at every
//! start and inserts only what is missing.
//!
//! The seed dates are relative ("day" 0 is the first day of the Games, start
//! times in Paris local time). The first day is placed at today (UTC) + 30
//! days on the first load and stored in `meta('games_first_day')`, so a fresh
//! install always has sessions on sale and a restart moves nothing.

use anyhow::Context;
use serde::Deserialize;

use crate::db::Store;
use crate::db::catalogue::{SeedOffer, SeedSession};
use crate::units::time::paris_to_utc;

const PROGRAMME_JSON: &str = include_str!("../../fixtures/seed/programme.json");
const OFFERS_JSON: &str = include_str!("../../fixtures/seed/offers.json");

/// Days between the first load and the first day of the Games.
pub const GAMES_START_IN_DAYS: i64 = 30;

#[derive(Deserialize)]
struct Programme {
    sessions: Vec<ProgrammeSession>,
}

#[derive(Deserialize)]
struct ProgrammeSession {
    code: String,
    sport: String,
    title: String,
    venue: String,
    city: String,
    /// The venue's postal address (printed on the ticket); may be absent.
    #[serde(default)]
    address: String,
    /// Entrance or gate information of the session; may be absent.
    #[serde(default)]
    entrance: String,
    day: i64,
    start: String,
    duration_minutes: i64,
    doors_open_minutes_before: i64,
    capacity: i64,
    base_price_cents: i64,
    entry_rule: String,
}

#[derive(Deserialize)]
struct Offers {
    offers: Vec<OfferSeed>,
}

#[derive(Deserialize)]
struct OfferSeed {
    name: String,
    seats: i64,
    price_percent: i64,
    active: bool,
}

/// "HH:MM" as minutes after midnight.
fn minute_of_day(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// Places the seed sessions in time, the Games starting on `first_day`
/// (days since 1970-01-01).
fn placed_sessions(first_day: i64) -> anyhow::Result<Vec<SeedSession>> {
    let p: Programme = serde_json::from_str(PROGRAMME_JSON).context("parsing programme.json")?;
    p.sessions
        .into_iter()
        .map(|s| {
            let minute = minute_of_day(&s.start)
                .with_context(|| format!("{}: bad start time {:?}", s.code, s.start))?;
            let starts_at = paris_to_utc(first_day + s.day, minute);
            Ok(SeedSession {
                starts_at,
                ends_at: starts_at + s.duration_minutes.max(1) * 60,
                doors_open_at: starts_at - s.doors_open_minutes_before.max(0) * 60,
                code: s.code,
                sport: s.sport,
                title: s.title,
                venue: s.venue,
                city: s.city,
                address: s.address,
                entrance: s.entrance,
                capacity: s.capacity,
                base_price_cents: s.base_price_cents,
                entry_rule: s.entry_rule,
            })
        })
        .collect()
}

fn seed_offers() -> anyhow::Result<Vec<SeedOffer>> {
    let o: Offers = serde_json::from_str(OFFERS_JSON).context("parsing offers.json")?;
    Ok(o.offers
        .into_iter()
        .map(|o| SeedOffer {
            name: o.name,
            seats: o.seats,
            price_percent: o.price_percent,
            active: o.active,
        })
        .collect())
}

/// Loads the fixtures that are missing.
pub async fn load(store: &Store) -> anyhow::Result<()> {
    let today = crate::units::time::now().div_euclid(86_400);
    let first_day = store
        .games_first_day(today + GAMES_START_IN_DAYS)
        .await
        .context("placing the Games")?;
    let report = store
        .load_programme(placed_sessions(first_day)?, seed_offers()?)
        .await
        .context("loading the programme")?;
    if report.sessions + report.offers > 0 {
        tracing::info!(
            sessions = report.sessions,
            offers = report.offers,
            "programme loaded"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_programme_parses_and_is_placed_in_paris_time() {
        let first = crate::units::time::days_from_civil(2024, 7, 26);
        let sessions = placed_sessions(first).expect("parses");
        assert!(sessions.len() >= 30);
        let ath01 = sessions.iter().find(|s| s.code == "ATH01").expect("ATH01");
        // Day 9 at 19:30 Paris (CEST) = 17:30 UTC on 2024-08-04.
        let l = crate::units::time::paris(ath01.starts_at);
        assert_eq!(
            (l.iso_date().as_str(), l.hm().as_str()),
            ("2024-08-04", "19:30")
        );
        assert_eq!(ath01.starts_at % 86_400, 17 * 3_600 + 30 * 60);
        assert!(ath01.doors_open_at < ath01.starts_at && ath01.ends_at > ath01.starts_at);
        assert_eq!(seed_offers().expect("offers").len(), 3);
        assert_eq!(minute_of_day("24:00"), None);
    }
}
