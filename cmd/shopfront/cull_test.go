package main

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"shopfront/models"
	"shopfront/models/modeltest"
)

// cullDB is a fresh database holding 25 stale guests, 3 fresh ones, a
// registered account unseen for years and two expired sessions.
func cullDB(t *testing.T) (*gorm.DB, func(string) string) {
	t.Helper()
	url := modeltest.NewDatabase(t)
	db, sqlDB, err := models.Open(context.Background(), url, models.PoolConfig{MaxOpen: 4}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	for _, q := range []string{
		`INSERT INTO users (id, kind, last_seen_at)
		 SELECT gen_random_uuid(), 'guest', now() - interval '41 days' - g * interval '1 minute' FROM generate_series(1, 25) g`,
		`INSERT INTO users (id, kind, last_seen_at)
		 SELECT gen_random_uuid(), 'guest', now() - interval '39 days' FROM generate_series(1, 3)`,
		`INSERT INTO users (id, kind, email, password_hash, email_verified_at, last_seen_at)
		 VALUES (gen_random_uuid(), 'registered', 'old@example.com', 'x', now(), now() - interval '5 years')`,
		`INSERT INTO sessions (id, user_id, token_hash, expires_at)
		 SELECT gen_random_uuid(), id, uuid_send(gen_random_uuid()), now() - interval '1 day'
		 FROM users, generate_series(1, 2) WHERE kind = 'registered'`,
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	return db, envFrom(map[string]string{"DATABASE_URL": url})
}

func users(t *testing.T, db *gorm.DB) int {
	t.Helper()
	var n int
	if err := db.Raw("SELECT count(*) FROM users").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCullCommand(t *testing.T) {
	db, getenv := cullDB(t)
	ctx := context.Background()
	runCull := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, append([]string{"cull"}, args...), getenv, strings.NewReader(""), &out); err != nil {
			t.Fatalf("cull %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}

	out := runCull("--dry-run")
	for _, want := range []string{
		"would cull 25 guests (last seen before ",
		"… and 20 more",
		"would remove 2 expired sessions, 0 spent email tokens, 0 ended rate-limit windows",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if got := users(t, db); got != 29 {
		t.Fatalf("%d users after a dry run, want 29", got)
	}

	out = runCull("--batch", "10")
	if !regexp.MustCompile(`(?m)^culled 25 guests in 3 batches \(\d+\.\d s, \d+ guests/s\)$`).MatchString(out) {
		t.Errorf("summary missing:\n%s", out)
	}
	if !strings.Contains(out, "removed 2 expired sessions") {
		t.Errorf("housekeeping missing:\n%s", out)
	}
	if got := users(t, db); got != 4 {
		t.Fatalf("%d users after the cull, want the 3 fresh guests and the account", got)
	}

	if out := runCull(); !strings.Contains(out, "none culled") {
		t.Errorf("second cull:\n%s", out)
	}

	t.Run("another cull running", func(t *testing.T) {
		sqlDB, _ := db.DB()
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", models.CullLockKey); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", models.CullLockKey)
		for _, args := range [][]string{nil, {"--wait", "100ms"}} {
			if out := runCull(args...); !strings.Contains(out, "another cull is running") {
				t.Errorf("cull %v with the lock taken:\n%s", args, out)
			}
		}
	})
}

func TestCullCommandRefusesBadFlags(t *testing.T) {
	getenv := envFrom(map[string]string{"DATABASE_URL": "postgres://nowhere.invalid/x"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--batch", "many"}, `invalid value "many" for flag -batch`},
		{[]string{"--batch", "0"}, "--batch must be between 1 and 100000, got 0"},
		{[]string{"--batch", "100001"}, "--batch must be between 1 and 100000"},
		{[]string{"--wait", "soon"}, `invalid value "soon" for flag -wait`},
		{[]string{"now"}, `unexpected argument "now"`},
	} {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"cull"}, tc.args...), getenv, strings.NewReader(""), &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cull %v: err = %v, want %q", tc.args, err, tc.want)
		}
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"cull", "--help"}, getenv, strings.NewReader(""), &out); err != nil {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(out.String(), "usage: shopfront cull") || !strings.Contains(out.String(), "-dry-run") {
		t.Fatalf("--help prints:\n%s", out.String())
	}
}

func TestCullLoop(t *testing.T) {
	db, _ := cullDB(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		cullLoop(ctx, log, models.NewCuller(db), 960*time.Hour, 0, 20*time.Millisecond)
	}()
	// The first run culls; a later one finds nothing.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "nothing to delete"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no second cull:\n%s", logs.String())
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not stop with its context")
	}
	if !regexp.MustCompile(`msg="cull done" guests=25 batches=1 sessions=2 `).MatchString(logs.String()) {
		t.Fatalf("logs lack the summary:\n%s", logs.String())
	}
	if got := users(t, db); got != 4 {
		t.Fatalf("%d users left, want 4", got)
	}
}
