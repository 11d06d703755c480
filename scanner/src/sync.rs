//! Talking to the server's sync API (`jo_shared::api`): enrolment, then
//! keyring, sessions, revocations and other gates' entries down, the scan log
//! up.
//!
//! Everything here is blocking and runs on the caller's thread: the `enroll`
//! and `sync` subcommands, or the GUI's background sync thread. The scanning
//! thread never waits for it; it decides with what the store already holds.
//!
//! A sync is a series of independent, idempotent steps, each committed to the
//! store as it succeeds, so a network lost half-way loses nothing: the next
//! attempt goes on from the cursors.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use jo_shared::api::{
    self, ApiError, EnrollRequest, EnrollResponse, EntriesResponse, KeyringResponse, RemoteEntry,
    RevocationDelta, ScanBatch, ScanBatchResponse, SessionsResponse, TokenResponse,
};
use jo_shared::revocation::{RevocationError, RevocationList};
use jo_shared::signing::{KeyId, Keyring, verifying_key_from_bytes};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Enrollment, Store, StoreError};

/// Records per upload batch: small enough to stay far below the server's
/// body cap, large enough that 10,000 queued scans go up in a few requests.
pub const UPLOAD_BATCH: usize = 500;

/// Longest a request may take before the attempt counts as offline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest the TCP connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);

/// Guard against a server that keeps answering "more": no sync loops forever.
const MAX_PAGES: usize = 100_000;

/// Sync state key of the entries cursor.
const ENTRIES_CURSOR: &str = "entries_cursor";

/// Sync state key of the last successful sync (Unix seconds).
pub const LAST_SYNC_AT: &str = "last_sync_at";

/// Why talking to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The device has no enrolment.
    #[error("this device is not enrolled (jo-scanner enroll)")]
    NotEnrolled,
    /// The server could not be reached (no network, timeout, refused).
    #[error("server unreachable: {0}")]
    Offline(String),
    /// The server refuses this device: revoked, or its token is no longer valid.
    #[error("the server refuses this device (revoked or unknown): enrol it again")]
    Unauthorized,
    /// Too many requests; try again later.
    #[error("the server asks to slow down")]
    RateLimited,
    /// The server failed (5xx).
    #[error("server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
    /// The server refused the request (4xx other than 401/429).
    #[error("refused by the server ({status} {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Its error code.
        code: String,
        /// What it said.
        message: String,
    },
    /// The server sent something this device cannot accept.
    #[error("unusable answer from the server: {0}")]
    BadAnswer(String),
    /// The revocation list does not verify (cut, altered, wrong key): kept as it was.
    #[error("revocation list refused: {0}")]
    BadList(#[from] RevocationError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// Whether retrying later may help (network, server trouble, slow-down).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Offline(_) | Self::RateLimited | Self::Server { .. }
        )
    }
}

/// What one sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The keyring changed.
    pub keyring_changed: bool,
    /// The sessions changed.
    pub sessions_changed: bool,
    /// Revocations added.
    pub revocations_added: usize,
    /// Entries from other gates learned.
    pub entries: Vec<RemoteEntry>,
    /// Scans uploaded (stored now or already there).
    pub uploaded: u64,
    /// Of those, already stored by an earlier attempt.
    pub duplicates: u64,
    /// Conflicts the server reported.
    pub conflicts: u64,
    /// Scans still waiting.
    pub pending: u64,
    /// Device clock minus server clock, seconds (from the server's answers).
    pub skew_secs: Option<i64>,
}

impl SyncReport {
    /// Whether the gate's decisions need the new data.
    pub fn changes_decisions(&self) -> bool {
        self.keyring_changed
            || self.sessions_changed
            || self.revocations_added > 0
            || !self.entries.is_empty()
    }
}

/// Progress callback: `(done, total)` items of the current step.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// An HTTP client for one server.
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    token: Option<String>,
    /// Device clock minus server clock, from the last answer's `Date`.
    skew: Option<i64>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Normalises a server URL typed by a person: trims, requires http(s), drops
/// the trailing slash.
pub fn normalise_server_url(url: &str) -> Result<String, SyncError> {
    let url = url.trim().trim_end_matches('/');
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= 512
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if !ok {
        return Err(SyncError::BadAnswer(format!(
            "server URL must start with http:// or https:// (got {url:?})"
        )));
    }
    reqwest::Url::parse(url)
        .map_err(|e| SyncError::BadAnswer(format!("server URL {url:?}: {e}")))?;
    Ok(url.to_owned())
}

