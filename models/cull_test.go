package models_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"shopfront/models"
	"shopfront/models/modeltest"
)

// cullAfter is GUEST_CULL_AFTER's default.
const cullAfter = 960 * time.Hour

// mustAge sets when a user was last seen.
func mustAge(t testing.TB, db *gorm.DB, userID uuid.UUID, ago time.Duration) {
	t.Helper()
	err := db.Exec(`UPDATE users SET last_seen_at = now() - make_interval(secs => ?) WHERE id = ?`,
		ago.Seconds(), userID).Error
	if err != nil {
		t.Fatal(err)
	}
}

// mustToken gives a user an unused promote link that expires in an hour.
func mustToken(t testing.TB, db *gorm.DB, userID uuid.UUID) {
	t.Helper()
	_, hash := models.NewToken()
	err := db.Exec(`INSERT INTO email_tokens (id, user_id, purpose, email, token_hash, expires_at)
		VALUES (gen_random_uuid(), ?, 'promote', 'g@example.test', ?, now() + interval '1 hour')`, userID, hash).Error
	if err != nil {
		t.Fatal(err)
	}
}

// mustStaleGuests makes n guests last seen 41 to 42 days ago, each with a
// session, a cart with one line of productID and, every tenth, an email
// token, in one statement. Like the app's, the ids are UUIDv7s of the time
// the rows were made (here, when the guest was last seen).
func mustStaleGuests(t testing.TB, db *gorm.DB, n int, productID int64) {
	t.Helper()
	quiet := db.Session(&gorm.Session{Logger: logger.Discard}) // a slow statement, on purpose
	err := quiet.Exec(`
		WITH u AS (
			INSERT INTO users (id, kind, created_at, updated_at, last_seen_at)
			SELECT `+uuidV7("s.seen")+`, 'guest', s.seen, s.seen, s.seen
			FROM (SELECT now() - interval '41 days' - g * interval '86399 milliseconds' / @n AS seen
			      FROM generate_series(1, @n) g) s
			RETURNING id, last_seen_at
		), s AS (
			INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at, last_seen_at)
			SELECT `+uuidV7("last_seen_at")+`, id, uuid_send(gen_random_uuid()), last_seen_at,
			       last_seen_at + interval '720 hours', last_seen_at
			FROM u
		), tok AS (
			INSERT INTO email_tokens (id, user_id, purpose, email, token_hash, expires_at)
			SELECT `+uuidV7("last_seen_at")+`, id, 'promote', 'g@example.test', uuid_send(gen_random_uuid()),
			       last_seen_at + interval '1 hour'
			FROM u WHERE get_byte(uuid_send(id), 15) % 10 = 0
		), c AS (
			INSERT INTO carts (id, user_id, created_at, updated_at)
			SELECT `+uuidV7("last_seen_at")+`, id, last_seen_at, last_seen_at FROM u
			RETURNING id
		)
		INSERT INTO cart_items (cart_id, product_id, quantity) SELECT id, @product, 1 FROM c`,
		map[string]any{"n": n, "product": productID}).Error
	if err != nil {
		t.Fatalf("make %d stale guests: %v", n, err)
	}
}

// uuidV7 is SQL for a random UUIDv7 of the time ts (PostgreSQL 15 has no
// uuidv7()): 48 bits of Unix milliseconds, the version, the variant, random.
func uuidV7(ts string) string {
	return `(lpad(to_hex((extract(epoch FROM ` + ts + `) * 1000)::bigint), 12, '0') || '7' ||
		substr(md5(random()::text), 1, 3) || '8' || substr(md5(random()::text), 1, 15))::uuid`
}

