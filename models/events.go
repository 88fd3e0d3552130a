package models

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Event types, as DESIGN.md names them.
const (
	EventGuestCreated  = "guest.created"
	EventSaveRequested = "account.save_requested"
	EventUpgraded      = "account.upgraded"
	EventSignedIn      = "session.signed_in"
	EventSignedOut     = "session.signed_out"
	EventPasswordReset = "password.reset"
	EventGuestCulled   = "guest.culled"
)

// recordEvent appends an event in the caller's transaction, so it commits
// or rolls back with the change it describes.
func recordEvent(ctx context.Context, tx *gorm.DB, userID *uuid.UUID, typ string, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	err = tx.WithContext(ctx).Create(&Event{UserID: userID, Type: typ, Data: b}).Error
	if err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	return nil
}

// Order event types.
const (
	EventOrderPlaced    = "order.placed"
	EventOrderPaid      = "order.paid"
	EventOrderShipped   = "order.shipped"
	EventOrderCancelled = "order.cancelled"
)