impl Client {
    /// A client for `base` (e.g. `https://billets.example.fr`), with `token`
    /// for device routes.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, SyncError> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("jo-scanner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Offline(e.to_string()))?;
        Ok(Self {
            http,
            base: normalise_server_url(base)?,
            token,
            skew: None,
        })
    }

    /// Device clock minus server clock, seconds, as last measured.
    pub fn skew_secs(&self) -> Option<i64> {
        self.skew
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send<T: DeserializeOwned>(
        &mut self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<T, SyncError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let sent_at = now_secs();
        let res = req.send().map_err(|e| SyncError::Offline(transport(&e)))?;
        if let Some(server) = res
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        {
            self.skew = Some(sent_at - server.timestamp());
        }
        let status = res.status();
        if status.is_success() {
            return res
                .json::<T>()
                .map_err(|e| SyncError::BadAnswer(e.to_string()));
        }
        let code = status.as_u16();
        if code == 401 {
            return Err(SyncError::Unauthorized);
        }
        if code == 429 {
            return Err(SyncError::RateLimited);
        }
        let body = res.text().unwrap_or_default();
        let err: ApiError = serde_json::from_str(&body).unwrap_or(ApiError {
            error: status.canonical_reason().unwrap_or("error").to_owned(),
            message: body.chars().take(300).collect(),
        });
        if status.is_server_error() {
            Err(SyncError::Server {
                status: code,
                message: err.message,
            })
        } else {
            Err(SyncError::Rejected {
                status: code,
                code: err.error,
                message: err.message,
            })
        }
    }

    fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, SyncError> {
        let req = self.http.get(self.url(path));
        self.send(req)
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &mut self,
        path: &str,
        body: &B,
    ) -> Result<T, SyncError> {
        let req = self.http.post(self.url(path)).json(body);
        self.send(req)
    }
}

