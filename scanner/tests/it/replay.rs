//! Replay of webcam-like frames through the whole pipeline: a ticket held in
//! front of the camera for several frames is one scan; degraded frames still
//! give the right verdicts; every verdict is in the durable log.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use jo_scanner::frames::FolderSource;
use jo_scanner::gate::Gate;
use jo_scanner::headless::{Line, replay};
use jo_scanner::store::Store;
use jo_scanner::synth;
use jo_shared::api::{EntryRule, GateSession};
use jo_shared::qr;
use jo_shared::signing::{KeyId, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};

const NOW: i64 = 1_785_000_000;

fn ticket(s: &TicketSigner, n: u8, session_id: u32, admits: u8) -> String {
    let p = TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([n; 10]),
        session_id,
        admits,
        valid_from: (NOW - 3600) as u32,
        valid_minutes: 300,
        holder: HolderName::shorten("Spectateur Lambda"),
    };
    qr::encode_string(&s.sign_ticket(&p).expect("signs"))
}

fn gate(dir: &std::path::Path, s: &TicketSigner) -> Gate {
    let mut store = Store::open(dir).expect("store");
    store
        .replace_keyring(&[(s.key_id(), *s.verifying_key().as_bytes(), false)])
        .expect("keyring");
    store
        .replace_sessions(&[GateSession {
            id: 7,
            sport: "Natation".into(),
            title: "Finales".into(),
            venue: "Paris La Défense Arena".into(),
            starts_at: NOW,
            ends_at: NOW + 7200,
            doors_open_at: NOW - 3600,
            entry_rule: EntryRule::Single,
        }])
        .expect("sessions");
    store.set_gate("Porte Nord").expect("gate");
    let mut g = Gate::load(store).expect("loads");
    // Frames here come faster than real time: a long window makes "held in
    // front of the camera" independent of the machine's speed.
    g.set_repeat_window(Duration::from_secs(600));
    g
}

#[test]
fn a_gate_sequence_of_degraded_frames_gives_the_expected_verdicts() {
    let signer = TicketSigner::new(SigningKey::from_bytes(&[3; 32]));
    let stranger = TicketSigner::new(SigningKey::from_bytes(&[4; 32]));
    let a = ticket(&signer, 1, 7, 4);
    let b = ticket(&signer, 2, 7, 1);
    let other_session = ticket(&signer, 3, 8, 2);
    let forged = ticket(&stranger, 4, 7, 2);

    let mut rng = synth::Rng(synth::SEED);
    let pick = |code: &str, name: &str, rng: &mut synth::Rng| {
        synth::variants(code, rng)
            .expect("renders")
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f)
            .expect("variant exists")
    };
    let sequence = vec![
        synth::empty_frame(&mut rng),
        pick(&a, "clean", &mut rng),
        pick(&a, "clean", &mut rng), // held: the same scan
        pick(&a, "noisy", &mut rng), // still held
        synth::empty_frame(&mut rng),
        pick(&b, "perspective", &mut rng),
        pick(&other_session, "glare", &mut rng),
        pick(&forged, "low-contrast", &mut rng),
        pick(&a, "moire", &mut rng), // shown again later: already used
    ];
    let frames = tempfile::tempdir().expect("tempdir");
    for (i, f) in sequence.iter().enumerate() {
        f.save(frames.path().join(format!("{i:03}.png")))
            .expect("png");
    }
    let state = tempfile::tempdir().expect("tempdir");
    let mut g = gate(state.path(), &signer);
    let mut lines: Vec<Line> = Vec::new();
    let summary = replay(
        &mut g,
        &mut FolderSource::open(frames.path()).expect("folder"),
        || NOW,
        |l| lines.push(l.clone()),
    )
    .expect("replays");

    let got: Vec<(Option<&str>, Option<&str>, bool)> = lines
        .iter()
        .map(|l| (l.verdict, l.reason.as_deref(), l.repeat))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, None, false),
            (Some("admit"), None, false),
            (Some("admit"), None, true),
            (Some("admit"), None, true),
            (None, None, false),
            (Some("admit"), None, false),
            (Some("refuse"), Some("wrong_session"), false),
            (Some("refuse"), Some("unknown_key"), false),
            (Some("used"), Some("already_used"), false),
        ]
    );
    assert_eq!(lines[1].admits, Some(4));
    assert_eq!(lines[1].holder.as_deref(), Some("SPECTATEUR LAMBDA"));
    assert_eq!(lines[8].used_gate.as_deref(), Some("Porte Nord"));
    assert_eq!(
        (
            summary.frames,
            summary.decoded,
            summary.scans,
            summary.admit,
            summary.refuse,
            summary.used
        ),
        (9, 7, 5, 2, 2, 1)
    );
    assert!(summary.p95_ms > 0.0 && summary.p50_ms <= summary.p95_ms);

    // Every new scan is in the log, in order; repeats are not.
    drop(g);
    let log = Store::open(state.path())
        .expect("reopens")
        .all_scans()
        .expect("log");
    let reasons: Vec<Option<&str>> = log.iter().map(|r| r.reason.as_deref()).collect();
    assert_eq!(
        reasons,
        vec![
            None,
            None,
            Some("wrong_session"),
            Some("unknown_key"),
            Some("already_used")
        ]
    );
}
