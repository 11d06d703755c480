//! The double key: a ticket's secret comes from `user key ‖ purchase key`.
//!
//! Every buyer gets a random 256-bit **user key** at registration (never shown,
//! never sent to a browser) and every paid order a random 256-bit **purchase
//! key**. The secret of the ticket at position `index` in an order is
//!
//! ```text
//! secret = HMAC-SHA-256(key = user_key ‖ purchase_key,
//!                       msg = "JO-TICKET-SECRET-v1" ‖ index as u32 big-endian)
//! ticket id = secret[0..10]
//! ```
//!
//! The server can recompute any ticket's secret from the two stored keys and
//! check it; neither key alone determines it; and the index makes every ticket of
//! one order distinct. Both keys come from the operating system's CSPRNG.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ticket::{TICKET_ID_LEN, TicketId};

/// Domain-separation label of the v1 derivation.
pub const DERIVATION_LABEL: &[u8] = b"JO-TICKET-SECRET-v1";

/// The operating system's random generator could not be read.
#[derive(Debug, Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct RandomError(String);

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
}

macro_rules! secret_key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// A fresh key from the operating system's CSPRNG.
            pub fn generate() -> Result<Self, RandomError> {
                let mut k = [0u8; 32];
                random_bytes(&mut k)?;
                Ok(Self(k))
            }

            /// Wraps stored key bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// Builds the key from a stored slice, which must be 32 bytes long.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(bytes).ok().map(Self)
            }

            /// The raw bytes, for storage only.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            // Never print key material, not even in debug logs.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}
    };
}

secret_key_type!(
    /// A buyer's 256-bit user key, generated at registration.
    UserKey
);
secret_key_type!(
    /// An order's 256-bit purchase key, generated when the order is paid.
    PurchaseKey
);
secret_key_type!(
    /// A ticket's 256-bit secret, derived from the double key.
    TicketSecret
);

impl TicketSecret {
    /// Derives the secret of ticket number `index` of an order.
    pub fn derive(user: &UserKey, purchase: &PurchaseKey, index: u32) -> Self {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&user.0);
        key[32..].copy_from_slice(&purchase.0);
        // HMAC accepts keys of any length; 64 bytes is exactly one SHA-256 block.
        let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(&key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        key.zeroize();
        mac.update(DERIVATION_LABEL);
        mac.update(&index.to_be_bytes());
        let out: [u8; 32] = mac.finalize().into_bytes().into();
        Self(out)
    }

    /// The ticket's public id: the first [`TICKET_ID_LEN`] bytes of the secret.
    pub fn ticket_id(&self) -> TicketId {
        let mut id = [0u8; TICKET_ID_LEN];
        id.copy_from_slice(&self.0[..TICKET_ID_LEN]);
        TicketId(id)
    }

    /// Whether `ticket_id` is the id of the secret that `user` and `purchase`
    /// give at `index`: how the server checks a ticket against its order.
    pub fn matches(user: &UserKey, purchase: &PurchaseKey, index: u32, id: &TicketId) -> bool {
        Self::derive(user, purchase, index)
            .ticket_id()
            .0
            .ct_eq(&id.0)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_needs_both_keys() {
        let u = UserKey::from_bytes([1; 32]);
        let p = PurchaseKey::from_bytes([2; 32]);
        let a = TicketSecret::derive(&u, &p, 0);
        assert_eq!(a, TicketSecret::derive(&u, &p, 0));
        assert_ne!(a, TicketSecret::derive(&u, &p, 1));
        assert_ne!(
            a,
            TicketSecret::derive(&UserKey::from_bytes([3; 32]), &p, 0)
        );
        assert_ne!(
            a,
            TicketSecret::derive(&u, &PurchaseKey::from_bytes([3; 32]), 0)
        );
        // Swapping the halves gives another secret: the order of the keys matters.
        let swapped = TicketSecret::derive(
            &UserKey::from_bytes([2; 32]),
            &PurchaseKey::from_bytes([1; 32]),
            0,
        );
        assert_ne!(a, swapped);
        assert!(TicketSecret::matches(&u, &p, 0, &a.ticket_id()));
        assert!(!TicketSecret::matches(&u, &p, 1, &a.ticket_id()));
    }

    #[test]
    fn derivation_matches_a_known_answer() {
        // Pinned so that a change of derivation cannot go unnoticed: every ticket
        // already sold would stop matching its order.
        let u = UserKey::from_bytes([0x11; 32]);
        let p = PurchaseKey::from_bytes([0x22; 32]);
        let id = TicketSecret::derive(&u, &p, 7).ticket_id();
        assert_eq!(id.to_hex(), KNOWN_ID_HEX);
    }

    // Computed independently: Python hmac over the same inputs.
    const KNOWN_ID_HEX: &str = "009fbbd90eadbfb0565b";

    #[test]
    fn keys_are_random_and_redacted_in_debug() {
        let a = UserKey::generate().expect("csprng");
        let b = UserKey::generate().expect("csprng");
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "UserKey(<redacted>)");
        assert!(PurchaseKey::from_slice(&[0; 31]).is_none());
    }
}
