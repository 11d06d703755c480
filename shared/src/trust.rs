//! What a gate trusts, and how that trust moves on without re-enrolment.
//!
//! A gate decides offline, so everything it learns from the network must be
//! checkable against something it already holds. Three documents do that:
//!
//! - the **signed keyring** ([`SignedKeyring`]): the ticket-signing keys at one
//!   version. Version 1 is signed by its own key; every later version is
//!   signed by a key that is active in the version before it (a *rotation
//!   statement*: a key added, a key withdrawn). A gate pins one version at
//!   enrolment (the admin's enrolment QR and the enrolment answer carry its
//!   [fingerprint](SignedKeyring::fingerprint)) and afterwards accepts only a
//!   chain of statements leading from it ([`advance`]), with versions that
//!   only grow. A proxy that adds a key, swaps one, or withdraws the real ones
//!   cannot sign such a statement.
//! - the **device list** ([`SignedDeviceList`]): the enrolled gates' public
//!   keys and whether each is revoked, signed by the server's ticket key. A
//!   gate checks it with its pinned keyring.
//! - **signed admissions** ([`admission_message`]): each admission a gate logs
//!   carries that gate's own signature, so an entry relayed by the server (or,
//!   later, by a peer) cannot be invented in transit: the receiving gate checks
//!   it against the device list.
//!
//! Every byte string signed here starts with its own domain-separation label,
//! so no signature made for one document verifies as another (or as a ticket).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::signing::{
    KeyId, KeyLookup, Keyring, TicketSigner, verify_signature, verifying_key_from_bytes,
};
use crate::ticket::TicketId;

/// Domain-separation label of a signed keyring.
pub const KEYRING_LABEL: &[u8] = b"JO-KEYRING-v1\0";
/// Domain-separation label of the signed device list.
pub const DEVICES_LABEL: &[u8] = b"JO-DEVICES-v1\0";
/// Domain-separation label of a gate's signed admission.
pub const ADMISSION_LABEL: &[u8] = b"JO-ADMISSION-v1\0";

/// Most keys one keyring statement may list (a hostile server cannot make a
/// gate hash an unbounded list).
pub const MAX_KEYS: usize = 256;
/// Most statements one chain may hold.
pub const MAX_CHAIN: usize = 4096;
/// Most devices one device list may hold.
pub const MAX_DEVICES: usize = 100_000;

/// Why a trust document was refused. What the gate held is kept.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TrustError {
    /// A field does not parse (bad hex, base64, length, point).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A key id does not match its key, or two keys share an id.
    #[error("key id {0} does not match its key")]
    KeyIdMismatch(KeyId),
    /// No statement of the chain matches the pinned fingerprint.
    #[error("the server's keyring does not match the fingerprint of the enrolment code")]
    FingerprintMismatch,
    /// The chain skips or repeats a version.
    #[error("keyring version {got} where {expected} was expected")]
    OutOfSequence {
        /// Expected version.
        expected: u64,
        /// Version found.
        got: u64,
    },
    /// The chain is older than what the gate holds, or rewrites it.
    #[error("keyring version {got} is behind the pinned version {have}")]
    Older {
        /// Version held.
        have: u64,
        /// Newest version offered.
        got: u64,
    },
    /// A statement carries no valid signature of a key the previous version trusts.
    #[error("keyring version {0} is not signed by a key the gate trusts")]
    Untrusted(u64),
    /// A document is signed by a key unknown to (or withdrawn from) the pinned keyring.
    #[error("signed by unknown or withdrawn key {0}")]
    UnknownKey(KeyId),
    /// A signature does not verify.
    #[error("bad signature on the {0}")]
    BadSignature(&'static str),
    /// Too many keys, statements or devices.
    #[error("too many items in the {0}")]
    TooLarge(&'static str),
}

/// One public key of a keyring statement.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's id.
    pub key_id: KeyId,
    /// Raw Ed25519 public key, base64url without padding.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{43}$"))]
    pub public_key: String,
    /// Withdrawn keys are listed so that their tickets get their own refusal reason.
    pub withdrawn: bool,
}

/// A signature over a trust document by one ticket-signing key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySignature {
    /// The signing key's id.
    pub key_id: KeyId,
    /// Ed25519 signature, hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

