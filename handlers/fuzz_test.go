package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"shopfront/handlers"
	"shopfront/models"
)

// Fuzz targets for what the app reads from requests: form fields, the
// session cookie, the sign-in redirect, the admin cursor and the catalog
// query. Each drives the real app over HTTP and builds it once, before
// f.Fuzz (a fresh database each). Run one with
//
//	go test ./handlers/ -run '^$' -fuzz '^FuzzCartAddForm$' -fuzztime 20s
//
// Without -fuzz, `go test` runs the seeds below and testdata/fuzz/<Target>/.

// fuzzTB is the setup's testing.TB. The database logger keeps the TB it was
// opened with and may write from inside the fuzz function, where
// (*testing.F).Log panics; its lines go to stderr instead.
type fuzzTB struct{ testing.TB }

func (fuzzTB) Log(args ...any) { fmt.Fprintln(os.Stderr, args...) }

func (fuzzTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// fuzzNumber reads a whole number in [lo, hi]. Lenient allows what a
// forgiving reader might: surrounding spaces, a '+', leading zeros. Strict
// allows only plain digits without a leading zero: what every reader must
// take.
func fuzzNumber(raw string, lo, hi int64, lenient bool) (int64, bool) {
	if lenient {
		raw = strings.TrimPrefix(strings.TrimSpace(raw), "+")
	} else if strings.HasPrefix(raw, "0") {
		return 0, false
	}
	if raw == "" {
		return 0, false
	}
	var n int64
	for _, b := range []byte(raw) {
		if b < '0' || b > '9' {
			return 0, false
		}
		if n > (math.MaxInt64-int64(b-'0'))/10 {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, n >= lo && n <= hi
}

// fuzzNoMarkup fails when a page holds a <fuzz tag: only a fuzzed
// value put into the HTML unescaped can bring one.
func fuzzNoMarkup(t *testing.T, r response) {
	t.Helper()
	if strings.Contains(strings.ToLower(r.body), "<fuzz") {
		t.Fatalf("%s %s: a fuzzed value reached the page unescaped:\n%.2000s", r.Request.Method, r.Request.URL, r.body)
	}
}

// FuzzCartAddForm posts product_id and quantity to POST /cart/items with a
// valid CSRF token, each time from a new visitor. The answer is 303 (added)
// exactly when the product exists and the quantity is a whole number from 1
// to 99 (empty: 1) within its stock; else 404 (no such product) or 422.
// Never 5xx, and a refused add creates no session.
func FuzzCartAddForm(f *testing.F) {
	app, db := newApp(fuzzTB{f}, func(c *handlers.Config) {
		c.Limits.GuestCreation = handlers.Limit{Max: math.MaxInt32, Window: time.Hour}
	})
	var products []struct {
		ID    int64
		Stock int64
	}
	if err := db.Raw("SELECT id, stock FROM products").Scan(&products).Error; err != nil || len(products) == 0 {
		f.Fatalf("products: %v", err)
	}
	stock := map[int64]int64{}
	for _, p := range products {
		stock[p.ID] = p.Stock
	}
	mug := productID(f, db, "stoneware-mug")                  // 64 in stock
	kettle := productID(f, db, "enamel-tea-kettle")           // 22
	skillet := productID(f, db, "cast-iron-skillet")          // sold out
	duffel := productID(f, db, "weekender-duffel-bag")        // 1
	envelopes := productID(f, db, "recycled-paper-envelopes") // 120: more than one line may hold
	for _, s := range [][2]string{
		{mug, "1"},
		{mug, ""},
		{kettle, "22"},
		{kettle, "23"},
		{mug, "99"},
		{mug, "100"},
		{mug, "0"},
		{mug, "-1"},
		{mug, " 1 "},
		{mug, "+1"},
		{mug, "1e3"},
		{mug, "0x10"},
		{mug, "1.0"},
		{mug, "١"},
		{mug, "9223372036854775808"},
		{skillet, "1"},
		{duffel, "1"},
		{duffel, "2"},
		{envelopes, "99"},
		{envelopes, "100"},
		{"", "1"},
		{"0", "1"},
		{"99999999999999999999", "1"},
		{mug + " OR 1=1", "1"},
		{mug + "; DROP TABLE products;--", "1"},
		{"\x00", "\xff"},
	} {
		f.Add(s[0], s[1])
	}

	f.Fuzz(func(t *testing.T, productField, quantityField string) {
		// A new visitor each time: its cart is empty, so the stock alone
		// decides, and a guest's first add goes through guest creation.
		c := newClient(t, app)
		m := csrfPattern.FindStringSubmatch(c.get("/cart").body)
		if m == nil {
			t.Fatal("no CSRF token on the cart page")
		}
		r := c.post("/cart/items", url.Values{"product_id": {productField}, "quantity": {quantityField}, "_csrf": {m[1]}})

		expect := func(lenient bool) int {
			id, ok := fuzzNumber(productField, 1, math.MaxInt64, lenient)
			if !ok {
				return http.StatusUnprocessableEntity
			}
			inStock, exists := stock[id]
			if !exists {
				return http.StatusNotFound
			}
			qty, ok := int64(1), true
			if quantityField != "" && (!lenient || strings.TrimSpace(quantityField) != "") {
				qty, ok = fuzzNumber(quantityField, 1, models.MaxQuantity, lenient)
			}
			if !ok || qty > inStock {
				return http.StatusUnprocessableEntity
			}
			return http.StatusSeeOther
		}
		strict, lenient := expect(false), expect(true)
		if r.StatusCode != strict && r.StatusCode != lenient {
			want := fmt.Sprint(strict)
			if lenient != strict {
				want += " or " + fmt.Sprint(lenient)
			}
			t.Fatalf("product_id=%q quantity=%q: status %d, want %s; body:\n%.600s", productField, quantityField, r.StatusCode, want, r.body)
		}
		_, session := c.cookies["sid"]
		if r.StatusCode == http.StatusSeeOther {
			if loc := r.Header.Get("Location"); loc != "/cart" || !session {
				t.Fatalf("product_id=%q quantity=%q: 303 to %q, session cookie %v; want /cart with a session", productField, quantityField, loc, session)
			}
		} else if session {
			t.Fatalf("product_id=%q quantity=%q: refused with %d but a session cookie was set", productField, quantityField, r.StatusCode)
		}
	})
}

// fuzzCookieValueOK reports whether net/http sends s as a cookie value as
// it is: RFC 6265 cookie-octets (http.Cookie drops other bytes and quotes
// values with spaces or commas).
func fuzzCookieValueOK(s string) bool {
	for _, b := range []byte(s) {
		if b <= ' ' || b >= 0x7f || b == '"' || b == ';' || b == '\\' || b == ',' {
			return false
		}
	}
	return true
}

// FuzzSessionCookie sends an arbitrary sid cookie to GET /cart. No value
// but a live session's token opens a cart: the answer is always 200 with an
// empty cart, and a sid that opens nothing is cleared. A guest with a cart
// exists, and values a character away from its token are seeds.
func FuzzSessionCookie(f *testing.F) {
	app, db := newApp(fuzzTB{f})
	owner := newClient(f, app)
	wantStatus(f, add(owner, productID(f, db, "enamel-tea-kettle"), "3"), http.StatusSeeOther)
	sid := owner.cookies["sid"]
	if len(sid) != 43 {
		f.Fatalf("owner's sid %q", sid)
	}
	for _, s := range []string{
		"",
		"not-a-token!!",
		"abc%00def",
		strings.Repeat("A", 43),
		strings.Repeat("_", 43),
		strings.Repeat("A", 42) + "=",
		strings.Repeat("A", 44),
		strings.Repeat("+", 43),
		"' OR '1'='1",
		sid[:42],
		sid + "A",
		"A" + sid[1:],
		// The owner's token with its last character changed in the two
		// bits that 43 base64 characters carry beyond 32 bytes.
		sid[:42] + string(fuzzBase64Sibling(sid[42], 1)),
		sid[:42] + string(fuzzBase64Sibling(sid[42], 2)),
		sid[:42] + string(fuzzBase64Sibling(sid[42], 3)),
	} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, value string) {
		if !fuzzCookieValueOK(value) {
			t.Skip("net/http cannot send this cookie value as it is")
		}
		c := newClient(t, app)
		if value != "" {
			c.cookies["sid"] = value
		}
		r := c.get("/cart")
		if r.StatusCode != http.StatusOK {
			t.Fatalf("sid=%q: status %d, want 200; body:\n%.600s", value, r.StatusCode, r.body)
		}
		if !strings.Contains(r.body, "Your cart is empty") || strings.Contains(r.body, `<table class="cart">`) ||
			strings.Contains(r.body, "Save your cart") {
			t.Fatalf("sid=%q (the owner's is %q) shows a cart or a guest's page", value, sid)
		}
		if _, kept := c.cookies["sid"]; kept {
			t.Fatalf("sid=%q: the cookie was not cleared", value)
		}
	})
}

// fuzzBase64Sibling is the base64url character whose 6 bits differ from
// c's in the low two by x.
func fuzzBase64Sibling(c byte, x int) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)^x]
}

