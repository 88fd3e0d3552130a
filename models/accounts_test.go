package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"shopfront/models"
	"shopfront/models/modeltest"
)

// mustRegistered makes a registered account directly, with an empty cart.
func mustRegistered(t *testing.T, db *gorm.DB, email string) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	err := db.Exec(`INSERT INTO users (id, kind, email, password_hash, email_verified_at)
		VALUES (?, 'registered', ?, 'x', now())`, id, email).Error
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSignInMergeDropsWhatDoesNotFit(t *testing.T) {
	db := modeltest.NewDB(t)
	ctx := context.Background()
	if err := db.Exec("UPDATE products SET stock = 10").Error; err != nil {
		t.Fatal(err)
	}
	var ids []int64
	db.Raw("SELECT id FROM products ORDER BY id").Scan(&ids)
	carts := models.NewCarts(db)

	account := mustRegistered(t, db, "ada@example.com")
	for _, id := range ids[:models.MaxCartLines-1] { // 49 lines
		if _, err := carts.Add(ctx, account, id, 9); err != nil {
			t.Fatal(err)
		}
	}
	guest := mustGuest(t, db, ids[0])
	for _, id := range ids[models.MaxCartLines-1 : models.MaxCartLines+1] {
		if _, err := carts.Add(ctx, guest, id, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := carts.Add(ctx, guest, ids[0], 2); err != nil { // 9 + 3 is past the stock of 10
		t.Fatal(err)
	}

	accounts := models.NewAccounts(db, models.NewPasswords(), time.Hour)
	prev := &models.Current{UserID: guest, Kind: models.KindGuest}
	res, err := accounts.SignIn(ctx, account, prev, newSession())
	if err != nil {
		t.Fatal(err)
	}
	// ids[0]: 9 + 3, capped at the stock of 10; the 50th line fits; the
	// 51st is dropped.
	if res.MergedItems != 1+2 || len(res.Dropped) != 1 {
		t.Fatalf("merged %d items, dropped %v; want 3 merged, 1 dropped", res.MergedItems, res.Dropped)
	}
	if n := count(t, db, "SELECT count(*) FROM cart_items ci JOIN carts c ON c.id = ci.cart_id WHERE c.user_id = ?", account); n != models.MaxCartLines {
		t.Fatalf("account cart has %d lines, want %d", n, models.MaxCartLines)
	}
	if q := count(t, db, "SELECT ci.quantity FROM cart_items ci JOIN carts c ON c.id = ci.cart_id WHERE c.user_id = ? AND ci.product_id = ?", account, ids[0]); q != 10 {
		t.Fatalf("overlapping line = %d, want 10 (capped at stock)", q)
	}
	if n := count(t, db, "SELECT count(*) FROM users WHERE id = ?", guest); n != 0 {
		t.Fatal("guest row not deleted")
	}
	if n := count(t, db, "SELECT count(*) FROM cart_items ci LEFT JOIN carts c ON c.id = ci.cart_id WHERE c.id IS NULL"); n != 0 {
		t.Fatal("orphan cart lines")
	}
}

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{
		"Ada@Example.com":            "ada@example.com",
		"  bob.smith+shop@mail.co  ": "bob.smith+shop@mail.co",
	}
	for in, want := range good {
		if got, ok := models.NormalizeEmail(in); !ok || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "ada", "ada@", "@example.com", "ada@example", "Ada <ada@example.com>",
		"ada@example.com\nBcc: x@y.z", "a@b.c\x00", "ada@example.com."} {
		if got, ok := models.NormalizeEmail(bad); ok {
			t.Errorf("NormalizeEmail(%q) = %q, accepted", bad, got)
		}
	}
}

func TestValidatePassword(t *testing.T) {
	for pw, ok := range map[string]bool{
		"short":                      false,
		"twelve chars":               true,
		"ééééééééééé":                false, // 11 characters, 22 bytes
		"éééééééééééé":               true,
		string(make([]byte, 129)):    false,
		"correct horse battery":      true,
		"\xff\xfe\xfd invalid utf-8": false,
	} {
		if got := models.ValidatePassword(pw) == ""; got != ok {
			t.Errorf("ValidatePassword(%q) ok = %v, want %v", pw, got, ok)
		}
	}
}

func TestResetRequestsQueueThenProcess(t *testing.T) {
	db := modeltest.NewDB(t)
	ctx := context.Background()
	mustRegistered(t, db, "ada@example.com")
	accounts := models.NewAccounts(db, models.NewPasswords(), time.Hour)
	for _, email := range []string{"ada@example.com", "nobody@example.com", "ADA@example.com"} {
		if err := accounts.QueueReset(ctx, email); err != nil {
			t.Fatal(err)
		}
	}
	// Queuing does the same for every address: one row, no token, no mail.
	if n := count(t, db, "SELECT count(*) FROM email_tokens"); n != 0 {
		t.Fatal("queuing a reset issued a token")
	}
	var composed []string
	n, err := accounts.ProcessResets(ctx, 10, func(email, token string) (models.Email, error) {
		composed = append(composed, email)
		return models.Email{To: email, Subject: "reset", Text: token, HTML: token}, nil
	})
	if err != nil || n != 3 {
		t.Fatalf("processed %d, err %v; want 3", n, err)
	}
	if len(composed) != 2 || count(t, db, "SELECT count(*) FROM outbox") != 2 {
		t.Fatalf("mail for %v; want the two requests for the account", composed)
	}
	// The second link replaced the first: one live reset link.
	if live := count(t, db, "SELECT count(*) FROM email_tokens WHERE purpose = 'reset' AND used_at IS NULL"); live != 1 {
		t.Fatalf("%d live reset links, want 1", live)
	}
	if left := count(t, db, "SELECT count(*) FROM reset_requests"); left != 0 {
		t.Fatalf("%d requests left in the queue", left)
	}
}
