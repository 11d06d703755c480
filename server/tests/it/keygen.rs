//! `jo-server keygen` from the outside: files, modes, refusal to overwrite,
//! rotation, and OpenSSL reading what it wrote.

use std::process::Command;

use std::path::Path;
use std::process::Output;

const BIN: &str = env!("CARGO_BIN_EXE_jo-server");

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (scripts/setup-debian.sh installs openssl)")
    })
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn has_mode(path: &Path, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o777 == mode)
}

#[test]
fn keygen_writes_openssl_readable_keys_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let server = BIN;

    let out = run(Command::new(server).arg("keygen").arg("--keys").arg(&keys));
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

    let out = run(Command::new(server).arg("keygen").arg("--keys").arg(&keys));
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

    let out = run(Command::new(server)
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
