-- 3: the programme, offers, orders and tickets, the revocation list, scans.
-- Shared by the shop, the admin console and the sync API.

-- Small server-wide settings (e.g. the first day of the Games, fixed when the
-- programme is first loaded so that later starts do not move it).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE sports (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE venues (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    city TEXT NOT NULL
) STRICT;

-- A session (épreuve). Named game_sessions because `sessions` holds logins.
-- Its id is the session id carried in ticket payloads (a u32).
-- seats_taken counts seats sold plus seats held by unpaid orders; the CHECK
-- makes overselling impossible even for a buggy caller.
CREATE TABLE game_sessions (
    id               INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
    code             TEXT NOT NULL UNIQUE,
    sport_id         INTEGER NOT NULL REFERENCES sports(id),
    venue_id         INTEGER NOT NULL REFERENCES venues(id),
    title            TEXT NOT NULL,
    starts_at        INTEGER NOT NULL,
    ends_at          INTEGER NOT NULL CHECK (ends_at > starts_at),
    doors_open_at    INTEGER NOT NULL CHECK (doors_open_at <= starts_at),
    capacity         INTEGER NOT NULL CHECK (capacity >= 0),
    seats_taken      INTEGER NOT NULL DEFAULT 0 CHECK (seats_taken BETWEEN 0 AND capacity),
    base_price_cents INTEGER NOT NULL CHECK (base_price_cents >= 0),
    entry_rule       TEXT NOT NULL DEFAULT 'single' CHECK (entry_rule IN ('single', 'multiple')),
    max_entries      INTEGER NOT NULL DEFAULT 1 CHECK (max_entries >= 1),
    status           TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX game_sessions_by_start ON game_sessions(starts_at);
CREATE INDEX game_sessions_by_sport ON game_sessions(sport_id, starts_at);
CREATE INDEX game_sessions_by_venue ON game_sessions(venue_id, starts_at);

-- An offer: how many people one ticket admits, and its price per seat as a
-- percentage of the session's base price. price = seats * base * percent / 100,
-- rounded to the cent.
CREATE TABLE offers (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    description   TEXT NOT NULL DEFAULT '',
    seats         INTEGER NOT NULL CHECK (seats BETWEEN 1 AND 255),
    price_percent INTEGER NOT NULL CHECK (price_percent BETWEEN 1 AND 1000),
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- An order. `number` is the public, random order number. A pending order holds
-- its seats (counted in game_sessions.seats_taken) until hold_expires_at.
-- A paid order always has its purchase key (the second half of the double key).
CREATE TABLE orders (
    id              INTEGER PRIMARY KEY,
    number          TEXT NOT NULL UNIQUE,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'expired', 'refunded')),
    total_cents     INTEGER NOT NULL CHECK (total_cents >= 0),
    created_at      INTEGER NOT NULL,
    hold_expires_at INTEGER NOT NULL,
    paid_at         INTEGER,
    refunded_at     INTEGER,
    purchase_key    BLOB CHECK (purchase_key IS NULL OR length(purchase_key) = 32),
    CHECK ((status IN ('paid', 'refunded')) = (purchase_key IS NOT NULL AND paid_at IS NOT NULL))
) STRICT;
CREATE INDEX orders_by_user ON orders(user_id, created_at);
CREATE INDEX orders_pending_by_expiry ON orders(hold_expires_at) WHERE status = 'pending';
CREATE INDEX orders_paid_by_time ON orders(paid_at) WHERE paid_at IS NOT NULL;

-- One line of an order: `quantity` tickets of one offer for one session. The
-- offer's name, seats and unit price are copied so that a later edit of the
-- offer does not rewrite history.
CREATE TABLE order_lines (
    id               INTEGER PRIMARY KEY,
    order_id         INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    session_id       INTEGER NOT NULL REFERENCES game_sessions(id),
    offer_id         INTEGER NOT NULL REFERENCES offers(id),
    offer_name       TEXT NOT NULL,
    seats            INTEGER NOT NULL CHECK (seats BETWEEN 1 AND 255),
    quantity         INTEGER NOT NULL CHECK (quantity >= 1),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0)
) STRICT;
CREATE INDEX order_lines_by_order ON order_lines(order_id);
CREATE INDEX order_lines_by_session ON order_lines(session_id);
CREATE INDEX order_lines_by_offer ON order_lines(offer_id);

