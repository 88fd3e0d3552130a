package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"shopfront/models/modeltest"
)

// syncBuffer is a bytes.Buffer the server's goroutines may write to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMigrateSeedServe runs the commands as an operator would: migrate and
// seed twice (idempotent), then serve until cancelled.
func TestMigrateSeedServe(t *testing.T) {
	env := envFrom(map[string]string{
		"DATABASE_URL": modeltest.NewDatabase(t),
		"ADDR":         "127.0.0.1:0",
		"SECRET_KEY":   strings.Repeat("s", 32),
	})
	ctx := context.Background()
	for _, cmd := range []string{"migrate", "migrate", "seed", "seed"} {
		var out bytes.Buffer
		if err := run(ctx, []string{cmd}, env, strings.NewReader(""), &out); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out.String())
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env, strings.NewReader(""), out) }()

	addr := regexp.MustCompile(`addr=(http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addr.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		cancel()
		t.Fatalf("server did not start:\n%s", out.String())
	}
	resp, err := http.Get(base + "/?q=kettle&token=secret-value")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not shut down")
	}
	logs := out.String()
	if !strings.Contains(logs, "path=/ ") {
		t.Fatalf("request not logged:\n%s", logs)
	}
	if strings.Contains(logs, "secret-value") || strings.Contains(logs, "kettle") {
		t.Fatalf("request log contains the query string:\n%s", logs)
	}
}
