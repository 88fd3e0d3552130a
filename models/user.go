package models

import (
	"time"

	"github.com/google/uuid"
)

// Kinds of account.
const (
	KindGuest      = "guest"
	KindRegistered = "registered"
)

// User is an account: a guest (no email, no password) or a registered
// customer. A guest becomes registered in place, keeping its id and cart.
type User struct {
	ID              uuid.UUID `gorm:"type:uuid;primaryKey"`
	Kind            string    `gorm:"not null"`
	Email           *string
	PasswordHash    *string
	IsAdmin         bool `gorm:"not null;default:false"`
	EmailVerifiedAt *time.Time
	CreatedAt       time.Time `gorm:"not null;default:now()"`
	UpdatedAt       time.Time `gorm:"not null;default:now()"`
	LastSeenAt      time.Time `gorm:"not null;default:now()"`
}

// Session is a signed-in browser. Only the SHA-256 of its cookie token is
// stored, so a leaked table signs nobody in.
type Session struct {
	ID         uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID     uuid.UUID `gorm:"type:uuid;not null;index"`
	TokenHash  []byte    `gorm:"not null;uniqueIndex"`
	CreatedAt  time.Time `gorm:"not null;default:now()"`
	ExpiresAt  time.Time `gorm:"not null"`
	LastSeenAt time.Time `gorm:"not null;default:now()"`
	UserAgent  string    `gorm:"not null;default:''"`
}

// Cart belongs to exactly one user.
type Cart struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;not null;uniqueIndex"`
	CreatedAt time.Time `gorm:"not null;default:now()"`
	UpdatedAt time.Time `gorm:"not null;default:now()"`
}

// CartItem is one line of a cart.
type CartItem struct {
	CartID    uuid.UUID `gorm:"type:uuid;primaryKey"`
	ProductID int64     `gorm:"primaryKey;autoIncrement:false;index"`
	Quantity  int       `gorm:"type:integer;not null"`
	CreatedAt time.Time `gorm:"not null;default:now()"`
}

// Event is one entry of the account history behind the admin pages.
type Event struct {
	ID        int64      `gorm:"primaryKey"`
	UserID    *uuid.UUID `gorm:"type:uuid"`
	Type      string     `gorm:"not null"`
	Data      []byte     `gorm:"type:jsonb;not null"`
	CreatedAt time.Time  `gorm:"not null;default:now()"`
}

// RateLimit counts one client's requests to one action in a window.
type RateLimit struct {
	Key     string    `gorm:"primaryKey"`
	Hits    int       `gorm:"type:integer;not null"`
	ResetAt time.Time `gorm:"not null"`
}

// EmailToken is an emailed link's token: promote (save a guest account) or
// reset (a forgotten password). The address lives here until it is proven.
type EmailToken struct {
	ID        uuid.UUID `gorm:"type:uuid;primaryKey"`
	UserID    uuid.UUID `gorm:"type:uuid;not null;index"`
	Purpose   string    `gorm:"not null"`
	Email     string    `gorm:"not null"`
	TokenHash []byte    `gorm:"not null;uniqueIndex"`
	ExpiresAt time.Time `gorm:"not null"`
	UsedAt    *time.Time
	CreatedAt time.Time `gorm:"not null;default:now()"`
}
