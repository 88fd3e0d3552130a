package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// CullLockKey is the PostgreSQL advisory lock a cull holds while it runs, so
// that one instance culls at a time. It shows in pg_locks as objid 727275.
const CullLockKey int64 = 727275

// Bounds of CullOptions.BatchSize.
const (
	DefaultCullBatch = 1000
	MaxCullBatch     = 100_000
)

// SpentTokenKeep is how long an email token stays after it expired or was
// used, so a late click still finds it (and is told it is no good).
const SpentTokenKeep = 24 * time.Hour

// oldestShown is how many of the longest-unseen guests a dry run lists.
const oldestShown = 5

// batchAttempts bounds the retries of a batch that PostgreSQL aborted to
// break a deadlock with a request touching the same guest.
const batchAttempts = 3

// Culler deletes stale guests (with their sessions, carts and tokens, by the
// foreign keys' ON DELETE CASCADE) and clears expired sessions, spent email
// tokens and finished rate-limit windows.
type Culler struct {
	db *gorm.DB
}

// NewCuller returns a culler over db.
func NewCuller(db *gorm.DB) *Culler {
	return &Culler{db: db}
}

// CullOptions says what a cull removes and how.
type CullOptions struct {
	// OlderThan is how long a guest may stay unseen (GUEST_CULL_AFTER). It
	// must be positive.
	OlderThan time.Duration
	// BatchSize is how many guests (or expired rows) one transaction deletes;
	// 0 means DefaultCullBatch.
	BatchSize int
	// DryRun counts what a cull would delete, and deletes nothing. It takes
	// no lock: it may run beside a real cull.
	DryRun bool
	// Wait is how long to wait for another instance's cull to finish. Zero
	// returns Skipped at once when the lock is taken.
	Wait time.Duration
	// Progress, if set, is called after each batch of guests with the number
	// deleted so far.
	Progress func(deleted int64)
}

// StaleGuest is a guest a dry run would cull.
type StaleGuest struct {
	ID         uuid.UUID
	LastSeenAt time.Time
}

// CullResult says what a cull did. In a dry run the counts are what it would
// have deleted.
type CullResult struct {
	// Skipped is true when another instance held the lock: nothing was done.
	Skipped bool
	// Cutoff is the database's now() minus OlderThan: guests last seen before
	// it are culled.
	Cutoff  time.Time
	Deleted int64 // guests
	Batches int   // transactions that deleted guests
	// Housekeeping, for users of any kind.
	Sessions   int64 // expired sessions
	Tokens     int64 // email tokens expired or used more than SpentTokenKeep ago
	RateLimits int64 // rate-limit windows that have ended
	// Oldest lists, in a dry run, the longest-unseen stale guests, oldest first.
	Oldest []StaleGuest
	Took   time.Duration
}

// Cull deletes the guests last seen more than opts.OlderThan ago, then the
// expired sessions, spent tokens and ended rate-limit windows of everyone.
//
// Only one cull runs at a time across instances: it holds the advisory lock
// CullLockKey on a connection of its own, and returns Skipped if another
// holds it (after waiting up to opts.Wait).
//
// Each batch is one statement, so one transaction: it locks up to BatchSize
// stale guests, skipping rows another transaction holds, and deletes them,
// checking again that each is still a guest and still stale. A guest that
// comes back (seen again, or saved as an account) while a cull runs either
// stays whole or goes whole, with its sessions, cart, cart lines and tokens.
// Registered accounts are never culled.
//
// A cull that deleted guests records one guest.culled event with the count.
// If it fails part-way, the result holds what was deleted so far.
func (c *Culler) Cull(ctx context.Context, opts CullOptions) (CullResult, error) {
	start := time.Now()
	if opts.OlderThan <= 0 {
		return CullResult{}, fmt.Errorf("cull: older-than must be positive, got %v", opts.OlderThan)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultCullBatch
	}
	if opts.BatchSize < 1 || opts.BatchSize > MaxCullBatch {
		return CullResult{}, fmt.Errorf("cull: batch size must be between 1 and %d, got %d", MaxCullBatch, opts.BatchSize)
	}

	var res CullResult
	var err error
	if opts.DryRun {
		res, err = c.dryRun(ctx, opts)
	} else {
		res, err = c.cullLocked(ctx, opts)
	}
	res.Took = time.Since(start)
	return res, err
}

func (c *Culler) cullLocked(ctx context.Context, opts CullOptions) (CullResult, error) {
	unlock, ok, err := c.lock(ctx, opts.Wait)
	if err != nil {
		return CullResult{}, err
	}
	if !ok {
		return CullResult{Skipped: true}, nil
	}
	defer unlock()

	res := CullResult{}
	if res.Cutoff, err = c.cutoff(ctx, opts.OlderThan); err != nil {
		return res, err
	}
	err = c.cullGuests(ctx, opts, &res)
	if res.Deleted > 0 {
		// Recorded even when the cull was interrupted: those guests are gone.
		evCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		evErr := recordEvent(evCtx, c.db, nil, EventGuestCulled, map[string]any{
			"count": res.Deleted, "older_than": opts.OlderThan.String(),
		})
		cancel()
		err = errors.Join(err, evErr)
	}
	if err != nil {
		return res, err
	}
	if err := c.housekeep(ctx, opts.BatchSize, &res); err != nil {
		return res, err
	}
	return res, nil
}

