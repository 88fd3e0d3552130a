package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The cull measurement, with -cull N: N stale guests are generated, then
// `shopfront cull` deletes them while wrk adds to the cart of the load's
// guest, who is not stale.
const (
	// cullRateTarget and cullP99Target are the issue's: the cull deletes at
	// least 20,000 guests/s, and the add to cart's p99 during it is at most
	// twice its p99 idle.
	cullRateTarget = 20_000
	cullP99Target  = 2.0
	// cullAfter is the cull's GUEST_CULL_AFTER, the default; the generated
	// guests were last seen staleDays ago, well before it.
	cullAfter = "960h"
	staleDays = 60
	// cullWait is the cull's --wait: serve's own cull could hold the lock
	// at that moment; the cull must not skip its work then.
	cullWait = 30 * time.Second
	// cullLead is how long wrk runs alone before the cull starts, so its
	// connections are open and its load steady when the cull begins.
	cullLead = time.Second
	// cullMinRate bounds the load's length: wrk stops on its own (-d) if a
	// cull is slower than this, and the run fails rather than loading the
	// server for ever.
	cullMinRate = 1_000 // guests/s
	// serveFirstCull is when serve's own first cull has run: a minute after
	// it starts (cullFirstAfter in cmd/shopfront), and some slack. Its
	// housekeeping deletes expired sessions, so the guests are generated
	// only after it, or it could take their sessions from the measured cull.
	serveFirstCull = time.Minute + 10*time.Second
	// cullHint is how to turn the measurement on; the flag help and the
	// report of a run without it print it.
	cullHint = "go run ./cmd/bench -cull 1000000"
)

// cullRun is what the cull measurement found.
type cullRun struct {
	guests     int
	generated  time.Duration // the INSERT of the stale guests
	settled    time.Duration // the VACUUM ANALYZE and CHECKPOINT after it
	checkpoint error         // why the CHECKPOINT failed, nil if it ran
	idle       result        // the add to cart beside the stale guests, before the cull
	during     result        // the add to cart during the cull
	summary    cullSummary
	wall       time.Duration // the cull process, from start to exit
}

// cullSummary is the summary line of `shopfront cull`:
// "culled N guests in B batches (X s, R guests/s)".
type cullSummary struct {
	line    string
	guests  int64
	batches int
	secs    float64 // the cull's own clock, housekeeping included
	rate    float64 // guests/s, as the cull computed it
}

// cullIdleName and cullLoadName name the add-to-cart rows of the cull
// measurement in the table.
func cullIdleName(n int) string {
	return fmt.Sprintf("POST /cart/items, idle, beside %d stale guests", n)
}

func cullLoadName(n int) string {
	return fmt.Sprintf("POST /cart/items during a cull of %d guests", n)
}

// cullUnderLoad measures the cull of b.opts.cull stale guests while wrk runs
// add, the add-to-cart scenario. It first measures add idle with the stale
// guests in place, so the two p99s compare the same tables and guest.
func (b *bench) cullUnderLoad(ctx context.Context, srv *server, add scenario) (cullRun, error) {
	n := b.opts.cull
	if err := sleep(ctx, time.Until(srv.started.Add(serveFirstCull))); err != nil {
		return cullRun{}, err
	}
	c := cullRun{guests: n}
	var err error
	if c.generated, err = generateStaleGuests(ctx, b.db, n); err != nil {
		return cullRun{}, err
	}
	if c.settled, c.checkpoint, err = settle(ctx, b.db); err != nil {
		return cullRun{}, err
	}
	idle := add
	idle.name = cullIdleName(n)
	if c.idle, err = b.measure(ctx, srv, idle); err != nil {
		return cullRun{}, err
	}
	during := add
	during.name = cullLoadName(n)
	if c.during, c.summary, c.wall, err = b.cullBeside(ctx, srv, during); err != nil {
		return cullRun{}, err
	}
	return c, nil
}

