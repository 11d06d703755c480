//! The panels of the gate screen. Each `*_ui` function draws from plain data
//! and returns what the staff asked for; none of them talks to the worker.

use std::collections::VecDeque;

use eframe::egui::{self, Color32, RichText};

use super::i18n::{self, Lang};
use super::settings::{PeerForm, PeerFormError, RESOLUTIONS, Resolution, Settings};
use super::worker::{
    Alarm, CameraStatus, Counters, GateInfo, Outcome, SessionChoice, SyncStatus, VerdictView, Via,
};
use super::{camera::CameraInfo, manual_entry_id};

use super::theme::{
    AMBER, CAMERA_BOX, GREEN, GREEN_TEXT, IDLE, INK_ON_AMBER, INK_ON_IDLE, MUTED, RED, RED_TEXT,
};

/// What the camera panel asks for.
pub enum CameraPick {
    /// A camera (or none) and a resolution.
    Choice(Option<u32>, Resolution),
    /// List the cameras again.
    Refresh,
}

/// Local wall-clock time of a Unix time: "14:32:05" today, "24/11 14:32" otherwise.
pub fn local_time(unix: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(unix, 0).single() {
        Some(t) if t.date_naive() == Local::now().date_naive() => t.format("%H:%M:%S").to_string(),
        Some(t) => t.format("%d/%m %H:%M").to_string(),
        None => unix.to_string(),
    }
}

/// Top bar: app, gate, sessions served, help and language buttons. Returns
/// `true` when the language button was clicked.
pub fn top_bar_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    gate: &GateInfo,
    show_help: &mut bool,
    open_setup: &mut bool,
) -> bool {
    let t = lang.texts();
    let mut toggle = false;
    egui::Panel::top("top-bar")
        .frame(egui::Frame::side_top_panel(ui.style()).inner_margin(egui::Margin::symmetric(12, 8)))
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(RichText::new("JO E-Tickets").strong().size(22.0));
                ui.separator();
                // Gate names usually say "Porte 3" themselves; only an unnamed
                // gate needs the word.
                let name = if gate.name.is_empty() {
                    format!("{}{}—", t.gate, t.colon)
                } else {
                    gate.name.clone()
                };
                ui.label(RichText::new(name).size(22.0).strong());
                ui.separator();
                // The count and the first session only: a list of them ran
                // off the edge. The whole list is in the tooltip.
                let served: Vec<&SessionChoice> = ordered_choices(&gate.choices, now_unix())
                    .into_iter()
                    .filter(|c| c.served)
                    .collect();
                let summary = i18n::sessions_summary(
                    lang,
                    served.first().map(|c| c.title.as_str()),
                    served.len(),
                );
                let all: Vec<&str> = served.iter().map(|c| c.label.as_str()).collect();
                let label = ui.label(RichText::new(summary).size(20.0));
                if !all.is_empty() {
                    label.on_hover_text(all.join("\n"));
                }
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui
                        .button(format!("{} (Ctrl+L)", t.switch_language))
                        .clicked()
                    {
                        toggle = true;
                    }
                    if ui.button(format!("{} (F1)", t.help)).clicked() {
                        *show_help = !*show_help;
                    }
                    if ui.button(t.setup).clicked() {
                        *open_setup = true;
                    }
                });
            });
        });
    toggle
}

/// The alarms, in a red band under the top bar: what the sync refused, or
/// a revocation list gone stale while the server answers. Nothing when all
/// is well.
pub fn alarms_ui(ui: &mut egui::Ui, lang: Lang, alarms: &[Alarm]) {
    if alarms.is_empty() {
        return;
    }
    egui::Panel::top("alarms")
        .frame(
            egui::Frame::new()
                .fill(RED)
                .inner_margin(egui::Margin::symmetric(12, 8)),
        )
        .show(ui, |ui| {
            for a in alarms {
                ui.add(
                    egui::Label::new(
                        RichText::new(i18n::alarm_text(lang, a))
                            .color(Color32::WHITE)
                            .strong()
                            .size(20.0),
                    )
                    .wrap(),
                );
            }
        });
}

/// The offline band: a wide amber band under the top bar, read from a step
/// away, saying that the gate decides alone and how many scans wait to go
/// up. Nothing while the server answers: online is the quiet, normal state.
pub fn offline_band_ui(ui: &mut egui::Ui, lang: Lang, online: bool, pending: u64) {
    if online {
        return;
    }
    let t = lang.texts();
    egui::Panel::top("offline-band")
        .frame(
            egui::Frame::new()
                .fill(AMBER)
                .inner_margin(egui::Margin::symmetric(16, 10)),
        )
        .show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new(t.offline_band)
                        .color(INK_ON_AMBER)
                        .strong()
                        .size(30.0),
                );
                ui.add_space(24.0);
                ui.label(
                    RichText::new(i18n::pending_upload(lang, pending))
                        .color(INK_ON_AMBER)
                        .strong()
                        .size(30.0),
                );
            });
        });
}

