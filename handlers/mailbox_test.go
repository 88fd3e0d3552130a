package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"shopfront/handlers"
	"shopfront/models"
)

func TestDevMailbox(t *testing.T) {
	app, db := newApp(t, func(c *handlers.Config) { c.DevMailbox = true })
	c := newClient(t, app)
	outbox := models.NewOutbox(db)
	ctx := context.Background()
	link := "http://shop.test/account/password?token=abc_DEF-123"
	for _, e := range []models.Email{
		{To: "old@example.test", Subject: "Older mail", Text: "Hello.\n", HTML: "<p>Hello.</p>"},
		{
			To: "guest@example.test", Subject: "Choose your password",
			Text: "Hello,\n\nchoose a password: " + link + ".\n" +
				"Not from us: https://evil.example/phish and http://shop.test.evil.example/x\n",
			HTML: `<p><script>alert(1)</script><a href="` + link + `">Choose</a></p>`,
		},
	} {
		if err := outbox.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec(`UPDATE outbox SET sent_at = now() WHERE subject = 'Older mail'`).Error; err != nil {
		t.Fatal(err)
	}
	recent, err := outbox.Recent(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	newest := recent[0]

	t.Run("index lists mail newest first with status", func(t *testing.T) {
		r := c.get("/dev/mailbox")
		wantStatus(t, r, http.StatusOK)
		wantNoStore(t, r)
		for _, want := range []string{"guest@example.test", "old@example.test", "pending", "sent",
			fmt.Sprintf(`href="/dev/mailbox/%d"`, newest.ID)} {
			if !strings.Contains(r.body, want) {
				t.Errorf("mailbox lacks %q", want)
			}
		}
		if strings.Index(r.body, "Choose your password") > strings.Index(r.body, "Older mail") {
			t.Error("mailbox is not newest first")
		}
	})
	t.Run("message shows its text and links to this site", func(t *testing.T) {
		r := c.get(fmt.Sprintf("/dev/mailbox/%d", newest.ID))
		wantStatus(t, r, http.StatusOK)
		wantNoStore(t, r)
		for _, want := range []string{"guest@example.test", "Choose your password", "<pre>Hello,", `<a href="` + link + `">`} {
			if !strings.Contains(r.body, want) {
				t.Errorf("message page lacks %q", want)
			}
		}
		for _, unwanted := range []string{`href="https://evil.example`, `href="http://shop.test.evil.example`, "<script>alert(1)"} {
			if strings.Contains(r.body, unwanted) {
				t.Errorf("message page has %q", unwanted)
			}
		}
	})
	for _, id := range []string{"999999999", "0", "-1", "abc", "1e3"} {
		t.Run("id "+id+" is not found", func(t *testing.T) {
			r := c.get("/dev/mailbox/" + id)
			wantStatus(t, r, http.StatusNotFound)
			wantNoStore(t, r)
		})
	}
}

func TestDevMailbox_OffUnlessConfigured(t *testing.T) {
	app, _ := newApp(t)
	wantStatus(t, newClient(t, app).get("/dev/mailbox"), http.StatusNotFound)
}

func wantNoStore(t *testing.T, r response) {
	t.Helper()
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
}
