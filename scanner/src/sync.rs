//! Talking to the server's sync API (`jo_shared::api`): enrolment, then the
//! scan log up, and keyring, device list, sessions, revocations and other
//! gates' entries down.
//!
//! Everything here is blocking and runs on the caller's thread: the `enroll`
//! and `sync` subcommands, or the GUI's background sync thread. The scanning
//! thread never waits for it; it decides with what the store already holds.
//!
//! A sync is a series of independent, idempotent steps ([`Step`]), each
//! committed to the store as it succeeds, so a network lost half-way loses
//! nothing: the next attempt goes on from the cursors. The upload runs first
//! and a step that fails (a chain the gate refuses, a server restored from
//! a back-up) does not stop the others; only a server out of reach, or one
//! that refuses the device, ends the attempt.
//!
//! Nothing that comes down is believed on the server's word alone
//! ([`jo_shared::trust`]): the keyring moves on only through statements
//! signed by a key the gate already trusts (pinned at enrolment), the device
//! list and the revocation list must verify with that keyring, and another
//! gate's entry counts only when its device's signature verifies.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use jo_shared::api::{
    self, ApiError, EnrollRequest, EnrollResponse, EntriesResponse, KeyringResponse, RemoteEntry,
    RevocationDelta, ScanBatch, ScanBatchResponse, SessionsResponse, SignedDeviceList,
    SignedKeyring, TokenResponse,
};
use jo_shared::revocation::{RevocationError, RevocationList};
use jo_shared::signing::Keyring;
use jo_shared::trust::{self, TrustError};
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
/// Sync state key: the PEM of the private certificate authority given at
/// enrolment (`--ca-cert`), trusted for every later request to the server.
pub const CA_CERT_PEM: &str = "ca_cert_pem";

/// Default oldest revocation list (by its signature time) a gate accepts
/// quietly while the server answers: a gate online whose list stops being
/// refreshed may be fed an old one by something in the way.
pub const DEFAULT_MAX_LIST_AGE_SECS: u64 = 600;

/// Age of a revocation list, seconds, on the server's clock: `now` is the
/// device's clock, `skew_secs` the device's lead over the server (when
/// measured), since the list's time is the server's.
pub fn list_age_secs(list: &RevocationList, skew_secs: Option<i64>, now: i64) -> i64 {
    now.saturating_sub(skew_secs.unwrap_or(0))
        .saturating_sub(list.issued_at())
}

/// Why talking to the server failed, or what the gate refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    /// The device has no enrolment.
    #[error("this device is not enrolled (jo-scanner enroll)")]
    NotEnrolled,
    /// A plain `http://` server other than this machine: anyone on the
    /// venue network could read the token and answer in the server's place.
    #[error(
        "refusing plain http:// to {0}: a gate talks to its server over https:// \
         (plain http is allowed only to this machine: 127.0.0.0/8, ::1, localhost)"
    )]
    InsecureServer(String),
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
    /// The keyring offered does not follow from the one pinned (forged,
    /// older, skipped or rewritten), or does not match the enrolment
    /// code's fingerprint. The gate keeps the keys it had.
    #[error(
        "KEYRING REFUSED: {0}. The gate keeps the keys it trusts; a proxy or a rogue server \
         may be in the way: tell the admins"
    )]
    KeyringRefused(String),
    /// The device list does not verify with the pinned keyring, or is older
    /// than the one held: the one held is kept.
    #[error("device list refused: {0}; other gates' entries are not believed until it verifies")]
    DeviceListRefused(String),
    /// Other gates' entries were not fetched: no device list verified in
    /// this sync to check their signatures with.
    #[error("other gates' entries not fetched: no verified device list to check them with")]
    NoDeviceList,
    /// The server's revocation list went backwards (409 `list_ahead`, or a
    /// list signed before the one held): the gate keeps its own list.
    #[error(
        "the server's revocation list is behind this gate's: server restored from a back-up? \
         tell the admins ({0}); the gate keeps its list"
    )]
    RevocationsBehind(String),
    /// The revocation list does not verify (cut, altered, wrong key): kept as it was.
    #[error("revocation list refused: {0}")]
    BadList(RevocationError),
    /// Some steps failed (each is in [`SyncReport::failures`]); the others
    /// were done.
    #[error("sync incomplete: {} failed", step_names(.0))]
    Incomplete(Vec<Step>),
    /// The local store failed.
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        // As text: the store's errors carry SQLite and I/O errors, which do
        // not clone, and a sync report is handed between threads.
        Self::Store(e.to_string())
    }
}

