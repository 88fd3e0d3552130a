-- +goose Up
CREATE TABLE users (
    id                uuid PRIMARY KEY,
    kind              text        NOT NULL CHECK (kind IN ('guest', 'registered')),
    email             text,
    password_hash     text,
    is_admin          boolean     NOT NULL DEFAULT false,
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_seen_at      timestamptz NOT NULL DEFAULT now(),
    -- A guest has no email and no password; a registered account has both,
    -- and its address was proven.
    CONSTRAINT users_guest_is_anonymous
        CHECK (kind <> 'guest' OR (email IS NULL AND password_hash IS NULL AND NOT is_admin)),
    CONSTRAINT users_registered_is_complete
        CHECK (kind <> 'registered' OR (email IS NOT NULL AND password_hash IS NOT NULL AND email_verified_at IS NOT NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;
-- Culling finds stale guests by last_seen_at.
CREATE INDEX users_guests_last_seen ON users (last_seen_at) WHERE kind = 'guest';

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    user_agent   text        NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_sessions_token_hash ON sessions (token_hash);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);

CREATE TABLE carts (
    id         uuid PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_carts_user_id ON carts (user_id);

CREATE TABLE cart_items (
    cart_id    uuid        NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id bigint      NOT NULL REFERENCES products (id),
    quantity   integer     NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cart_id, product_id)
);
CREATE INDEX idx_cart_items_product_id ON cart_items (product_id);

-- Events outlive their users (merged and culled guests stay in the history),
-- so user_id is not a foreign key.
CREATE TABLE events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    uuid,
    type       text        NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_events_user_id ON events (user_id, id);
CREATE INDEX idx_events_type_created ON events (type, created_at);

-- Fixed-window request counters shared by every instance.
CREATE TABLE rate_limits (
    key      text PRIMARY KEY,
    hits     integer     NOT NULL,
    reset_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE rate_limits;
DROP TABLE events;
DROP TABLE cart_items;
DROP TABLE carts;
DROP TABLE sessions;
DROP TABLE users;
