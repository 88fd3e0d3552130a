package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shopfront/mailer/mailtest"
)

// faultInvariants are the SQL invariants that must hold after any crash of
// the server: each query counts the rows that break one, and must say 0.
// They hold because every change the server makes is one transaction; a
// SIGKILL can only cut the connection, and PostgreSQL then rolls back.
//
// "No token used twice" reads, in this schema (which marks a link used or
// superseded alike with used_at): every registered account was upgraded by
// exactly one promote link (one account.upgraded event) whose address is its
// email; no upgrade event belongs to a user who is still a guest; no
// registered account keeps a live promote link that could be used again;
// and no user holds two live links of one purpose. TestFaultKill9 checks
// the other half over HTTP: no link is ever answered with success twice.
// (In this test every registered account is saved through a promote link.)
var faultInvariants = []struct{ name, query string }{
	{"every registered user has an email, a verified time and a password hash",
		`SELECT count(*) FROM users WHERE kind = 'registered' AND (email IS NULL OR email = ''
			OR email_verified_at IS NULL OR password_hash IS NULL OR password_hash = '')`},
	{"no guest has an email (nor a password or a verified time)",
		`SELECT count(*) FROM users WHERE kind = 'guest'
			AND (email IS NOT NULL OR password_hash IS NOT NULL OR email_verified_at IS NOT NULL)`},
	{"no two users share an email",
		`SELECT count(*) FROM (SELECT lower(email) FROM users WHERE email IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d`},
	{"no cart line without a cart",
		`SELECT count(*) FROM cart_items i WHERE NOT EXISTS (SELECT 1 FROM carts c WHERE c.id = i.cart_id)`},
	{"no cart without a user",
		`SELECT count(*) FROM carts c WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id)`},
	{"no guest without a cart (guest, session and cart are created together)",
		`SELECT count(*) FROM users u WHERE u.kind = 'guest' AND NOT EXISTS (SELECT 1 FROM carts c WHERE c.user_id = u.id)`},
	{"no session without a user",
		`SELECT count(*) FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)`},
	{"no link without a user",
		`SELECT count(*) FROM email_tokens t WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id)`},
	{"no token used twice: every registered user was upgraded exactly once",
		`SELECT count(*) FROM users u WHERE u.kind = 'registered'
			AND (SELECT count(*) FROM events e WHERE e.user_id = u.id AND e.type = 'account.upgraded') <> 1`},
	{"no token used twice: no upgrade event for a user who is still a guest",
		`SELECT count(*) FROM events e JOIN users u ON u.id = e.user_id
			WHERE e.type = 'account.upgraded' AND u.kind = 'guest'`},
	{"no token used twice: every registered email is that of a consumed promote link of the same user",
		`SELECT count(*) FROM users u WHERE u.kind = 'registered' AND NOT EXISTS (
			SELECT 1 FROM email_tokens t WHERE t.user_id = u.id AND t.purpose = 'promote'
				AND t.used_at IS NOT NULL AND lower(t.email) = lower(u.email))`},
	{"no token used twice: no live promote link of a registered user",
		`SELECT count(*) FROM email_tokens t JOIN users u ON u.id = t.user_id
			WHERE t.purpose = 'promote' AND t.used_at IS NULL AND u.kind = 'registered'`},
	{"no token used twice: at most one live link per user and purpose",
		`SELECT count(*) FROM (SELECT user_id, purpose FROM email_tokens WHERE used_at IS NULL
			GROUP BY user_id, purpose HAVING count(*) > 1) d`},
}

// faultKillRun is what the journeys of TestFaultKill9 saw.
type faultKillRun struct {
	t    *testing.T
	app  *faultApp
	sink *mailtest.Server

	killAt, readyAt atomic.Int64 // unix nanoseconds; 0 until then

	mu          sync.Mutex
	journeys    map[string]int // journey → completed
	interrupted map[string]int // journey → cut short by the kill
	problems    []string
	linkOK      map[string]int // token → success answers
	saved       []string       // addresses whose set-password answered success
	answers     int
}

