//! Hostile pictures through `jo-scanner verify` and `replay`: many codes, a
//! huge QR version, binary and non-UTF-8 content, an inverted code, a
//! mirrored code, a Micro QR, a ticket printed beside a fake one. Each is
//! refused or handled as decided, in under 100 ms, and the gate goes on
//! scanning: the genuine ticket shown after them is admitted.
//!
//! Also the pass-back rule through `replay`: a code that left the view and
//! comes back is a new presentation, a code held still stays one.

use std::path::Path;

use ed25519_dalek::SigningKey;
use image::{GrayImage, Luma};
use jo_scanner::store::Store;
use jo_scanner::synth;
use jo_shared::api::{EntryRule, GateSession};
use jo_shared::qr;
use jo_shared::signing::{KeyId, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};
use serde_json::Value;

use crate::common::scanner;

const NOW: i64 = 1_785_000_000;

fn ticket(s: &TicketSigner, n: u8) -> String {
    let p = TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([n; 10]),
        session_id: 7,
        admits: 1,
        valid_from: (NOW - 3600) as u32,
        valid_minutes: 300,
        holder: HolderName::shorten("Camille Fontaine"),
    };
    qr::encode_string(&s.sign_ticket(&p).expect("signs"))
}

/// A gate state trusting `s`, serving session 7.
fn seed_state(dir: &Path, s: &TicketSigner) {
    let mut store = Store::open(dir).expect("store");
    store
        .replace_keyring(&[(s.key_id(), *s.verifying_key().as_bytes(), false)])
        .expect("keyring");
    store
        .replace_sessions(&[GateSession {
            id: 7,
            sport: "Judo".into(),
            title: "Finales".into(),
            venue: "Champ-de-Mars Arena".into(),
            starts_at: NOW,
            ends_at: NOW + 7200,
            doors_open_at: NOW - 3600,
            entry_rule: EntryRule::Single,
        }])
        .expect("sessions");
    store.set_gate("Porte Sud").expect("gate");
    store.select_sessions(&[7]).expect("serves the session");
}

/// A 1280×720 frame with each symbol pasted at its place.
fn frame(symbols: &[(GrayImage, i64, i64)]) -> GrayImage {
    let mut f = GrayImage::from_pixel(1280, 720, Luma([190]));
    for (s, x, y) in symbols {
        image::imageops::overlay(&mut f, s, *x, *y);
    }
    f
}

/// A symbol of raw bytes (not a ticket string), drawn `px` pixels a module.
fn bytes_symbol(data: &[u8], version: Option<qrcode::Version>, px: u32) -> GrayImage {
    let code = match version {
        Some(v) => qrcode::QrCode::with_version(data, v, qrcode::EcLevel::L),
        None => qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::Q),
    }
    .expect("encodes");
    let img = code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(px, px)
        .build();
    GrayImage::from_raw(img.width(), img.height(), img.into_raw()).expect("same size")
}

/// A verdict and reason, `-` for none.
type Expected = (&'static str, &'static str);

