//! The gate against a server that lies (or anything on the network that
//! answers in its place): a fake server plays an honest one for the
//! enrolment and the first sync, then serves a forged keyring, forged
//! entries, an old revocation list or a `409 list_ahead`. The gate must keep
//! what it trusts, say so loudly, and never stop uploading its log.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use jo_scanner::gate::Gate;
use jo_scanner::store::Store;
use jo_scanner::sync::{self, Step, SyncError, SyncReport};
use jo_shared::api::{
    DeviceKey, EnrollRequest, EnrollResponse, EntriesResponse, EntryRule, GateSession,
    KeyringResponse, RemoteEntry, RevocationDelta, ScanBatch, ScanBatchResponse, ScanId,
    SessionsResponse, SignedDeviceList, SignedKeyring,
};
use jo_shared::qr;
use jo_shared::revocation::{ListBuilder, RevocationList, RevocationReason};
use jo_shared::signing::{KeyId, Keyring, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use jo_shared::trust::{Admission, admission_message, verify_admission};
use jo_shared::verify::Verdict;

use crate::common::fake::FakeServer;
use crate::common::unix_now;

const SESSION: u32 = 7;
const GATE_ID: &str = "dev-gate-a";

fn signer(n: u8) -> TicketSigner {
    TicketSigner::new(SigningKey::from_bytes(&[n; 32]))
}

fn ring(keys: &[&TicketSigner]) -> Keyring {
    let mut r = Keyring::new();
    for k in keys {
        r.add(k.verifying_key()).expect("adds");
    }
    r
}

fn b64(key: &SigningKey) -> String {
    URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes())
}

/// A ticket for the test session, valid around now, signed by `s`.
fn ticket(s: &TicketSigner, id: u8) -> String {
    let now = unix_now();
    let payload = TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([id; 10]),
        session_id: SESSION,
        admits: 1,
        valid_from: (now - 3600) as u32,
        valid_minutes: 600,
        holder: HolderName::shorten("Zoé Lambert"),
    };
    qr::encode_string(&s.sign_ticket(&payload).expect("signs"))
}

/// Another gate's signed entry.
fn entry(device: &str, key: &SigningKey, ticket: u8, n: u8) -> RemoteEntry {
    let ticket_id = TicketId([ticket; 10]);
    let scan_id = ScanId::generate().expect("random");
    let scanned_at = unix_now() - 60 + i64::from(n);
    let message = admission_message(&Admission {
        device_id: device,
        scan_id: scan_id.as_str(),
        ticket_id: &ticket_id,
        session_id: SESSION,
        gate: "Porte B",
        scanned_at,
    });
    RemoteEntry {
        scan_id,
        ticket_id,
        session_id: SESSION,
        device_id: device.to_owned(),
        gate: "Porte B".into(),
        scanned_at,
        signature: hex::encode(key.sign(&message).to_bytes()),
    }
}

/// An enrolled gate and the fake server it trusts.
struct World {
    key: TicketSigner,
    chain: Vec<SignedKeyring>,
    fake: FakeServer,
    state: tempfile::TempDir,
    /// The gate's own public key, as it sent it at enrolment.
    gate_key: String,
    revocations: ListBuilder,
}

impl World {
    /// A fake server playing an honest one, and a gate enrolled with it by
    /// the fingerprint of its keyring, synced once and set up.
    fn new() -> Self {
        let key = signer(11);
        let chain = vec![SignedKeyring::sign(1, &ring(&[&key]), &[&key])];
        let fake = FakeServer::start();
        fake.answer(
            "POST /api/v1/enroll",
            200,
            &EnrollResponse {
                device_id: GATE_ID.into(),
                token: "token-a".into(),
                server_time: unix_now(),
                keyring: chain.clone(),
            },
        );
        let state = tempfile::tempdir().expect("tempdir");
        let mut w = Self {
            key,
            chain,
            fake,
            state,
            gate_key: String::new(),
            revocations: ListBuilder::default(),
        };
        w.honest();
        let fp = w.chain[0].fingerprint().expect("fingerprint");
        let mut store = w.store();
        sync::enroll(&mut store, &w.fake.url, "CODE-1", "Porte A", Some(&fp)).expect("enrols");
        let sent: EnrollRequest = serde_json::from_str(&w.fake.requests()[0].body).expect("json");
        w.gate_key = sent.device_public_key;
        w.serve_devices(&[]);
        let report = w.sync().expect("first sync");
        assert!(report.keyring_version == Some(1), "{report:?}");
        store.set_gate("Porte A").expect("gate");
        w.fake.clear_requests();
        w
    }

