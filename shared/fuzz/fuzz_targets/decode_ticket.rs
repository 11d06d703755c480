//! Fuzzes every decoder a scanned code goes through: the QR string, the payload
//! codec and the full `verify` pipeline. Any panic is a bug.
#![no_main]

use jo_shared::revocation::RevocationList;
use jo_shared::signing::{Keyring, TicketSigner};
use jo_shared::ticket::TicketPayload;
use jo_shared::verify::{NoEntries, Verdict, VerifyContext, verify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The payload decoder on raw bytes.
    if let Ok(p) = TicketPayload::decode(data) {
        // Whatever decodes must encode back to the same bytes (one encoding per payload).
        assert_eq!(p.encode().ok().as_deref(), Some(data));
    }
    // The whole pipeline on text.
    if let Ok(text) = std::str::from_utf8(data) {
        let signer = TicketSigner::new(ed25519_dalek::SigningKey::from_bytes(&[1; 32]));
        let mut ring = Keyring::new();
        let _ = ring.add(signer.verifying_key());
        let v = verify(
            text,
            &VerifyContext {
                keyring: &ring,
                sessions: &[0, 1, 2, 3],
                now: 1_785_000_000,
                skew_secs: 300,
                revocations: &RevocationList::new(),
                entries: &NoEntries,
            },
        );
        // Random input cannot carry a valid signature by this key.
        assert!(!matches!(v, Verdict::Admit { .. }));
    }
});
