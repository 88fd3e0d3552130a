package handlers_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"gorm.io/gorm"

	"shopfront/handlers"
	"shopfront/mailer"
	"shopfront/models"
	"shopfront/models/modeltest"
	"shopfront/static"
)

// TestEnumerationTiming measures whether response times tell who has an
// account: promote and forgot-password for an address with and without an
// account, and a failed sign-in for an unknown email and for a wrong
// password. It only measures and logs (medians, p90, a Mann-Whitney U test
// and a sign-flip permutation test on the ABBA pairs); it never asserts a
// timing, as timings are too noisy on a shared machine.
//
// The mail pairs run in three set-ups: with an outbox worker sending to an
// SMTP sink (the real thing), without a worker, and with a worker stuck on
// an SMTP server that never answers. A response that waited for its mail
// would take the mailer's 15 s timeout in the last one; the log gives the
// slowest response there.
func TestEnumerationTiming(t *testing.T) {
	if os.Getenv("SHOPFRONT_TIMING") != "1" {
		t.Skip("a timing measurement, off by default; run it with: " +
			"DATABASE_URL=$(go run ./cmd/devdb) SHOPFRONT_TIMING=1 go test ./handlers/ -run TestEnumerationTiming -count=1 -v")
	}
	const (
		n      = 200 // timed requests per arm
		nLogin = 60  // argon2id takes ~25 ms a check
		warm   = 10  // untimed pairs first: connection pool, caches
	)
	hash, err := models.NewPasswords().Hash(context.Background(), goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	var rows []timingRow
	for _, mode := range []string{"worker+SMTP sink", "no worker", "worker, SMTP stalled"} {
		t.Run(strings.NewReplacer(" ", "_", ",", "", "+", "_").Replace(mode), func(t *testing.T) {
			e := newTimingEnv(t, mode, hash)
			before := loadAverage()
			rows = append(rows, e.promotePair(t, n, warm), e.forgotPair(t, n, warm))
			if mode == "worker+SMTP sink" {
				rows = append(rows, e.loginPair(t, nLogin, warm/2))
			}
			t.Logf("%s: load average %s before the timed requests, %s after", mode, before, loadAverage())
			e.reportMail(t, n+warm)
		})
	}
	t.Logf("GOMAXPROCS=%d; times are whole requests through the middleware stack, in process\n%s",
		runtime.GOMAXPROCS(0), timingTable(rows))
}

// timingEnv is an app over a fresh database, in one mail set-up.
type timingEnv struct {
	mode     string
	app      *fiber.App
	handler  fasthttp.RequestHandler
	db       *gorm.DB
	pwHash   string
	delivers func() int // mails the SMTP sink received, or nil
	stalled  func() int // connections the stalled SMTP server holds, or nil
	slowest  time.Duration
}

func newTimingEnv(t *testing.T, mode, pwHash string) *timingEnv {
	t.Helper()
	e := &timingEnv{mode: mode, pwHash: pwHash}
	switch mode {
	case "worker+SMTP sink":
		a := newMailingApp(t, generousLimits)
		e.app, e.db = a.app, a.db
		e.delivers = func() int { return len(a.sink.Messages()) }
	case "no worker":
		e.app, e.db = newApp(t, generousLimits)
	default:
		e.app, e.db, e.stalled = newStalledMailApp(t)
	}
	e.handler = e.app.Handler()
	return e
}

// generousLimits lets the measurement make thousands of requests from one
// client address.
func generousLimits(c *handlers.Config) {
	big := handlers.Limit{Max: 1 << 30, Window: time.Hour}
	c.Limits = handlers.Limits{GuestCreation: big, Login: big, Emails: big}
}

// newStalledMailApp is the app with an outbox worker whose SMTP server
// accepts connections and then never says a word: every send hangs until
// the mailer's timeout, far beyond the measurement.
func newStalledMailApp(t *testing.T) (*fiber.App, *gorm.DB, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	held := func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }

	db := modeltest.NewDB(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sender, err := mailer.New(mailer.Config{URL: "smtp://" + ln.Addr().String() + "?tls=none", From: "Shopfront <no-reply@shop.test>"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	worker := mailer.NewWorker(models.NewOutbox(db), sender, log)
	worker.PollInterval = 50 * time.Millisecond
	cfg := testConfig()
	generousLimits(&cfg)
	deps := handlers.Deps{DB: db, SQL: sqlDB, Config: cfg, Static: static.FS, Log: log, OnMail: worker.Kick}
	resetJob, err := handlers.NewResetJob(deps)
	if err != nil {
		t.Fatal(err)
	}
	worker.Jobs = append(worker.Jobs, resetJob)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { worker.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close() // the worker's dial fails now rather than in 15 s
		}
		mu.Unlock()
		<-done
	})
	app, err := handlers.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	return app, db, held
}

// timingVisitor is a browser's cookies and CSRF token, for timed posts.
type timingVisitor struct {
	cookie string // the Cookie header
	csrf   string
}

// visitor is a browser that has seen the home page; asGuest also makes it
// a guest with a cart.
func (e *timingEnv) visitor(t *testing.T, asGuest bool) timingVisitor {
	t.Helper()
	c := newClient(t, e.app)
	token := c.csrf()
	if asGuest {
		r := c.post("/cart/items", url.Values{"_csrf": {token}, "product_id": {productID(t, e.db, "stoneware-mug")}, "quantity": {"1"}})
		wantStatus(t, r, http.StatusSeeOther)
		if c.cookies["sid"] == "" {
			t.Fatal("adding to the cart made no session")
		}
	}
	var cookie strings.Builder
	for name, value := range c.cookies {
		fmt.Fprintf(&cookie, "%s=%s; ", name, value)
	}
	return timingVisitor{cookie: cookie.String(), csrf: token}
}

// registered makes count registered accounts named like address(i), all
// with goodPassword.
func (e *timingEnv) registered(t *testing.T, count int, address func(i int) string) {
	t.Helper()
	err := e.db.Transaction(func(tx *gorm.DB) error {
		for i := range count {
			err := tx.Exec(`INSERT INTO users (id, kind, email, password_hash, email_verified_at)
				VALUES (gen_random_uuid(), 'registered', ?, ?, now())`, address(i), e.pwHash).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var timingAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}

// post sends one form post through the whole app, in process, and returns
// how long the app took to answer.
func (e *timingEnv) post(t *testing.T, path string, v timingVisitor, form url.Values, want int) time.Duration {
	t.Helper()
	form.Set("_csrf", v.csrf)
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, timingAddr, nil)
	ctx.Request.Header.SetMethod(fiber.MethodPost)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetContentType(fiber.MIMEApplicationForm)
	ctx.Request.Header.Set(fiber.HeaderUserAgent, testUserAgent)
	ctx.Request.Header.Set(fiber.HeaderCookie, v.cookie)
	ctx.Request.SetBodyString(form.Encode())
	start := time.Now()
	e.handler(&ctx)
	d := time.Since(start)
	e.slowest = max(e.slowest, d)
	if got := ctx.Response.StatusCode(); got != want {
		t.Fatalf("POST %s %v: status %d, want %d: %.300s", path, form, got, want, ctx.Response.Body())
	}
	return d
}

// timingArm is one side of a comparison: request i of the arm.
type timingArm struct {
	name string
	do   func(i int) time.Duration
}

// timingRow is a measured pair: a, the arm where the account exists, and
// b, the arm where it does not.
type timingRow struct {
	what, mode string
	a, b       timingArm
	ta, tb     []time.Duration
}

// timingMeasure runs warm untimed pairs, then n timed ones, interleaved as
// ABBA ABBA…: each arm goes first half the time and follows each arm half
// the time, which cancels drift and the after-effects of the previous
// request (such as the worker sending its mail).
func timingMeasure(what, mode string, a, b timingArm, n, warm int) timingRow {
	row := timingRow{what: what, mode: mode, a: a, b: b}
	runtime.GC()
	for i := range warm + n {
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		d1, d2 := first.do(i), second.do(i)
		if i < warm {
			continue
		}
		if i%2 == 1 {
			d1, d2 = d2, d1
		}
		row.ta, row.tb = append(row.ta, d1), append(row.tb, d2)
	}
	return row
}

// promotePair: a fresh guest per request asks to save its cart under an
// address that has an account, or under one that has none.
func (e *timingEnv) promotePair(t *testing.T, n, warm int) timingRow {
	taken := func(i int) string { return fmt.Sprintf("p-taken-%03d@example.com", i) }
	fresh := func(i int) string { return fmt.Sprintf("p-fresh-%03d@example.com", i) }
	e.registered(t, warm+n, taken)
	guests := make([]timingVisitor, 2*(warm+n))
	for i := range guests {
		guests[i] = e.visitor(t, true)
	}
	arm := func(name string, address func(int) string, offset int) timingArm {
		return timingArm{name, func(i int) time.Duration {
			return e.post(t, "/account/promote", guests[2*i+offset], url.Values{"email": {address(i)}}, http.StatusSeeOther)
		}}
	}
	return timingMeasure("POST /account/promote", e.mode, arm("taken", taken, 0), arm("new", fresh, 1), n, warm)
}

// forgotPair: a visitor asks for a reset link for an address that has an
// account, or for one that has none.
func (e *timingEnv) forgotPair(t *testing.T, n, warm int) timingRow {
	known := func(i int) string { return fmt.Sprintf("f-known-%03d@example.com", i) }
	unknown := func(i int) string { return fmt.Sprintf("f-fresh-%03d@example.com", i) }
	e.registered(t, warm+n, known)
	v := e.visitor(t, false)
	arm := func(name string, address func(int) string) timingArm {
		return timingArm{name, func(i int) time.Duration {
			return e.post(t, "/password/forgot", v, url.Values{"email": {address(i)}}, http.StatusSeeOther)
		}}
	}
	return timingMeasure("POST /password/forgot", e.mode, arm("known", known), arm("unknown", unknown), n, warm)
}

// loginPair: a failed sign-in with a wrong password for an account, or
// with an email that has none.
func (e *timingEnv) loginPair(t *testing.T, n, warm int) timingRow {
	known := func(i int) string { return fmt.Sprintf("l-known-%03d@example.com", i) }
	unknown := func(i int) string { return fmt.Sprintf("l-fresh-%03d@example.com", i) }
	e.registered(t, warm+n, known)
	v := e.visitor(t, false)
	arm := func(name string, address func(int) string) timingArm {
		return timingArm{name, func(i int) time.Duration {
			form := url.Values{"email": {address(i)}, "password": {"not the password at all"}}
			return e.post(t, "/login", v, form, http.StatusUnprocessableEntity)
		}}
	}
	return timingMeasure("POST /login (fails)", e.mode, arm("wrong pw", known), arm("unknown", unknown), n, warm)
}

// reportMail says what became of the mail the requests queued: sent by the
// worker, waiting, or stuck behind a silent SMTP server.
func (e *timingEnv) reportMail(t *testing.T, perArm int) {
	t.Helper()
	want := 3 * perArm // promote: both arms mail; forgot: the known arm only
	var queued, sent, resets int64
	e.db.Raw("SELECT count(*) FROM outbox").Scan(&queued)
	// Forgot-password requests wait in reset_requests until a worker's job
	// turns the known ones into mail.
	e.db.Raw("SELECT count(*) FROM reset_requests").Scan(&resets)
	switch {
	case e.delivers != nil:
		deadline := time.Now().Add(30 * time.Second)
		for e.delivers() < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		e.db.Raw("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL").Scan(&sent)
		t.Logf("%s: %d mails queued, %d sent, %d received by the sink", e.mode, queued, sent, e.delivers())
		if e.delivers() < want {
			t.Errorf("%s: the sink received %d mails, want %d", e.mode, e.delivers(), want)
		}
		if queued != int64(want) {
			t.Errorf("%s: %d mails queued, want %d", e.mode, queued, want)
		}
	case e.stalled != nil:
		e.db.Raw("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL").Scan(&sent)
		t.Logf("%s: %d mails queued, %d sent, %d reset requests waiting; the worker holds %d silent SMTP connection(s); slowest response %v",
			e.mode, queued, sent, resets, e.stalled(), e.slowest.Round(time.Microsecond))
	default:
		t.Logf("%s: %d mails queued, none sent, %d reset requests waiting", e.mode, queued, resets)
	}
	// Promote mail is queued by the request itself, whatever the worker does.
	if queued < int64(2*perArm) {
		t.Errorf("%s: %d mails queued, want at least the %d promote mails", e.mode, queued, 2*perArm)
	}
}

// loadAverage is the machine's 1-minute load average, to read the numbers
// by: this machine is shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// timingTable renders the rows: per arm the median and p90 in ms, the
// difference of the medians (a - b) in ms and as a share of b's median,
// the median of the differences within each ABBA pair (robust to drift
// in the machine's load), then whether the two samples are distinguishable
// at all: AUC = P(a > b) (0.5: no difference; 0 or 1: every single request
// tells), the two-sided p of a Mann-Whitney U test, and the p of a
// sign-flip permutation test on the paired differences.
func timingTable(rows []timingRow) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "request\tset-up\tA / B\tn\tmed A\tmed B\tp90 A\tp90 B\tΔmed ms\tΔmed %\tpaired Δ\tAUC\tMW p\tpaired p\t")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range rows {
		a, b := timingMillis(r.ta), timingMillis(r.tb)
		ma, mb := timingMedian(a), timingMedian(b)
		auc, pMW := mannWhitney(a, b)
		fmt.Fprintf(w, "%s\t%s\t%s / %s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%+.3f\t%+.1f%%\t%+.3f\t%.2f\t%.2g\t%.2g\t\n",
			r.what, r.mode, r.a.name, r.b.name, len(a), ma, mb, timingQuantile(a, 0.9), timingQuantile(b, 0.9),
			ma-mb, 100*(ma-mb)/mb, pairedDiff(a, b), auc, pMW, signFlip(rng, a, b, 4000))
	}
	w.Flush()
	return b.String()
}

// pairedDiff is the median of a[i] - b[i]: the two requests of a pair ran
// back to back.
func pairedDiff(a, b []float64) float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return timingMedian(d)
}