/// An error's technical detail (the error chain, in English as the system
/// wrote it), folded away under "Détails": the staff read the reason in
/// words, a technician opens it.
pub fn details_ui(ui: &mut egui::Ui, lang: Lang, salt: &str, detail: &str, ink: Color32) {
    egui::CollapsingHeader::new(RichText::new(lang.texts().details).color(ink))
        .id_salt(salt)
        .default_open(false)
        .show(ui, |ui| {
            ui.add(egui::Label::new(RichText::new(detail).color(ink).monospace()).wrap());
        });
}

/// Bottom bar: manual entry. Returns the code when submitted (button or Enter).
pub fn manual_entry_ui(ui: &mut egui::Ui, lang: Lang, code: &mut String) -> Option<String> {
    let t = lang.texts();
    let mut submitted = None;
    egui::Panel::bottom("manual-entry-bar")
        .frame(
            egui::Frame::side_top_panel(ui.style()).inner_margin(egui::Margin::symmetric(12, 10)),
        )
        .show(ui, |ui| {
            ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                let label =
                    ui.label(RichText::new(format!("{} (Ctrl+M)", t.manual_entry)).strong());
                let field_width = (ui.available_width() - 160.0).max(120.0);
                let field = ui
                    .add(
                        egui::TextEdit::singleline(code)
                            .id(manual_entry_id())
                            .hint_text(t.manual_hint)
                            .font(egui::TextStyle::Monospace)
                            .desired_width(field_width),
                    )
                    .labelled_by(label.id);
                let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                let clicked = ui.button(RichText::new(t.submit).strong()).clicked();
                if (enter || clicked) && !code.trim().is_empty() {
                    submitted = Some(std::mem::take(code).trim().to_owned());
                    // Keep the cursor there for the next code.
                    field.request_focus();
                }
            });
        });
    submitted
}

/// Left panel: camera preview, status and picker.
pub fn camera_panel_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    settings: &Settings,
    status: Option<&CameraStatus>,
    cameras: &[CameraInfo],
    preview: Option<&egui::TextureHandle>,
    picked: &mut Option<CameraPick>,
) {
    let t = lang.texts();
    egui::Panel::left("camera-panel")
        .resizable(false)
        .exact_size(440.0)
        .show(ui, |ui| {
            ui.add_space(8.0);
            ui.heading(t.camera);
            let width = ui.available_width();
            let box_size = egui::vec2(width, width * 0.75);
            match preview {
                Some(tex) => {
                    ui.add(
                        egui::Image::from_texture(tex)
                            .max_size(box_size)
                            .maintain_aspect_ratio(true),
                    );
                }
                None => {
                    let (rect, _) = ui.allocate_exact_size(box_size, egui::Sense::hover());
                    ui.painter().rect_filled(rect, 6.0, CAMERA_BOX);
                    ui.painter().text(
                        rect.center(),
                        egui::Align2::CENTER_CENTER,
                        t.camera,
                        egui::FontId::proportional(22.0),
                        MUTED,
                    );
                }
            }
            ui.add_space(4.0);
            camera_status_ui(ui, lang, status);
            ui.add_space(8.0);
            camera_picker_ui(ui, lang, settings, cameras, picked);
        });
}

fn camera_status_ui(ui: &mut egui::Ui, lang: Lang, status: Option<&CameraStatus>) {
    let t = lang.texts();
    match status {
        None | Some(CameraStatus::Starting) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(t.camera_starting);
            });
        }
        Some(CameraStatus::Off) => {
            ui.label(t.no_camera);
        }
        Some(CameraStatus::Live { name }) => {
            dot_label(ui, GREEN_TEXT, RichText::new(name).color(GREEN_TEXT));
        }
        Some(CameraStatus::Replay { dir }) => {
            let name = dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            dot_label(
                ui,
                GREEN_TEXT,
                RichText::new(format!("{}{}{name}", t.replay, t.colon)).color(GREEN_TEXT),
            );
        }
        Some(CameraStatus::Ended) => {
            ui.label(t.replay_ended);
        }
        Some(CameraStatus::Unavailable { why }) => {
            ui.label(RichText::new(t.camera_unavailable).color(AMBER).strong());
            ui.label(t.camera_fallback);
            details_ui(ui, lang, "camera-details", why, MUTED);
        }
    }
}

