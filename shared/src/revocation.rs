//! The revocation list: versioned, append-only, signed by the server.
//!
//! Entry number `v` (versions start at 1 and have no gaps) names one revoked
//! ticket. The *state* of the list at version `v` is a hash chain:
//!
//! ```text
//! head(0) = 32 zero bytes
//! head(v) = SHA-256(head(v-1) ‖ entry_bytes(v))
//! entry_bytes = version u64 BE ‖ ticket id (10) ‖ reason code u8 ‖ revoked_at i64 BE
//! ```
//!
//! The server signs `"JO-REVOCATIONS-v1\0" ‖ version u64 BE ‖ head ‖ issued_at i64 BE`
//! with its ticket key. A device that holds version `a` asks for the entries
//! after `a`, recomputes the chain from its own head, and accepts the delta only
//! if the result carries a valid signature. A proxy that drops, adds, reorders or
//! alters an entry changes the head; one that replays an older signed state is
//! refused because versions never go back.
//!
//! In memory the list is a hash map from ticket id to reason code: O(1) lookup,
//! 12 bytes a bucket (10-byte id, 1-byte reason, 1 control byte) and between
//! 8/7 and 16/7 buckets an entry, so 14 to 28 bytes an entry: 25 MB for 1 M
//! entries (`cargo bench -p jo-shared` prints the measured figure).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::signing::{KeyId, KeyLookup, Keyring, TicketSigner, verify_signature};
use crate::ticket::{TICKET_ID_LEN, TicketId};

/// Domain-separation prefix of the signed list state.
pub const STATE_LABEL: &[u8] = b"JO-REVOCATIONS-v1\0";

/// How much older than the held one a signed state may be and still be
/// taken: several server nodes sign with their own clocks. The list keeps
/// the newest issue time it has seen, so an older state never makes it look
/// fresher, and one older by more than this is refused as a replay or a
/// server restored from a back-up.
pub const ISSUE_TIME_TOLERANCE_SECS: i64 = 120;

/// Why a ticket was revoked. Travels as a one-byte code so that a scanner built
/// before a new reason was added still verifies the list (and shows "other").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// The order was refunded.
    Refunded,
    /// The session was cancelled.
    SessionCancelled,
    /// A new ticket replaced this one.
    Reissued,
    /// Revoked by an admin for fraud.
    Fraud,
    /// Handed to another person (a transfer or a resale): the new holder has
    /// a ticket of their own.
    Transferred,
    /// Any other reason, including codes this build does not know.
    Other,
}

impl RevocationReason {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Refunded => 1,
            Self::SessionCancelled => 2,
            Self::Reissued => 3,
            Self::Fraud => 4,
            Self::Transferred => 5,
            Self::Other => 0,
        }
    }

    /// Reads a wire code; unknown codes mean [`Self::Other`].
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Refunded,
            2 => Self::SessionCancelled,
            3 => Self::Reissued,
            4 => Self::Fraud,
            5 => Self::Transferred,
            _ => Self::Other,
        }
    }

    /// A short stable name (`refunded`, `session_cancelled`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refunded => "refunded",
            Self::SessionCancelled => "session_cancelled",
            Self::Reissued => "reissued",
            Self::Fraud => "fraud",
            Self::Transferred => "transferred",
            Self::Other => "other",
        }
    }
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationEntry {
    /// Position in the list, from 1, without gaps.
    pub version: u64,
    /// The revoked ticket.
    pub ticket_id: TicketId,
    /// Reason code (see [`RevocationReason::from_code`]); kept raw so that the
    /// hash chain covers exactly what the server wrote.
    pub reason: u8,
    /// When it was revoked, Unix seconds.
    pub revoked_at: i64,
}

impl RevocationEntry {
    /// The canonical bytes that enter the hash chain.
    pub fn to_bytes(&self) -> [u8; 8 + TICKET_ID_LEN + 1 + 8] {
        let mut b = [0u8; 8 + TICKET_ID_LEN + 1 + 8];
        b[..8].copy_from_slice(&self.version.to_be_bytes());
        b[8..8 + TICKET_ID_LEN].copy_from_slice(&self.ticket_id.0);
        b[8 + TICKET_ID_LEN] = self.reason;
        b[8 + TICKET_ID_LEN + 1..].copy_from_slice(&self.revoked_at.to_be_bytes());
        b
    }
}

