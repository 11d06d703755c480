//! The gate's decision: a decoded string in, a logged verdict out.
//!
//! [`Gate`] keeps in memory what a decision needs (keyring, revocation list,
//! sessions and their entry rules, entries seen here and at other gates) and
//! the store where every decision is logged. [`Gate::scan`] verifies with the
//! shared crate, applies the session's entry rule, appends the scan to the log
//! durably, and only then returns the verdict to show. An admission is signed
//! with the device's own key as it is logged, so that other gates can check
//! it when the server relays it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey};
use jo_shared::api::{EntryRule, GateSession, ScanId, ScanRecord, ScanVerdict};
use jo_shared::revocation::RevocationList;
use jo_shared::signing::Keyring;
use jo_shared::ticket::{TicketId, TicketPayload};
use jo_shared::verify::{EntryLookup, PriorEntry, Verdict, VerifyContext, verify};

use crate::store::{Store, StoreError};

/// Clock skew tolerated between the issuing server and this device.
pub const DEFAULT_SKEW_SECS: i64 = 300;

/// The same code seen again within this time of its last sighting is the same
/// presentation (held up to the camera; the decoder misses frames now and then),
/// not a new scan.
pub const DEFAULT_REPEAT_WINDOW: Duration = Duration::from_secs(4);

/// Consecutive frames without any code after which the last code has left
/// the camera's view: its next sighting is a new presentation, logged and
/// decided again (a screenshot shown right behind the first holder is
/// answered DÉJÀ UTILISÉ, not left on the first one's green). Eight frames
/// are a quarter of a second at 30 fps: less than anyone takes to hand a
/// phone over, more than a held code's occasional missed frames.
pub const LEFT_AFTER_EMPTY_FRAMES: u32 = 8;

/// A decision, as shown and logged.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The verdict.
    pub verdict: Verdict,
    /// The logged record (`None` for a repeat of the previous code, which is
    /// not a new scan).
    pub record: Option<ScanRecord>,
    /// Whether this is the same code as the previous scan, within the repeat window.
    pub repeat: bool,
}

/// What a background sync hands to the gate (see [`Gate::install`]).
#[derive(Debug, Clone)]
pub struct Synced {
    /// The keyring as synced.
    pub keyring: Keyring,
    /// Every session, with whether this gate serves it.
    pub sessions: Vec<(GateSession, bool)>,
    /// The revocation list, when it changed.
    pub revocations: Option<RevocationList>,
    /// Entries other gates uploaded since the last sync, each verified
    /// against the signed device list.
    pub entries: Vec<jo_shared::api::RemoteEntry>,
}

/// The enrolled device's identity, which signs its admissions.
struct Identity {
    device_id: String,
    key: SigningKey,
}

impl Identity {
    fn of(store: &Store) -> Result<Option<Self>, StoreError> {
        Ok(store.enrollment()?.map(|e| Self {
            device_id: e.device_id,
            key: SigningKey::from_bytes(&e.secret_key),
        }))
    }
}

/// Admissions of one ticket, oldest first.
type Admissions = HashMap<TicketId, Vec<PriorEntry>>;

/// The gate's state and log.
pub struct Gate {
    store: Store,
    keyring: Keyring,
    revocations: RevocationList,
    sessions: Vec<GateSession>,
    served: Vec<u32>,
    admissions: Admissions,
    gate: String,
    identity: Option<Identity>,
    skew_secs: i64,
    repeat_window: Duration,
    last: Option<(String, Instant, Verdict)>,
    /// Frames in a row with no code since the last sighting.
    empty_frames: u32,
}

/// Applies a session's entry rule to the admissions known.
struct RuleLookup<'a> {
    admissions: &'a Admissions,
    sessions: &'a [GateSession],
}

