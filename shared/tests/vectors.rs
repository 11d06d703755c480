//! The committed test vectors in `fixtures/` agree with the code, field by field.

use std::path::PathBuf;

use jo_shared::keys;
use jo_shared::qr;
use jo_shared::revocation::RevocationList;
use jo_shared::signing::{KeyId, Keyring, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use jo_shared::verify::{NoEntries, Verdict, VerifyContext, verify};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn load() -> Value {
    let text =
        std::fs::read_to_string(fixtures().join("vectors/ticket-v1.json")).expect("vectors file");
    serde_json::from_str(&text).expect("valid JSON")
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} is not a string"))
}

fn u64_of(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a number"))
}

#[test]
fn vectors_match_the_code() {
    let doc = load();
    let signer = TicketSigner::new(
        keys::signing_key_from_pem(
            &std::fs::read_to_string(fixtures().join("keys/test-signing.key.pem")).expect("key"),
        )
        .expect("test key parses"),
    );
    let public = keys::public_keys_from_pem(
        &std::fs::read_to_string(fixtures().join("keys/test-keyring.pem")).expect("keyring"),
    )
    .expect("keyring parses");
    assert_eq!(public, vec![signer.verifying_key()]);
    assert_eq!(str_of(&doc, "key_id"), signer.key_id().to_hex());
    assert_eq!(
        str_of(&doc, "public_key_hex"),
        hex::encode(signer.verifying_key().as_bytes())
    );
    let mut ring = Keyring::new();
    ring.add(public[0]).expect("adds");

    let vectors = doc["vectors"].as_array().expect("vectors array");
    assert!(vectors.len() >= 3);
    for v in vectors {
        let name = str_of(v, "name");
        let f = &v["fields"];
        assert_eq!(u64_of(f, "version"), 1, "{name}");
        let payload = TicketPayload {
            key_id: KeyId::from_hex(str_of(f, "key_id")).expect("key id"),
            ticket_id: TicketId::from_hex(str_of(f, "ticket_id")).expect("ticket id"),
            session_id: u64_of(f, "session_id") as u32,
            admits: u64_of(f, "admits") as u8,
            valid_from: u64_of(f, "valid_from") as u32,
            valid_minutes: u64_of(f, "valid_minutes") as u16,
            holder: HolderName::new(str_of(f, "holder")).expect("holder"),
        };
        let bytes = payload.encode().expect("encodes");
        assert_eq!(
            hex::encode(&bytes),
            str_of(v, "payload_hex"),
            "{name}: payload"
        );
        assert_eq!(
            TicketPayload::decode(&bytes).expect("decodes"),
            payload,
            "{name}"
        );
        let signed = signer.sign_ticket(&payload).expect("signs");
        assert_eq!(
            hex::encode(&signed[bytes.len()..]),
            str_of(v, "signature_hex"),
            "{name}: signature"
        );
        let code = qr::encode_string(&signed);
        assert_eq!(code, str_of(v, "qr_string"), "{name}: QR string");

        let png = image::open(fixtures().join("vectors").join(str_of(v, "qr_png")))
            .expect("PNG opens")
            .to_luma8();
        assert_eq!(
            qr::decode_image(&png).expect("rqrr reads it"),
            vec![code.clone()],
            "{name}: PNG"
        );
        let info = qr::symbol_info(&code).expect("renders");
        assert_eq!(
            i64::from(info.version),
            v["qr_version"].as_i64().expect("version"),
            "{name}"
        );
        assert!(
            info.version <= 10,
            "{name}: QR version {} > 10",
            info.version
        );

        let verdict = verify(
            &code,
            &VerifyContext {
                keyring: &ring,
                sessions: &[payload.session_id],
                now: i64::from(payload.valid_from) + 60,
                skew_secs: 0,
                revocations: &RevocationList::new(),
                entries: &NoEntries,
            },
        );
        assert_eq!(verdict, Verdict::Admit { ticket: payload }, "{name}");
    }
}
