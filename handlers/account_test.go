package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"shopfront/handlers"
	"shopfront/mailer"
	"shopfront/mailer/mailtest"
	"shopfront/models"
	"shopfront/models/modeltest"
	"shopfront/static"
)

// mailingApp is the app with a real outbox worker sending to an SMTP sink.
type mailingApp struct {
	app  *fiber.App
	db   *gorm.DB
	sink *mailtest.Server
}

func newMailingApp(t *testing.T, configure ...func(*handlers.Config)) mailingApp {
	t.Helper()
	sink := mailtest.NewServer(t)
	db := modeltest.NewDB(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sender, err := mailer.New(mailer.Config{URL: sink.URL(), From: "Shopfront <no-reply@shop.test>"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	worker := mailer.NewWorker(models.NewOutbox(db), sender, log)
	worker.PollInterval = 50 * time.Millisecond

	cfg := testConfig()
	for _, f := range configure {
		f(&cfg)
	}
	deps := handlers.Deps{DB: db, SQL: sqlDB, Config: cfg, Static: static.FS, Log: log, OnMail: worker.Kick}
	app, err := handlers.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	resetJob, err := handlers.NewResetJob(deps)
	if err != nil {
		t.Fatal(err)
	}
	worker.Jobs = append(worker.Jobs, resetJob)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { worker.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return mailingApp{app: app, db: db, sink: sink}
}

var linkPattern = regexp.MustCompile(`http://shop\.test/account/password\?token=[A-Za-z0-9_-]+`)

// linkIn returns the set-password link of a received mail, as a path.
func linkIn(t *testing.T, m mailtest.Message) string {
	t.Helper()
	link := linkPattern.FindString(m.Text)
	if link == "" || !strings.Contains(m.HTML, link) {
		t.Fatalf("no set-password link in text and HTML of %q:\n%s", m.Subject, m.Text)
	}
	return strings.TrimPrefix(link, "http://shop.test")
}

func tokenOf(path string) string {
	u, _ := url.Parse(path)
	return u.Query().Get("token")
}

// guestWithCart is a client that became a guest by adding a product.
func guestWithCart(t *testing.T, a mailingApp, slug string, qty string) *client {
	t.Helper()
	c := newClient(t, a.app)
	wantStatus(t, add(c, productID(t, a.db, slug), qty), http.StatusSeeOther)
	return c
}

func guestID(t *testing.T, db *gorm.DB, c *client) string {
	t.Helper()
	var id string
	db.Raw("SELECT user_id::text FROM sessions WHERE token_hash = ?", mustHash(t, c.cookies["sid"])).Scan(&id)
	if id == "" {
		t.Fatal("client has no session")
	}
	return id
}

const goodPassword = "correct horse battery staple"

// saveAccount runs the whole promote journey for c and returns its user id.
func saveAccount(t *testing.T, a mailingApp, c *client, email string) string {
	t.Helper()
	before := len(a.sink.Messages())
	wantStatus(t, c.post("/account/promote", url.Values{"email": {email}}), http.StatusSeeOther)
	msgs := a.sink.WaitFor(t, before+1, 10*time.Second)
	link := linkIn(t, msgs[before])
	page := c.get(link)
	wantStatus(t, page, http.StatusOK)
	r := c.post("/account/password", url.Values{"token": {tokenOf(link)}, "password": {goodPassword}, "password_confirm": {goodPassword}})
	wantStatus(t, r, http.StatusSeeOther)
	return guestID(t, a.db, c)
}

func TestPromoteUpgradesInPlace(t *testing.T) {
	a := newMailingApp(t)
	c := guestWithCart(t, a, "enamel-tea-kettle", "2")
	id := guestID(t, a.db, c)
	oldSID := c.cookies["sid"]

	r := c.post("/account/promote", url.Values{"email": {"Ada@Example.com"}})
	wantStatus(t, r, http.StatusSeeOther)
	var email *string
	a.db.Raw("SELECT email FROM users WHERE id = ?", id).Scan(&email)
	if email != nil {
		t.Fatal("asking to save wrote the email on the user")
	}
	msgs := a.sink.WaitFor(t, 1, 10*time.Second)
	if msgs[0].To[0] != "ada@example.com" || msgs[0].Subject != "Save your Shopfront cart" {
		t.Fatalf("mail to %v: %q", msgs[0].To, msgs[0].Subject)
	}
	link := linkIn(t, msgs[0])

	page := c.get(link)
	wantStatus(t, page, http.StatusOK)
	if cc := page.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("token page Cache-Control = %q", cc)
	}
	if !strings.Contains(page.body, `name="token"`) || !strings.Contains(page.body, "ada@example.com") {
		t.Fatal("set-password form lacks the token field or the address")
	}
	// Opening the link twice (a mail scanner, then the shopper) uses nothing.
	wantStatus(t, c.get(link), http.StatusOK)

	form := url.Values{"token": {tokenOf(link)}, "password": {goodPassword}, "password_confirm": {goodPassword}}
	r = c.post("/account/password", form)
	wantStatus(t, r, http.StatusSeeOther)
	if c.cookies["sid"] == oldSID || c.cookies["sid"] == "" {
		t.Fatal("the session cookie was not rotated")
	}
	var u struct {
		Kind     string
		Email    string
		Verified bool
		Hash     string
	}
	a.db.Raw(`SELECT kind, email, email_verified_at IS NOT NULL AS verified, password_hash AS hash FROM users WHERE id = ?`, id).Scan(&u)
	if u.Kind != "registered" || u.Email != "ada@example.com" || !u.Verified || !strings.HasPrefix(u.Hash, "$argon2id$") {
		t.Fatalf("user after upgrade: %+v", u)
	}
	if got := guestID(t, a.db, c); got != id {
		t.Fatalf("signed in as %s, want the same id %s", got, id)
	}
	cart := c.get("/cart")
	if !strings.Contains(cart.body, "Enamel Tea Kettle") || !strings.Contains(cart.body, `value="2"`) {
		t.Fatal("the cart did not survive the upgrade")
	}
	var old int
	a.db.Raw("SELECT count(*) FROM sessions WHERE token_hash = ?", mustHash(t, oldSID)).Scan(&old)
	if old != 0 {
		t.Fatal("the guest session was not revoked")
	}
	// The link is single use.
	r = c.post("/account/password", form)
	wantStatus(t, r, http.StatusGone)
	wantStatus(t, c.get(link), http.StatusGone)
	if acct := c.get("/account"); !strings.Contains(acct.body, "ada@example.com") || !strings.Contains(acct.body, `action="/logout"`) {
		t.Fatal("account page does not show the saved account")
	}
}

// TestPromoteTakenAddressLooksTheSame: a guest cannot learn that an address
// has an account; the owner is told instead.
func TestPromoteTakenAddressLooksTheSame(t *testing.T) {
	a := newMailingApp(t)
	owner := guestWithCart(t, a, "stoneware-mug", "1")
	saveAccount(t, a, owner, "owner@example.com")
	sent := len(a.sink.Messages())

	answer := func(email string) (response, string) {
		c := guestWithCart(t, a, "enamel-tea-kettle", "1")
		r := c.post("/account/promote", url.Values{"email": {email}})
		page := c.get("/account")
		flash := page.body[strings.Index(page.body, `<main`):]
		flash = strings.Replace(flash, email, "ADDRESS", -1)
		return r, flash
	}
	rTaken, pageTaken := answer("owner@example.com")
	rNew, pageNew := answer("fresh@example.com")
	if rTaken.StatusCode != rNew.StatusCode || rTaken.Header.Get("Location") != rNew.Header.Get("Location") || rTaken.body != rNew.body {
		t.Fatalf("answers differ: %d %q vs %d %q", rTaken.StatusCode, rTaken.body, rNew.StatusCode, rNew.body)
	}
	csrf := regexp.MustCompile(`value="[A-Za-z0-9_-]{43}"|&#34;[A-Za-z0-9_-]{43}&#34;`)
	if csrf.ReplaceAllString(pageTaken, "") != csrf.ReplaceAllString(pageNew, "") {
		t.Fatalf("pages after the request differ:\n%s\n---\n%s", pageTaken, pageNew)
	}

	msgs := a.sink.WaitFor(t, sent+2, 10*time.Second)[sent:]
	var toOwner, toFresh mailtest.Message
	for _, m := range msgs {
		switch m.To[0] {
		case "owner@example.com":
			toOwner = m
		case "fresh@example.com":
			toFresh = m
		}
	}
	if !strings.Contains(toOwner.Subject, "tried") || !strings.Contains(toOwner.Text, "http://shop.test/login") ||
		!strings.Contains(toOwner.Text, "http://shop.test/password/forgot") || linkPattern.MatchString(toOwner.Text) {
		t.Fatalf("owner's mail: %q\n%s", toOwner.Subject, toOwner.Text)
	}
	linkIn(t, toFresh)
	var accounts int
	a.db.Raw("SELECT count(*) FROM users WHERE kind = 'registered'").Scan(&accounts)
	if accounts != 1 {
		t.Fatalf("%d registered accounts, want 1", accounts)
	}
}

func TestPromoteBadInput(t *testing.T) {
	a := newMailingApp(t)
	c := guestWithCart(t, a, "stoneware-mug", "1")
	before := snapshot(t, a.db)
	for _, email := range []string{"", "not-an-email", "a@b", "Ada <ada@example.com>", "a@example.com\r\nBcc: x@evil.example",
		strings.Repeat("a", 250) + "@example.com", "<script>@example.com", "a@example.com\x00"} {
		r := c.post("/account/promote", url.Values{"email": {email}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if !strings.Contains(r.body, "Enter an email address") {
			t.Fatalf("%q: no message", email)
		}
	}
	if snapshot(t, a.db) != before {
		t.Fatal("bad promote requests changed rows")
	}
	var queued int
	a.db.Raw("SELECT count(*) FROM outbox").Scan(&queued)
	if queued != 0 {
		t.Fatal("bad promote requests queued mail")
	}
}

func TestSetPasswordBadInput(t *testing.T) {
	a := newMailingApp(t)
	c := guestWithCart(t, a, "stoneware-mug", "1")
	wantStatus(t, c.post("/account/promote", url.Values{"email": {"ada@example.com"}}), http.StatusSeeOther)
	link := linkIn(t, a.sink.WaitFor(t, 1, 10*time.Second)[0])
	token := tokenOf(link)
	before := snapshot(t, a.db)

	for name, form := range map[string]url.Values{
		"short":       {"token": {token}, "password": {"short"}, "password_confirm": {"short"}},
		"long":        {"token": {token}, "password": {strings.Repeat("p", 129)}, "password_confirm": {strings.Repeat("p", 129)}},
		"mismatch":    {"token": {token}, "password": {goodPassword}, "password_confirm": {goodPassword + "!"}},
		"invalid utf": {"token": {token}, "password": {"\xff\xfe" + goodPassword}, "password_confirm": {"\xff\xfe" + goodPassword}},
	} {
		r := c.post("/account/password", form)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if !strings.Contains(r.body, `class="form-error"`) {
			t.Errorf("%s: no message", name)
		}
	}
	for name, tok := range map[string]string{
		"unknown": strings.Repeat("A", 43), "garbage": "x'; DROP TABLE users; --", "empty": "", "truncated": token[:20],
	} {
		wantStatus(t, c.post("/account/password", url.Values{"token": {tok}, "password": {goodPassword}, "password_confirm": {goodPassword}}), http.StatusGone)
		wantStatus(t, c.get("/account/password?token="+url.QueryEscape(tok)), http.StatusGone)
		_ = name
	}
	if snapshot(t, a.db) != before {
		t.Fatal("refused password posts changed rows")
	}

	t.Run("expired link", func(t *testing.T) {
		a.db.Exec("UPDATE email_tokens SET expires_at = now() - interval '1 second'")
		wantStatus(t, c.get(link), http.StatusGone)
		wantStatus(t, c.post("/account/password", url.Values{"token": {token}, "password": {goodPassword}, "password_confirm": {goodPassword}}), http.StatusGone)
	})
}

// TestLinkUsedConcurrently: twenty posts of one link, one success.
func TestLinkUsedConcurrently(t *testing.T) {
	a := newMailingApp(t)
	c := guestWithCart(t, a, "stoneware-mug", "1")
	wantStatus(t, c.post("/account/promote", url.Values{"email": {"ada@example.com"}}), http.StatusSeeOther)
	token := tokenOf(linkIn(t, a.sink.WaitFor(t, 1, 10*time.Second)[0]))
	csrf := c.csrf()

	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			form := url.Values{"_csrf": {csrf}, "token": {token}, "password": {goodPassword}, "password_confirm": {goodPassword}}
			req, _ := http.NewRequest(http.MethodPost, "/account/password", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: "csrf", Value: c.cookies["csrf"]})
			resp, err := a.app.Test(req, -1)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	counts := map[int]int{}
	for code := range codes {
		counts[code]++
	}
	if counts[http.StatusSeeOther] != 1 || counts[http.StatusGone] != 19 {
		t.Fatalf("answers: %v, want one 303 and nineteen 410", counts)
	}
	var sessions int
	a.db.Raw("SELECT count(*) FROM sessions").Scan(&sessions)
	if sessions != 1 {
		t.Fatalf("%d sessions after the upgrade, want 1", sessions)
	}
}

// TestTwoGuestsOneAddress: both get a link; the first to use it owns the
// address, the second is told and stays a guest.
func TestTwoGuestsOneAddress(t *testing.T) {
	a := newMailingApp(t)
	first := guestWithCart(t, a, "stoneware-mug", "1")
	second := guestWithCart(t, a, "enamel-tea-kettle", "1")
	wantStatus(t, first.post("/account/promote", url.Values{"email": {"ada@example.com"}}), http.StatusSeeOther)
	wantStatus(t, second.post("/account/promote", url.Values{"email": {"ada@example.com"}}), http.StatusSeeOther)
	msgs := a.sink.WaitFor(t, 2, 10*time.Second)
	links := []string{linkIn(t, msgs[0]), linkIn(t, msgs[1])}

	form := func(link string) url.Values {
		return url.Values{"token": {tokenOf(link)}, "password": {goodPassword}, "password_confirm": {goodPassword}}
	}
	// Each guest uses the link it asked for; both race.
	linkOf := func(c *client) string {
		id := guestID(t, a.db, c)
		for _, l := range links {
			var owner string
			a.db.Raw("SELECT user_id::text FROM email_tokens WHERE token_hash = ?", mustHash(t, tokenOf(l))).Scan(&owner)
			if owner == id {
				return l
			}
		}
		t.Fatal("no link for a guest")
		return ""
	}
	var wg sync.WaitGroup
	results := make([]response, 2)
	for i, c := range []*client{first, second} {
		l := linkOf(c)
		wg.Go(func() { results[i] = c.post("/account/password", form(l)) })
	}
	wg.Wait()
	var registered, guests int
	a.db.Raw("SELECT count(*) FILTER (WHERE kind = 'registered'), count(*) FILTER (WHERE kind = 'guest') FROM users").Row().Scan(&registered, &guests)
	if registered != 1 || guests != 1 {
		t.Fatalf("%d registered, %d guests; want one of each", registered, guests)
	}
	codes := []int{results[0].StatusCode, results[1].StatusCode}
	if !(codes[0] == 303 && codes[1] == 409) && !(codes[0] == 409 && codes[1] == 303) {
		t.Fatalf("answers %v, want one 303 and one 409", codes)
	}
}

func TestLoginMergesGuestCart(t *testing.T) {
	a := newMailingApp(t)
	owner := guestWithCart(t, a, "stoneware-mug", "2")
	wantStatus(t, add(owner, productID(t, a.db, "hand-coffee-grinder"), "1"), http.StatusSeeOther)
	accountID := saveAccount(t, a, owner, "ada@example.com")

	a.db.Exec("UPDATE products SET stock = 500 WHERE slug = 'stoneware-mug'")
	shopper := guestWithCart(t, a, "stoneware-mug", "98")
	wantStatus(t, add(shopper, productID(t, a.db, "hand-coffee-grinder"), "2"), http.StatusSeeOther)
	wantStatus(t, add(shopper, productID(t, a.db, "linen-notebook-a5"), "3"), http.StatusSeeOther)
	guest := guestID(t, a.db, shopper)
	guestSID := shopper.cookies["sid"]

	r := shopper.post("/login", url.Values{"email": {"ADA@example.com"}, "password": {goodPassword}, "next": {"/cart"}})
	wantStatus(t, r, http.StatusSeeOther)
	if loc := r.Header.Get("Location"); loc != "/cart" {
		t.Fatalf("redirect to %q, want /cart", loc)
	}
	if shopper.cookies["sid"] == guestSID {
		t.Fatal("session not rotated on sign-in")
	}
	if got := guestID(t, a.db, shopper); got != accountID {
		t.Fatalf("signed in as %s, want %s", got, accountID)
	}
	lines := map[string]int{}
	var rows []struct {
		Slug     string
		Quantity int
	}
	a.db.Raw(`SELECT p.slug, ci.quantity FROM cart_items ci JOIN products p ON p.id = ci.product_id`).Scan(&rows)
	for _, row := range rows {
		lines[row.Slug] = row.Quantity
	}
	want := map[string]int{"stoneware-mug": 99, "hand-coffee-grinder": 2, "linen-notebook-a5": 3}
	if len(lines) != len(want) {
		t.Fatalf("lines = %v, want %v (and no orphans)", lines, want)
	}
	for slug, q := range want {
		if lines[slug] != q {
			t.Fatalf("lines = %v, want %v", lines, want)
		}
	}
	var guestRows, events int
	a.db.Raw("SELECT count(*) FROM users WHERE id = ?", guest).Scan(&guestRows)
	a.db.Raw(`SELECT count(*) FROM events WHERE type = 'session.signed_in' AND user_id = ? AND data->>'prev_guest_id' = ?`, accountID, guest).Scan(&events)
	if guestRows != 0 || events != 1 {
		t.Fatalf("guest rows %d (want 0), sign-in events with prev_guest_id %d (want 1)", guestRows, events)
	}
	page := shopper.get("/cart")
	if !strings.Contains(page.body, "items from your guest cart were added") {
		t.Fatal("no merge message after sign-in")
	}
}

func TestLoginFailures(t *testing.T) {
	a := newMailingApp(t)
	owner := guestWithCart(t, a, "stoneware-mug", "1")
	saveAccount(t, a, owner, "ada@example.com")
	c := newClient(t, a.app)
	before := snapshot(t, a.db)

	wrong := c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"not the password"}})
	unknown := c.post("/login", url.Values{"email": {"nobody@example.com"}, "password": {"not the password"}})
	wantStatus(t, wrong, http.StatusUnprocessableEntity)
	wantStatus(t, unknown, http.StatusUnprocessableEntity)
	strip := func(s string) string {
		return regexp.MustCompile(`[A-Za-z0-9_-]{43}|value="[^"]*@example.com"|nonce="[^"]*"`).ReplaceAllString(s, "")
	}
	if strip(wrong.body) != strip(unknown.body) {
		t.Fatalf("unknown email and wrong password answer differently:\n%s\n%s", strip(wrong.body), strip(unknown.body))
	}
	if snapshot(t, a.db) != before {
		t.Fatal("failed sign-ins changed rows")
	}
	for _, next := range []string{"https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "http:/evil"} {
		r := c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}, "next": {next}})
		wantStatus(t, r, http.StatusSeeOther)
		if loc := r.Header.Get("Location"); loc != "/" {
			t.Fatalf("next=%q redirected to %q, want /", next, loc)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	a := newMailingApp(t, func(c *handlers.Config) { c.Limits.Login = handlers.Limit{Max: 3, Window: time.Minute} })
	c := newClient(t, a.app)
	for range 3 {
		wantStatus(t, c.post("/login", url.Values{"email": {"a@example.com"}, "password": {"x"}}), http.StatusUnprocessableEntity)
	}
	r := c.post("/login", url.Values{"email": {"a@example.com"}, "password": {"x"}})
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestPromoteRateLimitPerRecipient(t *testing.T) {
	a := newMailingApp(t, func(c *handlers.Config) { c.Limits.Emails = handlers.Limit{Max: 2, Window: time.Hour} })
	for range 2 {
		c := guestWithCart(t, a, "stoneware-mug", "1")
		wantStatus(t, c.post("/account/promote", url.Values{"email": {"ada@example.com"}}), http.StatusSeeOther)
	}
	// The per-address limit also holds: the third request comes from the
	// same client address as the others; either way it is refused.
	c := guestWithCart(t, a, "stoneware-mug", "1")
	wantStatus(t, c.post("/account/promote", url.Values{"email": {"ada@example.com"}}), http.StatusTooManyRequests)
}

func TestLogoutAndForgot(t *testing.T) {
	a := newMailingApp(t)
	c := guestWithCart(t, a, "stoneware-mug", "1")
	id := saveAccount(t, a, c, "ada@example.com")
	sent := len(a.sink.Messages())

	r := c.post("/logout", nil)
	wantStatus(t, r, http.StatusSeeOther)
	if _, ok := c.cookies["sid"]; ok {
		t.Fatal("sid cookie not cleared on sign-out")
	}
	var sessions int
	a.db.Raw("SELECT count(*) FROM sessions WHERE user_id = ?", id).Scan(&sessions)
	if sessions != 0 {
		t.Fatal("session not deleted on sign-out")
	}

	known := c.post("/password/forgot", url.Values{"email": {"ada@example.com"}})
	unknown := c.post("/password/forgot", url.Values{"email": {"nobody@example.com"}})
	wantStatus(t, known, http.StatusSeeOther)
	wantStatus(t, unknown, http.StatusSeeOther)
	if known.body != unknown.body || known.Header.Get("Location") != unknown.Header.Get("Location") {
		t.Fatal("forgot-password answers differ for known and unknown addresses")
	}
	msgs := a.sink.WaitFor(t, sent+1, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // a mail to the unknown address would have arrived too
	if n := len(a.sink.Messages()); n != sent+1 {
		t.Fatalf("%d mails after forgot for one known address, want %d", n, sent+1)
	}
	link := linkIn(t, msgs[sent])

	// Sign in on another client; the reset revokes that session too.
	other := newClient(t, a.app)
	wantStatus(t, other.post("/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}}), http.StatusSeeOther)
	newPassword := "another long passphrase"
	r = c.post("/account/password", url.Values{"token": {tokenOf(link)}, "password": {newPassword}, "password_confirm": {newPassword}})
	wantStatus(t, r, http.StatusSeeOther)
	if r.Header.Get("Location") != "/login" {
		t.Fatalf("reset redirects to %q, want /login", r.Header.Get("Location"))
	}
	a.db.Raw("SELECT count(*) FROM sessions WHERE user_id = ?", id).Scan(&sessions)
	if sessions != 0 {
		t.Fatal("reset left sessions alive")
	}
	wantStatus(t, c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}}), http.StatusUnprocessableEntity)
	wantStatus(t, c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {newPassword}}), http.StatusSeeOther)
}

