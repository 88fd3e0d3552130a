package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"shopfront/models"
	"shopfront/models/modeltest"
)

// funnelNow is the funnel tests' "now": the window of 30 days is November 2024.
var funnelNow = time.Date(2024, time.November, 30, 15, 4, 5, 0, time.UTC)

// nov returns a UTC time on a day of November 2024.
func nov(day, hour, minute int) time.Time {
	return time.Date(2024, time.November, day, hour, minute, 0, 0, time.UTC)
}

// mustEvent inserts an event as it would have been recorded at at.
func mustEvent(t *testing.T, db *gorm.DB, userID uuid.UUID, typ string, at time.Time, data string) {
	t.Helper()
	if data == "" {
		data = "{}"
	}
	err := db.Exec(`INSERT INTO events (user_id, type, data, created_at) VALUES (?, ?, ?::jsonb, ?)`,
		userID, typ, data, at).Error
	if err != nil {
		t.Fatalf("insert %s event: %v", typ, err)
	}
}

func mustFunnel(t *testing.T, db *gorm.DB, now time.Time, days int) models.Funnel {
	t.Helper()
	f, err := models.NewStats(db).Funnel(context.Background(), now, days)
	if err != nil {
		t.Fatalf("funnel: %v", err)
	}
	return f
}

// day returns the funnel's day for date, failing when it is missing.
func day(t *testing.T, f models.Funnel, date time.Time) models.FunnelDay {
	t.Helper()
	for _, d := range f.Days {
		if d.Day.Equal(date) {
			return d
		}
	}
	t.Fatalf("no funnel day %s", date.Format(time.DateOnly))
	return models.FunnelDay{}
}

func TestFunnelCountsEachUTCDay(t *testing.T) {
	db := modeltest.NewDB(t)
	guestA, guestB, account, other := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	ev := func(user uuid.UUID, typ string, at time.Time, data string) { mustEvent(t, db, user, typ, at, data) }

	// Guests created: on both edges of the window and just outside them.
	ev(uuid.New(), models.EventGuestCreated, nov(1, 0, 0), "")                                 // first instant: in
	ev(uuid.New(), models.EventGuestCreated, nov(1, 0, 0), "")                                 // in
	ev(uuid.New(), models.EventGuestCreated, nov(1, 0, 0).Add(-time.Microsecond), "")          // Oct 31: out
	ev(uuid.New(), models.EventGuestCreated, nov(30, 23, 59).Add(59*time.Second), "")          // last second: in
	ev(uuid.New(), models.EventGuestCreated, nov(30, 0, 0), "")                                // in
	ev(uuid.New(), models.EventGuestCreated, nov(30, 12, 0), "")                               // in
	ev(uuid.New(), models.EventGuestCreated, time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), "") // tomorrow: out
	ev(guestA, models.EventGuestCreated, nov(15, 12, 0), "")                                   // in

	// Save requests: guest A asks twice on the 15th and again on the 16th.
	ev(guestA, models.EventSaveRequested, nov(15, 12, 5), `{"address_taken": false}`)
	ev(guestA, models.EventSaveRequested, nov(15, 12, 9), `{"address_taken": false}`)
	ev(guestB, models.EventSaveRequested, nov(15, 23, 59), `{"address_taken": true}`)
	ev(guestA, models.EventSaveRequested, nov(16, 0, 0), `{"address_taken": false}`)
	ev(guestB, models.EventSaveRequested, nov(1, 0, 0).Add(-time.Second), "") // out

	ev(guestA, models.EventUpgraded, nov(16, 0, 30), "")
	ev(guestB, models.EventUpgraded, nov(20, 8, 0), "")

	// Only sign-ins that merged a guest cart count.
	ev(account, models.EventSignedIn, nov(20, 9, 0), `{"prev_guest_id": "`+uuid.NewString()+`"}`)
	ev(account, models.EventSignedIn, nov(20, 10, 0), "")
	ev(account, models.EventSignedIn, nov(20, 11, 0), `{"user_agent": "x"}`)
	ev(account, models.EventSignedIn, time.Date(2024, 10, 31, 23, 0, 0, 0, time.UTC), `{"prev_guest_id": "`+uuid.NewString()+`"}`)

	// Other events in the window are not part of the funnel.
	ev(other, models.EventSignedOut, nov(20, 12, 0), "")
	ev(other, models.EventPasswordReset, nov(20, 12, 0), "")
	ev(other, models.EventGuestCulled, nov(20, 12, 0), `{"count": 40}`)

	want := map[int]models.FunnelDay{
		1:  {GuestsCreated: 2},
		15: {GuestsCreated: 1, SaveRequested: 2},
		16: {SaveRequested: 1, Saved: 1},
		20: {Saved: 1, SignInMerges: 1},
		30: {GuestsCreated: 3},
	}
	check := func(t *testing.T, f models.Funnel) {
		t.Helper()
		if len(f.Days) != 30 {
			t.Fatalf("%d days, want 30", len(f.Days))
		}
		for i, d := range f.Days {
			date := nov(i+1, 0, 0)
			if !d.Day.Equal(date) || d.Day.Location() != time.UTC {
				t.Fatalf("day %d is %v, want %v", i, d.Day, date)
			}
			w := want[i+1]
			w.Day = date
			if d != w {
				t.Errorf("Nov %d: got %+v, want %+v", i+1, d, w)
			}
		}
		wantTotals := models.FunnelDay{Day: nov(1, 0, 0), GuestsCreated: 6, SaveRequested: 2, Saved: 2, SignInMerges: 1}
		if f.Totals != wantTotals {
			t.Errorf("totals: got %+v, want %+v", f.Totals, wantTotals)
		}
		if want := 2.0 / 6.0; f.ConversionRate != want {
			t.Errorf("conversion rate = %v, want %v", f.ConversionRate, want)
		}
	}

	t.Run("days of the window, zeros included", func(t *testing.T) {
		check(t, mustFunnel(t, db, funnelNow, 30))
	})
	t.Run("same days whatever the session time zone", func(t *testing.T) {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`SET LOCAL TimeZone = 'Pacific/Auckland'`).Error; err != nil {
				return err
			}
			// now is given in another zone too: its UTC day decides.
			check(t, mustFunnel(t, tx, funnelNow.In(time.FixedZone("UTC+12", 12*3600)), 30))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a one-day window is today", func(t *testing.T) {
		f := mustFunnel(t, db, funnelNow, 1)
		if len(f.Days) != 1 || f.Days[0] != (models.FunnelDay{Day: nov(30, 0, 0), GuestsCreated: 3}) {
			t.Fatalf("days = %+v, want only Nov 30 with 3 guests", f.Days)
		}
		if f.Totals.GuestsCreated != 3 || f.ConversionRate != 0 {
			t.Fatalf("totals %+v, rate %v: want 3 guests, rate 0", f.Totals, f.ConversionRate)
		}
	})
	t.Run("sparse days still listed", func(t *testing.T) {
		f := mustFunnel(t, db, funnelNow, 30)
		if got := day(t, f, nov(2, 0, 0)); got != (models.FunnelDay{Day: nov(2, 0, 0)}) {
			t.Fatalf("Nov 2 = %+v, want zeros", got)
		}
	})
}

