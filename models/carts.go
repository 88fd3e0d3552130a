package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// Cart limits.
const (
	MaxQuantity  = 99 // per line
	MaxCartLines = 50
)

// ErrCartFull means a new line would exceed MaxCartLines.
var ErrCartFull = errors.New("cart is full")

// StockError means a line would hold more than the product's stock.
type StockError struct {
	Stock  int // what the shop has
	InCart int // what the cart holds now
}

func (e *StockError) Error() string {
	return fmt.Sprintf("only %d in stock, %d in the cart", e.Stock, e.InCart)
}

// CartLine is a cart line with what the cart page shows of its product.
type CartLine struct {
	ProductID  int64
	Slug       string
	Name       string
	Image      string
	PriceCents int64
	Currency   string
	Stock      int
	Quantity   int
}

// LineCents is the line's price.
func (l CartLine) LineCents() int64 { return l.PriceCents * int64(l.Quantity) }

// Carts changes and reads carts. Every change locks the cart row first, so
// changes to one cart apply one at a time and limits hold under races.
type Carts struct {
	db *gorm.DB
}

// NewCarts returns the cart store over db.
func NewCarts(db *gorm.DB) *Carts {
	return &Carts{db: db}
}

// Add puts qty more of a product in the user's cart (created if missing),
// capped at MaxQuantity. It returns the line's new quantity; ErrNotFound for
// an unknown product, *StockError or ErrCartFull when it cannot.
func (s *Carts) Add(ctx context.Context, userID uuid.UUID, productID int64, qty int) (int, error) {
	var got int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		got, err = addItem(ctx, tx, userID, productID, qty)
		return err
	})
	return got, err
}

// addItem is Add inside the caller's transaction.
func addItem(ctx context.Context, tx *gorm.DB, userID uuid.UUID, productID int64, qty int) (int, error) {
	cartID, err := lockCart(ctx, tx, userID, true)
	if err != nil {
		return 0, err
	}
	st, err := lineState(ctx, tx, cartID, productID)
	if err != nil {
		return 0, err
	}
	want := min(st.InCart+qty, MaxQuantity)
	if want > st.Stock {
		return 0, &StockError{Stock: st.Stock, InCart: st.InCart}
	}
	if st.InCart == 0 && st.Lines >= MaxCartLines {
		return 0, ErrCartFull
	}
	var quantity int
	err = tx.WithContext(ctx).Raw(`
		INSERT INTO cart_items (cart_id, product_id, quantity) VALUES (?, ?, ?)
		ON CONFLICT (cart_id, product_id)
		DO UPDATE SET quantity = LEAST(cart_items.quantity + EXCLUDED.quantity, ?)
		RETURNING quantity`, cartID, productID, min(qty, MaxQuantity), MaxQuantity).Scan(&quantity).Error
	if err != nil {
		return 0, fmt.Errorf("add to cart: %w", err)
	}
	return quantity, nil
}

// SetQuantity sets a line's quantity; 0 removes it. ErrNotFound when the
// product or the line does not exist, *StockError above the stock.
func (s *Carts) SetQuantity(ctx context.Context, userID uuid.UUID, productID int64, qty int) error {
	if qty == 0 {
		return s.Remove(ctx, userID, productID)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cartID, err := lockCart(ctx, tx, userID, false)
		if err != nil {
			return err
		}
		st, err := lineState(ctx, tx, cartID, productID)
		if err != nil {
			return err
		}
		if st.InCart == 0 {
			return ErrNotFound
		}
		if qty > st.Stock {
			return &StockError{Stock: st.Stock, InCart: st.InCart}
		}
		err = tx.Exec(`UPDATE cart_items SET quantity = ? WHERE cart_id = ? AND product_id = ?`,
			qty, cartID, productID).Error
		if err != nil {
			return fmt.Errorf("set quantity: %w", err)
		}
		return nil
	})
}

