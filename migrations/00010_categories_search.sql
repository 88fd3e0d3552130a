-- +goose Up
CREATE TABLE categories (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug     text    NOT NULL,
    name     text    NOT NULL,
    position integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX idx_categories_slug ON categories (slug);

ALTER TABLE products ADD COLUMN category_id bigint REFERENCES categories (id);

-- Listings page through a category or everything in one of the sort
-- orders; the id breaks ties so pages neither skip nor repeat.
CREATE INDEX products_category_name ON products (category_id, name, id);
CREATE INDEX products_name ON products (name, id);
CREATE INDEX products_price ON products (price_cents, id);
CREATE INDEX products_newest ON products (created_at, id);

-- Full-text search: English stemming ("teapots" finds "Teapot"), the name
-- weighted above the description for ranking.
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', name), 'A') ||
    setweight(to_tsvector('english', description), 'B')
) STORED;
CREATE INDEX products_search ON products USING gin (search);

-- The substring search is gone; full-text search and the words below replace it.
DROP INDEX products_search_trgm;

-- The words of the catalog, for "Did you mean": a misspelt search word is
-- matched to its nearest catalog word by trigram distance. Refreshed by
-- the seed (the only writer of products).
CREATE MATERIALIZED VIEW search_words AS
    SELECT word FROM ts_stat($$SELECT to_tsvector('simple', name || ' ' || description) FROM products$$)
    WHERE length(word) >= 3 AND word ~ '^[a-z]+$';
CREATE UNIQUE INDEX search_words_word ON search_words (word);
CREATE INDEX search_words_trgm ON search_words USING gist (word gist_trgm_ops);

-- +goose Down
DROP MATERIALIZED VIEW search_words;
CREATE INDEX products_search_trgm ON products
    USING gin ((name || ' ' || description) gin_trgm_ops);
DROP INDEX products_search;
ALTER TABLE products DROP COLUMN search;
DROP INDEX products_newest;
DROP INDEX products_price;
DROP INDEX products_name;
DROP INDEX products_category_name;
ALTER TABLE products DROP COLUMN category_id;
DROP TABLE categories;