fn step_names(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl SyncError {
    /// Whether retrying later may help (network, server trouble, slow-down).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Offline(_) | Self::RateLimited | Self::Server { .. }
        )
    }

    /// Whether the rest of a sync is pointless after this error: the server
    /// is out of reach, refuses the device, or asks to slow down. Any other
    /// failure concerns one step only.
    pub fn stops_sync(&self) -> bool {
        matches!(
            self,
            Self::Offline(_) | Self::Unauthorized | Self::RateLimited | Self::NotEnrolled
        )
    }

    /// Whether staff and admins must hear of it now: the gate caught the
    /// server (or something in its place) saying what it cannot prove.
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            Self::KeyringRefused(_) | Self::RevocationsBehind(_) | Self::DeviceListRefused(_)
        )
    }

    /// A short stable name of the kind, for the JSON report.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotEnrolled => "not_enrolled",
            Self::InsecureServer(_) => "insecure_server",
            Self::Offline(_) => "offline",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::Server { .. } => "server_error",
            Self::Rejected { .. } => "rejected",
            Self::BadAnswer(_) => "bad_answer",
            Self::KeyringRefused(_) => "keyring_refused",
            Self::DeviceListRefused(_) => "device_list_refused",
            Self::NoDeviceList => "no_device_list",
            Self::RevocationsBehind(_) => "revocations_behind",
            Self::BadList(_) => "bad_list",
            Self::Incomplete(_) => "incomplete",
            Self::Store(_) => "store",
        }
    }
}

/// One step of a sync, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The scan log up (first: nothing that comes down may hold it back).
    Upload,
    /// The keyring chain, followed from the pinned statement.
    Keyring,
    /// The signed device list.
    Devices,
    /// The sessions.
    Sessions,
    /// The signed revocation list.
    Revocations,
    /// Other gates' entries.
    Entries,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 6] = [
        Step::Upload,
        Step::Keyring,
        Step::Devices,
        Step::Sessions,
        Step::Revocations,
        Step::Entries,
    ];

    /// The step's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Step::Upload => "upload",
            Step::Keyring => "keyring",
            Step::Devices => "devices",
            Step::Sessions => "sessions",
            Step::Revocations => "revocations",
            Step::Entries => "entries",
        }
    }
}

/// A step that failed, and why.
#[derive(Debug, Clone)]
pub struct StepFailure {
    /// The step.
    pub step: Step,
    /// Why.
    pub error: SyncError,
}

/// Most refused entries described in a report (the count has them all).
pub const MAX_REFUSED_SHOWN: usize = 20;

/// What one sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// The keyring changed.
    pub keyring_changed: bool,
    /// Version of the keyring statement pinned after the sync.
    pub keyring_version: Option<u64>,
    /// The sessions changed.
    pub sessions_changed: bool,
    /// Revocations added.
    pub revocations_added: usize,
    /// Entries from other gates learned (each verified).
    pub entries: Vec<RemoteEntry>,
    /// Entries from other gates dropped: unknown or revoked device, or a
    /// signature that does not verify.
    pub entries_refused: u64,
    /// Why, for the first [`MAX_REFUSED_SHOWN`] of them.
    pub entries_refused_why: Vec<String>,
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
    /// The steps that failed, in order.
    pub failures: Vec<StepFailure>,
}

impl SyncReport {
    /// Whether the gate's decisions need the new data.
    pub fn changes_decisions(&self) -> bool {
        self.keyring_changed
            || self.sessions_changed
            || self.revocations_added > 0
            || !self.entries.is_empty()
    }

    /// Whether `step` failed.
    pub fn failed(&self, step: Step) -> bool {
        self.failures.iter().any(|f| f.step == step)
    }

