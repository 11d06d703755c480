-- PostgreSQL twin of SQLite migration 11 (0011_ticket_revoked_mail.sql).
--
-- A mail kind: 'ticket_revoked', the notice a ticket's holder gets when the
-- ticket is refunded, re-issued or cancelled by the organiser.
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_kind_check;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_kind_check
    CHECK (kind IN ('account', 'order_tickets', 'session_cancelled', 'ticket_revoked'));