fn camera_picker_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    settings: &Settings,
    cameras: &[CameraInfo],
    picked: &mut Option<CameraPick>,
) {
    let t = lang.texts();
    let name_of = |index: u32| {
        cameras
            .iter()
            .find(|c| c.index == index)
            .map_or_else(|| format!("#{index}"), |c| format!("#{index} {}", c.name))
    };
    let mut camera = settings.camera;
    let mut resolution = settings.resolution;
    egui::Grid::new("camera-picker")
        .num_columns(2)
        .show(ui, |ui| {
            let label = ui.label(t.camera);
            egui::ComboBox::from_id_salt("camera-choice")
                .width(260.0)
                .selected_text(camera.map_or_else(|| t.no_camera.to_owned(), name_of))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut camera, None, t.no_camera);
                    let mut indexes: Vec<u32> = cameras.iter().map(|c| c.index).collect();
                    if let Some(i) = settings.camera
                        && !indexes.contains(&i)
                    {
                        indexes.push(i);
                    }
                    for i in indexes {
                        ui.selectable_value(&mut camera, Some(i), name_of(i));
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
            let label = ui.label(t.resolution);
            egui::ComboBox::from_id_salt("camera-resolution")
                .width(260.0)
                .selected_text(resolution.to_string())
                .show_ui(ui, |ui| {
                    for r in RESOLUTIONS {
                        ui.selectable_value(&mut resolution, r, r.to_string());
                    }
                })
                .response
                .labelled_by(label.id);
            ui.end_row();
        });
    if ui.button(t.refresh).clicked() {
        *picked = Some(CameraPick::Refresh);
    }
    if camera != settings.camera || resolution != settings.resolution {
        *picked = Some(CameraPick::Choice(camera, resolution));
    }
}

/// What the sync panel's buttons ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncAction {
    /// Sync now.
    Now,
    /// Open the enrolment window.
    Enroll,
}

/// Right panel: counters, sync state, last scans.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
pub fn side_panel_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    counters: &Counters,
    sync: &SyncStatus,
    pending: u64,
    last: &VecDeque<VerdictView>,
    can_sync: bool,
    action: &mut Option<SyncAction>,
) {
    let t = lang.texts();
    egui::Panel::right("side-panel")
        .resizable(false)
        .exact_size(340.0)
        .show(ui, |ui| {
            ui.add_space(8.0);
            ui.heading(t.counters);
            egui::Grid::new("counters")
                .num_columns(2)
                .spacing([16.0, 4.0])
                .show(ui, |ui| {
                    for (label, n, color) in [
                        (t.admitted_people, counters.admitted_people, GREEN_TEXT),
                        (t.refused_count, counters.refused, RED_TEXT),
                        (t.used_count, counters.used, AMBER),
                    ] {
                        ui.label(label);
                        ui.label(
                            RichText::new(n.to_string())
                                .size(28.0)
                                .strong()
                                .color(color),
                        );
                        ui.end_row();
                    }
                });
            ui.separator();
            sync_ui(ui, lang, sync, pending);
            if can_sync {
                ui.horizontal(|ui| {
                    if sync.enrolled && !sync.revoked {
                        if ui.button(t.sync_now).clicked() {
                            *action = Some(SyncAction::Now);
                        }
                    } else if ui.button(t.enroll_open).clicked() {
                        *action = Some(SyncAction::Enroll);
                    }
                });
            }
            ui.separator();
            ui.heading(t.last_scans);
            if last.is_empty() {
                ui.label(RichText::new(t.no_scans).weak());
            }
            for v in last {
                last_scan_ui(ui, lang, v);
            }
        });
}

/// Sync state: online/offline, enrolment, last sync, scans waiting, progress.
pub fn sync_ui(ui: &mut egui::Ui, lang: Lang, sync: &SyncStatus, pending: u64) {
    let t = lang.texts();
    ui.heading(t.sync);
    let (state, color) = if sync.online {
        (t.online, GREEN_TEXT)
    } else {
        (t.offline, AMBER)
    };
    dot_label(ui, color, RichText::new(state).color(color).strong());
    if !sync.enrolled {
        ui.label(t.not_enrolled);
    }
    if sync.revoked {
        ui.add(egui::Label::new(RichText::new(t.revoked).color(RED_TEXT).strong()).wrap());
    }
    if let Some(skew) = sync.skew_secs {
        // Tickets are checked against this clock: past a minute, say so loudly.
        if skew.abs() > 60 {
            ui.label(
                RichText::new(format!(
                    "{}{}{skew:+} s — {}",
                    t.skew, t.colon, t.skew_warning
                ))
                .color(AMBER)
                .strong(),
            );
        } else {
            ui.label(RichText::new(format!("{}{}{skew:+} s", t.skew, t.colon)).weak());
        }
    }
    if let Some(err) = &sync.error {
        // The reason in words; the error chain (English) behind "Détails".
        let words = if sync.online {
            t.sync_failed
        } else {
            t.sync_unreachable
        };
        ui.add(
            egui::Label::new(RichText::new(format!("{}{}{words}", t.sync_error, t.colon)).weak())
                .wrap(),
        );
        details_ui(ui, lang, "sync-details", err, MUTED);
    }
    let last = sync
        .last_sync_at
        .map_or_else(|| t.never.to_owned(), local_time);
    ui.label(format!("{}{}{last}", t.last_sync, t.colon));
    ui.label(format!("{}{}{pending}", t.pending, t.colon));
    ui.label(RichText::new(super::camera::rate_line(t)).weak());
    peers_ui(ui, lang, crate::peers::board(), now_unix());
    if let Some(p) = sync.progress {
        let fraction = if p.total == 0 {
            0.0
        } else {
            p.done as f32 / p.total as f32
        };
        ui.add(
            egui::ProgressBar::new(fraction).text(format!("{} {}/{}", t.syncing, p.done, p.total)),
        );
    }
}

