//! The gate screen, driven with egui_kittest: codes typed in or replayed from
//! a folder go through the real worker, gate and SQLite log, and the screen
//! shows each verdict, the counters, the offline state and both languages.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use jo_scanner::gate::Gate;
use jo_scanner::store::Store;
use jo_scanner::ui::worker::{Alarm, SourceChoice, SyncProgress, SyncStatus, UiEvent};
use jo_scanner::ui::{AppOptions, ScannerApp, Settings};
use jo_shared::api::{EntryRule, GateSession, ScanVerdict};
use jo_shared::qr;
use jo_shared::signing::{KeyId, TicketSigner};
use jo_shared::ticket::{HolderName, TicketId, TicketPayload};

const SERVED: u32 = 101;
const NOT_SERVED: u32 = 202;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn signer() -> TicketSigner {
    TicketSigner::new(SigningKey::from_bytes(&[7; 32]))
}

/// A signed ticket string valid around now.
fn ticket(s: &TicketSigner, id: u8, session_id: u32, admits: u8, holder: &str) -> String {
    let payload = TicketPayload {
        key_id: KeyId([0; 4]),
        ticket_id: TicketId([id; 10]),
        session_id,
        admits,
        valid_from: (now() - 3600) as u32,
        valid_minutes: 600,
        holder: HolderName::new(holder).expect("short name"),
    };
    qr::encode_string(&s.sign_ticket(&payload).expect("signs"))
}

fn session(id: u32, title: &str) -> GateSession {
    GateSession {
        id,
        sport: "Athlétisme".into(),
        title: title.into(),
        venue: "Stade de France".into(),
        starts_at: now(),
        ends_at: now() + 7200,
        doors_open_at: now() - 3600,
        entry_rule: EntryRule::Single,
    }
}

/// A gate on a store in `dir` that trusts the test key and serves one session.
fn gate(s: &TicketSigner, dir: &Path, repeat_window: Duration) -> Gate {
    let mut store = Store::open(dir).expect("store");
    store
        .replace_keyring(&[(s.key_id(), *s.verifying_key().as_bytes(), false)])
        .expect("keyring");
    store
        .replace_sessions(&[
            session(SERVED, "Finale 100 m"),
            session(NOT_SERVED, "Saut à la perche"),
        ])
        .expect("sessions");
    store.select_sessions(&[SERVED]).expect("select");
    store.set_gate("Porte 3").expect("gate");
    let mut g = Gate::load(store).expect("loads");
    g.set_repeat_window(repeat_window);
    g
}

fn harness(app: ScannerApp) -> Harness<'static, ScannerApp> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut ScannerApp| app.main_ui(ui), app)
}

fn app(gate: Gate, source: SourceChoice) -> ScannerApp {
    ScannerApp::new(
        gate,
        AppOptions {
            source: Some(source),
            ..AppOptions::default()
        },
    )
    .expect("worker starts")
}

/// Steps frames until a widget labelled with `text` shows (the worker answers
/// on its own thread).
fn wait_for(h: &mut Harness<'_, ScannerApp>, text: &str) {
    let start = Instant::now();
    loop {
        h.step();
        if shows(h, text) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{text:?} never showed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Types a code in the manual entry field and presses Enter.
fn type_code(h: &mut Harness<'_, ScannerApp>, code: &str) {
    h.get_by_label_contains("Saisie manuelle").focus();
    h.step();
    h.get_by_label_contains("Saisie manuelle").type_text(code);
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
}

fn shows(h: &Harness<'_, ScannerApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn typed_ticket_is_admitted_with_holder_and_session_then_already_used_at_this_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut h = harness(app(
        gate(&s, dir.path(), Duration::ZERO),
        SourceChoice::None,
    ));
    wait_for(&mut h, "Prêt");
    let code = ticket(&s, 1, SERVED, 2, "Léa Martin");

    type_code(&mut h, &code);
    wait_for(&mut h, "ADMIS 2");
    assert!(shows(&h, "2 personnes"));
    assert!(shows(&h, "Léa Martin"));
    assert!(shows(&h, "Finale 100 m"));
    assert!(shows(&h, "saisie manuelle"));

    type_code(&mut h, &code);
    wait_for(&mut h, "DÉJÀ UTILISÉ");
    assert!(shows(&h, "— Porte 3"), "the earlier entry's gate is shown");
    assert!(shows(&h, "Entré à"));
    assert!(shows(&h, "Léa Martin"));

    // Both scans are in the durable log, the second as used.
    let log = Store::open(dir.path())
        .expect("store")
        .all_scans()
        .expect("log");
    let verdicts: Vec<_> = log.iter().map(|r| r.verdict).collect();
    assert_eq!(verdicts, [ScanVerdict::Admit, ScanVerdict::Used]);
}