// TestPromoteOldLinkIsNoOracle: asking to save under a taken address ends
// the guest's older link exactly as a new address does, so an old link
// cannot tell whether an address has an account.
func TestPromoteOldLinkIsNoOracle(t *testing.T) {
	a := newMailingApp(t)
	owner := guestWithCart(t, a, "stoneware-mug", "1")
	saveAccount(t, a, owner, "victim@example.com")

	for _, second := range []string{"victim@example.com", "nobody@example.com"} {
		c := guestWithCart(t, a, "enamel-tea-kettle", "1")
		sent := len(a.sink.Messages())
		wantStatus(t, c.post("/account/promote", url.Values{"email": {"attacker@example.com"}}), http.StatusSeeOther)
		link := linkIn(t, a.sink.WaitFor(t, sent+1, 10*time.Second)[sent])
		wantStatus(t, c.post("/account/promote", url.Values{"email": {second}}), http.StatusSeeOther)
		// Either address gets one mail; wait for it, so that the next
		// round's count of sent mail includes it.
		a.sink.WaitFor(t, sent+2, 10*time.Second)
		if r := c.get(link); r.StatusCode != http.StatusGone {
			t.Fatalf("after asking for %s, the older link answers %d, want 410", second, r.StatusCode)
		}
	}
}
