//! The real `jo-scanner` window under Xvfb: a folder of frames showing a
//! ticket is replayed as the camera, and the main screen is saved as
//! `target/test-artifacts/scanner-main.png` (kept as a test artifact).
//!
//! The test starts its own Xvfb and fails with a clear message when Xvfb is
//! not installed (Debian: `apt-get install xvfb`).

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use jo_scanner::store::Store;
use jo_shared::api::{EntryRule, GateSession};
use jo_shared::qr;
use jo_shared::signing::{KeyId, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};

const SESSION: u32 = 4;

/// An Xvfb server, stopped when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        // Xvfb picks a free display number itself and writes it on fd 1
        // (`-displayfd`): choosing one here by looking for lock files races
        // with the other tests starting their own server at the same moment,
        // and the loser would draw on the winner's display until it is killed.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start Xvfb ({e}): this test needs an X virtual framebuffer; \
                     install it (Debian/Ubuntu: apt-get install xvfb)"
                )
            });
        // Xvfb writes the number once it accepts connections; a server that
        // cannot start closes its stdout without a number.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let read = BufReader::new(stdout).read_line(&mut line);
        let n: u32 = match read.ok().and_then(|_| line.trim().parse().ok()) {
            Some(n) => n,
            None => {
                let _ = child.kill();
                let status = child.wait();
                panic!("Xvfb did not report a display ({status:?}, said {line:?})");
            }
        };
        Self {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A state trusting the test key, serving one session, at "Porte 3".
fn seed_state(dir: &Path, s: &TicketSigner) {
    let mut store = Store::open(dir).expect("store");
    store
        .replace_keyring(&[(s.key_id(), *s.verifying_key().as_bytes(), false)])
        .expect("keyring");
    store
        .replace_sessions(&[GateSession {
            id: SESSION,
            sport: "Athlétisme".into(),
            title: "Finale 100 m hommes".into(),
            venue: "Stade de France".into(),
            starts_at: now(),
            ends_at: now() + 7200,
            doors_open_at: now() - 3600,
            entry_rule: EntryRule::Single,
        }])
        .expect("sessions");
    store.set_gate("Porte 3").expect("gate");
}

/// Webcam-like frames: a phone showing the ticket's QR code, moving a little.
fn write_frames(dir: &Path, code: &str) {
    write_frames_named(dir, "frame", code);
}

/// Like [`write_frames`], the files named `PREFIX-NN.png`: a folder holding
/// several tickets replays them in the order of their prefixes.
fn write_frames_named(dir: &Path, prefix: &str, code: &str) {
    let symbol = qr::render_image(code, 5).expect("renders");
    for i in 0..5u32 {
        let mut frame = image::GrayImage::from_fn(1280, 720, |x, y| {
            // A soft gradient, like a room behind the phone.
            image::Luma([(90 + (x / 20 + y / 30) % 40) as u8])
        });
        let (px, py) = (400 + i64::from(i) * 6, 90);
        let (pw, ph) = (symbol.width() + 80, symbol.height() + 200);
        let body = image::GrayImage::from_pixel(pw, ph, image::Luma([25]));
        image::imageops::overlay(&mut frame, &body, px, py);
        let screen = image::GrayImage::from_pixel(pw - 30, ph - 60, image::Luma([235]));
        image::imageops::overlay(&mut frame, &screen, px + 15, py + 30);
        image::imageops::overlay(&mut frame, &symbol, px + 40, py + 100);
        frame
            .save(dir.join(format!("{prefix}-{i:02}.png")))
            .expect("png");
    }
}

/// Webcam-like frames of an empty room: no code to read.
fn write_empty_frames(dir: &Path) {
    for i in 0..5u32 {
        let frame = image::GrayImage::from_fn(1280, 720, |x, y| {
            image::Luma([(90 + (x / 20 + y / 30 + i) % 40) as u8])
        });
        frame
            .save(dir.join(format!("frame-{i:02}.png")))
            .expect("png");
    }
}

fn artifact(name: &str) -> PathBuf {
    // target/<profile>/jo-scanner → target/test-artifacts/
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_jo-scanner"));
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("binary inside the target dir");
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir.join(name)
}

/// Runs the GUI on `state` with `frames` as the camera until it saves its
/// screenshot to `shot`; returns the picture.
fn screenshot(xvfb: &Xvfb, state: &Path, frames: &Path, shot: &Path) -> image::RgbaImage {
    let _ = std::fs::remove_file(shot);
    let mut child = Command::new(env!("CARGO_BIN_EXE_jo-scanner"))
        .arg("--state")
        .arg(state)
        .arg("--screenshot")
        .arg(shot)
        .env("DISPLAY", &xvfb.display)
        .env("JO_SCANNER_FRAMES", frames)
        // Mesa's software renderer: no GPU under Xvfb.
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jo-scanner starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "jo-scanner did not save its screenshot in time; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    assert!(
        status.success(),
        "jo-scanner failed: {status}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(shot).expect("screenshot saved");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        shot.display()
    );
    let img = image::load_from_memory(&bytes).expect("decodes").to_rgba8();
    assert_eq!(img.dimensions(), (1280, 800));
    img
}

/// Colour of the verdict panel (between the camera and side panels).
fn verdict_colour(img: &image::RgbaImage) -> [u8; 3] {
    let p = img.get_pixel(700, 700).0;
    [p[0], p[1], p[2]]
}

