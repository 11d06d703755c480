//! Writes the format test vectors of `fixtures/` from the test-only key.
//!
//! ```sh
//! cargo run -p jo-shared --example gen_vectors -- fixtures
//! ```
//!
//! Ed25519 signatures are deterministic, so running it again rewrites the same
//! bytes; `shared/tests/vectors.rs` checks the committed files against the code.

use std::fs;
use std::path::PathBuf;

use jo_shared::keys;
use jo_shared::qr;
use jo_shared::signing::{KeyId, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use serde_json::json;

/// Seed of the test-only key: SHA-256 would hide nothing here, so it is plain.
const TEST_SEED: [u8; 32] = *b"JO-E-TICKETS-TEST-KEY-NOT-SECRET";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fixtures".into()));
    let signer = TicketSigner::new(ed25519_dalek::SigningKey::from_bytes(&TEST_SEED));
    fs::create_dir_all(out.join("keys"))?;
    fs::create_dir_all(out.join("vectors"))?;
    fs::write(
        out.join("keys/test-signing.key.pem"),
        keys::signing_key_to_pem(signer.signing_key()).as_bytes(),
    )?;
    fs::write(
        out.join("keys/test-keyring.pem"),
        keys::public_key_to_pem(&signer.verifying_key()),
    )?;

    let cases = [
        ("solo-packed-name", 101, 1, "Marie Curie"),
        (
            "famille-30-char-name",
            4242,
            4,
            "Jean-Christophe Martin-Lefèvre",
        ),
        ("duo-utf8-name", 16_384, 2, "李娜 Li Na"),
    ];
    let mut vectors = Vec::new();
    for (i, (name, session_id, admits, holder)) in cases.into_iter().enumerate() {
        let payload = TicketPayload {
            key_id: KeyId([0; 4]),
            ticket_id: TicketId([0x10 + i as u8; 10]),
            session_id,
            admits,
            valid_from: 1_785_000_000,
            valid_minutes: 360,
            holder: HolderName::shorten(holder),
        };
        let signed = signer.sign_ticket(&payload)?;
        let (payload_bytes, sig) = signed.split_at(signed.len() - 64);
        let code = qr::encode_string(&signed);
        let png = format!("{name}.png");
        fs::write(out.join("vectors").join(&png), qr::render_png(&code, 8)?)?;
        let info = qr::symbol_info(&code)?;
        vectors.push(json!({
            "name": name,
            "fields": {
                "version": 1,
                "key_id": signer.key_id().to_hex(),
                "ticket_id": payload.ticket_id.to_hex(),
                "session_id": session_id,
                "admits": admits,
                "valid_from": payload.valid_from,
                "valid_minutes": payload.valid_minutes,
                "holder": payload.holder.as_str(),
            },
            "payload_hex": hex::encode(payload_bytes),
            "signature_hex": hex::encode(sig),
            "qr_string": code,
            "qr_png": png,
            "qr_version": info.version,
            "qr_modules": info.modules,
        }));
    }
    let doc = json!({
        "format": "JO E-Tickets signed ticket, format v1 (see FORMAT.md)",
        "test_key_only": "fixtures/keys/test-signing.key.pem is public: never trust it in production",
        "public_key_hex": hex::encode(signer.verifying_key().as_bytes()),
        "key_id": signer.key_id().to_hex(),
        "vectors": vectors,
    });
    fs::write(
        out.join("vectors/ticket-v1.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    println!("wrote {} vectors to {}", cases.len(), out.display());
    Ok(())
}
