//! Encryption at rest of per-user secrets (TOTP seeds), with a key kept
//! outside the database (`DATA/totp.key`, mode 0600): a copy of the database
//! alone (a leaked backup, an injection) does not reveal anyone's second
//! factor. Back the key file up with the database, or 2FA stops working.
//!
//! Format: `0x01 ‖ nonce (24 bytes) ‖ XChaCha20-Poly1305(secret)`, with the
//! user id as associated data, so a sealed secret moved to another account
//! does not open.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use jo_shared::doublekey::random_bytes;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// Seals and opens secrets with the server's at-rest key.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    /// Loads the key file, creating it (0600) on first start.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let mut key = Zeroizing::new([0u8; 32]);
            random_bytes(&mut key[..])?;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&key[..])?;
            f.sync_all()?;
            tracing::info!(file = %path.display(), "created the key that encrypts TOTP secrets at rest");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{}: readable by group or others (chmod 600 it)",
                    path.display()
                );
            }
        }
        let key = Zeroizing::new(
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        );
        Self::from_key(&key).with_context(|| format!("{}: expected 32 bytes", path.display()))
    }

    /// A box with this 32-byte key.
    pub fn from_key(key: &[u8]) -> anyhow::Result<Self> {
        let cipher = XChaCha20Poly1305::new_from_slice(key)
            .map_err(|_| anyhow::anyhow!("bad key length"))?;
        Ok(Self { cipher })
    }

    /// Encrypts `secret` for user `user_id`.
    pub fn seal(&self, user_id: i64, secret: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let aad = user_id.to_be_bytes();
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`SecretBox::seal`] made for the same user.
    pub fn open(&self, user_id: i64, sealed: &[u8]) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            bail!("sealed secret: unknown format");
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let aad = user_id.to_be_bytes();
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                anyhow::anyhow!("sealed secret does not open (wrong key file or tampered row)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_per_user_and_detects_tampering() {
        let b = SecretBox::from_key(&[9; 32]).expect("key");
        let sealed = b.seal(7, b"12345678901234567890").expect("seals");
        assert_eq!(
            &b.open(7, &sealed).expect("opens")[..],
            b"12345678901234567890"
        );
        assert!(b.open(8, &sealed).is_err(), "bound to its user");
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(b.open(7, &bad).is_err(), "tampering detected");
        assert!(
            SecretBox::from_key(&[1; 32])
                .expect("key")
                .open(7, &sealed)
                .is_err(),
            "other key"
        );
        assert!(b.open(7, b"").is_err());
        assert_ne!(
            b.seal(7, b"x").expect("seals"),
            b.seal(7, b"x").expect("seals"),
            "fresh nonce"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("totp.key");
        let a = SecretBox::load_or_create(&path).expect("creates");
        let sealed = a.seal(1, b"seed").expect("seals");
        let b = SecretBox::load_or_create(&path).expect("loads");
        assert_eq!(&b.open(1, &sealed).expect("opens")[..], b"seed");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
