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

-- Scans rolled up per session, gate, hour, verdict and reason (scans are
-- insert-only). session_id 0 stands for "no session" (an unreadable code).
CREATE TABLE scan_stats (
    session_id INTEGER NOT NULL,
    gate       TEXT NOT NULL,
    hour       INTEGER NOT NULL,       -- Unix hours (UTC) of scanned_at
    verdict    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    scans      INTEGER NOT NULL,
    people     INTEGER NOT NULL,       -- sum of admits
    late       INTEGER NOT NULL,       -- uploaded more than an hour after the scan
    PRIMARY KEY (session_id, gate, hour, verdict, reason)
) STRICT, WITHOUT ROWID;
CREATE INDEX scan_stats_by_hour ON scan_stats(hour);

INSERT INTO scan_stats (session_id, gate, hour, verdict, reason, scans, people, late)
SELECT coalesce(session_id, 0), gate, scanned_at / 3600, verdict, coalesce(reason, ''),
       count(*), sum(admits), sum(received_at - scanned_at > 3600)
FROM scans GROUP BY 1, 2, 3, 4, 5;

CREATE TRIGGER scan_stats_on_insert AFTER INSERT ON scans
BEGIN
    INSERT INTO scan_stats (session_id, gate, hour, verdict, reason, scans, people, late)
    VALUES (coalesce(NEW.session_id, 0), NEW.gate, NEW.scanned_at / 3600, NEW.verdict,
            coalesce(NEW.reason, ''), 1, NEW.admits, NEW.received_at - NEW.scanned_at > 3600)
    ON CONFLICT (session_id, gate, hour, verdict, reason) DO UPDATE SET
        scans = scans + 1,
        people = people + excluded.people,
        late = late + excluded.late;
END;

-- Searching orders by buyer name: the users table is scanned with LIKE, but
-- email lookups and order numbers use their UNIQUE indexes. Conflicts are
-- listed newest first.
CREATE INDEX scan_conflicts_by_time ON scan_conflicts(detected_at);
