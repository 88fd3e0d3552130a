-- +goose Up
-- Order numbers are short and human (SF-10001); they never grant access.
CREATE SEQUENCE order_numbers START 10001;

CREATE TABLE orders (
    id             uuid PRIMARY KEY,
    number         text        NOT NULL,
    -- Orders outlive their guests: culling a guest keeps its orders.
    user_id        uuid        REFERENCES users (id) ON DELETE SET NULL,
    email          text        NOT NULL,
    status         text        NOT NULL
        CHECK (status IN ('pending_payment', 'paid', 'shipped', 'cancelled')),
    payment_method text        NOT NULL CHECK (payment_method IN ('bank_transfer', 'cash_on_delivery')),
    ship_name      text        NOT NULL,
    ship_address1  text        NOT NULL,
    ship_address2  text        NOT NULL DEFAULT '',
    ship_city      text        NOT NULL,
    ship_postcode  text        NOT NULL,
    ship_country   text        NOT NULL CHECK (ship_country ~ '^[A-Z]{2}$'),
    subtotal_cents bigint      NOT NULL CHECK (subtotal_cents >= 0),
    shipping_cents bigint      NOT NULL CHECK (shipping_cents >= 0),
    total_cents    bigint      NOT NULL,
    currency       text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- SHA-256 of the key in the emailed link; the key itself is never stored.
    access_hash    bytea       NOT NULL,
    -- The checkout form's token: a repeated POST finds the order it placed.
    cart_token     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    paid_at        timestamptz,
    shipped_at     timestamptz,
    cancelled_at   timestamptz,
    CONSTRAINT orders_total_adds_up CHECK (total_cents = subtotal_cents + shipping_cents)
);
CREATE UNIQUE INDEX orders_number_key ON orders (number);
CREATE UNIQUE INDEX orders_cart_token_key ON orders (cart_token);
-- A customer's orders, newest first (ids are UUIDv7), and the ON DELETE SET
-- NULL of a culled guest, without a scan.
CREATE INDEX orders_user_id ON orders (user_id, id) WHERE user_id IS NOT NULL;
-- The admin list: newest first, filtered by status; keyset on id.
CREATE INDEX orders_status_id ON orders (status, id);
-- The admin search by email and the claim of a proven address.
CREATE INDEX orders_email ON orders (lower(email), id);

CREATE TABLE order_lines (
    order_id   uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id bigint  NOT NULL REFERENCES products (id),
    -- Name and price as they were when the order was placed.
    name       text    NOT NULL,
    unit_cents bigint  NOT NULL CHECK (unit_cents >= 0),
    quantity   integer NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    line_cents bigint  NOT NULL,
    PRIMARY KEY (order_id, product_id),
    CONSTRAINT order_lines_adds_up CHECK (line_cents = unit_cents * quantity)
);
CREATE INDEX order_lines_product_id ON order_lines (product_id);

-- The admin order page lists the order's history.
CREATE INDEX events_order_id ON events ((data ->> 'order_id'), id) WHERE type LIKE 'order.%';

-- products.stock has had CHECK (stock >= 0) since 00001: stock is taken with
-- conditional updates that never cross it.

-- +goose Down
DROP INDEX events_order_id;
DROP TABLE order_lines;
DROP TABLE orders;
DROP SEQUENCE order_numbers;
