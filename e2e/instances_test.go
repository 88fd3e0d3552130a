package e2e

// TestTwoInstances runs two `shopfront serve` processes on one database, as
// behind a load balancer, and checks what DESIGN.md's Scale section
// promises: a shopper whose requests alternate between them keeps one cart,
// one session and valid CSRF tokens; rate limits count across both; the
// outbox is drained by both without a mail sent twice; the cull job runs on
// one at a time; and migrations started by two processes at once apply once.
//
// It reuses the fault tests' harness (fault_app_test.go): the real binary,
// the faultApp process wrapper and the faultShopper HTTP client.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"shopfront/mailer/mailtest"
	"shopfront/migrations"
	"shopfront/models"
	"shopfront/models/modeltest"
)

const (
	// twinCullEvery is the CULL_EVERY of both instances: their cull jobs run
	// every 2 s instead of every hour.
	twinCullEvery = 2 * time.Second
	// twinMails is how many mails are put in the outbox for both to drain.
	twinMails = 200
	// twinStale and twinStale2 are the stale guests of the two cull rounds.
	twinStale  = 3000
	twinStale2 = 1000
)

func TestTwoInstances(t *testing.T) {
	started := time.Now()
	timings := map[string]time.Duration{}
	var timingOrder []string
	timed := func(name string, since time.Time) {
		timings[name] = time.Since(since)
		timingOrder = append(timingOrder, name)
	}
	defer func() {
		var b strings.Builder
		for _, name := range timingOrder {
			fmt.Fprintf(&b, "  %-40s %6.2f s\n", name, timings[name].Seconds())
		}
		fmt.Fprintf(&b, "  %-40s %6.2f s", "total", time.Since(started).Seconds())
		t.Logf("timings:\n%s", b.String())
	}()

	phase := time.Now()
	bin := faultBinary(t)
	timed("build the binary", phase)

	// Migrations started by two processes at once apply once: `shopfront
	// migrate` twice at the same time on an empty database.
	phase = time.Now()
	t.Run("concurrent migrate, empty database", func(t *testing.T) {
		dbURL := twinEmptyDatabase(t)
		dir := t.TempDir()
		env := twinEnv(dir, dbURL, "127.0.0.1:1", "")
		var wg sync.WaitGroup
		var runs [2]twinRun
		for i := range runs {
			wg.Go(func() { runs[i] = twinExec(bin, dir, env, "migrate") })
		}
		wg.Wait()
		var outs [2]string
		for i, r := range runs {
			outs[i] = string(r.out)
			t.Logf("migrate #%d: exit %v after %v", i+1, r.err, r.took.Round(time.Millisecond))
			if r.err != nil {
				t.Errorf("migrate #%d started beside another failed: %v\n%s", i+1, r.err, r.out)
			}
		}
		twinCheckMigrations(t, dbURL, "two concurrent `shopfront migrate` on an empty database", 0, outs[:])
	})
	timed("concurrent migrate, empty database", phase)

	// On an empty database goose's own retry of the version table's creation
	// keeps a late starter away (it retries after 1 s, when the other is
	// done): the race that matters is a release with pending migrations, on
	// a database that has the version table. Both processes are lined up
	// behind a lock the test holds on goose_db_version, and set off together.
	phase = time.Now()
	t.Run("concurrent migrate, pending migrations", func(t *testing.T) {
		dbURL := twinEmptyDatabase(t)
		db := faultOpenSQL(t, dbURL)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
		if err != nil {
			t.Fatal(err)
		}
		const applied = 2
		if _, err := p.UpTo(ctx, applied); err != nil {
			t.Fatalf("migrating to version %d: %v", applied, err)
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `LOCK TABLE goose_db_version IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		env := twinEnv(dir, dbURL+"&application_name=twin-migrate", "127.0.0.1:1", "")
		var wg sync.WaitGroup
		var runs [2]twinRun
		for i := range runs {
			wg.Go(func() { runs[i] = twinExec(bin, dir, env, "migrate") })
		}
		// Both connected, and one (or both, without a migration lock) waits
		// for the table.
		deadline := time.Now().Add(60 * time.Second)
		for {
			var backends, waiting int
			err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock')
				FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'twin-migrate'`).Scan(&backends, &waiting)
			if err != nil {
				t.Fatal(err)
			}
			if backends >= 2 && waiting >= 1 {
				break
			}
			if time.Now().After(deadline) {
				tx.Rollback()
				wg.Wait()
				t.Fatalf("after 60 s %d connections of the two migrate processes, %d waiting for goose_db_version\n%s\n%s",
					backends, waiting, runs[0].out, runs[1].out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		var outs [2]string
		for i, r := range runs {
			outs[i] = string(r.out)
			t.Logf("migrate #%d: exit %v after %v", i+1, r.err, r.took.Round(time.Millisecond))
			if r.err != nil {
				t.Errorf("migrate #%d started beside another failed: %v\n%s", i+1, r.err, r.out)
			}
		}
		twinCheckMigrations(t, dbURL, "two concurrent `shopfront migrate` with pending migrations", applied, outs[:])
	})
	timed("concurrent migrate, pending migrations", phase)

	// The two instances: started at the same moment on another empty
	// database, so that both migrate it at once (development migrates on
	// start), over one SMTP sink.
	phase = time.Now()
	dbURL := twinEmptyDatabase(t)
	sink := mailtest.NewServer(t)
	a := newTwinApp(t, "A", dbURL, sink.URL())
	b := newTwinApp(t, "B", dbURL, sink.URL())
	twinLaunch(a)
	twinLaunch(b)
	twinWaitReady(t, a, "A")
	twinWaitReady(t, b, "B")
	timed("start A and B on an empty database", phase)
	t.Logf("instance A at %s, B at %s, log dirs %s and %s", a.URL, b.URL, a.dir, b.dir)
	twinCheckMigrations(t, dbURL, "two `shopfront serve` started at once on an empty database", 0, []string{a.Log(), b.Log()})
	if t.Failed() {
		t.FailNow()
	}
	phase = time.Now()
	a.run("seed")
	timed("seed", phase)
	db := faultOpenSQL(t, dbURL)
	products := faultProducts(t, db, 2, 10)
	apps := []*faultApp{a, b}
	names := []string{"A", "B"}

	phase = time.Now()
	t.Run("shopper alternates", func(t *testing.T) {
		twinShopper(t, db, sink, a, b, products)
	})
	timed("shopper alternates A, B, A, B", phase)

	phase = time.Now()
	t.Run("login limit across both", func(t *testing.T) {
		twinLoginLimit(t, a, b)
	})
	timed("login limit across both", phase)

	phase = time.Now()
	t.Run("outbox drained by both", func(t *testing.T) {
		twinOutbox(t, db, sink, apps, names)
	})
	timed(fmt.Sprintf("outbox: %d mails drained", twinMails), phase)

	phase = time.Now()
	t.Run("cull one at a time", func(t *testing.T) {
		twinCull(t, db, apps, names, products[0].ID, timed)
	})
	timed("cull (both rounds)", phase)

	for _, app := range apps {
		app.expectCleanLog()
	}
}

// twinShopper: one browser (one cookie jar, one client address) whose
// requests alternate between the instances.
func twinShopper(t *testing.T, db *sql.DB, sink *mailtest.Server, a, b *faultApp, products []faultProduct) {
	p1, p2 := products[0], products[1]
	pid := func(p faultProduct) string { return strconv.FormatInt(p.ID, 10) }
	s := newFaultShopper(t, a.URL)
	on := func(app *faultApp) *faultShopper { return twinAt(t, s, app) }
	expect := func(what string, got faultAnswer, status int, location string) faultAnswer {
		t.Helper()
		if got.Err != nil || got.Status != status || (location != "" && got.Location != location) {
			want := strconv.Itoa(status)
			if location != "" {
				want += " to " + location
			}
			t.Fatalf("%s: %s, want %s: %s", what, got, want, faultSnippet(got.Body))
		}
		return got
	}

	// 1. A: the product page; its CSRF token is kept.
	page := expect("A: GET the product page", s.Get("/products/"+p1.Slug), http.StatusOK, "")
	if err := s.KeepCSRF(page); err != nil {
		t.Fatal(err)
	}
	// A wrong token is refused (so the successes below mean something).
	bad := *on(b)
	bad.csrf = "not-the-token"
	expect("B: add with a wrong CSRF token", bad.Add(p1.ID, 1), http.StatusForbidden, "")
	if n := faultCount(t, db, `SELECT count(*) FROM users`); n != 0 {
		t.Errorf("a refused add created %d users", n)
	}

	// 2. B: add to cart with A's token: the guest is created.
	expect("B: add to cart with A's CSRF token", on(b).Add(p1.ID, 2), http.StatusSeeOther, "/cart")
	userID := twinSessionUser(t, db, s)
	if userID == "" {
		t.Fatal("after the add on B the shopper's sid names no session")
	}
	twinExpectKind(t, db, userID, "guest", "")

	// 3. A: the cart shows the line B added.
	cart := expect("A: GET /cart", s.Get("/cart"), http.StatusOK, "")
	twinExpectCartPage(t, "A: /cart after the add on B", cart.Body, map[int64]int{p1.ID: 2})

	// 4. B: change the quantity.
	expect("B: set the quantity", on(b).Post("/cart/items/"+pid(p1), url.Values{"quantity": {"3"}}), http.StatusSeeOther, "")
	twinExpectDBCart(t, db, userID, "after the update on B", map[int64]int{p1.ID: 3})

	// 5. A: save the account.
	email := "shopper-" + strings.ToLower(rand.Text()[:8]) + "@shopper.test"
	expect("A: save the account", s.Post("/account/promote", url.Values{"email": {email}}), http.StatusSeeOther, "/account")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, err := faultWaitLink(ctx, sink, email, 0, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ms := faultMails(sink, email); len(ms) != 1 {
		t.Errorf("%d mails to %s, want 1", len(ms), email)
	} else if link := a.URL + "/account/password?token=" + token; !strings.Contains(ms[0].Text, link) {
		t.Errorf("the mail's link is not built from A's BASE_URL (%s): %q", a.URL, ms[0].Text)
	}
	twinExpectKind(t, db, userID, "guest", "") // nothing stored before the link is used

	// 6. B: open the link.
	form := expect("B: open the link", on(b).Get("/account/password?token="+url.QueryEscape(token)), http.StatusOK, "")
	if !strings.Contains(form.Body, `name="token"`) || !strings.Contains(form.Body, `name="password"`) {
		t.Errorf("B: the link's page has no set-password form: %s", faultSnippet(form.Body))
	}

	// 7. A: set the password: the same user is now registered, the session rotated.
	oldHash := s.SessionHash()
	expect("A: set the password", s.SetPassword(token), http.StatusSeeOther, "/cart")
	if newHash := s.SessionHash(); newHash == nil || string(newHash) == string(oldHash) {
		t.Errorf("the session was not rotated by the upgrade")
	}
	if got := twinSessionUser(t, db, s); got != userID {
		t.Errorf("after the upgrade the session names user %q, want the guest %s (upgrade in place)", got, userID)
	}
	twinExpectKind(t, db, userID, "registered", email)

	// B knows the rotated session.
	acct := expect("B: GET /account", on(b).Get("/account"), http.StatusOK, "")
	if !strings.Contains(acct.Body, email) {
		t.Errorf("B: the account page of the saved account does not show %s: %s", email, faultSnippet(acct.Body))
	}
	cart = expect("B: GET /cart", on(b).Get("/cart"), http.StatusOK, "")
	twinExpectCartPage(t, "B: /cart after the upgrade on A", cart.Body, map[int64]int{p1.ID: 3})

	// 8. B: sign out.
	hash := s.SessionHash()
	expect("B: sign out", on(b).Post("/logout", nil), http.StatusSeeOther, "/")
	if n := faultCount(t, db, `SELECT count(*) FROM sessions WHERE token_hash = $1`, hash); n != 0 {
		t.Errorf("the session signed out on B still exists")
	}
	cart = expect("A: GET /cart signed out", s.Get("/cart"), http.StatusOK, "")
	twinExpectCartPage(t, "A: /cart signed out", cart.Body, map[int64]int{})

	// 9. A: sign in; the cart is back, and grows on both.
	expect("A: sign in", s.Post("/login", url.Values{"email": {email}, "password": {faultPassword}}), http.StatusSeeOther, "/")
	if got := twinSessionUser(t, db, s); got != userID {
		t.Errorf("after sign-in the session names user %q, want %s", got, userID)
	}
	expect("B: add another product", on(b).Add(p2.ID, 1), http.StatusSeeOther, "/cart")
	cart = expect("A: GET /cart signed in", s.Get("/cart"), http.StatusOK, "")
	want := map[int64]int{p1.ID: 3, p2.ID: 1}
	twinExpectCartPage(t, "A: /cart after sign-in on A and add on B", cart.Body, want)
	twinExpectDBCart(t, db, userID, "at the end", want)
	if n := faultCount(t, db, `SELECT count(*) FROM users`); n != 1 {
		t.Errorf("%d users after one shopper's journey, want 1", n)
	}

	// The event log tells the whole story, whichever instance wrote it.
	rows, err := db.Query(`SELECT type FROM events WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
	}
	for _, want := range []string{models.EventGuestCreated, models.EventSaveRequested, models.EventUpgraded,
		models.EventSignedOut, models.EventSignedIn} {
		if !strings.Contains(" "+strings.Join(types, " ")+" ", " "+want+" ") {
			t.Errorf("the user's events %v lack %s", types, want)
		}
	}
}

// twinLoginLimit: 10 sign-in attempts a minute per client address
// (handlers.DefaultLimits), counted across both instances.
func twinLoginLimit(t *testing.T, a, b *faultApp) {
	s := newFaultShopper(t, a.URL) // a client address of its own
	if err := s.Begin(); err != nil {
		t.Fatal(err)
	}
	login := url.Values{"email": {"nobody-" + strings.ReplaceAll(s.ip, ".", "-") + "@limit.test"}, "password": {"not the password at all"}}
	attempt := func(n int, app *faultApp, name string, want int) {
		t.Helper()
		status, header, body, err := twinPost(twinAt(t, s, app), "/login", login)
		if err != nil {
			t.Fatalf("attempt %d on %s: %v", n, name, err)
		}
		if status != want {
			t.Errorf("failed sign-in %d (on %s): %d, want %d: %s", n, name, status, want, faultSnippet(body))
		}
		if want == http.StatusTooManyRequests {
			if secs, err := strconv.Atoi(header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
				t.Errorf("attempt %d on %s: Retry-After %q, want 1–60 seconds", n, name, header.Get("Retry-After"))
			}
		}
	}
	// 6 on A and 4 on B are the 10 allowed; the 11th and 12th are refused,
	// on either instance.
	n := 0
	for range 6 {
		n++
		attempt(n, a, "A", http.StatusUnprocessableEntity)
	}
	for range 4 {
		n++
		attempt(n, b, "B", http.StatusUnprocessableEntity)
	}
	attempt(n+1, b, "B", http.StatusTooManyRequests)
	attempt(n+2, a, "A", http.StatusTooManyRequests)
}

// twinOutbox puts mail in the outbox directly and lets both instances'
// workers drain it: each mail arrives once.
func twinOutbox(t *testing.T, db *sql.DB, sink *mailtest.Server, apps []*faultApp, names []string) {
	offsets := twinLogOffsets(apps)
	start := time.Now()
	_, err := db.Exec(`
		INSERT INTO outbox (recipient, subject, text_body, html_body)
		SELECT 'twin-' || lpad(n::text, 3, '0') || '@outbox.test', 'Twin mail ' || lpad(n::text, 3, '0'),
		       'Mail number ' || n, '<p>Mail number ' || n || '</p>'
		FROM generate_series(1, $1::int) AS n`, twinMails)
	if err != nil {
		t.Fatal(err)
	}
	// Requests that queue mail kick their instance's worker, as a busy shop's
	// would; without them the workers poll every second, one may drain all
	// 200 before the other wakes. A forgot-password request for an unknown
	// address sends nothing but kicks the worker: one to each, at once.
	kicker := newFaultShopper(t, apps[0].URL)
	if err := kicker.Begin(); err != nil {
		t.Fatal(err)
	}
	var kicks sync.WaitGroup
	kickAnswers := make([]faultAnswer, len(apps))
	for i, app := range apps {
		s := twinAt(t, kicker, app)
		kicks.Go(func() {
			kickAnswers[i] = s.Post("/password/forgot", url.Values{"email": {"nobody@kick.test"}})
		})
	}
	kicks.Wait()
	for i, a := range kickAnswers {
		if !a.OK() {
			t.Errorf("forgot-password on %s: %s, want 303", names[i], a)
		}
	}
	ours := func() []mailtest.Message {
		var out []mailtest.Message
		for _, m := range sink.Messages() {
			if len(m.To) == 1 && strings.HasSuffix(m.To[0], "@outbox.test") {
				out = append(out, m)
			}
		}
		return out
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		unsent := faultCount(t, db, `SELECT count(*) FROM outbox WHERE recipient LIKE '%@outbox.test' AND sent_at IS NULL`)
		if unsent == 0 && len(ours()) >= twinMails {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %d mails at the sink, %d rows unsent, want %d and 0", len(ours()), unsent, twinMails)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	// Long enough for a worker that sent a mail twice to have done it.
	time.Sleep(3 * time.Second)

	msgs := ours()
	byRecipient := map[string]int{}
	byMessageID := map[string]int{}
	for _, m := range msgs {
		byRecipient[m.To[0]]++
		byMessageID[m.Header.Get("Message-Id")]++
		n := strings.TrimSuffix(strings.TrimPrefix(m.To[0], "twin-"), "@outbox.test")
		if m.Subject != "Twin mail "+n {
			t.Errorf("the mail to %s has the subject %q, want %q", m.To[0], m.Subject, "Twin mail "+n)
		}
	}
	for i := 1; i <= twinMails; i++ {
		to := fmt.Sprintf("twin-%03d@outbox.test", i)
		if byRecipient[to] != 1 {
			t.Errorf("%s got %d mails, want exactly 1", to, byRecipient[to])
		}
	}
	if len(msgs) != twinMails || len(byRecipient) != twinMails || len(byMessageID) != twinMails {
		t.Errorf("the sink holds %d mails for %d recipients with %d Message-IDs, want %d of each",
			len(msgs), len(byRecipient), len(byMessageID), twinMails)
	}
	if n := faultCount(t, db, `SELECT count(*) FROM outbox
		WHERE recipient LIKE '%@outbox.test' AND sent_at IS NOT NULL AND failed_at IS NULL AND attempts = 1`); n != twinMails {
		t.Errorf("%d outbox rows sent once (sent_at set, attempts = 1), want %d", n, twinMails)
	}

	// Who sent what, from the workers' "mail sent" lines.
	sent := twinLogSums(apps, offsets, twinMailSentRE)
	t.Logf("%d mails drained in %v: %s sent %d, %s sent %d", twinMails, took.Round(time.Millisecond),
		names[0], sent[0], names[1], sent[1])
	if sent[0]+sent[1] != twinMails {
		t.Errorf("the instances' logs tell of %d + %d mails sent, want %d in all", sent[0], sent[1], twinMails)
	}
	for i, n := range sent {
		if n == 0 {
			t.Errorf("instance %s sent none of the %d mails: the outbox was not drained by both", names[i], twinMails)
		}
	}
}

// twinCull: with the cull jobs of both instances running every 2 s, stale
// guests go exactly once, by one instance at a time.
func twinCull(t *testing.T, db *sql.DB, apps []*faultApp, names []string, productID int64, timed func(string, time.Time)) {
	base := twinCounts(t, db)
	lastEvent := faultCount(t, db, `SELECT coalesce(max(id), 0)::int FROM events`)
	offsets := twinLogOffsets(apps)

	// Round 1. The test holds the cull's advisory lock while it inserts the
	// stale guests and for a few of the jobs' periods: a job that ignored
	// the lock would cull them meanwhile.
	phase := time.Now()
	release := twinHoldCullLock(t, db)
	twinInsertStale(t, db, twinStale, productID)
	hold := 5 * time.Second
	time.Sleep(hold)
	if n := twinStaleCount(t, db); n != twinStale {
		t.Errorf("while another holder had the cull lock for %v, %d of %d stale guests were culled: the jobs do not respect the lock",
			hold, twinStale-n, twinStale)
	}
	if n := faultCount(t, db, `SELECT count(*) FROM events WHERE type = $1 AND id > $2`, models.EventGuestCulled, lastEvent); n != 0 {
		t.Errorf("%d guest.culled events while the lock was held elsewhere", n)
	}
	released := time.Now()
	release()
	gone := twinWaitCulled(t, db, released, 20*time.Second)
	timed("cull round 1: gone after release", released)
	t.Logf("round 1: the %d stale guests were gone %v after the lock was released", twinStale, gone.Round(time.Millisecond))
	// Both jobs run again at least once more: the later runs find nothing.
	time.Sleep(2*twinCullEvery + time.Second)
	events, total := twinCulledEvents(t, db, lastEvent)
	t.Logf("round 1: %d guest.culled events, counts summing to %d", events, total)
	if total != twinStale {
		t.Errorf("guest.culled events count %d guests, want %d", total, twinStale)
	}
	if events != 1 {
		t.Errorf("%d guest.culled events, want 1: one run (holding the lock) deletes every stale guest, later runs find none", events)
	}
	twinExpectCounts(t, db, base, "after round 1")
	culled := twinLogSums(apps, offsets, twinCullDoneRE)
	t.Logf("round 1: %s culled %d, %s culled %d (from the logs)", names[0], culled[0], names[1], culled[1])
	if culled[0]+culled[1] != twinStale {
		t.Errorf("the logs tell of %d + %d guests culled, want %d", culled[0], culled[1], twinStale)
	}
	timed("cull round 1 (lock held 5 s)", phase)

	// Round 2. The instance that culled stops: the other's job must do it.
	phase = time.Now()
	winner := 0
	if culled[1] > culled[0] {
		winner = 1
	}
	other := 1 - winner
	apps[winner].Stop()
	t.Logf("round 2: %s stopped; %s alone must cull", names[winner], names[other])
	lastEvent = faultCount(t, db, `SELECT coalesce(max(id), 0)::int FROM events`)
	offsets = twinLogOffsets(apps)
	release = twinHoldCullLock(t, db)
	twinInsertStale(t, db, twinStale2, productID)
	released = time.Now()
	release()
	gone = twinWaitCulled(t, db, released, 20*time.Second)
	t.Logf("round 2: the %d stale guests were gone %v after the insert", twinStale2, gone.Round(time.Millisecond))
	time.Sleep(twinCullEvery + time.Second)
	events, total = twinCulledEvents(t, db, lastEvent)
	if total != twinStale2 || events != 1 {
		t.Errorf("round 2: %d guest.culled events counting %d guests, want 1 counting %d", events, total, twinStale2)
	}
	culled = twinLogSums(apps, offsets, twinCullDoneRE)
	if culled[other] != twinStale2 {
		t.Errorf("round 2: %s's log tells of %d guests culled, want %d", names[other], culled[other], twinStale2)
	}
	twinExpectCounts(t, db, base, "after round 2")
	timed("cull round 2 (one instance)", phase)
}

// --- processes ---

// twinEnv is the clean environment of an instance (see startFaultApp), with
// the cull job every twinCullEvery and guests stale after an hour.
func twinEnv(dir, databaseURL, addr, smtpURL string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"APP_ENV=development",
		"DATABASE_URL=" + databaseURL,
		"ADDR=" + addr,
		"BASE_URL=http://" + addr,
		"SECRET_KEY=" + faultSecretKey,
		"TRUSTED_PROXIES=127.0.0.1",
		"GUEST_CULL_AFTER=1h",
		"GUEST_TTL=30m", // the cull must outlast the cookie
		"CULL_EVERY=" + twinCullEvery.String(),
	}
	if smtpURL != "" {
		env = append(env, "SMTP_URL="+smtpURL)
	}
	return env
}

// newTwinApp is an instance, not started yet; it is stopped, and its log
// shown if the test failed, when the test ends.
func newTwinApp(t *testing.T, name, databaseURL, smtpURL string) *faultApp {
	t.Helper()
	port := pgClusterFreePort(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	a := &faultApp{
		t:       t,
		bin:     faultBinary(t),
		dir:     dir,
		URL:     "http://" + addr,
		logPath: filepath.Join(dir, "shopfront.log"),
		env:     twinEnv(dir, databaseURL, addr, smtpURL),
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("instance %s (%s) log (last 24 KiB):\n%s", name, a.URL, pgClusterTail(a.Log(), 24<<10))
		}
	})
	return a
}

// twinLaunch starts `shopfront serve` without waiting for it, so that two
// instances start at the same moment (faultApp.Start waits).
func twinLaunch(a *faultApp) {
	a.t.Helper()
	log, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(a.bin, "serve")
	cmd.Dir, cmd.Env = a.dir, a.env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("starting shopfront serve: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()
}

// twinWaitReady waits until a launched instance answers /readyz.
func twinWaitReady(t *testing.T, a *faultApp, name string) {
	t.Helper()
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("instance %s exited at start: %v\n%s", name, cmd.ProcessState, pgClusterTail(a.Log(), 8192))
		default:
		}
		resp, err := client.Get(a.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s not ready after 90 s (last: %v)\n%s", name, err, pgClusterTail(a.Log(), 8192))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// twinRun is the outcome of a subcommand.
type twinRun struct {
	out  []byte
	err  error
	took time.Duration
}

// twinExec runs a subcommand to its end; it may run on any goroutine.
func twinExec(bin, dir string, env []string, args ...string) twinRun {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	return twinRun{out: out, err: err, took: time.Since(start)}
}

// twinLogOffsets marks where the instances' logs end now.
func twinLogOffsets(apps []*faultApp) []int {
	out := make([]int, len(apps))
	for i, a := range apps {
		out[i] = len(a.Log())
	}
	return out
}

var (
	twinMailSentRE = regexp.MustCompile(`msg="mail sent" count=(\d+)`)
	twinCullDoneRE = regexp.MustCompile(`msg="cull done" guests=(\d+)`)
	twinAppliedRE  = regexp.MustCompile(`msg="migration applied" version=(\d+)`)
)

// twinLogSums adds up re's number in each instance's log after offsets.
func twinLogSums(apps []*faultApp, offsets []int, re *regexp.Regexp) []int {
	out := make([]int, len(apps))
	for i, a := range apps {
		log := a.Log()
		if offsets[i] <= len(log) {
			log = log[offsets[i]:]
		}
		for _, m := range re.FindAllStringSubmatch(log, -1) {
			n, _ := strconv.Atoi(m[1])
			out[i] += n
		}
	}
	return out
}

// --- databases ---

// twinServerURL is the PostgreSQL server modeltest uses.
func twinServerURL(t *testing.T, database string) string {
	t.Helper()
	raw := os.Getenv("DATABASE_URL")
	if raw == "" {
		raw = modeltest.DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	u.Path = "/" + database
	return u.String()
}

// twinEmptyDatabase creates an empty database on that server, dropped when
// the test ends (after the instances using it have stopped).
func twinEmptyDatabase(t *testing.T) string {
	t.Helper()
	admin := faultOpenSQL(t, twinServerURL(t, "postgres"))
	name := "shopfront_twins_" + strings.ToLower(rand.Text()[:16])
	if _, err := admin.Exec(`CREATE DATABASE "` + name + `"`); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return twinServerURL(t, name)
}

// twinCheckMigrations checks that every migration is recorded exactly once
// in goose_db_version, and that the processes' logs (outs) tell of each one
// after version from applied exactly once between them.
func twinCheckMigrations(t *testing.T, dbURL, what string, from int64, outs []string) {
	t.Helper()
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("listing the migrations: %v (%d)", err, len(names))
	}
	want := []int64{0} // goose's own first row
	for _, name := range names {
		v, err := strconv.ParseInt(strings.SplitN(name, "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", name, err)
		}
		want = append(want, v)
	}
	db := faultOpenSQL(t, dbURL)
	rows, err := db.Query(`SELECT version_id, count(*), bool_and(is_applied) FROM goose_db_version GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatalf("%s: goose_db_version: %v", what, err)
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		var v, n int64
		var applied bool
		if err := rows.Scan(&v, &n, &applied); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
		if n != 1 || !applied {
			t.Errorf("%s: goose_db_version holds version %d %d times (applied: %v), want once", what, v, n, applied)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: goose_db_version has the versions %v, want %v", what, got, want)
	}
	applied := map[string]int{}
	for _, out := range outs {
		for _, m := range twinAppliedRE.FindAllStringSubmatch(out, -1) {
			applied[m[1]]++
		}
	}
	for _, v := range want[1:] {
		n, wantN := applied[strconv.FormatInt(v, 10)], 0
		if v > from {
			wantN = 1
		}
		if n != wantN {
			t.Errorf("%s: the logs tell of migration %d applied %d times, want %d", what, v, n, wantN)
		}
	}
	if n := faultCount(t, db, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('products', 'users', 'outbox', 'events')`); n != 4 {
		t.Errorf("%s: %d of the 4 tables products, users, outbox, events exist", what, n)
	}
}

// twinHoldCullLock takes the cull jobs' advisory lock on a connection of its
// own and returns the function that releases it (also run at cleanup).
func twinHoldCullLock(t *testing.T, db *sql.DB) (release func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, models.CullLockKey); err != nil {
		conn.Close()
		t.Fatalf("taking the cull lock: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var ok bool
			if err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, models.CullLockKey).Scan(&ok); err != nil || !ok {
				t.Errorf("releasing the cull lock: %v (released: %v)", err, ok)
				conn.Raw(func(any) error { return io.EOF }) // keep it out of the pool
			}
			conn.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// twinInsertStale inserts n guests last seen two days ago (GUEST_CULL_AFTER
// is an hour); the first 100 of them get a cart line and a session.
func twinInsertStale(t *testing.T, db *sql.DB, n int, productID int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	stmts := []struct {
		query string
		args  []any
	}{
		{`INSERT INTO users (id, kind, created_at, updated_at, last_seen_at)
		  SELECT gen_random_uuid(), 'guest', now() - interval '3 days', now() - interval '3 days',
		         now() - interval '2 days' - n * interval '1 second'
		  FROM generate_series(1, $1::int) AS n`, []any{n}},
		{`INSERT INTO carts (id, user_id)
		  SELECT gen_random_uuid(), u.id FROM users u
		  WHERE u.kind = 'guest' AND u.last_seen_at < now() - interval '1 day'
		  ORDER BY u.last_seen_at DESC LIMIT 100`, nil},
		{`INSERT INTO cart_items (cart_id, product_id, quantity)
		  SELECT c.id, $1, 2 FROM carts c JOIN users u ON u.id = c.user_id
		  WHERE u.kind = 'guest' AND u.last_seen_at < now() - interval '1 day'`, []any{productID}},
		{`INSERT INTO sessions (id, user_id, token_hash, expires_at)
		  SELECT gen_random_uuid(), c.user_id, sha256(convert_to(c.id::text, 'UTF8')), now() + interval '1 day'
		  FROM carts c JOIN users u ON u.id = c.user_id
		  WHERE u.kind = 'guest' AND u.last_seen_at < now() - interval '1 day'`, nil},
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s.query, s.args...); err != nil {
			t.Fatalf("inserting stale guests: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := twinStaleCount(t, db); got != n {
		t.Fatalf("%d stale guests after inserting %d", got, n)
	}
}

func twinStaleCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	return faultCount(t, db, `SELECT count(*) FROM users WHERE kind = 'guest' AND last_seen_at < now() - interval '1 day'`)
}

// twinWaitCulled waits until no stale guest is left and says how long after
// since that was.
func twinWaitCulled(t *testing.T, db *sql.DB, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	for {
		n := twinStaleCount(t, db)
		if n == 0 {
			return time.Since(since)
		}
		if time.Since(since) > timeout {
			t.Fatalf("%d stale guests left %v after the lock was released, with CULL_EVERY=%v on both instances "+
				"(does serve read CULL_EVERY? cmd/shopfront/config.go)", n, timeout, twinCullEvery)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// twinCulledEvents counts the guest.culled events after id and the guests they count.
func twinCulledEvents(t *testing.T, db *sql.DB, after int) (events, guests int) {
	t.Helper()
	err := db.QueryRow(`SELECT count(*), coalesce(sum((data->>'count')::bigint), 0)
		FROM events WHERE type = $1 AND id > $2`, models.EventGuestCulled, after).Scan(&events, &guests)
	if err != nil {
		t.Fatal(err)
	}
	return events, guests
}

// twinCounts is the row counts of the tables a cull deletes from.
func twinCounts(t *testing.T, db *sql.DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"users", "sessions", "carts", "cart_items"} {
		out[table] = faultCount(t, db, `SELECT count(*) FROM `+table)
	}
	return out
}

// twinExpectCounts checks that the stale guests went whole: their sessions,
// carts and cart lines with them, and nothing else.
func twinExpectCounts(t *testing.T, db *sql.DB, want map[string]int, when string) {
	t.Helper()
	got := twinCounts(t, db)
	for table, n := range want {
		if got[table] != n {
			t.Errorf("%s: %d rows in %s, want %d as before the stale guests came", when, got[table], table, n)
		}
	}
}

// --- the shopper ---

// twinAt is the same browser (cookie jar, client address, CSRF token)
// sending its next request to another instance: both are on 127.0.0.1, and
// cookies do not depend on the port.
func twinAt(t *testing.T, s *faultShopper, app *faultApp) *faultShopper {
	t.Helper()
	u, err := url.Parse(app.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := *s
	c.base = u
	return &c
}

// twinPost posts a form with the shopper's token and returns the header too.
func twinPost(s *faultShopper, path string, form url.Values) (int, http.Header, string, error) {
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("_csrf", s.csrf)
	req, err := http.NewRequest(http.MethodPost, s.base.String()+path, strings.NewReader(f.Encode()))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", s.ip)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body), err
}

// twinSessionUser is the user of the shopper's session, or "".
func twinSessionUser(t *testing.T, db *sql.DB, s *faultShopper) string {
	t.Helper()
	hash := s.SessionHash()
	if hash == nil {
		return ""
	}
	var id string
	err := db.QueryRow(`SELECT user_id::text FROM sessions WHERE token_hash = $1`, hash).Scan(&id)
	if err == sql.ErrNoRows {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// twinExpectKind checks a user's kind and email ("" for none).
func twinExpectKind(t *testing.T, db *sql.DB, userID, kind, email string) {
	t.Helper()
	var gotKind, gotEmail string
	err := db.QueryRow(`SELECT kind, coalesce(email, '') FROM users WHERE id = $1`, userID).Scan(&gotKind, &gotEmail)
	if err != nil {
		t.Fatalf("user %s: %v", userID, err)
	}
	if gotKind != kind || gotEmail != email {
		t.Errorf("user %s is %s with email %q, want %s with %q", userID, gotKind, gotEmail, kind, email)
	}
}

// twinQtyRE reads the cart page's quantity inputs.
var twinQtyRE = regexp.MustCompile(`id="qty-(\d+)"[^>]*?\svalue="(\d+)"`)

// twinExpectCartPage checks the lines a cart page shows.
func twinExpectCartPage(t *testing.T, what, body string, want map[int64]int) {
	t.Helper()
	got := map[int64]int{}
	for _, m := range twinQtyRE.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		q, _ := strconv.Atoi(m[2])
		got[id] = q
	}
	if twinLines(got) != twinLines(want) {
		t.Errorf("%s: the page shows %s, want %s", what, twinLines(got), twinLines(want))
	}
}

// twinExpectDBCart checks the cart lines a user has in the database.
func twinExpectDBCart(t *testing.T, db *sql.DB, userID, when string, want map[int64]int) {
	t.Helper()
	rows, err := db.Query(`SELECT ci.product_id, ci.quantity FROM cart_items ci JOIN carts c ON c.id = ci.cart_id WHERE c.user_id = $1`, userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int64]int{}
	for rows.Next() {
		var id int64
		var q int
		if err := rows.Scan(&id, &q); err != nil {
			t.Fatal(err)
		}
		got[id] = q
	}
	if twinLines(got) != twinLines(want) {
		t.Errorf("%s: the database cart holds %s, want %s", when, twinLines(got), twinLines(want))
	}
}

// twinLines formats cart lines in product order.
func twinLines(lines map[int64]int) string {
	ids := make([]int64, 0, len(lines))
	for id := range lines {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%d×%d", id, lines[id]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
