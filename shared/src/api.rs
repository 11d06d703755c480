//! Request and response types of the scanners' sync API (JSON under `/api/v1/`).
//!
//! The server serialises them and the scanner deserialises them (and the other
//! way round for uploads), so the two can never disagree on a field. Binary
//! values travel as lower-case hex (ids, hashes, signatures) or base64url
//! without padding (public keys); times are Unix seconds.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::revocation::{RevocationDelta, RevocationEntry, SignedListState};
use crate::ticket::TicketId;
pub use crate::trust::{DeviceKey, KeyInfo, KeySignature, SignedDeviceList, SignedKeyring};

/// A scan id: a random (version 4) UUID in its lower-case hyphenated text form,
/// made by the device that scanned. Upload is idempotent by scan id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScanId(String);

impl ScanId {
    /// A fresh random id from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, crate::doublekey::RandomError> {
        let mut b = [0u8; 16];
        crate::doublekey::random_bytes(&mut b)?;
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        let h = hex::encode(b);
        Ok(Self(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )))
    }

    /// Parses the hyphenated form (8-4-4-4-12 hex digits, any case; stored lower-case).
    pub fn parse(s: &str) -> Option<Self> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        let ok = groups.len() == 5
            && groups
                .iter()
                .zip(lens)
                .all(|(g, n)| g.len() == n && g.bytes().all(|c| c.is_ascii_hexdigit()));
        ok.then(|| Self(s.to_ascii_lowercase()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ScanId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| "scan_id must be a UUID (8-4-4-4-12 hex digits)".to_owned())
    }
}

impl From<ScanId> for String {
    fn from(id: ScanId) -> Self {
        id.0
    }
}

impl std::fmt::Display for ScanId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Path prefix of every sync API route.
pub const API_PREFIX: &str = "/api/v1";

/// The sync API's routes, written once for the server's router and the
/// scanner's client. Every route but [`paths::ENROLL`] and [`paths::OPENAPI`]
/// needs `Authorization: Bearer <device token>` and answers 401 without a
/// valid one.
pub mod paths {
    /// `POST` [`super::EnrollRequest`] → [`super::EnrollResponse`].
    pub const ENROLL: &str = "/api/v1/enroll";
    /// `GET` → [`super::KeyringResponse`].
    pub const KEYRING: &str = "/api/v1/keyring";
    /// `GET` → [`super::SignedDeviceList`]: the devices whose admissions a
    /// gate may believe.
    pub const DEVICES: &str = "/api/v1/devices";
    /// `GET` → [`super::SessionsResponse`].
    pub const SESSIONS: &str = "/api/v1/sessions";
    /// `GET ?since=V` ([`super::RevocationsQuery`]) → [`super::RevocationDelta`].
    pub const REVOCATIONS: &str = "/api/v1/revocations";
    /// `GET ?cursor=C` → [`super::EntriesResponse`].
    pub const ENTRIES: &str = "/api/v1/entries";
    /// `POST` [`super::ScanBatch`] → [`super::ScanBatchResponse`].
    pub const SCANS: &str = "/api/v1/scans";
    /// `POST` (no body) → [`super::TokenResponse`]: a new token replaces the
    /// one used for this call, which stops working.
    pub const TOKEN: &str = "/api/v1/token";
    /// The OpenAPI document of the sync API.
    pub const OPENAPI: &str = "/api/v1/openapi.json";
}

/// Error body of every non-2xx answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine-readable code (`unauthorized`, `bad_request`, …).
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// `POST /api/v1/enroll`: trade a one-time enrolment code for a device identity.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The one-time code an admin created.
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub code: String,
    /// The device's own Ed25519 public key (32 bytes, base64url), with which it
    /// signs its upload batches.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{43}$"))]
    pub device_public_key: String,
    /// A label for the admin console (e.g. the laptop's name).
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub label: String,
}

/// Answer to a successful enrolment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device's id.
    pub device_id: String,
    /// Bearer token for every later call. Shown once; the server keeps a hash.
    pub token: String,
    /// Server time, Unix seconds, so the device can measure its clock skew.
    pub server_time: i64,
    /// The keyring chain ([`crate::trust`]): the device pins the statement
    /// whose fingerprint its enrolment QR carries (or, for a typed code, the
    /// first) and follows the chain from there.
    pub keyring: Vec<SignedKeyring>,
}