// cutoff is now() minus olderThan by the database's clock, which also wrote
// last_seen_at.
func (c *Culler) cutoff(ctx context.Context, olderThan time.Duration) (time.Time, error) {
	var cutoff time.Time
	err := c.db.WithContext(ctx).Raw(`SELECT now() - make_interval(secs => ?)`, olderThan.Seconds()).Row().Scan(&cutoff)
	if err != nil {
		return time.Time{}, fmt.Errorf("cull: %w", err)
	}
	return cutoff, nil
}

// cullGuests deletes stale guests batch by batch. A keyset on last_seen_at
// starts each batch where the last one ended, rather than walking again over
// the index entries of guests just deleted.
//
// The DELETE takes its rows as "id = ANY(ARRAY(...))", not as a join with the
// CTE: the planner cannot see how few rows the CTE holds and may hash-join it
// with a scan of the whole table, on every batch. The ON DELETE CASCADE
// triggers, one call per guest and child table, are most of the cost.
func (c *Culler) cullGuests(ctx context.Context, opts CullOptions, res *CullResult) error {
	after := time.Time{}
	for {
		var b struct {
			Picked  int
			Deleted int64
			Last    *time.Time
		}
		err := c.batch(ctx, func(db *gorm.DB) error {
			return db.Raw(`
				WITH doomed AS (
					SELECT id, last_seen_at FROM users
					WHERE kind = 'guest' AND last_seen_at < @cutoff AND last_seen_at >= @after
					ORDER BY last_seen_at
					LIMIT @n
					FOR UPDATE SKIP LOCKED
				), gone AS (
					DELETE FROM users
					WHERE id = ANY(ARRAY(SELECT id FROM doomed)) AND kind = 'guest' AND last_seen_at < @cutoff
					RETURNING id
				)
				SELECT (SELECT count(*) FROM doomed) AS picked,
				       (SELECT count(*) FROM gone) AS deleted,
				       (SELECT max(last_seen_at) FROM doomed) AS last`,
				map[string]any{"cutoff": res.Cutoff, "after": after, "n": opts.BatchSize},
			).Row().Scan(&b.Picked, &b.Deleted, &b.Last)
		})
		if err != nil {
			return fmt.Errorf("cull guests: %w", err)
		}
		if b.Deleted > 0 {
			res.Deleted += b.Deleted
			res.Batches++
			if opts.Progress != nil {
				opts.Progress(res.Deleted)
			}
		}
		// Fewer than a batch means none is left but those locked by someone
		// else, who is using them: the next cull will look at them again.
		if b.Picked < opts.BatchSize || b.Deleted == 0 || b.Last == nil {
			return nil
		}
		after = *b.Last
	}
}

// housekeep deletes, in batches, expired sessions, spent email tokens and
// ended rate-limit windows. Each walks its primary key (a keyset), so a run
// reads each table about once however much it deletes.
func (c *Culler) housekeep(ctx context.Context, n int, res *CullResult) error {
	var err error
	res.Sessions, err = drain(ctx, c, n, uuid.Nil, `
		WITH doomed AS (
			SELECT id FROM sessions WHERE id > @after AND expires_at < now()
			ORDER BY id LIMIT @n FOR UPDATE SKIP LOCKED
		), gone AS (
			DELETE FROM sessions WHERE id = ANY(ARRAY(SELECT id FROM doomed)) AND expires_at < now() RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone),
		       (SELECT id FROM doomed ORDER BY id DESC LIMIT 1)`, nil)
	if err != nil {
		return fmt.Errorf("cull expired sessions: %w", err)
	}
	keep := map[string]any{"keep": SpentTokenKeep.Seconds()}
	res.Tokens, err = drain(ctx, c, n, uuid.Nil, `
		WITH doomed AS (
			SELECT id FROM email_tokens
			WHERE id > @after AND (expires_at < now() - make_interval(secs => @keep)
			                       OR used_at < now() - make_interval(secs => @keep))
			ORDER BY id LIMIT @n FOR UPDATE SKIP LOCKED
		), gone AS (
			DELETE FROM email_tokens WHERE id = ANY(ARRAY(SELECT id FROM doomed)) RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone),
		       (SELECT id FROM doomed ORDER BY id DESC LIMIT 1)`, keep)
	if err != nil {
		return fmt.Errorf("cull spent tokens: %w", err)
	}
	res.RateLimits, err = drain(ctx, c, n, "", `
		WITH doomed AS (
			SELECT key FROM rate_limits WHERE key > @after AND reset_at < now()
			ORDER BY key LIMIT @n FOR UPDATE SKIP LOCKED
		), gone AS (
			DELETE FROM rate_limits WHERE key = ANY(ARRAY(SELECT key FROM doomed)) AND reset_at < now() RETURNING 1
		)
		SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM gone),
		       (SELECT max(key) FROM doomed)`, nil)
	if err != nil {
		return fmt.Errorf("cull rate limits: %w", err)
	}
	return nil
}

