//! The one entry point from a scanned string to a verdict.
//!
//! Checks run in this order, and the first that fails gives the reason:
//! strict base64url → payload format → known, not withdrawn key → signature →
//! session served by this device → validity window (with clock-skew tolerance)
//! → not revoked → not already used. [`verify`] never panics, whatever the input.

use serde::{Deserialize, Serialize};

use crate::qr::{self, QrStringError};
use crate::revocation::{RevocationList, RevocationReason};
use crate::signing::{KeyLookup, Keyring, verify_signature};
use crate::ticket::{DecodeError, TicketPayload};

/// An earlier entry of a ticket, as the device knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorEntry {
    /// When it was admitted, Unix seconds (device time).
    pub scanned_at: i64,
    /// The gate that admitted it.
    pub gate: String,
}

/// Whether a ticket has already been used, as far as this device knows (its
/// own log and the entries other devices uploaded). The implementation applies
/// the session's entry rule: with re-entry allowed it answers `None`.
pub trait EntryLookup {
    /// The entry that makes `ticket` already used, if any.
    fn prior_entry(&self, ticket: &TicketPayload) -> Option<PriorEntry>;
}

/// No entries known (first scan of the day, or a test).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEntries;

impl EntryLookup for NoEntries {
    fn prior_entry(&self, _: &TicketPayload) -> Option<PriorEntry> {
        None
    }
}

impl<S: std::hash::BuildHasher> EntryLookup
    for std::collections::HashMap<crate::TicketId, PriorEntry, S>
{
    fn prior_entry(&self, ticket: &TicketPayload) -> Option<PriorEntry> {
        self.get(&ticket.ticket_id).cloned()
    }
}

/// What the verifier knows and when it is.
pub struct VerifyContext<'a> {
    /// Keys that may vouch for tickets.
    pub keyring: &'a Keyring,
    /// Sessions this device admits to.
    pub sessions: &'a [u32],
    /// Now, Unix seconds (device clock).
    pub now: i64,
    /// Tolerated clock difference between issuer and device, seconds.
    pub skew_secs: i64,
    /// The synced revocation list.
    pub revocations: &'a RevocationList,
    /// Earlier entries.
    pub entries: &'a dyn EntryLookup,
}

/// Why a ticket is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// Not a ticket string at all (bad characters, length).
    BadEncoding,
    /// A ticket of a format version this scanner does not know.
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The payload is malformed.
    Malformed,
    /// Signed by a key this device does not know.
    UnknownKey,
    /// Signed by a key that was withdrawn.
    WithdrawnKey,
    /// The signature does not verify: forged or altered.
    BadSignature,
    /// A ticket for a session this gate does not serve.
    WrongSession,
    /// Too early.
    NotYetValid,
    /// Too late.
    Expired,
    /// Revoked by the server.
    Revoked {
        /// Why.
        reason: RevocationReason,
    },
}

impl Refusal {
    /// Stable machine-readable code (`bad_signature`, `revoked`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadEncoding => "bad_encoding",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::Malformed => "malformed",
            Self::UnknownKey => "unknown_key",
            Self::WithdrawnKey => "withdrawn_key",
            Self::BadSignature => "bad_signature",
            Self::WrongSession => "wrong_session",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::Revoked { .. } => "revoked",
        }
    }
}

/// Every reason code a gate logs ([`Verdict::reason_code`]): the refusals'
/// codes, then `already_used`. Readers (the admin console) name each one.
pub const REASON_CODES: &[&str] = &[
    "bad_encoding",
    "unsupported_version",
    "malformed",
    "unknown_key",
    "withdrawn_key",
    "bad_signature",
    "wrong_session",
    "not_yet_valid",
    "expired",
    "revoked",
    "already_used",
];

/// The outcome of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let `ticket.admits` people in.
    Admit {
        /// The verified ticket.
        ticket: TicketPayload,
    },
    /// Refused. `ticket` is set only when its signature verified, so that an
    /// unverified holder name is never shown as if it were genuine.
    Refuse {
        /// Why.
        reason: Refusal,
        /// The authentic ticket, if the signature verified.
        ticket: Option<TicketPayload>,
    },
    /// Genuine but already used.
    AlreadyUsed {
        /// The verified ticket.
        ticket: TicketPayload,
        /// When and where it was used.
        prior: PriorEntry,
    },
}

