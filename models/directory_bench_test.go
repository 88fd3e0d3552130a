package models_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"shopfront/models"
	"shopfront/models/modeltest"
)

// The scale measurement of the admin user directory: it grows one database
// from scaleSmall to scaleLarge users and times the Directory's queries at
// both sizes. It is a measurement, not a test of behaviour, and it takes a
// few minutes, so it runs only when asked:
//
//	DATABASE_URL=$(go run ./cmd/devdb) SHOPFRONT_BENCH_SCALE=1 \
//		go test -run TestDirectoryScale -count=1 -v -timeout 20m ./models/
const (
	scaleSmall = 10_000
	scaleLarge = 1_000_000

	scalePage      = 50     // the admin list's page size
	scaleDeepRows  = 10_000 // how deep the deep page starts
	scaleWarmups   = 3
	scaleRuns      = 15
	scaleRatioGoal = 2.0             // the target for large ÷ small
	scaleCeiling   = 1 * time.Second // a regression guard, not a benchmark
	scaleSpan      = 60 * 24 * time.Hour
	scaleStepMS    = int64(scaleSpan/time.Millisecond) / scaleLarge // ms between users n and n+1
)

// scaleUsersSQL creates users n = from..to in one statement, with their
// carts and cart lines, from generate_series: set-based, no round trips.
//
//   - ids are UUIDv7: the 48-bit millisecond timestamp, the version nibble 7,
//     12 random bits, the RFC 4122 variant (10) and 62 random bits. The
//     timestamp is base + n·step plus jitter smaller than the step, so id
//     order is creation order, and a later batch is newer than an earlier one.
//   - about 2% are registered (by a hash of n, so that n%50 in the address
//     varies), with a verified address user<n>@example<n%50>.com and a
//     placeholder password hash; the rest are guests.
//   - about 10% have a cart of 1 to 3 distinct products.
//   - last_seen_at is up to three days after created_at, never in the future.
//
// The "random" bits are hashint8extended(n, seed), which is cheap: computing
// the rows from md5(n::text) and ('x' || hex)::bit(n) casts took about 11 s
// of the generation per million users, this takes about 2 s. The rows go in
// in n order (the order the materialized CTE is read back in), so the heap
// is in id order, as it is when users sign up over time.
//
// Placeholders: base (Unix ms of user 0), step (ms per user), from, to.
const scaleUsersSQL = `
WITH u AS MATERIALIZED (
	SELECT n, r1, r2,
		(lpad(to_hex(ms), 12, '0') || '7' || lpad(to_hex(a & 4095), 3, '0')
			|| to_hex((b & 4611686018427387903) | -9223372036854775808))::uuid AS id,
		(lpad(to_hex(ms), 12, '0') || '7' || lpad(to_hex(c & 4095), 3, '0')
			|| to_hex((d & 4611686018427387903) | -9223372036854775808))::uuid AS cart_id,
		to_timestamp(ms / 1000.0) AS created_at,
		r1 % 50 = 0 AS registered,
		r2 % 10 = 0 AS has_cart,
		1 + (r2 / 10) % 3 AS lines
	FROM (SELECT n,
			? ::bigint + n * ? ::bigint + (hashint8extended(n, 0) & 4095) AS ms,
			hashint8extended(n, 1) & 1073741823 AS r1,
			hashint8extended(n, 2) & 1073741823 AS r2,
			hashint8extended(n, 3) AS a, hashint8extended(n, 4) AS b,
			hashint8extended(n, 5) AS c, hashint8extended(n, 6) AS d
		FROM generate_series(? ::bigint, ? ::bigint) AS n) g
), new_users AS (
	INSERT INTO users (id, kind, email, password_hash, email_verified_at, created_at, updated_at, last_seen_at)
	SELECT id,
		CASE WHEN registered THEN 'registered' ELSE 'guest' END,
		CASE WHEN registered THEN 'user' || n || '@example' || n % 50 || '.com' END,
		CASE WHEN registered THEN 'x' END,
		CASE WHEN registered THEN created_at END,
		created_at, created_at,
		least(created_at + (r2 % 259200) * interval '1 second', now())
	FROM u
), new_carts AS (
	INSERT INTO carts (id, user_id, created_at, updated_at)
	SELECT cart_id, id, created_at, created_at FROM u WHERE has_cart
), p AS (
	SELECT array_agg(id ORDER BY id) AS ids FROM products
)
INSERT INTO cart_items (cart_id, product_id, quantity, created_at)
SELECT u.cart_id, p.ids[1 + (u.r1 + k) % cardinality(p.ids)], 1 + (u.r2 + k) % 3, u.created_at
FROM u CROSS JOIN p CROSS JOIN LATERAL generate_series(1, u.lines) AS k
WHERE u.has_cart`

