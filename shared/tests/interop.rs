//! Interoperability with independent tools: OpenSSL reads our key files and
//! verifies our signatures (and we verify its); zbarimg reads our QR symbols.
//!
//! These tests need `openssl` and `zbarimg` (Debian: openssl, zbar-tools);
//! `scripts/setup-debian.sh` installs them. A missing tool fails the test.

use std::path::Path;
use std::process::Command;

use jo_shared::keys;
use jo_shared::qr;
use jo_shared::signing::{KeyId, TicketSigner, verify_signature};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}); install it with scripts/setup-debian.sh")
    })
}

fn payload() -> TicketPayload {
    TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([0xc3; 10]),
        session_id: 77,
        admits: 4,
        valid_from: 1_785_000_000,
        valid_minutes: 300,
        holder: HolderName::shorten("Jean-Christophe Martin-Lefèvre"),
    }
}

fn openssl_verify(pub_pem: &Path, msg: &Path, sig: &Path) -> bool {
    let out = run(Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin"])
        .arg("-inkey")
        .arg(pub_pem)
        .arg("-in")
        .arg(msg)
        .arg("-sigfile")
        .arg(sig));
    let stdout = String::from_utf8_lossy(&out.stdout);
    out.status.success() && stdout.contains("Signature Verified Successfully")
}

#[test]
fn openssl_reads_keygen_files_and_verifies_our_ticket_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = keys::generate(dir.path(), false).expect("keygen");
    for (file, extra) in [
        (&generated.signing_key, None),
        (&generated.keyring, Some("-pubin")),
    ] {
        let mut cmd = Command::new("openssl");
        cmd.arg("pkey").arg("-noout").arg("-in").arg(file);
        if let Some(x) = extra {
            cmd.arg(x);
        }
        let out = run(&mut cmd);
        assert!(
            out.status.success(),
            "openssl pkey {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The public key OpenSSL derives from our private key file is our keyring's.
    let out = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&generated.signing_key));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(&generated.keyring).expect("keyring")
    );

    let signer = keys::load_signer(dir.path()).expect("loads");
    let signed = signer.sign_ticket(&payload()).expect("signs");
    let (msg, sig) = signed.split_at(signed.len() - 64);
    let msg_path = dir.path().join("payload.bin");
    let sig_path = dir.path().join("payload.sig");
    std::fs::write(&msg_path, msg).expect("write");
    std::fs::write(&sig_path, sig).expect("write");
    assert!(
        openssl_verify(&generated.keyring, &msg_path, &sig_path),
        "openssl refused a good signature"
    );

    let mut altered = msg.to_vec();
    altered[20] ^= 0x01;
    std::fs::write(&msg_path, &altered).expect("write");
    assert!(
        !openssl_verify(&generated.keyring, &msg_path, &sig_path),
        "openssl accepted an altered payload"
    );
}

#[test]
fn we_read_openssl_keys_and_verify_openssl_signatures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k.pem");
    let msg = dir.path().join("m.bin");
    let sig = dir.path().join("m.sig");
    let out = run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key));
    assert!(out.status.success());
    std::fs::write(&msg, b"JO 2024: Paris").expect("write");
    let out = run(Command::new("openssl")
        .args(["pkeyutl", "-sign", "-rawin", "-inkey"])
        .arg(&key)
        .arg("-in")
        .arg(&msg)
        .arg("-out")
        .arg(&sig));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signing = keys::signing_key_from_pem(&std::fs::read_to_string(&key).expect("read"))
        .expect("openssl key parses");
    let signer = TicketSigner::new(signing);
    let sig_bytes = std::fs::read(&sig).expect("read");
    assert_eq!(
        verify_signature(&signer.verifying_key(), b"JO 2024: Paris", &sig_bytes),
        Ok(())
    );
    assert!(verify_signature(&signer.verifying_key(), b"JO 2024: Pariz", &sig_bytes).is_err());
}

#[test]
fn zbarimg_and_rqrr_decode_our_ticket_qr_to_the_exact_string() {
    let signer = TicketSigner::generate().expect("csprng");
    let code = qr::encode_string(&signer.sign_ticket(&payload()).expect("signs"));
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("ticket.png");
    std::fs::write(&png, qr::render_png(&code, 6).expect("renders")).expect("write");

    let out = run(Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(&png));
    assert!(
        out.status.success(),
        "zbarimg found no code: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'),
        code
    );

    let img = image::open(&png).expect("opens").to_luma8();
    assert_eq!(qr::decode_image(&img).expect("rqrr decodes"), vec![code]);
}