// orphans counts rows whose user or cart is gone; the foreign keys should
// make it zero.
func orphans(t testing.TB, db *gorm.DB) int {
	t.Helper()
	var n int
	err := db.Raw(`SELECT
		(SELECT count(*) FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL) +
		(SELECT count(*) FROM carts c LEFT JOIN users u ON u.id = c.user_id WHERE u.id IS NULL) +
		(SELECT count(*) FROM cart_items i LEFT JOIN carts c ON c.id = i.cart_id WHERE c.id IS NULL) +
		(SELECT count(*) FROM email_tokens k LEFT JOIN users u ON u.id = k.user_id WHERE u.id IS NULL)`).Scan(&n).Error
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// footprint counts a user's rows: user, sessions, cart, cart lines, tokens.
func footprint(t testing.TB, db *gorm.DB, id uuid.UUID) [5]int {
	t.Helper()
	var f [5]int
	err := db.Raw(`SELECT
		(SELECT count(*) FROM users WHERE id = @id),
		(SELECT count(*) FROM sessions WHERE user_id = @id),
		(SELECT count(*) FROM carts WHERE user_id = @id),
		(SELECT count(*) FROM cart_items i JOIN carts c ON c.id = i.cart_id WHERE c.user_id = @id),
		(SELECT count(*) FROM email_tokens WHERE user_id = @id)`, map[string]any{"id": id}).Row().
		Scan(&f[0], &f[1], &f[2], &f[3], &f[4])
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// cullLockHeld matches the cull's advisory lock in pg_locks, in this
// database only: tests of other packages cull their own databases meanwhile.
const cullLockHeld = `locktype = 'advisory' AND classid = 0 AND objid = ?
	AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`

type culledEvent struct {
	UserID *uuid.UUID
	Count  int64  `json:"count"`
	Older  string `json:"older_than"`
}

// culledEvents returns the guest.culled events, oldest first.
func culledEvents(t testing.TB, db *gorm.DB) []culledEvent {
	t.Helper()
	var rows []models.Event
	if err := db.Where("type = ?", models.EventGuestCulled).Order("id").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	evs := make([]culledEvent, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r.Data, &evs[i]); err != nil {
			t.Fatal(err)
		}
		evs[i].UserID = r.UserID
	}
	return evs
}

func mustCull(t testing.TB, db *gorm.DB, opts models.CullOptions) models.CullResult {
	t.Helper()
	if opts.OlderThan == 0 {
		opts.OlderThan = cullAfter
	}
	res, err := models.NewCuller(db).Cull(context.Background(), opts)
	if err != nil {
		t.Fatalf("cull: %v", err)
	}
	return res
}

func TestCullDeletesStaleGuestsWhole(t *testing.T) {
	db := modeltest.NewDB(t)
	kettle := mustProduct(t, db, "enamel-tea-kettle")

	stale := mustGuest(t, db, kettle.ID)
	mustToken(t, db, stale)
	mustAge(t, db, stale, 41*24*time.Hour)
	fresh := mustGuest(t, db, kettle.ID)
	mustAge(t, db, fresh, 39*24*time.Hour)
	registered := mustRegistered(t, db, "old@example.com")
	mustAge(t, db, registered, 5*365*24*time.Hour)
	if got := footprint(t, db, stale); got != [5]int{1, 1, 1, 1, 1} {
		t.Fatalf("stale guest before the cull: %v rows", got)
	}

	res := mustCull(t, db, models.CullOptions{})
	if res.Skipped || res.Deleted != 1 || res.Batches != 1 {
		t.Fatalf("result %+v, want 1 guest deleted in 1 batch", res)
	}
	if got := footprint(t, db, stale); got != [5]int{} {
		t.Errorf("stale guest after the cull: %v rows (user, sessions, carts, lines, tokens), want none", got)
	}
	if got := footprint(t, db, fresh); got != [5]int{1, 1, 1, 1, 0} {
		t.Errorf("fresh guest after the cull: %v rows, want all kept", got)
	}
	if got := footprint(t, db, registered)[0]; got != 1 {
		t.Error("a registered account last seen 5 years ago was culled")
	}
	if n := orphans(t, db); n != 0 {
		t.Errorf("%d orphan rows", n)
	}

	evs := culledEvents(t, db)
	if len(evs) != 1 || evs[0].Count != 1 || evs[0].Older != "960h0m0s" || evs[0].UserID != nil {
		t.Fatalf("guest.culled events %+v, want one {count 1, older_than 960h0m0s, no user}", evs)
	}

	t.Run("again deletes nothing and records nothing", func(t *testing.T) {
		if res := mustCull(t, db, models.CullOptions{}); res.Deleted != 0 || res.Batches != 0 {
			t.Fatalf("second cull %+v, want nothing deleted", res)
		}
		if evs := culledEvents(t, db); len(evs) != 1 {
			t.Fatalf("%d guest.culled events, want still 1", len(evs))
		}
	})
}

func TestCullDryRunDeletesNothing(t *testing.T) {
	db := modeltest.NewDB(t)
	kettle := mustProduct(t, db, "enamel-tea-kettle")
	var stale []uuid.UUID
	for i := range 3 {
		id := mustGuest(t, db, kettle.ID)
		mustAge(t, db, id, time.Duration(50-i)*24*time.Hour) // the first is the oldest
		stale = append(stale, id)
	}
	mustGuest(t, db, kettle.ID)

	res := mustCull(t, db, models.CullOptions{DryRun: true, BatchSize: 2})
	if res.Deleted != 3 || res.Batches != 2 {
		t.Fatalf("dry run %+v, want 3 guests in 2 batches", res)
	}
	if len(res.Oldest) != 3 || res.Oldest[0].ID != stale[0] || res.Oldest[2].ID != stale[2] {
		t.Fatalf("dry run lists %+v, want the 3 stale guests oldest first", res.Oldest)
	}
	if got := count(t, db, "SELECT count(*) FROM users"); got != 4 {
		t.Fatalf("%d users after a dry run, want 4", got)
	}
	if evs := culledEvents(t, db); len(evs) != 0 {
		t.Fatalf("dry run recorded %+v", evs)
	}
}

func TestCullInBatches(t *testing.T) {
	db := modeltest.NewDB(t)
	kettle := mustProduct(t, db, "enamel-tea-kettle")
	mustStaleGuests(t, db, 2500, kettle.ID)
	fresh := mustGuest(t, db, kettle.ID)

	var progress []int64
	res := mustCull(t, db, models.CullOptions{BatchSize: 1000, Progress: func(n int64) { progress = append(progress, n) }})
	if res.Deleted != 2500 || res.Batches != 3 {
		t.Fatalf("result %+v, want 2500 guests in 3 batches", res)
	}
	if fmt.Sprint(progress) != "[1000 2000 2500]" {
		t.Errorf("progress %v, want [1000 2000 2500]", progress)
	}
	if got := count(t, db, "SELECT count(*) FROM users"); got != 1 {
		t.Errorf("%d users left, want the fresh guest", got)
	}
	if got := footprint(t, db, fresh); got != [5]int{1, 1, 1, 1, 0} {
		t.Errorf("fresh guest: %v rows, want all kept", got)
	}
	for _, table := range []string{"sessions", "carts", "cart_items", "email_tokens"} {
		if got := count(t, db, "SELECT count(*) FROM "+table); got > 1 {
			t.Errorf("%s: %d rows left", table, got)
		}
	}
	if evs := culledEvents(t, db); len(evs) != 1 || evs[0].Count != 2500 {
		t.Fatalf("guest.culled events %+v, want one with count 2500", evs)
	}
}

func TestCullOneAtATime(t *testing.T) {
	t.Run("the second is skipped while the first runs", func(t *testing.T) {
		db := modeltest.NewDB(t)
		mustStaleGuests(t, db, 2500, mustProduct(t, db, "enamel-tea-kettle").ID)

		var results [2]models.CullResult
		var errs [2]error
		done := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				defer close(done[i])
				var once sync.Once
				results[i], errs[i] = models.NewCuller(db).Cull(context.Background(), models.CullOptions{
					OlderThan: cullAfter,
					// The one that holds the lock waits for the other to give up.
					Progress: func(int64) {
						once.Do(func() {
							select {
							case <-done[1-i]:
							case <-time.After(10 * time.Second):
								t.Error("the other cull neither ran nor skipped")
							}
						})
					},
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("cull %d: %v", i, err)
			}
		}
		worked, skipped := results[0], results[1]
		if worked.Skipped {
			worked, skipped = skipped, worked
		}
		if worked.Skipped || !skipped.Skipped {
			t.Fatalf("results %+v, want one skipped", results)
		}
		if worked.Deleted != 2500 || skipped.Deleted != 0 {
			t.Fatalf("deleted %d and %d, want 2500 and 0", worked.Deleted, skipped.Deleted)
		}
		if got := count(t, db, "SELECT count(*) FROM users"); got != 0 {
			t.Fatalf("%d users left", got)
		}
		if evs := culledEvents(t, db); len(evs) != 1 {
			t.Fatalf("%d guest.culled events, want 1", len(evs))
		}
	})

	t.Run("with Wait the second runs after the first", func(t *testing.T) {
		db := modeltest.NewDB(t)
		mustStaleGuests(t, db, 2500, mustProduct(t, db, "enamel-tea-kettle").ID)

		waiting := func() bool {
			var n int
			db.Raw(`SELECT count(*) FROM pg_locks WHERE `+cullLockHeld+` AND NOT granted`, models.CullLockKey).Scan(&n)
			return n > 0
		}
		var results [2]models.CullResult
		var errs [2]error
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				var once sync.Once
				results[i], errs[i] = models.NewCuller(db).Cull(context.Background(), models.CullOptions{
					OlderThan: cullAfter,
					Wait:      20 * time.Second,
					Progress: func(int64) {
						once.Do(func() {
							for deadline := time.Now().Add(10 * time.Second); !waiting(); time.Sleep(10 * time.Millisecond) {
								if time.Now().After(deadline) {
									t.Error("the other cull never waited for the lock")
									return
								}
							}
						})
					},
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("cull %d: %v", i, err)
			}
		}
		if results[0].Skipped || results[1].Skipped {
			t.Fatalf("results %+v, want neither skipped", results)
		}
		if got := results[0].Deleted + results[1].Deleted; got != 2500 || min(results[0].Deleted, results[1].Deleted) != 0 {
			t.Fatalf("deleted %d and %d, want 2500 by one of them", results[0].Deleted, results[1].Deleted)
		}
		if evs := culledEvents(t, db); len(evs) != 1 {
			t.Fatalf("%d guest.culled events, want 1", len(evs))
		}
	})

	t.Run("a lock held elsewhere skips, or times out the wait", func(t *testing.T) {
		db := modeltest.NewDB(t)
		stale := mustGuest(t, db, mustProduct(t, db, "enamel-tea-kettle").ID)
		mustAge(t, db, stale, 41*24*time.Hour)

		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", models.CullLockKey); err != nil {
			t.Fatal(err)
		}
		if res := mustCull(t, db, models.CullOptions{}); !res.Skipped || res.Deleted != 0 {
			t.Fatalf("result %+v, want skipped", res)
		}
		start := time.Now()
		if res := mustCull(t, db, models.CullOptions{Wait: 300 * time.Millisecond}); !res.Skipped {
			t.Fatalf("result %+v, want skipped after waiting", res)
		}
		if took := time.Since(start); took < 250*time.Millisecond || took > 5*time.Second {
			t.Fatalf("waited %v for the lock, want about 300ms", took)
		}
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", models.CullLockKey); err != nil {
			t.Fatal(err)
		}
		if res := mustCull(t, db, models.CullOptions{}); res.Skipped || res.Deleted != 1 {
			t.Fatalf("result %+v once the lock is free, want 1 deleted", res)
		}
		// No pooled connection kept the lock.
		if got := count(t, db, `SELECT count(*) FROM pg_locks WHERE `+cullLockHeld, models.CullLockKey); got != 0 {
			t.Fatalf("%d advisory locks held after the culls", got)
		}
	})
}