/// The hostile cases, with the verdict and reason each must get, and last a
/// genuine ticket that must be admitted.
fn cases(dir: &Path) -> (Vec<(&'static str, GrayImage)>, Vec<Expected>) {
    let signer = TicketSigner::new(SigningKey::from_bytes(&[21; 32]));
    let forger = TicketSigner::new(SigningKey::from_bytes(&[22; 32]));
    let sym = |code: &str, px| qr::render_image(code, px).expect("renders");
    let genuine = ticket(&signer, 1);

    let mut many = Vec::new();
    for i in 0..6u8 {
        let x = 20 + i64::from(i % 3) * 420;
        let y = 20 + i64::from(i / 3) * 360;
        many.push((sym(&ticket(&signer, 10 + i), 4), x, y));
    }
    // Version 40: far larger than any ticket (versions 9–10).
    let huge: String = (0..1800)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    let mut inverted = sym(&ticket(&signer, 2), 6);
    image::imageops::invert(&mut inverted);
    let mirrored = image::imageops::flip_horizontal(&sym(&ticket(&signer, 3), 6));
    let micro = bytes_symbol(b"12345", Some(qrcode::Version::Micro(2)), 12);
    let binary: Vec<u8> = (0..=255u8).rev().cycle().take(120).collect();
    let cases = vec![
        ("many", frame(&many)),
        ("huge", frame(&[(sym(&huge, 3), 360, 80)])),
        (
            "binary",
            frame(&[(bytes_symbol(&binary, None, 5), 400, 120)]),
        ),
        (
            "non-utf8",
            frame(&[(bytes_symbol(b"\xc3\x28\xa0\xa1caf\xe9", None, 8), 450, 160)]),
        ),
        ("inverted", frame(&[(inverted, 420, 120)])),
        ("mirrored", frame(&[(mirrored, 420, 120)])),
        ("micro", frame(&[(micro, 500, 200)])),
        (
            "beside-a-fake",
            frame(&[
                (sym(&ticket(&signer, 4), 5), 80, 140),
                (sym(&ticket(&forger, 4), 5), 700, 140),
            ]),
        ),
        ("genuine", frame(&[(sym(&genuine, 6), 420, 120)])),
    ];
    let want = vec![
        // Several codes at once: none is taken.
        ("refuse", "several_codes"),
        // Read, and not a ticket string.
        ("refuse", "bad_encoding"),
        ("refuse", "bad_encoding"),
        ("refuse", "bad_encoding"),
        // A phone in dark mode shows the genuine ticket inverted: read.
        ("admit", "-"),
        // A mirrored symbol (a selfie camera, a reflection) carries the
        // genuine ticket too, and its signature says so: read.
        ("admit", "-"),
        // Micro QR is never looked for: no ticket in view.
        ("refuse", "no_code"),
        ("refuse", "several_codes"),
        ("admit", "-"),
    ];
    seed_state(dir, &signer);
    (cases, want)
}

fn verdicts(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["verdict"].as_str().unwrap_or("-").to_owned(),
                l["reason"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

/// Each picture's decoding ends within 100 ms (the guard's cap). The
/// durable log write after it is the store's, timed by its own tests: on a
/// loaded test machine an fsync alone can pass 10 ms.
fn assert_quick(lines: &[Value]) {
    for l in lines {
        let ms = l["decode_ms"].as_f64().expect("timed");
        assert!(ms < 100.0, "{} took {ms} ms: {l}", l["file"]);
    }
}

#[test]
fn hostile_pictures_through_verify_are_refused_or_read_as_decided_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cases, want) = cases(&dir.path().join("gate"));
    let mut paths = Vec::new();
    for (name, f) in &cases {
        let p = dir.path().join(format!("{name}.png"));
        f.save(&p).expect("png");
        paths.push(p.to_str().expect("utf-8").to_owned());
    }
    let state = dir.path().join("gate");
    let mut args = vec!["--now", "1785000000", "verify"];
    args.extend(paths.iter().map(String::as_str));
    let (ok, lines, err) = scanner(&state, &args);
    assert!(ok, "{err}");
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(v, r)| ((*v).to_owned(), (*r).to_owned()))
        .collect();
    let mut got = verdicts(&lines);
    // The Micro QR frame holds no ticket: all of a picture's attempts may
    // run into the time cap on a slow build before saying so. Either way
    // it is refused, quickly.
    if got[6] == ("refuse".to_owned(), "decoder_stopped".to_owned()) {
        got[6].1 = "no_code".to_owned();
    }
    assert_eq!(got, want, "{lines:#?}");
    assert_quick(&lines);
    // Inverted and mirrored are different tickets (ids 2 and 3) from the
    // genuine one (id 1): three admissions, each logged.
    let log = Store::open(&state)
        .expect("store")
        .all_scans()
        .expect("log");
    let admitted = log
        .iter()
        .filter(|r| r.verdict == jo_shared::api::ScanVerdict::Admit)
        .count();
    assert_eq!(admitted, 3);
}