// expected says whether a failed answer is the kill's doing: an answer
// that overlaps the time the server was down. A connection error is also
// forgiven for a second after the restart (a pooled connection to the dead
// process); a 5xx is not.
func (r *faultKillRun) expected(a faultAnswer) bool {
	kill, ready := r.killAt.Load(), r.readyAt.Load()
	if kill == 0 || a.End.UnixNano() < kill {
		return false
	}
	if ready == 0 {
		return true
	}
	end := ready
	if a.Err != nil {
		end += int64(time.Second)
	}
	return a.Start.UnixNano() < end
}

// step checks one answer of a journey; false ends the journey.
func (r *faultKillRun) step(journey, what string, a faultAnswer, want ...int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers++
	if a.Err == nil {
		for _, w := range want {
			if a.Status == w {
				return true
			}
		}
	}
	if r.expected(a) {
		r.interrupted[journey]++
		// A shopper whose page failed waits a moment before trying again.
		r.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		r.mu.Lock()
		return false
	}
	msg := fmt.Sprintf("%s: %s: %s, want %v", journey, what, a, want)
	if a.Err == nil {
		if a.Status >= 500 {
			if p := faultErrorPageProblem(a); p != "" {
				msg += "; " + p
			}
		}
		msg += ": " + faultSnippet(a.Body)
	}
	if len(r.problems) < 50 {
		r.problems = append(r.problems, msg)
	}
	return false
}

func (r *faultKillRun) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 50 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

func (r *faultKillRun) done(journey string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.journeys[journey]++
}

// usedLink records the answers to the uses of one link.
func (r *faultKillRun) usedLink(token, email string, answers ...faultAnswer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range answers {
		if a.OK() {
			r.linkOK[token]++
			if email != "" {
				r.saved = append(r.saved, email)
			}
		}
	}
}

// shopper is a new visitor with its CSRF token, or nil when the server
// did not answer (the kill).
func (r *faultKillRun) shopper(journey string) *faultShopper {
	s := newFaultShopper(r.t, r.app.URL)
	a := s.Get("/account")
	if !r.step(journey, "GET /account", a, http.StatusOK) {
		return nil
	}
	if err := s.KeepCSRF(a); err != nil {
		r.problem("%s: GET /account: %v", journey, err)
		return nil
	}
	return s
}

