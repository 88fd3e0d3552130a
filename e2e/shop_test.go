package e2e

import (
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	"shopfront/handlers"
	"shopfront/models/modeltest"
	"shopfront/static"
)

// shop is the real app, served on a loopback port over a fresh database.
type shop struct {
	URL string
}

// startShop serves the app for one test and stops it in t.Cleanup.
func startShop(t *testing.T) *shop {
	t.Helper()
	db := modeltest.NewDB(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	app, err := handlers.New(handlers.Deps{
		DB: db, SQL: sqlDB, Static: static.FS,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config: handlers.Config{
			BaseURL:        base,
			SecretKey:      []byte("e2e-secret-key-that-is-at-least-32-bytes"),
			GuestTTL:       720 * time.Hour,
			TokenTTL:       time.Hour,
			GuestsEnabled:  true,
			RequestTimeout: 10 * time.Second,
			Limits:         handlers.DefaultLimits(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second) })
	return &shop{URL: base.String()}
}