var fuzzNextField = regexp.MustCompile(`<input type="hidden" name="next" value="([^"]*)"`)

// FuzzLoginNext sends an arbitrary next to GET /login. The page carries it
// on (hidden field "next") only when it is a path on this site, as a
// browser would read it: after the browser drops tabs and line breaks and
// takes '\' for '/', it starts with one '/' and not two, and it resolves to
// this host. Always 200.
func FuzzLoginNext(f *testing.F) {
	app, _ := newApp(fuzzTB{f})
	for _, s := range []string{
		"/",
		"/cart",
		"/admin/users?kind=guest&q=%25",
		"//evil.example",
		"///evil.example",
		"/\\evil.example",
		"\\\\evil.example",
		"/\t/evil.example",
		"/\r\n/evil.example",
		"/%2F%2Fevil.example",
		"/%5Cevil.example",
		"https://evil.example/",
		"javascript:alert(1)",
		"/javascript:alert(1)",
		" /cart",
		"/@evil.example",
		"/../../etc/passwd",
		"/\x00",
		"/\xff",
		`/"><fuzz>`,
		strings.Repeat("/a", 1001),
	} {
		f.Add(s)
	}
	base, _ := url.Parse("http://shop.test/login")

	f.Fuzz(func(t *testing.T, next string) {
		c := newClient(t, app)
		r := c.get("/login?" + url.Values{"next": {next}}.Encode())
		if r.StatusCode != http.StatusOK {
			t.Fatalf("next=%q: status %d, want 200; body:\n%.600s", next, r.StatusCode, r.body)
		}
		fuzzNoMarkup(t, r)
		fields := fuzzNextField.FindAllStringSubmatch(r.body, -1)
		if n := strings.Count(r.body, `name="next"`); n != len(fields) || n > 1 {
			t.Fatalf("next=%q: %d next fields, %d readable:\n%.3000s", next, n, len(fields), r.body)
		}
		if len(fields) == 0 {
			return
		}
		got := html.UnescapeString(fields[0][1])
		if got != next {
			t.Fatalf("next=%q: the page carries %q", next, got)
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") {
			t.Fatalf("next=%q: kept a value that is not a local path", next)
		}
		browser := strings.ReplaceAll(strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(got), "\\", "/")
		if !strings.HasPrefix(browser, "/") || strings.HasPrefix(browser, "//") {
			t.Fatalf("next=%q: a browser reads it as %q, another site", next, browser)
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			t.Fatalf("next=%q: kept, but parses as %#v (%v)", next, u, err)
		}
		if to := base.ResolveReference(u); to.Scheme != "http" || to.Host != "shop.test" {
			t.Fatalf("next=%q: kept, but leads to %s", next, to)
		}
	})
}

