// Package modeltest gives tests a fresh, migrated, seeded PostgreSQL database
// each, cloned from a template that is migrated once per schema version.
package modeltest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"shopfront/migrations"
	"shopfront/models"
)

// DefaultURL is the server tests use when DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// serverURL is the PostgreSQL that test databases are created on.
func serverURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// withDatabase returns rawURL pointing at database name.
func withDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// admin is one connection pool per test binary to the server's maintenance
// database, from which templates and test databases are created.
var admin = sync.OnceValues(func() (*sql.DB, error) {
	u, err := withDatabase(serverURL(), "postgres")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	if err := db.Ping(); err != nil {
		return nil, fmt.Errorf("connect to test PostgreSQL at %s: %w", u, err)
	}
	return db, nil
})

// template is the migrated template database's name, created once per test
// binary (and shared by test binaries through an advisory lock).
var template = sync.OnceValues(func() (string, error) {
	db, err := admin()
	if err != nil {
		return "", err
	}
	name, err := templateName()
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	// Test packages run in parallel processes; one of them builds the template.
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return "", err
	}
	defer conn.ExecContext(ctx, "SELECT pg_advisory_unlock(727274)")

	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	conn.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+building+`" WITH (FORCE)`)
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE "`+building+`"`); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrateDatabase(ctx, building); err != nil {
		conn.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+building+`" WITH (FORCE)`)
		return "", err
	}
	// Renamed only once complete, so a crash never leaves a half-built template.
	if _, err := conn.ExecContext(ctx, `ALTER DATABASE "`+building+`" RENAME TO "`+name+`"`); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	return name, nil
})

// templateName changes whenever a migration does.
func templateName() (string, error) {
	sum := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		sum.Write([]byte(path))
		sum.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	return "shopfront_tpl_" + hex.EncodeToString(sum.Sum(nil))[:16], nil
}

func migrateDatabase(ctx context.Context, name string) error {
	u, err := withDatabase(serverURL(), name)
	if err != nil {
		return err
	}
	_, sqlDB, err := models.Open(ctx, u, models.PoolConfig{MaxOpen: 2}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	return models.Migrate(ctx, sqlDB, slog.New(slog.DiscardHandler))
}

// NewDatabase creates a fresh database cloned from the migrated template and
// returns its URL; it is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	db, err := admin()
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	tpl, err := template()
	if err != nil {
		t.Fatalf("test database template: %v", err)
	}
	name := "shopfront_test_" + strings.ToLower(rand.Text()[:16])
	if _, err := db.Exec(`CREATE DATABASE "` + name + `" TEMPLATE "` + tpl + `" STRATEGY FILE_COPY`); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	u, err := withDatabase(serverURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// NewDB returns GORM on a fresh, migrated database holding the demo catalog.
func NewDB(t testing.TB) *gorm.DB {
	t.Helper()
	db := Open(t, NewDatabase(t))
	if _, err := models.NewCatalog(db).Seed(context.Background()); err != nil {
		t.Fatalf("seed test database: %v", err)
	}
	return db
}

// Open returns GORM on the database at url, closed when the test ends.
func Open(t testing.TB, url string) *gorm.DB {
	t.Helper()
	db, sqlDB, err := models.Open(context.Background(), url, models.PoolConfig{MaxOpen: 10},
		slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	return db
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
