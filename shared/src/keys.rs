//! Key files, as written by `jo-server keygen` and read by the server.
//!
//! A keys directory holds:
//!
//! - `signing.key.pem`: the active private key, PKCS#8 **v1** PEM (RFC 8410),
//!   mode 0600. Version 1 (no embedded public key) because OpenSSL 3.0 refuses
//!   the v2 form that ed25519-dalek writes by default.
//! - `keyring.pem`: every public key that tickets may still be verified with,
//!   one SPKI `PUBLIC KEY` PEM block each, the active key first. Rotation
//!   prepends the new key and keeps the old ones, so tickets already sold stay
//!   valid.
//! - `withdrawn.txt` (optional): ids of withdrawn keys, one per line (8 hex
//!   digits; `#` starts a comment). Their tickets are refused.
//! - `keyring.chain.json`: the signed keyring statements, version 1 first
//!   ([`crate::trust`]). Gates pin one at enrolment and accept a change of
//!   keys only as the next statement, signed by a key they already trust;
//!   [`update_chain`] appends one whenever the two files above change.
//!
//! See `keys/README.md` for the procedures.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::doublekey::RandomError;
use crate::signing::{KeyId, KeyIdCollision, KeyLookup, Keyring, TicketSigner};
use crate::trust::{self, SignedKeyring};

/// File name of the active private key inside a keys directory.
pub const SIGNING_KEY_FILE: &str = "signing.key.pem";
/// File name of the public keyring inside a keys directory.
pub const KEYRING_FILE: &str = "keyring.pem";
/// File name of the list of withdrawn key ids inside a keys directory.
pub const WITHDRAWN_FILE: &str = "withdrawn.txt";
/// File name of the signed keyring statements inside a keys directory.
pub const CHAIN_FILE: &str = "keyring.chain.json";

/// DER prefix of an Ed25519 PKCS#8 v1 `PrivateKeyInfo` (RFC 8410 §7), followed
/// by the 32-byte seed.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER prefix of a PKCS#8 v2 `OneAsymmetricKey` with the public key appended
/// (`[1] IMPLICIT BIT STRING`, RFC 8410 §10.3), as other tools write it.
const PKCS8_V2_PREFIX: [u8; 16] = [
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const PKCS8_V2_PUBLIC_TAG: [u8; 3] = [0x81, 0x21, 0x00];
/// DER prefix of an Ed25519 `SubjectPublicKeyInfo`, followed by the 32-byte key.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Errors of reading or writing key files.
#[derive(Debug, Error)]
pub enum KeyError {
    /// File-system error, with the path concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A signing key exists and `--force` was not given.
    #[error(
        "{0} already exists; use --force to rotate to a new key (the old public key stays in the keyring)"
    )]
    Exists(PathBuf),
    /// The file is not the PEM it should be.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The private key file is readable by other users.
    #[error("{0}: private key is readable by group or others (chmod 600 it)")]
    Permissions(PathBuf),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Two keys of the keyring share an id.
    #[error(transparent)]
    Collision(#[from] KeyIdCollision),
    /// The signing key cannot sign tickets: it is not in the keyring, or it
    /// was withdrawn.
    #[error("{0}")]
    SignerNotUsable(String),
    /// The keyring changed in a way no key the gates trust can vouch for.
    #[error("{path}: {reason}")]
    Chain {
        /// The chain file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block with the given label in `text`, decoded. Refuses malformed
/// blocks rather than skipping them: a keyring must not silently lose a key.
fn pem_blocks(text: &str, label: &str) -> Result<Vec<Zeroizing<Vec<u8>>>, &'static str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line == begin {
            if current.is_some() {
                return Err("nested PEM block");
            }
            current = Some(String::new());
        } else if line == end {
            let body = Zeroizing::new(current.take().ok_or("PEM end without begin")?);
            let der = STANDARD
                .decode(body.as_bytes())
                .map_err(|_| "bad base64 in PEM")?;
            blocks.push(Zeroizing::new(der));
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        } else if line.starts_with("-----BEGIN") {
            return Err("unexpected PEM block type");
        }
    }
    if current.is_some() {
        return Err("PEM block without end");
    }
    Ok(blocks)
}

/// PKCS#8 v1 PEM of a signing key.
pub fn signing_key_to_pem(key: &SigningKey) -> Zeroizing<String> {
    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&PKCS8_V1_PREFIX);
    der.extend_from_slice(key.as_bytes());
    Zeroizing::new(pem("PRIVATE KEY", &der))
}

