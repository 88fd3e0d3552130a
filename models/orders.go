package models

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// OrderSummary is one line of an order list.
type OrderSummary struct {
	ID         uuid.UUID
	Number     string
	UserID     *uuid.UUID
	Email      string
	Status     string
	TotalCents int64
	Currency   string
	Items      int
	CreatedAt  time.Time
}

// summaryColumns are the columns of an OrderSummary, over orders o.
const summaryColumns = `o.id, o.number, o.user_id, o.email, o.status, o.total_cents, o.currency, o.created_at,
	(SELECT coalesce(sum(quantity), 0) FROM order_lines WHERE order_id = o.id) AS items`

// Viewer is who asks to see an order: the session's user (Nil without one)
// and the key from the emailed link ("" without one).
type Viewer struct {
	UserID uuid.UUID
	Key    string
}

// ForViewer returns the order numbered number when v may see it: it is v's
// order, or v holds the emailed key. Anyone else gets ErrNotFound, exactly
// as for a number that does not exist.
func (o *Orders) ForViewer(ctx context.Context, number string, v Viewer) (OrderDetail, error) {
	d, err := o.detail(ctx, "number = ?", number)
	if err != nil {
		return OrderDetail{}, err
	}
	if v.UserID != uuid.Nil && d.UserID != nil && *d.UserID == v.UserID {
		return d, nil
	}
	if hash, ok := ParseToken(v.Key); ok && subtle.ConstantTimeCompare(hash, d.AccessHash) == 1 {
		return d, nil
	}
	return OrderDetail{}, ErrNotFound
}

// ByNumber returns an order for the admin pages, or ErrNotFound.
func (o *Orders) ByNumber(ctx context.Context, number string) (OrderDetail, error) {
	return o.detail(ctx, "number = ?", number)
}

func (o *Orders) detail(ctx context.Context, where string, args ...any) (OrderDetail, error) {
	var orders []Order
	if err := o.db.WithContext(ctx).Where(where, args...).Limit(1).Find(&orders).Error; err != nil {
		return OrderDetail{}, fmt.Errorf("order: %w", err)
	}
	if len(orders) == 0 {
		return OrderDetail{}, ErrNotFound
	}
	d := OrderDetail{Order: orders[0]}
	if err := o.db.WithContext(ctx).Where("order_id = ?", d.ID).Order("product_id").Find(&d.Lines).Error; err != nil {
		return OrderDetail{}, fmt.Errorf("order lines: %w", err)
	}
	return d, nil
}

// Events returns an order's history, oldest first.
func (o *Orders) Events(ctx context.Context, orderID uuid.UUID) ([]Event, error) {
	var events []Event
	err := o.db.WithContext(ctx).Where("type LIKE 'order.%' AND data ->> 'order_id' = ?", orderID.String()).
		Order("id").Limit(maxDetailEvents).Find(&events).Error
	if err != nil {
		return nil, fmt.Errorf("order events: %w", err)
	}
	return events, nil
}

// UserOrders returns a page of the user's orders, newest first, after the
// order with id after (Nil: the first page), and whether more follow.
func (o *Orders) UserOrders(ctx context.Context, userID, after uuid.UUID, limit int) ([]OrderSummary, bool, error) {
	q := o.db.WithContext(ctx).Table("orders o").Select(summaryColumns).Where("o.user_id = ?", userID)
	return pageOf(q, after, limit)
}

// OrderFilter selects a page of the admin order list.
type OrderFilter struct {
	Status string    // "" or one of Statuses
	Query  string    // an order number (SF-10001 or 10001) or an email
	After  uuid.UUID // the last id of the previous page; Nil for the first
	Limit  int
}

var orderNumberPattern = regexp.MustCompile(`^(?i:sf-)?([0-9]{1,18})$`)

// List returns a page of orders, newest first, and whether more follow. A
// query that looks like a number finds that order; anything else is an
// email, matched whole and in any case (the index on lower(email)).
func (o *Orders) List(ctx context.Context, f OrderFilter) ([]OrderSummary, bool, error) {
	q := o.db.WithContext(ctx).Table("orders o").Select(summaryColumns)
	if f.Status != "" {
		q = q.Where("o.status = ?", f.Status)
	}
	if query := strings.TrimSpace(f.Query); query != "" {
		if m := orderNumberPattern.FindStringSubmatch(query); m != nil {
			q = q.Where("o.number = ?", "SF-"+m[1])
		} else {
			q = q.Where("lower(o.email) = lower(?)", query)
		}
	}
	return pageOf(q, f.After, f.Limit)
}

func pageOf(q *gorm.DB, after uuid.UUID, limit int) ([]OrderSummary, bool, error) {
	if after != uuid.Nil {
		q = q.Where("o.id < ?", after)
	}
	var rows []OrderSummary
	if err := q.Order("o.id DESC").Limit(limit + 1).Scan(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("list orders: %w", err)
	}
	if len(rows) > limit {
		return rows[:limit], true, nil
	}
	return rows, false, nil
}

// StatusTotal is how many orders have a status, and what they add up to.
type StatusTotal struct {
	Status     string
	Count      int64
	TotalCents int64
}

// StatusTotals counts the orders of every status (zeros included), in the
// order of Statuses.
func (o *Orders) StatusTotals(ctx context.Context) ([]StatusTotal, error) {
	var rows []StatusTotal
	err := o.db.WithContext(ctx).Raw(`SELECT status, count(*) AS count, coalesce(sum(total_cents), 0) AS total_cents
		FROM orders GROUP BY status`).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("order totals: %w", err)
	}
	out := make([]StatusTotal, len(Statuses))
	for i, s := range Statuses {
		out[i].Status = s
		for _, r := range rows {
			if r.Status == s {
				out[i] = r
			}
		}
	}
	return out, nil
}

