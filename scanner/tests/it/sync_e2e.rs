//! The scanner against a real `jo-server`: enrolment, two gates sharing
//! signed entries, a revocation reaching the gate, a key rotation reaching an
//! enrolled gate, and a network that goes away and comes back without a scan
//! lost or counted twice.

use crate::common::{Server, enrolled_scanner, qr_png, scanner, scanner_ok};
use jo_server::db::sql::params;

#[test]
fn a_ticket_admitted_at_gate_a_is_refused_at_gate_b_and_a_revocation_reaches_the_gate() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let session = server.session_on_now("E2E-TWO-GATES");
    let a_dir = data.path().join("gate-a");
    let b_dir = data.path().join("gate-b");
    let device_a = enrolled_scanner(&server, &a_dir, "Porte A");
    let device_b = enrolled_scanner(&server, &b_dir, "Porte B");
    assert_ne!(device_a, device_b);

    let (_, t1) = server.ticket(session, 0, "Élodie Martin");
    let (t2_id, t2) = server.ticket(session, 1, "Jean Dupont");
    let p1 = qr_png(data.path(), "t1", &t1);
    let p2 = qr_png(data.path(), "t2", &t2);

    // Gate A admits the ticket offline-first, then uploads.
    let v = scanner_ok(&a_dir, &["verify", p1.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "admit", "{v}");
    assert_eq!(v["holder"], "ÉLODIE MARTIN");
    let up = scanner_ok(&a_dir, &["sync"]);
    assert_eq!(up["uploaded"], 1, "{up}");
    assert_eq!(up["pending"], 0);

    // Gate B learns the entry at its next sync and refuses the same ticket.
    let down = scanner_ok(&b_dir, &["sync"]);
    assert_eq!(down["entries_added"], 1, "{down}");
    let v = scanner_ok(&b_dir, &["verify", p1.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "used", "{v}");
    assert_eq!(v["used_gate"], "Porte A");

    // A ticket revoked on the server is refused after the next sync, with its reason.
    let v = scanner_ok(&b_dir, &["verify", p2.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "admit", "valid before the revocation: {v}");
    server.revoke(&t2_id);
    let down = scanner_ok(&b_dir, &["sync"]);
    assert_eq!(down["revocations_added"], 1, "{down}");
    let v = scanner_ok(&a_dir, &["verify", p2.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "admit", "gate A has not synced yet: {v}");
    scanner_ok(&a_dir, &["sync"]);

    // Both logs reached the server, each scan once, under its device.
    let stored = server.stored_scans();
    assert_eq!(stored.len(), 4, "{stored:?}");
    let from = |d: &str| stored.iter().filter(|(_, dev, _)| dev == d).count();
    assert_eq!(from(&device_a), 2);
    assert_eq!(from(&device_b), 2);
    let mut ids: Vec<_> = stored.iter().map(|(id, _, _)| id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

#[test]
fn offline_scanning_goes_on_and_every_scan_is_uploaded_exactly_once_when_the_server_is_back() {
    let data = tempfile::tempdir().expect("tempdir");
    let server_dir = data.path().join("server");
    let server = Server::start(&server_dir, 0);
    let port = server.port;
    let session = server.session_on_now("E2E-OFFLINE");
    let state = data.path().join("gate");
    enrolled_scanner(&server, &state, "Porte C");
    let tickets: Vec<_> = (0..3)
        .map(|i| {
            let (_, qr) = server.ticket(session, i, "Awa Traoré");
            qr_png(data.path(), &format!("t{i}"), &qr)
        })
        .collect();
    server.stop();

    // The network is gone: every scan is still decided and logged.
    for p in &tickets {
        let v = scanner_ok(&state, &["verify", p.to_str().expect("utf-8")]);
        assert_eq!(v["verdict"], "admit", "{v}");
    }
    let v = scanner_ok(&state, &["verify", tickets[0].to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "used");
    let (ok, lines, err) = scanner(&state, &["sync"]);
    assert!(!ok, "sync must fail while the server is down");
    assert!(err.contains("unreachable"), "{err}");
    assert_eq!(lines[0]["ok"], false);
    assert_eq!(lines[0]["pending"], 4, "the queue grows: {lines:?}");

    // The server is back on the same address: the queue drains once.
    let server = Server::start(&server_dir, port);
    let up = scanner_ok(&state, &["sync"]);
    assert_eq!(up["uploaded"], 4, "{up}");
    assert_eq!(up["duplicates"], 0);
    assert_eq!(up["pending"], 0);
    let again = scanner_ok(&state, &["sync"]);
    assert_eq!(again["uploaded"], 0, "{again}");
    let stored = server.stored_scans();
    assert_eq!(stored.len(), 4, "{stored:?}");
    let verdicts: Vec<_> = stored.iter().map(|(_, _, v)| v.as_str()).collect();
    assert_eq!(verdicts, ["admit", "admit", "admit", "used"]);
}

#[test]
fn a_wrong_code_or_a_revoked_device_is_told_clearly() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let state = data.path().join("gate");

    let (ok, _, err) = scanner(
        &state,
        &[
            "enroll",
            "--server",
            &server.url,
            "--code",
            "NOT-A-REAL-CODE",
        ],
    );
    assert!(!ok);
    assert!(err.contains("refused by the server"), "{err}");

    let device = enrolled_scanner(&server, &state, "Porte D");
    server
        .db()
        .with(|c| {
            c.execute(
                "UPDATE devices SET revoked_at = 1 WHERE id = ?1",
                params![device],
            )
        })
        .expect("revokes");
    let (ok, lines, err) = scanner(&state, &["sync"]);
    assert!(!ok);
    assert!(err.contains("refuses this device"), "{err}");
    assert_eq!(lines[0]["ok"], false);
}

#[test]
fn tickets_issued_by_the_server_photographed_like_replay_to_the_expected_verdicts() {
    use jo_scanner::synth;

    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let served = server.session_on_now("E2E-REPLAY-A");
    let elsewhere = server.session_on_now("E2E-REPLAY-B");
    let state = data.path().join("gate");
    enrolled_scanner(&server, &state, "Porte Est");
    scanner_ok(
        &state,
        &[
            "configure",
            "--gate",
            "Porte Est",
            "--session",
            &served.to_string(),
        ],
    );

    let (_, a) = server.ticket(served, 0, "Inès Moreau");
    let (_, b) = server.ticket(served, 1, "Hugo Bernard");
    let (revoked_id, revoked) = server.ticket(served, 2, "Chloé Dubois");
    let (_, other) = server.ticket(elsewhere, 3, "Nina Roux");
    server.revoke(&revoked_id);
    scanner_ok(&state, &["sync"]);

    let mut rng = synth::Rng(synth::SEED);
    let mut pick = |code: &str, name: &str| {
        synth::variants(code, &mut rng)
            .expect("renders")
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .expect("variant exists")
    };
    let frames = [
        pick(&a, "perspective"),
        pick(&b, "glare"),
        pick(&revoked, "low-contrast"),
        pick(&other, "moire"),
        pick(&a, "noisy"),
    ];
    let dir = data.path().join("frames");
    std::fs::create_dir_all(&dir).expect("dir");
    for (i, f) in frames.iter().enumerate() {
        f.save(dir.join(format!("{i:03}.png"))).expect("png");
    }
    let (ok, lines, err) = scanner(
        &state,
        &["replay", "--frames", dir.to_str().expect("utf-8")],
    );
    assert!(ok, "{err}");
    let got: Vec<(String, String)> = lines[..5]
        .iter()
        .map(|l| {
            (
                l["verdict"].as_str().unwrap_or("-").to_owned(),
                l["reason"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let want = [
        ("admit", "-"),
        ("admit", "-"),
        ("refuse", "revoked"),
        ("refuse", "wrong_session"),
        ("used", "already_used"),
    ];
    assert_eq!(
        got,
        want.map(|(v, r)| (v.to_owned(), r.to_owned())),
        "{lines:?}"
    );
    assert_eq!(lines[0]["holder"], "INÈS MOREAU");
    assert_eq!(lines[0]["admits"], 2);
    assert_eq!(lines[4]["used_gate"], "Porte Est");
}

#[test]
fn a_key_rotation_reaches_an_enrolled_gate_without_re_enrolment() {
    let data = tempfile::tempdir().expect("tempdir");
    let server_dir = data.path().join("server");
    let server = Server::start(&server_dir, 0);
    let session = server.session_on_now("E2E-ROTATION");
    let state = data.path().join("gate");
    enrolled_scanner(&server, &state, "Porte R");
    let (_, before) = server.ticket(session, 0, "Lina Haddad");

    // The admins rotate: the new key is signed into the chain by the old one.
    jo_shared::keys::generate(&server.config.keys_dir, true).expect("rotates");
    let (after_id, after) = server.ticket(session, 1, "Yanis Morel");
    let before = qr_png(data.path(), "before", &before);
    let after = qr_png(data.path(), "after", &after);
    let v = scanner_ok(&state, &["verify", after.to_str().expect("utf-8")]);
    assert_eq!(v["reason"], "unknown_key", "not synced yet: {v}");

    let up = scanner_ok(&state, &["sync"]);
    assert_eq!(up["keyring_changed"], true, "{up}");
    assert_eq!(up["keyring_version"], 2, "{up}");
    let v = scanner_ok(&state, &["verify", after.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "admit", "{v}");
    let v = scanner_ok(&state, &["verify", before.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "admit", "the old key is still active: {v}");

    // The server restarted on its new key signs the revocation list with
    // it: the gate, which never re-enrolled, believes it.
    let port = server.port;
    server.stop();
    let server = Server::start(&server_dir, port);
    server.revoke(&after_id);
    let down = scanner_ok(&state, &["sync"]);
    assert_eq!(down["revocations_added"], 1, "{down}");
    assert_eq!(down["keyring_changed"], false, "{down}");
    let v = scanner_ok(&state, &["verify", after.to_str().expect("utf-8")]);
    assert_eq!(v["reason"], "revoked", "{v}");
}

#[test]
fn enrolment_with_a_keyring_fingerprint_that_is_not_the_servers_is_refused() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let state = data.path().join("gate");
    let code = server.enrollment_code();
    let wrong = "ab".repeat(32);
    let (ok, _, err) = scanner(
        &state,
        &[
            "enroll",
            "--server",
            &server.url,
            "--code",
            &code,
            "--keyring",
            &wrong,
        ],
    );
    assert!(!ok);
    assert!(err.contains("KEYRING REFUSED"), "{err}");
    assert!(err.contains("fingerprint"), "{err}");
    let (ok, lines, _) = scanner(&state, &["sync"]);
    assert!(!ok);
    assert!(
        lines[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not enrolled")),
        "nothing was stored: {lines:?}"
    );

    // Without a fingerprint: trusted on first use, and said so.
    let code = server.enrollment_code();
    let (ok, lines, err) = scanner(
        &state,
        &["enroll", "--server", &server.url, "--code", &code],
    );
    assert!(ok, "{err}");
    assert_eq!(lines[0]["keyring_pinned_by"], "first_use");
    assert_eq!(
        lines[0]["keyring_fingerprint"].as_str(),
        Some(server.keyring_fingerprint().as_str())
    );
    assert!(err.contains("trusted on first use"), "{err}");
}