#[test]
fn garbage_is_refused_with_its_reason_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut h = harness(app(
        gate(&s, dir.path(), Duration::ZERO),
        SourceChoice::None,
    ));
    h.step();
    h.get_by_label_contains("Saisie manuelle").focus();
    h.step();
    h.get_by_label_contains("Saisie manuelle")
        .type_text("this is not a ticket!");
    h.step();
    // The button submits too.
    h.get_by_label("Valider").click();
    wait_for(&mut h, "REFUSÉ");
    assert!(shows(&h, "Ce code n'est pas un billet"));
    // No holder for a refused, unauthenticated code.
    assert!(!shows(&h, "Titulaire"));
}

#[test]
fn ticket_for_another_session_is_refused_as_wrong_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut h = harness(app(
        gate(&s, dir.path(), Duration::ZERO),
        SourceChoice::None,
    ));
    h.step();
    type_code(&mut h, &ticket(&s, 2, NOT_SERVED, 1, "Jo Bloggs"));
    wait_for(&mut h, "REFUSÉ");
    assert!(shows(&h, "Pas pour cette épreuve"));
    // The ticket is authentic: its holder and session are shown for the staff.
    assert!(shows(&h, "Jo Bloggs"));
    assert!(shows(&h, "Saut à la perche"));
}

#[test]
fn offline_and_not_enrolled_are_shown_with_scans_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut h = harness(app(
        gate(&s, dir.path(), Duration::ZERO),
        SourceChoice::None,
    ));
    wait_for(&mut h, "Hors ligne");
    assert!(shows(&h, "Appareil non enrôlé"));
    assert!(shows(&h, "Passages à envoyer : 0"));
    type_code(&mut h, &ticket(&s, 3, SERVED, 4, "Famille Dupont"));
    wait_for(&mut h, "ADMIS 4");
    wait_for(&mut h, "Passages à envoyer : 1");
}

#[test]
fn language_switch_changes_the_texts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut h = harness(app(
        gate(&s, dir.path(), Duration::ZERO),
        SourceChoice::None,
    ));
    type_code(&mut h, &ticket(&s, 4, SERVED, 1, "Ana Silva"));
    wait_for(&mut h, "ADMIS 1");
    assert!(shows(&h, "1 personne"));

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::L);
    h.step();
    wait_for(&mut h, "ADMIT 1");
    assert!(shows(&h, "1 person"));
    assert!(shows(&h, "Offline"));
    assert!(shows(&h, "Manual entry"));
    assert!(!shows(&h, "ADMIS"));

    // And back with the button, which names the other language.
    h.get_by_label_contains("Français").click();
    h.step();
    wait_for(&mut h, "ADMIS 1");
}