func TestCullGuestComingBackStaysWhole(t *testing.T) {
	for _, back := range []struct {
		name   string
		update string
	}{
		{"seen again", `UPDATE users SET last_seen_at = now() WHERE id = ?`},
		{"saved as an account", `UPDATE users SET kind = 'registered', email = 'back@example.com',
			password_hash = 'x', email_verified_at = now() WHERE id = ?`},
	} {
		t.Run(back.name, func(t *testing.T) {
			db := modeltest.NewDB(t)
			kettle := mustProduct(t, db, "enamel-tea-kettle")
			mustStaleGuests(t, db, 10, kettle.ID)
			returning := mustGuest(t, db, kettle.ID)
			mustToken(t, db, returning)
			mustAge(t, db, returning, 41*24*time.Hour)

			// The request bringing the guest back holds its row while the cull runs.
			tx := db.Begin()
			defer tx.Rollback()
			if err := tx.Exec(`SELECT id FROM users WHERE id = ? FOR UPDATE`, returning).Error; err != nil {
				t.Fatal(err)
			}
			res := mustCull(t, db, models.CullOptions{BatchSize: 4})
			if res.Deleted != 10 {
				t.Fatalf("deleted %d, want the 10 others", res.Deleted)
			}
			if err := tx.Exec(back.update, returning).Error; err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit().Error; err != nil {
				t.Fatal(err)
			}
			if got := footprint(t, db, returning); got != [5]int{1, 1, 1, 1, 1} {
				t.Fatalf("returning guest: %v rows (user, sessions, carts, lines, tokens), want all kept", got)
			}
			if res := mustCull(t, db, models.CullOptions{}); res.Deleted != 0 {
				t.Fatalf("a later cull deleted %d, want the returned guest kept", res.Deleted)
			}
			if n := orphans(t, db); n != 0 {
				t.Fatalf("%d orphan rows", n)
			}
		})
	}

	// A request that touches the session first and the user second takes its
	// locks in the cull's opposite order: PostgreSQL breaks the deadlock, the
	// cull retries its batch, and the guest stays whole or goes whole.
	t.Run("touching its session during the cull", func(t *testing.T) {
		db := modeltest.NewDB(t)
		kettle := mustProduct(t, db, "enamel-tea-kettle")
		mustStaleGuests(t, db, 10, kettle.ID)
		returning := mustGuest(t, db, kettle.ID)
		mustAge(t, db, returning, 41*24*time.Hour)

		tx := db.Begin()
		defer tx.Rollback()
		if err := tx.Exec(`UPDATE sessions SET last_seen_at = now() WHERE user_id = ?`, returning).Error; err != nil {
			t.Fatal(err)
		}
		type outcome struct {
			res models.CullResult
			err error
		}
		culled := make(chan outcome, 1)
		go func() {
			res, err := models.NewCuller(db).Cull(context.Background(), models.CullOptions{OlderThan: cullAfter})
			culled <- outcome{res, err}
		}()
		// Wait until the cull is blocked on the session row, then touch the user.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if count(t, db, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%doomed%'`) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the cull never waited for the session row")
			}
		}
		touchErr := tx.Exec(`UPDATE users SET last_seen_at = now() WHERE id = ?`, returning).Error
		if touchErr == nil {
			touchErr = tx.Commit().Error
		} else {
			tx.Rollback()
		}
		out := <-culled
		if out.err != nil {
			t.Fatalf("cull: %v", out.err)
		}
		got := footprint(t, db, returning)
		switch {
		case touchErr == nil && got == [5]int{1, 1, 1, 1, 0} && out.res.Deleted == 10:
			// The request won: the guest is back, whole.
		case touchErr != nil && got == [5]int{} && out.res.Deleted == 11:
			// The cull won: the guest is gone, whole.
		default:
			t.Fatalf("touch err %v, cull deleted %d, guest rows %v: want whole either way", touchErr, out.res.Deleted, got)
		}
		t.Logf("touch: %v; culled %d", touchErr, out.res.Deleted)
		if n := orphans(t, db); n != 0 {
			t.Fatalf("%d orphan rows", n)
		}
	})
}

