package models

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"gorm.io/gorm"
)

// MaxFunnelDays bounds the funnel's window, so one request cannot ask for an
// aggregate over the whole event history.
const MaxFunnelDays = 366

// FunnelDay is one UTC day of the conversion funnel.
type FunnelDay struct {
	Day           time.Time // UTC midnight
	GuestsCreated int       // guest.created events
	SaveRequested int       // guests that asked to save their account (each once)
	Saved         int       // account.upgraded events
	SignInMerges  int       // sign-ins that merged a guest's cart into an account
}

// Funnel is how guests became customers over a window of days.
type Funnel struct {
	Days []FunnelDay // every day of the window, oldest first, zeros included
	// Totals sums the days (its Day is the first one), except that
	// SaveRequested counts each guest once over the whole window, even when it
	// asked on several days.
	Totals FunnelDay
	// ConversionRate is Totals.Saved ÷ Totals.GuestsCreated; 0 without guests.
	ConversionRate float64
	// MedianTimeToSave is the median time from guest.created to
	// account.upgraded of the accounts saved in the window; HasMedian is false
	// (and it is 0) when none was.
	MedianTimeToSave time.Duration
	HasMedian        bool
}

// Stats reads aggregates of the event log for the admin pages.
type Stats struct {
	db *gorm.DB
}

// NewStats returns the statistics reader over db.
func NewStats(db *gorm.DB) *Stats {
	return &Stats{db: db}
}

// funnelRow is one row of the daily counts query; Day is NULL on the totals row.
type funnelRow struct {
	Day           *time.Time
	GuestsCreated int
	SaveRequested int
	Saved         int
	SignInMerges  int
}

// The daily counts come from one pass over the window's events, found through
// idx_events_type_created. GROUPING SETS adds the totals row, so a guest that
// asks to save on two days counts once in the total. The series supplies the
// days without events.
//
// `data ? 'prev_guest_id'` would clash with GORM's ? placeholders; for a JSON
// object `data -> 'key' IS NOT NULL` is the same test.
const funnelDaysSQL = `
WITH counts AS (
	SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
		count(*) FILTER (WHERE type = @guestCreated) AS guests_created,
		count(DISTINCT user_id) FILTER (WHERE type = @saveRequested) AS save_requested,
		count(*) FILTER (WHERE type = @upgraded) AS saved,
		count(*) FILTER (WHERE type = @signedIn AND data -> 'prev_guest_id' IS NOT NULL) AS sign_in_merges
	FROM events
	WHERE type IN (@types) AND created_at >= @from AND created_at < @to
	GROUP BY GROUPING SETS (((created_at AT TIME ZONE 'UTC')::date), ())
)
SELECT d.day::date AS day,
	coalesce(c.guests_created, 0) AS guests_created,
	coalesce(c.save_requested, 0) AS save_requested,
	coalesce(c.saved, 0) AS saved,
	coalesce(c.sign_in_merges, 0) AS sign_in_merges
FROM generate_series(CAST(@first AS date), CAST(@last AS date), interval '1 day') AS d (day)
LEFT JOIN counts c ON c.day = d.day::date
UNION ALL
SELECT NULL, guests_created, save_requested, saved, sign_in_merges
FROM counts
WHERE day IS NULL
ORDER BY day NULLS LAST`

// The median pairs each upgrade in the window with its account's first
// guest.created event, found through idx_events_user_id.
const funnelMedianSQL = `
SELECT extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY up.created_at - g.created_at))::float8
FROM events up
CROSS JOIN LATERAL (
	SELECT created_at
	FROM events
	WHERE user_id = up.user_id AND type = @guestCreated
	ORDER BY id
	LIMIT 1
) g
WHERE up.type = @upgraded AND up.created_at >= @from AND up.created_at < @to`

// Funnel counts, for each of the last days UTC days up to and including the
// one of now, the guests created, the guests that asked to save their
// account, the accounts saved and the sign-ins that merged a guest cart.
func (s *Stats) Funnel(ctx context.Context, now time.Time, days int) (Funnel, error) {
	if days < 1 || days > MaxFunnelDays {
		return Funnel{}, fmt.Errorf("funnel: days = %d, want 1 to %d", days, MaxFunnelDays)
	}
	now = now.UTC()
	last := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := last.AddDate(0, 0, -(days - 1))
	args := map[string]any{
		"guestCreated":  EventGuestCreated,
		"saveRequested": EventSaveRequested,
		"upgraded":      EventUpgraded,
		"signedIn":      EventSignedIn,
		"types":         []string{EventGuestCreated, EventSaveRequested, EventUpgraded, EventSignedIn},
		"from":          first,
		"to":            last.AddDate(0, 0, 1),
		"first":         first.Format(time.DateOnly),
		"last":          last.Format(time.DateOnly),
	}
	db := s.db.WithContext(ctx)

	var rows []funnelRow
	if err := db.Raw(funnelDaysSQL, args).Scan(&rows).Error; err != nil {
		return Funnel{}, fmt.Errorf("funnel counts: %w", err)
	}
	f := Funnel{Days: make([]FunnelDay, 0, days)}
	for _, r := range rows {
		d := FunnelDay{
			GuestsCreated: r.GuestsCreated,
			SaveRequested: r.SaveRequested,
			Saved:         r.Saved,
			SignInMerges:  r.SignInMerges,
		}
		if r.Day == nil {
			f.Totals = d
			continue
		}
		d.Day = time.Date(r.Day.Year(), r.Day.Month(), r.Day.Day(), 0, 0, 0, 0, time.UTC)
		f.Days = append(f.Days, d)
	}
	if len(f.Days) != days {
		return Funnel{}, fmt.Errorf("funnel counts: %d days, want %d", len(f.Days), days)
	}
	f.Totals.Day = first
	if f.Totals.GuestsCreated > 0 {
		f.ConversionRate = float64(f.Totals.Saved) / float64(f.Totals.GuestsCreated)
	}

	var seconds sql.NullFloat64
	if err := db.Raw(funnelMedianSQL, args).Row().Scan(&seconds); err != nil {
		return Funnel{}, fmt.Errorf("funnel median: %w", err)
	}
	if seconds.Valid {
		f.MedianTimeToSave = time.Duration(math.Round(seconds.Float64 * float64(time.Second)))
		f.HasMedian = true
	}
	return f, nil
}