/// Answer to a token roll.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The new bearer token.
    pub token: String,
}

/// What an admin's enrolment QR code carries: the server to talk to, the
/// one-time code and the fingerprint of the server's keyring, which the
/// device pins. Text form: `JO-ENROLL:2:<code>:<fingerprint hex>:<server url>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentInvite {
    /// Base URL of the server (`http://` or `https://`, no trailing slash).
    pub server_url: String,
    /// The one-time enrolment code.
    pub code: String,
    /// SHA-256 fingerprint of the keyring statement current when the code
    /// was made ([`SignedKeyring::fingerprint`]).
    pub keyring_fingerprint: [u8; 32],
}

/// Prefix of an enrolment QR's text.
pub const ENROLLMENT_QR_PREFIX: &str = "JO-ENROLL:2:";

impl EnrollmentInvite {
    /// The text to put in the QR code.
    pub fn to_qr_text(&self) -> String {
        format!(
            "{ENROLLMENT_QR_PREFIX}{}:{}:{}",
            self.code,
            hex::encode(self.keyring_fingerprint),
            self.server_url
        )
    }

    /// Reads an enrolment QR's text; `None` unless it is one, with a code of
    /// letters, digits and dashes, a 64-hex-digit fingerprint and an http(s)
    /// URL, all of sane length.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix(ENROLLMENT_QR_PREFIX)?;
        let (code, rest) = rest.split_once(':')?;
        let (fp, url) = rest.split_once(':')?;
        let code_ok = !code.is_empty()
            && code.len() <= 64
            && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let url_ok = (url.starts_with("http://") || url.starts_with("https://"))
            && url.len() <= 512
            && !url.chars().any(|c| c.is_control() || c.is_whitespace());
        let mut keyring_fingerprint = [0u8; 32];
        let fp_ok = fp.len() == 64 && hex::decode_to_slice(fp, &mut keyring_fingerprint).is_ok();
        (code_ok && url_ok && fp_ok).then(|| Self {
            server_url: url.trim_end_matches('/').to_owned(),
            code: code.to_owned(),
            keyring_fingerprint,
        })
    }
}

/// `GET /api/v1/keyring`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyringResponse {
    /// Every keyring statement from version 1, oldest first: a gate follows
    /// it from the version it holds ([`crate::trust::advance`]).
    pub chain: Vec<SignedKeyring>,
}

/// How often one ticket may enter its session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum EntryRule {
    /// One entry; a second scan is "already used".
    Single,
    /// Re-entry allowed, up to `max_entries` entries in all.
    Multiple {
        /// Entries allowed per ticket.
        max_entries: u32,
    },
}

/// A session as a gate device needs it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSession {
    /// Session id (as in ticket payloads).
    pub id: u32,
    /// Sport.
    pub sport: String,
    /// Title.
    pub title: String,
    /// Venue.
    pub venue: String,
    /// Start, Unix seconds.
    pub starts_at: i64,
    /// End, Unix seconds.
    pub ends_at: i64,
    /// When doors open, Unix seconds.
    pub doors_open_at: i64,
    /// Entry rule.
    pub entry_rule: EntryRule,
}

/// `GET /api/v1/sessions`: the sessions this device serves.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsResponse {
    /// Sessions.
    pub sessions: Vec<GateSession>,
}

/// `GET /api/v1/revocations?since=V` answers a [`RevocationDelta`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationsQuery {
    /// The version the device holds (0 for none).
    pub since: u64,
}

/// An entry another device uploaded.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteEntry {
    /// The admitting device's scan id.
    pub scan_id: ScanId,
    /// The ticket admitted.
    pub ticket_id: TicketId,
    /// Its session.
    pub session_id: u32,
    /// The device that admitted it.
    pub device_id: String,
    /// That device's gate.
    pub gate: String,
    /// Device time of the scan, Unix seconds.
    pub scanned_at: i64,
    /// The admitting device's signature over
    /// [`crate::trust::admission_message`], hex: a gate believes the entry
    /// only if it verifies with a key of the signed device list.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

impl RemoteEntry {
    /// The admission this entry claims, as its device signed it.
    pub fn admission(&self) -> crate::trust::Admission<'_> {
        crate::trust::Admission {
            device_id: &self.device_id,
            scan_id: self.scan_id.as_str(),
            ticket_id: &self.ticket_id,
            session_id: self.session_id,
            gate: &self.gate,
            scanned_at: self.scanned_at,
        }
    }
}

