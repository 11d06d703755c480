-- 7: the second factor belongs to a session, not only to an account.

-- When this session passed the second factor (a TOTP or recovery code at
-- login, or enrolling TOTP itself); NULL for a password-only session. The
-- admin console requires it of the session: an account that has 2FA on does
-- not make a session opened before enrolment an admin session.
ALTER TABLE sessions ADD COLUMN second_factor_at INTEGER;

-- The session (SHA-256 of its id, as in `sessions.id_hash`) that created the
-- pending TOTP secret: only that session is shown the secret and may confirm
-- it, so another session of the account never reads the seed being enrolled.
ALTER TABLE users ADD COLUMN totp_pending_session BLOB;
