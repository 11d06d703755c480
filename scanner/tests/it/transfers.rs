//! A transfer reaching the gates: a ticket handed to another account by the
//! server's transfer (offer, acceptance: the ticket re-issued, the old one
//! revoked `transferred`) is refused as revoked by `jo-scanner verify` at a
//! gate's next sync, while the new holder's ticket is admitted; a gate that
//! has not synced since still admits the old code (the gap the upload
//! flags).

use std::sync::Arc;

use crate::common::{Server, enrolled_scanner, qr_png, scanner_ok, unix_now};
use jo_server::db::audit::Actor;
use jo_server::db::outbox::{MailKind, Outgoing};
use jo_server::db::sql::params;
use jo_server::db::transfers::{AcceptOutcome, OfferOutcome};
use jo_shared::doublekey::{PurchaseKey, UserKey};
use jo_shared::ticket::TicketId;

fn actor(id: i64, name: &str) -> Actor {
    Actor {
        id,
        username: name.into(),
        ip: "127.0.0.1".into(),
    }
}

#[test]
fn the_old_code_of_a_transferred_ticket_is_refused_after_the_next_sync() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let now = unix_now();
    let seller_key = UserKey::generate().expect("random");
    let purchase = PurchaseKey::generate().expect("random");
    // A session starting in ten minutes, doors open: a ticket valid now
    // that can still change hands.
    let session: i64 = server
        .db()
        .with(|c| {
            c.execute(
                "INSERT INTO sports (name) VALUES ('Judo') ON CONFLICT DO NOTHING",
                params![],
            )?;
            c.execute(
                "INSERT INTO venues (name, city) VALUES ('Arena', 'Paris') ON CONFLICT DO NOTHING",
                params![],
            )?;
            c.query_row(
                "INSERT INTO game_sessions (code, sport_id, venue_id, title, starts_at, ends_at,
                    doors_open_at, capacity, base_price_cents, created_at, updated_at)
                 VALUES ('TR-1', (SELECT id FROM sports WHERE name = 'Judo'),
                    (SELECT id FROM venues WHERE name = 'Arena'), 'Judo, finale',
                    ?1, ?2, ?3, 100, 5000, ?4, ?4) RETURNING id",
                params![now + 600, now + 3 * 3600, now - 3600, now],
                |r| r.get(0),
            )
        })
        .expect("session");
    let session32 = u32::try_from(session).expect("u32");
    let t = jo_server::tickets::issue(
        &server.signer(),
        &seller_key,
        &purchase,
        &jo_server::tickets::TicketSpec {
            index: 0,
            session_id: session32,
            admits: 1,
            valid_from: now - 3600,
            valid_until: now + 4 * 3600,
            holder: "Paul Martin",
        },
    )
    .expect("issues");
    server
        .db()
        .with(|c| {
            for (name, email, key) in [
                ("paul", "paul@example.fr", seller_key.as_bytes().to_vec()),
                ("lea", "lea@example.fr", UserKey::generate().expect("random").as_bytes().to_vec()),
            ] {
                c.execute(
                    "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key,
                         role, email_verified_at, created_at)
                     VALUES (?1, ?2, ?1, 'Test', 'x', ?3, 'buyer', 1, 1)",
                    params![name, email, key],
                )?;
            }
            c.execute(
                "INSERT INTO offers (name, seats, price_percent, created_at, updated_at) VALUES ('Solo TR', 1, 100, 0, 0)",
                params![],
            )?;
            c.execute(
                "INSERT INTO orders (number, user_id, status, total_cents, created_at, hold_expires_at, paid_at, purchase_key)
                 VALUES ('TRANS-00001', (SELECT id FROM users WHERE username = 'paul'), 'paid', 5000, ?1, ?1, ?1, ?2)",
                params![now, &purchase.as_bytes()[..]],
            )?;
            c.execute(
                "INSERT INTO order_lines (order_id, session_id, offer_id, offer_name, seats, quantity, unit_price_cents)
                 VALUES ((SELECT id FROM orders WHERE number = 'TRANS-00001'), ?1,
                         (SELECT id FROM offers WHERE name = 'Solo TR'), 'Solo', 1, 1, 5000)",
                params![session],
            )?;
            c.execute(
                "INSERT INTO tickets (ticket_id, order_id, order_line_id, idx, user_id, session_id, offer_id,
                     holder, admits, key_id, valid_from, valid_minutes, qr, status, issued_at)
                 SELECT ?1, o.id, l.id, 0, o.user_id, ?2, l.offer_id, 'Paul Martin', 1, ?3, ?4, ?5, ?6, 'valid', ?7
                 FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.number = 'TRANS-00001'",
                params![&t.ticket_id.0[..], session, &t.key_id.0[..], t.valid_from, t.valid_minutes, t.qr, now],
            )
        })
        .expect("a paid ticket");
    let (paul, lea): (i64, i64) = server
        .db()
        .with(|c| {
            c.query_row(
                "SELECT (SELECT id FROM users WHERE username = 'paul'), (SELECT id FROM users WHERE username = 'lea')",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .expect("ids");

    // Both gates are enrolled and synced while the ticket is Paul's.
    let a_dir = data.path().join("gate-a");
    let b_dir = data.path().join("gate-b");
    enrolled_scanner(&server, &a_dir, "Porte A");
    enrolled_scanner(&server, &b_dir, "Porte B");
    scanner_ok(&a_dir, &["sync"]);
    scanner_ok(&b_dir, &["sync"]);
    let old_png = qr_png(data.path(), "old", &t.qr);

    // The server's transfer: offered to Léa's address, accepted by her.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let new_code = rt.block_on(async {
        let store = jo_server::startup::open_store(&server.config)
            .await
            .expect("store");
        let token = [7u8; 32];
        let mail = Outgoing::rendered(
            MailKind::Transfer,
            "lea@example.fr".into(),
            "fr",
            "Billet".into(),
            "Un billet vous est offert.".into(),
        );
        let out = store
            .offer_transfer(
                actor(paul, "paul"),
                t.ticket_id,
                "lea@example.fr".into(),
                token,
                3600,
                2,
                mail,
            )
            .await
            .expect("offers");
        assert!(matches!(out, OfferOutcome::Offered(_)), "{out:?}");
        let out = store
            .accept_transfer(
                actor(lea, "lea"),
                "lea@example.fr".into(),
                token,
                Arc::new(server.signer()),
                jo_server::web::shop::transfers::reissued_mail("http://127.0.0.1".into()),
            )
            .await
            .expect("accepts");
        match out {
            AcceptOutcome::Accepted(code) => code,
            other => panic!("not accepted: {other:?}"),
        }
    });
    let new_id = TicketId::from_hex(&new_code).expect("code");
    let new_qr: String = server
        .db()
        .with(|c| {
            c.query_row(
                "SELECT qr FROM tickets WHERE ticket_id = ?1",
                params![&new_id.0[..]],
                |r| r.get(0),
            )
        })
        .expect("new ticket");
    let new_png = qr_png(data.path(), "new", &new_qr);

    // Gate B syncs: the old code is refused as revoked, the new one admitted.
    let down = scanner_ok(&b_dir, &["sync"]);
    assert_eq!(down["revocations_added"], 1, "{down}");
    let v = scanner_ok(&b_dir, &["verify", old_png.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "refuse", "{v}");
    assert_eq!(v["reason"], "revoked", "{v}");
    assert_eq!(v["revocation_reason"], "transferred", "{v}");
    let v = scanner_ok(&b_dir, &["verify", new_png.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "admit", "{v}");
    assert_eq!(v["holder"], "LEA TEST");
    // The server lists it with reason `transferred` (what the gate's panel names).
    let reason: i64 = server
        .db()
        .with(|c| {
            c.query_row(
                "SELECT reason FROM revocations WHERE ticket_id = ?1",
                params![&t.ticket_id.0[..]],
                |r| r.get(0),
            )
        })
        .expect("listed");
    assert_eq!(
        reason,
        i64::from(jo_shared::revocation::RevocationReason::Transferred.code())
    );
    // Gate A has not synced since: it cannot know, and admits the old code.
    let v = scanner_ok(&a_dir, &["verify", old_png.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "admit", "the gap: {v}");
}
