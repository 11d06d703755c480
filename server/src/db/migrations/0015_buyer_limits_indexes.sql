-- A buyer's limits, checked at every checkout (tickets per session, seats
-- and orders held), are found from the buyer, not from the session: with
-- only tickets(session_id, status) and order_lines(session_id), the
-- planner walked every ticket and order line of the session, so each
-- checkout cost more the more the session had sold (a rush on one
-- session: every checkout slower than the last, under the write lock).
-- The buyer's own rows are a handful whatever the session's size.
CREATE INDEX tickets_by_user_session ON tickets(user_id, session_id, status);
-- Its prefix, now redundant.
DROP INDEX tickets_by_user;
CREATE INDEX orders_pending_by_user ON orders(user_id, status, hold_expires_at);