/// The ticket-signing keys at one version, signed (see the module docs).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedKeyring {
    /// Version, from 1, growing by one with each change.
    pub version: u64,
    /// Every key, active or withdrawn, in the server's order (active key first).
    pub keys: Vec<KeyInfo>,
    /// Signatures over [`SignedKeyring::message`]: by the keys of the
    /// previous version that vouch for this one (and by this version's
    /// active key).
    pub signatures: Vec<KeySignature>,
}

fn decode_key(k: &KeyInfo) -> Result<[u8; 32], TrustError> {
    let raw = URL_SAFE_NO_PAD
        .decode(k.public_key.as_bytes())
        .map_err(|_| TrustError::Malformed("public key"))?;
    let raw: [u8; 32] = raw
        .try_into()
        .map_err(|_| TrustError::Malformed("public key"))?;
    let vk = verifying_key_from_bytes(&raw).ok_or(TrustError::Malformed("public key"))?;
    if KeyId::of(&vk) != k.key_id {
        return Err(TrustError::KeyIdMismatch(k.key_id));
    }
    Ok(raw)
}

fn decode_sig(s: &str) -> Result<[u8; 64], TrustError> {
    let mut out = [0u8; 64];
    hex::decode_to_slice(s.as_bytes(), &mut out).map_err(|_| TrustError::Malformed("signature"))?;
    Ok(out)
}

/// The keys of a [`Keyring`] as a statement lists them.
pub fn key_infos(ring: &Keyring) -> Vec<KeyInfo> {
    ring.entries()
        .iter()
        .map(|e| KeyInfo {
            key_id: e.id,
            public_key: URL_SAFE_NO_PAD.encode(e.key.as_bytes()),
            withdrawn: e.withdrawn,
        })
        .collect()
}

impl SignedKeyring {
    /// The bytes signed: label ‖ version u64 BE ‖ key count u32 BE ‖ for each
    /// key: id (4) ‖ raw public key (32) ‖ withdrawn (1).
    pub fn message(version: u64, keys: &[KeyInfo]) -> Result<Vec<u8>, TrustError> {
        if keys.len() > MAX_KEYS {
            return Err(TrustError::TooLarge("keyring"));
        }
        let mut m = Vec::with_capacity(KEYRING_LABEL.len() + 12 + keys.len() * 37);
        m.extend_from_slice(KEYRING_LABEL);
        m.extend_from_slice(&version.to_be_bytes());
        m.extend_from_slice(&(keys.len() as u32).to_be_bytes());
        for k in keys {
            let raw = decode_key(k)?;
            m.extend_from_slice(&k.key_id.0);
            m.extend_from_slice(&raw);
            m.push(u8::from(k.withdrawn));
        }
        Ok(m)
    }

    /// Signs `ring` at `version` with each of `signers` (server side).
    pub fn sign(version: u64, ring: &Keyring, signers: &[&TicketSigner]) -> Self {
        let keys = key_infos(ring);
        // The keys come from a Keyring: they decode by construction.
        let message = Self::message(version, &keys).unwrap_or_default();
        let mut signatures: Vec<KeySignature> = Vec::new();
        for s in signers {
            if signatures.iter().any(|x| x.key_id == s.key_id()) {
                continue;
            }
            signatures.push(KeySignature {
                key_id: s.key_id(),
                signature: hex::encode(s.sign(&message)),
            });
        }
        Self {
            version,
            keys,
            signatures,
        }
    }

    /// The statement's fingerprint: SHA-256 of its signed bytes. Two
    /// statements with the same version and keys have the same fingerprint,
    /// whoever signed them.
    pub fn fingerprint(&self) -> Result<[u8; 32], TrustError> {
        Ok(Sha256::digest(Self::message(self.version, &self.keys)?).into())
    }

    /// The fingerprint in lower-case hex (64 digits), as enrolment codes show it.
    pub fn fingerprint_hex(&self) -> Result<String, TrustError> {
        Ok(hex::encode(self.fingerprint()?))
    }

