//! Issuing a ticket: the double key gives its secret and public id, the
//! server key signs its payload. Written once here for the shop (payment) and
//! the admin console (re-issue), both of which hand the store a
//! [`TicketIssuer`] so that the server key never enters the storage layer.

use jo_shared::doublekey::{PurchaseKey, TicketSecret, UserKey};
use jo_shared::signing::KeyId;
use jo_shared::ticket::EncodeError;
use jo_shared::{HolderName, TicketId, TicketPayload, TicketSigner};

/// What a ticket says, before it is signed.
#[derive(Debug, Clone)]
pub struct TicketSpec<'a> {
    /// Derivation index within the order (0, 1, 2…; a re-issue takes the next free one).
    pub index: u32,
    /// Session id.
    pub session_id: u32,
    /// People admitted (the offer's seats).
    pub admits: u8,
    /// Start of validity, Unix seconds.
    pub valid_from: i64,
    /// End of validity, Unix seconds.
    pub valid_until: i64,
    /// Holder's full name; shortened to what the payload can carry.
    pub holder: &'a str,
}

/// A signed ticket.
#[derive(Debug, Clone)]
pub struct IssuedTicket {
    /// Public id (first bytes of the secret).
    pub ticket_id: TicketId,
    /// The signed payload as carried in the QR code.
    pub qr: String,
    /// The holder name as printed in the payload.
    pub holder: String,
    /// Start of validity as signed.
    pub valid_from: u32,
    /// Validity in minutes as signed.
    pub valid_minutes: u16,
    /// The key that signed it (stored beside the ticket, so that a key's
    /// withdrawal can find its tickets without decoding them).
    pub key_id: KeyId,
}

/// Signs tickets for the store, which calls it inside the transaction that
/// writes them: a paid order's tickets, or a re-issued one.
pub trait TicketIssuer: Send + Sync {
    /// Derives, builds and signs one ticket.
    fn issue(
        &self,
        user_key: &UserKey,
        purchase_key: &PurchaseKey,
        spec: &TicketSpec<'_>,
    ) -> Result<IssuedTicket, IssueError>;
}

/// The server's active signing key issues with [`issue`].
impl TicketIssuer for TicketSigner {
    fn issue(
        &self,
        user_key: &UserKey,
        purchase_key: &PurchaseKey,
        spec: &TicketSpec<'_>,
    ) -> Result<IssuedTicket, IssueError> {
        issue(self, user_key, purchase_key, spec)
    }
}

/// Why a ticket could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The validity window does not fit the format (before 1970, after 2106,
    /// or longer than 45 days).
    #[error("validity window does not fit the ticket format")]
    Window,
    /// The payload could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Derives, builds and signs one ticket.
pub fn issue(
    signer: &TicketSigner,
    user_key: &UserKey,
    purchase_key: &PurchaseKey,
    spec: &TicketSpec<'_>,
) -> Result<IssuedTicket, IssueError> {
    let ticket_id = TicketSecret::derive(user_key, purchase_key, spec.index).ticket_id();
    let valid_from = u32::try_from(spec.valid_from).map_err(|_| IssueError::Window)?;
    let minutes = (spec.valid_until - spec.valid_from).div_euclid(60).max(1);
    let valid_minutes = u16::try_from(minutes).map_err(|_| IssueError::Window)?;
    let holder = HolderName::shorten(spec.holder);
    let payload = TicketPayload {
        key_id: signer.key_id(),
        ticket_id,
        session_id: spec.session_id,
        admits: spec.admits,
        valid_from,
        valid_minutes,
        holder: holder.clone(),
    };
    let signed = signer.sign_ticket(&payload)?;
    Ok(IssuedTicket {
        ticket_id,
        qr: jo_shared::qr::encode_string(&signed),
        holder: holder.as_str().to_owned(),
        valid_from,
        valid_minutes,
        key_id: payload.key_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jo_shared::revocation::RevocationList;
    use jo_shared::verify::{NoEntries, VerifyContext, verify};
    use jo_shared::{Keyring, Verdict};

    #[test]
    fn an_issued_ticket_verifies_and_matches_its_double_key() {
        let signer = TicketSigner::generate().expect("key");
        let user = UserKey::generate().expect("random");
        let purchase = PurchaseKey::generate().expect("random");
        let spec = TicketSpec {
            index: 3,
            session_id: 42,
            admits: 4,
            valid_from: 1_900_000_000,
            valid_until: 1_900_000_000 + 6 * 3600,
            holder: "Élodie Martin-Dupont de la Tour d'Auvergne",
        };
        let t = issue(&signer, &user, &purchase, &spec).expect("issues");
        assert!(TicketSecret::matches(&user, &purchase, 3, &t.ticket_id));
        assert!(!TicketSecret::matches(&user, &purchase, 2, &t.ticket_id));
        assert!(t.holder.chars().count() <= jo_shared::ticket::MAX_HOLDER_LEN);
        assert_eq!(t.valid_minutes, 360);
        assert_eq!(t.key_id, signer.key_id());

        let mut keyring = Keyring::new();
        keyring.add(signer.verifying_key()).expect("adds");
        let ctx = VerifyContext {
            keyring: &keyring,
            sessions: &[42],
            now: 1_900_000_100,
            skew_secs: 0,
            revocations: &RevocationList::new(),
            entries: &NoEntries,
        };
        match verify(&t.qr, &ctx) {
            Verdict::Admit { ticket } => assert_eq!(ticket.admits, 4),
            other => panic!("not admitted: {other:?}"),
        }
    }

    #[test]
    fn a_window_outside_the_format_is_an_error_not_a_panic() {
        let signer = TicketSigner::generate().expect("key");
        let user = UserKey::generate().expect("random");
        let purchase = PurchaseKey::generate().expect("random");
        let mut spec = TicketSpec {
            index: 0,
            session_id: 1,
            admits: 1,
            valid_from: -5,
            valid_until: 100,
            holder: "A",
        };
        assert!(matches!(
            issue(&signer, &user, &purchase, &spec),
            Err(IssueError::Window)
        ));
        spec.valid_from = 0;
        spec.valid_until = 60 * 70_000;
        assert!(matches!(
            issue(&signer, &user, &purchase, &spec),
            Err(IssueError::Window)
        ));
    }
}