    fn store(&self) -> Store {
        Store::open(self.state.path()).expect("store")
    }

    fn gate(&self) -> Gate {
        let mut g = Gate::load(self.store()).expect("gate");
        g.set_repeat_window(std::time::Duration::ZERO);
        g
    }

    /// Honest answers to every route.
    fn honest(&self) {
        let f = &self.fake;
        f.answer(
            "GET /api/v1/keyring",
            200,
            &KeyringResponse {
                chain: self.chain.clone(),
            },
        );
        f.answer(
            "GET /api/v1/sessions",
            200,
            &SessionsResponse {
                sessions: vec![GateSession {
                    id: SESSION,
                    sport: "Escrime".into(),
                    title: "Épée, finale".into(),
                    venue: "Grand Palais".into(),
                    starts_at: unix_now(),
                    ends_at: unix_now() + 7200,
                    doors_open_at: unix_now() - 3600,
                    entry_rule: EntryRule::Single,
                }],
            },
        );
        self.serve_revocations(unix_now());
        self.serve_entries(vec![]);
        f.answer(
            "POST /api/v1/scans",
            200,
            &ScanBatchResponse {
                stored: 0,
                duplicates: vec![],
                conflicts: 0,
                server_time: unix_now(),
            },
        );
    }

    /// The device list: this gate, and `others`, signed by the server key.
    fn serve_devices(&self, others: &[DeviceKey]) {
        let mut devices = vec![DeviceKey {
            device_id: GATE_ID.into(),
            public_key: self.gate_key.clone(),
            revoked: false,
        }];
        devices.extend_from_slice(others);
        self.fake.answer(
            "GET /api/v1/devices",
            200,
            &SignedDeviceList::sign(&self.key, unix_now(), devices),
        );
    }

    /// The revocation list as built so far, an empty delta from its own
    /// version signed at `issued_at`, and the full list from 0.
    fn serve_revocations(&self, issued_at: i64) {
        let state = self.revocations.sign(&self.key, issued_at);
        let v = self.revocations.version();
        self.fake.answer(
            &format!("GET /api/v1/revocations?since={v}"),
            200,
            &RevocationDelta {
                from_version: v,
                entries: vec![],
                state,
            },
        );
    }

    fn serve_entries(&self, entries: Vec<RemoteEntry>) {
        self.fake.answer(
            "GET /api/v1/entries",
            200,
            &EntriesResponse {
                next_cursor: entries.len() as u64 + 1,
                entries,
                more: false,
            },
        );
    }

    /// One sync of the gate's store, the report whatever the result.
    fn sync_report(&self) -> (Result<(), SyncError>, SyncReport, RevocationList) {
        let mut store = self.store();
        let mut list = store.revocations().expect("list");
        let mut report = SyncReport::default();
        let result = sync::sync_into(&mut store, &mut list, &mut report, &mut |_, _| {});
        (result, report, list)
    }

    fn sync(&self) -> Result<SyncReport, SyncError> {
        let (result, report, _) = self.sync_report();
        result.map(|()| report)
    }
}

fn verdict(g: &mut Gate, code: &str) -> Verdict {
    g.scan(code, unix_now()).expect("logs").verdict
}

#[test]
fn gate_refuses_keyring_not_signed_by_a_pinned_key() {
    let w = World::new();
    let evil = signer(66);
    // The proxy's "version 2": its own key added, signed by itself.
    let forged = SignedKeyring::sign(2, &ring(&[&evil, &w.key]), &[&evil]);
    w.fake.answer(
        "GET /api/v1/keyring",
        200,
        &KeyringResponse {
            chain: vec![w.chain[0].clone(), forged],
        },
    );
    // And a revocation list signed by that key, revoking a real ticket.
    let mut lie = ListBuilder::default();
    let revoked = lie.push(TicketId([2; 10]), RevocationReason::Fraud, unix_now());
    w.fake.answer(
        "GET /api/v1/revocations?since=0",
        200,
        &RevocationDelta {
            from_version: 0,
            entries: vec![revoked],
            state: lie.sign(&evil, unix_now()),
        },
    );

    let (result, report, _) = w.sync_report();
    assert!(
        matches!(&result, Err(SyncError::Incomplete(steps)) if steps == &[Step::Keyring, Step::Revocations]),
        "{result:?}"
    );
    let refused = &report.failures[0].error;
    assert!(
        matches!(refused, SyncError::KeyringRefused(_)),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("KEYRING REFUSED"), "{refused}");
    assert_eq!(report.alarms().count(), 1);
    // The other steps ran.
    assert!(w.fake.routes().contains(&"GET /api/v1/entries".to_owned()));

    // The gate keeps its keys: the forged key's ticket is refused, the real
    // one admitted, and the forged revocation did not land.
    assert_eq!(
        w.store().pinned_keyring().expect("reads"),
        Some(w.chain[0].clone())
    );
    let mut g = w.gate();
    let forged_ticket = verdict(&mut g, &ticket(&evil, 1));
    assert_eq!(
        forged_ticket.reason_code(),
        Some("unknown_key"),
        "{forged_ticket:?}"
    );
    assert!(matches!(
        verdict(&mut g, &ticket(&w.key, 2)),
        Verdict::Admit { .. }
    ));
}

