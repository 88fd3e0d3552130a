package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"shopfront/models"
)

// cullFirstAfter is when serve's first cull runs (or sooner with a shorter
// CULL_EVERY), leaving start-up alone; then every CULL_EVERY (1 h).
const cullFirstAfter = time.Minute

// cull deletes the guests unseen for GUEST_CULL_AFTER, then expired sessions,
// spent email tokens and ended rate-limit windows. When another instance is
// culling (serve's hourly job, say) it says so and exits 0, unless --wait
// gives it time to wait for that one to finish.
func cull(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("cull", flag.ContinueOnError)
	fs.SetOutput(e.stdout)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: shopfront cull [--dry-run] [--batch N] [--wait D]\n\n"+
			"Deletes guests last seen more than GUEST_CULL_AFTER (%v) ago, with their sessions,\n"+
			"carts and tokens; then expired sessions, spent email tokens and ended rate-limit windows.\n\n",
			e.cfg.GuestCullAfter)
		fs.PrintDefaults()
	}
	dryRun := fs.Bool("dry-run", false, "count what would be deleted, delete nothing")
	batch := fs.Int("batch", models.DefaultCullBatch, "rows deleted per transaction")
	wait := fs.Duration("wait", 0, "how long to wait for a cull already running elsewhere (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("cull: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("cull: unexpected argument %q (flags: --dry-run, --batch N, --wait D)", fs.Arg(0))
	}
	if *batch < 1 || *batch > models.MaxCullBatch {
		return fmt.Errorf("cull: --batch must be between 1 and %d, got %d", models.MaxCullBatch, *batch)
	}
	if *wait < 0 {
		return fmt.Errorf("cull: --wait must not be negative, got %v", *wait)
	}

	db, closeDB, err := openDB(ctx, e)
	if err != nil {
		return err
	}
	defer closeDB()

	lastShown := time.Now()
	res, err := models.NewCuller(db).Cull(ctx, models.CullOptions{
		OlderThan: e.cfg.GuestCullAfter,
		BatchSize: *batch,
		DryRun:    *dryRun,
		Wait:      *wait,
		Progress: func(deleted int64) {
			if time.Since(lastShown) >= time.Second {
				lastShown = time.Now()
				fmt.Fprintf(e.stdout, "… %d guests culled\n", deleted)
			}
		},
	})
	if err != nil {
		if res.Deleted > 0 {
			fmt.Fprintf(e.stdout, "culled %d guests before the error\n", res.Deleted)
		}
		return err
	}
	switch {
	case res.Skipped:
		fmt.Fprintln(e.stdout, "another cull is running (it holds the lock): nothing done")
		return nil
	case *dryRun:
		fmt.Fprintf(e.stdout, "would cull %d guests (last seen before %s)\n", res.Deleted, stamp(res.Cutoff))
		for _, g := range res.Oldest {
			fmt.Fprintf(e.stdout, "  %s  last seen %s\n", g.ID, stamp(g.LastSeenAt))
		}
		if len(res.Oldest) > 0 && res.Deleted > int64(len(res.Oldest)) {
			fmt.Fprintf(e.stdout, "  … and %d more\n", res.Deleted-int64(len(res.Oldest)))
		}
		fmt.Fprintf(e.stdout, "would remove %s\n", housekeeping(res))
		return nil
	}
	if res.Deleted == 0 {
		fmt.Fprintf(e.stdout, "no guest last seen before %s: none culled\n", stamp(res.Cutoff))
	} else {
		secs := res.Took.Seconds()
		fmt.Fprintf(e.stdout, "culled %d guests in %d batches (%.1f s, %.0f guests/s)\n",
			res.Deleted, res.Batches, secs, float64(res.Deleted)/max(secs, 1e-3))
	}
	fmt.Fprintf(e.stdout, "removed %s\n", housekeeping(res))
	return nil
}

func housekeeping(res models.CullResult) string {
	return fmt.Sprintf("%d expired sessions, %d spent email tokens, %d ended rate-limit windows",
		res.Sessions, res.Tokens, res.RateLimits)
}

func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// cullHourly runs the cull every CULL_EVERY (an hour) until ctx ends.
// Instances that start together all try; the advisory lock lets one of them
// work.
func cullHourly(ctx context.Context, e env, culler *models.Culler) {
	every := e.cfg.CullEvery
	cullLoop(ctx, e.log, culler, e.cfg.GuestCullAfter, min(cullFirstAfter, every), every)
}

func cullLoop(ctx context.Context, log *slog.Logger, culler *models.Culler, olderThan, first, every time.Duration) {
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res, err := culler.Cull(ctx, models.CullOptions{OlderThan: olderThan})
		switch {
		case err != nil && ctx.Err() != nil:
			return // shutting down
		case err != nil:
			log.Error("cull failed", "err", err, "guests", res.Deleted)
		case res.Skipped:
			log.Debug("cull skipped: another instance is culling")
		case res.Deleted+res.Sessions+res.Tokens+res.RateLimits == 0:
			log.Debug("cull: nothing to delete", "took", res.Took)
		default:
			log.Info("cull done", "guests", res.Deleted, "batches", res.Batches, "sessions", res.Sessions,
				"tokens", res.Tokens, "rate_limits", res.RateLimits, "took", res.Took.Round(time.Millisecond))
		}
		timer.Reset(every)
	}
}
