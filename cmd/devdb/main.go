// Command devdb finds or makes the PostgreSQL that `make run` and `make test`
// use, and prints its URL: DATABASE_URL when set; else a server on
// localhost:5432; else a project-local cluster under .data/pg, created with
// initdb (as the postgres user when run as root) and started with pg_ctl.
// It makes sure the shopfront database exists.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

const (
	database  = "shopfront"
	localPort = "54329" // the project-local cluster's port, clear of a system server
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	if u := getenv("DATABASE_URL"); u != "" {
		fmt.Fprintln(stdout, u)
		return nil
	}
	probe := getenv("DEVDB_PROBE") // host:port to look at first; tests point it elsewhere
	if probe == "" {
		probe = "localhost:5432"
	}
	for _, role := range roles() {
		server := fmt.Sprintf("postgres://%s@%s/postgres?sslmode=disable", url.User(role).String(), probe)
		if ensureDatabase(ctx, server) == nil {
			fmt.Fprintln(stdout, withDatabase(server, database))
			return nil
		}
	}
	server, err := localCluster(ctx, stderr)
	if err != nil {
		return err
	}
	if err := ensureDatabase(ctx, server); err != nil {
		return err
	}
	fmt.Fprintln(stdout, withDatabase(server, database))
	return nil
}

// roles are the roles a local server's trust authentication may know us by.
func roles() []string {
	var out []string
	if u, err := user.Current(); err == nil {
		out = append(out, u.Username)
	}
	return append(out, "postgres")
}

func withDatabase(server, name string) string {
	u, _ := url.Parse(server)
	u.Path = "/" + name
	return u.String()
}

// ensureDatabase connects to server and creates the shopfront database when
// it is missing.
func ensureDatabase(ctx context.Context, server string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", server)
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	err = db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", database).Scan(&exists)
	if err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+database)
	return err
}

// localCluster starts (creating it first if needed) the cluster in .data/pg.
func localCluster(ctx context.Context, stderr io.Writer) (string, error) {
	dir, err := filepath.Abs(filepath.Join(".data", "pg"))
	if err != nil {
		return "", err
	}
	initdb, err := pgBinary("initdb")
	if err != nil {
		return "", err
	}
	pgctl, err := pgBinary("pg_ctl")
	if err != nil {
		return "", err
	}
	asRoot := os.Geteuid() == 0
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(stderr, "devdb: creating a PostgreSQL cluster in", dir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		if asRoot {
			// initdb refuses to run as root: the cluster belongs to postgres.
			if err := exec.CommandContext(ctx, "chown", "-R", "postgres:postgres", filepath.Dir(dir)).Run(); err != nil {
				return "", fmt.Errorf("chown %s to postgres: %w", dir, err)
			}
		}
		if err := pgCommand(ctx, asRoot, stderr, initdb, "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
			return "", fmt.Errorf("initdb: %w", err)
		}
	}
	server := "postgres://postgres@127.0.0.1:" + localPort + "/postgres?sslmode=disable"
	if ensureDatabase(ctx, server) == nil {
		return server, nil // already running
	}
	fmt.Fprintln(stderr, "devdb: starting PostgreSQL on 127.0.0.1:"+localPort)
	err = pgCommand(ctx, asRoot, stderr, pgctl, "-D", dir, "-l", filepath.Join(dir, "server.log"), "-w",
		"-o", "-p "+localPort+" -c listen_addresses=127.0.0.1 -k "+dir, "start")
	if err != nil {
		return "", fmt.Errorf("pg_ctl start: %w", err)
	}
	return server, nil
}

// pgBinary finds a PostgreSQL server binary on PATH or in Debian's place.
func pgBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("no PostgreSQL answers on localhost:5432 and %s is not installed: install PostgreSQL's server (apt-get install postgresql) or set DATABASE_URL", name)
}

// pgCommand runs a PostgreSQL tool, as the postgres user when we are root.
func pgCommand(ctx context.Context, asRoot bool, stderr io.Writer, bin string, args ...string) error {
	if asRoot {
		args = append([]string{"-u", "postgres", "--", bin}, args...)
		bin = "runuser"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	return cmd.Run()
}