-- A signed ticket. ticket_id is the public id derived from the double key
-- (user key ‖ purchase key, derivation index idx); qr is the signed QR string.
-- A re-issued ticket points at the one it replaces (which is revoked).
CREATE TABLE tickets (
    id            INTEGER PRIMARY KEY,
    ticket_id     BLOB NOT NULL UNIQUE CHECK (length(ticket_id) = 10),
    order_id      INTEGER NOT NULL REFERENCES orders(id),
    order_line_id INTEGER NOT NULL REFERENCES order_lines(id),
    idx           INTEGER NOT NULL CHECK (idx >= 0),
    user_id       INTEGER NOT NULL REFERENCES users(id),
    session_id    INTEGER NOT NULL REFERENCES game_sessions(id),
    offer_id      INTEGER NOT NULL REFERENCES offers(id),
    holder        TEXT NOT NULL,
    admits        INTEGER NOT NULL CHECK (admits BETWEEN 1 AND 255),
    key_id        BLOB NOT NULL CHECK (length(key_id) = 4),
    valid_from    INTEGER NOT NULL,
    valid_minutes INTEGER NOT NULL CHECK (valid_minutes BETWEEN 1 AND 65535),
    qr            TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked')),
    issued_at     INTEGER NOT NULL,
    replaces      INTEGER REFERENCES tickets(id),
    UNIQUE (order_id, idx)
) STRICT;
CREATE INDEX tickets_by_order ON tickets(order_id);
CREATE INDEX tickets_by_user ON tickets(user_id);
CREATE INDEX tickets_by_session ON tickets(session_id, status);

-- The revocation list scanners sync: append-only, gapless versions from 1,
-- each row with the hash-chain head after it (jo_shared::revocation), so the
-- list can be resumed and signed without replaying it. Written only through
-- db::revocations.
CREATE TABLE revocations (
    version    INTEGER PRIMARY KEY CHECK (version >= 1),
    ticket_id  BLOB NOT NULL UNIQUE CHECK (length(ticket_id) = 10),
    reason     INTEGER NOT NULL CHECK (reason BETWEEN 0 AND 255),
    revoked_at INTEGER NOT NULL,
    head       BLOB NOT NULL CHECK (length(head) = 32),
    note       TEXT NOT NULL DEFAULT ''
) STRICT;

-- What the sync API learns about each device.
ALTER TABLE devices ADD COLUMN gate TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN last_sync_at INTEGER;
ALTER TABLE devices ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN last_hash BLOB;
ALTER TABLE devices ADD COLUMN pending_uploads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN clock_skew_secs INTEGER;

-- Scans uploaded by devices. `id` is the server's arrival order: the cursor of
-- GET /api/v1/entries. (device_id, seq) is not unique on purpose: a device
-- restored from an old backup repeats positions, which is a chain conflict to
-- record, not an upload to refuse.
CREATE TABLE scans (
    id          INTEGER PRIMARY KEY,
    scan_id     TEXT NOT NULL UNIQUE,
    device_id   TEXT NOT NULL REFERENCES devices(id),
    seq         INTEGER NOT NULL,
    prev_hash   BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash        BLOB NOT NULL CHECK (length(hash) = 32),
    ticket_id   BLOB CHECK (ticket_id IS NULL OR length(ticket_id) = 10),
    session_id  INTEGER,
    raw         TEXT,
    verdict     TEXT NOT NULL CHECK (verdict IN ('admit', 'refuse', 'used')),
    reason      TEXT,
    admits      INTEGER NOT NULL CHECK (admits BETWEEN 0 AND 255),
    gate        TEXT NOT NULL,
    scanned_at  INTEGER NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX scans_by_device ON scans(device_id, seq);
CREATE INDEX scans_by_ticket ON scans(ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX scans_by_session ON scans(session_id, scanned_at);
CREATE INDEX scans_admitted ON scans(id) WHERE verdict = 'admit';

-- Conflicts found in uploads: stored, never dropped, shown to admins.
CREATE TABLE scan_conflicts (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('double_admit', 'admitted_after_revocation',
                                              'unknown_ticket', 'chain_gap', 'chain_break',
                                              'late_upload')),
    scan_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    ticket_id   BLOB,
    detail      TEXT NOT NULL,
    detected_at INTEGER NOT NULL
) STRICT;
CREATE INDEX scan_conflicts_by_kind ON scan_conflicts(kind, detected_at);
CREATE INDEX scan_conflicts_by_ticket ON scan_conflicts(ticket_id) WHERE ticket_id IS NOT NULL;