#[test]
fn keyboard_shortcuts_clear_the_verdict_show_help_and_focus_manual_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut h = harness(app(
        gate(&s, dir.path(), Duration::ZERO),
        SourceChoice::None,
    ));
    type_code(&mut h, &ticket(&s, 5, SERVED, 1, "Ana Silva"));
    wait_for(&mut h, "ADMIS 1");
    h.key_press(egui::Key::Escape);
    h.step();
    wait_for(&mut h, "Prêt");
    // Gone from the verdict panel (the last scans list keeps it).
    assert!(!shows(&h, "Titulaire"));
    assert!(!shows(&h, "1 personne"));

    h.key_press(egui::Key::F1);
    h.step();
    wait_for(&mut h, "effacer le verdict");

    // Ctrl+M puts the cursor in the manual entry field.
    assert!(!h.get_by_label_contains("Saisie manuelle").is_focused());
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::M);
    h.step();
    h.step();
    assert!(h.get_by_label_contains("Saisie manuelle").is_focused());
}

#[test]
fn missing_camera_is_shown_and_manual_entry_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let camera = SourceChoice::Camera {
        index: 99,
        resolution: Default::default(),
    };
    let mut h = harness(app(gate(&s, dir.path(), Duration::ZERO), camera));
    wait_for(&mut h, "Caméra indisponible");
    assert!(shows(&h, "La saisie manuelle reste possible."));
    type_code(&mut h, &ticket(&s, 6, SERVED, 2, "Léa Martin"));
    wait_for(&mut h, "ADMIS 2");
}

#[test]
fn a_code_held_over_many_frames_is_one_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frames = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let code = ticket(&s, 7, SERVED, 2, "Léa Martin");
    let symbol = qr::render_image(&code, 6).expect("renders");
    for i in 0..6 {
        let mut frame = image::GrayImage::from_pixel(640, 480, image::Luma([200]));
        image::imageops::overlay(&mut frame, &symbol, 120 + i * 4, 60);
        frame
            .save(frames.path().join(format!("frame-{i:02}.png")))
            .expect("png");
    }
    // The gate's repeat window, as in production, is what keeps a held code
    // from being scanned again on every frame.
    let source = SourceChoice::Folder(frames.path().to_path_buf());
    let window = jo_scanner::gate::DEFAULT_REPEAT_WINDOW;
    let mut h = harness(app(gate(&s, dir.path(), window), source));
    wait_for(&mut h, "ADMIS 2");
    wait_for(&mut h, "Relecture terminée");
    assert!(!shows(&h, "DÉJÀ UTILISÉ"));
    let log = Store::open(dir.path())
        .expect("store")
        .all_scans()
        .expect("log");
    assert_eq!(log.len(), 1, "one scan for the whole hold");
    assert_eq!(log[0].verdict, ScanVerdict::Admit);
}

#[test]
fn sync_panel_shows_what_the_sync_side_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let app = app(gate(&s, dir.path(), Duration::ZERO), SourceChoice::None);
    let notifier = app.notifier();
    let mut h = harness(app);
    wait_for(&mut h, "Hors ligne");
    assert!(shows(&h, "Dernière synchro : jamais"));
    // What the sync worker will send while a large sync runs.
    assert!(notifier.send(UiEvent::Sync(SyncStatus {
        enrolled: true,
        online: true,
        last_sync_at: Some(now()),
        progress: Some(SyncProgress { done: 3, total: 10 }),
        ..SyncStatus::default()
    })));
    wait_for(&mut h, "En ligne");
    assert!(shows(&h, "Synchronisation en cours 3/10"));
    assert!(!shows(&h, "Appareil non enrôlé"));
    assert!(!shows(&h, "jamais"));
    // A revoked device and a wrong clock are said on screen.
    assert!(notifier.send(UiEvent::Sync(SyncStatus {
        enrolled: true,
        online: true,
        revoked: true,
        skew_secs: Some(-240),
        ..SyncStatus::default()
    })));
    wait_for(&mut h, "révoqué");
    assert!(shows(
        &h,
        "Décalage d'horloge : -240 s — L'heure de cet appareil est fausse : réglez-la."
    ));
}