impl Verdict {
    /// `admit`, `refuse` or `used`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Admit { .. } => "admit",
            Self::Refuse { .. } => "refuse",
            Self::AlreadyUsed { .. } => "used",
        }
    }

    /// The ticket, when authentic.
    pub fn ticket(&self) -> Option<&TicketPayload> {
        match self {
            Self::Admit { ticket } | Self::AlreadyUsed { ticket, .. } => Some(ticket),
            Self::Refuse { ticket, .. } => ticket.as_ref(),
        }
    }

    /// The refusal reason's code, `already_used`, or `None` for an admission.
    pub fn reason_code(&self) -> Option<&'static str> {
        match self {
            Self::Admit { .. } => None,
            Self::Refuse { reason, .. } => Some(reason.code()),
            Self::AlreadyUsed { .. } => Some("already_used"),
        }
    }
}

fn refuse(reason: Refusal) -> Verdict {
    Verdict::Refuse {
        reason,
        ticket: None,
    }
}

/// Decodes a scanned string and checks its signature against `keyring`,
/// nothing more: the authentic ticket, or why it is not one. The server uses
/// it to check the ticket text of an uploaded admission. Never panics.
pub fn authenticate(scanned: &str, keyring: &Keyring) -> Result<TicketPayload, Refusal> {
    let (payload_bytes, sig) = match qr::decode_string(scanned.trim()) {
        Ok(parts) => parts,
        Err(QrStringError::TooLong | QrStringError::BadBase64 | QrStringError::TooShort) => {
            return Err(Refusal::BadEncoding);
        }
    };
    let ticket = match TicketPayload::decode(&payload_bytes) {
        Ok(t) => t,
        Err(DecodeError::UnsupportedVersion(version)) => {
            return Err(Refusal::UnsupportedVersion { version });
        }
        Err(_) => return Err(Refusal::Malformed),
    };
    let key = match keyring.lookup(ticket.key_id) {
        KeyLookup::Active(k) => k,
        KeyLookup::Withdrawn => return Err(Refusal::WithdrawnKey),
        KeyLookup::Unknown => return Err(Refusal::UnknownKey),
    };
    if verify_signature(key, &payload_bytes, &sig).is_err() {
        return Err(Refusal::BadSignature);
    }
    Ok(ticket)
}

/// Verifies a scanned string. Never panics.
pub fn verify(scanned: &str, ctx: &VerifyContext<'_>) -> Verdict {
    let ticket = match authenticate(scanned, ctx.keyring) {
        Ok(t) => t,
        Err(reason) => return refuse(reason),
    };
    // From here on the ticket is authentic.
    let authentic = |reason| Verdict::Refuse {
        reason,
        ticket: Some(ticket.clone()),
    };
    if !ctx.sessions.contains(&ticket.session_id) {
        return authentic(Refusal::WrongSession);
    }
    let skew = ctx.skew_secs.max(0);
    if ctx.now.saturating_add(skew) < i64::from(ticket.valid_from) {
        return authentic(Refusal::NotYetValid);
    }
    if ctx.now.saturating_sub(skew) >= ticket.valid_until() {
        return authentic(Refusal::Expired);
    }
    if let Some(reason) = ctx.revocations.lookup(&ticket.ticket_id) {
        return authentic(Refusal::Revoked { reason });
    }
    if let Some(prior) = ctx.entries.prior_entry(&ticket) {
        return Verdict::AlreadyUsed { ticket, prior };
    }
    Verdict::Admit { ticket }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_a_gate_logs_is_in_the_list_of_codes() {
        let all = [
            Refusal::BadEncoding,
            Refusal::UnsupportedVersion { version: 9 },
            Refusal::Malformed,
            Refusal::UnknownKey,
            Refusal::WithdrawnKey,
            Refusal::BadSignature,
            Refusal::WrongSession,
            Refusal::NotYetValid,
            Refusal::Expired,
            Refusal::Revoked {
                reason: RevocationReason::Fraud,
            },
        ];
        let mut codes: Vec<&str> = all.iter().map(Refusal::code).collect();
        codes.push("already_used");
        assert_eq!(codes, REASON_CODES);
    }
}
