//! Named tickets and transfers over HTTP, with the mails through a real
//! SMTP sink: holder names at checkout, a name change (a re-issue), an
//! offer accepted by its recipient (and refused to a third account),
//! declined, cancelled by its sender, and lapsed; and at a gate after its
//! sync, the old code refused as revoked `transferred` while the new one is
//! admitted — and an old code admitted offline before the sync flagged
//! `admitted_after_revocation` on upload.

use std::time::Duration;

use jo_server::auth::password::PasswordHasher;
use jo_server::config::{Argon2Params, Secret, SmtpSettings, SmtpTls};
use jo_server::db::sql::params;
use jo_shared::api::{RevocationDelta, ScanBatchResponse, ScanId, ScanRecord, ScanVerdict, paths};
use jo_shared::revocation::{RevocationList, RevocationReason};
use jo_shared::verify::{NoEntries, Refusal, VerifyContext, verify};
use jo_shared::{TicketId, TicketPayload, Verdict};
use reqwest::StatusCode;

use crate::common::api::{ApiDevice, conflict_kinds, json_of};
use crate::common::shop::*;
use crate::common::smtp::{Received, SmtpSink};
use crate::common::*;

fn smtp_to(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
    }
}

/// A verified account `{username}@example.com` named `first last`, logged in.
async fn account(app: &TestApp, username: &str, first: &str, last: &str) -> Browser {
    let hash = PasswordHasher::new(Argon2Params::INSECURE_FOR_TESTS)
        .expect("hasher")
        .hash(Secret::new(GOOD_PASSWORD.to_owned()))
        .await
        .expect("hashes");
    let email = format!("{username}@example.com");
    let mut user_key = [0u8; 32];
    jo_shared::doublekey::random_bytes(&mut user_key).expect("random");
    app.db()
        .with(|c| {
            c.execute(
                "INSERT INTO users (username, email, first_name, last_name, password_hash, user_key,
                     role, email_verified_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'buyer', 1, 1)",
                params![username, email, first, last, hash, user_key],
            )
        })
        .expect("inserts the account");
    let b = Browser::new(app);
    let r = b.login(&email, GOOD_PASSWORD).await;
    assert_redirect_to(&r, "/");
    b
}

/// Mails received so far, kept so that a test can wait for one recipient's
/// without losing the others'.
struct Mailbox {
    sink: SmtpSink,
    seen: Vec<Received>,
}

