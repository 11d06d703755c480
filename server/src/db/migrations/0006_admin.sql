-- 6: the admin console: its audit log, and rollups that keep the dashboard
-- and the scans view fast on a store of millions of tickets and scans.

-- Every state-changing admin action, written in the transaction of the
-- action itself (so an action without its audit row cannot commit).
-- Append-only: the console only reads it.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL REFERENCES users(id),
    actor      TEXT NOT NULL,          -- username at the time of the action
    action     TEXT NOT NULL,          -- e.g. 'offer.create', 'ticket.revoke'
    target     TEXT NOT NULL,          -- e.g. 'offer:12', 'order:AB12CD'
    detail     TEXT NOT NULL DEFAULT '',
    client_ip  TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log(at, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Sales rolled up per session, offer and UTC day of issue. A ticket counts
-- as sold from its issue (tickets exist only for paid orders) until its
-- order is refunded; a re-issued ticket (replaces IS NOT NULL) replaces a
-- sale, it is not a new one. Maintained by the triggers below whoever
-- writes the tickets and orders (shop, console), so the dashboard reads a
-- few thousand rows instead of aggregating millions.
CREATE TABLE sales_daily (
    session_id    INTEGER NOT NULL,
    offer_id      INTEGER NOT NULL,
    day           INTEGER NOT NULL,    -- Unix days (UTC)
    tickets       INTEGER NOT NULL,
    seats         INTEGER NOT NULL,
    revenue_cents INTEGER NOT NULL,
    PRIMARY KEY (session_id, offer_id, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX sales_daily_by_day ON sales_daily(day);
CREATE INDEX sales_daily_by_offer ON sales_daily(offer_id);

INSERT INTO sales_daily (session_id, offer_id, day, tickets, seats, revenue_cents)
SELECT t.session_id, t.offer_id, t.issued_at / 86400, count(*), sum(t.admits), sum(ol.unit_price_cents)
FROM tickets t JOIN order_lines ol ON ol.id = t.order_line_id JOIN orders o ON o.id = t.order_id
WHERE t.replaces IS NULL AND o.status = 'paid'
GROUP BY 1, 2, 3;

CREATE TRIGGER sales_daily_on_issue AFTER INSERT ON tickets WHEN NEW.replaces IS NULL
BEGIN
    INSERT INTO sales_daily (session_id, offer_id, day, tickets, seats, revenue_cents)
    VALUES (NEW.session_id, NEW.offer_id, NEW.issued_at / 86400, 1, NEW.admits,
            (SELECT unit_price_cents FROM order_lines WHERE id = NEW.order_line_id))
    ON CONFLICT (session_id, offer_id, day) DO UPDATE SET
        tickets = tickets + 1,
        seats = seats + excluded.seats,
        revenue_cents = revenue_cents + excluded.revenue_cents;
END;

CREATE TRIGGER sales_daily_on_refund AFTER UPDATE OF status ON orders
WHEN OLD.status = 'paid' AND NEW.status = 'refunded'
BEGIN
    INSERT INTO sales_daily (session_id, offer_id, day, tickets, seats, revenue_cents)
    SELECT t.session_id, t.offer_id, t.issued_at / 86400, -count(*), -sum(t.admits), -sum(ol.unit_price_cents)
    FROM tickets t JOIN order_lines ol ON ol.id = t.order_line_id
    WHERE t.order_id = NEW.id AND t.replaces IS NULL
    GROUP BY 1, 2, 3
    ON CONFLICT (session_id, offer_id, day) DO UPDATE SET
        tickets = tickets + excluded.tickets,
        seats = seats + excluded.seats,
        revenue_cents = revenue_cents + excluded.revenue_cents;
END;

-- Scans rolled up at four levels, so that every view of the scans page
-- (all, one session, one gate, one session at one gate) reads a handful of
-- rows by primary-key prefix, however many scans there are:
--   level 0: per session and gate;  level 1: per session (gate = '');
--   level 2: per gate (session_id = -1);  level 3: everything (-1, '').
-- session_id 0 stands for "no session" (an unreadable code). Scans are
-- insert-only, so an insert trigger keeps them exact.
CREATE TABLE scan_totals (
    level      INTEGER NOT NULL,
    session_id INTEGER NOT NULL,
    gate       TEXT NOT NULL,
    verdict    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    scans      INTEGER NOT NULL,
    people     INTEGER NOT NULL,       -- sum of admits
    late       INTEGER NOT NULL,       -- uploaded more than an hour after the scan
    PRIMARY KEY (level, session_id, gate, verdict, reason)
) STRICT, WITHOUT ROWID;

-- People admitted per hour (Unix hours, UTC), at the same four levels.
CREATE TABLE scan_hours (
    level      INTEGER NOT NULL,
    session_id INTEGER NOT NULL,
    gate       TEXT NOT NULL,
    hour       INTEGER NOT NULL,
    scans      INTEGER NOT NULL,
    people     INTEGER NOT NULL,
    PRIMARY KEY (level, session_id, gate, hour)
) STRICT, WITHOUT ROWID;

CREATE VIEW scan_levels (level) AS VALUES (0), (1), (2), (3);

INSERT INTO scan_totals (level, session_id, gate, verdict, reason, scans, people, late)
SELECT l.level,
       CASE WHEN l.level IN (0, 1) THEN coalesce(s.session_id, 0) ELSE -1 END,
       CASE WHEN l.level IN (0, 2) THEN s.gate ELSE '' END,
       s.verdict, coalesce(s.reason, ''), count(*), sum(s.admits),
       sum(s.received_at - s.scanned_at > 3600)
FROM scans s, scan_levels l GROUP BY 1, 2, 3, 4, 5;

INSERT INTO scan_hours (level, session_id, gate, hour, scans, people)
SELECT l.level,
       CASE WHEN l.level IN (0, 1) THEN coalesce(s.session_id, 0) ELSE -1 END,
       CASE WHEN l.level IN (0, 2) THEN s.gate ELSE '' END,
       s.scanned_at / 3600, count(*), sum(s.admits)
FROM scans s, scan_levels l WHERE s.verdict = 'admit' GROUP BY 1, 2, 3, 4;

CREATE TRIGGER scan_rollups_on_insert AFTER INSERT ON scans
BEGIN
    INSERT INTO scan_totals (level, session_id, gate, verdict, reason, scans, people, late)
    SELECT level,
           CASE WHEN level IN (0, 1) THEN coalesce(NEW.session_id, 0) ELSE -1 END,
           CASE WHEN level IN (0, 2) THEN NEW.gate ELSE '' END,
           NEW.verdict, coalesce(NEW.reason, ''), 1, NEW.admits,
           NEW.received_at - NEW.scanned_at > 3600
    FROM scan_levels WHERE true
    ON CONFLICT (level, session_id, gate, verdict, reason) DO UPDATE SET
        scans = scans + 1,
        people = people + excluded.people,
        late = late + excluded.late;
    INSERT INTO scan_hours (level, session_id, gate, hour, scans, people)
    SELECT level,
           CASE WHEN level IN (0, 1) THEN coalesce(NEW.session_id, 0) ELSE -1 END,
           CASE WHEN level IN (0, 2) THEN NEW.gate ELSE '' END,
           NEW.scanned_at / 3600, 1, NEW.admits
    FROM scan_levels WHERE NEW.verdict = 'admit'
    ON CONFLICT (level, session_id, gate, hour) DO UPDATE SET
        scans = scans + 1,
        people = people + excluded.people;
END;

-- Searching orders by buyer name: the users table is scanned with LIKE, but
-- email lookups and order numbers use their UNIQUE indexes. Conflicts are
-- listed newest first.
CREATE INDEX scan_conflicts_by_time ON scan_conflicts(detected_at);
