//! The gate GUI (egui/eframe): camera preview, a verdict readable from a step
//! away, counters, last scans, sync state and manual entry, in French and English.
//!
//! [`ScannerApp`] holds the persisted [`Settings`] apart from runtime handles
//! (the worker, channels, textures). The [`worker`] owns the [`Gate`] and the
//! frame source on its own thread; the UI only sends commands and drains
//! events with `try_recv` each frame, so a slow camera or disk never freezes
//! the screen.

pub mod camera;
pub mod i18n;
pub mod settings;
pub mod sync_worker;
pub mod theme;
mod view;
pub mod worker;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use eframe::egui;

use crate::gate::Gate;
pub use i18n::Lang;
pub use settings::Settings;
use sync_worker::{SyncHandle, SyncOptions, SyncRequest};
use view::{EnrollForm, FormError, Missing, SetupForm};
use worker::{
    CameraStatus, Command, Counters, GateInfo, Notifier, SourceChoice, SyncStatus, UiEvent,
    VerdictView, Worker, WorkerHandle,
};

/// How long a verdict stays on screen after its code left the camera: long
/// enough to read, short enough that the next holder never sees a stale ADMIT.
pub const VERDICT_SHOW: Duration = Duration::from_secs(10);

/// Scans kept in the "last scans" list.
pub const LAST_SCANS: usize = 8;

/// Longest the UI spends draining worker events in one frame.
const EVENT_BUDGET: Duration = Duration::from_millis(4);

/// Id of the manual entry field (Ctrl+M focuses it).
fn manual_entry_id() -> egui::Id {
    egui::Id::unique("manual-entry")
}

/// How the app is started.
#[derive(Debug, Default, Clone)]
pub struct AppOptions {
    /// Where settings are persisted (`None`: not persisted, as in tests).
    pub settings_path: Option<PathBuf>,
    /// A source that overrides the saved camera choice (`--camera`, a demo folder).
    pub source: Option<SourceChoice>,
    /// Decide as if the device clock read this Unix time.
    pub fixed_now: Option<i64>,
    /// Save a PNG of the window once the screen has settled, then quit.
    pub screenshot: Option<PathBuf>,
    /// The state directory: when set, a background thread enrols and syncs
    /// with the server through its own connection to the store there.
    pub sync_state: Option<PathBuf>,
    /// Time between syncs while online (default [`sync_worker::SYNC_INTERVAL`]).
    pub sync_interval: Option<Duration>,
}

/// A verdict on screen.
struct Shown {
    view: VerdictView,
    /// Last time its code was seen (or typed).
    since: Instant,
}

/// Runtime state of the screen, rebuilt from the worker's events.
#[derive(Default)]
struct ScreenState {
    verdict: Option<Shown>,
    last_scans: VecDeque<VerdictView>,
    counters: Counters,
    pending: u64,
    sync: SyncStatus,
    camera: Option<CameraStatus>,
    cameras: Vec<camera::CameraInfo>,
    gate: GateInfo,
    log_failed: Option<String>,
    preview: Option<egui::TextureHandle>,
    manual: String,
    show_help: bool,
    enroll: EnrollForm,
    setup: SetupForm,
}

/// Screenshot request of `--screenshot`.
struct ScreenshotPlan {
    path: PathBuf,
    started: Instant,
    settled_frames: u32,
    requested: bool,
}

/// The gate application.
pub struct ScannerApp {
    settings: Settings,
    settings_path: Option<PathBuf>,
    worker: WorkerHandle,
    sync: Option<SyncHandle>,
    events: Receiver<UiEvent>,
    notifier: Notifier,
    ctx: Arc<OnceLock<egui::Context>>,
    screen: ScreenState,
    screenshot: Option<ScreenshotPlan>,
}

impl ScannerApp {
    /// Starts the worker on `gate` and returns the app.
    pub fn new(gate: Gate, options: AppOptions) -> std::io::Result<Self> {
        let settings = options
            .settings_path
            .as_deref()
            .map(Settings::load)
            .unwrap_or_default();
        let ctx = Arc::new(OnceLock::new());
        let (notifier, events) = Notifier::new(Arc::clone(&ctx));
        let source = options.source.unwrap_or_else(|| source_of(&settings));
        let worker = Worker::new(gate, notifier.clone(), options.fixed_now).spawn(source)?;
        worker.send(Command::ListCameras);
        let sync = match options.sync_state {
            Some(dir) => Some(sync_worker::spawn(
                dir,
                notifier.clone(),
                worker.sender(),
                SyncOptions {
                    interval: options.sync_interval.unwrap_or(sync_worker::SYNC_INTERVAL),
                    max_list_age_secs: settings.max_list_age_secs,
                },
            )?),
            None => None,
        };
        Ok(Self {
            settings,
            settings_path: options.settings_path,
            worker,
            sync,
            events,
            notifier,
            ctx,
            screen: ScreenState::default(),
            screenshot: options.screenshot.map(|path| ScreenshotPlan {
                path,
                started: Instant::now(),
                settled_frames: 0,
                requested: false,
            }),
        })
    }

