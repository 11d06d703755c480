//! Admin console: offers and sessions round trips, with form errors, the
//! capacity rule, and cancellation (tickets revoked into the synced list,
//! buyers mailed), each action in the audit log.

use crate::common::admin::*;
use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn offers_are_created_validated_edited_and_withdrawn() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;

    let r = chef
        .submit(
            "/admin/offers",
            "/admin/offers",
            &[
                ("name", "Groupe 8"),
                ("description", "Pour les clubs"),
                ("seats", "8"),
                ("price_percent", "80"),
                ("active", "1"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/admin/offers?done=created");
    let id = offer_named(&app, "Groupe 8");
    assert_eq!(
        one_i64(
            &app,
            "SELECT seats * 1000 + price_percent * 10 + active FROM offers WHERE id = ?1",
            &[&id]
        ),
        8 * 1000 + 800 + 1
    );
    let (_, html) = chef.get_text("/admin/offers").await;
    assert!(html.contains("Groupe 8") && html.contains("Pour les clubs"));

    // Errors: each field says what is wrong, and what was typed comes back.
    let r = chef
        .submit(
            "/admin/offers",
            "/admin/offers",
            &[
                ("name", "groupe 8"),
                ("seats", "8"),
                ("price_percent", "80"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    assert!(
        html.contains("Une offre porte déjà ce nom."),
        "names are unique, case aside"
    );
    let r = chef
        .submit(
            "/admin/offers",
            "/admin/offers",
            &[
                ("name", "<script>x</script>"),
                ("seats", "0"),
                ("price_percent", "5000"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    assert!(html.contains("Un nombre entier de 1 à 255."));
    assert!(html.contains("Un pourcentage entier de 1 à 1000."));
    let echoed = between(
        &html,
        "id=\"name\" name=\"name\" type=\"text\" value=\"",
        "\"",
    )
    .expect("name echoed");
    assert!(!html.contains("<script>x"), "echo is escaped: {echoed}");
    assert!(
        echoed.contains("&lt;") || echoed.contains("&#60;"),
        "{echoed}"
    );
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM offers WHERE lower(name COLLATE \"binary\") LIKE '%script%'",
            &[]
        ),
        0
    );

    // Edit.
    let (s, html) = chef.get_text(&format!("/admin/offers/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("value=\"Groupe 8\""));
    let r = chef
        .submit(
            &format!("/admin/offers/{id}"),
            &format!("/admin/offers/{id}"),
            &[
                ("name", "Groupe 8"),
                ("seats", "8"),
                ("price_percent", "75"),
                ("active", "1"),
            ],
        )
        .await;
    assert_redirect_to(&r, "/admin/offers?done=updated");
    assert_eq!(
        one_i64(
            &app,
            "SELECT price_percent FROM offers WHERE id = ?1",
            &[&id]
        ),
        75
    );

    // Withdraw, then back on sale.
    let r = chef
        .submit(
            "/admin/offers",
            &format!("/admin/offers/{id}/active"),
            &[("active", "0")],
        )
        .await;
    assert_redirect_to(&r, "/admin/offers?done=deactivated");
    assert_eq!(
        one_i64(&app, "SELECT active FROM offers WHERE id = ?1", &[&id]),
        0
    );
    let r = chef
        .submit(
            "/admin/offers",
            &format!("/admin/offers/{id}/active"),
            &[("active", "1")],
        )
        .await;
    assert_redirect_to(&r, "/admin/offers?done=activated");
    assert_eq!(
        chef.get("/admin/offers/999999").await.status(),
        StatusCode::NOT_FOUND
    );

    // Every change is in the audit log: who, what, target, from where.
    let rows: Vec<(String, String, String)> = admin_db(&app)
        .with(|c| {
            c.query_map(
                "SELECT actor, action, client_ip FROM audit_log WHERE target = ?1 ORDER BY id",
                params![format!("offer:{id}")],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .expect("rows");
    let actions: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        actions,
        [
            "offer.create",
            "offer.update",
            "offer.deactivate",
            "offer.activate"
        ]
    );
    assert!(rows.iter().all(|r| r.0 == "chef" && r.2 == "127.0.0.1"));
    let (_, html) = chef.get_text("/admin/audit").await;
    assert!(html.contains("offer.deactivate") && html.contains(&format!("offer:{id}")));
}

#[tokio::test]
async fn sessions_are_created_edited_within_capacity_and_cancelled() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let sport = one_i64(&app, "SELECT min(id) FROM sports", &[]);
    let venue = one_i64(&app, "SELECT min(id) FROM venues", &[]);
    let (sport, venue) = (sport.to_string(), venue.to_string());
    let fields = |code: &'static str, capacity: &'static str| {
        vec![
            ("code", code),
            ("title", "Finale test"),
            ("sport_id", sport.as_str()),
            ("venue_id", venue.as_str()),
            ("doors_open_at", "2030-08-03T18:00"),
            ("starts_at", "2030-08-03T19:30"),
            ("ends_at", "2030-08-03T21:30"),
            ("capacity", capacity),
            ("base_price", "45,50"),
            ("entry_rule", "single"),
            ("max_entries", "1"),
            ("entrance", " Porte B, tribune Nord "),
        ]
    };
    let r = chef
        .submit(
            "/admin/sessions/new",
            "/admin/sessions",
            &fields("TST01", "100"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let id = one_i64(
        &app,
        "SELECT id FROM game_sessions WHERE code = 'TST01'",
        &[],
    );
    assert_eq!(location(&r), format!("/admin/sessions/{id}?done=created"));
    assert_eq!(
        one_i64(
            &app,
            "SELECT base_price_cents FROM game_sessions WHERE id = ?1",
            &[&id]
        ),
        4550
    );
    assert_eq!(
        one_i64(
            &app,
            "SELECT entrance = 'Porte B, tribune Nord' FROM game_sessions WHERE id = ?1",
            &[&id]
        ),
        1,
        "the entrance is stored trimmed"
    );
    let (_, html) = chef.get_text(&format!("/admin/sessions/{id}")).await;
    assert!(html.contains("value=\"Porte B, tribune Nord\""), "{html}");
    // 19:30 in Paris in August is 17:30 UTC.
    assert_eq!(
        one_i64(
            &app,
            "SELECT starts_at FROM game_sessions WHERE id = ?1",
            &[&id]
        ),
        1_912_008_600
    );

    // Errors: taken code, end before start, bad price.
    let mut bad = fields("tst01", "100");
    bad[6] = ("ends_at", "2030-08-03T19:00");
    bad[8] = ("base_price", "gratuit");
    let r = chef
        .submit("/admin/sessions/new", "/admin/sessions", &bad)
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    assert!(html.contains("La fin doit suivre le début."));
    assert!(html.contains("Un montant en euros"));
    let r = chef
        .submit(
            "/admin/sessions/new",
            "/admin/sessions",
            &fields("tst01", "100"),
        )
        .await;
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("Une autre épreuve a déjà ce code.")
    );

    // Sales, then capacity can go down to the seats taken but not below.
    let (_, buyer_id) = logged_in_buyer(&app, "acheteuse").await;
    let duo = offer_named(&app, "Duo");
    let (_, tickets) = paid_order(&app, buyer_id, id, duo, 3, 8645);
    let page = format!("/admin/sessions/{id}");
    let r = chef.submit(&page, &page, &fields("TST01", "5")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("La jauge ne peut pas être inférieure")
    );
    let r = chef.submit(&page, &page, &fields("TST01", "6")).await;
    assert_redirect_to(&r, &format!("/admin/sessions/{id}?done=updated"));
    assert_eq!(
        one_i64(
            &app,
            "SELECT capacity FROM game_sessions WHERE id = ?1",
            &[&id]
        ),
        6
    );

    // Cancel: needs the confirmation; then every ticket is revoked, listed
    // for the scanners, and the buyer is mailed.
    let cancel = format!("/admin/sessions/{id}/cancel");
    let r = chef.submit(&page, &cancel, &[]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(ticket_state(&app, &tickets[0]).0, "valid");
    let r = chef.submit(&page, &cancel, &[("confirm", "1")]).await;
    assert_redirect_to(&r, &format!("/admin/sessions/{id}?done=cancelled"));
    let listed = synced_revocations(&app);
    for t in &tickets {
        assert_eq!(
            ticket_state(&app, t),
            ("revoked".to_owned(), Some(2)),
            "session_cancelled"
        );
        assert!(
            listed.contains(t),
            "{t} is in the signed list scanners sync"
        );
    }
    let mail = outbox_mail(&app, "acheteuse@example.com", 1).await;
    assert!(
        mail.contains("Finale test") && mail.contains("annulée"),
        "{mail}"
    );
    assert!(mail.contains("is cancelled"));
    // One mail for the cancellation, none per revoked ticket.
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM mail_outbox WHERE kind = 'ticket_revoked'",
            &[]
        ),
        0
    );
    // A cancelled session stays cancelled; editing it is refused.
    let r = chef.submit(&page, &page, &fields("TST01", "6")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE target = ?1",
            &[&(format!("session:{id}"))]
        ),
        3,
        "create, update, cancel"
    );
}

#[tokio::test]
async fn a_session_with_tickets_sold_cannot_change_its_times() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let id = first_session(&app);
    let page = format!("/admin/sessions/{id}");
    // The edit form as the page fills it in.
    let form_of = |html: &str| -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = [
            "code",
            "title",
            "doors_open_at",
            "starts_at",
            "ends_at",
            "capacity",
            "base_price",
            "max_entries",
        ]
        .iter()
        .map(|name| {
            let value = between(html, &format!("name=\"{name}\""), ">")
                .and_then(|attrs| between(&attrs, "value=\"", "\""))
                .unwrap_or_else(|| panic!("field {name} on the page"));
            ((*name).to_owned(), value)
        })
        .collect();
        for (name, column) in [("sport_id", "sport_id"), ("venue_id", "venue_id")] {
            let v = one_i64(
                &app,
                &format!("SELECT {column} FROM game_sessions WHERE id = ?1"),
                &[&id],
            );
            form.push((name.to_owned(), v.to_string()));
        }
        form.push(("entry_rule".to_owned(), "single".to_owned()));
        form
    };
    let times = || {
        admin_db(&app)
            .with(|c| {
                c.query_row(
                    "SELECT doors_open_at, starts_at, ends_at FROM game_sessions WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?, r.get::<i64>(2)?)),
                )
            })
            .expect("times")
    };
    let submit = |form: Vec<(String, String)>| {
        let chef = &chef;
        let page = page.clone();
        async move {
            let refs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            chef.submit(&page, &page, &refs).await
        }
    };

    // Tickets are sold for it: they carry the signed validity window.
    let (_, buyer_id) = logged_in_buyer(&app, "spectatrice").await;
    let solo = offer_named(&app, "Solo");
    paid_order(&app, buyer_id, id, solo, 2, 2500);
    let (status, html) = chef.get_text(&page).await;
    assert_eq!(status, StatusCode::OK);
    let before = times();

    // Postponed by a year: refused, nothing changed.
    let mut form = form_of(&html);
    for (k, v) in form.iter_mut() {
        if ["doors_open_at", "starts_at", "ends_at"].contains(&k.as_str()) {
            let (y, rest) = v.split_once('-').expect("date");
            *v = format!("{}-{rest}", y.parse::<i32>().expect("year") + 1);
        }
    }
    let r = submit(form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.expect("body");
    assert!(body.contains("horaire ne peut plus changer"), "{body}");
    assert_eq!(times(), before);

    // The edit page says so before the admin confirms.
    assert!(
        html.contains("2 billets vendus : l") && html.contains("horaire ne peut plus changer"),
        "{html}"
    );

    // Other fields stay editable, the times sent back unchanged.
    let mut form = form_of(&html);
    for (k, v) in form.iter_mut() {
        if k == "title" {
            *v = "Finale au nouveau titre".to_owned();
        }
    }
    let r = submit(form).await;
    assert_redirect_to(&r, &format!("/admin/sessions/{id}?done=updated"));
    assert_eq!(times(), before);
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM game_sessions WHERE id = ?1 AND title = 'Finale au nouveau titre'",
            &[&id]
        ),
        1
    );
}
