//! The README's five-minute tour, end to end: `jo-server demo` prepares a
//! data directory, the server serves it, and a gate enrolled with the
//! printed code and keyring fingerprint admits the Solo ticket, says it is
//! already used the second time, and refuses the revoked one.

use crate::common::{Server, postgres_for, scanner_ok};

#[test]
fn the_five_minute_tour_admits_then_says_used_then_refuses_the_revoked_ticket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("server");
    let mut config = jo_server::Config::for_tests(data.clone());
    config.postgres = postgres_for(&data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let demo = rt.block_on(jo_server::demo::run(&config)).expect("demo");
    let again = rt
        .block_on(jo_server::demo::run(&config))
        .expect_err("a second demo on the same database is refused");
    assert!(
        format!("{again:#}").contains("already holds accounts"),
        "{again:#}"
    );

    // What the tour prints is what this test types.
    let state = dir.path().join("gate");
    let st = state.to_str().expect("utf-8");
    let told = demo.instructions(st);
    let files = demo.files_dir.display().to_string();
    let session = demo.session_id.to_string();
    for command in [
        format!(
            "jo-scanner --state {st} enroll --server http://127.0.0.1:8080 --code {} --keyring {}",
            demo.enrollment_code, demo.keyring_fingerprint
        ),
        format!("jo-scanner --state {st} sync"),
        format!("jo-scanner --state {st} configure --gate \"Porte démo\" --session {session}"),
        format!("jo-scanner --state {st} verify {files}/solo.png"),
        format!("jo-scanner --state {st} verify {files}/revoked.png"),
        format!("JO_SCANNER_FRAMES={files} jo-scanner --state {st}"),
    ] {
        assert!(told.contains(&command), "no {command:?} in:\n{told}");
    }

    // `jo-server serve --data DIR` (here on a free loopback port).
    let server = Server::start(&data, 0);
    let e = scanner_ok(
        &state,
        &[
            "enroll",
            "--server",
            &server.url,
            "--code",
            &demo.enrollment_code,
            "--keyring",
            &demo.keyring_fingerprint,
        ],
    );
    assert_eq!(e["enrolled"], true, "{e}");
    assert_eq!(e["keyring_pinned_by"], "fingerprint", "{e}");
    let s = scanner_ok(&state, &["sync"]);
    assert_eq!(s["ok"], true, "{s}");
    assert!(
        s["revocations_added"].as_u64().unwrap_or(0) >= 1,
        "the revoked ticket is on the list: {s}"
    );
    let c = scanner_ok(
        &state,
        &["configure", "--gate", "Porte démo", "--session", &session],
    );
    assert_eq!(c["sessions"], serde_json::json!([demo.session_id]), "{c}");

    let solo = demo.files_dir.join("solo.png");
    let solo = solo.to_str().expect("utf-8");
    let v = scanner_ok(&state, &["verify", solo]);
    assert_eq!(v["verdict"], "admit", "ADMIS: {v}");
    assert_eq!(v["admits"], 1, "{v}");
    assert_eq!(v["holder"], "CAMILLE MARTIN", "{v}");
    let v = scanner_ok(&state, &["verify", solo]);
    assert_eq!(v["verdict"], "used", "DÉJÀ UTILISÉ: {v}");
    assert_eq!(v["used_gate"], "Porte démo", "{v}");
    let revoked = demo.files_dir.join("revoked.png");
    let v = scanner_ok(&state, &["verify", revoked.to_str().expect("utf-8")]);
    assert_eq!(v["verdict"], "refuse", "REFUSÉ: {v}");
    assert_eq!(v["reason"], "revoked", "{v}");
    for name in ["duo", "famille"] {
        let p = demo.files_dir.join(format!("{name}.png"));
        let v = scanner_ok(&state, &["verify", p.to_str().expect("utf-8")]);
        assert_eq!(v["verdict"], "admit", "{name}: {v}");
    }
}