    /// The keyring this statement describes; every key id must match its key
    /// and no id may repeat.
    pub fn keyring(&self) -> Result<Keyring, TrustError> {
        let mut ring = Keyring::new();
        for k in &self.keys {
            let raw = decode_key(k)?;
            let vk = verifying_key_from_bytes(&raw).ok_or(TrustError::Malformed("public key"))?;
            if ring.entries().iter().any(|e| e.id == k.key_id) {
                return Err(TrustError::KeyIdMismatch(k.key_id));
            }
            ring.add(vk).map_err(|c| TrustError::KeyIdMismatch(c.0))?;
            if k.withdrawn {
                ring.withdraw(k.key_id);
            }
        }
        Ok(ring)
    }

    /// Whether `trusted` (the previous version's keyring) vouches for this
    /// statement: at least one signature by a key active there verifies.
    pub fn signed_by(&self, trusted: &Keyring) -> Result<(), TrustError> {
        let message = Self::message(self.version, &self.keys)?;
        let ok = self.signatures.iter().any(|s| {
            let KeyLookup::Active(key) = trusted.lookup(s.key_id) else {
                return false;
            };
            decode_sig(&s.signature).is_ok_and(|sig| verify_signature(key, &message, &sig).is_ok())
        });
        if ok {
            Ok(())
        } else {
            Err(TrustError::Untrusted(self.version))
        }
    }
}

/// Follows `chain` from the statement the gate holds (`held`) to the newest
/// one: each statement after `held` must have the next version and be signed
/// by a key active in the one before it. Statements at or below `held`'s
/// version are skipped, except that the one at `held`'s own version must be
/// `held` itself (a chain that rewrites history is refused). Returns the
/// newest statement, or `None` when the chain brings nothing newer. Nothing
/// is accepted unless the whole chain verifies.
pub fn advance(
    held: &SignedKeyring,
    chain: &[SignedKeyring],
) -> Result<Option<SignedKeyring>, TrustError> {
    if chain.len() > MAX_CHAIN {
        return Err(TrustError::TooLarge("keyring chain"));
    }
    let held_fp = held.fingerprint()?;
    let newest = chain.iter().map(|s| s.version).max().unwrap_or(0);
    if newest < held.version {
        return Err(TrustError::Older {
            have: held.version,
            got: newest,
        });
    }
    let mut current = held.clone();
    let mut ring = held.keyring()?;
    for s in chain {
        if s.version < held.version {
            continue;
        }
        if s.version == held.version && current.version == held.version {
            if s.fingerprint()? != held_fp {
                return Err(TrustError::Older {
                    have: held.version,
                    got: s.version,
                });
            }
            continue;
        }
        let expected = current.version + 1;
        if s.version != expected {
            return Err(TrustError::OutOfSequence {
                expected,
                got: s.version,
            });
        }
        s.signed_by(&ring)?;
        ring = s.keyring()?;
        current = s.clone();
    }
    Ok((current.version > held.version).then_some(current))
}

/// Pins the keyring at enrolment: finds the statement of `chain` whose
/// fingerprint is `expected` (from the admin's enrolment QR) and follows
/// the chain from there. Without a fingerprint (a code typed by hand), the
/// chain's first statement is taken on trust (it must be signed by its own
/// active key) — trust on first use, over TLS. Returns the newest statement.
pub fn pin(
    chain: &[SignedKeyring],
    expected: Option<&[u8; 32]>,
) -> Result<SignedKeyring, TrustError> {
    if chain.len() > MAX_CHAIN {
        return Err(TrustError::TooLarge("keyring chain"));
    }
    let start = match expected {
        Some(fp) => {
            let mut found = None;
            for s in chain {
                if s.fingerprint()? == *fp {
                    found = Some(s);
                    break;
                }
            }
            found.ok_or(TrustError::FingerprintMismatch)?
        }
        None => {
            let first = chain
                .first()
                .ok_or(TrustError::Malformed("keyring chain"))?;
            first.signed_by(&first.keyring()?)?;
            first
        }
    };
    Ok(advance(start, chain)?.unwrap_or_else(|| start.clone()))
}

/// Parses a fingerprint as enrolment codes show it: 64 hex digits (any
/// case; spaces and colons between groups allowed).
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
        .collect();
    let mut out = [0u8; 32];
    (digits.len() == 64 && hex::decode_to_slice(digits.as_bytes(), &mut out).is_ok()).then_some(out)
}