    /// A sender for other background workers (sync) to update the screen.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// The current language.
    pub fn lang(&self) -> Lang {
        self.settings.lang
    }

    /// The whole screen, once per frame.
    pub fn main_ui(&mut self, ui: &mut egui::Ui) {
        if self.ctx.get().is_none() {
            setup_style(ui.ctx());
            let _ = self.ctx.set(ui.ctx().clone());
        }
        self.drain_events(ui.ctx());
        self.shortcuts_ui(ui);

        let lang = self.settings.lang;
        let mut open_setup = false;
        if view::top_bar_ui(
            ui,
            lang,
            &self.screen.gate,
            &mut self.screen.show_help,
            &mut open_setup,
        ) {
            self.set_lang(lang.toggled());
        }
        if open_setup {
            self.open_setup();
        }
        view::offline_band_ui(ui, lang, self.screen.sync.online, self.screen.pending);
        view::alarms_ui(ui, lang, &self.screen.sync.alarms);
        self.enroll_step(ui);
        self.setup_step(ui);
        if let Some(text) = view::manual_entry_ui(ui, lang, &mut self.screen.manual) {
            self.worker.send(Command::Manual(text));
        }
        let mut picked = None;
        view::camera_panel_ui(
            ui,
            lang,
            &self.settings,
            self.screen.camera.as_ref(),
            &self.screen.cameras,
            self.screen.preview.as_ref(),
            &mut picked,
        );
        match picked {
            Some(view::CameraPick::Choice(camera, resolution)) => {
                self.settings.camera = camera;
                self.settings.resolution = resolution;
                self.save_settings();
                self.worker
                    .send(Command::SetSource(source_of(&self.settings)));
            }
            Some(view::CameraPick::Refresh) => {
                self.worker.send(Command::ListCameras);
            }
            None => {}
        }
        let mut sync_action = None;
        view::side_panel_ui(
            ui,
            lang,
            &self.screen.counters,
            &self.screen.sync,
            self.screen.pending,
            &self.screen.last_scans,
            self.sync.is_some(),
            &mut sync_action,
        );
        match sync_action {
            Some(view::SyncAction::Now) => {
                if let Some(s) = &self.sync {
                    s.send(SyncRequest::Now);
                }
            }
            Some(view::SyncAction::Enroll) => self.screen.enroll.open = true,
            None => {}
        }
        let shown = self
            .screen
            .verdict
            .as_ref()
            .filter(|s| s.since.elapsed() < VERDICT_SHOW);
        let missing = self.missing();
        view::verdict_ui(
            ui,
            lang,
            shown.map(|s| &s.view),
            self.screen.log_failed.as_deref(),
            &missing,
        );
        if let Some(s) = shown {
            // Come back to clear the verdict when it expires, even if nothing moves.
            ui.ctx()
                .request_repaint_after(VERDICT_SHOW.saturating_sub(s.since.elapsed()));
        }
        view::help_ui(ui.ctx(), lang, &mut self.screen.show_help);
        self.screenshot_step(ui.ctx());
    }

    fn drain_events(&mut self, ctx: &egui::Context) {
        let start = Instant::now();
        while start.elapsed() < EVENT_BUDGET {
            let Ok(event) = self.events.try_recv() else {
                return;
            };
            self.apply(ctx, event);
        }
        // Over budget: finish next frame.
        ctx.request_repaint();
    }