var (
	fuzzRowLink     = regexp.MustCompile(`href="/admin/users/([0-9a-f-]{36})"`)
	fuzzNextLink    = regexp.MustCompile(`href="(/admin/users\?[^"]*)" rel="next"`)
	fuzzUUIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// fuzzLooksLikeUUID is a lenient reading of a UUID: 32 hex digits, dashes
// anywhere, in braces or after urn:uuid: if you like.
func fuzzLooksLikeUUID(s string) bool {
	if len(s) >= 9 && strings.EqualFold(s[:9], "urn:uuid:") {
		s = s[9:]
	}
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
		s = s[1 : len(s)-1]
	}
	s = strings.ReplaceAll(s, "-", "")
	if len(s) != 32 {
		return false
	}
	for _, b := range []byte(s) {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(b)) {
			return false
		}
	}
	return true
}

// FuzzAdminCursor sends arbitrary after, kind and q to GET /admin/users as
// a signed-in admin, over 60 guests, 55 customers and the admin. The answer
// is 200 or 400: 400 for an unknown kind, a search that is not UTF-8, has a
// NUL or is longer than 254 bytes, or an after that is no UUID; 200 when
// all three are plainly good. A 200 lists exactly the users a reference
// model of the list names: newest first, older than the cursor, of the
// kind, with the search in the email as plain text (LIKE wildcards are
// text), 50 at most; and links the next page with the same filters.
func FuzzAdminCursor(f *testing.F) {
	app, db := newApp(fuzzTB{f})
	const email, password = "boss@example.com", "a long admin password"
	accounts := models.NewAccounts(db, models.NewPasswords(), time.Hour)
	if _, err := accounts.CreateAdmin(context.Background(), email, password); err != nil {
		f.Fatal(err)
	}
	// Guests and customers older than the admin, as UUIDv7 ids of earlier
	// days sort.
	for _, sql := range []string{
		`INSERT INTO users (id, kind)
		SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 'guest'
		FROM generate_series(1, 60) n`,
		`INSERT INTO users (id, kind, email, password_hash, email_verified_at)
		SELECT ('00000000-0000-7000-9000-' || lpad(to_hex(n), 12, '0'))::uuid, 'registered',
			'Shopper_' || n || '@Example.org', 'x', now()
		FROM generate_series(1, 55) n`,
	} {
		if err := db.Exec(sql).Error; err != nil {
			f.Fatal(err)
		}
	}
	// The reference: every user, newest first.
	var users []struct {
		ID    uuid.UUID
		Kind  string
		Email string
	}
	if err := db.Raw("SELECT id, kind, coalesce(email, '') AS email FROM users ORDER BY id DESC").Scan(&users).Error; err != nil || len(users) != 116 {
		f.Fatalf("users: %d, %v", len(users), err)
	}
	admin := newClient(f, app)
	wantStatus(f, admin.post("/login", url.Values{"email": {email}, "password": {password}}), http.StatusSeeOther)
	wantStatus(f, admin.get("/admin/users"), http.StatusOK)

	guest := "00000000-0000-7000-8000-00000000001e"
	for _, s := range [][3]string{
		{"", "", ""},
		{guest, "", ""},
		{guest, "guest", ""},
		{strings.ToUpper(guest), "", ""},
		{"{" + guest + "}", "", ""},
		{"urn:uuid:" + guest, "", ""},
		{strings.ReplaceAll(guest, "-", ""), "", ""},
		{"00000000-0000-0000-0000-000000000000", "", ""},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", "registered", "boss"},
		{"00000000-0000-7000-9000-000000000030", "registered", "EXAMPLE.ORG"},
		{"00000000-0000-7000-8000-00000000001", "", ""},
		{guest + "' OR '1'='1", "", ""},
		{"", "Guest", ""},
		{"", "admin", ""},
		{"", "guest\x00", ""},
		{"", "", " BOSS@EXAMPLE.COM "},
		{"", "", "example"},
		{"", "", "%"},
		{"", "", "_"},
		{"", "", "r_1"},
		{"", "", "\\"},
		{"", "", "b%s"},
		{"", "", `"><fuzz>`},
		{"", "", "\xff"},
		{"", "", "a\x00"},
		{"", "", strings.Repeat("a", 255)},
		{"", "", strings.Repeat("é", 127)},
	} {
		f.Add(s[0], s[1], s[2])
	}

	f.Fuzz(func(t *testing.T, after, kind, q string) {
		c := &client{t: t, app: app, cookies: admin.cookies}
		query := url.Values{"after": {after}, "kind": {kind}, "q": {q}}
		r := c.get("/admin/users?" + query.Encode())
		if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 200 or 400; body:\n%.600s", query.Encode(), r.StatusCode, r.body)
		}
		fuzzNoMarkup(t, r)

		term := strings.TrimSpace(q)
		kindOK := kind == "" || kind == models.KindGuest || kind == models.KindRegistered
		termOK := len(term) <= 254 && utf8.ValidString(term) && !strings.ContainsRune(term, 0)
		if !kindOK || !termOK || (after != "" && !fuzzLooksLikeUUID(after)) {
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: status %d, want 400 (kind ok %v, q ok %v)", query.Encode(), r.StatusCode, kindOK, termOK)
			}
			return
		}
		if (after == "" || fuzzUUIDPattern.MatchString(after)) && r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d for good filters, want 200; body:\n%.600s", query.Encode(), r.StatusCode, r.body)
		}
		if r.StatusCode != http.StatusOK {
			return
		}

		cursor, _ := uuid.Parse(after) // the app took it; uuid.Nil: the first page
		var want []string
		for _, u := range users {
			if (kind == "" || u.Kind == kind) && (term == "" || (u.Email != "" && strings.Contains(strings.ToLower(u.Email), strings.ToLower(term)))) &&
				(cursor == uuid.Nil || bytes.Compare(u.ID[:], cursor[:]) < 0) {
				want = append(want, u.ID.String())
			}
		}
		more := len(want) > 50
		want = want[:min(len(want), 50)]
		var got []string
		for _, m := range fuzzRowLink.FindAllStringSubmatch(r.body, -1) {
			got = append(got, m[1])
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("%s: lists %d users, want %d:\n got %v\nwant %v", query.Encode(), len(got), len(want), got, want)
		}
		m := fuzzNextLink.FindStringSubmatch(r.body)
		if (m != nil) != more {
			t.Fatalf("%s: next page link %v, want %v", query.Encode(), m != nil, more)
		}
		if m != nil {
			next, err := url.Parse(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatalf("%s: next page link %q: %v", query.Encode(), m[1], err)
			}
			nq := next.Query()
			if nq.Get("after") != want[len(want)-1] || nq.Get("kind") != kind || nq.Get("q") != term {
				t.Fatalf("%s: next page link %q, want after=%s with the same kind and search", query.Encode(), m[1], want[len(want)-1])
			}
		}
	})
}

