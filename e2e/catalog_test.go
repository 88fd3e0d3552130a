package e2e

import (
	"strings"
	"testing"
)

// TestCatalogJourney: a visitor opens the catalog, searches, opens a product
// and finds its add-to-cart form.
func TestCatalogJourney(t *testing.T) {
	ctx := newBrowser(t)
	s := startShop(t)

	navigate(t, ctx, s.URL+"/")
	if got := text(t, ctx, "h1"); got != "All products" {
		t.Fatalf("catalog heading = %q", got)
	}
	if n := count(t, ctx, ".product-card"); n != 24 {
		t.Fatalf("catalog shows %d products, want 24", n)
	}

	setValue(t, ctx, `input[name="q"]`, "kettle")
	submit(t, ctx, `input[name="q"]`)
	if loc := location(t, ctx); !strings.Contains(loc, "q=kettle") {
		t.Fatalf("search went to %s", loc)
	}
	if n := count(t, ctx, ".product-card"); n < 1 {
		t.Fatal("search for kettle found nothing")
	}

	click(t, ctx, `.product-card a[href="/products/enamel-tea-kettle"]`)
	waitVisible(t, ctx, "form.add-to-cart")
	if got := text(t, ctx, "h1"); got != "Enamel Tea Kettle" {
		t.Fatalf("product heading = %q", got)
	}
	if n := count(t, ctx, `form.add-to-cart input[name="_csrf"][type="hidden"]`); n != 1 {
		t.Fatal("add-to-cart form has no CSRF field")
	}
	if n := count(t, ctx, `form.add-to-cart button[type="submit"]:not([disabled])`); n != 1 {
		t.Fatal("add-to-cart button missing or disabled")
	}
}
