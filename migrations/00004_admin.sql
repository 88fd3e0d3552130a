-- +goose Up
-- The admin list filters by kind, newest first (ids are UUIDv7: time-ordered).
CREATE INDEX users_kind_id ON users (kind, id);
-- The admin list's email search matches any part of the address.
CREATE INDEX users_email_trgm ON users USING gin (lower(email) gin_trgm_ops) WHERE email IS NOT NULL;

-- +goose Down
DROP INDEX users_email_trgm;
DROP INDEX users_kind_id;
