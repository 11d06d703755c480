//! `jo-scanner verify` from the outside, on the committed ticket vectors: one
//! JSON line per image, the documented fields, the same verdicts as the
//! shared crate, and a durable scan log behind them.

use std::process::Command;

use std::path::PathBuf;
use std::process::Output;

const BIN: &str = env!("CARGO_BIN_EXE_jo-scanner");

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
use jo_scanner::store::Store;
use jo_shared::api::{EntryRule, GateSession, ScanVerdict};
use jo_shared::keys;
use serde_json::Value;

fn vectors() -> Value {
    let text =
        std::fs::read_to_string(fixtures_dir().join("vectors/ticket-v1.json")).expect("vectors");
    serde_json::from_str(&text).expect("json")
}

/// A scanner state that trusts the test key and serves the vectors' sessions.
fn seeded_state(dir: &std::path::Path, sessions: &[u32]) {
    let key = keys::public_keys_from_pem(
        &std::fs::read_to_string(fixtures_dir().join("keys/test-keyring.pem")).expect("keyring"),
    )
    .expect("parses")[0];
    let mut store = Store::open(dir).expect("store");
    store
        .replace_keyring(&[(jo_shared::KeyId::of(&key), *key.as_bytes(), false)])
        .expect("keyring");
    let sessions: Vec<GateSession> = sessions
        .iter()
        .map(|&id| GateSession {
            id,
            sport: "Athlétisme".into(),
            title: format!("Session {id}"),
            venue: "Stade de France".into(),
            starts_at: 1_785_003_600,
            ends_at: 1_785_010_800,
            doors_open_at: 1_785_000_000,
            entry_rule: EntryRule::Single,
        })
        .collect();
    store.replace_sessions(&sessions).expect("sessions");
    store.set_gate("Porte 3").expect("gate");
}

#[test]
fn verify_prints_one_json_line_per_image_and_logs_every_scan() {
    let doc = vectors();
    let vs = doc["vectors"].as_array().expect("array");
    let state = tempfile::tempdir().expect("tempdir");
    // Serve every vector's session but the last, which must be refused as wrong_session.
    let served: Vec<u32> = vs[..vs.len() - 1]
        .iter()
        .map(|v| v["fields"]["session_id"].as_u64().expect("id") as u32)
        .collect();
    seeded_state(state.path(), &served);

    let images: Vec<_> = vs
        .iter()
        .map(|v| {
            fixtures_dir()
                .join("vectors")
                .join(v["qr_png"].as_str().expect("png"))
        })
        .collect();
    let blank = state.path().join("blank.png");
    image::GrayImage::from_pixel(200, 200, image::Luma([255]))
        .save(&blank)
        .expect("png");
    let not_image = state.path().join("notes.png");
    std::fs::write(&not_image, b"not a picture").expect("write");

    let run_verify = |extra: &[&std::path::Path]| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--state")
            .arg(state.path())
            .arg("--now")
            .arg("1785000600")
            .arg("verify");
        cmd.args(extra);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON"))
            .collect::<Vec<_>>()
    };

    let mut args: Vec<&std::path::Path> = images.iter().map(|p| p.as_path()).collect();
    args.push(&blank);
    args.push(&not_image);
    let lines = run_verify(&args);
    assert_eq!(lines.len(), vs.len() + 2);
    for (line, v) in lines.iter().zip(vs) {
        for field in [
            "file",
            "verdict",
            "reason",
            "text",
            "holder",
            "admits",
            "session",
            "decode_ms",
            "total_ms",
        ] {
            assert!(line.get(field).is_some(), "missing {field} in {line}");
        }
        assert_eq!(line["text"], v["qr_string"], "decoded string");
        assert_eq!(line["holder"], v["fields"]["holder"]);
        assert_eq!(line["admits"], v["fields"]["admits"]);
        assert_eq!(line["session"], v["fields"]["session_id"]);
    }
    for line in &lines[..vs.len() - 1] {
        assert_eq!(line["verdict"], "admit", "{line}");
        assert!(line["reason"].is_null());
    }
    assert_eq!(lines[vs.len() - 1]["verdict"], "refuse");
    assert_eq!(lines[vs.len() - 1]["reason"], "wrong_session");
    assert_eq!(lines[vs.len()]["reason"], "no_code");
    assert!(lines[vs.len()]["text"].is_null());
    assert_eq!(lines[vs.len() + 1]["verdict"], "refuse");
    assert!(
        lines[vs.len() + 1]["reason"]
            .as_str()
            .expect("reason")
            .starts_with("bad_image")
    );

    // A second run is a second scan of the same tickets: already used, with when and where.
    let again = run_verify(&[images[0].as_path()]);
    assert_eq!(again[0]["verdict"], "used");
    assert_eq!(again[0]["reason"], "already_used");
    assert_eq!(again[0]["used_gate"], "Porte 3");

    // Every decision that was printed is in the durable log, chained.
    let log = Store::open(state.path())
        .expect("store")
        .all_scans()
        .expect("log");
    assert_eq!(
        log.len(),
        vs.len() + 1,
        "decoded codes are logged; blank and broken images are not scans"
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.verdict == ScanVerdict::Admit)
            .count(),
        vs.len() - 1
    );
    for pair in log.windows(2) {
        assert_eq!(pair[1].prev_hash, hex::encode(pair[0].hash()));
        assert_eq!(pair[1].seq, pair[0].seq + 1);
    }
}

#[test]
fn help_lists_the_subcommands_and_the_state_option() {
    let out = run(Command::new(BIN).arg("--help"));
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for w in ["enroll", "sync", "verify", "replay", "--state"] {
        assert!(
            text.contains(w),
            "jo-scanner --help does not mention {w}:\n{text}"
        );
    }
}

#[test]
fn a_user_error_is_one_line_without_a_backtrace() {
    let state = tempfile::tempdir().expect("tempdir");
    // `configure` before the first sync: no session is known yet.
    let out = run(Command::new(BIN)
        .arg("--state")
        .arg(state.path())
        .args(["configure", "--gate", "Porte 1", "--session", "7"])
        .env("RUST_BACKTRACE", "1"));
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: session 7 is not among"), "{err}");
    assert!(err.contains("jo-scanner sync"), "says what to do: {err}");
    assert!(!err.contains("Stack backtrace"), "{err}");
}
