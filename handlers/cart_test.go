package handlers_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"shopfront/handlers"
	"shopfront/models"
)

// productID is the id of a seeded product.
func productID(t testing.TB, db *gorm.DB, slug string) string {
	t.Helper()
	var id int64
	if err := db.Raw("SELECT id FROM products WHERE slug = ?", slug).Scan(&id).Error; err != nil || id == 0 {
		t.Fatalf("product %s: %v", slug, err)
	}
	return fmt.Sprint(id)
}

// snapshot is every row a cart action may touch, as text, to prove that a
// refused request changed nothing.
func snapshot(t *testing.T, db *gorm.DB) string {
	t.Helper()
	var rows []string
	err := db.Raw(`
		SELECT 'u ' || id || ' ' || kind FROM users
		UNION ALL SELECT 's ' || id || ' ' || user_id FROM sessions
		UNION ALL SELECT 'c ' || id || ' ' || user_id FROM carts
		UNION ALL SELECT 'i ' || cart_id || ' ' || product_id || ' ' || quantity FROM cart_items
		UNION ALL SELECT 'e ' || id || ' ' || type FROM events
		ORDER BY 1`).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(rows, "\n")
}

func add(c *client, id, qty string) response {
	c.t.Helper()
	return c.post("/cart/items", url.Values{"product_id": {id}, "quantity": {qty}})
}

func TestCartAddCreatesGuestOnce(t *testing.T) {
	app, db := newApp(t)
	c := newClient(t, app)
	kettle := productID(t, db, "enamel-tea-kettle")

	c.get("/")
	c.get("/cart")
	c.get("/account")
	if s := snapshot(t, db); s != "" {
		t.Fatalf("browsing created rows:\n%s", s)
	}

	r := add(c, kettle, "2")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/cart" {
		t.Fatalf("redirect to %q, want /cart", loc)
	}
	sid := c.cookies["sid"]
	if sid == "" {
		t.Fatal("no sid cookie after the first add")
	}
	var ck *http.Cookie
	for _, k := range r.Cookies() {
		if k.Name == "sid" {
			ck = k
		}
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != int((720*time.Hour).Seconds()) {
		t.Fatalf("sid cookie attributes: %+v", ck)
	}
	wantStatus(t, add(c, kettle, "1"), http.StatusSeeOther)

	var users, qty int
	db.Raw("SELECT count(*) FROM users").Scan(&users)
	db.Raw("SELECT quantity FROM cart_items").Scan(&qty)
	if users != 1 || qty != 3 {
		t.Fatalf("after two adds: %d users, quantity %d; want 1 user, 3", users, qty)
	}
	var hash []byte
	if err := db.Raw("SELECT token_hash FROM sessions").Row().Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if want, _ := models.ParseToken(sid); string(hash) != string(want) {
		t.Fatal("the session row does not hold the SHA-256 of the cookie token")
	}

	page := c.get("/cart")
	wantStatus(t, page, http.StatusOK)
	for _, want := range []string{"Enamel Tea Kettle", `value="3"`, "€177.00", "Save your cart"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("cart page lacks %q", want)
		}
	}
}

