package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// pgbench runs PostgreSQL's pgbench with as many clients as wrk has
// connections, so the database alone meets the contention the server met:
// every add of the one guest waits for the same cart row lock.
type pgbench struct {
	path    string
	clients int
	threads int
}

// flags are pgbench's flags for a run of d, without the script and the
// database. No vacuum (-n): the bench tables are not pgbench's own.
// Prepared statements (-M prepared) are what pgx does too.
func (p pgbench) flags(d time.Duration) []string {
	return []string{
		"-n", "-M", "prepared",
		"-c", strconv.Itoa(p.clients),
		"-j", strconv.Itoa(p.threads),
		"-T", strconv.Itoa(int(d / time.Second)),
	}
}

// run runs script against the database of dbURL for d.
func (p pgbench) run(ctx context.Context, dbURL, script string, d time.Duration) (pgbenchResult, error) {
	args := append(p.flags(d), "-f", script)
	// dbURL is pgbench's dbname argument, which may be a connection URI. It
	// stays out of the messages: it may hold a password.
	out, err := exec.CommandContext(ctx, p.path, append(args, dbURL)...).Output()
	if ctx.Err() != nil {
		return pgbenchResult{}, fmt.Errorf("pgbench interrupted: %w", ctx.Err())
	}
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return pgbenchResult{}, fmt.Errorf("pgbench %s: %w\n%s%s", strings.Join(args, " "), err, out, exitErr.Stderr)
		}
		return pgbenchResult{}, fmt.Errorf("pgbench %s: %w", strings.Join(args, " "), err)
	}
	return parsePgbench(out)
}

// pgbenchResult is what we read from pgbench's report.
type pgbenchResult struct {
	tps          float64 // without the initial connection time
	latency      float64 // average, milliseconds
	transactions int64
	failed       int64
}

// parsePgbench reads pgbench's report (PostgreSQL 14 or later).
func parsePgbench(out []byte) (pgbenchResult, error) {
	var r pgbenchResult
	var haveTPS, haveLatency bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		var err error
		switch {
		// "tps = 1234.567890 (without initial connection time)"
		case len(f) > 2 && f[0] == "tps" && f[1] == "=" && strings.HasSuffix(line, "(without initial connection time)"):
			r.tps, err = strconv.ParseFloat(f[2], 64)
			haveTPS = true
		// "latency average = 2.591 ms"
		case len(f) == 5 && f[0] == "latency" && f[1] == "average" && f[4] == "ms":
			r.latency, err = strconv.ParseFloat(f[3], 64)
			haveLatency = true
		// "number of transactions actually processed: 12345" ("12345/20000" with -t)
		case strings.HasPrefix(line, "number of transactions actually processed:"):
			done, _, _ := strings.Cut(f[len(f)-1], "/")
			r.transactions, err = strconv.ParseInt(done, 10, 64)
		// "number of failed transactions: 0 (0.000%)"
		case strings.HasPrefix(line, "number of failed transactions:") && len(f) > 4:
			r.failed, err = strconv.ParseInt(f[4], 10, 64)
		}
		if err != nil {
			return pgbenchResult{}, fmt.Errorf("pgbench report line %q: %w", line, err)
		}
	}
	if !haveTPS || !haveLatency {
		return pgbenchResult{}, fmt.Errorf("pgbench report without tps (without initial connection time) or latency average:\n%s", out)
	}
	return r, nil
}
