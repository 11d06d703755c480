//! Password hashing with argon2id, off the async worker threads.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::{Argon2Params, Secret};

/// Hashes and verifies passwords. Concurrent hashes are bounded (each takes
/// tens of MiB) so a login flood queues instead of exhausting memory.
pub struct PasswordHasher {
    argon: Argon2<'static>,
    permits: Semaphore,
    /// A hash of a random password, verified when the account does not exist
    /// so that unknown and known emails take the same time.
    dummy_hash: String,
}

impl PasswordHasher {
    /// A hasher with these costs.
    pub fn new(p: Argon2Params) -> anyhow::Result<Self> {
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_password = crate::auth::tokens::random_token()?;
        let dummy_hash = hash_with(&argon, dummy_password.as_bytes())?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            argon,
            permits: Semaphore::new(cores),
            dummy_hash,
        })
    }

    /// Whether a stored hash was made with lower costs or another algorithm,
    /// and should be replaced at the next successful login.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let current = self.argon.params();
        parsed.algorithm != Algorithm::Argon2id.ident()
            || Params::try_from(&parsed).map_or(true, |p| {
                // Upgrades only: a hash stronger than today's settings stays.
                p.m_cost() < current.m_cost() || p.t_cost() < current.t_cost()
            })
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: Secret) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || hash_with(&argon, password.expose().as_bytes())).await?
    }

    /// Whether `password` matches `hash`; with no hash (unknown account),
    /// verifies against a dummy hash and answers false, in the same time.
    pub async fn verify(&self, password: Secret, hash: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await?;
        let argon = self.argon.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    argon
                        .verify_password(password.expose().as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await?;
        Ok(ok && known)
    }
}

fn hash_with(argon: &Argon2<'_>, password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    jo_shared::doublekey::random_bytes(&mut salt)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    argon
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_fail() {
        let h = PasswordHasher::new(Argon2Params::INSECURE_FOR_TESTS).expect("hasher");
        let pw = || Secret::new("correct horse battery staple".to_owned());
        let hash = h.hash(pw()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"));
        assert!(h.verify(pw(), Some(hash.clone())).await.expect("verify"));
        assert!(
            !h.verify(Secret::new("wrong".into()), Some(hash))
                .await
                .expect("verify")
        );
        assert!(!h.verify(pw(), None).await.expect("verify"));
        assert!(
            !h.verify(pw(), Some("not a phc string".into()))
                .await
                .expect("verify")
        );
    }
}
