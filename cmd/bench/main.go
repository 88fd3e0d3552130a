// Command bench loads the real Shopfront server with wrk and compares it with
// a baseline: a bare Fiber app in this process that sends the same page bytes
// from memory. The gap between the two is what the database, the templates
// and the middleware cost on each request.
//
// It also loads the add to cart (POST /cart/items, one guest adding the same
// product) and runs that request's SQL alone with pgbench at the same
// concurrency: the gap between those two is what HTTP, Go and GORM add to
// the database's work. And it checks, in pg_stat_user_tables, that
// anonymous page views write nothing: a run where they do fails.
//
// Each run gets a fresh database, shopfront_bench, on the server of
// DATABASE_URL: bin/shopfront migrates and seeds it, and it is dropped at the
// end. `make bench` builds bin/shopfront and runs this.
//
// With -cull N it then generates N stale guests and measures `shopfront
// cull` deleting them while wrk adds to cart, against the issue's targets:
// at least 20,000 guests/s, and the add's p99 at most twice its idle p99.
// It takes minutes for a million, so plain `make bench` leaves it out.
//
//	go run ./cmd/bench [-duration 10s] [-connections 32] [-threads 2] [-warmup 2s] [-cull 1000000]
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	_ "github.com/jackc/pgx/v5/stdlib"
)

const (
	benchDatabase = "shopfront_bench"
	// secretKey is a fixed test key: with SECRET_KEY set, serve in development
	// neither reads nor writes .data/secret_key.
	secretKey     = "bench-secret-key-0123456789abcdefghijklm" // 40 bytes
	healthTimeout = 20 * time.Second
	stopTimeout   = 20 * time.Second // serve drains for up to 15s on SIGTERM
	ratioTarget   = 0.5
	baselineName  = "GET / (same bytes from memory, Fiber)"
	// quickDuration is the length of the quick loads, there to show that
	// more pages than the catalog write nothing.
	quickDuration = 3 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	bin         string
	duration    time.Duration
	warmup      time.Duration
	connections int
	threads     int
	cull        int // stale guests to generate and cull; 0 skips the cull
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.bin, "bin", "bin/shopfront", "the shopfront binary to load (make bench builds it)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured wrk run (wrk -d)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "length of the unreported wrk run before each measurement; 0 skips it")
	fs.IntVar(&o.connections, "connections", 32, "open HTTP connections (wrk -c)")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads (wrk -t)")
	fs.IntVar(&o.cull, "cull", 0, "after the add to cart, generate `N` stale guests and measure bin/shopfront cull of them "+
		"while wrk adds to cart (target ≥ 20,000 guests/s, p99 ≤ 2× idle), e.g. "+cullHint+"; 0 skips it")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	switch {
	case fs.NArg() > 0:
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.threads < 1:
		return options{}, errors.New("-threads: want at least 1")
	case o.connections < o.threads:
		return options{}, errors.New("-connections: want at least one per thread (wrk refuses fewer)")
	case o.duration < time.Second || o.duration%time.Second != 0:
		return options{}, errors.New("-duration: want whole seconds, at least 1s (wrk counts in seconds)")
	case o.warmup < 0 || o.warmup%time.Second != 0:
		return options{}, errors.New("-warmup: want whole seconds, or 0")
	case o.cull < 0:
		return options{}, errors.New("-cull: want a number of guests, or 0")
	}
	return o, nil
}

// scenario is one wrk load. Adding a page view is adding one entry to
// scenarios; the add to cart is measured after them (see addToCart).
type scenario struct {
	name string
	url  string
	// script is a wrk Lua script (-s), for requests other than a plain GET,
	// and scriptArgs what it gets after wrk's "--".
	script     string
	scriptArgs []string
	// server says the real server answers: its memory is read after the run.
	server bool
	// anonymous says the load sends no cookie, so it must write nothing: the
	// rows it wrote are counted, and any fail the run.
	anonymous bool
	// quick loads run for quickDuration without a warm-up.
	quick bool
	// baseline names the scenario this one's req/s is divided by.
	baseline string
}

