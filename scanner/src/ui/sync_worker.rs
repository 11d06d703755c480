//! The background sync thread: enrols when asked, then syncs whenever the
//! server is reachable — at start, every [`SYNC_INTERVAL`], and on demand —
//! backing off exponentially while it is not. It never touches the scanning
//! thread's state directly: it commits to the store through its own
//! connection and hands the new data over with [`Command::Synced`].

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use super::worker::{Alarm, Command, Notifier, SyncProgress, SyncStatus, UiEvent};
use crate::gate::Synced;
use crate::store::Store;
use crate::sync::{self, Backoff, SyncError, SyncReport};

/// Time between syncs while online: short, so that a ticket admitted at
/// another gate is refused here within seconds.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(10);

/// First wait after a failure; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);

/// Longest wait between attempts while offline.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Wait before asking again once the server refused this device.
const REFUSED_RETRY: Duration = Duration::from_secs(300);

/// What the UI asks of the sync thread.
#[derive(Debug)]
pub enum SyncRequest {
    /// Sync now (the "Sync now" button).
    Now,
    /// Enrol with a server.
    Enroll {
        /// Server base URL.
        server: String,
        /// One-time code.
        code: String,
        /// Device label.
        label: String,
        /// Fingerprint of the server's keyring, from the admin's enrolment
        /// QR or typed in (`None`: trust on first use).
        keyring_fingerprint: Option<[u8; 32]>,
    },
    /// The LAN settings changed: stop the peer node and start it again
    /// from the saved settings.
    RestartPeers,
    /// Stop.
    Shutdown,
}

/// The UI's handle on the sync thread.
pub struct SyncHandle {
    requests: Sender<SyncRequest>,
}

impl SyncHandle {
    /// Sends a request; `false` if the thread has stopped.
    pub fn send(&self, request: SyncRequest) -> bool {
        self.requests.send(request).is_ok()
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        // Not joined: a request in flight may take up to its timeout, and the
        // store is safe to abandon mid-transaction (SQLite rolls it back).
        let _ = self.requests.send(SyncRequest::Shutdown);
    }
}

/// How the sync thread runs.
#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Time between syncs while online.
    pub interval: Duration,
    /// Past this age (server clock) the revocation list held is an alarm
    /// while the server answers.
    pub max_list_age_secs: u64,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            interval: SYNC_INTERVAL,
            max_list_age_secs: sync::DEFAULT_MAX_LIST_AGE_SECS,
        }
    }
}

/// Starts the sync thread on the store in `state_dir`.
pub fn spawn(
    state_dir: PathBuf,
    events: Notifier,
    gate: Sender<Command>,
    options: SyncOptions,
) -> std::io::Result<SyncHandle> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("scanner-sync".into())
        .spawn(move || run(&state_dir, &events, &gate, &rx, options))?;
    Ok(SyncHandle { requests: tx })
}

