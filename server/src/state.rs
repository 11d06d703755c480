//! The application state shared by every handler.

use std::ops::Deref;
use std::sync::Arc;

use jo_shared::TicketSigner;

use crate::auth::password::PasswordHasher;
use crate::auth::secretbox::SecretBox;
use crate::config::Config;
use crate::db::Store;
use crate::error::AppError;
use crate::mail::Mailer;

/// Everything a request may need, built once at start-up.
pub struct App {
    /// The configuration the server started with.
    pub config: Config,
    /// Storage.
    pub store: Store,
    /// Password hashing (argon2id), off the async threads.
    pub hasher: PasswordHasher,
    /// Outgoing mail (SMTP or the outbox).
    pub mailer: Mailer,
    /// The active ticket-signing key (never served, never logged), shared
    /// with the store's payment and re-issue transactions as their
    /// [`crate::tickets::TicketIssuer`].
    pub signer: Arc<TicketSigner>,
    /// Encrypts TOTP secrets at rest.
    pub secret_box: SecretBox,
    /// Key of the CSRF token MACs.
    pub csrf_key: [u8; 32],
    /// Key of the trusted-device cookie MACs.
    pub device_key: [u8; 32],
    /// Public base URL, no trailing slash.
    pub public_url: String,
    /// Origin (`scheme://host[:port]`) of the public URL, for Origin checks.
    pub public_origin: String,
    /// Whether the public URL is https: Secure cookies with `__Host-` names, HSTS.
    pub https: bool,
    /// The payment gateway: charges at checkout, refunds to resale sellers.
    pub gateway: crate::shop::payment::Gateway,
}

/// Cheap-to-clone handle on [`App`].
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    /// The name of a cookie: `__Host-` prefixed over https, so that no
    /// sibling subdomain can set or shadow it.
    pub fn cookie_name(&self, base: &'static str) -> &'static str {
        match (self.https, base) {
            (true, "jo_session") => "__Host-jo_session",
            (true, "jo_csrf") => "__Host-jo_csrf",
            (true, "jo_device") => "__Host-jo_device",
            _ => base,
        }
    }
}

/// TOTP secrets, sealed in the database and opened here.
impl App {
    /// The active TOTP secret of a user.
    pub async fn totp_secret(
        &self,
        user_id: i64,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, AppError> {
        match self.store.totp_secret(user_id).await? {
            Some(sealed) => Ok(Some(self.secret_box.open(user_id, &sealed)?)),
            None => Ok(None),
        }
    }

    /// The TOTP secret being enrolled by session `session` (id hash); none
    /// if another session of the account created the pending one.
    pub async fn totp_pending_secret(
        &self,
        user_id: i64,
        session: [u8; 32],
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, AppError> {
        match self.store.totp_pending_secret(user_id, session).await? {
            Some(sealed) => Ok(Some(self.secret_box.open(user_id, &sealed)?)),
            None => Ok(None),
        }
    }

    /// Stores a TOTP secret to enrol, bound to session `session` (id hash).
    pub async fn set_totp_pending_secret(
        &self,
        user_id: i64,
        secret: &[u8],
        session: [u8; 32],
    ) -> Result<(), AppError> {
        let sealed = self.secret_box.seal(user_id, secret)?;
        Ok(self
            .store
            .set_totp_pending_secret(user_id, sealed, session)
            .await?)
    }
}