#[test]
fn a_server_behind_on_revocations_and_a_stale_list_are_shown_loudly_in_both_languages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let app = app(gate(&s, dir.path(), Duration::ZERO), SourceChoice::None);
    let notifier = app.notifier();
    let mut h = harness(app);
    // A verdict comes after the worker's first sync state (one channel, in
    // order): from here on only this test's states reach the screen.
    type_code(&mut h, &ticket(&s, 20, SERVED, 1, "Ana Silva"));
    wait_for(&mut h, "ADMIS 1");
    assert!(!shows(&h, "sauvegarde"));
    assert!(notifier.send(UiEvent::Sync(SyncStatus {
        enrolled: true,
        online: true,
        alarms: vec![
            Alarm::RevocationsBehind,
            Alarm::ListStale { age_secs: 1500 },
            Alarm::EntriesRefused { count: 2 },
        ],
        ..SyncStatus::default()
    })));
    wait_for(&mut h, "restauré depuis une sauvegarde");
    assert!(shows(&h, "signée il y a 25 min"));
    assert!(shows(&h, "2 entrée(s) d'autres portes ignorée(s)"));
    // The gate keeps scanning under the alarm.
    type_code(&mut h, &ticket(&s, 21, SERVED, 2, "Ana Silva"));
    wait_for(&mut h, "ADMIS 2");

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::L);
    h.step();
    wait_for(&mut h, "restored from a back-up. Tell the admins");
    assert!(shows(&h, "signed 25 min ago"));
    // A keyring refused is said too; a sync that is fine again clears them.
    assert!(notifier.send(UiEvent::Sync(SyncStatus {
        enrolled: true,
        online: true,
        alarms: vec![Alarm::KeyringRefused],
        ..SyncStatus::default()
    })));
    wait_for(&mut h, "SERVER KEYS REFUSED");
    assert!(!shows(&h, "back-up"));
    assert!(notifier.send(UiEvent::Sync(SyncStatus {
        enrolled: true,
        online: true,
        ..SyncStatus::default()
    })));
    let start = Instant::now();
    while shows(&h, "SERVER KEYS REFUSED") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "alarm never cleared"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn toggled(h: &Harness<'_, ScannerApp>, label: &str) -> bool {
    h.get_by_label_contains(label).accesskit_node().toggled()
        == Some(egui::accesskit::Toggled::True)
}

#[test]
fn offline_band_shows_the_scans_waiting_to_upload_and_is_absent_online() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let app = app(gate(&s, dir.path(), Duration::ZERO), SourceChoice::None);
    let notifier = app.notifier();
    let mut h = harness(app);
    // No server has answered: the gate decides alone, and says so.
    wait_for(&mut h, "HORS LIGNE — les billets sont vérifiés sur place");
    assert!(shows(&h, "Aucun passage en attente d'envoi"));
    for admits in 1..=3 {
        type_code(
            &mut h,
            &ticket(&s, 30 + admits, SERVED, admits, "Ana Silva"),
        );
        wait_for(&mut h, &format!("ADMIS {admits}"));
    }
    wait_for(&mut h, "3 passages en attente d'envoi");

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::L);
    h.step();
    wait_for(&mut h, "OFFLINE — tickets are checked here");
    assert!(shows(&h, "3 scans waiting to upload"));

    // Online is the quiet state: no band.
    assert!(notifier.send(UiEvent::Sync(SyncStatus {
        enrolled: true,
        online: true,
        ..SyncStatus::default()
    })));
    wait_for(&mut h, "Online");
    assert!(!shows(&h, "OFFLINE"));
    assert!(!shows(&h, "3 scans waiting to upload"));
}

#[test]
fn a_gate_not_enrolled_says_what_is_missing_instead_of_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    // Keys and a session, but no enrolment with a server.
    let gate = gate(&s, dir.path(), Duration::ZERO);
    let app = ScannerApp::new(
        gate,
        AppOptions {
            source: Some(SourceChoice::None),
            sync_state: Some(dir.path().to_path_buf()),
            ..AppOptions::default()
        },
    )
    .expect("starts");
    let mut h = harness(app);
    wait_for(
        &mut h,
        "Appareil non enrôlé : enrôlez-le avec le code d'un administrateur",
    );
    assert!(shows(&h, "Pas prêt"));
    assert!(h.query_by_label("Prêt").is_none());
    assert!(!shows(&h, "Présentez le QR code"));
    assert!(!shows(&h, "Aucune clé de vérification"));
}