/// `GET /api/v1/entries?cursor=C`: entries other devices uploaded after `cursor`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntriesResponse {
    /// Entries, oldest first.
    pub entries: Vec<RemoteEntry>,
    /// The cursor to ask from next time.
    pub next_cursor: u64,
    /// Whether more entries wait after `next_cursor`.
    pub more: bool,
}

/// `admit`, `refuse` or `used`, as logged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanVerdict {
    /// Admitted.
    Admit,
    /// Refused.
    Refuse,
    /// Already used.
    Used,
}

impl ScanVerdict {
    fn code(self) -> u8 {
        match self {
            Self::Admit => 1,
            Self::Refuse => 2,
            Self::Used => 3,
        }
    }
}

/// One line of a device's scan log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    /// Unique scan id, the key of idempotent upload.
    pub scan_id: ScanId,
    /// Position in the device's log, from 1, without gaps.
    pub seq: u64,
    /// Hash of the previous record (hex; 64 zeros for the first).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub prev_hash: String,
    /// The ticket, when the code was a decodable ticket.
    pub ticket_id: Option<TicketId>,
    /// The session, when known.
    pub session_id: Option<u32>,
    /// The scanned string: for admissions the signed ticket text (the
    /// server checks that a real ticket was scanned), for refusals the
    /// evidence for admins.
    pub raw: Option<String>,
    /// The verdict.
    pub verdict: ScanVerdict,
    /// Refusal reason code, when refused or used.
    pub reason: Option<String>,
    /// People admitted (0 unless admitted).
    pub admits: u8,
    /// The gate.
    pub gate: String,
    /// Device time, Unix seconds.
    pub scanned_at: i64,
    /// For admissions: the device's signature over
    /// [`crate::trust::admission_message`] (hex), which other gates check.
    /// Not part of [`ScanRecord::hash`]: it is checkable on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: Option<String>,
}

impl ScanRecord {
    /// The admission this record states, when it is one (verdict admit with
    /// a ticket and a session).
    pub fn admission<'a>(&'a self, device_id: &'a str) -> Option<crate::trust::Admission<'a>> {
        match (self.verdict, &self.ticket_id, self.session_id) {
            (ScanVerdict::Admit, Some(ticket_id), Some(session_id)) => {
                Some(crate::trust::Admission {
                    device_id,
                    scan_id: self.scan_id.as_str(),
                    ticket_id,
                    session_id,
                    gate: &self.gate,
                    scanned_at: self.scanned_at,
                })
            }
            _ => None,
        }
    }
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt_str(h: &mut Sha256, s: Option<&str>) {
    match s {
        Some(s) => {
            h.update([1]);
            put_str(h, s);
        }
        None => h.update([0]),
    }
}

impl ScanRecord {
    /// The record's hash, which the next record carries as `prev_hash`: SHA-256
    /// over a length-prefixed encoding of every field, in declaration order, so
    /// that no two different records hash alike.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"JO-SCAN-v1\0");
        put_str(&mut h, self.scan_id.as_str());
        h.update(self.seq.to_be_bytes());
        put_str(&mut h, &self.prev_hash);
        match &self.ticket_id {
            Some(id) => {
                h.update([1]);
                h.update(id.0);
            }
            None => h.update([0]),
        }
        match self.session_id {
            Some(s) => {
                h.update([1]);
                h.update(s.to_be_bytes());
            }
            None => h.update([0]),
        }
        put_opt_str(&mut h, self.raw.as_deref());
        h.update([self.verdict.code()]);
        put_opt_str(&mut h, self.reason.as_deref());
        h.update([self.admits]);
        put_str(&mut h, &self.gate);
        h.update(self.scanned_at.to_be_bytes());
        h.finalize().into()
    }
}

/// The message a device signs for a batch: the batch is a run of its hash
/// chain, so signing the device id, the last record's position and hash covers
/// every record in it.
pub fn batch_message(device_id: &str, last_seq: u64, last_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = b"JO-SCAN-BATCH-v1\0".to_vec();
    m.extend_from_slice(&(device_id.len() as u64).to_be_bytes());
    m.extend_from_slice(device_id.as_bytes());
    m.extend_from_slice(&last_seq.to_be_bytes());
    m.extend_from_slice(last_hash);
    m
}

