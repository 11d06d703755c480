//! The scanning worker: owns the [`Gate`] and the frame source, off the UI thread.
//!
//! frame → decode → verify → decide → durable log → verdict to the UI. The UI
//! sends [`Command`]s; the worker answers with [`UiEvent`]s through a
//! [`Notifier`], which also wakes the UI (`request_repaint`) so a verdict shows
//! within a frame even when nothing moves on screen. A verdict view is built
//! only from a [`Scan`] that [`Gate::scan`] returned, i.e. after the scan is in
//! the log.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eframe::egui;
use jo_shared::api::{EnrollmentInvite, GateSession, ScanRecord, ScanVerdict};
use jo_shared::verify::{Refusal, Verdict};

use super::camera::{self, CameraInfo};
use super::settings::Resolution;
use crate::decode::FrameDecoder;
use crate::frames::{FolderSource, Frame, FrameError, FrameSource};
use crate::gate::{Gate, Scan, Synced};

/// Pace of a folder replay, so that a demo looks like a camera.
pub const REPLAY_FRAME_INTERVAL: Duration = Duration::from_millis(100);

/// Longest side of the preview sent to the UI (pixels): enough for the
/// panel, small enough to upload every frame.
pub const PREVIEW_MAX_SIDE: u32 = 480;

/// Least time between two previews sent to the UI.
const PREVIEW_INTERVAL: Duration = Duration::from_millis(50);

/// How often a camera that is missing or unplugged is looked for again, so
/// that plugging it back in is enough.
pub const CAMERA_RETRY: Duration = Duration::from_secs(3);

/// How often an idle worker (no source) looks for commands.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// Where frames come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChoice {
    /// No camera: manual entry only.
    None,
    /// A folder of frames, replayed once (demos, tests).
    Folder(PathBuf),
    /// A webcam.
    Camera {
        /// Index of the camera in the system's list.
        index: u32,
        /// Requested resolution (the camera may pick the nearest it has).
        resolution: Resolution,
    },
}

/// What the UI asks of the worker.
#[derive(Debug)]
pub enum Command {
    /// A code typed in by the staff.
    Manual(String),
    /// Switch the frame source.
    SetSource(SourceChoice),
    /// List the cameras (answered with [`UiEvent::Cameras`]).
    ListCameras,
    /// Reload the gate's state from the store (after a sync changed it).
    Reload,
    /// Take what a background sync brought (no store reread).
    Synced(Box<Synced>),
    /// Set the gate's name and the sessions it serves.
    Configure {
        /// Gate name.
        gate: String,
        /// Session ids served.
        sessions: Vec<u32>,
    },
    /// Stop the worker.
    Shutdown,
}

/// How a code reached the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Read by the camera.
    Camera,
    /// Typed in.
    Manual,
}

/// The decision part of a verdict view.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Let `admits` people in.
    Admit {
        /// People admitted.
        admits: u8,
    },
    /// Refused.
    Refused {
        /// Why.
        reason: Refusal,
    },
    /// Genuine but already used.
    Used {
        /// Device time of the earlier entry, Unix seconds.
        at: i64,
        /// Gate of the earlier entry.
        gate: String,
    },
}

/// Everything the screen shows about one scan.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictView {
    /// The decision.
    pub outcome: Outcome,
    /// The holder's name, from an authentic ticket only.
    pub holder: Option<String>,
    /// People the ticket admits, from an authentic ticket only.
    pub admits: Option<u8>,
    /// The ticket's session id, from an authentic ticket only.
    pub session_id: Option<u32>,
    /// The session as staff read it ("Athlétisme — Finale 100 m · Stade de France").
    pub session: Option<String>,
    /// Device time of the scan, Unix seconds.
    pub scanned_at: i64,
    /// Position in the scan log (`None` for a repeat, which was not logged again).
    pub seq: Option<u64>,
    /// Camera or manual entry.
    pub via: Via,
    /// The same code as the previous scan, within the repeat window.
    pub repeat: bool,
}

impl VerdictView {
    /// The view of a scan that the gate decided and logged.
    pub fn from_scan(scan: &Scan, sessions: &[GateSession], via: Via, now: i64) -> Self {
        let ticket = scan.verdict.ticket();
        let outcome = match &scan.verdict {
            Verdict::Admit { ticket } => Outcome::Admit {
                admits: ticket.admits,
            },
            Verdict::Refuse { reason, .. } => Outcome::Refused { reason: *reason },
            Verdict::AlreadyUsed { prior, .. } => Outcome::Used {
                at: prior.scanned_at,
                gate: prior.gate.clone(),
            },
        };
        Self {
            outcome,
            holder: ticket.map(|t| t.holder.to_string()),
            admits: ticket.map(|t| t.admits),
            session_id: ticket.map(|t| t.session_id),
            session: ticket.and_then(|t| {
                sessions
                    .iter()
                    .find(|s| s.id == t.session_id)
                    .map(session_label)
            }),
            scanned_at: scan.record.as_ref().map_or(now, |r| r.scanned_at),
            seq: scan.record.as_ref().map(|r| r.seq),
            via,
            repeat: scan.repeat,
        }
    }
}

