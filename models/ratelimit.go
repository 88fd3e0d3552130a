package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Limiter counts requests per key in fixed windows, in PostgreSQL, so every
// instance shares the counts. One atomic upsert per request.
type Limiter struct {
	db *gorm.DB
}

// NewLimiter returns a limiter over db.
func NewLimiter(db *gorm.DB) *Limiter {
	return &Limiter{db: db}
}

// Allow counts one hit for key and reports whether it is within limit hits
// per window; if not, retryAfter says when the window ends.
func (l *Limiter) Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error) {
	var row struct {
		Hits int
		Wait float64 // seconds until the window resets
	}
	err = l.db.WithContext(ctx).Raw(`
		INSERT INTO rate_limits (key, hits, reset_at)
		VALUES (@key, 1, now() + make_interval(secs => @window))
		ON CONFLICT (key) DO UPDATE SET
			hits = CASE WHEN rate_limits.reset_at <= now() THEN 1 ELSE rate_limits.hits + 1 END,
			reset_at = CASE WHEN rate_limits.reset_at <= now() THEN EXCLUDED.reset_at ELSE rate_limits.reset_at END
		RETURNING hits, extract(epoch FROM reset_at - now())::float8 AS wait`,
		map[string]any{"key": key, "window": window.Seconds()}).Scan(&row).Error
	if err != nil {
		return false, 0, fmt.Errorf("rate limit %s: %w", key, err)
	}
	if row.Hits <= limit {
		return true, 0, nil
	}
	return false, max(time.Second, time.Duration(row.Wait*float64(time.Second))), nil
}