var fuzzPageLink = regexp.MustCompile(`href="(/[^"]*)" rel="(prev|next)"`)

// FuzzCatalogQuery sends arbitrary q and page to GET /. The answer is 200
// or 400: 400 for a search that is not UTF-8, has a NUL or is longer than
// 200 bytes, or a page that is not a whole number from 1 to 10000; 200 when
// both are plainly good. Page links keep the search and step by one.
func FuzzCatalogQuery(f *testing.F) {
	app, _ := newApp(fuzzTB{f})
	for _, s := range [][2]string{
		{"", ""},
		{"mug", ""},
		{"", "2"},
		{"", "3"},
		{"", "4"},
		{"", "10000"},
		{"", "10001"},
		{"", "0"},
		{"", "-1"},
		{"", "+2"},
		{"", " 2"},
		{"", "02"},
		{"", "1e3"},
		{"", "0x10"},
		{"", "١"},
		{"", "99999999999999999999"},
		{"tea", "2"},
		{"e", "2"},
		{" e ", "3"},
		{"%", "2"},
		{"_", ""},
		{"\\", ""},
		{"' OR 1=1 --", ""},
		{`"><fuzz>`, ""},
		{"\x00", ""},
		{"\xff", ""},
		{strings.Repeat("a", 201), ""},
		{" " + strings.Repeat("é", 100) + " ", ""},
	} {
		f.Add(s[0], s[1])
	}

	f.Fuzz(func(t *testing.T, q, page string) {
		c := newClient(t, app)
		query := url.Values{"q": {q}, "page": {page}}
		r := c.get("/?" + query.Encode())
		if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 200 or 400; body:\n%.600s", query.Encode(), r.StatusCode, r.body)
		}
		fuzzNoMarkup(t, r)

		term := strings.TrimSpace(q)
		termOK := len(term) <= 200 && utf8.ValidString(term) && !strings.ContainsRune(term, 0)
		n, lenientOK := int64(1), true
		if page != "" {
			n, lenientOK = fuzzNumber(page, 1, 10_000, true)
		}
		_, strictOK := fuzzNumber(page, 1, 10_000, false)
		strictOK = strictOK || page == ""
		if !termOK || !lenientOK {
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: status %d, want 400 (q ok %v, page ok %v)", query.Encode(), r.StatusCode, termOK, lenientOK)
			}
			return
		}
		if strictOK && r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d for a good search and page, want 200; body:\n%.600s", query.Encode(), r.StatusCode, r.body)
		}
		if r.StatusCode != http.StatusOK {
			return
		}
		for _, m := range fuzzPageLink.FindAllStringSubmatch(r.body, -1) {
			link, err := url.Parse(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatalf("%s: %s link %q: %v", query.Encode(), m[2], m[1], err)
			}
			want := n + 1
			if m[2] == "prev" {
				want = n - 1
			}
			got, ok := int64(1), true
			if p := link.Query().Get("page"); p != "" {
				got, ok = fuzzNumber(p, 2, 10_000, false)
			}
			if link.Path != "/" || link.Query().Get("q") != term || !ok || got != want {
				t.Fatalf("%s: %s link %q, want page %d of the search %q", query.Encode(), m[2], m[1], want, term)
			}
		}
	})
}