#[test]
fn a_gate_without_sessions_says_to_choose_them_instead_of_ready() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut g = gate(&s, dir.path(), Duration::ZERO);
    g.store_mut().select_sessions(&[]).expect("select");
    let mut h = harness(app(g, SourceChoice::None));
    wait_for(
        &mut h,
        "Aucune épreuve choisie pour cette porte : ouvrez « Porte et épreuves »",
    );
    assert!(h.query_by_label("Prêt").is_none());
}

#[test]
fn a_french_sync_error_hides_the_english_chain_until_details_is_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let app = app(gate(&s, dir.path(), Duration::ZERO), SourceChoice::None);
    let notifier = app.notifier();
    let mut h = harness(app);
    // After a verdict, the worker's first sync state has reached the screen.
    type_code(&mut h, &ticket(&s, 40, SERVED, 1, "Ana Silva"));
    wait_for(&mut h, "ADMIS 1");
    assert!(notifier.send(UiEvent::Sync(SyncStatus {
        enrolled: true,
        online: false,
        error: Some("server unreachable: connection refused (os error 111)".into()),
        ..SyncStatus::default()
    })));
    wait_for(
        &mut h,
        "Dernière synchronisation échouée : serveur injoignable",
    );
    for english in ["server", "unreachable", "connection refused", "error"] {
        assert!(!shows(&h, english), "{english:?} shown before Détails");
    }
    h.get_by_label("Détails").click();
    h.step();
    wait_for(&mut h, "connection refused (os error 111)");
}

#[test]
fn setup_window_lists_todays_sessions_first_with_dates_and_none_and_today_here_shortcuts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let mut store = Store::open(dir.path()).expect("store");
    store
        .replace_keyring(&[(s.key_id(), *s.verifying_key().as_bytes(), false)])
        .expect("keyring");
    let at = |id, title: &str, venue: &str, starts_at| GateSession {
        venue: venue.into(),
        starts_at,
        ends_at: starts_at + 7200,
        doors_open_at: starts_at - 3600,
        ..session(id, title)
    };
    let t = now();
    store
        .replace_sessions(&[
            at(202, "Saut à la perche", "Stade de France", t + 2 * 86_400),
            at(404, "Relais 4x100 m", "Stade de France", t),
            at(303, "Finale 200 m", "Arena Paris Sud", t),
            at(101, "Finale 100 m", "Stade de France", t),
        ])
        .expect("sessions");
    store.select_sessions(&[101, 303, 404]).expect("select");
    store.set_gate("Porte 3").expect("gate");
    let g = Gate::load(store).expect("loads");
    let mut h = harness(app(g, SourceChoice::None));
    // The top bar: the count and the first session, not the whole list.
    wait_for(&mut h, "3 épreuves : Finale 100 m …");
    assert!(!shows(&h, "Relais 4x100 m"));

    h.get_by_label("Porte et épreuves").click();
    wait_for(&mut h, "Porte et épreuves servies");
    let top = |h: &Harness<'_, ScannerApp>, title: &str| {
        h.get_by_label_contains(&format!("Athlétisme — {title} ·"))
            .rect()
            .top()
    };
    // Today's first (by time, then as listed), then the later days.
    assert!(top(&h, "Finale 100 m") < top(&h, "Finale 200 m"));
    assert!(top(&h, "Finale 200 m") < top(&h, "Relais 4x100 m"));
    assert!(top(&h, "Relais 4x100 m") < top(&h, "Saut à la perche"));
    assert!(shows(&h, "aujourd'hui "));
    let later = h
        .get_by_label_contains("Saut à la perche ·")
        .accesskit_node()
        .label()
        .unwrap_or_default();
    assert!(!later.contains("aujourd'hui"), "{later}");
    assert!(later.contains('/'), "the date is shown: {later}");

    h.get_by_label("Aucune").click();
    h.step();
    h.step();
    for title in ["Finale 100 m", "Finale 200 m", "Relais 4x100 m"] {
        assert!(!toggled(&h, &format!("Athlétisme — {title} ·")), "{title}");
    }
    h.get_by_label_contains("Aujourd'hui ici (Stade de France)")
        .click();
    h.step();
    h.step();
    assert!(toggled(&h, "Athlétisme — Finale 100 m ·"));
    assert!(toggled(&h, "Athlétisme — Relais 4x100 m ·"));
    assert!(!toggled(&h, "Athlétisme — Finale 200 m ·"), "another venue");
    assert!(
        !toggled(&h, "Athlétisme — Saut à la perche ·"),
        "another day"
    );
    h.get_by_label("Enregistrer").click();
    h.step();
    wait_for(&mut h, "2 épreuves : Finale 100 m …");
}

