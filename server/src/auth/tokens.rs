//! Random secrets handed to clients (session ids, email links, CSRF cookies,
//! recovery codes) and the hashes the server keeps of them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use jo_shared::doublekey::{RandomError, random_bytes};

/// A fresh 256-bit token, base64url without padding (43 characters).
pub fn random_token() -> Result<String, RandomError> {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    random_bytes(&mut b[..])?;
    Ok(URL_SAFE_NO_PAD.encode(&b[..]))
}

/// SHA-256 of a token: what the database stores. Tokens carry 256 random
/// bits, so a plain hash is enough (no salt or stretching needed).
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `s` looks like one of our tokens (cheap check before any lookup).
pub fn is_token_shaped(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// HMAC-SHA-256 of `parts` under `key`, base64url.
pub fn mac(key: &[u8; 32], parts: &[&[u8]]) -> String {
    let mut m = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        m.update(&u64::try_from(p.len()).unwrap_or(u64::MAX).to_be_bytes());
        m.update(p);
    }
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// Constant-time string equality.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Alphabet of recovery codes: 32 symbols without look-alikes (no i, l, o, u).
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Number of recovery codes given at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A recovery code: 16 symbols (80 random bits), shown as `xxxx-xxxx-xxxx-xxxx`.
pub fn random_recovery_code() -> Result<String, RandomError> {
    random_grouped_code(4)
}

/// A code of `groups` groups of 4 symbols of the recovery alphabet (5 bits
/// each), dash-separated.
fn random_grouped_code(groups: usize) -> Result<String, RandomError> {
    let mut b = zeroize::Zeroizing::new(vec![0u8; groups * 4]);
    random_bytes(&mut b[..])?;
    let mut out = String::with_capacity(groups * 5);
    for (i, byte) in b.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        // 256 is a multiple of 32: no modulo bias.
        out.push(char::from(RECOVERY_ALPHABET[usize::from(byte % 32)]));
    }
    Ok(out)
}

/// Canonical form of a typed grouped code of `len` symbols, or `None`.
fn normalize_grouped_code(input: &str, len: usize) -> Option<String> {
    let s: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (s.len() == len && s.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(s)
}

/// A one-time scanner enrolment code: 20 symbols (100 random bits), shown
/// as `xxxx-xxxx-xxxx-xxxx-xxxx`.
pub fn random_enrollment_code() -> Result<String, RandomError> {
    random_grouped_code(5)
}

/// The stored hash of a typed enrolment code, or `None` if it cannot be one.
pub fn hash_enrollment_code(input: &str) -> Option<[u8; 32]> {
    let n = normalize_grouped_code(input, 20)?;
    let mut h = Sha256::new();
    h.update(b"jo-enrollment-code-v1");
    h.update(n.as_bytes());
    Some(h.finalize().into())
}

/// Canonical form of a typed recovery code (case, dashes and spaces ignored),
/// or `None` if it cannot be one.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    normalize_grouped_code(input, 16)
}

/// The stored hash of a normalised recovery code, salted with the user id.
pub fn hash_recovery_code(user_id: i64, normalized: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"jo-recovery-code-v1");
    h.update(user_id.to_be_bytes());
    h.update(normalized.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_shaped() {
        let a = random_token().expect("random");
        let b = random_token().expect("random");
        assert_ne!(a, b);
        assert!(is_token_shaped(&a));
        assert!(!is_token_shaped("short"));
        assert!(!is_token_shaped(&format!("{}'", &a[..42])));
    }

    #[test]
    fn recovery_codes_round_trip_through_normalisation() {
        let code = random_recovery_code().expect("random");
        assert_eq!(code.len(), 19);
        let n = normalize_recovery_code(&code.to_uppercase().replace('-', " ")).expect("valid");
        assert_eq!(n, code.replace('-', ""));
        assert!(normalize_recovery_code("abc").is_none());
        assert!(normalize_recovery_code("' OR 1=1 --aaaaaaaaaa").is_none());
        assert_ne!(hash_recovery_code(1, &n), hash_recovery_code(2, &n));
        let e = random_enrollment_code().expect("random");
        assert_eq!(e.len(), 24);
        assert_eq!(
            hash_enrollment_code(&e),
            hash_enrollment_code(&e.to_uppercase().replace('-', ""))
        );
        assert!(
            hash_enrollment_code(&code).is_none(),
            "a recovery code is not an enrolment code"
        );
    }

    #[test]
    fn mac_separates_parts() {
        let k = [7u8; 32];
        assert_ne!(mac(&k, &[b"ab", b"c"]), mac(&k, &[b"a", b"bc"]));
        assert!(ct_eq(&mac(&k, &[b"x"]), &mac(&k, &[b"x"])));
    }
}