/// The alarms one sync leaves on screen: what it refused, and a list that
/// is too old while the server answers (offline, an old list is expected).
pub fn alarms(
    report: &SyncReport,
    online: bool,
    list_age_secs: i64,
    max_age_secs: u64,
) -> Vec<Alarm> {
    let mut out = Vec::new();
    for f in &report.failures {
        let alarm = match &f.error {
            SyncError::RevocationsBehind(_) => Alarm::RevocationsBehind,
            SyncError::KeyringRefused(_) => Alarm::KeyringRefused,
            SyncError::DeviceListRefused(_) => Alarm::DeviceListRefused,
            _ => continue,
        };
        if !out.contains(&alarm) {
            out.push(alarm);
        }
    }
    if online && list_age_secs > i64::try_from(max_age_secs).unwrap_or(i64::MAX) {
        out.push(Alarm::ListStale {
            age_secs: list_age_secs,
        });
    }
    if report.entries_refused > 0 {
        out.push(Alarm::EntriesRefused {
            count: report.entries_refused,
        });
    }
    out
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Starts the live threads, which hand each entry they learn to the gate
/// at once (the same way a sync does). Without them the periodic sync
/// still brings everything, only later.
fn start_live(dir: &std::path::Path, gate: &Sender<Command>) -> Option<sync::live::Live> {
    let gate = gate.clone();
    let started = sync::live::spawn(dir, move |store, entries| {
        if let (Ok(keyring), Ok(sessions)) = (store.keyring(), store.sessions()) {
            let synced = Synced {
                keyring,
                sessions,
                revocations: None,
                entries,
            };
            let _ = gate.send(Command::Synced(Box::new(synced)));
        }
    });
    match started {
        Ok(live) => {
            crate::peers::board().set_live(live.status.clone());
            Some(live)
        }
        Err(e) => {
            eprintln!("jo-scanner: live sync off: {e}");
            None
        }
    }
}

/// Starts the LAN peer node when the settings ask for it; what it learns
/// goes to the gate at once. `Some(None)`: off by the settings (not tried
/// again); `None` after a failure is tried again at the next round.
fn start_peers(
    dir: &std::path::Path,
    gate: &Sender<Command>,
) -> Option<Option<crate::peers::Peers>> {
    let settings = super::Settings::load(&super::Settings::path_in(dir));
    let Some(config) = settings.peer_config() else {
        return Some(None);
    };
    let gate = gate.clone();
    let learned_dir = dir.to_path_buf();
    let reader = std::sync::Mutex::new(None::<Store>);
    let started = crate::peers::spawn(dir, &config, move |entries| {
        let Ok(mut store) = reader.lock() else {
            return;
        };
        if store.is_none() {
            *store = Store::open(&learned_dir).ok();
        }
        let Some(store) = store.as_ref() else {
            return;
        };
        if let (Ok(keyring), Ok(sessions)) = (store.keyring(), store.sessions()) {
            let synced = Synced {
                keyring,
                sessions,
                revocations: None,
                entries,
            };
            let _ = gate.send(Command::Synced(Box::new(synced)));
        }
    });
    match started {
        Ok(p) => Some(Some(p)),
        Err(e) => {
            eprintln!("jo-scanner: {e}");
            None
        }
    }
}

/// Starts the peer node again after its settings changed. The node just
/// dropped lets go of its listening port within about a second (its accept
/// thread sees the stop flag), so a bind refused meanwhile is tried again,
/// a bounded number of times; after that the next sync round tries.
fn restart_peers(
    dir: &std::path::Path,
    gate: &Sender<Command>,
) -> Option<Option<crate::peers::Peers>> {
    for _ in 0..15 {
        if let Some(started) = start_peers(dir, gate) {
            return Some(started);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn run(
    dir: &std::path::Path,
    events: &Notifier,
    gate: &Sender<Command>,
    requests: &Receiver<SyncRequest>,
    options: SyncOptions,
) {
    let interval = options.interval;
    let mut status = SyncStatus::default();
    let mut store = match Store::open(dir) {
        Ok(s) => s,
        Err(e) => {
            status.error = Some(e.to_string());
            events.send(UiEvent::Sync(status));
            return;
        }
    };
    // The thread's own copy of the list, kept across syncs: only deltas are
    // applied, and the gate gets a copy when it changes.
    let mut list = match store.revocations() {
        Ok(l) => l,
        Err(e) => {
            status.error = Some(e.to_string());
            events.send(UiEvent::Sync(status));
            return;
        }
    };
    status.enrolled = matches!(store.enrollment(), Ok(Some(_)));
    status.last_sync_at = store
        .get_state(sync::LAST_SYNC_AT)
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok());
    // The live link (immediate upload, long-poll of other gates' entries)
    // runs beside the periodic sync once the device is enrolled.
    let mut live = None;
    let mut peers = None;
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut next = Instant::now();
    // After an enrolment the gate is handed the sync's result whatever it
    // brought: its identity (the key admissions are signed with) changed.
    let mut hand_over = false;
    loop {
        match requests.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok(SyncRequest::Now) | Err(RecvTimeoutError::Timeout) => {}
            Ok(SyncRequest::Enroll {
                server,
                code,
                label,
                keyring_fingerprint,
            }) => {
                let result = sync::enroll(
                    &mut store,
                    &server,
                    &code,
                    &label,
                    keyring_fingerprint.as_ref(),
                );
                match result {
                    Ok(enrolled) => {
                        status.enrolled = true;
                        status.revoked = false;
                        status.error = None;
                        status.alarms.clear();
                        backoff.reset();
                        hand_over = true;
                        events.send(UiEvent::Enrolled(Ok(enrolled.answer.device_id)));
                    }
                    Err(e) => {
                        events.send(UiEvent::Enrolled(Err(e.to_string())));
                        events.send(UiEvent::Sync(status.clone()));
                        continue;
                    }
                }
            }
            Ok(SyncRequest::RestartPeers) => {
                // Stopped first: the new node may listen on the same port.
                peers = None;
                if status.enrolled {
                    peers = restart_peers(dir, gate);
                }
            }
            Ok(SyncRequest::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
        }
        if status.enrolled && live.is_none() {
            live = start_live(dir, gate);
        }
        if status.enrolled && peers.is_none() {
            peers = start_peers(dir, gate);
        }
        if !status.enrolled {
            // Nothing to do until someone enrols the device.
            next = Instant::now() + Duration::from_secs(3600);
            events.send(UiEvent::Sync(status.clone()));
            continue;
        }
        status.progress = Some(SyncProgress { done: 0, total: 0 });
        events.send(UiEvent::Sync(status.clone()));
        let shown = status.clone();
        let mut report = sync::SyncReport::default();
        let result = sync::sync_into(&mut store, &mut list, &mut report, &mut |done, total| {
            let mut s = shown.clone();
            s.progress = Some(SyncProgress { done, total });
            events.send(UiEvent::Sync(s));
        });
        status.progress = None;
        // Whatever was stored, even by a sync cut short or with steps that
        // failed, goes to the gate now.
        if report.changes_decisions() || std::mem::take(&mut hand_over) {
            match (store.keyring(), store.sessions()) {
                (Ok(keyring), Ok(sessions)) => {
                    let synced = Synced {
                        keyring,
                        sessions,
                        revocations: (report.revocations_added > 0).then(|| list.clone()),
                        entries: std::mem::take(&mut report.entries),
                    };
                    let _ = gate.send(Command::Synced(Box::new(synced)));
                }
                (Err(e), _) | (_, Err(e)) => status.error = Some(e.to_string()),
            }
        }
        if let Ok(n) = store.pending_count() {
            events.send(UiEvent::Pending(n));
        }
        status.skew_secs = report.skew_secs.or(status.skew_secs);
        match &result {
            Ok(()) => {
                backoff.reset();
                status.online = true;
                status.revoked = false;
                status.error = None;
                status.last_sync_at = Some(unix_now());
                next = Instant::now() + interval;
            }
            Err(SyncError::Unauthorized) => {
                status.online = true;
                status.revoked = true;
                status.error = None;
                next = Instant::now() + REFUSED_RETRY;
            }
            Err(SyncError::Incomplete(_)) => {
                // The server answered and the other steps were done: keep
                // the normal pace, so entries and the upload keep flowing
                // while a step (a list behind, a refused chain) fails.
                backoff.reset();
                status.online = true;
                status.revoked = false;
                status.error = Some(
                    report
                        .failures
                        .iter()
                        .map(|f| format!("{}: {}", f.step.name(), f.error))
                        .collect::<Vec<_>>()
                        .join(" · "),
                );
                next = Instant::now() + interval;
            }
            Err(e) => {
                status.online = !matches!(e, SyncError::Offline(_));
                status.error = Some(e.to_string());
                next = Instant::now() + backoff.next_delay();
            }
        }
        let age = sync::list_age_secs(&list, status.skew_secs, unix_now());
        status.alarms = alarms(&report, status.online, age, options.max_list_age_secs);
        events.send(UiEvent::Sync(status.clone()));
    }
}
