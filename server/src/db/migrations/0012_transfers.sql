-- Named tickets and transfers.
--
-- A ticket re-issued to another account is derived from that account's
-- user key and a purchase key of its own (`tickets.purchase_key`), not the
-- order's: the new holder's ticket shares no secret with the old one. NULL
-- means the order's key (every ticket bought or re-issued to its buyer).
ALTER TABLE tickets ADD COLUMN purchase_key BLOB
    CHECK (purchase_key IS NULL OR length(purchase_key) = 32);

-- The names a buyer gave the tickets of an order before paying it, by
-- derivation index; a ticket without a row here carries the buyer's name.
CREATE TABLE order_holders (
    order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL CHECK (idx >= 0),
    name     TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    PRIMARY KEY (order_id, idx)
) STRICT;

-- A ticket offered to another person by e-mail. The link's token is kept as
-- SHA-256; the offer is bound to the recipient's address (`to_email`,
-- normalised) and used once. `ticket` is the offered ticket, `new_ticket`
-- the one re-issued to the recipient on acceptance.
CREATE TABLE transfers (
    id          INTEGER PRIMARY KEY,
    ticket      INTEGER NOT NULL REFERENCES tickets(id),
    from_user   INTEGER NOT NULL REFERENCES users(id),
    to_email    TEXT NOT NULL,
    token_hash  BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    status      TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'cancelled', 'expired')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    to_user     INTEGER REFERENCES users(id),
    new_ticket  INTEGER REFERENCES tickets(id),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((status = 'accepted') = (new_ticket IS NOT NULL))
) STRICT;
-- One live offer per ticket.
CREATE UNIQUE INDEX transfers_one_pending ON transfers(ticket) WHERE status = 'pending';
CREATE INDEX transfers_due ON transfers(expires_at) WHERE status = 'pending';
CREATE INDEX tickets_replaces ON tickets(replaces) WHERE replaces IS NOT NULL;

-- New mail kinds: a transfer's offer and its outcome, and a re-issued
-- ticket to its new holder. SQLite cannot change a CHECK: the table is
-- rebuilt with its rows.
CREATE TABLE mail_outbox_new (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('account', 'order_tickets', 'session_cancelled',
                                                  'ticket_revoked', 'transfer', 'ticket_reissued')),
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
INSERT INTO mail_outbox_new SELECT * FROM mail_outbox;
DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;
CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_by_order ON mail_outbox(order_id) WHERE order_id IS NOT NULL;

-- Resale at face value. A holder lists a valid ticket at what was paid for
-- it (`face_cents`); a buyer's order holds the listing while it is paid
-- (`held`, `order_id`), and on payment the ticket is re-issued into that
-- order and the listing is `sold`, the seller to be refunded `payout_cents`
-- through the payment gateway (`payout_ref` once done). Resale moves a
-- seat; it never takes one.
CREATE TABLE resale_listings (
    id           INTEGER PRIMARY KEY,
    ticket       INTEGER NOT NULL REFERENCES tickets(id),
    seller       INTEGER NOT NULL REFERENCES users(id),
    session_id   INTEGER NOT NULL REFERENCES game_sessions(id),
    face_cents   INTEGER NOT NULL CHECK (face_cents >= 0),
    status       TEXT NOT NULL CHECK (status IN ('listed', 'held', 'sold', 'withdrawn')),
    order_id     INTEGER REFERENCES orders(id),
    created_at   INTEGER NOT NULL,
    sold_at      INTEGER,
    payout_cents INTEGER CHECK (payout_cents IS NULL OR payout_cents >= 0),
    payout_ref   TEXT,
    CHECK ((status IN ('held', 'sold')) = (order_id IS NOT NULL)),
    CHECK ((status = 'sold') = (sold_at IS NOT NULL)),
    CHECK ((status IN ('held', 'sold')) <= (payout_cents IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX resale_one_open ON resale_listings(ticket) WHERE status IN ('listed', 'held');
CREATE INDEX resale_by_session ON resale_listings(session_id, status);
CREATE UNIQUE INDEX resale_by_order ON resale_listings(order_id) WHERE order_id IS NOT NULL;
-- The listing an order buys (a resale order takes no seat: it moves one).
-- No foreign key: resale_listings.order_id already points the other way,
-- and a cycle would leave the tables without a parents-first order.
ALTER TABLE orders ADD COLUMN resale_listing INTEGER;
