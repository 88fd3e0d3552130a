package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Checkout errors.
var (
	// ErrCartEmpty: there is nothing to order.
	ErrCartEmpty = errors.New("cart is empty")
)

// CartChangedError means the cart, its prices or the shipping fee changed
// since the checkout page was shown: nothing was ordered, and Quote is the
// cart priced now.
type CartChangedError struct {
	Quote    Quote
	Changed  []int64 // products whose line is new or differs
	Gone     []int64 // products no longer in the cart
	Shipping bool    // the shipping fee differs
}

func (e *CartChangedError) Error() string {
	return fmt.Sprintf("cart changed since the checkout page: %d lines changed, %d gone", len(e.Changed), len(e.Gone))
}

// OutOfStockError means a product has fewer units left than the cart asks
// for: nothing was ordered and the cart is kept.
type OutOfStockError struct {
	ProductID int64
	Name      string
	Stock     int // what is left
	Wanted    int
}

func (e *OutOfStockError) Error() string {
	return fmt.Sprintf("only %d of %q left, %d wanted", e.Stock, e.Name, e.Wanted)
}

// OrderMails composes the emails orders send. Order operations call it
// inside their transactions, so the outbox row commits with the change.
type OrderMails interface {
	// Confirmation carries the full order and the link with its access key.
	Confirmation(o OrderDetail, key string) (Email, error)
	// StatusChanged tells the customer the order is now o.Status.
	StatusChanged(o OrderDetail) (Email, error)
}

// Orders places, reads and moves orders.
type Orders struct {
	db      *gorm.DB
	key     CheckoutKey
	pricing Pricing
	mails   OrderMails
}

// NewOrders returns the order store: key signs checkout tokens, pricing is
// the shipping rule, mails writes the customers' emails.
func NewOrders(db *gorm.DB, key CheckoutKey, pricing Pricing, mails OrderMails) *Orders {
	return &Orders{db: db, key: key, pricing: pricing, mails: mails}
}

// Pricing is the shop's shipping rule.
func (o *Orders) Pricing() Pricing { return o.pricing }

// Quote prices the user's cart now.
func (o *Orders) Quote(ctx context.Context, userID uuid.UUID) (Quote, error) {
	lines, err := NewCarts(o.db).Lines(ctx, userID)
	if err != nil {
		return Quote{}, err
	}
	return NewQuote(lines, o.pricing), nil
}

// IssueToken is the checkout_token of a page showing q to userID.
func (o *Orders) IssueToken(userID uuid.UUID, q Quote) string {
	return o.key.IssueCheckoutToken(userID, q)
}

// Checkout is a checkout form, checked by the caller.
type Checkout struct {
	UserID        uuid.UUID
	Guest         bool   // the user is a guest (for the funnel)
	Token         string // the form's checkout_token
	Email         string // normalized
	Ship          Address
	PaymentMethod string
}

// Placed is the outcome of Place.
type Placed struct {
	ID     uuid.UUID
	Number string
	// Repeat: the form had placed this order already; nothing new happened.
	Repeat bool
}

// Place orders the user's cart, in one transaction: it locks the cart, takes
// the stock with conditional updates in product-id order, writes the order
// and its lines (names and prices as now), empties the cart, queues the
// confirmation and records order.placed.
//
// The same form posted again lands on the order it placed (Repeat). The
// errors: ErrCheckoutToken (forged or another account's), ErrCartEmpty,
// *CartChangedError (the page showed something else: nothing is charged),
// *OutOfStockError (too few left: the cart is kept).
func (o *Orders) Place(ctx context.Context, co Checkout) (Placed, error) {
	ticket, err := o.key.OpenCheckoutToken(co.UserID, co.Token)
	if err != nil {
		return Placed{}, err
	}
	var res Placed
	err = o.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The cart lock orders every checkout (and cart change) of this
		// user: a double click waits here, then finds the first one's order.
		cartID, err := lockCart(ctx, tx, co.UserID, false)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if res, err = placedBefore(ctx, tx, ticket.Nonce, co.UserID); err != nil || res.Repeat {
			return err
		}
		if cartID == uuid.Nil {
			return ErrCartEmpty
		}
		lines, err := lockedLines(ctx, tx, cartID)
		if err != nil {
			return err
		}
		if len(lines) == 0 {
			return ErrCartEmpty
		}
		q := NewQuote(lines, o.pricing)
		if changed, gone, ship := o.key.Changes(ticket, q); len(changed)+len(gone) > 0 || ship {
			return &CartChangedError{Quote: q, Changed: changed, Gone: gone, Shipping: ship}
		}
		if err := takeStock(ctx, tx, q); err != nil {
			return err
		}
		d, key, err := insertOrder(ctx, tx, co, ticket.Nonce, q)
		if err != nil {
			return err
		}
		res = Placed{ID: d.ID, Number: d.Number}
		if err := tx.Exec(`DELETE FROM cart_items WHERE cart_id = ?`, cartID).Error; err != nil {
			return fmt.Errorf("empty cart: %w", err)
		}
		msg, err := o.mails.Confirmation(d, key)
		if err != nil {
			return fmt.Errorf("compose confirmation: %w", err)
		}
		if err := enqueueEmail(ctx, tx, msg); err != nil {
			return err
		}
		return recordEvent(ctx, tx, &co.UserID, EventOrderPlaced, map[string]any{
			"order_id": d.ID, "number": d.Number, "total_cents": d.TotalCents, "guest": co.Guest,
		})
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) || isUniqueViolation(err) {
		// Only a racing POST of the same form can have taken the token.
		return placedBefore(ctx, o.db.WithContext(ctx), ticket.Nonce, co.UserID)
	}
	if err != nil {
		return Placed{}, err
	}
	return res, nil
}

