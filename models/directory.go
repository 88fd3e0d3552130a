package models

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// exactCountUpTo is how far the admin counts count exactly; past it they
// show the planner's estimate, which costs nothing at any size.
const exactCountUpTo = 10_000

// Directory answers the admin pages' questions about accounts. Lists use
// keyset pagination on the UUIDv7 ids (newest first) so any page costs the
// same at millions of users.
type Directory struct {
	db *gorm.DB
}

// NewDirectory returns the directory over db.
func NewDirectory(db *gorm.DB) *Directory {
	return &Directory{db: db}
}

// UserFilter selects a page of the user list.
type UserFilter struct {
	Kind  string    // "", KindGuest or KindRegistered
	Query string    // part of the email, any case
	After uuid.UUID // the last id of the previous page; Nil for the first
	Limit int
}

// UserRow is one line of the admin user list.
type UserRow struct {
	ID         uuid.UUID
	Kind       string
	Email      string
	IsAdmin    bool
	CreatedAt  time.Time
	LastSeenAt time.Time
	CartLines  int
}

// Users returns a page of users, newest first, and whether more follow.
func (d *Directory) Users(ctx context.Context, f UserFilter) ([]UserRow, bool, error) {
	q := d.db.WithContext(ctx).Table("users u").Select(`u.id, u.kind, coalesce(u.email, '') AS email,
		u.is_admin, u.created_at, u.last_seen_at,
		(SELECT count(*) FROM carts c JOIN cart_items ci ON ci.cart_id = c.id WHERE c.user_id = u.id) AS cart_lines`)
	switch {
	case f.Query != "" && f.Kind == KindGuest:
		return nil, false, nil // guests have no email
	case f.Query != "":
		// Only registered accounts have an email, so the kind adds nothing
		// but a misleading estimate. The expression is the trigram index's.
		q = q.Where("lower(u.email) LIKE ?", "%"+escapeLike(strings.ToLower(f.Query))+"%")
	case f.Kind != "":
		q = q.Where("u.kind = ?", f.Kind)
	}
	if f.After != uuid.Nil {
		q = q.Where("u.id < ?", f.After)
	}
	var rows []UserRow
	if err := q.Order("u.id DESC").Limit(f.Limit + 1).Scan(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("list users: %w", err)
	}
	if len(rows) > f.Limit {
		return rows[:f.Limit], true, nil
	}
	return rows, false, nil
}

// KindCount is how many accounts of a kind there are.
type KindCount struct {
	Count     int64
	Estimated bool // past exactCountUpTo: the planner's estimate
}

// CountKind counts the accounts of a kind, exactly up to a threshold and by
// estimate above it.
func (d *Directory) CountKind(ctx context.Context, kind string) (KindCount, error) {
	var n int64
	err := d.db.WithContext(ctx).Raw(`SELECT count(*) FROM (SELECT 1 FROM users WHERE kind = ? LIMIT ?) s`,
		kind, exactCountUpTo+1).Scan(&n).Error
	if err != nil {
		return KindCount{}, fmt.Errorf("count %s: %w", kind, err)
	}
	if n <= exactCountUpTo {
		return KindCount{Count: n}, nil
	}
	var plan string
	err = d.db.WithContext(ctx).Raw(`EXPLAIN (FORMAT JSON) SELECT 1 FROM users WHERE kind = ?`, kind).Row().Scan(&plan)
	if err != nil {
		return KindCount{}, fmt.Errorf("estimate %s: %w", kind, err)
	}
	var parsed []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := json.Unmarshal([]byte(plan), &parsed); err != nil || len(parsed) == 0 {
		return KindCount{}, fmt.Errorf("estimate %s: unreadable plan", kind)
	}
	return KindCount{Count: max(int64(parsed[0].Plan.Rows), exactCountUpTo+1), Estimated: true}, nil
}

// UserDetail is everything the admin user page shows.
type UserDetail struct {
	User     User
	Lines    []CartLine
	Sessions []Session
	Events   []Event
}

// maxDetailEvents bounds the history on one page.
const maxDetailEvents = 200

// User returns one account with its cart, sessions and newest events;
// ErrNotFound if there is none.
func (d *Directory) User(ctx context.Context, id uuid.UUID) (UserDetail, error) {
	var det UserDetail
	err := d.db.WithContext(ctx).Where("id = ?", id).Take(&det.User).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return UserDetail{}, ErrNotFound
	}
	if err != nil {
		return UserDetail{}, fmt.Errorf("user %s: %w", id, err)
	}
	if det.Lines, err = NewCarts(d.db).Lines(ctx, id); err != nil {
		return UserDetail{}, err
	}
	err = d.db.WithContext(ctx).Where("user_id = ?", id).Order("last_seen_at DESC").Find(&det.Sessions).Error
	if err != nil {
		return UserDetail{}, fmt.Errorf("sessions of %s: %w", id, err)
	}
	// A merged guest's history is the account's too: its events carry the
	// guest's id, which the account's sign-in names as prev_guest_id.
	err = d.db.WithContext(ctx).Where(`user_id = @id OR user_id IN (
			SELECT (data->>'prev_guest_id')::uuid FROM events
			WHERE user_id = @id AND type = @signedIn AND data->>'prev_guest_id' IS NOT NULL)`,
		map[string]any{"id": id, "signedIn": EventSignedIn}).
		Order("id DESC").Limit(maxDetailEvents).Find(&det.Events).Error
	if err != nil {
		return UserDetail{}, fmt.Errorf("events of %s: %w", id, err)
	}
	return det, nil
}

// CreateAdmin makes email a registered, verified admin with password, or
// grants admin to the registered account that has it. It reports whether
// an account was created.
func (a *Accounts) CreateAdmin(ctx context.Context, email, password string) (bool, error) {
	hash, err := a.passwords.Hash(ctx, password)
	if err != nil {
		return false, err
	}
	var created bool
	err = a.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var id uuid.UUID
		err := tx.Raw(`UPDATE users SET is_admin = true, updated_at = now()
			WHERE lower(email) = lower(?) AND kind = 'registered' RETURNING id`, email).Row().Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("grant admin: %w", err)
		}
		created = true
		err = tx.Exec(`INSERT INTO users (id, kind, email, password_hash, is_admin, email_verified_at)
			VALUES (?, 'registered', ?, ?, true, now())`, newID(), email, hash).Error
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("create admin: %w", err)
		}
		return nil
	})
	return created, err
}
