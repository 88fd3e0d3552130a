-- +goose Up
-- Both indexes on lower(email) are partial, so the planner has no statistics
-- for the expression: it guessed 100 rows for a search that matched 20,000
-- and sorted them all. With these it walks the newest users instead.
CREATE STATISTICS users_lower_email ON (lower(email)) FROM users;
ANALYZE users;

-- +goose Down
DROP STATISTICS users_lower_email;
