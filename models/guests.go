package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Guests creates guest accounts: lazily, on the first successful add to cart.
type Guests struct {
	db *gorm.DB
}

// NewGuests returns the guest store over db.
func NewGuests(db *gorm.DB) *Guests {
	return &Guests{db: db}
}

// GuestAdd is the outcome of AddAsGuest.
type GuestAdd struct {
	UserID   uuid.UUID
	Quantity int  // the line's quantity after the add
	Created  bool // a new guest was made; false when a racing request made it
}

// AddAsGuest is the first add to cart of a visitor without a session: in one
// transaction it creates the guest, its session, its cart, the guest.created
// event and the cart line. If the add fails (unknown product, no stock)
// nothing is created.
//
// The session token is derived from the browser (see handlers), so two first
// requests racing from one browser carry the same token: the unique token
// hash lets one create the guest, and the other adds to that guest's cart.
func (g *Guests) AddAsGuest(ctx context.Context, ns NewSession, productID int64, qty int) (GuestAdd, error) {
	for attempt := 0; ; attempt++ {
		res, err := g.create(ctx, ns, productID, qty)
		if !errors.Is(err, errSessionTaken) {
			return res, err
		}
		// Another request holds this token: join its guest if the session is
		// live; if it expired, clear it once and create afresh.
		cur, err := NewSessions(g.db).Authenticate(ctx, ns.TokenHash)
		if err == nil {
			q, err := NewCarts(g.db).Add(ctx, cur.UserID, productID, qty)
			return GuestAdd{UserID: cur.UserID, Quantity: q}, err
		}
		if !errors.Is(err, ErrNotFound) || attempt > 0 {
			return GuestAdd{}, fmt.Errorf("join racing guest: %w", err)
		}
		if err := deleteExpiredSession(ctx, g.db, ns.TokenHash); err != nil {
			return GuestAdd{}, err
		}
	}
}

func (g *Guests) create(ctx context.Context, ns NewSession, productID int64, qty int) (GuestAdd, error) {
	res := GuestAdd{UserID: newID(), Created: true}
	err := g.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&User{ID: res.UserID, Kind: KindGuest}).Error; err != nil {
			return fmt.Errorf("create guest: %w", err)
		}
		created, err := createSession(ctx, tx, res.UserID, ns)
		if err != nil {
			return err
		}
		if !created {
			return errSessionTaken
		}
		if err := recordEvent(ctx, tx, &res.UserID, EventGuestCreated, nil); err != nil {
			return err
		}
		res.Quantity, err = addItem(ctx, tx, res.UserID, productID, qty)
		return err
	})
	if err != nil {
		return GuestAdd{}, err
	}
	return res, nil
}
