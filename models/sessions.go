package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// SessionTouchEvery is how stale last_seen_at may get before a request
// writes it again: sliding expiry without a write on every request.
const SessionTouchEvery = time.Hour

// Current is the signed-in user of a request, with what every page shows.
type Current struct {
	SessionID     uuid.UUID
	UserID        uuid.UUID
	Kind          string
	Email         string
	IsAdmin       bool
	CartCount     int       // items in the cart, for the header badge
	SessionSeenAt time.Time // the session's last_seen_at
}

// IsGuest reports whether the user has not saved the account yet.
func (c *Current) IsGuest() bool { return c.Kind == KindGuest }

// Sessions finds, creates, refreshes and ends sessions.
type Sessions struct {
	db *gorm.DB
}

// NewSessions returns the session store over db.
func NewSessions(db *gorm.DB) *Sessions {
	return &Sessions{db: db}
}

// Authenticate returns the user of the unexpired session whose token hashes
// to tokenHash, with the cart size, in one indexed query; ErrNotFound if none.
func (s *Sessions) Authenticate(ctx context.Context, tokenHash []byte) (*Current, error) {
	var cur Current
	err := s.db.WithContext(ctx).Raw(`
		SELECT s.id AS session_id, s.user_id, s.last_seen_at AS session_seen_at,
		       u.kind, coalesce(u.email, '') AS email, u.is_admin,
		       coalesce((SELECT sum(ci.quantity) FROM carts c JOIN cart_items ci ON ci.cart_id = c.id
		                 WHERE c.user_id = u.id), 0) AS cart_count
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = ? AND s.expires_at > now()`, tokenHash).Scan(&cur).Error
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if cur.SessionID == uuid.Nil {
		return nil, ErrNotFound
	}
	return &cur, nil
}

// Touch slides the session's expiry and records that the user was seen, at
// most once per SessionTouchEvery: the condition is in the UPDATE, so
// concurrent requests write once.
func (s *Sessions) Touch(ctx context.Context, sessionID uuid.UUID, ttl time.Duration) error {
	err := s.db.WithContext(ctx).Exec(`
		WITH s AS (
			UPDATE sessions SET last_seen_at = now(), expires_at = now() + make_interval(secs => ?)
			WHERE id = ? AND last_seen_at < now() - make_interval(secs => ?)
			RETURNING user_id)
		UPDATE users SET last_seen_at = now() FROM s WHERE users.id = s.user_id`,
		ttl.Seconds(), sessionID, SessionTouchEvery.Seconds()).Error
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// NewSession describes a session to create.
type NewSession struct {
	TokenHash []byte
	UserAgent string
	TTL       time.Duration
}

// createSession inserts a session for user in tx. It reports false, and
// inserts nothing, when a session with the same token hash exists already.
func createSession(ctx context.Context, tx *gorm.DB, userID uuid.UUID, ns NewSession) (bool, error) {
	res := tx.WithContext(ctx).Exec(`
		INSERT INTO sessions (id, user_id, token_hash, expires_at, user_agent)
		VALUES (?, ?, ?, now() + make_interval(secs => ?), ?)
		ON CONFLICT (token_hash) DO NOTHING`,
		newID(), userID, ns.TokenHash, ns.TTL.Seconds(), cleanText(ns.UserAgent, 512))
	if res.Error != nil {
		return false, fmt.Errorf("create session: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// deleteExpiredSession removes an expired session whose token hash a new
// session needs.
func deleteExpiredSession(ctx context.Context, db *gorm.DB, tokenHash []byte) error {
	err := db.WithContext(ctx).Exec(`DELETE FROM sessions WHERE token_hash = ? AND expires_at <= now()`, tokenHash).Error
	if err != nil {
		return fmt.Errorf("delete expired session: %w", err)
	}
	return nil
}

// cleanText makes s storable as PostgreSQL text (valid UTF-8, no NUL) and
// cuts it to at most n bytes without splitting a character.
func cleanText(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// errSessionTaken means another request created the session first.
var errSessionTaken = errors.New("session token already in use")
