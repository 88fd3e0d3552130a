// Command shopfront runs the Shopfront web shop and its maintenance tasks:
//
//	shopfront serve     serve the shop on ADDR
//	shopfront migrate   apply the database migrations
//	shopfront seed      load the demo catalog (idempotent)
//	shopfront cull      delete stale guests (--dry-run to list them)
//	shopfront admin create --email E --password-stdin
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"gorm.io/gorm"

	"shopfront/handlers"
	"shopfront/mailer"
	"shopfront/models"
	"shopfront/static"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shopfront:", err)
		os.Exit(1)
	}
}

// env is what every subcommand gets: the validated settings and the outputs.
type env struct {
	cfg    config
	log    *slog.Logger
	stdin  io.Reader
	stdout io.Writer
}

// commands maps each subcommand to the function that runs it.
var commands = map[string]func(ctx context.Context, e env, args []string) error{
	"serve":   serve,
	"migrate": migrate,
	"seed":    seed,
	"cull":    cull,
	"admin":   admin,
}

// run is main without the process: tests call it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage())
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q\n%s", args[0], usage())
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	var handler slog.Handler = slog.NewTextHandler(stdout, nil)
	if cfg.Web.Production {
		handler = slog.NewJSONHandler(stdout, nil)
	}
	return cmd(ctx, env{cfg: cfg, log: slog.New(handler), stdin: stdin, stdout: stdout}, args[1:])
}

func usage() string {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	return "usage: shopfront " + strings.Join(names, " | ")
}

// openDB connects to DATABASE_URL.
func openDB(ctx context.Context, e env) (*gorm.DB, func(), error) {
	db, sqlDB, err := models.Open(ctx, e.cfg.DatabaseURL, models.PoolConfig{MaxOpen: 20}, e.log)
	if err != nil {
		return nil, nil, err
	}
	return db, func() { sqlDB.Close() }, nil
}

func migrate(ctx context.Context, e env, _ []string) error {
	db, closeDB, err := openDB(ctx, e)
	if err != nil {
		return err
	}
	defer closeDB()
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return models.Migrate(ctx, sqlDB, e.log)
}

func seed(ctx context.Context, e env, _ []string) error {
	db, closeDB, err := openDB(ctx, e)
	if err != nil {
		return err
	}
	defer closeDB()
	n, err := models.NewCatalog(db).Seed(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "seeded %d products\n", n)
	return nil
}

// serve runs the web server until ctx ends, then drains it gracefully.
func serve(ctx context.Context, e env, _ []string) error {
	db, closeDB, err := openDB(ctx, e)
	if err != nil {
		return err
	}
	defer closeDB()
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if !e.cfg.Web.Production {
		// In development the schema follows the code; production migrates as a
		// separate release step.
		if err := models.Migrate(ctx, sqlDB, e.log); err != nil {
			return err
		}
		if e.cfg.Web.SecretKey == nil {
			if e.cfg.Web.SecretKey, err = devSecretKey(".data"); err != nil {
				return err
			}
		}
	}
	deps := handlers.Deps{DB: db, SQL: sqlDB, Log: e.log, Config: e.cfg.Web, Static: static.FS}
	var workers sync.WaitGroup
	defer workers.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before Wait: background workers stop with serve
	resetJob, err := handlers.NewResetJob(deps)
	if err != nil {
		return err
	}
	if e.cfg.SMTPURL != "" {
		sender, err := mailer.New(mailer.Config{URL: e.cfg.SMTPURL, From: e.cfg.MailFrom})
		if err != nil {
			return err
		}
		worker := mailer.NewWorker(models.NewOutbox(db), sender, e.log)
		worker.Jobs = append(worker.Jobs, resetJob)
		deps.OnMail = worker.Kick
		workers.Go(func() {
			if err := worker.Run(ctx); err != nil {
				e.log.Error("outbox worker stopped", "err", err)
			}
		})
	} else {
		// Development without SMTP: mail waits in the outbox, readable here;
		// forgot-password requests still become reset mail.
		deps.Config.DevMailbox = true
		kick := make(chan struct{}, 1)
		deps.OnMail = func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		workers.Go(func() { runJob(ctx, e.log, time.Second, kick, resetJob) })
		e.log.Info("no SMTP_URL: mail stays in the outbox, see /dev/mailbox")
	}
	// Stale guests go hourly; the advisory lock lets one instance at a time cull.
	workers.Go(func() { cullHourly(ctx, e, models.NewCuller(db)) })
	app, err := handlers.New(deps)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	e.log.Info("serving", "addr", "http://"+ln.Addr().String(), "base_url", e.cfg.Web.BaseURL.String(), "env", e.cfg.Env)

	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	e.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := app.ShutdownWithContext(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// runJob runs job every interval and whenever kick fires, until ctx ends.
func runJob(ctx context.Context, log *slog.Logger, interval time.Duration, kick <-chan struct{}, job func(context.Context) error) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-kick:
		}
		if err := job(ctx); err != nil && ctx.Err() == nil {
			log.Error("background job", "err", err)
		}
	}
}
