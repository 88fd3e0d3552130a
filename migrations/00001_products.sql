-- +goose Up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE products (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL,
    price_cents bigint      NOT NULL CHECK (price_cents >= 0),
    currency    text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    image       text        NOT NULL,
    stock       integer     NOT NULL CHECK (stock >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX idx_products_slug ON products (slug);

-- Catalog search matches any part of the name or description, case-insensitively.
CREATE INDEX products_search_trgm ON products
    USING gin ((name || ' ' || description) gin_trgm_ops);

-- +goose Down
DROP TABLE products;