#[test]
fn hostile_pictures_through_replay_do_not_stop_the_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("gate");
    let (cases, want) = cases(&state);
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).expect("dir");
    // An empty frame between cases: each is a presentation of its own.
    let mut rng = synth::Rng(synth::SEED);
    for (i, (_, f)) in cases.iter().enumerate() {
        f.save(frames.join(format!("{:03}-a.png", i))).expect("png");
        synth::empty_frame(&mut rng)
            .save(frames.join(format!("{:03}-b.png", i)))
            .expect("png");
    }
    let (ok, lines, err) = scanner(
        &state,
        &[
            "--now",
            "1785000000",
            "replay",
            "--frames",
            frames.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "{err}");
    let frame_lines = &lines[..lines.len() - 1];
    let got: Vec<(String, String)> = verdicts(frame_lines).into_iter().step_by(2).collect();
    // Replay says nothing of a frame without a code (no `no_code` refusal).
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(v, r)| {
            if *r == "no_code" {
                ("-".to_owned(), "-".to_owned())
            } else {
                ((*v).to_owned(), (*r).to_owned())
            }
        })
        .collect();
    assert_eq!(got, want, "{lines:#?}");
    assert_quick(frame_lines);
    assert_eq!(lines.last().expect("summary")["summary"]["admit"], 3);
}

/// Frames of `code` held in front of the camera: small moves, changing blur.
fn held(code: &str, n: usize, rng: &mut synth::Rng) -> Vec<GrayImage> {
    let sym = qr::render_image(code, 6).expect("renders");
    (0..n)
        .map(|i| {
            let dx = (rng.unit() - 0.5) * 16.0;
            let dy = (rng.unit() - 0.5) * 16.0;
            let f = synth::warp(
                &sym,
                synth::rotated(640.0 + dx, 360.0 + dy, 380.0, 3.0 * (rng.unit() - 0.5)),
                170,
            );
            if i % 3 == 1 {
                image::imageops::blur(&f, 1.2)
            } else {
                f
            }
        })
        .collect()
}

fn replay_frames(state: &Path, frames: &[GrayImage], dir: &Path) -> Vec<Value> {
    std::fs::create_dir_all(dir).expect("dir");
    for (i, f) in frames.iter().enumerate() {
        f.save(dir.join(format!("{i:04}.png"))).expect("png");
    }
    let (ok, lines, err) = scanner(
        state,
        &[
            "--now",
            "1785000000",
            "replay",
            "--frames",
            dir.to_str().expect("utf-8"),
        ],
    );
    assert!(ok, "{err}");
    lines
}

#[test]
fn a_ticket_shown_again_after_leaving_the_view_is_already_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("gate");
    let signer = TicketSigner::new(SigningKey::from_bytes(&[21; 32]));
    seed_state(&state, &signer);
    let code = ticket(&signer, 5);
    let mut rng = synth::Rng(synth::SEED);
    // Presented, taken away (a screenshot is passed back), presented again.
    let mut frames = held(&code, 5, &mut rng);
    // Twenty empty frames: more than the eight that make a code gone, with
    // room for frames a loaded machine's decoder guard stops (no evidence).
    frames.extend((0..20).map(|_| synth::empty_frame(&mut rng)));
    frames.extend(held(&code, 5, &mut rng));
    let lines = replay_frames(&state, &frames, &dir.path().join("frames"));
    let new_scans: Vec<&str> = lines
        .iter()
        .filter(|l| l["text"].is_string() && l["repeat"] != true)
        .map(|l| l["verdict"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(new_scans, ["admit", "used"], "{lines:#?}");
    let log = Store::open(&state)
        .expect("store")
        .all_scans()
        .expect("log");
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].reason.as_deref(), Some("already_used"));
}

#[test]
fn a_ticket_held_still_for_five_seconds_is_one_presentation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("gate");
    let signer = TicketSigner::new(SigningKey::from_bytes(&[21; 32]));
    seed_state(&state, &signer);
    let code = ticket(&signer, 6);
    let mut rng = synth::Rng(synth::SEED);
    // Five seconds at 30 frames a second.
    let frames = held(&code, 150, &mut rng);
    let lines = replay_frames(&state, &frames, &dir.path().join("frames"));
    let summary = &lines.last().expect("summary")["summary"];
    assert_eq!(summary["frames"], 150);
    assert_eq!(summary["scans"], 1, "{summary}");
    assert_eq!(summary["admit"], 1);
    let log = Store::open(&state)
        .expect("store")
        .all_scans()
        .expect("log");
    assert_eq!(log.len(), 1);
}