// scenarios are the page views of a run, measured in this order. slug is a
// product's.
func scenarios(serverURL, baselineURL, slug string) []scenario {
	return []scenario{
		{name: "GET / (catalog page, real server)", url: serverURL + "/", server: true, anonymous: true, baseline: baselineName},
		{name: baselineName, url: baselineURL + "/"},
		{name: "GET /products/" + slug + " (product page)", url: serverURL + "/products/" + slug, server: true, anonymous: true, quick: true},
		{name: "GET /cart (no session: empty cart)", url: serverURL + "/cart", server: true, anonymous: true, quick: true},
	}
}

// addToCartScenario posts g's add-to-cart form with g's cookies, with the
// wrk script at script.
func addToCartScenario(serverURL, script string, g guest) scenario {
	return scenario{
		name: addToCartName, url: serverURL + "/cart/items",
		script: script, scriptArgs: []string{g.cookie(), g.form()},
		server: true,
	}
}

// loads are a scenario's wrk runs: a warm-up (none if 0), then the measured one.
func (sc scenario) loads(opts options) (warmup, measured time.Duration) {
	if sc.quick {
		return 0, min(opts.duration, quickDuration)
	}
	return opts.warmup, opts.duration
}

// result is what one scenario measured.
type result struct {
	scenario
	wrk wrkResult
	mem memory // of the server right after the run; zero unless scenario.server
	// writes are the rows written from just before this load (or the end of
	// the previous anonymous one) to its end, warm-up included; only for
	// anonymous loads.
	writes tableWrites
}

// loaded is what loadServer measured.
type loaded struct {
	page    page
	results []result
	pgbench pgbenchRun
	cull    *cullRun // nil unless -cull
}

// pgbenchRun is pgbench's measurement of the add to cart's SQL.
type pgbenchRun struct {
	pgbenchResult
	script addSQL // the values inlined in add_to_cart.sql
}

// bench is one run's tools and database.
type bench struct {
	opts    options
	wrk     wrk
	pgbench pgbench
	dbURL   string  // of the bench database
	db      *sql.DB // to the bench database: the add's setup, the write counts
	dir     string  // the scripts of the run
}

// page is the catalog page as the real server sent it, the baseline's answer.
type page struct {
	body        []byte
	contentType string
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (err error) {
	opts, err := parseFlags(args)
	if err != nil {
		return err
	}
	wrkPath, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk not found on PATH: install wrk: apt-get install -y wrk")
	}
	pgbenchPath, err := exec.LookPath("pgbench")
	if err != nil {
		return errors.New("pgbench not found on PATH: on Debian it comes with the server: apt-get install -y postgresql-15 (/usr/bin/pgbench)")
	}
	dbURL := getenv("DATABASE_URL")
	if dbURL == "" {
		return errors.New("DATABASE_URL is not set (make bench sets it)")
	}

	benchURL, dropDB, err := createDatabase(ctx, dbURL, benchDatabase)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dropDB()) }()
	for _, cmd := range []string{"migrate", "seed"} {
		if err := runShopfront(ctx, opts.bin, benchURL, cmd); err != nil {
			return err
		}
	}

	db, err := sql.Open("pgx", benchURL)
	if err != nil {
		return fmt.Errorf("open %s: %w", benchDatabase, err)
	}
	defer db.Close()
	dir, err := os.MkdirTemp("", "shopfront-bench-*")
	if err != nil {
		return fmt.Errorf("scripts: %w", err)
	}
	defer os.RemoveAll(dir)

	logFile, err := os.CreateTemp("", "shopfront-bench-*.log")
	if err != nil {
		return fmt.Errorf("server log: %w", err)
	}
	defer logFile.Close()
	b := bench{
		opts:    opts,
		wrk:     wrk{path: wrkPath, threads: opts.threads, connections: opts.connections},
		pgbench: pgbench{path: pgbenchPath, clients: opts.connections, threads: opts.threads},
		dbURL:   benchURL,
		db:      db,
		dir:     dir,
	}
	l, loadErr := b.loadServer(ctx, logFile)
	// The log is complete only now the server has stopped; it explains a
	// failed run as well as a finished one.
	logSum, err := summarizeLog(logFile.Name())
	if err != nil {
		return errors.Join(loadErr, err)
	}
	if loadErr != nil {
		return fmt.Errorf("%w\nserver log %s ends:\n%s", loadErr, logFile.Name(), logSum.tail)
	}
	report(stdout, opts, b.wrk, b.pgbench, l, logSum)
	failed := failures(l)
	if logSum.errors == 0 && failed == nil {
		os.Remove(logFile.Name()) // tens of MB of request lines, and nothing in them
	} else {
		fmt.Fprintln(stdout, "server log kept:", logFile.Name())
	}
	return failed
}