// cullBeside runs the cull while wrk runs sc: wrk starts cullLead before the
// cull and is stopped as soon as the cull exits, so its figures are those of
// the cull's load.
func (b *bench) cullBeside(ctx context.Context, srv *server, sc scenario) (result, cullSummary, time.Duration, error) {
	limit := cullLead + time.Duration(b.opts.cull/cullMinRate)*time.Second + time.Minute
	stop := make(chan struct{})
	type load struct {
		res wrkResult
		err error
	}
	loaded := make(chan load, 1)
	go func() {
		res, err := b.wrk.loadUntil(ctx, sc, limit, stop)
		loaded <- load{res, err}
	}()
	var sum cullSummary
	var wall time.Duration
	err := sleep(ctx, cullLead)
	if err == nil {
		sum, wall, err = runCull(ctx, b.opts.bin, b.dbURL)
	}
	close(stop)
	l := <-loaded
	if err := errors.Join(err, l.err); err != nil {
		return result{}, cullSummary{}, 0, err
	}
	// A server that stopped during the run leaves wrk's numbers meaningless.
	if err := srv.running(); err != nil {
		return result{}, cullSummary{}, 0, fmt.Errorf("%s: %w", sc.name, err)
	}
	r := result{scenario: sc, wrk: l.res}
	mem, err := readMemory(srv.cmd.Process.Pid)
	if err != nil {
		return result{}, cullSummary{}, 0, fmt.Errorf("%s: server memory: %w", sc.name, err)
	}
	r.mem = mem
	return r, sum, wall, nil
}

// generateStaleGuests inserts n guests last seen staleDays ago, each with
// an expired session, a cart and one cart line, as an abandoned guest has,
// in one statement. Like the app's, the ids are UUIDv7s of when the row was
// made, here when the guest was last seen; the guests are spread over a day,
// in the order the cull walks them.
func generateStaleGuests(ctx context.Context, db *sql.DB, n int) (time.Duration, error) {
	start := time.Now()
	_, err := db.ExecContext(ctx, `
		WITH u AS (
			INSERT INTO users (id, kind, created_at, updated_at, last_seen_at)
			SELECT `+uuidV7("s.seen")+`, 'guest', s.seen, s.seen, s.seen
			FROM (SELECT now() - make_interval(days => $2::int) - g * interval '86399 milliseconds' / $1::int AS seen
			      FROM generate_series(1, $1::int) g) s
			RETURNING id, last_seen_at
		), s AS (
			-- A session lasts GUEST_TTL (720h) from when it was last seen.
			INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, last_seen_at)
			SELECT `+uuidV7("last_seen_at")+`, id, sha256(uuid_send(id)), last_seen_at,
			       last_seen_at + interval '720 hours', last_seen_at
			FROM u
		), c AS (
			INSERT INTO carts (id, user_id, created_at, updated_at)
			SELECT `+uuidV7("last_seen_at")+`, id, last_seen_at, last_seen_at FROM u
			RETURNING id
		)
		-- The lines go round the catalog, not all to one product.
		INSERT INTO cart_items (cart_id, product_id, quantity)
		SELECT c.id, p.ids[1 + (row_number() OVER () % cardinality(p.ids))], 1
		FROM c, (SELECT array_agg(id ORDER BY id) AS ids FROM products) p`, n, staleDays)
	if err != nil {
		return 0, fmt.Errorf("generate %d stale guests: %w", n, err)
	}
	return time.Since(start), nil
}

// uuidV7 is SQL for a random UUIDv7 of the time ts (PostgreSQL 15 has no
// uuidv7()): 48 bits of Unix milliseconds, the version, the variant, random.
// It is models' test helper of the same name.
func uuidV7(ts string) string {
	return `(lpad(to_hex((extract(epoch FROM ` + ts + `) * 1000)::bigint), 12, '0') || '7' ||
		substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid`
}