/// Reads a PKCS#8 Ed25519 private key (v1, or v2 whose public key matches).
pub fn signing_key_from_pem(text: &str) -> Result<SigningKey, &'static str> {
    let blocks = pem_blocks(text, "PRIVATE KEY")?;
    let [der] = blocks.as_slice() else {
        return Err("expected exactly one PRIVATE KEY block");
    };
    let seed_of = |der: &[u8]| -> [u8; 32] {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&der[16..48]);
        seed
    };
    if der.len() == 48 && der[..16] == PKCS8_V1_PREFIX {
        return Ok(SigningKey::from_bytes(&seed_of(der)));
    }
    if der.len() == 83 && der[..16] == PKCS8_V2_PREFIX && der[48..51] == PKCS8_V2_PUBLIC_TAG {
        let key = SigningKey::from_bytes(&seed_of(der));
        if key.verifying_key().as_bytes()[..] != der[51..83] {
            return Err("embedded public key does not match the private key");
        }
        return Ok(key);
    }
    Err("not an Ed25519 PKCS#8 private key")
}

/// SPKI PEM of a public key.
pub fn public_key_to_pem(key: &VerifyingKey) -> String {
    let mut der = Vec::with_capacity(44);
    der.extend_from_slice(&SPKI_PREFIX);
    der.extend_from_slice(key.as_bytes());
    pem("PUBLIC KEY", &der)
}

/// Every Ed25519 SPKI public key in a PEM text, in order.
pub fn public_keys_from_pem(text: &str) -> Result<Vec<VerifyingKey>, &'static str> {
    pem_blocks(text, "PUBLIC KEY")?
        .iter()
        .map(|der| {
            if der.len() != 44 || der[..12] != SPKI_PREFIX {
                return Err("not an Ed25519 public key");
            }
            crate::signing::verifying_key_from_bytes(&der[12..]).ok_or("invalid Ed25519 point")
        })
        .collect()
}

/// What `keygen` did.
#[derive(Debug)]
pub struct Generated {
    /// Id of the new active key.
    pub key_id: KeyId,
    /// Path of the private key file.
    pub signing_key: PathBuf,
    /// Path of the keyring file.
    pub keyring: PathBuf,
    /// Id of the key it replaced, when rotating.
    pub rotated_from: Option<KeyId>,
}

/// Generates a new signing key in `dir` (created if missing, mode 0700).
///
/// Refuses to replace an existing key unless `force`; with `force`, the old
/// public key stays in the keyring so tickets it signed keep verifying.
pub fn generate(dir: &Path, force: bool) -> Result<Generated, KeyError> {
    create_private_dir(dir)?;
    let key_path = dir.join(SIGNING_KEY_FILE);
    let ring_path = dir.join(KEYRING_FILE);
    let old = if key_path.exists() {
        if !force {
            return Err(KeyError::Exists(key_path));
        }
        Some(load_signer(dir)?.key_id())
    } else {
        None
    };
    // The old key signs the statement that adds the new one, so gates that
    // trust it follow the rotation; it is read before anything changes.
    let old_signer = if old.is_some() {
        Some(load_signer(dir)?)
    } else {
        None
    };
    let signer = TicketSigner::generate()?;
    let mut keys = vec![signer.verifying_key()];
    if ring_path.exists() {
        keys.extend(load_public_keys(&ring_path)?);
    }
    // Check ids before writing anything: a collision must not leave a half-rotated directory.
    let mut ring = Keyring::new();
    for k in &keys {
        ring.add(*k)?;
    }
    let ring_text: String = ring
        .entries()
        .iter()
        .map(|e| public_key_to_pem(&e.key))
        .collect();
    write_atomic(&ring_path, ring_text.as_bytes(), 0o644)?;
    update_chain(dir, &[Some(&signer), old_signer.as_ref()])?;
    write_atomic(
        &key_path,
        signing_key_to_pem(signer.signing_key()).as_bytes(),
        0o600,
    )?;
    Ok(Generated {
        key_id: signer.key_id(),
        signing_key: key_path,
        keyring: ring_path,
        rotated_from: old,
    })
}

/// Loads the active signing key of `dir`, refusing a key file that group or
/// others may read.
pub fn load_signer(dir: &Path) -> Result<TicketSigner, KeyError> {
    let path = dir.join(SIGNING_KEY_FILE);
    check_private_mode(&path)?;
    let text = Zeroizing::new(fs::read_to_string(&path).map_err(io_err(&path))?);
    let key = signing_key_from_pem(&text).map_err(|reason| KeyError::Malformed {
        path: path.clone(),
        reason,
    })?;
    Ok(TicketSigner::new(key))
}

