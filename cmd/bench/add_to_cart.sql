-- pgbench script: the SQL that POST /cart/items runs for a guest that has a
-- session and a cart, statement for statement and in the server's order,
-- with the values the server binds inlined (cmd/bench fills them in from the
-- guest it made). One pgbench transaction is one request's database work, so
-- its tps is what the database alone could serve at the same concurrency.

-- loadSession: models.Sessions.Authenticate. No Touch follows: the session
-- was seen less than models.SessionTouchEvery ago.
SELECT s.id AS session_id, s.user_id, s.last_seen_at AS session_seen_at,
       u.kind, coalesce(u.email, '') AS email, u.is_admin,
       coalesce((SELECT sum(ci.quantity) FROM carts c JOIN cart_items ci ON ci.cart_id = c.id
                 WHERE c.user_id = u.id), 0) AS cart_count
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = '\x{{.TokenHash}}'::bytea AND s.expires_at > now();

-- cartAddPost: models.Catalog.ByID, as GORM's Take sends it.
SELECT * FROM "products" WHERE id = {{.ProductID}} LIMIT 1;

-- models.Carts.Add, one transaction.
BEGIN;
-- lockCart. The server binds a new UUIDv7 as id each time; the cart exists,
-- so the conflict path runs and that id is never stored.
INSERT INTO carts (id, user_id) VALUES ('{{.NewCartID}}', '{{.UserID}}')
ON CONFLICT (user_id) DO UPDATE SET updated_at = now()
RETURNING id;
-- lineState
SELECT p.stock,
       coalesce(ci.quantity, 0) AS in_cart,
       (SELECT count(*) FROM cart_items WHERE cart_id = '{{.CartID}}') AS lines
FROM products p
LEFT JOIN cart_items ci ON ci.cart_id = '{{.CartID}}' AND ci.product_id = p.id
WHERE p.id = {{.ProductID}};
-- addItem's upsert
INSERT INTO cart_items (cart_id, product_id, quantity) VALUES ('{{.CartID}}', {{.ProductID}}, {{.Quantity}})
ON CONFLICT (cart_id, product_id)
DO UPDATE SET quantity = LEAST(cart_items.quantity + EXCLUDED.quantity, {{.MaxQuantity}})
RETURNING quantity;
COMMIT;