/// One enrolled gate device as the server vouches for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKey {
    /// The device's id.
    pub device_id: String,
    /// Its Ed25519 public key, base64url without padding.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{43}$"))]
    pub public_key: String,
    /// Revoked devices are listed so that their entries are ignored.
    pub revoked: bool,
}

/// `GET /api/v1/devices`: every enrolled device, signed by the server's
/// ticket key.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDeviceList {
    /// When the server signed it, Unix seconds.
    pub issued_at: i64,
    /// The devices.
    pub devices: Vec<DeviceKey>,
    /// Id of the signing key.
    pub key_id: KeyId,
    /// Ed25519 signature over [`SignedDeviceList::message`], hex.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

fn put_str(m: &mut Vec<u8>, s: &str) {
    m.extend_from_slice(&(s.len() as u64).to_be_bytes());
    m.extend_from_slice(s.as_bytes());
}

fn decode_device_key(s: &str) -> Result<[u8; 32], TrustError> {
    let raw = URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .map_err(|_| TrustError::Malformed("device key"))?;
    let raw: [u8; 32] = raw
        .try_into()
        .map_err(|_| TrustError::Malformed("device key"))?;
    verifying_key_from_bytes(&raw).ok_or(TrustError::Malformed("device key"))?;
    Ok(raw)
}

impl SignedDeviceList {
    /// The bytes signed: label ‖ issued_at i64 BE ‖ count u32 BE ‖ for each
    /// device: length-prefixed id ‖ raw public key (32) ‖ revoked (1).
    pub fn message(issued_at: i64, devices: &[DeviceKey]) -> Result<Vec<u8>, TrustError> {
        if devices.len() > MAX_DEVICES {
            return Err(TrustError::TooLarge("device list"));
        }
        let mut m = Vec::with_capacity(DEVICES_LABEL.len() + 12 + devices.len() * 70);
        m.extend_from_slice(DEVICES_LABEL);
        m.extend_from_slice(&issued_at.to_be_bytes());
        m.extend_from_slice(&(devices.len() as u32).to_be_bytes());
        for d in devices {
            put_str(&mut m, &d.device_id);
            m.extend_from_slice(&decode_device_key(&d.public_key)?);
            m.push(u8::from(d.revoked));
        }
        Ok(m)
    }

    /// Signs a device list (server side). Devices whose key does not decode
    /// are left out (the server checked every key at enrolment).
    pub fn sign(signer: &TicketSigner, issued_at: i64, devices: Vec<DeviceKey>) -> Self {
        let devices: Vec<DeviceKey> = devices
            .into_iter()
            .filter(|d| decode_device_key(&d.public_key).is_ok())
            .take(MAX_DEVICES)
            .collect();
        let message = Self::message(issued_at, &devices).unwrap_or_default();
        Self {
            issued_at,
            devices,
            key_id: signer.key_id(),
            signature: hex::encode(signer.sign(&message)),
        }
    }

    /// Checks the signature against an active key of the gate's pinned keyring.
    pub fn verify(&self, keyring: &Keyring) -> Result<(), TrustError> {
        let KeyLookup::Active(key) = keyring.lookup(self.key_id) else {
            return Err(TrustError::UnknownKey(self.key_id));
        };
        let message = Self::message(self.issued_at, &self.devices)?;
        let sig = decode_sig(&self.signature)?;
        verify_signature(key, &message, &sig).map_err(|_| TrustError::BadSignature("device list"))
    }

    /// The public key of a device the list vouches for: `None` when the
    /// device is unknown or revoked.
    pub fn active_key(&self, device_id: &str) -> Option<[u8; 32]> {
        self.devices
            .iter()
            .find(|d| d.device_id == device_id && !d.revoked)
            .and_then(|d| decode_device_key(&d.public_key).ok())
    }
}

/// What a gate's admission says, as its device signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission<'a> {
    /// The device that admitted.
    pub device_id: &'a str,
    /// Its scan id.
    pub scan_id: &'a str,
    /// The ticket admitted.
    pub ticket_id: &'a TicketId,
    /// Its session.
    pub session_id: u32,
    /// The gate's name.
    pub gate: &'a str,
    /// Device time of the scan, Unix seconds.
    pub scanned_at: i64,
}

