package handlers_test

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"shopfront/handlers"
)

// hostileActor is one browser of the hostile suite: its cookies and the CSRF
// token its pages carry. The suite never changes them: every request is sent
// with exactly the cookies its case names.
type hostileActor struct {
	name    string
	cookies map[string]string
	token   string
}

func hostileActorOf(name string, c *client) *hostileActor {
	c.t.Helper()
	token := c.csrf()
	cookies := maps.Clone(c.cookies)
	delete(cookies, "flash")
	return &hostileActor{name: name, cookies: cookies, token: token}
}

// cookie is the actor's Cookie header with changes: pairs of name and value,
// an empty value dropping the cookie.
func (a *hostileActor) cookie(changes ...string) string {
	m := map[string]string{}
	if a != nil {
		m = maps.Clone(a.cookies)
	}
	for i := 0; i+1 < len(changes); i += 2 {
		if changes[i+1] == "" {
			delete(m, changes[i])
		} else {
			m[changes[i]] = changes[i+1]
		}
	}
	names := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, n+"="+m[n])
	}
	return strings.Join(parts, "; ")
}

// form is a form carrying the actor's CSRF token, then the pairs in kv.
func (a *hostileActor) form(kv ...string) url.Values {
	v := url.Values{"_csrf": {a.token}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

// hostile is one request of the suite and the answers it may get.
type hostile struct {
	cat, name      string
	method, target string
	host           string // the Host header; shop.test when empty
	cookie         string // the Cookie header, exactly
	header         map[string]string
	body           string
	ctype          string
	chunked        bool
	// wire sends the request over a real connection: its input is too large
	// or too malformed for app.Test, which then reports an error instead of
	// the server's answer.
	wire   bool
	want   []int    // the acceptable statuses; empty means any below 500
	forbid []string // what the body must not contain
}

func codes(c ...int) []int { return c }

// any4xx accepts every client error.
var any4xx = func() []int {
	var c []int
	for i := 400; i < 500; i++ {
		c = append(c, i)
	}
	return c
}()

// hostileMarkers must appear in no answer: reflected markup from the
// payloads, stack traces, database errors and secrets.
var hostileMarkers = []string{
	"<script>alert(1)", "<img src=x onerror", "<svg onload", `="javascript:`,
	"goroutine ", "runtime error", "SQLSTATE", "panic:", "$argon2id$",
}

// The payload families every text field gets.
var (
	hostileNUL = []string{"\x00", "x\x00y@example.com", "\xff\xfe\xfd", "\xed\xa0\x80@example.com"} // NUL, NUL inside, invalid UTF-8, an encoded surrogate
	hostileSQL = []string{"' OR '1'='1", "'; DROP TABLE users; --", `\`, "%_%", "1 UNION SELECT password_hash FROM users"}
	hostileXSS = []string{
		"<script>alert(1)</script>", `"><script>alert(1)</script>`, "<img src=x onerror=alert(1)>",
		"{{ .Secret }}${7*7}<%= 7*7 %>", "</title><svg onload=alert(1)>",
	}
)

// hostileSnapshot is every row of every table as text, but for rate_limits,
// whose counters sensitive POSTs advance whether or not they are refused, and
// outbox, whose rows the mail worker updates as it sends: it is compared by
// its number of rows.
func hostileSnapshot(t *testing.T, db *gorm.DB) (rows []string, tables []string) {
	t.Helper()
	err := db.Raw(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`).Scan(&tables).Error
	if err != nil || len(tables) == 0 {
		t.Fatalf("list tables: %v", err)
	}
	for _, table := range tables {
		var got []string
		switch table {
		case "rate_limits":
			continue
		case "outbox":
			err = db.Raw(`SELECT 'rows: ' || count(*) FROM outbox`).Scan(&got).Error
		default:
			err = db.Raw(fmt.Sprintf(`SELECT t::text FROM %q t ORDER BY 1`, table)).Scan(&got).Error
		}
		if err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		for _, r := range got {
			rows = append(rows, table+" "+r)
		}
	}
	return rows, tables
}

// hostileDiff lists the rows only in a and only in b.
func hostileDiff(a, b []string) (gone, added []string) {
	count := map[string]int{}
	for _, r := range a {
		count[r]++
	}
	for _, r := range b {
		count[r]--
	}
	for r, n := range count {
		for ; n > 0; n-- {
			gone = append(gone, r)
		}
		for ; n < 0; n++ {
			added = append(added, r)
		}
	}
	sort.Strings(gone)
	sort.Strings(added)
	return gone, added
}

// hostileOffSite reports whether a redirect target could take a browser to
// another site: anything but a plain path on this one (browsers read "\" as
// "/" and drop tabs and newlines).
func hostileOffSite(loc string) bool {
	if loc == "" {
		return false
	}
	if strings.ContainsAny(loc, "\\\t\r\n\x00") {
		return true
	}
	if strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
		return false
	}
	u, err := url.Parse(loc)
	return err != nil || u.Scheme != "http" || u.Host != "shop.test"
}

// hostileTokenFor waits for the set-password link mailed to email.
func hostileTokenFor(t *testing.T, a mailingApp, email string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range a.sink.Messages() {
			if len(m.To) > 0 && m.To[0] == email {
				return tokenOf(linkIn(t, m))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no mail to %s", email)
	return ""
}

// hostileRequest builds the request of a case.
func hostileRequest(h hostile) *http.Request {
	var body io.Reader
	if h.body != "" {
		body = strings.NewReader(h.body)
	}
	req := httptest.NewRequest(h.method, h.target, body)
	req.Host = "shop.test"
	if h.host != "" {
		req.Host = h.host
	}
	if h.chunked {
		req.ContentLength = -1
		req.TransferEncoding = []string{"chunked"}
		req.Body = io.NopCloser(strings.NewReader(h.body)) // a reader of unknown length
	}
	if h.ctype != "" {
		req.Header.Set("Content-Type", h.ctype)
	}
	req.Header.Set("User-Agent", testUserAgent)
	for k, v := range h.header {
		req.Header.Set(k, v)
	}
	if h.cookie != "" {
		req.Header.Set("Cookie", h.cookie) // raw: hostile cookie bytes go as they are
	}
	return req
}

// hostileWire sends a case over a real connection to addr and reads the
// answer, writing and reading at once: the server may answer (413, 431)
// before it has read everything.
func hostileWire(addr string, h hostile) (*http.Response, string, error) {
	req := hostileRequest(h)
	if !h.chunked && req.Body != http.NoBody && req.Header.Get("Content-Length") == "" {
		req.Header.Set("Content-Length", fmt.Sprint(req.ContentLength))
	}
	req.Header.Set("Connection", "close")
	raw, err := httputil.DumpRequest(req, true)
	if err != nil {
		return nil, "", err
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	go conn.Write(raw)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: h.method})
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestHostileRequests sends hundreds of hostile requests over every route
// (routes.go), as visitors, guests, a customer, an admin and holders of dead
// sessions and links, and checks that none gets a 5xx, each gets the answer
// its refusal calls for, no answer reflects markup or leaks a secret or
// redirects off the site, and — the point — that no table changed.
func TestHostileRequests(t *testing.T) {
	big := handlers.Limit{Max: 1 << 30, Window: time.Hour}
	a := newMailingApp(t, func(c *handlers.Config) {
		c.Limits = handlers.Limits{GuestCreation: big, Login: big, Emails: big}
	})
	app, db := a.app, a.db
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second) })

	// The cast: a guest with a cart, a customer with a cart, an admin, a
	// browser whose session expired, and set-password links: one used, one
	// unused promote link, one unused reset link, one expired.
	mug := productID(t, db, "stoneware-mug")
	kettle := productID(t, db, "enamel-tea-kettle")
	guestC := guestWithCart(t, a, "stoneware-mug", "2")
	customerC := signedIn(t, app, db, "customer@example.com", false)
	wantStatus(t, add(customerC, kettle, "1"), http.StatusSeeOther)
	adminC := signedIn(t, app, db, "boss@example.com", true)

	expiredC := guestWithCart(t, a, "linen-notebook-a5", "1")
	expiredSID := expiredC.cookies["sid"]
	db.Exec("UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE token_hash = ?", mustHash(t, expiredSID))

	usedC := guestWithCart(t, a, "linen-notebook-a5", "1")
	wantStatus(t, usedC.post("/account/promote", url.Values{"email": {"used@example.com"}}), http.StatusSeeOther)
	usedToken := hostileTokenFor(t, a, "used@example.com")
	wantStatus(t, usedC.post("/account/password", url.Values{"token": {usedToken}, "password": {goodPassword}, "password_confirm": {goodPassword}}), http.StatusSeeOther)

	pendingC := guestWithCart(t, a, "linen-notebook-a5", "1")
	wantStatus(t, pendingC.post("/account/promote", url.Values{"email": {"pending@example.com"}}), http.StatusSeeOther)
	pendingToken := hostileTokenFor(t, a, "pending@example.com")

	lateC := guestWithCart(t, a, "linen-notebook-a5", "1")
	wantStatus(t, lateC.post("/account/promote", url.Values{"email": {"late@example.com"}}), http.StatusSeeOther)
	lateToken := hostileTokenFor(t, a, "late@example.com")
	db.Exec("UPDATE email_tokens SET expires_at = now() - interval '1 minute' WHERE token_hash = ?", mustHash(t, lateToken))

	wantStatus(t, newClient(t, app).post("/password/forgot", url.Values{"email": {"customer@example.com"}}), http.StatusSeeOther)
	resetToken := hostileTokenFor(t, a, "customer@example.com")

	var customerID, adminID string
	db.Raw("SELECT id::text FROM users WHERE email = 'customer@example.com'").Scan(&customerID)
	db.Raw("SELECT id::text FROM users WHERE email = 'boss@example.com'").Scan(&adminID)

	visitor := hostileActorOf("visitor", newClient(t, app))
	stranger := hostileActorOf("another visitor", newClient(t, app))
	guest := hostileActorOf("guest", guestC)
	customer := hostileActorOf("customer", customerC)
	admin := hostileActorOf("admin", adminC)
	pending := hostileActorOf("guest with a pending link", pendingC)
	expired := hostileActorOf("expired session", expiredC)
	expired.cookies["sid"] = expiredSID // its page view cleared the cookie
	nobody := &hostileActor{name: "no cookies", cookies: map[string]string{}}
	for _, act := range []*hostileActor{guest, customer, admin, pending} {
		if act.cookies["sid"] == "" || act.cookies["csrf"] == "" {
			t.Fatalf("%s lacks its cookies: %v", act.name, act.cookies)
		}
	}

	before, tables := hostileSnapshot(t, db)

	var cases []hostile
	addCase := func(h hostile) {
		if h.method == "" {
			h.method = http.MethodGet
		}
		cases = append(cases, h)
	}
	get := func(cat string, act *hostileActor, target string, want ...int) hostile {
		return hostile{cat: cat, name: "as " + act.name, method: http.MethodGet, target: target, cookie: act.cookie(), want: want}
	}
	post := func(cat string, act *hostileActor, target string, form url.Values, want ...int) hostile {
		return hostile{cat: cat, name: "as " + act.name, method: http.MethodPost, target: target, cookie: act.cookie(),
			body: form.Encode(), ctype: "application/x-www-form-urlencoded", want: want}
	}
	is := func(v string, family []string) bool { return slices.Contains(family, v) }

	// --- Every text field gets NUL bytes and invalid UTF-8, SQL and
	// template metacharacters and <script>. Each probe says its answer for
	// unreadable input and for readable text.
	type probe struct {
		field     string
		bad, text []int
		build     func(v string) hostile
	}
	qe := url.QueryEscape
	pe := url.PathEscape
	probes := []probe{
		{"q on /", codes(400), codes(200), func(v string) hostile { return get("field", visitor, "/?q="+qe(v)) }},
		{"page on /", codes(400), codes(400), func(v string) hostile { return get("field", visitor, "/?page="+qe(v)) }},
		{"slug", codes(404), codes(404), func(v string) hostile { return get("field", guest, "/products/"+pe(v)) }},
		{"next on GET /login", codes(200), codes(200), func(v string) hostile { return get("field", visitor, "/login?next="+qe(v)) }},
		{"token on GET /account/password", codes(410), codes(410), func(v string) hostile {
			return get("field", pending, "/account/password?token="+qe(v))
		}},
		{"q on /admin/users", codes(400), codes(200), func(v string) hostile { return get("field", admin, "/admin/users?q="+qe(v)) }},
		{"kind on /admin/users", codes(400), codes(400), func(v string) hostile { return get("field", admin, "/admin/users?kind="+qe(v)) }},
		{"after on /admin/users", codes(400), codes(400), func(v string) hostile { return get("field", admin, "/admin/users?after="+qe(v)) }},
		{"id of /admin/users/:id", codes(404), codes(404), func(v string) hostile { return get("field", admin, "/admin/users/"+pe(v)) }},
		{"product_id on add", codes(422), codes(422), func(v string) hostile {
			return post("field", visitor, "/cart/items", visitor.form("product_id", v, "quantity", "1"))
		}},
		{"quantity on add", codes(422), codes(422), func(v string) hostile {
			return post("field", visitor, "/cart/items", visitor.form("product_id", kettle, "quantity", v))
		}},
		{"product id of a line", codes(404), codes(404), func(v string) hostile {
			return post("field", guest, "/cart/items/"+pe(v), guest.form("quantity", "1"))
		}},
		{"quantity of a line", codes(422), codes(422), func(v string) hostile {
			return post("field", guest, "/cart/items/"+mug, guest.form("quantity", v))
		}},
		{"product id of a removal", codes(404), codes(404), func(v string) hostile {
			return post("field", guest, "/cart/items/"+pe(v)+"/delete", guest.form())
		}},
		{"email on promote", codes(422), codes(422), func(v string) hostile {
			return post("field", guest, "/account/promote", guest.form("email", v))
		}},
		{"email on forgot", codes(422), codes(422), func(v string) hostile {
			return post("field", visitor, "/password/forgot", visitor.form("email", v))
		}},
		{"email on login", codes(422), codes(422), func(v string) hostile {
			return post("field", visitor, "/login", visitor.form("email", v, "password", "not the password"))
		}},
		{"password on login", codes(422), codes(422), func(v string) hostile {
			return post("field", visitor, "/login", visitor.form("email", "customer@example.com", "password", v))
		}},
		{"next on POST /login", codes(422), codes(422), func(v string) hostile {
			return post("field", visitor, "/login", visitor.form("email", "", "password", "x", "next", v))
		}},
		{"token on POST /account/password", codes(410), codes(410), func(v string) hostile {
			return post("field", visitor, "/account/password", visitor.form("token", v, "password", goodPassword, "password_confirm", goodPassword))
		}},
		{"password with a valid link", codes(422), codes(422), func(v string) hostile {
			// Never a valid pair: the confirmation differs (or the password is unreadable or short).
			return post("field", pending, "/account/password", pending.form("token", pendingToken, "password", v, "password_confirm", v+"!"))
		}},
		{"password_confirm with a valid link", codes(422), codes(422), func(v string) hostile {
			return post("field", pending, "/account/password", pending.form("token", pendingToken, "password", goodPassword, "password_confirm", v))
		}},
		{"_csrf field", codes(403), codes(403), func(v string) hostile {
			f := guest.form("quantity", "1")
			f.Set("_csrf", v)
			return post("field", guest, "/cart/items/"+mug, f)
		}},
		{"X-CSRF-Token header", codes(400, 403), codes(403), func(v string) hostile {
			h := post("field", guest, "/cart/items/"+mug, url.Values{"quantity": {"1"}})
			h.header = map[string]string{"X-CSRF-Token": v}
			return h
		}},
		{"flash cookie", codes(200), codes(200), func(v string) hostile {
			h := get("field", guest, "/cart")
			h.cookie = guest.cookie("flash", qe(v))
			return h
		}},
		{"sid cookie", codes(200), codes(200), func(v string) hostile {
			h := get("field", visitor, "/account")
			h.cookie = visitor.cookie("sid", qe(v))
			return h
		}},
		{"csrf cookie", codes(403), codes(403), func(v string) hostile {
			h := post("field", guest, "/logout", guest.form())
			h.cookie = guest.cookie("csrf", qe(v))
			return h
		}},
		{"User-Agent", codes(200, 400), codes(200), func(v string) hostile {
			h := get("field", guest, "/account")
			h.header = map[string]string{"User-Agent": v}
			return h
		}},
	}
	for _, p := range probes {
		for _, v := range slices.Concat(hostileNUL, hostileSQL, hostileXSS) {
			h := p.build(v)
			switch {
			case is(v, hostileNUL):
				h.cat = "field: NUL/invalid UTF-8"
			case is(v, hostileSQL):
				h.cat = "field: SQL"
			default:
				h.cat = "field: template/script"
			}
			h.name = fmt.Sprintf("%s = %q %s", p.field, v, h.name)
			h.want = p.text
			if is(v, hostileNUL) {
				h.want = p.bad
			}
			addCase(h)
		}
	}

	// --- Forged and replayed CSRF tokens, on requests that would otherwise
	// succeed and change something.
	wrongKey := func(act *hostileActor) string {
		raw, _ := base64.RawURLEncoding.DecodeString(act.cookies["csrf"])
		mac := hmac.New(sha256.New, []byte("not-the-shop-secret-key-at-all-32b!"))
		mac.Write([]byte("shopfront csrf v1\x00"))
		mac.Write(raw)
		return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	random43 := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	type payload struct {
		act    *hostileActor
		target string
		fields []string
	}
	payloads := []payload{
		{visitor, "/cart/items", []string{"product_id", kettle, "quantity", "1"}},
		{guest, "/cart/items", []string{"product_id", kettle, "quantity", "1"}},
		{guest, "/cart/items/" + mug, []string{"quantity", "5"}},
		{guest, "/cart/items/" + mug + "/delete", nil},
		{guest, "/account/promote", []string{"email", "fresh@example.com"}},
		{visitor, "/account/password", []string{"token", pendingToken, "password", goodPassword, "password_confirm", goodPassword}},
		{visitor, "/login", []string{"email", "customer@example.com", "password", goodPassword}},
		{customer, "/logout", nil},
		{admin, "/logout", nil},
		{visitor, "/password/forgot", []string{"email", "customer@example.com"}},
	}
	type forgery struct {
		name  string
		apply func(h *hostile, act *hostileActor, form url.Values)
	}
	forgeries := []forgery{
		{"no token", func(h *hostile, _ *hostileActor, f url.Values) { f.Del("_csrf") }},
		{"empty token", func(h *hostile, _ *hostileActor, f url.Values) { f.Set("_csrf", "") }},
		{"random token", func(h *hostile, _ *hostileActor, f url.Values) { f.Set("_csrf", random43()) }},
		{"another visitor's token (replayed)", func(h *hostile, _ *hostileActor, f url.Values) { f.Set("_csrf", stranger.token) }},
		{"token with one character changed", func(h *hostile, act *hostileActor, f url.Values) { f.Set("_csrf", flipLast(act.token)) }},
		{"right shape, HMAC under another key", func(h *hostile, act *hostileActor, f url.Values) { f.Set("_csrf", wrongKey(act)) }},
		{"valid token, csrf cookie missing", func(h *hostile, act *hostileActor, f url.Values) { h.cookie = act.cookie("csrf", "") }},
		{"valid token, another visitor's csrf cookie", func(h *hostile, act *hostileActor, f url.Values) {
			h.cookie = act.cookie("csrf", stranger.cookies["csrf"])
		}},
		{"valid token, truncated csrf cookie", func(h *hostile, act *hostileActor, f url.Values) {
			h.cookie = act.cookie("csrf", act.cookies["csrf"][:30])
		}},
		{"valid field, forged header", func(h *hostile, _ *hostileActor, f url.Values) {
			h.header = map[string]string{"X-CSRF-Token": stranger.token}
		}},
		{"valid token, cross-site Origin", func(h *hostile, _ *hostileActor, f url.Values) {
			h.header = map[string]string{"Origin": "https://evil.example"}
		}},
		{"valid token, Origin null", func(h *hostile, _ *hostileActor, f url.Values) { h.header = map[string]string{"Origin": "null"} }},
		{"valid token, look-alike Origin", func(h *hostile, _ *hostileActor, f url.Values) {
			h.header = map[string]string{"Origin": "http://shop.test.evil.example"}
		}},
		{"valid token, Sec-Fetch-Site cross-site", func(h *hostile, _ *hostileActor, f url.Values) {
			h.header = map[string]string{"Sec-Fetch-Site": "cross-site"}
		}},
		{"valid token, Sec-Fetch-Site same-site", func(h *hostile, _ *hostileActor, f url.Values) {
			h.header = map[string]string{"Sec-Fetch-Site": "same-site"}
		}},
	}
	for _, p := range payloads {
		for _, fg := range forgeries {
			form := p.act.form(p.fields...)
			h := post("csrf", p.act, p.target, nil)
			fg.apply(&h, p.act, form)
			h.body = form.Encode()
			h.name = fmt.Sprintf("%s: POST %s as %s", fg.name, p.target, p.act.name)
			h.want = codes(403)
			addCase(h)
		}
	}

	// --- Tampered, truncated, unknown, expired and other users' session
	// cookies: each is no session at all.
	sidValues := map[string]string{
		"customer's, tampered":     flipLast(customer.cookies["sid"]),
		"customer's, truncated":    customer.cookies["sid"][:20],
		"customer's, extended":     customer.cookies["sid"] + "AA",
		"customer's, padded":       customer.cookies["sid"] + "=",
		"admin's, tampered":        flipLast(admin.cookies["sid"]),
		"well-formed but unknown":  random43(),
		"expired":                  expiredSID,
		"garbage":                  "not-a-token!!",
		"NUL":                      "abc\x00def",
		"4 KiB":                    strings.Repeat("A", 4096),
		"guest's, in std base64":   strings.NewReplacer("-", "+", "_", "/").Replace(guest.cookies["sid"]) + "==",
		"SQL":                      qe("' OR 1=1 --"),
		"customer's, in lowercase": strings.ToLower(customer.cookies["sid"]),
	}
	for _, name := range slices.Sorted(maps.Keys(sidValues)) {
		sid := sidValues[name]
		if sid == customer.cookies["sid"] || sid == admin.cookies["sid"] || sid == guest.cookies["sid"] {
			continue // the change happened to change nothing
		}
		with := func(h hostile) hostile {
			h.cookie = stranger.cookie("sid", sid)
			h.name = fmt.Sprintf("sid %s: %s %s", name, h.method, h.target)
			h.forbid = []string{"customer@example.com", "boss@example.com", "Enamel Tea Kettle", "Stoneware Mug"}
			return h
		}
		addCase(with(get("sid", stranger, "/cart", 200)))
		addCase(with(get("sid", stranger, "/account", 200)))
		h := with(get("sid", stranger, "/admin/users", 303))
		h.forbid = nil
		addCase(h)
		addCase(with(post("sid", stranger, "/cart/items/"+kettle, stranger.form("quantity", "3"), 404)))
		addCase(with(post("sid", stranger, "/cart/items/"+mug+"/delete", stranger.form(), 404)))
		addCase(with(post("sid", stranger, "/logout", stranger.form(), 303)))
		addCase(with(post("sid", stranger, "/account/promote", stranger.form("email", "fresh@example.com"), 303)))
	}

	// --- Set-password links: used, unknown, expired, garbled; and valid
	// links with bad passwords. GET never uses a link; a POST only with a
	// good password.
	tokenValues := map[string]string{
		"used":                  usedToken,
		"unknown":               random43(),
		"expired":               lateToken,
		"garbage":               "x'; DROP TABLE users; --",
		"empty":                 "",
		"truncated":             pendingToken[:20],
		"extended":              pendingToken + "A",
		"one character changed": flipLast(pendingToken),
		"upper-cased":           strings.ToUpper(pendingToken),
		"space before":          " " + pendingToken,
		"space after":           pendingToken + " ",
		"padded":                pendingToken + "=",
		"NUL after":             pendingToken + "\x00",
		"in std base64":         strings.NewReplacer("-", "+", "_", "/").Replace(resetToken) + "==",
		"script":                "<script>alert(1)</script>",
	}
	for _, name := range slices.Sorted(maps.Keys(tokenValues)) {
		tok := tokenValues[name]
		if tok == pendingToken || tok == resetToken {
			continue
		}
		for _, act := range []*hostileActor{visitor, pending} {
			h := get("token", act, "/account/password?token="+qe(tok), 410)
			h.name = fmt.Sprintf("%s link: GET as %s", name, act.name)
			addCase(h)
		}
		h := post("token", visitor, "/account/password", visitor.form("token", tok, "password", goodPassword, "password_confirm", goodPassword), 410)
		h.name = fmt.Sprintf("%s link: POST with a good password", name)
		addCase(h)
	}
	for _, tok := range []struct{ name, value string }{{"promote", pendingToken}, {"reset", resetToken}} {
		for _, bad := range []struct{ name, pw, confirm string }{
			{"short", "short", "short"},
			{"129 characters", strings.Repeat("p", 129), strings.Repeat("p", 129)},
			{"mismatch", goodPassword, goodPassword + "!"},
			{"invalid UTF-8", "\xff\xfe" + goodPassword, "\xff\xfe" + goodPassword},
			{"empty", "", ""},
			{"no confirmation", goodPassword, ""},
		} {
			for _, act := range []*hostileActor{visitor, guest} {
				h := post("token", act, "/account/password", act.form("token", tok.value, "password", bad.pw, "password_confirm", bad.confirm), 422)
				h.name = fmt.Sprintf("valid %s link, %s password, as %s", tok.name, bad.name, act.name)
				addCase(h)
			}
		}
		// Opening a valid link changes nothing.
		h := get("token", customer, "/account/password?token="+tok.value, 200)
		h.name = "valid " + tok.name + " link opened by GET"
		addCase(h)
		h = get("token", customer, "/account/password?token="+tok.value, 200)
		h.method = http.MethodHead
		h.name = "valid " + tok.name + " link opened by HEAD"
		h.want = nil
		addCase(h)
	}
	// Only the body counts: a valid token in the query string of a POST
	// does not stand in for the form's.
	h := post("token", visitor, "/account/password?token="+pendingToken, visitor.form("token", "garbage", "password", goodPassword, "password_confirm", goodPassword), 410)
	h.name = "valid token in the query, garbage token in the form"
	addCase(h)
	h = post("token", visitor, "/account/password", url.Values{"_csrf": {visitor.token}, "token": {"garbage", pendingToken}, "password": {goodPassword}, "password_confirm": {goodPassword}}, 410)
	h.name = "repeated token: garbage, then the valid one"
	addCase(h)

	// --- Admin pages as everyone who is not an admin.
	adminPaths := []string{
		"/admin/users", "/admin/users?kind=guest", "/admin/users?q=%25", "/admin/users?after=" + adminID,
		"/admin/users/" + customerID, "/admin/users/" + adminID, "/admin/users/nope", "/admin", "/admin/",
		"/ADMIN/users", "/Admin/Users/" + adminID, "/admin/users/", "/admin/users/" + customerID + "/",
		"/admin/users/%2e%2e", "/admin/./users", "/admin//users",
	}
	for _, path := range adminPaths {
		for _, act := range []*hostileActor{visitor, guest, expired, nobody, customer} {
			h := get("admin", act, path, 303)
			if act == customer {
				h.want = codes(403)
			}
			h.name = "GET " + path + " as " + act.name
			h.forbid = []string{"boss@example.com", "used@example.com"}
			addCase(h)
		}
	}

	// --- Other methods on every route.
	routes := []string{
		"/", "/products/stoneware-mug", "/cart", "/cart/items", "/cart/items/" + mug, "/cart/items/" + mug + "/delete",
		"/account", "/account/promote", "/account/password?token=" + pendingToken, "/login", "/logout",
		"/password/forgot", "/admin/users", "/admin/users/" + customerID, "/healthz", "/readyz", "/dev/mailbox",
		"/static/css/app.css",
	}
	for _, path := range routes {
		for _, m := range []struct {
			method string
			act    *hostileActor
			token  bool
			want   []int
		}{
			{http.MethodPut, guest, false, codes(403)},
			{http.MethodDelete, guest, true, codes(404, 405)},
			{http.MethodPatch, admin, true, codes(404, 405)},
			{http.MethodOptions, customer, false, codes(200, 204, 404, 405)},
			{http.MethodHead, visitor, false, nil},
			{"TRACE", customer, false, codes(403, 404, 405)},
		} {
			h := get("method", m.act, path)
			h.method, h.want = m.method, m.want
			h.name = fmt.Sprintf("%s %s as %s", m.method, path, m.act.name)
			if m.token {
				h.header = map[string]string{"X-CSRF-Token": m.act.token}
			}
			h.forbid = []string{m.act.cookies["sid"]} // TRACE must not echo the cookies
			if m.method == http.MethodHead {
				h.want = codes(200) // what GET answers a visitor, without the body
				switch {
				case strings.HasPrefix(path, "/admin/"):
					h.want = codes(303)
				case path == "/healthz" || path == "/readyz":
					h.want = codes(200, 404) // the health check answers GET only
				case slices.Contains([]string{"/cart/items", "/account/promote", "/logout", "/dev/mailbox"}, path) || strings.HasPrefix(path, "/cart/items/"):
					h.want = codes(404)
				}
			}
			if strings.HasPrefix(path, "/admin/") && h.want != nil {
				h.want = append(codes(303, 403), h.want...) // the guard answers first
			}
			addCase(h)
		}
	}
	for _, path := range []string{"/", "/cart", "/account", "/products/stoneware-mug", "/healthz", "/readyz", "/dev/mailbox", "/static/css/app.css", "/admin/users"} {
		h := post("method", admin, path, admin.form("product_id", mug, "quantity", "1"), 404, 405)
		h.name = "POST to GET-only " + path
		addCase(h)
	}
	h = post("method", guest, "/cart/items/"+mug, guest.form("quantity", "x"), 422)
	h.header = map[string]string{"X-HTTP-Method-Override": "DELETE"}
	h.name = "X-HTTP-Method-Override: DELETE is not honoured"
	addCase(h)

	// --- Path traversal under /static/.
	for _, path := range []string{
		"/static/../go.mod", "/static/%2e%2e/go.mod", "/static/%2e%2e%2fgo.mod", "/static/..%2fmigrations/00001_products.sql",
		"/static/%252e%252e/%252e%252e/go.mod", "/static/..%5c..%5cgo.mod", "/static/....//....//go.mod",
		"/static/css/../../go.mod", "/static/css/%2e%2e/%2e%2e/handlers/app.go", "/static//etc/passwd",
		"/static/%2fetc%2fpasswd", "/static/embed.go", "/static/css/app.css%00.go", "/static/..;/go.mod",
		"/static/.%2e/.%2e/go.mod", "/static/%c0%ae%c0%ae/go.mod", "/static/img/products/../../../go.mod",
		"/static/", "/static", "/static/css/", "/static/%00", "/static/css/app.css/", "/static/css/app.css/..%2f..%2f..%2fgo.mod",
	} {
		h := get("static", visitor, path)
		h.want = any4xx
		if path == "/static/css/app.css/" {
			h.want = codes(200, 404) // the stylesheet itself, at worst
		}
		if path == "/static/css/../../go.mod" || path == "/static/img/products/../../../go.mod" || path == "/static/../go.mod" {
			h.want = codes(404) // normalised to a path outside /static/
		}
		h.name = "GET " + path
		h.forbid = []string{"module shopfront", "CREATE TABLE", "root:x:0", "package static", "package handlers", "go:embed"}
		addCase(h)
	}
	for _, hdr := range []map[string]string{
		{"Range": "bytes=999999999-"}, {"Range": "bytes=0-0," + strings.Repeat("1-1,", 300) + "2-2"}, {"Range": "bytes=-0"},
		{"If-Modified-Since": "yesterday"}, {"If-None-Match": `"` + strings.Repeat("x", 2000) + `"`},
		{"Accept-Encoding": "gzip;q=x, br, deflate, zstd, " + strings.Repeat("x,", 500)},
	} {
		h := get("static", visitor, "/static/css/app.css?v=%3Cscript%3Ealert(1)%3C/script%3E")
		h.header = hdr
		h.name = fmt.Sprintf("GET /static/css/app.css with %v", slices.Collect(maps.Keys(hdr)))
		addCase(h)
	}

	// --- Open redirects through next.
	offSite := []string{
		"https://evil.example", "//evil.example", "/\\evil.example", "\\/evil.example", `\\evil.example`,
		"http:/evil.example", "https:evil.example", "/\t/evil.example", "/\r\n/evil.example", "///evil.example",
		" //evil.example", "//evil.example@shop.test", "%2F%2Fevil.example", "/\x00/evil.example",
		"HTTPS://EVIL.EXAMPLE", "//evil%2Eexample", "\t//evil.example",
	}
	scripts := []string{"javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "JaVaScRiPt:alert(1)", "vbscript:msgbox(1)"}
	for _, next := range slices.Concat(offSite, scripts) {
		forbid := []string{"evil.example", "EVIL.EXAMPLE", "evil%2Eexample"}
		if is(next, scripts) {
			forbid = []string{"alert(1)", "msgbox"}
		}
		h := get("next", visitor, "/login?next="+qe(next), 200)
		h.name, h.forbid = fmt.Sprintf("GET /login?next=%q", next), forbid
		addCase(h)
		h = post("next", visitor, "/login", visitor.form("email", "customer@example.com", "password", "wrong password", "next", next), 422)
		h.name, h.forbid = fmt.Sprintf("POST /login next=%q, wrong password", next), forbid
		addCase(h)
		h = get("next", guest, "/admin/users?next="+qe(next), 303)
		h.name = fmt.Sprintf("admin guard with next=%q", next)
		addCase(h)
	}
	for _, target := range []string{"//evil.example/admin/users", "/admin//evil.example", "/admin/..%2f%2fevil.example", "http://evil.example/admin/users", "/admin%2f%2fevil.example"} {
		h := get("next", visitor, target)
		h.name = "GET " + target
		addCase(h)
	}
	h = get("next", visitor, "/login?next="+qe("/%0d%0aX-Injected:%201"), 200)
	h.name = "encoded CRLF in next"
	addCase(h)
	h = get("next", visitor, "/admin/users%0d%0aX-Injected:%201")
	h.name = "encoded CRLF in an admin path (the guard's redirect)"
	addCase(h)

	// --- Wrong content types. The token goes in the header only where the
	// request would still be refused by its handler; else only in the body.
	type route struct {
		act        *hostileActor
		target     string
		fields     []string
		headerSafe bool
		want       []int // with the token in the header
	}
	postRoutes := []route{
		{visitor, "/cart/items", []string{"product_id", kettle, "quantity", "1"}, true, codes(422)},
		{guest, "/cart/items/" + mug, []string{"quantity", "5"}, true, codes(422)},
		{guest, "/cart/items/" + mug + "/delete", nil, false, nil},
		{guest, "/account/promote", []string{"email", "fresh@example.com"}, true, codes(422)},
		{visitor, "/account/password", []string{"token", pendingToken, "password", goodPassword, "password_confirm", goodPassword}, true, codes(410)},
		{visitor, "/login", []string{"email", "customer@example.com", "password", goodPassword}, true, codes(422)},
		{customer, "/logout", nil, false, nil},
		{visitor, "/password/forgot", []string{"email", "customer@example.com"}, true, codes(422)},
	}
	for _, r := range postRoutes {
		form := r.act.form(r.fields...)
		tokenIn := func(h *hostile) {
			if r.headerSafe {
				h.header = map[string]string{"X-CSRF-Token": r.act.token}
				h.want = r.want
			} else {
				h.want = codes(403)
			}
		}
		named := func(h hostile, what string) hostile {
			h.name = fmt.Sprintf("%s to %s as %s", what, r.target, r.act.name)
			return h
		}
		// JSON carrying every field: forms only are read.
		fields := map[string]string{}
		for k := range form {
			fields[k] = form.Get(k)
		}
		var js strings.Builder
		js.WriteString("{")
		for i, k := range slices.Sorted(maps.Keys(fields)) {
			if i > 0 {
				js.WriteString(",")
			}
			fmt.Fprintf(&js, "%q:%q", k, fields[k])
		}
		js.WriteString("}")
		h := named(hostile{cat: "content type", method: http.MethodPost, target: r.target, cookie: r.act.cookie(), body: js.String(), ctype: "application/json"}, "JSON")
		tokenIn(&h)
		addCase(h)
		// A form body declared as text/plain (what a cross-site <form
		// enctype=text/plain> sends), with no or the wrong content type, or
		// in UTF-16: the token in it is not read.
		for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded; charset=utf-16"} {
			body := form.Encode()
			if strings.Contains(ct, "utf-16") {
				var b bytes.Buffer
				for _, u := range utf16.Encode([]rune(body)) {
					binary.Write(&b, binary.LittleEndian, u)
				}
				body = b.String()
			}
			h := named(hostile{cat: "content type", method: http.MethodPost, target: r.target, cookie: r.act.cookie(), body: body, ctype: ct, want: codes(403)}, fmt.Sprintf("form as %q", ct))
			addCase(h)
		}
		// Multipart with junk for a body.
		h = named(hostile{cat: "content type", method: http.MethodPost, target: r.target, cookie: r.act.cookie(),
			body: "--XYZ\r\ngarbage\x00\xff\r\n--XY", ctype: "multipart/form-data; boundary=XYZ"}, "junk multipart")
		tokenIn(&h)
		h.want = append(codes(400, 403), h.want...)
		addCase(h)
		// Well-formed multipart with a forged token.
		var mp bytes.Buffer
		w := multipart.NewWriter(&mp)
		for k := range form {
			v := form.Get(k)
			if k == "_csrf" {
				v = stranger.token
			}
			w.WriteField(k, v)
		}
		w.Close()
		h = named(hostile{cat: "content type", method: http.MethodPost, target: r.target, cookie: r.act.cookie(),
			body: mp.String(), ctype: w.FormDataContentType(), want: codes(403)}, "multipart with a forged token")
		addCase(h)
	}

	// --- Repeated fields: the first one counts, everywhere.
	for _, r := range []struct {
		name   string
		act    *hostileActor
		target string
		body   string
		want   int
	}{
		{"quantity=100&quantity=1", visitor, "/cart/items", "product_id=" + kettle + "&quantity=100&quantity=1", 422},
		{"quantity=0&quantity=1", guest, "/cart/items", "product_id=" + kettle + "&quantity=0&quantity=1", 422},
		{"product_id=abc&product_id=<kettle>", visitor, "/cart/items", "product_id=abc&product_id=" + kettle, 422},
		{"quantity=abc&quantity=1 on a line", guest, "/cart/items/" + mug, "quantity=abc&quantity=1", 422},
		{"quantity=1&quantity=99 on a line not in the cart", guest, "/cart/items/" + kettle, "quantity=1&quantity=99", 404},
		{"quantity=100&quantity=3 on a line", guest, "/cart/items/" + mug, "quantity=100&quantity=3", 422},
		{"email=bad&email=good on promote", guest, "/account/promote", "email=bad&email=fresh%40example.com", 422},
		{"email=bad&email=good on forgot", visitor, "/password/forgot", "email=bad&email=customer%40example.com", 422},
		{"email=bad&email=good on login", visitor, "/login", "email=bad&email=customer%40example.com&password=" + qe(goodPassword), 422},
		{"password=wrong&password=good on login", visitor, "/login", "email=customer%40example.com&password=wrong&password=" + qe(goodPassword), 422},
		{"password_confirm=other&password_confirm=same", pending, "/account/password", "token=" + pendingToken + "&password=" + qe(goodPassword) + "&password_confirm=x&password_confirm=" + qe(goodPassword), 422},
	} {
		h := hostile{cat: "repeated", name: r.name, method: http.MethodPost, target: r.target, cookie: r.act.cookie(),
			body: "_csrf=" + r.act.token + "&" + r.body, ctype: "application/x-www-form-urlencoded", want: codes(r.want)}
		addCase(h)
	}
	h = post("repeated", guest, "/cart/items/"+mug+"/delete", nil, 403)
	h.body, h.name = "_csrf=forged&_csrf="+guest.token, "_csrf=forged&_csrf=<valid>"
	addCase(h)
	h = post("repeated", guest, "/cart/items/"+mug+"/delete", nil, 403)
	h.body, h.name = "_csrf="+guest.token, "csrf cookie repeated: another visitor's first"
	h.cookie = "csrf=" + stranger.cookies["csrf"] + "; " + guest.cookie()
	addCase(h)
	for target, want := range map[string]int{
		"/?page=-1&page=1":                      400,
		"/?q=a&q=<script>alert(1)</script>":     200,
		"/admin/users?kind=admin&kind=guest":    400,
		"/admin/users?after=x&after=" + adminID: 400,
	} {
		h := get("repeated", admin, strings.ReplaceAll(target, "<script>alert(1)</script>", qe("<script>alert(1)</script>")), want)
		h.name = target
		addCase(h)
	}
	h = get("repeated", guest, "/cart", 200)
	h.cookie, h.name = "sid=garbage; "+guest.cookie(), "sid repeated: garbage first"
	addCase(h)

	// --- Oversize bodies, headers, cookies and URLs, sent over a real
	// connection: app.Test reports these as errors instead of answers.
	bigValue := strings.Repeat("a", 70*1024)
	for _, r := range postRoutes {
		f := r.act.form(r.fields...)
		f.Set("filler", bigValue)
		h := hostile{cat: "oversize", name: "70 KiB form to " + r.target + " as " + r.act.name, method: http.MethodPost, target: r.target,
			cookie: r.act.cookie(), body: f.Encode(), ctype: "application/x-www-form-urlencoded", wire: true, want: codes(413)}
		h.header = map[string]string{"X-CSRF-Token": r.act.token}
		addCase(h)
	}
	var bigMP bytes.Buffer
	w := multipart.NewWriter(&bigMP)
	w.WriteField("_csrf", visitor.token)
	w.WriteField("email", "customer@example.com")
	w.WriteField("password", bigValue)
	w.Close()
	addCase(hostile{cat: "oversize", name: "70 KiB multipart to /login", method: http.MethodPost, target: "/login", cookie: visitor.cookie(),
		body: bigMP.String(), ctype: w.FormDataContentType(), wire: true, want: codes(413)})
	addCase(hostile{cat: "oversize", name: "70 KiB chunked form to /cart/items", method: http.MethodPost, target: "/cart/items", cookie: visitor.cookie(),
		body: visitor.form("product_id", kettle, "quantity", "1", "filler", bigValue).Encode(), ctype: "application/x-www-form-urlencoded",
		chunked: true, wire: true, want: codes(413)})
	for _, target := range []string{"/", "/cart", "/account/password?token=" + pendingToken, "/admin/users", "/healthz", "/static/css/app.css"} {
		h := get("oversize", admin, target, 431)
		h.wire, h.name = true, "20 KiB header on "+target
		h.header = map[string]string{"X-Junk": strings.Repeat("j", 20*1024)}
		addCase(h)
	}
	for _, target := range []string{"/", "/cart"} {
		h := get("oversize", guest, target, 431)
		h.wire, h.name = true, "20 KiB cookie on "+target
		h.cookie = guest.cookie("junk", strings.Repeat("c", 20*1024))
		addCase(h)
	}
	h = post("oversize", customer, "/logout", customer.form(), 431)
	h.wire, h.name = true, "20 KiB cookie on POST /logout"
	h.cookie = customer.cookie("junk", strings.Repeat("c", 20*1024))
	addCase(h)
	h = get("oversize", visitor, "/", 431)
	h.wire, h.name = true, "400 headers"
	h.header = map[string]string{}
	for i := range 400 {
		h.header[fmt.Sprintf("X-Junk-%d", i)] = strings.Repeat("h", 40)
	}
	addCase(h)
	for _, target := range []string{
		"/?q=" + strings.Repeat("q", 20*1024), "/products/" + strings.Repeat("p", 20*1024),
		"/static/" + strings.Repeat("s", 20*1024), "/login?next=/" + strings.Repeat("n", 20*1024),
	} {
		h := get("oversize", visitor, target, 414, 431)
		h.wire, h.name = true, "20 KiB URL "+target[:12]+"…"
		addCase(h)
	}
	// Large but within the limits: the handlers refuse them.
	for _, r := range []struct {
		name string
		h    hostile
	}{
		{"60 KiB email on forgot", post("oversize", visitor, "/password/forgot", visitor.form("email", strings.Repeat("e", 60*1024)+"@example.com"), 422)},
		{"10 KiB password on login", post("oversize", visitor, "/login", visitor.form("email", "customer@example.com", "password", strings.Repeat("p", 10*1024)), 422)},
		{"10 KiB password with a valid link", post("oversize", pending, "/account/password", pending.form("token", pendingToken, "password", strings.Repeat("p", 10*1024), "password_confirm", strings.Repeat("p", 10*1024)), 422)},
		{"10 KiB token", get("oversize", visitor, "/account/password?token="+strings.Repeat("t", 10*1024), 410)},
		{"10 KiB search", get("oversize", visitor, "/?q="+strings.Repeat("q", 10*1024), 400)},
		{"10 KiB admin search", get("oversize", admin, "/admin/users?q="+strings.Repeat("q", 10*1024), 400)},
		{"10 KiB next", get("oversize", visitor, "/login?next=/"+strings.Repeat("n", 10*1024), 200)},
		{"10 KiB quantity", post("oversize", guest, "/cart/items/"+mug, guest.form("quantity", strings.Repeat("9", 10*1024)), 422)},
		{"60 KiB form with a forged token", post("oversize", guest, "/cart/items/"+mug+"/delete", url.Values{"_csrf": {"x"}, "filler": {strings.Repeat("f", 60*1024)}}, 403)},
	} {
		r.h.name = r.name
		addCase(r.h)
	}

	// --- Everything else: the dev mailbox (not mounted), health checks,
	// unknown paths, the Host header, htmx requests, mail header injection.
	for _, act := range []*hostileActor{visitor, admin} {
		for _, path := range []string{"/dev/mailbox", "/dev/mailbox/1", "/dev/mailbox/../../go.mod", "/dev/mailbox/%2e%2e/%2e%2e/go.mod"} {
			h := get("misc", act, path, 404)
			h.name = "GET " + path + " as " + act.name
			addCase(h)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/healthz?x=%3Cscript%3Ealert(1)%3C/script%3E", "/readyz?x=%00%ff"} {
		for _, act := range []*hostileActor{nobody, expired} {
			h := get("misc", act, path, 200)
			h.name = "GET " + path + " as " + act.name
			addCase(h)
		}
	}
	for _, path := range []string{
		"/.env", "/.git/config", "/wp-login.php", "/%00", "/%ff%fe", "/products/", "/products/Stoneware-Mug",
		"/products/stoneware-mug/extra", "/products/a%2Fb", "/products/stoneware-mug%00", "/cart/items/1/delete/more",
		"/account/password/x", "/index.php?x=%3Cscript%3Ealert(1)%3C/script%3E", "/%3Cscript%3Ealert(1)%3C/script%3E",
		"/products/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/cart/items",
	} {
		h := get("misc", guest, path, 404)
		h.name = "GET " + path
		addCase(h)
	}
	h = get("misc", visitor, "/account/password?token="+pendingToken, 200)
	h.host, h.name, h.forbid = "evil.example", "Host: evil.example on a link page", []string{"evil.example"}
	addCase(h)
	h = get("misc", visitor, "/login", 200)
	h.header, h.name, h.forbid = map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "javascript"}, "X-Forwarded-Host", []string{"evil.example"}
	addCase(h)
	h = get("misc", visitor, "/", 200)
	h.header, h.name = map[string]string{"Accept": "application/json"}, "Accept: application/json"
	addCase(h)
	for target, want := range map[string]int{"/?page=10000": 200, "/?page=10001": 400, "/?page=99999999999999999999": 400, "/?page=0": 400, "/?page=1.5": 400, "/?q=" + strings.Repeat("%C3%A9", 101): 400} {
		h := get("misc", visitor, target, want)
		h.name = "GET " + target
		addCase(h)
	}
	// Accounts without a cart, or with nothing to save, or already signed in.
	for _, r := range []struct {
		name string
		h    hostile
	}{
		{"admin without a cart sets a line", post("misc", admin, "/cart/items/"+mug, admin.form("quantity", "5"), 404)},
		{"admin without a cart sends a bad quantity", post("misc", admin, "/cart/items/"+mug, admin.form("quantity", "abc"), 422)},
		{"admin without a cart views it", get("misc", admin, "/cart", 200)},
		{"customer sets a line that is the guest's", post("misc", customer, "/cart/items/"+mug, customer.form("quantity", "7"), 404)},
		{"guest sets a line that is the customer's", post("misc", guest, "/cart/items/"+kettle, guest.form("quantity", "7"), 404)},
		{"customer asks to save an account", post("misc", customer, "/account/promote", customer.form("email", "fresh@example.com"), 303)},
		{"admin asks to save an account", post("misc", admin, "/account/promote", admin.form("email", "fresh@example.com"), 303)},
		{"guest signs in with a wrong password", post("misc", guest, "/login", guest.form("email", "customer@example.com", "password", "wrong password"), 422)},
		{"customer signs in again with a wrong password", post("misc", customer, "/login", customer.form("email", "boss@example.com", "password", "wrong password"), 422)},
		{"customer asks for a reset with a bad address", post("misc", customer, "/password/forgot", customer.form("email", "customer@example"), 422)},
		{"pending guest opens a used link", get("misc", pending, "/account/password?token="+usedToken, 410)},
	} {
		r.h.name = r.name
		addCase(r.h)
	}
	for name, flash := range map[string]string{"bad escape": "%zz%", "301 characters": strings.Repeat("f", 301), "raw markup": "<script>alert(1)</script>"} {
		h := get("misc", guest, "/cart", 200)
		h.cookie, h.name = guest.cookie("flash", flash), "flash cookie: "+name
		addCase(h)
	}
	for _, email := range []string{"a@example.com\r\nBcc: x@evil.example", "a@example.com\nBcc:x@evil.example", "a@example.com%0d%0aBcc:x@evil.example", `"a@evil.example"@example.com`, "a@example.com, b@evil.example", "<a@example.com>"} {
		h := post("misc", guest, "/account/promote", guest.form("email", email), 422)
		h.name = fmt.Sprintf("mail header injection on promote: %q", email)
		addCase(h)
		h = post("misc", visitor, "/password/forgot", visitor.form("email", email), 422)
		h.name = fmt.Sprintf("mail header injection on forgot: %q", email)
		addCase(h)
	}
	h = post("misc", guest, "/cart/items/"+mug, guest.form("quantity", "lots"), 422)
	h.header, h.name = map[string]string{"HX-Request": "true"}, "htmx: bad quantity"
	addCase(h)
	h = post("misc", guest, "/cart/items", guest.form("product_id", "987654321", "quantity", "1"), 404)
	h.header, h.name = map[string]string{"HX-Request": "true"}, "htmx: unknown product"
	addCase(h)
	h = post("misc", guest, "/cart/items/"+mug+"/delete", url.Values{"_csrf": {"forged"}}, 403)
	h.header, h.name = map[string]string{"HX-Request": "true"}, "htmx: forged token"
	addCase(h)
	for _, id := range []string{"0", "-1", "9223372036854775807", "9223372036854775808", "1e3", "0x10", "+0", "٣"} {
		h := post("misc", guest, "/cart/items", guest.form("product_id", id, "quantity", "1"), 404, 422)
		h.name = fmt.Sprintf("product_id %q", id)
		addCase(h)
		h = post("misc", guest, "/cart/items/"+pe(id), guest.form("quantity", "1"), 404)
		h.name = fmt.Sprintf("line %q", id)
		addCase(h)
	}

	// --- Send them all.
	type tally struct{ tried, answered, closed, wired int }
	perCat := map[string]*tally{}
	statuses := map[int]int{}
	fivexx := 0
	for _, hc := range cases {
		tl := perCat[hc.cat]
		if tl == nil {
			tl = &tally{}
			perCat[hc.cat] = tl
		}
		tl.tried++
		var (
			resp *http.Response
			body string
			err  error
		)
		if !hc.wire {
			resp, err = app.Test(hostileRequest(hc), -1)
			if err == nil {
				b, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr != nil {
					t.Fatalf("[%s] %s: reading the answer: %v", hc.cat, hc.name, rerr)
				}
				body = string(b)
			} else {
				// app.Test gives an error, not the answer, when the server
				// refuses to parse a request: ask the real server.
				hc.wire = true
				tl.wired++
			}
		}
		if hc.wire {
			resp, body, err = hostileWire(ln.Addr().String(), hc)
			if err != nil {
				// The server may close the connection on oversize input before
				// its answer is read; that is a refusal too, never a 5xx.
				tl.closed++
				t.Logf("%s / %s: connection ended without an answer: %v", hc.cat, hc.name, err)
				continue
			}
		}
		tl.answered++
		statuses[resp.StatusCode]++
		where := fmt.Sprintf("[%s] %s (%s %.120s)", hc.cat, hc.name, hc.method, hc.target)
		if resp.StatusCode >= 500 {
			fivexx++
			t.Errorf("%s: %d; body:\n%.500s", where, resp.StatusCode, body)
			continue
		}
		if len(hc.want) > 0 && !slices.Contains(hc.want, resp.StatusCode) {
			t.Errorf("%s: status %d, want one of %v; body:\n%.300s", where, resp.StatusCode, hc.want, body)
		}
		for _, m := range slices.Concat(hostileMarkers, hc.forbid) {
			if m != "" && strings.Contains(body, m) {
				i := strings.Index(body, m)
				t.Errorf("%s: the answer contains %q: …%s…", where, m, body[max(0, i-80):min(len(body), i+len(m)+80)])
			}
		}
		for _, k := range []string{"Location", "HX-Redirect"} {
			if loc := resp.Header.Get(k); hostileOffSite(loc) {
				t.Errorf("%s: %s %q leaves the site", where, k, loc)
			}
		}
		if resp.Header.Get("X-Injected") != "" {
			t.Errorf("%s: a header was injected", where)
		}
		if resp.StatusCode == http.StatusNotFound && hc.method != http.MethodHead && !strings.HasPrefix(resp.Header.Get("Content-Type"), fiber.MIMETextHTML) {
			t.Errorf("%s: 404 is %q, not an HTML page", where, resp.Header.Get("Content-Type"))
		}
		if hc.method == http.MethodHead && body != "" {
			t.Errorf("%s: HEAD answered with a body", where)
		}
	}

	after, _ := hostileSnapshot(t, db)
	if gone, added := hostileDiff(before, after); len(gone)+len(added) > 0 {
		t.Errorf("refused requests changed rows:\nbefore only:\n  %s\nafter only:\n  %s",
			strings.Join(gone, "\n  "), strings.Join(added, "\n  "))
	}

	// The cast is intact: what the suite attacked was live all along.
	check := func(what string, r response, want int, text string) {
		t.Helper()
		if r.StatusCode != want || !strings.Contains(r.body, text) {
			t.Errorf("after the suite, %s: %d, want %d with %q", what, r.StatusCode, want, text)
		}
	}
	check("the pending link", newClient(t, app).get("/account/password?token="+pendingToken), 200, "pending@example.com")
	check("the reset link", newClient(t, app).get("/account/password?token="+resetToken), 200, "customer@example.com")
	check("the customer's session", customerC.get("/account"), 200, "customer@example.com")
	check("the guest's cart", guestC.get("/cart"), 200, "Stoneware Mug")

	// --- After the comparison: requests that are valid, so may change rows,
	// with hostile parts no refusal covers. A sign-in with a hostile next
	// must land on the site; hostile User-Agents are stored cleaned and shown
	// escaped on the admin pages; over a rate limit, a request is a 429 and
	// changes nothing, whatever address it claims.
	extra := map[string]int{}
	counted := func(section string, r response) response {
		t.Helper()
		extra[section]++
		statuses[r.StatusCode]++
		if r.StatusCode >= 500 {
			fivexx++
			t.Errorf("[%s] %s %s: %d; body:\n%.500s", section, r.Request.Method, r.Request.URL, r.StatusCode, r.body)
		}
		for _, m := range hostileMarkers {
			if strings.Contains(r.body, m) {
				t.Errorf("[%s] %s %s: the answer contains %q", section, r.Request.Method, r.Request.URL, m)
			}
		}
		return r
	}
	postWith := func(c *client, target string, form url.Values, header map[string]string) *http.Request {
		form.Set("_csrf", c.csrf())
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return req
	}
	localNext := []string{"/%2F%2Fevil.example", "/%5Cevil.example", "/.//evil.example", "/cart?next=//evil.example", "/%09/evil.example", "/cart#//evil.example"}
	for _, next := range slices.Concat(offSite, scripts, localNext) {
		c := newClient(t, app)
		r := counted("valid sign-in, hostile next", c.post("/login", url.Values{"email": {"customer@example.com"}, "password": {goodPassword}, "next": {next}}))
		loc := r.Header.Get("Location")
		if r.StatusCode != http.StatusSeeOther || hostileOffSite(loc) || (!is(next, localNext) && loc != "/") {
			t.Errorf("sign-in with next=%q: %d to %q, want 303 to a path on the site", next, r.StatusCode, loc)
		}
	}
	ua := "<script>alert(1)</script>\xff\x00<img src=x onerror=alert(1)>" + strings.Repeat("u", 2000)
	uaLogin := newClient(t, app)
	r := counted("stored User-Agent", uaLogin.do(postWith(uaLogin, "/login", url.Values{"email": {"customer@example.com"}, "password": {goodPassword}}, map[string]string{"User-Agent": ua})))
	wantStatus(t, r, http.StatusSeeOther)
	uaGuest := newClient(t, app)
	r = counted("stored User-Agent", uaGuest.do(postWith(uaGuest, "/cart/items", url.Values{"product_id": {mug}, "quantity": {"1"}}, map[string]string{"User-Agent": ua})))
	wantStatus(t, r, http.StatusSeeOther)
	for _, id := range []string{customerID, guestID(t, db, uaGuest)} {
		r := counted("stored User-Agent", adminC.get("/admin/users/"+id))
		if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("admin page of %s: %d, want 200 showing the User-Agent escaped", id, r.StatusCode)
		}
	}

	limited, ldb := newApp(t, func(c *handlers.Config) {
		c.Limits = handlers.Limits{
			GuestCreation: handlers.Limit{Max: 1, Window: time.Hour},
			Login:         handlers.Limit{Max: 2, Window: time.Minute},
			Emails:        handlers.Limit{Max: 1, Window: time.Hour},
		}
	})
	first := newClient(t, limited)
	wantStatus(t, add(first, productID(t, ldb, "stoneware-mug"), "1"), http.StatusSeeOther)
	wantStatus(t, first.post("/password/forgot", url.Values{"email": {"nobody@example.com"}}), http.StatusSeeOther)
	for range 2 {
		wantStatus(t, first.post("/login", url.Values{"email": {"nobody@example.com"}, "password": {"wrong password"}}), http.StatusUnprocessableEntity)
	}
	limitedBefore, _ := hostileSnapshot(t, ldb)
	spoof := []map[string]string{nil, {"X-Forwarded-For": "203.0.113.7"}, {"X-Real-IP": "203.0.113.8"}, {"Forwarded": "for=203.0.113.9"}}
	for _, hdr := range spoof {
		for _, c := range []*client{first, newClient(t, limited)} {
			for _, req := range []*http.Request{
				postWith(c, "/login", url.Values{"email": {"nobody@example.com"}, "password": {"wrong password"}}, hdr),
				postWith(c, "/password/forgot", url.Values{"email": {"other@example.com"}}, hdr),
				postWith(c, "/cart/items", url.Values{"product_id": {productID(t, ldb, "enamel-tea-kettle")}, "quantity": {"1"}}, hdr),
			} {
				if c == first && req.URL.Path == "/cart/items" {
					continue // an existing guest may still shop: not a refusal
				}
				r := counted("rate limited", c.do(req))
				if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Header.Get("Retry-After") == "0" {
					t.Errorf("%s %v over the limit: %d, Retry-After %q; want 429 with a wait", req.URL.Path, hdr, r.StatusCode, r.Header.Get("Retry-After"))
				}
			}
		}
	}
	limitedAfter, _ := hostileSnapshot(t, ldb)
	if gone, added := hostileDiff(limitedBefore, limitedAfter); len(gone)+len(added) > 0 {
		t.Errorf("rate-limited requests changed rows:\nbefore only:\n  %s\nafter only:\n  %s",
			strings.Join(gone, "\n  "), strings.Join(added, "\n  "))
	}

	total, answered, closed, wired := 0, 0, 0, 0
	var cats []string
	for _, name := range slices.Sorted(maps.Keys(perCat)) {
		tl := perCat[name]
		total, answered, closed, wired = total+tl.tried, answered+tl.answered, closed+tl.closed, wired+tl.wired
		cats = append(cats, fmt.Sprintf("%s %d", name, tl.tried))
	}
	var st []string
	for _, code := range slices.Sorted(maps.Keys(statuses)) {
		st = append(st, fmt.Sprintf("%d×%d", statuses[code], code))
	}
	t.Logf("tables compared: %s (rate_limits excluded; outbox by row count)", strings.Join(tables, ", "))
	t.Logf("by category: %s", strings.Join(cats, ", "))
	t.Logf("answers: %s; connections closed without an answer: %d; app.Test errors resent over a real connection: %d",
		strings.Join(st, " "), closed, wired)
	refused := total
	var more []string
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		total += extra[name]
		more = append(more, fmt.Sprintf("%s %d", name, extra[name]))
	}
	t.Logf("after the snapshot: %s", strings.Join(more, ", "))
	t.Logf("hostile requests tried: %d (%d refused ones against the snapshot, %d answered, %d cut off; %d more after it), 5xx: %d",
		total, refused, answered, closed, total-refused, fivexx)
	if refused < 200 {
		t.Errorf("only %d hostile requests", refused)
	}
}