/// Focuses the field labelled `label` and types `text` at its end.
fn type_into(h: &mut Harness<'_, ScannerApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

#[test]
fn the_setup_window_takes_the_lan_peers_points_at_a_bad_entry_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer();
    let g = gate(&s, dir.path(), Duration::from_secs(2));
    let path = Settings::path_in(dir.path());
    let app = ScannerApp::new(
        g,
        AppOptions {
            source: Some(SourceChoice::None),
            settings_path: Some(path.clone()),
            ..AppOptions::default()
        },
    )
    .expect("worker starts");
    let mut h = harness(app);
    h.get_by_label("Porte et épreuves").click();
    wait_for(&mut h, "Portes du réseau local");
    type_into(&mut h, "Écouter les autres portes sur", "0.0.0.0:47330");
    h.get_by_label("Trouver les portes du réseau automatiquement (mDNS)")
        .click();
    h.step();
    let peers = "Autres portes (hôte:port, une par ligne)";
    type_into(&mut h, peers, "10.0.0.12:47330, porte-b.lan:47330,x");
    h.get_by_label("Enregistrer").click();
    h.step();
    h.step();
    // Refused: the entry and its line are named, the window stays open with
    // everything as typed, and nothing is saved.
    assert!(shows(&h, "Ligne 1 : x — pas de la forme hôte:port"));
    assert!(shows(&h, "Portes du réseau local"), "the window stays open");
    assert!(!path.exists(), "nothing saved from a refused form");
    // The typo removed, the same save goes through.
    h.get_by_label(peers).focus();
    h.step();
    h.key_press(egui::Key::End);
    h.key_press(egui::Key::Backspace);
    h.step();
    h.get_by_label("Enregistrer").click();
    h.step();
    h.step();
    assert!(!shows(&h, "Portes du réseau local"), "the window closed");
    let saved = Settings::load(&path);
    assert_eq!(saved.peer_listen.as_deref(), Some("0.0.0.0:47330"));
    assert_eq!(saved.peers, ["10.0.0.12:47330", "porte-b.lan:47330"]);
    assert!(saved.mdns);
    let config = saved.peer_config().expect("the peer node is on");
    assert_eq!(config.peers, saved.peers);
    // Opened again, the window shows what was saved.
    h.get_by_label("Porte et épreuves").click();
    wait_for(&mut h, "Portes du réseau local");
    let value = |h: &Harness<'_, ScannerApp>, label: &str| {
        h.get_by_label(label)
            .accesskit_node()
            .value()
            .unwrap_or_default()
    };
    assert_eq!(value(&h, peers), "10.0.0.12:47330\nporte-b.lan:47330");
    assert_eq!(value(&h, "Écouter les autres portes sur"), "0.0.0.0:47330");
}
