package e2e

// A throwaway PostgreSQL cluster for the fault tests: created with initdb in
// a temporary directory, served on a free loopback port, stopped and started
// at will, and removed when the test ends. Restarting it disturbs no other
// test, unlike the shared server that modeltest.NewDB uses.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// pgClusterDatabase is the database every cluster gets, as DESIGN.md names it.
const pgClusterDatabase = "shopfront"

// pgClusterPrefix names the temporary directories of clusters, so that
// newPGCluster can find the ones a killed test binary left behind.
const pgClusterPrefix = "shopfront-e2e-pg-"

// pgCluster is a PostgreSQL server of one test. Stop and Start must be
// called from one goroutine at a time.
type pgCluster struct {
	t      *testing.T
	base   string // owns data/, the socket and server.log
	data   string
	port   int
	pgctl  string
	asRoot bool

	mu      sync.Mutex
	running bool
}

// newPGCluster creates a cluster, starts it, creates the shopfront database
// and removes it all in t.Cleanup. It skips the test, loudly, when the
// PostgreSQL server binaries are not installed, and fails it instead when
// E2E_REQUIRE_BROWSER is set (CI has them).
func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	initdb, err1 := pgClusterBinary("initdb")
	pgctl, err2 := pgClusterBinary("pg_ctl")
	if err := errors.Join(err1, err2); err != nil {
		msg := "PostgreSQL server binaries not installed (" + err.Error() +
			"); fault tests did not run (apt-get install -y postgresql)"
		if os.Getenv("E2E_REQUIRE_BROWSER") != "" {
			t.Fatal("FAILED: " + msg + "; E2E_REQUIRE_BROWSER is set")
		}
		msg = "SKIPPED: " + msg
		fmt.Fprintln(os.Stderr, msg) // t.Skip output is hidden without -v
		t.Skip(msg)
	}
	pgClusterReapOrphans(t, pgctl)

	// Not t.TempDir: its parents are private to root, and the server runs as
	// postgres when we are root.
	base, err := os.MkdirTemp("", pgClusterPrefix)
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{t: t, base: base, data: filepath.Join(base, "data"), pgctl: pgctl, asRoot: os.Geteuid() == 0}
	// The owner's pid, for pgClusterReapOrphans of a later run.
	if err := os.WriteFile(filepath.Join(base, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.destroy)
	if c.asRoot {
		// initdb refuses to run as root: the cluster belongs to postgres.
		if out, err := exec.Command("chown", "-R", "postgres:postgres", base).CombinedOutput(); err != nil {
			t.Fatalf("chown %s to postgres: %v\n%s", base, err, out)
		}
	}
	out, err := c.command(initdb, "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--no-sync", "--no-instructions")
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}

	// A free port can be taken between our probe and the server's bind:
	// try a few.
	for attempt := 1; ; attempt++ {
		c.port = pgClusterFreePort(t)
		if err = c.start(); err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("starting PostgreSQL: %v\n%s", err, c.Log())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", c.serverURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pgClusterDatabase); err != nil {
		t.Fatalf("creating the %s database: %v", pgClusterDatabase, err)
	}
	t.Logf("PostgreSQL cluster in %s on 127.0.0.1:%d", base, c.port)
	return c
}

// URL is the shopfront database of the cluster, as a DATABASE_URL.
func (c *pgCluster) URL() string { return c.serverURL(pgClusterDatabase) }

func (c *pgCluster) serverURL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// Stop shuts the server down (fast mode: sessions are cut, as in an outage)
// and returns when it is down.
func (c *pgCluster) Stop() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if out, err := c.command(c.pgctl, "-D", c.data, "-w", "-t", "60", "-m", "fast", "stop"); err != nil {
		c.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
	c.running = false
}

// Start starts the server again on the same port and returns when it
// accepts connections.
func (c *pgCluster) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatalf("pg_ctl start: %v\n%s", err, c.Log())
	}
}

func (c *pgCluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off", c.port, c.base)
	out, err := c.command(c.pgctl, "-D", c.data, "-l", c.logPath(), "-w", "-t", "60", "-o", opts, "start")
	if err != nil {
		// A server that did not come up may still be on its way down.
		c.command(c.pgctl, "-D", c.data, "-w", "-m", "immediate", "stop")
		return fmt.Errorf("%w\n%s", err, out)
	}
	c.running = true
	return nil
}

// Log is the server's log so far.
func (c *pgCluster) Log() string {
	b, err := os.ReadFile(c.logPath())
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	return string(b)
}

func (c *pgCluster) logPath() string { return filepath.Join(c.base, "server.log") }

// destroy stops the server, whatever state the test left it in, and removes
// the cluster. The server log goes to the test log when the test failed.
func (c *pgCluster) destroy() {
	if c.t.Failed() {
		c.t.Logf("PostgreSQL server log (last 4 KiB):\n%s", pgClusterTail(c.Log(), 4096))
	}
	if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil {
		if out, err := c.command(c.pgctl, "-D", c.data, "-w", "-t", "60", "-m", "immediate", "stop"); err != nil {
			c.t.Errorf("stopping the PostgreSQL cluster in %s: %v\n%s", c.base, err, out)
			return // keep the directory: a later run reaps it
		}
	}
	if err := os.RemoveAll(c.base); err != nil {
		c.t.Errorf("removing the PostgreSQL cluster: %v", err)
	}
}

// command runs a PostgreSQL tool, as the postgres user when we are root.
func (c *pgCluster) command(bin string, args ...string) ([]byte, error) {
	return pgClusterRun(c.asRoot, c.base, bin, args...)
}

func pgClusterRun(asRoot bool, dir, bin string, args ...string) ([]byte, error) {
	if asRoot {
		args = append([]string{"-u", "postgres", "--", bin}, args...)
		bin = "runuser"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir // the postgres user may not enter the test's directory
	return cmd.CombinedOutput()
}

// pgClusterReapOrphans stops and removes the clusters of test binaries that
// died without their cleanup (a `go test -timeout` panic, a kill). A cluster
// whose owner still runs belongs to a test in progress and is left alone.
func pgClusterReapOrphans(t *testing.T, pgctl string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pgClusterPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || pgClusterAlive(pid) {
			continue
		}
		data := filepath.Join(dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			out, err := pgClusterRun(os.Geteuid() == 0, dir, pgctl, "-D", data, "-w", "-m", "immediate", "stop")
			if err != nil && !strings.Contains(string(out), "Is server running?") && !strings.Contains(string(out), "No such process") {
				t.Logf("reaping the orphaned cluster %s: %v\n%s", dir, err, out)
				continue
			}
		}
		os.RemoveAll(dir)
		t.Logf("reaped the cluster %s of the dead test process %d", dir, pid)
	}
}

// pgClusterAlive reports whether a process with pid exists.
func pgClusterAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// pgClusterBinary finds a PostgreSQL server binary on PATH or in Debian's
// place, as cmd/devdb does.
func pgClusterBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin", name)
}

// pgClusterFreePort is a loopback TCP port that nothing listens on now.
func pgClusterFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pgClusterTail is the last n bytes of s.
func pgClusterTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