// loadServer starts the real server and the baseline, runs every scenario
// against them and stops both before it returns.
func (b *bench) loadServer(ctx context.Context, logFile *os.File) (_ loaded, err error) {
	srv, err := startServer(b.opts.bin, b.dbURL, logFile)
	if err != nil {
		return loaded{}, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	if err := srv.waitHealthy(ctx, healthTimeout); err != nil {
		return loaded{}, err
	}
	pg, err := fetchPage(ctx, srv.url+"/")
	if err != nil {
		return loaded{}, fmt.Errorf("real server: %w", err)
	}
	baseURL, stopBaseline, err := startBaseline(pg)
	if err != nil {
		return loaded{}, err
	}
	defer func() { err = errors.Join(err, stopBaseline()) }()
	if err := checkSame(ctx, baseURL+"/", pg); err != nil {
		return loaded{}, err
	}
	p, err := firstProduct(ctx, b.db)
	if err != nil {
		return loaded{}, err
	}

	l := loaded{page: pg}
	watch := writeWatch{db: b.db}
	if err := watch.start(ctx); err != nil {
		return loaded{}, err
	}
	for _, sc := range scenarios(srv.url, baseURL, p.slug) {
		r, err := b.measure(ctx, srv, sc)
		if err != nil {
			return loaded{}, err
		}
		if sc.anonymous {
			if r.writes, err = watch.next(ctx); err != nil {
				return loaded{}, fmt.Errorf("%s: %w", sc.name, err)
			}
		}
		l.results = append(l.results, r)
	}
	// Only now, after the anonymous loads: the add's setup writes, and its
	// rows must not count as theirs.
	r, pgr, err := b.addToCart(ctx, srv, p)
	if err != nil {
		return loaded{}, err
	}
	l.results, l.pgbench = append(l.results, r), pgr
	if b.opts.cull > 0 {
		c, err := b.cullUnderLoad(ctx, srv, r.scenario)
		if err != nil {
			return loaded{}, fmt.Errorf("cull: %w", err)
		}
		l.results, l.cull = append(l.results, c.idle, c.during), &c
	}
	return l, nil
}

// measure runs one scenario and reads the server's memory after it.
func (b *bench) measure(ctx context.Context, srv *server, sc scenario) (result, error) {
	warmup, d := sc.loads(b.opts)
	res, err := b.wrk.measure(ctx, sc, warmup, d)
	if err != nil {
		return result{}, fmt.Errorf("%s: %w", sc.name, err)
	}
	// A server that stopped during the run leaves wrk's numbers meaningless.
	if err := srv.running(); err != nil {
		return result{}, fmt.Errorf("%s: %w", sc.name, err)
	}
	r := result{scenario: sc, wrk: res}
	if sc.server {
		if r.mem, err = readMemory(srv.cmd.Process.Pid); err != nil {
			return result{}, fmt.Errorf("%s: server memory: %w", sc.name, err)
		}
	}
	return r, nil
}

// addToCart measures the add to cart of product p through the server with
// wrk, then its SQL alone with pgbench, each for the run's duration. One
// guest adds, as one busy shopper would: every add locks the same cart row
// until it commits, so both loads measure that queue, and the ratio shows
// what the server adds to it.
func (b *bench) addToCart(ctx context.Context, srv *server, p product) (result, pgbenchRun, error) {
	if err := giveStock(ctx, b.db, p.id); err != nil {
		return result{}, pgbenchRun{}, err
	}
	g, err := newGuest(ctx, srv.url, p.id)
	if err != nil {
		return result{}, pgbenchRun{}, err
	}
	v, err := guestSQL(ctx, b.db, g)
	if err != nil {
		return result{}, pgbenchRun{}, err
	}
	luaPath, sqlPath, err := writeScripts(b.dir, v)
	if err != nil {
		return result{}, pgbenchRun{}, err
	}
	r, err := b.measure(ctx, srv, addToCartScenario(srv.url, luaPath, g))
	if err != nil {
		return result{}, pgbenchRun{}, err
	}
	pgr, err := b.pgbench.run(ctx, b.dbURL, sqlPath, b.opts.duration)
	if err != nil {
		return result{}, pgbenchRun{}, err
	}
	return r, pgbenchRun{pgbenchResult: pgr, script: v}, nil
}

// createDatabase (re)creates database name on the server of serverURL and
// returns its URL and a function that drops it. A leftover from an
// interrupted run is dropped first: WITH (FORCE) ends its sessions.
func createDatabase(ctx context.Context, serverURL, name string) (string, func() error, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if strings.TrimPrefix(u.Path, "/") == name {
		return "", nil, fmt.Errorf("DATABASE_URL already names %s, which each run drops: point it at another database on the same server", name)
	}
	// Connected to DATABASE_URL's own database, which exists, to create and
	// drop another one on the same server.
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		return "", nil, fmt.Errorf("open DATABASE_URL: %w", err)
	}
	drop := func(ctx context.Context) error {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	if err := drop(ctx); err != nil {
		admin.Close()
		return "", nil, err
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	dropAndClose := func() error {
		// Not ctx: the database goes even when the run was interrupted.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(drop(ctx), admin.Close())
	}
	u.Path = "/" + name
	return u.String(), dropAndClose, nil
}

// shopfrontEnv is the whole environment of a shopfront process. Nothing is
// inherited, so settings in the developer's shell (REQUEST_TIMEOUT,
// GUESTS_ENABLED...) cannot change what is measured.
func shopfrontEnv(dbURL string, extra ...string) []string {
	return append([]string{
		"DATABASE_URL=" + dbURL,
		"APP_ENV=development",
		"SECRET_KEY=" + secretKey,
	}, extra...)
}

// runShopfront runs a one-shot shopfront subcommand (migrate, seed).
func runShopfront(ctx context.Context, bin, dbURL, subcommand string) error {
	cmd := exec.CommandContext(ctx, bin, subcommand)
	cmd.Env = shopfrontEnv(dbURL)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", bin, subcommand, err, out)
	}
	return nil
}

// server is the real shopfront serve process.
type server struct {
	cmd     *exec.Cmd
	url     string
	started time.Time     // serve culls on its own a minute after (see serveFirstCull)
	exited  chan struct{} // closed once the process has exited
	waitErr error         // how it exited; read only after exited is closed
}

// startServer starts `shopfront serve` on a free loopback port, with its
// output (one line per request) to logFile.
func startServer(bin, dbURL string, logFile *os.File) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// Not CommandContext: stop must SIGTERM and wait, not SIGKILL, so the
	// server shuts down the way it does in production.
	cmd := exec.Command(bin, "serve")
	// serve culls a minute after it starts, then every CULL_EVERY: with a
	// year, never again in a run, so the cull that -cull measures is the
	// only one to meet the stale guests.
	cmd.Env = shopfrontEnv(dbURL, "ADDR="+addr, "BASE_URL=http://"+addr, "CULL_EVERY=8760h")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	s := &server{cmd: cmd, url: "http://" + addr, started: time.Now(), exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

// freeAddr finds a loopback port nothing listens on. Another process could
// take it before the server binds it; on a bench machine that does not happen.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHealthy polls GET /healthz until it answers 200.
func (s *server) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if healthy(ctx, client, s.url+"/healthz") {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited before answering GET /healthz: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("server did not answer GET /healthz with 200 within %s", timeout)
		case <-tick.C:
		}
	}
}

