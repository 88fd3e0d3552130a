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

// mustProduct returns the seeded product with slug.
func mustProduct(t *testing.T, db *gorm.DB, slug string) models.Product {
	t.Helper()
	p, err := models.NewCatalog(db).BySlug(context.Background(), slug)
	if err != nil {
		t.Fatalf("product %s: %v", slug, err)
	}
	return p
}

// newSession describes a fresh random session.
func newSession() models.NewSession {
	_, hash := models.NewToken()
	return models.NewSession{TokenHash: hash, UserAgent: "test", TTL: time.Hour}
}

// mustGuest creates a guest with one of a product in its cart.
func mustGuest(t *testing.T, db *gorm.DB, productID int64) uuid.UUID {
	t.Helper()
	res, err := models.NewGuests(db).AddAsGuest(context.Background(), newSession(), productID, 1)
	if err != nil {
		t.Fatalf("create guest: %v", err)
	}
	return res.UserID
}

func count(t *testing.T, db *gorm.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Raw(query, args...).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAddAsGuestCreatesEverythingOnce(t *testing.T) {
	db := modeltest.NewDB(t)
	kettle := mustProduct(t, db, "enamel-tea-kettle")
	id := mustGuest(t, db, kettle.ID)

	for table, want := range map[string]int{"users": 1, "sessions": 1, "carts": 1, "cart_items": 1} {
		if got := count(t, db, "SELECT count(*) FROM "+table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	if got := count(t, db, "SELECT count(*) FROM users WHERE id = ? AND kind = 'guest' AND email IS NULL", id); got != 1 {
		t.Error("the user is not an anonymous guest")
	}
	if got := count(t, db, "SELECT count(*) FROM events WHERE user_id = ? AND type = 'guest.created'", id); got != 1 {
		t.Error("no guest.created event")
	}
}

func TestAddAsGuestFailureCreatesNothing(t *testing.T) {
	db := modeltest.NewDB(t)
	ctx := context.Background()
	guests := models.NewGuests(db)
	soldOut := mustProduct(t, db, "cast-iron-skillet")

	if _, err := guests.AddAsGuest(ctx, newSession(), 999999, 1); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unknown product: err = %v, want ErrNotFound", err)
	}
	var stock *models.StockError
	if _, err := guests.AddAsGuest(ctx, newSession(), soldOut.ID, 1); !errors.As(err, &stock) {
		t.Fatalf("sold out: err = %v, want StockError", err)
	}
	for _, table := range []string{"users", "sessions", "carts", "cart_items", "events"} {
		if got := count(t, db, "SELECT count(*) FROM "+table); got != 0 {
			t.Errorf("%s: %d rows after failed adds, want 0", table, got)
		}
	}
}

func TestCartArithmetic(t *testing.T) {
	db := modeltest.NewDB(t)
	ctx := context.Background()
	carts := models.NewCarts(db)
	mug := mustProduct(t, db, "stoneware-mug")
	if err := db.Exec("UPDATE products SET stock = 500 WHERE id = ?", mug.ID).Error; err != nil {
		t.Fatal(err)
	}
	user := mustGuest(t, db, mug.ID)

	if q, err := carts.Add(ctx, user, mug.ID, 40); err != nil || q != 41 {
		t.Fatalf("add 40 to 1: quantity %d, err %v; want 41", q, err)
	}
	if q, err := carts.Add(ctx, user, mug.ID, 90); err != nil || q != models.MaxQuantity {
		t.Fatalf("add past the cap: quantity %d, err %v; want %d", q, err, models.MaxQuantity)
	}
	if err := carts.SetQuantity(ctx, user, mug.ID, 5); err != nil {
		t.Fatal(err)
	}
	lines, err := carts.Lines(ctx, user)
	if err != nil || len(lines) != 1 || lines[0].Quantity != 5 {
		t.Fatalf("lines after set 5: %+v, %v", lines, err)
	}
	if err := carts.SetQuantity(ctx, user, mug.ID, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := carts.Count(ctx, user); n != 0 {
		t.Fatalf("count after set 0: %d, want 0", n)
	}
	if err := carts.SetQuantity(ctx, user, mug.ID, 3); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("set quantity of a missing line: err = %v, want ErrNotFound", err)
	}
	if err := carts.Remove(ctx, user, mug.ID); err != nil {
		t.Fatalf("removing a missing line: %v, want no error", err)
	}
	if err := carts.Remove(ctx, user, 999999); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("remove unknown product: err = %v, want ErrNotFound", err)
	}
}

func TestCartStock(t *testing.T) {
	db := modeltest.NewDB(t)
	ctx := context.Background()
	carts := models.NewCarts(db)
	grinder := mustProduct(t, db, "hand-coffee-grinder") // 2 in stock
	user := mustGuest(t, db, grinder.ID)

	var stock *models.StockError
	if _, err := carts.Add(ctx, user, grinder.ID, 2); !errors.As(err, &stock) || stock.Stock != 2 || stock.InCart != 1 {
		t.Fatalf("add 2 to 1 of 2 in stock: err = %v, want StockError{2, 1}", err)
	}
	if err := carts.SetQuantity(ctx, user, grinder.ID, 3); !errors.As(err, &stock) {
		t.Fatalf("set 3 of 2 in stock: err = %v, want StockError", err)
	}
	if n, _ := carts.Count(ctx, user); n != 1 {
		t.Fatalf("cart holds %d after refused changes, want 1", n)
	}
}

func TestCartLineLimit(t *testing.T) {
	db := modeltest.NewDB(t)
	ctx := context.Background()
	carts := models.NewCarts(db)
	var ids []int64
	if err := db.Exec("UPDATE products SET stock = 10").Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Raw("SELECT id FROM products ORDER BY id").Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if len(ids) <= models.MaxCartLines {
		t.Fatalf("need more than %d products in stock, have %d", models.MaxCartLines, len(ids))
	}
	user := mustGuest(t, db, ids[0])
	for _, id := range ids[1:models.MaxCartLines] {
		if _, err := carts.Add(ctx, user, id, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := carts.Add(ctx, user, ids[models.MaxCartLines], 1); !errors.Is(err, models.ErrCartFull) {
		t.Fatalf("line %d: err = %v, want ErrCartFull", models.MaxCartLines+1, err)
	}
	if _, err := carts.Add(ctx, user, ids[0], 1); err != nil {
		t.Fatalf("more of an existing line in a full cart: %v", err)
	}
}

func TestCartCascades(t *testing.T) {
	db := modeltest.NewDB(t)
	user := mustGuest(t, db, mustProduct(t, db, "stoneware-mug").ID)
	if err := db.Exec("DELETE FROM users WHERE id = ?", user).Error; err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"sessions", "carts", "cart_items"} {
		if got := count(t, db, "SELECT count(*) FROM "+table); got != 0 {
			t.Errorf("%s: %d rows after deleting the user, want 0", table, got)
		}
	}
}

// TestConcurrentAdds: twenty tabs add the same product at once; no increment
// is lost.
func TestConcurrentAdds(t *testing.T) {
	db := modeltest.NewDB(t)
	mug := mustProduct(t, db, "stoneware-mug")
	if err := db.Exec("UPDATE products SET stock = 500 WHERE id = ?", mug.ID).Error; err != nil {
		t.Fatal(err)
	}
	user := mustGuest(t, db, mug.ID)
	if err := db.Exec("DELETE FROM cart_items").Error; err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := models.NewCarts(db).Add(context.Background(), user, mug.ID, 1)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := count(t, db, "SELECT quantity FROM cart_items"); got != 20 {
		t.Fatalf("quantity after 20 concurrent adds = %d, want 20", got)
	}
}

// TestRacingFirstAdds: two first adds from one browser carry the same
// session token; exactly one guest results and both adds count.
func TestRacingFirstAdds(t *testing.T) {
	db := modeltest.NewDB(t)
	mug := mustProduct(t, db, "stoneware-mug")
	ns := newSession()

	for round := range 5 {
		if err := db.Exec("DELETE FROM users").Error; err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for range 2 {
			wg.Go(func() {
				_, err := models.NewGuests(db).AddAsGuest(context.Background(), ns, mug.ID, 1)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if got := count(t, db, "SELECT count(*) FROM users"); got != 1 {
			t.Fatalf("round %d: %d guests, want 1", round, got)
		}
		if got := count(t, db, "SELECT quantity FROM cart_items"); got != 2 {
			t.Fatalf("round %d: quantity %d, want 2", round, got)
		}
	}
}