/// "Sport — title · venue".
pub fn session_label(s: &GateSession) -> String {
    format!("{} — {} · {}", s.sport, s.title, s.venue)
}

/// Totals of this device's scan log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// People admitted (a Famille ticket counts 4).
    pub admitted_people: u64,
    /// Refusals.
    pub refused: u64,
    /// Already used.
    pub used: u64,
}

impl Counters {
    /// Totals of a log.
    pub fn of_log(records: &[ScanRecord]) -> Self {
        let mut c = Self::default();
        for r in records {
            c.add(r);
        }
        c
    }

    /// Counts one more logged scan.
    pub fn add(&mut self, record: &ScanRecord) {
        match record.verdict {
            ScanVerdict::Admit => self.admitted_people += u64::from(record.admits),
            ScanVerdict::Refuse => self.refused += 1,
            ScanVerdict::Used => self.used += 1,
        }
    }
}

/// Progress of a running sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// Items done.
    pub done: u64,
    /// Items in all.
    pub total: u64,
}

/// The sync side's state, as shown. Sent by whoever syncs (the future sync
/// worker posts it through a [`Notifier`]); the scanning worker sends the
/// first one from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// The device holds a server enrolment.
    pub enrolled: bool,
    /// The server refused this device (revoked, or its token is no longer
    /// valid): scanning goes on offline, but nothing syncs until it is enrolled again.
    pub revoked: bool,
    /// Device clock minus server clock, seconds, when measured.
    pub skew_secs: Option<i64>,
    /// Why the last attempt failed, when it did.
    pub error: Option<String>,
    /// The server answered the last attempt.
    pub online: bool,
    /// End of the last successful sync, Unix seconds.
    pub last_sync_at: Option<i64>,
    /// Set while a sync runs.
    pub progress: Option<SyncProgress>,
    /// What staff and admins must hear of now, loudest first (empty: all is well).
    pub alarms: Vec<Alarm>,
}

/// Something the sync caught that the gate must say loudly: the server (or
/// something in its place) said what it cannot prove, or the gate's
/// revocation list stopped being refreshed while the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alarm {
    /// The server's revocation list is behind the gate's (409 `list_ahead`,
    /// or a list signed earlier than the one held): restored from a back-up?
    RevocationsBehind,
    /// The keyring offered does not follow from the one pinned at
    /// enrolment: the gate keeps its keys.
    KeyringRefused,
    /// The device list does not verify: other gates' entries are not believed.
    DeviceListRefused,
    /// The server answers, but the revocation list held was signed this
    /// long ago (more than the configured age).
    ListStale {
        /// Age of the list, seconds.
        age_secs: i64,
    },
    /// Entries of other gates dropped by the last sync (bad signature,
    /// unknown or revoked device).
    EntriesRefused {
        /// How many.
        count: u64,
    },
}

/// The frame source's state, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraStatus {
    /// No source: manual entry only.
    Off,
    /// Opening a camera.
    Starting,
    /// A camera delivers frames.
    Live {
        /// Its name.
        name: String,
    },
    /// A folder is being replayed.
    Replay {
        /// The folder.
        dir: PathBuf,
    },
    /// The folder replay reached its end.
    Ended,
    /// No camera, unplugged, busy…
    Unavailable {
        /// Why, as the system said it.
        why: String,
    },
}

/// The gate's identity, for the top bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateInfo {
    /// Gate name ('' before one is set).
    pub name: String,
    /// Sessions this gate serves, as labels.
    pub sessions: Vec<String>,
    /// Every synced session, for the gate set-up window.
    pub choices: Vec<SessionChoice>,
    /// Whether any key to verify tickets with is known (false on a first run).
    pub has_keys: bool,
}

/// A session the gate may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChoice {
    /// Session id.
    pub id: u32,
    /// Label (sport, title, venue).
    pub label: String,
    /// Title alone ("Finale 100 m"), for the top bar.
    pub title: String,
    /// Venue, for the set-up window's "today here" shortcut.
    pub venue: String,
    /// Start, Unix seconds: the set-up window lists sessions by date.
    pub starts_at: i64,
    /// Whether this gate serves it.
    pub served: bool,
}

