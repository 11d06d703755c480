-- The mail outbox: every mail the server sends is first a row here, written
-- in the transaction of what triggers it (a payment, a link token, a
-- cancellation), then sent by a drainer on any node. A row is claimed with
-- a lease (`locked_until`), marked sent right after the relay accepts it,
-- retried with backoff on failure (`next_attempt_at`), and given up after a
-- number of attempts (`failed_at`).
--
-- `kind` 'order_tickets' holds a reference (`order_id`, `lang`): the mail
-- and its PDF are rendered when sent, from the order's stored tickets. The
-- other kinds hold the rendered subject and body, erased once the row is
-- done with (a body may hold a single-use link).
CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('account', 'order_tickets', 'session_cancelled')),
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
-- What the drainers scan: the rows still to send, by due time.
CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_by_order ON mail_outbox(order_id) WHERE order_id IS NOT NULL;