// TestFaultKill9 kills the server with SIGKILL in the middle of mixed
// journeys (carts, saving accounts with double-submitted links, sign-ins,
// password resets), starts it again on the same database, and checks the
// SQL invariants, that no link was used twice, that every saved account
// is saved, and that the restarted server serves.
func TestFaultKill9(t *testing.T) {
	pg := newPGCluster(t)
	sink := mailtest.NewServer(t)
	app := startFaultApp(t, pg.URL(), sink.URL())
	db := faultOpenSQL(t, pg.URL())
	products := faultProducts(t, db, 12, 30)
	r := &faultKillRun{t: t, app: app, sink: sink,
		journeys: map[string]int{}, interrupted: map[string]int{}, linkOK: map[string]int{}}

	// Accounts for the sign-in and reset journeys, saved the way guests save
	// theirs.
	owners := []string{"owner-0@fault.test", "owner-1@fault.test", "owner-2@fault.test"}
	for i, email := range owners {
		s := newFaultShopper(t, app.URL)
		if err := s.Begin(); err != nil {
			t.Fatal(err)
		}
		if a := s.Add(products[i].ID, 1); !a.OK() {
			t.Fatalf("owner %d: add: %s", i, a)
		}
		if a := s.Post("/account/promote", url.Values{"email": {email}}); !a.OK() {
			t.Fatalf("owner %d: promote: %s", i, a)
		}
		token, err := faultWaitLink(context.Background(), sink, email, 0, 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if a := s.SetPassword(token); !a.OK() {
			t.Fatalf("owner %d: set password: %s", i, a)
		}
		r.usedLink(token, email, faultAnswer{Status: http.StatusSeeOther})
	}
	var resets [3]atomic.Int32 // per owner: forgot-password is limited to 5 an hour per address
	var saves atomic.Int64
	pick := func() faultProduct { return products[rand.IntN(len(products))] }
	pid := func(p faultProduct) string { return strconv.FormatInt(p.ID, 10) }

	// The journeys. Each returns early, as a shopper would give up, when an
	// answer is not what it wants.
	guestCart := func(ctx context.Context) {
		const j = "guest cart"
		s := r.shopper(j)
		if s == nil {
			return
		}
		p1, p2 := pick(), pick()
		for p2.ID == p1.ID {
			p2 = pick()
		}
		if !r.step(j, "add", s.Add(p1.ID, 2), http.StatusSeeOther) ||
			!r.step(j, "add another", s.Add(p2.ID, 1), http.StatusSeeOther) ||
			!r.step(j, "set quantity", s.Post("/cart/items/"+pid(p1), url.Values{"quantity": {"5"}}), http.StatusSeeOther) ||
			!r.step(j, "remove", s.Post("/cart/items/"+pid(p2)+"/delete", nil), http.StatusSeeOther) ||
			!r.step(j, "GET /cart", s.Get("/cart"), http.StatusOK) {
			return
		}
		r.done(j)
	}
	saveAccount := func(ctx context.Context) {
		const j = "save account"
		s := r.shopper(j)
		if s == nil {
			return
		}
		email := fmt.Sprintf("kill9-%03d@fault.test", saves.Add(1))
		if !r.step(j, "add", s.Add(pick().ID, 1), http.StatusSeeOther) ||
			!r.step(j, "promote", s.Post("/account/promote", url.Values{"email": {email}}), http.StatusSeeOther) {
			return
		}
		token, err := faultWaitLink(ctx, sink, email, 0, 15*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				r.problem("%s: %v", j, err)
			}
			return
		}
		if !r.step(j, "GET the link", s.Get("/account/password?token="+url.QueryEscape(token)), http.StatusOK) {
			return
		}
		// The form submitted twice at once, from two tabs: one success.
		tab := s.Clone(t)
		var a1, a2 faultAnswer
		var both sync.WaitGroup
		both.Go(func() { a1 = s.SetPassword(token) })
		both.Go(func() { a2 = tab.SetPassword(token) })
		both.Wait()
		r.usedLink(token, email, a1, a2)
		ok1 := r.step(j, "set password", a1, http.StatusSeeOther, http.StatusGone)
		ok2 := r.step(j, "set password (second tab)", a2, http.StatusSeeOther, http.StatusGone)
		if !ok1 || !ok2 {
			// Cut by the kill: the link may or may not have been used. Once
			// the server is back, using it again must be refused if it was.
			for r.readyAt.Load() == 0 && ctx.Err() == nil {
				time.Sleep(50 * time.Millisecond)
			}
			again := s.SetPassword(token)
			r.usedLink(token, email, again)
			if !r.step(j, "set password after the restart", again, http.StatusSeeOther, http.StatusGone) {
				return
			}
		} else if !a1.OK() && !a2.OK() {
			r.problem("%s: neither use of a fresh link succeeded: %s, %s", j, a1, a2)
			return
		}
		r.done(j)
	}
	signIn := func(ctx context.Context) {
		const j = "sign in"
		s := r.shopper(j)
		if s == nil {
			return
		}
		email := owners[rand.IntN(len(owners))]
		if !r.step(j, "add as a guest", s.Add(pick().ID, 1), http.StatusSeeOther) ||
			!r.step(j, "sign in", s.Post("/login", url.Values{"email": {email}, "password": {faultPassword}}), http.StatusSeeOther) ||
			!r.step(j, "GET /cart", s.Get("/cart"), http.StatusOK) ||
			!r.step(j, "sign out", s.Post("/logout", nil), http.StatusSeeOther) {
			return
		}
		r.done(j)
	}
	reset := func(ctx context.Context) {
		const j = "password reset"
		i := rand.IntN(len(owners))
		if resets[i].Add(1) > 4 {
			guestCart(ctx)
			return
		}
		s := r.shopper(j)
		if s == nil {
			return
		}
		email := owners[i]
		seen := len(faultMails(sink, email))
		if !r.step(j, "forgot password", s.Post("/password/forgot", url.Values{"email": {email}}), http.StatusSeeOther) {
			return
		}
		token, err := faultWaitLink(ctx, sink, email, seen, 15*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				r.problem("%s: %v", j, err)
			}
			return
		}
		// 410 when a newer reset of the same account superseded the link.
		a := s.SetPassword(token)
		r.usedLink(token, "", a)
		if !r.step(j, "set password", a, http.StatusSeeOther, http.StatusGone) {
			return
		}
		r.done(j)
	}
	journeys := []func(context.Context){guestCart, guestCart, guestCart, saveAccount, saveAccount, signIn, signIn, reset}

	const (
		workers  = 6
		loadFor  = 10 * time.Second
		killFrom = 5 * time.Second
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var load sync.WaitGroup
	for range workers {
		load.Go(func() {
			for ctx.Err() == nil {
				journeys[rand.IntN(len(journeys))](ctx)
			}
		})
	}
	began := time.Now()
	time.Sleep(killFrom)
	r.killAt.Store(time.Now().UnixNano())
	app.Kill()
	killedAt := time.Now()
	app.Start() // same port, same database
	restarted := time.Since(killedAt)
	r.readyAt.Store(time.Now().UnixNano())
	time.Sleep(time.Until(began.Add(loadFor)))
	stop()
	load.Wait()
	loadTook := time.Since(began)

	for _, p := range r.problems {
		t.Error(p)
	}
	for token, n := range r.linkOK {
		if n > 1 {
			t.Errorf("the link %s…: %d success answers, want at most 1", token[:8], n)
		}
	}
	for _, email := range r.saved {
		if n := faultCount(t, db, `SELECT count(*) FROM users WHERE lower(email) = lower($1) AND kind = 'registered'`, email); n != 1 {
			t.Errorf("%s saved the account (303), but %d registered users have the address", email, n)
		}
	}

	// The invariants.
	var broken int
	for _, inv := range faultInvariants {
		if n := faultCount(t, db, inv.query); n != 0 {
			broken++
			t.Errorf("invariant %q: %d rows break it", inv.name, n)
		}
	}

	// The restarted server serves.
	after := newFaultShopper(t, app.URL)
	if err := after.Begin(); err != nil {
		t.Fatal(err)
	}
	if a := after.Get("/"); a.Status != http.StatusOK {
		t.Errorf("GET / after the restart: %s", a)
	}
	if a := after.Add(products[0].ID, 3); !a.OK() {
		t.Errorf("add after the restart: %s", a)
	} else if a := after.Get("/cart"); a.Status != http.StatusOK || !regexp.MustCompile(`name="quantity"\s+value="3"`).MatchString(a.Body) {
		t.Errorf("the cart after the restart: %s, want the line with quantity 3: %s", a, faultSnippet(a.Body))
	}

	var names []string
	total, cut := 0, 0
	for name := range r.journeys {
		names = append(names, name)
	}
	for name := range r.interrupted {
		if _, ok := r.journeys[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		total += r.journeys[name]
		cut += r.interrupted[name]
		parts = append(parts, fmt.Sprintf("%s %d (cut %d)", name, r.journeys[name], r.interrupted[name]))
	}
	users := faultCount(t, db, `SELECT count(*) FROM users`)
	registered := faultCount(t, db, `SELECT count(*) FROM users WHERE kind = 'registered'`)
	t.Logf("journeys over %v: %s; %d answers", loadTook.Round(time.Millisecond), strings.Join(parts, ", "), r.answers)
	t.Logf("FIGURE kill-9: %d journeys completed, %d cut by the kill; restart ready %s s after SIGKILL; invariants broken %d of %d; links used twice %d; users %d (registered %d)",
		total, cut, faultSeconds(restarted), broken, len(faultInvariants), faultCountTwice(r.linkOK), users, registered)
	if total == 0 {
		t.Error("no journey completed")
	}
	app.expectCleanLog()
}

// faultCountTwice counts the links with more than one success answer.
func faultCountTwice(ok map[string]int) int {
	n := 0
	for _, c := range ok {
		if c > 1 {
			n++
		}
	}
	return n
}
