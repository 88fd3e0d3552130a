// Package models is Shopfront's domain: the catalog, guests, carts, tokens and
// the operations on them, over PostgreSQL through GORM. It imports no HTTP or
// view code.
package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"shopfront/migrations"
)

// Sentinel errors that handlers branch on with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// IsUnavailable reports whether err means the database cannot be reached
// right now (down, restarting, refusing connections): a 503, not a bug.
func IsUnavailable(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr *net.OpError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr), errors.Is(err, driver.ErrBadConn):
		return true
	case errors.As(err, &pgErr):
		// Class 57: operator intervention (shutdown, cannot connect now).
		return strings.HasPrefix(pgErr.Code, "57P")
	}
	return false
}

// PoolConfig sizes the connection pool shared by GORM and goose.
type PoolConfig struct {
	MaxOpen int
	MaxIdle int
}

// Open connects to PostgreSQL and returns the GORM handle and the *sql.DB under
// it, which goose shares. It pings before returning so a wrong URL fails fast.
func Open(ctx context.Context, url string, pool PoolConfig, log *slog.Logger) (*gorm.DB, *sql.DB, error) {
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	if pool.MaxOpen <= 0 {
		pool.MaxOpen = 20
	}
	if pool.MaxIdle <= 0 || pool.MaxIdle > pool.MaxOpen {
		pool.MaxIdle = pool.MaxOpen
	}
	sqlDB.SetMaxOpenConns(pool.MaxOpen)
	sqlDB.SetMaxIdleConns(pool.MaxIdle)
	sqlDB.SetConnMaxLifetime(30 * time.Minute)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)

	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("ping database: %w", err)
	}

	db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{
		SkipDefaultTransaction: true,
		TranslateError:         true,
		Logger: logger.NewSlogLogger(log, logger.Config{
			SlowThreshold:             500 * time.Millisecond,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			ParameterizedQueries:      true, // keep emails and tokens out of logs
		}),
	})
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("open gorm: %w", err)
	}
	return db, sqlDB, nil
}

// Migrate applies every pending migration. A PostgreSQL session lock makes
// instances that start together apply each migration exactly once.
func Migrate(ctx context.Context, sqlDB *sql.DB, log *slog.Logger) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrate: locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithSlog(log))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		log.Info("migration applied", "version", r.Source.Version, "took", r.Duration)
	}
	return nil
}

// All lists every model with a table, for the schema drift test.
func All() []any {
	return []any{&Product{}, &Category{}, &User{}, &Session{}, &Cart{}, &CartItem{}, &Event{}, &RateLimit{}, &EmailToken{}, &OutboxMessage{}, &Order{}, &OrderLine{}}
}
