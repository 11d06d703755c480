//! Power cut at the gate: `jo-scanner replay` is killed with SIGKILL in the
//! middle of a run; after a restart, every scan whose verdict was printed is in
//! the log, and the log's hash chain is whole.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ed25519_dalek::SigningKey;
use jo_scanner::store::Store;
use jo_scanner::synth;
use jo_shared::api::{EntryRule, GateSession};
use jo_shared::qr;
use jo_shared::signing::{KeyId, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};

const NOW: i64 = 1_785_000_000;
const FRAMES: u8 = 40;
const KILL_AFTER: usize = 12;

#[test]
fn every_printed_verdict_survives_a_sigkill() {
    let signer = TicketSigner::new(SigningKey::from_bytes(&[5; 32]));
    let frames = tempfile::tempdir().expect("tempdir");
    let mut rng = synth::Rng(synth::SEED);
    for n in 0..FRAMES {
        let p = TicketPayload {
            key_id: KeyId([0; 4]),
            ticket_id: TicketId([n; 10]),
            session_id: 9,
            admits: 1,
            valid_from: (NOW - 60) as u32,
            valid_minutes: 120,
            holder: HolderName::shorten("Alex Dupont"),
        };
        let code = qr::encode_string(&signer.sign_ticket(&p).expect("signs"));
        let sym = qr::render_image(&code, 6).expect("renders");
        let mut frame = synth::warp(&sym, synth::quad_rect(420.0, 120.0, 420.0), 170);
        synth::noise(&mut frame, &mut rng, 10.0);
        frame
            .save(frames.path().join(format!("{n:03}.png")))
            .expect("png");
    }

    let state = tempfile::tempdir().expect("tempdir");
    {
        let mut store = Store::open(state.path()).expect("store");
        store
            .replace_keyring(&[(signer.key_id(), *signer.verifying_key().as_bytes(), false)])
            .expect("keyring");
        store
            .replace_sessions(&[GateSession {
                id: 9,
                sport: "Judo".into(),
                title: "Finales".into(),
                venue: "Champ-de-Mars Arena".into(),
                starts_at: NOW,
                ends_at: NOW + 3600,
                doors_open_at: NOW - 1800,
                entry_rule: EntryRule::Single,
            }])
            .expect("sessions");
    }

    let mut child = Command::new(env!("CARGO_BIN_EXE_jo-scanner"))
        .arg("--state")
        .arg(state.path())
        .arg("--now")
        .arg(NOW.to_string())
        .arg("replay")
        .arg("--frames")
        .arg(frames.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts jo-scanner");
    let stdout = child.stdout.take().expect("stdout");
    let mut shown = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reads");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        if let Some(id) = v["scan_id"].as_str() {
            assert_eq!(v["verdict"], "admit", "{line}");
            shown.push(id.to_owned());
        }
        if shown.len() == KILL_AFTER {
            child.kill().expect("SIGKILL");
            break;
        }
    }
    let status = child.wait().expect("waits");
    assert!(
        !status.success(),
        "the scanner must have been killed mid-run"
    );
    assert_eq!(shown.len(), KILL_AFTER);

    // Restart: open the same state, as the app does after a power cut.
    let log = Store::open(state.path())
        .expect("reopens")
        .all_scans()
        .expect("log");
    assert!(
        log.len() >= shown.len(),
        "log {} < shown {}",
        log.len(),
        shown.len()
    );
    assert!(
        log.len() < usize::from(FRAMES),
        "the kill came too late to test anything"
    );
    let logged: Vec<String> = log.iter().map(|r| r.scan_id.to_string()).collect();
    for id in &shown {
        assert!(
            logged.contains(id),
            "verdict {id} was shown but is not in the log"
        );
    }
    for pair in log.windows(2) {
        assert_eq!(
            pair[1].prev_hash,
            hex::encode(pair[0].hash()),
            "chain broken"
        );
    }
}