func timingMillis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

func timingMedian(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 0 {
		return (s[m-1] + s[m]) / 2
	}
	return s[m]
}

// timingQuantile is the nearest-rank q quantile.
func timingQuantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[max(0, int(math.Ceil(q*float64(len(s))))-1)]
}

// mannWhitney returns AUC = U_a/(na·nb), the chance that a random a is
// slower than a random b (ties count half), and the two-sided p of the
// normal approximation with tie and continuity corrections.
func mannWhitney(a, b []float64) (auc, p float64) {
	type obs struct {
		v    float64
		inA  bool
		rank float64
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v: v, inA: true})
	}
	for _, v := range b {
		all = append(all, obs{v: v})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	var ties float64 // Σ(t³ - t) over groups of equal values
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		for k := i; k < j; k++ {
			all[k].rank = float64(i+j+1) / 2 // ranks i+1 … j, averaged
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	var ra float64
	for _, o := range all {
		if o.inA {
			ra += o.rank
		}
	}
	na, nb := float64(len(a)), float64(len(b))
	u := ra - na*(na+1)/2
	total := na + nb
	sigma := math.Sqrt(na * nb / 12 * ((total + 1) - ties/(total*(total-1))))
	z := math.Max(0, math.Abs(u-na*nb/2)-0.5) / sigma
	return u / (na * nb), math.Erfc(z / math.Sqrt2)
}

// signFlip is the p of a permutation test on the pairs: under "no
// difference" the two requests of a pair are exchangeable, so each
// difference a[i] - b[i] is as likely negated; p is the share of rounds of
// random negations whose |median| reaches the observed one.
func signFlip(rng *rand.Rand, a, b []float64, rounds int) float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	observed := math.Abs(timingMedian(d))
	flipped := make([]float64, len(d))
	extreme := 0
	for range rounds {
		for i, x := range d {
			if rng.IntN(2) == 0 {
				x = -x
			}
			flipped[i] = x
		}
		if math.Abs(timingMedian(flipped)) >= observed {
			extreme++
		}
	}
	return float64(extreme+1) / float64(rounds+1)
}