    /// The failures staff and admins must hear of now ([`SyncError::is_alarm`]).
    pub fn alarms(&self) -> impl Iterator<Item = &StepFailure> {
        self.failures.iter().filter(|f| f.error.is_alarm())
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

/// The certificates of a PEM bundle (a private CA given with `--ca-cert`),
/// parsed: an error names what is wrong; a file without a certificate is one.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {}", transport(&e)))?;
    if certs.is_empty() {
        return Err("no certificate in it (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

impl Client {
    /// A client for `base` (e.g. `https://billets.example.fr`), with `token`
    /// for device routes; `ca_pem`, a private certificate authority the
    /// server's certificate may chain to, besides the public ones.
    pub fn new(base: &str, token: Option<String>, ca_pem: Option<&str>) -> Result<Self, SyncError> {
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("jo-scanner/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            for cert in parse_ca_pem(pem)
                .map_err(|e| SyncError::Store(format!("the stored CA certificate: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| SyncError::Offline(transport(&e)))?;
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

/// Refuses a plain `http://` URL unless it points at this machine
/// (127.0.0.0/8, ::1, `localhost`): over the venue network a plain
/// connection gives the token, the keyring on first use and every answer to
/// whoever listens or sits in the middle.
pub fn require_tls_off_loopback(url: &str) -> Result<(), SyncError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| SyncError::BadAnswer(format!("server URL {url:?}: {e}")))?;
    if parsed.scheme() == "https" {
        return Ok(());
    }
    let host = parsed.host_str().unwrap_or_default();
    // IPv6 hosts come bracketed ("[::1]").
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    };
    if loopback {
        Ok(())
    } else {
        Err(SyncError::InsecureServer(host.to_owned()))
    }
}

/// How the keyring was pinned at enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinnedBy {
    /// By the fingerprint of the admin's enrolment QR or `--keyring`.
    Fingerprint,
    /// On first use: the server's first statement, taken on trust over TLS.
    FirstUse,
}

/// What an enrolment stored.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The server's answer.
    pub answer: EnrollResponse,
    /// The keyring statement pinned (the newest the chain leads to).
    pub pinned: SignedKeyring,
    /// How.
    pub pinned_by: PinnedBy,
}

/// Enrols this device: makes its key pair, trades the one-time code for a
/// device id and token, pins the server's keyring and stores all of it. An
/// earlier enrolment is replaced; the scan log and synced data are kept.
///
/// `keyring_fingerprint` comes from the admin's enrolment QR or the
/// `--keyring` flag: the server's keyring chain must hold the statement it
/// names. Without one, the chain's first statement is trusted on first use
/// (over TLS). Plain `http://` is refused except to this machine.
pub fn enroll(
    store: &mut Store,
    server_url: &str,
    code: &str,
    label: &str,
    keyring_fingerprint: Option<&[u8; 32]>,
) -> Result<Enrolled, SyncError> {
    enroll_with_ca(store, server_url, code, label, keyring_fingerprint, None)
}

/// [`enroll`] with a server whose certificate chains to a private
/// certificate authority (`ca_pem`, PEM): the authority is trusted for this
/// enrolment and stored with it for every later sync (another enrolment
/// replaces or clears it). Without one, only the public authorities are.
pub fn enroll_with_ca(
    store: &mut Store,
    server_url: &str,
    code: &str,
    label: &str,
    keyring_fingerprint: Option<&[u8; 32]>,
    ca_pem: Option<&str>,
) -> Result<Enrolled, SyncError> {
    let server_url = normalise_server_url(server_url)?;
    require_tls_off_loopback(&server_url)?;
    if let Some(pem) = ca_pem {
        parse_ca_pem(pem).map_err(|e| SyncError::BadAnswer(format!("--ca-cert: {e}")))?;
    }
    let mut secret = [0u8; 32];
    jo_shared::doublekey::random_bytes(&mut secret)
        .map_err(|e| SyncError::BadAnswer(e.to_string()))?;
    let key = SigningKey::from_bytes(&secret);
    let mut client = Client::new(&server_url, None, ca_pem)?;
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
    // Nothing is stored unless the keyring pins: a server whose keys are not
    // the ones the admin's code names is not the server the admin meant.
    let pinned = trust::pin(&answer.keyring, keyring_fingerprint).map_err(|e| {
        SyncError::KeyringRefused(format!(
            "{e} (the enrolment code is used up: ask the admins for a new one)"
        ))
    })?;
    // The authority first: an enrolment saved without its authority would
    // only fail to connect (never trust a server it should not).
    store.set_state(CA_CERT_PEM, ca_pem.unwrap_or(""))?;
    store.save_enrollment(
        &Enrollment {
            server_url,
            device_id: answer.device_id.clone(),
            token: answer.token.clone(),
            secret_key: secret,
        },
        &pinned,
        now_secs(),
    )?;
    Ok(Enrolled {
        answer,
        pinned,
        pinned_by: if keyring_fingerprint.is_some() {
            PinnedBy::Fingerprint
        } else {
            PinnedBy::FirstUse
        },
    })
}

/// The private certificate authority stored with the enrolment, if any.
fn stored_ca(store: &Store) -> Result<Option<String>, SyncError> {
    Ok(store.get_state(CA_CERT_PEM)?.filter(|pem| !pem.is_empty()))
}

/// Replaces the device's token with a fresh one from the server.
pub fn roll_token(store: &mut Store) -> Result<(), SyncError> {
    let e = store.enrollment()?.ok_or(SyncError::NotEnrolled)?;
    let ca = stored_ca(store)?;
    let mut client = Client::new(&e.server_url, Some(e.token), ca.as_deref())?;
    let answer: TokenResponse = client.post(api::paths::TOKEN, &serde_json::json!({}))?;
    if answer.token.is_empty() {
        return Err(SyncError::BadAnswer("empty token".into()));
    }
    store.set_token(&answer.token)?;
    Ok(())
}

fn same_keys(a: &Keyring, b: &Keyring) -> bool {
    a.entries().len() == b.entries().len()
        && b.entries().iter().all(|x| {
            a.entries()
                .iter()
                .any(|e| e.id == x.id && e.key == x.key && e.withdrawn == x.withdrawn)
        })
}

/// Pins the served chain on a gate enrolled before keyrings were signed,
/// which holds an unpinned keyring (`held`). The statement listing exactly
/// the keys held is the starting point when the chain has one; otherwise
/// the chain's first statement is trusted on first use, but only if its
/// newest keyring still holds one of the keys the gate had: a chain that
/// shares nothing with them is someone else's.
pub fn pin_first_use(held: &Keyring, chain: &[SignedKeyring]) -> Result<SignedKeyring, SyncError> {
    let refused = |e: TrustError| SyncError::KeyringRefused(e.to_string());
    let matching = chain
        .iter()
        .rev()
        .find(|s| s.keyring().is_ok_and(|r| same_keys(&r, held)));
    if let Some(s) = matching {
        let fp = s.fingerprint().map_err(refused)?;
        return trust::pin(chain, Some(&fp)).map_err(refused);
    }
    let pinned = trust::pin(chain, None).map_err(refused)?;
    if !held.entries().is_empty() {
        let ring = pinned.keyring().map_err(refused)?;
        let shares = held.entries().iter().any(|h| {
            ring.entries()
                .iter()
                .any(|e| e.id == h.id && e.key == h.key)
        });
        if !shares {
            return Err(SyncError::KeyringRefused(
                "the server's keyring holds none of the keys this gate held".into(),
            ));
        }
    }
    Ok(pinned)
}

/// One full sync: the scan log up, then keyring, device list, sessions,
/// revocations and entries down. `list` is the caller's copy of the
/// revocation list, kept across syncs so that a large list is not reread
/// each time; it is updated in place and in the store together.
pub fn sync_once(
    store: &mut Store,
    list: &mut RevocationList,
    progress: Progress<'_>,
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    sync_into(store, list, &mut report, progress)?;
    Ok(report)
}

/// What the steps of one sync share.
struct Run<'a, 'p> {
    store: &'a mut Store,
    client: Client,
    enrollment: Enrollment,
    list: &'a mut RevocationList,
    report: &'a mut SyncReport,
    progress: Progress<'p>,
    /// The device list verified in this sync, if any.
    devices: Option<SignedDeviceList>,
}

/// [`sync_once`], filling `report` as each step commits, so that a sync cut
/// short still tells what it already stored (the entries cursor moved on:
/// the gate must be given those entries now, they will not come again).
///
/// Every step runs even when an earlier one failed, except after an error
/// that [stops the sync](SyncError::stops_sync) (that error is returned).
/// Each failure is in [`SyncReport::failures`]; when there are any, the
/// result is [`SyncError::Incomplete`] naming the steps.
pub fn sync_into(
    store: &mut Store,
    list: &mut RevocationList,
    report: &mut SyncReport,
    progress: Progress<'_>,
) -> Result<(), SyncError> {
    let enrollment = store.enrollment()?.ok_or(SyncError::NotEnrolled)?;
    let ca = stored_ca(store)?;
    let client = Client::new(
        &enrollment.server_url,
        Some(enrollment.token.clone()),
        ca.as_deref(),
    )?;
    let mut run = Run {
        store,
        client,
        enrollment,
        list,
        report,
        progress,
        devices: None,
    };
    let mut stopped = None;
    for step in Step::ALL {
        let result = match step {
            Step::Upload => run.upload(),
            Step::Keyring => run.keyring(),
            Step::Devices => run.devices(),
            Step::Sessions => run.sessions(),
            Step::Revocations => run.revocations(),
            Step::Entries => run.entries(),
        };
        run.report.skew_secs = run.client.skew_secs().or(run.report.skew_secs);
        if let Err(error) = result {
            let stop = error.stops_sync();
            run.report.failures.push(StepFailure {
                step,
                error: error.clone(),
            });
            if stop {
                stopped = Some(error);
                break;
            }
        }
    }
    let Run { store, report, .. } = run;
    if let Ok(n) = store.pending_count() {
        report.pending = n;
    }
    if let Ok(Some(pinned)) = store.pinned_keyring() {
        report.keyring_version = Some(pinned.version);
    }
    if let Some(e) = stopped {
        return Err(e);
    }
    if !report.failures.is_empty() {
        return Err(SyncError::Incomplete(
            report.failures.iter().map(|f| f.step).collect(),
        ));
    }
    store.set_state(LAST_SYNC_AT, &now_secs().to_string())?;
    Ok(())
}

/// Why another gate's entry is not believed, if it is not.
pub fn check_entry(devices: &SignedDeviceList, entry: &RemoteEntry) -> Result<(), String> {
    let Some(key) = devices.active_key(&entry.device_id) else {
        let revoked = devices
            .devices
            .iter()
            .any(|d| d.device_id == entry.device_id && d.revoked);
        return Err(format!(
            "entry {} from device {}: {}",
            entry.scan_id,
            entry.device_id,
            if revoked {
                "the device is revoked"
            } else {
                "no such device in the signed device list"
            }
        ));
    };
    trust::verify_admission(&key, &entry.admission(), &entry.signature).map_err(|e| {
        format!(
            "entry {} from device {}: {e}",
            entry.scan_id, entry.device_id
        )
    })
}

impl Run<'_, '_> {
    /// Up: the log in order, in signed batches ([`upload_log`]).
    fn upload(&mut self) -> Result<(), SyncError> {
        upload_log(
            self.store,
            &mut self.client,
            &self.enrollment,
            self.report,
            self.progress,
        )
    }

    /// The keyring: accepted only as a chain leading from the statement
    /// pinned. A gate that pinned none yet (enrolled before keyrings were
    /// signed) pins the served chain now ([`pin_first_use`]).
    fn keyring(&mut self) -> Result<(), SyncError> {
        let answer: KeyringResponse = self.client.get(api::paths::KEYRING)?;
        match self.store.pinned_keyring()? {
            Some(held) => {
                let newer = trust::advance(&held, &answer.chain)
                    .map_err(|e| SyncError::KeyringRefused(e.to_string()))?;
                if let Some(newer) = newer {
                    self.store.pin_keyring(&newer)?;
                    self.report.keyring_changed = true;
                }
            }
            None => {
                let held = self.store.keyring()?;
                let pinned = pin_first_use(&held, &answer.chain)?;
                self.store.pin_keyring(&pinned)?;
                self.report.keyring_changed = !same_keys(&held, &self.store.keyring()?);
            }
        }
        Ok(())
    }

    /// Fetches, verifies and stores the device list ([`fetch_device_list`]).
    fn fetch_devices(&mut self) -> Result<SignedDeviceList, SyncError> {
        fetch_device_list(&mut self.client, self.store)
    }

    fn devices(&mut self) -> Result<(), SyncError> {
        self.devices = Some(self.fetch_devices()?);
        Ok(())
    }

    fn sessions(&mut self) -> Result<(), SyncError> {
        let sessions: SessionsResponse = self.client.get(api::paths::SESSIONS)?;
        let before: Vec<_> = self.store.sessions()?.into_iter().map(|(s, _)| s).collect();
        if before != sessions.sessions {
            self.store.replace_sessions(&sessions.sessions)?;
            self.report.sessions_changed = true;
        }
        Ok(())
    }

    /// Revocations: deltas until one brings nothing new. Each is verified
    /// against the signed state before anything is stored; the last, empty
    /// one is applied too, since its fresh signature time is what shows the
    /// list is current. A list that went backwards is an alarm, never a
    /// reason to drop what the gate holds.
    fn revocations(&mut self) -> Result<(), SyncError> {
        let keyring = self.store.keyring()?;
        for _ in 0..MAX_PAGES {
            let since = self.list.version();
            let delta: RevocationDelta = match self
                .client
                .get(&format!("{}?since={since}", api::paths::REVOCATIONS))
            {
                Err(SyncError::Rejected {
                    status: 409,
                    code,
                    message,
                }) if code == "list_ahead" => {
                    return Err(SyncError::RevocationsBehind(format!(
                        "this gate holds version {since}; the server says: {message}"
                    )));
                }
                other => other?,
            };
            let behind_or_bad = |e: RevocationError| match e {
                RevocationError::Older { .. } => SyncError::RevocationsBehind(e.to_string()),
                other => SyncError::BadList(other),
            };
            // Checked on a list holding only the state (no entries to copy):
            // the store gets the state the delta leads to before the list in
            // memory moves, so the two never disagree.
            let mut probe = RevocationList::restore(
                self.list.version(),
                self.list.head(),
                self.list.issued_at(),
                [],
            );
            let applied = probe.apply(&delta, &keyring).map_err(behind_or_bad)?;
            self.store.add_revocations(&delta.entries, &probe)?;
            self.list.apply(&delta, &keyring).map_err(behind_or_bad)?;
            self.report.revocations_added += applied.added;
            (self.progress)(self.list.version(), delta.state.version);
            if delta.entries.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Entries other gates uploaded, from the stored cursor. Each is
    /// believed only if its device is active in the device list verified in
    /// this sync and its signature verifies; the others are dropped and
    /// counted. Without a verified list the step waits (the cursor stays).
    fn entries(&mut self) -> Result<(), SyncError> {
        let Some(mut devices) = self.devices.take() else {
            return Err(SyncError::NoDeviceList);
        };
        // A gate enrolled after the list was signed may already have
        // uploaded: the list is fetched again, once, for its sake.
        let mut refetched = false;
        let own = self.enrollment.device_id.clone();
        let mut cursor: u64 = self
            .store
            .get_state(ENTRIES_CURSOR)?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        for _ in 0..MAX_PAGES {
            let page: EntriesResponse = self
                .client
                .get(&format!("{}?cursor={cursor}", api::paths::ENTRIES))?;
            if page.next_cursor < cursor {
                return Err(SyncError::BadAnswer("entries cursor went back".into()));
            }
            let new = learn_entries(
                &mut self.client,
                self.store,
                &own,
                &mut devices,
                &mut refetched,
                page.entries,
                self.report,
            )?;
            cursor = page.next_cursor;
            self.store.set_state(ENTRIES_CURSOR, &cursor.to_string())?;
            self.report.entries.extend(new);
            if !page.more {
                break;
            }
        }
        self.devices = Some(devices);
        Ok(())
    }
}

/// One upload at a time per process: the live uploader and the periodic
/// sync share the log, and a later batch reaching the server before an
/// earlier one would look like a gap in the chain.
static UPLOAD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Up: the log in order, in signed batches. The server stores a batch whole
/// or not at all, so a batch is marked uploaded only once answered.
fn upload_log(
    store: &mut Store,
    client: &mut Client,
    e: &Enrollment,
    report: &mut SyncReport,
    progress: Progress<'_>,
) -> Result<(), SyncError> {
    let _one_at_a_time = UPLOAD_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
    Ok(())
}

/// Fetches, verifies and stores the device list; the one held is kept when
/// the new one does not verify or is older.
fn fetch_device_list(
    client: &mut Client,
    store: &mut Store,
) -> Result<SignedDeviceList, SyncError> {
    let list: SignedDeviceList = client.get(api::paths::DEVICES)?;
    let keyring = store.keyring()?;
    list.verify(&keyring)
        .map_err(|e| SyncError::DeviceListRefused(e.to_string()))?;
    if let Some(held) = store.device_list()?
        && list.issued_at < held.issued_at
    {
        // A replay of an older list could bring back a revoked gate.
        return Err(SyncError::DeviceListRefused(format!(
            "signed at {}, before the list held (signed at {})",
            list.issued_at, held.issued_at
        )));
    }
    store.save_device_list(&list)?;
    Ok(list)
}

/// Checks a page of other gates' entries against `devices` (fetched again
/// once, when an entry names a device it does not hold: a gate enrolled
/// after it was signed), stores those believed and returns the ones new to
/// this gate. Refusals are counted in `report`.
fn learn_entries(
    client: &mut Client,
    store: &mut Store,
    own: &str,
    devices: &mut SignedDeviceList,
    refetched: &mut bool,
    entries: Vec<RemoteEntry>,
    report: &mut SyncReport,
) -> Result<Vec<RemoteEntry>, SyncError> {
    let mut believed = Vec::new();
    for x in entries {
        if x.device_id == own {
            continue;
        }
        let unknown = !devices.devices.iter().any(|d| d.device_id == x.device_id);
        if unknown && !*refetched {
            *refetched = true;
            if let Ok(newer) = fetch_device_list(client, store) {
                *devices = newer;
            }
        }
        match check_entry(devices, &x) {
            Ok(()) => believed.push(x),
            Err(why) => {
                report.entries_refused += 1;
                if report.entries_refused_why.len() < MAX_REFUSED_SHOWN {
                    report.entries_refused_why.push(why);
                }
            }
        }
    }
    Ok(store.add_remote_entries(&believed)?)
}

/// Live sync: each admission goes up as soon as it is logged, and one
/// long-poll on the entries feed brings other gates' admissions as soon as
/// the server stores them, both on threads of their own (the scanning
/// thread never waits for them). The periodic sync stays for everything
/// else and retries what these could not send.
pub mod live {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use jo_shared::api::{self, EntriesResponse, RemoteEntry};

    use super::{
        Client, ENTRIES_CURSOR, SyncError, SyncReport, learn_entries, now_secs, stored_ca,
        upload_log,
    };
    use crate::store::Store;

    /// Seconds the server is asked to hold the long-poll (its maximum).
    pub const WAIT_SECS: u32 = 8;

    /// How often the uploader looks for a newly logged scan: one indexed
    /// read of the local database.
    pub const LOG_POLL: Duration = Duration::from_millis(20);

    /// Longest wait after a failure before trying again (the periodic sync
    /// retries meanwhile).
    const MAX_RETRY: Duration = Duration::from_secs(8);

    /// What the live threads last saw, for the sync panel.
    #[derive(Debug, Default)]
    pub struct LiveStatus {
        /// A long-poll is open (the last one was answered).
        pub connected: AtomicBool,
        /// When the server last answered a long-poll (Unix seconds; 0: never).
        pub last_heard: AtomicI64,
        /// The last error, if the live link is down.
        pub error: Mutex<Option<String>>,
    }

    impl LiveStatus {
        fn up(&self) {
            self.connected.store(true, Ordering::Relaxed);
            self.last_heard.store(now_secs(), Ordering::Relaxed);
            if let Ok(mut e) = self.error.lock() {
                *e = None;
            }
        }

        fn down(&self, why: &SyncError) {
            self.connected.store(false, Ordering::Relaxed);
            if let Ok(mut e) = self.error.lock() {
                *e = Some(why.to_string());
            }
        }
    }

    /// The live threads; dropped, they stop (within one long-poll).
    pub struct Live {
        stop: Arc<AtomicBool>,
        /// What they saw.
        pub status: Arc<LiveStatus>,
    }

    impl Drop for Live {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    fn client_of(store: &Store) -> Result<(Client, super::Enrollment), SyncError> {
        let e = store.enrollment()?.ok_or(SyncError::NotEnrolled)?;
        let ca = stored_ca(store)?;
        let client = Client::new(&e.server_url, Some(e.token.clone()), ca.as_deref())?;
        Ok((client, e))
    }

    /// Starts the live threads on the store in `dir`: `learned` is called
    /// (from the long-poll thread, with its store) with each batch of other
    /// gates' entries new to this gate, verified and stored.
    pub fn spawn(
        dir: &Path,
        learned: impl Fn(&Store, Vec<RemoteEntry>) + Send + 'static,
    ) -> std::io::Result<Live> {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(LiveStatus::default());
        let (d, s) = (dir.to_path_buf(), stop.clone());
        std::thread::Builder::new()
            .name("scanner-live-up".into())
            .spawn(move || uploader(&d, &s))?;
        let (d, s, st) = (dir.to_path_buf(), stop.clone(), status.clone());
        std::thread::Builder::new()
            .name("scanner-live-down".into())
            .spawn(move || long_poll(&d, &s, &st, &learned))?;
        Ok(Live { stop, status })
    }

    fn pause(stop: &AtomicBool, d: Duration) {
        let until = Instant::now() + d;
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50).min(d));
        }
    }

    fn uploader(dir: &Path, stop: &AtomicBool) {
        let mut store = match Store::open(dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("jo-scanner: live upload off: {e}");
                return;
            }
        };
        let mut retry = Duration::from_secs(1);
        let mut client = None;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(LOG_POLL);
            if !matches!(store.pending_count(), Ok(n) if n > 0) {
                continue;
            }
            if client.is_none() {
                match client_of(&store) {
                    Ok(c) => client = Some(c),
                    Err(_) => {
                        pause(stop, MAX_RETRY);
                        continue;
                    }
                }
            }
            let Some((c, e)) = client.as_mut() else {
                continue;
            };
            let mut report = SyncReport::default();
            match upload_log(&mut store, c, e, &mut report, &mut |_, _| {}) {
                Ok(()) => retry = Duration::from_secs(1),
                Err(err) => {
                    // The credentials may have changed (a new enrolment).
                    if !err.is_transient() {
                        client = None;
                    }
                    pause(stop, retry);
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    fn long_poll(
        dir: &Path,
        stop: &AtomicBool,
        status: &LiveStatus,
        learned: &dyn Fn(&Store, Vec<RemoteEntry>),
    ) {
        let mut store = match Store::open(dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("jo-scanner: live entries off: {e}");
                return;
            }
        };
        let mut retry = Duration::from_secs(1);
        // The first request after a start or a failure does not wait: it
        // tells at once whether the link is up.
        let mut wait = 0;
        while !stop.load(Ordering::Relaxed) {
            match poll_once(&mut store, wait) {
                Ok(new) => {
                    wait = WAIT_SECS;
                    status.up();
                    retry = Duration::from_secs(1);
                    if !new.is_empty() {
                        learned(&store, new);
                    }
                }
                Err(e) => {
                    wait = 0;
                    status.down(&e);
                    pause(stop, retry);
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// One long-poll of the entries feed from the stored cursor: waits up
    /// to `wait` seconds (at most the server's 8) for another gate's admission, checks what comes
    /// against the signed device list held, stores it, and returns the
    /// entries new to this gate. Without a verified device list nothing is
    /// asked (the periodic sync fetches one first).
    pub fn poll_once(store: &mut Store, wait: u32) -> Result<Vec<RemoteEntry>, SyncError> {
        let (mut client, e) = client_of(store)?;
        let Some(mut devices) = store.device_list()? else {
            std::thread::sleep(Duration::from_secs(1));
            return Err(SyncError::NoDeviceList);
        };
        let cursor: u64 = store
            .get_state(ENTRIES_CURSOR)?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let page: EntriesResponse = client.get(&format!(
            "{}?cursor={cursor}&wait={wait}",
            api::paths::ENTRIES
        ))?;
        if page.next_cursor < cursor {
            return Err(SyncError::BadAnswer("entries cursor went back".into()));
        }
        let mut report = SyncReport::default();
        let mut refetched = false;
        let new = learn_entries(
            &mut client,
            store,
            &e.device_id,
            &mut devices,
            &mut refetched,
            page.entries,
            &mut report,
        )?;
        // Moved on only forward: the periodic sync may have gone further.
        let held: u64 = store
            .get_state(ENTRIES_CURSOR)?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if page.next_cursor > held {
            store.set_state(ENTRIES_CURSOR, &page.next_cursor.to_string())?;
        }
        if report.entries_refused > 0 {
            eprintln!(
                "jo-scanner: {} entries from the server not believed: {}",
                report.entries_refused,
                report
                    .entries_refused_why
                    .first()
                    .map_or("", String::as_str)
            );
        }
        Ok(new)
    }
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
        let err =
            enroll(&mut store, "http://127.0.0.1:9", "CODE", "porte", None).expect_err("offline");
        assert!(matches!(err, SyncError::Offline(_)), "{err:?}");
        assert!(err.is_transient());
        assert_eq!(
            store.enrollment().expect("reads").map(|e| e.device_id),
            None
        );
    }

    #[test]
    fn enrolment_over_plain_http_is_refused_except_to_this_machine() {
        for ok in [
            "https://billets.example.fr",
            "http://127.0.0.1:8080",
            "http://127.8.9.10",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://LOCALHOST",
        ] {
            require_tls_off_loopback(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "http://192.168.1.10:8080",
            "http://billets.example.fr",
            "http://localhost.example.fr",
            "http://[::2]",
            "http://10.0.0.1",
        ] {
            assert!(
                matches!(
                    require_tls_off_loopback(bad),
                    Err(SyncError::InsecureServer(_))
                ),
                "{bad}"
            );
        }
        // Refused before any network: nothing listens on 192.0.2.1 (TEST-NET-1).
        let mut store = Store::in_memory().expect("store");
        let err =
            enroll(&mut store, "http://192.0.2.1", "CODE", "porte", None).expect_err("refused");
        assert!(matches!(err, SyncError::InsecureServer(_)), "{err:?}");
        assert!(err.to_string().contains("https://"), "{err}");
    }

    fn ring(keys: &[&jo_shared::TicketSigner], withdrawn: &[&jo_shared::TicketSigner]) -> Keyring {
        let mut r = Keyring::new();
        for k in keys {
            r.add(k.verifying_key()).expect("adds");
        }
        for k in withdrawn {
            r.withdraw(k.key_id());
        }
        r
    }

    fn signer(n: u8) -> jo_shared::TicketSigner {
        jo_shared::TicketSigner::new(SigningKey::from_bytes(&[n; 32]))
    }

    #[test]
    fn a_gate_enrolled_before_signed_keyrings_pins_the_chain_from_the_keys_it_held() {
        let (a, b) = (signer(1), signer(2));
        let v1 = SignedKeyring::sign(1, &ring(&[&a], &[]), &[&a]);
        let v2 = SignedKeyring::sign(2, &ring(&[&b, &a], &[]), &[&a, &b]);
        let chain = vec![v1.clone(), v2.clone()];
        // Held exactly v1's keys: followed from there to v2.
        let pinned = pin_first_use(&ring(&[&a], &[]), &chain).expect("pins");
        assert_eq!(pinned, v2);
        // Held nothing (never synced): trust on first use.
        assert_eq!(pin_first_use(&Keyring::new(), &chain).expect("pins"), v2);
        // A chain that shares no key with what the gate held is someone else's.
        let evil = signer(66);
        let forged = vec![SignedKeyring::sign(1, &ring(&[&evil], &[]), &[&evil])];
        assert!(matches!(
            pin_first_use(&ring(&[&a], &[]), &forged),
            Err(SyncError::KeyringRefused(_))
        ));
        // A forged continuation of the matching statement is refused too.
        let bad_v2 = SignedKeyring::sign(2, &ring(&[&evil, &a], &[]), &[&evil]);
        assert!(matches!(
            pin_first_use(&ring(&[&a], &[]), &[v1, bad_v2]),
            Err(SyncError::KeyringRefused(_))
        ));
    }

    #[test]
    fn only_refusals_of_content_let_the_other_steps_run() {
        assert!(SyncError::Offline("x".into()).stops_sync());
        assert!(SyncError::Unauthorized.stops_sync());
        for e in [
            SyncError::RevocationsBehind("x".into()),
            SyncError::KeyringRefused("x".into()),
            SyncError::BadList(RevocationError::BadSignature),
            SyncError::Server {
                status: 500,
                message: "x".into(),
            },
            SyncError::NoDeviceList,
        ] {
            assert!(!e.stops_sync(), "{e:?}");
        }
        let behind = SyncError::RevocationsBehind("v 12".into()).to_string();
        assert!(behind.contains("restored from a back-up"), "{behind}");
        assert!(behind.contains("tell the admins"), "{behind}");
    }
}
