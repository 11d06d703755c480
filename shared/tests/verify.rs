//! The verify entry point: every refusal has its own reason, and no altered
//! ticket is ever admitted.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use jo_shared::qr;
use jo_shared::revocation::{ListBuilder, RevocationDelta, RevocationList, RevocationReason};
use jo_shared::signing::{KeyId, Keyring, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use jo_shared::verify::{NoEntries, PriorEntry, Refusal, Verdict, VerifyContext, verify};

const NOW: i64 = 1_785_000_000;
const SESSION: u32 = 301;

fn signer(seed: u8) -> TicketSigner {
    TicketSigner::new(SigningKey::from_bytes(&[seed; 32]))
}

fn payload() -> TicketPayload {
    TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([0x5a; 10]),
        session_id: SESSION,
        admits: 2,
        valid_from: (NOW - 3600) as u32,
        valid_minutes: 240,
        holder: HolderName::shorten("Camille Lefèvre"),
    }
}

fn ticket(s: &TicketSigner, p: &TicketPayload) -> String {
    qr::encode_string(&s.sign_ticket(p).expect("signs"))
}

struct Gate {
    ring: Keyring,
    revocations: RevocationList,
    sessions: Vec<u32>,
    now: i64,
}

impl Gate {
    fn new(s: &TicketSigner) -> Self {
        let mut ring = Keyring::new();
        ring.add(s.verifying_key()).expect("adds");
        Self {
            ring,
            revocations: RevocationList::new(),
            sessions: vec![SESSION, 302],
            now: NOW,
        }
    }

    fn check(&self, code: &str) -> Verdict {
        self.check_with(code, &NoEntries)
    }

    fn check_with(&self, code: &str, entries: &dyn jo_shared::verify::EntryLookup) -> Verdict {
        verify(
            code,
            &VerifyContext {
                keyring: &self.ring,
                sessions: &self.sessions,
                now: self.now,
                skew_secs: 300,
                revocations: &self.revocations,
                entries,
            },
        )
    }
}

fn reason(v: &Verdict) -> Refusal {
    match v {
        Verdict::Refuse { reason, .. } => *reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn genuine_ticket_is_admitted_with_every_field() {
    let s = signer(1);
    let gate = Gate::new(&s);
    let code = ticket(&s, &payload());
    match gate.check(&code) {
        Verdict::Admit { ticket } => {
            let mut expected = payload();
            expected.key_id = s.key_id();
            assert_eq!(ticket, expected);
            assert_eq!(ticket.holder.as_str(), "CAMILLE LEFÈVRE");
        }
        other => panic!("expected admit, got {other:?}"),
    }
}

#[test]
fn one_flipped_bit_anywhere_in_the_qr_string_is_refused() {
    let s = signer(1);
    let gate = Gate::new(&s);
    let code = ticket(&s, &payload());
    let bytes = code.as_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut altered = bytes.to_vec();
            altered[i] ^= 1 << bit;
            let Ok(altered) = String::from_utf8(altered) else {
                continue; // not even text: a scanner never gets it as a string
            };
            let v = gate.check(&altered);
            assert!(
                matches!(v, Verdict::Refuse { ticket: None, .. }),
                "char {i} bit {bit}: {v:?}"
            );
        }
    }
}

