//! `jo-scanner enroll --ca-cert`: an https server whose certificate chains
//! to a private certificate authority (deploy/make-test-ca.sh's) is refused
//! without the flag, and reached with it. The server here is `openssl
//! s_server` (Debian's openssl): what matters is the TLS handshake, which
//! either fails on the certificate or lets an HTTP answer through. The full
//! enrolment and sync through nginx with such a CA is in
//! scripts/cluster-test.sh.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_jo-scanner");

struct TlsServer {
    child: Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A test CA and server certificate, and `openssl s_server` presenting it.
fn tls_server(dir: &Path) -> TlsServer {
    let status = Command::new(repo_root().join("deploy/make-test-ca.sh"))
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("deploy/make-test-ca.sh runs (openssl is needed)");
    assert!(status.success(), "make-test-ca.sh failed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.join("server.crt"))
        .arg("-key")
        .arg(dir.join("server.key"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let server = TlsServer { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn enroll(state: &Path, port: u16, ca: Option<&Path>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--state")
        .arg(state)
        .args([
            "enroll", "--code", "CODE-1", "--label", "Porte A", "--server",
        ])
        .arg(format!("https://127.0.0.1:{port}"));
    if let Some(ca) = ca {
        cmd.arg("--ca-cert").arg(ca);
    }
    cmd.output().expect("jo-scanner runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_https_server_of_a_private_ca_is_refused_without_ca_cert_and_reached_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = tls_server(&dir.path().join("tls"));

    // Without --ca-cert: the handshake fails on the certificate.
    let out = enroll(&dir.path().join("a"), server.port, None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("server unreachable"), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "not refused for its certificate: {err}"
    );

    // With it: TLS goes through and the (not-a-jo-server) answer is what
    // fails, not the certificate.
    let out = enroll(
        &dir.path().join("b"),
        server.port,
        Some(&dir.path().join("tls/ca.crt")),
    );
    assert!(!out.status.success(), "s_server is no jo-server");
    let err = stderr(&out);
    assert!(
        !err.contains("UnknownIssuer") && !err.to_lowercase().contains("certificate"),
        "the CA given was not trusted: {err}"
    );

    // Another CA than the server's: refused like none.
    let other = dir.path().join("other");
    let status = Command::new(repo_root().join("deploy/make-test-ca.sh"))
        .arg(&other)
        .stdout(Stdio::null())
        .status()
        .expect("runs");
    assert!(status.success());
    let out = enroll(
        &dir.path().join("c"),
        server.port,
        Some(&other.join("ca.crt")),
    );
    let err = stderr(&out);
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "a CA that did not sign the server's certificate was accepted: {err}"
    );
}

#[test]
fn a_ca_cert_that_is_not_a_certificate_is_one_clear_error_before_any_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bogus = dir.path().join("ca.crt");
    std::fs::write(&bogus, "not a certificate\n").expect("write");
    // Port 9 on loopback: nothing listens; the file is refused first.
    let out = enroll(&dir.path().join("s"), 9, Some(&bogus));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--ca-cert"), "{err}");
    assert!(!err.contains("unreachable"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = enroll(
        &dir.path().join("s"),
        9,
        Some(&dir.path().join("missing.crt")),
    );
    assert!(stderr(&out).contains("--ca-cert"), "{}", stderr(&out));
}