func healthy(ctx context.Context, client *http.Client, u string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and waits for the graceful shutdown, killing the server
// if it does not finish in time.
func (s *server) stop() error {
	select {
	case <-s.exited: // died on its own, or got the terminal's Ctrl-C too
		return s.exitErr()
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop server: %w", err)
	}
	select {
	case <-s.exited:
		return s.exitErr()
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("server still running %s after SIGTERM: killed", stopTimeout)
	}
}

// running says whether the server is still up, and if not, how it ended.
func (s *server) running() error {
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("server died during the run: %w", s.waitErr)
		}
		// serve exits 0 only after SIGINT or SIGTERM, which we had not sent.
		return errors.New("server shut down during the run: something outside the bench signalled it")
	default:
		return nil
	}
}

func (s *server) exitErr() error {
	if s.waitErr != nil {
		return fmt.Errorf("server: %w", s.waitErr)
	}
	return nil
}

// fetchPage gets u once, as wrk will, and keeps the answer.
func fetchPage(ctx context.Context, u string) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return page{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return page{}, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return page{}, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return page{}, fmt.Errorf("GET %s: status %d, want 200", u, resp.StatusCode)
	}
	return page{body: body, contentType: resp.Header.Get("Content-Type")}, nil
}

// startBaseline serves pg on GET / from a bare Fiber app in this process:
// the same framework as the real server, without database or templates.
func startBaseline(pg page) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("baseline: listen: %w", err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, pg.contentType)
		return c.Send(pg.body) // no copy: fasthttp sends the slice as is
	})
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	stop := func() error {
		if err := app.Shutdown(); err != nil {
			return fmt.Errorf("baseline: shutdown: %w", err)
		}
		if err := <-served; err != nil {
			return fmt.Errorf("baseline: serve: %w", err)
		}
		return nil
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// checkSame makes sure the baseline answers what the real server did, so the
// two rows of the table compare the same bytes on the wire.
func checkSame(ctx context.Context, u string, want page) error {
	got, err := fetchPage(ctx, u)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if !bytes.Equal(got.body, want.body) || got.contentType != want.contentType {
		return errors.New("baseline: GET / does not answer the real server's page")
	}
	return nil
}

// wrk runs the wrk load generator with the run's parameters.
type wrk struct {
	path        string
	threads     int
	connections int
}

// args are wrk's flags for a run of d, without the URL.
func (w wrk) args(d time.Duration, script string) []string {
	args := []string{
		"-t" + strconv.Itoa(w.threads),
		"-c" + strconv.Itoa(w.connections),
		"-d" + strconv.Itoa(int(d/time.Second)) + "s",
		"--latency",
	}
	if script != "" {
		args = append(args, "-s", script)
	}
	return args
}

// measure warms the target up (connections, pools, caches, the Go heap)
// unreported, then measures it.
func (w wrk) measure(ctx context.Context, sc scenario, warmup, d time.Duration) (wrkResult, error) {
	if warmup > 0 {
		if _, err := w.run(ctx, sc, warmup); err != nil {
			return wrkResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	out, err := w.run(ctx, sc, d)
	if err != nil {
		return wrkResult{}, err
	}
	return parseWrk(out)
}

// cmdArgs are wrk's arguments for a run of sc for d.
func (w wrk) cmdArgs(sc scenario, d time.Duration) []string {
	args := append(w.args(d, sc.script), sc.url)
	if len(sc.scriptArgs) > 0 {
		args = append(append(args, "--"), sc.scriptArgs...)
	}
	return args
}

func (w wrk) run(ctx context.Context, sc scenario, d time.Duration) ([]byte, error) {
	args := w.cmdArgs(sc, d)
	out, err := exec.CommandContext(ctx, w.path, args...).Output()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("wrk interrupted: %w", ctx.Err()) // not "signal: killed"
	}
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return nil, fmt.Errorf("wrk %s: %w\n%s%s", strings.Join(args, " "), err, out, exitErr.Stderr)
		}
		return nil, fmt.Errorf("wrk %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// wrkResult is what we read from wrk's report.
type wrkResult struct {
	requests     int64
	rps          float64
	p50, p99     float64 // milliseconds
	non2xx       int64   // wrk counts statuses of 400 and up: "Non-2xx or 3xx responses"
	socketErrors string  // wrk's own wording, "" when there were none
}

// parseWrk reads wrk's text report (wrk 4, with --latency).
func parseWrk(out []byte) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveP50, haveP99 bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		var err error
		switch {
		case len(f) == 2 && f[0] == "50%":
			r.p50, err = millis(f[1])
			haveP50 = true
		case len(f) == 2 && f[0] == "99%":
			r.p99, err = millis(f[1])
			haveP99 = true
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, err = strconv.ParseFloat(f[1], 64)
			haveRPS = true
		case len(f) > 2 && f[1] == "requests" && f[2] == "in":
			r.requests, err = strconv.ParseInt(f[0], 10, 64)
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			r.non2xx, err = strconv.ParseInt(f[len(f)-1], 10, 64)
		case strings.HasPrefix(line, "Socket errors:"):
			r.socketErrors = strings.TrimSpace(strings.TrimPrefix(line, "Socket errors:"))
		}
		if err != nil {
			return wrkResult{}, fmt.Errorf("wrk report line %q: %w", line, err)
		}
	}
	if !haveRPS || !haveP50 || !haveP99 {
		return wrkResult{}, fmt.Errorf("wrk report without Requests/sec or the 50%%/99%% latencies:\n%s", out)
	}
	return r, nil
}

// millis converts one of wrk's durations ("812.00us", "1.23ms", "2.01s",
// "1.50m") to milliseconds.
func millis(s string) (float64, error) {
	// Longest suffix first: "ms" and "us" also end in "s".
	units := []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			return v * u.ms, nil
		}
	}
	return 0, fmt.Errorf("duration %q: unknown unit", s)
}