#[test]
fn a_forged_entry_or_one_from_a_revoked_gate_does_not_make_a_ticket_used() {
    let w = World::new();
    let gate_b = SigningKey::from_bytes(&[21; 32]);
    let gate_r = SigningKey::from_bytes(&[22; 32]);
    let nobody = SigningKey::from_bytes(&[23; 32]);
    w.serve_devices(&[
        DeviceKey {
            device_id: "dev-b".into(),
            public_key: b64(&gate_b),
            revoked: false,
        },
        DeviceKey {
            device_id: "dev-r".into(),
            public_key: b64(&gate_r),
            revoked: true,
        },
    ]);
    let mut altered = entry("dev-b", &gate_b, 3, 3);
    altered.ticket_id = TicketId([30; 10]);
    w.serve_entries(vec![
        // Signed by no enrolled device.
        entry("dev-x", &nobody, 1, 1),
        // Signed by a revoked gate.
        entry("dev-r", &gate_r, 2, 2),
        // A real entry of gate B, moved to another ticket.
        altered,
        // Gate B's name, someone else's key.
        entry("dev-b", &nobody, 4, 4),
        // A real one.
        entry("dev-b", &gate_b, 5, 5),
    ]);

    let report = w.sync().expect("refused entries do not fail the sync");
    assert_eq!(
        report.entries_refused, 4,
        "{:?}",
        report.entries_refused_why
    );
    assert_eq!(report.entries.len(), 1);
    assert!(
        report
            .entries_refused_why
            .iter()
            .any(|w| w.contains("revoked")),
        "{:?}",
        report.entries_refused_why
    );

    let mut g = w.gate();
    for id in [1, 2, 30, 4] {
        let v = verdict(&mut g, &ticket(&w.key, id));
        assert!(matches!(v, Verdict::Admit { .. }), "ticket {id}: {v:?}");
    }
    match verdict(&mut g, &ticket(&w.key, 5)) {
        Verdict::AlreadyUsed { prior, .. } => assert_eq!(prior.gate, "Porte B"),
        other => panic!("the verified entry counts: {other:?}"),
    }

    // A device list signed by another key (un-revoking gate R) is refused;
    // the entries wait for a list that verifies.
    let evil = signer(66);
    w.fake.answer(
        "GET /api/v1/devices",
        200,
        &SignedDeviceList::sign(
            &evil,
            unix_now() + 10,
            vec![DeviceKey {
                device_id: "dev-r".into(),
                public_key: b64(&gate_r),
                revoked: false,
            }],
        ),
    );
    w.serve_entries(vec![entry("dev-r", &gate_r, 6, 6)]);
    let (result, report, _) = w.sync_report();
    assert!(
        matches!(&result, Err(SyncError::Incomplete(steps)) if steps == &[Step::Devices, Step::Entries]),
        "{result:?}"
    );
    assert!(matches!(
        report.failures[0].error,
        SyncError::DeviceListRefused(_)
    ));
    assert!(report.entries.is_empty());
    let held = w.store().device_list().expect("reads").expect("held");
    assert!(
        held.active_key("dev-r").is_none(),
        "the verified list is kept"
    );
    let mut g = w.gate();
    assert!(matches!(
        verdict(&mut g, &ticket(&w.key, 6)),
        Verdict::Admit { .. }
    ));
}