impl Mailbox {
    /// The next mail to `to` (decoded body), waiting up to 10 s for it.
    async fn next_to(&mut self, to: &str) -> String {
        loop {
            if let Some(i) = self
                .seen
                .iter()
                .position(|m| m.rcpt_to.iter().any(|r| r == to))
            {
                return mail_body(&self.seen.remove(i).data);
            }
            let m = self
                .sink
                .next_within(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no mail to {to} within 10 s"));
            self.seen.push(m);
        }
    }

    /// Whether a mail to `to` arrives within `wait`.
    async fn any_to(&mut self, to: &str, wait: Duration) -> bool {
        if self.seen.iter().any(|m| m.rcpt_to.iter().any(|r| r == to)) {
            return true;
        }
        while let Some(m) = self.sink.next_within(wait).await {
            let hit = m.rcpt_to.iter().any(|r| r == to);
            self.seen.push(m);
            if hit {
                return true;
            }
        }
        false
    }
}

async fn app_with_mail(tweak: impl FnOnce(&mut jo_server::Config)) -> (TestApp, Mailbox) {
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let app = spawn_app_with(|c| {
        c.smtp = Some(smtp_to(port));
        tweak(c);
    })
    .await;
    (
        app,
        Mailbox {
            sink,
            seen: Vec::new(),
        },
    )
}

fn ath01(app: &TestApp) -> i64 {
    sql_i64(
        app,
        "SELECT id FROM game_sessions WHERE code = 'ATH01'",
        &[],
    )
}

/// (status, holder, qr) of a ticket by code.
fn ticket_row(app: &TestApp, code: &str) -> (String, String, String, i64) {
    let id = hex::decode(code).expect("hex");
    app.db()
        .with(|c| {
            c.query_row(
                "SELECT status, holder, qr, user_id FROM tickets WHERE ticket_id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })
        .expect("ticket")
}

fn revocation_reason(app: &TestApp, code: &str) -> Option<i64> {
    let id = hex::decode(code).expect("hex");
    app.db()
        .with(|c| {
            c.query_row(
                "SELECT max(reason) FROM revocations WHERE ticket_id = ?1",
                params![id],
                |r| r.get(0),
            )
        })
        .expect("reads")
}

fn transfer_status(app: &TestApp, code: &str) -> String {
    let id = hex::decode(code).expect("hex");
    app.db()
        .with(|c| {
            c.query_row(
                "SELECT x.status FROM transfers x JOIN tickets t ON t.id = x.ticket
                 WHERE t.ticket_id = ?1 ORDER BY x.id DESC LIMIT 1",
                params![id],
                |r| r.get(0),
            )
        })
        .expect("transfer")
}

/// Offers `code` to `to` from "my tickets"; returns where it went.
async fn offer(b: &Browser, code: &str, to: &str) -> String {
    let r = b
        .submit(
            "/tickets",
            &format!("/tickets/{code}/transfer"),
            &[("email", to)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    location(&r)
}

async fn post_token(b: &Browser, action: &str, token: &str) -> reqwest::Response {
    b.submit("/tickets", action, &[("token", token)]).await
}

/// Gate `d`'s next log record: the admission of `ticket` now, carrying the
/// scanned text `qr` and signed by the gate, as the scanner logs it.
fn admission_of(d: &mut ApiDevice, ticket: TicketId, session: u32, qr: &str) -> ScanRecord {
    d.seq += 1;
    let mut r = ScanRecord {
        scan_id: ScanId::generate().expect("random"),
        seq: d.seq,
        prev_hash: hex::encode(d.last_hash),
        ticket_id: Some(ticket),
        session_id: Some(session),
        raw: Some(qr.to_owned()),
        verdict: ScanVerdict::Admit,
        reason: None,
        admits: 1,
        gate: d.gate.clone(),
        scanned_at: crate::common::api::now(),
        signature: None,
    };
    r.signature = r
        .admission(&d.id)
        .map(|a| hex::encode(d.key.sign(&jo_shared::trust::admission_message(&a))));
    d.last_hash = r.hash();
    r
}

/// The gate's view after a sync: the signed revocation list from `since`.
async fn synced_list(app: &TestApp, gate: &ApiDevice) -> RevocationList {
    let keyring: jo_shared::api::KeyringResponse = gate.get_ok(paths::KEYRING).await;
    let ring = jo_shared::trust::pin(&keyring.chain, None)
        .expect("the chain verifies")
        .keyring()
        .expect("a keyring");
    let delta: RevocationDelta = gate
        .get_ok(&format!("{}?since=0", paths::REVOCATIONS))
        .await;
    let mut list = RevocationList::new();
    list.apply(&delta, &ring).expect("the signed list applies");
    let _ = app;
    list
}

/// A gate's verdict on `qr` with `list`, at the ticket's doors opening.
fn gate_verdict(app: &TestApp, qr: &str, list: &RevocationList) -> Verdict {
    let keyring = jo_shared::keys::load_keyring(&app.config.keys_dir).expect("keyring");
    let (payload, _) = jo_shared::qr::decode_string(qr).expect("QR string");
    let p = TicketPayload::decode(&payload).expect("payload");
    let ctx = VerifyContext {
        keyring: &keyring,
        sessions: &[p.session_id],
        now: i64::from(p.valid_from) + 60,
        skew_secs: 0,
        revocations: list,
        entries: &NoEntries,
    };
    verify(qr, &ctx)
}

#[tokio::test]
async fn holder_names_are_given_at_checkout_and_a_name_change_is_a_reissue() {
    let (app, mut mail) = app_with_mail(|_| {}).await;
    let b = account(&app, "awa", "Awa", "Traoré").await;
    let sid = ath01(&app);
    let offer_id = offer_id(&b, sid, "Solo").await;
    assert_redirect_to(&add_to_cart(&b, sid, offer_id, 2).await, "/cart?added=1");
    let number = order_of_redirect(&checkout(&b).await);
    // The payment page asks for a name per ticket (empty: the buyer).
    let (_, html) = b.get_text(&format!("/orders/{number}/pay")).await;
    assert_eq!(html.matches("name=\"name\"").count(), 2, "{html}");
    // A hostile name is refused, nothing stored.
    let r = b
        .submit(
            &format!("/orders/{number}/pay"),
            &format!("/orders/{number}/holders"),
            &[("name", "Bad\u{7}Name"), ("name", "")],
        )
        .await;
    assert_redirect_to(&r, &format!("/orders/{number}/pay?notice=name_invalid"));
    let r = b
        .submit(
            &format!("/orders/{number}/pay"),
            &format!("/orders/{number}/holders"),
            &[("name", ""), ("name", "  Moussa   Diallo ")],
        )
        .await;
    assert_redirect_to(&r, &format!("/orders/{number}/pay?notice=names_saved"));
    assert_redirect_to(
        &pay(&b, &number, CARD_OK).await,
        &format!("/orders/{number}"),
    );
    mail.next_to("awa@example.com").await; // the confirmation
    let ids = ticket_ids(&b).await;
    assert_eq!(ids.len(), 2);
    let holders: Vec<String> = ids.iter().map(|c| ticket_row(&app, c).1).collect();
    assert_eq!(holders, ["Awa Traoré", "Moussa Diallo"]);
    // The name is signed into the ticket (what the gate shows for the ID check).
    let p = verify_ticket(&app, &ticket_row(&app, &ids[1]).2);
    assert_eq!(p.holder, jo_shared::HolderName::shorten("Moussa Diallo"));
    let (_, page) = b.get_text("/tickets").await;
    assert!(page.contains("Moussa Diallo"), "shown on my tickets");

    // A name change before the session: a new ticket, the old one revoked.
    let r = b
        .submit(
            "/tickets",
            &format!("/tickets/{}/holder", ids[1]),
            &[("name", "Fatou Diallo")],
        )
        .await;
    let to = location(&r);
    assert!(
        to.starts_with("/tickets/done?notice=renamed&ticket="),
        "{to}"
    );
    let new = to.rsplit('=').next().expect("code").to_owned();
    assert_ne!(new, ids[1]);
    let (status, holder, qr, _) = ticket_row(&app, &new);
    assert_eq!(
        (status.as_str(), holder.as_str()),
        ("valid", "Fatou Diallo")
    );
    assert_eq!(verify_ticket(&app, &qr).holder.as_str(), "FATOU DIALLO");
    assert_eq!(ticket_row(&app, &ids[1]).0, "revoked");
    assert_eq!(
        revocation_reason(&app, &ids[1]),
        Some(i64::from(RevocationReason::Reissued.code()))
    );
    // The holder is mailed the new ticket, in the same transaction's outbox row.
    let body = mail.next_to("awa@example.com").await;
    assert!(
        body.contains(&new) && body.contains("Fatou Diallo"),
        "{body}"
    );
    // Seats are not taken again by a re-issue.
    assert_eq!(seats_taken(&app, sid), 2);
    // Another buyer cannot rename it.
    let other = account(&app, "eve", "Eve", "Intruse").await;
    let r = other
        .submit(
            "/tickets",
            &format!("/tickets/{new}/holder"),
            &[("name", "Eve")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_transfer_accepted_by_its_recipient_is_a_new_ticket_and_the_old_code_is_refused_at_a_synced_gate()
 {
    let (app, mut mail) = app_with_mail(|_| {}).await;
    let sender = account(&app, "paul", "Paul", "Martin").await;
    let friend = account(&app, "lea", "Léa", "Dubois").await;
    let third = account(&app, "tiers", "Tom", "Tiers").await;
    let sid = ath01(&app);
    buy(&sender, sid, "Solo", 1).await;
    mail.next_to("paul@example.com").await;
    let code = ticket_ids(&sender).await.remove(0);
    let (_, _, old_qr, _) = ticket_row(&app, &code);

    // A gate that synced before the transfer admits the ticket.
    let gate_before = ApiDevice::enroll(&app, "Porte A").await;
    let before = synced_list(&app, &gate_before).await;
    assert!(matches!(
        gate_verdict(&app, &old_qr, &before),
        Verdict::Admit { .. }
    ));

    // Hostile input: a bad address, the sender's own address, another's ticket.
    assert_eq!(
        offer(&sender, &code, "not an address").await,
        "/tickets/done?notice=email_invalid"
    );
    assert_eq!(
        offer(&sender, &code, "PAUL@example.com").await,
        "/tickets/done?notice=to_self"
    );
    let r = third
        .submit(
            "/tickets",
            &format!("/tickets/{code}/transfer"),
            &[("email", "x@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    assert_eq!(
        offer(&sender, &code, " Lea@Example.com ").await,
        "/tickets/done?notice=offered"
    );
    assert_eq!(
        offer(&sender, &code, "lea@example.com").await,
        "/tickets/done?notice=already_offered"
    );
    let (_, page) = sender.get_text("/tickets").await;
    assert!(
        page.contains("lea@example.com"),
        "the offer shows on my tickets"
    );
    let body = mail.next_to("lea@example.com").await;
    assert!(body.contains("Paul Martin"), "{body}");
    let token = link_token(&body, "/transfers/accept");
    // Until acceptance the sender's ticket stays valid.
    assert_eq!(ticket_row(&app, &code).0, "valid");

    // A visitor is asked to log in; a third account is told it is not theirs.
    let visitor = Browser::new(&app);
    let (status, html) = visitor
        .get_text(&format!("/transfers/accept?token={token}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Connectez-vous"), "{html}");
    let (_, html) = third
        .get_text(&format!("/transfers/accept?token={token}"))
        .await;
    assert!(!html.contains("id=\"accept-transfer\""), "{html}");
    let r = post_token(&third, "/transfers/accept", &token).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_token(&third, "/transfers/decline", &token).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(transfer_status(&app, &code), "pending");
    // A forged token is a 404, not an error.
    let r = post_token(
        &friend,
        "/transfers/accept",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The recipient accepts: a new ticket in her name, the old one revoked.
    let (_, html) = friend
        .get_text(&format!("/transfers/accept?token={token}"))
        .await;
    assert!(html.contains("id=\"accept-transfer\""), "{html}");
    let r = post_token(&friend, "/transfers/accept", &token).await;
    let to = location(&r);
    assert!(
        to.starts_with("/tickets/done?notice=received&ticket="),
        "{to}"
    );
    let new = to.rsplit('=').next().expect("code").to_owned();
    assert_ne!(new, code);
    assert_eq!(ticket_ids(&friend).await, std::slice::from_ref(&new));
    let (status, holder, new_qr, _) = ticket_row(&app, &new);
    assert_eq!((status.as_str(), holder.as_str()), ("valid", "Léa Dubois"));
    assert_eq!(verify_ticket(&app, &new_qr).holder.as_str(), "LÉA DUBOIS");
    assert_eq!(ticket_row(&app, &code).0, "revoked");
    assert_eq!(
        revocation_reason(&app, &code),
        Some(i64::from(RevocationReason::Transferred.code()))
    );
    assert_eq!(transfer_status(&app, &code), "accepted");
    // The new holder is mailed her ticket.
    let body = mail.next_to("lea@example.com").await;
    assert!(body.contains(&new) && body.contains("Léa Dubois"), "{body}");
    // Two holders, two mails: the sender is told apart that the old code
    // no longer admits anyone, without the new holder's code.
    let body = mail.next_to("paul@example.com").await;
    assert!(body.contains("no longer valid"), "{body}");
    assert!(
        !body.contains(&new),
        "the new code stays the new holder's: {body}"
    );
    // Her ticket is hers only: the sender's order no longer serves it.
    let r = sender.get(&format!("/tickets/{new}/qr.png")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = friend.get(&format!("/tickets/{new}/qr.png")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = friend.get(&format!("/tickets/{new}/ticket.pdf")).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Seats are not counted twice.
    assert_eq!(seats_taken(&app, sid), 1);
    // The link is single-use.
    let r = post_token(&friend, "/transfers/accept", &token).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // After its next sync the gate refuses the old code, reason
    // `transferred`, and admits the new one.
    let after = synced_list(&app, &gate_before).await;
    match gate_verdict(&app, &old_qr, &after) {
        Verdict::Refuse {
            reason: Refusal::Revoked { reason },
            ..
        } => assert_eq!(reason, RevocationReason::Transferred),
        other => panic!("old code not refused as transferred: {other:?}"),
    }
    assert!(matches!(
        gate_verdict(&app, &new_qr, &after),
        Verdict::Admit { .. }
    ));

    // The admin console shows the chain of holders.
    let (admin, _) = crate::common::admin::admin(&app).await;
    let (status, html) = admin.get_text(&format!("/admin/tickets/{new}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("paul@example.com") && html.contains("lea@example.com"),
        "{html}"
    );
    // Refunding the sender's order is refused now that its ticket is hers:
    // it would revoke her ticket and free the seat she holds.
    let order: String = app
        .db()
        .with(|c| {
            c.query_row(
                "SELECT o.number FROM orders o JOIN tickets t ON t.order_id = o.id
                 WHERE t.ticket_id = ?1",
                params![hex::decode(&new).expect("hex code")],
                |r| r.get(0),
            )
        })
        .expect("reads the order");
    let page = format!("/admin/orders/{order}");
    let r = admin.submit(&page, &format!("{page}/refund"), &[]).await;
    assert_redirect_to(&r, &format!("{page}?done=handed_over"));
    let (_, html) = admin.get_text(&format!("{page}?done=handed_over")).await;
    assert!(html.contains("Remboursement refusé"), "{html}");
    assert_eq!(ticket_row(&app, &new).0, "valid");
    assert_eq!(seats_taken(&app, sid), 1);
    assert!(
        !mail
            .any_to("tiers@example.com", Duration::from_millis(500))
            .await
    );
}

#[tokio::test]
async fn the_gap_an_offline_gate_admits_the_old_code_and_the_upload_is_flagged() {
    let (app, mut mail) = app_with_mail(|_| {}).await;
    let sender = account(&app, "gap", "Gaspard", "Offline").await;
    let friend = account(&app, "ami", "Amina", "Online").await;
    let sid = ath01(&app);
    buy(&sender, sid, "Solo", 1).await;
    let code = ticket_ids(&sender).await.remove(0);
    let (_, _, old_qr, _) = ticket_row(&app, &code);
    // Gate A synced before the transfer, then went offline.
    let mut offline = ApiDevice::enroll(&app, "Porte hors ligne").await;
    let stale = synced_list(&app, &offline).await;

    offer(&sender, &code, "ami@example.com").await;
    let token = link_token(&mail.next_to("ami@example.com").await, "/transfers/accept");
    let r = post_token(&friend, "/transfers/accept", &token).await;
    let new = location(&r).rsplit('=').next().expect("code").to_owned();
    let (_, _, new_qr, _) = ticket_row(&app, &new);

    // Offline, gate A cannot know: it admits the old code.
    assert!(matches!(
        gate_verdict(&app, &old_qr, &stale),
        Verdict::Admit { .. }
    ));
    let old_id = TicketId::from_hex(&code).expect("code");
    let sid32 = u32::try_from(sid).expect("session id");
    let rec = admission_of(&mut offline, old_id, sid32, &old_qr);
    // Back online, it uploads: the server flags the admission.
    let r: ScanBatchResponse = json_of(
        offline.upload(&offline.batch(vec![rec])).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!((r.stored, r.conflicts), (1, 1));
    assert_eq!(
        conflict_kinds(&app.db(), &offline.id),
        ["admitted_after_revocation"]
    );
    // A synced gate still admits the new holder.
    let synced = ApiDevice::enroll(&app, "Porte à jour").await;
    let list = synced_list(&app, &synced).await;
    assert!(matches!(
        gate_verdict(&app, &new_qr, &list),
        Verdict::Admit { .. }
    ));
    // The console's ticket page shows both holders of the chain.
    let (admin, _) = crate::common::admin::admin(&app).await;
    let (_, html) = admin.get_text(&format!("/admin/tickets/{code}")).await;
    assert!(
        html.contains("gap@example.com") && html.contains("ami@example.com"),
        "{html}"
    );
}

#[tokio::test]
async fn a_declined_or_cancelled_offer_leaves_the_ticket_with_its_sender() {
    let (app, mut mail) = app_with_mail(|_| {}).await;
    let sender = account(&app, "zoe", "Zoé", "Petit").await;
    let friend = account(&app, "max", "Max", "Grand").await;
    let sid = ath01(&app);
    buy(&sender, sid, "Solo", 1).await;
    mail.next_to("zoe@example.com").await;
    let code = ticket_ids(&sender).await.remove(0);

    // Declined: the sender is told and keeps a valid ticket.
    offer(&sender, &code, "max@example.com").await;
    let token = link_token(&mail.next_to("max@example.com").await, "/transfers/accept");
    let r = post_token(&friend, "/transfers/decline", &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(transfer_status(&app, &code), "declined");
    let body = mail.next_to("zoe@example.com").await;
    assert!(body.contains("refusé"), "{body}");
    assert_eq!(ticket_row(&app, &code).0, "valid");
    let r = post_token(&friend, "/transfers/accept", &token).await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "a declined offer cannot be accepted"
    );

    // Cancelled by the sender before the recipient acts: the link is dead.
    offer(&sender, &code, "max@example.com").await;
    let token = link_token(&mail.next_to("max@example.com").await, "/transfers/accept");
    let r = sender
        .submit("/tickets", &format!("/tickets/{code}/transfer/cancel"), &[])
        .await;
    assert_redirect_to(&r, "/tickets/done?notice=cancelled");
    assert_eq!(transfer_status(&app, &code), "cancelled");
    let r = post_token(&friend, "/transfers/accept", &token).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(ticket_row(&app, &code).0, "valid");
    assert_eq!(ticket_ids(&friend).await.len(), 0);
}

#[tokio::test]
async fn an_offer_not_taken_in_time_lapses_and_the_transfers_per_ticket_are_limited() {
    let (app, mut mail) = app_with_mail(|c| {
        c.shop.transfer_offer_secs = 1;
        c.shop.sweep_secs = 1;
        c.shop.max_transfers_per_ticket = 1;
    })
    .await;
    let sender = account(&app, "ines", "Inès", "Lent").await;
    let friend = account(&app, "noe", "Noé", "Tard").await;
    let sid = ath01(&app);
    buy(&sender, sid, "Solo", 1).await;
    mail.next_to("ines@example.com").await;
    let code = ticket_ids(&sender).await.remove(0);

    offer(&sender, &code, "noe@example.com").await;
    let token = link_token(&mail.next_to("noe@example.com").await, "/transfers/accept");
    // The sweep lapses it and tells the sender, who keeps the ticket.
    let body = mail.next_to("ines@example.com").await;
    assert!(body.contains("pas été accepté à temps"), "{body}");
    assert_eq!(transfer_status(&app, &code), "expired");
    let r = post_token(&friend, "/transfers/accept", &token).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(ticket_row(&app, &code).0, "valid");

    // One transfer allowed: the new holder cannot pass it on.
    let (app2, mut mail2) = app_with_mail(|c| c.shop.max_transfers_per_ticket = 1).await;
    let a = account(&app2, "un", "Un", "Premier").await;
    let b = account(&app2, "deux", "Deux", "Second").await;
    buy(&a, ath01(&app2), "Solo", 1).await;
    let code = ticket_ids(&a).await.remove(0);
    offer(&a, &code, "deux@example.com").await;
    let token = link_token(
        &mail2.next_to("deux@example.com").await,
        "/transfers/accept",
    );
    let new = location(&post_token(&b, "/transfers/accept", &token).await)
        .rsplit('=')
        .next()
        .expect("code")
        .to_owned();
    assert_eq!(
        offer(&b, &new, "trois@example.com").await,
        "/tickets/done?notice=transfer_limit"
    );
    let (_, html) = b.get_text("/tickets/done?notice=transfer_limit").await;
    assert!(html.contains("autant de fois que permis"), "{html}");
}

#[tokio::test]
async fn a_transfer_and_a_resale_through_the_pages_at_phone_width() {
    use crate::common::browser::{Chrome, PHONE};
    let app = spawn_app().await;
    let sid = ath01(&app);
    // The sender, over HTTP: two tickets, one offered to Léa, one on resale.
    let email = "lea@example.com";
    registered_user(&app, "lea", email).await;
    let sender = buyer(&app, "envoi").await;
    buy(&sender, sid, "Solo", 2).await;
    let codes = ticket_ids(&sender).await;
    offer(&sender, &codes[0], "lea@example.com").await;
    let r = sender
        .submit("/tickets", &format!("/tickets/{}/resale", codes[1]), &[])
        .await;
    assert_eq!(location(&r), "/tickets/done?notice=listed");
    let token = link_token(&outbox_mail(&app, email, 1).await, "/transfers/accept");

    let chrome = Chrome::start().await;
    let url = |p: &str| format!("{}{p}", app.addr);
    chrome.goto(&url("/login")).await;
    chrome.screenshot("transfer-login", PHONE).await;
    chrome.fill("email", email).await;
    chrome.fill("password", GOOD_PASSWORD).await;
    chrome
        .click("form[action='/login'] button[type=submit]")
        .await;
    chrome.wait_for_path("/").await;

    // Léa opens the mail's link and accepts, at 390 px.
    chrome
        .goto(&url(&format!("/transfers/accept?token={token}")))
        .await;
    chrome.wait_for("#accept-transfer").await;
    chrome.screenshot("transfer-offer", PHONE).await;
    chrome.click("#accept-transfer").await;
    chrome.wait_for("#ticket-notice").await;
    chrome.screenshot("transfer-accepted", PHONE).await;
    chrome.click("#back-to-tickets").await;
    chrome.wait_for(".ticket-qr img").await;
    assert_eq!(ticket_row(&app, &codes[0]).0, "revoked");
    let mine: Vec<String> = app
        .db()
        .with(|c| {
            c.query_map(
                "SELECT t.ticket_id FROM tickets t JOIN users u ON u.id = t.user_id
                 WHERE u.email = ?1 AND t.status = 'valid'",
                params![email],
                |r| r.get::<Vec<u8>>(0),
            )
        })
        .expect("reads")
        .into_iter()
        .map(hex::encode)
        .collect();
    assert_eq!(mine.len(), 1);
    assert!(
        chrome
            .source()
            .await
            .contains(&format!("ticket-{}", mine[0]))
    );
    chrome.screenshot("transfer-tickets", PHONE).await;

    // She buys the listed ticket from the session page, through the cart
    // and the payment page like any ticket.
    chrome.goto(&url(&format!("/sessions/{sid}"))).await;
    chrome.wait_for(".resale-list button").await;
    chrome.screenshot("resale-session", PHONE).await;
    chrome.click(".resale-list button").await;
    chrome.wait_for("#checkout").await;
    assert!(chrome.source().await.contains("Revente officielle"));
    chrome.screenshot("resale-cart", PHONE).await;
    chrome.click("#checkout").await;
    chrome.wait_for("#pay").await;
    chrome.screenshot("resale-pay", PHONE).await;
    chrome.fill("card_number", CARD_OK).await;
    chrome.fill("card_expiry", "12/39").await;
    chrome.fill("card_cvv", "123").await;
    chrome.click("#pay").await;
    chrome.wait_for(".alert-success").await;
    assert_eq!(ticket_row(&app, &codes[1]).0, "revoked");

    // And puts the transferred one back on resale from "my tickets".
    chrome.goto(&url("/tickets")).await;
    chrome.wait_for(&format!("#resell-{}", mine[0])).await;
    chrome.click(&format!("#resell-{}", mine[0])).await;
    chrome.wait_for("#ticket-notice").await;
    assert!(chrome.source().await.contains("mis en revente"));
    chrome.screenshot("resale-listed", PHONE).await;
    chrome.goto(&url("/tickets")).await;
    chrome.wait_for(&format!("#listed-{}", mine[0])).await;
    assert_eq!(
        ticket_ids(&sender).await.len(),
        2,
        "the sender's revoked tickets stay listed"
    );
    chrome.close().await;
}