/// Reads every public key of a keyring PEM file.
pub fn load_public_keys(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    public_keys_from_pem(&text).map_err(|reason| KeyError::Malformed {
        path: path.to_owned(),
        reason,
    })
}

/// The keyring of `dir`: every key of `keyring.pem`, with those listed in
/// `withdrawn.txt` marked withdrawn.
pub fn load_keyring(dir: &Path) -> Result<Keyring, KeyError> {
    let mut ring = Keyring::new();
    for key in load_public_keys(&dir.join(KEYRING_FILE))? {
        ring.add(key)?;
    }
    let withdrawn = dir.join(WITHDRAWN_FILE);
    if withdrawn.exists() {
        let text = fs::read_to_string(&withdrawn).map_err(io_err(&withdrawn))?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let id = KeyId::from_hex(line).ok_or_else(|| KeyError::Malformed {
                path: withdrawn.clone(),
                reason: "each line must be a key id of 8 hex digits",
            })?;
            ring.withdraw(id);
        }
    }
    Ok(ring)
}

/// Checks that `signer` may sign tickets: its public key is in the keyring
/// and not withdrawn. A server that signed with any other key would sell
/// tickets that every gate refuses.
pub fn check_signer(ring: &Keyring, signer: &TicketSigner) -> Result<(), KeyError> {
    let id = signer.key_id();
    match ring.lookup(id) {
        KeyLookup::Active(k) if *k == signer.verifying_key() => Ok(()),
        KeyLookup::Active(_) | KeyLookup::Unknown => Err(KeyError::SignerNotUsable(format!(
            "the signing key {id} is not in {KEYRING_FILE}: tickets it signed would be refused \
             at every gate (rotate with `jo-server keygen --force`, or restore the keyring)"
        ))),
        KeyLookup::Withdrawn => Err(KeyError::SignerNotUsable(format!(
            "the signing key {id} is withdrawn ({WITHDRAWN_FILE}): tickets it signed would be \
             refused at every gate (rotate with `jo-server keygen --force` first)"
        ))),
    }
}

/// The signed keyring statements of `dir` (empty when none was written yet).
pub fn load_chain(dir: &Path) -> Result<Vec<SignedKeyring>, KeyError> {
    let path = dir.join(CHAIN_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&path)(e)),
    };
    serde_json::from_str(&text).map_err(|e| KeyError::Chain {
        path: path.clone(),
        reason: format!("not a keyring chain: {e}"),
    })
}

/// Brings the chain of `dir` up to its keyring files and returns it.
///
/// Nothing to do when the newest statement lists exactly the keys of
/// `keyring.pem` and `withdrawn.txt`. Otherwise a statement with the next
/// version is appended, signed by every one of `signers` (`None`s skipped)
/// — at least one of which must be active in the newest statement, or the
/// gates could not follow: then nothing is written and the error says why.
/// With no chain yet (a new key, or keys made before chains existed), the
/// first statement is signed by the signers themselves. Statements are
/// deterministic (Ed25519 signs deterministically), so several servers
/// sharing one keys directory write the same file.
pub fn update_chain(
    dir: &Path,
    signers: &[Option<&TicketSigner>],
) -> Result<Vec<SignedKeyring>, KeyError> {
    let signers: Vec<&TicketSigner> = signers.iter().flatten().copied().collect();
    let path = dir.join(CHAIN_FILE);
    let ring = load_keyring(dir)?;
    let mut chain = load_chain(dir)?;
    let wanted = trust::key_infos(&ring);
    let chain_err = |reason: String| KeyError::Chain {
        path: path.clone(),
        reason,
    };
    let version = match chain.last() {
        Some(last) if last.keys == wanted => return Ok(chain),
        Some(last) => {
            let trusted = last
                .keyring()
                .map_err(|e| chain_err(format!("newest statement: {e}")))?;
            let vouched = signers
                .iter()
                .any(|s| matches!(trusted.lookup(s.key_id()), KeyLookup::Active(k) if *k == s.verifying_key()));
            if !vouched {
                return Err(chain_err(format!(
                    "the keyring changed, but no key active at version {} can sign the change: \
                     gates would refuse it (rotate with `jo-server keygen --force`, which signs \
                     the new key with the old one)",
                    last.version
                )));
            }
            last.version + 1
        }
        None => 1,
    };
    if signers.is_empty() {
        return Err(chain_err("no key to sign the keyring with".into()));
    }
    chain.push(SignedKeyring::sign(version, &ring, &signers));
    let text = serde_json::to_string_pretty(&chain)
        .map_err(|e| chain_err(format!("cannot write: {e}")))?;
    write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(chain)
}

fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    Ok(())
}

fn check_private_mode(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(io_err(path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(KeyError::Permissions(path.to_owned()));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes through a temporary file created with `mode` from the start (so the
/// secret is never world-readable, not even for an instant), then renames it
/// over `path`, so a crash leaves the old file or the new one, never half of one.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(parent) = path.parent() {
        // Make the rename itself durable.
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let text = signing_key_to_pem(&key);
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = signing_key_from_pem(&text).expect("reads");
        assert_eq!(back.to_bytes(), key.to_bytes());
        let pub_pem = public_key_to_pem(&key.verifying_key());
        assert_eq!(
            public_keys_from_pem(&pub_pem).expect("reads"),
            vec![key.verifying_key()]
        );
    }

    #[test]
    fn malformed_pem_is_refused() {
        assert!(signing_key_from_pem("").is_err());
        assert!(
            signing_key_from_pem("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
        assert!(
            signing_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
        assert!(public_keys_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n").is_err());
    }

    #[test]
    fn generate_refuses_overwrite_and_rotates_with_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = generate(dir.path(), false).expect("generates");
        assert!(matches!(
            generate(dir.path(), false),
            Err(KeyError::Exists(_))
        ));
        assert_eq!(
            load_signer(dir.path()).expect("loads").key_id(),
            first.key_id
        );
        let second = generate(dir.path(), true).expect("rotates");
        assert_eq!(second.rotated_from, Some(first.key_id));
        let ring = load_keyring(dir.path()).expect("ring");
        let ids: Vec<KeyId> = ring.entries().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![second.key_id, first.key_id]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&second.signing_key)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(
            dir.path().join(WITHDRAWN_FILE),
            format!("# retired\n{}\n", first.key_id),
        )
        .expect("write");
        let ring = load_keyring(dir.path()).expect("ring");
        assert_eq!(
            ring.lookup(first.key_id),
            crate::signing::KeyLookup::Withdrawn
        );
    }

    #[test]
    fn rotation_and_withdrawal_extend_a_chain_gates_can_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = generate(dir.path(), false).expect("generates");
        let chain = load_chain(dir.path()).expect("chain");
        assert_eq!(chain.len(), 1);
        let pinned = chain[0].clone();
        generate(dir.path(), true).expect("rotates");
        let signer = load_signer(dir.path()).expect("signer");
        // Unchanged files: nothing appended.
        assert_eq!(
            update_chain(dir.path(), &[Some(&signer)])
                .expect("same")
                .len(),
            2
        );
        fs::write(
            dir.path().join(WITHDRAWN_FILE),
            format!("{}\n", first.key_id),
        )
        .expect("write");
        let chain = update_chain(dir.path(), &[Some(&signer)]).expect("withdraws");
        assert_eq!(chain.len(), 3);
        assert_eq!(load_chain(dir.path()).expect("reads"), chain);
        let newest = trust::advance(&pinned, &chain)
            .expect("verifies")
            .expect("newer");
        assert_eq!(newest.version, 3);
        let ring = newest.keyring().expect("ring");
        assert_eq!(ring.lookup(first.key_id), KeyLookup::Withdrawn);
        check_signer(&ring, &signer).expect("active signer");
        assert!(matches!(
            check_signer(&ring, &TicketSigner::new(SigningKey::from_bytes(&[1; 32]))),
            Err(KeyError::SignerNotUsable(_))
        ));
    }

    #[test]
    fn a_keyring_changed_by_hand_is_not_signed_into_the_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(dir.path(), false).expect("generates");
        // Someone replaces the keys outside keygen: the old key is gone.
        let intruder = TicketSigner::new(SigningKey::from_bytes(&[42; 32]));
        fs::write(
            dir.path().join(KEYRING_FILE),
            public_key_to_pem(&intruder.verifying_key()),
        )
        .expect("write");
        assert!(matches!(
            update_chain(dir.path(), &[Some(&intruder)]),
            Err(KeyError::Chain { .. })
        ));
        assert_eq!(load_chain(dir.path()).expect("reads").len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_private_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let g = generate(dir.path(), false).expect("generates");
        fs::set_permissions(&g.signing_key, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load_signer(dir.path()),
            Err(KeyError::Permissions(_))
        ));
    }
}