// StatusError means an order cannot move to To from the status it has.
type StatusError struct {
	From, To string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("an order that is %s cannot become %s", e.From, e.To)
}

// moves is the status machine: the statuses each status may be reached from.
var moves = map[string][]string{
	StatusPaid:      {StatusPendingPayment},
	StatusShipped:   {StatusPaid},
	StatusCancelled: {StatusPendingPayment, StatusPaid},
}

var statusEvents = map[string]string{
	StatusPaid: EventOrderPaid, StatusShipped: EventOrderShipped, StatusCancelled: EventOrderCancelled,
}

// CanMove reports whether an order of status from may become to.
func CanMove(from, to string) bool {
	for _, f := range moves[to] {
		if f == from {
			return true
		}
	}
	return false
}

// SetStatus moves an order to status to, for the admin byID: one
// conditional UPDATE (of concurrent moves one wins), the event, the
// customer's email and, for a cancel, the stock given back, all in one
// transaction. ErrNotFound for an unknown number, *StatusError for a move
// the machine does not allow (including one a racing move made moot).
func (o *Orders) SetStatus(ctx context.Context, number, to string, byID uuid.UUID) (OrderDetail, error) {
	from, ok := moves[to]
	if !ok {
		return OrderDetail{}, &StatusError{To: to}
	}
	var d OrderDetail
	err := o.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var id uuid.UUID
		var prev string
		res := tx.Raw(`UPDATE orders SET status = @to, updated_at = now(),
				paid_at = CASE WHEN @to = 'paid' THEN now() ELSE paid_at END,
				shipped_at = CASE WHEN @to = 'shipped' THEN now() ELSE shipped_at END,
				cancelled_at = CASE WHEN @to = 'cancelled' THEN now() ELSE cancelled_at END
			FROM (SELECT id, status FROM orders WHERE number = @number) old
			WHERE orders.id = old.id AND orders.status IN (@from)
			RETURNING orders.id, old.status`,
			map[string]any{"to": to, "number": number, "from": from}).Row()
		if err := res.Scan(&id, &prev); err != nil {
			return o.refusedMove(ctx, tx, number, to, err)
		}
		if to == StatusCancelled {
			if err := returnStock(ctx, tx, id); err != nil {
				return err
			}
		}
		var err error
		if d, err = (&Orders{db: tx}).detail(ctx, "id = ?", id); err != nil {
			return err
		}
		msg, err := o.mails.StatusChanged(d)
		if err != nil {
			return fmt.Errorf("compose status mail: %w", err)
		}
		if err := enqueueEmail(ctx, tx, msg); err != nil {
			return err
		}
		return recordEvent(ctx, tx, d.UserID, statusEvents[to], map[string]any{
			"order_id": d.ID, "number": d.Number, "from": prev, "by": byID,
		})
	})
	if err != nil {
		return OrderDetail{}, err
	}
	return d, nil
}

// refusedMove explains an UPDATE that matched no row: no such order, or
// not in a status the move starts from.
func (o *Orders) refusedMove(ctx context.Context, tx *gorm.DB, number, to string, scanErr error) error {
	if !errors.Is(scanErr, sql.ErrNoRows) {
		return fmt.Errorf("set order status: %w", scanErr)
	}
	var status []string
	if err := tx.WithContext(ctx).Raw(`SELECT status FROM orders WHERE number = ?`, number).Scan(&status).Error; err != nil {
		return fmt.Errorf("read order status: %w", err)
	}
	if len(status) == 0 {
		return ErrNotFound
	}
	return &StatusError{From: status[0], To: to}
}

// returnStock gives a cancelled order's units back. The products are locked
// in id order first, as checkouts lock them, so the two never deadlock.
func returnStock(ctx context.Context, tx *gorm.DB, orderID uuid.UUID) error {
	err := tx.WithContext(ctx).Exec(`SELECT 1 FROM products WHERE id IN (
			SELECT product_id FROM order_lines WHERE order_id = ?) ORDER BY id FOR UPDATE`, orderID).Error
	if err != nil {
		return fmt.Errorf("lock products: %w", err)
	}
	err = tx.Exec(`UPDATE products p SET stock = p.stock + l.quantity
		FROM order_lines l WHERE l.order_id = ? AND p.id = l.product_id`, orderID).Error
	if err != nil {
		return fmt.Errorf("return stock: %w", err)
	}
	return nil
}

// moveGuestOrders gives a guest's orders to the account it signs in to,
// before the guest row goes (which would leave them without an owner).
func moveGuestOrders(ctx context.Context, tx *gorm.DB, guestID, accountID uuid.UUID) error {
	err := tx.WithContext(ctx).Exec(`UPDATE orders SET user_id = ?, updated_at = now() WHERE user_id = ?`,
		accountID, guestID).Error
	if err != nil {
		return fmt.Errorf("move guest orders: %w", err)
	}
	return nil
}

// claimOrders attaches to userID the orders placed with email whose owner is
// gone or a guest. Only call it once email is proven to be userID's (a used
// link): an address typed into a form proves nothing.
func claimOrders(ctx context.Context, tx *gorm.DB, userID uuid.UUID, email string) error {
	err := tx.WithContext(ctx).Exec(`UPDATE orders SET user_id = @user, updated_at = now()
		WHERE lower(email) = lower(@email) AND user_id IS DISTINCT FROM @user
		AND (user_id IS NULL OR user_id IN (SELECT id FROM users WHERE kind = 'guest'))`,
		map[string]any{"user": userID, "email": email}).Error
	if err != nil {
		return fmt.Errorf("claim orders: %w", err)
	}
	return nil
}
