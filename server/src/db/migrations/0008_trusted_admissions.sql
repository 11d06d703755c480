-- Admissions prove themselves: each carries the signed ticket text (checked
-- by the server on upload) and the admitting gate's own signature (checked
-- by the other gates). Only proven admissions enter the entries feed that
-- gates sync; an unproven one is kept and flagged for admins.
ALTER TABLE scans ADD COLUMN signature TEXT;
ALTER TABLE scans ADD COLUMN proven INTEGER NOT NULL DEFAULT 0 CHECK (proven IN (0, 1));
DROP INDEX scans_admitted;
CREATE INDEX scans_admitted ON scans(id) WHERE verdict = 'admit' AND proven = 1;

-- A new conflict kind: the CHECK of a STRICT table changes by a rebuild.
CREATE TABLE scan_conflicts_new (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('double_admit', 'admitted_after_revocation',
                                              'unknown_ticket', 'chain_gap', 'chain_break',
                                              'late_upload', 'unproven_admission')),
    scan_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    ticket_id   BLOB,
    detail      TEXT NOT NULL,
    detected_at INTEGER NOT NULL
) STRICT;
INSERT INTO scan_conflicts_new (id, kind, scan_id, device_id, ticket_id, detail, detected_at)
    SELECT id, kind, scan_id, device_id, ticket_id, detail, detected_at FROM scan_conflicts;
DROP TABLE scan_conflicts;
ALTER TABLE scan_conflicts_new RENAME TO scan_conflicts;
CREATE INDEX scan_conflicts_by_kind ON scan_conflicts(kind, detected_at);
CREATE INDEX scan_conflicts_by_ticket ON scan_conflicts(ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX scan_conflicts_by_device ON scan_conflicts(device_id, detected_at);
CREATE INDEX scan_conflicts_by_scan ON scan_conflicts(scan_id);
CREATE INDEX scan_conflicts_by_time ON scan_conflicts(detected_at);