/// Most peers listed in the sync panel (the rest are counted).
const PEERS_SHOWN: usize = 8;

/// Where other gates' admissions come from (server live, LAN peers, or
/// nowhere), and the gates on the LAN with when each was last heard.
pub fn peers_ui(ui: &mut egui::Ui, lang: Lang, board: &crate::peers::Board, now: i64) {
    use crate::peers::Learning;
    let t = lang.texts();
    let (words, color) = match board.learning(now) {
        Learning::Live => (t.learns_live, GREEN_TEXT),
        Learning::Peers => (t.learns_peers, GREEN_TEXT),
        Learning::Alone => (t.learns_alone, AMBER),
    };
    dot_label(ui, color, RichText::new(words).color(color));
    let peers = board.peers();
    if peers.is_empty() {
        ui.label(RichText::new(format!("{}{}{}", t.peers_seen, t.colon, t.no_peers)).weak());
        return;
    }
    ui.label(format!("{}{}{}", t.peers_seen, t.colon, peers.len()));
    for p in peers.iter().take(PEERS_SHOWN) {
        let name = if p.gate.is_empty() {
            &p.device_id
        } else {
            &p.gate
        };
        let age = now.saturating_sub(p.last_heard).max(0);
        let state = if p.connected {
            format!("{} {age} s", t.heard)
        } else {
            format!("{} ({} {age} s)", t.peer_gone, t.heard)
        };
        let color = if p.connected { GREEN_TEXT } else { MUTED };
        dot_label(ui, color, RichText::new(format!("{name} — {state}")).weak());
    }
    if peers.len() > PEERS_SHOWN {
        ui.label(RichText::new(format!("+{}", peers.len() - PEERS_SHOWN)).weak());
    }
}

fn outcome_heading(lang: Lang, outcome: &Outcome) -> (String, Color32) {
    let t = lang.texts();
    match outcome {
        Outcome::Admit { admits } => (format!("{} {admits}", t.admit), GREEN),
        Outcome::Refused { .. } => (t.refused.to_owned(), RED),
        Outcome::Used { .. } => (t.already_used.to_owned(), AMBER),
    }
}

fn last_scan_ui(ui: &mut egui::Ui, lang: Lang, v: &VerdictView) {
    let (heading, color) = outcome_heading(lang, &v.outcome);
    let detail = match &v.outcome {
        Outcome::Refused { reason } if v.holder.is_none() => i18n::refusal_text(lang, reason),
        _ => v.holder.clone().unwrap_or_default(),
    };
    ui.horizontal(|ui| {
        ui.label(RichText::new(local_time(v.scanned_at)).monospace().weak());
        let ink = if color == AMBER {
            INK_ON_AMBER
        } else {
            Color32::WHITE
        };
        egui::Frame::new()
            .fill(color)
            .corner_radius(4.0)
            .inner_margin(egui::Margin::symmetric(6, 2))
            .show(ui, |ui| {
                ui.label(RichText::new(heading).color(ink).strong().size(14.0));
            });
        ui.add(egui::Label::new(detail).truncate());
    });
}