/// The bytes a gate signs for one admission: label ‖ length-prefixed device
/// id ‖ length-prefixed scan id ‖ ticket id (10) ‖ session u32 BE ‖
/// length-prefixed gate ‖ scanned_at i64 BE.
pub fn admission_message(a: &Admission<'_>) -> Vec<u8> {
    let mut m = Vec::with_capacity(ADMISSION_LABEL.len() + 96);
    m.extend_from_slice(ADMISSION_LABEL);
    put_str(&mut m, a.device_id);
    put_str(&mut m, a.scan_id);
    m.extend_from_slice(&a.ticket_id.0);
    m.extend_from_slice(&a.session_id.to_be_bytes());
    put_str(&mut m, a.gate);
    m.extend_from_slice(&a.scanned_at.to_be_bytes());
    m
}

/// Domain-separation label of a LAN peer handshake proof. v2: the proof
/// also covers both ends' ephemeral X25519 keys, from which the
/// connection's frame keys are derived.
pub const PEER_HANDSHAKE_LABEL: &[u8] = b"JO-PEER-HANDSHAKE-v2\0";

/// Which end of a peer connection signs a handshake proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The gate that opened the connection.
    Dialer,
    /// The gate that accepted it.
    Listener,
}

/// What both ends of a LAN peer connection said in its handshake, and
/// what each proof signs.
#[derive(Debug, Clone, Copy)]
pub struct PeerHandshake<'a> {
    /// The device id of the gate that opened the connection.
    pub dialer_id: &'a str,
    /// The device id of the gate that accepted it.
    pub listener_id: &'a str,
    /// The dialer's fresh random nonce.
    pub dialer_nonce: &'a [u8; 32],
    /// The listener's fresh random nonce.
    pub listener_nonce: &'a [u8; 32],
    /// The dialer's ephemeral X25519 public key.
    pub dialer_ephemeral: &'a [u8; 32],
    /// The listener's ephemeral X25519 public key.
    pub listener_ephemeral: &'a [u8; 32],
}

impl PeerHandshake<'_> {
    /// The bytes a gate signs with its device key to prove, to a gate on
    /// the LAN, that it holds the key the signed device list names: label ‖
    /// role (1) ‖ dialer id ‖ listener id (length-prefixed) ‖ dialer nonce
    /// (32) ‖ listener nonce (32) ‖ dialer ephemeral (32) ‖ listener
    /// ephemeral (32). Each side checks the other's proof over its own
    /// fresh nonce, so a recorded proof is worth nothing in another
    /// connection; the role byte keeps a proof from being reflected back;
    /// the ephemeral keys are signed so that no one in the middle can put
    /// its own in and learn the frame keys.
    pub fn message(&self, role: PeerRole) -> Vec<u8> {
        let mut m = Vec::with_capacity(PEER_HANDSHAKE_LABEL.len() + 192);
        m.extend_from_slice(PEER_HANDSHAKE_LABEL);
        m.push(match role {
            PeerRole::Dialer => 1,
            PeerRole::Listener => 2,
        });
        put_str(&mut m, self.dialer_id);
        put_str(&mut m, self.listener_id);
        m.extend_from_slice(self.dialer_nonce);
        m.extend_from_slice(self.listener_nonce);
        m.extend_from_slice(self.dialer_ephemeral);
        m.extend_from_slice(self.listener_ephemeral);
        m
    }
}

/// Checks a peer's handshake proof (hex signature) with its raw public key.
pub fn verify_peer_proof(
    device_key: &[u8; 32],
    message: &[u8],
    signature_hex: &str,
) -> Result<(), TrustError> {
    let key = verifying_key_from_bytes(device_key).ok_or(TrustError::Malformed("device key"))?;
    let sig = decode_sig(signature_hex)?;
    verify_signature(&key, message, &sig).map_err(|_| TrustError::BadSignature("peer proof"))
}