/// `POST /api/v1/scans`: a batch of the device's log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanBatch {
    /// Records in log order.
    pub records: Vec<ScanRecord>,
    /// Device signature (Ed25519, hex) over [`batch_message`] for the last record.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
    /// Records still waiting on the device after this batch, for the admin
    /// console's "pending uploads".
    #[serde(default)]
    pub pending: u64,
}

/// Answer to an upload.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanBatchResponse {
    /// Records stored now.
    pub stored: u32,
    /// Scan ids already stored earlier (a retried upload): not errors.
    pub duplicates: Vec<ScanId>,
    /// Conflicts detected in this batch (stored and flagged for admins).
    pub conflicts: u32,
    /// Server time, Unix seconds.
    pub server_time: i64,
}

/// OpenAPI schemas of the wire types whose JSON form is written by hand
/// (hex or text newtypes, and the revocation list types of
/// [`crate::revocation`]): what their `Serialize` impls produce.
#[cfg(feature = "openapi")]
mod schemas {
    use utoipa::openapi::schema::{
        ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
    };
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::{RevocationDelta, RevocationEntry, ScanId, SignedListState};
    use crate::signing::KeyId;
    use crate::ticket::TicketId;

    fn hex_string(digits: usize, what: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[0-9a-fA-F]{{{digits}}}$")))
            .description(Some(what))
    }