// Remove deletes a line. Removing a line that is not there is not an error
// (a double click); an unknown product is ErrNotFound.
func (s *Carts) Remove(ctx context.Context, userID uuid.UUID, productID int64) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var exists bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM products WHERE id = ?)`, productID).Scan(&exists).Error; err != nil {
			return fmt.Errorf("remove from cart: %w", err)
		}
		if !exists {
			return ErrNotFound
		}
		cartID, err := lockCart(ctx, tx, userID, false)
		if errors.Is(err, ErrNotFound) {
			return nil // no cart, so no line
		}
		if err != nil {
			return err
		}
		err = tx.Exec(`DELETE FROM cart_items WHERE cart_id = ? AND product_id = ?`, cartID, productID).Error
		if err != nil {
			return fmt.Errorf("remove from cart: %w", err)
		}
		return nil
	})
}

// Lines returns the user's cart, oldest line first.
func (s *Carts) Lines(ctx context.Context, userID uuid.UUID) ([]CartLine, error) {
	var lines []CartLine
	err := s.db.WithContext(ctx).Raw(`
		SELECT p.id AS product_id, p.slug, p.name, p.image, p.price_cents, p.currency, p.stock, ci.quantity
		FROM carts c
		JOIN cart_items ci ON ci.cart_id = c.id
		JOIN products p ON p.id = ci.product_id
		WHERE c.user_id = ?
		ORDER BY ci.created_at, p.id`, userID).Scan(&lines).Error
	if err != nil {
		return nil, fmt.Errorf("cart lines: %w", err)
	}
	return lines, nil
}

// Count returns how many items the user's cart holds.
func (s *Carts) Count(ctx context.Context, userID uuid.UUID) (int, error) {
	var n int
	err := s.db.WithContext(ctx).Raw(`
		SELECT coalesce(sum(ci.quantity), 0) FROM carts c JOIN cart_items ci ON ci.cart_id = c.id
		WHERE c.user_id = ?`, userID).Scan(&n).Error
	if err != nil {
		return 0, fmt.Errorf("cart count: %w", err)
	}
	return n, nil
}

// lockCart returns the id of the user's cart with its row locked for the
// transaction, touching updated_at. With create, a missing cart is made.
func lockCart(ctx context.Context, tx *gorm.DB, userID uuid.UUID, create bool) (uuid.UUID, error) {
	var row *sql.Row
	if create {
		// The upsert's update takes the row lock when the cart exists.
		row = tx.WithContext(ctx).Raw(`
			INSERT INTO carts (id, user_id) VALUES (?, ?)
			ON CONFLICT (user_id) DO UPDATE SET updated_at = now()
			RETURNING id`, newID(), userID).Row()
	} else {
		row = tx.WithContext(ctx).Raw(`
			UPDATE carts SET updated_at = now() WHERE user_id = ? RETURNING id`, userID).Row()
	}
	var id uuid.UUID
	err := row.Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return uuid.Nil, ErrNotFound
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("lock cart: %w", err)
	}
	return id, nil
}

// lineState is what a cart change checks against, read under the cart lock.
type lineStateRow struct {
	Stock  int
	InCart int
	Lines  int
}

// lineState reads the product's stock, the line's quantity and the cart's
// line count in one query; ErrNotFound for an unknown product.
func lineState(ctx context.Context, tx *gorm.DB, cartID uuid.UUID, productID int64) (lineStateRow, error) {
	var rows []lineStateRow
	err := tx.WithContext(ctx).Raw(`
		SELECT p.stock,
		       coalesce(ci.quantity, 0) AS in_cart,
		       (SELECT count(*) FROM cart_items WHERE cart_id = @cart) AS lines
		FROM products p
		LEFT JOIN cart_items ci ON ci.cart_id = @cart AND ci.product_id = p.id
		WHERE p.id = @product`, map[string]any{"cart": cartID, "product": productID}).Scan(&rows).Error
	if err != nil {
		return lineStateRow{}, fmt.Errorf("cart line: %w", err)
	}
	if len(rows) == 0 {
		return lineStateRow{}, ErrNotFound
	}
	return rows[0], nil
}
