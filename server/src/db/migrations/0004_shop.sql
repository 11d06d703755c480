-- 4: the shop's carts and payments.

-- A cart belongs either to an anonymous visitor (the SHA-256 of a random
-- cookie value) or to a logged-in buyer; a visitor's cart is merged into the
-- buyer's on their first shop page after login.
CREATE TABLE carts (
    id         INTEGER PRIMARY KEY,
    token_hash BLOB UNIQUE CHECK (token_hash IS NULL OR length(token_hash) = 32),
    user_id    INTEGER UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((token_hash IS NULL) <> (user_id IS NULL))
) STRICT;
CREATE INDEX carts_anonymous_by_age ON carts(updated_at) WHERE user_id IS NULL;

-- One line per (session, offer); prices are computed when shown and fixed
-- only when the order is created.
CREATE TABLE cart_lines (
    cart_id    INTEGER NOT NULL REFERENCES carts(id) ON DELETE CASCADE,
    session_id INTEGER NOT NULL REFERENCES game_sessions(id),
    offer_id   INTEGER NOT NULL REFERENCES offers(id),
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10),
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (cart_id, session_id, offer_id)
) STRICT;

-- Payment attempts. Never a card number or CVV: the brand and last four
-- digits only. The idempotency key comes from the payment form, so a double
-- submit or a reload finds the attempt already made. At most one attempt per
-- order is in flight or succeeded (partial unique index), so an order is
-- charged once whatever the browser does.
CREATE TABLE payments (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders(id),
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'declined', 'refunded', 'failed')),
    decline_reason  TEXT,
    transaction_id  TEXT,
    card_brand      TEXT NOT NULL,
    card_last4      TEXT NOT NULL CHECK (length(card_last4) <= 4),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents >= 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX payments_by_order ON payments(order_id);
CREATE UNIQUE INDEX payments_one_live_per_order ON payments(order_id)
    WHERE status IN ('processing', 'succeeded');
