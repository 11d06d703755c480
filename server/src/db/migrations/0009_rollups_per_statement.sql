-- Migration 9: on PostgreSQL, the rollup triggers fire per statement
-- (migrations/pg/0009_rollups_per_statement.sql says why). SQLite updates a
-- row in place, so a row trigger costs the same at the thousandth scan of a
-- batch as at the first: nothing changes here. The migration exists so that
-- both databases are at the same version, which `migrate-to-postgres`
-- requires.
SELECT 1;
