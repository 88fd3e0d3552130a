package models

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Email is a message to send: a plain-text body and its HTML alternative.
type Email struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// OutboxMessage is a row of the outbox table.
type OutboxMessage struct {
	ID        int64     `gorm:"primaryKey"`
	Recipient string    `gorm:"not null"`
	Subject   string    `gorm:"not null"`
	TextBody  string    `gorm:"not null"`
	HTMLBody  string    `gorm:"column:html_body;not null"`
	CreatedAt time.Time `gorm:"not null;default:now()"`
	SendAfter time.Time `gorm:"not null;default:now()"`
	Attempts  int       `gorm:"type:integer;not null;default:0"`
	LastError string    `gorm:"not null;default:''"`
	SentAt    *time.Time
	FailedAt  *time.Time
}

// TableName is the outbox table.
func (OutboxMessage) TableName() string { return "outbox" }

// Email returns the message as an Email.
func (m OutboxMessage) Email() Email {
	return Email{To: m.Recipient, Subject: m.Subject, Text: m.TextBody, HTML: m.HTMLBody}
}

// enqueueEmail writes e to the outbox in the caller's transaction: the mail
// exists exactly when the change that causes it commits.
func enqueueEmail(ctx context.Context, tx *gorm.DB, e Email) error {
	err := tx.WithContext(ctx).Create(&OutboxMessage{
		Recipient: e.To, Subject: e.Subject, TextBody: e.Text, HTMLBody: e.HTML,
		SendAfter: time.Now(),
	}).Error
	if err != nil {
		return fmt.Errorf("enqueue email: %w", err)
	}
	return nil
}

// Outbox is the queue of mail to send.
type Outbox struct {
	db *gorm.DB
}

// NewOutbox returns the outbox over db.
func NewOutbox(db *gorm.DB) *Outbox {
	return &Outbox{db: db}
}

// Enqueue writes e to the outbox on its own. Changes that cause mail
// enqueue it in their own transaction instead.
func (o *Outbox) Enqueue(ctx context.Context, e Email) error {
	return enqueueEmail(ctx, o.db, e)
}

// Delivery is what the sender says about one message of a batch.
type Delivery struct {
	Err error
	// Retry says whether a failure is temporary (try again later).
	Retry bool
}

// Process claims up to limit due messages, calls send with them, and
// records each outcome, all in one transaction: the rows stay locked while
// they are sent (FOR UPDATE SKIP LOCKED), so several workers never send the
// same message. send returns one Delivery per message. A temporary failure
// is retried after backoff(attempts); a permanent one, or the maxAttempts-th,
// is given up. It returns how many messages it claimed.
func (o *Outbox) Process(ctx context.Context, limit, maxAttempts int, backoff func(attempts int) time.Duration,
	send func(ctx context.Context, msgs []OutboxMessage) []Delivery) (int, error) {
	var claimed int
	err := o.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var msgs []OutboxMessage
		err := tx.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}).
			Where("sent_at IS NULL AND failed_at IS NULL AND send_after <= now()").
			Order("send_after, id").Limit(limit).Find(&msgs).Error
		if err != nil || len(msgs) == 0 {
			return err
		}
		claimed = len(msgs)
		results := send(ctx, msgs)
		for i, m := range msgs {
			if err := recordDelivery(tx, m, results[i], maxAttempts, backoff); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return claimed, fmt.Errorf("process outbox: %w", err)
	}
	return claimed, nil
}

func recordDelivery(tx *gorm.DB, m OutboxMessage, d Delivery, maxAttempts int, backoff func(int) time.Duration) error {
	attempts := m.Attempts + 1
	var err error
	switch {
	case d.Err == nil:
		err = tx.Exec(`UPDATE outbox SET sent_at = now(), attempts = ?, last_error = '' WHERE id = ?`, attempts, m.ID).Error
	case d.Retry && attempts < maxAttempts:
		err = tx.Exec(`UPDATE outbox SET attempts = ?, last_error = ?, send_after = now() + make_interval(secs => ?) WHERE id = ?`,
			attempts, cleanText(d.Err.Error(), 1000), backoff(attempts).Seconds(), m.ID).Error
	default:
		err = tx.Exec(`UPDATE outbox SET attempts = ?, last_error = ?, failed_at = now() WHERE id = ?`,
			attempts, cleanText(d.Err.Error(), 1000), m.ID).Error
	}
	if err != nil {
		return fmt.Errorf("record delivery of %d: %w", m.ID, err)
	}
	return nil
}

// Recent returns the newest messages first, for the development mailbox.
func (o *Outbox) Recent(ctx context.Context, limit int) ([]OutboxMessage, error) {
	var msgs []OutboxMessage
	if err := o.db.WithContext(ctx).Order("id DESC").Limit(limit).Find(&msgs).Error; err != nil {
		return nil, fmt.Errorf("recent mail: %w", err)
	}
	return msgs, nil
}

// ByID returns one message, or ErrNotFound.
func (o *Outbox) ByID(ctx context.Context, id int64) (OutboxMessage, error) {
	var msgs []OutboxMessage
	if err := o.db.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&msgs).Error; err != nil {
		return OutboxMessage{}, fmt.Errorf("mail %d: %w", id, err)
	}
	if len(msgs) == 0 {
		return OutboxMessage{}, ErrNotFound
	}
	return msgs[0], nil
}