// memory is a process's resident set, now and at its peak, in bytes.
type memory struct {
	rss, peak int64
}

// readMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "  123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			return memory{}, fmt.Errorf("/proc/%d/status: unexpected %q", pid, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status: %q: %w", pid, line, err)
		}
		if key == "VmRSS" {
			m.rss = kb << 10
		} else {
			m.peak = kb << 10
		}
	}
	if m.rss == 0 || m.peak == 0 {
		return memory{}, fmt.Errorf("/proc/%d/status: no VmRSS or VmHWM", pid)
	}
	return m, nil
}

// logSummary is what the server logged that is worth a look.
type logSummary struct {
	lines, errors, warnings int
	firstError              string
	firstWarning            string // a slow query (GORM's, over 500 ms), say
	tail                    string // the last lines, to explain a failed start
}

// summarizeLog counts the error and warning lines of the server's log.
func summarizeLog(path string) (logSummary, error) {
	f, err := os.Open(path)
	if err != nil {
		return logSummary{}, fmt.Errorf("server log: %w", err)
	}
	defer f.Close()
	var s logSummary
	const tailLines = 20
	var tail []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		s.lines++
		switch {
		case strings.Contains(line, "level=ERROR"):
			s.errors++
			if s.firstError == "" {
				s.firstError = line
			}
		case strings.Contains(line, "level=WARN"):
			s.warnings++
			if s.firstWarning == "" {
				s.firstWarning = line
			}
		}
		if tail = append(tail, line); len(tail) > tailLines {
			tail = tail[1:]
		}
	}
	if err := sc.Err(); err != nil {
		return logSummary{}, fmt.Errorf("server log: %w", err)
	}
	s.tail = strings.Join(tail, "\n")
	return s, nil
}