#[test]
fn an_old_revocation_list_is_refused_with_the_back_up_alarm() {
    let mut w = World::new();
    // The server revokes a ticket; the gate learns it.
    let e = w
        .revocations
        .push(TicketId([9; 10]), RevocationReason::Refunded, unix_now());
    w.fake.answer(
        "GET /api/v1/revocations?since=0",
        200,
        &RevocationDelta {
            from_version: 0,
            entries: vec![e],
            state: w.revocations.sign(&w.key, unix_now()),
        },
    );
    w.serve_revocations(unix_now());
    let report = w.sync().expect("syncs");
    assert_eq!(report.revocations_added, 1);
    let held = w.store().revocations().expect("list");
    assert_eq!(held.version(), 1);

    // Then the same version, signed an hour earlier: a replay.
    w.serve_revocations(unix_now() - 3600);
    let mut g = w.gate();
    g.scan(&ticket(&w.key, 1), unix_now()).expect("logs");
    drop(g);
    let (result, report, list) = w.sync_report();
    assert!(
        matches!(&result, Err(SyncError::Incomplete(steps)) if steps == &[Step::Revocations]),
        "{result:?}"
    );
    let alarm = &report.failures[0].error;
    assert!(
        matches!(alarm, SyncError::RevocationsBehind(_)),
        "{alarm:?}"
    );
    assert!(
        alarm
            .to_string()
            .contains("the server's revocation list is behind this gate's: server restored from a back-up? tell the admins"),
        "{alarm}"
    );
    assert_eq!(report.uploaded, 1, "the upload went first");
    assert_eq!(list.issued_at(), held.issued_at(), "the list held is kept");
    assert_eq!(
        w.store().revocations().expect("list").issued_at(),
        held.issued_at()
    );
    let mut g = w.gate();
    assert_eq!(
        verdict(&mut g, &ticket(&w.key, 9)).reason_code(),
        Some("revoked")
    );

    // The command line says it too, and fails.
    let (ok, lines, err) = crate::common::scanner(w.state.path(), &["sync"]);
    assert!(!ok);
    assert_eq!(
        lines[0]["failed_steps"],
        serde_json::json!(["revocations"]),
        "{lines:?}"
    );
    assert_eq!(lines[0]["failures"][0]["kind"], "revocations_behind");
    assert!(
        lines[0]["alarms"][0]
            .as_str()
            .is_some_and(|a| a.contains("restored from a back-up")),
        "{lines:?}"
    );
    assert!(err.contains("ALARM"), "{err}");
}

#[test]
fn an_empty_delta_refreshes_the_list_and_one_left_old_while_online_is_an_alarm() {
    let w = World::new();
    let first = w.store().revocations().expect("list").issued_at();
    w.serve_revocations(first + 5);
    w.sync().expect("syncs");
    let list = w.store().revocations().expect("list");
    assert_eq!(
        list.issued_at(),
        first + 5,
        "the fresh signature time is kept"
    );
    let none = SyncReport::default();
    let age = sync::list_age_secs(&list, None, unix_now());
    let max = sync::DEFAULT_MAX_LIST_AGE_SECS;
    assert!(jo_scanner::ui::sync_worker::alarms(&none, true, age, max).is_empty());

    // A list signed 20 minutes ago (every refresh withheld) while the
    // server answers; on the server's clock, the device's being 5 min ahead.
    let old = RevocationList::restore(list.version(), list.head(), unix_now() - 1200, []);
    let age = sync::list_age_secs(&old, Some(300), unix_now());
    assert!((895..=905).contains(&age), "{age}");
    let alarms = jo_scanner::ui::sync_worker::alarms(&none, true, age, max);
    assert!(
        matches!(alarms[..], [jo_scanner::ui::worker::Alarm::ListStale { age_secs }] if age_secs == age),
        "{alarms:?}"
    );
    // Offline, an old list is expected: no alarm.
    assert!(jo_scanner::ui::sync_worker::alarms(&none, false, age, max).is_empty());
}