    fn unsigned(format: KnownFormat, what: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(format)))
            .minimum(Some(0))
            .description(Some(what))
    }

    fn signed(what: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .description(Some(what))
    }

    impl PartialSchema for TicketId {
        fn schema() -> RefOr<Schema> {
            hex_string(20, "Ticket id: 10 bytes, hex.").into()
        }
    }
    impl ToSchema for TicketId {}

    impl PartialSchema for KeyId {
        fn schema() -> RefOr<Schema> {
            hex_string(8, "Signing key id: 4 bytes, hex.").into()
        }
    }
    impl ToSchema for KeyId {}

    impl PartialSchema for ScanId {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(
                    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                ))
                .description(Some("Scan id: a UUID made by the device."))
                .into()
        }
    }
    impl ToSchema for ScanId {}

    impl PartialSchema for RevocationEntry {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .description(Some("One entry of the revocation list."))
                .property(
                    "version",
                    unsigned(KnownFormat::Int64, "Position in the list, from 1."),
                )
                .required("version")
                .property("ticket_id", Ref::from_schema_name(TicketId::name()))
                .required("ticket_id")
                .property(
                    "reason",
                    unsigned(KnownFormat::Int32, "Reason code (0 other, 1 refunded, 2 session cancelled, 3 reissued, 4 fraud).")
                        .maximum(Some(255)),
                )
                .required("reason")
                .property("revoked_at", signed("When it was revoked, Unix seconds."))
                .required("revoked_at")
                .into()
        }
    }
    impl ToSchema for RevocationEntry {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((TicketId::name().into_owned(), TicketId::schema()));
        }
    }

    impl PartialSchema for SignedListState {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .description(Some("The revocation list state, signed by the server."))
                .property(
                    "version",
                    unsigned(KnownFormat::Int64, "Number of entries."),
                )
                .required("version")
                .property(
                    "head",
                    hex_string(64, "Chain head after the last entry, hex."),
                )
                .required("head")
                .property(
                    "issued_at",
                    signed("When the server signed it, Unix seconds."),
                )
                .required("issued_at")
                .property("key_id", Ref::from_schema_name(KeyId::name()))
                .required("key_id")
                .property("signature", hex_string(128, "Ed25519 signature, hex."))
                .required("signature")
                .into()
        }
    }
    impl ToSchema for SignedListState {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((KeyId::name().into_owned(), KeyId::schema()));
        }
    }

    impl PartialSchema for RevocationDelta {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .description(Some(
                    "Entries after `from_version` and the signed state they lead to.",
                ))
                .property(
                    "from_version",
                    unsigned(
                        KnownFormat::Int64,
                        "The version the delta starts from (0: the full list).",
                    ),
                )
                .required("from_version")
                .property(
                    "entries",
                    ArrayBuilder::new().items(Ref::from_schema_name(RevocationEntry::name())),
                )
                .required("entries")
                .property("state", Ref::from_schema_name(SignedListState::name()))
                .required("state")
                .into()
        }
    }
    impl ToSchema for RevocationDelta {
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((
                RevocationEntry::name().into_owned(),
                RevocationEntry::schema(),
            ));
            schemas.push((
                SignedListState::name().into_owned(),
                SignedListState::schema(),
            ));
            RevocationEntry::schemas(schemas);
            SignedListState::schemas(schemas);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ScanRecord {
        ScanRecord {
            scan_id: ScanId::parse("7f1c6a5e-8a0e-4a53-9a53-2b7f6d2d2a10").expect("uuid"),
            seq: 1,
            prev_hash: "0".repeat(64),
            ticket_id: Some(TicketId([1; 10])),
            session_id: Some(12),
            raw: None,
            verdict: ScanVerdict::Admit,
            reason: None,
            admits: 2,
            gate: "Porte A".into(),
            scanned_at: 1_753_000_000,
            signature: None,
        }
    }

    #[test]
    fn record_hash_covers_every_field() {
        let base = record();
        let h = base.hash();
        let variants: Vec<fn(&mut ScanRecord)> = vec![
            |r| r.scan_id = ScanId::parse("7f1c6a5e-8a0e-4a53-9a53-2b7f6d2d2a11").expect("uuid"),
            |r| r.seq += 1,
            |r| r.prev_hash = "1".repeat(64),
            |r| r.ticket_id = None,
            |r| r.session_id = Some(13),
            |r| r.raw = Some(String::new()),
            |r| r.verdict = ScanVerdict::Used,
            |r| r.reason = Some("x".into()),
            |r| r.admits = 1,
            |r| r.gate = "Porte B".into(),
            |r| r.scanned_at += 1,
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut r = base.clone();
            change(&mut r);
            assert_ne!(r.hash(), h, "field {i} is not covered");
        }
    }

    #[test]
    fn scan_ids_are_random_v4_uuids_and_parse_strictly() {
        let a = ScanId::generate().expect("csprng");
        assert_ne!(a, ScanId::generate().expect("csprng"));
        assert_eq!(ScanId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.as_str().as_bytes()[14], b'4');
        assert!(ScanId::parse("7F1C6A5E-8A0E-4A53-9A53-2B7F6D2D2A10").is_some());
        for bad in [
            "",
            "x",
            "7f1c6a5e8a0e4a539a532b7f6d2d2a10",
            "7f1c6a5e-8a0e-4a53-9a53-2b7f6d2d2a1g",
        ] {
            assert!(ScanId::parse(bad).is_none(), "{bad}");
        }
        assert!(serde_json::from_str::<ScanId>("\"nope\"").is_err());
    }

    #[test]
    fn types_round_trip_through_json() {
        let batch = ScanBatch {
            records: vec![record()],
            signature: "00".repeat(64),
            pending: 3,
        };
        let json = serde_json::to_string(&batch).expect("serializes");
        assert_eq!(
            serde_json::from_str::<ScanBatch>(&json).expect("parses"),
            batch
        );
        let rule: EntryRule =
            serde_json::from_str(r#"{"rule":"multiple","max_entries":3}"#).expect("parses");
        assert_eq!(rule, EntryRule::Multiple { max_entries: 3 });
        assert!(serde_json::from_str::<ScanRecord>(r#"{"scan_id":1}"#).is_err());
    }

    #[test]
    fn enrollment_invites_round_trip_and_refuse_anything_else() {
        let inv = EnrollmentInvite {
            server_url: "https://billets.example.fr:8443".into(),
            code: "ABCD-EFGH-1234".into(),
            keyring_fingerprint: [0xa5; 32],
        };
        assert_eq!(EnrollmentInvite::parse(&inv.to_qr_text()), Some(inv));
        let fp = "a5".repeat(32);
        for bad in [
            String::new(),
            "JO-ENROLL:2:".into(),
            "JO-ENROLL:2:abc".into(),
            format!("JO-ENROLL:2::{fp}:https://x"),
            "JO-ENROLL:1:abc:https://x".into(),
            format!("JO-ENROLL:3:abc:{fp}:https://x"),
            format!("JO-ENROLL:2:abc:{fp}:ftp://x"),
            format!("JO-ENROLL:2:a b:{fp}:https://x"),
            format!("JO-ENROLL:2:abc:{fp}:https://x y"),
            "JO-ENROLL:2:abc:abcd:https://x".into(),
            format!("JO-ENROLL:2:abc:{}:https://x", "zz".repeat(32)),
        ] {
            assert_eq!(EnrollmentInvite::parse(&bad), None, "{bad}");
        }
    }
}
