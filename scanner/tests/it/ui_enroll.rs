//! First run of the gate GUI against a real `jo-server`: the enrolment
//! screen, enrolment from the admin's QR code held up to the camera (a folder
//! frame through the real decoder) which pins the keyring it names, the first
//! background sync, then choosing the gate and its sessions.

use crate::common;

use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use jo_scanner::gate::Gate;
use jo_scanner::store::Store;
use jo_scanner::ui::worker::SourceChoice;
use jo_scanner::ui::{AppOptions, ScannerApp};
use jo_shared::api::EnrollmentInvite;

use crate::common::Server;

fn shows(h: &Harness<'_, ScannerApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

fn wait_for(h: &mut Harness<'_, ScannerApp>, text: &str) {
    let start = Instant::now();
    loop {
        h.step();
        if shows(h, text) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{text:?} never showed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn first_run_enrols_from_the_admins_qr_then_syncs_and_sets_up_the_gate() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&data.path().join("server"), 0);
    let session = server.session_on_now("E2E-GUI");
    let (_, ticket) = server.ticket(session, 0, "Léa Petit");
    let code = server.enrollment_code();

    // The admin's enrolment QR, as one camera frame.
    let frames = data.path().join("frames");
    std::fs::create_dir_all(&frames).expect("dir");
    let fingerprint = jo_server::admin::keyring_fingerprint(&server.config).expect("fingerprint");
    let invite = EnrollmentInvite {
        server_url: server.url.clone(),
        code,
        keyring_fingerprint: jo_shared::trust::parse_fingerprint(&fingerprint).expect("hex"),
    };
    common::qr_png(&frames, "0001", &invite.to_qr_text());

    let state = data.path().join("gate");
    let gate = Gate::load(Store::open(&state).expect("store")).expect("gate");
    let app = ScannerApp::new(
        gate,
        AppOptions {
            source: Some(SourceChoice::Folder(frames)),
            sync_state: Some(state.clone()),
            sync_interval: Some(Duration::from_secs(1)),
            ..AppOptions::default()
        },
    )
    .expect("starts");
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut ScannerApp| app.main_ui(ui), app);

    // Nothing to verify with yet: the enrolment screen, filled in from the QR.
    wait_for(&mut h, "Enrôler cet appareil");
    let start = Instant::now();
    loop {
        h.step();
        let filled = h
            .query_by_label_contains("Adresse du serveur")
            .and_then(|n| n.value())
            .is_some_and(|v| v == server.url);
        if filled {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "QR never read");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The QR's keyring fingerprint is what the gate will pin.
    let shown = h
        .query_by_label_contains("Empreinte du trousseau")
        .and_then(|n| n.value());
    assert_eq!(shown.as_deref(), Some(fingerprint.as_str()));
    h.get_by_label_contains("Nom de cet appareil").focus();
    h.step();
    h.get_by_label_contains("Nom de cet appareil")
        .type_text("Poste 1");
    h.step();
    h.get_by_label("Enrôler").click();
    h.step();

    // Enrolled, synced: the set-up window offers the synced session.
    wait_for(&mut h, "Porte et épreuves servies");
    wait_for(&mut h, "Sabre, finale");
    assert!(
        Store::open(&state)
            .expect("store")
            .enrollment()
            .expect("reads")
            .is_some(),
        "the enrolment is stored"
    );
    h.get_by_label_contains("Nom de la porte").focus();
    h.step();
    h.get_by_label_contains("Nom de la porte")
        .type_text("Porte Nord");
    h.step();
    h.get_by_label("Enregistrer").click();
    h.step();
    wait_for(&mut h, "Porte Nord");
    wait_for(&mut h, "En ligne");

    // The keyring pinned is the one the QR named.
    let pinned = Store::open(&state)
        .expect("store")
        .pinned_keyring()
        .expect("reads")
        .expect("pinned");
    assert_eq!(pinned.fingerprint_hex().expect("fp"), fingerprint);

    // The synced keyring verifies the server's ticket.
    h.get_by_label_contains("Saisie manuelle").focus();
    h.step();
    h.get_by_label_contains("Saisie manuelle")
        .type_text(&ticket);
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "ADMIS");
    assert!(shows(&h, "LÉA PETIT"));
}