impl EntryLookup for RuleLookup<'_> {
    fn prior_entry(&self, ticket: &TicketPayload) -> Option<PriorEntry> {
        let seen = self.admissions.get(&ticket.ticket_id)?;
        let rule = self
            .sessions
            .iter()
            .find(|s| s.id == ticket.session_id)
            .map_or(EntryRule::Single, |s| s.entry_rule);
        let allowed = match rule {
            EntryRule::Single => 1,
            EntryRule::Multiple { max_entries } => max_entries.max(1) as usize,
        };
        // Used up: show the latest entry (when and where it last went in).
        (seen.len() >= allowed)
            .then(|| seen.last().cloned())
            .flatten()
    }
}

impl Gate {
    /// Loads the gate's state from its store.
    pub fn load(store: Store) -> Result<Self, StoreError> {
        let keyring = store.keyring()?;
        let revocations = store.revocations()?;
        let all = store.sessions()?;
        let served = all
            .iter()
            .filter(|(_, sel)| *sel)
            .map(|(s, _)| s.id)
            .collect();
        let sessions = all.into_iter().map(|(s, _)| s).collect();
        let gate = store.gate()?;
        let identity = Identity::of(&store)?;
        let mut admissions: Admissions = HashMap::new();
        let mut known = store.known_entries()?;
        known.sort_by_key(|e| e.scanned_at);
        for e in known {
            admissions.entry(e.ticket_id).or_default().push(PriorEntry {
                scanned_at: e.scanned_at,
                gate: e.gate,
            });
        }
        Ok(Self {
            store,
            keyring,
            revocations,
            sessions,
            served,
            admissions,
            gate,
            identity,
            skew_secs: DEFAULT_SKEW_SECS,
            repeat_window: DEFAULT_REPEAT_WINDOW,
            last: None,
            empty_frames: 0,
        })
    }

    /// Sets how long the same code counts as one scan.
    pub fn set_repeat_window(&mut self, window: Duration) {
        self.repeat_window = window;
    }

    /// The store (for sync and the UI's counters).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Mutable store access.
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Reloads everything from the store (after a sync changed it).
    pub fn reload(&mut self) -> Result<(), StoreError> {
        let store = std::mem::replace(&mut self.store, Store::in_memory()?);
        let window = self.repeat_window;
        *self = Self::load(store)?;
        self.repeat_window = window;
        Ok(())
    }

    /// Takes what a background sync brought, without rereading the store (a
    /// large revocation list would hold up scanning): the keyring and the
    /// sessions as synced, the list when it changed, and other gates' new
    /// entries, merged with this gate's own admissions. The device's
    /// identity is read again (one row): an enrolment made by the sync
    /// thread changes the key admissions are signed with.
    pub fn install(&mut self, synced: Synced) {
        // A store that cannot be read keeps the identity held; the next
        // scan, which must write to the same store, reports the failure.
        if let Ok(identity) = Identity::of(&self.store) {
            self.identity = identity;
        }
        self.keyring = synced.keyring;
        self.served = synced
            .sessions
            .iter()
            .filter(|(_, sel)| *sel)
            .map(|(s, _)| s.id)
            .collect();
        self.sessions = synced.sessions.into_iter().map(|(s, _)| s).collect();
        if let Some(list) = synced.revocations {
            self.revocations = list;
        }
        for e in synced.entries {
            let seen = self.admissions.entry(e.ticket_id).or_default();
            seen.push(PriorEntry {
                scanned_at: e.scanned_at,
                gate: e.gate,
            });
            seen.sort_by_key(|p| p.scanned_at);
        }
    }

    /// Sets the gate's name and the sessions it serves, in the store and here.
    pub fn configure(&mut self, gate: &str, sessions: &[u32]) -> Result<(), StoreError> {
        self.store.set_gate(gate)?;
        self.store.select_sessions(sessions)?;
        self.gate = gate.to_owned();
        self.served = self
            .sessions
            .iter()
            .map(|s| s.id)
            .filter(|id| sessions.contains(id))
            .collect();
        Ok(())
    }

