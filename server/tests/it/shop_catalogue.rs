//! The catalogue: the seeded programme, the list's filters, a session's page
//! with its offers and seats left, and the loader's idempotence.

use crate::common::shop::*;
use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn a_fresh_install_has_a_realistic_programme_on_sale() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let (status, home) = b.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        home.contains("href=\"/sessions\""),
        "home links to the sessions"
    );

    let ids = session_ids(&b, "").await;
    assert!(ids.len() >= 30, "only {} sessions", ids.len());
    let sports = sql_i64(
        &app,
        "SELECT count(DISTINCT sport_id) FROM game_sessions",
        &[],
    );
    let venues = sql_i64(
        &app,
        "SELECT count(DISTINCT venue_id) FROM game_sessions",
        &[],
    );
    assert!(
        sports >= 10 && venues >= 8,
        "{sports} sports, {venues} venues"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let first = sql_i64(&app, "SELECT min(starts_at) FROM game_sessions", &[]);
    assert!(
        first > now + 29 * 86_400,
        "the Games start in about 30 days"
    );
    for name in ["Stade de France", "Roland-Garros", "Grand Palais"] {
        assert_eq!(
            sql_i64(
                &app,
                "SELECT count(*) FROM venues WHERE name LIKE ?1",
                &[&(format!("%{name}%"))]
            ),
            1,
            "{name}"
        );
    }
    let (_, html) = b.get_text("/sessions").await;
    assert!(html.contains("Athlétisme") && html.contains("Stade de France"));
    // Prices in fr-FR: "125,00 €" with no-break spaces.
    assert!(plain(&html).contains(",00 €"), "fr-FR prices");
}

#[tokio::test]
async fn the_list_filters_by_sport_date_and_venue() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let all = session_ids(&b, "").await;
    let (sport, venue): (i64, i64) = db(&app)
        .with(|c| {
            c.query_row(
                "SELECT sport_id, venue_id FROM game_sessions WHERE code = 'ATH01'",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .expect("ATH01");
    let by_sport = session_ids(&b, &format!("?sport={sport}")).await;
    let expected = sql_i64(
        &app,
        "SELECT count(*) FROM game_sessions WHERE sport_id = ?1",
        &[&sport],
    );
    assert_eq!(by_sport.len() as i64, expected);
    assert!(by_sport.len() < all.len());
    let by_venue = session_ids(&b, &format!("?venue={venue}")).await;
    let expected = sql_i64(
        &app,
        "SELECT count(*) FROM game_sessions WHERE venue_id = ?1",
        &[&venue],
    );
    assert_eq!(by_venue.len() as i64, expected);

    // The date choices come from the page itself; each day filters to its sessions.
    let (_, html) = b.get_text("/sessions").await;
    let select = between(&html, "name=\"date\">", "</select>").expect("date filter");
    let days: Vec<String> = select
        .split("<option value=\"")
        .skip(2)
        .filter_map(|s| s.split('"').next().map(str::to_owned))
        .collect();
    assert!(days.len() >= 10, "{days:?}");
    let mut total = 0;
    for d in &days {
        let n = session_ids(&b, &format!("?date={d}")).await.len();
        assert!(n > 0, "no session on {d}");
        total += n;
    }
    assert_eq!(total, all.len(), "every session is on exactly one day");
    let both = session_ids(
        &b,
        &format!("?sport={sport}&venue={venue}&date={}", days[0]),
    )
    .await;
    assert!(both.len() <= by_sport.len());

    // Junk filters are ignored, never an error.
    for q in [
        "?sport=abc",
        "?date=2024-02-31",
        "?venue=-1",
        "?sport=%00",
        "?date='%20OR%201=1",
    ] {
        assert_eq!(session_ids(&b, q).await.len(), all.len(), "{q}");
    }
}

#[tokio::test]
async fn a_session_page_shows_offers_prices_and_seats_left() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    let id = sql_i64(
        &app,
        "SELECT id FROM game_sessions WHERE code = 'ATH01'",
        &[],
    );
    let (status, html) = b.get_text(&format!("/sessions/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Finale 100 m hommes"));
    // 125,00 € base: Solo 125,00 €, Duo 2 × 95 % = 237,50 €, Famille 4 × 85 % = 425,00 €.
    let text = plain(&html);
    for price in ["125,00 €", "237,50 €", "425,00 €"] {
        assert!(text.contains(price), "{price}");
    }
    for offer in ["Solo", "Duo", "Famille"] {
        assert!(html.contains(&format!("<h3>{offer}</h3>")), "{offer}");
    }
    let left = between(&html, "id=\"seats-left\">", "<").expect("seats left");
    assert_eq!(left, "69000");

    // An offer added later (by an admin) shows with no code change.
    db(&app)
        .with(|c| c.execute(
            "INSERT INTO offers (name, seats, price_percent, created_at, updated_at) VALUES ('Groupe 8', 8, 80, 0, 0)", params![]))
        .expect("offer");
    let (_, html) = b.get_text(&format!("/sessions/{id}")).await;
    assert!(plain(&html).contains("800,00 €"), "8 × 125 × 80 %");

    for bad in [
        "0",
        "999999",
        "abc",
        "1%20OR%201",
        "-5",
        "99999999999999999999",
    ] {
        let (status, _) = b.get_text(&format!("/sessions/{bad}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn restarting_neither_moves_nor_duplicates_the_programme() {
    let app = spawn_app().await;
    let before: (i64, i64, i64) = db(&app)
        .with(|c| {
            c.query_row(
                "SELECT count(*), min(starts_at), (SELECT count(*) FROM offers) FROM game_sessions",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .expect("counts");
    // A second server on the same data: its start-up loads the fixtures again.
    let _second = start(app.config.clone(), tempfile::tempdir().expect("tempdir")).await;
    let after: (i64, i64, i64) = db(&app)
        .with(|c| {
            c.query_row(
                "SELECT count(*), min(starts_at), (SELECT count(*) FROM offers) FROM game_sessions",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .expect("counts");
    assert_eq!(before, after);
}
