-- +goose Up
-- Forgot-password requests wait here for the worker, so the request itself
-- does the same work whether or not the address has an account.
CREATE TABLE reset_requests (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE reset_requests;
