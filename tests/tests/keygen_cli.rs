//! `jo-server keygen` from the outside: files, modes, refusal to overwrite,
//! rotation, and OpenSSL reading what it wrote.

use std::process::Command;

use jo_e2e::{binary, describe, has_mode, run};

#[test]
fn keygen_writes_openssl_readable_keys_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let server = binary("jo-server");

    let out = run(Command::new(&server).arg("keygen").arg("--keys").arg(&keys));
    assert!(out.status.success(), "{}", describe(&out));
    let private = keys.join("signing.key.pem");
    let keyring = keys.join("keyring.pem");
    assert!(has_mode(&private, 0o600), "private key must be 0600");
    let original = std::fs::read(&private).expect("key written");

    let out = run(Command::new("openssl")
        .args(["pkey", "-noout", "-in"])
        .arg(&private));
    assert!(
        out.status.success(),
        "openssl cannot read the private key: {}",
        describe(&out)
    );
    let out = run(Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-in"])
        .arg(&keyring));
    assert!(
        out.status.success(),
        "openssl cannot read the keyring: {}",
        describe(&out)
    );

    let out = run(Command::new(&server).arg("keygen").arg("--keys").arg(&keys));
    assert!(!out.status.success(), "overwrote without --force");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--force"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read(&private).expect("key"),
        original,
        "the key changed"
    );

    let out = run(Command::new(&server)
        .arg("keygen")
        .arg("--keys")
        .arg(&keys)
        .arg("--force"));
    assert!(out.status.success(), "{}", describe(&out));
    assert_ne!(
        std::fs::read(&private).expect("key"),
        original,
        "--force did not rotate"
    );
    assert!(has_mode(&private, 0o600));
    let ring = std::fs::read_to_string(&keyring).expect("keyring");
    assert_eq!(
        ring.matches("BEGIN PUBLIC KEY").count(),
        2,
        "the old public key must stay"
    );
}

#[test]
fn both_binaries_answer_help() {
    for (bin, words) in [
        ("jo-server", &["serve", "keygen", "create-admin"][..]),
        (
            "jo-scanner",
            &["enroll", "sync", "verify", "replay", "--state"][..],
        ),
    ] {
        let out = run(Command::new(binary(bin)).arg("--help"));
        assert!(out.status.success(), "{}", describe(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        for w in words {
            assert!(
                text.contains(w),
                "{bin} --help does not mention {w}:\n{text}"
            );
        }
    }
}
