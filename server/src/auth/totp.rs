//! TOTP two-factor authentication (RFC 6238: SHA-1, 30-second steps, 6
//! digits), as Google Authenticator and `oathtool --totp` compute it.

use totp_rs::{Algorithm, TOTP};

use jo_shared::doublekey::{RandomError, random_bytes};

use super::tokens::ct_eq;

/// Length of a step in seconds.
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Issuer shown by authenticator apps.
pub const ISSUER: &str = "JO E-Tickets";

/// A new 160-bit secret (RFC 4226 recommends 160 bits).
pub fn new_secret() -> Result<Vec<u8>, RandomError> {
    let mut s = vec![0u8; 20];
    random_bytes(&mut s)?;
    Ok(s)
}

fn totp(secret: &[u8], account: &str) -> Option<TOTP> {
    // skew 0: we check the neighbouring steps ourselves, to know which step matched.
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .ok()
}

/// The `otpauth://` URL to show as a QR code. `account` must not contain ':'.
pub fn otpauth_url(secret: &[u8], account: &str) -> Option<String> {
    totp(secret, account).map(|t| t.get_url())
}

/// The secret in base32, for typing into an app by hand.
pub fn secret_base32(secret: &[u8]) -> String {
    totp_rs::Secret::Raw(secret.to_vec())
        .to_encoded()
        .to_string()
}

/// The code of time step `step`.
pub fn code_at_step(secret: &[u8], step: u64) -> Option<String> {
    totp(secret, "x").map(|t| t.generate(step * STEP_SECS))
}

/// The time step whose code is `code`, looking at the current step and one
/// step either side (clock drift). `None` if the code matches none. The caller
/// must still refuse steps already used (replay).
pub fn matching_step(secret: &[u8], code: &str, now_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "x")?;
    let current = now_secs / STEP_SECS;
    let mut found = None;
    // Check every candidate without stopping early, so timing says nothing.
    for step in [current.saturating_sub(1), current, current + 1] {
        if ct_eq(&t.generate(step * STEP_SECS), code) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B, SHA-1 seed, T = 59 s: 94287082 (8 digits) -> 287082.
        let secret = b"12345678901234567890";
        assert_eq!(
            code_at_step(secret, 59 / STEP_SECS).as_deref(),
            Some("287082")
        );
        assert_eq!(matching_step(secret, "287082", 59), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 + 90), None);
        assert_eq!(matching_step(secret, "28708x", 59), None);
        assert_eq!(matching_step(secret, "", 59), None);
    }

    #[test]
    fn url_names_issuer_and_account() {
        let s = new_secret().expect("random");
        let url = otpauth_url(&s, "alice").expect("url");
        assert!(url.starts_with("otpauth://totp/"));
        assert!(url.contains(&secret_base32(&s)));
    }
}
