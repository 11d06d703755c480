//! Ed25519 signing of tickets, key ids and the public keyring.
//!
//! A key id is the first 4 bytes of SHA-256 over the raw 32-byte public key, so
//! anyone holding the public key can compute it. Rotation: the server signs with
//! one key at a time; the [`Keyring`] that scanners hold may list several keys,
//! so tickets signed by an older key keep verifying until that key is
//! *withdrawn* — then they are refused with their own reason.

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::doublekey::{RandomError, random_bytes};
use crate::ticket::{EncodeError, TicketPayload};

/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Identifies a signing key: first 4 bytes of SHA-256 of the raw public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// The id of a public key.
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest[..4]);
        Self(id)
    }

    /// Lower-case hexadecimal (8 digits).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 8 hexadecimal digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut id = [0u8; 4];
        hex::decode_to_slice(s, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("key id must be 8 hex digits"))
    }
}

/// The server's ticket-signing key with its id. The private half never leaves
/// the server (see `keys/README.md`); it is zeroed when dropped.
pub struct TicketSigner {
    key: SigningKey,
    id: KeyId,
}

impl fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketSigner")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl TicketSigner {
    /// Wraps a signing key.
    pub fn new(key: SigningKey) -> Self {
        let id = KeyId::of(&key.verifying_key());
        Self { key, id }
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        let mut seed = [0u8; 32];
        random_bytes(&mut seed)?;
        let key = SigningKey::from_bytes(&seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(Self::new(key))
    }

    /// The id that payloads signed by this key must carry.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The private key, for writing it to its key file.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs arbitrary bytes. Callers sign domain-separated messages (see
    /// [`crate::revocation`]); tickets go through [`Self::sign_ticket`].
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(message).to_bytes()
    }

    /// Encodes `payload` (its key id is set to this key's) and returns
    /// `payload ‖ signature`, the bytes that the QR string carries.
    pub fn sign_ticket(&self, payload: &TicketPayload) -> Result<Vec<u8>, EncodeError> {
        let mut payload = payload.clone();
        payload.key_id = self.id;
        let mut bytes = payload.encode()?;
        let sig = self.sign(&bytes);
        bytes.extend_from_slice(&sig);
        Ok(bytes)
    }
}

/// A public key in a [`Keyring`] and whether it still vouches for tickets.
#[derive(Clone, Debug)]
pub struct KeyringEntry {
    /// The key's id.
    pub id: KeyId,
    /// The public key.
    pub key: VerifyingKey,
    /// A withdrawn key no longer verifies anything. Its id stays known so that
    /// its tickets are refused as "withdrawn key", not "unknown key".
    pub withdrawn: bool,
}

/// What a keyring says about a key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup<'a> {
    /// The key may verify tickets.
    Active(&'a VerifyingKey),
    /// The key was withdrawn.
    Withdrawn,
    /// No key has this id.
    Unknown,
}

/// Signature check failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("bad signature")]
pub struct BadSignature;

/// Two different keys in one keyring share an id.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("key id {0} is already used by another key")]
pub struct KeyIdCollision(pub KeyId);

/// The public keys a verifier trusts, by id.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    entries: Vec<KeyringEntry>,
}

impl Keyring {
    /// An empty keyring: it verifies nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an active key. Adding a key already present is a no-op; a different
    /// key with the same id is refused (ids are 32 bits; keygen checks too).
    pub fn add(&mut self, key: VerifyingKey) -> Result<KeyId, KeyIdCollision> {
        let id = KeyId::of(&key);
        match self.entries.iter().find(|e| e.id == id) {
            Some(e) if e.key == key => Ok(id),
            Some(_) => Err(KeyIdCollision(id)),
            None => {
                self.entries.push(KeyringEntry {
                    id,
                    key,
                    withdrawn: false,
                });
                Ok(id)
            }
        }
    }

    /// Withdraws a key: tickets it signed are refused from now on. Returns
    /// whether the key was present.
    pub fn withdraw(&mut self, id: KeyId) -> bool {
        match self.entries.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                e.withdrawn = true;
                true
            }
            None => false,
        }
    }

    /// What the keyring knows of `id`.
    pub fn lookup(&self, id: KeyId) -> KeyLookup<'_> {
        match self.entries.iter().find(|e| e.id == id) {
            Some(e) if e.withdrawn => KeyLookup::Withdrawn,
            Some(e) => KeyLookup::Active(&e.key),
            None => KeyLookup::Unknown,
        }
    }

    /// Every key, active or withdrawn.
    pub fn entries(&self) -> &[KeyringEntry] {
        &self.entries
    }
}

/// Verifies an Ed25519 signature in strict mode (no malleable or small-order
/// encodings), on a possibly hostile `sig` slice of any length.
pub fn verify_signature(
    key: &VerifyingKey,
    message: &[u8],
    sig: &[u8],
) -> Result<(), BadSignature> {
    let sig: [u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| BadSignature)?;
    let sig = Signature::from_bytes(&sig);
    key.verify_strict(message, &sig).map_err(|_| BadSignature)
}

/// Parses a raw 32-byte public key, refusing bytes that are not a curve point.
pub fn verifying_key_from_bytes(bytes: &[u8]) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_sha256_prefix_of_the_public_key() {
        let signer = TicketSigner::new(SigningKey::from_bytes(&[7; 32]));
        let digest = Sha256::digest(signer.verifying_key().as_bytes());
        assert_eq!(signer.key_id().0, digest[..4]);
        assert_eq!(
            KeyId::from_hex(&signer.key_id().to_hex()),
            Some(signer.key_id())
        );
    }

    #[test]
    fn keyring_rotation_and_withdrawal() {
        let old = TicketSigner::new(SigningKey::from_bytes(&[1; 32]));
        let new = TicketSigner::new(SigningKey::from_bytes(&[2; 32]));
        let mut ring = Keyring::new();
        ring.add(old.verifying_key()).expect("adds");
        ring.add(new.verifying_key()).expect("adds");
        ring.add(new.verifying_key()).expect("re-adding is a no-op");
        assert_eq!(ring.entries().len(), 2);
        assert!(matches!(ring.lookup(old.key_id()), KeyLookup::Active(_)));
        assert!(ring.withdraw(old.key_id()));
        assert_eq!(ring.lookup(old.key_id()), KeyLookup::Withdrawn);
        assert!(matches!(ring.lookup(new.key_id()), KeyLookup::Active(_)));
        assert_eq!(ring.lookup(KeyId([0; 4])), KeyLookup::Unknown);
        assert!(!ring.withdraw(KeyId([0; 4])));
    }

    #[test]
    fn signatures_of_wrong_length_or_content_are_refused() {
        let s = TicketSigner::new(SigningKey::from_bytes(&[3; 32]));
        let sig = s.sign(b"hello");
        assert_eq!(verify_signature(&s.verifying_key(), b"hello", &sig), Ok(()));
        assert_eq!(
            verify_signature(&s.verifying_key(), b"hellp", &sig),
            Err(BadSignature)
        );
        assert_eq!(
            verify_signature(&s.verifying_key(), b"hello", &sig[..63]),
            Err(BadSignature)
        );
        assert!(verifying_key_from_bytes(&[0; 31]).is_none());
    }
}
