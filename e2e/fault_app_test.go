package e2e

// The harness of the fault tests (fault_*_test.go): the real shopfront
// binary run as a child process over its own PostgreSQL cluster (see
// pgcluster_test.go), and shoppers that are plain HTTP clients with cookie
// jars. The fault tests kill, stop and restart things, so nothing here runs
// in the test's own process.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shopfront/mailer/mailtest"
)

// faultSecretKey is the SECRET_KEY of every server the fault tests start.
const faultSecretKey = "fault-tests-secret-key-0123456789abcdefgh"

// faultPassword is the password of every account the fault tests save.
const faultPassword = "correct horse battery staple"

// faultBuilt is the shopfront binary, built once per test binary.
var faultBuilt struct {
	once sync.Once
	path string
	err  error
}

const faultBinPrefix = "shopfront-e2e-bin-"

// faultBinary builds ./cmd/shopfront once per test binary and returns its
// path. The directory is removed by the next run once this process is gone.
func faultBinary(t *testing.T) string {
	t.Helper()
	faultBuilt.once.Do(func() {
		faultBuilt.path, faultBuilt.err = faultBuild()
	})
	if faultBuilt.err != nil {
		t.Fatalf("building cmd/shopfront: %v", faultBuilt.err)
	}
	return faultBuilt.path
}

func faultBuild() (string, error) {
	// Builds of dead test processes: ours are a few tens of MiB each.
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), faultBinPrefix+"*"))
	for _, dir := range old {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && !pgClusterAlive(pid) {
			os.RemoveAll(dir)
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the shopfront module")
	}
	dir, err := os.MkdirTemp("", faultBinPrefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "shopfront")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/shopfront")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, out)
	}
	return bin, nil
}

// faultApp is `shopfront serve` as a child process on a fixed loopback
// port, so that it can be killed and started again at the same address.
type faultApp struct {
	t       *testing.T
	bin     string
	dir     string // working directory and log
	env     []string
	URL     string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startFaultApp migrates and seeds databaseURL with the real binary, then
// serves it. smtpURL may be empty (mail stays in the outbox). Every process
// it starts is gone when the test ends.
func startFaultApp(t *testing.T, databaseURL, smtpURL string) *faultApp {
	t.Helper()
	port := pgClusterFreePort(t)
	dir := t.TempDir()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	a := &faultApp{
		t:       t,
		bin:     faultBinary(t),
		dir:     dir,
		URL:     base,
		logPath: filepath.Join(dir, "shopfront.log"),
		// A clean environment: a developer's SMTP_URL or GUESTS_ENABLED
		// must not leak into the test.
		env: []string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + dir,
			"APP_ENV=development",
			"DATABASE_URL=" + databaseURL,
			"ADDR=" + fmt.Sprintf("127.0.0.1:%d", port),
			"BASE_URL=" + base,
			"SECRET_KEY=" + faultSecretKey,
			// Every shopper comes from its own X-Forwarded-For address, as
			// behind a load balancer: the per-address rate limits then count
			// per shopper, not for the whole test.
			"TRUSTED_PROXIES=127.0.0.1",
		},
	}
	if smtpURL != "" {
		a.env = append(a.env, "SMTP_URL="+smtpURL)
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("shopfront log (last 8 KiB):\n%s", pgClusterTail(a.Log(), 8192))
		}
	})
	a.run("migrate")
	a.run("seed")
	a.Start()
	return a
}