/// Next head of the chain after `entry`.
pub fn chain_next(head: &[u8; 32], entry: &RevocationEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(head);
    h.update(entry.to_bytes());
    h.finalize().into()
}

/// The list state, signed by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedListState {
    /// Number of entries.
    pub version: u64,
    /// Chain head after the last entry, hex.
    #[serde(with = "hex_32")]
    pub head: [u8; 32],
    /// When the server signed it, Unix seconds.
    pub issued_at: i64,
    /// Id of the signing key.
    pub key_id: KeyId,
    /// Ed25519 signature, hex.
    #[serde(with = "hex_64")]
    pub signature: [u8; 64],
}

fn state_message(version: u64, head: &[u8; 32], issued_at: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(STATE_LABEL.len() + 8 + 32 + 8);
    m.extend_from_slice(STATE_LABEL);
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(head);
    m.extend_from_slice(&issued_at.to_be_bytes());
    m
}

impl SignedListState {
    /// Signs a list state (server side).
    pub fn sign(signer: &TicketSigner, version: u64, head: [u8; 32], issued_at: i64) -> Self {
        Self {
            version,
            head,
            issued_at,
            key_id: signer.key_id(),
            signature: signer.sign(&state_message(version, &head, issued_at)),
        }
    }

    /// Checks the signature against an active key of `keyring`.
    pub fn verify(&self, keyring: &Keyring) -> Result<(), RevocationError> {
        let KeyLookup::Active(key) = keyring.lookup(self.key_id) else {
            return Err(RevocationError::UnknownKey(self.key_id));
        };
        verify_signature(
            key,
            &state_message(self.version, &self.head, self.issued_at),
            &self.signature,
        )
        .map_err(|_| RevocationError::BadSignature)
    }
}

/// Entries after `from_version` and the signed state they lead to: what the
/// sync API sends down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationDelta {
    /// The version the delta starts from (0: the full list).
    pub from_version: u64,
    /// Entries `from_version + 1 ..= state.version`, in order.
    pub entries: Vec<RevocationEntry>,
    /// The signed state after the last entry.
    pub state: SignedListState,
}

/// Why a delta was refused. The list is left as it was.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RevocationError {
    /// The delta does not start at this list's version.
    #[error("delta starts at version {got}, the list is at version {have}")]
    WrongBase {
        /// This list's version.
        have: u64,
        /// The delta's base.
        got: u64,
    },
    /// An entry is out of sequence (missing, repeated or reordered).
    #[error("entry version {got} where {expected} was expected")]
    OutOfSequence {
        /// Expected version.
        expected: u64,
        /// Version found.
        got: u64,
    },
    /// The entries do not lead to the signed state: cut, added or altered.
    #[error("the entries do not match the signed list state")]
    StateMismatch,
    /// The state is signed by a key that is unknown or withdrawn.
    #[error("revocation list signed by unknown or withdrawn key {0}")]
    UnknownKey(KeyId),
    /// The signature does not verify.
    #[error("bad signature on the revocation list")]
    BadSignature,
    /// The signed state is older than the one held: a replay, or a server
    /// restored from a back-up.
    #[error(
        "the revocation list offered (signed at {got}) is older than the one held (signed at {have})"
    )]
    Older {
        /// Issue time of the list held, Unix seconds.
        have: i64,
        /// Issue time of the list offered.
        got: i64,
    },
}

/// The revocation list as a device holds it.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    version: u64,
    head: [u8; 32],
    issued_at: i64,
    revoked: HashMap<TicketId, u8>,
}

/// What applying a delta changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Entries added.
    pub added: usize,
    /// The list's version now.
    pub version: u64,
}

impl RevocationList {
    /// An empty list at version 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a list from a trusted local store (the device's own database),
    /// where the state was verified when it was received.
    pub fn restore(
        version: u64,
        head: [u8; 32],
        issued_at: i64,
        entries: impl IntoIterator<Item = (TicketId, u8)>,
    ) -> Self {
        Self {
            version,
            head,
            issued_at,
            revoked: entries.into_iter().collect(),
        }
    }

