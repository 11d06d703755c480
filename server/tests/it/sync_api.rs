//! The scanners' sync API over HTTP, against the real server on port 0, with
//! the shared wire types: enrolment, down-sync, uploads and their conflicts,
//! idempotence, authentication and limits.

use crate::common;

use std::time::Duration;

use crate::common::api::*;
use crate::common::params;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jo_shared::Keyring;
use jo_shared::api::{
    EntriesResponse, EntryRule, KeyringResponse, RevocationDelta, ScanBatchResponse, ScanVerdict,
    SessionsResponse, TokenResponse, paths,
};
use jo_shared::revocation::{RevocationList, RevocationReason};
use jo_shared::ticket::TicketId;
use reqwest::StatusCode;

/// The keyring a device builds from the keyring answer: the chain followed
/// from its first statement.
fn keyring_of(k: &KeyringResponse) -> Keyring {
    jo_shared::trust::pin(&k.chain, None)
        .expect("the chain verifies")
        .keyring()
        .expect("a keyring")
}

#[tokio::test]
async fn enrol_sync_upload_and_conflicts_over_http() {
    let app = common::spawn_app().await;
    let c = db(&app);
    seed_session(&c, 900_001, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_001, 3);
    c.with(|c| {
        jo_server::db::tickets::revoke(
            c,
            &tickets[1],
            RevocationReason::Refunded,
            "test",
            now() - 60,
        )
    })
    .expect("revokes");

    let mut a = ApiDevice::enroll(&app, "Porte A").await;
    let mut b = ApiDevice::enroll(&app, "Porte B").await;
    assert_ne!(a.id, b.id);

    // Down: keyring, sessions, revocations (verified with the keyring).
    let keyring: KeyringResponse = a.get_ok(paths::KEYRING).await;
    assert_eq!(keyring.chain.len(), 1);
    assert_eq!(keyring.chain[0].keys.len(), 1);
    assert!(!keyring.chain[0].keys[0].withdrawn);
    let ring = keyring_of(&keyring);
    let sessions: SessionsResponse = a.get_ok(paths::SESSIONS).await;
    let s = sessions
        .sessions
        .iter()
        .find(|s| s.id == 900_001)
        .expect("the seeded session is served");
    assert_eq!(s.entry_rule, EntryRule::Single);
    assert_eq!(s.venue, "Arène de test");
    let delta: RevocationDelta = a.get_ok(&format!("{}?since=0", paths::REVOCATIONS)).await;
    let mut list = RevocationList::new();
    list.apply(&delta, &ring).expect("the signed list applies");
    assert_eq!(list.lookup(&tickets[1]), Some(RevocationReason::Refunded));

    // Up from A: an admission, an admission after revocation, a valid
    // signature for a ticket the server never issued, a refusal.
    let unknown = TicketId([0xee; 10]);
    signed_ticket_text(&server_signer(&app.config.keys_dir), unknown, 900_001);
    let records = vec![
        a.admit(tickets[0], 900_001),
        a.admit(tickets[1], 900_001),
        a.admit(unknown, 900_001),
        a.record(ScanVerdict::Refuse, None, None, now()),
    ];
    let r: ScanBatchResponse = json_of(a.upload(&a.batch(records)).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.duplicates.len(), r.conflicts), (4, 0, 2));
    assert!((r.server_time - now()).abs() < 60);
    assert_eq!(
        conflict_kinds(&c, &a.id),
        ["admitted_after_revocation", "unknown_ticket"]
    );

    // B learns A's admissions at its next sync, not its own.
    let page: EntriesResponse = b.get_ok(&format!("{}?cursor=0", paths::ENTRIES)).await;
    assert_eq!(page.entries.len(), 3);
    assert!(!page.more);
    assert_eq!(page.entries[0].ticket_id, tickets[0]);
    assert_eq!(page.entries[0].device_id, a.id);
    assert_eq!(page.entries[0].gate, "Porte A");
    let again: EntriesResponse = b
        .get_ok(&format!("{}?cursor={}", paths::ENTRIES, page.next_cursor))
        .await;
    assert!(again.entries.is_empty());
    assert_eq!(again.next_cursor, page.next_cursor);
    let own: EntriesResponse = a.get_ok(&format!("{}?cursor=0", paths::ENTRIES)).await;
    assert!(
        own.entries.is_empty(),
        "a device is not sent its own entries"
    );

    // B admits the same ticket anyway (it was offline): stored and flagged.
    let rec = b.admit(tickets[0], 900_001);
    let r: ScanBatchResponse = json_of(b.upload(&b.batch(vec![rec])).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (1, 1));
    assert_eq!(conflict_kinds(&c, &b.id), ["double_admit"]);
    let detail: String = c
        .with(|c| {
            c.query_row(
                "SELECT detail FROM scan_conflicts WHERE kind = 'double_admit'",
                params![],
                |r| r.get(0),
            )
        })
        .expect("reads");
    assert!(detail.contains(&a.id), "{detail}");

    // What the admin console reads about the devices.
    let (last_seq, pending, gate): (i64, i64, String) = c
        .with(|c| {
            c.query_row(
                "SELECT last_seq, pending_uploads, gate FROM devices WHERE id = ?1",
                params![&a.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .expect("reads");
    assert_eq!((last_seq, pending, gate.as_str()), (4, 0, "Porte A"));
}

#[tokio::test]
async fn a_batch_sent_twice_is_stored_once() {
    let app = common::spawn_app().await;
    let c = db(&app);
    seed_session(&c, 900_002, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_002, 3);
    let mut d = ApiDevice::enroll(&app, "Porte C").await;
    let records: Vec<_> = tickets.iter().map(|t| d.admit(*t, 900_002)).collect();
    let batch = d.batch(records);
    let first: ScanBatchResponse = json_of(d.upload(&batch).await, StatusCode::OK).await;
    assert_eq!((first.stored, first.conflicts), (3, 0));
    let second: ScanBatchResponse = json_of(d.upload(&batch).await, StatusCode::OK).await;
    assert_eq!(second.stored, 0);
    assert_eq!(second.conflicts, 0, "a retry raises no conflict");
    let ids: Vec<_> = batch.records.iter().map(|r| r.scan_id.clone()).collect();
    assert_eq!(second.duplicates, ids);
    assert_eq!(stored_scans(&c, &d.id), 3);

    // A later batch overlapping the first stores only the new records.
    let extra = d.record(ScanVerdict::Used, Some(tickets[0]), Some(900_002), now());
    let mut overlap = batch.records[1..].to_vec();
    overlap.push(extra);
    let r: ScanBatchResponse = json_of(d.upload(&d.batch(overlap)).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.duplicates.len(), r.conflicts), (1, 2, 0));
    assert_eq!(stored_scans(&c, &d.id), 4);
}

/// Sends `head` and then `body[..cut]` over a raw socket and drops it.
async fn send_partial(port: u16, head: &str, body: &[u8], cut: usize, read_answer: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    s.write_all(head.as_bytes()).await.expect("writes");
    s.write_all(&body[..cut]).await.expect("writes");
    s.flush().await.expect("flushes");
    if read_answer {
        // Wait for the answer to start, then hang up before reading it all.
        let mut b = [0u8; 1];
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await;
    }
    drop(s);
}

#[tokio::test]
async fn a_connection_dropped_mid_upload_then_retried_is_stored_once() {
    let app = common::spawn_app().await;
    let c = db(&app);
    seed_session(&c, 900_003, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_003, 20);
    let mut d = ApiDevice::enroll(&app, "Porte D").await;
    let records: Vec<_> = tickets.iter().map(|t| d.admit(*t, 900_003)).collect();
    let batch = d.batch(records);
    let body = serde_json::to_vec(&batch).expect("serializes");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        paths::SCANS,
        d.token,
        body.len()
    );

    // Cut in the middle of the body: nothing is stored.
    send_partial(app.port, &head, &body, body.len() / 2, false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stored_scans(&c, &d.id), 0, "half a batch stores nothing");

    // The whole request, then the client vanishes before reading the answer.
    send_partial(app.port, &head, &body, body.len(), false).await;
    // And once more, waiting for the answer to start before hanging up.
    send_partial(app.port, &head, &body, body.len(), true).await;

    // The retry stores the rest, or reports all as duplicates: never twice.
    let r: ScanBatchResponse = json_of(d.upload(&batch).await, StatusCode::OK).await;
    assert_eq!(r.stored as usize + r.duplicates.len(), 20);
    assert_eq!(stored_scans(&c, &d.id), 20);
    let distinct: i64 = c
        .with(|c| {
            c.query_row(
                "SELECT count(DISTINCT scan_id) FROM scans WHERE device_id = ?1",
                params![&d.id],
                |r| r.get(0),
            )
        })
        .expect("counts");
    assert_eq!(distinct, 20);
}

#[tokio::test]
async fn a_revoked_device_gets_401_on_its_next_call() {
    let app = common::spawn_app().await;
    let d = ApiDevice::enroll(&app, "Porte E").await;
    assert_eq!(d.get(paths::SESSIONS).await.status(), StatusCode::OK);
    let c = db(&app);
    assert!(
        c.with(|c| jo_server::db::devices::revoke(c, &d.id, now()))
            .expect("revokes")
    );
    let e = api_error(d.get(paths::SESSIONS).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(e.error, "unauthorized");
    let r = post_json(
        &d.client,
        &d.url(paths::TOKEN),
        Some(&d.token),
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "nor can it roll its token"
    );
}

#[tokio::test]
async fn a_bad_token_gets_401_with_no_hint_whether_the_device_exists() {
    let app = common::spawn_app().await;
    let revoked = ApiDevice::enroll(&app, "Porte F").await;
    db(&app)
        .with(|c| jo_server::db::devices::revoke(c, &revoked.id, now()))
        .expect("revokes");
    let client = reqwest::Client::new();
    let url = format!("{}{}", app.addr, paths::KEYRING);
    let unknown = jo_server::auth::tokens::random_token().expect("random");
    let mut answers = Vec::new();
    for auth in [
        None,
        Some("Bearer".to_owned()),
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer ' OR 1=1 --".to_owned()),
        Some(format!("Bearer {unknown}")),
        Some(format!("Bearer {}", revoked.token)),
    ] {
        let mut req = client.get(&url);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.expect("GET");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            r.headers().get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        answers.push(r.text().await.expect("body"));
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "every 401 is the same: {answers:?}"
    );
}

#[tokio::test]
async fn a_rolled_token_replaces_the_old_one() {
    let app = common::spawn_app().await;
    let mut d = ApiDevice::enroll(&app, "Porte G").await;
    let r = post_json(
        &d.client,
        &d.url(paths::TOKEN),
        Some(&d.token),
        &serde_json::json!({}),
    )
    .await;
    let t: TokenResponse = json_of(r, StatusCode::OK).await;
    assert_ne!(t.token, d.token);
    assert_eq!(
        d.get(paths::KEYRING).await.status(),
        StatusCode::UNAUTHORIZED
    );
    d.token = t.token;
    assert_eq!(d.get(paths::KEYRING).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_revocation_list_is_signed_paged_and_refused_when_tampered() {
    let app = common::spawn_app().await;
    let c = db(&app);
    for i in 0..5u8 {
        c.with(|c| {
            jo_server::db::tickets::revoke(
                c,
                &TicketId([i; 10]),
                RevocationReason::Fraud,
                "",
                now(),
            )
        })
        .expect("revokes");
    }
    let d = ApiDevice::enroll(&app, "Porte H").await;
    let ring = keyring_of(&d.get_ok(paths::KEYRING).await);

    // In pages of two, as a device catching up would.
    let mut list = RevocationList::new();
    let mut calls = 0;
    loop {
        let r = d
            .get(&format!(
                "{}?since={}&limit=2",
                paths::REVOCATIONS,
                list.version()
            ))
            .await;
        assert_eq!(
            r.headers()
                .get(jo_server::api::LATEST_VERSION_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let delta: RevocationDelta = json_of(r, StatusCode::OK).await;
        calls += 1;
        if delta.entries.is_empty() {
            assert_eq!(delta.state.version, 5);
            list.apply(&delta, &ring)
                .expect("an empty delta refreshes the state");
            break;
        }
        list.apply(&delta, &ring).expect("each page verifies");
    }
    assert_eq!((list.version(), list.len(), calls), (5, 5, 4));

    // A proxy that drops an entry, or alters one, is caught.
    let full: RevocationDelta = d.get_ok(&format!("{}?since=0", paths::REVOCATIONS)).await;
    let mut cut = full.clone();
    cut.entries.remove(2);
    assert!(RevocationList::new().apply(&cut, &ring).is_err());
    let mut truncated = full.clone();
    truncated.entries.pop();
    assert!(RevocationList::new().apply(&truncated, &ring).is_err());
    let mut altered = full.clone();
    altered.entries[0].reason = 1;
    assert!(RevocationList::new().apply(&altered, &ring).is_err());
    RevocationList::new()
        .apply(&full, &ring)
        .expect("the untouched list applies");

    // A device ahead of the server is told so.
    let e = api_error(
        d.get(&format!("{}?since=9", paths::REVOCATIONS)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(e.error, "list_ahead");
}

#[tokio::test]
async fn gaps_breaks_and_late_uploads_are_flagged_and_stored() {
    let app = common::spawn_app().await;
    let c = db(&app);
    let mut d = ApiDevice::enroll(&app, "Porte I").await;
    let first = d.record(ScanVerdict::Refuse, None, None, now());
    json_of::<ScanBatchResponse>(d.upload(&d.batch(vec![first])).await, StatusCode::OK).await;

    // Records 2 and 3 never arrive: a gap before 4.
    d.record(ScanVerdict::Refuse, None, None, now());
    d.record(ScanVerdict::Refuse, None, None, now());
    let fourth = d.record(ScanVerdict::Refuse, None, None, now());
    let r: ScanBatchResponse =
        json_of(d.upload(&d.batch(vec![fourth])).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (1, 1));

    // A record 5 that does not follow the stored 4: a break.
    d.last_hash = [7; 32];
    let fifth = d.record(ScanVerdict::Refuse, None, None, now());
    let r: ScanBatchResponse = json_of(d.upload(&d.batch(vec![fifth])).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (1, 1));

    // Scans from hours ago, and one dated tomorrow: one conflict each way.
    let old = d.record(ScanVerdict::Refuse, None, None, now() - 5 * 3600);
    let older = d.record(ScanVerdict::Refuse, None, None, now() - 6 * 3600);
    let future = d.record(ScanVerdict::Refuse, None, None, now() + 86_400);
    let r: ScanBatchResponse = json_of(
        d.upload(&d.batch(vec![old, older, future])).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!((r.stored, r.conflicts), (3, 2));

    // A device restored from a backup repeats positions: a fork.
    d.seq = 4;
    d.last_hash = {
        let h: Vec<u8> = c
            .with(|c| {
                c.query_row(
                    "SELECT hash FROM scans WHERE device_id = ?1 AND seq = 4",
                    params![&d.id],
                    |r| r.get(0),
                )
            })
            .expect("reads");
        h.try_into().expect("32 bytes")
    };
    let replay = d.record(ScanVerdict::Refuse, None, None, now());
    let r: ScanBatchResponse =
        json_of(d.upload(&d.batch(vec![replay])).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (1, 1));

    assert_eq!(
        conflict_kinds(&c, &d.id),
        [
            "chain_break",
            "chain_break",
            "chain_gap",
            "late_upload",
            "late_upload"
        ]
    );
    assert_eq!(stored_scans(&c, &d.id), 7, "conflicting records are kept");
}

#[tokio::test]
async fn malformed_or_oversized_uploads_are_refused_whole() {
    let app = common::spawn_app_with(|c| c.api.max_batch_records = 10).await;
    let c = db(&app);
    let mut d = ApiDevice::enroll(&app, "Porte J").await;
    let url = d.url(paths::SCANS);
    let (client, token) = (d.client.clone(), d.token.clone());
    let send_raw = |body: Vec<u8>| {
        client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // Not JSON; wrong types, with the field named.
    let e = api_error(
        send_raw(b"{not json".to_vec()).await.expect("POST"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(e.error, "bad_request");
    let rec = d.record(ScanVerdict::Refuse, None, None, now());
    let mut v = serde_json::to_value(d.batch(vec![rec.clone()])).expect("json");
    v["records"][0]["scan_id"] = serde_json::json!("not-a-uuid");
    let e = api_error(
        send_raw(serde_json::to_vec(&v).expect("json"))
            .await
            .expect("POST"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(e.message.contains("records[0].scan_id"), "{}", e.message);
    v["records"][0]["scan_id"] = serde_json::json!(rec.scan_id.as_str());
    v["records"][0]["seq"] = serde_json::json!("one");
    let e = api_error(
        send_raw(serde_json::to_vec(&v).expect("json"))
            .await
            .expect("POST"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(e.message.contains("records[0].seq"), "{}", e.message);

    // Too many records; a body over the cap.
    d.seq = 0;
    d.last_hash = [0; 32];
    let many: Vec<_> = (0..11)
        .map(|_| d.record(ScanVerdict::Refuse, None, None, now()))
        .collect();
    let e = api_error(d.upload(&d.batch(many)).await, StatusCode::BAD_REQUEST).await;
    assert!(e.message.contains("at most 10 records"), "{}", e.message);
    let huge = vec![b' '; 9 * 1024 * 1024];
    let e = api_error(
        send_raw(huge).await.expect("POST"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(e.error, "too_large");

    // A batch whose chain breaks inside, or signed by another key.
    d.seq = 0;
    d.last_hash = [0; 32];
    let a = d.record(ScanVerdict::Refuse, None, None, now());
    d.last_hash = [1; 32];
    let b = d.record(ScanVerdict::Refuse, None, None, now());
    let e = api_error(
        d.upload(&d.batch(vec![a.clone(), b])).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(e.message.contains("records[1].prev_hash"), "{}", e.message);
    let mut forged = d.batch(vec![a.clone()]);
    forged.signature = hex::encode(jo_shared::TicketSigner::generate().expect("key").sign(b"x"));
    let e = api_error(d.upload(&forged).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(e.error, "bad_signature");
    // An admission without its ticket.
    d.seq = 0;
    d.last_hash = [0; 32];
    let bad = d.record(ScanVerdict::Admit, None, None, now());
    let e = api_error(d.upload(&d.batch(vec![bad])).await, StatusCode::BAD_REQUEST).await;
    assert!(e.message.contains("ticket_id"), "{}", e.message);

    assert_eq!(stored_scans(&c, &d.id), 0, "nothing partially stored");
    let conflicts: i64 = c
        .with(|c| {
            c.query_row("SELECT count(*) FROM scan_conflicts", params![], |r| {
                r.get(0)
            })
        })
        .expect("counts");
    assert_eq!(conflicts, 0);
}

#[tokio::test]
async fn a_device_over_its_rate_gets_429_with_retry_after() {
    let app = common::spawn_app_with(|c| {
        c.api.rate_per_sec = 1;
        c.api.rate_burst = 3;
    })
    .await;
    let d = ApiDevice::enroll(&app, "Porte K").await;
    let other = ApiDevice::enroll(&app, "Porte L").await;
    for _ in 0..3 {
        assert_eq!(d.get(paths::KEYRING).await.status(), StatusCode::OK);
    }
    let r = d.get(paths::KEYRING).await;
    assert!(r.headers().get("retry-after").is_some());
    let e = api_error(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(e.error, "rate_limited");
    assert_eq!(
        other.get(paths::KEYRING).await.status(),
        StatusCode::OK,
        "limits are per device"
    );
}

#[tokio::test]
async fn enrolment_codes_are_single_use_and_inputs_checked() {
    let app = common::spawn_app().await;
    let code = enrollment_code(&app).await;
    let client = reqwest::Client::new();
    let url = format!("{}{}", app.addr, paths::ENROLL);
    let key = jo_shared::TicketSigner::generate().expect("key");
    let good_key = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
    let req = |code: &str, pk: &str| jo_shared::api::EnrollRequest {
        code: code.to_owned(),
        device_public_key: pk.to_owned(),
        label: "Portable 3".to_owned(),
    };
    let e = api_error(
        post_json(&client, &url, None, &req(&code, "AAAA")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(e.message.contains("device_public_key"), "{}", e.message);
    // The typo did not spend the code.
    let r = post_json(&client, &url, None, &req(&code, &good_key)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let e = api_error(
        post_json(&client, &url, None, &req(&code, &good_key)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(e.error, "invalid_code");
    let e = api_error(
        post_json(&client, &url, None, &req("nope", &good_key)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(e.error, "invalid_code");
    let e = api_error(
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(r#"{"code":1}"#)
            .send()
            .await
            .expect("POST"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(e.message.contains("code"), "{}", e.message);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = common::spawn_app().await;
    let r = reqwest::get(format!("{}{}", app.addr, paths::OPENAPI))
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value =
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("JSON");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    for p in [
        paths::ENROLL,
        paths::TOKEN,
        paths::KEYRING,
        paths::DEVICES,
        paths::SESSIONS,
        paths::REVOCATIONS,
        paths::ENTRIES,
        paths::SCANS,
    ] {
        assert!(doc["paths"][p].is_object(), "{p}");
    }
    // Unknown API routes and methods answer JSON errors too.
    let r = reqwest::get(format!("{}/api/v1/nope", app.addr))
        .await
        .expect("GET");
    let e = api_error(r, StatusCode::NOT_FOUND).await;
    assert_eq!(e.error, "not_found");
    let r = reqwest::get(format!("{}{}", app.addr, paths::SCANS))
        .await
        .expect("GET");
    assert_eq!(
        api_error(r, StatusCode::METHOD_NOT_ALLOWED).await.error,
        "method_not_allowed"
    );
}

/// Every entry of the feed from `cursor` 0, as one device sees it.
async fn all_entries(d: &ApiDevice) -> Vec<jo_shared::api::RemoteEntry> {
    let page: EntriesResponse = d.get_ok(&format!("{}?cursor=0", paths::ENTRIES)).await;
    assert!(!page.more);
    page.entries
}

#[tokio::test]
async fn an_admission_without_a_real_ticket_is_flagged_and_kept_out_of_the_feed() {
    let app = common::spawn_app().await;
    let c = db(&app);
    seed_session(&c, 900_010, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_010, 4);
    let mut a = ApiDevice::enroll(&app, "Porte A").await;
    let b = ApiDevice::enroll(&app, "Porte B").await;

    // A rogue gate marks tickets used everywhere without having seen them:
    // no ticket text; another ticket's text; the right text but no gate
    // signature; and one honest admission.
    let mut no_text = a.admit(tickets[0], 900_010);
    no_text.raw = None;
    let mut wrong_text = a.admit(tickets[1], 900_010);
    wrong_text.raw = ticket_text(&tickets[3]);
    let mut unsigned = a.admit(tickets[2], 900_010);
    unsigned.signature = None;
    let honest = a.admit(tickets[3], 900_010);
    // A ticket the server never issued, signed by a key it does not know.
    let forged_id = TicketId([0x77; 10]);
    signed_ticket_text(
        &jo_shared::TicketSigner::generate().expect("key"),
        forged_id,
        900_010,
    );
    let forged = a.admit(forged_id, 900_010);
    // The right text, claimed for another session.
    let other_session = a.admit(tickets[0], 900_099);
    // The chain covers each record as altered (signatures are outside it).
    let mut records = vec![no_text, wrong_text, unsigned, honest, forged, other_session];
    let mut prev = [0u8; 32];
    for r in &mut records {
        r.prev_hash = hex::encode(prev);
        prev = r.hash();
    }
    a.last_hash = prev;
    let r: ScanBatchResponse = json_of(a.upload(&a.batch(records)).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (6, 6), "stored, never dropped");
    assert_eq!(
        conflict_kinds(&c, &a.id),
        [
            "unknown_ticket",
            "unproven_admission",
            "unproven_admission",
            "unproven_admission",
            "unproven_admission",
            "unproven_admission"
        ]
    );
    let feed = all_entries(&b).await;
    assert_eq!(
        feed.len(),
        1,
        "only the proven admission reaches other gates"
    );
    assert_eq!(feed[0].ticket_id, tickets[3]);
    // The real holder of a ticket a rogue gate claimed is admitted at an
    // honest gate: not a double entry.
    let mut honest_gate = b;
    let rec = honest_gate.admit(tickets[0], 900_010);
    let batch = honest_gate.batch(vec![rec]);
    let r: ScanBatchResponse = json_of(honest_gate.upload(&batch).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (1, 0));
}

#[tokio::test]
async fn entries_carry_their_gate_signature_and_those_of_a_revoked_device_leave_the_feed() {
    let app = common::spawn_app().await;
    let c = db(&app);
    seed_session(&c, 900_011, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_011, 2);
    let mut a = ApiDevice::enroll(&app, "Porte A").await;
    let b = ApiDevice::enroll(&app, "Porte B").await;
    let records = vec![a.admit(tickets[0], 900_011), a.admit(tickets[1], 900_011)];
    let r: ScanBatchResponse = json_of(a.upload(&a.batch(records)).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (2, 0));

    // The signed device list vouches for A's key; each entry verifies with it.
    let ring = keyring_of(&b.get_ok(paths::KEYRING).await);
    let list: jo_shared::api::SignedDeviceList = b.get_ok(paths::DEVICES).await;
    list.verify(&ring)
        .expect("signed by the server's ticket key");
    let key = list.active_key(&a.id).expect("A is enrolled and live");
    let feed = all_entries(&b).await;
    assert_eq!(feed.len(), 2);
    for e in &feed {
        jo_shared::trust::verify_admission(&key, &e.admission(), &e.signature)
            .expect("A's own signature");
    }
    let mut forged = feed[0].clone();
    forged.ticket_id = TicketId([0x42; 10]);
    assert!(
        jo_shared::trust::verify_admission(&key, &forged.admission(), &forged.signature).is_err()
    );

    // A is revoked: its entries leave the feed and the list says so; the
    // scans stay stored for the admins.
    assert!(
        c.with(|c| jo_server::db::devices::revoke(c, &a.id, now()))
            .expect("revokes")
    );
    assert!(all_entries(&b).await.is_empty());
    let list: jo_shared::api::SignedDeviceList = b.get_ok(paths::DEVICES).await;
    list.verify(&ring).expect("verifies");
    assert!(list.active_key(&a.id).is_none());
    assert!(
        list.devices
            .iter()
            .any(|d| d.device_id == a.id && d.revoked)
    );
    assert_eq!(stored_scans(&c, &a.id), 2);
}

#[tokio::test]
async fn scan_times_and_positions_out_of_bounds_are_refused_and_the_device_can_go_on() {
    let app = common::spawn_app().await;
    let c = db(&app);
    seed_session(&c, 900_012, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_012, 1);
    let mut d = ApiDevice::enroll(&app, "Porte Z").await;
    for (seq, at) in [
        (1, i64::MAX),
        (1, i64::MIN),
        (1, 0),
        (i64::MAX as u64, now()),
        ((1 << 40) + 1, now()),
    ] {
        let mut r = d.record(ScanVerdict::Refuse, None, None, at);
        r.seq = seq;
        r.prev_hash = "0".repeat(64);
        d.seq = 0;
        d.last_hash = [0; 32];
        let e = api_error(d.upload(&d.batch(vec![r])).await, StatusCode::BAD_REQUEST).await;
        assert!(
            e.message.contains("scanned_at") || e.message.contains("seq"),
            "{}",
            e.message
        );
    }
    assert_eq!(stored_scans(&c, &d.id), 0);
    let ok = d.admit(tickets[0], 900_012);
    let r: ScanBatchResponse = json_of(d.upload(&d.batch(vec![ok])).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.conflicts), (1, 0));
}

#[tokio::test]
async fn enrolment_is_rate_limited_per_client_address() {
    let app = common::spawn_app_with(|c| {
        c.api.enroll_per_minute = 2;
        c.api.enroll_burst = 3;
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}{}", app.addr, paths::ENROLL);
    let key = URL_SAFE_NO_PAD.encode(device_public_key());
    let body = serde_json::json!({"code": "aaaa-bbbb-cccc-dddd-eeee", "device_public_key": key, "label": "x"});
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = post_json(&client, &url, None, &body).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("Retry-After");
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(r.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
        ]
    );
    // A live code is refused too while the address is over its limit.
    let code = enrollment_code(&app).await;
    let body = serde_json::json!({"code": code, "device_public_key": key, "label": "x"});
    assert_eq!(
        post_json(&client, &url, None, &body).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// A valid device public key for enrolment requests.
fn device_public_key() -> [u8; 32] {
    jo_shared::TicketSigner::generate()
        .expect("key")
        .verifying_key()
        .to_bytes()
}

#[tokio::test]
async fn the_enrolment_answer_and_code_pin_the_keyring_and_a_rotation_extends_it() {
    let app = common::spawn_app().await;
    let d = ApiDevice::enroll(&app, "Porte K").await;
    let served: KeyringResponse = d.get_ok(paths::KEYRING).await;
    assert_eq!(served.chain.len(), 1);
    let pinned = served.chain[0].clone();
    let config = app.config.clone();
    assert_eq!(
        jo_server::admin::keyring_fingerprint(&config).expect("fingerprint"),
        pinned.fingerprint_hex().expect("fp"),
        "what enroll-code prints is what the gate pins"
    );

    // The operator rotates: the old key signs the statement adding the new.
    let rotated = jo_shared::keys::generate(&config.keys_dir, true).expect("rotates");
    let served: KeyringResponse = d.get_ok(paths::KEYRING).await;
    assert_eq!(served.chain.len(), 2);
    let newest = jo_shared::trust::advance(&pinned, &served.chain)
        .expect("a pinned gate follows the rotation")
        .expect("newer");
    let ring = newest.keyring().expect("ring");
    assert!(matches!(
        ring.lookup(rotated.key_id),
        jo_shared::signing::KeyLookup::Active(_)
    ));
    let rotated_from = rotated.rotated_from.expect("old key");
    assert!(matches!(
        ring.lookup(rotated_from),
        jo_shared::signing::KeyLookup::Active(_)
    ));
}

#[tokio::test]
async fn the_server_refuses_to_start_with_a_signing_key_gates_would_refuse() {
    // Withdrawn.
    let data = tempfile::tempdir().expect("tempdir");
    let config = jo_server::Config::for_tests(data.path().join("data"));
    let g = jo_shared::keys::generate(&config.keys_dir, false).expect("key");
    std::fs::write(
        config.keys_dir.join(jo_shared::keys::WITHDRAWN_FILE),
        format!("{}\n", g.key_id),
    )
    .expect("write");
    let err = match jo_server::Application::build(config).await {
        Ok(_) => panic!("started with a withdrawn key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("withdrawn"), "{err}");

    // Missing from the keyring.
    let data = tempfile::tempdir().expect("tempdir");
    let config = jo_server::Config::for_tests(data.path().join("data"));
    jo_shared::keys::generate(&config.keys_dir, false).expect("key");
    let other = jo_shared::TicketSigner::generate().expect("key");
    std::fs::write(
        config.keys_dir.join(jo_shared::keys::KEYRING_FILE),
        jo_shared::keys::public_key_to_pem(&other.verifying_key()),
    )
    .expect("write");
    let err = match jo_server::Application::build(config).await {
        Ok(_) => panic!("started with a key missing from the keyring"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("not in keyring.pem"), "{err}");
}

/// The value of a Prometheus counter line `name{labels} value` (0 when the
/// series is not there yet).
fn counter(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn conflicts_are_counted_by_kind_in_the_metrics() {
    let app = common::spawn_app_with(|c| {
        c.metrics_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let port = app.metrics_port.expect("metrics are served");
    let read = || async move {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
    };
    let c = db(&app);
    seed_session(&c, 900_021, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_021, 2);
    let mut a = ApiDevice::enroll(&app, "Porte A").await;
    let mut b = ApiDevice::enroll(&app, "Porte B").await;
    let double = r#"jo_scan_conflicts_total{kind="double_admit"}"#;
    let unknown = r#"jo_scan_conflicts_total{kind="unknown_ticket"}"#;
    let before = read().await;

    // One ticket admitted by A, then by B; a ticket the server never issued.
    let first = vec![a.admit(tickets[0], 900_021)];
    let r: ScanBatchResponse = json_of(a.upload(&a.batch(first)).await, StatusCode::OK).await;
    assert_eq!(r.conflicts, 0);
    let never = TicketId([0xed; 10]);
    signed_ticket_text(&server_signer(&app.config.keys_dir), never, 900_021);
    let records = vec![b.admit(tickets[0], 900_021), b.admit(never, 900_021)];
    let r: ScanBatchResponse = json_of(b.upload(&b.batch(records)).await, StatusCode::OK).await;
    assert_eq!(r.conflicts, 2);

    // Counters only grow (other tests of this process may add to them).
    let after = read().await;
    assert!(
        counter(&after, double) >= counter(&before, double) + 1.0,
        "{after}"
    );
    assert!(
        counter(&after, unknown) >= counter(&before, unknown) + 1.0,
        "{after}"
    );
}

#[tokio::test]
async fn a_batch_larger_than_one_statement_is_checked_and_stored_whole() {
    // The store writes a batch several rows to a statement and reads what
    // the checks need once per batch: a ticket admitted twice within one
    // batch, on either side of a statement boundary, is still a double
    // admission, and every record is stored once, in order.
    let app = common::spawn_app().await;
    let c = db(&app);
    seed_session(&c, 900_022, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_022, 150);
    let mut a = ApiDevice::enroll(&app, "Porte A").await;
    let mut records: Vec<_> = tickets.iter().map(|t| a.admit(*t, 900_022)).collect();
    records.push(a.admit(tickets[3], 900_022));
    let r: ScanBatchResponse =
        json_of(a.upload(&a.batch(records.clone())).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.duplicates.len(), r.conflicts), (151, 0, 1));
    assert_eq!(conflict_kinds(&c, &a.id), ["double_admit"]);
    let seqs: Vec<i64> = c
        .with(|c| {
            c.query_map(
                "SELECT seq FROM scans WHERE device_id = ?1 ORDER BY id",
                params![&a.id],
                |r| r.get(0),
            )
        })
        .expect("reads");
    assert_eq!(seqs, (1..=151).collect::<Vec<i64>>());
    let r: ScanBatchResponse = json_of(a.upload(&a.batch(records)).await, StatusCode::OK).await;
    assert_eq!((r.stored, r.duplicates.len(), r.conflicts), (0, 151, 0));
}

#[tokio::test]
async fn a_long_poll_answers_with_an_entry_stored_on_its_node_or_on_another() {
    // Two nodes on one database. Gate B holds a long-poll on node 2; gate A
    // uploads an admission to node 1 (node 2 learns of it by watching the
    // table), then to node 2 (its upload wakes the poll). Without a wake-up
    // the poll would answer empty at the end of its wait.
    let app = common::spawn_app().await;
    let other = common::second_node(&app).await;
    let c = db(&app);
    seed_session(&c, 900_023, 1);
    let tickets = seed_tickets(&c, &app.config.keys_dir, 900_023, 2);
    let mut a = ApiDevice::enroll(&app, "Porte A").await;
    let mut b = ApiDevice::enroll(&app, "Porte B").await;
    b.base = other.addr.clone();
    let mut cursor = 0;
    for (i, ticket) in tickets.iter().enumerate() {
        if i == 1 {
            a.base = other.addr.clone();
        }
        let rec = a.admit(*ticket, 900_023);
        let batch = a.batch(vec![rec]);
        let path = format!("{}?cursor={cursor}&wait=8", paths::ENTRIES);
        let start = std::time::Instant::now();
        let poll = b.get_ok::<EntriesResponse>(&path);
        let upload = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            a.upload(&batch).await
        };
        let (page, uploaded) = tokio::join!(poll, upload);
        assert_eq!(uploaded.status(), StatusCode::OK);
        let waited = start.elapsed();
        assert_eq!(page.entries.len(), 1, "entry {i} not handed over");
        assert_eq!(page.entries[0].ticket_id, *ticket);
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(6),
            "entry {i} after {waited:?}"
        );
        cursor = page.next_cursor;
    }
}
