package models_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"shopfront/models"
	"shopfront/models/modeltest"
)

// plainMails writes the order emails as one-line texts; the real templ
// emails are tested with the views.
type plainMails struct{}

func (plainMails) Confirmation(o models.OrderDetail, key string) (models.Email, error) {
	return models.Email{To: o.Email, Subject: "Order " + o.Number, Text: "key " + key, HTML: "<p>" + o.Number + "</p>"}, nil
}

func (plainMails) StatusChanged(o models.OrderDetail) (models.Email, error) {
	return models.Email{To: o.Email, Subject: "Order " + o.Number + " " + o.Status, Text: o.Status, HTML: "<p>" + o.Status + "</p>"}, nil
}

func newOrders(db *gorm.DB) *models.Orders {
	return models.NewOrders(db, models.CheckoutKey("test-checkout-key-32-bytes-long!!"),
		models.Pricing{ShippingCents: 490, FreeFromCents: 5000}, plainMails{})
}

// checkoutFor is a complete checkout of the user's cart as priced now.
func checkoutFor(t *testing.T, o *models.Orders, userID uuid.UUID) models.Checkout {
	t.Helper()
	q, err := o.Quote(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return models.Checkout{
		UserID: userID, Guest: true, Token: o.IssueToken(userID, q), Email: "buyer@example.test",
		Ship:          models.Address{Name: "Ada Buyer", Address1: "1 Main St", City: "Berlin", Postcode: "10115", Country: "DE"},
		PaymentMethod: models.PaymentBankTransfer,
	}
}

func TestPlaceLastUnitsRace(t *testing.T) {
	db := modeltest.NewDB(t)
	o := newOrders(db)
	mug := mustProduct(t, db, "stoneware-mug")
	if err := db.Exec(`UPDATE products SET stock = 3 WHERE id = ?`, mug.ID).Error; err != nil {
		t.Fatal(err)
	}
	var forms []models.Checkout
	for range 8 {
		forms = append(forms, checkoutFor(t, o, mustGuest(t, db, mug.ID)))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(forms))
	for i, f := range forms {
		wg.Go(func() { _, errs[i] = o.Place(context.Background(), f) })
	}
	wg.Wait()
	placed := 0
	for _, err := range errs {
		var oos *models.OutOfStockError
		switch {
		case err == nil:
			placed++
		case errors.As(err, &oos):
			if oos.Name != mug.Name {
				t.Errorf("out of stock names %q, want %q", oos.Name, mug.Name)
			}
		default:
			t.Fatalf("place: %v", err)
		}
	}
	if placed != 3 {
		t.Fatalf("%d orders placed, want 3", placed)
	}
	if got := count(t, db, `SELECT stock FROM products WHERE id = ?`, mug.ID); got != 0 {
		t.Fatalf("stock %d, want 0", got)
	}
	if got := count(t, db, `SELECT count(*) FROM cart_items`); got != 5 {
		t.Fatalf("%d cart lines left, want the 5 losers' lines", got)
	}
	if got := count(t, db, `SELECT count(*) FROM outbox`); got != 3 {
		t.Fatalf("%d confirmations, want 3", got)
	}
}

func TestPlaceRepeatLandsOnSameOrder(t *testing.T) {
	db := modeltest.NewDB(t)
	o := newOrders(db)
	user := mustGuest(t, db, mustProduct(t, db, "stoneware-mug").ID)
	f := checkoutFor(t, o, user)
	first, err := o.Place(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	again, err := o.Place(context.Background(), f)
	if err != nil || !again.Repeat || again.Number != first.Number {
		t.Fatalf("repeat = %+v, %v; want the order %s again", again, err, first.Number)
	}
	if got := count(t, db, `SELECT count(*) FROM orders`); got != 1 {
		t.Fatalf("%d orders, want 1", got)
	}
	other := mustGuest(t, db, mustProduct(t, db, "stoneware-mug").ID)
	f.UserID = other
	if _, err := o.Place(context.Background(), f); !errors.Is(err, models.ErrCheckoutToken) {
		t.Fatalf("another user's token: %v, want ErrCheckoutToken", err)
	}
}

func TestPlacePriceChangedChargesNothing(t *testing.T) {
	db := modeltest.NewDB(t)
	o := newOrders(db)
	mug := mustProduct(t, db, "stoneware-mug")
	f := checkoutFor(t, o, mustGuest(t, db, mug.ID))
	if err := db.Exec(`UPDATE products SET price_cents = price_cents + 100 WHERE id = ?`, mug.ID).Error; err != nil {
		t.Fatal(err)
	}
	_, err := o.Place(context.Background(), f)
	var changed *models.CartChangedError
	if !errors.As(err, &changed) || len(changed.Changed) != 1 || changed.Changed[0] != mug.ID {
		t.Fatalf("place after a price change: %v, want the mug marked changed", err)
	}
	if got := count(t, db, `SELECT count(*) FROM orders`); got != 0 {
		t.Fatalf("%d orders, want 0", got)
	}
	if got := count(t, db, `SELECT stock FROM products WHERE id = ?`, mug.ID); got != mug.Stock {
		t.Fatalf("stock %d, want %d untouched", got, mug.Stock)
	}
}

func TestCancelRaceReturnsStockOnce(t *testing.T) {
	db := modeltest.NewDB(t)
	o := newOrders(db)
	mug := mustProduct(t, db, "stoneware-mug")
	placed, err := o.Place(context.Background(), checkoutFor(t, o, mustGuest(t, db, mug.ID)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = o.SetStatus(context.Background(), placed.Number, models.StatusCancelled, uuid.Nil)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		var se *models.StatusError
		switch {
		case err == nil:
			won++
		case !errors.As(err, &se):
			t.Fatalf("cancel: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d cancels won, want 1", won)
	}
	if got := count(t, db, `SELECT stock FROM products WHERE id = ?`, mug.ID); got != mug.Stock {
		t.Fatalf("stock %d, want %d (returned once)", got, mug.Stock)
	}
}

func TestCullKeepsOrders(t *testing.T) {
	db := modeltest.NewDB(t)
	o := newOrders(db)
	user := mustGuest(t, db, mustProduct(t, db, "stoneware-mug").ID)
	if _, err := o.Place(context.Background(), checkoutFor(t, o, user)); err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(`DELETE FROM users WHERE id = ?`, user).Error; err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM orders WHERE user_id IS NULL`); got != 1 {
		t.Fatalf("%d ownerless orders after the guest went, want 1", got)
	}
}

func TestOrdersFollowProofOnly(t *testing.T) {
	db := modeltest.NewDB(t)
	ctx := context.Background()
	o := newOrders(db)
	mug := mustProduct(t, db, "stoneware-mug").ID
	accounts := models.NewAccounts(db, models.NewPasswords(), time.Hour)

	// Sign-in from a guest session brings the guest's order along.
	guest := mustGuest(t, db, mug)
	if _, err := o.Place(ctx, checkoutFor(t, o, guest)); err != nil {
		t.Fatal(err)
	}
	account := mustRegistered(t, db, "ada@example.com")
	if _, err := accounts.SignIn(ctx, account, &models.Current{UserID: guest, Kind: models.KindGuest}, newSession()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM orders WHERE user_id = ?`, account); got != 1 {
		t.Fatalf("after sign-in the account has %d orders, want 1", got)
	}

	// A guest order placed with an address stays put while the address is
	// only typed in a promote form; the used link attaches it.
	buyer := mustGuest(t, db, mug)
	f := checkoutFor(t, o, buyer)
	f.Email = "bea@example.com"
	if _, err := o.Place(ctx, f); err != nil {
		t.Fatal(err)
	}
	saver := mustGuest(t, db, mug)
	var token string
	err := accounts.RequestSave(ctx, saver, "bea@example.com",
		func(tok string) (models.Email, error) {
			token = tok
			return models.Email{To: "bea@example.com", Subject: "s"}, nil
		},
		func(string) (models.Email, error) { return models.Email{To: "bea@example.com", Subject: "s"}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM orders WHERE user_id = ?`, saver); got != 0 {
		t.Fatalf("an unproven address claimed %d orders", got)
	}
	if _, err := accounts.UseLink(ctx, token, "a long enough password", newSession()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM orders WHERE user_id = ?`, saver); got != 1 {
		t.Fatalf("the proven address has %d orders, want 1", got)
	}
	if got := count(t, db, `SELECT count(*) FROM orders WHERE user_id = ?`, account); got != 1 {
		t.Fatalf("ada's order moved: %d left, want 1", got)
	}
}
