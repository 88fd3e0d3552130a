package mailer

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"shopfront/mailer/mailtest"
	"shopfront/models"
	"shopfront/models/modeltest"
)

func TestBackoff_Defaults(t *testing.T) {
	w := NewWorker(nil, nil, nil)
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		28 * time.Second, 28 * time.Second, 28 * time.Second}
	for i, d := range want {
		if got := w.backoff(i + 1); got != d {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, d)
		}
	}
	if got := w.backoff(1000); got != 28*time.Second {
		t.Errorf("backoff(1000) = %v, want the 28 s cap", got)
	}
}

func TestWorker_RefusesBadSettings(t *testing.T) {
	w := NewWorker(models.NewOutbox(nil), newSender(t, "smtp://mail.example.com"), slog.New(slog.DiscardHandler))
	w.BatchSize = 0
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("Run with BatchSize 0 returned nil")
	}
}

func TestWorker_DrainsOutbox(t *testing.T) {
	db, sink := modeltest.NewDB(t), mailtest.NewServer(t)
	w, _ := newTestWorker(t, db, sink)
	startWorker(t, w)
	enqueue(t, db, 3, "drain")
	w.Kick()

	msgs := sink.WaitFor(t, 3, 10*time.Second)

	want := map[string]bool{"drain 0": true, "drain 1": true, "drain 2": true}
	for _, m := range msgs {
		if !want[m.Subject] {
			t.Errorf("unexpected message %q", m.Subject)
		}
		delete(want, m.Subject)
	}
	waitUntil(t, "all rows are marked sent", func() bool { return countWhere(t, db, "sent_at IS NOT NULL") == 3 })
}

func TestWorker_KickWakesIt(t *testing.T) {
	db, sink := modeltest.NewDB(t), mailtest.NewServer(t)
	w, _ := newTestWorker(t, db, sink)
	w.PollInterval = time.Hour // only Kick can wake it
	startWorker(t, w)
	time.Sleep(50 * time.Millisecond) // let it go to sleep on the empty outbox
	enqueue(t, db, 1, "kicked")

	w.Kick()

	sink.WaitFor(t, 1, 10*time.Second)
}

func TestWorker_RidesOutSMTPOutage(t *testing.T) {
	db, sink := modeltest.NewDB(t), mailtest.NewServer(t)
	w, _ := newTestWorker(t, db, sink)
	sink.Stop()
	stop := startWorker(t, w)
	enqueue(t, db, 10, "outage")
	w.Kick()
	waitUntil(t, "every message failed twice", func() bool {
		return countWhere(t, db, "attempts >= 2 AND sent_at IS NULL AND failed_at IS NULL") == 10
	})

	if err := sink.Start(); err != nil {
		t.Fatalf("restart sink: %v", err)
	}
	sink.WaitFor(t, 10, 20*time.Second)
	waitUntil(t, "all rows are marked sent", func() bool { return countWhere(t, db, "sent_at IS NOT NULL") == 10 })
	stop()

	wantEachOnce(t, sink.Messages(), "outage", 10)
}

func TestWorkers_TwoShareOneDatabase(t *testing.T) {
	const total = 200
	db, sink := modeltest.NewDB(t), mailtest.NewServer(t)
	enqueue(t, db, total, "shared")
	var logs [2]*logRecorder
	var stops [2]func()
	for i := range 2 {
		// Separate senders and outboxes, as two app instances would have.
		w, rec := newTestWorker(t, db, sink)
		w.BatchSize = 10
		logs[i], stops[i] = rec, startWorker(t, w)
	}

	sink.WaitFor(t, total, 60*time.Second)
	waitUntil(t, "all rows are marked sent", func() bool { return countWhere(t, db, "sent_at IS NOT NULL") == total })
	stops[0]()
	stops[1]()

	wantEachOnce(t, sink.Messages(), "shared", total)
	for i, rec := range logs {
		if rec.sent() == 0 {
			t.Errorf("worker %d sent nothing: the test did not exercise two workers", i)
		}
	}
	t.Logf("worker 0 sent %d, worker 1 sent %d", logs[0].sent(), logs[1].sent())
}

func TestWorker_PermanentFailureGivesUpTemporaryRetries(t *testing.T) {
	db, sink := modeltest.NewDB(t), mailtest.NewServer(t)
	sink.RejectRecipient("gone@example.test", 550)
	sink.RejectRecipient("busy@example.test", 451)
	w, rec := newTestWorker(t, db, sink)
	stop := startWorker(t, w)
	for _, to := range []string{"gone@example.test", "busy@example.test", "ok@example.test"} {
		enqueueTo(t, db, to, "to "+to)
	}
	w.Kick()

	waitUntil(t, "the 550 is given up", func() bool { return row(t, db, "gone@example.test").FailedAt != nil })
	waitUntil(t, "the 451 is retried", func() bool { return row(t, db, "busy@example.test").Attempts >= 2 })
	sink.RejectRecipient("busy@example.test", 0)
	waitUntil(t, "the 451 is sent once accepted", func() bool { return row(t, db, "busy@example.test").SentAt != nil })
	stop()

	gone := row(t, db, "gone@example.test")
	if gone.Attempts != 1 || gone.SentAt != nil || !strings.Contains(gone.LastError, "550") {
		t.Errorf("given-up row: attempts %d, sent %v, last error %q; want 1 attempt, unsent, the 550", gone.Attempts, gone.SentAt, gone.LastError)
	}
	if busy := row(t, db, "busy@example.test"); busy.FailedAt != nil || busy.LastError != "" {
		t.Errorf("retried row: failed %v, last error %q; want sent and cleared", busy.FailedAt, busy.LastError)
	}
	if got := subjects(sink.Messages()); len(got) != 2 {
		t.Errorf("sink got %v, want the ok and busy messages", got)
	}
	giveUp := rec.find(slog.LevelError, "mail given up")
	if giveUp == nil || giveUp["outbox_id"] != fmt.Sprint(gone.ID) || !strings.Contains(giveUp["err"], "550") {
		t.Errorf("give-up log = %v, want the outbox id %d and the 550", giveUp, gone.ID)
	}
	if retry := rec.find(slog.LevelWarn, "mail not sent, will retry"); retry == nil || retry["outbox_ids"] != fmt.Sprintf("[%d]", row(t, db, "busy@example.test").ID) {
		t.Errorf("retry log = %v, want the busy message's id", retry)
	}
	if rec.contains("Hello,") {
		t.Error("the log holds a mail body")
	}
}

