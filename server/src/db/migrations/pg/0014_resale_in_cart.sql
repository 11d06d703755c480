-- PostgreSQL twin of SQLite migration 14 (0014_resale_in_cart.sql).
--
-- Resale tickets bought through the cart, beside primary offers.
--
-- A buyer's cart may hold listings (`cart_listings`); checkout holds them
-- in the same order as the cart's primary lines, each as an order line of
-- its own that names its listing (`order_lines.resale_listing`): such a
-- line took no seat (it moves one), and on payment its ticket is re-issued
-- into the order. So an order may buy several listings: the one-listing-
-- per-order index goes, and the order's own `resale_listing` column gives
-- way to its lines'.
CREATE TABLE cart_listings (
    cart_id  BIGINT NOT NULL REFERENCES carts(id) ON DELETE CASCADE,
    listing  BIGINT NOT NULL REFERENCES resale_listings(id),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (cart_id, listing)
);
CREATE INDEX cart_listings_by_listing ON cart_listings(listing);

-- No foreign key: tickets point at order lines, listings at tickets, and
-- a cycle would leave the tables without a parents-first order.
-- Not unique: a listing whose hold ran out is held again by another order.
ALTER TABLE order_lines ADD COLUMN resale_listing BIGINT;
UPDATE order_lines SET resale_listing =
    (SELECT o.resale_listing FROM orders o WHERE o.id = order_lines.order_id)
    WHERE order_id IN (SELECT id FROM orders WHERE resale_listing IS NOT NULL);
DROP INDEX resale_by_order;
CREATE INDEX resale_by_order ON resale_listings(order_id) WHERE order_id IS NOT NULL;
ALTER TABLE orders DROP COLUMN resale_listing;
