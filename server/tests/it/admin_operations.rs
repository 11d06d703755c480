//! Admin console: orders and tickets (search, revoke, refund, re-issue),
//! scanner devices (enrolment code and QR, revocation), the dashboard and
//! the scans view, and the CSV exports.

use crate::common::admin::*;
use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn orders_are_found_refunded_and_tickets_revoked_or_reissued() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let (_, buyer) = logged_in_buyer(&app, "curie_m").await;
    let session = first_session(&app);
    let solo = offer_named(&app, "Solo");
    let famille = offer_named(&app, "Famille");
    let (order_a, tickets_a) = paid_order(&app, buyer, session, solo, 2, 5000);
    let (order_b, tickets_b) = paid_order(&app, buyer, session, famille, 1, 17000);

    // Search by email prefix, name, order number and ticket code.
    for q in [
        "curie_m@exa",
        "marie cur",
        "Curie Marie",
        order_a.as_str(),
        &tickets_a[1].to_uppercase(),
    ] {
        let (s, html) = chef
            .get_text(&format!("/admin/orders?q={}", q.replace(' ', "+")))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains(&order_a), "search {q:?} finds the order");
    }
    // Wildcards typed by the admin are literal characters.
    let (_, html) = chef.get_text("/admin/orders?q=%25").await;
    assert!(html.contains("id=\"no-hits\""), "a lone % matches nothing");

    // Revoke one ticket with a reason: it enters the synced list.
    let page = format!("/admin/tickets/{}", tickets_a[0]);
    let r = chef
        .submit(
            &page,
            &format!("{page}/revoke"),
            &[("reason", "fraud"), ("note", "")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a note is required"
    );
    let r = chef
        .submit(
            &page,
            &format!("{page}/revoke"),
            &[("reason", "fraud"), ("note", "copie vendue en ligne")],
        )
        .await;
    assert_redirect_to(&r, &format!("{page}?done=revoked"));
    assert_eq!(
        ticket_state(&app, &tickets_a[0]),
        ("revoked".to_owned(), Some(4))
    );
    assert!(synced_revocations(&app).contains(&tickets_a[0]));
    let (_, html) = chef.get_text(&page).await;
    assert!(html.contains("Fraude") && html.contains("copie vendue en ligne"));

    // Re-issue the other ticket: a new id and signature, the old one revoked.
    let page = format!("/admin/tickets/{}", tickets_a[1]);
    let r = chef.submit(&page, &format!("{page}/reissue"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    let new_code = to
        .strip_prefix("/admin/tickets/")
        .and_then(|s| s.strip_suffix("?done=reissued"))
        .expect("goes to the new ticket")
        .to_owned();
    assert_ne!(new_code, tickets_a[1]);
    assert_eq!(
        ticket_state(&app, &tickets_a[1]),
        ("revoked".to_owned(), Some(3))
    );
    assert_eq!(ticket_state(&app, &new_code), ("valid".to_owned(), None));
    let (new_id, old_id) = (
        hex::decode(&new_code).expect("hex"),
        hex::decode(&tickets_a[1]).expect("hex"),
    );
    let (idx, replaces_old, qr): (i64, i64, String) = admin_db(&app)
        .with(|c| {
            c.query_row(
                "SELECT n.idx, n.replaces = o.id, n.qr FROM tickets n JOIN tickets o ON o.ticket_id = ?2
                 WHERE n.ticket_id = ?1",
                params![new_id, old_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .expect("new ticket");
    assert_eq!(idx, 2, "next free derivation index of the order");
    assert_eq!(replaces_old, 1);
    let (payload, _) = jo_shared::qr::decode_string(&qr).expect("signed QR decodes");
    let p = jo_shared::TicketPayload::decode(&payload).expect("payload");
    assert_eq!(p.ticket_id.to_hex(), new_code);
    assert_eq!(i64::from(p.session_id), session);
    let (_, html) = chef.get_text(&format!("/admin/tickets/{new_code}")).await;
    assert!(
        html.contains(&tickets_a[1]),
        "the new ticket shows what it replaces"
    );
    // A revoked ticket cannot be re-issued.
    let r = chef.submit(&page, &format!("{page}/reissue"), &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Refund order B: refunded, seats back, tickets revoked and listed.
    let taken_before = one_i64(
        &app,
        "SELECT seats_taken FROM game_sessions WHERE id = ?1",
        &[&session],
    );
    let page = format!("/admin/orders/{order_b}");
    let (s, html) = chef.get_text(&page).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&tickets_b[0]) && html.contains("Famille"));
    let r = chef.submit(&page, &format!("{page}/refund"), &[]).await;
    assert_redirect_to(&r, &format!("{page}?done=refunded"));
    assert_eq!(
        one_i64(
            &app,
            "SELECT status = 'refunded' AND refunded_at IS NOT NULL FROM orders WHERE number = ?1",
            &[&order_b]
        ),
        1
    );
    assert_eq!(
        one_i64(
            &app,
            "SELECT seats_taken FROM game_sessions WHERE id = ?1",
            &[&session]
        ),
        taken_before - 4
    );
    assert_eq!(
        ticket_state(&app, &tickets_b[0]),
        ("revoked".to_owned(), Some(1))
    );
    assert!(synced_revocations(&app).contains(&tickets_b[0]));
    // Refunding twice changes nothing.
    let r = chef.submit(&page, &format!("{page}/refund"), &[]).await;
    assert_redirect_to(&r, &page);

    // The dashboard counts order A's two sales (the re-issue replaces one,
    // the fraud revocation does not refund it) and not refunded order B.
    let (s, html) = chef.get_text("/admin").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("<svg") && html.contains("id=\"chart-offer-tickets\""));
    assert_eq!(
        between(&html, "id=\"kpi-tickets\">", "<").as_deref(),
        Some("2")
    );

    let actions: Vec<String> = admin_db(&app)
        .with(|c| {
            c.query_map("SELECT action FROM audit_log ORDER BY id", params![], |r| {
                r.get(0)
            })
        })
        .expect("rows");
    assert_eq!(actions, ["ticket.revoke", "ticket.reissue", "order.refund"]);
}

#[tokio::test]
async fn devices_are_enrolled_with_a_one_time_code_and_revoked() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let r = chef
        .submit("/admin/devices", "/admin/devices/codes", &[])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("body");
    let code = between(&html, "id=\"enrol-code\">", "<").expect("code shown");
    let qr_text = between(&html, "id=\"enrol-qr-text\">", "<").expect("QR text shown");
    let invite =
        jo_shared::api::EnrollmentInvite::parse(&qr_text).expect("the scanner's QR format");
    assert_eq!(invite.code, code);
    assert_eq!(invite.server_url, app.addr);
    let svg_start = html.find("<svg").expect("QR as inline SVG");
    assert!(html[svg_start..].contains("</svg>"));
    // Only the code's hash is stored, live for a day; the audit log has no code.
    let hash = jo_server::auth::tokens::hash_enrollment_code(&code).expect("code format");
    assert_eq!(
        one_i64(
            &app,
            "SELECT expires_at - created_at FROM enrollment_codes WHERE code_hash = ?1 AND used_at IS NULL",
            &[&&hash[..]]
        ),
        24 * 3600
    );
    // Where the code would be in the detail: SQLite's instr, PostgreSQL's strpos.
    let find = if app.config.postgres.is_some() {
        "strpos"
    } else {
        "instr"
    };
    assert_eq!(
        one_i64(
            &app,
            &format!(
                "SELECT count(*) FROM audit_log WHERE action = 'device.enrollment_code' AND {find}(detail, ?1) = 0"
            ),
            &[&code]
        ),
        1
    );

    device(&app, "dev-porte-a", "Laptop 1", "Porte A");
    let (_, html) = chef.get_text("/admin/devices").await;
    assert!(html.contains("Laptop 1") && html.contains("Porte A"));
    let r = chef
        .submit("/admin/devices", "/admin/devices/dev-porte-a/revoke", &[])
        .await;
    assert_redirect_to(&r, "/admin/devices?done=revoked");
    assert_eq!(
        one_i64(
            &app,
            "SELECT revoked_at IS NOT NULL FROM devices WHERE id = 'dev-porte-a'",
            &[]
        ),
        1
    );
    let r = chef
        .submit("/admin/devices", "/admin/devices/dev-porte-a/revoke", &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "already revoked");
}

#[tokio::test]
async fn scans_view_and_csv_exports_show_entries_refusals_and_conflicts() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let (_, buyer) = logged_in_buyer(&app, "curie_m").await;
    let session = first_session(&app);
    let duo = offer_named(&app, "Duo");
    let (_, tickets) = paid_order(&app, buyer, session, duo, 2, 9000);
    device(&app, "dev-a", "Laptop A", "Porte A");
    device(&app, "dev-b", "=HYPERLINK(\"http://evil\")", "Porte B");
    let t0 = 1_900_000_000;
    scan(
        &app,
        "s1",
        "dev-a",
        Some(&tickets[0]),
        Some(session),
        "admit",
        None,
        "Porte A",
        t0,
        t0 + 5,
    );
    scan(
        &app,
        "s2",
        "dev-b",
        Some(&tickets[0]),
        Some(session),
        "admit",
        None,
        "Porte B",
        t0 + 60,
        t0 + 2 * 3600,
    );
    scan(
        &app,
        "s3",
        "dev-a",
        Some(&tickets[1]),
        Some(session),
        "admit",
        None,
        "Porte A",
        t0 + 3700,
        t0 + 3705,
    );
    scan(
        &app,
        "s4",
        "dev-a",
        None,
        None,
        "refuse",
        Some("bad_signature"),
        "Porte A",
        t0 + 70,
        t0 + 75,
    );
    scan(
        &app,
        "s5",
        "dev-a",
        Some(&tickets[0]),
        Some(session),
        "used",
        Some("already_used"),
        "Porte A",
        t0 + 80,
        t0 + 85,
    );
    conflict(&app, "double_admit", "s2", "dev-b", Some(&tickets[0]));
    conflict(&app, "late_upload", "s2", "dev-b", Some(&tickets[0]));
    conflict(&app, "unknown_ticket", "s6", "dev-a", None);

    let (s, html) = chef.get_text("/admin/scans").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        between(&html, "id=\"kpi-scans\">", "<").as_deref(),
        Some("5")
    );
    assert_eq!(
        between(&html, "id=\"kpi-late\">", "<").as_deref(),
        Some("1")
    );
    let entries = between(&html, "id=\"entries\"", "</table>").expect("entries table");
    assert!(entries.contains("Porte A") && entries.contains("Porte B"));
    // Refusals in words (the code beside them); a ticket shown again after
    // use is counted apart, not among the refusals.
    let refused = between(&html, "id=\"refused\"", "</table>").expect("refusals table");
    assert!(
        refused.contains("Signature invalide (billet modifié)")
            && refused.contains("bad_signature"),
        "{refused}"
    );
    assert!(!refused.contains("already_used") && !refused.contains("Déjà utilisé"));
    assert_eq!(
        between(&html, "id=\"kpi-used\">", "<").as_deref(),
        Some("1")
    );
    // An empty table says so.
    let (_, empty) = chef.get_text("/admin/scans?gate=Nulle+part").await;
    let none = between(&empty, "id=\"entries\"", "</table>").expect("entries table");
    assert!(none.contains("Aucune entrée enregistrée"), "{none}");
    let counts = between(&html, "id=\"conflict-counts\"", "</ul>").expect("conflict counts");
    assert!(counts.contains("Billet admis deux fois") && counts.contains("Remontée tardive"));
    assert!(html.contains("id=\"chart-entries\""));
    let (_, html) = chef.get_text("/admin/scans?kind=unknown_ticket").await;
    let listed = between(&html, "id=\"conflicts\"", "</table>").expect("conflicts");
    assert!(
        listed.contains("Signature valide, billet inconnu") && !listed.contains("Remontée tardive")
    );
    let (_, html) = chef
        .get_text(&format!("/admin/scans?session={session}&gate=Porte+B"))
        .await;
    let entries = between(&html, "id=\"entries\"", "</table>").expect("entries table");
    assert!(entries.contains("Porte B") && !entries.contains("Porte A"));

    // Scans CSV: parses, one record per scan, formula cells defused.
    let r = chef.get("/admin/scans.csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let body = r.text().await.expect("body");
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let headers = rd.headers().expect("header row").clone();
    assert_eq!(&headers[0], "id");
    assert_eq!(&headers[7], "verdict");
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("valid CSV");
    assert_eq!(rows.len(), 5);
    assert_eq!(&rows[0][1], "s1");
    assert_eq!(&rows[0][6], tickets[0].as_str());
    assert_eq!(&rows[0][10], "2030-03-17T17:46:40Z");
    assert_eq!(
        &rows[1][3], "'=HYPERLINK(\"http://evil\")",
        "formula injection defused"
    );
    let r = chef
        .get(&format!("/admin/scans.csv?session={}", session + 1_000_000))
        .await;
    let body = r.text().await.expect("body");
    assert_eq!(
        csv::Reader::from_reader(body.as_bytes()).records().count(),
        0
    );

    // Sales CSV.
    let body = chef
        .get("/admin/sales.csv")
        .await
        .text()
        .await
        .expect("body");
    let mut rd = csv::Reader::from_reader(body.as_bytes());
    let rows: Vec<csv::StringRecord> = rd.records().collect::<Result<_, _>>().expect("valid CSV");
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][1], "paid");
    assert_eq!(&rows[0][4], "curie_m@example.com");
    assert_eq!(&rows[0][8], "Duo");
    assert_eq!(&rows[0][10], "2");
    assert_eq!(&rows[0][11], "90.00");
    assert_eq!(&rows[0][12], "180.00");
}

