//! [`Store`]: the async data-access API the handlers use.

use std::path::Path;

use super::sql::{Begin, params};

use super::outbox::{self, Outgoing};
use super::sessions::{SessionInfo, Stage};
use super::tokens::Purpose;
use super::users::{Conflict, NewUser, User};
use super::{Backend, Pool, StoreResult, now, secrets, sessions, throttle, tokens, users};
use crate::config::ThrottlePolicy;

/// The application's storage. Cheap to share behind the application state.
pub struct Store {
    // Visible to the other `db` modules, which add their own `impl Store`
    // blocks (catalogue, orders, tickets, devices, scans, revocations,
    // audit, reports) next to their SQL.
    pub(super) pool: Backend,
    /// Wakes this node's mail drainer after a mail is enqueued
    /// ([`Store::wake_outbox`]).
    pub(super) outbox_wake: tokio::sync::Notify,
}

impl Store {
    /// Opens the SQLite database (creating and migrating it as needed).
    pub fn open_sqlite(path: &Path) -> StoreResult<Self> {
        // One read-only connection a core (2 to 8): readers in WAL mode
        // need no more than there are cores to keep busy, and each one is
        // one more page cache to reload after every write. Long exports
        // open their own.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            pool: Backend::Sqlite(Pool::open(path, cores.clamp(2, 8))?),
            outbox_wake: tokio::sync::Notify::new(),
        })
    }

    /// Connects to a PostgreSQL database (migrating it as needed), keeping
    /// up to `connections` connections. An unreachable database is one
    /// error naming its host and name, never its password.
    pub fn open_postgres(config: postgres::Config, connections: usize) -> StoreResult<Self> {
        Ok(Self {
            pool: Backend::Postgres(Box::new(super::pg::PgPool::connect(config, connections)?)),
            outbox_wake: tokio::sync::Notify::new(),
        })
    }

    /// Whether the database answers and has every migration this build
    /// knows (what `/readyz` asks of it).
    pub async fn schema_is_current(&self) -> StoreResult<bool> {
        let (sql, latest) = match self.pool {
            Backend::Sqlite(_) => (
                "PRAGMA user_version",
                i64::try_from(super::migrations::MIGRATIONS.len()).unwrap_or(i64::MAX),
            ),
            Backend::Postgres(_) => (
                "SELECT COALESCE(MAX(version), 0) FROM schema_version",
                super::pg::PG_MIGRATIONS.last().map_or(0, |m| m.0),
            ),
        };
        let found: i64 = self
            .pool
            .read_sql(move |c| c.query_row(sql, params![], |r| r.get(0)))
            .await?;
        Ok(found == latest)
    }

    /// Which database this store runs on.
    pub fn dialect(&self) -> super::sql::Dialect {
        match self.pool {
            Backend::Sqlite(_) => super::sql::Dialect::Sqlite,
            Backend::Postgres(_) => super::sql::Dialect::Postgres,
        }
    }

    /// Whether the database holds accounts, orders or tickets (a database
    /// in use, which `jo-server demo` refuses to touch).
    pub async fn has_accounts_or_sales(&self) -> StoreResult<bool> {
        self.pool
            .read_blocking_sql(|c| {
                c.query_row(
                    "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM orders)
                         OR EXISTS (SELECT 1 FROM tickets)",
                    params![],
                    |r| r.get(0),
                )
            })
            .await
    }

    // ----- users

    /// Inserts an account.
    pub async fn create_user(&self, user: NewUser) -> StoreResult<Result<i64, Conflict>> {
        self.pool
            .run_sql(move |c| users::insert(c, &user, now()))
            .await
    }

    /// Whether a username is taken.
    pub async fn username_taken(&self, username: String) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| users::username_taken(c, &username))
            .await
    }

    /// An account by id.
    pub async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.pool.run_sql(move |c| users::get(c, id)).await
    }

    /// An account by normalised email, with its password hash.
    pub async fn user_by_email(&self, email: String) -> StoreResult<Option<(User, String)>> {
        self.pool
            .run_sql(move |c| users::find_by_email(c, &email))
            .await
    }

    /// An account's password hash.
    pub async fn password_hash(&self, id: i64) -> StoreResult<Option<String>> {
        self.pool
            .run_sql(move |c| users::password_hash(c, id))
            .await
    }

    /// Sets a new password and ends every session of the user but `keep`.
    pub async fn change_password(
        &self,
        id: i64,
        hash: String,
        keep: Option<[u8; 32]>,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                let tx = c.begin(Begin::Immediate)?;
                users::set_password(&tx, id, &hash)?;
                sessions::delete_others(&tx, id, keep.as_ref())?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// Replaces a password hash by an equivalent one (same password, new costs).
    pub async fn set_password_hash(&self, id: i64, hash: String) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| users::set_password(c, id, &hash))
            .await
    }

    /// Replaces a user's prénom and nom.
    pub async fn set_names(
        &self,
        id: i64,
        first_name: String,
        last_name: String,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| users::set_names(c, id, &first_name, &last_name))
            .await
    }

    /// Marks an email verified.
    pub async fn mark_email_verified(&self, id: i64) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| users::mark_email_verified(c, id, now()))
            .await
    }

    /// The active TOTP secret.
    pub async fn totp_secret(&self, id: i64) -> StoreResult<Option<Vec<u8>>> {
        self.pool.run_sql(move |c| users::totp_secret(c, id)).await
    }

    /// The TOTP secret being enrolled by session `session` (id hash).
    pub async fn totp_pending_secret(
        &self,
        id: i64,
        session: [u8; 32],
    ) -> StoreResult<Option<Vec<u8>>> {
        self.pool
            .run_sql(move |c| users::totp_pending_secret(c, id, &session))
            .await
    }

    /// Stores a TOTP secret to enrol, bound to session `session` (id hash).
    pub async fn set_totp_pending_secret(
        &self,
        id: i64,
        secret: Vec<u8>,
        session: [u8; 32],
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| users::set_totp_pending_secret(c, id, &secret, &session))
            .await
    }

    /// Marks a TOTP time step used; false if it (or a later one) was used.
    pub async fn use_totp_step(&self, id: i64, step: i64) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| users::use_totp_step(c, id, step))
            .await
    }

    /// Turns two-factor on with the pending secret of session `session`
    /// and new recovery codes, ending every other session of the account.
    pub async fn enable_totp(
        &self,
        id: i64,
        step: i64,
        recovery: Vec<[u8; 32]>,
        session: [u8; 32],
    ) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| users::enable_totp(c, id, step, &recovery, &session))
            .await
    }

    /// Turns two-factor off, ending every session of the account but `keep`.
    pub async fn disable_totp(&self, id: i64, keep: [u8; 32]) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| users::disable_totp(c, id, &keep))
            .await
    }

    /// Spends a recovery code.
    pub async fn use_recovery_code(&self, id: i64, hash: [u8; 32]) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| users::use_recovery_code(c, id, &hash, now()))
            .await
    }

    /// Unused recovery codes left.
    pub async fn recovery_codes_left(&self, id: i64) -> StoreResult<i64> {
        self.pool
            .run_sql(move |c| users::recovery_codes_left(c, id))
            .await
    }

    // ----- sessions

    /// The live session with this id hash.
    pub async fn session(
        &self,
        id_hash: [u8; 32],
        idle_secs: i64,
    ) -> StoreResult<Option<SessionInfo>> {
        let found = self
            .pool
            .read_sql(move |c| sessions::lookup(c, &id_hash, now(), idle_secs))
            .await?;
        Ok(match found {
            sessions::Lookup::Live(info) => Some(info),
            sessions::Lookup::Missing => None,
            sessions::Lookup::Expired => {
                self.pool
                    .run_sql(move |c| sessions::delete(c, &id_hash))
                    .await?;
                None
            }
        })
    }

    /// Records session activity.
    pub async fn touch_session(&self, id_hash: [u8; 32]) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| sessions::touch(c, &id_hash, now()))
            .await
    }

    /// Replaces a session by a new one (fresh id); `second_factor` says
    /// whether the new one passed the second factor.
    pub async fn rotate_session(
        &self,
        old: Option<[u8; 32]>,
        new: [u8; 32],
        user_id: i64,
        stage: Stage,
        second_factor: bool,
        lifetime_secs: i64,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                sessions::rotate(
                    c,
                    old.as_ref(),
                    &new,
                    user_id,
                    stage,
                    second_factor,
                    t,
                    t + lifetime_secs,
                )
            })
            .await
    }

    /// The absolute expiry of a session.
    pub async fn session_expires_at(&self, id_hash: [u8; 32]) -> StoreResult<Option<i64>> {
        self.pool
            .run_sql(move |c| sessions::expires_at(c, &id_hash))
            .await
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: [u8; 32]) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| sessions::delete(c, &id_hash))
            .await
    }

    /// Ends every session of a user but `keep`.
    pub async fn delete_other_sessions(
        &self,
        user_id: i64,
        keep: Option<[u8; 32]>,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| sessions::delete_others(c, user_id, keep.as_ref()))
            .await
    }

    /// Housekeeping: deletes expired sessions.
    pub async fn purge_expired_sessions(&self, idle_secs: i64) -> StoreResult<usize> {
        self.pool
            .run_sql(move |c| sessions::purge_expired(c, now(), idle_secs))
            .await
    }

    // ----- email tokens

    /// Stores a new single-use token (withdrawing older ones of that
    /// purpose) and enqueues `mail`, the mail with its link, in the same
    /// transaction: no link is live without its mail on the way.
    pub async fn create_token(
        &self,
        hash: [u8; 32],
        user_id: i64,
        purpose: Purpose,
        ttl_secs: i64,
        mail: Outgoing,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                // One transaction: two mails requested at once must not both
                // retire the old link before either inserts, leaving two live.
                let tx = c.begin(Begin::Immediate)?;
                let t = now();
                tokens::insert(&tx, &hash, user_id, purpose, t, t + ttl_secs)?;
                outbox::enqueue(&tx, &mail, t)?;
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.wake_outbox();
        Ok(())
    }

    /// The user of a live token, without spending it.
    pub async fn peek_token(&self, hash: [u8; 32], purpose: Purpose) -> StoreResult<Option<i64>> {
        self.pool
            .run_sql(move |c| tokens::peek(c, &hash, purpose, now()))
            .await
    }

    /// Spends a token and, for a password reset, sets the new password, marks
    /// the email verified (the link proved it), ends every session and clears
    /// the account's throttling, all in one transaction.
    pub async fn consume_token(
        &self,
        hash: [u8; 32],
        purpose: Purpose,
        new_password_hash: Option<String>,
        account_bucket: Option<String>,
    ) -> StoreResult<Option<i64>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let Some(user_id) = tokens::consume(&tx, &hash, purpose, t)? else {
                    return Ok(None);
                };
                users::mark_email_verified(&tx, user_id, t)?;
                if let Some(h) = &new_password_hash {
                    users::set_password(&tx, user_id, h)?;
                    sessions::delete_others(&tx, user_id, None)?;
                }
                if let Some(b) = &account_bucket {
                    throttle::clear(&tx, b)?;
                }
                tx.commit()?;
                Ok(Some(user_id))
            })
            .await
    }

    // ----- throttling

    /// Reserves an attempt at a secret (password, second factor) of one
    /// account before it is checked, in one IMMEDIATE transaction: if any
    /// of `check` is locked, returns when the lock ends and counts nothing;
    /// otherwise counts the attempt as a failure of `account` now, locking
    /// it once past its free failures. Checking the lock and counting the
    /// failure separately, around a slow argon2 check, let a burst of
    /// concurrent guesses all pass the check before any was counted. A
    /// successful attempt gives its count back ([`Store::release_attempt`]).
    ///
    /// Only the account's own bucket is reserved: a bucket shared by many
    /// people (a client address behind a NAT) would be locked by a crowd of
    /// right passwords in flight at once; its failures are counted after
    /// the check ([`Store::count_shared_failure`]).
    pub async fn reserve_attempt(
        &self,
        check: Vec<String>,
        account: String,
        p: ThrottlePolicy,
    ) -> StoreResult<Option<i64>> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                let refs: Vec<&str> = check.iter().map(String::as_str).collect();
                if let Some(until) = throttle::locked_until(&tx, &refs, t)? {
                    return Ok(Some(until));
                }
                throttle::record_failure(
                    &tx,
                    &account,
                    t,
                    p.account_free_failures,
                    p.base_lock_secs,
                    p.max_lock_secs,
                    p.window_secs,
                )?;
                tx.commit()?;
                Ok(None)
            })
            .await
    }

    /// Counts a failed attempt against a bucket shared by several accounts
    /// (a client address) or kept beside the account's (the user's own).
    pub async fn count_shared_failure(&self, bucket: String, p: ThrottlePolicy) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                throttle::record_failure(
                    c,
                    &bucket,
                    now(),
                    p.address_free_failures,
                    p.base_lock_secs,
                    p.max_lock_secs,
                    p.window_secs,
                )
            })
            .await
    }

    /// After a successful attempt reserved by [`Store::reserve_attempt`]:
    /// forgets every failure of `account` when `clear` (a successful login),
    /// else gives back the one reserved.
    pub async fn release_attempt(
        &self,
        account: String,
        clear: bool,
        p: ThrottlePolicy,
    ) -> StoreResult<()> {
        self.pool
            .run_sql(move |c| {
                if clear {
                    throttle::clear(c, &account)
                } else {
                    throttle::release(c, &account, p.account_free_failures)
                }
            })
            .await
    }

    /// Counts a message to `bucket` and says whether it may be sent: at most
    /// `free` per `window_secs`, then one per growing delay (mail bombing defence).
    pub async fn allow_message(
        &self,
        bucket: String,
        free: u32,
        window_secs: i64,
    ) -> StoreResult<bool> {
        self.pool
            .run_sql(move |c| {
                let t = now();
                let tx = c.begin(Begin::Immediate)?;
                if throttle::locked_until(&tx, &[&bucket], t)?.is_some() {
                    return Ok(false);
                }
                throttle::record_failure(&tx, &bucket, t, free, 300, window_secs, window_secs)?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    // ----- secrets

    /// A server secret, created on first use.
    pub async fn server_secret(&self, name: &'static str) -> StoreResult<[u8; 32]> {
        self.pool
            .run_sql(move |c| secrets::get_or_create(c, name))
            .await
    }
}