/// The big verdict, filling the centre.
pub fn verdict_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    view: Option<&VerdictView>,
    log_failed: Option<&str>,
    missing: &[Missing],
) {
    let t = lang.texts();
    let (fill, ink) = match (log_failed, view.map(|v| &v.outcome)) {
        (Some(_), _) => (RED, Color32::WHITE),
        (None, None) => (IDLE, INK_ON_IDLE),
        (None, Some(Outcome::Admit { .. })) => (GREEN, Color32::WHITE),
        (None, Some(Outcome::Refused { .. })) => (RED, Color32::WHITE),
        (None, Some(Outcome::Used { .. })) => (AMBER, INK_ON_AMBER),
    };
    egui::CentralPanel::default()
        .frame(egui::Frame::new().fill(fill).inner_margin(24))
        .show(ui, |ui| {
            ui.vertical_centered(|ui| {
                ui.add_space((ui.available_height() * 0.12).min(80.0));
                if let Some(why) = log_failed {
                    big(ui, t.log_failed, 44.0, ink);
                    line(ui, t.log_failed_hint, 26.0, ink);
                    details_ui(ui, lang, "log-details", why, ink);
                    return;
                }
                let Some(v) = view else {
                    if !missing.is_empty() {
                        // "Ready" would be a lie: say what is missing and what to do.
                        big(ui, t.not_ready, 72.0, ink);
                        for m in missing {
                            ui.add_space(12.0);
                            line(ui, m.text(lang), 30.0, ink);
                        }
                        return;
                    }
                    big(ui, t.ready, 72.0, ink);
                    ui.label(RichText::new(t.ready_hint).color(ink).size(26.0));
                    return;
                };
                let (heading, _) = outcome_heading(lang, &v.outcome);
                // "DÉJÀ UTILISÉ" is twice as long as "ADMIS 2": keep it on one line.
                let size = if matches!(v.outcome, Outcome::Used { .. }) {
                    72.0
                } else {
                    96.0
                };
                big(ui, &heading, size, ink);
                match &v.outcome {
                    Outcome::Admit { admits } => {
                        line(ui, &i18n::people(lang, *admits), 34.0, ink);
                    }
                    Outcome::Refused { reason } => {
                        line(ui, &i18n::refusal_text(lang, reason), 36.0, ink);
                    }
                    Outcome::Used { at, gate } => {
                        let gate = if gate.is_empty() {
                            "—"
                        } else {
                            gate.as_str()
                        };
                        line(
                            ui,
                            &format!("{} {} — {gate}", t.used_at, local_time(*at)),
                            36.0,
                            ink,
                        );
                    }
                }
                ui.add_space(24.0);
                if let Some(holder) = &v.holder {
                    ui.label(RichText::new(t.holder).color(ink).size(20.0));
                    line(ui, holder, 48.0, ink);
                }
                if let Some(id) = v.session_id {
                    let session = v
                        .session
                        .clone()
                        .unwrap_or_else(|| format!("{} (n° {id})", t.unknown_session));
                    ui.add_space(8.0);
                    ui.label(RichText::new(t.session).color(ink).size(20.0));
                    ui.add(egui::Label::new(RichText::new(session).color(ink).size(26.0)).wrap());
                }
                ui.add_space(16.0);
                let mut footer = vec![local_time(v.scanned_at)];
                if v.via == Via::Manual {
                    footer.push(t.via_manual.to_owned());
                }
                if v.repeat {
                    footer.push(t.repeat.to_owned());
                }
                if let Some(seq) = v.seq {
                    footer.push(format!("#{seq}"));
                }
                ui.label(RichText::new(footer.join(" · ")).color(ink).size(16.0));
            });
        });
}

/// What the gate still needs before it can say "Prêt".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No server enrolment.
    Enrolment,
    /// No key to verify tickets with.
    Keys,
    /// No session chosen for this gate.
    Sessions,
}

impl Missing {
    /// What is missing and what to do, in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        let t = lang.texts();
        match self {
            Self::Enrolment => t.need_enrolment,
            Self::Keys => t.need_keys,
            Self::Sessions => t.need_sessions,
        }
    }
}

/// A coloured status dot, then a label (painted: the default fonts have no "●").
fn dot_label(ui: &mut egui::Ui, color: Color32, text: RichText) {
    ui.horizontal(|ui| {
        let (rect, _) = ui.allocate_exact_size(egui::vec2(14.0, 14.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), 6.0, color);
        ui.label(text);
    });
}

fn big(ui: &mut egui::Ui, text: &str, size: f32, ink: Color32) {
    ui.add(egui::Label::new(RichText::new(text).size(size).strong().color(ink)).wrap());
}

fn line(ui: &mut egui::Ui, text: &str, size: f32, ink: Color32) {
    ui.add(egui::Label::new(RichText::new(text).size(size).color(ink)).wrap());
}