// drain runs a batch query until it picks fewer than n rows. The query takes
// @after (the keyset cursor, starting at start), @n and args, and returns
// the rows picked, the rows deleted and the last key picked.
func drain[K any](ctx context.Context, c *Culler, n int, start K, query string, args map[string]any) (int64, error) {
	named := map[string]any{"n": n}
	for k, v := range args {
		named[k] = v
	}
	var total int64
	after := start
	for {
		var picked int
		var deleted int64
		var last *K
		named["after"] = after
		err := c.batch(ctx, func(db *gorm.DB) error {
			return db.Raw(query, named).Row().Scan(&picked, &deleted, &last)
		})
		if err != nil {
			return total, err
		}
		total += deleted
		if picked < n || last == nil {
			return total, nil
		}
		after = *last
	}
}

// batch runs one batch statement, again if PostgreSQL aborted it to break a
// deadlock: a request touching a stale guest's session or token takes its
// locks in the other order (child row, then user).
func (c *Culler) batch(ctx context.Context, run func(db *gorm.DB) error) error {
	var err error
	for range batchAttempts {
		if err = run(c.db.WithContext(ctx)); !retryable(err) {
			return err
		}
	}
	return err
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// dryRun counts what a cull would delete.
func (c *Culler) dryRun(ctx context.Context, opts CullOptions) (CullResult, error) {
	var res CullResult
	var err error
	if res.Cutoff, err = c.cutoff(ctx, opts.OlderThan); err != nil {
		return res, err
	}
	// Sessions and tokens of the stale guests go with them, not as housekeeping.
	db := c.db.WithContext(ctx)
	err = db.Raw(`
		SELECT (SELECT count(*) FROM users WHERE kind = 'guest' AND last_seen_at < @cutoff),
		       (SELECT count(*) FROM sessions s
		        WHERE expires_at < now() AND NOT EXISTS (SELECT 1 FROM users u
		            WHERE u.id = s.user_id AND u.kind = 'guest' AND u.last_seen_at < @cutoff)),
		       (SELECT count(*) FROM email_tokens t
		        WHERE (expires_at < now() - make_interval(secs => @keep)
		               OR used_at < now() - make_interval(secs => @keep))
		          AND NOT EXISTS (SELECT 1 FROM users u
		            WHERE u.id = t.user_id AND u.kind = 'guest' AND u.last_seen_at < @cutoff)),
		       (SELECT count(*) FROM rate_limits WHERE reset_at < now())`,
		map[string]any{"cutoff": res.Cutoff, "keep": SpentTokenKeep.Seconds()},
	).Row().Scan(&res.Deleted, &res.Sessions, &res.Tokens, &res.RateLimits)
	if err != nil {
		return res, fmt.Errorf("cull dry run: %w", err)
	}
	res.Batches = int((res.Deleted + int64(opts.BatchSize) - 1) / int64(opts.BatchSize))
	err = db.Raw(`SELECT id, last_seen_at FROM users
		WHERE kind = 'guest' AND last_seen_at < ? ORDER BY last_seen_at LIMIT ?`,
		res.Cutoff, oldestShown).Scan(&res.Oldest).Error
	if err != nil {
		return res, fmt.Errorf("cull dry run: %w", err)
	}
	return res, nil
}

// lock takes the cull's advisory lock on a connection of its own, which it
// keeps until unlock: a session lock belongs to the connection that took it.
// With wait > 0 it waits that long for another holder to finish.
func (c *Culler) lock(ctx context.Context, wait time.Duration) (unlock func(), ok bool, err error) {
	sqlDB, err := c.db.DB()
	if err != nil {
		return nil, false, fmt.Errorf("cull lock: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("cull lock: %w", err)
	}
	if wait <= 0 {
		err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, CullLockKey).Scan(&ok)
	} else {
		ok, err = waitLock(ctx, conn, wait)
	}
	if err != nil || !ok {
		discard(conn) // it might hold the lock if the error came late
		if err != nil {
			return nil, false, fmt.Errorf("cull lock: %w", err)
		}
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		var released bool
		err := conn.QueryRowContext(ctx, `SELECT pg_advisory_unlock($1)`, CullLockKey).Scan(&released)
		if err != nil || !released {
			discard(conn)
			return
		}
		conn.Close()
	}, true, nil
}

// waitLock waits up to wait for the advisory lock. The lock_timeout is local
// to a transaction; the session lock it takes outlives the transaction.
func waitLock(ctx context.Context, conn *sql.Conn, wait time.Duration) (bool, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	ms := min(wait.Milliseconds(), math.MaxInt32)
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`, fmt.Sprintf("%dms", max(ms, 1))); err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, CullLockKey)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// discard closes conn for good instead of returning it to the pool, so no
// pooled connection ever holds the cull's lock.
func discard(conn *sql.Conn) {
	conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}