func TestCullHousekeeping(t *testing.T) {
	db := modeltest.NewDB(t)
	kettle := mustProduct(t, db, "enamel-tea-kettle")
	user := mustRegistered(t, db, "ada@example.com")
	guest := mustGuest(t, db, kettle.ID)
	exec := func(q string, args ...any) {
		t.Helper()
		if err := db.Exec(q, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	// Five expired sessions and one live, beside the guest's live one.
	for _, hours := range []int{-5, -4, -3, -2, -1, 1} {
		_, hash := models.NewToken()
		exec(`INSERT INTO sessions (id, user_id, token_hash, expires_at)
			VALUES (gen_random_uuid(), ?, ?, now() + ? * interval '1 hour')`, user, hash, hours)
	}
	// Tokens: expired two days ago, used two days ago (gone); expired an hour
	// ago, used an hour ago, live (kept).
	for _, tok := range []struct{ expires, used string }{
		{"now() - interval '2 days'", "NULL"},
		{"now() + interval '1 hour'", "now() - interval '2 days'"},
		{"now() - interval '1 hour'", "NULL"},
		{"now() + interval '1 hour'", "now() - interval '1 hour'"},
		{"now() + interval '1 hour'", "NULL"},
	} {
		_, hash := models.NewToken()
		exec(`INSERT INTO email_tokens (id, user_id, purpose, email, token_hash, expires_at, used_at)
			VALUES (gen_random_uuid(), ?, 'reset', 'ada@example.com', ?, `+tok.expires+`, `+tok.used+`)`, user, hash)
	}
	exec(`INSERT INTO rate_limits (key, hits, reset_at) VALUES
		('login:a', 3, now() - interval '1 minute'), ('login:b', 3, now() - interval '1 second'),
		('login:c', 3, now() + interval '1 minute')`)

	dry := mustCull(t, db, models.CullOptions{DryRun: true, BatchSize: 2})
	res := mustCull(t, db, models.CullOptions{BatchSize: 2})
	for _, r := range []models.CullResult{dry, res} {
		if r.Sessions != 5 || r.Tokens != 2 || r.RateLimits != 2 || r.Deleted != 0 {
			t.Fatalf("result %+v, want 5 sessions, 2 tokens, 2 rate limits, no guest", r)
		}
	}
	if got := count(t, db, "SELECT count(*) FROM sessions WHERE expires_at < now()"); got != 0 {
		t.Errorf("%d expired sessions left", got)
	}
	if got := count(t, db, "SELECT count(*) FROM sessions"); got != 2 {
		t.Errorf("%d sessions left, want the 2 live ones", got)
	}
	if got := count(t, db, "SELECT count(*) FROM email_tokens"); got != 3 {
		t.Errorf("%d tokens left, want 3", got)
	}
	if got := count(t, db, "SELECT count(*) FROM rate_limits WHERE key = 'login:c'"); got != 1 {
		t.Error("a live rate-limit window was deleted")
	}
	if got := footprint(t, db, guest); got != [5]int{1, 1, 1, 1, 0} {
		t.Errorf("guest: %v rows, want all kept", got)
	}
	if evs := culledEvents(t, db); len(evs) != 0 {
		t.Errorf("housekeeping recorded %+v, want no guest.culled event", evs)
	}
}

func TestCullRefusesBadOptions(t *testing.T) {
	db := modeltest.NewDB(t)
	culler := models.NewCuller(db)
	for _, opts := range []models.CullOptions{
		{},
		{OlderThan: -time.Hour},
		{OlderThan: time.Hour, BatchSize: -1},
		{OlderThan: time.Hour, BatchSize: models.MaxCullBatch + 1},
	} {
		if _, err := culler.Cull(context.Background(), opts); err == nil {
			t.Errorf("options %+v accepted", opts)
		}
	}
}

// BenchmarkCull measures the cull against the target of 20,000 guests/s
// (guests/s counts the guest batches; s/cull adds the housekeeping after
// them, which then walks over the sessions just deleted). Each guest has a session, a cart and a cart line (a tenth an email token
// too), like a real abandoned guest. SHOPFRONT_BENCH_CULL_N sets how many
// (default 100000); SHOPFRONT_BENCH_CULL_BATCH picks one batch size:
//
//	SHOPFRONT_BENCH_CULL_N=1000000 go test -run '^$' -bench BenchmarkCull -benchtime 1x -timeout 60m ./models/
func BenchmarkCull(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SHOPFRONT_BENCH_CULL_N")); err == nil && v > 0 {
		n = v
	}
	sizes := []int{1000, 5000, 10000}
	if v, err := strconv.Atoi(os.Getenv("SHOPFRONT_BENCH_CULL_BATCH")); err == nil && v > 0 {
		sizes = []int{v}
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("guests=%d/batch=%d", n, size), func(b *testing.B) {
			b.StopTimer()
			// Batches and VACUUM are slower than the slow-query log's threshold.
			db := modeltest.NewDB(b).Session(&gorm.Session{Logger: logger.Discard})
			ctx := context.Background()
			kettle, err := models.NewCatalog(db).BySlug(ctx, "enamel-tea-kettle")
			if err != nil {
				b.Fatal(err)
			}
			var culled int64
			var guestsTook, took time.Duration // the guests; everything
			var cpu float64
			for range b.N {
				// Fresh guests that the cull must step around.
				for range 10 {
					if _, err := models.NewGuests(db).AddAsGuest(ctx, newSession(), kettle.ID, 1); err != nil {
						b.Fatal(err)
					}
				}
				mustStaleGuests(b, db, n, kettle.ID)
				if err := db.Exec("VACUUM ANALYZE").Error; err != nil {
					b.Fatal(err)
				}
				cpu0 := backendCPU(b, db)
				b.StartTimer()
				start := time.Now()
				var lastBatch time.Duration
				res := mustCull(b, db, models.CullOptions{BatchSize: size, Progress: func(int64) { lastBatch = time.Since(start) }})
				took += time.Since(start)
				guestsTook += lastBatch
				culled += res.Deleted
				b.StopTimer()
				cpu += cpuSince(cpu0, backendCPU(b, db))
				if res.Deleted != int64(n) {
					b.Fatalf("culled %d, want %d", res.Deleted, n)
				}
			}
			b.ReportMetric(took.Seconds()/float64(b.N), "s/cull")
			if cpu > 0 {
				b.ReportMetric(cpu/float64(b.N), "pg-cpu-s/cull")
			}
			b.ReportMetric(float64(culled)/guestsTook.Seconds(), "guests/s")
		})
	}
}

// backendCPU reads the CPU seconds used so far by each of this database's
// client backends, when PostgreSQL runs on this machine (Linux); nil if not.
// Other work on a shared machine disturbs it less than the wall clock.
func backendCPU(tb testing.TB, db *gorm.DB) map[int]float64 {
	tb.Helper()
	var pids []int
	err := db.Raw(`SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend'`).Scan(&pids).Error
	if err != nil {
		tb.Fatal(err)
	}
	cpu := map[int]float64{}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil // not on this machine, or not Linux
		}
		// After the parenthesised command name, utime and stime are the 12th
		// and 13th fields, in clock ticks of 1/100 s.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		for _, f := range fields[11:13] {
			n, _ := strconv.ParseInt(f, 10, 64)
			cpu[pid] += float64(n) / 100
		}
	}
	return cpu
}

// cpuSince is the CPU the backends used between two readings; a backend that
// exited in between is not counted.
func cpuSince(before, after map[int]float64) float64 {
	var used float64
	for pid, s := range after {
		used += s - before[pid]
	}
	return used
}