    /// Whether the gate holds any key to verify tickets with.
    pub fn has_keys(&self) -> bool {
        !self.keyring.entries().is_empty()
    }

    /// The sessions known, for display.
    pub fn sessions(&self) -> &[GateSession] {
        &self.sessions
    }

    /// Tells the gate that a whole frame held no code. After
    /// [`LEFT_AFTER_EMPTY_FRAMES`] of them the last code has left the view,
    /// and showing it again is a new presentation. Frames that could not
    /// be decoded at all (a decoder stopped by its guard) are no evidence
    /// either way and are not reported.
    pub fn nothing_seen(&mut self) {
        self.empty_frames = self.empty_frames.saturating_add(1);
        if self.empty_frames >= LEFT_AFTER_EMPTY_FRAMES {
            self.last = None;
        }
    }

    /// Decides on a scanned string at device time `now` (Unix seconds), logs
    /// the decision durably, and returns it. A failure to log is an error: a
    /// verdict that is not in the log is never shown.
    pub fn scan(&mut self, text: &str, now: i64) -> Result<Scan, StoreError> {
        let text = text.trim();
        self.empty_frames = 0;
        if let Some((last, seen, verdict)) = &mut self.last
            && last == text
            && seen.elapsed() < self.repeat_window
        {
            // The window slides with each sighting: a code held up to the
            // camera for a minute is still one presentation.
            *seen = Instant::now();
            return Ok(Scan {
                verdict: verdict.clone(),
                record: None,
                repeat: true,
            });
        }
        let lookup = RuleLookup {
            admissions: &self.admissions,
            sessions: &self.sessions,
        };
        let verdict = verify(
            text,
            &VerifyContext {
                keyring: &self.keyring,
                sessions: &self.served,
                now,
                skew_secs: self.skew_secs,
                revocations: &self.revocations,
                entries: &lookup,
            },
        );
        let ticket = verdict.ticket();
        let mut record = ScanRecord {
            scan_id: ScanId::generate()
                .map_err(|e| StoreError::Corrupt(format!("no scan id: {e}")))?,
            seq: 0,
            prev_hash: String::new(),
            ticket_id: ticket.map(|t| t.ticket_id),
            session_id: ticket.map(|t| t.session_id),
            // The scanned text, always: for an admission it is the signed
            // ticket, which the server checks (an admission without it is
            // not believed); for anything else it is the evidence. Bounded
            // by the QR string limit so a hostile code cannot bloat the log.
            raw: Some(
                text.chars()
                    .take(jo_shared::qr::MAX_QR_STRING_LEN + 1)
                    .collect(),
            ),
            verdict: match verdict {
                Verdict::Admit { .. } => ScanVerdict::Admit,
                Verdict::Refuse { .. } => ScanVerdict::Refuse,
                Verdict::AlreadyUsed { .. } => ScanVerdict::Used,
            },
            reason: verdict.reason_code().map(str::to_owned),
            admits: match &verdict {
                Verdict::Admit { ticket } => ticket.admits,
                _ => 0,
            },
            gate: self.gate.clone(),
            scanned_at: now,
            signature: None,
        };
        // Signed before it is logged, so the log (and the upload) carries
        // the signature. The signature does not enter the record's hash:
        // the scan id it covers is already fixed.
        if let Some(id) = &self.identity
            && let Some(admission) = record.admission(&id.device_id)
        {
            let message = jo_shared::trust::admission_message(&admission);
            record.signature = Some(hex::encode(id.key.sign(&message).to_bytes()));
        }
        let record = self.store.append_scan(record)?;
        if let Verdict::Admit { ticket } = &verdict {
            self.admissions
                .entry(ticket.ticket_id)
                .or_default()
                .push(PriorEntry {
                    scanned_at: now,
                    gate: self.gate.clone(),
                });
        }
        self.last = Some((text.to_owned(), Instant::now(), verdict.clone()));
        Ok(Scan {
            verdict,
            record: Some(record),
            repeat: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use jo_shared::qr;
    use jo_shared::signing::{KeyId, TicketSigner};
    use jo_shared::ticket::HolderName;

    const NOW: i64 = 1_785_000_000;

    fn session(id: u32, rule: EntryRule) -> GateSession {
        GateSession {
            id,
            sport: "Escrime".into(),
            title: "Sabre".into(),
            venue: "Grand Palais".into(),
            starts_at: NOW,
            ends_at: NOW + 7200,
            doors_open_at: NOW - 3600,
            entry_rule: rule,
        }
    }

    fn ticket(s: &TicketSigner, id: u8, session_id: u32) -> String {
        let p = TicketPayload {
            key_id: KeyId([0; 4]),
            ticket_id: TicketId([id; 10]),
            session_id,
            admits: 2,
            valid_from: (NOW - 3600) as u32,
            valid_minutes: 300,
            holder: HolderName::shorten("Léa Martin"),
        };
        qr::encode_string(&s.sign_ticket(&p).expect("signs"))
    }

    fn gate(s: &TicketSigner) -> Gate {
        let mut store = Store::in_memory().expect("store");
        let mut key = [0u8; 32];
        key.copy_from_slice(s.verifying_key().as_bytes());
        store
            .replace_keyring(&[(s.key_id(), key, false)])
            .expect("keyring");
        store
            .replace_sessions(&[
                session(1, EntryRule::Single),
                session(2, EntryRule::Multiple { max_entries: 2 }),
            ])
            .expect("sessions");
        store.set_gate("Porte A").expect("gate");
        let mut g = Gate::load(store).expect("loads");
        g.set_repeat_window(Duration::ZERO);
        g
    }

    #[test]
    fn second_scan_of_a_single_entry_ticket_is_already_used() {
        let s = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let mut g = gate(&s);
        let code = ticket(&s, 1, 1);
        assert!(matches!(
            g.scan(&code, NOW).expect("logs").verdict,
            Verdict::Admit { .. }
        ));
        match g.scan(&code, NOW + 30).expect("logs").verdict {
            Verdict::AlreadyUsed { prior, .. } => {
                assert_eq!(prior.scanned_at, NOW);
                assert_eq!(prior.gate, "Porte A");
            }
            other => panic!("expected used, got {other:?}"),
        }
        let log = g.store().all_scans().expect("log");
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].prev_hash, hex::encode(log[0].hash()));
        assert_eq!(log[1].reason.as_deref(), Some("already_used"));
    }

    #[test]
    fn multi_entry_sessions_allow_their_count() {
        let s = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let mut g = gate(&s);
        let code = ticket(&s, 2, 2);
        assert!(matches!(
            g.scan(&code, NOW).expect("logs").verdict,
            Verdict::Admit { .. }
        ));
        assert!(matches!(
            g.scan(&code, NOW + 1).expect("logs").verdict,
            Verdict::Admit { .. }
        ));
        assert!(matches!(
            g.scan(&code, NOW + 2).expect("logs").verdict,
            Verdict::AlreadyUsed { .. }
        ));
    }

    #[test]
    fn same_code_held_in_front_of_the_camera_is_one_scan() {
        let s = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let mut g = gate(&s);
        g.set_repeat_window(Duration::from_secs(60));
        let code = ticket(&s, 3, 1);
        let first = g.scan(&code, NOW).expect("logs");
        let again = g.scan(&code, NOW).expect("logs");
        assert!(matches!(first.verdict, Verdict::Admit { .. }));
        assert!(again.repeat && again.record.is_none());
        assert!(matches!(again.verdict, Verdict::Admit { .. }));
        assert_eq!(g.store().all_scans().expect("log").len(), 1);
    }

    #[test]
    fn the_repeat_window_slides_while_the_code_is_held() {
        let s = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let mut g = gate(&s);
        g.set_repeat_window(Duration::from_millis(300));
        let code = ticket(&s, 5, 1);
        assert!(!g.scan(&code, NOW).expect("logs").repeat);
        // Seen every 200 ms for 1 s: longer than the window, never a gap as long.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(200));
            assert!(g.scan(&code, NOW).expect("logs").repeat);
        }
        // Taken away longer than the window, then shown again: a new scan.
        std::thread::sleep(Duration::from_millis(400));
        let again = g.scan(&code, NOW).expect("logs");
        assert!(!again.repeat);
        assert!(matches!(again.verdict, Verdict::AlreadyUsed { .. }));
        assert_eq!(g.store().all_scans().expect("log").len(), 2);
    }