func TestCartBadInputChangesNothing(t *testing.T) {
	app, db := newApp(t)
	c := newClient(t, app)
	kettle := productID(t, db, "enamel-tea-kettle")
	grinder := productID(t, db, "hand-coffee-grinder") // 2 in stock
	skillet := productID(t, db, "cast-iron-skillet")   // sold out

	// Refused first adds create no guest.
	visitorCases := []struct {
		name, id, qty string
		want          int
	}{
		{"negative quantity", kettle, "-1", 422},
		{"zero quantity", kettle, "0", 422},
		{"huge quantity", kettle, "100", 422},
		{"overflowing quantity", kettle, "99999999999999999999", 422},
		{"non-numeric quantity", kettle, "two", 422},
		{"fractional quantity", kettle, "1.5", 422},
		{"unknown product", "987654", "1", 404},
		{"garbage product id", "abc", "1", 422},
		{"SQL product id", "1 OR 1=1", "1", 422},
		{"negative product id", "-3", "1", 422},
		{"empty product id", "", "1", 422},
		{"more than in stock", grinder, "3", 422},
		{"sold out", skillet, "1", 422},
	}
	for _, tc := range visitorCases {
		t.Run("visitor/"+tc.name, func(t *testing.T) {
			r := add(c, tc.id, tc.qty)
			wantStatus(t, r, tc.want)
			if s := snapshot(t, db); s != "" {
				t.Fatalf("refused add created rows:\n%s", s)
			}
		})
	}

	wantStatus(t, add(c, kettle, "1"), http.StatusSeeOther)
	wantStatus(t, add(c, grinder, "1"), http.StatusSeeOther)
	before := snapshot(t, db)

	guestCases := []struct {
		name, path string
		form       url.Values
		want       int
	}{
		{"add past stock", "/cart/items", url.Values{"product_id": {grinder}, "quantity": {"2"}}, 422},
		{"add bad quantity", "/cart/items", url.Values{"product_id": {kettle}, "quantity": {"x"}}, 422},
		{"set negative", "/cart/items/" + kettle, url.Values{"quantity": {"-1"}}, 422},
		{"set huge", "/cart/items/" + kettle, url.Values{"quantity": {"100"}}, 422},
		{"set empty", "/cart/items/" + kettle, url.Values{"quantity": {""}}, 422},
		{"set text", "/cart/items/" + kettle, url.Values{"quantity": {"lots"}}, 422},
		{"set past stock", "/cart/items/" + grinder, url.Values{"quantity": {"3"}}, 422},
		{"set line not in cart", "/cart/items/" + skillet, url.Values{"quantity": {"1"}}, 404},
		{"set unknown product", "/cart/items/987654", url.Values{"quantity": {"1"}}, 404},
		{"set garbage product", "/cart/items/abc", url.Values{"quantity": {"1"}}, 404},
		{"set SQL product", "/cart/items/" + url.PathEscape("1;DROP TABLE carts"), url.Values{"quantity": {"1"}}, 404},
		{"remove unknown product", "/cart/items/987654/delete", nil, 404},
		{"remove garbage product", "/cart/items/x/delete", nil, 404},
	}
	for _, tc := range guestCases {
		t.Run("guest/"+tc.name, func(t *testing.T) {
			r := c.post(tc.path, tc.form)
			wantStatus(t, r, tc.want)
			if tc.want == 422 && !strings.Contains(r.body, `class="flash error"`) && !strings.Contains(r.body, `form-error`) {
				t.Errorf("422 without a message:\n%.400s", r.body)
			}
			if after := snapshot(t, db); after != before {
				t.Fatalf("refused request changed rows:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}

	t.Run("without CSRF token", func(t *testing.T) {
		r := c.post("/cart/items/"+kettle, url.Values{"_csrf": {""}, "quantity": {"5"}})
		wantStatus(t, r, http.StatusForbidden)
		if after := snapshot(t, db); after != before {
			t.Fatal("refused request changed rows")
		}
	})
}

func TestCartUpdateAndRemove(t *testing.T) {
	app, db := newApp(t)
	c := newClient(t, app)
	kettle := productID(t, db, "enamel-tea-kettle")
	mug := productID(t, db, "stoneware-mug")
	wantStatus(t, add(c, kettle, "1"), http.StatusSeeOther)
	wantStatus(t, add(c, mug, "1"), http.StatusSeeOther)

	wantStatus(t, c.post("/cart/items/"+kettle, url.Values{"quantity": {"4"}}), http.StatusSeeOther)
	wantStatus(t, c.post("/cart/items/"+mug+"/delete", nil), http.StatusSeeOther)
	wantStatus(t, c.post("/cart/items/"+mug+"/delete", nil), http.StatusSeeOther) // a double click
	var lines []string
	db.Raw("SELECT product_id || 'x' || quantity FROM cart_items").Scan(&lines)
	if len(lines) != 1 || lines[0] != kettle+"x4" {
		t.Fatalf("lines = %v, want [%sx4]", lines, kettle)
	}
	wantStatus(t, c.post("/cart/items/"+kettle, url.Values{"quantity": {"0"}}), http.StatusSeeOther)
	if page := c.get("/cart"); !strings.Contains(page.body, "Your cart is empty") {
		t.Fatal("cart not empty after setting the last line to 0")
	}
}

func TestCartHTMX(t *testing.T) {
	app, db := newApp(t)
	c := newClient(t, app)
	kettle := productID(t, db, "enamel-tea-kettle")

	htmx := func(path string, form url.Values) response {
		form.Set("_csrf", c.csrf())
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("HX-Request", "true")
		return c.do(req)
	}
	r := htmx("/cart/items", url.Values{"product_id": {kettle}, "quantity": {"2"}})
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `id="add-status"`) || !strings.Contains(r.body, `id="cart-badge"`) || strings.Contains(r.body, "<html") {
		t.Fatalf("htmx add answered:\n%s", r.body)
	}
	if !strings.Contains(r.body, ">2<span") {
		t.Fatalf("badge does not count 2:\n%s", r.body)
	}
	r = htmx("/cart/items/"+kettle, url.Values{"quantity": {"5"}})
	wantStatus(t, r, http.StatusOK)
	if !strings.HasPrefix(r.body, `<div id="cart-lines">`) || !strings.Contains(r.body, `value="5"`) {
		t.Fatalf("htmx update answered:\n%.500s", r.body)
	}
	r = htmx("/cart/items/"+kettle, url.Values{"quantity": {"abc"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if !strings.HasPrefix(r.body, `<div id="cart-lines">`) || !strings.Contains(r.body, "whole number") {
		t.Fatalf("htmx bad update answered:\n%.500s", r.body)
	}
}

func TestSessionCookies(t *testing.T) {
	app, db := newApp(t)
	owner := newClient(t, app)
	kettle := productID(t, db, "enamel-tea-kettle")
	wantStatus(t, add(owner, kettle, "1"), http.StatusSeeOther)
	sid := owner.cookies["sid"]

	expired := newClient(t, app)
	wantStatus(t, add(expired, productID(t, db, "stoneware-mug"), "1"), http.StatusSeeOther)
	expiredSID := expired.cookies["sid"]
	db.Exec("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = ?", mustHash(t, expiredSID))
	before := snapshot(t, db)

	for name, value := range map[string]string{
		"tampered":  flipLast(sid),
		"truncated": sid[:20],
		"garbage":   "not-a-token!!",
		"expired":   expiredSID,
		"NUL":       "abc\x00def",
	} {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, app)
			c.cookies["sid"] = value
			r := c.get("/cart")
			wantStatus(t, r, http.StatusOK)
			if !strings.Contains(r.body, "Your cart is empty") {
				t.Fatal("a bad sid shows a cart")
			}
			if _, kept := c.cookies["sid"]; kept {
				t.Fatal("a bad sid cookie was not cleared")
			}
			if after := snapshot(t, db); after != before {
				t.Fatal("a bad sid changed rows")
			}
		})
	}

	t.Run("another guest's line cannot be changed", func(t *testing.T) {
		other := newClient(t, app)
		wantStatus(t, other.post("/cart/items/"+kettle, url.Values{"quantity": {"9"}}), http.StatusNotFound)
		wantStatus(t, add(other, productID(t, db, "linen-notebook-a5"), "1"), http.StatusSeeOther)
		wantStatus(t, other.post("/cart/items/"+kettle, url.Values{"quantity": {"9"}}), http.StatusNotFound)
		if page := other.get("/cart"); strings.Contains(page.body, "Enamel Tea Kettle") {
			t.Fatal("a guest sees another guest's cart")
		}
		var q int
		db.Raw("SELECT quantity FROM cart_items WHERE product_id = ?", kettle).Scan(&q)
		if q != 1 {
			t.Fatalf("owner's quantity = %d, want 1", q)
		}
	})
}

func TestSessionSlidingExpiry(t *testing.T) {
	app, db := newApp(t)
	c := newClient(t, app)
	wantStatus(t, add(c, productID(t, db, "enamel-tea-kettle"), "1"), http.StatusSeeOther)

	// A fresh session is not written to by page views.
	var seen1, seen2 time.Time
	db.Raw("SELECT last_seen_at FROM sessions").Scan(&seen1)
	c.get("/cart")
	db.Raw("SELECT last_seen_at FROM sessions").Scan(&seen2)
	if !seen1.Equal(seen2) {
		t.Fatal("a page view wrote last_seen_at within the hour")
	}

	// An hour later the next request slides the session and the cookie.
	db.Exec("UPDATE sessions SET last_seen_at = now() - interval '2 hours', expires_at = now() + interval '1 day'")
	db.Exec("UPDATE users SET last_seen_at = now() - interval '2 hours'")
	before := c.cookies["sid"]
	r := c.get("/cart")
	refreshed := false
	for _, k := range r.Cookies() {
		refreshed = refreshed || (k.Name == "sid" && k.Value == before && k.MaxAge > 0)
	}
	if !refreshed {
		t.Fatal("the sid cookie was not sent again with a fresh Max-Age")
	}
	var fresh int
	db.Raw(`SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.last_seen_at > now() - interval '1 minute' AND u.last_seen_at > now() - interval '1 minute'
		AND s.expires_at > now() + interval '700 hours'`).Scan(&fresh)
	if fresh != 1 {
		t.Fatal("last_seen_at and expires_at did not slide")
	}
}

func mustHash(t *testing.T, token string) []byte {
	h, ok := models.ParseToken(token)
	if !ok {
		t.Fatalf("bad token %q", token)
	}
	return h
}

func flipLast(s string) string {
	if strings.HasSuffix(s, "A") {
		return s[:len(s)-1] + "B"
	}
	return s[:len(s)-1] + "A"
}

func TestGuestsDisabled(t *testing.T) {
	app, db := newApp(t, func(c *handlers.Config) { c.GuestsEnabled = false })
	c := newClient(t, app)
	r := add(c, productID(t, db, "enamel-tea-kettle"), "1")
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/login?next=%2Fproducts%2Fenamel-tea-kettle" {
		t.Fatalf("redirect to %q, want the sign-in page", loc)
	}
	if s := snapshot(t, db); s != "" {
		t.Fatalf("guests disabled, yet rows were created:\n%s", s)
	}
}

func TestGuestCreationRateLimit(t *testing.T) {
	app, db := newApp(t, func(c *handlers.Config) {
		c.Limits.GuestCreation = handlers.Limit{Max: 2, Window: time.Hour}
	})
	kettle := productID(t, db, "enamel-tea-kettle")
	first := newClient(t, app)
	wantStatus(t, add(first, kettle, "1"), http.StatusSeeOther)
	wantStatus(t, add(newClient(t, app), kettle, "1"), http.StatusSeeOther)
	before := snapshot(t, db)
	r := add(newClient(t, app), kettle, "1")
	wantStatus(t, r, http.StatusTooManyRequests)
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q", ra)
	}
	if snapshot(t, db) != before {
		t.Fatal("a rate-limited add created rows")
	}
	// The limit is on creating guests: an existing guest still shops.
	wantStatus(t, add(first, kettle, "1"), http.StatusSeeOther)
}