    fn apply(&mut self, ctx: &egui::Context, event: UiEvent) {
        let enrolling = self.needs_enrollment() || self.screen.enroll.open;
        let s = &mut self.screen;
        match event {
            UiEvent::Gate(info) => s.gate = info,
            UiEvent::Verdict(view) => {
                s.log_failed = None;
                if !view.repeat {
                    s.last_scans.push_front(view.clone());
                    s.last_scans.truncate(LAST_SCANS);
                }
                s.verdict = Some(Shown {
                    view,
                    since: Instant::now(),
                });
            }
            UiEvent::Held => {
                if let Some(v) = &mut s.verdict {
                    v.since = Instant::now();
                }
            }
            UiEvent::Preview(image) => match &mut s.preview {
                Some(tex) => tex.set(image, egui::TextureOptions::LINEAR),
                None => {
                    s.preview = Some(ctx.load_texture(
                        "camera-preview",
                        image,
                        egui::TextureOptions::LINEAR,
                    ));
                }
            },
            UiEvent::Camera(status) => {
                if matches!(status, CameraStatus::Off | CameraStatus::Unavailable { .. }) {
                    s.preview = None;
                }
                s.camera = Some(status);
            }
            UiEvent::Cameras(list) => s.cameras = list,
            UiEvent::Counters(c) => s.counters = c,
            UiEvent::Pending(n) => s.pending = n,
            UiEvent::Sync(sync) => s.sync = sync,
            UiEvent::LogFailed(why) => {
                // No verdict exists for this scan: never leave the previous one up.
                s.verdict = None;
                s.log_failed = Some(why);
            }
            UiEvent::Invite(invite) => {
                // Only while enrolling: a stray enrolment code at a working
                // gate must not re-enrol the device behind the staff's back.
                if enrolling {
                    s.enroll.server = invite.server_url;
                    s.enroll.code = invite.code;
                    s.enroll.fingerprint = hex::encode(invite.keyring_fingerprint);
                    s.enroll.error = None;
                }
            }
            UiEvent::Enrolled(result) => {
                s.enroll.busy = false;
                match result {
                    Ok(_) => {
                        s.enroll.open = false;
                        s.enroll.error = None;
                        s.enroll.code.clear();
                        s.enroll.fingerprint.clear();
                        s.sync.enrolled = true;
                        s.sync.revoked = false;
                    }
                    Err(why) => s.enroll.error = Some(FormError::Failed(why)),
                }
            }
        }
        // Once sessions arrive after enrolment, ask which this gate serves.
        let s = &mut self.screen;
        if s.sync.enrolled
            && s.gate.name.is_empty()
            && !s.gate.choices.is_empty()
            && !s.setup.offered
        {
            s.setup.offered = true;
            self.open_setup();
        }
    }

    /// What the gate lacks before it may say "Prêt": an enrolment (when it
    /// syncs with a server at all), keys, and sessions to serve.
    fn missing(&self) -> Vec<Missing> {
        let mut out = Vec::new();
        if self.sync.is_some() && !self.screen.sync.enrolled {
            out.push(Missing::Enrolment);
        }
        if !self.screen.gate.has_keys {
            out.push(Missing::Keys);
        }
        if !self.screen.gate.choices.iter().any(|c| c.served) {
            out.push(Missing::Sessions);
        }
        out
    }

    /// First run: no enrolment and no key to verify with.
    fn needs_enrollment(&self) -> bool {
        self.sync.is_some() && !self.screen.sync.enrolled && !self.screen.gate.has_keys
    }

    fn open_setup(&mut self) {
        let s = &mut self.screen;
        s.setup.open = true;
        s.setup.gate = s.gate.name.clone();
        s.setup.served = s
            .gate
            .choices
            .iter()
            .filter(|c| c.served)
            .map(|c| c.id)
            .collect();
        s.setup.lan = settings::PeerForm::of(&self.settings);
    }

    fn enroll_step(&mut self, ui: &mut egui::Ui) {
        if !(self.needs_enrollment() || self.screen.enroll.open) {
            return;
        }
        let lang = self.settings.lang;
        let f = &mut self.screen.enroll;
        let mut submit = false;
        let mut close = false;
        view::enroll_ui(ui.ctx(), lang, f, &mut submit, &mut close);
        if close {
            f.open = false;
        }
        if submit && !f.busy {
            // A fingerprint (from the admin's QR, or typed from the admin
            // console) pins the server's keyring; without one the first
            // keyring is trusted on first use.
            let fingerprint = match f.fingerprint.trim() {
                "" => Ok(None),
                typed => jo_shared::trust::parse_fingerprint(typed)
                    .map(Some)
                    .ok_or(FormError::Fingerprint),
            };
            match (&self.sync, fingerprint) {
                (_, Err(why)) => f.error = Some(why),
                (Some(sync), Ok(keyring_fingerprint)) => {
                    f.busy = true;
                    f.error = None;
                    let label = if f.label.trim().is_empty() {
                        "jo-scanner".to_owned()
                    } else {
                        f.label.trim().to_owned()
                    };
                    sync.send(SyncRequest::Enroll {
                        server: f.server.trim().to_owned(),
                        code: f.code.trim().to_owned(),
                        label,
                        keyring_fingerprint,
                    });
                }
                (None, Ok(_)) => {
                    f.error = Some(FormError::Failed("no state directory".into()));
                }
            }
        }
    }

