-- +goose Up
-- The hourly housekeeping deletes expired sessions and old links without
-- reading whole tables.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

-- +goose Down
DROP INDEX email_tokens_expires_at;
DROP INDEX sessions_expires_at;
