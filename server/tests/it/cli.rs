//! The `jo-server` command line: help, `serve` on the embedded defaults with
//! graceful shutdown, and `enroll-code`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use jo_server::auth::tokens::hash_enrollment_code;
use jo_server::db::Store;
use jo_server::db::devices::NewDevice;

const BIN: &str = env!("CARGO_BIN_EXE_jo-server");

#[test]
fn help_lists_every_subcommand() {
    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "keygen", "create-admin", "enroll-code"] {
        assert!(text.contains(sub), "--help lacks {sub}:\n{text}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--data",
        "--database",
        "--keys",
        "--public-url",
        "--smtp-host",
        "JO_BIND",
        "JO_DATA_DIR",
    ] {
        assert!(text.contains(flag), "serve --help lacks {flag}");
    }
    assert!(!text.contains("--smtp-password"), "secrets are never flags");
}

#[tokio::test]
async fn serve_creates_everything_on_first_run_and_stops_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Only the port is chosen (0: any free one); everything else is default,
    // relative to the working directory.
    let mut child = Command::new(BIN)
        .args(["serve"])
        .env("JO_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(20)) {
        assert!(
            !line.contains("signing.key.pem\n") && !line.contains("PRIVATE KEY"),
            "key material logged"
        );
        if let Some(rest) = line.split("address=").nth(1) {
            addr = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
    }
    let addr = addr.expect("the server logs its address");
    let body = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "ok");
    let data = dir.path().join("data");
    for path in [
        "jo.sqlite3",
        "keys/signing.key.pem",
        "keys/keyring.pem",
        "outbox",
    ] {
        assert!(data.join(path).exists(), "data/{path} was not created");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| {
            std::fs::metadata(data.join(p))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("jo.sqlite3"), 0o600);
        assert_eq!(mode("keys/signing.key.pem"), 0o600);
        assert_eq!(mode("."), 0o700);
    }
    // SIGTERM: graceful shutdown, exit status 0.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("waits");
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    // A second start reuses the key and the database.
    let key = std::fs::read(data.join("keys/signing.key.pem")).expect("key");
    let out = Command::new(BIN)
        .args(["enroll-code", "--data", "data"])
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(data.join("keys/signing.key.pem")).expect("key"),
        key
    );
}

#[tokio::test]
async fn enroll_code_prints_a_one_time_code_the_store_redeems_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args(["enroll-code", "--data"])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_eq!(code.len(), 24, "xxxx-xxxx-xxxx-xxxx-xxxx, got {code:?}");
    let hash = hash_enrollment_code(&code).expect("well-formed");

    let store = Store::open_sqlite(&data.join("jo.sqlite3")).expect("opens");
    let device = |id: &str| NewDevice {
        id: id.into(),
        label: "Porte A".into(),
        public_key: [3; 32],
        token_hash: [id.len() as u8; 32],
    };
    assert!(
        store
            .redeem_enrollment_code(hash, device("dev-1"))
            .await
            .expect("runs")
    );
    assert!(
        !store
            .redeem_enrollment_code(hash, device("dev-22"))
            .await
            .expect("runs"),
        "single use"
    );
    assert_eq!(
        store
            .device_by_token([5; 32])
            .await
            .expect("runs")
            .as_deref(),
        Some("dev-1")
    );
}

#[test]
fn a_user_error_is_one_line_without_a_backtrace() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A keys directory under a regular file cannot be created.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").expect("file");
    let out = Command::new(BIN)
        .arg("keygen")
        .arg("--keys")
        .arg(file.join("keys"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: keygen in "), "{err}");
    assert!(!err.contains("Stack backtrace"), "{err}");
}

/// A SIGTERM sent the moment the server says it listens is a graceful
/// stop (exit 0), never the default action that kills the process: the
/// handlers are in place before that line.
#[test]
fn a_sigterm_right_after_the_listening_line_is_a_graceful_stop() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(BIN)
            .args(["serve"])
            .env("JO_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        assert!(
            lines.any(|l| l.contains("address=")),
            "the server logs its address"
        );
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        // Read on so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let exit = child.wait().expect("waits");
        assert!(exit.success(), "exit after an early SIGTERM: {exit:?}");
    }
}