/// What the worker tells the UI.
#[derive(Debug)]
pub enum UiEvent {
    /// Gate identity (at start and after a reload).
    Gate(GateInfo),
    /// A new verdict, already logged.
    Verdict(VerdictView),
    /// The code on screen is still held up to the camera.
    Held,
    /// A downscaled camera frame.
    Preview(egui::ColorImage),
    /// The frame source's state changed.
    Camera(CameraStatus),
    /// Cameras found.
    Cameras(Vec<CameraInfo>),
    /// New totals.
    Counters(Counters),
    /// Scans waiting for upload.
    Pending(u64),
    /// Sync state.
    Sync(SyncStatus),
    /// The scan could not be logged: no verdict exists, the staff must not admit.
    LogFailed(String),
    /// An admin's enrolment QR code was held up to the camera.
    Invite(EnrollmentInvite),
    /// An enrolment attempt ended: `Ok` with the device id, or why not.
    Enrolled(Result<String, String>),
}

/// Sends events to the UI and wakes it. Cheap to clone: give one to each
/// background worker (scanning, sync).
#[derive(Clone)]
pub struct Notifier {
    tx: Sender<UiEvent>,
    ctx: Arc<OnceLock<egui::Context>>,
}

impl Notifier {
    /// A notifier and the receiving end the UI drains. `ctx` is filled by the
    /// UI on its first frame (the egui context does not exist before).
    pub fn new(ctx: Arc<OnceLock<egui::Context>>) -> (Self, Receiver<UiEvent>) {
        let (tx, rx) = channel();
        (Self { tx, ctx }, rx)
    }

    /// Sends an event and asks for a repaint. `false` when the UI is gone.
    pub fn send(&self, event: UiEvent) -> bool {
        let sent = self.tx.send(event).is_ok();
        if let Some(ctx) = self.ctx.get() {
            ctx.request_repaint();
        }
        sent
    }
}

/// The UI's handle on the worker thread; dropping it stops the worker.
pub struct WorkerHandle {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Sends a command; a worker that has stopped is reported as `false`.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// A sender for other threads (the sync thread hands its results over).
    pub fn sender(&self) -> Sender<Command> {
        self.commands.clone()
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            // The worker finishes the frame in hand (bounded by one camera
            // read), so the log is closed cleanly.
            let _ = t.join();
        }
    }
}

/// The scanning worker's state.
pub struct Worker {
    gate: Gate,
    decoder: FrameDecoder,
    source: Option<ActiveSource>,
    events: Notifier,
    fixed_now: Option<i64>,
    counters: Counters,
    last_preview: Option<Instant>,
    /// The camera chosen but unavailable, and when to try it again.
    camera_retry: Option<(u32, Resolution, Instant)>,
}

struct ActiveSource {
    source: Box<dyn FrameSource>,
    /// The camera behind the source (`None` for a folder).
    camera: Option<(u32, Resolution)>,
    /// Wait between frames (folders); cameras pace themselves.
    pace: Option<Duration>,
    next_at: Instant,
}

impl Worker {
    /// A worker deciding with `gate`. `fixed_now` replaces the device clock
    /// (replaying recordings of another day).
    pub fn new(gate: Gate, events: Notifier, fixed_now: Option<i64>) -> Self {
        Self {
            gate,
            decoder: FrameDecoder::new(),
            source: None,
            events,
            fixed_now,
            counters: Counters::default(),
            last_preview: None,
            camera_retry: None,
        }
    }

    /// Starts the worker on its own thread with a first source.
    pub fn spawn(mut self, first: SourceChoice) -> std::io::Result<WorkerHandle> {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("scanner-worker".into())
            .spawn(move || {
                self.announce();
                self.set_source(first);
                self.run(&rx);
            })?;
        Ok(WorkerHandle {
            commands: tx,
            thread: Some(thread),
        })
    }