// sqlRecorder keeps the statements GORM runs, with their arguments inlined,
// so the measurement can EXPLAIN exactly what the Directory sends.
type sqlRecorder struct {
	logger.Interface
	mu   sync.Mutex
	stmt []string
}

func (r *sqlRecorder) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	r.mu.Lock()
	r.stmt = append(r.stmt, sql)
	r.mu.Unlock()
}

func (r *sqlRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stmt
	r.stmt = nil
	return s
}

// scaleOp is one timed Directory call.
type scaleOp struct {
	name string
	run  func(ctx context.Context, dir *models.Directory) error
}

func usersOp(name string, f models.UserFilter) scaleOp {
	return scaleOp{name, func(ctx context.Context, dir *models.Directory) error {
		rows, _, err := dir.Users(ctx, f)
		if err == nil && len(rows) == 0 && f.Query == "" {
			err = fmt.Errorf("%s: empty page", name)
		}
		return err
	}}
}

func countOp(kind string) scaleOp {
	return scaleOp{"CountKind " + kind, func(ctx context.Context, dir *models.Directory) error {
		_, err := dir.CountKind(ctx, kind)
		return err
	}}
}

// scaleOps are the admin list's queries at the database's current size; the
// deep pages' cursors are found once, outside the timing.
func scaleOps(t *testing.T, db *gorm.DB) []scaleOp {
	t.Helper()
	// The cursor is the last id of the rows before the page; at the small
	// scale, 10,000 rows deep is past the end, so the deep page is the last.
	cursor := func(where string) uuid.UUID {
		var n int
		if err := db.Raw(`SELECT count(*) FROM users ` + where).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		offset := min(scaleDeepRows, n-scalePage-1) - 1
		var id uuid.UUID
		if err := db.Raw(`SELECT id FROM users `+where+` ORDER BY id DESC OFFSET ? LIMIT 1`, offset).Row().Scan(&id); err != nil {
			t.Fatalf("cursor %q: %v", where, err)
		}
		return id
	}
	all, guests := cursor(""), cursor("WHERE kind = 'guest'")
	return []scaleOp{
		usersOp("first page", models.UserFilter{Limit: scalePage}),
		usersOp("first page, registered", models.UserFilter{Kind: models.KindRegistered, Limit: scalePage}),
		usersOp("first page, guest", models.UserFilter{Kind: models.KindGuest, Limit: scalePage}),
		usersOp("page 10,000 rows deep", models.UserFilter{After: all, Limit: scalePage}),
		usersOp("page 10,000 rows deep, guest", models.UserFilter{Kind: models.KindGuest, After: guests, Limit: scalePage}),
		usersOp(`search "user12"`, models.UserFilter{Query: "user12", Limit: scalePage}),
		usersOp(`search "user12", registered`, models.UserFilter{Kind: models.KindRegistered, Query: "user12", Limit: scalePage}),
		usersOp(`search "user12", guest`, models.UserFilter{Kind: models.KindGuest, Query: "user12", Limit: scalePage}),
		usersOp(`search "user99999@"`, models.UserFilter{Query: "user99999@", Limit: scalePage}),
		usersOp(`search "example" (all)`, models.UserFilter{Query: "example", Limit: scalePage}),
		usersOp(`search "example", registered`, models.UserFilter{Kind: models.KindRegistered, Query: "example", Limit: scalePage}),
		usersOp(`search "9@" (short)`, models.UserFilter{Query: "9@", Limit: scalePage}),
		usersOp(`search "zz" (short, none)`, models.UserFilter{Query: "zz", Limit: scalePage}),
		countOp(models.KindGuest),
		countOp(models.KindRegistered),
	}
}