// placedBefore finds the order a checkout token placed. It is the user's,
// or the token was not (ErrCheckoutToken).
func placedBefore(ctx context.Context, tx *gorm.DB, nonce string, userID uuid.UUID) (Placed, error) {
	var row struct {
		ID     uuid.UUID
		Number string
		UserID *uuid.UUID
	}
	err := tx.WithContext(ctx).Raw(`SELECT id, number, user_id FROM orders WHERE cart_token = ?`, nonce).
		Row().Scan(&row.ID, &row.Number, &row.UserID)
	if errors.Is(err, sql.ErrNoRows) {
		return Placed{}, nil
	}
	if err != nil {
		return Placed{}, fmt.Errorf("find placed order: %w", err)
	}
	if row.UserID == nil || *row.UserID != userID {
		return Placed{}, ErrCheckoutToken
	}
	return Placed{ID: row.ID, Number: row.Number, Repeat: true}, nil
}

// lockedLines reads the cart's lines, in product-id order, under the cart lock.
func lockedLines(ctx context.Context, tx *gorm.DB, cartID uuid.UUID) ([]CartLine, error) {
	var lines []CartLine
	err := tx.WithContext(ctx).Raw(`
		SELECT p.id AS product_id, p.slug, p.name, p.image, p.price_cents, p.currency, p.stock, ci.quantity
		FROM cart_items ci JOIN products p ON p.id = ci.product_id
		WHERE ci.cart_id = ?
		ORDER BY p.id`, cartID).Scan(&lines).Error
	if err != nil {
		return nil, fmt.Errorf("checkout lines: %w", err)
	}
	return lines, nil
}

// takeStock takes each line's quantity off its product's stock with a
// conditional update, in product-id order so that two checkouts lock
// products in the same order and never deadlock. The update returns the
// price under the row lock: a price changed since the lines were read is a
// changed cart, not a sale at a price nobody saw.
func takeStock(ctx context.Context, tx *gorm.DB, q Quote) error {
	lines := slices.Clone(q.Lines)
	slices.SortFunc(lines, func(a, b CartLine) int { return int(a.ProductID - b.ProductID) })
	for _, l := range lines {
		var row struct {
			PriceCents int64
			Currency   string
		}
		res := tx.WithContext(ctx).Raw(`UPDATE products SET stock = stock - @n
			WHERE id = @id AND stock >= @n RETURNING price_cents, currency`,
			map[string]any{"n": l.Quantity, "id": l.ProductID}).Scan(&row)
		if res.Error != nil {
			return fmt.Errorf("take stock of %d: %w", l.ProductID, res.Error)
		}
		if res.RowsAffected == 0 {
			var stock int
			if err := tx.Raw(`SELECT stock FROM products WHERE id = ?`, l.ProductID).Scan(&stock).Error; err != nil {
				return fmt.Errorf("read stock of %d: %w", l.ProductID, err)
			}
			return &OutOfStockError{ProductID: l.ProductID, Name: l.Name, Stock: stock, Wanted: l.Quantity}
		}
		if row.PriceCents != l.PriceCents || row.Currency != l.Currency {
			return &CartChangedError{Quote: q, Changed: []int64{l.ProductID}}
		}
	}
	return nil
}

// insertOrder writes the order and its lines; it returns them and the raw
// access key of the emailed link (only its hash is stored).
func insertOrder(ctx context.Context, tx *gorm.DB, co Checkout, nonce string, q Quote) (OrderDetail, string, error) {
	key, hash := NewToken()
	uid := co.UserID
	d := OrderDetail{Order: Order{
		ID: newID(), UserID: &uid, Email: co.Email, Status: StatusPendingPayment, PaymentMethod: co.PaymentMethod,
		ShipName: co.Ship.Name, ShipAddress1: co.Ship.Address1, ShipAddress2: co.Ship.Address2,
		ShipCity: co.Ship.City, ShipPostcode: co.Ship.Postcode, ShipCountry: co.Ship.Country,
		SubtotalCents: q.SubtotalCents, ShippingCents: q.ShippingCents, TotalCents: q.TotalCents,
		Currency: q.Currency, AccessHash: hash, CartToken: nonce,
	}}
	// The number comes from a sequence: SF-10001, SF-10002, …
	err := tx.WithContext(ctx).Raw(`INSERT INTO orders (id, number, user_id, email, status, payment_method,
			ship_name, ship_address1, ship_address2, ship_city, ship_postcode, ship_country,
			subtotal_cents, shipping_cents, total_cents, currency, access_hash, cart_token)
		VALUES (?, 'SF-' || nextval('order_numbers'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING number, created_at, updated_at`,
		d.ID, d.UserID, d.Email, d.Status, d.PaymentMethod,
		d.ShipName, d.ShipAddress1, d.ShipAddress2, d.ShipCity, d.ShipPostcode, d.ShipCountry,
		d.SubtotalCents, d.ShippingCents, d.TotalCents, d.Currency, d.AccessHash, d.CartToken).
		Row().Scan(&d.Number, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return OrderDetail{}, "", fmt.Errorf("insert order: %w", err)
	}
	for _, l := range q.Lines {
		d.Lines = append(d.Lines, OrderLine{OrderID: d.ID, ProductID: l.ProductID, Name: l.Name,
			UnitCents: l.PriceCents, Quantity: l.Quantity, LineCents: l.LineCents()})
	}
	if err := tx.Create(&d.Lines).Error; err != nil {
		return OrderDetail{}, "", fmt.Errorf("insert order lines: %w", err)
	}
	return d, key, nil
}

// isUniqueViolation reports a unique index refusing a row (SQLSTATE 23505)
// on a path GORM does not translate (Row().Scan).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
