-- Migration 9 (PostgreSQL): the rollup triggers of the tickets and scans
-- tables fire once per statement, over its new rows, instead of once per row.
--
-- Why: PostgreSQL never updates a row in place. A row trigger that adds one
-- scan to a total makes a new version of that total's row for every scan,
-- and within one transaction none of them can be cleaned up, so the n-th
-- scan of a batch walks n versions of the "everything" total: a 1,000-scan
-- upload did ~500,000 row visits, and loading 1 M scans took hours. A
-- statement trigger sees the statement's rows as a table (a transition
-- table), adds them up and writes each total once. The totals stay exact:
-- same rows, same sums. SQLite updates rows in place; its triggers stay.

DROP TRIGGER scan_rollups_on_insert ON scans;
DROP FUNCTION scan_rollups_on_insert();
CREATE FUNCTION scan_rollups_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scan_totals AS x (level, session_id, gate, verdict, reason, scans, people, late)
    SELECT l.level,
           CASE WHEN l.level IN (0, 1) THEN coalesce(n.session_id, 0) ELSE -1 END,
           CASE WHEN l.level IN (0, 2) THEN n.gate ELSE '' END,
           n.verdict, coalesce(n.reason, ''), count(*), sum(n.admits),
           sum((n.received_at - n.scanned_at > 3600)::int)
    FROM new_scans n CROSS JOIN scan_levels l
    GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (level, session_id, gate, verdict, reason) DO UPDATE SET
        scans = x.scans + excluded.scans,
        people = x.people + excluded.people,
        late = x.late + excluded.late;
    INSERT INTO scan_hours AS x (level, session_id, gate, hour, scans, people)
    SELECT l.level,
           CASE WHEN l.level IN (0, 1) THEN coalesce(n.session_id, 0) ELSE -1 END,
           CASE WHEN l.level IN (0, 2) THEN n.gate ELSE '' END,
           n.scanned_at / 3600, count(*), sum(n.admits)
    FROM new_scans n CROSS JOIN scan_levels l
    WHERE n.verdict = 'admit'
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (level, session_id, gate, hour) DO UPDATE SET
        scans = x.scans + excluded.scans,
        people = x.people + excluded.people;
    RETURN NULL;
END;
$$;
CREATE TRIGGER scan_rollups_on_insert AFTER INSERT ON scans
    REFERENCING NEW TABLE AS new_scans
    FOR EACH STATEMENT EXECUTE FUNCTION scan_rollups_on_insert();

DROP TRIGGER sales_daily_on_issue ON tickets;
DROP FUNCTION sales_daily_on_issue();
CREATE FUNCTION sales_daily_on_issue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A re-issued ticket (replaces IS NOT NULL) replaces a sale: not counted.
    INSERT INTO sales_daily AS s (session_id, offer_id, day, tickets, seats, revenue_cents)
    SELECT n.session_id, n.offer_id, n.issued_at / 86400, count(*), sum(n.admits),
           sum(ol.unit_price_cents)
    FROM new_tickets n JOIN order_lines ol ON ol.id = n.order_line_id
    WHERE n.replaces IS NULL
    GROUP BY 1, 2, 3
    ON CONFLICT (session_id, offer_id, day) DO UPDATE SET
        tickets = s.tickets + excluded.tickets,
        seats = s.seats + excluded.seats,
        revenue_cents = s.revenue_cents + excluded.revenue_cents;
    RETURN NULL;
END;
$$;
CREATE TRIGGER sales_daily_on_issue AFTER INSERT ON tickets
    REFERENCING NEW TABLE AS new_tickets
    FOR EACH STATEMENT EXECUTE FUNCTION sales_daily_on_issue();