#[test]
fn main_screen_under_xvfb_shows_each_verdict_of_replayed_frames() {
    let xvfb = Xvfb::start();
    let state = tempfile::tempdir().expect("tempdir");
    let frames = tempfile::tempdir().expect("tempdir");
    let s = TicketSigner::new(SigningKey::from_bytes(&[7; 32]));
    seed_state(state.path(), &s);
    let payload = TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([42; 10]),
        session_id: SESSION,
        admits: 2,
        valid_from: (now() - 3600) as u32,
        valid_minutes: 600,
        holder: HolderName::new("Léa Martin").expect("name"),
    };
    let code = qr::encode_string(&s.sign_ticket(&payload).expect("signs"));
    write_frames(frames.path(), &code);

    // The main screen: the ticket admitted.
    let img = screenshot(
        &xvfb,
        state.path(),
        frames.path(),
        &artifact("scanner-main.png"),
    );
    assert_eq!(verdict_colour(&img), [0x1b, 0x7f, 0x3b], "ADMIT is green");
    let log = Store::open(state.path())
        .expect("store")
        .all_scans()
        .expect("log");
    assert_eq!(log.len(), 1, "one scan for the code held over five frames");

    // The same ticket after a restart: already used, from the durable log.
    let img = screenshot(
        &xvfb,
        state.path(),
        frames.path(),
        &artifact("scanner-used.png"),
    );
    assert_eq!(
        verdict_colour(&img),
        [0xf2, 0xa9, 0x00],
        "ALREADY USED is amber"
    );

    // A QR code that is no ticket.
    let garbage = tempfile::tempdir().expect("tempdir");
    write_frames(garbage.path(), "https://example.org/not-a-ticket");
    let img = screenshot(
        &xvfb,
        state.path(),
        garbage.path(),
        &artifact("scanner-refused.png"),
    );
    assert_eq!(verdict_colour(&img), [0xb7, 0x1c, 0x1c], "REFUSED is red");
}

/// Colour of the band under the top bar (amber while offline).
fn band_colour(img: &image::RgbaImage) -> [u8; 3] {
    let p = img.get_pixel(1230, 60).0;
    [p[0], p[1], p[2]]
}

#[test]
fn gate_screen_under_xvfb_online_then_offline_with_scans_waiting() {
    let xvfb = Xvfb::start();
    let data = tempfile::tempdir().expect("tempdir");
    let server = common::Server::start(&data.path().join("server"), 0);
    let session = server.session_on_now("SHOT");
    let state = data.path().join("gate");
    common::enrolled_scanner(&server, &state, "Porte 3");
    common::scanner_ok(
        &state,
        &[
            "configure",
            "--gate",
            "Porte 3",
            "--session",
            &session.to_string(),
        ],
    );
    let (_, first) = server.ticket(session, 0, "Léa Martin");
    let (_, second) = server.ticket(session, 1, "Jo Bloggs");
    let (_, third) = server.ticket(session, 2, "Ana Silva");

    // Idle: enrolled, configured, online, nobody in front of the camera
    // (frames of an empty room): ready, no verdict, no band.
    let frames = tempfile::tempdir().expect("tempdir");
    write_empty_frames(frames.path());
    let img = screenshot(&xvfb, &state, frames.path(), &artifact("scanner-idle.png"));
    for verdict in [[0x1b, 0x7f, 0x3b], [0xf2, 0xa9, 0x00], [0xb7, 0x1c, 0x1c]] {
        assert_ne!(verdict_colour(&img), verdict, "no verdict when idle");
    }
    assert_ne!(
        band_colour(&img),
        [0xf2, 0xa9, 0x00],
        "no offline band online"
    );

    // Online: the server answers, the screen is quiet above the verdict.
    let frames = tempfile::tempdir().expect("tempdir");
    write_frames(frames.path(), &first);
    let img = screenshot(
        &xvfb,
        &state,
        frames.path(),
        &artifact("scanner-online-admit.png"),
    );
    assert_eq!(verdict_colour(&img), [0x1b, 0x7f, 0x3b], "ADMIT is green");
    assert_ne!(
        band_colour(&img),
        [0xf2, 0xa9, 0x00],
        "no offline band online"
    );

    // Offline: two tickets admitted wait to go up, under the amber band.
    // What the online run admitted goes up first, so that what waits below
    // is exactly the two scans made offline.
    common::scanner_ok(&state, &["sync"]);
    server.stop();
    let frames = tempfile::tempdir().expect("tempdir");
    write_frames_named(frames.path(), "a", &second);
    write_frames_named(frames.path(), "b", &third);
    let img = screenshot(
        &xvfb,
        &state,
        frames.path(),
        &artifact("scanner-offline-2-waiting.png"),
    );
    assert_eq!(band_colour(&img), [0xf2, 0xa9, 0x00], "the offline band");
    assert_eq!(verdict_colour(&img), [0x1b, 0x7f, 0x3b], "ADMIT is green");
    let pending = Store::open(&state)
        .expect("store")
        .pending_count()
        .expect("count");
    assert_eq!(pending, 2);

    // The first ticket again, offline: already used, from the durable log.
    let frames = tempfile::tempdir().expect("tempdir");
    write_frames(frames.path(), &first);
    let img = screenshot(
        &xvfb,
        &state,
        frames.path(),
        &artifact("scanner-offline-used.png"),
    );
    assert_eq!(
        verdict_colour(&img),
        [0xf2, 0xa9, 0x00],
        "ALREADY USED is amber"
    );

    let frames = tempfile::tempdir().expect("tempdir");
    write_frames(frames.path(), "https://example.org/not-a-ticket");
    let img = screenshot(
        &xvfb,
        &state,
        frames.path(),
        &artifact("scanner-offline-refused.png"),
    );
    assert_eq!(verdict_colour(&img), [0xb7, 0x1c, 0x1c], "REFUSED is red");
}
