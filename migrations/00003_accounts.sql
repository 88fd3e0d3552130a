-- +goose Up
CREATE TABLE email_tokens (
    id         uuid PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('promote', 'reset')),
    email      text        NOT NULL,
    token_hash bytea       NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_email_tokens_token_hash ON email_tokens (token_hash);
CREATE INDEX idx_email_tokens_user_id ON email_tokens (user_id);

-- Mail is written here in the transaction of the change that causes it and
-- sent by the outbox workers, so an SMTP outage loses nothing.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient  text        NOT NULL,
    subject    text        NOT NULL,
    text_body  text        NOT NULL,
    html_body  text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    send_after timestamptz NOT NULL DEFAULT now(),
    attempts   integer     NOT NULL DEFAULT 0,
    last_error text        NOT NULL DEFAULT '',
    sent_at    timestamptz,
    failed_at  timestamptz
);
-- The workers' queue: unsent, not given up, by due time.
CREATE INDEX outbox_due ON outbox (send_after, id) WHERE sent_at IS NULL AND failed_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE email_tokens;