/// Checks a device's signature (hex) over an admission with its raw public key.
pub fn verify_admission(
    device_key: &[u8; 32],
    admission: &Admission<'_>,
    signature_hex: &str,
) -> Result<(), TrustError> {
    let key = verifying_key_from_bytes(device_key).ok_or(TrustError::Malformed("device key"))?;
    let sig = decode_sig(signature_hex)?;
    verify_signature(&key, &admission_message(admission), &sig)
        .map_err(|_| TrustError::BadSignature("admission"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    #[test]
    fn a_peer_proof_covers_the_role_and_both_ephemeral_keys() {
        let hs = PeerHandshake {
            dialer_id: "dev-a",
            listener_id: "dev-b",
            dialer_nonce: &[1; 32],
            listener_nonce: &[2; 32],
            dialer_ephemeral: &[3; 32],
            listener_ephemeral: &[4; 32],
        };
        let m = hs.message(PeerRole::Dialer);
        assert_ne!(m, hs.message(PeerRole::Listener));
        let other_d = PeerHandshake {
            dialer_ephemeral: &[5; 32],
            ..hs
        };
        let other_l = PeerHandshake {
            listener_ephemeral: &[5; 32],
            ..hs
        };
        assert_ne!(m, other_d.message(PeerRole::Dialer));
        assert_ne!(m, other_l.message(PeerRole::Dialer));
        // A proof made over one pair of ephemeral keys is not valid for another.
        let key = SigningKey::from_bytes(&[9; 32]);
        let sig = hex::encode(key.sign(&m).to_bytes());
        let public = key.verifying_key().to_bytes();
        assert!(verify_peer_proof(&public, &m, &sig).is_ok());
        assert!(verify_peer_proof(&public, &other_l.message(PeerRole::Dialer), &sig).is_err());
    }

    fn signer(n: u8) -> TicketSigner {
        TicketSigner::new(SigningKey::from_bytes(&[n; 32]))
    }

    fn ring(keys: &[&TicketSigner], withdrawn: &[&TicketSigner]) -> Keyring {
        let mut r = Keyring::new();
        for k in keys {
            r.add(k.verifying_key()).expect("adds");
        }
        for k in withdrawn {
            r.withdraw(k.key_id());
        }
        r
    }

    /// v1: A; v2: B added (signed by A and B); v3: A withdrawn (signed by B).
    fn chain() -> (TicketSigner, TicketSigner, Vec<SignedKeyring>) {
        let (a, b) = (signer(1), signer(2));
        let v1 = SignedKeyring::sign(1, &ring(&[&a], &[]), &[&a]);
        let v2 = SignedKeyring::sign(2, &ring(&[&b, &a], &[]), &[&a, &b]);
        let v3 = SignedKeyring::sign(3, &ring(&[&b, &a], &[&a]), &[&b]);
        (a, b, vec![v1, v2, v3])
    }

    #[test]
    fn a_rotation_chain_is_followed_from_the_pinned_version() {
        let (a, b, chain) = chain();
        let newest = advance(&chain[0], &chain)
            .expect("verifies")
            .expect("newer");
        assert_eq!(newest.version, 3);
        let ring = newest.keyring().expect("ring");
        assert_eq!(ring.lookup(a.key_id()), KeyLookup::Withdrawn);
        assert!(matches!(ring.lookup(b.key_id()), KeyLookup::Active(_)));
        assert_eq!(advance(&chain[2], &chain).expect("verifies"), None);
        let pinned = pin(&chain, Some(&chain[1].fingerprint().expect("fp"))).expect("pins");
        assert_eq!(pinned.version, 3);
        assert_eq!(pin(&chain, None).expect("tofu").version, 3);
    }

    #[test]
    fn a_keyring_not_signed_by_a_trusted_key_is_refused() {
        let (_a, _b, chain) = chain();
        let evil = signer(66);
        // A proxy's version 2 adds its own key and signs with it.
        let forged = SignedKeyring::sign(2, &ring(&[&evil, &signer(1)], &[]), &[&evil]);
        assert_eq!(
            advance(&chain[0], &[chain[0].clone(), forged.clone()]),
            Err(TrustError::Untrusted(2))
        );
        // Withdrawing the real key without its consent.
        let stop = SignedKeyring::sign(2, &ring(&[&signer(1)], &[&signer(1)]), &[&evil]);
        assert_eq!(advance(&chain[0], &[stop]), Err(TrustError::Untrusted(2)));
        // The same keys, with a signature that does not verify.
        let mut bad = chain[1].clone();
        bad.signatures[0].signature = "00".repeat(64);
        bad.signatures.truncate(1);
        assert_eq!(advance(&chain[0], &[bad]), Err(TrustError::Untrusted(2)));
        // A key withdrawn at v3 can no longer vouch for v4.
        let a = signer(1);
        let v4 = SignedKeyring::sign(4, &ring(&[&evil, &a], &[]), &[&a]);
        let mut longer = chain.clone();
        longer.push(v4);
        assert_eq!(advance(&chain[0], &longer), Err(TrustError::Untrusted(4)));
    }

    #[test]
    fn a_keyring_chain_that_goes_back_or_skips_is_refused() {
        let (_a, _b, chain) = chain();
        assert_eq!(
            advance(&chain[2], &chain[..2]),
            Err(TrustError::Older { have: 3, got: 2 })
        );
        assert_eq!(
            advance(&chain[0], &[chain[0].clone(), chain[2].clone()]),
            Err(TrustError::OutOfSequence {
                expected: 2,
                got: 3
            })
        );
        // A different statement at the held version rewrites history.
        let other = SignedKeyring::sign(1, &ring(&[&signer(9)], &[]), &[&signer(9)]);
        assert!(matches!(
            advance(&chain[0], &[other]),
            Err(TrustError::Older { .. })
        ));
        assert_eq!(
            pin(&chain, Some(&[7; 32])),
            Err(TrustError::FingerprintMismatch)
        );
    }

    #[test]
    fn key_ids_that_lie_are_refused() {
        let (_a, _b, mut chain) = chain();
        chain[0].keys[0].key_id = signer(5).key_id();
        assert!(matches!(
            chain[0].keyring(),
            Err(TrustError::KeyIdMismatch(_))
        ));
        assert!(chain[0].fingerprint().is_err());
    }

    #[test]
    fn fingerprints_parse_in_their_printed_forms() {
        let fp = [0xab; 32];
        let h = hex::encode(fp);
        assert_eq!(parse_fingerprint(&h), Some(fp));
        assert_eq!(parse_fingerprint(&h.to_uppercase()), Some(fp));
        let grouped: Vec<String> = h
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert_eq!(parse_fingerprint(&grouped.join(" ")), Some(fp));
        assert_eq!(parse_fingerprint("abc"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn device_lists_and_admissions_verify_only_as_signed() {
        let server = signer(1);
        let keyring = ring(&[&server], &[]);
        let gate = SigningKey::from_bytes(&[3; 32]);
        let revoked = SigningKey::from_bytes(&[4; 32]);
        let devices = vec![
            DeviceKey {
                device_id: "dev-a".into(),
                public_key: URL_SAFE_NO_PAD.encode(gate.verifying_key().as_bytes()),
                revoked: false,
            },
            DeviceKey {
                device_id: "dev-r".into(),
                public_key: URL_SAFE_NO_PAD.encode(revoked.verifying_key().as_bytes()),
                revoked: true,
            },
        ];
        let list = SignedDeviceList::sign(&server, 1_000, devices);
        list.verify(&keyring).expect("verifies");
        assert!(list.active_key("dev-r").is_none());
        assert!(list.active_key("dev-x").is_none());
        let key = list.active_key("dev-a").expect("active");

        let mut forged = list.clone();
        forged.devices[1].revoked = false;
        assert_eq!(
            forged.verify(&keyring),
            Err(TrustError::BadSignature("device list"))
        );
        let by_other = SignedDeviceList::sign(&signer(2), 1_000, list.devices.clone());
        assert!(matches!(
            by_other.verify(&keyring),
            Err(TrustError::UnknownKey(_))
        ));

        let ticket = TicketId([7; 10]);
        let a = Admission {
            device_id: "dev-a",
            scan_id: "7f1c6a5e-8a0e-4a53-9a53-2b7f6d2d2a10",
            ticket_id: &ticket,
            session_id: 12,
            gate: "Porte A",
            scanned_at: 1_753_000_000,
        };
        let sig = hex::encode(gate.sign(&admission_message(&a)).to_bytes());
        verify_admission(&key, &a, &sig).expect("verifies");
        let moved = Admission {
            session_id: 13,
            ..a
        };
        assert!(verify_admission(&key, &moved, &sig).is_err());
        let other = TicketId([8; 10]);
        let swapped = Admission {
            ticket_id: &other,
            ..a
        };
        assert!(verify_admission(&key, &swapped, &sig).is_err());
        assert!(verify_admission(&key, &a, "zz").is_err());
    }
}
