package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultDBOutage is how long PostgreSQL stays down.
const faultDBOutage = 5 * time.Second

// faultRecoveryBound is the recovery the issue asks for, and
// faultRecoveryFail the one this test fails at: timings on a shared 2-core
// machine are noisy, so the test only catches a server that does not
// recover, and the FIGURE line reports the measured time against the bound.
const (
	faultRecoveryBound = 5 * time.Second
	faultRecoveryFail  = 15 * time.Second
)

// faultAddStats is what one shopper saw of its adds, per product.
type faultAddStats struct {
	ok        map[int64]int // 303: the add is promised
	ambiguous map[int64]int // 5xx or no answer: the add may or may not have happened
}

// TestFaultDatabaseRestart stops PostgreSQL for 5 s while shoppers add to
// their carts, and starts it again: /readyz says 503 while it is down, pages
// show the friendly error page (never a trace) and answer within the request
// timeout, the app serves again soon after the database is back, and every
// add that was answered with success is in the database afterwards.
func TestFaultDatabaseRestart(t *testing.T) {
	pg := newPGCluster(t)
	app := startFaultApp(t, pg.URL(), "")
	db := faultOpenSQL(t, pg.URL())
	products := faultProducts(t, db, 10, 60)

	var (
		mu       sync.Mutex
		problems []string // answers that break the contract
		okTimes  []time.Time
		statuses = map[string]int{} // "phase status" → count, for the log
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 50 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	var phaseMu sync.Mutex
	phase := "before"
	setPhase := func(p string) { phaseMu.Lock(); phase = p; phaseMu.Unlock() }
	getPhase := func() string { phaseMu.Lock(); defer phaseMu.Unlock(); return phase }
	var slowestDown time.Duration // the slowest answer while PostgreSQL is down
	count := func(a faultAnswer) {
		key := fmt.Sprint(a.Status)
		if a.Err != nil {
			key = "error"
		}
		p := getPhase()
		mu.Lock()
		statuses[p+" "+key]++
		if p == "down" {
			slowestDown = max(slowestDown, a.Took())
		}
		mu.Unlock()
	}
	// check holds every answer to the contract: success, a refusal the
	// shopper caused, or the friendly error page, within the timeout.
	check := func(what string, a faultAnswer, want ...int) {
		count(a)
		switch {
		case a.Err != nil:
			problem("%s: %s (phase %s): no answer within %v", what, a, getPhase(), faultClientTimeout)
		case a.Status >= 500:
			if p := faultErrorPageProblem(a); p != "" {
				problem("%s: %s (phase %s): %s", what, a, getPhase(), p)
			}
		default:
			for _, w := range want {
				if a.Status == w {
					return
				}
			}
			problem("%s: %s (phase %s), want %v or the 5xx error page: %s", what, a, getPhase(), want, faultSnippet(a.Body))
		}
	}

	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var load sync.WaitGroup

	// Shoppers: each adds one of the products, one at a time.
	const shoppers = 8
	shops := make([]*faultShopper, shoppers)
	stats := make([]faultAddStats, shoppers)
	for i := range shops {
		shops[i] = newFaultShopper(t, app.URL)
		if err := shops[i].Begin(); err != nil {
			t.Fatal(err)
		}
		stats[i] = faultAddStats{ok: map[int64]int{}, ambiguous: map[int64]int{}}
	}
	for i := range shops {
		load.Go(func() {
			s, st := shops[i], &stats[i]
			for ctx.Err() == nil {
				p := products[rand.IntN(len(products))]
				if st.ok[p.ID]+st.ambiguous[p.ID] >= min(p.Stock, 99)-1 {
					time.Sleep(10 * time.Millisecond)
					continue // the line is full: an add would be refused
				}
				a := s.Add(p.ID, 1)
				check(fmt.Sprintf("shopper %d: add product %d", i, p.ID), a, http.StatusSeeOther)
				if a.OK() {
					st.ok[p.ID]++
					mu.Lock()
					okTimes = append(okTimes, a.End)
					mu.Unlock()
				} else if a.Err != nil || a.Status >= 500 {
					st.ambiguous[p.ID]++
				}
				time.Sleep(time.Duration(40+rand.IntN(40)) * time.Millisecond)
			}
		})
	}
	// A reader: the pages a shopper with a cart looks at.
	reader := newFaultShopper(t, app.URL)
	if err := reader.Begin(); err != nil {
		t.Fatal(err)
	}
	if a := reader.Add(products[0].ID, 1); !a.OK() {
		t.Fatalf("the reader's first add: %s", a)
	}
	pages := []string{"/", "/cart", "/products/" + products[1].Slug, "/account", "/?q=" + products[2].Slug[:3], "/login"}
	load.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			path := pages[i%len(pages)]
			check("reader: GET "+path, reader.Get(path), http.StatusOK)
			time.Sleep(100 * time.Millisecond)
		}
	})

	probe := &http.Client{Timeout: 5 * time.Second}
	readyz := func() (int, error) {
		resp, err := probe.Get(app.URL + "/readyz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	time.Sleep(2 * time.Second)
	mu.Lock()
	warm := len(okTimes)
	mu.Unlock()
	if warm == 0 {
		t.Fatalf("no add succeeded in the 2 s before the outage: %v", problems)
	}

	// The outage.
	setPhase("stopping")
	pg.Stop()
	downAt := time.Now()
	setPhase("down")
	readyDown := map[string]int{}
	for time.Since(downAt) < faultDBOutage {
		code, err := readyz()
		key := fmt.Sprint(code)
		if err != nil {
			key = "error: " + err.Error()
		}
		readyDown[key]++
		time.Sleep(200 * time.Millisecond)
	}
	for key, n := range readyDown {
		if key != "503" {
			t.Errorf("/readyz while PostgreSQL is down: %s (%d times), want 503 every time; all: %v", key, n, readyDown)
		}
	}

	setPhase("starting")
	pg.Start()
	upAt := time.Now()
	setPhase("up")
	var readyAfter time.Duration
	for {
		code, _ := readyz()
		if code == http.StatusOK {
			readyAfter = time.Since(upAt)
			break
		}
		if time.Since(upAt) > 30*time.Second {
			t.Fatalf("/readyz is not 200 within 30 s of PostgreSQL's return (last %d)", code)
		}
		time.Sleep(25 * time.Millisecond)
	}
	firstAdd := func() (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, at := range okTimes {
			if at.After(upAt) {
				return at.Sub(upAt), true
			}
		}
		return 0, false
	}
	var addAfter time.Duration
	for {
		d, ok := firstAdd()
		if ok {
			addAfter = d
			break
		}
		if time.Since(upAt) > 30*time.Second {
			t.Fatalf("no add succeeded within 30 s of PostgreSQL's return")
		}
		time.Sleep(25 * time.Millisecond)
	}
	// A while of load after the recovery, then the books.
	time.Sleep(3 * time.Second)
	stopLoad()
	load.Wait()
	setPhase("after")

	// Every promised add is in the database: per shopper and product, the
	// line holds at least the successes and at most the successes plus the
	// answers that left the outcome open.
	var promised, lost, phantom, failed int
	for i, s := range shops {
		st := stats[i]
		lines := map[int64]int{}
		if hash := s.SessionHash(); hash != nil {
			rows, err := db.Query(`SELECT ci.product_id, ci.quantity FROM sessions s
				JOIN carts c ON c.user_id = s.user_id JOIN cart_items ci ON ci.cart_id = c.id
				WHERE s.token_hash = $1`, hash)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				var q int
				if err := rows.Scan(&id, &q); err != nil {
					t.Fatal(err)
				}
				lines[id] = q
			}
			rows.Close()
		}
		for _, p := range products {
			ok, amb, got := st.ok[p.ID], st.ambiguous[p.ID], lines[p.ID]
			promised += ok
			failed += amb
			if got < ok {
				lost += ok - got
				t.Errorf("shopper %d, product %d: %d adds answered 303, the cart holds %d (%d answers failed): %d promised adds lost",
					i, p.ID, ok, got, amb, ok-got)
			}
			if got > ok+amb {
				phantom += got - ok - amb
				t.Errorf("shopper %d, product %d: the cart holds %d, more than the %d successful and %d failed adds",
					i, p.ID, got, ok, amb)
			}
		}
	}
	if promised == 0 {
		t.Fatal("no add succeeded at all")
	}
	for _, p := range problems {
		t.Error(p)
	}

	var keys []string
	for k := range statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var answers []string
	for _, k := range keys {
		answers = append(answers, fmt.Sprintf("%s×%d", k, statuses[k]))
	}
	t.Logf("answers by phase: %s", strings.Join(answers, ", "))
	t.Logf("/readyz while down: %v", readyDown)
	recovery := max(readyAfter, addAfter)
	within := "within"
	if recovery > faultRecoveryBound {
		within = "NOT within"
	}
	t.Logf("FIGURE db-restart recovery: %s s (readyz %s s, first add %s s after pg_ctl start returned; %s the %v bound); adds ok %d, failed %d, lost %d, phantom %d; slowest answer while down %s s",
		faultSeconds(recovery), faultSeconds(readyAfter), faultSeconds(addAfter), within, faultRecoveryBound,
		promised, failed, lost, phantom, faultSeconds(slowestDown))
	if recovery > faultRecoveryFail {
		t.Errorf("the app served again %v after PostgreSQL's return; the issue asks for %v (this test fails at %v)",
			recovery, faultRecoveryBound, faultRecoveryFail)
	}
	// And it still serves.
	after := newFaultShopper(t, app.URL)
	if err := after.Begin(); err != nil {
		t.Fatal(err)
	}
	if a := after.Add(products[3].ID, 2); !a.OK() {
		t.Errorf("an add after the test: %s", a)
	}
	app.expectCleanLog()
}
