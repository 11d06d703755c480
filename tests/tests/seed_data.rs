//! The programme and offers shipped in `fixtures/seed/` are complete and sane:
//! a fresh install must have a realistic Games to sell.

use std::collections::HashSet;

use jo_e2e::fixtures_dir;
use serde_json::Value;

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("seed").join(name)).expect("seed file");
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn programme_is_realistic_and_well_formed() {
    let doc = load("programme.json");
    let sessions = doc["sessions"].as_array().expect("sessions");
    assert!(sessions.len() >= 30, "at least 30 sessions");
    let sports: HashSet<&str> = sessions
        .iter()
        .filter_map(|s| s["sport"].as_str())
        .collect();
    let venues: HashSet<&str> = sessions
        .iter()
        .filter_map(|s| s["venue"].as_str())
        .collect();
    assert!(
        sports.len() >= 10,
        "at least 10 sports, got {}",
        sports.len()
    );
    assert!(venues.len() >= 8, "at least 8 venues, got {}", venues.len());
    for real in [
        "Stade de France",
        "Paris La Défense Arena",
        "Stade Roland-Garros",
        "Grand Palais",
    ] {
        assert!(venues.contains(real), "missing venue {real}");
    }
    let mut codes = HashSet::new();
    for s in sessions {
        let code = s["code"].as_str().expect("code");
        assert!(codes.insert(code), "duplicate code {code}");
        for field in ["sport", "title", "venue", "city"] {
            assert!(
                !s[field].as_str().unwrap_or("").trim().is_empty(),
                "{code}: {field}"
            );
        }
        let (h, m) = s["start"]
            .as_str()
            .and_then(|t| t.split_once(':'))
            .expect("start HH:MM");
        let (h, m): (u32, u32) = (h.parse().expect("hour"), m.parse().expect("minute"));
        assert!(h < 24 && m < 60, "{code}: start");
        assert!(
            s["day"].as_u64().is_some_and(|d| d <= 20),
            "{code}: day within the Games"
        );
        assert!(
            s["duration_minutes"]
                .as_u64()
                .is_some_and(|d| (30..=720).contains(&d)),
            "{code}: duration"
        );
        assert!(
            s["capacity"].as_u64().is_some_and(|c| c > 0),
            "{code}: capacity"
        );
        assert!(
            s["base_price_cents"].as_u64().is_some_and(|p| p > 0),
            "{code}: price"
        );
        assert!(
            s["doors_open_minutes_before"].as_u64().is_some(),
            "{code}: doors"
        );
        assert_eq!(s["entry_rule"], "single", "{code}: entry rule");
    }
}

#[test]
fn offers_include_solo_duo_famille() {
    let doc = load("offers.json");
    let offers = doc["offers"].as_array().expect("offers");
    let seats = |name: &str| {
        offers
            .iter()
            .find(|o| o["name"] == name)
            .and_then(|o| o["seats"].as_u64())
    };
    assert_eq!(seats("Solo"), Some(1));
    assert_eq!(seats("Duo"), Some(2));
    assert_eq!(seats("Famille"), Some(4));
    for o in offers {
        assert!(
            o["price_percent"]
                .as_u64()
                .is_some_and(|p| (1..=200).contains(&p))
        );
        assert_eq!(o["active"], true);
    }
}
