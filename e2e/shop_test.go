package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"testing"
	"time"

	"gorm.io/gorm"

	"shopfront/handlers"
	"shopfront/mailer"
	"shopfront/mailer/mailtest"
	"shopfront/models"
	"shopfront/models/modeltest"
	"shopfront/static"
)

// shop is the real app, served on a loopback port over a fresh database,
// sending its mail through a real outbox worker to an SMTP sink.
type shop struct {
	URL  string
	DB   *gorm.DB
	Mail *mailtest.Server
}

// startShop serves the app for one test and stops it in t.Cleanup.
func startShop(t *testing.T) *shop {
	t.Helper()
	db := modeltest.NewDB(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sink := mailtest.NewServer(t)
	sender, err := mailer.New(mailer.Config{URL: sink.URL(), From: "Shopfront <no-reply@shop.test>"})
	if err != nil {
		t.Fatal(err)
	}
	worker := mailer.NewWorker(models.NewOutbox(db), sender, log)
	worker.PollInterval = 100 * time.Millisecond

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	deps := handlers.Deps{
		DB: db, SQL: sqlDB, Static: static.FS, Log: log, OnMail: worker.Kick,
		Config: handlers.Config{
			BaseURL:        base,
			SecretKey:      []byte("e2e-secret-key-that-is-at-least-32-bytes"),
			GuestTTL:       720 * time.Hour,
			TokenTTL:       time.Hour,
			GuestsEnabled:  true,
			RequestTimeout: 10 * time.Second,
			Limits:         handlers.DefaultLimits(),
		},
	}
	app, err := handlers.New(deps)
	if err != nil {
		t.Fatal(err)
	}
	resetJob, err := handlers.NewResetJob(deps)
	if err != nil {
		t.Fatal(err)
	}
	worker.Jobs = append(worker.Jobs, resetJob)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { worker.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	go app.Listener(ln)
	t.Cleanup(func() { app.ShutdownWithTimeout(5 * time.Second) })
	return &shop{URL: base.String(), DB: db, Mail: sink}
}