/// The shortcuts, in a window (F1).
pub fn help_ui(ctx: &egui::Context, lang: Lang, open: &mut bool) {
    let t = lang.texts();
    egui::Window::new(t.help)
        .open(open)
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
        .show(ctx, |ui| {
            egui::Grid::new("help").num_columns(2).show(ui, |ui| {
                for (key, what) in t.help_lines {
                    ui.label(RichText::new(key).monospace().strong());
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
}

/// Why an enrolment attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// The fingerprint typed is not 64 hex digits.
    Fingerprint,
    /// The attempt failed; the error chain as the system said it.
    Failed(String),
}

/// The enrolment form's state.
#[derive(Default)]
pub struct EnrollForm {
    /// Server address.
    pub server: String,
    /// One-time code.
    pub code: String,
    /// Device label.
    pub label: String,
    /// Keyring fingerprint (hex), from the admin's QR or typed; empty: trust
    /// on first use.
    pub fingerprint: String,
    /// Waiting for the server's answer.
    pub busy: bool,
    /// Why the last attempt failed.
    pub error: Option<FormError>,
    /// Opened from the sync panel (a device enrolled before, or with keys).
    pub open: bool,
}

/// The enrolment window: server address, one-time code, device name and
/// the keyring fingerprint to pin. Sets `submit` when the button is clicked
/// (or Enter pressed in the code field), `close` when closed.
pub fn enroll_ui(
    ctx: &egui::Context,
    lang: Lang,
    form: &mut EnrollForm,
    submit: &mut bool,
    close: &mut bool,
) {
    let t = lang.texts();
    let mut open = true;
    let EnrollForm {
        server,
        code,
        label,
        fingerprint,
        busy,
        error,
        ..
    } = form;
    let busy = *busy;
    egui::Window::new(t.enroll_title)
        .id(egui::Id::unique("enroll-window"))
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::vec2(0.0, 0.0))
        .open(&mut open)
        .show(ctx, |ui| {
            ui.set_width(520.0);
            ui.label(t.enroll_intro);
            ui.label(RichText::new(t.enroll_qr_hint).weak());
            ui.add_space(6.0);
            egui::Grid::new("enroll-grid")
                .num_columns(2)
                .spacing([12.0, 8.0])
                .show(ui, |ui| {
                    // Labelled fields: screen readers (and UI tests) find them by name.
                    let l = ui.label(t.server_url);
                    ui.add(
                        egui::TextEdit::singleline(server)
                            .hint_text("https://billets.example.fr")
                            .desired_width(320.0),
                    )
                    .labelled_by(l.id);
                    ui.end_row();
                    let l = ui.label(t.enroll_code);
                    let code_field = ui
                        .add(egui::TextEdit::singleline(code).desired_width(320.0))
                        .labelled_by(l.id);
                    if code_field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                        *submit = true;
                    }
                    ui.end_row();
                    let l = ui.label(t.device_label);
                    ui.add(
                        egui::TextEdit::singleline(label)
                            .hint_text("Porte A — poste 1")
                            .desired_width(320.0),
                    )
                    .labelled_by(l.id);
                    ui.end_row();
                    let l = ui.label(t.keyring_fingerprint);
                    ui.add(
                        egui::TextEdit::singleline(fingerprint)
                            .hint_text(t.keyring_fingerprint_hint)
                            .font(egui::TextStyle::Monospace)
                            .desired_width(320.0),
                    )
                    .labelled_by(l.id);
                    ui.end_row();
                });
            if fingerprint.trim().is_empty() {
                ui.label(RichText::new(t.first_use_warning).color(AMBER));
            }
            ui.add_space(6.0);
            ui.horizontal(|ui| {
                let ready = !server.trim().is_empty() && !code.trim().is_empty() && !busy;
                if ui
                    .add_enabled(ready, egui::Button::new(t.enroll_button))
                    .clicked()
                {
                    *submit = true;
                }
                if busy {
                    ui.spinner();
                    ui.label(t.enrolling);
                }
            });
            match error.as_ref() {
                None => {}
                Some(FormError::Fingerprint) => {
                    ui.label(
                        RichText::new(t.fingerprint_invalid)
                            .color(RED_TEXT)
                            .strong(),
                    );
                }
                Some(FormError::Failed(chain)) => {
                    ui.add(
                        egui::Label::new(
                            RichText::new(format!(
                                "{}{}{}",
                                t.enroll_failed, t.colon, t.enroll_failed_hint
                            ))
                            .color(RED_TEXT)
                            .strong(),
                        )
                        .wrap(),
                    );
                    details_ui(ui, lang, "enroll-details", chain, MUTED);
                }
            }
        });
    if !open {
        *close = true;
    }
}

/// The gate set-up window's state (gate name, sessions served, LAN peers).
#[derive(Default)]
pub struct SetupForm {
    /// Shown.
    pub open: bool,
    /// Gate name, as typed.
    pub gate: String,
    /// Sessions ticked.
    pub served: Vec<u32>,
    /// The LAN peers part, as typed.
    pub lan: PeerForm,
    /// Opened once automatically after the first sync brought sessions.
    pub offered: bool,
}

/// The gate set-up window: the gate's name, the sessions it serves and how
/// it reaches the other gates on the LAN.
pub fn setup_ui(
    ctx: &egui::Context,
    lang: Lang,
    choices: &[SessionChoice],
    form: &mut SetupForm,
    save: &mut bool,
    close: &mut bool,
) {
    let t = lang.texts();
    let SetupForm {
        gate, served, lan, ..
    } = form;
    let mut open = true;
    egui::Window::new(t.setup_title)
        .id(egui::Id::unique("setup-window"))
        .collapsible(false)
        .anchor(egui::Align2::CENTER_CENTER, egui::vec2(0.0, 0.0))
        .open(&mut open)
        .show(ctx, |ui| {
            ui.set_width(560.0);
            ui.horizontal(|ui| {
                let l = ui.label(t.gate_name);
                ui.add(
                    egui::TextEdit::singleline(gate)
                        .hint_text("Porte A")
                        .desired_width(300.0),
                )
                .labelled_by(l.id);
            });
            if gate.trim().is_empty() {
                ui.label(RichText::new(t.gate_name_needed).color(AMBER));
            }
            ui.separator();
            ui.label(RichText::new(t.sessions_served).strong());
            if choices.is_empty() {
                ui.label(RichText::new(t.no_sessions_yet).weak());
            }
            let now = now_unix();
            ui.horizontal(|ui| {
                if ui.button(t.select_none).clicked() {
                    served.clear();
                }
                let (venue, today) = today_here(choices, served, now);
                let label = match venue {
                    Some(v) => format!("{} ({v})", t.select_today_here),
                    None => t.select_today_here.to_owned(),
                };
                if ui
                    .add_enabled(!today.is_empty(), egui::Button::new(label))
                    .on_disabled_hover_text(t.none_today_here)
                    .clicked()
                {
                    *served = today;
                }
            });
            egui::ScrollArea::vertical()
                .max_height(360.0)
                .show(ui, |ui| {
                    for c in ordered_choices(choices, now) {
                        let mut on = served.contains(&c.id);
                        let text =
                            format!("{} — {}", session_date(lang, c.starts_at, now), c.label);
                        if ui.checkbox(&mut on, text).changed() {
                            if on {
                                served.push(c.id);
                            } else {
                                served.retain(|id| *id != c.id);
                            }
                        }
                    }
                });
            ui.separator();
            peer_form_ui(ui, lang, lan);
            ui.separator();
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(!gate.trim().is_empty(), egui::Button::new(t.save))
                    .clicked()
                {
                    *save = true;
                }
                if ui.button(t.close).clicked() {
                    *close = true;
                }
            });
        });
    if !open {
        *close = true;
    }
}