// median times op: warm-ups first, then the median wall time of the Go call.
func median(t *testing.T, dir *models.Directory, op scaleOp) time.Duration {
	t.Helper()
	ctx := context.Background()
	times := make([]time.Duration, 0, scaleRuns)
	for i := range scaleWarmups + scaleRuns {
		start := time.Now()
		if err := op.run(ctx, dir); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if i >= scaleWarmups {
			times = append(times, time.Since(start))
		}
	}
	slices.Sort(times)
	return times[len(times)/2]
}

// growUsers adds users until there are total, and returns how long it took.
func growUsers(t *testing.T, db *gorm.DB, from, total int, base time.Time) time.Duration {
	t.Helper()
	start := time.Now()
	// Its own logger: the statement is slow on purpose.
	quiet := db.Session(&gorm.Session{Logger: logger.Discard})
	if err := quiet.Exec(scaleUsersSQL, base.UnixMilli(), scaleStepMS, from+1, total).Error; err != nil {
		t.Fatalf("generate users %d..%d: %v", from+1, total, err)
	}
	gen := time.Since(start)
	start = time.Now()
	// VACUUM as well as ANALYZE: autovacuum would vacuum an insert-only
	// table this size soon anyway, and index-only scans need its visibility map.
	for _, table := range []string{"users", "carts", "cart_items"} {
		if err := db.Exec("VACUUM (ANALYZE) " + table).Error; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("generated users %d..%d in %v; VACUUM (ANALYZE) in %v", from+1, total, gen.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return gen
}

// checkGenerated checks the generator's promises: valid UUIDv7 ids, id order
// = creation order, the mix of kinds and carts.
func checkGenerated(t *testing.T, db *gorm.DB, total int) {
	t.Helper()
	var s struct {
		Users, Registered, Carts, Lines, Disordered int
		Oldest, Newest                              time.Time
	}
	err := db.Raw(`SELECT
		(SELECT count(*) FROM users) AS users,
		(SELECT count(*) FROM users WHERE kind = 'registered') AS registered,
		(SELECT count(*) FROM carts) AS carts,
		(SELECT count(*) FROM cart_items) AS lines,
		(SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY id) AS bad FROM users) o WHERE bad) AS disordered,
		(SELECT min(created_at) FROM users) AS oldest,
		(SELECT max(created_at) FROM users) AS newest`).Scan(&s).Error
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d users (%d registered, %.1f%%), %d carts (%.1f%%), %d cart lines; created %s .. %s",
		s.Users, s.Registered, 100*float64(s.Registered)/float64(s.Users), s.Carts,
		100*float64(s.Carts)/float64(s.Users), s.Lines, s.Oldest.Format(time.DateTime), s.Newest.Format(time.DateTime))
	if s.Users != total {
		t.Fatalf("%d users, want %d", s.Users, total)
	}
	if s.Disordered != 0 {
		t.Fatalf("%d users out of creation order by id", s.Disordered)
	}
	var sample []string
	if err := db.Raw(`SELECT id::text FROM users TABLESAMPLE SYSTEM (1) LIMIT 100`).Scan(&sample).Error; err != nil {
		t.Fatal(err)
	}
	uuidText := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, s := range sample {
		id, err := uuid.Parse(s)
		if err != nil || !uuidText.MatchString(s) || id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("id %s is not a UUIDv7 (%v)", s, err)
		}
	}
}