func TestWorker_GivesUpAfterMaxAttempts(t *testing.T) {
	db, sink := modeltest.NewDB(t), mailtest.NewServer(t)
	sink.Refuse(451)
	w, rec := newTestWorker(t, db, sink)
	w.MaxAttempts = 3
	startWorker(t, w)
	enqueueTo(t, db, "a@example.test", "never accepted")
	w.Kick()

	waitUntil(t, "the message is given up", func() bool { return row(t, db, "a@example.test").FailedAt != nil })

	if got := row(t, db, "a@example.test"); got.Attempts != 3 || !strings.Contains(got.LastError, "451") {
		t.Fatalf("attempts %d, last error %q; want 3 and the 451", got.Attempts, got.LastError)
	}
	if rec.find(slog.LevelError, "mail given up") == nil {
		t.Fatal("giving up was not logged at Error")
	}
}

// newTestWorker returns a worker on db sending to sink, with intervals
// short enough for tests, and the recorder of its log.
func newTestWorker(t *testing.T, db *gorm.DB, sink *mailtest.Server) (*Worker, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	w := NewWorker(models.NewOutbox(db), newSender(t, sink.URL()), slog.New(rec))
	w.PollInterval = 20 * time.Millisecond
	w.BackoffBase = 50 * time.Millisecond
	w.BackoffMax = 200 * time.Millisecond
	return w, rec
}

// startWorker runs w until the returned stop is called or the test ends.
func startWorker(t *testing.T, w *Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("worker: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("worker did not stop within 30 s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// enqueue puts n messages "prefix 0" … "prefix n-1" in the outbox.
func enqueue(t testing.TB, db *gorm.DB, n int, prefix string) {
	t.Helper()
	msgs := make([]models.OutboxMessage, n)
	for i := range msgs {
		msgs[i] = models.OutboxMessage{
			Recipient: fmt.Sprintf("user%d@example.test", i), Subject: fmt.Sprintf("%s %d", prefix, i),
			TextBody:  "Hello,\n\nyour link: http://localhost:3000/account/password?token=abc\n",
			HTMLBody:  `<p>Hello,</p><p><a href="http://localhost:3000/account/password?token=abc">Set your password</a></p>`,
			SendAfter: time.Now(),
		}
	}
	if err := db.CreateInBatches(msgs, 500).Error; err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

// enqueueTo puts one message to to in the outbox.
func enqueueTo(t *testing.T, db *gorm.DB, to, subject string) {
	t.Helper()
	err := models.NewOutbox(db).Enqueue(context.Background(), models.Email{To: to, Subject: subject, Text: "Hello,\n", HTML: "<p>Hello,</p>"})
	if err != nil {
		t.Fatal(err)
	}
}

// row is the outbox row to recipient.
func row(t *testing.T, db *gorm.DB, recipient string) models.OutboxMessage {
	t.Helper()
	var m models.OutboxMessage
	if err := db.Where("recipient = ?", recipient).Take(&m).Error; err != nil {
		t.Fatalf("outbox row to %s: %v", recipient, err)
	}
	return m
}

func countWhere(t *testing.T, db *gorm.DB, cond string) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&models.OutboxMessage{}).Where(cond).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// waitUntil polls cond for up to 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantEachOnce checks that msgs are exactly "prefix 0" … "prefix n-1", each once.
func wantEachOnce(t *testing.T, msgs []mailtest.Message, prefix string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.Subject]++
	}
	for i := range n {
		if s := fmt.Sprintf("%s %d", prefix, i); seen[s] != 1 {
			t.Errorf("%q arrived %d times, want once", s, seen[s])
		}
	}
	if len(msgs) != n {
		t.Errorf("sink got %d messages, want %d", len(msgs), n)
	}
}

// logRecorder is a slog.Handler that keeps every record, for tests to read.
type logRecorder struct {
	mu      sync.Mutex
	records []map[string]string // "level", "msg" and the attributes
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]string{"level": rec.Level.String(), "msg": rec.Message}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, m)
	return nil
}

// find returns the first record at level with message msg, or nil.
func (r *logRecorder) find(level slog.Level, msg string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.records {
		if m["level"] == level.String() && m["msg"] == msg {
			return m
		}
	}
	return nil
}

// sent adds up the counts of the "mail sent" records.
func (r *logRecorder) sent() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int
	for _, m := range r.records {
		if m["msg"] == "mail sent" {
			var c int
			fmt.Sscan(m["count"], &c)
			n += c
		}
	}
	return n
}

// contains reports whether any record holds s.
func (r *logRecorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.records {
		for _, v := range m {
			if strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}