func TestFunnelWithoutEventsIsZero(t *testing.T) {
	db := modeltest.NewDB(t)
	f := mustFunnel(t, db, funnelNow, 30)
	if len(f.Days) != 30 {
		t.Fatalf("%d days, want 30", len(f.Days))
	}
	for _, d := range f.Days {
		if d != (models.FunnelDay{Day: d.Day}) {
			t.Fatalf("%s: %+v, want zeros", d.Day.Format(time.DateOnly), d)
		}
	}
	if f.ConversionRate != 0 || f.HasMedian || f.MedianTimeToSave != 0 {
		t.Fatalf("rate %v, median %v (%v): want zeros", f.ConversionRate, f.MedianTimeToSave, f.HasMedian)
	}
}

func TestFunnelRejectsBadWindow(t *testing.T) {
	db := modeltest.NewDB(t)
	for _, days := range []int{0, -1, models.MaxFunnelDays + 1} {
		if _, err := models.NewStats(db).Funnel(context.Background(), funnelNow, days); err == nil {
			t.Errorf("days = %d: no error", days)
		}
	}
}

func TestFunnelMedianTimeToSave(t *testing.T) {
	// saved creates a guest at created and upgrades it after d.
	saved := func(t *testing.T, db *gorm.DB, created time.Time, d time.Duration) {
		id := uuid.New()
		mustEvent(t, db, id, models.EventGuestCreated, created, "")
		mustEvent(t, db, id, models.EventSaveRequested, created.Add(d/2), "")
		mustEvent(t, db, id, models.EventUpgraded, created.Add(d), "")
	}
	// noise adds upgrades the median must ignore.
	noise := func(t *testing.T, db *gorm.DB) {
		// Saved before the window.
		saved(t, db, time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC), 100*time.Hour)
		// An upgrade without a guest.created event (a culled history).
		mustEvent(t, db, uuid.New(), models.EventUpgraded, nov(10, 0, 0), "")
	}

	t.Run("odd count takes the middle", func(t *testing.T) {
		db := modeltest.NewDB(t)
		noise(t, db)
		saved(t, db, nov(3, 10, 0), time.Hour)
		saved(t, db, nov(4, 10, 0), 10*time.Hour)
		// Created before the window, saved in it: counts.
		saved(t, db, time.Date(2024, 10, 31, 23, 0, 0, 0, time.UTC), 2*time.Hour+15*time.Minute)
		f := mustFunnel(t, db, funnelNow, 30)
		if !f.HasMedian || f.MedianTimeToSave != 2*time.Hour+15*time.Minute {
			t.Fatalf("median = %v (%v), want 2h15m", f.MedianTimeToSave, f.HasMedian)
		}
	})
	t.Run("even count averages the middle two", func(t *testing.T) {
		db := modeltest.NewDB(t)
		noise(t, db)
		saved(t, db, nov(3, 10, 0), time.Hour)
		saved(t, db, nov(4, 10, 0), 2*time.Hour)
		saved(t, db, nov(5, 10, 0), 3*time.Hour)
		saved(t, db, nov(6, 10, 0), 90*time.Hour)
		f := mustFunnel(t, db, funnelNow, 30)
		if !f.HasMedian || f.MedianTimeToSave != 2*time.Hour+30*time.Minute {
			t.Fatalf("median = %v (%v), want 2h30m", f.MedianTimeToSave, f.HasMedian)
		}
		if f.Totals.Saved != 5 || f.Totals.GuestsCreated != 4 {
			t.Fatalf("totals %+v: want 5 saved (one without guest event), 4 guests", f.Totals)
		}
	})
	t.Run("none saved in the window has no median", func(t *testing.T) {
		db := modeltest.NewDB(t)
		saved(t, db, time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC), time.Hour)
		mustEvent(t, db, uuid.New(), models.EventGuestCreated, nov(3, 0, 0), "")
		f := mustFunnel(t, db, funnelNow, 30)
		if f.HasMedian || f.MedianTimeToSave != 0 {
			t.Fatalf("median = %v (%v), want none", f.MedianTimeToSave, f.HasMedian)
		}
		if f.ConversionRate != 0 {
			t.Fatalf("conversion rate = %v, want 0", f.ConversionRate)
		}
	})
}
