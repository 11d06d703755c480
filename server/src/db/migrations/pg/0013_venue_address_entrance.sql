-- PostgreSQL twin of SQLite migration 13 (0013_venue_address_entrance.sql).
--
-- Where to go: a venue's postal address (from the programme) and a
-- session's entrance or gate information (set in the console), both printed
-- on the ticket when known. Empty: not known.
ALTER TABLE venues ADD COLUMN address TEXT NOT NULL DEFAULT ''
    CHECK (length(address) <= 200);
ALTER TABLE game_sessions ADD COLUMN entrance TEXT NOT NULL DEFAULT ''
    CHECK (length(entrance) <= 200);