#[test]
fn each_failure_has_its_own_reason() {
    let s = signer(1);
    let mut gate = Gate::new(&s);
    let good = ticket(&s, &payload());

    assert_eq!(reason(&gate.check("not a ticket!")), Refusal::BadEncoding);
    assert_eq!(reason(&gate.check("")), Refusal::BadEncoding);

    // Signed by a key of the right id format but not in the keyring.
    let stranger = signer(2);
    assert_eq!(
        reason(&gate.check(&ticket(&stranger, &payload()))),
        Refusal::UnknownKey
    );

    // Wrong key: the payload claims our key id but another key signed it.
    let mut bytes = payload();
    bytes.key_id = s.key_id();
    let mut forged = bytes.encode().expect("encodes");
    forged.extend_from_slice(&stranger.sign(&bytes.encode().expect("encodes")));
    assert_eq!(
        reason(&gate.check(&qr::encode_string(&forged))),
        Refusal::BadSignature
    );

    // Unsupported version: a future format, however well signed.
    let mut v2 = bytes.encode().expect("encodes");
    v2[0] = 2;
    let sig = s.sign(&v2);
    v2.extend_from_slice(&sig);
    assert_eq!(
        reason(&gate.check(&qr::encode_string(&v2))),
        Refusal::UnsupportedVersion { version: 2 }
    );

    // Malformed payload behind a valid signature.
    let mut junk = vec![1u8, 0, 0];
    let sig = s.sign(&junk);
    junk.extend_from_slice(&sig);
    assert_eq!(
        reason(&gate.check(&qr::encode_string(&junk))),
        Refusal::Malformed
    );

    let mut wrong_session = payload();
    wrong_session.session_id = 999;
    assert_eq!(
        reason(&gate.check(&ticket(&s, &wrong_session))),
        Refusal::WrongSession
    );

    let mut early = payload();
    early.valid_from = (NOW + 3600) as u32;
    assert_eq!(
        reason(&gate.check(&ticket(&s, &early))),
        Refusal::NotYetValid
    );

    let mut late = payload();
    late.valid_from = (NOW - 10 * 3600) as u32;
    late.valid_minutes = 60;
    assert_eq!(reason(&gate.check(&ticket(&s, &late))), Refusal::Expired);

    // Revoked, through a signed delta like the one a scanner syncs.
    let mut b = ListBuilder::default();
    let entry = b.push(payload().ticket_id, RevocationReason::Refunded, NOW - 60);
    let delta = RevocationDelta {
        from_version: 0,
        entries: vec![entry],
        state: b.sign(&s, NOW - 30),
    };
    gate.revocations.apply(&delta, &gate.ring).expect("applies");
    assert_eq!(
        reason(&gate.check(&good)),
        Refusal::Revoked {
            reason: RevocationReason::Refunded
        }
    );

    // Withdrawn key: the same ticket, refused for its key.
    gate.ring.withdraw(s.key_id());
    assert_eq!(reason(&gate.check(&good)), Refusal::WithdrawnKey);
}

#[test]
fn clock_skew_is_tolerated_both_ways() {
    let s = signer(1);
    let mut gate = Gate::new(&s);
    let mut p = payload();
    p.valid_from = (NOW + 200) as u32; // device clock 200 s behind: within 300 s
    p.valid_minutes = 10;
    let code = ticket(&s, &p);
    assert!(matches!(gate.check(&code), Verdict::Admit { .. }));
    gate.now = NOW + 200 + 600 + 250; // 250 s after the end: within 300 s
    assert!(matches!(gate.check(&code), Verdict::Admit { .. }));
    gate.now = NOW + 200 + 600 + 301;
    assert_eq!(reason(&gate.check(&code)), Refusal::Expired);
}

#[test]
fn rotation_keeps_old_tickets_valid_until_withdrawn() {
    let old = signer(1);
    let new = signer(3);
    let mut gate = Gate::new(&old);
    gate.ring.add(new.verifying_key()).expect("adds");
    let old_ticket = ticket(&old, &payload());
    let new_ticket = ticket(&new, &payload());
    assert!(matches!(gate.check(&old_ticket), Verdict::Admit { .. }));
    assert!(matches!(gate.check(&new_ticket), Verdict::Admit { .. }));
    gate.ring.withdraw(old.key_id());
    assert_eq!(reason(&gate.check(&old_ticket)), Refusal::WithdrawnKey);
    assert!(matches!(gate.check(&new_ticket), Verdict::Admit { .. }));
}

#[test]
fn already_used_says_when_and_where() {
    let s = signer(1);
    let gate = Gate::new(&s);
    let prior = PriorEntry {
        scanned_at: NOW - 120,
        gate: "Porte B".into(),
    };
    let entries = HashMap::from([(payload().ticket_id, prior.clone())]);
    match gate.check_with(&ticket(&s, &payload()), &entries) {
        Verdict::AlreadyUsed { prior: p, ticket } => {
            assert_eq!(p, prior);
            assert_eq!(ticket.ticket_id, payload().ticket_id);
        }
        other => panic!("expected already used, got {other:?}"),
    }
}

#[test]
fn surrounding_whitespace_from_a_scanner_is_ignored() {
    let s = signer(1);
    let gate = Gate::new(&s);
    let code = format!("  {}\n", ticket(&s, &payload()));
    assert!(matches!(gate.check(&code), Verdict::Admit { .. }));
}