// settle makes the tables look as they would in production, where the
// stale guests' rows are weeks old: vacuumed (hint bits set, visibility map
// up to date) and analyzed. Without it the cull and the idle load would
// meet autovacuum, which the bulk insert sets off, and do the first reads'
// page writes. The CHECKPOINT then writes out the insert's dirty pages,
// which the cull would otherwise pay for. Only a superuser or a member of
// pg_checkpoint may checkpoint; without it the run goes on, and says so.
func settle(ctx context.Context, db *sql.DB) (took time.Duration, checkpoint, err error) {
	start := time.Now()
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE users, sessions, carts, cart_items`); err != nil {
		return 0, nil, fmt.Errorf("vacuum analyze the stale guests: %w", err)
	}
	_, err = db.ExecContext(ctx, `CHECKPOINT`)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		return time.Since(start), err, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint: %w", err)
	}
	return time.Since(start), nil, nil
}

// runCull runs `shopfront cull` on the bench database and reads its
// summary. wall is the process's time, connecting included.
func runCull(ctx context.Context, bin, dbURL string) (_ cullSummary, wall time.Duration, _ error) {
	cmd := exec.CommandContext(ctx, bin, "cull", "--wait", cullWait.String())
	cmd.Env = shopfrontEnv(dbURL, "GUEST_CULL_AFTER="+cullAfter)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall = time.Since(start)
	if err != nil {
		return cullSummary{}, 0, fmt.Errorf("%s cull: %w\n%s", bin, err, out)
	}
	s, err := parseCullSummary(out)
	if err != nil {
		return cullSummary{}, 0, fmt.Errorf("%s cull: %w", bin, err)
	}
	return s, wall, nil
}

// parseCullSummary finds the summary line in the output of `shopfront cull`,
// among its progress lines ("… N guests culled") and the housekeeping line.
func parseCullSummary(out []byte) (cullSummary, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "culled ") || strings.HasSuffix(line, "before the error") {
			continue
		}
		s := cullSummary{line: line}
		_, err := fmt.Sscanf(line, "culled %d guests in %d batches (%f s, %f guests/s)",
			&s.guests, &s.batches, &s.secs, &s.rate)
		if err != nil {
			return cullSummary{}, fmt.Errorf("cull summary %q: %w", line, err)
		}
		return s, nil
	}
	return cullSummary{}, fmt.Errorf("no summary line (culled N guests in B batches ...) in its output:\n%s", out)
}

// loadUntil runs sc with wrk until stop is closed, then interrupts wrk,
// which on SIGINT stops its threads and reports the run so far. limit is
// wrk's -d: reaching it before stop is an error, the load having ended early.
func (w wrk) loadUntil(ctx context.Context, sc scenario, limit time.Duration, stop <-chan struct{}) (wrkResult, error) {
	args := w.cmdArgs(sc, limit)
	cmd := exec.CommandContext(ctx, w.path, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w", strings.Join(args, " "), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if ctx.Err() != nil {
			return wrkResult{}, fmt.Errorf("wrk interrupted: %w", ctx.Err())
		}
		return wrkResult{}, fmt.Errorf("wrk %s ended before the cull did (%v):\n%s%s",
			strings.Join(args, " "), err, &out, &stderr)
	case <-stop:
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		return wrkResult{}, fmt.Errorf("interrupt wrk: %w", err)
	}
	if err := <-exited; err != nil {
		if ctx.Err() != nil {
			return wrkResult{}, fmt.Errorf("wrk interrupted: %w", ctx.Err())
		}
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s%s", strings.Join(args, " "), err, &out, &stderr)
	}
	return parseWrk(out.Bytes())
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// reportCull prints the cull measurement's lines under the table, or how
// to run it.
func reportCull(w io.Writer, c *cullRun) {
	if c == nil {
		fmt.Fprintf(w, "cull: not measured (%s measures the cull of 1,000,000 stale guests while wrk adds to cart)\n", cullHint)
		return
	}
	fmt.Fprintf(w, "cull: %d stale guests (last seen %d days ago; a session, a cart and a cart line each) generated in %.1f s, "+
		"then VACUUM ANALYZE and CHECKPOINT in %.1f s\n", c.guests, staleDays, c.generated.Seconds(), c.settled.Seconds())
	if c.checkpoint != nil {
		fmt.Fprintf(w, "cull: CHECKPOINT failed, the cull may write the insert's pages: %v\n", c.checkpoint)
	}
	fmt.Fprintf(w, "cull: shopfront cull --wait %s (GUEST_CULL_AFTER=%s, default --batch) ran %.1f s; "+
		"wrk started %s before it and was stopped when it exited; it said: %s\n",
		cullWait, cullAfter, c.wall.Seconds(), cullLead, c.summary.line)
	verdict := ""
	if c.summary.rate < cullRateTarget {
		verdict = " BELOW TARGET"
	}
	fmt.Fprintf(w, "cull: %d guests in %.1f s (%.0f guests/s, target ≥ %s)%s\n",
		c.summary.guests, c.summary.secs, c.summary.rate, thousands(cullRateTarget), verdict)
	if c.summary.guests != int64(c.guests) {
		fmt.Fprintf(w, "**cull: culled %d guests, but %d were stale**\n", c.summary.guests, c.guests)
	}
	if c.idle.wrk.p99 > 0 {
		r := c.during.wrk.p99 / c.idle.wrk.p99
		verdict = ""
		if r > cullP99Target {
			verdict = " ABOVE TARGET"
		}
		fmt.Fprintf(w, "add-to-cart p99 during cull / idle: %.2f (target ≤ %.0f×)%s\n", r, cullP99Target, verdict)
	}
}

// cullFailures fails the run when the cull did not delete exactly the stale
// guests: its rate would then be of something else.
func cullFailures(c *cullRun) error {
	if c == nil || c.summary.guests == int64(c.guests) {
		return nil
	}
	return fmt.Errorf("cull: culled %d guests, want the %d stale ones", c.summary.guests, c.guests)
}

// thousands formats n with commas: 20000 is "20,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
