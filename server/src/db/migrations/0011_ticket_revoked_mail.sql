-- A mail kind: 'ticket_revoked', the notice a ticket's holder gets when the
-- ticket is refunded, re-issued or cancelled by the organiser (written with
-- the revocation, in its transaction). SQLite cannot alter a CHECK: the
-- table is rebuilt with the same columns, rows and indexes.
CREATE TABLE mail_outbox_new (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('account', 'order_tickets', 'session_cancelled', 'ticket_revoked')),
    recipient       TEXT NOT NULL,
    lang            TEXT NOT NULL CHECK (lang IN ('fr', 'en')),
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    order_id        INTEGER REFERENCES orders(id),
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    locked_until    INTEGER,
    sent_at         INTEGER,
    failed_at       INTEGER,
    last_error      TEXT,
    CHECK ((kind = 'order_tickets') = (order_id IS NOT NULL))
) STRICT;
INSERT INTO mail_outbox_new (id, kind, recipient, lang, subject, body, order_id, created_at,
        attempts, next_attempt_at, locked_until, sent_at, failed_at, last_error)
    SELECT id, kind, recipient, lang, subject, body, order_id, created_at,
        attempts, next_attempt_at, locked_until, sent_at, failed_at, last_error
      FROM mail_outbox;
DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;
CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_by_order ON mail_outbox(order_id) WHERE order_id IS NOT NULL;
