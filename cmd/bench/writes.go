package main

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// statsFlushLag is how long the server must have been idle before
// pg_stat_user_tables holds everything it wrote. Since PostgreSQL 15 a
// backend adds its counts to the shared statistics when it goes idle, but
// at most once a second; what it holds back then is flushed by a timer
// PGSTAT_IDLE_INTERVAL (10 s) after it last went idle, unless it runs
// another transaction first. So the last second of a load appears about
// 10 s after the load ends, not 1 s: measured on PostgreSQL 15.20, a burst's
// tail showed up 9.8 s after its last statement.
const statsFlushLag = 11 * time.Second

// rowWrites counts the rows of one table inserted, updated and deleted.
type rowWrites struct {
	inserted, updated, deleted int64
}

func (w rowWrites) total() int64 { return w.inserted + w.updated + w.deleted }

// tableWrites are the rowWrites of each table.
type tableWrites map[string]rowWrites

// writeWatch attributes the rows written in the bench database to the loads
// between its reads. Each read first waits out statsFlushLag, so one read
// closes a load's count and opens the next one's: nothing the bench does
// itself between two loads may write.
type writeWatch struct {
	db   *sql.DB
	last tableWrites
}

// start takes the counts the first load's writes are measured from.
func (w *writeWatch) start(ctx context.Context) error {
	t, err := w.settled(ctx)
	w.last = t
	return err
}

// next returns the rows written since the last read.
func (w *writeWatch) next(ctx context.Context) (tableWrites, error) {
	t, err := w.settled(ctx)
	if err != nil {
		return nil, err
	}
	d := t.since(w.last)
	w.last = t
	return d, nil
}

func (w *writeWatch) settled(ctx context.Context) (tableWrites, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(statsFlushLag):
	}
	return readWrites(ctx, w.db)
}

// readWrites reads the cumulative row counts of every table of the database
// from pg_stat_user_tables. The query is a transaction of its own, and
// PostgreSQL drops a transaction's statistics snapshot at its end
// (stats_fetch_consistency = cache), so each read sees the counts of now.
func readWrites(ctx context.Context, db *sql.DB) (tableWrites, error) {
	// relid::regclass names the table as the search path sees it: "carts",
	// or schema-qualified outside it.
	rows, err := db.QueryContext(ctx, `
		SELECT relid::regclass::text, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables`)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_user_tables: %w", err)
	}
	defer rows.Close()
	t := tableWrites{}
	for rows.Next() {
		var name string
		var w rowWrites
		if err := rows.Scan(&name, &w.inserted, &w.updated, &w.deleted); err != nil {
			return nil, fmt.Errorf("read pg_stat_user_tables: %w", err)
		}
		t[name] = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pg_stat_user_tables: %w", err)
	}
	return t, nil
}

// since is what was written between before and t: the tables whose counts
// changed, with the differences. A table new since before counts from zero.
func (t tableWrites) since(before tableWrites) tableWrites {
	d := tableWrites{}
	for name, now := range t {
		was := before[name]
		w := rowWrites{now.inserted - was.inserted, now.updated - was.updated, now.deleted - was.deleted}
		if w != (rowWrites{}) {
			d[name] = w
		}
	}
	return d
}

// total is the number of rows written, all tables together.
func (t tableWrites) total() int64 {
	var n int64
	for _, w := range t {
		n += w.total()
	}
	return n
}

// String lists the tables by name: "cart_items 12 updated; carts 12 updated".
func (t tableWrites) String() string {
	if t.total() == 0 {
		return "0 rows"
	}
	names := make([]string, 0, len(t))
	for name := range t {
		names = append(names, name)
	}
	slices.Sort(names)
	var parts []string
	for _, name := range names {
		w := t[name]
		var counts []string
		for _, c := range []struct {
			n    int64
			verb string
		}{{w.inserted, "inserted"}, {w.updated, "updated"}, {w.deleted, "deleted"}} {
			if c.n != 0 {
				counts = append(counts, fmt.Sprintf("%d %s", c.n, c.verb))
			}
		}
		if len(counts) > 0 {
			parts = append(parts, name+" "+strings.Join(counts, ", "))
		}
	}
	return strings.Join(parts, "; ")
}