// explainAll prints EXPLAIN (ANALYZE, BUFFERS) of every statement each op
// sends, as recorded, and which indexes the plans use.
func explainAll(t *testing.T, db *gorm.DB, ops []scaleOp) {
	t.Helper()
	rec := &sqlRecorder{Interface: logger.Discard}
	dir := models.NewDirectory(db.Session(&gorm.Session{Logger: rec}))
	scan := regexp.MustCompile(`(Seq Scan on \w+|Index (?:Only )?Scan(?: Backward)? using \w+|Bitmap Index Scan on \w+)`)
	var summary strings.Builder
	for _, op := range ops {
		rec.take()
		if err := op.run(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		var used []string
		for _, stmt := range rec.take() {
			stmt = strings.Join(strings.Fields(stmt), " ")
			if strings.HasPrefix(stmt, "EXPLAIN") {
				t.Logf("── %s\n%s\n(the planner's estimate: planning only, not executed)", op.name, stmt)
				continue
			}
			var plan []string
			if err := db.Raw("EXPLAIN (ANALYZE, BUFFERS) " + stmt).Scan(&plan).Error; err != nil {
				t.Fatalf("explain %s: %v", op.name, err)
			}
			t.Logf("── %s\n%s\n%s", op.name, stmt, strings.Join(plan, "\n"))
			for _, line := range plan {
				for _, m := range scan.FindAllString(line, -1) {
					if !slices.Contains(used, m) {
						used = append(used, m)
					}
				}
			}
		}
		fmt.Fprintf(&summary, "\n%-30s %s", op.name, strings.Join(used, "; "))
	}
	t.Logf("scans per operation at %d users:%s", scaleLarge, summary.String())
}

func TestDirectoryScale(t *testing.T) {
	if os.Getenv("SHOPFRONT_BENCH_SCALE") != "1" {
		t.Skip("scale measurement, minutes long; run it with: DATABASE_URL=$(go run ./cmd/devdb) SHOPFRONT_BENCH_SCALE=1 go test -run TestDirectoryScale -count=1 -v -timeout 20m ./models/")
	}
	db := modeltest.NewDB(t)
	dir := models.NewDirectory(db)
	base := time.Now().Add(-scaleSpan).Truncate(time.Millisecond)

	type result struct {
		name         string
		small, large time.Duration
	}
	var results []result
	var gens []string
	have := 0
	for _, total := range []int{scaleSmall, scaleLarge} {
		gen := growUsers(t, db, have, total, base)
		gens = append(gens, fmt.Sprintf("%d → %d users: %v", have, total, gen.Round(time.Millisecond)))
		have = total
		checkGenerated(t, db, total)
		ops := scaleOps(t, db)
		for i, op := range ops {
			d := median(t, dir, op)
			if total == scaleSmall {
				results = append(results, result{name: op.name, small: d})
			} else {
				results[i].large = d
			}
		}
		if total == scaleLarge {
			explainAll(t, db, ops)
		}
	}

	var out strings.Builder
	fmt.Fprintf(&out, "median of %d runs after %d warm-ups, wall time of the Go call; generation %s\n",
		scaleRuns, scaleWarmups, strings.Join(gens, ", "))
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintf(w, "operation\t10k ms\t1M ms\tratio\t\n")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
	for _, r := range results {
		ratio := float64(r.large) / float64(r.small)
		flag := ""
		if ratio > scaleRatioGoal {
			flag = "  > 2"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f%s\t\n", r.name, ms(r.small), ms(r.large), ratio, flag)
	}
	w.Flush()
	t.Log("\n" + out.String())
	for _, r := range results {
		if r.large > scaleCeiling {
			t.Errorf("%s takes %v at %d users; more than %v", r.name, r.large, scaleLarge, scaleCeiling)
		}
	}
}