/// A transport error in a few words (reqwest's Display hides the cause).
fn transport(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// Enrols this device: makes its key pair, trades the one-time code for a
/// device id and token, and stores all of it. An earlier enrolment is
/// replaced; the scan log and synced data are kept.
pub fn enroll(
    store: &mut Store,
    server_url: &str,
    code: &str,
    label: &str,
) -> Result<EnrollResponse, SyncError> {
    let server_url = normalise_server_url(server_url)?;
    let mut secret = [0u8; 32];
    jo_shared::doublekey::random_bytes(&mut secret)
        .map_err(|e| SyncError::BadAnswer(e.to_string()))?;
    let key = SigningKey::from_bytes(&secret);
    let mut client = Client::new(&server_url, None)?;
    let answer: EnrollResponse = client.post(
        api::paths::ENROLL,
        &EnrollRequest {
            code: code.trim().to_owned(),
            device_public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
            label: label.trim().chars().take(64).collect(),
        },
    )?;
    if answer.device_id.is_empty() || answer.token.is_empty() {
        return Err(SyncError::BadAnswer("empty device id or token".into()));
    }
    store.save_enrollment(
        &Enrollment {
            server_url,
            device_id: answer.device_id.clone(),
            token: answer.token.clone(),
            secret_key: secret,
        },
        now_secs(),
    )?;
    Ok(answer)
}

/// Replaces the device's token with a fresh one from the server.
pub fn roll_token(store: &mut Store) -> Result<(), SyncError> {
    let e = store.enrollment()?.ok_or(SyncError::NotEnrolled)?;
    let mut client = Client::new(&e.server_url, Some(e.token))?;
    let answer: TokenResponse = client.post(api::paths::TOKEN, &serde_json::json!({}))?;
    if answer.token.is_empty() {
        return Err(SyncError::BadAnswer("empty token".into()));
    }
    store.set_token(&answer.token)?;
    Ok(())
}

/// The keyring an answer describes; every key id must match its key.
fn keyring_of(answer: &KeyringResponse) -> Result<Vec<(KeyId, [u8; 32], bool)>, SyncError> {
    answer
        .keys
        .iter()
        .map(|k| {
            let raw = URL_SAFE_NO_PAD
                .decode(k.public_key.as_bytes())
                .map_err(|e| SyncError::BadAnswer(format!("public key: {e}")))?;
            let raw: [u8; 32] = raw
                .try_into()
                .map_err(|_| SyncError::BadAnswer("public key length".into()))?;
            let vk = verifying_key_from_bytes(&raw)
                .ok_or_else(|| SyncError::BadAnswer("invalid public key".into()))?;
            if KeyId::of(&vk) != k.key_id {
                return Err(SyncError::BadAnswer(format!(
                    "key id {} does not match its key",
                    k.key_id.to_hex()
                )));
            }
            Ok((k.key_id, raw, k.withdrawn))
        })
        .collect()
}

fn same_keys(a: &Keyring, b: &[(KeyId, [u8; 32], bool)]) -> bool {
    a.entries().len() == b.len()
        && b.iter().all(|(id, key, withdrawn)| {
            a.entries()
                .iter()
                .any(|e| e.id == *id && e.key.as_bytes() == key && e.withdrawn == *withdrawn)
        })
}

/// One full sync: down (keyring, sessions, revocations, entries) then up
/// (the scan log). `list` is the caller's copy of the revocation list, kept
/// across syncs so that a large list is not reread each time; it is updated
/// in place and in the store together.
pub fn sync_once(
    store: &mut Store,
    list: &mut RevocationList,
    progress: Progress<'_>,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    sync_into(store, list, &mut report, progress)?;
    Ok(report)
}

/// [`sync_once`], filling `report` as each step commits, so that a sync cut
/// short still tells what it already stored (the entries cursor moved on:
/// the gate must be given those entries now, they will not come again).
pub fn sync_into(
    store: &mut Store,
    list: &mut RevocationList,
    report: &mut SyncReport,
    progress: Progress<'_>,
) -> Result<(), SyncError> {
    let e = store.enrollment()?.ok_or(SyncError::NotEnrolled)?;
    let mut client = Client::new(&e.server_url, Some(e.token.clone()))?;

    // Keyring first: the revocation list's signature is checked with it.
    let keys = keyring_of(&client.get::<KeyringResponse>(api::paths::KEYRING)?)?;
    report.skew_secs = client.skew_secs();
    let mut keyring = store.keyring()?;
    if !same_keys(&keyring, &keys) {
        store.replace_keyring(&keys)?;
        keyring = store.keyring()?;
        report.keyring_changed = true;
    }

    let sessions: SessionsResponse = client.get(api::paths::SESSIONS)?;
    let before: Vec<_> = store.sessions()?.into_iter().map(|(s, _)| s).collect();
    if before != sessions.sessions {
        store.replace_sessions(&sessions.sessions)?;
        report.sessions_changed = true;
    }

    // Revocations: deltas until one brings nothing new. Each is verified
    // against the signed state before anything is stored.
    for _ in 0..MAX_PAGES {
        let since = list.version();
        let delta: RevocationDelta =
            client.get(&format!("{}?since={since}", api::paths::REVOCATIONS))?;
        if delta.entries.is_empty() && delta.state.version == since {
            break;
        }
        let target = delta.state.version;
        let mut next = list.clone();
        let applied = next.apply(&delta, &keyring)?;
        store.add_revocations(&delta.entries, &next)?;
        *list = next;
        report.revocations_added += applied.added;
        progress(list.version(), target);
        if delta.entries.is_empty() {
            break;
        }
    }

    // Entries other gates uploaded, from the stored cursor.
    let mut cursor: u64 = store
        .get_state(ENTRIES_CURSOR)?
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    for _ in 0..MAX_PAGES {
        let page: EntriesResponse =
            client.get(&format!("{}?cursor={cursor}", api::paths::ENTRIES))?;
        let theirs: Vec<RemoteEntry> = page
            .entries
            .into_iter()
            .filter(|x| x.device_id != e.device_id)
            .collect();
        store.add_remote_entries(&theirs)?;
        if page.next_cursor < cursor {
            return Err(SyncError::BadAnswer("entries cursor went back".into()));
        }
        cursor = page.next_cursor;
        store.set_state(ENTRIES_CURSOR, &cursor.to_string())?;
        report.entries.extend(theirs);
        if !page.more {
            break;
        }
    }

    // Up: the log in order, in signed batches. The server stores a batch
    // whole or not at all, so a batch is marked uploaded only once answered.
    let key = SigningKey::from_bytes(&e.secret_key);
    let total = store.pending_count()?;
    for _ in 0..MAX_PAGES {
        let records = store.pending_scans(UPLOAD_BATCH)?;
        let Some(last) = records.last() else {
            break;
        };
        let message = api::batch_message(&e.device_id, last.seq, &last.hash());
        let n = records.len() as u64;
        let ids: Vec<_> = records.iter().map(|r| r.scan_id.clone()).collect();
        let batch = ScanBatch {
            signature: hex::encode(key.sign(&message).to_bytes()),
            pending: store.pending_count()?.saturating_sub(n),
            records,
        };
        let answer: ScanBatchResponse = client.post(api::paths::SCANS, &batch)?;
        store.mark_uploaded(&ids)?;
        report.uploaded += n;
        report.duplicates += answer.duplicates.len() as u64;
        report.conflicts += u64::from(answer.conflicts);
        progress(report.uploaded, total);
    }
    report.pending = store.pending_count()?;
    report.skew_secs = client.skew_secs();
    store.set_state(LAST_SYNC_AT, &now_secs().to_string())?;
    Ok(())
}

/// Waits between failed attempts: doubling from `base` up to `max`, with up
/// to a quarter of random jitter so that a hall of scanners coming back
/// online does not knock on the server in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff from `base` to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: 0,
        }
    }

    /// The wait after one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let plain = self.base.saturating_mul(1 << exp).min(self.max);
        let mut b = [0u8; 2];
        let jitter = if jo_shared::doublekey::random_bytes(&mut b).is_ok() {
            plain.mul_f64(f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 4.0)
        } else {
            Duration::ZERO
        };
        (plain + jitter).min(self.max)
    }

    /// Back to the shortest wait (after a success).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let d: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_secs(1) && d[0] <= Duration::from_millis(1250));
        assert!(d[1] >= Duration::from_secs(2) && d[1] <= Duration::from_millis(2500));
        assert!(d[3] >= Duration::from_secs(8));
        assert!(d.iter().all(|x| *x <= Duration::from_secs(60)));
        assert_eq!(d[9], Duration::from_secs(60));
        assert_eq!(b.failures(), 10);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1250));
    }

    #[test]
    fn server_urls_are_checked_and_normalised() {
        assert_eq!(
            normalise_server_url(" https://billets.example.fr/ ").expect("ok"),
            "https://billets.example.fr"
        );
        for bad in ["", "billets.example.fr", "ftp://x", "http://a b", "http://"] {
            assert!(normalise_server_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_enrolled_is_said_before_any_network() {
        let mut store = Store::in_memory().expect("store");
        let mut list = RevocationList::new();
        assert!(matches!(
            sync_once(&mut store, &mut list, &mut |_, _| {}),
            Err(SyncError::NotEnrolled)
        ));
    }

    #[test]
    fn an_unreachable_server_is_offline_and_transient() {
        // Port 9 on loopback: nothing listens there in a test machine.
        let mut store = Store::in_memory().expect("store");
        let err = enroll(&mut store, "http://127.0.0.1:9", "CODE", "porte").expect_err("offline");
        assert!(matches!(err, SyncError::Offline(_)), "{err:?}");
        assert!(err.is_transient());
        assert_eq!(
            store.enrollment().expect("reads").map(|e| e.device_id),
            None
        );
    }

    #[test]
    fn a_keyring_whose_ids_lie_is_refused() {
        let signer = jo_shared::TicketSigner::generate().expect("key");
        let other = jo_shared::TicketSigner::generate().expect("key");
        let answer = KeyringResponse {
            keys: vec![api::KeyInfo {
                key_id: other.key_id(),
                public_key: URL_SAFE_NO_PAD.encode(signer.verifying_key().as_bytes()),
                withdrawn: false,
            }],
        };
        assert!(matches!(keyring_of(&answer), Err(SyncError::BadAnswer(_))));
        let good = KeyringResponse {
            keys: vec![api::KeyInfo {
                key_id: signer.key_id(),
                public_key: URL_SAFE_NO_PAD.encode(signer.verifying_key().as_bytes()),
                withdrawn: true,
            }],
        };
        let keys = keyring_of(&good).expect("valid");
        assert_eq!(keys.len(), 1);
        assert!(keys[0].2);
    }
}
