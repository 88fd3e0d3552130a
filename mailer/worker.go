package mailer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"shopfront/models"
)

// Worker drains the outbox: it sends due mail in batches, retries temporary
// failures with exponential backoff and gives up on permanent ones. Any
// number of workers, in any number of instances, may share one database.
//
// The exported fields have working defaults; change them before Run.
type Worker struct {
	// BatchSize is the most messages claimed and sent over one connection.
	BatchSize int
	// PollInterval is how long the worker sleeps when nothing is due and
	// nobody calls Kick.
	PollInterval time.Duration
	// MaxAttempts is how many times a message is tried before it is given up.
	MaxAttempts int
	// BackoffBase is the wait after the first failure; it doubles with each
	// further failure, up to BackoffMax.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Jobs run before each drain: background work that queues mail, such
	// as turning forgot-password requests into reset links.
	Jobs []func(ctx context.Context) error

	outbox *models.Outbox
	sender *Sender
	log    *slog.Logger
	kick   chan struct{}
}

// NewWorker returns a worker with the default settings. With them a failed
// message is retried after 2, 4, 8 and 16 s, then every 28 s: with the 1 s
// poll, mail goes out at most 30 s after SMTP comes back. Temporary failures are retried for
// about three days (10,000 attempts), as mail servers themselves retry, so
// an SMTP outage loses nothing; a permanent rejection is given up at once.
func NewWorker(outbox *models.Outbox, sender *Sender, log *slog.Logger) *Worker {
	return &Worker{
		BatchSize:    50,
		PollInterval: time.Second,
		MaxAttempts:  10_000,
		BackoffBase:  2 * time.Second,
		BackoffMax:   28 * time.Second,
		outbox:       outbox,
		sender:       sender,
		log:          log,
		// One pending kick is enough: the worker drains everything due.
		kick: make(chan struct{}, 1),
	}
}

// Kick wakes the worker to send what was just enqueued without waiting for
// the poll interval. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run sends mail until ctx ends, then returns nil. A batch in flight when ctx
// ends is cut short after the message being sent, and its outcome recorded.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.check(); err != nil {
		return err
	}
	for {
		for _, job := range w.Jobs {
			if err := job(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("mail job", "err", err)
			}
		}
		w.drain(ctx)
		timer := time.NewTimer(w.PollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-w.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// check refuses settings that would spin or never send.
func (w *Worker) check() error {
	switch {
	case w.outbox == nil || w.sender == nil || w.log == nil:
		return errors.New("mail worker: outbox, sender and log are required")
	case w.BatchSize < 1 || w.MaxAttempts < 1:
		return errors.New("mail worker: BatchSize and MaxAttempts must be at least 1")
	case w.PollInterval <= 0 || w.BackoffBase <= 0 || w.BackoffMax < w.BackoffBase:
		return errors.New("mail worker: PollInterval and BackoffBase must be positive, BackoffMax at least BackoffBase")
	}
	return nil
}

// drain sends batches while messages are due. A database error ends it; the
// next poll tries again.
func (w *Worker) drain(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := w.processBatch(ctx)
		if err != nil {
			w.log.Error("mail outbox", "err", err)
			return
		}
		if n == 0 {
			return
		}
	}
}

// failure is a message that was not sent, for the log.
type failure struct {
	id       int64
	attempts int
	retry    bool
	err      error
}

// processBatch claims, sends and records one batch, and returns its size.
func (w *Worker) processBatch(ctx context.Context) (int, error) {
	var sent int
	var failures []failure
	send := func(_ context.Context, msgs []models.OutboxMessage) []models.Delivery {
		ds := w.sender.Send(ctx, msgs)
		sent, failures = w.outcomes(msgs, ds)
		return ds
	}
	// The batch is recorded even when ctx ends mid-batch: a rollback would
	// put mail that went out back in the queue, and it would go out twice.
	n, err := w.outbox.Process(context.WithoutCancel(ctx), w.BatchSize, w.MaxAttempts, w.backoff, send)
	if err != nil {
		return n, err
	}
	// Logged only once recorded, so the log never tells of a retry that the
	// database does not hold.
	w.logOutcomes(sent, failures)
	return n, nil
}

// outcomes counts the sent messages and lists the failed ones.
func (w *Worker) outcomes(msgs []models.OutboxMessage, ds []models.Delivery) (int, []failure) {
	var sent int
	var failures []failure
	for i, d := range ds {
		if d.Err == nil {
			sent++
			continue
		}
		attempts := msgs[i].Attempts + 1
		failures = append(failures, failure{
			id: msgs[i].ID, attempts: attempts, err: d.Err,
			retry: d.Retry && attempts < w.MaxAttempts,
		})
	}
	return sent, failures
}

// logOutcomes logs a batch: ids and errors, never addresses or bodies
// (they hold tokens).
func (w *Worker) logOutcomes(sent int, failures []failure) {
	if sent > 0 {
		w.log.Info("mail sent", "count", sent)
	}
	// Retries are one line a batch: an outage must not flood the log.
	var retries []int64
	var first failure
	for _, f := range failures {
		if !f.retry {
			w.log.Error("mail given up", "outbox_id", f.id, "attempts", f.attempts, "err", f.err)
			continue
		}
		if len(retries) == 0 {
			first = f
		}
		retries = append(retries, f.id)
	}
	if len(retries) > 0 {
		w.log.Warn("mail not sent, will retry", "count", len(retries), "outbox_ids", retries,
			"attempts", first.attempts, "retry_in", w.backoff(first.attempts), "err", first.err)
	}
}

// backoff is the wait after the attempts-th failure: BackoffBase doubled
// for each earlier failure, at most BackoffMax.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.BackoffBase
	for i := 1; i < attempts && d < w.BackoffMax; i++ {
		d *= 2
	}
	return min(d, w.BackoffMax)
}
