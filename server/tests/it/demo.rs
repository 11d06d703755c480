//! `jo-server demo`: the demonstration install of the README's five-minute
//! tour — what it writes and prints, that it refuses a database in use, and
//! that `serve` then serves it. (The gate half of the tour runs in the
//! scanner's tests, which drive the `jo-scanner` binary.)

use std::process::Command;

use jo_server::Config;
use reqwest::StatusCode;

use crate::common::shop::{pdf_text, plain, zbar};
use crate::common::{Browser, start, test_config};

const BIN: &str = env!("CARGO_BIN_EXE_jo-server");

fn demo(data: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .arg("demo")
        .arg("--data")
        .arg(data)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("jo-server demo runs")
}

#[tokio::test]
async fn demo_prepares_the_tour_refuses_a_database_in_use_and_serve_serves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = demo(&data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The commands of the tour, as the README gives them.
    let files = data.join("demo");
    let files = files.display();
    for expected in [
        format!("jo-server serve --data {}", data.display()),
        "enroll --server http://127.0.0.1:8080 --code ".to_owned(),
        " --keyring ".to_owned(),
        "jo-scanner --state demo-gate sync".to_owned(),
        "configure --gate \"Porte démo\" --session ".to_owned(),
        format!("verify {files}/solo.png"),
        format!("verify {files}/revoked.png"),
        format!("JO_SCANNER_FRAMES={files} jo-scanner --state demo-gate"),
    ] {
        assert!(stdout.contains(&expected), "no {expected:?} in:\n{stdout}");
    }

    // Each ticket's QR code and PDF, the code readable by a standard reader.
    for name in ["solo", "duo", "famille", "revoked"] {
        let png = data.join("demo").join(format!("{name}.png"));
        let codes = zbar(&png);
        assert_eq!(codes.len(), 1, "{name}.png: {codes:?}");
        let pdf = data.join("demo").join(format!("{name}.pdf"));
        let text = plain(&pdf_text(&pdf));
        assert!(text.contains("Démonstration"), "{name}.pdf:\n{text}");
    }

    // A second run finds accounts and tickets: one clear line, no backtrace.
    let again = demo(&data);
    assert!(!again.status.success(), "a second demo must be refused");
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("already holds accounts"), "{err}");
    assert!(!err.contains("Stack backtrace"), "{err}");

    // `serve` on the same data directory shows the demo session on sale.
    let session: String = stdout
        .split("--session ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("session id")
        .to_owned();
    let app = start(Config::for_tests(data), dir).await;
    let b = Browser::new(&app);
    let (status, html) = b.get_text(&format!("/sessions/{session}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Démonstration — séance du jour"), "{html}");
}

#[tokio::test]
async fn demo_refuses_a_database_with_accounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(dir.path().join("data"));
    jo_server::admin::create_admin(
        &config,
        "chef@example.com",
        "chef",
        jo_server::config::Secret::new("un mot de passe assez long".to_owned()),
    )
    .await
    .expect("admin");
    let err = jo_server::demo::run(&config)
        .await
        .expect_err("a database with an account is refused");
    assert!(
        format!("{err:#}").contains("already holds accounts"),
        "{err:#}"
    );
    assert!(!dir.path().join("data").join("demo").exists());
}
