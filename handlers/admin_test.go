package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"

	"shopfront/models"
)

// signedIn returns a client signed in as a registered account (an admin if
// admin) with email.
func signedIn(t *testing.T, app *fiber.App, db *gorm.DB, email string, admin bool) *client {
	t.Helper()
	accounts := models.NewAccounts(db, models.NewPasswords(), 0)
	email, _ = models.NormalizeEmail(email)
	if _, err := accounts.CreateAdmin(context.Background(), email, goodPassword); err != nil {
		t.Fatal(err)
	}
	if !admin {
		db.Exec("UPDATE users SET is_admin = false WHERE email = ?", email)
	}
	c := newClient(t, app)
	wantStatus(t, c.post("/login", url.Values{"email": {email}, "password": {goodPassword}}), http.StatusSeeOther)
	return c
}

func TestAdminGuard(t *testing.T) {
	app, db := newApp(t)
	visitor := newClient(t, app)
	guest := newClient(t, app)
	wantStatus(t, add(guest, productID(t, db, "stoneware-mug"), "1"), http.StatusSeeOther)
	shopper := signedIn(t, app, db, "shopper@example.com", false)
	admin := signedIn(t, app, db, "boss@example.com", true)
	var someone string
	db.Raw("SELECT id::text FROM users LIMIT 1").Scan(&someone)

	for _, path := range []string{"/admin/users", "/admin/users?kind=guest", "/admin/users/" + someone} {
		for name, c := range map[string]*client{"visitor": visitor, "guest": guest} {
			r := c.get(path)
			wantStatus(t, r, http.StatusSeeOther)
			if loc := r.Header.Get("Location"); loc != "/login?next="+url.QueryEscape(path) {
				t.Errorf("%s on %s: redirect to %q", name, path, loc)
			}
		}
		wantStatus(t, shopper.get(path), http.StatusForbidden)
		r := admin.get(path)
		wantStatus(t, r, http.StatusOK)
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: admin pages must not be cached", path)
		}
	}
	if r := admin.get("/"); !strings.Contains(r.body, `href="/admin/users"`) {
		t.Error("admins get no link to the admin pages")
	}
	if r := shopper.get("/"); strings.Contains(r.body, `href="/admin/users"`) {
		t.Error("a customer sees the admin link")
	}
}

var userLinks = regexp.MustCompile(`href="/admin/users/([0-9a-f-]{36})"`)
var nextLink = regexp.MustCompile(`href="(/admin/users\?[^"]+)" rel="next"`)

func TestAdminUserList(t *testing.T) {
	app, db := newApp(t)
	admin := signedIn(t, app, db, "boss@example.com", true)
	signedIn(t, app, db, "Ada.Lovelace@Example.com", false)
	signedIn(t, app, db, "grace@example.org", false)
	// Older guests: ids that sort before today's UUIDv7s, as older ones do.
	db.Exec(`INSERT INTO users (id, kind)
		SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 'guest'
		FROM generate_series(1, 120) n`)

	t.Run("kind filter", func(t *testing.T) {
		r := admin.get("/admin/users?kind=registered")
		wantStatus(t, r, http.StatusOK)
		if n := len(userLinks.FindAllString(r.body, -1)); n != 3 {
			t.Fatalf("registered filter lists %d users, want 3", n)
		}
		if !strings.Contains(r.body, "120 guests") || !strings.Contains(r.body, "3 registered") {
			t.Fatal("counts per kind missing")
		}
		if strings.Contains(r.body, `id="funnel"`) {
			t.Fatal("a filtered page shows the funnel")
		}
		r = admin.get("/admin/users?kind=guest")
		if strings.Contains(r.body, "@example") {
			t.Fatal("guest filter shows registered users")
		}
		r = admin.get("/admin/users")
		if !strings.Contains(r.body, `id="funnel"`) || !strings.Contains(r.body, "<svg") {
			t.Fatal("the first page has no funnel chart")
		}
	})
	t.Run("email search is partial and case-insensitive", func(t *testing.T) {
		r := admin.get("/admin/users?q=LOVELACE")
		wantStatus(t, r, http.StatusOK)
		if n := len(userLinks.FindAllString(r.body, -1)); n != 1 || !strings.Contains(r.body, "ada.lovelace@example.com") {
			t.Fatalf("search found %d users", n)
		}
		if r := admin.get("/admin/users?q=" + url.QueryEscape("%")); len(userLinks.FindAllString(r.body, -1)) != 0 {
			t.Fatal("a % search matches everything")
		}
	})
	t.Run("keyset pages neither skip nor repeat while guests arrive", func(t *testing.T) {
		seen := map[string]bool{}
		path := "/admin/users"
		pages := 0
		for path != "" {
			r := admin.get(path)
			wantStatus(t, r, http.StatusOK)
			for _, m := range userLinks.FindAllStringSubmatch(r.body, -1) {
				if seen[m[1]] {
					t.Fatalf("user %s on two pages", m[1])
				}
				seen[m[1]] = true
			}
			// New guests arrive between pages: they are newer than the cursor.
			newGuest := newClient(t, app)
			wantStatus(t, add(newGuest, productID(t, db, "stoneware-mug"), "1"), http.StatusSeeOther)
			path = ""
			if m := nextLink.FindStringSubmatch(r.body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
			pages++
		}
		if len(seen) != 123 || pages != 3 {
			t.Fatalf("saw %d users over %d pages, want 123 over 3", len(seen), pages)
		}
	})
	t.Run("hostile filters", func(t *testing.T) {
		for path, want := range map[string]int{
			"/admin/users?kind=admin":                                 400,
			"/admin/users?after=not-a-uuid":                           400,
			"/admin/users?after=" + url.QueryEscape("' OR 1=1"):       400,
			"/admin/users?q=%00":                                      400,
			"/admin/users?q=%ff":                                      400,
			"/admin/users?q=" + strings.Repeat("x", 300):              400,
			"/admin/users?q=" + url.QueryEscape("<script>x"):          200,
			"/admin/users?after=00000000-0000-0000-0000-000000000000": 200,
			"/admin/users/nope":                                       404,
			"/admin/users/" + "0190b0c4-0000-7000-8000-000000000000":  404,
		} {
			r := admin.get(path)
			wantStatus(t, r, want)
			if strings.Contains(r.body, "<script>x") {
				t.Fatalf("%s reflects a script tag", path)
			}
		}
	})
}

func TestAdminUserPage(t *testing.T) {
	a := newMailingApp(t)
	owner := guestWithCart(t, a, "stoneware-mug", "1")
	accountID := saveAccount(t, a, owner, "ada@example.com")
	shopper := guestWithCart(t, a, "enamel-tea-kettle", "2")
	guest := guestID(t, a.db, shopper)
	wantStatus(t, shopper.post("/login", url.Values{"email": {"ada@example.com"}, "password": {goodPassword}}), http.StatusSeeOther)

	admin := signedIn(t, a.app, a.db, "boss@example.com", true)
	r := admin.get("/admin/users/" + accountID)
	wantStatus(t, r, http.StatusOK)
	for _, want := range []string{
		accountID, "ada@example.com", "Enamel Tea Kettle", "Stoneware Mug",
		"session.signed_in", "account.upgraded", "guest.created",
		fmt.Sprintf(`<code class="merged-guest">%s</code>`, guest), "since merged", testUserAgent,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("user page lacks %q", want)
		}
	}
	if strings.Contains(r.body, "token_hash") || strings.Contains(r.body, "$argon2id$") {
		t.Error("user page shows secrets")
	}
}
