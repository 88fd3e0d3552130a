package mailer

import (
	"context"
	"log/slog"
	"testing"

	"shopfront/mailer/mailtest"
	"shopfront/models"
	"shopfront/models/modeltest"
)

// BenchmarkOutboxDrain measures how fast one worker empties an outbox of
// 2000 mails into a local SMTP sink: claiming and recording in PostgreSQL,
// one SMTP connection per batch.
func BenchmarkOutboxDrain(b *testing.B) {
	const mails = 2000
	db, sink := modeltest.NewDB(b), mailtest.NewServer(b)
	w := NewWorker(models.NewOutbox(db), newSender(b, sink.URL()), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		enqueue(b, db, mails, "bench")
		b.StartTimer()
		w.drain(ctx)
	}
	b.StopTimer()
	if got, want := len(sink.Messages()), b.N*mails; got != want {
		b.Fatalf("sink got %d mails, want %d", got, want)
	}
	b.ReportMetric(float64(b.N*mails)/b.Elapsed().Seconds(), "mails/s")
}