    /// Verifies and applies a delta: either all of it or none of it.
    pub fn apply(
        &mut self,
        delta: &RevocationDelta,
        keyring: &Keyring,
    ) -> Result<Applied, RevocationError> {
        if delta.from_version != self.version {
            return Err(RevocationError::WrongBase {
                have: self.version,
                got: delta.from_version,
            });
        }
        let mut head = self.head;
        let mut expected = self.version;
        for e in &delta.entries {
            expected += 1;
            if e.version != expected {
                return Err(RevocationError::OutOfSequence {
                    expected,
                    got: e.version,
                });
            }
            head = chain_next(&head, e);
        }
        if delta.state.version != expected || delta.state.head != head {
            return Err(RevocationError::StateMismatch);
        }
        delta.state.verify(keyring)?;
        if delta.state.issued_at < self.issued_at.saturating_sub(ISSUE_TIME_TOLERANCE_SECS) {
            return Err(RevocationError::Older {
                have: self.issued_at,
                got: delta.state.issued_at,
            });
        }
        self.revoked.reserve(delta.entries.len());
        for e in &delta.entries {
            self.revoked.insert(e.ticket_id, e.reason);
        }
        self.version = expected;
        self.head = head;
        self.issued_at = self.issued_at.max(delta.state.issued_at);
        Ok(Applied {
            added: delta.entries.len(),
            version: expected,
        })
    }

    /// Why `id` is revoked, if it is. O(1).
    pub fn lookup(&self, id: &TicketId) -> Option<RevocationReason> {
        self.revoked
            .get(id)
            .map(|&c| RevocationReason::from_code(c))
    }

    /// The list's version (number of entries applied).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The chain head at this version.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// When the server signed the state this list is at.
    pub fn issued_at(&self) -> i64 {
        self.issued_at
    }

    /// Number of distinct revoked tickets.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    /// Bytes the lookup table occupies on the heap (slots and control bytes).
    pub fn heap_bytes(&self) -> usize {
        // hashbrown: one (key, value) slot and one control byte per bucket,
        // buckets = capacity * 8 / 7 rounded up to a power of two.
        let buckets = (self.revoked.capacity() * 8 / 7).next_power_of_two();
        buckets * (std::mem::size_of::<(TicketId, u8)>() + 1)
    }
}

/// Server-side helper: builds the entries and heads of a list in order.
#[derive(Debug, Clone, Default)]
pub struct ListBuilder {
    version: u64,
    head: [u8; 32],
}

impl ListBuilder {
    /// Continues a list from a stored version and head.
    pub fn resume(version: u64, head: [u8; 32]) -> Self {
        Self { version, head }
    }

    /// Appends a revocation and returns its entry.
    pub fn push(
        &mut self,
        ticket_id: TicketId,
        reason: RevocationReason,
        revoked_at: i64,
    ) -> RevocationEntry {
        self.version += 1;
        let e = RevocationEntry {
            version: self.version,
            ticket_id,
            reason: reason.code(),
            revoked_at,
        };
        self.head = chain_next(&self.head, &e);
        e
    }

    /// Current version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Current head.
    pub fn head(&self) -> [u8; 32] {
        self.head
    }

    /// Signs the current state.
    pub fn sign(&self, signer: &TicketSigner, issued_at: i64) -> SignedListState {
        SignedListState::sign(signer, self.version, self.head, issued_at)
    }
}