#[tokio::test]
async fn a_reissued_ticket_keeps_the_holders_full_name_on_the_server() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let (_, buyer) = logged_in_buyer(&app, "lauraguais").await;
    let session = first_session(&app);
    let solo = offer_named(&app, "Solo");
    let (_, tickets) = paid_order(&app, buyer, session, solo, 1, 5000);
    // A name longer than the payload carries, kept whole like a bought ticket's.
    let full = "Marie-Françoise Élisabeth de La Tour d'Auvergne-Lauraguais";
    assert!(full.chars().count() > jo_shared::ticket::MAX_HOLDER_LEN);
    let ticket = hex::decode(&tickets[0]).expect("hex");
    admin_db(&app)
        .with(|c| {
            c.execute(
                "UPDATE tickets SET holder = ?2 WHERE ticket_id = ?1",
                jo_server::db::sql::params![ticket, full],
            )
        })
        .expect("holder");

    let page = format!("/admin/tickets/{}", tickets[0]);
    let r = chef.submit(&page, &format!("{page}/reissue"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let new_code = location(&r)
        .strip_prefix("/admin/tickets/")
        .and_then(|s| s.strip_suffix("?done=reissued"))
        .expect("goes to the new ticket")
        .to_owned();
    let new_id = hex::decode(&new_code).expect("hex");
    let (holder, qr): (String, String) = admin_db(&app)
        .with(|c| {
            c.query_row(
                "SELECT holder, qr FROM tickets WHERE ticket_id = ?1",
                jo_server::db::sql::params![new_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .expect("new ticket");
    assert_eq!(holder, full, "the server keeps the full name");
    let (payload, _) = jo_shared::qr::decode_string(&qr).expect("signed QR decodes");
    let p = jo_shared::TicketPayload::decode(&payload).expect("payload");
    assert_eq!(
        p.holder.as_str(),
        jo_shared::HolderName::shorten(full).as_str(),
        "the payload carries the short form"
    );
}

/// The mails about a revoked ticket that reach the sink within `wait`
/// (other mails, such as the account's own, are passed over).
async fn revocation_mails(
    sink: &mut crate::common::smtp::SmtpSink,
    wait: std::time::Duration,
) -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    while let Some(m) = sink.next_within(wait).await {
        let body = mail_body(&m.data);
        if body.contains("no longer valid") {
            found.push((m.rcpt_to, body));
        }
    }
    found
}

#[tokio::test]
async fn the_holder_is_mailed_once_when_a_ticket_is_revoked_reissued_or_refunded() {
    use jo_server::config::{SmtpSettings, SmtpTls};
    let mut sink = crate::common::smtp::SmtpSink::start().await;
    let port = sink.port;
    let app = spawn_app_with(|c| {
        c.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
        });
    })
    .await;
    let (chef, _) = admin(&app).await;
    // A verified buyer with the admin's password (registering would need
    // the verification link, which went to the sink).
    let hash: String = admin_db(&app)
        .with(|c| {
            c.query_row(
                "SELECT password_hash FROM users WHERE email = 'chef@example.com'",
                params![],
                |r| r.get(0),
            )
        })
        .expect("the admin's hash");
    crate::common::shop::insert_buyers(&admin_db(&app), "curie_m", &hash, 1);
    let buyer_browser = Browser::new(&app);
    assert_redirect_to(
        &buyer_browser
            .login("curie_m0@example.com", GOOD_PASSWORD)
            .await,
        "/",
    );
    let buyer = one_i64(
        &app,
        "SELECT id FROM users WHERE email = 'curie_m0@example.com'",
        &[],
    );
    let session = first_session(&app);
    let solo = offer_named(&app, "Solo");
    let famille = offer_named(&app, "Famille");
    let (order_a, tickets_a) = paid_order(&app, buyer, session, solo, 2, 5000);
    let (order_b, tickets_b) = paid_order(&app, buyer, session, famille, 1, 17000);
    let quiet = std::time::Duration::from_secs(3);
    let to = vec!["curie_m0@example.com".to_owned()];

    // Revoked by the organiser (fraud): one mail, the reason in words.
    let page = format!("/admin/tickets/{}", tickets_a[0]);
    let r = chef
        .submit(
            &page,
            &format!("{page}/revoke"),
            &[("reason", "fraud"), ("note", "copie vendue en ligne")],
        )
        .await;
    assert_redirect_to(&r, &format!("{page}?done=revoked"));
    let mails = revocation_mails(&mut sink, quiet).await;
    assert_eq!(mails.len(), 1, "one mail for the revocation: {mails:?}");
    let (rcpt, body) = &mails[0];
    assert_eq!(rcpt, &to);
    assert!(
        body.contains(&order_a) && body.contains("frauduleux"),
        "{body}"
    );
    assert!(body.contains("fraudulent use"), "English too: {body}");
    assert!(
        !body.contains("copie vendue"),
        "the admin's note stays in the console"
    );

    // Re-issued to the same holder: one mail in all (not a revocation
    // notice beside the new ticket's mail), naming the old code as no
    // longer valid and giving the new one.
    let page = format!("/admin/tickets/{}", tickets_a[1]);
    let r = chef.submit(&page, &format!("{page}/reissue"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut mails = Vec::new();
    while let Some(m) = sink.next_within(quiet).await {
        mails.push((m.rcpt_to.clone(), mail_body(&m.data)));
    }
    assert_eq!(mails.len(), 1, "one mail for the re-issue: {mails:?}");
    let (rcpt, body) = &mails[0];
    assert_eq!(rcpt, &to);
    let new_code: String = admin_db(&app)
        .with(|c| {
            c.query_row(
                "SELECT n.ticket_id FROM tickets n JOIN tickets o ON o.id = n.replaces
                  WHERE o.ticket_id = ?1",
                params![&hex::decode(&tickets_a[1]).expect("hex code")[..]],
                |r| r.get::<Vec<u8>>(0),
            )
        })
        .map(hex::encode)
        .expect("the new ticket");
    assert!(
        body.contains("dont le code n'est plus valable")
            && body.contains("whose code is no longer valid")
            && body.contains(&tickets_a[1])
            && body.contains(&new_code),
        "{body}"
    );

    // Refunded: one mail per ticket of the order, saying the money goes back.
    let page = format!("/admin/orders/{order_b}");
    let r = chef.submit(&page, &format!("{page}/refund"), &[]).await;
    assert_redirect_to(&r, &format!("{page}?done=refunded"));
    let mails = revocation_mails(&mut sink, quiet).await;
    assert_eq!(mails.len(), tickets_b.len(), "{mails:?}");
    let (rcpt, body) = &mails[0];
    assert_eq!(rcpt, &to);
    assert!(
        body.contains(&order_b) && body.contains("remboursé sur la carte"),
        "{body}"
    );
    assert!(body.contains("refunded to the card"), "{body}");

    // Nothing more, and each revocation wrote one row.
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM mail_outbox WHERE kind = 'ticket_revoked'",
            &[]
        ),
        1 + i64::try_from(tickets_b.len()).expect("small")
    );

    // "Mes billets" says why each ticket no longer works.
    let (s, html) = buyer_browser.get_text("/tickets").await;
    assert_eq!(s, StatusCode::OK);
    for words in ["usage frauduleux", "Remplacé", "Remboursé"] {
        assert!(html.contains(words), "{words} on my tickets");
    }
}

#[tokio::test]
async fn a_session_is_reissued_whole_but_for_a_listed_ticket_and_only_once_per_run() {
    let app = spawn_app().await;
    let (chef, _) = admin(&app).await;
    let (seller, a) = logged_in_buyer(&app, "curie_m").await;
    let (_, b) = logged_in_buyer(&app, "joliot_i").await;
    let session = first_session(&app);
    let solo = offer_named(&app, "Solo");
    let famille = offer_named(&app, "Famille");
    let (_, tickets_a) = paid_order(&app, a, session, solo, 2, 5000);
    let (_, tickets_b) = paid_order(&app, b, session, famille, 1, 17000);
    // One of A's tickets is listed for resale: its listing names it.
    let r = seller
        .submit(
            "/tickets",
            &format!("/tickets/{}/resale", tickets_a[1]),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "listed");
    let taken = "SELECT seats_taken FROM game_sessions WHERE id = ?1";
    let taken_before = one_i64(&app, taken, &[&session]);

    let page = format!("/admin/sessions/{session}");
    let (_, html) = chef.get_text(&page).await;
    assert!(
        html.contains("id=\"reissue-h\""),
        "offered: tickets are sold"
    );
    let r = chef.submit(&page, &format!("{page}/reissue"), &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the box must be ticked"
    );
    assert_eq!(ticket_state(&app, &tickets_a[0]).0, "valid");

    let r = chef
        .submit(
            &page,
            &format!("{page}/reissue"),
            &[("confirm_reissue", "1")],
        )
        .await;
    assert_redirect_to(&r, &format!("{page}?done=reissued&n=2&left=1"));
    let (_, html) = chef.get_text(&location(&r)).await;
    assert_eq!(
        between(&html, "id=\"reissued-count\">", "<").as_deref(),
        Some("2")
    );
    assert_eq!(
        between(&html, "id=\"reissued-left\">", "<").as_deref(),
        Some("1")
    );
    // The old codes are revoked `reissued` and in the synced list; the
    // listed ticket is untouched; each holder has a new valid ticket.
    let listed = synced_revocations(&app);
    for old in [&tickets_a[0], &tickets_b[0]] {
        assert_eq!(ticket_state(&app, old), ("revoked".to_owned(), Some(3)));
        assert!(listed.contains(old), "{old} in the signed list");
    }
    assert_eq!(
        ticket_state(&app, &tickets_a[1]),
        ("valid".to_owned(), None)
    );
    let valid_of = |user: i64| {
        one_i64(
            &app,
            "SELECT count(*) FROM tickets WHERE session_id = ?1 AND user_id = ?2 AND status = 'valid'",
            &[&session, &user],
        )
    };
    assert_eq!((valid_of(a), valid_of(b)), (2, 1));
    assert_eq!(
        one_i64(&app, taken, &[&session]),
        taken_before,
        "a re-issue moves no seat"
    );
    let new_b: String = admin_db(&app)
        .with(|c| {
            c.query_row(
                "SELECT n.qr FROM tickets n JOIN tickets o ON o.id = n.replaces WHERE o.ticket_id = ?1",
                params![&hex::decode(&tickets_b[0]).expect("hex")[..]],
                |r| r.get(0),
            )
        })
        .expect("B's new ticket");
    let (payload, _) = jo_shared::qr::decode_string(&new_b).expect("signed QR decodes");
    let p = jo_shared::TicketPayload::decode(&payload).expect("payload");
    assert_eq!(i64::from(p.session_id), session);
    assert_eq!(p.admits, 4, "a Famille ticket still admits four");
    assert_eq!(
        one_i64(
            &app,
            "SELECT count(*) FROM mail_outbox WHERE kind = 'ticket_reissued'",
            &[]
        ),
        2,
        "each holder mailed their new ticket"
    );
    let audit = |action: &str| {
        one_i64(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            &[&action],
        )
    };
    assert_eq!((audit("ticket.reissue"), audit("session.reissue")), (2, 1));

    // Again: the two tickets re-issued just now, not the ones they made.
    let r = chef
        .submit(
            &page,
            &format!("{page}/reissue"),
            &[("confirm_reissue", "1")],
        )
        .await;
    assert_redirect_to(&r, &format!("{page}?done=reissued&n=2&left=1"));
    assert_eq!((valid_of(a), valid_of(b)), (2, 1));
}