// run runs a subcommand to its end and fails the test if it fails.
func (a *faultApp) run(args ...string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, args...)
	cmd.Dir, cmd.Env = a.dir, a.env
	if out, err := cmd.CombinedOutput(); err != nil {
		a.t.Fatalf("shopfront %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Start runs `shopfront serve` and returns once /readyz answers 200.
func (a *faultApp) Start() {
	a.t.Helper()
	log, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	defer log.Close() // the child has its own descriptor
	fmt.Fprintf(log, "=== fault test: shopfront serve started at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(a.bin, "serve")
	cmd.Dir, cmd.Env = a.dir, a.env
	cmd.Stdout, cmd.Stderr = log, log
	// The server dies with the test binary, even when a `go test -timeout`
	// panic skips every t.Cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("starting shopfront serve: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			a.t.Fatalf("shopfront serve exited at start: %v\n%s", cmd.ProcessState, pgClusterTail(a.Log(), 4096))
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
			a.t.Fatalf("shopfront serve not ready after 60 s (last: %v)\n%s", err, pgClusterTail(a.Log(), 4096))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends SIGKILL to the server and waits until it is gone.
func (a *faultApp) Kill() {
	a.t.Helper()
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		a.t.Fatal("Kill: the server is not running")
	}
	if err := cmd.Process.Kill(); err != nil {
		a.t.Fatalf("kill -9 shopfront: %v", err)
	}
	<-done
}

// Stop ends the server gracefully (SIGTERM), with SIGKILL after 20 s. It
// does nothing when the server does not run.
func (a *faultApp) Stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		a.t.Errorf("shopfront serve did not stop within 20 s of SIGTERM; killing it")
		cmd.Process.Kill()
		<-done
	}
}

// Log is everything the server processes wrote.
func (a *faultApp) Log() string {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(b)
}

// expectCleanLog fails the test when the server log shows a crash: a panic
// or a goroutine dump.
func (a *faultApp) expectCleanLog() {
	a.t.Helper()
	for _, line := range strings.Split(a.Log(), "\n") {
		if strings.Contains(line, "panic") || strings.HasPrefix(line, "goroutine ") {
			a.t.Errorf("the server log shows a crash: %q", line)
			return
		}
	}
}

// faultOpenSQL opens the test's own connection to url, closed in t.Cleanup.
func faultOpenSQL(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db
}

// faultCount runs a query that returns one number.
func faultCount(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// faultProduct is a product shoppers add.
type faultProduct struct {
	ID    int64
	Slug  string
	Stock int
}

// faultProducts returns n products with at least minStock in stock.
func faultProducts(t *testing.T, db *sql.DB, n, minStock int) []faultProduct {
	t.Helper()
	rows, err := db.Query(`SELECT id, slug, stock FROM products WHERE stock >= $1 ORDER BY id LIMIT $2`, minStock, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []faultProduct
	for rows.Next() {
		var p faultProduct
		if err := rows.Scan(&p.ID, &p.Slug, &p.Stock); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < n {
		t.Fatalf("the demo catalog has %d products with at least %d in stock, want %d", len(out), minStock, n)
	}
	return out
}

// faultTransport is shared by every shopper: connections are pooled, cookies
// are not (they live in each shopper's jar).
var faultTransport = &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	MaxIdleConns:        256,
	MaxIdleConnsPerHost: 256,
	IdleConnTimeout:     30 * time.Second,
}

// faultClientTimeout bounds every request of a shopper: the server's own
// request timeout (REQUEST_TIMEOUT, 10 s) plus a margin. A request that
// takes longer hangs.
const faultClientTimeout = 15 * time.Second

// faultShopperIPs numbers the shoppers' addresses.
var faultShopperIPs atomic.Int64

// faultShopper is one browser without JavaScript: a cookie jar, the CSRF
// token of its csrf cookie, and its own client address.
type faultShopper struct {
	base   *url.URL
	client *http.Client
	ip     string
	csrf   string
}

func newFaultShopper(t *testing.T, base string) *faultShopper {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := faultShopperIPs.Add(1)
	return &faultShopper{
		base: u,
		client: &http.Client{
			Jar:       jar,
			Transport: faultTransport,
			Timeout:   faultClientTimeout,
			// The answers themselves are what the tests look at.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ip: fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255),
	}
}

// faultAnswer is one answer, or the error that stood in its place.
type faultAnswer struct {
	Status      int
	Body        string
	Location    string
	ContentType string
	Start, End  time.Time
	Err         error
}

func (a faultAnswer) Took() time.Duration { return a.End.Sub(a.Start) }

// OK says the form post succeeded: a 303 redirect.
func (a faultAnswer) OK() bool { return a.Err == nil && a.Status == http.StatusSeeOther }

func (a faultAnswer) String() string {
	if a.Err != nil {
		return fmt.Sprintf("error after %v: %v", a.Took().Round(time.Millisecond), a.Err)
	}
	s := fmt.Sprintf("%d after %v", a.Status, a.Took().Round(time.Millisecond))
	if a.Location != "" {
		s += " to " + a.Location
	}
	return s
}

// Get requests path.
func (s *faultShopper) Get(path string) faultAnswer {
	req, _ := http.NewRequest(http.MethodGet, s.base.String()+path, nil)
	return s.do(req)
}

// Post posts form to path with the shopper's CSRF token.
func (s *faultShopper) Post(path string, form url.Values) faultAnswer {
	if form == nil {
		form = url.Values{}
	}
	form.Set("_csrf", s.csrf)
	req, _ := http.NewRequest(http.MethodPost, s.base.String()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.do(req)
}

func (s *faultShopper) do(req *http.Request) faultAnswer {
	req.Header.Set("X-Forwarded-For", s.ip)
	req.Header.Set("User-Agent", "shopfront-fault-test")
	a := faultAnswer{Start: time.Now()}
	resp, err := s.client.Do(req)
	if err != nil {
		a.End, a.Err = time.Now(), err
		return a
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	a.End = time.Now()
	if err != nil {
		a.Err = fmt.Errorf("reading the answer: %w", err)
		return a
	}
	a.Status, a.Body = resp.StatusCode, string(b)
	a.Location, a.ContentType = resp.Header.Get("Location"), resp.Header.Get("Content-Type")
	return a
}

// faultHXHeadersRE finds the layout's hx-headers attribute.
var faultHXHeadersRE = regexp.MustCompile(`hx-headers="([^"]*)"`)

// Begin opens the account page, which needs no database for a visitor, and
// keeps the CSRF token that its csrf cookie signs. The token stays valid as
// long as the cookie, that is for the whole life of the shopper.
func (s *faultShopper) Begin() error {
	a := s.Get("/account")
	if a.Err != nil {
		return a.Err
	}
	return s.KeepCSRF(a)
}

// KeepCSRF keeps the CSRF token of a page's hx-headers attribute.
func (s *faultShopper) KeepCSRF(a faultAnswer) error {
	m := faultHXHeadersRE.FindStringSubmatch(a.Body)
	if m == nil {
		return fmt.Errorf("%s: no hx-headers in the page", a)
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &h); err != nil || h["X-CSRF-Token"] == "" {
		return fmt.Errorf("hx-headers %q holds no CSRF token (%v)", m[1], err)
	}
	s.csrf = h["X-CSRF-Token"]
	return nil
}

// Add posts the product page's add-to-cart form.
func (s *faultShopper) Add(productID int64, qty int) faultAnswer {
	return s.Post("/cart/items", url.Values{"product_id": {strconv.FormatInt(productID, 10)}, "quantity": {strconv.Itoa(qty)}})
}

// SessionHash is the stored hash of the shopper's sid cookie, or nil.
func (s *faultShopper) SessionHash() []byte {
	for _, c := range s.client.Jar.Cookies(s.base) {
		if c.Name != "sid" || c.Value == "" {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(c.Value)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(raw)
		return sum[:]
	}
	return nil
}

// Clone is a second tab of the same browser: the same cookies (a copy of
// them now) and token, its own connection pool slot.
func (s *faultShopper) Clone(t *testing.T) *faultShopper {
	t.Helper()
	c := newFaultShopper(t, s.base.String())
	c.ip, c.csrf = s.ip, s.csrf
	c.client.Jar.SetCookies(s.base, s.client.Jar.Cookies(s.base))
	return c
}

// faultTraceMarks are what a stack trace or a leaked internal error looks
// like in a page.
var faultTraceMarks = []string{"goroutine ", ".go:", "panic", "runtime error", "SQLSTATE", "pgconn", "pgx",
	"dial tcp", "connection refused", "failed to connect", "gorm"}

// faultErrorPageProblem says what is wrong with a 5xx answer, or "": it
// must be the shop's HTML error page, without a trace or an internal error.
func faultErrorPageProblem(a faultAnswer) string {
	if ct := strings.ToLower(a.ContentType); !strings.HasPrefix(ct, "text/html") {
		return fmt.Sprintf("Content-Type %q, not the HTML error page", a.ContentType)
	}
	lower := strings.ToLower(a.Body)
	if !strings.Contains(lower, "<html") || !strings.Contains(lower, `class="error-page"`) {
		return "not the shop's HTML error page: " + faultSnippet(a.Body)
	}
	// The text the visitor reads: attributes hold random tokens and nonces,
	// in which "pgx" or "gorm" turn up by chance.
	text := strings.ToLower(faultText(a.Body))
	for _, mark := range faultTraceMarks {
		if strings.Contains(text, strings.ToLower(mark)) {
			return fmt.Sprintf("the page shows %q: %s", mark, faultSnippet(a.Body))
		}
	}
	return ""
}

var faultTagsRE = regexp.MustCompile(`(?s)<head.*?</head>|<[^>]*>`)

// faultText is the visible text of a page.
func faultText(body string) string {
	text := faultTagsRE.ReplaceAllString(body, " ")
	return strings.Join(strings.Fields(html.UnescapeString(text)), " ")
}

// faultSnippet is the visible text of a page, shortened, for messages.
func faultSnippet(body string) string {
	text := faultText(body)
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	return strconv.Quote(text)
}

// faultLinkRE finds the set-password link in a mail's text.
var faultLinkRE = regexp.MustCompile(`(?m)(\S+/account/password\?token=(\S+))$`)

// faultMails is what the sink holds for recipient, oldest first.
func faultMails(sink *mailtest.Server, recipient string) []mailtest.Message {
	var out []mailtest.Message
	for _, m := range sink.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, recipient) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// faultWaitLink waits until recipient has more than seen mails and returns
// the token of the newest one's link.
func faultWaitLink(ctx context.Context, sink *mailtest.Server, recipient string, seen int, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		if ms := faultMails(sink, recipient); len(ms) > seen {
			m := faultLinkRE.FindStringSubmatch(ms[len(ms)-1].Text)
			if m == nil {
				return "", fmt.Errorf("the mail to %s has no set-password link: %q", recipient, ms[len(ms)-1].Text)
			}
			return m[2], nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no new mail to %s within %v", recipient, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// faultSetPassword posts the set-password form of a link.
func (s *faultShopper) SetPassword(token string) faultAnswer {
	return s.Post("/account/password", url.Values{"token": {token}, "password": {faultPassword}, "password_confirm": {faultPassword}})
}

// faultSeconds formats d as seconds with three decimals, for FIGURE lines.
func faultSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