#[test]
fn a_server_behind_on_revocations_raises_the_alarm_and_the_upload_still_happens() {
    let mut w = World::new();
    let e = w
        .revocations
        .push(TicketId([9; 10]), RevocationReason::Fraud, unix_now());
    w.fake.answer(
        "GET /api/v1/revocations?since=0",
        200,
        &RevocationDelta {
            from_version: 0,
            entries: vec![e],
            state: w.revocations.sign(&w.key, unix_now()),
        },
    );
    w.serve_revocations(unix_now());
    w.sync().expect("syncs");

    // Restored from a back-up taken before that revocation.
    w.fake.answer(
        "GET /api/v1/revocations?since=1",
        409,
        &serde_json::json!({
            "error": "list_ahead",
            "message": "the server's revocation list is at version 0, behind the device's: start again from since=0",
        }),
    );
    let code = ticket(&w.key, 1);
    let mut g = w.gate();
    assert!(matches!(verdict(&mut g, &code), Verdict::Admit { .. }));
    assert_eq!(
        verdict(&mut g, "pas un billet").reason_code(),
        Some("bad_encoding")
    );
    drop(g);
    w.fake.clear_requests();

    let (result, report, list) = w.sync_report();
    assert!(
        matches!(&result, Err(SyncError::Incomplete(steps)) if steps == &[Step::Revocations]),
        "{result:?}"
    );
    assert!(matches!(
        report.failures[0].error,
        SyncError::RevocationsBehind(_)
    ));
    assert_eq!(report.uploaded, 2);
    assert_eq!(report.pending, 0);
    assert_eq!(
        list.version(),
        1,
        "the gate keeps its list, never starts again from 0"
    );
    let routes = w.fake.routes();
    assert_eq!(routes[0], "POST /api/v1/scans", "upload first: {routes:?}");
    assert!(
        routes.contains(&"GET /api/v1/entries".to_owned()),
        "{routes:?}"
    );

    // What went up: the ticket text and the device's signature with the admission.
    let batch: ScanBatch = serde_json::from_str(&w.fake.requests()[0].body).expect("batch");
    let admitted = &batch.records[0];
    assert_eq!(admitted.raw.as_deref(), Some(code.as_str()));
    let key: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&w.gate_key)
        .expect("b64")
        .try_into()
        .expect("32 bytes");
    verify_admission(
        &key,
        &admitted.admission(GATE_ID).expect("admission"),
        admitted.signature.as_deref().expect("signed"),
    )
    .expect("the admission verifies with the gate's key");
    assert_eq!(batch.records[1].raw.as_deref(), Some("pas un billet"));
}

#[test]
fn enrolment_refuses_a_server_whose_keyring_is_not_the_one_the_code_names() {
    let honest = signer(11);
    let evil = signer(66);
    let expected = SignedKeyring::sign(1, &ring(&[&honest]), &[&honest])
        .fingerprint()
        .expect("fp");
    let fake = FakeServer::start();
    fake.answer(
        "POST /api/v1/enroll",
        200,
        &EnrollResponse {
            device_id: "dev-1".into(),
            token: "t".into(),
            server_time: unix_now(),
            keyring: vec![SignedKeyring::sign(1, &ring(&[&evil]), &[&evil])],
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("store");
    let err = sync::enroll(&mut store, &fake.url, "CODE", "Porte A", Some(&expected))
        .expect_err("refused");
    assert!(matches!(err, SyncError::KeyringRefused(_)), "{err:?}");
    assert!(err.to_string().contains("fingerprint"), "{err}");
    assert!(
        store.enrollment().expect("reads").is_none(),
        "nothing stored"
    );
    assert!(store.keyring().expect("ring").entries().is_empty());
}

#[test]
fn a_gate_enrolled_before_signed_keyrings_pins_the_served_chain_at_its_next_sync() {
    let mut w = World::new();
    // As an older scanner left it: the keys in the old table, nothing pinned.
    let db =
        rusqlite::Connection::open(w.state.path().join(jo_scanner::store::DB_FILE)).expect("db");
    db.execute("DELETE FROM pinned_keyring", [])
        .expect("unpins");
    drop(db);
    let mut store = w.store();
    store
        .replace_keyring(&[(w.key.key_id(), *w.key.verifying_key().as_bytes(), false)])
        .expect("keyring");
    assert!(store.pinned_keyring().expect("reads").is_none());
    drop(store);
    // Meanwhile the server rotated its key.
    let new = signer(12);
    w.chain.push(SignedKeyring::sign(
        2,
        &ring(&[&new, &w.key]),
        &[&w.key, &new],
    ));
    w.honest();
    let report = w.sync().expect("syncs");
    assert!(report.keyring_changed);
    assert_eq!(
        w.store().pinned_keyring().expect("reads"),
        Some(w.chain[1].clone())
    );
    let mut g = w.gate();
    assert!(matches!(
        verdict(&mut g, &ticket(&new, 1)),
        Verdict::Admit { .. }
    ));
}