    #[test]
    fn a_code_that_left_the_view_and_came_back_is_a_new_presentation() {
        let s = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let mut g = gate(&s);
        g.set_repeat_window(Duration::from_secs(600));
        let code = ticket(&s, 7, 1);
        assert!(matches!(
            g.scan(&code, NOW).expect("logs").verdict,
            Verdict::Admit { .. }
        ));
        // A few missed frames while it is held: still the same presentation.
        for _ in 0..LEFT_AFTER_EMPTY_FRAMES - 1 {
            g.nothing_seen();
        }
        assert!(g.scan(&code, NOW).expect("logs").repeat);
        // Taken away, then shown again (a screenshot behind the holder).
        for _ in 0..LEFT_AFTER_EMPTY_FRAMES {
            g.nothing_seen();
        }
        let again = g.scan(&code, NOW + 2).expect("logs");
        assert!(!again.repeat);
        assert!(matches!(again.verdict, Verdict::AlreadyUsed { .. }));
        assert_eq!(g.store().all_scans().expect("log").len(), 2);
    }

    #[test]
    fn an_admission_is_logged_with_its_ticket_text_and_the_devices_signature() {
        use jo_shared::api::SignedKeyring;
        let s = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let mut g = gate(&s);
        let device = SigningKey::from_bytes(&[9; 32]);
        let mut ring = Keyring::new();
        ring.add(s.verifying_key()).expect("adds");
        g.store_mut()
            .save_enrollment(
                &crate::store::Enrollment {
                    server_url: "https://billets.example.fr".into(),
                    device_id: "dev-a".into(),
                    token: "t".into(),
                    secret_key: device.to_bytes(),
                },
                &SignedKeyring::sign(1, &ring, &[&s]),
                NOW,
            )
            .expect("enrols");
        g.store_mut().set_gate("Porte A").expect("gate");
        g.reload().expect("reload");
        let code = ticket(&s, 6, 1);
        g.scan(&code, NOW).expect("logs");
        g.scan("garbage!", NOW).expect("logs");
        let log = g.store().all_scans().expect("log");
        assert_eq!(log[0].raw.as_deref(), Some(code.as_str()));
        let sig = log[0].signature.as_deref().expect("signed");
        let admission = log[0].admission("dev-a").expect("an admission");
        jo_shared::trust::verify_admission(device.verifying_key().as_bytes(), &admission, sig)
            .expect("verifies with the device key");
        // Only admissions are signed; refusals keep their evidence.
        assert_eq!(log[1].signature, None);
        assert_eq!(log[1].raw.as_deref(), Some("garbage!"));
    }

    #[test]
    fn refusals_are_logged_with_their_raw_code() {
        let s = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let mut g = gate(&s);
        let v = g.scan("garbage!", NOW).expect("logs");
        assert_eq!(v.verdict.reason_code(), Some("bad_encoding"));
        let log = g.store().all_scans().expect("log");
        assert_eq!(log[0].raw.as_deref(), Some("garbage!"));
        assert_eq!(log[0].verdict, ScanVerdict::Refuse);
        // A session the gate does not serve.
        g.store_mut().select_sessions(&[2]).expect("select");
        g.reload().expect("reload");
        let v = g.scan(&ticket(&s, 4, 1), NOW).expect("logs");
        assert_eq!(v.verdict.reason_code(), Some("wrong_session"));
    }
}