    fn now(&self) -> i64 {
        self.fixed_now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        })
    }

    fn run(&mut self, commands: &Receiver<Command>) {
        loop {
            let wait = match &self.source {
                None => IDLE_POLL,
                Some(a) => a.next_at.saturating_duration_since(Instant::now()),
            };
            match commands.recv_timeout(wait) {
                Ok(c) => {
                    if !self.handle(c) {
                        return;
                    }
                    // Drain the rest before the next frame: typed codes first.
                    loop {
                        match commands.try_recv() {
                            Ok(c) => {
                                if !self.handle(c) {
                                    return;
                                }
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => return,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.retry_camera();
            if self
                .source
                .as_ref()
                .is_some_and(|a| a.next_at <= Instant::now())
            {
                self.frame_step();
            }
        }
    }

    /// Sends the gate's identity and sessions (after a sync or a set-up).
    fn announce_gate(&mut self) {
        let store = self.gate.store();
        let name = store.gate().unwrap_or_default();
        let all = store.sessions().unwrap_or_default();
        let sessions = all
            .iter()
            .filter(|(_, served)| *served)
            .map(|(s, _)| session_label(s))
            .collect();
        let choices = all
            .iter()
            .map(|(s, served)| SessionChoice {
                id: s.id,
                label: session_label(s),
                title: s.title.clone(),
                venue: s.venue.clone(),
                starts_at: s.starts_at,
                served: *served,
            })
            .collect();
        self.events.send(UiEvent::Gate(GateInfo {
            name,
            sessions,
            choices,
            has_keys: self.gate.has_keys(),
        }));
    }

    /// Sends what the UI shows before any scan: gate, totals, sync state.
    pub fn announce(&mut self) {
        self.announce_gate();
        let store = self.gate.store();
        match store.all_scans() {
            Ok(log) => self.counters = Counters::of_log(&log),
            Err(e) => {
                self.events.send(UiEvent::LogFailed(e.to_string()));
            }
        }
        let enrolled = store.device_id().ok().flatten().is_some();
        let pending = store.pending_count().unwrap_or(0);
        self.events.send(UiEvent::Counters(self.counters));
        self.events.send(UiEvent::Pending(pending));
        let last_sync_at = store
            .get_state(crate::sync::LAST_SYNC_AT)
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok());
        self.events.send(UiEvent::Sync(SyncStatus {
            enrolled,
            last_sync_at,
            ..SyncStatus::default()
        }));
    }

    /// Handles one command; `false` to stop.
    pub fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Manual(text) => {
                let text = text.trim();
                if !text.is_empty() {
                    self.scan(text, Via::Manual);
                }
            }
            Command::SetSource(choice) => self.set_source(choice),
            Command::ListCameras => {
                let cameras = camera::list_cameras();
                self.events.send(UiEvent::Cameras(cameras));
            }
            Command::Reload => {
                if let Err(e) = self.gate.reload() {
                    self.events.send(UiEvent::LogFailed(e.to_string()));
                }
                self.announce();
            }
            Command::Synced(synced) => {
                self.gate.install(*synced);
                self.announce_gate();
            }
            Command::Configure { gate, sessions } => {
                if let Err(e) = self.gate.configure(&gate, &sessions) {
                    self.events.send(UiEvent::LogFailed(e.to_string()));
                }
                self.announce_gate();
            }
            Command::Shutdown => return false,
        }
        true
    }

    /// Tries the chosen camera again if it is due; quiet unless it opens.
    fn retry_camera(&mut self) {
        let Some((index, resolution, at)) = self.camera_retry else {
            return;
        };
        if self.source.is_some() || Instant::now() < at {
            return;
        }
        match camera::open(index, resolution) {
            Ok((source, name)) => {
                self.camera_retry = None;
                self.source = Some(ActiveSource {
                    source,
                    camera: Some((index, resolution)),
                    pace: None,
                    next_at: Instant::now(),
                });
                self.events
                    .send(UiEvent::Camera(CameraStatus::Live { name }));
            }
            Err(_) => {
                self.camera_retry = Some((index, resolution, Instant::now() + CAMERA_RETRY));
            }
        }
    }

    fn set_source(&mut self, choice: SourceChoice) {
        self.source = None;
        self.camera_retry = None;
        self.decoder = FrameDecoder::new();
        let camera = match &choice {
            SourceChoice::Camera { index, resolution } => Some((*index, *resolution)),
            _ => None,
        };
        let (opened, status) = match choice {
            SourceChoice::None => {
                self.events.send(UiEvent::Camera(CameraStatus::Off));
                return;
            }
            SourceChoice::Folder(dir) => match FolderSource::open(&dir) {
                Ok(s) => (
                    Ok((
                        Box::new(s) as Box<dyn FrameSource>,
                        Some(REPLAY_FRAME_INTERVAL),
                    )),
                    CameraStatus::Replay { dir },
                ),
                Err(e) => (Err(e), CameraStatus::Off),
            },
            SourceChoice::Camera { index, resolution } => {
                self.events.send(UiEvent::Camera(CameraStatus::Starting));
                match camera::open(index, resolution) {
                    Ok((s, name)) => (Ok((s, None)), CameraStatus::Live { name }),
                    Err(e) => (Err(e), CameraStatus::Off),
                }
            }
        };
        match opened {
            Ok((source, pace)) => {
                self.source = Some(ActiveSource {
                    source,
                    camera,
                    pace,
                    next_at: Instant::now(),
                });
                self.events.send(UiEvent::Camera(status));
            }
            Err(e) => {
                self.camera_retry = camera.map(|(i, r)| (i, r, Instant::now() + CAMERA_RETRY));
                self.events.send(UiEvent::Camera(CameraStatus::Unavailable {
                    why: unavailable_reason(&e),
                }));
            }
        }
    }

    /// Reads, shows and decides one frame of the current source.
    pub fn frame_step(&mut self) {
        let Some(active) = self.source.as_mut() else {
            return;
        };
        let next = active.source.next_frame();
        if let Some(pace) = active.pace {
            active.next_at = Instant::now() + pace;
        }
        match next {
            None => {
                self.source = None;
                self.events.send(UiEvent::Camera(CameraStatus::Ended));
            }
            Some(Err(FrameError::Unavailable(why))) => {
                // Unplugged or taken by another program: say so, keep
                // serving manual entry, and look for the camera again.
                self.camera_retry = active
                    .camera
                    .map(|(i, r)| (i, r, Instant::now() + CAMERA_RETRY));
                self.source = None;
                self.events
                    .send(UiEvent::Camera(CameraStatus::Unavailable { why }));
            }
            // One bad frame says nothing about the next.
            Some(Err(FrameError::BadFrame { .. })) => {}
            Some(Ok(frame)) => self.decide_frame(&frame),
        }
    }

    fn decide_frame(&mut self, frame: &Frame) {
        if self
            .last_preview
            .is_none_or(|t| t.elapsed() >= PREVIEW_INTERVAL)
        {
            self.last_preview = Some(Instant::now());
            self.events.send(UiEvent::Preview(preview(&frame.image)));
        }
        let (found, _) = self.decoder.decode(&frame.image);
        let Some(found) = found else {
            // Nothing in view (not a stopped decoder, not several codes):
            // a code that stays away is gone, and comes back as a new
            // presentation.
            if self.decoder.last_miss().is_none() {
                self.gate.nothing_seen();
            }
            return;
        };
        // A code still held up to the camera comes back from the gate as a
        // repeat (its window slides with each sighting): not a new scan.
        self.scan(&found.text, Via::Camera);
    }

    fn scan(&mut self, text: &str, via: Via) {
        // An admin's enrolment code is not a ticket: hand it to the
        // enrolment screen, and keep the one-time code out of the scan log.
        if let Some(invite) = EnrollmentInvite::parse(text) {
            self.events.send(UiEvent::Invite(invite));
            return;
        }
        let now = self.now();
        let scan = match self.gate.scan(text, now) {
            Ok(scan) => scan,
            Err(e) => {
                self.events.send(UiEvent::LogFailed(e.to_string()));
                return;
            }
        };
        if let Some(record) = &scan.record {
            self.counters.add(record);
            self.events.send(UiEvent::Counters(self.counters));
            if let Ok(n) = self.gate.store().pending_count() {
                self.events.send(UiEvent::Pending(n));
            }
        }
        if scan.repeat && via == Via::Camera {
            self.events.send(UiEvent::Held);
            return;
        }
        let view = VerdictView::from_scan(&scan, self.gate.sessions(), via, now);
        self.events.send(UiEvent::Verdict(view));
    }
}

fn unavailable_reason(e: &FrameError) -> String {
    match e {
        FrameError::Unavailable(why) => why.clone(),
        other => other.to_string(),
    }
}

/// A frame scaled down for the preview panel.
pub fn preview(frame: &image::GrayImage) -> egui::ColorImage {
    let (w, h) = frame.dimensions();
    let scaled;
    let img = if w.max(h) > PREVIEW_MAX_SIDE {
        let k = f64::from(PREVIEW_MAX_SIDE) / f64::from(w.max(h));
        let (sw, sh) = (
            ((f64::from(w) * k) as u32).max(1),
            ((f64::from(h) * k) as u32).max(1),
        );
        scaled = image::imageops::thumbnail(frame, sw, sh);
        &scaled
    } else {
        frame
    };
    egui::ColorImage::from_gray([img.width() as usize, img.height() as usize], img.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_downscaled_keeping_the_aspect() {
        let frame = image::GrayImage::from_pixel(1280, 720, image::Luma([10]));
        let p = preview(&frame);
        assert_eq!(p.size, [480, 270]);
        let small = image::GrayImage::from_pixel(320, 240, image::Luma([10]));
        assert_eq!(preview(&small).size, [320, 240]);
    }
}