// report prints the results as markdown.
func report(w io.Writer, opts options, wk wrk, pb pgbench, l loaded, logSum logSummary) {
	fmt.Fprintf(w, "machine: nproc %d%s, %s/%s; wrk, pgbench and the servers share these CPUs\n",
		runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "wrk: %s <url>, after a %s warm-up per target; quick loads: -d%ds, no warm-up\n",
		strings.Join(wk.args(opts.duration, ""), " "), opts.warmup, int(min(opts.duration, quickDuration)/time.Second))
	fmt.Fprintf(w, "pgbench: %s -f add_to_cart.sql, right after the add to cart's wrk run; both queue on one cart's row lock\n",
		strings.Join(pb.flags(opts.duration), " "))
	fmt.Fprintf(w, "page: GET / is %d bytes of %s\n\n", len(l.page.body), l.page.contentType)

	fmt.Fprintln(w, "| scenario | req/s | p50 ms | p99 ms | notes |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|")
	for _, r := range l.results {
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f | %s |\n", r.name, r.wrk.rps, r.wrk.p50, r.wrk.p99, notes(r))
	}
	fmt.Fprintf(w, "| pgbench: the add's SQL alone (5 statements, 1 transaction) | %.0f | | | %s |\n",
		l.pgbench.tps, pgbenchNotes(l.pgbench.pgbenchResult))
	fmt.Fprintln(w)

	var mem memory
	for _, r := range l.results {
		if r.server {
			mem = r.mem
		}
		if base, ok := find(l.results, r.baseline); ok {
			ratio(w, "real/baseline", r.wrk.rps, base.wrk.rps)
		}
	}
	if add, ok := find(l.results, addToCartName); ok {
		ratio(w, "add to cart, server/pgbench", add.wrk.rps, l.pgbench.tps)
	}
	reportCull(w, l.cull)
	reportWrites(w, l.results)
	v := l.pgbench.script
	fmt.Fprintf(w, "add to cart: product %d, guest user %s, cart %s, session token hash \\x%s\n",
		v.ProductID, v.UserID, v.CartID, v.TokenHash)
	const mib = 1 << 20
	fmt.Fprintf(w, "server RSS after load: %d MiB (peak %d MiB)\n", mem.rss/mib, mem.peak/mib)
	fmt.Fprintf(w, "server log: %d lines, %d errors, %d warnings\n", logSum.lines, logSum.errors, logSum.warnings)
	if logSum.errors > 0 {
		fmt.Fprintf(w, "first error: %s\n", logSum.firstError)
	}
	if logSum.warnings > 0 {
		fmt.Fprintf(w, "first warning: %s\n", logSum.firstWarning)
	}
	for _, r := range l.results {
		if r.wrk.non2xx > 0 {
			fmt.Fprintf(w, "\n**WARNING: %s got %d error responses (status ≥ 400) out of %d: its numbers are not valid.**\n",
				r.name, r.wrk.non2xx, r.wrk.requests)
		}
	}
	if l.pgbench.failed > 0 {
		fmt.Fprintf(w, "\n**WARNING: pgbench had %d failed transactions out of %d: its numbers are not valid.**\n",
			l.pgbench.failed, l.pgbench.transactions)
	}
}

