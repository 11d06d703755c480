//! Property tests: random payloads round-trip; random garbage never panics and
//! is never admitted.

use ed25519_dalek::SigningKey;
use jo_shared::qr;
use jo_shared::revocation::RevocationList;
use jo_shared::signing::{KeyId, Keyring, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use jo_shared::verify::{NoEntries, Verdict, VerifyContext, verify};
use proptest::prelude::*;

fn arb_payload() -> impl Strategy<Value = TicketPayload> {
    (
        any::<[u8; 4]>(),
        any::<[u8; 10]>(),
        any::<u32>(),
        1u8..=255,
        any::<u32>(),
        1u16..=u16::MAX,
        "\\PC{0,40}",
    )
        .prop_map(
            |(k, t, session_id, admits, valid_from, valid_minutes, name)| TicketPayload {
                key_id: KeyId(k),
                ticket_id: TicketId(t),
                session_id,
                admits,
                valid_from,
                valid_minutes,
                holder: HolderName::shorten(&name),
            },
        )
}

fn signer() -> TicketSigner {
    TicketSigner::new(SigningKey::from_bytes(&[42; 32]))
}

fn check(code: &str, ring: &Keyring, sessions: &[u32]) -> Verdict {
    verify(
        code,
        &VerifyContext {
            keyring: ring,
            sessions,
            now: 1_785_000_000,
            skew_secs: 300,
            revocations: &RevocationList::new(),
            entries: &NoEntries,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn payload_round_trips(p in arb_payload()) {
        let bytes = p.encode().expect("a shortened name always encodes");
        prop_assert!(bytes.len() <= jo_shared::ticket::MAX_PAYLOAD_LEN);
        prop_assert_eq!(TicketPayload::decode(&bytes).expect("decodes"), p);
    }

    #[test]
    fn signed_ticket_round_trips_through_the_qr_string(p in arb_payload()) {
        let s = signer();
        let code = qr::encode_string(&s.sign_ticket(&p).expect("signs"));
        prop_assert!(code.len() <= qr::MAX_QR_STRING_LEN);
        let mut ring = Keyring::new();
        ring.add(s.verifying_key()).expect("adds");
        let v = check(&code, &ring, &[p.session_id]);
        // Authentic whatever its window: admitted, or refused with the ticket attached.
        let t = v.ticket().expect("signature verified");
        prop_assert_eq!(t.ticket_id, p.ticket_id);
        prop_assert_eq!(&t.holder, &p.holder);
    }

    #[test]
    fn garbage_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Whatever decodes encodes back to the very same bytes: one payload, one encoding.
        if let Ok(p) = TicketPayload::decode(&bytes) {
            prop_assert_eq!(p.encode().expect("re-encodes"), bytes);
        }
    }

    #[test]
    fn garbage_strings_are_never_admitted(s in "\\PC{0,300}") {
        let sg = signer();
        let mut ring = Keyring::new();
        ring.add(sg.verifying_key()).expect("adds");
        let v = check(&s, &ring, &[0, 1, 2]);
        prop_assert!(matches!(v, Verdict::Refuse { ticket: None, .. }), "{:?}", v);
    }

    #[test]
    fn garbage_base64_is_never_admitted(bytes in proptest::collection::vec(any::<u8>(), 65..140)) {
        // Well-formed base64url of random bytes reaches the payload decoder and
        // the signature check; it must still be refused.
        let sg = signer();
        let mut ring = Keyring::new();
        ring.add(sg.verifying_key()).expect("adds");
        let v = check(&qr::encode_string(&bytes), &ring, &[0, 1, 2]);
        prop_assert!(matches!(v, Verdict::Refuse { ticket: None, .. }), "{:?}", v);
    }

    #[test]
    fn random_payload_with_random_signature_is_refused(p in arb_payload(), sig in proptest::collection::vec(any::<u8>(), 64)) {
        let s = signer();
        let mut p = p;
        p.key_id = s.key_id();
        let mut bytes = p.encode().expect("encodes");
        bytes.extend_from_slice(&sig);
        let mut ring = Keyring::new();
        ring.add(s.verifying_key()).expect("adds");
        let v = check(&qr::encode_string(&bytes), &ring, &[p.session_id]);
        prop_assert!(matches!(v, Verdict::Refuse { ticket: None, .. }), "{:?}", v);
    }
}