    fn setup_step(&mut self, ui: &mut egui::Ui) {
        if !self.screen.setup.open {
            return;
        }
        let lang = self.settings.lang;
        let s = &mut self.screen;
        let mut save = false;
        let mut close = false;
        view::setup_ui(
            ui.ctx(),
            lang,
            &s.gate.choices,
            &mut s.setup,
            &mut save,
            &mut close,
        );
        if save && !s.setup.gate.trim().is_empty() {
            // The LAN part first: when it is refused the window stays open
            // with everything as typed and the error under it, and nothing
            // (gate, sessions or peers) is saved half-way.
            match s.setup.lan.apply(&mut self.settings) {
                Err(why) => s.setup.lan.error = Some(why),
                Ok(changed) => {
                    s.setup.lan.error = None;
                    let gate: String = s.setup.gate.trim().chars().take(64).collect();
                    self.worker.send(Command::Configure {
                        gate,
                        sessions: s.setup.served.clone(),
                    });
                    s.setup.open = false;
                    if changed {
                        self.save_settings();
                        if let Some(sync) = &self.sync {
                            sync.send(SyncRequest::RestartPeers);
                        }
                    }
                }
            }
        }
        if close {
            self.screen.setup.open = false;
        }
    }

    fn shortcuts_ui(&mut self, ui: &egui::Ui) {
        use egui::{Key, Modifiers};
        let (help, lang, clear, focus) = ui.input_mut(|i| {
            (
                i.consume_key(Modifiers::NONE, Key::F1),
                i.consume_key(Modifiers::COMMAND, Key::L),
                i.consume_key(Modifiers::NONE, Key::Escape),
                i.consume_key(Modifiers::COMMAND, Key::M),
            )
        });
        if help {
            self.screen.show_help = !self.screen.show_help;
        }
        if lang {
            self.set_lang(self.settings.lang.toggled());
        }
        if clear {
            self.screen.verdict = None;
            self.screen.log_failed = None;
            self.screen.show_help = false;
        }
        if focus {
            ui.memory_mut(|m| m.request_focus(manual_entry_id()));
        }
    }

    fn set_lang(&mut self, lang: Lang) {
        self.settings.lang = lang;
        self.save_settings();
    }

    fn save_settings(&self) {
        if let Some(path) = &self.settings_path {
            // A preference that cannot be saved must not disturb the gate.
            if let Err(e) = self.settings.save(path) {
                eprintln!(
                    "jo-scanner: cannot save settings to {}: {e}",
                    path.display()
                );
            }
        }
    }

    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(plan) = &mut self.screenshot else {
            return;
        };
        if plan.requested {
            return;
        }
        ctx.request_repaint();
        let replay_done = !matches!(
            self.screen.camera,
            Some(CameraStatus::Replay { .. } | CameraStatus::Starting) | None
        );
        let ready = (self.screen.verdict.is_some() && replay_done)
            || plan.started.elapsed() > Duration::from_secs(20);
        if !ready {
            return;
        }
        // A few frames for fonts and textures to settle.
        plan.settled_frames += 1;
        if plan.settled_frames < 5 {
            return;
        }
        plan.requested = true;
        let path = plan.path.clone();
        let ctx2 = ctx.clone();
        ctx.request_screenshot(move |image| {
            let [w, h] = image.size;
            let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
            if let Err(e) =
                image::save_buffer(&path, &rgba, w as u32, h as u32, image::ColorType::Rgba8)
            {
                eprintln!("jo-scanner: cannot save screenshot {}: {e}", path.display());
            }
            ctx2.send_viewport_cmd(egui::ViewportCommand::Close);
            ctx2.request_repaint();
        });
    }
}

impl eframe::App for ScannerApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.main_ui(ui);
    }
}

/// The source the settings ask for.
fn source_of(settings: &Settings) -> SourceChoice {
    match settings.camera {
        None => SourceChoice::None,
        Some(index) => SourceChoice::Camera {
            index,
            resolution: settings.resolution,
        },
    }
}

/// Larger text than egui's default: the screen is read from a step away.
fn setup_style(ctx: &egui::Context) {
    use egui::{FontFamily, FontId, TextStyle};
    ctx.set_theme(egui::ThemePreference::Dark);
    ctx.all_styles_mut(|style| {
        theme::apply(&mut style.visuals);
        style.text_styles = [
            (
                TextStyle::Small,
                FontId::new(14.0, FontFamily::Proportional),
            ),
            (TextStyle::Body, FontId::new(18.0, FontFamily::Proportional)),
            (
                TextStyle::Button,
                FontId::new(18.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Heading,
                FontId::new(24.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Monospace,
                FontId::new(16.0, FontFamily::Monospace),
            ),
        ]
        .into();
        style.spacing.item_spacing = egui::vec2(10.0, 8.0);
        style.spacing.button_padding = egui::vec2(10.0, 6.0);
    });
}

/// Opens the gate window and runs until it is closed.
pub fn run(gate: Gate, options: AppOptions) -> anyhow::Result<()> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("JO E-Tickets — scanner")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([900.0, 600.0]),
        ..Default::default()
    };
    let app = ScannerApp::new(gate, options)?;
    eframe::run_native("jo-scanner", native, Box::new(move |_cc| Ok(Box::new(app))))
        .map_err(|e| anyhow::anyhow!("cannot open the gate window: {e}"))
}