// ratio prints num/den against ratioTarget.
func ratio(w io.Writer, label string, num, den float64) {
	if den <= 0 {
		return
	}
	r := num / den
	verdict := ""
	if r < ratioTarget {
		verdict = " BELOW TARGET"
	}
	fmt.Fprintf(w, "ratio %s: %.2f (target ≥ %.1f)%s\n", label, r, ratioTarget, verdict)
}

// reportWrites prints what the anonymous loads wrote: nothing, or by load
// and table what they should not have.
func reportWrites(w io.Writer, results []result) {
	var loads, wrote []string
	var rows int64
	for _, r := range results {
		if !r.anonymous {
			continue
		}
		page, _, _ := strings.Cut(r.name, " (")
		loads = append(loads, page)
		if n := r.writes.total(); n > 0 {
			rows += n
			wrote = append(wrote, fmt.Sprintf("- %s: %s", r.name, r.writes))
		}
	}
	if len(loads) == 0 {
		return
	}
	if rows == 0 {
		fmt.Fprintf(w, "anonymous page views wrote: 0 rows (pg_stat_user_tables over %s, warm-ups included)\n",
			strings.Join(loads, ", "))
		return
	}
	fmt.Fprintf(w, "**anonymous page views wrote: %d rows**\n%s\n", rows, strings.Join(wrote, "\n"))
}

// notes is the notes cell of a row: the request count, and loudly, errors.
func notes(r result) string {
	n := fmt.Sprintf("%d requests", r.wrk.requests)
	if r.quick {
		n = "quick load, " + n
	}
	if r.wrk.non2xx > 0 {
		n += fmt.Sprintf(", **%d NON-2XX/3XX**", r.wrk.non2xx)
	}
	if r.wrk.socketErrors != "" {
		n += ", socket errors: " + r.wrk.socketErrors
	}
	return n
}

// pgbenchNotes is the notes cell of pgbench's row.
func pgbenchNotes(r pgbenchResult) string {
	n := fmt.Sprintf("%d transactions, latency average %.2f ms", r.transactions, r.latency)
	if r.failed > 0 {
		n += fmt.Sprintf(", **%d FAILED**", r.failed)
	}
	return n
}

func find(results []result, name string) (result, bool) {
	for _, r := range results {
		if name != "" && r.name == name {
			return r, true
		}
	}
	return result{}, false
}

// failures fails the run, after the table is printed, on error responses
// and failed transactions (throughput of errors says nothing about the
// shop), and on anonymous page views that wrote.
func failures(l loaded) error {
	var errs []error
	for _, r := range l.results {
		if r.wrk.non2xx > 0 {
			errs = append(errs, fmt.Errorf("%s: %d non-2xx/3xx responses", r.name, r.wrk.non2xx))
		}
		if n := r.writes.total(); r.anonymous && n > 0 {
			errs = append(errs, fmt.Errorf("%s: an anonymous page view must write nothing, these wrote %d rows: %s", r.name, n, r.writes))
		}
	}
	if l.pgbench.failed > 0 {
		errs = append(errs, fmt.Errorf("pgbench: %d failed transactions", l.pgbench.failed))
	}
	if err := cullFailures(l.cull); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cpuModel is ", <model name>" from /proc/cpuinfo, or "" when unknown.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if key, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
			return ", " + strings.TrimSpace(val)
		}
	}
	return ""
}