macro_rules! hex_array {
    ($name:ident, $n:expr) => {
        pub(crate) mod $name {
            pub fn serialize<S: serde::Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(v))
            }
            pub fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<[u8; $n], D::Error> {
                use serde::Deserialize;
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                let mut out = [0u8; $n];
                hex::decode_to_slice(s.as_bytes(), &mut out).map_err(serde::de::Error::custom)?;
                Ok(out)
            }
        }
    };
}
hex_array!(hex_32, 32);
hex_array!(hex_64, 64);

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn id(n: u8) -> TicketId {
        TicketId([n; TICKET_ID_LEN])
    }

    fn setup() -> (TicketSigner, Keyring) {
        let s = TicketSigner::new(SigningKey::from_bytes(&[9; 32]));
        let mut ring = Keyring::new();
        ring.add(s.verifying_key()).expect("adds");
        (s, ring)
    }

    fn delta(b: &mut ListBuilder, s: &TicketSigner, ids: &[u8]) -> RevocationDelta {
        let from_version = b.version();
        let entries = ids
            .iter()
            .map(|&n| b.push(id(n), RevocationReason::Refunded, 1_700_000_000))
            .collect();
        RevocationDelta {
            from_version,
            entries,
            state: b.sign(s, 1_700_000_100),
        }
    }

    #[test]
    fn deltas_merge_in_order() {
        let (s, ring) = setup();
        let mut b = ListBuilder::default();
        let mut list = RevocationList::new();
        let d1 = delta(&mut b, &s, &[1, 2]);
        assert_eq!(
            list.apply(&d1, &ring),
            Ok(Applied {
                added: 2,
                version: 2
            })
        );
        let d2 = delta(&mut b, &s, &[3]);
        list.apply(&d2, &ring).expect("applies");
        assert_eq!(list.lookup(&id(3)), Some(RevocationReason::Refunded));
        assert_eq!(list.lookup(&id(4)), None);
        assert_eq!(list.version(), 3);
        // Replaying an old delta is refused: versions never go back.
        assert!(matches!(
            list.apply(&d1, &ring),
            Err(RevocationError::WrongBase { .. })
        ));
        // An empty delta at the current version refreshes the signed state.
        let d3 = delta(&mut b, &s, &[]);
        assert_eq!(
            list.apply(&d3, &ring),
            Ok(Applied {
                added: 0,
                version: 3
            })
        );
    }

    #[test]
    fn tampered_deltas_are_refused_and_change_nothing() {
        let (s, ring) = setup();
        let mut b = ListBuilder::default();
        let good = delta(&mut b, &s, &[1, 2, 3]);

        let mut removed = good.clone();
        removed.entries.remove(1);
        let mut list = RevocationList::new();
        assert!(list.apply(&removed, &ring).is_err());

        let mut cut = good.clone();
        cut.entries.pop();
        assert_eq!(list.apply(&cut, &ring), Err(RevocationError::StateMismatch));

        let mut altered = good.clone();
        altered.entries[0].ticket_id = id(7);
        assert_eq!(
            list.apply(&altered, &ring),
            Err(RevocationError::StateMismatch)
        );

        let mut resigned = good.clone();
        resigned.state.signature[0] ^= 1;
        assert_eq!(
            list.apply(&resigned, &ring),
            Err(RevocationError::BadSignature)
        );

        let other = TicketSigner::new(SigningKey::from_bytes(&[8; 32]));
        let mut forged = good.clone();
        forged.state = SignedListState::sign(&other, 3, good.state.head, 0);
        assert!(matches!(
            list.apply(&forged, &ring),
            Err(RevocationError::UnknownKey(_))
        ));

        assert_eq!(list.version(), 0);
        assert!(list.is_empty());
        list.apply(&good, &ring)
            .expect("the untouched delta applies");
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn a_list_signed_before_the_one_held_is_refused() {
        let (s, ring) = setup();
        let mut b = ListBuilder::default();
        let mut list = RevocationList::new();
        let d1 = delta(&mut b, &s, &[1]);
        list.apply(&d1, &ring).expect("applies");
        let fresh = RevocationDelta {
            from_version: 1,
            entries: vec![],
            state: b.sign(&s, 1_700_000_500),
        };
        list.apply(&fresh, &ring).expect("refreshes");
        assert_eq!(list.issued_at(), 1_700_000_500);
        // Signed a minute earlier by another node: taken, but the list
        // keeps its newest issue time.
        let other_node = RevocationDelta {
            from_version: 1,
            entries: vec![],
            state: b.sign(&s, 1_700_000_440),
        };
        list.apply(&other_node, &ring)
            .expect("within the clock tolerance");
        assert_eq!(list.issued_at(), 1_700_000_500);
        // The same version replayed with its older signature.
        let replay = RevocationDelta {
            from_version: 1,
            entries: vec![],
            state: d1.state.clone(),
        };
        assert_eq!(
            list.apply(&replay, &ring),
            Err(RevocationError::Older {
                have: 1_700_000_500,
                got: 1_700_000_100
            })
        );
        assert_eq!(list.issued_at(), 1_700_000_500);
    }

    #[test]
    fn unknown_reason_codes_read_as_other() {
        assert_eq!(RevocationReason::from_code(200), RevocationReason::Other);
        for r in [
            RevocationReason::Refunded,
            RevocationReason::SessionCancelled,
            RevocationReason::Reissued,
            RevocationReason::Fraud,
            RevocationReason::Other,
        ] {
            assert_eq!(RevocationReason::from_code(r.code()), r);
        }
    }

    #[test]
    fn signed_state_survives_json() {
        let (s, _) = setup();
        let mut b = ListBuilder::default();
        let d = delta(&mut b, &s, &[1]);
        let json = serde_json::to_string(&d).expect("serializes");
        let back: RevocationDelta = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, d);
    }
}