/// The LAN part of the set-up window: where this gate listens for the
/// others, the gates to dial, mDNS, and why the last save was refused.
fn peer_form_ui(ui: &mut egui::Ui, lang: Lang, lan: &mut PeerForm) {
    let t = lang.texts();
    ui.label(RichText::new(t.lan_peers).strong());
    ui.horizontal(|ui| {
        let l = ui.label(t.peer_listen);
        ui.add(
            egui::TextEdit::singleline(&mut lan.listen)
                .hint_text("0.0.0.0:47330")
                .desired_width(220.0),
        )
        .labelled_by(l.id);
    });
    ui.checkbox(&mut lan.mdns, t.mdns_find);
    let l = ui.label(t.peer_list);
    ui.add(
        egui::TextEdit::multiline(&mut lan.peers)
            .hint_text("10.0.0.12:47330")
            .desired_rows(3)
            .desired_width(f32::INFINITY),
    )
    .labelled_by(l.id);
    if let Some(e) = &lan.error {
        ui.label(RichText::new(peer_error_text(lang, e)).color(RED_TEXT));
    }
}

/// What is wrong with the LAN part of the set-up window, in words.
pub fn peer_error_text(lang: Lang, e: &PeerFormError) -> String {
    let t = lang.texts();
    match e {
        PeerFormError::Listen(typed) => format!("{}{}{typed}", t.peer_listen_bad, t.colon),
        PeerFormError::Peer { line, entry } => {
            format!(
                "{} {line}{}{entry} — {}",
                t.line_word, t.colon, t.peer_entry_bad
            )
        }
        PeerFormError::TooMany(n) => {
            format!("{} ({n} > {})", t.peers_too_many, crate::peers::MAX_PEERS)
        }
        PeerFormError::MdnsNeedsListen => t.mdns_needs_listen.to_owned(),
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The local calendar day of a Unix time.
fn local_day(unix: i64) -> Option<chrono::NaiveDate> {
    use chrono::{Local, TimeZone};
    Local
        .timestamp_opt(unix, 0)
        .single()
        .map(|t| t.date_naive())
}

/// A session's start as the set-up window shows it: "aujourd'hui 14:30",
/// otherwise "02/12/2026 14:30".
pub fn session_date(lang: Lang, starts_at: i64, now: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(starts_at, 0).single() {
        Some(t) if Some(t.date_naive()) == local_day(now) => {
            format!("{} {}", lang.texts().today, t.format("%H:%M"))
        }
        Some(t) => t.format("%d/%m/%Y %H:%M").to_string(),
        None => starts_at.to_string(),
    }
}

/// Sessions in the order the set-up window lists them: today's first, then
/// the others by date (the staff set a gate up on the day).
pub fn ordered_choices(choices: &[SessionChoice], now: i64) -> Vec<&SessionChoice> {
    let today = local_day(now);
    let mut out: Vec<&SessionChoice> = choices.iter().collect();
    out.sort_by_key(|c| (local_day(c.starts_at) != today, c.starts_at, c.id));
    out
}

/// The "today here" shortcut: this gate's venue (that of a session it
/// already serves, else of today's first session) and today's sessions there.
pub fn today_here(
    choices: &[SessionChoice],
    served: &[u32],
    now: i64,
) -> (Option<String>, Vec<u32>) {
    let today = local_day(now);
    let todays: Vec<&SessionChoice> = ordered_choices(choices, now)
        .into_iter()
        .filter(|c| local_day(c.starts_at) == today)
        .collect();
    let venue = choices
        .iter()
        .find(|c| served.contains(&c.id))
        .or_else(|| todays.first().copied())
        .map(|c| c.venue.clone());
    let ids = todays
        .iter()
        .filter(|c| Some(&c.venue) == venue.as_ref())
        .map(|c| c.id)
        .collect();
    (venue, ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel_shows(board: &crate::peers::Board, lang: Lang, now: i64, text: &str) -> bool {
        use egui_kittest::kittest::Queryable;
        let mut h = egui_kittest::Harness::new_ui(|ui| peers_ui(ui, lang, board, now));
        h.run();
        h.query_all_by_label_contains(text).next().is_some()
    }

    #[test]
    fn the_sync_panel_tells_where_entries_come_from_and_the_gates_nearby() {
        let board = crate::peers::Board::default();
        let now = now_unix();
        assert!(panel_shows(&board, Lang::Fr, now, "la porte décide seule"));
        assert!(panel_shows(&board, Lang::En, now, "Gates nearby: none"));
        board.heard("dev-b", "Porte B", "10.0.0.12:47330", true);
        assert!(panel_shows(&board, Lang::Fr, now, "par le réseau local"));
        assert!(panel_shows(
            &board,
            Lang::Fr,
            now,
            "Porte B — entendue il y a"
        ));
        board.heard("dev-b", "Porte B", "10.0.0.12:47330", false);
        assert!(panel_shows(&board, Lang::En, now, "Porte B — disconnected"));
        assert!(panel_shows(
            &board,
            Lang::En,
            now,
            "no source, the gate decides alone"
        ));
        let live = std::sync::Arc::new(crate::sync::live::LiveStatus::default());
        live.connected
            .store(true, std::sync::atomic::Ordering::Relaxed);
        board.set_live(live);
        assert!(panel_shows(&board, Lang::En, now, "live (server)"));
    }

    fn choice(id: u32, venue: &str, starts_at: i64) -> SessionChoice {
        SessionChoice {
            id,
            label: format!("session {id}"),
            title: format!("title {id}"),
            venue: venue.into(),
            starts_at,
            served: false,
        }
    }

    #[test]
    fn sessions_are_listed_by_date_with_todays_first() {
        let now = now_unix();
        let day = 86_400;
        let choices = [
            choice(1, "Stade", now + 3 * day),
            choice(2, "Stade", now - 2 * day),
            choice(3, "Arena", now),
            choice(4, "Stade", now + day),
        ];
        let ids: Vec<u32> = ordered_choices(&choices, now)
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, [3, 2, 4, 1]);
        assert!(session_date(Lang::Fr, now, now).starts_with("aujourd'hui "));
        assert!(!session_date(Lang::Fr, now + 3 * day, now).contains("aujourd'hui"));
    }

    #[test]
    fn today_here_takes_the_venue_of_the_sessions_served() {
        let now = now_unix();
        let choices = [
            choice(1, "Stade", now),
            choice(2, "Arena", now),
            choice(3, "Arena", now + 3 * 86_400),
            choice(4, "Arena", now + 60),
        ];
        let (venue, ids) = today_here(&choices, &[3], now);
        assert_eq!(venue.as_deref(), Some("Arena"));
        assert_eq!(ids, [2, 4]);
        // Nothing served yet: the venue of today's first session.
        let (venue, ids) = today_here(&choices, &[], now);
        assert_eq!(venue.as_deref(), Some("Stade"));
        assert_eq!(ids, [1]);
    }
}
